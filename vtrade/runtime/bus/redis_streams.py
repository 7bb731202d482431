"""The Redis bus: Redis Streams as the log, consumer groups for delivery, Pub/Sub for live views.

Layout (every key starts with the bus's namespace, ``vt`` by default)::

    {ns}:topics                       hash   topic -> partition count
    {ns}:log:{topic}:{p}              stream one per topic-partition; entry id 0-<offset+1>
    {ns}:live:{topic}                 Pub/Sub channel for live fan-out
    {ns}:group:{g}:members            zset   member id -> heartbeat deadline (bus clock, seconds)
    {ns}:group:{g}:subs               hash   member id -> "<incarnation>|<topic,topic,...>"
    {ns}:group:{g}:owners             hash   "<topic>:<p>" -> "<epoch>|<member id>"
    {ns}:group:{g}:epoch              string ownership epoch counter
    {ns}:group:{g}:committed          hash   "<topic>:<p>" -> next offset to read
    {ns}:group:{g}:start              hash   "<topic>:<p>" -> offset the group started from

Dense offsets: entries are appended with ``XADD <stream> 0-* ...`` (Redis >= 7.0), so Redis
itself assigns the sequence atomically and the entry ``0-n`` is offset ``n - 1``; no counter to
keep in step with the stream. ``publish_many`` appends a batch (up to ``_APPEND_CHUNK`` records)
with one script call, which also announces the whole batch to live subscribers in one PUBLISH.
A group reads a partition with ``XREADGROUP``; ``commit`` stores the offset and ``XACK``\\ s
every pending entry up to it (by id range: ids are dense). When a partition changes hands, the new owner
``XAUTOCLAIM``\\ s all its pending entries and re-reads them, in offset order, before new ones.
Membership, ownership and commits are small Lua scripts, so each is one atomic round trip.

Usage (against a running server)::

    bus = RedisBus("redis://127.0.0.1:6379/0", namespace="classroom-42")
    bus.create_topic("orders", 8)
    bus.publish("orders", "SPY", order_event)
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import redis

from vtrade.core.events import Event
from vtrade.core.ids import partition_for
from vtrade.runtime.bus.base import (
    BufferedLiveSubscription,
    Bus,
    BusClosedError,
    BusError,
    Clock,
    Consumer,
    MemberConflictError,
    OffsetReset,
    PartitionState,
    Record,
    RecordMetadata,
    TopicPartition,
    UnknownTopicError,
    check_name,
    check_partitions,
    check_same_partitions,
    check_timeout,
    prepare_many,
    prepare_value,
    range_assignment,
)

__all__ = ["RedisBus", "RedisConsumer", "RedisLiveSubscription"]

# Append a batch and announce it on the live channel in one atomic round trip: one script call,
# and one PUBLISH, per batch rather than per record.
# KEYS: the streams written. ARGV: the live channel, the announcement's body, how many records go
# to each stream, then each record's key, value and time, stream by stream.
# The script is atomic, so a stream's records of the batch get consecutive entries: the first
# entry's sequence (offset + 1) gives every offset. It returns the first sequence per stream and
# announces "<first sequence per stream, comma-separated>|<body>" (see _LiveBatch).
_APPEND = """
local at = 3 + #KEYS
local firsts = {}
for i = 1, #KEYS do
  local first
  for _ = 1, tonumber(ARGV[2 + i]) do
    local id = redis.call('XADD', KEYS[i], '0-*', 'k', ARGV[at], 'v', ARGV[at + 1], 't', ARGV[at + 2])
    first = first or id
    at = at + 3
  end
  firsts[i] = string.match(first, '^0%-(%d+)$')
