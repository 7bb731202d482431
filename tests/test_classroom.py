"""The classroom domain (issue 12, item 1 and the domain half of item 2 and "Bad input"):
lifecycle folded from events, every refusal with its message and nothing changed, join codes,
and the rules preset enforced by the existing broker."""

from __future__ import annotations

import pickle
import subprocess
import sys
from decimal import Decimal

import msgspec
import pytest

import vtrade.classroom as vc
from vtrade.classroom import codes
from vtrade.core.events import Side, decode, encode
from vtrade.core.instruments import us_equity
from vtrade.execution.accounts import MarketStatus
from vtrade.execution.broker import Brokerage
from vtrade.execution.engine import Realism
from vtrade.execution.events import RejectCode
from vtrade.execution.fees import PerShare
from vtrade.execution.orders import OrderType, SubmitOrder

TEACHER = "t-lee"
CODE = vc.join_code(bytes.fromhex("5f3a9c0e7b12d4468ae1"))
SEC = 10**9
DAY = 86_400 * SEC
T0 = 1_700_000_000 * SEC  # 2023-11-14 22:13 UTC


def run(state: vc.ClassState | None, *commands: vc.Command) -> tuple[vc.ClassState, list[vc.ClassEvent]]:
    """Execute ``commands`` in order; the final state and every event they made."""
    events: list[vc.ClassEvent] = []
    for c in commands:
        state, new = vc.execute(state, c)
        events += new
    assert state is not None
    return state, events


def created(rules: vc.ClassRules | None = None) -> vc.ClassState:
    return run(None, vc.CreateClass(T0, "econ", TEACHER, "Econ 101", CODE, rules or vc.ClassRules()))[0]


def registering(rules: vc.ClassRules | None = None, *names: str) -> vc.ClassState:
    s = run(created(rules), vc.OpenRegistration(T0 + 1, TEACHER))[0]
    for i, n in enumerate(names):
        s = run(s, vc.Join(T0 + 10 + i, CODE, n))[0]
    return s


def trading(rules: vc.ClassRules | None = None, *names: str) -> vc.ClassState:
    return run(registering(rules, *names), vc.StartTrading(T0 + 100, TEACHER))[0]


def refused(state: vc.ClassState | None, command: vc.Command, code: str, message: str) -> None:
    """``command`` is refused with ``code`` and a message containing ``message``, and neither
    ``decide`` nor the state changed anything (the state is compared by value, deeply)."""
    before = msgspec.msgpack.encode(repr(state))
    with pytest.raises(vc.ClassroomError) as info:
        vc.decide(state, command)
    assert info.value.code == code, str(info.value)
    assert message in str(info.value), str(info.value)
    with pytest.raises(vc.ClassroomError):
        vc.execute(state, command)
    assert msgspec.msgpack.encode(repr(state)) == before


