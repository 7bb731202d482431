"""vtrade.portfolio.analytics and .attribution, checked against empyrical-reloaded on real daily
series from data/ (AAPL, XOM, AMD vs SPY, 2013–2017) and on hand-computed and degenerate cases."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal

import empyrical as ep
import numpy as np
import pandas as pd
import pytest
from empyrical.stats import drawdown_series as ep_drawdown_series

from vtrade.market.feeds.daily import load_universe
from vtrade.portfolio import analytics as va
from vtrade.portfolio.attribution import brinson_fachler, brinson_fachler_linked

REL = 1e-9
STOCKS = ("AAPL", "XOM", "AMD")


def same(ours: float, theirs: float, rel: float = REL) -> None:
    """Equal to ``rel`` relative, NaN == NaN, inf == inf of the same sign."""
    ours, theirs = float(ours), float(theirs)
    if math.isnan(theirs) or math.isinf(theirs):
        assert ours == theirs or (math.isnan(ours) and math.isnan(theirs)), (ours, theirs)
    else:
        assert math.isclose(ours, theirs, rel_tol=rel, abs_tol=0.0), (ours, theirs)


@pytest.fixture(scope="module")
def closes() -> pd.DataFrame:
    u = load_universe(tickers=[*STOCKS, "SPY"], start="2013-01-01", end="2017-12-31")
    c = u.frame.pivot(index="date", columns="ticker", values="close")[[*STOCKS, "SPY"]]
    assert len(c) > 1200 and not c.isna().any().any()
    return c


@pytest.fixture(scope="module")
def rets(closes: pd.DataFrame) -> pd.DataFrame:
    return va.returns_from_nav(closes)


# --------------------------------------------------------------------------------------------
# real series vs empyrical


def test_returns_from_nav_matches_empyrical_simple_returns(closes: pd.DataFrame, rets: pd.DataFrame) -> None:
    theirs = ep.simple_returns(closes)
    assert rets.index.equals(theirs.index) and list(rets.columns) == list(theirs.columns)
    np.testing.assert_allclose(rets.to_numpy(), theirs.to_numpy(), rtol=1e-12, atol=0)
    # a Series gives the same as a column of the frame
    pd.testing.assert_series_equal(va.returns_from_nav(closes["AAPL"]), rets["AAPL"])


@pytest.mark.parametrize("ticker", [*STOCKS, "SPY"])
def test_unary_metrics_match_empyrical(rets: pd.DataFrame, ticker: str) -> None:
    r = rets[ticker]
    same(va.total_return(r), ep.cum_returns_final(r))
    same(va.cagr(r), ep.cagr(r))
    same(va.cagr(r), ep.annual_return(r))
    same(va.annual_volatility(r), ep.annual_volatility(r))
    same(va.sharpe_ratio(r), ep.sharpe_ratio(r))
    same(va.sharpe_ratio(r, risk_free=0.0001), ep.sharpe_ratio(r, risk_free=0.0001))
    same(va.sortino_ratio(r), ep.sortino_ratio(r))
    same(va.sortino_ratio(r, required_return=0.0005), ep.sortino_ratio(r, required_return=0.0005))
    same(va.downside_risk(r), ep.downside_risk(r))
    same(va.max_drawdown(r), ep.max_drawdown(r))
    same(va.calmar_ratio(r), ep.calmar_ratio(r))
    for cutoff in (0.05, 0.01, 0.2, 0.25):
        same(va.value_at_risk(r, cutoff), ep.value_at_risk(r, cutoff))
        same(va.conditional_value_at_risk(r, cutoff), ep.conditional_value_at_risk(r, cutoff))
    np.testing.assert_allclose(va.drawdown_series(r).to_numpy(), ep_drawdown_series(r).to_numpy(), rtol=REL, atol=1e-15)


@pytest.mark.parametrize(("period", "annualization"), [("weekly", None), ("monthly", None), ("daily", 365)])
def test_annualisation_matches_empyrical(rets: pd.DataFrame, period: str, annualization: int | None) -> None:
    r, b = rets["XOM"], rets["SPY"]
    kw = {"period": period, "annualization": annualization}
    same(va.cagr(r, **kw), ep.cagr(r, **kw))
    same(va.annual_volatility(r, **kw), ep.annual_volatility(r, **kw))
    same(va.sharpe_ratio(r, **kw), ep.sharpe_ratio(r, **kw))
    same(va.sortino_ratio(r, **kw), ep.sortino_ratio(r, **kw))
    same(va.calmar_ratio(r, **kw), ep.calmar_ratio(r, **kw))
    same(va.alpha(r, b, **kw), ep.alpha(r, b, **kw))
    factor = annualization or {"weekly": 52, "monthly": 12}[period]
    same(va.information_ratio(r, b, **kw), ep.excess_sharpe(r, b) * math.sqrt(factor))


@pytest.mark.parametrize("ticker", STOCKS)
def test_benchmark_metrics_match_empyrical(rets: pd.DataFrame, ticker: str) -> None:
    r, b = rets[ticker], rets["SPY"]
    a_theirs, b_theirs = ep.alpha_beta(r, b)
    same(va.beta(r, b), b_theirs)
    same(va.alpha(r, b), a_theirs)
    a_rf, b_rf = ep.alpha_beta(r, b, risk_free=0.0001)
    same(va.alpha(r, b, risk_free=0.0001), a_rf)
    same(va.beta(r, b), b_rf)
    # information ratio = empyrical's per-period excess Sharpe, annualised with sqrt(252)
    same(va.information_ratio(r, b), ep.excess_sharpe(r, b) * math.sqrt(252))
    assert 0.3 < va.beta(r, b) < 3.0  # sanity: real stocks vs the market


def test_benchmark_metrics_align_on_dates(rets: pd.DataFrame) -> None:
    r, b = rets["AMD"], rets["SPY"]
    gappy = b.drop(b.index[::7])  # benchmark misses every 7th day
    shuffled = gappy.sample(frac=1.0, random_state=np.random.default_rng(7))
    a_theirs, b_theirs = ep.alpha_beta(r, gappy)
    for bench in (gappy, shuffled):
        same(va.beta(r, bench), b_theirs)
        same(va.alpha(r, bench), a_theirs)
        same(va.information_ratio(r, bench), ep.excess_sharpe(r, gappy) * math.sqrt(252))
    # the aligned answer differs from the full-benchmark one: the dropped dates really were dropped
    assert va.beta(r, gappy) != va.beta(r, b)


def test_dataframe_in_series_out(rets: pd.DataFrame) -> None:
    frame = rets[list(STOCKS)]
    cases = {
        va.total_return: ep.cum_returns_final,
        va.cagr: ep.cagr,
        va.annual_volatility: ep.annual_volatility,
        va.sharpe_ratio: ep.sharpe_ratio,
        va.sortino_ratio: ep.sortino_ratio,
        va.downside_risk: ep.downside_risk,
        va.max_drawdown: ep.max_drawdown,
        va.calmar_ratio: ep.calmar_ratio,
        va.value_at_risk: ep.value_at_risk,
        va.conditional_value_at_risk: ep.conditional_value_at_risk,
    }
    for ours, theirs in cases.items():
        got = ours(frame)
        assert isinstance(got, pd.Series) and list(got.index) == list(STOCKS), ours.__name__
        for t in STOCKS:
            same(got[t], theirs(frame[t]))
    betas = va.beta(frame, rets["SPY"])
    alphas = va.alpha(frame, rets["SPY"])
    irs = va.information_ratio(frame, rets["SPY"])
    for t in STOCKS:
        a_theirs, b_theirs = ep.alpha_beta(frame[t], rets["SPY"])
        same(betas[t], b_theirs)
        same(alphas[t], a_theirs)
        same(irs[t], ep.excess_sharpe(frame[t], rets["SPY"]) * math.sqrt(252))
    dd = va.drawdown_duration(frame)
    assert list(dd.columns) == ["longest", "current"] and list(dd.index) == list(STOCKS)
    assert tuple(dd.loc["AMD"]) == tuple(va.drawdown_duration(frame["AMD"]))


def _runs_under_water(returns: pd.Series) -> tuple[int, int]:
    """Longest and final run of empyrical drawdown < 0, counted independently of vtrade."""
    under = (ep_drawdown_series(returns) < 0).tolist()
    runs = [len(list(g)) for k, g in itertools.groupby(under) if k]
    return max(runs, default=0), (runs[-1] if under and under[-1] else 0)


@pytest.mark.parametrize("ticker", [*STOCKS, "SPY"])
def test_drawdown_duration_on_real_series(rets: pd.DataFrame, ticker: str) -> None:
    r = rets[ticker]
    longest, current = _runs_under_water(r)
    got = va.drawdown_duration(r)
    assert got == va.DrawdownDuration(float(longest), float(current))
    assert got.longest > 20  # five years of a real stock: at least a month under water somewhere


def test_drawdown_duration_by_hand() -> None:
    # wealth 1.0 → 1.1 → 0.99 → 1.0395 → 1.14345 (new high) → 1.132
    r = pd.Series([0.1, -0.1, 0.05, 0.1, -0.01])
    assert va.drawdown_duration(r) == (2.0, 1.0)
    # anchored at the initial NAV: a first-day loss is already under water, and never recovered
    assert va.drawdown_duration(pd.Series([-0.01, 0.005, 0.004])) == (3.0, 3.0)
    # recovery exactly to the peak ends the spell (1.25 * 0.8 = 1.0)
    assert va.drawdown_duration(pd.Series([0.25, -0.2, 0.25])) == (1.0, 0.0)
    assert va.drawdown_duration(pd.Series([-0.2, 0.25])) == (1.0, 0.0)


# --------------------------------------------------------------------------------------------
# degenerate inputs


def _all_unary(r: pd.Series) -> dict[str, float]:
    return {
        "total_return": va.total_return(r),
        "cagr": va.cagr(r),
        "annual_volatility": va.annual_volatility(r),
        "sharpe_ratio": va.sharpe_ratio(r),
        "sortino_ratio": va.sortino_ratio(r),
        "downside_risk": va.downside_risk(r),
        "max_drawdown": va.max_drawdown(r),
        "calmar_ratio": va.calmar_ratio(r),
        "value_at_risk": va.value_at_risk(r),
        "conditional_value_at_risk": va.conditional_value_at_risk(r),
    }


def _empyrical_unary(r: pd.Series) -> dict[str, float]:
    return {
        "total_return": ep.cum_returns_final(r),
        "cagr": ep.cagr(r),
        "annual_volatility": ep.annual_volatility(r),
        "sharpe_ratio": ep.sharpe_ratio(r),
        "sortino_ratio": ep.sortino_ratio(r),
        "downside_risk": ep.downside_risk(r),
        "max_drawdown": ep.max_drawdown(r),
        "calmar_ratio": ep.calmar_ratio(r),
        "value_at_risk": ep.value_at_risk(r),
        "conditional_value_at_risk": ep.conditional_value_at_risk(r),
    }


EDGE_CASES = {
    "no_losses": pd.Series([0.01, 0.002, 0.0, 0.03, 0.005]),
    "all_negative": pd.Series([-0.01, -0.02, -0.005, -0.03]),
    "single_period": pd.Series([0.02]),
    "single_loss": pd.Series([-0.02]),
    "flat": pd.Series([0.0] * 6),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_cases_match_empyrical(name: str) -> None:
    r = EDGE_CASES[name]
    ours, theirs = _all_unary(r), _empyrical_unary(r)
    assert ours.keys() == theirs.keys()
    for k in ours:
        same(ours[k], theirs[k])


def test_edge_case_values_are_the_documented_ones() -> None:
    nan = math.nan
    up = _all_unary(EDGE_CASES["no_losses"])
    assert up["max_drawdown"] == 0.0 and up["downside_risk"] == 0.0
    assert up["sortino_ratio"] == math.inf and math.isnan(up["calmar_ratio"])
    assert va.drawdown_duration(EDGE_CASES["no_losses"]) == (0.0, 0.0)

    flat = _all_unary(EDGE_CASES["flat"])
    assert flat["total_return"] == 0.0 and flat["cagr"] == 0.0 and flat["annual_volatility"] == 0.0
    assert math.isnan(flat["sharpe_ratio"]) and math.isnan(flat["sortino_ratio"]) and math.isnan(flat["calmar_ratio"])
    assert flat["max_drawdown"] == 0.0 and flat["value_at_risk"] == 0.0
    # a constant non-zero return: zero dispersion, so the Sharpe ratio is infinite (empyrical too)
    const = pd.Series([0.001] * 10)
    assert va.annual_volatility(const) == 0.0
    assert va.sharpe_ratio(const) == math.inf == ep.sharpe_ratio(const)
    assert va.sharpe_ratio(-const) == -math.inf

    one = _all_unary(EDGE_CASES["single_period"])
    assert one["total_return"] == pytest.approx(0.02, rel=1e-12)
    for k in ("annual_volatility", "sharpe_ratio", "sortino_ratio", "calmar_ratio"):
        assert math.isnan(one[k]), k
    assert one["value_at_risk"] == one["conditional_value_at_risk"] == 0.02

    down = _all_unary(EDGE_CASES["all_negative"])
    assert down["sortino_ratio"] < 0 and down["calmar_ratio"] < 0 and down["cagr"] < 0
    assert va.drawdown_duration(EDGE_CASES["all_negative"]) == (4.0, 4.0)

    for empty in (pd.Series([], dtype="float64"), pd.Series([nan, nan])):
        got = _all_unary(empty)
        assert all(math.isnan(v) for v in got.values()), got
        assert all(math.isnan(v) for v in va.drawdown_duration(empty))
        b = pd.Series([0.01] * len(empty), index=empty.index)
        assert math.isnan(va.beta(empty, b)) and math.isnan(va.alpha(empty, b))
        assert math.isnan(va.information_ratio(empty, b))


def test_nan_gaps_are_missing_observations(rets: pd.DataFrame) -> None:
    r = rets["AAPL"].copy()
    r.iloc[[3, 50, 51, 52, 400, 900]] = np.nan
    clean = r.dropna()
    ours, on_clean = _all_unary(r), _empyrical_unary(clean)
    for k in ours:
        same(ours[k], on_clean[k])
    # where empyrical itself skips NaN, it agrees with the raw gappy series too
    for k in ("annual_volatility", "sharpe_ratio", "sortino_ratio", "max_drawdown", "conditional_value_at_risk"):
        same(ours[k], _empyrical_unary(r)[k])
    # …while empyrical's annual_return counts a NaN as a zero-return period and its VaR turns NaN
    assert ep.cagr(r) != pytest.approx(ours["cagr"], rel=1e-9)
    assert math.isnan(ep.value_at_risk(r)) and not math.isnan(ours["value_at_risk"])
    b = rets["SPY"]
    a_theirs, b_theirs = ep.alpha_beta(r, b)
    same(va.beta(r, b), b_theirs)
    same(va.alpha(r, b), a_theirs)
    same(va.information_ratio(r, b), ep.excess_sharpe(r, b) * math.sqrt(252))
    assert va.drawdown_duration(r) == va.drawdown_duration(clean)
    # drawdown_series keeps the gaps as NaN and the rest as on the clean series
    dd = va.drawdown_series(r)
    assert dd.isna().sum() == 6
    np.testing.assert_allclose(dd.dropna().to_numpy(), ep_drawdown_series(clean).to_numpy(), rtol=REL, atol=1e-15)


def test_flat_benchmark_and_identical_series() -> None:
    r = pd.Series([0.01, -0.02, 0.005, 0.0])
    flat = pd.Series([0.001] * 4)
    assert math.isnan(va.beta(r, flat)) and math.isnan(ep.beta(r, flat))
    assert math.isnan(va.alpha(r, flat))
    assert math.isnan(va.information_ratio(r, r))  # no active return, no tracking error
    dyadic = pd.Series([0.5, -0.25, 0.125, 0.0])  # exact in binary, so the active return is exactly constant
    assert va.information_ratio(dyadic + 0.0625, dyadic) == math.inf == ep.excess_sharpe(dyadic + 0.0625, dyadic)
    assert va.information_ratio(dyadic - 0.0625, dyadic) == -math.inf
    same(va.beta(r, r), 1.0)
    assert math.isnan(va.beta(r.iloc[:1], r.iloc[:1]))  # one common date


# --------------------------------------------------------------------------------------------
# returns_from_nav


def test_returns_from_nav_gaps_zero_and_exact_inputs() -> None:
    idx = pd.date_range("2024-01-01", periods=5)
    nav = pd.Series([100.0, 110.0, np.nan, 99.0, 0.0], index=idx)
    got = va.returns_from_nav(nav)
    assert list(got.index) == [idx[1], idx[3], idx[4]]
    np.testing.assert_allclose(got.to_numpy(), [0.1, -0.1, -1.0], rtol=1e-12)
    # after a zero NAV the return is undefined
    after_zero = va.returns_from_nav(pd.Series([100.0, 0.0, 10.0]))
    assert after_zero.iloc[0] == -1.0 and math.isnan(after_zero.iloc[1])
    # the exact ledger (Decimal) and integer NAVs convert to float64
    dec = va.returns_from_nav(pd.Series([Decimal("100.00"), Decimal("101.50")], dtype=object))
    assert dec.dtype == np.float64 and dec.iloc[0] == pytest.approx(0.015, rel=1e-12)
    assert va.returns_from_nav(pd.Series([200, 100])).iloc[0] == -0.5
    assert va.returns_from_nav(pd.Series([100.0])).empty
    assert va.returns_from_nav(pd.Series([], dtype="float64")).empty


def test_returns_from_nav_frame_with_late_starts() -> None:
    idx = pd.date_range("2024-01-01", periods=4)
    navs = pd.DataFrame({"a": [100.0, 101.0, 102.01, 101.0], "b": [np.nan, np.nan, 50.0, 55.0]}, index=idx)
    got = va.returns_from_nav(navs)
    assert list(got.index) == list(idx[1:])
    assert got["b"].isna().tolist() == [True, True, False]
    assert got.loc[idx[3], "b"] == pytest.approx(0.1, rel=1e-12)
    table = va.risk_table(navs)
    assert table.loc["a", "periods"] == 3.0 and table.loc["b", "periods"] == 1.0
    same(table.loc["b", "total_return"], 0.1)


# --------------------------------------------------------------------------------------------
# trades


def test_round_trips_fifo_with_shorts_flips_fees_and_symbols() -> None:
    fills = pd.DataFrame(
        {
            "ts": [1, 2, 3, 4, 5, 6, 7],
            "symbol": ["X", "X", "Y", "X", "X", "Y", "X"],
            "side": [1, 1, -1, -1, -1, 1, 1],
            "price": [10.0, 11.0, 50.0, 12.0, 13.0, 45.0, 12.5],
            "quantity": [100.0, 100.0, 10.0, 150.0, 100.0, 10.0, 50.0],
            "fee": [1.0, 1.0, 0.5, 1.5, 1.0, 0.5, 0.5],
        }
    ).sample(frac=1.0, random_state=np.random.default_rng(3))  # row order must not matter: ts orders
    t = va.round_trips(fills)
    assert list(t.columns) == [
        "symbol", "direction", "quantity", "entry_price", "exit_price", "entry_ts", "exit_ts", "fees", "pnl",
    ]  # fmt: skip
    x = t[t["symbol"] == "X"].reset_index(drop=True)
    # buy 100@10, buy 100@11, sell 150@12 → closes 100@10 and 50@11; sell 100@13 closes 50@11 and
    # opens a 50 short @13; buy 50@12.5 covers it.
    assert x[["direction", "quantity", "entry_price", "exit_price"]].values.tolist() == [
        [1, 100.0, 10.0, 12.0], [1, 50.0, 11.0, 12.0], [1, 50.0, 11.0, 13.0], [-1, 50.0, 13.0, 12.5],
    ]  # fmt: skip
    fee_pu = {10.0: 0.01, 11.0: 0.01, 12.0: 0.01, 13.0: 0.01, 12.5: 0.01}
    expected_pnl = [
        200.0 - 100 * (fee_pu[10.0] + fee_pu[12.0]),
        50.0 - 50 * (fee_pu[11.0] + fee_pu[12.0]),
        100.0 - 50 * (fee_pu[11.0] + fee_pu[13.0]),
        25.0 - 50 * (fee_pu[13.0] + fee_pu[12.5]),
    ]
    np.testing.assert_allclose(x["pnl"].to_numpy(), expected_pnl, rtol=1e-12)
    y = t[t["symbol"] == "Y"]
    assert y["direction"].tolist() == [-1] and y["pnl"].iloc[0] == pytest.approx(50.0 - 1.0, rel=1e-12)
    # the fills frame and its round trips give the same win rate / profit factor
    assert va.win_rate(fills) == va.win_rate(t) == 1.0
    assert va.profit_factor(fills) == math.inf


def test_round_trips_of_replay_style_fills_and_open_positions() -> None:
    # vt.replay(...).fills: side is +1/-1, no symbol column, still-open inventory is not a trade
    fills = pd.DataFrame(
        {"side": [1, -1, -1, 1, 1], "price": [5.0, 4.0, 6.0, 7.0, 8.0], "quantity": [2.0, 2.0, 1, 1, 3]}
    )
    t = va.round_trips(fills)
    assert t["pnl"].tolist() == [-2.0, -1.0]
    assert va.win_rate(fills) == 0.0 and va.profit_factor(fills) == 0.0
    assert va.round_trips(fills.iloc[:0]).empty


def test_win_rate_and_profit_factor_by_hand() -> None:
    trades = pd.DataFrame({"pnl": [10.0, -4.0, 0.0, 6.0, -2.0, np.nan]})
    assert va.win_rate(trades) == 2 / 5  # break-even counts as a trade, NaN is dropped
    assert va.profit_factor(trades) == 16.0 / 6.0
    assert math.isnan(va.win_rate(pd.DataFrame({"pnl": []})))
    assert math.isnan(va.profit_factor(pd.DataFrame({"pnl": []})))
    assert math.isnan(va.profit_factor(pd.DataFrame({"pnl": [0.0, 0.0]})))
    assert va.profit_factor(pd.DataFrame({"pnl": [3.0, 0.0]})) == math.inf
    assert va.profit_factor(pd.DataFrame({"pnl": [-3.0, -1.0]})) == 0.0


def test_turnover_by_hand() -> None:
    nav = pd.Series([1000.0, 1100.0, 900.0, 1000.0])  # mean 1000, 4 periods
    assert va.turnover(pd.Series([500.0, -300.0, 200.0]), nav) == pytest.approx(1000.0 / 1000.0 / 4, rel=1e-12)
    fills = pd.DataFrame({"price": [10.0, 20.0], "quantity": [30.0, 10.0]})
    assert va.turnover(fills, nav) == pytest.approx(500.0 / 1000.0 / 4, rel=1e-12)
    assert va.turnover(pd.DataFrame({"notional": [-100.0, 100.0]}), nav) == pytest.approx(0.05, rel=1e-12)
    assert va.turnover(pd.Series([], dtype="float64"), nav) == 0.0
    assert math.isnan(va.turnover(pd.Series([1.0]), pd.Series([], dtype="float64")))
    assert math.isnan(va.turnover(pd.Series([1.0]), pd.Series([np.nan, np.nan])))


# --------------------------------------------------------------------------------------------
# risk table


def test_risk_table_on_real_navs(closes: pd.DataFrame, rets: pd.DataFrame) -> None:
    navs = closes[list(STOCKS)]
    table = va.risk_table(navs, benchmark=closes["SPY"])
    assert list(table.index) == list(STOCKS)
    assert list(table.columns) == [*va.RISK_TABLE_COLUMNS, *va.BENCHMARK_COLUMNS]
    assert (table.dtypes == np.float64).all()
    for t in STOCKS:
        r, b = rets[t], rets["SPY"]
        row = table.loc[t]
        assert row["periods"] == len(r)
        same(row["total_return"], ep.cum_returns_final(r))
        same(row["cagr"], ep.cagr(r))
        same(row["annual_volatility"], ep.annual_volatility(r))
        same(row["sharpe_ratio"], ep.sharpe_ratio(r))
        same(row["sortino_ratio"], ep.sortino_ratio(r))
        same(row["max_drawdown"], ep.max_drawdown(r))
        same(row["calmar_ratio"], ep.calmar_ratio(r))
        same(row["value_at_risk"], ep.value_at_risk(r))
        same(row["conditional_value_at_risk"], ep.conditional_value_at_risk(r))
        a_theirs, b_theirs = ep.alpha_beta(r, b)
        same(row["beta"], b_theirs)
        same(row["alpha"], a_theirs)
        same(row["information_ratio"], ep.excess_sharpe(r, b) * math.sqrt(252))
        assert (row["max_drawdown_duration"], row["current_drawdown_duration"]) == tuple(
            float(v) for v in _runs_under_water(r)
        )
    # the benchmark named as a column: its own row has beta 1, alpha 0, no information ratio
    by_name = va.risk_table(closes, benchmark="SPY", risk_free=0.00005)
    same(by_name.loc["SPY", "beta"], 1.0)
    assert abs(by_name.loc["SPY", "alpha"]) < 1e-12 and math.isnan(by_name.loc["SPY", "information_ratio"])
    same(by_name.loc["AMD", "sharpe_ratio"], ep.sharpe_ratio(rets["AMD"], risk_free=0.00005))
    same(by_name.loc["AMD", "alpha"], ep.alpha(rets["AMD"], rets["SPY"], risk_free=0.00005))
    # no benchmark: no benchmark columns; a Series of one account is a one-row table
    assert list(va.risk_table(navs).columns) == list(va.RISK_TABLE_COLUMNS)
    one = va.risk_table(closes["XOM"])
    assert list(one.index) == ["XOM"]
    same(one.loc["XOM", "sharpe_ratio"], ep.sharpe_ratio(rets["XOM"]))


def test_risk_table_degenerate() -> None:
    empty = va.risk_table(pd.DataFrame(index=pd.date_range("2024-01-01", periods=3)))
    assert empty.empty and list(empty.columns) == list(va.RISK_TABLE_COLUMNS)
    idx = pd.date_range("2024-01-01", periods=3)
    navs = pd.DataFrame({"flat": [100.0] * 3, "one": [100.0, np.nan, np.nan], "none": [np.nan] * 3}, index=idx)
    t = va.risk_table(navs)
    assert t.loc["flat", "total_return"] == 0.0 and math.isnan(t.loc["flat", "sharpe_ratio"])
    assert t.loc["one", "periods"] == 0.0 and math.isnan(t.loc["one", "total_return"])
    assert t.loc["none", "periods"] == 0.0 and math.isnan(t.loc["none", "max_drawdown"])


# --------------------------------------------------------------------------------------------
# bad types and shapes


def test_bad_types_and_shapes_raise_clear_errors() -> None:
    r = pd.Series([0.01, -0.01, 0.02], index=pd.date_range("2024-01-01", periods=3))
    with pytest.raises(TypeError, match="pandas Series, DataFrame or numpy array"):
        va.sharpe_ratio([0.01, 0.02])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must hold numbers"):
        va.total_return(pd.Series(["a", "b"]))
    with pytest.raises(TypeError, match="must hold numbers"):
        va.total_return(pd.Series(["0.1", "0.2"], dtype=object))
    with pytest.raises(TypeError, match="must hold numbers"):
        va.max_drawdown(pd.Series([True, False]))
    with pytest.raises(ValueError, match="1-D or 2-D"):
        va.max_drawdown(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="period must be one of"):
        va.cagr(r, period="hourly")
    with pytest.raises(ValueError, match="positive number"):
        va.cagr(r, annualization=0)
    with pytest.raises(ValueError, match="cutoff"):
        va.value_at_risk(r, cutoff=1.5)
    with pytest.raises(TypeError, match="risk_free"):
        va.sharpe_ratio(r, risk_free="0.01")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2 columns"):
        va.beta(r, pd.DataFrame({"a": r, "b": r}))
    with pytest.raises(TypeError, match="indexed by dates"):
        va.beta(r, r.reset_index(drop=True))
    with pytest.raises(ValueError, match="differ in length"):
        va.alpha(r.to_numpy(), np.zeros(5))
    with pytest.raises(ValueError, match="duplicate"):
        va.beta(pd.concat([r, r]), r)
    with pytest.raises(TypeError, match="nav must be"):
        va.returns_from_nav(np.array([1.0, 2.0]))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="side must be"):
        va.round_trips(pd.DataFrame({"side": ["hold"], "price": [1.0], "quantity": [1.0]}))
    with pytest.raises(ValueError, match="quantity must be > 0"):
        va.round_trips(pd.DataFrame({"side": [1], "price": [1.0], "quantity": [0.0]}))
    with pytest.raises(ValueError, match="'pnl' column"):
        va.win_rate(pd.DataFrame({"profit": [1.0]}))
    with pytest.raises(TypeError, match="DataFrame"):
        va.profit_factor(pd.Series([1.0]))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="notional"):
        va.turnover(pd.DataFrame({"qty": [1.0]}), r)
    with pytest.raises(ValueError, match="not a column"):
        va.risk_table(pd.DataFrame({"a": [1.0, 2.0]}), benchmark="SPY")
    with pytest.raises(TypeError, match="navs must be"):
        va.risk_table([1.0, 2.0])  # type: ignore[arg-type]


def test_arrays_pair_by_position() -> None:
    r = np.array([0.01, -0.02, 0.03, 0.0])
    b = np.array([0.005, -0.01, 0.02, 0.001])
    same(va.sharpe_ratio(r), ep.sharpe_ratio(r))
    a_theirs, b_theirs = ep.alpha_beta(r, b)
    same(va.beta(r, b), b_theirs)
    same(va.alpha(r, b), a_theirs)


# --------------------------------------------------------------------------------------------
# Brinson–Fachler


def test_brinson_fachler_two_sectors_by_hand() -> None:
    # Portfolio 70 % Tech (+6 %), 30 % Energy (-1 %); benchmark 40 % Tech (+5 %), 60 % Energy (+1 %).
    # Rp = .7*.06 + .3*-.01 = .039, Rb = .4*.05 + .6*.01 = .026, active = .013.
    t = brinson_fachler({"Tech": 0.7, "Energy": 0.3}, {"Tech": 0.4, "Energy": 0.6},
                        {"Tech": 0.06, "Energy": -0.01}, {"Tech": 0.05, "Energy": 0.01})  # fmt: skip
    expected = {
        # allocation (wp-wb)(rb_i-Rb)     selection wb(rp_i-rb_i)   interaction (wp-wb)(rp_i-rb_i)
        "Tech": (0.3 * (0.05 - 0.026), 0.4 * (0.06 - 0.05), 0.3 * (0.06 - 0.05)),  # .0072, .004, .003
        "Energy": (-0.3 * (0.01 - 0.026), 0.6 * (-0.01 - 0.01), -0.3 * (-0.01 - 0.01)),  # .0048, -.012, .006
    }
    for sector, (a, s, i) in expected.items():
        row = t.loc[sector]
        assert row["allocation"] == pytest.approx(a, abs=1e-15)
        assert row["selection"] == pytest.approx(s, abs=1e-15)
        assert row["interaction"] == pytest.approx(i, abs=1e-15)
        assert row["total_effect"] == pytest.approx(a + s + i, abs=1e-15)
    total = t.loc["Total"]
    assert total["portfolio_return"] == pytest.approx(0.039, abs=1e-15)
    assert total["benchmark_return"] == pytest.approx(0.026, abs=1e-15)
    assert total["allocation"] == pytest.approx(0.012, abs=1e-15)
    assert total["selection"] == pytest.approx(-0.008, abs=1e-15)
    assert total["interaction"] == pytest.approx(0.009, abs=1e-15)
    assert total["allocation"] + total["selection"] + total["interaction"] == pytest.approx(0.013, abs=1e-15)
    assert total["total_effect"] == pytest.approx(total["portfolio_return"] - total["benchmark_return"], abs=1e-15)
    assert total["portfolio_weight"] == pytest.approx(1.0) and total["benchmark_weight"] == pytest.approx(1.0)


def test_brinson_fachler_off_benchmark_and_unheld_sectors() -> None:
    t = brinson_fachler(
        pd.Series({"A": 0.5, "Crypto": 0.5}),
        pd.Series({"A": 0.5, "B": 0.5}),
        pd.Series({"A": 0.02, "Crypto": 0.10}),
        pd.Series({"A": 0.01, "B": 0.03}),
    )
    rb = 0.02  # .5*.01 + .5*.03
    # not held: selection/interaction 0, allocation -wb(rb_i - Rb)
    assert t.loc["B", ["selection", "interaction"]].tolist() == [0.0, 0.0]
    assert t.loc["B", "allocation"] == pytest.approx(-0.5 * (0.03 - rb), abs=1e-15)
    # off-benchmark: everything is allocation wp(rp_i - Rb)
    assert t.loc["Crypto", "allocation"] == pytest.approx(0.5 * (0.10 - rb), abs=1e-15)
    assert t.loc["Crypto", ["selection", "interaction"]].tolist() == [0.0, 0.0]
    assert t.loc["Total", "total_effect"] == pytest.approx((0.5 * 0.02 + 0.5 * 0.10) - rb, abs=1e-15)
    empty = brinson_fachler(
        pd.Series(dtype=float), pd.Series(dtype=float), pd.Series(dtype=float), pd.Series(dtype=float)
    )
    assert list(empty.index) == ["Total"] and empty.isna().all().all()


def test_brinson_fachler_bad_input() -> None:
    w = {"A": 0.5, "B": 0.5}
    with pytest.raises(ValueError, match=r"sum to 0\.9"):
        brinson_fachler({"A": 0.5, "B": 0.4}, w, {"A": 0.0, "B": 0.0}, {"A": 0.0, "B": 0.0})
    with pytest.raises(ValueError, match="no finite return for held sector"):
        brinson_fachler(w, w, {"A": 0.01}, {"A": 0.0, "B": 0.0})
    with pytest.raises(TypeError, match="mapping sector"):
        brinson_fachler([0.5, 0.5], w, w, w)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a finite"):
        brinson_fachler({"A": np.nan, "B": 1.0}, w, w, w)


def _periods() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    idx = pd.Index(["2017Q1", "2017Q2", "2017Q3"])
    wp = pd.DataFrame({"Tech": [0.6, 0.5, 0.7], "Energy": [0.4, 0.5, 0.3]}, index=idx)
    wb = pd.DataFrame({"Tech": [0.5, 0.5, 0.5], "Energy": [0.5, 0.5, 0.5]}, index=idx)
    rp = pd.DataFrame({"Tech": [0.10, -0.04, 0.06], "Energy": [0.02, 0.03, -0.05]}, index=idx)
    rb = pd.DataFrame({"Tech": [0.08, -0.03, 0.05], "Energy": [0.03, 0.01, -0.02]}, index=idx)
    return wp, wb, rp, rb


def test_brinson_linked_carino_reconciles_to_compounded_active_return() -> None:
    wp, wb, rp, rb = _periods()
    t = brinson_fachler_linked(wp, wb, rp, rb)
    port = np.prod(1 + (wp * rp).sum(axis=1)) - 1
    bench = np.prod(1 + (wb * rb).sum(axis=1)) - 1
    total = t.loc["Total"]
    assert total["portfolio_return"] == pytest.approx(port, rel=1e-12)
    assert total["benchmark_return"] == pytest.approx(bench, rel=1e-12)
    assert total["allocation"] + total["selection"] + total["interaction"] == pytest.approx(port - bench, rel=1e-12)
    # independent Cariño: k_t = ln((1+Rp_t)/(1+Rb_t)) / (Rp_t - Rb_t), K likewise over the span
    rpt, rbt = (wp * rp).sum(axis=1), (wb * rb).sum(axis=1)
    k = (np.log1p(rpt) - np.log1p(rbt)) / (rpt - rbt)
    big_k = (math.log1p(port) - math.log1p(bench)) / (port - bench)
    alloc_t = [brinson_fachler(wp.loc[p], wb.loc[p], rp.loc[p], rb.loc[p]).loc["Tech", "allocation"] for p in wp.index]
    assert t.loc["Tech", "allocation"] == pytest.approx(float((np.asarray(alloc_t) * k / big_k).sum()), rel=1e-12)
    # plain sums add to the summed periodic active returns, not to the compounded one
    s = brinson_fachler_linked(wp, wb, rp, rb, method="sum")
    assert s.loc["Total", "total_effect"] == pytest.approx(float((rpt - rbt).sum()), rel=1e-12)
    assert s.loc["Tech", "selection"] == pytest.approx(0.5 * (0.02 - 0.01 + 0.01), rel=1e-12)
    assert abs(s.loc["Total", "total_effect"] - (port - bench)) > 1e-5


def test_brinson_linked_bad_input() -> None:
    wp, wb, rp, rb = _periods()
    with pytest.raises(ValueError, match="same periods"):
        brinson_fachler_linked(wp, wb.iloc[:2], rp, rb)
    with pytest.raises(ValueError, match="method"):
        brinson_fachler_linked(wp, wb, rp, rb, method="grap")  # type: ignore[arg-type]
    bad = wp.copy()
    bad.iloc[1, 0] = 0.9
    with pytest.raises(ValueError, match="period '2017Q2'"):
        brinson_fachler_linked(bad, wb, rp, rb)
    with pytest.raises(TypeError, match="DataFrame"):
        brinson_fachler_linked(wp.iloc[0], wb, rp, rb)  # type: ignore[arg-type]
