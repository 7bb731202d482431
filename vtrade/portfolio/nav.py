"""Delta NAV for many accounts at once: positions as a sparse matrix, marks updated by deltas.

A float64 *view* of every account's NAV, exposures and sector allocation, kept current while
prices stream in (DESIGN.md §3: analytics over many accounts use float64; the exact ledger lives
elsewhere). Pure and deterministic (§2): no I/O, no wall clock, time is the caller's simulated
``ts`` in integer nanoseconds.

Layout
------
*Positions* are an accounts × instruments matrix in **CSR form with per-row slack**: account
``a`` owns ``row_cap[a]`` slots from ``row_ptr[a]`` of the flat arrays ``col`` (instrument),
``qty`` and ``cost`` (cost basis, money), of which the first ``row_len[a]`` are in use. Its
transpose is a **CSC index with per-column slack**: instrument ``i`` owns ``csc_cap[i]`` entries
from ``csc_ptr[i]`` of ``csc_acct`` (holder), ``csc_qty`` (a copy of the quantity, so the
per-instrument walk reads memory sequentially) and ``csc_slot`` (the CSR slot); ``slot_csc``
links each CSR slot back to its CSC entry.

Adding a position (a fill in an instrument the account does not hold) writes one free CSR slot
and one free CSC entry: O(row length) to look the instrument up in a ~20-slot row, no shifting.
A full row (or column) is *relocated* to the end of its arrays with twice the capacity, fixing
the O(length) links that point into it, so appends are amortised O(1) like a growing list; the
arrays themselves double when the end is reached. The holes left behind are reclaimed by
:meth:`NavBook.compact`, an O(positions) rebuild that also drops closed positions, puts rows
back in account order and gives every row ``max(min_slack, slack_ratio × length)`` free slots
(columns alike); it runs by itself when holes make up a third of the allocated slots, and a caller
may run it after a bulk load or at the start of a day. A position closed to zero stays as a
zero-quantity slot (it contributes nothing, and is reused if the account trades the instrument
again) until the next compaction.

The account dimension grows: :meth:`NavBook.add_accounts` appends empty rows (capacity 0, so
the first fill relocates them like any full row) and the per-account arrays are views of buffers
that double when full. Idle accounts cost no work per price batch on the CSC path.

Per account the book keeps ``nav``, ``cash``, ``gross`` (Σ|value|), ``net`` (Σ value) and
``sector`` (``[account, sector]`` = Σ value of positions in that GICS sector), where
``value = qty × price × multiplier``. NAV = cash + net.

Delta updates
-------------
:meth:`NavBook.apply_prices` coalesces a batch per instrument (last accepted update wins; the
delta is taken against the price *before* the batch), then for every instrument whose price
moved applies ``Δ = qty × (p_new − p_old) × multiplier`` to ``nav``, ``net`` and
``sector[a, sector(i)]`` of the accounts that hold it, and ``|qty| × Δp × multiplier`` to
``gross`` (prices are ≥ 0 and multipliers > 0, so ``|q·p₁| − |q·p₀| = |q|·(p₁ − p₀)``). Two
equivalent kernels, chosen per batch by the number of position slots the moved instruments
touch:

- ``"csc"``: walk the moved instruments' CSC lists and scatter into their holders; it touches
  only those accounts, the right choice for a handful of moved instruments;
- ``"rows"``: one pass over every account's CSR row gathering ``Δp[col]`` (zero for instruments
  that did not move), parallel over accounts. When a batch moves most instruments (10 ms of a
  busy market moves nearly all 500), streaming every row once beats random scatter by far and
  needs no locks (each account is written by one thread).

Both are deltas (nothing is re-marked from scratch); they agree to rounding. Deltas accumulate
rounding of about 1e-16 relative per batch; :meth:`NavBook.resync` (called by
:meth:`NavBook.start_day`) replaces the running figures with :meth:`NavBook.full_recompute`.

Out-of-order prices: with ``ts``, an update older than the instrument's last accepted timestamp
is ignored and counted in :attr:`NavBook.stale_updates` (feeds merged from several sources can
deliver late prints; applying one would move the mark backwards). Equal timestamps are accepted.

Analytics: ``unrealized P&L = net − Σ cost basis`` (average-cost method, see
:meth:`NavBook.apply_fills`), ``day P&L = nav − nav at start_day()``, and concentration is the
Herfindahl-Hirschman index of gross weights, ``HHI = Σ (|vᵢ| / Σⱼ|vⱼ|)²`` over an account's open
positions: 1 for a single position, 1/n for n equal ones, NaN with no exposure (``1/HHI`` is
the effective number of positions).

>>> book = NavBook(["AAA", "BBB"], ["Energy", "Utilities"], [10.0, 20.0], n_accounts=2, cash=1000.0)
>>> book.apply_fills([0, 0, 1], [0, 1, 1], [10, -5, 3], [-100.0, 100.0, -60.0])
>>> book.nav.tolist()
[1000.0, 1000.0]
>>> book.apply_prices([0, 1, 1], [11.0, 25.0, 22.0]).instruments  # BBB: last wins, 22
2
>>> book.nav.tolist(), book.gross.tolist()
([1000.0, 1006.0], [220.0, 66.0])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
import pandas as pd
from numba import prange

from vtrade.core.jit import njit

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from vtrade.market.feeds.daily import DailyUniverse

UNKNOWN_SECTOR = "Unknown"
# A moved instrument costs ~one random access per holder on the CSC path, the rows path ~one
# sequential slot read per position held by anyone (parallel). Measured on the 100k × 500
# benchmark the crossover is near 1/4 of all positions; below it the CSC path wins.
_CSC_SHARE = 1 / 4
_SMALL_WORK = 65_536  # positions touched below which the sequential kernel always wins
Path = Literal["auto", "csc", "rows"]
_MAX_SLOTS = 2**31 - 1
# Every array indexed by account. Each is a view of the first ``n_accounts`` rows of a buffer in
# ``NavBook._acct_buf`` that has spare capacity, so add_accounts() is amortised O(1) per account.
_ACCOUNT_ARRAYS = ("_cash", "_nav", "_net", "_gross", "_sector", "_day_open", "_row_ptr", "_row_cap", "_row_len",
                   "_published", "_pub_version")


class Marks(NamedTuple):
    """Marked-to-market figures of every account (arrays indexed by account)."""

    nav: np.ndarray
    net: np.ndarray
    gross: np.ndarray
    sector: np.ndarray  # [account, sector]


class PriceBatch(NamedTuple):
    """What :meth:`NavBook.apply_prices` did with a batch."""

    updates: int  # updates in the batch
    stale: int  # ignored: older than the instrument's last accepted timestamp
    instruments: int  # instruments whose price moved
    path: str  # "csc", "rows" or "none" (nothing moved)


class NavChanges(NamedTuple):
    """Accounts whose published NAV changed after a subscriber's version (see :meth:`NavBook.changed_since`)."""

    version: int  # pass this to the next call
    accounts: np.ndarray  # int64 account ids, ascending
    nav: np.ndarray  # their published NAV


