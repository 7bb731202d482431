"""A seeded synthetic market: a zero-intelligence limit order book (Santa Fe model).

The model (Smith, Farmer, Gillemot & Krishnamurthy 2003; Farmer, Patelli & Zovko 2005) treats
order flow as independent Poisson processes, per side:

* **limit orders** arrive at rate ``limit_rate``; a buy is placed ``k`` ticks below the best
  ask (a sell ``k`` above the best bid), ``k ≥ 1`` drawn from a truncated power law
  ``P(k) ∝ k^-placement_exponent`` on ``1..max_distance`` (Zovko & Farmer measured an exponent
  near 1.5). Orders with ``k`` smaller than the spread land inside it, which is what keeps the
  spread tight; ``k ≥ 1`` means a limit order never crosses;
* **market orders** arrive at rate ``market_rate`` and sweep the opposite side level by level;
* **cancellations** hit each resting order at rate ``cancel_rate``: a side's cancellation rate
  is proportional to its resting size, the level is chosen with probability proportional to
  its size, and an order-sized amount leaves it.

Order sizes are whole round lots, geometric with the given means. The default rates follow
Cont, Stoikov & Talreja (2010, "A stochastic model for order book dynamics"), who calibrated this
model on liquid stocks: limit orders at k ticks from the opposite best at 1.92·k^-0.52 per
second, market orders 0.94 per second, cancellations 0.5-0.8 per resting order per second (one
"order" here = 200 shares). Rates are per unit of *model time*; the map from model time to
seconds (the clock) is fitted during a silent burn-in so that the mid price's realised
volatility equals ``annual_volatility`` at ``initial_price`` (the book's dynamics fix the mid
variance per unit of model time; the clock scales it to a year of 252 × 6.5 h). So one set of
defaults serves a $100 or a $450 stock: a dearer stock moves more ticks a second and runs a
faster clock.

Calibration of the defaults (0.01 tick, 1,000,000 orders after the burn-in, seeds 1-5, sampled
once a second; ``tests/test_synthetic.py`` re-measures a shorter run): the quoted spread is 1
tick 82 % of the time, 2 ticks 13 %, more than 3 ticks about 1 %; the touch holds a median 400
shares and the top five levels a median 2,000 per side (5th-95th percentile 1,100-3,300);
realised volatility of 10 s mid returns is 18-21 % for the 20 % target; the clock runs ~200
orders a second at $150 and ~1,900 at $450.

Output: a :class:`BookSnapshot` first, then for each order one :class:`BookDelta` with the new
absolute size of every level it changed (0 removes a level), preceded by one :class:`Trade` per
price level a market order swept (``aggressor`` = the market order's side). Times strictly
increase between orders; the trades and delta of one market order share its time. ``seq``
counts the emitted events. The state is a dense size array per side over a window of
``window`` ticks around the mid that re-centres as the price drifts (levels that fall off its
far edge are removed with size-0 deltas); the simulation itself is a Numba kernel, so the
generator produces several hundred thousand events a second.

Determinism: draws come from a NumPy ``Generator`` seeded with ``SeedSequence([seed, murmur2
(symbol)])``, so the same ``(seed, symbol, params)`` gives an identical stream on every run and
machine, and another symbol gets an independent one.

>>> from itertools import islice
>>> m = SyntheticMarket("SPY", seed=7)
>>> events = list(islice(m, 5))
>>> type(events[0]).__name__, events[0].ts == m.params.start_ts
('BookSnapshot', True)
>>> [e.seq for e in events]
[1, 2, 3, 4, 5]
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from vtrade.core.events import BookDelta, BookSnapshot, MarketEvent, Side, Trade
from vtrade.core.instruments import Instrument, us_equity
from vtrade.core.jit import njit
from vtrade.core.rng import seeded_rng

SECONDS_PER_YEAR = 252 * 23_400  # trading seconds: 252 days of 6.5 hours

# Indices into the kernel's integer and float state vectors.
_LO, _BB, _BA, _TOTB, _TOTA, _TNS = 0, 1, 2, 3, 4, 5
_TMODEL = 0
# Item kinds in the kernel's output.
_BID, _ASK, _TRADE_BUY, _TRADE_SELL = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class SyntheticParams:
    """Parameters of :class:`SyntheticMarket`. Rates are per unit of model time (see module notes).

    >>> SyntheticParams().market_rate < SyntheticParams().limit_rate
    True
    """

    initial_price: Decimal = Decimal("150.00")  # first mid (rounded down to the tick grid)
    annual_volatility: float = 0.20  # the clock is calibrated to this at initial_price
    limit_rate: float = 23.3  # limit orders per side (= Σ 1.92·k^-0.52 over k = 1..50)
    market_rate: float = 0.94  # market orders per side
    cancel_rate: float = 0.6  # per resting order of mean limit size
    placement_exponent: float = 0.52  # P(k) ∝ k^-exponent, k ticks from the opposite best
    max_distance: int = 50  # largest k, in ticks
    limit_size_mean: int = 200  # shares; order sizes are whole round lots, geometric
    market_size_mean: int = 200  # shares
    round_lot: int = 100  # shares
    window: int = 512  # ticks of dense state per side, centred on the mid
    burn_in: int = 500_000  # silent events before the snapshot; the clock is fitted on them
    start_ts: int = 1_704_205_800_000_000_000  # 2024-01-02 09:30 New York, in UTC ns
    events_per_second: float | None = None  # fix the clock instead of calibrating it

    def __post_init__(self) -> None:
        for name in ("limit_rate", "market_rate", "cancel_rate", "annual_volatility", "placement_exponent"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if self.round_lot <= 0 or self.limit_size_mean < self.round_lot or self.market_size_mean < self.round_lot:
            raise ValueError("round_lot must be positive and order size means at least one round lot")
        if not 2 <= self.max_distance <= self.window // 4:
            raise ValueError(f"max_distance must be in [2, window/4 = {self.window // 4}], got {self.max_distance}")
        if self.window < 64:
            raise ValueError(f"window must be at least 64 ticks, got {self.window}")
        if self.burn_in < 20_000:
            raise ValueError(f"burn_in must be at least 20000 events to fit the clock, got {self.burn_in}")
        if self.events_per_second is not None and not self.events_per_second > 0:
            raise ValueError(f"events_per_second must be positive, got {self.events_per_second}")
        if Decimal(self.initial_price) <= 0:
            raise ValueError(f"initial_price must be positive, got {self.initial_price}")


@njit(cache=True, nogil=True)
def _geometric_lots(u: float, log_q: float) -> int:
    """1 + Geometric: P(n) = (1-q) q^(n-1), by inversion of one uniform."""
    if log_q == 0.0:
        return 1
    return 1 + math.floor(math.log(1.0 - u) / log_q)


# The side helpers below serve both sides of the book: ``step`` is the direction away from the
# spread in window index (-1 for bids, whose best is the highest index; +1 for asks).


@njit(cache=True, nogil=True)
def _next_level(book: np.ndarray, i: int, step: int) -> int:
    """The first non-empty level from ``i`` on, going ``step``; stops at the window's edge."""
    w = book.shape[0]
    while 0 <= i + step < w and book[i] == 0:
        i += step
    return i


