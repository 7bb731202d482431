"""Numba kernels behind :class:`vtrade.game.leaderboard.EmbeddedLeaderboards`: one board's
members in sorted blocks of int64, the whole board in **one** int64 array (a *store*).

**Order.** Entries are ``(packed score, member)`` pairs kept ascending by packed score, then by
the member's UTF-8 bytes: exactly a Redis Sorted Set's order, so rank ``r`` is ascending
position ``N - 1 - r``. Members are *slots* (small ints the caller hands out); per slot the store
keeps the current packed score and the member's bytes (in an arena), so equal packed scores are
ordered by bytes here, in the kernel, with no Python fix-up. Equal packed scores are rare (the
packing holds the simulated second), so the comparison is an int compare and almost never a
byte compare.

**Why blocks of int64.** The previous structure (Python lists of ``bytes`` sort keys) spent about
half of an update at 1,000,000 members in bisect steps that each dereferenced a scattered bytes
object (py-spy). Here a block's packed scores are contiguous (``CAP`` per block, 8 to a cache
line), the block maxima that the first search runs over are one small array that stays in the
cache, and a move asks for both blocks' lines (:func:`_prefetch`) before searching either.

**Why one array.** A Numba call costs about 0.2 µs plus 0.17 µs per array argument (measured
here), and an update at 1M members has about 3 µs in all; so every kernel takes the store and
scalars, and indexes it by the offsets of :func:`_layout`. Growing a region means a new, larger
store (:func:`resized`), which the caller makes when a kernel says so: every kernel that may
add a block needs one spare and returns :data:`FULL` once it used the last one; :func:`add`
returns :data:`NO_ROOM`, writing nothing, when the slot or the member's bytes do not fit.

Layout of a store ``st``::

    header   HEADER words: N, NB, NBCAP, SLOTCAP, ARENACAP, ARENA_USED, CAP
    order    NBCAP   block id at each position (ascending); positions >= NB hold the free ids
    lens     NBCAP   entries of the block at each position
    maxk     NBCAP   packed score of that block's last (largest) entry
    maxs     NBCAP   slot of that entry
    keys     NBCAP x CAP  per block id: packed scores, ascending within the block
    slots    NBCAP x CAP  per block id: the slots beside them
    tab      SLOTCAP x 3  per slot: packed score, arena byte offset, byte length
    arena    ARENACAP bytes (ARENACAP // 8 words): members' UTF-8, appended

**Memory safety.** Kernels never index outside the store, even when the caller's state is
inconsistent (two threads writing one board, which the structure does not support): such a
caller gets wrong standings, never a write outside the array. This costs a few compares.

A full block first evens out with a neighbour that is under three quarters full, and splits in
two only if neither is; a block that falls under a quarter merges with its fuller neighbour if
the two fit in half a block, else evens out with it. So every block but a lone one holds at
least ``CAP / 4`` entries (at most ``4 N / CAP + 1`` blocks whatever the history), and the
number of blocks, whose change shifts every later position, changes little once the board stops
growing (measured at 1M members, random updates right after the load: 1,084 splits in the first
200,000, 129 in the next, 29 in the third). A rank sums the lengths of the blocks before the
member's (O(N / CAP), a few µs at 1M members: within the query budget). Kernels hold the GIL
on purpose: they take about a microsecond, and releasing it would let another thread take it
for up to the switch interval (5 ms) before the update returns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from vtrade.core.jit import njit

# header words
N, NB, NBCAP, SLOTCAP, ARENACAP, ARENA_USED, CAP = range(7)
HEADER = 8
#: Bit of a kernel's reply: the store used its last spare block; grow it before the next write.
FULL = 2
#: Reply of :func:`add` when the store has no room for the slot or the member's bytes.
NO_ROOM = 4
#: Low bits of a packed score that hold the tie (TIE_BITS of vtrade.game.leaderboard).
_TIE_BITS = 32
_TIE_MASK = (1 << _TIE_BITS) - 1


def _memmove(typingctx: object, st: Any, dst: Any, src: Any, count: Any) -> tuple[Any, Any]:
    sig = types.void(st, types.intp, types.intp, types.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        ary, d, s, n = args
        base = context.make_array(signature.args[0])(context, builder, ary).data
        cgutils.raw_memmove(builder, builder.gep(base, [d]), builder.gep(base, [s]), n, 8)
        return context.get_dummy_value()

    return sig, codegen


#: ``_move_words(st, dst, src, count)``: ``st[dst : dst + count] = st[src : src + count]``,
#: overlapping or not, as one C ``memmove`` (compiled code only). Numba compiles the equivalent
#: loop to about 1.8 ns a word (measured), and shifting the block positions after a split moves
#: tens of thousands of words at 1M members; memmove is several times faster, and needs no
#: temporary copy as an overlapping slice assignment does.
_move_words: Any = intrinsic(_memmove)


def _prefetch_codegen(typingctx: object, st: Any, at: Any) -> tuple[Any, Any]:
    sig = types.void(st, types.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        ary, i = args
        base = context.make_array(signature.args[0])(context, builder, ary).data
        fnty = ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t, *[ir.IntType(32)] * 3])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch")
        # read, keep in every cache level, data
        flags = [ir.Constant(ir.IntType(32), v) for v in (0, 3, 1)]
        builder.call(fn, [builder.bitcast(builder.gep(base, [i]), cgutils.voidptr_t), *flags])
        return context.get_dummy_value()

    return sig, codegen


#: ``_prefetch(st, at)``: start loading the cache line of ``st[at]`` without waiting for it
#: (compiled code only). An update at 1M members misses the cache on both blocks it touches;
#: asking for all their lines up front overlaps those misses instead of taking them one after
#: another as the searches reach them.
_prefetch: Any = intrinsic(_prefetch_codegen)


@njit(cache=True, inline="always")
def _layout(st: np.ndarray) -> tuple[int, int, int, int, int, int, int, int]:
    """Word offsets of lens, maxk, maxs, keys, slots, tab and arena (order is at HEADER), and CAP.

    Kernels index the store through these offsets rather than through sliced views: a view in
    compiled code takes and drops a reference on the array (two atomic operations), and views
    made per helper call cost more than the whole update at 1,000 members (measured: 0.7 µs)."""
    nbcap, cap = st[NBCAP], st[CAP]
    o_len = HEADER + nbcap
    o_mk = o_len + nbcap
    o_ms = o_mk + nbcap
    o_k = o_ms + nbcap
    o_s = o_k + nbcap * cap
    o_t = o_s + nbcap * cap
    return o_len, o_mk, o_ms, o_k, o_s, o_t, o_t + 3 * st[SLOTCAP], cap


@njit(cache=True)
def _empty(nbcap: int, slotcap: int, arenacap: int, cap: int) -> np.ndarray:
    st = np.zeros(HEADER + 4 * nbcap + 2 * nbcap * cap + 3 * slotcap + arenacap // 8, dtype=np.int64)
    st[NBCAP], st[SLOTCAP], st[ARENACAP], st[CAP] = nbcap, slotcap, arenacap, cap
    for q in range(nbcap):
        st[HEADER + q] = q  # every block id free
    return st


def new_store(cap: int) -> np.ndarray:
    """An empty store of blocks of ``cap`` entries (``cap >= 2``), small: it grows on demand."""
    if cap < 2:
        raise ValueError(f"block capacity must be >= 2, got {cap}")
    return _empty(2, 8, 256, cap)


def _tab(st: np.ndarray) -> np.ndarray:
    o_t, o_a = _layout(st)[5:7]
    return st[o_t:o_a].reshape(-1, 3)


def packed_column(st: np.ndarray) -> np.ndarray:
    """The packed score of every slot (a view; free slots hold stale values)."""
    return _tab(st)[:, 0]


def packed_of(st: np.ndarray, slot: int) -> int:
    return int(_tab(st)[slot, 0])


def length_of(st: np.ndarray, slot: int) -> int:
    """Bytes of the member of ``slot``."""
    return int(_tab(st)[slot, 2])


# ---------------------------------------------------------------------------- order


@njit(cache=True)
def _bytes_before(st: np.ndarray, o_t: int, o_a: int, sa: int, sb: int) -> bool:
    """Whether the member of slot ``sa`` sorts before that of ``sb`` (memcmp, then length)."""
    arena = st[o_a:].view(np.uint8)
    oa, la, ob, lb = st[o_t + 3 * sa + 1], st[o_t + 3 * sa + 2], st[o_t + 3 * sb + 1], st[o_t + 3 * sb + 2]
    for i in range(min(la, lb)):
        x, y = arena[oa + i], arena[ob + i]
        if x != y:
            return x < y
    return la < lb


@njit(cache=True, inline="always")
def _first_at_least(st: np.ndarray, ok: int, n: int, p: int) -> int:
    """First ``i < n`` with ``st[ok + i] >= p`` (else n), over ascending ints: the halving
    search without an early exit (one compare per step)."""
    if n == 0:
        return 0
    lo = ok
    while n > 1:
        half = n >> 1
        lo = lo + half if st[lo + half] < p else lo
        n -= half
    return lo - ok + (st[lo] < p)


@njit(cache=True, inline="always")
def _lower(st: np.ndarray, ok: int, os: int, n: int, o_t: int, o_a: int, p: int, s: int) -> int:
    """First ``i < n`` whose entry ``(st[ok + i], st[os + i])`` is not before ``(p, s)`` (else n):
    a search on packed scores alone, then, only if ``p`` is among them, a search by member
    bytes within the run of entries that share it (O(log) even when all of them do). Searching
    the ints first, rather than with the full comparison at every step, took an update at 1M
    members from 1.39 to 1.17 µs (kernel only, measured)."""
    i = _first_at_least(st, ok, n, p)
    if i < n and st[ok + i] == p:
        hi = i + _first_at_least(st, ok + i, n - i, p + 1)
        while i < hi:
            mid = (i + hi) >> 1
            if _bytes_before(st, o_t, o_a, st[os + mid], s):
                i = mid + 1
            else:
                hi = mid
    return i


# ---------------------------------------------------------------------------- blocks


@njit(cache=True)
def _open_position(st: np.ndarray, q: int) -> None:
    """Make room at block position ``q`` (later positions move up) and put a free block id there."""
    o_len, o_mk, o_ms = _layout(st)[:3]
    nb = st[NB]
    free = st[HEADER + nb]
    for o in (HEADER, o_len, o_mk, o_ms):
        _move_words(st, o + q + 1, o + q, nb - q)
    st[HEADER + q] = free
    st[o_len + q] = 0
    st[NB] = nb + 1


@njit(cache=True)
def _close_position(st: np.ndarray, q: int) -> None:
    """Drop block position ``q`` (later positions move down); its block id becomes free."""
    o_len, o_mk, o_ms = _layout(st)[:3]
    nb = st[NB]
    gone = st[HEADER + q]
    for o in (HEADER, o_len, o_mk, o_ms):
        _move_words(st, o + q, o + q + 1, nb - 1 - q)
    st[HEADER + nb - 1] = gone
    st[NB] = nb - 1


@njit(cache=True)
def _split(st: np.ndarray, q: int) -> None:
    """Move the upper half of the full block at position ``q`` to a new block at ``q + 1``."""
    _open_position(st, q + 1)
    o_len, o_mk, o_ms, o_k, o_s, _, _, cap = _layout(st)
    h = cap >> 1
    a, b = st[HEADER + q] * cap, st[HEADER + q + 1] * cap
    for o in (o_k, o_s):
        _move_words(st, o + b, o + a + h, cap - h)
    st[o_len + q], st[o_len + q + 1] = h, cap - h
    st[o_mk + q + 1], st[o_ms + q + 1] = st[o_mk + q], st[o_ms + q]
    st[o_mk + q], st[o_ms + q] = st[o_k + a + h - 1], st[o_s + a + h - 1]


@njit(cache=True)
def _even(st: np.ndarray, q: int) -> None:
    """Share the entries of block positions ``q`` and ``q + 1`` evenly, moving entries across
    their boundary: O(CAP), where a split or a merge shifts every later position (O(NB)). So a
    full or nearly empty block first evens out with a neighbour that has room or entries to
    spare, and the number of blocks changes only when the board grows or shrinks (measured:
    random updates at 1M members changed it on 1.2 % of updates without this, each time moving
    tens of thousands of words)."""
    o_len, o_mk, o_ms, o_k, o_s, _, _, cap = _layout(st)
    a, b = st[HEADER + q] * cap, st[HEADER + q + 1] * cap
    n, m = st[o_len + q], st[o_len + q + 1]
    want = (n + m) >> 1
    if n > want:  # q's last entries go to the front of q + 1
        for o in (o_k, o_s):
            _move_words(st, o + b + n - want, o + b, m)
            _move_words(st, o + b, o + a + want, n - want)
    else:  # the first entries of q + 1 go to the end of q
        for o in (o_k, o_s):
            _move_words(st, o + a + n, o + b, want - n)
            _move_words(st, o + b, o + b + want - n, m - (want - n))
    st[o_len + q], st[o_len + q + 1] = want, n + m - want
    st[o_mk + q], st[o_ms + q] = st[o_k + a + want - 1], st[o_s + a + want - 1]


@njit(cache=True)
def _merge_next(st: np.ndarray, q: int) -> None:
    """Append block position ``q + 1``'s entries to block ``q``'s (they fit) and drop ``q + 1``."""
    o_len, o_mk, o_ms, o_k, o_s, _, _, cap = _layout(st)
    a, b, n, m = st[HEADER + q] * cap, st[HEADER + q + 1] * cap, st[o_len + q], st[o_len + q + 1]
    for o in (o_k, o_s):
        _move_words(st, o + a + n, o + b, m)
    st[o_len + q] = n + m
    st[o_mk + q], st[o_ms + q] = st[o_mk + q + 1], st[o_ms + q + 1]
    _close_position(st, q + 1)


@njit(cache=True, inline="always")
def _prefetch_block(st: np.ndarray, q: int) -> None:
    """Start loading every cache line of block position ``q``'s packed scores and slots."""
    o_len, _, _, o_k, o_s, _, _, cap = _layout(st)
    b = st[HEADER + q] * cap
    for j in range(0, st[o_len + q], 8):
        _prefetch(st, o_k + b + j)
        _prefetch(st, o_s + b + j)


