"""Level updates per second through the L2 book on the Binance USD-M capture.

Prints one JSON object. Parsing (file -> events) and flattening (events -> arrays) are timed
and reported separately; the book figures time only applying updates. The peer is a
plain-Python dict-per-side book (``d[price] = size``, ``pop`` on 0) run on the same updates in
the same process, so the ratio holds on a noisy machine.

``l2_one_call_*``: the whole capture in ONE kernel call (``L2Book.apply_range``, how the
matching engine applies market data between two of our orders' fills), on a new book ("cold":
its price windows are sized from the data first, included in the time) and on a book whose
windows are already in place ("wide"). Before the windows were fitted to the data, a cold
call ran at about half the wide speed: its windows started narrow and could only widen between calls.

    python benchmarks/bench_books.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from vtrade.core.events import BookDelta, BookSnapshot
from vtrade.market.feeds import open_feed
from vtrade.market.l2book import L2Book, UpdateBatch

CAPTURE = Path(__file__).resolve().parent.parent / "data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"


def dict_baseline(batch: UpdateBatch) -> tuple[dict[int, int], dict[int, int]]:
    """The plain-Python peer: one dict per side, absolute sizes, 0 deletes."""
    side, px, sz = batch.side.tolist(), batch.px.tolist(), batch.sz.tolist()
    ends, kinds = batch.ends.tolist(), batch.kinds.tolist()
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    start = 0
    for kind, end in zip(kinds, ends, strict=True):
        if kind == 1:
            bids.clear()
            asks.clear()
        for u in range(start, end):
            book = bids if side[u] > 0 else asks
            if sz[u]:
                book[px[u]] = sz[u]
            else:
                book.pop(px[u], None)
        start = end
    return bids, asks


def best_of(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    t0 = time.perf_counter()
    events = list(open_feed(CAPTURE))
    parse_s = time.perf_counter() - t0
    book_events = [e for e in events if isinstance(e, BookSnapshot | BookDelta)]
    t0 = time.perf_counter()
    batch = UpdateBatch.from_events(book_events)
    flatten_s = time.perf_counter() - t0
    n = batch.n_updates

    L2Book("warm-up").apply_batch(batch)  # JIT compile (cached on disk after the first run)
    batch_s = best_of(lambda: L2Book("b").apply_batch(batch), args.repeat)
    top10_s = best_of(lambda: L2Book("b").apply_batch(batch, record_depth=10), args.repeat)

    def per_event() -> None:
        book = L2Book("e")
        for ev in book_events:
            book.apply(ev)

    def one_call(book: L2Book) -> None:
        book.apply_range(batch, 0, batch.n_events)

    one_call_cold_s = best_of(lambda: one_call(L2Book("cold")), args.repeat)
    wide = L2Book("wide")
    one_call(wide)

    def again() -> None:
        wide.clear()
        one_call(wide)

    one_call_wide_s = best_of(again, args.repeat)

    event_s = best_of(per_event, max(1, args.repeat // 3))
    baseline_s = best_of(lambda: dict_baseline(batch), args.repeat)

    # The figures only count if both books end in the same state.
    book = L2Book("check")
    book.apply_batch(batch)
    bids, asks = dict_baseline(batch)
    from vtrade.core.events import Side

    same = all(
        dict(zip(*(a.tolist() for a in b.levels(s)), strict=True)) == ref
        for b in (book, wide)
        for s, ref in ((Side.BUY, bids), (Side.SELL, asks))
    )
    print(json.dumps({
        "benchmark": "bench_books",
        "input": CAPTURE.name,
        "machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}",
        "events": len(events),
        "book_events": batch.n_events,
        "level_updates": n,
        "parse_seconds": round(parse_s, 3),
        "parse_events_per_s": round(len(events) / parse_s),
        "flatten_seconds": round(flatten_s, 4),
        "l2_batch_updates_per_s": round(n / batch_s),
        "l2_batch_with_top10_updates_per_s": round(n / top10_s),
        "l2_one_call_cold_updates_per_s": round(n / one_call_cold_s),
        "l2_one_call_wide_updates_per_s": round(n / one_call_wide_s),
        "ratio_one_call_cold_vs_wide": round(one_call_wide_s / one_call_cold_s, 2),
        "l2_per_event_api_updates_per_s": round(n / event_s),
        "dict_baseline_updates_per_s": round(n / baseline_s),
        "ratio_batch_vs_baseline": round(baseline_s / batch_s, 2),
        "ratio_batch_top10_vs_baseline": round(baseline_s / top10_s, 2),
        "ratio_one_call_cold_vs_baseline": round(baseline_s / one_call_cold_s, 2),
        "ratio_per_event_vs_baseline": round(baseline_s / event_s, 2),
        "final_books_identical": same,
        "final_levels": {"bids": len(bids), "asks": len(asks)},
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
