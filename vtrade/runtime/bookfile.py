"""Write a reconstructed book to Parquet: streaming, with progress, and never half-written."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from tqdm import tqdm

from vtrade.core.instruments import Instrument
from vtrade.core.numbers import Number
from vtrade.market.export import book_batches, book_schema
from vtrade.market.feeds import Feed, open_feed
from vtrade.market.feeds._io import file_size, progress_sink


@dataclass(frozen=True, slots=True)
class BookExport:
    """What :func:`write_book` wrote."""

    out: Path
    rows: int
    seconds: float
    format: str
    grid: str = ""  # Feed.describe(): the instrument, its grid and where the grid came from


def write_book(
    path: str | Path | Feed,
    out: str | Path,
    *,
    format: str = "auto",
    levels: int = 10,
    instrument: Instrument | None = None,
    symbol: str | None = None,
    progress: bool = True,
    tick_size: Number | None = None,
    lot_size: Number | None = None,
    contract_size: Number | None = None,
) -> BookExport:
    """Rebuild the book of ``path`` and write its top ``levels`` after every update to ``out``.

    ``path`` may be a :class:`Feed` already opened; otherwise ``format``, ``instrument``,
    ``symbol`` and the grid keywords (``tick_size=``, ``lot_size=``, ``contract_size=``) go
    to :func:`~vtrade.market.feeds.open_feed`. The file appears only when complete: rows go
    to ``<out>.partial`` which is renamed at the end, and removed on any error, so a bad
    input (e.g. a price off a given grid) never leaves a half-written Parquet file.
    """
    started = time.perf_counter()
    if isinstance(path, Feed):
        feed = path
    else:
        feed = open_feed(path, format, instrument=instrument, symbol=symbol, tick_size=tick_size, lot_size=lot_size,
                         contract_size=contract_size)  # fmt: skip
    if feed.instrument is None:
        raise ValueError(f"{path}: the feed has no instrument")
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    sources = [feed.path] + ([_orderbook_of(feed.path)] if feed.format == "lobster" else [])
    bar = tqdm(
        total=sum(file_size(p) for p in sources), unit="B", unit_scale=True,
        desc=f"book {feed.path.name}", disable=not progress, leave=False,
    )  # fmt: skip
    token = progress_sink.set(bar.update)
    rows = 0
    try:
        with pq.ParquetWriter(partial, book_schema(feed.instrument, levels), compression="zstd") as writer:
            for batch in book_batches(feed, levels):
                writer.write_batch(batch)
                rows += batch.num_rows
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        progress_sink.reset(token)
        bar.close()
    return BookExport(out, rows, time.perf_counter() - started, feed.format, feed.describe())


def _orderbook_of(message: Path) -> Path:
    from vtrade.market.feeds.lobster import lobster_files

    book = lobster_files(message).orderbook
    assert book is not None  # lobster_files requires it (require_orderbook=True)
    return book
