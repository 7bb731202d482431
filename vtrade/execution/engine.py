"""The matching engine for one symbol: a deterministic fold of market data and order commands.

:class:`ExecutionEngine` is the exchange in vtrade's simulation. It consumes ONE sequenced
stream (market events and commands already merged in time order, DESIGN.md §4) and returns
the execution events each input causes. Given the same stream it returns byte-identical
events, on every run and after ``snapshot()``/``restore()`` at any point.

How orders fill depends on the session's rung of the realism ladder (DESIGN.md §5):

``bars``
    Orders fill on the first bar that starts at or after their arrival, at the bar model's
    price (default: zipline's volume-share model, close ± impact) and at most its
    participation cap per bar; the rest waits for later bars. Stops trigger on the bar's
    high/low.
``L1``
    Marketable orders cross the spread up to the displayed size (less what we already
    took); the remainder fills at the square-root impact price, within the limit. Resting
    orders queue behind the displayed size at the touch.
``L2``
    Marketable orders walk the levels; what we take stays taken until the feed restates the
    level; price protection caps how far from the touch a marketable order may go. Resting
    orders carry a queue position that trades and (per the queue model) cancels drain.
    Only a print whose aggressor hit our side drains it: a seller's print at our bid's price
    advances a resting buy, a buyer's print there does not (hftbacktest and NautilusTrader do
    the same). A print of unknown aggressor (TAQ, Lean, LOBSTER crosses) hits whichever of
    our resting sides is at its price; see :mod:`vtrade.execution._match` for why the engine
    does not infer the side from the book (Lee-Ready).
``L3``
    Resting orders know exactly which orders are ahead (order-by-order data): they fill
    when those are gone and the next execution at their price would reach them.

In every mode a resting order also fills when the market trades through its price, or when
the opposite best crosses it. The engine does not know accounts' cash: pre-trade account
rules run before the engine (:mod:`vtrade.execution.accounts`); it does keep each account's
position in this symbol, for reduce-only orders.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any

import msgspec
import numpy as np

from vtrade.core.events import (
    Bar,
    BookDelta,
    BookSnapshot,
    CorporateActionEvent,
    Event,
    OrderCancelled,
    OrderDeleted,
    OrderExecuted,
    Quote,
    Side,
    Trade,
    TradingStatus,
)
from vtrade.core.instruments import Instrument
from vtrade.core.rng import seeded_rng
from vtrade.execution import _match
from vtrade.execution import corporate_actions as ca
from vtrade.execution import events as ev
from vtrade.execution.fees import FeeModel, FillContext, NoFees
from vtrade.execution.impact import BarFillModel, SquareRootImpact, VolumeShareSlippage
from vtrade.execution.liquidity import ConsumedLiquidity, Take, walk
from vtrade.execution.orders import (
    CancelOrder,
    InvalidTransition,
    Liquidity,
    OrderState,
    OrderStatus,
    OrderType,
    ReplaceOrder,
    SubmitOrder,
    TimeInForce,
)
from vtrade.execution.queue import QueueModel, RiskAverseQueue
from vtrade.market._l2kernels import SNAPSHOT as SNAPSHOT_KIND
from vtrade.market._l2kernels import TRADE as TRADE_KIND
from vtrade.market.l2book import L2Book, UpdateBatch, quote_snapshot
from vtrade.market.l3book import L3Book

Code = ev.RejectCode


class Realism(StrEnum):
    """The rungs of the realism ladder."""

    BARS = "bars"
    L1 = "L1"
    L2 = "L2"
    L3 = "L3"


_DEFAULT_PROTECTION_BPS = 500


class _Default:
    """The unset default of ``price_protection_bps`` (500 bps unless ticks are given)."""

    def __repr__(self) -> str:
        return f"{_DEFAULT_PROTECTION_BPS} (default)"


_DEFAULT_PROTECTION: Any = _Default()


def _protection_amount(name: str, value: object) -> int | None:
    """A price protection distance: None, or a whole number >= 0 (ValueError otherwise)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be a whole number >= 0 or None, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0 (0 = the touch price only), got {value}")
    return int(value)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the engine fills orders for one instrument.

    Price protection: a marketable order never fills further from the touch at arrival than
    ``price_protection_bps`` basis points of the touch price (rounded toward the touch) or
    ``price_protection_ticks`` ticks (NautilusTrader's protection points); the rest is
    cancelled. Set at most one of the two (both: ValueError); 0 allows the touch price only.
    Left unset, protection is 500 bps; ``price_protection_bps=None`` with no ticks turns it off.

    ``daily_vol`` (fraction) and ``adv`` (lots) feed the square-root impact of L1 remainders.
    ``extended_hours`` accepts orders outside the instrument's regular session. ``l3_window``
    is the visible depth of a depth-limited L3 feed (LOBSTER's level count; :class:`Feed`
    ``.window``).
    """

    instrument: Instrument
    realism: Realism = Realism.L2
    queue_model: QueueModel = field(default_factory=RiskAverseQueue)
    fees: FeeModel = field(default_factory=NoFees)
    bar_model: BarFillModel = field(default_factory=VolumeShareSlippage)
    impact: SquareRootImpact = field(default_factory=SquareRootImpact)
    price_protection_bps: int | None = _DEFAULT_PROTECTION
    daily_vol: float = 0.02
    adv: int = 1_000_000
    extended_hours: bool = True
    session_seed: int = 0
    l3_window: int | None = None
    price_protection_ticks: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "realism", Realism(self.realism))
        bps, ticks = self.price_protection_bps, self.price_protection_ticks
        if bps is _DEFAULT_PROTECTION:
            bps = None if ticks is not None else _DEFAULT_PROTECTION_BPS
        elif bps is not None and ticks is not None:
            raise ValueError(
                f"set price protection in bps or in ticks, not both (got price_protection_bps={bps!r} and "
                f"price_protection_ticks={ticks!r})"
            )
        object.__setattr__(self, "price_protection_bps", _protection_amount("price_protection_bps", bps))
        object.__setattr__(self, "price_protection_ticks", _protection_amount("price_protection_ticks", ticks))


@dataclass(slots=True)
class _Working:
    """What the engine keeps about one order besides its OrderState."""

    state: OrderState
    arrival_mid2: int
    slot: int | None = None  # L1/L2: row in the resting-order table the compiled path works on
    queue_at_entry: int | None = None
    l3_ahead: dict[int, int] | None = None  # L3: order id -> lots ahead of us, plus key 0 = anonymous
    stop: int | None = None  # current stop price (trailing stops move it)
    trail_ref: int | None = None  # best price seen since acceptance, for trailing stops
    fees: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)

    @property
    def order(self) -> SubmitOrder:
        return self.state.order

    @property
    def resting_price(self) -> int | None:
        """The price the order rests at, or None while it does not rest (stops not triggered, market)."""
        o = self.order
        if o.order_type is OrderType.LIMIT or (o.order_type is OrderType.STOP_LIMIT and self.state.triggered):
            return o.limit_price
        return None


class _RestingTable:
    """Our resting L1/L2 limit orders as arrays: the compiled market path reads and updates them."""

    def __init__(self, capacity: int = 8) -> None:
        self.side = np.zeros(capacity, dtype=np.int8)  # 0 = free slot
        self.px = np.zeros(capacity, dtype=np.int64)
        self.leaves = np.zeros(capacity, dtype=np.int64)
        self.front = np.zeros(capacity, dtype=np.float64)
        self.traded = np.zeros(capacity, dtype=np.float64)
        self.keys: list[tuple[str, str] | None] = [None] * capacity
        self._free = list(range(capacity - 1, -1, -1))  # a stack: the lowest slot is reused first
        # Fill records of the last kernel call (at most one per slot).
        self.f_slot = np.zeros(capacity, dtype=np.int64)
        self.f_qty = np.zeros(capacity, dtype=np.int64)
        self.f_why = np.zeros(capacity, dtype=np.int64)

    def add(self, key: tuple[str, str], side: Side, price: int, leaves: int, front: float) -> int:
        if not self._free:
            self._grow()
        k = self._free.pop()
        self.side[k], self.px[k], self.leaves[k], self.front[k], self.traded[k] = int(side), price, leaves, front, 0.0
        self.keys[k] = key
        return k

    def free(self, k: int) -> None:
        self.side[k] = 0
        self.leaves[k] = 0
        self.keys[k] = None
        self._free.append(k)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.side, self.px, self.leaves, self.front, self.traded

    def outputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.f_slot, self.f_qty, self.f_why

    def _grow(self) -> None:
        n = self.side.shape[0]
        for name in ("side", "px", "leaves", "front", "traded", "f_slot", "f_qty", "f_why"):
            old = getattr(self, name)
            new = np.zeros(2 * n, dtype=old.dtype)
            new[:n] = old
            setattr(self, name, new)
        self.keys += [None] * n
        self._free = list(range(2 * n - 1, n - 1, -1)) + self._free


_EXPIRING = (TimeInForce.DAY, TimeInForce.GTD)
_WHY = {_match.WHY_QUEUE: "queue", _match.WHY_THROUGH: "trade through", _match.WHY_CROSSED: "market crossed the order"}


class ExecutionEngine:
    """One symbol's exchange. ``step(event)`` returns the execution events it causes.

    >>> from vtrade.core.instruments import us_equity
    >>> eng = ExecutionEngine(EngineConfig(us_equity("SPY")))
    >>> _ = eng.step(BookSnapshot(1, 1, "SPY", 1, [16764], [500], [16765], [300]))
    >>> accepted, filled, cancelled = eng.step(SubmitOrder(2, "a", "c1", "SPY", Side.BUY, OrderType.MARKET, 400))
    >>> filled.price, filled.quantity, filled.liquidity, filled.slippage_bps
    (16765, 300, <Liquidity.TAKER: 'taker'>, 0.298...)
    >>> cancelled.leaves, cancelled.reason
    (100, 'market order: no more liquidity within 500 bps of the touch')
    """

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.instrument = config.instrument
        self.symbol = config.instrument.symbol
        self.realism = config.realism
        self.book = L2Book(self.symbol, crossing="crossed" if config.realism is Realism.L1 else "reject")
        self.l3 = L3Book(self.symbol) if config.realism is Realism.L3 else None
        self.used = ConsumedLiquidity()
        self.orders: dict[tuple[str, str], _Working] = {}  # (account, client order id) -> every order seen
        self._live: dict[tuple[str, str], _Working] = {}  # the open ones: what each market event looks at
        self.positions: dict[str, int] = {}
        self.rng = seeded_rng(config.session_seed, self.symbol)
        self.now = 0
        self.halted = False
        self.last_trade: int | None = None
        self.last_bar: Bar | None = None
        self._fill_seq = 0
        self._bar_used = 0  # lots the current bar already gave to our fills
        self._table = _RestingTable()
        self._n_expiring = 0  # live DAY/GTD orders: when 0 there is no deadline to look for
        self._kstate = np.array([-1], dtype=np.int64)  # the kernel writes the last trade price here

    # ------------------------------------------------------------------ driver
    def step(self, event: Event) -> list[ev.ExecEvent]:
        """Apply one input (market event or command); return the execution events it caused."""
        if self.realism is Realism.L2 and isinstance(event, Quote):
            # A venue's separate top-of-book stream is not an input of an L2 exchange, not even
            # as a clock tick: the book and its time come from depth messages and trades.
            return []
        self.now = max(self.now, event.ts)
        out: list[ev.ExecEvent] = []
        if isinstance(event, SubmitOrder):
            self._submit(event, out)
        elif isinstance(event, CancelOrder):
            self._cancel(event, out)
        elif isinstance(event, ReplaceOrder):
            self._replace(event, out)
        else:
            self._market(event, out)
        self._expire(out)
        return out

    def open_orders(self) -> list[OrderState]:
        """Open orders, in the order they were accepted."""
        return [w.state for w in self._live.values()]

    def order(self, account: str, client_order_id: str) -> OrderState | None:
        w = self.orders.get((account, client_order_id))
        return None if w is None else w.state

    def position(self, account: str) -> int:
        """Net lots ``account`` holds in this symbol from fills seen by this engine."""
        return self.positions.get(account, 0)

    def snapshot(self) -> bytes:
        """The engine's whole state; :meth:`restore` continues exactly from here."""
        return pickle.dumps(self.__dict__, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, blob: bytes) -> ExecutionEngine:
        engine = cls.__new__(cls)
        engine.__dict__.update(pickle.loads(blob))  # our own snapshot, never user input
        return engine

    # ---------------------------------------------------------------- commands
    def _submit(self, o: SubmitOrder, out: list[ev.ExecEvent]) -> None:
        key = (o.account, o.client_order_id)
        problem = self._check_submit(o, key)
        if problem is not None:
            out.append(ev.OrderRejected(self.now, o.account, o.client_order_id, o.symbol, *problem))
            return
        w = _Working(OrderState.new(o).to(OrderStatus.ACCEPTED), self._mid2())
        if o.order_type in (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP):
            w.stop = o.stop_price
            w.trail_ref = self.last_trade
            if o.order_type is OrderType.TRAILING_STOP:
                w.stop = self._trail_stop(w) if w.trail_ref is not None else None
        self.orders[key] = self._live[key] = w
        self._n_expiring += o.tif in _EXPIRING
        if o.requested_quantity is not None and o.requested_quantity != o.quantity:
            sz = self.instrument.size_grid.to_decimal
            why = f"size to cash: buying power pays for {sz(o.quantity)} of the {sz(o.requested_quantity)} asked for"
            out.append(ev.OrderAcceptedReduced(self.now, o.account, o.client_order_id, o.symbol,
                                               o.requested_quantity, o.quantity, why))  # fmt: skip
        else:
            out.append(ev.OrderAccepted(self.now, o.account, o.client_order_id, o.symbol))
        if w.stop is not None and self.last_trade is not None and self._stop_hit(w, self.last_trade):
            self._trigger(w, out)
        if not self._is_waiting_stop(w):
            self._work(w, out)

    def _check_submit(self, o: SubmitOrder, key: tuple[str, str]) -> tuple[Code, str] | None:
        if o.symbol != self.symbol:
            return Code.UNKNOWN_SYMBOL, f"this exchange trades {self.symbol}, not {o.symbol}"
        if key in self.orders:
            return Code.DUPLICATE_ORDER_ID, f"order id {o.client_order_id} was already used by this account"
        if not isinstance(o.order_type, OrderType):
            return Code.UNKNOWN_ORDER_TYPE, f"unknown order type {o.order_type!r}"
        if o.quantity <= 0:
            return Code.INVALID_QUANTITY, f"quantity must be positive, got {o.quantity}"
        if o.requested_quantity is not None and o.requested_quantity < o.quantity:
            return Code.INVALID_QUANTITY, f"a cut order cannot exceed the {o.requested_quantity} requested"
        needs_limit = o.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = o.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        if needs_limit and o.limit_price is None:
            return Code.MISSING_FIELD, f"a {o.order_type} order needs a limit price"
        if needs_stop and o.stop_price is None:
            return Code.MISSING_FIELD, f"a {o.order_type} order needs a stop price"
        if o.order_type is OrderType.TRAILING_STOP and (o.trail_ticks is None) == (o.trail_bps is None):
            return Code.MISSING_FIELD, "a trailing stop needs exactly one of a trail amount or a trail percentage"
        for name in ("limit_price", "stop_price", "trail_ticks", "trail_bps"):
            value = getattr(o, name)
            if value is not None and value <= 0:
                return Code.INVALID_PRICE, f"{name.replace('_', ' ')} must be positive, got {value}"
        if o.tif is TimeInForce.GTD and (o.expire_ts is None or o.expire_ts <= self.now):
            return Code.MISSING_FIELD, "a GTD order needs an expiry time in the future"
        if self.halted:
            return Code.HALTED, ev.halted_reason(self.symbol)
        if not self.config.extended_hours and not self.instrument.hours.is_open(self.now):
            return Code.MARKET_CLOSED, f"{self.symbol}'s market is closed"
        if o.post_only and (o.order_type is not OrderType.LIMIT or self._marketable(o.side, o.limit_price)):
            return Code.POST_ONLY_WOULD_TAKE, "a post-only order must rest: this one would trade on arrival"
        if o.reduce_only:
            pos = self.position(o.account)
            if pos == 0 or (pos > 0) == (o.side is Side.BUY):
                return Code.REDUCE_ONLY, f"a reduce-only {o.side.name.lower()} would not reduce your position ({pos})"
        return None

    def _cancel(self, c: CancelOrder, out: list[ev.ExecEvent]) -> None:
        w = self.orders.get((c.account, c.client_order_id))
        if w is None:
            out.append(ev.OrderRejected(self.now, c.account, c.client_order_id, c.symbol, Code.UNKNOWN_ORDER,
                                        f"no order {c.client_order_id} to cancel"))  # fmt: skip
            return
        if not w.state.status.is_open:
            out.append(ev.OrderRejected(self.now, c.account, c.client_order_id, c.symbol, Code.ORDER_NOT_OPEN,
                                        f"order {c.client_order_id} is already {w.state.status}"))  # fmt: skip
            return
        self._close(w, OrderStatus.CANCELLED, "cancelled by user", out)

    def _replace(self, r: ReplaceOrder, out: list[ev.ExecEvent]) -> None:
        w = self.orders.get((r.account, r.client_order_id))
        reject: tuple[Code, str] | None = None
        if w is None:
            reject = Code.UNKNOWN_ORDER, f"no order {r.client_order_id} to replace"
        elif not w.state.status.is_open:
            reject = Code.ORDER_NOT_OPEN, f"order {r.client_order_id} is already {w.state.status}"
        elif r.quantity is not None and r.quantity <= w.state.filled:
            reject = Code.INVALID_QUANTITY, f"new quantity {r.quantity} must exceed the {w.state.filled} already filled"
        elif any(p is not None and p <= 0 for p in (r.limit_price, r.stop_price)):
            reject = Code.INVALID_PRICE, "prices must be positive"
        elif r.limit_price is not None and w.order.limit_price is None:
            reject = Code.INVALID_PRICE, f"a {w.order.order_type} order has no limit price to change"
        elif r.stop_price is not None and w.order.stop_price is None:
            reject = Code.INVALID_PRICE, f"a {w.order.order_type} order has no stop price to change"
        if reject is not None:
            out.append(ev.OrderRejected(self.now, r.account, r.client_order_id, r.symbol, *reject))
            return
        assert w is not None
        old = w.order
        fields = {k: v for k, v in (("quantity", r.quantity), ("limit_price", r.limit_price),
                                    ("stop_price", r.stop_price)) if v is not None}  # fmt: skip
        new = msgspec.structs.replace(old, **fields)
        if new.post_only and self._marketable(new.side, new.limit_price):
            out.append(ev.OrderRejected(self.now, r.account, r.client_order_id, r.symbol, Code.POST_ONLY_WOULD_TAKE,
                                        "the new price would trade on arrival; the order is unchanged"))  # fmt: skip
            return
        # Exchanges (NASDAQ, CME, Binance) keep priority only for a pure size decrease.
        kept = new.limit_price == old.limit_price and new.quantity <= old.quantity
        w.state = w.state.amend(new)
        if w.stop is not None and r.stop_price is not None:
            w.stop = r.stop_price
        out.append(ev.OrderReplaced(self.now, r.account, r.client_order_id, r.symbol, new.quantity,
                                    new.limit_price, new.stop_price, kept))  # fmt: skip
        if kept:
            self._sync_slot(w)  # same place in the queue, fewer lots
            return
        if w.slot is not None:
            self._table.free(w.slot)
            w.slot = None
        w.l3_ahead = None
        if not self._is_waiting_stop(w):
            self._work(w, out)

    # ------------------------------------------------------------------ market
    def step_batch(self, batch: UpdateBatch, e0: int, e1: int) -> tuple[int, list[ev.ExecEvent]]:
        """L1/L2 fast path: apply book/trade events ``e0:e1`` of ``batch`` (built with
        ``UpdateBatch.from_events(..., trades=True)``; L1 quotes as ``quote_snapshot``s).

        Stops right after the first event that fills one of our orders, so the caller can act
        on the news in time order; returns ``(next_event, execution_events)``. Equivalent to
        calling :meth:`step` on each event, only faster.
        """
        if self.realism not in (Realism.L1, Realism.L2):
            raise ValueError(f"step_batch serves the L1 and L2 realism levels, not {self.realism}")
        out: list[ev.ExecEvent] = []
        e = self._market_events(batch, e0, e1, out)
        self._expire(out)
        return e, out

    def _market(self, e: Event, out: list[ev.ExecEvent]) -> None:
        r = self.realism
        if isinstance(e, TradingStatus):
            self.halted = e.halted
        elif isinstance(e, CorporateActionEvent):
            self._corporate_action(e, out)
        elif r in (Realism.L1, Realism.L2) and isinstance(e, BookSnapshot | BookDelta | Quote | Trade):
            if isinstance(e, Quote):
                e = quote_snapshot(e)
            elif r is Realism.L1 and not isinstance(e, Trade):
                return
            self._market_events(UpdateBatch.from_events((e,), trades=True), 0, 1, out)
        elif isinstance(e, Trade):
            self.last_trade = e.price
            self._stops_on_trade(e.price, out)
            if r is Realism.L3:
                self._fill_traded_through(e.price, out)
        elif r is Realism.L3 and self.l3 is not None:
            self._on_l3(e, out)
        elif r is Realism.BARS and isinstance(e, Bar):
            self._on_bar(e, out)

    def _corporate_action(self, e: CorporateActionEvent, out: list[ev.ExecEvent]) -> None:
        """A split cancels every open order (their prices and sizes are in old shares), then
        every holding changes as :func:`vtrade.execution.corporate_actions.holding_after` says."""
        action = ca.from_event(e)
        if e.kind == "split":
            reason = ca.cancel_reason(action)
            for _, w in self._open():
                self._close(w, OrderStatus.CANCELLED, reason, out)
        for account in sorted(self.positions):
            before = self.positions[account]
            if before == 0:
                continue
            after, cash = ca.holding_after(action, before, self.instrument.lot_size)
            self.positions[account] = after
            out.append(ev.CorporateActionApplied(
                self.now, account, "", self.symbol, e.kind, e.ex_date, e.ratio_num, e.ratio_den, e.amount,
                before, after, cash,
            ))  # fmt: skip

    def _market_events(self, batch: UpdateBatch, e0: int, e1: int, out: list[ev.ExecEvent]) -> int:
        """Run the compiled path over ``e0:e1``; stops after an event that filled us."""
        e = e0
        qm = self.config.queue_model
        tab = self._table
        while e < e1:
            # Waiting stops need a look at every trade, so go one event at a time while any wait.
            stop_at = e + 1 if self._has_waiting_stops() else e1
            scratch = self.book.prepare(batch, e, stop_at)
            nxt, n_fills, failed = _match.run(
                *self.book.kernel_arrays(), batch.kinds, batch.ends, batch.side, batch.px, batch.sz, e, stop_at,
                self.book.tolerance, scratch, *tab.arrays(), qm.kind, qm.n, *tab.outputs(), self._kstate,
            )  # fmt: skip
            self.book.settle()
            if self.used.taken:
                self._refresh_consumed(batch, e, nxt if failed < 0 else failed)
            if failed >= 0:
                self.book.raise_crossed(batch, failed)
            self.now = max(self.now, int(batch.ts[e:nxt].max()))  # feeds interleave two clocks (E and T)
            if self._kstate[0] >= 0:
                self.last_trade = int(self._kstate[0])
            for i in range(n_fills):
                key = tab.keys[int(tab.f_slot[i])]
                assert key is not None
                w = self.orders[key]
                why = _WHY[int(tab.f_why[i])]
                model = f"queue {qm!r}" if why == "queue" else why
                self._fill(w, [Take(int(tab.px[tab.f_slot[i]]), int(tab.f_qty[i]))], Liquidity.MAKER, out, model)
            if batch.kinds[nxt - 1] == TRADE_KIND and self._has_waiting_stops():
                self._stops_on_trade(int(batch.px[batch.ends[nxt - 1] - 1]), out)
            e = nxt
            if n_fills:
                break
        return e

    def _refresh_consumed(self, batch: UpdateBatch, e0: int, e1: int) -> None:
        """The feed restated levels in events e0:e1: what we took there is displayed anew."""
        for e in range(e0, e1):
            kind = batch.kinds[e]
            if kind == TRADE_KIND:
                continue
            if kind == SNAPSHOT_KIND:
                self.used.clear()
                continue
            u0 = int(batch.ends[e - 1]) if e else 0
            for u in range(u0, int(batch.ends[e])):
                self.used.refresh(Side.BUY if batch.side[u] > 0 else Side.SELL, (int(batch.px[u]),))

    def _has_waiting_stops(self) -> bool:
        return any(self._is_waiting_stop(w) for w in self._live.values())

    def _stops_on_trade(self, price: int, out: list[ev.ExecEvent]) -> None:
        """A print at ``price``: trailing stops follow it, and stops it reaches trigger."""
        for _, w in list(self._open()):
            if self._is_waiting_stop(w):
                if w.order.order_type is OrderType.TRAILING_STOP:
                    self._follow_trail(w, price)  # also arms a trailing stop entered before any print
                if w.stop is not None and self._stop_hit(w, price):
                    self._trigger(w, out)
                    self._work(w, out)

    def _on_l3(self, e: Event, out: list[ev.ExecEvent]) -> None:
        assert self.l3 is not None
        executed: OrderExecuted | None = e if isinstance(e, OrderExecuted) else None
        reached: dict[tuple[str, str], int] = {}
        if executed is not None:
            # Before the book changes: would this execution reach one of our orders at its price?
            for key, w in self._resting():
                if w.l3_ahead is not None and w.resting_price == executed.price and w.order.side is executed.side:
                    ahead = sum(w.l3_ahead.values())
                    reached[key] = max(0, executed.size - ahead)
        # An id the book never saw is part of the anonymous liquidity (resting before the data
        # began); a known id not in our ahead-set joined behind us and cannot move us forward.
        unseen = isinstance(e, OrderExecuted | OrderCancelled | OrderDeleted) and e.order_id not in self.l3
        if self.l3.apply(e):
            window = self.config.l3_window
            if window is not None:
                self.l3.truncate(window)  # a depth-limited feed knows nothing beyond its window
            self._sync_l2_from_l3()
        if isinstance(e, OrderExecuted | OrderCancelled | OrderDeleted):
            for _, w in self._resting():
                if w.l3_ahead is not None and w.resting_price == e.price and w.order.side is e.side:
                    self._drain_l3(w, e, unseen)
        if isinstance(e, BookSnapshot | BookDelta):
            for _, w in self._resting():
                if w.l3_ahead is not None and w.resting_price is not None:
                    anon = self.l3.anonymous_at(w.order.side, w.resting_price)
                    w.l3_ahead[0] = min(w.l3_ahead.get(0, 0), anon)
        for key, extra in reached.items():
            w = self.orders[key]
            if extra and w.state.status.is_open:
                self._fill(w, [Take(w.resting_price or 0, min(extra, w.state.leaves))], Liquidity.MAKER, out, "L3 FIFO")
        for _, w in self._resting():
            if w.l3_ahead is None and w.resting_price is not None:
                self._join_l3(w)
        self._fill_crossed_resting(out)

    def _on_bar(self, bar: Bar, out: list[ev.ExecEvent]) -> None:
        model = self.config.bar_model
        self._bar_used = 0
        for _, w in list(self._open()):
            if w.order.ts > bar.ts:
                continue  # no look-ahead: an order fills on bars that start at or after its arrival
            if self._is_waiting_stop(w):
                buy = w.order.side is Side.BUY
                if w.order.order_type is OrderType.TRAILING_STOP:
                    self._follow_trail(w, bar.low if buy else bar.high)
                if w.stop is None or not (bar.high >= w.stop if buy else bar.low <= w.stop):
                    continue
                self._trigger(w, out)
            # The participation cap is per bar and shared by every order on the instrument.
            fill = model.fill(w.order.side, w.state.leaves, self._bar_limit(w), bar, self.instrument, self._bar_used)
            if fill is not None and fill.quantity_lots > 0:
                self._bar_used += fill.quantity_lots
                if w.arrival_mid2 == 0:
                    w.arrival_mid2 = 2 * bar.open
                self._fill(w, [Take(fill.price_ticks, fill.quantity_lots)], Liquidity.TAKER, out, fill.model)
                if w.order.tif in (TimeInForce.IOC, TimeInForce.FOK) and w.state.status.is_open:
                    self._close(w, OrderStatus.CANCELLED, f"{w.order.tif.upper()}: rest not fillable in this bar", out)
        self.last_bar = bar
        self.last_trade = bar.close

    # ------------------------------------------------------------------ matching
    def _work(self, w: _Working, out: list[ev.ExecEvent]) -> None:
        """Match a newly active order (new, replaced or triggered) against the book now."""
        if self.realism is Realism.BARS:
            if w.order.tif in (TimeInForce.IOC, TimeInForce.FOK) and self.last_bar is None:
                self._close(w, OrderStatus.CANCELLED, "no bar to fill against", out)
            return  # fills happen on the next bar (no look-ahead)
        o = w.order
        limit = self._effective_limit(w)
        if w.arrival_mid2 == 0:
            w.arrival_mid2 = self._mid2()
        if o.tif is TimeInForce.FOK and self._fillable(o.side, w.state.leaves, limit) < w.state.leaves:
            self._close(w, OrderStatus.CANCELLED, "FOK: the book cannot fill it in full", out)
            return
        if self._marketable(o.side, limit):
            # A reduce-only order takes no more than the position it reduces.
            wanted = min(w.state.leaves, abs(self.position(o.account))) if o.reduce_only else w.state.leaves
            takes = self._takes(o.side, wanted, limit)
            if takes:
                resting = Side.SELL if o.side is Side.BUY else Side.BUY
                self.used.record(resting, takes)
                self._fill(w, takes, Liquidity.TAKER, out, f"{self.realism} sweep")
            if self.realism is Realism.L1 and w.state.status.is_open:
                self._impact_remainder(w, limit, out)
        if not w.state.status.is_open:
            return
        rests = o.order_type is OrderType.LIMIT or (o.order_type is OrderType.STOP_LIMIT and w.state.triggered)
        if o.tif in (TimeInForce.IOC, TimeInForce.FOK) or not rests:
            why = "IOC: rest cancelled" if o.tif is TimeInForce.IOC else self._unfilled_reason(w)
            self._close(w, OrderStatus.CANCELLED, why, out)
            return
        self._rest(w)

    def _rest(self, w: _Working) -> None:
        price = w.resting_price
        assert price is not None
        if self.realism is Realism.L3:
            self._join_l3(w)
        else:
            self._join_queue(w, price)

    def _join_queue(self, w: _Working, price: int) -> None:
        pos = self.config.queue_model.on_join(self.book.size_at(w.order.side, price), w.state.leaves)
        o = w.order
        w.slot = self._table.add((o.account, o.client_order_id), o.side, price, w.state.leaves, pos.front)
        w.queue_at_entry = round(pos.front)

    def _forget(self, w: _Working) -> None:
        """A terminal order leaves the live set (it stays in ``orders`` for the record)."""
        if self._live.pop((w.order.account, w.order.client_order_id), None) is not None:
            self._n_expiring -= w.order.tif in _EXPIRING

    def _sync_slot(self, w: _Working) -> None:
        """Keep the resting-order table in step with the order's state after a change."""
        if w.slot is None:
            return
        if w.state.status.is_open and w.resting_price is not None:
            self._table.leaves[w.slot] = w.state.leaves
        else:
            self._table.free(w.slot)
            w.slot = None

    def _join_l3(self, w: _Working) -> None:
        assert self.l3 is not None and w.resting_price is not None
        price, side = w.resting_price, w.order.side
        ahead = {oid: size for oid, size in self.l3.queue(side, price)}
        ahead[0] = self.l3.anonymous_at(side, price)
        w.l3_ahead = ahead
        w.queue_at_entry = sum(ahead.values())

    def _drain_l3(self, w: _Working, e: OrderExecuted | OrderCancelled | OrderDeleted, unseen: bool) -> None:
        assert w.l3_ahead is not None
        if e.order_id not in w.l3_ahead and not unseen:
            return  # an order behind us
        oid = e.order_id if e.order_id in w.l3_ahead else 0
        left = w.l3_ahead.get(oid, 0) - e.size
        if isinstance(e, OrderDeleted) or left <= 0:
            w.l3_ahead.pop(oid, None) if oid else w.l3_ahead.__setitem__(0, max(left, 0))
        else:
            w.l3_ahead[oid] = left

    def _sync_l2_from_l3(self) -> None:
        assert self.l3 is not None
        top = self.l3.top(64)
        self.book.apply(BookSnapshot(self.now, self.now, self.symbol, 0, top.bid_px.tolist(), top.bid_sz.tolist(),
                                     top.ask_px.tolist(), top.ask_sz.tolist()))  # fmt: skip

    def _takes(self, side: Side, quantity: int, limit: int | None) -> list[Take]:
        opposite = Side.SELL if side is Side.BUY else Side.BUY
        px, sz = self.book.levels(opposite)
        bound = self._protection_bound(side)
        if bound is not None:
            limit = bound if limit is None else (min(limit, bound) if side is Side.BUY else max(limit, bound))
        if self.realism is Realism.L1:
            px, sz = px[:1], sz[:1]
        return walk(zip(px.tolist(), sz.tolist(), strict=True), quantity, limit=limit, used=self.used, side=side)

    def _fillable(self, side: Side, quantity: int, limit: int | None) -> int:
        return sum(t.quantity for t in self._takes(side, quantity, limit))

    def _impact_remainder(self, w: _Working, limit: int | None, out: list[ev.ExecEvent]) -> None:
        """L1: what the displayed size could not fill fills at the square-root impact price."""
        ref = self.book.best_ask() if w.order.side is Side.BUY else self.book.best_bid()
        if ref is None:
            return
        price = self.config.impact.impact_price(
            w.order.side, w.state.leaves, ref[0], self.config.daily_vol, self.config.adv, self.instrument
        )
        if limit is not None and (price > limit if w.order.side is Side.BUY else price < limit):
            return
        bound = self._protection_bound(w.order.side)
        if bound is not None and (price > bound if w.order.side is Side.BUY else price < bound):
            return
        self._fill(w, [Take(price, w.state.leaves)], Liquidity.TAKER, out, f"L1 remainder {self.config.impact!r}")

    def _fill_traded_through(self, price: int, out: list[ev.ExecEvent]) -> None:
        """A print beyond a resting order's price (e.g. a hidden execution below our bid) would
        have reached it first: fill it at its own price."""
        for _, w in list(self._resting()):
            p = w.resting_price
            if p is not None and w.state.status.is_open and (price < p if w.order.side is Side.BUY else price > p):
                self._fill(w, [Take(p, w.state.leaves)], Liquidity.MAKER, out, "trade through")

    def _fill_crossed_resting(self, out: list[ev.ExecEvent]) -> None:
        """A resting order the opposite best has crossed would have traded: fill it at its price."""
        bid, ask = self.book.best_bid(), self.book.best_ask()
        for _, w in list(self._resting()):
            price = w.resting_price
            if price is None or not w.state.status.is_open:
                continue
            if w.order.side is Side.BUY:
                crossed = ask is not None and ask[0] <= price
            else:
                crossed = bid is not None and bid[0] >= price
            if crossed:
                self._fill(w, [Take(price, w.state.leaves)], Liquidity.MAKER, out, "market crossed the order")

    def _fill(self, w: _Working, takes: list[Take], liq: Liquidity, out: list[ev.ExecEvent], model: str) -> None:
        o = w.order
        inst = self.instrument
        for take in takes:
            qty = min(take.quantity, w.state.leaves)
            if o.reduce_only:
                qty = min(qty, abs(self.position(o.account)))
            if qty <= 0:
                break
            ctx = FillContext(inst, o.side, qty, take.price, liq, w.state.filled, w.fees, w.notional)
            fee = self.config.fees.fee(ctx)
            w.state = w.state.fill(qty, take.price)
            w.fees += fee
            w.notional += ctx.notional  # the fee models' running order value (inverse-aware)
            self.positions[o.account] = self.position(o.account) + (qty if o.side is Side.BUY else -qty)
            self._fill_seq += 1
            if w.state.status is OrderStatus.FILLED:
                self._forget(w)
            mid2 = w.arrival_mid2
            slip = float(int(o.side) * (2 * take.price - mid2) / mid2 * 1e4) if mid2 > 0 else 0.0
            queue = w.queue_at_entry if liq is Liquidity.MAKER else None
            out.append(ev.OrderFilled(
                self.now, o.account, o.client_order_id, o.symbol, f"{self.symbol}-f{self._fill_seq}", o.side,
                take.price, qty, w.state.leaves, liq, fee, mid2, slip, model, queue,
            ))  # fmt: skip
        self._sync_slot(w)
        if o.reduce_only and w.state.status.is_open and self.position(o.account) == 0:
            self._close(w, OrderStatus.CANCELLED, "reduce-only: the position is closed", out)

    def _close(self, w: _Working, status: OrderStatus, reason: str, out: list[ev.ExecEvent]) -> None:
        leaves = w.state.leaves
        w.state = w.state.to(status, reason)
        o = w.order
        self._forget(w)
        self._sync_slot(w)
        if status is OrderStatus.EXPIRED:
            out.append(ev.OrderExpired(self.now, o.account, o.client_order_id, o.symbol, leaves))
        else:
            out.append(ev.OrderCancelled(self.now, o.account, o.client_order_id, o.symbol, leaves, reason))

    def tick(self, ts: int) -> list[ev.ExecEvent]:
        """Simulated time reaches ``ts`` with no event: orders due to expire by then expire."""
        self.now = max(self.now, ts)
        out: list[ev.ExecEvent] = []
        self._expire(out)
        return out

    def next_deadline(self) -> int | None:
        """The earliest time an open DAY/GTD order expires (None if none will): a batch
        caller must not run market data past it without stepping the engine there."""
        if not self._n_expiring:
            return None
        ends = [e for w in self._live.values() if w.order.tif in _EXPIRING and (e := self._end_of(w)) is not None]
        return min(ends) if ends else None

    def _end_of(self, w: _Working) -> int | None:
        o = w.order
        if o.tif is TimeInForce.GTD:
            return o.expire_ts
        return self._day_end(w) if o.tif is TimeInForce.DAY else None

    def _expire(self, out: list[ev.ExecEvent]) -> None:
        if not self._n_expiring:
            return
        for _, w in list(self._open()):
            end = self._end_of(w)
            if end is not None and self.now >= end:
                self._close(w, OrderStatus.EXPIRED, "", out)

    # ------------------------------------------------------------------ stops
    def _is_waiting_stop(self, w: _Working) -> bool:
        return w.order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP) and not (
            w.state.triggered
        )

    def _stop_hit(self, w: _Working, price: int) -> bool:
        assert w.stop is not None
        return price >= w.stop if w.order.side is Side.BUY else price <= w.stop

    def _trigger(self, w: _Working, out: list[ev.ExecEvent]) -> None:
        assert w.stop is not None
        w.state = replace(w.state, triggered=True)
        w.arrival_mid2 = self._mid2()
        o = w.order
        out.append(ev.OrderTriggered(self.now, o.account, o.client_order_id, o.symbol, w.stop))

    def _follow_trail(self, w: _Working, price: int) -> None:
        better = w.trail_ref is None or (price < w.trail_ref if w.order.side is Side.BUY else price > w.trail_ref)
        if better:
            w.trail_ref = price
            w.stop = self._trail_stop(w)

    def _trail_stop(self, w: _Working) -> int:
        """Stop = best price since acceptance ∓ the trail; a percentage trail rounds away from the market."""
        ref, o = w.trail_ref, w.order
        assert ref is not None
        sign = 1 if o.side is Side.BUY else -1
        if o.trail_ticks is not None:
            return ref + sign * o.trail_ticks
        assert o.trail_bps is not None
        num = ref * (10_000 + sign * o.trail_bps)
        return -((-num) // 10_000) if sign > 0 else num // 10_000

    # ------------------------------------------------------------------ helpers
    def _open(self) -> list[tuple[tuple[str, str], _Working]]:
        return list(self._live.items())

    def _resting(self) -> list[tuple[tuple[str, str], _Working]]:
        return [(k, w) for k, w in self._open() if w.resting_price is not None and not self._is_waiting_stop(w)]

    def _effective_limit(self, w: _Working) -> int | None:
        o = w.order
        return o.limit_price if o.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None

    def _bar_limit(self, w: _Working) -> int | None:
        return self._effective_limit(w)

    def _marketable(self, side: Side, limit: int | None) -> bool:
        bid, bid_sz, ask, ask_sz = self.book.touch()
        if side is Side.BUY:
            return ask_sz > 0 and (limit is None or ask <= limit)
        return bid_sz > 0 and (limit is None or bid >= limit)

    def _protection_bound(self, side: Side) -> int | None:
        """The furthest price a marketable order may reach: touch ± ticks, or touch ± ⌊touch·bps / 10⁴⌋."""
        bps, ticks = self.config.price_protection_bps, self.config.price_protection_ticks
        touch = self.book.best_ask() if side is Side.BUY else self.book.best_bid()
        if touch is None:
            return None
        if ticks is not None:
            reach = ticks
        elif bps is not None:  # rounded toward the touch: protection never lets an order trade further than stated
            reach = (touch[0] * bps) // 10_000
        else:
            return None
        return touch[0] + reach if side is Side.BUY else touch[0] - reach

    def _unfilled_reason(self, w: _Working) -> str:
        if self._protection_bound(w.order.side) is not None:
            ticks = self.config.price_protection_ticks
            bps = self.config.price_protection_bps
            within = f"{bps} bps" if ticks is None else f"{ticks} tick{'s' * (ticks != 1)}"
            return f"market order: no more liquidity within {within} of the touch"
        return "market order: no liquidity left to fill it"

    def _mid2(self) -> int:
        return self.book.mid2() or (2 * self.last_trade if self.last_trade is not None else 0)

    def _day_end(self, w: _Working) -> int | None:
        # Always-open venues have no close: a DAY order there behaves as GTC.
        return self.instrument.hours.session_close(w.order.ts)


__all__ = ["EngineConfig", "ExecutionEngine", "InvalidTransition", "Realism"]
