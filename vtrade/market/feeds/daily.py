"""The daily universe: 500 S&P stocks with GICS sectors, ETF benchmarks, and Lean's raw daily bars.

Files (``data/equities_daily``, see ``data/README.md``)::

    sp500_2018members_daily_2013_2017.csv.gz   date,ticker,open,high,low,close,volume (ticker-major)
    sp500_2018members_meta.csv                 ticker,name,gics_sector_2018,…
    sp500_2018members_daily_2013_2017.flagged_rows.csv   known bad ticks (kept in the data)
    etf_benchmarks_daily.csv.gz                SPY QQQ IWM DIA + the nine sector SPDRs
    lean_daily_raw_unadjusted_1998_2021.csv.gz + lean_factor_files.csv

Price grid: the Kaggle prices are split- AND dividend-adjusted (``83.803``, ``14.2895``), so
they are not on a one-cent grid. Rounding them would silently change history, so the
instruments here get an explicit finer grid, :data:`DAILY_TICK` = 0.0001 (the finest precision
in the files), and every price is checked to fit it exactly (else :class:`DataError` naming
``file:line``). Those instruments are for analytics and bar-level replay; trading a real
one-cent market uses :func:`~vtrade.core.instruments.us_equity`.

A daily bar is stamped at the regular-session open (09:30 New York) with a 390-minute interval,
so its information becomes available at the 16:00 close (early closes are not modelled).

Known bad ticks (decimal shifts such as PXD's close 17.968 on 2013-08-05, zero-volume flat
bars) stay in the data as the source has them; :func:`load_universe` marks them in the
``flagged``/``flags`` columns so a filter can choose, and genuine large moves flagged for review
(AMD 2016-04-22 +52 %) are marked the same way, not dropped.

>>> u = load_universe(tickers=["AAPL", "XLK"], start="2017-01-03", end="2017-01-04")
>>> u.instruments["AAPL"].sector, u.instruments["XLK"].asset_class, str(u.instruments["AAPL"].tick_size)
('Information Technology', 'etf', '0.0001')
>>> [(b.symbol, b.close) for b in u.bars()][:2]
[('AAPL', 1143100), ('XLK', 482350)]
"""

from __future__ import annotations

import csv
import heapq
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from vtrade.core.errors import DataError
from vtrade.core.events import Bar
from vtrade.core.instruments import US_EQUITY_REGULAR, Instrument
from vtrade.core.numbers import Grid
from vtrade.market.feeds._io import numbered_lines
from vtrade.market.feeds.lean import (
    DATA_DIR,
    MINUTE_NS,
    DateSpec,
    csv_blocks,
    decimal_column,
    int_column,
    ny_local_to_utc_ns,
    parse_day,
    parse_tickers,
    select_rows,
    to_float,
)

DAILY_TICK = Decimal("0.0001")
DAILY_GRID = Grid(DAILY_TICK)
DAILY_BAR_NS = 390 * MINUTE_NS  # 09:30 → 16:00 New York
_OPEN_MS = (9 * 60 + 30) * 60_000

DAILY_COLUMNS = ("date", "ticker", "open", "high", "low", "close", "volume")
META_COLUMNS = (
    "ticker", "name", "gics_sector_2018", "gics_sector_now", "gics_sub_industry_now",
    "first_date", "last_date", "rows", "status",
)  # fmt: skip
FLAGGED_COLUMNS = ("flag", "ticker", "date", "open", "high", "low", "close", "volume", "prev_close", "ret")
FACTOR_COLUMNS = ("ticker", "date", "price_factor", "split_factor", "reference_price")

EQUITIES_DIR = DATA_DIR / "equities_daily"
SP500_FILE = "sp500_2018members_daily_2013_2017.csv.gz"
META_FILE = "sp500_2018members_meta.csv"
FLAGGED_FILE = "sp500_2018members_daily_2013_2017.flagged_rows.csv"
ETF_FILE = "etf_benchmarks_daily.csv.gz"
LEAN_RAW_FILE = "lean_daily_raw_unadjusted_1998_2021.csv.gz"
LEAN_FACTOR_FILE = "lean_factor_files.csv"

