"""One conformance suite for every bus backend: the memory, Redis and Kafka buses must be
indistinguishable through the ``Bus`` interface (DESIGN.md §1). Kafka runs on a real
Kafka-protocol broker (Tansu) that the ``kafka_url`` fixture starts."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence

import pytest
import redis

from vtrade.core.events import Trade
from vtrade.core.ids import partition_for
from vtrade.runtime.bus import (
    Bus,
    BusClosedError,
    BusError,
    CommitError,
    Consumer,
    Deduplicator,
    JournaledBus,
    KafkaBus,
    MemberConflictError,
    MemoryBus,
    Record,
    RedisBus,
    TopicConflictError,
    TopicPartition,
    UnknownTopicError,
    open_bus,
)


class FakeClock:
    """The heartbeat clock, moved by hand so that sessions expire without sleeping."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _new_bus(kind: str, request: pytest.FixtureRequest, clock: FakeClock) -> Bus:
    if kind == "memory":
        return MemoryBus(clock=clock)
    if kind == "journaled":  # the durable memory bus must behave exactly like the plain one
        return JournaledBus(request.getfixturevalue("tmp_path") / "bus.duckdb", clock=clock)
    ns = f"vtt-{uuid.uuid4().hex[:12]}"  # a fresh namespace per test: tests never see each other
    if kind == "kafka":
        bootstrap = request.getfixturevalue("kafka_url").removeprefix("kafka://")

        def delete_topics() -> None:
            with KafkaBus(bootstrap, namespace=ns) as cleaner:
                cleaner.purge()

        request.addfinalizer(delete_topics)
        return KafkaBus(bootstrap, namespace=ns, clock=clock, session_timeout_ms=KAFKA_SESSION_MS)
    url = request.getfixturevalue("redis_url")

    def purge() -> None:
        with RedisBus(url, namespace=ns) as cleaner:
            cleaner.purge()

    request.addfinalizer(purge)
    return RedisBus(url, namespace=ns, clock=clock)


# The broker-side session of the test consumers: short, so that joins are quick on Tansu (a join
# takes about half of it) and a dead member's partitions move on soon.
KAFKA_SESSION_MS = 2000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "journaled", "redis", "kafka"])
def bus(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Bus]:
    b = _new_bus(request.param, request, clock)
    yield b
    b.close()


def trade(i: int, symbol: str = "SPY") -> Trade:
    return Trade(
        ts=1_700_000_000_000_000_000 + i,
        recv_ts=1_700_000_000_000_000_000 + i,
        symbol=symbol,
        seq=i,
        price=10_000 + i,
        size=1 + i % 3,
    )


def poll_until(consumers: Consumer | Sequence[Consumer], count: int, timeout_s: float = 5.0) -> list[Record]:
    """Poll (round-robin over ``consumers``) until ``count`` records came or time ran out."""
    group = [consumers] if isinstance(consumers, Consumer) else list(consumers)
    out: list[Record] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < count and time.monotonic() < deadline:
        for c in group:
            out.extend(c.poll(timeout_s=0.02))
    return out


def offsets(records: Sequence[Record]) -> list[tuple[int, int]]:
    return [(r.partition, r.offset) for r in records]


# -- topics, partitioning, offsets -------------------------------------------------------------


def test_create_topic_is_idempotent_and_refuses_another_partition_count(bus: Bus) -> None:
    bus.create_topic("orders", 3)
    bus.create_topic("orders", 3)
    with pytest.raises(TopicConflictError, match="already exists with 3 partitions, not 4"):
        bus.create_topic("orders", 4)
    assert bus.topics() == {"orders": 3}
    assert bus.partitions("orders") == 3


