"""The L3 (order-by-order) book: price levels holding FIFO queues of individual orders.

Each price level holds, front to back, an *anonymous* size (liquidity whose individual orders
we never saw: orders resting before the data started, or a level revealed from beyond a
depth-limited feed's window) followed by the visible orders in arrival order. A new order joins
the back; a partial cancel keeps the order's place; an execution reduces the named order (or,
for an order we never saw, the anonymous size). That is what makes queue position exact.

Every operation validates before it mutates: an inconsistent one raises :class:`L3BookError`
(or :class:`~vtrade.core.errors.CrossedBookError`) and leaves the book exactly as it was.

>>> book = L3Book("GOOG")
>>> book.set_level(Side.BUY, 100, 50)          # 50 lots resting before we started watching
>>> book.add(1, Side.BUY, 100, 10)
>>> book.add(2, Side.BUY, 100, 20)
>>> book.add(3, Side.SELL, 102, 5)
>>> book.queue_ahead(2)                         # 50 anonymous + order 1
60
>>> book.execute(99, Side.BUY, 100, 30)         # an order we never saw trades: anonymous shrinks
>>> book.cancel(1, Side.BUY, 100, 4)            # partial cancel: order 1 keeps its place
>>> book.queue_ahead(2), book.best_bid(), book.best_ask()
(26, (100, 46), (102, 5))
>>> book.top(2).bid_sz.tolist()
[46]
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import NamedTuple

import numpy as np

from vtrade.core.errors import CrossedBookError, VtradeError
from vtrade.core.events import (
    BookDelta,
    BookSnapshot,
    Event,
    MarketEvent,
    OrderAdded,
    OrderCancelled,
    OrderDeleted,
    OrderExecuted,
    Side,
)
from vtrade.market.l2book import TopOfBook

_I64 = np.int64


class L3BookError(VtradeError, ValueError):
    """An operation does not fit the book (unknown order, more than rests, bad size, ...).

    The book is unchanged when this is raised.
    """


class RestingOrder(NamedTuple):
    """A visible order in the book: its side, price (ticks) and remaining size (lots)."""

    side: Side
    price: int
    size: int


class _Level:
    """One price level: anonymous size at the front, then known orders in FIFO order."""

    __slots__ = ("anon", "orders", "total")

    def __init__(self, anon: int = 0) -> None:
        self.anon = anon
        # A dict keeps insertion order, so it is the FIFO queue and the id index at once:
        # O(1) add, cancel and delete, and iteration front to back for queue position.
        self.orders: dict[int, int] = {}
        self.total = anon

    def copy(self) -> _Level:
        lvl = _Level(self.anon)
        lvl.orders = dict(self.orders)
        lvl.total = self.total
        return lvl

    def state(self) -> tuple[int, tuple[tuple[int, int], ...]]:
        return self.anon, tuple(self.orders.items())


class _SideBook:
    """One side: a sorted list of keys (best first) and the levels by price.

    Keys are ``price`` for asks and ``-price`` for bids, so ascending keys are best-first on
    both sides and ``bisect`` works unchanged. Books hold tens to hundreds of levels, where a
    list insert (a memmove) beats any tree.
    """

    __slots__ = ("keys", "levels", "sign")

    def __init__(self, side: Side) -> None:
        self.sign = -1 if side is Side.BUY else 1
        self.keys: list[int] = []
        self.levels: dict[int, _Level] = {}

    def best(self) -> int | None:
        return self.sign * self.keys[0] if self.keys else None

    def new_level(self, price: int, anon: int = 0) -> _Level:
        lvl = _Level(anon)
        self.levels[price] = lvl
        insort(self.keys, self.sign * price)
        return lvl

    def drop_level(self, price: int) -> _Level:
        lvl = self.levels.pop(price)
        key = self.sign * price
        del self.keys[bisect_left(self.keys, key)]
        return lvl

    def prices(self, n: int | None = None) -> list[int]:
        keys = self.keys if n is None else self.keys[:n]
        return [self.sign * k for k in keys]


def _side(side: Side | int) -> Side:
    try:
        return Side(side)
    except ValueError:
        raise L3BookError(f"side must be Side.BUY (1) or Side.SELL (-1), got {side!r}") from None


def _positive(size: int, what: str) -> None:
    if size <= 0:
        raise L3BookError(f"{what} size must be positive, got {size}")


class L3Book:
    """An exact order-by-order book for one instrument; see the module docstring for an example.

    Prices are integer ticks, sizes integer lots. A book whose best bid is at or above its best
    ask is an error: an operation that would do that raises CrossedBookError, unapplied.
    """

    __slots__ = ("_orders", "_sides", "symbol")

    def __init__(self, symbol: str = "") -> None:
        self.symbol = symbol
        self._sides = {Side.BUY: _SideBook(Side.BUY), Side.SELL: _SideBook(Side.SELL)}
        # order_id -> (side, price): finds an order's level without searching.
        self._orders: dict[int, tuple[Side, int]] = {}

    # ------------------------------------------------------------------ order operations
    def add(self, order_id: int, side: Side, price: int, size: int) -> None:
        """A new visible order joins the back of the queue at ``price``.

        >>> b = L3Book()
        >>> b.add(7, Side.SELL, 101, 3)
        >>> b.add(7, Side.SELL, 101, 3)
        Traceback (most recent call last):
        ...
        vtrade.market.l3book.L3BookError: add: order 7 is already in the book (SELL 3 @ 101)
        """
        side = _side(side)
        _positive(size, f"add of order {order_id}:")
        if order_id in self._orders:
            o = self.order(order_id)
            assert o is not None
            raise L3BookError(f"add: order {order_id} is already in the book ({o.side.name} {o.size} @ {o.price})")
        self._check_cross(side, price, "add of order", order_id)
        book = self._sides[side]
        lvl = book.levels.get(price)
        if lvl is None:
            lvl = book.new_level(price)
        lvl.orders[order_id] = size
        lvl.total += size
        self._orders[order_id] = (side, price)

    def cancel(self, order_id: int, side: Side, price: int, size: int) -> None:
        """Cancel ``size`` lots of an order; what remains keeps its place in the queue.

        Cancelling everything that remains removes the order. For an order we never saw, the
        anonymous size at ``price`` shrinks instead.
        """
        self._reduce("cancel", order_id, _side(side), price, size, whole=False)

    def delete(self, order_id: int, side: Side, price: int, size: int | None = None) -> None:
        """Remove an order entirely. ``size``, when given, must be what remains of it.

        For an order we never saw, ``size`` is required and comes out of the anonymous size.
        """
        side = _side(side)
        if size is None:
            where = self._orders.get(order_id)
            if where is None:
                raise L3BookError(f"delete: order {order_id} is unknown and no size was given")
            size = self._sides[where[0]].levels[where[1]].orders[order_id]
        self._reduce("delete", order_id, side, price, size, whole=True)

    def execute(self, order_id: int, side: Side, price: int, size: int) -> None:
        """``size`` lots of the resting order ``order_id`` (on ``side``) traded.

        For an order we never saw, the anonymous size at ``price`` is what traded.
        """
        self._reduce("execute", order_id, _side(side), price, size, whole=False)

    def _reduce(self, op: str, order_id: int, side: Side, price: int, size: int, *, whole: bool) -> None:
        _positive(size, f"{op} of order {order_id}:")
        book = self._sides[side]
        where = self._orders.get(order_id)
        if where is not None:
            if where != (side, price):
                raise L3BookError(
                    f"{op}: order {order_id} rests as {where[0].name} @ {where[1]}, not {side.name} @ {price}"
                )
            lvl = book.levels[price]
            rest = lvl.orders[order_id]
            if size > rest or (whole and size != rest):
                raise L3BookError(f"{op} of {size} lots of order {order_id}, but {rest} rest")
            if size == rest:
                del lvl.orders[order_id]
                del self._orders[order_id]
            else:
                lvl.orders[order_id] = rest - size
        else:
            # An order we never saw: it can only be part of the anonymous size at its price.
            found = book.levels.get(price)
            if found is None or size > found.anon:
                raise L3BookError(
                    f"{op} of {size} lots of unknown order {order_id} at {side.name} {price}, but only "
                    f"{found.anon if found is not None else 0} anonymous lots rest there"
                )
            lvl = found
            lvl.anon -= size
        lvl.total -= size
        if lvl.total == 0:
            book.drop_level(price)

    # ------------------------------------------------------------------ level operations
    def set_level(self, side: Side, price: int, size: int) -> None:
        """Set the aggregate size of a level; the part not covered by known orders is anonymous.

        Size 0 removes the level and its orders. A size below what the level's known orders
        hold is an error (we cannot tell which of them shrank).

        >>> b = L3Book()
        >>> b.add(1, Side.BUY, 99, 10)
        >>> b.set_level(Side.BUY, 99, 25)
        >>> b.anonymous_at(Side.BUY, 99), b.queue_ahead(1)
        (15, 15)
        """
        side = _side(side)
        self._check_level(side, price, size, "set_level")
        if size:
            self._check_cross(side, price, "set_level at", price)
        self._set_level(side, price, size)

    def _check_level(self, side: Side, price: int, size: int, op: str) -> None:
        if size < 0:
            raise L3BookError(f"{op}: negative size {size} for {side.name} {price}")
        lvl = self._sides[side].levels.get(price)
        if size and lvl is not None:
            known = lvl.total - lvl.anon
            if size < known:
                raise L3BookError(
                    f"{op}: {side.name} {price} set to {size} lots, below the {known} its known orders hold"
                )

    def _set_level(self, side: Side, price: int, size: int) -> None:
        book = self._sides[side]
        lvl = book.levels.get(price)
        if size == 0:
            if lvl is not None:
                for oid in book.drop_level(price).orders:
                    del self._orders[oid]
            return
        if lvl is None:
            book.new_level(price, size)
            return
        known = lvl.total - lvl.anon
        lvl.anon = size - known
        lvl.total = size

    def clear(self) -> None:
        """Remove every level and order."""
        for s in (Side.BUY, Side.SELL):
            self._sides[s] = _SideBook(s)
        self._orders.clear()

    def truncate(self, levels: int) -> None:
        """Keep only the best ``levels`` price levels per side (what a depth-limited feed shows).

        Orders at dropped levels are forgotten: if their level comes back into view it returns
        as anonymous liquidity.

        >>> b = L3Book()
        >>> for i, p in enumerate((100, 99, 98)):
        ...     b.add(i, Side.BUY, p, 1)
        >>> b.truncate(2)
        >>> b.top(5).bid_px.tolist(), 2 in b
        ([100, 99], False)
        """
        if levels < 0:
            raise L3BookError(f"truncate: levels must be >= 0, got {levels}")
        for book in self._sides.values():
            if len(book.keys) <= levels:
                continue
            for key in book.keys[levels:]:
                for oid in book.levels.pop(book.sign * key).orders:
                    del self._orders[oid]
            del book.keys[levels:]

    # ------------------------------------------------------------------ events
    def apply(self, event: Event) -> bool:
        """Apply one market event; returns whether it is a book event (Trade, TradingStatus and
        any other event type leave the book alone and return False).

        ``OrderAdded/Cancelled/Deleted/Executed`` act on orders, ``BookDelta`` sets levels'
        aggregate sizes (as anonymous liquidity), ``BookSnapshot`` replaces the whole book with
        anonymous levels. Errors name the event; the book is unchanged after one.
        """
        try:
            if isinstance(event, OrderAdded):
                self.add(event.order_id, event.side, event.price, event.size)
            elif isinstance(event, OrderCancelled):
                self.cancel(event.order_id, event.side, event.price, event.size)
            elif isinstance(event, OrderDeleted):
                self.delete(event.order_id, event.side, event.price, event.size)
            elif isinstance(event, OrderExecuted):
                self.execute(event.order_id, event.side, event.price, event.size)
            elif isinstance(event, BookDelta):
                self._apply_levels(event, replace=False)
            elif isinstance(event, BookSnapshot):
                self._apply_levels(event, replace=True)
            else:
                return False
        except CrossedBookError as exc:
            seq = event.seq if isinstance(event, MarketEvent) else None  # (every book event is one)
            raise CrossedBookError(f"{_name(event)}: {exc}; the event was not applied", seq=seq) from None
        except L3BookError as exc:
            raise L3BookError(f"{_name(event)}: {exc}; the event was not applied") from None
        return True

    def _apply_levels(self, ev: BookDelta | BookSnapshot, *, replace: bool) -> None:
        what = "snapshot" if replace else "delta"
        updates: dict[Side, dict[int, int]] = {}
        for side, px, sz in ((Side.BUY, ev.bid_px, ev.bid_sz), (Side.SELL, ev.ask_px, ev.ask_sz)):
            if len(px) != len(sz):
                raise L3BookError(f"{what} has {len(px)} {side.name} prices but {len(sz)} sizes")
            # Later entries for the same price win, as if the levels were set one by one.
            updates[side] = dict(zip(px, sz, strict=True))
            for p, s in updates[side].items():
                if replace and s <= 0:
                    raise L3BookError(f"{what}: non-positive size {s} at {side.name} {p}")
                if not replace:
                    self._check_level(side, p, s, what)
        bid = self._best_after(Side.BUY, updates[Side.BUY], replace)
        ask = self._best_after(Side.SELL, updates[Side.SELL], replace)
        if bid is not None and ask is not None and bid >= ask:
            raise CrossedBookError(f"{what} would cross the book: best bid {bid} >= best ask {ask}")
        if replace:
            self.clear()
        for side, levels in updates.items():
            for p, s in levels.items():
                self._set_level(side, p, s)

    def _best_after(self, side: Side, levels: dict[int, int], replace: bool) -> int | None:
        """The best price of ``side`` once ``levels`` are set (or replace the side)."""
        sign = self._sides[side].sign
        live = [p for p, s in levels.items() if s > 0]
        best = min(live, key=lambda p: sign * p) if live else None
        if not replace:
            # The first existing level that the update does not remove; few levels are removed
            # per update, so this stops almost at once.
            for key in self._sides[side].keys:
                p = sign * key
                if levels.get(p, 1) != 0:
                    if best is None or sign * p < sign * best:
                        best = p
                    break
        return best

    def _check_cross(self, side: Side, price: int, op: str, ident: int) -> None:
        other = self._sides[Side.SELL if side is Side.BUY else Side.BUY].best()
        if other is None:
            return
        if (side is Side.BUY and price >= other) or (side is Side.SELL and price <= other):
            bid, ask = (price, other) if side is Side.BUY else (other, price)
            raise CrossedBookError(f"{op} {ident} would cross the book: best bid {bid} >= best ask {ask}")

    # ------------------------------------------------------------------ queries
    def best_bid(self) -> tuple[int, int] | None:
        """``(price, size)`` of the best bid, or None when there are no bids."""
        return self._best(Side.BUY)

    def best_ask(self) -> tuple[int, int] | None:
        """``(price, size)`` of the best ask, or None when there are no asks."""
        return self._best(Side.SELL)

    def _best(self, side: Side) -> tuple[int, int] | None:
        book = self._sides[side]
        if not book.keys:
            return None
        p = book.sign * book.keys[0]
        return p, book.levels[p].total

    def top(self, n: int) -> TopOfBook:
        """The best ``n`` levels of each side, best first, as int64 arrays (may be shorter than ``n``)."""
        if n < 0:
            raise L3BookError(f"top: n must be >= 0, got {n}")
        out: list[np.ndarray] = []
        for side in (Side.BUY, Side.SELL):
            px, sz = self.levels(side, n)
            out += [np.array(px, dtype=_I64), np.array(sz, dtype=_I64)]
        return TopOfBook(*out)

    def levels(self, side: Side, n: int | None = None) -> tuple[list[int], list[int]]:
        """Prices and sizes of the best ``n`` (default: all) levels of ``side``, best first."""
        book = self._sides[_side(side)]
        prices = book.prices(n)
        return prices, [book.levels[p].total for p in prices]

    def n_levels(self, side: Side) -> int:
        """How many price levels ``side`` holds."""
        return len(self._sides[_side(side)].keys)

    def size_at(self, side: Side, price: int) -> int:
        """Total size at ``price`` on ``side`` (0 when there is no level)."""
        lvl = self._sides[_side(side)].levels.get(price)
        return lvl.total if lvl is not None else 0

    def anonymous_at(self, side: Side, price: int) -> int:
        """The anonymous size at the front of the level at ``price`` (0 when there is no level)."""
        lvl = self._sides[_side(side)].levels.get(price)
        return lvl.anon if lvl is not None else 0

    def queue(self, side: Side, price: int) -> list[tuple[int, int]]:
        """The known orders at ``price`` as ``(order_id, size)``, front of the queue first."""
        lvl = self._sides[_side(side)].levels.get(price)
        return list(lvl.orders.items()) if lvl is not None else []

    def order(self, order_id: int) -> RestingOrder | None:
        """Side, price and remaining size of a known order, or None."""
        where = self._orders.get(order_id)
        if where is None:
            return None
        side, price = where
        return RestingOrder(side, price, self._sides[side].levels[price].orders[order_id])

    def queue_ahead(self, order_id: int) -> int:
        """Lots resting ahead of ``order_id`` at its level: the anonymous size plus every
        known order that arrived before it. KeyError for an order not in the book."""
        where = self._orders.get(order_id)
        if where is None:
            raise KeyError(f"order {order_id} is not in the book")
        lvl = self._sides[where[0]].levels[where[1]]
        ahead = lvl.anon
        for oid, size in lvl.orders.items():
            if oid == order_id:
                return ahead
            ahead += size
        raise AssertionError(f"order {order_id} is indexed but missing from its level")  # pragma: no cover

    def snapshot(self, ts: int = 0, seq: int = 0) -> BookSnapshot:
        """The whole book as an (aggregate, L2) ``BookSnapshot`` event."""
        bp, bs = self.levels(Side.BUY)
        ap, az = self.levels(Side.SELL)
        return BookSnapshot(ts, ts, self.symbol, seq, bp, bs, ap, az)

    def copy(self) -> L3Book:
        """An independent copy (orders, queues and anonymous sizes included)."""
        new = L3Book(self.symbol)
        for side, book in self._sides.items():
            nb = new._sides[side]
            nb.keys = list(book.keys)
            nb.levels = {p: lvl.copy() for p, lvl in book.levels.items()}
        new._orders = dict(self._orders)
        return new

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._orders

    def __eq__(self, other: object) -> bool:
        """Same levels, anonymous sizes and queues (in order) on both sides."""
        if not isinstance(other, L3Book):
            return NotImplemented
        return all(
            self._sides[s].keys == other._sides[s].keys
            and {p: lvl.state() for p, lvl in self._sides[s].levels.items()}
            == {p: lvl.state() for p, lvl in other._sides[s].levels.items()}
            for s in (Side.BUY, Side.SELL)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"L3Book({self.symbol!r}, bids={self.n_levels(Side.BUY)}, asks={self.n_levels(Side.SELL)}, "
            f"orders={len(self._orders)}, bid={self.best_bid()}, ask={self.best_ask()})"
        )


def _name(event: Event) -> str:
    """How errors name an event: its type, sequence number and, for order events, the order."""
    seq = getattr(event, "seq", None)
    oid = getattr(event, "order_id", None)
    bits = [f"seq {seq}" if seq is not None else "", f"ts {event.ts}", f"order {oid}" if oid is not None else ""]
    return f"{type(event).__name__}({', '.join(b for b in bits if b)})"