# ---------------------------------------------------------------------------- lifecycle
def test_lifecycle_happy_path_is_a_deterministic_fold_of_events_that_round_trip() -> None:
    rules = vc.ClassRules(starting_cash="25000", account_kind="margin", shorting_allowed=True, max_trades_per_day=20,
                          allowed_symbols=frozenset({"AAPL", "MSFT"}), late_entry=True)  # fmt: skip
    state, events = run(
        None,
        vc.CreateClass(T0, "econ", TEACHER, "Econ 101 <period 3>", CODE, rules),
        vc.ChangeSettings(T0 + 1, TEACHER, vc.RulesPatch(peers_visible=True, max_position_pct=Decimal(25))),
        vc.SetSpeed(T0 + 2, TEACHER, 60),
        vc.OpenRegistration(T0 + 3, TEACHER),
        vc.Join(T0 + 4, CODE, "Ada"),
        vc.Join(T0 + 5, CODE.lower().replace("-", " "), "  Grace   Hopper "),
        vc.Join(T0 + 6, CODE, "<script>alert(1)</script>"),
        vc.StartTrading(T0 + 7, TEACHER),
        vc.Announce(T0 + 8, TEACHER, "Earnings season!\nMind the halts."),
        vc.PauseClock(T0 + 9, TEACHER),
        vc.SetSpeed(T0 + 10, TEACHER, 600.0),
        vc.ResumeClock(T0 + 11, TEACHER),
        vc.Join(T0 + 12, CODE, "Late Larry"),  # late entry allowed
        vc.ResetStudent(T0 + 13, TEACHER, "econ-s1"),
        vc.RemoveStudent(T0 + 14, TEACHER, "econ-s3", "inappropriate name"),
        vc.ChangeSettings(T0 + 15, TEACHER, vc.RulesPatch(max_trades_per_day=5)),
        vc.Freeze(T0 + 16, TEACHER),
        vc.Archive(T0 + 17, TEACHER),
    )
    assert [type(e).__name__ for e in events] == [
        "ClassCreated", "SettingsChanged", "ClockSpeedChanged", "RegistrationOpened", "StudentJoined",
        "StudentJoined", "StudentJoined", "TradingStarted", "Announcement", "ClockPaused", "ClockSpeedChanged",
        "ClockResumed", "StudentJoined", "StudentReset", "StudentRemoved", "SettingsChanged", "ClassFrozen",
        "ClassArchived",
    ]  # fmt: skip
    assert state.phase is vc.Phase.ARCHIVED and not state.clock_running and state.speed == 600.0
    assert state.name == "Econ 101 <period 3>"  # text as typed: the views escape
    assert state.rules.peers_visible and state.rules.max_trades_per_day == 5
    assert state.rules.max_position_pct == Decimal(25) and state.rules.starting_cash == Decimal(25000)
    assert [a.text for a in state.announcements] == ["Earnings season!\nMind the halts."]
    assert (state.created_ts, state.registration_opened_ts, state.trading_started_ts, state.frozen_ts,
            state.archived_ts) == (T0, T0 + 3, T0 + 7, T0 + 16, T0 + 17)  # fmt: skip

    rows = vc.roster(state)
    assert [(r.student_id, r.display_name, r.account_id, r.joined_ts, r.resets, r.removed) for r in rows] == [
        ("econ-s1", "Ada", "econ-s1-a2", T0 + 4, 1, False),
        ("econ-s2", "Grace Hopper", "econ-s2-a1", T0 + 5, 0, False),
        ("econ-s3", "<script>alert(1)</script>", "econ-s3-a1", T0 + 6, 0, True),
        ("econ-s4", "Late Larry", "econ-s4-a1", T0 + 12, 0, False),
    ]
    assert [r.student_id for r in vc.roster(state, include_removed=False)] == ["econ-s1", "econ-s2", "econ-s4"]
    # A reset leaves the old account behind: nobody trades it any more.
    assert state.student_of_account("econ-s1-a1") is None
    assert state.student_of_account("econ-s1-a2").student_id == "econ-s1"  # type: ignore[union-attr]
    assert state.student_of_account("econ-s3-a1") is None  # removed

    # The state is the fold of the events: the same events, folded again, give the same state,
    # and so do the events read back from their bytes on the log.
    assert vc.fold(events) == state
    assert vc.fold(events) == vc.fold(events)
    wire = [encode(e) for e in events]
    back = [decode(b) for b in wire]
    assert back == events
    assert vc.fold(back) == state  # type: ignore[arg-type]
    assert [encode(e) for e in back] == wire  # the encoding is canonical too

    # Snapshots pickle the state (a restart loads one and folds on from its offset).
    assert pickle.loads(pickle.dumps(state)) == state
    frame = vc.roster_frame(state)
    assert list(frame["display_name"]) == [r.display_name for r in rows]
    assert frame["removed"].tolist() == [False, False, True, False]
    assert frame["removed_at"].notna().tolist() == [False, False, True, False]
    assert list(vc.roster_frame(vc.fold(events[:1])).columns) == list(frame.columns)  # type: ignore[arg-type]

    # A settings change carries only what changed.
    change = events[1]
    assert isinstance(change, vc.SettingsChanged)
    assert change.changes.fields() == {"peers_visible": True, "max_position_pct": Decimal(25)}


def test_fold_refuses_events_of_another_class_or_before_creation() -> None:
    s = created()
    with pytest.raises(ValueError, match="folded into class econ"):
        vc.apply(s, vc.RegistrationOpened(T0, "other", TEACHER))
    with pytest.raises(ValueError, match="before it was created"):
        vc.fold([vc.RegistrationOpened(T0, "econ", TEACHER)])
    with pytest.raises(ValueError, match="created twice"):
        vc.apply(s, vc.ClassCreated(T0, "econ", TEACHER, "x", CODE, vc.ClassRules()))


def test_settings_change_that_changes_nothing_makes_no_event() -> None:
    s = created(vc.ClassRules(starting_cash=50_000))
    assert vc.decide(s, vc.ChangeSettings(T0, TEACHER, vc.RulesPatch(starting_cash="50000.00"))) == []
    assert vc.decide(s, vc.ChangeSettings(T0, TEACHER, vc.RulesPatch())) == []


