"""``benchmarks/bench_leaderboard.py`` end to end with a few members: only that it runs on both
backends and reports well-formed figures is checked here; how fast is what the benchmark
measures, never asserted in a test."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_leaderboard.py"


def test_bench_leaderboard_small(redis_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--members", "3000", "--queries", "200", "--updates", "500",
         "--redis-updates", "100", "--batch", "64", "--redis-url", redis_url],
        capture_output=True, text=True, timeout=300, cwd=SCRIPT.parent.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["members"] == 3000 and out["batch"] == 64
    for backend in ("embedded", "redis"):
        figures = out[backend]
        assert figures["size"] == 3000
        assert figures["updates_per_s"] > 0 and figures["batched_updates_per_s"] > 0
        for q in ("rank", "top10", "around5"):
            p = figures[q]
            assert all(math.isfinite(p[k]) and p[k] >= 0 for k in ("p50_us", "p99_us", "max_us")), p
            assert p["p50_us"] <= p["p99_us"] <= p["max_us"]
    raw = out["redis"]["redis_benchmark_zrevrank"]
    assert raw["rps"] > 0 and out["redis"]["ratio_rank_rps"] > 0
    assert set(out["floor"]) == {"p99_ms", "updates_per_s", "rank", "top10", "around5", "updates"}
    assert out["ok"] == all(out["floor"][k] for k in ("rank", "top10", "around5", "updates"))
