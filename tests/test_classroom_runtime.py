"""The classroom served from Python (issue 12): a class from creation to grades on its own
market, identity (teacher secret, signed student tokens), isolation between students and
classes, bad input refused with a sentence and nothing changed, the join rate limit, and a
restart that brings classes, rosters, accounts and the clock back."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import vtrade as vt
import vtrade.classroom as vc
from vtrade.classroom import ClassroomError, ClassRules, Phase
from vtrade.runtime.classes import TOPIC
from vtrade.runtime.classroom import Classroom, JoinLimiter, StudentDesk, TeacherDesk
from vtrade.runtime.live import LiveMarket

FAST = {"burn_in": 20_000}


def _room(tmp_path: Path | None = None, **kw: object) -> Classroom:
    return Classroom(tmp_path, market_overrides=FAST, teacher_secret="s" * 24, **kw)  # type: ignore[arg-type]


def _class(room: Classroom, **rules: object) -> tuple[TeacherDesk, str]:
    teacher = room.teacher(room.teacher_secret)
    cid = teacher.create_class("Econ 101", ClassRules(market="synthetic", starting_cash=50_000, **rules))
    teacher.open_registration(cid)
    return teacher, cid


def _trading(room: Classroom, names: tuple[str, ...] = ("Ada", "Bo"), **rules: object
             ) -> tuple[TeacherDesk, str, list[StudentDesk]]:  # fmt: skip
    teacher, cid = _class(room, **rules)
    passes = [room.join(teacher.join_code(cid), n) for n in names]
    teacher.start(cid)
    teacher.pause(cid)  # the tests move the clock themselves: deterministic
    return teacher, cid, [room.student(p.token) for p in passes]


def test_the_notebook_api_is_vt_classroom() -> None:
    assert vt.Classroom is Classroom


def test_a_teacher_needs_the_secret_and_a_wrong_one_changes_nothing() -> None:
    room = _room()
    with pytest.raises(ClassroomError, match="not the teacher's secret") as refused:
        room.teacher("x" * 24)
    assert refused.value.code == "not_teacher"
    for bad in (None, "", 123, room.teacher_secret[:-1]):
        with pytest.raises(ClassroomError):
            room.teacher(bad)
    assert room.classes() == [] and room.bus.end_offsets(TOPIC) == [0] * len(room.bus.end_offsets(TOPIC))


def test_joining_gives_an_unguessable_token_bound_to_one_student() -> None:
    room = _room()
    teacher, cid = _class(room)
    a = room.join(teacher.join_code(cid), "Ada")
    b = room.join(teacher.join_code(cid).lower().replace("-", " "), "Bo")  # forgiving reading of the code
    assert (a.class_id, b.class_id) == (cid, cid) and a.student_id != b.student_id
    assert room.student(a.token).display_name == "Ada" and room.student(b.token).display_name == "Bo"
    # Two joins never share a token, and a token carries 96 random bits besides its MAC.
    assert a.token != b.token and len(a.token.split(".")[0]) >= 40
    # Tampering, another server's secret, an account cookie: not a student.
    other = _room()
    for bad in (a.token[:-2] + ("AA" if not a.token.endswith("AA") else "BB"), "", None, "x.y",
                other.join(_class(other)[0].join_code(other.classes()[0]), "Ada").token):  # fmt: skip
        with pytest.raises(ClassroomError, match="not valid for any class") as refused:
            room.student(bad)
        assert refused.value.code == "bad_token"


def test_join_codes_have_at_least_64_bits_and_every_draw_differs() -> None:
    assert vc.CODE_BITS >= 64
    codes = {vc.new_join_code() for _ in range(2000)}
    assert len(codes) == 2000


@pytest.mark.parametrize(
    ("why", "setup", "code_of", "name", "code"),
    [
        ("wrong code", None, lambda c: "00000-00000-00000", "Cy", "wrong_code"),
        ("malformed code", None, lambda c: "not a code!", "Cy", "wrong_code"),
        ("duplicate name", None, lambda c: c, " ada ", "name_taken"),
        ("after registration", "start", lambda c: c, "Cy", "registration_closed"),
        ("script name too long", None, lambda c: c, "<script>" * 10, "bad_text"),
    ],
)
def test_bad_joins_say_why_and_change_nothing(why: str, setup: str | None, code_of: object, name: str,
                                              code: str) -> None:  # fmt: skip
    room = _room()
    teacher, cid = _class(room)
    room.join(teacher.join_code(cid), "Ada")
    if setup == "start":
        teacher.start(cid)
        teacher.pause(cid)
    before = room.state(cid)
    with pytest.raises(ClassroomError) as refused:
        room.join(code_of(teacher.join_code(cid)), name)  # type: ignore[operator]
    assert refused.value.code == code, why
    assert str(refused.value)[0].isupper() and room.state(cid) == before
    room.close()


def test_the_join_rate_limit_is_per_address() -> None:
    t = [0.0]
    room = _room(limiter=JoinLimiter(attempts=3, window=60, clock=lambda: t[0]))
    teacher, cid = _class(room)
    for _ in range(3):
        with pytest.raises(ClassroomError, match="not right"):
            room.join("00000-00000-00000", "Guess", address="203.0.113.9")
    with pytest.raises(ClassroomError, match="Too many attempts") as limited:
        room.join(teacher.join_code(cid), "Guess", address="203.0.113.9")  # even the right code, now
    assert limited.value.code == "rate_limited" and room.state(cid).students == ()
    assert room.join(teacher.join_code(cid), "Ada", address="198.51.100.1").display_name == "Ada"  # others join
    t[0] = 61.0
    assert room.join(teacher.join_code(cid), "Guess", address="203.0.113.9").display_name == "Guess"


def test_locked_economics_and_out_of_range_settings_are_refused() -> None:
    room = _room()
    teacher, cid, (ada, _) = _trading(room)
    before = room.state(cid)
    with pytest.raises(ClassroomError, match="economics are locked"):
        teacher.change_settings(cid, starting_cash=1_000_000)
    with pytest.raises(ClassroomError, match="market"):
        teacher.change_settings(cid, market="crypto")
    with pytest.raises(ClassroomError, match="Max position"):
        teacher.change_settings(cid, max_position_pct=150)
    with pytest.raises(ClassroomError, match="Unknown setting"):
        teacher.change_settings(cid, cash=5)
    with pytest.raises(ClassroomError, match="shock of 0"):
        teacher.shock(cid, "AAPL", 0)
    with pytest.raises(ClassroomError, match="above -90"):
        teacher.shock(cid, "AAPL", -95)
    with pytest.raises(ClassroomError, match="neither a symbol nor a sector"):
        teacher.shock(cid, "Basket weaving", -10)
    with pytest.raises(ClassroomError, match="depth factor must be above 0"):
        teacher.drought(cid, "AAPL", 2)
    assert room.state(cid) == before
    teacher.change_settings(cid, max_trades_per_day=1)  # not economics: allowed while trading
    assert room.state(cid).rules.max_trades_per_day == 1
    assert ada.submit("AAPL", "buy", 1).ok
    capped = ada.submit("AAPL", "buy", 1)  # the class's new cap applies at once
    assert not capped.ok and "1" in (capped.reason or ""), capped
    room.close()


def test_a_student_reaches_only_their_own_account() -> None:
    room = _room()
    _, cid, (ada, bo) = _trading(room)
    market = room.market(cid)
    assert market is not None
    assert ada.submit("AAPL", "buy", 10).ok
    market.advance(5)
    # No desk method takes an account or a class: Ada's desk sees Ada's orders only.
    assert set(ada.orders().account) == {ada.account} and bo.orders().empty
    coid = ada.orders().client_order_id.iloc[0]
    assert not bo.cancel(coid).ok  # Bo cannot cancel Ada's order: it is not his
    with pytest.raises(ClassroomError, match="keeps portfolios private"):
        bo.peer_portfolio(ada.student_id)
    # A token of one class never opens another class, even on the same server.
    teacher2, cid2 = _class(room)
    cy = room.join(teacher2.join_code(cid2), "Cy")
    assert room.student(cy.token).class_id == cid2
    assert room.market(cid2) is None  # the second class has no market yet: nothing leaks across
    # Nothing public on a desk names an account or a class, or hands out the market (which
    # trades for anyone): a notebook with a student token has only the student's own reach.
    public = [n for n in dir(StudentDesk) if not n.startswith("_")]
    for name in public:
        member = getattr(StudentDesk, name)
        if callable(member):
            params = inspect.signature(member).parameters
            assert not {"account", "class_id", "account_id"} & set(params), name
    assert not any(isinstance(getattr(ada, n), LiveMarket) for n in public if not callable(getattr(StudentDesk, n)))
    lb = ada.leaderboard()
    assert list(lb.columns) == ["rank", "student_id", "name", "nav", "return_pct"]
    room.close()


def test_notes_required_and_phase_rules_apply_at_entry() -> None:
    room = _room()
    teacher, cid, (ada, _) = _trading(room, trade_notes_required=True)
    with pytest.raises(ClassroomError, match="note with every trade"):
        ada.submit("AAPL", "buy", 1)
    assert ada.orders().empty  # nothing was entered
    assert ada.submit("AAPL", "buy", 1, note="  earnings beat  ").ok
    assert ada.orders().note.tolist() == ["earnings beat"]
    teacher.freeze(cid)
    with pytest.raises(ClassroomError, match="has ended"):
        ada.submit("AAPL", "buy", 1, note="late")
    room.close()


def test_reset_and_removal_move_or_end_a_students_account() -> None:
    room = _room()
    teacher, cid, (ada, bo) = _trading(room)
    first = ada.account
    assert ada.submit("AAPL", "buy", 10).ok
    teacher.reset_student(cid, ada.student_id)
    assert ada.account != first and ada.orders().empty  # a fresh account with the starting cash
    assert room.market(cid).portfolio_value(ada.account) == 50_000  # type: ignore[union-attr]
    teacher.remove_student(cid, bo.student_id, "left the course")
    with pytest.raises(ClassroomError, match="removed you"):
        bo.orders()
    assert next(r for r in teacher.roster(cid).itertuples() if r.removed).name == "Bo"
    room.close()


def test_teacher_market_events_reach_the_class_market() -> None:
    room = _room()
    teacher, cid, (ada, _) = _trading(room)
    market = room.market(cid)
    assert market is not None
    market.advance(10)
    teacher.halt(cid, "AAPL", "news pending")
    refused = ada.submit("AAPL", "buy", 1)
    assert not refused.ok and "halted" in (refused.reason or "")
    teacher.resume_trading(cid, "AAPL")
    assert ada.submit("AAPL", "buy", 1).ok
    before = market.quotes(["JPM"]).mid.iloc[0]
    sector = market.instrument("JPM").sector
    assert sector
    teacher.shock(cid, sector, -10)
    market.advance(1)
    after = market.quotes(["JPM"]).mid.iloc[0]
    assert after == pytest.approx(before * 0.9, rel=0.02)
    events = room.state(cid).market_events
    assert [type(e).__name__ for e in events] == ["TradingHalted", "TradingResumed", "MarketShocked"]
    room.close()


def test_classes_accounts_and_the_clock_survive_a_restart(tmp_path: Path) -> None:
    room = _room(tmp_path)
    teacher, cid = _class(room)
    token = room.join(teacher.join_code(cid), "Ada").token
    teacher.start(cid)
    teacher.pause(cid)
    ada = room.student(token)
    market = room.market(cid)
    assert market is not None
    assert ada.submit("AAPL", "buy", 10).ok
    market.advance(20)
    teacher.shock(cid, "XOM", 5)
    teacher.set_speed(cid, 30)
    teacher.change_settings(cid, max_trades_per_day=2)  # a rule changed mid-class: an entry on the market's log
    now, fills = market.clock()["ts"], ada.fills()
    roster = teacher.roster(cid).drop(columns=["last_seen"])
    room.close()

    again = _room(tmp_path)
    state = again.state(cid)
    assert state.phase is Phase.TRADING and not state.clock_running and state.speed == 30
    m2 = again.market(cid)
    assert m2 is not None and m2.clock()["ts"] == now
    assert m2.broker.limits.max_orders_per_day == 2 and not m2.broker.limits.shorting_allowed
    desk = again.student(token)  # the browser's token still signs in after the restart
    assert desk.fills().fill_id.tolist() == fills.fill_id.tolist() and not fills.empty
    link = again.teacher(again.teacher_secret).personal_link(cid, ada.student_id)
    assert again.student(link).account == desk.account
    assert again.teacher(again.teacher_secret).roster(cid).drop(columns=["last_seen"]).equals(roster)
    again.close()
