"""Worker status on the log: heartbeats out, the status table in (the shell around :mod:`vtrade.ops.status`).

:class:`Heartbeat`
    What a worker loop calls after each poll: every ``interval_s`` of wall-clock time it publishes
    a :class:`~vtrade.ops.status.WorkerHeartbeat` on the ``status`` topic, keyed by the worker's
    id, and a last one (``stopping``) when the worker stops cleanly.
:class:`StatusReader`
    Follows the ``status`` topic and keeps the latest heartbeat of each worker (from the last
    ``window`` records of each partition at first, then incrementally), and
    :meth:`StatusReader.table` computes the status table with the bus's end offsets and the
    groups' committed offsets, read from outside the groups (:meth:`Bus.group_offsets`).

What ``vtrade status`` prints and the ``/admin`` page shows; nothing else reads this topic, so it
may be kept short (a memory bus trims it to ``window`` records per partition).

>>> from vtrade.runtime.bus import open_bus
>>> bus = open_bus("memory://")
>>> bus.create_topic("exec.in", 2)
>>> consumer = bus.consumer("exec", "exec.in", member_id="w1")
>>> source = ConsumerSource("exec", consumer)
>>> beat = Heartbeat(bus, "exec", source, clock=lambda: 5_000_000_000, host="box", pid=7)
>>> beat.tick(0, force=True)
True
>>> row = StatusReader(bus).table(now_ns=6_000_000_000).workers[0]
>>> row.worker, row.state, [(p.topic, p.partition, p.lag, p.owner) for p in row.partitions]
('exec:exec:w1', 'ok', [('exec.in', 0, 0, 'exec:exec:w1'), ('exec.in', 1, 0, 'exec:exec:w1')])
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import Protocol

import msgspec

from vtrade.ops.status import STALE_AFTER, InputPartition, StatusTable, WorkerHeartbeat, status_table
from vtrade.runtime.bus import Bus, Consumer, MemoryBus, TopicConflictError, UnknownTopicError

__all__ = [
    "HEARTBEAT_S",
    "STATUS_TOPIC",
    "CheckpointedElsewhere",
    "ConsumerSource",
    "Heartbeat",
    "StatusReader",
    "StatusSource",
    "ensure_status_topic",
]

log = logging.getLogger(__name__)

#: The topic of worker heartbeats (keyed by worker id).
STATUS_TOPIC = "status"
#: Seconds between two heartbeats of a worker.
HEARTBEAT_S = 2.0


class StatusSource(Protocol):
    """What a heartbeat asks a worker: its group, its member id and the partitions it owns now."""

    @property
    def group(self) -> str: ...

    @property
    def member_id(self) -> str: ...

    def partition_status(self) -> list[InputPartition]: ...


class ConsumerSource:
    """A :class:`StatusSource` for a plain consumer that keeps no snapshots (the partitions it
    owns, ``snapshot`` None)."""

    def __init__(self, group: str, consumer: Consumer) -> None:
        self.group, self._consumer = group, consumer

    @property
    def member_id(self) -> str:
        return self._consumer.member_id

    def partition_status(self) -> list[InputPartition]:
        return [InputPartition(self.group, tp.topic, tp.partition, None) for tp in self._consumer.assignment()]


class CheckpointedElsewhere:
    """A :class:`StatusSource` for a worker whose state is saved with something bigger (an
    embedded market's checkpoints): its own snapshot offsets would mislead, so none are reported.

    >>> from vtrade.runtime.bus import open_bus
    >>> bus = open_bus("memory://")
    >>> bus.create_topic("t", 1)
    >>> src = CheckpointedElsewhere(ConsumerSource("g", bus.consumer("g", "t", member_id="m")))
    >>> src.group, src.member_id, src.partition_status()
    ('g', 'm', [InputPartition(group='g', topic='t', partition=0, snapshot=None)])
    """

    def __init__(self, worker: StatusSource) -> None:
        self._worker = worker

    @property
    def group(self) -> str:
        return self._worker.group

    @property
    def member_id(self) -> str:
        return self._worker.member_id

    def partition_status(self) -> list[InputPartition]:
        return [msgspec.structs.replace(p, snapshot=None) for p in self._worker.partition_status()]


def ensure_status_topic(bus: Bus) -> None:
    """Create the ``status`` topic (one partition) unless it exists, with any partition count."""
    try:
        bus.partitions(STATUS_TOPIC)
    except UnknownTopicError:
        # Another worker may create it first, with its own count: any count does.
        with contextlib.suppress(TopicConflictError):
            bus.create_topic(STATUS_TOPIC, 1)


class Heartbeat:
    """Publishes ``source``'s heartbeat on ``status`` every ``interval_s`` (see the module docstring).

    Call :meth:`tick` from the worker's loop with the records processed so far (it is cheap when
    no beat is due) and :meth:`stop` when the worker stops cleanly. A heartbeat that cannot be
    published is logged, never raised: status must not stop a worker that can still work.
    ``clock`` is the wall clock in UTC ns.
    """

    def __init__(
        self,
        bus: Bus,
        kind: str,
        source: StatusSource,
        *,
        interval_s: float = HEARTBEAT_S,
        clock: Callable[[], int] = time.time_ns,
        host: str | None = None,
        pid: int | None = None,
        window: int = 1000,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self.bus, self.kind, self.source = bus, kind, source
        self.interval_s, self.clock, self.window = float(interval_s), clock, window
        self.host = host if host is not None else socket.gethostname()
        self.pid = pid if pid is not None else os.getpid()
        self.worker = f"{kind}:{source.group}:{source.member_id}"
        self.started = clock()
        self._last_ts, self._last_processed = self.started, 0
        self.published = 0
        ensure_status_topic(bus)

    def tick(self, processed: int, *, force: bool = False) -> bool:
        """Publish a heartbeat if one is due (or ``force``); returns whether one was published."""
        now = self.clock()
        if not force and now - self._last_ts < self.interval_s * 1e9:
            return False
        return self._beat(now, processed, stopping=False)

    def stop(self, processed: int) -> bool:
        """The last heartbeat: the worker stopped cleanly (the table shows it ``stopped``)."""
        return self._beat(self.clock(), processed, stopping=True)

    def _beat(self, now: int, processed: int, *, stopping: bool) -> bool:
        elapsed_s = (now - self._last_ts) / 1e9
        # The first beat has no interval behind it (records done before it are not a rate).
        first = self.published == 0
        rate = 0.0 if first or elapsed_s <= 0 else (processed - self._last_processed) / elapsed_s
        try:
            beat = WorkerHeartbeat(
                now, self.worker, self.kind, self.source.group, self.source.member_id, self.host, self.pid,
                self.started, self.interval_s, processed, max(0.0, rate),
                tuple(self.source.partition_status()), stopping,
            )  # fmt: skip
            self.bus.publish(STATUS_TOPIC, self.worker, beat, timestamp_ns=now)
            if type(self.bus) is MemoryBus and self.published % 100 == 0:
                # An embedded log lives in memory: keep the status topic to what readers look at.
                ends = self.bus.end_offsets(STATUS_TOPIC)
                self.bus.trim(STATUS_TOPIC, [max(0, e - self.window) for e in ends])
        except Exception as exc:  # the bus is down or the worker lost its partitions: say so, keep working
            log.warning("heartbeat of %s not published: %s: %s", self.worker, type(exc).__name__, exc)
            return False
        self._last_ts, self._last_processed = now, processed
        self.published += 1
        return True


class StatusReader:
    """The latest heartbeat of every worker on ``bus``'s ``status`` topic, followed incrementally.

    The first :meth:`heartbeats` reads the last ``window`` records of each partition (a worker
    silent for longer than that many beats of all workers is forgotten); later calls read only
    what came since. ``groups`` adds ``(group, topic)`` pairs to look at beside those the
    heartbeats name (e.g. an embedded market's groups, which publish no heartbeat).
    """

    def __init__(self, bus: Bus, *, window: int = 1000, groups: Iterable[tuple[str, str]] = ()) -> None:
        self.bus, self.window = bus, window
        self.groups = tuple(groups)
        self._next: list[int] | None = None
        self._latest: dict[str, WorkerHeartbeat] = {}

    def heartbeats(self) -> list[WorkerHeartbeat]:
        """The latest heartbeat of each worker seen so far (none if there is no ``status`` topic yet)."""
        try:
            ends = self.bus.end_offsets(STATUS_TOPIC)
        except UnknownTopicError:
            return []
        if self._next is None or len(self._next) != len(ends):
            self._next = [max(0, e - self.window) for e in ends]
        for p, end in enumerate(ends):
            while self._next[p] < end:
                batch = self.bus.read(STATUS_TOPIC, p, self._next[p], 1000)
                if not batch:
                    break  # trimmed away, or not visible yet: the next call tries again
                for r in batch:
                    try:
                        beat = r.event
                    except ValueError:
                        continue  # not an event: someone else's record, not ours to judge
                    if isinstance(beat, WorkerHeartbeat):
                        old = self._latest.get(beat.worker)
                        if old is None or beat.ts >= old.ts:
                            self._latest[beat.worker] = beat
                self._next[p] = batch[-1].offset + 1
        return list(self._latest.values())

    def table(self, now_ns: int | None = None, *, stale_after: float = STALE_AFTER) -> StatusTable:
        """The status table now (``now_ns``: the wall clock in UTC ns by default)."""
        beats = self.heartbeats()
        pairs = set(self.groups) | {(ip.group, ip.topic) for b in beats for ip in b.partitions}
        known = self.bus.topics()
        pairs = {(g, t) for g, t in pairs if t in known}
        ends = {t: self.bus.end_offsets(t) for t in sorted({t for _, t in pairs})}
        committed = {(g, t): self.bus.group_offsets(g, t) for g, t in sorted(pairs)}
        now = time.time_ns() if now_ns is None else now_ns
        return status_table(beats, ends, committed, now, stale_after=stale_after)

