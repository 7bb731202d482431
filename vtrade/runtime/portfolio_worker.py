"""The portfolio worker: folds ``exec`` fills and ``market`` prices into many accounts'
portfolios, publishes what changed on ``portfolio``, and samples NAV history into the store.

Partitioned by account: the ``exec`` topic (keyed by account) is shared by the workers of
one group, so each instance owns some accounts; every instance reads ALL of ``market``
(its own consumer group), since any account may hold any instrument. Changes are published
at most every ``publish_every`` of simulated time (the book's publish tolerance decides
which accounts changed enough to be sent).

Idempotent (a redelivered record is skipped by offset, a redelivered fill by its id) and
restartable: :meth:`PortfolioWorker.snapshot` captures the book with the offsets it covers,
and :meth:`PortfolioWorker.restore` continues from there, replaying only what came after.

>>> from vtrade.core.instruments import us_equity
>>> from vtrade.portfolio.book import PortfolioBook
>>> from vtrade.runtime.bus import open_bus
>>> bus = open_bus("memory://")
>>> book = PortfolioBook([us_equity("SPY")], prices={"SPY": 16765})
>>> book.open_account("ada", cash=1000)
>>> worker = PortfolioWorker(bus, book)
>>> worker.poll_once(), worker.stats["published"]
(0, 1)
"""

from __future__ import annotations

import pickle
from typing import Any

import pandas as pd

from vtrade.portfolio.book import PortfolioBook, UnknownAccountError
from vtrade.portfolio.events import PortfolioUpdate
from vtrade.runtime.bus import Bus, Deduplicator
from vtrade.runtime.store import Store, grid_times

EXEC, MARKET, PORTFOLIO = "exec", "market", "portfolio"


class PortfolioWorker:
    """Consumes ``topics`` as group ``group``; see the module docstring."""

    def __init__(
        self,
        bus: Bus,
        book: PortfolioBook,
        *,
        group: str = "portfolio",
        member: str = "0",
        store: Store | None = None,
        sample_every: str = "1min",
        partitions: int = 8,
    ) -> None:
        self.bus, self.book, self.store = bus, book, store
        self.sampler = NavSampler(book, store, sample_every)
        for topic in (EXEC, MARKET, PORTFOLIO):
            bus.create_topic(topic, partitions)
        self.accounts_in = bus.consumer(group, [EXEC], member_id=member)
        self.market_in = bus.consumer(f"{group}.market.{member}", [MARKET], member_id=member)
        self.seen = Deduplicator()
        self.version = 0
        self.stats = {"records": 0, "duplicates": 0, "unknown_account": 0, "published": 0}
        self.errors: list[str] = []

    def poll_once(self, max_records: int = 10_000, timeout_s: float = 0.0) -> int:
        """Fold one batch of records, publish changed accounts, sample history, commit."""
        # Both inputs in simulated-time order, so a fill and the prices around it fold as they happened.
        fills = self.accounts_in.poll(max_records=max_records, timeout_s=timeout_s)
        prices = self.market_in.poll(max_records=max_records, timeout_s=0.0)
        records = sorted(fills + prices, key=lambda r: (r.event.ts, r.topic != MARKET))
        for r in records:
            if not self.seen.is_new(r):
                self.stats["duplicates"] += 1
                continue
            self.seen.mark(r)
            self.stats["records"] += 1
            event = r.event
            self.sampler.advance(event.ts)
            try:
                self.book.apply(event)
            except UnknownAccountError as exc:
                # Bad input changes nothing; it is counted and kept for whoever looks.
                self.stats["unknown_account"] += 1
                self.errors.append(str(exc))
        self._publish()
        if fills:
            self.accounts_in.commit(fills)
        if prices:
            self.market_in.commit(prices)
        return len(records)

    def snapshot(self) -> bytes:
        """The book, the offsets it covers and the publish/sample positions."""
        state = (self.book, self.seen.watermarks, self.version, self.sampler.clock, dict(self.stats), list(self.errors))
        return pickle.dumps(state)

    @classmethod
    def restore(cls, bus: Bus, blob: bytes, **kwargs: Any) -> PortfolioWorker:
        """A worker that continues from ``blob`` (records it already covered are skipped)."""
        book, watermarks, version, clock, stats, errors = pickle.loads(blob)  # our own snapshot, never user input
        worker = cls(bus, book, **kwargs)
        worker.seen = Deduplicator(watermarks)
        worker.version, worker.sampler.clock, worker.stats, worker.errors = version, clock, stats, errors
        return worker

    def close(self) -> None:
        self.accounts_in.close()
        self.market_in.close()

    # ------------------------------------------------------------------ internals
    def _publish(self) -> None:
        changes = self.book.nav.publish(self.sampler.clock, self.version)
        if changes is None:
            return  # not due yet at the configured cadence
        self.version = changes.version
        if not len(changes.accounts):
            return
        names = self.book.accounts
        nav = self.book.nav
        for row in changes.accounts.tolist():
            if row >= len(names):
                continue
            update = PortfolioUpdate(
                self.sampler.clock, names[row], float(nav.nav[row]), float(nav.cash[row]), float(nav.gross[row]),
                float(nav.net[row]), float(nav.day_pnl[row]),
            )  # fmt: skip
            self.bus.publish(PORTFOLIO, names[row], update)
            self.stats["published"] += 1


class NavSampler:
    """Writes every account's NAV into the store at each point of a simulated-time grid.

    ``advance(ts)`` is called before an event at ``ts`` is folded, so a sample at grid time
    ``t`` holds the state after everything stamped before ``t``.
    """

    def __init__(self, book: PortfolioBook, store: Store | None, every: str = "1min") -> None:
        grid_times(0, 0, every)  # a bad grid name fails here, not at the first sample
        self.book, self.store, self.every = book, store, every
        self.clock = 0
        self.samples = 0

    def advance(self, ts: int) -> None:
        if self.store is not None and self.clock and ts > self.clock:
            for t in grid_times(self.clock + 1, ts, self.every).tolist():
                if t < ts:
                    self.store.append_nav(nav_rows(self.book, t))
                    self.samples += 1
        self.clock = max(self.clock, ts)


def nav_rows(book: PortfolioBook, ts: int) -> pd.DataFrame:
    """Every account's NAV view at ``ts`` as ``nav_history`` rows."""
    f = book.frame()
    return pd.DataFrame({
        "ts": ts, "account": f.index.astype(str), "nav": f.nav.to_numpy(), "cash": f.cash.to_numpy(),
        "gross": f.gross_exposure.to_numpy(), "net": f.net_exposure.to_numpy(), "day_pnl": f.day_pnl.to_numpy(),
    })  # fmt: skip