end
redis.call('PUBLISH', ARGV[1], table.concat(firsts, ',') .. '|' .. ARGV[2])
return firsts
"""
# Records per script call: bounds how long one publish_many holds the (single-threaded) server.
_APPEND_CHUNK = 1000

# Heartbeat, expire silent members, and report the live members and the owners table.
# KEYS: members, subs, owners. ARGV: member, incarnation, deadline, now, topics.
_SYNC = """
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur and string.match(cur, '^([^|]*)|') ~= ARGV[2] then
  local dl = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if dl and tonumber(dl) > tonumber(ARGV[4]) then return redis.error_reply('VT_MEMBER_TAKEN') end
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. ARGV[5])
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('HDEL', KEYS[2], m)
end
local live = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  live[#live + 1] = m
  live[#live + 1] = redis.call('HGET', KEYS[2], m) or ''
end
return {live, redis.call('HGETALL', KEYS[3])}
"""

# Take a partition if its owner entry is still what the caller saw (compare-and-set).
# KEYS: owners, epoch counter. ARGV: field, member, expected owner value ('' for none).
_TAKE = """
if (redis.call('HGET', KEYS[1], ARGV[1]) or '') ~= ARGV[3] then return false end
local e = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], e .. '|' .. ARGV[2])
return e
"""

# After a take: fix the group's start on the partition, create the Redis group there, claim every
# pending entry for the new owner, drop consumer entries of dead members that hold nothing, and
# report (start, committed, group cursor).
# KEYS: stream, start, committed, members. ARGV: field, group, policy, member, now.
_SETUP = """
local s = redis.call('HGET', KEYS[2], ARGV[1])
if not s then
  s = '0'
  if ARGV[3] == 'latest' then
    local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
    if #last > 0 then s = string.match(last[1][1], '^0%-(%d+)$') end
  end
  redis.call('HSET', KEYS[2], ARGV[1], s)
end
local made = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[2], '0-' .. s, 'MKSTREAM')
if type(made) == 'table' and made.err and not string.find(made.err, 'BUSYGROUP') then
  return redis.error_reply(made.err)
end
local cursor = '0-0'
repeat
  cursor = redis.call('XAUTOCLAIM', KEYS[1], ARGV[2], ARGV[4], 0, cursor, 'COUNT', 1000, 'JUSTID')[1]
until cursor == '0-0'
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[2])) do
  local name, pending
  for i = 1, #c, 2 do
    if c[i] == 'name' then name = c[i + 1] elseif c[i] == 'pending' then pending = c[i + 1] end
  end
  if pending == 0 and name ~= ARGV[4] then
    local dl = redis.call('ZSCORE', KEYS[4], name)
    if not dl or tonumber(dl) <= tonumber(ARGV[5]) then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[2], name)
    end
  end
end
local last = '0-0'
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, ld
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then ld = g[i + 1] end
  end
  if name == ARGV[2] then last = ld end