# ---------------------------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _coalesce(ids, px, ts, use_ts, last_ts, flag, new_px, touched):  # type: ignore[no-untyped-def]
    """Last accepted price per instrument; returns (instruments touched, stale updates)."""
    nt = 0
    stale = 0
    for j in range(ids.shape[0]):
        i = ids[j]
        if use_ts:
            if ts[j] < last_ts[i]:
                stale += 1
                continue
            last_ts[i] = ts[j]
        new_px[i] = px[j]
        if not flag[i]:
            flag[i] = True
            touched[nt] = i
            nt += 1
    for t in range(nt):
        flag[touched[t]] = False
    return nt, stale


@njit(cache=True, nogil=True)
def _delta_csc(moved, dpm, csc_ptr, csc_len, csc_qty, csc_acct, sec_of, nav, net, gross, sector):  # type: ignore[no-untyped-def]
    for t in range(moved.shape[0]):
        i = moved[t]
        d = dpm[i]
        s = sec_of[i]
        start = csc_ptr[i]
        for j in range(start, start + csc_len[i]):
            q = csc_qty[j]  # a copy of qty in CSC order: a sequential read, not a gather
            a = csc_acct[j]
            v = q * d
            nav[a] += v
            net[a] += v
            gross[a] += abs(q) * d
            sector[a, s] += v


@njit(cache=True, nogil=True, parallel=True)
def _delta_rows(row_ptr, row_len, col, qty, dpm, sec_of, nav, net, gross, sector):  # type: ignore[no-untyped-def]
    for a in prange(row_len.shape[0]):
        sv = 0.0
        sg = 0.0
        start = row_ptr[a]
        for k in range(start, start + row_len[a]):
            i = col[k]
            d = dpm[i]
            if d != 0.0:
                q = qty[k]
                v = q * d
                sv += v
                sg += abs(q) * d
                sector[a, sec_of[i]] += v
        nav[a] += sv
        net[a] += sv
        gross[a] += sg


@njit(cache=True, nogil=True, parallel=True)
def _mark_all(row_ptr, row_len, col, qty, pm, sec_of, cash, nav, net, gross, sector):  # type: ignore[no-untyped-def]
    """Full mark-to-market from positions (outputs are overwritten)."""
    n_sec = sector.shape[1]
    for a in prange(row_len.shape[0]):
        for s in range(n_sec):
            sector[a, s] = 0.0
        sv = 0.0
        sg = 0.0
        start = row_ptr[a]
        for k in range(start, start + row_len[a]):
            i = col[k]
            v = qty[k] * pm[i]
            sv += v
            sg += abs(v)
            sector[a, sec_of[i]] += v
        net[a] = sv
        gross[a] = sg
        nav[a] = cash[a] + sv


@njit(cache=True, nogil=True)  # sequential: usually a few accounts, where a parallel launch costs more
def _row_stats(acc, row_ptr, row_len, col, qty, cost, pm, cost_sum, hhi, n_open):  # type: ignore[no-untyped-def]
    """Σ cost basis, HHI of gross weights and open-position count of the accounts ``acc``
    (outputs aligned with ``acc``: one account's line costs one row, not the whole book)."""
    for j in range(acc.shape[0]):
        a = acc[j]
        c = 0.0
        g = 0.0
        g2 = 0.0
        n = 0
        start = row_ptr[a]
        for k in range(start, start + row_len[a]):
            if qty[k] != 0.0:
                v = abs(qty[k] * pm[col[k]])
                c += cost[k]
                g += v
                g2 += v * v
                n += 1
        cost_sum[j] = c
        hhi[j] = g2 / (g * g) if g > 0.0 else np.nan
        n_open[j] = n


