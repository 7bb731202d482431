'''Missions are data: a goal from a small closed set of kinds, optional breaking conditions,
time windows counted in simulated session closes, prerequisites and XP.

A teacher writes missions in TOML (:func:`load_missions`); the library
(:mod:`vtrade.game.library`) is written the same way. The state machine that drives an
assigned mission is :mod:`vtrade.game.machine`.

>>> (m,) = load_missions("""
... [[mission]]
... id = "cash-buffer"
... title = "Keep a cash buffer"
... summary = "Keep at least 10 % of your NAV in cash at 3 session closes in a row."
... xp = 100
... for_sessions = 3
... goal = { kind = "cash", min_fraction = 0.10 }
... """)
>>> m.goal
CashFloor(min_fraction=0.1, min_invested=0.0)
>>> load_missions('[[mission]]\\nid = "x"\\ntitle = "X"\\nsummary = "Do x."\\nxp = "lots"\\ngoal = { kind = "fills" }')
Traceback (most recent call last):
...
vtrade.game.errors.GameError: mission #1 ('x'): field xp: Expected `int`, got `str`
'''

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from typing import Literal

import msgspec

from vtrade.game.errors import GameError
from vtrade.game.inputs import OrderType, Snapshot

__all__ = [
    "BeatBenchmark",
    "BetaBand",
    "Breaker",
    "CashFloor",
    "DrawdownAbove",
    "Fills",
    "Goal",
    "Hedge",
    "Holdings",
    "MarginCall",
    "Mission",
    "RoundTrip",
    "SurviveShock",
    "load_missions",
    "snapshot_holds",
    "validate",
]


