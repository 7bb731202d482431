"""Lean (QuantConnect / AlgoSeek) intraday bar files → :class:`Bar` and :class:`QuoteBar` events.

The files in ``data/intraday`` are Lean's sample data rewritten as one long CSV each::

    ticker,date,time_et,ms_since_midnight,open,high,low,close,volume                # trade bars
    ticker,date,time_et,ms_since_midnight,bid_open,…,bid_size,ask_open,…,ask_size   # quote bars

Times are New York wall-clock times (``date`` + ``ms_since_midnight``; ``time_et`` is the same
instant in readable form and is not used) and a bar is stamped at the START of its interval.
They become UTC nanoseconds with integer arithmetic and the ``America/New_York`` rules of the
day, so DST is handled exactly. Prices become integer ticks of the instrument's grid (Lean
prints ``167.6500``: trailing zeros are fine, a sub-tick price is a :class:`DataError` naming
``file:line``, never rounded). Sizes are shares (lots of one share for :func:`us_equity`).

Readers stream: the file is parsed in blocks of about a megabyte (pyarrow's CSV reader, then
vectorised exact decimal parsing), and events are created lazily, so memory stays flat however
long the file. ``to_frame()`` is the convenience that loads everything for analytics.

Real-data note: SPY's 2023-08-03 trade bars contain sub-penny prints (``448.8190``: midpoint
and retail-improvement executions are legal below a cent). On the default one-cent grid they
are rejected; read that day with a finer grid, e.g. ``instruments=us_equity("SPY",
tick_size="0.0001")`` (Lean stores prices in units of 1/10000 dollar).

>>> from vtrade.market.feeds.lean import LeanTradeBars, DATA_DIR
>>> bars = LeanTradeBars(DATA_DIR / "intraday/lean_minute_trade_bars.csv.gz", tickers="IBM", start="2013-10-07")
>>> first = next(iter(bars))
>>> first.symbol, first.open, first.volume, bars.interval_ns // 10**9
('IBM', 18152, 1283, 60)

The shared CSV machinery here (block reader, exact decimal columns, New York timestamps) is
also what :mod:`vtrade.market.feeds.taq` and :mod:`vtrade.market.feeds.daily` read with.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypedDict, Unpack
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from vtrade.core.errors import DataError, Fix
from vtrade.core.events import Bar, Quote, QuoteBar
from vtrade.core.instruments import Instrument, us_equity
from vtrade.core.numbers import Grid
from vtrade.market.feeds._io import numbered_lines, open_source

NEW_YORK = ZoneInfo("America/New_York")
SECOND_NS = 1_000_000_000
MINUTE_NS = 60 * SECOND_NS
HOUR_NS = 60 * MINUTE_NS
INTERVALS: dict[str, int] = {"second": SECOND_NS, "minute": MINUTE_NS, "hour": HOUR_NS}

# The project's data/ folder (a fresh clone runs with no download); VTRADE_DATA_DIR overrides it,
# e.g. for an installed package that does not carry the data.
DATA_DIR = Path(os.environ.get("VTRADE_DATA_DIR", Path(__file__).resolve().parents[3] / "data"))

IntervalSpec = Literal["second", "minute", "hour"] | int
InstrumentSpec = Instrument | Mapping[str, Instrument] | None
DateSpec = date | str | None

_MS_PER_DAY = 86_400_000
_NS_PER_MS = 1_000_000
_BLOCK_BYTES = 1 << 20  # ~1 MB of text per block: ~15-25k rows, small and still vectorised
_POW10 = np.array([10**i for i in range(19)], dtype=np.int64)
_NUMBER = r"^[0-9]+(\.[0-9]*)?$"  # what Lean and the Kaggle files print: no sign, no exponent
_ROW_IN_ERROR = re.compile(r"Row #(\d+)")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# Event times are int64 ns since the epoch: days outside this range cannot be stamped.
_FIRST_DAY, _LAST_DAY = date(1678, 1, 1), date(2262, 4, 10)

TRADE_BAR_COLUMNS = ("ticker", "date", "time_et", "ms_since_midnight", "open", "high", "low", "close", "volume")
QUOTE_BAR_COLUMNS = (
    "ticker", "date", "time_et", "ms_since_midnight",
    "bid_open", "bid_high", "bid_low", "bid_close", "bid_size",
    "ask_open", "ask_high", "ask_low", "ask_close", "ask_size",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------------------------


def ny_local_to_utc_ns(day: date, ms_since_midnight: int) -> int:
    """UTC epoch nanoseconds of a New York wall-clock time (``day`` + milliseconds after midnight).

    Exact integer arithmetic; the UTC offset is the one in force at that local time (an
    ambiguous time in the autumn fall-back hour resolves to its first occurrence, EDT).

    >>> ny_local_to_utc_ns(date(2013, 10, 7), 9 * 3_600_000 + 30 * 60_000)  # 09:30 EDT
    1381152600000000000
    >>> ny_local_to_utc_ns(date(2013, 12, 2), 9 * 3_600_000 + 30 * 60_000)  # 09:30 EST
    1385994600000000000
    """
    if not 0 <= ms_since_midnight < _MS_PER_DAY:
        raise ValueError(f"ms_since_midnight must be in [0, {_MS_PER_DAY}), got {ms_since_midnight}")
    local = datetime(day.year, day.month, day.day, tzinfo=NEW_YORK) + timedelta(milliseconds=ms_since_midnight)
    # Adding a timedelta to an aware datetime keeps wall-clock arithmetic, which is what
    # "milliseconds since local midnight" means in Lean's files.
    offset = local.utcoffset()
    assert offset is not None
    offset_ms = (offset.days * 86_400 + offset.seconds) * 1000
    return (_epoch_day(day) * _MS_PER_DAY + ms_since_midnight - offset_ms) * _NS_PER_MS


def _epoch_day(day: date) -> int:
    return day.toordinal() - 719_163  # date(1970, 1, 1).toordinal()


@lru_cache(maxsize=4096)
def _day_clock(day: date) -> tuple[int, int, bool]:
    """``(local midnight as naive epoch ms, UTC offset ms at midnight, offset changes that day)``."""
    start = ny_local_to_utc_ns(day, 0) // _NS_PER_MS
    naive = _epoch_day(day) * _MS_PER_DAY
    end = ny_local_to_utc_ns(day, _MS_PER_DAY - 1) // _NS_PER_MS
    return naive, naive - start, (naive + _MS_PER_DAY - 1 - end) != (naive - start)


def parse_day(value: DateSpec, what: str = "date") -> date | None:
    """``value`` as a ``date`` (accepts a ``date`` or ``'YYYY-MM-DD'``; ``None`` stays ``None``).

    >>> parse_day("2013-10-07")
    datetime.date(2013, 10, 7)
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DAY.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{what} must be a date or 'YYYY-MM-DD', got {value!r}")


