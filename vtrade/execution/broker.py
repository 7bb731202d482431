"""The broker between people and the exchange: account rules before an order leaves, the
accounts' books after each execution event, order previews, and margin calls.

:class:`Brokerage` is the one account model (DESIGN.md §2, §5): pure and deterministic, for
many accounts over many symbols. An account is its cash and positions (read from a
:class:`~vtrade.portfolio.ledger.Ledger` when one keeps them, else folded by the broker itself
from fills), the orders it has working and what they reserve, and its orders today. The broker
answers, with the rules of :mod:`vtrade.execution.accounts`:

- may this order go out (:meth:`Brokerage.admit`: buying power, cash vs margin, shorting and
  borrow, trading hours and halts, class limits; a ``size_to_cash`` order is cut to fit)?
- what would it do now (:meth:`Brokerage.preview`, :mod:`vtrade.execution.preview`)?
- is an account below maintenance, and which orders liquidate it
  (:meth:`Brokerage.margin_calls`: the largest positions first, with a reason to read)?

Prices come in as integer ticks through a *mark source*: a mapping ``symbol -> ticks`` or a
function ``symbol -> ticks | None`` (the broker asks only for what an account holds or orders).

:class:`Broker` is the same code for one account trading one instrument (``vt.replay``).

>>> from vtrade.core.instruments import us_equity
>>> from vtrade.execution.orders import OrderType
>>> spy = us_equity("SPY")
>>> b = Broker(spy, "you", cash=Decimal("1000"))
>>> order = SubmitOrder(0, "you", "c-1", "SPY", Side.BUY, OrderType.LIMIT, 10, limit_price=16765)
>>> b.check(order, bid=16764, ask=16765, last=16765, market=MarketStatus(open=True)).reason
'Not enough buying power: this order needs $1,676.50, you have $1,000.00'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Protocol

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
    _money,
    buying_power,
    liquidation_orders,
    margin_status,
    pre_trade_check,
    size_to_cash,
)
from vtrade.execution.fees import FeeModel
from vtrade.execution.liquidity import ConsumedLiquidity
from vtrade.execution.orders import SubmitOrder
from vtrade.execution.preview import Preview, estimate_fill, preview_order

__all__ = [
    "Books",
    "Broker",
    "BrokerAccount",
    "Brokerage",
    "CashBook",
    "MarginCall",
    "MarkSource",
    "Preview",
    "estimate_fill",
]

#: Prices for valuing positions, in ticks: a mapping, or a function (None/0 = no price now).
MarkSource = Mapping[str, int] | Callable[[str], int | None]
#: Client order ids of the broker's own liquidation orders start with this.
LIQUIDATION_PREFIX = "liq"
_DAY_NS = 86_400_000_000_000


class Books(Protocol):
    """Where an account's cash and positions (symbol -> signed lots) are read from: a
    :class:`~vtrade.portfolio.ledger.Ledger`, or the broker's own :class:`CashBook`."""

    @property
    def cash(self) -> Decimal: ...

    @property
    def positions(self) -> Mapping[str, int]: ...


@dataclass
class CashBook:
    """Cash and positions folded from fills, for an account no ledger keeps (a replay)."""

    cash: Decimal
    positions: dict[str, int] = field(default_factory=dict)

    def apply(self, e: ev.ExecEvent, instrument: Instrument) -> None:
        if isinstance(e, ev.OrderFilled):
            signed = e.quantity if e.side is Side.BUY else -e.quantity
            self._move(e.symbol, signed)
            value = instrument.price_grid.to_decimal(e.price) * instrument.size_grid.to_decimal(signed)
            self.cash -= value + e.fee
        elif isinstance(e, ev.CorporateActionApplied):  # a split or dividend (cash in lieu, dividend)
            self._move(e.symbol, e.position_after - e.position_before)
            self.cash += e.cash

    def _move(self, symbol: str, lots: int) -> None:
        left = self.positions.get(symbol, 0) + lots
        if left:
            self.positions[symbol] = left
        else:
            self.positions.pop(symbol, None)


