"""One live, process-wide simulated market that many people trade at once (DESIGN.md §1-2, §7).

:class:`LiveMarket` is the imperative shell around the domain: a background thread advances
simulated time in fixed slices (``step``, default one simulated second), paced by
:class:`~vtrade.runtime.pacer.Pacer` at ``speed`` times wall time. In each slice, per symbol,
the seeded :class:`~vtrade.market.synthetic.SyntheticMarket` order flow and the commands that
reached the exchange are merged in time order into that symbol's
:class:`~vtrade.execution.engine.ExecutionEngine` (market data first at equal times, as in
:mod:`vtrade.runtime.replay`); the execution events of all symbols are then folded, in time
order, into the account records and one :class:`~vtrade.portfolio.book.PortfolioBook`.
A few seeded simulated traders (a market maker and a noise trader, on their own accounts)
keep prices and fills moving.

Everything people do goes through the same path: :func:`~vtrade.execution.validation.submit_from_user`
turns loose input into an exact order (or raises :class:`OrderInputError` naming the field:
nothing is sent), then the account rules (:func:`~vtrade.execution.accounts.pre_trade_check`,
the rules :class:`~vtrade.execution.broker.Broker` applies, over every symbol of the account)
accept or refuse it with a reason, and only then does it travel to the exchange. The UI only
reads plain data and DataFrames back; it computes no rules.

Because slices are fixed in simulated time, a market with no human orders is deterministic
for a seed: :meth:`LiveMarket.advance` runs slices synchronously (tests, notebooks), the
thread only adds pacing.

>>> m = LiveMarket(LiveConfig(symbols=("AAPL", "XOM"), speed=0, burn_in=20_000))
>>> m.open_account("ada", cash=50_000)
>>> m.advance(5)
>>> out = m.submit("ada", "AAPL", "buy", 10)          # a market order
>>> out.ok, out.client_order_id
(True, 'ada-1')
>>> m.advance(1)
>>> m.orders("ada").status.tolist(), len(m.fills("ada")) > 0
(['filled'], True)
>>> m.submit("ada", "AAPL", "buy", "0")
Traceback (most recent call last):
...
vtrade.execution.validation.OrderInputError: The quantity must be positive, got 0
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

import msgspec
import numpy as np
import pandas as pd

from vtrade.core.events import MarketEvent, Quote, Side
from vtrade.core.instruments import ALWAYS_OPEN, Instrument, us_equity
from vtrade.core.numbers import Number
from vtrade.core.rng import seeded_rng
from vtrade.execution import events as ev
from vtrade.execution.accounts import (
    AccountKind,
    AccountState,
    MarginPolicy,
    Mark,
    MarketStatus,
    PreTradeContext,
    Reservation,
    SessionLimits,
    buying_power,
    pre_trade_check,
)
from vtrade.execution.engine import EngineConfig, ExecutionEngine, Realism
from vtrade.execution.fees import FeeModel, FillContext, PerShare
from vtrade.execution.liquidity import walk
from vtrade.execution.orders import CancelOrder, Liquidity, OrderType, SubmitOrder, TimeInForce
from vtrade.execution.queue import PowerProbQueueFunc3, ProbQueue, QueueModel, RiskAverseQueue
from vtrade.execution.validation import OrderInputError, submit_from_user
from vtrade.market.l2book import UpdateBatch
from vtrade.market.synthetic import SyntheticMarket, SyntheticParams
from vtrade.portfolio.book import PortfolioBook, UnknownAccountError
from vtrade.runtime.pacer import Pacer
from vtrade.runtime.replay import parse_duration

__all__ = [
    "CancelOutcome",
    "LiveConfig",
    "LiveMarket",
    "OrderInputError",
    "Preview",
    "SubmitOutcome",
    "UnknownAccountError",
    "estimate_fill",
    "shared_market",
]

DEFAULT_SYMBOLS = ("AAPL", "JPM", "XOM", "JNJ")
OPEN_STATUSES = frozenset({"pending_new", "accepted", "partially_filled", "triggered"})
BOT_ACCOUNTS = ("bot-maker", "bot-noise")


@dataclass(frozen=True)
class LiveConfig:
    """How the live market runs.

    ``symbols`` come from the 500-stock universe (sector, name and opening price from its last
    daily close, ``day``); ``speed`` is simulated seconds per wall second (0 = as fast as
    possible); ``step`` the simulated time of one slice; ``queue`` ``"risk_averse"`` or
    ``"prob"``; ``latency`` the order entry latency. The simulated session trades around the
    clock (``hours=ALWAYS_OPEN``) so that a demo left running never meets a closed market.

    >>> LiveConfig(speed=10).realism
    'L2'
    """

    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    speed: float = 20.0
    seed: int = 7
    realism: str = "L2"
    queue: Literal["risk_averse", "prob"] = "risk_averse"
    latency: str = "5ms"
    step: str = "1s"
    day: str = "2017-11-10"
    default_cash: int = 100_000
    bots: bool = True
    burn_in: int = 200_000
    history: int = 7200  # price samples (one per slice) kept per symbol
    nav_every: int = 5  # slices between NAV samples
    fees: FeeModel = field(default_factory=lambda: PerShare("0.005", "1.00", "1"))
    limits: SessionLimits = field(default_factory=SessionLimits)
    prices: dict[str, str] | None = None  # opening prices; None = the universe's closes on ``day``

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ValueError("a live market needs at least one symbol")
        if not (isinstance(self.speed, int | float) and self.speed >= 0 and math.isfinite(self.speed)):
            raise ValueError(f"speed must be a finite number >= 0, got {self.speed!r}")
        if self.queue not in ("risk_averse", "prob"):
            raise ValueError(f"queue is 'risk_averse' or 'prob', got {self.queue!r}")
        Realism(self.realism)
        if parse_duration(self.step) <= 0:
            raise ValueError("step must be a positive duration")


@dataclass(frozen=True)
class CommandOutcome:
    """What became of a command at the broker: sent (``ok``), or refused with ``code`` and ``reason``.

    A refused order is kept in the account's orders as ``rejected`` (an audit trail), unlike
    malformed input, which raises :class:`OrderInputError` and leaves no trace.
    """

    ok: bool
    client_order_id: str
    code: str | None = None
    reason: str | None = None


# The answers to ``submit`` and ``cancel`` are the same kind of thing.
SubmitOutcome = CancelOutcome = CommandOutcome


@dataclass(frozen=True)
class Preview:
    """An order's estimated outcome against the current book (before confirming it).

    ``fillable`` is the quantity that would fill now (units), ``avg_price`` its average price,
    ``slippage_bps`` vs the current mid (positive = worse for the side), ``fee`` the estimated
    commission, ``buying_power``/``buying_power_after`` the account's before and after.
    """

    symbol: str
    side: str
    quantity: float
    fillable: float
    avg_price: float | None
    mid: float | None
    slippage_bps: float | None
    notional: float
    fee: float
    buying_power: float
    buying_power_after: float
    rests: bool
    note: str


def estimate_fill(
    levels: Iterable[tuple[int, int]], side: Side, quantity: int, *, limit: int | None = None, used: Any = None
) -> tuple[int, int]:
    """``(lots, notional_ticks_x_lots)`` a ``side`` order of ``quantity`` lots would take from
    ``levels`` (the opposite side, best first) now, up to ``limit``; domain :func:`walk` does
    the walking (``used``: what our own takers already consumed).

    >>> estimate_fill([(101, 3), (102, 4)], Side.BUY, 5)
    (5, 507)
    >>> estimate_fill([(101, 3), (102, 4)], Side.BUY, 5, limit=101)
    (3, 303)
    """
    from vtrade.execution.liquidity import ConsumedLiquidity

    takes = walk(levels, quantity, limit=limit, used=used or ConsumedLiquidity(), side=side)
    return sum(t.quantity for t in takes), sum(t.price * t.quantity for t in takes)


# ---------------------------------------------------------------------------- internals
@dataclass
class _Order:
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int
    limit_price: int | None
    tif: TimeInForce
    ts: int
    status: str = "pending_new"
    filled: int = 0
    notional: int = 0  # ticks x lots, exact
    fees: Decimal = Decimal(0)
    reason: str = ""

    @property
    def leaves(self) -> int:
        return self.quantity - self.filled if self.status in OPEN_STATUSES else 0


@dataclass
class _Account:
    name: str
    kind: AccountKind
    bot: bool = False
    active: bool = True
    orders: dict[str, _Order] = field(default_factory=dict)
    fills: list[dict[str, Any]] = field(default_factory=list)
    nav: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=5000))
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    orders_today: int = 0
    day: int = -1
    version: int = 0  # bumped on every change to orders or fills: views skip unchanged reads


class _Venue:
    """One symbol: its synthetic order flow, its exchange and its commands in flight."""

    def __init__(self, inst: Instrument, market: SyntheticMarket, engine: ExecutionEngine, history: int) -> None:
        self.inst = inst
        self.market = market
        self.engine = engine
        self.pending: list[MarketEvent] = []
        self.pending_ts: list[int] = []
        self.commands: list[tuple[int, int, Any]] = []  # (arrival ts, seq, command): a heap
        self.history: deque[tuple[int, float, float, float, float]] = deque(maxlen=history)
        self.open_mid: float | None = None
        snap = market.snapshot()
        engine.step(snap)

    def generate_until(self, ts: int, step_ns: int) -> None:
        """Make sure the pending flow reaches past ``ts`` (the generator counts orders, not time)."""
        per_step = max(16, int(self.market.events_per_second * step_ns / 1e9 * 1.25))
        while not self.pending_ts or self.pending_ts[-1] <= ts:
            fresh = self.market.step(per_step)
            self.pending.extend(fresh)
            self.pending_ts.extend(e.ts for e in fresh)

    def take_until(self, ts: int) -> list[MarketEvent]:
        k = bisect.bisect_right(self.pending_ts, ts)
        out = self.pending[:k]
        del self.pending[:k], self.pending_ts[:k]
        return out


_COMMAND_SEQ = itertools.count()


class LiveMarket:
    """The shared market: see the module notes. Thread-safe; all reads return plain data."""

    def __init__(self, config: LiveConfig | None = None) -> None:
        self.config = cfg = config or LiveConfig()
        self._lock = threading.RLock()
        self._step_ns = parse_duration(cfg.step)
        self._latency_ns = parse_duration(cfg.latency)
        self.instruments = _instruments(cfg)
        queue: QueueModel = RiskAverseQueue() if cfg.queue == "risk_averse" else ProbQueue(PowerProbQueueFunc3())
        self._venues: dict[str, _Venue] = {}
        for symbol, (inst, price) in self.instruments.items():
            params = SyntheticParams(initial_price=Decimal(price), burn_in=cfg.burn_in)
            engine = ExecutionEngine(EngineConfig(inst, Realism(cfg.realism), queue_model=queue, fees=cfg.fees,
                                                  session_seed=cfg.seed))  # fmt: skip
            self._venues[symbol] = _Venue(inst, SyntheticMarket(inst, seed=cfg.seed, params=params), engine,
                                          cfg.history)  # fmt: skip
        self._insts = {s: v.inst for s, v in self._venues.items()}
        self.now = max(v.engine.now for v in self._venues.values())
        self.start_ts = self.now
        marks = {s: v.engine.book.mid2() // 2 for s, v in self._venues.items() if v.engine.book.mid2()}
        self.book = PortfolioBook(self._insts.values(), prices=marks)
        self._accounts: dict[str, _Account] = {}
        self._slices = 0
        self._quotes = pd.DataFrame()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._bot_rng = seeded_rng(cfg.seed, "live-bots")
        self._sample()
        self.faults: list[str] = []  # what went wrong in the market thread, for the clock badge
        if cfg.bots:
            # The simulated traders are part of the market (like the synthetic flow), not members
            # of the class: their inventory is the engine's position, they skip account rules.
            for name in BOT_ACCOUNTS:
                self._accounts[name] = _Account(name, "margin", bot=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LiveMarket:
        """Run the market in a background (daemon) thread, paced at ``config.speed``."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="vtrade-live-market", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background thread (the market keeps its state; ``start`` resumes it)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> LiveMarket:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        # Sleeping on the stop event (not time.sleep) makes stop() prompt.
        pacer = Pacer(self.config.speed, sleep=self._stop.wait)
        pacer.wait_until(self.now)
        while not self._stop.is_set():
            with self._lock:
                try:
                    self._slice()
                except Exception as exc:  # a half-applied slice: stop rather than run on inconsistent
                    self.faults.append(f"market stopped: {type(exc).__name__}: {exc}")
                    raise
                now = self.now
            if self.config.speed == 0:
                self._stop.wait(0.001)  # as fast as possible, but let readers take the lock
            else:
                pacer.wait_until(now)

    def advance(self, slices: int = 1) -> None:
        """Run ``slices`` slices now, synchronously (tests and notebooks; no pacing)."""
        for _ in range(slices):
            with self._lock:
                self._slice()

    # ------------------------------------------------------------------ commands
    def open_account(self, account: str, cash: Number | None = None, *, kind: AccountKind = "cash") -> None:
        """Open ``account`` with ``cash`` (default ``config.default_cash``); an existing one is an error."""
        if not isinstance(account, str) or not account.strip():
            raise ValueError("an account needs a non-blank name")
        with self._lock:
            self._open(account.strip(), self.config.default_cash if cash is None else cash, kind)

    def version(self, account: str) -> int:
        """A counter that changes whenever ``account``'s orders or fills change (cheap polling)."""
        with self._lock:
            return self._account(account).version

    def has_account(self, account: str) -> bool:
        with self._lock:
            return account in self._accounts

    def submit(
        self,
        account: str,
        symbol: str,
        side: str | Side,
        quantity: Number,
        order_type: str | OrderType = "market",
        limit_price: Number | None = None,
        tif: str | TimeInForce = "day",
        *,
        stop_price: Number | None = None,
        post_only: bool = False,
    ) -> SubmitOutcome:
        """Validate, check the account rules and send an order; prices and sizes in units ($, shares).

        Raises :class:`OrderInputError` (``.field``, ``.reason``) for malformed input: nothing
        is sent and nothing recorded. A refusal by the account rules returns ``ok=False`` with
        the reason and is recorded as a rejected order.

        >>> m = LiveMarket(LiveConfig(symbols=("XOM",), speed=0, bots=False, burn_in=20_000))
        >>> m.open_account("bo", cash=100)
        >>> m.submit("bo", "XOM", "buy", 100).reason
        'Not enough buying power: this order needs $8,...
        """
        with self._lock:
            acct = self._account(account)
            coid = f"{acct.name}-{next(acct.ids)}"
            order = submit_from_user(
                acct.name, coid, symbol, side, order_type, quantity, limit_price, stop_price, tif=tif,
                post_only=post_only, ts=self.now, instruments=self._insts,
            )  # fmt: skip
            return self._send(acct, order)

    def cancel(self, account: str, client_order_id: str) -> CancelOutcome:
        """Ask the exchange to cancel one of ``account``'s own open orders; others' are refused."""
        with self._lock:
            acct = self._account(account)
            o = acct.orders.get(client_order_id)
            if o is None:
                # Another account's id looks exactly like an unknown one: no information leaks.
                return CancelOutcome(False, client_order_id, ev.RejectCode.UNKNOWN_ORDER.value,
                                     f"You have no order {client_order_id!r}")  # fmt: skip
            if o.status not in OPEN_STATUSES:
                return CancelOutcome(False, client_order_id, ev.RejectCode.ORDER_NOT_OPEN.value,
                                     f"Order {client_order_id} is already {o.status.replace('_', ' ')}")  # fmt: skip
            self._route(CancelOrder(self.now, acct.name, client_order_id, o.symbol))
            return CancelOutcome(True, client_order_id)

    def close_session(self, account: str) -> int:
        """A browser session left: cancel the account's open orders; returns how many."""
        with self._lock:
            acct = self._accounts.get(account)
            if acct is None:
                return 0
            acct.active = False
            open_ids = [c for c, o in acct.orders.items() if o.status in OPEN_STATUSES]
        return sum(self.cancel(account, c).ok for c in open_ids)

    def preview(
        self,
        account: str,
        symbol: str,
        side: str | Side,
        quantity: Number,
        order_type: str | OrderType = "market",
        limit_price: Number | None = None,
    ) -> Preview:
        """The estimated fill of an order against the current book; raises OrderInputError like submit."""
        with self._lock:
            acct = self._account(account)
            o = submit_from_user(acct.name, "preview", symbol, side, order_type, quantity, limit_price,
                                 ts=self.now, instruments=self._insts)  # fmt: skip
            venue = self._venues[o.symbol]
            inst, book = venue.inst, venue.engine.book
            top = book.top(50)
            far_px, far_sz = (top.ask_px, top.ask_sz) if o.side is Side.BUY else (top.bid_px, top.bid_sz)
            levels = list(zip(far_px.tolist(), far_sz.tolist(), strict=True))
            marketable = o.order_type in (OrderType.MARKET, OrderType.LIMIT)
            lots, notional = estimate_fill(levels, o.side, o.quantity, limit=o.limit_price,
                                           used=venue.engine.used) if marketable else (0, 0)  # fmt: skip
            mid2 = book.mid2()
            px = inst.price_grid.to_float
            avg = px(1) * notional / lots if lots else None
            mid = px(mid2) / 2 if mid2 else None
            slip = None
            if avg is not None and mid:
                slip = (avg - mid) / mid * 1e4 * (1 if o.side is Side.BUY else -1)
            fee = Decimal(0)
            if lots:
                fee = self.config.fees.fee(FillContext(inst, o.side, lots, max(1, notional // lots), Liquidity.TAKER))
            state = self._state(acct)
            bp = buying_power(state, self._marks(), MarginPolicy())
            price_for_bp = o.limit_price if o.limit_price is not None else (notional // lots if lots else None)
            spend = Decimal(0)
            if o.side is Side.BUY and price_for_bp is not None:
                spend = inst.price_grid.to_decimal(price_for_bp) * inst.size_grid.to_decimal(o.quantity) + fee
            rests = lots < o.quantity and o.order_type is not OrderType.MARKET
            if o.order_type is OrderType.MARKET:
                note = "fills now" if lots == o.quantity else f"only {lots} of {o.quantity} lots available now"
            else:
                note = "rests in the book" if lots == 0 else ("fills now" if not rests else "part fills, rest rests")
            return Preview(
                o.symbol, o.side.name.lower(), float(inst.size_grid.to_float(o.quantity)),
                float(inst.size_grid.to_float(lots)), avg, mid, slip, px(1) * notional, float(fee), float(bp),
                float(bp - spend), rests, note,
            )  # fmt: skip

    # ------------------------------------------------------------------ reads
    def symbols(self) -> list[str]:
        return list(self._venues)

    def quotes(self) -> pd.DataFrame:
        """The watchlist: one row per symbol with sector, bid/ask (and sizes), last, mid, change."""
        with self._lock:
            return self._quotes.copy()

    def depth(self, symbol: str, levels: int = 10, account: str | None = None) -> pd.DataFrame:
        """Top ``levels`` per side, best first: ``side, price, size`` and ``mine`` (lots of
        ``account``'s own open limit orders resting at that price)."""
        with self._lock:
            venue = self._venue(symbol)
            top = venue.engine.book.top(levels)
            mine: dict[tuple[str, int], int] = {}
            if account is not None:
                for o in self._account(account).orders.values():
                    if o.symbol == symbol and o.limit_price is not None and o.leaves:
                        key = ("bid" if o.side is Side.BUY else "ask", o.limit_price)
                        mine[key] = mine.get(key, 0) + o.leaves
        px, sz = venue.inst.price_grid.to_float, venue.inst.size_grid.to_float
        rows = [("ask", int(p), int(s)) for p, s in zip(top.ask_px, top.ask_sz, strict=True)]
        rows += [("bid", int(p), int(s)) for p, s in zip(top.bid_px, top.bid_sz, strict=True)]
        # Own orders away from the displayed levels still show, at their price.
        shown = {(side, p) for side, p, _ in rows}
        rows += [(side, p, 0) for (side, p) in mine if (side, p) not in shown]
        df = pd.DataFrame({
            "side": [r[0] for r in rows], "price": [px(r[1]) for r in rows], "size": [sz(r[2]) for r in rows],
            "mine": [sz(mine.get((r[0], r[1]), 0)) for r in rows],
        })  # fmt: skip
        return df.sort_values("price", ascending=False, ignore_index=True)

    def prices(self, symbol: str, since: pd.Timestamp | int | None = None) -> pd.DataFrame:
        """Price samples of ``symbol`` (one per slice) after ``since``: ``ts, bid, ask, mid, last``."""
        with self._lock:
            hist = list(self._venue(symbol).history)
        if since is not None:
            cut = since.value if isinstance(since, pd.Timestamp) else int(since)
            hist = hist[bisect.bisect_right([h[0] for h in hist], cut) :]
        df = pd.DataFrame(hist, columns=["ts", "bid", "ask", "mid", "last"])
        df["ts"] = pd.to_datetime(df["ts"], unit="ns", utc=True)
        return df

    def orders(self, account: str) -> pd.DataFrame:
        """``account``'s orders, newest first, with status, fills and the reason of a refusal."""
        with self._lock:
            acct = self._account(account)
            rows = []
            for o in acct.orders.values():
                inst = self._insts[o.symbol]
                px, sz = inst.price_grid.to_float, inst.size_grid.to_float
                rows.append({
                    "ts": o.ts, "client_order_id": o.client_order_id, "symbol": o.symbol,
                    "side": o.side.name.lower(), "type": o.order_type.value, "tif": o.tif.value,
                    "quantity": sz(o.quantity), "limit_price": px(o.limit_price) if o.limit_price else None,
                    "status": o.status, "filled": sz(o.filled), "leaves": sz(o.leaves),
                    "avg_price": px(1) * o.notional / o.filled if o.filled else None,
                    "fees": float(o.fees), "reason": o.reason,
                })  # fmt: skip
        cols = ["ts", "client_order_id", "symbol", "side", "type", "tif", "quantity", "limit_price", "status",
                "filled", "leaves", "avg_price", "fees", "reason"]  # fmt: skip
        df = pd.DataFrame(rows, columns=cols)
        df["ts"] = pd.to_datetime(df["ts"], unit="ns", utc=True)
        return df.iloc[::-1].reset_index(drop=True)

    def fills(self, account: str) -> pd.DataFrame:
        """``account``'s fills, newest first, each with its receipt (arrival mid, slippage, fee, model)."""
        with self._lock:
            rows = list(self._account(account).fills)
        cols = ["ts", "client_order_id", "fill_id", "symbol", "side", "price", "quantity", "liquidity", "fee",
                "arrival_mid", "slippage_bps", "queue_ahead", "model"]  # fmt: skip
        df = pd.DataFrame(rows, columns=cols)
        df["ts"] = pd.to_datetime(df["ts"], unit="ns", utc=True)
        return df.iloc[::-1].reset_index(drop=True)

    def portfolio(self, account: str) -> dict[str, Any]:
        """``{"summary": {nav, cash, pnl, ...}, "positions": DataFrame, "sectors": DataFrame}``."""
        with self._lock:
            acct = self._account(account)
            row = self.book.frame().loc[acct.name]
            ledger = self.book.ledgers[acct.name]
            summary = {k: float(v) for k, v in row.items()}
            summary["initial_cash"] = float(ledger.initial_cash)
            summary["pnl"] = summary["nav"] - summary["initial_cash"]
            summary["realized_pnl"] = float(ledger.realized_pnl())
            summary["fees"] = float(ledger.fees_paid)
            summary["buying_power"] = float(buying_power(self._state(acct), self._marks(), MarginPolicy()))
            return {
                "summary": summary,
                "positions": self.book.positions(acct.name).reset_index(drop=True),
                "sectors": self.book.sectors(acct.name).reset_index(),
            }

    def nav_history(self, account: str) -> pd.DataFrame:
        """``account``'s NAV samples: ``ts, nav``."""
        with self._lock:
            rows = list(self._account(account).nav)
        df = pd.DataFrame(rows, columns=["ts", "nav"])
        df["ts"] = pd.to_datetime(df["ts"], unit="ns", utc=True)
        return df

    def leaderboard(self) -> pd.DataFrame:
        """Human accounts ranked by NAV (no orders or positions: only what a class may see)."""
        with self._lock:
            frame = self.book.frame()
            names = [a for a, acct in self._accounts.items() if not acct.bot]
            init = {a: float(self.book.ledgers[a].initial_cash) for a in names}
        df = frame.loc[names, ["nav"]].copy()
        df["return_pct"] = [(df.nav[a] / init[a] - 1) * 100 if init[a] else 0.0 for a in df.index]
        return df.sort_values("nav", ascending=False)

    def clock(self) -> dict[str, Any]:
        """Simulated time, speed, realism and queue model (for the clock badge)."""
        with self._lock:
            now = self.now
        return {
            "ts": pd.Timestamp(now, unit="ns", tz="UTC"),
            "elapsed_s": (now - self.start_ts) / 1e9,
            "speed": self.config.speed,
            "realism": self.config.realism,
            "queue": self.config.queue,
            "running": self.running,
            "faults": list(self.faults[-3:]),
        }

    # ------------------------------------------------------------------ the slice
    def _slice(self) -> None:
        end = self.now + self._step_ns
        out: list[tuple[int, int, ev.ExecEvent]] = []
        for i, venue in enumerate(self._venues.values()):
            for e in self._run_venue(venue, end):
                out.append((e.ts, i, e))
        out.sort(key=lambda t: (t[0], t[1]))  # stable: each venue keeps its own order within a ts
        self.now = end
        for _, _, e in out:
            self._on_exec(e)
        self._slices += 1
        self._sample()
        if self.config.bots:
            self._bots()

    def _run_venue(self, venue: _Venue, end: int) -> list[ev.ExecEvent]:
        """Merge the flow and the commands due by ``end`` into the engine, in time order."""
        venue.generate_until(end, self._step_ns)
        events = venue.take_until(end)
        engine = venue.engine
        batch = UpdateBatch.from_events(events, trades=True)
        n = batch.n_events
        clock = np.maximum.accumulate(batch.ts) if n else batch.ts
        out: list[ev.ExecEvent] = []
        e = 0
        heap = venue.commands
        while True:
            t_cmd = heap[0][0] if heap and heap[0][0] <= end else None
            deadline = engine.next_deadline()
            if deadline is not None and deadline > end:
                deadline = None
            limit = min((t for t in (t_cmd, deadline) if t is not None), default=end)
            # Market data at a timestamp goes before anything else at that timestamp.
            e_end = int(clock.searchsorted(limit, side="right")) if n else 0
            if e < e_end:
                e, got = engine.step_batch(batch, e, e_end)
                out.extend(got)
                continue
            if deadline is not None and (t_cmd is None or deadline <= t_cmd):
                out.extend(engine.tick(deadline))
                continue
            if t_cmd is None:
                break
            _, _, cmd = heapq.heappop(heap)
            out.extend(engine.step(cmd))
        return out

    def _on_exec(self, e: ev.ExecEvent) -> None:
        acct = self._accounts.get(e.account)
        o = acct.orders.get(e.client_order_id) if acct is not None else None
        if acct is None or o is None:
            return  # not ours (cannot happen: only our accounts send orders)
        inst = self._insts[e.symbol]
        acct.version += 1
        if isinstance(e, ev.OrderAccepted):
            if o.status == "pending_new":
                o.status = "accepted"
        elif isinstance(e, ev.OrderFilled):
            o.filled += e.quantity
            o.notional += e.price * e.quantity
            o.fees += e.fee
            o.status = "filled" if e.leaves == 0 else "partially_filled"
            if acct.bot:
                return
            try:
                self.book.apply(e)
            except ArithmeticError as exc:
                # The exact ledger refused to round (see the report on issue 5): keep the market
                # running and say so, rather than kill every session's feed.
                self.faults.append(f"{e.account}: fill {e.fill_id} not booked: {type(exc).__name__}")
            px, sz = inst.price_grid.to_float, inst.size_grid.to_float
            acct.fills.append({
                "ts": e.ts, "client_order_id": e.client_order_id, "fill_id": e.fill_id, "symbol": e.symbol,
                "side": e.side.name.lower(), "price": px(e.price), "quantity": sz(e.quantity),
                "liquidity": str(e.liquidity), "fee": float(e.fee), "arrival_mid": px(e.arrival_mid2) / 2,
                "slippage_bps": e.slippage_bps, "queue_ahead": sz(e.queue_ahead) if e.queue_ahead is not None else None,
                "model": e.model,
            })  # fmt: skip
        elif isinstance(e, ev.OrderRejected):
            o.status, o.reason = "rejected", e.reason
        elif isinstance(e, ev.OrderCancelled):
            o.status, o.reason = "cancelled", e.reason
        elif isinstance(e, ev.OrderExpired):
            o.status = "expired"
        elif isinstance(e, ev.OrderTriggered):
            o.status = "triggered"

    def _sample(self) -> None:
        """After a slice: marks into the portfolio book, price history, the watchlist, NAV."""
        rows = []
        for symbol, v in self._venues.items():
            book = v.engine.book
            bid, bid_sz, ask, ask_sz = book.touch()
            px, sz = v.inst.price_grid.to_float, v.inst.size_grid.to_float
            if bid_sz and ask_sz:
                self.book.apply(Quote(self.now, self.now, symbol, 0, bid, bid_sz, ask, ask_sz))
            b = px(bid) if bid_sz else float("nan")
            a = px(ask) if ask_sz else float("nan")
            mid = (b + a) / 2
            last = px(v.engine.last_trade) if v.engine.last_trade else mid
            v.history.append((self.now, b, a, mid, last))
            if v.open_mid is None and not math.isnan(mid):
                v.open_mid = mid
            rows.append({
                "symbol": symbol, "name": v.inst.name, "sector": v.inst.sector, "bid": b, "bid_size": sz(bid_sz),
                "ask": a, "ask_size": sz(ask_sz), "last": last, "mid": mid,
                "change_pct": (mid / v.open_mid - 1) * 100 if v.open_mid else 0.0,
                "spread_bps": (a - b) / mid * 1e4 if mid == mid and mid else float("nan"),
            })  # fmt: skip
        self._quotes = pd.DataFrame(rows)
        if self._slices % self.config.nav_every == 0 and self._accounts:
            navs = self.book.frame()["nav"]
            for name, acct in self._accounts.items():
                if not acct.bot:
                    acct.nav.append((self.now, float(navs[name])))

    # ------------------------------------------------------------------ helpers
    def _open(self, name: str, cash: Number, kind: AccountKind, *, bot: bool = False) -> None:
        if name in self._accounts:
            raise ValueError(f"account {name!r} is already open")
        self.book.open_account(name, cash=Decimal(str(cash)))
        acct = _Account(name, kind, bot=bot)
        acct.nav.append((self.now, float(Decimal(str(cash)))))
        self._accounts[name] = acct

    def _account(self, account: str) -> _Account:
        acct = self._accounts.get(account)
        if acct is None or acct.bot:  # the simulated traders are not accounts people can use
            raise UnknownAccountError(f"no account {account!r}")
        return acct

    def _venue(self, symbol: str) -> _Venue:
        v = self._venues.get(symbol)
        if v is None:
            raise KeyError(f"unknown symbol {symbol!r}; this market trades {', '.join(self._venues)}")
        return v

    def _marks(self) -> dict[str, Mark]:
        marks = {}
        for s, v in self._venues.items():
            mid2 = v.engine.book.mid2()
            price = mid2 // 2 if mid2 else v.engine.last_trade
            if price:
                marks[s] = Mark(v.inst, price)
        return marks

    def _state(self, acct: _Account) -> AccountState:
        """The account as the rules see it: ledger cash and positions, open orders' reservations."""
        ledger = self.book.ledgers[acct.name]
        res = []
        for o in acct.orders.values():
            left = o.leaves
            if not left:
                continue
            inst = self._insts[o.symbol]
            amount = Decimal(0)
            if o.side is Side.BUY and o.limit_price is not None:
                amount = inst.price_grid.to_decimal(o.limit_price) * inst.size_grid.to_decimal(left)
            res.append(Reservation(o.client_order_id, o.symbol, o.side, left, amount))
        return AccountState(acct.name, acct.kind, ledger.cash, ledger.positions, tuple(res))

    def _send(self, acct: _Account, order: SubmitOrder) -> SubmitOutcome:
        """Account rules, then the exchange (after the entry latency)."""
        venue = self._venues[order.symbol]
        bid, bid_sz, ask, ask_sz = venue.engine.book.touch()
        day = order.ts // 86_400_000_000_000  # the daily order limit resets at midnight UTC, as in Broker
        if day != acct.day:
            acct.day, acct.orders_today = day, 0
        ctx = PreTradeContext(
            venue.inst, self._state(acct), MarketStatus.at(venue.inst, order.ts, halted=venue.engine.halted),
            self._marks(), bid if bid_sz else None, ask if ask_sz else None, venue.engine.last_trade,
            acct.orders_today, self.config.limits, MarginPolicy(), self.config.fees,
        )  # fmt: skip
        refused = pre_trade_check(order, ctx)
        rec = _Order(order.client_order_id, order.symbol, order.side, order.order_type, order.quantity,
                     order.limit_price, order.tif, order.ts)  # fmt: skip
        acct.orders[order.client_order_id] = rec
        acct.version += 1
        if refused is not None:
            rec.status, rec.reason = "rejected", refused.reason
            return SubmitOutcome(False, order.client_order_id, refused.code.value, refused.reason)
        acct.orders_today += 1
        self._route(order)
        return SubmitOutcome(True, order.client_order_id)

    def _route(self, command: SubmitOrder | CancelOrder) -> None:
        # In the engine's input a command carries the time it reaches the exchange (DESIGN §4).
        arrival = self.now + self._latency_ns
        cmd = msgspec.structs.replace(command, ts=arrival)
        heapq.heappush(self._venues[command.symbol].commands, (arrival, next(_COMMAND_SEQ), cmd))

    # ------------------------------------------------------------------ simulated traders
    def _bots(self) -> None:
        """A market maker quoting the touch and a noise trader taking liquidity (seeded)."""
        rng = self._bot_rng
        maker = self._accounts[BOT_ACCOUNTS[0]]
        noise = self._accounts[BOT_ACCOUNTS[1]]
        for symbol, v in self._venues.items():
            bid, bid_sz, ask, ask_sz = v.engine.book.touch()
            if not (bid_sz and ask_sz):
                continue
            mine = [o for o in maker.orders.values() if o.symbol == symbol and o.leaves]
            quoted = {(o.side, o.limit_price) for o in mine}
            if quoted == {(Side.BUY, bid), (Side.SELL, ask)}:
                continue
            for o in mine:
                self._route(CancelOrder(self.now, maker.name, o.client_order_id, symbol))
            pos = v.engine.position(maker.name)
            size = int(rng.integers(1, 4)) * 100
            # Inventory control: stop adding to a large position on one side.
            if pos < 2_000:
                self._bot_order(maker, symbol, Side.BUY, size, bid)
            if pos > -2_000:
                self._bot_order(maker, symbol, Side.SELL, size, ask)
        if rng.random() < 0.35:
            symbols = list(self._venues)
            symbol = symbols[int(rng.integers(len(symbols)))]
            pos = self._venues[symbol].engine.position(noise.name)
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            if abs(pos) > 3_000:
                side = Side.SELL if pos > 0 else Side.BUY
            self._bot_order(noise, symbol, side, int(rng.integers(1, 6)) * 100, None)

    def _bot_order(self, acct: _Account, symbol: str, side: Side, lots: int, price: int | None) -> None:
        coid = f"{acct.name}-{next(acct.ids)}"
        otype = OrderType.MARKET if price is None else OrderType.LIMIT
        tif = TimeInForce.IOC if price is None else TimeInForce.GTC
        order = SubmitOrder(self.now, acct.name, coid, symbol, side, otype, lots, limit_price=price, tif=tif,
                            post_only=price is not None)  # fmt: skip
        acct.orders[coid] = _Order(coid, symbol, side, otype, lots, price, tif, self.now)
        self._route(order)


def _instruments(cfg: LiveConfig) -> dict[str, tuple[Instrument, str]]:
    """Each symbol as a one-cent US equity trading around the clock, with its GICS sector and
    its opening price (the universe's close on ``cfg.day`` unless ``cfg.prices`` gives one)."""
    from vtrade.market.feeds.daily import load_universe, read_meta

    symbols = [s.strip().upper() for s in cfg.symbols]
    meta = read_meta().set_index("ticker")
    unknown = sorted(set(symbols) - set(meta.index))
    if unknown:
        raise ValueError(f"unknown symbol(s) {unknown}: the live market trades stocks of the 500-stock universe")
    prices = dict(cfg.prices or {})
    missing = [s for s in symbols if s not in prices]
    if missing:
        day = pd.Timestamp(cfg.day)
        u = load_universe(tickers=missing, start=(day - pd.Timedelta(days=10)).date(), end=day.date(), etfs=False)
        last = u.frame.sort_values("date").groupby("ticker").close.last()
        prices.update({s: f"{last[s]:.2f}" for s in missing})
    out = {}
    for s in symbols:
        row = meta.loc[s]
        inst = replace(us_equity(s, sector=row.gics_sector_2018, name=row["name"]), hours=ALWAYS_OPEN)
        out[s] = (inst, prices[s])
    return out


_SHARED: LiveMarket | None = None
_SHARED_LOCK = threading.Lock()


def shared_market(config: LiveConfig | None = None) -> LiveMarket:
    """The process-wide market (created and started on first call; ``config`` only counts then).

    Every served session reads from this one market: one feed, fanned out to light views.
    """
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = LiveMarket(config).start()
        return _SHARED


def reset_shared_market() -> None:
    """Stop and forget the process-wide market (tests)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is not None:
            _SHARED.stop()
        _SHARED = None
