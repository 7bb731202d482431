"""Account rules (pre-trade checks, margin, liquidation, borrow) and the NYSE calendar they use.

Expected values are worked out by hand in the comments."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest

from vtrade.core.events import Side
from vtrade.core.instruments import BINANCE_BTCUSDT_USDM, us_equity
from vtrade.execution import calendar
from vtrade.execution.accounts import (
    AccountState,
    MarginPolicy,
    Mark,
    MarketStatus,
    PreTradeContext,
    Rejection,
    Reservation,
    SessionLimits,
    borrow_cost,
    buying_power,
    liquidation_orders,
    margin_status,
    pre_trade_check,
)
from vtrade.execution.events import RejectCode
from vtrade.execution.fees import PerShare
from vtrade.execution.orders import OrderType, SubmitOrder, TimeInForce

D = Decimal
SPY = us_equity("SPY")
XYZ = us_equity("XYZ")
GME = us_equity("GME")
AAA, BBB = us_equity("AAA"), us_equity("BBB")
POLICY = MarginPolicy()
OPEN = MarketStatus(True)


def order(symbol: str = "SPY", side: Side = Side.BUY, qty: int = 100, order_type: OrderType = OrderType.MARKET,
          *, limit: int | None = None, stop: int | None = None, tif: TimeInForce = TimeInForce.DAY,
          reduce_only: bool = False) -> SubmitOrder:
    return SubmitOrder(0, "a-1", "c-1", symbol, side, order_type, qty, limit_price=limit, stop_price=stop, tif=tif,
                       reduce_only=reduce_only)


def account(kind: str = "cash", cash: str = "10000", positions: dict[str, int] | None = None,
            reservations: tuple[Reservation, ...] = ()) -> AccountState:
    return AccountState("a-1", kind, D(cash), positions or {}, reservations)  # type: ignore[arg-type]


def ctx(acct: AccountState, instrument=SPY, **kwargs) -> PreTradeContext:
    kwargs.setdefault("market", OPEN)
    kwargs.setdefault("bid", 9999)
    kwargs.setdefault("ask", 10000)  # $100.00
    return PreTradeContext(instrument, acct, **kwargs)


def rejected(o: SubmitOrder, c: PreTradeContext) -> Rejection:
    r = pre_trade_check(o, c)
    assert r is not None, "expected a rejection"
    return r


# ============================================================================ margin status
def test_margin_status_long() -> None:
    # cash 10,000 + 100 x $400 = 50,000 equity; requirement 25 % x 40,000 = 10,000
    st = margin_status(account("margin", "10000", {"SPY": 100}), {"SPY": Mark(SPY, 40000)}, POLICY)
    assert (st.equity, st.long_market_value, st.short_market_value) == (D(50000), D(40000), D(0))
    assert (st.maintenance_requirement, st.excess, st.margin_call) == (D(10000), D(40000), False)


def test_margin_status_short() -> None:
    # cash 20,000 (10,000 own + 10,000 proceeds); short 100 marked at $120: SMV 12,000
    # equity 20,000 - 12,000 = 8,000; requirement 30 % x 12,000 = 3,600; excess 4,400
    st = margin_status(account("margin", "20000", {"XYZ": -100}), {"XYZ": Mark(XYZ, 12000)}, POLICY)
    assert (st.equity, st.short_market_value, st.maintenance_requirement, st.excess) == (
        D(8000), D(12000), D(3600), D(4400))
    assert not st.margin_call


def test_margin_call() -> None:
    # equity -30,000 + 35,000 = 5,000 < 25 % x 35,000 = 8,750
    st = margin_status(account("margin", "-30000", {"SPY": 100}), {"SPY": Mark(SPY, 35000)}, POLICY)
    assert (st.equity, st.excess, st.margin_call) == (D(5000), D(-3750), True)


def test_cash_account_requires_full_payment() -> None:
    # 500 + 3 x 400 = 1,700 equity; requirement 100 % x 1,200; excess = the cash
    st = margin_status(account("cash", "500", {"SPY": 3}), {"SPY": Mark(SPY, 40000)}, POLICY)
    assert (st.equity, st.maintenance_requirement, st.excess, st.margin_call) == (D(1700), D(1200), D(500), False)
    assert margin_status(account("cash", "-0.01"), {}, POLICY).margin_call


def test_missing_mark_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="holds SPY but no mark"):
        margin_status(account("margin", "0", {"SPY": 1}), {}, POLICY)


def test_buying_power() -> None:
    held = (Reservation("o-1", "SPY", Side.BUY, 1, D("100")),)
    assert buying_power(account("cash", "3100", reservations=held), {}, POLICY) == D(3000)
    # margin: equity 10,000 + 10,000 = 20,000; initial 50 % x 10,000 = 5,000; (20,000 - 5,000) / 0.5 = 30,000
    margin = account("margin", "10000", {"SPY": 100}, (Reservation("o-1", "SPY", Side.BUY, 50, D("5000")),))
    assert buying_power(margin, {"SPY": Mark(SPY, 10000)}, POLICY) == D(25000)
    # under water: excess equity floors at 0, open orders still hold 5,000
    assert buying_power(replace(margin, cash=D("-9000")), {"SPY": Mark(SPY, 10000)}, POLICY) == D(-5000)


# ============================================================================ pre-trade rules
def test_a_good_order_passes() -> None:
    assert pre_trade_check(order(qty=10), ctx(account())) is None


def test_allowed_symbols() -> None:
    r = rejected(order(), ctx(account(), limits=SessionLimits(allowed_symbols=frozenset({"MSFT", "AAPL"}))))
    assert r == Rejection(RejectCode.SYMBOL_NOT_ALLOWED, "SPY is not traded in this session (allowed: AAPL, MSFT)")


def test_max_orders_per_day() -> None:
    limits = SessionLimits(max_orders_per_day=5)
    assert pre_trade_check(order(qty=1), ctx(account(), limits=limits, orders_today=4)) is None
    r = rejected(order(qty=1), ctx(account(), limits=limits, orders_today=5))
    assert r == Rejection(RejectCode.MAX_ORDERS, "You have placed 5 orders today; this session allows 5 a day")


def test_halted() -> None:
    r = rejected(order(qty=1), ctx(account(), market=MarketStatus(True, halted=True)))
    assert r == Rejection(RejectCode.HALTED, "Trading in SPY is halted; orders are refused until it resumes")


def test_market_closed_rules() -> None:
    holiday = MarketStatus(False, holiday="Christmas Day")
    r = rejected(order(qty=1), ctx(account(), market=holiday))
    assert r == Rejection(
        RejectCode.MARKET_CLOSED,
        "The SPY market is closed for Christmas Day. Market orders need an open market; "
        "a GTC or GTD limit order can wait for the open",
    )
    closed = MarketStatus(False)
    day_limit = order(qty=1, order_type=OrderType.LIMIT, limit=9000)
    r = rejected(day_limit, ctx(account(), market=closed))
    assert r.code is RejectCode.MARKET_CLOSED
    assert r.reason.startswith("The SPY market is closed. DAY orders need an open market")
    ioc = msgspec.structs.replace(day_limit, tif=TimeInForce.IOC)
    assert rejected(ioc, ctx(account(), market=closed)).reason.startswith("The SPY market is closed. IOC orders")
    # GTC/GTD limit and stop orders wait for the open
    gtc = msgspec.structs.replace(day_limit, tif=TimeInForce.GTC)
    assert pre_trade_check(gtc, ctx(account(), market=closed)) is None
    gtc_stop = order("SPY", Side.BUY, 1, OrderType.STOP, stop=11000, tif=TimeInForce.GTC)
    assert pre_trade_check(gtc_stop, ctx(account(), market=closed)) is None
    # a GTC market order still needs the market open
    assert rejected(order(qty=1, tif=TimeInForce.GTC), ctx(account(), market=closed)).code is RejectCode.MARKET_CLOSED


def test_no_price_to_estimate() -> None:
    r = rejected(order(qty=1), ctx(account(), bid=None, ask=None))
    assert r == Rejection(RejectCode.NO_LIQUIDITY,
                          "There is no price for SPY yet to check this order against; use a limit order")
    # the last trade is enough
    assert pre_trade_check(order(qty=1), ctx(account(), bid=None, ask=None, last_price=10000)) is None


def test_min_share_price_applies_to_opening_orders_only() -> None:
    limits = SessionLimits(min_share_price=D("5"))
    r = rejected(order(qty=1), ctx(account(), ask=499, bid=498, limits=limits))
    assert r == Rejection(RejectCode.MIN_PRICE, "SPY at $4.99 is below this session's minimum share price of $5.00")
    # selling a long that fell below the minimum is always allowed
    sell = order(side=Side.SELL, qty=10)
    assert pre_trade_check(sell, ctx(account(positions={"SPY": 10}), ask=499, bid=498, limits=limits)) is None


def test_reduce_only() -> None:
    held = account(positions={"SPY": 10})
    assert pre_trade_check(order(side=Side.SELL, qty=10, reduce_only=True), ctx(held)) is None
    r = rejected(order(side=Side.SELL, qty=15, reduce_only=True), ctx(account("margin", positions={"SPY": 10})))
    assert r == Rejection(RejectCode.REDUCE_ONLY,
                          "This reduce-only order would open 5 lots of SPY beyond your position of 10")


def test_cash_accounts_cannot_short_and_open_sells_count() -> None:
    r = rejected(order(side=Side.SELL, qty=100), ctx(account(positions={"SPY": 50})))
    assert r == Rejection(RejectCode.SHORT_SELLING_NOT_ALLOWED,
                          "Cash accounts cannot sell short: you hold 50 SPY and this order sells 100")
    # 50 held, 20 already offered in an open sell: only 30 more may be sold
    offered = account(positions={"SPY": 50}, reservations=(Reservation("o-1", "SPY", Side.SELL, 20),))
    assert pre_trade_check(order(side=Side.SELL, qty=30), ctx(offered)) is None
    r = rejected(order(side=Side.SELL, qty=40), ctx(offered))
    assert r.reason == ("Cash accounts cannot sell short: you hold 50 SPY (20 already in open sell orders) "
                        "and this order sells 40")


def test_session_can_forbid_shorting() -> None:
    r = rejected(order(side=Side.SELL, qty=100), ctx(account("margin"), limits=SessionLimits(shorting_allowed=False)))
    assert r == Rejection(RejectCode.SHORT_SELLING_NOT_ALLOWED,
                          "Short selling is off in this session: you hold 0 SPY and this order sells 100")


def test_hard_to_borrow_reject_or_allow() -> None:
    htb = frozenset({"GME"})
    sell = order("GME", Side.SELL, 100)
    r = rejected(sell, ctx(account("margin"), GME, limits=SessionLimits(hard_to_borrow=htb)))
    assert (r.code, r.reason) == (RejectCode.HARD_TO_BORROW,
                                  "GME is hard to borrow, so it cannot be sold short in this session")
    allow = SessionLimits(hard_to_borrow=htb, hard_to_borrow_policy="allow")
    assert pre_trade_check(sell, ctx(account("margin"), GME, limits=allow)) is None
    assert allow.borrow_rate_for("GME") == D("0.20") and allow.borrow_rate_for("SPY") == D("0.0025")


def test_max_position_pct_of_nav() -> None:
    limits = SessionLimits(max_position_pct_nav=D(25))
    # NAV 10,000; 25 x $100 = 2,500 = 25 % exactly: allowed; 30 x $100 = 30 %: refused
    assert pre_trade_check(order(qty=25), ctx(account(), limits=limits)) is None
    r = rejected(order(qty=30), ctx(account(), limits=limits))
    assert r == Rejection(RejectCode.MAX_POSITION, "This order would make SPY 30% of your account value; "
                                                   "this session allows at most 25% in one position")
    # an open buy of 10 counts: 10 + 20 = 30 %
    pending = account(reservations=(Reservation("o-1", "SPY", Side.BUY, 10, D("1000")),))
    assert rejected(order(qty=20), ctx(pending, limits=limits)).code is RejectCode.MAX_POSITION
    # reducing an oversized position is always allowed: 50 x $100 of a 10,000 NAV is 50 %
    big = account(cash="5000", positions={"SPY": 50})
    assert pre_trade_check(order(side=Side.SELL, qty=10), ctx(big, limits=limits)) is None


def test_insufficient_buying_power_cash_account_with_fees() -> None:
    fees = PerShare("0.005", "1.00", "1")
    c = ctx(account(cash="5000"), fees=fees)
    # 49 x $100 = 4,900 + 1.00 minimum commission = 4,901 <= 5,000
    assert pre_trade_check(order(qty=49), c) is None
    # 50 x $100 = 5,000 + 1.00 = 5,001 > 5,000
    assert rejected(order(qty=50), c) == Rejection(
        RejectCode.INSUFFICIENT_BUYING_POWER, "Not enough buying power: this order needs $5,001.00, you have $5,000.00")


def test_buying_power_uses_the_limit_price() -> None:
    # 150 x $50.00 limit = 7,500 <= 10,000 although 150 x $100 ask would not fit
    assert pre_trade_check(order(qty=150, order_type=OrderType.LIMIT, limit=5000), ctx(account())) is None


def test_margin_account_buying_power_is_twice_excess_equity() -> None:
    c = ctx(account("margin", "10000"))
    assert pre_trade_check(order(qty=200), c) is None  # 20,000 = BP 10,000 / 0.5
    r = rejected(order(qty=201), c)
    assert (r.code, r.reason) == (RejectCode.INSUFFICIENT_BUYING_POWER,
                                  "Not enough buying power: this order needs $20,100.00, you have $20,000.00")
    # a short sale draws on the same buying power: 150 x $99.99 bid = 14,998.50
    assert pre_trade_check(order(side=Side.SELL, qty=150), c) is None


def test_covering_a_short_needs_no_buying_power() -> None:
    # cash 11,000 with 100 short marked at $100: equity 1,000, initial 50 % x 10,000 = 5,000 -> BP 0
    short = account("margin", "11000", {"SPY": -100})
    assert pre_trade_check(order(qty=100), ctx(short)) is None
    # one share beyond the cover opens a long: needs $100.00
    assert rejected(order(qty=101), ctx(short)).reason == (
        "Not enough buying power: this order needs $100.00, you have $0.00")


def test_rules_are_checked_in_the_documented_order() -> None:
    limits = SessionLimits(max_orders_per_day=1, allowed_symbols=frozenset({"SPY"}))
    broke = account(cash="0")
    # fails max orders, market closed and buying power: max orders is reported
    r = rejected(order(qty=1), ctx(broke, limits=limits, orders_today=1, market=MarketStatus(False)))
    assert r.code is RejectCode.MAX_ORDERS
    # fails market closed and buying power: market closed is reported
    assert rejected(order(qty=1), ctx(broke, market=MarketStatus(False))).code is RejectCode.MARKET_CLOSED


def test_context_must_match_the_order() -> None:
    with pytest.raises(ValueError, match="order is for XYZ"):
        pre_trade_check(order("XYZ"), ctx(account()))
    with pytest.raises(ValueError, match="account"):
        pre_trade_check(msgspec.structs.replace(order(), account="someone-else"), ctx(account()))


def test_crypto_money_is_shown_in_its_currency() -> None:
    btc = BINANCE_BTCUSDT_USDM
    acct = AccountState("a-1", "cash", D("1000"))
    o = SubmitOrder(0, "a-1", "c-1", "BTCUSDT", Side.BUY, OrderType.MARKET, 100)  # 0.1 BTC
    r = rejected(o, PreTradeContext(btc, acct, OPEN, ask=618003))  # 0.1 x 61,800.3 = 6,180.03
    assert r.reason == ("Not enough buying power: this order needs 6,180.03000000 USDT, "
                        "you have 1,000.00000000 USDT")


# ============================================================================ liquidation
def test_no_liquidation_without_a_call() -> None:
    assert liquidation_orders(account("margin", "10000", {"SPY": 100}), {"SPY": Mark(SPY, 40000)}, POLICY, 1) == []


def test_liquidation_restores_excess_with_the_buffer() -> None:
    acct = account("margin", "-30000", {"SPY": 100})
    marks = {"SPY": Mark(SPY, 35000)}
    orders = liquidation_orders(acct, marks, POLICY, 7)
    # release 3,750 deficit + 5 % x 5,000 equity = 4,000; 25 % x $350 = 87.50 a share -> ceil(45.7) = 46
    assert [(o.client_order_id, o.symbol, o.side, o.order_type, o.quantity, o.reduce_only, o.ts) for o in orders] == [
        ("liq-a-1-7-SPY", "SPY", Side.SELL, OrderType.MARKET, 46, True, 7)]
    # after: cash -30,000 + 46 x 350 = -13,900; 54 x 350 = 18,900; equity 5,000; requirement 4,725; excess 275 >= 250
    after = margin_status(account("margin", "-13900", {"SPY": 54}), marks, POLICY)
    assert (after.excess, after.margin_call) == (D(275), False)
    assert liquidation_orders(acct, marks, POLICY, 7) == orders  # deterministic


def test_liquidation_takes_largest_positions_first_and_spills_over() -> None:
    # AAA 50 x $400 = 20,000; BBB 200 x $150 = 30,000; cash -46,000 -> equity 4,000
    # requirement 12,500 -> excess -8,500; release 8,500 + 200 = 8,700
    # BBB first (larger): all 200 release 200 x 37.50 = 7,500; 1,200 left -> AAA 12 x 100
    acct = account("margin", "-46000", {"AAA": 50, "BBB": 200})
    orders = liquidation_orders(acct, {"AAA": Mark(AAA, 40000), "BBB": Mark(BBB, 15000)}, POLICY, 99)
    assert [(o.client_order_id, o.side, o.quantity) for o in orders] == [
        ("liq-a-1-99-BBB", Side.SELL, 200), ("liq-a-1-99-AAA", Side.SELL, 12)]


def test_liquidation_buys_in_shorts() -> None:
    # short 100 marked at $190: SMV 19,000; equity 20,000 - 19,000 = 1,000; requirement 5,700
    # release 4,700 + 50 = 4,750; 30 % x 190 = 57 a share -> ceil(83.3) = 84
    orders = liquidation_orders(account("margin", "20000", {"XYZ": -100}), {"XYZ": Mark(XYZ, 19000)}, POLICY, 3)
    assert [(o.side, o.quantity, o.reduce_only) for o in orders] == [(Side.BUY, 84, True)]


def test_liquidation_closes_everything_when_equity_is_gone() -> None:
    # -50,000 + 40,000 = -10,000 equity
    acct = account("margin", "-50000", {"SPY": 100, "XYZ": -10})
    orders = liquidation_orders(acct, {"SPY": Mark(SPY, 40000), "XYZ": Mark(XYZ, 1000)}, POLICY, 1, id_prefix="mc")
    assert [(o.client_order_id, o.side, o.quantity) for o in orders] == [
        ("mc-a-1-1-SPY", Side.SELL, 100), ("mc-a-1-1-XYZ", Side.BUY, 10)]


# ============================================================================ borrow
def test_borrow_cost_actual_360() -> None:
    # 100 x $50 = 5,000 x 20 % x 3 / 360 = 8.333... -> 8.33
    assert borrow_cost(-100, 5000, XYZ, D("0.20"), 3) == D("8.33")
    # 5,000 x 0.25 % x 30 / 360 = 1.041666... -> 1.04
    assert borrow_cost(-100, 5000, XYZ, D("0.0025"), 30) == D("1.04")
    # 5,000 x 1 % x 18 / 360 = 2.50 exactly
    assert borrow_cost(-100, 5000, XYZ, D("0.01"), 18) == D("2.50")
    assert borrow_cost(-100, 5000, XYZ, D("0.20"), 0) == D("0.00")


@pytest.mark.parametrize(
    ("lots", "price", "rate", "days"),
    [(-100, 5000, D("-0.01"), 1), (-100, 5000, D("NaN"), 1), (-100, 5000, D("0.01"), -1), (-100, -1, D("0.01"), 1),
     (-100, 5000, 0.01, 1)],
)
def test_borrow_cost_bad_input(lots: int, price: int, rate: object, days: int) -> None:
    with pytest.raises(ValueError):
        borrow_cost(lots, price, XYZ, rate, days)  # type: ignore[arg-type]


# ============================================================================ configuration
@pytest.mark.parametrize(
    "build",
    [
        lambda: MarginPolicy(initial=D(0)),
        lambda: MarginPolicy(initial=D("1.5")),
        lambda: MarginPolicy(maintenance_long=D("0.6")),  # above the 50 % initial
        lambda: MarginPolicy(maintenance_short=D(0)),
        lambda: MarginPolicy(liquidation_buffer=D(1)),
        lambda: MarginPolicy(initial=D("NaN")),
        lambda: SessionLimits(max_position_pct_nav=D(0)),
        lambda: SessionLimits(max_orders_per_day=-1),
        lambda: SessionLimits(min_share_price=D(-1)),
        lambda: SessionLimits(hard_to_borrow_policy="maybe"),  # type: ignore[arg-type]
        lambda: SessionLimits(borrow_rates={"GME": D("-0.1")}),
        lambda: AccountState("a", "futures", D(0)),  # type: ignore[arg-type]
        lambda: AccountState("a", "cash", D("Infinity")),
        lambda: AccountState("a", "cash", D(0), {"SPY": 1.5}),  # type: ignore[dict-item]
        lambda: Reservation("o", "SPY", Side.BUY, -1),
    ],
)
def test_bad_configuration_raises(build) -> None:
    with pytest.raises(ValueError):
        build()


def test_account_positions_are_read_only() -> None:
    acct = account(positions={"SPY": 1})
    with pytest.raises(TypeError):
        acct.positions["SPY"] = 2  # type: ignore[index]


# ============================================================================ calendar
def ns(y: int, mo: int, d: int, h: int, mi: int) -> int:
    """UTC wall time to ns, for expected values worked out by hand from the New York offset."""
    return int(datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp()) * 10**9


def test_early_close_day_after_thanksgiving_2013() -> None:
    # EST is UTC-5: 09:30 -> 14:30 UTC, 13:00 -> 18:00 UTC
    assert calendar.session_bounds(date(2013, 11, 29)) == (ns(2013, 11, 29, 14, 30), ns(2013, 11, 29, 18, 0))
    assert calendar.early_close(date(2013, 11, 29))


def test_regular_session_in_daylight_saving_time() -> None:
    # 2016-03-14, the Monday after DST began: EDT is UTC-4
    assert calendar.session_bounds(date(2016, 3, 14)) == (ns(2016, 3, 14, 13, 30), ns(2016, 3, 14, 20, 0))


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2016, 12, 26), "Christmas Day"),  # Dec 25 was a Sunday
        (date(2012, 10, 29), "Hurricane Sandy"),
        (date(2012, 10, 30), "Hurricane Sandy"),
        (date(2001, 9, 11), "September 11 attacks"),
        (date(2017, 1, 2), "New Year's Day"),  # Jan 1 was a Sunday
        (date(2024, 1, 15), "Martin Luther King Jr. Day"),
        (date(2024, 2, 19), "Washington's Birthday"),
        (date(2024, 3, 29), "Good Friday"),
        (date(2019, 4, 19), "Good Friday"),
        (date(2024, 5, 27), "Memorial Day"),
        (date(2022, 6, 20), "Juneteenth"),  # June 19 was a Sunday
        (date(2027, 6, 18), "Juneteenth"),  # June 19 is a Saturday
        (date(2015, 7, 3), "Independence Day"),  # July 4 was a Saturday
        (date(2024, 9, 2), "Labor Day"),
        (date(2024, 11, 28), "Thanksgiving Day"),
        (date(2021, 12, 24), "Christmas Day"),  # Dec 25 was a Saturday
        (date(2025, 1, 9), "National day of mourning for President Carter"),
    ],
)
def test_holidays(day: date, name: str) -> None:
    assert not calendar.is_trading_day(day)
    assert calendar.session_bounds(day) is None
    assert calendar.holidays(day.year)[day] == name


@pytest.mark.parametrize(
    "day",
    [
        date(2012, 10, 31),  # reopened after Sandy
        date(2021, 12, 31),  # New Year's Day 2022 fell on a Saturday: not observed on Friday
        date(2021, 6, 18),  # before Juneteenth was an NYSE holiday
        date(2013, 7, 5),  # since 2013 the Friday after a Thursday July 4 is a full day
        date(2019, 7, 5),
    ],
)
def test_full_trading_days(day: date) -> None:
    assert calendar.is_trading_day(day)
    assert not calendar.early_close(day)


@pytest.mark.parametrize(
    "day",
    [
        date(2002, 7, 5),  # July 4 on a Thursday before 2013: Friday early close
        date(2013, 7, 3),  # ... and from 2013 the Wednesday before
        date(2017, 7, 3),  # Monday before a Tuesday July 4
        date(2024, 7, 3),
        date(2018, 12, 24),  # Christmas Eve on a Monday
        date(2003, 12, 26),  # ad hoc
        date(2000, 11, 24),  # day after Thanksgiving
    ],
)
def test_early_closes(day: date) -> None:
    assert calendar.early_close(day)
    open_ns, close_ns = calendar.session_bounds(day)  # type: ignore[misc]
    assert close_ns - open_ns == (3 * 60 + 30) * 60 * 10**9  # 09:30 to 13:00


def test_no_early_close_on_july_2_when_july_3_is_the_holiday() -> None:
    assert not calendar.early_close(date(2015, 7, 2)) and calendar.is_trading_day(date(2015, 7, 2))
    assert not calendar.early_close(date(2002, 7, 3))  # a Wednesday before 2013


def test_trading_days_per_year_match_the_published_counts() -> None:
    def count(year: int) -> int:
        d, n = date(year, 1, 1), 0
        while d.year == year:
            n += calendar.is_trading_day(d)
            d += timedelta(days=1)
        return n

    # NYSE: 2001 had 248 sessions (9/11), 2012 had 250 (Sandy), 2022 251, 2023 250, 2024 252
    assert [count(y) for y in (2001, 2012, 2022, 2023, 2024)] == [248, 250, 251, 250, 252]


def test_easter_computus() -> None:
    assert [calendar.easter_sunday(y) for y in (2000, 2008, 2011, 2030)] == [
        date(2000, 4, 23), date(2008, 3, 23), date(2011, 4, 24), date(2030, 4, 21)]


def test_weekends_and_range() -> None:
    assert not calendar.is_trading_day(date(2024, 6, 1))  # Saturday
    with pytest.raises(ValueError, match="covers 2000-2030"):
        calendar.is_trading_day(date(1999, 12, 31))
    with pytest.raises(ValueError):
        calendar.session_bounds(date(2031, 1, 2))


def test_market_status_uses_the_calendar_for_us_equities() -> None:
    # 2013-11-29 early close: 17:59 UTC is 12:59 New York (open), 18:30 UTC is 13:30 (closed)
    assert MarketStatus.at(SPY, ns(2013, 11, 29, 17, 59)) == MarketStatus(True)
    assert MarketStatus.at(SPY, ns(2013, 11, 29, 18, 30)) == MarketStatus(False)
    assert MarketStatus.at(SPY, ns(2012, 10, 29, 15, 0), halted=True) == MarketStatus(False, True, "Hurricane Sandy")
    assert MarketStatus.at(SPY, ns(2024, 6, 1, 15, 0)) == MarketStatus(False)  # Saturday, no holiday name
    # crypto trades around the clock, holidays included
    assert MarketStatus.at(BINANCE_BTCUSDT_USDM, ns(2016, 12, 26, 15, 0)) == MarketStatus(True)


def test_non_numeric_parameters_are_a_clear_value_error() -> None:
    # Used to escape as decimal.InvalidOperation from Decimal("abc").
    with pytest.raises(ValueError, match="initial is not a number: 'abc'"):
        MarginPolicy(initial="abc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="never a float"):
        MarginPolicy(initial=0.5)  # type: ignore[arg-type]
