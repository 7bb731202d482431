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
and write the packed value (in Redis, in one Lua script). ``set_many`` (ZADD of many members) is
a loop of ``set`` over its rows, checked whole before anything is written.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from numbers import Real
from typing import Literal, NamedTuple, Protocol, SupportsFloat, cast, runtime_checkable

import numpy as np

from vtrade.core.errors import VtradeError
from vtrade.game import _lbkernels as kern

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
    "Scores",
    "Standing",
    "Times",
    "Update",
    "check_count",
    "check_member",
    "check_rows",
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
#: ``set_many``'s scores: numbers, or a NumPy array of them.
Scores = Sequence[float] | np.ndarray
#: ``set_many``'s times: one for every row, one per row, or a NumPy array of them.
Times = int | Sequence[int] | np.ndarray
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

    def set_many(self, board: Board, members: Sequence[str], scores: Scores, at_ns: Times) -> int:
        """``set`` of each row ``(members[i], scores[i], at_ns[i])`` in order (ZADD of many
        members), with one time for every row if ``at_ns`` is an int: the board ends as a loop
        of ``set`` leaves it. All or nothing: every row is checked first (a bad one raises the
        error ``set`` would, prefixed with its row number) and a frozen board raises
        :class:`BoardFrozenError`, before anything is written. Returns how many rows changed
        the board (the ``changed`` of that loop's updates, summed)."""
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


#: From how many rows check_rows works on whole arrays (below, its fixed cost is more than a row
#: by row check: a game worker's batches are often a few rows).
_BULK_ROWS = 32


