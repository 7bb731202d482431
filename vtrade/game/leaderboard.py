"""Leaderboards: rankings with the semantics of Redis Sorted Sets, and the in-process structure.

One interface, :class:`Leaderboards`, two backends with exactly the same rankings: this module's
:class:`EmbeddedLeaderboards` (the embedded default, pure, no I/O, no wall clock) and
:class:`vtrade.runtime.leaderboard_redis.RedisLeaderboards` (Redis Sorted Sets). A board is named
by a :class:`Board` (a metric, optionally a class, optionally a time window); per class and global
boards are just different keys (``class:<cid>:<metric>``, ``global:<metric>``).

**Ranking.** Highest score first; rank 0 is the top (``ZREVRANK``). Members that reach the same
score rank by who reached it first (earlier wins), then, within the same second, by member id
in reverse byte order (what ``ZRANGE … REV`` does with equal scores).

**The packing** (:data:`TIE_BITS`, :data:`TIE_UNIT_NS`, :data:`UNITS_MAX`, :data:`Metric`): a
sorted set holds one float64 per member, exact only for integers below 2^53, so the score and the
tie-break share one integer::

    units  = round(score * 10**decimals)                      # the metric's quantum, |units| <= 2**21 - 1
    second = at_ns // 1_000_000_000                           # simulated time, 0 <= second < 2**32
    tie    = 2**32 - 1 - second                               # earlier = larger
    packed = units * 2**32 + tie                              # |packed| < 2**53: exact in a float64

``packed // 2**32`` gives ``units`` back and ``packed % 2**32`` the tie (floor division, so a
negative score packs and ranks like any other: ``-1 * 2**32 + tie`` sorts below ``0 * 2**32 + tie``).
Ordering packed integers is ordering (score, earliness). The time is the simulated time of the
event that set the score, given by the caller; nothing here reads a clock. Simulated seconds
cover 1970-01-01 to 2106-02-07 UTC; a score outside the metric's range, a time outside that span,
NaN, ±inf or an empty member raise a ValueError naming the limits and change nothing.

**When does a member "reach" a score?** Every update computes the member's new units: if they
differ from the current ones, the member reached them now; if they are the same (setting the same
score again, adding 0), the member keeps the earlier of the two times. So re-posting an unchanged
score every bar never costs a member their place. ``add`` (ZINCRBY) is "units + delta, reached
now": a raw ``ZINCRBY`` would carry the old tie into the new score, so both backends read, add
and write the packed value (in Redis, in one Lua script).

**Windows and unions.** ``board.day(at_ns)`` is the board of one simulated UTC day; Redis gives
window keys a TTL, the embedded structure keeps them until :meth:`Leaderboards.drop` (memory of a
process, no clock). :meth:`Leaderboards.union` is ``ZUNIONSTORE`` into a destination (replaced),
members missing from a source contributing nothing, with the metric's aggregate: ``max`` for
return, Sharpe, drawdown and the composite (a week shows each student's best day: those ratios do
not add up over days; the week's own figure is a separate board fed from the week's NAV), ``sum``
for XP. ``max`` takes the largest packed value (highest score, earliest on ties). ``sum`` adds the
units and takes the latest of the times (the total was reached when its last part was).

**Freezing.** A frozen board keeps its standings and refuses every change (set, set_best, add,
remove, union into it, drop) with :class:`BoardFrozenError`; reads work as before.

>>> lb = EmbeddedLeaderboards()
>>> xp = Board("xp", class_id="econ")
>>> _ = lb.add(xp, "ann", 120, at_ns=10**18)
>>> _ = lb.add(xp, "bob", 120, at_ns=10**18 + 5 * 10**9)   # same XP, 5 s later
>>> _ = lb.add(xp, "cy", -5, at_ns=10**18)
>>> [(s.rank, s.member, s.score) for s in lb.top(xp, 10)]
[(0, 'ann', 120.0), (1, 'bob', 120.0), (2, 'cy', -5.0)]
>>> lb.rank(xp, "bob"), xp.key
(1, 'class:econ:xp')
"""

