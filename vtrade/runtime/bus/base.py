"""The event log every worker reads and writes: one ``Bus`` interface with Kafka's semantics.

A topic has N partitions; a record is published with a key whose partition is Kafka's default
(murmur2) choice, so the memory, Redis and Kafka backends put a key on the same partition.
Offsets are dense per partition (0, 1, 2, ...) on every backend, and order is total within a
partition only. Consumers belong to groups: each group reads every record once, the partitions
of a topic are shared out among the group's live members, and a member commits the offset it has
processed. Delivery is at-least-once: when a member dies (closed without committing, or silent for
longer than its session timeout) its partitions move to the survivors, which resume from the last
committed offset, so a consumer must be idempotent -- :class:`Deduplicator` helps.

>>> from vtrade.runtime.bus import open_bus
>>> bus = open_bus("memory://")
>>> bus.create_topic("orders", partitions=4)
>>> md = bus.publish("orders", "SPY", b"buy 100")
>>> (md.partition, md.offset)
(3, 0)
>>> with bus.consumer("risk", "orders") as c:
...     [r.value for r in c.poll()]
[b'buy 100']

Rebalancing is cooperative, as in Kafka's incremental protocol: a partition changes hands only
once its owner has let go of it (on its next ``poll``) or has died. Every change of hands bumps an
ownership *epoch*; a member whose epoch is stale can no longer commit (it is fenced), and the new
owner starts from the committed offset.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, NamedTuple, Self

import msgspec

from vtrade.core.errors import VtradeError
from vtrade.core.events import Event, decode, encode

OffsetReset = Literal["earliest", "latest"]
Clock = Callable[[], float]

# Kafka's rule for topic names; also used for groups, member ids and namespaces because they
# become parts of Redis keys, where ':' separates fields and whitespace invites quoting bugs.
_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")

# While a poll waits it wakes at least this often (seconds) to heartbeat and to notice that a
# partition was released by another member or that a member's session has expired.
WAIT_SLICE_S = 0.1


class BusError(VtradeError):
    """Base class of the errors the bus raises on purpose."""


class UnknownTopicError(BusError, LookupError):
    """The topic was never created on this bus."""


class TopicConflictError(BusError, ValueError):
    """``create_topic`` was asked for a partition count other than the existing topic's."""


class CommitError(BusError, ValueError):
    """A commit was refused: the partition is not this member's (any more), or the offset was
    never delivered to it. Nothing was committed."""


class NotAssignedError(BusError, ValueError):
    """The partition is not (or no longer) assigned to this member: the group moved it, perhaps
    while the caller was working on records it had delivered."""


class MemberConflictError(BusError, ValueError):
    """A consumer tried to join a group under the member id of a live member."""


class BusClosedError(BusError, RuntimeError):
    """The bus, consumer or live subscription was closed."""


class TopicPartition(NamedTuple):
    """One partition of one topic; sorts by topic, then partition."""

    topic: str
    partition: int


# Records and their metadata hold only strings, bytes and ints, so they can never be part of a
# reference cycle: ``gc=False`` keeps the garbage collector from tracking (and re-scanning) the
# millions of them a long log holds, which otherwise costs every allocation on a busy bus.


class RecordMetadata(msgspec.Struct, frozen=True, gc=False):
    """Where ``publish`` put a record."""

    topic: str
    partition: int
    offset: int
    timestamp_ns: int


class Record(msgspec.Struct, frozen=True, gc=False):
    """One entry of the log, as a consumer sees it.

    ``value`` is the raw payload; ``event`` decodes it as a vtrade event.

    >>> from vtrade.core.events import Trade, encode
    >>> t = Trade(ts=5, recv_ts=5, symbol="SPY", seq=1, price=100, size=1)
    >>> r = Record("market.SPY", 0, 0, "SPY", encode(t), 5)
    >>> r.event == t, r.tp
    (True, TopicPartition(topic='market.SPY', partition=0))
    """

    topic: str
    partition: int
    offset: int
    key: str
    value: bytes
    timestamp_ns: int

    @property
    def tp(self) -> TopicPartition:
        """The record's topic and partition."""
        return TopicPartition(self.topic, self.partition)

    @property
    def event(self) -> Event:
        """The payload decoded as a vtrade event (ValueError if it is not one)."""
        return decode(self.value)


