"""Validation at the edge: turn what a person typed into an exact :class:`SubmitOrder`.

Order entry (widgets, notebooks, the CLI, the copilot after signature) hands over loose input:
strings, floats, Decimals, enum names in any case. :func:`submit_from_user` converts it onto
the instrument's tick and lot grids (DESIGN.md §3) and checks that the order makes sense for
its type, or raises :class:`OrderInputError` naming the field, a :class:`RejectCode` and a
sentence a student can act on. Nothing is rounded: ``61800.35`` on a 0.1 tick is an error.

Checks run in this order, and the first failure is raised: instrument (symbol known),
account and client order id present, side, order type, time in force, quantity, prices
(limit, stop, trail) and which of them the order type requires or forbids, expiry (GTD),
then flag combinations (post-only).

>>> from vtrade.core.instruments import BINANCE_BTCUSDT_USDM as btc
>>> o = submit_from_user("acct-1", "c-1", btc, "buy", "limit", "0.25", limit_price="61800.3")
>>> o.quantity, o.limit_price, o.side.name, o.order_type.value
(250, 618003, 'BUY', 'limit')
>>> submit_from_user("acct-1", "c-2", btc, "buy", "limit", "0.25", limit_price="61800.35")
Traceback (most recent call last):
...
vtrade.execution.validation.OrderInputError: 61800.35 is not a multiple of the 0.1 tick
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import TypeVar

import numpy as np

from vtrade.core.errors import VtradeError
from vtrade.core.events import Side
from vtrade.core.instruments import Instrument
from vtrade.core.numbers import Number, count_of
from vtrade.execution.events import OrderRejected, RejectCode
from vtrade.execution.orders import OrderType, SubmitOrder, TimeInForce

__all__ = ["OrderInputError", "submit_from_user"]

E = TypeVar("E", bound=Enum)


class OrderInputError(VtradeError, ValueError):
    """User input that cannot become an order. ``str(err)`` is the readable ``reason``.

    >>> err = OrderInputError(RejectCode.INVALID_QUANTITY, "quantity", "The quantity must be positive, got -5")
    >>> err.code, err.field, str(err)
    (<RejectCode.INVALID_QUANTITY: 'invalid_quantity'>, 'quantity', 'The quantity must be positive, got -5')
    """

    def __init__(self, code: RejectCode, field: str, reason: str) -> None:
        self.code = code
        self.field = field
        self.reason = reason
        super().__init__(reason)

    def as_rejected(self, ts: int, account: str, client_order_id: str, symbol: str) -> OrderRejected:
        """The ``exec`` event that reports this error, for callers that log rejections."""
        return OrderRejected(ts, account, client_order_id, symbol, self.code, self.reason)


_SIDES: dict[str, Side] = {"buy": Side.BUY, "sell": Side.SELL}
_TYPE_ALIASES: dict[str, OrderType] = {"mkt": OrderType.MARKET, "lmt": OrderType.LIMIT}
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")


def _listing(options: Iterable[object]) -> str:
    return ", ".join(repr(o) for o in options)


def _enum_value(value: object, enum: type[E], field: str, what: str, aliases: Mapping[str, E]) -> E:
    """Parse an enum from its member, its value or name (any case; '-' or ' ' for '_')."""
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        key = "_".join(value.strip().lower().replace("-", " ").split())
        if key in aliases:
            return aliases[key]
        for member in enum:
            if key in (str(member.value).lower(), member.name.lower()):
                return member
    valid = _listing(aliases) if enum is Side else _listing(m.value for m in enum)
    raise OrderInputError(
        RejectCode.UNKNOWN_ORDER_TYPE, field, f"Unknown {what} {value!r}: use one of {valid}"
    )


def _decimal(value: object, field: str, code: RejectCode, what: str) -> Decimal:
    """A finite Decimal from str/Decimal/int/float (NumPy scalars too: prices read out of a
    DataFrame are ``np.float64``), or OrderInputError(code, field)."""
    if isinstance(value, np.bool_):
        value = bool(value)
    elif isinstance(value, np.integer):
        value = int(value)
    elif isinstance(value, np.floating):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, str | Decimal | int | float):
        raise OrderInputError(code, field, f"The {what} must be a number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise OrderInputError(code, field, f"The {what} must be a finite number, got {value}")
        value = repr(value)  # shortest round-tripping text, so 0.1 stays 0.1
    if isinstance(value, str):
        text = value.strip()
        if _THOUSANDS.match(text):  # "1,000" as people write it
            text = text.replace(",", "")
        if not text:
            raise OrderInputError(RejectCode.MISSING_FIELD, field, f"The {what} is empty")
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise OrderInputError(code, field, f"The {what} must be a number, got {value!r}") from None
    d = Decimal(value)
    if not d.is_finite():
        raise OrderInputError(code, field, f"The {what} must be a finite number, got {value}")
    return d


def _on_grid(d: Decimal, increment: Decimal, field: str, code: RejectCode, unit: str) -> int:
    # Plain digits as people type them, except for extreme exponents (which would print ~1e9 digits).
    shown = f"{d.normalize():f}" if -30 < d.adjusted() < 30 else f"{d:E}"
    try:
        n = count_of(d, increment)
    except OverflowError:
        raise OrderInputError(code, field, f"{shown} is out of range (over 2**63 of the {increment} {unit})") from None
    if n is None:
        raise OrderInputError(code, field, f"{shown} is not a multiple of the {increment} {unit}")
    return n


def _price(value: Number, instrument: Instrument, field: str, what: str) -> int:
    d = _decimal(value, field, RejectCode.INVALID_PRICE, what)
    if d <= 0:
        raise OrderInputError(RejectCode.INVALID_PRICE, field, f"The {what} must be positive, got {d.normalize():f}")
    return _on_grid(d, instrument.price_grid.increment, field, RejectCode.OFF_TICK, "tick")


def _resolve_instrument(instrument: Instrument | str, instruments: Mapping[str, Instrument] | None) -> Instrument:
    if isinstance(instrument, Instrument):
        return instrument
    symbol = instrument.strip().upper() if isinstance(instrument, str) else instrument
    found = (instruments or {}).get(symbol) if isinstance(symbol, str) else None
    if found is None:
        known = sorted(instruments or {})
        hint = f"; this session trades {', '.join(known[:12])}{', ...' if len(known) > 12 else ''}" if known else ""
        raise OrderInputError(RejectCode.UNKNOWN_SYMBOL, "symbol", f"Unknown symbol {instrument!r}{hint}")
    return found


def _forbid(value: object, field: str, order_type: OrderType, why: str) -> None:
    if value is not None:
        raise OrderInputError(
            RejectCode.INVALID_PRICE, field, f"A {order_type.value.replace('_', '-')} order takes no {why}"
        )


def _trail(
    trail: Number | None, trail_percent: Number | None, instrument: Instrument
) -> tuple[int | None, int | None]:
    """``(trail_ticks, trail_bps)``: exactly one is set. ``trail`` may be a "1.5%" string."""
    if isinstance(trail, str) and trail.strip().endswith("%"):
        if trail_percent is not None:
            raise OrderInputError(
                RejectCode.MISSING_FIELD, "trail", "Give the trailing distance once: an amount or a percent, not both"
            )
        trail_percent = trail.strip()[:-1]
        trail = None
    if (trail is None) == (trail_percent is None):
        raise OrderInputError(
            RejectCode.MISSING_FIELD,
            "trail",
            "A trailing-stop order needs exactly one trailing distance: an amount (trail) or a percent (trail_percent)"
            if trail is None
            else "Give the trailing distance once: an amount or a percent, not both",
        )
    if trail is not None:
        return _price(trail, instrument, "trail", "trailing amount"), None
    pct = _decimal(trail_percent, "trail_percent", RejectCode.INVALID_PRICE, "trailing percent")
    if not 0 < pct < 100:
        raise OrderInputError(
            RejectCode.INVALID_PRICE, "trail_percent", f"The trailing percent must be between 0 and 100, got {pct}"
        )
    bps = pct * 100
    if bps != bps.to_integral_value():
        raise OrderInputError(
            RejectCode.INVALID_PRICE,
            "trail_percent",
            f"{pct.normalize():f}% is finer than the 0.01% (one basis point) a trailing percent is set in",
        )
    return None, int(bps)


def submit_from_user(
    account: str,
    client_order_id: str,
    instrument: Instrument | str,
    side: Side | str,
    order_type: OrderType | str,
    quantity: Number,
    limit_price: Number | None = None,
    stop_price: Number | None = None,
    trail: Number | None = None,
    tif: TimeInForce | str = "day",
    *,
    trail_percent: Number | None = None,
    expire_ts: int | None = None,
    post_only: bool = False,
    reduce_only: bool = False,
    size_to_cash: bool = False,
    ts: int = 0,
    instruments: Mapping[str, Instrument] | None = None,
) -> SubmitOrder:
    """An exact :class:`SubmitOrder` from user input, or :class:`OrderInputError`.

    ``instrument`` is an :class:`Instrument` or a symbol looked up (case-insensitively) in
    ``instruments``. Prices are in the instrument's price units (dollars, USDT), quantities in
    its size units (shares, coins). ``trail`` is a trailing amount in price units, or a percent
    written ``"1.5%"``; ``trail_percent`` is the same percent as a number. ``ts`` is the entry
    time (UTC ns) and ``expire_ts`` a GTD order's expiry (UTC ns). ``size_to_cash`` lets the
    account rules cut the order to what buying power pays for instead of refusing it.

    >>> from vtrade.core.instruments import us_equity
    >>> spy = {"SPY": us_equity("SPY")}
    >>> submit_from_user("a", "c-1", "spy", "SELL", "trailing-stop", 10, trail="1.5%", tif="gtc", instruments=spy)
    SubmitOrder(ts=0, account='a', client_order_id='c-1', symbol='SPY', side=<Side.SELL: -1>, \
order_type=<OrderType.TRAILING_STOP: 'trailing_stop'>, quantity=10, limit_price=None, stop_price=None, \
trail_ticks=None, trail_bps=150, tif=<TimeInForce.GTC: 'gtc'>, expire_ts=None, post_only=False, reduce_only=False, \
size_to_cash=False, requested_quantity=None, note='')
    """
    if isinstance(ts, bool) or not isinstance(ts, int) or ts < 0:
        # The entry time comes from the runtime, not the user: a bad one is a caller bug.
        raise ValueError(f"ts must be a non-negative int of UTC nanoseconds, got {ts!r}")
    inst = _resolve_instrument(instrument, instruments)
    for field, text in (("account", account), ("client_order_id", client_order_id)):
        if not isinstance(text, str) or not text.strip():
            raise OrderInputError(RejectCode.MISSING_FIELD, field, f"The order needs a non-empty {field}")
    side_ = _enum_value(side, Side, "side", "side", _SIDES)
    type_ = _enum_value(order_type, OrderType, "order_type", "order type", _TYPE_ALIASES)
    tif_ = _enum_value(tif, TimeInForce, "tif", "time in force", {})

    qty = _decimal(quantity, "quantity", RejectCode.INVALID_QUANTITY, "quantity")
    if qty <= 0:
        raise OrderInputError(
            RejectCode.INVALID_QUANTITY, "quantity", f"The quantity must be positive, got {qty.normalize():f}"
        )
    lots = _on_grid(qty, inst.size_grid.increment, "quantity", RejectCode.OFF_LOT, "lot size")

    needs_limit = type_ in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    needs_stop = type_ in (OrderType.STOP, OrderType.STOP_LIMIT)
    kind = type_.value.replace("_", "-")
    if needs_limit and limit_price is None:
        raise OrderInputError(RejectCode.MISSING_FIELD, "limit_price", f"A {kind} order needs a limit price")
    if needs_stop and stop_price is None:
        raise OrderInputError(RejectCode.MISSING_FIELD, "stop_price", f"A {kind} order needs a stop price")
    if not needs_limit:
        _forbid(limit_price, "limit_price", type_, "limit price")
    if not needs_stop:
        _forbid(stop_price, "stop_price", type_, "stop price")
    limit = None if limit_price is None else _price(limit_price, inst, "limit_price", "limit price")
    stop = None if stop_price is None else _price(stop_price, inst, "stop_price", "stop price")
    trail_ticks = trail_bps = None
    if type_ is OrderType.TRAILING_STOP:
        trail_ticks, trail_bps = _trail(trail, trail_percent, inst)
    else:
        _forbid(trail, "trail", type_, "trailing distance")
        _forbid(trail_percent, "trail_percent", type_, "trailing percent")

    if tif_ is TimeInForce.GTD:
        if expire_ts is None:
            raise OrderInputError(RejectCode.MISSING_FIELD, "expire_ts", "A GTD (good-till-date) order needs an expiry")
        if isinstance(expire_ts, bool) or not isinstance(expire_ts, int) or expire_ts <= ts:
            raise OrderInputError(
                RejectCode.MISSING_FIELD,
                "expire_ts",
                f"A GTD order's expiry must be a time (UTC ns) after the order's entry at {ts}, got {expire_ts!r}",
            )
    elif expire_ts is not None:
        raise OrderInputError(
            RejectCode.MISSING_FIELD, "expire_ts", f"Only GTD orders take an expiry; this one is {tif_.value.upper()}"
        )

    if post_only:
        if type_ in (OrderType.MARKET, OrderType.STOP, OrderType.TRAILING_STOP):
            raise OrderInputError(
                RejectCode.POST_ONLY_WOULD_TAKE,
                "post_only",
                f"A {kind} order takes liquidity when it executes, so it cannot be post-only; use a limit order",
            )
        if tif_ in (TimeInForce.IOC, TimeInForce.FOK):
            raise OrderInputError(
                RejectCode.POST_ONLY_WOULD_TAKE,
                "post_only",
                f"A post-only order must rest in the book, which {tif_.value.upper()} never does",
            )
    return SubmitOrder(
        ts,
        account.strip(),
        client_order_id.strip(),
        inst.symbol,
        side_,
        type_,
        lots,
        limit_price=limit,
        stop_price=stop,
        trail_ticks=trail_ticks,
        trail_bps=trail_bps,
        tif=tif_,
        expire_ts=expire_ts,
        post_only=bool(post_only),
        reduce_only=bool(reduce_only),
        size_to_cash=bool(size_to_cash),
    )