def test_keys_go_to_kafkas_partition(bus: Bus) -> None:
    bus.create_topic("market", 8)
    keys = [f"SYM{i}" for i in range(40)] + ["SPY", "BTCUSDT", "acct-7", "ü-unicode"]
    for k in keys:
        assert bus.publish("market", k, b"x").partition == partition_for(k, 8)
    used = {partition_for(k, 8) for k in keys}
    assert len(used) > 4  # the keys really are spread, so the check above means something


def test_offsets_are_dense_and_ordered_within_each_partition(bus: Bus) -> None:
    bus.create_topic("t", 3)
    metas = [bus.publish("t", f"k{i % 7}", str(i).encode()) for i in range(60)]
    ends = bus.end_offsets("t")
    assert sum(ends) == 60
    for p in range(3):
        recs = bus.read("t", p, 0, max_records=100)
        assert [r.offset for r in recs] == list(range(ends[p]))
        sent = [m for m in metas if m.partition == p]
        assert [r.offset for r in recs] == [m.offset for m in sent]
        assert [int(r.value) for r in recs] == sorted(int(r.value) for r in recs)  # publish order
    assert bus.read("t", 0, 2, max_records=1)[0].offset == 2
    assert bus.read("t", 0, ends[0]) == []


def test_backends_agree_record_for_record(request: pytest.FixtureRequest, clock: FakeClock) -> None:
    buses = [_new_bus(kind, request, clock) for kind in ("memory", "redis", "kafka")]
    seen = []
    for b in buses:
        with b:
            b.create_topic("market.SPY", 4)
            metas = [b.publish("market.SPY", f"K{i % 9}", trade(i)) for i in range(50)]
            metas += b.publish_many("market.SPY", [(f"K{i % 5}", trade(100 + i, "QQQ")) for i in range(10)])
            logs = [b.read("market.SPY", p) for p in range(4)]
            with b.consumer("g", "market.SPY", member_id="m") as c:
                polled = sorted(poll_until(c, 60), key=lambda r: (r.partition, r.offset))
            seen.append((metas, logs, polled))
    assert seen[0] == seen[1]
    assert seen[0] == seen[2]
    assert sum(len(log) for log in seen[0][1]) == 60


def test_publish_many_returns_where_each_record_went(bus: Bus) -> None:
    # Large enough to span several of the Redis bus's script calls and the Kafka producer's batches.
    bus.create_topic("t", 3)
    before = [bus.publish("t", f"k{i}", b"single") for i in range(4)]
    items = [("" if i % 11 == 0 else f"k{i % 7}", str(i).encode()) for i in range(2500)]  # "" is a key too
    metas = bus.publish_many("t", items)
    assert [m.partition for m in metas] == [partition_for(k, 3) for k, _ in items]
    logs = [bus.read("t", p, 0, 5000) for p in range(3)]
    assert sum(map(len, logs)) == 2504
    for (key, value), m in zip(items, metas, strict=True):
        r = logs[m.partition][m.offset]
        assert (r.offset, r.key, r.value, r.timestamp_ns) == (m.offset, key, value, m.timestamp_ns)
    for p in range(3):  # after the single publishes, in publish order, densely
        mine = [m.offset for m in before + metas if m.partition == p]
        assert mine == list(range(len(logs[p])))
    assert bus.publish_many("t", []) == []
    assert sum(bus.end_offsets("t")) == 2504


def test_record_carries_the_event_and_its_time(bus: Bus) -> None:
    bus.create_topic("market.SPY", 2)
    md = bus.publish("market.SPY", "SPY", trade(3))
    assert md.timestamp_ns == trade(3).ts
    (rec,) = bus.read("market.SPY", md.partition)
    assert rec.event == trade(3)
    assert rec.timestamp_ns == trade(3).ts
    assert rec.key == "SPY"
    raw = bus.publish("market.SPY", "SPY", b"raw", timestamp_ns=42)
    assert bus.read("market.SPY", raw.partition, raw.offset)[0].timestamp_ns == 42


