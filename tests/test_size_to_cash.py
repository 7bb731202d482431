"""``size_to_cash``: an order buying power cannot pay for in full is cut to what it can pay for
(vectorbt's ``allow_partial``) instead of being refused. Every number is worked out by hand.

CNT trades on a one-cent tick with one-share lots (10000 ticks = $100.00); BTC on Binance
USD-M's 0.1 tick and 0.001 BTC lot.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

import vtrade as vt
from vtrade.core.events import BookSnapshot, Side, decode, encode
from vtrade.core.instruments import BINANCE_BTCUSDT_USDM, Instrument
from vtrade.execution import events as ev
from vtrade.execution.accounts import (
    AccountState,
    MarketStatus,
    PreTradeContext,
    Reservation,
    pre_trade_check,
    size_to_cash,
)
from vtrade.execution.broker import Broker
from vtrade.execution.engine import EngineConfig, ExecutionEngine
from vtrade.execution.fees import FeeModel, MakerTaker, PerShare
from vtrade.execution.orders import OrderType, SubmitOrder
from vtrade.execution.validation import submit_from_user
from vtrade.runtime.replay import Context

CNT = Instrument("CNT", Decimal("0.01"), Decimal("1"))
IBKR = PerShare("0.005", "1")  # $0.005 a share, $1 minimum per order
S = 1_000_000_000


def ctx(
    cash: str,
    *,
    kind: str = "cash",
    positions: dict[str, int] | None = None,
    reservations: tuple[Reservation, ...] = (),
    fees: FeeModel | None = IBKR,
    inst: Instrument = CNT,
    bid: int | None = None,
    ask: int | None = None,
) -> PreTradeContext:
    account = AccountState("a", kind, Decimal(cash), positions or {}, reservations)  # type: ignore[arg-type]
    return PreTradeContext(inst, account, MarketStatus(True), bid=bid, ask=ask, fees=fees)


def buy(quantity: int, price: int | None = None, *, symbol: str = "CNT", allow: bool = True) -> SubmitOrder:
    otype = OrderType.MARKET if price is None else OrderType.LIMIT
    return SubmitOrder(0, "a", "c-1", symbol, Side.BUY, otype, quantity, limit_price=price, size_to_cash=allow)


def test_a_limit_buy_is_cut_to_what_cash_pays_for_fee_included() -> None:
    c = ctx("10000")
    cut = size_to_cash(buy(150, 10000), c)
    # 99 × $100.00 + max($1, 99 × $0.005 = $0.495) = $9,901.00 ≤ $10,000;
    # 100 × $100.00 + max($1, $0.50) = $10,001.00 > $10,000 (cash alone would buy 100).
    assert (cut.quantity, cut.requested_quantity, cut.limit_price) == (99, 150, 10000)
    assert pre_trade_check(cut, c) is None
    hundred = pre_trade_check(SubmitOrder(0, "a", "c-2", "CNT", Side.BUY, OrderType.LIMIT, 100, limit_price=10000), c)
    assert hundred is not None and "$10,001.00" in hundred.reason


def test_a_market_buy_is_sized_at_the_far_touch() -> None:
    c = ctx("10000", bid=5000, ask=5001)
    cut = size_to_cash(buy(300), c)
    # At the ask $50.01: 199 × 50.01 = $9,951.99 + $1 = $9,952.99; 200 × 50.01 = $10,002 + $1 > $10,000.
    assert (cut.quantity, cut.requested_quantity, cut.order_type) == (199, 300, OrderType.MARKET)
    assert pre_trade_check(cut, c) is None


def test_lots_round_down_and_the_fee_counts_on_a_crypto_lot_grid() -> None:
    btc = BINANCE_BTCUSDT_USDM  # 0.001 BTC lots; 600000 ticks = 60,000.0 USDT
    c = ctx("1000", inst=btc, fees=MakerTaker("2", "4"))
    order = SubmitOrder(0, "a", "c-1", "BTCUSDT", Side.BUY, OrderType.LIMIT, 1000, limit_price=600000,
                        size_to_cash=True)  # fmt: skip
    cut = size_to_cash(order, c)
    # One lot = 0.001 × 60,000 = 60 USDT. 16 lots: 960 + 4 bps × 960 = 960.384 ≤ 1,000;
    # 17 lots: 1,020 > 1,000. 1,000 / 60 = 16.67 lots rounds DOWN to 16 (0.016 BTC).
    assert (cut.quantity, cut.requested_quantity) == (16, 1000)


def test_open_orders_and_short_cover_count() -> None:
    # $10,000 cash, an open buy of 50 @ $100 holds $5,000: 49 × 100 + 1 = $4,901; 50 would need $5,001.
    held = (Reservation.for_order(CNT, "old", Side.BUY, 50, 10000),)
    assert size_to_cash(buy(150, 10000), ctx("10000", reservations=held)).quantity == 49
    # Margin account short 30 @ $100 with $13,000 cash: equity = 13,000 − 3,000 = $10,000; Reg T
    # buying power = (10,000 − 50 % × 3,000) / 50 % = $17,000. The first 30 lots only cover (no
    # buying power); then 100 × (q − 30) + $1 ≤ 17,000 → q − 30 = 169: q = 199 (200 would need $17,001).
    c = ctx("13000", kind="margin", positions={"CNT": -30}, bid=9999, ask=10000)
    assert size_to_cash(buy(250, 10000), c).quantity == 199


def test_nothing_fits_or_not_asked_is_refused_with_the_ordinary_reason() -> None:
    # $50 cannot pay for one share at $100: the order is left as it is and refused as usual.
    c = ctx("50")
    order = buy(10, 10000)
    assert size_to_cash(order, c) is order
    refused = pre_trade_check(order, c)
    assert refused is not None and refused.code is ev.RejectCode.INSUFFICIENT_BUYING_POWER
    assert refused.reason == "Not enough buying power: this order needs $1,001.00, you have $50.00"
    # Without the flag nothing is cut; an order that fits is not touched either.
    assert size_to_cash(buy(150, 10000, allow=False), ctx("10000")).quantity == 150
    fits = buy(10, 10000)
    assert size_to_cash(fits, ctx("10000")) is fits


def test_the_engine_reports_requested_and_accepted_quantities() -> None:
    eng = ExecutionEngine(EngineConfig(CNT, fees=IBKR))
    eng.step(BookSnapshot(1, 1, "CNT", 0, [9999], [500], [10000], [500]))
    cut = size_to_cash(buy(150, 10000), ctx("10000"))
    out = eng.step(msgspec.structs.replace(cut, ts=2))
    accepted = out[0]
    assert isinstance(accepted, ev.OrderAcceptedReduced) and isinstance(accepted, ev.OrderAccepted)
    assert (accepted.requested_quantity, accepted.quantity) == (150, 99)
    assert accepted.reason == "size to cash: buying power pays for 99 of the 150 asked for"
    (f,) = [e for e in out if isinstance(e, ev.OrderFilled)]
    assert (f.price, f.quantity, f.fee) == (10000, 99, Decimal("1.00"))
    assert decode(encode(accepted)) == accepted  # on the log like any event


def test_through_the_broker_and_a_replay() -> None:
    b = Broker(CNT, "you", cash=Decimal("10000"), fees=IBKR)
    o = submit_from_user("you", "c-1", CNT, "buy", "limit", 150, "100.00", size_to_cash=True)
    sent, refused = b.admit(o, bid=9999, ask=10000, last=None, market=MarketStatus(True))
    assert refused is None and (sent.quantity, sent.requested_quantity) == (99, 150)
    assert b.state().reserved == Decimal("9900.00")  # the cut order holds 99 × $100

    def strategy(c: Context) -> None:
        if not c.open_orders and not c.position:
            c.buy(150, 10000, size_to_cash=True)

    events = [BookSnapshot(t * S, t * S, "CNT", t, [9999], [1000], [10000], [1000]) for t in range(1, 4)]
    r = vt.replay(events, instrument=CNT, strategy=strategy, every="1s", cash=10_000, fees=IBKR)
    accepted = [e for e in r.events if isinstance(e, ev.OrderAccepted)]
    assert len(accepted) == 1 and isinstance(accepted[0], ev.OrderAcceptedReduced)
    assert r.fills.quantity_lots.tolist() == [99] and r.fills.fee.tolist() == [1.0]
    row = r.orders.iloc[0]
    assert (row.requested_lots, row.quantity_lots, row.filled_lots, row.status) == (150, 99, 99, "filled")
    assert r.summary()["fills"] == 1  # cash left: 10,000 − 99 × 100 − 1 = $99


@pytest.mark.parametrize("flag", [True, False])
def test_the_flag_travels_through_submit_from_user(flag: bool) -> None:
    o = submit_from_user("a", "c", CNT, "buy", "market", 5, size_to_cash=flag)
    assert o.size_to_cash is flag and o.requested_quantity is None
