"""Typed, immutable events and their compact binary encoding.

Every event is a frozen ``msgspec.Struct`` encoded as a MessagePack array whose first element
is the type's tag, so a depth update of ten levels costs a few dozen bytes on the log.
Prices are integer ticks and sizes integer lots of the event's instrument (DESIGN.md §3);
times are integer nanoseconds since the epoch, UTC.

>>> t = Trade(ts=1, recv_ts=2, symbol="SPY", seq=7, price=16765, size=100, aggressor=Side.BUY)
>>> decode(encode(t)) == t
True
"""

from __future__ import annotations

from decimal import Decimal
from enum import IntEnum
from typing import Any, ClassVar

import msgspec


class Side(IntEnum):
    """Side of a resting order or the aggressor of a trade. ``BUY`` is the bid side."""

    BUY = 1
    SELL = -1


class Event(msgspec.Struct, frozen=True, array_like=True, tag=True):
    """Base of every event. ``ts`` is the event time (simulated time) in UTC nanoseconds."""

    ts: int


class MarketEvent(Event, frozen=True, array_like=True, tag=True):
    """Market data. ``recv_ts`` is when it reached us (equal to ``ts`` when the source has
    only one clock); ``seq`` is the source's sequence number (0 when it has none)."""

    recv_ts: int
    symbol: str
    seq: int


class BookSnapshot(MarketEvent, frozen=True, array_like=True, tag=True):
    """The whole visible book: replaces every level. Bids best-first, asks best-first."""

    bid_px: list[int]
    bid_sz: list[int]
    ask_px: list[int]
    ask_sz: list[int]


class BookDelta(MarketEvent, frozen=True, array_like=True, tag=True):
    """Absolute new sizes of some levels; a size of 0 removes the level.

    ``first_seq``/``prev_seq`` carry the venue's sequencing (Binance ``U`` and ``pu``) so a
    consumer can check continuity; 0 where the source has no such field.
    """

    bid_px: list[int]
    bid_sz: list[int]
    ask_px: list[int]
    ask_sz: list[int]
    first_seq: int = 0
    prev_seq: int = 0


class Quote(MarketEvent, frozen=True, array_like=True, tag=True):
    """Top of book (L1). A side with no quote has price 0 and size 0."""

    bid_px: int
    bid_sz: int
    ask_px: int
    ask_sz: int


class Trade(MarketEvent, frozen=True, array_like=True, tag=True):
    """A print. ``aggressor`` is the side that took liquidity (``None`` if unknown)."""

    price: int
    size: int
    aggressor: Side | None = None
    trade_id: int = 0


class OrderAdded(MarketEvent, frozen=True, array_like=True, tag=True):
    """L3: a visible limit order joined the back of the queue at ``price``."""

    order_id: int
    side: Side
    price: int
    size: int


class OrderCancelled(MarketEvent, frozen=True, array_like=True, tag=True):
    """L3: ``size`` lots of an order were cancelled; it keeps its queue place if any remain."""

    order_id: int
    side: Side
    price: int
    size: int


class OrderDeleted(MarketEvent, frozen=True, array_like=True, tag=True):
    """L3: an order left the book entirely (``size`` is what remained)."""

    order_id: int
    side: Side
    price: int
    size: int


class OrderExecuted(MarketEvent, frozen=True, array_like=True, tag=True):
    """L3: ``size`` lots of a resting visible order traded; ``side`` is the resting order's."""

    order_id: int
    side: Side
    price: int
    size: int


class TradingStatus(MarketEvent, frozen=True, array_like=True, tag=True):
    """Trading halted or resumed on the instrument."""

    halted: bool
    reason: str = ""


class Bar(MarketEvent, frozen=True, array_like=True, tag=True):
    """A trade bar stamped at the START of its interval (``interval_ns`` long)."""

    interval_ns: int
    open: int
    high: int
    low: int
    close: int
    volume: int


class QuoteBar(MarketEvent, frozen=True, array_like=True, tag=True):
    """A bar of the best bid and offer: OHLC of each side plus the closing sizes."""

    interval_ns: int
    bid_open: int
    bid_high: int
    bid_low: int
    bid_close: int
    bid_size: int
    ask_open: int
    ask_high: int
    ask_low: int
    ask_close: int
    ask_size: int


