"""The live Binance feed's functional core: Binance's book synchronisation as a state machine.

No I/O and no clock: the shell (:mod:`vtrade.runtime.binance_live`) hands it what arrived
(a websocket message, a REST depth snapshot, a disconnect, the time) and does what it asks
(fetch a snapshot, reconnect). Given the same inputs it gives the same outputs, so it is tested
on message sequences, and a recording of what was received replays through it exactly.

One combined stream carries, per symbol, the diff-depth, trade and bookTicker streams
(:func:`stream_names`). Each symbol's book follows Binance's documented procedure ("How to
manage a local order book correctly"), with the rules of :func:`~vtrade.market.feeds.binance.sequence_verdict`:

1. diffs that arrive while the book is not synchronised are buffered, and a REST snapshot is
   asked for (:class:`Fetch`: when the connection opens, and after a gap);
2. when it comes, buffered diffs with ``u <= lastUpdateId`` are dropped; if the first one left
   starts after ``lastUpdateId + 1`` the snapshot is too old and another is asked for;
3. the first diff applied has ``U <= lastUpdateId + 1 <= u``; then each continues the previous
   one (spot ``U == previous u + 1``, futures ``pu == previous u``); a diff already applied
   (a duplicate, a late message) is ignored.

What goes wrong is never papered over: a gap, a disconnect, a stale stream (no message for
``stale_after_ns``) or the connection's age limit (Binance closes a connection after 24 hours;
we reconnect before) stops the book's updates, emits a status event
(:class:`~vtrade.core.events.FeedGap`, :class:`~vtrade.core.events.FeedStale`), and the book is
restated from a new snapshot (:class:`~vtrade.core.events.FeedResync`). A malformed message is
counted, reported with its reason (:class:`Skipped`) and skipped.

>>> from vtrade.core.instruments import BINANCE_BTCUSDT_SPOT
>>> sync = BinanceSync("spot", [BINANCE_BTCUSDT_SPOT])
>>> sync.connected(0)  # the shell is asked for a snapshot
[Fetch(symbol='BTCUSDT', token=1)]
>>> diff = ('{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT",'
...         '"U":11,"u":12,"b":[["61800.01","1"]],"a":[]}}')
>>> sync.message(1, diff)  # buffered until it comes
[]
>>> snap = '{"lastUpdateId":10,"bids":[["61800.00","2"]],"asks":[["61801.00","3"]]}'
>>> [type(o).__name__ for o in sync.snapshot(2, "BTCUSDT", 1, snap)]
['BookSnapshot', 'BookDelta', 'FeedResync']
>>> sync.state("BTCUSDT")
'live'
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

from vtrade.core.events import FeedGap, FeedResync, FeedStale, FeedStatus, MarketEvent
from vtrade.core.instruments import Instrument
from vtrade.market.feeds.binance import MARKETS, BinanceDecoder, MessageError, binance_instrument, sequence_verdict

__all__ = [
    "ENDPOINTS",
    "BinanceSync",
    "Fetch",
    "Output",
    "Reconnect",
    "Skipped",
    "depth_path",
    "instrument_from_exchange_info",
    "replay_lines",
    "stream_names",
]

#: The public endpoints of each market: (websocket base, REST base). No key is needed.
ENDPOINTS = {
    "spot": ("wss://stream.binance.com:9443", "https://api.binance.com"),
    "usdm": ("wss://fstream.binance.com", "https://fapi.binance.com"),
    "coinm": ("wss://dstream.binance.com", "https://dapi.binance.com"),
}
_REST = {"spot": "/api/v3", "usdm": "/fapi/v1", "coinm": "/dapi/v1"}
_MS = 1_000_000
_S = 1_000_000_000
_BUFFER_MAX = 50_000  # diffs buffered for one symbol before we give up on its snapshot and start over
_decode = msgspec.json.Decoder().decode


def stream_names(symbols: Iterable[str], depth: str = "100ms") -> list[str]:
    """The combined stream's names: diff depth, trades and bookTicker of each symbol.

    >>> stream_names(["BTCUSDT"])
    ['btcusdt@depth@100ms', 'btcusdt@trade', 'btcusdt@bookTicker']
    """
    if depth not in ("100ms", "0ms", "250ms", "500ms", "1000ms"):
        raise ValueError(f"depth speed must be one of 100ms, 0ms, 250ms, 500ms, 1000ms; got {depth!r}")
    out: list[str] = []
    for s in symbols:
        name = s.lower()
        speed = "" if depth == "1000ms" else f"@{depth}"
        out += [f"{name}@depth{speed}", f"{name}@trade", f"{name}@bookTicker"]
    return out


def depth_path(market: str, symbol: str, limit: int = 1000) -> str:
    """The REST depth snapshot's path and query on ``market``.

    >>> depth_path("usdm", "BTCUSDT")
    '/fapi/v1/depth?symbol=BTCUSDT&limit=1000'
    """
    return f"{_REST[_market(market)]}/depth?symbol={symbol}&limit={limit}"


def exchange_info_path(market: str) -> str:
    """The REST path of ``exchangeInfo`` (symbols' grids) on ``market``."""
    return f"{_REST[_market(market)]}/exchangeInfo"


def instrument_from_exchange_info(market: str, symbol: str, info: dict[str, Any]) -> Instrument:
    """``symbol``'s instrument from an ``exchangeInfo`` answer: the tick of its ``PRICE_FILTER``,
    the lot of its ``LOT_SIZE`` filter, COIN-M's ``contractSize``. ValueError if it is not there.

    >>> info = {"symbols": [{"symbol": "ETHUSDT", "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.01000000"},
    ...          {"filterType": "LOT_SIZE", "stepSize": "0.00010000"}]}]}
    >>> inst = instrument_from_exchange_info("spot", "ETHUSDT", info)
    >>> str(inst.tick_size), str(inst.lot_size), inst.currency
    ('0.01', '0.0001', 'USDT')
    """
    for s in info.get("symbols", []):
        if s.get("symbol") != symbol:
            continue
        filters = {f.get("filterType"): f for f in s.get("filters", [])}
        try:
            tick = Decimal(filters["PRICE_FILTER"]["tickSize"]).normalize()
            lot = Decimal(filters["LOT_SIZE"]["stepSize"]).normalize()
        except (KeyError, ArithmeticError) as exc:
            raise ValueError(f"exchangeInfo has no usable PRICE_FILTER/LOT_SIZE for {symbol}") from exc
        size = s.get("contractSize") if market == "coinm" else None
        inst, _ = binance_instrument(market, symbol, tick, lot, pair=s.get("pair"), contract_size=size,
                                     origin="exchangeInfo")  # fmt: skip
        return inst
    raise ValueError(f"exchangeInfo does not list {symbol}")


class Fetch(NamedTuple):
    """Ask: fetch ``symbol``'s REST depth snapshot and hand it to :meth:`BinanceSync.snapshot`
    with this ``token`` (an answer to an older request is ignored)."""

    symbol: str
    token: int


class Reconnect(NamedTuple):
    """Ask: close the connection and open a new one (then call :meth:`BinanceSync.disconnected`)."""

    reason: str


class Skipped(NamedTuple):
    """A malformed message was skipped (``reason`` says why; the shell logs it)."""

    recv_ts: int
    reason: str
    text: str


#: What a step of the state machine returns, in order.
Output = MarketEvent | FeedStatus | Fetch | Reconnect | Skipped


@dataclass
class _Book:
    """One symbol's synchronisation state."""

    decoder: BinanceDecoder
    snapshot_id: int | None = None  # None: not synchronised (diffs are buffered)
    last_u: int | None = None  # the last applied diff's u
    buffer: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    token: int = 0  # of the snapshot request in flight (0: none)
    reason: str = "start"  # why the current (re)synchronisation began
    since: int = 0  # when it began (local ns)


class BinanceSync:
    """Synchronised books of ``instruments`` on one Binance ``market`` connection: see the module notes.

    ``stale_after_ns``: no message for this long (while connected) is a stale stream.
    ``max_connection_ns``: reconnect a connection this old (Binance closes them at 24 hours).
    ``stats`` counts messages, diffs applied/dropped/old, gaps, resyncs, stale streams, malformed ones.
    """

    def __init__(
        self,
        market: str,
        instruments: Iterable[Instrument],
        *,
        feed: str = "",
        stale_after_ns: int = 10 * _S,
        max_connection_ns: int = (23 * 3600 + 50 * 60) * _S,
    ) -> None:
        self.market = _market(market)
        self.feed = feed or f"binance-{self.market}"
        if stale_after_ns <= 0 or max_connection_ns <= 0:
            raise ValueError("stale_after_ns and max_connection_ns must be positive")
        self.stale_after_ns = stale_after_ns
        self.max_connection_ns = max_connection_ns
        self._books = {i.symbol: _Book(BinanceDecoder(i)) for i in instruments}
        if not self._books:
            raise ValueError("a live feed needs at least one instrument")
        self._tokens = 0
        self.connected_at: int | None = None
        self.last_message: int | None = None
        self.last_delay_ns: int | None = None  # receive time minus the exchange's event time, last message
        self.stats = dict.fromkeys(
            ("messages", "diffs", "diffs_applied", "diffs_dropped", "diffs_old", "quotes", "trades", "snapshots",
             "snapshots_too_old", "gaps", "resyncs", "stale", "disconnects", "malformed"), 0,
        )  # fmt: skip

    # ------------------------------------------------------------------ reads
    @property
    def symbols(self) -> list[str]:
        return list(self._books)

    def state(self, symbol: str) -> str:
        """``"live"`` (the book follows the stream), ``"syncing"`` or ``"disconnected"``."""
        book = self._books[symbol]
        if book.snapshot_id is not None:
            return "live"
        return "syncing" if self.connected_at is not None else "disconnected"

    def wants(self, symbol: str, token: int) -> bool:
        """Whether a snapshot answering :class:`Fetch` ``token`` of ``symbol`` would be used now."""
        book = self._books.get(symbol)
        return book is not None and token != 0 and token == book.token and book.snapshot_id is None

    # ------------------------------------------------------------------ inputs
    def connected(self, now: int) -> list[Output]:
        """The websocket is open (at local time ``now``): diffs are buffered from here, and a
        snapshot is asked for each book (a quiet symbol gets its book without waiting for a diff)."""
        self.connected_at = self.last_message = now
        out: list[Output] = []
        for symbol, book in self._books.items():
            if book.snapshot_id is None:
                if not book.since:
                    book.since = now  # the first synchronisation is timed from the first connection
                out.append(self._fetch(symbol))
        return out

    def message(self, recv_ts: int, text: str | bytes) -> list[Output]:
        """One websocket message (a combined-stream envelope) received at ``recv_ts``."""
        self.stats["messages"] += 1
        self.last_message = recv_ts
        try:
            return list(self._message(recv_ts, text))
        except (MessageError, KeyError, TypeError, ValueError, IndexError, AttributeError, msgspec.DecodeError) as exc:
            return [self._skip(recv_ts, text, exc)]

    def snapshot(self, recv_ts: int, symbol: str, token: int, text: str | bytes) -> list[Output]:
        """The REST depth snapshot of ``symbol`` asked for by :class:`Fetch` ``token``."""
        book = self._books.get(symbol)
        if book is None or token != book.token or book.snapshot_id is not None:
            return []  # an answer to a request overtaken by a disconnect or another resync
        book.token = 0
        try:
            msg = _decode(text)
            if not isinstance(msg, dict):
                raise MessageError("a depth snapshot is a JSON object")
            snap = book.decoder.snapshot(recv_ts, msg)
        except (MessageError, KeyError, TypeError, ValueError, IndexError, msgspec.DecodeError) as exc:
            return [self._skip(recv_ts, text, exc), self._fetch(symbol)]
        self.stats["snapshots"] += 1
        last_id = snap.seq
        pending = [(r, d) for r, d in book.buffer if int(d["u"]) > last_id]
        if pending and int(pending[0][1]["U"]) > last_id + 1:
            # Updates between the snapshot and the buffer are missing: the snapshot is too old.
            self.stats["snapshots_too_old"] += 1
            book.buffer = pending
            return [self._fetch(symbol)]
        self.stats["diffs_dropped"] += len(book.buffer) - len(pending)
        book.buffer = []
        book.snapshot_id, book.last_u = last_id, None
        out: list[Output] = [snap]
        for r, d in pending:
            out.extend(self._diff(book, r, d))
            if book.snapshot_id is None:  # a gap inside the buffer: the resync starts again
                return out
        self.stats["resyncs"] += 1
        out.append(FeedResync(recv_ts, self.feed, symbol, book.reason, last_id, recv_ts - book.since))
        return out

    def snapshot_failed(self, now: int, symbol: str, token: int, reason: str) -> list[Output]:
        """The snapshot request ``token`` failed (timeout, HTTP error): ask again."""
        book = self._books.get(symbol)
        if book is None or token != book.token:
            return []
        return [Skipped(now, f"depth snapshot of {symbol} failed: {reason}", ""), self._fetch(symbol)]

    def disconnected(self, now: int, reason: str) -> list[Output]:
        """The connection is gone: every book stops until it is restated after the reconnect."""
        self.stats["disconnects"] += 1
        self.connected_at = None
        out: list[Output] = []
        for symbol, book in self._books.items():
            if book.snapshot_id is not None:
                self.stats["gaps"] += 1
                out.append(FeedGap(now, self.feed, symbol, f"disconnected: {reason}"))
            self._unsync(book, now, f"reconnected after: {reason}")
        return out

    def tick(self, now: int) -> list[Output]:
        """Time passes (local ``now``): a silent stream is stale; an old connection is renewed."""
        if self.connected_at is None or self.last_message is None:
            return []
        silent = now - self.last_message
        if silent >= self.stale_after_ns:
            self.stats["stale"] += 1
            why = f"no message for {silent / _S:.1f} s"
            return [FeedStale(now, self.feed, "", why, silent), Reconnect(f"stale stream ({why})")]
        if now - self.connected_at >= self.max_connection_ns:
            return [Reconnect(f"connection age limit ({self.max_connection_ns / 3600 / _S:.2f} h)")]
        return []

    # ---------------------------------------------------------------- internals
    def _message(self, recv_ts: int, text: str | bytes) -> Iterator[Output]:
        msg = _decode(text)
        if not isinstance(msg, dict):
            raise MessageError("expected a JSON object")
        data = msg.get("data", msg)
        if not isinstance(data, dict):
            raise MessageError("the envelope's data is not a JSON object")
        stream = str(msg.get("stream", ""))
        kind = data.get("e") or ("bookTicker" if "bookTicker" in stream else "")
        if "result" in msg and "id" in msg:  # the answer to a (un)subscribe request: no market data
            return
        symbol = data.get("s")
        book = self._books.get(symbol) if isinstance(symbol, str) else None
        if book is None:
            raise MessageError(f"a message for {symbol!r}, not one of {self.symbols}")
        if "E" in data:
            self.last_delay_ns = recv_ts - int(data["E"]) * _MS
        if kind == "depthUpdate":
            self.stats["diffs"] += 1
            for key in ("U", "u", *(("pu",) if self.market != "spot" else ())):
                if not isinstance(data.get(key), int):
                    raise MessageError(f"a depth diff needs an integer {key!r}")
            if not isinstance(data.get("b"), list) or not isinstance(data.get("a"), list):
                raise MessageError("a depth diff needs lists 'b' and 'a'")
            yield from self._diff(book, recv_ts, data)
        elif kind == "bookTicker":
            quote = book.decoder.quote(recv_ts, data)
            self.stats["quotes"] += 1
            yield quote
        elif kind == "trade":
            trade = book.decoder.trade(recv_ts, data)
            self.stats["trades"] += 1
            yield trade
        else:
            raise MessageError(f"unknown message (stream {stream!r}, event {kind!r})")

    def _diff(self, book: _Book, recv_ts: int, d: dict[str, Any]) -> Iterator[Output]:
        symbol = book.decoder.inst.symbol
        if book.snapshot_id is None:
            if len(book.buffer) >= _BUFFER_MAX:  # no snapshot for far too long: start the buffer afresh
                book.buffer.clear()
            book.buffer.append((recv_ts, d))
            if not book.token:
                yield self._fetch(symbol)
            return
        verdict, why = sequence_verdict(self.market, book.snapshot_id, book.last_u, d["U"], d["u"], d.get("pu", 0))
        if verdict == "apply":
            delta = book.decoder.delta(recv_ts, d)  # off-grid: MessageError, and the next diff is a gap
            book.last_u = delta.seq
            self.stats["diffs_applied"] += 1
            yield delta
        elif verdict == "drop":
            self.stats["diffs_dropped"] += 1
        elif verdict == "old":
            self.stats["diffs_old"] += 1
        else:
            self.stats["gaps"] += 1
            yield FeedGap(recv_ts, self.feed, symbol, why)
            self._unsync(book, recv_ts, why)
            book.buffer.append((recv_ts, d))
            yield self._fetch(symbol)

    def _unsync(self, book: _Book, now: int, reason: str) -> None:
        book.snapshot_id = book.last_u = None
        book.buffer = []
        book.token = 0
        book.reason, book.since = reason, now

    def _fetch(self, symbol: str) -> Fetch:
        self._tokens += 1
        self._books[symbol].token = self._tokens
        return Fetch(symbol, self._tokens)

    def _skip(self, recv_ts: int, text: str | bytes, exc: Exception) -> Skipped:
        self.stats["malformed"] += 1
        if isinstance(exc, KeyError):
            why = f"missing field {exc}"
        elif isinstance(exc, MessageError):
            why = str(exc)
        else:
            why = f"{type(exc).__name__}: {exc}"
        shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        return Skipped(recv_ts, f"malformed message skipped ({why})", shown[:200])


def replay_lines(sync: BinanceSync, lines: Iterable[str]) -> Iterator[Output]:
    """Feed a recording of what a live feed received (``<recv_ts_ns> <json>`` lines: stream
    messages and REST snapshots, the capture format) through ``sync``: the same outputs as live.

    A snapshot line answers the symbol's outstanding :class:`Fetch` (a recording keeps the
    snapshots that were asked for, in the order they came).
    """
    waiting: dict[str, int] = {}
    single = sync.symbols[0] if len(sync.symbols) == 1 else None
    for line in lines:
        head, _, body = line.rstrip("\n").partition(" ")
        recv_ts = int(head)
        outs: list[Output] = []
        if sync.connected_at is None:
            outs = sync.connected(recv_ts)
        if body.startswith('{"lastUpdateId"') or '"lastUpdateId"' in body[:40]:
            symbol = single or str(_decode(body).get("symbol", ""))
            token = waiting.pop(symbol, 0)
            outs += sync.snapshot(recv_ts, symbol, token, body) if token else []
        else:
            outs += sync.message(recv_ts, body)
        for o in outs:
            if isinstance(o, Fetch):
                waiting[o.symbol] = o.token
            yield o


def _market(market: str) -> str:
    if market not in MARKETS:
        raise ValueError(f"market must be 'spot', 'usdm' or 'coinm', got {market!r}")
    return market
