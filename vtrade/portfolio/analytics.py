"""Risk and performance analytics on NAV and returns series (float64, pure, no I/O).

Conventions (those of `empyrical-reloaded <https://github.com/stefan-jansen/empyrical-reloaded>`_,
against which the test suite checks every metric to 1e-9 relative):

- **Returns are simple** period returns, ``nav[t] / nav[t-1] - 1``; :func:`returns_from_nav`
  makes them from a NAV (or price) series. Every other function takes returns.
- **Annualisation** by a number of periods per year: ``period="daily"`` (252, the default),
  ``"weekly"`` (52), ``"monthly"`` (12), ``"quarterly"`` (4), ``"yearly"`` (1), or an explicit
  ``annualization=`` that overrides ``period``. Volatilities scale by ``sqrt(factor)``.
- **Sample statistics** use ``ddof=1``.
- **Risk-free rate / required return are per period** (a daily rate for daily returns), constant.
- **Drawdowns are anchored at the initial NAV**: wealth starts at 1.0 *before* the first return,
  so a first-day loss is already a drawdown.
- **Missing values**: a NaN return is a missing observation and is dropped (per column) before a
  metric is computed; it is never read as a zero return. This equals empyrical on the NaN-free
  series. (empyrical itself counts a NaN in ``annual_return``'s number of years and in its
  drawdown series as a zero-return period, and its ``value_at_risk`` turns NaN; here it
  consistently does neither.) Benchmark-relative metrics use the dates where both series have
  a value.
- **Shapes**: a Series (or 1-D array) gives a float; a DataFrame (one column per account or
  asset) gives a Series indexed by column. Bad types (strings, objects that are not numbers)
  raise :class:`TypeError`; bad shapes or parameters raise :class:`ValueError`. Degenerate data
  (empty, all-NaN, a single value, a flat series, no losses) never raises: each docstring
  says whether the answer is NaN or ±inf.

>>> import pandas as pd
>>> nav = pd.Series([100.0, 110.0, 99.0, 108.9], index=pd.date_range("2024-01-01", periods=4))
>>> r = returns_from_nav(nav)
>>> r.round(4).tolist()
[0.1, -0.1, 0.1]
>>> round(total_return(r), 6), round(max_drawdown(r), 6)
(0.089, -0.1)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple, TypedDict, overload

import numpy as np
import pandas as pd

__all__ = [
    "ANNUALIZATION_FACTORS",
    "DrawdownDuration",
    "alpha",
    "annual_volatility",
    "annualization_factor",
    "beta",
    "cagr",
    "calmar_ratio",
    "conditional_value_at_risk",
    "downside_risk",
    "drawdown_duration",
    "drawdown_series",
    "information_ratio",
    "max_drawdown",
    "profit_factor",
    "returns_from_nav",
    "risk_table",
    "round_trips",
    "sharpe_ratio",
    "sortino_ratio",
    "total_return",
    "turnover",
    "value_at_risk",
    "win_rate",
]

Period = Literal["daily", "weekly", "monthly", "quarterly", "yearly"]
ReturnsLike = pd.Series | pd.DataFrame | np.ndarray

ANNUALIZATION_FACTORS: dict[str, int] = {"daily": 252, "weekly": 52, "monthly": 12, "quarterly": 4, "yearly": 1}


# --------------------------------------------------------------------------------------------
# input handling


def annualization_factor(period: Period | str = "daily", annualization: float | None = None) -> float:
    """Periods per year: ``annualization`` if given, else the factor of ``period``.

    >>> annualization_factor("daily"), annualization_factor("monthly"), annualization_factor("daily", 365)
    (252.0, 12.0, 365.0)
    """
    if annualization is not None:
        if isinstance(annualization, bool) or not isinstance(annualization, int | float | np.integer | np.floating):
            raise TypeError(f"annualization must be a number of periods per year, got {annualization!r}")
        if not math.isfinite(annualization) or annualization <= 0:
            raise ValueError(f"annualization must be a positive number of periods per year, got {annualization!r}")
        return float(annualization)
    try:
        return float(ANNUALIZATION_FACTORS[period])
    except (KeyError, TypeError):
        raise ValueError(
            f"period must be one of {sorted(ANNUALIZATION_FACTORS)} (or pass annualization=), got {period!r}"
        ) from None


def _float_values(values: pd.Series | pd.DataFrame, what: str) -> pd.Series | pd.DataFrame:
    """``values`` as float64, or TypeError if it does not hold numbers (bools are not numbers here)."""
    dtypes = [values.dtype] if isinstance(values, pd.Series) else list(values.dtypes)
    for dt in dtypes:
        if pd.api.types.is_bool_dtype(dt) or not (
            pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_object_dtype(dt)
        ):
            raise TypeError(f"{what} must hold numbers, got dtype {dt}")
        if pd.api.types.is_object_dtype(dt):  # Decimal (exact ledger money) / Python numbers; not text
            cols = [values] if isinstance(values, pd.Series) else [values[c] for c in values.columns]
            for col in cols:
                kind = pd.api.types.infer_dtype(col, skipna=True)
                if kind not in ("decimal", "integer", "floating", "mixed-integer-float", "empty"):
                    raise TypeError(f"{what} must hold numbers, got {kind} values")
    try:
        return values.astype("float64")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must hold numbers: {exc}") from None


def _as_pandas(x: object, what: str) -> pd.Series | pd.DataFrame:
    """A Series/DataFrame of float64 from a Series, DataFrame or 1-/2-D array; else TypeError."""
    if isinstance(x, pd.Series | pd.DataFrame):
        return _float_values(x, what)
    if isinstance(x, np.ndarray):
        if x.ndim == 1:
            return _float_values(pd.Series(x), what)
        if x.ndim == 2:
            return _float_values(pd.DataFrame(x), what)
        raise ValueError(f"{what} must be 1-D or 2-D, got an array of shape {x.shape}")
    raise TypeError(f"{what} must be a pandas Series, DataFrame or numpy array, got {type(x).__name__}")


def _clean(values: np.ndarray) -> np.ndarray:
    """The non-NaN values (NaN = missing observation)."""
    return values[~np.isnan(values)]


def _unary(returns: object, kernel: Callable[[np.ndarray], float], name: str) -> float | pd.Series:
    r = _as_pandas(returns, "returns")
    if isinstance(r, pd.Series):
        return float(kernel(_clean(r.to_numpy())))
    out = [float(kernel(_clean(r.iloc[:, i].to_numpy()))) for i in range(r.shape[1])]
    return pd.Series(out, index=r.columns, dtype="float64", name=name)


def _check_index(a: pd.Series | pd.DataFrame, b: pd.Series) -> None:
    a_dt, b_dt = isinstance(a.index, pd.DatetimeIndex), isinstance(b.index, pd.DatetimeIndex)
    if a_dt != b_dt:
        raise TypeError(
            "returns and benchmark must both be indexed by dates or both not "
            f"(got {type(a.index).__name__} and {type(b.index).__name__})"
        )
    a_idx, b_idx = a.index, b.index
    if isinstance(a_idx, pd.DatetimeIndex) and isinstance(b_idx, pd.DatetimeIndex) and (
        (a_idx.tz is None) != (b_idx.tz is None)
    ):
        raise TypeError("returns and benchmark mix timezone-aware and naive dates")
    for obj, who in ((a, "returns"), (b, "benchmark")):
        if not obj.index.is_unique:
            raise ValueError(f"{who} has duplicate index labels: cannot align on dates")


def _binary(
    returns: object, benchmark: object, kernel: Callable[[np.ndarray, np.ndarray], float], name: str
) -> float | pd.Series:
    """Apply ``kernel(r, b)`` to the dates where both have a value (per column of ``returns``)."""
    r = _as_pandas(returns, "returns")
    b = _as_pandas(benchmark, "benchmark")
    if isinstance(b, pd.DataFrame):
        if b.shape[1] != 1:
            raise ValueError(f"benchmark must be one series, got a DataFrame with {b.shape[1]} columns")
        b = b.iloc[:, 0]
    if not isinstance(benchmark, pd.Series | pd.DataFrame) or not isinstance(returns, pd.Series | pd.DataFrame):
        # an array has no dates: it pairs by position, so the lengths must agree
        if len(b) != len(r):
            raise ValueError(f"returns ({len(r)}) and benchmark ({len(b)}) arrays differ in length")
        b = pd.Series(b.to_numpy(), index=r.index)
    _check_index(r, b)

    def one(col: pd.Series) -> float:
        both = pd.concat([col.rename("r"), b.rename("b")], axis=1, join="inner").dropna()
        return float(kernel(both["r"].to_numpy(), both["b"].to_numpy()))

    if isinstance(r, pd.Series):
        return one(r)
    return pd.Series([one(r.iloc[:, i]) for i in range(r.shape[1])], index=r.columns, dtype="float64", name=name)


def _std(x: np.ndarray) -> float:
    """Sample standard deviation (ddof=1); exactly 0.0 for a constant series (empyrical's
    ``_zero_dispersion_std``: the float residue ~1e-18 would turn an infinite ratio into 1e15)."""
    if len(x) < 2:
        return math.nan
    if x.max() == x.min():
        return 0.0
    return float(np.std(x, ddof=1))


def _ratio(num: float, den: float) -> float:
    """num/den with IEEE semantics: x/0 = ±inf, 0/0 = NaN (never raises)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(num) / np.float64(den))


