"""The exact ledger and corporate actions. Every expected value is worked out by hand in a comment."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import msgspec
import pytest

from vtrade.core.errors import DataError
from vtrade.core.events import Side, decode, encode
from vtrade.core.instruments import BINANCE_BTCUSDT_SPOT, us_equity
from vtrade.execution.accounts import MarginPolicy, Mark, SessionLimits
from vtrade.execution.events import OrderAccepted, OrderFilled
from vtrade.execution.orders import Liquidity
from vtrade.portfolio.corporate_actions import (
    ActionKind,
    CorporateAction,
    FactorRow,
    actions_from_factor_rows,
    next_trading_day,
    read_corporate_actions,
    split_ratio,
)
from vtrade.portfolio.ledger import BorrowAccrual, DayStart, Ledger, LedgerError, Lot

D = Decimal
XYZ, AAPL, AIG = us_equity("XYZ"), us_equity("AAPL"), us_equity("AIG")
BOOKS = [XYZ, AAPL, AIG]


def ns(day: str, hh: int = 15, mm: int = 0) -> int:
    """UTC ns of ``day`` at hh:mm UTC (15:00 UTC is inside the New York session)."""
    d = date.fromisoformat(day)
    return int(datetime(d.year, d.month, d.day, hh, mm, tzinfo=UTC).timestamp()) * 10**9


def fill(fid: str, ts: int, side: Side, price: int, qty: int, *, symbol: str = "XYZ", fee: str = "0",
         account: str = "a-1", leaves: int = 0) -> OrderFilled:
    return OrderFilled(ts, account, "c-" + fid, symbol, fid, side, price, qty, leaves, Liquidity.TAKER,
                       D(fee), price * 2, 0.0, "test")


def new_ledger(cash: str = "100000") -> Ledger:
    return Ledger("a-1", BOOKS, cash)


BUY, SELL = Side.BUY, Side.SELL


# ---------------------------------------------------------------------------- fills and P&L
def test_partial_fills_of_one_order() -> None:
    led = new_ledger()
    # One order for 100 filled 30 @ $10.00 (fee 0.30) then 70 @ $10.05 (fee 0.70).
    c1 = led.apply(fill("f1", ns("2024-01-02"), BUY, 1000, 30, fee="0.30", leaves=70))
    c2 = led.apply(fill("f2", ns("2024-01-02", 15, 1), BUY, 1005, 70, fee="0.70"))
    assert c1 is not None and c1.cash == D("-300.30") and c1.positions == (("XYZ", 30),)
    assert c2 is not None and c2.cash == D("-704.20")  # 703.50 + 0.70
    assert led.positions == {"XYZ": 100}
    # 100000 - 300 - 0.30 - 703.50 - 0.70
    assert led.cash == D("98995.50")
    assert led.fees_paid == D("1.00")
    pos = led.position("XYZ")
    assert pos.cost_basis == D("1003.50") and pos.average_price == D("10.035")
    assert [(lot.quantity, lot.cost) for lot in pos.lots] == [(30, D("300.00")), (70, D("703.50"))]
    # At $10.10: value 1010.00 - cost 1003.50 = 6.50 under both methods; NAV 98995.50 + 1010.
    assert led.unrealized_pnl({"XYZ": 1010}, "fifo") == led.unrealized_pnl({"XYZ": 1010}, "average") == D("6.50")
    assert led.nav({"XYZ": 1010}) == D("100005.50")
    assert led.realized_pnl() == 0


def test_fifo_versus_average_cost_on_buy_buy_sell() -> None:
    led = new_ledger()
    led.apply(fill("f1", 1, BUY, 1000, 100))  # 100 @ $10
    led.apply(fill("f2", 2, BUY, 1200, 100))  # 100 @ $12 -> average $11
    ch = led.apply(fill("f3", 3, SELL, 1300, 150))  # 150 @ $13
    # FIFO: 100 x (13 - 10) + 50 x (13 - 12) = 350; average: 150 x (13 - 11) = 300.
    assert ch is not None and (ch.realized_fifo, ch.realized_average) == (D("350"), D("300"))
    assert led.realized_pnl("fifo") == D("350") and led.realized_pnl("average") == D("300")
    pos = led.position("XYZ")
    assert [(lot.quantity, lot.cost, lot.source) for lot in pos.lots] == [(50, D("600"), "f2")]  # 50 @ $12 left
    assert pos.cost_basis == D("550")  # 50 x $11
    # At $13: FIFO 650 - 600 = 50, average 650 - 550 = 100; realized + unrealized agree (400).
    assert led.unrealized_pnl({"XYZ": 1300}, "fifo") == D("50")
    assert led.unrealized_pnl({"XYZ": 1300}, "average") == D("100")
    # Close at $11: FIFO 50 x (11 - 12) = -50 -> 300; average 50 x (11 - 11) = 0 -> 300. Flat: equal.
    led.apply(fill("f4", 4, SELL, 1100, 50))
    assert led.realized_pnl("fifo") == led.realized_pnl("average") == D("300")
    assert led.positions == {} and led.position("XYZ").lots == ()
    assert led.cash == D("100300")
    with pytest.raises(LedgerError, match="'fifo' or 'average'"):
        led.realized_pnl("lifo")  # type: ignore[arg-type]


def test_average_cost_rounds_only_when_the_share_does_not_terminate() -> None:
    led = new_ledger()
    led.apply(fill("f1", 1, BUY, 1000, 1))  # 1 @ 10.00
    led.apply(fill("f2", 2, BUY, 1001, 2))  # 2 @ 10.01 -> basis 30.02 over 3
    led.apply(fill("f3", 3, SELL, 1100, 1))
    # Average: 30.02 / 3 = 10.00666.. -> 10.01 (half-even to the cent); 11 - 10.01 = 0.99.
    # FIFO: the $10.00 lot: 11 - 10 = 1.00.
    assert led.realized_pnl("average") == D("0.99") and led.realized_pnl("fifo") == D("1.00")
    assert led.position("XYZ").cost_basis == D("20.01")  # the residue stays in the open basis
    led.apply(fill("f4", 4, SELL, 1100, 2))
    # Average: 22.00 - 20.01 = 1.99 -> 2.98; FIFO: 2 x (11 - 10.01) = 1.98 -> 2.98. Nothing lost.
    assert led.realized_pnl("average") == led.realized_pnl("fifo") == D("2.98")


def test_short_and_cover_and_crossing_through_zero() -> None:
    led = new_ledger()
    led.apply(fill("s1", 1, SELL, 5000, 100, fee="1.00"))  # short 100 @ $50: +5000 - 1
    assert led.positions == {"XYZ": -100} and led.cash == D("104999.00")
    assert led.position("XYZ").cost_basis == D("-5000")
    # At $48 the short is up 100 x 2 = 200.
    assert led.unrealized_pnl({"XYZ": 4800}) == D("200")
    c = led.apply(fill("b1", 2, BUY, 4500, 40))  # cover 40 @ $45: +40 x 5 = 200
    assert c is not None and c.realized_fifo == c.realized_average == D("200")
    led.apply(fill("b2", 3, BUY, 5200, 60))  # cover 60 @ $52: 60 x -2 = -120
    assert led.realized_pnl("fifo") == led.realized_pnl("average") == D("80")
    # 100000 + 5000 - 1 - 1800 - 3120 = 100079 = start + 80 realized - 1 fee.
    assert led.cash == D("100079.00") and led.positions == {}

    # Long 10 @ $10, sell 25 @ $12: realize 10 x 2 = 20, then short 15 @ $12 (cost -180).
    led.apply(fill("x1", 4, BUY, 1000, 10))
    ch = led.apply(fill("x2", 5, SELL, 1200, 25))
    assert ch is not None and ch.realized_fifo == D("20") and ch.positions == (("XYZ", -15),)
    pos = led.position("XYZ")
    assert pos.cost_basis == D("-180") and pos.lots == (Lot(-15, D("-180"), 5, "x2"),)
    led.apply(fill("x3", 6, BUY, 1100, 15))  # cover at $11: 15 x 1 = 15
    assert led.realized_pnl() == D("80") + D("20") + D("15")


def test_fees_rebates_and_gross_realized() -> None:
    led = new_ledger("1000")
    led.apply(fill("f1", 1, BUY, 1000, 10, fee="1.25"))   # taker fee
    led.apply(fill("f2", 2, SELL, 1100, 10, fee="-0.20"))  # maker rebate
    # Realized is gross (10 x $1 = 10); fees 1.25 - 0.20 = 1.05; cash 1000 + 10 - 1.05.
    assert led.realized_pnl() == D("10")
    assert led.fees_paid == D("1.05") and led.position("XYZ").fees == D("1.05")
    assert led.cash == D("1008.95") and led.nav({}) == D("1008.95")


def test_borrow_accrues_daily_and_once_per_day() -> None:
    led = new_ledger()
    led.apply(fill("s1", ns("2024-01-05"), SELL, 5000, 100))  # short 100 @ $50
    led.apply(fill("l1", ns("2024-01-05", 15, 5), BUY, 1000, 10, symbol="AIG"))  # a long: never charged
    rates = {"XYZ": D("0.20")}
    marks = {"XYZ": 5000, "AIG": 1000}
    # $5,000 x 20 % / 360 = 2.7777.. -> 2.78 for each of Fri, Sat, Sun (actual/360 counts weekends).
    for day in ("2024-01-05", "2024-01-06", "2024-01-07"):
        ch = led.accrue_borrow(date.fromisoformat(day), marks, rates)
        assert ch is not None and ch.borrow == D("2.78") and ch.cash == D("-2.78")
    before = led.copy()
    assert led.accrue_borrow(date(2024, 1, 6), marks, rates) is None  # same day again: no-op
    assert led == before
    # Monday at $45: $4,500 x 20 % / 360 = 2.50.
    ch = led.accrue_borrow(date(2024, 1, 8), {"XYZ": "45.00", "AIG": 1000}, SessionLimits(borrow_rates=rates))
    assert ch is not None and ch.borrow == D("2.50")
    assert led.borrow_paid == D("10.84") and led.position("XYZ").borrow == D("10.84")
    assert led.position("AIG").borrow == 0
    # 100000 + 5000 - 100 - 10.84
    assert led.cash == D("104889.16")
    snapshot = led.copy()
    with pytest.raises(LedgerError, match="accrue days in order"):
        led.accrue_borrow(date(2024, 1, 4), marks, rates)
    with pytest.raises(LedgerError, match="no borrow rate for short position XYZ"):
        led.accrue_borrow(date(2024, 1, 9), marks, {"AIG": D("0.01")})
    with pytest.raises(LedgerError, match="no mark for short position"):
        led.accrue_borrow(date(2024, 1, 9), {"AIG": 1000}, rates)
    assert led == snapshot


def test_margin_usage_through_margin_status() -> None:
    led = new_ledger("5000")
    led.apply(fill("f1", 1, BUY, 10000, 100))  # 100 @ $100 with $5,000: cash -5,000 (borrowed)
    st = led.margin({"XYZ": 9000})
    # Equity -5000 + 9000 = 4000; requirement 25 % x 9000 = 2250; excess 1750.
    assert (st.equity, st.maintenance_requirement, st.excess, st.margin_call) == (
        D("4000"), D("2250"), D("1750"), False)
    st = led.margin({"XYZ": Mark(XYZ, 6000)})
    # Equity 1000 < 25 % x 6000 = 1500: a margin call.
    assert (st.equity, st.excess, st.margin_call) == (D("1000"), D("-500"), True)
    # A short adds 30 % of its value: short 10 AIG @ $20 -> cash +200, requirement +60.
    led.apply(fill("f2", 2, SELL, 2000, 10, symbol="AIG"))
    st = led.margin({"XYZ": 9000, "AIG": 2000}, MarginPolicy())
    assert (st.short_market_value, st.maintenance_requirement, st.equity) == (D("200"), D("2310"), D("4000"))
    assert led.account_state().positions == {"AIG": -10, "XYZ": 100}
    with pytest.raises(LedgerError, match="no mark for held position"):
        led.margin({"XYZ": 9000})


def test_day_pnl_from_the_nav_at_the_start_of_the_day() -> None:
    led = new_ledger("10000")
    led.apply(fill("f1", ns("2024-01-02"), BUY, 1000, 100))  # 100 @ $10
    ch = led.start_day(date(2024, 1, 3), {"XYZ": 1000})
    assert ch is not None and ch.nav == D("10000")  # 9000 cash + 1000
    led.apply(fill("f2", ns("2024-01-03"), BUY, 1100, 100, fee="1"))
    # 9000 - 1100 - 1 + 200 x 12 = 10299 -> +299 today.
    assert led.day_pnl({"XYZ": 1200}) == D("299")
    assert led.start_day(date(2024, 1, 3), {"XYZ": 5}) is None  # the same day again: kept
    assert led.day_start == (date(2024, 1, 3), D("10000"))
    with pytest.raises(LedgerError, match="comes after the start of 2024-01-03"):
        led.start_day(date(2024, 1, 2), {"XYZ": 1000})
    with pytest.raises(LedgerError, match="start_day"):
        new_ledger().day_pnl({})


# ---------------------------------------------------------------------------- idempotency, order, errors
def test_duplicate_fill_is_a_no_op_and_a_reused_id_is_refused() -> None:
    led = new_ledger()
    f = fill("f1", 1, BUY, 1000, 10, fee="0.10")
    assert led.apply(f) is not None
    before = led.copy()
    assert led.apply(f) is None
    assert led.apply(decode(encode(f))) is None  # as redelivered from the journal
    assert led == before and led.cash == D("99899.90")
    with pytest.raises(LedgerError, match="already applied with different content"):
        led.apply(fill("f1", 1, BUY, 1000, 11, fee="0.10"))
    assert led == before


def test_events_of_another_account_or_symbol_are_refused_unchanged() -> None:
    led = new_ledger()
    led.apply(fill("f1", 1, BUY, 1000, 10))
    before = led.copy()
    with pytest.raises(LedgerError, match="for account 'b-2', not 'a-1'"):
        led.apply(fill("f2", 2, BUY, 1000, 10, account="b-2"))
    with pytest.raises(LedgerError, match="sent to ledger 'a-1'"):
        led.apply(OrderAccepted(2, "b-2", "c-9", "XYZ"))
    with pytest.raises(LedgerError, match="'MSFT' is not an instrument"):
        led.apply(fill("f3", 2, BUY, 1000, 10, symbol="MSFT"))
    with pytest.raises(LedgerError, match="not str"):
        led.apply("fill")
    assert led == before
    assert led.apply(OrderAccepted(2, "a-1", "c-9", "XYZ")) is None  # own non-fill event: nothing moves
    with pytest.raises(LedgerError, match="one currency"):
        Ledger("a-1", [XYZ, BINANCE_BTCUSDT_SPOT])


def test_out_of_order_fill_is_refused() -> None:
    led = new_ledger()
    led.apply(fill("f1", 200, BUY, 1000, 10))
    before = led.copy()
    with pytest.raises(LedgerError, match="earlier than the last applied fill"):
        led.apply(fill("f0", 100, BUY, 1000, 10))
    assert led == before
    assert led.apply(fill("f2", 200, BUY, 1000, 5)) is not None  # same ts (one sweep): in order
    assert led.positions == {"XYZ": 15}



def test_fills_of_different_symbols_may_come_out_of_time_order() -> None:
    """The exec log is keyed by account: one account's symbols interleave in the order the
    execution workers ran. Only each symbol's own order is fixed, and only it is checked."""
    led = new_ledger()
    led.apply(fill("f1", 200, BUY, 1000, 10))
    assert led.apply(fill("f2", 100, BUY, 1000, 10, symbol="AAPL")) is not None
    with pytest.raises(LedgerError, match="last applied fill of AAPL"):
        led.apply(fill("f3", 50, BUY, 1000, 10, symbol="AAPL"))
    assert led.positions == {"AAPL": 10, "XYZ": 10}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("quantity", -5, "quantity must be a positive int"),
        ("quantity", 0, "quantity must be a positive int"),
        ("price", -1000, "price must be a positive int"),
        ("price", 10.5, "price must be a positive int"),
        ("fee", D("NaN"), "fee must be a finite Decimal"),
        ("fee", D("Infinity"), "fee must be a finite Decimal"),
        ("fee", 0.5, "fee must be a finite Decimal"),
    ],
)
def test_malformed_fill_is_refused_unchanged(field: str, value: object, message: str) -> None:
    led = new_ledger()
    led.apply(fill("f1", 1, BUY, 1000, 10))
    before = led.copy()
    good = fill("f2", 2, BUY, 1000, 10)
    bad = msgspec.structs.replace(good, **{field: value})
    with pytest.raises(LedgerError, match=message):
        led.apply(bad)
    assert led == before
    assert led.apply(good) is not None  # the id was not burnt by the refused version


