"""Class reports to files (CSV, Excel) and the live market's answers gathered into report inputs.

The imperative shell around :mod:`vtrade.classroom.reports`: the reports are pure; this
module reads a :class:`~vtrade.runtime.live.LiveMarket` and writes files.

Every writer, before a byte is written:

- checks its input (a DataFrame, sheet names Excel accepts, a folder that exists) and raises a
  clear ``TypeError`` / ``ValueError`` / ``FileNotFoundError`` otherwise, leaving no file;
- keeps a meaningful index (a sector, a student) as a first column;
- writes times as ISO 8601 text in UTC (``2017-10-02T13:30:10.005000+00:00``): Excel cannot hold a
  timezone-aware time, and a naive one would silently change meaning with the reader's zone;
- neutralises formulas (:func:`~vtrade.classroom.reports.neutralise`): a student named
  ``=HYPERLINK(...)`` is text in the teacher's spreadsheet, never a live formula (column headers
  are defused too: they are cells of the file).

A file is written to a temporary name beside the target and renamed into place, so a failure
half-way leaves the old file (or none), never half a report.

>>> import tempfile, csv, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> df = pd.DataFrame({"name": ["=1+1", "Ada"], "pnl": [-2.5, 3.0]})
>>> path = write_csv(df, folder / "grades.csv")
>>> list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
[['name', 'pnl'], ["'=1+1", '-2.5'], ['Ada', '3.0']]
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from vtrade.classroom.reports import FORMULA_PREFIXES, StudentRecord, marks_from_prices, neutralise

if TYPE_CHECKING:
    from vtrade.runtime.live import LiveMarket

__all__ = ["market_marks", "student_record", "write_csv", "write_excel"]

_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_SHEET_MAX = 31
# What openpyxl refuses in a cell (XML 1.0 has no such characters); they become U+FFFD, visibly.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


# --------------------------------------------------------------------------------------------
# gathering


def student_record(market: LiveMarket, *, student_id: str, display_name: str, account_id: str) -> StudentRecord:
    """One student's :class:`~vtrade.classroom.reports.StudentRecord`, read from ``market`` now."""
    portfolio = market.portfolio(account_id)
    summary = dict(portfolio["summary"])
    return StudentRecord(
        student_id=student_id,
        display_name=display_name,
        account_id=account_id,
        initial_cash=float(summary["initial_cash"]),
        orders=market.orders(account_id),
        fills=market.fills(account_id),
        positions=portfolio["positions"],
        summary=summary,
        nav=market.nav_history(account_id),
    )


def market_marks(market: LiveMarket, symbols: Iterable[str]) -> pd.DataFrame:
    """Market prices of ``symbols`` over the history the market keeps (``ts, symbol, price``),
    for :func:`~vtrade.classroom.reports.disposition`: pass the symbols the students traded."""
    return marks_from_prices({s: market.prices(s) for s in dict.fromkeys(symbols)})


# --------------------------------------------------------------------------------------------
# preparing a table


def _iso(value: object) -> object:
    """A time as ISO 8601 text in UTC (a naive time is UTC already: domain times are); else as is."""
    if isinstance(value, dt.datetime | np.datetime64):
        t = pd.Timestamp(value)
        if pd.isna(t):
            return None
        return (t.tz_localize("UTC") if t.tz is None else t.tz_convert("UTC")).isoformat()
    if isinstance(value, dt.timedelta | np.timedelta64):
        d = pd.Timedelta(value)
        return None if pd.isna(d) else str(d)
    return value


