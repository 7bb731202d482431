"""L2 book: hand-computed cases, crossing, bad input, and a seeded property test vs a dict book."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from vtrade.core.errors import CrossedBookError
from vtrade.core.events import BookDelta, BookSnapshot, Quote, Side, Trade
from vtrade.market import _l2kernels as k
from vtrade.market.l2book import L2Book, UpdateBatch, quote_snapshot


def make_book() -> L2Book:
    book = L2Book("T")
    book.apply_levels(bids=[(100, 5), (99, 7), (97, 1)], asks=[(101, 3), (102, 4), (105, 9)], snapshot=True)
    return book


def test_best_top_depth_and_removal() -> None:
    book = make_book()
    assert book.best_bid() == (100, 5)
    assert book.best_ask() == (101, 3)
    assert book.spread() == 1 and book.mid2() == 201
    top = book.top(2)
    assert top.bid_px.tolist() == [100, 99] and top.bid_sz.tolist() == [5, 7]
    assert top.ask_px.tolist() == [101, 102] and top.ask_sz.tolist() == [3, 4]
    assert book.depth(Side.BUY, within=0) == 5
    assert book.depth(Side.BUY, within=3) == 13  # 100, 99, 97
    assert book.depth(Side.SELL, within=1) == 7  # 101, 102
    book.apply_levels(bids=[(100, 0)], asks=[(101, 0), (103, 2)])
    assert book.best_bid() == (99, 7) and book.best_ask() == (102, 4)
    assert book.size_at(Side.SELL, 103) == 2 and book.size_at(Side.SELL, 104) == 0
    assert book.levels(Side.SELL)[0].tolist() == [102, 103, 105]


def test_snapshot_replaces_everything() -> None:
    book = make_book()
    book.apply(BookSnapshot(1, 1, "T", 9, [50], [1], [60], [2]))
    assert book.levels(Side.BUY)[0].tolist() == [50]
    assert book.levels(Side.SELL)[0].tolist() == [60]


def test_removing_an_absent_level_is_a_no_op() -> None:
    book = make_book()
    book.apply_levels(bids=[(98, 0)])
    assert book.n_levels(Side.BUY) == 3


def test_crossing_event_raises_names_the_event_and_changes_nothing() -> None:
    book = make_book()
    before = book.snapshot()
    ev = BookDelta(1_000, 1_000, "T", 4242, [99, 102], [1, 1], [], [])
    with pytest.raises(CrossedBookError, match=r"seq 4242.*ts 1000") as info:
        book.apply(ev)
    assert info.value.seq == 4242
    assert book.snapshot() == before


def test_crossing_in_the_middle_of_a_batch_keeps_the_good_prefix() -> None:
    book = L2Book("T")
    events = [
        BookSnapshot(1, 1, "T", 1, [100], [5], [101], [3]),
        BookDelta(2, 2, "T", 2, [99], [2], [], []),
        BookDelta(3, 3, "T", 3, [], [], [100], [1]),  # ask at the bid: crossed (locked counts)
        BookDelta(4, 4, "T", 4, [98], [1], [], []),
    ]
    with pytest.raises(CrossedBookError) as info:
        book.apply_batch(UpdateBatch.from_events(events))
    assert info.value.event_index == 2
    assert book.levels(Side.BUY)[0].tolist() == [100, 99]
    assert book.levels(Side.SELL)[0].tolist() == [101]


def test_crossed_snapshot_and_negative_size_are_rejected_before_touching_the_book() -> None:
    book = make_book()
    before = book.snapshot()
    with pytest.raises(CrossedBookError):
        book.apply(BookSnapshot(1, 1, "T", 7, [101], [1], [100], [1]))
    with pytest.raises(ValueError, match="negative level size"):
        book.apply(BookDelta(1, 1, "T", 8, [100], [-1], [], []))
    assert book.snapshot() == before


def test_locked_books_only_where_allowed() -> None:
    venue = make_book()
    with pytest.raises(CrossedBookError, match="event #0"):
        venue.apply(BookDelta(1, 1, "T", 5, [101], [1], [], []))  # bid at the ask: locked
    nbbo = L2Book("T", crossing="locked")
    nbbo.apply(quote_snapshot(Quote(1, 1, "T", 1, 100, 2, 100, 3)))  # NBBOs lock across venues
    assert nbbo.spread() == 0
    with pytest.raises(CrossedBookError, match="snapshot #0"):
        nbbo.apply(quote_snapshot(Quote(2, 2, "T", 2, 101, 2, 100, 3)))
    assert (nbbo.best_bid(), nbbo.best_ask()) == ((100, 2), (100, 3))
    consolidated = L2Book("T", crossing="crossed")
    consolidated.apply(quote_snapshot(Quote(2, 2, "T", 2, 101, 2, 100, 3)))
    assert consolidated.spread() == -1
    with pytest.raises(ValueError, match="crossing must be one of"):
        L2Book("T", crossing="sometimes")  # type: ignore[arg-type]


def test_non_book_events_are_ignored_and_quotes_convert_explicitly() -> None:
    book = make_book()
    assert book.apply(Trade(1, 1, "T", 1, 100, 1)) is False
    assert book.apply(Quote(1, 1, "T", 1, 10, 1, 11, 1)) is False
    assert book.best_bid() == (100, 5)
    book.apply(quote_snapshot(Quote(1, 1, "T", 1, 10, 4, 11, 6)))
    assert (book.best_bid(), book.best_ask(), book.n_levels(Side.BUY)) == ((10, 4), (11, 6), 1)


def test_record_depth_rows_match_top_after_each_event() -> None:
    book = L2Book("T")
    events = [
        BookSnapshot(1, 1, "T", 1, [100, 99], [5, 6], [101], [3]),
        BookDelta(2, 2, "T", 2, [100], [0], [102], [8]),
    ]
    out = book.apply_batch(UpdateBatch.from_events(events), record_depth=2)
    assert out[0].tolist() == [[100, 99], [5, 6], [101, 0], [3, 0]]
    assert out[1].tolist() == [[99, 0], [6, 0], [101, 102], [3, 8]]


def _walk(seed: int, steps: int) -> Iterator[tuple[BookDelta, dict[int, int], dict[int, int]]]:
    """A seeded random walk of deltas with far-away levels; yields each delta with the dict
    books (price -> size) it leaves, which the caller may read but not change."""
    rng = np.random.default_rng(seed)
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    mid = 10_000
    for step in range(steps):
        mid += int(rng.integers(-3, 4)) * (25 if step % 500 == 0 else 1)
        bid_px, ask_px, bid_sz, ask_sz = [], [], [], []
        for _ in range(int(rng.integers(1, 8))):
            far = rng.random() < 0.1
            dist = int(rng.integers(1, 3000 if far else 40))
            size = int(rng.integers(0, 5)) * 10
            if rng.random() < 0.5:
                bid_px.append(mid - dist)
                bid_sz.append(size)
            else:
                ask_px.append(mid + dist)
                ask_sz.append(size)
        # Keep the reference uncrossed the way a venue does: drop levels through the new quotes.
        for p in list(bids):
            if p >= mid:
                bid_px.append(p)
                bid_sz.append(0)
        for p in list(asks):
            if p <= mid:
                ask_px.append(p)
                ask_sz.append(0)
        for ref, pxs, szs in ((bids, bid_px, bid_sz), (asks, ask_px, ask_sz)):
            for p, s in zip(pxs, szs, strict=True):
                if s:
                    ref[p] = s
                else:
                    ref.pop(p, None)
        yield BookDelta(step, step, "T", step, bid_px, bid_sz, ask_px, ask_sz), bids, asks


@pytest.mark.parametrize("window", [16, 64, 4096])
def test_matches_a_dict_book_through_recentres_growth_and_far_levels(window: int) -> None:
    """Exercises ladder, overflow, re-centring, growth."""
    book = L2Book("T", window=window, max_window=max(window, 1024))
    for step, (delta, bids, asks) in enumerate(_walk(7, 4000)):
        book.apply(delta)
        if step % 97 == 0 or step == 3999:
            for side, ref, rev in ((Side.BUY, bids, True), (Side.SELL, asks, False)):
                px, sz = book.levels(side)
                assert px.tolist() == sorted(ref, reverse=rev)
                assert sz.tolist() == [ref[p] for p in px.tolist()]
            top = book.top(5)
            assert top.bid_px.tolist() == sorted(bids, reverse=True)[:5]
            assert top.ask_px.tolist() == sorted(asks)[:5]
            band = 30
            if bids:
                best = max(bids)
                assert book.depth(Side.BUY, band) == sum(s for p, s in bids.items() if p >= best - band)


@pytest.mark.parametrize("max_window", [1024, 1 << 16])  # too narrow for the far levels; wide enough
def test_a_window_fitted_to_a_batch_holds_it_in_one_call_with_the_same_rows(max_window: int) -> None:
    events: list[BookDelta | BookSnapshot] = []
    for step, (delta, bids, asks) in enumerate(_walk(11, 3000)):
        events.append(delta)
        if step == 1500:  # a snapshot empties both sides: the fitted window must stay where it is
            events.append(BookSnapshot(step, step, "T", step, sorted(bids, reverse=True),
                                       [bids[p] for p in sorted(bids, reverse=True)], sorted(asks),
                                       [asks[p] for p in sorted(asks)]))  # fmt: skip
    batch = UpdateBatch.from_events(events)
    assert batch.n_updates >= 4096  # large enough for apply_batch to fit the windows itself
    # The reference: the same events in small batches, each too small to be fitted to.
    adaptive = L2Book("T", window=16, max_window=max_window)
    rows = np.concatenate([adaptive.apply_batch(batch.slice(e, min(e + 50, batch.n_events)), record_depth=8)
                           for e in range(0, batch.n_events, 50)])  # fmt: skip
    fitted = L2Book("T", window=16, max_window=max_window)
    assert np.array_equal(fitted.apply_batch(batch, record_depth=8), rows)
    # One kernel call on a fitted book: the windows neither move nor widen on the way.
    book = L2Book("T", window=16, max_window=max_window)
    book.fit(batch)
    layout = [(s.lad.shape[0], int(s.meta[0])) for s in (book._bids, book._asks)]
    scratch = book.prepare(batch, 0, batch.n_events)
    out = np.empty((batch.n_events, 4, 8), dtype=np.int64)
    assert k.apply_events(*book.kernel_arrays(), batch.kinds, batch.ends, batch.side, batch.px, batch.sz,
                          book.tolerance, scratch, out, 8) == -1  # fmt: skip
    assert [(s.lad.shape[0], int(s.meta[0])) for s in (book._bids, book._asks)] == layout
    assert np.array_equal(out, rows)
    if max_window == 1 << 16:
        assert layout[0][0] > 16 and int(book._bids.meta[k.NOV]) == 0  # every level in the ladder


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        L2Book(window=8)
    book = make_book()
    with pytest.raises(ValueError):
        book.top(-1)
    with pytest.raises(ValueError):
        book.depth(Side.BUY, within=-1)