@pytest.mark.parametrize(
    ("mark", "message"),
    [
        (math.nan, "finite price"),
        (math.inf, "finite price"),
        (-math.inf, "finite price"),
        (D("NaN"), "finite price"),
        ("inf", "finite price"),
        ("ten", "not a number"),
        ("10.005", "not on the 0.01 grid"),
        (-5, "must not be negative"),
        (True, "must be a price"),
        (None, "must be ticks"),
    ],
)
def test_bad_marks_are_clear_errors_and_change_nothing(mark: object, message: str) -> None:
    led = new_ledger()
    led.apply(fill("s1", ns("2024-01-05"), SELL, 5000, 10))
    before = led.copy()
    with pytest.raises(LedgerError, match=message):
        led.nav({"XYZ": mark})  # type: ignore[dict-item]
    with pytest.raises(LedgerError, match=message):
        led.accrue_borrow(date(2024, 1, 5), {"XYZ": mark}, D("0.1"))  # type: ignore[dict-item]
    with pytest.raises(LedgerError, match=message):
        led.start_day(date(2024, 1, 5), {"XYZ": mark})  # type: ignore[dict-item]
    assert led == before and led.borrow_paid == 0 and led.day_start is None


def test_marks_accept_ticks_prices_and_mark_objects_alike() -> None:
    led = new_ledger()
    led.apply(fill("f1", 1, BUY, 1000, 10))
    # 10 @ $10.00 marked at $10.25 three ways: NAV 100000 - 100 + 102.50.
    for mark in (1025, "10.25", D("10.25"), 10.25, Mark(XYZ, 1025)):
        assert led.nav({"XYZ": mark, "UNKNOWN": math.nan}) == D("100002.50")


