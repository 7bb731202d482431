"""The Kafka bus: Kafka topics as the log, Kafka consumer groups for delivery (confluent-kafka).

Layout (every name starts with the bus's namespace, ``vt`` by default)::

    {ns}.{topic}            topic, created with its final partition count (replication 1 by default)
    {ns}.{group}            consumer group: membership, assignment (range), committed offsets
    {ns}.{group}:start      offsets only: where the group started on a partition it never
                            committed (so ``auto_offset_reset="latest"`` is pinned once, as on
                            the other backends, and ``committed`` still says None)

Records go to the partition :func:`vtrade.core.ids.partition_for` gives their key: that is Kafka's
own default partitioner (murmur2), which the producer is set to use (cheaper than naming the
partition; every acknowledgement is checked against it), so a key lands on the same partition on
every transport, and a plain Kafka producer that uses its default partitioner agrees too. The
record's exact time in nanoseconds travels in a ``vt.ts`` header (Kafka's own timestamp, in
milliseconds, is set as well). The producer is idempotent with ``acks=all``, so offsets are dense
and every publish returns its record's offset.

Group membership is Kafka's: the broker coordinates, the range assignor shares partitions out in
the order of the members' ids (a member's Kafka client id is its vtrade member id, and the broker's
member ids begin with it). Each :class:`KafkaConsumer` runs one thread that owns the
confluent-kafka consumer: it takes part in rebalances at once even while the application is busy
between polls, buffers fetched records, and carries out commits and seeks for the application
thread. Two clocks guard liveness, as in Kafka: the broker's session timeout
(``session_timeout_ms``, the bus's) notices a dead process; the vtrade ``session_timeout_s``
(Kafka's ``max.poll.interval.ms``, timed by the bus clock) notices an application that stopped
polling, and that member leaves the group; its commits are refused from then on (fenced).

Rebalancing is Kafka's eager protocol, made to look cooperative: partitions a member keeps
through a rebalance keep their position and undelivered buffer, and while a rebalance is in
progress the member hands out nothing from the partitions it may lose. As in Kafka, where the
rebalance callback runs inside ``poll``, a member lets go of a partition only between two polls:
if its last poll handed out records of a partition being revoked, the rebalance waits until the
application polls again (done with them), closes, or is presumed dead, so no new owner works on
the partition while the old one still does (the other backends release partitions only at the
holder's next poll). Not while the holder's thread itself waits on the group (joining another
member or polling one): it could never poll.

Tansu (the broker in CI) answers ``ListOffsets`` with the last batch's base offset + 1, not the
end of the log; the bus reads the true end from a fetch (see :meth:`KafkaBus.end_offsets`).

Usage (against a running broker)::

    bus = KafkaBus("127.0.0.1:9092", namespace="classroom-42")
    bus.create_topic("orders", 8)
    bus.publish("orders", "SPY", order_event)
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from vtrade.core.events import Event
from vtrade.core.ids import partition_for
from vtrade.runtime.bus.base import (
    BufferedLiveSubscription,
    Bus,
    BusClosedError,
    BusError,
    Clock,
    Consumer,
    NotAssignedError,
    OffsetReset,
    PartitionState,
    Record,
    RecordMetadata,
    TopicPartition,
    UnknownTopicError,
    check_count,
    check_name,
    check_partitions,
    check_same_partitions,
    check_timeout,
    prepare_value,
)

__all__ = ["KafkaBus", "KafkaConsumer", "KafkaLiveSubscription"]

T = TypeVar("T")

_TS_HEADER = "vt.ts"  # the record's time in ns (8 bytes, big-endian): Kafka's own is in ms
_NO_OFFSET = -1001  # librdkafka's OFFSET_INVALID: "never committed"
# How long a poll or a live drain waits for records this bus object has already published (and
# the broker acknowledged) to arrive: read-your-writes, without which a poll right after a publish
# would see nothing on Kafka, where fetching is asynchronous.
CATCH_UP_S = 5.0
# A consumer's buffer per partition: fetching pauses above HIGH and resumes below LOW.
_BUFFER_HIGH, _BUFFER_LOW = 20_000, 5_000
# How long after serving a request of the application its consumer thread fetches with short waits.
_HOT_S = 0.1
# How long the consumer thread waits for the application thread to take a request's answer.
_HANDOVER_S = 0.005
# Errors that say the member is no longer in the generation that owned the partition.
_FENCED_CODES = frozenset(
    {
        ck.KafkaError.ILLEGAL_GENERATION,
        ck.KafkaError.UNKNOWN_MEMBER_ID,
        ck.KafkaError.REBALANCE_IN_PROGRESS,
        ck.KafkaError.FENCED_INSTANCE_ID,
        ck.KafkaError._ASSIGNMENT_LOST,
    }
)


def _at(msg: ck.Message) -> tuple[int, int]:
    """``(partition, offset)`` of a message fetched or delivered without error."""
    partition, offset = msg.partition(), msg.offset()
    if partition is None or offset is None:
        raise BusError(f"the Kafka client returned a record without partition or offset ({msg.error()})")
    return partition, offset


def _to_record(topic: str, partition: int, offset: int, msg: ck.Message) -> Record:
    """The message at ``offset`` of ``topic[partition]`` as a Record (per record: keep it lean)."""
    ts = -1
    raw = msg.headers()
    for k, v in raw.items() if isinstance(raw, dict) else raw or ():
        if k == _TS_HEADER and type(v) is bytes and len(v) == 8:
            ts = int.from_bytes(v, "big")
    if ts < 0:  # produced by a plain Kafka client: its millisecond timestamp
        ts = max(msg.timestamp()[1], 0) * 1_000_000
    key = msg.key()
    try:
        text = key.decode() if key else ""
    except UnicodeDecodeError as exc:
        raise BusError(f"record {offset} of {topic}[{partition}] has a key that is not UTF-8") from exc
    return Record(topic, partition, offset, text, msg.value() or b"", ts)


def _kafka_error(exc: BaseException) -> ck.KafkaError | None:
    arg = exc.args[0] if exc.args else None
    return arg if isinstance(arg, ck.KafkaError) else None


class _Batch:
    """The offsets of one publish call's records, filled in by one delivery callback.

    The producer is idempotent, so a partition's acknowledgements come in the order its records
    were produced: the n-th callback for partition p is the batch's n-th record on p. One bound
    method serves the whole batch (no closure per record). A record acknowledged on another
    partition than vtrade computed for it keeps offset -1, which fails the publish.
    """

    __slots__ = ("by_partition", "error", "offsets", "order", "pending")

    def __init__(self, parts: Sequence[int]) -> None:
        self.offsets = [-1] * len(parts)
        self.by_partition: dict[int, list[int]] = {}  # the records' indexes per partition, in order
        for i, p in enumerate(parts):
            same = self.by_partition.get(p)
            if same is None:
                self.by_partition[p] = [i]
            else:
                same.append(i)
        self.order = {p: iter(indexes) for p, indexes in self.by_partition.items()}
        self.pending = len(parts)
        self.error: ck.KafkaError | None = None

    def delivered(self, err: ck.KafkaError | None, msg: ck.Message) -> None:
        self.pending -= 1
        partition = msg.partition()
        queue = self.order.get(partition) if partition is not None else None
        i = next(queue, None) if queue is not None else None
        offset = msg.offset()
        if err is not None:
            if self.error is None:
                self.error = err
        elif i is not None and offset is not None:
            self.offsets[i] = offset

    def ends(self) -> dict[int, int]:
        """Per partition written, one past the offset of the batch's last record there."""
        return {p: self.offsets[indexes[-1]] + 1 for p, indexes in self.by_partition.items()}


