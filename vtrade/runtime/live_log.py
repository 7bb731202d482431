"""The live market's event log (DESIGN.md §1): the topics it writes and reads, the embedded
execution worker, and what makes it durable under a data directory.

Three topics on one :class:`~vtrade.runtime.bus.Bus`:

``orders`` (one partition, so entries keep one total order)
    What people enter: :class:`OpenAccount`, :class:`SubmitOrder`, :class:`CancelOrder`,
    :class:`CloseSession`, and a teacher's market events (:class:`MarketShock`,
    :class:`TradingHalt`, :class:`LiquidityDrought`). It is the input the market cannot
    recompute, so with a data dir each entry is in the on-disk journal before the caller gets
    an answer.
``exec.in`` (keyed by symbol)
    The sequenced exchange input: every venue's market data, a :class:`Clock` at each slice
    end, and the commands the broker admitted, merged by the
    :class:`~vtrade.runtime.execution_worker.Sequencer` (the venue's merge rule).
``exec`` (keyed by account)
    What the :class:`~vtrade.runtime.execution_worker.ExecutionWorker` publishes: acceptances,
    fills, cancels, expiries. The market's account views fold it.

**Where execution runs.** By default (``execution="embedded"``) the market runs its own
:class:`ExecutionWorker` over ``exec.in`` right after publishing each slice. With
``execution="remote"`` the execution workers of group ``exec`` (``vtrade worker execution``, in
other processes or machines, as many as there are to share the partitions) publish ``exec``,
and the market waits for them: after each slice it waits until the group has committed every
record of ``exec.in`` it published (a worker publishes a record's outputs before committing
it), then folds ``exec`` up to its end. So a slice's reports are the same whatever runs them,
and the outputs are the same on every transport and process layout. The market still runs a
mirror of the engines (:class:`ExecutionWorker` with ``publish=False``): it admits orders
against the touch and draws depth from its own copy of the books, and publishes nothing.

**Several processes on one log** (``vtrade serve --bus`` more than once, or ``vtrade up
--ui-processes N``). Everything but ``orders`` is a deterministic function of the configuration
and the entries, so every UI process runs its own copy of the market and folds the same log:
:func:`claim_pace` makes the first process to open the log its *pacer*, which puts a
:class:`~vtrade.execution.orders.SliceTick` on ``orders`` before each slice and folds up to it;
the others are *replicas* (``LiveLog(entries_bus=...)``): they publish their people's entries on
the shared ``orders``, run a slice wherever the log has a tick, and keep what they derive
(``exec.in``, ``exec``, the account feed) on a bus of their own. Every process folds the same
entries at the same places among the same slices, so an account reads the same from any of them;
a replica answers its own person once it has folded the entry.

Everything but ``orders`` is a deterministic function of the configuration and the entries, so
the embedded default keeps those two topics in memory with a short retention
(:meth:`MemoryBus.trim`) and, with a data dir, :class:`Durable` keeps the entries journal and
periodic checkpoints of the whole market; a restart loads the latest checkpoint and re-runs the
entries after it (see :mod:`vtrade.runtime.live`).

>>> from vtrade.core.events import Side, Trade
>>> from vtrade.core.instruments import us_equity
>>> from vtrade.execution.engine import EngineConfig
>>> log = LiveLog(None, latency="1ms", seed=1, engine_config=lambda s: EngineConfig(us_equity(s)))
>>> log.pump(log.sequence_market([Trade(5, 5, "SPY", 1, 10000, 100)]))
>>> log.worker.engine("SPY").last_trade
10000
"""

from __future__ import annotations

import os
import pickle
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import duckdb

from vtrade.core.errors import VtradeError
from vtrade.core.events import Clock, Event, MarketEvent, encode
from vtrade.core.ids import partition_for
from vtrade.execution import events as ev
from vtrade.execution.engine import EngineConfig
from vtrade.execution.orders import CancelOrder, MarketOpened, ReplaceOrder, SubmitOrder
from vtrade.execution.venue import batched
from vtrade.runtime.bus import Bus, MemoryBus
from vtrade.runtime.bus.base import Record
from vtrade.runtime.datadir import DataDirError, prepare_data_dir
from vtrade.runtime.execution_worker import (
    DEFAULT_PARTITIONS,
    INPUT_TOPIC,
    OUTPUT_TOPIC,
    ExecutionWorker,
    MemorySnapshotStore,
    Sequencer,
    WorkerSnapshot,
)
from vtrade.runtime.journal import Journal

