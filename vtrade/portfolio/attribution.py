"""Brinson–Fachler sector attribution: why a portfolio beat (or lagged) its benchmark.

For sector ``i`` with portfolio / benchmark weights ``wp_i`` / ``wb_i`` and returns ``rp_i`` /
``rb_i`` over a period, and the benchmark's total return ``Rb = Σ wb_i · rb_i``:

- allocation  ``(wp_i - wb_i) · (rb_i - Rb)``: over-weighting a sector that beat the benchmark;
- selection   ``wb_i · (rp_i - rb_i)``: picking better stocks inside the sector;
- interaction ``(wp_i - wb_i) · (rp_i - rb_i)``: over-weighting the sectors where you picked well.

Their sum over sectors is the active return ``Rp - Rb`` exactly. Brinson–Fachler (1985) rather
than Brinson–Hood–Beebower (1986): BHB's allocation ``(wp_i - wb_i) · rb_i`` credits
over-weighting *any* sector with a positive return, even one that lagged the benchmark;
measuring against ``rb_i - Rb`` rewards only over-weighting sectors that beat it. Interaction
is reported separately, not folded into selection, so the three effects stay visible.

Over several periods the effects are *linked* (Cariño 1999) by default, so that they add up
to the compounded active return; plain sums (``method="sum"``) add up to the sum of the
periodic active returns instead, which is not the active return over the whole span.

>>> import pandas as pd
>>> t = brinson_fachler(pd.Series({"Tech": 0.6, "Energy": 0.4}), pd.Series({"Tech": 0.5, "Energy": 0.5}),
...                     pd.Series({"Tech": 0.10, "Energy": 0.02}), pd.Series({"Tech": 0.08, "Energy": 0.03}))
>>> t.loc["Total", ["allocation", "selection", "interaction", "total_effect"]].round(4).tolist()
[0.005, 0.005, 0.003, 0.013]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["EFFECTS", "brinson_fachler", "brinson_fachler_linked"]

EFFECTS = ("allocation", "selection", "interaction", "total_effect")
SINGLE_COLUMNS = ("portfolio_weight", "benchmark_weight", "portfolio_return", "benchmark_return", *EFFECTS)
TOTAL = "Total"
_WEIGHT_TOL = 1e-6

SectorValues = pd.Series | Mapping[str, float]


def _series(x: object, what: str) -> pd.Series:
    if isinstance(x, Mapping):
        x = pd.Series(dict(x), dtype="float64")
    if not isinstance(x, pd.Series):
        raise TypeError(f"{what} must be a pandas Series or a mapping sector -> value, got {type(x).__name__}")
    if not x.index.is_unique:
        raise ValueError(f"{what} lists a sector twice: {sorted(map(str, x.index[x.index.duplicated()]))}")
    if pd.api.types.is_bool_dtype(x.dtype) or not (
        pd.api.types.is_numeric_dtype(x.dtype) or pd.api.types.is_object_dtype(x.dtype)
    ):
        raise TypeError(f"{what} must hold numbers, got dtype {x.dtype}")
    try:
        return x.astype("float64")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must hold numbers: {exc}") from None


def brinson_fachler(
    portfolio_weights: SectorValues,
    benchmark_weights: SectorValues,
    portfolio_returns: SectorValues,
    benchmark_returns: SectorValues,
) -> pd.DataFrame:
    """Single-period Brinson–Fachler attribution, one row per sector plus a ``"Total"`` row.

    Inputs are Series (or mappings) indexed by sector. A sector missing from a weight series
    has weight 0. Each side's weights must sum to 1 (within 1e-6; put cash in a ``"Cash"``
    sector), else ValueError; short (negative) weights are fine. A sector return may be
    missing/NaN only where that side's weight is 0 (else ValueError):

    - not held by the portfolio: its portfolio return is taken as the benchmark's, so its
      selection and interaction are 0 and what remains is allocation ``-wb_i · (rb_i - Rb)``;
    - not in the benchmark: its benchmark return is taken as the portfolio's, so its whole
      contribution ``wp_i · (rp_i - Rb)`` is allocation: holding it at all was the bet, and
      there is no benchmark sector to select against;
    - in neither: all effects 0.

    Columns: ``portfolio_weight``, ``benchmark_weight``, ``portfolio_return``,
    ``benchmark_return`` (as filled above), ``allocation``, ``selection``, ``interaction``,
    ``total_effect`` (their sum). The ``Total`` row holds the weight sums, the total returns
    ``Rp`` and ``Rb``, and the summed effects, whose ``total_effect`` is ``Rp - Rb``. No
    sectors at all: only a ``Total`` row of NaN.

    >>> t = brinson_fachler({"A": 0.7, "B": 0.3}, {"A": 0.5, "B": 0.5}, {"A": 0.05, "B": 0.01}, {"A": 0.04, "B": 0.0})
    >>> t[["allocation", "selection", "interaction", "total_effect"]].round(4)
           allocation  selection  interaction  total_effect
    A           0.004      0.005        0.002         0.011
    B           0.004      0.005       -0.002         0.007
    Total       0.008      0.010        0.000         0.018
    """
    wp = _series(portfolio_weights, "portfolio_weights")
    wb = _series(benchmark_weights, "benchmark_weights")
    rp = _series(portfolio_returns, "portfolio_returns")
    rb = _series(benchmark_returns, "benchmark_returns")
    sectors = wp.index.union(wb.index, sort=False).union(rp.index, sort=False).union(rb.index, sort=False)
    if len(sectors) == 0:
        return pd.DataFrame(np.nan, index=pd.Index([TOTAL]), columns=list(SINGLE_COLUMNS))
    for w, who in ((wp, "portfolio_weights"), (wb, "benchmark_weights")):
        bad = w.index[~np.isfinite(w.to_numpy())]
        if len(bad):
            raise ValueError(f"{who}: weight of {sorted(map(str, bad))} is not a finite number")
    wp, wb = wp.reindex(sectors, fill_value=0.0), wb.reindex(sectors, fill_value=0.0)
    rp, rb = rp.reindex(sectors), rb.reindex(sectors)
    for w, who, name in ((wp, "portfolio_weights", "portfolio"), (wb, "benchmark_weights", "benchmark")):
        total = float(w.sum())
        if abs(total - 1.0) > _WEIGHT_TOL:
            raise ValueError(
                f"{who} sum to {total:.10g}, not 1: the {name} must be fully described "
                "(add a 'Cash' sector for uninvested money)"
            )
    for r, w, who in ((rp, wp, "portfolio_returns"), (rb, wb, "benchmark_returns")):
        bad = r.index[(~np.isfinite(r.to_numpy())) & (w.to_numpy() != 0)]
        if len(bad):
            raise ValueError(f"{who}: no finite return for held sector(s) {sorted(map(str, bad))}")

    port_total = float((wp * rp.fillna(0.0)).sum())
    bench_total = float((wb * rb.fillna(0.0)).sum())
    rp = rp.where(wp != 0, rb)  # not held: selection / interaction 0
    rb = rb.where(wb != 0, rp)  # not in the benchmark: all allocation
    dw = wp - wb
    frame = pd.DataFrame(
        {
            "portfolio_weight": wp,
            "benchmark_weight": wb,
            "portfolio_return": rp,
            "benchmark_return": rb,
            "allocation": (dw * (rb - bench_total)).fillna(0.0),
            "selection": (wb * (rp - rb)).fillna(0.0),
            "interaction": (dw * (rp - rb)).fillna(0.0),
        },
        index=sectors,
    )
    frame["total_effect"] = frame["allocation"] + frame["selection"] + frame["interaction"]
    totals = frame.sum()
    totals["portfolio_return"], totals["benchmark_return"] = port_total, bench_total
    frame.loc[TOTAL] = totals
    return frame


def _carino(rp: float, rb: float) -> float:
    """Cariño's log-linking coefficient ``ln((1 + rp) / (1 + rb)) / (rp - rb)`` (→ 1 / (1 + r) as rp → rb)."""
    if rp <= -1.0 or rb <= -1.0:
        return math.nan
    if abs(rp - rb) < 1e-15:
        return 1.0 / (1.0 + rp)
    return (math.log1p(rp) - math.log1p(rb)) / (rp - rb)


