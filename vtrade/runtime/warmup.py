"""Compile vtrade's Numba kernels once, into the on-disk cache, so no user waits for them.

Numba caches compiled kernels next to their modules (``cache=True``). The first process to
use a kernel compiles it (seconds); every later process loads it (milliseconds). ``make``
runs this right after installing, so even the first ``make demo`` starts fast.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent.parent / "data"
CAPTURE = DATA / "crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"


def warm_up() -> float:
    """Run each compiled path once on a little real data; returns the seconds it took."""
    from vtrade.core.events import Side
    from vtrade.core.instruments import BINANCE_BTCUSDT_USDM
    from vtrade.execution.queue import PowerProbQueueFunc, ProbQueue
    from vtrade.game.leaderboard import Board, EmbeddedLeaderboards
    from vtrade.market.feeds import open_feed
    from vtrade.market.l2book import L2Book, UpdateBatch
    from vtrade.market.synthetic import SyntheticMarket
    from vtrade.runtime.replay import replay
    from vtrade.strategies import market_maker

    started = time.perf_counter()
    events = list(itertools.islice(open_feed(CAPTURE), 3000))

    replay(events, instrument=BINANCE_BTCUSDT_USDM, strategy=market_maker, every="100ms", latency="1ms",
           queue=ProbQueue(PowerProbQueueFunc(2)))  # fmt: skip
    book = L2Book("warm-up")
    book.apply_batch(UpdateBatch.from_events(events), record_depth=5)
    book.top(5)
    book.depth(Side.BUY, 10)
    list(itertools.islice(iter(SyntheticMarket("SYN", seed=0)), 2000))
    # The leaderboard kernels: every write and read path (a board of 300 grows its store too).
    boards, xp = EmbeddedLeaderboards(), Board("xp")
    boards.set_many(xp, [f"s{i}" for i in range(300)], list(range(300)), 0)
    boards.set(xp, "s1", 500, 10**9)
    boards.add(xp, "s2", 1, 10**9)
    boards.remove(xp, "s3")
    boards.union(xp.week(0), [xp])
    boards.top(xp, 10), boards.around(xp, "s1", 5), boards.score(xp, "s1")
    return time.perf_counter() - started