def check_rows(
    metric: Metric, members: Sequence[str], scores: Scores, at_ns: Times
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``set_many``'s rows checked as ``set`` checks one (member, time, score, in that order, row
    by row): ``(members, units, ties)`` (int64 arrays), or the first bad row's TypeError or
    ValueError with ``row <i>: `` before ``set``'s message. Plain rows (str members, float or int
    scores, int times; scores and times may be NumPy arrays) are checked on whole arrays; a
    batch with anything else, or with a bad row, goes row by row, which is the rule (the bulk
    check only reaches the same answer faster)."""
    if isinstance(members, str | bytes) or not isinstance(members, Sequence):
        raise TypeError(f"members must be a sequence of str, got {type(members).__name__}")
    names = list(members)
    n = len(names)
    one_time = isinstance(at_ns, int) and not isinstance(at_ns, bool)
    for what, seq in (("scores", scores), ("at_ns", () if one_time else at_ns)):
        if isinstance(seq, str | bytes) or not isinstance(seq, Sequence | np.ndarray):
            also = " or an int" if what == "at_ns" else ""
            raise TypeError(f"{what} must be a sequence{also}, got {type(seq).__name__}")
        if (what == "scores" or not one_time) and len(seq) != n:
            raise ValueError(f"set_many needs one {what} per member: {len(seq)} for {n} members")
    bulk = _bulk_rows(metric, names, scores, at_ns) if n >= _BULK_ROWS else None
    if bulk is not None:
        return names, *bulk
    values = scores.tolist() if isinstance(scores, np.ndarray) else list(scores)
    if isinstance(at_ns, int):
        times: list[object] = [at_ns] * n
    else:
        times = at_ns.tolist() if isinstance(at_ns, np.ndarray) else list(at_ns)
    units, ties = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    for r in range(n):
        try:
            check_member(names[r])
            ties[r] = tie_of(times[r])
            units[r] = metric.units(values[r])
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"row {r}: {exc}") from None
    return names, units, ties


def _numbers(values: object, kinds: str) -> np.ndarray | None:
    """``values`` as a float64 (``kinds`` "fiu") or int64 ("iu") array if every one of them is a
    plain number of those kinds (no bool, no str), else None."""
    if isinstance(values, np.ndarray):
        return values if values.dtype.kind in kinds else None
    types = set(map(type, cast(Iterable[object], values)))
    if not types <= ({float, int} if "f" in kinds else {int}):
        return None
    try:
        return np.array(values, dtype=np.float64 if "f" in kinds else np.int64)
    except OverflowError:  # an int beyond int64: the row-by-row rule says what is wrong
        return None


def _bulk_rows(metric: Metric, names: list[str], scores: Scores, at_ns: Times) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`check_rows`' units and ties computed on whole arrays, or None if any row is not
    plain or not valid (then the row-by-row check decides, and says which row is wrong)."""
    if set(map(type, names)) - {str} or "" in names:
        return None
    text = "".join(names)
    if not text.isascii():
        try:
            text.encode("utf-8")  # a lone surrogate in any member fails here
        except UnicodeEncodeError:
            return None
    values = _numbers(scores, "fiu")
    if values is None:
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        # The same float64 product and round-half-even as Metric.units.
        scaled = np.rint(values.astype(np.float64) * metric.scale)
    if len(scaled) and not (np.isfinite(values).all() and np.abs(scaled).max() <= UNITS_MAX):
        return None
    if isinstance(at_ns, int):
        if isinstance(at_ns, bool) or not 0 <= at_ns <= AT_NS_MAX:
            return None
        ties = np.full(len(names), TIE_MAX - at_ns // TIE_UNIT_NS, dtype=np.int64)
    else:
        times = _numbers(at_ns, "iu")
        if times is None or (len(times) and not (times.min() >= 0 and times.max() <= AT_NS_MAX)):
            return None
        ties = TIE_MAX - times.astype(np.int64) // TIE_UNIT_NS
    return scaled.astype(np.int64), ties


# --------------------------------------------------------------------------------------------
# the embedded structure

_new_tuple = tuple.__new__

#: Entries per block of the embedded structure's sorted blocks. Measured at 1,000,000 members
#: (random updates, kernel only): 32 -> 0.90 µs, 64 -> 0.83 µs, 128 -> 0.89 µs an update; smaller
#: blocks mean more of them to search and shift, larger ones more lines to load and move.
_BLOCK = 64


class _Book:
    """One board of the embedded structure: its store (sorted blocks of packed scores,
    :mod:`vtrade.game._lbkernels`) and which slot of the store each member holds.

    Slots are handed out here (a removed member's slot is reused); the store holds per slot the
    packed score and the member's UTF-8, so the order, ties by bytes included, is all in the
    store. ``live_bytes`` counts the present members' UTF-8 so that growing the arena is sized
    on what is live (a removed member's bytes are dropped when the store is next resized)."""

    __slots__ = ("free", "live_bytes", "members", "scale", "slots", "st")

    def __init__(self, scale: int) -> None:
        self.st = kern.new_store(_BLOCK)
        self.slots: dict[str, int] = {}  # member -> slot
        self.members: list[str] = []  # slot -> member ("" while free)
        self.free: list[int] = []
        self.live_bytes = 0
        self.scale = scale

    def packed(self, slot: int) -> int:
        return kern.packed_of(self.st, slot)

    def rows(self) -> list[tuple[str, int]]:
        """Every ``(member, packed)`` (for unions)."""
        col = kern.packed_column(self.st).tolist()
        return [(m, col[s]) for m, s in self.slots.items()]

    def add(self, member: str, mbytes: bytes, packed: int) -> None:
        slot = self.free.pop() if self.free else len(self.members)
        reply = kern.add(self.st, slot, mbytes, packed)
        if reply == kern.NO_ROOM:
            self.grow(slot + 1, len(mbytes))
            reply = kern.add(self.st, slot, mbytes, packed)
        if slot == len(self.members):
            self.members.append(member)
        else:
            self.members[slot] = member
        self.slots[member] = slot
        self.live_bytes += len(mbytes)
        self.after(reply)

    def move(self, slot: int, packed: int) -> None:
        self.after(kern.move(self.st, slot, packed))

    def remove(self, member: str) -> None:
        slot = self.slots.pop(member)
        self.live_bytes -= kern.length_of(self.st, slot)
        kern.remove(self.st, slot)
        self.members[slot] = ""
        self.free.append(slot)

    def after(self, reply: int) -> None:
        """Grow the store if a kernel's reply says it used its last spare block."""
        if reply & kern.FULL:
            self.grow(0, 0)

    def grow(self, slots: int, extra_bytes: int) -> None:
        """Resize the store for at least ``slots`` slots, ``extra_bytes`` more UTF-8 and a spare
        block, doubling what runs short (amortised O(1) per member)."""
        st = self.st
        nbcap, slotcap = int(st[kern.NBCAP]), int(st[kern.SLOTCAP])
        if st[kern.NB] + 1 >= nbcap:
            nbcap *= 2
        if slots > slotcap:
            slotcap = max(2 * slotcap, slots)
        arenacap = 8 * -(-max(256, 2 * (self.live_bytes + extra_bytes)) // 8)
        self.st = kern.resized(st, nbcap, slotcap, arenacap)

    def rank(self, slot: int) -> int:
        return len(self.slots) - 1 - kern.position(self.st, slot)

    def ranks(self, lo: int, hi: int, metric: Metric) -> list[Standing]:
        """Standings of ranks ``lo`` .. ``hi - 1`` (already clipped to the board)."""
        if hi <= lo:
            return []
        out = np.empty((hi - lo, 2), dtype=np.int64)
        k = kern.descending(self.st, len(self.slots) - 1 - lo, out)
        members = self.members
        return [
            Standing(rank, members[slot], metric.score(packed >> TIE_BITS))
            for rank, (slot, packed) in enumerate(out[:k].tolist(), start=lo)
        ]

    def set_rows(self, members: Sequence[str], units: np.ndarray, ties: np.ndarray) -> int:
        """``set`` of every row, in order (validated); how many changed the board."""
        slots = self.slots
        idx = [slots.get(m) for m in members]
        changed = 0
        if None in idx:
            # A new member is added with its first row's score; that row then finds it unchanged
            # and its later rows apply in order: what a loop of set gives (members don't interact).
            for r, slot in enumerate(idx):
                if slot is None:
                    m = members[r]
                    if m not in slots:
                        self.add(m, m.encode("utf-8"), pack(int(units[r]), int(ties[r])))
                        changed += 1
                    idx[r] = slots[m]
        rows = np.array(idx, dtype=np.int64)
        done = 0
        while done < len(rows):
            done, c = kern.set_rows(self.st, rows, units, ties, done)
            changed += c
            if self.st[kern.NB] == self.st[kern.NBCAP]:
                self.grow(0, 0)
        return changed


class EmbeddedLeaderboards:
    """The in-process :class:`Leaderboards`: per board a dict of members and sorted blocks of
    packed scores in one array (:mod:`vtrade.game._lbkernels`).

    O(log n) updates (amortised: a block split shifts the later block positions) and O(n / 64)
    rank queries; at 1,000,000 members an update takes about 3 µs through ``set`` (a third of it
    the compiled kernel, the rest Python and the member's dict lookup), about 2 µs a row through
    ``set_many``, and a rank, top-10 or around-me query a few to a few tens of µs
    (``benchmarks/bench_leaderboard.py``). Not thread-safe: one game worker owns it, like every
    worker's state.

    >>> lb = EmbeddedLeaderboards()
    >>> b = Board("return")
    >>> lb.set(b, "ann", 0.05, at_ns=0), lb.set_best(b, "ann", 0.01, at_ns=0)
    (Update(changed=True, score=0.05), Update(changed=False, score=0.05))
    >>> lb.set(b, "bob", float("nan"), at_ns=0)
    Traceback (most recent call last):
    ValueError: score for 'return' must be a finite number, got nan
    >>> lb.set_many(b, ["bob", "cy", "ann"], [0.02, 0.07, 0.05], at_ns=10**9)
    2
    >>> [s.member for s in lb.top(b)], lb.size(b)
    (['cy', 'ann', 'bob'], 3)
    """

    def __init__(self) -> None:
        self._books: dict[str, _Book] = {}
        self._frozen: set[str] = set()

    def _book(self, board: Board) -> _Book:
        book = self._books.get(board.key)
        if book is None:
            book = self._books[board.key] = _Book(board.spec.scale)
        return book

    # updates -------------------------------------------------------------------------------

    def _update(self, board: Board, member: str, value: float, at_ns: int, mode: Mode) -> Update:
        # Everything is validated and computed before the first write: bad input changes nothing.
        mbytes = check_member(member)
        tie = tie_of(at_ns)
        metric = board.spec
        v = value_units(metric, value, mode)
        if board.key in self._frozen:
            raise BoardFrozenError(board)
        book = self._book(board)
        slot = book.slots.get(member)
        current = None if slot is None else book.packed(slot)
        units = new_units(metric, None if current is None else current >> TIE_BITS, v, mode)
        packed = None if units is None else merge(current, units, tie)
        if packed is None:
            assert current is not None  # only an existing member can be left alone
            return Update(False, metric.score(current >> TIE_BITS))
        if slot is None:
            book.add(member, mbytes, packed)
        else:
            book.move(slot, packed)
        return Update(True, metric.score(packed >> TIE_BITS))

    def set(self, board: Board, member: str, score: float, at_ns: int) -> Update:
        # The hot path (a worker re-posting scores; >= 100,000 updates/s at 1M members): plain,
        # in-range values on an existing, unfrozen board are one kernel call for a member on it
        # (the kernel applies merge()'s rule) or an add for a new ASCII one; anything else (bad
        # input included) takes _update, which checks in the documented order and says what
        # is wrong.
        if type(member) is str and type(at_ns) is int and 0 <= at_ns <= AT_NS_MAX and (
            type(score) is float or type(score) is int
        ):
            book = self._books.get(board.key)
            if book is not None and math.isfinite(score) and board.key not in self._frozen:
                scale = book.scale
                units = round(score * scale)
                if -UNITS_MAX <= units <= UNITS_MAX:
                    tie = TIE_MAX - at_ns // TIE_UNIT_NS
                    slot = book.slots.get(member)
                    if slot is not None:
                        got = kern.set_units(book.st, slot, units, tie)
                        if got & kern.FULL:
                            book.grow(0, 0)
                        # tuple.__new__ skips the NamedTuple's Python-level __new__ (0.25 µs of ~2).
                        return _new_tuple(Update, ((got & 1) == 1, units / scale))
                    if member and member.isascii():
                        book.add(member, member.encode(), pack(units, tie))
                        return _new_tuple(Update, (True, units / scale))
        return self._update(board, member, score, at_ns, "set")

    def set_many(self, board: Board, members: Sequence[str], scores: Scores, at_ns: Times) -> int:
        metric = board.spec
        names, units, ties = check_rows(metric, members, scores, at_ns)
        if board.key in self._frozen:
            raise BoardFrozenError(board)
        if not names:
            return 0
        return self._book(board).set_rows(names, units, ties)

    def set_best(self, board: Board, member: str, score: float, at_ns: int) -> Update:
        return self._update(board, member, score, at_ns, "best")

    def add(self, board: Board, member: str, delta: float, at_ns: int) -> Update:
        return self._update(board, member, delta, at_ns, "add")

    def remove(self, board: Board, member: str) -> bool:
        check_member(member)
        if board.key in self._frozen:
            raise BoardFrozenError(board)
        book = self._books.get(board.key)
        if book is None or member not in book.slots:
            return False
        book.remove(member)
        if not book.slots:  # Redis deletes an emptied sorted set; so do we (size 0, no key)
            del self._books[board.key]
        return True

    def union(self, dest: Board, sources: Sequence[Board], aggregate: Aggregate | None = None) -> int:
        agg = check_union(dest, sources, aggregate)
        if dest.key in self._frozen:
            raise BoardFrozenError(dest)
        rows = [book.rows() for b in sources if (book := self._books.get(b.key)) is not None]
        values = union_values(dest.spec, rows, agg)  # may raise: dest untouched until here
        self._books.pop(dest.key, None)
        if values:
            book = self._book(dest)
            for member, packed in values.items():
                book.add(member, member.encode("utf-8"), packed)
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
        slot = None if book is None else book.slots.get(member)
        return None if slot is None else board.spec.score(book.packed(slot) >> TIE_BITS)  # type: ignore[union-attr]

    def rank(self, board: Board, member: str) -> int | None:
        check_member(member)
        book = self._books.get(board.key)
        slot = None if book is None else book.slots.get(member)
        return None if slot is None else book.rank(slot)  # type: ignore[union-attr]

    def top(self, board: Board, n: int = 10) -> list[Standing]:
        check_count(n, "n")
        book = self._books.get(board.key)
        if book is None:
            return []
        return book.ranks(0, min(n, len(book.slots)), board.spec)

    def around(self, board: Board, member: str, k: int = 5) -> list[Standing]:
        check_count(k, "k")
        r = self.rank(board, member)
        if r is None:
            return []
        book = self._books[board.key]
        return book.ranks(max(0, r - k), min(len(book.slots), r + k + 1), board.spec)

    def size(self, board: Board) -> int:
        book = self._books.get(board.key)
        return 0 if book is None else len(book.slots)