@njit(cache=True)
def _block_of(st: np.ndarray, p: int, s: int) -> int:
    """The block position where entry (p, s) is or belongs: the first whose largest entry is not
    before it, else the last (0 if there are no blocks)."""
    _, o_mk, o_ms, _, _, o_t, o_a, _ = _layout(st)
    nb = st[NB]
    return max(0, min(_lower(st, o_mk, o_ms, nb, o_t, o_a, p, s), nb - 1))


@njit(cache=True)
def _insert(st: np.ndarray, q: int, p: int, s: int) -> int:
    """Insert entry (p, s) into block position ``q`` (:func:`_block_of`, or any block whose
    neighbours' entries are all before and after it); FULL if the store has no spare block left
    after it."""
    o_len, o_mk, o_ms, o_k, o_s, o_t, o_a, cap = _layout(st)
    if st[NB] == 0:
        _open_position(st, 0)
    if st[o_len + q] == cap:  # full: a split found no spare block (a broken caller, see _delete)
        if st[NB] == st[NBCAP]:
            return FULL  # nothing inserted
        _split(st, q)
        q = _block_of(st, p, s)
    b = st[HEADER + q] * cap
    kb, sb, n = o_k + b, o_s + b, st[o_len + q]
    i = _lower(st, kb, sb, n, o_t, o_a, p, s)
    _move_words(st, kb + i + 1, kb + i, n - i)
    _move_words(st, sb + i + 1, sb + i, n - i)
    st[kb + i], st[sb + i] = p, s
    st[o_len + q] = n + 1
    if i == n:
        st[o_mk + q], st[o_ms + q] = p, s
    st[N] += 1
    if n + 1 == cap:  # full: even out with the emptier neighbour if it has room, else split
        nb = st[NB]
        room = 3 * cap >> 2
        after = st[o_len + q + 1] if q + 1 < nb else cap
        before = st[o_len + q - 1] if q > 0 else cap
        if after < room and after <= before:
            _even(st, q)
        elif before < room:
            _even(st, q - 1)
        elif st[NB] < st[NBCAP]:  # else it stays full until the caller grows the store
            _split(st, q)
    return FULL if st[NB] == st[NBCAP] else 0


