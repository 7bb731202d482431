"""Account rules: pre-trade checks, margin status, forced liquidation and borrow cost.

Pure functions over frozen inputs (DESIGN.md §2): no I/O, no clock; the caller passes the
account, marks, market status and the class's limits. Money is exact ``Decimal`` in the
instrument currency, prices integer ticks, positions integer lots (negative = short).

Margin follows Regulation T and FINRA Rule 4210 in their simplest form
(:class:`MarginPolicy`):

- equity = cash + long market value - short market value (cash includes short-sale proceeds);
- maintenance requirement = 25 % of long value + 30 % of short value; a margin call is
  ``equity < requirement``;
- Reg T buying power = (equity - 50 % x (long + short value)) / 50 %, less what open orders
  already hold. A cash account's buying power is its cash less what open orders hold.

>>> from vtrade.core.instruments import us_equity
>>> spy = us_equity("SPY")
>>> acct = AccountState("a-1", "margin", Decimal("10000"), {"SPY": 100})
>>> st = margin_status(acct, {"SPY": Mark(spy, 40000)}, MarginPolicy())  # 100 SPY at $400
>>> st.equity, st.maintenance_requirement, st.excess, st.margin_call
(Decimal('50000.00'), Decimal('10000.0000'), Decimal('40000.0000'), False)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Any, Literal

import msgspec

from vtrade.core.events import Side
from vtrade.core.instruments import US_EQUITY_REGULAR, Instrument
from vtrade.core.numbers import exact_decimal
from vtrade.execution import calendar
from vtrade.execution.events import RejectCode, halted_reason
from vtrade.execution.fees import FeeModel, FillContext, money_precision
from vtrade.execution.orders import Liquidity, OrderType, SubmitOrder, TimeInForce

__all__ = [
    "AccountKind",
    "AccountState",
    "MarginPolicy",
    "MarginStatus",
    "Mark",
    "MarketStatus",
    "PreTradeContext",
    "Rejection",
    "Reservation",
    "SessionLimits",
    "borrow_cost",
    "buying_power",
    "liquidation_orders",
    "margin_status",
    "pre_trade_check",
    "size_to_cash",
]

AccountKind = Literal["cash", "margin"]
_ZERO = Decimal(0)
_ONE = Decimal(1)


# Amounts and rates: exact, finite, non-negative unless said otherwise (one rule, in core).
_dec = exact_decimal


def _money(amount: Decimal, currency: str) -> str:
    """``$5,012.00`` for USD, ``5,012.00000000 USDT`` otherwise: how a student reads money."""
    q = amount.quantize(money_precision(currency), rounding=ROUND_HALF_UP)
    sign = "-" if q < 0 else ""
    text = f"{abs(q):,}"
    return f"{sign}${text}" if currency == "USD" else f"{sign}{text} {currency}"


def _pct(x: Decimal) -> str:
    """A percentage with at most one decimal: 25 -> '25%', 34.21 -> '34.2%'."""
    q = x.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{q.normalize():f}%"


# ---------------------------------------------------------------------------- inputs
def _reduce_by_fields(self: Any) -> tuple[type, tuple[Any, ...]]:
    """Pickle through the constructor: a read-only mapping cannot be pickled, and ``__post_init__``
    makes it again (a live market's checkpoint pickles accounts and rules)."""
    values = (getattr(self, f.name) for f in fields(self))
    return type(self), tuple(dict(v) if isinstance(v, MappingProxyType) else v for v in values)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an order was refused: ``code`` for programs, ``reason`` for the student."""

    code: RejectCode
    reason: str


@dataclass(frozen=True, slots=True)
class Reservation:
    """What an open order holds: its remaining lots and the buying power set aside for them."""

    client_order_id: str
    symbol: str
    side: Side
    quantity: int
    amount: Decimal = _ZERO

    def __post_init__(self) -> None:
        if self.quantity < 0:
            raise ValueError(f"a reservation's quantity must not be negative, got {self.quantity}")
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "amount", _dec(self.amount, "amount"))

    @classmethod
    def for_order(
        cls, instrument: Instrument, client_order_id: str, side: Side, left: int, price: int | None
    ) -> Reservation:
        """What an open order with ``left`` lots holds: a buy sets aside ``price × left`` (its
        limit, else its stop; a market order holds nothing once sent), a sell holds lots only.

        >>> from vtrade.core.instruments import us_equity
        >>> Reservation.for_order(us_equity("SPY"), "c-1", Side.BUY, 10, 16765).amount
        Decimal('1676.50')
        """
        amount = _ZERO
        if side is Side.BUY and price is not None:
            amount = instrument.price_grid.to_decimal(price) * instrument.size_grid.to_decimal(left)
        return cls(client_order_id, instrument.symbol, side, left, amount)


@dataclass(frozen=True, slots=True)
class AccountState:
    """An account as the rules see it. ``positions`` maps symbol to lots (negative = short).

    >>> AccountState("a-1", "cash", Decimal("500"), {"SPY": 3}).position("SPY")
    3
    """

    account_id: str
    kind: AccountKind
    cash: Decimal
    positions: Mapping[str, int] = field(default_factory=dict)
    reservations: tuple[Reservation, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("cash", "margin"):
            raise ValueError(f"an account is 'cash' or 'margin', got {self.kind!r}")
        object.__setattr__(self, "cash", _dec(self.cash, "cash", allow_negative=True))
        for symbol, lots in self.positions.items():
            if isinstance(lots, bool) or not isinstance(lots, int):
                raise ValueError(f"position {symbol} must be an int of lots, got {lots!r}")
        # Read-only, so a frozen account cannot be changed through its positions either.
        object.__setattr__(self, "positions", MappingProxyType(dict(self.positions)))
        object.__setattr__(self, "reservations", tuple(self.reservations))

    __reduce__ = _reduce_by_fields

    def position(self, symbol: str) -> int:
        return self.positions.get(symbol, 0)

    @property
    def reserved(self) -> Decimal:
        """Buying power held by open orders."""
        return sum((r.amount for r in self.reservations), _ZERO)

    def reserved_lots(self, symbol: str, side: Side) -> int:
        """Lots of ``symbol`` on ``side`` still open in working orders."""
        return sum(r.quantity for r in self.reservations if r.symbol == symbol and r.side == side)


@dataclass(frozen=True, slots=True)
class Mark:
    """A price for valuing a position: ``price`` in ticks of ``instrument``."""

    instrument: Instrument
    price: int

    def value(self, lots: int) -> Decimal:
        """Money value of ``lots`` (signed like ``lots``) at this mark, exact."""
        return self.instrument.price_grid.to_decimal(self.price) * self.instrument.size_grid.to_decimal(lots)


@dataclass(frozen=True, slots=True)
class MarginPolicy:
    """Margin rates as fractions. Defaults: Reg T 50 % initial; FINRA 4210 25 % long maintenance;
    30 % short maintenance (FINRA's floor for shorts priced $5 and up; its per-share floors for
    cheaper shorts are not modelled, a class's ``min_share_price`` keeps students out of them).

    ``liquidation_buffer``: a forced liquidation sells until excess >= buffer x equity, so that
    the slippage of the forced sale itself does not leave the account in a call again.
    """

    initial: Decimal = Decimal("0.50")
    maintenance_long: Decimal = Decimal("0.25")
    maintenance_short: Decimal = Decimal("0.30")
    liquidation_buffer: Decimal = Decimal("0.05")

    def __post_init__(self) -> None:
        for name in ("initial", "maintenance_long", "maintenance_short", "liquidation_buffer"):
            object.__setattr__(self, name, _dec(getattr(self, name), name))
        if not 0 < self.initial <= 1:
            raise ValueError(f"initial margin must be in (0, 1], got {self.initial}")
        if not 0 < self.maintenance_long <= self.initial:
            raise ValueError(f"maintenance_long must be in (0, initial], got {self.maintenance_long}")
        if not 0 < self.maintenance_short <= 1:
            raise ValueError(f"maintenance_short must be in (0, 1], got {self.maintenance_short}")
        if self.liquidation_buffer >= 1:
            raise ValueError(f"liquidation_buffer must be below 1, got {self.liquidation_buffer}")


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """What a class allows. ``None`` switches a limit off.

    ``hard_to_borrow_policy``: ``"reject"`` refuses short sales of the hard-to-borrow set;
    ``"allow"`` accepts them and they accrue ``hard_to_borrow_rate`` instead of ``borrow_rate``
    (annual rates; ``borrow_rates`` overrides per symbol).
    """

    allowed_symbols: frozenset[str] | None = None
    max_position_pct_nav: Decimal | None = None
    max_orders_per_day: int | None = None
    min_share_price: Decimal | None = None
    shorting_allowed: bool = True
    hard_to_borrow: frozenset[str] = frozenset()
    hard_to_borrow_policy: Literal["reject", "allow"] = "reject"
    borrow_rate: Decimal = Decimal("0.0025")
    hard_to_borrow_rate: Decimal = Decimal("0.20")
    borrow_rates: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.allowed_symbols is not None:
            object.__setattr__(self, "allowed_symbols", frozenset(self.allowed_symbols))
        object.__setattr__(self, "hard_to_borrow", frozenset(self.hard_to_borrow))
        if self.max_position_pct_nav is not None:
            pct = _dec(self.max_position_pct_nav, "max_position_pct_nav")
            if not 0 < pct <= 100:
                raise ValueError(f"max_position_pct_nav must be in (0, 100], got {pct}")
            object.__setattr__(self, "max_position_pct_nav", pct)
        if self.max_orders_per_day is not None and self.max_orders_per_day < 0:
            raise ValueError(f"max_orders_per_day must not be negative, got {self.max_orders_per_day}")
        if self.min_share_price is not None:
            object.__setattr__(self, "min_share_price", _dec(self.min_share_price, "min_share_price"))
        if self.hard_to_borrow_policy not in ("reject", "allow"):
            raise ValueError(f"hard_to_borrow_policy is 'reject' or 'allow', got {self.hard_to_borrow_policy!r}")
        object.__setattr__(self, "borrow_rate", _dec(self.borrow_rate, "borrow_rate"))
        object.__setattr__(self, "hard_to_borrow_rate", _dec(self.hard_to_borrow_rate, "hard_to_borrow_rate"))
        rates = {s: _dec(r, f"borrow_rates[{s}]") for s, r in self.borrow_rates.items()}
        object.__setattr__(self, "borrow_rates", MappingProxyType(rates))

    __reduce__ = _reduce_by_fields

    def borrow_rate_for(self, symbol: str) -> Decimal:
        """The annual borrow rate a short in ``symbol`` accrues.

        >>> SessionLimits(hard_to_borrow=frozenset({"GME"})).borrow_rate_for("GME")
        Decimal('0.20')
        """
        if symbol in self.borrow_rates:
            return self.borrow_rates[symbol]
        return self.hard_to_borrow_rate if symbol in self.hard_to_borrow else self.borrow_rate


@dataclass(frozen=True, slots=True)
class MarketStatus:
    """Whether the instrument's market takes orders now. ``holiday`` names a closing holiday."""

    open: bool
    halted: bool = False
    holiday: str | None = None

    @classmethod
    def at(cls, instrument: Instrument, ts_ns: int, *, halted: bool = False) -> MarketStatus:
        """The status at ``ts_ns`` (UTC ns): US equities by the NYSE calendar (holidays, early
        closes), other instruments by their :class:`TradingHours`.

        >>> from vtrade.core.instruments import us_equity
        >>> MarketStatus.at(us_equity("SPY"), 1482762600 * 10**9)  # 2016-12-26 09:30 New York
        MarketStatus(open=False, halted=False, holiday='Christmas Day')
        """
        if instrument.hours == US_EQUITY_REGULAR:
            local = datetime.fromtimestamp(ts_ns // 10**9, tz=UTC).astimezone(calendar.NEW_YORK).date()
            if calendar.FIRST_YEAR <= local.year <= calendar.LAST_YEAR:
                bounds = calendar.session_bounds(local)
                if bounds is None:
                    return cls(False, halted, calendar.holidays(local.year).get(local))
                return cls(bounds[0] <= ts_ns < bounds[1], halted)
        return cls(instrument.hours.is_open(ts_ns), halted)


@dataclass(frozen=True, slots=True)
class PreTradeContext:
    """Everything :func:`pre_trade_check` looks at besides the order.

    ``marks`` values the account's other positions (for equity and NAV); the order's own
    symbol is valued at the order's estimated price when it has no mark. ``bid``/``ask``/
    ``last_price`` are ticks of ``instrument``. ``orders_today`` counts orders already placed
    today, this one excluded. ``fees``, when given, adds the order's estimated fee to what it
    needs in buying power.
    """

    instrument: Instrument
    account: AccountState
    market: MarketStatus
    marks: Mapping[str, Mark] = field(default_factory=dict)
    bid: int | None = None
    ask: int | None = None
    last_price: int | None = None
    orders_today: int = 0
    limits: SessionLimits = field(default_factory=SessionLimits)
    policy: MarginPolicy = field(default_factory=MarginPolicy)
    fees: FeeModel | None = None


@dataclass(frozen=True, slots=True)
class MarginStatus:
    """An account's margin position at some marks; ``excess = equity - maintenance_requirement``."""

    equity: Decimal
    long_market_value: Decimal
    short_market_value: Decimal
    maintenance_requirement: Decimal
    excess: Decimal
    margin_call: bool


# ---------------------------------------------------------------------------- margin
def _rates(account: AccountState, policy: MarginPolicy) -> tuple[Decimal, Decimal]:
    # A cash account borrows nothing: every position must be fully paid for.
    if account.kind == "cash":
        return _ONE, _ONE
    return policy.maintenance_long, policy.maintenance_short


def _values(account: AccountState, prices: Mapping[str, Mark]) -> tuple[Decimal, Decimal]:
    long_mv = short_mv = _ZERO
    for symbol, lots in account.positions.items():
        if lots == 0:
            continue
        mark = prices.get(symbol)
        if mark is None:
            raise ValueError(f"account {account.account_id} holds {symbol} but no mark was given for it")
        value = mark.value(lots)
        if lots > 0:
            long_mv += value
        else:
            short_mv -= value
    return long_mv, short_mv


def margin_status(account: AccountState, prices: Mapping[str, Mark], policy: MarginPolicy) -> MarginStatus:
    """Equity, market values, maintenance requirement and whether the account is in a call.

    A margin account needs ``maintenance_long`` of its long value and ``maintenance_short``
    of its short value; a cash account 100 % of both (so a call there means negative cash).

    >>> from vtrade.core.instruments import us_equity
    >>> acct = AccountState("a-1", "margin", Decimal("-30000"), {"SPY": 100})
    >>> margin_status(acct, {"SPY": Mark(us_equity("SPY"), 35000)}, MarginPolicy()).margin_call
    True

    (Equity 35,000 - 30,000 = 5,000 < 25 % x 35,000 = 8,750.)
    """
    long_mv, short_mv = _values(account, prices)
    rate_long, rate_short = _rates(account, policy)
    equity = account.cash + long_mv - short_mv
    requirement = rate_long * long_mv + rate_short * short_mv
    excess = equity - requirement
    return MarginStatus(equity, long_mv, short_mv, requirement, excess, excess < 0)


def buying_power(account: AccountState, prices: Mapping[str, Mark], policy: MarginPolicy) -> Decimal:
    """Money available for new positions, after what open orders already hold.

    Cash account: ``cash - reserved``. Margin account (Reg T):
    ``max(equity - initial x (long + short value), 0) / initial - reserved``.

    >>> buying_power(AccountState("a-1", "margin", Decimal("10000")), {}, MarginPolicy())
    Decimal('20000')
    """
    if account.kind == "cash":
        return account.cash - account.reserved
    long_mv, short_mv = _values(account, prices)
    equity = account.cash + long_mv - short_mv
    excess_equity = max(equity - policy.initial * (long_mv + short_mv), _ZERO)
    return excess_equity / policy.initial - account.reserved


# ---------------------------------------------------------------------------- pre-trade
def _estimate_price(order: SubmitOrder, ctx: PreTradeContext) -> int | None:
    """Price for notional estimates: the limit, else the far touch, else the last trade, else the stop."""
    if order.limit_price is not None:
        return order.limit_price
    far = ctx.ask if order.side == Side.BUY else ctx.bid
    for candidate in (far, ctx.last_price, order.stop_price):
        if candidate is not None and candidate > 0:
            return candidate
    return None


def pre_trade_check(order: SubmitOrder, ctx: PreTradeContext) -> Rejection | None:
    """None if the order may go to the exchange, else the first rule it breaks.

    Rules, in the order checked (the first failure is reported):

    1. ``SYMBOL_NOT_ALLOWED``: the class restricts symbols and this is not one of them.
    2. ``MAX_ORDERS``: the class's orders-per-day limit is reached.
    3. ``HALTED``: trading in the symbol is halted.
    4. ``MARKET_CLOSED``: the market is closed (holiday, weekend, outside the session) and the
       order needs it open: a market order, or a DAY, IOC or FOK order. GTC/GTD limit and
       stop orders are accepted and wait for the open.
    5. ``NO_LIQUIDITY``: no limit, quote, last trade or stop price to estimate the order's value.
    6. ``MIN_PRICE``: an order that opens or adds to a position below the class's minimum
       share price (closing one is always allowed, so students can get out of a fallen stock).
    7. ``REDUCE_ONLY``: a reduce-only order that would open or add to a position.
    8. ``SHORT_SELLING_NOT_ALLOWED`` (cash account, or the class forbids shorting) and
       ``HARD_TO_BORROW`` (symbol in the hard-to-borrow set with policy ``"reject"``).
    9. ``MAX_POSITION``: the resulting position (with open orders on the same side) would be
       more than the class's percentage of account value (NAV = equity).
    10. ``INSUFFICIENT_BUYING_POWER``: the opening part of the order, at the estimated price,
        plus its estimated fee, is more than the account's buying power. (An order sent with
        ``size_to_cash`` is first cut to what fits by :func:`size_to_cash`.)

    Open orders count: shares already offered in open sell orders cannot be sold again, and
    a short already being covered by open buys cannot be covered twice.

    >>> from vtrade.core.instruments import us_equity
    >>> spy = us_equity("SPY")
    >>> ctx = PreTradeContext(spy, AccountState("a-1", "cash", Decimal("3100")), MarketStatus(True), ask=5012)
    >>> order = SubmitOrder(0, "a-1", "c-1", "SPY", Side.BUY, OrderType.MARKET, 100)
    >>> pre_trade_check(order, ctx).reason
    'Not enough buying power: this order needs $5,012.00, you have $3,100.00'
    """
    inst, account, limits = ctx.instrument, ctx.account, ctx.limits
    if order.symbol != inst.symbol:
        raise ValueError(f"order is for {order.symbol} but the context's instrument is {inst.symbol}")
    if order.account != account.account_id:
        raise ValueError(f"order is for account {order.account} but the context's account is {account.account_id}")
    symbol = order.symbol

    if limits.allowed_symbols is not None and symbol not in limits.allowed_symbols:
        allowed = ", ".join(sorted(limits.allowed_symbols)) or "none"
        return Rejection(RejectCode.SYMBOL_NOT_ALLOWED, f"{symbol} is not traded in this session (allowed: {allowed})")
    if limits.max_orders_per_day is not None and ctx.orders_today >= limits.max_orders_per_day:
        return Rejection(
            RejectCode.MAX_ORDERS,
            f"You have placed {ctx.orders_today} orders today; this session allows {limits.max_orders_per_day} a day",
        )

    if ctx.market.halted:
        return Rejection(RejectCode.HALTED, halted_reason(symbol))
    if not ctx.market.open:
        needs_open = order.order_type is OrderType.MARKET or order.tif in (
            TimeInForce.DAY, TimeInForce.IOC, TimeInForce.FOK
        )
        if needs_open:
            when = f"closed for {ctx.market.holiday}" if ctx.market.holiday else "closed"
            what = "Market orders" if order.order_type is OrderType.MARKET else f"{order.tif.value.upper()} orders"
            return Rejection(
                RejectCode.MARKET_CLOSED,
                f"The {symbol} market is {when}. {what} need an open market; "
                "a GTC or GTD limit order can wait for the open",
            )

    price = _estimate_price(order, ctx)
    if price is None:
        return Rejection(
            RejectCode.NO_LIQUIDITY,
            f"There is no price for {symbol} yet to check this order against; use a limit order",
        )

    pos = account.position(symbol)
    if order.side == Side.BUY:
        # Lots that merely cover a short (not already being covered by open buys) need no margin.
        coverable = max(-pos - account.reserved_lots(symbol, Side.BUY), 0)
        pending_same_side = account.reserved_lots(symbol, Side.BUY)
    else:
        coverable = max(pos - account.reserved_lots(symbol, Side.SELL), 0)
        pending_same_side = account.reserved_lots(symbol, Side.SELL)
    opening = max(order.quantity - coverable, 0)
    unit_price = inst.price_grid.to_decimal(price)

    if opening and limits.min_share_price is not None and unit_price < limits.min_share_price:
        return Rejection(
            RejectCode.MIN_PRICE,
            f"{symbol} at {_money(unit_price, inst.currency)} is below this session's minimum share price of "
            f"{_money(limits.min_share_price, inst.currency)}",
        )
    if opening and order.reduce_only:
        return Rejection(
            RejectCode.REDUCE_ONLY,
            f"This reduce-only order would open {opening} lots of {symbol} beyond your position of {pos}",
        )

    if opening and order.side == Side.SELL:
        held = f"you hold {inst.size_grid.to_decimal(max(pos, 0))} {symbol}"
        offered = account.reserved_lots(symbol, Side.SELL)
        if offered:
            held += f" ({inst.size_grid.to_decimal(offered)} already in open sell orders)"
        selling = f"this order sells {inst.size_grid.to_decimal(order.quantity)}"
        if account.kind == "cash":
            return Rejection(
                RejectCode.SHORT_SELLING_NOT_ALLOWED, f"Cash accounts cannot sell short: {held} and {selling}"
            )
        if not limits.shorting_allowed:
            return Rejection(
                RejectCode.SHORT_SELLING_NOT_ALLOWED, f"Short selling is off in this session: {held} and {selling}"
            )
        if symbol in limits.hard_to_borrow and limits.hard_to_borrow_policy == "reject":
            return Rejection(
                RejectCode.HARD_TO_BORROW, f"{symbol} is hard to borrow, so it cannot be sold short in this session"
            )

    marks = dict(ctx.marks)
    marks.setdefault(symbol, Mark(inst, price))
    status = margin_status(account, marks, ctx.policy)

    if opening and limits.max_position_pct_nav is not None:
        after = abs(pos + int(order.side) * (order.quantity + pending_same_side))
        exposure = Mark(inst, price).value(after)
        if status.equity <= 0:
            return Rejection(
                RejectCode.MAX_POSITION,
                f"Your account value is {_money(status.equity, inst.currency)}, so it cannot take on a new position",
            )
        share = exposure / status.equity * 100
        if share > limits.max_position_pct_nav:
            return Rejection(
                RejectCode.MAX_POSITION,
                f"This order would make {symbol} {_pct(share)} of your account value; "
                f"this session allows at most {_pct(limits.max_position_pct_nav)} in one position",
            )

    if opening:
        need = _opening_need(order, ctx, price, order.quantity, coverable)
        have = buying_power(account, marks, ctx.policy)
        if need > have:
            return Rejection(
                RejectCode.INSUFFICIENT_BUYING_POWER,
                f"Not enough buying power: this order needs {_money(need, inst.currency)}, "
                f"you have {_money(max(have, _ZERO), inst.currency)}",
            )
    return None


def _opening_need(order: SubmitOrder, ctx: PreTradeContext, price: int, quantity: int, coverable: int) -> Decimal:
    """What :func:`pre_trade_check` asks of buying power for ``quantity`` lots of ``order``:
    the opening lots at ``price`` plus the estimated (taker) fee of the whole quantity."""
    need = Mark(ctx.instrument, price).value(max(quantity - coverable, 0))
    if ctx.fees is not None:
        need += max(ctx.fees.fee(FillContext(ctx.instrument, order.side, quantity, price, Liquidity.TAKER)), _ZERO)
    return need


def size_to_cash(order: SubmitOrder, ctx: PreTradeContext) -> SubmitOrder:
    """``order`` cut to what the account's buying power pays for, if it asked for that.

    For an order with ``size_to_cash=True`` whose opening part needs more buying power than
    there is (rule 10 of :func:`pre_trade_check`), the largest whole number of lots ``q`` with

        price × (q − coverable) + fee(q) ≤ buying power

    where ``price`` is the estimate the rule uses (the limit; for a market or stop order the
    far touch, else the last trade, else the stop), ``coverable`` the lots that only cover a
    short, and ``fee(q)`` the fee model's taker fee on ``q`` lots (0 without one). Rounding is
    down, to whole lots: a cut order never needs more than there is. Fees are taken to grow
    with quantity (every model here does), so ``q`` is found by bisection. The cut order
    carries ``requested_quantity``. Anything else is returned unchanged: an order that fits,
    one that did not ask, one with no price to estimate, or one where not even one lot fits
    (:func:`pre_trade_check` then refuses it with its ordinary reason).

    >>> from vtrade.core.instruments import us_equity
    >>> from vtrade.execution.fees import PerShare
    >>> xyz = us_equity("XYZ")
    >>> ctx = PreTradeContext(xyz, AccountState("a", "cash", Decimal("10000")), MarketStatus(True),
    ...                       fees=PerShare("0.005", "1"))
    >>> o = SubmitOrder(0, "a", "c", "XYZ", Side.BUY, OrderType.LIMIT, 150, limit_price=10000, size_to_cash=True)
    >>> cut = size_to_cash(o, ctx)
    >>> cut.quantity, cut.requested_quantity   # 99 × $100 + $1 = $9,901; 100 would need $10,001
    (99, 150)
    """
    if not order.size_to_cash:
        return order
    price = _estimate_price(order, ctx)
    if price is None:
        return order
    account, symbol = ctx.account, order.symbol
    pos, taken = account.position(symbol), account.reserved_lots(symbol, order.side)
    coverable = max((-pos if order.side == Side.BUY else pos) - taken, 0)
    marks = dict(ctx.marks)
    marks.setdefault(symbol, Mark(ctx.instrument, price))
    have = buying_power(account, marks, ctx.policy)
    if _opening_need(order, ctx, price, order.quantity, coverable) <= have:
        return order
    lo, hi = 0, order.quantity - 1  # the largest q in [lo, hi] that fits; 0 = none does
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _opening_need(order, ctx, price, mid, coverable) <= have:
            lo = mid
        else:
            hi = mid - 1
    if lo < 1:
        return order
    return msgspec.structs.replace(order, quantity=lo, requested_quantity=order.requested_quantity or order.quantity)


# ---------------------------------------------------------------------------- liquidation
def liquidation_orders(
    account: AccountState,
    prices: Mapping[str, Mark],
    policy: MarginPolicy,
    ts: int,
    *,
    id_prefix: str = "liq",
) -> list[SubmitOrder]:
    """Market orders that bring an account in a margin call back above its requirement.

    Closing ``V`` of a position leaves equity unchanged at the marks (cash moves by ``V``,
    market value by ``-V``) and lowers the requirement by ``rate x V``. So the orders must
    release ``R = (requirement - equity) + liquidation_buffer x equity`` of requirement.

    Choice: the largest positions by market value go first (ties by symbol, so the result is
    deterministic), each closed only as far as needed, whole lots rounded up; if the account's
    equity is not positive everything is closed. Orders are reduce-only DAY market orders with
    client order ids ``{id_prefix}-{account}-{ts}-{symbol}``: a retry at the same ``ts`` yields
    the same ids, which the engine rejects as duplicates instead of selling twice.

    >>> from vtrade.core.instruments import us_equity
    >>> acct = AccountState("a-1", "margin", Decimal("-30000"), {"SPY": 100})
    >>> [(o.client_order_id, o.side.name, o.quantity)
    ...  for o in liquidation_orders(acct, {"SPY": Mark(us_equity("SPY"), 35000)}, MarginPolicy(), 7)]
    [('liq-a-1-7-SPY', 'SELL', 46)]

    (Deficit 8,750 - 5,000 = 3,750, plus a buffer of 5 % x 5,000 = 250: release 4,000. A share
    sold releases 25 % x $350 = $87.50, so ceil(4,000 / 87.50) = 46 shares.)
    """
    status = margin_status(account, prices, policy)
    if not status.margin_call:
        return []
    rate_long, rate_short = _rates(account, policy)
    close_all = status.equity <= 0
    needed = -status.excess + policy.liquidation_buffer * status.equity
    held = [(symbol, lots) for symbol, lots in account.positions.items() if lots != 0]
    held.sort(key=lambda item: (-abs(prices[item[0]].value(item[1])), item[0]))
    orders: list[SubmitOrder] = []
    for symbol, lots in held:
        if not close_all and needed <= 0:
            break
        mark = prices[symbol]
        per_lot = (rate_long if lots > 0 else rate_short) * abs(mark.value(1))
        qty = abs(lots)
        if not close_all and per_lot > 0:
            qty = min(qty, int((needed / per_lot).to_integral_value(rounding=ROUND_CEILING)))
        needed -= per_lot * qty
        side = Side.SELL if lots > 0 else Side.BUY
        orders.append(
            SubmitOrder(
                ts,
                account.account_id,
                f"{id_prefix}-{account.account_id}-{ts}-{symbol}",
                symbol,
                side,
                OrderType.MARKET,
                qty,
                tif=TimeInForce.DAY,
                reduce_only=True,
            )
        )
    return orders


# ---------------------------------------------------------------------------- borrow
def borrow_cost(
    short_quantity_lots: int, price: int, instrument: Instrument, annual_rate: Decimal, days: int
) -> Decimal:
    """Stock-loan fee for holding a short: ``|lots| x lot size x price x annual_rate x days / 360``.

    Actual/360, the US money-market convention brokers use for stock-loan fees: ``days`` are
    calendar days the short is held (weekends and holidays count). Rounded half up to the
    currency's minor unit.

    >>> from vtrade.core.instruments import us_equity
    >>> borrow_cost(-100, 5000, us_equity("XYZ"), Decimal("0.20"), 3)  # $5,000 x 20 % x 3/360
    Decimal('8.33')
    """
    if isinstance(short_quantity_lots, bool) or not isinstance(short_quantity_lots, int):
        raise ValueError(f"short_quantity_lots must be an int, got {short_quantity_lots!r}")
    if isinstance(price, bool) or not isinstance(price, int) or price < 0:
        raise ValueError(f"price must be a non-negative int of ticks, got {price!r}")
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ValueError(f"days must be a non-negative int, got {days!r}")
    rate = _dec(annual_rate, "annual_rate")
    value = abs(Mark(instrument, price).value(short_quantity_lots))
    cost = value * rate * days / 360
    return cost.quantize(money_precision(instrument.currency), rounding=ROUND_HALF_UP)
