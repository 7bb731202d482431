"""Replay a recorded feed through the execution engine with a strategy: ``vt.replay(...)``.

The runner is the deterministic execution worker's single-process form (DESIGN.md §4). It
merges three clocks into ONE sequence of inputs for the engine:

- market data reaches the exchange at its event time ``ts``, and the strategy at
  ``ts + feed latency``, in the feed's order (the strategy keeps its own, delayed copy of
  the book; at L3 it is rebuilt from the order events by the engine's rules: an order-by-order
  book cut to the feed's visible window, e.g. a LOBSTER file's level count);
- a strategy's command reaches the exchange at ``now + entry latency``;
- the exchange's answers (accepts, fills, cancels) reach the strategy ``response latency`` later.

The exchange's side of the merge is the venue step (:class:`vtrade.execution.venue.Venue`,
the rule the live market and the execution worker follow too): market data, then expiring
orders, then commands at one nanosecond. What the strategy sees and does comes after the
exchange at the same nanosecond, by a fixed rank (market data reaching it, then the
exchange's answers, then its timer), then by arrival order, so the merge never depends on
anything but the inputs, and ``result.output_hash()`` is the same on every run.

>>> import vtrade as vt
>>> def quote_both_sides(ctx):
...     ctx.cancel_all()
...     bid, ask = ctx.book.best_bid(), ctx.book.best_ask()
...     if bid and ask:
...         ctx.buy(1, price=bid[0] - 1, post_only=True)
...         ctx.sell(1, price=ask[0] + 1, post_only=True)
>>> result = vt.replay("data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz",
...                    strategy=quote_both_sides, every="100ms", realism="L2", latency="1ms")
>>> len(result.fills) > 0, list(result.fills.columns) == list(vt.schema.FILLS)
(True, True)
>>> sorted(set(result.fills.side)), str(result.fills.ts.dtype)
(['buy', 'sell'], 'datetime64[ns, UTC]')
"""

from __future__ import annotations

import functools
import gc
import hashlib
import heapq
import inspect
import itertools
import re
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec
import numpy as np
import pandas as pd
from tqdm import tqdm

from vtrade.core.events import Bar, BookDelta, BookSnapshot, Event, MarketEvent, Quote, Side, Trade, encode
from vtrade.core.instruments import Instrument
from vtrade.core.numbers import Number
from vtrade.core.rng import seeded_rng
from vtrade.execution import corporate_actions as ca
from vtrade.execution import events as ev
from vtrade.execution.accounts import AccountKind, MarginPolicy, MarketStatus, SessionLimits
from vtrade.execution.broker import Broker
from vtrade.execution.engine import EngineConfig, ExecutionEngine, Realism
from vtrade.execution.fees import FeeModel, NoFees
from vtrade.execution.knobs import account_kind as account_kind_of
from vtrade.execution.knobs import cash_amount
from vtrade.execution.latency import ConstantLatency, LatencyModel
from vtrade.execution.orders import CancelOrder, OrderType, ReplaceOrder, SubmitOrder, TimeInForce
from vtrade.execution.queue import QueueModel, queue_model
from vtrade.execution.tables import OrderRecord, fills_frame, orders_frame
from vtrade.execution.venue import Venue
from vtrade.market._l2kernels import TRADE as TRADE_KIND
from vtrade.market.feeds import Feed, open_feed
from vtrade.market.l2book import L2Book, UpdateBatch, quote_snapshot
from vtrade.market.l3book import L3Book
from vtrade.portfolio.corporate_actions import CorporateAction, FactorRow
from vtrade.runtime import replay_fast

#: A silence in the feed longer than this (and nothing in flight) is a break between
#: recordings: the strategy timer skips it (see ``_Runner._next_tick``).
RECORDING_BREAK = 5 * 24 * 3600 * 1_000_000_000
# Ranks break ties between the strategy's items at equal timestamps (lower first); the
# venue's inputs at a timestamp (market data, expiries, commands) all go before them.
_VIEW, _NOTICE, _TIMER = range(3)
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "min": 60_000_000_000,
          "h": 3_600_000_000_000, "d": 86_400_000_000_000}


def parse_duration(value: str | int | float) -> int:
    """Nanoseconds in ``"100ms"``, ``"1.5s"``, ``"250us"``, ``"5min"``, ``"1h"``, ``"1d"`` or a plain int of ns.

    >>> parse_duration("100ms"), parse_duration("1.5s"), parse_duration(0), parse_duration("1d") // 10**9
    (100000000, 1500000000, 0, 86400)
    """
    if isinstance(value, bool):
        raise ValueError("a duration cannot be a bool")
    if isinstance(value, int | float):
        if not value >= 0:
            raise ValueError(f"a duration must be >= 0 ns, got {value}")
        return int(value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|min|h|d)\s*", value)
    if m is None:
        raise ValueError(f"not a duration: {value!r} (use e.g. '100ms', '1s', '250us', '1h', '1d')")
    return int(Decimal(m[1]) * _UNITS[m[2]])


class Strategy(Protocol):
    """A strategy is any callable taking the context; it runs every ``every`` of simulated time.

    Objects may also define ``on_fill(ctx, fill)`` and ``on_market(ctx, event)``.
    """

    def __call__(self, ctx: Context) -> None: ...


