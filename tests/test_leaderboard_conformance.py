"""One leaderboard conformance suite, run on the embedded structure and on a real Redis.

Every test in the first part is parametrised over both backends and checks hand-written
expectations, so each backend must get the right answer (not merely the other's). The second part
drives both with the same random operation sequences (seeded, and hypothesis, derandomized) and
compares every reply, every refusal and the final boards.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vtrade.game.leaderboard import (
    UNITS_MAX,
    Board,
    BoardFrozenError,
    EmbeddedLeaderboards,
    Leaderboards,
    Standing,
    Update,
)
from vtrade.runtime.leaderboard_redis import RedisLeaderboards

S = 10**9  # one simulated second in ns
T0 = 1_704_196_800 * S  # 2024-01-02T12:00:00Z, a Tuesday
DAY = 86_400 * S
XP = Board("xp", class_id="econ")
RET = Board("return", class_id="econ")


def _redis(url: str) -> RedisLeaderboards:
    # A fresh namespace per backend instance: tests share the session's server, never each other's keys.
    return RedisLeaderboards(url, namespace=f"t-{uuid.uuid4().hex}")


@pytest.fixture(params=["embedded", "redis"])
def lb(request: pytest.FixtureRequest) -> Iterator[Leaderboards]:
    if request.param == "embedded":
        yield EmbeddedLeaderboards()
        return
    backend = _redis(request.getfixturevalue("redis_url"))
    yield backend
    backend.close()


@pytest.fixture
def both(redis_url: str) -> Iterator[tuple[EmbeddedLeaderboards, RedisLeaderboards]]:
    backend = _redis(redis_url)
    yield EmbeddedLeaderboards(), backend
    backend.close()


def board_rows(lb: Leaderboards, board: Board) -> list[tuple[int, str, float]]:
    return [(s.rank, s.member, s.score) for s in lb.top(board, lb.size(board))]


def test_both_backends_satisfy_the_protocol(lb: Leaderboards) -> None:
    assert isinstance(lb, Leaderboards)


# --------------------------------------------------------------------------------------------
# ranking


def test_ties_earlier_wins_then_member_bytes_descending(lb: Leaderboards) -> None:
    lb.set(RET, "late", 0.05, T0 + 10 * S)
    lb.set(RET, "early", 0.05, T0)
    lb.set(RET, "aa", 0.05, T0 + 20 * S)  # same score, same second as "ab": reverse byte order
    lb.set(RET, "ab", 0.05, T0 + 20 * S + 999_999_999)
    lb.set(RET, "best", 0.0501, T0 + 99 * S)
    assert board_rows(lb, RET) == [
        (0, "best", 0.0501), (1, "early", 0.05), (2, "late", 0.05), (3, "ab", 0.05), (4, "aa", 0.05),
    ]  # fmt: skip
    # Posting an unchanged score later keeps the earlier time; a different score is reached now.
    assert lb.set(RET, "early", 0.05, T0 + 500 * S) == Update(False, 0.05)
    assert lb.rank(RET, "early") == 1
    lb.set(RET, "early", 0.04, T0 + 501 * S)
    lb.set(RET, "early", 0.05, T0 + 502 * S)
    assert lb.rank(RET, "early") == 4
    # An earlier time for the same score (an out-of-order event) moves the member up.
    assert lb.set(RET, "early", 0.05, T0 + 1 * S) == Update(True, 0.05)
    assert lb.rank(RET, "early") == 1


def test_negative_scores_rank_below_zero_and_in_order(lb: Leaderboards) -> None:
    for m, score, t in [("z", 0.0, 5), ("n1", -0.0001, 1), ("n2", -0.5, 1), ("p", 0.0001, 9),
                        ("n3", -0.5, 0), ("min", RET.spec.min_score, 0), ("max", RET.spec.max_score, 9)]:
        lb.set(RET, m, score, T0 + t * S)
    assert board_rows(lb, RET) == [
        (0, "max", 209.7151), (1, "p", 0.0001), (2, "z", 0.0), (3, "n1", -0.0001),
        (4, "n3", -0.5), (5, "n2", -0.5), (6, "min", -209.7151),
    ]  # fmt: skip
    assert lb.score(RET, "n2") == -0.5 and lb.rank(RET, "min") == 6


def test_scores_round_to_the_metric_quantum(lb: Leaderboards) -> None:
    assert lb.set(RET, "a", 0.123449, T0) == Update(True, 0.1234)
    assert lb.set(RET, "b", 0.12345001, T0) == Update(True, 0.1235)
    assert lb.add(XP, "a", 2.4, T0) == Update(True, 2.0)


def test_top_rank_size_and_absent_members(lb: Leaderboards) -> None:
    assert lb.top(XP, 10) == [] and lb.size(XP) == 0 and lb.rank(XP, "x") is None and lb.score(XP, "x") is None
    for i in range(5):
        lb.add(XP, f"s{i}", 10 * i, T0)
    assert lb.top(XP, 2) == [Standing(0, "s4", 40.0), Standing(1, "s3", 30.0)]
    assert lb.top(XP, 0) == []
    assert [s.member for s in lb.top(XP, 99)] == ["s4", "s3", "s2", "s1", "s0"]
    assert lb.size(XP) == 5 and lb.rank(XP, "s0") == 4
    assert lb.remove(XP, "s3") is True and lb.remove(XP, "s3") is False
    assert lb.rank(XP, "s2") == 1 and lb.size(XP) == 4
    assert lb.size(Board("xp")) == 0  # the global board is another key


def test_around_me_clipped_at_both_ends(lb: Leaderboards) -> None:
    for i in range(10):
        lb.add(XP, f"m{i}", 100 - i, T0)  # m0 is rank 0 ... m9 rank 9
    names = lambda rows: [(s.rank, s.member) for s in rows]  # noqa: E731
    assert names(lb.around(XP, "m0", 2)) == [(0, "m0"), (1, "m1"), (2, "m2")]
    assert names(lb.around(XP, "m1", 2)) == [(0, "m0"), (1, "m1"), (2, "m2"), (3, "m3")]
    assert names(lb.around(XP, "m5", 2)) == [(3, "m3"), (4, "m4"), (5, "m5"), (6, "m6"), (7, "m7")]
    assert names(lb.around(XP, "m9", 2)) == [(7, "m7"), (8, "m8"), (9, "m9")]
    assert names(lb.around(XP, "m9", 0)) == [(9, "m9")]
    assert len(lb.around(XP, "m4", 50)) == 10
    assert lb.around(XP, "nobody", 2) == []
    assert lb.around(XP, "m4", 1)[1] == Standing(4, "m4", 96.0)


def test_set_best_keeps_the_best(lb: Leaderboards) -> None:
    assert lb.set_best(RET, "a", 0.10, T0) == Update(True, 0.1)
    assert lb.set_best(RET, "a", 0.05, T0 + S) == Update(False, 0.1)
    assert lb.set_best(RET, "a", -1.0, T0 + S) == Update(False, 0.1)
    lb.set_best(RET, "b", 0.10, T0 + 5 * S)
    assert lb.set_best(RET, "b", 0.10, T0 + 9 * S) == Update(False, 0.1)  # same best, later: kept
    assert [s.member for s in lb.top(RET)] == ["a", "b"]
    assert lb.set_best(RET, "b", 0.11, T0 + 9 * S) == Update(True, 0.11)
    assert [s.member for s in lb.top(RET)] == ["b", "a"]


def test_add_is_reached_now_and_adding_zero_keeps_the_time(lb: Leaderboards) -> None:
    assert lb.add(XP, "a", 50, T0) == Update(True, 50.0)
    assert lb.add(XP, "b", 30, T0 + S) == Update(True, 30.0)
    assert lb.add(XP, "b", 20, T0 + 2 * S) == Update(True, 50.0)  # b reaches 50 after a: below a
    assert [s.member for s in lb.top(XP)] == ["a", "b"]
    assert lb.add(XP, "a", 0, T0 + 3 * S) == Update(False, 50.0)  # no new score, the old time stays
    assert [s.member for s in lb.top(XP)] == ["a", "b"]
    assert lb.add(XP, "a", -60, T0 + 4 * S) == Update(True, -10.0)
    assert lb.add(XP, "a", 60, T0 + 5 * S) == Update(True, 50.0)  # back at 50, but now later than b
    assert [s.member for s in lb.top(XP)] == ["b", "a"]
    assert lb.add(XP, "new", 0, T0) == Update(True, 0.0)  # ZINCRBY on an absent member starts at 0


# --------------------------------------------------------------------------------------------
# set_many: ZADD of many members, exactly a loop of set


def test_set_many_is_a_loop_of_set(lb: Leaderboards) -> None:
    lb.set(RET, "a", 0.05, T0)
    lb.set(RET, "b", 0.02, T0)
    # One time for the batch: "a" re-posts 0.05 (keeps T0), "c" and "é" are new, "b" moves twice.
    assert lb.set_many(RET, ["a", "c", "b", "é", "b"], [0.05, 0.05, 0.07, 0.05, 0.01], T0 + 9 * S) == 4
    assert board_rows(lb, RET) == [(0, "a", 0.05), (1, "é", 0.05), (2, "c", 0.05), (3, "b", 0.01)]
    # Per-row times; a new member twice in one batch; an earlier time for the same score moves up.
    assert lb.set_many(RET, ["d", "d", "c", "a"], [0.09, 0.01, 0.05, 0.05], [T0, T0 + S, T0 - S, T0 + 99 * S]) == 3
    assert board_rows(lb, RET) == [(0, "c", 0.05), (1, "a", 0.05), (2, "é", 0.05), (3, "d", 0.01), (4, "b", 0.01)]
    assert lb.score(RET, "d") == 0.01 and lb.rank(RET, "d") == 3  # "d" reached 0.01 at T0 + S, after "b"
    # Nothing changes: 0; an empty batch: 0; NumPy arrays and int scores are numbers too.
    assert lb.set_many(RET, ["a", "c"], [0.05, 0.05], T0 + 500 * S) == 0
    assert lb.set_many(RET, [], [], T0) == 0
    assert lb.set_many(XP, ["x", "y"], np.array([3, 4]), np.array([T0, T0])) == 2
    assert board_rows(lb, XP) == [(0, "y", 4.0), (1, "x", 3.0)]


@pytest.mark.parametrize("seed", range(3))
def test_set_many_matches_a_loop_of_set_on_random_batches(lb: Leaderboards, seed: int) -> None:
    rng = random.Random(seed)
    ref = EmbeddedLeaderboards()
    for _ in range(30):
        n = rng.randrange(0, 80)  # from 32 rows, checked on whole arrays
        members = [rng.choice(MEMBERS) + str(rng.randrange(8)) for _ in range(n)]
        scores = [rng.choice([0.0, 0.01, -0.01, 0.02, 0.015]) for _ in range(n)]
        times: int | list[int] = T0 + rng.randrange(4) * S if rng.random() < 0.5 else [
            T0 + rng.randrange(4) * S for _ in range(n)]  # fmt: skip
        expect = sum(ref.set(RET, m, v, times if isinstance(times, int) else times[i]).changed
                     for i, (m, v) in enumerate(zip(members, scores, strict=True)))  # fmt: skip
        assert lb.set_many(RET, members, scores, times) == expect
        assert board_rows(lb, RET) == board_rows(ref, RET)


@pytest.mark.parametrize("pad", [0, 40])
def test_set_many_refuses_a_bad_batch_whole(lb: Leaderboards, pad: int) -> None:
    # With ``pad`` good rows first, the batch is long enough to be checked on whole arrays
    # first: the error must still name the bad row, as the row by row check does.
    lb.set_many(RET, ["a", "b"], [0.5, 0.25], T0)
    before = board_rows(lb, RET)
    r0, r1 = f"row {pad}: ", f"row {pad + 1}: "
    bad: list[tuple[tuple[object, object, object], type[Exception], str]] = [
        ((["c", "a"], [0.1, math.nan], T0), ValueError, r1 + "score for 'return' must be a finite number, got nan"),
        ((["c", "a"], [0.1, 209.72], T0), ValueError, r1 + r"score 209.72 .* range \[-209.7151, 209.7151\]"),
        ((["c", ""], [0.1, 0.2], T0), ValueError, r1 + "member must be a non-empty str"),
        ((["", "a"], [0.1, math.nan], T0), ValueError, r0 + "member must be a non-empty str"),  # the first error
        ((["c", "\ud800"], [0.1, 0.2], T0), ValueError, r1 + ".*surrogate"),
        ((["c", 7], [0.1, 0.2], T0), TypeError, r1 + "member must be a str"),
        ((["c", "a"], [0.1, True], T0), TypeError, r1 + "score .* must be a number, got bool"),
        ((["c", "a"], [0.1, "0.2"], T0), TypeError, r1 + "score .* must be a number, got str"),
        ((["c", "a"], [0.1, math.inf], T0), ValueError, r1 + ".*finite"),
        ((["c", "a"], [0.1, 0.2], [T0, -1]), ValueError, r1 + r"at_ns -1 is outside .* time span"),
        ((["c", "a"], [0.1, 0.2], [T0, 1.5e18]), TypeError, r1 + "at_ns must be an int"),
        ((["c", "a"], [0.1, 0.2], -1), ValueError, r"row 0: at_ns -1 is outside"),
        ((["c", "a"], [0.1, 0.2], 1.5e18), TypeError, "at_ns must be a sequence or an int, got float"),
        ((["c", "a"], [0.1], T0), ValueError, f"one scores per member: {pad + 1} for {pad + 2} members"),
        ((["c", "a"], [0.1, 0.2], [T0]), ValueError, f"one at_ns per member: {pad + 1} for {pad + 2} members"),
    ]
    good = [f"p{i}" for i in range(pad)]
    for (members, scores, times), exc, msg in bad:
        args = (
            good + members,  # type: ignore[operator]
            [0.01] * pad + scores if isinstance(scores, list) else scores,
            [T0] * pad + times if isinstance(times, list) else times,
        )
        with pytest.raises(exc, match=msg):
            lb.set_many(RET, *args)  # type: ignore[arg-type]
        with pytest.raises(exc, match=msg):  # the same with NumPy arrays of all-float or all-int lists
            lb.set_many(RET, args[0], *(np.array(x) if isinstance(x, list) and {type(v) for v in x} in (
                {float}, {int}) else x for x in args[1:]))  # type: ignore[arg-type]  # fmt: skip
    for args, exc, msg in [
        (("ca", [0.1, 0.2], T0), TypeError, "members must be a sequence of str, got str"),
        ((["c", "a"], 0.1, T0), TypeError, "scores must be a sequence, got float"),
        ((["c", "a"], np.array([0.1, np.inf]), T0), ValueError, "row 1: .*finite"),
        ((["c", "a"], np.array([False, True]), T0), TypeError, "row 0: .*must be a number, got bool"),
        ((["c", "a"], [0.1, 0.2], np.array([T0, T0], dtype=np.float64)), TypeError, "row 0: at_ns must be an int"),
    ]:
        with pytest.raises(exc, match=msg):
            lb.set_many(RET, *args)  # type: ignore[arg-type]
    assert board_rows(lb, RET) == before
    lb.freeze(RET)
    for members in (["c", "a"], []):
        with pytest.raises(BoardFrozenError):
            lb.set_many(RET, members, [0.3] * len(members), T0 + S)
    assert board_rows(lb, RET) == before


# --------------------------------------------------------------------------------------------
# windows and unions


def test_day_windows_and_weekly_sum_union_for_xp(lb: Leaderboards) -> None:
    days = XP.week_days(T0)
    assert [d.window for d in days][:2] == ["day:2024-01-01", "day:2024-01-02"]
    assert XP.day(T0) == days[1] and XP.day(T0 + DAY) == days[2]
    lb.add(XP.day(T0), "a", 10, T0)
    lb.add(XP.day(T0), "b", 30, T0 + S)
    lb.add(XP.day(T0 + DAY), "a", 20, T0 + DAY + 5 * S)
    lb.add(XP.day(T0 + DAY), "c", -5, T0 + DAY)
    lb.add(XP.day(T0 + DAY), "b", 0, T0 + DAY)  # b reaches its total on day two too
    week = XP.week(T0)
    assert week.key == "class:econ:xp:week:2024-W01"
    assert lb.union(week, days) == 3
    # a and b both total 30: b's last part came at T0 + DAY, a's at T0 + DAY + 5 s, so b first.
    assert board_rows(lb, week) == [(0, "b", 30.0), (1, "a", 30.0), (2, "c", -5.0)]
    # The destination is replaced, not merged into; an empty union leaves no board.
    assert lb.union(week, days[1:2]) == 2 and board_rows(lb, week) == [(0, "b", 30.0), (1, "a", 10.0)]
    assert lb.union(week, [XP.day(T0 + 7 * DAY)]) == 0 and lb.size(week) == 0


def test_weekly_max_union_for_return(lb: Leaderboards) -> None:
    d1, d2 = RET.day(T0), RET.day(T0 + DAY)
    lb.set(d1, "a", 0.02, T0 + 10 * S)
    lb.set(d2, "a", 0.05, T0 + DAY)
    lb.set(d1, "b", 0.05, T0)  # b's 5 % came a day before a's: b ranks first
    lb.set(d2, "b", -0.01, T0 + DAY)
    lb.set(d2, "c", -0.03, T0 + DAY)
    week = RET.week(T0)
    assert lb.union(week, [d1, d2]) == 3
    assert board_rows(lb, week) == [(0, "b", 0.05), (1, "a", 0.05), (2, "c", -0.03)]
    # An explicit aggregate overrides the metric's default.
    assert lb.union(week, [d1, d2], "sum") == 3
    assert board_rows(lb, week) == [(0, "a", 0.07), (1, "b", 0.04), (2, "c", -0.03)]


def test_union_into_one_of_its_sources(lb: Leaderboards) -> None:
    lb.add(XP, "a", 5, T0)
    lb.add(XP.day(T0), "a", 7, T0 + S)
    assert lb.union(XP, [XP, XP.day(T0)]) == 1
    assert lb.score(XP, "a") == 12.0


def test_union_refusals_change_nothing(lb: Leaderboards) -> None:
    lb.add(XP.day(T0), "a", UNITS_MAX, T0)
    lb.add(XP.day(T0 + DAY), "a", 1, T0 + DAY)
    lb.add(XP.week(T0), "old", 1, T0)
    before = board_rows(lb, XP.week(T0))
    with pytest.raises(ValueError, match=r"outside the representable range \[-2097151.0, 2097151.0\]"):
        lb.union(XP.week(T0), XP.week_days(T0))
    with pytest.raises(ValueError, match="different metrics"):
        lb.union(XP.week(T0), [RET.day(T0)])
    with pytest.raises(ValueError, match="non-empty sequence"):
        lb.union(XP.week(T0), [])
    with pytest.raises(ValueError, match="aggregate"):
        lb.union(XP.week(T0), [XP.day(T0)], "avg")  # type: ignore[arg-type]
    assert board_rows(lb, XP.week(T0)) == before


# --------------------------------------------------------------------------------------------
# freezing


def test_frozen_board_refuses_updates_and_keeps_standings(lb: Leaderboards) -> None:
    lb.add(XP, "a", 10, T0)
    lb.add(XP, "b", 20, T0)
    lb.add(XP.day(T0), "a", 99, T0)
    lb.freeze(XP)
    assert lb.is_frozen(XP) and not lb.is_frozen(Board("xp"))
    frozen_ops: list[Callable[[], object]] = [
        lambda: lb.set(XP, "a", 1, T0), lambda: lb.set_best(XP, "a", 100, T0), lambda: lb.add(XP, "c", 1, T0),
        lambda: lb.remove(XP, "a"), lambda: lb.union(XP, [XP.day(T0)]), lambda: lb.drop(XP),
    ]  # fmt: skip
    for op in frozen_ops:
        with pytest.raises(BoardFrozenError, match="'class:econ:xp' is frozen"):
            op()
    assert board_rows(lb, XP) == [(0, "b", 20.0), (1, "a", 10.0)]
    assert lb.around(XP, "a", 1) == [Standing(0, "b", 20.0), Standing(1, "a", 10.0)]
    lb.add(Board("xp"), "a", 1, T0)  # other boards are not frozen
    lb.freeze(Board("xp", class_id="empty"))  # a board frozen before it has members stays empty
    with pytest.raises(BoardFrozenError):
        lb.add(Board("xp", class_id="empty"), "a", 1, T0)
    assert lb.size(Board("xp", class_id="empty")) == 0
    lb.unfreeze(XP)
    assert not lb.is_frozen(XP)
    assert lb.add(XP, "a", 15, T0 + S) == Update(True, 25.0)
    assert lb.rank(XP, "a") == 0


# --------------------------------------------------------------------------------------------
# bad input: a clear error and nothing changed


def test_bad_input_is_refused_and_changes_nothing(lb: Leaderboards) -> None:
    lb.set(RET, "a", 0.5, T0)
    lb.add(XP, "a", UNITS_MAX - 1, T0)
    before = (board_rows(lb, RET), board_rows(lb, XP))
    bad: list[tuple[Callable[[], object], type[Exception], str]] = [
        (lambda: lb.set(RET, "a", math.nan, T0), ValueError, "finite"),
        (lambda: lb.set(RET, "b", math.inf, T0), ValueError, "finite"),
        (lambda: lb.set_best(RET, "a", -math.inf, T0), ValueError, "finite"),
        (lambda: lb.set(RET, "a", 209.72, T0), ValueError, r"range \[-209.7151, 209.7151\]"),
        (lambda: lb.set(RET, "a", -1000.0, T0), ValueError, r"range \[-209.7151, 209.7151\]"),
        (lambda: lb.add(XP, "a", 2, T0), ValueError, r"range \[-2097151.0, 2097151.0\]"),
        (lambda: lb.add(XP, "a", math.nan, T0), ValueError, "delta"),
        (lambda: lb.set(RET, "", 0.1, T0), ValueError, "non-empty"),
        (lambda: lb.set(RET, "\ud800", 0.1, T0), ValueError, "surrogate"),
        (lambda: lb.set(RET, 7, 0.1, T0), TypeError, "member must be a str"),  # type: ignore[arg-type]
        (lambda: lb.set(RET, "a", True, T0), TypeError, "must be a number"),
        (lambda: lb.set(RET, "a", "0.1", T0), TypeError, "must be a number"),  # type: ignore[arg-type]
        (lambda: lb.set(RET, "a", 0.1, -1), ValueError, r"time span \[0, "),
        (lambda: lb.set(RET, "a", 0.1, 2**32 * S), ValueError, r"time span \[0, "),
        (lambda: lb.set(RET, "a", 0.1, 1.5e18), TypeError, "at_ns must be an int"),  # type: ignore[arg-type]
        (lambda: lb.top(RET, -1), ValueError, "n must be an int >= 0"),
        (lambda: lb.around(RET, "a", -1), ValueError, "k must be an int >= 0"),
        (lambda: lb.remove(RET, ""), ValueError, "non-empty"),
    ]
    for op, exc, msg in bad:
        with pytest.raises(exc, match=msg):
            op()
    assert (board_rows(lb, RET), board_rows(lb, XP)) == before
    with pytest.raises(ValueError, match="unknown leaderboard metric 'pnl'"):
        Board("pnl")
    with pytest.raises(ValueError, match="class_id"):
        Board("xp", class_id="a:b")


def test_redis_window_keys_expire_and_others_do_not(redis_url: str) -> None:
    lb = RedisLeaderboards(redis_url, namespace=f"t-{uuid.uuid4().hex}", window_ttl_s=3600)
    r = redis.Redis.from_url(redis_url)
    lb.add(XP, "a", 1, T0)
    lb.add(XP.day(T0), "a", 1, T0)
    lb.union(XP.week(T0), [XP.day(T0)])
    lb.union(RET.week(T0), [RET.day(T0)])  # empty: no key, no TTL
    assert r.ttl(lb.key(XP)) == -1
    assert 0 < r.ttl(lb.key(XP.day(T0))) <= 3600
    assert 0 < r.ttl(lb.key(XP.week(T0))) <= 3600
    assert r.exists(lb.key(RET.week(T0))) == 0
    r.close()
    lb.close()


# --------------------------------------------------------------------------------------------
# the two backends against each other

MEMBERS = ["a", "b", "c", "d", "é", "ab", "B"]
BOARDS = [XP, XP.day(T0), XP.day(T0 + DAY), RET, RET.day(T0), RET.day(T0 + DAY)]


def _op(rng: random.Random) -> tuple[str, tuple[object, ...]]:
    b = rng.choice(BOARDS)
    m = rng.choice(MEMBERS)
    t = T0 + rng.randrange(0, 4) * S  # few distinct seconds: plenty of ties
    small = [0, 1, 2, -1, 0.5] if b.metric == "xp" else [0.0, 0.01, 0.02, -0.01, 0.015]
    value: object = rng.choice(small)
    if rng.random() < 0.05:
        value = rng.choice([math.nan, math.inf, 1e9, -1e9, b.spec.max_score])
    kind = rng.choices(["set", "set_best", "add", "remove", "union", "freeze", "unfreeze", "around", "rank",
                        "set_many"], weights=[6, 4, 6, 1, 1, 0.3, 0.5, 1, 1, 2])[0]  # fmt: skip
    if kind in ("set", "set_best", "add"):
        return kind, (b, m, value, t)
    if kind == "set_many":  # a few rows (a bad value sometimes), one time or one per row
        rows: list[tuple[str, object]] = [(rng.choice(MEMBERS), rng.choice(small)) for _ in range(rng.randrange(0, 5))]
        if rows and value not in small:
            rows[rng.randrange(len(rows))] = (m, value)
        times: object = t if rng.random() < 0.5 else [T0 + rng.randrange(0, 4) * S for _ in rows]
        return kind, (b, [r[0] for r in rows], [r[1] for r in rows], times)
    if kind in ("remove", "rank"):
        return kind, (b, m)
    if kind == "around":
        return kind, (b, m, rng.randrange(0, 3))
    if kind == "union":
        same = [x for x in BOARDS if x.metric == b.metric]
        return kind, (b.week(T0), rng.sample(same, rng.randrange(1, len(same) + 1)), rng.choice([None, "sum", "max"]))
    return kind, (b,)


def _apply(lb: Leaderboards, kind: str, args: tuple[object, ...]) -> object:
    try:
        return getattr(lb, kind)(*args)
    except (ValueError, TypeError, BoardFrozenError) as exc:
        return (type(exc).__name__, str(exc))


def _snapshot(lb: Leaderboards) -> list[object]:
    boards = [*BOARDS, XP.week(T0), RET.week(T0)]
    return [(b.key, board_rows(lb, b), lb.is_frozen(b)) for b in boards]


def _run_both(emb: Leaderboards, red: Leaderboards, ops: list[tuple[str, tuple[object, ...]]]) -> None:
    for i, (kind, args) in enumerate(ops):
        got_e, got_r = _apply(emb, kind, args), _apply(red, kind, args)
        assert got_e == got_r, f"op {i} {kind}{args}: embedded {got_e!r} != redis {got_r!r}"
    assert _snapshot(emb) == _snapshot(red)


@pytest.mark.parametrize("seed", range(6))
def test_random_sequences_agree(both: tuple[EmbeddedLeaderboards, RedisLeaderboards], seed: int) -> None:
    rng = random.Random(seed)
    ops = [_op(rng) for _ in range(400)]
    _run_both(*both, ops)
    emb, _ = both
    assert sum(emb.size(b) for b in BOARDS) > 0  # the sequence did build boards (not vacuous)


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seeds=st.lists(st.integers(0, 2**32), min_size=1, max_size=60))
def test_hypothesis_sequences_agree(redis_url: str, seeds: list[int]) -> None:
    ops = [_op(random.Random(s)) for s in seeds]
    red = _redis(redis_url)
    try:
        _run_both(EmbeddedLeaderboards(), red, ops)
    finally:
        red.close()
