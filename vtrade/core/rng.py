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


def seeded_rng(session_seed: int, symbol: str) -> np.random.Generator:
    """The Generator every stochastic model of ``symbol`` in a session draws from."""
    if session_seed < 0:
        raise ValueError(f"a session seed must be >= 0, got {session_seed}")
    # murmur2, not hash(): Python's str hash is randomised per process.
    key = murmur2(symbol.encode()) & 0x7FFFFFFF
    return np.random.default_rng(np.random.SeedSequence([session_seed, key]))
