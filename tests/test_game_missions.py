"""Every mission of the library, by hand: completion (at exactly the input that completes it),
a near miss, failure where it has one, expiry at a due date and at a session deadline in
simulated time, prerequisites, teacher overrides, and idempotent redelivery of every input."""

from __future__ import annotations

import random
from dataclasses import dataclass

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vtrade.game.errors import GameError
from vtrade.game.events import MissionChanged, Status, XpAwarded
from vtrade.game.inputs import FillSeen, GameInput, MissionAssigned, MissionsDefined
from vtrade.game.library import BY_ID, LIBRARY
from vtrade.game.machine import GameState, apply, decode_state, encode_state, fold, new_state
from vtrade.game.missions import load_missions
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
    override,
    run,
    shock,
    snap,
    start,
    status,
    tick,
)

SECTORS = ("Energy", "Financials", "Health Care", "Industrials", "Information Technology", "Utilities")


def spread(n: int, weight: float) -> list:
    return [h(f"S{i}", SECTORS[i], weight) for i in range(n)]


@dataclass
class Scenario:
    """Inputs fed once the mission is ACTIVE (ts from 10 on): ``complete`` completes it at
    exactly index ``at``; ``near`` must leave it ACTIVE; ``fail`` fails it at its last input."""

    complete: list[GameInput]
    at: int
    near: list[GameInput]
    fail: list[GameInput] | None = None


