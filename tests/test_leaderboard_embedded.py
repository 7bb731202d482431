"""The embedded structure's sorted blocks against a plain reference (a sorted list of
``(packed, member bytes)``), with tiny blocks so that splits, evening out, merges, emptied blocks
and walks across block boundaries all happen, and with many equal packed scores so that the
order by member bytes (Redis's, for equal scores) is exercised in the kernels."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vtrade.game._lbkernels as kern
import vtrade.game.leaderboard as lbm
from vtrade.game.leaderboard import Board, EmbeddedLeaderboards, Standing

S = 10**9
B = Board("return")


class Reference:
    """The ranking rule in plain Python: member -> (units, tie); order by (units, tie, bytes), descending."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, int]] = {}

    def set(self, member: str, units: int, t: int) -> bool:
        tie, cur = lbm.TIE_MAX - t, self.rows.get(member)
        if cur is None or cur[0] != units or tie > cur[1]:
            self.rows[member] = (units, tie)
            return True
        return False

    def best(self, member: str, units: int, t: int) -> bool:
        cur = self.rows.get(member)
        return False if cur is not None and units < cur[0] else self.set(member, units, t)

    def add(self, member: str, delta: int, t: int) -> bool:
        cur = self.rows.get(member)
        return self.set(member, (0 if cur is None else cur[0]) + delta, t)

    def standings(self) -> list[Standing]:
        order = sorted(self.rows, key=lambda x: (*self.rows[x], x.encode()), reverse=True)
        return [Standing(r, x, self.rows[x][0] / 10_000) for r, x in enumerate(order)]


def check(lb: EmbeddedLeaderboards, ref: Reference, rng: random.Random) -> None:
    expect = ref.standings()
    assert lb.top(B, len(expect) + 5) == expect
    assert lb.size(B) == len(expect)
    for r, s in enumerate(expect):
        assert lb.rank(B, s.member) == r
        assert lb.score(B, s.member) == s.score
    for x in rng.sample(expect, min(20, len(expect))):
        assert lb.around(B, x.member, 3) == expect[max(0, x.rank - 3) : x.rank + 4]
    assert lb.top(B, 7) == expect[:7]


@pytest.mark.parametrize("block", [2, 3, 5, 8, 50])
def test_blocks_match_a_sorted_reference(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    monkeypatch.setattr(lbm, "_BLOCK", block)
    rng = random.Random(block)
    lb, ref = EmbeddedLeaderboards(), Reference()
    names = [f"m{i:03d}" for i in range(300)]
    for step in range(4000):
        roll = rng.random()
        if roll < 0.15:
            m = rng.choice(names)
            assert lb.remove(B, m) == (m in ref.rows)
            ref.rows.pop(m, None)
        elif roll < 0.2:  # a batch: one time, a few rows
            rows = [(rng.choice(names), rng.randrange(-30, 30)) for _ in range(rng.randrange(1, 30))]
            t = rng.randrange(0, 50)
            changed = sum(ref.set(m, u, t) for m, u in rows)
            assert lb.set_many(B, [m for m, _ in rows], [u / 10_000 for _, u in rows], t * S) == changed
        else:
            m, units, t = rng.choice(names), rng.randrange(-30, 30), rng.randrange(0, 50)
            if roll < 0.3:
                assert lb.set_best(B, m, units / 10_000, t * S).changed == ref.best(m, units, t)
            elif roll < 0.4:
                assert lb.add(B, m, units / 10_000, t * S).changed == ref.add(m, units, t)
            else:
                assert lb.set(B, m, units / 10_000, t * S).changed == ref.set(m, units, t)
        if step % 97 == 0 or step == 3999:
            check(lb, ref, rng)


# Members that stress the byte order: prefixes of each other, a zero byte, non-ASCII (multi-byte
# UTF-8 sorts by bytes, not code points: "é" is 0xC3 0xA9, "\uffff" 0xEF 0xBF 0xBF), lengths
# across the 8-byte words of the arena.
MEMBERS = ["a", "ab", "abc", "a\x00", "a\x00b", "b", "é", "ée", "\uffff", "𝄞", "z" * 9, "z" * 17, "zz", "A", "~"]


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    block=st.integers(2, 6),
    ops=st.lists(
        st.tuples(
            st.sampled_from(["set", "many", "remove"]),
            st.lists(st.sampled_from(MEMBERS), max_size=6),
            st.integers(-2, 2),
            st.integers(0, 2),
        ),
        max_size=80,
    ),
)
def test_equal_packed_scores_order_by_member_bytes(block: int, ops: list[tuple[str, list[str], int, int]]) -> None:
    # Three values and three seconds for fifteen members: most packed scores are shared.
    lbm_block = lbm._BLOCK
    lbm._BLOCK = block
    try:
        lb, ref = EmbeddedLeaderboards(), Reference()
        for kind, members, units, t in ops:
            if kind == "remove":
                for m in members:
                    assert lb.remove(B, m) == (ref.rows.pop(m, None) is not None)
            elif kind == "many":
                changed = sum(ref.set(m, units, t) for m in members)
                assert lb.set_many(B, members, [units / 10_000] * len(members), t * S) == changed
            else:
                for m in members:
                    assert lb.set(B, m, units / 10_000, t * S).changed == ref.set(m, units, t)
        check(lb, ref, random.Random(0))
    finally:
        lbm._BLOCK = lbm_block