@dataclass
class BrokerAccount:
    """One account at the broker: its books, working orders (and lots filled of each) and the
    day's order count."""

    name: str
    kind: AccountKind
    books: Books
    initial_cash: Decimal
    own_books: bool = True  # the broker folds fills into ``books`` (else a ledger does)
    orders_today: int = 0
    day: int = -1
    working: dict[str, SubmitOrder] = field(default_factory=dict)
    filled: dict[str, int] = field(default_factory=dict)

    def leaves(self, client_order_id: str) -> int:
        o = self.working.get(client_order_id)
        return 0 if o is None else o.quantity - self.filled.get(client_order_id, 0)


@dataclass(frozen=True)
class MarginCall:
    """An account found below maintenance at ``ts`` and the orders that liquidate it.

    ``reason`` says it in a sentence a student can read; every liquidation order carries it.
    """

    account: str
    ts: int
    status: MarginStatus
    orders: tuple[SubmitOrder, ...]
    reason: str


class Brokerage:
    """Accounts trading ``instruments`` under one set of rules (see the module notes).

    >>> from vtrade.core.instruments import us_equity
    >>> from vtrade.execution.orders import OrderType
    >>> b = Brokerage([us_equity("AAA"), us_equity("BBB")])
    >>> _ = b.open_account("ada", Decimal("10000"), "margin")
    >>> buy = SubmitOrder(0, "ada", "ada-1", "AAA", Side.BUY, OrderType.LIMIT, 150, limit_price=10000)
    >>> b.admit(buy, market=MarketStatus(True), bid=9999, ask=10000, last=None, marks={"AAA": 10000})[1] is None
    True
    >>> b.buying_power("ada", {"AAA": 10000})   # Reg T: 2 x $10,000, less the $15,000 the order holds
    Decimal('5000.00')
    """

    def __init__(
        self,
        instruments: Iterable[Instrument] | Mapping[str, Instrument],
        *,
        limits: SessionLimits | None = None,
        policy: MarginPolicy | None = None,
        fees: FeeModel | None = None,
    ) -> None:
        insts = instruments.values() if isinstance(instruments, Mapping) else instruments
        self.instruments: dict[str, Instrument] = {i.symbol: i for i in insts}
        self.limits = limits or SessionLimits()
        self.policy = policy or MarginPolicy()
        self.fees = fees
        self.accounts: dict[str, BrokerAccount] = {}

    # ------------------------------------------------------------------ accounts
    def open_account(
        self, name: str, cash: Decimal | int | str = Decimal("100000"), kind: AccountKind = "cash", *,
        books: Books | None = None,
    ) -> BrokerAccount:  # fmt: skip
        """Open ``name`` with ``cash``; with ``books`` (a ledger) cash and positions are read from
        there and whoever keeps it books the fills, else the broker books them itself."""
        if name in self.accounts:
            raise ValueError(f"account {name!r} is already open")
        if kind not in ("cash", "margin"):
            raise ValueError(f"an account is 'cash' or 'margin', got {kind!r}")
        initial = Decimal(cash) if not isinstance(cash, Decimal) else cash
        acct = BrokerAccount(name, kind, books if books is not None else CashBook(initial), initial,
                             own_books=books is None)  # fmt: skip
        self.accounts[name] = acct
        return acct

    def account(self, name: str) -> BrokerAccount:
        try:
            return self.accounts[name]
        except KeyError:
            raise KeyError(f"no account {name!r} at the broker") from None

    def state(self, name: str) -> AccountState:
        """The account as the rules see it now (working orders hold their remaining quantity)."""
        acct = self.account(name)
        res = []
        for o in acct.working.values():
            price = o.limit_price if o.limit_price is not None else o.stop_price
            res.append(Reservation.for_order(self.instruments[o.symbol], o.client_order_id, o.side,
                                             acct.leaves(o.client_order_id), price))  # fmt: skip
        positions = {s: q for s, q in acct.books.positions.items() if q}
        return AccountState(acct.name, acct.kind, acct.books.cash, positions, tuple(res))

    def working(self, name: str, symbol: str | None = None) -> list[SubmitOrder]:
        """``name``'s orders the broker let go and that still work (all, or ``symbol``'s)."""
        acct = self.account(name)
        return [o for o in acct.working.values() if symbol is None or o.symbol == symbol]

    # ------------------------------------------------------------------ events
    def on_exec(self, e: ev.ExecEvent) -> None:
        """Fold one execution event into the books of its account (other accounts' are ignored)."""
        acct = self.accounts.get(e.account)
        if acct is None:
            return
        if acct.own_books:
            acct.books.apply(e, self.instruments[e.symbol])  # type: ignore[attr-defined]
        if isinstance(e, ev.OrderFilled):
            acct.filled[e.client_order_id] = acct.filled.get(e.client_order_id, 0) + e.quantity
            if e.leaves == 0:
                self._close(acct, e.client_order_id)
        elif isinstance(e, ev.OrderCancelled | ev.OrderExpired | ev.OrderRejected):
            self._close(acct, e.client_order_id)

    # ------------------------------------------------------------------ rules
    def admit(
        self, order: SubmitOrder, *, market: MarketStatus, bid: int | None, ask: int | None, last: int | None,
        marks: MarkSource,
    ) -> tuple[SubmitOrder, Rejection | None]:  # fmt: skip
        """``(order to send, None)`` if the rules let ``order`` go (it then counts as working and
        as one of today's orders), else ``(order, rejection)``.

        ``bid``/``ask``/``last`` are the order's own market in ticks (None: none); ``marks``
        values the account's other positions. The order to send is ``order`` itself or, for a
        ``size_to_cash`` order buying power cannot pay for in full, the same order cut to what
        it pays for (:func:`vtrade.execution.accounts.size_to_cash`).
        """
        acct = self.account(order.account)
        day = order.ts // _DAY_NS  # the daily order limit resets at midnight UTC
        if day != acct.day:
            acct.day, acct.orders_today = day, 0
        ctx = self._context(order, market=market, bid=bid, ask=ask, last=last, marks=marks)
        order = size_to_cash(order, ctx)
        rejection = pre_trade_check(order, ctx)
        if rejection is None:
            acct.orders_today += 1
            acct.working[order.client_order_id] = order
        return order, rejection

    def _context(
        self, order: SubmitOrder, *, market: MarketStatus, bid: int | None, ask: int | None, last: int | None,
        marks: MarkSource,
    ) -> PreTradeContext:  # fmt: skip
        acct = self.account(order.account)
        # Today's count as admit will see it: a count from an earlier day no longer applies.
        today = acct.orders_today if order.ts // _DAY_NS == acct.day else 0
        state = self.state(acct.name)
        return PreTradeContext(
            self.instruments[order.symbol], state, market, self._marks(state, marks, order.symbol), bid, ask, last,
            today, self.limits, self.policy, self.fees,
        )  # fmt: skip

    def buying_power(self, name: str, marks: MarkSource) -> Decimal:
        """What ``name`` may still spend (Reg T for a margin account), less what orders hold."""
        state = self.state(name)
        return buying_power(state, self._marks(state, marks), self.policy)

    def margin(self, name: str, marks: MarkSource) -> MarginStatus:
        """``name``'s equity, maintenance requirement and whether it is in a call, at ``marks``."""
        state = self.state(name)
        return margin_status(state, self._marks(state, marks), self.policy)

    def preview(
        self, order: SubmitOrder, *, levels: Iterable[tuple[int, int]], mid2: int | None, marks: MarkSource,
        used: ConsumedLiquidity | None = None, market: MarketStatus | None = None, bid: int | None = None,
        ask: int | None = None, last: int | None = None,
    ) -> Preview:  # fmt: skip
        """``order``'s estimated outcome against ``levels`` (the opposite side of its book, best
        first) with the account's buying power before and after; nothing is sent or reserved.

        Given the ``market``'s status and the order's own ``bid``/``ask``/``last`` (as for
        :meth:`admit`), the preview also carries the reason :meth:`admit` would refuse the order
        now (``refusal``): the same rules, without counting the order.

        >>> from vtrade.core.instruments import us_equity
        >>> from vtrade.execution.orders import OrderType
        >>> b = Brokerage({"SPY": us_equity("SPY")})
        >>> _ = b.open_account("you", cash=Decimal("1000"))
        >>> big = SubmitOrder(0, "you", "preview", "SPY", Side.BUY, OrderType.MARKET, 1_000_000)
        >>> p = b.preview(big, levels=[(16765, 500)], mid2=33529, marks={}, market=MarketStatus(open=True),
        ...               bid=16764, ask=16765, last=None)
        >>> p.refusal
        'Not enough buying power: this order needs $167,650,000.00, you have $1,000.00'
        >>> b.account("you").orders_today  # a preview is not an order
        0
        """
        inst = self.instruments[order.symbol]
        state = self.state(order.account)
        bp = buying_power(state, self._marks(state, marks, order.symbol), self.policy)
        p = preview_order(order, inst, levels, mid2=mid2, buying_power=bp, used=used, fees=self.fees)
        if market is None:
            return p
        ctx = self._context(order, market=market, bid=bid, ask=ask, last=last, marks=marks)
        refused = pre_trade_check(size_to_cash(order, ctx), ctx)
        return p if refused is None else replace(p, refusal=refused.reason)

    # ------------------------------------------------------------------ margin
    def margin_call(self, name: str, marks: MarkSource, ts: int) -> MarginCall | None:
        """A margin call on ``name`` at ``ts`` with its liquidation orders, or None.

        Only margin accounts are liquidated (a cash account cannot borrow). While liquidation
        orders of an earlier call still work, no new call is made: they are already selling.
        The orders (:func:`~vtrade.execution.accounts.liquidation_orders`: largest positions
        first, reduce-only market orders) count as working from now on; they skip the
        pre-trade rules, as a broker's own orders do.
        """
        acct = self.account(name)
        if acct.kind != "margin" or any(c.startswith(LIQUIDATION_PREFIX + "-") for c in acct.working):
            return None
        state = self.state(name)
        if not state.positions:
            return None
        prices = self._marks(state, marks)
        if any(s not in prices for s in state.positions):
            return None  # a holding with no price now: nothing to judge the call by
        orders = liquidation_orders(state, prices, self.policy, ts, id_prefix=LIQUIDATION_PREFIX)
        if not orders:
            return None
        status = margin_status(state, prices, self.policy)
        for o in orders:
            acct.working[o.client_order_id] = o
        return MarginCall(name, ts, status, tuple(orders), self._call_reason(status, orders))

    def margin_calls(self, marks: MarkSource, ts: int) -> list[MarginCall]:
        """Every margin account below maintenance at ``marks`` (in the order accounts were opened)."""
        calls = []
        for name, acct in self.accounts.items():
            if acct.kind == "margin":
                call = self.margin_call(name, marks, ts)
                if call is not None:
                    calls.append(call)
        return calls

    def _call_reason(self, status: MarginStatus, orders: list[SubmitOrder]) -> str:
        cur = next(iter(self.instruments.values())).currency
        what = ", ".join(
            f"{'selling' if o.side is Side.SELL else 'buying back'} "
            f"{self.instruments[o.symbol].size_grid.to_decimal(o.quantity)} {o.symbol}"
            for o in orders
        )
        return (f"Margin call: your equity of {_money(status.equity, cur)} is below the maintenance requirement of "
                f"{_money(status.maintenance_requirement, cur)}; the broker is {what} to restore it")  # fmt: skip

    # ------------------------------------------------------------------ helpers
    def _marks(self, state: AccountState, source: MarkSource, *also: str) -> dict[str, Mark]:
        """Marks for what the rules value: the account's positions and orders (and ``also``)."""
        get = source.get if isinstance(source, Mapping) else source
        symbols = set(state.positions) | {r.symbol for r in state.reservations} | set(also)
        out = {}
        for s in sorted(symbols):
            price = get(s)
            if price:
                out[s] = Mark(self.instruments[s], price)
        return out

    @staticmethod
    def _close(acct: BrokerAccount, client_order_id: str) -> None:
        acct.working.pop(client_order_id, None)
        acct.filled.pop(client_order_id, None)


