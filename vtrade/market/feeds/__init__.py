"""Feeds: streaming readers that turn recorded files into timestamped market events.

:func:`open_feed` recognises a file's format (or takes one by name) and returns a
:class:`Feed`: an iterable of events that also says which kind of book its events build.

>>> feed = open_feed("data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz")
>>> feed.format, feed.book_kind, feed.instrument.symbol
('binance', 'L2', 'BTCUSDT')
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vtrade.core.errors import DataError, Fix, UnknownFormatError
from vtrade.core.events import MarketEvent
from vtrade.core.instruments import Instrument
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
    row's, and events of other tickers follow).
    """

    path: Path
    format: str
    book_kind: BookKind
    instrument: Instrument | None
    window: int | None
    events: Callable[[], Iterable[MarketEvent]]

    def __iter__(self) -> Iterator[MarketEvent]:
        return iter(self.events())


def _binance(path: Path, instrument: Instrument | None, symbol: str | None) -> Feed:
    from vtrade.market.feeds.binance import BinanceFeed

    inst = BinanceFeed(path, instrument=instrument).resolve_instrument()
    return Feed(path, "binance", "L2", inst, None, lambda: BinanceFeed(path, instrument=inst))


def _lobster(path: Path, instrument: Instrument | None, symbol: str | None) -> Feed:
    from vtrade.market.feeds.lobster import lobster_files, lobster_instrument, read_lobster

    files = lobster_files(path)
    inst = instrument or lobster_instrument(files.symbol)
    return Feed(
        files.message, "lobster", "L3", inst, files.levels,
        lambda: read_lobster(files.message, files.orderbook, instrument=inst),
    )  # fmt: skip


def _lean_csv(name: str, kind: BookKind, reader: Callable[..., Any], header: tuple[str, ...]) -> Opener:
    """An opener for the Lean-style CSV readers, which all select rows with ``tickers=``."""

    def open_(path: Path, instrument: Instrument | None, symbol: str | None) -> Feed:
        tickers = symbol or (instrument.symbol if instrument else None)
        first = tickers or _first_ticker(path, header)

        def events() -> Iterable[MarketEvent]:
            return reader(path, tickers=tickers, instruments=instrument)  # type: ignore[no-any-return]

        probe = reader(path, tickers=first, instruments=instrument)
        return Feed(path, name, kind, probe.instrument(first), None, events)

    return open_


def _daily(path: Path, instrument: Instrument | None, symbol: str | None) -> Feed:
    from vtrade.market.feeds.daily import DAILY_COLUMNS, daily_instrument, read_daily

    tickers = symbol or (instrument.symbol if instrument else None)
    inst = instrument or daily_instrument(tickers or _first_ticker(path, DAILY_COLUMNS))
    return Feed(
        path, "daily", "bars", inst, None,
        lambda: read_daily(path, tickers=tickers, grid=inst.price_grid).bars(),
    )  # fmt: skip


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


Opener = Callable[[Path, Instrument | None, str | None], Feed]
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
    **_lean_formats(),
}


def register_format(name: str, opener: Opener, sniffer: Sniffer) -> None:
    """Teach :func:`open_feed` a new format."""
    _FORMATS[name] = (opener, sniffer)


def formats() -> list[str]:
    """Names :func:`open_feed` accepts as ``format``."""
    return sorted(_FORMATS)


def detect_format(path: str | Path) -> str:
    """The format of ``path`` judged from its name and first line; UnknownFormatError if none fits."""
    p = Path(path)
    line = first_line(p)
    for name, (_, sniff) in _FORMATS.items():
        if sniff(p, line):
            return name
    raise UnknownFormatError(p, 1, f"unrecognised format (known: {', '.join(formats())})", fix=Fix("format"))


def open_feed(
    path: str | Path, format: str = "auto", *, instrument: Instrument | None = None, symbol: str | None = None
) -> Feed:
    """Open a recorded feed. ``format="auto"`` detects it; UnknownFormatError for unknown names.

    ``symbol`` picks one ticker from a multi-ticker file (Lean bars, TAQ, daily universe).
    """
    p = Path(path)
    check_source(p)  # a missing, empty, archived or binary file fails here, whatever the format
    name = detect_format(p) if format == "auto" else format
    if name not in _FORMATS:
        raise UnknownFormatError(p, None, f"unknown format {name!r} (known: auto, {', '.join(formats())})")
    return _FORMATS[name][0](p, instrument, symbol)