def scenarios() -> dict[str, Scenario]:
    # Built fresh per test: each input gets a fresh id.
    return {
        "first-trade": Scenario([snap(10, 1), fill(11)], 1, [snap(10, 1), close(11, 1)]),
        "first-sell": Scenario([fill(10, "o1"), fill(11, "o2", side="sell")], 1, [fill(10, "o1")]),
        "maker-fill": Scenario(
            [fill(10, "o1", otype="limit", liq="taker"), fill(11, "o2", otype="limit", liq="maker")],
            1,
            [fill(10, "o1", otype="limit", liq="taker"), fill(11, "o2", otype="stop_limit", liq="maker")],
        ),
        "note-taker": Scenario(
            [fill(10, "o1", note="breakout"), fill(11, "o1", note="breakout"), fill(12, "o2", note="earnings"),
             fill(13, "o3"), fill(14, "o4", note="rebalance"), fill(15, "o5", note="hedge"),
             fill(16, "o6", note="trim")],
            6,  # o1 counts once though it filled twice, o3 has no note: o1 o2 o4 o5 o6
            [fill(10, "o1", note="a"), fill(11, "o2", note="b"), fill(12, "o3", note="c"), fill(13, "o4", note="d"),
             fill(14, "o5", note="   ")],
        ),
        "crypto-trade": Scenario(
            [fill(10, "o1", kind="stock"), fill(11, "o2", kind="crypto", symbol="BTC-USD", qty=0.01)],
            1,
            [fill(10, "o1", kind=""), fill(11, "o2", kind="etf", symbol="XLK")],
        ),
        "etf-buy": Scenario(
            [fill(10, "o1", side="sell", kind="etf", symbol="XLE"), fill(11, "o2", kind="etf", symbol="XLE")],
            1,
            [fill(10, "o1", side="sell", kind="etf", symbol="XLE"), fill(11, "o2", kind="stock")],
        ),
        "stop-loss": Scenario(
            [fill(10, "o1", side="sell", otype="stop"),
             fill(11, "o2", side="sell", otype="trailing_stop", from_stop=True),
             fill(12, "o3", side="sell", otype="stop_limit", from_stop=True)],
            2,
            [fill(10, "o1", side="buy", otype="stop", from_stop=True), fill(11, "o2", side="sell", otype="limit")],
        ),
        "trailing-stop": Scenario(
            [fill(10, "o1", side="sell", otype="stop", from_stop=True),
             fill(11, "o2", side="sell", otype="trailing_stop", from_stop=True)],
            1,
            [fill(10, "o1", side="sell", otype="stop", from_stop=True), fill(11, "o2", otype="trailing_stop")],
        ),
        "round-trip": Scenario(
            # Buys 10 @ 100 and 10 @ 110: average 105. Selling MSFT (never bought) is no round trip;
            # 5 @ 105 is a profit of 0 (not a profit); 5 @ 106 is a profit of 5.
            [fill(10, "o1", qty=10, price=100), fill(11, "o2", qty=10, price=110),
             fill(12, "o3", side="sell", symbol="MSFT", qty=5, price=500),
             fill(13, "o4", side="sell", qty=5, price=105),
             fill(14, "o5", side="sell", qty=5, price=106)],
            4,
            [fill(10, "o1", qty=10, price=100), fill(11, "o2", side="sell", qty=10, price=99.99)],
        ),
        "big-order": Scenario(
            # o1: 1000 at 6 bps (over 5); o2: 600 at 4 + 400 at 5 = 4.4 bps on 1000, counted at its 2nd fill.
            [fill(10, "o0", side="sell", qty=2000, slip=0.0), fill(11, "o1", qty=1000, slip=6.0),
             fill(12, "o2", qty=600, slip=4.0), fill(13, "o2", qty=400, slip=5.0)],
            3,
            [fill(10, "o1", qty=999, slip=0.0), fill(11, "o2", qty=500, slip=5.0), fill(12, "o3", qty=1000, slip=5.5)],
        ),
        "three-sectors": Scenario(
            [snap(10, 1, holdings=spread(2, 0.3)), snap(11, 1, holdings=spread(3, 0.3))],
            1,
            [snap(10, 1, holdings=[*spread(2, 0.3), h("X", "Utilities", -0.1)])],
        ),
        "diversified": Scenario(
            [snap(10, 1, holdings=[*spread(4, 0.15), h("BIG", "Utilities", 0.25)]),
             snap(11, 1, holdings=spread(5, 0.1))],
            1,  # 5 x 10 % = 50 % invested, nothing above 20 %
            [snap(10, 1, holdings=spread(5, 0.09)), snap(11, 1, holdings=spread(4, 0.2))],
        ),
        "cash-buffer": Scenario(
            [snap(10, 1, holdings=spread(3, 0.25)), close(11, 1), snap(12, 2, holdings=spread(3, 0.3)), close(13, 2),
             snap(14, 3, holdings=spread(3, 0.2), cash=40_000.0), close(15, 3)],
            5,
            # held, held, broken (cash 5 %), held, held: a streak of 2 at the end; then a snapshot of
            # session 5 does not count at the close of session 6.
            [snap(10, 1, holdings=spread(3, 0.25)), close(11, 1), snap(12, 2, holdings=spread(3, 0.25)), close(13, 2),
             snap(14, 3, holdings=spread(3, 0.25), cash=5_000.0), close(15, 3),
             snap(16, 4, holdings=spread(3, 0.25)), close(17, 4), snap(18, 5, holdings=spread(3, 0.25)), close(19, 5),
             close(20, 6)],
        ),
        "beta-band": Scenario(
            [x for i, b in enumerate((1.0, 0.8, 1.2, 0.95, 1.1), start=1)
             for x in (snap(10 * i, i, beta=b), close(10 * i + 1, i))],
            9,
            [x for i, b in enumerate((1.0, 1.0, 1.0, 1.0, None, 1.0), start=1)
             for x in (snap(10 * i, i, beta=b), close(10 * i + 1, i))],
        ),
        "beat-spy": Scenario(
            # Baseline at the first snapshot: total 10 %, SPY 5 %. At the 5th close: 1.232/1.10 - 1 = 12 %
            # against 1.134/1.05 - 1 = 8 %.
            [snap(10, 1, tr=0.10, bench=0.05), close(11, 1),
             snap(20, 2, nav=101_000.0, tr=0.11, bench=0.06), close(21, 2),
             close(31, 3), close(41, 4), snap(50, 5, nav=102_000.0, tr=0.232, bench=0.134), close(51, 5)],
            7,
            # A tie is no win: 1.21/1.10 - 1 = 10 % against 1.155/1.05 - 1 = 10 % (and only 4 closes).
            [snap(10, 1, tr=0.10, bench=0.05), close(11, 1), close(21, 2), close(31, 3),
             snap(40, 4, tr=0.21, bench=0.155), close(41, 4)],
            # Peak 104,000; 98,800 is a drawdown of exactly 5 % (not beyond); 98,799 is.
            fail=[snap(10, 1, nav=104_000.0, tr=0.0, bench=0.0), snap(11, 1, nav=98_800.0), close(12, 1),
                  snap(13, 2, nav=98_799.0)],
        ),
        "hedge": Scenario(
            [snap(10, 1, beta=0.2, holdings=[*spread(3, 0.2), h("XLK", "Information Technology", -0.3, "etf")])],
            0,
            [snap(10, 1, beta=0.2, holdings=spread(3, 0.2)),
             snap(11, 1, beta=0.35, holdings=[*spread(3, 0.2), h("XLK", "Information Technology", -0.3, "etf")]),
             snap(12, 1, beta=0.2, holdings=[*spread(2, 0.2), h("XLK", "Information Technology", -0.3, "etf")]),
             snap(13, 1, beta=0.2, holdings=[*spread(3, 0.2), h("NVDA", "Information Technology", -0.3)]),
             snap(14, 1, beta=None, holdings=[*spread(3, 0.2), h("XLK", "Information Technology", -0.3, "etf")])],
        ),
        "survive-shock": Scenario(
            [close(10, 1), shock(11), close(12, 2), close(13, 3)],
            3,
            [close(10, 1), close(11, 2), shock(12), close(13, 3)],
            fail=[shock(10), close(11, 1), margin(12)],
        ),
    }


