"""Throughput of the feed readers, the synthetic market and the journal, as one JSON object.

These figures used to be timed assertions inside tests (a flaky test on a loaded machine);
here they are measured, each next to a peer run on the same input in the same process where
one exists, so the ratio holds on a noisy machine:

- Lean second quote bars (144,886 rows) and TAQ quote ticks (1,052,444 rows) through vtrade's
  streaming readers (exact integer ticks, validation, NBBO) vs ``pandas.read_csv`` of the same
  file (floats, no checks): rows per second and vtrade / pandas;
- the synthetic order-flow market: events per second (no peer);
- the DuckDB journal: records appended per second in one call (no peer).

    python benchmarks/bench_feeds.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from vtrade.core.events import Trade, encode
from vtrade.market.feeds.lean import LeanQuoteBars
from vtrade.market.feeds.taq import TaqNbbo
from vtrade.market.synthetic import SyntheticMarket
from vtrade.runtime.bus import Record
from vtrade.runtime.journal import Journal

DATA = Path(__file__).resolve().parent.parent / "data"
SECOND_QUOTES = DATA / "intraday/lean_second_quote_bars_SPY.csv.gz"
TICK_QUOTES = DATA / "taq/lean_tick_quotes_IBM_BAC.csv.gz"


def best_rate(work: Callable[[], int], repeat: int) -> float:
    """The best of ``repeat`` runs of ``work`` (which returns how many items it did), per second."""
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        n = work()
        best = max(best, n / (time.perf_counter() - start))
    return best


def reader_vs_pandas(path: Path, consume: Callable[[], object], repeat: int) -> dict[str, float]:
    """Rows of ``path`` per second through ``consume`` (a whole pass of our reader) and through pandas."""
    rows = len(pd.read_csv(path))

    def ours_pass() -> int:
        consume()
        return rows

    ours = best_rate(ours_pass, repeat)
    peer = best_rate(lambda: len(pd.read_csv(path)), repeat)
    return {"rows": rows, "vtrade_rows_per_s": round(ours), "pandas_rows_per_s": round(peer),
            "ratio_vs_pandas": round(ours / peer, 3)}  # fmt: skip


def synthetic_rate(repeat: int) -> float:
    m = SyntheticMarket("SPY", seed=1)
    m.step(20_000)  # warm up (JIT cache load, allocator)
    return best_rate(lambda: len(m.step(200_000)), repeat)


def journal_rate(repeat: int) -> float:
    t0 = 1_700_000_000_000_000_000
    payloads = [encode(Trade(t0 + i, t0 + i, "SPY", i, 10_000 + i % 7, 100)) for i in range(1000)]
    recs = [Record("market", i % 4, i // 4, "SPY", payloads[i % 1000], t0 + i) for i in range(100_000)]

    def append() -> int:
        with Journal() as j:
            return j.append(recs)

    return best_rate(append, repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    repeat = ap.parse_args().repeat
    out = {
        "python": platform.python_version(),
        "lean_second_quote_bars": reader_vs_pandas(SECOND_QUOTES, lambda: list(LeanQuoteBars(SECOND_QUOTES)), repeat),
        "taq_nbbo": reader_vs_pandas(TICK_QUOTES, lambda: list(TaqNbbo(TICK_QUOTES)), repeat),
        "synthetic_events_per_s": round(synthetic_rate(repeat)),
        "journal_appends_per_s": round(journal_rate(repeat)),
    }  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
