"""Account rules inside a replay: pre-trade rejections that never reach the exchange, the
account's books from fills, and a margin call liquidated at hand-computed size."""

from __future__ import annotations

from decimal import Decimal

import pytest

import vtrade as vt
from vtrade.core.events import BookSnapshot, Side, Trade
from vtrade.core.instruments import Instrument
from vtrade.execution.accounts import SessionLimits
from vtrade.execution.broker import Broker
from vtrade.execution.events import OrderFilled, OrderRejected, RejectCode
from vtrade.runtime.replay import Context

# A $1-tick, 1-share-lot stock that trades around the clock: prices below are dollars.
XYZ = Instrument("XYZ", Decimal(1), Decimal(1))
S = 1_000_000_000


def book(t: int, bid: int, ask: int, size: int = 10_000) -> BookSnapshot:
    return BookSnapshot(t * S, t * S, "XYZ", t, [bid], [size], [ask], [size])


def buy_once(quantity: int):  # type: ignore[no-untyped-def]
    def strategy(ctx: Context) -> None:
        if not getattr(ctx, "done", False):
            ctx.done = True  # type: ignore[attr-defined]
            ctx.buy(quantity)

    return strategy


def test_buying_power_refuses_before_the_exchange_and_cash_follows_fills() -> None:
    events = [book(t, 99, 100) for t in range(1, 6)]
    r = vt.replay(events, instrument=XYZ, strategy=buy_once(60), every="1s", cash=5_000)
    # 60 x $100 = $6,000 > $5,000 of cash: refused with a reason, no exchange event for it.
    rejected = [e for e in r.events if isinstance(e, OrderRejected)]
    assert [e.code for e in rejected] == [RejectCode.INSUFFICIENT_BUYING_POWER]
    assert "buying power" in rejected[0].reason.lower() and "$6,000.00" in rejected[0].reason
    assert r.fills.empty
    ok = vt.replay(events, instrument=XYZ, strategy=buy_once(40), every="1s", cash=5_000)
    assert ok.fills.quantity_lots.tolist() == [40] and ok.fills.price.tolist() == [100.0]


def test_broker_books_cash_positions_and_fees_exactly() -> None:
    b = Broker(XYZ, "you", cash=Decimal("5000"))
    fill = OrderFilled(1, "you", "c-1", "XYZ", "f-1", Side.BUY, 100, 40, 0, "taker", Decimal("1.25"), 199, 0.0, "m")
    b.on_exec(fill)
    assert (b.position, b.cash) == (40, Decimal("998.75"))  # 5000 - 40 x 100 - 1.25
    b.on_exec(OrderFilled(2, "other", "c-9", "XYZ", "f-2", Side.SELL, 100, 5, 0, "taker", Decimal(0), 199, 0.0, "m"))
    assert b.position == 40  # another account's fill changes nothing


def test_class_limits_and_shorting_rules_apply_in_a_replay() -> None:
    events = [book(t, 99, 100) for t in range(1, 6)]

    def short(ctx: Context) -> None:
        if not getattr(ctx, "done", False):
            ctx.done = True  # type: ignore[attr-defined]
            ctx.sell(10)

    no_shorts = vt.replay(events, instrument=XYZ, strategy=short, every="1s", cash=10_000, account_kind="margin",
                          limits=SessionLimits(shorting_allowed=False))  # fmt: skip
    assert [e.code for e in no_shorts.events if isinstance(e, OrderRejected)] == [
        RejectCode.SHORT_SELLING_NOT_ALLOWED
    ]
    in_cash = vt.replay(events, instrument=XYZ, strategy=short, every="1s", cash=10_000, account_kind="cash")
    assert [e.code for e in in_cash.events if isinstance(e, OrderRejected)] == [
        RejectCode.SHORT_SELLING_NOT_ALLOWED
    ]


