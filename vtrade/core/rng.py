"""Seeded randomness: every stochastic model draws from a Generator seeded by (session seed, symbol).

This keeps a symbol's simulation reproducible on its own (DESIGN.md §4): adding a second
symbol to a session does not change the first one's draws.

>>> float(seeded_rng(7, "SPY").random()) == float(seeded_rng(7, "SPY").random())
True
>>> float(seeded_rng(7, "SPY").random()) == float(seeded_rng(7, "QQQ").random())
False
"""

from __future__ import annotations

import numpy as np

from vtrade.core.ids import murmur2


def seed_sequence(session_seed: int, symbol: str, *extra: int) -> np.random.SeedSequence:
    """The seed of ``symbol``'s models in a session; ``extra`` keys sub-streams (e.g. a timestamp)."""
    if session_seed < 0:
        raise ValueError(f"a session seed must be >= 0, got {session_seed}")
    # murmur2, not hash(): Python's str hash is randomised per process.
    key = murmur2(symbol.encode()) & 0xFFFFFFFF
    return np.random.SeedSequence([session_seed & 0xFFFFFFFFFFFFFFFF, key, *(int(x) for x in extra)])


def seeded_rng(session_seed: int, symbol: str, *extra: int) -> np.random.Generator:
    """The Generator every stochastic model of ``symbol`` in a session draws from."""
    return np.random.Generator(np.random.PCG64(seed_sequence(session_seed, symbol, *extra)))
