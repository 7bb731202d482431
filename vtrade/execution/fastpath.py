"""The compiled replay loop: strategy, our orders and both books in one Numba call.

:func:`run` is the single-process replay of :mod:`vtrade.runtime.replay` (its batched mode:
L2, constant latency, no account rules) written over arrays: the venue's merge of market
data and commands (:mod:`vtrade.execution.venue`), the exchange's command side (submit,
cancel, replace of limit and market orders, GTC/IOC/FOK, post-only) and its market side
(:func:`vtrade.execution._match.run`, the same kernel the Python engine calls), the
strategy's feed-delayed view of the book, the exchange's answers reaching the strategy after
the response latency, and a compiled strategy (:mod:`vtrade.execution.desk`) called every
``every``. Nothing in the loop is a Python object: commands, orders and outputs are rows of
int64 arrays, grown by doubling, that :mod:`vtrade.runtime.replay_fast` turns into the
same events and tables as the Python path, lazily.

Every rule below is the Python engine's (:class:`vtrade.execution.engine.ExecutionEngine`),
in the same order, so that both paths give byte-identical outputs; the tests compare their
output hashes on the full Binance capture. Where this module and the engine could drift,
the engine is the reference.

Output rows (``log``): ``[kind, ts, order_no, p0 .. p6]``:

- ``EV_ACCEPTED``;
- ``EV_REJECTED``: p0 reject code (``R_*``), p1 a value for the reason, p2 a status (``S_*``);
- ``EV_FILLED``: p0 price, p1 quantity, p2 leaves, p3 taker (1) or maker (0), p4 arrival mid x 2,
  p5 model (``M_*``), p6 queue ahead at entry (-1: none);
- ``EV_CANCELLED``: p0 leaves, p1 reason (``C_*``), p2 1 if price protection bounded the order;
- ``EV_REPLACED``: p0 quantity, p1 limit price, p2 kept priority.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numba import njit, typeof, types
from numba.core.dispatcher import Dispatcher

from vtrade.execution import desk as dk
from vtrade.execution._match import run as match_run
from vtrade.market import _l2kernels as k

# Output rows.
EV_ACCEPTED, EV_REJECTED, EV_FILLED, EV_CANCELLED, EV_REPLACED = 1, 2, 3, 4, 5
LOG_WIDTH = 10
# Order statuses (S_NONE: the exchange never accepted it).
S_NONE, S_ACCEPTED, S_PARTIAL, S_FILLED, S_CANCELLED = 0, 1, 2, 3, 4
# Reject codes (the engine's RejectCode members the compiled path can produce).
R_INVALID_QUANTITY, R_INVALID_PRICE, R_POST_ONLY, R_UNKNOWN_ORDER, R_NOT_OPEN, R_REPLACE_QTY, R_REPLACE_PRICE = range(7)
R_UNKNOWN_REPLACE, R_NOT_OPEN_REPLACE, R_POST_ONLY_REPLACE = 7, 8, 9
# Cancel reasons.
C_USER, C_IOC, C_FOK, C_UNFILLED = 0, 1, 2, 3
# Fill models (the first three are _match's WHY_* codes).
M_QUEUE, M_THROUGH, M_CROSSED, M_SWEEP = 0, 1, 2, 3
# Per-order columns.
(O_SIDE, O_TYPE, O_PX, O_QTY, O_TIF, O_POST, O_ENTERED, O_ARRIVAL, O_STATUS, O_FILLED, O_NOTIONAL, O_MID2,
 O_SLOT, O_QAE, O_REASON, O_ACCEPT_NO, O_WIDTH) = range(17)  # fmt: skip
# Protection kinds.
PROT_NONE, PROT_BPS, PROT_TICKS = 0, 1, 2
# Scalars of the exchange (``S`` array).
X_NOW, X_NEV, X_NUSED, X_MCLOCK, X_HAS_MCLOCK, X_NACCEPT, X_INPUTS, X_MARKETS, X_NSAMPLE, X_FAILED, X_FAILED_BOOK = (
    range(11))  # fmt: skip
X_SIZE = 11
#: Strategy time skips a silence longer than this (see ``vtrade.runtime.replay.RECORDING_BREAK``).
RECORDING_BREAK = 5 * 24 * 3600 * 1_000_000_000


@njit(cache=True, nogil=True)
def _grow(a: np.ndarray, need: int) -> np.ndarray:
    n = a.shape[0]
    if need <= n:
        return a
    m = max(need, 2 * n)
    b = np.zeros((m, *a.shape[1:]), dtype=a.dtype)
    b[:n] = a
    return b


@njit(cache=True, nogil=True)
def _emit(log, S, kind, ts, no, p0, p1, p2, p3, p4, p5, p6):  # type: ignore[no-untyped-def]
    n = S[X_NEV]
    log = _grow(log, n + 1)
    r = log[n]
    r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9] = kind, ts, no, p0, p1, p2, p3, p4, p5, p6
    S[X_NEV] = n + 1
    return log


# ------------------------------------------------------------------ the exchange's book queries
@njit(cache=True, nogil=True)
def _touch(B):  # type: ignore[no-untyped-def]
    return k.touch(B[0], B[1], B[2], B[3], B[4], B[5], B[6], B[7])


@njit(cache=True, nogil=True)
def _mid2(B, last):  # type: ignore[no-untyped-def]
    bid, bs, ask, az = _touch(B)
    if bs and az:
        return ask + bid
    return 2 * last if last >= 0 else 0


@njit(cache=True, nogil=True)
def _marketable(B, side, has_limit, limit):  # type: ignore[no-untyped-def]
    bid, bs, ask, az = _touch(B)
    if side > 0:
        return az > 0 and (not has_limit or ask <= limit)
    return bs > 0 and (not has_limit or bid >= limit)


@njit(cache=True, nogil=True)
def _bound(B, side, prot_kind, prot_val):  # type: ignore[no-untyped-def]
    """``(has_bound, bound)``: the furthest price a marketable order may reach (engine._protection_bound)."""
    bid, bs, ask, az = _touch(B)
    if side > 0:
        if az == 0:
            return False, 0
        touch = ask
    else:
        if bs == 0:
            return False, 0
        touch = bid
    if prot_kind == PROT_TICKS:
        reach = prot_val
    elif prot_kind == PROT_BPS:
        reach = (touch * prot_val) // 10_000
    else:
        return False, 0
    return True, (touch + reach if side > 0 else touch - reach)


@njit(cache=True, nogil=True)
def _available(used, n_used, rside, price, displayed):  # type: ignore[no-untyped-def]
    for i in range(n_used):
        if used[i, 0] == rside and used[i, 1] == price:
            return max(0, displayed - used[i, 2])
    return displayed


@njit(cache=True, nogil=True)
def _takes(B, side, qty, has_limit, limit, used, n_used, prot_kind, prot_val):  # type: ignore[no-untyped-def]
    """The takes of a ``side`` order against the opposite side (engine._takes + liquidity.walk)."""
    hb, bound = _bound(B, side, prot_kind, prot_val)
    if hb:
        if not has_limit:
            has_limit, limit = True, bound
        else:
            limit = min(limit, bound) if side > 0 else max(limit, bound)
    if side > 0:
        lad, meta, ok, os = B[4], B[5], B[6], B[7]
    else:
        lad, meta, ok, os = B[0], B[1], B[2], B[3]
    c = k.count(meta)
    keys = np.empty(c, dtype=np.int64)
    sizes = np.empty(c, dtype=np.int64)
    c = k.top_levels(lad, meta, ok, os, c, keys, sizes)
    tp = np.empty(c, dtype=np.int64)
    tq = np.empty(c, dtype=np.int64)
    nt = 0
    left = qty
    rside = -side
    for i in range(c):
        if left == 0:
            break
        price = keys[i] if side < 0 else -keys[i]
        if has_limit and (price > limit if side > 0 else price < limit):
            break
        avail = _available(used, n_used, rside, price, sizes[i])
        if avail:
            q = min(left, avail)
            tp[nt], tq[nt] = price, q
            nt += 1
            left -= q
    return tp[:nt], tq[:nt]


@njit(cache=True, nogil=True)
def _record_used(used, S, rside, tp, tq):  # type: ignore[no-untyped-def]
    for j in range(tp.shape[0]):
        n = S[X_NUSED]
        found = False
        for i in range(n):
            if used[i, 0] == rside and used[i, 1] == tp[j]:
                used[i, 2] += tq[j]
                found = True
                break
        if not found:
            used = _grow(used, n + 1)
            used[n, 0], used[n, 1], used[n, 2] = rside, tp[j], tq[j]
            S[X_NUSED] = n + 1
    return used


@njit(cache=True, nogil=True)
def _refresh_used(used, S, kinds, ends, side, px, e0, e1):  # type: ignore[no-untyped-def]
    """The feed restated levels in events e0:e1: what we took there is displayed anew."""
    for e in range(e0, e1):
        if kinds[e] == k.TRADE:
            continue
        if kinds[e] == k.SNAPSHOT:
            S[X_NUSED] = 0
            continue
        u0 = ends[e - 1] if e > 0 else 0
        for u in range(u0, ends[e]):
            n = S[X_NUSED]
            for i in range(n):
                if used[i, 0] == side[u] and used[i, 1] == px[u]:
                    used[i, :] = used[n - 1, :]
                    S[X_NUSED] = n - 1
                    break


# ------------------------------------------------------------------ our orders
@njit(cache=True, nogil=True)
def _leaves(orders, no):  # type: ignore[no-untyped-def]
    o = orders[no]
    st = o[O_STATUS]
    if st in (S_ACCEPTED, S_PARTIAL):
        return o[O_QTY] - o[O_FILLED]
    return 0


@njit(cache=True, nogil=True)
def _fill(orders, log, S, T, no, price, qty, taker, model):  # type: ignore[no-untyped-def]
    """engine._fill for one take: the order's state, the fill row, the resting table."""
    o = orders[no]
    q = min(qty, _leaves(orders, no))
    if q > 0:
        o[O_FILLED] += q
        o[O_NOTIONAL] += q * price
        o[O_STATUS] = S_FILLED if o[O_FILLED] == o[O_QTY] else S_PARTIAL
        queue = o[O_QAE] if not taker else -1
        log = _emit(log, S, EV_FILLED, S[X_NOW], no, price, q, _leaves(orders, no), taker, o[O_MID2], model, queue)
    _sync_slot(orders, T, no)
    return log


