"""Queue position moves only on prints whose aggressor hit our side (issue 9).

A resting buy at 99 waits behind the bids displayed there. A SELLER hitting 99 drains that
queue; a BUYER printing at 99 (lifting offers that were at 99) does not touch the bids. Prints
of unknown aggressor hit whichever resting side is at their price. Both the event-by-event
path (``step``) and the compiled batch path (``step_batch``) run the same kernel; the last
test checks they agree. XYZ: one-dollar tick, one-share lot.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from vtrade.core.events import BookDelta, BookSnapshot, Event, Side, Trade, encode
from vtrade.core.instruments import Instrument
from vtrade.execution import events as ev
from vtrade.execution.engine import EngineConfig, ExecutionEngine
from vtrade.execution.orders import OrderType, SubmitOrder, TimeInForce
from vtrade.execution.queue import PowerProbQueueFunc, ProbQueue, QueueModel, RiskAverseQueue
from vtrade.market.l2book import UpdateBatch

XYZ = Instrument("XYZ", Decimal("1"), Decimal("1"))


def engine(queue: QueueModel | None = None) -> ExecutionEngine:
    return ExecutionEngine(EngineConfig(XYZ, queue_model=queue or RiskAverseQueue()))


def snap(ts: int, bid: tuple[int, int], ask: tuple[int, int]) -> BookSnapshot:
    return BookSnapshot(ts, ts, "XYZ", 0, [bid[0]], [bid[1]], [ask[0]], [ask[1]])


def bids(ts: int, price: int, size: int) -> BookDelta:
    return BookDelta(ts, ts, "XYZ", 0, [price], [size], [], [])


def trade(ts: int, price: int, size: int, aggressor: Side | None) -> Trade:
    return Trade(ts, ts, "XYZ", 0, price, size, aggressor)


def limit(ts: int, coid: str, side: Side, quantity: int, price: int) -> SubmitOrder:
    return SubmitOrder(ts, "a", coid, "XYZ", side, OrderType.LIMIT, quantity, limit_price=price, tif=TimeInForce.GTC)


def pq(out: Iterable[ev.ExecEvent]) -> list[tuple[int, int]]:
    return [(f.price, f.quantity) for f in out if isinstance(f, ev.OrderFilled)]


def test_a_buyers_print_at_our_bid_does_not_advance_a_resting_buy() -> None:
    eng = engine()
    eng.step(snap(1, (99, 500), (101, 300)))
    eng.step(limit(2, "b", Side.BUY, 100, 99))  # front 500
    assert eng.step(trade(3, 99, 400, Side.BUY)) == []  # wrong side: front stays 500
    # A seller's 550 at 99: 500 drain the front, 550 − 500 = 50 fill us. (Had the buyer's 400
    # counted, the front would have been 100 and this print would fill all 100.)
    assert pq(eng.step(trade(4, 99, 550, Side.SELL))) == [(99, 50)]


def test_a_sellers_print_at_our_ask_does_not_advance_a_resting_sell() -> None:
    eng = engine()
    eng.step(snap(1, (99, 500), (101, 300)))
    eng.step(limit(2, "s", Side.SELL, 100, 101))  # front 300
    assert eng.step(trade(3, 101, 250, Side.SELL)) == []  # wrong side: front stays 300
    # A buyer's 350 at 101: 300 drain the front, 50 fill us.
    assert pq(eng.step(trade(4, 101, 350, Side.BUY))) == [(101, 50)]


def test_a_wrong_side_print_does_not_explain_the_next_depth_decrease() -> None:
    # ProbQueue(power 2): a decrease the prints at our price do not explain is cancels, 90% of
    # which the model puts ahead of us here. A buyer's print at our bid explains nothing.
    eng = engine(ProbQueue(PowerProbQueueFunc(2)))
    eng.step(snap(1, (99, 300), (101, 100)))
    eng.step(limit(2, "q", Side.BUY, 50, 99))  # front 300
    eng.step(bids(3, 99, 400))  # 100 join behind: back 100
    assert eng.step(trade(4, 99, 100, Side.BUY)) == []  # wrong side: traded since update stays 0
    # 400 → 300: chg = 400 − 300 − 0 = 100 cancels; p(behind) = 100² / (100² + 300²) = 0.1, so the
    # front loses (1 − 0.1)·100 = 90 → 210. (Counted as traded, chg would be 0 and front 300.)
    eng.step(bids(5, 99, 300))
    (f,) = [e for e in eng.step(trade(6, 99, 215, Side.SELL)) if isinstance(e, ev.OrderFilled)]
    assert (f.quantity, f.leaves, f.queue_ahead) == (5, 45, 300)  # 215 − 210 = 5


def test_unknown_aggressor_hits_whichever_resting_side_is_at_its_price() -> None:
    eng = engine()
    eng.step(snap(1, (99, 500), (101, 300)))
    eng.step(limit(2, "b", Side.BUY, 100, 99))  # front 500
    eng.step(limit(3, "s", Side.SELL, 100, 101))  # front 300
    assert pq(eng.step(trade(4, 99, 530, None))) == [(99, 30)]  # 530 − 500
    assert pq(eng.step(trade(5, 101, 320, None))) == [(101, 20)]  # 320 − 300


def test_a_print_through_our_price_fills_us_whoever_the_aggressor() -> None:
    eng = engine()
    eng.step(snap(1, (99, 500), (101, 300)))
    eng.step(limit(2, "b", Side.BUY, 100, 99))
    # A buyer at 98, below our 99 bid: whoever sold at 98 would have met our 99 first.
    assert pq(eng.step(trade(3, 98, 1, Side.BUY))) == [(99, 100)]


def _script() -> list[Event]:
    return [
        snap(1, (99, 500), (101, 300)),
        limit(2, "b", Side.BUY, 100, 99),
        limit(2, "s", Side.SELL, 100, 101),
        trade(3, 99, 400, Side.BUY),
        trade(4, 101, 200, Side.SELL),
        trade(5, 99, 520, Side.SELL),
        trade(6, 101, 330, None),
        bids(7, 99, 100),
        trade(8, 99, 150, Side.SELL),
    ]


def test_step_and_step_batch_agree_on_aggressor_filtering() -> None:
    script = _script()
    one = engine()
    stepped = [encode(e) for x in script for e in one.step(x)]
    batched = engine()
    out = [encode(e) for x in script[:3] for e in batched.step(x)]
    batch = UpdateBatch.from_events(script[3:], trades=True)  # every market event after the orders
    e, n = 0, len(script) - 3
    while e < n:
        e, got = batched.step_batch(batch, e, n)
        out += [encode(g) for g in got]
    assert out == stepped
    # b: the buyer's 400 is ignored; the seller's 520 − 500 = 20, then 150 with the front at 0: the
    # 80 left. s: the seller's 200 is ignored; the unknown 330 − 300 = 30.
    b, s = one.order("a", "b"), one.order("a", "s")
    assert b is not None and s is not None
    assert (b.filled, s.filled) == (100, 30)