from __future__ import annotations

import math
import struct
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from numbers import Real
from typing import Literal, NamedTuple, Protocol, SupportsFloat, cast, runtime_checkable

from vtrade.core.errors import VtradeError

__all__ = [
    "METRICS",
    "TIE_BITS",
    "TIE_UNIT_NS",
    "UNITS_MAX",
    "Aggregate",
    "Board",
    "BoardFrozenError",
    "EmbeddedLeaderboards",
    "LeaderboardError",
    "Leaderboards",
    "Metric",
    "Mode",
    "Standing",
    "Update",
    "check_count",
    "check_member",
    "pack",
    "tie_of",
    "unpack",
]

# --------------------------------------------------------------------------------------------
# the packing: the only place that says how a score and its tie-break share a float64

#: Low bits of the packed integer that hold the tie-break (earliness in simulated seconds).
TIE_BITS = 32
#: One tie step: a simulated second. Members reaching a score within the same second tie on it.
TIE_UNIT_NS = 1_000_000_000
#: Largest tie value (the 1970-01-01T00:00:00Z second); ``tie = TIE_MAX - second``.
TIE_MAX = (1 << TIE_BITS) - 1
#: The last representable simulated time (2106-02-07T06:28:15.999999999Z).
AT_NS_MAX = (TIE_MAX + 1) * TIE_UNIT_NS - 1
#: Largest |units| of a score: 53 - TIE_BITS bits, so that |packed| < 2**53 (exact in a float64).
UNITS_MAX = (1 << (53 - TIE_BITS)) - 1

Aggregate = Literal["sum", "max"]
#: The three score updates: ZADD, ZADD … GT, ZINCRBY.
Mode = Literal["set", "best", "add"]


@dataclass(frozen=True, slots=True)
class Metric:
    """What a metric's scores look like on a board: its quantum ``10**-decimals`` and how a
    union of windows aggregates it.

    >>> m = METRICS["return"]
    >>> m.min_score, m.max_score, m.units(0.12345), m.score(1234)
    (-209.7151, 209.7151, 1234, 0.1234)
    """

    name: str
    decimals: int
    union: Aggregate
    description: str
    #: ``10**decimals``, computed once (every update multiplies by it).
    scale: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", 10**self.decimals)  # frozen: set once here

    @property
    def max_score(self) -> float:
        return self.score(UNITS_MAX)

    @property
    def min_score(self) -> float:
        return self.score(-UNITS_MAX)

    def units(self, score: object, what: str = "score") -> int:
        """``score`` in whole quanta (rounded half to even), or ValueError/TypeError if it is not a
        finite number within ``[min_score, max_score]``."""
        # float and int first: the ABC check costs a microsecond, a third of an embedded update.
        t = type(score)
        if t is not float and t is not int and (isinstance(score, bool) or not isinstance(score, Real)):
            raise TypeError(f"{what} for {self.name!r} must be a number, got {type(score).__name__}")
        value = float(cast(SupportsFloat, score))
        if not math.isfinite(value):
            raise ValueError(f"{what} for {self.name!r} must be a finite number, got {value!r}")
        units = round(value * self.scale)
        if not -UNITS_MAX <= units <= UNITS_MAX:
            raise ValueError(
                f"{what} {value!r} for {self.name!r} is outside the representable range "
                f"[{self.min_score}, {self.max_score}] (quantum 1e-{self.decimals}, 2**{53 - TIE_BITS} - 1 quanta)"
            )
        return units

    def score(self, units: int) -> float:
        """The score of ``units`` quanta (a float64, for display and analytics)."""
        return units / self.scale


