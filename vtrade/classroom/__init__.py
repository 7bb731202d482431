"""Classrooms: a teacher runs a class of students on one market under one set of rules.

The pure domain (DESIGN.md §2, §8): a class is the fold of its events on the log; commands are
decided against its state into events or refused with a :class:`ClassroomError` a person can
read; its rules preset (:class:`ClassRules`) maps onto the broker's own account rules. No I/O,
no wall clock, no randomness (the runtime draws join codes with :func:`new_join_code`).

>>> import vtrade.classroom as vc
>>> rules = vc.ClassRules(starting_cash=50_000, max_trades_per_day=10)
>>> s, _ = vc.execute(None, vc.CreateClass(0, "econ", "ms-lee", "Econ 101", "000G4-0R40M-30E20", rules))
>>> s, _ = vc.execute(s, vc.OpenRegistration(1, "ms-lee"))
>>> s, _ = vc.execute(s, vc.Join(2, "000G4-0R40M-30E20", "<b>Sam</b>"))
>>> s, _ = vc.execute(s, vc.StartTrading(3, "ms-lee"))
>>> s.phase, s.clock_running, vc.roster(s)[0].display_name   # stored as typed; views escape
(<Phase.TRADING: 'trading'>, True, '<b>Sam</b>')
>>> try:
...     vc.execute(s, vc.ChangeSettings(4, "ms-lee", vc.RulesPatch(starting_cash=1_000_000)))
... except vc.ClassroomError as refused:
...     print(refused.code, "-", refused)
locked - Trading has started, so the economics are locked (starting cash cannot change): every student plays by ...
"""

from __future__ import annotations

from vtrade.classroom.codes import CODE_BITS, codes_match, join_code, new_join_code, normalize_code
from vtrade.classroom.commands import (
    Announce,
    Archive,
    ChangeJoinCode,
    ChangeSettings,
    Command,
    CreateClass,
    DrainLiquidity,
    Freeze,
    HaltTrading,
    Join,
    OpenRegistration,
    PauseClock,
    RemoveStudent,
    ResetStudent,
    ResumeClock,
    ResumeTrading,
    SetCopilot,
    SetSpeed,
    ShockMarket,
    StartTrading,
    TeacherCommand,
    decide,
    execute,
)
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
    MarketEvent,
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
from vtrade.classroom.rules import ECONOMIC_FIELDS, MARKETS, ClassRules, RulesPatch
from vtrade.classroom.state import ClassState, Phase, RosterRow, Student, apply, fold, roster, roster_frame

__all__ = [
    "CODE_BITS",
    "ECONOMIC_FIELDS",
    "MARKETS",
    "Announce",
    "Announcement",
    "Archive",
    "ChangeJoinCode",
    "ChangeSettings",
    "ClassArchived",
    "ClassCreated",
    "ClassEvent",
    "ClassFrozen",
    "ClassRules",
    "ClassState",
    "ClassroomError",
    "ClockPaused",
    "ClockResumed",
    "ClockSpeedChanged",
    "Command",
    "CopilotSwitched",
    "CreateClass",
    "DrainLiquidity",
    "Freeze",
    "HaltTrading",
    "Join",
    "JoinCodeChanged",
    "LiquidityDrained",
    "MarketEvent",
    "MarketShocked",
    "OpenRegistration",
    "PauseClock",
    "Phase",
    "RegistrationOpened",
    "RemoveStudent",
    "ResetStudent",
    "ResumeClock",
    "ResumeTrading",
    "RosterRow",
    "RulesPatch",
    "SetCopilot",
    "SetSpeed",
    "SettingsChanged",
    "ShockMarket",
    "StartTrading",
    "Student",
    "StudentJoined",
    "StudentRemoved",
    "StudentReset",
    "TeacherCommand",
    "TradingHalted",
    "TradingResumed",
    "TradingStarted",
    "apply",
    "codes_match",
    "decide",
    "execute",
    "fold",
    "join_code",
    "new_join_code",
    "normalize_code",
    "roster",
    "roster_frame",
]

# Class reports over the live market's tables (statement, debrief, grade sheet); kept in a block of
# their own at the end so that edits to the lists above do not collide with it.
from vtrade.classroom.reports import (
    Debrief,
    Statement,
    StudentRecord,
    debrief,
    grade_sheet,
    neutralise,
    statement,
)

__all__ += ["Debrief", "Statement", "StudentRecord", "debrief", "grade_sheet", "neutralise", "statement"]