@dataclass
class Context:
    """What a strategy sees (its own, feed-delayed view) and the orders it can send."""

    instrument: Instrument
    account: str
    book: L2Book
    now: int = 0
    position: int = 0
    last_trade: int | None = None
    open_orders: dict[str, SubmitOrder] = field(default_factory=dict)
    _send: Callable[[Event], None] = field(default=lambda e: None, repr=False)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)
    _seed: int = field(default=0, repr=False)
    _broker: Broker | None = field(default=None, repr=False)
    _rngs: dict[str, np.random.Generator] = field(default_factory=dict, repr=False)
    _first_mid2: int | None = field(default=None, repr=False)

    def buy(self, quantity: int, price: int | None = None, **kw: Any) -> str:
        """Send a buy of ``quantity`` lots; a limit order at ``price`` ticks, else a market order."""
        return self._order(Side.BUY, quantity, price, **kw)

    def sell(self, quantity: int, price: int | None = None, **kw: Any) -> str:
        """Send a sell of ``quantity`` lots; a limit order at ``price`` ticks, else a market order."""
        return self._order(Side.SELL, quantity, price, **kw)

    def cancel(self, client_order_id: str) -> None:
        self._send(CancelOrder(self.now, self.account, client_order_id, self.instrument.symbol))

    def cancel_all(self) -> None:
        for coid in list(self.open_orders):
            self.cancel(coid)

    def replace(self, client_order_id: str, *, quantity: int | None = None, price: int | None = None) -> None:
        self._send(ReplaceOrder(self.now, self.account, client_order_id, self.instrument.symbol, quantity, price))

    def submit(self, order: SubmitOrder) -> str:
        """Send a fully specified order (its ``ts`` is set to now)."""
        if order.ts != self.now:
            order = msgspec.structs.replace(order, ts=self.now)
        self.open_orders[order.client_order_id] = order
        self._send(order)
        return order.client_order_id

    # -- the participants' Desk (vtrade.market.participants): a desk of one symbol ----------
    def symbols(self) -> list[str]:
        """The symbols this context trades: the replayed instrument's."""
        return [self.instrument.symbol]

    def instrument_for(self, symbol: str) -> Instrument:
        self._only(symbol)
        return self.instrument

    def quote(self, symbol: str) -> tuple[int, int] | None:
        """Best bid and ask in ticks of the strategy's view (None without a two-sided book)."""
        self._only(symbol)
        bid, bid_sz, ask, ask_sz = self.book.touch()
        return (bid, ask) if bid_sz and ask_sz else None

    def change(self, symbol: str) -> float | None:
        """The mid's fractional move since the first mid this context was asked about."""
        q = self.quote(symbol)
        if q is None:
            return None
        mid2 = q[0] + q[1]
        if self._first_mid2 is None:
            self._first_mid2 = mid2
        return mid2 / self._first_mid2 - 1 if self._first_mid2 else None

    def holding(self, symbol: str) -> int:
        self._only(symbol)
        return self.position

    def working(self, symbol: str | None = None) -> list[SubmitOrder]:
        if symbol is not None:
            self._only(symbol)
        return list(self.open_orders.values())

    def capital(self) -> Decimal | None:
        """The account's opening cash (None: a replay without ``cash``, no account limits)."""
        return None if self._broker is None else self._broker.initial_cash

    def cash(self) -> Decimal | None:
        return None if self._broker is None else self._broker.cash

    def rng(self, symbol: str) -> np.random.Generator:
        """This account's Generator for ``symbol``, seeded from (replay seed, account, symbol)."""
        gen = self._rngs.get(symbol)
        if gen is None:
            gen = self._rngs[symbol] = seeded_rng(self._seed, f"{self.account}/{symbol}")
        return gen

    def place(self, symbol: str, side: Side, lots: int, price: int | None = None, *,
              tif: TimeInForce = TimeInForce.DAY, post_only: bool = False) -> str:  # fmt: skip
        """Send an order for ``symbol`` (a limit at ``price`` ticks, else a market order)."""
        self._only(symbol)
        return self._order(side, lots, price, tif=tif, post_only=post_only)

    def _only(self, symbol: str) -> None:
        if symbol != self.instrument.symbol:
            raise ValueError(f"this replay trades {self.instrument.symbol}, not {symbol}")

    def _order(self, side: Side, quantity: int, price: int | None, **kw: Any) -> str:
        coid = kw.pop("client_order_id", None) or f"{self.account}-{next(self._ids)}"
        otype = kw.pop("order_type", OrderType.MARKET if price is None else OrderType.LIMIT)
        tif = kw.pop("tif", TimeInForce.GTC)
        order = SubmitOrder(
            self.now, self.account, coid, self.instrument.symbol, side, OrderType(otype), quantity,
            limit_price=price, tif=TimeInForce(tif), **kw,
        )  # fmt: skip
        return self.submit(order)


class ReplayResult:
    """Orders, fills (with receipts) and book samples of a replay, as DataFrames.

    Each of ``orders``, ``fills``, ``book`` and ``events`` may be given as its value or as a
    function that builds it: the replay records into arrays and lists in its loop and builds
    a table only when it is first read (most sweeps only look at a summary or a hash).
    ``path`` says which engine ran: ``"compiled"`` (one Numba loop over a compiled strategy,
    our orders and both books) or ``"python"`` (the reference engine); ``path_note`` why a
    compiled strategy ran on the Python engine.
    """

    def __init__(
        self,
        orders: pd.DataFrame | Callable[[], pd.DataFrame],
        fills: pd.DataFrame | Callable[[], pd.DataFrame],
        book: pd.DataFrame | Callable[[], pd.DataFrame],
        events: list[ev.ExecEvent] | Callable[[], list[ev.ExecEvent]],
        inputs: int,
        market_events: int,
        instrument: Instrument,
        corporate_actions: tuple[CorporateAction, ...] = (),
        warnings: tuple[str, ...] = (),
        *,
        path: str = "python",
        path_note: str | None = None,
    ) -> None:
        self._parts: dict[str, Any] = {"orders": orders, "fills": fills, "book": book, "events": events}
        self.inputs = inputs
        self.market_events = market_events
        self.instrument = instrument
        #: Splits and dividends that took effect during the run (see ``corporate_actions=``).
        self.corporate_actions = corporate_actions
        #: Warnings about the data, e.g. raw prices with no factor data to adjust them.
        self.warnings = warnings
        self.path = path
        self.path_note = path_note

    def _part(self, name: str) -> Any:
        value = self._parts[name]
        if callable(value):
            value = self._parts[name] = value()
        return value

    @property
    def orders(self) -> pd.DataFrame:
        """The orders table (``vt.schema.ORDERS``)."""
        return self._part("orders")

    @property
    def fills(self) -> pd.DataFrame:
        """The fills table (``vt.schema.FILLS``), with receipts."""
        return self._part("fills")

    @property
    def book(self) -> pd.DataFrame:
        """The exchange's top of book and last trade at each strategy call."""
        return self._part("book")

    @property
    def events(self) -> list[ev.ExecEvent]:
        """The exchange's output events, in order."""
        return self._part("events")

    def with_notes(self, corporate_actions: tuple[CorporateAction, ...], warnings: tuple[str, ...]) -> ReplayResult:
        """This result with the corporate actions applied and the data warnings attached."""
        out = ReplayResult(self._parts["orders"], self._parts["fills"], self._parts["book"], self._parts["events"],
                           self.inputs, self.market_events, self.instrument, corporate_actions, warnings,
                           path=self.path, path_note=self.path_note)  # fmt: skip
        out._parts = self._parts  # share what either builds
        return out

    def __repr__(self) -> str:
        return (f"ReplayResult({self.instrument.symbol}, path={self.path!r}, inputs={self.inputs}, "
                f"market_events={self.market_events})")  # fmt: skip

    def output_hash(self) -> str:
        """SHA-256 of the encoded output events: equal hashes mean byte-identical runs."""
        h = hashlib.sha256()
        for e in self.events:
            h.update(encode(e))
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        """Fills, traded volume, VWAP shortfall vs arrival mid, fees and P&L (marked at the last mid).

        Money (``fees``, ``pnl``) is in the instrument's ``currency``; ``volume`` and ``position``
        in its units (shares, coins, contracts). For an inverse contract (COIN-M, settled in the
        coin) a long position gains ``contracts x contract_size x (1/entry - 1/exit)`` coins:
        the coin value of each fill is :meth:`Instrument.notional`, and it moves against price.
        """
        f = self.fills
        inst = self.instrument
        if f.empty:
            nan = float("nan")
            return {"fills": 0, "volume": 0.0, "position": 0.0, "position_lots": 0, "vwap_shortfall_bps": nan,
                    "fees": 0.0, "pnl": 0.0, "maker_share": nan, "currency": inst.currency}  # fmt: skip
        ca_lots, ca_cash = _corporate_action_totals(self.events)  # splits' new shares, dividends, cash in lieu
        sign = np.where(f.side == "buy", 1, -1)
        flows = (inst.notional(f.price, f.quantity) * sign).sum()  # signed value bought
        position = float((f.quantity * sign).sum()) + inst.size_grid.to_float(ca_lots)
        held = inst.notional(self._mark(float(f.price.iloc[-1])), position)  # the position's value at the mark
        # Linear: P&L = value held - value paid. Inverse: a contract's coin value falls as the
        # price rises, so a long gains what it paid in coin minus what it is worth now.
        pnl = (flows - f.fee.sum() - held) if inst.inverse else (-flows - f.fee.sum() + held)
        pnl += ca_cash
        weights = f.quantity / f.quantity.sum()
        return {
            "fills": len(f),
            "volume": float(f.quantity.sum()),
            "position": position,
            "position_lots": int((f.quantity_lots * sign).sum()) + ca_lots,
            "vwap_shortfall_bps": float((f.slippage_bps * weights).sum()),
            "fees": float(f.fee.sum()),
            "pnl": float(pnl),
            "maker_share": float((f.liquidity == "maker").mean()),
            "currency": inst.currency,
        }

    def corporate_actions_note(self) -> str | None:
        """One line on corporate actions: what was applied, or why raw data could not be adjusted
        (None when there is nothing to say).

        ``'AAPL: 7:1 split on 2014-06-09 applied (position 100 -> 700); 1 dividend credited (94.00 USD)'``
        """
        if self.warnings:
            return self.warnings[0]
        if not self.corporate_actions:
            return None
        applied = [e for e in self.events if isinstance(e, ev.CorporateActionApplied)]
        parts = []
        for a in self.corporate_actions:
            if a.kind.value != "split":
                continue
            mine = [e for e in applied if e.kind == "split" and e.ex_date == a.ex_date.isoformat()]
            held = ", ".join(f"position {e.position_before} -> {e.position_after}"
                             + (f", {e.cash} {self.instrument.currency} cash in lieu" if e.cash else "")
                             for e in mine)  # fmt: skip
            parts.append(f"{ca.describe(a)} applied ({held or 'no position'})")
        dividends = [a for a in self.corporate_actions if a.kind.value == "dividend"]
        if dividends:
            paid = sum((e.cash for e in applied if e.kind == "dividend"), Decimal(0))
            n = len(dividends)
            parts.append(f"{n} dividend{'s' if n > 1 else ''} credited ({paid} {self.instrument.currency})")
        return f"{self.instrument.symbol}: " + "; ".join(parts)

    def _mark(self, fallback: float) -> float:
        """The price positions are marked at: the last mid, else the last trade (bars), else ``fallback``."""
        for column in ("mid", "last"):
            values = self.book[column].dropna() if column in self.book else None
            if values is not None and not values.empty:
                return float(values.iloc[-1])
        return fallback