#: The leaderboard metrics and their packing; a board's metric must be one of these.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("return", 4, "max", "total return as a fraction (0.05 = +5 %), to 1 bp"),
        Metric("sharpe", 4, "max", "annualised Sharpe ratio"),
        Metric("max_drawdown", 4, "max", "maximum drawdown, <= 0 (closer to 0 ranks higher)"),
        Metric("composite", 4, "max", "risk-adjusted composite score (vtrade.game.scoring.COMPOSITE_FORMULA)"),
        Metric("xp", 0, "sum", "experience points"),
    )
}


def tie_of(at_ns: object) -> int:
    """The tie value of simulated time ``at_ns`` (earlier = larger), or ValueError outside the span.

    >>> tie_of(0) - tie_of(10**9)
    1
    """
    if isinstance(at_ns, bool) or not isinstance(at_ns, int):
        raise TypeError(f"at_ns must be an int of simulated nanoseconds since the epoch, got {type(at_ns).__name__}")
    if not 0 <= at_ns <= AT_NS_MAX:
        raise ValueError(
            f"at_ns {at_ns} is outside the leaderboard's time span [0, {AT_NS_MAX}] "
            "(1970-01-01 to 2106-02-07 UTC in simulated nanoseconds)"
        )
    return TIE_MAX - at_ns // TIE_UNIT_NS


def pack(units: int, tie: int) -> int:
    """``units * 2**TIE_BITS + tie``: the integer a sorted set stores (as an exact float64).

    >>> pack(-1, 5), unpack(pack(-1, 5))
    (-4294967291, (-1, 5))
    """
    return (units << TIE_BITS) | tie


def unpack(packed: int) -> tuple[int, int]:
    """``(units, tie)`` of a packed score (floor division, so negative scores unpack too)."""
    return packed >> TIE_BITS, packed & TIE_MAX


def check_member(member: object) -> bytes:
    """A member id as the UTF-8 bytes a sorted set compares, or a clear error."""
    if not isinstance(member, str):
        raise TypeError(f"member must be a str, got {type(member).__name__}")
    if not member:
        raise ValueError("member must be a non-empty str")
    try:
        return member.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"member {member!r} is not valid Unicode text (lone surrogate)") from None


def check_count(n: object, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"{what} must be an int >= 0, got {n!r}")
    return n


# --------------------------------------------------------------------------------------------
# names and results


def _check_part(value: str | None, what: str, forbidden: str) -> None:
    # A class id without ':' keeps keys unambiguous (the window is the rest of the key).
    if value is None:
        return
    if not isinstance(value, str) or not value or any(c in value for c in forbidden):
        raise ValueError(f"{what} must be a non-empty str without {forbidden!r}, got {value!r}")


def _utc_day(at_ns: int) -> datetime:
    tie_of(at_ns)  # the same span as scores, so a window always has a representable time
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=at_ns // TIE_UNIT_NS)


@dataclass(frozen=True, slots=True)
class Board:
    """One leaderboard: a metric, global or of one class, all-time or of one time window.

    >>> Board("xp").key, Board("sharpe", class_id="c7").key
    ('global:xp', 'class:c7:sharpe')
    >>> Board("xp", class_id="c7").day(1_704_196_800 * 10**9).key   # 2024-01-02T12:00Z
    'class:c7:xp:day:2024-01-02'
    >>> [b.window for b in Board("xp").week_days(1_704_196_800 * 10**9)][::6]
    ['day:2024-01-01', 'day:2024-01-07']
    """

    metric: str
    class_id: str | None = None
    window: str | None = None
    #: The sorted set's key, computed once (every update and query looks it up).
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown leaderboard metric {self.metric!r}: expected one of {sorted(METRICS)}")
        _check_part(self.class_id, "class_id", ": \t\r\n")
        _check_part(self.window, "window", " \t\r\n")
        scope = "global" if self.class_id is None else f"class:{self.class_id}"
        key = f"{scope}:{self.metric}" + ("" if self.window is None else f":{self.window}")
        object.__setattr__(self, "key", key)  # frozen: set once here

    @property
    def spec(self) -> Metric:
        return METRICS[self.metric]

    def day(self, at_ns: int) -> Board:
        """This board's window for the simulated UTC day containing ``at_ns``."""
        return Board(self.metric, self.class_id, "day:" + _utc_day(at_ns).strftime("%Y-%m-%d"))

    def week(self, at_ns: int) -> Board:
        """This board's window for the ISO week containing ``at_ns`` (the usual union target)."""
        year, week, _ = _utc_day(at_ns).isocalendar()
        return Board(self.metric, self.class_id, f"week:{year}-W{week:02d}")

    def week_days(self, at_ns: int) -> tuple[Board, ...]:
        """The seven day windows (Monday first) of the ISO week containing ``at_ns``."""
        d = _utc_day(at_ns)
        monday = d - timedelta(days=d.weekday())
        return tuple(
            Board(self.metric, self.class_id, "day:" + (monday + timedelta(days=i)).strftime("%Y-%m-%d"))
            for i in range(7)
        )


