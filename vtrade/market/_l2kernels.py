"""Numba kernels behind :class:`vtrade.market.l2book.L2Book`.

One side of a book lives in a *key space* where a higher key is a better price: bids use
key = price, asks key = -price, so every kernel serves both sides.

A side is a dense **ladder** (``lad[i]`` = size at key ``base + i``) over a window of W ticks
placed so the best level sits near its top, plus a sorted **overflow** (``ok``/``os``,
ascending) for levels below the window. Almost every update lands near the touch, where a
ladder write is O(1) with no search and no shifting; far-away levels (Binance diffs reach
levels thousands of ticks deep) pay a binary search in the small overflow. When a level
arrives above the window, or the window empties while overflow remains, the window is
re-centred: O(W + levels), and rare.

``meta`` holds ``[base, top, nwin, nov]``: the key at ladder index 0, the index of the best
ladder level (-1 if none), the number of ladder levels and the number of overflow levels.
Invariants: ``lad`` has exactly ``nwin`` non-zero entries; every overflow key < ``base``.
Kernels assume the caller reserved overflow capacity for every level that may exist.
"""

from __future__ import annotations

import numpy as np

from vtrade.core.jit import njit

SNAPSHOT = 1  # event kind: clear both sides, then apply the event's levels
DELTA = 0  # event kind: apply the event's levels on top of the book
TRADE = 2  # event kind: a print (one "update": aggressor side, price, size); the book does not change
BASE, TOP, NWIN, NOV = 0, 1, 2, 3


@njit(cache=True, nogil=True, inline="always")
def _find(keys: np.ndarray, n: int, key: int) -> int:
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def _sorted_set(keys: np.ndarray, sizes: np.ndarray, n: int, key: int, size: int) -> int:
    # Shifts run in place, element by element, in the direction that never reads a moved slot:
    # a slice assignment of overlapping parts of one array makes Numba allocate a temporary.
    i = _find(keys, n, key)
    if i < n and keys[i] == key:
        if size == 0:
            for j in range(i, n - 1):
                keys[j] = keys[j + 1]
                sizes[j] = sizes[j + 1]
            return n - 1
        sizes[i] = size
        return n
    if size == 0:
        return n  # venues send removals of levels we do not hold; nothing to do
    for j in range(n, i, -1):
        keys[j] = keys[j - 1]
        sizes[j] = sizes[j - 1]
    keys[i] = key
    sizes[i] = size
    return n + 1


@njit(cache=True, nogil=True)
def recenter(lad: np.ndarray, meta: np.ndarray, ok: np.ndarray, os: np.ndarray, new_base: int) -> None:
    """Move the window to start at ``new_base``; every level must end up below ``new_base + W``."""
    w = lad.shape[0]
    base = meta[BASE]
    n = meta[NOV]
    if meta[NWIN] > 0:
        # Window keys are all above the overflow's, so appending them keeps ``ok`` sorted.
        for i in range(w):
            if lad[i] != 0:
                ok[n] = base + i
                os[n] = lad[i]
                lad[i] = 0
                n += 1
    j = _find(ok, n, new_base)
    top = -1
    for q in range(j, n):
        top = ok[q] - new_base
        lad[top] = os[q]
    meta[BASE] = new_base
    meta[TOP] = top
    meta[NWIN] = n - j
    meta[NOV] = j


@njit(cache=True, nogil=True, inline="always")
def get(lad: np.ndarray, meta: np.ndarray, ok: np.ndarray, os: np.ndarray, key: int) -> int:
    """Size at ``key`` (0 if no level)."""
    i = key - meta[BASE]
    if 0 <= i < lad.shape[0]:
        return lad[i]
    if i < 0:
        n = meta[NOV]
        j = _find(ok, n, key)
        if j < n and ok[j] == key:
            return os[j]
    return 0