@njit(cache=True, nogil=True)
def _sync_slot(orders, T, no):  # type: ignore[no-untyped-def]
    o = orders[no]
    slot = o[O_SLOT]
    if slot < 0:
        return
    if o[O_STATUS] == S_ACCEPTED or o[O_STATUS] == S_PARTIAL:
        T.leaves[slot] = o[O_QTY] - o[O_FILLED]
    else:
        _free_slot(T, slot)
        o[O_SLOT] = -1


@njit(cache=True, nogil=True)
def _free_slot(T, slot):  # type: ignore[no-untyped-def]
    T.side[slot] = 0
    T.leaves[slot] = 0
    T.slot_no[slot] = 0
    n = T.meta[0]
    T.free[n] = slot
    T.meta[0] = n + 1


@njit(cache=True, nogil=True)
def _close(orders, log, S, T, no, reason, bounded=0):  # type: ignore[no-untyped-def]
    leaves = _leaves(orders, no)
    orders[no, O_STATUS] = S_CANCELLED
    orders[no, O_REASON] = reason
    _sync_slot(orders, T, no)
    return _emit(log, S, EV_CANCELLED, S[X_NOW], no, leaves, reason, bounded, 0, 0, 0, 0)


@njit(cache=True, nogil=True)
def _work(orders, log, S, T, B, used, no, last, prot_kind, prot_val):  # type: ignore[no-untyped-def]
    """engine._work for a new or re-priced limit/market order at L2."""
    o = orders[no]
    side = o[O_SIDE]
    has_limit = o[O_TYPE] == dk.LIMIT
    limit = o[O_PX]
    n_used = S[X_NUSED]
    leaves = _leaves(orders, no)
    if o[O_MID2] == 0:
        o[O_MID2] = _mid2(B, last)
    if o[O_TIF] == dk.FOK:
        tp, tq = _takes(B, side, leaves, has_limit, limit, used, n_used, prot_kind, prot_val)
        if tq.sum() < leaves:
            return _close(orders, log, S, T, no, C_FOK), used
    if _marketable(B, side, has_limit, limit):
        tp, tq = _takes(B, side, leaves, has_limit, limit, used, n_used, prot_kind, prot_val)
        if tp.shape[0]:
            used = _record_used(used, S, -side, tp, tq)
            for j in range(tp.shape[0]):
                log = _fill(orders, log, S, T, no, tp[j], tq[j], 1, M_SWEEP)
    st = o[O_STATUS]
    if st not in (S_ACCEPTED, S_PARTIAL):
        return log, used
    if o[O_TIF] == dk.IOC or o[O_TIF] == dk.FOK or not has_limit:
        # A market order's reason says whether price protection stopped it (engine._unfilled_reason).
        bounded = 1 if _bound(B, side, prot_kind, prot_val)[0] else 0
        return _close(orders, log, S, T, no, C_IOC if o[O_TIF] == dk.IOC else C_UNFILLED, bounded), used
    # Join the back of the level's queue (QueueModel.on_join: front = the level's displayed size).
    size = k.get(B[0], B[1], B[2], B[3], limit) if side > 0 else k.get(B[4], B[5], B[6], B[7], -limit)
    slot = _add_slot(T, no, side, limit, o[O_QTY] - o[O_FILLED], float(size))
    o[O_SLOT] = slot
    o[O_QAE] = size
    return log, used


