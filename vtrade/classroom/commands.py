"""What teachers and students ask of a class, and :func:`decide`: the events a command makes,
or a :class:`~vtrade.classroom.errors.ClassroomError` saying why not (nothing changes then).

Commands are plain frozen values stamped by the runtime: ``ts`` (UTC ns) and ``actor``, the
identity the runtime established (the teacher id behind the teacher's secret, the student id
behind a signed token). The domain checks that the actor may do it; who the actor *is* is
the runtime's to prove.

>>> from vtrade.classroom.state import fold
>>> s, _ = execute(None, CreateClass(1, "c-1", "t-1", "Econ 101", "000G4-0R40M-30E20"))
>>> s, _ = execute(s, OpenRegistration(2, "t-1"))
>>> s, events = execute(s, Join(3, "000g4 0r40m 30e20", "  Ada "))
>>> events
[StudentJoined(ts=3, class_id='c-1', actor='c-1-s1', student_id='c-1-s1', display_name='Ada', account_id='c-1-s1-a1')]
>>> execute(s, Join(4, "000G4-0R40M-30E20", "ADA"))
Traceback (most recent call last):
...
vtrade.classroom.errors.ClassroomError: The name 'ADA' is already taken in this class; choose another
>>> execute(s, StartTrading(5, "s-1"))
Traceback (most recent call last):
...
vtrade.classroom.errors.ClassroomError: Only this class's teacher can start trading
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from vtrade.classroom.codes import codes_match, normalize_code
from vtrade.classroom.errors import ClassroomError
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
    LiquidityDrained,
    MarketShocked,
    RegistrationOpened,
    SettingsChanged,
    StudentJoined,
    StudentRemoved,
    StudentReset,
    TradingHalted,
    TradingResumed,
    TradingStarted,
)
from vtrade.classroom.rules import ECONOMIC_FIELDS, ClassRules, RulesPatch
from vtrade.classroom.state import ClassState, Phase, Student, apply
from vtrade.classroom.text import ANNOUNCEMENT_MAX, CLASS_NAME_MAX, DISPLAY_NAME_MAX, clean_text

__all__ = [
    "Announce",
    "Archive",
    "ChangeJoinCode",
    "ChangeSettings",
    "Command",
    "CreateClass",
    "DrainLiquidity",
    "Freeze",
    "HaltTrading",
    "Join",
    "OpenRegistration",
    "PauseClock",
    "RemoveStudent",
    "ResetStudent",
    "ResumeClock",
    "ResumeTrading",
    "SetCopilot",
    "SetSpeed",
    "ShockMarket",
    "StartTrading",
    "decide",
    "execute",
]

_ID_MAX = 64
_MAX_SPEED = 1_000_000.0


# ---------------------------------------------------------------------------- commands
@dataclass(frozen=True, slots=True)
class CreateClass:
    """Make a class in draft. ``join_code`` comes from :func:`~vtrade.classroom.codes.new_join_code`
    (the runtime draws it), ``teacher`` is the teacher's id."""

    ts: int
    class_id: str
    teacher: str
    name: str
    join_code: str
    rules: ClassRules = field(default_factory=ClassRules)


@dataclass(frozen=True, slots=True)
class TeacherCommand:
    """A command only the class's teacher may give: ``actor`` must be the teacher's id."""

    ts: int
    actor: str


@dataclass(frozen=True, slots=True)
class ChangeSettings(TeacherCommand):
    """Change some rules (the fields ``changes`` sets). Economics lock once trading starts."""

    changes: RulesPatch = field(default_factory=RulesPatch)


@dataclass(frozen=True, slots=True)
class ChangeJoinCode(TeacherCommand):
    """Replace the join code (a fresh :func:`~vtrade.classroom.codes.new_join_code`)."""

    join_code: str = ""


@dataclass(frozen=True, slots=True)
class OpenRegistration(TeacherCommand):
    """Draft → registration: students may join."""


@dataclass(frozen=True, slots=True)
class StartTrading(TeacherCommand):
    """Registration → trading: the clock starts; economics lock."""


@dataclass(frozen=True, slots=True)
class PauseClock(TeacherCommand):
    """Stop the class's clock while trading."""


@dataclass(frozen=True, slots=True)
class ResumeClock(TeacherCommand):
    """Run the paused clock again."""


