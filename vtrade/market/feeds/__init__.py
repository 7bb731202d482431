"""Feeds: streaming readers that turn recorded files into timestamped market events.

:func:`open_feed` recognises a file's format (or takes one by name) and returns a
:class:`Feed`: an iterable of events that also says which kind of book its events build.

>>> feed = open_feed("data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz")
>>> feed.format, feed.book_kind, feed.instrument.symbol
('binance', 'L2', 'BTCUSDT')

Every format takes the grid from the caller when told (``tick_size=``, ``lot_size=``,
``contract_size=``, or a whole ``instrument=``), and :meth:`Feed.describe` says which grid
was used and where it came from:

>>> open_feed("data/intraday/lean_minute_trade_bars.csv.gz", symbol="SPY", tick_size="0.0001").describe()
'SPY (US): tick 0.0001, lot 1 — tick given, lot the US-equity default'
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from vtrade.core.errors import DataError, Fix, UnknownFormatError
from vtrade.core.events import Bar, MarketEvent, Trade
from vtrade.core.instruments import Instrument
from vtrade.core.numbers import Number
from vtrade.market.feeds._io import check_source, first_line, numbered_lines
from vtrade.market.feeds.binance import looks_like_binance

BookKind = Literal["L1", "L2", "L3", "bars", "trades"]


@dataclass(frozen=True, slots=True)
class Feed:
    """A recorded feed: iterate it (again and again) for its events.

    ``book_kind`` says what its events build: ``"L1"`` (quotes), ``"L2"`` (price levels),
    ``"L3"`` (orders), or no book at all: ``"bars"`` and ``"trades"``. ``window`` is the
    visible depth of a depth-limited source (LOBSTER's level count), None when not limited.
    ``instrument`` is the feed's (for a multi-ticker file without a chosen symbol: the first
    row's, and events of other tickers follow). ``grid_source`` says where its grid came from
    ("built-in", "given", "inferred from a first pass over N lines", or the format's default).
    """

    path: Path
    format: str
    book_kind: BookKind
    instrument: Instrument | None
    window: int | None
    events: Callable[[], Iterable[MarketEvent]]
    grid_source: str = ""
    description: str = ""

    def __iter__(self) -> Iterator[MarketEvent]:
        return iter(self.events())

    def as_bars(self) -> Feed:
        """A trades feed as one bar per print, for the bars rung of the realism ladder.

        Each print becomes a bar of no duration whose open, high, low and close are its price
        and whose volume is its size: a bar-realism order then fills at a later print, at most
        its volume share of that print's size (zipline's rule on tick data). Other events pass
        through. A feed that is not ``"trades"`` is returned as it is.

        >>> f = open_feed("data/taq/lean_tick_trades_IBM_BAC.csv.gz", symbol="BAC").as_bars()
        >>> f.book_kind, type(next(iter(f))).__name__
        ('bars', 'Bar')
        """
        if self.book_kind != "trades":
            return self
        events = self.events

        def bars() -> Iterator[MarketEvent]:
            for e in events():
                if isinstance(e, Trade):
                    yield Bar(e.ts, e.recv_ts, e.symbol, e.seq, 0, e.price, e.price, e.price, e.price, e.size)
                else:
                    yield e

        return dataclasses.replace(self, book_kind="bars", events=bars)

    def describe(self) -> str:
        """One line: the instrument, its grid and where the grid came from (what the CLI prints)."""
        if self.description:
            return self.description
        head = self.instrument.describe() if self.instrument else f"{self.path.name} (no instrument)"
        return f"{head} — {self.grid_source}" if self.grid_source else head


@dataclass(frozen=True, slots=True)
class GridOverride:
    """Grids the caller gave (``--tick-size``, ``--lot-size``, ``--contract-size``); None keeps the default.

    >>> from vtrade.core.instruments import us_equity
    >>> str(GridOverride(tick_size="0.0001").apply(us_equity("SPY")).tick_size)
    '0.0001'
    """

    tick_size: Number | None = None
    lot_size: Number | None = None
    contract_size: Number | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.tick_size, self.lot_size, self.contract_size))

    def apply(self, inst: Instrument) -> Instrument:
        """``inst`` with the given grids (for a non-inverse instrument a contract size is a multiplier)."""
        tick, lot, size = (
            None if v is None else Decimal(str(v)) for v in (self.tick_size, self.lot_size, self.contract_size)
        )
        try:
            return dataclasses.replace(
                inst,
                tick_size=inst.tick_size if tick is None else tick,
                lot_size=inst.lot_size if lot is None else lot,
                contract_size=inst.contract_size if size is None else size,
            )
        except (ArithmeticError, ValueError) as exc:  # e.g. a zero or negative tick size
            raise ValueError(f"bad grid for {inst.symbol}: {exc}") from None

    def source(self, default: str) -> str:
        """Where a grid made of these parts and a format's ``default`` came from, in words.

        >>> GridOverride(tick_size="0.0001").source("the US-equity default")
        'tick given, lot the US-equity default'
        """
        given = {n for n, v in (("tick", self.tick_size), ("lot", self.lot_size)) if v is not None}
        text = "given" if len(given) == 2 else default if not given else \
            ", ".join(f"{n} given" if n in given else f"{n} {default}" for n in ("tick", "lot"))
        return text + ("; contract size given" if self.contract_size is not None else "")


class _Regrid(Mapping[str, Instrument]):
    """Ticker -> the format's default instrument with the given grids, for any ticker a multi-ticker
    file holds (the Lean readers look instruments up by ticker)."""

    def __init__(self, default: Callable[[str], Instrument], grid: GridOverride) -> None:
        self.default, self.grid = default, grid
        self._made: dict[str, Instrument] = {}

    def __contains__(self, ticker: object) -> bool:
        return isinstance(ticker, str)

    def __getitem__(self, ticker: str) -> Instrument:
        if ticker not in self._made:
            self._made[ticker] = self.grid.apply(self.default(ticker))
        return self._made[ticker]

    def __iter__(self) -> Iterator[str]:
        return iter(self._made)

    def __len__(self) -> int:
        return len(self._made)


def _binance(path: Path, instrument: Instrument | None, symbol: str | None, grid: GridOverride | None = None) -> Feed:
    from vtrade.market.feeds.binance import BinanceFeed, infer_instrument

    if instrument is not None:
        return Feed(path, "binance", "L2", instrument, None, lambda: BinanceFeed(path, instrument=instrument),
                    "given", f"{instrument.describe()} — given")  # fmt: skip
    g = grid or GridOverride()
    inferred = infer_instrument(path, tick_size=g.tick_size, lot_size=g.lot_size, contract_size=g.contract_size)
    inst, market = inferred.instrument, inferred.market
    if symbol is not None and symbol != inst.symbol:
        raise DataError(path, None, f"this capture holds {inst.symbol}, not {symbol}")
    return Feed(
        path, "binance", "L2", inst, None, lambda: BinanceFeed(path, market=market, instrument=inst),
        inferred.where(), inferred.describe(),
    )  # fmt: skip


def _lobster(path: Path, instrument: Instrument | None, symbol: str | None, grid: GridOverride | None = None) -> Feed:
    from vtrade.market.feeds.lobster import lobster_files, lobster_instrument, read_lobster

    files = lobster_files(path, require_orderbook=False)
    if files.orderbook is None:
        warnings.warn(MessagesOnly(f"{path.name}: no orderbook file next to it; reading the messages alone "
                                   "(the book starts empty; orders resting before the file are unknown)"),
                      stacklevel=3)  # fmt: skip
        return _lobster_messages(path, instrument, symbol, grid)
    orderbook = files.orderbook
    inst = instrument or (grid or GridOverride()).apply(lobster_instrument(files.symbol))
    return Feed(
        files.message, "lobster", "L3", inst, files.levels,
        lambda: read_lobster(files.message, orderbook, instrument=inst),
        _source(instrument, grid, "the LOBSTER default"),
    )  # fmt: skip


class MessagesOnly(UserWarning):
    """A LOBSTER message file is read without its orderbook file (:class:`LobsterMessages`)."""


def _lobster_messages(
    path: Path, instrument: Instrument | None, symbol: str | None, grid: GridOverride | None = None
) -> Feed:
    """A LOBSTER message file alone; ``feed.events()`` is the reader, whose ``stats`` and
    ``unknown_refs`` describe the last iteration."""
    from vtrade.market.feeds.lobster import LobsterMessages

    source = _source(instrument, grid, "the LOBSTER default")
    if instrument is None and grid:
        instrument = grid.apply(LobsterMessages(path).instrument)
    reader = LobsterMessages(path, instrument=instrument)
    return Feed(reader.files.message, "lobster-messages", "L3", reader.instrument, None, lambda: reader, source)


def _source(instrument: Instrument | None, grid: GridOverride | None, default: str) -> str:
    if instrument is not None:
        return "given"
    return grid.source(default) if grid else default


def _lean_csv(name: str, kind: BookKind, reader: Callable[..., Any], header: tuple[str, ...]) -> Opener:
    """An opener for the Lean-style CSV readers, which all select rows with ``tickers=``."""

    def open_(path: Path, instrument: Instrument | None, symbol: str | None, grid: GridOverride | None = None) -> Feed:
        from vtrade.core.instruments import us_equity

        tickers = symbol or (instrument.symbol if instrument else None)
        first = tickers or _first_ticker(path, header)
        spec: Instrument | Mapping[str, Instrument] | None = instrument
        if instrument is None and grid:
            spec = _Regrid(us_equity, grid)  # every ticker of the file on the given grid

        def events() -> Iterable[MarketEvent]:
            return reader(path, tickers=tickers, instruments=spec)

        probe = reader(path, tickers=first, instruments=spec)
        source = _source(instrument, grid, "the US-equity default")
        return Feed(path, name, kind, probe.instrument(first), None, events, source)

    return open_


def _daily(path: Path, instrument: Instrument | None, symbol: str | None, grid: GridOverride | None = None) -> Feed:
    from vtrade.market.feeds.daily import DAILY_COLUMNS, daily_instrument, read_daily

    tickers = symbol or (instrument.symbol if instrument else None)
    inst = instrument or (grid or GridOverride()).apply(daily_instrument(tickers or _first_ticker(path, DAILY_COLUMNS)))

    def events() -> Iterable[MarketEvent]:
        bars = read_daily(path, tickers=tickers, grid=inst.price_grid).bars()
        return bars if inst.lot_size == 1 else _in_lots(path, bars, inst.lot_size)

    return Feed(path, "daily", "bars", inst, None, events,
                _source(instrument, grid, "the daily-bars default"))  # fmt: skip


def _in_lots(path: Path, bars: Iterable[Bar], lot: Decimal) -> Iterator[Bar]:
    """Daily volumes are whole shares; on another lot size a bar's volume is counted in lots."""
    import msgspec

    for b in bars:
        lots = Decimal(b.volume) / lot
        if lots != lots.to_integral_value():
            raise DataError(path, None, f"{b.symbol} volume {b.volume} at {b.ts} is not a whole number of {lot} lots")
        yield msgspec.structs.replace(b, volume=int(lots))


def _first_ticker(path: Path, header: tuple[str, ...]) -> str:
    lines = numbered_lines(path)
    next(lines, None)
    row = next(lines, None)
    if row is None:
        raise UnknownFormatError(path, None, "no data rows")
    cells = row[1].split(",")
    if len(cells) != len(header):
        raise DataError(path, row[0], f"expected {len(header)} columns, got {len(cells)}")
    ticker = cells[header.index("ticker")]
    if not ticker or ticker != ticker.strip():  # what the readers refuse too, said before an Instrument is built
        raise DataError(path, row[0], f"bad ticker {ticker!r}")
    return ticker


Opener = Callable[..., Feed]  # (path, instrument, symbol, grid=None) -> Feed
Sniffer = Callable[[Path, str], bool]


def _header_is(columns: tuple[str, ...]) -> Sniffer:
    return lambda path, line: tuple(line.split(",")) == columns


def _lean_formats() -> dict[str, tuple[Opener, Sniffer]]:
    from vtrade.market.feeds.daily import DAILY_COLUMNS
    from vtrade.market.feeds.lean import QUOTE_BAR_COLUMNS, TRADE_BAR_COLUMNS, LeanQuoteBars, LeanTradeBars
    from vtrade.market.feeds.taq import QUOTE_COLUMNS, TRADE_COLUMNS, TaqNbbo, TaqTrades

    def quote_bars(path: Path, **kw: Any) -> LeanQuoteBars:
        return LeanQuoteBars(path, quotes=True, **kw)

    return {
        "lean-trade-bars": (_lean_csv("lean-trade-bars", "bars", LeanTradeBars, TRADE_BAR_COLUMNS),
                            _header_is(TRADE_BAR_COLUMNS)),
        "lean-quote-bars": (_lean_csv("lean-quote-bars", "L1", quote_bars, QUOTE_BAR_COLUMNS),
                            _header_is(QUOTE_BAR_COLUMNS)),
        "taq-quotes": (_lean_csv("taq-quotes", "L1", TaqNbbo, QUOTE_COLUMNS), _header_is(QUOTE_COLUMNS)),
        "taq-trades": (_lean_csv("taq-trades", "trades", TaqTrades, TRADE_COLUMNS), _header_is(TRADE_COLUMNS)),
        "daily": (_daily, _header_is(DAILY_COLUMNS)),
    }  # fmt: skip


# name -> (opener, sniffer(path, first line)); the first sniffer that says yes wins.
_FORMATS: dict[str, tuple[Opener, Sniffer]] = {
    "binance": (_binance, lambda p, line: looks_like_binance(line)),
    "lobster": (_lobster, lambda p, line: "_message_" in p.name and line[:1].isdigit()),
    "lobster-messages": (_lobster_messages, lambda p, line: False),  # chosen by name, or by "lobster" without a book
    **_lean_formats(),
}


def register_format(name: str, opener: Opener, sniffer: Sniffer) -> None:
    """Teach :func:`open_feed` a new format.

    ``opener(path, instrument, symbol)`` returns the :class:`Feed`; to honour ``tick_size=``
    and friends it also takes ``grid`` (a :class:`GridOverride`), passed only when one is given.
    """
    _FORMATS[name] = (opener, sniffer)


def formats() -> list[str]:
    """Names :func:`open_feed` accepts as ``format``."""
    return sorted(_FORMATS)


# Tables that travel with market data but are not feeds: header -> (what the file is, the
# parameter that takes it, if any). Opening one as a feed says so instead of "unrecognised".
_REFERENCE_TABLES: dict[tuple[str, ...], tuple[str, Fix | None]] = {
    ("ticker", "date", "price_factor", "split_factor", "reference_price"):
        ("a Lean factor file (the splits and dividends that adjust raw prices)", Fix("corporate_actions")),
    ("flag", "ticker", "date", "open", "high", "low", "close", "volume", "prev_close", "ret"):
        ("the daily universe's list of flagged rows (a data-quality table the daily reader applies itself)", None),
    ("ticker", "name", "gics_sector_2018", "gics_sector_now", "gics_sub_industry_now", "first_date", "last_date",
     "rows", "status"):
        ("the daily universe's metadata (names, GICS sectors, date ranges)", None),
    ("Symbol", "Name", "Sector"): ("an index constituents list (symbols, names, sectors)", None),
}  # fmt: skip


def detect_format(path: str | Path) -> str:
    """The format of ``path`` judged from its name and first line; UnknownFormatError if none fits.

    >>> detect_format("data/equities_daily/lean_factor_files.csv")
    Traceback (most recent call last):
    ...
    vtrade.core.errors.UnknownFormatError: data/equities_daily/lean_factor_files.csv: a Lean factor file \
(the splits and dividends that adjust raw prices), not a market feed; pass corporate_actions=
    """
    p = Path(path)
    line = first_line(p)
    for name, (_, sniff) in _FORMATS.items():
        if sniff(p, line):
            return name
    table = _REFERENCE_TABLES.get(tuple(c.strip() for c in line.lstrip("\ufeff").split(",")))
    if table is not None:
        what, fix = table
        raise UnknownFormatError(p, None, f"{what}, not a market feed", fix=fix)
    raise UnknownFormatError(p, 1, f"unrecognised format (known: {', '.join(formats())})", fix=Fix("format"))


def open_feed(
    path: str | Path,
    format: str = "auto",
    *,
    instrument: Instrument | None = None,
    symbol: str | None = None,
    tick_size: Number | None = None,
    lot_size: Number | None = None,
    contract_size: Number | None = None,
) -> Feed:
    """Open a recorded feed. ``format="auto"`` detects it; UnknownFormatError for unknown names.

    ``symbol`` picks one ticker from a multi-ticker file (Lean bars, TAQ, daily universe).
    ``tick_size``/``lot_size``/``contract_size`` replace the format's default grid (for a
    Binance capture: the built-in or inferred one, see
    :func:`~vtrade.market.feeds.binance.infer_instrument`); ``instrument`` replaces all of it.
    A price or size off the grid in use is a DataError naming the file and line.

    >>> feed = open_feed("data/intraday/lean_minute_trade_bars.csv.gz", symbol="SPY", tick_size="0.0001")
    >>> str(feed.instrument.tick_size), feed.grid_source
    ('0.0001', 'tick given, lot the US-equity default')
    """
    p = Path(path)
    check_source(p)  # a missing, empty, archived or binary file fails here, whatever the format
    grid = GridOverride(tick_size, lot_size, contract_size)
    if instrument is not None and grid:
        raise ValueError("pass either instrument= or tick_size=/lot_size=/contract_size=, not both")
    name = detect_format(p) if format == "auto" else format
    if name not in _FORMATS:
        raise UnknownFormatError(p, None, f"unknown format {name!r} (known: auto, {', '.join(formats())})")
    opener = _FORMATS[name][0]
    return opener(p, instrument, symbol, grid) if grid else opener(p, instrument, symbol)
