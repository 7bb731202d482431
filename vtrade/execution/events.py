"""Execution events: what the execution worker appends to the ``exec`` topic.

Every order state transition is one of these; a fill carries its receipt (DESIGN.md §5):
arrival mid, fill price, slippage vs arrival mid, fee, maker/taker, queue position at entry
where relevant, and the model that produced it. Money is exact ``Decimal`` in the
instrument's currency; prices are ticks and quantities lots.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from vtrade.core.events import Event, Side, register_event
from vtrade.execution.orders import Liquidity


def halted_reason(symbol: str) -> str:
    """The one sentence an order in a halted market is refused with (by the broker or, for an
    order already on its way, by the exchange).

    >>> halted_reason("XOM")
    'Trading in XOM is halted; orders are refused until it resumes'
    """
    return f"Trading in {symbol} is halted; orders are refused until it resumes"


class RejectCode(StrEnum):
    """Why an order or command was refused; each comes with a sentence a student can read."""

    INVALID_QUANTITY = "invalid_quantity"
    INVALID_PRICE = "invalid_price"
    OFF_TICK = "off_tick"
    OFF_LOT = "off_lot"
    UNKNOWN_SYMBOL = "unknown_symbol"
    UNKNOWN_ORDER_TYPE = "unknown_order_type"
    MISSING_FIELD = "missing_field"
    DUPLICATE_ORDER_ID = "duplicate_order_id"
    UNKNOWN_ORDER = "unknown_order"
    ORDER_NOT_OPEN = "order_not_open"
    INSUFFICIENT_BUYING_POWER = "insufficient_buying_power"
    SHORT_SELLING_NOT_ALLOWED = "short_selling_not_allowed"
    HARD_TO_BORROW = "hard_to_borrow"
    MARKET_CLOSED = "market_closed"
    HALTED = "halted"
    SYMBOL_NOT_ALLOWED = "symbol_not_allowed"
    MAX_POSITION = "max_position"
    MAX_ORDERS = "max_orders"
    MIN_PRICE = "min_price"
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    REDUCE_ONLY = "reduce_only"
    PRICE_PROTECTION = "price_protection"
    FOK_NOT_FILLABLE = "fok_not_fillable"
    NO_LIQUIDITY = "no_liquidity"
    INVALID_NOTE = "invalid_note"  # an order's note that is not text


def _exec_tag(name: str) -> str:
    # Namespaced: the market-data L3 events already use names like ``OrderCancelled``.
    return f"exec.{name}"


class ExecEvent(Event, frozen=True, array_like=True, tag=_exec_tag):
    """Base of execution events: which account's which order on which symbol."""

    account: str
    client_order_id: str
    symbol: str


class OrderAccepted(ExecEvent, frozen=True, array_like=True):
    """The order reached the exchange and rests or works there."""


class OrderAcceptedReduced(OrderAccepted, frozen=True, array_like=True):
    """Accepted for less than was asked: a ``size_to_cash`` order cut to what buying power pays
    for. ``requested_quantity`` lots were asked for, ``quantity`` lots work at the exchange."""

    requested_quantity: int
    quantity: int
    reason: str


class OrderRejected(ExecEvent, frozen=True, array_like=True):
    """The command was refused; nothing changed. ``reason`` is for people, ``code`` for code."""

    code: RejectCode
    reason: str


class OrderTriggered(ExecEvent, frozen=True, array_like=True):
    """A stop (or trailing stop) price traded: the order now works as a market or limit order."""

    stop_price: int


class OrderFilled(ExecEvent, frozen=True, array_like=True):
    """A fill and its receipt.

    ``arrival_mid2`` is twice the mid (exact ticks) when the order reached the book;
    ``slippage_bps`` is signed so that positive means worse than arrival mid for the side;
    ``queue_ahead`` is the quantity ahead of a resting order when it joined (None for takers).
    """

    fill_id: str
    side: Side
    price: int
    quantity: int
    leaves: int
    liquidity: Liquidity
    fee: Decimal
    arrival_mid2: int
    slippage_bps: float
    model: str
    queue_ahead: int | None = None


class OrderCancelled(ExecEvent, frozen=True, array_like=True):
    """The rest of the order (``leaves`` lots) was cancelled: by the user, IOC, FOK or a rule."""

    leaves: int
    reason: str = ""


class OrderExpired(ExecEvent, frozen=True, array_like=True):
    """A DAY or GTD order reached its end with ``leaves`` lots unfilled."""

    leaves: int


class OrderReplaced(ExecEvent, frozen=True, array_like=True):
    """New terms took effect; ``kept_priority`` says whether the order kept its queue place."""

    quantity: int
    limit_price: int | None
    stop_price: int | None
    kept_priority: bool


class CorporateActionApplied(ExecEvent, frozen=True, array_like=True):
    """A split or cash dividend changed this account's holding (``client_order_id`` is empty).

    ``position_before``/``position_after`` in lots; ``cash`` is what the account received
    (negative: paid): the dividend on the holding (a short pays it), or cash in lieu of the
    fraction of a share a split leaves (a short pays to buy it back). ``kind``, ``ex_date``,
    ``ratio_num``/``ratio_den`` and ``amount`` repeat the action's terms.
    """

    kind: str
    ex_date: str
    ratio_num: int
    ratio_den: int
    amount: Decimal
    position_before: int
    position_after: int
    cash: Decimal


register_event(
    OrderAccepted, OrderAcceptedReduced, OrderRejected, OrderTriggered, OrderFilled, OrderCancelled, OrderExpired,
    OrderReplaced, CorporateActionApplied,
)