# --------------------------------------------------------------------------------------------
# returns


@overload
def returns_from_nav(nav: pd.Series) -> pd.Series: ...
@overload
def returns_from_nav(nav: pd.DataFrame) -> pd.DataFrame: ...
@overload
def returns_from_nav(nav: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame: ...
def returns_from_nav(nav: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
    """Simple returns ``nav[t] / nav[t-1] - 1`` of a NAV (or price) series, per column.

    A NaN (or ±inf) NAV is a missing mark, not a zero: it is skipped, and the return across the
    gap is booked on the next observed date. A Series gives the returns on its observed dates
    after the first; a DataFrame gives NaN where a column has no return (before its first mark,
    on its gaps). A return whose previous NAV is ≤ 0 is undefined: NaN. ``Decimal`` or integer
    NAVs (the exact ledger) are converted to float64.

    >>> nav = pd.Series([100.0, 102.0, float("nan"), 96.9], index=pd.date_range("2024-01-01", periods=4))
    >>> returns_from_nav(nav).round(4)
    2024-01-02    0.02
    2024-01-04   -0.05
    dtype: float64
    """
    if not isinstance(nav, pd.Series | pd.DataFrame):
        raise TypeError(f"nav must be a pandas Series or DataFrame, got {type(nav).__name__}")
    v = _float_values(nav, "nav")

    def one(s: pd.Series) -> pd.Series:
        s = s[np.isfinite(s.to_numpy())]
        prev, cur = s.to_numpy()[:-1], s.to_numpy()[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(prev > 0, cur / prev - 1.0, np.nan)
        return pd.Series(out, index=s.index[1:], name=s.name, dtype="float64")

    if isinstance(v, pd.Series):
        return one(v)
    if v.shape[1] == 0:
        return pd.DataFrame(index=v.index[1:], columns=v.columns, dtype="float64")
    if not v.index.is_unique:
        raise ValueError("nav has duplicate index labels")
    cols = [one(v.iloc[:, i]) for i in range(v.shape[1])]
    present = pd.Index([]).append([c.index for c in cols])
    index = v.index[v.index.isin(present)]
    return pd.DataFrame({i: c.reindex(index) for i, c in enumerate(cols)}).set_axis(v.columns, axis=1)


# --------------------------------------------------------------------------------------------
# return and volatility


def _total_return(x: np.ndarray) -> float:
    return math.nan if len(x) == 0 else float(np.prod(1.0 + x) - 1.0)


def total_return(returns: ReturnsLike) -> float | pd.Series:
    """Compounded return ``prod(1 + r) - 1`` (empyrical ``cum_returns_final``). Empty/all-NaN: NaN.

    >>> round(total_return(pd.Series([0.1, -0.1])), 6)
    -0.01
    """
    return _unary(returns, _total_return, "total_return")


def _cagr_kernel(factor: float) -> Callable[[np.ndarray], float]:
    def k(x: np.ndarray) -> float:
        if len(x) == 0:
            return math.nan
        with np.errstate(invalid="ignore"):
            return float(np.power(np.prod(1.0 + x), factor / len(x)) - 1.0)

    return k


def cagr(returns: ReturnsLike, period: Period | str = "daily", annualization: float | None = None) -> float | pd.Series:
    """Compound annual growth rate, ``(prod(1 + r)) ** (factor / n) - 1`` with ``n`` the number
    of (non-NaN) returns (empyrical ``cagr`` = ``annual_return``).

    Years are counted in periods (n / 252 for daily data), not calendar days: that is
    empyrical's definition and it is what a trading-day series means; a calendar-day CAGR would
    differ by weekends and holidays at the edges. Empty/all-NaN: NaN. A wealth that ends
    at 0 gives -1.0; one that ends below 0 (a loss beyond -100 %) has no real root: NaN.

    >>> round(cagr(pd.Series([0.01] * 12), period="monthly"), 6)
    0.126825
    """
    return _unary(returns, _cagr_kernel(annualization_factor(period, annualization)), "cagr")


def annual_volatility(
    returns: ReturnsLike, period: Period | str = "daily", annualization: float | None = None
) -> float | pd.Series:
    """Annualised volatility ``std(r, ddof=1) * sqrt(factor)`` (empyrical ``annual_volatility``).

    Fewer than two returns: NaN. A constant series: exactly 0.0.

    >>> round(annual_volatility(pd.Series([0.01, -0.01, 0.02, 0.0])), 6)
    0.204939
    """
    root = math.sqrt(annualization_factor(period, annualization))
    return _unary(returns, lambda x: _std(x) * root, "annual_volatility")


def sharpe_ratio(
    returns: ReturnsLike,
    risk_free: float = 0.0,
    period: Period | str = "daily",
    annualization: float | None = None,
) -> float | pd.Series:
    """Annualised Sharpe ratio ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(factor)`` with
    ``risk_free`` a constant per-period rate (empyrical ``sharpe_ratio``).

    Arithmetic mean excess return over its sample deviation (the ex-post Sharpe of 1994), not
    a geometric or CAGR-based variant, so that it equals empyrical and pyfolio. Fewer than two
    returns: NaN. A constant excess return: +inf / -inf by its sign, NaN if it is 0 (flat).

    >>> round(sharpe_ratio(pd.Series([0.01, -0.01, 0.02, 0.0])), 4)
    6.1482
    """
    rf = _rate(risk_free, "risk_free")
    root = math.sqrt(annualization_factor(period, annualization))

    def k(x: np.ndarray) -> float:
        if len(x) < 2:
            return math.nan
        adj = x - rf
        return _ratio(adj.mean(), _std(adj)) * root

    return _unary(returns, k, "sharpe_ratio")


def _rate(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{what} must be a number (a constant per-period rate), got {type(value).__name__}")
    return float(value)


def _downside(x: np.ndarray, required: float) -> float:
    return math.nan if len(x) == 0 else math.sqrt(float(np.mean(np.square(np.minimum(x - required, 0.0)))))


def downside_risk(
    returns: ReturnsLike,
    required_return: float = 0.0,
    period: Period | str = "daily",
    annualization: float | None = None,
) -> float | pd.Series:
    """Annualised downside deviation ``sqrt(mean(min(r - mar, 0)**2)) * sqrt(factor)``
    (empyrical ``downside_risk``).

    The mean runs over *all* periods (those above the target count as 0), not over the losing
    ones only: that is Sortino's target semideviation; the deviation of the negative returns
    alone overstates risk when losses are rare. Empty: NaN; no period below target: 0.0.

    >>> round(downside_risk(pd.Series([0.01, -0.02, 0.03, -0.01]), period="yearly"), 6)
    0.01118
    """
    mar = _rate(required_return, "required_return")
    root = math.sqrt(annualization_factor(period, annualization))
    return _unary(returns, lambda x: _downside(x, mar) * root, "downside_risk")


def sortino_ratio(
    returns: ReturnsLike,
    required_return: float = 0.0,
    period: Period | str = "daily",
    annualization: float | None = None,
) -> float | pd.Series:
    """Annualised Sortino ratio ``mean(r - mar) * factor / downside_risk(r, mar)``
    (empyrical ``sortino_ratio``; ``required_return`` = minimum acceptable return per period).

    The denominator is :func:`downside_risk` (target semideviation over all periods). Fewer than
    two returns: NaN. No period below target: +inf if the mean excess is positive, NaN if it
    is 0 (a flat series).

    >>> round(sortino_ratio(pd.Series([0.01, -0.02, 0.03, -0.01]), period="yearly"), 6)
    0.223607
    >>> sortino_ratio(pd.Series([0.01, 0.02]))
    inf
    """
    mar = _rate(required_return, "required_return")
    factor = annualization_factor(period, annualization)

    def k(x: np.ndarray) -> float:
        if len(x) < 2:
            return math.nan
        return _ratio((x - mar).mean() * factor, _downside(x, mar) * math.sqrt(factor))

    return _unary(returns, k, "sortino_ratio")


# --------------------------------------------------------------------------------------------
# drawdowns


def _drawdowns(x: np.ndarray) -> np.ndarray:
    """Drawdown after each return, wealth anchored at 1.0 before the first one."""
    wealth = np.cumprod(np.concatenate(([1.0], 1.0 + x)))
    peak = np.maximum.accumulate(wealth)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (wealth / peak - 1.0)[1:]


def drawdown_series(returns: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
    """Drawdown from the running peak after each return, ``wealth / max(wealth so far) - 1``,
    with wealth anchored at 1.0 before the first return (empyrical ``drawdown_series``).

    NaN returns stay NaN (missing) and do not move the wealth. For a NAV curve's "under water" chart.

    >>> drawdown_series(pd.Series([-0.1, 0.05, 0.2])).round(4).tolist()
    [-0.1, -0.055, 0.0]
    """
    r = _as_pandas(returns, "returns")

    def one(s: pd.Series) -> pd.Series:
        ok = ~np.isnan(s.to_numpy())
        out = np.full(len(s), np.nan)
        out[ok] = _drawdowns(s.to_numpy()[ok])
        return pd.Series(out, index=s.index, name=s.name)

    if isinstance(r, pd.Series):
        return one(r)
    return pd.DataFrame({i: one(r.iloc[:, i]) for i in range(r.shape[1])}, index=r.index).set_axis(r.columns, axis=1)


def _max_drawdown(x: np.ndarray) -> float:
    return math.nan if len(x) == 0 else float(min(_drawdowns(x).min(), 0.0))


def max_drawdown(returns: ReturnsLike) -> float | pd.Series:
    """Maximum drawdown, the most negative :func:`drawdown_series` value (≤ 0; empyrical
    ``max_drawdown``), anchored at the initial NAV: a first-period loss counts.

    Empty/all-NaN: NaN. No losses (or a flat series): 0.0.

    >>> round(max_drawdown(pd.Series([0.1, -0.2, 0.05])), 6)
    -0.2
    >>> max_drawdown(pd.Series([0.01, 0.02]))
    0.0
    """
    return _unary(returns, _max_drawdown, "max_drawdown")


class DrawdownDuration(NamedTuple):
    """Time under water in periods: the longest spell, and the current one (0 at a new high)."""

    longest: float
    current: float


def _durations(x: np.ndarray) -> DrawdownDuration:
    if len(x) == 0:
        return DrawdownDuration(math.nan, math.nan)
    under = _drawdowns(x) < 0
    longest = run = 0
    for u in under:
        run = run + 1 if u else 0
        longest = max(longest, run)
    return DrawdownDuration(float(longest), float(run))


@overload
def drawdown_duration(returns: pd.Series) -> DrawdownDuration: ...
@overload
def drawdown_duration(returns: pd.DataFrame) -> pd.DataFrame: ...
@overload
def drawdown_duration(returns: ReturnsLike) -> DrawdownDuration | pd.DataFrame: ...
def drawdown_duration(returns: ReturnsLike) -> DrawdownDuration | pd.DataFrame:
    """Longest and current time under water, in periods (returns), not calendar days.

    A period is under water when wealth (anchored at 1.0 before the first return) is strictly
    below its running peak; a spell ends on the period that regains the peak, so that period
    is not counted. ``current`` is the length of the spell still open at the last period
    (0.0 if the series ends at a high). NaN returns are dropped, so a gap is not a period.
    Empty/all-NaN: NaN for both; no losses or flat: 0.0 for both. A Series gives a
    :class:`DrawdownDuration` (floats); a DataFrame gives a frame with columns
    ``longest``, ``current``, one row per column of ``returns``.

    >>> drawdown_duration(pd.Series([0.1, -0.1, 0.05, 0.1, -0.01]))
    DrawdownDuration(longest=2.0, current=1.0)
    """
    r = _as_pandas(returns, "returns")
    if isinstance(r, pd.Series):
        return _durations(_clean(r.to_numpy()))
    rows = [_durations(_clean(r.iloc[:, i].to_numpy())) for i in range(r.shape[1])]
    return pd.DataFrame(rows, index=r.columns, columns=list(DrawdownDuration._fields), dtype="float64")


def calmar_ratio(
    returns: ReturnsLike, period: Period | str = "daily", annualization: float | None = None
) -> float | pd.Series:
    """Calmar ratio ``cagr / |max_drawdown|`` over the whole series (empyrical ``calmar_ratio``).

    The original Calmar uses the last 36 months; like empyrical this uses the series given, so
    pass the window you want. No drawdown (no losses, flat) or an infinite ratio: NaN, as in
    empyrical: "undefined", not "infinitely good". Empty: NaN.

    >>> round(calmar_ratio(pd.Series([0.1, -0.2, 0.3]), period="yearly"), 6)
    0.229322
    """
    factor = annualization_factor(period, annualization)
    growth = _cagr_kernel(factor)

    def k(x: np.ndarray) -> float:
        md = _max_drawdown(x)
        if not md < 0:
            return math.nan
        v = growth(x) / abs(md)
        return math.nan if math.isinf(v) else v

    return _unary(returns, k, "calmar_ratio")


# --------------------------------------------------------------------------------------------
# vs a benchmark


def _beta(r: np.ndarray, b: np.ndarray) -> float:
    if len(r) < 2:
        return math.nan
    res = b - b.mean()
    var = float(np.mean(res * res))
    if var < 1.0e-30:  # empyrical: a (numerically) constant benchmark has no beta
        return math.nan
    return float(np.mean(res * r)) / var


def beta(returns: ReturnsLike, benchmark: pd.Series | np.ndarray) -> float | pd.Series:
    """CAPM beta ``cov(r, b) / var(b)`` on the dates where both have a return (empyrical
    ``beta``; a constant risk-free rate does not change it).

    pandas inputs are aligned on their index (dates); arrays pair by position (same length
    required). Fewer than two common dates or a flat benchmark: NaN.

    >>> b = pd.Series([0.01, -0.02, 0.015, 0.0])
    >>> round(beta(2 * b + 0.001, b), 6)
    2.0
    """
    return _binary(returns, benchmark, _beta, "beta")


def alpha(
    returns: ReturnsLike,
    benchmark: pd.Series | np.ndarray,
    risk_free: float = 0.0,
    period: Period | str = "daily",
    annualization: float | None = None,
) -> float | pd.Series:
    """Annualised Jensen's alpha, compounded: ``(1 + mean((r - rf) - beta * (b - rf))) ** factor - 1``
    (empyrical ``alpha`` / ``alpha_beta``), on the dates where both have a return.

    Compounded (not ``mean * factor``) because that is empyrical's and pyfolio's convention.
    Fewer than two common dates or a flat benchmark (no beta): NaN.

    >>> b = pd.Series([0.01, -0.02, 0.015, 0.0])
    >>> round(alpha(2 * b + 0.001, b, period="yearly"), 6)
    0.001
    """
    rf = _rate(risk_free, "risk_free")
    factor = annualization_factor(period, annualization)

    def k(r: np.ndarray, b: np.ndarray) -> float:
        bt = _beta(r, b)
        if math.isnan(bt):
            return math.nan
        with np.errstate(invalid="ignore", over="ignore"):
            return float(np.power(1.0 + np.mean((r - rf) - bt * (b - rf)), factor) - 1.0)

    return _binary(returns, benchmark, k, "alpha")


def information_ratio(
    returns: ReturnsLike,
    benchmark: pd.Series | np.ndarray,
    period: Period | str = "daily",
    annualization: float | None = None,
) -> float | pd.Series:
    """Annualised information ratio ``mean(r - b) / std(r - b, ddof=1) * sqrt(factor)``: mean
    active return over tracking error, both annualised (Grinold–Kahn).

    Two definitions are common: empyrical's ``excess_sharpe`` is the same ratio *per period*
    (not annualised); this one is ``excess_sharpe * sqrt(factor)``. The annualised form is
    chosen because it sits on the same scale as :func:`sharpe_ratio` next to it in a
    :func:`risk_table`, and does not change with the data frequency. Fewer than two common
    dates: NaN. Zero tracking error: ±inf by the sign of the mean active return, NaN if the
    portfolio is the benchmark.

    >>> r, b = pd.Series([0.02, 0.0, 0.01, 0.03]), pd.Series([0.01, 0.0, 0.0, 0.01])
    >>> round(information_ratio(r, b, period="yearly"), 6)
    1.224745
    """
    root = math.sqrt(annualization_factor(period, annualization))

    def k(r: np.ndarray, b: np.ndarray) -> float:
        if len(r) < 2:
            return math.nan
        active = r - b
        return _ratio(active.mean(), _std(active)) * root

    return _binary(returns, benchmark, k, "information_ratio")


# --------------------------------------------------------------------------------------------
# tail risk


def _cutoff(cutoff: float) -> float:
    c = _rate(cutoff, "cutoff")
    if not 0.0 < c < 1.0:
        raise ValueError(f"cutoff must be a probability in (0, 1), got {cutoff!r}")
    return c


def value_at_risk(returns: ReturnsLike, cutoff: float = 0.05) -> float | pd.Series:
    """Historical value at risk: the ``cutoff`` quantile of the returns, linear interpolation
    (empyrical ``value_at_risk``: ``np.percentile(r, 100 * cutoff)``).

    Reported as a *return* (a loss is negative: -0.03 = "lose 3 % or more on 5 % of days"),
    not as a positive loss amount, as in empyrical. NaN returns are dropped. Empty: NaN.

    >>> value_at_risk(pd.Series([-0.05, -0.01, 0.0, 0.01, 0.02]), cutoff=0.25)
    -0.01
    """
    c = _cutoff(cutoff)
    return _unary(returns, lambda x: math.nan if len(x) == 0 else float(np.percentile(x, 100 * c)), "value_at_risk")


def conditional_value_at_risk(returns: ReturnsLike, cutoff: float = 0.05) -> float | pd.Series:
    """Historical expected shortfall: the mean of the ``k = int((n - 1) * cutoff) + 1`` lowest
    returns (empyrical ``conditional_value_at_risk``), a return (negative = loss), ≤ VaR.

    NaN returns are dropped before ``n`` is counted. Empty/all-NaN: NaN.

    >>> round(conditional_value_at_risk(pd.Series([-0.05, -0.01, 0.0, 0.01, 0.02]), cutoff=0.25), 6)
    -0.03
    """
    c = _cutoff(cutoff)

    def k(x: np.ndarray) -> float:
        if len(x) == 0:
            return math.nan
        i = int((len(x) - 1) * c)
        return float(np.mean(np.partition(x, i)[: i + 1]))

    return _unary(returns, k, "conditional_value_at_risk")


# --------------------------------------------------------------------------------------------
# trades


_SIDES = {"buy": 1, "b": 1, "bid": 1, "long": 1, "sell": -1, "s": -1, "ask": -1, "short": -1}


def _side(value: object, row: object) -> int:
    if isinstance(value, str):
        s = _SIDES.get(value.strip().lower())
    elif isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        s = int(value) if value in (1, -1) else None
    else:
        s = None
    if s is None:
        raise ValueError(f"fill {row!r}: side must be buy/sell or +1/-1, got {value!r}")
    return s


@dataclass(slots=True)
class _OpenLot:
    """What is left of an opening fill, waiting to be matched FIFO."""

    direction: int
    quantity: float
    price: float
    fee_per_unit: float
    ts: object


def round_trips(fills: pd.DataFrame) -> pd.DataFrame:
    """Pair fills FIFO into closed round trips, one row per (opening lot, closing fill) match.

    ``fills`` columns: ``side`` (``"buy"``/``"sell"`` as in every fills table, ``vt.schema.FILLS``,
    or ``+1``/``-1``), ``price``, ``quantity`` (> 0); optional ``fee`` (allocated to the
    matched quantity pro rata), ``ts`` (fills are ordered by it, stably; else by row), and
    ``symbol`` / ``account`` (each pair is FIFO on its own). A sell with no long inventory
    opens a short; a fill that flips the position closes the old lots then opens the rest.
    Positions still open at the end are not round trips. P&L is
    ``(exit - entry) * quantity * direction - fees``, a multiplier of 1 (cash equities).

    Result columns: [``account``, ``symbol``,] ``direction`` (+1 long / -1 short), ``quantity``,
    ``entry_price``, ``exit_price``, [``entry_ts``, ``exit_ts``,] ``fees``, ``pnl``.

    >>> fills = pd.DataFrame({"side": ["buy", "buy", "sell"], "price": [10.0, 12.0, 13.0],
    ...                       "quantity": [1.0, 1.0, 1.5]})
    >>> round_trips(fills)[["quantity", "entry_price", "exit_price", "pnl"]]
       quantity  entry_price  exit_price  pnl
    0       1.0         10.0        13.0  3.0
    1       0.5         12.0        13.0  0.5
    """
    if not isinstance(fills, pd.DataFrame):
        raise TypeError(f"fills must be a pandas DataFrame, got {type(fills).__name__}")
    missing = {"side", "price", "quantity"} - set(fills.columns)
    if missing:
        raise ValueError(f"fills lack column(s) {sorted(missing)}; need side, price, quantity")
    f = fills.copy()
    f["price"] = _float_values(f["price"], "fills.price")
    f["quantity"] = _float_values(f["quantity"], "fills.quantity")
    f["fee"] = _float_values(f["fee"], "fills.fee").fillna(0.0) if "fee" in f.columns else 0.0
    has_ts = "ts" in f.columns
    if has_ts:
        f = f.sort_values("ts", kind="stable")
    keys = [k for k in ("account", "symbol") if k in f.columns]
    out_cols = [*keys, "direction", "quantity", "entry_price", "exit_price"]
    out_cols += ["entry_ts", "exit_ts"] if has_ts else []
    out_cols += ["fees", "pnl"]

    rows: list[dict[str, object]] = []
    books: dict[tuple[object, ...], deque[_OpenLot]] = {}
    # Per fill: its label, side, quantity, price, fee (floats by now), time and FIFO key.
    key_of: list[tuple[object, ...]] = list(f[keys].itertuples(index=False, name=None)) if keys else [()] * len(f)
    ts_of: Iterable[object] = f["ts"] if has_ts else [None] * len(f)
    records: Iterable[tuple[object, object, float, float, float, object, tuple[object, ...]]] = zip(
        f.index, f["side"], f["quantity"], f["price"], f["fee"], ts_of, key_of, strict=True)
    for label, side_value, quantity, price_value, fee_value, ts, key in records:
        side = _side(side_value, label)
        qty, price, fee = float(quantity), float(price_value), float(fee_value)
        if not (math.isfinite(qty) and qty > 0) or not math.isfinite(price) or not math.isfinite(fee):
            raise ValueError(f"fill {label!r}: quantity must be > 0 and price/fee finite, got {qty}, {price}, {fee}")
        book = books.setdefault(key, deque())
        fee_pu, left, eps = fee / qty, qty, qty * 1e-12
        while left > eps and book and book[0].direction == -side:
            lot = book[0]
            m = min(left, lot.quantity)
            fees = (lot.fee_per_unit + fee_pu) * m
            row: dict[str, object] = dict(zip(keys, key, strict=True))
            row.update(direction=lot.direction, quantity=m, entry_price=lot.price, exit_price=price)
            if has_ts:
                row.update(entry_ts=lot.ts, exit_ts=ts)
            row.update(fees=fees, pnl=(price - lot.price) * m * lot.direction - fees)
            rows.append(row)
            lot.quantity -= m
            left -= m
            if lot.quantity <= eps:
                book.popleft()
        if left > eps:
            book.append(_OpenLot(side, left, price, fee_pu, ts))
    out = pd.DataFrame(rows, columns=out_cols)
    for c in ("quantity", "entry_price", "exit_price", "fees", "pnl"):
        out[c] = out[c].astype("float64")
    out["direction"] = out["direction"].astype("int64")
    return out


def _pnl(trades: pd.DataFrame) -> np.ndarray:
    if not isinstance(trades, pd.DataFrame):
        raise TypeError(f"trades must be a pandas DataFrame, got {type(trades).__name__}")
    if "pnl" in trades.columns:
        pnl = _float_values(trades["pnl"], "trades.pnl")
    elif {"side", "price", "quantity"} <= set(trades.columns):
        pnl = round_trips(trades)["pnl"]
    else:
        raise ValueError("trades need a 'pnl' column (round trips) or side, price, quantity columns (fills)")
    return _clean(pnl.to_numpy())


def win_rate(trades: pd.DataFrame) -> float:
    """Share of closed round trips with ``pnl > 0``.

    ``trades`` is a round-trip frame with a ``pnl`` column, or a fills frame (``side``,
    ``price``, ``quantity``, …) that :func:`round_trips` pairs FIFO first. A break-even trade
    (pnl == 0) counts as a trade but not a win. NaN pnl (unknown) is dropped. No trades: NaN.

    >>> win_rate(pd.DataFrame({"pnl": [5.0, -2.0, 0.0, 1.0]}))
    0.5
    """
    pnl = _pnl(trades)
    return math.nan if len(pnl) == 0 else float(np.mean(pnl > 0))


def profit_factor(trades: pd.DataFrame) -> float:
    """Gross profit over gross loss, ``sum(pnl > 0) / |sum(pnl < 0)|``, over closed round trips
    (input as in :func:`win_rate`).

    No losing trade: +inf if there is a profit, NaN if there is no profit either (no trades,
    or only break-even ones).

    >>> profit_factor(pd.DataFrame({"pnl": [5.0, -2.0, 1.0, -1.0]}))
    2.0
    >>> profit_factor(pd.DataFrame({"pnl": [5.0]}))
    inf
    """
    pnl = _pnl(trades)
    return _ratio(pnl[pnl > 0].sum(), abs(pnl[pnl < 0].sum()))


def turnover(traded: pd.Series | pd.DataFrame, nav: pd.Series) -> float:
    """Average two-sided turnover per period: ``sum(|traded notional|) / mean(NAV) / n``.

    ``traded`` is a Series of traded notional (one value per trade or per period; its sign is
    ignored) or a fills frame with a ``notional`` column or ``price`` and ``quantity``
    (notional = |price × quantity|). ``nav`` is the account's NAV over the same window; ``n``
    is its number of (non-NaN) observations, the periods in which trades can happen. Buys and
    sells both count (two-sided, not the fund-report ``min(buys, sells)``), so a round trip of
    the whole book in one period is 2.0. Multiply by 252 for an annual figure on daily data.
    Trades are not filtered by date: pass those of the NAV's window. No NAV observations or a
    mean NAV ≤ 0: NaN. No trades: 0.0.

    >>> nav = pd.Series([100.0, 100.0, 100.0, 100.0])
    >>> turnover(pd.Series([100.0, -50.0]), nav)
    0.375
    """
    if isinstance(traded, pd.DataFrame):
        if "notional" in traded.columns:
            notional = _float_values(traded["notional"], "traded.notional").abs()
        elif {"price", "quantity"} <= set(traded.columns):
            p = _float_values(traded["price"], "traded.price")
            q = _float_values(traded["quantity"], "traded.quantity")
            notional = (p * q).abs()
        else:
            raise ValueError("traded frame needs a 'notional' column or 'price' and 'quantity' columns")
    elif isinstance(traded, pd.Series):
        notional = _float_values(traded, "traded").abs()
    else:
        raise TypeError(f"traded must be a pandas Series or DataFrame, got {type(traded).__name__}")
    if not isinstance(nav, pd.Series):
        raise TypeError(f"nav must be a pandas Series, got {type(nav).__name__}")
    v = _clean(_float_values(nav, "nav").to_numpy())
    if len(v) == 0 or not v.mean() > 0:
        return math.nan
    return float(np.nansum(notional.to_numpy())) / float(v.mean()) / len(v)


# --------------------------------------------------------------------------------------------
# the table

RISK_TABLE_COLUMNS = (
    "periods", "total_return", "cagr", "annual_volatility", "sharpe_ratio", "sortino_ratio",
    "max_drawdown", "max_drawdown_duration", "current_drawdown_duration", "calmar_ratio",
    "value_at_risk", "conditional_value_at_risk",
)  # fmt: skip
BENCHMARK_COLUMNS = ("beta", "alpha", "information_ratio")


class _Annualize(TypedDict):
    period: Period | str
    annualization: float | None


def risk_table(
    navs: pd.DataFrame | pd.Series,
    benchmark: pd.Series | str | None = None,
    *,
    risk_free: float = 0.0,
    period: Period | str = "daily",
    annualization: float | None = None,
    cutoff: float = 0.05,
) -> pd.DataFrame:
    """One row per account (column of ``navs``), the metrics of this module as columns.

    ``navs`` holds NAV levels (not returns), one column per account, indexed by date; each
    column's returns come from :func:`returns_from_nav` (so accounts that start later or miss
    marks are handled per column). ``benchmark`` is a NAV/price level series (e.g. SPY closes)
    or the name of a column of ``navs``; with it the table adds ``beta``, ``alpha`` and
    ``information_ratio``. Columns: ``periods`` (number of returns), ``total_return``,
    ``cagr``, ``annual_volatility``, ``sharpe_ratio``, ``sortino_ratio`` (with ``risk_free`` as
    the required return), ``max_drawdown``, ``max_drawdown_duration``,
    ``current_drawdown_duration``, ``calmar_ratio``, ``value_at_risk``,
    ``conditional_value_at_risk`` [, ``beta``, ``alpha``, ``information_ratio``].

    >>> idx = pd.date_range("2024-01-01", periods=4)
    >>> navs = pd.DataFrame({"ann": [100.0, 101, 99, 103], "bob": [50.0, 50, 51, 52]}, index=idx)
    >>> t = risk_table(navs)
    >>> t[["periods", "total_return", "max_drawdown"]].round(4)
         periods  total_return  max_drawdown
    ann      3.0          0.03       -0.0198
    bob      3.0          0.04        0.0000
    """
    if isinstance(navs, pd.Series):
        navs = navs.to_frame(navs.name if navs.name is not None else "nav")
    if not isinstance(navs, pd.DataFrame):
        raise TypeError(f"navs must be a pandas DataFrame (one NAV column per account), got {type(navs).__name__}")
    rets = returns_from_nav(navs)
    bench_rets: pd.Series | None = None
    if isinstance(benchmark, str):
        if benchmark not in navs.columns:
            raise ValueError(f"benchmark {benchmark!r} is not a column of navs")
        bench_rets = rets[benchmark]
    elif benchmark is not None:
        if not isinstance(benchmark, pd.Series):
            raise TypeError(f"benchmark must be a NAV/price Series or a column name, got {type(benchmark).__name__}")
        bench_rets = returns_from_nav(benchmark)
    kw: _Annualize = {"period": period, "annualization": annualization}
    dd = drawdown_duration(rets)
    table = pd.DataFrame(
        {
            "periods": rets.notna().sum().astype("float64"),
            "total_return": total_return(rets),
            "cagr": cagr(rets, **kw),
            "annual_volatility": annual_volatility(rets, **kw),
            "sharpe_ratio": sharpe_ratio(rets, risk_free, **kw),
            "sortino_ratio": sortino_ratio(rets, risk_free, **kw),
            "max_drawdown": max_drawdown(rets),
            "max_drawdown_duration": dd["longest"],
            "current_drawdown_duration": dd["current"],
            "calmar_ratio": calmar_ratio(rets, **kw),
            "value_at_risk": value_at_risk(rets, cutoff),
            "conditional_value_at_risk": conditional_value_at_risk(rets, cutoff),
        },
        index=navs.columns,
        columns=list(RISK_TABLE_COLUMNS),
        dtype="float64",
    )
    if bench_rets is not None:
        table["beta"] = beta(rets, bench_rets)
        table["alpha"] = alpha(rets, bench_rets, risk_free, **kw)
        table["information_ratio"] = information_ratio(rets, bench_rets, **kw)
    return table