def replay(
    feed: str | Path | Feed | Iterable[MarketEvent] | UpdateBatch,
    *,
    strategy: Strategy | None = None,
    every: str | int = "1s",
    realism: str | Realism = Realism.L2,
    latency: str | int | LatencyModel = 0,
    fees: FeeModel | None = None,
    queue: str | QueueModel = "risk_averse",
    instrument: Instrument | None = None,
    account: str = "you",
    cash: Number | None = None,
    account_kind: AccountKind | str = "cash",
    limits: SessionLimits | None = None,
    margin: MarginPolicy | None = None,
    seed: int = 0,
    progress: bool = False,
    corporate_actions: CorporateActionsSpec = "auto",
    symbol: str | None = None,
    tick_size: Decimal | int | str | None = None,
    lot_size: Decimal | int | str | None = None,
    contract_size: Decimal | int | str | None = None,
    **engine_options: Any,
) -> ReplayResult:
    """Replay ``feed`` through the execution engine with ``strategy``; see the module docstring.

    ``feed`` is a path (any format :func:`vtrade.market.open_feed` knows), a Feed,
    events with ``instrument=`` given, or (L1/L2) an ``UpdateBatch`` built once with
    ``UpdateBatch.from_events(events, trades=True)`` to replay the same feed many times
    without converting it again (strategy time then spans the batch's events). ``latency``
    is one duration for entry, response and feed, or a :class:`LatencyModel`. The top of
    book is sampled every ``every`` (when the strategy runs). L1/L2 replays with a constant
    latency run on arrays through the engine's compiled path; others step event by event;
    both give the same events. A compiled strategy (a Numba function of a desk, see
    :mod:`vtrade.jit`) runs with the exchange in one compiled loop when the replay allows it
    (L2, constant latency, no ``cash``), else on this engine; ``result.path`` says which.

    With ``cash`` set, the account's rules apply (:mod:`vtrade.execution.broker`): every
    order is checked at entry (buying power, ``account_kind`` "cash" or "margin" with Reg T
    ``margin``, shorting, hours and halts, class ``limits``) and a refused order never
    reaches the exchange; a margin account in a call is liquidated, checked every ``every``.
    Without ``cash`` nothing limits the account (a research replay, as in hftbacktest).
    ``queue``, ``cash`` and ``account_kind`` take the same values as everywhere else
    (:mod:`vtrade.execution.knobs`): ``queue`` a name (``"risk_averse"``, ``"prob"``) or a
    :class:`~vtrade.execution.queue.QueueModel`.

    ``result.orders`` and ``result.fills`` are the public tables (:mod:`vtrade.execution.tables`,
    ``vt.schema``): ``side`` ``'buy'``/``'sell'``, UTC times, dollars and units with the exact
    ticks and lots beside them, oldest first.

    ``corporate_actions``: splits and cash dividends for data that is raw as traded
    (:mod:`vtrade.execution.corporate_actions`: positions change at the first event of the
    ex-date, resting orders are cancelled at a split, dividends are credited at the ex-date).
    ``"auto"`` (default): when the feed's format is raw (:func:`vtrade.market.feeds.basis.price_basis`:
    Lean minute/second bars, ticks, Lean raw daily) use the Lean factor file
    ``lean_factor_files.csv`` found next to the feed, in ``../equities_daily/``, or in the
    project's ``data/equities_daily/``, if it has the ticker; when it has not, warn that
    splits and dividends are not applied. Adjusted data (the Kaggle daily universe), crypto and
    raw events are left alone. A path, factor rows (:func:`~vtrade.portfolio.corporate_actions.read_factor_rows`),
    a DataFrame with the factor file's columns, or a list of ``CorporateAction`` applies those
    (you say the data is raw); ``False`` applies nothing. Not applied to a pre-converted batch.

    ``symbol`` picks one ticker of a multi-ticker file;
    ``tick_size``/``lot_size``/``contract_size`` set the grid a path is read on (see
    :func:`~vtrade.market.feeds.open_feed`), e.g. sub-penny SPY bars::

        vt.replay("data/intraday/lean_minute_trade_bars.csv.gz", symbol="SPY", realism="bars", tick_size="0.0001")
    """
    source = _open_source(feed, instrument, symbol, tick_size, lot_size, contract_size)
    plan = _plan(
        source, strategy=strategy, every=every, realism=realism, latency=latency, fees=fees, queue=queue,
        instrument=instrument, account=account, cash=cash, account_kind=account_kind, limits=limits, margin=margin,
        seed=seed, corporate_actions=corporate_actions, **engine_options,
    )  # fmt: skip
    return plan.run(progress=progress)


_Source = Feed | Iterable[MarketEvent] | UpdateBatch
_Converted = tuple[UpdateBatch | None, int | None, int]  # a feed as arrays (None: not batchable), its time span
_Grid = Decimal | int | str | None


def _open_source(
    feed: str | Path | _Source, instrument: Instrument | None, symbol: str | None, tick_size: _Grid, lot_size: _Grid,
    contract_size: _Grid,
) -> _Source:  # fmt: skip
    """What :func:`replay` reads: a path opened as a Feed; anything else as it is."""
    if isinstance(feed, str | Path):
        return open_feed(feed, instrument=instrument, symbol=symbol, tick_size=tick_size, lot_size=lot_size,
                         contract_size=contract_size)  # fmt: skip
    if symbol is not None or any(v is not None for v in (tick_size, lot_size, contract_size)):
        raise ValueError("symbol=, tick_size=, lot_size=, contract_size= apply to a file path; else pass instrument=")
    return feed


@dataclass(frozen=True)
class _Compiled:
    """A compiled strategy and what the compiled loop runs it with (see :mod:`vtrade.runtime.replay_fast`)."""

    strategy: Any
    config: EngineConfig
    every: int
    latency: ConstantLatency
    account: str


