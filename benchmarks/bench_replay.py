"""Market-making replay of the Binance USD-M capture: vtrade next to hftbacktest, same run.

Prints one JSON object. The strategy (``vtrade.strategies:market_maker``, mirrored in
``benchmarks/peers/hftbacktest_mm.py``): every 100 ms of simulated time cancel everything,
then post 1 lot at best bid - 1 tick and 1 lot at best ask + 1 tick, post-only; power-2
probabilistic queue model; constant 1 ms entry and response latency; partial fills on.

Two figures, each with its ratio to hftbacktest, for vtrade's two paths: the Python strategy
on the reference engine, and the same strategy compiled (``vtrade.strategies:market_maker_jit``)
in vtrade's compiled loop (the two give byte-identical outputs; the run checks their hashes):

(a) warm replay throughput on pre-converted input, events counted as hftbacktest counts
    them (price-level updates + trades), after a warm-up run; best of ``--repeat`` (every
    run's time is listed too);
(b) cold end-to-end wall time in a fresh process, from the raw ``.gz`` to a finished
    result (import + conversion + JIT + run). vtrade's Numba kernels are cached on disk
    (``cache=True``) after their first compile, which is what a notebook user restarting a
    kernel gets; the very first run after install is reported too (empty Numba cache).

    python benchmarks/bench_replay.py [--repeat 3] [--skip-peer]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ROOT / "data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"
sys.path[:0] = [str(ROOT / "benchmarks")]

SETTINGS = {
    "strategy": "vtrade.strategies:market_maker (bid - 1 tick, ask + 1 tick, 1 lot, post-only)",
    "every": "100ms",
    "realism": "L2",
    "queue": "ProbQueue(PowerProbQueueFunc(2))",
    "latency": "constant 1 ms entry, response and feed (hftbacktest: feed latency from the data)",
    "fees": "none",
}

_COLD = """
import json, time
t0 = time.perf_counter()
import sys
import vtrade as vt
from vtrade.execution.queue import PowerProbQueueFunc, ProbQueue
from vtrade.strategies import {strategy}
t1 = time.perf_counter()
r = vt.replay({capture!r}, strategy={strategy}, every="100ms", realism="L2", latency="1ms",
              queue=ProbQueue(PowerProbQueueFunc(2)))
t2 = time.perf_counter()
result = {{"import_s": t1 - t0, "convert_jit_run_s": t2 - t1, "fills": len(r.fills), "path": r.path}}
print("RESULT " + json.dumps(result))
"""
PATHS = {"python": "market_maker", "compiled": "market_maker_jit"}


def vtrade_warm(repeat: int) -> dict[str, Any]:
    import vtrade as vt
    from vtrade import strategies
    from vtrade.core.events import Quote
    from vtrade.execution.queue import PowerProbQueueFunc, ProbQueue
    from vtrade.market import open_feed
    from vtrade.market.l2book import UpdateBatch

    feed = open_feed(CAPTURE)
    t0 = time.perf_counter()
    batch = UpdateBatch.from_events((e for e in feed if not isinstance(e, Quote)), trades=True)
    convert_s = time.perf_counter() - t0

    def run(b: UpdateBatch, strategy: Any) -> Any:
        return vt.replay(b, instrument=feed.instrument, strategy=strategy, every="100ms", realism="L2",
                         latency="1ms", queue=ProbQueue(PowerProbQueueFunc(2)))  # fmt: skip

    out: dict[str, Any] = {
        "events": batch.n_updates,
        "book_events": int((batch.kinds != 2).sum()),
        "trades": int((batch.kinds == 2).sum()),
        "parse_and_convert_seconds": round(convert_s, 3),
    }
    hashes = {}
    for path, name in PATHS.items():
        strategy = getattr(strategies, name)
        run(batch.slice(0, 5000), strategy)  # warm-up: loads (or compiles) the kernels and the loop
        times, result = [], None
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = run(batch, strategy)
            times.append(time.perf_counter() - t0)
        assert result is not None and result.path == path, (path, result and result.path)
        best = min(times)
        hashes[path] = result.output_hash()
        out[path] = {
            "strategy": f"vtrade.strategies:{name}",
            "fills": len(result.fills),
            "warm_seconds": round(best, 4),
            "warm_seconds_all": [round(t, 4) for t in times],
            "warm_events_per_s": round(batch.n_updates / best),
            "summary": result.summary(),
        }
    out["same_output_hash"] = hashes["python"] == hashes["compiled"]
    return out


def vtrade_cold(fresh_numba_cache: bool, strategy: str = "market_maker") -> dict[str, Any]:
    code = textwrap.dedent(_COLD.format(capture=str(CAPTURE), strategy=strategy))
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        if fresh_numba_cache:
            env["NUMBA_CACHE_DIR"] = cache
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"cold vtrade run failed:\n{proc.stderr[-3000:]}")
    child = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))[7:])
    return {"seconds": round(wall, 3), "breakdown": child}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-peer", action="store_true", help="vtrade only (hftbacktest not installed)")
    args = ap.parse_args()

    out: dict[str, Any] = {"benchmark": "bench_replay", "input": CAPTURE.name, "settings": SETTINGS}
    out["vtrade"] = v = vtrade_warm(args.repeat)
    for path, name in PATHS.items():
        v[path]["cold"] = vtrade_cold(fresh_numba_cache=False, strategy=name)
        v[path]["cold_first_run_empty_numba_cache"] = vtrade_cold(fresh_numba_cache=True, strategy=name)
    if not args.skip_peer:
        from peers import hftbacktest_mm as peer

        with tempfile.TemporaryDirectory() as tmp:
            npz = peer.convert(CAPTURE, tmp)
            warm = peer.run_market_making(npz, warm=True, repeats=args.repeat)
        cold = peer.cold_end_to_end(CAPTURE)
        out["hftbacktest"] = {"warm": warm, "cold_seconds": round(cold["seconds"], 3), "cold": cold["breakdown"]}
        # Best run on both sides; each input update counted once (hftbacktest stores some twice).
        peer_rate = warm["events_unique"] / min(warm["seconds_all"])
        out["hftbacktest"]["warm_events_per_s_best"] = round(peer_rate)
        out["ratios"] = {
            f"{path}_{key}": value
            for path in PATHS
            for key, value in {
                "warm_throughput_vtrade_over_hftbacktest": round(v[path]["warm_events_per_s"] / peer_rate, 3),
                "cold_hftbacktest_seconds_over_vtrade": round(cold["seconds"] / v[path]["cold"]["seconds"], 3),
                "cold_first_run_hftbacktest_over_vtrade": round(
                    cold["seconds"] / v[path]["cold_first_run_empty_numba_cache"]["seconds"], 3
                ),
            }.items()
        }
        out["ratios"]["fills_vtrade_python_compiled_hftbacktest"] = [
            v["python"]["fills"], v["compiled"]["fills"], warm.get("fills")
        ]
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