# ---------------------------------------------------------------------------------------------
# Block-wise CSV reading with exact columns (shared by the Lean, TAQ and daily readers)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CsvBlock:
    """One block of a CSV file: string columns plus the 1-based file line of every row."""

    lines: np.ndarray
    columns: dict[str, pa.Array]

    def __len__(self) -> int:
        return int(self.lines.shape[0])

    def take(self, index: np.ndarray) -> CsvBlock:
        """The rows at ``index`` (positions or a boolean mask)."""
        idx = np.flatnonzero(index) if index.dtype == np.bool_ else index
        arrow_idx = pa.array(idx, type=pa.int64())
        return CsvBlock(self.lines[idx], {k: v.take(arrow_idx) for k, v in self.columns.items()})


def csv_blocks(path: str | Path, header: Sequence[str], *, block_bytes: int = _BLOCK_BYTES) -> Iterator[CsvBlock]:
    """Stream ``path`` (plain or gzipped CSV with exactly ``header``) as blocks of string columns.

    Every value stays text so numbers can be parsed exactly afterwards. Blank lines are skipped
    (they still count for line numbers). A wrong header, a row with the wrong number of fields,
    bad UTF-8 or a truncated gzip stream raise :class:`DataError` naming ``path:line``.
    """
    p = Path(path)
    with closing(numbered_lines(p)) as lines:  # DataError for a missing file or a bad gzip header
        lineno, head = next(lines, (1, ""))
    if not head:
        raise DataError(p, 1, f"empty file; expected a CSV header {','.join(header)}")
    if lineno != 1:
        raise DataError(p, 1, f"blank first line; expected a CSV header {','.join(header)}")
    found = [c.strip() for c in head.split(",")]
    if found != list(header):
        raise DataError(p, 1, f"unexpected header {head!r}; expected {','.join(header)}")
    text_columns = {c: pa.string() for c in header}
    rows_done = 0
    # pyarrow reads our decoded stream, not the gzip file itself: its own decoder reads a block
    # ahead and reports a broken stream at the start of that block, while ours delivers every
    # complete line first and then names the first line it could not (Source.check_complete).
    with open_source(p) as src:
        try:
            reader = pv.open_csv(
                src.stream,
                read_options=pv.ReadOptions(use_threads=False, block_size=block_bytes),
                # Blank lines become rows of empty strings, so row i is always file line i + 2;
                # these files never quote, and a stray quote must not glue lines together.
                parse_options=pv.ParseOptions(ignore_empty_lines=False, quote_char=False),
                convert_options=pv.ConvertOptions(column_types=text_columns, strings_can_be_null=False),
            )
            for batch in reader:
                n = batch.num_rows
                line_nos = np.arange(rows_done + 2, rows_done + 2 + n, dtype=np.int64)
                rows_done += n
                cols = {name: batch.column(i) for i, name in enumerate(batch.schema.names)}
                blank = _all_empty(cols.values())
                block = CsvBlock(line_nos, cols)
                if blank is not None:
                    block = block.take(~blank)
                if len(block):
                    yield block
        except pa.ArrowInvalid as exc:
            msg = str(exc)
            m = _ROW_IN_ERROR.search(msg)
            line = int(m.group(1)) if m else rows_done + 2
            reason = msg.split(": ", 1)[1] if msg.startswith("CSV parse error") else msg
            if "invalid UTF8" in msg:
                reason = "not UTF-8 text"
            raise DataError(p, line, _ROW_IN_ERROR.sub("", reason).strip(" :")) from exc
        src.check_complete()


