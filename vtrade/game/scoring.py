"""Leaderboard metrics from a student's NAV series and holdings (pure, no I/O).

Total return, Sharpe and maximum drawdown come from :mod:`vtrade.portfolio.analytics` (the same
numbers the student's own risk table shows). The composite rewards return per unit of drawdown
and only counts for a diversified, non-penny portfolio: a student failing a gate gets no composite
score and is told why. Its formula, with the default gates filled in, is :data:`COMPOSITE_FORMULA`
(what students see); :meth:`Gates.formula` gives it for other gates.

>>> import pandas as pd
>>> nav = pd.Series([100.0, 110.0, 99.0, 108.9])
>>> holdings = [Holding("AAPL", 40.0, 190.0), Holding("MSFT", 35.0, 410.0), Holding("XOM", 25.0, 105.0)]
>>> s = score(nav, holdings, Gates(min_holdings=3, max_position_pct=40))
>>> round(s.total_return, 4), round(s.max_drawdown, 4), s.composite, s.gate_failures
(0.089, -0.1, 0.039, ())
>>> score(nav, holdings).gate_failures   # the default gates: 5 holdings, 20 % per position
('you hold 3 stocks (minimum 5)', 'AAPL is 36.7 % of your portfolio (maximum 20 %)', ...)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import pandas as pd

from vtrade.portfolio.analytics import max_drawdown, returns_from_nav, sharpe_ratio, total_return

__all__ = ["COMPOSITE_FORMULA", "DEFAULT_GATES", "Gates", "Holding", "Scores", "composite", "gate_failures", "score"]

# The composite's explanation, with the gates left to fill in (:meth:`Gates.formula`).
_COMPOSITE_TEMPLATE = """\
Composite score: your return, penalised by your worst fall.

    composite = total return - 0.5 * |max drawdown|

total return: how much your portfolio grew (0.10 = +10 %).
max drawdown: the largest drop from a high point to a later low (-0.08 = fell 8 % from a peak).
You only get a composite score if your portfolio is diversified and avoids penny stocks:
  - you hold at least {min_holdings} different stocks,
  - no single position is more than {max_position_pct:g} % of your portfolio value,
  - every stock you hold trades at ${min_price:g} or more.
Example: +12 % return with a worst fall of 6 % scores 0.12 - 0.5 * 0.06 = 0.09."""

#: The drawdown penalty: each point of drawdown costs half a point of return.
DRAWDOWN_PENALTY = 0.5


@dataclass(frozen=True, slots=True)
class Holding:
    """One position: its symbol, its market value (same currency as the NAV) and its last price."""

    symbol: str
    value: float
    price: float


@dataclass(frozen=True, slots=True)
class Gates:
    """The composite's eligibility rules.

    >>> print(Gates().formula().splitlines()[2])
        composite = total return - 0.5 * |max drawdown|
    """

    min_holdings: int = 5
    max_position_pct: float = 20.0
    min_price: float = 5.0

    def __post_init__(self) -> None:
        if isinstance(self.min_holdings, bool) or not isinstance(self.min_holdings, int) or self.min_holdings < 0:
            raise ValueError(f"min_holdings must be an int >= 0, got {self.min_holdings!r}")
        if not (isinstance(self.max_position_pct, int | float) and 0 < self.max_position_pct <= 100):
            raise ValueError(f"max_position_pct must be in (0, 100], got {self.max_position_pct!r}")
        if not (isinstance(self.min_price, int | float) and math.isfinite(self.min_price) and self.min_price >= 0):
            raise ValueError(f"min_price must be a finite number >= 0, got {self.min_price!r}")

    def formula(self) -> str:
        """The composite's explanation for students, with these gates filled in."""
        return _COMPOSITE_TEMPLATE.format(
            min_holdings=self.min_holdings, max_position_pct=self.max_position_pct, min_price=self.min_price
        )


