"""Replay applies splits and dividends from Lean factor files to raw (as traded) data.

Expected numbers are computed here from the data files with pandas, independently of the
replay: fill prices come from the run, closes and factors from the CSVs.
"""

from __future__ import annotations

import gzip
import warnings
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest

import vtrade as vt
from vtrade.cli import main
from vtrade.core.events import CorporateActionEvent
from vtrade.execution import events as ev
from vtrade.execution.corporate_actions import holding_after
from vtrade.execution.impact import VolumeShareSlippage
from vtrade.market.feeds import open_feed
from vtrade.market.feeds.basis import price_basis
from vtrade.portfolio.corporate_actions import CorporateAction
from vtrade.runtime.replay import RawDataWarning, replay
from vtrade.strategies import buy_and_hold

ROOT = Path(__file__).resolve().parent.parent
MINUTE = ROOT / "data/intraday/lean_minute_trade_bars.csv.gz"
RAW_DAILY = ROOT / "data/equities_daily/lean_daily_raw_unadjusted_1998_2021.csv.gz"
ETF_DAILY = ROOT / "data/equities_daily/etf_benchmarks_daily.csv.gz"
FACTORS = ROOT / "data/equities_daily/lean_factor_files.csv"
STRATEGIES = ROOT / "examples/strategies.py"
DAY = "1440min"


def _subset(src: Path, dst: Path, keep) -> Path:  # type: ignore[no-untyped-def]
    """Copy the header and the rows ``keep(cells)`` accepts, unchanged, into ``dst`` (a CSV)."""
    with gzip.open(src, "rt") as fin, open(dst, "w") as fout:
        fout.write(next(fin))
        for line in fin:
            if keep(line.rstrip("\n").split(",")):
                fout.write(line)
    return dst


def _raw_daily(tmp_path: Path, ticker: str, start: str, end: str) -> Path:
    name = f"lean_daily_raw_{ticker}_{start}_{end}.csv"
    return _subset(RAW_DAILY, tmp_path / name, lambda c: c[1] == ticker and start <= c[0] <= end)


def _buyer(n: int):  # type: ignore[no-untyped-def]
    """Buy ``n`` lots at the first call; record the strategy's view of its position."""

    def strategy(ctx) -> None:  # type: ignore[no-untyped-def]
        seen = vars(ctx).setdefault("positions_seen", [])
        seen.append(ctx.position)
        if len(seen) == 1:
            ctx.buy(n)

    return strategy


def _cash_flow(fills: pd.DataFrame) -> float:
    return float(-(fills.price * fills.quantity * fills.side.map({"buy": 1, "sell": -1})).sum())


def _applied(result) -> list[ev.CorporateActionApplied]:  # type: ignore[no-untyped-def]
    return [e for e in result.events if isinstance(e, ev.CorporateActionApplied)]


# ------------------------------------------------------------------------------------------ AAPL 7:1


def test_minute_buy_and_hold_across_the_aapl_split() -> None:
    result = replay(open_feed(MINUTE, symbol="AAPL"), strategy=buy_and_hold, realism="bars", every="1min")
    fills = result.fills
    assert fills.quantity.sum() == 100
    bars = pd.read_csv(MINUTE)
    last_close = float(bars[bars.ticker == "AAPL"].close.iloc[-1])  # 2014-06-09 19:59, post-split dollars
    vwap = float((fills.price * fills.quantity).sum() / fills.quantity.sum())  # pre-split dollars
    s = result.summary()
    assert s["position"] == 700 and s["position_lots"] == 700
    # 700 post-split shares marked at the last close, paid for as 100 pre-split shares.
    assert s["pnl"] == pytest.approx(700 * (last_close - vwap / 7), abs=1e-6)
    assert round(s["pnl"], 2) == 999.01
    (applied,) = _applied(result)
    assert (applied.kind, applied.ex_date, applied.position_before, applied.position_after, applied.cash) == (
        "split", "2014-06-09", 100, 700, Decimal(0))  # fmt: skip
    # The action sits in the input right before the first bar of 2014-06-09 (04:00 New York).
    assert applied.ts == pd.Timestamp("2014-06-09 04:00", tz="America/New_York").value
    assert result.corporate_actions_note() == "AAPL: 7:1 split on 2014-06-09 applied (position 100 -> 700)"
    # Without the factor file the split is a -86 % price move on a 100-share position.
    raw = replay(open_feed(MINUTE, symbol="AAPL"), strategy=buy_and_hold, realism="bars", every="1min",
                 corporate_actions=False)  # fmt: skip
    assert round(raw.summary()["pnl"], 2) == round(100 * last_close - 100 * vwap, 2) == -55262.99


def test_the_strategy_hears_the_split_and_the_run_is_deterministic() -> None:
    runs = [replay(open_feed(MINUTE, symbol="AAPL"), strategy=_buyer(100), realism="bars", every="30min")
            for _ in range(2)]  # fmt: skip
    assert runs[0].output_hash() == runs[1].output_hash()
    plain = replay(open_feed(MINUTE, symbol="AAPL"), strategy=_buyer(100), realism="bars", every="30min",
                   corporate_actions=False)  # fmt: skip
    assert plain.output_hash() != runs[0].output_hash()  # the applied split is part of the output


