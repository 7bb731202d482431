"""A class's game on the log: the game worker against a batch recomputation of its journal."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from vtrade.classroom import ClassroomError, ClassRules
from vtrade.game.errors import GameError
from vtrade.game.leaderboard import EmbeddedLeaderboards
from vtrade.runtime.class_sim import join_students
from vtrade.runtime.classroom import Classroom, StudentDesk
from vtrade.runtime.game_worker import GAME_IN, RANKED, journal, recompute

SECRET = "correct-horse-battery-staple"
# The universe replayed minute by minute: a session is an NYSE day of 391 slices.
FAST = {"step": "1min"}
SESSIONS, SLICES, ROUND = 5, 391, 39
WATCH = ("SPY", "XLK", "XLE", "AAPL", "MSFT", "JPM", "XOM", "JNJ", "PG", "AMZN")


def open_room(path: Path) -> Classroom:
    return Classroom(path, teacher_secret=SECRET, market_overrides=FAST, game_poll_s=None)


def play(room: Classroom, cid: str, students: list, rounds: int, first: int = 0) -> None:  # type: ignore[type-arg]
    """Rounds of ``ROUND`` minutes: a fifth of the class looks at the market each round (in
    turn), and every fifth round everyone claims what they completed."""
    market = room.market(cid)
    assert market is not None
    for r in range(first, first + rounds):
        for i, s in enumerate(students):
            if (i + r) % 5 == 0:
                s.look()
        market.advance(ROUND)
        game = room.game(cid)
        if r % 5 == 4:
            for s in students:
                done = s.desk.missions()
                for mid in done[done.status == "completed"].mission:
                    s.desk.claim_mission(mid)
        assert game.fold.refused == 0


def test_thirty_students_over_five_sessions_equal_a_batch_recomputation_of_the_journal(tmp_path: Path) -> None:
    room = open_room(tmp_path)
    teacher = room.teacher(SECRET)
    cid = teacher.create_class("Econ 101", ClassRules(market="universe", starting_cash=50_000))
    teacher.open_registration(cid)
    students = join_students(room, cid, 30, seed=4, universe=WATCH)
    for mid in ("first-trade", "first-sell", "note-taker", "three-sectors", "round-trip", "survive-shock"):
        teacher.assign_mission(cid, mid)
    teacher.start(cid)
    teacher.pause(cid)  # the test drives the clock itself, slice by slice
    rounds = SESSIONS * SLICES // ROUND + 2
    half = rounds // 2
    play(room, cid, students, half)
    teacher.shock(cid, "Information Technology", "-10")
    room.close()  # a restart in the middle: markets checkpoint, the game resumes from its journal

    room = open_room(tmp_path)
    teacher = room.teacher(SECRET)
    for s in students:
        s.desk = StudentDesk(room, cid, s.desk.student_id)
    play(room, cid, students, rounds - half, first=half)
    game = room.game(cid)
    assert game.fold.state.last_session is not None and game.fold.state.last_session >= SESSIONS - 1

    batch = recompute(journal(room.bus), cid, EmbeddedLeaderboards())
    assert batch.state == game.fold.state  # every mission of every student, XP, levels, badges
    for metric in RANKED:
        online = game.standings(metric, n=100)
        assert online == batch.boards.top(batch.boards_of(metric)[0], 100), metric
        assert len(online) == 30 or metric != "return"
    # The five sessions are the week of Monday 2 October 2017: that week's XP (the union of its
    # day boards, summed) is everyone's total, and its return board (best day) has everyone.
    wednesday = pd.Timestamp("2017-10-04 15:00", tz="UTC").value
    week_xp = {st.member: st.score for st in game.standings("xp", n=100, window="week", at_ns=wednesday)}
    assert week_xp == {st.member: st.score for st in game.standings("xp", n=100)}
    assert len(game.standings("return", n=100, window="week", at_ns=wednesday)) == 30
    days = [game.standings("xp", n=100, window="day", at_ns=wednesday + d * 86_400 * 10**9) for d in range(-2, 3)]
    assert sum(st.score for day in days for st in day) == sum(week_xp.values())  # Monday to Friday
    assert sum(1 for day in days if day) >= 2  # XP came on more than one day (first trade, then the shock)
    with pytest.raises(ClassroomError, match="Unknown window"):
        room.standings(cid, "xp", window="month")
    statuses = [str(a.status) for p in game.fold.state.players.values() for a in p.missions.values()]
    assert statuses.count("claimed") >= 30  # everyone traded at least once, and claimed it
    ranked = room.standings(cid, "xp", n=3)
    assert list(ranked.columns) == ["rank", "name", "score", "account"] and ranked["rank"].tolist() == [1, 2, 3]
    me = students[7].desk
    around = me.leaderboard("return", around_me=2)
    assert around.me.sum() == 1 and len(around) <= 5
    assert around.name[around.me].item() == me.display_name
    assert me.progress()["xp"] == game.progress(me.account)["xp"] > 0
    room.close()


def test_bad_game_commands_are_refused_and_change_nothing(tmp_path: Path) -> None:
    room = open_room(tmp_path)
    teacher = room.teacher(SECRET)
    cid = teacher.create_class("Econ 101", ClassRules(market="synthetic"))
    teacher.open_registration(cid)
    ada = room.student(room.join(teacher.join_code(cid), "Ada").token)
    before = len(journal(room.bus))
    with pytest.raises(GameError, match="no-such-mission"):
        teacher.assign_mission(cid, "no-such-mission")
    with pytest.raises(ClassroomError, match="no student"):
        teacher.assign_mission(cid, "first-trade", students=["s-nobody"])
    teacher.assign_mission(cid, "first-sell")
    after_assign = len(journal(room.bus))
    with pytest.raises(GameError):
        ada.claim_mission("first-sell")  # not completed
    with pytest.raises(GameError):
        ada.start_mission("first-sell")  # locked: needs first-trade
    with pytest.raises(ClassroomError, match="Unknown ranking"):
        ada.leaderboard("luck")
    assert len(journal(room.bus)) == after_assign > before
    assert ada.missions().status.tolist() == ["locked"]
    assert room.bus.partitions(GAME_IN) == 1
    room.close()


def test_on_redis_sorted_sets_a_restarted_worker_resumes_from_its_snapshot_and_agrees(
    tmp_path: Path, redis_url: str
) -> None:
    """Redis keeps the boards across the restart; the fold comes back from its snapshot (not a
    re-fold of the journal) and goes on: the standings equal the batch view's, tie for tie."""
    import secrets

    from vtrade.runtime.leaderboard_redis import RedisLeaderboards

    boards = RedisLeaderboards(redis_url, namespace=f"test-{secrets.token_hex(4)}")

    def room_on_redis() -> Classroom:
        return Classroom(tmp_path, teacher_secret=SECRET, market_overrides=FAST, game_poll_s=None, boards=boards)

    room = room_on_redis()
    teacher = room.teacher(SECRET)
    cid = teacher.create_class("Econ 102", ClassRules(market="universe", starting_cash=50_000))
    teacher.open_registration(cid)
    students = join_students(room, cid, 6, seed=9, universe=WATCH)
    for mid in ("first-trade", "first-sell", "note-taker"):
        teacher.assign_mission(cid, mid)
    teacher.start(cid)
    teacher.pause(cid)
    play(room, cid, students, 10)
    snapshot_at = room.game(cid)._next
    room.close()

    room = room_on_redis()
    game = room.game(cid)
    assert game._next == snapshot_at  # resumed from the snapshot, nothing re-folded
    for s in students:
        s.desk = StudentDesk(room, cid, s.desk.student_id)
    play(room, cid, students, 12, first=10)
    batch = recompute(journal(room.bus), cid, EmbeddedLeaderboards())
    assert batch.state == game.fold.state
    for metric in RANKED:
        assert game.standings(metric, n=10) == batch.boards.top(batch.boards_of(metric)[0], 10), metric
    teacher = room.teacher(SECRET)
    teacher.freeze(cid)
    frozen = game.standings("return", n=10)
    room.market(cid).advance(60)  # type: ignore[union-attr]
    room.game(cid)
    assert game.standings("return", n=10) == frozen  # a frozen class's standings stay
    room.close()