def _prepared(df: object, what: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    plain_index = isinstance(df.index, pd.RangeIndex) and df.index.name is None and df.index.start == 0 \
        and df.index.step == 1  # fmt: skip
    out = df.copy() if plain_index else df.reset_index()
    # Headers are cells of the file too: a column named "=1+1" must not run either.
    out.columns = [f"'{c}" if str(c).startswith(FORMULA_PREFIXES) else str(c) for c in out.columns]
    for i in range(out.shape[1]):
        col = out.iloc[:, i]
        if pd.api.types.is_datetime64_any_dtype(col.dtype) or pd.api.types.is_timedelta64_dtype(col.dtype) \
                or pd.api.types.is_object_dtype(col.dtype):  # fmt: skip
            out.isetitem(i, np.array([_iso(v) for v in col.to_numpy(dtype=object)], dtype=object))
    return neutralise(out)


def _target(path: object, suffixes: tuple[str, ...]) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    p = Path(path)
    if not p.parent.is_dir():
        raise FileNotFoundError(f"cannot write {p}: the folder {p.parent} does not exist")
    if p.is_dir():
        raise IsADirectoryError(f"cannot write {p}: it is a folder")
    if suffixes and p.suffix.lower() not in suffixes:
        raise ValueError(f"cannot write {p}: the file name should end in {' or '.join(suffixes)}")
    return p


def _atomic(target: Path, write: Callable[[Path], None]) -> Path:
    """``write`` a temporary file beside ``target``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


# --------------------------------------------------------------------------------------------
# writers


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` as CSV (UTF-8 with a byte-order mark, so Excel reads ``Zoë`` right), formulas
    neutralised and times as ISO text in UTC; returns the path. A meaningful index becomes the
    first column."""
    table = _prepared(df, "df")
    target = _target(path, ())
    # RFC 4180 line ends: the csv writer then quotes a cell holding a lone "\r" as well as "\n",
    # which with "\n" alone it would not, and the cell would split the row.
    return _atomic(target, lambda tmp: table.to_csv(tmp, index=False, encoding="utf-8-sig", lineterminator="\r\n"))


def _cell(value: object) -> object:
    """A value openpyxl writes as a plain cell: missing -> empty, ±inf -> text, numpy -> Python."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"  # Excel has no infinity; a Sharpe can be
    if isinstance(value, str):
        return _XML_ILLEGAL.sub("\ufffd", value)
    return value


def _check_sheets(sheets: object) -> dict[str, pd.DataFrame]:
    if not isinstance(sheets, Mapping):
        raise TypeError(f"sheets must be a mapping sheet name -> DataFrame, got {type(sheets).__name__}")
    if not sheets:
        raise ValueError("sheets is empty: a workbook needs at least one sheet")
    seen: set[str] = set()
    out: dict[str, pd.DataFrame] = {}
    for name, df in sheets.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"sheet name {name!r} must be non-blank text")
        if len(name) > _SHEET_MAX or _SHEET_FORBIDDEN.search(name) or name.startswith("'") or name.endswith("'"):
            raise ValueError(
                f"sheet name {name!r} is not one Excel accepts: at most {_SHEET_MAX} characters, "
                "none of [ ] : * ? / \\, and no leading or trailing apostrophe"
            )
        if name.lower() in seen:
            raise ValueError(f"sheet name {name!r} is used twice (Excel ignores case)")
        seen.add(name.lower())
        out[name] = _prepared(df, f"sheet {name!r}")
    return out


def write_excel(sheets: Mapping[str, pd.DataFrame], path: str | os.PathLike[str]) -> Path:
    """Write each DataFrame of ``sheets`` to a sheet of that name in an ``.xlsx`` workbook
    (openpyxl), formulas neutralised and times as ISO text in UTC; returns the path. Header row
    bold and frozen; a meaningful index becomes the first column. Characters XML cannot carry
    (control characters) show as U+FFFD."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    tables = _check_sheets(sheets)
    target = _target(path, (".xlsx",))

    def write(tmp: Path) -> None:
        wb = Workbook()
        wb.remove(wb.active)
        bold = Font(bold=True)
        for name, table in tables.items():
            ws = wb.create_sheet(title=name)
            ws.append([_cell(c) for c in table.columns])
            for cell in ws[1]:
                cell.font = bold
            for row in table.itertuples(index=False, name=None):
                ws.append([_cell(v) for v in row])
            ws.freeze_panes = "A2"
        wb.save(tmp)

    return _atomic(target, write)
