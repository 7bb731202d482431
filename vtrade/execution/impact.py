"""Bar fill models: for how many lots, and at what price, an order fills against one bar.

The first rung of the realism ladder (DESIGN.md §5) and the "remainder beyond displayed size"
at the second. Modelled on zipline-reloaded's ``zipline/finance/slippage.py``: one small class
per model behind one interface, the formula in each docstring.

Conventions every model shares (:meth:`BarFillModel.fill`):

- The reference price is the bar's close (zipline's equity models do the same): a bar-driven
  simulator learns of a bar when it ends, so the close is the last price an order could meet.
- A bar with no volume fills nothing: nothing traded, so nobody was there to trade with.
- ``used_lots`` is what earlier fills already took from this bar (zipline's ``volume_for_bar``);
  models with a volume cap count it against the cap, and VolumeShareSlippage / SquareRootImpact
  price the cumulative participation, so splitting an order does not make it cheaper.
- Impact is computed exactly where the model allows it (``Fraction``; ``float`` where a square
  root is involved) and then rounded to the tick grid *against* the trader: buys round up,
  sells round down. The unrounded impact is kept on the fill for the receipt.
- A limit price caps the fill: if the rounded fill price is through the limit there is no fill
  at all (zipline's ``fill_price_worse_than_limit_price``). Comparing the *rounded* price is
  stricter than zipline only when the exact price lies within one tick of the limit, where
  zipline would fill off the grid, which an exchange cannot do.

>>> from vtrade.core.instruments import us_equity
>>> spy = us_equity("SPY")
>>> bar = Bar(ts=0, recv_ts=0, symbol="SPY", seq=0, interval_ns=60 * 10**9,
...           open=10000, high=10010, low=9990, close=10000, volume=1_000_000)
>>> fill = VolumeShareSlippage().fill(Side.BUY, 10_000, None, bar, spy)
>>> fill.price_ticks, fill.quantity_lots, fill.impact_ticks_exact   # share 0.01: 0.01² · 0.1 · 10000 ticks
(10001, 10000, Fraction(1, 10))
>>> fill.model
'VolumeShareSlippage(volume_limit=0.025, price_impact=0.1)'
"""

from __future__ import annotations

import itertools
import math
import statistics
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from vtrade.core.events import Bar, Side
from vtrade.core.instruments import Instrument

Ratio = Fraction | Decimal | int | float | str
"""A model parameter. Floats are read by their shortest repr, so ``0.025`` means exactly 1/40."""


@dataclass(frozen=True, slots=True)
class BarFill:
    """One fill against one bar: ``quantity_lots`` at ``price_ticks``.

    ``impact_ticks_exact`` is the model's unrounded price impact in ticks (always >= 0, in the
    trader's adverse direction); ``price_ticks`` is close ± impact rounded against the trader.
    ``model`` names the model and its parameters, for the fill's receipt.
    """

    price_ticks: int
    quantity_lots: int
    impact_ticks_exact: Fraction | float
    model: str


def round_fill_price(side: Side, exact_ticks: Fraction | float) -> int:
    """``exact_ticks`` on the tick grid, rounded against the trader: buys up, sells down.

    >>> round_fill_price(Side.BUY, Fraction(100001, 10)), round_fill_price(Side.SELL, Fraction(99999, 10))
    (10001, 9999)
    >>> round_fill_price(Side.BUY, 10000)
    10000
    """
    return math.ceil(exact_ticks) if _side(side) is Side.BUY else math.floor(exact_ticks)