__all__ = ["ENTRIES", "EXEC_GROUP", "GROUPS", "Checkpoint", "Durable", "ExecutionUnavailable", "LiveLog",
           "MarketMismatch", "Role", "claim_pace", "pacer_running"]

#: People's entries (accounts, orders, cancels, sessions leaving), in one total order.
ENTRIES = "orders"
_GROUP = "live"
#: The consumer groups of a live market on its log, with the topic each reads (what ``/admin`` shows).
GROUPS = ((_GROUP, INPUT_TOPIC), (f"{_GROUP}-broker", ENTRIES), (f"{_GROUP}-views", OUTPUT_TOPIC))
_NEVER = 10**15  # the embedded worker is snapshotted by the market's checkpoints, not by count
_SESSION_S = 3600.0
#: The group of the execution workers a market with ``execution="remote"`` waits for.
EXEC_GROUP = "exec"
Execution = Literal["embedded", "remote"]
#: How a market shares its log with other UI processes (see :func:`claim_pace`).
Role = Literal["solo", "pacer", "replica"]


class ExecutionUnavailable(VtradeError):
    """No execution worker handled what the market published within the wait: none is running
    on the bus, or they cannot keep up."""


class MarketMismatch(VtradeError):
    """The log holds another market than the one this process would run on it."""


def claim_pace(bus: Bus, fingerprint: str, *, wait_s: float = 30.0, claim: bool = True) -> bool:
    """Whether this process paces the shared market on ``bus`` (True: its
    :class:`MarketOpened` is the log's first entry) or joins it as a replica (False).

    The first process to open an empty log claims it; ``orders`` has one partition, so exactly
    one claim is first however many processes start at once. With ``claim=False`` the process
    only joins: it waits up to ``wait_s`` for another to open the log (ExecutionUnavailable
    after). A log whose market has another configuration (``fingerprint``), or that holds
    entries of a market from before shared logs, is a :class:`MarketMismatch`; nothing is written.

    >>> from vtrade.runtime.bus import MemoryBus
    >>> bus = MemoryBus()
    >>> claim_pace(bus, "market-1"), claim_pace(bus, "market-1")
    (True, False)
    >>> claim_pace(bus, "market-2")
    Traceback (most recent call last):
    ...
    vtrade.runtime.live_log.MarketMismatch: the log holds market-1, another market than this one (market-2): ...
    """
    bus.create_topic(ENTRIES, 1)
    me = ""
    first = bus.read(ENTRIES, 0, 0, 1)
    if not first and claim:
        me = uuid.uuid4().hex
        bus.publish(ENTRIES, "market", MarketOpened(0, fingerprint, me))
    deadline = time.monotonic() + wait_s
    while not first:  # a remote log may show a record a moment after acknowledging it
        if time.monotonic() > deadline:
            raise ExecutionUnavailable(
                f"no market opened the log within {wait_s:g} s: start `vtrade worker market` (or a server) on it"
                if not claim else f"the log did not show the first entry of {ENTRIES} within {wait_s:g} s"
            )
        time.sleep(0.05)  # another process's write: nothing to wait on but time
        first = bus.read(ENTRIES, 0, 0, 1)
    opened = first[0].event
    if not isinstance(opened, MarketOpened):
        raise MarketMismatch(f"the log holds a market that was not opened to be shared ({type(opened).__name__} "
                             f"first on {ENTRIES}): give a new ?namespace=name")  # fmt: skip
    if opened.fingerprint != fingerprint:
        raise MarketMismatch(
            f"the log holds {opened.fingerprint}, another market than this one ({fingerprint}): start it with the "
            f"same --market, --seed and --queue as the first server, or give a new ?namespace=name"
        )
    return opened.member == me