end
return {s, redis.call('HGET', KEYS[3], ARGV[1]) or '', string.match(last, '^0%-(%d+)$')}
"""

# Commit several partitions at once, all or nothing: refuse if any ownership epoch is stale.
# Ids are dense (entry 0-n is offset n - 1), so every entry the group still has pending below the
# new offset is acknowledged by id range, from the smallest pending one, without listing them.
# KEYS: owners, committed, stream per partition. ARGV: group, then per partition
# (field, owner value, next offset).
_COMMIT = """
local n = (#ARGV - 1) / 3
for i = 0, n - 1 do
  local f = ARGV[2 + 3 * i]
  if redis.call('HGET', KEYS[1], f) ~= ARGV[3 + 3 * i] then return redis.error_reply('VT_FENCED ' .. f) end
end
for i = 0, n - 1 do
  local f, nxt = ARGV[2 + 3 * i], tonumber(ARGV[4 + 3 * i])
  local cur = redis.call('HGET', KEYS[2], f)
  if (not cur) or tonumber(cur) < nxt then
    redis.call('HSET', KEYS[2], f, ARGV[4 + 3 * i])
    local pending = redis.call('XPENDING', KEYS[3 + i], ARGV[1])
    if pending[1] > 0 then
      local lo = tonumber(string.match(pending[2], '^0%-(%d+)$'))
      local hi = math.min(nxt, tonumber(string.match(pending[3], '^0%-(%d+)$')))
      while lo <= hi do
        local ids = {}
        for seq = lo, math.min(lo + 999, hi) do ids[#ids + 1] = '0-' .. seq end
        redis.call('XACK', KEYS[3 + i], ARGV[1], unpack(ids))
        lo = lo + 1000
      end
    end
  end
end
return 'OK'
"""

# Give back a partition if this member still owns it. KEYS: owners. ARGV: field, owner value.
_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
"""

# Leave: drop the membership (if it is still this incarnation's) and every owned partition.
# KEYS: members, subs, owners. ARGV: member, incarnation, then (field, owner value) pairs.
_LEAVE = """
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur and string.match(cur, '^([^|]*)|') == ARGV[2] then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
for i = 3, #ARGV, 2 do
  if redis.call('HGET', KEYS[3], ARGV[i]) == ARGV[i + 1] then redis.call('HDEL', KEYS[3], ARGV[i]) end
end
return 1
"""

# The announcement's body: the partitions of the streams written (in KEYS order), the partition of
# each record, and the records' (key, value, time), in publish order.
_LiveBatch = tuple[list[int], list[int], list[tuple[str, bytes, int]]]
_live_decoder = msgspec.msgpack.Decoder(_LiveBatch)
_live_encoder = msgspec.msgpack.Encoder()
# Stream replies are parsed here, straight from Redis's flat arrays into Records: redis-py's own
# parsing builds a dict per entry that would be thrown away at once.
_RAW_REPLIES = ("XRANGE", "XREVRANGE", "XREADGROUP")


def _raw_reply(response: Any, **options: Any) -> Any:
    return response


def _offset_of(entry_id: bytes, topic: str, partition: int) -> int:
    ms, _, seq = entry_id.partition(b"-")
    if ms != b"0" or not seq.isdigit() or int(seq) == 0:
        raise BusError(f"stream entry {entry_id!r} of {topic}[{partition}] was not appended by vtrade")
    return int(seq) - 1


def _record(topic: str, partition: int, entry_id: bytes, fields: Sequence[bytes] | None) -> Record:
    """One stream entry (``fields`` as Redis sends them: name, value, name, value...) as a Record."""
    offset = _offset_of(entry_id, topic, partition)
    try:
        if fields is None:
            raise KeyError("the entry has no fields")
        named = dict(zip(fields[::2], fields[1::2], strict=True))
        return Record(topic, partition, offset, named[b"k"].decode(), named[b"v"], int(named[b"t"]))
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise BusError(f"malformed stream entry {entry_id!r} of {topic}[{partition}]: {exc!r}") from exc


def _records(topic: str, partition: int, entries: Iterable[Any] | None) -> list[Record]:
    """The entries of a raw XRANGE or XREADGROUP reply as Records, in order.

    Entries laid out as vtrade writes them (``k``, ``v``, ``t``) take the fast path; anything else
    goes through :func:`_record`, which reads the fields by name or says what is wrong.
    """
    out: list[Record] = []
    append = out.append
    for entry_id, f in entries or ():
        if f is not None and len(f) == 6 and f[0] == b"k" and f[2] == b"v" and f[4] == b"t" and entry_id[:2] == b"0-":
            try:
                append(Record(topic, partition, int(entry_id[2:]) - 1, f[1].decode(), f[3], int(f[5])))
                continue
            except (ValueError, UnicodeDecodeError):
                pass  # the slow path names the problem
        append(_record(topic, partition, entry_id, f))
    return out


class RedisBus(Bus):
    """A bus on a Redis (>= 7.0) server. Thread-safe; any number of processes may share a
    namespace.

    ``clock`` (seconds) times heartbeats; every process of a namespace must agree on it, hence
    the wall clock by default. ``purge()`` deletes the namespace.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        namespace: str = "vt",
        clock: Clock = time.time,
    ) -> None:
        self.namespace = check_name("namespace", namespace)
        self.clock = clock
        self._r = redis.Redis.from_url(url, protocol=2)
        kw = self._r.get_connection_kwargs()
        self.address = f"{kw.get('host', kw.get('path', '?'))}:{kw.get('port', '')}/{kw.get('db', 0)}"
        try:
            version = str(self._r.info("server")["redis_version"])
        except redis.RedisError as exc:
            self._r.close()
            raise BusError(f"cannot use Redis at {self.address}: {exc}") from exc
        if tuple(int(x) for x in version.split(".")[:2]) < (7, 0):
            self._r.close()
            raise BusError(f"Redis at {self.address} is {version}; the bus needs >= 7.0 (XADD with 0-* ids)")
        for command in _RAW_REPLIES:
            self._r.set_response_callback(command, _raw_reply)
        self._lua_append = self._r.register_script(_APPEND)
        self._lua_sync = self._r.register_script(_SYNC)
        self._lua_take = self._r.register_script(_TAKE)
        self._lua_setup = self._r.register_script(_SETUP)
        self._lua_commit = self._r.register_script(_COMMIT)
        self._lua_release = self._r.register_script(_RELEASE)
        self._lua_leave = self._r.register_script(_LEAVE)
        self._counts: dict[str, int] = {}  # partition counts never change once created
        self._lock = threading.Lock()
        self._consumers: set[RedisConsumer] = set()
        self._subs: set[RedisLiveSubscription] = set()
        self._closed = False

    # -- keys ---------------------------------------------------------------------------------

    def _key(self, *parts: str) -> str:
        return ":".join((self.namespace, *parts))

    def _stream(self, topic: str, partition: int) -> str:
        return self._key("log", topic, str(partition))

    def _channel(self, topic: str) -> str:
        return self._key("live", topic)

    def _gkey(self, group: str, what: str) -> str:
        return self._key("group", group, what)

    # -- topics -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError(f"the Redis bus {self.namespace!r} at {self.address} is closed")

    def create_topic(self, name: str, partitions: int = 1) -> None:
        check_name("topic", name)
        check_partitions(partitions)
        self._check_open()
        if not self._r.hsetnx(self._key("topics"), name, partitions):
            check_same_partitions(name, int(self._r.hget(self._key("topics"), name) or 0), partitions)
        self._counts[name] = partitions

    def topics(self) -> dict[str, int]:
        self._check_open()
        raw: Any = self._r.hgetall(self._key("topics"))
        return {k.decode(): int(v) for k, v in sorted(raw.items())}

    def partitions(self, topic: str) -> int:
        self._check_open()
        n = self._counts.get(topic) if isinstance(topic, str) else None
        if n is None:
            raw = self._r.hget(self._key("topics"), topic) if isinstance(topic, str) else None
            if raw is None:
                raise UnknownTopicError(f"unknown topic {topic!r} (create it with create_topic)")
            n = self._counts[topic] = int(raw)
        return n

    # -- producing ----------------------------------------------------------------------------

    def publish(self, topic: str, key: str, value: bytes | Event, timestamp_ns: int | None = None) -> RecordMetadata:
        self.partitions(topic)  # an unknown topic is refused before the value is looked at
        return self._append(topic, [prepare_value(key, value, timestamp_ns)])[0]

    def publish_many(self, topic: str, items: Iterable[tuple[str, bytes | Event]]) -> list[RecordMetadata]:
        self.partitions(topic)
        return self._append(topic, prepare_many(items))

    def _append(self, topic: str, prepared: Sequence[tuple[str, bytes, int]]) -> list[RecordMetadata]:
        """Append validated ``(key, payload, timestamp)`` records with one script call per
        ``_APPEND_CHUNK`` of them (see ``_APPEND``)."""
        n = self.partitions(topic)
        channel = self._channel(topic)
        out: list[RecordMetadata] = []
        for lo in range(0, len(prepared), _APPEND_CHUNK):
            chunk = prepared[lo : lo + _APPEND_CHUNK]
            parts = [partition_for(key, n) for key, _, _ in chunk]
            by_stream: dict[int, list[Any]] = {}
            for record, p in zip(chunk, parts, strict=True):
                args = by_stream.get(p)
                if args is None:
                    args = by_stream[p] = []
                args.extend(record)
            used = list(by_stream)
            argv: list[Any] = [channel, _live_encoder.encode((used, parts, chunk))]
            argv += [len(by_stream[p]) // 3 for p in used]
            for p in used:
                argv += by_stream[p]
            try:
                firsts = self._lua_append(keys=[self._stream(topic, p) for p in used], args=argv)
            except redis.ResponseError as exc:
                raise BusError(f"cannot append to {topic!r}: {exc}") from exc
            nxt = {p: int(first) - 1 for p, first in zip(used, firsts, strict=True)}
            for (_, _, ts), p in zip(chunk, parts, strict=True):
                offset = nxt[p]
                nxt[p] = offset + 1
                out.append(RecordMetadata(topic, p, offset, ts))
        return out

    # -- reading outside groups -----------------------------------------------------------------

    def _end(self, topic: str, partition: int) -> int:
        last: Any = self._r.xrevrange(self._stream(topic, partition), "+", "-", count=1)
        return _offset_of(last[0][0], topic, partition) + 1 if last else 0

    def end_offsets(self, topic: str) -> list[int]:
        n = self.partitions(topic)
        pipe = self._r.pipeline(transaction=False)
        for p in range(n):
            pipe.xrevrange(self._stream(topic, p), "+", "-", count=1)
        return [_offset_of(last[0][0], topic, p) + 1 if last else 0 for p, last in enumerate(pipe.execute())]

    def read(self, topic: str, partition: int, offset: int = 0, max_records: int = 1000) -> list[Record]:
        self._check_read_args(topic, partition, offset, max_records)
        entries: Any = self._r.xrange(self._stream(topic, partition), f"0-{offset + 1}", "+", count=max_records)
        return _records(topic, partition, entries)

    def group_offsets(self, group: str, topic: str) -> list[int | None]:
        check_name("group", group)
        n = self.partitions(topic)
        raw: Any = self._r.hmget(self._gkey(group, "committed"), [f"{topic}:{p}" for p in range(n)])
        return [None if v is None else int(v) for v in raw]

    # -- consumers and live views ---------------------------------------------------------------

    def consumer(
        self,
        group: str,
        topics: str | Sequence[str],
        *,
        member_id: str | None = None,
        auto_offset_reset: OffsetReset = "earliest",
        session_timeout_s: float = 10.0,
    ) -> RedisConsumer:
        args = self._check_consumer_args(group, topics, member_id, auto_offset_reset, session_timeout_s)
        c = RedisConsumer(self, *args)
        with self._lock:
            self._consumers.add(c)
        return c

    def subscribe_live(self, topic: str, maxlen: int = 10_000) -> RedisLiveSubscription:
        self._check_live_args(topic, maxlen)
        sub = RedisLiveSubscription(self, topic, maxlen)
        with self._lock:
            self._subs.add(sub)
        return sub

    def purge(self) -> int:
        """Delete every key of this bus's namespace (irreversible); returns how many."""
        self._check_open()
        deleted = 0
        batch: list[bytes] = []
        for k in self._r.scan_iter(match=f"{self.namespace}:*", count=1000):
            batch.append(k)
            if len(batch) >= 1000:
                deleted += int(self._r.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(self._r.unlink(*batch))
        self._counts.clear()
        return deleted

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            consumers, subs = list(self._consumers), list(self._subs)
        for c in consumers:
            c.close()
        for s in subs:
            s.close()
        with self._lock:
            self._closed = True
        self._r.close()

    def __repr__(self) -> str:
        return f"<RedisBus {self.address} namespace={self.namespace!r}>"


@dataclass
class _RedisPartitionState(PartitionState):
    cursor: int = 0  # the Redis group's next undelivered offset, as last seen
    buffer: deque[Record] = field(default_factory=deque)  # fetched, not yet handed out


class RedisConsumer(Consumer):
    """A group member on a :class:`RedisBus` (create it with :meth:`RedisBus.consumer`)."""

    _owned: dict[TopicPartition, _RedisPartitionState]  # type: ignore[assignment]

    def __init__(
        self,
        bus: RedisBus,
        group: str,
        topics: tuple[str, ...],
        member_id: str,
        auto_offset_reset: OffsetReset,
        session_timeout_s: float,
    ) -> None:
        super().__init__(group, topics, member_id, auto_offset_reset, session_timeout_s)
        self._bus = bus
        self._incarnation = uuid.uuid4().hex  # tells this consumer from a successor with its id
        self._members = bus._gkey(group, "members")
        self._subs = bus._gkey(group, "subs")
        self._owners = bus._gkey(group, "owners")
        try:
            self._sync()
        except MemberConflictError:
            self._closed = True
            raise self._already_live() from None

    @staticmethod
    def _field(tp: TopicPartition) -> str:
        return f"{tp.topic}:{tp.partition}"

    def _sync(self) -> None:
        bus = self._bus
        bus._check_open()
        now = bus.clock()
        me = self.member_id
        try:
            live_raw, owners_raw = bus._lua_sync(
                keys=[self._members, self._subs, self._owners],
                args=[me, self._incarnation, repr(now + self.session_timeout_s), repr(now), ",".join(self.topics)],
            )
        except redis.ResponseError as exc:
            if "VT_MEMBER_TAKEN" in str(exc):
                raise self._replaced() from None
            raise
        live: dict[str, list[str]] = {}
        for i in range(0, len(live_raw), 2):
            _, _, topics = live_raw[i + 1].decode().partition("|")
            live[live_raw[i].decode()] = [t for t in topics.split(",") if t]
        owners = {owners_raw[i].decode(): owners_raw[i + 1].decode() for i in range(0, len(owners_raw), 2)}
        counts = {t: bus.partitions(t) for ts in live.values() for t in ts}
        mine = set(range_assignment(live, counts)[me])

        def owner_of(tp: TopicPartition) -> tuple[str, int] | None:
            seen = owners.get(self._field(tp))
            if not seen:
                return None
            epoch, _, holder = seen.partition("|")
            return (holder, int(epoch) if epoch.isdigit() else -1)  # -1: not an epoch of ours

        def release(tp: TopicPartition, st: PartitionState) -> None:
            bus._lua_release(keys=[self._owners], args=[self._field(tp), f"{st.epoch}|{me}"])

        def take(tp: TopicPartition) -> _RedisPartitionState | None:
            # Compare-and-set against the owner seen in this sync: a member that took it since wins.
            seen = owners.get(self._field(tp), "")
            epoch = bus._lua_take(keys=[self._owners, bus._gkey(self.group, "epoch")], args=[self._field(tp), me, seen])
            return None if epoch is None else self._take_over(tp, int(epoch), now)

        self._rebalance(mine, live, owner_of, release, take)

    def _take_over(self, tp: TopicPartition, epoch: int, now: float) -> _RedisPartitionState:
        bus = self._bus
        start, committed, cursor = bus._lua_setup(
            keys=[
                bus._stream(*tp),
                bus._gkey(self.group, "start"),
                bus._gkey(self.group, "committed"),
                self._members,
            ],
            args=[self._field(tp), self.group, self.auto_offset_reset, self.member_id, repr(now)],
        )
        pos = int(committed) if committed else int(start)
        return _RedisPartitionState(epoch=epoch, position=pos, delivered=pos, cursor=int(cursor))

    def _absorb(self, tp: TopicPartition, st: _RedisPartitionState, entries: Sequence[Any]) -> list[Record]:
        """Records of a group read that continue ``st.position``; the rest is left to XRANGE."""
        records = _records(tp.topic, tp.partition, entries)
        if not records:
            return []
        st.cursor = max(st.cursor, records[-1].offset + 1)
        if records[0].offset > st.position:
            return []  # another reader moved the group cursor past us: re-read the gap by offset
        return [r for r in records if r.offset >= st.position]

    def _fetch(self, tp: TopicPartition, state: PartitionState, max_records: int) -> list[Record]:
        assert isinstance(state, _RedisPartitionState)
        st = state
        r = self._bus._r
        stream = self._bus._stream(*tp)
        if st.buffer and st.buffer[0].offset != st.position:
            st.buffer.clear()
        if st.buffer:
            return [st.buffer.popleft() for _ in range(min(max_records, len(st.buffer)))]
        if st.position >= st.cursor:
            got: Any = r.xreadgroup(self.group, self.member_id, {stream: ">"}, count=max_records)
            out = self._absorb(tp, st, got[0][1] if got else [])
            if out or st.position >= st.cursor:
                return out
        # Redelivery or replay: entries already handed to the group, read by offset.
        entries: Any = r.xrange(stream, f"0-{st.position + 1}", f"0-{st.cursor}", count=max_records)
        if not entries:
            st.cursor = st.position  # the group cursor pointed past the log: trust the log
        return _records(tp.topic, tp.partition, entries)

    def _wait(self, seconds: float) -> None:
        streams: dict[str, TopicPartition] = {}
        for tp, st in self._owned.items():
            if st.buffer or st.position < st.cursor:
                return  # something is readable right away
            streams[self._bus._stream(*tp)] = tp
        if not streams:
            time.sleep(seconds)  # nothing owned yet: wait for a release or a new partition
            return
        got: Any = self._bus._r.xreadgroup(
            self.group, self.member_id, dict.fromkeys(streams, ">"), count=500, block=max(1, int(seconds * 1000))
        )
        for name, entries in got or ():
            tp = streams[name.decode()]
            st = self._owned[tp]
            st.buffer.extend(self._absorb(tp, st, entries))

    def _reposition(self, tp: TopicPartition, state: PartitionState, offset: int) -> None:
        assert isinstance(state, _RedisPartitionState)
        state.buffer.clear()
        state.position = offset

    def _store_commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        bus = self._bus
        tps = sorted(offsets)
        args: list[Any] = [self.group]
        for tp in tps:
            args += [self._field(tp), f"{self._owned[tp].epoch}|{self.member_id}", str(offsets[tp])]
        keys = [self._owners, bus._gkey(self.group, "committed"), *(bus._stream(*tp) for tp in tps)]
        try:
            bus._lua_commit(keys=keys, args=args)
        except redis.ResponseError as exc:
            if "VT_FENCED" not in str(exc):
                raise
            where = str(exc).split("VT_FENCED", 1)[1].strip()
            topic, _, part = where.rpartition(":")
            raise self._fenced(TopicPartition(topic, int(part))) from None

    def _read_committed(self, tp: TopicPartition) -> int | None:
        raw = self._bus._r.hget(self._bus._gkey(self.group, "committed"), self._field(tp))
        return None if raw is None else int(raw)

    def _end_offset(self, tp: TopicPartition) -> int:
        return self._bus._end(*tp)

    def _partitions(self, topic: str) -> int:
        return self._bus.partitions(topic)

    def _leave(self) -> None:
        bus = self._bus
        args: list[Any] = [self.member_id, self._incarnation]
        for tp, st in self._owned.items():
            args += [self._field(tp), f"{st.epoch}|{self.member_id}"]
        # If the server is gone, the session timeout expires this member anyway.
        with contextlib.suppress(redis.ConnectionError):
            bus._lua_leave(keys=[self._members, self._subs, self._owners], args=args)
        with bus._lock:
            bus._consumers.discard(self)


class RedisLiveSubscription(BufferedLiveSubscription):
    """Live records of one topic over Redis Pub/Sub (see :class:`LiveSubscription`).

    Use it from one thread at a time.
    """

    def __init__(self, bus: RedisBus, topic: str, maxlen: int) -> None:
        super().__init__(topic, maxlen)
        self._bus = bus
        self._ps = bus._r.pubsub()
        self._ps.subscribe(bus._channel(topic))
        # SUBSCRIBE is asynchronous: wait for the server's confirmation, so that every record
        # published after this constructor returns reaches us.
        deadline = time.monotonic() + 5.0
        while True:
            msg = self._ps.get_message(timeout=max(0.0, deadline - time.monotonic()))
            if msg is not None and msg["type"] == "subscribe":
                break
            if time.monotonic() >= deadline:
                self._ps.close()
                raise BusError(f"Redis at {bus.address} did not confirm the live subscription to {topic!r}")

    def _accept(self, msg: Mapping[str, Any] | None) -> bool:
        if msg is None or msg["type"] != "message":
            return False
        firsts, _, body = bytes(msg["data"]).partition(b"|")
        streams, parts, records = _live_decoder.decode(body)
        nxt = {p: int(first) - 1 for p, first in zip(streams, firsts.split(b","), strict=True)}
        for p, (key, value, ts) in zip(parts, records, strict=True):
            offset = nxt[p]
            nxt[p] = offset + 1
            self._push(Record(self.topic, p, offset, key, value, ts))
        return True

    def _pump(self) -> None:
        while True:
            msg = self._ps.get_message(timeout=0.0)
            if msg is None:
                return
            self._accept(msg)

    def get(self, timeout_s: float = 0.0) -> Record | None:
        timeout = check_timeout(timeout_s)
        self._check_open()
        self._pump()
        deadline = time.monotonic() + timeout
        while not self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._accept(self._ps.get_message(timeout=remaining))
        return self._buf.popleft()

    def drain(self) -> list[Record]:
        self._check_open()
        self._pump()
        return self._take_all()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._ps.close()
        finally:
            with self._bus._lock:
                self._bus._subs.discard(self)
