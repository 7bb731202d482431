"""The account feed: what a class market tells the consumers that follow students' accounts.

Pure (no I/O, no wall clock): the market calls :class:`AccountFeed` at each NAV sample, fill,
margin call and session close, and publishes the events it returns on the ``portfolio`` topic
(:mod:`vtrade.portfolio.events`). The feed keeps what the figures need between calls — each
account's peak NAV and deepest drawdown, the benchmark's samples, the session count — so that
every snapshot is a deterministic function of the market's history; a market checkpoint
pickles it with the rest.

>>> feed = AccountFeed(benchmark="SPY", session_ns=None)
>>> feed.sample(1, {"ada": 100.0}, benchmark_price=50.0)
>>> feed.sample(2, {"ada": 90.0}, benchmark_price=50.0)
>>> feed.sample(3, {"ada": 99.0}, benchmark_price=55.0)
>>> round(feed.max_drawdown("ada"), 3), round(feed.benchmark_return(), 3)
(0.1, 0.1)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

import numpy as np

from vtrade.portfolio.events import AccountSnapshot, Holding, SessionEnded

__all__ = ["BETA_MIN_SAMPLES", "BETA_SAMPLES", "AccountFeed"]

#: Beta is measured over the latest ``BETA_SAMPLES`` NAV samples, and only once there are
#: ``BETA_MIN_SAMPLES`` of them (a beta of three returns would grade noise).
BETA_SAMPLES, BETA_MIN_SAMPLES = 2000, 20


class AccountFeed:
    """Running figures per account and the session clock (see the module notes).

    ``benchmark``: the symbol returns and beta are measured against (None: the market lists
    none). ``session_ns``: the length of a session for a market that trades around the clock
    (None: the market says when sessions close, e.g. the NYSE calendar). ``every_ns``: how
    often every account is snapshotted between session closes.
    """

    def __init__(self, benchmark: str | None, session_ns: int | None, every_ns: int = 30 * 60 * 10**9) -> None:
        if session_ns is not None and session_ns <= 0:
            raise ValueError(f"a session must last a positive time, got {session_ns} ns")
        if every_ns <= 0:
            raise ValueError(f"snapshots need a positive interval, got {every_ns} ns")
        self.benchmark = benchmark
        self.session_ns = session_ns
        self.every_ns = every_ns
        self.next_snapshot: int | None = None
        self.session = 0  # sessions closed so far
        self.next_close: int | None = None  # for around-the-clock markets: when this session closes
        self._bench: deque[tuple[int, float]] = deque(maxlen=BETA_SAMPLES + 1)
        self._bench0: float | None = None
        self._navs: dict[str, deque[tuple[int, float]]] = {}
        self._peak: dict[str, float] = {}
        self._dd: dict[str, float] = {}
        self._called: set[str] = set()

    # ------------------------------------------------------------------ what the market reports
    def sample(self, ts: int, navs: Mapping[str, float], benchmark_price: float | None = None) -> None:
        """NAVs of the followed accounts (and the benchmark's price) at one sample time."""
        if self.next_close is None and self.session_ns is not None:
            self.next_close = ts + self.session_ns
        if self.next_snapshot is None:
            self.next_snapshot = ts + self.every_ns
        if benchmark_price is not None and np.isfinite(benchmark_price) and benchmark_price > 0:
            self._bench.append((ts, float(benchmark_price)))
            if self._bench0 is None:
                self._bench0 = float(benchmark_price)
        for account, nav in navs.items():
            series = self._navs.setdefault(account, deque(maxlen=BETA_SAMPLES + 1))
            series.append((ts, nav))
            peak = max(self._peak.get(account, nav), nav)
            self._peak[account] = peak
            if peak > 0:
                self._dd[account] = max(self._dd.get(account, 0.0), 1 - nav / peak)

    def margin_call(self, account: str) -> None:
        self._called.add(account)

    def session_due(self, ts: int) -> bool:
        """For an around-the-clock market: whether the session closed by ``ts``."""
        return self.next_close is not None and ts >= self.next_close

    def snapshot_due(self, ts: int) -> bool:
        """Whether the accounts are due a snapshot between closes; True moves the next one on."""
        if self.next_snapshot is None or ts < self.next_snapshot:
            return False
        while self.next_snapshot <= ts:
            self.next_snapshot += self.every_ns
        return True

    def close_session(self, ts: int) -> SessionEnded:
        """The session closes at ``ts`` (take the snapshots first: they carry its number)."""
        ended = SessionEnded(ts, self.session)
        self.session += 1
        if self.session_ns is not None and self.next_close is not None:
            while self.next_close <= ts:
                self.next_close += self.session_ns
        return ended

    # ------------------------------------------------------------------ figures
    def max_drawdown(self, account: str) -> float:
        return self._dd.get(account, 0.0)

    def benchmark_return(self) -> float | None:
        if self._bench0 is None or not self._bench:
            return None
        return self._bench[-1][1] / self._bench0 - 1

    def beta(self, account: str) -> float | None:
        """Beta of the account's NAV returns to the benchmark's, sample by sample."""
        series = self._navs.get(account)
        if series is None or not self._bench:
            return None
        bench = dict(self._bench)
        pairs = [(nav, bench[ts]) for ts, nav in series if ts in bench]
        if len(pairs) < BETA_MIN_SAMPLES + 1:
            return None
        a = np.array(pairs)
        r = a[1:] / a[:-1] - 1
        var = float(np.var(r[:, 1]))
        if not np.isfinite(var) or var == 0:
            return None
        return float(np.cov(r[:, 0], r[:, 1], ddof=0)[0, 1] / var)

    def snapshot(
        self, ts: int, account: str, *, nav: float, cash: float, start_nav: float, holdings: Iterable[Holding]
    ) -> AccountSnapshot:
        """The account's :class:`AccountSnapshot` now (a margin call is reported once)."""
        called = account in self._called
        self._called.discard(account)
        return AccountSnapshot(
            ts, account, self.session, nav, cash, start_nav, tuple(holdings), self.beta(account),
            self.benchmark_return(), nav / start_nav - 1 if start_nav else 0.0, self.max_drawdown(account), called,
        )  # fmt: skip