BROAD_MARKET = "Broad Market"
# The benchmark ETFs: (name, sector). Sector SPDRs carry the GICS sector they track, so a
# sector allocation chart can put them next to the stocks; index ETFs are "Broad Market".
ETF_INFO: dict[str, tuple[str, str]] = {
    "SPY": ("SPDR S&P 500 ETF Trust", BROAD_MARKET),
    "QQQ": ("PowerShares QQQ Trust (Nasdaq-100)", BROAD_MARKET),
    "IWM": ("iShares Russell 2000 ETF", BROAD_MARKET),
    "DIA": ("SPDR Dow Jones Industrial Average ETF", BROAD_MARKET),
    "XLB": ("Materials Select Sector SPDR", "Materials"),
    "XLE": ("Energy Select Sector SPDR", "Energy"),
    "XLF": ("Financial Select Sector SPDR", "Financials"),
    "XLI": ("Industrial Select Sector SPDR", "Industrials"),
    "XLK": ("Technology Select Sector SPDR", "Information Technology"),
    "XLP": ("Consumer Staples Select Sector SPDR", "Consumer Staples"),
    "XLU": ("Utilities Select Sector SPDR", "Utilities"),
    "XLV": ("Health Care Select Sector SPDR", "Health Care"),
    "XLY": ("Consumer Discretionary Select Sector SPDR", "Consumer Discretionary"),
}


def daily_instrument(
    ticker: str, *, sector: str | None = None, name: str = "", asset_class: str = "equity"
) -> Instrument:
    """A US stock/ETF on the 0.0001 grid of adjusted daily prices (see the module notes).

    >>> daily_instrument("MMM", sector="Industrials").price("83.803")
    838030
    """
    return Instrument(
        symbol=ticker, tick_size=DAILY_TICK, lot_size=Decimal(1), venue="US", asset_class=asset_class,
        sector=sector, name=name, hours=US_EQUITY_REGULAR,
    )


@dataclass(frozen=True, eq=False)
class DailyTable:
    """Exact daily bars of one file, column-wise: prices in ticks of ``grid``, rows in
    (ticker, date) order, each with the file line it came from.

    ``bars()`` yields :class:`Bar` events in time order across tickers (by date, then ticker).
    The source files are ticker-major, so a time-ordered stream needs every row; they are held
    as compact integer arrays (≈ 40 bytes a row), never as text or Python objects, and the
    events themselves are created lazily.
    """

    path: Path
    symbols: tuple[str, ...]  # code -> ticker
    code: np.ndarray  # int32 per row
    day: np.ndarray  # datetime64[D] per row
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    line: np.ndarray
    grid: Grid = field(default=DAILY_GRID)

    def __len__(self) -> int:
        return int(self.code.shape[0])

    @property
    def tickers(self) -> list[str]:
        """Tickers present, sorted."""
        return sorted(self.symbols[c] for c in np.unique(self.code))

    def select(self, mask: np.ndarray) -> DailyTable:
        """The rows where ``mask`` is true."""
        return DailyTable(self.path, self.symbols, self.code[mask], self.day[mask], self.open[mask],
                          self.high[mask], self.low[mask], self.close[mask], self.volume[mask], self.line[mask],
                          self.grid)

    def ticker_per_row(self) -> np.ndarray:
        """The ticker of every row (object array)."""
        return np.array(self.symbols, dtype=object)[self.code] if len(self) else np.zeros(0, dtype=object)

    def time_order(self) -> np.ndarray:
        """Row positions sorted by (date, ticker name)."""
        rank = np.argsort(np.argsort(np.array(self.symbols, dtype=object)))
        return np.lexsort((rank[self.code], self.day))

    def bars(self, *, batch: int = 8192) -> Iterator[Bar]:
        """:class:`Bar` events (ticks of ``grid``), by date then ticker.

        >>> t = read_daily(EQUITIES_DIR / ETF_FILE, tickers=["SPY", "DIA"], start="2017-11-10")
        >>> [(b.symbol, b.close) for b in t.bars()]
        [('DIA', 2344300), ('SPY', 2580900)]
        """
        order = self.time_order()
        days, which = np.unique(self.day, return_inverse=True)
        ts_of = np.array([ny_local_to_utc_ns(d, _OPEN_MS) for d in days.astype(object)], dtype=np.int64)[which]
        symbols = self.symbols
        for a in range(0, len(order), batch):
            idx = order[a : a + batch]
            for ts, c, o, h, lo, cl, v in zip(ts_of[idx].tolist(), self.code[idx].tolist(), self.open[idx].tolist(),
                                              self.high[idx].tolist(), self.low[idx].tolist(),
                                              self.close[idx].tolist(), self.volume[idx].tolist(), strict=True):
                yield Bar(ts, ts, symbols[c], 0, DAILY_BAR_NS, o, h, lo, cl, v)

    def to_frame(self) -> pd.DataFrame:
        """``date, ticker, open, high, low, close, volume`` with float64 prices and volume."""
        return pd.DataFrame({
            "date": self.day.astype("datetime64[ns]"),
            "ticker": self.ticker_per_row(),
            "open": to_float(self.open, self.grid), "high": to_float(self.high, self.grid),
            "low": to_float(self.low, self.grid), "close": to_float(self.close, self.grid),
            "volume": self.volume.astype(np.float64),
        })