def test_resting_orders_are_cancelled_at_a_split_with_a_reason() -> None:
    log: list[tuple[int, int, int]] = []

    def strategy(ctx) -> None:  # type: ignore[no-untyped-def]
        log.append((ctx.now, ctx.position, len(ctx.open_orders)))
        if len(log) == 1:
            ctx.buy(100)
            ctx.sell(10, price=ctx.instrument.price("700"))  # far above the market: rests until the split

    result = replay(open_feed(MINUTE, symbol="AAPL"), strategy=strategy, realism="bars", every="30min")
    cancelled = [e for e in result.events if isinstance(e, ev.OrderCancelled)]
    assert len(cancelled) == 1 and cancelled[0].leaves == 10
    assert "7:1 split on 2014-06-09" in cancelled[0].reason and "enter them again" in cancelled[0].reason
    orders = result.orders.set_index("client_order_id")
    assert orders.loc[cancelled[0].client_order_id, "status"] == "cancelled"
    split_ts = pd.Timestamp("2014-06-09 04:00", tz="America/New_York").value
    assert cancelled[0].ts == split_ts
    before = [(p, n) for t, p, n in log if t < split_ts]
    after = [(p, n) for t, p, n in log if t > split_ts]
    assert before[-1] == (100, 1) and set(after) == {(700, 0)}  # the strategy hears both
    assert not [e for e in result.events if e.ts >= split_ts and isinstance(e, ev.OrderFilled)]


# ------------------------------------------------------------------------------------ raw daily


def test_daily_aapl_across_the_split(tmp_path: Path) -> None:
    path = _raw_daily(tmp_path, "AAPL", "2014-06-02", "2014-06-13")
    strategy = _buyer(100)
    result = vt.replay(path, strategy=strategy, realism="bars", every=DAY)
    raw = pd.read_csv(path)
    (fill,) = result.fills.itertuples()
    s = result.summary()
    assert s["position_lots"] == 700
    assert s["pnl"] == pytest.approx(700 * float(raw.close.iloc[-1]) - 100 * fill.price, abs=1e-6)
    assert [str(a.ex_date) for a in result.corporate_actions] == ["2014-06-09"]


def test_aig_reverse_split_pays_cash_in_lieu(tmp_path: Path) -> None:
    path = _raw_daily(tmp_path, "AIG", "2009-06-22", "2009-07-10")
    result = vt.replay(path, strategy=_buyer(30), realism="bars", every=DAY)
    raw = pd.read_csv(path)
    factors = pd.read_csv(FACTORS)
    row = factors[(factors.ticker == "AIG") & (factors.date == "2009-06-30")].iloc[0]
    assert row.split_factor / factors.loc[row.name + 1, "split_factor"] == 20  # 1:20
    (fill,) = result.fills.itertuples()
    (applied,) = _applied(result)
    # 30 old shares = 1.5 new ones: 1 kept, 0.5 paid at the last close before the split x 20.
    in_lieu = Decimal("0.5") * Decimal(str(row.reference_price)) * 20
    assert (applied.position_before, applied.position_after, applied.cash) == (30, 1, in_lieu)
    assert in_lieu == Decimal("11.30")
    s = result.summary()
    assert s["position_lots"] == 1
    assert s["pnl"] == pytest.approx(1 * float(raw.close.iloc[-1]) + 11.30 - 30 * fill.price, abs=1e-6)
    assert "1:20 reverse split on 2009-07-01 applied (position 30 -> 1, 11.30 USD cash in lieu)" in (
        result.corporate_actions_note() or "")


def test_spy_dividend_is_credited_and_pnl_matches_adjusted_prices(tmp_path: Path) -> None:
    # Bought at the close of 2014-06-19 (the order sent after the 06-18 bar fills on the next
    # bar's close, no impact), held through the ex-date 2014-06-20.
    path = _raw_daily(tmp_path, "SPY", "2014-06-18", "2014-06-27")
    result = vt.replay(path, strategy=_buyer(100), realism="bars", every=DAY,
                       bar_model=VolumeShareSlippage(price_impact=0))  # fmt: skip
    raw = pd.read_csv(path)
    f = pd.read_csv(FACTORS)
    f = f[f.ticker == "SPY"].reset_index(drop=True)
    i = int(f.index[f.date == "2014-06-19"][0])
    ref, pf0, pf1 = f.reference_price[i], f.price_factor[i], f.price_factor[i + 1]
    dividend_exact = ref * (1 - pf0 / pf1)  # Lean: pf[i] = pf[i+1] x (C - D) / C
    dividend = round(dividend_exact, 2)
    assert dividend == 0.94
    (fill,) = result.fills.itertuples()
    assert fill.price == ref == float(raw.close[raw.date == "2014-06-19"].iloc[0])
    (applied,) = _applied(result)
    assert (applied.kind, applied.ex_date, applied.cash) == ("dividend", "2014-06-20", Decimal("94.00"))
    last = float(raw.close.iloc[-1])
    pnl = result.summary()["pnl"]
    assert pnl == pytest.approx(100 * (last - fill.price) + 100 * dividend, abs=1e-6)
    # The same P&L from dividend-adjusted prices (Lean's factors), to a cent.
    adjusted_pnl = 100 * (last - fill.price * pf0 / pf1)
    assert abs(pnl - adjusted_pnl) < 0.01
    assert result.corporate_actions_note() == "SPY: 1 dividend credited (94.00 USD)"


