"""Class reports (vtrade.classroom.reports) and their exports (vtrade.runtime.exports).

Every expected number below is worked out by hand in the comment beside it; the last tests run
the reports on a real LiveMarket and reconcile them with the market's own portfolio summary.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from vtrade.classroom.reports import (
    GRADE_SHEET_DISPLAY,
    NOT_ENOUGH_SELLS,
    OTHER,
    StudentRecord,
    activity,
    concentration,
    debrief,
    disposition,
    grade_sheet,
    neutralise,
    risk,
    sector_pnl,
    statement,
    versus_benchmark,
)
from vtrade.runtime.exports import market_marks, student_record, write_csv, write_excel

T0 = pd.Timestamp("2024-03-04 14:30", tz="UTC")


def at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def fills_frame(rows: Sequence[tuple[Any, ...]]) -> pd.DataFrame:
    """(minute, symbol, side, quantity, price[, fee[, arrival_mid[, client_order_id]]]) per fill."""
    out = []
    for i, r in enumerate(rows):
        minute, symbol, side, qty, price = r[:5]
        fee = r[5] if len(r) > 5 else 0.0
        mid = r[6] if len(r) > 6 else price
        coid = r[7] if len(r) > 7 else f"o-{i + 1}"
        out.append({"ts": at(minute), "symbol": symbol, "client_order_id": coid, "fill_id": f"f-{i + 1}",
                    "side": side, "price": float(price), "quantity": float(qty), "liquidity": "taker",
                    "fee": float(fee), "arrival_mid": float(mid)})  # fmt: skip
    cols = ["ts", "symbol", "client_order_id", "fill_id", "side", "price", "quantity", "liquidity", "fee",
            "arrival_mid"]  # fmt: skip
    return pd.DataFrame(out, columns=cols)


def positions_frame(rows: Sequence[tuple[str, str, float, float, float]]) -> pd.DataFrame:
    """(symbol, sector, quantity, mark, cost_basis) per open position."""
    return pd.DataFrame({
        "symbol": [r[0] for r in rows], "sector": [r[1] for r in rows],
        "quantity": [float(r[2]) for r in rows], "price": [float(r[3]) for r in rows],
        "value": [r[2] * r[3] for r in rows], "cost_basis": [float(r[4]) for r in rows],
        "unrealized_pnl": [r[2] * r[3] - r[4] for r in rows],
    })  # fmt: skip


def nav_frame(values: Sequence[float], minutes: Sequence[float] | None = None) -> pd.DataFrame:
    minutes = list(range(len(values))) if minutes is None else list(minutes)
    return pd.DataFrame({"ts": [at(m) for m in minutes], "nav": [float(v) for v in values]})


def record(
    fills: pd.DataFrame,
    positions: pd.DataFrame,
    nav: pd.DataFrame,
    *,
    orders: pd.DataFrame | None = None,
    cash: float = 10_000.0,
    sid: str = "s1",
    name: str = "Ada",
    summary_nav: float | None = None,
) -> StudentRecord:
    if orders is None:
        ids = list(dict.fromkeys(fills["client_order_id"]))
        orders = pd.DataFrame({"client_order_id": ids, "status": "filled", "type": "market", "note": ""})
    end = float(nav["nav"].iloc[-1]) if summary_nav is None else summary_nav
    return StudentRecord(sid, name, f"acct-{sid}", cash, orders, fills, positions, {"nav": end, "cash": 0.0}, nav)


# --------------------------------------------------------------------------------------------
# the disposition effect


def test_pgr_plr_counted_at_each_sell_over_the_positions_held_then() -> None:
    fills = fills_frame([
        (0, "A", "buy", 100, 10.0), (0, "B", "buy", 100, 20.0), (0, "C", "buy", 50, 30.0),
        (1, "A", "sell", 40, 12.0),   # partial sale at a gain: RG; kept B 18 < 20 PL, C 33 > 30 PG
        (2, "B", "sell", 100, 17.0),  # sale at a loss: RL; kept A 11 > 10 PG, C 29 < 30 PL
        (3, "D", "buy", 10, 5.0),
        (4, "C", "sell", 50, 30.0),   # at cost: neither; kept A 10 = cost neither, D 6 > 5 PG
    ])  # fmt: skip
    marks = pd.DataFrame([
        (0, "A", 10.0), (0, "B", 20.0), (0, "C", 30.0),
        (0.5, "B", 18.0), (0.5, "C", 33.0),
        (1.5, "A", 11.0), (1.5, "C", 29.0),
        (3.5, "A", 10.0), (3.5, "D", 6.0),
        (4.5, "A", 99.0), (4.5, "D", 1.0),  # after the last sale: must not be read
    ], columns=["minute", "symbol", "price"])  # fmt: skip
    marks["ts"] = [at(m) for m in marks.pop("minute")]
    d = disposition(fills, marks)
    assert (d.sells, d.realized_gains, d.realized_losses, d.paper_gains, d.paper_losses, d.unpriced) == (
        3, 1, 1, 3, 2, 0)  # fmt: skip
    assert d.pgr == pytest.approx(1 / 4)  # 1 / (1 + 3)
    assert d.plr == pytest.approx(1 / 3)  # 1 / (1 + 2)
    assert d.de == pytest.approx(1 / 4 - 1 / 3)
    assert d.reason == ""


def test_disposition_uses_average_cost_and_the_last_mark_at_or_before_the_sale() -> None:
    # Average cost 11 (10 @ 10, 10 @ 12): selling at 11.5 is a gain though it is below the 12 lot.
    fills = fills_frame([(0, "A", "buy", 10, 10.0), (1, "A", "buy", 10, 12.0), (1, "K", "buy", 5, 50.0),
                         (3, "A", "sell", 5, 11.5)])  # fmt: skip
    marks = pd.DataFrame({"ts": [at(2), at(3), at(3.1)], "symbol": ["K", "K", "K"], "price": [49.0, 51.0, 10.0]})
    d = disposition(fills, marks)  # K at the sale (minute 3, mark at 3 included) is 51 > 50: a paper gain
    assert (d.realized_gains, d.realized_losses, d.paper_gains, d.paper_losses) == (1, 0, 1, 0)


def test_disposition_is_undefined_without_enough_sells_or_prices() -> None:
    buys_only = fills_frame([(0, "A", "buy", 10, 10.0)])
    d = disposition(buys_only, None)
    assert d.sells == 0 and d.de is None and d.reason == NOT_ENOUGH_SELLS

    # A sale at a gain with nothing else held: PGR = 1, PLR = 0 / 0 undefined.
    one_gain = fills_frame([(0, "A", "buy", 10, 10.0), (1, "A", "sell", 10, 11.0)])
    d = disposition(one_gain, None)
    assert (d.pgr, d.plr, d.de, d.reason) == (1.0, None, None, NOT_ENOUGH_SELLS)

    # Kept positions but no market prices at all: nothing is computed (PGR would read 1.0).
    two = fills_frame([(0, "A", "buy", 10, 10.0), (0, "B", "buy", 10, 10.0), (1, "A", "sell", 10, 11.0)])
    d = disposition(two, None)
    assert d.unpriced == 1 and d.pgr is None and d.de is None and "no market prices" in d.reason

    # Prices that start after the sale: the kept position is left out and counted as unpriced.
    late = pd.DataFrame({"ts": [at(5)], "symbol": ["B"], "price": [9.0]})
    d = disposition(two, late)
    assert (d.unpriced, d.paper_losses, d.pgr) == (1, 0, 1.0)


def test_shorts_are_not_dispositions_and_a_flip_counts_only_the_long_part() -> None:
    fills = fills_frame([
        (0, "S", "sell", 10, 50.0),        # opens a short: not a sale of something owned
        (1, "S", "buy", 10, 40.0),         # covers it
        (2, "A", "buy", 10, 10.0),
        (3, "A", "sell", 15, 9.0),         # sells the 10 owned at a loss, opens a 5 short
    ])  # fmt: skip
    d = disposition(fills, pd.DataFrame({"ts": [], "symbol": [], "price": []}))
    assert (d.sells, d.realized_gains, d.realized_losses, d.paper_gains, d.paper_losses) == (1, 0, 1, 0, 0)


def test_debrief_says_how_many_times_more_readily_winners_were_sold() -> None:
    # W (winner) and L1 (loser) sold in the same moment, L2 and L3 kept at a loss:
    # RG 1, PG 0 -> PGR 1; RL 1, PL 2 -> PLR 1/3; winners sold 3x as readily.
    fills = fills_frame([(0, "W", "buy", 1, 10.0), (0, "L1", "buy", 1, 10.0), (0, "L2", "buy", 1, 10.0),
                         (0, "L3", "buy", 1, 10.0), (1, "W", "sell", 1, 12.0), (1, "L1", "sell", 1, 8.0)])  # fmt: skip
    marks = pd.DataFrame({"ts": [at(0.5)] * 2, "symbol": ["L2", "L3"], "price": [9.0, 9.5]})
    pos = positions_frame([("L2", "X", 1, 9.0, 10.0), ("L3", "X", 1, 9.5, 10.0)])
    rec = record(fills, pos, nav_frame([10_000.0, 9_998.5]))
    spy = pd.DataFrame({"ts": [at(0), at(1)], "mid": [400.0, 400.0]})
    d = debrief(rec, spy, marks=marks)
    assert d.disposition.de == pytest.approx(2 / 3)
    assert "You sold winners 3.0× as readily as losers (PGR 1.00, PLR 0.33, over 1 sale)" in d.lines[5]
    bare = debrief(rec, spy)
    assert "no market prices" in bare.lines[5] and bare.disposition.de is None


# --------------------------------------------------------------------------------------------
# P&L, sectors, activity


def _three_sectors(summary_nav: float | None = None) -> StudentRecord:
    fills = fills_frame([
        (0, "XOM", "buy", 100, 80.0, 1.0), (1, "XOM", "sell", 50, 84.0, 1.0),    # realized 50 x 4 = 200
        (0, "AAPL", "buy", 10, 150.0, 1.0),                                      # held at 140: -100
        (0, "JPM", "buy", 20, 100.0, 1.0), (2, "JPM", "sell", 20, 95.0, 1.0),    # realized 20 x -5 = -100
    ])  # fmt: skip
    # XOM 50 held at 86 on a basis of 4000: +300. Cash 10000 - 8000 + 4200 - 1500 - 2000 + 1900 - 5 = 4595;
    # NAV = 4595 + 50 x 86 + 10 x 140 = 10295: P&L 200 + 300 - 100 - 100 - 5 fees = 295.
    pos = positions_frame([("XOM", "Energy", 50, 86.0, 4000.0), ("AAPL", "Information Technology", 10, 140.0, 1500.0)])
    return record(fills, pos, nav_frame([10_000.0, 10_100.0, 10_295.0]), summary_nav=summary_nav)


def test_pnl_reconciles_and_sector_attribution_sums_to_total_pnl() -> None:
    rec = _three_sectors()
    p = statement(rec).pnl
    assert (p.realized, p.unrealized, p.fees, p.total) == pytest.approx((100.0, 200.0, 5.0, 295.0))
    assert p.other == pytest.approx(0.0, abs=1e-9)
    d = debrief(rec, pd.DataFrame({"ts": [at(0), at(2)], "mid": [400.0, 400.0]}), {"JPM": "Financials"})
    table = d.sectors.set_index("sector")
    assert table["pnl"].to_dict() == pytest.approx({"Energy": 498.0, "Information Technology": -101.0,
                                                    "Financials": -102.0})  # fmt: skip
    assert table["pnl"].sum() == pytest.approx(p.total)
    assert table["contribution"].sum() == pytest.approx(295.0 / 10_000)
    assert list(d.sectors["sector"]) == ["Energy", "Information Technology", "Financials"]  # best first
    assert d.lines[2] == "Your best sector was Energy (+$498.00); your worst was Financials (-$102.00)."
    # Without a sector for the stock sold out of, it is Unclassified, never dropped.
    assert "Unclassified" in set(sector_pnl(rec.fills, rec.positions)["sector"])


def test_what_fills_do_not_explain_is_its_own_row_so_the_sum_still_holds() -> None:
    rec = _three_sectors(summary_nav=10_300.0)  # a $5 dividend the fills do not show
    d = debrief(rec, pd.DataFrame({"ts": [at(0), at(2)], "mid": [400.0, 400.0]}))
    assert d.pnl.other == pytest.approx(5.0)
    assert d.sectors.set_index("sector").loc[OTHER, "pnl"] == pytest.approx(5.0)
    assert d.sectors["pnl"].sum() == pytest.approx(300.0)


def test_realized_pnl_is_average_cost_like_the_positions_basis() -> None:
    # 10 @ 10 and 10 @ 12 (average 11), sell 15 @ 13: average-cost realized 15 x 2 = 30 (FIFO would say 35);
    # 5 left on a basis of 55, marked at 14: unrealized 15. 30 + 15 = 45 either way.
    fills = fills_frame([(0, "A", "buy", 10, 10.0), (1, "A", "buy", 10, 12.0), (2, "A", "sell", 15, 13.0)])
    rec = record(fills, positions_frame([("A", "X", 5, 14.0, 55.0)]), nav_frame([1000.0, 1045.0]), cash=1000.0)
    st = statement(rec)
    assert (st.pnl.realized, st.pnl.unrealized, st.pnl.total) == pytest.approx((30.0, 15.0, 45.0))
    assert st.transactions["realized_pnl"].tolist() == pytest.approx([0.0, 0.0, 30.0])
    assert st.positions["average_cost"].tolist() == pytest.approx([11.0])


def test_turnover_trade_count_and_costs() -> None:
    fills = fills_frame([
        (0, "A", "buy", 100, 10.0, 1.0, 9.99, "o-1"),       # slippage (10 - 9.99) x 100 = 1.00
        (60, "A", "sell", 30, 12.0, 0.5, 12.02, "o-2"),     # one order, two fills: -(12 - 12.02) x 30 = 0.60
        (60, "A", "sell", 20, 12.0, 0.5, 12.02, "o-2"),     # -(12 - 12.02) x 20 = 0.40
    ])  # fmt: skip
    # NAV spans 3 simulated days; its mean is 10000.
    nav = nav_frame([10_000.0, 9_900.0, 10_100.0], minutes=[0, 60 * 24, 60 * 72])
    rec = record(fills, positions_frame([("A", "X", 50, 12.0, 500.0)]), nav)
    a = activity(rec)
    assert (a.trades, a.fills) == (2, 3)
    assert a.traded_notional == pytest.approx(1000.0 + 600.0)
    assert a.turnover == pytest.approx(1600.0 / 10_000.0)
    assert a.days == pytest.approx(3.0) and a.trades_per_day == pytest.approx(2 / 3)
    assert (a.fees, a.slippage_cost, a.trading_costs) == pytest.approx((2.0, 2.0, 4.0))
    assert a.costs_pct_of_cash == pytest.approx(4.0 / 10_000.0)
    # A one-hour session is not extrapolated to a day: 2 trades in an hour is 2 per day, not 48.
    short = record(fills, rec.positions, nav_frame([10_000.0, 10_000.0], minutes=[0, 60]))
    assert activity(short).trades_per_day == pytest.approx(2.0)


def test_a_fill_without_arrival_mid_adds_no_slippage_and_is_counted() -> None:
    fills = fills_frame([(0, "A", "buy", 10, 10.0, 0.0, 9.9), (1, "A", "sell", 10, 10.0)])
    fills.loc[1, "arrival_mid"] = np.nan
    a = activity(record(fills, positions_frame([]), nav_frame([100.0, 100.0]), cash=100.0))
    assert a.slippage_cost == pytest.approx(1.0) and a.unmeasured_fills == 1


def test_concentration() -> None:
    c = concentration(positions_frame([("A", "X", 30, 10.0, 300.0), ("B", "X", -10, 10.0, -100.0),
                                       ("C", "X", 0, 10.0, 0.0)]))  # fmt: skip
    # weights 300/400 and 100/400 (a short counts by size; a flat row is no position)
    assert (c.positions, c.largest_symbol) == (2, "A")
    assert (c.hhi, c.largest_weight, c.effective_positions) == pytest.approx((0.625, 0.75, 1.6))
    assert concentration(positions_frame([])).hhi is None


# --------------------------------------------------------------------------------------------
# benchmark and risk


def test_return_versus_benchmark_over_the_same_window() -> None:
    nav = nav_frame([10_000.0, 10_050.0, 10_200.0], minutes=[0, 30, 60])
    spy = pd.DataFrame({"ts": [at(0), at(60)], "mid": [400.0, 404.0]})
    v = versus_benchmark(nav, spy)
    assert (v.student_return, v.benchmark_return, v.difference) == pytest.approx((0.02, 0.01, 0.01))
    assert v.full_period
    rec = record(fills_frame([]), positions_frame([]), nav)
    lines = debrief(rec, spy).lines
    assert lines[1] == "You beat SPY by 1.0 points (you +2.00%, SPY +1.00%)."
    assert len(lines) == 7 and lines[3] == "You made no trades." and lines[6] == "You hold no positions now."
    lagging = pd.DataFrame({"ts": [at(0), at(60)], "mid": [400.0, 420.0]})
    assert debrief(rec, lagging).lines[1] == "SPY beat you by 3.0 points (you +2.00%, SPY +5.00%)."

    # SPY prices from minute 30 only: both returns from minute 30 (10050 -> 10200 and 402 -> 404).
    late = pd.DataFrame({"ts": [at(30), at(60)], "mid": [402.0, 404.0]})
    v = versus_benchmark(nav, late)
    assert v.student_return == pytest.approx(10_200 / 10_050 - 1)
    assert v.benchmark_return == pytest.approx(404 / 402 - 1)
    assert not v.full_period and "Compared from 2024-03-04 15:00" in debrief(rec, late).lines[1]

    # A mid missing (one-sided book): the last trade prices it.
    one_sided = pd.DataFrame({"ts": [at(0), at(60)], "mid": [np.nan, 404.0], "last": [400.0, 403.0]})
    assert versus_benchmark(nav, one_sided).benchmark_return == pytest.approx(0.01)

    # No overlap at all: no comparison, said in words.
    before = pd.DataFrame({"ts": [at(-60), at(-30)], "mid": [400.0, 401.0]})
    assert versus_benchmark(nav, before).difference is None
    assert "no comparison" in debrief(rec, before).lines[1]


def test_risk_table_uses_analytics_on_nav_returns_per_sample() -> None:
    nav = nav_frame([100.0, 110.0, 99.0, 108.9], minutes=[0, 5, 10, 15])
    r = risk(nav)
    # returns +10 %, -10 %, +10 %: total 1.1 x 0.9 x 1.1 - 1; drawdown -10 %
    assert (r.period, r.periods) == ("5 min", 3)
    assert r.total_return == pytest.approx(0.089)
    assert r.max_drawdown == pytest.approx(-0.1)
    rets = np.array([0.1, -0.1, 0.1])
    assert r.volatility == pytest.approx(float(np.std(rets, ddof=1)))
    assert r.sharpe == pytest.approx(float(rets.mean() / np.std(rets, ddof=1)))
    flat = risk(nav_frame([100.0, 100.0, 100.0]))
    assert flat.sharpe is None and flat.volatility == 0.0 and flat.max_drawdown == 0.0
    assert risk(nav_frame([100.0])).periods == 0


# --------------------------------------------------------------------------------------------
# statement, grade sheet


def test_transactions_carry_the_receipt_and_the_order_note() -> None:
    fills = fills_frame([(1, "A", "sell", 5, 11.0, 0.5, 11.01, "o-2"), (0, "A", "buy", 10, 10.0, 1.0, 9.98, "o-1")])
    orders = pd.DataFrame({"client_order_id": ["o-1", "o-2"], "status": ["filled", "filled"],
                           "type": ["market", "limit"], "note": ["earnings beat", None]})  # fmt: skip
    rec = record(fills, positions_frame([("A", "X", 5, 11.0, 50.0)]), nav_frame([1000.0, 1003.5]), orders=orders,
                 cash=1000.0)  # fmt: skip
    tx = statement(rec).transactions
    assert tx["client_order_id"].tolist() == ["o-1", "o-2"]  # oldest first
    assert tx["note"].tolist() == ["earnings beat", ""]
    assert tx["order_type"].tolist() == ["market", "limit"]
    assert tx["slippage_cost"].tolist() == pytest.approx([0.2, 0.05])  # (10 - 9.98) x 10; -(11 - 11.01) x 5
    assert tx["realized_pnl"].tolist() == pytest.approx([0.0, 5.0])
    no_note = record(fills, rec.positions, rec.nav, orders=orders.drop(columns="note"), cash=1000.0)
    assert statement(no_note).transactions["note"].tolist() == ["", ""]


def test_grade_sheet_rows_sorted_by_return() -> None:
    spy = pd.DataFrame({"ts": [at(0), at(2)], "mid": [400.0, 404.0]})
    good = _three_sectors()  # +2.95 %
    orders = pd.DataFrame({"client_order_id": ["o-1", "o-2", "o-3"], "status": ["filled", "rejected", "rejected"],
                           "type": "market", "note": ["  ", "=HYPERLINK(\"x\")", "why not"]})  # fmt: skip
    flat = record(fills_frame([]), positions_frame([]), nav_frame([10_000.0, 9_900.0, 9_950.0]), orders=orders,
                  sid="s2", name="Bo")  # fmt: skip
    no_notes = record(fills_frame([]), positions_frame([]), nav_frame([10_000.0, 10_000.0, 10_000.0]),
                      orders=pd.DataFrame({"client_order_id": [], "status": []}), sid="s3", name="Cy")  # fmt: skip
    sheet = grade_sheet([flat, good, no_notes], spy)
    assert sheet["name"].tolist() == ["Ada", "Cy", "Bo"]
    ada, cy, bo = (sheet.iloc[i] for i in range(3))
    assert ada["return_pct"] == pytest.approx(2.95) and ada["vs_benchmark_pts"] == pytest.approx(1.95)
    assert ada["trades"] == 5 and ada["hhi"] == pytest.approx((4300**2 + 1400**2) / 5700**2)
    assert bo["return_pct"] == pytest.approx(-0.5) and bo["max_drawdown_pct"] == pytest.approx(-1.0)
    assert (bo["refusals"], bo["notes"], cy["notes"]) == (2, 2, 0)  # a blank note is no note
    assert bo["disposition_effect"] == NOT_ENOUGH_SELLS and math.isnan(bo["hhi"])
    assert set(GRADE_SHEET_DISPLAY) == set(sheet.columns)
    with pytest.raises(ValueError, match="twice"):
        grade_sheet([good, good], spy)
    with pytest.raises(TypeError):
        grade_sheet(good, spy)  # type: ignore[arg-type]


def test_bad_records_are_refused_at_construction() -> None:
    ok = _three_sectors()
    with pytest.raises(ValueError, match="fills lacks"):
        StudentRecord("s", "S", "a", 1.0, ok.orders, ok.fills.drop(columns="price"), ok.positions, {}, ok.nav)
    with pytest.raises(TypeError, match="positions must be a pandas DataFrame"):
        StudentRecord("s", "S", "a", 1.0, ok.orders, ok.fills, [], {}, ok.nav)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="initial_cash"):
        StudentRecord("s", "S", "a", float("nan"), ok.orders, ok.fills, ok.positions, {}, ok.nav)
    with pytest.raises(ValueError, match="side"):
        StudentRecord("s", "S", "a", 1.0, ok.orders, ok.fills.assign(side="hold"), ok.positions, {}, ok.nav)


# --------------------------------------------------------------------------------------------
# neutralising and writing


HOSTILE = ['=HYPERLINK("http://x","y")', "@SUM(A1)", "-2+3", "+1", "\t=1", "\r=1", "<script>alert(1)</script>",
           "Ada", ""]  # fmt: skip
DEFUSED = ['\'=HYPERLINK("http://x","y")', "'@SUM(A1)", "'-2+3", "'+1", "'\t=1", "'\r=1",
           "<script>alert(1)</script>", "Ada", ""]  # fmt: skip


def test_neutralise_prefixes_formula_text_only() -> None:
    df = pd.DataFrame({"=name": HOSTILE, "pnl": [-2.0] * len(HOSTILE), "n": range(len(HOSTILE))})
    out = neutralise(df)
    assert out["=name"].tolist() == DEFUSED
    assert out["pnl"].tolist() == [-2.0] * len(HOSTILE) and out["n"].tolist() == list(range(len(HOSTILE)))
    assert list(out.columns) == ["=name", "pnl", "n"]
    assert df["=name"].tolist() == HOSTILE  # the input is not changed
    cats = neutralise(pd.DataFrame({"c": pd.Categorical(["=1", "x"])}))
    assert cats["c"].tolist() == ["'=1", "x"]
    with pytest.raises(TypeError):
        neutralise(HOSTILE)  # type: ignore[arg-type]


def _hostile_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "name": HOSTILE,
        "return_pct": [-1.5] * len(HOSTILE),
        "ts": pd.date_range("2024-03-04 09:30", periods=len(HOSTILE), freq="1min", tz="America/New_York"),
    })  # fmt: skip


def test_write_csv_neutralises_and_writes_times_as_utc_iso(tmp_path: Path) -> None:
    path = write_csv(_hostile_frame(), tmp_path / "grades.csv")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["name", "return_pct", "ts"]
    assert [r[0] for r in rows[1:]] == DEFUSED
    assert {r[1] for r in rows[1:]} == {"-1.5"}  # a negative number stays a number
    assert rows[1][2] == "2024-03-04T14:30:00+00:00"  # 09:30 New York is 14:30 UTC


def test_write_excel_neutralises_and_keeps_a_meaningful_index(tmp_path: Path) -> None:
    sectors = pd.DataFrame({"pnl": [1.0, -2.0]}, index=pd.Index(["=cmd|' /C calc'!A0", "Energy"], name="sector"))
    path = write_excel({"Grades": _hostile_frame(), "Sectors": sectors, "Empty": pd.DataFrame()},
                       tmp_path / "class.xlsx")  # fmt: skip
    wb = load_workbook(path)
    assert wb.sheetnames == ["Grades", "Sectors", "Empty"]
    grades = list(wb["Grades"].iter_rows(values_only=True))
    assert grades[0] == ("name", "return_pct", "ts")
    # XML reads a carriage return back as a line feed (line-end normalisation); still defused.
    assert [r[0] or "" for r in grades[1:]] == [d.replace("\r", "\n") for d in DEFUSED]
    assert {r[1] for r in grades[1:]} == {-1.5}
    assert grades[1][2] == "2024-03-04T14:30:00+00:00"
    assert all(c.data_type != "f" for row in wb["Grades"].iter_rows() for c in row)  # no formula anywhere
    assert list(wb["Sectors"].iter_rows(values_only=True)) == [("sector", "pnl"), ("'=cmd|' /C calc'!A0", 1.0),
                                                               ("Energy", -2.0)]  # fmt: skip


def test_nan_and_infinity_are_written_as_excel_can_hold_them(tmp_path: Path) -> None:
    df = pd.DataFrame({"x": [float("nan"), float("inf"), -float("inf"), 1.0], "t": [pd.NaT, T0, T0, T0]})
    rows = list(load_workbook(write_excel({"S": df}, tmp_path / "x.xlsx"))["S"].iter_rows(values_only=True))
    assert rows[1] == (None, None) and rows[2][0] == "inf" and rows[3][0] == "-inf" and rows[4][0] == 1.0


def _nothing_written(folder: Path) -> bool:
    return not any(folder.iterdir())


def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [1]})
    with pytest.raises(TypeError, match="DataFrame"):
        write_csv([1, 2], tmp_path / "x.csv")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="DataFrame"):
        write_excel({"S": "not a frame"}, tmp_path / "x.xlsx")  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="mapping"):
        write_excel(df, tmp_path / "x.xlsx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        write_excel({}, tmp_path / "x.xlsx")
    with pytest.raises(ValueError, match="Excel accepts"):
        write_excel({"a/b": df}, tmp_path / "x.xlsx")
    with pytest.raises(ValueError, match="twice"):
        write_excel({"S": df, "s": df}, tmp_path / "x.xlsx")
    with pytest.raises(ValueError, match=r"\.xlsx"):
        write_excel({"S": df}, tmp_path / "x.csv")
    missing = tmp_path / "no-such-folder"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_csv(df, missing / "x.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_excel({"S": df}, missing / "x.xlsx")
    assert _nothing_written(tmp_path)
    # A cell openpyxl cannot write fails half-way: no file, no temporary left behind.
    with pytest.raises(ValueError):
        write_excel({"S": pd.DataFrame({"a": [{"a": 1}]})}, tmp_path / "x.xlsx")
    assert _nothing_written(tmp_path)


# --------------------------------------------------------------------------------------------
# end to end on a real live market


@pytest.fixture(scope="module")
def market() -> Iterator[Any]:
    from vtrade.runtime.live import LiveConfig, LiveMarket

    m = LiveMarket(LiveConfig(symbols=("XOM", "AAPL", "SPY"), speed=0, bots=True, burn_in=20_000,
                              prices={"SPY": "258.00"}))  # fmt: skip
    m.open_account("ann", cash=100_000)
    m.open_account("bob", cash=50_000)
    m.advance(10)
    assert m.submit("ann", "XOM", "buy", 100).ok
    assert m.submit("ann", "AAPL", "buy", 30).ok
    assert not m.submit("bob", "AAPL", "buy", 10_000).ok  # refused by buying power
    assert m.submit("bob", "SPY", "buy", 50).ok
    m.advance(150)
    assert m.submit("ann", "XOM", "sell", 40).ok
    m.advance(150)
    yield m
    m.close()


def test_reports_reconcile_with_a_real_live_market(market: Any, tmp_path: Path) -> None:
    people = [("s-ann", "Ann <b>", "ann"), ("s-bob", "=HYPERLINK(\"http://x\",\"bob\")", "bob")]
    records = [student_record(market, student_id=s, display_name=n, account_id=a) for s, n, a in people]
    spy = market.prices("SPY")
    marks = market_marks(market, {s for r in records for s in r.fills["symbol"]})
    sectors = {s: market.instrument(s).sector for s in market.symbols()}
    for rec in records:
        summary = market.portfolio(rec.account_id)["summary"]
        st = statement(rec, sectors)
        assert st.pnl.total == pytest.approx(summary["nav"] - summary["initial_cash"], abs=1e-6)
        assert st.pnl.fees == pytest.approx(summary["fees"], abs=1e-9)
        assert st.pnl.unrealized == pytest.approx(summary["unrealized_pnl"], abs=1e-6)
        assert st.pnl.realized == pytest.approx(summary["realized_pnl"], abs=1e-6)  # one lot each: FIFO = average
        assert st.pnl.other == pytest.approx(0.0, abs=1e-6)
        assert len(st.transactions) == len(rec.fills)
        d = debrief(rec, spy, sectors, marks=marks)
        assert d.sectors["pnl"].sum() == pytest.approx(st.pnl.total, abs=1e-6)
        nav = rec.nav["nav"].to_numpy()
        assert d.versus.full_period
        assert d.versus.student_return == pytest.approx(nav[-1] / nav[0] - 1, abs=1e-12)
        mid = spy.set_index("ts")["mid"]
        assert d.versus.benchmark_return == pytest.approx(
            mid.asof(rec.nav["ts"].iloc[-1]) / mid.asof(rec.nav["ts"].iloc[0]) - 1, abs=1e-12)  # fmt: skip
        assert d.activity.traded_notional == pytest.approx(float((rec.fills.price * rec.fills.quantity).sum()))
        assert all(isinstance(line, str) and line for line in d.lines)
    ann = debrief(records[0], spy, sectors, marks=marks)
    # Ann's one sale (XOM) was made while she held AAPL: one realized and one paper observation, priced.
    dd = ann.disposition
    assert dd.sells == 1 and dd.unpriced == 0
    assert dd.realized_gains + dd.realized_losses <= 1 and dd.paper_gains + dd.paper_losses <= 1
    assert set(ann.sectors["sector"]) == {"Energy", "Information Technology"}

    sheet = grade_sheet(records, spy, sectors=sectors, marks=marks)
    assert sheet.set_index("student_id").loc["s-bob", "refusals"] == 1
    assert sheet.set_index("student_id").loc["s-ann", "trades"] == 3
    path = write_excel({"Grades": sheet.rename(columns=GRADE_SHEET_DISPLAY), **statement(records[1]).sheets()},
                       tmp_path / "class.xlsx")  # fmt: skip
    wb = load_workbook(path)
    names = [row[1] for row in wb["Grades"].iter_rows(min_row=2, values_only=True)]
    assert "'=HYPERLINK(\"http://x\",\"bob\")" in names and "Ann <b>" in names
    tx = list(wb["Transactions"].iter_rows(values_only=True))
    assert tx[0][0] == "ts" and str(tx[1][0]).endswith("+00:00")