@njit(cache=True, nogil=True)
def _place(
    book: np.ndarray, best: int, opposite: int, step: int, k: int, size: int, lo: int, kind: int,
    it_kind: np.ndarray, it_px: np.ndarray, it_sz: np.ndarray, ni: int,
) -> tuple[int, int]:
    """A limit order of ``size``, ``k`` ticks from the ``opposite`` best (clipped to the window);
    returns (best, items out)."""
    w = book.shape[0]
    i = opposite + step * k
    i = i if i >= 0 else 0
    i = i if i < w else w - 1
    book[i] += size
    if (i - best) * step < 0:  # inside the spread: the new best
        best = i
    it_kind[ni], it_px[ni], it_sz[ni] = kind, lo + i, book[i]
    return best, ni + 1


@njit(cache=True, nogil=True)
def _sweep(
    book: np.ndarray, best: int, step: int, total: int, size: int, lo: int, trade_kind: int, kind: int,
    it_kind: np.ndarray, it_px: np.ndarray, it_sz: np.ndarray, ni: int,
) -> tuple[int, int, int]:
    """A market order of ``size`` takes ``book`` level by level from ``best``; it never takes the
    side's last share. Returns (best, total, items out)."""
    size = size if size < total else total - 1
    total -= size
    while size > 0:
        take = book[best] if book[best] < size else size
        book[best] -= take
        size -= take
        it_kind[ni], it_px[ni], it_sz[ni] = trade_kind, lo + best, take
        it_kind[ni + 1], it_px[ni + 1], it_sz[ni + 1] = kind, lo + best, book[best]
        ni += 2
        if book[best] == 0:
            best = _next_level(book, best, step)
    return best, total, ni