class BarFillModel(ABC):
    """How an order fills against a bar. Subclasses say how many lots a bar can give
    (:meth:`capacity_lots`) and how far the price moves (:meth:`impact_ticks`); :meth:`fill`
    applies the shared conventions described in the module docstring.
    """

    @property
    def name(self) -> str:
        """The model and its parameters, as written on fill receipts."""
        return repr(self)

    def fill(
        self,
        side: Side,
        remaining_lots: int,
        limit_ticks: int | None,
        bar: Bar,
        instrument: Instrument,
        used_lots: int = 0,
    ) -> BarFill | None:
        """The fill of an order with ``remaining_lots`` left against ``bar``, or None.

        ``used_lots`` is the bar volume that earlier fills on this instrument already took.
        None when the bar has no volume, the volume cap is used up, or the impacted price is
        through ``limit_ticks`` (or below one tick for a sell).

        >>> from vtrade.core.instruments import us_equity
        >>> bar = Bar(ts=0, recv_ts=0, symbol="SPY", seq=0, interval_ns=60 * 10**9,
        ...           open=10000, high=10000, low=10000, close=10000, volume=0)
        >>> NoSlippage().fill(Side.BUY, 100, None, bar, us_equity("SPY")) is None
        True
        """
        side = _side(side)
        _check_lots("remaining_lots", remaining_lots, positive=True)
        _check_lots("used_lots", used_lots, positive=False)
        if limit_ticks is not None:
            _check_lots("limit_ticks", limit_ticks, positive=True)
        if bar.volume <= 0:
            return None
        cap = self.capacity_lots(bar, used_lots)
        quantity = remaining_lots if cap is None else min(remaining_lots, cap)
        if quantity < 1:
            return None
        impact = self.impact_ticks(side, quantity, used_lots, bar, instrument)
        price = round_fill_price(side, bar.close + impact if side is Side.BUY else bar.close - impact)
        if price < 1:
            return None  # a sell impacted below the grid's first tick has no price to fill at
        if limit_ticks is not None and (price > limit_ticks if side is Side.BUY else price < limit_ticks):
            return None
        return BarFill(price, quantity, impact, self.name)

    def capacity_lots(self, bar: Bar, used_lots: int) -> int | None:
        """Lots this bar can still give after ``used_lots`` (None: no cap). May be <= 0."""
        return None

    @abstractmethod
    def impact_ticks(
        self, side: Side, quantity_lots: int, used_lots: int, bar: Bar, instrument: Instrument
    ) -> Fraction | float:
        """Unrounded adverse price move in ticks (>= 0) for filling ``quantity_lots`` now."""


class NoSlippage(BarFillModel):
    """The "no friction" classroom level: the whole order fills at the bar's close.

    No volume cap and no impact (zipline's ``NoSlippage``); a bar still needs volume > 0.

    >>> from vtrade.core.instruments import us_equity
    >>> bar = Bar(ts=0, recv_ts=0, symbol="SPY", seq=0, interval_ns=60 * 10**9,
    ...           open=10000, high=10000, low=10000, close=10000, volume=5)
    >>> NoSlippage().fill(Side.SELL, 1_000, None, bar, us_equity("SPY")).price_ticks
    10000
    """

    def impact_ticks(
        self, side: Side, quantity_lots: int, used_lots: int, bar: Bar, instrument: Instrument
    ) -> Fraction:
        return Fraction(0)

    def __repr__(self) -> str:
        return "NoSlippage()"


class FixedSpreadSlippage(BarFillModel):
    """A fixed cost in basis points of the close: buys pay ``close·(1 + h/10⁴)``, sells get
    ``close·(1 − h/10⁴)`` with ``h = half_spread_bps``.

    zipline's ``FixedSlippage`` (a fixed half spread) and ``FixedBasisPointsSlippage`` (a fixed
    bps cost, optionally capped at ``volume_limit`` of bar volume) in one: with the default
    ``volume_limit=None`` there is no cap, as in ``FixedSlippage``.

    >>> from vtrade.core.instruments import us_equity
    >>> bar = Bar(ts=0, recv_ts=0, symbol="SPY", seq=0, interval_ns=60 * 10**9,
    ...           open=10000, high=10000, low=10000, close=10000, volume=1_000)
    >>> f = FixedSpreadSlippage(5).fill(Side.BUY, 100, None, bar, us_equity("SPY"))
    >>> f.price_ticks, f.impact_ticks_exact
    (10005, Fraction(5, 1))
    """

    def __init__(self, half_spread_bps: Ratio, volume_limit: Ratio | None = None) -> None:
        self.half_spread_bps = _ratio("half_spread_bps", half_spread_bps)
        if self.half_spread_bps < 0:
            raise ValueError(f"half_spread_bps must be >= 0, got {half_spread_bps!r}")
        self.volume_limit = None if volume_limit is None else _volume_limit(volume_limit)

    def capacity_lots(self, bar: Bar, used_lots: int) -> int | None:
        return None if self.volume_limit is None else _volume_cap(self.volume_limit, bar, used_lots)

    def impact_ticks(
        self, side: Side, quantity_lots: int, used_lots: int, bar: Bar, instrument: Instrument
    ) -> Fraction:
        return self.half_spread_bps / 10_000 * bar.close

    def __repr__(self) -> str:
        limit = "" if self.volume_limit is None else f", volume_limit={_show(self.volume_limit)}"
        return f"FixedSpreadSlippage(half_spread_bps={_show(self.half_spread_bps)}{limit})"