# ---------------------------------------------------------------------------- bad input
def test_wrong_join_code_is_refused() -> None:
    s = registering(None, "Ada")
    other = vc.join_code(bytes(10))
    refused(s, vc.Join(T0 + 50, other, "Bob"), "wrong_code", "That join code is not right")
    refused(s, vc.Join(T0 + 50, "", "Bob"), "wrong_code", "A join code is 15 letters and digits")
    refused(s, vc.Join(T0 + 50, CODE[:-1], "Bob"), "wrong_code", "like 7KQ2M-XW9RT-C4HFD")
    refused(s, vc.Join(T0 + 50, CODE + "U", "Bob"), "wrong_code", "A join code is")
    refused(s, vc.Join(T0 + 50, None, "Bob"), "wrong_code", "A join code looks like")  # type: ignore[arg-type]
    # Without the code nothing about the class leaks, not even that it is archived.
    gone = run(created(), vc.Archive(T0 + 1, TEACHER))[0]
    refused(gone, vc.Join(T0 + 50, other, "Bob"), "wrong_code", "That join code is not right")


@pytest.mark.parametrize("name", ["Ada", "ada", "  ADA ", "Ａｄａ"])
def test_duplicate_display_name_is_refused(name: str) -> None:
    s = registering(None, "Ada")
    refused(s, vc.Join(T0 + 50, CODE, name), "name_taken", "is already taken in this class; choose another")


def test_a_removed_students_name_is_free_again_and_ids_are_not_reused() -> None:
    s = registering(None, "Ada")
    s, _ = run(s, vc.RemoveStudent(T0 + 60, TEACHER, "econ-s1"), vc.Join(T0 + 61, CODE, "ada"))
    assert [(r.student_id, r.display_name, r.removed) for r in vc.roster(s)] == [
        ("econ-s1", "Ada", True), ("econ-s2", "ada", False)
    ]


def test_joining_outside_registration_is_refused_unless_late_entry() -> None:
    refused(created(), vc.Join(T0 + 50, CODE, "Bob"), "registration_closed", "has not opened yet")
    refused(trading(), vc.Join(T0 + 500, CODE, "Bob"), "registration_closed", "takes no late entries")
    frozen = run(trading(vc.ClassRules(late_entry=True)), vc.Freeze(T0 + 200, TEACHER))[0]
    refused(frozen, vc.Join(T0 + 500, CODE, "Bob"), "registration_closed", "This class has ended")

    window = vc.ClassRules(registration_opens=T0 + DAY, registration_closes=T0 + 2 * DAY)
    s = registering(window)
    refused(s, vc.Join(T0 + 50, CODE, "Early"), "registration_closed", "Registration opens 2023-11-15 22:13 UTC")
    refused(s, vc.Join(T0 + 2 * DAY, CODE, "Late"), "registration_closed", "Registration closed 2023-11-16 22:13 UTC")
    assert run(s, vc.Join(T0 + DAY, CODE, "On time"))[0].students[0].display_name == "On time"

    late = vc.ClassRules(registration_closes=T0 + DAY, late_entry=True)
    s = registering(late)
    s, _ = run(s, vc.Join(T0 + 3 * DAY, CODE, "Late but welcome"), vc.StartTrading(T0 + 4 * DAY, TEACHER),
               vc.Join(T0 + 5 * DAY, CODE, "Even later"))  # fmt: skip
    assert [st.display_name for st in s.students] == ["Late but welcome", "Even later"]


@pytest.mark.parametrize(
    ("patch", "names"),
    [
        (vc.RulesPatch(starting_cash=Decimal(1_000_000)), "starting cash"),
        (vc.RulesPatch(account_kind="margin"), "account kind"),
        (vc.RulesPatch(realism="L3"), "realism"),
        (vc.RulesPatch(fees="none"), "fees"),
        (vc.RulesPatch(initial_margin_pct=Decimal(30)), "initial margin pct"),
        (vc.RulesPatch(account_kind="margin", shorting_allowed=True, peers_visible=True),
         "account kind, shorting allowed"),
    ],
)  # fmt: skip
def test_economics_lock_once_trading_starts(patch: vc.RulesPatch, names: str) -> None:
    # Before trading the same change is fine ...
    assert vc.decide(registering(None, "Ada"), vc.ChangeSettings(T0 + 50, TEACHER, patch))
    # ... after it, refused, and the whole change with it (peers_visible too in the mixed patch).
    for s in (trading(None, "Ada"), run(trading(None, "Ada"), vc.Freeze(T0 + 200, TEACHER))[0]):
        refused(s, vc.ChangeSettings(T0 + 300, TEACHER, patch), "locked",
                f"economics are locked ({names} cannot change)")  # fmt: skip