def test_the_library_has_15_missions_or_more_with_a_scenario_each() -> None:
    assert len(LIBRARY) >= 15
    assert set(scenarios()) == set(BY_ID)
    for m in LIBRARY:
        assert m.title and m.summary.endswith(".") and m.xp > 0


def activated(mission: str, *, due: int | None = None) -> tuple[GameState, list[GameInput]]:
    """The mission assigned to A alone and ACTIVE (unlocked by the teacher if it has prerequisites)."""
    inputs: list[GameInput] = [assign(1, mission, due=due)]
    s, _ = run(new_state(), inputs)
    if status(s, mission) is Status.LOCKED:
        inputs.append(override(2, mission, "unlock"))
        s, _ = apply(s, inputs[-1])
    if status(s, mission) is Status.AVAILABLE:
        inputs.append(start(3, mission))
        s, _ = apply(s, inputs[-1])
    assert status(s, mission) is Status.ACTIVE
    return s, inputs


IDS = sorted(BY_ID)


@pytest.mark.parametrize("mission", IDS)
def test_completes_at_exactly_the_input_that_meets_its_goal(mission: str) -> None:
    sc = scenarios()[mission]
    s, _ = activated(mission)
    for i, inp in enumerate(sc.complete):
        s, events = apply(s, inp)
        expected = Status.COMPLETED if i >= sc.at else Status.ACTIVE
        assert status(s, mission) is expected, f"after input {i}"
        if i == sc.at:
            (done,) = [e for e in events if isinstance(e, MissionChanged) and e.mission_id == mission]
            assert (done.before, done.after, done.cause) == (Status.ACTIVE, Status.COMPLETED, inp.id)
            assert BY_ID[mission].title in done.reason
    s, events = apply(s, claim(100, mission))
    assert status(s, mission) is Status.CLAIMED
    (xp,) = [e for e in events if isinstance(e, XpAwarded)]
    assert xp.amount == BY_ID[mission].xp == s.players[A].progress.xp