class VolumeShareSlippage(BarFillModel):
    """zipline's ``VolumeShareSlippage``: impact grows with the square of the bar's volume share.

    With ``V`` the bar's volume, ``u`` the lots earlier fills took from it and ``q`` this fill::

        cap          = floor(volume_limit · V) − u          (no fill when < 1)
        q            = min(remaining, cap)
        volume_share = min((u + q) / V, volume_limit)
        impact       = volume_share² · price_impact · close
        price        = close + impact (buy), close − impact (sell)

    Defaults are zipline's (``volume_limit=0.025``, ``price_impact=0.1``). Every step is exact
    (``Fraction``) until the final rounding to the tick grid.

    >>> from vtrade.core.instruments import us_equity
    >>> bar = Bar(ts=0, recv_ts=0, symbol="SPY", seq=0, interval_ns=60 * 10**9,
    ...           open=10000, high=10000, low=10000, close=10000, volume=1_000_000)
    >>> f = VolumeShareSlippage().fill(Side.SELL, 50_000, None, bar, us_equity("SPY"))
    >>> f.quantity_lots, f.impact_ticks_exact, f.price_ticks    # share capped at 0.025
    (25000, Fraction(5, 8), 9999)
    """

    def __init__(self, volume_limit: Ratio = 0.025, price_impact: Ratio = 0.1) -> None:
        self.volume_limit = _volume_limit(volume_limit)
        self.price_impact = _ratio("price_impact", price_impact)
        if self.price_impact < 0:
            raise ValueError(f"price_impact must be >= 0, got {price_impact!r}")

    def capacity_lots(self, bar: Bar, used_lots: int) -> int:
        return _volume_cap(self.volume_limit, bar, used_lots)

    def impact_ticks(
        self, side: Side, quantity_lots: int, used_lots: int, bar: Bar, instrument: Instrument
    ) -> Fraction:
        share = min(Fraction(used_lots + quantity_lots, bar.volume), self.volume_limit)
        return share * share * self.price_impact * bar.close

    def __repr__(self) -> str:
        return f"VolumeShareSlippage(volume_limit={_show(self.volume_limit)}, price_impact={_show(self.price_impact)})"


