"""The game's state and its fold: :func:`apply` one input, get the new state and the events.

Per (account, assigned mission) a state machine (:class:`~vtrade.game.events.Status`)::

    LOCKED ──prerequisites done / teacher unlock──► AVAILABLE ──StartMission / auto_start──► ACTIVE
    ACTIVE ──goal holds──► COMPLETED ──ClaimMission──► CLAIMED (awards its XP)
    ACTIVE ──breaking condition──► FAILED;   LOCKED | AVAILABLE | ACTIVE ──deadline──► EXPIRED

Deadlines: the assignment's ``due_ts`` passes on any input with ``ts >= due_ts`` (the game's
clock is the largest ``ts`` applied so far, so an input from a lagging source cannot undo it);
``within_sessions`` counts session closes after activation. Goals count only what happens
after the mission became ACTIVE. Teacher overrides: complete, fail, reopen (ACTIVE with its
progress reset), unlock (skip prerequisites).

Purity: :func:`apply` never mutates the state it is given (every change builds new structs
and new dicts), reads no clock and does no I/O. A refused input raises
:class:`~vtrade.game.errors.GameError` and changes nothing.

Idempotency (at-least-once delivery): an input applied twice returns the same state and no
events. How each kind is recognised, chosen to keep the state's memory in proportion to what
matters rather than to every input ever seen:

- ``Tick``: by time alone. It only advances the clock and expires due missions, both
  monotone, so a Tick at or before the clock is a no-op and its id (one a simulated minute,
  perhaps) is not kept.
- ``Snapshot``: by its account's last applied snapshot: one at or before it in ``ts`` is a
  redelivery or stale and is ignored (the portfolio partition orders an account's snapshots).
- ``SessionClosed``: by session number: a close of a session at or before the last one.
- Fills, margin calls, entries, departures, starts, claims and overrides: by id, in the set of
  their account (so the ids live and die with the account's record).
- Shocks, assignments and mission definitions (a handful per class): by id, in one class-wide set.

Event ids are ``"<cause input id>/<n>"`` (see :class:`~vtrade.game.events.Outbox`). Every
iteration over accounts and missions is in sorted order, so a worker restored from
:func:`encode_state` bytes makes the same events as one that never stopped.

>>> from vtrade.game.inputs import FillSeen, MissionAssigned
>>> s = new_state()
>>> s, ev = apply(s, MissionAssigned(ts=1, id="as-1", mission_id="first-trade", accounts=("ada",),
...                                 due_ts=None, xp=None))
>>> [(e.before, e.after) for e in ev]
[(None, <Status.AVAILABLE: 'available'>), (<Status.AVAILABLE: 'available'>, <Status.ACTIVE: 'active'>)]
>>> s, ev = apply(s, FillSeen(ts=2, id="f-1", account="ada", client_order_id="o-1", symbol="AAPL", side="buy",
...                          quantity=1.0, price=190.0, liquidity="taker", slippage_bps=1.0, order_type="market",
...                          from_stop=False, note=""))
>>> [type(e).__name__ for e in ev], s.players["ada"].missions["first-trade"].status
(['MissionChanged', 'BadgeEarned'], <Status.COMPLETED: 'completed'>)
>>> again = FillSeen(ts=2, id="f-1", account="ada", client_order_id="o-1", symbol="AAPL", side="buy",
...                  quantity=1.0, price=190.0, liquidity="taker", slippage_bps=1.0, order_type="market",
...                  from_stop=False, note="")
>>> apply(s, again) == (s, ())
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from vtrade.game import progression
from vtrade.game.errors import GameError
from vtrade.game.events import GameEvent, Outbox, Status
from vtrade.game.inputs import (
    AccountInput,
    ClaimMission,
    FillSeen,
    GameInput,
    MarginCalled,
    MissionAssigned,
    MissionsDefined,
    SessionClosed,
    ShockSeen,
    Snapshot,
    StartMission,
    StudentEntered,
    StudentLeft,
    TeacherOverride,
    Tick,
)
from vtrade.game.missions import (
    SNAPSHOT_GOALS,
    BeatBenchmark,
    DrawdownAbove,
    Fills,
    MarginCall,
    Mission,
    RoundTrip,
    SurviveShock,
    load_missions,
    snapshot_holds,
)
from vtrade.game.progression import Progress

__all__ = [
    "Assignment",
    "GameState",
    "Lot",
    "OrderTally",
    "Player",
    "Standing",
    "apply",
    "decode_state",
    "encode_state",
    "fold",
    "new_state",
]

replace = msgspec.structs.replace


class OrderTally(msgspec.Struct, frozen=True, array_like=True):
    """An order still adding up toward a Fills goal's ``min_quantity``/``max_slippage_bps``:
    its matching ``quantity`` and the sum of quantity × slippage (bps)."""

    order: str
    quantity: float
    slippage_qty: float


class Lot(msgspec.Struct, frozen=True, array_like=True):
    """Units of ``symbol`` bought since activation (for a RoundTrip goal) and what they cost."""

    symbol: str
    quantity: float
    cost: float


class Assignment(msgspec.Struct, frozen=True, array_like=True):
    """One account's assigned mission: its ``status``, the ``xp`` claiming it awards, its
    ``due_ts``, and the progress its goal needs (reset when it (re)starts): ``sessions``
    closed since activation, ``streak`` of consecutive closes the goal held, ``counted``
    orders and ``partials`` of a Fills goal, ``lots`` of a RoundTrip goal, the baseline
    (``base_return``/``base_bench``: total and SPY returns at activation), ``peak_nav`` and
    ``drawdown`` since activation, ``shock_closes`` since a shock (None before one)."""

    mission_id: str
    status: Status
    xp: int
    due_ts: int | None
    assigned_ts: int
    activated_ts: int | None = None
    sessions: int = 0
    streak: int = 0
    counted: tuple[str, ...] = ()
    partials: tuple[OrderTally, ...] = ()
    lots: tuple[Lot, ...] = ()
    base_return: float | None = None
    base_bench: float | None = None
    peak_nav: float | None = None
    drawdown: float = 0.0
    shock_closes: int | None = None


class Player(msgspec.Struct, frozen=True, array_like=True):
    """An account in the game: its ``missions`` by id, its ``progress``, the ids of its
    inputs already applied (``seen``) and its ``last_snapshot``. ``left_ts`` is set once it
    left: its missions stop and later inputs for it are ignored."""

    account: str
    entered_ts: int
    left_ts: int | None = None
    missions: dict[str, Assignment] = {}
    progress: Progress = Progress()
    seen: frozenset[str] = frozenset()
    last_snapshot: Snapshot | None = None


class Standing(msgspec.Struct, frozen=True, array_like=True):
    """A class-wide assignment: applies to every account, including those that enter later."""

    mission_id: str
    due_ts: int | None
    xp: int | None


class GameState(msgspec.Struct, frozen=True):
    """The whole game of one class: the mission catalog, the players by account, the
    class-wide assignments, the class-wide ``seen`` ids, the ``clock`` (largest ts applied),
    the last closed session, and ``next_due`` (at or before the earliest open due date: when
    to look for expiries)."""

    missions: dict[str, Mission]
    players: dict[str, Player] = {}
    standing: dict[str, Standing] = {}
    seen: frozenset[str] = frozenset()
    clock: int = 0
    last_session: int | None = None
    next_due: int | None = None


def new_state(missions: Iterable[Mission] | None = None) -> GameState:
    """An empty game whose catalog is ``missions`` (default: the library).

    >>> len(new_state().missions) >= 15
    True
    """
    if missions is None:
        from vtrade.game.library import LIBRARY

        missions = LIBRARY
    return GameState(missions={m.id: m for m in missions})


_state_encoder = msgspec.msgpack.Encoder(order="deterministic")
_state_decoder = msgspec.msgpack.Decoder(GameState)


def encode_state(state: GameState) -> bytes:
    """``state`` as bytes for a checkpoint (sorted maps and sets: the same state, the same bytes).

    >>> s = new_state()
    >>> decode_state(encode_state(s)) == s
    True
    """
    return _state_encoder.encode(state)


def decode_state(data: bytes) -> GameState:
    """The state :func:`encode_state` wrote; ValueError if ``data`` is not one."""
    try:
        return _state_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a game state: {exc}") from exc


# ---------------------------------------------------------------------------- the fold
def fold(
    inputs: Iterable[GameInput], state: GameState | None = None, *, strict: bool = False
) -> tuple[GameState, tuple[GameEvent, ...]]:
    """``state`` (default :func:`new_state`) after every input, and all the events they made,
    for a batch recomputation from the journal. A refused input is skipped as it was live
    (it changed nothing then either), unless ``strict``, which raises its GameError.

    >>> from vtrade.game.inputs import StudentEntered
    >>> s, ev = fold([StudentEntered(ts=1, id="e-1", account="ada")])
    >>> list(s.players)
    ['ada']
    """
    s = new_state() if state is None else state
    events: list[GameEvent] = []
    for inp in inputs:
        try:
            s, out = apply(s, inp)
        except GameError:
            if strict:
                raise
            continue
        events.extend(out)
    return s, tuple(events)


def apply(state: GameState, inp: GameInput) -> tuple[GameState, tuple[GameEvent, ...]]:
    """The state after ``inp`` and the events it made; ``(state, ())`` for a redelivery.

    Raises GameError for a refused input (unknown or unassigned mission, a start of a locked
    mission, a claim of one not completed, a bad field) and the state is unchanged.
    """
    if _already_applied(state, inp):
        return state, ()
    _check_input(inp)
    w = _Work(state, inp)
    w.expire_due()
    match inp:
        case Tick():
            pass
        case FillSeen():
            w.fill(inp)
        case Snapshot():
            w.snapshot(inp)
        case SessionClosed():
            w.session_closed(inp)
        case MarginCalled():
            w.margin_called(inp)
        case ShockSeen():
            w.shock(inp)
        case StudentEntered():
            w.entered(inp)
        case StudentLeft():
            w.left(inp)
        case MissionAssigned():
            w.assigned(inp)
        case MissionsDefined():
            w.defined(inp)
        case TeacherOverride():
            w.override(inp)
        case StartMission():
            w.start(inp)
        case ClaimMission():
            w.claim(inp)
        case _:
            raise GameError("bad_input", f"{type(inp).__name__} is not a game input")
    return w.finish()


_CLASS_WIDE_IDS = (ShockSeen, MissionAssigned, MissionsDefined)


def _already_applied(state: GameState, inp: GameInput) -> bool:
    match inp:
        case Tick():
            return inp.ts <= state.clock
        case SessionClosed():
            return state.last_session is not None and inp.session <= state.last_session
        case ShockSeen() | MissionAssigned() | MissionsDefined():
            return inp.id in state.seen
        case Snapshot():
            p = state.players.get(inp.account)
            if p is None:
                return False
            last = p.last_snapshot
            return p.left_ts is not None or (last is not None and inp.ts <= last.ts)
        case AccountInput():
            p = state.players.get(inp.account)
            return p is not None and inp.id in p.seen
    return False


def _finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise GameError("bad_input", f"{name} must be a finite number, not {value}")


def _check_input(inp: GameInput) -> None:
    # The worker builds inputs from checked events; a NaN here is a bug upstream, and folding it
    # would poison comparisons silently, so refuse it loudly.
    if not inp.id:
        raise GameError("bad_input", f"{type(inp).__name__} has an empty id")
    if isinstance(inp, AccountInput) and not inp.account:
        raise GameError("bad_input", f"{type(inp).__name__} {inp.id} has an empty account")
    match inp:
        case FillSeen():
            for name in ("quantity", "price", "slippage_bps"):
                _finite(f"fill {inp.id}: {name}", getattr(inp, name))
            if inp.quantity <= 0:
                raise GameError("bad_input", f"fill {inp.id}: quantity must be above 0, not {inp.quantity}")
        case Snapshot():
            for name in ("nav", "cash", "start_nav", "total_return", "max_drawdown"):
                _finite(f"snapshot {inp.id}: {name}", getattr(inp, name))
            for name in ("beta", "benchmark_return"):
                value = getattr(inp, name)
                if value is not None:
                    _finite(f"snapshot {inp.id}: {name}", value)
            for h in inp.holdings:
                _finite(f"snapshot {inp.id}: weight of {h.symbol}", h.weight)
                _finite(f"snapshot {inp.id}: price of {h.symbol}", h.price)
        case MissionAssigned():
            if inp.xp is not None and inp.xp < 0:
                raise GameError("bad_assignment", f"XP must be 0 or more, not {inp.xp}")
            if len(set(inp.accounts)) != len(inp.accounts) or not all(inp.accounts):
                raise GameError("bad_assignment", "accounts must be distinct and not empty")


def _when(ts: int) -> str:
    """A simulated time as a person reads it (``2024-01-02 14:30 UTC``), for messages."""
    return datetime.fromtimestamp(ts // 1_000_000_000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _title(m: Mission) -> str:
    return f"'{m.title}'"


class _Work:
    """One application of one input: copies of the parts of the state it changes (never the
    caller's), and the outbox of events."""

    def __init__(self, state: GameState, inp: GameInput) -> None:
        self.state = state
        self.inp = inp
        self.ts = inp.ts
        self.clock = max(state.clock, inp.ts)
        self.players: dict[str, Player] = dict(state.players)
        self.standing = state.standing
        self.missions = state.missions
        self.seen = state.seen
        self.last_session = state.last_session
        self.next_due = state.next_due
        self.out = Outbox(inp.id, inp.ts)

    def finish(self) -> tuple[GameState, tuple[GameEvent, ...]]:
        s = GameState(
            missions=self.missions,
            players=self.players,
            standing=self.standing,
            seen=self.seen,
            clock=self.clock,
            last_session=self.last_session,
            next_due=self.next_due,
        )
        return s, tuple(self.out.events)

    # ------------------------------------------------------------------ helpers
    def remember(self, account: str) -> None:
        """Keep the input's id in its account's set (after a successful application)."""
        p = self.players[account]
        self.players[account] = replace(p, seen=p.seen | {self.inp.id})

    def put(self, account: str, a: Assignment) -> None:
        p = self.players[account]
        missions = dict(p.missions)
        missions[a.mission_id] = a
        self.players[account] = replace(p, missions=missions)

    def live(self, account: str) -> Player:
        """The account's record for a command: refused if unknown or gone."""
        p = self.players.get(account)
        if p is None:
            raise GameError("unknown_account", f"No student with account {account!r} is in the game")
        if p.left_ts is not None:
            raise GameError("account_left", f"Account {account!r} has left the class; its missions have stopped")
        return p

    def assignment(self, account: str, mission_id: str) -> Assignment:
        p = self.live(account)
        if mission_id not in self.missions:
            raise GameError("unknown_mission", f"There is no mission {mission_id!r}")
        a = p.missions.get(mission_id)
        if a is None:
            raise GameError("not_assigned", f"Mission {_title(self.missions[mission_id])} is not assigned to you")
        return a

    def ensure_player(self, account: str) -> Player | None:
        """The account's record, entering it first if new (a fill may reach the game before the
        join: topics are ordered apart); None if it left."""
        p = self.players.get(account)
        if p is None:
            p = Player(account, self.ts)
            self.players[account] = p
            for mid in sorted(self.standing):
                st = self.standing[mid]
                self.assign(account, self.missions[mid], st.due_ts, st.xp)
            p = self.players[account]
        return None if p.left_ts is not None else p

    def prerequisites_done(self, account: str, m: Mission) -> bool:
        missions = self.players[account].missions
        return all(
            (a := missions.get(pid)) is not None and a.status in (Status.COMPLETED, Status.CLAIMED)
            for pid in m.prerequisites
        )

    def move(self, account: str, a: Assignment, after: Status, reason: str, **changes: Any) -> Assignment:
        """Transition ``a`` to ``after`` with its event; activation resets progress; a
        completion unlocks what waited for it."""
        before = a.status
        if after is Status.ACTIVE:
            changes = {**self.activation(account), **changes}
        new = replace(a, status=after, **changes)
        self.put(account, new)
        self.out.mission(account, a.mission_id, before, after, reason)
        if after is Status.AVAILABLE and self.missions[a.mission_id].auto_start:
            new = self.move(account, new, Status.ACTIVE, f"{_title(self.missions[a.mission_id])} started by itself")
        if after in (Status.COMPLETED, Status.CLAIMED):
            self.unlock_waiting(account)
        return new

    def activation(self, account: str) -> dict[str, Any]:
        """The fresh progress of a mission starting now, its baseline from the last snapshot."""
        snap = self.players[account].last_snapshot
        fresh: dict[str, Any] = {
            "activated_ts": self.ts,
            "sessions": 0,
            "streak": 0,
            "counted": (),
            "partials": (),
            "lots": (),
            "base_return": None,
            "base_bench": None,
            "peak_nav": None,
            "drawdown": 0.0,
            "shock_closes": None,
        }
        if snap is not None:
            fresh["peak_nav"] = snap.nav
            if snap.benchmark_return is not None:
                fresh["base_return"] = snap.total_return
                fresh["base_bench"] = snap.benchmark_return
        return fresh

    def unlock_waiting(self, account: str) -> None:
        for mid in sorted(self.players[account].missions):
            a = self.players[account].missions[mid]
            m = self.missions[mid]
            if a.status is Status.LOCKED and self.prerequisites_done(account, m):
                self.move(account, a, Status.AVAILABLE, f"{_title(m)} is unlocked: you completed what it needs")

    def assign(self, account: str, m: Mission, due_ts: int | None, xp: int | None) -> None:
        p = self.players[account]
        old = p.missions.get(m.id)
        if old is not None:
            # Re-assigning moves the due date and the XP of a mission still open; a decided one stays.
            if old.status.open:
                self.put(account, replace(old, due_ts=due_ts, xp=m.xp if xp is None else xp))
                self.watch_due(account, m, due_ts)
            return
        a = Assignment(m.id, Status.LOCKED, m.xp if xp is None else xp, due_ts, self.ts)
        if self.prerequisites_done(account, m):
            self.put(account, replace(a, status=Status.AVAILABLE))
            self.out.mission(
                account, m.id, None, Status.AVAILABLE, f"New mission {_title(m)}: start it when you are ready"
            )
            if m.auto_start:
                self.move(
                    account, self.players[account].missions[m.id], Status.ACTIVE, f"{_title(m)} started by itself"
                )
        else:
            self.put(account, a)
            needs = ", ".join(_title(self.missions[pid]) for pid in m.prerequisites)
            self.out.mission(
                account, m.id, None, Status.LOCKED, f"New mission {_title(m)}: complete {needs} to unlock it"
            )
        self.watch_due(account, m, due_ts)

    def watch_due(self, account: str, m: Mission, due_ts: int | None) -> None:
        """A (re-)assignment's due date: already passed, the mission expires now (an account
        entering after a class-wide due date, a teacher moving a date into the past); else it is
        watched (``next_due``)."""
        if due_ts is None:
            return
        if due_ts <= self.clock:
            self.move(account, self.players[account].missions[m.id], Status.EXPIRED,
                      f"{_title(m)} expired: its due date passed")  # fmt: skip
        else:
            self.next_due = due_ts if self.next_due is None else min(self.next_due, due_ts)

    def active(self, account: str) -> list[tuple[Assignment, Mission]]:
        p = self.players[account]
        return [
            (p.missions[mid], self.missions[mid])
            for mid in sorted(p.missions)
            if p.missions[mid].status is Status.ACTIVE
        ]

    def live_accounts(self) -> list[str]:
        return [acc for acc in sorted(self.players) if self.players[acc].left_ts is None]

    # ------------------------------------------------------------------ deadlines
    def expire_due(self) -> None:
        if self.next_due is None or self.clock < self.next_due:
            return
        upcoming: int | None = None
        for acc in self.live_accounts():
            for mid in sorted(self.players[acc].missions):
                a = self.players[acc].missions[mid]
                if not a.status.open or a.due_ts is None:
                    continue
                if a.due_ts <= self.clock:
                    self.move(acc, a, Status.EXPIRED, f"{_title(self.missions[mid])} expired: its due date passed")
                else:
                    upcoming = a.due_ts if upcoming is None else min(upcoming, a.due_ts)
        self.next_due = upcoming

    # ------------------------------------------------------------------ inputs
    def fill(self, f: FillSeen) -> None:
        if self.ensure_player(f.account) is None:
            return
        for a, m in self.active(f.account):
            if isinstance(m.goal, Fills):
                self.fill_goal(f, a, m, m.goal)
            elif isinstance(m.goal, RoundTrip):
                self.round_trip(f, a, m, m.goal)
        p = self.players[f.account]
        self.players[f.account] = replace(p, progress=progression.on_fill(p.progress, f, self.out))
        self.remember(f.account)

    def fill_goal(self, f: FillSeen, a: Assignment, m: Mission, g: Fills) -> None:
        if not _fill_matches(g, f) or f.client_order_id in a.counted:
            return
        counted, partials = a.counted, a.partials
        if g.min_quantity > 0 or g.max_slippage_bps is not None:
            prior = next((t for t in partials if t.order == f.client_order_id), OrderTally(f.client_order_id, 0.0, 0.0))
            tally = OrderTally(
                prior.order, prior.quantity + f.quantity, prior.slippage_qty + f.quantity * f.slippage_bps
            )
            rest = tuple(t for t in partials if t.order != f.client_order_id)
            slippage_ok = g.max_slippage_bps is None or tally.slippage_qty / tally.quantity <= g.max_slippage_bps
            if tally.quantity >= g.min_quantity and slippage_ok:
                counted, partials = (*counted, f.client_order_id), rest
            else:
                partials = (*rest, tally)
        else:
            counted = (*counted, f.client_order_id)
        if len(counted) >= g.count:
            n = "an order" if g.count == 1 else f"{g.count} orders"
            self.move(
                f.account,
                a,
                Status.COMPLETED,
                f"You completed {_title(m)}: {n} filled as it asks",
                counted=counted,
                partials=(),
            )
        else:
            self.put(f.account, replace(a, counted=counted, partials=partials))

    def round_trip(self, f: FillSeen, a: Assignment, m: Mission, g: RoundTrip) -> None:
        lot = next((x for x in a.lots if x.symbol == f.symbol), Lot(f.symbol, 0.0, 0.0))
        others = tuple(x for x in a.lots if x.symbol != f.symbol)
        if f.side == "buy":
            self.put(
                f.account,
                replace(a, lots=(*others, Lot(f.symbol, lot.quantity + f.quantity, lot.cost + f.quantity * f.price))),
            )
            return
        matched = min(f.quantity, lot.quantity)
        if matched <= 0:
            return  # a sell of units not bought since activation is no round trip
        average = lot.cost / lot.quantity
        profit = matched * (f.price - average)
        left = Lot(f.symbol, lot.quantity - matched, lot.cost - matched * average)
        lots = (*others, left) if left.quantity > 0 else others
        if profit > g.min_profit:
            self.move(
                f.account,
                a,
                Status.COMPLETED,
                f"You completed {_title(m)}: you sold {f.symbol} for a profit of {profit:,.2f}",
                lots=lots,
            )
        else:
            self.put(f.account, replace(a, lots=lots))

    def snapshot(self, snap: Snapshot) -> None:
        if self.ensure_player(snap.account) is None:
            return
        p = self.players[snap.account]
        self.players[snap.account] = replace(p, last_snapshot=snap)
        for a, m in self.active(snap.account):
            changes: dict[str, Any] = {}
            if a.base_bench is None and snap.benchmark_return is not None:
                changes["base_return"], changes["base_bench"] = snap.total_return, snap.benchmark_return
            peak = snap.nav if a.peak_nav is None else max(a.peak_nav, snap.nav)
            drawdown = max(a.drawdown, (peak - snap.nav) / peak if peak > 0 else 0.0)
            changes["peak_nav"], changes["drawdown"] = peak, drawdown
            a = replace(a, **changes)
            if snap.margin_call and any(isinstance(b, MarginCall) for b in m.fail_when):
                self.move(snap.account, a, Status.FAILED, f"{_title(m)} failed: you got a margin call")
                continue
            limit = next((b.limit for b in m.fail_when if isinstance(b, DrawdownAbove)), None)
            if limit is not None and drawdown > limit:
                self.move(
                    snap.account,
                    a,
                    Status.FAILED,
                    f"{_title(m)} failed: your drawdown reached {drawdown:.1%}, beyond the {limit:.0%} limit",
                )
                continue
            if isinstance(m.goal, SNAPSHOT_GOALS) and m.for_sessions is None and snapshot_holds(m.goal, snap):
                self.move(
                    snap.account, a, Status.COMPLETED, f"You completed {_title(m)}: your portfolio meets the goal"
                )
                continue
            self.put(snap.account, a)
        p = self.players[snap.account]
        self.players[snap.account] = replace(p, progress=progression.on_snapshot(p.progress, snap, self.out))

    def session_closed(self, c: SessionClosed) -> None:
        self.last_session = c.session
        for acc in self.live_accounts():
            snap = self.players[acc].last_snapshot
            current = snap if snap is not None and snap.session == c.session else None
            for a, m in self.active(acc):
                self.close_one(acc, a, m, current)
            p = self.players[acc]
            self.players[acc] = replace(p, progress=progression.on_session_closed(p.progress, acc, self.out))

    def close_one(self, acc: str, a: Assignment, m: Mission, snap: Snapshot | None) -> None:
        a = replace(a, sessions=a.sessions + 1)
        g = m.goal
        if m.for_sessions is not None and isinstance(g, SNAPSHOT_GOALS):
            held = snap is not None and snapshot_holds(g, snap)
            a = replace(a, streak=a.streak + 1 if held else 0)
            if a.streak >= m.for_sessions:
                self.move(
                    acc,
                    a,
                    Status.COMPLETED,
                    f"You completed {_title(m)}: the goal held at {a.streak} session closes in a row",
                )
                return
        elif isinstance(g, BeatBenchmark) and a.sessions >= g.sessions and snap is not None:
            ahead = _window(snap, a)
            if ahead is not None and ahead[0] - ahead[1] > g.margin:
                mine, spy = ahead
                self.move(
                    acc,
                    a,
                    Status.COMPLETED,
                    f"You completed {_title(m)}: you returned {mine:+.2%} against SPY's {spy:+.2%}",
                )
                return
        elif isinstance(g, SurviveShock) and a.shock_closes is not None:
            closes = a.shock_closes + 1
            a = replace(a, shock_closes=closes)
            if closes >= g.closes:
                self.move(
                    acc,
                    a,
                    Status.COMPLETED,
                    f"You completed {_title(m)}: {closes} session closes after the shock without a margin call",
                )
                return
        if m.within_sessions is not None and a.sessions >= m.within_sessions:
            self.move(
                acc, a, Status.EXPIRED, f"{_title(m)} expired: {a.sessions} session closes passed without completing it"
            )
            return
        self.put(acc, a)

    def margin_called(self, mc: MarginCalled) -> None:
        if self.ensure_player(mc.account) is None:
            return
        for a, m in self.active(mc.account):
            if any(isinstance(b, MarginCall) for b in m.fail_when):
                self.move(mc.account, a, Status.FAILED, f"{_title(m)} failed: you got a margin call")
        p = self.players[mc.account]
        self.players[mc.account] = replace(p, progress=progression.on_margin_call(p.progress))
        self.remember(mc.account)

    def shock(self, sh: ShockSeen) -> None:
        self.seen = self.seen | {sh.id}
        for acc in self.live_accounts():
            for a, m in self.active(acc):
                if isinstance(m.goal, SurviveShock):
                    self.put(acc, replace(a, shock_closes=0))
            p = self.players[acc]
            self.players[acc] = replace(p, progress=progression.on_shock(p.progress))

    def entered(self, e: StudentEntered) -> None:
        if self.ensure_player(e.account) is not None:
            self.remember(e.account)

    def left(self, e: StudentLeft) -> None:
        p = self.players.get(e.account)
        if p is None:
            self.players[e.account] = Player(e.account, e.ts, left_ts=e.ts, seen=frozenset({e.id}))
        elif p.left_ts is None:
            self.players[e.account] = replace(p, left_ts=e.ts, seen=p.seen | {e.id})

    def assigned(self, x: MissionAssigned) -> None:
        m = self.missions.get(x.mission_id)
        if m is None:
            raise GameError("unknown_mission", f"There is no mission {x.mission_id!r} to assign")
        if x.due_ts is not None and x.due_ts <= self.clock:
            raise GameError(
                "bad_assignment",
                f"The due date of {_title(m)} is already past: it is {_when(x.due_ts)}, "
                f"and the class's simulated time is now {_when(self.clock)}",
            )
        self.seen = self.seen | {x.id}
        if x.accounts:
            targets = list(x.accounts)
        else:
            self.standing = {**self.standing, m.id: Standing(m.id, x.due_ts, x.xp)}
            targets = self.live_accounts()
        for acc in targets:
            if self.ensure_player(acc) is not None:
                self.assign(acc, m, x.due_ts, x.xp)

    def defined(self, d: MissionsDefined) -> None:
        new = load_missions(d.toml, self.missions)
        self.missions = {**self.missions, **{m.id: m for m in new}}
        self.seen = self.seen | {d.id}

    def override(self, o: TeacherOverride) -> None:
        a = self.assignment(o.account, o.mission_id)
        m = self.missions[o.mission_id]
        why = o.reason.strip() or "no reason given"
        refuse = GameError("bad_transition", f"Cannot {o.action} {_title(m)}: it is {a.status.value}")
        match o.action:
            case "complete":
                if a.status in (Status.COMPLETED, Status.CLAIMED):
                    raise refuse
                self.move(o.account, a, Status.COMPLETED, f"Your teacher marked {_title(m)} complete: {why}")
            case "fail":
                if a.status in (Status.FAILED, Status.EXPIRED, Status.CLAIMED):
                    raise refuse
                self.move(o.account, a, Status.FAILED, f"Your teacher marked {_title(m)} failed: {why}")
            case "reopen":
                if a.status in (Status.LOCKED, Status.AVAILABLE, Status.CLAIMED):
                    raise refuse
                due = a.due_ts if a.due_ts is not None and a.due_ts > self.clock else None
                self.move(o.account, a, Status.ACTIVE, f"Your teacher reopened {_title(m)}: {why}", due_ts=due)
            case "unlock":
                if a.status is not Status.LOCKED:
                    raise refuse
                self.move(o.account, a, Status.AVAILABLE, f"Your teacher unlocked {_title(m)}: {why}")
        self.remember(o.account)

    def start(self, s: StartMission) -> None:
        a = self.assignment(s.account, s.mission_id)
        m = self.missions[s.mission_id]
        if a.status is Status.LOCKED:
            p = self.players[s.account]
            missing = [
                _title(self.missions[pid])
                for pid in m.prerequisites
                if (x := p.missions.get(pid)) is None or x.status not in (Status.COMPLETED, Status.CLAIMED)
            ]
            raise GameError("locked", f"Complete {', '.join(missing)} before starting {_title(m)}")
        if a.status is Status.ACTIVE:
            raise GameError("bad_transition", f"{_title(m)} is already started")
        if a.status is not Status.AVAILABLE:
            raise GameError("bad_transition", f"{_title(m)} cannot be started: it is {a.status.value}")
        self.move(s.account, a, Status.ACTIVE, f"You started {_title(m)}")
        self.remember(s.account)

    def claim(self, c: ClaimMission) -> None:
        a = self.assignment(c.account, c.mission_id)
        m = self.missions[c.mission_id]
        if a.status is Status.CLAIMED:
            raise GameError("bad_transition", f"You already claimed {_title(m)}")
        if a.status is not Status.COMPLETED:
            raise GameError("bad_transition", f"{_title(m)} is not completed yet: it is {a.status.value}")
        self.move(c.account, a, Status.CLAIMED, f"You claimed {a.xp} XP for {_title(m)}")
        p = self.players[c.account]
        self.players[c.account] = replace(p, progress=progression.on_claim(p.progress, c.account, m.id, a.xp, self.out))
        self.remember(c.account)


def _fill_matches(g: Fills, f: FillSeen) -> bool:
    return (
        (not g.side or f.side == g.side)
        and (not g.liquidity or f.liquidity == g.liquidity)
        and (not g.order_types or f.order_type in g.order_types)
        and (not g.kinds or f.kind in g.kinds)
        and (g.from_stop is None or f.from_stop == g.from_stop)
        and (not g.with_note or bool(f.note.strip()))
    )


def _window(snap: Snapshot, a: Assignment) -> tuple[float, float] | None:
    """(portfolio, SPY) returns since the assignment's baseline, or None when unknown."""
    if a.base_return is None or a.base_bench is None or snap.benchmark_return is None:
        return None
    if 1 + a.base_return <= 0 or 1 + a.base_bench <= 0:
        return None
    mine = (1 + snap.total_return) / (1 + a.base_return) - 1
    spy = (1 + snap.benchmark_return) / (1 + a.base_bench) - 1
    return mine, spy