def test_concurrent_publishers_get_dense_unique_offsets(bus: Bus) -> None:
    bus.create_topic("t", 2)

    def produce(w: int) -> None:
        for i in range(50):
            bus.publish("t", f"k{i % 4}", f"{w}-{i}".encode())

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    values = []
    for p, end in enumerate(bus.end_offsets("t")):
        recs = bus.read("t", p, 0, 1000)
        assert [r.offset for r in recs] == list(range(end))
        values += [r.value for r in recs]
    assert sorted(values) == sorted(f"{w}-{i}".encode() for w in range(4) for i in range(50))


# -- consumer groups -------------------------------------------------------------------------


def test_each_group_reads_every_record_independently(bus: Bus) -> None:
    bus.create_topic("exec", 3)
    for i in range(20):
        bus.publish("exec", f"acct-{i}", str(i).encode())
    with bus.consumer("portfolio", "exec") as a, bus.consumer("game", "exec") as b:
        got_a = poll_until(a, 20)
        got_b = poll_until(b, 20)
        assert sorted(offsets(got_a)) == sorted(offsets(got_b))
        assert len(set(offsets(got_a))) == 20
        a.commit()
        assert b.committed("exec", 0) is None
        assert a.committed("exec", 0) == bus.end_offsets("exec")[0]


def test_commit_and_committed_follow_kafka(bus: Bus) -> None:
    bus.create_topic("t", 1)
    for i in range(10):
        bus.publish("t", "k", str(i).encode())
    with bus.consumer("g", "t") as c:
        recs = poll_until(c, 10)
        assert c.committed("t", 0) is None
        assert c.commit(recs[3]) == {TopicPartition("t", 0): 4}
        assert c.committed("t", 0) == 4  # the next offset to read
        c.commit(recs[1])  # never backwards
        assert c.committed("t", 0) == 4
        c.commit(recs[4:7])
        assert c.committed("t", 0) == 7
        c.commit()  # everything delivered
        assert c.committed("t", 0) == 10
        assert c.commit([]) == {}


def test_group_offsets_are_read_from_outside_the_group_without_disturbing_it(bus: Bus) -> None:
    bus.create_topic("t", 2)
    keys = {partition_for(k, 2): k for k in ("a", "b", "c", "d")}  # one key per partition
    for i in range(6):
        bus.publish("t", keys[i % 2], str(i).encode())
    assert bus.group_offsets("g", "t") == [None, None]
    with bus.consumer("g", "t", member_id="only") as c:
        recs = poll_until(c, 6)
        c.commit([r for r in recs if r.partition == 1][:2])
        assert bus.group_offsets("g", "t") == [None, 2]
        c.commit()
        assert bus.group_offsets("g", "t") == [3, 3]
        assert bus.group_offsets("other", "t") == [None, None]
        # The member still owns both partitions and goes on reading: the lookup did not join.
        assert sorted(c.assignment()) == [TopicPartition("t", 0), TopicPartition("t", 1)]
        bus.publish("t", keys[0], b"6")
        assert [r.offset for r in poll_until(c, 1)] == [3]
    with pytest.raises(UnknownTopicError):
        bus.group_offsets("g", "missing")
    with pytest.raises(ValueError):
        bus.group_offsets("", "t")


def test_a_new_member_resumes_from_the_committed_offset(bus: Bus) -> None:
    bus.create_topic("t", 1)
    for i in range(10):
        bus.publish("t", "k", str(i).encode())
    with bus.consumer("g", "t", member_id="first") as c1:
        recs = poll_until(c1, 10)
        c1.commit(recs[5])
    with bus.consumer("g", "t", member_id="second") as c2:
        assert [r.offset for r in poll_until(c2, 4)] == [6, 7, 8, 9]
        bus.publish("t", "k", b"10")
        assert [r.offset for r in poll_until(c2, 1)] == [10]
        assert c2.poll() == []