@njit(cache=True)
def _delete(st: np.ndarray, q: int, p: int, s: int) -> bool:
    """Remove entry (p, s) from its block position ``q`` (:func:`_block_of`). Returns whether
    blocks were dropped, merged or evened out (block positions found before are then stale).

    The entry is present unless the caller's state is broken (say, two threads writing one
    board, which the structure does not support): then nothing is removed, so that a broken
    caller gets wrong standings but never a write outside the store."""
    o_len, o_mk, o_ms, o_k, o_s, o_t, o_a, cap = _layout(st)
    nb = st[NB]
    b = st[HEADER + q] * cap
    kb, sb, n = o_k + b, o_s + b, st[o_len + q] - 1
    i = _lower(st, kb, sb, n + 1, o_t, o_a, p, s)
    if i > n or st[kb + i] != p or st[sb + i] != s:
        return False
    _move_words(st, kb + i, kb + i + 1, n - i)
    _move_words(st, sb + i, sb + i + 1, n - i)
    st[o_len + q] = n
    st[N] -= 1
    if n == 0:
        _close_position(st, q)
        return True
    if i == n:
        st[o_mk + q], st[o_ms + q] = st[kb + n - 1], st[sb + n - 1]
    if 4 * n < cap and nb > 1:
        # Small: merge with the fuller neighbour if the two fit in half a block, else even out
        # with it.
        after = st[o_len + q + 1] if q + 1 < nb else -1
        before = st[o_len + q - 1] if q > 0 else -1
        r = q if after >= before else q - 1
        if 2 * (n + max(after, before)) <= cap:
            _merge_next(st, r)
        else:
            _even(st, r)
        return True
    return False


