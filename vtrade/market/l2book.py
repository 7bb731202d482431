"""The L2 (price-level) order book.

Each side holds one aggregate size per price level, in integer ticks and lots. Updates are
absolute: a level is set to a new size, and size 0 removes it (the convention of Binance,
Databento MBP and most L2 feeds). The heavy lifting is in Numba kernels (``_l2kernels``) over
sorted arrays, so a stream of updates applies at millions of levels per second while the book
stays exact, sorted and checked for crossing after every event.

>>> book = L2Book()
>>> book.apply_levels(bids=[(100, 5), (99, 7)], asks=[(101, 3), (102, 4)])
>>> book.best_bid(), book.best_ask(), book.spread()
((100, 5), (101, 3), 1)
>>> book.depth(Side.BUY, within=1)
12
>>> book.apply_levels(asks=[(101, 0)])  # size 0 removes the level
>>> book.top(2).ask_px.tolist()
[102]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from vtrade.core.errors import CrossedBookError
from vtrade.core.events import BookDelta, BookSnapshot, Event, Quote, Side, Trade
from vtrade.market import _l2kernels as k

_I64 = np.int64
_GROW_AT = 64  # overflow levels that make a side's ladder widen
_TOLERANCE = {"reject": k.STRICT, "locked": k.LOCKED_OK, "crossed": k.CROSSED_OK}
_CHUNK = 1 << 13  # level updates per kernel call, so ladders can widen between calls
# Batches this large size the windows from their own prices (L2Book.fit); smaller ones (one
# event at a time, live) leave the windows to adapt as levels arrive (_Side.maybe_grow).
_FIT_MIN_UPDATES = 1 << 12
# The share of a side's level updates the fitted window may leave to the overflow: the rare
# levels far from the touch (Binance shows bids at a hundredth of the price) would otherwise
# make every window as wide as max_window.
_FIT_OUTLIERS = 0.001


class TopOfBook(NamedTuple):
    """The best ``n`` levels per side as int64 arrays, best first (each may be shorter than ``n``)."""

    bid_px: np.ndarray
    bid_sz: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray


@dataclass(frozen=True, slots=True)
class UpdateBatch:
    """Many book events flattened into arrays: what the kernels consume.

    Event ``e`` has kind ``kinds[e]`` (``SNAPSHOT``/``DELTA``) and owns the level updates
    ``ends[e-1]:ends[e]`` of ``side`` (+1 bid, -1 ask), ``px`` (ticks) and ``sz`` (lots).
    ``ts`` and ``seq`` identify each event in errors and exports.
    """

    kinds: np.ndarray
    ends: np.ndarray
    side: np.ndarray
    px: np.ndarray
    sz: np.ndarray
    ts: np.ndarray
    seq: np.ndarray

    @property
    def n_events(self) -> int:
        return int(self.kinds.shape[0])

    @property
    def n_updates(self) -> int:
        return int(self.px.shape[0])

    @classmethod
    def from_events(cls, events: Iterable[Event], *, trades: bool = False) -> UpdateBatch:
        """Flatten ``BookSnapshot``/``BookDelta`` events (others are ignored) into a batch.

        With ``trades=True`` each ``Trade`` becomes a ``TRADE`` event of one update (side =
        aggressor, 0 if unknown; price; size), in stream order, for the matching engine.
        Raises ValueError for a negative size or price and size lists of different lengths.
        """
        kinds: list[int] = []
        ends: list[int] = []
        side: list[int] = []
        px: list[int] = []
        sz: list[int] = []
        ts: list[int] = []
        seq: list[int] = []
        for ev in events:
            if isinstance(ev, BookDelta):
                kinds.append(k.DELTA)
            elif isinstance(ev, BookSnapshot):
                kinds.append(k.SNAPSHOT)
            elif trades and isinstance(ev, Trade):
                kinds.append(k.TRADE)
                side.append(int(ev.aggressor) if ev.aggressor is not None else 0)
                px.append(ev.price)
                sz.append(ev.size)
                ends.append(len(px))
                ts.append(ev.ts)
                seq.append(ev.seq)
                continue
            else:
                continue
            _check_lengths(ev)
            px += ev.bid_px
            sz += ev.bid_sz
            side += [1] * len(ev.bid_px)
            px += ev.ask_px
            sz += ev.ask_sz
            side += [-1] * len(ev.ask_px)
            ends.append(len(px))
            ts.append(ev.ts)
            seq.append(ev.seq)
        batch = cls(
            np.array(kinds, dtype=np.int8),
            np.array(ends, dtype=_I64),
            np.array(side, dtype=np.int8),
            np.array(px, dtype=_I64),
            np.array(sz, dtype=_I64),
            np.array(ts, dtype=_I64),
            np.array(seq, dtype=_I64),
        )
        if batch.n_updates and batch.sz.min() < 0:
            bad = int(np.argmax(batch.ends > int(np.argmax(batch.sz < 0))))
            raise ValueError(f"negative level size in book event #{bad} (seq {batch.seq[bad]})")
        return batch

    def slice(self, e0: int, e1: int) -> UpdateBatch:
        """Events ``e0:e1`` as a batch of their own (views, no copies of the updates)."""
        u0 = int(self.ends[e0 - 1]) if e0 else 0
        u1 = int(self.ends[e1 - 1]) if e1 > e0 else u0
        return UpdateBatch(
            self.kinds[e0:e1], self.ends[e0:e1] - u0, self.side[u0:u1], self.px[u0:u1], self.sz[u0:u1],
            self.ts[e0:e1], self.seq[e0:e1],
        )  # fmt: skip

    def max_event_updates(self) -> int:
        if not self.n_events:
            return 0
        return int(np.diff(self.ends, prepend=0).max())


def quote_snapshot(q: Quote) -> BookSnapshot:
    """An L1 quote as a one-level-per-side snapshot, for building a book from an L1-only feed.

    >>> quote_snapshot(Quote(1, 1, "SPY", 0, 16764, 300, 16765, 200)).ask_px
    [16765]
    """
    bids = ([q.bid_px], [q.bid_sz]) if q.bid_sz > 0 else ([], [])
    asks = ([q.ask_px], [q.ask_sz]) if q.ask_sz > 0 else ([], [])
    return BookSnapshot(q.ts, q.recv_ts, q.symbol, q.seq, *bids, *asks)


def _check_lengths(ev: BookSnapshot | BookDelta) -> None:
    if len(ev.bid_px) != len(ev.bid_sz) or len(ev.ask_px) != len(ev.ask_sz):
        raise ValueError(f"book event seq {ev.seq}: price and size lists differ in length")


class _Side:
    """One side: the ladder window, its meta, and the sorted overflow (see ``_l2kernels``)."""

    __slots__ = ("lad", "meta", "ok", "os")

    def __init__(self, window: int, capacity: int) -> None:
        self.lad = np.zeros(window, dtype=_I64)
        self.meta = np.array([0, -1, 0, 0], dtype=_I64)
        self.ok = np.zeros(capacity, dtype=_I64)
        self.os = np.zeros(capacity, dtype=_I64)

    @property
    def n(self) -> int:
        return int(self.meta[k.NWIN] + self.meta[k.NOV])

    def reserve(self, extra: int) -> None:
        # A re-centre may move every level into the overflow, so it must be able to hold them all.
        need = self.n + extra
        if need > self.ok.shape[0]:
            cap = max(need, 2 * self.ok.shape[0])
            old_ok, old_os = self.ok, self.os
            nov = int(self.meta[k.NOV])  # only the overflow's levels live here
            self.ok, self.os = np.zeros(cap, dtype=_I64), np.zeros(cap, dtype=_I64)
            self.ok[:nov], self.os[:nov] = old_ok[:nov], old_os[:nov]

    def args(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.lad, self.meta, self.ok, self.os

    def maybe_grow(self, max_window: int) -> None:
        """Widen the ladder when many levels sit in the slower overflow below it.

        Feeds differ by orders of magnitude in how far from the touch they update (a 0.01-tick
        spot book vs a 0.1-tick futures book), so the window adapts instead of being tuned.
        """
        w = self.lad.shape[0]
        if self.meta[k.NOV] <= _GROW_AT or w >= max_window:
            return
        w = min(4 * w, max_window)
        self.relayout(w, int(k.best(self.lad, self.meta, self.ok)) - (w - w // 8))

    def fit(self, sample: np.ndarray, max_window: int) -> None:
        """Size and place the window once for levels at keys like ``sample`` (a sample of them, in
        this side's key space), so that applying them never re-centres the window nor sends a
        level near the touch to the overflow.

        The window reaches from the highest key down to all but the lowest ``_FIT_OUTLIERS`` of
        them, with an eighth of its width spare at each end (room for keys above the sampled
        ones, and a later snapshot's first level finds room below it and keeps the window where
        it is, see ``_l2kernels.put``); never narrower than it is, never wider than ``max_window``.
        """
        if sample.shape[0] == 0:
            return
        hi = int(sample.max())
        if self.n:
            hi = max(hi, int(k.best(self.lad, self.meta, self.ok)))
        lo = int(np.quantile(sample, _FIT_OUTLIERS, method="lower"))
        w = self.lad.shape[0]
        want = min(max(w, -(-(hi - lo + 1) * 4 // 3)), max_window)
        lo = max(lo, hi - (want - want // 4))  # a capped window cannot reach further down
        base = int(self.meta[k.BASE])
        if want == w and base + w // 8 <= lo and hi < base + w:
            return
        self.relayout(want, hi - (want - want // 8))

    def relayout(self, window: int, base: int) -> None:
        """Rebuild the side on a ladder of ``window`` ticks starting at key ``base`` (every level
        must be below ``base + window``); O(window + levels)."""
        keys, sizes = self.keys_sizes()
        n = keys.shape[0]
        if window == self.lad.shape[0]:
            self.lad[:] = 0
        else:
            self.lad = np.zeros(window, dtype=_I64)
        self.reserve(n)
        self.ok[:n] = keys[::-1]
        self.os[:n] = sizes[::-1]
        self.meta[:] = (0, -1, 0, n)
        k.recenter(self.lad, self.meta, self.ok, self.os, base)

    def best_key(self) -> int | None:
        return int(k.best(self.lad, self.meta, self.ok)) if self.n else None

    def keys_sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """All levels, best first (a walk down from the best: a fitted window is mostly empty)."""
        return self.top(self.n)

    def top(self, depth: int) -> tuple[np.ndarray, np.ndarray]:
        keys = np.empty(depth, dtype=_I64)
        sizes = np.empty(depth, dtype=_I64)
        c = k.top_levels(*self.args(), depth, keys, sizes)
        return keys[:c], sizes[:c]


class L2Book:
    """An exact price-level book for one instrument; see the module docstring for an example.

    Crossed books are errors: an event that leaves best bid >= best ask raises
    :class:`CrossedBookError` naming the event, and the book is left as it was before it.
    ``crossing="locked"`` accepts bid == ask and ``crossing="crossed"`` any bid/ask: a
    consolidated quote (an NBBO, whose one level per side is replaced by every quote) can
    lock or even cross across venues, while one venue's own book never can.
    """

    def __init__(
        self,
        symbol: str = "",
        *,
        crossing: Literal["reject", "locked", "crossed"] = "reject",
        window: int = 1 << 12,
        max_window: int = 1 << 18,
        capacity: int = 1024,
    ) -> None:
        if not 16 <= window <= max_window:
            raise ValueError(f"need 16 <= window <= max_window ticks, got window={window}, max_window={max_window}")
        self.symbol = symbol
        if crossing not in _TOLERANCE:
            raise ValueError(f"crossing must be one of {sorted(_TOLERANCE)}, got {crossing!r}")
        self.crossing = crossing
        self._tolerance = _TOLERANCE[crossing]
        self.max_window = max_window
        self._bids = _Side(window, capacity)
        self._asks = _Side(window, capacity)
        self._scratch = np.zeros(64, dtype=_I64)
        self._empty_out = np.zeros((0, 4, 0), dtype=_I64)
        self._fitted: int | None = None  # id() of the last batch the windows were fitted to

    # ----------------------------------------------------------------- updates
    def apply(self, event: Event) -> bool:
        """Apply a ``BookSnapshot`` (replaces the book) or ``BookDelta`` (sets levels).

        Returns False, changing nothing, for any other event: an L2 book is built from depth
        messages only (a venue's separate top-of-book stream runs at its own cadence; feed an
        L1-only source through :func:`quote_snapshot`).
        """
        if not isinstance(event, BookSnapshot | BookDelta):
            return False
        # One event skips the batch bookkeeping: this is the path live consumers take.
        n_bid, n = len(event.bid_px), len(event.bid_px) + len(event.ask_px)
        _check_lengths(event)
        px = np.array(event.bid_px + event.ask_px, dtype=_I64)
        sz = np.array(event.bid_sz + event.ask_sz, dtype=_I64)
        if n and sz.min() < 0:
            raise ValueError(f"negative level size in book event seq {event.seq}")
        side = np.ones(n, dtype=np.int8)
        side[n_bid:] = -1
        self._bids.reserve(n_bid)
        self._asks.reserve(n - n_bid)
        if self._scratch.shape[0] < n:
            self._scratch = np.zeros(n, dtype=_I64)
        snapshot = isinstance(event, BookSnapshot)
        args = (side, px, sz, 0, n, snapshot, self._tolerance, self._scratch)
        if not k.apply_event(*self._bids.args(), *self._asks.args(), *args):
            kind = np.array([k.SNAPSHOT if snapshot else k.DELTA], dtype=np.int8)
            batch = UpdateBatch(kind, np.array([n]), side, px, sz, np.array([event.ts]), np.array([event.seq]))
            self._raise_crossed(batch, 0)
        self._bids.maybe_grow(self.max_window)
        self._asks.maybe_grow(self.max_window)
        return True

    def apply_levels(
        self, bids: Sequence[tuple[int, int]] = (), asks: Sequence[tuple[int, int]] = (), *, snapshot: bool = False
    ) -> None:
        """Set levels given as ``(price_ticks, size_lots)`` pairs as one event."""
        ev_type = BookSnapshot if snapshot else BookDelta
        ev = ev_type(
            0, 0, self.symbol, 0,
            [int(p) for p, _ in bids], [int(s) for _, s in bids],
            [int(p) for p, _ in asks], [int(s) for _, s in asks],
        )  # fmt: skip
        self.apply_batch(UpdateBatch.from_events((ev,)))

    def apply_batch(self, batch: UpdateBatch, *, record_depth: int = 0) -> np.ndarray:
        """Apply every event of ``batch`` in order, the fast path for replays.

        With ``record_depth=N`` returns an int64 array ``[events, 4, N]`` holding, after each
        event, bid_px, bid_sz, ask_px, ask_sz of the top N levels (0/0 where a level is empty).
        On a crossing event raises CrossedBookError; earlier events stay applied, the
        crossing one does not.
        """
        out = np.empty((batch.n_events, 4, record_depth), dtype=_I64) if record_depth else self._empty_out
        self._fit_once(batch)
        if self._scratch.shape[0] < batch.n_updates:  # cheaper than finding the widest event
            widest = batch.max_event_updates()
            if self._scratch.shape[0] < widest:
                self._scratch = np.zeros(widest, dtype=_I64)
        e0 = 0
        while e0 < batch.n_events:
            u0 = int(batch.ends[e0 - 1]) if e0 else 0
            e1 = max(int(np.searchsorted(batch.ends, u0 + _CHUNK, side="right")), e0 + 1)
            u1 = int(batch.ends[e1 - 1])
            n_bid = int(np.count_nonzero(batch.side[u0:u1] > 0))
            self._bids.reserve(n_bid)
            self._asks.reserve(u1 - u0 - n_bid)
            failed = k.apply_events(
                *self._bids.args(), *self._asks.args(),
                batch.kinds[e0:e1], batch.ends[e0:e1] - u0, batch.side[u0:u1], batch.px[u0:u1], batch.sz[u0:u1],
                self._tolerance, self._scratch, out[e0:e1] if record_depth else out, record_depth,
            )  # fmt: skip
            if failed >= 0:
                self._raise_crossed(batch, e0 + failed)
            self._bids.maybe_grow(self.max_window)
            self._asks.maybe_grow(self.max_window)
            e0 = e1
        return out

    # ------------------------------------------------- for compiled consumers (the matcher)
    def kernel_arrays(
        self,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The eight arrays the ``_l2kernels`` functions take: bid side, then ask side."""
        return (*self._bids.args(), *self._asks.args())

    @property
    def tolerance(self) -> int:
        """The crossing tolerance code the kernels take (STRICT, LOCKED_OK or CROSSED_OK)."""
        return self._tolerance

    def prepare(self, batch: UpdateBatch, e0: int, e1: int) -> np.ndarray:
        """Reserve room for events ``e0:e1`` of ``batch``; returns the scratch array to pass.

        The first call for a large batch also sizes the windows for all of it (:meth:`fit`), so a
        consumer that applies it in one kernel call gets the wide-window speed from the start.
        """
        self._fit_once(batch)
        u0 = int(batch.ends[e0 - 1]) if e0 else 0
        u1 = int(batch.ends[e1 - 1]) if e1 else 0
        self._bids.reserve(u1 - u0)
        self._asks.reserve(u1 - u0)
        if self._scratch.shape[0] < u1 - u0:  # no event is wider than the whole range
            self._scratch = np.zeros(max(u1 - u0, 2 * self._scratch.shape[0]), dtype=_I64)
        return self._scratch

    def fit(self, batch: UpdateBatch) -> None:
        """Size and place each side's price window for the levels ``batch`` will set.

        A side is a dense ladder over a window of prices plus a slower sorted overflow below it
        (see ``_l2kernels``). Fitted once from the data, the window holds every level near the
        touch from the first update on: no re-centring, no level shifted in the overflow, and
        no waiting for the ladder to widen between kernel calls. The book's contents do not
        change. :meth:`apply_batch` and :meth:`prepare` call it for batches of 4,096 updates or
        more; call it yourself before applying a smaller batch in pieces.

        >>> book = L2Book(window=16)
        >>> batch = UpdateBatch.from_events([BookDelta(0, 0, "T", 0, list(range(900, 1000)), [1] * 100, [], [])])
        >>> book.fit(batch)
        >>> _ = book.apply_batch(batch)
        >>> book.n_levels(Side.BUY), book.best_bid()
        (100, (999, 1))
        """
        # A strided sample places a window as well as every key would, at a fraction of the cost.
        stride = max(1, batch.n_updates >> 14)
        bids = np.empty(batch.n_updates // stride + 1, dtype=_I64)
        asks = np.empty_like(bids)
        nb, na = k.sample_keys(batch.kinds, batch.ends, batch.side, batch.px, batch.sz, stride, bids, asks)
        self._bids.fit(bids[:nb], self.max_window)
        self._asks.fit(asks[:na], self.max_window)
        self._fitted = id(batch)

    def _fit_once(self, batch: UpdateBatch) -> None:
        # An id() reused by a later batch only skips a fit: the contents never depend on it.
        if batch.n_updates >= _FIT_MIN_UPDATES and id(batch) != self._fitted:
            self.fit(batch)

    def settle(self) -> None:
        """After a compiled consumer applied events: let the ladders widen if they need to."""
        self._bids.maybe_grow(self.max_window)
        self._asks.maybe_grow(self.max_window)

    def raise_crossed(self, batch: UpdateBatch, e: int) -> None:
        """Raise the CrossedBookError for event ``e`` of ``batch`` (which was not applied)."""
        self._raise_crossed(batch, e)

    def _raise_crossed(self, batch: UpdateBatch, e: int) -> None:
        start, end = (int(batch.ends[e - 1]) if e else 0), int(batch.ends[e])
        px, side = batch.px[start:end], batch.side[start:end]
        bids, asks = px[side > 0].tolist(), px[side < 0].tolist()
        raise CrossedBookError(
            f"{self.symbol or 'book'}: {'snapshot' if batch.kinds[e] == k.SNAPSHOT else 'event'} #{e} "
            f"(seq {int(batch.seq[e])}, ts {int(batch.ts[e])}) would cross "
            f"the book (bid levels {bids[:5]}, ask levels {asks[:5]} against best bid {self.best_bid()} / "
            f"best ask {self.best_ask()}); the event was not applied",
            event_index=e,
            seq=int(batch.seq[e]),
        )

    def set_level(self, side: Side, price: int, size: int) -> None:
        """Set one level (size 0 removes it). Raises on a negative size or a crossing."""
        pair = [(price, size)]
        self.apply_levels(bids=pair if side is Side.BUY else (), asks=pair if side is Side.SELL else ())

    def clear(self) -> None:
        """Remove every level."""
        k.clear(self._bids.lad, self._bids.meta)
        k.clear(self._asks.lad, self._asks.meta)

    # ----------------------------------------------------------------- queries
    def best_bid(self) -> tuple[int, int] | None:
        """``(price, size)`` of the best bid, or None when there are no bids."""
        key, size = k.best_level(*self._bids.args())
        return (key, size) if size else None

    def best_ask(self) -> tuple[int, int] | None:
        """``(price, size)`` of the best ask, or None when there are no asks."""
        key, size = k.best_level(*self._asks.args())
        return (-key, size) if size else None

    def touch(self) -> tuple[int, int, int, int]:
        """``(bid, bid_size, ask, ask_size)`` in one call; a size of 0 means that side is empty."""
        return k.touch(*self._bids.args(), *self._asks.args())

    def spread(self) -> int | None:
        """Best ask minus best bid in ticks, or None when a side is empty."""
        bid, bs, ask, az = self.touch()
        return ask - bid if bs and az else None

    def mid2(self) -> int | None:
        """Twice the mid price in ticks (an exact integer), or None when a side is empty."""
        bid, bs, ask, az = self.touch()
        return ask + bid if bs and az else None

    def apply_range(self, batch: UpdateBatch, e0: int, e1: int) -> None:
        """Apply events ``e0:e1`` of ``batch`` in one kernel call (for consumers that advance
        a book through a batch piece by piece, e.g. a strategy's delayed view)."""
        if e1 <= e0:
            return
        scratch = self.prepare(batch, e0, e1)
        part = batch.slice(e0, e1)
        failed = k.apply_events(
            *self.kernel_arrays(), part.kinds, part.ends, part.side, part.px, part.sz, self._tolerance, scratch,
            self._empty_out, 0,
        )  # fmt: skip
        self.settle()
        if failed >= 0:
            self._raise_crossed(part, failed)

    def levels(self, side: Side) -> tuple[np.ndarray, np.ndarray]:
        """All levels of one side as ``(prices, sizes)``, best first."""
        keys, sizes = self._side(side).keys_sizes()
        return (keys if side is Side.BUY else -keys), sizes

    def top(self, n: int) -> TopOfBook:
        """The best ``n`` levels of each side, best first."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        bk, bs = self._bids.top(n)
        ak, az = self._asks.top(n)
        return TopOfBook(bk, bs, -ak, az)

    def size_at(self, side: Side, price: int) -> int:
        """Size resting at ``price`` on ``side`` (0 if no level)."""
        s = self._side(side)
        return self._size(s, price if side is Side.BUY else -price)

    def depth(self, side: Side, within: int) -> int:
        """Total size on ``side`` within ``within`` ticks of that side's best price (inclusive)."""
        if within < 0:
            raise ValueError(f"within must be >= 0 ticks, got {within}")
        return int(k.depth_within(*self._side(side).args(), within))

    def n_levels(self, side: Side) -> int:
        """How many price levels ``side`` holds."""
        return self._side(side).n

    def _side(self, side: Side) -> _Side:
        return self._bids if side is Side.BUY else self._asks

    @staticmethod
    def _size(s: _Side, key: int) -> int:
        return int(k.get(*s.args(), key))

    def snapshot(self, ts: int = 0, seq: int = 0) -> BookSnapshot:
        """The whole book as a ``BookSnapshot`` event (restoring from it rebuilds this book)."""
        bp, bs = self.levels(Side.BUY)
        ap, az = self.levels(Side.SELL)
        return BookSnapshot(ts, ts, self.symbol, seq, bp.tolist(), bs.tolist(), ap.tolist(), az.tolist())

    def __repr__(self) -> str:
        b, a = self._bids.n, self._asks.n
        return f"L2Book({self.symbol!r}, bids={b}, asks={a}, bid={self.best_bid()}, ask={self.best_ask()})"
