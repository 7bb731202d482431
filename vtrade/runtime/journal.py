"""The journal: bus records persisted in DuckDB, one call away as a DataFrame or a SQL query.

Each row is one record of the log, keyed by ``(topic, partition, offset)``; appending the same
record again is a no-op, so a journaling consumer can be at-least-once like every other. The
event time ``ts`` and the event type tag are stored in columns of their own so that time windows
and type filters run in SQL without decoding payloads.

>>> from vtrade.core.events import Trade
>>> from vtrade.runtime.bus import open_bus
>>> bus = open_bus("memory://")
>>> bus.create_topic("market.SPY", 1)
>>> for i in range(3):
...     _ = bus.publish("market.SPY", "SPY", Trade(ts=i, recv_ts=i, symbol="SPY", seq=i, price=100 + i, size=1))
>>> j = Journal()
>>> j.append(bus.read("market.SPY", 0))
3
>>> j.append(bus.read("market.SPY", 0))  # a redelivery changes nothing
0
>>> j.read("market.SPY")[["offset", "ts", "type"]].to_dict("list")
{'offset': [0, 1, 2], 'ts': [0, 1, 2], 'type': ['Trade', 'Trade', 'Trade']}
>>> [e.price for e in j.read_events(types="Trade", since_offset=1)]
[101, 102]
>>> j.high_watermark("market.SPY", 0)
3
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import duckdb
import pandas as pd
import pyarrow as pa

from vtrade.core.errors import VtradeError
from vtrade.core.events import Event, decode, event_type
from vtrade.runtime.bus.base import Closeable, Record, check_count, check_offset

__all__ = ["Journal", "JournalError"]

_TABLE = "journal"
_COLUMNS = [
    ("topic", "VARCHAR"),
    ("partition", "INTEGER"),
    ("offset", "BIGINT"),
    ("ts", "BIGINT"),
    ("type", "VARCHAR"),
    ("key", "VARCHAR"),
    ("payload", "BLOB"),
]
_SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("ts", pa.int64()),
        ("type", pa.string()),
        ("key", pa.string()),
        ("payload", pa.binary()),
    ]
)
# "offset" is an SQL keyword and "partition" nearly one: always quote them.
_COLS_SQL = ", ".join(f'"{name}"' for name, _ in _COLUMNS)


def _first(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> tuple[Any, ...] | None:
    """The first row of a query, reading the result to its end (DuckDB refuses further work on a
    connection whose last result was left half-read)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def _check_topic(topic: object) -> None:
    if not isinstance(topic, str):
        raise TypeError(f"topic must be a str, got {type(topic).__name__}")


class JournalError(VtradeError, ValueError):
    """The journal file cannot be used, or a record contradicts what the journal holds."""