def test_uncommitted_records_go_to_a_survivor_when_a_member_closes(bus: Bus) -> None:
    bus.create_topic("t", 1)
    for i in range(6):
        bus.publish("t", "k", str(i).encode())
    a = bus.consumer("g", "t", member_id="a")
    b = bus.consumer("g", "t", member_id="b")
    assert [r.offset for r in poll_until(a, 6)] == list(range(6))
    assert b.poll() == []  # the single partition is a's
    a.commit(bus.read("t", 0, 1, 1))  # offsets 0-1 done, 2-5 delivered but not committed
    bus.publish("t", "k", b"6")
    a.close()  # dies without committing
    # redelivered in offset order, before the new record
    assert [r.offset for r in poll_until(b, 5)] == [2, 3, 4, 5, 6]
    assert b.assignment() == [TopicPartition("t", 0)]
    b.close()


def test_uncommitted_records_go_to_a_survivor_when_a_heartbeat_expires(bus: Bus, clock: FakeClock) -> None:
    bus.create_topic("t", 2)
    for i in range(10):
        bus.publish("t", f"k{i}", str(i).encode())
    a = bus.consumer("g", "t", member_id="a", session_timeout_s=10)
    got_a = poll_until(a, 10)
    assert len(got_a) == 10
    b = bus.consumer("g", "t", member_id="b", session_timeout_s=10)
    clock.advance(11)  # a goes silent past its session timeout
    got_b = poll_until(b, 10)
    assert sorted(offsets(got_b)) == sorted(offsets(got_a))
    assert b.assignment() == [TopicPartition("t", 0), TopicPartition("t", 1)]
    b.commit(got_b[:1])
    before = (b.committed("t", 0), b.committed("t", 1))
    with pytest.raises(CommitError, match="reassigned"):
        a.commit(got_a)  # the zombie is fenced
    assert (b.committed("t", 0), b.committed("t", 1)) == before
    b.close()
    a.close()


def test_polling_keeps_a_member_alive(bus: Bus, clock: FakeClock) -> None:
    bus.create_topic("t", 1)
    bus.publish("t", "k", b"0")
    a = bus.consumer("g", "t", member_id="a", session_timeout_s=10)
    assert len(poll_until(a, 1)) == 1
    b = bus.consumer("g", "t", member_id="b", session_timeout_s=10)
    for _ in range(3):
        clock.advance(6)  # longer than the timeout in total, never between two heartbeats
        a.poll()
        assert b.poll() == []
    assert a.assignment() == [TopicPartition("t", 0)]
    a.close()
    b.close()


def test_partitions_are_shared_and_handed_over_cooperatively(bus: Bus) -> None:
    bus.create_topic("t", 4)
    for i in range(8):
        bus.publish("t", f"k{i}", b"old")
    a = bus.consumer("g", "t", member_id="a")
    poll_until(a, 8)
    a.commit()
    b = bus.consumer("g", "t", member_id="b")
    for i in range(40):
        bus.publish("t", f"k{i}", b"new")
    got = poll_until([a, b], 40)
    assert all(r.value == b"new" for r in got)
    assert len(got) == 40 and len(set(offsets(got))) == 40  # everything, once
    assert [p for _, p in a.assignment()] == [0, 1]
    assert [p for _, p in b.assignment()] == [2, 3]
    a.close()
    b.close()


def test_latest_reset_starts_at_the_end_and_stays_there(bus: Bus) -> None:
    bus.create_topic("t", 1)
    for i in range(3):
        bus.publish("t", "k", str(i).encode())
    late = bus.consumer("dash", "t", member_id="x", auto_offset_reset="latest")
    assert late.poll() == []
    bus.publish("t", "k", b"3")
    late.close()  # no commit: the group's start point still holds for the next member
    with bus.consumer("dash", "t", member_id="y") as again:
        assert [r.offset for r in poll_until(again, 1)] == [3]
    with bus.consumer("audit", "t") as early:
        assert [r.offset for r in poll_until(early, 4)] == [0, 1, 2, 3]


