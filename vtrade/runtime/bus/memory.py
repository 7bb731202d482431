"""The embedded bus: the whole log in this process, with the same semantics as the others.

One re-entrant lock guards all state (logs, groups, subscriptions) and a condition on it wakes
waiting polls when a record is published or a partition is released. Group membership,
ownership epochs, committed offsets and heartbeat expiry follow the same algorithm as the Redis
backend, so a test that passes here passes there. The clock used for heartbeats is injectable,
so a test can let a member's session expire without sleeping.

>>> bus = MemoryBus()
>>> bus.create_topic("exec", partitions=2)
>>> a = bus.consumer("portfolio", "exec", member_id="a")
>>> b = bus.consumer("portfolio", "exec", member_id="b")
>>> _ = a.poll(), b.poll()  # a lets go of the partition the range assignor gives to b
>>> a.assignment(), b.assignment()
([TopicPartition(topic='exec', partition=0)], [TopicPartition(topic='exec', partition=1)])
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import ClassVar

from vtrade.core.events import Event
from vtrade.core.ids import partition_for
from vtrade.runtime.bus.base import (
    BufferedLiveSubscription,
    Bus,
    BusClosedError,
    Clock,
    Consumer,
    OffsetReset,
    PartitionState,
    Record,
    RecordMetadata,
    TopicPartition,
    UnknownTopicError,
    check_name,
    check_offset,
    check_partitions,
    check_same_partitions,
    check_timeout,
    prepare_many,
    prepare_value,
    range_assignment,
)

__all__ = ["MemoryBus", "MemoryConsumer", "MemoryLiveSubscription"]


@dataclass
class _Member:
    topics: tuple[str, ...]
    deadline: float  # bus-clock time after which the member is presumed dead
    incarnation: object  # the consumer object, so a stale one cannot act for its successor


@dataclass
class _Group:
    members: dict[str, _Member] = field(default_factory=dict)
    owners: dict[TopicPartition, tuple[str, int]] = field(default_factory=dict)  # (member, epoch)
    committed: dict[TopicPartition, int] = field(default_factory=dict)  # next offset to read
    start: dict[TopicPartition, int] = field(default_factory=dict)  # where the group began
    epochs: int = 0


class _PartitionLog:
    """One partition's records; ``base`` is the offset of the first one kept (see ``MemoryBus.trim``)."""

    __slots__ = ("base", "records")

    def __init__(self) -> None:
        self.base = 0
        self.records: list[Record] = []

    @property
    def end(self) -> int:
        """The offset the next record gets."""
        return self.base + len(self.records)

    def read(self, offset: int, max_records: int) -> list[Record]:
        """Up to ``max_records`` from ``offset`` (records trimmed away are skipped)."""
        start = max(offset - self.base, 0)
        return self.records[start : start + max(offset + max_records - self.base - start, 0)]

    def trim(self, before: int) -> int:
        """Forget the records below offset ``before``; returns how many went."""
        n = min(max(before - self.base, 0), len(self.records))
        if n:
            del self.records[:n]
            self.base += n
        return n