class _Goal(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind"):
    """Base of goal kinds: TOML names the kind with ``kind = "..."``."""


class Fills(_Goal, frozen=True, tag="fills"):
    """``count`` distinct orders (by client order id) each with fills that match every filter,
    filled after the mission became ACTIVE.

    Filters on each fill: ``side`` ('' = any), ``liquidity`` ('' = any), ``order_types``
    (empty = any), ``kinds`` of instrument (empty = any), ``from_stop`` (None = either),
    ``with_note`` (the order carries a note). Over an order's matching fills: their quantity
    adds up to at least ``min_quantity`` and their quantity-weighted slippage is at most
    ``max_slippage_bps`` (positive = worse than the arrival mid; None = no limit).
    """

    count: int = 1
    side: Literal["", "buy", "sell"] = ""
    liquidity: Literal["", "maker", "taker"] = ""
    order_types: tuple[OrderType, ...] = ()
    kinds: tuple[str, ...] = ()
    from_stop: bool | None = None
    with_note: bool = False
    min_quantity: float = 0.0
    max_slippage_bps: float | None = None


class RoundTrip(_Goal, frozen=True, tag="round_trip"):
    """Sell units bought since activation at a profit above ``min_profit`` (in currency,
    against their average buy price, fees aside)."""

    min_profit: float = 0.0


class Holdings(_Goal, frozen=True, tag="holdings"):
    """Long positions in at least ``min_sectors`` sectors, no position (long or short) above
    ``max_weight`` of NAV (None = no limit), long positions worth at least ``min_invested`` of NAV."""

    min_sectors: int = 0
    max_weight: float | None = None
    min_invested: float = 0.0


class BetaBand(_Goal, frozen=True, tag="beta_band"):
    """Beta to SPY within [``low``, ``high``] (an unknown beta is not in the band)."""

    low: float
    high: float


class CashFloor(_Goal, frozen=True, tag="cash"):
    """Cash at least ``min_fraction`` of NAV, with long positions worth at least
    ``min_invested`` of NAV (so that sitting all in cash is not the point)."""

    min_fraction: float
    min_invested: float = 0.0


class BeatBenchmark(_Goal, frozen=True, tag="beat_benchmark"):
    """At a session close at least ``sessions`` closes after activation, the return since
    activation beats SPY's over the same span by more than ``margin`` (a fraction)."""

    sessions: int
    margin: float = 0.0


class Hedge(_Goal, frozen=True, tag="hedge"):
    """Beta to SPY below ``max_beta`` with a short position in an instrument of kind
    ``hedge_kind`` while other long positions are worth at least ``min_long`` of NAV."""

    max_beta: float
    min_long: float = 0.5
    hedge_kind: str = "etf"


class SurviveShock(_Goal, frozen=True, tag="survive_shock"):
    """After a teacher's shock (while ACTIVE), reach ``closes`` session closes (pair it with a
    :class:`MarginCall` breaker: a margin call fails it)."""

    closes: int = 2


Goal = Fills | RoundTrip | Holdings | BetaBand | CashFloor | BeatBenchmark | Hedge | SurviveShock

#: Goals held by a portfolio at an instant, checked on each Snapshot or, with
#: ``for_sessions``, at session closes.
SNAPSHOT_GOALS = (Holdings, BetaBand, CashFloor, Hedge)


class _Breaker(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind"):
    """Base of breaking conditions: any one fails an ACTIVE mission."""


class MarginCall(_Breaker, frozen=True, tag="margin_call"):
    """A margin call (a MarginCalled input or a snapshot flagged ``margin_call``)."""


class DrawdownAbove(_Breaker, frozen=True, tag="drawdown_above"):
    """The drawdown of NAV since activation (peak to trough) beyond ``limit`` (a fraction)."""

    limit: float


Breaker = MarginCall | DrawdownAbove


class Mission(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A mission a teacher can assign.

    ``summary`` is one student-facing sentence; ``xp`` what claiming it is worth (a teacher may
    assign it for other XP); ``prerequisites`` the ids of missions to complete first;
    ``within_sessions``: it expires if not completed by that many session closes after it
    became ACTIVE; ``for_sessions``: the goal must hold at that many CONSECUTIVE session closes
    (snapshot goals only); ``fail_when``: breaking conditions; ``auto_start``: ACTIVE as soon
    as AVAILABLE (no StartMission needed).

    >>> Mission("first-trade", "First trade", "Buy or sell anything.", 50, Fills()).for_sessions is None
    True
    """

    id: str
    title: str
    summary: str
    xp: int
    goal: Goal
    prerequisites: tuple[str, ...] = ()
    within_sessions: int | None = None
    for_sessions: int | None = None
    fail_when: tuple[Breaker, ...] = ()
    auto_start: bool = False


_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def _bad(mission: str, field: str, message: str) -> GameError:
    return GameError("bad_mission", f"mission {mission!r}: field {field}: {message}")


def _floats_finite(prefix: str, obj: msgspec.Struct, mission: str) -> None:
    for name in obj.__struct_fields__:
        value = getattr(obj, name)
        if isinstance(value, float) and not math.isfinite(value):
            raise _bad(mission, f"{prefix}{name}", "must be a finite number")


def _fraction(value: float | None, mission: str, field: str, *, upper: float = 1.0, open_low: bool = False) -> None:
    if value is None:
        return
    if not (0.0 < value <= upper if open_low else 0.0 <= value <= upper):
        low = "above 0" if open_low else "at least 0"
        raise _bad(mission, field, f"must be {low} and at most {upper:g} (a fraction), not {value:g}")


def validate(m: Mission) -> Mission:
    """``m`` if its fields make sense on their own, else a GameError naming the field.

    >>> validate(Mission("m", "M", "Do it.", -5, Fills()))
    Traceback (most recent call last):
    ...
    vtrade.game.errors.GameError: mission 'm': field xp: must be 0 or more, not -5
    """
    mid = m.id
    if not _ID.fullmatch(m.id):
        raise _bad(
            mid, "id", "must be 1-64 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit"
        )
    for field in ("title", "summary"):
        if not getattr(m, field).strip():
            raise _bad(mid, field, "must not be empty")
    if m.xp < 0:
        raise _bad(mid, "xp", f"must be 0 or more, not {m.xp}")
    for field in ("within_sessions", "for_sessions"):
        value = getattr(m, field)
        if value is not None and value < 1:
            raise _bad(mid, field, f"must be at least 1, not {value}")
    if m.for_sessions is not None and not isinstance(m.goal, SNAPSHOT_GOALS):
        raise _bad(mid, "for_sessions", f"applies to holdings, beta_band, cash and hedge goals, not {_kind(m.goal)}")
    if m.for_sessions is not None and m.within_sessions is not None and m.within_sessions < m.for_sessions:
        raise _bad(mid, "within_sessions", f"must be at least for_sessions ({m.for_sessions}) or it can never complete")
    if m.id in m.prerequisites:
        raise _bad(mid, "prerequisites", "a mission cannot require itself")
    g = m.goal
    _floats_finite("goal.", g, mid)
    match g:
        case Fills():
            if g.count < 1:
                raise _bad(mid, "goal.count", f"must be at least 1, not {g.count}")
            if g.min_quantity < 0:
                raise _bad(mid, "goal.min_quantity", f"must be 0 or more, not {g.min_quantity:g}")
        case RoundTrip():
            if g.min_profit < 0:
                raise _bad(mid, "goal.min_profit", f"must be 0 or more, not {g.min_profit:g}")
        case Holdings():
            if g.min_sectors < 0:
                raise _bad(mid, "goal.min_sectors", f"must be 0 or more, not {g.min_sectors}")
            _fraction(g.max_weight, mid, "goal.max_weight", open_low=True)
            _fraction(g.min_invested, mid, "goal.min_invested", upper=10.0)
        case BetaBand():
            if g.low > g.high:
                raise _bad(mid, "goal.low", f"must not be above goal.high ({g.low:g} > {g.high:g})")
        case CashFloor():
            _fraction(g.min_fraction, mid, "goal.min_fraction")
            _fraction(g.min_invested, mid, "goal.min_invested", upper=10.0)
        case BeatBenchmark():
            if g.sessions < 1:
                raise _bad(mid, "goal.sessions", f"must be at least 1, not {g.sessions}")
        case Hedge():
            _fraction(g.min_long, mid, "goal.min_long", upper=10.0)
        case SurviveShock():
            if g.closes < 1:
                raise _bad(mid, "goal.closes", f"must be at least 1, not {g.closes}")
    for i, b in enumerate(m.fail_when):
        _floats_finite(f"fail_when[{i}].", b, mid)
        if isinstance(b, DrawdownAbove):
            _fraction(b.limit, mid, f"fail_when[{i}].limit", open_low=True)
    return m


def _kind(obj: msgspec.Struct) -> str:
    return str(type(obj).__struct_config__.tag)


_AT = re.compile(r"^(?P<msg>.*?) - at `\$\.?(?P<path>[^`]*)`$")


def _field_message(exc: msgspec.ValidationError) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.xp`": lead with the field a teacher wrote.
    text = str(exc)
    m = _AT.match(text)
    if m is None:
        return text
    path = m["path"].strip(".")
    return f"field {path}: {m['msg']}" if path else m["msg"]


def load_missions(text: str, known: Mapping[str, Mission] | None = None) -> tuple[Mission, ...]:
    """The missions of TOML ``text``: an array of tables ``[[mission]]`` with the fields of
    :class:`Mission`; ``goal = { kind = "fills", count = 5, with_note = true }`` and
    ``fail_when = [{ kind = "margin_call" }]`` take the kind names of the goal and breaker
    classes. Prerequisites may name missions of ``text`` or of ``known`` (already defined).

    All or nothing: any error (bad TOML, an unknown or mistyped field, a value out of range,
    an id defined twice, an unknown prerequisite, a cycle of prerequisites) is a GameError
    naming the mission and the field, and no mission is returned.

    >>> text = "[[mission]]\\nid = 'x'\\ntitle = 'X'\\nsummary = 'Do x.'\\nxp = 1\\n"
    >>> load_missions(text + "goal = { kind = 'fills', colour = 2 }")
    Traceback (most recent call last):
    ...
    vtrade.game.errors.GameError: mission #1 ('x'): field goal: Object contains unknown field `colour`
    """
    known = known or {}
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GameError("bad_mission", f"missions TOML does not parse: {exc}") from exc
    extra = sorted(set(doc) - {"mission"})
    if extra:
        raise GameError("bad_mission", f"missions TOML: unknown top-level key {extra[0]!r} (write [[mission]] tables)")
    tables = doc.get("mission", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise GameError("bad_mission", "missions TOML: 'mission' must be an array of tables ([[mission]])")
    out: list[Mission] = []
    for i, table in enumerate(tables):
        label = f"mission #{i + 1} ({table.get('id', '?')!r})"
        try:
            m = msgspec.convert(table, Mission)
        except msgspec.ValidationError as exc:
            raise GameError("bad_mission", f"{label}: {_field_message(exc)}") from exc
        validate(m)
        out.append(m)
    check_catalog(out, known)
    return tuple(out)


def check_catalog(new: Iterable[Mission], known: Mapping[str, Mission]) -> None:
    """GameError unless ``new`` missions can join ``known``: ids unique, prerequisites defined,
    no cycle of prerequisites (a cycle would lock its missions forever)."""
    all_missions: dict[str, Mission] = dict(known)
    for m in new:
        if m.id in all_missions:
            raise GameError("duplicate_mission", f"mission {m.id!r} is already defined; choose another id")
        all_missions[m.id] = m
    for m in new:
        for p in m.prerequisites:
            if p not in all_missions:
                raise _bad(m.id, "prerequisites", f"no mission {p!r} is defined")
    # Depth-first search for a cycle through the new missions (the known ones have none).
    state: dict[str, int] = {}

    def visit(mid: str, path: tuple[str, ...]) -> None:
        if state.get(mid) == 2:
            return
        if state.get(mid) == 1:
            cycle = " -> ".join((*path[path.index(mid) :], mid))
            raise _bad(mid, "prerequisites", f"form a cycle: {cycle}")
        state[mid] = 1
        for p in all_missions[mid].prerequisites:
            visit(p, (*path, mid))
        state[mid] = 2

    for m in new:
        visit(m.id, ())


def invested(snapshot: Snapshot) -> float:
    """The long positions' weight: the fraction of NAV held long."""
    return sum(h.weight for h in snapshot.holdings if h.weight > 0)


def sectors(snapshot: Snapshot) -> frozenset[str]:
    """The sectors of the long positions."""
    return frozenset(h.sector for h in snapshot.holdings if h.weight > 0 and h.sector)


def snapshot_holds(goal: Goal, snapshot: Snapshot) -> bool:
    """Whether the portfolio of ``snapshot`` meets a snapshot goal (False for other kinds).

    >>> from vtrade.game.inputs import Holding
    >>> s = Snapshot(ts=1, id="s", account="a", session=1, nav=100.0, cash=15.0, start_nav=100.0,
    ...              holdings=(Holding("AAPL", "Information Technology", "stock", 0.85, 190.0),),
    ...              beta=1.1, benchmark_return=0.0, total_return=0.0, max_drawdown=0.0, margin_call=False)
    >>> snapshot_holds(CashFloor(0.10, min_invested=0.5), s), snapshot_holds(BetaBand(0.8, 1.0), s)
    (True, False)
    """
    match goal:
        case Holdings():
            weights = [abs(h.weight) for h in snapshot.holdings]
            return (
                len(sectors(snapshot)) >= goal.min_sectors
                and (goal.max_weight is None or max(weights, default=0.0) <= goal.max_weight)
                and invested(snapshot) >= goal.min_invested
            )
        case BetaBand():
            return snapshot.beta is not None and goal.low <= snapshot.beta <= goal.high
        case CashFloor():
            return (
                snapshot.nav > 0
                and snapshot.cash / snapshot.nav >= goal.min_fraction
                and invested(snapshot) >= goal.min_invested
            )
        case Hedge():
            hedged = any(h.kind == goal.hedge_kind and h.weight < 0 for h in snapshot.holdings)
            long = sum(h.weight for h in snapshot.holdings if h.weight > 0 and h.kind != goal.hedge_kind)
            return snapshot.beta is not None and snapshot.beta < goal.max_beta and hedged and long >= goal.min_long
    return False


def goal_kind(goal: Goal) -> str:
    """The TOML name of ``goal``'s kind, e.g. ``'fills'``."""
    return _kind(goal)