@njit(cache=True, nogil=True)
def _add_slot(T, no, side, price, leaves, front):  # type: ignore[no-untyped-def]
    n = T.meta[0]
    if n == 0:
        raise MemoryError("the resting-order table is full")  # the caller grows it before each command
    slot = T.free[n - 1]
    T.meta[0] = n - 1
    T.side[slot], T.px[slot], T.leaves[slot], T.front[slot], T.traded[slot] = side, price, leaves, front, 0.0
    T.slot_no[slot] = no
    return slot


class Table(NamedTuple):
    """Our resting L2 orders (the engine's ``_RestingTable``): the rows ``_match.run`` works on."""

    side: np.ndarray
    px: np.ndarray
    leaves: np.ndarray
    front: np.ndarray
    traded: np.ndarray
    slot_no: np.ndarray  # which order rests in each slot
    free: np.ndarray  # a stack of free slots (``meta[0]`` of them): the lowest never-used slot first
    meta: np.ndarray
    f_slot: np.ndarray  # fills of the last kernel call
    f_qty: np.ndarray
    f_why: np.ndarray


def new_table(capacity: int = 8) -> Table:
    """An empty table of ``capacity`` slots."""
    z = np.zeros(capacity, dtype=np.int64)
    return Table(np.zeros(capacity, dtype=np.int8), z.copy(), z.copy(), np.zeros(capacity), np.zeros(capacity),
                 z.copy(), np.arange(capacity - 1, -1, -1, dtype=np.int64), np.array([capacity], dtype=np.int64),
                 z.copy(), z.copy(), z.copy())  # fmt: skip