def test_non_economic_settings_and_announcements_still_change_while_trading() -> None:
    s = trading(None, "Ada")
    s, events = run(
        s,
        vc.ChangeSettings(T0 + 300, TEACHER, vc.RulesPatch(peers_visible=True, max_trades_per_day=3,
                                                           allowed_sectors=frozenset({"Energy"}))),
        vc.Announce(T0 + 301, TEACHER, "Energy only from now on"),
        vc.ChangeSettings(T0 + 302, TEACHER, vc.RulesPatch(max_trades_per_day=None)),
    )  # fmt: skip
    assert s.rules.peers_visible and s.rules.max_trades_per_day is None
    assert s.rules.allowed_sectors == frozenset({"Energy"})
    assert s.announcements[-1].text == "Energy only from now on"
    assert vc.fold([*_events_of(trading(None, "Ada")), *events]) == s


def _events_of(state: vc.ClassState) -> list[vc.ClassEvent]:
    """The events that made the state ``trading(None, 'Ada')`` (rebuilt the same way)."""
    return run(None, vc.CreateClass(T0, "econ", TEACHER, "Econ 101", CODE), vc.OpenRegistration(T0 + 1, TEACHER),
               vc.Join(T0 + 10, CODE, "Ada"), vc.StartTrading(T0 + 100, TEACHER))[1]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"starting_cash": -5}, "Starting cash must not be negative, got -5"),
        ({"starting_cash": 0}, "Starting cash must be more than $0"),
        ({"starting_cash": "lots"}, "Starting cash is not a number"),
        ({"starting_cash": float("inf")}, "Starting cash must be finite"),
        ({"max_position_pct": 0}, "Max position must be more than 0 % and at most 100 %"),
        ({"max_position_pct": 150}, "Max position must be more than 0 % and at most 100 %"),
        ({"max_position_pct": -1}, "Max position must not be negative"),
        ({"realism": "L4"}, "Realism must be one of bars, L1, L2, L3, got 'L4'"),
        ({"fees": "robinhood"}, "Fees must be one of none, per-share, maker-taker"),
        ({"account_kind": "portfolio"}, "The account kind must be 'cash' or 'margin'"),
        ({"shorting_allowed": True}, "Short selling needs margin accounts"),
        ({"max_trades_per_day": 0}, "The trades-per-day cap must be a whole number of at least 1"),
        ({"max_trades_per_day": 2.5}, "The trades-per-day cap must be a whole number"),
        ({"starts_at": T0 + DAY, "ends_at": T0}, "The class must end after it starts"),
        ({"registration_opens": T0 + DAY, "registration_closes": T0}, "Registration must close after it opens"),
        ({"registration_opens": -1}, "The registration opening must be a time in nanoseconds"),
        ({"allowed_symbols": frozenset()}, "The allowed universe is empty"),
        ({"allowed_symbols": "AAPL"}, "The allowed symbols must be a set of names"),
        ({"min_share_price": -1}, "Minimum share price must not be negative"),
        ({"initial_margin_pct": 120}, "Initial margin must be more than 0 % and at most 100 %"),
        ({"maintenance_margin_pct": 60}, "Maintenance margin must be more than 0 % and at most 50 %"),
        ({"peers_visible": "yes"}, "peers_visible must be True or False"),
    ],
)
def test_out_of_range_settings_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(vc.ClassroomError) as info:
        vc.ClassRules(**fields)  # type: ignore[arg-type]
    assert info.value.code == "out_of_range" and message in str(info.value), str(info.value)
    # The same change as a command, in any changeable phase: refused, nothing changed.
    for s in (created(), registering(None, "Ada")):
        refused(s, vc.ChangeSettings(T0 + 50, TEACHER, vc.RulesPatch(**fields)), "out_of_range", message)  # type: ignore[arg-type]


def test_a_teacher_action_by_anyone_else_is_refused() -> None:
    s = registering(None, "Ada")
    student = s.students[0].student_id
    for cmd, verb in [
        (vc.ChangeSettings(T0 + 50, student, vc.RulesPatch(peers_visible=True)), "change the settings"),
        (vc.ChangeJoinCode(T0 + 50, student, vc.join_code(bytes(10))), "change the join code"),
        (vc.StartTrading(T0 + 50, student), "start trading"),
        (vc.SetSpeed(T0 + 50, "", 10), "change the speed"),
        (vc.Archive(T0 + 50, "T-LEE"), "archive the class"),  # ids are exact: no case folding
        (vc.RemoveStudent(T0 + 50, student, student), "remove a student"),
        (vc.ResetStudent(T0 + 50, student, student), "reset a student"),
        (vc.Announce(T0 + 50, student, "free money"), "make an announcement"),
    ]:
        refused(s, cmd, "not_teacher", f"Only this class's teacher can {verb}")
    t = trading(None, "Ada")
    for cmd, verb in [(vc.PauseClock(T0 + 500, student), "pause the clock"),
                      (vc.Freeze(T0 + 500, student), "freeze the class")]:  # fmt: skip
        refused(t, cmd, "not_teacher", f"Only this class's teacher can {verb}")
    paused = run(t, vc.PauseClock(T0 + 500, TEACHER))[0]
    refused(paused, vc.ResumeClock(T0 + 501, student), "not_teacher", "Only this class's teacher can resume the clock")
    refused(created(), vc.OpenRegistration(T0 + 50, student), "not_teacher", "can open registration")