# ---------------------------------------------------------------------------- corporate actions
def test_factor_file_gives_the_real_splits_and_dividend() -> None:
    aapl = read_corporate_actions(tickers="AAPL", start="2014-05-01", end="2014-06-30")
    # Dividend ex 2014-05-08 (row 2014-05-07): 592.33 x (1 - 0.8961764 / 0.9011818) = 3.2898.. -> 3.29.
    # Split ex 2014-06-09 (row Fri 2014-06-06): 0.25 / 0.0357143 = 6.9999972 -> 7, reference 645.57.
    assert aapl == [
        CorporateAction.dividend("AAPL", date(2014, 5, 8), "3.29", "592.33"),
        CorporateAction.split("AAPL", date(2014, 6, 9), 7, "645.57"),
    ]
    aig = read_corporate_actions(tickers=["AIG"], start="2009-01-01", end="2009-12-31")
    # Row 2009-06-30: split factor 20 -> 1, i.e. 1 new share per 20 (reverse split), close $1.13.
    assert aig == [CorporateAction.split("AIG", date(2009, 7, 1), Fraction(1, 20), "1.13")]
    # AAPL's 2000 and 2005 2:1 and 2020 4:1 splits come out as well (ex-dates are the Lean row + 1 session).
    splits = [(str(a.ex_date), a.ratio) for a in read_corporate_actions(tickers="AAPL") if a.kind is ActionKind.SPLIT]
    assert splits == [("2000-06-21", 2), ("2005-02-28", 2), ("2014-06-09", 7), ("2020-08-31", 4)]