@pytest.mark.parametrize("mission", IDS)
def test_a_near_miss_leaves_it_active(mission: str) -> None:
    s, _ = activated(mission)
    s, _ = run(s, scenarios()[mission].near)
    assert status(s, mission) is Status.ACTIVE


@pytest.mark.parametrize("mission", [m for m in IDS if not BY_ID[m].auto_start])
def test_what_happened_before_it_started_does_not_count(mission: str) -> None:
    s, _ = run(new_state(), [assign(1, mission), override(2, mission, "unlock")] if BY_ID[mission].prerequisites
               else [assign(1, mission)])
    s, _ = run(s, scenarios()[mission].complete)
    assert status(s, mission) is Status.AVAILABLE


@pytest.mark.parametrize("mission", [m for m in IDS if scenarios()[m].fail is not None])
def test_a_breaking_condition_fails_it(mission: str) -> None:
    fail = scenarios()[mission].fail
    assert fail is not None
    s, _ = activated(mission)
    s, _ = run(s, fail[:-1])
    assert status(s, mission) is Status.ACTIVE
    s, events = apply(s, fail[-1])
    assert changes(events, mission) == [(Status.ACTIVE, Status.FAILED)]
    with pytest.raises(GameError, match="not completed yet: it is failed"):
        apply(s, claim(200, mission))


def test_a_margin_call_in_a_snapshot_fails_the_shock_mission_too() -> None:
    s, _ = activated("survive-shock")
    s, events = run(s, [shock(10), snap(11, 1, margin=True)])
    assert status(s, "survive-shock") is Status.FAILED
    (failed,) = [e for e in events if isinstance(e, MissionChanged)]
    assert failed.reason == "'Weather the storm' failed: you got a margin call"


@pytest.mark.parametrize("mission", IDS)
def test_expires_when_its_due_date_passes_in_simulated_time(mission: str) -> None:
    s, _ = activated(mission, due=1_000)
    s, events = apply(s, tick(999))
    assert events == () and status(s, mission) is Status.ACTIVE
    s, events = apply(s, tick(1_000))
    assert changes(events, mission) == [(Status.ACTIVE, Status.EXPIRED)]
    assert "due date passed" in events[0].reason  # type: ignore[attr-defined]
    late = [msgspec.structs.replace(x, ts=x.ts + 2_000) for x in scenarios()[mission].complete]
    s, _ = run(s, late)
    assert status(s, mission) is Status.EXPIRED


@pytest.mark.parametrize("mission", IDS)
def test_any_input_past_the_due_date_expires_it_before_it_counts(mission: str) -> None:
    s, _ = activated(mission, due=1_000)
    sc = scenarios()[mission]
    s, _ = run(s, sc.complete[: sc.at])
    last = sc.complete[sc.at]
    s, events = apply(s, msgspec.structs.replace(last, ts=1_000))
    assert changes(events, mission)[0] == (Status.ACTIVE, Status.EXPIRED)
    assert status(s, mission) is Status.EXPIRED


@pytest.mark.parametrize("mission", [m for m in IDS if BY_ID[m].within_sessions])
def test_expires_when_its_sessions_run_out(mission: str) -> None:
    n = BY_ID[mission].within_sessions
    assert n is not None
    s, _ = activated(mission)
    s, _ = run(s, [close(10 + i, i) for i in range(1, n)])
    assert status(s, mission) is Status.ACTIVE
    s, events = apply(s, close(100, n))
    assert changes(events, mission) == [(Status.ACTIVE, Status.EXPIRED)]
    assert f"{n} session closes passed" in events[0].reason  # type: ignore[attr-defined]