def test_illegal_lifecycle_transitions_are_refused() -> None:
    t = trading(None, "Ada")
    refused(t, vc.OpenRegistration(T0 + 500, TEACHER), "bad_transition", "registration cannot reopen")
    refused(t, vc.StartTrading(T0 + 500, TEACHER), "bad_transition", "The class is trading; you cannot start trading")
    refused(t, vc.ResumeClock(T0 + 500, TEACHER), "bad_transition", "The clock is already running")
    refused(t, vc.Archive(T0 + 500, TEACHER), "bad_transition", "Freeze the class before archiving it")
    refused(created(), vc.StartTrading(T0 + 1, TEACHER), "bad_transition", "Open registration first")
    refused(created(), vc.Freeze(T0 + 1, TEACHER), "bad_transition", "is still a draft; you cannot freeze")
    refused(registering(), vc.PauseClock(T0 + 5, TEACHER), "bad_transition", "you cannot pause the clock now")
    refused(registering(), vc.OpenRegistration(T0 + 5, TEACHER), "bad_transition", "is open for registration")
    paused = run(t, vc.PauseClock(T0 + 500, TEACHER))[0]
    refused(paused, vc.PauseClock(T0 + 501, TEACHER), "bad_transition", "The clock is already paused")
    frozen = run(t, vc.Freeze(T0 + 600, TEACHER))[0]
    refused(frozen, vc.StartTrading(T0 + 601, TEACHER), "bad_transition", "trading cannot restart")
    refused(frozen, vc.ResetStudent(T0 + 601, TEACHER, "econ-s1"), "bad_transition", "frozen")
    refused(frozen, vc.SetSpeed(T0 + 601, TEACHER, 5), "bad_transition", "frozen")
    archived = run(frozen, vc.Archive(T0 + 700, TEACHER))[0]
    after: list[vc.Command] = [
        vc.Announce(T0 + 701, TEACHER, "hi"),
        vc.ChangeSettings(T0 + 701, TEACHER, vc.RulesPatch(peers_visible=True)),
        vc.Archive(T0 + 701, TEACHER),
        vc.RemoveStudent(T0 + 701, TEACHER, "econ-s1"),
    ]
    for cmd in after:
        refused(archived, cmd, "bad_transition", "'Econ 101' is archived; nothing in it can change")
    refused(archived, vc.Join(T0 + 701, CODE, "Bob"), "registration_closed", "This class has ended")
    refused(None, vc.StartTrading(T0, TEACHER), "bad_transition", "There is no such class")
    refused(created(), vc.CreateClass(T0, "econ", TEACHER, "Again", CODE), "bad_transition", "already exists")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "The display name must not be empty"),
        ("   \t ", "The display name must not be empty"),
        ("A" * 41, "The display name is 41 characters long; at most 40 are allowed"),
        ("Ada\x00", "contains a control character (U+0000)"),
        ("Ada\nLovelace", "contains a control character (U+000A)"),
        ("Ada\x1b[31m", "contains a control character (U+001B)"),
        ("\u202eadA", "contains an invisible formatting character (U+202E)"),
        ("Ad\u200ba", "contains an invisible formatting character (U+200B)"),
        (42, "The display name must be text, got int"),
    ],
)
def test_bad_display_names_are_refused(name: object, message: str) -> None:
    refused(registering(None, "Ada"), vc.Join(T0 + 50, CODE, name), "bad_text", message)  # type: ignore[arg-type]


def test_html_in_names_and_announcements_is_stored_as_text() -> None:
    s = registering(None, "<img src=x onerror=alert(1)>", "=HYPERLINK(\"http://x\")")
    s, _ = run(s, vc.Announce(T0 + 60, TEACHER, "<b>Quiz</b> & <i>halt</i>"))
    assert [st.display_name for st in s.students] == ["<img src=x onerror=alert(1)>", '=HYPERLINK("http://x")']
    assert s.announcements[0].text == "<b>Quiz</b> & <i>halt</i>"