@njit(cache=True, nogil=True)
def _fills(j0, acc, ins, dq, dcash, fpm, st, row_ptr, row_cap, row_len, col, qty, cost, slot_csc,  # type: ignore[no-untyped-def]
           csc_ptr, csc_cap, csc_len, csc_slot, csc_acct, csc_qty, pm, sec_of, cash, nav, net, gross, sector, min_row,
           min_col):
    """Apply fills ``j0..`` in order. Returns ``(j, 0)`` when all were applied, or ``(j, 1)`` /
    ``(j, 2)`` when fill ``j`` (left untouched) needs more room in the CSR / CSC arrays.

    ``st`` = ``[csr_end, csc_end, csr_garbage, csc_garbage, slots_in_use]``: the first
    unallocated slot of each structure, the slots abandoned by relocated rows/columns, and
    Σ row_len (kept here so the path choice per batch needs no O(accounts) sum)."""
    for j in range(j0, acc.shape[0]):
        a = acc[j]
        i = ins[j]
        d = dq[j]
        start = row_ptr[a]
        n = row_len[a]
        k = -1
        for s in range(start, start + n):
            if col[s] == i:
                k = s
                break
        if k < 0 and d != 0.0:
            # A new position. A full row (column) moves to the end of its arrays with twice the
            # capacity: O(length) now, so appends are amortised O(1); compact() reclaims the hole.
            need_r = max(min_row, 2 * row_cap[a]) if n == row_cap[a] else 0
            m = csc_len[i]
            need_c = max(min_col, 2 * csc_cap[i]) if m == csc_cap[i] else 0
            if st[0] + need_r > col.shape[0]:
                return j, 1
            if st[1] + need_c > csc_slot.shape[0]:
                return j, 2
            if need_r:
                dst = st[0]
                for t in range(n):
                    col[dst + t] = col[start + t]
                    qty[dst + t] = qty[start + t]
                    cost[dst + t] = cost[start + t]
                    slot_csc[dst + t] = slot_csc[start + t]
                    csc_slot[slot_csc[start + t]] = dst + t
                st[2] += row_cap[a]
                row_ptr[a] = dst
                row_cap[a] = need_r
                st[0] += need_r
            if need_c:
                dst = st[1]
                src = csc_ptr[i]
                for t in range(m):
                    s = csc_slot[src + t]
                    csc_slot[dst + t] = s
                    csc_acct[dst + t] = csc_acct[src + t]
                    csc_qty[dst + t] = csc_qty[src + t]
                    slot_csc[s] = dst + t
                st[3] += csc_cap[i]
                csc_ptr[i] = dst
                csc_cap[i] = need_c
                st[1] += need_c
            k = row_ptr[a] + n
            c = csc_ptr[i] + m
            row_len[a] = n + 1
            st[4] += 1
            csc_len[i] = m + 1
            col[k] = i
            qty[k] = 0.0
            cost[k] = 0.0
            slot_csc[k] = c
            csc_slot[c] = k
            csc_acct[c] = a
            csc_qty[c] = 0.0
        cash[a] += dcash[j]
        nav[a] += dcash[j]
        if d == 0.0:
            continue
        q0 = qty[k]
        q1 = q0 + d
        if abs(q1) <= 1e-12 * max(abs(q0), abs(d)):
            q1 = 0.0  # float residue of fractional quantities: the position is closed
        c0 = cost[k]
        if q0 == 0.0 or (q0 > 0.0) == (d > 0.0):
            c1 = c0 + d * fpm[j]  # open or add: basis grows by what was paid
        elif abs(d) <= abs(q0):
            c1 = c0 * (q1 / q0)  # reduce: the remaining units keep their average cost
        else:
            c1 = q1 * fpm[j]  # flip: the new side's basis is the fill price
        if q1 == 0.0:
            c1 = 0.0
        cost[k] = c1
        qty[k] = q1
        csc_qty[slot_csc[k]] = q1
        p = pm[i]
        dv = q1 * p - q0 * p
        nav[a] += dv
        net[a] += dv
        gross[a] += (abs(q1) - abs(q0)) * p
        sector[a, sec_of[i]] += dv
    return acc.shape[0], 0


