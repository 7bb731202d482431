"""Identity: stable partitioning hashes and deterministic id sequences.

Partitioning uses Kafka's default partitioner (murmur2 of the key's UTF-8 bytes, made positive,
modulo the partition count) so that the memory, Redis and Kafka buses put a key on the same
partition and a topic can move between them without reshuffling.

>>> partition_for("BTCUSDT", 8) == partition_for("BTCUSDT", 8)
True
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``) as a signed 32-bit int."""
    m = 0x5BD1E995
    h = (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    n4 = len(data) // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = data[4 * n4 :]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if len(tail) >= 1:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h >= 1 << 31 else h


@functools.lru_cache(maxsize=1 << 16)
def partition_for(key: str | bytes, partitions: int) -> int:
    """The partition a key maps to, exactly as Kafka's default partitioner would choose it.

    Called on every publish; keys (symbols, accounts, users) repeat, so answers are cached.

    >>> partition_for("SPY", 4), partition_for(b"SPY", 4)
    (3, 3)
    """
    if partitions <= 0:
        raise ValueError(f"partitions must be positive, got {partitions}")
    raw = key.encode() if isinstance(key, str) else key
    return (murmur2(raw) & 0x7FFFFFFF) % partitions


class IdSequence:
    """Deterministic ids ``<prefix>-<n>``: the same inputs give the same ids on every run.

    >>> ids = IdSequence("ord")
    >>> next(ids), next(ids)
    ('ord-1', 'ord-2')
    """

    def __init__(self, prefix: str, start: int = 1) -> None:
        if not prefix or "-" in prefix:
            raise ValueError(f"an id prefix must be non-empty and contain no '-', got {prefix!r}")
        self.prefix = prefix
        self._counter: Iterator[int] = itertools.count(start)

    def __iter__(self) -> IdSequence:
        return self

    def __next__(self) -> str:
        return f"{self.prefix}-{next(self._counter)}"