def test_factor_row_formulas_by_hand() -> None:
    rows = [
        FactorRow(date(2024, 3, 1), D("0.98"), D("0.5"), D("50.00")),  # Friday
        FactorRow(date(2024, 6, 3), D("1"), D("1"), D("30")),
    ]
    # Dividend: 50 x (1 - 0.98 / 1) = 1.00; split 1 / 0.5 = 2; both ex Monday 2024-03-04, dividend first.
    assert actions_from_factor_rows("ABC", rows) == [
        CorporateAction.dividend("ABC", date(2024, 3, 4), "1.00", "50.00"),
        CorporateAction.split("ABC", date(2024, 3, 4), 2, "50.00"),
    ]
    # Rounding half-even to cents by default, and finer on request: 33.33 x 0.015 = 0.49995.
    rows = [FactorRow(date(2024, 3, 1), D("0.985"), D("1"), D("33.33")),
            FactorRow(date(2024, 6, 3), D("1"), D("1"), D("1"))]
    assert actions_from_factor_rows("ABC", rows)[0].amount == D("0.50")
    assert actions_from_factor_rows("ABC", rows, decimal_places=4)[0].amount == D("0.5000")
    assert actions_from_factor_rows("ABC", rows, decimal_places=5)[0].amount == D("0.49995")
    assert next_trading_day(date(2024, 3, 28)) == date(2024, 4, 1)  # Good Friday skipped
    assert split_ratio(D("7.11111022"), D("10.66670000")) == Fraction(3, 2)  # AIG 1998, 6-digit noise
    assert split_ratio(D("0.997307"), D("1")) == Fraction(1000000, 997307)  # GOOG 2015: kept exact


