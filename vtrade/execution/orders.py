"""Orders: the commands that create, cancel and replace them, and their state machine.

Commands arrive on the ``orders`` topic keyed by symbol; each carries the account and a
client order id, which makes retries idempotent. Prices are integer ticks and quantities
integer lots of the instrument (DESIGN.md §3); conversion and validation of user input
happens at the edge (:func:`vtrade.execution.validation.submit_from_user`).

The state machine (every transition is an event on the ``exec`` topic)::

    NEW ─► ACCEPTED ─► PARTIALLY_FILLED ─► FILLED
     │        │  └───────────┬────────────► CANCELLED / EXPIRED
     └► REJECTED             (a triggered stop stays ACCEPTED until it fills)

>>> o = OrderState.new(SubmitOrder(0, "acct-1", "c-1", "SPY", Side.BUY, OrderType.LIMIT, 100, limit_price=16765))
>>> o = o.to(OrderStatus.ACCEPTED).fill(40, 16765)
>>> o.status, o.leaves
(<OrderStatus.PARTIALLY_FILLED: 'partially_filled'>, 60)
>>> o.to(OrderStatus.NEW)
Traceback (most recent call last):
...
vtrade.execution.orders.InvalidTransition: c-1: partially_filled -> new is not a legal order transition
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from vtrade.core.errors import VtradeError
from vtrade.core.events import Event, Side, register_event


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"  # becomes a market order when the stop price trades
    STOP_LIMIT = "stop_limit"  # becomes a limit order when the stop price trades
    TRAILING_STOP = "trailing_stop"  # a stop that follows the best price by an amount or a percentage


class TimeInForce(StrEnum):
    DAY = "day"  # expires at the instrument's session close
    GTC = "gtc"  # good till cancelled
    IOC = "ioc"  # immediate or cancel: fill what is possible now, cancel the rest
    FOK = "fok"  # fill or kill: fill all now or nothing
    GTD = "gtd"  # good till ``expire_ts``


class OrderStatus(StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED})
_LEGAL: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.NEW: frozenset({OrderStatus.ACCEPTED, OrderStatus.REJECTED}),
    OrderStatus.ACCEPTED: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}
    ),
}


class Liquidity(StrEnum):
    MAKER = "maker"  # the fill came from our resting order
    TAKER = "taker"  # our order took resting liquidity


# ---------------------------------------------------------------------------- commands
class SubmitOrder(Event, frozen=True, array_like=True, tag=True):
    """A new order. ``ts`` is when it reaches the exchange: entry time + entry latency (the
    sequencer stamps it so). Prices in ticks (None where the type has none), ``quantity`` in lots.

    ``trail_ticks`` / ``trail_bps`` set a trailing stop's distance (exactly one of them).

    ``size_to_cash`` (vectorbt's ``allow_partial``) asks the account rules to cut an order
    whose opening part needs more buying power than the account has down to the whole lots it
    can pay for, fee included, instead of refusing it
    (:func:`vtrade.execution.accounts.size_to_cash`). An order so cut carries what was asked
    for in ``requested_quantity`` (None otherwise), and the exchange's acceptance reports both
    (:class:`vtrade.execution.events.OrderAcceptedReduced`).
    """

    account: str
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int
    limit_price: int | None = None
    stop_price: int | None = None
    trail_ticks: int | None = None
    trail_bps: int | None = None
    tif: TimeInForce = TimeInForce.DAY
    expire_ts: int | None = None
    post_only: bool = False
    reduce_only: bool = False
    size_to_cash: bool = False
    requested_quantity: int | None = None
    note: str = ""  # the trader's note (a class may require one); last and defaulted: old journals decode


class CancelOrder(Event, frozen=True, array_like=True, tag=True):
    """Cancel the rest of an open order."""

    account: str
    client_order_id: str
    symbol: str


class ReplaceOrder(Event, frozen=True, array_like=True, tag=True):
    """Change an open order's quantity and/or prices. ``None`` keeps a field as it is.

    Queue priority follows exchange practice: only a pure quantity decrease keeps the
    order's place; a price change or a quantity increase sends it to the back.
    """

    account: str
    client_order_id: str
    symbol: str
    quantity: int | None = None
    limit_price: int | None = None
    stop_price: int | None = None


Command = SubmitOrder | CancelOrder | ReplaceOrder


class OpenAccount(Event, frozen=True, array_like=True, tag=True):
    """A person opens ``account`` with ``cash`` (exact decimal string) as a ``"cash"`` or
    ``"margin"`` account: the first entry of an account on the ``orders`` log."""

    account: str
    cash: str
    kind: str = "cash"


class CloseSession(Event, frozen=True, array_like=True, tag=True):
    """``account``'s session left (a browser tab closed); ``cancel``: its open orders go too."""

    account: str
    cancel: bool = True


# ---------------------------------------------------------------------------- the log's own entries
# A market shared by several processes (one paces it, the others are replicas: see
# vtrade.runtime.live_log) puts these on ``orders`` too, so the one total order of the log says
# where each slice falls among people's entries.


class MarketOpened(Event, frozen=True, array_like=True, tag=True):
    """The first entry of a shared market's log: its configuration's ``fingerprint`` and the
    ``member`` that paces it (the first to claim the log)."""

    fingerprint: str
    member: str


class SliceTick(Event, frozen=True, array_like=True, tag=True):
    """The pacer ran the slice that ends at ``ts``: every process folding ``orders`` runs it at
    this place among the entries. ``wall_ns``: when the pacer started it (UTC ns), so a replica's
    views say how old what they show is as of the market, not as of their own copy."""

    wall_ns: int = 0


# ---------------------------------------------------------------------------- teacher's market events
# Entries on the ``orders`` log like the ones above, so they are journaled and re-run at the slice
# they were made in: every student sees them on the same tape, and a restart brings them back.
# Each carries the caller's ``id``: the market applies an id once (a class may replay its own).


class MarketShock(Event, frozen=True, array_like=True, tag=True):
    """Every one of ``symbols`` moves by ``pct`` per cent (exact decimal string) now, and stays moved."""

    id: str
    symbols: tuple[str, ...]
    pct: str


class TradingHalt(Event, frozen=True, array_like=True, tag=True):
    """Trading in ``symbol`` halts (``halted``) or resumes; ``reason`` is what students are told."""

    id: str
    symbol: str
    halted: bool
    reason: str = ""


class LiquidityDrought(Event, frozen=True, array_like=True, tag=True):
    """The displayed depth of ``symbols`` times ``factor`` (exact decimal string in (0, 1)) for
    ``duration_ns`` of simulated time, then back to normal."""

    id: str
    symbols: tuple[str, ...]
    factor: str
    duration_ns: int


Intervention = MarketShock | TradingHalt | LiquidityDrought


class InvalidTransition(VtradeError):
    """An order was asked to move between states that the state machine does not connect."""


@dataclass(frozen=True, slots=True)
class OrderState:
    """An order as the engine knows it. Immutable: every change returns a new state."""

    order: SubmitOrder
    status: OrderStatus = OrderStatus.NEW
    filled: int = 0
    notional: int = 0  # sum of fill price ticks x lots: the exact average price is notional / filled
    triggered: bool = False
    reason: str = ""

    @classmethod
    def new(cls, order: SubmitOrder) -> OrderState:
        return cls(order)

    @property
    def client_order_id(self) -> str:
        return self.order.client_order_id

    @property
    def leaves(self) -> int:
        """Lots still to fill (0 once the order is terminal)."""
        return 0 if self.status.is_terminal else self.order.quantity - self.filled

    def to(self, status: OrderStatus, reason: str = "") -> OrderState:
        """Move to ``status``; InvalidTransition if the state machine does not allow it."""
        if status not in _LEGAL.get(self.status, frozenset()):
            move = f"{self.status} -> {status}"
            raise InvalidTransition(f"{self.client_order_id}: {move} is not a legal order transition")
        # Direct construction: dataclasses.replace costs several times more on this hot path.
        return OrderState(self.order, status, self.filled, self.notional, self.triggered, reason or self.reason)

    def fill(self, quantity: int, price: int) -> OrderState:
        """Record a fill of ``quantity`` lots at ``price`` ticks (partially filled or filled)."""
        if not 0 < quantity <= self.leaves:
            raise InvalidTransition(f"{self.client_order_id}: cannot fill {quantity} with {self.leaves} left")
        filled = self.filled + quantity
        status = OrderStatus.FILLED if filled == self.order.quantity else OrderStatus.PARTIALLY_FILLED
        self.to(status)  # checks the transition
        return OrderState(self.order, status, filled, self.notional + quantity * price, self.triggered, self.reason)

    def amend(self, order: SubmitOrder) -> OrderState:
        """The same order with replaced terms (quantity, prices); status and fills carry over."""
        if order.quantity <= self.filled:
            raise InvalidTransition(f"{self.client_order_id}: new quantity {order.quantity} <= filled {self.filled}")
        return replace(self, order=order)


class SetLimits(Event, frozen=True, array_like=True, tag=True):
    """The class's account rules from now on (the ones a teacher may change while trading; see
    :class:`~vtrade.execution.accounts.SessionLimits`). Decimals as exact strings; None = no limit."""

    allowed_symbols: tuple[str, ...] | None
    max_position_pct_nav: str | None
    max_orders_per_day: int | None
    min_share_price: str | None
    shorting_allowed: bool


register_event(SubmitOrder, CancelOrder, ReplaceOrder, OpenAccount, CloseSession, MarketShock, TradingHalt,
               LiquidityDrought, SetLimits, MarketOpened, SliceTick)
