"""TAQ-style ticks (Lean / AlgoSeek): NBBO :class:`Quote` events from quote ticks, and trades.

``data/taq/lean_tick_quotes_IBM_BAC.csv.gz`` has one row per side update::

    ticker,date,time_et,ms_since_midnight,bid_price,bid_size,ask_price,ask_size,exchange,quote_condition,suspicious

Each row carries ONE side (the other is written ``0,0``, meaning "no change") and the exchange
letter. How rows combine into the NBBO is the ``method`` of :class:`TaqNbbo`:

``"latest"`` (default) — each row IS the new national best bid (or offer), tagged with the
    exchange holding it; the NBBO is the latest bid row and the latest ask row. This is what
    the file contains: one update arrives as a bid row and an ask row with the same timestamp
    (often from different exchanges), and the result reproduces Lean's own minute quote bars
    (``data/intraday/lean_minute_quote_bars.csv.gz``) exactly — bid, ask and both sizes at
    every minute close of IBM 2013-10-07/08 and BAC 2013-10-07 — and is locked at most 0.03 %
    and crossed at most 0.001 % of regular-session time. NBBO size = the size on that row.
``"per_exchange"`` — each row updates that exchange's OWN best bid (or offer); the reader keeps
    every exchange's latest quote (reset each trading day) and aggregates: the NBBO price is the
    best across exchanges and its size is the size at that price SUMMED over the exchanges
    quoting it (what a taker could sweep there). A price with size 0 withdraws that exchange's
    side. This is right for per-venue BBO feeds that publish withdrawals; on this file (no
    withdrawal rows, so superseded venue quotes never leave) it yields mostly crossed books.

Rows sharing a timestamp are applied together and give at most one Quote (the file splits a
single NBBO update into two rows; the half-updated state in between never existed). A side
with no quote has price 0 and size 0. Locked (bid == ask) and crossed (bid > ask) NBBOs occur
in real data: they are emitted as they are and counted in :attr:`TaqNbbo.stats`, never raised.
Rows the vendor flagged ``suspicious=1`` are skipped unless ``keep_suspicious=True``.

Times, grids, filters and errors follow :mod:`vtrade.market.feeds.lean` (block-wise streaming,
exact integer ticks, ``file:line`` in every :class:`DataError`).

>>> from vtrade.market.feeds.lean import DATA_DIR
>>> nbbo = TaqNbbo(DATA_DIR / "taq/lean_tick_quotes_IBM_BAC.csv.gz", tickers="IBM", end="2013-10-07")
>>> q = next(iter(nbbo))
>>> q.symbol, q.bid_px, q.bid_sz, q.ask_px, q.ask_sz
('IBM', 0, 0, 18363, 100)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Unpack

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from vtrade.core.errors import DataError
from vtrade.core.events import Quote, Trade
from vtrade.market.feeds.lean import (
    Chunk,
    LeanCsvReader,
    ReaderOptions,
    concat_frame,
    empty_mask,
    int_column,
    to_float,
)

QUOTE_COLUMNS = (
    "ticker", "date", "time_et", "ms_since_midnight", "bid_price", "bid_size", "ask_price", "ask_size",
    "exchange", "quote_condition", "suspicious",
)  # fmt: skip
TRADE_COLUMNS = (
    "ticker", "date", "time_et", "ms_since_midnight", "price", "size", "exchange", "sale_condition", "suspicious",
)  # fmt: skip

# Lean's exchange letters (PROVENANCE.md); unknown letters are kept as they are.
EXCHANGES: dict[str, str] = {
    "D": "FINRA TRF", "N": "NYSE", "Q": "NASDAQ", "P": "NYSE Arca", "K": "EDGX", "J": "EDGA",
    "Z": "BATS BZX", "Y": "BATS BYX", "B": "NASDAQ BX", "X": "NASDAQ PSX", "C": "NSX", "W": "CBOE",
    "M": "Chicago", "A": "NYSE MKT", "I": "ISE", "V": "IEX",
}  # fmt: skip

_NO_ASK = 1 << 62  # sentinel: "no offer" compares worse than every real ask


@dataclass(slots=True)
class NbboStats:
    """Counters of one pass of :class:`TaqNbbo` (totals, or one symbol's share)."""

    rows: int = 0  # quote rows of the selected tickers and dates
    skipped_suspicious: int = 0  # rows flagged suspicious=1 and skipped
    quotes: int = 0  # NBBO changes emitted
    locked: int = 0  # emitted NBBOs with bid == ask
    crossed: int = 0  # emitted NBBOs with bid > ask
    exchanges: set[str] = field(default_factory=set)  # exchange letters seen

    def add(self, other: NbboStats) -> None:
        for f in fields(self):
            if f.name == "exchanges":
                self.exchanges |= other.exchanges
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


class TaqOptions(ReaderOptions, total=False):
    """The keyword options of the TAQ readers: :class:`~vtrade.market.feeds.lean.ReaderOptions`
    and ``keep_suspicious``."""

    keep_suspicious: bool


class _TaqReader(LeanCsvReader):
    strictly_increasing = False  # several ticks share a millisecond

    def __init__(self, path: str | Path, *, keep_suspicious: bool = False, **options: Unpack[ReaderOptions]) -> None:
        super().__init__(path, **options)
        self.keep_suspicious = keep_suspicious

    def _suspicious(self, chunk: Chunk) -> np.ndarray:
        flag = int_column(chunk.block.columns["suspicious"], path=self.path, lines=chunk.block.lines,
                          column="suspicious")
        if (flag > 1).any():
            i = int(np.argmax(flag > 1))
            raise DataError(self.path, int(chunk.block.lines[i]), f"suspicious must be 0 or 1, got {int(flag[i])}")
        return flag.astype(np.bool_)

    def _drop_suspicious(self, chunk: Chunk) -> tuple[Chunk, np.ndarray]:
        """``chunk`` without its rows flagged suspicious (all kept with ``keep_suspicious``), and
        the flags of the rows kept."""
        flagged = self._suspicious(chunk)
        if self.keep_suspicious or not flagged.any():
            return chunk, flagged
        keep = ~flagged
        return chunk.take(keep), flagged[keep]

    def _exchange(self, chunk: Chunk) -> pa.Array:
        ex = chunk.block.columns["exchange"]
        empty = empty_mask(ex)
        if empty.any():
            raise DataError(self.path, int(chunk.block.lines[int(np.argmax(empty))]), "empty exchange code")
        return ex


class TaqNbbo(_TaqReader):
    """NBBO :class:`Quote` events from quote ticks, streamed (see the module notes on ``method``).

    ``stats`` (totals) and ``stats_by_symbol`` are filled as the stream is consumed; they
    describe the latest pass.

    >>> from vtrade.market.feeds.lean import DATA_DIR
    >>> nbbo = TaqNbbo(DATA_DIR / "taq/lean_tick_quotes_IBM_BAC.csv.gz", tickers="IBM", end="2013-10-07")
    >>> quotes = list(nbbo)
    >>> nbbo.stats.quotes == len(quotes), nbbo.stats.crossed >= 0
    (True, True)
    """

    columns = QUOTE_COLUMNS

    def __init__(
        self, path: str | Path, *, method: Literal["latest", "per_exchange"] = "latest", **options: Unpack[TaqOptions]
    ) -> None:
        super().__init__(path, **options)
        if method not in ("latest", "per_exchange"):
            raise ValueError(f"method must be 'latest' or 'per_exchange', got {method!r}")
        self.method = method
        self.stats = NbboStats()
        self.stats_by_symbol: dict[str, NbboStats] = {}

    def __iter__(self) -> Iterator[Quote]:
        self.stats = NbboStats()
        self.stats_by_symbol = {}
        books: dict[str, _Consolidator] = {}
        current: _Consolidator | None = None
        for chunk in self._chunks():
            st = self.stats_by_symbol.setdefault(chunk.symbol, NbboStats())
            st.rows += len(chunk.ts)
            kept, _ = self._drop_suspicious(chunk)
            st.skipped_suspicious += len(chunk.ts) - len(kept.ts)
            chunk = kept
            if not len(chunk.ts):
                continue
            book = books.get(chunk.symbol)
            if book is None:
                book = books[chunk.symbol] = _Consolidator(chunk.symbol, st)
            if current is not None and current is not book:
                yield from current.flush()  # files are ticker-major: the previous ticker is done
            current = book
            yield from self._consolidate(chunk, book, st)
        if current is not None:
            yield from current.flush()
        for st in self.stats_by_symbol.values():
            self.stats.add(st)

    def _consolidate(self, chunk: Chunk, book: _Consolidator, st: NbboStats) -> Iterator[Quote]:
        bp, ap = self._prices(chunk, ("bid_price", "ask_price"))
        bs, az = self._sizes(chunk, "bid_size"), self._sizes(chunk, "ask_size")
        lines = chunk.block.lines
        bad = ((bp == 0) & (bs > 0)) | ((ap == 0) & (az > 0))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(self.path, int(lines[i]), "a size is quoted at price 0")
        none = (bp == 0) & (bs == 0) & (ap == 0) & (az == 0)
        if none.any():
            raise DataError(self.path, int(lines[int(np.argmax(none))]), "the row updates neither side")
        encoded = pc.dictionary_encode(self._exchange(chunk))
        letters = encoded.dictionary.to_pylist()
        st.exchanges.update(letters)
        # A new trading day starts from an empty book: mark the first row of each day.
        day = np.array([chunk.days[d].toordinal() for d in range(len(chunk.days))], dtype=np.int64)[chunk.day]
        ex: list[int] | None = None  # "latest" needs no exchange state
        if self.method == "per_exchange":
            slot = np.array([book.slot(x) for x in letters], dtype=np.int64)
            ex = slot[encoded.indices.to_numpy(zero_copy_only=False)].tolist()
        yield from book.apply(chunk.ts.tolist(), day.tolist(), ex, bp.tolist(), bs.tolist(), ap.tolist(), az.tolist())

    def to_frame(self) -> pd.DataFrame:
        """The emitted NBBO changes as a DataFrame: ``symbol, ts, time, bid, bid_size, ask, ask_size``
        (prices float64; a missing side is NaN)."""
        rows: dict[str, list[Any]] = {k: [] for k in ("symbol", "ts", "bid", "bid_size", "ask", "ask_size")}
        grids: dict[str, Any] = {}
        for q in self:
            grids.setdefault(q.symbol, self.instrument(q.symbol).price_grid)
            rows["symbol"].append(q.symbol)
            rows["ts"].append(q.ts)
            rows["bid"].append(q.bid_px)
            rows["bid_size"].append(q.bid_sz)
            rows["ask"].append(q.ask_px)
            rows["ask_size"].append(q.ask_sz)
        sym = np.array(rows["symbol"], dtype=object)
        part: dict[str, Any] = {"symbol": sym, "ts": np.array(rows["ts"], dtype=np.int64)}
        for side in ("bid", "ask"):
            ticks = np.array(rows[side], dtype=np.int64)
            px = np.full(len(ticks), np.nan)
            for s, grid in grids.items():
                m = sym == s
                px[m] = to_float(ticks[m], grid)
            px[ticks == 0] = np.nan
            part[side] = px
            part[f"{side}_size"] = np.array(rows[f"{side}_size"], dtype=np.int64)
        return concat_frame([part], ["symbol", "ts", "bid", "bid_size", "ask", "ask_size"])


class _Consolidator:
    """NBBO state of one symbol: the consolidated top, per-exchange quotes (``per_exchange``),
    and the not-yet-emitted state of the current timestamp.

    Rows sharing a timestamp are applied together and produce at most one :class:`Quote`:
    the file splits one NBBO update into a bid row and an ask row, and emitting in between
    would show a half-updated (often spuriously locked) quote that never existed.
    """

    def __init__(self, symbol: str, stats: NbboStats) -> None:
        self.symbol = symbol
        self.stats = stats
        self.slots: dict[str, int] = {}
        self.bid_px: list[int] = []
        self.bid_sz: list[int] = []
        self.ask_px: list[int] = []
        self.ask_sz: list[int] = []
        self.bb = self.bbs = self.bas = 0
        self.ba = _NO_ASK
        self.day = -1
        self.ts = -1
        self.last: tuple[int, int, int, int] = (0, 0, 0, 0)

    def slot(self, letter: str) -> int:
        i = self.slots.get(letter)
        if i is None:
            i = self.slots[letter] = len(self.slots)
            self.bid_px.append(0)
            self.bid_sz.append(0)
            self.ask_px.append(_NO_ASK)
            self.ask_sz.append(0)
        return i

    def _new_day(self, day: int) -> None:
        n = len(self.slots)
        self.bid_px[:] = [0] * n
        self.bid_sz[:] = [0] * n
        self.ask_px[:] = [_NO_ASK] * n
        self.ask_sz[:] = [0] * n
        self.bb = self.bbs = self.bas = 0
        self.ba = _NO_ASK
        self.last = (0, 0, 0, 0)
        self.day = day

    def flush(self) -> Iterator[Quote]:
        """The quote of the pending timestamp, if the NBBO changed since the last one emitted."""
        ask = self.ba if self.ba != _NO_ASK else 0
        now = (self.bb, self.bbs, ask, self.bas)
        if self.ts < 0 or now == self.last:
            return
        self.last = now
        st = self.stats
        st.quotes += 1
        if self.bb and ask:
            if self.bb == ask:
                st.locked += 1
            elif self.bb > ask:
                st.crossed += 1
        yield Quote(self.ts, self.ts, self.symbol, 0, self.bb, self.bbs, ask, self.bas)

    def apply(
        self, ts: list[int], day: list[int], ex: list[int] | None, bp: list[int], bs: list[int], ap: list[int],
        az: list[int],
    ) -> Iterator[Quote]:
        """Apply quote rows, emitting the NBBO of each finished timestamp.

        With ``ex`` (each row's exchange slot, method ``per_exchange``) a row updates that
        exchange's own best bid (or offer) and the NBBO aggregates them; without (``latest``)
        a row states the new national best bid (or offer) on its side.
        """
        per_exchange = ex is not None
        # Per-exchange state lives in plain lists: for ~15 venues a Python max() beats numpy.
        bpx, bsz, apx, asz = self.bid_px, self.bid_sz, self.ask_px, self.ask_sz
        bb, bbs, ba, bas = self.bb, self.bbs, self.ba, self.bas
        cur_ts, cur_day = self.ts, self.day
        no_ask = _NO_ASK
        slots = ex if ex is not None else itertools.repeat(0, len(ts))
        for t, d, e, p, s, q, z in zip(ts, day, slots, bp, bs, ap, az, strict=True):
            if t != cur_ts or d != cur_day:
                self.bb, self.bbs, self.ba, self.bas = bb, bbs, ba, bas
                yield from self.flush()
                if d != cur_day:
                    self._new_day(d)
                    bb = bbs = bas = 0
                    ba = no_ask
                    cur_day = d
                self.ts = cur_ts = t
            if p or s:
                if not per_exchange:
                    bb, bbs = (p, s) if s else (0, 0)
                else:
                    if not s:
                        p = 0  # a price with size 0: the exchange withdrew its bid
                    old = bpx[e]
                    if old == bb and old:
                        bbs -= bsz[e]
                    bpx[e] = p
                    bsz[e] = s
                    if p > bb:
                        bb, bbs = p, s
                    elif p == bb and p:
                        bbs += s
                    if not bbs:  # the best level emptied: rescan the venues
                        bb = max(bpx)
                        bbs = sum(sz for px, sz in zip(bpx, bsz, strict=True) if px == bb) if bb else 0
            if q or z:
                if not per_exchange:
                    ba, bas = (q, z) if z else (no_ask, 0)
                else:
                    q = q if z else no_ask
                    old = apx[e]
                    if old == ba and old != no_ask:
                        bas -= asz[e]
                    apx[e] = q
                    asz[e] = z if q != no_ask else 0
                    if q < ba:
                        ba, bas = q, z
                    elif q == ba and q != no_ask:
                        bas += z
                    if not bas:
                        ba = min(apx)
                        bas = sum(sz for px, sz in zip(apx, asz, strict=True) if px == ba) if ba != no_ask else 0
        self.bb, self.bbs, self.ba, self.bas = bb, bbs, ba, bas


class TaqTrades(_TaqReader):
    """Trade ticks as :class:`Trade` events (aggressor unknown: ``None``), streamed in file order.

    >>> from vtrade.market.feeds.lean import DATA_DIR
    >>> t = next(iter(TaqTrades(DATA_DIR / "taq/lean_tick_trades_IBM_BAC.csv.gz", tickers="BAC")))
    >>> t.symbol, t.price, t.size
    ('BAC', 1394, 500)
    """

    columns = TRADE_COLUMNS

    def _parsed(self) -> Iterator[tuple[Chunk, np.ndarray, np.ndarray, np.ndarray]]:
        for whole in self._chunks():
            chunk, flagged = self._drop_suspicious(whole)
            if not len(chunk.ts):
                continue
            (price,) = self._prices(chunk, ("price",))
            size = self._sizes(chunk, "size")
            if (size == 0).any():
                i = int(np.argmax(size == 0))
                raise DataError(self.path, int(chunk.block.lines[i]), f"{chunk.symbol} trade of size 0")
            self._exchange(chunk)
            yield chunk, price, size, flagged

    def __iter__(self) -> Iterator[Trade]:
        for chunk, price, size, _ in self._parsed():
            symbol = chunk.symbol
            for ts, p, s in zip(chunk.ts.tolist(), price.tolist(), size.tolist(), strict=True):
                yield Trade(ts, ts, symbol, 0, p, s)

    def to_frame(self) -> pd.DataFrame:
        """Selected trades: ``symbol, ts, time, price`` (float64), ``size, exchange, sale_condition,
        suspicious``."""
        parts: list[dict[str, Any]] = []
        for chunk, price, size, flagged in self._parsed():
            cols = chunk.block.columns
            parts.append({
                "symbol": np.full(len(price), chunk.symbol, dtype=object), "ts": chunk.ts,
                "price": to_float(price, chunk.instrument.price_grid), "size": size,
                "exchange": np.asarray(cols["exchange"].to_pylist(), dtype=object),
                "sale_condition": np.asarray(cols["sale_condition"].to_pylist(), dtype=object),
                "suspicious": flagged,
            })
        return concat_frame(parts, ["symbol", "ts", "price", "size", "exchange", "sale_condition", "suspicious"])


def read_nbbo(path: str | Path, **options: Any) -> Iterator[Quote]:
    """Shorthand for ``iter(TaqNbbo(path, **options))``."""
    return iter(TaqNbbo(path, **options))


def read_trades(path: str | Path, **options: Any) -> Iterator[Trade]:
    """Shorthand for ``iter(TaqTrades(path, **options))``."""
    return iter(TaqTrades(path, **options))