def test_beta_band_needs_five_in_a_row_within_ten_sessions() -> None:
    # 6 closes out of band then in band: the streak is 4 at the 10th close, when it expires.
    s, _ = activated("beta-band")
    betas = [0.5] * 6 + [1.0] * 5
    for i, b in enumerate(betas[:9], start=1):
        s, _ = run(s, [snap(10 * i, i, beta=b), close(10 * i + 1, i)])
    assert s.players[A].missions["beta-band"].streak == 3
    s, events = run(s, [snap(100, 10, beta=1.0), close(101, 10)])
    assert changes(events, "beta-band") == [(Status.ACTIVE, Status.EXPIRED)]


def closure(mission: str) -> list[str]:
    """The mission's prerequisites, transitively, each before what needs it."""
    out: list[str] = []

    def visit(m: str) -> None:
        for p in BY_ID[m].prerequisites:
            visit(p)
            if p not in out:
                out.append(p)

    visit(mission)
    return out


@pytest.mark.parametrize("mission", IDS)
def test_locked_until_its_prerequisites_are_completed(mission: str) -> None:
    needs = closure(mission)
    s, _ = run(new_state(), [assign(1, m) for m in [*needs, mission]])
    if not needs:
        assert status(s, mission) in (Status.AVAILABLE, Status.ACTIVE)
        return
    assert status(s, mission) is Status.LOCKED
    with pytest.raises(GameError, match="before starting") as err:
        apply(s, start(2, mission))
    assert err.value.code == "locked"
    for i, p in enumerate(needs):
        assert status(s, mission) is Status.LOCKED
        if status(s, p) is not Status.COMPLETED:  # a teacher completes each prerequisite in turn
            s, _ = apply(s, override(10 + i, p, "complete"))
    after = Status.ACTIVE if BY_ID[mission].auto_start else Status.AVAILABLE
    assert status(s, mission) is after


def test_a_claimed_prerequisite_counts_and_an_unassigned_one_locks() -> None:
    s, _ = run(new_state(), [assign(1, "first-trade"), assign(1, "first-sell"), fill(2), claim(3, "first-trade")])
    assert status(s, "first-sell") is Status.AVAILABLE
    s, _ = run(new_state(), [assign(1, "first-sell")])
    assert status(s, "first-sell") is Status.LOCKED  # first-trade is not assigned: only the teacher unlocks it


@pytest.mark.parametrize("mission", IDS)
def test_teacher_overrides(mission: str) -> None:
    sc = scenarios()[mission]
    s, _ = activated(mission)
    s, events = apply(s, override(5, mission, "fail", reason="copied a classmate"))
    assert changes(events) == [(Status.ACTIVE, Status.FAILED)]
    assert "copied a classmate" in events[0].reason  # type: ignore[attr-defined]
    with pytest.raises(GameError, match="Cannot fail"):
        apply(s, override(6, mission, "fail"))
    s, events = apply(s, override(7, mission, "reopen"))
    assert changes(events) == [(Status.FAILED, Status.ACTIVE)]
    a = s.players[A].missions[mission]
    assert (a.sessions, a.streak, a.counted, a.lots, a.activated_ts) == (0, 0, (), (), 7)
    s, _ = run(s, sc.complete)
    assert status(s, mission) is Status.COMPLETED
    with pytest.raises(GameError, match="Cannot complete"):
        apply(s, override(200, mission, "complete"))
    s, _ = apply(s, claim(201, mission))
    with pytest.raises(GameError, match="Cannot reopen"):
        apply(s, override(202, mission, "reopen"))
    # And a complete by the teacher from the start, for a fresh account.
    s2, _ = run(new_state(), [assign(1, mission, accounts=("bo",)), override(2, mission, "complete", account="bo")])
    assert status(s2, mission, "bo") is Status.COMPLETED


def test_reopen_of_an_expired_mission_drops_the_past_due_date_and_keeps_a_future_one() -> None:
    s, _ = activated("first-sell", due=100)
    s, _ = run(s, [tick(100), override(101, "first-sell", "reopen")])
    assert status(s, "first-sell") is Status.ACTIVE and s.players[A].missions["first-sell"].due_ts is None
    s, _ = activated("first-sell", due=500)
    s, _ = run(s, [override(50, "first-sell", "fail"), override(60, "first-sell", "reopen")])
    assert s.players[A].missions["first-sell"].due_ts == 500