# Standing and Update are NamedTuples (immutable, like a frozen dataclass) because they are made
# on every update and eleven times per around-me query: a frozen dataclass's __init__ goes
# through object.__setattr__ per field, four times slower.


class Standing(NamedTuple):
    """A member's place: ``rank`` 0 is the top."""

    rank: int
    member: str
    score: float


class Update(NamedTuple):
    """The result of a score update: whether the board changed, and the member's score after it."""

    changed: bool
    score: float


class LeaderboardError(VtradeError):
    """Base of the leaderboard's own refusals (bad input is ValueError / TypeError)."""


class BoardFrozenError(LeaderboardError):
    """An update to a frozen board (a frozen class's standings do not move)."""

    def __init__(self, board: Board) -> None:
        self.board = board
        super().__init__(f"leaderboard {board.key!r} is frozen: its standings cannot change")


# --------------------------------------------------------------------------------------------
# the interface


@runtime_checkable
class Leaderboards(Protocol):
    """Leaderboards with Redis Sorted Set semantics (see the module docstring for the rules)."""

    def set(self, board: Board, member: str, score: float, at_ns: int) -> Update:
        """Set ``member``'s score (ZADD), reached at simulated time ``at_ns``."""
        ...

    def set_best(self, board: Board, member: str, score: float, at_ns: int) -> Update:
        """Keep the best: set only if higher than the current score (ZADD … GT)."""
        ...

    def add(self, board: Board, member: str, delta: float, at_ns: int) -> Update:
        """Add ``delta`` to ``member``'s score (ZINCRBY; an absent member starts at 0)."""
        ...

    def remove(self, board: Board, member: str) -> bool:
        """Remove ``member`` (ZREM); whether it was there."""
        ...

    def score(self, board: Board, member: str) -> float | None:
        """``member``'s score, None if absent."""
        ...

    def rank(self, board: Board, member: str) -> int | None:
        """``member``'s 0-based rank, highest first (ZREVRANK); None if absent."""
        ...

    def top(self, board: Board, n: int = 10) -> list[Standing]:
        """The best ``n`` standings (ZRANGE 0 n-1 REV WITHSCORES)."""
        ...

    def around(self, board: Board, member: str, k: int = 5) -> list[Standing]:
        """``member``'s standing with up to ``k`` above and ``k`` below (clipped at both ends of
        the board, not shifted); empty if ``member`` is absent."""
        ...

    def size(self, board: Board) -> int:
        """How many members the board has (ZCARD)."""
        ...

    def union(self, dest: Board, sources: Sequence[Board], aggregate: Aggregate | None = None) -> int:
        """Replace ``dest`` with the union of ``sources`` (ZUNIONSTORE) aggregated by ``aggregate``
        (default: the metric's); returns its size."""
        ...

    def drop(self, board: Board) -> None:
        """Delete the board (DEL), e.g. a window past its retention in simulated time."""
        ...

    def freeze(self, board: Board) -> None:
        """Freeze the board: its standings stay, updates raise :class:`BoardFrozenError`."""
        ...

    def unfreeze(self, board: Board) -> None:
        """Let the board change again."""
        ...

    def is_frozen(self, board: Board) -> bool:
        """Whether the board is frozen."""
        ...