@njit(cache=True, nogil=True)
def _rebuild(n_ins, row_ptr, row_len, col, qty, cost, min_slack, col_min_slack, ratio):  # type: ignore[no-untyped-def]
    """Compacted CSR (closed positions dropped, rows in account order, fresh slack) and its CSC
    index (lists in account order), in O(positions). Arrays get 12.5 % headroom for relocations."""
    n_acc = row_len.shape[0]
    live = np.zeros(n_acc, np.int64)
    cnt = np.zeros(n_ins, np.int64)
    for a in range(n_acc):
        for k in range(row_ptr[a], row_ptr[a] + row_len[a]):
            if qty[k] != 0.0:
                live[a] += 1
                cnt[col[k]] += 1
    new_ptr = np.empty(n_acc, np.int64)
    row_cap = np.empty(n_acc, np.int64)
    end = 0
    for a in range(n_acc):
        new_ptr[a] = end
        row_cap[a] = live[a] + max(min_slack, int(live[a] * ratio))
        end += row_cap[a]
    size = end + max(end // 8, 64)
    ncol = np.zeros(size, np.int32)
    nqty = np.zeros(size, np.float64)
    ncost = np.zeros(size, np.float64)
    slot_csc = np.zeros(size, np.int32)  # int32 links: 4 bytes a slot less; sizes are checked
    csc_ptr = np.empty(n_ins, np.int64)
    csc_cap = np.empty(n_ins, np.int64)
    cend = 0
    for i in range(n_ins):
        csc_ptr[i] = cend
        csc_cap[i] = cnt[i] + max(col_min_slack, int(cnt[i] * ratio))
        cend += csc_cap[i]
    csize = cend + max(cend // 8, 64)
    csc_slot = np.zeros(csize, np.int32)
    csc_acct = np.zeros(csize, np.int32)
    csc_qty = np.zeros(csize, np.float64)
    csc_len = np.zeros(n_ins, np.int64)
    for a in range(n_acc):
        w = new_ptr[a]
        for k in range(row_ptr[a], row_ptr[a] + row_len[a]):
            if qty[k] != 0.0:
                i = col[k]
                ncol[w] = i
                nqty[w] = qty[k]
                ncost[w] = cost[k]
                c = csc_ptr[i] + csc_len[i]
                slot_csc[w] = c
                csc_slot[c] = w
                csc_acct[c] = a
                csc_qty[c] = qty[k]
                csc_len[i] += 1
                w += 1
    st = np.array([end, cend, 0, 0, live.sum()], np.int64)
    return (new_ptr, row_cap, live, ncol, nqty, ncost, slot_csc,
            csc_ptr, csc_cap, csc_len, csc_slot, csc_acct, csc_qty, st)


# ---------------------------------------------------------------------------------------------
# Input checks: every public mutator validates everything before it changes anything.
# ---------------------------------------------------------------------------------------------


def _ids(values: ArrayLike, n: int, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{what} ids must be a 1-D array, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"{what} ids must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size:
        bad = (arr < 0) | (arr >= n)
        if bad.any():
            raise ValueError(f"unknown {what} id {int(arr[np.argmax(bad)])}: this book has {n} {what}s (0..{n - 1})")
    return arr


def _floats(values: ArrayLike, what: str, *, nonneg: bool = False) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers") from None
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if nonneg:
        bad |= arr < 0
    if bad.any():
        j = int(np.argmax(bad))
        need = "finite and >= 0" if nonneg else "finite"
        raise ValueError(f"{what}[{j}] = {float(arr[j])!r}: must be {need}")
    return arr


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"mismatched array lengths: {lengths}")


# ---------------------------------------------------------------------------------------------
# The book
# ---------------------------------------------------------------------------------------------


class NavBook:
    """NAV, exposures and sector allocation of ``n_accounts`` accounts over a fixed instrument list.

    Accounts are ``0..n_accounts-1`` (:meth:`add_accounts` appends more) and instruments
    ``0..len(symbols)-1`` (the order of ``symbols``; :meth:`instrument_ids` maps names).
    ``sectors`` gives each instrument's GICS
    sector (``None`` → ``"Unknown"``), ``prices`` the initial marks (finite, ≥ 0),
    ``multipliers`` the contract multipliers (> 0, default 1), ``cash`` the initial cash
    (scalar or per account). ``min_slack``/``slack_ratio`` size the free slots of each
    account row and instrument column (see the module notes). ``publish_tol`` and
    ``publish_every_ns`` configure :meth:`changed_since` and :meth:`publish`.

    >>> book = NavBook(["X", "Y", "Z"], ["Energy", "Energy", None], [1.0, 2.0, 3.0], n_accounts=3)
    >>> book.n_accounts, book.sectors
    (3, ('Energy', 'Unknown'))
    """

    # The position store (CSR rows per account, CSC columns per instrument, the slot counters
    # ``_st``): (re)built by compact(), which __init__ calls.
    _row_ptr: np.ndarray
    _row_cap: np.ndarray
    _row_len: np.ndarray
    _col: np.ndarray
    _qty: np.ndarray
    _cost: np.ndarray
    _slot_csc: np.ndarray
    _csc_ptr: np.ndarray
    _csc_cap: np.ndarray
    _csc_len: np.ndarray
    _csc_slot: np.ndarray
    _csc_acct: np.ndarray
    _csc_qty: np.ndarray
    _st: np.ndarray

    def __init__(
        self,
        symbols: Sequence[str],
        sectors: Sequence[str | None],
        prices: ArrayLike,
        *,
        n_accounts: int,
        cash: ArrayLike = 0.0,
        multipliers: ArrayLike | None = None,
        min_slack: int = 4,
        slack_ratio: float = 0.25,
        publish_tol: float = 0.01,
        publish_every_ns: int = 1_000_000_000,
    ) -> None:
        symbols = [str(s) for s in symbols]
        if len(set(symbols)) != len(symbols):
            raise ValueError("symbols must be unique")
        if len(sectors) != len(symbols):
            raise ValueError(f"mismatched array lengths: {len(symbols)} symbols, {len(sectors)} sectors")
        if n_accounts < 0 or int(n_accounts) != n_accounts:
            raise ValueError(f"n_accounts must be a non-negative integer, got {n_accounts!r}")
        if min_slack < 1 or not 0 <= slack_ratio <= 4:
            raise ValueError("min_slack must be >= 1 and slack_ratio in [0, 4]")
        if not (math.isfinite(publish_tol) and publish_tol >= 0) or publish_every_ns < 0:
            raise ValueError("publish_tol must be finite and >= 0, publish_every_ns >= 0")
        n_ins = len(symbols)
        px = _floats(prices, "prices", nonneg=True)
        mult = np.ones(n_ins) if multipliers is None else _floats(multipliers, "multipliers")
        cash_arr = np.broadcast_to(np.asarray(cash, dtype=np.float64), (int(n_accounts),)).copy()
        _same_length(symbols=np.empty(n_ins), prices=px, multipliers=mult)
        if (mult <= 0).any():
            raise ValueError("multipliers must be > 0")
        _floats(cash_arr, "cash")

        self.symbols: tuple[str, ...] = tuple(symbols)
        self._index = {s: i for i, s in enumerate(symbols)}
        names = [UNKNOWN_SECTOR if s is None or s == "" else str(s) for s in sectors]
        self.sectors: tuple[str, ...] = tuple(dict.fromkeys(sorted(set(names) - {UNKNOWN_SECTOR})))
        if UNKNOWN_SECTOR in names:
            self.sectors += (UNKNOWN_SECTOR,)
        sec_pos = {s: k for k, s in enumerate(self.sectors)}
        self._sec_of = np.array([sec_pos[s] for s in names], dtype=np.int32)
        self._min_slack = int(min_slack)
        self._col_min_slack = max(int(min_slack), 16)
        self._ratio = float(slack_ratio)
        self._publish_tol = float(publish_tol)
        self._publish_every_ns = int(publish_every_ns)

        n = int(n_accounts)
        self._price = px.copy()
        self._mult = mult.copy()
        self._pm = px * mult  # price × multiplier: the value of one unit
        self._last_ts = np.full(n_ins, np.iinfo(np.int64).min, dtype=np.int64)
        self._cash = cash_arr
        self._nav = cash_arr.copy()
        self._net = np.zeros(n)
        self._gross = np.zeros(n)
        self._sector = np.zeros((n, len(self.sectors)))
        self._day_open = self._nav.copy()
        # Empty structure with slack: rebuilding from an empty matrix gives every row/column its free slots.
        self._row_ptr = np.zeros(n, dtype=np.int64)
        self._row_len = np.zeros(n, dtype=np.int64)
        self._col = np.zeros(0, dtype=np.int32)
        self._qty = np.zeros(0)
        self._cost = np.zeros(0)
        self._rebuilds = -1
        self._acct_buf: dict[str, np.ndarray] = {}  # filled below, once every per-account array exists
        self.compact()
        # Scratch buffers, reused by every batch (no allocation on the hot path).
        self._flag = np.zeros(n_ins, dtype=np.bool_)
        self._new_px = np.zeros(n_ins)
        self._touched = np.zeros(n_ins, dtype=np.int64)
        self._dpm = np.zeros(n_ins)
        self._stale = 0
        self._published = np.full(n, np.nan)  # NaN: never published, so the first call reports everyone
        self._pub_version = np.zeros(n, dtype=np.int64)
        self._version = 0
        self._last_publish_ts: int | None = None
        # No spare capacity until the first add_accounts(): a fixed-size book costs nothing extra.
        self._acct_buf = {name: getattr(self, name) for name in _ACCOUNT_ARRAYS}

    def __getstate__(self) -> dict[str, object]:
        # Pickle the per-account views, not their buffers: pickle would store both as separate
        # arrays, and the unpickled views would no longer alias the buffers add_accounts() grows.
        state = self.__dict__.copy()
        del state["_acct_buf"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        if self._st.shape[0] < 5:
            # A snapshot from before the slot counter (PortfolioWorker pickles its book): the
            # kernels index st[4] unchecked, so restore it rather than read past the array.
            self._st = np.append(self._st, self._row_len.sum()).astype(np.int64)
        self._acct_buf = {name: getattr(self, name) for name in _ACCOUNT_ARRAYS}

    @classmethod
    def from_universe(
        cls, universe: DailyUniverse, *, n_accounts: int, day: str | None = None, cash: ArrayLike = 0.0,
        **kwargs: object,
    ) -> NavBook:
        """A book over a :class:`~vtrade.market.feeds.daily.DailyUniverse`: instruments in ticker
        order, their GICS sectors, marked at the close of ``day`` (default: each ticker's last close).
        A ticker without a close on ``day`` raises ValueError.
        """
        frame = universe.frame
        if day is not None:
            frame = frame[frame["date"] == pd.Timestamp(day)]
        closes = frame.groupby("ticker", sort=True)["close"].last()
        missing = sorted(set(universe.instruments) - set(closes.index))
        if missing:
            raise ValueError(f"no close for {missing[:5]}{'…' if len(missing) > 5 else ''} on {day}")
        symbols = list(closes.index)
        sectors = [universe.instruments[s].sector for s in symbols]
        return cls(symbols, sectors, closes.to_numpy(), n_accounts=n_accounts, cash=cash, **kwargs)  # type: ignore[arg-type]

    # -- read-only views ------------------------------------------------------------------

    @staticmethod
    def _ro(arr: np.ndarray) -> np.ndarray:
        view = arr.view()
        view.flags.writeable = False
        return view

    @property
    def n_accounts(self) -> int:
        """Number of accounts."""
        return int(self._row_len.shape[0])

    @property
    def n_instruments(self) -> int:
        """Number of instruments."""
        return len(self.symbols)

    @property
    def nav(self) -> np.ndarray:
        """NAV per account (read-only view): cash + Σ qty × price × multiplier."""
        return self._ro(self._nav)

    @property
    def cash(self) -> np.ndarray:
        """Cash per account (read-only view)."""
        return self._ro(self._cash)

    @property
    def gross(self) -> np.ndarray:
        """Gross exposure per account, Σ |value| (read-only view)."""
        return self._ro(self._gross)

    @property
    def net(self) -> np.ndarray:
        """Net exposure per account, Σ value (read-only view)."""
        return self._ro(self._net)

    @property
    def sector_exposure(self) -> np.ndarray:
        """``[account, sector]`` net exposure, sectors in :attr:`sectors` order (read-only view)."""
        return self._ro(self._sector)

    @property
    def prices(self) -> np.ndarray:
        """Current marks per instrument (read-only view)."""
        return self._ro(self._price)

    @property
    def day_pnl(self) -> np.ndarray:
        """NAV − NAV at the last :meth:`start_day` (a new array)."""
        return self._nav - self._day_open

    @property
    def stale_updates(self) -> int:
        """Price updates ignored so far because they were older than the instrument's last."""
        return self._stale

    @property
    def rebuilds(self) -> int:
        """How many times :meth:`compact` has run (by itself or called)."""
        return self._rebuilds

    @property
    def holes(self) -> int:
        """Slots abandoned by relocated rows and columns since the last :meth:`compact`."""
        return int(self._st[2] + self._st[3])

    @property
    def n_positions(self) -> int:
        """Position slots in use (closed positions count until the next rebuild)."""
        return int(self._st[4])

    def nbytes(self) -> dict[str, int]:
        """Bytes held by each group of arrays (the whole state, scratch buffers included)."""
        groups = {
            "csr": (self._row_ptr, self._row_cap, self._row_len, self._col, self._qty, self._cost, self._slot_csc),
            "csc": (self._csc_ptr, self._csc_cap, self._csc_len, self._csc_slot, self._csc_acct, self._csc_qty),
            "accounts": (self._nav, self._cash, self._net, self._gross, self._day_open, self._published,
                         self._pub_version),
            "sector": (self._sector,),
            "instruments": (self._price, self._mult, self._pm, self._last_ts, self._sec_of, self._flag,
                            self._new_px, self._touched, self._dpm),
        }
        out = {k: int(sum(a.nbytes for a in v)) for k, v in groups.items()}
        out["total"] = sum(out.values())
        return out

    def instrument_ids(self, symbols: str | Sequence[str]) -> np.ndarray:
        """Instrument ids of ``symbols``; an unknown symbol raises ValueError.

        >>> NavBook(["A", "B"], ["Energy", "Energy"], [1.0, 1.0], n_accounts=0).instrument_ids(["B", "A"]).tolist()
        [1, 0]
        """
        names = [symbols] if isinstance(symbols, str) else list(symbols)
        unknown = [s for s in names if s not in self._index]
        if unknown:
            raise ValueError(f"unknown instrument(s) {unknown[:5]}")
        return np.array([self._index[s] for s in names], dtype=np.int64)

    # -- mutations ------------------------------------------------------------------------

    def apply_prices(
        self, instrument_ids: ArrayLike, new_prices: ArrayLike, ts: ArrayLike | None = None, *, path: Path = "auto"
    ) -> PriceBatch:
        """Absorb a batch of price updates and bring every account's figures up to date.

        Within the batch the last accepted update of an instrument wins and the delta is taken
        against its price before the batch. With ``ts`` (ns, scalar or per update), an update
        older than the instrument's last accepted timestamp is ignored and counted
        (:attr:`stale_updates`). ``path`` forces a kernel (testing); ``"auto"`` picks by cost.
        Bad input (unknown id, NaN/inf/negative price, mismatched lengths) raises ValueError
        and changes nothing.

        >>> book = NavBook(["A"], ["Energy"], [10.0], n_accounts=1)
        >>> book.apply_fills([0], [0], [2], [-20.0])
        >>> batch = book.apply_prices([0, 0], [12.0, 11.0], ts=[5, 4])  # ts 4 < 5: stale
        >>> batch.updates, batch.stale, batch.instruments, book.stale_updates
        (2, 1, 1, 1)
        >>> float(book.nav[0])
        4.0
        """
        ids = _ids(instrument_ids, self.n_instruments, "instrument")
        px = _floats(new_prices, "prices", nonneg=True)
        _same_length(instrument_ids=ids, new_prices=px)
        use_ts = ts is not None
        if use_ts:
            t = np.asarray(ts)
            if t.ndim == 0:
                t = np.full(len(ids), t)
            if t.dtype.kind not in "iu" and t.size:
                raise ValueError(f"ts must be integer nanoseconds, got dtype {t.dtype}")
            tsa = t.astype(np.int64, copy=False)
            if tsa.ndim != 1:
                raise ValueError(f"ts must be a scalar or a 1-D array, got shape {tsa.shape}")
            _same_length(instrument_ids=ids, ts=tsa)
        else:
            tsa = np.zeros(0, dtype=np.int64)
        if path not in ("auto", "csc", "rows"):
            raise ValueError(f"path must be 'auto', 'csc' or 'rows', got {path!r}")
        if not len(ids):
            return PriceBatch(0, 0, 0, "none")

        nt, stale = _coalesce(ids, px, tsa, use_ts, self._last_ts, self._flag, self._new_px, self._touched)
        self._stale += stale
        touched = self._touched[:nt]
        new = self._new_px[touched]
        moved = touched[new != self._price[touched]]
        if not len(moved):
            return PriceBatch(len(ids), stale, 0, "none")
        new = self._new_px[moved]
        self._dpm[moved] = (new - self._price[moved]) * self._mult[moved]
        if path == "auto":
            work = int(self._csc_len[moved].sum())
            # A parallel pass over every row costs a thread launch: small books take the sequential one.
            # The slot count is a running counter (st[4]), not Σ row_len: a batch that moves a few
            # instruments costs its holders only, however many idle accounts the book has.
            path = "csc" if work <= max(_CSC_SHARE * int(self._st[4]), _SMALL_WORK) else "rows"
        if path == "csc":
            _delta_csc(moved, self._dpm, self._csc_ptr, self._csc_len, self._csc_qty, self._csc_acct, self._sec_of,
                       self._nav, self._net, self._gross, self._sector)
        else:
            _delta_rows(self._row_ptr, self._row_len, self._col, self._qty, self._dpm, self._sec_of, self._nav,
                        self._net, self._gross, self._sector)
        self._dpm[moved] = 0.0  # the rows kernel relies on Δp = 0 for instruments that did not move
        self._price[moved] = new
        self._pm[moved] = new * self._mult[moved]
        return PriceBatch(len(ids), stale, len(moved), path)

    def apply_fills(
        self,
        account_ids: ArrayLike,
        instrument_ids: ArrayLike,
        qty_delta: ArrayLike,
        cash_delta: ArrayLike,
        *,
        fill_prices: ArrayLike | None = None,
    ) -> None:
        """Apply fills in order: position += ``qty_delta``, cash += ``cash_delta``.

        NAV moves by the fill's cash plus the change in marked value (at the current mark, not
        the fill price). Cost basis follows the average-cost method at ``fill_prices`` (default
        ``-cash_delta / (qty_delta × multiplier)``, so fees paid in the same cash delta join the
        basis): opening or adding adds ``qty × fill price``; reducing keeps the average cost of
        the rest; flipping sides starts the new side at the fill price. ``qty_delta == 0`` is a
        pure cash movement on the account (a fee, a dividend). Bad input raises ValueError and
        changes nothing.

        >>> book = NavBook(["A"], ["Energy"], [10.0], n_accounts=1, cash=100.0)
        >>> book.apply_fills([0, 0], [0, 0], [4, -1], [-40.0, 11.0])
        >>> float(book.nav[0]), float(book.frame()["unrealized_pnl"][0])
        (101.0, 0.0)
        """
        acc = _ids(account_ids, self.n_accounts, "account")
        ins = _ids(instrument_ids, self.n_instruments, "instrument")
        dq = _floats(qty_delta, "qty_delta")
        dc = _floats(cash_delta, "cash_delta")
        _same_length(account_ids=acc, instrument_ids=ins, qty_delta=dq, cash_delta=dc)
        mult = self._mult[ins]
        if fill_prices is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                fpm = np.where(dq != 0.0, -dc / np.where(dq != 0.0, dq, 1.0), 0.0)  # per unit incl. multiplier
        else:
            fp = _floats(fill_prices, "fill_prices", nonneg=True)
            _same_length(account_ids=acc, fill_prices=fp)
            fpm = fp * mult
        j = 0
        while j < len(acc):
            j, need = _fills(j, acc, ins, dq, dc, fpm, self._st, self._row_ptr, self._row_cap, self._row_len,
                             self._col, self._qty, self._cost, self._slot_csc, self._csc_ptr, self._csc_cap,
                             self._csc_len, self._csc_slot, self._csc_acct, self._csc_qty, self._pm, self._sec_of,
                             self._cash,
                             self._nav, self._net, self._gross, self._sector, self._min_slack, self._col_min_slack)
            if need:
                self._make_room(need)  # fill j is untouched; resume there

    def add_accounts(self, n: int, cash: ArrayLike = 0.0) -> np.ndarray:
        """Add ``n`` empty accounts with ``cash`` (scalar or per new account); returns their ids.

        Existing accounts keep their ids and figures. The per-account arrays live in buffers
        that double when full, so adding accounts one at a time is amortised O(1) each. A new
        account's position row is empty with no slots: it costs no position memory (and no work
        per price batch on the CSC path) until its first fill gives it a row at the end of the
        CSR arrays. Its NAV is unpublished, so the next :meth:`changed_since` reports it. The
        cash is opening cash (like the constructor's), not a deposit: day P&L starts at 0.

        >>> book = NavBook(["A"], ["Energy"], [10.0], n_accounts=1, cash=100.0)
        >>> book.add_accounts(2, cash=[50.0, 75.0]).tolist()
        [1, 2]
        >>> book.apply_fills([2], [0], [3], [-30.0])
        >>> book.nav.tolist(), book.day_pnl.tolist()
        ([100.0, 50.0, 75.0], [0.0, 0.0, 0.0])
        """
        if int(n) != n or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        n = int(n)
        new_cash = _floats(np.broadcast_to(np.asarray(cash, dtype=np.float64), (n,)), "cash")
        old = self.n_accounts
        total = old + n
        cap = self._acct_buf["_nav"].shape[0]
        if total > cap:
            # Double (at least): k one-by-one additions copy O(k) elements in all.
            cap = max(total, 2 * cap, 16)
            for name in _ACCOUNT_ARRAYS:
                buf = self._acct_buf[name]
                grown = np.empty((cap, *buf.shape[1:]), dtype=buf.dtype)
                grown[:old] = getattr(self, name)
                self._acct_buf[name] = grown
        fresh = {
            "_cash": new_cash, "_nav": new_cash, "_day_open": new_cash, "_net": 0.0, "_gross": 0.0,
            "_sector": 0.0,
            # An empty row with capacity 0: the first fill finds it full and relocates it to the end
            # with min_slack slots, the path every full row already takes; compact() handles it too.
            "_row_ptr": 0, "_row_cap": 0, "_row_len": 0,
            "_published": np.nan, "_pub_version": 0,  # never published: the next changed_since reports it
        }
        for name in _ACCOUNT_ARRAYS:
            buf = self._acct_buf[name]
            buf[old:total] = fresh[name]
            setattr(self, name, buf[:total])
        return np.arange(old, total, dtype=np.int64)

    def _make_room(self, need: int) -> None:
        """Room for a relocated row (``need`` 1) or column (2): compact when at least a third of the
        allocated slots are holes left by relocations, else double the arrays (amortised O(1))."""
        end, garbage = (self._st[0], self._st[2]) if need == 1 else (self._st[1], self._st[3])
        if 3 * garbage >= end:
            self.compact()
            return
        if 2 * max(len(self._col), len(self._csc_slot)) >= _MAX_SLOTS:
            raise MemoryError(f"NavBook holds at most {_MAX_SLOTS} position slots (int32 links)")
        if need == 1:
            self._col, self._qty, self._cost, self._slot_csc = (
                np.concatenate([x, np.zeros_like(x)]) for x in (self._col, self._qty, self._cost, self._slot_csc))
        else:
            self._csc_slot, self._csc_acct, self._csc_qty = (
                np.concatenate([x, np.zeros_like(x)]) for x in (self._csc_slot, self._csc_acct, self._csc_qty))

    def transfer_cash(self, account_ids: ArrayLike, amounts: ArrayLike) -> None:
        """Deposits (> 0) and withdrawals (< 0): external flows, so they move NAV but not day P&L.

        >>> book = NavBook(["A"], ["Energy"], [1.0], n_accounts=1)
        >>> book.transfer_cash([0], [500.0])
        >>> float(book.nav[0]), float(book.day_pnl[0])
        (500.0, 0.0)
        """
        acc = _ids(account_ids, self.n_accounts, "account")
        amt = _floats(amounts, "amounts")
        _same_length(account_ids=acc, amounts=amt)
        np.add.at(self._cash, acc, amt)
        np.add.at(self._nav, acc, amt)
        np.add.at(self._day_open, acc, amt)

    def start_day(self) -> None:
        """Start a trading day: resync from a full recompute (clears delta drift), then take
        every account's NAV as the day's opening NAV for :attr:`day_pnl`."""
        self.resync()
        self._day_open[:] = self._nav

    def compact(self) -> None:
        """Rebuild CSR + CSC in O(positions): drop closed positions, give every row and column
        fresh slack. Runs automatically when a new position finds its row or column full."""
        out = _rebuild(self.n_instruments, self._row_ptr, self._row_len, self._col, self._qty, self._cost,
                       self._min_slack, self._col_min_slack, self._ratio)
        (self._row_ptr, self._row_cap, self._row_len, self._col, self._qty, self._cost, self._slot_csc,
         self._csc_ptr, self._csc_cap, self._csc_len, self._csc_slot, self._csc_acct, self._csc_qty, self._st) = out
        # The rebuilt row arrays are exactly n_accounts long: copy them into the account buffers
        # so their spare capacity survives (the buffers are empty during __init__).
        n = self.n_accounts
        for name in ("_row_ptr", "_row_cap", "_row_len"):
            buf = self._acct_buf.get(name)
            if buf is not None and buf.shape[0] > n:
                buf[:n] = getattr(self, name)
                setattr(self, name, buf[:n])
            elif buf is not None:
                self._acct_buf[name] = getattr(self, name)
        self._rebuilds += 1

    def full_recompute(self) -> Marks:
        """Mark every account from scratch (positions × prices + cash), without changing state.

        The reference the delta figures are checked against, and the full mark-to-market.

        >>> book = NavBook(["A"], ["Energy"], [3.0], n_accounts=2, cash=[1.0, 2.0])
        >>> book.full_recompute().nav.tolist()
        [1.0, 2.0]
        """
        n = self.n_accounts
        nav, net, gross = np.empty(n), np.empty(n), np.empty(n)
        sector = np.empty_like(self._sector)
        _mark_all(self._row_ptr, self._row_len, self._col, self._qty, self._pm, self._sec_of, self._cash, nav, net,
                  gross, sector)
        return Marks(nav, net, gross, sector)

    def resync(self) -> None:
        """Replace the running (delta-maintained) figures with a full recompute."""
        _mark_all(self._row_ptr, self._row_len, self._col, self._qty, self._pm, self._sec_of, self._cash, self._nav,
                  self._net, self._gross, self._sector)

    # -- the portfolio stream ---------------------------------------------------------------

    def changed_since(self, version: int) -> NavChanges:
        """Accounts whose published NAV changed after ``version``, with their NAV.

        The book keeps the NAV it last *published* per account. Each call first publishes:
        every account whose live NAV differs from its published NAV by more than
        ``publish_tol`` gets the live NAV stamped with a new version (small moves accumulate
        until they cross the tolerance, so nothing drifts away unreported). It then returns the
        accounts published after ``version``. A subscriber starts at version 0 (everything),
        keeps the returned ``version`` and is then always within ``publish_tol`` of every live
        NAV after applying the changes; a subscriber lagging several versions behind still gets
        one entry per account with its latest NAV.

        >>> book = NavBook(["A"], ["Energy"], [10.0], n_accounts=3, cash=100.0, publish_tol=0.5)
        >>> first = book.changed_since(0)
        >>> first.version, first.accounts.tolist()
        (1, [0, 1, 2])
        >>> book.transfer_cash([1, 2], [0.25, 3.0])
        >>> later = book.changed_since(first.version)
        >>> later.version, later.accounts.tolist(), later.nav.tolist()
        (2, [2], [103.0])
        """
        if int(version) != version or version < 0 or version > self._version:
            raise ValueError(f"version must be an integer in 0..{self._version}, got {version!r}")
        diff = np.abs(self._nav - self._published)
        moved = ~(diff <= self._publish_tol)  # NaN (never published) counts as moved
        if moved.any():
            self._version += 1
            self._published[moved] = self._nav[moved]
            self._pub_version[moved] = self._version
        accounts = np.flatnonzero(self._pub_version > version)
        return NavChanges(self._version, accounts, self._published[accounts])

    def publish(self, ts: int, version: int) -> NavChanges | None:
        """:meth:`changed_since` at the configured cadence of simulated time: ``None`` until
        ``publish_every_ns`` has elapsed since the last publication (the first call publishes).

        >>> book = NavBook(["A"], ["Energy"], [1.0], n_accounts=1, publish_every_ns=10)
        >>> [c is not None for c in (book.publish(100, 0), book.publish(105, 1), book.publish(110, 1))]
        [True, False, True]
        """
        if self._last_publish_ts is not None and ts - self._last_publish_ts < self._publish_every_ns:
            return None
        changes = self.changed_since(version)
        self._last_publish_ts = int(ts)
        return changes

    # -- DataFrame views ------------------------------------------------------------------

    def frame(self, accounts: ArrayLike | None = None) -> pd.DataFrame:
        """One row per account: ``nav, cash, gross_exposure, net_exposure, unrealized_pnl,
        day_pnl, positions`` (open), ``hhi`` (see the module notes) and ``leverage`` (gross / NAV).

        >>> book = NavBook(["A", "B"], ["Energy", "Utilities"], [10.0, 5.0], n_accounts=2, cash=100.0)
        >>> book.apply_fills([0, 0], [0, 1], [3, -4], [-30.0, 20.0])
        >>> book.frame().loc[0, ["nav", "gross_exposure", "net_exposure", "hhi"]].tolist()
        [100.0, 50.0, 10.0, 0.52]
        """
        acc = np.arange(self.n_accounts) if accounts is None else _ids(accounts, self.n_accounts, "account")
        acc = np.ascontiguousarray(acc, dtype=np.int64)
        return pd.DataFrame(self._stats(acc), index=pd.Index(acc, name="account"))

    def stats(self, account: int) -> dict[str, float]:
        """One account's line of :meth:`frame` as plain numbers (no DataFrame: a dashboard asks
        for its account's summary twice a second)."""
        acc = np.ascontiguousarray(_ids([account], self.n_accounts, "account"), dtype=np.int64)
        return {k: float(v[0]) for k, v in self._stats(acc).items()}

    def _stats(self, acc: np.ndarray) -> dict[str, np.ndarray]:
        n = len(acc)
        cost_sum, hhi, n_open = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
        _row_stats(acc, self._row_ptr, self._row_len, self._col, self._qty, self._cost, self._pm, cost_sum, hhi,
                   n_open)  # fmt: skip
        nav = self._nav[acc]
        with np.errstate(divide="ignore", invalid="ignore"):
            leverage = self._gross[acc] / nav
        return {
            "nav": nav, "cash": self._cash[acc], "gross_exposure": self._gross[acc],
            "net_exposure": self._net[acc], "unrealized_pnl": self._net[acc] - cost_sum,
            "day_pnl": nav - self._day_open[acc], "positions": n_open, "hhi": hhi,
            "leverage": leverage,
        }  # fmt: skip

    def positions(self, account: int) -> pd.DataFrame:
        """Open positions of one account, largest |value| first: ``symbol, sector, qty, price,
        value, cost_basis, unrealized_pnl, weight`` (|value| / gross exposure)."""
        a = int(_ids([account], self.n_accounts, "account")[0])
        sl = slice(int(self._row_ptr[a]), int(self._row_ptr[a] + self._row_len[a]))
        qty, col, cost = self._qty[sl], self._col[sl], self._cost[sl]
        keep = qty != 0.0
        qty, col, cost = qty[keep], col[keep], cost[keep]
        value = qty * self._pm[col]
        gross = np.abs(value).sum()
        order = np.lexsort((col, -np.abs(value)))  # ties by instrument id: deterministic
        df = pd.DataFrame({
            "symbol": np.array(self.symbols, dtype=object)[col],
            "sector": np.array(self.sectors, dtype=object)[self._sec_of[col]],
            "qty": qty, "price": self._price[col], "value": value, "cost_basis": cost,
            "unrealized_pnl": value - cost,
            "weight": np.abs(value) / gross if gross > 0 else np.zeros(len(value)),
        })
        return df.iloc[order].reset_index(drop=True)

    def top_holdings(self, account: int, k: int = 5) -> pd.DataFrame:
        """The ``k`` positions of ``account`` with the largest |value| (ties: lower instrument id).

        >>> book = NavBook(["A", "B", "C"], ["Energy"] * 3, [1.0, 2.0, 3.0], n_accounts=1)
        >>> book.apply_fills([0, 0, 0], [0, 1, 2], [10, -8, 1], [0.0, 0.0, 0.0], fill_prices=[1.0, 2.0, 3.0])
        >>> book.top_holdings(0, 2)[["symbol", "value"]].values.tolist()
        [['B', -16.0], ['A', 10.0]]
        """
        if int(k) != k or k < 0:
            raise ValueError(f"k must be a non-negative integer, got {k!r}")
        return self.positions(account).head(int(k))

    def sector_frame(self, account: int) -> pd.DataFrame:
        """Sector allocation of one account, one row per sector: ``exposure`` (net, the
        delta-maintained figure), ``gross`` (Σ|value|), ``pct_nav`` (exposure / NAV) and
        ``pct_gross`` (gross / the account's gross exposure).

        >>> book = NavBook(["A", "B"], ["Energy", "Utilities"], [10.0, 5.0], n_accounts=1, cash=100.0)
        >>> book.apply_fills([0], [0], [3], [-30.0])
        >>> book.sector_frame(0)["exposure"].to_dict()
        {'Energy': 30.0, 'Utilities': 0.0}
        """
        a = int(_ids([account], self.n_accounts, "account")[0])
        sl = slice(int(self._row_ptr[a]), int(self._row_ptr[a] + self._row_len[a]))
        col = self._col[sl]
        gross = np.bincount(self._sec_of[col], weights=np.abs(self._qty[sl] * self._pm[col]),
                            minlength=len(self.sectors)).astype(float)  # fmt: skip
        exposure = self._sector[a].copy()
        total = self._gross[a]
        with np.errstate(divide="ignore", invalid="ignore"):
            pct_nav = exposure / self._nav[a]
        return pd.DataFrame(
            {"exposure": exposure, "gross": gross, "pct_nav": pct_nav,
             "pct_gross": gross / total if total > 0 else np.zeros(len(gross))},
            index=pd.Index(self.sectors, name="sector"),
        )