# ---------------------------------------------------------------------------- writes


@njit(cache=True)
def add(st: np.ndarray, slot: int, member: bytes, packed: int) -> int:
    """Add a new member as unused ``slot`` with its UTF-8 ``member`` at ``packed``. Returns
    NO_ROOM, having written nothing, if the slot is beyond SLOTCAP or the arena is short of the
    bytes (grow the store and add again); else FULL or 0."""
    o = st[ARENA_USED]
    if not 0 <= slot < st[SLOTCAP] or o + len(member) > st[ARENACAP]:
        return NO_ROOM
    o_t, o_a = _layout(st)[5:7]
    arena = st[o_a:].view(np.uint8)
    for i in range(len(member)):
        arena[o + i] = member[i]
    st[ARENA_USED] = o + len(member)
    st[o_t + 3 * slot], st[o_t + 3 * slot + 1], st[o_t + 3 * slot + 2] = packed, o, len(member)
    return _insert(st, _block_of(st, packed, slot), packed, slot)


@njit(cache=True)
def _move(st: np.ndarray, slot: int, packed: int) -> int:
    if not 0 <= slot < st[SLOTCAP]:  # a broken caller (see _delete): nothing to do safely
        return 0
    at = _layout(st)[5] + 3 * slot
    old = st[at]
    q_old, q_new = _block_of(st, old, slot), _block_of(st, packed, slot)
    # Both blocks' lines are requested before either is searched. The new entry's block stays
    # right after the delete unless that moved blocks: the blocks before it hold only smaller
    # entries and those after it only larger ones, which removing an entry cannot change.
    _prefetch_block(st, q_old)
    _prefetch_block(st, q_new)
    if _delete(st, q_old, old, slot):
        q_new = _block_of(st, packed, slot)
    st[at] = packed
    return _insert(st, q_new, packed, slot)