@dataclass
class _Plan:
    """One replay, checked and set up, not yet run. ``compiled``: try the compiled loop first."""

    runner: _Runner
    source: _Source
    corporate_actions: CorporateActionsSpec
    compiled: _Compiled | None = None

    def run(self, *, progress: bool, converted: dict[Realism, _Converted] | None = None) -> ReplayResult:
        """Run it; ``converted`` (see ``_Runner.run``) lets runs over the same events share their arrays."""
        runner, source = self.runner, self.source
        try:
            with _cyclic_gc_paused():
                again: Iterator[MarketEvent] | None = None  # what the compiled loop read and gave back
                if self.compiled is not None:
                    c = self.compiled
                    fast = _run_compiled(source, c.strategy, c.config, c.every, c.latency, c.account,
                                         self.corporate_actions)  # fmt: skip
                    if isinstance(fast, ReplayResult):
                        return fast
                    runner.path_note = "the feed holds events the compiled loop does not replay (e.g. halts or " \
                        "corporate actions)"
                    again = fast
                if isinstance(source, UpdateBatch):
                    return runner.run_batch(source, progress=progress)
                stream, missing = _action_stream(source, runner.inst, self.corporate_actions)
                if again is not None:  # the compiled loop read part of a stream already
                    result = runner.run(again, progress=progress)
                elif stream is None:
                    return runner.run(iter(source), progress=progress, converted=converted)
                else:
                    result = runner.run(stream.wrap(source), progress=progress)  # its events are not the plain feed's
            return _with_corporate_actions(result, stream, missing, source)
        finally:
            runner.close()


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector off while a replay runs.

    A run keeps tens of thousands of objects alive until it ends (orders, their states, the
    output events), so the collector, counting them as long-lived, ran a full collection of
    the whole heap (every module's objects too) in most runs: 100-200 ms, the +-20 % warm
    replays varied by. What the run leaves as garbage is freed by reference counting once it
    ends (``_Runner.close`` breaks its one cycle), so pausing the collector loses nothing.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _plan(
    source: _Source, *, strategy: Strategy | None, every: str | int, realism: str | Realism,
    latency: str | int | LatencyModel, fees: FeeModel | None, queue: str | QueueModel, instrument: Instrument | None,
    account: str, cash: Number | None, account_kind: AccountKind | str, limits: SessionLimits | None,
    margin: MarginPolicy | None, seed: int, corporate_actions: CorporateActionsSpec, **engine_options: Any,
) -> _Plan:  # fmt: skip
    """Check every setting of one replay and build its engine, broker and runner (see :func:`replay`)."""
    if isinstance(source, Feed) and Realism(realism) is Realism.BARS:
        source = source.as_bars()  # trade prints drive the bars rung as one-print bars
    inst = instrument or (source.instrument if isinstance(source, Feed) else None)
    if inst is None:
        raise ValueError("replaying raw events needs instrument=")
    lat = latency if isinstance(latency, LatencyModel) else ConstantLatency(parse_duration(latency))
    if isinstance(source, Feed) and source.window is not None:
        engine_options.setdefault("l3_window", source.window)
    config = EngineConfig(
        inst, Realism(realism), queue_model=queue_model(queue), fees=fees or NoFees(),
        session_seed=seed, **engine_options,
    )  # fmt: skip
    broker = None
    if cash is not None:
        broker = Broker(inst, account, cash_amount(cash), account_kind_of(account_kind), limits or SessionLimits(),
                        margin or MarginPolicy(), fees)  # fmt: skip
    step = parse_duration(every)
    note = None
    compiled: _Compiled | None = None
    if replay_fast.is_compiled_strategy(strategy):
        note = replay_fast.why_not_compiled(config, lat, broker is not None)
        if note is None and isinstance(lat, ConstantLatency):
            compiled = _Compiled(strategy, config, step, lat, account)
        strategy = replay_fast.JitAdapter(strategy)  # type: ignore[arg-type]
    runner = _Runner(config, strategy, step, lat, account, broker)
    runner.path_note = note
    if isinstance(source, UpdateBatch):
        if corporate_actions not in ("auto", False, None):
            raise ValueError("corporate actions are not applied to a pre-converted UpdateBatch; replay the feed")
        if not runner.batchable():
            raise ValueError("a pre-converted batch replays at L1/L2 with a constant latency and no on_market hook")
    return _Plan(runner, source, corporate_actions, compiled)


#: What ``replay_many`` may vary from run to run: :func:`replay`'s settings and the engine options,
#: but not what decides how the feed is read, which is done once for all runs.
_READ_ONCE = ("symbol", "tick_size", "lot_size", "contract_size", "instrument")


def replay_many(
    feed: str | Path | Feed | Iterable[MarketEvent] | UpdateBatch,
    strategy: Callable[..., Any] | None = None,
    *,
    params: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
    progress: bool = False,
    **common: Any,
) -> pd.DataFrame:
    """Replay ``feed`` once per parameter set; one row of summary figures per run.

    The feed is read and parsed once, and converted to arrays once per realism, for all runs
    (the compiled kernels are shared by every run in the process anyway), so a sweep costs
    little more than the replays themselves. Each row is exactly what a separate
    :func:`replay` with those settings gives: the parameters, then :meth:`ReplayResult.summary`
    (fills, volume, position, VWAP shortfall, fees, P&L, maker share, currency), then
    ``output_hash`` (equal hashes: byte-identical runs).

    ``params`` is a list of parameter sets (dicts), or a grid: a dict of lists, run as every
    combination (the first key varies slowest). A parameter is either a keyword of
    :func:`replay` (``every``, ``latency``, ``queue``, ``realism``, ``fees``, ``seed``, ``cash``,
    engine options like ``price_protection_bps``...) or a keyword parameter of ``strategy``: a
    function ``strategy(ctx, **its_params)`` gets them bound, and a class is instantiated with
    them, a new instance per run (so its state never leaks from one run to the next). Other
    keywords (``common``) go to every run: ``realism="L2"``, ``instrument=...``, ``symbol=...``.
    An unknown parameter, an empty ``params``, or a bad value (checked for every run before
    the first starts) raises ValueError, and nothing runs.

    >>> import vtrade as vt
    >>> from vtrade.strategies import market_maker  # market_maker(ctx, offset=1, lots=1)
    >>> runs = vt.replay_many("data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz", market_maker,
    ...                       params={"offset": [1, 3], "lots": [1, 2]}, every="100ms", realism="L2", latency="1ms")
    >>> runs[["offset", "lots", "fills", "volume", "pnl"]].round({"pnl": 2})
       offset  lots  fills  volume   pnl
    0       1     1    447   0.447 -3.55
    1       1     2    447   0.894 -7.11
    2       3     1    426   0.426 -3.18
    3       3     2    426   0.852 -6.36
    """
    rows = _parameter_sets(params)
    own = _replay_keywords() - {"strategy", "progress"}  # replay_many's own arguments
    bad = sorted(set(common) - own)
    if bad:
        raise ValueError(f"replay_many got unknown keyword(s) {bad}; keywords go to every run and must be "
                         f"vt.replay's: {sorted(own)}")  # fmt: skip
    takes = _strategy_keywords(strategy)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    for key in keys:
        if key in common:
            raise ValueError(f"{key!r} is given to every run and also in params; give it in one place")
        if key == "strategy":
            raise ValueError("the strategy is replay_many's second argument; call it once per strategy to compare")
        if key in _READ_ONCE or key == "progress":
            raise ValueError(f"{key!r} cannot vary between runs (the feed is read once for all of them); "
                             "pass it to replay_many as a keyword, or call replay_many once per value")  # fmt: skip
        if key in own and takes is not None and key in takes:
            raise ValueError(f"{key!r} is both a vt.replay keyword and a parameter of the strategy; rename the "
                             "strategy's")  # fmt: skip
        if key not in own and takes is not None and key not in takes:
            theirs = f"; the strategy takes {sorted(takes)}" if takes else "; the strategy takes no parameters"
            raise ValueError(f"unknown parameter {key!r}: not a vt.replay keyword ({sorted(own - set(_READ_ONCE))})"
                             f"{theirs if strategy is not None else ''}")  # fmt: skip
    read = {k: common.pop(k, None) for k in _READ_ONCE if k != "instrument"}
    source = _parsed_once(_open_source(feed, common.get("instrument"), **read))
    settings = {name: p.default for name, p in inspect.signature(replay).parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in _READ_ONCE and name != "progress"}
    settings["instrument"] = common.pop("instrument", None)
    plans: deque[_Plan] = deque()
    for i, row in enumerate(rows):
        run = {**settings, **common, **{k: v for k, v in row.items() if k in own}}
        try:
            run["strategy"] = _bind(strategy, {k: v for k, v in row.items() if k not in own})
            plans.append(_plan(source, **run))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"parameter set {i} {row!r}: {exc}") from exc
    converted: dict[Realism, _Converted] = {}
    out = []
    for row in tqdm(rows, desc="replay_many", unit=" runs", disable=not progress):
        # Let go of each run as soon as it is summarised: kept, their events would pile up.
        result = plans.popleft().run(progress=False, converted=converted)
        out.append({**{k: row.get(k) for k in keys}, **result.summary(), "output_hash": result.output_hash()})
    return pd.DataFrame(out)