class Broker:
    """One account trading one instrument: a :class:`Brokerage` of one (``vt.replay``).

    ``cash`` is the opening cash in the instrument's currency.
    """

    def __init__(
        self,
        instrument: Instrument,
        account: str,
        cash: Decimal | int | str = Decimal("100000"),
        kind: AccountKind = "cash",
        limits: SessionLimits | None = None,
        policy: MarginPolicy | None = None,
        fees: FeeModel | None = None,
    ) -> None:
        self.instrument = instrument
        self.account = account
        self.brokerage = Brokerage([instrument], limits=limits, policy=policy, fees=fees)
        self._acct = self.brokerage.open_account(account, cash, kind)

    @property
    def kind(self) -> AccountKind:
        return self._acct.kind

    @property
    def cash(self) -> Decimal:
        return self._acct.books.cash

    @property
    def initial_cash(self) -> Decimal:
        return self._acct.initial_cash

    @property
    def position(self) -> int:
        return self._acct.books.positions.get(self.instrument.symbol, 0)

    @property
    def orders_today(self) -> int:
        return self._acct.orders_today

    def state(self) -> AccountState:
        """The account as the rules see it now (open orders hold their remaining quantity)."""
        return self.brokerage.state(self.account)

    def on_exec(self, e: ev.ExecEvent) -> None:
        """Fold one execution event of this account into its books."""
        self.brokerage.on_exec(e)

    def check(
        self, order: SubmitOrder, *, bid: int | None, ask: int | None, last: int | None, market: MarketStatus
    ) -> Rejection | None:
        """Pre-trade rules for ``order`` at its entry; on success the order counts as sent.

        A ``size_to_cash`` order may be cut: :meth:`admit` returns the order to send."""
        return self.admit(order, bid=bid, ask=ask, last=last, market=market)[1]

    def admit(
        self, order: SubmitOrder, *, bid: int | None, ask: int | None, last: int | None, market: MarketStatus
    ) -> tuple[SubmitOrder, Rejection | None]:
        """``(order to send, None)`` if the rules let ``order`` go, else ``(order, rejection)``
        (:meth:`Brokerage.admit`, the position marked at the mid, else the last trade).

        >>> from vtrade.core.instruments import us_equity
        >>> from vtrade.execution.orders import OrderType
        >>> b = Broker(us_equity("SPY"), "you", cash=Decimal("1000"))
        >>> o = SubmitOrder(0, "you", "c-1", "SPY", Side.BUY, OrderType.LIMIT, 10, limit_price=16765, size_to_cash=True)
        >>> sent, refused = b.admit(o, bid=16764, ask=16765, last=16765, market=MarketStatus(open=True))
        >>> sent.quantity, sent.requested_quantity, refused   # 5 × $167.65 = $838.25 ≤ $1,000
        (5, 10, None)
        """
        m = _mark(bid, ask, last)
        marks = {self.instrument.symbol: m} if m else {}
        return self.brokerage.admit(order, market=market, bid=bid, ask=ask, last=last, marks=marks)

    def margin(self, price: int) -> MarginStatus:
        """Margin status with the position marked at ``price`` ticks."""
        return self.brokerage.margin(self.account, {self.instrument.symbol: price})

    def margin_call(self, price: int, ts: int) -> MarginCall | None:
        """The margin call at ``price`` ticks (:meth:`Brokerage.margin_call`), or None."""
        return self.brokerage.margin_call(self.account, {self.instrument.symbol: price}, ts)

    def liquidations(self, price: int, ts: int) -> list[SubmitOrder]:
        """Orders that bring a margin call back above maintenance (none when there is no call)."""
        call = self.margin_call(price, ts)
        return list(call.orders) if call is not None else []


def _mark(bid: int | None, ask: int | None, last: int | None) -> int | None:
    if bid is not None and ask is not None:
        return (bid + ask) // 2
    return last
