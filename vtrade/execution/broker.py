"""The broker between a user and the exchange: account rules before an order leaves, the
account's books after each execution event.

:class:`Broker` is pure and deterministic: it folds execution events into cash, positions,
reservations and the day's order count, and answers two questions with the rules of
:mod:`vtrade.execution.accounts`: may this order go out (buying power, cash vs margin,
shorting and borrow, trading hours and halts, class limits)? Is the account in a margin
call, and which orders liquidate it?

>>> from vtrade.core.instruments import us_equity
>>> from vtrade.execution.accounts import MarketStatus
>>> from vtrade.execution.orders import OrderType
>>> spy = us_equity("SPY")
>>> b = Broker(spy, "you", cash=Decimal("1000"))
>>> order = SubmitOrder(0, "you", "c-1", "SPY", Side.BUY, OrderType.LIMIT, 10, limit_price=16765)
>>> b.check(order, bid=16764, ask=16765, last=16765, market=MarketStatus(open=True)).reason
'Not enough buying power: this order needs $1,676.50, you have $1,000.00'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from vtrade.core.events import Side
from vtrade.core.instruments import Instrument
from vtrade.execution import events as ev
from vtrade.execution.accounts import (
    AccountKind,
    AccountState,
    MarginPolicy,
    MarginStatus,
    Mark,
    MarketStatus,
    PreTradeContext,
    Rejection,
    Reservation,
    SessionLimits,
    liquidation_orders,
    margin_status,
    pre_trade_check,
    size_to_cash,
)
from vtrade.execution.fees import FeeModel
from vtrade.execution.orders import SubmitOrder


@dataclass
class Broker:
    """One account trading one instrument. ``cash`` is the opening cash in the instrument's currency."""

    instrument: Instrument
    account: str
    cash: Decimal = Decimal("100000")
    kind: AccountKind = "cash"
    limits: SessionLimits = field(default_factory=SessionLimits)
    policy: MarginPolicy = field(default_factory=MarginPolicy)
    fees: FeeModel | None = None
    position: int = 0
    orders_today: int = 0
    _day: int = -1
    _open: dict[str, SubmitOrder] = field(default_factory=dict)
    _filled: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cash = Decimal(self.cash)

    # ------------------------------------------------------------------ state
    def state(self) -> AccountState:
        """The account as the rules see it now (open orders hold their remaining quantity)."""
        res = []
        for o in self._open.values():
            left = o.quantity - self._filled.get(o.client_order_id, 0)
            price = o.limit_price if o.limit_price is not None else o.stop_price
            res.append(Reservation.for_order(self.instrument, o.client_order_id, o.side, left, price))
        positions = {self.instrument.symbol: self.position} if self.position else {}
        return AccountState(self.account, self.kind, self.cash, positions, tuple(res))

    def on_exec(self, e: ev.ExecEvent) -> None:
        """Fold one execution event of this account into its books."""
        if e.account != self.account:
            return
        if isinstance(e, ev.OrderFilled):
            signed = e.quantity if e.side is Side.BUY else -e.quantity
            self.position += signed
            self.cash -= self._value(e.price, signed) + e.fee
            self._filled[e.client_order_id] = self._filled.get(e.client_order_id, 0) + e.quantity
            if e.leaves == 0:
                self._close(e.client_order_id)
        elif isinstance(e, ev.OrderCancelled | ev.OrderExpired | ev.OrderRejected):
            self._close(e.client_order_id)
        elif isinstance(e, ev.CorporateActionApplied):  # a split or dividend (cash in lieu, dividend)
            self.position += e.position_after - e.position_before
            self.cash += e.cash

    # ------------------------------------------------------------------ rules
    def check(
        self, order: SubmitOrder, *, bid: int | None, ask: int | None, last: int | None, market: MarketStatus
    ) -> Rejection | None:
        """Pre-trade rules for ``order`` at its entry; on success the order counts as sent.

        A ``size_to_cash`` order may be cut: :meth:`admit` returns the order to send."""
        return self.admit(order, bid=bid, ask=ask, last=last, market=market)[1]

    def admit(
        self, order: SubmitOrder, *, bid: int | None, ask: int | None, last: int | None, market: MarketStatus
    ) -> tuple[SubmitOrder, Rejection | None]:
        """``(order to send, None)`` if the rules let ``order`` go, else ``(order, rejection)``.

        The order to send is ``order`` itself, or, for a ``size_to_cash`` order buying power
        cannot pay for in full, the same order cut to what it pays for
        (:func:`vtrade.execution.accounts.size_to_cash`).

        >>> from vtrade.core.instruments import us_equity
        >>> from vtrade.execution.orders import OrderType
        >>> b = Broker(us_equity("SPY"), "you", cash=Decimal("1000"))
        >>> o = SubmitOrder(0, "you", "c-1", "SPY", Side.BUY, OrderType.LIMIT, 10, limit_price=16765, size_to_cash=True)
        >>> sent, refused = b.admit(o, bid=16764, ask=16765, last=16765, market=MarketStatus(open=True))
        >>> sent.quantity, sent.requested_quantity, refused   # 5 × $167.65 = $838.25 ≤ $1,000
        (5, 10, None)
        """
        self._roll_day(order.ts)
        marks = {self.instrument.symbol: Mark(self.instrument, m)} if (m := _mark(bid, ask, last)) else {}
        ctx = PreTradeContext(
            self.instrument, self.state(), market, marks, bid, ask, last, self.orders_today,
            self.limits, self.policy, self.fees,
        )  # fmt: skip
        order = size_to_cash(order, ctx)
        rejection = pre_trade_check(order, ctx)
        if rejection is None:
            self.orders_today += 1
            self._open[order.client_order_id] = order
        return order, rejection

    def margin(self, price: int) -> MarginStatus:
        """Margin status with the position marked at ``price`` ticks."""
        return margin_status(self.state(), {self.instrument.symbol: Mark(self.instrument, price)}, self.policy)

    def liquidations(self, price: int, ts: int) -> list[SubmitOrder]:
        """Orders that bring a margin call back above maintenance (none when there is no call)."""
        if self.kind != "margin":
            return []
        marks = {self.instrument.symbol: Mark(self.instrument, price)}
        orders = liquidation_orders(self.state(), marks, self.policy, ts)
        for o in orders:
            self._open[o.client_order_id] = o
        return orders

    # ------------------------------------------------------------------ helpers
    def _close(self, client_order_id: str) -> None:
        self._open.pop(client_order_id, None)
        self._filled.pop(client_order_id, None)

    def _value(self, price: int, lots: int) -> Decimal:
        return self.instrument.price_grid.to_decimal(price) * self.instrument.size_grid.to_decimal(lots)

    def _roll_day(self, ts: int) -> None:
        day = ts // 86_400_000_000_000  # UTC day: the daily order limit resets at midnight UTC
        if day != self._day:
            self._day, self.orders_today = day, 0


def _mark(bid: int | None, ask: int | None, last: int | None) -> int | None:
    if bid is not None and ask is not None:
        return (bid + ask) // 2
    return last
