"""A class's state: the fold of its events, and the views read from it (the roster).

:func:`apply` is total over the events :func:`~vtrade.classroom.commands.decide` makes and
checks nothing twice: decide refuses bad commands, apply records what was decided. So
folding the same events always gives the same state, on any machine, after any restart.

>>> from vtrade.classroom.events import ClassCreated, RegistrationOpened, StudentJoined
>>> from vtrade.classroom.rules import ClassRules
>>> s = fold([ClassCreated(1, "c-1", "t-1", "Econ 101", "000G4-0R40M-30E20", ClassRules()),
...           RegistrationOpened(2, "c-1", "t-1"),
...           StudentJoined(3, "c-1", "c-1-s1", "c-1-s1", "Ada", "c-1-s1-a1")])
>>> s.phase, [r.display_name for r in roster(s)]
(<Phase.REGISTRATION: 'registration'>, ['Ada'])
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from vtrade.classroom.events import (
    Announcement,
    ClassArchived,
    ClassCreated,
    ClassEvent,
    ClassFrozen,
    ClockPaused,
    ClockResumed,
    ClockSpeedChanged,
    CopilotSwitched,
    JoinCodeChanged,
    MarketEvent,
    RegistrationOpened,
    SettingsChanged,
    StudentJoined,
    StudentRemoved,
    StudentReset,
    TradingHalted,
    TradingResumed,
    TradingStarted,
)
from vtrade.classroom.rules import ClassRules
from vtrade.classroom.text import name_key

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULT_SPEED", "ClassState", "Phase", "RosterRow", "Student", "apply", "fold", "roster", "roster_frame"]

#: The replay speed a class starts at: real time, so a class reads the tape as it happened.
DEFAULT_SPEED = 1.0


class Phase(StrEnum):
    """A class's lifecycle: draft → registration → trading → frozen → archived."""

    DRAFT = "draft"
    REGISTRATION = "registration"
    TRADING = "trading"
    FROZEN = "frozen"
    ARCHIVED = "archived"


@dataclass(frozen=True, slots=True)
class Student:
    """A student of the class. ``account_id`` is the account they trade now; ``accounts``
    every account they had, oldest first (a reset adds one)."""

    student_id: str
    display_name: str
    account_id: str
    joined_ts: int
    accounts: tuple[str, ...]
    removed_ts: int | None = None
    removal_reason: str = ""

    @property
    def removed(self) -> bool:
        return self.removed_ts is not None

    @property
    def resets(self) -> int:
        return len(self.accounts) - 1


@dataclass(frozen=True, slots=True)
class ClassState:
    """Everything a class is, folded from its events. Immutable: :func:`apply` returns a new one.

    ``students`` in joining order, removed ones included (their record stays);
    ``announcements`` oldest first; the ``*_ts`` fields say when each phase began;
    ``clock_running`` is whether the class's replay clock runs now, at ``speed``;
    ``market_events`` what the teacher did to the market, oldest first, and ``halted`` the
    symbols halted now; ``copilot`` whether the class's copilot is on (the teacher switches
    it off for an exam).
    """

    class_id: str
    name: str
    teacher: str
    join_code: str
    rules: ClassRules
    phase: Phase = Phase.DRAFT
    students: tuple[Student, ...] = ()
    clock_running: bool = False
    speed: float = DEFAULT_SPEED
    announcements: tuple[Announcement, ...] = ()
    market_events: tuple[MarketEvent, ...] = ()
    halted: frozenset[str] = frozenset()
    copilot: bool = True
    created_ts: int = 0
    registration_opened_ts: int | None = None
    trading_started_ts: int | None = None
    frozen_ts: int | None = None
    archived_ts: int | None = None
    last_ts: int = 0

    def student(self, student_id: str) -> Student | None:
        """The student ``student_id`` (removed or not), or None."""
        return next((s for s in self.students if s.student_id == student_id), None)

    def student_of_account(self, account_id: str) -> Student | None:
        """Whose account ``account_id`` is now (None for an unknown or a reset-away account):
        how the runtime checks that a student acts on their own account only."""
        return next((s for s in self.students if s.account_id == account_id and not s.removed), None)

    @property
    def active(self) -> tuple[Student, ...]:
        """Students not removed, in joining order."""
        return tuple(s for s in self.students if not s.removed)

    def name_taken(self, display_name: str) -> bool:
        """Whether an active student already goes by ``display_name`` (case and spacing aside)."""
        key = name_key(display_name)
        return any(name_key(s.display_name) == key for s in self.active)


def _with_student(state: ClassState, student: Student) -> tuple[Student, ...]:
    return tuple(student if s.student_id == student.student_id else s for s in state.students)


