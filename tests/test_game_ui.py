"""The game on the classroom's pages without a browser: the pure renderers (escaping
included) and the page states against a real class (the desks decide, the views show)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from vtrade.classroom import ClassRules
from vtrade.game.events import BadgeEarned, LevelReached, MissionChanged, Status, XpAwarded
from vtrade.runtime.classroom import Classroom, TeacherDesk
from vtrade.ui.classroom import TeacherState
from vtrade.ui.game import (
    FORMULA,
    ProjectorGame,
    StudentGame,
    TeacherGame,
    fmt_score,
    parse_due,
    render_missions,
    render_progress,
    render_projector_board,
    render_standings,
    render_toasts,
    toast_text,
)

SECRET = "correct-horse-battery-staple"
XSS = "<img src=x onerror=alert(1)>"


def missions(*rows: dict) -> pd.DataFrame:  # type: ignore[type-arg]
    base = {"summary": "Do it.", "xp": 50, "due": pd.NaT, "needs": ""}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_missions_show_status_words_and_offer_only_the_actions_the_domain_takes() -> None:
    df = missions({"mission": "a", "title": "A", "status": "available"},
                  {"mission": "c", "title": "C", "status": "completed"},
                  {"mission": "l", "title": "L", "status": "locked", "needs": "a"},
                  {"mission": "x", "title": "X", "status": "expired"})  # fmt: skip
    out = render_missions(df, {"a": "Alpha"})
    for word in ("Ready to start", "Completed", "Locked", "Expired"):  # a word, not only a colour
        assert word in out
    assert "data-action='start/a'" in out and "data-action='claim/c'" in out
    assert out.count("<button") == 2  # nothing to press on a locked or expired mission
    assert "Needs: Alpha" in out
    assert out.index("data-mission='c'") < out.index("data-mission='a'") < out.index("data-mission='x'")
    assert "No missions yet" in render_missions(pd.DataFrame(), {})


def test_everything_typed_is_escaped() -> None:
    df = missions({"mission": "m", "title": XSS, "status": "completed", "summary": XSS})
    out = render_missions(df, {}, {"m": (False, XSS)})
    assert "<img" not in out and out.count("&lt;img") == 4  # title, button label, summary, note
    board = pd.DataFrame({"rank": [1], "name": [XSS], "score": [0.5], "me": [True]})
    for html_ in (render_standings(board, board, "composite"), render_projector_board(board, "return"),
                  render_toasts([("e", toast_text(BadgeEarned(1, "e", "a", "c", "x", XSS)) or "")])):  # fmt: skip
        assert "<img" not in html_ and "&lt;img" in html_
    assert "<img" not in render_progress({"xp": 0, "level": 0, "badges": [XSS]})


def test_standings_say_where_i_am_and_show_the_formula() -> None:
    top = pd.DataFrame({"rank": range(1, 11), "name": [f"S{i}" for i in range(10)], "score": [1.0] * 10,
                        "me": [False] * 10})  # fmt: skip
    around = pd.DataFrame({"rank": [11, 12, 13], "name": ["S10", "Me", "S12"], "score": [0.5, 0.4, 0.3],
                           "me": [False, True, False]})  # fmt: skip
    out = render_standings(top, around, "sharpe")
    assert "You are <b>#12</b> on Sharpe" in out and "Around you" in out and "(you)" in out
    assert "<details class='vt-formula' " in out  # folded away unless the composite is shown
    out = render_standings(top, around.iloc[:0], "composite")
    assert "You are not ranked on Composite yet" in out and "<details class='vt-formula' open" in out
    assert "composite = total return - 0.5 * |max drawdown|" in out and "{" not in FORMULA  # gates filled in
    assert "Nobody is ranked" in render_standings(pd.DataFrame(), pd.DataFrame(), "xp")


def test_scores_and_toasts_read_as_words() -> None:
    assert fmt_score("return", -0.015) == "−1.50%" and fmt_score("composite", 0.0421) == "+0.042"
    assert fmt_score("max_drawdown", -0.1) == "−10.00%" and fmt_score("sharpe", 1.234) == "1.23"
    done = MissionChanged(1, "i/0", "a", "i", "m", Status.ACTIVE, Status.COMPLETED, "You completed 'M'.")
    assert "Mission complete" in (toast_text(done) or "") and "'M'." not in (toast_text(done) or "")
    assert "Level 2 reached" in (toast_text(LevelReached(1, "i/1", "a", "i", 2, 300)) or "")
    assert toast_text(XpAwarded(1, "i/2", "a", "i", "m", 50, 50)) is None  # the level and badges say it
    assert "class='vt-toast'" not in render_toasts([])


def test_due_dates_as_typed() -> None:
    now = pd.Timestamp("2024-03-01 14:00", tz="UTC")
    assert parse_due("+90 min", now) == pd.Timestamp("2024-03-01 15:30", tz="UTC").value
    assert parse_due("2024-03-08T16:00Z", None) == pd.Timestamp("2024-03-08 16:00", tz="UTC").value
    with pytest.raises(ValueError, match="market has not started"):
        parse_due("+1 day", None)


def _class() -> tuple[Classroom, TeacherDesk, str]:
    room = Classroom(teacher_secret=SECRET, market_overrides={"burn_in": 20_000}, game_poll_s=None)
    teacher = room.teacher(SECRET)
    cid = teacher.create_class("Econ", ClassRules(market="synthetic"))
    teacher.open_registration(cid)
    return room, teacher, cid


def test_a_student_completes_claims_and_sees_only_their_own_achievements(eventually: Callable[..., None]) -> None:
    room, teacher, cid = _class()
    try:
        ada = room.student(room.join(teacher.join_code(cid), "Ada").token)
        bo = room.student(room.join(teacher.join_code(cid), XSS).token)
        state = TeacherState(room, teacher)
        tgame = TeacherGame(state)
        assert "First trade (50 XP)" in tgame.catalog
        tgame.assign("first-trade", "", "", [])
        assert state.messages["missions"] == (True, "Assigned first-trade to everyone")
        tgame.assign("first-sell", "soon", "", [])  # the page's parse: its sentence, nothing assigned
        assert state.messages["missions"][0] is False and "not understood" in state.messages["missions"][1]
        tgame.assign("first-sell", "", "lots", [])
        assert "not a whole number" in state.messages["missions"][1]
        assert ada.missions().mission.tolist() == ["first-trade"]
        now = {"t": 0.0}
        mine, theirs = StudentGame(ada, clock=lambda: now["t"]), StudentGame(bo, clock=lambda: now["t"])
        assert mine.missions.status.tolist() == ["active"]  # first-trade starts by itself
        teacher.start(cid)
        assert ada.submit("AAPL", "buy", 10).ok

        def completed() -> bool:
            room.game(cid)  # this room's worker has no thread of its own: poll it
            mine.refresh()
            theirs.refresh()
            return bool((mine.missions.status == "completed").any())

        eventually(completed, 60, "the fill to complete the mission")
        texts = " ".join(t for _, t in mine.toasts)
        assert "Mission complete" in texts and "Badge earned: First fill" in texts
        theirs.refresh()
        assert theirs.toasts == []  # Ada's achievements are Ada's
        shown = len(mine.toasts)
        mine.refresh()
        assert len(mine.toasts) == shown  # once per event
        mine.act("claim/first-trade")
        assert mine.notes["first-trade"][0] and mine.progress["xp"] == 50
        mine.act("claim/first-trade")  # again: the desk's sentence, next to the mission
        assert mine.notes["first-trade"] == (False, "You already claimed 'First trade'")
        mine.act("start/first-trade")
        assert mine.notes["first-trade"][0] is False and "cannot be started" in mine.notes["first-trade"][1]
        now["t"] = 1000.0  # toasts leave after a while
        mine.refresh()
        assert mine.toasts == []
        tgame.refresh()
        row = tgame.progress.set_index("name").loc["Ada"]
        assert (row.xp, row.claimed, row.assigned) == (50, 1, 1)
        proj = ProjectorGame(room, cid)
        assert proj.metric == "composite" and proj.shown in ("composite", "return")
    finally:
        room.close()