@njit(cache=True, nogil=True)
def _cancel(
    book: np.ndarray, best: int, step: int, total: int, u: float, size: int, lo: int, kind: int,
    it_kind: np.ndarray, it_px: np.ndarray, it_sz: np.ndarray, ni: int,
) -> tuple[int, int, int]:
    """Cancel up to ``size`` at a level chosen in proportion to its size (by the uniform ``u``);
    returns (best, total, items out)."""
    w = book.shape[0]
    target = np.int64(u * total)
    i = best
    acc = book[i]
    while acc <= target and 0 <= i + step < w:
        i += step
        acc += book[i]
    size = size if size < book[i] else book[i]
    if size == total:
        size -= 1  # keep the side's last share so the book always has a bid and an ask
    if size > 0:
        book[i] -= size
        total -= size
        it_kind[ni], it_px[ni], it_sz[ni] = kind, lo + i, book[i]
        ni += 1
        if i == best and book[i] == 0:
            best = _next_level(book, best, step)
    return best, total, ni


@njit(cache=True, nogil=True)
def _shift(book: np.ndarray, shift: int) -> None:
    """Move the window ``shift`` ticks up (down if negative): level ``j`` becomes ``j - shift``;
    levels coming in are empty."""
    w = book.shape[0]
    if shift > 0:
        book[: w - shift] = book[shift:].copy()
        book[w - shift :] = 0
    else:
        s = -shift
        book[s:] = book[: w - s].copy()
        book[:s] = 0