def apply(state: ClassState | None, event: ClassEvent) -> ClassState:
    """The state after ``event``. ``state`` is None before the class's ``ClassCreated``.

    An event of another class, or any event before ``ClassCreated``, is a ValueError: the
    runtime routed it wrong, and folding it would mix two classes.
    """
    if isinstance(event, ClassCreated):
        if state is not None:
            raise ValueError(f"class {event.class_id} is created twice")
        return ClassState(event.class_id, event.name, event.actor, event.join_code, event.rules,
                          created_ts=event.ts, last_ts=event.ts)  # fmt: skip
    if state is None:
        raise ValueError(f"{type(event).__name__} for class {event.class_id} before it was created")
    if event.class_id != state.class_id:
        raise ValueError(f"{type(event).__name__} of class {event.class_id} folded into class {state.class_id}")
    s = replace(state, last_ts=max(state.last_ts, event.ts))
    match event:
        case SettingsChanged(changes=changes):
            return replace(s, rules=s.rules.changed(changes))
        case JoinCodeChanged(join_code=code):
            return replace(s, join_code=code)
        case RegistrationOpened():
            return replace(s, phase=Phase.REGISTRATION, registration_opened_ts=event.ts)
        case StudentJoined():
            student = Student(event.student_id, event.display_name, event.account_id, event.ts, (event.account_id,))
            return replace(s, students=(*s.students, student))
        case StudentRemoved():
            old = _known(s, event.student_id)
            return replace(s, students=_with_student(s, replace(old, removed_ts=event.ts, removal_reason=event.reason)))
        case StudentReset():
            old = _known(s, event.student_id)
            new = replace(old, account_id=event.account_id, accounts=(*old.accounts, event.account_id))
            return replace(s, students=_with_student(s, new))
        case TradingStarted():
            return replace(s, phase=Phase.TRADING, trading_started_ts=event.ts, clock_running=True)
        case ClockPaused():
            return replace(s, clock_running=False)
        case ClockResumed():
            return replace(s, clock_running=True)
        case ClockSpeedChanged(speed=speed):
            return replace(s, speed=speed)
        case ClassFrozen():
            return replace(s, phase=Phase.FROZEN, frozen_ts=event.ts, clock_running=False)
        case ClassArchived():
            return replace(s, phase=Phase.ARCHIVED, archived_ts=event.ts, clock_running=False)
        case Announcement():
            return replace(s, announcements=(*s.announcements, event))
        case CopilotSwitched(enabled=enabled):
            return replace(s, copilot=enabled)
        case TradingHalted(symbol=symbol):
            return replace(s, market_events=(*s.market_events, event), halted=s.halted | {symbol})
        case TradingResumed(symbol=symbol):
            return replace(s, market_events=(*s.market_events, event), halted=s.halted - {symbol})
        case MarketEvent():
            return replace(s, market_events=(*s.market_events, event))
    raise ValueError(f"not a class event vtrade knows: {type(event).__name__}")


def _known(state: ClassState, student_id: str) -> Student:
    student = state.student(student_id)
    if student is None:
        raise ValueError(f"class {state.class_id} has no student {student_id}")
    return student


def fold(events: Iterable[ClassEvent], state: ClassState | None = None) -> ClassState | None:
    """``state`` (None: before creation) after every one of ``events`` in order."""
    for e in events:
        state = apply(state, e)
    return state


@dataclass(frozen=True, slots=True)
class RosterRow:
    """One line of the roster: plain values, ready for a table, a CSV or a DataFrame
    (``pd.DataFrame(roster(state))``). ``display_name`` is the text as typed: escape it
    where it is shown."""

    student_id: str
    display_name: str
    account_id: str
    joined_ts: int
    resets: int
    removed: bool
    removed_ts: int | None


def roster(state: ClassState, *, include_removed: bool = True) -> list[RosterRow]:
    """The class's students in joining order (removed ones flagged, or left out)."""
    return [
        RosterRow(s.student_id, s.display_name, s.account_id, s.joined_ts, s.resets, s.removed, s.removed_ts)
        for s in state.students
        if include_removed or not s.removed
    ]


def roster_frame(state: ClassState, *, include_removed: bool = True) -> pd.DataFrame:
    """:func:`roster` as a DataFrame, one row per student, ``joined`` and ``removed_at`` as UTC
    timestamps (pandas is imported only when this is called: the fold itself never needs it).

    >>> from vtrade.classroom.events import ClassCreated, StudentJoined
    >>> from vtrade.classroom.rules import ClassRules
    >>> s = fold([ClassCreated(0, "c", "t", "C", "000G4-0R40M-30E20", ClassRules()),
    ...           StudentJoined(10**18, "c", "c-s1", "c-s1", "Ada", "c-s1-a1")])
    >>> roster_frame(s)[["display_name", "account_id", "joined"]]
      display_name account_id                    joined
    0          Ada    c-s1-a1 2001-09-09 01:46:40+00:00
    """
    import pandas as pd

    rows = [asdict(r) for r in roster(state, include_removed=include_removed)]
    frame = pd.DataFrame(rows, columns=[f.name for f in fields(RosterRow)])
    frame["joined"] = pd.to_datetime(frame.pop("joined_ts"), unit="ns", utc=True)
    frame["removed_at"] = pd.to_datetime(frame.pop("removed_ts"), unit="ns", utc=True)
    return frame