class KafkaBus(Bus):
    """A bus on a Kafka-protocol broker. Thread-safe; any number of processes may share a
    namespace.

    ``bootstrap`` is ``host:port`` (or several, comma-separated). ``session_timeout_ms`` is the
    broker-side session of every consumer: how soon a dead process's partitions move on (and,
    on Tansu, about twice the time a group join takes). ``clock`` (seconds) times the vtrade
    ``session_timeout_s`` of this bus's consumers. ``config`` adds librdkafka settings to every
    client (e.g. security settings). ``purge()`` deletes the namespace's topics.
    """

    #: Where delivery waits give up: the producer's own ``message.timeout.ms`` is shorter.
    DELIVERY_TIMEOUT_S: ClassVar[float] = 60.0

    def __init__(
        self,
        bootstrap: str = "127.0.0.1:9092",
        *,
        namespace: str = "vt",
        clock: Clock = time.monotonic,
        session_timeout_ms: int = 6000,
        fetch_wait_ms: int = 10,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.namespace = check_name("namespace", namespace)
        if "." in namespace:
            raise ValueError(f"invalid Kafka namespace {namespace!r}: '.' separates the namespace from the topic")
        if not isinstance(bootstrap, str) or not bootstrap.strip():
            raise ValueError(f"a Kafka bus needs bootstrap servers as 'host:port', got {bootstrap!r}")
        for what, value in (("session_timeout_ms", session_timeout_ms), ("fetch_wait_ms", fetch_wait_ms)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{what} must be a positive int, got {value!r}")
        self.bootstrap = bootstrap
        self.clock = clock
        self.session_timeout_ms = session_timeout_ms
        self.fetch_wait_ms = fetch_wait_ms
        self._base: dict[str, Any] = {"bootstrap.servers": bootstrap, **(config or {})}
        self._admin = AdminClient(dict(self._base))
        try:
            self._admin.list_topics(timeout=10)
        except ck.KafkaException as exc:
            raise BusError(f"cannot reach a Kafka broker at {bootstrap}: {exc}") from exc
        self._producer = ck.Producer(
            {
                **self._base,
                "enable.idempotence": True,  # dense offsets, in order, no duplicates on retry
                "acks": "all",
                "linger.ms": 0,
                # Kafka's default partitioner, which vtrade's partition_for computes too (checked on
                # every acknowledgement): librdkafka picks the partition cheaper than an explicit one.
                "partitioner": "murmur2",
                "message.timeout.ms": 30_000,
                "client.id": f"{namespace}-producer",
            }
        )
        self._reader: ck.Consumer | None = None  # replay and end offsets (assign only, no group)
        self._reader_lock = threading.Lock()
        self._group_readers: dict[str, ck.Consumer] = {}  # group -> a client reading its offsets
        self._counts: dict[str, int] = {}  # partition counts never change once created
        self._produced: dict[TopicPartition, int] = {}  # per partition, one past our last acked record
        self._lock = threading.Lock()
        self._consumers: set[KafkaConsumer] = set()
        self._subs: set[KafkaLiveSubscription] = set()
        self._closed = False

    # -- names ----------------------------------------------------------------------------------

    def _name(self, topic: str) -> str:
        return f"{self.namespace}.{topic}"

    def _group(self, group: str) -> str:
        return f"{self.namespace}.{group}"

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError(f"the Kafka bus {self.namespace!r} at {self.bootstrap} is closed")

    def _client_config(self, **extra: Any) -> dict[str, Any]:
        return {**self._base, **extra}

    # -- topics -------------------------------------------------------------------------------

    def _metadata(self, timeout_s: float = 10.0) -> Any:
        # Listing every topic never auto-creates one (a lookup by name may, on some brokers).
        try:
            return self._admin.list_topics(timeout=timeout_s)
        except ck.KafkaException as exc:
            raise BusError(f"cannot read topic metadata from {self.bootstrap}: {exc}") from exc

    def _existing(self, name: str) -> int | None:
        meta = self._metadata().topics.get(name)
        if meta is None or meta.error is not None or not meta.partitions:
            return None
        return len(meta.partitions)

    def create_topic(self, name: str, partitions: int = 1) -> None:
        check_name("topic", name)
        check_partitions(partitions)
        self._check_open()
        full = self._name(name)
        if len(full) > 249:
            raise ValueError(f"topic {name!r} is too long for namespace {self.namespace!r}: {full!r} exceeds 249")
        existing = self._existing(full)
        if existing is None:
            future = self._admin.create_topics([NewTopic(full, partitions, 1)], operation_timeout=10)[full]
            try:
                future.result(timeout=30)
            except ck.KafkaException as exc:
                err = _kafka_error(exc)
                if err is None or err.code() != ck.KafkaError.TOPIC_ALREADY_EXISTS:
                    raise BusError(f"cannot create topic {full!r} on {self.bootstrap}: {exc}") from exc
            # The topic is usable once the metadata shows every partition.
            deadline = time.monotonic() + 30
            while (existing := self._existing(full)) is None:
                if time.monotonic() > deadline:
                    raise BusError(f"topic {full!r} did not appear in the metadata of {self.bootstrap}")
                time.sleep(0.01)
        check_same_partitions(name, existing, partitions)
        self._counts[name] = partitions

    def topics(self) -> dict[str, int]:
        self._check_open()
        prefix = f"{self.namespace}."
        found = {
            t[len(prefix) :]: len(meta.partitions)
            for t, meta in self._metadata().topics.items()
            if t.startswith(prefix) and meta.error is None
        }
        return dict(sorted(found.items()))

    def partitions(self, topic: str) -> int:
        self._check_open()
        n = self._counts.get(topic) if isinstance(topic, str) else None
        if n is None:
            found = self._existing(self._name(topic)) if isinstance(topic, str) else None
            if found is None:
                raise UnknownTopicError(f"unknown topic {topic!r} (create it with create_topic)")
            n = self._counts[topic] = found
        return n

    # -- producing ----------------------------------------------------------------------------

    def _publish(self, topic: str, prepared: Sequence[tuple[str, bytes, int]]) -> list[RecordMetadata]:
        """Produce every record, then wait until the broker acknowledged them all."""
        n = self.partitions(topic)
        name = self._name(topic)
        parts = [partition_for(k, n) for k, _, _ in prepared]
        batch = _Batch(parts)
        produce, callback = self._producer.produce, batch.delivered
        for key, payload, ts in prepared:
            headers: list[tuple[str, str | bytes | None]] = [(_TS_HEADER, ts.to_bytes(8, "big"))]
            while True:
                try:
                    # No explicit partition: the producer's murmur2 partitioner chooses parts[i].
                    produce(
                        name, payload, key.encode(), on_delivery=callback, timestamp=ts // 1_000_000, headers=headers
                    )
                    break
                except BufferError:
                    self._producer.poll(0.05)  # the local queue is full: let deliveries drain it
        deadline = time.monotonic() + self.DELIVERY_TIMEOUT_S
        while batch.pending > 0:
            # Whichever thread polls runs every ready callback, its own or another thread's.
            self._producer.poll(0.01)
            if batch.pending > 0 and time.monotonic() > deadline:
                raise BusError(
                    f"the broker at {self.bootstrap} did not acknowledge {batch.pending} record(s) of {topic!r}"
                )
        if batch.error is not None or -1 in batch.offsets:
            what = batch.error or "a record was not acknowledged on the partition its key hashes to"
            raise BusError(f"cannot append to {topic!r}: {what}")
        with self._lock:
            for p, end in batch.ends().items():
                tp = TopicPartition(topic, p)
                if end > self._produced.get(tp, 0):
                    self._produced[tp] = end
        return [
            RecordMetadata(topic, p, offset, ts)
            for (_, _, ts), p, offset in zip(prepared, parts, batch.offsets, strict=True)
        ]

    def publish(self, topic: str, key: str, value: bytes | Event, timestamp_ns: int | None = None) -> RecordMetadata:
        self.partitions(topic)  # an unknown topic is refused before the value is looked at
        return self._publish(topic, [prepare_value(key, value, timestamp_ns)])[0]

    def publish_many(self, topic: str, items: Iterable[tuple[str, bytes | Event]]) -> list[RecordMetadata]:
        # Produce everything, then wait once: the producer batches what is queued.
        self.partitions(topic)
        return self._publish(topic, [prepare_value(k, v, None) for k, v in items])

    def _acked_end(self, tp: TopicPartition) -> int:
        """One past the last record of ``tp`` this bus object published (0 if none)."""
        with self._lock:
            return self._produced.get(tp, 0)

    # -- reading outside groups -----------------------------------------------------------------

    def _record(self, topic: str, msg: ck.Message) -> Record:
        """A fetched Kafka message as a vtrade record of ``topic`` (the name without namespace)."""
        return _to_record(topic, *_at(msg), msg)

    def _reader_client(self) -> ck.Consumer:
        if self._reader is None:
            self._reader = ck.Consumer(
                self._client_config(
                    **{
                        "group.id": f"{self.namespace}:reader",  # never joins, never commits
                        "enable.auto.commit": False,
                        "enable.auto.offset.store": False,
                        "fetch.wait.max.ms": self.fetch_wait_ms,
                        "client.id": f"{self.namespace}-reader",
                    }
                )
            )
        return self._reader

    def _ends(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        """The true end offset of each of ``partitions`` of ``topic``.

        ``ListOffsets`` gives a lower bound (exact on Kafka; the last batch's base offset + 1 on
        Tansu); a fetch from just below it returns that batch and the fetch response's high
        watermark, which is exact.
        """
        name = self._name(topic)
        try:
            futures = self._admin.list_offsets(
                {ck.TopicPartition(name, p): OffsetSpec.latest() for p in partitions}, request_timeout=10
            )
            ends = {tp.partition: int(f.result(timeout=15).offset) for tp, f in futures.items()}
        except (ck.KafkaException, FutureTimeout) as exc:
            raise BusError(f"cannot read the end offsets of {name!r}: {exc}") from exc
        probe = {p: e for p, e in ends.items() if e > 0}
        if not probe:
            return ends
        with self._reader_lock:
            reader = self._reader_client()
            reader.assign([ck.TopicPartition(name, p, e - 1) for p, e in probe.items()])
            try:
                seen: set[int] = set()
                deadline = time.monotonic() + 15
                while seen != probe.keys():
                    if time.monotonic() > deadline:
                        raise BusError(f"the broker at {self.bootstrap} did not return the end of {name!r}")
                    for msg in reader.consume(1000, 0.05):
                        if msg.error() is None:
                            p, off = _at(msg)
                            ends[p] = max(ends[p], off + 1)
                            seen.add(p)
                for p in probe:
                    _, high = reader.get_watermark_offsets(ck.TopicPartition(name, p), cached=True)
                    ends[p] = max(ends[p], high)
            finally:
                reader.unassign()
        return ends

    def end_offsets(self, topic: str) -> list[int]:
        n = self.partitions(topic)
        ends = self._ends(topic, range(n))
        return [max(ends[p], self._acked_end(TopicPartition(topic, p))) for p in range(n)]

    def _end(self, tp: TopicPartition) -> int:
        return max(self._ends(tp.topic, [tp.partition])[tp.partition], self._acked_end(tp))

    def read(self, topic: str, partition: int, offset: int = 0, max_records: int = 1000) -> list[Record]:
        tp = self._check_read_args(topic, partition, offset, max_records)
        self._check_open()
        end = self._end(tp)
        stop = min(end, offset + max_records)
        if offset >= stop:
            return []
        out: list[Record] = []
        name = self._name(topic)
        with self._reader_lock:
            reader = self._reader_client()
            reader.assign([ck.TopicPartition(name, partition, offset)])
            try:
                deadline = time.monotonic() + 30
                nxt = offset
                while nxt < stop:
                    if time.monotonic() > deadline:
                        raise BusError(f"the broker at {self.bootstrap} stopped returning {name}[{partition}]")
                    for msg in reader.consume(min(1000, stop - nxt), 0.05):
                        if msg.error() is not None or _at(msg)[1] < nxt:
                            continue
                        if _at(msg)[1] >= stop:
                            break
                        out.append(self._record(topic, msg))
                        nxt = out[-1].offset + 1
            finally:
                reader.unassign()
        return out

    def group_offsets(self, group: str, topic: str) -> list[int | None]:
        check_name("group", group)
        n = self.partitions(topic)
        self._check_open()
        name = self._name(topic)
        with self._reader_lock:
            # A client with the group's id that never subscribes only asks the group coordinator
            # for offsets: it does not join, so the group does not rebalance. Kept: a producer
            # waiting on a worker asks often, and a new client costs a coordinator lookup.
            reader = self._group_readers.get(group)
            if reader is None:
                config = self._client_config(**{"group.id": self._group(group), "enable.auto.commit": False})
                reader = self._group_readers[group] = ck.Consumer(config)
            try:
                got = reader.committed([ck.TopicPartition(name, p) for p in range(n)], timeout=15)
            except ck.KafkaException as exc:
                where = f"group {group!r}'s offsets on {topic!r} from {self.bootstrap}"
                raise BusError(f"cannot read {where}: {exc}") from exc
        out: list[int | None] = [None] * n
        for k in got:
            out[k.partition] = k.offset if k.offset >= 0 else None
        return out

    # -- consumers and live views ---------------------------------------------------------------

    def consumer(
        self,
        group: str,
        topics: str | Sequence[str],
        *,
        member_id: str | None = None,
        auto_offset_reset: OffsetReset = "earliest",
        session_timeout_s: float = 10.0,
    ) -> KafkaConsumer:
        args = self._check_consumer_args(group, topics, member_id, auto_offset_reset, session_timeout_s)
        self._check_open()
        c = KafkaConsumer(self, *args)
        with self._lock:
            self._consumers.add(c)
        return c

    def subscribe_live(self, topic: str, maxlen: int = 10_000) -> KafkaLiveSubscription:
        self._check_live_args(topic, maxlen)
        sub = KafkaLiveSubscription(self, topic, maxlen)
        with self._lock:
            self._subs.add(sub)
        return sub

    def purge(self) -> int:
        """Delete every topic of this bus's namespace (irreversible); returns how many.
        Committed offsets stay with the broker's groups. The bus's consumers, live
        subscriptions and readers are closed first: a client that still follows a topic while
        it is deleted can crash inside librdkafka 2.16 (a segfault handling the metadata of the
        deleted topic, seen against Tansu; cf. confluentinc/librdkafka#5280)."""
        self._check_open()
        names = [self._name(t) for t in self.topics()]
        self._close_clients()
        self._producer.flush(10)
        if names:
            for name, future in self._admin.delete_topics(names, operation_timeout=10).items():
                try:
                    future.result(timeout=30)
                except ck.KafkaException as exc:
                    raise BusError(f"cannot delete topic {name!r}: {exc}") from exc
        self._counts.clear()
        with self._lock:
            self._produced.clear()
        return len(names)

    def _close_clients(self) -> None:
        """Close every consumer, live subscription and reader of this bus (not the producer)."""
        with self._lock:
            consumers, subs = list(self._consumers), list(self._subs)
        for c in consumers:
            c.close()
        for s in subs:
            s.close()
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            for reader in self._group_readers.values():
                reader.close()
            self._group_readers.clear()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
        self._close_clients()
        with self._lock:
            self._closed = True
        self._producer.flush(10)

    def __repr__(self) -> str:
        return f"<KafkaBus {self.bootstrap} namespace={self.namespace!r}>"


# ----------------------------------------------------------------------------------------------
# consumers


@dataclass
class _Slot:
    """What the consumer thread knows about one partition the member owns."""

    epoch: int  # bumped whenever the partition (re)starts from the committed offset
    start: int  # where the application starts reading in this epoch
    committed: int | None  # the group's committed offset, as last read or written
    next_fetch: int  # one past the last record buffered
    buffer: deque[Record] = field(default_factory=deque)
    suspended: bool = False  # revoked in a rebalance in progress: nothing is handed out
    paused: bool = False  # fetching paused because the application lags


class KafkaConsumer(Consumer):
    """A group member on a :class:`KafkaBus` (create it with :meth:`KafkaBus.consumer`).

    Joining waits until the group has given this member its first assignment (possibly empty).
    Member ids are unique among the live members of a group within one process; Tansu does not
    report a group's members, so two processes using one member id both join.
    """

    # Live members of this process: (bootstrap, Kafka group, member id) -> consumer.
    _live: ClassVar[dict[tuple[str, str, str], KafkaConsumer]] = {}
    _live_lock: ClassVar[threading.Lock] = threading.Lock()
    # Threads of this process blocked on a group's rebalance (joining it, or polling a member):
    # (bootstrap, Kafka group) -> thread id -> how many such calls (under _live_lock).
    _waiting: ClassVar[dict[tuple[str, str], Counter[int]]] = {}
    _expired: bool
    _cond: threading.Condition

    def __init__(
        self,
        bus: KafkaBus,
        group: str,
        topics: tuple[str, ...],
        member_id: str,
        auto_offset_reset: OffsetReset,
        session_timeout_s: float,
    ) -> None:
        super().__init__(group, topics, member_id, auto_offset_reset, session_timeout_s)
        self._bus = bus
        self._kgroup = bus._group(group)
        self._names = {bus._name(t): t for t in topics}
        self._key = (bus.bootstrap, self._kgroup, member_id)
        with self._live_lock:
            other = self._live.get(self._key)
            if other is not None and not other._expired and not other._closed:
                self._closed = True
                raise self._already_live()
            self._live[self._key] = self
            peers = [c for k, c in self._live.items() if k[:2] == self._key[:2] and c is not self]
        # Members of this process that are past their session leave before this one joins, as
        # the other backends expire silent members when one joins. (It also spares Tansu 0.6 a
        # leader leaving while a member joins, which wedges the group.)
        settle = time.monotonic() + 5.0
        for peer in peers:
            while peer._overdue() and time.monotonic() < settle:
                with peer._cond:
                    peer._cond.wait(0.01)
        # Shared between the application thread and the consumer thread, under _cond.
        self._cond = threading.Condition()
        self._slots: dict[TopicPartition, _Slot] = {}
        self._epochs = 0
        self._beat = bus.clock()  # the application's last poll/heartbeat, on the bus clock
        self._expired = False  # silent past session_timeout_s: left the group, commits fenced
        self._joined = False  # the constructor has returned: from then on silence counts
        self._gone = False  # left the group after expiring; a new client joins when it polls again
        self._rejoin = False
        self._stop = False
        self._assigned = threading.Event()
        self._failure: BaseException | None = None
        self._requests: deque[tuple[Callable[[ck.Consumer | None], Any], Future[Any], threading.Event]] = deque()
        self._starts: ck.Consumer | None = None  # commits the group's start points
        self._offsets: ck.Consumer | None = None  # reads committed offsets while out of the group
        self._holding: set[TopicPartition] = set()  # partitions of the records the last poll handed out
        self._holder = 0  # the thread that polled last
        self._thread = threading.Thread(target=self._run, name=f"kafka-consumer-{member_id}", daemon=True)
        limit = max(30.0, 5 * bus.session_timeout_ms / 1000)
        with self._waiting_on_group():
            self._thread.start()
            assigned = self._assigned.wait(limit)
        if not assigned or self._failure is not None:
            failure = self._failure
            self.close()
            raise BusError(
                f"member {member_id!r} could not join group {group!r} at {bus.bootstrap}"
                + (f": {failure}" if failure else f" within {limit:.0f} s")
            ) from failure
        with self._cond:
            self._beat = bus.clock()  # joining is not silence
            self._joined = True
        self._sync()  # own the assigned partitions now, as the other backends do on joining

    # -- the consumer thread --------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        bus = self._bus
        return bus._client_config(
            **{
                "group.id": self._kgroup,
                "client.id": self.member_id,  # the broker's member id begins with it: range order
                "partition.assignment.strategy": "range",
                "session.timeout.ms": bus.session_timeout_ms,
                "heartbeat.interval.ms": max(100, bus.session_timeout_ms // 5),
                # The application's liveness is checked here with the bus clock; this thread
                # polls all the time, so librdkafka's own check would never fire.
                "max.poll.interval.ms": max(bus.session_timeout_ms, 300_000),
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": False,
                "allow.auto.create.topics": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": bus.fetch_wait_ms,
                "queued.max.messages.kbytes": 16_384,
            }
        )

    def _run(self) -> None:
        c: ck.Consumer | None = None
        try:
            c = ck.Consumer(self._config())
        except Exception as exc:  # bad settings: tell the constructor
            self._failure = exc
            self._assigned.set()
            return
        try:
            self._subscribe(c)
            idle, hot_until = 0.0, 0.0
            while not self._stop:
                if self._serve(c):
                    hot_until = time.monotonic() + _HOT_S
                c = self._check_liveness(c)
                if c is None:  # left the group: wait for the application to come back
                    with self._cond:
                        self._cond.wait(0.02)
                    continue
                msgs = c.consume(1000, 0)  # what has arrived (and any rebalance), without waiting
                if not msgs:
                    # Requests are served between fetches, so a fetch waits briefly while the
                    # application is active (its commits come one after another), longer when not.
                    idle = 0.0 if time.monotonic() < hot_until else min(idle + 0.005, 0.05)
                    if self._paused_all():
                        # Nothing can arrive: wait for a request, or for the buffers to drain.
                        with self._cond:
                            if not self._requests and not self._stop:
                                self._cond.wait(0.05)
                    else:
                        msgs = c.consume(1000, max(idle, 0.001))
                if msgs:
                    self._absorb(msgs)
                self._flow(c)
        except Exception as exc:  # a broken consumer thread must not die silently
            with self._cond:
                self._failure = exc
                self._cond.notify_all()
            self._assigned.set()
        finally:
            self._serve(c, failing=True)
            try:
                if c is not None:
                    c.close()  # leaves the group; commits nothing
            finally:
                for extra in (self._starts, self._offsets):
                    if extra is not None:
                        extra.close()

    def _subscribe(self, c: ck.Consumer) -> None:
        c.subscribe(list(self._names), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)

    def _check_liveness(self, c: ck.Consumer | None) -> ck.Consumer | None:
        with self._cond:
            rejoin, self._rejoin = self._rejoin, False
            expire = self._joined and not self._expired and self._bus.clock() > self._beat + self.session_timeout_s
            if expire:
                # Presumed dead: forget everything now, so no commit of this member gets through.
                self._expired = True
                self._slots.clear()
                self._cond.notify_all()
        if expire and c is not None:
            # Leave the group (close waits for the broker's answer), so the survivors take over.
            c.close()
            c = None
            with self._cond:
                self._gone = True
                self._cond.notify_all()
        if rejoin and c is None:
            c = ck.Consumer(self._config())
            self._subscribe(c)
            with self._cond:
                self._gone = False
        return c

    def _overdue(self) -> bool:
        """Whether this member is past its session but has not left the group yet."""
        with self._cond:
            if not self._joined or self._closed:
                return False
            if self._expired:
                return not self._gone
            return self._bus.clock() > self._beat + self.session_timeout_s

    def _serve(self, c: ck.Consumer | None, failing: bool = False) -> bool:
        served = False
        while True:
            with self._cond:
                if not self._requests:
                    return served
                fn, future, picked = self._requests.popleft()
            served = True
            if failing:
                future.set_exception(BusClosedError(f"consumer {self.member_id!r} of group {self.group!r} is closed"))
                continue
            try:
                future.set_result(fn(c))
            except BaseException as exc:
                future.set_exception(exc)
            # Let the application thread take the answer before this one goes back to converting
            # fetched records: holding the GIL, it would keep the caller waiting for the
            # interpreter's switch interval (5 ms) on every commit.
            picked.wait(_HANDOVER_S)

    def _absorb(self, msgs: list[ck.Message]) -> None:
        # Messages come in runs of one partition (a fetch response each): look the slot up once a run.
        run: tuple[str | None, int | None] = (None, None)
        topic, slot = "", None
        with self._cond:
            for msg in msgs:
                err = msg.error()
                if err is not None:
                    if err.fatal():
                        raise ck.KafkaException(err)
                    continue  # transient (the client retries)
                partition, offset = _at(msg)
                where = (msg.topic(), partition)
                if where != run:
                    run = where
                    topic = self._names.get(where[0] or "", "")
                    slot = self._slots.get(TopicPartition(topic, partition)) if topic else None
                if slot is None or offset < slot.next_fetch:
                    continue  # not ours, revoked meanwhile, or before a seek's target
                slot.buffer.append(_to_record(topic, partition, offset, msg))
                slot.next_fetch = offset + 1
            self._cond.notify_all()

    def _paused_all(self) -> bool:
        with self._cond:
            return bool(self._slots) and all(s.paused for s in self._slots.values())

    def _flow(self, c: ck.Consumer) -> None:
        pause, resume = [], []
        with self._cond:
            for tp, slot in self._slots.items():
                if not slot.paused and len(slot.buffer) > _BUFFER_HIGH:
                    slot.paused = True
                    pause.append(ck.TopicPartition(self._bus._name(tp.topic), tp.partition))
                elif slot.paused and len(slot.buffer) < _BUFFER_LOW:
                    slot.paused = False
                    resume.append(ck.TopicPartition(self._bus._name(tp.topic), tp.partition))
        if pause:
            c.pause(pause)
        if resume:
            c.resume(resume)

    def _tp(self, ktp: ck.TopicPartition) -> TopicPartition:
        return TopicPartition(self._names[ktp.topic], ktp.partition)

    def _on_revoke(self, c: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        # Eager protocol: everything is revoked; keep the state of what comes back (see _on_assign).
        revoked = {self._tp(ktp) for ktp in partitions}
        with self._cond:
            for tp in revoked:
                slot = self._slots.get(tp)
                if slot is not None:
                    slot.suspended = True
            self._cond.notify_all()
        # Let go between two polls (see the module docstring), serving the application's
        # commits and seeks meanwhile: the old generation still owns the partitions.
        while self._still_working_on(revoked):
            self._serve(c)
            with self._cond:
                self._cond.wait(0.01)

    def _still_working_on(self, tps: set[TopicPartition]) -> bool:
        """Whether the application may still be working on records of ``tps`` its last poll
        handed out: it has not polled again, closed, or gone silent past its session."""
        with self._cond:
            if self._stop or self._expired or not self._holding & tps:
                return False
            if self._bus.clock() > self._beat + self.session_timeout_s:
                return False  # presumed dead: the liveness check takes it out of the group next
            holder = self._holder
        with self._live_lock:
            return not self._waiting.get(self._key[:2], Counter())[holder]

    @contextmanager
    def _waiting_on_group(self) -> Iterator[None]:
        """Marks the calling thread as blocked on this group's rebalance while in the block."""
        group, me = self._key[:2], threading.get_ident()
        with self._live_lock:
            self._waiting.setdefault(group, Counter())[me] += 1
        try:
            yield
        finally:
            with self._live_lock:
                waiting = self._waiting[group]
                waiting[me] -= 1
                if waiting[me] <= 0:
                    del waiting[me]
                if not waiting:
                    del self._waiting[group]

    def _on_lost(self, c: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        # The broker dropped this member (e.g. the process stalled past the session): fenced.
        with self._cond:
            for ktp in partitions:
                self._slots.pop(self._tp(ktp), None)
            self._cond.notify_all()

    def _on_assign(self, c: ck.Consumer, partitions: list[ck.TopicPartition]) -> None:
        tps = [self._tp(ktp) for ktp in partitions]
        wanted = set(tps)
        with self._cond:
            kept = {tp: s for tp, s in self._slots.items() if tp in wanted and s.suspended}
        fresh = [tp for tp in tps if tp not in kept]
        committed = self._fetch_committed(c, fresh)
        starts = self._start_points(fresh, committed)
        assign: list[ck.TopicPartition] = []
        with self._cond:
            new_slots: dict[TopicPartition, _Slot] = {}
            for tp in tps:
                slot = kept.get(tp)
                if slot is not None:
                    slot.suspended = False
                else:
                    self._epochs += 1
                    at = starts[tp]
                    slot = _Slot(self._epochs, at, committed[tp], at)
                new_slots[tp] = slot
                assign.append(ck.TopicPartition(self._bus._name(tp.topic), tp.partition, slot.next_fetch))
            self._slots = new_slots
            self._cond.notify_all()
        c.assign(assign)
        paused = [a for a, tp in zip(assign, tps, strict=True) if new_slots[tp].paused]
        if paused:
            c.pause(paused)
        self._assigned.set()

    def _fetch_committed(self, c: ck.Consumer, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        if not tps:
            return {}
        got = c.committed([ck.TopicPartition(self._bus._name(t), p) for t, p in tps], timeout=15)
        return {self._tp(k): (k.offset if k.offset >= 0 else None) for k in got}

    def _start_points(
        self, tps: Sequence[TopicPartition], committed: Mapping[TopicPartition, int | None]
    ) -> dict[TopicPartition, int]:
        """Where each newly owned partition starts: the committed offset, else the group's start
        point, pinned the first time the group takes the partition (as on the other backends)."""
        out = {tp: off for tp, off in committed.items() if off is not None}
        missing = [tp for tp in tps if tp not in out]
        if not missing:
            return out
        bus = self._bus
        if self._starts is None:
            self._starts = ck.Consumer(
                bus._client_config(**{"group.id": f"{self._kgroup}:start", "enable.auto.commit": False})
            )
        pinned = self._fetch_committed(self._starts, missing)
        pin: list[ck.TopicPartition] = []
        for tp in missing:
            at = pinned.get(tp)
            if at is None:
                at = 0 if self.auto_offset_reset == "earliest" else bus._end(tp)
                pin.append(ck.TopicPartition(bus._name(tp.topic), tp.partition, at))
            out[tp] = at
        if pin:
            self._starts.commit(offsets=pin, asynchronous=False)
        return out

    # -- the application thread -----------------------------------------------------------------

    def _call(self, fn: Callable[[ck.Consumer | None], T], timeout_s: float = 30.0) -> T:
        """Run ``fn`` on the consumer thread (the only one that touches the Kafka client)."""
        future: Future[T] = Future()
        with self._cond:
            if self._stop or not self._thread.is_alive():
                raise BusClosedError(f"consumer {self.member_id!r} of group {self.group!r} is closed")
            if self._failure is not None:
                raise BusError(f"consumer {self.member_id!r} of group {self.group!r} failed: {self._failure}")
            picked = threading.Event()
            self._requests.append((fn, future, picked))
            self._cond.notify_all()  # the consumer thread may be waiting with every partition paused
        try:
            return future.result(timeout_s)
        except FutureTimeout:
            raise BusError(f"consumer {self.member_id!r} of group {self.group!r} did not answer") from None
        finally:
            picked.set()

    def _sync(self) -> None:
        self._bus._check_open()
        with self._cond:
            if self._failure is not None:
                raise BusError(f"consumer {self.member_id!r} of group {self.group!r} failed: {self._failure}")
            self._beat = self._bus.clock()
            if self._expired:
                with self._live_lock:
                    if self._live.get(self._key) is not self:
                        other = self._live.get(self._key)
                        if other is not None and not other._expired and not other._closed:
                            raise self._replaced()
                        self._live[self._key] = self
                self._expired = False
                self._rejoin = True
            slots = {tp: s.epoch for tp, s in self._slots.items()}
            starts = {tp: s.start for tp, s in self._slots.items()}
        for tp, st in list(self._owned.items()):
            if slots.get(tp) != st.epoch:
                del self._owned[tp]  # moved on, or restarted from the committed offset
        for tp, epoch in slots.items():
            if tp not in self._owned:
                self._owned[tp] = PartitionState(epoch=epoch, position=starts[tp], delivered=starts[tp])

    def _fetch(self, tp: TopicPartition, state: PartitionState, max_records: int) -> list[Record]:
        with self._cond:
            slot = self._slots.get(tp)
            if slot is None or slot.epoch != state.epoch or slot.suspended:
                return []
            buf = slot.buffer
            while buf and buf[0].offset < state.position:
                buf.popleft()
            out = [buf.popleft() for _ in range(min(max_records, len(buf)))]
            if slot.paused and len(buf) < _BUFFER_LOW:
                self._cond.notify_all()  # the consumer thread resumes fetching it
            if out:
                self._holding.add(tp)  # under the lock a revocation checks it with
            return out

    def _behind(self) -> bool:
        """Whether an owned partition has records this bus object published but not yet handed out."""
        return any(st.position < self._bus._acked_end(tp) for tp, st in self._owned.items())

    def poll(self, max_records: int = 500, timeout_s: float = 0.0) -> list[Record]:
        """See :meth:`Consumer.poll`. On Kafka records arrive asynchronously, so a poll also
        waits (up to ``CATCH_UP_S``) for records this bus object has already published to the
        partitions it owns: a consumer reads its own process's writes."""
        self._check_open()
        check_count("max_records", max_records)
        start = time.monotonic()
        deadline = start + check_timeout(timeout_s)
        with self._cond:  # done with what the last poll handed out: revoked partitions may go
            self._holding.clear()
            self._holder = threading.get_ident()
            self._cond.notify_all()
        with self._waiting_on_group():
            while True:
                self._sync()
                out = self._fetch_round(max_records)
                now = time.monotonic()
                if out:
                    return out
                if now >= deadline and not (self._behind() and now < start + CATCH_UP_S):
                    return out
                self._wait(min(max(deadline - now, 0.005), 0.1))
                self._check_open()

    def _wait(self, seconds: float) -> None:
        with self._cond:
            for tp, st in self._owned.items():
                slot = self._slots.get(tp)
                if slot is not None and not slot.suspended and slot.epoch == st.epoch and slot.buffer:
                    return
            self._cond.wait(seconds)

    def _reposition(self, tp: TopicPartition, state: PartitionState, offset: int) -> None:
        name = self._bus._name(tp.topic)
        epoch = state.epoch

        def seek(c: ck.Consumer | None) -> None:
            with self._cond:
                slot = self._slots.get(tp)
                if slot is None or slot.epoch != epoch:
                    raise NotAssignedError(f"cannot seek {tp.topic}[{tp.partition}]: it was reassigned meanwhile")
                slot.buffer.clear()
                slot.next_fetch = offset
            assert c is not None  # owned slots exist only while the client is in the group
            try:
                c.seek(ck.TopicPartition(name, tp.partition, offset))
            except ck.KafkaException:
                # Not fetching yet (just assigned): restart the whole assignment at the positions.
                with self._cond:
                    at = [(self._bus._name(t.topic), t.partition, s.next_fetch) for t, s in self._slots.items()]
                c.assign([ck.TopicPartition(*a) for a in at])

        self._call(seek)
        state.position = offset

    def _store_commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        epochs = {tp: self._owned[tp].epoch for tp in offsets}
        bus = self._bus

        def commit(c: ck.Consumer | None) -> TopicPartition | None:
            with self._cond:
                for tp, epoch in epochs.items():
                    slot = self._slots.get(tp)
                    if self._expired or slot is None or slot.epoch != epoch:
                        return tp
                # Never backwards (the owner is the only writer, so its last value is current).
                todo = {
                    tp: nxt for tp, nxt in offsets.items() if (seen := self._slots[tp].committed) is None or nxt > seen
                }
            if not todo:
                return None
            assert c is not None  # owned slots exist only while the client is in the group
            try:
                c.commit(
                    offsets=[ck.TopicPartition(bus._name(t), p, nxt) for (t, p), nxt in todo.items()],
                    asynchronous=False,
                )
            except ck.KafkaException as exc:
                err = _kafka_error(exc)
                if err is not None and err.code() in _FENCED_CODES:
                    return next(iter(todo))
                raise BusError(f"commit of group {self.group!r} failed: {exc}") from exc
            with self._cond:
                for tp, nxt in todo.items():
                    slot = self._slots.get(tp)
                    if slot is not None:
                        slot.committed = nxt
            return None

        fenced = self._call(commit)
        if fenced is not None:
            raise self._fenced(fenced)

    def _read_committed(self, tp: TopicPartition) -> int | None:
        def read(c: ck.Consumer | None) -> int | None:
            if c is None:  # out of the group (expired): any client of the group id can read
                if self._offsets is None:
                    self._offsets = ck.Consumer(self._bus._client_config(**{"group.id": self._kgroup}))
                c = self._offsets
            return self._fetch_committed(c, [tp])[tp]

        return self._call(read)

    def _end_offset(self, tp: TopicPartition) -> int:
        return self._bus._end(tp)

    def _partitions(self, topic: str) -> int:
        return self._bus.partitions(topic)

    def _leave(self) -> None:
        with self._cond:
            self._stop = True
            self._slots.clear()
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(30)
        with self._live_lock:
            if self._live.get(self._key) is self:
                del self._live[self._key]
        with self._bus._lock:
            self._bus._consumers.discard(self)


# ----------------------------------------------------------------------------------------------
# live fan-out


class KafkaLiveSubscription(BufferedLiveSubscription):
    """Live records of one topic: a group-less Kafka consumer on every partition, from the end of
    the log when subscribed (see :class:`LiveSubscription`). Use it from one thread at a time.

    ``drain`` first waits (up to ``CATCH_UP_S``) for the records this bus object has already
    published, as a poll does.
    """

    def __init__(self, bus: KafkaBus, topic: str, maxlen: int) -> None:
        super().__init__(topic, maxlen)
        self._bus = bus
        n = bus.partitions(topic)
        self._next = bus._ends(topic, range(n))  # per partition, the next offset expected
        self._c = ck.Consumer(
            bus._client_config(
                **{
                    "group.id": f"{bus.namespace}:live",  # never joins, never commits
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "fetch.wait.max.ms": bus.fetch_wait_ms,
                    "queued.max.messages.kbytes": 4096,
                }
            )
        )
        name = bus._name(topic)
        self._c.assign([ck.TopicPartition(name, p, at) for p, at in self._next.items()])

    def _pump(self, timeout_s: float) -> None:
        for msg in self._c.consume(1000, timeout_s):
            if msg.error() is None:
                record = self._bus._record(self.topic, msg)
                self._next[record.partition] = record.offset + 1
                self._push(record)

    def get(self, timeout_s: float = 0.0) -> Record | None:
        timeout = check_timeout(timeout_s)
        self._check_open()
        self._pump(0)
        deadline = time.monotonic() + timeout
        while not self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._pump(min(remaining, 0.1))
        return self._buf.popleft()

    def drain(self) -> list[Record]:
        self._check_open()
        self._pump(0)
        deadline = time.monotonic() + CATCH_UP_S
        while time.monotonic() < deadline and any(
            at < self._bus._acked_end(TopicPartition(self.topic, p)) for p, at in self._next.items()
        ):
            self._pump(0.05)
        return self._take_all()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._c.close()
        finally:
            with self._bus._lock:
                self._bus._subs.discard(self)
