"""``benchmarks/bench_serve.py`` end to end at a small load: it starts ``vtrade serve``, connects
real Bokeh protocol clients and reports what they received. Only that the benchmark works is
checked here (every session connected, clock updates arrived, lags are real numbers): how fast
the server is, is what the benchmark itself measures, never asserted in a test."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_serve.py"


def test_bench_serve_small_load() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--sessions", "3", "--seconds", "4", "--warmup", "1"],
        capture_output=True, text=True, timeout=180, cwd=SCRIPT.parent.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    assert out["sessions"] == 3
    assert out["sessions_connected"] == 3, out["problems"]
    assert out["problems"] == []
    assert out["updates_total"] > 0
    assert len(out["updates_by_session"]) == 3
    lags = [out["lag_ms"][k] for k in ("p50", "p95", "p99", "max")]
    assert all(isinstance(v, float) and math.isfinite(v) and v >= 0 for v in lags), out["lag_ms"]
    assert lags == sorted(lags)
    assert all(math.isfinite(v) and v >= 0 for v in out["staleness_ms"].values()), out["staleness_ms"]
    assert out["server_cpu_pct"] >= 0 and out["server_rss_mb"] > 0
    assert out["patch_events_per_session_per_s"], "the server pushes patches"
    assert out["floor"]["sessions_min"] == 30 and out["floor"]["ok"] is False  # 3 sessions are below the floor
    assert set(out) >= {"period_ms", "seconds", "updates_per_session_per_s", "server_cpu_pct", "server_rss_mb"}