def test_store_memory_follows_the_live_members(monkeypatch: pytest.MonkeyPatch) -> None:
    # Members come and go (long names, so the arena grows): the store is resized on what is
    # live, not on everything ever added, and keeps the right order through the resizes.
    monkeypatch.setattr(lbm, "_BLOCK", 8)
    lb, ref = EmbeddedLeaderboards(), Reference()
    rng = random.Random(3)
    for i in range(6000):
        m = f"member-{i:05d}-" + "x" * rng.randrange(0, 40)
        units = rng.randrange(-5, 5)
        lb.set(B, m, units / 10_000, i * S)
        ref.set(m, units, i)
        if len(ref.rows) > 50:
            gone = rng.choice(sorted(ref.rows))
            assert lb.remove(B, gone)
            del ref.rows[gone]
    check(lb, ref, rng)
    st_ = lb._books[B.key].st
    assert st_[kern.ARENACAP] <= 64 * 1024 and st_[kern.SLOTCAP] <= 256 and st_[kern.NBCAP] <= 256
    assert len(st_) < 20_000


def test_a_big_batch_grows_the_store_mid_batch() -> None:
    # 5,000 new members in one set_many, then 20,000 updates in another: the store fills up and
    # grows while set_rows runs (it stops after the row that used the last spare block).
    rng = np.random.default_rng(1)
    lb, ref = EmbeddedLeaderboards(), Reference()
    names = [f"s{i}" for i in range(5000)]
    units = rng.integers(-300, 300, 5000)
    assert lb.set_many(B, names, units / 10_000, 7 * S) == 5000
    for m, u in zip(names, units.tolist(), strict=True):
        ref.set(m, u, 7)
    rows = rng.integers(0, 5000, 20_000)
    new_units = rng.integers(-300, 300, 20_000)
    times = 8 + rng.integers(0, 3, 20_000)
    changed = sum(
        ref.set(names[r], u, t) for r, u, t in zip(rows.tolist(), new_units.tolist(), times.tolist(), strict=True)
    )
    assert lb.set_many(B, [names[r] for r in rows], new_units / 10_000, times * S) == changed
    check(lb, ref, random.Random(1))


def test_kernels_stay_inside_the_store_for_a_broken_caller() -> None:
    # What _Book guarantees (present slots, a spare block, a grown store) is broken on purpose:
    # the kernels must answer wrong or refuse, never index outside the array (a crash).
    st = kern.new_store(4)  # 2 blocks of 4, 8 slots
    for slot in range(8):  # FULL replies ignored: the store is never grown
        kern.add(st, slot, f"m{slot}".encode(), (slot % 3) << 32)
    assert st[kern.NB] == st[kern.NBCAP] == 2 and st[kern.N] <= 8
    kern.remove(st, 3)
    kern.remove(st, 3)  # not there any more: nothing removed
    n = st[kern.N]
    # A removed slot moved to the top: into the last block, which is full with no spare block
    # to split into, so it is refused.
    assert kern.move(st, 3, 7 << 32) == kern.FULL and st[kern.N] == n == 7
    assert kern.set_units(st, 10**6, 1, 1) == 0 and kern.position(st, 10**6) == -1
    kern.remove(st, -1)
    assert kern.add(st, 8, b"beyond", 0) == kern.NO_ROOM
    out = np.empty((20, 2), dtype=np.int64)
    k = kern.descending(st, int(st[kern.N]) - 1, out)
    packed = out[:k, 1].tolist()
    assert k == st[kern.N] and packed == sorted(packed, reverse=True)
    assert kern.descending(st, 10**6, out) == 0
