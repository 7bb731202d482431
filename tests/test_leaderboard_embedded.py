"""The embedded structure's sublists against a brute-force ranking, with tiny sublists so that
splits, emptied sublists and walks across sublist boundaries all happen."""

from __future__ import annotations

import random

import pytest

import vtrade.game.leaderboard as lbm
from vtrade.game.leaderboard import Board, EmbeddedLeaderboards, Standing

S = 10**9
B = Board("return")


@pytest.mark.parametrize("load", [1, 2, 3, 50])
def test_sublists_match_a_sorted_reference(monkeypatch: pytest.MonkeyPatch, load: int) -> None:
    monkeypatch.setattr(lbm, "_LOAD", load)
    rng = random.Random(load)
    lb = EmbeddedLeaderboards()
    ref: dict[str, tuple[int, int]] = {}  # member -> (units, tie): the rule in plain Python
    names = [f"m{i:03d}" for i in range(300)]
    for step in range(4000):
        m = rng.choice(names)
        if rng.random() < 0.15:
            assert lb.remove(B, m) == (m in ref)
            ref.pop(m, None)
        else:
            units, t = rng.randrange(-30, 30), rng.randrange(0, 50)
            tie = lbm.TIE_MAX - t
            lb.set(B, m, units / 10_000, t * S)
            cur = ref.get(m)
            if cur is None or cur[0] != units or tie > cur[1]:
                ref[m] = (units, tie)
        if step % 97 == 0 or step == 3999:
            order = sorted(ref, key=lambda x: (ref[x][0], ref[x][1], x.encode()), reverse=True)
            expect = [Standing(r, x, ref[x][0] / 10_000) for r, x in enumerate(order)]
            assert lb.top(B, len(expect) + 5) == expect
            assert lb.size(B) == len(expect)
            for x in rng.sample(order, min(20, len(order))):
                r = order.index(x)
                assert lb.rank(B, x) == r
                assert lb.around(B, x, 3) == expect[max(0, r - 3) : r + 4]
            assert lb.top(B, 7) == expect[:7]
