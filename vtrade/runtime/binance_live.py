"""The live Binance feed's shell: websocket and REST I/O around
:class:`~vtrade.market.feeds.binance_live.BinanceSync`.

:class:`BinanceLive` runs in a background thread with its own event loop (tornado's websocket
client and HTTP client, which Panel already brings). It resolves each symbol's grid
(``exchangeInfo``; if that cannot be had, the built-in instrument of a shipped capture's symbol;
else inferred from the first depth snapshot's decimals, as for a recording), opens the combined
stream, and feeds every message, snapshot, disconnect and timer tick to the state machine; it
fetches the snapshots the state machine asks for, reconnects when asked (stale stream, connection
age) or when the connection drops, with a growing pause between failed attempts. Websocket pings
are answered with pongs by the client library.

What comes out, market events and status events (``feed.gap``, ``feed.resync``, ``feed.stale``),
is queued for :meth:`BinanceLive.take` (and handed to ``on_event`` as it comes); malformed
messages are logged (logger ``vtrade.binance_live``) with their reason and counted in
``stats["malformed"]``. ``record=PATH`` writes what was received in the capture format
(``<recv_ts_ns> <json>`` lines, gzip for ``.gz``), which
:func:`~vtrade.market.feeds.binance_live.replay_lines` replays through the same state machine.

Against the real exchange (needs the internet; nothing else, no key)::

    from vtrade.runtime.binance_live import BinanceLive
    feed = BinanceLive(["BTCUSDT"], market="spot").start()
    feed.status()       # {'state': 'live', 'delay_ms': ..., ...}
    feed.take()         # BookSnapshot, BookDelta, Trade, Quote, FeedResync ...
    feed.stop()

>>> from vtrade.runtime.binance_local import LocalBinance
>>> with LocalBinance(["data/crypto/hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz"]) as ex:
...     feed = BinanceLive(["BTCUSDT"], market="spot", ws_url=ex.ws_url, rest_url=ex.rest_url).start()
...     feed.wait_live(30)
...     feed.stop()
True
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import msgspec

from vtrade.core.events import BookDelta, BookSnapshot, Event, FeedStatus, MarketEvent, Quote, event_type
from vtrade.core.instruments import Instrument
from vtrade.market.feeds.binance import binance_instrument, grids_from_text, known_instrument
from vtrade.market.feeds.binance_live import (
    ENDPOINTS,
    BinanceSync,
    Fetch,
    Output,
    Reconnect,
    Skipped,
    depth_path,
    exchange_info_path,
    instrument_from_exchange_info,
    stream_names,
)
from vtrade.market.l2book import L2Book
from vtrade.runtime.replay import parse_duration

__all__ = ["BinanceLive", "LiveSource"]

log = logging.getLogger("vtrade.binance_live")
_S = 1_000_000_000


class BinanceLive:
    """A live Binance market-data connection for ``symbols`` on ``market`` (see the module notes).

    ``ws_url``/``rest_url`` default to Binance's public endpoints of the market (a local
    exchange's for tests). ``depth``: the diff stream's speed (``"100ms"``; ``"0ms"`` is
    futures' fastest). ``stale_after``: a stream silent this long is dropped and reopened;
    ``snapshot_timeout``: a depth snapshot slower than this is asked for again;
    ``max_connection``: renew a connection this old (Binance closes them at 24 h).
    ``instruments``: give the grids instead of looking them up.
    """

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        market: str = "spot",
        ws_url: str | None = None,
        rest_url: str | None = None,
        depth: str = "100ms",
        stale_after: str = "10s",
        snapshot_timeout: str = "10s",
        max_connection: str = "1430min",
        reconnect_delay: str = "500ms",
        instruments: Iterable[Instrument] = (),
        record: str | Path | None = None,
        on_event: Callable[[Event], None] | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.symbols = [s.upper() for s in symbols]
        if not self.symbols:
            raise ValueError("a live feed needs at least one symbol")
        if market not in ENDPOINTS:
            raise ValueError(f"market must be 'spot', 'usdm' or 'coinm', got {market!r}")
        self.market = market
        ws, rest = ENDPOINTS[market]
        self.ws_url = (ws_url or ws).rstrip("/")
        self.rest_url = (rest_url or rest).rstrip("/")
        self.streams = stream_names(self.symbols, depth)
        self._stale_ns = _positive(stale_after, "stale_after")
        self._snapshot_s = _positive(snapshot_timeout, "snapshot_timeout") / _S
        self._max_conn_ns = _positive(max_connection, "max_connection")
        self._reconnect_s = parse_duration(reconnect_delay) / _S
        self._given = {i.symbol: i for i in instruments}
        self.instruments: dict[str, Instrument] = {}
        self.grid_sources: dict[str, str] = {}
        self.sync: BinanceSync | None = None
        self._record_path = Path(record) if record is not None else None
        self._record: IO[str] | None = None
        self._on_event = on_event
        self._clock = clock
        self._queue: deque[Event] = deque()
        self.skipped: deque[Skipped] = deque(maxlen=100)  # the latest malformed messages, with reasons
        self.connections = 0
        self.last_status: FeedStatus | None = None
        self.error: str | None = None  # why the feed gave up (cannot resolve an instrument)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._stopping = False
        self._fetches: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()  # the state machine's stats and state are read from other threads
        self._sources: dict[str, LiveSource] = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> BinanceLive:
        """Connect in a background thread (returns at once; see :meth:`wait_live`)."""
        if self._thread is not None:
            return self
        self._stopping = False
        if self._record_path is not None:
            opener: Any = gzip.open if self._record_path.suffix == ".gz" else open
            self._record = opener(self._record_path, "at", encoding="utf-8")
        self._thread = threading.Thread(target=self._serve, name="vtrade-binance-live", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the connection and stop the thread; the recording, if any, is closed."""
        self._stopping = True
        loop, main = self._loop, self._main
        if loop is not None and main is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(main.cancel)
        if self._thread is not None:
            self._thread.join(15)
        self._thread = None
        if self._record is not None:
            self._record.close()
            self._record = None

    def __enter__(self) -> BinanceLive:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ reads
    def take(self) -> list[Event]:
        """Every market and status event received since the last call, in order."""
        out: list[Event] = []
        q = self._queue
        while q:
            out.append(q.popleft())
        return out

    def wait_live(self, timeout_s: float = 30.0) -> bool:
        """Wait until every symbol's book is live (or ``timeout_s``); whether it is."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.error is not None:
                return False
            if self.state() == "live":
                return True
            time.sleep(0.01)
        return False

    def state(self) -> str:
        """``"live"`` when every book follows the stream, else ``"syncing"``, ``"connecting"``
        (or ``"stopped"``/``"failed"``)."""
        if self.error is not None:
            return "failed"
        if self._thread is None:
            return "stopped"
        sync = self.sync
        if sync is None or sync.connected_at is None:
            return "connecting"
        with self._lock:
            states = {sync.state(s) for s in self.symbols}
        return "live" if states == {"live"} else "syncing"

    def status(self) -> dict[str, Any]:
        """What a badge shows: state, the last message's delay behind the exchange, the last
        status event, the counters."""
        sync = self.sync
        with self._lock:
            delay = sync.last_delay_ns if sync is not None else None
            stats = dict(sync.stats) if sync is not None else {}
        last = self.last_status
        return {
            "state": self.state(),
            "delay_ms": None if delay is None else delay / 1e6,
            "last": None if last is None else f"{event_type(last)} {last.symbol}: {last.reason}".replace("  ", " "),
            "connections": self.connections,
            "stats": stats,
            "error": self.error,
        }

    def source(self, symbol: str) -> LiveSource:
        """``symbol``'s events as a live venue's source (:class:`LiveSource`); before :meth:`start`."""
        symbol = symbol.upper()
        if symbol not in self.symbols:
            raise ValueError(f"{symbol} is not one of this feed's symbols {self.symbols}")
        if symbol not in self._sources:
            self._sources[symbol] = LiveSource(self, symbol)
        return self._sources[symbol]

    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self.sync.stats) if self.sync is not None else {}

    # ------------------------------------------------------------------ the loop
    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._main = loop.create_task(self._run())
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(self._main)
            for t in list(self._fetches):
                t.cancel()
            if self._fetches:
                loop.run_until_complete(asyncio.gather(*self._fetches, return_exceptions=True))
        finally:
            loop.close()

    async def _run(self) -> None:
        from tornado.httpclient import AsyncHTTPClient

        self._http = AsyncHTTPClient(force_instance=True)
        try:
            try:
                await self._resolve()
            except (OSError, ValueError) as exc:
                self.error = f"cannot resolve the instruments: {exc}"
                log.error("binance live feed: %s", self.error)
                return
            self.sync = BinanceSync(self.market, self.instruments.values(), stale_after_ns=self._stale_ns,
                                    max_connection_ns=self._max_conn_ns)  # fmt: skip
            failures = 0
            while not self._stopping:
                reason = await self._connection()
                if reason is None:  # could not connect
                    failures += 1
                else:
                    failures = 0
                if not self._stopping:  # a pause, growing while connecting fails (at most 30 s)
                    await asyncio.sleep(min(30.0, self._reconnect_s * 2 ** min(failures, 6)))
        finally:
            self._http.close()

    async def _connection(self) -> str | None:
        """One connection's life: returns why it ended, None if it could not be opened."""
        from tornado.websocket import websocket_connect

        assert self.sync is not None
        url = f"{self.ws_url}/stream?streams={'/'.join(self.streams)}"
        try:
            ws = await websocket_connect(url, connect_timeout=10, max_message_size=64 << 20)
        except (OSError, Exception) as exc:  # tornado raises its own errors besides OSError
            log.warning("binance live feed: cannot connect to %s: %s", self.ws_url, exc)
            return None
        self.connections += 1
        self._handle(self._step(lambda now: self.sync.connected(now)))  # type: ignore[union-attr]
        reason = "the feed was stopped"
        try:
            reason = await self._read(ws)
        finally:
            ws.close()
            self._handle(self._step(lambda now: self.sync.disconnected(now, reason)))  # type: ignore[union-attr]
        return reason

    async def _read(self, ws: Any) -> str:
        sync = self.sync
        assert sync is not None
        tick_s = min(1.0, self._stale_ns / _S / 4)
        fut = ws.read_message()
        while True:
            done, _ = await asyncio.wait({fut}, timeout=tick_s)
            if done:
                text = fut.result()
                if text is None:
                    return f"the server closed the connection (code {ws.close_code}, {ws.close_reason or 'no reason'})"
                now = self._clock()
                if self._record is not None:
                    self._record.write(f"{now} {text}\n")
                with self._lock:
                    outs = sync.message(now, text) + sync.tick(now)
                fut = ws.read_message()
            else:
                outs = self._step(sync.tick)
            for o in outs:
                if isinstance(o, Reconnect):
                    self._handle([x for x in outs if not isinstance(x, Reconnect)])
                    return o.reason
            self._handle(outs)

    def _step(self, fn: Callable[[int], list[Output]]) -> list[Output]:
        with self._lock:
            return fn(self._clock())

    def _handle(self, outs: list[Output]) -> None:
        for o in outs:
            if isinstance(o, Fetch):
                task = asyncio.ensure_future(self._fetch(o))
                self._fetches.add(task)
                task.add_done_callback(self._fetches.discard)
            elif isinstance(o, Skipped):
                self.skipped.append(o)
                log.warning("binance live feed: %s: %r", o.reason, o.text[:120])
            elif isinstance(o, Reconnect):
                pass  # only _read acts on it
            else:
                if isinstance(o, FeedStatus):
                    self.last_status = o
                    log.info("binance live feed: %s %s %s", type(o).__name__, o.symbol, o.reason)
                self._queue.append(o)
                if self._on_event is not None:
                    self._on_event(o)
                source = self._sources.get(o.symbol)
                if source is not None:
                    source.push(o)

    async def _fetch(self, want: Fetch) -> None:
        """GET the depth snapshot asked for and hand it over (or its failure, after a pause)."""
        from tornado.httpclient import HTTPClientError

        url = f"{self.rest_url}{depth_path(self.market, want.symbol)}"
        try:
            resp = await self._http.fetch(url, request_timeout=self._snapshot_s, connect_timeout=self._snapshot_s)
        except (OSError, HTTPClientError, Exception) as exc:  # timeouts are HTTPClientError(599)
            why = str(exc)
            await asyncio.sleep(self._reconnect_s)  # a failing endpoint is not asked again at once
            self._handle(self._step(lambda now: self.sync.snapshot_failed(now, want.symbol, want.token, why)))  # type: ignore[union-attr]
            return
        text = resp.body.decode("utf-8", "replace")

        def apply(now: int) -> list[Output]:
            assert self.sync is not None
            if self._record is not None and self.sync.wants(want.symbol, want.token):
                self._record.write(f"{now} {text}\n")
            return self.sync.snapshot(now, want.symbol, want.token, text)

        self._handle(self._step(apply))

    async def _get_json(self, path: str) -> Any:
        resp = await self._http.fetch(f"{self.rest_url}{path}", request_timeout=self._snapshot_s)
        return msgspec.json.decode(resp.body)

    async def _resolve(self) -> None:
        """Each symbol's instrument: given, else ``exchangeInfo``, else built in, else inferred."""
        info: Any = None
        missing = [s for s in self.symbols if s not in self._given]
        if missing:
            try:
                info = await self._get_json(exchange_info_path(self.market))
            except Exception as exc:  # unreachable, refused, not JSON: fall back, say so
                log.warning("binance live feed: no exchangeInfo (%s): grids built in or inferred", exc)
        for s in self.symbols:
            if s in self._given:
                self.instruments[s], self.grid_sources[s] = self._given[s], "given"
                continue
            if info is not None:
                with contextlib.suppress(ValueError):
                    self.instruments[s], self.grid_sources[s] = instrument_from_exchange_info(self.market, s, info), \
                        "exchangeInfo"  # fmt: skip
                    continue
            known = known_instrument(self.market, s)
            if known is not None:
                self.instruments[s], self.grid_sources[s] = known, "built-in"
                continue
            try:
                body = (await self._http.fetch(f"{self.rest_url}{depth_path(self.market, s)}",
                                               request_timeout=self._snapshot_s)).body  # fmt: skip
            except Exception as exc:
                raise ValueError(f"{s}: no exchangeInfo, no built-in grid and no depth snapshot ({exc})") from exc
            tick, lot = grids_from_text(body)
            self.instruments[s], _ = binance_instrument(self.market, s, tick, lot)
            self.grid_sources[s] = "inferred from the first depth snapshot"


class LiveSource:
    """One symbol of a :class:`BinanceLive` feed as the source of a live market's venue: the
    same shape as a looped capture (:class:`~vtrade.market.capture.CaptureLoop`) for
    :class:`~vtrade.runtime.live.LiveMarket`, except that it is not drawn ahead, it is asked
    for what has arrived (:meth:`until`). Its events go onto the market's sequenced log like
    replayed ones; ``Quote`` events are left out, as in a replay (the depth diffs are the book).

    It keeps the symbol's book as the feed states it, so :meth:`snapshot` opens (or re-opens)
    an exchange at the book as it is now. A resync's snapshot simply restates the book.
    """

    events_per_second = 0.0  # nothing is drawn ahead: see until()

    def __init__(self, feed: BinanceLive, symbol: str) -> None:
        self.feed = feed
        self.symbol = symbol
        self._book = L2Book(symbol)
        self._seq = 0
        self._queue: deque[MarketEvent] = deque()
        self._lock = threading.Lock()
        self._ready = threading.Event()  # set once a snapshot has given the book
        self.last_ts = 0  # the exchange time of the latest event

    @property
    def instrument(self) -> Instrument:
        return self.feed.instruments[self.symbol]

    def push(self, e: Event) -> None:
        """A feed event of this symbol (called on the feed's thread)."""
        if not isinstance(e, MarketEvent):
            return
        with self._lock:
            if isinstance(e, BookSnapshot):
                self._book = L2Book(self.symbol)
            if isinstance(e, BookSnapshot | BookDelta):
                self._book.apply(e)
                self._seq = e.seq
                self._ready.set()
            self.last_ts = max(self.last_ts, e.ts)
            if not isinstance(e, Quote):
                self._queue.append(e)

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the feed has given this symbol's book (or ``timeout_s``); whether it has."""
        return self._ready.wait(timeout_s)

    def snapshot(self) -> BookSnapshot:
        """The book now (what arrived before it is in it), stamped with the latest exchange time."""
        with self._lock:
            self._queue.clear()
            return self._book.snapshot(self.last_ts, self._seq)

    def until(self, ts: int) -> list[MarketEvent]:
        """The events that arrived, up to the first one stamped after ``ts`` (kept for later)."""
        out: list[MarketEvent] = []
        with self._lock:
            q = self._queue
            while q and q[0].ts <= ts:
                out.append(q.popleft())
        return out

    def step(self, n: int) -> list[MarketEvent]:
        raise TypeError("a live source is not drawn ahead: ask it for what arrived with until()")


def _positive(value: str, name: str) -> int:
    ns = parse_duration(value)
    if ns <= 0:
        raise ValueError(f"{name} must be a positive duration, got {value!r}")
    return ns