DEFAULT_GATES = Gates()
#: Shown to students next to the composite leaderboard (the default gates filled in).
COMPOSITE_FORMULA = DEFAULT_GATES.formula()


@dataclass(frozen=True, slots=True)
class Scores:
    """A student's leaderboard metrics. ``composite`` is None when a gate fails (see
    ``gate_failures``) or when there is not enough history (NaN inputs)."""

    total_return: float
    sharpe: float
    max_drawdown: float
    composite: float | None
    gate_failures: tuple[str, ...]


def _check_holdings(holdings: Sequence[Holding]) -> None:
    for h in holdings:
        if not isinstance(h, Holding):
            raise TypeError(f"holdings must be Holding values, got {type(h).__name__}")
        if not (math.isfinite(h.value) and math.isfinite(h.price)) or h.price <= 0:
            raise ValueError(f"holding {h.symbol!r} needs a finite value and a positive price, got {h}")


def gate_failures(holdings: Sequence[Holding], nav: float, gates: Gates = DEFAULT_GATES) -> tuple[str, ...]:
    """Why these holdings do not qualify for a composite score (empty: they do).

    A position's weight is ``|value| / nav`` (a short counts by its size). Positions of zero
    value are not holdings.

    >>> gate_failures([Holding("A", 60.0, 2.0), Holding("B", 40.0, 50.0)], 100.0, Gates(2, 50.0, 5.0))
    ('A is 60.0 % of your portfolio (maximum 50 %)', 'A trades at $2.00, below the $5 price floor')
    """
    _check_holdings(holdings)
    if not (math.isfinite(nav) and nav > 0):
        return (f"your portfolio value is {nav!r}: a composite needs a positive value",)
    held = [h for h in holdings if h.value != 0]
    out = []
    symbols = {h.symbol for h in held}
    if len(symbols) < gates.min_holdings:
        out.append(f"you hold {len(symbols)} stocks (minimum {gates.min_holdings})")
    for h in sorted(held, key=lambda h: (-abs(h.value), h.symbol)):
        pct = abs(h.value) / nav * 100
        if pct > gates.max_position_pct:
            out.append(f"{h.symbol} is {pct:.1f} % of your portfolio (maximum {gates.max_position_pct:g} %)")
    for h in sorted(held, key=lambda h: h.symbol):
        if h.price < gates.min_price:
            out.append(f"{h.symbol} trades at ${h.price:.2f}, below the ${gates.min_price:g} price floor")
    return tuple(out)


def composite(total_ret: float, max_dd: float) -> float:
    """``total_ret - DRAWDOWN_PENALTY * |max_dd|`` (:data:`COMPOSITE_FORMULA`).

    >>> composite(0.12, -0.06)
    0.09
    """
    return round(total_ret - DRAWDOWN_PENALTY * abs(max_dd), 12)


def score(nav: pd.Series, holdings: Sequence[Holding], gates: Gates = DEFAULT_GATES, period: str = "daily") -> Scores:
    """Every leaderboard metric of one student from their NAV series (oldest first, e.g. one
    value per session close) and current holdings.

    Fewer than two NAV values give NaN return and drawdown and no composite; fewer than three
    give a NaN Sharpe (analytics needs two returns). Sharpe is annualised for ``period``.
    """
    if not isinstance(nav, pd.Series):
        raise TypeError(f"nav must be a pandas Series of portfolio values, got {type(nav).__name__}")
    r = returns_from_nav(nav)
    # A Series in gives a float out (analytics' overloads are typed for DataFrames too).
    tr = cast(float, total_return(r))
    dd = cast(float, max_drawdown(r))
    sh = cast(float, sharpe_ratio(r, period=period))
    last = float(nav.iloc[-1]) if len(nav) else math.nan
    failures = gate_failures(holdings, last, gates)
    if math.isnan(tr) or math.isnan(dd):
        failures = (*failures, "not enough history: a composite needs at least two portfolio values")
    return Scores(tr, sh, dd, None if failures else composite(tr, dd), failures)
