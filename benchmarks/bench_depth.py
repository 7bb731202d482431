"""Cost of one step of the intraday universe, with and without its depth: ``step()`` + ``quotes()``
over every stock, and ``snapshot()`` (the full book of one stock, as the live market restates it
for each awake universe venue every slice).

Prints one JSON object (microseconds, medians over ``--repeat`` runs of ``--steps`` steps).

    PYTHONPATH=$PWD python benchmarks/bench_depth.py [--steps 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

from vtrade.core.instruments import us_equity
from vtrade.market.feeds.daily import load_universe
from vtrade.market.intraday import IntradayUniverse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    frame = load_universe(start="2017-08-15", end="2017-10-10").frame
    u = IntradayUniverse.from_frame(frame, start="2017-10-02", seed=3)
    syms = list(u.tickers[:20])
    insts = {s: us_equity(s) for s in syms}
    step_us, snap_us, open_ms = [], [], []
    for r in range(args.repeat):
        t0 = time.perf_counter()
        u.open_day(r % len(u.dates), steps=23_400)
        open_ms.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            u.step()
            u.quotes()
        step_us.append((time.perf_counter() - t0) / args.steps * 1e6)
        t0 = time.perf_counter()
        n = 0
        for _ in range(args.steps // 20):
            u.step()
            for s in syms:
                u.snapshot(s, insts[s], ts=1)
                n += 1
        snap_us.append(((time.perf_counter() - t0) - (args.steps // 20) * step_us[-1] / 1e6) / n * 1e6)
    print(json.dumps({
        "stocks": len(u.tickers),
        "step_plus_quotes_us": round(statistics.median(step_us), 1),
        "snapshot_us": round(statistics.median(snap_us), 1),
        "open_day_ms": round(statistics.median(open_ms), 2),
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