def read_daily(
    path: str | Path,
    *,
    tickers: str | Iterable[str] | None = None,
    start: DateSpec = None,
    end: DateSpec = None,
    grid: Grid = DAILY_GRID,
) -> DailyTable:
    """Read a ``date,ticker,open,high,low,close,volume`` file exactly (streamed block by block).

    Every price must fit ``grid`` exactly and volumes must be whole shares; a duplicate
    (ticker, date) is an error. Rows are kept as the file has them otherwise (bad ticks included).

    >>> t = read_daily(EQUITIES_DIR / SP500_FILE, tickers="MMM", end="2013-01-03")
    >>> t.close.tolist(), t.line.tolist()
    ([843260, 842290], [2, 3])
    """
    p = Path(path)
    wanted = parse_tickers(tickers)
    lo_day, hi_day = parse_day(start, "start"), parse_day(end, "end")
    codes_of: dict[str, int] = {}
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("code", "day", "o", "h", "l", "c", "v", "line")}
    for block in csv_blocks(p, DAILY_COLUMNS):
        selected = select_rows(block, wanted, lo_day, hi_day, path=p)
        if selected is None:
            continue
        block, codes, days = selected
        day = np.array(days, dtype="datetime64[D]")[codes]
        enc = pc.dictionary_encode(block.columns["ticker"])
        local: list[int] = []
        for t in enc.dictionary.to_pylist():
            if not t or t != t.strip():
                i = int(np.argmax(enc.indices.to_numpy(zero_copy_only=False) == len(local)))
                raise DataError(p, int(block.lines[i]), f"bad ticker {t!r}")
            local.append(codes_of.setdefault(t, len(codes_of)))
        parts["code"].append(np.array(local, dtype=np.int32)[enc.indices.to_numpy(zero_copy_only=False)])
        parts["day"].append(day)
        for key, col in (("o", "open"), ("h", "high"), ("l", "low"), ("c", "close")):
            parts[key].append(decimal_column(block.columns[col], grid, path=p, lines=block.lines, column=col))
        parts["v"].append(int_column(block.columns["volume"], path=p, lines=block.lines, column="volume"))
        parts["line"].append(block.lines)
    cat = {k: (np.concatenate(v) if v else np.zeros(0, dtype="datetime64[D]" if k == "day" else np.int64))
           for k, v in parts.items()}
    table = DailyTable(p, tuple(codes_of), cat["code"].astype(np.int32), cat["day"], cat["o"], cat["h"], cat["l"],
                       cat["c"], cat["v"], cat["line"], grid)
    if wanted is not None and not wanted <= set(codes_of):
        raise DataError(p, None, f"ticker(s) {sorted(wanted - set(codes_of))} not in the file")
    order = np.lexsort((table.day, table.code))
    if len(order) and (order != np.arange(len(order))).any():
        table = table.select(order)
    dup = (np.diff(table.code) == 0) & (np.diff(table.day) == np.timedelta64(0, "D"))
    if dup.any():
        i = int(np.argmax(dup)) + 1
        raise DataError(p, int(table.line[i]), f"{table.symbols[table.code[i]]} {table.day[i]} appears twice "
                                               f"(also line {int(table.line[i - 1])})")
    return table


def daily_bars(*tables: DailyTable) -> Iterator[Bar]:
    """Bars of several tables merged into one time-ordered stream (by ts, then symbol).

    >>> a = read_daily(EQUITIES_DIR / ETF_FILE, tickers="XLK", start="2017-11-09")
    >>> b = read_daily(EQUITIES_DIR / SP500_FILE, tickers="AAPL", start="2017-11-09")
    >>> [b.symbol for b in daily_bars(a, b)]
    ['AAPL', 'XLK', 'AAPL', 'XLK']
    """
    return heapq.merge(*(t.bars() for t in tables), key=lambda b: (b.ts, b.symbol))


