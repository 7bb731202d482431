"""Leaderboard metrics (vtrade.game.scoring), against figures computed by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from vtrade.game.scoring import COMPOSITE_FORMULA, Gates, Holding, composite, gate_failures, score

NAV = pd.Series([100.0, 110.0, 99.0, 108.9])  # returns +10 %, -10 %, +10 %
FIVE = [Holding(s, 20.0, 10.0) for s in "ABCDE"]  # 5 x 20 % of a 100 NAV, all at $10


def test_metrics_by_hand() -> None:
    s = score(NAV * 1.0, [Holding(h.symbol, h.value * 1.089, h.price) for h in FIVE])
    assert s.total_return == pytest.approx(1.1 * 0.9 * 1.1 - 1)  # 0.089
    assert s.max_drawdown == pytest.approx(0.99 / 1.1 - 1)  # -0.1, from the 110 peak to 99
    # mean 1/30, sample std sqrt(((2/30)^2 * 2 + (4/30)^2) / 2) = 0.11547, times sqrt(252)
    assert s.sharpe == pytest.approx((1 / 30) / math.sqrt((2 * (2 / 30) ** 2 + (4 / 30) ** 2) / 2) * math.sqrt(252))
    assert round(s.sharpe, 4) == 4.5826
    assert s.composite == pytest.approx(0.089 - 0.5 * 0.1)  # 0.039
    assert s.gate_failures == ()


def test_composite_formula() -> None:
    assert composite(0.12, -0.06) == 0.09
    assert composite(-0.05, -0.2) == -0.15
    assert composite(0.0, 0.0) == 0.0
    assert "composite = total return - 0.5 * |max drawdown|" in COMPOSITE_FORMULA
    assert "{" not in COMPOSITE_FORMULA and "at least 5 different stocks" in COMPOSITE_FORMULA  # filled in
    text = Gates(4, 25.0, 3.0).formula()
    assert "at least 4 different stocks" in text and "more than 25 %" in text and "$3 or more" in text


def test_gates_at_and_beyond_their_limits() -> None:
    assert gate_failures(FIVE, 100.0) == ()  # exactly 5 holdings, exactly 20 % each, $10 > $5
    assert gate_failures(FIVE[:4], 100.0) == ("you hold 4 stocks (minimum 5)",)
    big = [*FIVE[:4], Holding("E", 20.5, 10.0)]
    assert gate_failures(big, 100.0) == ("E is 20.5 % of your portfolio (maximum 20 %)",)
    short = [*FIVE[:4], Holding("E", -30.0, 10.0)]  # a short counts by its size
    assert gate_failures(short, 100.0) == ("E is 30.0 % of your portfolio (maximum 20 %)",)
    cheap = [*FIVE[:4], Holding("E", 20.0, 4.99)]
    assert gate_failures(cheap, 100.0) == ("E trades at $4.99, below the $5 price floor",)
    at_floor = [*FIVE[:4], Holding("E", 20.0, 5.0)]
    assert gate_failures(at_floor, 100.0) == ()
    closed = [*FIVE[:4], Holding("F", 0.0, 1.0)]  # a closed position is not a holding
    assert gate_failures(closed, 100.0) == ("you hold 4 stocks (minimum 5)",)
    assert gate_failures(FIVE, 0.0) == ("your portfolio value is 0.0: a composite needs a positive value",)


def test_a_failed_gate_gives_no_composite_with_the_reason() -> None:
    s = score(NAV, [Holding("A", 108.9, 2.0)])
    assert s.composite is None
    assert s.gate_failures == (
        "you hold 1 stocks (minimum 5)",
        "A is 100.0 % of your portfolio (maximum 20 %)",
        "A trades at $2.00, below the $5 price floor",
    )
    assert s.total_return == pytest.approx(0.089)  # the other metrics are still there


def test_too_little_history() -> None:
    s = score(pd.Series([100.0]), FIVE)
    assert s.composite is None and math.isnan(s.total_return) and math.isnan(s.sharpe)
    assert s.gate_failures == ("not enough history: a composite needs at least two portfolio values",)


def test_bad_input() -> None:
    with pytest.raises(TypeError, match="pandas Series"):
        score([100.0, 101.0], FIVE)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive price"):
        gate_failures([Holding("A", 10.0, 0.0)], 100.0)
    with pytest.raises(ValueError, match="finite value"):
        gate_failures([Holding("A", math.nan, 1.0)], 100.0)
    with pytest.raises(ValueError, match="max_position_pct"):
        Gates(max_position_pct=0)
    with pytest.raises(ValueError, match="min_holdings"):
        Gates(min_holdings=-1)
