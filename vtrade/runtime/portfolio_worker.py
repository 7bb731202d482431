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

Durable: given a :class:`~vtrade.runtime.execution_worker.SnapshotStore` (``snapshots=``), the
worker saves a snapshot every ``snapshot_every`` folded records and commits its input offsets
only up to what that snapshot covers, so the group's committed offsets never run ahead of the
latest snapshot. :meth:`PortfolioWorker.resume` builds a worker from the store's latest snapshot
(or a fresh book when there is none) and replays only what came after; a crash between two
snapshots costs a replay, never a fill.

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

import heapq
import logging
import pickle
from collections.abc import Callable
from typing import Any

import pandas as pd

from vtrade.ops.status import InputPartition
from vtrade.portfolio.book import PortfolioBook, UnknownAccountError
from vtrade.portfolio.events import PortfolioUpdate
from vtrade.runtime.bus import Bus, CommitError, Deduplicator, Record, TopicPartition
from vtrade.runtime.bus.base import check_count
from vtrade.runtime.execution_worker import SnapshotStore, WorkerSnapshot
from vtrade.runtime.store import Store, grid_times

EXEC, MARKET, PORTFOLIO = "exec", "market", "portfolio"
#: A portfolio worker's state sits in a :class:`SnapshotStore` under its group, the topic
#: ``portfolio.state.<member>`` (each member keeps the book of its own accounts) and partition 0;
#: the snapshot's ``engines`` map holds one blob, under :data:`STATE_KEY`.
STATE_TOPIC, STATE_KEY = "portfolio.state", "book"

log = logging.getLogger(__name__)