def test_seek_replays_and_rejects_positions_beyond_the_log(bus: Bus) -> None:
    bus.create_topic("t", 1)
    for i in range(5):
        bus.publish("t", "k", str(i).encode())
    with bus.consumer("g", "t") as c:
        poll_until(c, 5)
        c.seek("t", 0, 2)
        assert c.position("t", 0) == 2
        assert [r.offset for r in poll_until(c, 3)] == [2, 3, 4]
        c.seek("t", 0, 5)
        assert c.poll() == []
        with pytest.raises(ValueError, match="the log ends at 5"):
            c.seek("t", 0, 6)
        c.commit()
        assert c.committed("t", 0) == 5


def test_poll_waits_for_a_record_and_times_out_when_none_comes(bus: Bus) -> None:
    bus.create_topic("t", 2)
    with bus.consumer("g", "t") as c:
        t0 = time.monotonic()
        assert c.poll(timeout_s=0.2) == []
        assert time.monotonic() - t0 >= 0.2
        timer = threading.Timer(0.2, lambda: bus.publish("t", "k", b"late"))
        timer.start()
        t0 = time.monotonic()
        got = c.poll(timeout_s=5)
        timer.join()
        assert [r.value for r in got] == [b"late"]
        assert time.monotonic() - t0 < 4.5  # woke on the record, not at the 5 s timeout (room for a loaded CI)


# -- idempotent consumption -------------------------------------------------------------------


def fold(balances: dict[str, int], r: Record) -> None:
    balances[r.key] = balances.get(r.key, 0) + int(r.value)


def test_idempotent_consumer_ends_in_the_same_state_despite_redelivery(bus: Bus, clock: FakeClock) -> None:
    bus.create_topic("cash", 2)
    for i in range(30):
        bus.publish("cash", f"acct-{i % 5}", str(i * 7 % 11 + 1).encode())
    reference: dict[str, int] = {}
    for p in range(2):
        for r in bus.read("cash", p):
            fold(reference, r)

    # One worker state (restored from its snapshot after a crash) with its deduplicator.
    state: dict[str, int] = {}
    dedup = Deduplicator()
    naive: dict[str, int] = {}  # the same fold without deduplication, to prove redelivery happened
    a = bus.consumer("ledger", "cash", member_id="a")
    first = a.poll(max_records=12)
    for r in dedup.fresh(first):
        fold(state, r)
    for r in first:
        fold(naive, r)
    a.commit(first[:4])  # crashes after committing only part of what it processed
    clock.advance(60)
    b = bus.consumer("ledger", "cash", member_id="b")
    rest = poll_until(b, 30 - 4)
    for r in rest:
        fold(naive, r)
    for r in dedup.fresh(rest):
        fold(state, r)
    b.commit()
    assert len(first) + len(rest) > 30  # some records really were delivered twice
    assert naive != reference
    assert state == reference
    assert dedup.watermarks == {TopicPartition("cash", p): end - 1 for p, end in enumerate(bus.end_offsets("cash"))}
    b.close()
    a.close()


def test_deduplicator_restores_from_watermarks_and_skips_failed_marks() -> None:
    recs = [Record("t", 0, i, "k", b"1", 0) for i in range(4)]
    d = Deduplicator({("t", 0): 1})
    assert [r.offset for r in d.fresh(recs)] == [2, 3]
    d2 = Deduplicator()
    with pytest.raises(RuntimeError):
        for r in d2.fresh(recs):
            if r.offset == 2:
                raise RuntimeError("processing failed")
    assert d2.watermarks == {TopicPartition("t", 0): 1}  # offset 2 was not processed
    with pytest.raises(ValueError, match="watermark must be >= 0"):
        Deduplicator({("t", 0): -5})


# -- live fan-out --------------------------------------------------------------------------------


