"""Binance raw captures: ``<local_receive_ts_ns> <json>`` lines from the combined websocket
stream (``depthUpdate`` diffs, ``bookTicker``, ``trade``) plus one REST depth snapshot.

The book is rebuilt with Binance's documented procedure ("How to manage a local order book
correctly", spot and USD-M futures):

1. buffer the diffs that arrive before the snapshot;
2. drop every diff with ``u <= lastUpdateId``;
3. the first diff applied must satisfy ``U <= lastUpdateId + 1 <= u``;
4. afterwards each diff must continue the previous one: on spot ``U == previous u + 1``;
   on futures ``pu == previous u``.

COIN-M (inverse, ``dapi``) captures follow the futures rules. Which market a capture is comes
from its messages: COIN-M ones carry ``ps`` (the pair, ``"BTCUSD"``) and symbols such as
``BTCUSD_PERP``; futures diffs carry ``pu``; anything else is spot.

The instrument (grids, currency, contract size) is :func:`infer_instrument`'s: the built-in
BTCUSDT instruments for the shipped captures, else grids inferred from a first pass over the
whole file (a byte scan of the price and quantity strings), unless given.

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

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import numpy as np

from vtrade.core.errors import DataError, OffGridError, SequenceGapError
from vtrade.core.events import BookDelta, BookSnapshot, MarketEvent, Quote, Side, Trade
from vtrade.core.instruments import BINANCE_BTCUSDT_SPOT, BINANCE_BTCUSDT_USDM, Instrument
from vtrade.core.numbers import Number
from vtrade.market.feeds._io import numbered_lines, open_source

_KNOWN = {("spot", "BTCUSDT"): BINANCE_BTCUSDT_SPOT, ("usdm", "BTCUSDT"): BINANCE_BTCUSDT_USDM}
MARKETS = ("spot", "usdm", "coinm")
MARKET_NAMES = {"spot": "Binance spot", "usdm": "Binance USD-M", "coinm": "Binance COIN-M"}
_VENUES = {"spot": "BINANCE", "usdm": "BINANCE_USDM", "coinm": "BINANCE_COINM"}
# COIN-M symbols: <pair>_PERP or <pair>_<YYMMDD> delivery, the pair quoted in USD (USD-M's
# delivery contracts, e.g. BTCUSDT_240927, are quoted in USDT/USDC and do not match).
_COINM_SYMBOL = re.compile(r"[A-Z0-9]+USD_(PERP|\d{6})")
#: Contract sizes Binance publishes for COIN-M (exchangeInfo ``contractSize``): 100 USD for the
#: BTCUSD contracts, 10 USD for every other pair.
COINM_CONTRACT_SIZE = {"BTCUSD": Decimal(100)}
COINM_DEFAULT_CONTRACT_SIZE = Decimal(10)
# Quote assets of spot symbols, longest first so that FDUSD wins over USD.
_QUOTES = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "EUR", "TRY", "BRL", "JPY", "BTC", "ETH", "BNB", "USD")
_MS = 1_000_000
_decode = msgspec.json.Decoder().decode


def looks_like_binance(line: str) -> bool:
    """True for a ``<int> {json}`` line such as a Binance capture starts with."""
    head, _, rest = line.partition(" ")
    return head.isdigit() and rest.startswith("{")


def market_of_diff(d: dict[str, Any]) -> str:
    """The market a depth diff comes from: ``"coinm"``, ``"usdm"`` or ``"spot"``.

    >>> market_of_diff({"s": "BTCUSD_PERP", "ps": "BTCUSD", "pu": 1}), market_of_diff({"s": "BTCUSDT", "pu": 1})
    ('coinm', 'usdm')
    """
    if "ps" in d or _COINM_SYMBOL.fullmatch(str(d.get("s", ""))):
        return "coinm"
    return "usdm" if "pu" in d else "spot"


@dataclass(frozen=True, slots=True)
class GridScan:
    """What a first pass over a capture found: its line count and the most significant
    decimals any price and any quantity string carries (trailing zeros stripped)."""

    lines: int
    price_decimals: int
    size_decimals: int
    seconds: float


@dataclass(frozen=True, slots=True)
class InferredInstrument:
    """The instrument of a Binance capture and where each part of it came from.

    ``source`` is ``"built-in"`` (a shipped capture's known instrument), ``"given"`` (every
    grid came from the caller) or ``"inferred"`` (at least one grid came from ``scan``, a
    first pass over the whole file). ``tick_source``/``lot_source``/``contract_source`` say
    the same per part. :meth:`describe` is the line the CLI prints.
    """

    instrument: Instrument
    market: str
    source: str
    tick_source: str
    lot_source: str
    contract_source: str | None = None
    scan: GridScan | None = None

    def describe(self) -> str:
        """One line: instrument, market, grid and where the grid came from.

        >>> infer_instrument("data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz").describe()
        'BTCUSDT (Binance USD-M): tick 0.1, lot 0.001 — built-in'
        """
        head = self.instrument.describe(venue=MARKET_NAMES[self.market])
        return f"{head} — {self._where()}"

    def where(self) -> str:
        """Where the grid came from, in words: "built-in", "given", "tick given, lot inferred from …"."""
        return self._where()

    def _where(self) -> str:
        def said(s: str) -> str:
            return f"inferred from a first pass over {self.scan.lines:,} lines" if s == "inferred" and self.scan else s

        if self.tick_source == self.lot_source:
            text = said(self.tick_source)
        else:
            text = f"tick {said(self.tick_source)}, lot {said(self.lot_source)}"
        return text if self.contract_source is None else f"{text}; contract size {self.contract_source}"


def infer_instrument(
    path: str | Path,
    market: str = "auto",
    *,
    tick_size: Number | None = None,
    lot_size: Number | None = None,
    contract_size: Number | None = None,
) -> InferredInstrument:
    """The instrument of the Binance capture at ``path``: market, symbol, grids, currency.

    The market and symbol come from the first depth diff (:func:`market_of_diff`). The
    shipped BTCUSDT captures get their built-in instruments (unless a grid is given). For
    any other symbol, each grid not given is inferred from a first pass over the whole file
    (:func:`scan_grids`): the finest decimal any price (quantity) string carries. A grid
    read from the first lines alone would not do: captures print 3 quantity decimals for
    thousands of lines and then 8. COIN-M contracts are inverse, sized in contracts of
    ``contract_size`` USD (Binance's 100 for BTCUSD, 10 for other pairs, unless given) and
    settle in the base coin, the instrument's ``currency``.

    >>> inferred = infer_instrument("data/crypto/hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz", tick_size="0.01")
    >>> str(inferred.instrument.lot_size), inferred.tick_source, inferred.lot_source
    ('1E-8', 'given', 'built-in')
    """
    p = Path(path)
    if market not in ("auto", *MARKETS):
        raise ValueError(f"market must be 'auto', 'spot', 'usdm' or 'coinm', got {market!r}")
    found, symbol, pair = _probe(p)
    market = found if market == "auto" else market
    if contract_size is not None and market != "coinm":
        raise DataError(p, None, f"contract_size applies to COIN-M (inverse) contracts; this is a {market} capture")
    known = _KNOWN.get((market, symbol))
    scan: GridScan | None = None
    tick_src = lot_src = "given"
    if tick_size is None or lot_size is None:  # a grid not given: built in for this market, else scanned
        if known is not None:
            grid_tick, grid_lot, grid_src = known.tick_size, known.lot_size, "built-in"
        else:
            scan = scan_grids(p)
            grid_tick, grid_lot, grid_src = _step(scan.price_decimals), _step(scan.size_decimals), "inferred"
        if tick_size is None:
            tick_size, tick_src = grid_tick, grid_src
        if lot_size is None:
            lot_size, lot_src = grid_lot, grid_src
    tick, lot = _positive(p, "tick_size", tick_size), _positive(p, "lot_size", lot_size)
    contract_src = None
    if known is not None and tick == known.tick_size and lot == known.lot_size:
        inst = known  # the very object: replays of the shipped captures stay byte-identical
    else:
        inst, contract_src = binance_instrument(market, symbol, tick, lot, pair=pair, contract_size=contract_size,
                                                origin=p)  # fmt: skip
    sources = {tick_src, lot_src}
    source = "inferred" if "inferred" in sources else "given" if "given" in sources else "built-in"
    return InferredInstrument(inst, market, source, tick_src, lot_src, contract_src, scan)


def binance_instrument(
    market: str,
    symbol: str,
    tick_size: Number,
    lot_size: Number,
    *,
    pair: str | None = None,
    contract_size: Number | None = None,
    origin: object = "Binance",
) -> tuple[Instrument, str | None]:
    """The instrument of ``symbol`` on a Binance ``market`` with the given grids, and where a
    COIN-M contract size came from (None for spot and USD-M). Shared by the capture reader and
    the live feed, so a symbol is the same instrument whichever way its data arrives.

    >>> inst, said = binance_instrument("coinm", "ETHUSD_PERP", "0.01", "1")
    >>> inst.currency, str(inst.contract_size), said
    ('ETH', '10', "10 USD (Binance's published size for ETHUSD)")
    >>> binance_instrument("spot", "ETHBTC", "0.00001", "0.0001")[0].currency
    'BTC'
    """
    if market not in MARKETS:
        raise ValueError(f"market must be 'spot', 'usdm' or 'coinm', got {market!r}")
    tick, lot = _positive(origin, "tick_size", tick_size), _positive(origin, "lot_size", lot_size)
    if market == "coinm":
        pair = pair or symbol.split("_")[0]
        said = "given"
        if contract_size is None:
            contract_size = COINM_CONTRACT_SIZE.get(pair, COINM_DEFAULT_CONTRACT_SIZE)
            said = f"{contract_size} USD (Binance's published size for {pair})"
        base = pair[: -len("USD")] if pair.endswith("USD") else pair
        inst = Instrument(
            symbol, tick, lot, currency=base, venue=_VENUES[market], asset_class="crypto_inverse",
            contract_size=_positive(origin, "contract_size", contract_size), inverse=True,
        )  # fmt: skip
        return inst, said
    quote = next((q for q in _QUOTES if symbol.endswith(q) and len(symbol) > len(q)), "USD")
    asset_class = "crypto" if market == "spot" else "crypto_perp"
    return Instrument(symbol, tick, lot, currency=quote, venue=_VENUES[market], asset_class=asset_class), None


def _step(decimals: int) -> Decimal:
    return Decimal(1).scaleb(-decimals)


def _positive(path: object, name: str, value: Number) -> Decimal:
    try:
        d = Decimal(str(value))
    except ArithmeticError:
        d = Decimal("NaN")
    if not d.is_finite() or d <= 0:
        raise DataError(path, None, f"{name} must be a positive number, got {value!r}")
    return d


_PROBE_LINES = 10_000


def _probe(path: Path) -> tuple[str, str, str | None]:
    """(market, symbol, pair) from the first depth diff (or symbol-bearing message, for COIN-M)."""
    for lineno, line in numbered_lines(path):
        body = line.partition(" ")[2]
        try:
            msg = _decode(body)
        except msgspec.DecodeError as exc:
            raise DataError(path, lineno, f"malformed JSON ({exc})") from exc
        data = msg.get("data", msg) if isinstance(msg, dict) else None
        if not isinstance(data, dict):
            raise DataError(path, lineno, "expected a JSON object")
        symbol = data.get("s") or data.get("symbol")
        if data.get("e") == "depthUpdate" and isinstance(symbol, str):
            return market_of_diff(data), symbol, data.get("ps")
        if lineno >= _PROBE_LINES:
            break
    raise DataError(path, None, f"no depth diff in the first {_PROBE_LINES:,} lines: cannot tell the market")


_QUOTE, _DOT, _ZERO = ord('"'), ord("."), ord("0")
_PRICE_KEY = np.zeros(256, dtype=bool)
_PRICE_KEY[list(b"bap")] = True  # "b":"61800.3" (bookTicker bid), "a" (ask), "p" (trade price)
_SIZE_KEY = np.zeros(256, dtype=bool)
_SIZE_KEY[list(b"BAq")] = True  # "B":"2.507" (bid size), "A" (ask size), "q" (trade quantity)
_BLOCK = 1 << 20  # compressed bytes per read: ~8 MB of text, bounded memory on any file size


def scan_grids(path: str | Path) -> GridScan:
    """First pass over a capture: the finest decimal of any price and any quantity string.

    A byte scan, not a parse: every quoted number with a decimal point is classified by what
    precedes its opening quote (``[`` a level's price, ``,`` a level's quantity, ``"b":`` etc.
    a bookTicker/trade field) and its fraction measured after stripping trailing zeros
    (``"61800.30"`` has 1 significant decimal). NumPy does it a block at a time, several times
    faster than parsing the JSON (measured on the shipped USD-M capture: about a third of the full parse).

    >>> s = scan_grids("data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz")
    >>> s.lines, s.price_decimals, s.size_decimals
    (93954, 1, 3)
    """
    started = time.perf_counter()
    p = Path(path)
    with open_source(p) as src:  # the same checks and gzip handling as every feed
        lines = price = size = 0
        rest = b""
        while True:
            chunk = src.stream.read(_BLOCK)
            text = rest + chunk
            if chunk:  # keep the unfinished last line for the next block
                cut = text.rfind(b"\n") + 1
                text, rest = text[:cut], text[cut:]
            lines += text.count(b"\n") + (0 if chunk or not text or text.endswith(b"\n") else 1)
            if text:
                dp, ds = _block_decimals(text)
                price, size = max(price, dp), max(size, ds)
            if not chunk:
                break
        src.check_complete()  # a broken gzip stream: DataError at the first line it did not deliver
    return GridScan(lines, price, size, time.perf_counter() - started)


def _block_decimals(text: bytes) -> tuple[int, int]:
    a = np.frombuffer(text, dtype=np.uint8)
    quotes = np.flatnonzero(a == _QUOTE)
    dots = np.flatnonzero(a == _DOT)
    k = np.searchsorted(quotes, dots)
    inside = (k > 0) & (k < quotes.size)  # a dot between two quotes: a quoted decimal string
    dots, k = dots[inside], k[inside]
    if not dots.size:
        return 0, 0
    close, opening = quotes[k], quotes[k - 1]
    frac = close - dots - 1
    # Significant decimals: the position of the last non-zero digit after the dot.
    sig = np.zeros(dots.size, dtype=np.int64)
    for i in range(1, int(frac.max()) + 1):
        sig[(frac >= i) & (a[np.minimum(dots + i, a.size - 1)] != _ZERO)] = i
    # Compact JSON as Binance sends it ("b":"1.5", ["1.5","2"]); one space after ':' or ','
    # as json.dumps writes by default is allowed too.
    at = opening - 1 - (a[opening - 1] == ord(" "))
    before, key = a[at], a[np.maximum(at - 2, 0)]
    colon = before == ord(":")
    is_price = (before == ord("[")) | (colon & _PRICE_KEY[key])
    is_size = (before == ord(",")) | (colon & _SIZE_KEY[key])
    dp = int(sig[is_price].max()) if is_price.any() else 0
    ds = int(sig[is_size].max()) if is_size.any() else 0
    return dp, ds


class MessageError(ValueError):
    """A Binance message that cannot become an event (off-grid price, negative size): the
    capture reader names the file and line, the live feed counts it and skips it."""


_M = TypeVar("_M", bound=MarketEvent)


def sequence_verdict(
    market: str, snapshot_id: int, last_u: int | None, first: int, last: int, prev: int
) -> tuple[str, str]:
    """Binance's rule for one depth diff (``U`` = ``first``, ``u`` = ``last``, ``pu`` = ``prev``)
    against a book started from snapshot ``snapshot_id`` whose last applied diff ended at ``last_u``
    (None: no diff applied yet). Returns ``(verdict, why)``: ``"apply"``; ``"drop"`` (older than
    the snapshot, before the first applied diff); ``"old"`` (at or before the last applied diff:
    a duplicate or a late message); ``"gap"`` (updates are missing: the book must be rebuilt).

    >>> sequence_verdict("spot", 100, None, 90, 100, 0)[0], sequence_verdict("spot", 100, None, 95, 105, 0)[0]
    ('drop', 'apply')
    >>> sequence_verdict("spot", 100, 105, 107, 110, 0)
    ('gap', 'sequence gap: U=107 but the previous diff ended at u=105 (expected 106)')
    >>> sequence_verdict("usdm", 100, 105, 109, 110, 105)[0], sequence_verdict("usdm", 100, 110, 109, 110, 105)[0]
    ('apply', 'old')
    """
    if last_u is None:
        if last <= snapshot_id:
            return "drop", f"u={last} is not after the snapshot's lastUpdateId={snapshot_id}"
        if not first <= snapshot_id + 1 <= last:
            return "gap", (f"first diff after snapshot {snapshot_id} has U={first}, u={last}: "
                           f"Binance requires U <= {snapshot_id + 1} <= u")  # fmt: skip
        return "apply", ""
    if market in ("usdm", "coinm"):
        if prev == last_u:
            return "apply", ""
        if last <= last_u:
            return "old", f"u={last} was already applied (the book is at u={last_u})"
        return "gap", f"sequence gap: pu={prev} but the previous diff ended at u={last_u}"
    if first == last_u + 1:
        return "apply", ""
    if last <= last_u:
        return "old", f"u={last} was already applied (the book is at u={last_u})"
    return "gap", f"sequence gap: U={first} but the previous diff ended at u={last_u} (expected {last_u + 1})"


class BinanceDecoder:
    """Binance messages of one instrument as events: the REST depth snapshot, ``depthUpdate``
    diffs, ``bookTicker`` and ``trade``. ``recv_ts`` is when the message reached us; ``ts`` is
    the exchange's event time ``E`` (ms, as ns) where the message has one. Raises
    :class:`MessageError` for values off the instrument's grid and KeyError/TypeError/ValueError
    for a message of the wrong shape. The capture reader and the live feed both decode with it.

    >>> from vtrade.core.instruments import BINANCE_BTCUSDT_USDM
    >>> d = BinanceDecoder(BINANCE_BTCUSDT_USDM)
    >>> d.trade(5, {"e": "trade", "T": 1, "t": 9, "p": "61800.30", "q": "0.006", "m": False}).price
    618003
    """

    __slots__ = ("inst",)

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst

    def snapshot(self, recv_ts: int, msg: dict[str, Any]) -> BookSnapshot:
        """The REST depth snapshot (``lastUpdateId``, ``bids``, ``asks``; futures add ``E``)."""
        last_id = int(msg["lastUpdateId"])
        bp, bs = self.levels(msg["bids"])
        ap, az = self.levels(msg["asks"])
        ts = int(msg["E"]) * _MS if "E" in msg else recv_ts
        return BookSnapshot(ts, recv_ts, self.inst.symbol, last_id, bp, bs, ap, az)

    def delta(self, recv_ts: int, d: dict[str, Any]) -> BookDelta:
        """A ``depthUpdate`` diff (its sequencing is :func:`sequence_verdict`'s business)."""
        bp, bs = self.levels(d["b"])
        ap, az = self.levels(d["a"])
        prev = int(d["pu"]) if "pu" in d else 0
        return BookDelta(int(d["E"]) * _MS, recv_ts, self.inst.symbol, int(d["u"]), bp, bs, ap, az, int(d["U"]), prev)

    def quote(self, recv_ts: int, d: dict[str, Any]) -> Quote:
        """A ``bookTicker`` (spot's has no event time: ``ts`` is then ``recv_ts``)."""
        pg, sg = self.inst.price_grid, self.inst.size_grid
        try:
            bid_px, bid_sz, ask_px, ask_sz = pg.to_int(d["b"]), sg.to_int(d["B"]), pg.to_int(d["a"]), sg.to_int(d["A"])
        except OffGridError as exc:
            raise MessageError(str(exc)) from exc
        ts = int(d["E"]) * _MS if "E" in d else recv_ts
        return Quote(ts, recv_ts, self.inst.symbol, int(d["u"]), bid_px, bid_sz, ask_px, ask_sz)

    def trade(self, recv_ts: int, d: dict[str, Any]) -> Trade:
        """A ``trade``; ``ts`` is its trade time ``T``."""
        try:
            px, sz = self.inst.price(d["p"]), self.inst.size(d["q"])
        except OffGridError as exc:
            raise MessageError(str(exc)) from exc
        # "m": the buyer was the maker, so the seller took liquidity.
        aggressor = Side.SELL if d["m"] else Side.BUY
        return Trade(int(d["T"]) * _MS, recv_ts, self.inst.symbol, int(d["t"]), px, sz, aggressor, int(d["t"]))

    def levels(self, rows: list[list[str]]) -> tuple[list[int], list[int]]:
        """``[[price, qty], ...]`` as (ticks, lots); a negative size is an error."""
        to_px, to_sz = self.inst.price_grid.to_int, self.inst.size_grid.to_int
        try:
            px = [to_px(r[0]) for r in rows]
            sz = [to_sz(r[1]) for r in rows]
        except OffGridError as exc:
            raise MessageError(str(exc)) from exc
        if any(s < 0 for s in sz):
            raise MessageError("negative level size")
        return px, sz


def known_instrument(market: str, symbol: str) -> Instrument | None:
    """The built-in instrument of a shipped capture's symbol (BTCUSDT spot and USD-M), else None."""
    return _KNOWN.get((market, symbol))


def grids_from_text(text: bytes) -> tuple[Decimal, Decimal]:
    """(tick, lot) inferred from Binance JSON text as for a capture (:func:`scan_grids`): the
    finest decimal any price and any quantity string carries.

    >>> grids_from_text(b'{"bids":[["61800.10","0.002"]],"asks":[["61800.20","1.5"]]}')
    (Decimal('0.1'), Decimal('0.001'))
    """
    dp, ds = _block_decimals(text)
    return _step(dp), _step(ds)


class BinanceFeed:
    """Streaming reader of one Binance capture file; iterate it for events.

    ``market`` is ``"spot"``, ``"usdm"``, ``"coinm"`` or ``"auto"`` (decided by the first
    depth diff, see the module doc). ``instrument`` defaults to :func:`infer_instrument`'s
    (built-in for the shipped BTCUSDT captures, else inferred from the file), resolved on the
    first iteration. After iteration, ``stats`` counts what was read, applied and dropped.
    """

    def __init__(self, path: str | Path, *, market: str = "auto", instrument: Instrument | None = None) -> None:
        if market not in ("auto", *MARKETS):
            raise ValueError(f"market must be 'auto', 'spot', 'usdm' or 'coinm', got {market!r}")
        self.path = Path(path)
        self.market = market
        self.instrument = instrument
        self.stats: dict[str, int] = {}

    def __iter__(self) -> Iterator[MarketEvent]:
        self.resolve_instrument()
        return _Reader(self).events()

    def resolve_instrument(self) -> Instrument:
        """The instrument the events are on: the one given, else :func:`infer_instrument`'s."""
        if self.instrument is None:
            inferred = infer_instrument(self.path, self.market)
            self.instrument, self.market = inferred.instrument, inferred.market
        return self.instrument


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
        inst = self._instrument(lineno, msg.get("symbol"))  # COIN-M snapshots name their symbol
        snap = self._decoded(lineno, BinanceDecoder(inst).snapshot, recv_ts, msg)
        self.snapshot_id = snap.seq
        yield snap
        pending, self.pending = self.pending, []
        for p_line, p_recv, data in pending:
            delta = self._on_diff(p_line, p_recv, data)
            if delta is not None:
                yield delta

    def _on_diff(self, lineno: int, recv_ts: int, d: dict[str, Any]) -> BookDelta | None:
        assert self.snapshot_id is not None
        verdict, why = sequence_verdict(self.feed.market, self.snapshot_id, self.last_u, int(d["U"]), int(d["u"]),
                                        int(d["pu"]) if "pu" in d else 0)  # fmt: skip
        if verdict == "drop":
            self.stats["diffs_dropped"] += 1
            return None
        if verdict != "apply":  # a gap, or an old diff after the book started: the file is broken
            raise SequenceGapError(self.path, lineno, why)
        inst = self._instrument(lineno, d.get("s"))
        delta = self._decoded(lineno, BinanceDecoder(inst).delta, recv_ts, d)
        self.last_u = delta.seq
        self.stats["diffs_applied"] += 1
        self.stats["level_updates"] += len(delta.bid_px) + len(delta.ask_px)
        return delta

    def _resolve_market(self, lineno: int, d: dict[str, Any]) -> None:
        if self.feed.market == "auto":
            self.feed.market = market_of_diff(d)
        elif self.feed.market in ("usdm", "coinm") and "pu" not in d:
            raise DataError(self.path, lineno, f"a futures ({self.feed.market}) capture needs 'pu' on every depth diff")

    # ---------------------------------------------------------------- messages
    def _quote(self, lineno: int, recv_ts: int, d: dict[str, Any]) -> Quote:
        return self._decoded(lineno, BinanceDecoder(self._instrument(lineno, d.get("s"))).quote, recv_ts, d)

    def _trade(self, lineno: int, recv_ts: int, d: dict[str, Any]) -> Trade:
        return self._decoded(lineno, BinanceDecoder(self._instrument(lineno, d.get("s"))).trade, recv_ts, d)

    def _decoded(self, lineno: int, decode: Callable[[int, dict[str, Any]], _M], recv_ts: int, d: dict[str, Any]) -> _M:
        try:
            return decode(recv_ts, d)
        except MessageError as exc:
            raise DataError(self.path, lineno, str(exc)) from exc

    def _instrument(self, lineno: int, symbol: str | None) -> Instrument:
        assert self.inst is not None  # BinanceFeed.__iter__ resolves it first
        if symbol is not None and symbol != self.inst.symbol:
            raise DataError(self.path, lineno, f"symbol {symbol!r} in a {self.inst.symbol} capture")
        return self.inst