def test_factor_file_errors_name_the_line(tmp_path: Path) -> None:
    p = tmp_path / "factors.csv"
    p.write_text("ticker,date,price_factor,split_factor,reference_price\n"
                 "ABC,2024-03-01,0.99,1,10\nABC,2024-06-03,0.98,1,11\nABC,2050-12-31,1,1,0\n")
    with pytest.raises(DataError, match=r"factors.csv:2: .*price factor falls"):
        read_corporate_actions(p)
    p.write_text("ticker,date,price_factor,split_factor,reference_price\nABC,2024-03-01,nan,1,10\n")
    with pytest.raises(DataError, match=r"factors.csv:2"):
        read_corporate_actions(p)


def test_corporate_action_records_validate() -> None:
    with pytest.raises(ValueError, match="never a float"):
        CorporateAction.dividend("ABC", date(2024, 1, 2), 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be positive"):
        CorporateAction.split("ABC", date(2024, 1, 2), Fraction(-2))
    with pytest.raises(ValueError, match="exact"):
        CorporateAction("ABC", date(2024, 1, 2), ActionKind.SPLIT, ratio=1.5)  # type: ignore[arg-type]
    a = CorporateAction.split("ABC", date(2024, 1, 2), 2)
    with pytest.raises(AttributeError):
        a.ratio = Fraction(3)  # type: ignore[misc]


def test_aapl_seven_for_one_split_from_the_factor_file() -> None:
    (split,) = read_corporate_actions(tickers="AAPL", start="2014-06-09", end="2014-06-09")
    led = new_ledger()
    led.apply(fill("f1", ns("2014-06-02"), BUY, 60000, 10, symbol="AAPL"))  # 10 @ $600 = 6000
    led.apply(fill("f2", ns("2014-06-05"), BUY, 64000, 5, symbol="AAPL"))  # 5 @ $640 = 3200
    cash = led.cash
    ch = led.apply(split)
    # 15 x 7 = 105 shares, no fraction: cash unchanged; each lot x 7 keeping its cost.
    assert ch is not None and ch.cash == 0 and ch.positions == (("AAPL", 105),)
    pos = led.position("AAPL")
    assert [(lot.quantity, lot.cost) for lot in pos.lots] == [(70, D("6000")), (35, D("3200"))]
    assert pos.cost_basis == D("9200") and led.cash == cash
    assert led.apply(split) is None  # idempotent
    # A fill dated after the last one but before the ex-date is out of order now.
    with pytest.raises(LedgerError, match="before the ex-date"):
        led.apply(fill("f0", ns("2014-06-06"), BUY, 64000, 1, symbol="AAPL"))
    # Sell 80 @ $95 after the split.
    # FIFO: 70 x 95 - 6000 = 650, then 10 x 95 - 3200 x 10/35 (914.2857.. -> 914.29) = 35.71: 685.71.
    # Average: 9200 x 80/105 = 7009.5238.. -> 7009.52; 7600 - 7009.52 = 590.48.
    led.apply(fill("f3", ns("2014-06-10"), SELL, 9500, 80, symbol="AAPL"))
    assert led.realized_pnl("fifo") == D("685.71") and led.realized_pnl("average") == D("590.48")
    pos = led.position("AAPL")
    assert pos.lots[0].cost == D("2285.71") and pos.cost_basis == D("2190.48")


def test_reverse_split_cashes_out_the_fraction_long_and_short() -> None:
    (split,) = read_corporate_actions(tickers="AIG", start="2009-07-01", end="2009-07-01")
    led = new_ledger("1000")
    led.apply(fill("f1", ns("2009-06-29"), BUY, 120, 30, symbol="AIG"))  # 30 @ $1.20 = 36.00
    ch = led.apply(split)
    # 30 / 20 = 1.5 new shares: keep 1, cash 0.5 x (1.13 x 20 = 22.60) = 11.30.
    # FIFO/average cost of the kept share: 36 x 1/1.5 = 24.00; of the half: 12.00; realized 11.30 - 12 = -0.70.
    assert ch is not None and ch.cash == D("11.30") and ch.realized_fifo == ch.realized_average == D("-0.70")
    pos = led.position("AIG")
    assert pos.quantity == 1 and pos.cost_basis == D("24.00")
    assert pos.lots == (Lot(1, D("24.00"), ns("2009-06-29"), "f1"),)
    assert led.cash == D("1000") - D("36.00") + D("11.30")

    short = new_ledger("1000")
    short.apply(fill("s1", ns("2009-06-29"), SELL, 120, 30, symbol="AIG"))  # short 30 @ $1.20: +36.00
    ch = short.apply(split)
    # -1.5 -> -1 share; the half share is bought back for 0.5 x 22.60 = 11.30 (cash -11.30). It was
    # sold short for 12.00 of the 36.00, so realized = 12.00 - 11.30 = +0.70.
    assert ch is not None and ch.cash == D("-11.30") and ch.realized_fifo == D("0.70")
    assert short.positions == {"AIG": -1} and short.position("AIG").cost_basis == D("-24.00")


def test_non_integer_split_recuts_fifo_lots_and_conserves_cost() -> None:
    led = new_ledger()
    led.apply(fill("f1", 1, BUY, 1000, 3))  # 3 @ $10 = 30
    led.apply(fill("f2", 2, BUY, 1200, 3))  # 3 @ $12 = 36
    led.apply(fill("f3", 3, BUY, 1100, 1))  # 1 @ $11 = 11
    ch = led.apply(CorporateAction.split("XYZ", date(1970, 1, 2), Fraction(3, 2), "12.00"))
    # 7 x 1.5 = 10.5 -> 10 shares + 0.5 cashed at 12 / 1.5 = 8.00 -> $4.00.
    # Lot ends at trunc(3 x 1.5) = 4, trunc(6 x 1.5) = 9, 10 new shares = 8/3, 6, 20/3 old shares:
    # costs 30 x (8/3)/3 = 26.666.. -> 26.67; 66 - 26.67 = 39.33; 66 + 11 x (2/3) = 73.333.. -> 73.33 - 66 = 7.33.
    # The half share's FIFO cost is 77 - 73.33 = 3.67, realized 4.00 - 3.67 = 0.33.
    # Average: 77 x 0.5 / 10.5 = 3.666.. -> 3.67, realized 0.33.
    pos = led.position("XYZ")
    assert [(lot.quantity, lot.cost) for lot in pos.lots] == [(4, D("26.67")), (5, D("39.33")), (1, D("7.33"))]
    assert ch is not None and ch.cash == D("4.00") and ch.realized_fifo == ch.realized_average == D("0.33")
    assert pos.quantity == 10 and pos.fifo_cost == pos.cost_basis == D("73.33")


def test_dividends_credit_longs_and_debit_shorts() -> None:
    (div,) = read_corporate_actions(tickers="AAPL", start="2014-05-08", end="2014-05-08")
    led = Ledger("a-1", BOOKS, "0")
    led.apply(fill("f1", ns("2014-05-01"), BUY, 59000, 10, symbol="AAPL"))   # long 10 AAPL
    led.apply(fill("f2", ns("2014-05-01", 15, 1), SELL, 5000, 10))           # short 10 XYZ
    ch = led.apply(div)
    assert ch is not None and ch.dividends == ch.cash == D("32.90")  # 10 x 3.29
    assert led.dividends == D("32.90") and led.position("AAPL").dividends == D("32.90")
    assert led.realized_pnl() == 0 and led.position("AAPL").cost_basis == D("5900")  # basis untouched
    ch = led.apply(CorporateAction.dividend("XYZ", date(2014, 5, 8), "0.25"))
    assert ch is not None and ch.cash == D("-2.50")  # a short pays 10 x 0.25
    # -5900 + 500 + 32.90 - 2.50
    assert led.cash == D("-5369.60") and led.dividends == D("30.40")
    assert led.apply(div) is None
    with pytest.raises(LedgerError, match="different terms"):
        led.apply(CorporateAction.dividend("AAPL", date(2014, 5, 8), "3.30"))
    led.apply(CorporateAction.split("XYZ", date(2014, 5, 9), 2, "50"))
    with pytest.raises(LedgerError, match="before that day's split"):
        led.apply(CorporateAction.dividend("XYZ", date(2014, 5, 9), "0.10"))


def test_corporate_action_after_a_later_fill_is_out_of_order() -> None:
    led = new_ledger()
    led.apply(fill("f1", ns("2014-06-09"), BUY, 9300, 10, symbol="AAPL"))  # already on the ex-date
    before = led.copy()
    with pytest.raises(LedgerError, match="on or after its ex-date"):
        led.apply(CorporateAction.split("AAPL", date(2014, 6, 9), 7, "645.57"))
    assert led == before


# ---------------------------------------------------------------------------- rebuild
def test_rebuild_from_the_log_equals_the_live_ledger() -> None:
    (div,) = read_corporate_actions(tickers="AAPL", start="2014-05-08", end="2014-05-08")
    (split,) = read_corporate_actions(tickers="AAPL", start="2014-06-09", end="2014-06-09")
    live = new_ledger()
    log: list[object] = []

    def run(change: object) -> None:
        if change is not None:
            log.append(change.cause)  # type: ignore[attr-defined]

    run(live.apply(fill("f1", ns("2014-05-01"), BUY, 59000, 10, symbol="AAPL", fee="1")))
    run(live.apply(fill("f2", ns("2014-05-02"), SELL, 5000, 100, fee="1")))
    run(live.apply(OrderAccepted(ns("2014-05-02"), "a-1", "c-x", "XYZ")))
    run(live.accrue_borrow(date(2014, 5, 2), {"XYZ": 5000}, D("0.05")))
    run(live.accrue_borrow(date(2014, 5, 3), {"XYZ": "50.10"}, D("0.05")))
    run(live.apply(div))
    run(live.start_day(date(2014, 6, 9), {"AAPL": 64557, "XYZ": 5000}))
    run(live.apply(split))
    run(live.apply(fill("f3", ns("2014-06-10"), SELL, 9500, 33, symbol="AAPL")))
    run(live.apply(fill("f4", ns("2014-06-10", 16), BUY, 4900, 60)))
    assert all(isinstance(c, OrderFilled | BorrowAccrual | DayStart | CorporateAction) for c in log)
    assert len(log) == 9  # the OrderAccepted moved nothing and is not a cause

    rebuilt = Ledger.rebuild(log, "a-1", BOOKS, "100000")
    assert rebuilt == live
    # Through the journal's encoding, with at-least-once duplicates.
    journal = [decode(encode(e)) if isinstance(e, OrderFilled) else e for e in log]
    assert Ledger.rebuild(journal + journal[:4] + journal, "a-1", BOOKS, "100000") == live
    assert rebuilt.realized_pnl("fifo") == live.realized_pnl("fifo") != 0
    # Equality is not vacuous: a log missing one accrual gives another ledger.
    assert Ledger.rebuild(log[:3] + log[4:], "a-1", BOOKS, "100000") != live


def test_many_partial_closes_keep_the_basis_at_the_money_unit() -> None:
    """Regression: closing a 1,600-lot short one lot at a time used to grow the average-cost
    basis by digits at every step until it no longer fit the exact context (Inexact)."""
    from vtrade.core.instruments import us_equity
    from vtrade.execution.events import OrderFilled
    from vtrade.execution.orders import Liquidity

    spy = us_equity("SPY")
    ledger = Ledger("a", [spy], Decimal("1000000"))
    ledger.apply(OrderFilled(1, "a", "c0", "SPY", "f0", Side.SELL, 16767, 1600, 0, Liquidity.TAKER, Decimal(0), 0,
                             0.0, "m"))  # fmt: skip
    for i in range(1600):
        price = 16765 + i % 7
        ledger.apply(OrderFilled(2 + i, "a", f"c{i + 1}", "SPY", f"f{i + 1}", Side.BUY, price, 1, 0, Liquidity.TAKER,
                                 Decimal(0), 0, 0.0, "m"))  # fmt: skip
        basis = ledger.position("SPY").cost_basis if ledger.positions else Decimal(0)
        assert basis == basis.quantize(Decimal("0.01"))
    # Flat: both methods agree to the cent. Sold 1,600 x 167.67; bought back at 167.65..167.71 in turn.
    bought = sum(Decimal(16765 + i % 7) / 100 for i in range(1600))
    assert ledger.realized_pnl("fifo") == ledger.realized_pnl("average") == Decimal("1600") * Decimal("167.67") - bought
