"""The L3 book, by hand: FIFO queues, anonymous liquidity, queue position, truncation, crossing,
and that every rejected operation leaves the book exactly as it was."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from vtrade.core.errors import CrossedBookError
from vtrade.core.events import (
    BookDelta,
    BookSnapshot,
    MarketEvent,
    OrderAdded,
    OrderCancelled,
    OrderDeleted,
    OrderExecuted,
    Side,
    Trade,
    TradingStatus,
)
from vtrade.market.l3book import L3Book, L3BookError, RestingOrder

BUY, SELL = Side.BUY, Side.SELL


def book_with_queue() -> L3Book:
    """Bids: 100 = [anon 5, #1 10, #2 20, #3 30], 99 = [#4 7]. Asks: 101 = [#5 4], 103 = [anon 8]."""
    b = L3Book("TEST")
    b.set_level(BUY, 100, 5)
    for oid, size in ((1, 10), (2, 20), (3, 30)):
        b.add(oid, BUY, 100, size)
    b.add(4, BUY, 99, 7)
    b.add(5, SELL, 101, 4)
    b.set_level(SELL, 103, 8)
    return b


def ev(cls: type[MarketEvent], seq: int, *fields: object) -> MarketEvent:
    return cls(1_000 + seq, 1_000 + seq, "TEST", seq, *fields)


# ---------------------------------------------------------------------------------- queues
def test_orders_queue_fifo_behind_anonymous_liquidity() -> None:
    b = book_with_queue()
    assert b.queue(BUY, 100) == [(1, 10), (2, 20), (3, 30)]
    assert b.anonymous_at(BUY, 100) == 5
    assert [b.queue_ahead(o) for o in (1, 2, 3, 4, 5)] == [5, 15, 35, 0, 0]
    assert b.size_at(BUY, 100) == 65
    assert b.order(2) == RestingOrder(BUY, 100, 20)
    assert b.order(42) is None


def test_partial_cancel_keeps_queue_place() -> None:
    b = book_with_queue()
    b.cancel(2, BUY, 100, 15)
    assert b.queue(BUY, 100) == [(1, 10), (2, 5), (3, 30)]
    assert (b.queue_ahead(2), b.queue_ahead(3)) == (15, 20)
    b.add(6, BUY, 100, 1)  # a later order still joins behind everyone
    assert b.queue(BUY, 100)[-1] == (6, 1)
    b.cancel(2, BUY, 100, 5)  # cancelling all that remains removes the order
    assert 2 not in b and b.queue(BUY, 100) == [(1, 10), (3, 30), (6, 1)]


def test_execute_reduces_the_front() -> None:
    b = book_with_queue()
    b.execute(-1, BUY, 100, 5)  # an order we never saw: the anonymous front trades first
    assert (b.anonymous_at(BUY, 100), b.queue_ahead(1), b.queue_ahead(3)) == (0, 0, 30)
    b.execute(1, BUY, 100, 4)
    assert b.queue(BUY, 100)[0] == (1, 6) and b.queue_ahead(2) == 6
    b.execute(1, BUY, 100, 6)
    assert 1 not in b and b.queue_ahead(2) == 0 and b.best_bid() == (100, 50)


def test_level_disappears_when_its_last_lot_goes() -> None:
    b = book_with_queue()
    b.delete(5, SELL, 101, 4)
    assert b.best_ask() == (103, 8) and b.n_levels(SELL) == 1
    b.execute(77, SELL, 103, 8)
    assert b.best_ask() is None and b.n_levels(SELL) == 0
    b.delete(4, BUY, 99)  # size may be left out for a known order
    assert b.levels(BUY) == ([100], [65])


def test_anonymous_liquidity_covers_orders_never_seen() -> None:
    b = L3Book()
    b.set_level(SELL, 200, 50)
    b.add(1, SELL, 200, 10)
    b.cancel(11, SELL, 200, 20)  # someone's pre-open order shrinks
    b.delete(12, SELL, 200, 25)
    assert (b.anonymous_at(SELL, 200), b.queue_ahead(1), b.size_at(SELL, 200)) == (5, 5, 15)
    b.set_level(SELL, 200, 40)  # an aggregate update: known orders stay, the rest is anonymous
    assert (b.anonymous_at(SELL, 200), b.queue(SELL, 200)) == (30, [(1, 10)])
    b.set_level(SELL, 200, 10)
    assert (b.anonymous_at(SELL, 200), b.queue_ahead(1)) == (0, 0)
    b.set_level(SELL, 200, 0)  # removing a level forgets its orders
    assert 1 not in b and b.best_ask() is None


def test_queue_ahead_of_an_unknown_order() -> None:
    with pytest.raises(KeyError, match="order 9 is not in the book"):
        book_with_queue().queue_ahead(9)


def test_top_is_best_first_int64() -> None:
    b = book_with_queue()
    top = b.top(5)
    assert [a.dtype for a in top] == [np.dtype(np.int64)] * 4
    assert [a.tolist() for a in top] == [[100, 99], [65, 7], [101, 103], [4, 8]]
    bid_px, bid_sz, ask_px, ask_sz = b.top(1)
    assert (bid_px.tolist(), bid_sz.tolist(), ask_px.tolist(), ask_sz.tolist()) == ([100], [65], [101], [4])
    assert [len(a) for a in L3Book().top(3)] == [0, 0, 0, 0]
    assert [len(a) for a in b.top(0)] == [0, 0, 0, 0]


def test_truncate_drops_levels_beyond_the_top_and_their_orders() -> None:
    b = book_with_queue()
    b.add(6, SELL, 104, 2)
    b.truncate(1)
    assert b.levels(BUY) == ([100], [65]) and b.levels(SELL) == ([101], [4])
    assert 4 not in b and 6 not in b and 1 in b
    b.add(4, BUY, 99, 3)  # the id is free again: it left with its level
    assert b.order(4) == RestingOrder(BUY, 99, 3)
    b.truncate(5)  # fewer levels than asked for: nothing changes
    assert b.n_levels(BUY) == 2
    b.truncate(0)
    assert b == L3Book("TEST")


def test_equality_sees_queue_order_and_anonymous_split() -> None:
    # The "book unchanged" checks below rely on this comparison being strict.
    a, b = L3Book(), L3Book()
    a.add(1, BUY, 10, 1)
    a.add(2, BUY, 10, 1)
    b.add(2, BUY, 10, 1)
    b.add(1, BUY, 10, 1)
    assert a != b  # same sizes, different queue order
    c, d = L3Book(), L3Book()
    c.set_level(BUY, 10, 3)
    c.add(1, BUY, 10, 2)
    d.set_level(BUY, 10, 4)
    d.add(1, BUY, 10, 1)
    assert c != d  # same total, different anonymous part
    e = book_with_queue()
    assert e == e.copy() and e.copy() is not e
    f = e.copy()
    f.cancel(3, BUY, 100, 1)
    assert f != e and e.size_at(BUY, 100) == 65  # the copy is independent


# ---------------------------------------------------------------------------------- crossing
@pytest.mark.parametrize(
    "op",
    [
        lambda b: b.add(9, BUY, 101, 1),  # locked counts as crossed
        lambda b: b.add(9, BUY, 102, 1),
        lambda b: b.add(9, SELL, 100, 1),
        lambda b: b.set_level(SELL, 99, 3),
        lambda b: b.apply(ev(BookDelta, 7, [101], [1], [], [])),
        lambda b: b.apply(ev(BookDelta, 7, [], [], [101, 100], [0, 2])),
        lambda b: b.apply(ev(BookSnapshot, 7, [100], [1], [100], [1])),
    ],
)
def test_a_crossing_operation_raises_and_is_not_applied(op: Callable[[L3Book], object]) -> None:
    b = book_with_queue()
    before = b.copy()
    with pytest.raises(CrossedBookError, match=r"best bid \d+ >= best ask \d+"):
        op(b)
    assert b == before


def test_crossing_event_is_named() -> None:
    b = book_with_queue()
    with pytest.raises(CrossedBookError, match=r"^OrderAdded\(seq 12, ts 1012, order 9\): add of order 9") as err:
        b.apply(ev(OrderAdded, 12, 9, BUY, 101, 1))
    assert err.value.seq == 12


def test_delta_may_clear_the_way_for_a_better_level() -> None:
    # One delta removes the 101 ask and adds a 101 bid: not crossed once both are applied.
    b = book_with_queue()
    assert b.apply(ev(BookDelta, 3, [101], [6], [101], [0]))
    assert b.best_bid() == (101, 6) and b.best_ask() == (103, 8) and 5 not in b


# ---------------------------------------------------------------------------------- rejections
REJECTED: list[tuple[str, Callable[[L3Book], object]]] = [
    ("already in the book", lambda b: b.add(2, BUY, 98, 1)),
    ("size must be positive", lambda b: b.add(9, BUY, 98, 0)),
    ("size must be positive", lambda b: b.add(9, SELL, 105, -3)),
    ("side must be", lambda b: b.add(9, 0, 98, 1)),  # type: ignore[arg-type]
    ("cancel of 21 lots of order 2, but 20 rest", lambda b: b.cancel(2, BUY, 100, 21)),
    ("rests as BUY @ 100, not BUY @ 99", lambda b: b.cancel(2, BUY, 99, 1)),
    ("rests as BUY @ 100, not SELL @ 100", lambda b: b.execute(2, SELL, 100, 1)),
    ("size must be positive", lambda b: b.cancel(2, BUY, 100, 0)),
    ("delete of 19 lots of order 2, but 20 rest", lambda b: b.delete(2, BUY, 100, 19)),
    ("delete of 21 lots of order 2, but 20 rest", lambda b: b.delete(2, BUY, 100, 21)),
    ("unknown and no size was given", lambda b: b.delete(9, BUY, 100)),
    ("only 5 anonymous lots", lambda b: b.delete(9, BUY, 100, 6)),
    ("only 5 anonymous lots", lambda b: b.cancel(9, BUY, 100, 6)),
    ("execute of 31 lots of order 3, but 30 rest", lambda b: b.execute(3, BUY, 100, 31)),
    ("only 0 anonymous lots", lambda b: b.execute(9, BUY, 99, 1)),  # level of known orders only
    ("only 0 anonymous lots", lambda b: b.execute(9, SELL, 110, 1)),  # no level at all
    ("below the 60 its known orders hold", lambda b: b.set_level(BUY, 100, 59)),
    ("negative size", lambda b: b.set_level(BUY, 100, -1)),
    ("levels must be >= 0", lambda b: b.truncate(-1)),
    ("n must be >= 0", lambda b: b.top(-1)),
    # Events are all-or-nothing: the valid first entry must not be applied either.
    ("below the 60 its known orders hold", lambda b: b.apply(ev(BookDelta, 5, [98, 100], [3, 59], [], []))),
    ("negative size -1 for SELL 104", lambda b: b.apply(ev(BookDelta, 5, [98], [3], [104], [-1]))),
    ("2 BUY prices but 1 sizes", lambda b: b.apply(ev(BookDelta, 5, [98, 97], [3], [], []))),
    ("non-positive size 0 at SELL 104", lambda b: b.apply(ev(BookSnapshot, 5, [98], [3], [104], [0]))),
    ("OrderAdded(seq 5, ts 1005, order 1): add: order 1", lambda b: b.apply(ev(OrderAdded, 5, 1, BUY, 98, 1))),
    ("OrderCancelled(seq 5, ts 1005, order 1)", lambda b: b.apply(ev(OrderCancelled, 5, 1, BUY, 100, 11))),
    ("OrderDeleted(seq 5, ts 1005, order 1)", lambda b: b.apply(ev(OrderDeleted, 5, 1, BUY, 100, 9))),
    ("OrderExecuted(seq 5, ts 1005, order 8)", lambda b: b.apply(ev(OrderExecuted, 5, 8, SELL, 101, 1))),
]


@pytest.mark.parametrize(("reason", "op"), REJECTED, ids=[r for r, _ in REJECTED])
def test_rejected_operation_leaves_the_book_unchanged(reason: str, op: Callable[[L3Book], object]) -> None:
    b = book_with_queue()
    before = b.copy()
    with pytest.raises(L3BookError) as err:
        op(b)
    assert reason in str(err.value)
    assert b == before
    assert [b.queue_ahead(o) for o in (1, 2, 3, 4, 5)] == [5, 15, 35, 0, 0]


# ---------------------------------------------------------------------------------- events
def test_apply_dispatches_order_events() -> None:
    b = L3Book("TEST")
    assert b.apply(ev(BookSnapshot, 0, [100, 99], [5, 7], [101], [4]))
    assert b.apply(ev(OrderAdded, 1, 1, BUY, 100, 10))
    assert b.apply(ev(OrderAdded, 2, 2, BUY, 100, 20))
    assert b.apply(ev(OrderCancelled, 3, 1, BUY, 100, 4))
    assert b.apply(ev(OrderExecuted, 4, 77, BUY, 100, 5))  # never seen: from the anonymous 5
    assert b.apply(ev(OrderExecuted, 5, 1, BUY, 100, 6))
    assert b.apply(ev(OrderDeleted, 6, 99, BUY, 99, 7))
    assert b.levels(BUY) == ([100], [20]) and b.queue_ahead(2) == 0
    assert b.apply(ev(BookDelta, 7, [98], [3], [102], [9]))  # reveals arrive as anonymous levels
    assert (b.anonymous_at(BUY, 98), b.anonymous_at(SELL, 102)) == (3, 9)


def test_snapshot_replaces_everything_with_anonymous_levels() -> None:
    b = book_with_queue()
    assert b.apply(ev(BookSnapshot, 1, [100], [65], [101], [4]))
    assert (b.anonymous_at(BUY, 100), b.queue(BUY, 100), 1 in b) == (65, [], False)
    assert b.n_levels(BUY) == 1 and b.best_ask() == (101, 4)


def test_snapshot_round_trip_keeps_the_aggregate_book() -> None:
    b = book_with_queue()
    snap = b.snapshot(ts=5, seq=9)
    assert (snap.bid_px, snap.bid_sz, snap.ask_px, snap.ask_sz) == ([100, 99], [65, 7], [101, 103], [4, 8])
    c = L3Book("TEST")
    c.apply(snap)
    assert [x.tolist() for x in c.top(10)] == [x.tolist() for x in b.top(10)]


@pytest.mark.parametrize(
    "event",
    [
        ev(Trade, 1, 100, 5, BUY),
        ev(TradingStatus, 1, True, "halt"),
    ],
)
def test_trades_and_status_leave_the_book_alone(event: MarketEvent) -> None:
    b = book_with_queue()
    before = b.copy()
    assert b.apply(event) is False
    assert b == before
