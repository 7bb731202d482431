"""A local Binance on 127.0.0.1: replays captures over Binance's wire formats, with faults on demand.

What the live feed (:mod:`vtrade.runtime.binance_live`) is tested against, and what a class can
trade against without the internet. It speaks what the real exchange speaks:

- the combined websocket stream, ``/stream?streams=btcusdt@depth@100ms/btcusdt@trade/...``: each
  frame the ``{"stream": ..., "data": ...}`` envelope exactly as the capture recorded it (only
  the streams asked for are sent; the recorded diff stream answers a depth stream of any
  speed), with websocket pings (``ping_interval_s``) the client must answer with pongs
  (:attr:`LocalBinance.pongs` counts them);
- the REST depth snapshot, ``/api/v3/depth`` (spot), ``/fapi/v1/depth`` (USD-M), ``/dapi/v1/depth``
  (COIN-M): the book at the moment of the request, rebuilt from the capture, as Binance's JSON
  (``lastUpdateId``, ``bids``, ``asks``; futures add ``E``/``T``, COIN-M ``symbol``/``pair``), the
  top ``limit`` levels; an unknown symbol gets Binance's 400 ``{"code": -1121}``;
- ``exchangeInfo`` (each symbol's ``PRICE_FILTER`` and ``LOT_SIZE``) and ``ping``.

The tape is the captures' stream messages in receive order (several captures of one market are
merged). There is one exchange clock: the tape moves on while a client is connected (at
``speed`` times the recording's pace, 0 = as fast as the client reads), and a client that
reconnects picks it up where it is, as on the real exchange. The book the snapshots come from
follows the tape from the capture's own snapshot on, by Binance's rules; a snapshot asked for
before the tape reaches that point is the capture's snapshot itself (ahead of the stream, which
a client must handle). Its ``lastUpdateId`` is just before the next diff (on futures, whose
update ids are shared by every symbol, that can be past the last diff's ``u``).

Faults (:meth:`LocalBinance.inject`, at a tape position or at the next message):

``drop``        the next depth diff is not sent (a gap);
``duplicate``   the next depth diff is sent twice;
``reorder``     the next depth diff is sent after the one that follows it;
``malformed``   a broken frame is sent (``variant`` 0-4: not JSON, not an object, a diff missing
                its ids, an off-grid price, an unknown event);
``disconnect``  the connection is closed and ``lost`` messages go by before a client is back;
``stale``       nothing is sent for ``pause_s`` seconds (the connection stays open);
``slow_snapshot`` the next depth snapshot is answered ``delay_s`` seconds late (taken at the
                request, so it is older than the stream when it arrives).

>>> from vtrade.runtime.binance_local import LocalBinance
>>> with LocalBinance(["data/crypto/hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz"]) as ex:
...     ex.market, ex.symbols, ex.rest_url.startswith("http://127.0.0.1:")
('spot', ['BTCUSDT'], True)
"""

from __future__ import annotations

import asyncio
import heapq
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from vtrade.core.instruments import Instrument
from vtrade.market.feeds._io import numbered_lines
from vtrade.market.feeds.binance import infer_instrument, sequence_verdict

__all__ = ["FAULTS", "LocalBinance"]

FAULTS = ("drop", "duplicate", "reorder", "malformed", "disconnect", "stale", "slow_snapshot")
_REST = {"spot": "/api/v3", "usdm": "/fapi/v1", "coinm": "/dapi/v1"}
_MAX_LIMIT = {"spot": 5000, "usdm": 1000, "coinm": 1000}
_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True, slots=True)
class _Msg:
    """One stream message of the tape."""

    recv_ts: int
    text: str
    stream: str
    symbol: str
    diff: dict[str, Any] | None  # the depthUpdate's data, None for other messages


@dataclass
class _Book:
    """A symbol's book on the exchange side, as price strings (what the snapshot JSON shows)."""

    snapshot: dict[str, Any]  # the capture's REST snapshot
    position: int  # tape index at which the capture took it
    market: str
    bids: dict[Decimal, tuple[str, str]] = field(default_factory=dict)
    asks: dict[Decimal, tuple[str, str]] = field(default_factory=dict)
    last_id: int = 0
    last_id_at_start: int = 0
    last_u: int | None = None
    last_e: int = 0

    def __post_init__(self) -> None:
        self.last_id = self.last_id_at_start = int(self.snapshot["lastUpdateId"])
        for side, rows in ((self.bids, self.snapshot["bids"]), (self.asks, self.snapshot["asks"])):
            for p, q in rows:
                side[Decimal(p)] = (p, q)

    def apply(self, d: dict[str, Any]) -> None:
        verdict, why = sequence_verdict(self.market, self.last_id, self.last_u, d["U"], d["u"], d.get("pu", 0))
        if verdict == "drop":
            return
        if verdict != "apply":
            raise ValueError(f"the capture itself is broken: {why}")
        for side, rows in ((self.bids, d["b"]), (self.asks, d["a"])):
            for p, q in rows:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = (p, q)
        self.last_u = d["u"]
        self.last_e = d.get("E", self.last_e)


