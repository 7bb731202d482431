"""The daily universe replayed intraday: seeded price paths through real daily bars, with
quotes and depth synthesised around them, for hundreds of stocks in one vectorised step.

Daily bars say where each stock opened and closed, not how it got there. :class:`IntradayUniverse`
draws, for every stock at once, a path in log price that starts each session at the day's real
open (the overnight gap happens at the bell) and lands exactly on its real close: a discretely
sampled Brownian bridge. With ``x`` the log price after step ``k - 1`` of ``n``, ``y`` the log
close and ``σ = σ_day / √n``::

    x_k = x + (y - x) / (n - k + 1) + σ · √((n - k) / (n - k + 1)) · Z,    Z ~ N(0, 1)

which is the bridge's exact conditional law, so ``x_n = y``. ``σ_day`` is the day's Parkinson
volatility from its high and low (floored at ``min_daily_vol``: a flat day still trades).
Past the last day in the data the paths go on as driftless random walks at each stock's
median volatility, so a demo left running never runs out of market.

Around each price the touch is synthesised as in :func:`vtrade.market.depth.depth_from_bar`:
the spread (``spread_coef · σ₁`` ticks) and queue scale come from the depth model with the
stock's trailing ADV and volatility, fixed per day; :meth:`IntradayUniverse.snapshot` builds
the full calibrated book behind one stock's quote (:func:`vtrade.market.depth.depth_shape`).
The book lives (:class:`vtrade.market.depth.DepthDynamics`): each side's sizes are the static
model's times a multiplier that wanders (two AR(1) factors per side), tilts towards the bid
after a rise, follows the session (thinner at the open, deeper into the close) and the day
(its volume and range against the trailing ones), and each price level has a size factor of
its own. ``dynamics=DepthDynamics.static()`` gives the mirrored, static book of
:func:`~vtrade.market.depth.depth_from_quote`. Everything is a pure function of the data, the
seed and the number of steps taken.

>>> import pandas as pd
>>> frame = pd.DataFrame({"date": pd.to_datetime(["2017-11-09", "2017-11-10"]), "ticker": "XYZ",
...     "open": [10.0, 10.1], "high": [10.2, 10.3], "low": [9.9, 10.0], "close": [10.0, 10.2],
...     "volume": [1e6, 1e6]})
>>> u = IntradayUniverse.from_frame(frame, start="2017-11-10", seed=1)
>>> u.open_day(0, steps=4)
>>> float(u.prices()[0])
10.1
>>> for _ in range(4):
...     u.step()
>>> round(float(u.prices()[0]), 10)  # lands on the real close
10.2
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import cast

import numpy as np
import pandas as pd

from vtrade.core.errors import CrossedBookError
from vtrade.core.events import BookSnapshot
from vtrade.core.ids import murmur2
from vtrade.core.instruments import Instrument
from vtrade.core.rng import seeded_rng
from vtrade.market.depth import (
    DEFAULT_DEPTH,
    DEFAULT_DYNAMICS,
    DepthDynamics,
    DepthParams,
    LiveDepth,
    day_scale,
    depth_shape,
    hashed_normal,
)

__all__ = ["IntradayUniverse"]

_ASK = np.uint64(0x5BD1E9955BD1E995)  # the ask side's levels draw from another key

_PARKINSON = 1.0 / (2.0 * math.sqrt(math.log(2.0)))


@dataclass(frozen=True, eq=False)
class _Days:
    """The replayed days as (day, stock) float arrays; gaps in a stock's history are filled
    with its previous close (a flat day), so every stock has a price every day."""

    dates: tuple[date, ...]
    open: np.ndarray
    close: np.ndarray
    vol: np.ndarray  # Parkinson daily volatility, floored
    prev_close: np.ndarray  # (stocks,) the close before the first replayed day
    adv: np.ndarray  # (stocks,) mean daily volume over the lookback, shares
    daily_vol: np.ndarray  # (stocks,) close-to-close volatility over the lookback
    volume: np.ndarray | None = None  # (day, stock) the day's volume, NaN where missing


class IntradayUniverse:
    """Seeded intraday paths, quotes and depth for many stocks: see the module notes.

    Build it with :meth:`from_frame` (a frame of daily bars, e.g. ``load_universe(...).frame``);
    ``price_increment`` is the tick in dollars (one cent).
    """

    def __init__(
        self, tickers: tuple[str, ...], days: _Days, *, seed: int, price_increment: float = 0.01,
        min_daily_vol: float = 0.002, depth: DepthParams = DEFAULT_DEPTH,
        dynamics: DepthDynamics = DEFAULT_DYNAMICS,
    ) -> None:  # fmt: skip
        self.tickers = tickers
        self.index = {t: i for i, t in enumerate(tickers)}
        self._days = days
        self.seed = seed
        self.tick = price_increment
        self.min_daily_vol = min_daily_vol
        self.depth = depth
        self.day = -1  # index of the session in progress (may run past the data)
        self._x = np.log(days.prev_close)
        self._k = 0
        self._n = 1
        self._target: np.ndarray | None = None
        self._sigma = np.zeros(len(tickers))
        self._rng = seeded_rng(seed, "intraday", 0)
        self._spread = np.ones(len(tickers), dtype=np.int64)
        self._touch = np.full(len(tickers), depth.round_lot, dtype=np.int64)
        self._quotes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._sizes: tuple[np.ndarray, np.ndarray] | None = None  # the touch's (bid, ask) sizes
        self._init_depth(dynamics)
        self._init_interventions()
        self._median_vol = np.maximum(np.median(days.vol, axis=0), min_daily_vol) if len(days.dates) else \
            np.full(len(tickers), min_daily_vol)  # fmt: skip

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, *, start: str | date, seed: int, lookback: int = 20, min_daily_vol: float = 0.002,
        depth: DepthParams = DEFAULT_DEPTH, dynamics: DepthDynamics = DEFAULT_DYNAMICS,
    ) -> IntradayUniverse:  # fmt: skip
        """Replay the days of ``frame`` (columns ``date, ticker, open, high, low, close, volume``;
        rows with ``flagged`` True are treated as missing) from ``start`` on; the ``lookback``
        days before ``start`` give each stock's ADV and volatility.

        A stock must have a close before ``start`` (its opening price): others are left out.
        """
        df = frame
        if "flagged" in df.columns:
            df = df[~df["flagged"].astype(bool)]
        first = pd.Timestamp(start)
        wide = {c: df.pivot_table(index="date", columns="ticker", values=c, aggfunc="last")
                for c in ("open", "high", "low", "close", "volume")}  # fmt: skip
        closes = wide["close"].sort_index().ffill()
        before = closes.index < first
        if not before.any():
            raise ValueError(f"the daily data has no day before {first.date()}: nothing to open the replay at")
        if not (~before).any():
            raise ValueError(f"the daily data ends before {first.date()}: nothing to replay")
        prev = closes[before].iloc[-1]
        tickers = tuple(sorted(prev.dropna().index))
        closes = closes[list(tickers)]
        hist = closes[before].tail(lookback + 1)
        # A ufunc on a DataFrame gives a DataFrame (pandas' __array_ufunc__; NumPy's stubs say ndarray).
        rets = cast(pd.DataFrame, np.log(hist)).diff().iloc[1:]
        daily_vol = np.nan_to_num(rets.std().to_numpy(), nan=min_daily_vol)
        adv = wide["volume"].reindex(columns=list(tickers))[before].tail(lookback).mean().to_numpy()
        adv = np.where(np.isfinite(adv) & (adv > 0), adv, 1e5)
        replay = closes[~before]
        close = replay.to_numpy(dtype=float)
        opens = wide["open"].reindex(index=replay.index, columns=list(tickers)).to_numpy(dtype=float)
        high = wide["high"].reindex(index=replay.index, columns=list(tickers)).to_numpy(dtype=float)
        low = wide["low"].reindex(index=replay.index, columns=list(tickers)).to_numpy(dtype=float)
        opens = np.where(np.isfinite(opens) & (opens > 0), opens, close)
        ok = np.isfinite(high) & np.isfinite(low) & (low > 0) & (high >= low)
        vol = np.where(ok, _PARKINSON * np.log(np.where(ok, high / np.where(ok, low, 1.0), 1.0)), 0.0)
        days = _Days(
            tuple(d.date() for d in replay.index), opens, close, np.maximum(vol, min_daily_vol),
            prev.reindex(list(tickers)).to_numpy(dtype=float), adv, np.maximum(daily_vol, min_daily_vol),
            wide["volume"].reindex(index=replay.index, columns=list(tickers)).to_numpy(dtype=float),
        )  # fmt: skip
        return cls(tickers, days, seed=seed, min_daily_vol=min_daily_vol, depth=depth, dynamics=dynamics)

    # ------------------------------------------------------------------ the replay
    @property
    def dates(self) -> tuple[date, ...]:
        return self._days.dates

    def open_day(self, day: int, *, steps: int) -> None:
        """Start session ``day`` (an index into :attr:`dates`; past the end, a synthetic day):
        prices gap to the real open and will reach the real close after ``steps`` steps."""
        if steps < 1:
            raise ValueError(f"a session needs at least one step, got {steps}")
        if day < 0:
            raise ValueError(f"day must be >= 0, got {day}")
        d = self._days
        self.day, self._k, self._n = day, 0, steps
        self._rng = seeded_rng(self.seed, "intraday", day)
        if day < len(d.dates):
            self._x = np.log(d.open[day])
            self._target = np.log(d.close[day])
            sigma_day = d.vol[day]
            volume = d.volume[day] if d.volume is not None else np.full(len(self.tickers), np.nan)
            scale = day_scale(volume / d.adv, sigma_day / d.daily_vol, self.dynamics)
        else:
            self._target = None
            sigma_day = self._median_vol
            scale = np.ones(len(self.tickers))
        self._sigma = sigma_day / math.sqrt(steps)
        self._quotes = None
        self._sizes = None
        self._live.open_day(day, steps=steps, day_scale=scale)
        self._key = self._day_key(day)
        self._shape_day()

    def step(self) -> None:
        """Advance every stock by one step (vectorised)."""
        if self.day < 0:
            raise RuntimeError("open_day() first")
        z = self._rng.standard_normal(len(self.tickers))
        before = self._x
        if self._target is None or self._k >= self._n:
            self._x = self._x + self._sigma * z
        else:
            left = self._n - self._k
            self._x = self._x + (self._target - self._x) / left + self._sigma * math.sqrt((left - 1) / left) * z
        self._k += 1
        self._live.step((self._x - before) / self._sigma)  # sigma > 0: the volatility is floored
        self._quotes = None
        self._sizes = None

    def shift(self, stocks: np.ndarray, log_shift: float) -> None:
        """Move ``stocks`` (indices) by ``log_shift`` in log price from now on, for good: a
        teacher's shock. The paths go on as before and the shift is added to what they show, so
        every later price (intraday, and each day's open and close) is moved by the same factor.

        >>> import pandas as pd
        >>> frame = pd.DataFrame({"date": pd.to_datetime(["2017-11-09", "2017-11-10"]), "ticker": "XYZ",
        ...     "open": [10.0, 10.1], "high": [10.2, 10.3], "low": [9.9, 10.0], "close": [10.0, 10.2],
        ...     "volume": [1e6, 1e6]})
        >>> u = IntradayUniverse.from_frame(frame, start="2017-11-10", seed=1)
        >>> u.open_day(0, steps=4)
        >>> u.shift(np.array([0]), math.log(0.9))
        >>> round(float(u.prices()[0]), 10)
        9.09
        """
        if not math.isfinite(log_shift):
            raise ValueError(f"a log shift must be finite, got {log_shift!r}")
        self._shift[stocks] += log_shift
        self._quotes = None
        self._sizes = None

    def set_depth_factor(self, factor: np.ndarray) -> None:
        """Displayed depth per stock times ``factor`` (one per stock, > 0; 1 = normal) until
        changed again: a liquidity drought. Spreads and prices are untouched."""
        f = np.asarray(factor, dtype=float)
        if f.shape != (len(self.tickers),) or not np.all(np.isfinite(f) & (f > 0)):
            raise ValueError(f"a depth factor needs one positive number per stock ({len(self.tickers)})")
        self._log_liq = np.log(f)
        self._quotes = None
        self._sizes = None

    def _init_interventions(self) -> None:
        """No shock and normal depth (also for checkpoints made before either existed)."""
        self._shift = np.zeros(len(self.tickers))
        self._log_liq = np.zeros(len(self.tickers))

    def previous_close(self) -> np.ndarray:
        """Each stock's real close before the first replayed day."""
        return self._days.prev_close.copy()

    def average_volume(self) -> np.ndarray:
        """Each stock's mean daily volume in shares over the lookback before the replay (what
        its depth is calibrated on; the copilot's screen filters on it)."""
        return self._days.adv.copy()

    def prices(self) -> np.ndarray:
        """Each stock's current price in dollars."""
        return np.exp(self._x + self._shift)

    def quotes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(bid, ask, size)`` in ticks and lots: the synthesised touch around each price, with
        ``size`` the mean of the two sides' touch sizes in round lots (:meth:`touch` has each
        side's); computed once per step, the arrays are shared, read-only."""
        if self._quotes is None:
            mid = np.maximum(np.rint(self.prices() / self.tick).astype(np.int64), self._spread + 1)
            bid = mid - self._spread // 2
            bsz, asz = self._touch_sizes(bid, bid + self._spread)
            lot = self.depth.round_lot
            size = np.maximum(np.rint((bsz + asz) / (2 * lot)).astype(np.int64), 1) * lot
            out = (bid, bid + self._spread, size)
            for a in (*out, bsz, asz):
                a.flags.writeable = False
            self._quotes, self._sizes = out, (bsz, asz)
        return self._quotes

    def touch(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(bid, ask, bid_size, ask_size)`` in ticks and lots per stock: the touch of the book
        :meth:`snapshot` builds (shared, read-only arrays).

        A side's touch size is ``q · M_side · exp(level_sd · g(price))`` in round lots (at
        least one): ``q`` the day's queue scale, ``M_side`` the side's multiplier
        (:class:`~vtrade.market.depth.DepthDynamics`) and ``g`` the price level's own factor.
        """
        bid, ask, _ = self.quotes()
        assert self._sizes is not None
        return bid, ask, self._sizes[0], self._sizes[1]

    def _touch_sizes(self, bid: np.ndarray, ask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._logm = logm = self._live.log_multipliers()  # (2, n)
        logm += self._log_queue
        logm += self._log_liq  # a drought's factor thins the touch and every level behind it
        sizes = self._lots(logm.ravel(), np.concatenate((bid, ask)), self._keys2)
        n = len(bid)
        return sizes[:n], sizes[n:]

    def _lots(self, log_size: np.ndarray, px: np.ndarray, key: np.ndarray) -> np.ndarray:
        """Sizes from their logs plus each price level's factor (``key`` per side and stock), in
        whole round lots (at least one)."""
        sd = self.dynamics.level_sd
        if sd:
            log_size = log_size + sd * hashed_normal(key, px)
        lot = self.depth.round_lot
        return np.maximum(np.rint(np.exp(log_size - math.log(lot))).astype(np.int64), 1) * lot

    def snapshot(self, symbol: str, instrument: Instrument, ts: int, seq: int = 0) -> BookSnapshot:
        """The calibrated L2 book behind ``symbol``'s current quote, stamped ``ts``: the touch
        of :meth:`touch`, then levels ``k = 1..levels-1`` every ``Δ`` ticks (while prices stay
        positive) of ``q · (1 + k)^alpha · M_side · exp(level_sd · g(price))`` round lots.

        Bid and ask differ (each side has its own multiplier and level factors) and change
        from step to step; the same seed and steps give the same book.
        """
        i = self.index[symbol]
        if instrument.symbol != symbol:
            raise ValueError(f"instrument is {instrument.symbol}, not {symbol}")
        bid_a, ask_a, bsz_a, asz_a = self.touch()
        bid, ask = int(bid_a[i]), int(ask_a[i])
        if bid >= ask:  # cannot happen (spread >= 1): kept as the quote path's guard
            raise CrossedBookError(f"{symbol} quote at {ts} is locked or crossed ({bid} >= {ask})", seq=seq)
        p = self.depth
        shape = depth_shape(bid, adv=float(self._days.adv[i]), daily_vol=float(self._days.daily_vol[i]), params=p)
        behind = p.levels - 1
        steps = np.arange(1, p.levels) * shape.spacing
        px = np.concatenate((bid - steps, ask + steps))
        key = self._key[i]
        keys = np.repeat(np.array([key, key ^ _ASK], dtype=np.uint64), behind)
        logm = np.repeat(self._logm[:, i] - self._log_queue[i], behind)  # the sides' log M
        sizes = self._lots(np.tile(self._log_growth, 2) + logm + math.log(shape.queue), px, keys).tolist()
        pxl = px.tolist()
        nb = sum(1 for x in pxl[:behind] if x > 0)  # bids stop above zero
        return BookSnapshot(ts, ts, symbol, seq, [bid, *pxl[:nb]], [int(bsz_a[i]), *sizes[:nb]],
                            [ask, *pxl[behind:]], [int(asz_a[i]), *sizes[behind:]])  # fmt: skip

    def _init_depth(self, dynamics: DepthDynamics) -> None:
        """The depth's state before the first day (also for checkpoints made before it existed)."""
        n = len(self.tickers)
        self.dynamics = dynamics
        self._live = LiveDepth(n, seed=self.seed, dynamics=dynamics)
        self._queue = self._touch.astype(float)
        self._sizes = None
        with np.errstate(over="ignore"):
            seed_key = np.uint64(self.seed & 0xFFFFFFFFFFFFFFFF) * np.uint64(0xD1B54A32D192ED03)
            keys = [murmur2(t.encode()) & 0xFFFFFFFF for t in self.tickers]
            self._sym_key = np.array(keys, dtype=np.uint64) ^ seed_key
        self._key = self._day_key(0)
        self._logm = np.zeros((2, n))
        self._log_queue = np.log(np.maximum(self._queue, 1e-12))
        self._keys2 = np.concatenate((self._key, self._key ^ _ASK))
        self._log_growth = self.depth.alpha * np.log1p(np.arange(1, self.depth.levels, dtype=float))

    def _day_key(self, day: int) -> np.ndarray:
        """Per stock, the key of its price levels' factors on ``day`` (seed, symbol, day)."""
        with np.errstate(over="ignore"):
            return self._sym_key ^ (np.uint64(day & 0xFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15))

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        if "_shift" not in state:
            self._init_interventions()
        if "_live" not in state:  # a checkpoint from before the depth lived: it starts now
            self._init_depth(DEFAULT_DYNAMICS)
            self._live.open_day(max(self.day, 0), steps=self._n, day_scale=np.ones(len(self.tickers)))
            self._live._k = self._k  # the session goes on where it was
            self._key = self._day_key(max(self.day, 0))
            self._keys2 = np.concatenate((self._key, self._key ^ _ASK))
            self._quotes = None

    def _shape_day(self) -> None:
        """Spread and queue scale per stock for the day, from the depth model at the open."""
        lot = self.depth.round_lot
        ticks = np.maximum(np.rint(self.prices() / self.tick).astype(np.int64), 1)
        for i in range(len(self.tickers)):
            shape = depth_shape(int(ticks[i]), adv=float(self._days.adv[i]), daily_vol=float(self._days.daily_vol[i]),
                                params=self.depth)  # fmt: skip
            self._spread[i] = shape.spread
            self._queue[i] = shape.queue
            self._touch[i] = max(lot, round(shape.queue / lot) * lot)
        self._log_queue = np.log(self._queue)
        self._keys2 = np.concatenate((self._key, self._key ^ _ASK))
