"""Market-making replay of the Binance USD-M capture: vtrade next to hftbacktest, same run.

Prints one JSON object. The strategy (``vtrade.strategies:market_maker``, mirrored in
``benchmarks/peers/hftbacktest_mm.py``): every 100 ms of simulated time cancel everything,
then post 1 lot at best bid - 1 tick and 1 lot at best ask + 1 tick, post-only; power-2
probabilistic queue model; constant 1 ms entry and response latency; partial fills on.

Two figures, each with its ratio to hftbacktest:

(a) warm replay throughput on pre-converted input, events counted as hftbacktest counts
    them (price-level updates + trades), after a warm-up run; best of ``--repeat``;
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
from vtrade.strategies import market_maker
t1 = time.perf_counter()
r = vt.replay({capture!r}, strategy=market_maker, every="100ms", realism="L2", latency="1ms",
              queue=ProbQueue(PowerProbQueueFunc(2)))
t2 = time.perf_counter()
print("RESULT " + json.dumps({{"import_s": t1 - t0, "convert_jit_run_s": t2 - t1, "fills": len(r.fills)}}))
"""


def vtrade_warm(repeat: int) -> dict[str, Any]:
    import vtrade as vt
    from vtrade.core.events import Quote
    from vtrade.execution.queue import PowerProbQueueFunc, ProbQueue
    from vtrade.market import open_feed
    from vtrade.market.l2book import UpdateBatch
    from vtrade.strategies import market_maker

    feed = open_feed(CAPTURE)
    t0 = time.perf_counter()
    batch = UpdateBatch.from_events((e for e in feed if not isinstance(e, Quote)), trades=True)
    convert_s = time.perf_counter() - t0

    def run(b: UpdateBatch) -> Any:
        return vt.replay(b, instrument=feed.instrument, strategy=market_maker, every="100ms", realism="L2",
                         latency="1ms", queue=ProbQueue(PowerProbQueueFunc(2)))  # fmt: skip

    run(batch.slice(0, 5000))  # warm-up: loads (or compiles) the kernels
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = run(batch)
        times.append(time.perf_counter() - t0)
    assert result is not None
    best = min(times)
    return {
        "events": batch.n_updates,
        "book_events": int((batch.kinds != 2).sum()),
        "trades": int((batch.kinds == 2).sum()),
        "fills": len(result.fills),
        "warm_seconds": round(best, 4),
        "warm_events_per_s": round(batch.n_updates / best),
        "parse_and_convert_seconds": round(convert_s, 3),
        "summary": result.summary(),
    }


def vtrade_cold(fresh_numba_cache: bool) -> dict[str, Any]:
    code = textwrap.dedent(_COLD.format(capture=str(CAPTURE)))
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
    out["vtrade"] = vtrade_warm(args.repeat)
    out["vtrade"]["cold"] = vtrade_cold(fresh_numba_cache=False)
    out["vtrade"]["cold_first_run_empty_numba_cache"] = vtrade_cold(fresh_numba_cache=True)
    if not args.skip_peer:
        from peers import hftbacktest_mm as peer

        with tempfile.TemporaryDirectory() as tmp:
            npz = peer.convert(CAPTURE, tmp)
            warm = peer.run_market_making(npz, warm=True, repeats=args.repeat)
        cold = peer.cold_end_to_end(CAPTURE)
        out["hftbacktest"] = {"warm": warm, "cold_seconds": round(cold["seconds"], 3), "cold": cold["breakdown"]}
        v = out["vtrade"]
        # Best run on both sides; each input update counted once (hftbacktest stores some twice).
        peer_rate = warm["events_unique"] / min(warm["seconds_all"])
        out["hftbacktest"]["warm_events_per_s_best"] = round(peer_rate)
        out["ratios"] = {
            "warm_throughput_vtrade_over_hftbacktest": round(v["warm_events_per_s"] / peer_rate, 3),
            "cold_hftbacktest_seconds_over_vtrade": round(cold["seconds"] / v["cold"]["seconds"], 3),
            "cold_first_run_hftbacktest_over_vtrade": round(
                cold["seconds"] / v["cold_first_run_empty_numba_cache"]["seconds"], 3
            ),
            "fills_vtrade_vs_hftbacktest": [v["fills"], warm.get("fills")],
        }
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