def value_units(metric: Metric, value: object, mode: Mode) -> int:
    """The update's value in quanta (the delta for ``add``), or a clear error (checked before
    anything is read or written, by both backends in the same order)."""
    return metric.units(value, "delta" if mode == "add" else "score")


def new_units(metric: Metric, current: int | None, units: int, mode: Mode) -> int | None:
    """The member's units after an update of ``units`` (quanta; the delta for ``add``), or None
    when the update leaves them alone (a ``best`` that is not better). ValueError when ``add``
    leaves the metric's range."""
    if mode == "add":
        total = (0 if current is None else current) + units
        if not -UNITS_MAX <= total <= UNITS_MAX:
            raise ValueError(
                f"adding {metric.score(units)!r} to {metric.score(current or 0)!r} gives a {metric.name!r} score "
                f"outside the representable range [{metric.min_score}, {metric.max_score}]"
            )
        return total
    if mode == "best" and current is not None and units < current:
        return None
    return units


def merge(current: int | None, units: int, tie: int) -> int | None:
    """The packed value to store, or None if nothing changes: new units are reached now; the
    same units keep the earlier of the two times (the larger tie)."""
    if current is None:
        return pack(units, tie)
    cur_units, cur_tie = unpack(current)
    if units != cur_units:
        return pack(units, tie)
    return pack(units, tie) if tie > cur_tie else None


def union_values(
    metric: Metric, boards: Iterable[Iterable[tuple[str, int]]], aggregate: Aggregate
) -> dict[str, int]:
    """ZUNIONSTORE of packed ``(member, packed)`` lists: ``max`` keeps the largest packed value;
    ``sum`` adds the units and keeps the latest time (smallest tie). ValueError if a sum leaves
    the metric's range (nothing is written then)."""
    out: dict[str, int] = {}
    if aggregate == "max":
        for rows in boards:
            for member, p in rows:
                cur = out.get(member)
                if cur is None or p > cur:
                    out[member] = p
        return out
    if aggregate != "sum":
        raise ValueError(f"aggregate must be 'sum' or 'max', got {aggregate!r}")
    sums: dict[str, tuple[int, int]] = {}
    for rows in boards:
        for member, p in rows:
            units, tie = unpack(p)
            acc = sums.get(member)
            sums[member] = (units, tie) if acc is None else (acc[0] + units, min(acc[1], tie))
    for member, (units, tie) in sums.items():
        if not -UNITS_MAX <= units <= UNITS_MAX:
            raise ValueError(
                f"the union's sum for {member!r} ({metric.score(units)!r}) is outside the representable range "
                f"[{metric.min_score}, {metric.max_score}] of {metric.name!r}"
            )
        out[member] = pack(units, tie)
    return out


def check_union(dest: Board, sources: Sequence[Board], aggregate: Aggregate | None) -> Aggregate:
    """Validate a union's arguments; the aggregate to use."""
    if isinstance(sources, Board) or not sources or not all(isinstance(b, Board) for b in sources):
        raise ValueError("union needs a non-empty sequence of source Boards")
    for b in sources:
        if b.metric != dest.metric:
            raise ValueError(f"cannot union {b.key!r} into {dest.key!r}: different metrics")
    agg = dest.spec.union if aggregate is None else aggregate
    if agg not in ("sum", "max"):
        raise ValueError(f"aggregate must be 'sum' or 'max', got {aggregate!r}")
    return agg


# --------------------------------------------------------------------------------------------
# the embedded structure