class MemoryBus(Bus):
    """In-process bus. Thread-safe; share the object between the threads of one process.

    ``clock`` (seconds, monotonic) times heartbeats and session expiry; inject a fake one in
    tests. Each ``MemoryBus()`` is a separate log.
    """

    #: What ``consumer`` makes (a subclass's consumer adds to it: see ``JournaledBus``).
    _consumer_class: ClassVar[type[MemoryConsumer]]

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._logs: dict[str, list[_PartitionLog]] = {}
        self._groups: dict[str, _Group] = {}
        self._live: dict[str, set[MemoryLiveSubscription]] = {}
        self._consumers: set[MemoryConsumer] = set()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError("the memory bus is closed")

    def create_topic(self, name: str, partitions: int = 1) -> None:
        check_name("topic", name)
        check_partitions(partitions)
        with self._lock:
            self._check_open()
            log = self._logs.get(name)
            if log is not None:
                check_same_partitions(name, len(log), partitions)
                return
            self._logs[name] = [_PartitionLog() for _ in range(partitions)]

    def topics(self) -> dict[str, int]:
        with self._lock:
            self._check_open()
            return {t: len(log) for t, log in sorted(self._logs.items())}

    def partitions(self, topic: str) -> int:
        return len(self._log(topic))

    def _log(self, topic: str) -> list[_PartitionLog]:
        with self._lock:
            self._check_open()
            log = self._logs.get(topic) if isinstance(topic, str) else None
            if log is None:
                raise UnknownTopicError(f"unknown topic {topic!r} (create it with create_topic)")
            return log

    def publish(self, topic: str, key: str, value: bytes | Event, timestamp_ns: int | None = None) -> RecordMetadata:
        log = self._log(topic)  # an unknown topic is refused before the value is looked at
        key, payload, ts = prepare_value(key, value, timestamp_ns)
        with self._lock:
            self._check_open()
            record = self._put(topic, log, key, payload, ts)
            self._announce(topic, (record,))
        return RecordMetadata(topic, record.partition, record.offset, ts)

    def publish_many(self, topic: str, items: Iterable[tuple[str, bytes | Event]]) -> list[RecordMetadata]:
        self._log(topic)
        return self._append_records(topic, prepare_many(items))

    def _append_records(self, topic: str, prepared: Sequence[tuple[str, bytes, int]]) -> list[RecordMetadata]:
        """Append validated ``(key, payload, timestamp)`` records to an existing topic under one
        acquisition of the lock, hand them to the live subscribers and wake the waiting polls once."""
        with self._lock:
            self._check_open()
            log, put = self._logs[topic], self._put
            records = [put(topic, log, key, payload, ts) for key, payload, ts in prepared]
            self._announce(topic, records)
        return [RecordMetadata(topic, r.partition, r.offset, r.timestamp_ns) for r in records]

    @staticmethod
    def _put(topic: str, log: list[_PartitionLog], key: str, payload: bytes, ts: int) -> Record:
        """Append one record to the partition of ``key`` (the lock is held)."""
        p = partition_for(key, len(log))
        part = log[p]
        record = Record(topic, p, part.base + len(part.records), key, payload, ts)
        part.records.append(record)
        return record

    def _announce(self, topic: str, records: Sequence[Record]) -> None:
        """Hand new records to the live subscribers and wake the waiting polls (the lock is held)."""
        for sub in self._live.get(topic, ()):
            for record in records:
                sub._push(record)
        self._cond.notify_all()

    def end_offsets(self, topic: str) -> list[int]:
        log = self._log(topic)
        with self._lock:
            return [p.end for p in log]

    def read(self, topic: str, partition: int, offset: int = 0, max_records: int = 1000) -> list[Record]:
        self._check_read_args(topic, partition, offset, max_records)
        with self._lock:
            return self._logs[topic][partition].read(offset, max_records)

    def trim(self, topic: str, before: Sequence[int]) -> int:
        """Retention: forget the records of ``topic`` below ``before[p]`` in each partition ``p``
        (offsets stay dense; reads of what is gone start at the first record kept). A long-running
        embedded market keeps memory flat this way once every consumer is past a point.
        Returns how many records went.

        >>> bus = MemoryBus()
        >>> bus.create_topic("t", 1)
        >>> for i in range(3):
        ...     _ = bus.publish("t", "k", b"x%d" % i)
        >>> bus.trim("t", [2]), [r.offset for r in bus.read("t", 0)], bus.end_offsets("t")
        (2, [2], [3])
        """
        log = self._log(topic)
        if len(before) != len(log):
            raise ValueError(f"trim {topic!r}: give one offset per partition ({len(log)}), got {len(before)}")
        with self._lock:
            return sum(part.trim(check_offset("before", b)) for part, b in zip(log, before, strict=True))

    def group_offsets(self, group: str, topic: str) -> list[int | None]:
        check_name("group", group)
        with self._lock:
            n = len(self._log(topic))
            g = self._groups.get(group)
            committed = {} if g is None else g.committed
            return [committed.get(TopicPartition(topic, p)) for p in range(n)]

    def committed_floor(self, topic: str) -> list[int] | None:
        """Per partition of ``topic``, the lowest offset some consumer group still needs (its
        committed offset, or where it began); None when no group has read the topic yet. What
        retention may forget is below it.

        >>> bus = MemoryBus()
        >>> bus.create_topic("t", 1)
        >>> _ = bus.publish("t", "k", b"x"); _ = bus.publish("t", "k", b"y")
        >>> bus.committed_floor("t") is None
        True
        >>> c = bus.consumer("g", "t"); c.commit(c.poll(1))
        {TopicPartition(topic='t', partition=0): 1}
        >>> bus.committed_floor("t")
        [1]
        """
        log = self._log(topic)
        with self._lock:
            floors: list[int] = []
            for p in range(len(log)):
                tp = TopicPartition(topic, p)
                needs = [g.committed.get(tp, g.start[tp]) for g in self._groups.values() if tp in g.start]
                if not needs:
                    return None
                floors.append(min(needs))
            return floors

    def consumer(
        self,
        group: str,
        topics: str | Sequence[str],
        *,
        member_id: str | None = None,
        auto_offset_reset: OffsetReset = "earliest",
        session_timeout_s: float = 10.0,
    ) -> MemoryConsumer:
        args = self._check_consumer_args(group, topics, member_id, auto_offset_reset, session_timeout_s)
        return self._consumer_class(self, *args)

    def subscribe_live(self, topic: str, maxlen: int = 10_000) -> MemoryLiveSubscription:
        self._check_live_args(topic, maxlen)
        sub = MemoryLiveSubscription(self, topic, maxlen)
        with self._lock:
            self._live.setdefault(topic, set()).add(sub)
        return sub

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            for c in list(self._consumers):
                c.close()
            for subs in list(self._live.values()):
                for s in list(subs):
                    s.close()
            self._closed = True
            self._cond.notify_all()

    def __repr__(self) -> str:
        return f"<MemoryBus topics={len(self._logs)} groups={len(self._groups)}>"