@njit(cache=True, nogil=True)
def put(lad: np.ndarray, meta: np.ndarray, ok: np.ndarray, os: np.ndarray, key: int, size: int) -> None:
    """Set the level at ``key`` to ``size``; 0 removes it."""
    w = lad.shape[0]
    head = w - w // 8  # where the best level goes when the window is (re)placed
    if meta[NWIN] + meta[NOV] == 0:
        if size == 0:
            return
        if not w // 8 <= key - meta[BASE] < w:
            # Empty side: put the window around the first level, unless it already holds it
            # with room below (a window sized from the data, see ``L2Book.fit``, stays put).
            meta[BASE] = key - head
    i = key - meta[BASE]
    if i >= w:
        if size == 0:
            return
        recenter(lad, meta, ok, os, key - head)
        i = key - meta[BASE]
    if i < 0:
        meta[NOV] = _sorted_set(ok, os, meta[NOV], key, size)
        return
    old = lad[i]
    lad[i] = size
    if old == 0:
        if size != 0:
            meta[NWIN] += 1
            if i > meta[TOP]:
                meta[TOP] = i
    elif size == 0:
        meta[NWIN] -= 1
        if i == meta[TOP]:
            if meta[NWIN] == 0:
                meta[TOP] = -1
                if meta[NOV] > 0:
                    recenter(lad, meta, ok, os, ok[meta[NOV] - 1] - head)
            else:
                t = i - 1
                while lad[t] == 0:
                    t -= 1
                meta[TOP] = t


@njit(cache=True, nogil=True, inline="always")
def best(lad: np.ndarray, meta: np.ndarray, ok: np.ndarray) -> int:
    """Best key; only meaningful when the side is not empty."""
    if meta[TOP] >= 0:
        return meta[BASE] + meta[TOP]
    return ok[meta[NOV] - 1]


@njit(cache=True, nogil=True)
def best_level(lad: np.ndarray, meta: np.ndarray, ok: np.ndarray, os: np.ndarray) -> tuple[int, int]:
    """``(key, size)`` of the best level; size 0 when the side is empty."""
    if meta[TOP] >= 0:
        return meta[BASE] + meta[TOP], lad[meta[TOP]]
    if meta[NOV] > 0:
        return ok[meta[NOV] - 1], os[meta[NOV] - 1]
    return 0, 0


@njit(cache=True, nogil=True)
def touch(bl, bm, bok, bos, al, am, aok, aos) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    """``(bid, bid_size, ask, ask_size)`` of the best levels in one call; size 0 = empty side."""
    bk, bs = best_level(bl, bm, bok, bos)
    ak, az = best_level(al, am, aok, aos)
    return bk, bs, -ak, az


@njit(cache=True, nogil=True, inline="always")
def count(meta: np.ndarray) -> int:
    return meta[NWIN] + meta[NOV]


@njit(cache=True, nogil=True)
def clear(lad: np.ndarray, meta: np.ndarray) -> None:
    # Zero only the occupied stretch below the best: a window sized from the data may be far
    # wider than the book (an L1 feed is a snapshot of one level per side per quote).
    left = meta[NWIN]
    t = meta[TOP]
    while left > 0:
        if lad[t] != 0:
            lad[t] = 0
            left -= 1
        t -= 1
    meta[TOP] = -1
    meta[NWIN] = 0
    meta[NOV] = 0


@njit(cache=True, nogil=True)
def top_levels(  # type: ignore[no-untyped-def]
    lad, meta, ok, os, depth, out_keys, out_sizes
) -> int:
    """Write the best ``depth`` levels (best first) into the outputs; returns how many."""
    c = 0
    seen = 0
    t = meta[TOP]
    while t >= 0 and c < depth and seen < meta[NWIN]:
        if lad[t] != 0:
            out_keys[c] = meta[BASE] + t
            out_sizes[c] = lad[t]
            c += 1
            seen += 1
        t -= 1
    q = meta[NOV] - 1
    while q >= 0 and c < depth:
        out_keys[c] = ok[q]
        out_sizes[c] = os[q]
        c += 1
        q -= 1
    return c


@njit(cache=True, nogil=True)
def depth_within(lad: np.ndarray, meta: np.ndarray, ok: np.ndarray, os: np.ndarray, band: int) -> int:
    """Total size of the levels within ``band`` keys of the best (inclusive)."""
    if count(meta) == 0:
        return 0
    floor = best(lad, meta, ok) - band
    total = 0
    if meta[TOP] >= 0:
        lo = max(floor - meta[BASE], 0)
        for i in range(lo, meta[TOP] + 1):
            total += lad[i]
    n = meta[NOV]
    for q in range(_find(ok, n, floor), n):
        total += os[q]
    return total


@njit(cache=True, nogil=True)
def _write_row(bl, bm, bok, bos, al, am, aok, aos, out, row, depth, kbuf, sbuf):  # type: ignore[no-untyped-def]
    nb = top_levels(bl, bm, bok, bos, depth, kbuf, sbuf)
    for k in range(depth):
        out[row, 0, k] = kbuf[k] if k < nb else 0
        out[row, 1, k] = sbuf[k] if k < nb else 0
    na = top_levels(al, am, aok, aos, depth, kbuf, sbuf)
    for k in range(depth):
        out[row, 2, k] = -kbuf[k] if k < na else 0
        out[row, 3, k] = sbuf[k] if k < na else 0