@njit(cache=True, nogil=True)
def _simulate(
    bid: np.ndarray, ask: np.ndarray, st: np.ndarray, fst: np.ndarray, u: np.ndarray, u_pos: int, n_events: int,
    cdf: np.ndarray, prm: np.ndarray, out_ts: np.ndarray, out_end: np.ndarray, it_kind: np.ndarray,
    it_px: np.ndarray, it_sz: np.ndarray, mids: np.ndarray, record_mid: bool,
) -> tuple[int, int, int, int]:
    """Simulate up to ``n_events`` orders; returns (orders simulated, events out, items out, u_pos)."""
    lam, mu, delta, log_ql, log_qm = prm[0], prm[1], prm[2], prm[3], prm[4]
    lot, mean_limit, ns_per_unit = int(prm[5]), prm[6], prm[7]
    w = bid.shape[0]
    cap = it_kind.shape[0] - 4 * w - 8  # room for the worst single order (a sweep plus a re-centre)
    lo, bb, ba, totb, tota, tns = st[_LO], st[_BB], st[_BA], st[_TOTB], st[_TOTA], st[_TNS]
    tm = fst[_TMODEL]
    ne = 0
    ni = 0
    done = 0
    while done < n_events and ni < cap:
        u0, u1, u2, u3 = u[u_pos, 0], u[u_pos, 1], u[u_pos, 2], u[u_pos, 3]
        u_pos += 1
        done += 1
        cancel_b = delta * totb / mean_limit
        cancel_a = delta * tota / mean_limit
        rate = 2.0 * lam + 2.0 * mu + cancel_b + cancel_a
        tm += -math.log(1.0 - u0) / rate
        t = np.int64(tm * ns_per_unit)
        tns = t if t > tns else tns + 1
        x = u1 * rate
        start = ni
        if x < 2.0 * lam:  # a limit order
            k = np.searchsorted(cdf, u2, side="right") + 1
            size = lot * _geometric_lots(u3, log_ql)
            if x < lam:
                bb, ni = _place(bid, bb, ba, -1, k, size, lo, _BID, it_kind, it_px, it_sz, ni)
                totb += size
            else:
                ba, ni = _place(ask, ba, bb, 1, k, size, lo, _ASK, it_kind, it_px, it_sz, ni)
                tota += size
        elif x < 2.0 * lam + 2.0 * mu:  # a market order sweeps the other side
            size = lot * _geometric_lots(u3, log_qm)
            if x < 2.0 * lam + mu:  # buy: lifts asks
                ba, tota, ni = _sweep(ask, ba, 1, tota, size, lo, _TRADE_BUY, _ASK, it_kind, it_px, it_sz, ni)
            else:  # sell: hits bids
                bb, totb, ni = _sweep(bid, bb, -1, totb, size, lo, _TRADE_SELL, _BID, it_kind, it_px, it_sz, ni)
        else:  # a cancellation, at a level chosen in proportion to its size
            size = lot * _geometric_lots(u3, log_ql)
            if x < 2.0 * lam + 2.0 * mu + cancel_b:
                bb, totb, ni = _cancel(bid, bb, -1, totb, u2, size, lo, _BID, it_kind, it_px, it_sz, ni)
            else:
                ba, tota, ni = _cancel(ask, ba, 1, tota, u2, size, lo, _ASK, it_kind, it_px, it_sz, ni)
        # Re-centre the window when the mid has drifted a quarter of it away from the centre.
        mid = (bb + ba) // 2
        if mid < w // 4 or mid > w - w // 4:
            shift = mid - w // 2
            # The levels that fall off the far edge are removed (size-0 items), bid before ask.
            gone, stop = (0, shift) if shift > 0 else (w + shift, w)
            for j in range(gone, stop):
                if bid[j]:
                    it_kind[ni], it_px[ni], it_sz[ni] = _BID, lo + j, 0
                    ni += 1
                    totb -= bid[j]
                if ask[j]:
                    it_kind[ni], it_px[ni], it_sz[ni] = _ASK, lo + j, 0
                    ni += 1
                    tota -= ask[j]
            _shift(bid, shift)
            _shift(ask, shift)
            lo += shift
            bb -= shift
            ba -= shift
        if record_mid:
            mids[done - 1] = 2 * lo + bb + ba
        if ni > start:
            out_ts[ne] = tns
            out_end[ne] = ni
            ne += 1
    st[_LO], st[_BB], st[_BA], st[_TOTB], st[_TOTA], st[_TNS] = lo, bb, ba, totb, tota, tns
    fst[_TMODEL] = tm
    return done, ne, ni, u_pos



@dataclass(slots=True)
class _Buffers:
    out_ts: np.ndarray
    out_end: np.ndarray
    it_kind: np.ndarray
    it_px: np.ndarray
    it_sz: np.ndarray
    mids: np.ndarray