class LocalBinance:
    """The local exchange: see the module notes. ``captures``: Binance capture files of one market.

    ``speed``: 0 streams as fast as the client reads, else at ``speed`` times the recording's
    pace. ``ping_interval_s``: how often the server pings each connection (None: never).
    ``limit``: serve only the first ``limit`` stream messages of the tape. ``restamp``: move the
    exchange's times (``E``, ``T``) to now, as if the recording were happening now (a served
    demo: the feed's delay is then a real one); off, the messages are the recording's bytes.
    """

    def __init__(
        self,
        captures: Iterable[str | Path],
        *,
        speed: float = 0.0,
        ping_interval_s: float | None = 20.0,
        limit: int | None = None,
        restamp: bool = False,
    ) -> None:
        paths = [Path(p) for p in captures]
        if not paths:
            raise ValueError("a local exchange needs at least one capture")
        if speed < 0:
            raise ValueError(f"speed must be >= 0, got {speed}")
        self.speed = speed
        self.restamp = restamp
        self._shift_ms: int | None = None  # added to E and T when restamping, fixed at start
        self.ping_interval_s = ping_interval_s
        inferred = [infer_instrument(p) for p in paths]
        markets = {i.market for i in inferred}
        if len(markets) != 1:
            raise ValueError(f"the captures of one local exchange must be of one market, got {sorted(markets)}")
        self.market = markets.pop()
        self.instruments: dict[str, Instrument] = {i.instrument.symbol: i.instrument for i in inferred}
        self.tape, self._books = self._load(paths)
        if limit is not None:
            if limit < 1:
                raise ValueError(f"limit must be positive, got {limit}")
            del self.tape[limit:]
        self.symbols = list(self.instruments)
        self.cursor = 0  # the next tape message to go out
        self.sent = 0  # frames sent
        self.pongs = 0
        self.connections = 0
        self.snapshots_served = 0
        self.injected: Counter[str] = Counter()
        self._faults: list[tuple[int, int, str, dict[str, Any]]] = []  # heap of (at, order, kind, params)
        self._order = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._current: Any = None  # the connection being fed
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self.port = 0

    # ------------------------------------------------------------------ tape
    def _load(self, paths: list[Path]) -> tuple[list[_Msg], dict[str, _Book]]:
        def read(path: Path, symbol: str) -> Iterator[tuple[int, str, dict[str, Any], str]]:
            for _, line in numbered_lines(path):
                head, _, body = line.partition(" ")
                yield int(head), body, _decode(body), symbol

        tape: list[_Msg] = []
        books: dict[str, _Book] = {}
        sources = [read(p, s) for p, s in zip(paths, self.instruments, strict=True)]
        for recv_ts, body, msg, symbol in heapq.merge(*sources, key=lambda r: r[0]):
            if "lastUpdateId" in msg:
                books[symbol] = _Book(msg, len(tape), self.market)
                continue
            data = msg["data"]
            diff = data if data.get("e") == "depthUpdate" else None
            tape.append(_Msg(recv_ts, body, _stream_key(msg["stream"]), symbol, diff))
        missing = set(self.instruments) - set(books)
        if missing:
            raise ValueError(f"no REST snapshot in the capture of {sorted(missing)}")
        return tape, books

    @property
    def done(self) -> bool:
        """Whether every message of the tape has gone by."""
        return self.cursor >= len(self.tape)

    def diff_positions(self, symbol: str | None = None) -> list[int]:
        """Tape indices of the depth diffs (of ``symbol``) that continue the capture's snapshot:
        where a diff fault makes a gap."""
        return [i for i, m in enumerate(self.tape) if m.diff is not None and (symbol is None or m.symbol == symbol)
                and m.diff["u"] > self._books[m.symbol].last_id_at_start]  # fmt: skip

    # ------------------------------------------------------------------ faults
    def inject(self, kind: str, *, at: int | None = None, **params: Any) -> None:
        """Inject fault ``kind`` (see the module notes) at tape position ``at`` (default: now)."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULTS)}")
        with self._lock:
            heapq.heappush(self._faults, (self.cursor if at is None else at, self._order, kind, params))
            self._order += 1

    def _due(self, kinds: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
        """The faults of ``kinds`` due at the cursor (others stay queued)."""
        with self._lock:
            due = [f for f in self._faults if f[0] <= self.cursor and f[2] in kinds]
            for f in due:
                self._faults.remove(f)
            heapq.heapify(self._faults)
        for f in due:
            self.injected[f[2]] += 1
        return [(f[2], f[3]) for f in due]

    # ------------------------------------------------------------------ book
    def depth(self, symbol: str, limit: int) -> dict[str, Any]:
        """The REST depth snapshot of ``symbol`` now, as Binance's JSON object."""
        book = self._books[symbol]
        if book.last_u is None:
            snap = dict(book.snapshot)  # the tape has not gone past the capture's own snapshot: that one
            if self.restamp and "E" in snap:
                snap |= {k: snap[k] + (self._shift_ms or 0) for k in ("E", "T") if k in snap}
            for side in ("bids", "asks"):
                snap[side] = snap[side][:limit]
            return snap
        last_id = book.last_u
        for m in self.tape[self.cursor :]:
            if m.diff is not None and m.symbol == symbol:
                last_id = max(last_id, m.diff["U"] - 1)
                break
        out: dict[str, Any] = {"lastUpdateId": last_id}
        if "E" in book.snapshot:
            e = book.last_e + (self._shift_ms or 0) if self.restamp else book.last_e
            out |= {"E": e, "T": e}
        if "symbol" in book.snapshot:
            out |= {"symbol": symbol, "pair": book.snapshot.get("pair", "")}
        out["bids"] = [list(book.bids[k]) for k in sorted(book.bids, reverse=True)[:limit]]
        out["asks"] = [list(book.asks[k]) for k in sorted(book.asks)[:limit]]
        return out

    def exchange_info(self) -> dict[str, Any]:
        """``exchangeInfo`` for the captures' symbols."""
        rows = []
        for s, inst in self.instruments.items():
            row: dict[str, Any] = {"symbol": s, "status": "TRADING", "filters": [
                {"filterType": "PRICE_FILTER", "tickSize": str(inst.tick_size)},
                {"filterType": "LOT_SIZE", "stepSize": str(inst.lot_size)},
            ]}  # fmt: skip
            if self.market == "coinm":
                row |= {"pair": s.split("_")[0], "contractSize": int(inst.contract_size or 1)}
            rows.append(row)
        return {"timezone": "UTC", "serverTime": int(time.time() * 1000), "symbols": rows}

    # ------------------------------------------------------------------ serving
    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalBinance:
        """Serve on a free loopback port in a background thread."""
        if self.restamp:  # the tape's first exchange time becomes now
            first = next(m.diff["E"] for m in self.tape if m.diff is not None)
            self._shift_ms = time.time_ns() // 1_000_000 - int(first)
        self._thread = threading.Thread(target=self._serve, name="local-binance", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the local Binance did not start")
        return self

    def stop(self) -> None:
        """Close every connection and stop serving."""
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> LocalBinance:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from tornado.httpserver import HTTPServer
        from tornado.netutil import bind_sockets

        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        settings: dict[str, Any] = {}
        if self.ping_interval_s:
            # Every 20 s by default, as Binance's spot streams; a client that does not answer a
            # ping by the next one is disconnected (the real exchange allows a minute).
            settings["websocket_ping_interval"] = self.ping_interval_s
        app = _application(self, settings)
        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        server = HTTPServer(app)
        server.add_sockets(sockets)
        self._ready.set()
        await self._stopped.wait()
        server.stop()
        if self._current is not None:
            self._current.close(1001, "server stopping")
        await server.close_all_connections()

    async def _pump(self, conn: Any, streams: set[str]) -> None:
        """Feed ``conn`` from the tape until it is replaced, closed or the server stops."""
        held: list[str] = []  # a diff held back by "reorder"
        started_wall, started_ts = time.monotonic(), None
        while conn is self._current and not conn.gone:
            if self.done:
                if held:
                    await self._send(conn, held.pop())
                await asyncio.sleep(0.05)
                continue
            for kind, params in self._due(("stale", "disconnect", "malformed")):
                if kind == "stale":
                    await asyncio.sleep(float(params.get("pause_s", 2.0)))
                    started_wall, started_ts = time.monotonic(), None
                elif kind == "malformed":
                    await self._send(conn, _BROKEN[int(params.get("variant", self.injected[kind] - 1)) % len(_BROKEN)])
                else:
                    self._advance(int(params.get("lost", 20)))
                    conn.close(1001, "disconnected by the test exchange")
                    return
            if conn is not self._current or conn.gone:
                return
            m = self.tape[self.cursor]
            if self.speed and m.recv_ts:
                started_ts = started_ts or m.recv_ts
                wait = (m.recv_ts - started_ts) / 1e9 / self.speed - (time.monotonic() - started_wall)
                if wait > 0:
                    await asyncio.sleep(wait)
            frames = [m.text]
            if m.diff is not None and m.stream in streams:
                release, held = held, []  # a held diff goes out right after the next one
                for kind, _ in self._due(("drop", "duplicate", "reorder")):
                    if kind == "drop":
                        frames = []
                    elif kind == "duplicate":
                        frames = frames * 2
                    else:
                        held, frames = frames, []
                frames += release
            self._advance(1)
            if m.stream in streams:
                for text in frames:
                    await self._send(conn, text)

    def _advance(self, n: int) -> None:
        for _ in range(n):
            if self.done:
                return
            m = self.tape[self.cursor]
            self.cursor += 1
            book = self._books[m.symbol]
            if m.diff is not None:
                book.apply(m.diff)

    def _stamped(self, text: str) -> str:
        """``text`` with its exchange times moved to the present (see ``restamp``)."""
        msg = _decode(text)
        data = msg.get("data") if isinstance(msg, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("E", data.get("T")), int):
            return text  # a broken frame stays broken; spot's bookTicker has no time
        for key in ("E", "T"):
            if isinstance(data.get(key), int):
                data[key] += self._shift_ms or 0
        return msgspec.json.encode(msg).decode()

    async def _send(self, conn: Any, text: str) -> None:
        from tornado.websocket import WebSocketClosedError

        if self.restamp:
            text = self._stamped(text)
        try:
            await conn.write_message(text)
            self.sent += 1
        except WebSocketClosedError:
            conn.gone = True


_BROKEN = (
    '{"stream":"btcusdt@trade","data":{"e":"trade","p":',  # truncated JSON
    "[1,2,3]",  # JSON, but not an object
    '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","b":[],"a":[]}}',  # no ids
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":1,"s":"BTCUSDT","t":1,"p":"1.000000001","q":"1",'
    '"m":true}}',  # a price off every grid
    '{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1,"s":"BTCUSDT"}}',  # not a stream we asked for
)


def _stream_key(name: str) -> str:
    """A stream name with the depth stream's speed left out: the capture's diffs are served to
    whichever speed a client asks for (``btcusdt@depth@100ms`` -> ``btcusdt@depth``)."""
    head, sep, _ = name.partition("@depth")
    return f"{head}@depth" if sep else name


def _application(ex: LocalBinance, settings: dict[str, Any]) -> Any:
    """The tornado application: the websocket stream and the REST endpoints of ``ex``."""
    from tornado.web import Application, RequestHandler
    from tornado.websocket import WebSocketHandler

    class Stream(WebSocketHandler):
        gone = False

        def check_origin(self, origin: str) -> bool:
            return True

        def open(self, *args: str) -> None:
            streams = {_stream_key(s) for s in self.get_argument("streams", "").split("/") if s}
            previous, ex._current = ex._current, self
            if previous is not None:
                previous.gone = True
                previous.close(1001, "replaced by a new connection")
            ex.connections += 1
            self.pump = asyncio.ensure_future(ex._pump(self, streams))

        def on_message(self, message: str | bytes) -> None:
            pass  # SUBSCRIBE requests are not needed: the streams are in the URL

        def on_pong(self, data: bytes) -> None:
            ex.pongs += 1

        def on_close(self) -> None:
            self.gone = True

    class Depth(RequestHandler):
        async def get(self) -> None:
            symbol = self.get_argument("symbol", "")
            if symbol not in ex.instruments:
                self.set_status(400)
                self.finish({"code": -1121, "msg": "Invalid symbol."})
                return
            try:
                limit = min(int(self.get_argument("limit", "100")), _MAX_LIMIT[ex.market])
            except ValueError:
                self.set_status(400)
                self.finish({"code": -1100, "msg": "Illegal characters found in parameter 'limit'."})
                return
            body = json.dumps(ex.depth(symbol, limit), separators=(",", ":"))  # taken now
            for _, params in ex._due(("slow_snapshot",)):
                await asyncio.sleep(float(params.get("delay_s", 2.0)))
            ex.snapshots_served += 1
            self.set_header("Content-Type", "application/json")
            self.finish(body)

    class Info(RequestHandler):
        def get(self) -> None:
            self.finish(ex.exchange_info())

    class Ping(RequestHandler):
        def get(self) -> None:
            self.finish({})

    rest = _REST[ex.market]
    routes: list[Any] = [(r"/stream", Stream), (f"{rest}/depth", Depth), (f"{rest}/exchangeInfo", Info),
                         (f"{rest}/ping", Ping)]  # fmt: skip
    return Application(routes, **settings)