class Journal(Closeable):
    """Bus records in a DuckDB table named ``journal``.

    ``path`` is ``":memory:"`` (the default) or a database file, created if missing. Columns:
    ``topic, partition, offset, ts`` (event time, ns), ``type`` (event type tag), ``key`` and
    ``payload`` (the encoded event). Thread-safe.
    """

    def __init__(self, path: str | os.PathLike[str] = ":memory:", *, read_only: bool = False) -> None:
        self.path = os.fspath(path)
        self.read_only = read_only
        try:
            self._con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.Error as exc:
            raise JournalError(f"cannot open journal {self.path!r}: {exc}") from exc
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._prepare()
        except BaseException:
            self._con.close()
            raise

    def _prepare(self) -> None:
        exists = _first(
            self._con,
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'",
            [_TABLE],
        )
        if not exists or not exists[0]:
            if self.read_only:
                raise JournalError(f"{self.path!r} holds no journal table")
            cols = ", ".join(f'"{n}" {t} NOT NULL' if n != "type" else f'"{n}" {t}' for n, t in _COLUMNS)
            self._con.execute(f'CREATE TABLE {_TABLE} ({cols}, PRIMARY KEY (topic, "partition", "offset"))')
            return
        found = [(str(r[0]), str(r[1])) for r in self._con.execute(f"DESCRIBE {_TABLE}").fetchall()]
        if found != _COLUMNS:
            raise JournalError(f"{self.path!r} has a {_TABLE!r} table that is not a vtrade journal: columns {found}")

    # -- writing ------------------------------------------------------------------------------

    def append(self, records: Record | Iterable[Record]) -> int:
        """Store records; returns how many were new. Records already stored are skipped.

        The whole batch is checked first and nothing is stored if any record is not a Record,
        does not hold a vtrade event, or differs from the record already stored at its
        ``(topic, partition, offset)`` (that would mean two different logs are being mixed).
        """
        batch = [records] if isinstance(records, Record) else list(records)
        rows: dict[tuple[str, int, int], Record] = {}
        for i, r in enumerate(batch):
            if not isinstance(r, Record):
                raise TypeError(f"the journal stores Records; item {i} is a {type(r).__name__}")
            seen = rows.setdefault((r.topic, r.partition, r.offset), r)
            if seen is not r and (seen.value != r.value or seen.key != r.key):
                raise JournalError(f"two different records at {r.topic}[{r.partition}]@{r.offset} in one batch")
        if not rows:
            return 0
        events: list[Event] = []
        for r in rows.values():
            try:
                events.append(decode(r.value))
            except ValueError as exc:
                where = f"{r.topic}[{r.partition}]@{r.offset}"
                raise JournalError(f"record {where} does not hold a vtrade event: {exc}") from exc
        recs = list(rows.values())
        table = pa.Table.from_pydict(
            {
                "topic": [r.topic for r in recs],
                "partition": [r.partition for r in recs],
                "offset": [r.offset for r in recs],
                "ts": [e.ts for e in events],
                "type": [event_type(e) for e in events],
                "key": [r.key for r in recs],
                "payload": [r.value for r in recs],
            },
            schema=_SCHEMA,
        )
        same = 'j.topic = b.topic AND j."partition" = b."partition" AND j."offset" = b."offset"'
        with self._lock:
            self._check_writable()
            con = self._con
            con.register("_vt_batch", table)
            try:
                con.execute("BEGIN TRANSACTION")
                clash = _first(
                    con,
                    f'SELECT b.topic, b."partition", b."offset" FROM _vt_batch b JOIN {_TABLE} j ON {same} '
                    "WHERE j.payload <> b.payload OR j.key <> b.key LIMIT 1",
                )
                if clash is not None:
                    raise JournalError(
                        f"the journal already holds a different record at {clash[0]}[{clash[1]}]@{clash[2]}"
                    )
                inserted = _first(
                    con,
                    f"INSERT INTO {_TABLE} SELECT {_COLS_SQL} FROM _vt_batch b "
                    f"WHERE NOT EXISTS (SELECT 1 FROM {_TABLE} j WHERE {same})",
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.unregister("_vt_batch")
        return int(inserted[0]) if inserted else 0

    # -- reading ------------------------------------------------------------------------------

    def _select(
        self,
        columns: str,
        topic: str | None,
        partition: int | None,
        since_offset: int | None,
        types: str | Iterable[str] | None,
        order_by: str,
    ) -> tuple[str, list[Any]]:
        """The SQL (and its parameters) selecting ``columns`` of the rows ``read`` describes."""
        clauses: list[str] = []
        params: list[Any] = []
        if topic is not None:
            _check_topic(topic)
            clauses.append("topic = ?")
            params.append(topic)
        if partition is not None:
            check_offset("partition", partition)
            clauses.append('"partition" = ?')
            params.append(partition)
        if since_offset is not None:
            check_offset("since_offset", since_offset)
            clauses.append('"offset" >= ?')
            params.append(since_offset)
        if types is not None:
            names = [types] if isinstance(types, str) else list(types)
            for t in names:
                if not isinstance(t, str):
                    raise TypeError(f"types must be event type names (str), got {type(t).__name__}")
            if not names:
                clauses.append("FALSE")
            else:
                clauses.append(f"type IN ({', '.join('?' for _ in names)})")
                params.extend(names)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        return f"SELECT {columns} FROM {_TABLE}{where}{self._order(order_by)}", params

    @staticmethod
    def _order(order_by: str) -> str:
        if order_by == "offset":
            return ' ORDER BY topic, "partition", "offset"'
        if order_by == "ts":
            return ' ORDER BY ts, topic, "partition", "offset"'
        raise ValueError(f"order_by must be 'offset' or 'ts', got {order_by!r}")

    def read(
        self,
        topic: str | None = None,
        *,
        partition: int | None = None,
        since_offset: int | None = None,
        types: str | Iterable[str] | None = None,
        order_by: Literal["offset", "ts"] = "offset",
    ) -> pd.DataFrame:
        """The stored records as a DataFrame (columns as in the class docstring).

        Filters combine: ``topic``, ``partition``, ``since_offset`` (inclusive) and ``types``
        (a type tag or several). Rows come in log order (topic, partition, offset) or, with
        ``order_by="ts"``, in event-time order.
        """
        return self.query(*self._select(_COLS_SQL, topic, partition, since_offset, types, order_by))

    def read_events(
        self,
        topic: str | None = None,
        *,
        partition: int | None = None,
        since_offset: int | None = None,
        types: str | Iterable[str] | None = None,
        order_by: Literal["offset", "ts"] = "offset",
        batch_size: int = 10_000,
    ) -> Iterator[Event]:
        """The decoded events of ``read``'s rows, streamed ``batch_size`` rows at a time."""
        sql, params = self._select("payload", topic, partition, since_offset, types, order_by)
        check_count("batch_size", batch_size)
        with self._lock:
            self._check_open()
            # A cursor of its own: the caller may append while iterating without deadlocking.
            cur = self._con.cursor()
        return self._stream_events(cur, sql, params, batch_size)

    @staticmethod
    def _stream_events(
        cur: duckdb.DuckDBPyConnection, sql: str, params: list[Any], batch_size: int
    ) -> Iterator[Event]:
        try:
            cur.execute(sql, params)
            while rows := cur.fetchmany(batch_size):
                for (payload,) in rows:
                    yield decode(bytes(payload))
        finally:
            cur.close()

    def high_watermark(self, topic: str, partition: int) -> int:
        """One past the highest stored offset of a partition (0 if none): where to resume
        copying from the bus."""
        _check_topic(topic)
        check_offset("partition", partition)
        with self._lock:
            self._check_open()
            row = _first(
                self._con, f'SELECT max("offset") FROM {_TABLE} WHERE topic = ? AND "partition" = ?', [topic, partition]
            )
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run SQL against the journal's database (the table is ``journal``)."""
        with self._lock:
            self._check_open()
            # Through Arrow, so that payloads come out as bytes (not bytearray).
            return self._con.sql(sql, params=params).to_arrow_table().to_pandas()

    def __len__(self) -> int:
        with self._lock:
            self._check_open()
            row = _first(self._con, f"SELECT count(*) FROM {_TABLE}")
        return int(row[0]) if row else 0

    # -- lifecycle ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise JournalError(f"the journal {self.path!r} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only:
            raise JournalError(f"the journal {self.path!r} was opened read-only")

    def close(self) -> None:
        """Flush and close the database. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._con.close()

    def __repr__(self) -> str:
        return f"<Journal {self.path!r}{' closed' if self._closed else ''}>"