class Closeable(ABC):
    """Something with a ``close``; ``with obj:`` closes it at the end of the block.

    Buses, consumers, live subscriptions and the journal all release their resources this way.
    """

    @abstractmethod
    def close(self) -> None:
        """Release what the object holds. Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------
# validation shared by the backends, so that both reject the same inputs with the same words


def check_name(kind: str, name: object) -> str:
    """``name`` if it is a valid topic/group/member/namespace name, else a ValueError."""
    if not isinstance(name, str):
        raise TypeError(f"a {kind} name must be a str, got {type(name).__name__}")
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid {kind} name {name!r}: use 1-249 characters from [A-Za-z0-9._-]")
    return name


def check_partitions(partitions: object) -> int:
    """A valid partition count (a positive int)."""
    if isinstance(partitions, bool) or not isinstance(partitions, int):
        raise TypeError(f"partitions must be an int, got {type(partitions).__name__}")
    if partitions <= 0:
        raise ValueError(f"partitions must be positive, got {partitions}")
    return partitions


def check_same_partitions(topic: str, existing: int, partitions: int) -> None:
    """TopicConflictError unless an existing topic's partition count is the one asked for."""
    if existing != partitions:
        raise TopicConflictError(f"topic {topic!r} already exists with {existing} partitions, not {partitions}")


def check_offset(what: str, offset: object) -> int:
    """A valid (non-negative int) offset."""
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise TypeError(f"{what} must be an int, got {type(offset).__name__}")
    if offset < 0:
        raise ValueError(f"{what} must be >= 0, got {offset}")
    return offset


def check_count(what: str, count: object) -> int:
    """A valid positive int limit (``max_records``, ``maxlen``, ``batch_size``), else a ValueError."""
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
        raise ValueError(f"{what} must be a positive int, got {count!r}")
    return count


def check_partition(topic: str, partition: object, partitions: int) -> TopicPartition:
    """``(topic, partition)`` if ``partition`` is one of the topic's ``partitions``, else a ValueError."""
    if isinstance(partition, bool) or not isinstance(partition, int) or not 0 <= partition < partitions:
        raise ValueError(f"topic {topic!r} has partitions 0..{partitions - 1}, got {partition!r}")
    return TopicPartition(topic, partition)


def prepare_value(key: object, value: object, timestamp_ns: object) -> tuple[str, bytes, int]:
    """Validate one publish's key, value and timestamp; returns ``(key, payload, timestamp_ns)``.

    The timestamp defaults to the event's own time (simulated time, DESIGN.md §3) for events and
    to the wall clock for raw bytes.
    """
    if not isinstance(key, str):
        raise TypeError(f"a record key must be a str, got {type(key).__name__}")
    if isinstance(value, Event):
        payload = encode(value)
        default_ts = value.ts
    elif isinstance(value, bytes):
        payload = value
        default_ts = time.time_ns()
    else:
        hint = " (encode it first)" if isinstance(value, str) else ""
        raise TypeError(f"a record value must be bytes or a vtrade Event, got {type(value).__name__}{hint}")
    if timestamp_ns is None:
        return key, payload, default_ts
    if isinstance(timestamp_ns, bool) or not isinstance(timestamp_ns, int):
        raise TypeError(f"timestamp_ns must be an int (ns since the epoch), got {type(timestamp_ns).__name__}")
    if timestamp_ns < 0:
        raise ValueError(f"timestamp_ns must be >= 0, got {timestamp_ns}")
    return key, payload, timestamp_ns


def prepare_many(items: Iterable[tuple[str, bytes | Event]]) -> list[tuple[str, bytes, int]]:
    """:func:`prepare_value` of every ``(key, value)`` of a ``publish_many`` batch, all of them
    before any is appended (so bad input appends nothing); timestamps are the defaults.

    >>> prepare_many([("SPY", b"x")])[0][:2]
    ('SPY', b'x')
    >>> prepare_many([("SPY", b"x"), ("QQQ", "text")])
    Traceback (most recent call last):
    ...
    TypeError: a record value must be bytes or a vtrade Event, got str (encode it first)
    """
    out: list[tuple[str, bytes, int]] = []
    append, now = out.append, time.time_ns
    for key, value in items:
        # The common case, raw bytes under a str key, skips prepare_value's checks one by one.
        if type(key) is str and type(value) is bytes:
            append((key, value, now()))
        else:
            append(prepare_value(key, value, None))
    return out


