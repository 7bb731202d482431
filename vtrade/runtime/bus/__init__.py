"""The event log (DESIGN.md §1): one :class:`Bus` interface, several transports.

:func:`open_bus` picks a backend from a URL:

- ``memory://`` -- :class:`~vtrade.runtime.bus.memory.MemoryBus`, in-process (a new, empty log
  per call: share the object, not the URL); with ``journal=path``, a
  :class:`~vtrade.runtime.bus.journaled.JournaledBus` that keeps the log and the group commits in
  that DuckDB file and reloads them when opened again (durable across restarts);
- ``redis://host:port/db`` (or ``rediss://``, ``unix://``) --
  :class:`~vtrade.runtime.bus.redis_streams.RedisBus`. ``?namespace=name`` (or the ``namespace``
  argument) prefixes every key, so several sessions or test runs can share one server;
- ``kafka://host:port`` (several brokers: ``kafka://h1:9092,h2:9092``) --
  :class:`~vtrade.runtime.bus.kafka.KafkaBus`. ``?namespace=name`` prefixes every topic and group
  (``name.topic``); ``?session_timeout_ms=N`` sets the consumers' broker session (default 6000).

>>> bus = open_bus("memory://")
>>> bus.create_topic("user", partitions=2)
>>> bus.publish("user", "ana", b"joined").offset
0
>>> open_bus("kafka2://broker:9092")
Traceback (most recent call last):
...
ValueError: unknown bus URL 'kafka2://broker:9092': expected 'memory://', 'redis://host:port/db' or 'kafka://host:port'
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from vtrade.runtime.bus.base import (
    Bus,
    BusClosedError,
    BusError,
    Clock,
    CommitError,
    Consumer,
    Deduplicator,
    LiveSubscription,
    MemberConflictError,
    NotAssignedError,
    Record,
    RecordMetadata,
    TopicConflictError,
    TopicPartition,
    UnknownTopicError,
    range_assignment,
)
from vtrade.runtime.bus.memory import MemoryBus

if TYPE_CHECKING:
    from vtrade.runtime.bus.journaled import JournaledBus
    from vtrade.runtime.bus.kafka import KafkaBus
    from vtrade.runtime.bus.redis_streams import RedisBus

__all__ = [
    "Bus",
    "BusClosedError",
    "BusError",
    "CommitError",
    "Consumer",
    "Deduplicator",
    "JournaledBus",
    "KafkaBus",
    "LiveSubscription",
    "MemberConflictError",
    "MemoryBus",
    "NotAssignedError",
    "Record",
    "RecordMetadata",
    "RedisBus",
    "TopicConflictError",
    "TopicPartition",
    "UnknownTopicError",
    "open_bus",
    "range_assignment",
]

_REDIS_SCHEMES = ("redis", "rediss", "unix")


def open_bus(
    url: str = "memory://",
    *,
    namespace: str | None = None,
    clock: Clock | None = None,
    journal: str | os.PathLike[str] | None = None,
    kafka_config: Mapping[str, Any] | None = None,
) -> Bus:
    """A bus for ``url`` (see the module docstring). ``clock`` overrides the heartbeat clock;
    ``journal`` (memory only) is the file that makes the memory bus durable; ``kafka_config``
    (Kafka only) adds librdkafka settings to every client, e.g. ``{"log_level": 2}`` to keep its
    connection errors off stderr when the caller reports them itself."""
    if not isinstance(url, str):
        raise TypeError(f"a bus URL must be a str, got {type(url).__name__}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if kafka_config is not None and scheme != "kafka":
        raise ValueError(f"bus URL {url!r}: kafka_config= is for a kafka:// bus")
    if scheme == "memory":
        if parts.netloc or parts.path.strip("/") or parts.query:
            raise ValueError(f"bus URL {url!r}: the memory bus takes no host, path or options; use 'memory://'")
        if journal is not None:
            from vtrade.runtime.bus.journaled import JournaledBus

            return JournaledBus(journal, clock=clock or time.monotonic)
        return MemoryBus(clock=clock or time.monotonic)
    if journal is not None:
        raise ValueError(f"bus URL {url!r}: journal= is for the memory bus; {scheme}:// keeps its own log")
    if scheme in _REDIS_SCHEMES:
        # The namespace is ours, not redis-py's: take it out of the query before handing over.
        query = parse_qsl(parts.query, keep_blank_values=True)
        ns_in_url = [v for k, v in query if k == "namespace"]
        rest = urlencode([(k, v) for k, v in query if k != "namespace"])
        if namespace is None:
            namespace = ns_in_url[-1] if ns_in_url else "vt"
        from vtrade.runtime.bus.redis_streams import RedisBus

        return RedisBus(urlunsplit(parts._replace(query=rest)), namespace=namespace, clock=clock or time.time)
    if scheme == "kafka":
        return _open_kafka(url, parts.netloc, parts.path, parts.query, namespace, clock, kafka_config)
    raise ValueError(f"unknown bus URL {url!r}: expected 'memory://', 'redis://host:port/db' or 'kafka://host:port'")


def _open_kafka(
    url: str, netloc: str, path: str, query: str, namespace: str | None, clock: Clock | None,
    config: Mapping[str, Any] | None,
) -> Bus:  # fmt: skip
    if not netloc or path.strip("/"):
        raise ValueError(f"bus URL {url!r}: a Kafka bus URL is 'kafka://host:port[,host:port...]?namespace=name'")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - {"namespace", "session_timeout_ms"})
    if unknown:
        raise ValueError(
            f"bus URL {url!r}: unknown option(s) {unknown}; a Kafka bus takes namespace and session_timeout_ms"
        )
    if namespace is None:
        namespace = options.get("namespace", "vt")
    session = options.get("session_timeout_ms", "6000")
    if not session.isdigit() or int(session) <= 0:
        raise ValueError(f"bus URL {url!r}: session_timeout_ms must be a positive int of milliseconds, got {session!r}")
    from vtrade.runtime.bus.kafka import KafkaBus

    return KafkaBus(
        netloc, namespace=namespace, clock=clock or time.monotonic, session_timeout_ms=int(session), config=config
    )


def __getattr__(name: str) -> Any:
    # RedisBus needs the optional redis package: import it only when asked for.
    if name == "RedisBus":
        from vtrade.runtime.bus.redis_streams import RedisBus

        return RedisBus
    if name == "KafkaBus":  # needs the optional confluent-kafka package, like RedisBus
        from vtrade.runtime.bus.kafka import KafkaBus

        return KafkaBus
    # JournaledBus imports DuckDB: only when asked for, like RedisBus.
    if name == "JournaledBus":
        from vtrade.runtime.bus.journaled import JournaledBus

        return JournaledBus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