@dataclass(frozen=True, slots=True)
class SetSpeed(TeacherCommand):
    """Set the replay speed: simulated seconds per wall second (0 = as fast as possible)."""

    speed: float = 1.0


@dataclass(frozen=True, slots=True)
class SetCopilot(TeacherCommand):
    """Switch the class's copilot on or off (it starts on; off for an exam)."""

    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Freeze(TeacherCommand):
    """Trading → frozen: trading ends and results are final."""


@dataclass(frozen=True, slots=True)
class Archive(TeacherCommand):
    """Close the class for good (from draft, registration or frozen)."""


@dataclass(frozen=True, slots=True)
class RemoveStudent(TeacherCommand):
    """Take a student out of the class (their record stays, flagged)."""

    student_id: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ResetStudent(TeacherCommand):
    """Give a student a fresh account with the starting cash."""

    student_id: str = ""


@dataclass(frozen=True, slots=True)
class Announce(TeacherCommand):
    """Tell every student something."""

    text: str = ""


@dataclass(frozen=True, slots=True)
class ShockMarket(TeacherCommand):
    """Move the prices of ``symbols`` by ``pct`` % now (−90 < pct ≤ 200, not 0). The runtime
    resolves what the teacher named (a sector, a symbol) into ``symbols`` and keeps the name
    as ``label``."""

    symbols: tuple[str, ...] = ()
    pct: object = 0
    label: str = ""


@dataclass(frozen=True, slots=True)
class HaltTrading(TeacherCommand):
    """Halt trading in ``symbol`` (orders in it are refused, with ``reason``)."""

    symbol: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ResumeTrading(TeacherCommand):
    """Resume trading in a halted ``symbol``."""

    symbol: str = ""


@dataclass(frozen=True, slots=True)
class DrainLiquidity(TeacherCommand):
    """A liquidity drought: displayed depth of ``symbols`` × ``factor`` (0 < factor < 1) for
    ``minutes`` of simulated time (1 to 1,440)."""

    symbols: tuple[str, ...] = ()
    factor: object = 0.5
    minutes: int = 30
    label: str = ""


@dataclass(frozen=True, slots=True)
class Join:
    """A student joins with the class's code under ``display_name`` (a pseudonym is fine)."""

    ts: int
    code: str
    display_name: str


Command = CreateClass | TeacherCommand | Join


