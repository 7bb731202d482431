"""Depth synthesis: a calibrated L2 book behind an L1 quote or a bar.

Bars and quotes say nothing about the liquidity behind the touch, yet an L2-style fill (a
market order walking the book) needs it. This model places it, deterministically, from three
numbers that every feed can supply: the price, the recent volume (ADV, in lots) and the daily
volatility.

The model (all distances in ticks; ``P`` = price in ticks, ``σ_d`` = daily volatility):

* one daily sigma spans ``X = σ_d · P`` ticks; with ``N = ADV / trade_size`` trades a day, the
  typical price move per trade is ``σ₁ = X / √N`` ticks;
* **level spacing** ``Δ = max(1, round(spacing_coef · σ₁))``: large-tick stocks (SPY, BAC:
  σ₁ ≪ 1) have a level at every tick, high-priced volatile ones (GOOG at $750: σ₁ ≈ 10) have
  levels several ticks apart;
* **queue size** ``q = kappa · ADV / (X/Δ)²``: under a random walk the price makes about
  ``(X/Δ)²`` level-steps a day, so ``ADV/(X/Δ)²`` is the volume that trades per level move,
  the natural size of a queue. Two regimes follow. Large-tick stocks (Δ = 1) get long queues,
  ``kappa · ADV / X²``: more volume → deeper, more volatility → thinner. Small-tick stocks
  (Δ ≈ σ₁, so ``X/Δ ≈ √N``) get ``q ≈ kappa · trade_size`` ≈ one typical order per level,
  and more volatility spreads the levels apart instead. Either way, depth per tick of price
  (what a sweeping order meets) falls with volatility and rises with volume;
* **level sizes** ``size_k = q · (1 + k)^alpha`` for level ``k = 1..levels-1`` behind the touch
  (``k = 0``), rounded to whole round lots (at least one): depth grows away from the touch;
* the **touch** is the quote itself (its prices and sizes); from a bar it is synthesised around
  the close with a spread of ``max(1, round(spread_coef · σ₁))`` ticks and size ``q`` per side.

Calibration (defaults of :class:`DepthParams`): ``kappa`` = 0.5 is the (rounded, 0.46) median of
the implied ``touch · (X/Δ)² / ADV`` over 31 instrument-days — Lean minute NBBO bars of SPY,
IBM, BAC, AIG (2013-10-04…11), AAPL (2014-06-05…09) and GOOG (2015-12-24/28) in ``data/``, with
median regular-session touch sizes, 20-day ADV (in the day's share units) and close-to-close
volatility from ``lean_daily_raw_unadjusted`` + factor files, plus the LOBSTER AAPL/GOOG
samples of 2012-06-21. Per instrument-day it ranges from 0.07 (AAPL on its first day after the
7:1 split) and 0.13 (BAC, a $14 stock with 65,000-share queues) to 2.2 (IBM): sizes come out
right within a factor of about four, across touch sizes from 100 to 84,000 shares.
``spread_coef`` = 4 is the median observed spread / σ₁ (3.8; range 2.2–7.9 where the spread
is not pinned at one tick), which puts AAPL 2014 at 10 ticks (observed 10–12) and GOOG 2015 at
40 (36–38). ``spacing_coef`` = 1 and ``alpha`` = 0.4 come from LOBSTER's AAPL 10-level book
(median gaps of 1–5 ticks between levels with σ₁ ≈ 2.8; mean level size 107 at the touch,
rising to 262 at level 10).

>>> from vtrade.core.events import Quote
>>> from vtrade.core.instruments import us_equity
>>> spy = us_equity("SPY")
>>> q = Quote(ts=1, recv_ts=1, symbol="SPY", seq=0, bid_px=16812, bid_sz=5500, ask_px=16813, ask_sz=6000)
>>> book = depth_from_quote(q, spy, adv=96_000_000, daily_vol=0.006)
>>> book.bid_px[:3], book.bid_sz[:3]
([16812, 16811, 16810], [5500, 6200, 7300])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vtrade.core.errors import CrossedBookError
from vtrade.core.events import Bar, BookSnapshot, Quote
from vtrade.core.instruments import Instrument
from vtrade.core.rng import seeded_rng

SESSION_NS = 23_400 * 1_000_000_000  # a regular US session, 6.5 hours
_PARKINSON = 1.0 / (2.0 * math.sqrt(math.log(2.0)))  # σ ≈ ln(high/low) / (2√ln2)


@dataclass(frozen=True, slots=True)
class DepthParams:
    """Parameters of the depth model (see the module notes for the calibration).

    >>> DepthParams(levels=5).levels
    5
    """

    levels: int = 10  # levels per side, the touch included
    kappa: float = 0.5  # queue scale: q = kappa · ADV / (X/Δ)²
    alpha: float = 0.4  # growth of level sizes away from the touch: q · (1 + k)^alpha
    trade_size: float = 200.0  # lots per trade, to turn ADV into a number of trades
    spacing_coef: float = 1.0  # Δ = max(1, round(spacing_coef · σ₁))
    spread_coef: float = 4.0  # from a bar: spread = max(1, round(spread_coef · σ₁)) ticks
    round_lot: int = 100  # level sizes are whole multiples of this many lots (≥ one)
    min_daily_vol: float = 0.002  # floor for the volatility (a flat bar says nothing about it)
    size_noise: float = 0.0  # σ of mean-one lognormal noise on sizes behind the touch (0 = none)

    def __post_init__(self) -> None:
        if self.levels < 1:
            raise ValueError(f"levels must be at least 1, got {self.levels}")
        for name in ("kappa", "trade_size", "spacing_coef", "spread_coef", "min_daily_vol"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be positive and finite, got {v!r}")
        if not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError(f"alpha must be >= 0 (sizes grow away from the touch), got {self.alpha!r}")
        if self.round_lot < 1:
            raise ValueError(f"round_lot must be a positive number of lots, got {self.round_lot}")
        if not (math.isfinite(self.size_noise) and self.size_noise >= 0):
            raise ValueError(f"size_noise must be >= 0, got {self.size_noise!r}")


DEFAULT_DEPTH = DepthParams()


@dataclass(frozen=True, slots=True)
class DepthShape:
    """The model's numbers for one price, volume and volatility (all in ticks and lots)."""

    sigma_ticks: float  # X: one daily sigma in ticks
    sigma_trade_ticks: float  # σ₁: typical move per trade in ticks
    spacing: int  # Δ: ticks between levels
    spread: int  # ticks, used when the touch is synthesised from a bar
    queue: float  # q: lots, the size scale of the levels behind the touch
    sizes: tuple[int, ...]  # lots at levels 1..levels-1 behind the touch (before noise)