def test_other_bad_teacher_input_is_refused() -> None:
    s = registering(None, "Ada")
    refused(s, vc.Announce(T0 + 50, TEACHER, " "), "bad_text", "The announcement must not be empty")
    refused(s, vc.Announce(T0 + 50, TEACHER, "x" * 1001), "bad_text", "at most 1000")
    refused(s, vc.RemoveStudent(T0 + 50, TEACHER, "econ-s1", 7), "bad_text", "The reason must be text")  # type: ignore[arg-type]
    refused(s, vc.RemoveStudent(T0 + 50, TEACHER, "econ-s9"), "unknown_student", "There is no student 'econ-s9'")
    removed = run(s, vc.RemoveStudent(T0 + 50, TEACHER, "econ-s1"))[0]
    refused(removed, vc.RemoveStudent(T0 + 51, TEACHER, "econ-s1"), "unknown_student", "'Ada' was already removed")
    refused(removed, vc.ResetStudent(T0 + 51, TEACHER, "econ-s1"), "unknown_student", "already removed")
    for speed in (-1, float("nan"), float("inf"), 2e6, "fast", True):
        refused(s, vc.SetSpeed(T0 + 50, TEACHER, speed), "out_of_range", "The speed must be a number")  # type: ignore[arg-type]
    refused(s, vc.ChangeJoinCode(T0 + 50, TEACHER, "1234"), "wrong_code", "A join code is 15 letters")
    refused(None, vc.CreateClass(T0, "econ", TEACHER, "\x07", CODE), "bad_text", "The class name contains a control")
    refused(None, vc.CreateClass(T0, "my class", TEACHER, "Econ", CODE), "out_of_range", "A class id must be 1 to 64")
    refused(None, vc.CreateClass(T0, "econ", "", "Econ", CODE), "out_of_range", "A teacher id must be")
    refused(None, vc.CreateClass(T0, "econ", TEACHER, "Econ", "nope"), "wrong_code", "A join code is")
    refused(None, vc.CreateClass(-1, "econ", TEACHER, "Econ", CODE), "out_of_range", "A command's time must be")