def test_holding_after_short_and_exact_splits() -> None:
    split = CorporateAction.split("AIG", date(2009, 7, 1), Fraction(1, 20), "1.13")
    assert holding_after(split, -30, Decimal(1)) == (-1, Decimal("-11.30"))  # a short buys the half back
    assert holding_after(split, 40, Decimal(1)) == (2, Decimal(0))
    assert holding_after(split, 0, Decimal(1)) == (0, Decimal(0))


# ----------------------------------------------------------------- when nothing is (or can be) applied


def test_adjusted_daily_data_is_left_alone(tmp_path: Path) -> None:
    path = _subset(ETF_DAILY, tmp_path / "etf.csv", lambda c: c[1] == "SPY" and "2014-06-02" <= c[0] <= "2014-06-27")
    assert price_basis("daily", path) == "adjusted"
    assert price_basis("daily", _raw_daily(tmp_path, "SPY", "2014-06-02", "2014-06-27")) == "raw"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = vt.replay(path, strategy=_buyer(100), realism="bars", every=DAY)
    assert result.corporate_actions == () and result.warnings == () and _applied(result) == []
    assert result.corporate_actions_note() is None


def test_raw_data_without_factor_rows_warns(tmp_path: Path) -> None:
    table = tmp_path / "factors.csv"
    table.write_text("ticker,date,price_factor,split_factor,reference_price\nSPY,2050-12-31,1,1,0\n")
    with pytest.warns(RawDataWarning, match=r"AAPL prices are raw .* from 2014-06-05 to 2014-06-09.*NOT applied"):
        result = replay(open_feed(MINUTE, symbol="AAPL"), strategy=buy_and_hold, realism="bars", every="1min",
                        corporate_actions=table)  # fmt: skip
    assert result.corporate_actions == () and "factors.csv has no factor rows for AAPL" in result.warnings[0]
    assert round(result.summary()["pnl"], 2) == -55262.99
    # One day of raw data cannot hold an ex-date: nothing to warn about.
    one_day = _subset(MINUTE, tmp_path / "aapl_0605.csv", lambda c: c[0] == "AAPL" and c[1] == "2014-06-05")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = vt.replay(one_day, strategy=buy_and_hold, realism="bars", every="1min", corporate_actions=table)
    assert quiet.warnings == ()


def test_explicit_actions_on_raw_events() -> None:
    feed = open_feed(MINUTE, symbol="AAPL")
    events = [e for e in feed if e.ts >= pd.Timestamp("2014-06-06", tz="America/New_York").value]
    split = CorporateAction.split("AAPL", date(2014, 6, 9), 7, "645.57")
    result = replay(events, instrument=feed.instrument, strategy=buy_and_hold, realism="bars", every="1min",
                    corporate_actions=[split])  # fmt: skip
    assert [e.position_after for e in _applied(result)] == [700]
    # Raw events without a spec: no format to judge, nothing applied, nothing said.
    plain = replay(events, instrument=feed.instrument, strategy=buy_and_hold, realism="bars", every="1min")
    assert _applied(plain) == [] and plain.warnings == ()
    assert not any(isinstance(e, CorporateActionEvent) for e in plain.events)


def test_corporate_actions_true_is_refused_by_name() -> None:
    # Not an option (mypy found the bool in the spec's type): it used to fail as a TypeError in list(True).
    with pytest.raises(ValueError, match="corporate_actions=True is not an option"):
        replay(open_feed(MINUTE, symbol="AAPL"), strategy=buy_and_hold, realism="bars", corporate_actions=True)


# ------------------------------------------------------------------------------------------ CLI


def test_cli_prints_the_applied_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["replay", str(MINUTE), "--symbol", "AAPL", "--realism", "bars", "--strategy",
            f"{STRATEGIES}:buy_and_hold", "--quiet"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "P&L +999.01 USD" in out
    assert "AAPL: 7:1 split on 2014-06-09 applied (position 100 -> 700)" in out
    assert main([*argv, "--out", str(tmp_path / "b"), "--corporate-actions", "none"]) == 0
    out = capsys.readouterr().out
    assert "P&L -55,262.99 USD" in out and "split" not in out
    assert main([*argv, "--out", str(tmp_path / "c"), "--corporate-actions", str(tmp_path / "nope.csv")]) == 2
    assert "--corporate-actions: no such factor file" in capsys.readouterr().err