def pacer_running(bus: Bus, *, wait_s: float = 60.0) -> bool:
    """Whether the process pacing the shared market on ``bus`` is alive: its heartbeat (kind
    ``pacer`` on the ``status`` topic) is fresh. A pacer that has not beaten yet (it starts at
    the same moment as this replica, as under ``vtrade up``) is waited for up to ``wait_s``; one
    whose last beat is old or its last (stopped) is not."""
    from vtrade.ops.status import STALE_AFTER
    from vtrade.runtime.status import StatusReader

    reader = StatusReader(bus)
    deadline = time.monotonic() + wait_s
    while True:
        beats = [b for b in reader.heartbeats() if b.kind == "pacer"]
        if beats:
            last = max(beats, key=lambda b: b.ts)
            return not last.stopping and (time.time_ns() - last.ts) / 1e9 <= STALE_AFTER * last.interval_s
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)  # another process's first beat: nothing to wait on but time


class LiveLog:
    """The bus, the sequencer and the embedded execution worker of one live market.

    ``engines`` (symbol -> :meth:`ExecutionEngine.snapshot` bytes) and ``sequencer`` start it
    from a checkpoint instead of empty exchanges. ``keep`` keeps ``exec.in`` and ``exec`` whole
    on a memory bus (by default they are trimmed once folded). ``execution``: ``"embedded"``, or
    ``"remote"`` to wait for the workers of group :data:`EXEC_GROUP` (see the module docstring);
    ``remote_wait_s`` is how long a slice waits for them before :class:`ExecutionUnavailable`.
    ``entries_bus``: a replica's shared log (see the module docstring): ``orders`` is there,
    read in order by position (no consumer group: every replica reads all of it), and
    everything else on ``bus``, the replica's own.
    """

    def __init__(
        self,
        bus: Bus | None,
        *,
        latency: str | int,
        seed: int,
        engine_config: Callable[[str], EngineConfig],
        engines: dict[str, bytes] | None = None,
        sequencer: Sequencer | None = None,
        keep: bool = False,
        execution: Execution = "embedded",
        remote_wait_s: float = 30.0,
        entries_bus: Bus | None = None,
    ) -> None:
        if execution not in ("embedded", "remote"):
            raise ValueError(f"execution must be 'embedded' or 'remote', got {execution!r}")
        if execution == "remote" and bus is None:
            raise ValueError("execution='remote' needs a bus the execution workers can reach (redis://, kafka://)")
        self.execution: Execution = execution
        self.remote_wait_s = remote_wait_s
        self.bus = bus if bus is not None else MemoryBus()
        #: Where ``orders`` is: this market's bus, or a replica's shared log.
        self.shared = entries_bus if entries_bus is not None else self.bus
        self.shared.create_topic(ENTRIES, 1)
        # Unbound (bus=None): the market publishes a slice's released events in one batch.
        self.sequencer = sequencer if sequencer is not None else Sequencer(None, entry_latency=latency, seed=seed)
        store = MemorySnapshotStore()
        n_in = DEFAULT_PARTITIONS
        if engines:
            for p in range(n_in):
                mine = {s: blob for s, blob in engines.items() if partition_for(s, n_in) == p}
                store.save(WorkerSnapshot(_GROUP, INPUT_TOPIC, p, -1, mine, [0] * DEFAULT_PARTITIONS))
        # The market is the only member of its three groups, and it may leave one unpolled for
        # a while (no entries, a paused class): a session that outlives such a pause spares a
        # rejoin, which on Kafka takes seconds.
        session = _SESSION_S
        self.worker = ExecutionWorker(self.bus, engine_config, group=_GROUP, snapshot_every=_NEVER, store=store,
                                      publish=execution == "embedded", session_timeout_s=session)  # fmt: skip
        self.replica = entries_bus is not None
        self._entries_in = None if self.replica else self.bus.consumer(*GROUPS[1], session_timeout_s=session)
        self._entries_at = 0  # a replica's position on orders
        self._entries_live = self.shared.subscribe_live(ENTRIES) if self.replica else None
        self._reports_in = self.bus.consumer(*GROUPS[2], session_timeout_s=session)
        self._in_ends = [0] * self.bus.partitions(INPUT_TOPIC)  # one past this market's last record, per partition
        self.published = 0  # records this market put on exec.in
        self.keep = keep  # keep exec.in and exec whole (tests, audits) instead of trimming them

    @property
    def groups(self) -> tuple[tuple[str, str], ...]:
        """The consumer groups this market's log has, with the topic each reads: its own
        (:data:`GROUPS`) and, with remote execution, the execution workers' group."""
        # A replica's own groups are in-process: the shared log's are its pacer's (remote execution).
        remote = self.replica or self.execution == "remote"
        return GROUPS + (((EXEC_GROUP, INPUT_TOPIC),) if remote else ())

    # -- in
    def enter(self, entry: Event, key: str) -> Record:
        """Append one entry to ``orders``; returns the record (what the journal keeps)."""
        md = self.shared.publish(ENTRIES, key, entry)
        return Record(md.topic, md.partition, md.offset, key, encode(entry), md.timestamp_ns)

    def entries(self, limit: int = 10_000) -> list[Record]:
        """Up to ``limit`` entries not folded yet, oldest first (committed: the caller folds them now)."""
        if self._entries_in is None:
            records = self.shared.read(ENTRIES, 0, self._entries_at, limit)
            self._entries_at += len(records)
            return records
        records = self._entries_in.poll(limit)
        if records:
            self._entries_in.commit(records)
        return records

    def wait_entries(self, timeout_s: float) -> None:
        """A replica waits up to ``timeout_s`` for something new on ``orders`` (then reads it
        with :meth:`entries`)."""
        assert self._entries_live is not None, "only a replica follows another process's entries"
        if self._entries_live.get(timeout_s) is not None:
            self._entries_live.drain()

    def skip_entries(self, offset: int) -> None:
        """The broker has folded every entry below ``offset`` (a restart re-ran them): consume them."""
        assert self._entries_in is not None, "a replica's entries are on the shared log, not re-run from a journal"
        taken = 0
        while taken < offset:
            records = self._entries_in.poll(min(10_000, offset - taken))
            if not records:
                raise RuntimeError(f"the orders log ends at {taken}, before entry {offset}")
            self._entries_in.commit(records)
            taken += len(records)

    def command(self, command: SubmitOrder | CancelOrder | ReplaceOrder) -> None:
        """An admitted command (``ts`` = entry time) on its way to the exchange."""
        self.sequencer.command(command)

    def sequence_market(self, events: Iterable[MarketEvent]) -> list[Event]:
        """Market data into the merge; returns what the merge releases (commands due before it, then it)."""
        out: list[Event] = []
        for e in events:
            out.extend(self.sequencer.market(e))
        return out

    def holds(self, symbol: str) -> bool:
        """Whether commands for ``symbol`` are still on their way to its exchange."""
        q = self.sequencer._queues.get(symbol)
        return q is not None and q.merge.commands > 0

    # -- through the exchange
    def slice(self, market: Mapping[str, list[MarketEvent]], end: int) -> None:
        """One slice of the live market onto the log and through the exchanges: each symbol's
        market data up to ``end``, then a :class:`Clock` at ``end`` (so the commands and expiries
        due by then are applied, as at the venue), published to ``exec.in`` in one batch."""
        released: list[Event] = []
        for symbol, events in market.items():
            released += self.sequence_market(events)
            released += self.sequence_market([Clock(end, end, symbol, 0)])
        self.pump(released)

    def pump(self, released: list[Event]) -> None:
        """Publish ``released`` to ``exec.in`` and run the execution worker over everything new
        (with remote execution: the mirror, then wait for the workers to handle it)."""
        if released:
            # A venue's run of market data is one record (MarketBatch): the log's cost per slice.
            records = batched(released)
            for md in self.bus.publish_many(INPUT_TOPIC, [(e.symbol, e) for e in records]):  # type: ignore[attr-defined]
                self._in_ends[md.partition] = max(self._in_ends[md.partition], md.offset + 1)
            self.published += len(records)
        self.worker.run()
        if self.execution == "remote" and released:
            self._await_workers()

    def _await_workers(self) -> None:
        """Wait until group :data:`EXEC_GROUP` committed everything on ``exec.in``: its outputs
        are all on ``exec`` then. (This market is the one producer of ``exec.in``: where its
        own publishes ended is where the log ends.)"""
        ends = self._in_ends
        deadline = time.monotonic() + self.remote_wait_s
        pause = 0.0005
        while True:
            done = self.bus.group_offsets(EXEC_GROUP, INPUT_TOPIC)
            behind = [p for p, (end, at) in enumerate(zip(ends, done, strict=True)) if end and (at or 0) < end]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise ExecutionUnavailable(
                    f"no execution worker handled exec.in partitions {behind} within {self.remote_wait_s:g} s: "
                    f"start one on this bus with `vtrade worker execution --bus URL` (the market's own flags)"
                )
            time.sleep(pause)  # a condition on another process's commits: nothing to wait on but time
            pause = min(pause * 2, 0.02)

    def reports(self) -> list[ev.ExecEvent]:
        """The execution reports not folded yet (every one on ``exec`` now), in a
        transport-independent order: by time, then symbol, then partition and offset (a symbol's
        reports keep the exchange's order)."""
        # Embedded, this process published every report (its worker knows where they end: no
        # broker round trip, which on Kafka also spares a metadata refresh per slice); remote,
        # the workers did, and the log says where they end.
        ends = self.worker.published_ends if self.execution == "embedded" else self.bus.end_offsets(OUTPUT_TOPIC)
        records: list[Record] = []
        deadline = time.monotonic() + self.remote_wait_s
        wait = 0.0
        # A remote log may deliver what is there over several polls: read up to the ends.
        while True:
            records.extend(self._reports_in.poll(100_000, timeout_s=wait))
            if self._read_to(ends):
                break
            if time.monotonic() > deadline:
                raise ExecutionUnavailable(f"the exec log did not deliver up to {ends} within {self.remote_wait_s:g} s")
            wait = 0.05
        if records:
            self._reports_in.commit(records)
        out = [(r.event, r) for r in records]
        out.sort(key=lambda t: (t[0].ts, t[0].symbol, t[1].partition, t[1].offset))  # type: ignore[attr-defined]
        self._retain()
        return [e for e, _ in out]  # type: ignore[misc]

    def _read_to(self, ends: list[int]) -> bool:
        """Whether the views' consumer is past ``ends`` (not while it is (re)joining its group)."""
        owned = {tp.partition for tp in self._reports_in.assignment()}
        return all(p in owned and self._reports_in.position(OUTPUT_TOPIC, p) >= end
                   for p, end in enumerate(ends) if end)  # fmt: skip

    def engines(self) -> dict[str, bytes]:
        """Every exchange's state (for a checkpoint)."""
        out: dict[str, bytes] = {}
        for part in self.worker._parts.values():
            out.update({s: e.snapshot() for s, e in part.engines.items()})
        return dict(sorted(out.items()))

    def _retain(self) -> None:
        # Every consumer of the two derived topics is past their ends now: keep memory flat.
        if isinstance(self.bus, MemoryBus) and not self.keep:
            for topic in (INPUT_TOPIC, OUTPUT_TOPIC):
                self.bus.trim(topic, self.bus.end_offsets(topic))

    def close(self) -> None:
        self.worker.close()
        if self._entries_in is not None:
            self._entries_in.close()
        if self._entries_live is not None:
            self._entries_live.close()
        self._reports_in.close()


