"""The execution engine, driven only through ``ExecutionEngine.step`` with explicit market events
and order commands. Every expected number is worked out by hand in a comment next to it.

Most tests use ``XYZ``: a one-dollar tick and a one-share lot, always open, so a price of 101
ticks is $101 and notional arithmetic stays readable. ``mid2`` is twice the mid in ticks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from decimal import Decimal

import pytest

from vtrade.core.events import Bar, BookDelta, BookSnapshot, Event, Quote, Side, Trade, encode
from vtrade.core.instruments import Instrument
from vtrade.execution import events as ev
from vtrade.execution.engine import EngineConfig, ExecutionEngine
from vtrade.execution.fees import CompositeFees, MakerTaker, PerShare, USRegulatoryFees
from vtrade.execution.orders import (
    CancelOrder,
    Liquidity,
    OrderStatus,
    OrderType,
    ReplaceOrder,
    SubmitOrder,
    TimeInForce,
)
from vtrade.execution.queue import PowerProbQueueFunc, ProbQueue, RiskAverseQueue

Code = ev.RejectCode
XYZ = Instrument("XYZ", Decimal("1"), Decimal("1"))
ACCT = "acct"
MIN = 60 * 1_000_000_000


# ---------------------------------------------------------------------------- helpers
def engine(**config: object) -> ExecutionEngine:
    return ExecutionEngine(EngineConfig(XYZ, **config))  # type: ignore[arg-type]


def snap(ts: int, bids: Sequence[tuple[int, int]], asks: Sequence[tuple[int, int]]) -> BookSnapshot:
    return BookSnapshot(ts, ts, "XYZ", 0, [p for p, _ in bids], [s for _, s in bids],
                        [p for p, _ in asks], [s for _, s in asks])  # fmt: skip


def delta(ts: int, bids: Sequence[tuple[int, int]] = (), asks: Sequence[tuple[int, int]] = ()) -> BookDelta:
    return BookDelta(ts, ts, "XYZ", 0, [p for p, _ in bids], [s for _, s in bids],
                     [p for p, _ in asks], [s for _, s in asks])  # fmt: skip


def trade(ts: int, price: int, size: int, aggressor: Side | None = None) -> Trade:
    return Trade(ts, ts, "XYZ", 0, price, size, aggressor)


def quote(ts: int, bid: tuple[int, int], ask: tuple[int, int]) -> Quote:
    return Quote(ts, ts, "XYZ", 0, bid[0], bid[1], ask[0], ask[1])


def bar(ts: int, o: int, h: int, lo: int, c: int, volume: int, recv_ts: int | None = None) -> Bar:
    return Bar(ts, ts if recv_ts is None else recv_ts, "XYZ", 0, MIN, o, h, lo, c, volume)


def order(
    ts: int,
    coid: str,
    side: Side,
    quantity: int,
    order_type: OrderType = OrderType.MARKET,
    *,
    account: str = ACCT,
    symbol: str = "XYZ",
    **kw: object,
) -> SubmitOrder:
    return SubmitOrder(ts, account, coid, symbol, side, order_type, quantity, **kw)  # type: ignore[arg-type]


def limit(ts: int, coid: str, side: Side, quantity: int, price: int, **kw: object) -> SubmitOrder:
    return order(ts, coid, side, quantity, OrderType.LIMIT, limit_price=price, **kw)


def fills(out: Iterable[ev.ExecEvent]) -> list[ev.OrderFilled]:
    return [e for e in out if isinstance(e, ev.OrderFilled)]


def pq(out: Iterable[ev.ExecEvent]) -> list[tuple[int, int]]:
    """(price, quantity) of each fill."""
    return [(f.price, f.quantity) for f in fills(out)]


def kinds(out: Iterable[ev.ExecEvent]) -> list[str]:
    return [type(e).__name__ for e in out]


def one(out: Sequence[ev.ExecEvent], cls: type[ev.ExecEvent]) -> ev.ExecEvent:
    found = [e for e in out if isinstance(e, cls)]
    assert len(found) == 1, out
    return found[0]


def run(eng: ExecutionEngine, events: Iterable[Event]) -> list[ev.ExecEvent]:
    out: list[ev.ExecEvent] = []
    for e in events:
        out += eng.step(e)
    return out


# ---------------------------------------------------------------------------- 1. walking the book
def test_market_buy_walks_levels_with_receipts() -> None:
    eng = engine()
    assert eng.step(snap(1, [(99, 200)], [(101, 300), (102, 300), (103, 500)])) == []
    out = eng.step(order(2, "m1", Side.BUY, 700))
    assert kinds(out) == ["OrderAccepted", "OrderFilled", "OrderFilled", "OrderFilled"]
    # 700 = 300 @ 101 + 300 @ 102 + 100 @ 103 (level 103 keeps 400).
    assert pq(out) == [(101, 300), (102, 300), (103, 100)]
    assert [f.leaves for f in fills(out)] == [400, 100, 0]
    for f in fills(out):
        assert f.liquidity is Liquidity.TAKER
        assert f.arrival_mid2 == 200  # 99 + 101
        assert f.queue_ahead is None
        assert f.fee == 0
        assert f.side is Side.BUY
    # slippage = (2·price − mid2) / mid2 · 10⁴: 101 → 2/200 = 100 bps, 102 → 200 bps, 103 → 300 bps.
    assert [f.slippage_bps for f in fills(out)] == pytest.approx([100.0, 200.0, 300.0])
    state = eng.order(ACCT, "m1")
    assert state is not None and state.status is OrderStatus.FILLED
    assert state.notional == 300 * 101 + 300 * 102 + 100 * 103 == 71_200
    assert eng.position(ACCT) == 700


def test_market_sell_walks_bids_downwards() -> None:
    eng = engine()
    eng.step(snap(1, [(100, 50), (99, 50), (97, 100)], [(102, 10)]))
    out = eng.step(order(2, "s1", Side.SELL, 120))
    # 120 = 50 @ 100 + 50 @ 99 + 20 @ 97; mid2 = 100 + 102 = 202.
    assert pq(out) == [(100, 50), (99, 50), (97, 20)]
    # sell slippage = −(2·p − 202)/202·10⁴: 100 → 2/202·10⁴ = 99.0099, 99 → 198.0198, 97 → 396.0396.
    assert [f.slippage_bps for f in fills(out)] == pytest.approx([99.00990099, 198.01980198, 396.03960396])
    assert eng.position(ACCT) == -120


# ---------------------------------------------------------------------------- 2. consumed liquidity
def test_consumed_liquidity_is_remembered_until_the_feed_restates_the_level() -> None:
    eng = engine()
    eng.step(snap(1, [(99, 200)], [(101, 300), (102, 300), (103, 500)]))
    assert pq(eng.step(order(2, "m1", Side.BUY, 700))) == [(101, 300), (102, 300), (103, 100)]
    # The feed still shows 300 @ 101 and 300 @ 102, but we took them: only 400 remain @ 103.
    assert pq(eng.step(order(3, "m2", Side.BUY, 200))) == [(103, 200)]
    # A delta restating 101 (size 300 again) gives that level back; 102 stays consumed and 103
    # has 500 − 100 − 200 = 200 left.
    assert eng.step(delta(4, asks=[(101, 300)])) == []
    out = eng.step(order(5, "m3", Side.BUY, 600))
    assert pq(out) == [(101, 300), (103, 200)]
    # The other 100 of m3 had nowhere to go within 500 bps (101 + 5 = 106): cancelled.
    assert one(out, ev.OrderCancelled).leaves == 100  # type: ignore[attr-defined]
    # A snapshot restates every level: the whole displayed book is available again.
    eng.step(snap(6, [(99, 200)], [(101, 300), (102, 300), (103, 500)]))
    assert pq(eng.step(order(7, "m4", Side.BUY, 350))) == [(101, 300), (102, 50)]


# ---------------------------------------------------------------------------- 3. resting limit, queue
def test_resting_limit_fills_partially_through_trades_after_the_queue_ahead() -> None:
    eng = engine()
    eng.step(snap(1, [(99, 500), (98, 200)], [(101, 300)]))
    out = eng.step(limit(2, "b1", Side.BUY, 100, 99))
    assert kinds(out) == ["OrderAccepted"]  # 99 < ask 101: rests behind the 500 displayed
    assert eng.step(trade(3, 100, 400, Side.BUY)) == []  # above our bid: not our level
    assert eng.step(trade(4, 99, 300, Side.SELL)) == []  # front 500 → 200
    out = eng.step(trade(5, 99, 250, Side.SELL))  # front 200 → 0, the 50 beyond it fill us
    (f,) = fills(out)
    assert (f.price, f.quantity, f.leaves) == (99, 50, 50)
    assert f.liquidity is Liquidity.MAKER
    assert f.queue_ahead == 500
    assert f.arrival_mid2 == 200  # 99 + 101
    assert f.slippage_bps == pytest.approx(-100.0)  # (198 − 200)/200·10⁴: better than mid
    assert eng.order(ACCT, "b1").status is OrderStatus.PARTIALLY_FILLED  # type: ignore[union-attr]
    assert pq(eng.step(trade(6, 99, 30, Side.SELL))) == [(99, 30)]  # front 0: all 30 are ours
    out = eng.step(trade(7, 99, 100, Side.SELL))
    assert pq(out) == [(99, 20)]  # only 20 left to fill
    assert eng.order(ACCT, "b1").status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert eng.position(ACCT) == 100


# ---------------------------------------------------------------------------- 4. IOC and FOK
def test_ioc_fills_what_is_there_and_cancels_the_rest() -> None:
    eng = engine()
    eng.step(snap(1, [(99, 200)], [(101, 300), (102, 300)]))
    out = eng.step(limit(2, "i1", Side.BUY, 500, 101, tif=TimeInForce.IOC))
    assert kinds(out) == ["OrderAccepted", "OrderFilled", "OrderCancelled"]
    assert pq(out) == [(101, 300)]  # the limit stops it at 101
    c = one(out, ev.OrderCancelled)
    assert c.leaves == 200 and "IOC" in c.reason  # type: ignore[attr-defined]
    assert eng.open_orders() == []
    # An IOC that is not marketable at all: cancelled with nothing filled.
    out = eng.step(limit(3, "i2", Side.BUY, 50, 100, tif=TimeInForce.IOC))
    assert kinds(out) == ["OrderAccepted", "OrderCancelled"]
    assert one(out, ev.OrderCancelled).leaves == 50  # type: ignore[attr-defined]


def test_fok_is_all_or_nothing() -> None:
    eng = engine()
    eng.step(snap(1, [(99, 200)], [(101, 300), (102, 300), (104, 1000)]))
    # 700 within 102: only 300 + 300 = 600 there → killed, nothing filled, nothing consumed.
    out = eng.step(limit(2, "f1", Side.BUY, 700, 102, tif=TimeInForce.FOK))
    assert kinds(out) == ["OrderAccepted", "OrderCancelled"]
    c = one(out, ev.OrderCancelled)
    assert c.leaves == 700 and "FOK" in c.reason  # type: ignore[attr-defined]
    assert eng.position(ACCT) == 0
    # A market FOK larger than the whole book within protection (101 + 5 = 106: 1600 lots).
    out = eng.step(order(3, "f2", Side.BUY, 1601, tif=TimeInForce.FOK))
    assert kinds(out) == ["OrderAccepted", "OrderCancelled"]
    # 600 within 102 is exactly there: filled in full, 300 @ 101 + 300 @ 102.
    out = eng.step(limit(4, "f3", Side.BUY, 600, 102, tif=TimeInForce.FOK))
    assert pq(out) == [(101, 300), (102, 300)]
    assert eng.order(ACCT, "f3").status is OrderStatus.FILLED  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- 5. stops
def test_stop_triggers_on_a_trade_at_the_stop_and_not_before() -> None:
    eng = engine()
    eng.step(snap(1, [(99, 100)], [(101, 100)]))
    out = eng.step(order(2, "s1", Side.BUY, 50, OrderType.STOP, stop_price=103))
    assert kinds(out) == ["OrderAccepted"]  # no trade yet: waits
    assert eng.step(trade(3, 101, 10)) == []
    # The market moves up: bid 102, ask 103/104.
    assert eng.step(delta(4, bids=[(102, 100)], asks=[(101, 0), (103, 30), (104, 200)])) == []
    assert eng.step(trade(5, 102, 10)) == []  # 102 < 103: not yet
    out = eng.step(trade(6, 103, 10))
    assert kinds(out) == ["OrderTriggered", "OrderFilled", "OrderFilled"]
    assert one(out, ev.OrderTriggered).stop_price == 103  # type: ignore[attr-defined]
    # As a market order: 30 @ 103 + 20 @ 104. Arrival mid is taken at the trigger: 102 + 103 = 205.
    assert pq(out) == [(103, 30), (104, 20)]
    assert [f.arrival_mid2 for f in fills(out)] == [205, 205]
    # (206 − 205)/205·10⁴ = 48.7805; (208 − 205)/205·10⁴ = 146.3415
    assert [f.slippage_bps for f in fills(out)] == pytest.approx([48.78048780, 146.34146341])


def test_stop_limit_sell_triggers_then_trades_as_a_limit() -> None:
    eng = engine()
    eng.step(snap(1, [(98, 100), (97, 100), (95, 50)], [(100, 100)]))
    assert kinds(eng.step(order(2, "sl", Side.SELL, 250, OrderType.STOP_LIMIT, stop_price=97,
                                limit_price=96, tif=TimeInForce.GTC))) == ["OrderAccepted"]  # fmt: skip
    assert eng.step(trade(3, 98, 10)) == []  # a sell stop needs a print at or below 97
    out = eng.step(trade(4, 97, 10))
    assert kinds(out)[0] == "OrderTriggered"
    # Limit 96 sells into 98 and 97 (200 lots); 95 is below the limit.
    assert pq(out)[:2] == [(98, 100), (97, 100)]
    assert all(f.liquidity is Liquidity.TAKER for f in fills(out)[:2])


def test_stop_limit_remainder_rests_and_is_not_filled_by_the_triggering_print() -> None:
    eng = engine()
    eng.step(snap(1, [(98, 100), (97, 100), (95, 50)], [(100, 100)]))
    eng.step(order(2, "sl", Side.SELL, 250, OrderType.STOP_LIMIT, stop_price=97, limit_price=96,
                   tif=TimeInForce.GTC))  # fmt: skip
    out = eng.step(trade(4, 97, 10))
    # The print at 97 happened before the order existed: the 50 lots left after taking
    # 98 and 97 rest at 96 (a new best ask), unfilled.
    assert pq(out) == [(98, 100), (97, 100)]
    assert eng.order(ACCT, "sl").leaves == 50  # type: ignore[union-attr]
    # The next print at 96 reaches it (nothing displayed ahead at 96).
    assert pq(eng.step(trade(5, 96, 80))) == [(96, 50)]


def test_trailing_stop_by_ticks_follows_the_high_and_triggers_on_the_pullback() -> None:
    eng = engine()
    eng.step(snap(1, [(100, 500)], [(105, 500)]))
    eng.step(trade(2, 100, 1))
    out = eng.step(order(3, "t1", Side.SELL, 100, OrderType.TRAILING_STOP, trail_ticks=3, tif=TimeInForce.GTC))
    assert kinds(out) == ["OrderAccepted"]  # stop = 100 − 3 = 97
    assert eng.step(trade(4, 101, 1)) == []  # high 101 → stop 98
    assert eng.step(trade(5, 104, 1)) == []  # high 104 → stop 101
    assert eng.step(trade(6, 103, 1)) == []  # 103 > 101: the stop stays at 101
    assert eng.step(trade(7, 102, 1)) == []
    out = eng.step(trade(8, 101, 1))  # 101 <= 101: triggered
    assert one(out, ev.OrderTriggered).stop_price == 101  # type: ignore[attr-defined]
    assert pq(out) == [(100, 100)]  # a market sell into the 100 bid


def test_trailing_stop_by_bps_follows_the_low_and_triggers_on_the_bounce() -> None:
    eng = engine()
    eng.step(snap(1, [(9890, 100)], [(9960, 100), (9970, 100)]))
    eng.step(trade(2, 10_000, 1))
    out = eng.step(order(3, "t2", Side.BUY, 150, OrderType.TRAILING_STOP, trail_bps=50, tif=TimeInForce.GTC))
    assert kinds(out) == ["OrderAccepted"]  # stop = ceil(10000·1.005) = 10050
    assert eng.step(trade(4, 9950, 1)) == []  # low 9950 → ceil(9999.75) = 10000
    assert eng.step(trade(5, 9900, 1)) == []  # low 9900 → ceil(9949.5) = 9950
    assert eng.step(trade(6, 9940, 1)) == []  # 9940 < 9950 and not a new low
    out = eng.step(trade(7, 9950, 1))  # 9950 >= 9950: triggered
    assert one(out, ev.OrderTriggered).stop_price == 9950  # type: ignore[attr-defined]
    assert pq(out) == [(9960, 100), (9970, 50)]


def test_trailing_stop_sent_before_any_trade_arms_on_the_first_print() -> None:
    eng = engine()
    eng.step(snap(1, [(100, 500)], [(105, 500)]))
    eng.step(order(2, "t1", Side.SELL, 100, OrderType.TRAILING_STOP, trail_ticks=2, tif=TimeInForce.GTC))
    assert eng.step(trade(3, 102, 1)) == []  # first print: stop = 100
    assert eng.step(trade(4, 104, 1)) == []  # stop = 102
    out = eng.step(trade(5, 102, 1))
    assert one(out, ev.OrderTriggered).stop_price == 102  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- 6. post-only
def test_post_only_is_rejected_when_it_would_take_and_rests_otherwise() -> None:
    eng = engine()
    eng.step(snap(1, [(99, 100)], [(101, 100)]))
    before = eng.snapshot()
    out = eng.step(limit(1, "p1", Side.BUY, 10, 101, post_only=True))
    (r,) = out
    assert isinstance(r, ev.OrderRejected) and r.code is Code.POST_ONLY_WOULD_TAKE and r.reason
    assert eng.snapshot() == before
    out = eng.step(limit(2, "p2", Side.BUY, 10, 100, post_only=True))
    assert kinds(out) == ["OrderAccepted"]
    assert [s.client_order_id for s in eng.open_orders()] == ["p2"]
    # It rests as a maker at 100 (nothing displayed there): a print at 100 fills it.
    (f,) = fills(eng.step(trade(3, 100, 10)))
    assert f.liquidity is Liquidity.MAKER and f.quantity == 10


# ---------------------------------------------------------------------------- 7. reduce-only
def test_reduce_only_rejected_when_it_would_increase_and_capped_at_the_position() -> None:
    eng = engine()
    eng.step(snap(1, [(99, 500), (98, 500)], [(101, 500)]))
    out = eng.step(order(2, "r0", Side.SELL, 10, reduce_only=True))
    assert [(type(e), e.code) for e in out] == [(ev.OrderRejected, Code.REDUCE_ONLY)]  # type: ignore[attr-defined]
    eng.step(order(3, "long", Side.BUY, 100))
    assert eng.position(ACCT) == 100
    out = eng.step(order(4, "r1", Side.BUY, 10, reduce_only=True))  # would make it 110
    assert [(type(e), e.code) for e in out] == [(ev.OrderRejected, Code.REDUCE_ONLY)]  # type: ignore[attr-defined]
    out = eng.step(order(5, "r2", Side.SELL, 300, reduce_only=True))
    # 500 bid @ 99 could fill 300, but only the 100 held may be sold.
    assert pq(out) == [(99, 100)]
    c = one(out, ev.OrderCancelled)
    assert c.leaves == 200 and c.reason  # type: ignore[attr-defined]
    assert eng.position(ACCT) == 0


def test_reduce_only_cap_consumes_only_what_it_filled() -> None:
    eng = engine()
    eng.step(snap(1, [(99, 500), (98, 500)], [(101, 500)]))
    eng.step(order(2, "long", Side.BUY, 100))
    assert pq(eng.step(order(3, "r2", Side.SELL, 300, reduce_only=True))) == [(99, 100)]
    # We took 100 of the 500 @ 99, so 400 remain there for the next sell.
    assert pq(eng.step(order(4, "s", Side.SELL, 400))) == [(99, 400)]


# ---------------------------------------------------------------------------- 8. cancel / replace
def _queued_buy() -> ExecutionEngine:
    """Our buy 100 @ 99 behind 300 displayed; then 200 more join behind us."""
    eng = engine()
    eng.step(snap(1, [(99, 300)], [(101, 100)]))
    eng.step(limit(2, "q", Side.BUY, 100, 99, tif=TimeInForce.GTC))
    eng.step(delta(3, bids=[(99, 500)]))
    return eng


def test_replace_size_decrease_keeps_queue_priority() -> None:
    eng = _queued_buy()
    out = eng.step(ReplaceOrder(4, ACCT, "q", "XYZ", quantity=60))
    (r,) = out
    assert isinstance(r, ev.OrderReplaced) and r.kept_priority and (r.quantity, r.limit_price) == (60, 99)
    # Still 300 ahead: a print of 330 leaves 30 for us.
    (f,) = fills(eng.step(trade(5, 99, 330)))
    assert (f.quantity, f.leaves, f.queue_ahead) == (30, 30, 300)


def test_replace_size_increase_goes_to_the_back() -> None:
    eng = _queued_buy()
    (r,) = eng.step(ReplaceOrder(4, ACCT, "q", "XYZ", quantity=150))
    assert isinstance(r, ev.OrderReplaced) and not r.kept_priority
    # Now behind all 500 displayed: the same print of 330 does not reach us …
    assert eng.step(trade(5, 99, 330)) == []
    # … 170 are still ahead; a print of 200 fills 30.
    (f,) = fills(eng.step(trade(6, 99, 200)))
    assert (f.quantity, f.leaves, f.queue_ahead) == (30, 120, 500)


def test_replace_price_change_goes_to_the_back() -> None:
    eng = _queued_buy()
    (r,) = eng.step(ReplaceOrder(4, ACCT, "q", "XYZ", limit_price=98))
    assert isinstance(r, ev.OrderReplaced) and not r.kept_priority
    (r,) = eng.step(ReplaceOrder(5, ACCT, "q", "XYZ", limit_price=99))  # and back to 99: at the back
    assert isinstance(r, ev.OrderReplaced) and not r.kept_priority
    assert eng.step(trade(6, 99, 330)) == []
    (f,) = fills(eng.step(trade(7, 99, 200)))
    assert (f.quantity, f.leaves, f.queue_ahead) == (30, 70, 500)


def test_cancel_removes_the_order() -> None:
    eng = _queued_buy()
    (c,) = eng.step(CancelOrder(4, ACCT, "q", "XYZ"))
    assert isinstance(c, ev.OrderCancelled) and c.leaves == 100
    assert eng.open_orders() == []
    assert eng.step(trade(5, 98, 1000)) == []  # a print through 99 no longer fills anything
    (r,) = eng.step(CancelOrder(6, ACCT, "q", "XYZ"))
    assert isinstance(r, ev.OrderRejected) and r.code is Code.ORDER_NOT_OPEN


# ---------------------------------------------------------------------------- 9. price protection
def test_price_protection_stops_a_market_order_at_touch_plus_500_bps() -> None:
    eng = engine()
    eng.step(snap(1, [(99, 100)], [(100, 100), (104, 100), (106, 100), (110, 500)]))
    out = eng.step(order(2, "m", Side.BUY, 500))
    # Bound = 100 + 100·500 // 10⁴ = 105: 106 and 110 are out of reach.
    assert pq(out) == [(100, 100), (104, 100)]
    c = one(out, ev.OrderCancelled)
    assert c.leaves == 300  # type: ignore[attr-defined]
    assert "500 bps" in c.reason  # type: ignore[attr-defined]


def test_price_protection_none_lets_the_order_walk_on() -> None:
    eng = engine(price_protection_bps=None)
    eng.step(snap(1, [(99, 100)], [(100, 100), (104, 100), (106, 100), (110, 500)]))
    out = eng.step(order(2, "m", Side.BUY, 500))
    assert pq(out) == [(100, 100), (104, 100), (106, 100), (110, 200)]
    assert kinds(out).count("OrderCancelled") == 0


def test_price_protection_on_a_sell() -> None:
    eng = engine(price_protection_bps=700)
    eng.step(snap(1, [(100, 100), (94, 100), (93, 100), (92, 100)], [(101, 100)]))
    out = eng.step(order(2, "m", Side.SELL, 400))
    # Bound = 100 − 100·700 // 10⁴ = 93: 92 is out of reach.
    assert pq(out) == [(100, 100), (94, 100), (93, 100)]
    c = one(out, ev.OrderCancelled)
    assert c.leaves == 100 and "700 bps" in c.reason  # type: ignore[attr-defined]


CENT = Instrument("CNT", Decimal("0.01"), Decimal("1"))  # a one-cent tick: 100.00 is 10000 ticks


def test_price_protection_in_ticks_stops_a_market_buy_three_ticks_beyond_the_touch() -> None:
    eng = ExecutionEngine(EngineConfig(CENT, price_protection_ticks=3))
    eng.step(BookSnapshot(1, 1, "CNT", 0, [9999], [100], [10000, 10001, 10003, 10004], [100, 50, 70, 500]))
    out = eng.step(SubmitOrder(2, ACCT, "m", "CNT", Side.BUY, OrderType.MARKET, 300))
    # Bound = 10000 + 3 = 10003 (100.03): 100 @ 100.00 + 50 @ 100.01 + 70 @ 100.03 = 220; 100.04 is out.
    assert pq(out) == [(10000, 100), (10001, 50), (10003, 70)]
    c = one(out, ev.OrderCancelled)
    assert c.leaves == 80 and "within 3 ticks of the touch" in c.reason  # type: ignore[attr-defined]
    state = eng.order(ACCT, "m")
    assert state is not None and state.filled == 220
    # VWAP = (100·100.00 + 50·100.01 + 70·100.03) / 220 = 22002.60 / 220 = 100.0118181…
    assert state.notional == 2_200_260  # ticks·lots
    assert Decimal(state.notional) / state.filled / 100 == Decimal("22002.60") / 220


def test_price_protection_in_ticks_on_a_sell_and_zero_ticks_means_the_touch_only() -> None:
    eng = ExecutionEngine(EngineConfig(CENT, price_protection_ticks=2))
    eng.step(BookSnapshot(1, 1, "CNT", 0, [10000, 9998, 9997], [100, 100, 100], [10001], [100]))
    # Bound = 10000 − 2 = 9998: 9997 is out of reach.
    assert pq(eng.step(SubmitOrder(2, ACCT, "s", "CNT", Side.SELL, OrderType.MARKET, 300))) == [
        (10000, 100), (9998, 100),
    ]  # fmt: skip
    zero = ExecutionEngine(EngineConfig(CENT, price_protection_ticks=0))
    zero.step(BookSnapshot(1, 1, "CNT", 0, [9999], [100], [10000, 10001], [100, 100]))
    out = zero.step(SubmitOrder(2, ACCT, "m", "CNT", Side.BUY, OrderType.MARKET, 150))
    assert pq(out) == [(10000, 100)]
    assert "within 0 ticks" in one(out, ev.OrderCancelled).reason  # type: ignore[attr-defined]


def test_price_protection_ticks_replace_the_default_bps() -> None:
    assert EngineConfig(XYZ).price_protection_bps == 500  # unset: the 500 bps default
    cfg = EngineConfig(XYZ, price_protection_ticks=3)
    assert (cfg.price_protection_bps, cfg.price_protection_ticks) == (None, 3)
    off = EngineConfig(XYZ, price_protection_bps=None)
    assert (off.price_protection_bps, off.price_protection_ticks) == (None, None)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"price_protection_bps": 100, "price_protection_ticks": 3}, "not both"),
        ({"price_protection_bps": 500, "price_protection_ticks": 0}, "not both"),
        ({"price_protection_ticks": -1}, "price_protection_ticks must be >= 0"),
        ({"price_protection_bps": -5}, "price_protection_bps must be >= 0"),
        ({"price_protection_ticks": float("nan")}, "whole number"),
        ({"price_protection_bps": float("nan")}, "whole number"),
        ({"price_protection_ticks": 2.5}, "whole number"),
        ({"price_protection_ticks": True}, "whole number"),
    ],
)
def test_price_protection_settings_are_checked(options: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        EngineConfig(XYZ, **options)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- 10. queue models
def test_risk_averse_queue_trades_drain_cancels_only_clamp() -> None:
    eng = engine(queue_model=RiskAverseQueue())
    eng.step(snap(1, [(99, 300)], [(101, 100)]))
    eng.step(limit(2, "q", Side.BUY, 50, 99, tif=TimeInForce.GTC))  # front 300
    assert eng.step(delta(3, bids=[(99, 400)])) == []  # 100 join behind: front 300
    assert eng.step(delta(4, bids=[(99, 300)])) == []  # 100 cancelled: assumed behind, front 300
    assert eng.step(delta(5, bids=[(99, 250)])) == []  # level below front: clamp to 250
    # A print of 260: 250 drain the front, the 10 beyond fill us.
    (f,) = fills(eng.step(trade(6, 99, 260)))
    assert (f.quantity, f.leaves, f.queue_ahead) == (10, 40, 300)


def test_prob_queue_power2_attributes_cancels_to_the_front() -> None:
    eng = engine(queue_model=ProbQueue(PowerProbQueueFunc(2)))
    eng.step(snap(1, [(99, 300)], [(101, 100)]))
    eng.step(limit(2, "q", Side.BUY, 50, 99, tif=TimeInForce.GTC))  # front 300
    eng.step(delta(3, bids=[(99, 400)]))  # back 100
    # 100 cancelled with front 300 / back 100: p(behind) = 100² / (100² + 300²) = 0.1, so the
    # front loses (1 − 0.1)·100 = 90 → 210.
    eng.step(delta(4, bids=[(99, 300)]))
    assert eng.step(trade(5, 99, 209)) == []  # 209 < 210: not yet
    (f,) = fills(eng.step(trade(6, 99, 6)))  # front 1 left; 6 − 1 = 5 fill us
    assert (f.quantity, f.leaves) == (5, 45)


def test_prob_queue_power2_single_trade_of_215_fills_5() -> None:
    eng = engine(queue_model=ProbQueue(PowerProbQueueFunc(2)))
    eng.step(snap(1, [(99, 300)], [(101, 100)]))
    eng.step(limit(2, "q", Side.BUY, 50, 99, tif=TimeInForce.GTC))
    eng.step(delta(3, bids=[(99, 400)]))
    eng.step(delta(4, bids=[(99, 300)]))  # front 210 (see above)
    (f,) = fills(eng.step(trade(5, 99, 215)))  # 215 − 210 = 5
    assert (f.quantity, f.leaves, f.queue_ahead) == (5, 45, 300)
    # The risk-averse model, same events: front stays 300, the 215 print fills nothing.
    ra = engine(queue_model=RiskAverseQueue())
    run(ra, [snap(1, [(99, 300)], [(101, 100)]), limit(2, "q", Side.BUY, 50, 99, tif=TimeInForce.GTC),
             delta(3, bids=[(99, 400)]), delta(4, bids=[(99, 300)])])  # fmt: skip
    assert ra.step(trade(5, 99, 215)) == []


# ---------------------------------------------------------------------------- 11. fees
def test_per_share_fee_minimum_is_charged_once_across_partial_fills() -> None:
    eng = engine(fees=PerShare("0.005", minimum_per_order="1.00"))
    eng.step(snap(1, [(99, 100)], [(101, 100)]))
    eng.step(limit(2, "b", Side.BUY, 300, 100, tif=TimeInForce.GTC))  # new level: nobody ahead
    out = run(eng, [trade(3, 100, 100), trade(4, 100, 60), trade(5, 100, 140)])
    assert [f.quantity for f in fills(out)] == [100, 60, 140]
    # order total after 100: max(0.50, 1.00) = 1.00 → 1.00
    # after 160: max(0.80, 1.00) = 1.00 → 0.00
    # after 300: max(1.50, 1.00) = 1.50 → 0.50
    assert [f.fee for f in fills(out)] == [Decimal("1.00"), Decimal("0.00"), Decimal("0.50")]


def test_maker_taker_fees_by_liquidity() -> None:
    eng = engine(fees=MakerTaker(maker_bps="-2", taker_bps="3"))
    eng.step(snap(1, [(99, 100)], [(101, 100)]))
    (taker,) = fills(eng.step(order(2, "t", Side.BUY, 37)))
    # 37 @ 101 = 3737 · 3/10⁴ = 1.1211 → 1.12
    assert (taker.liquidity, taker.fee) == (Liquidity.TAKER, Decimal("1.12"))
    eng.step(limit(3, "m", Side.BUY, 37, 100, tif=TimeInForce.GTC))
    (maker,) = fills(eng.step(trade(4, 100, 37)))
    # 37 @ 100 = 3700 · −2/10⁴ = −0.74 (a rebate)
    assert (maker.liquidity, maker.fee) == (Liquidity.MAKER, Decimal("-0.74"))


def test_us_regulatory_fees_on_sells_only() -> None:
    eng = engine(fees=USRegulatoryFees())
    eng.step(snap(1, [(99, 1000)], [(101, 1000)]))
    (buy,) = fills(eng.step(order(2, "b", Side.BUY, 1000)))
    assert buy.fee == 0
    (sell,) = fills(eng.step(order(3, "s", Side.SELL, 1000)))
    # SEC: 27.80/10⁶ · 99,000 = 2.7522 → up to 2.76; TAF: 1000 · 0.000166 = 0.166 → 0.17
    assert sell.fee == Decimal("2.93")


def test_composite_fees_accumulate_per_order_across_partial_fills() -> None:
    eng = engine(fees=CompositeFees(PerShare("0.005", "1.00"), USRegulatoryFees()))
    eng.step(snap(1, [(99, 400), (98, 600)], [(101, 1000)]))
    (buy,) = fills(eng.step(order(2, "b", Side.BUY, 1000)))
    assert buy.fee == Decimal("5.00")  # 1000 · 0.005; no regulatory fee on a buy
    f1, f2 = fills(eng.step(order(3, "s", Side.SELL, 1000)))
    assert [(f1.price, f1.quantity), (f2.price, f2.quantity)] == [(99, 400), (98, 600)]
    # Fill 1, 400 @ 99 = 39,600: per share max(2.00, 1.00) = 2.00;
    #   SEC 27.80e-6 · 39,600 = 1.10088 → 1.11, TAF 400 · 0.000166 = 0.0664 → 0.07: 3.18
    assert f1.fee == Decimal("3.18")
    # Order after fill 2, 1000 for 39,600 + 58,800 = 98,400: per share 5.00 (+3.00);
    #   SEC 2.73552 → 2.74, TAF 0.166 → 0.17, total 2.91 (+2.91 − 1.18 = 1.73): 4.73
    assert f2.fee == Decimal("4.73")


# ---------------------------------------------------------------------------- 12. L1
def _l1() -> ExecutionEngine:
    eng = engine(realism="L1", daily_vol=0.02, adv=10_000)
    assert eng.step(quote(1, (9990, 100), (10_000, 200))) == []
    return eng


def test_l1_market_buy_crosses_the_displayed_size_then_square_root_impact() -> None:
    eng = _l1()
    out = eng.step(order(2, "m", Side.BUY, 500))
    # 200 displayed @ 10000; the 300 beyond: impact = 1 · 0.02 · sqrt(300/10,000) · 10,000
    # = 200 · 0.173205 = 34.64 ticks → 10034.64, rounded up against the buyer: 10035.
    assert pq(out) == [(10_000, 200), (10_035, 300)]
    assert all(f.liquidity is Liquidity.TAKER and f.arrival_mid2 == 19_990 for f in fills(out))
    assert "SquareRootImpact" in fills(out)[1].model


def test_l1_market_sell_remainder_rounds_down() -> None:
    eng = _l1()
    out = eng.step(order(2, "m", Side.SELL, 500))
    # 100 @ 9990; 400 beyond: 0.02 · sqrt(0.04) · 9990 = 39.96 → 9950.04, down: 9950.
    assert pq(out) == [(9990, 100), (9950, 400)]


def test_l1_remainder_respects_the_limit() -> None:
    eng = _l1()
    out = eng.step(limit(2, "i", Side.BUY, 500, 10_030, tif=TimeInForce.IOC))
    assert pq(out) == [(10_000, 200)]  # 10035 is through the 10030 limit
    assert one(out, ev.OrderCancelled).leaves == 300  # type: ignore[attr-defined]
    eng = _l1()
    out = eng.step(limit(2, "i", Side.BUY, 500, 10_035, tif=TimeInForce.IOC))
    assert pq(out) == [(10_000, 200), (10_035, 300)]  # the limit is inclusive


# ---------------------------------------------------------------------------- 13. bars
def test_bars_volume_share_cap_spreads_an_order_over_bars() -> None:
    eng = engine(realism="bars")
    assert eng.step(bar(0, 10_000, 10_000, 10_000, 10_000, 4000)) == []
    out = eng.step(order(30 * 10**9, "b", Side.BUY, 250))
    assert kinds(out) == ["OrderAccepted"]  # the bar before it arrived gives nothing
    # Bar 2: cap floor(0.025 · 4000) = 100; share 0.025; impact 0.025² · 0.1 · 10010 = 0.625625
    # → 10010.625625, up: 10011.
    (f,) = fills(eng.step(bar(MIN, 10_000, 10_020, 9995, 10_010, 4000)))
    assert (f.price, f.quantity, f.leaves) == (10_011, 100, 150)
    assert f.model == "VolumeShareSlippage(volume_limit=0.025, price_impact=0.1)"
    assert f.arrival_mid2 == 20_000  # the last close before arrival, 10000
    assert f.slippage_bps == pytest.approx(11.0)  # (20022 − 20000)/20000 · 10⁴
    # Bar 3: cap floor(0.025 · 2000) = 50; share 0.025; impact 0.0000625 · 9990 = 0.624375 → 9991.
    assert pq(eng.step(bar(2 * MIN, 10_010, 10_010, 9985, 9990, 2000))) == [(9991, 50)]
    # Bar 4: cap 200, 100 left; share 100/8000 = 0.0125; impact 0.00015625 · 0.1 · 10⁴ = 0.15625 → 10001.
    assert pq(eng.step(bar(3 * MIN, 9990, 10_000, 9990, 10_000, 8000))) == [(10_001, 100)]
    assert eng.order(ACCT, "b").status is OrderStatus.FILLED  # type: ignore[union-attr]


def test_bars_sell_rounds_down_and_empty_bar_fills_nothing() -> None:
    eng = engine(realism="bars")
    eng.step(bar(0, 10_000, 10_000, 10_000, 10_000, 4000))
    eng.step(order(30 * 10**9, "s", Side.SELL, 100))
    assert eng.step(bar(MIN, 10_000, 10_000, 10_000, 10_000, 0)) == []  # no volume, nobody to trade with
    # cap 100, share 0.025: impact 0.625 → 9999.375, down: 9999.
    assert pq(eng.step(bar(2 * MIN, 10_000, 10_000, 10_000, 10_000, 4000))) == [(9999, 100)]


def test_bars_no_fill_from_a_bar_that_started_before_the_order() -> None:
    eng = engine(realism="bars")
    eng.step(bar(0, 10_000, 10_000, 10_000, 10_000, 4000))
    eng.step(order(90 * 10**9, "b", Side.BUY, 10))
    # The 1-minute bar starting at 60 s (delivered at its end, 120 s) began before the order
    # arrived at 90 s: by the engine's rule ("the first bar that starts at or after their
    # arrival") it cannot fill it.
    assert eng.step(bar(MIN, 10_000, 10_000, 10_000, 10_000, 4000, recv_ts=2 * MIN)) == []
    assert pq(eng.step(bar(2 * MIN, 10_000, 10_000, 10_000, 10_000, 4000))) == [(10_001, 10)]


# ---------------------------------------------------------------------------- 15. bad input
def _with_partial_fill() -> ExecutionEngine:
    eng = engine()
    eng.step(snap(1, [(99, 100)], [(101, 100)]))
    eng.step(limit(2, "o1", Side.BUY, 100, 99, tif=TimeInForce.GTC))
    assert pq(eng.step(trade(10, 99, 160))) == [(99, 60)]  # 100 ahead, 60 for us
    return eng


@pytest.mark.parametrize(
    ("command", "code", "words"),
    [
        (order(10, "z", Side.BUY, 0), Code.INVALID_QUANTITY, "positive"),
        (order(10, "n", Side.BUY, -5), Code.INVALID_QUANTITY, "positive"),
        (order(10, "l", Side.BUY, 10, OrderType.LIMIT), Code.MISSING_FIELD, "limit price"),
        (limit(10, "p", Side.BUY, 10, -1), Code.INVALID_PRICE, "positive"),
        (order(10, "s", Side.BUY, 10, symbol="ABC"), Code.UNKNOWN_SYMBOL, "ABC"),
        (limit(10, "o1", Side.SELL, 10, 102), Code.DUPLICATE_ORDER_ID, "o1"),
        (CancelOrder(10, ACCT, "nope", "XYZ"), Code.UNKNOWN_ORDER, "nope"),
        (ReplaceOrder(10, ACCT, "o1", "XYZ", quantity=50), Code.INVALID_QUANTITY, "60"),
        (ReplaceOrder(10, ACCT, "o1", "XYZ", quantity=60), Code.INVALID_QUANTITY, "60"),
    ],
    ids=[
        "zero-qty",
        "negative-qty",
        "no-limit",
        "negative-price",
        "unknown-symbol",
        "duplicate-id",
        "cancel-unknown",
        "replace-below-filled",
        "replace-to-filled",
    ],
)
def test_bad_input_is_rejected_with_a_reason_and_changes_nothing(command: Event, code: Code, words: str) -> None:
    eng = _with_partial_fill()
    before = eng.snapshot()
    out = eng.step(command)
    assert len(out) == 1 and isinstance(out[0], ev.OrderRejected), out
    assert out[0].code is code
    assert words in out[0].reason and len(out[0].reason) > 15
    assert eng.snapshot() == before
    # The partly filled order is as it was: still 40 left at the front of 99.
    assert pq(eng.step(trade(11, 99, 40))) == [(99, 40)]


# ---------------------------------------------------------------------------- 16. determinism
def _script() -> list[Event]:
    return [
        snap(1, [(99, 300), (98, 200)], [(101, 300), (102, 300), (103, 500)]),
        limit(2, "a", Side.BUY, 100, 99, tif=TimeInForce.GTC),
        order(3, "b", Side.BUY, 450),
        delta(4, bids=[(99, 400)], asks=[(101, 250)]),
        trade(5, 99, 320),
        ReplaceOrder(6, ACCT, "a", "XYZ", quantity=90),
        order(7, "c", Side.SELL, 50, OrderType.STOP, stop_price=97, tif=TimeInForce.GTC),
        limit(8, "d", Side.SELL, 40, 104, tif=TimeInForce.GTC, account="other"),
        trade(9, 99, 50),
        CancelOrder(10, "other", "d", "XYZ"),
        delta(11, bids=[(99, 0), (97, 300)], asks=[(102, 0)]),
        trade(12, 97, 20),
        order(13, "e", Side.BUY, 10, OrderType.LIMIT),  # rejected: no limit price
        order(14, "f", Side.BUY, 600, tif=TimeInForce.IOC),
        snap(15, [(96, 100)], [(100, 100)]),
        order(16, "g", Side.SELL, 150, reduce_only=True),
    ]


def _digest(outs: Iterable[ev.ExecEvent]) -> str:
    h = hashlib.sha256()
    for e in outs:
        h.update(encode(e))
    return h.hexdigest()


def test_same_inputs_give_byte_identical_outputs() -> None:
    a, b = engine(), engine()
    out_a = [encode(e) for e in run(a, _script())]
    out_b = [encode(e) for e in run(b, _script())]
    assert out_a == out_b
    # The script exercises fills, cancels, replaces and rejects (the comparison is not vacuous).
    names = set(kinds(run(engine(), _script())))
    assert {"OrderFilled", "OrderCancelled", "OrderReplaced", "OrderRejected", "OrderTriggered"} <= names


@pytest.mark.parametrize("cut", range(len(_script()) + 1))
def test_snapshot_restore_midway_continues_exactly(cut: int) -> None:
    script = _script()
    full = _digest(run(engine(), script))
    first = engine()
    head = run(first, script[:cut])
    resumed = ExecutionEngine.restore(first.snapshot())
    tail = run(resumed, script[cut:])
    assert _digest(head + tail) == full