def test_live_subscribers_get_records_published_after_they_subscribe(bus: Bus) -> None:
    bus.create_topic("market", 2)
    bus.publish("market", "SPY", trade(0))  # before anyone listens: not delivered live
    with bus.subscribe_live("market") as s1, bus.subscribe_live("market") as s2:
        metas = [bus.publish("market", sym, trade(i, sym)) for i, sym in enumerate(["SPY", "QQQ", "IWM"], 1)]
        for s in (s1, s2):
            got = [s.get(timeout_s=2) for _ in metas]
            assert [(r.partition, r.offset) for r in got if r] == [(m.partition, m.offset) for m in metas]
            assert [r.event for r in got if r] == [trade(i, sym) for i, sym in enumerate(["SPY", "QQQ", "IWM"], 1)]
            assert s.get(timeout_s=0.05) is None
    with pytest.raises(BusClosedError):
        s1.get()


def test_live_subscribers_get_every_record_of_a_batch_in_order(bus: Bus) -> None:
    bus.create_topic("market", 3)
    with bus.subscribe_live("market") as s:
        metas = bus.publish_many("market", [(f"S{i % 5}", trade(i, f"S{i % 5}")) for i in range(1500)])
        metas += [bus.publish("market", "S0", trade(1500, "S0"))]
        metas += bus.publish_many("market", [(f"S{i % 5}", trade(i, f"S{i % 5}")) for i in range(1501, 1600)])
        got: list[Record] = []
        deadline = time.monotonic() + 10
        while len(got) < len(metas) and time.monotonic() < deadline:
            got += s.drain() or [r for r in [s.get(timeout_s=0.1)] if r]
    assert len(got) == 1600
    for p in range(3):  # per partition, every record in publish order, with its offset
        sent = [(m.offset, m.timestamp_ns) for m in metas if m.partition == p]
        assert [(r.offset, r.timestamp_ns) for r in got if r.partition == p] == sent
    assert sorted(r.event.seq for r in got) == list(range(1600))  # type: ignore[attr-defined]


def test_a_slow_live_subscriber_keeps_only_the_latest(bus: Bus) -> None:
    bus.create_topic("market", 1)
    with bus.subscribe_live("market", maxlen=2) as small, bus.subscribe_live("market") as witness:
        for i in range(5):
            bus.publish("market", "SPY", str(i).encode())
        assert len([witness.get(timeout_s=2) for _ in range(5)]) == 5
        time.sleep(0.05)  # the server has sent everything; let it reach the slow reader's socket
        assert [r.value for r in small.drain()] == [b"3", b"4"]
        assert small.dropped == 3


# -- bad input ------------------------------------------------------------------------------------