class Checkpoint:
    """One saved market: ``entries`` entries were folded into ``state`` (a pickle)."""

    __slots__ = ("entries", "now", "state")

    def __init__(self, entries: int, now: int, state: bytes) -> None:
        self.entries, self.now, self.state = entries, now, state


class Durable:
    """A market's data dir: the entries journal (``log.duckdb``) and checkpoints (``checkpoints.duckdb``).

    ``fingerprint`` names the market's configuration: a data dir written by a market with
    another configuration is refused rather than replayed into the wrong market.

    >>> import tempfile
    >>> d = Durable(tempfile.mkdtemp(), fingerprint="demo")
    >>> d.latest() is None, d.entries_after(0)
    (True, [])
    >>> d.close()
    """

    def __init__(self, path: str | os.PathLike[str], *, fingerprint: str, keep: int = 2) -> None:
        root = prepare_data_dir(path)
        self.root = root
        self.keep = keep
        try:
            self.journal = Journal(root / "log.duckdb")
            self._con = duckdb.connect(str(root / "checkpoints.duckdb"))
        except duckdb.IOException as exc:
            raise DataDirError(
                f"the data dir {str(root)!r} is in use by another vtrade process (or unreadable): {exc}"
            ) from exc
        self._con.execute("CREATE TABLE IF NOT EXISTS checkpoints (id BIGINT, entries BIGINT, now BIGINT, state BLOB)")
        self._con.execute("CREATE TABLE IF NOT EXISTS meta (fingerprint VARCHAR)")
        row = self._con.execute("SELECT fingerprint FROM meta").fetchone()
        if row is None:
            self._con.execute("INSERT INTO meta VALUES (?)", [fingerprint])
        elif row[0] != fingerprint:
            raise DataDirError(
                f"the data dir {str(root)!r} holds a market with another configuration ({row[0]}); "
                f"this one is {fingerprint}: use another --data-dir, or --ephemeral"
            )

    def append(self, record: Record) -> None:
        """Journal one entry (durable when this returns)."""
        self.journal.append(record)

    def entries_after(self, offset: int) -> list[Record]:
        """The journaled entries from ``offset`` on, oldest first."""
        df = self.journal.read(ENTRIES, since_offset=offset) if len(self.journal) else None
        if df is None or df.empty:
            return []
        cols = zip(df["partition"], df["offset"], df["key"], df["payload"], df["ts"], strict=True)
        return [Record(ENTRIES, int(p), int(o), str(k), bytes(v), int(t)) for p, o, k, v, t in cols]

    def save(self, checkpoint: Checkpoint) -> None:
        """Keep ``checkpoint`` (and the ``keep - 1`` before it)."""
        con = self._con
        (last,) = con.execute("SELECT coalesce(max(id), 0) FROM checkpoints").fetchone()  # type: ignore[misc]
        con.execute("BEGIN")
        con.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?)",
                    [last + 1, checkpoint.entries, checkpoint.now, zlib.compress(checkpoint.state, 1)])  # fmt: skip
        con.execute("DELETE FROM checkpoints WHERE id <= ?", [last + 1 - self.keep])
        con.execute("COMMIT")

    def latest(self) -> Checkpoint | None:
        row = self._con.execute("SELECT entries, now, state FROM checkpoints ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else Checkpoint(int(row[0]), int(row[1]), zlib.decompress(row[2]))

    def close(self) -> None:
        self.journal.close()
        self._con.close()


def dumps(state: dict[str, Any], shared: dict[str, object]) -> bytes:
    """Pickle ``state``; the objects in ``shared`` (large and rebuilt identically on start, such as
    a recorded capture) are stored by name only."""
    import io

    ids = {id(v): k for k, v in shared.items()}

    class _Pickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> str | None:
            return ids.get(id(obj))

    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
    return buf.getvalue()


def loads(blob: bytes, shared: dict[str, object]) -> dict[str, Any]:
    """The state :func:`dumps` saved, with the ``shared`` objects put back by name."""
    import io

    class _Unpickler(pickle.Unpickler):
        def persistent_load(self, pid: object) -> object:
            if not isinstance(pid, str) or pid not in shared:
                raise pickle.UnpicklingError(f"the checkpoint needs {pid!r}, which this market does not have")
            return shared[pid]

    state: dict[str, Any] = _Unpickler(io.BytesIO(blob)).load()  # our own checkpoint, never user input
    return state
