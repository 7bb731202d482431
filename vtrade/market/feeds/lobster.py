"""LOBSTER (NASDAQ order-by-order) message + orderbook files as a stream of L3 market events.

A LOBSTER sample is two aligned CSV files without a header (see ``PROVENANCE.md``):
``{SYMBOL}_{DATE}_{START_MS}_{END_MS}_message_{L}`` with one event per row
(``time,event_type,order_id,size,price,direction``) and ``..._orderbook_{L}`` whose row ``i``
is the visible top-``L`` book after message ``i`` (``ask_px,ask_sz,bid_px,bid_sz`` per level).

:func:`read_lobster` streams both files together and yields:

1. a ``BookSnapshot`` (``seq`` 0): orderbook row 0 with message 0 undone, i.e. the book just
   before the first message, cut to ``L`` levels per side;
2. for every message ``i`` (``seq`` = its 1-based row number) its event, ``OrderAdded``,
   ``OrderCancelled``, ``OrderDeleted``, ``OrderExecuted``, ``Trade`` or ``TradingStatus``;
3. right after it, when row ``i`` shows levels strictly beyond row ``i-1``'s full visible
   window, a ``BookDelta`` *revealing* them: a level-``L`` file has no message for a deeper
   level that moves up when a visible one empties, so the orderbook file is the only source.
   Nothing inside the previous window is ever patched; that must follow from the messages.

A consumer rebuilds the visible book exactly with an :class:`~vtrade.market.l3book.L3Book`:
apply every event, then ``truncate(L)``.

Without its orderbook file a message file still reads, with :class:`LobsterMessages`: the
book starts empty and holds only the orders the file shows being submitted. Orders resting
before the file starts are unknown; the messages about them are counted and listed, never
turned into book liquidity (see the class).

>>> import pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "XYZ_2012-06-21_34200000_57600000_message_1.csv").write_text(
...     "34200.5,1,11,100,1000100,1\\n34201.25,4,11,40,1000100,1\\n")
>>> _ = (d / "XYZ_2012-06-21_34200000_57600000_orderbook_1.csv").write_text(
...     "1000300,5,1000100,300\\n1000300,5,1000100,260\\n")
>>> for ev in read_lobster(d / "XYZ_2012-06-21_34200000_57600000_message_1.csv"):
...     print(type(ev).__name__, ev.seq, ev.ts)
BookSnapshot 0 1340285400500000000
OrderAdded 1 1340285400500000000
OrderExecuted 2 1340285401250000000
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

from vtrade.core.errors import DataError, OffGridError
from vtrade.core.events import (
    BookDelta,
    BookSnapshot,
    MarketEvent,
    OrderAdded,
    OrderCancelled,
    OrderDeleted,
    OrderExecuted,
    Side,
    Trade,
    TradingStatus,
)
from vtrade.core.instruments import Instrument, us_equity
from vtrade.market.feeds._io import numbered_lines

__all__ = [
    "LobsterFiles",
    "LobsterMessages",
    "LobsterOffGridError",
    "StaleOrder",
    "UnknownOrderRef",
    "lobster_files",
    "read_lobster",
]

NEW_YORK = ZoneInfo("America/New_York")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS = 1_000_000_000
_ASK_PAD = 9999999999  # LOBSTER's filler for an empty ask level (size 0)
_BID_PAD = -9999999999  # ... and for an empty bid level
_PRICE_SCALE = 10_000  # LOBSTER prices are USD x 10000

_NAME = re.compile(
    r"^(?P<symbol>.+?)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)_"
    r"(?P<kind>message|orderbook)_(?P<levels>\d+)(?P<suffix>(?:\.[A-Za-z0-9]+)*)$"
)
_TIME = re.compile(r"^(\d+)(?:\.(\d+))?$")

_TYPE_NAMES = {
    1: "new order",
    2: "partial cancel",
    3: "delete",
    4: "visible execution",
    5: "hidden execution",
    6: "cross trade",
}
_HALT_STATES = {
    -1: (True, "trading halted"),
    0: (True, "quoting resumed, trading still halted"),
    1: (False, "trading resumed"),
}


class LobsterOffGridError(DataError, OffGridError):
    """A LOBSTER price is not on the instrument's tick grid: a DataError (names file and line)
    that is also an OffGridError."""


@dataclass(frozen=True, slots=True)
class LobsterFiles:
    """A LOBSTER message/orderbook pair and what its file names say.

    ``start_ms``/``end_ms`` are the requested period in milliseconds after midnight, New York
    time, on ``date``; ``levels`` is the depth of the orderbook file. ``orderbook`` is None
    when it was not required and is missing (a message file alone).
    """

    message: Path
    orderbook: Path | None
    symbol: str
    date: date
    start_ms: int
    end_ms: int
    levels: int


def lobster_files(
    message_path: str | Path, orderbook_path: str | Path | None = None, *, require_orderbook: bool = True
) -> LobsterFiles:
    """Parse a LOBSTER message file's name and find its orderbook file next to it.

    ``AAPL_2012-06-21_34200000_57600000_message_10.first999.csv.gz`` pairs with
    ``AAPL_2012-06-21_34200000_57600000_orderbook_10.first999.csv.gz`` (or the same name with
    or without ``.gz``). DataError when the name is not LOBSTER's or the orderbook is missing
    (with ``require_orderbook=False`` a missing one gives ``orderbook=None``).

    >>> f = lobster_files("GOOG_2012-06-21_34200000_57600000_message_1.csv",
    ...                   "GOOG_2012-06-21_34200000_57600000_orderbook_1.csv")
    >>> f.symbol, f.date.isoformat(), f.levels, f.start_ms
    ('GOOG', '2012-06-21', 1, 34200000)
    """
    msg = Path(message_path)
    m = _NAME.match(msg.name)
    if m is None or m["kind"] != "message":
        raise DataError(
            msg,
            None,
            "not a LOBSTER message file name (expected SYMBOL_YYYY-MM-DD_STARTMS_ENDMS_message_LEVELS[.csv][.gz])",
        )
    try:
        day = date.fromisoformat(m["date"])
    except ValueError:
        raise DataError(msg, None, f"invalid date {m['date']!r} in the file name") from None
    levels = int(m["levels"])
    if levels < 1:
        raise DataError(msg, None, "the file name gives 0 levels")
    book: Path | None
    if orderbook_path is not None:
        book = Path(orderbook_path)
    else:
        stem = msg.name[: m.start("kind")] + "orderbook_" + m["levels"]
        suffix = m["suffix"]
        alt = suffix[:-3] if suffix.endswith(".gz") else suffix + ".gz"
        candidates = [msg.with_name(stem + suffix), msg.with_name(stem + alt)]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None and require_orderbook:
            raise DataError(
                msg, None, f"its orderbook file is missing (looked for {', '.join(c.name for c in candidates)})"
            )
        book = found
    return LobsterFiles(msg, book, m["symbol"], day, int(m["start"]), int(m["end"]), levels)


class _Clock:
    """LOBSTER ``time`` (seconds after midnight, New York wall clock, decimal text) -> UTC ns.

    Parsed as text so nanoseconds survive exactly; the UTC offset is computed per local hour
    (cached), so a daylight-saving change on the date is honoured.
    """

    def __init__(self, day: date) -> None:
        self.day = day
        self._hour_start: dict[int, int] = {}

    def __call__(self, text: str) -> int:
        m = _TIME.match(text)
        if m is None:
            raise ValueError(f"time {text!r} is not seconds after midnight")
        whole, frac = m.group(1), m.group(2) or ""
        if len(frac) > 9:
            if frac[9:].strip("0"):
                raise ValueError(f"time {text!r} is finer than a nanosecond")
            frac = frac[:9]
        secs = int(whole)
        if secs >= 86400:
            raise ValueError(f"time {text!r} is not within the day")
        hour = secs // 3600
        start = self._hour_start.get(hour)
        if start is None:
            local = datetime.combine(self.day, time(hour), tzinfo=NEW_YORK)
            start = (local - _EPOCH) // timedelta(microseconds=1) * 1000
            self._hour_start[hour] = start
        return start + (secs - hour * 3600) * _NS + int(frac.ljust(9, "0"))


class _Scale:
    """Exact conversion of a LOBSTER integer to grid counts: ``value * den / num`` must be whole."""

    def __init__(self, unit: Fraction) -> None:
        self.num, self.den = unit.numerator, unit.denominator

    def __call__(self, value: int) -> int | None:
        q, r = divmod(value * self.den, self.num)
        return None if r else q


_Row = tuple[list[int], list[int], list[int], list[int]]  # bid_px, bid_sz, ask_px, ask_sz (best first)


def read_lobster(
    message_path: str | Path,
    orderbook_path: str | Path | None = None,
    *,
    instrument: Instrument | None = None,
    levels: int | None = None,
) -> Iterator[MarketEvent]:
    """Stream a LOBSTER sample as market events (see the module docstring for what is yielded).

    ``instrument`` defaults to :func:`lobster_instrument` (half-cent grid) for the file name's symbol; prices
    become its ticks (off-grid -> :class:`LobsterOffGridError`) and sizes its lots. ``levels``
    defaults to the file name's and must match the orderbook's columns. Times are exact UTC
    nanoseconds. Any malformed input raises DataError naming the file and line: a bad file name,
    a missing orderbook or a wrong ``levels`` at once, bad content when iteration reaches it
    (the files are read line by line, never loaded whole).
    """
    files = lobster_files(message_path, orderbook_path)
    if levels is None:
        levels = files.levels
    elif levels != files.levels:
        raise DataError(files.message, None, f"levels={levels} but the file name says {files.levels}")
    inst = instrument if instrument is not None else lobster_instrument(files.symbol)
    assert files.orderbook is not None  # lobster_files requires it (require_orderbook=True)
    return _stream(files, files.orderbook, inst, levels)


def lobster_instrument(symbol: str) -> Instrument:
    """The default instrument for a LOBSTER sample: a US stock on a half-cent price grid.

    NASDAQ quotes are on the cent grid, but hidden midpoint orders execute at half cents
    (GOOG prints 577.775 on 2012-06-21), and a print must be representable exactly. A
    half-cent grid holds both; the cent rule for *orders* belongs to the order-entry checks.
    """
    return us_equity(symbol, tick_size="0.005")


def _stream(files: LobsterFiles, orderbook: Path, inst: Instrument, levels: int) -> Iterator[MarketEvent]:
    parse_msg = _MessageParser(files, inst)
    parse_row = _RowParser(orderbook, inst, levels)
    msgs = numbered_lines(files.message)
    rows = numbered_lines(orderbook)
    seq = 0
    last_ts = 0
    prev: _Row | None = None
    msg_line = row_line = 0
    while True:
        m = next(msgs, None)
        r = next(rows, None)
        if m is None or r is None:
            if m is not None:
                raise DataError(
                    orderbook,
                    row_line + 1,
                    f"the orderbook ends after {seq} rows, but the message file goes on (line {m[0]})",
                )
            if r is not None:
                raise DataError(
                    files.message,
                    msg_line + 1,
                    f"the message file ends after {seq} rows, but the orderbook goes on (line {r[0]})",
                )
            return
        (msg_line, msg_text), (row_line, row_text) = m, r
        seq += 1
        ev, undo = parse_msg(msg_line, msg_text, seq)
        if ev.ts < last_ts:
            raise DataError(files.message, msg_line, f"time goes backwards ({ev.ts} ns < {last_ts} ns)")
        last_ts = ev.ts
        row = parse_row(row_line, row_text)
        if prev is None:
            prev = _undo_first(row, undo, levels, files.message, msg_line)
            yield BookSnapshot(ev.ts, ev.ts, inst.symbol, 0, *prev)
        yield ev
        reveal = _reveals(prev, row, levels)
        if reveal is not None:
            yield BookDelta(ev.ts, ev.ts, inst.symbol, seq, *reveal)
        prev = row


@dataclass(frozen=True, slots=True)
class UnknownOrderRef:
    """A message about an order the message file never showed being submitted (it rested
    before the file starts, or beyond a depth-limited file's window): ``line`` of the message
    file, its ``seq``, the message ``kind`` (``"partial cancel"``, ``"delete"`` or ``"visible
    execution"``) and the message's fields."""

    line: int
    seq: int
    kind: str
    order_id: int
    side: Side
    price: int
    size: int


@dataclass(frozen=True, slots=True)
class StaleOrder:
    """A known order dropped because the message at ``line`` (``seq``) proves it gone: an order
    or a trade on the other side at or through its price. Its cancel happened out of the
    file's view (beyond a depth-limited file's window)."""

    line: int
    seq: int
    order_id: int
    side: Side
    price: int
    size: int


class LobsterMessages:
    """A LOBSTER message file without its orderbook file, as L3 market events.

    The book starts empty: nothing says what rested before the first message, so nothing is
    assumed. Message by message (``seq`` = the 1-based row, times as in :func:`read_lobster`):

    - a submission (type 1) adds a known order: ``OrderAdded``;
    - a partial cancel, delete or visible execution (types 2, 3, 4) of a known order updates
      it: ``OrderCancelled``, ``OrderDeleted``, ``OrderExecuted``;
    - the same for an order never seen submitted (it rested before the file starts) is an
      *unknown order reference*: counted in ``stats["unknown_order_refs"]`` (distinct orders in
      ``stats["unknown_orders"]``) and listed in :attr:`unknown_refs`, never invented into the
      book. A visible execution of such an order still happened on the tape, so it is yielded
      as a ``Trade`` (the aggressor is the other side of the resting order); its cancels and
      deletes yield nothing;
    - hidden executions (5) and crosses (6) are ``Trade`` prints, halts (7) ``TradingStatus``.

    A level-``L`` file only has the messages that touch its top ``L`` levels, so a known order
    that drifts deeper can be cancelled unseen. Such a stale order shows itself when a new
    order or a visible execution on the other side is at or through its price (the real book
    cannot have been crossed): it is removed then, by an ``OrderDeleted`` under the same
    ``seq`` before the message's own event, counted in ``stats["stale_orders_dropped"]`` and
    listed in :attr:`stale_orders`. A delete of a known order for less than it holds (part of
    it was cancelled unseen) removes all of it.

    The book so built holds, at every price, only orders seen arriving there: queue positions
    in it are optimistic, since unknown orders resting ahead cannot be seen. ``stats``,
    ``unknown_refs`` and ``stale_orders`` describe the last (complete or partial) iteration;
    each iteration starts them afresh. A malformed line, a known order cancelled or executed
    for more than it holds, or a second submission of a resting order id raises DataError
    naming file and line.
    """

    def __init__(self, message_path: str | Path, *, instrument: Instrument | None = None) -> None:
        self.files = lobster_files(message_path, require_orderbook=False)
        self.instrument = instrument if instrument is not None else lobster_instrument(self.files.symbol)
        self.stats: dict[str, int] = {}
        self.unknown_refs: list[UnknownOrderRef] = []
        self.stale_orders: list[StaleOrder] = []

    def __iter__(self) -> Iterator[MarketEvent]:
        return self._stream()

    def _stream(self) -> Iterator[MarketEvent]:
        path = self.files.message
        parse = _MessageParser(self.files, self.instrument)
        stats = self.stats = dict.fromkeys(_MESSAGE_STATS, 0)
        refs: list[UnknownOrderRef] = []
        stale: list[StaleOrder] = []
        self.unknown_refs, self.stale_orders = refs, stale
        book = _KnownOrders()
        unknown: set[int] = set()
        last_ts = 0
        for seq, (line, text) in enumerate(numbered_lines(path), start=1):
            ev, _ = parse(line, text, seq)
            if ev.ts < last_ts:
                raise DataError(path, line, f"time goes backwards ({ev.ts} ns < {last_ts} ns)")
            last_ts = ev.ts
            stats["messages"] += 1
            if isinstance(ev, OrderAdded | OrderExecuted):
                # An order at p, or a trade against a resting order at p: nothing on the other
                # side can rest at or through p.
                for oid, side, price, size in book.crossed_by(ev.side, ev.price):
                    stale.append(StaleOrder(line, seq, oid, side, price, size))
                    stats["stale_orders_dropped"] += 1
                    yield OrderDeleted(ev.ts, ev.recv_ts, ev.symbol, seq, oid, side, price, size)
            if isinstance(ev, OrderAdded):
                if ev.order_id in book:
                    raise DataError(path, line, f"order {ev.order_id} is submitted again while it rests")
                book.add(ev.order_id, ev.side, ev.price, ev.size)
                stats["added"] += 1
                yield ev
            elif isinstance(ev, OrderCancelled | OrderDeleted | OrderExecuted):
                kind = _KIND[type(ev)]
                found = book.get(ev.order_id)
                if found is None:
                    refs.append(UnknownOrderRef(line, seq, kind, ev.order_id, ev.side, ev.price, ev.size))
                    stats["unknown_order_refs"] += 1
                    if ev.order_id not in unknown:
                        unknown.add(ev.order_id)
                        stats["unknown_orders"] += 1
                    if isinstance(ev, OrderExecuted):
                        stats["unknown_executions"] += 1
                        aggressor = Side.SELL if ev.side is Side.BUY else Side.BUY
                        yield Trade(ev.ts, ev.recv_ts, ev.symbol, seq, ev.price, ev.size, aggressor)
                    continue
                side, price, rest = found
                if (side, price) != (ev.side, ev.price):
                    where = f"{side.name} @ {price}, not {ev.side.name} @ {ev.price}"
                    raise DataError(path, line, f"{kind} of order {ev.order_id}, which rests as {where}")
                if ev.size > rest:
                    raise DataError(path, line, f"{kind} of {ev.size} lots of order {ev.order_id}, but {rest} rest")
                if isinstance(ev, OrderDeleted):
                    ev = OrderDeleted(ev.ts, ev.recv_ts, ev.symbol, seq, ev.order_id, side, price, rest)
                book.reduce(ev.order_id, rest if isinstance(ev, OrderDeleted) else ev.size)
                stats[_STAT[type(ev)]] += 1
                yield ev
            else:
                if isinstance(ev, Trade):
                    stats["crosses" if ev.aggressor is None else "hidden_executions"] += 1
                else:
                    stats["halts"] += 1
                yield ev


class _KnownOrders:
    """The orders a message-only reader has seen submitted: id -> (side, price, lots), and
    each side's prices in order, to find the ones a new price crosses."""

    def __init__(self) -> None:
        self.orders: dict[int, tuple[Side, int, int]] = {}
        self.at: dict[tuple[Side, int], dict[int, None]] = {}  # (side, price) -> ids, FIFO
        self.prices: dict[Side, list[int]] = {Side.BUY: [], Side.SELL: []}  # ascending

    def __contains__(self, order_id: int) -> bool:
        return order_id in self.orders

    def get(self, order_id: int) -> tuple[Side, int, int] | None:
        return self.orders.get(order_id)

    def add(self, order_id: int, side: Side, price: int, size: int) -> None:
        self.orders[order_id] = (side, price, size)
        ids = self.at.get((side, price))
        if ids is None:
            ids = self.at[side, price] = {}
            insort(self.prices[side], price)
        ids[order_id] = None

    def reduce(self, order_id: int, size: int) -> None:
        side, price, rest = self.orders[order_id]
        if size < rest:
            self.orders[order_id] = (side, price, rest - size)
            return
        del self.orders[order_id]
        ids = self.at[side, price]
        del ids[order_id]
        if not ids:
            del self.at[side, price]
            prices = self.prices[side]
            del prices[bisect_left(prices, price)]

    def crossed_by(self, side: Side, price: int) -> list[tuple[int, Side, int, int]]:
        """Orders on the other side of ``side`` at or through ``price``, removed: (id, side, price, lots)."""
        other = Side.SELL if side is Side.BUY else Side.BUY
        prices = self.prices[other]
        hit = prices[: bisect_right(prices, price)] if other is Side.SELL else prices[bisect_left(prices, price) :]
        out = []
        for p in hit:
            for oid in list(self.at[other, p]):
                out.append((oid, other, p, self.orders[oid][2]))
                self.reduce(oid, self.orders[oid][2])
        return out


_MESSAGE_STATS = (
    "messages", "added", "cancelled", "deleted", "executed", "hidden_executions", "crosses", "halts",
    "unknown_order_refs", "unknown_orders", "unknown_executions", "stale_orders_dropped",
)  # fmt: skip
_KIND: dict[type, str] = {OrderCancelled: "partial cancel", OrderDeleted: "delete", OrderExecuted: "visible execution"}
_STAT: dict[type, str] = {OrderCancelled: "cancelled", OrderDeleted: "deleted", OrderExecuted: "executed"}


def _reveals(prev: _Row, row: _Row, levels: int) -> _Row | None:
    """Levels of ``row`` strictly beyond ``prev``'s visible window, per side (None if none).

    A side's window is bounded only when ``prev`` showed a full ``levels`` on it; otherwise
    every level there was visible and a new one can only come from a message.
    """
    out: list[list[int]] = []
    for px, sz, prev_px, sign in ((row[0], row[1], prev[0], -1), (row[2], row[3], prev[2], 1)):
        start = len(px)
        if len(prev_px) == levels:
            edge = sign * prev_px[-1]
            # Rows are best first, so the revealed levels are a suffix: walk back from the worst.
            while start > 0 and sign * px[start - 1] > edge:
                start -= 1
        out += [px[start:], sz[start:]]
    if not out[0] and not out[2]:
        return None
    return out[0], out[1], out[2], out[3]


def _undo_first(row: _Row, undo: tuple[Side, int, int] | None, levels: int, path: Path, line: int) -> _Row:
    """Orderbook row 0 with message 0 undone: the book before the first message, cut to ``levels``.

    ``undo`` is ``(side, price, size delta)``: minus the size of an add, plus the size of a
    cancel, delete or visible execution; None for events that leave the book alone.
    """
    bid = dict(zip(row[0], row[1], strict=True))
    ask = dict(zip(row[2], row[3], strict=True))
    if undo is not None:
        side, price, delta = undo
        book = bid if side is Side.BUY else ask
        size = book.get(price, 0) + delta
        if size < 0:
            raise DataError(
                path,
                line,
                f"the first message adds {-delta} lots at {side.name} {price}, "
                f"but the first orderbook row shows only {book.get(price, 0)} there",
            )
        if size:
            book[price] = size
        else:
            del book[price]
    bp = sorted(bid, reverse=True)[:levels]
    ap = sorted(ask)[:levels]
    return bp, [bid[p] for p in bp], ap, [ask[p] for p in ap]


class _MessageParser:
    """One message line -> (event, how it changed the visible book for undoing message 0)."""

    def __init__(self, files: LobsterFiles, inst: Instrument) -> None:
        self.path = files.message
        self.symbol = inst.symbol
        self.tick = inst.tick_size
        self.clock = _Clock(files.date)
        self.price = _Scale(Fraction(inst.tick_size) * _PRICE_SCALE)
        self.size = _Scale(Fraction(inst.lot_size))

    def __call__(self, line: int, text: str, seq: int) -> tuple[MarketEvent, tuple[Side, int, int] | None]:
        f = text.split(",")
        if len(f) != 6:
            raise DataError(
                self.path,
                line,
                f"expected 6 fields (time,event_type,order_id,size,price,direction), got {len(f)}: {text[:80]!r}",
            )
        try:
            ts = self.clock(f[0].strip())
            etype, oid, raw_size, raw_px, direction = map(int, f[1:])
        except ValueError as exc:
            raise DataError(self.path, line, f"malformed message ({exc}): {text[:80]!r}") from None
        sym = self.symbol
        if etype == 7:
            state = _HALT_STATES.get(raw_px)
            if state is None:
                raise DataError(self.path, line, f"halt message (type 7) with price {raw_px}; expected -1, 0 or 1")
            return TradingStatus(ts, ts, sym, seq, *state), None
        if not 1 <= etype <= 6:
            raise DataError(self.path, line, f"unknown event type {etype} (LOBSTER types are 1-7)")
        if direction not in (1, -1):
            raise DataError(self.path, line, f"direction must be 1 (buy) or -1 (sell), got {direction}")
        if raw_size <= 0 or raw_px <= 0 or oid < 0:
            raise DataError(
                self.path,
                line,
                f"size ({raw_size}) and price ({raw_px}) must be positive, order id ({oid}) not negative",
            )
        price = self.price(raw_px)
        if price is None:
            usd = Decimal(raw_px).scaleb(-4).normalize()
            # Hidden orders pegged to the midpoint trade at half a cent (legal for executions,
            # never for quotes), so name the way out rather than round.
            hint = (
                f"; hidden midpoint executions need a finer grid, e.g. instrument=us_equity({self.symbol!r}, "
                f"tick_size='0.005')"
                if etype == 5
                else ""
            )
            raise LobsterOffGridError(
                self.path,
                line,
                f"{_TYPE_NAMES[etype]} price {raw_px} (USD {usd}) is not on the {self.tick} tick grid{hint}",
            )
        size = self.size(raw_size)
        if size is None:
            raise DataError(self.path, line, f"size {raw_size} is not a whole number of lots")
        side = Side.BUY if direction == 1 else Side.SELL
        if etype == 1:
            return OrderAdded(ts, ts, sym, seq, oid, side, price, size), (side, price, -size)
        if etype == 2:
            return OrderCancelled(ts, ts, sym, seq, oid, side, price, size), (side, price, size)
        if etype == 3:
            return OrderDeleted(ts, ts, sym, seq, oid, side, price, size), (side, price, size)
        if etype == 4:
            return OrderExecuted(ts, ts, sym, seq, oid, side, price, size), (side, price, size)
        if etype == 5:
            # A hidden order traded: invisible in the book; direction is the hidden order's side,
            # so the aggressor was the other side.
            return Trade(ts, ts, sym, seq, price, size, Side.SELL if side is Side.BUY else Side.BUY), None
        return Trade(ts, ts, sym, seq, price, size, None), None  # 6: a cross (auction) has no aggressor


class _RowParser:
    """One orderbook line -> the visible levels per side, best first, checked for LOBSTER's layout."""

    def __init__(self, path: Path, inst: Instrument, levels: int) -> None:
        self.path = path
        self.levels = levels
        self.tick = inst.tick_size
        self.price = _Scale(Fraction(inst.tick_size) * _PRICE_SCALE)
        self.size = _Scale(Fraction(inst.lot_size))
        self._last_text = ""
        self._last_row: _Row | None = None

    def __call__(self, line: int, text: str) -> _Row:
        # Most messages leave the visible book as it was (hidden trades, changes deeper than a
        # shallow file shows), so the same row text repeats; rows are never mutated, so reuse it.
        if text == self._last_text and self._last_row is not None:
            return self._last_row
        row = self._parse(line, text)
        self._last_text, self._last_row = text, row
        return row

    def _parse(self, line: int, text: str) -> _Row:
        f = text.split(",")
        if len(f) != 4 * self.levels:
            raise DataError(
                self.path,
                line,
                f"expected {4 * self.levels} fields ({self.levels} levels of "
                f"ask_px,ask_sz,bid_px,bid_sz), got {len(f)}",
            )
        try:
            v = [int(x) for x in f]
        except ValueError as exc:
            raise DataError(self.path, line, f"malformed orderbook row ({exc})") from None
        ask = self._side(line, v[0::4], v[1::4], _ASK_PAD, 1, "ask")
        bid = self._side(line, v[2::4], v[3::4], _BID_PAD, -1, "bid")
        if bid[0] and ask[0] and bid[0][0] >= ask[0][0]:
            raise DataError(self.path, line, f"crossed book: best bid {bid[0][0]} >= best ask {ask[0][0]} (ticks)")
        return bid[0], bid[1], ask[0], ask[1]

    def _side(
        self, line: int, raw_px: list[int], raw_sz: list[int], pad: int, sign: int, name: str
    ) -> tuple[list[int], list[int]]:
        px: list[int] = []
        sz: list[int] = []
        for j, (p, s) in enumerate(zip(raw_px, raw_sz, strict=True)):
            if p == pad and s == 0:
                if any(q != pad for q in raw_px[j:]) or any(raw_sz[j:]):
                    raise DataError(self.path, line, f"{name} level {j + 1} is empty but a deeper one is not")
                break
            if p <= 0 or s <= 0:
                raise DataError(self.path, line, f"{name} level {j + 1}: price {p} and size {s} must be positive")
            tick = self.price(p)
            if tick is None:
                usd = Decimal(p).scaleb(-4).normalize()
                raise LobsterOffGridError(
                    self.path, line, f"{name} level {j + 1} price {p} (USD {usd}) is not on the {self.tick} tick grid"
                )
            lots = self.size(s)
            if lots is None:
                raise DataError(self.path, line, f"{name} level {j + 1} size {s} is not a whole number of lots")
            if px and sign * tick <= sign * px[-1]:
                raise DataError(self.path, line, f"{name} levels are not strictly sorted best first at level {j + 1}")
            px.append(tick)
            sz.append(lots)
        return px, sz
