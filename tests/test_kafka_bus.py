"""What only the Kafka bus has to show, on a real Kafka-protocol broker (Tansu, started by the
``kafka_url`` fixture): it agrees with plain Kafka clients, its end offsets are exact even where
the broker's ListOffsets is not, and a killed process's partitions move on. The ``Bus``
semantics themselves are in test_bus_conformance.py, which runs on Kafka too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import confluent_kafka as ck
import pytest

from vtrade.core.ids import partition_for
from vtrade.runtime.bus import Consumer, KafkaBus, Record, TopicPartition

SESSION_MS = 2000


@pytest.fixture
def bootstrap(kafka_url: str) -> str:
    return kafka_url.removeprefix("kafka://")


@pytest.fixture
def bus(bootstrap: str) -> Iterator[KafkaBus]:
    b = KafkaBus(bootstrap, namespace=f"vtk-{uuid.uuid4().hex[:12]}", session_timeout_ms=SESSION_MS)
    yield b
    if not b._closed:
        b.purge()
        b.close()


def raw_consume(bootstrap: str, topic: str, partitions: int, count: int, timeout_s: float = 20) -> list[ck.Message]:
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "raw", "enable.auto.commit": False})
    c.assign([ck.TopicPartition(topic, p, 0) for p in range(partitions)])
    out: list[ck.Message] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < count and time.monotonic() < deadline:
        out += [m for m in c.consume(100, 0.2) if m.error() is None]
    c.close()
    return out


def test_plain_kafka_clients_and_the_bus_agree(bus: KafkaBus, bootstrap: str) -> None:
    bus.create_topic("t", 8)
    name = f"{bus.namespace}.t"
    keys = [f"SYM{i}" for i in range(30)] + ["acct-7", "ü-unicode"]
    # librdkafka's "murmur2" partitioner is Java Kafka's default: the bus must pick the same.
    p = ck.Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2"})
    landed: dict[str, int] = {}
    for k in keys:
        p.produce(name, b"plain", k.encode(), timestamp=1_700_000_000_123,
                  on_delivery=lambda err, msg, k=k: landed.__setitem__(k, msg.partition()))  # fmt: skip
    p.flush(30)
    assert landed == {k: partition_for(k, 8) for k in keys}
    assert len(set(landed.values())) > 4
    # The bus reads what a plain producer wrote (its timestamp is in ms)...
    spy = [r for r in bus.read("t", partition_for("SYM3", 8)) if r.key == "SYM3"]
    assert [(r.value, r.timestamp_ns) for r in spy] == [(b"plain", 1_700_000_000_123_000_000)]
    # ... and a plain consumer reads what the bus wrote, exact time in the vt.ts header.
    md = bus.publish("t", "SPY", b"from vtrade", timestamp_ns=1_700_000_000_123_456_789)
    got = [m for m in raw_consume(bootstrap, name, 8, len(keys) + 1) if m.key() == b"SPY"]
    assert len(got) == 1
    msg = got[0]
    assert (msg.partition(), msg.offset(), msg.value()) == (md.partition, md.offset, b"from vtrade")
    assert msg.timestamp()[1] == 1_700_000_000_123
    assert dict(msg.headers() or [])["vt.ts"] == (1_700_000_000_123_456_789).to_bytes(8, "big")


def test_end_offsets_are_exact_after_batched_publishes(bus: KafkaBus) -> None:
    # A batch of many records is one Kafka record batch: Tansu's ListOffsets would say "base + 1".
    bus.create_topic("t", 1)
    metas = bus.publish_many("t", [("k", b"%d" % i) for i in range(1000)])
    assert [m.offset for m in metas] == list(range(1000))
    fresh = KafkaBus(bus.bootstrap, namespace=bus.namespace)  # knows nothing of what was produced
    try:
        assert fresh.end_offsets("t") == [1000]
        assert [r.offset for r in fresh.read("t", 0, 995)] == [995, 996, 997, 998, 999]
        assert fresh.read("t", 0, 1000) == []
        with fresh.subscribe_live("t") as live:
            fresh.publish("t", "k", b"new")
            assert [(r.offset, r.value) for r in [live.get(timeout_s=10)] if r] == [(1000, b"new")]
        with fresh.consumer("late", "t", auto_offset_reset="latest") as c:
            assert c.position("t", 0) == 1001
    finally:
        fresh.close()


VICTIM = textwrap.dedent(
    """
    import sys
    from vtrade.runtime.bus import KafkaBus
    bus = KafkaBus(sys.argv[1], namespace=sys.argv[2], session_timeout_ms=int(sys.argv[3]))
    c = bus.consumer("g", "t", member_id="a-victim")
    got = []
    while len(got) < 10:
        got += c.poll(timeout_s=1)
    c.commit(got[2])
    print("polled", len(got), flush=True)
    while True:  # alive until killed: a live member polls (the group's rebalances wait for that)
        got += c.poll(timeout_s=0.1)
    """
)


def test_a_killed_process_loses_its_partitions_to_a_survivor(bus: KafkaBus, tmp_path: Path) -> None:
    bus.create_topic("t", 1)
    for i in range(10):
        bus.publish("t", "k", b"%d" % i)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), *sys.path])}
    victim = subprocess.Popen(
        [sys.executable, "-c", VICTIM, bus.bootstrap, bus.namespace, str(SESSION_MS)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=(tmp_path / "victim.log").open("wb"), env=env,
    )  # fmt: skip
    try:
        assert victim.stdout is not None
        line = victim.stdout.readline()  # waits for the victim to poll and commit
        assert line == b"polled 10\n", (tmp_path / "victim.log").read_text()
        with bus.consumer("g", "t", member_id="b-survivor") as survivor:
            assert survivor.assignment() == []  # "a-victim" sorts first: the partition stays there
            os.kill(victim.pid, signal.SIGKILL)  # no leave, no commit: the broker's session must notice
            victim.wait(10)
            t0 = time.monotonic()
            got: list[Record] = []
            while len(got) < 7 and time.monotonic() - t0 < 30:
                got += survivor.poll(timeout_s=0.5)
            assert [r.offset for r in got] == [3, 4, 5, 6, 7, 8, 9]  # from the victim's commit on
            assert survivor.assignment() == [TopicPartition("t", 0)]
            assert time.monotonic() - t0 >= SESSION_MS / 1000 * 0.5  # it took the broker's session
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()


def test_a_partition_moves_on_only_once_its_holder_polls_again(
    bus: KafkaBus, eventually: Callable[..., None]
) -> None:
    bus.create_topic("t", 2)
    keys = {partition_for(f"k{i}", 2): f"k{i}" for i in range(20)}  # a key for each partition
    for i in range(10):
        for p in (0, 1):
            bus.publish("t", keys[p], b"%d" % i)
    a = bus.consumer("g", "t", member_id="a")
    joined: list[Consumer] = []
    try:
        got: list[Record] = []
        while len(got) < 20:
            got += a.poll(timeout_s=1)  # a works on records of both partitions ...
        joiner = threading.Thread(target=lambda: joined.append(bus.consumer("g", "t", member_id="b")), daemon=True)
        joiner.start()  # ... while b joins from another thread: the rebalance waits for a
        joiner.join(3 * SESSION_MS / 1000)  # a join takes about half a session when nobody holds it up
        assert joined == []
        assert a.commit(got) == {TopicPartition("t", 0): 10, TopicPartition("t", 1): 10}  # served meanwhile
        assert a.poll() == []  # done with them: partition 1 goes to b
        joiner.join(30)
        assert len(joined) == 1
        b = joined[0]
        assert b.assignment() == [TopicPartition("t", 1)]
        eventually(lambda: a.assignment() == [TopicPartition("t", 0)], timeout_s=30, what="a keeping partition 0")
        assert b.committed("t", 1) == 10
    finally:
        a.close()
        for c in joined:
            c.close()


def test_bad_kafka_settings_are_refused(bus: KafkaBus) -> None:
    with pytest.raises(ValueError, match="too long for namespace"):
        bus.create_topic("x" * 249, 1)
    assert bus.topics() == {}
    for kwargs, words in [
        ({"namespace": "a.b"}, "'.' separates"),
        ({"session_timeout_ms": 0}, "session_timeout_ms must be a positive int"),
        ({"fetch_wait_ms": 2.5}, "fetch_wait_ms must be a positive int"),
    ]:
        with pytest.raises(ValueError, match=words):
            KafkaBus(bus.bootstrap, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bootstrap servers"):
        KafkaBus(" ")