# ---------------------------------------------------------------------------- decide
def _when(ts: int) -> str:
    # Event time shown as a date (pure: converting a given instant, not reading the clock).
    return datetime.fromtimestamp(ts // 10**9, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _ID_MAX or any(c.isspace() for c in value):
        raise ClassroomError(
            "out_of_range", f"A {what} must be 1 to {_ID_MAX} characters without blanks, got {value!r}"
        )
    return value


def _check_ts(ts: object) -> None:
    if isinstance(ts, bool) or not isinstance(ts, int) or ts < 0:
        raise ClassroomError("out_of_range", f"A command's time must be nanoseconds since 1970 (UTC), got {ts!r}")


#: What each teacher command does, for "Only this class's teacher can ..." and phase refusals.
_VERBS: dict[type, str] = {
    ChangeSettings: "change the settings", ChangeJoinCode: "change the join code",
    OpenRegistration: "open registration", StartTrading: "start trading", PauseClock: "pause the clock",
    ResumeClock: "resume the clock", SetSpeed: "change the speed", Freeze: "freeze the class",
    Archive: "archive the class", RemoveStudent: "remove a student", ResetStudent: "reset a student",
    Announce: "make an announcement", ShockMarket: "shock the market", HaltTrading: "halt trading",
    ResumeTrading: "resume trading", DrainLiquidity: "drain liquidity", SetCopilot: "switch the copilot on or off",
}  # fmt: skip

#: The phases each teacher command is allowed in (a lifecycle move names where it comes from).
_ALLOWED: dict[type, frozenset[Phase]] = {
    ChangeSettings: frozenset({Phase.DRAFT, Phase.REGISTRATION, Phase.TRADING, Phase.FROZEN}),
    ChangeJoinCode: frozenset({Phase.DRAFT, Phase.REGISTRATION, Phase.TRADING}),
    OpenRegistration: frozenset({Phase.DRAFT}),
    StartTrading: frozenset({Phase.REGISTRATION}),
    PauseClock: frozenset({Phase.TRADING}),
    ResumeClock: frozenset({Phase.TRADING}),
    SetSpeed: frozenset({Phase.DRAFT, Phase.REGISTRATION, Phase.TRADING}),
    Freeze: frozenset({Phase.TRADING}),
    Archive: frozenset({Phase.DRAFT, Phase.REGISTRATION, Phase.FROZEN}),
    RemoveStudent: frozenset({Phase.REGISTRATION, Phase.TRADING, Phase.FROZEN}),
    ResetStudent: frozenset({Phase.REGISTRATION, Phase.TRADING}),
    Announce: frozenset({Phase.DRAFT, Phase.REGISTRATION, Phase.TRADING, Phase.FROZEN}),
    ShockMarket: frozenset({Phase.TRADING}),
    HaltTrading: frozenset({Phase.TRADING}),
    ResumeTrading: frozenset({Phase.TRADING}),
    DrainLiquidity: frozenset({Phase.TRADING}),
    SetCopilot: frozenset({Phase.DRAFT, Phase.REGISTRATION, Phase.TRADING, Phase.FROZEN}),
}

_PHASE_SAYS = {
    Phase.DRAFT: "is still a draft",
    Phase.REGISTRATION: "is open for registration",
    Phase.TRADING: "is trading",
    Phase.FROZEN: "is frozen (trading has ended)",
}

#: Said instead of the generic refusal where a hint helps.
_HINTS: dict[tuple[type, Phase], str] = {
    (StartTrading, Phase.DRAFT): "Open registration first, so students can join before trading starts",
    (Archive, Phase.TRADING): "Freeze the class before archiving it, so its results are final",
    (OpenRegistration, Phase.TRADING): "Trading has started; registration cannot reopen (allow late entry instead)",
    (OpenRegistration, Phase.FROZEN): "The class has ended; registration cannot reopen",
    (StartTrading, Phase.FROZEN): "The class is frozen; trading cannot restart",
}


def decide(state: ClassState | None, command: Command) -> list[ClassEvent]:
    """The events ``command`` makes in ``state`` (None: no class yet), or a
    :class:`ClassroomError` with a message for the person who sent it. Pure: ``state`` is
    not changed either way, and the same command in the same state gives the same events.
    An empty list means nothing to do (a settings change that changes nothing)."""
    _check_ts(command.ts)
    if isinstance(command, CreateClass):
        return [_create(state, command)]
    if state is None:
        raise ClassroomError("bad_transition", "There is no such class")
    if isinstance(command, Join):
        return [_join(state, command)]
    if state.phase is Phase.ARCHIVED:
        raise ClassroomError("bad_transition", f"{state.name!r} is archived; nothing in it can change")
    if not isinstance(command, TeacherCommand):
        raise TypeError(f"not a class command: {command!r}")
    if command.actor != state.teacher:
        raise ClassroomError("not_teacher", f"Only this class's teacher can {_VERBS[type(command)]}")
    if state.phase not in _ALLOWED[type(command)]:
        hint = _HINTS.get((type(command), state.phase))
        raise ClassroomError(
            "bad_transition", hint or f"The class {_PHASE_SAYS[state.phase]}; you cannot {_VERBS[type(command)]} now"
        )
    cid, ts, actor = state.class_id, command.ts, command.actor
    match command:
        case ChangeSettings(changes=changes):
            return _change_settings(state, changes, ts)
        case ChangeJoinCode(join_code=code):
            return [JoinCodeChanged(ts, cid, actor, _format_code(code))]
        case OpenRegistration():
            return [RegistrationOpened(ts, cid, actor)]
        case StartTrading():
            return [TradingStarted(ts, cid, actor)]
        case PauseClock():
            if not state.clock_running:
                raise ClassroomError("bad_transition", "The clock is already paused")
            return [ClockPaused(ts, cid, actor)]
        case ResumeClock():
            if state.clock_running:
                raise ClassroomError("bad_transition", "The clock is already running")
            return [ClockResumed(ts, cid, actor)]
        case SetSpeed(speed=speed):
            ok = isinstance(speed, int | float) and not isinstance(speed, bool) and math.isfinite(speed)
            if not ok or not 0 <= speed <= _MAX_SPEED:
                raise ClassroomError(
                    "out_of_range",
                    f"The speed must be a number from 0 (as fast as possible) to {_MAX_SPEED:,.0f} "
                    f"simulated seconds a second, got {speed!r}",
                )
            return [ClockSpeedChanged(ts, cid, actor, float(speed))]
        case SetCopilot(enabled=enabled):
            if not isinstance(enabled, bool):
                raise ClassroomError(
                    "out_of_range", f"The copilot is switched on (True) or off (False), got {enabled!r}"
                )
            return [] if enabled == state.copilot else [CopilotSwitched(ts, cid, actor, enabled)]
        case Freeze():
            return [ClassFrozen(ts, cid, actor)]
        case Archive():
            return [ClassArchived(ts, cid, actor)]
        case RemoveStudent(student_id=sid, reason=reason):
            student = _active_student(state, sid)
            return [StudentRemoved(ts, cid, actor, student.student_id, _optional(reason, "reason"))]
        case ResetStudent(student_id=sid):
            student = _active_student(state, sid)
            return [StudentReset(ts, cid, actor, sid, f"{sid}-a{len(student.accounts) + 1}")]
        case Announce(text=text):
            return [Announcement(ts, cid, actor, clean_text(text, "announcement", ANNOUNCEMENT_MAX, multiline=True))]
        case ShockMarket(symbols=symbols, pct=pct, label=label):
            move = _number(pct, "shock", lo=Decimal(-90), hi=Decimal(200), unit="%")
            if move == 0:
                raise ClassroomError("out_of_range", "A shock of 0 % moves nothing; give a percentage such as -10")
            syms = _symbols(symbols)
            return [MarketShocked(ts, cid, actor, syms, str(move), _label(label, syms))]
        case HaltTrading(symbol=symbol, reason=reason):
            (sym,) = _symbols((symbol,))
            if sym in state.halted:
                raise ClassroomError("bad_transition", f"{sym} is already halted")
            return [TradingHalted(ts, cid, actor, sym, _optional(reason, "reason"))]
        case ResumeTrading(symbol=symbol):
            (sym,) = _symbols((symbol,))
            if sym not in state.halted:
                raise ClassroomError("bad_transition", f"{sym} is not halted")
            return [TradingResumed(ts, cid, actor, sym)]
        case DrainLiquidity(symbols=symbols, factor=factor, minutes=minutes, label=label):
            k = _number(factor, "depth factor", lo=Decimal(0), hi=Decimal(1), unit="")
            if not 0 < k < 1:
                raise ClassroomError("out_of_range", f"A drought keeps a share of the depth: a factor above 0 and "
                                                     f"below 1 (0.2 keeps a fifth), got {factor!r}")  # fmt: skip
            if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 1440:
                raise ClassroomError("out_of_range", f"A drought lasts 1 to 1,440 simulated minutes, got {minutes!r}")
            syms = _symbols(symbols)
            return [LiquidityDrained(ts, cid, actor, syms, str(k), minutes, _label(label, syms))]
    raise TypeError(f"not a class command: {command!r}")  # pragma: no cover - every teacher command is matched


def _number(value: object, what: str, *, lo: Decimal, hi: Decimal, unit: str) -> Decimal:
    """A finite decimal in (lo, hi]; a number typed as text is fine ("-10")."""
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise InvalidOperation
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ClassroomError("out_of_range", f"The {what} must be a number, got {value!r}") from None
    if not number.is_finite() or not lo < number <= hi:
        raise ClassroomError("out_of_range",
                             f"The {what} must be above {lo}{unit} and at most {hi}{unit}, got {value!r}")  # fmt: skip
    return Decimal(int(number)) if number == number.to_integral_value() else number  # "-10", not "-1E+1"


def _optional(text: object, what: str) -> str:
    """Optional free text (a reason): blank is "", anything else is checked like all text."""
    if isinstance(text, str) and not text.strip():
        return ""
    return clean_text(text, what, ANNOUNCEMENT_MAX)


def _symbols(symbols: object) -> tuple[str, ...]:
    if isinstance(symbols, str) or not isinstance(symbols, tuple | list | frozenset | set):
        raise ClassroomError("out_of_range", f"Name the symbols as a list, got {symbols!r}")
    out = []
    for s in symbols:
        if not isinstance(s, str) or not s.strip() or len(s.strip()) > 32:
            raise ClassroomError("out_of_range", f"A symbol must be a short name such as AAPL, got {s!r}")
        out.append(s.strip().upper())
    if not out:
        raise ClassroomError("out_of_range", "Name at least one symbol")
    return tuple(sorted(set(out)))


def _label(label: object, symbols: tuple[str, ...]) -> str:
    if isinstance(label, str) and label.strip():
        return clean_text(label, "label", 80)
    return ", ".join(symbols) if len(symbols) <= 3 else f"{len(symbols)} symbols"


def execute(state: ClassState | None, command: Command) -> tuple[ClassState, list[ClassEvent]]:
    """:func:`decide` then :func:`~vtrade.classroom.state.apply`: the new state and the events
    to append to the log (the runtime appends them; a notebook may just keep the state)."""
    events = decide(state, command)
    new = state
    for e in events:
        new = apply(new, e)
    if new is None:  # only a refused CreateClass leaves no class, and that raised above
        raise AssertionError("a command made no class")
    return new, events


def _format_code(code: object) -> str:
    bare = normalize_code(code)
    return "-".join(bare[i : i + 5] for i in range(0, len(bare), 5))


def _create(state: ClassState | None, c: CreateClass) -> ClassCreated:
    if state is not None:
        raise ClassroomError("bad_transition", f"Class {state.class_id} already exists")
    cid = _check_id(c.class_id, "class id")
    teacher = _check_id(c.teacher, "teacher id")
    name = clean_text(c.name, "class name", CLASS_NAME_MAX)
    if not isinstance(c.rules, ClassRules):
        raise ClassroomError("out_of_range", f"The rules must be a ClassRules, got {type(c.rules).__name__}")
    return ClassCreated(c.ts, cid, teacher, name, _format_code(c.join_code), c.rules)


def _change_settings(state: ClassState, changes: RulesPatch, ts: int) -> list[ClassEvent]:
    if not isinstance(changes, RulesPatch):
        raise ClassroomError("out_of_range", f"Settings change with a RulesPatch, got {type(changes).__name__}")
    patch = changes.normalized(state.rules)  # validates the whole new preset; only real changes remain
    if not patch.fields():
        return []
    if state.phase in (Phase.TRADING, Phase.FROZEN):
        locked = sorted(ECONOMIC_FIELDS & patch.fields().keys())
        if locked:
            names = ", ".join(n.replace("_", " ") for n in locked)
            raise ClassroomError(
                "locked",
                f"Trading has started, so the economics are locked ({names} cannot change): "
                "every student plays by the rules they started with",
            )
    return [SettingsChanged(ts, state.class_id, state.teacher, patch)]


def _active_student(state: ClassState, student_id: str) -> Student:
    student = state.student(student_id)
    if student is None:
        raise ClassroomError("unknown_student", f"There is no student {student_id!r} in this class")
    if student.removed:
        raise ClassroomError("unknown_student", f"{student.display_name!r} was already removed from this class")
    return student


def _join(state: ClassState, c: Join) -> StudentJoined:
    # The code first: someone without it learns nothing about the class, not even its phase.
    if not codes_match(c.code, state.join_code):
        normalize_code(c.code)  # a malformed code gets the message saying what a code looks like
        raise ClassroomError("wrong_code", "That join code is not right; check it with your teacher")
    rules, ts = state.rules, c.ts
    if state.phase is Phase.DRAFT:
        raise ClassroomError("registration_closed", "Registration for this class has not opened yet")
    if state.phase in (Phase.FROZEN, Phase.ARCHIVED):
        raise ClassroomError("registration_closed", "This class has ended; it takes no new students")
    if rules.registration_opens is not None and ts < rules.registration_opens:
        raise ClassroomError("registration_closed", f"Registration opens {_when(rules.registration_opens)}")
    if not rules.late_entry:
        if state.phase is Phase.TRADING:
            raise ClassroomError("registration_closed", "This class has started trading and takes no late entries")
        if rules.registration_closes is not None and ts >= rules.registration_closes:
            raise ClassroomError("registration_closed", f"Registration closed {_when(rules.registration_closes)}")
    name = clean_text(c.display_name, "display name", DISPLAY_NAME_MAX)
    if state.name_taken(name):
        raise ClassroomError("name_taken", f"The name {name!r} is already taken in this class; choose another")
    n = len(state.students) + 1  # removed students keep their number: ids are never reused
    sid = f"{state.class_id}-s{n}"
    return StudentJoined(ts, state.class_id, sid, sid, name, f"{sid}-a1")