@njit(cache=True, nogil=True)
def sample_keys(kinds, ends, side, px, sz, stride, bids, asks):  # type: ignore[no-untyped-def]
    """Where a batch sets levels, per side in key space, for sizing windows (``L2Book.fit``).

    Looks at every ``stride``-th update and writes the keys of those that set a level (not a
    trade, not a removal) into ``bids``/``asks`` (each ``len(px) // stride + 1`` long);
    returns how many of each.
    """
    nb, na = 0, 0
    e = 0
    for u in range(0, px.shape[0], stride):
        while ends[e] <= u:
            e += 1
        if kinds[e] == TRADE or sz[u] <= 0:
            continue
        if side[u] > 0:
            bids[nb] = px[u]
            nb += 1
        else:
            asks[na] = -px[u]
            na += 1
    return nb, na


STRICT, LOCKED_OK, CROSSED_OK = 0, 1, 2  # what an event may leave behind


@njit(cache=True, nogil=True, inline="always")
def _crossed(bid: int, ask: int, tolerance: int) -> bool:
    if tolerance == CROSSED_OK:
        return False
    return bid > ask or (bid == ask and tolerance == STRICT)


@njit(cache=True, nogil=True)
def apply_event(  # type: ignore[no-untyped-def]
    bl, bm, bok, bos, al, am, aok, aos, side, px, sz, start, end, snapshot, tolerance, scratch
) -> bool:
    """Apply one event's updates ``start:end``; False, with the book untouched, if it would
    leave the book crossed or locked beyond ``tolerance`` (STRICT, LOCKED_OK or CROSSED_OK).

    ``scratch`` (len >= end - start) keeps the sizes a delta overwrote, so a crossing delta
    is undone exactly; a snapshot is checked before it clears anything.
    """
    if snapshot:
        hi_bid, lo_ask = -(1 << 62), 1 << 62
        for u in range(start, end):
            if sz[u] > 0:
                if side[u] > 0:
                    hi_bid = max(hi_bid, px[u])
                else:
                    lo_ask = min(lo_ask, px[u])
        if _crossed(hi_bid, lo_ask, tolerance):
            return False
        clear(bl, bm)
        clear(al, am)
    for u in range(start, end):
        if side[u] > 0:
            scratch[u - start] = get(bl, bm, bok, bos, px[u])
            put(bl, bm, bok, bos, px[u], sz[u])
        else:
            scratch[u - start] = get(al, am, aok, aos, -px[u])
            put(al, am, aok, aos, -px[u], sz[u])
    if count(bm) > 0 and count(am) > 0 and _crossed(best(bl, bm, bok), -best(al, am, aok), tolerance):
        # Undo in reverse so a price repeated within the event gets its first value back.
        for u in range(end - 1, start - 1, -1):
            if side[u] > 0:
                put(bl, bm, bok, bos, px[u], scratch[u - start])
            else:
                put(al, am, aok, aos, -px[u], scratch[u - start])
        return False
    return True


@njit(cache=True, nogil=True)
def apply_events(  # type: ignore[no-untyped-def]
    bl, bm, bok, bos, al, am, aok, aos, kinds, ends, side, px, sz, tolerance, scratch, out, depth
):
    """Apply events in order (see :func:`apply_event`); stop at the first that would cross.

    ``kinds[e]``/``ends[e]``: kind and end (exclusive) of event e's updates in ``side/px/sz``
    (side +1 bid, -1 ask). Returns the failed event or -1. ``out[e]`` gets bid_px, bid_sz,
    ask_px, ask_sz of the top ``depth`` levels after event e (0/0 where a level is empty).
    """
    kbuf = np.empty(max(depth, 1), dtype=np.int64)
    sbuf = np.empty(max(depth, 1), dtype=np.int64)
    start = 0
    for e in range(kinds.shape[0]):
        end = ends[e]
        snapshot = kinds[e] == SNAPSHOT
        if kinds[e] == TRADE:
            pass
        elif not apply_event(
            bl, bm, bok, bos, al, am, aok, aos, side, px, sz, start, end, snapshot, tolerance, scratch
        ):
            return e
        if depth > 0:
            _write_row(bl, bm, bok, bos, al, am, aok, aos, out, e, depth, kbuf, sbuf)
        start = end
    return -1