def depth_shape(price_ticks: int, *, adv: float, daily_vol: float, params: DepthParams = DEFAULT_DEPTH) -> DepthShape:
    """The spacing, spread and level sizes for a price (ticks), ADV (lots) and daily volatility.

    >>> s = depth_shape(74_930, adv=1_866_620, daily_vol=0.0129)  # GOOG, 2015-12-24
    >>> s.spacing, s.spread, s.sizes[:3]
    (10, 40, (100, 200, 200))
    """
    if price_ticks <= 0:
        raise ValueError(f"price must be a positive number of ticks, got {price_ticks}")
    if not (math.isfinite(adv) and adv > 0):
        raise ValueError(f"adv must be a positive volume, got {adv!r}")
    if not (math.isfinite(daily_vol) and daily_vol >= 0):
        raise ValueError(f"daily_vol must be a non-negative fraction, got {daily_vol!r}")
    p = params
    x = max(daily_vol, p.min_daily_vol) * price_ticks
    sigma1 = x / math.sqrt(max(adv / p.trade_size, 1.0))
    spacing = max(1, round(p.spacing_coef * sigma1))
    spread = max(1, round(p.spread_coef * sigma1))
    steps = max(x / spacing, 1.0)
    queue = p.kappa * adv / (steps * steps)
    lot = p.round_lot
    sizes = tuple(max(lot, round(queue * (1 + k) ** p.alpha / lot) * lot) for k in range(1, p.levels))
    return DepthShape(x, sigma1, spacing, spread, queue, sizes)


def _noisy(sizes: tuple[int, ...], params: DepthParams, seed: int | None, symbol: str, ts: int) -> list[int]:
    if params.size_noise == 0 or not sizes:
        return list(sizes)
    if seed is None:
        raise ValueError("size_noise > 0 needs a seed (noise is drawn from a seeded Generator)")
    # One generator per (seed, symbol, time): the same snapshot is reproduced wherever it is built.
    rng = seeded_rng(seed, symbol, ts & 0xFFFFFFFFFFFFFFFF)
    s = params.size_noise
    factors = rng.lognormal(-0.5 * s * s, s, size=2 * len(sizes))
    lot = params.round_lot
    out = [max(lot, round(z * f / lot) * lot) for z, f in zip(sizes + sizes, factors.tolist(), strict=True)]
    return out


def _side(touch: int, touch_sz: int, sizes: list[int], step: int) -> tuple[list[int], list[int]]:
    """One side's ``(prices, sizes)``: the touch, then ``sizes`` every ``step`` ticks away from it
    (a negative step for bids) while prices stay positive; empty if the touch is missing."""
    if touch <= 0 or touch_sz <= 0:
        return [], []
    prices, out = [touch], [touch_sz]
    for k, size in enumerate(sizes, 1):
        px = touch + k * step
        if px <= 0:
            break
        prices.append(px)
        out.append(size)
    return prices, out


