"""The execution worker (DESIGN.md §1, §4): one sequenced input per symbol in, execution events out.

Two pieces, both in the runtime shell around the pure :class:`~vtrade.execution.engine.ExecutionEngine`:

:class:`Sequencer`
    Merges a symbol's market events and order commands into ONE time-ordered stream on the
    ``exec.in`` topic, keyed by symbol. A command is re-stamped with the simulated time at which
    it reaches the exchange (its entry ``ts`` + entry latency); at equal times market data goes
    first, then commands in arrival order. The merge is thereby itself on the log: whoever reads
    ``exec.in`` sees the same sequence, on every run and every transport.

:class:`ExecutionWorker`
    Consumes ``exec.in`` in a consumer group, feeds each record's event to its symbol's engine,
    publishes the engine's outputs to ``exec`` keyed by account, and commits. It is idempotent
    (a record at or below the last applied offset of its partition is skipped) and restartable:
    every ``snapshot_every`` records it saves the partition's engines and offset to a
    :class:`SnapshotStore`; a new worker loads the latest snapshot and replays the log from there.

Exactly-once outputs. Replaying after a crash recomputes outputs the dead worker may already have
published. A snapshot records where the output topic ended when it was taken, so on restore the
worker reads the outputs its partition published since then and, as it recomputes them, checks
each against the log (byte for byte, :class:`DeterminismError` if they differ) instead of
publishing it again. The log therefore holds what an uninterrupted worker would have published;
fill ids stay deterministic (``<symbol>-f<n>``) for consumers that must also survive a zombie
worker publishing after it was replaced.

>>> from vtrade.core.events import BookSnapshot, Side
>>> from vtrade.core.instruments import us_equity
>>> from vtrade.execution.engine import EngineConfig
>>> from vtrade.execution.orders import OrderType, SubmitOrder
>>> from vtrade.runtime.bus import open_bus
>>> bus = open_bus("memory://")
>>> book = [BookSnapshot(t, t, "SPY", 1, [16764], [500], [16765], [300]) for t in (0, 5_000_000)]
>>> buy = SubmitOrder(1_000_000, "ana", "c1", "SPY", Side.BUY, OrderType.MARKET, 100)
>>> Sequencer(bus, entry_latency="1ms").feed(book, [buy])
3
>>> [(type(r.event).__name__, r.event.ts) for r in read_topic(bus, "exec.in")]
[('BookSnapshot', 0), ('SubmitOrder', 2000000), ('BookSnapshot', 5000000)]
>>> worker = ExecutionWorker(bus, {"SPY": EngineConfig(us_equity("SPY"))}, snapshot_every=100)
>>> worker.run()
3
>>> [type(r.event).__name__ for r in read_topic(bus, "exec")]
['OrderAccepted', 'OrderFilled']
>>> worker.close()
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import msgspec
import numpy as np

from vtrade.core.errors import VtradeError
from vtrade.core.events import Event, MarketBatch, MarketEvent, encode
from vtrade.core.ids import partition_for
from vtrade.core.rng import seeded_rng
from vtrade.execution import events as ev
from vtrade.execution.engine import EngineConfig, ExecutionEngine
from vtrade.execution.latency import ConstantLatency, LatencyModel
from vtrade.execution.orders import CancelOrder, ReplaceOrder, SubmitOrder
from vtrade.execution.venue import MARKET, Merge, expire_before, step
from vtrade.ops.status import InputPartition
from vtrade.runtime.bus.base import (
    Bus,
    Closeable,
    CommitError,
    Consumer,
    Deduplicator,
    NotAssignedError,
    Record,
    TopicPartition,
    UnknownTopicError,
    check_count,
)

__all__ = [
    "INPUT_TOPIC",
    "OUTPUT_TOPIC",
    "DeterminismError",
    "DuckDBSnapshotStore",
    "ExecutionWorker",
    "MemorySnapshotStore",
    "Sequencer",
    "SnapshotStore",
    "WorkerSnapshot",
    "WorkerStats",
    "merge",
    "output_hash",
    "read_topic",
]

log = logging.getLogger(__name__)

#: The sequenced input of the execution workers (market data and commands, keyed by symbol).
INPUT_TOPIC = "exec.in"
#: What the execution workers publish (order status and fills, keyed by account).
OUTPUT_TOPIC = "exec"
#: Partitions given to a topic this module creates.
DEFAULT_PARTITIONS = 8

_COMMANDS = (SubmitOrder, CancelOrder, ReplaceOrder)
Command = SubmitOrder | CancelOrder | ReplaceOrder
EngineConfigs = Mapping[str, EngineConfig] | Callable[[str], EngineConfig]


class DeterminismError(VtradeError):
    """A restarted worker computed an output that differs from the one already on the log for the
    same input: the engine is not a pure function of its input (DESIGN.md §4), or the engine code
    or configuration changed between the two runs."""


def _ensure_topic(bus: Bus, topic: str, partitions: int) -> int:
    """The partition count of ``topic``, creating it with ``partitions`` if it does not exist."""
    try:
        return bus.partitions(topic)
    except UnknownTopicError:
        bus.create_topic(topic, partitions)
        return bus.partitions(topic)


def _latency(value: str | int | LatencyModel) -> LatencyModel:
    if isinstance(value, LatencyModel):
        return value
    from vtrade.runtime.replay import parse_duration

    return ConstantLatency(parse_duration(value))


# ----------------------------------------------------------------------------------------------
# the sequencer


@dataclass
class _SymbolQueue:
    rng: np.random.Generator
    merge: Merge = field(default_factory=Merge)  # the venue's merge rule, without the engine


class Sequencer:
    """Merges market events and order commands into one time-ordered input per symbol.

    ``command(c)`` stamps ``c`` with its exchange arrival time (``c.ts`` + a draw of
    ``entry_latency``, from a Generator seeded by ``(seed, symbol)``) and holds it;
    ``market(e)`` releases every held command of ``e``'s symbol that arrives strictly before
    ``e``, then ``e`` itself. The order is the venue's merge rule (:mod:`vtrade.execution.venue`,
    the same :class:`~vtrade.execution.venue.Merge` replay and the live market step through): a
    command arriving at the same nanosecond as market data comes after it, and commands
    arriving together keep the order they were given in. A command whose arrival time the
    market has already passed (it reached the sequencer late) is stamped with the current
    market time: the log never goes back in time. ``flush()`` releases everything still held
    (end of the data).

    Released events are published to ``topic`` keyed by symbol (``bus=None``: only returned).
    Market events are published as they are; commands with ``ts`` = arrival time (the
    ``orders`` topic keeps their entry time).

    >>> from vtrade.core.events import Trade, Side
    >>> from vtrade.execution.orders import OrderType, SubmitOrder
    >>> s = Sequencer(None, entry_latency=10)
    >>> s.command(SubmitOrder(0, "a", "c1", "SPY", Side.BUY, OrderType.MARKET, 1))
    10
    >>> [type(e).__name__ for e in s.market(Trade(10, 10, "SPY", 1, 100, 1))]  # a tie: market first
    ['Trade']
    >>> [(type(e).__name__, e.ts) for e in s.market(Trade(11, 11, "SPY", 2, 100, 1))]
    [('SubmitOrder', 10), ('Trade', 11)]
    """

    def __init__(
        self,
        bus: Bus | None,
        *,
        topic: str = INPUT_TOPIC,
        partitions: int = DEFAULT_PARTITIONS,
        entry_latency: str | int | LatencyModel = 0,
        seed: int = 0,
    ) -> None:
        self.bus = bus
        self.topic = topic
        self.latency = _latency(entry_latency)
        self.seed = seed
        self._queues: dict[str, _SymbolQueue] = {}
        self.published = 0
        if bus is not None:
            _ensure_topic(bus, topic, partitions)

    def _queue(self, symbol: str) -> _SymbolQueue:
        q = self._queues.get(symbol)
        if q is None:
            q = self._queues[symbol] = _SymbolQueue(seeded_rng(self.seed, symbol))
        return q

    def command(self, command: Command) -> int:
        """Hold ``command`` until market data passes its arrival time; returns that time (ns)."""
        if not isinstance(command, _COMMANDS):
            raise TypeError(f"a command is a SubmitOrder, CancelOrder or ReplaceOrder, got {type(command).__name__}")
        q = self._queue(command.symbol)
        arrival = command.ts + self.latency.entry(q.rng)
        return q.merge.command(msgspec.structs.replace(command, ts=arrival)).ts

    def market(self, event: MarketEvent) -> list[Event]:
        """Release (and publish) the held commands arriving before ``event``, then ``event``."""
        if not isinstance(event, MarketEvent):
            raise TypeError(f"market data must be a MarketEvent, got {type(event).__name__}")
        merge = self._queue(event.symbol).merge
        # Nothing can still come before this event: a later command is clamped to its time.
        out = merge.take((merge.market(event), MARKET))
        self._publish(out)
        return out

    def flush(self) -> list[Event]:
        """Release (and publish) every command still held, symbol by symbol."""
        out: list[Event] = []
        for symbol in sorted(self._queues):
            out.extend(self._queues[symbol].merge.take())
        self._publish(out)
        return out

    def feed(self, market: Iterable[MarketEvent], commands: Iterable[Command] = (), *, batch: int = 1000) -> int:
        """Sequence a whole recorded session: hold every command, stream the market data,
        flush. Publishes in batches of ``batch`` records; returns how many were published."""
        check_count("batch", batch)
        for c in commands:
            self.command(c)
        bus, self.bus = self.bus, None  # collect here, publish in batches below
        n = 0
        pending: list[Event] = []
        try:
            for e in market:
                pending.extend(self.market(e))
                if len(pending) >= batch:
                    n += self._publish_to(bus, pending)
                    pending = []
            pending.extend(self.flush())
            n += self._publish_to(bus, pending)
        finally:
            self.bus = bus
        return n

    def _publish(self, events: list[Event]) -> None:
        self._publish_to(self.bus, events)

    def _publish_to(self, bus: Bus | None, events: list[Event]) -> int:
        if bus is None or not events:
            return 0
        bus.publish_many(self.topic, [(e.symbol, e) for e in events])  # type: ignore[attr-defined]
        self.published += len(events)
        return len(events)


def merge(
    market: Iterable[MarketEvent],
    commands: Iterable[Command] = (),
    *,
    entry_latency: str | int | LatencyModel = 0,
    seed: int = 0,
) -> Iterator[Event]:
    """The sequence a :class:`Sequencer` would publish, without a bus (for tests and notebooks).

    >>> from vtrade.core.events import Trade, Side
    >>> from vtrade.execution.orders import CancelOrder
    >>> trades = [Trade(t, t, "SPY", t, 100, 1) for t in (0, 5, 9)]
    >>> [(type(e).__name__, e.ts) for e in merge(trades, [CancelOrder(1, "a", "c1", "SPY")], entry_latency=4)]
    [('Trade', 0), ('Trade', 5), ('CancelOrder', 5), ('Trade', 9)]
    """
    s = Sequencer(None, entry_latency=entry_latency, seed=seed)
    for c in commands:
        s.command(c)
    for e in market:
        yield from s.market(e)
    yield from s.flush()


# ----------------------------------------------------------------------------------------------
# snapshots


class WorkerSnapshot(msgspec.Struct, frozen=True):
    """One input partition's worker state after applying the record at ``offset``.

    ``offset`` is -1 before any record. ``engines`` maps symbol to
    :meth:`ExecutionEngine.snapshot` bytes. ``output_offsets`` are the end offsets of the
    output topic's partitions when the snapshot was taken: every output of the records up to
    ``offset`` lies before them.
    """

    group: str
    topic: str
    partition: int
    offset: int
    engines: dict[str, bytes]
    output_offsets: list[int]


_snap_encoder = msgspec.msgpack.Encoder()
_snap_decoder = msgspec.msgpack.Decoder(WorkerSnapshot)


class SnapshotStore(ABC):
    """Where workers keep their snapshots: the latest few per (group, topic, partition)."""

    @abstractmethod
    def save(self, snapshot: WorkerSnapshot) -> None:
        """Store ``snapshot`` (older ones beyond the store's ``keep`` may be dropped)."""

    @abstractmethod
    def latest(self, group: str, topic: str, partition: int) -> WorkerSnapshot | None:
        """The snapshot with the highest offset for this partition, or None."""

    @abstractmethod
    def partitions(self, group: str, topic: str) -> dict[int, int]:
        """Partition -> offset of its latest snapshot, for every partition the group snapshotted."""


class MemorySnapshotStore(SnapshotStore):
    """Snapshots in a dict of this process (the default; gone when the process ends).

    >>> s = MemorySnapshotStore()
    >>> s.save(WorkerSnapshot("exec", "exec.in", 0, 41, {}, [0]))
    >>> s.latest("exec", "exec.in", 0).offset, s.partitions("exec", "exec.in")
    (41, {0: 41})
    """

    def __init__(self, keep: int = 2) -> None:
        self.keep = check_count("keep", keep)
        self._snaps: dict[tuple[str, str, int], list[bytes]] = {}
        self._lock = threading.Lock()

    def save(self, snapshot: WorkerSnapshot) -> None:
        blob = _snap_encoder.encode(snapshot)  # stored encoded: a later mutation cannot leak in
        with self._lock:
            kept = self._snaps.setdefault((snapshot.group, snapshot.topic, snapshot.partition), [])
            kept.append(blob)
            del kept[: -self.keep]

    def latest(self, group: str, topic: str, partition: int) -> WorkerSnapshot | None:
        with self._lock:
            kept = self._snaps.get((group, topic, partition))
            return _snap_decoder.decode(kept[-1]) if kept else None

    def partitions(self, group: str, topic: str) -> dict[int, int]:
        with self._lock:
            keys = sorted(k for k in self._snaps if k[:2] == (group, topic))
        out: dict[int, int] = {}
        for _, _, p in keys:
            s = self.latest(group, topic, p)
            if s is not None:
                out[p] = s.offset
        return out


class DuckDBSnapshotStore(SnapshotStore, Closeable):
    """Snapshots in a DuckDB table ``worker_snapshots`` (``path``: a file, or ``":memory:"``).

    A file store survives the process: point a restarted worker at the same file.

    >>> with DuckDBSnapshotStore() as s:
    ...     s.save(WorkerSnapshot("exec", "exec.in", 3, 99, {"SPY": b"..."}, [7, 2]))
    ...     s.latest("exec", "exec.in", 3).engines
    {'SPY': b'...'}
    """

    _TABLE = "worker_snapshots"

    def __init__(self, path: str | os.PathLike[str] = ":memory:", *, keep: int = 2) -> None:
        self.path = os.fspath(path)
        self.keep = check_count("keep", keep)
        self._con = duckdb.connect(self.path)
        self._lock = threading.Lock()
        self._closed = False
        self._con.execute(
            f"CREATE TABLE IF NOT EXISTS {self._TABLE} (grp VARCHAR NOT NULL, topic VARCHAR NOT NULL, "
            '"partition" INTEGER NOT NULL, "offset" BIGINT NOT NULL, blob BLOB NOT NULL, '
            'PRIMARY KEY (grp, topic, "partition", "offset"))'
        )

    def save(self, snapshot: WorkerSnapshot) -> None:
        key = [snapshot.group, snapshot.topic, snapshot.partition]
        with self._lock:
            self._check_open()
            con = self._con
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(
                    f"INSERT OR REPLACE INTO {self._TABLE} VALUES (?, ?, ?, ?, ?)",
                    [*key, snapshot.offset, _snap_encoder.encode(snapshot)],
                )
                con.execute(
                    f'DELETE FROM {self._TABLE} WHERE grp = ? AND topic = ? AND "partition" = ? AND "offset" NOT IN '
                    f'(SELECT "offset" FROM {self._TABLE} WHERE grp = ? AND topic = ? AND "partition" = ? '
                    f'ORDER BY "offset" DESC LIMIT ?)',
                    [*key, *key, self.keep],
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def latest(self, group: str, topic: str, partition: int) -> WorkerSnapshot | None:
        with self._lock:
            self._check_open()
            rows = self._con.execute(
                f'SELECT blob FROM {self._TABLE} WHERE grp = ? AND topic = ? AND "partition" = ? '
                'ORDER BY "offset" DESC LIMIT 1',
                [group, topic, partition],
            ).fetchall()
        return _snap_decoder.decode(bytes(rows[0][0])) if rows else None

    def partitions(self, group: str, topic: str) -> dict[int, int]:
        with self._lock:
            self._check_open()
            rows = self._con.execute(
                f'SELECT "partition", max("offset") FROM {self._TABLE} WHERE grp = ? AND topic = ? '
                'GROUP BY "partition" ORDER BY "partition"',
                [group, topic],
            ).fetchall()
        return {int(p): int(o) for p, o in rows}

    def _check_open(self) -> None:
        if self._closed:
            raise VtradeError(f"the snapshot store {self.path!r} is closed")

    def close(self) -> None:
        """Close the database. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._con.close()


# ----------------------------------------------------------------------------------------------
# the worker


@dataclass
class WorkerStats:
    """Counters of one worker's life (not part of any snapshot)."""

    applied: int = 0  # records fed to an engine
    duplicates: int = 0  # records skipped: at or below the partition's last applied offset
    published: int = 0  # output events appended to the output topic
    suppressed: int = 0  # recomputed outputs already on the output topic (after a restart)
    snapshots: int = 0
    restored: int = 0  # partitions opened from a snapshot
    rejected_inputs: int = 0  # records that were not events, or that the engine refused with an error


@dataclass
class _Partition:
    tp: TopicPartition
    engines: dict[str, ExecutionEngine]
    dedup: Deduplicator
    since_snapshot: int = 0
    # output partition -> (offset, value) of the outputs on the log still to be matched
    on_log: dict[int, deque[tuple[int, bytes]]] = field(default_factory=dict)

    @property
    def offset(self) -> int:
        return self.dedup.watermarks.get(self.tp, -1)


class ExecutionWorker(Closeable):
    """Consumes ``exec.in``, runs each symbol's engine, publishes to ``exec`` (see the module docstring).

    ``engine_config_for_symbol`` is a mapping or a function ``symbol -> EngineConfig``; a
    command for a symbol it does not know (KeyError/LookupError) is rejected with
    ``unknown_symbol``, market data for it is ignored. Each :meth:`poll_once` applies a batch,
    publishes each record's outputs as soon as it is applied, and commits the batch.
    Snapshots are per input partition, every ``snapshot_every`` applied records and when a
    worker first takes a partition that has none. Run one live worker per input partition at
    a time (several workers of a group share the partitions out).

    ``publish=False`` makes a *mirror*: it runs the same engines over the same input, so its
    books are the exchange's, but publishes nothing. A live market whose execution runs in other
    processes keeps one to admit orders against the touch and to draw depth.

    >>> from vtrade.runtime.bus import open_bus
    >>> bus = open_bus("memory://")
    >>> w = ExecutionWorker(bus, {}, snapshot_every=10_000)
    >>> w.run(), w.stats.applied
    (0, 0)
    """

    def __init__(
        self,
        bus: Bus,
        engine_config_for_symbol: EngineConfigs,
        *,
        group: str = "exec",
        snapshot_every: int = 10_000,
        store: SnapshotStore | None = None,
        input_topic: str = INPUT_TOPIC,
        output_topic: str = OUTPUT_TOPIC,
        partitions: int = DEFAULT_PARTITIONS,
        member_id: str | None = None,
        session_timeout_s: float = 10.0,
        publish: bool = True,
    ) -> None:
        self.bus = bus
        self.publish = publish
        self.group = group
        self.snapshot_every = check_count("snapshot_every", snapshot_every)
        self.store: SnapshotStore = store if store is not None else MemorySnapshotStore()
        self.input_topic = input_topic
        self.output_topic = output_topic
        self._configs = engine_config_for_symbol
        self._n_in = _ensure_topic(bus, input_topic, partitions)
        n_out = _ensure_topic(bus, output_topic, partitions)  # a mirror's market reads it: it must exist
        self._n_out = n_out if publish else 0  # a mirror has no outputs of its own to match or point at
        self._parts: dict[TopicPartition, _Partition] = {}
        #: Per output partition, one past the last record this worker published (what an
        #: in-process reader of its outputs waits for, without asking the broker).
        self.published_ends = [0] * self._n_out
        self.stats = WorkerStats()
        self._consumer: Consumer = bus.consumer(
            group, input_topic, member_id=member_id, session_timeout_s=session_timeout_s
        )

    @classmethod
    def restore(
        cls, bus: Bus, engine_config_for_symbol: EngineConfigs, *, store: SnapshotStore, **options: Any
    ) -> ExecutionWorker:
        """A worker that resumes from the latest snapshots in ``store`` (LookupError if it holds
        none for the group): each partition restarts from its snapshot's offset, whatever the
        group committed, and outputs already on the log are checked, not published again.

        >>> from vtrade.runtime.bus import open_bus
        >>> ExecutionWorker.restore(open_bus("memory://"), {}, store=MemorySnapshotStore())
        Traceback (most recent call last):
        ...
        LookupError: the snapshot store holds no snapshot of group 'exec' on 'exec.in': nothing to restore
        """
        group = options.get("group", "exec")
        topic = options.get("input_topic", INPUT_TOPIC)
        if not store.partitions(group, topic):
            raise LookupError(
                f"the snapshot store holds no snapshot of group {group!r} on {topic!r}: nothing to restore"
            )
        return cls(bus, engine_config_for_symbol, store=store, **options)

    # -- the loop -------------------------------------------------------------------------------

    def run(
        self,
        *,
        idle_timeout_s: float | None = 0.0,
        max_records: int | None = None,
        batch: int = 500,
        stop: threading.Event | None = None,
    ) -> int:
        """Process records until none arrive within ``idle_timeout_s`` (0: until the log is
        drained; None: never), ``max_records`` were polled, or ``stop`` is set. Returns how
        many records were polled."""
        check_count("batch", batch)
        total = 0
        while stop is None or not stop.is_set():
            limit = batch if max_records is None else min(batch, max_records - total)
            if limit <= 0:
                break
            n = self.poll_once(limit, timeout_s=0.1 if idle_timeout_s is None else idle_timeout_s)
            total += n
            if n == 0 and idle_timeout_s is not None:
                break
        return total

    def poll_once(self, max_records: int = 500, timeout_s: float = 0.0, *, commit: bool = True) -> int:
        """Poll one batch, apply it, publish the outputs and (unless ``commit=False``) commit.
        Returns how many records the poll delivered."""
        records = self._consumer.poll(max_records, timeout_s)
        owned = set(self._consumer.assignment())
        for tp in [tp for tp in self._parts if tp not in owned]:
            del self._parts[tp]  # another member has it now; its snapshot is the truth from here
        done: list[Record] = []
        rewound: set[TopicPartition] = set()
        for r in records:
            if r.tp in rewound or r.tp not in owned:
                continue
            part = self._parts.get(r.tp)
            if part is None or r.offset > part.offset + 1:
                # A partition new to this worker, or a gap (the state missed records: the group
                # committed past it, or the partition came back from another member): start
                # from the store's latest snapshot, and rewind to just after it if need be.
                part = self._open(r.tp)
                if r.offset > part.offset + 1:
                    rewound.add(r.tp)
                    try:
                        self._consumer.seek(r.topic, r.partition, part.offset + 1)
                    except NotAssignedError:  # the group moved it meanwhile: its new owner goes on
                        del self._parts[r.tp]
                    # The seek synced with the group, which may have taken other partitions of
                    # this batch away meanwhile: the rest of their records is the new owner's.
                    owned = set(self._consumer.assignment())
                    continue
            if part.dedup.is_new(r):
                self._apply(part, r)
                part.dedup.mark(r)
                part.since_snapshot += 1
                if part.since_snapshot >= self.snapshot_every:
                    self._save(part)
            else:
                self.stats.duplicates += 1
            done.append(r)
        done = [r for r in done if r.tp in owned]  # a new owner redoes the others (and checks the outputs)
        if commit and done:
            try:
                self._consumer.commit(done)
            except CommitError as exc:  # fenced: the partition was reassigned while we worked
                log.warning("%s; dropping its state", exc)
                self._parts.clear()
        return len(records)

    def checkpoint(self) -> None:
        """Snapshot every partition this worker holds now (e.g. before a planned shutdown)."""
        for part in self._parts.values():
            self._save(part)

    def close(self) -> None:
        """Leave the group without committing (what was not committed is redelivered)."""
        self._consumer.close()

    # -- state ----------------------------------------------------------------------------------

    def owned(self) -> list[int]:
        """The input partitions this worker's group member holds now."""
        return sorted(tp.partition for tp in self._consumer.assignment())

    @property
    def member_id(self) -> str:
        """This worker's member id in its group."""
        return self._consumer.member_id

    def partition_status(self) -> list[InputPartition]:
        """The input partitions this worker owns now, each with the offset a restart would resume
        from (its latest snapshot in the store; None if it has none yet): what its heartbeat says.

        >>> from vtrade.runtime.bus import open_bus
        >>> w = ExecutionWorker(open_bus("memory://"), {}, partitions=1)
        >>> w.partition_status()
        [InputPartition(group='exec', topic='exec.in', partition=0, snapshot=None)]
        """
        snaps = self.store.partitions(self.group, self.input_topic)
        return [InputPartition(self.group, tp.topic, tp.partition, snaps[tp.partition] + 1 if tp.partition in snaps
                               else None) for tp in self._consumer.assignment()]  # fmt: skip

    @property
    def offsets(self) -> dict[TopicPartition, int]:
        """Last applied input offset per partition this worker holds."""
        return {tp: p.offset for tp, p in sorted(self._parts.items())}

    def engine(self, symbol: str) -> ExecutionEngine | None:
        """The live engine of ``symbol``, if this worker holds its partition and has seen it."""
        tp = TopicPartition(self.input_topic, partition_for(symbol, self._n_in))
        part = self._parts.get(tp)
        return None if part is None else part.engines.get(symbol)

    def _open(self, tp: TopicPartition) -> _Partition:
        snap = self.store.latest(self.group, tp.topic, tp.partition)
        if snap is None:
            # No snapshot of this partition in this worker's store: the partition is new, or
            # another worker ran it (workers on other machines keep stores of their own; it may
            # have published outputs and died before committing), or the store was lost. So the
            # replay starts at input offset 0 (see poll_once) and checks the outputs already on
            # the log from its start instead of publishing them again; the genesis snapshot
            # points there too.
            starts = [0] * self._n_out
            part = _Partition(tp, {}, Deduplicator(), on_log=self._published_since(tp, starts))
            self._parts[tp] = part
            self._save(part, output_offsets=starts)
            return part
        engines = {s: ExecutionEngine.restore(blob) for s, blob in sorted(snap.engines.items())}
        marks = {(tp.topic, tp.partition): snap.offset} if snap.offset >= 0 else {}
        part = _Partition(tp, engines, Deduplicator(marks), on_log=self._published_since(tp, snap.output_offsets))
        self._parts[tp] = part
        self.stats.restored += 1
        return part

    def _published_since(self, tp: TopicPartition, starts: list[int]) -> dict[int, deque[tuple[int, bytes]]]:
        """Outputs of input partition ``tp`` on the output log from ``starts`` on, per output partition."""
        found: dict[int, deque[tuple[int, bytes]]] = {}
        if not self._n_out:
            return found
        ends = self.bus.end_offsets(self.output_topic)  # one look at the log, not one per read
        for q in range(self._n_out):
            offset = starts[q] if q < len(starts) else 0
            while offset < ends[q] and (batch := self.bus.read(self.output_topic, q, offset, 1000)):
                for r in batch:
                    symbol = getattr(r.event, "symbol", None)
                    if isinstance(symbol, str) and partition_for(symbol, self._n_in) == tp.partition:
                        found.setdefault(q, deque()).append((r.offset, r.value))
                offset = batch[-1].offset + 1
        return found

    def _save(self, part: _Partition, output_offsets: list[int] | None = None) -> None:
        if output_offsets is None:
            # Where this partition's outputs after the snapshot begin: the end of the output log,
            # unless a replay is still matching outputs already there (a previous owner got
            # further), which begin at the first one not matched yet.
            output_offsets = [
                pending[0][0] if (pending := part.on_log.get(q)) else end
                for q, end in enumerate(self.bus.end_offsets(self.output_topic))
            ]
        snap = WorkerSnapshot(
            self.group, part.tp.topic, part.tp.partition, part.offset,
            {s: e.snapshot() for s, e in sorted(part.engines.items())}, output_offsets,
        )  # fmt: skip
        self.store.save(snap)
        part.since_snapshot = 0
        self.stats.snapshots += 1

    def _config(self, symbol: str) -> EngineConfig | None:
        try:
            if callable(self._configs):
                return self._configs(symbol)
            return self._configs[symbol]
        except LookupError:
            return None

    def _apply(self, part: _Partition, r: Record) -> None:
        self.stats.applied += 1
        try:
            event = r.event
        except ValueError as exc:
            self.stats.rejected_inputs += 1
            log.warning("%s[%d]@%d is not a vtrade event, skipped: %s", r.topic, r.partition, r.offset, exc)
            return
        if not isinstance(event, MarketEvent | SubmitOrder | CancelOrder | ReplaceOrder):
            self.stats.rejected_inputs += 1
            log.warning("%s[%d]@%d holds a %s, not market data or a command: skipped",
                        r.topic, r.partition, r.offset, type(event).__name__)  # fmt: skip
            return
        engine = part.engines.get(event.symbol)
        if engine is None:
            config = self._config(event.symbol)
            if config is None:
                if isinstance(event, _COMMANDS):
                    self._emit(part, [ev.OrderRejected(
                        event.ts, event.account, event.client_order_id, event.symbol, ev.RejectCode.UNKNOWN_SYMBOL,
                        f"no exchange trades {event.symbol!r} in this session",
                    )])  # fmt: skip
                return
            engine = part.engines[event.symbol] = ExecutionEngine(config)
        # The venue step (vtrade.execution.venue.step): the expiries that order before the
        # record, then the record; kept apart so a refused record keeps its expiries.
        batch = isinstance(event, MarketBatch)  # its step runs its own expiries, event by event
        expired = [] if batch else expire_before(engine, event)
        try:
            out = step(engine, event) if batch else engine.step(event)
        except (VtradeError, ValueError) as exc:
            # Deterministic: the same record fails the same way on every run.
            self.stats.rejected_inputs += 1
            log.warning("%s[%d]@%d refused by the %s engine: %s", r.topic, r.partition, r.offset, event.symbol, exc)
            out = []
        self._emit(part, expired + out)

    def _emit(self, part: _Partition, outputs: list[ev.ExecEvent]) -> None:
        if not self.publish:
            return
        fresh: list[tuple[str, Event]] = []
        for e in outputs:
            pending = part.on_log.get(partition_for(e.account, self._n_out))
            if pending:
                _, seen = pending.popleft()
                if seen != encode(e):
                    raise DeterminismError(
                        f"{part.tp.topic}[{part.tp.partition}] after offset {part.offset}: recomputed {e!r}, but the "
                        f"{self.output_topic!r} log already holds a different event in its place"
                    )
                self.stats.suppressed += 1
                continue
            fresh.append((e.account, e))
        if fresh:
            for md in self.bus.publish_many(self.output_topic, fresh):
                self.published_ends[md.partition] = max(self.published_ends[md.partition], md.offset + 1)
            self.stats.published += len(fresh)

    def __repr__(self) -> str:
        return f"<ExecutionWorker group={self.group!r} {self.input_topic!r} -> {self.output_topic!r} {self.stats}>"


# ----------------------------------------------------------------------------------------------
# helpers for tests and notebooks


def read_topic(bus: Bus, topic: str) -> list[Record]:
    """Every record of ``topic``, partition by partition in offset order.

    >>> from vtrade.runtime.bus import open_bus
    >>> bus = open_bus("memory://")
    >>> bus.create_topic("t", 2)
    >>> _ = bus.publish("t", "k", b"x")
    >>> [r.value for r in read_topic(bus, "t")]
    [b'x']
    """
    out: list[Record] = []
    for p in range(bus.partitions(topic)):
        offset = 0
        while batch := bus.read(topic, p, offset, 1000):
            out.extend(batch)
            offset = batch[-1].offset + 1
    return out


def output_hash(bus: Bus, topic: str = OUTPUT_TOPIC) -> str:
    """SHA-256 of what DESIGN.md §4 makes deterministic: for each symbol, its events on
    ``topic``, partition by partition in log order (with keys and timestamps).

    How the events of *different* symbols interleave within a partition depends on which
    worker ran when, so it is left out: equal hashes mean every symbol's output is
    byte-identical. Records that are not events with a ``symbol`` count under ``""``.

    >>> from vtrade.core.events import Trade
    >>> from vtrade.runtime.bus import open_bus
    >>> a, b = open_bus("memory://"), open_bus("memory://")
    >>> spy, qqq = Trade(1, 1, "SPY", 1, 100, 1), Trade(1, 1, "QQQ", 1, 200, 1)
    >>> for bus, events in ((a, [spy, qqq]), (b, [qqq, spy])):  # two schedules
    ...     bus.create_topic("t", 1)
    ...     _ = bus.publish_many("t", [("k", e) for e in events])
    >>> output_hash(a, "t") == output_hash(b, "t")
    True
    """
    streams: dict[tuple[str, int], list[Record]] = {}
    for r in read_topic(bus, topic):
        try:
            symbol = getattr(r.event, "symbol", "")
        except ValueError:
            symbol = ""
        streams.setdefault((str(symbol), r.partition), []).append(r)
    h = hashlib.sha256()
    for (symbol, partition), records in sorted(streams.items()):
        h.update(f"{symbol}|{partition}|{len(records)}|".encode())
        for r in records:
            key = r.key.encode()
            h.update(f"{len(key)}:{r.timestamp_ns}:{len(r.value)}:".encode())
            h.update(key)
            h.update(r.value)
    return h.hexdigest()
