"""Progression by hand: the level formula, XP from claims, every badge, class-wide missions for
accounts that enter later, departures, checkpoint and restore, and the batch fold."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vtrade.game.errors import GameError
from vtrade.game.events import BadgeEarned, LevelReached, MissionChanged, Status, XpAwarded
from vtrade.game.inputs import GameInput
from vtrade.game.machine import apply, decode_state, encode_state, fold, new_state
from vtrade.game.progression import BADGES, level_for, threshold
from vtrade.game.testing import (
    A,
    assign,
    changes,
    claim,
    close,
    enter,
    fill,
    h,
    leave,
    margin,
    run,
    shock,
    snap,
    start,
    status,
)

SECTORS = ("Energy", "Financials", "Health Care", "Industrials", "Information Technology")


def badges(events: list) -> list[str]:
    return [e.badge for e in events if isinstance(e, BadgeEarned)]


def test_levels_by_hand() -> None:
    assert [threshold(n) for n in range(6)] == [0, 100, 300, 600, 1000, 1500]
    assert [level_for(x) for x in (0, 99, 100, 299, 300, 599, 600, 999, 1000, 1499, 1500)] == [
        0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5,
    ]
    assert len(BADGES) >= 6


@given(st.integers(1, 10_000))
def test_level_for_inverts_threshold(n: int) -> None:
    assert level_for(threshold(n)) == n
    assert level_for(threshold(n) - 1) == n - 1


def test_a_claim_awards_xp_and_each_level_crossed_with_deterministic_ids() -> None:
    s, _ = run(new_state(), [assign(1, "first-trade", xp=650), fill(2)])
    cl = claim(3, "first-trade")
    s, events = apply(s, cl)
    assert [(type(e).__name__, e.id) for e in events] == [
        ("MissionChanged", f"{cl.id}/0"),
        ("XpAwarded", f"{cl.id}/1"),
        ("LevelReached", f"{cl.id}/2"),
        ("LevelReached", f"{cl.id}/3"),
        ("LevelReached", f"{cl.id}/4"),
        ("BadgeEarned", f"{cl.id}/5"),
    ]
    xp = events[1]
    assert isinstance(xp, XpAwarded) and (xp.amount, xp.total) == (650, 650)
    assert [e.level for e in events if isinstance(e, LevelReached)] == [1, 2, 3]
    assert badges(list(events)) == ["rising_trader"]
    p = s.players[A].progress
    assert (p.xp, p.level, p.claimed) == (650, 3, 1)


def test_three_claims_earn_the_mission_streak_and_add_up() -> None:
    s, events = run(new_state(), [
        assign(1, "first-trade"), assign(1, "first-sell"), assign(1, "maker-fill"),
        fill(2, "o1", otype="limit", liq="maker"), claim(3, "first-trade"),
        start(4, "first-sell"), start(4, "maker-fill"),
        fill(5, "o2", side="sell", otype="limit", liq="maker"), claim(6, "first-sell"), claim(6, "maker-fill"),
    ])
    assert s.players[A].progress.xp == 50 + 50 + 100
    assert [e.level for e in events if isinstance(e, LevelReached)] == [1]  # 200 XP: level 1 (300 for level 2)
    assert badges(events) == ["first_fill", "first_maker", "three_missions"]


def test_the_fill_badges() -> None:
    s, events = run(new_state(), [
        fill(1, "o1", note="why"), fill(2, "o1", note="why"), fill(3, "o2", note="a"), fill(4, "o3", note="b"),
        fill(5, "o4", note=" "), fill(6, "o5", note="c", side="sell", otype="stop", from_stop=True),
    ])
    assert badges(events) == ["first_fill", "safety_net"]  # 4 orders with notes so far: o1 o2 o3 o5
    s, events = apply(s, fill(7, "o6", note="d"))
    assert badges(list(events)) == ["note_taker"]
    s, events = apply(s, fill(8, "o7", note="e", liq="maker", otype="limit"))
    assert badges(list(events)) == ["first_maker"]
    assert s.players[A].progress.fills == 8


def test_diversified_badge() -> None:
    five = [h(f"S{i}", SECTORS[i], 0.19) for i in range(5)]
    s, events = run(new_state(), [snap(1, 1, holdings=[*five[:4], h("X", "Energy", 0.3)]), snap(2, 1, holdings=five)])
    assert badges(events) == ["diversified"]
    s, events = apply(s, snap(3, 1, holdings=five))
    assert badges(list(events)) == []  # once only


def test_shock_survivor_needs_two_closes_without_a_margin_call() -> None:
    s, events = run(new_state(), [enter(1, A), enter(1, "bo"), shock(2), close(3, 1), margin(4, "bo"), close(5, 2)])
    assert [(e.account, e.badge) for e in events if isinstance(e, BadgeEarned)] == [(A, "shock_survivor")]
    # bo's next shock is a new chance
    s, events = run(s, [shock(6), close(7, 3), close(8, 4)])
    assert [(e.account, e.badge) for e in events if isinstance(e, BadgeEarned)] == [("bo", "shock_survivor")]


def test_class_wide_missions_reach_accounts_that_enter_later() -> None:
    s, _ = run(new_state(), [enter(1, A), assign(2, "first-trade", accounts=(), due=1_000), assign(2, "first-sell",
                                                                                                    accounts=())])
    e = enter(3, "bo")
    s, events = apply(s, e)
    # In mission id order ('first-sell' < 'first-trade'), so a restored worker makes the same ids.
    assert changes(events) == [
        (None, Status.LOCKED), (None, Status.AVAILABLE), (Status.AVAILABLE, Status.ACTIVE),
    ]
    assert [x.id for x in events] == [f"{e.id}/0", f"{e.id}/1", f"{e.id}/2"]
    assert s.players["bo"].missions["first-trade"].due_ts == 1_000
    # A fill from an account the game has not seen enters it too (topics are ordered apart).
    s, _ = apply(s, fill(4, account="cy"))
    assert status(s, "first-trade", "cy") is Status.COMPLETED
    assert status(s, "first-sell", "cy") is Status.AVAILABLE


def test_an_account_that_left_stops() -> None:
    s, _ = run(new_state(), [assign(1, "first-trade"), leave(2, A)])
    s2, events = run(s, [fill(3), close(4, 1), snap(5, 1)])
    assert events == [] and status(s2, "first-trade") is Status.ACTIVE
    assert s2.players[A].progress == s.players[A].progress


def test_reassigning_moves_the_due_date_and_xp_of_an_open_mission_only() -> None:
    s, _ = run(new_state(), [assign(1, "first-trade", due=100), assign(2, "first-trade", due=200, xp=80)])
    a = s.players[A].missions["first-trade"]
    assert (a.due_ts, a.xp, a.status) == (200, 80, Status.ACTIVE)
    s, events = apply(s, fill(150))
    assert changes(events) == [(Status.ACTIVE, Status.COMPLETED)]


def a_class() -> list[GameInput]:
    """Three students over 3 sessions, with class-wide and personal missions and a shock."""
    seq: list[GameInput] = [enter(1, "s1"), enter(1, "s2"), assign(2, "first-trade", accounts=()),
                            assign(2, "survive-shock", accounts=()), assign(2, "three-sectors", accounts=("s1", "s3"),
                                                                            due=10_000)]
    for day in range(1, 4):
        t = day * 100
        for k, acc in enumerate(("s1", "s2", "s3")):
            seq.append(fill(t + k, f"{acc}-o{day}", account=acc, liq="maker" if k == 0 else "taker", otype="limit"))
            seq.append(snap(t + 50 + k, day, account=acc,
                            holdings=[h(f"S{i}", SECTORS[i], 0.2) for i in range(day + k)]))
        if day == 2:
            seq.append(shock(t + 60))
            seq.append(margin(t + 61, "s2"))
        seq.append(close(t + 90, day))
        seq.append(claim(t + 95, "first-trade", account="s1") if day == 1 else enter(t + 95, f"late{day}"))
    return seq


def test_checkpoint_and_restore_mid_class_gives_the_same_events() -> None:
    seq = a_class()
    whole, events = fold(seq, strict=True)
    half = len(seq) // 2
    first, ev1 = fold(seq[:half], strict=True)
    restored = decode_state(encode_state(first))
    assert restored == first
    final, ev2 = fold(seq[half:], restored, strict=True)
    assert final == whole and ev1 + ev2 == events
    assert encode_state(final) == encode_state(whole)
    assert status(whole, "survive-shock", "s1") is Status.COMPLETED
    assert status(whole, "survive-shock", "s2") is Status.FAILED
    assert status(whole, "three-sectors", "s3") is Status.AVAILABLE  # unlocked by the first fill, never started
    assert "three-sectors" not in whole.players["s2"].missions  # assigned to s1 and s3 only
    assert set(whole.players["late3"].missions) == {"first-trade", "survive-shock"}
    assert len({e.id for e in events}) == len(events)
    assert all(isinstance(e, (MissionChanged, XpAwarded, LevelReached, BadgeEarned)) for e in events)


def test_fold_skips_refused_inputs_as_they_were_live() -> None:
    seq = [assign(1, "first-trade"), claim(2, "first-trade"), fill(3)]
    s, _ = fold(seq)
    assert status(s, "first-trade") is Status.COMPLETED
    assert s == fold([seq[0], seq[2]])[0]
    try:
        fold(seq, strict=True)
    except GameError as err:
        assert err.code == "bad_transition"
    else:
        raise AssertionError("strict fold must raise the refusal")


def test_the_game_domain_imports_no_io_layer() -> None:
    import subprocess
    import sys

    code = (
        "import sys, vtrade.game.machine, vtrade.game.library, vtrade.game.testing\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('panel', 'redis', 'duckdb', 'bokeh')\n"
        "       or m.startswith(('vtrade.runtime', 'vtrade.ui'))]\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_an_account_entering_after_a_class_wide_due_date_gets_it_expired_at_once() -> None:
    # Found by the hypothesis property: the mission was created after the expiry pass.
    s, _ = run(new_state(), [assign(0, "first-trade", accounts=(), due=1)])
    f = fill(1, account="bo")
    s, events = apply(s, f)
    assert changes(events) == [(None, Status.AVAILABLE), (Status.AVAILABLE, Status.ACTIVE),
                               (Status.ACTIVE, Status.EXPIRED)]
    assert all(e.cause == f.id for e in events)