class SquareRootImpact(BarFillModel):
    """The square-root law of market impact: ``impact = η · σ_daily · sqrt(Q / ADV) · price``.

    ``σ_daily`` is the daily volatility of returns (a fraction, 0.02 = 2 %), ``ADV`` the average
    daily volume in lots and ``Q`` the lots traded. The form is Grinold & Kahn's (*Active
    Portfolio Management*, 2nd ed., 2000, ch. 16, the "square root" transaction cost model);
    the prefactor η ("Y" in Tóth et al., "Anomalous price impact and the critical nature of
    liquidity in financial markets", Phys. Rev. X 1, 021006, 2011, and in Bouchaud, Bonart,
    Donier & Gould, *Trades, Quotes and Prices*, 2018, ch. 12) is measured to be of order one,
    typically 0.5-1 across equities and futures. The default η = 1 takes the upper end of that
    range: a simulator should rather overstate than understate costs. (Almgren, Thum,
    Hauptmann & Li, "Direct estimation of equity market impact", Risk 2005, fit a 3/5 power
    for temporary impact instead; this model is the plain square root.)

    On bars, ``Q`` is this bar's cumulative participation (earlier fills + this one, as in
    :class:`VolumeShareSlippage`), capped at ``volume_limit`` of the bar's volume, and the price
    is the close. ``sigma_daily`` and ``adv_lots`` are fixed per model instance: pass them, or
    build the model with :meth:`from_bars` from history that ends *before* the bars it will
    fill against (anything later is look-ahead). ``eta_by_symbol`` overrides η per instrument,
    as zipline's ``VolatilityVolumeShare`` does per futures root.

    :meth:`impact_price` serves the L1 rung: the price for the part of an order beyond the
    displayed size, given σ and ADV explicitly.

    >>> from vtrade.core.instruments import us_equity
    >>> m = SquareRootImpact(eta=1, sigma_daily=0.02, adv_lots=1_000_000)
    >>> m.impact_price(Side.BUY, 10_000, 10000, 0.02, 1_000_000, us_equity("SPY"))   # 10000·0.02·0.1 = 20
    10020
    """

    def __init__(
        self,
        eta: float = 1.0,
        volume_limit: Ratio = 0.025,
        sigma_daily: float | None = None,
        adv_lots: float | None = None,
        eta_by_symbol: Mapping[str, float] | None = None,
    ) -> None:
        self.eta = _nonnegative("eta", eta)
        self.volume_limit = _volume_limit(volume_limit)
        self.sigma_daily = None if sigma_daily is None else _nonnegative("sigma_daily", sigma_daily)
        self.adv_lots = None if adv_lots is None else _positive("adv_lots", adv_lots)
        self.eta_by_symbol = {k: _nonnegative(f"eta_by_symbol[{k!r}]", v) for k, v in (eta_by_symbol or {}).items()}

    @classmethod
    def from_bars(
        cls,
        history: Sequence[Bar],
        *,
        bars_per_day: float = 1,
        eta: float = 1.0,
        volume_limit: Ratio = 0.025,
        eta_by_symbol: Mapping[str, float] | None = None,
    ) -> SquareRootImpact:
        """A model with σ and ADV estimated from ``history`` by :func:`estimate_sigma_adv`.

        >>> bars = [Bar(ts=i, recv_ts=i, symbol="X", seq=0, interval_ns=86_400 * 10**9, open=c, high=c,
        ...             low=c, close=c, volume=v) for i, (c, v) in enumerate([(100, 10), (110, 30), (99, 20)])]
        >>> m = SquareRootImpact.from_bars(bars)
        >>> round(m.sigma_daily, 6), m.adv_lots
        (0.141896, 20.0)
        """
        sigma, adv = estimate_sigma_adv(history, bars_per_day=bars_per_day)
        return cls(eta=eta, volume_limit=volume_limit, sigma_daily=sigma, adv_lots=adv, eta_by_symbol=eta_by_symbol)

    def eta_for(self, instrument: Instrument) -> float:
        """η for ``instrument``: its override in ``eta_by_symbol`` if any, else ``eta``."""
        return self.eta_by_symbol.get(instrument.symbol, self.eta)

    def impact_exact(
        self, quantity_lots: float, reference_price_ticks: int, sigma: float, adv: float, instrument: Instrument
    ) -> float:
        """Unrounded impact in ticks: ``η · σ · sqrt(Q / ADV) · price``.

        >>> from vtrade.core.instruments import us_equity
        >>> SquareRootImpact(eta=0.5).impact_exact(2_500, 20000, 0.01, 100_000, us_equity("SPY"))
        15.811388300841896
        """
        if not quantity_lots >= 0:
            raise ValueError(f"quantity must be >= 0 lots, got {quantity_lots!r}")
        _check_lots("reference_price_ticks", reference_price_ticks, positive=True)
        sigma = _nonnegative("sigma", sigma)
        adv = _positive("adv", adv)
        return self.eta_for(instrument) * sigma * math.sqrt(quantity_lots / adv) * reference_price_ticks

    def impact_price(
        self,
        side: Side,
        quantity: int,
        reference_price_ticks: int,
        sigma: float,
        adv: float,
        instrument: Instrument,
    ) -> int:
        """The price in ticks for ``quantity`` lots traded through ``reference_price_ticks``.

        At L1 the reference is the touch the order walks away from (the ask for a buy) and
        ``quantity`` the lots beyond the displayed size; the result is rounded against the
        trader like every fill price.

        >>> from vtrade.core.instruments import us_equity
        >>> SquareRootImpact(eta=0.5).impact_price(Side.SELL, 2_500, 20000, 0.01, 100_000, us_equity("SPY"))
        19984
        """
        side = _side(side)
        _check_lots("quantity", quantity, positive=True)
        impact = self.impact_exact(quantity, reference_price_ticks, sigma, adv, instrument)
        exact = reference_price_ticks + impact if side is Side.BUY else reference_price_ticks - impact
        return round_fill_price(side, exact)

    def capacity_lots(self, bar: Bar, used_lots: int) -> int:
        return _volume_cap(self.volume_limit, bar, used_lots)

    def impact_ticks(
        self, side: Side, quantity_lots: int, used_lots: int, bar: Bar, instrument: Instrument
    ) -> float:
        if self.sigma_daily is None or self.adv_lots is None:
            raise ValueError(
                "SquareRootImpact needs sigma_daily and adv_lots to fill bars: pass them, or build the model "
                "with SquareRootImpact.from_bars(history)"
            )
        return self.impact_exact(used_lots + quantity_lots, bar.close, self.sigma_daily, self.adv_lots, instrument)

    def __repr__(self) -> str:
        return (
            f"SquareRootImpact(eta={self.eta!r}, volume_limit={_show(self.volume_limit)}, "
            f"sigma_daily={self.sigma_daily!r}, adv_lots={self.adv_lots!r})"
        )


