"""Class events: every change of a class is one of these on the log (topic ``class``, keyed
by ``class_id``), and the class is their fold (:func:`vtrade.classroom.state.fold`).

Each carries ``ts``, the event time in UTC nanoseconds the runtime stamped the command with,
and ``actor``, who did it (the teacher's id for a teacher action, the student's id for a
join). Tags are namespaced (``class.StudentJoined``) like the ``exec.`` events.

>>> from vtrade.core.events import decode, encode
>>> e = StudentJoined(5, "c-1", "c-1-s1", "c-1-s1", "Ada", "c-1-s1-a1")
>>> decode(encode(e)) == e
True
"""

from __future__ import annotations

from vtrade.classroom.rules import ClassRules, RulesPatch
from vtrade.core.events import Event, register_event

__all__ = [
    "Announcement",
    "ClassArchived",
    "ClassCreated",
    "ClassEvent",
    "ClassFrozen",
    "ClockPaused",
    "ClockResumed",
    "ClockSpeedChanged",
    "CopilotSwitched",
    "JoinCodeChanged",
    "LiquidityDrained",
    "MarketEvent",
    "MarketShocked",
    "RegistrationOpened",
    "SettingsChanged",
    "StudentJoined",
    "StudentRemoved",
    "StudentReset",
    "TradingHalted",
    "TradingResumed",
    "TradingStarted",
]


def _class_tag(name: str) -> str:
    return f"class.{name}"


class ClassEvent(Event, frozen=True, array_like=True, tag=_class_tag):
    """Base of class events: which class, and who acted."""

    class_id: str
    actor: str


class ClassCreated(ClassEvent, frozen=True, array_like=True):
    """A class exists, in draft: ``actor`` is its teacher. ``join_code`` as
    :func:`~vtrade.classroom.codes.join_code` made it (grouped, upper case)."""

    name: str
    join_code: str
    rules: ClassRules


class SettingsChanged(ClassEvent, frozen=True, array_like=True):
    """The teacher changed some rules: ``changes`` holds only the changed fields."""

    changes: RulesPatch


class JoinCodeChanged(ClassEvent, frozen=True, array_like=True):
    """The teacher replaced the join code (the old one leaked); the old one stops working."""

    join_code: str


class RegistrationOpened(ClassEvent, frozen=True, array_like=True):
    """Students may join (within the rules' registration window)."""


class StudentJoined(ClassEvent, frozen=True, array_like=True):
    """A student joined as ``display_name`` and trades ``account_id`` (``actor`` = ``student_id``)."""

    student_id: str
    display_name: str
    account_id: str


class StudentRemoved(ClassEvent, frozen=True, array_like=True):
    """The teacher removed a student: their account stops trading and leaves the rankings."""

    student_id: str
    reason: str = ""


class StudentReset(ClassEvent, frozen=True, array_like=True):
    """The teacher gave a student a fresh account ``account_id`` with the starting cash; the
    old account is kept (for the record) but no longer theirs to trade."""

    student_id: str
    account_id: str


class TradingStarted(ClassEvent, frozen=True, array_like=True):
    """The class's clock starts and students may trade; economics lock."""


class ClockPaused(ClassEvent, frozen=True, array_like=True):
    """The class's replay clock stops (orders wait)."""


class ClockResumed(ClassEvent, frozen=True, array_like=True):
    """The class's replay clock runs again."""


class ClockSpeedChanged(ClassEvent, frozen=True, array_like=True):
    """Simulated seconds per wall second (0 = as fast as possible, as ``LiveConfig.speed``)."""

    speed: float


class ClassFrozen(ClassEvent, frozen=True, array_like=True):
    """Trading ends: the clock stops for good and results are final (grades, reports)."""


class ClassArchived(ClassEvent, frozen=True, array_like=True):
    """The class is closed: read-only for everyone, forever."""


class CopilotSwitched(ClassEvent, frozen=True, array_like=True):
    """The teacher switched the class's copilot on or off (off for an exam): while it is off the
    copilot answers nothing and no copilot proposal executes, even one signed before."""

    enabled: bool


class Announcement(ClassEvent, frozen=True, array_like=True):
    """A message from the teacher to every student (stored as typed; views escape it)."""

    text: str


class MarketEvent(ClassEvent, frozen=True, array_like=True):
    """Base of what a teacher does to the class's market. The class's market consumes these
    (as its own journaled entries, by the event's id: see ``vtrade.runtime.classroom``), so
    every student sees the same tape, and a restart replays them at the same simulated time."""


class MarketShocked(MarketEvent, frozen=True, array_like=True):
    """Prices of ``symbols`` jump by ``pct`` % (a decimal string) and stay there; ``label``
    says what was shocked as the teacher chose it ("Information Technology", "AAPL")."""

    symbols: tuple[str, ...]
    pct: str
    label: str


class TradingHalted(MarketEvent, frozen=True, array_like=True):
    """Trading in ``symbol`` stops until resumed; orders in it are refused with ``reason``."""

    symbol: str
    reason: str = ""


class TradingResumed(MarketEvent, frozen=True, array_like=True):
    """Trading in ``symbol`` starts again."""

    symbol: str


class LiquidityDrained(MarketEvent, frozen=True, array_like=True):
    """Displayed depth of ``symbols`` is × ``factor`` (a decimal string in (0, 1)) for
    ``minutes`` of simulated time: a liquidity drought."""

    symbols: tuple[str, ...]
    factor: str
    minutes: int
    label: str


register_event(
    MarketShocked, TradingHalted, TradingResumed, LiquidityDrained,
)
register_event(
    ClassCreated, SettingsChanged, JoinCodeChanged, RegistrationOpened, StudentJoined, StudentRemoved, StudentReset,
    TradingStarted, ClockPaused, ClockResumed, ClockSpeedChanged, ClassFrozen, ClassArchived, Announcement,
)
register_event(CopilotSwitched)