def test_bad_topics_and_publishes_change_nothing(bus: Bus) -> None:
    for bad, err in [(-1, ValueError), (0, ValueError), (2.5, TypeError), (True, TypeError)]:
        with pytest.raises(err, match="partitions"):
            bus.create_topic("x", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid topic name"):
        bus.create_topic("has space", 1)
    assert bus.topics() == {}
    bus.create_topic("t", 2)
    with pytest.raises(UnknownTopicError, match="unknown topic 'nope'"):
        bus.publish("nope", "k", b"v")
    with pytest.raises(TypeError, match="bytes or a vtrade Event, got str"):
        bus.publish("t", "k", "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got int"):
        bus.publish("t", "k", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key must be a str"):
        bus.publish("t", 7, b"v")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timestamp_ns must be >= 0"):
        bus.publish("t", "k", b"v", timestamp_ns=-1)
    with pytest.raises(TypeError):
        bus.publish_many("t", [("k", b"ok"), ("k", None)])  # type: ignore[list-item]
    assert bus.end_offsets("t") == [0, 0]
    with pytest.raises(UnknownTopicError):
        bus.read("nope", 0)
    with pytest.raises(ValueError, match=r"partitions 0\.\.1"):
        bus.read("t", 2)
    with pytest.raises(ValueError, match="offset must be >= 0"):
        bus.read("t", 0, -1)
    with pytest.raises(UnknownTopicError):
        bus.subscribe_live("nope")
    with pytest.raises(UnknownTopicError):
        bus.consumer("g", ["t", "nope"])
    with pytest.raises(ValueError, match="auto_offset_reset"):
        bus.consumer("g", "t", auto_offset_reset="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid group name"):
        bus.consumer("a group", "t")


def test_bad_commits_are_refused_and_commit_nothing(bus: Bus) -> None:
    bus.create_topic("t", 1)
    bus.create_topic("u", 1)
    for i in range(5):
        bus.publish("t", "k", str(i).encode())
        bus.publish("u", "k", str(i).encode())
    with bus.consumer("ga", "t", member_id="a") as a, bus.consumer("gb", "t", member_id="b") as b:
        from_b = poll_until(b, 5)
        with pytest.raises(CommitError, match="only been delivered offsets below 0"):
            a.commit(from_b[3])  # another group's record, never delivered to a
        with pytest.raises(CommitError, match="of topic 'u'"):
            a.commit(bus.read("u", 0))  # another topic
        with pytest.raises(TypeError, match="commit takes Records"):
            a.commit([b"not a record"])  # type: ignore[list-item]
        mixed = [*poll_until(a, 5)[:2], bus.read("u", 0)[0]]
        with pytest.raises(CommitError):
            a.commit(mixed)  # one bad record: nothing of the batch is committed
        assert a.committed("t", 0) is None and b.committed("t", 0) is None
        with pytest.raises(ValueError, match="max_records"):
            a.poll(max_records=0)
        with pytest.raises(ValueError, match=r"partitions 0\.\.0"):
            a.committed("t", 3)


def test_member_ids_are_unique_among_live_members(bus: Bus) -> None:
    bus.create_topic("t", 1)
    bus.publish("t", "k", b"0")
    with bus.consumer("g", "t", member_id="w1") as c:
        with pytest.raises(MemberConflictError, match="already live"):
            bus.consumer("g", "t", member_id="w1")
        assert [r.offset for r in poll_until(c, 1)] == [0]  # the original is unharmed
    c2 = bus.consumer("g", "t", member_id="w1")  # free again once the first has left
    c2.close()
    with pytest.raises(BusClosedError):
        c2.poll()


def test_a_closed_bus_refuses_work(bus: Bus) -> None:
    bus.create_topic("t", 1)
    c = bus.consumer("g", "t")
    bus.close()
    assert c.closed
    with pytest.raises(BusClosedError):
        bus.publish("t", "k", b"v")
    bus.close()  # idempotent


# -- URLs and Redis specifics -----------------------------------------------------------------------


def test_open_bus_picks_the_backend_from_the_url(redis_url: str, kafka_url: str) -> None:
    with open_bus("memory://") as m:
        assert isinstance(m, MemoryBus)
    ns = f"vtt-{uuid.uuid4().hex[:12]}"
    with open_bus(f"{redis_url}?namespace={ns}") as r:
        assert isinstance(r, RedisBus) and r.namespace == ns
        r.create_topic("t", 1)
        r.purge()
    with open_bus(f"{kafka_url}?namespace={ns}&session_timeout_ms=3000") as k:
        assert isinstance(k, KafkaBus) and k.namespace == ns and k.session_timeout_ms == 3000
        k.create_topic("t", 2)
        assert k.topics() == {"t": 2}
        assert k.purge() == 1 and k.topics() == {}
    for bad, words in [
        (f"{kafka_url}?namespace=a.b", "'.' separates the namespace"),
        (f"{kafka_url}?acks=1", r"unknown option\(s\) \['acks'\]"),
        (f"{kafka_url}?session_timeout_ms=soon", "session_timeout_ms must be a positive int"),
        ("kafka:///path", "a Kafka bus URL is"),
    ]:
        with pytest.raises(ValueError, match=words):
            open_bus(bad)
    with pytest.raises(ValueError, match="unknown bus URL 'kafka2://x:1'"):
        open_bus("kafka2://x:1")
    with pytest.raises(ValueError, match="memory bus takes no host"):
        open_bus("memory://somewhere")


@pytest.fixture
def redis_t(
    request: pytest.FixtureRequest, redis_url: str, clock: FakeClock
) -> Iterator[tuple[RedisBus, redis.Redis, str]]:
    """A Redis bus with a topic ``t`` of one partition, a plain client of its server, and the
    partition's stream."""
    bus = _new_bus("redis", request, clock)
    assert isinstance(bus, RedisBus)
    raw = redis.Redis.from_url(redis_url)
    with bus:
        bus.create_topic("t", 1)
        yield bus, raw, f"{bus.namespace}:log:t:0"
    raw.close()


def test_redis_new_owner_claims_the_dead_members_pending_entries(
    redis_t: tuple[RedisBus, redis.Redis, str], clock: FakeClock
) -> None:
    bus, raw, stream = redis_t
    for i in range(4):
        bus.publish("t", "k", str(i).encode())
    assert [i for i, _ in raw.xrange(stream) or []] == [b"0-1", b"0-2", b"0-3", b"0-4"]  # id = offset + 1
    a = bus.consumer("g", "t", member_id="a")
    poll_until(a, 4)
    b = bus.consumer("g", "t", member_id="b")
    clock.advance(30)
    assert [r.offset for r in poll_until(b, 4)] == [0, 1, 2, 3]
    pending = raw.xpending_range(stream, "g", "-", "+", 10)
    assert [(p["message_id"], p["consumer"]) for p in pending] == [(f"0-{i}".encode(), b"b") for i in range(1, 5)]
    b.commit()
    assert raw.xpending(stream, "g")["pending"] == 0
    assert raw.hget(f"{bus.namespace}:group:g:committed", "t:0") == b"4"


def test_redis_commit_acknowledges_exactly_the_entries_below_the_offset(
    redis_t: tuple[RedisBus, redis.Redis, str],
) -> None:
    bus, raw, stream = redis_t
    bus.publish_many("t", [("k", str(i).encode()) for i in range(2100)])
    with bus.consumer("g", "t", member_id="a") as c:
        records = poll_until(c, 2100)
        assert raw.xpending(stream, "g")["pending"] == 2100
        assert c.commit(records[1500]) == {TopicPartition("t", 0): 1501}
        left = raw.xpending(stream, "g")
        assert (left["pending"], left["min"], left["max"]) == (599, b"0-1502", b"0-2100")
        c.commit()
        assert raw.xpending(stream, "g")["pending"] == 0
        assert c.committed("t", 0) == 2100


def test_redis_reads_entries_by_field_name_and_refuses_foreign_ones(
    redis_t: tuple[RedisBus, redis.Redis, str],
) -> None:
    bus, raw, stream = redis_t
    raw.xadd(stream, {"t": 5, "v": b"x", "k": "key"}, id="0-1")  # another client's field order
    assert bus.read("t", 0) == [Record("t", 0, 0, "key", b"x", 5)]
    raw.xadd(stream, {"k": "key", "v": b"y"}, id="0-2")  # no time
    with pytest.raises(BusError, match=r"malformed stream entry b'0-2' of t\[0\]"):
        bus.read("t", 0)
    raw.xadd(stream, {"k": "key", "v": b"z", "t": 6}, id="7-1")  # an id of another scheme
    with pytest.raises(BusError, match=r"stream entry b'7-1' of t\[0\] was not appended by vtrade"):
        bus.read("t", 0, 2)
    with pytest.raises(BusError, match="cannot append to 't'"):
        bus.publish_many("t", [("key", b"w")])