def empty_mask(values: pa.Array) -> np.ndarray:
    """Boolean mask of the empty strings in a text column."""
    return pc.equal(pc.binary_length(values), 0).to_numpy(zero_copy_only=False)


def _all_empty(columns: Iterable[pa.Array]) -> np.ndarray | None:
    mask: np.ndarray | None = None
    for col in columns:
        empty = empty_mask(col)
        mask = empty if mask is None else mask & empty
    if mask is None or not mask.any():
        return None
    return mask


def decimal_column(
    values: pa.Array, grid: Grid, *, path: str | Path, lines: np.ndarray, column: str, owner: str = ""
) -> np.ndarray:
    """Exact integer counts of ``grid`` for a column of decimal text (``'167.6500'`` → 16765).

    Vectorised and exact (integer arithmetic on the digits, no float on the way). A value that
    is not a plain non-negative decimal, or not a whole number of increments, raises
    :class:`DataError` naming the first offending line.
    """
    mantissa, scale = grid.decimal_scale()
    if scale > 12:
        raise ValueError(f"grids finer than 1e-12 are not supported here, got {grid}")
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ok = pc.match_substring_regex(values, _NUMBER).to_numpy(zero_copy_only=False)
    length = pc.binary_length(values).to_numpy(zero_copy_only=False).astype(np.int64)
    dot = pc.find_substring(values, ".").to_numpy(zero_copy_only=False).astype(np.int64)
    has_dot = dot >= 0
    nfrac = np.where(has_dot, length - dot - 1, 0)
    whole = length - nfrac - has_dot
    # int64 holds 18 digits safely: bound both the text and the value scaled to the grid
    ok &= (whole + nfrac <= 18) & (whole + scale <= 18)
    if not ok.all():
        _raise_at(path, lines, values, ok, column, owner, "is not a non-negative decimal number")
    digits = pc.cast(pc.replace_substring(values, ".", "", max_replacements=1), pa.int64()).to_numpy()
    shift = scale - nfrac
    units = np.empty(n, dtype=np.int64)
    up = shift >= 0
    units[up] = digits[up] * _POW10[shift[up]]
    if not up.all():
        down = ~up
        div = _POW10[-shift[down]]
        units[down], rem = np.divmod(digits[down], div)
        exact = np.ones(n, dtype=np.bool_)
        exact[down] = rem == 0
        if not exact.all():
            _raise_at(path, lines, values, exact, column, owner, f"is not on the {grid} grid")
    if mantissa != 1:
        ticks, rem = np.divmod(units, mantissa)
        if rem.any():
            _raise_at(path, lines, values, rem == 0, column, owner, f"is not on the {grid} grid")
        return ticks
    return units


