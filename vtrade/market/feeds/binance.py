"""Binance raw captures: ``<local_receive_ts_ns> <json>`` lines from the combined websocket
stream (``depthUpdate`` diffs, ``bookTicker``, ``trade``) plus one REST depth snapshot.

The book is rebuilt with Binance's documented procedure ("How to manage a local order book
correctly", spot and USD-M futures):

1. buffer the diffs that arrive before the snapshot;
2. drop every diff with ``u <= lastUpdateId``;
3. the first diff applied must satisfy ``U <= lastUpdateId + 1 <= u``;
4. afterwards each diff must continue the previous one: on spot ``U == previous u + 1``;
   on futures ``pu == previous u``.

A broken rule is a :class:`~vtrade.core.errors.SequenceGapError` naming the file and line:
a book built across a gap silently diverges from the exchange's, so we never paper over one.
Events come out in arrival order, except that the buffered diffs are released right after
the snapshot they continue. ``ts`` is the exchange's event time ``E`` (ms, as ns) where the
message has one, else the local receive time; ``recv_ts`` is always the local receive time.

>>> feed = BinanceFeed("data/crypto/hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz")
>>> first = next(iter(feed))
>>> type(first).__name__, feed.market
('Quote', 'spot')
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from vtrade.core.errors import DataError, OffGridError, SequenceGapError
from vtrade.core.events import BookDelta, BookSnapshot, MarketEvent, Quote, Side, Trade
from vtrade.core.instruments import BINANCE_BTCUSDT_SPOT, BINANCE_BTCUSDT_USDM, Instrument
from vtrade.market.feeds._io import numbered_lines

_KNOWN = {("spot", "BTCUSDT"): BINANCE_BTCUSDT_SPOT, ("usdm", "BTCUSDT"): BINANCE_BTCUSDT_USDM}
_MS = 1_000_000
_decode = msgspec.json.Decoder().decode


def looks_like_binance(line: str) -> bool:
    """True for a ``<int> {json}`` line such as a Binance capture starts with."""
    head, _, rest = line.partition(" ")
    return head.isdigit() and rest.startswith("{")


class BinanceFeed:
    """Streaming reader of one Binance capture file; iterate it for events.

    ``market`` is ``"spot"``, ``"usdm"`` or ``"auto"`` (decided by the first depth diff:
    futures diffs carry ``pu``). ``instrument`` defaults to the known BTCUSDT grids.
    After iteration, ``stats`` counts what was read, applied and dropped.
    """

    def __init__(self, path: str | Path, *, market: str = "auto", instrument: Instrument | None = None) -> None:
        if market not in ("auto", "spot", "usdm"):
            raise ValueError(f"market must be 'auto', 'spot' or 'usdm', got {market!r}")
        self.path = Path(path)
        self.market = market
        self.instrument = instrument
        self.stats: dict[str, int] = {}

    def __iter__(self) -> Iterator[MarketEvent]:
        return _Reader(self).events()

    def resolve_instrument(self) -> Instrument:
        """Read up to the first depth diff to learn spot vs futures, and return the instrument."""
        if self.instrument is not None:
            return self.instrument
        reader = _Reader(self)
        for ev in reader.events():
            if self.market != "auto":
                return reader._default_for(None, self.market, ev.symbol)
        raise DataError(self.path, None, "no depth diff: cannot tell spot from futures; pass market=")


class _Reader:
    """One pass over a capture: the sequencing state machine."""

    def __init__(self, feed: BinanceFeed) -> None:
        self.feed = feed
        self.path = feed.path
        self.inst = feed.instrument
        self.last_u: int | None = None  # final update id of the last applied diff
        self.snapshot_id: int | None = None
        self.pending: list[tuple[int, int, dict[str, Any]]] = []  # diffs before the snapshot
        self.stats = feed.stats
        self.stats.clear()
        self.stats.update(lines=0, diffs=0, diffs_applied=0, diffs_dropped=0, level_updates=0, quotes=0, trades=0)

    # ------------------------------------------------------------------ driver
    def events(self) -> Iterator[MarketEvent]:
        for lineno, line in numbered_lines(self.path):
            self.stats["lines"] += 1
            recv_ts, msg = self._parse_line(lineno, line)
            try:
                yield from self._dispatch(lineno, recv_ts, msg)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                if isinstance(exc, DataError):
                    raise
                what = f"{type(exc).__name__}: {exc}" if not isinstance(exc, KeyError) else f"missing field {exc}"
                raise DataError(self.path, lineno, f"malformed Binance message ({what})") from exc
        if self.snapshot_id is None and self.stats["diffs"]:
            raise SequenceGapError(self.path, None, "depth diffs but no REST snapshot: the book cannot be built")

    def _parse_line(self, lineno: int, line: str) -> tuple[int, Any]:
        head, sep, body = line.partition(" ")
        if not sep or not head.isdigit():
            raise DataError(self.path, lineno, "expected '<receive_ts_ns> <json>'")
        try:
            return int(head), _decode(body)
        except msgspec.DecodeError as exc:
            raise DataError(self.path, lineno, f"malformed JSON ({exc})") from exc

    def _dispatch(self, lineno: int, recv_ts: int, msg: Any) -> Iterator[MarketEvent]:
        if not isinstance(msg, dict):
            raise DataError(self.path, lineno, "expected a JSON object")
        if "lastUpdateId" in msg:
            yield from self._on_snapshot(lineno, recv_ts, msg)
            return
        data = msg.get("data", msg)
        stream = msg.get("stream", "")
        kind = data.get("e") or ("bookTicker" if "bookTicker" in stream else "")
        if kind == "depthUpdate":
            self.stats["diffs"] += 1
            self._resolve_market(lineno, data)
            if self.snapshot_id is None:
                self.pending.append((lineno, recv_ts, data))
            else:
                delta = self._on_diff(lineno, recv_ts, data)
                if delta is not None:
                    yield delta
        elif kind == "bookTicker":
            self.stats["quotes"] += 1
            yield self._quote(lineno, recv_ts, data)
        elif kind == "trade":
            self.stats["trades"] += 1
            yield self._trade(lineno, recv_ts, data)
        else:
            raise DataError(self.path, lineno, f"unknown Binance message (stream {stream!r}, event {kind!r})")

    # --------------------------------------------------------------- sequencing
    def _on_snapshot(self, lineno: int, recv_ts: int, msg: dict[str, Any]) -> Iterator[MarketEvent]:
        if self.snapshot_id is not None:
            raise DataError(self.path, lineno, "a second REST snapshot: re-synchronisation is not supported")
        inst = self._instrument(lineno, None)
        last_id = int(msg["lastUpdateId"])
        bp, bs = self._levels(lineno, msg["bids"], inst)
        ap, az = self._levels(lineno, msg["asks"], inst)
        ts = int(msg["E"]) * _MS if "E" in msg else recv_ts
        self.snapshot_id = last_id
        yield BookSnapshot(ts, recv_ts, inst.symbol, last_id, bp, bs, ap, az)
        pending, self.pending = self.pending, []
        for p_line, p_recv, data in pending:
            delta = self._on_diff(p_line, p_recv, data)
            if delta is not None:
                yield delta

    def _on_diff(self, lineno: int, recv_ts: int, d: dict[str, Any]) -> BookDelta | None:
        first, last = int(d["U"]), int(d["u"])
        prev = int(d["pu"]) if "pu" in d else 0
        assert self.snapshot_id is not None
        if self.last_u is None:
            if last <= self.snapshot_id:
                self.stats["diffs_dropped"] += 1
                return None
            if not first <= self.snapshot_id + 1 <= last:
                raise SequenceGapError(
                    self.path, lineno,
                    f"first diff after snapshot {self.snapshot_id} has U={first}, u={last}: "
                    f"Binance requires U <= {self.snapshot_id + 1} <= u",
                )  # fmt: skip
        elif self.feed.market == "usdm" and prev != self.last_u:
            raise SequenceGapError(
                self.path, lineno, f"sequence gap: pu={prev} but the previous diff ended at u={self.last_u}"
            )
        elif self.feed.market == "spot" and first != self.last_u + 1:
            raise SequenceGapError(
                self.path, lineno,
                f"sequence gap: U={first} but the previous diff ended at u={self.last_u} (expected {self.last_u + 1})",
            )  # fmt: skip
        inst = self._instrument(lineno, d.get("s"))
        bp, bs = self._levels(lineno, d["b"], inst)
        ap, az = self._levels(lineno, d["a"], inst)
        self.last_u = last
        self.stats["diffs_applied"] += 1
        self.stats["level_updates"] += len(bp) + len(ap)
        return BookDelta(int(d["E"]) * _MS, recv_ts, inst.symbol, last, bp, bs, ap, az, first, prev)

    def _resolve_market(self, lineno: int, d: dict[str, Any]) -> None:
        if self.feed.market == "auto":
            self.feed.market = "usdm" if "pu" in d else "spot"
        elif self.feed.market == "usdm" and "pu" not in d:
            raise DataError(self.path, lineno, "a futures (usdm) capture needs 'pu' on every depth diff")

    # ---------------------------------------------------------------- messages
    def _quote(self, lineno: int, recv_ts: int, d: dict[str, Any]) -> Quote:
        inst = self._instrument(lineno, d.get("s"))
        pg, sg = inst.price_grid, inst.size_grid
        try:
            bid_px, bid_sz, ask_px, ask_sz = pg.to_int(d["b"]), sg.to_int(d["B"]), pg.to_int(d["a"]), sg.to_int(d["A"])
        except OffGridError as exc:
            raise DataError(self.path, lineno, str(exc)) from exc
        ts = int(d["E"]) * _MS if "E" in d else recv_ts
        return Quote(ts, recv_ts, inst.symbol, int(d["u"]), bid_px, bid_sz, ask_px, ask_sz)

    def _trade(self, lineno: int, recv_ts: int, d: dict[str, Any]) -> Trade:
        inst = self._instrument(lineno, d.get("s"))
        try:
            px, sz = inst.price(d["p"]), inst.size(d["q"])
        except OffGridError as exc:
            raise DataError(self.path, lineno, str(exc)) from exc
        # "m": the buyer was the maker, so the seller took liquidity.
        aggressor = Side.SELL if d["m"] else Side.BUY
        return Trade(int(d["T"]) * _MS, recv_ts, inst.symbol, int(d["t"]), px, sz, aggressor, int(d["t"]))

    def _levels(self, lineno: int, rows: list[list[str]], inst: Instrument) -> tuple[list[int], list[int]]:
        to_px, to_sz = inst.price_grid.to_int, inst.size_grid.to_int
        try:
            px = [to_px(r[0]) for r in rows]
            sz = [to_sz(r[1]) for r in rows]
        except OffGridError as exc:
            raise DataError(self.path, lineno, str(exc)) from exc
        if any(s < 0 for s in sz):
            raise DataError(self.path, lineno, "negative level size")
        return px, sz

    def _instrument(self, lineno: int, symbol: str | None) -> Instrument:
        if self.inst is None:
            market = self.feed.market if self.feed.market != "auto" else "spot"
            if symbol is None:
                return self._default_for(lineno, market, "BTCUSDT")
            self.inst = self._default_for(lineno, market, symbol)
        elif symbol is not None and symbol != self.inst.symbol:
            raise DataError(self.path, lineno, f"symbol {symbol!r} in a {self.inst.symbol} capture")
        return self.inst

    def _default_for(self, lineno: int | None, market: str, symbol: str) -> Instrument:
        try:
            return _KNOWN[(market, symbol)]
        except KeyError:
            raise DataError(
                self.path, lineno, f"no built-in {market} instrument for {symbol!r}: pass instrument=Instrument(...)"
            ) from None