@njit(cache=True, nogil=True)
def _room(T):  # type: ignore[no-untyped-def]
    """T with at least one free slot: the engine's table doubles when full, the new slots used lowest first."""
    if T.meta[0] > 0:
        return T
    n = T.side.shape[0]
    free = np.arange(2 * n - 1, n - 1, -1).astype(np.int64)
    free = np.concatenate((free, np.zeros(n, dtype=np.int64)))
    meta = np.array([n], dtype=np.int64)
    return Table(_grow(T.side, 2 * n), _grow(T.px, 2 * n), _grow(T.leaves, 2 * n), _grow(T.front, 2 * n),
                 _grow(T.traded, 2 * n), _grow(T.slot_no, 2 * n), free, meta, _grow(T.f_slot, 2 * n),
                 _grow(T.f_qty, 2 * n), _grow(T.f_why, 2 * n))  # fmt: skip


@njit(cache=True, nogil=True)
def _is_open(orders, no):  # type: ignore[no-untyped-def]
    st = orders[no, O_STATUS]
    return st in (S_ACCEPTED, S_PARTIAL)


@njit(cache=True, nogil=True)
def _known(orders, no):  # type: ignore[no-untyped-def]
    return 0 < no < orders.shape[0] and orders[no, O_STATUS] != S_NONE