_OFFSET = 1 << 63
_BE = struct.Struct(">Q").pack
_LOAD = 400  # target sublist length (measured: 400 beats 250 and 1,000 at 1M members); splits at twice this


def _sort_key(packed: int, member: bytes) -> bytes:
    # One bytes object per member: 8 bytes of packed score (offset to unsigned, big-endian) then
    # the member's UTF-8. bytes compare with memcmp, so ascending keys are (score, member) in
    # exactly the order Redis keeps (equal scores by member bytes), and a comparison is one C
    # call instead of a tuple's two.
    return _BE(packed + _OFFSET) + member


def _packed_of(key: bytes) -> int:
    return int.from_bytes(key[:8], "big") - _OFFSET


class _SortedKeys:
    """Ascending bytes keys in sublists of about ``_LOAD`` (the layout of sortedcontainers'
    SortedList), with the sublist lengths kept in a plain list instead of a positional tree.

    Why not SortedList itself: it keeps a positional index tree up to date on every insert and
    delete, a Python loop of ~10 steps each, which made a remove + add at 1,000,000 members cost
    8 µs (≈ 120,000/s before any validation; measured). Here an update is two C bisects, a list
    insert and a delete, and ``lens[i] += 1``; a rank sums the lengths of the sublists before the
    key's (``sum`` over a few thousand ints, a few µs in C), which is within the query budget.
    """

    __slots__ = ("lens", "lists", "maxes", "n")

    def __init__(self) -> None:
        self.lists: list[list[bytes]] = []
        self.maxes: list[bytes] = []  # the last (largest) key of each sublist
        self.lens: list[int] = []
        self.n = 0

    def add(self, key: bytes) -> None:
        maxes = self.maxes
        if not maxes:
            self.lists.append([key])
            maxes.append(key)
            self.lens.append(1)
            self.n = 1
            return
        i = bisect_left(maxes, key)
        if i == len(maxes):  # beyond every key: append to the last sublist
            i -= 1
            self.lists[i].append(key)
            maxes[i] = key
        else:
            insort(self.lists[i], key)
        self.lens[i] += 1
        self.n += 1
        if self.lens[i] > 2 * _LOAD:
            sub = self.lists[i]
            self.lists[i : i + 1] = [sub[:_LOAD], sub[_LOAD:]]
            maxes[i : i + 1] = [sub[_LOAD - 1], sub[-1]]
            self.lens[i : i + 1] = [_LOAD, len(sub) - _LOAD]

    def remove(self, key: bytes) -> None:
        """Remove ``key``, which must be present (the board's dict says so)."""
        i = bisect_left(self.maxes, key)
        sub = self.lists[i]
        del sub[bisect_left(sub, key)]
        self.n -= 1
        if sub:
            self.maxes[i] = sub[-1]
            self.lens[i] -= 1
        else:
            del self.lists[i], self.maxes[i], self.lens[i]

    def locate(self, key: bytes) -> tuple[int, int, int]:
        """``(ascending position, sublist, index in it)`` of a present ``key``."""
        i = bisect_left(self.maxes, key)
        j = bisect_left(self.lists[i], key)
        return sum(self.lens[:i]) + j, i, j

    def descending(self, i: int, j: int, count: int) -> list[bytes]:
        """Up to ``count`` keys from sublist ``i`` index ``j`` downwards (rank order)."""
        out: list[bytes] = []
        lists = self.lists
        while count > 0 and i >= 0:
            take = lists[i][max(0, j - count + 1) : j + 1]
            take.reverse()
            out += take
            count -= len(take)
            i -= 1
            if i >= 0:
                j = len(lists[i]) - 1
        return out

    def at(self, pos: int) -> tuple[int, int]:
        """``(sublist, index)`` of ascending position ``pos`` (0 <= pos < n)."""
        if pos >= self.n - self.lens[-1]:  # top-N: the last sublist, no scan
            return len(self.lens) - 1, pos - (self.n - self.lens[-1])
        cum = list(accumulate(self.lens))
        i = bisect_right(cum, pos)
        return i, pos - (cum[i] - self.lens[i])