# ---------------------------------------------------------------------------- codes
def test_join_codes_are_easy_to_type_and_carry_at_least_64_bits() -> None:
    assert vc.CODE_BITS >= 64
    fresh = {vc.new_join_code() for _ in range(2000)}
    assert len(fresh) == 2000  # no repeats (a collision in 2,000 draws of 75 bits: ~1e-16)
    for code in list(fresh)[:50]:
        groups = code.split("-")
        assert [len(g) for g in groups] == [5, 5, 5]
        assert set("".join(groups)) <= set(codes.ALPHABET) and not set("ILOU") & set(code)
        assert vc.normalize_code(code) == "".join(groups)
    # Every one of the 75 entropy bits shows in the code: flipping any one gives another code.
    base = bytes(10)
    seen = {vc.join_code(base)}
    for bit in range(75):
        flipped = bytearray(base)
        flipped[bit // 8] ^= 0x80 >> (bit % 8)
        seen.add(vc.join_code(bytes(flipped)))
    assert len(seen) == 76
    with pytest.raises(ValueError, match="at least 10 random bytes"):
        vc.join_code(b"\x00" * 9)


def test_codes_are_read_forgivingly_and_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = codes.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(codes.hmac, "compare_digest", spy)
    assert vc.codes_match(CODE.lower().replace("0", "o").replace("1", "l"), CODE)
    assert vc.codes_match(" " + CODE.replace("-", " ") + " ", CODE)
    assert not vc.codes_match(vc.join_code(bytes(10)), CODE)
    assert not vc.codes_match(12345, CODE)
    assert len(calls) == 3  # every well-formed guess went through compare_digest


def test_a_changed_join_code_replaces_the_old_one() -> None:
    new = vc.join_code(b"\xff" * 10)
    s, events = run(registering(None, "Ada"), vc.ChangeJoinCode(T0 + 50, TEACHER, new.lower()))
    assert events == [vc.JoinCodeChanged(T0 + 50, "econ", TEACHER, new)]
    refused(s, vc.Join(T0 + 51, CODE, "Bob"), "wrong_code", "That join code is not right")
    assert run(s, vc.Join(T0 + 52, new, "Bob"))[0].students[-1].display_name == "Bob"


# ---------------------------------------------------------------------------- the broker enforces the rules
AAA, BBB = us_equity("AAA", sector="Energy"), us_equity("BBB", sector="Information Technology")
CCC = us_equity("CCC", sector="energy")
OPEN = MarketStatus(open=True)


def _broker(rules: vc.ClassRules, *names: str) -> tuple[Brokerage, vc.ClassState]:
    """A brokerage set up from the class's rules, one account per student, as the runtime would."""
    state = trading(rules, *names)
    insts = [AAA, BBB, CCC]
    b = Brokerage(insts, limits=state.rules.session_limits(insts), policy=state.rules.margin_policy(),
                  fees=state.rules.fee_model())  # fmt: skip
    for st in state.active:
        b.open_account(st.account_id, state.rules.starting_cash, state.rules.kind)
    return b, state


def _order(account: str, n: int, symbol: str, side: Side, qty: int, price: int, ts: int = T0) -> SubmitOrder:
    return SubmitOrder(ts, account, f"{account}-{n}", symbol, side, OrderType.LIMIT, qty, limit_price=price)


def _admit(b: Brokerage, o: SubmitOrder) -> RejectCode | None:
    _, rejection = b.admit(o, market=OPEN, bid=o.limit_price - 1, ask=o.limit_price, last=o.limit_price,  # type: ignore[operator]
                           marks={"AAA": 10000, "BBB": 10000, "CCC": 10000})  # fmt: skip
    return None if rejection is None else rejection.code


def test_the_broker_enforces_the_class_trades_per_day_cap_and_universe() -> None:
    rules = vc.ClassRules(starting_cash=10_000, max_trades_per_day=2, allowed_symbols=frozenset({"AAA"}))
    b, s = _broker(rules, "Ada")
    acct = s.students[0].account_id
    assert b.account(acct).books.cash == Decimal(10_000)
    assert _admit(b, _order(acct, 1, "BBB", Side.BUY, 1, 10000)) is RejectCode.SYMBOL_NOT_ALLOWED
    assert _admit(b, _order(acct, 2, "AAA", Side.BUY, 1, 10000)) is None
    assert _admit(b, _order(acct, 3, "AAA", Side.BUY, 1, 10000)) is None
    assert _admit(b, _order(acct, 4, "AAA", Side.BUY, 1, 10000)) is RejectCode.MAX_ORDERS
    assert _admit(b, _order(acct, 5, "AAA", Side.BUY, 1, 10000, ts=T0 + DAY)) is None  # a new day


def test_the_broker_enforces_sectors_shorting_position_size_and_price_floor() -> None:
    rules = vc.ClassRules(starting_cash=10_000, account_kind="margin", allowed_sectors=frozenset({"ENERGY"}),
                          max_position_pct=20, min_share_price="150")  # fmt: skip
    b, s = _broker(rules, "Ada")
    acct = s.students[0].account_id
    assert b.limits.allowed_symbols == frozenset({"AAA", "CCC"})  # sectors matched without regard to case
    assert _admit(b, _order(acct, 1, "BBB", Side.BUY, 1, 20000)) is RejectCode.SYMBOL_NOT_ALLOWED
    assert _admit(b, _order(acct, 2, "AAA", Side.SELL, 1, 20000)) is RejectCode.SHORT_SELLING_NOT_ALLOWED
    assert _admit(b, _order(acct, 3, "AAA", Side.BUY, 11, 20000)) is RejectCode.MAX_POSITION  # $2,200 > 20 %
    assert _admit(b, _order(acct, 4, "CCC", Side.BUY, 1, 10000)) is RejectCode.MIN_PRICE  # $100 < $150
    assert _admit(b, _order(acct, 5, "AAA", Side.BUY, 10, 20000)) is None  # $2,000 = 20 %


def test_margin_rules_and_fees_reach_the_broker() -> None:
    margin = vc.ClassRules(starting_cash=10_000, account_kind="margin", shorting_allowed=True, initial_margin_pct=50)
    b, s = _broker(margin, "Ada")
    acct = s.students[0].account_id
    assert b.buying_power(acct, {}) == Decimal(20_000)  # Reg T 50 %: twice the cash
    assert _admit(b, _order(acct, 1, "AAA", Side.SELL, 1, 10000)) is None  # shorting allowed on margin
    assert isinstance(b.fees, PerShare)
    assert b.policy.initial == Decimal("0.5") and b.policy.maintenance_long == Decimal("0.25")

    cash = vc.ClassRules(starting_cash=10_000, fees="none")
    b, s = _broker(cash, "Ada")
    assert b.buying_power(s.students[0].account_id, {}) == Decimal(10_000)
    assert _admit(b, _order(s.students[0].account_id, 1, "AAA", Side.SELL, 1, 10000)) is (
        RejectCode.SHORT_SELLING_NOT_ALLOWED
    )
    assert type(cash.fee_model()).__name__ == "NoFees"
    assert vc.ClassRules(realism="bars").realism_level is Realism.BARS


def test_the_universe_is_checked_against_the_classs_market() -> None:
    with pytest.raises(vc.ClassroomError, match="ZZZ is not traded in this class's market"):
        vc.ClassRules(allowed_symbols=frozenset({"AAA", "ZZZ"})).session_limits([AAA, BBB])
    with pytest.raises(ValueError, match="allowed sectors need the class's instruments"):
        vc.ClassRules(allowed_sectors=frozenset({"Energy"})).session_limits()
    assert vc.ClassRules().session_limits([AAA]).allowed_symbols is None


def test_trade_notes_when_required() -> None:
    required = vc.ClassRules(trade_notes_required=True)
    with pytest.raises(vc.ClassroomError, match="asks for a note with every trade") as info:
        required.check_note("   ")
    assert info.value.code == "note_required"
    assert required.check_note("Buying the dip <3\nbecause earnings") == "Buying the dip <3\nbecause earnings"
    assert vc.ClassRules().check_note(None) == ""
    with pytest.raises(vc.ClassroomError, match="control character"):
        vc.ClassRules().check_note("hi\x00")


# ---------------------------------------------------------------------------- purity
def test_the_domain_imports_no_runtime_ui_or_storage() -> None:
    code = (
        "import sys, vtrade.classroom\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('redis', 'duckdb', 'panel', 'bokeh', 'kafka')"
        " or m.startswith(('vtrade.runtime', 'vtrade.ui')))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_rules_read_back_from_the_log_are_validated() -> None:
    good = vc.ClassCreated(T0, "econ", TEACHER, "Econ", CODE, vc.ClassRules())
    tampered = encode(good).replace(b"per-share", b"per-share"[:-1] + b"X")
    with pytest.raises(ValueError, match="Fees must be one of"):
        decode(tampered)


# ---------------------------------------------------------------------------- the teacher's market events
def _trading_state() -> vc.ClassState:
    s, _ = vc.execute(None, vc.CreateClass(0, "c", "t", "C", vc.join_code(bytes(10))))
    s, _ = vc.execute(s, vc.OpenRegistration(1, "t"))
    s, _ = vc.execute(s, vc.StartTrading(2, "t"))
    return s


def test_market_events_are_decided_folded_and_refused_with_reasons() -> None:
    s = _trading_state()
    s, (shock,) = vc.execute(s, vc.ShockMarket(3, "t", ("jpm", "BAC", "JPM"), "-10", "Financials"))
    assert isinstance(shock, vc.MarketShocked)
    assert (shock.symbols, shock.pct, shock.label) == (("BAC", "JPM"), "-10", "Financials")
    s, _ = vc.execute(s, vc.HaltTrading(4, "t", "AAPL", "news pending"))
    assert s.halted == {"AAPL"}
    with pytest.raises(vc.ClassroomError, match="already halted"):
        vc.execute(s, vc.HaltTrading(5, "t", "AAPL"))
    s, _ = vc.execute(s, vc.DrainLiquidity(6, "t", ("XOM",), 0.25, 30))
    s, _ = vc.execute(s, vc.ResumeTrading(7, "t", "AAPL"))
    assert s.halted == frozenset()
    assert [type(e).__name__ for e in s.market_events] == ["MarketShocked", "TradingHalted", "LiquidityDrained",
                                                          "TradingResumed"]  # fmt: skip
    with pytest.raises(vc.ClassroomError, match="is not halted"):
        vc.execute(s, vc.ResumeTrading(8, "t", "AAPL"))
    bad = [
        (vc.ShockMarket(9, "t", ("AAPL",), "ten"), "must be a number"),
        (vc.ShockMarket(9, "t", ("AAPL",), 250), "at most 200"),
        (vc.ShockMarket(9, "t", ("AAPL",), float("nan")), "above -90"),
        (vc.ShockMarket(9, "t", (), -5), "at least one symbol"),
        (vc.ShockMarket(9, "t", "AAPL", -5), "as a list"),  # type: ignore[arg-type]
        (vc.DrainLiquidity(9, "t", ("XOM",), 1, 30), "below 1"),
        (vc.DrainLiquidity(9, "t", ("XOM",), 0.5, 0), "1 to 1,440"),
        (vc.ShockMarket(9, "student", ("AAPL",), -5), "Only this class's teacher"),
    ]
    for command, says in bad:
        with pytest.raises(vc.ClassroomError, match=says):
            vc.execute(s, command)


def test_market_events_need_a_trading_class() -> None:
    s, _ = vc.execute(None, vc.CreateClass(0, "c", "t", "C", vc.join_code(bytes(10))))
    with pytest.raises(vc.ClassroomError, match="still a draft; you cannot shock the market"):
        vc.execute(s, vc.ShockMarket(1, "t", ("AAPL",), -5))


def test_the_market_choice_is_validated_and_locks_with_the_economics() -> None:
    assert vc.ClassRules(market="crypto").market == "crypto"
    for bad, says in (({"market": "forex"}, "must be one of universe"), ({"replay_start": "last year"}, "a date"),
                      ({"seed": -1}, "seed")):  # fmt: skip
        with pytest.raises(vc.ClassroomError, match=says):
            vc.ClassRules(**bad)  # type: ignore[arg-type]
    assert {"market", "replay_start", "seed"} <= vc.ECONOMIC_FIELDS
