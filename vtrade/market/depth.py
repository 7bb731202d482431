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

That book is static: the same inputs give the same, mirrored ladder. :class:`DepthDynamics` and
:class:`LiveDepth` make it live for the intraday universe (:mod:`vtrade.market.intraday`): per
side multipliers that wander, tilt with the recent path, follow the session and the day, and a
factor of each price level's own, calibrated on the same minute bars and documented there.

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

import numpy as np

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


# ---------------------------------------------------------------------- depth that lives
@dataclass(frozen=True, slots=True)
class DepthDynamics:
    """How a synthesised book moves in time (see :class:`LiveDepth`); sizes are the static
    model's (:func:`depth_shape`) times a per-stock, per-side multiplier and a per-level factor.

    With ``t`` the seconds since the open, ``T`` the session length, ``z_k`` the path's step return
    in units of its own step sigma and ``φ(τ) = exp(-dt/τ)`` for a step of ``dt`` seconds:

    * **liquidity factors**, two per side, AR(1) in log size (stationary sd ``fast_sd`` and
      ``slow_sd``, memories ``fast_tau_s`` and ``slow_tau_s``):
      ``f ← φ(τ)·f + √(1-φ(τ)²)·sd·ε``, the bid's and ask's shocks correlated ``side_corr``;
    * **flow imbalance** ``m``: an EWMA of ``z_k`` with memory ``imbalance_tau_s``, scaled to unit
      sd; the bid gets ``+imbalance·m`` and the ask ``-imbalance·m`` in log size (after a rise
      the bid is the heavier side);
    * **intraday profile** ``u(t) = 1 + (open_depth - 1)·e^(-t/profile_s) + (close_depth - 1)·e^(-(T-t)/profile_s)``;
    * **the day**: ``D = clip((V_day/ADV)^volume_elasticity · (σ_day/σ_trailing)^-vol_elasticity, 1/4, 4)``
      (a busy day is deeper, a wild one thinner; 1 past the data);
    * side multiplier ``M = D · u(t) · exp(f_fast + f_slow ± imbalance·m)``: median one, so
      the calibrated median touch of :class:`DepthParams` is kept;
    * **level factor** ``exp(level_sd · g(seed, symbol, day, side, price))``, ``g`` a hashed
      near-normal draw (:func:`hashed_normal`): a queue keeps its size while it stays at its
      price and a new price level brings a new one.

    The factors' innovations are uniform with unit variance (a quarter of the cost of normal
    draws, which matters over 500 stocks every step); each factor sums many of them, so its
    law is close to normal. A day starts them from normal draws of the stationary law.

    Calibration (defaults), from the Lean minute quote bars in ``data/`` (SPY, IBM, AIG, BAC
    2013-10; AAPL 2014-06; GOOG 2015-12, 17 instrument-days, regular session): the log touch size
    has sd 0.72 around its day mean (median; 0.42-1.33), ``√(fast² + slow² + level²)`` = 0.67;
    the one-second SPY bars give the autocorrelation of the log bid size as 0.87 / 0.70 / 0.45 /
    0.33 / 0.18 at 1 / 5 / 30 / 60 / 300 s, which two factors of 8 s and 250 s with about equal
    variance follow (0.95 / 0.78 / 0.51 / 0.44 / 0.17 for the side multiplier alone; the level
    factor, new whenever the touch moves, takes it lower); bid and ask log sizes are nearly
    uncorrelated (median -0.07: ``side_corr`` = 0). The imbalance ``log(bid/ask)`` barely tracks
    the minute's return (correlation -0.13…+0.16, median ≈ 0) but leads it by up to +0.25 in
    large-tick BAC: ``imbalance`` = 0.1 gives a correlation of about 0.2 with the last minute's
    path. The intraday profile of the touch (half-hour medians relative to mid-day) is flat
    but for the last half hour (1.33) and a thinner open in some stocks (AIG, BAC 0.4-0.7, SPY
    1.0-1.2): ``close_depth`` = 1.5 and ``open_depth`` = 0.7 over ``profile_s`` = 1,800 s give
    1.32 and 0.81 averaged over the first and last half hour. The day elasticities (0.5, 1)
    are half those the static model has across stocks (queue ∝ ADV/σ² at large tick): a
    judgement, a day's volume and range being noisy measures of its liquidity.

    >>> DepthDynamics().fast_tau_s, DepthDynamics.static().fast_sd
    (8.0, 0.0)
    """

    fast_sd: float = 0.4  # stationary sd of the fast log-size factor per side
    fast_tau_s: float = 8.0  # its memory, seconds
    slow_sd: float = 0.45  # stationary sd of the slow log-size factor per side
    slow_tau_s: float = 250.0  # its memory, seconds
    side_corr: float = 0.0  # correlation of the bid's and ask's factor shocks
    imbalance: float = 0.1  # log-size tilt per unit of standardised recent return (+bid, -ask)
    imbalance_tau_s: float = 60.0  # memory of the recent-return EWMA, seconds
    open_depth: float = 0.7  # depth at the opening bell relative to mid-day
    close_depth: float = 1.5  # depth at the closing bell relative to mid-day
    profile_s: float = 1_800.0  # how long the open's and close's effects last, seconds
    volume_elasticity: float = 0.5  # day depth ∝ (day volume / ADV)^this
    vol_elasticity: float = 1.0  # day depth ∝ (day sigma / trailing sigma)^-this
    level_sd: float = 0.3  # sd of the per-price log-size factor of each level

    def __post_init__(self) -> None:
        for name in ("fast_sd", "slow_sd", "level_sd", "volume_elasticity", "vol_elasticity", "imbalance"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be >= 0 and finite, got {v!r}")
        for name in ("fast_tau_s", "slow_tau_s", "imbalance_tau_s", "profile_s", "open_depth", "close_depth"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be positive and finite, got {v!r}")
        if not (math.isfinite(self.side_corr) and -1.0 <= self.side_corr <= 1.0):
            raise ValueError(f"side_corr must be a correlation in [-1, 1], got {self.side_corr!r}")

    @classmethod
    def static(cls) -> DepthDynamics:
        """No dynamics: every multiplier is one (the book of :func:`depth_from_quote`)."""
        return cls(fast_sd=0.0, slow_sd=0.0, imbalance=0.0, open_depth=1.0, close_depth=1.0,
                   volume_elasticity=0.0, vol_elasticity=0.0, level_sd=0.0)  # fmt: skip


DEFAULT_DYNAMICS = DepthDynamics()

_SQRT12 = math.sqrt(12.0)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xBF58476D1CE4E5B9)
_U16 = np.uint64(0xFFFF)
_S16, _S29, _S31, _S32, _S48 = (np.uint64(b) for b in (16, 29, 31, 32, 48))
_IH_SCALE = math.sqrt(3.0) / 65536.0  # four 16-bit uniforms summed: variance 4/12 → scale to one


def hashed_normal(key: np.ndarray | int, prices: np.ndarray) -> np.ndarray:
    """A unit-variance, zero-mean draw per ``(key, price)``, the same wherever and whenever it is
    computed: a pure function, no generator state. A multiply-xorshift hash of the two (``key``
    should be well mixed already, e.g. from :func:`vtrade.core.ids.murmur2`) gives four 16-bit
    uniforms whose sum, centred and scaled, is Irwin-Hall: near normal, bounded at ±3.46.

    >>> a = hashed_normal(7, np.array([100, 101]))
    >>> bool(np.array_equal(a, hashed_normal(7, np.array([100, 101])))), bool(a[0] != a[1])
    (True, True)
    """
    h = np.asarray(prices, dtype=np.int64).astype(np.uint64)
    h *= _GOLD
    h ^= np.array(key, dtype=np.uint64, ndmin=1)
    h ^= h >> _S31
    h *= _MIX
    h ^= h >> _S29
    total = (h & _U16) + ((h >> _S16) & _U16) + ((h >> _S32) & _U16) + (h >> _S48)
    return (total.astype(np.float64) - 131_070.0) * _IH_SCALE


def intraday_profile(t_s: np.ndarray | float, session_s: float, dyn: DepthDynamics = DEFAULT_DYNAMICS) -> np.ndarray:
    """``u(t)``: depth ``t`` seconds into a session of ``session_s`` relative to mid-day.

    >>> [round(float(x), 2) for x in intraday_profile(np.array([0, 11_700, 23_400]), 23_400)]
    [0.7, 1.0, 1.5]
    """
    t = np.clip(np.asarray(t_s, dtype=float), 0.0, session_s)
    w = dyn.profile_s
    return 1.0 + (dyn.open_depth - 1.0) * np.exp(-t / w) + (dyn.close_depth - 1.0) * np.exp(-(session_s - t) / w)


class LiveDepth:
    """The state of :class:`DepthDynamics` for ``n`` stocks at once (vectorised): advance it with
    :meth:`step` once per path step, read the per-side multipliers with :meth:`multipliers`.

    Draws come from ``seeded_rng(seed, "intraday-depth", day)``, so a day's depth is a pure
    function of the seed, the day and the path; the price path's own draws are untouched.

    >>> d = LiveDepth(2, seed=1)
    >>> d.open_day(0, steps=23_400, day_scale=np.ones(2))
    >>> d.step(np.zeros(2))
    >>> bid, ask = d.multipliers()
    >>> bool(np.all(bid != ask)), bid.shape
    (True, (2,))
    """

    def __init__(self, n: int, *, seed: int, dynamics: DepthDynamics = DEFAULT_DYNAMICS,
                 session_s: float = SESSION_NS / 1e9) -> None:  # fmt: skip
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if not (math.isfinite(session_s) and session_s > 0):
            raise ValueError(f"session_s must be positive, got {session_s!r}")
        self.n, self.seed, self.dyn, self.session_s = n, seed, dynamics, session_s
        self._rng = seeded_rng(seed, "intraday-depth", 0)
        self._f = np.zeros((4, n))  # fast bid, fast ask, slow bid, slow ask
        self._m = np.zeros(n)
        self._log_scale = np.zeros(n)
        self._k, self._n, self._dt = 0, 1, session_s
        self._coef = np.zeros((4, 2))
        self._lam = 0.0
        self._mnorm = 1.0

    def open_day(self, day: int, *, steps: int, day_scale: np.ndarray) -> None:
        """A new session of ``steps`` steps; ``day_scale`` is ``D`` per stock. The factors start
        from their stationary law (a fresh day, drawn from the day's own stream)."""
        d = self.dyn
        self._rng = seeded_rng(self.seed, "intraday-depth", day)
        self._k, self._n, self._dt = 0, steps, self.session_s / steps
        sds = np.array([d.fast_sd, d.fast_sd, d.slow_sd, d.slow_sd])
        self._f = sds[:, None] * self._draw()
        self._m = np.zeros(self.n)
        self._log_scale = np.log(np.asarray(day_scale, dtype=float))
        phis = np.exp(-self._dt / np.array([d.fast_tau_s, d.fast_tau_s, d.slow_tau_s, d.slow_tau_s]))
        self._coef = np.stack([phis, np.sqrt(1.0 - phis * phis) * sds], axis=1)
        self._lam = math.exp(-self._dt / d.imbalance_tau_s)
        self._mnorm = math.sqrt((1.0 + self._lam) / (1.0 - self._lam)) if self._lam > 0 else 1.0

    def _draw(self, normal: bool = True) -> np.ndarray:
        """Four zero-mean, unit-variance draws per stock (normal, or uniform for the steps);
        each side pair correlated ``side_corr``."""
        if normal:
            e = self._rng.standard_normal((4, self.n))
        else:
            e = self._rng.random((4, self.n))
            e -= 0.5
            e *= _SQRT12
        r = self.dyn.side_corr
        if r:
            e[1] = r * e[0] + math.sqrt(1.0 - r * r) * e[1]
            e[3] = r * e[2] + math.sqrt(1.0 - r * r) * e[3]
        return e

    def step(self, z: np.ndarray) -> None:
        """Advance one step; ``z`` is each path's step return over its step sigma (finite)."""
        self._f *= self._coef[:, :1]
        self._f += self._coef[:, 1:] * self._draw(normal=False)
        self._m *= self._lam
        self._m += (1.0 - self._lam) * z
        self._k += 1

    def log_multipliers(self) -> np.ndarray:
        """``log M`` now, shape ``(2, n)``: row 0 the bids, row 1 the asks."""
        d = self.dyn
        t = min(self._k, self._n) * self._dt
        u = 1.0 + (d.open_depth - 1.0) * math.exp(-t / d.profile_s) + \
            (d.close_depth - 1.0) * math.exp(-(self.session_s - t) / d.profile_s)  # intraday_profile(t)
        out = self._f[0:2] + self._f[2:4]
        out += self._log_scale
        if d.imbalance:
            tilt = (d.imbalance * self._mnorm) * self._m
            out[0] += tilt
            out[1] -= tilt
        if u != 1.0:
            out += math.log(u)
        return out

    def multipliers(self) -> tuple[np.ndarray, np.ndarray]:
        """``(M_bid, M_ask)`` per stock now (see :class:`DepthDynamics`)."""
        m = np.exp(self.log_multipliers())
        return m[0], m[1]


def day_scale(volume_ratio: np.ndarray, vol_ratio: np.ndarray, dyn: DepthDynamics = DEFAULT_DYNAMICS) -> np.ndarray:
    """``D`` per stock from the day's volume / ADV and sigma / trailing sigma (NaN counts as 1).

    >>> day_scale(np.array([4.0, 1.0]), np.array([1.0, 2.0])).tolist()
    [2.0, 0.5]
    """
    v = np.where(np.isfinite(volume_ratio) & (volume_ratio > 0), volume_ratio, 1.0)
    s = np.where(np.isfinite(vol_ratio) & (vol_ratio > 0), vol_ratio, 1.0)
    return np.clip(v**dyn.volume_elasticity * s**-dyn.vol_elasticity, 0.25, 4.0)