def _raise_at(
    path: str | Path, lines: np.ndarray, values: pa.Array, ok: np.ndarray, column: str, owner: str, what: str
) -> None:
    i = int(np.argmin(ok))
    of = f" of {owner}" if owner else ""
    raise DataError(path, int(lines[i]), f"{column} {values[i].as_py()!r}{of} {what}")


def int_column(values: pa.Array, *, path: str | Path, lines: np.ndarray, column: str) -> np.ndarray:
    """Non-negative integers from text (``'34216893'``); DataError naming the line otherwise."""
    return decimal_column(values, _UNIT_GRID, path=path, lines=lines, column=column)


_UNIT_GRID = Grid(1)


def day_codes(values: pa.Array, *, path: str | Path, lines: np.ndarray) -> tuple[np.ndarray, list[date]]:
    """Per-row index into a list of distinct ``date``s for a ``YYYY-MM-DD`` column."""
    encoded = pc.dictionary_encode(values)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    days: list[date] = []
    for j, text in enumerate(encoded.dictionary.to_pylist()):
        try:
            day = parse_day(text)
        except ValueError:
            i = int(np.argmax(codes == j))
            raise DataError(path, int(lines[i]), f"date {text!r} is not a YYYY-MM-DD date") from None
        assert day is not None
        if not _FIRST_DAY <= day <= _LAST_DAY:
            i = int(np.argmax(codes == j))
            raise DataError(path, int(lines[i]), f"date {text!r} is outside the {_FIRST_DAY.year}-"
                                                 f"{_LAST_DAY.year} range of nanosecond timestamps")
        days.append(day)
    return codes, days


def ny_timestamps(
    codes: np.ndarray, days: Sequence[date], ms: np.ndarray, *, path: str | Path, lines: np.ndarray
) -> np.ndarray:
    """UTC ns for New York ``days[codes] + ms`` milliseconds, vectorised (exact; DST-aware)."""
    if ms.size and int(ms.max()) >= _MS_PER_DAY:
        i = int(np.argmax(ms >= _MS_PER_DAY))
        raise DataError(path, int(lines[i]), f"ms_since_midnight {int(ms[i])} is not within a day")
    clocks = [_day_clock(d) for d in days]
    naive = np.array([c[0] for c in clocks], dtype=np.int64)
    offset = np.array([c[1] for c in clocks], dtype=np.int64)
    ts = (naive[codes] + ms - offset[codes]) * _NS_PER_MS
    for j, (_, _, changes) in enumerate(clocks):
        if changes:  # the DST switch day (a Sunday): resolve each row with the zone rules
            for row in np.flatnonzero(codes == j):
                ts[row] = ny_local_to_utc_ns(days[j], int(ms[row]))
    return ts


def to_float(ticks: np.ndarray, grid: Grid) -> np.ndarray:
    """Ticks as float64 prices for analytics: ``ticks * mantissa / 10**scale`` (correctly rounded)."""
    mantissa, scale = grid.decimal_scale()
    return (ticks * mantissa).astype(np.float64) / float(10**scale)