@njit(cache=True, nogil=True)
def _submit(orders, log, S, T, B, used, no, last, prot_kind, prot_val):  # type: ignore[no-untyped-def]
    """engine._submit: the checks, acceptance, then _work."""
    o = orders[no]
    now = S[X_NOW]
    is_limit = o[O_TYPE] == dk.LIMIT
    if o[O_QTY] <= 0:
        return _emit(log, S, EV_REJECTED, now, no, R_INVALID_QUANTITY, o[O_QTY], 0, 0, 0, 0, 0), used, T
    if is_limit and o[O_PX] <= 0:
        return _emit(log, S, EV_REJECTED, now, no, R_INVALID_PRICE, o[O_PX], 0, 0, 0, 0, 0), used, T
    if o[O_POST] and (not is_limit or _marketable(B, o[O_SIDE], True, o[O_PX])):
        return _emit(log, S, EV_REJECTED, now, no, R_POST_ONLY, 0, 0, 0, 0, 0, 0), used, T
    o[O_STATUS] = S_ACCEPTED
    o[O_ACCEPT_NO] = S[X_NACCEPT]
    S[X_NACCEPT] += 1
    o[O_MID2] = _mid2(B, last)
    log = _emit(log, S, EV_ACCEPTED, now, no, 0, 0, 0, 0, 0, 0, 0)
    T = _room(T)
    log, used = _work(orders, log, S, T, B, used, no, last, prot_kind, prot_val)
    return log, used, T


@njit(cache=True, nogil=True)
def _cancel(orders, log, S, T, no):  # type: ignore[no-untyped-def]
    now = S[X_NOW]
    if not _known(orders, no):
        return _emit(log, S, EV_REJECTED, now, no, R_UNKNOWN_ORDER, 0, 0, 0, 0, 0, 0)
    if not _is_open(orders, no):
        return _emit(log, S, EV_REJECTED, now, no, R_NOT_OPEN, 0, orders[no, O_STATUS], 0, 0, 0, 0)
    return _close(orders, log, S, T, no, C_USER)


