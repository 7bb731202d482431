"""The reconstructed book, level by level, after every applied update: for analysts.

Rows are ``ts`` (event time, UTC), ``seq`` (the source's sequence id: Binance ``u``, the
LOBSTER message number) and ``bid_px_1, bid_sz_1, ask_px_1, ask_sz_1, …`` as exact decimals
(Arrow ``decimal128``; null where a level is empty). Exactness matters: ``61800.3`` stays
``61800.3``, not ``61800.300000000003``.

>>> df = read_book("data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz", levels=2)
>>> list(df.columns)
['ts', 'seq', 'bid_px_1', 'bid_sz_1', 'ask_px_1', 'ask_sz_1', 'bid_px_2', 'bid_sz_2', 'ask_px_2', 'ask_sz_2']
>>> str(df.ask_px_1.iloc[0] - df.bid_px_1.iloc[0])
'0.1'
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from vtrade.core.errors import DataError
from vtrade.core.events import BookDelta, BookSnapshot, Event, Quote
from vtrade.core.instruments import Instrument
from vtrade.core.numbers import Grid
from vtrade.market.feeds import Feed, open_feed
from vtrade.market.l2book import L2Book, UpdateBatch, quote_snapshot
from vtrade.market.l3book import L3Book

_CHUNK_EVENTS = 16384
# 18 digits hold any tick count we meet and leave room for arithmetic (a difference of two
# decimal128(38) columns would need 39 and fails).
_PRECISION = 18
#: More levels than any venue publishes (Binance's deepest snapshot has 5000 a side); a bound
#: keeps a mistyped count from building a schema of billions of columns.
MAX_LEVELS = 5000


def check_levels(levels: int) -> None:
    """ValueError unless ``levels`` is a level count a book export can have (1..MAX_LEVELS)."""
    if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= MAX_LEVELS:
        raise ValueError(f"levels must be a whole number from 1 to {MAX_LEVELS}, got {levels!r}")


def book_schema(instrument: Instrument, levels: int) -> pa.Schema:
    """Column names and types of a book export with ``levels`` levels per side."""
    check_levels(levels)
    px, sz = _decimal_type(instrument.price_grid), _decimal_type(instrument.size_grid)
    fields = [pa.field("ts", pa.timestamp("ns", tz="UTC")), pa.field("seq", pa.int64())]
    for k in range(1, levels + 1):
        fields += [
            pa.field(f"bid_px_{k}", px), pa.field(f"bid_sz_{k}", sz),
            pa.field(f"ask_px_{k}", px), pa.field(f"ask_sz_{k}", sz),
        ]  # fmt: skip
    return pa.schema(fields)


def book_batches(feed: Feed, levels: int) -> Iterator[pa.RecordBatch]:
    """Stream the book after every applied update of ``feed`` as Arrow record batches."""
    check_levels(levels)
    if feed.instrument is None:
        raise ValueError(f"{feed.path}: the feed has no instrument, so prices have no grid")
    if feed.book_kind not in ("L1", "L2", "L3"):
        what = f"{feed.format} holds {feed.book_kind}, not quotes or depth"
        raise DataError(feed.path, None, f"{what}: there is no book to rebuild")
    schema = book_schema(feed.instrument, levels)
    tops = _l3_tops(feed, levels) if feed.book_kind == "L3" else _l2_tops(feed, levels)
    for ts, seq, top in tops:
        yield _record_batch(schema, feed.instrument, ts, seq, top)


def read_book(
    path: str | Path,
    format: str = "auto",
    levels: int = 10,
    *,
    instrument: Instrument | None = None,
    symbol: str | None = None,
) -> pd.DataFrame:
    """The reconstructed top-``levels`` book of a recorded feed as a DataFrame (see module doc).

    ``symbol`` picks one ticker of a multi-ticker file (Lean quote bars, TAQ quotes).
    """
    feed = open_feed(path, format, instrument=instrument, symbol=symbol)
    batches = list(book_batches(feed, levels))
    schema = book_schema(feed.instrument, levels) if feed.instrument else None
    table = pa.Table.from_batches(batches, schema=schema)
    return table.to_pandas(types_mapper=pd.ArrowDtype)


# ------------------------------------------------------------------------- internals
_Tops = Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]  # ts, seq, top[event, 4, levels]


def _l2_tops(feed: Feed, levels: int) -> _Tops:
    symbol = feed.instrument.symbol if feed.instrument else ""
    # An L1 source is a consolidated quote that can lock or cross across venues (IBM's NBBO
    # crosses pre-market on 2013-10-07); a venue's own depth never can.
    book = L2Book(symbol, crossing="crossed" if feed.book_kind == "L1" else "reject")
    pending: list[Event] = []

    def flush() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        batch = UpdateBatch.from_events(pending)
        pending.clear()
        return batch.ts, batch.seq, book.apply_batch(batch, record_depth=levels)

    for ev in feed:
        if feed.book_kind == "L1" and isinstance(ev, Quote):
            ev = quote_snapshot(ev)
        if isinstance(ev, BookSnapshot | BookDelta):
            if ev.symbol != symbol:
                what = f"the file holds several tickers ({symbol}, {ev.symbol}, …)"
                raise DataError(feed.path, None, f"{what}: choose one with symbol= (--symbol)")
            pending.append(ev)
            if len(pending) >= _CHUNK_EVENTS:
                yield flush()
    if pending:
        yield flush()


def _l3_tops(feed: Feed, levels: int) -> _Tops:
    # A depth-limited L3 source (LOBSTER) sends a message and then, under the same seq, the
    # levels that entered its window; the row is the book after both, cut to the window.
    book = L3Book(feed.instrument.symbol if feed.instrument else "")
    window = feed.window
    ts_l: list[int] = []
    seq_l: list[int] = []
    rows: list[np.ndarray] = []

    def close_row(ts: int, seq: int) -> None:
        if window is not None:
            book.truncate(window)
        row = np.zeros((4, levels), dtype=np.int64)
        for i, arr in enumerate(book.top(levels)):
            row[i, : len(arr)] = arr
        ts_l.append(ts)
        seq_l.append(seq)
        rows.append(row)

    group: tuple[int, int] | None = None  # (ts, seq) of the message being applied
    changed = False
    for ev in feed:
        seq = ev.seq
        if group is not None and seq != group[1]:
            if changed:
                close_row(*group)
            if len(rows) >= _CHUNK_EVENTS:
                yield np.array(ts_l), np.array(seq_l), np.stack(rows)
                ts_l.clear()
                seq_l.clear()
                rows.clear()
            changed = False
        group = (ev.ts, seq)
        changed = book.apply(ev) or changed
    if group is not None and changed:
        close_row(*group)
    if rows:
        yield np.array(ts_l), np.array(seq_l), np.stack(rows)


def _record_batch(
    schema: pa.Schema, inst: Instrument, ts: np.ndarray, seq: np.ndarray, top: np.ndarray
) -> pa.RecordBatch:
    cols: list[pa.Array] = [pa.array(ts, type=pa.timestamp("ns", tz="UTC")), pa.array(seq, type=pa.int64())]
    levels = top.shape[2]
    for k in range(levels):
        bid_ok, ask_ok = top[:, 1, k] > 0, top[:, 3, k] > 0
        cols += [
            _decimals(top[:, 0, k], bid_ok, inst.price_grid), _decimals(top[:, 1, k], bid_ok, inst.size_grid),
            _decimals(top[:, 2, k], ask_ok, inst.price_grid), _decimals(top[:, 3, k], ask_ok, inst.size_grid),
        ]  # fmt: skip
    return pa.RecordBatch.from_arrays(cols, schema=schema)


def _decimal_type(grid: Grid) -> pa.Decimal128Type:
    return pa.decimal128(_PRECISION, grid.decimal_scale()[1])


def _decimals(counts: np.ndarray, valid: np.ndarray, grid: Grid) -> pa.Array:
    """Integer counts of ``grid`` increments as an exact decimal128 array, built without Python objects."""
    mult, scale = grid.decimal_scale()
    unscaled = counts.astype(np.int64) * mult
    words = np.empty((len(unscaled), 2), dtype="<i8")  # decimal128 = little-endian 128-bit two's complement
    words[:, 0] = unscaled
    words[:, 1] = np.where(unscaled < 0, -1, 0)
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        pa.decimal128(_PRECISION, scale), len(unscaled), [bitmap, pa.py_buffer(words)], null_count=int((~valid).sum())
    )