def _parameter_sets(params: Any) -> list[dict[str, Any]]:
    """``params`` as a list of dicts: a list of parameter sets as it is, a grid as every combination."""
    if isinstance(params, Mapping):
        for key, values in params.items():
            if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray | range):
                raise ValueError(f"a params grid maps each parameter to a list of values; got {key!r}: {values!r} "
                                 f"(write {{{key!r}: [{values!r}]}} for one value)")  # fmt: skip
        names = list(params)
        rows = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*params.values())]
        if not rows:
            raise ValueError(f"the params grid {dict(params)!r} has no combination (an empty list of values)")
        return rows
    if isinstance(params, str | bytes) or not isinstance(params, Sequence):
        raise ValueError(f"params must be a list of parameter sets (dicts) or a grid (a dict of lists), got {params!r}")
    if not params:
        raise ValueError("params is empty: give at least one parameter set, e.g. params=[{'every': '100ms'}]")
    for i, row in enumerate(params):
        if not isinstance(row, Mapping):
            raise ValueError(f"params[{i}] is {row!r}: each parameter set is a dict, e.g. {{'latency': '1ms'}}")
        for key in row:
            if not isinstance(key, str):
                raise ValueError(f"params[{i}] has a parameter name that is not a string: {key!r}")
    return [dict(row) for row in params]


