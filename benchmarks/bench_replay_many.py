"""A parameter sweep on the Binance USD-M capture: ``vt.replay_many`` next to separate ``vt.replay`` calls.

Prints one JSON object. 20 parameter sets of ``vtrade.strategies:market_maker`` (offset 1-5 ticks
x 1 or 2 lots x 1 or 5 ms latency; every 100 ms, L2, power-2 probabilistic queue, as
``bench_replay.py``), run three ways in the same process after a warm-up that loads the kernels:

- ``replay_many``: one call over the file's path (read, parsed and converted once);
- ``separate_from_path``: 20 ``vt.replay`` calls over the path, what a loop over the settings does;
- ``separate_from_batch``: 20 ``vt.replay`` calls over one ``UpdateBatch`` converted by hand
  beforehand (conversion included once), the best a user could do without ``replay_many``
  (though not the same runs: a batch spans its own first to last event, the file also its quotes').

Best of ``--repeat`` rounds, the order of the three reversed every other round (the machine's
load drifts).

The figures count only if every row of ``replay_many`` has the output hash of its separate run.

    python benchmarks/bench_replay_many.py
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ROOT / "data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"
GRID: dict[str, list[Any]] = {"offset": [1, 2, 3, 4, 5], "lots": [1, 2], "latency": ["1ms", "5ms"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2, help="rounds, each way's order reversed every other round")
    args = ap.parse_args()
    import vtrade as vt
    from vtrade.core.events import Quote
    from vtrade.execution.queue import PowerProbQueueFunc, ProbQueue
    from vtrade.market import open_feed
    from vtrade.market.l2book import UpdateBatch
    from vtrade.strategies import market_maker

    common: dict[str, Any] = {"every": "100ms", "realism": "L2", "queue": ProbQueue(PowerProbQueueFunc(2))}
    sets = [dict(zip(GRID, combo, strict=True)) for combo in itertools.product(*GRID.values())]

    def separate(feed: Any, p: dict[str, Any], **extra: Any) -> str:
        strategy = functools.partial(market_maker, offset=p["offset"], lots=p["lots"])
        return vt.replay(feed, strategy=strategy, latency=p["latency"], **common, **extra).output_hash()

    feed = open_feed(CAPTURE)
    vt.replay(itertools.islice(feed, 5000), instrument=feed.instrument, strategy=market_maker, **common)  # warm-up

    out: dict[str, Any] = {}

    def many() -> None:
        out["runs"] = vt.replay_many(CAPTURE, market_maker, params=GRID, **common)

    def from_path() -> None:
        out["from_path"] = [separate(CAPTURE, p) for p in sets]

    def from_batch() -> None:
        batch = UpdateBatch.from_events((e for e in feed if not isinstance(e, Quote)), trades=True)
        out["from_batch"] = [separate(batch, p, instrument=feed.instrument) for p in sets]

    ways = {"replay_many": many, "separate_from_path": from_path, "separate_from_batch": from_batch}
    best = dict.fromkeys(ways, float("inf"))
    cpu = dict.fromkeys(ways, float("inf"))  # all single-threaded: CPU time is less at the mercy of other load
    for r in range(args.repeat):
        for name in list(ways)[:: -1 if r % 2 else 1]:
            t0, c0 = time.perf_counter(), time.process_time()
            ways[name]()
            best[name] = min(best[name], time.perf_counter() - t0)
            cpu[name] = min(cpu[name], time.process_time() - c0)
    many_s, path_s, batch_s = best["replay_many"], best["separate_from_path"], best["separate_from_batch"]
    runs, from_path, from_batch = out["runs"], out["from_path"], out["from_batch"]

    print(json.dumps({
        "benchmark": "bench_replay_many",
        "input": CAPTURE.name,
        "parameter_sets": len(sets),
        "rounds": args.repeat,
        "grid": GRID,
        "settings": {k: str(v) for k, v in common.items()},
        "replay_many_seconds": round(many_s, 3),
        "separate_from_path_seconds": round(path_s, 3),
        "separate_from_batch_seconds": round(batch_s, 3),
        "ratio_separate_from_path_over_replay_many": round(path_s / many_s, 2),
        "ratio_separate_from_batch_over_replay_many": round(batch_s / many_s, 2),
        "cpu_seconds": {k: round(v, 3) for k, v in cpu.items()},
        "cpu_ratio_separate_from_path_over_replay_many": round(cpu["separate_from_path"] / cpu["replay_many"], 2),
        "cpu_ratio_separate_from_batch_over_replay_many": round(cpu["separate_from_batch"] / cpu["replay_many"], 2),
        "replay_many_seconds_per_run": round(many_s / len(sets), 3),
        "separate_from_path_seconds_per_run": round(path_s / len(sets), 3),
        "fills_range": [int(runs.fills.min()), int(runs.fills.max())],
        "rows_identical_to_separate_runs": runs.output_hash.tolist() == from_path,
        "batch_runs_identical_to_path_runs": from_batch == from_path,
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