class CorporateActionEvent(MarketEvent, frozen=True, array_like=True, tag=True):
    """A split or cash dividend of ``symbol`` taking effect now: a replay stamps it with the time
    of the first event of its ex-date, so it sits in the sequenced input right before that event.

    ``kind`` is ``"split"`` (``ratio_num / ratio_den`` new shares per old share, e.g. 7/1 or 1/20)
    or ``"dividend"`` (``amount`` in the instrument's currency per share held at the previous
    close). ``reference_price``: that close (pre-split units), at which fractional shares left by a
    split are paid in cash (``reference_price x ratio_den / ratio_num`` per new share).
    See :mod:`vtrade.portfolio.corporate_actions`.
    """

    kind: str
    ex_date: str  # ISO date
    ratio_num: int = 1
    ratio_den: int = 1
    amount: Decimal = Decimal(0)
    reference_price: Decimal = Decimal(0)


class Clock(MarketEvent, frozen=True, array_like=True, tag=True):
    """The venue's time reached ``ts``, with no data: the end of a live market's slice on the
    sequenced log, so the commands and expiries due by then happen there as at the venue."""


class MarketBatch(MarketEvent, frozen=True, array_like=True, tag=True):
    """A run of one symbol's book and trade events, already in merge order, as ONE record of the
    log: a live market's slice of a venue costs one record, and the exchange applies it through
    its array path (the same outputs as applying each event). ``ts``/``recv_ts``/``seq`` are the
    first event's."""

    events: list[BookSnapshot | BookDelta | Trade]


class FeedStatus(Event, frozen=True, array_like=True, tag=True):
    """A live feed's state changed (not market data: engines never see it; the UI shows it).

    ``feed`` names the connection (e.g. ``"binance-spot"``), ``symbol`` the book concerned
    (``""``: the whole connection), ``reason`` says why in words. ``ts`` is the local time.
    """

    feed: str
    symbol: str
    reason: str


class FeedGap(FeedStatus, frozen=True, array_like=True, tag="feed.gap"):
    """The book of ``symbol`` can no longer be trusted: updates are missing (a sequence gap, a
    disconnect). No update is applied to it until a :class:`FeedResync` restates it."""


class FeedResync(FeedStatus, frozen=True, array_like=True, tag="feed.resync"):
    """The book of ``symbol`` was rebuilt from a new snapshot (``snapshot_id``) and the stream
    continues it; ``reason`` is why the rebuild began, ``took_ns`` how long it took."""

    snapshot_id: int = 0
    took_ns: int = 0


class FeedStale(FeedStatus, frozen=True, array_like=True, tag="feed.stale"):
    """No message arrived for ``silent_ns``: the connection is dropped and opened again."""

    silent_ns: int = 0


class _Codec:
    """Encoder/decoder over the registered event types; later layers register their own."""

    types: ClassVar[list[type[Event]]] = []

    def __init__(self) -> None:
        self.encoder = msgspec.msgpack.Encoder()
        self.decoder: msgspec.msgpack.Decoder[Any] | None = None

    def register(self, *classes: type[Event]) -> None:
        for cls in classes:
            if cls not in self.types:
                self.types.append(cls)
        self.decoder = None  # rebuilt lazily with the new union

    def decode(self, data: bytes) -> Event:
        if self.decoder is None:
            union = self.types[0]
            for cls in self.types[1:]:
                union = union | cls  # type: ignore[assignment]
            self.decoder = msgspec.msgpack.Decoder(union)
        try:
            return self.decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise ValueError(f"not a vtrade event: {exc}") from exc


_codec = _Codec()


def register_event(*classes: type[Event]) -> None:
    """Make new concrete event types decodable (their tag must be unique)."""
    _codec.register(*classes)


def encode(event: Event) -> bytes:
    """The compact binary (MessagePack) form of an event."""
    return _codec.encoder.encode(event)


def decode(data: bytes) -> Event:
    """The event encoded in ``data``; ValueError if it is not one."""
    return _codec.decode(data)


def event_type(event: Event) -> str:
    """The event's type tag, e.g. ``'Trade'`` (what the journal stores in its ``type`` column)."""
    return str(type(event).__struct_config__.tag)


register_event(
    BookSnapshot,
    BookDelta,
    Quote,
    Trade,
    OrderAdded,
    OrderCancelled,
    OrderDeleted,
    OrderExecuted,
    TradingStatus,
    Bar,
    QuoteBar,
    CorporateActionEvent,
    Clock,
    MarketBatch,
    FeedGap,
    FeedResync,
    FeedStale,
)