def estimate_sigma_adv(history: Sequence[Bar], *, bars_per_day: float = 1) -> tuple[float, float]:
    """``(σ_daily, ADV in lots)`` from consecutive bars of one instrument, oldest first.

    σ is the sample standard deviation (n − 1) of close-to-close log returns, ADV the mean bar
    volume. For intraday bars pass ``bars_per_day`` (390 for 1-minute US equity bars): σ is
    scaled by ``sqrt(bars_per_day)`` (returns taken as independent, so variance adds up) and
    ADV by ``bars_per_day``. Needs at least three bars (two returns).

    >>> bars = [Bar(ts=i, recv_ts=i, symbol="X", seq=0, interval_ns=60 * 10**9, open=c, high=c,
    ...             low=c, close=c, volume=10) for i, c in enumerate([100, 101, 100, 101, 100])]
    >>> sigma, adv = estimate_sigma_adv(bars, bars_per_day=4)
    >>> round(sigma, 6), adv
    (0.022979, 40.0)
    """
    if len(history) < 3:
        raise ValueError(f"estimating volatility needs at least 3 bars (2 returns), got {len(history)}")
    if not bars_per_day > 0:
        raise ValueError(f"bars_per_day must be > 0, got {bars_per_day!r}")
    for prev, cur in itertools.pairwise(history):
        if cur.ts <= prev.ts or cur.symbol != prev.symbol:
            raise ValueError(f"history must be one symbol's bars in increasing time; bar at ts={cur.ts} breaks it")
    if any(bar.close <= 0 for bar in history):
        raise ValueError("history has a bar with a non-positive close; returns are undefined")
    returns = [math.log(cur.close / prev.close) for prev, cur in itertools.pairwise(history)]
    sigma = statistics.stdev(returns) * math.sqrt(bars_per_day)
    adv = statistics.fmean(bar.volume for bar in history) * bars_per_day
    if adv <= 0:
        raise ValueError("history has no volume; average daily volume would be 0")
    return sigma, adv


# ---------------------------------------------------------------------------- helpers
def _volume_cap(volume_limit: Fraction, bar: Bar, used_lots: int) -> int:
    # zipline takes int(min(volume_limit·V − used, remaining)); with an integer ``used`` that is
    # floor(volume_limit·V) − used, computed exactly here.
    return math.floor(volume_limit * bar.volume) - used_lots


def _side(side: Side) -> Side:
    if side is Side.BUY or side is Side.SELL:
        return side
    if isinstance(side, int) and not isinstance(side, bool) and side in (1, -1):
        return Side(side)
    raise ValueError(f"side must be Side.BUY or Side.SELL, got {side!r}")


def _check_lots(name: str, value: int, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer count, got {value!r}")
    if value < (1 if positive else 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value}")


def _ratio(name: str, value: Ratio) -> Fraction:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        # repr() is the shortest text that round-trips: 0.025 is read as 1/40, not its binary neighbour.
        return Fraction(repr(value))
    try:
        return Fraction(value)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"{name} must be a finite number, got {value!r}") from exc


def _volume_limit(value: Ratio) -> Fraction:
    limit = _ratio("volume_limit", value)
    if not 0 < limit <= 1:
        raise ValueError(f"volume_limit is a share of bar volume in (0, 1], got {value!r}")
    return limit


def _nonnegative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction | Decimal):
        raise TypeError(f"{name} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out) or out < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return out


def _positive(name: str, value: float) -> float:
    out = _nonnegative(name, value)
    if out == 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return out


def _show(value: Fraction) -> str:
    # Parameters come from decimal text, so a float's shortest repr shows them as written.
    return repr(float(value)) if value.denominator != 1 else str(value.numerator)