def _book(
    symbol: str, ts: int, seq: int, bid: int, bid_sz: int, ask: int, ask_sz: int, shape: DepthShape,
    params: DepthParams, seed: int | None,
) -> BookSnapshot:
    if bid and ask and bid >= ask:
        raise CrossedBookError(f"{symbol} quote at {ts} is locked or crossed ({bid} >= {ask}); no book to build",
                               seq=seq)
    sizes = _noisy(shape.sizes, params, seed, symbol, ts)
    n = len(shape.sizes)
    bid_sizes = sizes[:n]
    ask_sizes = sizes[n:] if len(sizes) > n else sizes  # noise draws each side separately
    bid_px, bid_sz_l = _side(bid, bid_sz, bid_sizes, -shape.spacing)
    ask_px, ask_sz_l = _side(ask, ask_sz, ask_sizes, shape.spacing)
    return BookSnapshot(ts, ts, symbol, seq, bid_px, bid_sz_l, ask_px, ask_sz_l)


def depth_from_quote(
    quote: Quote,
    instrument: Instrument,
    *,
    adv: float,
    daily_vol: float,
    params: DepthParams = DEFAULT_DEPTH,
    seed: int | None = None,
) -> BookSnapshot:
    """A :class:`BookSnapshot` whose touch is ``quote`` and whose deeper levels follow the model.

    ``adv`` is in the instrument's lots (shares for a US stock); ``daily_vol`` a fraction
    (0.01 = 1 % a day). A side the quote lacks (price 0) stays empty. A locked or crossed
    quote raises :class:`~vtrade.core.errors.CrossedBookError` (no consistent book exists).
    """
    if quote.symbol != instrument.symbol:
        raise ValueError(f"quote is for {quote.symbol}, instrument is {instrument.symbol}")
    ref = quote.bid_px if quote.bid_px > 0 else quote.ask_px
    if ref <= 0:
        raise ValueError(f"{quote.symbol} quote at {quote.ts} has neither a bid nor an ask")
    shape = depth_shape(ref, adv=adv, daily_vol=daily_vol, params=params)
    return _book(quote.symbol, quote.ts, quote.seq, quote.bid_px, quote.bid_sz, quote.ask_px, quote.ask_sz,
                 shape, params, seed)


def bar_daily_vol(bar: Bar, *, session_ns: int = SESSION_NS) -> float:
    """Daily volatility implied by a bar's range (Parkinson), scaled by √(session / interval).

    >>> from vtrade.core.events import Bar
    >>> b = Bar(ts=0, recv_ts=0, symbol="X", seq=0, interval_ns=60 * 10**9, open=100_00, high=100_10,
    ...         low=99_95, close=100_05, volume=1000)
    >>> round(bar_daily_vol(b), 4)
    0.0178
    """
    if bar.low <= 0 or bar.high < bar.low:
        raise ValueError(f"{bar.symbol} bar at {bar.ts} has no valid range (low {bar.low}, high {bar.high})")
    per_bar = _PARKINSON * math.log(bar.high / bar.low)
    return per_bar * math.sqrt(session_ns / bar.interval_ns)


def depth_from_bar(
    bar: Bar,
    instrument: Instrument,
    *,
    adv: float | None = None,
    daily_vol: float | None = None,
    params: DepthParams = DEFAULT_DEPTH,
    seed: int | None = None,
    session_ns: int = SESSION_NS,
) -> BookSnapshot:
    """A book around a bar's close, stamped at the bar's END (when its close is known).

    Without ``adv`` the bar's volume is scaled to a session (``volume · session / interval``);
    without ``daily_vol`` the bar's range gives it (:func:`bar_daily_vol`, floored at
    ``params.min_daily_vol``). The touch is synthesised: best bid ``close - spread // 2``, best ask
    ``bid + spread``, each with the model's queue size.

    >>> from vtrade.core.instruments import us_equity
    >>> b = Bar(ts=0, recv_ts=0, symbol="IBM", seq=0, interval_ns=60 * 10**9, open=18152, high=18180,
    ...         low=18152, close=18180, volume=9000)
    >>> book = depth_from_bar(b, us_equity("IBM"), adv=3_400_000, daily_vol=0.01)
    >>> book.ts == 60 * 10**9, book.ask_px[0] - book.bid_px[0]
    (True, 6)
    """
    if bar.symbol != instrument.symbol:
        raise ValueError(f"bar is for {bar.symbol}, instrument is {instrument.symbol}")
    if bar.close <= 0:
        raise ValueError(f"{bar.symbol} bar at {bar.ts} has no positive close")
    if adv is None:
        if bar.volume <= 0:
            raise ValueError(f"{bar.symbol} bar at {bar.ts} has no volume; pass adv explicitly")
        adv = bar.volume * session_ns / bar.interval_ns
    if daily_vol is None:
        daily_vol = bar_daily_vol(bar, session_ns=session_ns)
    shape = depth_shape(bar.close, adv=adv, daily_vol=daily_vol, params=params)
    bid = bar.close - shape.spread // 2
    ask = bid + shape.spread
    touch = max(params.round_lot, round(shape.queue / params.round_lot) * params.round_lot)
    end = bar.ts + bar.interval_ns
    return _book(bar.symbol, end, bar.seq, bid, touch, ask, touch, shape, params, seed)