class MemoryConsumer(Consumer):
    """A group member on a :class:`MemoryBus` (create it with :meth:`MemoryBus.consumer`)."""

    def __init__(
        self,
        bus: MemoryBus,
        group: str,
        topics: tuple[str, ...],
        member_id: str,
        auto_offset_reset: OffsetReset,
        session_timeout_s: float,
    ) -> None:
        super().__init__(group, topics, member_id, auto_offset_reset, session_timeout_s)
        self._bus = bus
        with bus._lock:
            bus._check_open()
            g = bus._groups.setdefault(group, _Group())
            other = g.members.get(member_id)
            if other is not None and other.deadline > bus.clock():
                raise self._already_live()
            bus._consumers.add(self)
            self._sync()
            bus._cond.notify_all()  # current owners may have partitions to hand over

    def _locked(self) -> AbstractContextManager[object]:
        return self._bus._lock

    def _sync(self) -> None:
        bus = self._bus
        bus._check_open()
        g = bus._groups[self.group]
        now = bus.clock()
        me = self.member_id
        current = g.members.get(me)
        if current is not None and current.incarnation is not self and current.deadline > now:
            raise self._replaced()
        # Heartbeat first, so that a clock jump expires the others and never this live caller.
        g.members[me] = _Member(self.topics, now + self.session_timeout_s, self)
        for m in [m for m, info in g.members.items() if info.deadline <= now]:
            del g.members[m]
        counts = {t: len(bus._logs[t]) for info in g.members.values() for t in info.topics}
        mine = set(range_assignment({m: i.topics for m, i in g.members.items()}, counts)[me])

        def take(tp: TopicPartition) -> PartitionState:
            g.epochs += 1
            g.owners[tp] = (me, g.epochs)
            if tp not in g.start:
                g.start[tp] = 0 if self.auto_offset_reset == "earliest" else bus._logs[tp.topic][tp.partition].end
            pos = g.committed.get(tp, g.start[tp])
            return PartitionState(epoch=g.epochs, position=pos, delivered=pos)

        if self._rebalance(mine, g.members, g.owners.get, lambda tp, _: g.owners.pop(tp), take):
            bus._cond.notify_all()

    def _fetch(self, tp: TopicPartition, state: PartitionState, max_records: int) -> list[Record]:
        return self._bus._logs[tp.topic][tp.partition].read(state.position, max_records)

    def _wait(self, seconds: float) -> None:
        bus = self._bus
        with bus._cond:
            # Records published since the last fetch would not notify us again: check first.
            for tp, st in self._owned.items():
                if st.position < bus._logs[tp.topic][tp.partition].end:
                    return
            bus._cond.wait(seconds)

    def _store_commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        g = self._bus._groups[self.group]
        for tp in offsets:
            st = self._owned[tp]
            if g.owners.get(tp) != (self.member_id, st.epoch):
                raise self._fenced(tp)
        for tp, nxt in offsets.items():
            if nxt > g.committed.get(tp, -1):
                g.committed[tp] = nxt

    def _read_committed(self, tp: TopicPartition) -> int | None:
        return self._bus._groups[self.group].committed.get(tp)

    def _end_offset(self, tp: TopicPartition) -> int:
        return self._bus._logs[tp.topic][tp.partition].end

    def _partitions(self, topic: str) -> int:
        return self._bus.partitions(topic)

    def _leave(self) -> None:
        bus = self._bus
        g = bus._groups[self.group]
        info = g.members.get(self.member_id)
        if info is not None and info.incarnation is self:
            del g.members[self.member_id]
        for tp, st in self._owned.items():
            if g.owners.get(tp) == (self.member_id, st.epoch):
                del g.owners[tp]
        bus._consumers.discard(self)
        bus._cond.notify_all()


MemoryBus._consumer_class = MemoryConsumer


class MemoryLiveSubscription(BufferedLiveSubscription):
    """Live records of one topic on a :class:`MemoryBus` (see :class:`LiveSubscription`).

    :meth:`MemoryBus.publish` pushes each record into the buffer with the bus lock held.
    """

    def __init__(self, bus: MemoryBus, topic: str, maxlen: int) -> None:
        super().__init__(topic, maxlen)
        self._bus = bus

    def get(self, timeout_s: float = 0.0) -> Record | None:
        timeout = check_timeout(timeout_s)
        with self._bus._cond:
            self._check_open()
            self._bus._cond.wait_for(lambda: bool(self._buf) or self._closed, timeout)
            return self._buf.popleft() if self._buf else None

    def drain(self) -> list[Record]:
        with self._bus._lock:
            self._check_open()
            return self._take_all()

    def close(self) -> None:
        with self._bus._lock:
            if self._closed:
                return
            self._closed = True
            self._bus._live.get(self.topic, set()).discard(self)
            self._bus._cond.notify_all()
