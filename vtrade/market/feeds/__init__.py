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
from typing import Literal

from vtrade.core.errors import UnknownFormatError
from vtrade.core.events import MarketEvent
from vtrade.core.instruments import Instrument
from vtrade.market.feeds._io import first_line
from vtrade.market.feeds.binance import looks_like_binance

BookKind = Literal["L1", "L2", "L3"]


@dataclass(frozen=True, slots=True)
class Feed:
    """A recorded feed: iterate it (again and again) for its events.

    ``book_kind`` says what its events build: ``"L1"`` (quotes), ``"L2"`` (price levels) or
    ``"L3"`` (orders). ``window`` is the visible depth of a depth-limited source (LOBSTER's
    level count), None when the feed is not limited.
    """

    path: Path
    format: str
    book_kind: BookKind
    instrument: Instrument | None
    window: int | None
    events: Callable[[], Iterable[MarketEvent]]

    def __iter__(self) -> Iterator[MarketEvent]:
        return iter(self.events())


def _binance(path: Path, instrument: Instrument | None) -> Feed:
    from vtrade.market.feeds.binance import BinanceFeed

    inst = BinanceFeed(path, instrument=instrument).resolve_instrument()
    return Feed(path, "binance", "L2", inst, None, lambda: BinanceFeed(path, instrument=inst))


def _lobster(path: Path, instrument: Instrument | None) -> Feed:
    from vtrade.market.feeds.lobster import lobster_files, lobster_instrument, read_lobster

    files = lobster_files(path)
    inst = instrument or lobster_instrument(files.symbol)
    return Feed(
        files.message, "lobster", "L3", inst, files.levels,
        lambda: read_lobster(files.message, files.orderbook, instrument=inst),
    )  # fmt: skip


# name -> (opener, sniffer(path, first line)); the first sniffer that says yes wins.
_FORMATS: dict[str, tuple[Callable[[Path, Instrument | None], Feed], Callable[[Path, str], bool]]] = {
    "binance": (_binance, lambda p, line: looks_like_binance(line)),
    "lobster": (_lobster, lambda p, line: "_message_" in p.name and line[:1].isdigit()),
}


def register_format(
    name: str, opener: Callable[[Path, Instrument | None], Feed], sniffer: Callable[[Path, str], bool]
) -> None:
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
    raise UnknownFormatError(p, 1, f"unrecognised format (known: {', '.join(formats())}); pass format=")


def open_feed(path: str | Path, format: str = "auto", *, instrument: Instrument | None = None) -> Feed:
    """Open a recorded feed. ``format="auto"`` detects it; UnknownFormatError for unknown names."""
    p = Path(path)
    name = detect_format(p) if format == "auto" else format
    if name not in _FORMATS:
        raise UnknownFormatError(p, None, f"unknown format {name!r} (known: auto, {', '.join(formats())})")
    return _FORMATS[name][0](p, instrument)