def test_unlock_only_a_locked_mission() -> None:
    s, _ = run(new_state(), [assign(1, "first-sell")])
    s, events = apply(s, override(2, "first-sell", "unlock"))
    assert changes(events) == [(Status.LOCKED, Status.AVAILABLE)]
    with pytest.raises(GameError, match="Cannot unlock"):
        apply(s, override(3, "first-sell", "unlock"))


# ---------------------------------------------------------------------------- redelivery
def full_sequence(mission: str) -> list[GameInput]:
    sc = scenarios()[mission]
    _, setup = activated(mission)
    tail: list[GameInput] = [claim(100, mission)]
    extra = sc.fail if sc.fail is not None else sc.near
    # A second account runs into the near miss or the failure, so those inputs are redelivered too.
    other = [msgspec.structs.replace(x, account="bo") if hasattr(x, "account") else x for x in extra]
    bo = [assign(4, mission, accounts=("bo",)), override(5, mission, "unlock", account="bo")] \
        if BY_ID[mission].prerequisites else [assign(4, mission, accounts=("bo",))]
    if not BY_ID[mission].auto_start:
        bo.append(start(6, mission, account="bo"))
    shifted = [msgspec.structs.replace(x, ts=x.ts + 1000) for x in other]
    shifted = [msgspec.structs.replace(x, session=x.session + 100) if hasattr(x, "session") else x for x in shifted]
    return [*setup, *bo, *sc.complete, *tail, *shifted]


@pytest.mark.parametrize("mission", IDS)
def test_every_input_delivered_twice_or_redelivered_later_changes_nothing(mission: str) -> None:
    seq = full_sequence(mission)
    once, events = fold(seq, strict=True)
    twice, events2 = fold([x for x in seq for _ in (0, 1)], strict=True)
    assert twice == once and events2 == events
    rng = random.Random(mission)
    for _ in range(5):
        shuffled = list(seq)
        for x in seq:  # a redelivery comes later than the original, anywhere later
            first = shuffled.index(x)
            shuffled.insert(rng.randint(first + 1, len(shuffled)), x)
        again, events3 = fold(shuffled, strict=True)
        assert again == once and events3 == events
    assert decode_state(encode_state(once)) == once


# ---------------------------------------------------------------------------- refusals
def unchanged(state: GameState, inp: GameInput, match: str, code: str) -> None:
    before = encode_state(state)
    with pytest.raises(GameError, match=match) as err:
        apply(state, inp)
    assert err.value.code == code
    assert encode_state(state) == before


def test_refusals_are_clear_and_change_nothing() -> None:
    s, _ = run(new_state(), [assign(1, "first-trade"), assign(1, "first-sell"), enter(1, "bo")])
    unchanged(s, assign(2, "no-such-mission"), "no mission 'no-such-mission'", "unknown_mission")
    unchanged(s, start(2, "no-such-mission"), "no mission", "unknown_mission")
    unchanged(s, claim(2, "maker-fill"), "not assigned to you", "not_assigned")
    unchanged(s, claim(2, "first-trade"), "not completed yet: it is active", "bad_transition")
    unchanged(s, start(2, "first-trade"), "already started", "bad_transition")
    unchanged(s, start(2, "first-sell"), "Complete 'First trade' before starting 'First sell'", "locked")
    unchanged(s, claim(2, "first-trade", account="nobody"), "No student", "unknown_account")
    unchanged(s, assign(5, "maker-fill", due=5), "already past: it is 1970-01-01 00:00 UTC", "bad_assignment")
    unchanged(s, assign(5, "maker-fill", xp=-1), "XP must be 0 or more", "bad_assignment")
    unchanged(s, fill(5, qty=float("nan")), "quantity must be a finite number", "bad_input")
    unchanged(s, fill(5, qty=0.0), "quantity must be above 0", "bad_input")
    unchanged(s, MissionsDefined(ts=5, id="def-1", toml="[[mission]]\nid = 'x'\ntitle = 'X'\nsummary = 'x.'\n"
                                 "xp = 10\ngoal = { kind = 'holdings', max_weight = 1.5 }"),
              "field goal.max_weight: must be above 0 and at most 1", "bad_mission")
    s, _ = run(s, [fill(3), claim(4, "first-trade")])
    unchanged(s, claim(5, "first-trade"), "already claimed", "bad_transition")
    s, _ = apply(s, leave(6, A))
    unchanged(s, start(7, "first-sell"), "has left", "account_left")