def default_member_id() -> str:
    """A member id unique to this process and call: ``<host>-<pid>-<random>``."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:64] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def range_assignment(
    subscriptions: Mapping[str, Iterable[str]], partitions: Mapping[str, int]
) -> dict[str, list[TopicPartition]]:
    """Kafka's range assignor: per topic, contiguous partition ranges over the sorted members
    subscribed to it, the first ``n % members`` members getting one extra.

    Every member computes the same answer from the same live member list, which is what lets the
    backends rebalance without a coordinator process.

    >>> a = range_assignment({"b": ["t"], "a": ["t"]}, {"t": 3})
    >>> [p for _, p in a["a"]], [p for _, p in a["b"]]
    ([0, 1], [2])
    """
    out: dict[str, list[TopicPartition]] = {m: [] for m in subscriptions}
    subs = {m: set(ts) for m, ts in subscriptions.items()}
    for topic in sorted(partitions):
        members = sorted(m for m, ts in subs.items() if topic in ts)
        if not members:
            continue
        per, extra = divmod(partitions[topic], len(members))
        start = 0
        for i, m in enumerate(members):
            count = per + (1 if i < extra else 0)
            out[m].extend(TopicPartition(topic, p) for p in range(start, start + count))
            start += count
    return out


# ----------------------------------------------------------------------------------------------
# live fan-out


class LiveSubscription(Closeable):
    """Latest records of one topic as they are published: no history, no offsets committed,
    no redelivery. For dashboards; a slow reader loses the oldest records, never blocks the bus.

    ``get`` waits for the next record; ``drain`` returns what has arrived without waiting.
    ``dropped`` counts the records lost because the reader fell more than ``maxlen`` behind.
    """

    topic: str
    maxlen: int
    dropped: int

    @abstractmethod
    def get(self, timeout_s: float = 0.0) -> Record | None:
        """The oldest buffered record, waiting up to ``timeout_s`` seconds; None if none came."""

    @abstractmethod
    def drain(self) -> list[Record]:
        """Every buffered record (at most ``maxlen``, oldest first), without waiting."""

    @abstractmethod
    def close(self) -> None:
        """Stop receiving. Idempotent."""


class BufferedLiveSubscription(LiveSubscription):
    """The part of a live subscription every backend shares: the buffer of the latest
    ``maxlen`` records and the closed flag. The caller serialises access (the memory bus holds
    its lock; a Redis subscription is used from one thread)."""

    def __init__(self, topic: str, maxlen: int) -> None:
        self.topic = topic
        self.maxlen = maxlen
        self.dropped = 0
        self._buf: deque[Record] = deque()
        self._closed = False

    def _push(self, record: Record) -> None:
        # Latest wins: a lagging dashboard loses the oldest.
        if len(self._buf) >= self.maxlen:
            self._buf.popleft()
            self.dropped += 1
        self._buf.append(record)

    def _take_all(self) -> list[Record]:
        out = list(self._buf)
        self._buf.clear()
        return out

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError(f"the live subscription to {self.topic!r} is closed")


def check_timeout(timeout_s: float) -> float:
    """A valid wait in seconds (for :meth:`Consumer.poll` and :meth:`LiveSubscription.get`)."""
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not timeout_s >= 0:
        raise ValueError(f"timeout_s must be a number >= 0, got {timeout_s!r}")
    return float(timeout_s)


# ----------------------------------------------------------------------------------------------
# consumers


@dataclass
class PartitionState:
    """What a member knows about a partition it owns."""

    epoch: int  # ownership generation: a new one means "resume from the committed offset"
    position: int  # next offset to hand out
    delivered: int  # one past the highest offset handed out in this epoch: the commit bound


class Consumer(Closeable):
    """A member of a consumer group reading some topics.

    Create one with :meth:`Bus.consumer`. ``poll`` returns records of the partitions currently
    assigned to this member, in offset order per partition; ``commit`` marks records processed.
    Not thread-safe: use one consumer per thread, as with Kafka.

    The member joins its group when created, and heartbeats on every ``poll``, ``assignment``
    and ``heartbeat`` call (also while ``poll`` is waiting). A member that neither polls nor
    heartbeats for ``session_timeout_s`` is presumed dead and its partitions move on; ``close``
    leaves at once. Neither commits: whatever was not committed is delivered again to the next
    owner.
    """

    def __init__(
        self,
        group: str,
        topics: Sequence[str],
        member_id: str,
        auto_offset_reset: OffsetReset,
        session_timeout_s: float,
    ) -> None:
        self.group = group
        self.topics = tuple(topics)
        self.member_id = member_id
        self.auto_offset_reset: OffsetReset = auto_offset_reset
        self.session_timeout_s = session_timeout_s
        self._owned: dict[TopicPartition, PartitionState] = {}
        self._closed = False
        self._rotation = 0  # start the next poll at a different partition so none starves

    # -- backend primitives ---------------------------------------------------------------

    @abstractmethod
    def _sync(self) -> None:
        """Heartbeat, then bring ``self._owned`` in line with the group: drop partitions taken
        by others, release those assigned elsewhere, take free ones assigned here."""

    @abstractmethod
    def _fetch(self, tp: TopicPartition, state: PartitionState, max_records: int) -> list[Record]:
        """Up to ``max_records`` records of ``tp`` from ``state.position`` on, without waiting."""

    @abstractmethod
    def _wait(self, seconds: float) -> None:
        """Block up to ``seconds`` or until records may have arrived."""

    @abstractmethod
    def _store_commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Atomically record ``offsets`` (next offset to read) unless an epoch is stale, in which
        case raise CommitError and store nothing."""

    @abstractmethod
    def _read_committed(self, tp: TopicPartition) -> int | None:
        """The group's committed next-offset for ``tp``, None if never committed."""

    @abstractmethod
    def _end_offset(self, tp: TopicPartition) -> int:
        """One past the last offset of ``tp``."""

    @abstractmethod
    def _partitions(self, topic: str) -> int:
        """The partition count of ``topic`` (UnknownTopicError if none)."""

    def _rebalance(
        self,
        mine: set[TopicPartition],
        live: Container[str],
        owner_of: Callable[[TopicPartition], tuple[str, int] | None],
        release: Callable[[TopicPartition, PartitionState], object],
        take: Callable[[TopicPartition], PartitionState | None],
    ) -> bool:
        """The cooperative part of ``_sync``, the same on every backend: given this member's
        assignment ``mine`` and the ``live`` member ids, drop the partitions taken over by
        others, let go of those assigned elsewhere and take the free ones assigned here.

        The backend supplies the primitives: ``owner_of`` (the ``(member, epoch)`` owning a
        partition, or None), ``release`` and ``take`` (the new partition state, or None if
        another member took it first). Returns whether any partition was let go.
        """
        me = self.member_id
        released = False
        for tp, st in list(self._owned.items()):
            if owner_of(tp) != (me, st.epoch):
                del self._owned[tp]  # taken over while this member was presumed dead
            elif tp not in mine:
                release(tp, st)  # cooperative hand-over: let go, the new owner takes it
                del self._owned[tp]
                released = True
        for tp in sorted(mine - self._owned.keys()):
            owner = owner_of(tp)
            if owner is not None and owner[0] != me and owner[0] in live:
                continue  # still held by a live member; it lets go on its next poll
            state = take(tp)
            if state is not None:
                self._owned[tp] = state
        return released

    @abstractmethod
    def _leave(self) -> None:
        """Leave the group, releasing every owned partition, without committing."""

    def _locked(self) -> AbstractContextManager[object]:
        """Held around each poll step; the memory backend uses its bus lock."""
        return nullcontext()

    # -- public API -------------------------------------------------------------------------

    def poll(self, max_records: int = 500, timeout_s: float = 0.0) -> list[Record]:
        """Up to ``max_records`` records, waiting up to ``timeout_s`` seconds for at least one.

        Records of one partition come in offset order; across partitions the order is
        unspecified. Polling also heartbeats and applies rebalances.
        """
        self._check_open()
        check_count("max_records", max_records)
        deadline = time.monotonic() + check_timeout(timeout_s)
        while True:
            with self._locked():
                self._sync()
                out = self._fetch_round(max_records)
            remaining = deadline - time.monotonic()
            if out or remaining <= 0:
                return out
            self._wait(min(remaining, WAIT_SLICE_S))
            self._check_open()

    def _fetch_round(self, max_records: int) -> list[Record]:
        out: list[Record] = []
        tps = sorted(self._owned)
        if not tps:
            return out
        start = self._rotation % len(tps)
        self._rotation += 1
        for tp in tps[start:] + tps[:start]:
            state = self._owned[tp]
            got = self._fetch(tp, state, max_records - len(out))
            if got:
                state.position = got[-1].offset + 1
                state.delivered = max(state.delivered, state.position)
                out.extend(got)
            if len(out) >= max_records:
                break
        return out

    def commit(self, records: Record | Iterable[Record] | None = None) -> dict[TopicPartition, int]:
        """Mark records processed: for each partition, everything up to and including the
        highest offset given. With no argument, commit everything delivered so far.

        Returns the next offset to read per partition that this call asked to store (Kafka's
        convention: committing the record at offset 4 stores 5). A commit never moves a
        partition's committed offset backwards: asking for a lower one leaves it as it is.
        CommitError, and nothing committed, if a record's partition is not assigned to this
        member (it may have been reassigned after this member was presumed dead) or its offset
        was never delivered to this member.
        """
        self._check_open()
        offsets: dict[TopicPartition, int] = {}
        if records is None:
            offsets = {tp: st.delivered for tp, st in self._owned.items() if st.delivered > 0}
        else:
            # Per record only a type check and a compare: a poll's worth is committed at a time.
            highest: dict[tuple[str, int], int] = {}
            for r in (records,) if isinstance(records, Record) else records:
                if not isinstance(r, Record):
                    raise TypeError(f"commit takes Records, got {type(r).__name__}")
                where = (r.topic, r.partition)
                if r.offset > highest.get(where, -1):
                    highest[where] = r.offset
            offsets = {TopicPartition(t, p): o + 1 for (t, p), o in highest.items()}
            for tp, nxt in offsets.items():
                self._check_committable(tp, nxt)
        if not offsets:
            return {}
        with self._locked():
            self._store_commit(offsets)
        return dict(offsets)

    def _check_committable(self, tp: TopicPartition, nxt: int) -> None:
        where = f"group {self.group!r} member {self.member_id!r}"
        if tp.topic not in self.topics:
            raise CommitError(f"cannot commit a record of topic {tp.topic!r}: {where} reads {list(self.topics)}")
        state = self._owned.get(tp)
        if state is None:
            raise CommitError(
                f"cannot commit {tp.topic}[{tp.partition}]: it is not assigned to {where} "
                "(it may have been reassigned in a rebalance)"
            )
        if nxt > state.delivered:
            raise CommitError(
                f"cannot commit offset {nxt - 1} of {tp.topic}[{tp.partition}]: {where} has only been "
                f"delivered offsets below {state.delivered}"
            )

    def committed(self, topic: str, partition: int) -> int | None:
        """The group's committed offset for a partition, as the next offset to read (Kafka's
        convention), or None if the group never committed there."""
        self._check_open()
        tp = self._check_tp(topic, partition)
        with self._locked():
            return self._read_committed(tp)

    def position(self, topic: str, partition: int) -> int:
        """The next offset ``poll`` will return for an owned partition."""
        self._check_open()
        tp = self._check_tp(topic, partition)
        state = self._owned.get(tp)
        if state is None:
            raise ValueError(f"{topic}[{partition}] is not assigned to member {self.member_id!r}")
        return state.position

    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Make the next ``poll`` of an owned partition start at ``offset`` (0 .. end offset).

        Seeking does not commit; a commit still needs records that were delivered.
        """
        self._check_open()
        tp = self._check_tp(topic, partition)
        check_offset("offset", offset)
        with self._locked():
            self._sync()
            state = self._owned.get(tp)
            if state is None:
                raise NotAssignedError(f"cannot seek {topic}[{partition}]: not assigned to member {self.member_id!r}")
            end = self._end_offset(tp)
            if offset > end:
                raise ValueError(f"cannot seek {topic}[{partition}] to {offset}: the log ends at {end}")
            self._reposition(tp, state, offset)

    def _reposition(self, tp: TopicPartition, state: PartitionState, offset: int) -> None:
        state.position = offset

    def assignment(self) -> list[TopicPartition]:
        """The partitions this member owns now (after a heartbeat), sorted."""
        self._check_open()
        with self._locked():
            self._sync()
            return sorted(self._owned)

    def heartbeat(self) -> None:
        """Tell the group this member is alive (call it during long processing between polls)."""
        self._check_open()
        with self._locked():
            self._sync()

    def close(self) -> None:
        """Leave the group without committing: uncommitted records go to the next owner."""
        if self._closed:
            return
        self._closed = True
        with self._locked():
            self._leave()
        self._owned.clear()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError(f"consumer {self.member_id!r} of group {self.group!r} is closed")

    def _check_tp(self, topic: str, partition: int) -> TopicPartition:
        return check_partition(topic, partition, self._partitions(topic))

    def _already_live(self) -> MemberConflictError:
        """The error for joining under the id of a live member."""
        return MemberConflictError(f"member {self.member_id!r} is already live in group {self.group!r}")

    def _replaced(self) -> MemberConflictError:
        """The error for a member that finds a new consumer living under its id."""
        return MemberConflictError(
            f"member {self.member_id!r} of group {self.group!r} was presumed dead and has been replaced by a new "
            "consumer"
        )

    def _fenced(self, tp: TopicPartition) -> CommitError:
        """Forget ``tp``, which another member owns now, and return the error for the refused commit."""
        self._owned.pop(tp, None)
        return CommitError(
            f"cannot commit {tp.topic}[{tp.partition}]: member {self.member_id!r} of group {self.group!r} was "
            "presumed dead and the partition was reassigned"
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"owns {len(self._owned)} partitions"
        return f"<{type(self).__name__} group={self.group!r} member={self.member_id!r} {state}>"


# ----------------------------------------------------------------------------------------------
# the bus


class Bus(Closeable):
    """An event log of partitioned topics (see the module docstring for the semantics).

    Backends: :class:`~vtrade.runtime.bus.memory.MemoryBus` and
    :class:`~vtrade.runtime.bus.redis_streams.RedisBus`; :func:`~vtrade.runtime.bus.open_bus`
    picks one from a URL.
    """

    @abstractmethod
    def create_topic(self, name: str, partitions: int = 1) -> None:
        """Create a topic; a no-op if it exists with the same partition count,
        TopicConflictError if it exists with another."""

    @abstractmethod
    def topics(self) -> dict[str, int]:
        """Every topic and its partition count."""

    @abstractmethod
    def partitions(self, topic: str) -> int:
        """The partition count of ``topic`` (UnknownTopicError if it does not exist)."""

    @abstractmethod
    def publish(self, topic: str, key: str, value: bytes | Event, timestamp_ns: int | None = None) -> RecordMetadata:
        """Append one record to the partition ``key`` hashes to; returns where it went.

        ``value`` is raw bytes or a vtrade Event (encoded with :func:`vtrade.core.events.encode`);
        ``timestamp_ns`` defaults to the event's ``ts``, or the wall clock for raw bytes.
        """

    def publish_many(self, topic: str, items: Iterable[tuple[str, bytes | Event]]) -> list[RecordMetadata]:
        """Publish ``(key, value)`` pairs in order. Every item is validated before any is
        appended, so bad input appends nothing."""
        self.partitions(topic)
        return [self.publish(topic, k, v, ts) for k, v, ts in prepare_many(items)]

    @abstractmethod
    def end_offsets(self, topic: str) -> list[int]:
        """Per partition, one past the last offset (the number of records ever appended)."""

    @abstractmethod
    def read(self, topic: str, partition: int, offset: int = 0, max_records: int = 1000) -> list[Record]:
        """Records of one partition from ``offset`` on, outside any group (replay, audit)."""

    @abstractmethod
    def group_offsets(self, group: str, topic: str) -> list[int | None]:
        """Per partition of ``topic``, the offset ``group`` committed (the next one it will
        read), or None where it never committed; read from outside the group, which it does
        not join or disturb. What a supervisor needs for lag (``end_offsets`` minus this) and
        what a producer waits on to know a worker has handled everything it published.

        >>> from vtrade.runtime.bus import open_bus
        >>> bus = open_bus("memory://")
        >>> bus.create_topic("t", 2)
        >>> _ = bus.publish("t", "k", b"x")
        >>> c = bus.consumer("g", "t")
        >>> _ = c.commit(c.poll())
        >>> bus.group_offsets("g", "t"), bus.group_offsets("nobody", "t")
        ([1, None], [None, None])
        """

    @abstractmethod
    def consumer(
        self,
        group: str,
        topics: str | Sequence[str],
        *,
        member_id: str | None = None,
        auto_offset_reset: OffsetReset = "earliest",
        session_timeout_s: float = 10.0,
    ) -> Consumer:
        """Join ``group`` as a new member reading ``topics``.

        ``auto_offset_reset`` says where a group that never committed on a partition starts:
        ``"earliest"`` (offset 0) or ``"latest"`` (the end of the log when the group first takes
        the partition). ``session_timeout_s`` is how long the member may stay silent before the
        group presumes it dead.
        """

    @abstractmethod
    def subscribe_live(self, topic: str, maxlen: int = 10_000) -> LiveSubscription:
        """Receive records of ``topic`` published from now on (see :class:`LiveSubscription`)."""

    @abstractmethod
    def close(self) -> None:
        """Close every consumer and subscription of this bus object and release connections."""

    def _check_consumer_args(
        self,
        group: str,
        topics: str | Sequence[str],
        member_id: str | None,
        auto_offset_reset: str,
        session_timeout_s: float,
    ) -> tuple[str, tuple[str, ...], str, OffsetReset, float]:
        """Validate ``consumer`` arguments the same way on every backend."""
        check_name("group", group)
        names = (topics,) if isinstance(topics, str) else tuple(topics)
        if not names:
            raise ValueError("a consumer needs at least one topic")
        for t in names:
            self.partitions(check_name("topic", t))
        member = default_member_id() if member_id is None else check_name("member", member_id)
        if auto_offset_reset not in ("earliest", "latest"):
            raise ValueError(f"auto_offset_reset must be 'earliest' or 'latest', got {auto_offset_reset!r}")
        if (
            isinstance(session_timeout_s, bool)
            or not isinstance(session_timeout_s, int | float)
            or not (session_timeout_s > 0)
        ):
            raise ValueError(f"session_timeout_s must be a positive number, got {session_timeout_s!r}")
        reset: OffsetReset = "earliest" if auto_offset_reset == "earliest" else "latest"
        return group, tuple(sorted(set(names))), member, reset, float(session_timeout_s)

    def _check_read_args(self, topic: str, partition: int, offset: int, max_records: int) -> TopicPartition:
        tp = check_partition(topic, partition, self.partitions(topic))
        check_offset("offset", offset)
        check_count("max_records", max_records)
        return tp

    def _check_live_args(self, topic: str, maxlen: int) -> None:
        """Validate ``subscribe_live`` arguments the same way on every backend."""
        self.partitions(topic)
        check_count("maxlen", maxlen)


# ----------------------------------------------------------------------------------------------
# idempotent consumption


class Deduplicator:
    """Recognises records already processed, by the highest processed offset per partition.

    Offsets are dense and ordered within a partition, so "processed up to offset n" is all the
    state idempotence needs. Keep :attr:`watermarks` in the same snapshot as the state they
    guard, so a worker restored from the snapshot skips exactly what the snapshot contains.

    >>> from vtrade.runtime.bus import open_bus
    >>> bus = open_bus("memory://")
    >>> bus.create_topic("cash", 1)
    >>> for amount in (b"5", b"7"):
    ...     _ = bus.publish("cash", "acct-1", amount)
    >>> balance, dedup = 0, Deduplicator()
    >>> records = bus.read("cash", 0)
    >>> for r in dedup.fresh(records + records):  # the second copy is a redelivery
    ...     balance += int(r.value)
    >>> balance, dedup.watermarks
    (12, {TopicPartition(topic='cash', partition=0): 1})
    """

    def __init__(self, watermarks: Mapping[tuple[str, int], int] | None = None) -> None:
        self._hw: dict[TopicPartition, int] = {}
        self._lock = threading.Lock()
        for (topic, partition), offset in (watermarks or {}).items():
            self._hw[TopicPartition(topic, partition)] = check_offset("watermark", offset)

    def is_new(self, record: Record) -> bool:
        """Whether ``record`` comes after everything processed in its partition."""
        return record.offset > self._hw.get(record.tp, -1)

    def mark(self, record: Record) -> None:
        """Note ``record`` as processed (a no-op if a later one already was)."""
        with self._lock:
            if record.offset > self._hw.get(record.tp, -1):
                self._hw[record.tp] = record.offset

    def fresh(self, records: Iterable[Record]) -> Iterator[Record]:
        """Yield the records not processed yet, marking each once the caller's loop body for it
        has finished (so a record whose processing raised is not marked)."""
        for r in records:
            if self.is_new(r):
                yield r
                self.mark(r)

    @property
    def watermarks(self) -> dict[TopicPartition, int]:
        """Highest processed offset per partition (a copy, for snapshots)."""
        with self._lock:
            return dict(self._hw)