# ---------------------------------------------------------------------------------------------
# Reader base: ticker/date filters, instruments, timestamps
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive selected rows of one ticker inside one block, with parsed timestamps."""

    symbol: str
    instrument: Instrument
    block: CsvBlock
    ts: np.ndarray
    ms: np.ndarray
    day: np.ndarray  # per-row index into ``days``
    days: list[date]

    def take(self, index: np.ndarray) -> Chunk:
        """The rows at ``index`` (positions or a boolean mask)."""
        return Chunk(self.symbol, self.instrument, self.block.take(index), self.ts[index], self.ms[index],
                     self.day[index], self.days)


def parse_tickers(tickers: str | Iterable[str] | None) -> frozenset[str] | None:
    """The ticker selection as a set (one ticker or several; ``None`` means all).

    >>> sorted(parse_tickers(["IBM", "SPY"]))
    ['IBM', 'SPY']
    """
    if tickers is None:
        return None
    found = frozenset([tickers] if isinstance(tickers, str) else tickers)
    if not found or any(not isinstance(t, str) or not t.strip() for t in found):
        raise ValueError(f"tickers must be non-empty ticker strings, got {tickers!r}")
    return found


def select_rows(
    block: CsvBlock, tickers: frozenset[str] | None, start: date | None, end: date | None, *, path: str | Path
) -> tuple[CsvBlock, np.ndarray, list[date]] | None:
    """The rows of ``block`` whose ``ticker`` is in ``tickers`` and whose ``date`` is within
    ``start``..``end`` (inclusive; ``None`` does not filter), with their :func:`day_codes`;
    ``None`` when no row is left. A bad date among the selected tickers raises :class:`DataError`.
    """
    if tickers is not None:
        wanted = pc.is_in(block.columns["ticker"], value_set=pa.array(sorted(tickers)))
        keep = wanted.to_numpy(zero_copy_only=False)
        if not keep.any():
            return None
        block = block.take(keep)
    codes, days = day_codes(block.columns["date"], path=path, lines=block.lines)
    if start is not None or end is not None:
        day64 = np.array(days, dtype="datetime64[D]")[codes] if days else np.zeros(0, "datetime64[D]")
        keep = np.ones(len(block), dtype=np.bool_)
        if start is not None:
            keep &= day64 >= np.datetime64(start)
        if end is not None:
            keep &= day64 <= np.datetime64(end)
        if not keep.any():
            return None
        if not keep.all():
            block = block.take(keep)
            codes = codes[keep]
    return block, codes, days


class ReaderOptions(TypedDict, total=False):
    """The keyword options every :class:`LeanCsvReader` takes (see there)."""

    tickers: str | Iterable[str] | None
    start: DateSpec
    end: DateSpec
    instruments: InstrumentSpec


class BarOptions(ReaderOptions, total=False):
    """The keyword options of the bar readers: :class:`ReaderOptions` and ``interval``."""

    interval: IntervalSpec | None


class LeanCsvReader:
    """Shared base of the Lean-format readers (``ticker,date,time_et,ms_since_midnight,…``).

    ``tickers`` (a ticker or several) and ``start``/``end`` (inclusive dates) select rows;
    ``instruments`` gives the price/size grids: one :class:`Instrument` (then ``tickers``
    defaults to its symbol), a mapping ticker → Instrument, or ``None`` for
    :func:`us_equity` defaults. A requested ticker that never occurs in the file raises
    :class:`DataError` when the stream ends (a file cannot be known to lack it sooner).
    """

    columns: tuple[str, ...] = ()
    strictly_increasing: bool = True

    def __init__(
        self,
        path: str | Path,
        *,
        tickers: str | Iterable[str] | None = None,
        start: DateSpec = None,
        end: DateSpec = None,
        instruments: InstrumentSpec = None,
    ) -> None:
        self.path = Path(path)
        self.tickers = parse_tickers(tickers)
        if isinstance(instruments, Instrument):
            if self.tickers is None:
                self.tickers = frozenset([instruments.symbol])
            elif self.tickers != {instruments.symbol}:
                raise ValueError(
                    f"one instrument ({instruments.symbol}) was given for tickers {sorted(self.tickers)}; "
                    "pass a mapping ticker → Instrument instead"
                )
        self.start = parse_day(start, "start")
        self.end = parse_day(end, "end")
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        self._instruments = instruments
        self._cache: dict[str, Instrument] = {}
        self.rows_read = 0  # data rows seen by the last complete or partial iteration

    def instrument(self, ticker: str) -> Instrument:
        """The instrument used for ``ticker`` (its grids convert the file's prices and sizes)."""
        inst = self._cache.get(ticker)
        if inst is None:
            spec = self._instruments
            if isinstance(spec, Instrument):
                inst = spec
            elif spec is not None and ticker in spec:
                inst = spec[ticker]
            else:
                inst = us_equity(ticker)
            self._cache[ticker] = inst
        return inst

    def _chunks(self) -> Iterator[Chunk]:
        seen: set[str] = set()
        last_ts: dict[str, tuple[int, int]] = {}  # symbol -> (ts, line) of its previous row
        self.rows_read = 0
        for block in csv_blocks(self.path, self.columns):
            self.rows_read += len(block)
            # Every ticker in the file counts as seen, whatever the date filter keeps of it.
            seen.update(pc.unique(block.columns["ticker"]).to_pylist())
            selected = select_rows(block, self.tickers, self.start, self.end, path=self.path)
            if selected is None:
                continue
            block, codes, days = selected
            ms = int_column(block.columns["ms_since_midnight"], path=self.path, lines=block.lines,
                            column="ms_since_midnight")
            ts = ny_timestamps(codes, days, ms, path=self.path, lines=block.lines)
            # Rows of one ticker are contiguous in these files; split the block at ticker changes.
            encoded = pc.dictionary_encode(block.columns["ticker"])
            sym_code = encoded.indices.to_numpy(zero_copy_only=False)
            sym_names = encoded.dictionary.to_pylist()
            n = len(block)
            bounds = [0, *(np.flatnonzero(np.diff(sym_code)) + 1).tolist(), n]
            for a, b in itertools.pairwise(bounds):
                symbol = sym_names[sym_code[a]]
                if not symbol or symbol != symbol.strip():
                    raise DataError(self.path, int(block.lines[a]), f"bad ticker {symbol!r}")
                sub = block if (a, b) == (0, n) else block.take(np.arange(a, b))
                sub_ts = ts[a:b]
                self._check_order(symbol, sub_ts, sub.lines, last_ts)
                inst = self.instrument(symbol)
                yield Chunk(inst.symbol, inst, sub, sub_ts, ms[a:b], codes[a:b], days)
        if self.tickers is not None and not self.tickers <= seen:
            missing = sorted(self.tickers - seen)
            raise DataError(self.path, None, f"ticker(s) {missing} not in the file, which holds {sorted(seen)}")

    def _check_order(
        self, symbol: str, ts: np.ndarray, lines: np.ndarray, last: dict[str, tuple[int, int]]
    ) -> None:
        prev = last.get(symbol)
        if prev is not None:
            joined = np.concatenate(([prev[0]], ts))
            joined_lines = np.concatenate(([prev[1]], lines))
        else:
            joined, joined_lines = ts, lines
        step = np.diff(joined)
        bad = step <= 0 if self.strictly_increasing else step < 0
        if bad.any():
            i = int(np.argmax(bad)) + 1
            raise DataError(
                self.path, int(joined_lines[i]),
                f"{symbol} time goes backwards or repeats (previous row at line {int(joined_lines[i - 1])})",
            )
        last[symbol] = (int(ts[-1]), int(lines[-1]))

    def _prices(self, chunk: Chunk, names: Sequence[str]) -> list[np.ndarray]:
        return [self._decimals(chunk, c, chunk.instrument.price_grid) for c in names]

    def _sizes(self, chunk: Chunk, name: str) -> np.ndarray:
        return self._decimals(chunk, name, chunk.instrument.size_grid)

    def _decimals(self, chunk: Chunk, name: str, grid: Grid) -> np.ndarray:
        return decimal_column(chunk.block.columns[name], grid, path=self.path, lines=chunk.block.lines, column=name,
                              owner=chunk.symbol)

    def _check_ohlc(self, chunk: Chunk, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
                    what: str) -> None:
        bad = (lo > np.minimum(o, c)) | (h < np.maximum(o, c))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(self.path, int(chunk.block.lines[i]),
                            f"{chunk.symbol} {what} is inconsistent: low/high do not bracket open and close")


def _interval_ns(spec: IntervalSpec) -> int:
    if isinstance(spec, bool):
        raise TypeError("interval must be 'second', 'minute', 'hour' or nanoseconds")
    if isinstance(spec, int):
        if spec <= 0 or spec % _NS_PER_MS:
            raise ValueError(f"interval must be a positive whole number of milliseconds in ns, got {spec}")
        return spec
    if spec not in INTERVALS:
        raise ValueError(f"interval must be one of {sorted(INTERVALS)} or nanoseconds, got {spec!r}")
    return INTERVALS[spec]


def infer_interval(path: str | Path, *, sample_rows: int = 2000) -> int:
    """The bar interval of a Lean bar file, in ns: from its name (``…_minute_…``, ``…_second_…``),
    else from the greatest common divisor of the first ``sample_rows`` bar start times.

    >>> infer_interval(DATA_DIR / "intraday/lean_second_trade_bars_SPY.csv.gz") // 10**9
    1
    """
    tokens = set(re.split(r"[^a-z]+", Path(path).name.lower()))
    for name in ("second", "minute", "hour"):
        if name in tokens:
            return INTERVALS[name]
    g = 0
    with closing(numbered_lines(path)) as lines:
        for lineno, line in lines:
            if lineno == 1:
                continue
            fields = line.split(",")
            if len(fields) < 4 or not fields[3].isdigit():
                raise DataError(path, lineno, "cannot read ms_since_midnight to infer the bar interval")
            g = math.gcd(g, int(fields[3]))
            if lineno > sample_rows:
                break
    if g and g % 60_000 == 0:
        return MINUTE_NS
    if g and g % 1000 == 0:
        return SECOND_NS
    raise DataError(path, None, "cannot infer the bar interval", fix=Fix("interval", ("second", "minute")))


class _BarReader(LeanCsvReader):
    def __init__(self, path: str | Path, *, interval: IntervalSpec | None = None,
                 **options: Unpack[ReaderOptions]) -> None:
        super().__init__(path, **options)
        self.interval_ns = _interval_ns(interval) if interval is not None else infer_interval(self.path)

    def _check_alignment(self, chunk: Chunk) -> None:
        step_ms = self.interval_ns // _NS_PER_MS
        if step_ms <= _MS_PER_DAY and _MS_PER_DAY % step_ms == 0:
            bad = chunk.ms % step_ms != 0
            if bad.any():
                i = int(np.argmax(bad))
                raise DataError(self.path, int(chunk.block.lines[i]),
                                f"bar start {int(chunk.ms[i])} ms is not on the {step_ms} ms interval grid")


class LeanTradeBars(_BarReader):
    """Lean trade bars (minute or second) as :class:`Bar` events, streamed in file order.

    Within a ticker the bars are in time order (checked); a file with several tickers yields
    them one ticker after another, as stored. ``interval`` is ``'second'``, ``'minute'``,
    ``'hour'`` or nanoseconds; by default it is inferred from the file (:func:`infer_interval`)
    and every bar start must sit on that grid.

    >>> bars = LeanTradeBars(DATA_DIR / "intraday/lean_second_trade_bars_SPY.csv.gz", end="2013-10-07")
    >>> b = next(iter(bars))
    >>> b.ts, b.close, b.volume
    (1381132800000000000, 16741, 2049)
    >>> len(bars.to_frame())
    16675
    """

    columns = TRADE_BAR_COLUMNS

    def __iter__(self) -> Iterator[Bar]:
        interval = self.interval_ns
        for chunk, (o, h, lo, c, v) in self._parsed():
            symbol = chunk.symbol
            for ts, a, b, d, e, f in zip(chunk.ts.tolist(), o.tolist(), h.tolist(), lo.tolist(), c.tolist(),
                                         v.tolist(), strict=True):
                yield Bar(ts, ts, symbol, 0, interval, a, b, d, e, f)

    def _parsed(self) -> Iterator[tuple[Chunk, list[np.ndarray]]]:
        for chunk in self._chunks():
            self._check_alignment(chunk)
            o, h, lo, c = self._prices(chunk, ("open", "high", "low", "close"))
            self._check_ohlc(chunk, o, h, lo, c, "bar")
            yield chunk, [o, h, lo, c, self._sizes(chunk, "volume")]

    def to_frame(self) -> pd.DataFrame:
        """All selected bars as a DataFrame: ``symbol, ts`` (UTC ns), ``time`` (New York),
        ``open, high, low, close`` (float64 prices) and ``volume`` (int64)."""
        parts: list[dict[str, Any]] = []
        for chunk, (o, h, lo, c, v) in self._parsed():
            grid = chunk.instrument.price_grid
            parts.append({"symbol": np.full(len(o), chunk.symbol, dtype=object), "ts": chunk.ts,
                          "open": to_float(o, grid), "high": to_float(h, grid), "low": to_float(lo, grid),
                          "close": to_float(c, grid), "volume": v})
        return concat_frame(parts, ["symbol", "ts", "open", "high", "low", "close", "volume"])


class LeanQuoteBars(_BarReader):
    """Lean quote (NBBO) bars as :class:`QuoteBar` events; with ``quotes=True`` each bar is
    followed by a :class:`Quote` of its closing bid/ask stamped at the bar's END (when that
    quote is known), so the stream stays in time order.

    A side with no quote in the bar (all five fields empty, as Lean writes it) has prices and
    size 0, the convention of :class:`Quote`.

    >>> from itertools import islice
    >>> qb = LeanQuoteBars(DATA_DIR / "intraday/lean_minute_quote_bars.csv.gz", tickers="SPY", quotes=True)
    >>> bar, quote = islice(qb, 2)
    >>> bar.bid_close, bar.ask_close, quote.ts - bar.ts == qb.interval_ns, quote.bid_px
    (16756, 16760, True, 16756)
    """

    columns = QUOTE_BAR_COLUMNS

    def __init__(self, path: str | Path, *, quotes: bool = False, **options: Unpack[BarOptions]) -> None:
        super().__init__(path, **options)
        self.quotes = quotes

    def __iter__(self) -> Iterator[QuoteBar | Quote]:
        interval = self.interval_ns
        with_quotes = self.quotes
        for chunk, cols in self._parsed():
            symbol = chunk.symbol
            lists = [x.tolist() for x in cols]
            for ts, bo, bh, bl, bc, bs, ao, ah, al, ac, az in zip(chunk.ts.tolist(), *lists, strict=True):
                yield QuoteBar(ts, ts, symbol, 0, interval, bo, bh, bl, bc, bs, ao, ah, al, ac, az)
                if with_quotes:
                    end = ts + interval
                    yield Quote(end, end, symbol, 0, bc, bs, ac, az)

    def _parsed(self) -> Iterator[tuple[Chunk, list[np.ndarray]]]:
        for chunk in self._chunks():
            self._check_alignment(chunk)
            cols: list[np.ndarray] = []
            for side in ("bid", "ask"):
                names = [f"{side}_{x}" for x in ("open", "high", "low", "close", "size")]
                chunk = self._blank_side(chunk, names)
                o, h, lo, c = self._prices(chunk, names[:4])
                self._check_ohlc(chunk, o, h, lo, c, f"{side} bar")
                cols += [o, h, lo, c, self._sizes(chunk, names[4])]
            yield chunk, cols

    def _blank_side(self, chunk: Chunk, names: Sequence[str]) -> Chunk:
        cols = chunk.block.columns
        empty = [empty_mask(cols[n]) for n in names]
        anyempty = np.logical_or.reduce(empty)
        if not anyempty.any():
            return chunk
        allempty = np.logical_and.reduce(empty)
        if (anyempty & ~allempty).any():
            i = int(np.argmax(anyempty & ~allempty))
            raise DataError(self.path, int(chunk.block.lines[i]),
                            f"{chunk.symbol} {names[0].split('_')[0]} side is partly empty")
        new = dict(cols)
        mask = pa.array(allempty)
        for n in names:
            new[n] = pc.if_else(mask, "0", cols[n])
        return replace(chunk, block=CsvBlock(chunk.block.lines, new))

    def to_frame(self) -> pd.DataFrame:
        """All selected quote bars as a DataFrame (prices float64, sizes int64, ``ts`` = bar start)."""
        names = [f"{s}_{x}" for s in ("bid", "ask") for x in ("open", "high", "low", "close", "size")]
        parts: list[dict[str, Any]] = []
        for chunk, cols in self._parsed():
            grid = chunk.instrument.price_grid
            part: dict[str, Any] = {"symbol": np.full(len(chunk.ts), chunk.symbol, dtype=object), "ts": chunk.ts}
            for n, col in zip(names, cols, strict=True):
                part[n] = col if n.endswith("size") else to_float(col, grid)
            parts.append(part)
        return concat_frame(parts, ["symbol", "ts", *names])


def concat_frame(parts: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """One DataFrame from column dicts (``symbol`` and ``ts`` among ``columns``), with a New York
    ``time`` column inserted after ``ts``."""
    if parts:
        data = {c: np.concatenate([p[c] for p in parts]) for c in columns}
    else:
        data = {c: np.zeros(0, dtype=object if c == "symbol" else np.int64) for c in columns}
    df = pd.DataFrame(data)
    df.insert(2, "time", pd.to_datetime(df["ts"], unit="ns", utc=True).dt.tz_convert(NEW_YORK))
    return df


def read_trade_bars(path: str | Path, **options: Any) -> Iterator[Bar]:
    """Shorthand for ``iter(LeanTradeBars(path, **options))``."""
    return iter(LeanTradeBars(path, **options))


def read_quote_bars(path: str | Path, **options: Any) -> Iterator[QuoteBar | Quote]:
    """Shorthand for ``iter(LeanQuoteBars(path, **options))``."""
    return iter(LeanQuoteBars(path, **options))