@njit(cache=True)
def move(st: np.ndarray, slot: int, packed: int) -> int:
    """Move present ``slot`` to ``packed``. Returns FULL or 0."""
    return _move(st, slot, packed)


@njit(cache=True)
def remove(st: np.ndarray, slot: int) -> None:
    """Remove present ``slot`` (its arena bytes stay until the next :func:`resized`)."""
    if not 0 <= slot < st[SLOTCAP]:
        return
    p = st[_layout(st)[5] + 3 * slot]
    _delete(st, _block_of(st, p, slot), p, slot)


@njit(cache=True)
def _set(st: np.ndarray, slot: int, units: int, tie: int) -> int:
    # The rule of vtrade.game.leaderboard.merge: new units are reached now; the same units keep
    # the earlier of the two times (the larger tie).
    if not 0 <= slot < st[SLOTCAP]:
        return 0
    cur = st[_layout(st)[5] + 3 * slot]
    if units == cur >> _TIE_BITS and tie <= cur & _TIE_MASK:
        return 0
    return 1 | _move(st, slot, (units << _TIE_BITS) | tie)


@njit(cache=True)
def set_units(st: np.ndarray, slot: int, units: int, tie: int) -> int:
    """ZADD of present ``slot``: ``units`` reached at ``tie``. Returns 1 if the board changed,
    ``| FULL`` as :func:`add`."""
    return _set(st, slot, units, tie)


