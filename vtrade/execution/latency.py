"""Latency models: how long an order takes to reach the exchange, and data to reach the user.

An order entered at ``t`` reaches the book at ``t + entry``; the user sees market data
stamped ``t`` at ``t + feed`` and hears about a fill at ``t + response``. Sampled models draw
from a NumPy ``Generator`` the caller seeds from (session seed, symbol) (DESIGN.md §4).

>>> ConstantLatency(entry_ns=1_000_000).entry(None)
1000000
>>> from vtrade.core.rng import seeded_rng
>>> rng = seeded_rng(42, "BTCUSDT")
>>> m = LogNormalLatency(median_ns=1_000_000, sigma=0.5)
>>> m.entry(rng) == LogNormalLatency(median_ns=1_000_000, sigma=0.5).entry(seeded_rng(42, "BTCUSDT"))
True
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


class LatencyModel(ABC):
    """Entry, response and market-data latency in nanoseconds (never negative)."""

    @abstractmethod
    def entry(self, rng: np.random.Generator | None) -> int:
        """Order entry: user -> exchange."""

    def response(self, rng: np.random.Generator | None) -> int:
        """Exchange -> user (acks and fills). Defaults to the entry latency's model."""
        return self.entry(rng)

    def feed(self, rng: np.random.Generator | None) -> int:
        """Market data: exchange -> user. Defaults to the entry latency's model."""
        return self.entry(rng)


@dataclass(frozen=True, slots=True)
class ConstantLatency(LatencyModel):
    """Fixed latencies. ``response_ns``/``feed_ns`` default to ``entry_ns``."""

    entry_ns: int = 0
    response_ns: int | None = None
    feed_ns: int | None = None

    def __post_init__(self) -> None:
        for name in ("entry_ns", "response_ns", "feed_ns"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ValueError(f"{name} must be >= 0, got {v}")

    def entry(self, rng: np.random.Generator | None) -> int:
        return self.entry_ns

    def response(self, rng: np.random.Generator | None) -> int:
        return self.entry_ns if self.response_ns is None else self.response_ns

    def feed(self, rng: np.random.Generator | None) -> int:
        return self.entry_ns if self.feed_ns is None else self.feed_ns


@dataclass(frozen=True, slots=True)
class LogNormalLatency(LatencyModel):
    """Latency ~ median · exp(sigma · N(0, 1)): right-skewed, as measured network latency is."""

    median_ns: int
    sigma: float = 0.3

    def __post_init__(self) -> None:
        if self.median_ns < 0 or not math.isfinite(self.sigma) or self.sigma < 0:
            raise ValueError(f"need median_ns >= 0 and a finite sigma >= 0, got {self.median_ns}, {self.sigma}")

    def entry(self, rng: np.random.Generator | None) -> int:
        if rng is None:
            raise ValueError("a sampled latency needs the session's seeded Generator")
        return int(self.median_ns * math.exp(self.sigma * float(rng.standard_normal())))
