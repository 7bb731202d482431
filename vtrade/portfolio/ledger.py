"""One account's ledger, folded from execution events, in exact money.

The ledger is the portfolio worker's state for one account (DESIGN.md §1-§3): a pure fold with
no I/O and no clock. It is a *mutable* object whose every change goes through
:meth:`Ledger.apply`, which either returns a :class:`LedgerChange` describing what moved, returns
``None`` when the input was already applied (at-least-once delivery), or raises
:class:`LedgerError` and changes nothing. Mutable because idempotency needs the set of applied
fill ids, and copying it on every fill would make a replay quadratic; atomic because each step
computes new frozen :class:`Position` records first and commits only when nothing can fail.
:meth:`Ledger.copy` gives an independent copy when a functional style is wanted.

What it folds (:meth:`Ledger.apply` dispatches on the type, so a journal of any of them replays):

- :class:`~vtrade.execution.events.OrderFilled` for this account (other execution events of
  this account are ignored; any event of another account is an error);
- :class:`~vtrade.portfolio.corporate_actions.CorporateAction` (:meth:`Ledger.apply_corporate_action`);
- :class:`BorrowAccrual`, one day of stock-loan fees on shorts (:meth:`Ledger.accrue_borrow`);
- :class:`DayStart`, the NAV at the start of a day for day P&L (:meth:`Ledger.start_day`).

Money is ``Decimal`` in the account currency; positions are signed integer lots. Conventions:

- cash: ``-price x size`` for buys, ``+price x size`` for sells (short-sale proceeds are cash, as
  in :func:`~vtrade.execution.accounts.margin_status`), ``- fee`` (a negative fee is a rebate);
- realized P&L is *gross* (price only): fees, borrow and dividends are tracked separately, and
  ``nav = cash + sum(signed market values)`` includes all of them;
- both cost methods are kept: FIFO lots (each with its cost) and an average-cost basis. Closing
  ``m`` of ``n`` lots removes ``cost x m / n`` rounded half-even to the currency's minor unit
  (``money_precision``), with the residue left in what stays open, so no money is created or
  lost and the basis never grows digits; once a position is flat, FIFO and average realized
  P&L agree exactly;
- borrow accruals and day starts are not ordered against fills by the ledger (they carry a
  date, not a time): the runtime appends each day's accrual after that day's last fill, so the
  log order is what a replay reproduces;
- fills must come in time order (``ts`` not earlier than the last applied fill, nor than the
  ex-date of an applied corporate action); an out-of-order fill is refused, because replaying
  it in place would need the lots as they were at that time.

>>> from vtrade.core.instruments import us_equity
>>> from vtrade.execution.events import OrderFilled
>>> from vtrade.execution.orders import Liquidity
>>> def fill(fid, ts, side, price, qty, fee="0"):
...     return OrderFilled(ts, "a-1", "c-1", "XYZ", fid, side, price, qty, 0, Liquidity.TAKER,
...                        Decimal(fee), price * 2, 0.0, "test")
>>> led = Ledger("a-1", [us_equity("XYZ")], cash=Decimal("10000"))
>>> _ = led.apply(fill("f1", 1, Side.BUY, 1000, 10, "1.00"))   # 10 @ $10.00
>>> _ = led.apply(fill("f2", 2, Side.BUY, 1200, 10))           # 10 @ $12.00
>>> _ = led.apply(fill("f3", 3, Side.SELL, 1300, 15))          # 15 @ $13.00
>>> led.realized_pnl("fifo"), led.realized_pnl("average")      # 10x3 + 5x1 ; 15 x (13 - 11)
(Decimal('35.00'), Decimal('30.00'))
>>> led.apply(fill("f3", 3, Side.SELL, 1300, 15)) is None      # the same fill again: no-op
True
>>> led.positions, led.cash, led.nav({"XYZ": 1400})
({'XYZ': 5}, Decimal('9974.00'), Decimal('10044.00'))
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from fractions import Fraction
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo

from vtrade.core.errors import OffGridError, VtradeError
from vtrade.core.events import Event, Side, encode
from vtrade.core.instruments import Instrument
from vtrade.core.numbers import exact_decimal
from vtrade.execution.accounts import (
    AccountKind,
    AccountState,
    MarginPolicy,
    MarginStatus,
    Mark,
    SessionLimits,
    borrow_cost,
    margin_status,
)
from vtrade.execution.events import ExecEvent, OrderFilled
from vtrade.execution.fees import money_precision
from vtrade.portfolio.corporate_actions import ActionKind, CorporateAction

__all__ = [
    "BorrowAccrual",
    "DayStart",
    "Ledger",
    "LedgerChange",
    "LedgerError",
    "Lot",
    "MarkInput",
    "Method",
    "Position",
]

Method = Literal["fifo", "average"]
#: A mark: integer ticks, an accounts :class:`Mark`, or a decimal price (str/Decimal/float) on the grid.
MarkInput = int | Decimal | str | float | Mark

_ZERO = Decimal(0)
# Every ledger sum and product runs in this context: 60 digits and Inexact trapped, so a result
# is exact or the operation raises. Rounding happens only in _to_decimal, on purpose.
_EXACT = Context(prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])


class LedgerError(VtradeError, ValueError):
    """An input the ledger refuses (wrong account, out of order, malformed). Nothing changed."""


# ---------------------------------------------------------------------------- records
@dataclass(frozen=True, slots=True)
class Lot:
    """An open FIFO lot: signed ``quantity`` in lots and its signed total ``cost`` (negative for
    a short: the proceeds it was opened for). Cost, not price, is stored so a split stays exact.
    ``ts``/``source`` say when and by which fill it was opened."""

    quantity: int
    cost: Decimal
    ts: int
    source: str


@dataclass(frozen=True, slots=True)
class Position:
    """One instrument in the ledger. ``quantity`` is signed lots; ``cost_basis`` the average-cost
    basis (signed, like :attr:`Lot.cost`); ``lots`` the FIFO queue, oldest first. The running
    totals stay after the position goes flat.

    >>> from vtrade.core.instruments import us_equity
    >>> p = Position(us_equity("XYZ"), 10, Decimal("105.00"))
    >>> p.average_price, p.market_value(1100), p.unrealized(1100, "average")
    (Decimal('10.5'), Decimal('110.00'), Decimal('5.00'))
    """

    instrument: Instrument
    quantity: int = 0
    cost_basis: Decimal = _ZERO
    lots: tuple[Lot, ...] = ()
    realized_fifo: Decimal = _ZERO
    realized_average: Decimal = _ZERO
    fees: Decimal = _ZERO
    borrow: Decimal = _ZERO
    dividends: Decimal = _ZERO

    @property
    def symbol(self) -> str:
        return self.instrument.symbol

    @property
    def fifo_cost(self) -> Decimal:
        """Total cost of the open FIFO lots (signed)."""
        with localcontext(_EXACT):
            return sum((lot.cost for lot in self.lots), _ZERO)

    @property
    def average_price(self) -> Decimal | None:
        """Average cost per unit (display only: a division, rounded to 28 digits); None when flat."""
        if self.quantity == 0:
            return None
        return (self.cost_basis / self.instrument.size_grid.to_decimal(self.quantity)).normalize()

    def market_value(self, mark_ticks: int) -> Decimal:
        """Signed value of the position at a price of ``mark_ticks``."""
        return Mark(self.instrument, mark_ticks).value(self.quantity)

    def unrealized(self, mark_ticks: int, method: Method = "fifo") -> Decimal:
        """Market value minus the open cost under ``method``."""
        cost = self.fifo_cost if _method(method) == "fifo" else self.cost_basis
        with localcontext(_EXACT):
            return self.market_value(mark_ticks) - cost


@dataclass(frozen=True, slots=True)
class BorrowAccrual:
    """One day of borrow fees: for each short, ``borrow_cost(lots, mark, rate, days=1)``.

    ``marks`` and ``rates`` are (symbol, ticks) and (symbol, annual rate) pairs; build it with
    :meth:`Ledger.accrue_borrow`, which takes friendlier inputs.
    """

    day: date
    marks: tuple[tuple[str, int], ...]
    rates: tuple[tuple[str, Decimal], ...]


@dataclass(frozen=True, slots=True)
class DayStart:
    """Start of ``day``: the ledger records its NAV at ``marks`` (usually the previous close)."""

    day: date
    marks: tuple[tuple[str, int], ...]


Cause = OrderFilled | CorporateAction | BorrowAccrual | DayStart


@dataclass(frozen=True, slots=True)
class LedgerChange:
    """What one applied input moved. Amounts are deltas; ``positions`` the touched symbols' lots
    after it; ``nav`` is set by :class:`DayStart`."""

    cause: Cause
    cash: Decimal = _ZERO
    realized_fifo: Decimal = _ZERO
    realized_average: Decimal = _ZERO
    fees: Decimal = _ZERO
    borrow: Decimal = _ZERO
    dividends: Decimal = _ZERO
    positions: tuple[tuple[str, int], ...] = ()
    nav: Decimal | None = None


# ---------------------------------------------------------------------------- helpers
def _method(method: str) -> Method:
    if method not in ("fifo", "average"):
        raise LedgerError(f"method is 'fifo' or 'average', got {method!r}")
    return method  # type: ignore[return-value]


def _sign(n: int) -> int:
    return (n > 0) - (n < 0)


def _exponent(d: Decimal) -> int:
    """The exponent of a finite Decimal (-2 for 0.01)."""
    e = d.as_tuple().exponent
    if not isinstance(e, int):  # 'n', 'N', 'F': NaN, sNaN, Infinity
        raise ValueError(f"{d} has no exponent: not a finite number")
    return e


def _to_decimal(x: Fraction, quantum: Decimal) -> Decimal:
    """``x`` exactly when it is a terminating decimal, else rounded half-even to ``quantum``."""
    den = x.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den == 1:
        k = max(twos, fives)
        exact = Decimal(x.numerator * 10**k // x.denominator).scaleb(-k, _EXACT)
        # Show at least the minor unit's places ($0.70, not $0.7); exact, nothing is dropped.
        return exact.quantize(quantum, context=_EXACT) if -k > _exponent(quantum) else exact
    with localcontext(_EXACT):
        # round() of a Fraction is exact and half-even.
        return Decimal(round(x / Fraction(quantum))) * quantum


def _prorate(amount: Decimal, part: int | Fraction, whole: int | Fraction, quantum: Decimal) -> Decimal:
    """``amount x part / whole`` rounded half-even to the money unit ``quantum``.

    Always to the money unit, even when the share terminates: repeated partial closes of a
    position (1,600 lots closed one by one) would otherwise add digits at every step until the
    basis no longer fits the ledger's exact context. The residue stays with what remains open.
    """
    if part == whole:
        return amount
    with localcontext(_EXACT):
        share = Fraction(amount) * Fraction(part) / Fraction(whole)
        return Decimal(round(share / Fraction(quantum))) * quantum


# A finite exact amount (cash may be negative); floats are refused (DESIGN.md §3).
_money = functools.partial(exact_decimal, allow_negative=True, error=LedgerError)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------------------- the ledger
class Ledger:
    """One account's cash, positions and P&L, folded from its events (see the module notes).

    ``instruments``: every symbol the account may trade (a fill for another raises); they must
    share one currency, the ledger's. ``kind``/``policy`` are what :meth:`margin` uses.

    >>> from vtrade.core.instruments import us_equity
    >>> Ledger("a-1", [us_equity("SPY")], cash="1000").cash
    Decimal('1000')
    """

    def __init__(
        self,
        account: str,
        instruments: Mapping[str, Instrument] | Iterable[Instrument],
        cash: Decimal | int | str = 0,
        *,
        kind: AccountKind = "margin",
        policy: MarginPolicy | None = None,
    ) -> None:
        if not isinstance(account, str) or not account.strip():
            raise LedgerError(f"account must be a non-blank string, got {account!r}")
        insts = list(instruments.values()) if isinstance(instruments, Mapping) else list(instruments)
        if not insts or not all(isinstance(i, Instrument) for i in insts):
            raise LedgerError("a ledger needs at least one Instrument")
        by_symbol = {i.symbol: i for i in insts}
        if len(by_symbol) != len(insts):
            raise LedgerError("instruments must have distinct symbols")
        currencies = {i.currency for i in insts}
        if len(currencies) != 1:
            raise LedgerError(f"one ledger holds one currency; instruments are in {sorted(currencies)}")
        if kind not in ("cash", "margin"):
            raise LedgerError(f"kind is 'cash' or 'margin', got {kind!r}")
        self.account = account
        self.kind: AccountKind = kind
        self.policy = policy if policy is not None else MarginPolicy()
        self._instruments = by_symbol  # a plain dict, so ledgers pickle into worker snapshots
        self.currency = currencies.pop()
        self._quantum = money_precision(self.currency)
        self.initial_cash = _money(cash, "cash")
        self._cash = self.initial_cash
        self._positions: dict[str, Position] = {}
        self._fees = self._borrow = self._dividends = _ZERO
        self._fills: dict[str, bytes] = {}  # fill_id -> digest of the event, to spot a reused id
        self._actions: dict[tuple[str, date, ActionKind], CorporateAction] = {}
        self._borrow_days: set[date] = set()
        # Order is checked per symbol: the exec log (keyed by account) interleaves an account's
        # symbols in whatever order the execution workers ran; only each symbol's order is fixed.
        self._last_fill_ts: dict[str, int] = {}  # symbol -> ts of its last applied fill
        self._action_floor_ts: dict[str, int] = {}  # symbol -> latest ex-date (ns) of an applied action
        self._day_start: tuple[date, Decimal] | None = None

    # ------------------------------------------------------------------ construction

    @property
    def instruments(self) -> Mapping[str, Instrument]:
        """The symbols this account may trade, read-only."""
        return MappingProxyType(self._instruments)
    @classmethod
    def rebuild(
        cls,
        events: Iterable[object],
        account: str,
        instruments: Mapping[str, Instrument] | Iterable[Instrument],
        cash: Decimal | int | str = 0,
        *,
        kind: AccountKind = "margin",
        policy: MarginPolicy | None = None,
    ) -> Ledger:
        """A fresh ledger with every event of ``events`` applied in order (duplicates included:
        they are no-ops). Equals the live ledger that saw the same log.

        >>> from vtrade.core.instruments import us_equity
        >>> Ledger.rebuild([], "a-1", [us_equity("SPY")], cash=5) == Ledger("a-1", [us_equity("SPY")], cash=5)
        True
        """
        ledger = cls(account, instruments, cash, kind=kind, policy=policy)
        for event in events:
            ledger.apply(event)
        return ledger

    def copy(self) -> Ledger:
        """An independent copy (positions are immutable records, so a shallow copy suffices)."""
        new = object.__new__(Ledger)
        new.__dict__.update(self.__dict__)
        new._positions = dict(self._positions)
        new._fills = dict(self._fills)
        new._actions = dict(self._actions)
        new._borrow_days = set(self._borrow_days)
        new._last_fill_ts = dict(self._last_fill_ts)
        new._action_floor_ts = dict(self._action_floor_ts)
        return new

    def _state(self) -> tuple[object, ...]:
        return (
            self.account, self.kind, self.policy, dict(self.instruments), self.initial_cash, self._cash,
            self._positions, self._fees, self._borrow, self._dividends, self._fills, self._actions,
            self._borrow_days, self._last_fill_ts, self._action_floor_ts, self._day_start,
        )  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ledger):
            return NotImplemented
        return self._state() == other._state()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Ledger({self.account!r}, cash={self._cash}, positions={self.positions})"

    # ------------------------------------------------------------------ reading
    @property
    def cash(self) -> Decimal:
        return self._cash

    @property
    def fees_paid(self) -> Decimal:
        """Sum of fill fees (rebates negative)."""
        return self._fees

    @property
    def borrow_paid(self) -> Decimal:
        return self._borrow

    @property
    def dividends(self) -> Decimal:
        """Net dividends: received on longs minus paid on shorts."""
        return self._dividends

    @property
    def fill_ids(self) -> list[str]:
        """The ids of the fills applied, in the order they were applied (each once)."""
        return list(self._fills)

    @property
    def positions(self) -> dict[str, int]:
        """Open positions as ``{symbol: signed lots}`` (flat ones left out)."""
        return {s: p.quantity for s, p in sorted(self._positions.items()) if p.quantity}

    def position(self, symbol: str) -> Position:
        """The full record for ``symbol`` (an empty one if never traded)."""
        if symbol in self._positions:
            return self._positions[symbol]
        return Position(self._instrument(symbol))

    def realized_pnl(self, method: Method = "fifo") -> Decimal:
        """Realized price P&L (gross of fees, borrow, dividends) by ``"fifo"`` or ``"average"``."""
        m = _method(method)
        with localcontext(_EXACT):
            return sum(
                (p.realized_fifo if m == "fifo" else p.realized_average for p in self._positions.values()), _ZERO
            )

    def unrealized_pnl(self, marks: Mapping[str, MarkInput], method: Method = "fifo") -> Decimal:
        """Open P&L at ``marks``: market value minus open cost (FIFO lots or average basis)."""
        m = _method(method)
        ticks = self._held_marks(marks)
        with localcontext(_EXACT):
            return sum((self._positions[s].unrealized(t, m) for s, t in ticks.items()), _ZERO)

    def nav(self, marks: Mapping[str, MarkInput]) -> Decimal:
        """Cash plus the signed market value of every open position at ``marks``."""
        ticks = self._held_marks(marks)
        with localcontext(_EXACT):
            return self._cash + sum((self._positions[s].market_value(t) for s, t in ticks.items()), _ZERO)

    def day_pnl(self, marks: Mapping[str, MarkInput]) -> Decimal:
        """NAV at ``marks`` minus the NAV recorded by the last :meth:`start_day`."""
        if self._day_start is None:
            raise LedgerError("day P&L needs a start of day: call start_day(day, marks) first")
        with localcontext(_EXACT):
            return self.nav(marks) - self._day_start[1]

    @property
    def day_start(self) -> tuple[date, Decimal] | None:
        """``(day, nav)`` of the last :meth:`start_day`."""
        return self._day_start

    def account_state(self) -> AccountState:
        """The account as :mod:`vtrade.execution.accounts` rules see it (for pre-trade checks)."""
        return AccountState(self.account, self.kind, self._cash, self.positions)

    def margin(self, marks: Mapping[str, MarkInput], policy: MarginPolicy | None = None) -> MarginStatus:
        """Equity, market values and maintenance requirement via
        :func:`~vtrade.execution.accounts.margin_status` (the ledger's ``kind`` and ``policy``)."""
        ticks = self._held_marks(marks)
        prices = {s: Mark(self.instruments[s], t) for s, t in ticks.items()}
        return margin_status(self.account_state(), prices, policy or self.policy)

    # ------------------------------------------------------------------ marks
    def _instrument(self, symbol: str) -> Instrument:
        inst = self.instruments.get(symbol)
        if inst is None:
            raise LedgerError(f"{symbol!r} is not an instrument of ledger {self.account} "
                              f"(known: {', '.join(sorted(self.instruments))})")
        return inst

    def _tick(self, symbol: str, value: object) -> int:
        """One mark as ticks of ``symbol``'s grid; a clear LedgerError for anything else."""
        inst = self._instrument(symbol)
        if isinstance(value, Mark):
            if value.instrument.symbol != symbol or value.instrument.price_grid != inst.price_grid:
                raise LedgerError(f"the mark given for {symbol} is for {value.instrument.symbol} "
                                  f"on a {value.instrument.tick_size} grid")
            value = value.price
        if isinstance(value, bool):
            raise LedgerError(f"mark for {symbol} must be a price, got {value!r}")
        if isinstance(value, int):
            ticks = value
        elif isinstance(value, float | Decimal | str):
            try:
                finite = math.isfinite(value) if isinstance(value, float) else Decimal(value).is_finite()
            except InvalidOperation:
                raise LedgerError(f"mark for {symbol} is not a number: {value!r}") from None
            if not finite:
                raise LedgerError(f"mark for {symbol} must be a finite price, got {value!r}")
            try:
                ticks = inst.price(value)
            except OffGridError as exc:
                raise LedgerError(f"mark for {symbol}: {exc} (tick {inst.tick_size})") from None
        else:
            raise LedgerError(f"mark for {symbol} must be ticks (int), a Mark or a decimal price, got {value!r}")
        if ticks < 0:
            raise LedgerError(f"mark for {symbol} must not be negative, got {value!r}")
        return ticks

    def _marks(self, marks: Mapping[str, MarkInput]) -> dict[str, int]:
        """Every mark given for a known instrument, validated (others belong to other books)."""
        if not isinstance(marks, Mapping):
            raise LedgerError(f"marks must be a mapping symbol -> price, got {type(marks).__name__}")
        return {s: self._tick(s, v) for s, v in marks.items() if s in self.instruments}

    def _held_marks(self, marks: Mapping[str, MarkInput]) -> dict[str, int]:
        ticks = self._marks(marks)
        missing = [s for s, p in sorted(self._positions.items()) if p.quantity and s not in ticks]
        if missing:
            raise LedgerError(f"no mark for held position(s) {', '.join(missing)}")
        return {s: ticks[s] for s, p in sorted(self._positions.items()) if p.quantity}

    # ------------------------------------------------------------------ folding
    def apply(self, event: object) -> LedgerChange | None:
        """Fold one input. ``None``: already applied (or an execution event that moves no money).

        Raises :class:`LedgerError` (nothing changed) for another account's event, an unknown
        symbol, malformed values, an out-of-order fill, or a fill id reused with other content.
        """
        if isinstance(event, OrderFilled):
            return self._apply_fill(event)
        if isinstance(event, ExecEvent):
            if event.account != self.account:
                raise LedgerError(f"event for account {event.account!r} sent to ledger {self.account!r}")
            return None  # accepted/cancelled/...: no money moves
        if isinstance(event, CorporateAction):
            return self.apply_corporate_action(event)
        if isinstance(event, BorrowAccrual):
            return self._apply_borrow(event)
        if isinstance(event, DayStart):
            return self._apply_day_start(event)
        raise LedgerError(f"a ledger folds fills, corporate actions, borrow accruals and day starts, "
                          f"not {type(event).__name__}")

    def _apply_fill(self, ev: OrderFilled) -> LedgerChange | None:
        if ev.account != self.account:
            raise LedgerError(f"fill {ev.fill_id!r} is for account {ev.account!r}, not {self.account!r}")
        if not isinstance(ev.fill_id, str) or not ev.fill_id:
            raise LedgerError(f"a fill needs a non-empty fill_id, got {ev.fill_id!r}")
        inst = self._instrument(ev.symbol)
        if ev.side not in (Side.BUY, Side.SELL):
            raise LedgerError(f"fill {ev.fill_id}: side must be BUY or SELL, got {ev.side!r}")
        if not _is_int(ev.quantity) or ev.quantity <= 0:
            raise LedgerError(f"fill {ev.fill_id}: quantity must be a positive int of lots, got {ev.quantity!r}")
        if not _is_int(ev.price) or ev.price <= 0:
            raise LedgerError(f"fill {ev.fill_id}: price must be a positive int of ticks, got {ev.price!r}")
        if not isinstance(ev.fee, Decimal) or not ev.fee.is_finite():
            raise LedgerError(f"fill {ev.fill_id}: fee must be a finite Decimal, got {ev.fee!r}")
        if not _is_int(ev.ts):
            raise LedgerError(f"fill {ev.fill_id}: ts must be int nanoseconds, got {ev.ts!r}")
        digest = _digest(ev)
        seen = self._fills.get(ev.fill_id)
        if seen is not None:
            if seen != digest:
                raise LedgerError(f"fill_id {ev.fill_id!r} was already applied with different content")
            return None  # at-least-once delivery: the same fill again (before the order check: it is old)
        last = self._last_fill_ts.get(ev.symbol)
        if last is not None and ev.ts < last:
            raise LedgerError(
                f"fill {ev.fill_id} at ts {ev.ts} is earlier than the last applied fill of {ev.symbol} "
                f"({last}); fills must be applied in log order"
            )
        floor = self._action_floor_ts.get(ev.symbol)
        if floor is not None and ev.ts < floor:
            raise LedgerError(f"fill {ev.fill_id} at ts {ev.ts} is before the ex-date of a corporate action "
                              "already applied; apply events in log order")

        with localcontext(_EXACT):
            pos = self._positions.get(ev.symbol) or Position(inst)
            delta = int(Side(ev.side)) * ev.quantity
            price = inst.price_grid.to_decimal(ev.price)
            trade_value = price * inst.size_grid.to_decimal(delta)
            new, rf, ra = self._trade(pos, delta, price, ev.ts, ev.fill_id)
            new = _replace(new, fees=pos.fees + ev.fee)
            cash = -trade_value - ev.fee
            # Commit: nothing below can raise.
            self._positions[ev.symbol] = new
            self._cash += cash
            self._fees += ev.fee
            self._fills[ev.fill_id] = digest
            self._last_fill_ts[ev.symbol] = ev.ts
        return LedgerChange(ev, cash, rf, ra, ev.fee, positions=((ev.symbol, new.quantity),))

    def _trade(self, pos: Position, delta: int, price: Decimal, ts: int, source: str
               ) -> tuple[Position, Decimal, Decimal]:
        """``pos`` after trading ``delta`` lots (+ buys) at ``price``, and the FIFO and average
        realized P&L of the part that closed."""
        q = pos.quantity
        units = pos.instrument.size_grid.to_decimal
        value = price * units(delta)  # signed like delta
        if q == 0 or _sign(q) == _sign(delta):
            grown = (*pos.lots, Lot(delta, value, ts, source))
            return _replace(pos, quantity=q + delta, cost_basis=pos.cost_basis + value, lots=grown), _ZERO, _ZERO
        s = _sign(q)
        m = min(abs(delta), abs(q))  # lots closed
        # What closing m lots is worth, in the position's sign (+ for selling out of a long).
        exit_value = price * units(s * m)
        # FIFO: consume the oldest lots first.
        left, removed, lots = m, _ZERO, list(pos.lots)
        while left:
            lot = lots[0]
            n = abs(lot.quantity)
            if n <= left:
                removed += lot.cost
                lots.pop(0)
                left -= n
            else:
                part = _prorate(lot.cost, left, n, self._quantum)
                removed += part
                lots[0] = Lot(lot.quantity - s * left, lot.cost - part, lot.ts, lot.source)
                left = 0
        realized_f = exit_value - removed
        # Average cost: remove the closed share of the basis.
        removed_avg = _prorate(pos.cost_basis, m, abs(q), self._quantum)
        realized_a = exit_value - removed_avg
        basis = pos.cost_basis - removed_avg
        rest = delta + s * m  # lots that open a new position on the other side (0 if none)
        if rest:
            rest_value = price * units(rest)
            lots.append(Lot(rest, rest_value, ts, source))
            basis = rest_value
        new = _replace(
            pos, quantity=q + delta, cost_basis=basis, lots=tuple(lots),
            realized_fifo=pos.realized_fifo + realized_f, realized_average=pos.realized_average + realized_a,
        )
        return new, realized_f, realized_a

    # ------------------------------------------------------------------ corporate actions
    def apply_corporate_action(self, action: CorporateAction) -> LedgerChange | None:
        """Apply a split or cash dividend (once per ``(symbol, ex_date, kind)``).

        Split by ``ratio`` r: every FIFO lot's size is multiplied by r and keeps its cost (so its
        price divides by r), the average basis is unchanged; the position becomes
        ``trunc(|q| x r)`` lots and the fraction left is cashed out at ``reference_price / r``
        per new share (rounded to the minor unit when not exact), which realizes P&L on that
        fraction like a sale (a short buys it back). When r is not an integer the FIFO lots are
        re-cut along the running total (lot i ends at ``trunc(C_i x r)``, C_i = lots up to and
        including i) with cost taken pro rata along the queue, so sizes and costs still add up;
        the cashed-out fraction comes from the newest lot. Dividend: ``amount x shares`` is
        credited to a long and debited from a short; cost bases are not touched.

        Must come after every fill before the ex-date and before any fill on or after it.

        >>> from vtrade.core.instruments import us_equity
        >>> from vtrade.execution.orders import Liquidity
        >>> led = Ledger("a-1", [us_equity("AIG")], cash="100")
        >>> _ = led.apply(OrderFilled(0, "a-1", "c-1", "AIG", "f1", Side.BUY, 120, 30, 0, Liquidity.TAKER,
        ...                           Decimal(0), 240, 0.0, "test"))   # 30 AIG at $1.20 = $36.00
        >>> ch = led.apply_corporate_action(CorporateAction.split("AIG", date(2009, 7, 1), Fraction(1, 20), "1.13"))
        >>> led.positions, ch.cash, ch.realized_fifo   # 30 -> 1.5 shares: 1 kept, 0.5 x $22.60 paid
        ({'AIG': 1}, Decimal('11.30'), Decimal('-0.70'))
        """
        if not isinstance(action, CorporateAction):
            raise LedgerError(f"not a CorporateAction: {action!r}")
        key = (action.symbol, action.ex_date, action.kind)
        done = self._actions.get(key)
        if done is not None:
            if done != action:
                raise LedgerError(f"{action.kind.value} of {action.symbol} on {action.ex_date} was already applied "
                                  "with different terms")
            return None
        if action.kind is ActionKind.DIVIDEND and (action.symbol, action.ex_date, ActionKind.SPLIT) in self._actions:
            raise LedgerError(f"{action.symbol} {action.ex_date}: the dividend is per pre-split share, so it must be "
                              "applied before that day's split")
        inst = self.instruments.get(action.symbol)
        if inst is None:  # not a book we hold: remember it so a replay stays a no-op
            self._actions[key] = action
            return LedgerChange(action)
        ex_ts = _midnight_ns(action.ex_date, inst.hours.timezone)
        last = self._last_fill_ts.get(action.symbol)
        if last is not None and last >= ex_ts:
            raise LedgerError(
                f"{action.kind.value} of {action.symbol} ex {action.ex_date} arrives after a fill at "
                f"ts {last}, on or after its ex-date; apply events in log order"
            )
        pos = self._positions.get(action.symbol) or Position(inst)
        with localcontext(_EXACT):
            if action.kind is ActionKind.DIVIDEND:
                cash = action.amount * inst.size_grid.to_decimal(pos.quantity)
                new, rf, ra = _replace(pos, dividends=pos.dividends + cash), _ZERO, _ZERO
            else:
                new, cash, rf, ra = self._split(pos, action)
            if action.symbol in self._positions or new != pos:
                self._positions[action.symbol] = new
            self._cash += cash
            if action.kind is ActionKind.DIVIDEND:
                self._dividends += cash
            self._actions[key] = action
            if ex_ts > self._action_floor_ts.get(action.symbol, ex_ts - 1):
                self._action_floor_ts[action.symbol] = ex_ts
        return LedgerChange(action, cash, rf, ra, dividends=cash if action.kind is ActionKind.DIVIDEND else _ZERO,
                            positions=((action.symbol, new.quantity),))

    def _split(self, pos: Position, action: CorporateAction) -> tuple[Position, Decimal, Decimal, Decimal]:
        q, r = pos.quantity, action.ratio
        if q == 0:
            return pos, _ZERO, _ZERO, _ZERO
        s, n_old = _sign(q), abs(q)
        exact_new = n_old * r
        whole = int(exact_new)  # trunc: a fraction of a share is cashed out, never rounded up
        frac = exact_new - whole
        # Re-cut the FIFO queue: boundaries at trunc(C_i r) new lots, costs by the running total
        # G(x) = cost of the first x old lots (linear inside each lot), rounded only via _to_decimal.
        lots: list[Lot] = []
        cum_old, cum_cost = 0, Fraction(0)
        prev_new, prev_cost = 0, _ZERO
        for i, lot in enumerate(pos.lots):
            size = abs(lot.quantity)
            end_new = whole if i == len(pos.lots) - 1 else int((cum_old + size) * r)
            if end_new > prev_new:
                # end_new > trunc(cum_old x r), so the boundary falls inside this lot.
                at_old = Fraction(end_new) / r  # old lots covered by the first end_new new lots
                g = cum_cost + Fraction(lot.cost) * (at_old - cum_old) / size
                end_cost = _to_decimal(g, self._quantum)
                lots.append(Lot(s * (end_new - prev_new), end_cost - prev_cost, lot.ts, lot.source))
                prev_new, prev_cost = end_new, end_cost
            cum_old += size
            cum_cost += Fraction(lot.cost)
        frac_cost_fifo = pos.fifo_cost - prev_cost
        if frac:
            if action.reference_price <= 0:
                raise LedgerError(f"split of {pos.symbol} on {action.ex_date} leaves a fraction of a share but has "
                                  "no reference price to cash it out at")
            lot_units = Fraction(pos.instrument.size_grid.to_decimal(1))
            proceeds = _to_decimal(frac * Fraction(action.reference_price) * lot_units / r, self._quantum)
            removed_avg = _prorate(pos.cost_basis, frac, exact_new, self._quantum)
        else:
            proceeds = removed_avg = _ZERO
        exit_value = s * proceeds
        rf, ra = exit_value - frac_cost_fifo, exit_value - removed_avg
        new = _replace(
            pos, quantity=s * whole, cost_basis=pos.cost_basis - removed_avg, lots=tuple(lots),
            realized_fifo=pos.realized_fifo + rf, realized_average=pos.realized_average + ra,
        )
        return new, exit_value, rf, ra

    # ------------------------------------------------------------------ borrow
    def accrue_borrow(
        self,
        day: date,
        marks: Mapping[str, MarkInput],
        rates: Mapping[str, Decimal | int | str] | SessionLimits | Decimal,
    ) -> LedgerChange | None:
        """Charge one calendar day of stock-loan fees on every short, once per ``day``.

        Each short pays :func:`~vtrade.execution.accounts.borrow_cost` for ``days=1``:
        ``|lots| x lot size x mark x annual rate / 360`` (actual/360), rounded half up to the
        minor unit. ``rates``: per-symbol annual rates, a :class:`SessionLimits` (its
        ``borrow_rate_for``), or one rate for all. A weekend is three calls (Fri, Sat, Sun),
        usually at Friday's close. A repeated ``day`` is a no-op (None); an earlier one an error.

        >>> from vtrade.core.instruments import us_equity
        >>> from vtrade.execution.orders import Liquidity
        >>> led = Ledger("a-1", [us_equity("XYZ")])
        >>> _ = led.apply(OrderFilled(0, "a-1", "c-1", "XYZ", "f1", Side.SELL, 5000, 100, 0, Liquidity.TAKER,
        ...                           Decimal(0), 10000, 0.0, "test"))   # short 100 at $50
        >>> led.accrue_borrow(date(2024, 1, 2), {"XYZ": 5000}, Decimal("0.20")).borrow   # $5,000 x 20 % / 360
        Decimal('2.78')
        """
        if not isinstance(day, date):
            raise LedgerError(f"day must be a date, got {day!r}")
        ticks = self._marks(marks)
        shorts = [s for s, p in sorted(self._positions.items()) if p.quantity < 0]
        missing = [s for s in shorts if s not in ticks]
        if missing:
            raise LedgerError(f"no mark for short position(s) {', '.join(missing)}")
        rate_of: dict[str, Decimal] = {}
        for s in shorts:
            if isinstance(rates, SessionLimits):
                rate_of[s] = rates.borrow_rate_for(s)
            elif isinstance(rates, Mapping):
                if s not in rates:
                    raise LedgerError(f"no borrow rate for short position {s}")
                rate_of[s] = _money(rates[s], f"borrow rate of {s}")
            else:
                rate_of[s] = _money(rates, "borrow rate")
            if rate_of[s] < 0:
                raise LedgerError(f"borrow rate of {s} must not be negative, got {rate_of[s]}")
        record = BorrowAccrual(day, tuple((s, ticks[s]) for s in shorts), tuple((s, rate_of[s]) for s in shorts))
        return self._apply_borrow(record)

    def _apply_borrow(self, rec: BorrowAccrual) -> LedgerChange | None:
        if not isinstance(rec.day, date):
            raise LedgerError(f"borrow accrual day must be a date, got {rec.day!r}")
        if rec.day in self._borrow_days:
            return None
        if self._borrow_days and rec.day < max(self._borrow_days):
            raise LedgerError(f"borrow for {rec.day} comes after {max(self._borrow_days)} was accrued; "
                              "accrue days in order")
        marks, rates = dict(rec.marks), dict(rec.rates)
        charges: dict[str, Decimal] = {}
        for s, p in sorted(self._positions.items()):
            if p.quantity >= 0:
                continue
            if s not in marks or s not in rates:
                raise LedgerError(f"borrow accrual for {rec.day} lacks a mark or rate for short {s}")
            try:
                charges[s] = borrow_cost(p.quantity, marks[s], p.instrument, rates[s], 1)
            except ValueError as exc:
                raise LedgerError(f"borrow accrual for {rec.day}, {s}: {exc}") from None
        with localcontext(_EXACT):
            total = sum(charges.values(), _ZERO)
            for s, c in charges.items():
                self._positions[s] = _replace(self._positions[s], borrow=self._positions[s].borrow + c)
            self._cash -= total
            self._borrow += total
            self._borrow_days.add(rec.day)
        return LedgerChange(rec, -total, borrow=total,
                            positions=tuple((s, self._positions[s].quantity) for s in charges))

    # ------------------------------------------------------------------ day P&L
    def start_day(self, day: date, marks: Mapping[str, MarkInput]) -> LedgerChange | None:
        """Record the NAV at the start of ``day`` (marks: usually the previous close) for
        :meth:`day_pnl`. The same day again is a no-op; an earlier day an error.

        >>> from vtrade.core.instruments import us_equity
        >>> led = Ledger("a-1", [us_equity("XYZ")], cash="100")
        >>> led.start_day(date(2024, 1, 2), {}).nav, led.day_pnl({})
        (Decimal('100'), Decimal('0'))
        """
        if not isinstance(day, date):
            raise LedgerError(f"day must be a date, got {day!r}")
        ticks = self._held_marks(marks)
        return self._apply_day_start(DayStart(day, tuple(sorted(ticks.items()))))

    def _apply_day_start(self, rec: DayStart) -> LedgerChange | None:
        if not isinstance(rec.day, date):
            raise LedgerError(f"day start must be a date, got {rec.day!r}")
        if self._day_start is not None:
            if rec.day == self._day_start[0]:
                return None
            if rec.day < self._day_start[0]:
                raise LedgerError(f"start of {rec.day} comes after the start of {self._day_start[0]}")
        nav = self.nav(dict(rec.marks))
        self._day_start = (rec.day, nav)
        return LedgerChange(rec, nav=nav)


# ---------------------------------------------------------------------------- internals
def _replace(pos: Position, **changes: object) -> Position:
    values = {f: getattr(pos, f) for f in Position.__dataclass_fields__}
    values.update(changes)
    return Position(**values)


def _digest(event: Event) -> bytes:
    # The encoded event identifies its content; a redelivery must match it byte for byte.
    try:
        data = encode(event)
    except (TypeError, ValueError) as exc:  # msgspec.EncodeError is a ValueError
        raise LedgerError(f"event cannot be encoded: {exc}") from None
    return hashlib.blake2b(data, digest_size=16).digest()


_EPOCH = datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))


def _midnight_ns(day: date, timezone: str) -> int:
    """UTC ns of 00:00 on ``day`` in ``timezone``: fills from then on are on or after the ex-date."""
    local = datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone))
    # Integer arithmetic on the offset: exact, where timestamp() would go through a float.
    return (local - _EPOCH) // timedelta(microseconds=1) * 1_000