@njit(cache=True, nogil=True)
def _replace(orders, log, S, T, B, used, no, qty, px, last, prot_kind, prot_val):  # type: ignore[no-untyped-def]
    """engine._replace for a limit order (the only kind that stays open at L2)."""
    now = S[X_NOW]
    if not _known(orders, no):
        return _emit(log, S, EV_REJECTED, now, no, R_UNKNOWN_REPLACE, 0, 0, 0, 0, 0, 0), used, T
    o = orders[no]
    if not _is_open(orders, no):
        return _emit(log, S, EV_REJECTED, now, no, R_NOT_OPEN_REPLACE, 0, o[O_STATUS], 0, 0, 0, 0), used, T
    if qty != dk.KEEP and qty <= o[O_FILLED]:
        return _emit(log, S, EV_REJECTED, now, no, R_REPLACE_QTY, qty, o[O_FILLED], 0, 0, 0, 0), used, T
    if px != dk.KEEP and px <= 0:
        return _emit(log, S, EV_REJECTED, now, no, R_REPLACE_PRICE, px, 0, 0, 0, 0, 0), used, T
    new_qty = o[O_QTY] if qty == dk.KEEP else qty
    new_px = o[O_PX] if px == dk.KEEP else px
    if o[O_POST] and _marketable(B, o[O_SIDE], True, new_px):
        return _emit(log, S, EV_REJECTED, now, no, R_POST_ONLY_REPLACE, 0, 0, 0, 0, 0, 0), used, T
    kept = new_px == o[O_PX] and new_qty <= o[O_QTY]
    o[O_QTY], o[O_PX] = new_qty, new_px
    log = _emit(log, S, EV_REPLACED, now, no, new_qty, new_px, 1 if kept else 0, 0, 0, 0, 0)
    if kept:
        _sync_slot(orders, T, no)
        return log, used, T
    if o[O_SLOT] >= 0:
        _free_slot(T, o[O_SLOT])
        o[O_SLOT] = -1
    T = _room(T)
    log, used = _work(orders, log, S, T, B, used, no, last, prot_kind, prot_val)
    return log, used, T


@njit(cache=True, nogil=True)
def _notice(d, log, orders, i):  # type: ignore[no-untyped-def]
    """The strategy hears output row ``i`` (runtime.replay._Runner._notice)."""
    kind, no = log[i, 0], log[i, 2]
    if kind == EV_FILLED:
        d.st[dk.POSITION] += log[i, 4] * orders[no, O_SIDE]
        if log[i, 5] == 0:
            dk.forget(d, no)
    elif kind in (EV_CANCELLED, EV_REJECTED):
        dk.forget(d, no)


@njit(cache=True, nogil=True)
def _sample(samples, n, ts, B, last):  # type: ignore[no-untyped-def]
    samples = _grow(samples, n + 1)
    bid, bs, ask, az = _touch(B)
    r = samples[n]
    r[0], r[1], r[2], r[3], r[4], r[5] = ts, bid, bs, ask, az, last
    return samples