def _read_small_csv(path: Path, header: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """Rows of a small CSV with quoted fields (names with commas), numbered by file line."""
    for lineno, line in numbered_lines(path):
        try:
            row = next(csv.reader([line]))
        except csv.Error as exc:
            raise DataError(path, lineno, f"malformed CSV ({exc})") from exc
        if lineno == 1:
            if tuple(c.strip() for c in row) != header:
                raise DataError(path, 1, f"unexpected header {line!r}; expected {','.join(header)}")
            continue
        if len(row) != len(header):
            raise DataError(path, lineno, f"expected {len(header)} columns, got {len(row)}")
        yield lineno, row


def _day_at(path: Path, lineno: int, text: str) -> date:
    """``text`` as a date; a :class:`DataError` at ``path:lineno`` otherwise."""
    try:
        day = parse_day(text)
    except ValueError:
        raise DataError(path, lineno, f"date {text!r} is not a YYYY-MM-DD date") from None
    assert day is not None
    return day


def read_meta(path: str | Path = EQUITIES_DIR / META_FILE) -> pd.DataFrame:
    """The 505-row membership table (ticker, name, GICS sectors, coverage, status) as strings."""
    p = Path(path)
    rows = [row for _, row in _read_small_csv(p, META_COLUMNS)]
    return pd.DataFrame(rows, columns=list(META_COLUMNS))


def read_flagged(path: str | Path = EQUITIES_DIR / FLAGGED_FILE) -> pd.DataFrame:
    """The known-bad-tick list: ``flag, ticker, date`` (datetime64), prices/volume as in the data,
    plus ``line`` (its line in the flagged file)."""
    p = Path(path)
    out: list[list[object]] = []
    for lineno, row in _read_small_csv(p, FLAGGED_COLUMNS):
        out.append([*row, _day_at(p, lineno, row[2]), lineno])
    df = pd.DataFrame(out, columns=[*FLAGGED_COLUMNS, "day", "line"])
    df["date"] = pd.to_datetime(df.pop("day"))
    return df


@dataclass(frozen=True, eq=False)
class DailyUniverse:
    """The daily universe: instruments with sectors, a tidy frame, exact tables and bar events.

    ``frame`` columns: ``date, ticker, open, high, low, close, volume`` (float64), ``sector``,
    ``asset_class`` (``equity``/``etf``), ``flagged`` (bool) and ``flags`` (the flag names,
    ``;``-joined, '' when clean), ordered by date then ticker.
    """

    instruments: dict[str, Instrument]
    frame: pd.DataFrame
    tables: tuple[DailyTable, ...]
    meta: pd.DataFrame
    flagged: pd.DataFrame

    def bars(self) -> Iterator[Bar]:
        """Every bar, time ordered across tickers and files (a lazy merge)."""
        return daily_bars(*self.tables)

    @property
    def sectors(self) -> dict[str, str | None]:
        """ticker → sector."""
        return {t: i.sector for t, i in self.instruments.items()}


def load_universe(
    directory: str | Path = EQUITIES_DIR,
    *,
    tickers: str | Iterable[str] | None = None,
    start: DateSpec = None,
    end: DateSpec = None,
    etfs: bool = True,
) -> DailyUniverse:
    """Load the 500-stock universe (+ ETF benchmarks) from ``directory``.

    ``tickers`` may mix stocks and ETFs; an unknown ticker raises ValueError before any bars
    are read. A stock with bars but no meta row, or a flagged row whose (ticker, date, close)
    does not match the data, raises :class:`DataError`.
    """
    d = Path(directory)
    meta = read_meta(d / META_FILE)
    wanted = parse_tickers(tickers)
    stock_names = set(meta["ticker"])
    if wanted is not None:
        unknown = sorted(wanted - stock_names - (set(ETF_INFO) if etfs else set()))
        if unknown:
            raise ValueError(f"unknown ticker(s) {unknown}: not in {d / META_FILE}"
                             + (" nor the ETF benchmarks" if etfs else ""))
    stock_wanted = None if wanted is None else wanted & stock_names
    etf_wanted = None if wanted is None else wanted & set(ETF_INFO)
    stocks = etf_table = None
    if stock_wanted is None or stock_wanted:
        absent = sorted((stock_wanted or set()) & set(meta.loc[meta["status"] != "OK", "ticker"]))
        if absent:
            raise ValueError(f"ticker(s) {absent} have no bars in the source (meta status MISSING_IN_SOURCE)")
        stocks = read_daily(d / SP500_FILE, tickers=stock_wanted, start=start, end=end)
    if etfs and (etf_wanted is None or etf_wanted):
        etf_table = read_daily(d / ETF_FILE, tickers=etf_wanted, start=start, end=end)

    # ticker -> (GICS sector, name); read_meta's columns are strings.
    by_meta: dict[str, tuple[str, str]] = {
        ticker: (sector, name)
        for ticker, sector, name in zip(meta["ticker"], meta["gics_sector_2018"], meta["name"], strict=True)
    }
    instruments: dict[str, Instrument] = {}
    if stocks is not None:
        for ticker in stocks.tickers:
            found = by_meta.get(ticker)
            if found is None:
                first = int(stocks.line[np.argmax(stocks.ticker_per_row() == ticker)])
                raise DataError(stocks.path, first, f"{ticker} has bars but no row in {d / META_FILE}")
            sector, name = found
            instruments[ticker] = daily_instrument(ticker, sector=sector or None, name=name)
    if etf_table is not None:
        for ticker in etf_table.tickers:
            name, sector = ETF_INFO.get(ticker, ("", BROAD_MARKET))
            instruments[ticker] = daily_instrument(ticker, sector=sector, name=name, asset_class="etf")

    tables = tuple(t for t in (stocks, etf_table) if t is not None)
    frame = pd.concat([t.to_frame() for t in tables], ignore_index=True)
    frame["sector"] = frame["ticker"].map({t: i.sector for t, i in instruments.items()})
    frame["asset_class"] = frame["ticker"].map({t: i.asset_class for t, i in instruments.items()})
    flagged = read_flagged(d / FLAGGED_FILE)
    frame = _mark_flags(frame, flagged, d / FLAGGED_FILE, stocks)
    frame = frame.sort_values(["date", "ticker"], kind="stable", ignore_index=True)
    return DailyUniverse(instruments, frame, tables, meta, flagged)


def _mark_flags(frame: pd.DataFrame, flagged: pd.DataFrame, path: Path, stocks: DailyTable | None) -> pd.DataFrame:
    """Add ``flags``/``flagged``, after checking each flagged row in range matches the data."""
    frame["flags"] = ""
    if stocks is None or not len(stocks):
        frame["flagged"] = False
        return frame
    lo, hi = pd.Timestamp(stocks.day.min()), pd.Timestamp(stocks.day.max())
    sel = flagged[flagged["ticker"].isin(set(stocks.tickers)) & (flagged["date"] >= lo) & (flagged["date"] <= hi)]
    code_of = {t: i for i, t in enumerate(stocks.symbols)}
    rows: Iterable[tuple[str, pd.Timestamp, int, str]] = zip(
        sel["ticker"], sel["date"], sel["line"], sel["close"], strict=True)
    for ticker, when, line, close in rows:
        day = when.date()
        hit = np.flatnonzero((stocks.code == code_of[ticker]) & (stocks.day == np.datetime64(day)))
        if not len(hit):
            raise DataError(path, int(line), f"flagged row {ticker} {day} is not in the data")
        got = float(to_float(stocks.close[hit[:1]], stocks.grid)[0])
        if not math.isclose(got, float(close), rel_tol=0, abs_tol=5e-5):
            raise DataError(path, int(line), f"flagged row {ticker} {day} close {close} != data close {got}")
    if len(sel):
        flags = sel.groupby(["ticker", "date"])["flag"].agg(lambda s: ";".join(sorted(set(s))))
        key = pd.MultiIndex.from_arrays([frame["ticker"], frame["date"]])
        frame["flags"] = flags.reindex(key).fillna("").to_numpy()
    frame["flagged"] = frame["flags"] != ""
    return frame


# ---------------------------------------------------------------------------------------------
# Lean raw daily bars + factor files
# ---------------------------------------------------------------------------------------------


class LeanDaily(NamedTuple):
    """Lean daily bars: ``adjusted`` (split- and dividend-adjusted) and ``raw`` (as traded)."""

    adjusted: pd.DataFrame
    raw: pd.DataFrame


@dataclass(frozen=True, slots=True)
class FactorTable:
    """One ticker's factor rows (ascending dates)."""

    day: np.ndarray  # datetime64[D]
    price_factor: np.ndarray
    split_factor: np.ndarray
    line: np.ndarray


def read_factors(path: str | Path = EQUITIES_DIR / LEAN_FACTOR_FILE) -> dict[str, FactorTable]:
    """Lean factor files (``ticker,date,price_factor,split_factor,reference_price``) by ticker.

    >>> f = read_factors()["AAPL"]
    >>> str(f.day[-1]), float(f.split_factor[0])
    ('2050-12-31', 0.00892857)
    """
    p = Path(path)
    rows: dict[str, list[tuple[np.datetime64, float, float, int]]] = {}
    for lineno, row in _read_small_csv(p, FACTOR_COLUMNS):
        ticker, day_text, pf_text, sf_text, _ = row
        day = _day_at(p, lineno, day_text)
        try:
            pf, sf = float(pf_text), float(sf_text)
        except ValueError:
            raise DataError(p, lineno, f"factors {pf_text!r}, {sf_text!r} are not numbers") from None
        if not (math.isfinite(pf) and math.isfinite(sf) and pf > 0 and sf > 0):
            raise DataError(p, lineno, f"factors must be positive and finite, got {pf_text}, {sf_text}")
        seq = rows.setdefault(ticker, [])
        if seq and np.datetime64(day) <= seq[-1][0]:
            raise DataError(p, lineno, f"{ticker} factor dates must increase (previous row line {seq[-1][3]})")
        seq.append((np.datetime64(day), pf, sf, lineno))
    return {
        t: FactorTable(np.array([r[0] for r in v], dtype="datetime64[D]"), np.array([r[1] for r in v]),
                       np.array([r[2] for r in v]), np.array([r[3] for r in v], dtype=np.int64))
        for t, v in rows.items()
    }


def load_lean_daily(
    raw_path: str | Path = EQUITIES_DIR / LEAN_RAW_FILE,
    factor_path: str | Path = EQUITIES_DIR / LEAN_FACTOR_FILE,
    *,
    tickers: str | Iterable[str] | None = None,
    start: DateSpec = None,
    end: DateSpec = None,
) -> LeanDaily:
    """Lean's raw daily bars and their split/dividend-adjusted version.

    Lean's rule: a bar dated D is multiplied by ``price_factor × split_factor`` of the FIRST
    factor row dated on or after D. Adjusted volume is raw volume ÷ ``split_factor`` (shares
    counted in today's share units); dividends do not change volume. Both frames have
    ``date, ticker, open, high, low, close, volume`` (float64); ``adjusted`` adds
    ``price_factor, split_factor, factor``. Raw prices are checked to fit the 0.0001 grid.

    >>> lean = load_lean_daily(tickers="AAPL", start="2014-06-06", end="2014-06-09")
    >>> lean.raw["close"].round(2).tolist(), lean.adjusted["close"].round(2).tolist()
    ([645.57, 93.7], [20.78, 21.11])
    """
    table = read_daily(raw_path, tickers=tickers, start=start, end=end)
    factors = read_factors(factor_path)
    raw = table.to_frame()
    n = len(raw)
    pf = np.empty(n)
    sf = np.empty(n)
    tick_names = table.ticker_per_row()
    for ticker in table.tickers:
        rows = np.flatnonzero(tick_names == ticker)
        f = factors.get(ticker)
        if f is None:
            raise DataError(Path(factor_path), None, f"no factor rows for {ticker}")
        j = np.searchsorted(f.day, table.day[rows], side="left")
        if (j >= len(f.day)).any():
            i = rows[int(np.argmax(j >= len(f.day)))]
            raise DataError(table.path, int(table.line[i]),
                            f"{ticker} {table.day[i]} is after the last factor row ({f.day[-1]})")
        pf[rows] = f.price_factor[j]
        sf[rows] = f.split_factor[j]
    factor = pf * sf
    adjusted = raw.copy()
    for col in ("open", "high", "low", "close"):
        adjusted[col] = raw[col].to_numpy() * factor
    adjusted["volume"] = raw["volume"].to_numpy() / sf
    adjusted["price_factor"] = pf
    adjusted["split_factor"] = sf
    adjusted["factor"] = factor
    return LeanDaily(adjusted, raw)