def test_bad_toml_names_the_field_and_registers_nothing() -> None:
    good = "[[mission]]\nid = 'mine'\ntitle = 'Mine'\nsummary = 'Do mine.'\nxp = 10\ngoal = { kind = 'fills' }\n"
    cases = {
        "[[mission]\nid = 'x'": "does not parse",
        good + "[[mission]]\nid = 'mine2'\ntitle = 'M'\nsummary = 'm.'\nxp = 10\nfor_sessions = 2\n"
        "goal = { kind = 'fills' }": "mission 'mine2': field for_sessions: applies to holdings",
        good + "[[mission]]\nid = 'm3'\ntitle = 'M'\nsummary = 'm.'\nxp = 10\ngoal = { kind = 'lottery' }":
            "mission #2 \\('m3'\\): field goal.kind: Invalid value 'lottery'",
        good.replace("xp = 10", "xp = 10\nprerequisites = ['nope']"): "field prerequisites: no mission 'nope'",
        good.replace("xp = 10", "xp = 10\nprerequisites = ['m4']")
        + "[[mission]]\nid = 'm4'\ntitle = 'M'\nsummary = 'm.'\nxp = 1\nprerequisites = ['mine']\n"
        "goal = { kind = 'fills' }": "form a cycle",
        good.replace("'mine'", "'first-trade'"): "already defined",
        good.replace("xp = 10", "xp = 10\nwithin_sessions = 0"): "field within_sessions: must be at least 1",
        good.replace("kind = 'fills'", "kind = 'beta_band', low = 1.2, high = 0.8"): "field goal.low",
        good + "[teacher]\nname = 'x'": "unknown top-level key 'teacher'",
    }
    s = new_state()
    for text, message in cases.items():
        unchanged(s, MissionsDefined(ts=1, id="d", toml=text), message, "bad_mission" if "already" not in message
                  else "duplicate_mission")
    assert set(s.missions) == set(BY_ID)


def test_a_teachers_own_mission_travels_the_log_and_the_checkpoint() -> None:
    toml = (
        "[[mission]]\nid = 'energy'\ntitle = 'Energy bet'\nsummary = 'Hold 2 sectors and keep beta under 1.5.'\n"
        "xp = 70\nprerequisites = ['first-trade']\ngoal = { kind = 'holdings', min_sectors = 2 }\n"
    )
    s, _ = run(new_state(), [MissionsDefined(ts=1, id="def-1", toml=toml), assign(2, "first-trade"),
                             assign(2, "energy", xp=90), fill(3), start(4, "energy")])
    s = decode_state(encode_state(s))
    s, _ = run(s, [snap(5, 1, holdings=spread(2, 0.4)), claim(6, "energy")])
    assert status(s, "energy") is Status.CLAIMED and s.players[A].progress.xp == 90
    with pytest.raises(GameError, match="'energy' is already defined"):
        load_missions(toml, s.missions)


# ---------------------------------------------------------------------------- properties
ACCOUNTS = st.sampled_from(["ada", "bo"])
MISSIONS = st.sampled_from([*IDS, "nope"])
TS = st.integers(0, 60)