def _replay_keywords() -> set[str]:
    """The keywords :func:`replay` takes, its engine options included."""
    named = {n for n, p in inspect.signature(replay).parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    passed = {"instrument", "realism", "queue_model", "fees", "session_seed"}  # replay sets these itself
    return named | {f.name for f in fields(EngineConfig)} - passed


def _strategy_keywords(strategy: Any) -> set[str] | None:
    """The parameters ``strategy`` can be given by keyword (beside the context); None: any."""
    if strategy is None:
        return set()
    try:
        sig = inspect.signature(strategy)
    except (TypeError, ValueError):  # a callable Python cannot introspect: it takes none we know of
        return set()
    ps = list(sig.parameters.values())
    if not isinstance(strategy, type) and ps and ps[0].kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                              inspect.Parameter.POSITIONAL_OR_KEYWORD):  # fmt: skip
        ps = ps[1:]  # the context
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in ps):
        return None
    return {p.name for p in ps if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def _bind(strategy: Callable[..., Any] | None, params: dict[str, Any]) -> Strategy | None:
    """The strategy one run calls: a class instantiated anew, a function with its parameters bound."""
    if isinstance(strategy, type):
        return strategy(**params)
    if strategy is None or not params:
        return strategy
    if not inspect.isfunction(strategy) and not inspect.ismethod(strategy):
        raise ValueError(f"strategy parameters {sorted(params)} need a function taking them as keywords, or a class "
                         f"to instantiate with them, not the object {strategy!r}")  # fmt: skip
    return functools.partial(strategy, **params)


def _parsed_once(source: _Source) -> _Source:
    """The same events, parsed now and kept, so that every run reads them from memory."""
    if isinstance(source, UpdateBatch):
        return source
    if isinstance(source, Feed):
        events = list(source)
        return replace(source, events=lambda: events)
    return list(source)


def _run_compiled(source: Feed | Iterable[MarketEvent] | UpdateBatch, strategy: Any, config: EngineConfig, every: int,
                  latency: ConstantLatency, account: str, corporate_actions: CorporateActionsSpec
                  ) -> ReplayResult | Iterator[MarketEvent] | None:  # fmt: skip
    """The compiled loop's replay of ``source``; or, when its events need the Python path, the
    feed's events again (those read so far, then the rest: a stream is read once), or None
    when nothing was read."""
    if every <= 0:
        raise ValueError("every must be a positive duration")
    inst = config.instrument
    if isinstance(source, UpdateBatch):
        if corporate_actions not in ("auto", False, None):
            raise ValueError("corporate actions are not applied to a pre-converted UpdateBatch; replay the feed")
        batch = source
        t_first = int(batch.ts.min()) if batch.n_events else None
        t_last = int(batch.ts.max()) if batch.n_events else 0
    else:
        stream, _ = _action_stream(source, inst, corporate_actions)
        if stream is not None:
            return None
        seen: list[MarketEvent] = []
        keep: list[Event] = []
        t_first, t_last = None, 0
        events = iter(source)
        for e in events:
            seen.append(e)
            t_first = e.ts if t_first is None else t_first
            t_last = max(t_last, e.ts)
            if isinstance(e, BookSnapshot | BookDelta | Trade):
                keep.append(e)
            elif not isinstance(e, Quote):  # at L2 a venue's separate top-of-book stream is not book data
                return itertools.chain(seen, events)
        batch = UpdateBatch.from_events(keep, trades=True)
    run, inputs, markets = replay_fast.run_compiled(batch, strategy, config, every, latency, account, t_first, t_last)
    return ReplayResult(run.orders_frame, run.fills_frame, lambda: _book_frame(run.book_samples(), inst), run.events,
                        inputs, markets, inst, path="compiled")  # fmt: skip


class RawDataWarning(UserWarning):
    """Raw (unadjusted) data spans several days and no factor data adjusts it."""


CorporateActionsSpec = (
    str | Path | Mapping[str, Sequence[FactorRow]] | pd.DataFrame | Sequence[CorporateAction] | Literal[False] | None
)


def _action_stream(source: Any, inst: Instrument, spec: CorporateActionsSpec
                   ) -> tuple[ca.ActionStream | None, str | None]:
    """The stream that puts corporate actions into the input (None: none apply) and, for raw
    data with no factor data for the ticker, why (the warning is given after the run, when it
    is known whether the data spans more than one day)."""
    from vtrade.market.feeds.basis import price_basis
    from vtrade.portfolio.corporate_actions import actions_between, read_factor_rows

    if spec is False or spec is None or (isinstance(spec, str) and spec.lower() == "none"):
        return None, None
    sym = inst.symbol
    if isinstance(spec, str) and spec == "auto":
        if not isinstance(source, Feed) or price_basis(source.format, source.path) != "raw":
            return None, None
        found = _factor_file_for(source.path)
        if found is None:
            return ca.ActionStream(inst, []), "no Lean factor file (lean_factor_files.csv) was found for it"
        rows: Mapping[str, Sequence[FactorRow]] = read_factor_rows(found)
        where = found.name
    elif isinstance(spec, str | Path):
        rows, where = read_factor_rows(spec), Path(spec).name
    elif isinstance(spec, pd.DataFrame):
        rows, where = _factor_rows_from_frame(spec), "the factor table given"
    elif isinstance(spec, Mapping):
        rows, where = spec, "the factor rows given"
    elif isinstance(spec, bool):  # True: not a choice (it used to fail in list(True))
        raise ValueError("corporate_actions=True is not an option: 'auto', a factor file, rows or actions, or False")
    else:
        return ca.ActionStream(inst, list(spec)), None
    if sym not in rows:
        return ca.ActionStream(inst, []), f"{where} has no factor rows for {sym}"
    return ca.ActionStream(inst, actions_between(rows, tickers=sym)), None


def _factor_file_for(feed_path: Path) -> Path | None:
    from vtrade.market.feeds.daily import EQUITIES_DIR, LEAN_FACTOR_FILE

    here = Path(feed_path).resolve().parent
    for candidate in (here / LEAN_FACTOR_FILE, here.parent / "equities_daily" / LEAN_FACTOR_FILE,
                      EQUITIES_DIR / LEAN_FACTOR_FILE):  # fmt: skip
        if candidate.is_file():
            return candidate
    return None


def _factor_rows_from_frame(df: pd.DataFrame) -> dict[str, tuple[FactorRow, ...]]:
    from vtrade.market.feeds.lean import parse_day

    out: dict[str, list[FactorRow]] = {}
    for t, d, pf, sf, ref in df[["ticker", "date", "price_factor", "split_factor", "reference_price"]].itertuples(
        index=False
    ):
        day = parse_day(d if isinstance(d, str) else pd.Timestamp(d).date())
        assert day is not None
        out.setdefault(str(t), []).append(FactorRow(day, Decimal(str(pf)), Decimal(str(sf)), Decimal(str(ref))))
    return {t: tuple(sorted(v, key=lambda r: r.day)) for t, v in out.items()}


def _with_corporate_actions(result: ReplayResult, stream: ca.ActionStream | None, missing: str | None,
                            source: Any) -> ReplayResult:
    """Attach what was applied; warn when raw multi-day data could not be adjusted."""
    if stream is None:
        return result
    notes: tuple[str, ...] = ()
    first, last = stream.first_day, stream.last_day
    if missing is not None and first is not None and last is not None and first != last:
        fmt = f" ({source.format})" if isinstance(source, Feed) else ""
        notes = (f"warning: {stream.symbol} prices are raw as traded{fmt} from {first} to {last}, but {missing}: "
                 "splits and dividends in that span are NOT applied (a split shows up as a price jump in P&L); "
                 "pass corporate_actions=FILE (CLI: --corporate-actions FILE)",)  # fmt: skip
        warnings.warn(notes[0], RawDataWarning, stacklevel=4)  # past _Plan.run and replay(_many)
    return result.with_notes(tuple(stream.taken), notes)


def _corporate_action_totals(events: list[ev.ExecEvent]) -> tuple[int, float]:
    """Lots added by splits and cash received from dividends and cash in lieu."""
    lots, cash = 0, Decimal(0)
    for e in events:
        if isinstance(e, ev.CorporateActionApplied):
            lots += e.position_after - e.position_before
            cash += e.cash
    return lots, float(cash)


def _replay_ended(command: Event) -> None:
    raise RuntimeError(f"this replay has ended: {type(command).__name__} not sent (a Context is for its own run)")


class _Runner:
    def __init__(
        self,
        config: EngineConfig,
        strategy: Strategy | None,
        every: int,
        latency: LatencyModel,
        account: str,
        broker: Broker | None = None,
    ) -> None:
        if every <= 0:
            raise ValueError("every must be a positive duration")
        self.engine = ExecutionEngine(config)
        self.venue = Venue(self.engine)  # the exchange: market data and commands merged, then stepped
        self.inst = config.instrument
        self.strategy = strategy
        self.every = every
        self.latency = latency
        self.rng = self.engine.rng
        self.heap: list[tuple[int, int, int, Any]] = []  # the strategy's side: views, notices, timer
        self.seq = itertools.count()
        l1 = config.realism is Realism.L1
        self.view = L2Book(self.inst.symbol, crossing="crossed" if l1 else "reject")
        # At L3 the strategy's view is built as the engine builds its own book: every order
        # event applied to an order-by-order book, then cut to the feed's visible window (a
        # depth-limited feed knows nothing beyond it, and its reveals only make sense against
        # the book so cut). ``view`` is its aggregate form, brought up to date lazily, just
        # before the strategy (or the broker on its behalf) looks at it.
        self._view_l3 = L3Book(self.inst.symbol) if config.realism is Realism.L3 else None
        self._view_window = config.l3_window
        self._view_stale = False
        self._view_clock = 0  # the last time market data reached the strategy: a feed arrives in order
        self.ctx = Context(self.inst, account, self.view, _send=self._send, _seed=config.session_seed, _broker=broker)
        self.outputs: list[ev.ExecEvent] = []
        self.sent: dict[str, tuple[int, SubmitOrder]] = {}  # client order id -> (entry time, order)
        self.samples: list[_Sample] = []
        self.inputs = 0
        self.market_events = 0
        self.realism = config.realism
        self.broker = broker
        # Without an on_fill hook the strategy only needs the exchange's answers before it next
        # runs: keep them in time order here instead of in the heap (constant latency keeps the
        # order), and hand them over just before each strategy call.
        self._inbox: deque[tuple[int, ev.ExecEvent]] | None = None
        if getattr(strategy, "on_fill", None) is None and isinstance(latency, ConstantLatency):
            self._inbox = deque()
        self._t_first: int | None = None
        self._t_last = 0
        self.path_note: str | None = None  # why a compiled strategy runs here (see replay_fast)

    def close(self) -> None:
        """The run is over: the context's orders no longer go anywhere. This also breaks the
        runner's one reference cycle (context -> runner), so all of it is freed as soon as the
        caller lets go, without waiting for the cyclic garbage collector."""
        self.ctx._send = _replay_ended

    def _push(self, ts: int, rank: int, item: Any) -> None:
        heapq.heappush(self.heap, (ts, rank, next(self.seq), item))

    def _send(self, command: Event) -> None:
        if self.broker is not None and isinstance(command, SubmitOrder):
            bid, bid_sz, ask, ask_sz = self.view.touch()
            market = MarketStatus.at(self.inst, self.ctx.now, halted=self.engine.halted)
            command, refused = self.broker.admit(
                command, bid=bid if bid_sz else None, ask=ask if ask_sz else None, last=self.ctx.last_trade,
                market=market,
            )  # fmt: skip
            if command.requested_quantity is not None and command.client_order_id in self.ctx.open_orders:
                self.ctx.open_orders[command.client_order_id] = command  # cut to cash: the strategy sees what works
            if refused is not None:
                o, now = command, self.ctx.now
                self.sent[o.client_order_id] = (now, o)
                no = ev.OrderRejected(now, o.account, o.client_order_id, o.symbol, refused.code, refused.reason)
                self.outputs.append(no)
                self._tell(now + self.latency.response(self.rng), no)
                return
        self._route(command)

    def _route(self, command: Event) -> None:
        # In the engine's input a command carries the time it reaches the exchange (DESIGN §4).
        arrival = self.ctx.now + self.latency.entry(self.rng)
        if isinstance(command, SubmitOrder):
            self.sent[command.client_order_id] = (self.ctx.now, command)  # entered now: the orders table's ts
        self.venue.send(msgspec.structs.replace(command, ts=arrival))  # type: ignore[arg-type]

    def run(self, events: Iterator[MarketEvent], *, progress: bool,
            converted: dict[Realism, _Converted] | None = None) -> ReplayResult:  # fmt: skip
        """Replay ``events``. ``converted`` (per realism: the feed as arrays, or None if only the
        event-by-event path can run it, and its time span) is filled by the first run of a feed
        and read by later runs of the same events, which then skip the conversion."""
        bar = tqdm(desc="replay", unit=" events", disable=not progress, mininterval=0.5)
        batch = None
        if self.batchable():
            known = converted.get(self.realism) if converted is not None else None
            if known is None:
                batch = self._batch(events)
                if converted is not None:
                    converted[self.realism] = (batch, self._t_first, self._t_last)
            elif known[0] is not None:
                batch, self._t_first, self._t_last = known
        if batch is not None:
            self._run_batched(batch, bar)
        else:
            self._run_stepwise(events, bar)
        bar.close()
        return self._result()

    def run_batch(self, batch: UpdateBatch, *, progress: bool) -> ReplayResult:
        if batch.n_events:
            self._t_first, self._t_last = int(batch.ts.min()), int(batch.ts.max())
        bar = tqdm(desc="replay", unit=" events", disable=not progress, mininterval=0.5)
        self._run_batched(batch, bar)
        bar.close()
        return self._result()

    # ------------------------------------------------------------ fast mode
    def batchable(self) -> bool:
        """L1/L2 with a constant feed latency and no per-event strategy hook run on arrays."""
        return (
            self.realism in (Realism.L1, Realism.L2)
            and isinstance(self.latency, ConstantLatency)
            and getattr(self.strategy, "on_market", None) is None
        )

    def _batch(self, events: Iterator[MarketEvent]) -> UpdateBatch | None:
        """The feed as arrays (depth + trades); None if it holds events only the slow path knows."""
        seen: list[MarketEvent] = []
        keep: list[Event] = []
        for e in events:
            seen.append(e)
            # Strategy time runs from the feed's first event to its last, whatever is kept.
            self._t_first = e.ts if self._t_first is None else self._t_first
            self._t_last = max(self._t_last, e.ts)
            if isinstance(e, Quote):
                if self.realism is Realism.L1:
                    keep.append(quote_snapshot(e))
                # at L2 a venue's separate top-of-book stream is not book data
            elif isinstance(e, BookSnapshot | BookDelta | Trade):
                keep.append(e)
            else:  # e.g. a halt: the event-by-event path handles it
                self._pending_events = itertools.chain(seen, events)
                return None
        return UpdateBatch.from_events(keep, trades=True)

    def _run_batched(self, batch: UpdateBatch, bar: tqdm) -> None:
        venue = self.venue
        venue.feed_batch(batch)
        clock = venue.batch_clock
        assert clock is not None
        self._view_at = 0
        if self._t_first is not None:
            self._push(self._t_first, _TIMER, None)
        while venue.has_market() or venue.has_commands() or self.heap:
            # The exchange first: everything of the venue's at or before the strategy's next item.
            done = venue.advance(self.heap[0][0] if self.heap else None)
            if done is not None:
                self.inputs += done.markets + (done.event is not None)
                self.market_events += done.markets
                bar.update(done.markets)
                self._deliver(done.outputs)
                continue
            ts, rank, _, item = heapq.heappop(self.heap)
            if rank == _NOTICE:
                self._notice(ts, item)
            else:
                self._advance_view(batch, clock, ts)
                self._on_timer(ts, more=ts < self._t_last, next_data=venue.next_market() if self._quiet() else None)

    def _advance_view(self, batch: UpdateBatch, clock: np.ndarray, ts: int) -> None:
        """Bring the strategy's book up to what has reached it by ``ts`` (feed latency later)."""
        upto = int(np.searchsorted(clock, ts - self.latency.feed(self.rng), side="right"))
        if upto > self._view_at:
            self.view.apply_range(batch, self._view_at, upto)
            trades = np.flatnonzero(batch.kinds[self._view_at : upto] == TRADE_KIND)
            if trades.size:
                self.ctx.last_trade = int(batch.px[batch.ends[self._view_at + trades[-1]] - 1])
            self._view_at = upto

    # ------------------------------------------------------------ event by event
    def _run_stepwise(self, events: Iterator[MarketEvent], bar: tqdm) -> None:
        events = getattr(self, "_pending_events", events)
        venue = self.venue
        pending = next(events, None)
        timer_started = False
        while pending is not None or self.heap or venue.has_market() or venue.has_commands():
            # Read the feed one event ahead of what is due: the feed is streamed, and market data
            # at a time goes before anything else then. At L2 a quote is not an exchange input
            # (see ExecutionEngine.step): it only goes to the strategy, and must not hold back
            # the book events behind it in the file.
            view_only = self.realism is Realism.L2 and isinstance(pending, Quote)
            if pending is not None and (view_only or (t := self._next_time()) is None or t >= pending.ts):
                if not timer_started:
                    timer_started = True
                    self._push(pending.ts, _TIMER, None)
                self._t_last = max(self._t_last, pending.ts)
                if view_only:
                    self._push(self._quote_arrival(pending.ts), _VIEW, pending)
                else:
                    venue.market(pending)
                pending = next(events, None)
                continue
            limit = self.heap[0][0] if self.heap else (pending.ts if pending is not None else None)
            done = venue.advance(limit)  # the exchange first: its next input, if due by the strategy's next item
            if done is not None:
                if done.event is not None:
                    self.inputs += 1
                    bar.update(1)
                    if done.markets:
                        self.market_events += 1
                        self._push(self._feed_arrival(done.ts), _VIEW, done.event)
                self._deliver(done.outputs)
                continue
            ts, rank, _, item = heapq.heappop(self.heap)
            if rank == _VIEW:
                self._view(ts, item)
            elif rank == _NOTICE:
                self._notice(ts, item)
            else:
                # As in the fast mode: the strategy runs until the feed's last event time.
                # If only market data waits, the next thing that can happen is data.
                upcoming = [t for t in (venue.next_market(), pending and pending.ts) if t is not None]
                nxt = min(upcoming) if self._quiet() and upcoming else None
                self._on_timer(ts, more=pending is not None or ts < self._t_last, next_data=nxt)

    def _next_time(self) -> int | None:
        """The time of the next thing due: the strategy's next item or the venue's next input or expiry."""
        times = [t for t in (self.heap[0][0] if self.heap else None, self.venue.next_time()) if t is not None]
        return min(times) if times else None

    def _quiet(self) -> bool:
        """Nothing in flight (no command, answer or order to expire): only market data can come next."""
        return not self.heap and not self.venue.has_commands() and self.engine.next_deadline() is None

    # ------------------------------------------------------------ shared
    def _on_timer(self, ts: int, *, more: bool, next_data: int | None = None) -> None:
        self._drain(ts, inclusive=True)  # answers due at ts rank before the timer
        self.ctx.now = ts
        self._sync_view()
        self._sample(ts)
        if self.broker is not None and self.broker.kind == "margin":
            bid, bid_sz, ask, ask_sz = self.view.touch()
            mark = (bid + ask) // 2 if bid_sz and ask_sz else self.ctx.last_trade
            if mark is not None:
                for order in self.broker.liquidations(mark, ts):  # the broker's own orders: no pre-check
                    self._route(msgspec.structs.replace(order, ts=ts))
        if self.strategy is not None:
            self.strategy(self.ctx)
        if more:
            self._push(self._next_tick(ts, next_data), _TIMER, None)

    def _next_tick(self, ts: int, next_data: int | None) -> int:
        """The next strategy time: ``ts + every``, except across a break in the recording.

        A feed silent for more than :data:`RECORDING_BREAK` (longer than any weekend with its
        holidays) with nothing in flight is a gap between recordings (a file holding SPY in
        2013 and in 2023), not a quiet market: ticking through it every second would run the
        strategy hundreds of millions of times on an unchanging book. The timer resumes on its
        ``every`` grid at the last tick before the next event; it was idle only while the
        strategy had nothing to act on (``next_data`` is None when anything is in flight).
        """
        if self._inbox or next_data is None or next_data - ts <= RECORDING_BREAK:
            return ts + self.every
        # The strategy acted on this tick (it may have sent something): let it be heard first.
        if self.heap or self.venue.has_commands():
            return ts + self.every
        return ts + max(1, (next_data - ts) // self.every) * self.every

    def _deliver(self, out: list[ev.ExecEvent]) -> None:
        for e in out:
            if self.broker is not None:
                self.broker.on_exec(e)
            self.outputs.append(e)
            self._tell(e.ts + self.latency.response(self.rng), e)

    def _tell(self, ts: int, e: ev.ExecEvent) -> None:
        """The strategy hears ``e`` at ``ts``."""
        if self._inbox is not None:
            self._inbox.append((ts, e))
        else:
            self._push(ts, _NOTICE, e)

    def _drain(self, upto: int, *, inclusive: bool) -> None:
        inbox = self._inbox
        while inbox and (inbox[0][0] < upto or (inclusive and inbox[0][0] == upto)):
            ts, e = inbox.popleft()
            self._notice(ts, e)

    def _feed_arrival(self, ts: int) -> int:
        """When market data sent at ``ts`` reaches the strategy: ``ts`` + feed latency, but never
        before the data sent ahead of it (a feed is an ordered stream; a sampled latency must not
        reorder it, or an order-by-order view would see an order executed before it was added)."""
        self._view_clock = max(self._view_clock, ts + self.latency.feed(self.rng))
        return self._view_clock

    def _quote_arrival(self, ts: int) -> int:
        """When an L2 quote (a separate top-of-book stream, not book data) reaches the strategy:
        like the book's data, but it does not move the book stream's clock (a quote stamped ahead
        of the depth would otherwise delay the book, which the fast mode, without quotes, does not)."""
        return max(self._view_clock, max(self.venue.merge.high or 0, ts) + self.latency.feed(self.rng))

    def _view(self, ts: int, e: MarketEvent) -> None:
        self._drain(ts, inclusive=False)  # market data at ts ranks before answers at ts
        ctx = self.ctx
        ctx.now = ts
        if self._view_l3 is not None and self._view_l3.apply(e):  # L3: order events and levels alike
            if self._view_window is not None:
                self._view_l3.truncate(self._view_window)
            self._view_stale = True
        elif isinstance(e, BookSnapshot | BookDelta) and self.realism is not Realism.L1:
            self.view.apply(e)
        elif isinstance(e, Quote) and self.realism is Realism.L1:
            self.view.apply(quote_snapshot(e))
        elif isinstance(e, Trade):
            ctx.last_trade = e.price
        elif isinstance(e, Bar):
            ctx.last_trade = e.close
        hook = getattr(self.strategy, "on_market", None)
        if hook is not None:
            self._sync_view()
            hook(ctx, e)

    def _sync_view(self) -> None:
        """Bring the aggregate view up to the L3 view's state (L3 only; a no-op when current)."""
        if self._view_stale:
            assert self._view_l3 is not None
            self.view.apply(self._view_l3.snapshot(self.ctx.now))
            self._view_stale = False

    def _notice(self, ts: int, e: ev.ExecEvent) -> None:
        ctx = self.ctx
        ctx.now = ts
        if isinstance(e, ev.OrderFilled):
            ctx.position += e.quantity if e.side is Side.BUY else -e.quantity
            if e.leaves == 0:
                ctx.open_orders.pop(e.client_order_id, None)
            hook = getattr(self.strategy, "on_fill", None)
            if hook is not None:
                hook(ctx, e)
        elif isinstance(e, ev.OrderCancelled | ev.OrderExpired | ev.OrderRejected):
            ctx.open_orders.pop(e.client_order_id, None)
        elif isinstance(e, ev.CorporateActionApplied):
            ctx.position += e.position_after - e.position_before

    def _sample(self, ts: int) -> None:
        b = self.engine.book
        bid, ask = b.best_bid(), b.best_ask()
        self.samples.append((ts, *(bid or (None, None)), *(ask or (None, None)), self.engine.last_trade))

    def _result(self) -> ReplayResult:
        engine, outputs, sent, samples, inst = self.engine, self.outputs, self.sent, self.samples, self.inst
        return ReplayResult(
            lambda: _orders_frame(engine, outputs, sent, inst),
            lambda: fills_frame((e for e in outputs if isinstance(e, ev.OrderFilled)), inst),
            lambda: _book_frame(samples, inst),
            outputs,
            self.inputs,
            self.market_events,
            inst,
            path_note=self.path_note,
        )


def _orders_frame(engine: ExecutionEngine, outputs: list[ev.ExecEvent], sent: Mapping[str, tuple[int, SubmitOrder]],
                  inst: Instrument) -> pd.DataFrame:
    """The orders table (:data:`vtrade.execution.tables.ORDERS`): every order sent, oldest first by
    entry time. An order refused before the book (account rules, or the exchange's checks) is a
    ``rejected`` row; a refused cancel or replace is not an order and adds none."""
    rows = []
    for w in engine.orders.values():
        s, o = w.state, w.order
        entered = sent.get(o.client_order_id, (o.ts, o))[0]
        rows.append(_record(entered, o, str(s.status), s.filled, s.notional, w.fees, s.reason))
    seen = set(engine.orders)
    for r in outputs:
        key = (r.account, r.client_order_id)
        if isinstance(r, ev.OrderRejected) and key not in seen and r.client_order_id in sent:
            seen.add(key)
            entered, o = sent[r.client_order_id]
            rows.append(_record(entered, o, "rejected", 0, 0, Decimal(0), r.reason))
    return orders_frame(rows, inst)


def _record(ts: int, o: SubmitOrder, status: str, filled: int, notional: int, fees: Decimal, reason: str
            ) -> OrderRecord:
    entered = OrderRecord.entered(o, ts, status=status, reason=reason)
    return replace(entered, filled=filled, notional=notional, fees=fees)


_Sample = tuple[int, int | None, int | None, int | None, int | None, int | None]  # ts, bid, size, ask, size, last


def _book_frame(samples: list[_Sample], inst: Instrument) -> pd.DataFrame:
    px, sz = inst.price_grid.to_float, inst.size_grid.to_float

    def column(i: int, conv: Callable[[int], float]) -> list[float]:
        return [conv(row[i]) if row[i] is not None else float("nan") for row in samples]  # type: ignore[arg-type]

    df = pd.DataFrame({
        "ts": pd.to_datetime([row[0] for row in samples], unit="ns", utc=True),
        "bid_px": column(1, px), "bid_sz": column(2, sz), "ask_px": column(3, px), "ask_sz": column(4, sz),
        "last": column(5, px),
    })  # fmt: skip
    df["mid"] = (df.bid_px + df.ask_px) / 2
    return df