@njit(cache=True)
def set_rows(st: np.ndarray, slots: np.ndarray, units: np.ndarray, ties: np.ndarray, start: int) -> tuple[int, int]:
    """:func:`set_units` for rows ``start``, ``start + 1``, … in order, stopping after a row that
    leaves the store FULL. Returns (rows done up to, how many changed the board)."""
    changed = 0
    o_t = _layout(st)[5]
    for r in range(start, len(slots)):
        if r + 8 < len(slots):  # the slot a few rows on: its packed score is a cache miss otherwise
            _prefetch(st, o_t + 3 * slots[r + 8])
        got = _set(st, slots[r], units[r], ties[r])
        changed += got & 1
        if got & FULL:
            return r + 1, changed
    return len(slots), changed


# ---------------------------------------------------------------------------- reads


@njit(cache=True)
def position(st: np.ndarray, slot: int) -> int:
    """Ascending position of present ``slot`` (rank = N - 1 - position); -1 if the store is empty
    or the slot out of range (a broken caller)."""
    if st[NB] == 0 or not 0 <= slot < st[SLOTCAP]:
        return -1
    o_len, _, _, o_k, o_s, o_t, o_a, cap = _layout(st)
    p = st[o_t + 3 * slot]
    q = _block_of(st, p, slot)
    b = st[HEADER + q] * cap
    return st[o_len : o_len + q].sum() + _lower(st, o_k + b, o_s + b, st[o_len + q], o_t, o_a, p, slot)


@njit(cache=True)
def descending(st: np.ndarray, pos: int, out: np.ndarray) -> int:
    """Fill ``out[k] = (slot, packed)`` with the entries at ascending positions ``pos``,
    ``pos - 1``, … (rank order), up to ``len(out)`` of them or the bottom; returns how many."""
    o_len, _, _, o_k, o_s, _, _, cap = _layout(st)
    nb, n = st[NB], st[N]
    if pos < 0 or pos >= n:
        return 0
    # The block holding ``pos``: walk from the nearer end (the top, for top-N and high ranks).
    # (q stays within the blocks even if N and the lengths disagree, as with a broken caller.)
    if 2 * pos >= n:
        q, first = nb - 1, n - st[o_len + nb - 1]
        while first > pos and q > 0:
            q -= 1
            first -= st[o_len + q]
    else:
        q, first = 0, 0
        while first + st[o_len + q] <= pos and q < nb - 1:
            first += st[o_len + q]
            q += 1
    j = min(pos - first, st[o_len + q] - 1)
    k = 0
    while k < len(out) and q >= 0:
        b = st[HEADER + q] * cap
        while j >= 0 and k < len(out):
            out[k, 0], out[k, 1] = st[o_s + b + j], st[o_k + b + j]
            k += 1
            j -= 1
        q -= 1
        if q >= 0:
            j = st[o_len + q] - 1
    return k


@njit(cache=True)
def resized(st: np.ndarray, nbcap: int, slotcap: int, arenacap: int) -> np.ndarray:
    """A copy of ``st`` with new capacities (``nbcap > NB``, ``slotcap`` above every used slot,
    ``arenacap`` at least the live members' bytes, a multiple of 8). Blocks are repacked in order
    and the arena compacted to the members still present (removed ones' bytes are dropped)."""
    o_len, _, _, o_k, o_s, o_t, o_a, cap = _layout(st)
    out = _empty(nbcap, slotcap, arenacap, cap)
    n_len, n_mk, n_ms, n_k, n_s, n_t, n_a, _ = _layout(out)
    arena, n_arena = st[o_a:].view(np.uint8), out[n_a:].view(np.uint8)
    used = 0
    for q in range(st[NB]):
        b, n = st[HEADER + q] * cap, st[o_len + q]
        out[n_len + q] = n
        for j in range(n):
            s = st[o_s + b + j]
            out[n_k + q * cap + j], out[n_s + q * cap + j] = st[o_k + b + j], s
            length = min(st[o_t + 3 * s + 2], arenacap - used)  # (shorter only for a broken caller)
            out[n_t + 3 * s], out[n_t + 3 * s + 1], out[n_t + 3 * s + 2] = st[o_t + 3 * s], used, length
            src = st[o_t + 3 * s + 1]
            for i in range(length):
                n_arena[used + i] = arena[src + i]
            used += length
        out[n_mk + q], out[n_ms + q] = out[n_k + q * cap + n - 1], out[n_s + q * cap + n - 1]
    out[N], out[NB], out[ARENA_USED] = st[N], st[NB], used
    return out