@njit(cache=True, nogil=True)
def _next_tick(ts, every, pending, has_data, next_data, in_flight):  # type: ignore[no-untyped-def]
    """runtime.replay._Runner._next_tick: ``ts + every``, except across a break in the recording."""
    if pending or not has_data or next_data - ts <= RECORDING_BREAK or in_flight:
        return ts + every
    return ts + max(1, (next_data - ts) // every) * every


def _run(  # type: ignore[no-untyped-def]
    strategy, d, B, bscratch, vscratch,
    kinds, ends, side, px, sz, ts, clock, t_first, t_last, every, latency, tol, qkind, qn, prot_kind, prot_val,
    T, orders, log, samples, used, S,
):  # fmt: skip
    """Replay the batch with ``strategy``; returns the grown ``(T, orders, log, samples, used)``.

    ``d`` is the strategy's desk (its book arrays are the feed-delayed view); ``B`` the
    exchange's book arrays; ``latency`` = (entry, response, feed) ns; ``t_first`` < 0: no events.
    ``S[X_FAILED]`` >= 0 on return names an event that would have crossed a book (``S[X_FAILED_BOOK]``
    0: the exchange's, 1: the strategy's view), where the run stopped.
    """
    n = kinds.shape[0]
    entry, resp, feed = latency[0], latency[1], latency[2]
    V = (d.bl, d.bm, d.bok, d.bos, d.al, d.am, d.aok, d.aos)
    no_depth = np.zeros((0, 4, 0), dtype=np.int64)
    kstate = np.array([-1], dtype=np.int64)
    last = -1
    cq = np.zeros((64, 4), dtype=np.int64)  # commands in flight, FIFO: kind, order no, arrival, (replace) quantity
    cpx = np.zeros(64, dtype=np.int64)  # (replace) price
    c_head, c_tail = 0, 0
    inbox = 0  # the first output row the strategy has not heard of yet
    at, view_at = 0, 0
    has_timer, timer = t_first >= 0, t_first
    S[X_FAILED] = -1
    while at < n or c_head < c_tail or has_timer:
        # The venue first: its next input, if due by the strategy's next item (Venue.advance).
        chosen, t = 0, 0
        if at < n and (c_head == c_tail or clock[at] <= cq[c_head, 2]):
            chosen, t = 1, clock[at]
        elif c_head < c_tail:
            chosen, t = 2, cq[c_head, 2]
        if chosen and has_timer and t > timer:
            chosen = 0
        if chosen == 1:
            has_lim, lim = False, 0
            if c_head < c_tail:
                has_lim, lim = True, cq[c_head, 2]
            if has_timer:
                lim = min(lim, timer) if has_lim else timer
                has_lim = True
            end = n if not has_lim else np.searchsorted(clock, lim, side="right")
            e = at
            while e < end:  # engine._market_events
                nxt, nf, failed = match_run(
                    B[0], B[1], B[2], B[3], B[4], B[5], B[6], B[7], kinds, ends, side, px, sz, e, end, tol, bscratch,
                    T.side, T.px, T.leaves, T.front, T.traded, qkind, qn, T.f_slot, T.f_qty, T.f_why, kstate,
                )  # fmt: skip
                if S[X_NUSED] > 0:
                    _refresh_used(used, S, kinds, ends, side, px, e, nxt if failed < 0 else failed)
                if failed >= 0:
                    S[X_FAILED], S[X_FAILED_BOOK] = failed, 0
                    return T, orders, log, samples, used
                S[X_NOW] = max(S[X_NOW], ts[e:nxt].max())
                if kstate[0] >= 0:
                    last = kstate[0]
                for i in range(nf):
                    slot = T.f_slot[i]
                    log = _fill(orders, log, S, T, T.slot_no[slot], T.px[slot], T.f_qty[i], 0, T.f_why[i])
                e = nxt
                if nf:
                    break
            S[X_INPUTS] += e - at
            S[X_MARKETS] += e - at
            S[X_MCLOCK] = max(S[X_MCLOCK], clock[e - 1]) if S[X_HAS_MCLOCK] else clock[e - 1]
            S[X_HAS_MCLOCK] = 1
            at = e
            continue
        if chosen == 2:
            kind, no, arrival, qty = cq[c_head, 0], cq[c_head, 1], cq[c_head, 2], cq[c_head, 3]
            cprice = cpx[c_head]
            c_head += 1
            S[X_MCLOCK] = max(S[X_MCLOCK], arrival) if S[X_HAS_MCLOCK] else arrival
            S[X_HAS_MCLOCK] = 1
            S[X_NOW] = max(S[X_NOW], arrival)
            S[X_INPUTS] += 1
            if kind == dk.SUBMIT:
                log, used, T = _submit(orders, log, S, T, B, used, no, last, prot_kind, prot_val)
            elif kind == dk.CANCEL:
                log = _cancel(orders, log, S, T, no)
            else:
                log, used, T = _replace(orders, log, S, T, B, used, no, qty, cprice, last, prot_kind, prot_val)
            continue
        # The strategy's timer.
        now = timer
        has_timer = False
        upto = np.searchsorted(clock, now - feed, side="right")
        if upto > view_at:  # _advance_view
            u0 = ends[view_at - 1] if view_at > 0 else 0
            u1 = ends[upto - 1]
            failed = k.apply_events(
                V[0], V[1], V[2], V[3], V[4], V[5], V[6], V[7], kinds[view_at:upto], ends[view_at:upto] - u0,
                side[u0:u1], px[u0:u1], sz[u0:u1], tol, vscratch, no_depth, 0,
            )  # fmt: skip
            if failed >= 0:
                S[X_FAILED], S[X_FAILED_BOOK] = view_at + failed, 1
                return T, orders, log, samples, used
            for e in range(upto - 1, view_at - 1, -1):
                if kinds[e] == k.TRADE:
                    d.st[dk.LAST_TRADE] = px[ends[e] - 1]
                    d.st[dk.HAS_LAST] = 1
                    break
            view_at = upto
        quiet = c_head == c_tail
        has_data = quiet and at < n
        next_data = clock[at] if has_data else 0
        while inbox < S[X_NEV] and log[inbox, 1] + resp <= now:  # answers due by now rank before the timer
            _notice(d, log, orders, inbox)
            inbox += 1
        d.st[dk.NOW] = now
        samples = _sample(samples, S[X_NSAMPLE], now, B, last)
        S[X_NSAMPLE] += 1
        d.st[dk.N_CMD] = 0
        strategy(d)
        for j in range(d.st[dk.N_CMD]):  # _route: each command reaches the exchange after the entry latency
            c = d.cmd[j]
            arrival = now + entry
            if S[X_HAS_MCLOCK] and arrival < S[X_MCLOCK]:
                arrival = S[X_MCLOCK]
            if c_tail >= cq.shape[0]:
                keep = c_tail - c_head
                cq2 = np.zeros((max(64, 2 * keep), 4), dtype=np.int64)
                cpx2 = np.zeros(cq2.shape[0], dtype=np.int64)
                cq2[:keep] = cq[c_head:c_tail]
                cpx2[:keep] = cpx[c_head:c_tail]
                cq, cpx, c_head, c_tail = cq2, cpx2, 0, keep
            cq[c_tail, 0], cq[c_tail, 1], cq[c_tail, 2], cq[c_tail, 3] = c[0], c[1], arrival, c[5]
            cpx[c_tail] = c[4]
            c_tail += 1
            if c[0] == dk.SUBMIT:
                no = c[1]
                orders = _grow(orders, no + 1)
                o = orders[no]
                o[O_SIDE], o[O_TYPE], o[O_PX], o[O_QTY], o[O_TIF], o[O_POST] = c[2], c[3], c[4], c[5], c[6], c[7]
                o[O_ENTERED], o[O_ARRIVAL], o[O_STATUS], o[O_SLOT], o[O_QAE], o[O_REASON] = now, arrival, 0, -1, -1, -1
        d.st[dk.N_CMD] = 0
        if now < t_last:
            timer = _next_tick(now, every, inbox < S[X_NEV], has_data, next_data, c_head < c_tail)
            has_timer = True
    return T, orders, log, samples, used


@functools.cache
def _loop(argtypes: tuple[Any, ...]) -> Dispatcher:
    # An explicit signature whose strategy is a first-class function type (a pointer to the
    # jitted strategy), not the strategy's own dispatcher type: the loop is then compiled
    # once for every strategy and cached on disk like the kernels (a dispatcher argument
    # would make Numba compile the loop anew for each strategy in each process).
    return njit(argtypes, cache=True, nogil=True)(_run)


def run(
    strategy: Callable[[dk.Desk], None], d: dk.Desk, *args: Any
) -> tuple[Table, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Replay a batch with ``strategy`` (a jitted function of a :class:`~vtrade.execution.desk.Desk`
    returning nothing). The arguments after the desk are those of :func:`_run`; returns the
    grown ``(table, orders, log, samples, used)``."""
    desk_type = typeof(d)
    argtypes = (types.FunctionType(types.none(desk_type)), desk_type, *(typeof(a) for a in args))
    try:
        return _loop(argtypes)(strategy, d, *args)
    except TypeError as exc:
        raise TypeError(f"a compiled strategy must be an @njit function of one Desk returning nothing: {exc}") from exc
