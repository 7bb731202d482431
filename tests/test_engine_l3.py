"""The L3 (order-by-order) rung of the execution engine: a simulated limit order knows exactly
which real orders are ahead of it and fills when they are gone and the next execution at its
price would reach it.

The LOBSTER test works out the expected fill from the message and orderbook files themselves,
read here with ``csv`` and ``gzip`` (independently of the feed reader and of the engine): the
orders resting at our price when we join are ahead; cancels and executions of those orders drain
what is ahead; orders that join later are behind us and never count.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from vtrade.core.events import BookSnapshot, Event, OrderAdded, OrderCancelled, OrderDeleted, OrderExecuted, Side
from vtrade.core.instruments import Instrument
from vtrade.execution import events as ev
from vtrade.execution.engine import EngineConfig, ExecutionEngine
from vtrade.execution.orders import Liquidity, OrderType, SubmitOrder, TimeInForce
from vtrade.market.feeds.lobster import lobster_instrument, read_lobster

FIXTURES = Path(__file__).parent / "fixtures" / "lobster"
STEM = "AAPL_2012-06-21_34200000_57600000"
MESSAGES = FIXTURES / f"{STEM}_message_10.first999.csv.gz"
ORDERBOOK = FIXTURES / f"{STEM}_orderbook_10.first999.csv.gz"
RAW_PER_TICK = 50  # LOBSTER prices are USD x 10,000; the feed's AAPL tick is $0.005 = 50 raw


@dataclass(frozen=True)
class Msg:
    number: int  # 1-based row in the message file (the feed's ``seq``)
    kind: int  # 1 add, 2 partial cancel, 3 delete, 4 visible execution, 5 hidden, 6 cross, 7 halt
    order_id: int
    size: int
    price: int  # raw
    direction: int  # 1 buy, -1 sell


def _messages() -> list[Msg]:
    with gzip.open(MESSAGES, "rt", newline="") as f:
        return [Msg(i, int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5])) for i, r in enumerate(csv.reader(f), 1)]


def _orderbook() -> list[list[int]]:
    with gzip.open(ORDERBOOK, "rt", newline="") as f:
        return [[int(x) for x in r] for r in csv.reader(f)]


@dataclass(frozen=True)
class Expected:
    price: int  # raw
    level_size: int  # lots at our price when we join: all of them are ahead of us
    fill_at: int  # message number of the first fill
    quantity: int


def _expected_first_fill(join_after: int, quantity: int) -> Expected:
    """Where a buy of ``quantity`` joining the best bid right after message ``join_after`` first fills."""
    msgs, rows = _messages(), _orderbook()
    row = rows[join_after - 1]  # the visible book after message ``join_after``
    price = row[2]  # best bid (columns: ask_px, ask_sz, bid_px, bid_sz per level)
    level_size = row[3]
    # Orders added in the file and still resting at our price: known orders ahead of us.
    alive: dict[int, tuple[int, int, int]] = {}
    for m in msgs[:join_after]:
        if m.kind == 1:
            alive[m.order_id] = (m.direction, m.price, m.size)
        elif m.kind in (2, 3, 4) and m.order_id in alive:
            d, p, s = alive[m.order_id]
            if s == m.size:
                del alive[m.order_id]
            else:
                alive[m.order_id] = (d, p, s - m.size)
    ahead = {oid: s for oid, (d, p, s) in alive.items() if d == 1 and p == price}
    # The rest of the level rested before the file starts: anonymous, also ahead of us.
    anonymous = level_size - sum(ahead.values())
    assert anonymous >= 0
    behind: set[int] = set()
    for m in msgs[join_after:]:
        best_ask = rows[m.number - 1][0]
        assert best_ask > price, "the ask crossed our bid before the queue reached us: pick another scenario"
        if m.direction != 1 or m.price != price or m.kind not in (1, 2, 3, 4):
            continue
        if m.kind == 1:
            behind.add(m.order_id)  # joins behind us
            continue
        left = sum(ahead.values()) + anonymous
        if m.kind == 4 and m.size > left:
            return Expected(price, level_size, m.number, min(m.size - left, quantity))
        if m.order_id in behind:
            continue  # an order behind us leaving does not move us
        if m.order_id in ahead:
            ahead[m.order_id] -= m.size
            if ahead[m.order_id] == 0:
                del ahead[m.order_id]
        else:
            anonymous -= m.size
    raise AssertionError("no fill in the sample")


JOIN_AFTER = 359  # a new 39-lot bid at $585.48 makes it the best bid, 202 lots deep


def test_expected_fill_worked_out_from_the_files() -> None:
    # Written out once by hand from the files, so the helper above is itself checked:
    # after message 359 the best bid $585.48 (5854800 raw) holds seven known orders
    # 16818091:7, 16818125:53, 16818137:52, 16818156:1, 16818175:5, 16818181:45, 16818182:39 = 202.
    # Deletes at messages 368, 369, 370, 371, 374, 381 remove 7+53+52+1+5+45 = 163 → 39 left;
    # message 392 executes 16818182's 39 → 0 left; message 393 executes 27 lots of 16818198
    # (which joined behind us at message 360): those 27 would have hit us first.
    assert _expected_first_fill(JOIN_AFTER, 100) == Expected(5_854_800, 202, 393, 27)


def test_lobster_simulated_bid_fills_when_the_orders_ahead_are_gone() -> None:
    expected = _expected_first_fill(JOIN_AFTER, 100)
    inst = lobster_instrument("AAPL")
    eng = ExecutionEngine(EngineConfig(inst, realism="L3"))
    price = expected.price // RAW_PER_TICK
    submitted = False
    fills: list[tuple[int, ev.OrderFilled]] = []
    last_ts = 0
    for e in read_lobster(MESSAGES):
        if not submitted and e.seq > JOIN_AFTER:
            # After message 359 and any reveal that came with it.
            out = eng.step(SubmitOrder(last_ts, "me", "b1", inst.symbol, Side.BUY, OrderType.LIMIT, 100,
                                       limit_price=price, tif=TimeInForce.GTC))  # fmt: skip
            assert [type(o) for o in out] == [ev.OrderAccepted]
            submitted = True
        out = eng.step(e)
        last_ts = e.ts
        fills += [(e.seq, f) for f in out if isinstance(f, ev.OrderFilled)]
        if submitted and e.seq >= expected.fill_at:
            break
    assert submitted
    assert len(fills) == 1, fills  # nothing before message 393
    seq, f = fills[0]
    assert seq == expected.fill_at
    assert (f.price, f.quantity, f.leaves) == (price, expected.quantity, 100 - expected.quantity)
    assert f.liquidity is Liquidity.MAKER
    assert f.queue_ahead == expected.level_size


def test_lobster_whole_sample_replays_through_the_l3_engine() -> None:
    eng = ExecutionEngine(EngineConfig(lobster_instrument("AAPL"), realism="L3", l3_window=10))
    n = 0
    for e in read_lobster(MESSAGES):
        eng.step(e)
        n += 1
    assert n >= 999


# ---------------------------------------------------------------------------- synthetic L3
XYZ = Instrument("XYZ", Decimal("1"), Decimal("1"))


def _l3(*events: Event) -> tuple[ExecutionEngine, list[ev.ExecEvent]]:
    eng = ExecutionEngine(EngineConfig(XYZ, realism="L3"))
    out: list[ev.ExecEvent] = []
    for e in events:
        out += eng.step(e)
    return eng, out


def _snap(ts: int, bid: tuple[int, int], ask: tuple[int, int]) -> BookSnapshot:
    return BookSnapshot(ts, ts, "XYZ", 0, [bid[0]], [bid[1]], [ask[0]], [ask[1]])


def _buy(ts: int, qty: int, price: int) -> SubmitOrder:
    return SubmitOrder(ts, "me", "b", "XYZ", Side.BUY, OrderType.LIMIT, qty, limit_price=price, tif=TimeInForce.GTC)


def test_l3_fifo_partial_cancel_keeps_place_and_behind_orders_do_not_count() -> None:
    eng, _ = _l3(
        _snap(1, (50, 100), (60, 100)),  # 100 anonymous lots at 50
        OrderAdded(2, 2, "XYZ", 0, 1, Side.BUY, 50, 30),
        OrderAdded(3, 3, "XYZ", 0, 2, Side.BUY, 50, 20),
    )
    (acc,) = eng.step(_buy(4, 10, 50))  # ahead: 100 + 30 + 20 = 150
    assert isinstance(acc, ev.OrderAccepted)
    steps: list[Event] = [
        OrderAdded(5, 5, "XYZ", 0, 3, Side.BUY, 50, 40),  # behind us
        OrderCancelled(6, 6, "XYZ", 0, 1, Side.BUY, 50, 10),  # order 1 keeps its place: 140 ahead
        OrderExecuted(7, 7, "XYZ", 0, 900, Side.BUY, 50, 100),  # an order we never saw: anonymous, 40 ahead
        OrderExecuted(8, 8, "XYZ", 0, 1, Side.BUY, 50, 20),  # order 1 gone: 20 ahead
        OrderDeleted(9, 9, "XYZ", 0, 2, Side.BUY, 50, 20),  # order 2 gone: nothing ahead
    ]
    for e in steps:
        assert eng.step(e) == [], e
    # Order 3 (behind us) trades 15: the first 10 would have been ours.
    out = eng.step(OrderExecuted(10, 10, "XYZ", 0, 3, Side.BUY, 50, 15))
    (f,) = out
    assert isinstance(f, ev.OrderFilled)
    assert (f.price, f.quantity, f.leaves, f.queue_ahead, f.liquidity) == (50, 10, 0, 150, Liquidity.MAKER)


def test_l3_execution_that_exactly_clears_the_queue_does_not_fill_us() -> None:
    eng, _ = _l3(_snap(1, (50, 100), (60, 100)), OrderAdded(2, 2, "XYZ", 0, 1, Side.BUY, 50, 30))
    eng.step(_buy(3, 50, 50))  # ahead: 100 anonymous + order 1's 30 = 130
    assert eng.step(OrderAdded(4, 4, "XYZ", 0, 2, Side.BUY, 50, 80)) == []  # behind us
    assert eng.step(OrderExecuted(5, 5, "XYZ", 0, 900, Side.BUY, 50, 100)) == []  # 30 ahead
    assert eng.step(OrderExecuted(6, 6, "XYZ", 0, 1, Side.BUY, 50, 30)) == []  # exactly the 30: 0 ahead
    # Order 2 (behind us) trades 70: all 50 of ours would have gone first.
    (f,) = eng.step(OrderExecuted(7, 7, "XYZ", 0, 2, Side.BUY, 50, 70))
    assert isinstance(f, ev.OrderFilled)
    assert (f.quantity, f.leaves, f.queue_ahead) == (50, 0, 130)


def test_l3_cancel_of_an_order_behind_us_does_not_advance_us() -> None:
    eng, _ = _l3(_snap(1, (50, 100), (60, 100)))
    eng.step(_buy(2, 10, 50))  # 100 anonymous lots ahead
    assert eng.step(OrderAdded(3, 3, "XYZ", 0, 7, Side.BUY, 50, 50)) == []  # behind us
    assert eng.step(OrderDeleted(4, 4, "XYZ", 0, 7, Side.BUY, 50, 50)) == []  # leaves: still 100 ahead
    # 60 of the anonymous 100 trade: 40 still ahead, so no fill (the engine counts 100 − 50 − 60 < 0
    # and fills 10).
    assert eng.step(OrderExecuted(5, 5, "XYZ", 0, 900, Side.BUY, 50, 60)) == []
    assert eng.step(OrderAdded(6, 6, "XYZ", 0, 8, Side.BUY, 50, 50)) == []  # behind us
    assert eng.step(OrderExecuted(7, 7, "XYZ", 0, 901, Side.BUY, 50, 40)) == []  # the last 40 ahead
    (f,) = eng.step(OrderExecuted(8, 8, "XYZ", 0, 8, Side.BUY, 50, 15))  # 10 of these were ours
    assert isinstance(f, ev.OrderFilled) and (f.quantity, f.leaves) == (10, 0)


def test_l3_print_through_our_price_fills_us_at_our_price() -> None:
    from vtrade.core.events import Trade

    eng, _ = _l3(_snap(1, (50, 100), (60, 100)))
    eng.step(_buy(2, 10, 50))  # 100 lots ahead at 50
    assert eng.step(Trade(3, 3, "XYZ", 0, 50, 5)) == []  # a print AT our price: the queue decides (L3: executions)
    # A hidden execution at 49, below our bid: the seller would have hit our 50 bid first.
    (f,) = eng.step(Trade(4, 4, "XYZ", 0, 49, 5))
    assert isinstance(f, ev.OrderFilled)
    assert (f.price, f.quantity, f.model, f.liquidity) == (50, 10, "trade through", Liquidity.MAKER)