@st.composite
def inputs(draw: st.DrawFn) -> GameInput:
    kind = draw(st.integers(0, 11))
    ts, acc, mid = draw(TS), draw(ACCOUNTS), draw(MISSIONS)
    w = draw(st.floats(-0.5, 0.6))
    b = draw(st.one_of(st.none(), st.floats(-1, 2)))
    match kind:
        case 0 | 1:
            return fill(ts, draw(st.sampled_from(["o1", "o2", "o3"])), account=acc,
                        side=draw(st.sampled_from(["buy", "sell"])), qty=draw(st.floats(0.5, 2000)),
                        liq=draw(st.sampled_from(["maker", "taker"])), slip=draw(st.floats(-10, 10)),
                        otype=draw(st.sampled_from(["market", "limit", "stop", "stop_limit", "trailing_stop"])),
                        from_stop=draw(st.booleans()), note=draw(st.sampled_from(["", "why"])),
                        kind=draw(st.sampled_from(["stock", "etf", "crypto", ""])))
        case 2 | 3:
            n = draw(st.integers(0, 6))
            return snap(ts, draw(st.integers(0, 5)), account=acc, beta=b, bench=b, tr=draw(st.floats(-0.5, 0.5)),
                        nav=draw(st.floats(1_000, 200_000)), margin=draw(st.booleans()),
                        holdings=[h(f"S{i}", SECTORS[i % 6], w, draw(st.sampled_from(["stock", "etf"])))
                                  for i in range(n)])
        case 4:
            return close(ts, draw(st.integers(0, 5)))
        case 5:
            return tick(ts)
        case 6:
            return draw(st.sampled_from([shock(ts), margin(ts, acc), enter(ts, acc), leave(ts, acc)]))
        case 7:
            accounts = draw(st.sampled_from([(), ("ada",), ("ada", "bo")]))
            due = draw(st.one_of(st.none(), st.integers(0, 80)))
            return assign(ts, mid, accounts=accounts, due=due, xp=draw(st.one_of(st.none(), st.integers(-1, 500))))
        case 8:
            return override(ts, mid, draw(st.sampled_from(["complete", "fail", "reopen", "unlock"])), account=acc)
        case 9 | 10:
            return start(ts, mid, account=acc)
    return claim(ts, mid, account=acc)


@settings(max_examples=150, deadline=None)
@given(st.lists(inputs(), max_size=40))
@example(seq=[  # found by CI: a re-assignment that moved an open mission's due date into the past kept it open
    MissionAssigned(ts=0, id="as-1", mission_id="beat-spy", accounts=(), due_ts=None, xp=None),
    MissionAssigned(ts=0, id="as-2", mission_id="beat-spy", accounts=("ada",), due_ts=1, xp=None),
    FillSeen(ts=1, id="f-3", account="ada", client_order_id="o1", symbol="AAPL", side="buy", quantity=1.0,
             price=100.0, liquidity="maker", slippage_bps=0.0, order_type="market", from_stop=False, note="",
             kind="stock"),
])
def test_random_inputs_only_ever_raise_the_domain_error_and_round_trip(seq: list[GameInput]) -> None:
    s = new_state()
    for x in seq:
        before = encode_state(s)
        try:
            s2, events = apply(s, x)
        except GameError:
            assert encode_state(s) == before  # a refusal changes nothing
            continue
        assert encode_state(s) == before  # apply never mutates the state it was given
        assert apply(s2, x) == (s2, ())  # an immediate redelivery is a no-op
        assert len({e.id for e in events}) == len(events) and all(e.cause == x.id for e in events)
        s = s2
        assert decode_state(encode_state(s)) == s
        # The expiry invariant: no open mission of a present account is past its due date.
        for p in s.players.values():
            for a in p.missions.values():
                assert p.left_ts is not None or not a.status.open or a.due_ts is None or a.due_ts > s.clock
