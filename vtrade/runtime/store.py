"""The session store: NAV history, fills and benchmark series in DuckDB, one SQL query away.

Everything a notebook user wants to slice lives in a few plain tables, so ``session.sql()``
is ordinary SQL over them (timestamps come back as UTC datetimes):

- ``nav_history(ts, account, nav, cash, gross, net, day_pnl)``: NAV sampled on a
  simulated-time grid (:func:`grid_times`), one row per account per grid point;
- ``fills``: the public fills table (:data:`vtrade.execution.tables.FILLS`, ``vt.schema.FILLS``),
  the same columns ``vt.replay`` and live sessions give; ``ts`` is a ``TIMESTAMP_NS`` in UTC and
  :meth:`Store.fills` reads it back with the schema's dtypes;
- ``benchmarks(date, symbol, close)``: SPY and the sector SPDRs, daily closes.

>>> store = Store()
>>> store.append_nav(pd.DataFrame({"ts": [0, 60_000_000_000], "account": ["a", "a"], "nav": [100.0, 101.0],
...                                "cash": 100.0, "gross": 0.0, "net": 0.0, "day_pnl": [0.0, 1.0]}))
2
>>> store.sql("select account, max(nav) as peak from nav_history group by account")
  account   peak
0       a  101.0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from vtrade.core.errors import VtradeError
from vtrade.execution.tables import FILLS

# The SQL type of each public-table dtype (vtrade.execution.tables).
_SQL = {"datetime64[ns, UTC]": "TIMESTAMP_NS", "str": "VARCHAR", "float64": "DOUBLE", "int64": "BIGINT",
        "Int64": "BIGINT"}  # fmt: skip
# table -> (columns as (name, type), constraints)
_SCHEMA: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {
    "nav_history": (
        (("ts", "BIGINT"), ("account", "VARCHAR"), ("nav", "DOUBLE"), ("cash", "DOUBLE"), ("gross", "DOUBLE"),
         ("net", "DOUBLE"), ("day_pnl", "DOUBLE")),
        "",
    ),
    "fills": (tuple((c.name, _SQL[c.dtype]) for c in FILLS.columns), "PRIMARY KEY (account, fill_id)"),
    "benchmarks": ((("date", "DATE"), ("symbol", "VARCHAR"), ("close", "DOUBLE")), "PRIMARY KEY (date, symbol)"),
}  # fmt: skip
_GRIDS = {"1min": 60_000_000_000, "1h": 3_600_000_000_000, "1d": 86_400_000_000_000}


class StoreError(VtradeError, ValueError):
    """A store operation was given data it cannot hold, or SQL it cannot run."""


def grid_times(start_ns: int, end_ns: int, every: str = "1min") -> np.ndarray:
    """Sample times on a simulated-time grid aligned to ``every`` (``1min``, ``1h``, ``1d``), inclusive.

    >>> grid_times(30_000_000_000, 150_000_000_000).tolist()
    [60000000000, 120000000000]
    """
    step = _GRIDS.get(every)
    if step is None:
        raise StoreError(f"unknown grid {every!r} (choose from {', '.join(_GRIDS)})")
    first = -(-start_ns // step) * step
    return np.arange(first, end_ns + 1, step, dtype=np.int64)


class Store:
    """A DuckDB database holding a session's history (``:memory:`` or a file)."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self._con = duckdb.connect(self.path)
        for table, (columns, constraints) in _SCHEMA.items():
            spec = ", ".join([f"{name} {kind}" for name, kind in columns] + ([constraints] if constraints else []))
            self._con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({spec})")
            have = [r[0] for r in self._con.execute(f"DESCRIBE {table}").fetchall()]
            if have != [name for name, _ in columns]:
                self._con.close()
                raise StoreError(f"{self.path}: its {table} table has the columns of an older vtrade "
                                 f"({', '.join(have)}); open a new store file (or export and drop that table)")

    def append_nav(self, frame: pd.DataFrame) -> int:
        """Append NAV samples (columns as ``nav_history``); returns the rows written."""
        return self._append("nav_history", frame)

    def append_fills(self, frame: pd.DataFrame) -> int:
        """Append fills (a public fills table, :func:`vtrade.execution.tables.fills_frame`); an
        (account, fill_id) already stored is skipped (at-least-once delivery). Fill ids are unique
        per exchange run, not across runs, hence the account in the key."""
        if frame.empty:
            return 0
        try:
            frame = FILLS.conform(frame)
        except (ValueError, TypeError) as exc:
            raise StoreError(str(exc)) from exc
        frame["ts"] = frame["ts"].dt.tz_convert(None)  # stored as UTC without a zone (TIMESTAMP_NS)
        keys = frame.account.astype(str) + "\x1f" + frame.fill_id.astype(str)
        new = frame[~keys.isin(self._existing_keys(frame))]
        return self._append("fills", new.drop_duplicates(["account", "fill_id"]))

    def load_benchmarks(self, closes: pd.DataFrame) -> int:
        """Store daily closes (``date, symbol, close``) of benchmark series, replacing any stored."""
        self._con.execute("DELETE FROM benchmarks WHERE symbol IN (SELECT DISTINCT symbol FROM closes)")
        return self._append("benchmarks", closes, name="closes")

    def fills(self, account: str | None = None) -> pd.DataFrame:
        """The stored fills (``account``'s, or all), oldest first, as the public fills table."""
        where, params = ("WHERE account = ?", [account]) if account is not None else ("", None)
        frame = self.sql(f"SELECT * FROM fills {where} ORDER BY ts, rowid", params)
        return FILLS.conform(frame)

    def sql(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run SQL over the session's tables; the result as a DataFrame (timestamps in UTC)."""
        try:
            df = self._con.sql(query, params=params).to_arrow_table().to_pandas()
        except duckdb.Error as exc:
            raise StoreError(f"SQL failed: {exc}") from exc
        for column in df.columns:
            if df[column].dtype.kind == "M" and getattr(df[column].dt, "tz", None) is None:
                df[column] = df[column].dt.tz_localize("UTC")  # every time the store holds is UTC
        return df

    def close(self) -> None:
        self._con.close()

    def _existing_keys(self, frame: pd.DataFrame) -> set[str]:
        probe = pd.DataFrame({"account": frame.account.astype(str), "fill_id": frame.fill_id.astype(str)})
        self._con.register("probe", probe)
        try:
            sql = "SELECT account, fill_id FROM fills JOIN probe USING (account, fill_id)"
            rows = self._con.execute(sql).fetchall()
        finally:
            self._con.unregister("probe")
        return {f"{r[0]}\x1f{r[1]}" for r in rows}

    def _append(self, table: str, frame: pd.DataFrame, name: str = "incoming") -> int:
        columns = [name for name, _ in _SCHEMA[table][0]]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise StoreError(f"{table}: missing columns {missing}")
        if frame.empty:
            return 0
        self._con.register(name, frame[columns])
        try:
            self._con.execute(f"INSERT INTO {table} SELECT {', '.join(columns)} FROM {name}")
        except duckdb.Error as exc:
            raise StoreError(f"{table}: {exc}") from exc
        finally:
            self._con.unregister(name)
        return len(frame)