def _frame(x: object, what: str) -> pd.DataFrame:
    if not isinstance(x, pd.DataFrame):
        raise TypeError(
            f"{what} must be a DataFrame (one row per period, one column per sector), got {type(x).__name__}"
        )
    if not x.index.is_unique:
        raise ValueError(f"{what} lists a period twice")
    return x


def brinson_fachler_linked(
    portfolio_weights: pd.DataFrame,
    benchmark_weights: pd.DataFrame,
    portfolio_returns: pd.DataFrame,
    benchmark_returns: pd.DataFrame,
    *,
    method: Literal["carino", "sum"] = "carino",
) -> pd.DataFrame:
    """Multi-period Brinson–Fachler: per-period effects (:func:`brinson_fachler`, weights at
    the start of each period) combined over the periods.

    Inputs: DataFrames with one row per period (the same index in all four) and one column
    per sector. ``method``:

    - ``"carino"`` (default): each period's effects are scaled by Cariño's coefficient
      ``k_t / K`` with ``k_t = ln((1 + Rp_t) / (1 + Rb_t)) / (Rp_t - Rb_t)`` and ``K`` the same over
      the whole span, so the effects add up *exactly* to the compounded active return
      ``Π(1 + Rp_t) - Π(1 + Rb_t)``. Periodic effects do not compound, and a plain sum leaves
      a residual that grows with the active return and the number of periods; Cariño spreads
      it in proportion to each period's log-active return. (A total return ≤ -100 % has no
      logarithm: NaN effects.)
    - ``"sum"``: plain sums; the ``Total`` row's ``total_effect`` is then ``Σ (Rp_t - Rb_t)``.

    Result: one row per sector plus ``"Total"``, columns ``allocation``, ``selection``,
    ``interaction``, ``total_effect``, ``portfolio_return`` and ``benchmark_return`` (the
    compounded totals in the ``Total`` row, NaN in the sector rows). No periods: every effect 0
    and the returns 0.

    >>> idx = ["Q1", "Q2"]
    >>> w = pd.DataFrame({"A": [0.6, 0.6], "B": [0.4, 0.4]}, index=idx)
    >>> b = pd.DataFrame({"A": [0.5, 0.5], "B": [0.5, 0.5]}, index=idx)
    >>> rp = pd.DataFrame({"A": [0.10, -0.05], "B": [0.02, 0.01]}, index=idx)
    >>> rb = pd.DataFrame({"A": [0.08, -0.04], "B": [0.03, 0.00]}, index=idx)
    >>> t = brinson_fachler_linked(w, b, rp, rb)
    >>> t.loc["Total"].round(5).tolist()  # effects, then the compounded Rp and Rb
    [0.00064, 0.00488, 0.00081, 0.00633, 0.04023, 0.0339]
    """
    if method not in ("carino", "sum"):
        raise ValueError(f"method must be 'carino' or 'sum', got {method!r}")
    frames = [
        _frame(portfolio_weights, "portfolio_weights"),
        _frame(benchmark_weights, "benchmark_weights"),
        _frame(portfolio_returns, "portfolio_returns"),
        _frame(benchmark_returns, "benchmark_returns"),
    ]
    periods = frames[0].index
    for f, who in zip(frames[1:], ("benchmark_weights", "portfolio_returns", "benchmark_returns"), strict=True):
        if not f.index.equals(periods):
            raise ValueError(f"{who} does not have the same periods (index) as portfolio_weights")
    sectors = frames[0].columns
    for f in frames[1:]:
        sectors = sectors.union(f.columns, sort=False)

    per_period: list[pd.DataFrame] = []
    rp_t: list[float] = []
    rb_t: list[float] = []
    for p in periods:
        row = [f.loc[p].dropna() if i < 2 else f.loc[p] for i, f in enumerate(frames)]
        try:
            t = brinson_fachler(*row)
        except ValueError as exc:
            raise ValueError(f"period {p!r}: {exc}") from None
        per_period.append(t.drop(index=TOTAL).reindex(sectors)[list(EFFECTS)].fillna(0.0))
        rp_t.append(float(t["portfolio_return"].loc[TOTAL]))
        rb_t.append(float(t["benchmark_return"].loc[TOTAL]))

    port_total = float(np.prod(1.0 + np.asarray(rp_t))) - 1.0
    bench_total = float(np.prod(1.0 + np.asarray(rb_t))) - 1.0
    if method == "carino":
        big_k = _carino(port_total, bench_total)
        scale = [_carino(a, b) / big_k for a, b in zip(rp_t, rb_t, strict=True)]
    else:
        scale = [1.0] * len(per_period)
    out = pd.DataFrame(0.0, index=sectors, columns=list(EFFECTS))
    for t, s in zip(per_period, scale, strict=True):
        out = out + t * s
    out["portfolio_return"] = np.nan
    out["benchmark_return"] = np.nan
    totals = out[list(EFFECTS)].sum()
    out.loc[TOTAL] = [*totals.tolist(), port_total, bench_total]
    return out