class PortfolioWorker:
    """Consumes ``exec`` (group ``group``) and ``market`` (a group of its own); see the module docstring.

    ``snapshots`` (optional) is where the worker saves its state every ``snapshot_every``
    folded records (and at :meth:`checkpoint`); with it, input offsets are committed only at
    snapshots. ``session_timeout_s`` is the consumers' session (how soon the group presumes a
    killed worker dead).
    """

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
        snapshots: SnapshotStore | None = None,
        snapshot_every: int = 1000,
        session_timeout_s: float = 10.0,
    ) -> None:
        self.bus, self.book, self.store = bus, book, store
        self.group, self.member = group, member
        self.snapshots = snapshots
        self.snapshot_every = check_count("snapshot_every", snapshot_every)
        self.sampler = NavSampler(book, store, sample_every)
        for topic in (EXEC, MARKET, PORTFOLIO):
            bus.create_topic(topic, partitions)
        self.accounts_in = bus.consumer(group, [EXEC], member_id=member, session_timeout_s=session_timeout_s)
        try:
            self.market_in = bus.consumer(
                f"{group}.market.{member}", [MARKET], member_id=member, session_timeout_s=session_timeout_s
            )
        except BaseException:
            self.accounts_in.close()
            raise
        self.seen = Deduplicator()
        self.version = 0
        self.stats = {"records": 0, "duplicates": 0, "unknown_account": 0, "published": 0}
        self.errors: list[str] = []
        # The last record folded per partition since the last snapshot: committed at the next one.
        self._uncommitted: dict[TopicPartition, Record] = {}
        self._since_snapshot = 0
        self._snapshot_at: dict[TopicPartition, int] = {}  # where a restart resumes, per input partition

    def poll_once(self, max_records: int = 10_000, timeout_s: float = 0.0) -> int:
        """Fold one batch of records, publish changed accounts, sample history, and commit
        (with a snapshot store: snapshot and commit once ``snapshot_every`` records were folded)."""
        fills = self.accounts_in.poll(max_records=max_records, timeout_s=timeout_s)
        prices = self.market_in.poll(max_records=max_records, timeout_s=0.0)
        records = _in_time_order(fills + prices)
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
        if self.snapshots is None:
            if fills:
                self.accounts_in.commit(fills)
            if prices:
                self.market_in.commit(prices)
        else:
            # Commit only what a saved snapshot covers: a crash must never leave the group's
            # offsets ahead of the state it can be restored from.
            for r in records:
                self._uncommitted[r.tp] = r
            self._since_snapshot += len(records)
            if self._since_snapshot >= self.snapshot_every:
                self.checkpoint()
        return len(records)

    def checkpoint(self) -> None:
        """Save a snapshot to ``snapshots`` and commit the input offsets it covers.

        A no-op without a snapshot store. A commit the group refuses (the partition moved to
        another member) is logged and dropped: the snapshot still covers it, and the new owner
        starts from the group's last commit and skips nothing it needs.
        """
        if self.snapshots is None:
            return
        key, state = f"{STATE_TOPIC}.{self.member}", {STATE_KEY: self.snapshot()}
        self.snapshots.save(WorkerSnapshot(self.group, key, 0, self.stats["records"], state, []))
        self._snapshot_at = {tp: offset + 1 for tp, offset in self.seen.watermarks.items()}
        pending, self._uncommitted = self._uncommitted, {}
        for consumer, topic in ((self.accounts_in, EXEC), (self.market_in, MARKET)):
            done = [r for tp, r in pending.items() if tp.topic == topic]
            if done:
                try:
                    consumer.commit(done)
                except CommitError as exc:
                    log.warning("portfolio checkpoint: %s", exc)
        self._since_snapshot = 0

    @classmethod
    def resume(
        cls,
        bus: Bus,
        snapshots: SnapshotStore,
        book: PortfolioBook | Callable[[], PortfolioBook],
        **kwargs: Any,
    ) -> PortfolioWorker:
        """A worker that continues from the latest snapshot in ``snapshots``, or starts on
        ``book`` (a book or a function making one) if the store holds none for this group.

        >>> from vtrade.core.instruments import us_equity
        >>> from vtrade.runtime.execution_worker import MemorySnapshotStore
        >>> from vtrade.runtime.bus import open_bus
        >>> bus, snaps = open_bus("memory://"), MemorySnapshotStore()
        >>> def new_book() -> PortfolioBook:
        ...     b = PortfolioBook([us_equity("SPY")], prices={"SPY": 16765})
        ...     b.open_account("ada", cash=1000)
        ...     return b
        >>> w = PortfolioWorker.resume(bus, snaps, new_book, snapshot_every=1)
        >>> w.checkpoint(); w.close()
        >>> PortfolioWorker.resume(bus, snaps, new_book).book.accounts
        ['ada']
        """
        group, member = kwargs.get("group", "portfolio"), kwargs.get("member", "0")
        snap = snapshots.latest(group, f"{STATE_TOPIC}.{member}", 0)
        if snap is None:
            return cls(bus, book() if callable(book) else book, snapshots=snapshots, **kwargs)
        return cls.restore(bus, snap.engines[STATE_KEY], snapshots=snapshots, **kwargs)

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
        if worker.snapshots is not None:  # the blob came from the store: a restart resumes there
            worker._snapshot_at = {tp: offset + 1 for tp, offset in worker.seen.watermarks.items()}
        worker.version, worker.sampler.clock, worker.stats, worker.errors = version, clock, stats, errors
        return worker

    @property
    def member_id(self) -> str:
        """This worker's member name in its groups."""
        return self.member

    def partition_status(self) -> list[InputPartition]:
        """The ``exec`` and ``market`` partitions this worker owns now (each under its group), with
        the offset a restart would resume from (None: no snapshot covers it): what its heartbeat says."""
        out = []
        for consumer, group in ((self.accounts_in, self.group), (self.market_in, self.market_in.group)):
            for tp in consumer.assignment():
                out.append(InputPartition(group, tp.topic, tp.partition, self._snapshot_at.get(tp)))
        return out

    def close(self) -> None:
        """Leave both groups without committing or checkpointing (call :meth:`checkpoint` first
        for a planned stop)."""
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


def _in_time_order(records: list[Record]) -> list[Record]:
    """The records merged in simulated-time order (prices before fills at equal times), each
    partition's records kept in offset order.

    A partition is not in time order across symbols (``exec`` is keyed by account, and the
    execution workers publish each symbol's outputs when they get to them), and the offset
    deduplication needs offset order: a plain sort by time would fold a later offset first and
    then skip the earlier one as already seen.

    >>> from vtrade.core.events import Trade, encode
    >>> def rec(topic: str, offset: int, ts: int) -> Record:
    ...     return Record(topic, 0, offset, "k", encode(Trade(ts, ts, "SPY", 1, 100, 1)), ts)
    >>> [(r.topic, r.offset) for r in _in_time_order([rec(EXEC, 0, 9), rec(EXEC, 1, 2), rec(MARKET, 0, 5)])]
    [('market', 0), ('exec', 0), ('exec', 1)]
    """
    streams: dict[TopicPartition, list[Record]] = {}
    for r in records:
        streams.setdefault(r.tp, []).append(r)
    return list(heapq.merge(*streams.values(), key=lambda r: (r.event.ts, r.topic != MARKET)))


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
