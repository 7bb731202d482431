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


def test_bench_serve_spreads_sessions_over_two_ui_processes_on_redis(redis_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--sessions", "4", "--seconds", "4", "--warmup", "1", "--bus", redis_url,
         "--ui-processes", "2"],
        capture_output=True, text=True, timeout=300, cwd=SCRIPT.parent.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["sessions_connected"] == 4 and out["problems"] == [], out["problems"]
    assert out["server"]["ui_processes"] == 2 and "--ui-processes 2" in out["server"]["command"]
    # Both servers served sessions (and used CPU), and so did the execution worker `vtrade up` started.
    serving = [role for role in out["cpu_pct_by_role"] if role.startswith("serve :")]
    assert len(serving) == 2 and "worker execution" in out["cpu_pct_by_role"], out["cpu_pct_by_role"]
    assert all(n > 0 for n in out["updates_by_session"]), out["updates_by_session"]
    assert all(math.isfinite(out["lag_ms"][k]) for k in ("p50", "p95")), out["lag_ms"]


def test_bench_serve_refuses_several_ui_processes_without_a_bus() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--ui-processes", "2"], capture_output=True, text=True,
                          timeout=60, cwd=SCRIPT.parent.parent)  # fmt: skip
    assert proc.returncode == 2 and "more than 1 needs --bus" in proc.stderr, proc.stderr