class _Book:
    __slots__ = ("keys", "order")

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {}  # member -> its sort key
        self.order = _SortedKeys()  # ascending; rank r is position n - 1 - r

    def packed(self, member: str) -> int | None:
        k = self.keys.get(member)
        return None if k is None else _packed_of(k)

    def put(self, member: str, mbytes: bytes, packed: int) -> None:
        old = self.keys.get(member)
        if old is not None:
            self.order.remove(old)
        key = _sort_key(packed, mbytes)
        self.order.add(key)
        self.keys[member] = key

    def rank(self, member: str) -> int | None:
        key = self.keys.get(member)
        return None if key is None else self.order.n - 1 - self.order.locate(key)[0]

    def ranks(self, lo: int, hi: int, metric: Metric) -> list[Standing]:
        """Standings of ranks ``lo`` .. ``hi - 1`` (already clipped to the board)."""
        if hi <= lo:
            return []
        i, j = self.order.at(self.order.n - 1 - lo)
        return [
            Standing(rank, key[8:].decode("utf-8"), metric.score(_packed_of(key) >> TIE_BITS))
            for rank, key in enumerate(self.order.descending(i, j, hi - lo), start=lo)
        ]


class EmbeddedLeaderboards:
    """The in-process :class:`Leaderboards`: per board a dict and sorted sublists of sort keys.

    O(log n) updates and rank queries; at 1,000,000 members a rank, top-10 or around-me query
    takes a few microseconds (``benchmarks/bench_leaderboard.py``). Not thread-safe: one game
    worker owns it, like every worker's state.

    >>> lb = EmbeddedLeaderboards()
    >>> b = Board("return")
    >>> lb.set(b, "ann", 0.05, at_ns=0), lb.set_best(b, "ann", 0.01, at_ns=0)
    (Update(changed=True, score=0.05), Update(changed=False, score=0.05))
    >>> lb.set(b, "bob", float("nan"), at_ns=0)
    Traceback (most recent call last):
    ValueError: score for 'return' must be a finite number, got nan
    >>> lb.size(b)
    1
    """

    def __init__(self) -> None:
        self._books: dict[str, _Book] = {}
        self._frozen: set[str] = set()

    # updates -------------------------------------------------------------------------------

    def _update(self, board: Board, member: str, value: float, at_ns: int, mode: Mode) -> Update:
        # Everything is validated and computed before the first write: bad input changes nothing.
        mbytes = check_member(member)
        tie = tie_of(at_ns)
        metric = board.spec
        v = value_units(metric, value, mode)
        if board.key in self._frozen:
            raise BoardFrozenError(board)
        book = self._books.get(board.key)
        if book is None:
            book = self._books[board.key] = _Book()  # an update always leaves a member on it
        # The hot path (>= 100,000 updates/s at 1M members) inlines _Book.put and merge().
        old = book.keys.get(member)
        current = None if old is None else _packed_of(old)
        units = new_units(metric, None if current is None else current >> TIE_BITS, v, mode)
        packed = None if units is None else merge(current, units, tie)
        if packed is None:
            assert current is not None  # only an existing member can be left alone
            return Update(False, metric.score(current >> TIE_BITS))
        order = book.order
        if old is not None:
            order.remove(old)
        key = _BE(packed + _OFFSET) + mbytes
        order.add(key)
        book.keys[member] = key
        return Update(True, (packed >> TIE_BITS) / metric.scale)

    def set(self, board: Board, member: str, score: float, at_ns: int) -> Update:
        # The hot path (a worker re-posting scores; >= 100,000 updates/s at 1M members): plain
        # types and in-range values are handled inline, in the order _update checks them;
        # anything unusual (bad input included) takes _update, which says what is wrong.
        if type(member) is str and member and type(at_ns) is int and 0 <= at_ns <= AT_NS_MAX and (
            type(score) is float or type(score) is int
        ):
            metric = board.spec
            units = round(score * metric.scale) if math.isfinite(score) else UNITS_MAX + 1
            key_name = board.key
            if -UNITS_MAX <= units <= UNITS_MAX and key_name not in self._frozen and member.isascii():
                book = self._books.get(key_name)
                if book is None:
                    book = self._books[key_name] = _Book()
                old = book.keys.get(member)
                tie = TIE_MAX - at_ns // TIE_UNIT_NS
                if old is not None:
                    current = int.from_bytes(old[:8], "big") - _OFFSET
                    if units == current >> TIE_BITS and tie <= current & TIE_MAX:
                        return Update(False, units / metric.scale)  # same score, reached earlier
                packed = (units << TIE_BITS) | tie
                key = _BE(packed + _OFFSET) + member.encode()
                order = book.order
                if old is not None:
                    order.remove(old)
                order.add(key)
                book.keys[member] = key
                return Update(True, units / metric.scale)
        return self._update(board, member, score, at_ns, "set")

    def set_best(self, board: Board, member: str, score: float, at_ns: int) -> Update:
        return self._update(board, member, score, at_ns, "best")

    def add(self, board: Board, member: str, delta: float, at_ns: int) -> Update:
        return self._update(board, member, delta, at_ns, "add")

    def remove(self, board: Board, member: str) -> bool:
        check_member(member)
        if board.key in self._frozen:
            raise BoardFrozenError(board)
        book = self._books.get(board.key)
        if book is None or member not in book.keys:
            return False
        book.order.remove(book.keys.pop(member))
        if not book.keys:  # Redis deletes an emptied sorted set; so do we (size 0, no key)
            del self._books[board.key]
        return True

    def union(self, dest: Board, sources: Sequence[Board], aggregate: Aggregate | None = None) -> int:
        agg = check_union(dest, sources, aggregate)
        if dest.key in self._frozen:
            raise BoardFrozenError(dest)
        rows = []
        for b in sources:
            book = self._books.get(b.key)
            if book is not None:
                rows.append([(m, _packed_of(k)) for m, k in book.keys.items()])
        values = union_values(dest.spec, rows, agg)  # may raise: dest untouched until here
        self._books.pop(dest.key, None)
        if values:
            book = _Book()
            for member, packed in values.items():
                book.put(member, member.encode("utf-8"), packed)
            self._books[dest.key] = book
        return len(values)

    def drop(self, board: Board) -> None:
        if board.key in self._frozen:
            raise BoardFrozenError(board)
        self._books.pop(board.key, None)

    def freeze(self, board: Board) -> None:
        self._frozen.add(board.key)

    def unfreeze(self, board: Board) -> None:
        self._frozen.discard(board.key)

    def is_frozen(self, board: Board) -> bool:
        return board.key in self._frozen

    # queries -------------------------------------------------------------------------------

    def score(self, board: Board, member: str) -> float | None:
        check_member(member)
        book = self._books.get(board.key)
        p = None if book is None else book.packed(member)
        return None if p is None else board.spec.score(p >> TIE_BITS)

    def rank(self, board: Board, member: str) -> int | None:
        check_member(member)
        book = self._books.get(board.key)
        return None if book is None else book.rank(member)

    def top(self, board: Board, n: int = 10) -> list[Standing]:
        check_count(n, "n")
        book = self._books.get(board.key)
        if book is None:
            return []
        return book.ranks(0, min(n, book.order.n), board.spec)

    def around(self, board: Board, member: str, k: int = 5) -> list[Standing]:
        check_count(k, "k")
        r = self.rank(board, member)
        if r is None:
            return []
        book = self._books[board.key]
        return book.ranks(max(0, r - k), min(book.order.n, r + k + 1), board.spec)

    def size(self, board: Board) -> int:
        book = self._books.get(board.key)
        return 0 if book is None else book.order.n