class SyntheticMarket:
    """A synthetic, seeded limit order book for one instrument (see the module notes).

    Iterating yields a :class:`BookSnapshot`, then :class:`BookDelta`/:class:`Trade` events
    forever. :meth:`step` simulates a given number of orders and returns their events;
    :meth:`book` is the internal book after everything produced so far.

    >>> m = SyntheticMarket(us_equity("IBM"), seed=1)
    >>> snap = m.snapshot()
    >>> snap.bid_px[0] < snap.ask_px[0]
    True
    >>> len(m.step(1000)) >= 1000
    True
    """

    CHUNK = 1 << 14  # orders per kernel call while iterating

    def __init__(self, instrument: Instrument | str, *, seed: int, params: SyntheticParams | None = None) -> None:
        self.instrument = us_equity(instrument) if isinstance(instrument, str) else instrument
        self.symbol = self.instrument.symbol
        self.seed = seed
        self.params = p = params or SyntheticParams()
        self._rng = seeded_rng(seed, self.symbol)
        grid = self.instrument.price_grid
        start_px = int(Decimal(p.initial_price) // grid.increment)
        self._lot = self.instrument.size(p.round_lot)  # a round lot in the instrument's lots
        k = np.arange(1, p.max_distance + 1, dtype=np.float64)
        weights = k**-p.placement_exponent
        self._cdf = np.cumsum(weights) / weights.sum()
        self._cdf[-1] = 1.0
        self._prm = np.array([
            p.limit_rate, p.market_rate, p.cancel_rate,
            _log_q(p.limit_size_mean / p.round_lot), _log_q(p.market_size_mean / p.round_lot),
            self._lot, p.limit_size_mean / p.round_lot * self._lot, 1.0,
        ], dtype=np.float64)  # fmt: skip
        w = p.window
        self._bid = np.zeros(w, dtype=np.int64)
        self._ask = np.zeros(w, dtype=np.int64)
        half = w // 2
        # A flat initial book; the burn-in relaxes it to the model's own stationary shape.
        depth = 4 * self._lot
        self._bid[half - p.max_distance : half] = depth
        self._ask[half + 1 : half + 1 + p.max_distance] = depth
        self._st = np.array([start_px - half, half - 1, half + 1, depth * p.max_distance,
                             depth * p.max_distance, 0], dtype=np.int64)
        self._fst = np.zeros(1, dtype=np.float64)
        self._u = np.zeros((0, 4), dtype=np.float64)
        self._u_pos = 0
        self._seq = 0
        self._trade_id = 0
        self._started = False
        self.ns_per_model_unit = self._burn_in()

    # -- public API -----------------------------------------------------------------------

    @property
    def events_per_second(self) -> float:
        """Mean orders per second of simulated time (the calibrated clock)."""
        return self._orders_per_unit * 1e9 / self._prm[7]

    def book(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """``(bids, asks)``: every non-empty level as ``(price_ticks, size_lots)``, best first."""
        lo = int(self._st[_LO])
        bi = np.flatnonzero(self._bid)[::-1]
        ai = np.flatnonzero(self._ask)
        return ([(lo + int(i), int(self._bid[i])) for i in bi], [(lo + int(i), int(self._ask[i])) for i in ai])

    def snapshot(self) -> BookSnapshot:
        """The whole current book as a :class:`BookSnapshot` (stamped now, next ``seq``)."""
        bids, asks = self.book()
        self._seq += 1
        ts = self.params.start_ts + int(self._st[_TNS])
        return BookSnapshot(ts, ts, self.symbol, self._seq, [p for p, _ in bids], [s for _, s in bids],
                            [p for p, _ in asks], [s for _, s in asks])

    def step(self, orders: int) -> list[MarketEvent]:
        """Simulate ``orders`` more orders and return their events (deltas and trades)."""
        if orders < 0:
            raise ValueError(f"orders must be non-negative, got {orders}")
        out: list[MarketEvent] = []
        left = orders
        while left > 0:
            n = min(left, self.CHUNK)
            done = self._run(n, out)
            left -= done
        return out

    def __iter__(self) -> Iterator[MarketEvent]:
        if self._started:
            raise RuntimeError("a SyntheticMarket is iterated once; create a new one (same seed) to replay")
        self._started = True
        yield self.snapshot()
        while True:
            yield from self.step(self.CHUNK)

    # -- internals ------------------------------------------------------------------------

    def _uniforms(self, n: int) -> None:
        """Make sure ``n`` unused uniform rows are ready (kept in draw order across calls)."""
        have = self._u.shape[0] - self._u_pos
        if have < n:
            fresh = self._rng.random((max(n - have, self.CHUNK), 4))
            self._u = np.concatenate([self._u[self._u_pos :], fresh])
            self._u_pos = 0

    def _buffers(self, n: int, with_mids: bool = False) -> _Buffers:
        w = self.params.window
        items = 4 * n + 4 * w + 64
        return _Buffers(np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(items, np.int8),
                        np.zeros(items, np.int64), np.zeros(items, np.int64),
                        np.zeros(n if with_mids else 1, np.int64))

    def _kernel(self, n: int, buf: _Buffers, record_mid: bool) -> tuple[int, int, int]:
        self._uniforms(n)
        done, ne, ni, self._u_pos = _simulate(
            self._bid, self._ask, self._st, self._fst, self._u, self._u_pos, n, self._cdf, self._prm,
            buf.out_ts, buf.out_end, buf.it_kind, buf.it_px, buf.it_sz, buf.mids, record_mid,
        )
        return done, ne, ni

    def _burn_in(self) -> float:
        """Run the silent burn-in and fit the clock (model time → ns); returns ns per model unit."""
        p = self.params
        n = p.burn_in
        buf = self._buffers(n, with_mids=True)
        done = 0
        mids: list[np.ndarray] = []
        while done < n:
            d, _, _ = self._kernel(n - done, buf, True)
            mids.append(buf.mids[:d].copy())
            done += d
        mid = np.concatenate(mids)
        model_time = float(self._fst[_TMODEL])
        self._orders_per_unit = n / model_time
        if p.events_per_second is not None:
            ns_per_unit = 1e9 * self._orders_per_unit / p.events_per_second
        else:
            # Mid variance per unit of model time, from non-overlapping blocks of 500 orders after
            # the first fifth of the burn-in (the book has relaxed by then; 500 orders span several
            # price changes, so bid-ask bounce adds only a few per cent).
            tail = mid[n // 5 :]
            block = 500
            m = tail[: (len(tail) // block) * block].reshape(-1, block)[:, -1] / 2.0  # ticks
            var_per_order = float(np.var(np.diff(m))) / block
            var_per_unit = max(var_per_order, 1e-9) * self._orders_per_unit
            price_ticks = float(Decimal(p.initial_price) / self.instrument.price_grid.increment)
            var_per_second = (p.annual_volatility * price_ticks) ** 2 / SECONDS_PER_YEAR
            ns_per_unit = 1e9 * var_per_unit / var_per_second
        # Restart the model clock at the snapshot: published times begin at start_ts.
        self._fst[_TMODEL] = 0.0
        self._st[_TNS] = 0
        self._prm[7] = ns_per_unit
        return ns_per_unit

    def _run(self, n: int, out: list[MarketEvent]) -> int:
        buf = self._buffers(n)
        done, ne, ni = self._kernel(n, buf, False)
        symbol, start = self.symbol, self.params.start_ts
        kinds = buf.it_kind[:ni].tolist()
        pxs = buf.it_px[:ni].tolist()
        szs = buf.it_sz[:ni].tolist()
        seq, tid = self._seq, self._trade_id
        a = 0
        for ts_rel, end in zip(buf.out_ts[:ne].tolist(), buf.out_end[:ne].tolist(), strict=True):
            ts = start + ts_rel
            bpx: list[int] = []
            bsz: list[int] = []
            apx: list[int] = []
            asz: list[int] = []
            for j in range(a, end):
                kind = kinds[j]
                if kind == _BID:
                    _set_level(bpx, bsz, pxs[j], szs[j])
                elif kind == _ASK:
                    _set_level(apx, asz, pxs[j], szs[j])
                else:
                    seq += 1
                    tid += 1
                    side = Side.BUY if kind == _TRADE_BUY else Side.SELL
                    out.append(Trade(ts, ts, symbol, seq, pxs[j], szs[j], side, tid))
            seq += 1
            out.append(BookDelta(ts, ts, symbol, seq, bpx, bsz, apx, asz))
            a = end
        self._seq, self._trade_id = seq, tid
        return done


def _set_level(px: list[int], sz: list[int], price: int, size: int) -> None:
    """Record a level's new absolute size once per event (a sweep touches a level twice)."""
    if px and px[-1] == price:
        sz[-1] = size
    else:
        px.append(price)
        sz.append(size)


def _log_q(mean_lots: float) -> float:
    """log(q) of the geometric lot count with the given mean (mean = 1/(1-q))."""
    q = 1.0 - 1.0 / mean_lots
    return math.log(q) if q > 0 else 0.0


def synthetic_events(symbol: str, seed: int, params: SyntheticParams | None = None) -> Iterator[MarketEvent]:
    """Shorthand: the endless event stream of ``SyntheticMarket(symbol, seed=seed, params=params)``.

    >>> from itertools import islice
    >>> a = [e for e in islice(synthetic_events("AAPL", 3), 100)]
    >>> b = [e for e in islice(synthetic_events("AAPL", 3), 100)]
    >>> a == b
    True
    """
    return iter(SyntheticMarket(symbol, seed=seed, params=params))