def test_margin_call_is_liquidated_at_the_hand_computed_size() -> None:
    # Margin account, $10,000 cash, buys 150 at $100 (Reg T: buying power 2 x $10,000).
    # Cash becomes -$5,000. Marked at $40: equity = -5,000 + 150 x 40 = $1,000; maintenance
    # 25 % x $6,000 = $1,500: a call. Release (1,500 - 1,000) + 5 % x 1,000 = $550 of
    # requirement at 25 % x $40 = $10 a share -> sell ceil(550 / 10) = 55 shares.
    events = [book(1, 99, 100), book(2, 99, 100)]
    events += [book(t, 39, 41) for t in range(3, 8)]
    r = vt.replay(events, instrument=XYZ, strategy=buy_once(150), every="1s", cash=10_000, account_kind="margin")
    fills = [e for e in r.events if isinstance(e, OrderFilled)]
    assert [(f.side, f.quantity, f.price) for f in fills[:1]] == [(Side.BUY, 150, 100)]
    liquidations = [f for f in fills if f.client_order_id.startswith("liq-")]
    # The forced sale fills at the $39 bid, not the $40 mark: cash -5,000 + 55 x 39 = -2,855,
    # 95 shares, equity at $40 = $945 < $950 = 25 % x $3,800: still a call, by the $55 the
    # spread cost (the 5 % buffer was $50). Next check: release 5 + 5 % x 945 = $52.25 ->
    # ceil(52.25 / 10) = 6 shares; then equity $939 >= $890 required: the call is met.
    assert [(f.side, f.quantity, f.price) for f in liquidations] == [(Side.SELL, 55, 39), (Side.SELL, 6, 39)]


@pytest.mark.parametrize("kind", ["cash", "margin"])
def test_no_cash_means_no_rules(kind: str) -> None:
    events = [book(t, 99, 100) for t in range(1, 4)] + [Trade(4 * S, 4 * S, "XYZ", 4, 100, 1)]
    r = vt.replay(events, instrument=XYZ, strategy=buy_once(1_000), every="1s")
    assert r.fills.quantity_lots.sum() == 1_000  # a research replay: no account limits


def _fill(ts: int, coid: str, symbol: str, side: Side, price: int, qty: int) -> OrderFilled:
    return OrderFilled(ts, "ada", coid, symbol, f"f-{ts}", side, price, qty, 0, "taker", Decimal(0), 2 * price, 0.0,
                       "m")  # fmt: skip


def test_the_multi_symbol_broker_liquidates_the_largest_positions_first_and_says_why() -> None:
    from vtrade.core.instruments import us_equity
    from vtrade.execution.broker import Brokerage

    b = Brokerage([us_equity("AAA"), us_equity("BBB")])
    b.open_account("ada", Decimal("10000"), "margin")
    b.open_account("cy", Decimal("10000"), "cash")
    b.on_exec(_fill(1, "ada-1", "AAA", Side.BUY, 30000, 40))  # 40 x $300
    b.on_exec(_fill(2, "ada-2", "BBB", Side.BUY, 6000, 300))  # 300 x $60: cash 10,000 - 30,000 = -20,000
    assert b.state("ada").cash == Decimal("-20000")
    marks = {"AAA": 25000, "BBB": 4000}
    assert b.margin_calls({"AAA": 30000, "BBB": 6000}, ts=3) == []  # equity 10,000 >= 7,500
    # At $250 and $40: long 10,000 + 12,000 = 22,000, equity 2,000 < 25 % = 5,500. Release
    # 3,500 + 5 % x 2,000 = 3,600: BBB (the larger) releases $10 a share, all 300 give 3,000;
    # then AAA at $62.50 a share: ceil(600 / 62.5) = 10.
    (call,) = b.margin_calls(marks, ts=4)
    assert [(o.client_order_id, o.side, o.quantity, o.reduce_only) for o in call.orders] == [
        ("liq-ada-4-BBB", Side.SELL, 300, True), ("liq-ada-4-AAA", Side.SELL, 10, True)]  # fmt: skip
    assert call.reason == ("Margin call: your equity of $2,000.00 is below the maintenance requirement of $5,500.00; "
                           "the broker is selling 300 BBB, selling 10 AAA to restore it")  # fmt: skip
    assert b.margin_calls(marks, ts=5) == []  # its orders still work: no second call on top
    b.on_exec(_fill(6, "liq-ada-4-BBB", "BBB", Side.SELL, 4000, 300))
    b.on_exec(OrderRejected(6, "ada", "liq-ada-4-AAA", "AAA", RejectCode.HALTED, "halted"))
    (again,) = b.margin_calls(marks, ts=7)  # the AAA sale never happened: called again for it
    assert [(o.symbol, o.quantity) for o in again.orders] == [("AAA", 10)]


def test_a_participant_runs_in_replay_and_under_the_account_rules() -> None:
    from vtrade.market.participants import index_investor

    # 95 % of $10,000 at the mid ($100: whole $1 ticks, rounded down) + 1 %: floor(9,500 / 101) = 94
    # shares, bought once; then it holds.
    events = [book(t, 100, 101) for t in range(1, 6)]
    r = vt.replay(events, instrument=XYZ, strategy=index_investor, every="1s", cash=10_000)
    assert r.fills.quantity_lots.tolist() == [94] and r.fills.side.tolist() == ["buy"]
