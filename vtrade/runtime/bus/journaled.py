"""The embedded bus made durable: a :class:`MemoryBus` whose log and group commits live on disk.

:class:`JournaledBus` keeps the whole log in memory, as :class:`MemoryBus` does, and also writes
every topic, record and committed offset to a DuckDB file *before* the call that made it returns:
a record whose ``publish`` returned is on disk, and so is a commit whose ``commit`` returned.
Opened again on the same file (by a restarted process, say), it reloads every topic, record and
committed offset, so consumers resume where their group left off and see the same offsets.

Why not :class:`~vtrade.runtime.journal.Journal`'s table: reloading must give back the exact
records, and the journal keeps neither the record timestamp (it keeps the event's own time,
which differs when a publisher passes ``timestamp_ns``) nor payloads that are not vtrade events,
which the bus accepts. So the file holds three tables of its own (``bus_topics``,
``bus_records``, ``bus_commits``); ``bus_records`` also has the event time and type columns of
the journal, so the same SQL works on it (:meth:`JournaledBus.query`).

One process at a time: DuckDB locks the file, and a second opener gets a :class:`JournalError`.
Live subscriptions and group membership are not persisted (they belong to running processes).

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "log.duckdb"
>>> bus = JournaledBus(path)
>>> bus.create_topic("user", partitions=2)
>>> bus.publish("user", "ana", b"joined").offset
0
>>> with bus.consumer("game", "user") as c:
...     _ = c.commit(c.poll())
>>> bus.close()
>>> again = JournaledBus(path)  # a restarted process
>>> [r.value for r in again.read("user", 0)], again.end_offsets("user")
([b'joined'], [1, 0])
>>> with again.consumer("game", "user") as c:
...     c.committed("user", 0), c.poll()
(1, [])
>>> again.close()
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from vtrade.core.events import Event, decode, event_type
from vtrade.core.ids import partition_for
from vtrade.runtime.bus.base import (
    Clock,
    RecordMetadata,
    TopicPartition,
    check_name,
    check_partitions,
    prepare_many,
    prepare_value,
)
from vtrade.runtime.bus.memory import MemoryBus, MemoryConsumer, _Group
from vtrade.runtime.journal import JournalError

__all__ = ["JournaledBus", "JournaledConsumer"]

_TABLES: dict[str, list[tuple[str, str]]] = {
    "bus_topics": [("topic", "VARCHAR"), ("partitions", "INTEGER")],
    "bus_records": [
        ("topic", "VARCHAR"),
        ("partition", "INTEGER"),
        ("offset", "BIGINT"),
        ("timestamp_ns", "BIGINT"),
        ("ts", "BIGINT"),
        ("type", "VARCHAR"),
        ("key", "VARCHAR"),
        ("payload", "BLOB"),
    ],
    "bus_commits": [("grp", "VARCHAR"), ("topic", "VARCHAR"), ("partition", "INTEGER"), ("offset", "BIGINT")],
}
_KEYS = {"bus_topics": "topic", "bus_records": 'topic, "partition", "offset"', "bus_commits": 'grp, topic, "partition"'}
_NULLABLE = {"ts", "type"}  # NULL for payloads that are not vtrade events
_RECORDS_SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("timestamp_ns", pa.int64()),
        ("ts", pa.int64()),
        ("type", pa.string()),
        ("key", pa.string()),
        ("payload", pa.binary()),
    ]
)


def _event_columns(payload: bytes) -> tuple[int | None, str | None]:
    """The event time and type tag of a payload, or ``(None, None)`` if it is not an event."""
    try:
        e: Event = decode(payload)
    except ValueError:
        return None, None
    return e.ts, event_type(e)


class JournaledBus(MemoryBus):
    """A :class:`MemoryBus` whose topics, records and group commits are kept in the DuckDB file
    ``path`` (created if missing, reloaded if it exists); see the module docstring.

    :class:`JournalError` if ``path`` is a directory, not a DuckDB file, a DuckDB file with
    other tables of these names, a log with gaps, or in use by another process.
    """

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock = time.monotonic) -> None:
        super().__init__(clock=clock)
        self.path = os.fspath(path)
        if Path(self.path).is_dir():
            raise JournalError(f"cannot open the bus journal {self.path!r}: it is a directory, not a file")
        try:
            self._con = duckdb.connect(self.path)
        except duckdb.Error as exc:
            # DuckDB's own message says which (not a database file, locked by another process).
            raise JournalError(f"cannot open the bus journal {self.path!r}: {exc}") from exc
        self._db_lock = threading.Lock()  # DuckDB connections are not for concurrent use
        try:
            self._prepare()
            self._reload()
        except BaseException:
            self._con.close()
            raise

    # -- the file -----------------------------------------------------------------------------

    def _prepare(self) -> None:
        present = {
            str(r[0])
            for r in self._con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        }
        for table, columns in _TABLES.items():
            if table in present:
                found = [(str(r[0]), str(r[1])) for r in self._con.execute(f"DESCRIBE {table}").fetchall()]
                if found != columns:
                    raise JournalError(
                        f"{self.path!r} has a {table!r} table that is not a vtrade bus journal: columns {found}"
                    )
                continue
            cols = ", ".join(f'"{n}" {t}' + ("" if n in _NULLABLE else " NOT NULL") for n, t in columns)
            self._con.execute(f"CREATE TABLE {table} ({cols}, PRIMARY KEY ({_KEYS[table]}))")

    def _reload(self) -> None:
        """Rebuild the in-memory log and the groups' commits from the file."""
        con = self._con
        for topic, partitions in con.execute("SELECT topic, partitions FROM bus_topics ORDER BY topic").fetchall():
            MemoryBus.create_topic(self, str(topic), int(partitions))
        cur = con.execute(
            'SELECT topic, "partition", "offset", key, payload, timestamp_ns FROM bus_records '
            'ORDER BY topic, "partition", "offset"'
        )
        topics = self.topics()
        while rows := cur.fetchmany(10_000):
            for topic, partition, offset, key, payload, ts in rows:
                where = f"{self.path!r}: record {topic}[{partition}]@{offset}"
                if topic not in topics:
                    raise JournalError(f"{where} belongs to no topic")
                # Through MemoryBus.publish, which puts the key on the same partition and gives
                # the next offset: a record that lands elsewhere means the file was tampered with.
                md = MemoryBus.publish(self, topic, key, bytes(payload), ts)
                if (md.partition, md.offset) != (partition, offset):
                    raise JournalError(f"{where} does not follow the log (a gap, or a key of another partition)")
        rows = con.execute('SELECT grp, topic, "partition", "offset" FROM bus_commits').fetchall()
        for group, topic, partition, offset in rows:
            if topic not in topics:
                raise JournalError(f"{self.path!r}: group {group!r} committed on unknown topic {topic!r}")
            # The group state of MemoryBus is where its consumers look for committed offsets.
            g = self._groups.setdefault(group, _Group())
            g.committed[TopicPartition(topic, partition)] = offset

    def _write(self, sql: str, params: list[Any] | None = None, table: pa.Table | None = None) -> None:
        """Run one write in its own transaction; JournalError (nothing written) if it fails."""
        with self._db_lock:
            con = self._con
            try:
                if table is not None:
                    con.register("_vt_batch", table)
                con.execute("BEGIN TRANSACTION")
                con.execute(sql, params or [])
                con.execute("COMMIT")
            except duckdb.Error as exc:
                with contextlib.suppress(duckdb.Error):  # no transaction open if BEGIN failed
                    con.execute("ROLLBACK")
                raise JournalError(f"the bus journal {self.path!r} refused a write: {exc}") from exc
            finally:
                if table is not None:
                    con.unregister("_vt_batch")

    # -- the bus ------------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int = 1) -> None:
        check_name("topic", name)
        check_partitions(partitions)
        with self._lock:
            if name not in self.topics():  # on disk first: a failed write leaves no topic anywhere
                self._write("INSERT INTO bus_topics VALUES (?, ?)", [name, partitions])
            super().create_topic(name, partitions)

    def publish(self, topic: str, key: str, value: bytes | Event, timestamp_ns: int | None = None) -> RecordMetadata:
        return self._append(topic, [prepare_value(key, value, timestamp_ns)])[0]

    def publish_many(self, topic: str, items: Iterable[tuple[str, bytes | Event]]) -> list[RecordMetadata]:
        self.partitions(topic)
        prepared = prepare_many(items)  # all validated before any is written
        return self._append(topic, prepared) if prepared else []

    def _append(self, topic: str, prepared: Sequence[tuple[str, bytes, int]]) -> list[RecordMetadata]:
        """Write the records to the file in one transaction, then append them in memory.

        The bus lock is held throughout, so the offsets written are the ones MemoryBus assigns
        (it is re-entrant) and a reader never sees a record that is not on disk yet.
        """
        with self._lock:
            n = self.partitions(topic)
            ends = self.end_offsets(topic)
            rows: dict[str, list[Any]] = {name: [] for name in _RECORDS_SCHEMA.names}
            for key, payload, ts in prepared:
                p = partition_for(key, n)
                ev_ts, ev_type = _event_columns(payload)
                for name, v in zip(
                    _RECORDS_SCHEMA.names, (topic, p, ends[p], ts, ev_ts, ev_type, key, payload), strict=True
                ):
                    rows[name].append(v)
                ends[p] += 1
            self._write(
                "INSERT INTO bus_records SELECT * FROM _vt_batch",
                table=pa.Table.from_pydict(rows, schema=_RECORDS_SCHEMA),
            )
            return MemoryBus._append_records(self, topic, prepared)

    def _persist_commits(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        rows = [[group, tp.topic, tp.partition, off] for tp, off in sorted(offsets.items())]
        table = pa.Table.from_pylist(
            [dict(zip(("grp", "topic", "partition", "offset"), r, strict=True)) for r in rows],
            schema=pa.schema(
                [("grp", pa.string()), ("topic", pa.string()), ("partition", pa.int32()), ("offset", pa.int64())]
            ),
        )
        self._write("INSERT OR REPLACE INTO bus_commits SELECT * FROM _vt_batch", table=table)

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run SQL against the journal file (tables ``bus_topics``, ``bus_records``, ``bus_commits``).

        >>> import pathlib, tempfile
        >>> from vtrade.core.events import Trade
        >>> bus = JournaledBus(pathlib.Path(tempfile.mkdtemp()) / "q.duckdb")
        >>> bus.create_topic("market", 1)
        >>> _ = bus.publish("market", "SPY", Trade(5, 5, "SPY", 1, 100, 1))
        >>> bus.query("SELECT type, ts FROM bus_records").to_dict("list")
        {'type': ['Trade'], 'ts': [5]}
        >>> bus.close()
        """
        with self._db_lock:
            self._check_open()
            return self._con.sql(sql, params=params).to_arrow_table().to_pandas()

    def close(self) -> None:
        """Close every consumer and subscription, then the file. Idempotent."""
        with self._lock:
            super().close()
            with self._db_lock:
                if self._con is not None:
                    self._con.close()
                    self._con = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<JournaledBus {self.path!r}{' closed' if self._closed else ''}>"


class JournaledConsumer(MemoryConsumer):
    """A group member on a :class:`JournaledBus`: its commits are written to the file before
    ``commit`` returns (create it with :meth:`JournaledBus.consumer`)."""

    _bus: JournaledBus

    def _store_commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        # Runs with the bus lock held: fence and update in memory, then persist what is now
        # committed (a commit never moves backwards, so that is the max of old and new).
        super()._store_commit(offsets)
        stored = {tp: self._read_committed(tp) for tp in offsets}
        self._bus._persist_commits(self.group, {tp: off for tp, off in stored.items() if off is not None})


JournaledBus._consumer_class = JournaledConsumer
