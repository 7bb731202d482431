"""One live, process-wide simulated market that many people trade at once (DESIGN.md §1-2, §7).

:class:`LiveMarket` is the imperative shell around the domain: a background thread advances
simulated time in fixed slices (``step``, default one simulated second), paced by
:class:`~vtrade.runtime.pacer.Pacer` at ``speed`` times wall time. It trades three kinds of venue,
each on its own :class:`~vtrade.execution.engine.ExecutionEngine`:

- **the universe** (``universe=True``): the 500-stock daily universe and its ETF benchmarks,
  replayed day by day from ``universe_start`` on :class:`~vtrade.market.intraday.IntradayUniverse`
  paths through the real daily bars, with calibrated synthesised depth. Sessions follow the NYSE
  calendar and the clock jumps from one close to the next open. A stock's engine is started
  when someone needs its book (an order, a preview, a depth view): its quotes are one
  vectorised step for all 500 either way, so idle stocks cost nothing;
- **the full-depth capture** (``crypto=True``): the recorded Binance USD-M BTCUSDT book,
  looped (:class:`~vtrade.market.capture.CaptureLoop`), with its real trades;
- **synthetic order flow** (``symbols``): seeded Santa-Fe-style agent flow
  (:class:`~vtrade.market.synthetic.SyntheticMarket`).

The market runs on the event log (:mod:`vtrade.runtime.live_log`, DESIGN.md §1). What people
enter (accounts, orders, cancels, sessions leaving) is published on ``orders`` and folded by the
broker; each slice, every venue's market data and a :class:`~vtrade.core.events.Clock` at the
slice end go through the :class:`~vtrade.runtime.execution_worker.Sequencer` (with the admitted
commands, by arrival time: the venue's merge rule) onto ``exec.in``; the
:class:`~vtrade.runtime.execution_worker.ExecutionWorker` runs the engines and publishes on
``exec``; the market folds those reports into the broker, one
:class:`~vtrade.portfolio.book.PortfolioBook` and the account views, marks every price in one
batch, and the broker checks maintenance and liquidates margin accounts below it. On a Redis
bus (``bus=``) the same runs on Redis Streams and gives the same outputs.

**Durable** with ``data_dir``: each entry is in the journal before the caller gets an answer, and
the market checkpoints itself every :data:`CHECKPOINT_S` seconds and on stop. A new market on
the same dir loads the latest checkpoint and re-runs the entries made after it, each at the
slice it was made in: every account, order (resting ones in their place in the book), fill and
NAV sample comes back, and the market goes on as if it had never stopped. After a kill, the
clock resumes from the last checkpoint or entry, whichever is later.

**A teacher's market events** (:meth:`LiveMarket.shock`, :meth:`~LiveMarket.halt` /
:meth:`~LiveMarket.resume_trading`, :meth:`~LiveMarket.drought`) are entries on ``orders`` too
(:mod:`vtrade.execution.orders`): journaled like orders and re-run at the slice they were made
in, so every student sees them on the same tape, two markets given the same events at the
same simulated times stay identical, and a restart brings back shocked prices, halts and
droughts. Each carries its caller's id and acts once. A halt reaches the exchange as a
:class:`~vtrade.core.events.TradingStatus` market event on the sequenced log.

Simulated participants keep things moving: a market maker and a noise trader inside the
synthetic and capture venues (part of the market, outside the class), and, with the universe,
three simulated class members (index, momentum, contrarian) who trade through the same account
rules as people and rank with them. They are the strategy functions of
:mod:`vtrade.market.participants`, run here on a ``_Desk`` (and in ``vt.replay`` on its context).

Everything people do goes through the same path: :func:`~vtrade.execution.validation.submit_from_user`
turns loose input into an exact order (or raises :class:`OrderInputError` naming the field:
nothing is sent), then the broker (:class:`~vtrade.execution.broker.Brokerage`, the one account
model: cash and positions from the ledgers, working orders, the account rules over every symbol
of the account) accepts or refuses it with a reason, and only then does it travel to the
exchange. Order previews are the broker's too. The UI only reads plain data and DataFrames
back; it computes no rules.

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

import atexit
import bisect
import difflib
import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeAlias

import msgspec
import numpy as np
import pandas as pd

from vtrade.copilot.airgap import Gate, RegisterKey, SignedOrder
from vtrade.copilot.signing import valid_public_key
from vtrade.core.errors import VtradeError
from vtrade.core.events import (
    BookDelta,
    BookSnapshot,
    Clock,
    Event,
    FeedStatus,
    MarketEvent,
    Side,
    Trade,
    TradingStatus,
)
from vtrade.core.instruments import ALWAYS_OPEN, BINANCE_BTCUSDT_USDM, Instrument, us_equity
from vtrade.core.numbers import Number
from vtrade.core.rng import seeded_rng
from vtrade.execution import calendar
from vtrade.execution import events as ev
from vtrade.execution.accounts import AccountKind, MarginPolicy, MarketStatus, SessionLimits
from vtrade.execution.broker import Brokerage, MarginCall
from vtrade.execution.engine import EngineConfig, ExecutionEngine, Realism
from vtrade.execution.fees import FeeModel, PerShare
from vtrade.execution.knobs import account_kind as account_kind_of
from vtrade.execution.knobs import cash_amount
from vtrade.execution.orders import (
    CancelOrder,
    CloseSession,
    Intervention,
    LiquidityDrought,
    MarketOpened,
    MarketShock,
    OpenAccount,
    OrderType,
    SetLimits,
    SliceTick,
    SubmitOrder,
    TimeInForce,
    TradingHalt,
)
from vtrade.execution.preview import Preview, estimate_fill
from vtrade.execution.queue import QueueModel, queue_model
from vtrade.execution.tables import OPEN_STATUSES, OrderRecord, fills_frame, orders_frame
from vtrade.execution.validation import OrderInputError, submit_from_user
from vtrade.market import participants
from vtrade.market.capture import CaptureLoop
from vtrade.market.feeds.daily import ETF_INFO
from vtrade.market.intraday import IntradayUniverse
from vtrade.market.synthetic import SyntheticMarket, SyntheticParams
from vtrade.portfolio.book import PortfolioBook, UnknownAccountError
from vtrade.portfolio.events import FillBooked, Holding, MarginCalled
from vtrade.portfolio.feed import AccountFeed
from vtrade.runtime import live_copilot
from vtrade.runtime.binance_live import BinanceLive, LiveSource
from vtrade.runtime.bus import Bus, MemoryBus, Record
from vtrade.runtime.datadir import prepare_data_dir
from vtrade.runtime.execution_worker import DeterminismError
from vtrade.runtime.live_copilot import SignedOutcome
from vtrade.runtime.live_log import (
    ENTRIES,
    Checkpoint,
    Durable,
    Execution,
    LiveLog,
    Role,
    dumps,
    loads,
    pacer_running,
)
from vtrade.runtime.pacer import Pacer
from vtrade.runtime.replay import parse_duration
from vtrade.runtime.status import CheckpointedElsewhere, Heartbeat

__all__ = [
    "AccountTakenError",
    "CancelOutcome",
    "LiveConfig",
    "LiveMarket",
    "OrderInputError",
    "Preview",
    "SignedOutcome",
    "SubmitOutcome",
    "UnknownAccountError",
    "UnknownSymbolError",
    "engine_configs_of",
    "estimate_fill",
    "market_fingerprint",
    "shared_market",
    "unknown_symbol",
]

DEFAULT_SYMBOLS = ("AAPL", "JPM", "XOM", "JNJ")
BOT_ACCOUNTS = ("bot-maker", "bot-noise")
SIM_TRADERS = ("sim-index", "sim-momentum", "sim-contrarian")
CAPTURE_FILE = Path(__file__).resolve().parents[2] / "data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"
_logger = logging.getLogger(__name__)
#: Entries a replica folds per hold of the market's lock (its readers get in between).
FOLD_BATCH = 200
#: Seconds a replica's clock may stand still before it asks whether its pacer is alive.
TAKE_OVER_AFTER_S = 2.0
#: Seconds of wall time between checkpoints of a running market with a data dir.
CHECKPOINT_S = 30.0
# What a checkpoint keeps of a market (the rest is rebuilt from the configuration).
_STATE = ("now", "start_ts", "_skipped_ns", "_day_bounds", "_slices", "universe", "_venues", "_dormant", "_flow",
          "_bid", "_ask", "_bid_sz", "_ask_sz", "_last", "_ref", "_held", "_hist_ts", "_hist_bid", "_hist_ask",
          "_hist_last", "_hist_n", "book", "broker", "_accounts", "faults", "_halted", "_interventions",
          "_droughts", "_feed", "_gate")  # fmt: skip
#: The account feed's topic (one partition: its consumers fold it in one total order) and how
#: often, in simulated time, it snapshots every account between session closes
#: (:class:`~vtrade.portfolio.feed.AccountFeed`).
FEED_TOPIC = "portfolio"
#: A live feed's status events (:class:`~vtrade.core.events.FeedStatus`), keyed by symbol.
FEEDS_TOPIC = "feeds"
FEED_EVERY_NS = 30 * 60 * 10**9
_DOLLARS = ("USD", "USDT", "USDC", "FDUSD", "TUSD", "BUSD")  # quoted at par in the paper account's dollars
# The default watchlist: what a newcomer sees first (plus whatever they hold or focus).
FEATURED = ("SPY", "BTCUSDT", "SYNTH", "AAPL", "MSFT", "AMZN", "JPM", "XOM", "JNJ", "XLK", "XLE", "XLF")


@dataclass(frozen=True)
class LiveConfig:
    """How the live market runs.

    ``symbols`` trade on synthetic agent order flow (a universe stock takes its sector, name and
    opening price from its close on ``day``; another name needs a price in ``prices``);
    ``universe`` adds the 500-stock universe and ETFs replayed from ``universe_start``;
    ``crypto`` the looped Binance BTCUSDT capture. ``speed`` is simulated seconds per wall second
    (0 = as fast as possible); ``step`` the simulated time of one slice; ``queue``
    ``"risk_averse"``, ``"prob"`` or a :class:`~vtrade.execution.queue.QueueModel`; ``latency``
    the order entry latency. Synthetic and capture venues trade around the clock; universe
    stocks keep NYSE hours. ``limits`` (the class's rules) and ``margin`` (Reg T / maintenance
    rates) feed the broker's account rules; a margin account below maintenance gets a margin
    call and is liquidated, largest positions first.

    >>> LiveConfig(speed=10).realism
    'L2'
    """

    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    speed: float = 20.0
    seed: int = 7
    realism: str = "L2"
    queue: str | QueueModel = "risk_averse"
    latency: str = "5ms"
    step: str = "1s"
    day: str = "2017-11-10"
    universe: bool = False
    universe_start: str = "2017-10-02"
    crypto: bool = False
    # Symbols whose market data comes live from Binance (``binance_market`` spot/usdm/coinm; at
    # ``binance_urls`` = (websocket, REST) base URLs, default the exchange's own): see binance_live.
    binance: tuple[str, ...] = ()
    binance_market: str = "spot"
    binance_urls: tuple[str, str] | None = None
    default_cash: int = 100_000
    bots: bool = True
    burn_in: int = 200_000
    history: int = 3600  # price samples (one per slice) kept per symbol
    nav_every: int = 5  # slices between NAV samples
    fees: FeeModel = field(default_factory=lambda: PerShare("0.005", "1.00", "1"))
    limits: SessionLimits = field(default_factory=SessionLimits)
    margin: MarginPolicy = field(default_factory=MarginPolicy)
    prices: dict[str, str] | None = None  # opening prices; None = the universe's closes on ``day``
    # The account feed (``portfolio`` topic: fills with receipts, snapshots, session closes) for a
    # class's game worker, and the session length of a market that trades around the clock.
    # Neither changes the market itself: both stay out of its fingerprint (repr=False).
    account_feed: bool = field(default=False, repr=False)
    session: str = field(default="390min", repr=False)

    @classmethod
    def demo(cls, **overrides: Any) -> LiveConfig:
        """The market ``make demo`` serves (and ``vt.Session.demo()`` trades): the universe, the
        Binance capture and one synthetic stock, ``SYNTH``, with simulated participants.

        >>> LiveConfig.demo(speed=5).universe
        True
        """
        base: dict[str, Any] = {"symbols": ("SYNTH",), "prices": {"SYNTH": "100.00"}, "universe": True,
                                "crypto": True}  # fmt: skip
        return cls(**(base | overrides))

    def __post_init__(self) -> None:
        if not (self.symbols or self.universe or self.crypto or self.binance):
            raise ValueError("a live market needs at least one symbol (symbols, universe or crypto)")
        if not (isinstance(self.speed, int | float) and self.speed >= 0 and math.isfinite(self.speed)):
            raise ValueError(f"speed must be a finite number >= 0, got {self.speed!r}")
        queue_model(self.queue)  # a clear error for an unknown name
        Realism(self.realism)
        if parse_duration(self.step) <= 0:
            raise ValueError("step must be a positive duration")
        if self.history < 2:
            raise ValueError(f"history must keep at least 2 samples, got {self.history}")
        date.fromisoformat(self.universe_start)


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


#: The fold's answer to an account opened under a name already taken (by another process on a shared log).
_NAME_TAKEN = CommandOutcome(False, "", "account_exists", "An account with this name is already open")

# The answers to ``submit`` and ``cancel`` are the same kind of thing. (Declared aliases: a chained
# ``A = B = C`` makes variables, and annotations naming them go unchecked.)
SubmitOutcome: TypeAlias = CommandOutcome
CancelOutcome: TypeAlias = CommandOutcome


# ---------------------------------------------------------------------------- internals
@dataclass
class _Account:
    """What the live views read of an account (its blotter, fills, NAV samples); its cash,
    positions, working orders and rules are the broker's (``LiveMarket.broker``)."""

    name: str
    bot: bool = False  # a market participant outside the class (no ledger, no account rules)
    simulated: bool = False  # a simulated class member: a normal account driven by a strategy
    active: bool = True
    orders: dict[str, OrderRecord] = field(default_factory=dict)  # the blotter, oldest first
    fills: list[ev.OrderFilled] = field(default_factory=list)  # the public table is built on read
    nav: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=5000))
    next_id: int = 1  # of the next order that passes validation: refused input uses up no id
    margin_calls: list[MarginCall] = field(default_factory=list)
    version: int = 0  # bumped on every change to orders or fills: views skip unchanged reads

    def order_id(self) -> str:
        return f"{self.name}-{self.next_id}"


class _Venue(ABC):
    """One symbol's market data source. Its exchange (the engine) is the execution worker's: the
    market publishes this venue's data to the sequenced log and reads the book back from there."""

    halted = False  # a teacher's halt: no market data until trading resumes (class default: old checkpoints)

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.idle = 0  # slices without open orders or readers (universe venues retire when idle)

    @abstractmethod
    def opening(self, ts: int) -> MarketEvent:
        """The book to start (or wake) the exchange with at ``ts``."""

    @abstractmethod
    def events_until(self, end: int, step_ns: int) -> list[MarketEvent]:
        """The market data of this venue up to ``end`` (inclusive), in order, stamped on the live clock."""


class _FlowVenue(_Venue):
    """Driven by an event source with its own clock (synthetic flow, a looped capture): events
    are taken in source time and re-stamped by ``offset``, which grows when the live clock
    jumps over closed hours (and while trading is halted: the flow stands still).

    A teacher's shock and drought change how the exchange sees the source, not the source: every
    price ``shift`` ticks away and every displayed size times ``scale``. The agents' model (or the
    recording) runs on as it would have, so the flow stays a pure function of the seed, and the
    book is restated once (:meth:`look`) when the view changes. While ``scale`` is not one,
    ``mirror`` follows the source's own sizes, to restate the full book when the drought ends.
    """

    shift = 0  # ticks added to every price the exchange sees (class defaults: old checkpoints)
    scale = 1.0  # factor on every displayed size
    mirror: tuple[dict[int, int], dict[int, int]] | None = None  # the source's (bids, asks) while scaled

    def __init__(self, inst: Instrument, source: SyntheticMarket | CaptureLoop | LiveSource) -> None:
        super().__init__(inst)
        self.source = source
        self.offset = 0
        self.pending: list[MarketEvent] = []
        self.pending_ts: list[int] = []  # running maximum of the pending events' times
        self._hi = -(2**63)
        self.open_mid: float | None = None

    def opening(self, ts: int) -> MarketEvent:
        return self._seen([self.source.snapshot()])[0]

    def events_until(self, end: int, step_ns: int) -> list[MarketEvent]:
        if isinstance(self.source, LiveSource):  # the exchange's clock is the market's: what has arrived by now
            return [] if self.halted else self._seen(self.source.until(end))  # (a halt holds it back)
        if self.halted:
            self.offset += step_ns  # the source's clock stands still: its flow picks up on resume
            return []
        until = end - self.offset
        # The source counts events, not time: draw until the pending flow reaches past ``until``.
        per_step = max(16, int(self.source.events_per_second * step_ns / 1e9 * 1.25))
        while not self.pending_ts or self.pending_ts[-1] <= until:
            fresh = self.source.step(per_step)
            self.pending.extend(fresh)
            # A recording is not strictly time ordered (trades and depth carry their own clocks):
            # split on the running maximum, as the engine's merge does, so no event is left behind.
            hi = self._hi
            for e in fresh:
                hi = max(hi, e.ts)
                self.pending_ts.append(hi)
            self._hi = hi
        k = bisect.bisect_right(self.pending_ts, until)
        out = self.pending[:k]
        del self.pending[:k], self.pending_ts[:k]
        if self.offset:
            off = self.offset
            out = [msgspec.structs.replace(e, ts=e.ts + off, recv_ts=e.recv_ts + off) for e in out]
        return self._seen(out)

    def _seen(self, events: list[MarketEvent]) -> list[MarketEvent]:
        """The source's events as the exchange sees them (shifted, scaled); the mirror follows."""
        if self.mirror is not None:
            bids, asks = self.mirror
            for e in events:
                if isinstance(e, BookSnapshot):
                    bids.clear()
                    asks.clear()
                if isinstance(e, BookSnapshot | BookDelta):
                    for side, px, sz in ((bids, e.bid_px, e.bid_sz), (asks, e.ask_px, e.ask_sz)):
                        for p, s in zip(px, sz, strict=True):
                            if s:
                                side[p] = s
                            else:
                                side.pop(p, None)
        if not self.shift and self.scale == 1.0:
            return events
        return [seen for e in events if (seen := self._see(e)) is not None]

    def _see(self, e: MarketEvent) -> MarketEvent | None:
        k = self.shift
        if isinstance(e, Trade):
            return msgspec.structs.replace(e, price=e.price + k) if e.price + k > 0 else None
        if isinstance(e, BookSnapshot | BookDelta):
            snap = isinstance(e, BookSnapshot)
            bid_px, bid_sz = self._levels(e.bid_px, e.bid_sz, snap)
            ask_px, ask_sz = self._levels(e.ask_px, e.ask_sz, snap)
            return msgspec.structs.replace(e, bid_px=bid_px, bid_sz=bid_sz, ask_px=ask_px, ask_sz=ask_sz)
        return e

    def _levels(self, px: list[int], sz: list[int], snapshot: bool) -> tuple[list[int], list[int]]:
        """Levels shifted and scaled; a level shifted to a price <= 0 cannot exist and is left out,
        a scaled level keeps at least one lot (a delta's 0 still removes its level)."""
        k, f = self.shift, self.scale
        out_px: list[int] = []
        out_sz: list[int] = []
        for p, s in zip(px, sz, strict=True):
            if p + k <= 0 or (snapshot and s <= 0):
                continue
            out_px.append(p + k)
            out_sz.append(s if f == 1.0 or s <= 0 else max(1, round(s * f)))
        return out_px, out_sz

    def look(self, shift: int, scale: float, book: tuple[dict[int, int], dict[int, int]], ts: int) -> BookSnapshot:
        """Change the exchange's view of the source to ``shift`` and ``scale``; returns the
        restated book (``book``: the source's levels now, from :meth:`source_book`), stamped ``ts``."""
        self.shift, self.scale = shift, scale
        self.mirror = None if scale == 1.0 else (dict(book[0]), dict(book[1]))
        bids = sorted(book[0].items(), reverse=True)
        asks = sorted(book[1].items())
        snap = BookSnapshot(ts, ts, self.inst.symbol, 0, [p for p, _ in bids], [s for _, s in bids],
                            [p for p, _ in asks], [s for _, s in asks])  # fmt: skip
        seen = self._see(snap)
        assert isinstance(seen, BookSnapshot)
        return seen

    def source_book(self, engine: ExecutionEngine) -> tuple[dict[int, int], dict[int, int]]:
        """The source's own levels now (unshifted, unscaled): the mirror while scaled, else the
        exchange's book (which is the source's, seen through the shift) shifted back."""
        if self.mirror is not None:
            return dict(self.mirror[0]), dict(self.mirror[1])
        k = self.shift
        sides = []
        for side in (Side.BUY, Side.SELL):
            px, sz = engine.book.levels(side)
            sides.append({int(p) - k: int(s) for p, s in zip(px.tolist(), sz.tolist(), strict=True) if s > 0})
        return sides[0], sides[1]


class _PathVenue(_Venue):
    """A universe stock: each slice its book is restated from the intraday path's quote."""

    def __init__(self, inst: Instrument, universe: IntradayUniverse) -> None:
        super().__init__(inst)
        self.universe = universe

    def opening(self, ts: int) -> MarketEvent:
        return self.universe.snapshot(self.inst.symbol, self.inst, ts)

    def events_until(self, end: int, step_ns: int) -> list[MarketEvent]:
        if self.halted:
            return []  # the quote freezes; on resume the book gaps to the path
        return [self.universe.snapshot(self.inst.symbol, self.inst, end)]


class LiveMarket:
    """The shared market: see the module notes. Thread-safe; all reads return plain data.

    ``bus``: the event log to run on (default: a new in-process ``MemoryBus``; a ``RedisBus``
    runs the same pipeline on Redis Streams). ``data_dir``: keep the market there (journal and
    checkpoints, in a folder per configuration) and resume from it on start; only with the
    embedded log. ``keep_log``: keep ``exec.in`` and ``exec`` whole on a memory bus (tests,
    audits) instead of trimming what every consumer has read. ``wall_clock``: UTC ns now, what
    a signed intent's expiry is checked against (tests pass a fake one). ``execution``:
    ``"embedded"`` runs the exchanges in this process; ``"remote"`` leaves them to the execution
    workers on ``bus`` (``vtrade worker execution``, built from the same config by
    :func:`engine_configs_of`) and waits for them each slice (see :mod:`vtrade.runtime.live_log`).
    ``role``, for several processes sharing one market on ``bus`` (see
    :func:`~vtrade.runtime.live_log.claim_pace`): ``"pacer"`` runs the clock and puts each
    slice's tick on ``orders``; ``"replica"`` runs no clock of its own, folds the shared
    ``orders`` (its people's entries go there) and keeps everything it derives in this process;
    ``"solo"`` (the default) is a market that shares its log with no other UI process.
    """

    def __init__(
        self,
        config: LiveConfig | None = None,
        *,
        bus: Bus | None = None,
        data_dir: str | Path | None = None,
        keep_log: bool = False,
        wall_clock: Callable[[], int] = time.time_ns,
        execution: Execution = "embedded",
        role: Role = "solo",
    ) -> None:
        if role not in ("solo", "pacer", "replica"):
            raise ValueError(f"role must be 'solo', 'pacer' or 'replica', got {role!r}")
        if role != "solo" and (bus is None or data_dir is not None):
            raise ValueError(f"a {role} shares its market on a bus (redis://, kafka://) and keeps no data dir")
        if role == "replica" and execution != "embedded":
            raise ValueError("a replica runs its own copy of the exchanges: execution must be 'embedded'")
        self.role: Role = role
        self._folding = False  # a replica is folding the shared log (see _known)
        self.config = cfg = config or LiveConfig()
        self._wall = wall_clock
        self._lock = threading.RLock()
        self._step_ns = parse_duration(cfg.step)
        self._queue: QueueModel = queue_model(cfg.queue)
        self.universe: IntradayUniverse | None = None
        self._day_bounds: tuple[int, int] | None = None
        self._day_dates: list[date] = []
        insts: dict[str, Instrument] = {}
        self._venues: dict[str, _Venue] = {}
        self._dormant: dict[str, _PathVenue] = {}  # universe stocks nobody uses now (see _retire_idle)
        self._flow: list[_FlowVenue] = []
        if cfg.universe:
            self.universe, uni_insts, self._day_dates = _universe(cfg)
            clash = sorted(set(cfg.symbols) & set(uni_insts))
            if clash:
                raise ValueError(f"{clash} trade in the universe replay; give synthetic flow other symbols")
            open_ns, _ = calendar.session_bounds(self._day_dates[0])  # type: ignore[misc]
            self.now = open_ns
        else:
            uni_insts = {}
            self.now = _session_open(date.fromisoformat(cfg.universe_start))
        self._live_feed = self._open_live(cfg, data_dir)
        self.start_ts = self.now
        self._skipped_ns = 0  # closed hours jumped over: the pacer does not wait for them
        if cfg.crypto:
            self._flow.append(_FlowVenue(_CRYPTO, CaptureLoop(_capture_events(), start_ts=self.now)))
        for inst, price in _synthetic_instruments(cfg).values():
            params = SyntheticParams(initial_price=Decimal(price), burn_in=cfg.burn_in, start_ts=self.now)
            self._flow.append(_FlowVenue(inst, SyntheticMarket(inst, seed=cfg.seed, params=params)))
        insts = {v.inst.symbol: v.inst for v in self._flow} | uni_insts
        self._insts = insts
        # The event log: people's entries, the sequenced exchange input, the execution reports.
        if bus is not None and data_dir is not None:
            raise ValueError("a data dir keeps the embedded log on disk; with a bus of your own, the bus is the log")
        # A replica's derived topics stay in this process: the pacer's are the shared ones.
        own, shared = (None, bus) if role == "replica" else (bus, None)
        self._log = LiveLog(own, latency=cfg.latency, seed=cfg.seed, engine_config=self._engine_config, keep=keep_log,
                            execution=execution, entries_bus=shared)  # fmt: skip
        if self._live_feed is not None:
            self._log.bus.create_topic(FEEDS_TOPIC, 1)
        # One folder per market configuration: a served demo and a served class (or another
        # seed) keep their own state under the same data dir, and never replay into each other.
        fingerprint = market_fingerprint(cfg)
        self._durable = None
        if data_dir is not None:
            self._durable = Durable(prepare_data_dir(data_dir) / fingerprint, fingerprint=fingerprint)
        self._checkpoint_wall = time.monotonic()
        self._symbols = list(insts)
        self._col = {s: i for i, s in enumerate(self._symbols)}
        n = len(self._symbols)
        self._uni0 = len(self._flow)  # universe stocks follow the flow venues, in the universe's order
        self._tick = np.array([i.price_grid.to_float(1) for i in insts.values()])
        self._lot = np.array([i.size_grid.to_float(1) for i in insts.values()])
        self._names = np.array([i.name for i in insts.values()], dtype=object)
        self._sectors = np.array([i.sector or "" for i in insts.values()], dtype=object)
        # Latest touch per symbol, in ticks and lots (0 = no price), and the reference for "change".
        self._bid = np.zeros(n, dtype=np.int64)
        self._ask = np.zeros(n, dtype=np.int64)
        self._bid_sz = np.zeros(n, dtype=np.int64)
        self._ask_sz = np.zeros(n, dtype=np.int64)
        self._last = np.zeros(n, dtype=np.int64)
        self._ref = np.full(n, np.nan)
        self._held = np.zeros(n, dtype=bool)  # symbols some account has traded (the ones worth marking)
        h = cfg.history
        self._hist_ts = np.zeros(h, dtype=np.int64)
        self._hist_bid = np.full((h, n), np.nan, dtype=np.float32)
        self._hist_ask = np.full((h, n), np.nan, dtype=np.float32)
        self._hist_last = np.full((h, n), np.nan, dtype=np.float32)
        self._hist_n = 0
        self.book = PortfolioBook(insts.values())
        # The one account model: cash and positions from the ledgers above, orders and rules here.
        self.broker = Brokerage(insts, limits=cfg.limits, policy=cfg.margin, fees=cfg.fees)
        self._accounts: dict[str, _Account] = {}
        self._slices = 0
        self._slice_wall = time.time()  # wall clock when the last slice was done: views measure their lag
        self._quotes_cache: tuple[int, pd.DataFrame] | None = None
        self._top_cache: dict[tuple[str, int], tuple[int, list[tuple[str, int, int]]]] = {}
        # Reads that are the same for every view (a watchlist's quotes, a symbol's price samples,
        # its book without anyone's orders, a class's NAVs) are built once per change of the
        # market and shared: 30 sessions refreshing the same slice asked for the same frames 30
        # times. ``_epoch`` moves, and ``_reads`` is emptied, whenever anything a read shows may
        # have changed (see ``_changed``); shared frames are read-only for their callers.
        self._epoch = 0
        self._reads: dict[tuple[Any, ...], Any] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._repace = threading.Event()  # set_speed (or stop) cuts the pacer's wait short
        # Simulated participants: (strategy, its desk, every n slices, at slice phase).
        self._participants: list[tuple[participants.Participant, _Desk, int, int]] = []
        self.faults: list[str] = []  # what went wrong in the market thread, for the clock badge
        # The teacher's market events (see ``shock``): applied ids, halted symbols (-> reason) and
        # the droughts in force as (end ts, id, symbols, factor).
        self._interventions: dict[str, Intervention] = {}
        self._halted: dict[str, str] = {}
        self._droughts: list[tuple[int, str, tuple[str, ...], float]] = []
        # The air-gap (DESIGN §9): the keys that may sign each account's intents and the spent
        # nonces are broker state (checkpointed, rebuilt by a re-run); the audit trail is a topic.
        self._gate = Gate()
        self._trail = live_copilot.CopilotTrail()
        self._trail.attach(self._log.bus)
        for v in self._flow:
            self._wake(v)
        if self.universe is not None:
            self._open_day(0)
        self._sample()
        if cfg.bots and self._flow:
            # The market maker and noise trader are part of the market (like the synthetic flow),
            # not members of the class: their inventory is the engine's position, no account rules.
            flow = [v.inst.symbol for v in self._flow]
            for name, strategy in zip(BOT_ACCOUNTS, (participants.market_maker, participants.noise_trader),
                                      strict=True):  # fmt: skip
                bot = self._accounts[name] = _Account(name, bot=True)
                self._participants.append((strategy, _Desk(self, bot, flow), 1, 0))
        if cfg.bots and self.universe is not None:
            # Simulated class members trade the universe through the account rules every five
            # simulated minutes (300 slices), and rank with people.
            stocks = self._symbols[self._uni0 :]
            members = (participants.index_investor, participants.momentum, participants.contrarian)
            for name, strategy in zip(SIM_TRADERS, members, strict=True):
                self._open(name, cfg.default_cash, "cash", simulated=True)
                self._participants.append((strategy, _Desk(self, self._accounts[name], stocks), 300, 1))
        self._feed: AccountFeed | None = None
        if cfg.account_feed:
            bench = "SPY" if "SPY" in insts else None
            session = None if self.universe is not None else parse_duration(cfg.session)
            self._feed = AccountFeed(bench, session, FEED_EVERY_NS)
            self._log.bus.create_topic(FEED_TOPIC, 1)
        self.resumed: str | None = None  # what a restart brought back (for the server's first lines)
        if self._durable is not None:
            self._resume(self._durable)

    def _open_live(self, cfg: LiveConfig, data_dir: str | Path | None) -> BinanceLive | None:
        """Connect the live Binance feed of ``cfg.binance`` (waits until every book is live):
        one flow venue per symbol on it, and the market's clock on the exchange's."""
        if not cfg.binance:
            return None
        if data_dir is not None or cfg.universe:
            raise ValueError("a live Binance market is not replayed: run it without a data dir or the universe")
        ws, rest = cfg.binance_urls or (None, None)
        feed = BinanceLive(cfg.binance, market=cfg.binance_market, ws_url=ws, rest_url=rest)
        sources = [feed.source(s) for s in feed.symbols]
        if not (feed.start().wait_live(60) and all(src.wait_ready(10) for src in sources)):
            feed.stop()
            raise ConnectionError(f"the live Binance feed did not synchronise: {feed.status()}")
        for src in sources:
            cur = src.instrument.currency
            inst = replace(src.instrument, sector="Crypto", name=f"{src.symbol} (Binance live)",
                           currency="USD" if cur in _DOLLARS else cur)  # fmt: skip
            self._flow.append(_FlowVenue(inst, src))
        self.now = max(src.last_ts for src in sources)
        return feed

    def _publish_feed_status(self) -> None:
        """The live feed's status events (gaps, resyncs, stale streams) since the last slice onto
        the ``feeds`` topic, keyed by symbol: the log says when the market's data was not the
        exchange's. (Its market data reached the venues through their sources.)"""
        assert self._live_feed is not None
        status = [(e.symbol, e) for e in self._live_feed.take() if isinstance(e, FeedStatus)]
        if status:
            self._log.bus.publish_many(FEEDS_TOPIC, status)

    def _engine_config(self, symbol: str) -> EngineConfig:
        """The exchange rules of ``symbol`` (what the execution worker builds its engine from)."""
        return _engine_config(self.config, self._queue, self._insts[symbol])

    def _wake(self, venue: _Venue) -> None:
        """Start (or wake) ``venue``'s exchange at the current time: its opening book goes onto
        the log and through the execution worker at once, so the book is there to read."""
        self._venues[venue.inst.symbol] = venue
        self._log.pump(self._log.sequence_market([venue.opening(self.now)]))
        self._fold_exec()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LiveMarket:
        """Run the market in a background (daemon) thread, paced at ``config.speed``."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            self._stop.clear()
            self._repace.clear()
            self._thread = threading.Thread(target=self._run, name="vtrade-live-market", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background thread (the market keeps its state; ``start`` resumes it) and,
        with a data dir, checkpoint."""
        self._stop.set()
        self._repace.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._thread = None
        self.checkpoint()

    def close(self) -> None:
        """Stop, checkpoint and let go of the data dir (another process may open it then).
        Reads keep working on what the market holds."""
        self.stop()
        if self._live_feed is not None:
            self._live_feed.stop()
        with self._lock:
            if self._durable is not None:
                self._durable.close()
                self._durable = None

    @property
    def durable(self) -> bool:
        """Whether the market keeps what happens in a data dir (see the module notes)."""
        return self._durable is not None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> LiveMarket:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def bus(self) -> Bus:
        """The event log this market runs on (its embedded memory bus by default; a replica's
        shared log, where its ``orders`` are, though it keeps what it derives in-process)."""
        return self._log.shared

    @property
    def consumer_groups(self) -> tuple[tuple[str, str], ...]:
        """The groups that read this market's log, with their topics (what ``/admin`` shows)."""
        return self._log.groups

    def _run(self) -> None:
        while True:
            with self._lock:
                # The embedded execution worker's heartbeat (``vtrade status``, ``/admin``): the
                # exchanges, or with remote execution their mirror (a replica's: its own copy).
                # Its state is in the market's checkpoints, not in snapshots of its own.
                kind = self.role if self.role != "solo" else "exec" if self._log.execution == "embedded" else "mirror"
                beat = Heartbeat(self._log.shared, kind, CheckpointedElsewhere(self._log.worker))
                beat.tick(self._log.worker.stats.applied, force=True)
            took_over = self._follow(beat) if self.role == "replica" else self._pace(beat)
            with self._lock:
                beat.stop(self._log.worker.stats.applied)  # stopped, not stale: it was asked to
            if not took_over:
                return

    def _pace(self, beat: Heartbeat) -> bool:
        """Run slices paced at ``config.speed`` until stopped."""
        # Sleeping on an event (not time.sleep) makes stop() and set_speed() prompt.
        pacer: Pacer | None = None
        while not self._stop.is_set():
            if pacer is None or self._repace.is_set():
                # (Re)anchor simulated time to wall time here, at the speed now configured.
                self._repace.clear()
                pacer = Pacer(self.config.speed, sleep=self._repace.wait)
                pacer.wait_until(self.now - self._skipped_ns)
            with self._lock:
                self._guarded(self._step)
                active = self.now - self._skipped_ns
                beat.tick(self._log.worker.stats.applied)
            if self._durable is not None and time.monotonic() - self._checkpoint_wall >= CHECKPOINT_S:
                self.checkpoint()
            if self.config.speed == 0:
                self._stop.wait(0.001)  # as fast as possible, but let readers take the lock
            else:
                pacer.wait_until(active)
        return False

    def _follow(self, beat: Heartbeat) -> bool:
        """A replica: fold the shared ``orders`` as it grows (the pacer's ticks run the slices)
        until stopped; True if it took the pacing over (its pacer stopped, see :meth:`take_over`)."""
        moved, checked = time.monotonic(), 0.0
        while not self._stop.is_set():
            with self._lock:
                before = self.now
                # A bounded batch under the lock: a replica catching up on a long log still
                # lets its readers in between.
                folded = self._guarded(lambda: self._catch_up(FOLD_BATCH))
                beat.tick(self._log.worker.stats.applied)
                if self.now != before:
                    moved = time.monotonic()
            if folded:
                continue
            now = time.monotonic()
            if now - moved > TAKE_OVER_AFTER_S and now - checked > 1.0:
                checked = now  # the clock stands still: is the pacer still there?
                if not pacer_running(self._log.shared, wait_s=0.0):
                    self.take_over()
                    return True
            self._log.wait_entries(0.2)  # woken by the next entry; the timeout notices stop()
        return False

    def take_over(self) -> None:
        """A replica whose pacer is gone paces the market from here: it folds the rest of the
        log, then runs the clock and puts the ticks on ``orders`` (its exchanges stay its own).
        Safe even if the old pacer was only slow: two pacers tick the same slice end, and every
        process runs a slice once (a tick for a slice already run is skipped)."""
        with self._lock:
            if self.role != "replica":
                raise RuntimeError(f"only a replica takes the pacing over; this market is a {self.role}")
            self._catch_up()
            self.role = "pacer"
            self._repace.set()  # the clock is anchored to wall time again from here
        _logger.warning("vtrade: the market's pacer is gone: this process paces it from %s", self.clock()["ts"])

    def _guarded(self, work: Callable[[], Any]) -> Any:
        try:
            return work()
        except Exception as exc:  # a half-applied slice: stop rather than run on inconsistent
            self.faults.append(f"market stopped: {type(exc).__name__}: {exc}")
            raise

    def advance(self, slices: int = 1) -> None:
        """Run ``slices`` slices now, synchronously (tests and notebooks; no pacing). A replica
        has no clock of its own: see :meth:`catch_up`."""
        if self.role == "replica":
            raise RuntimeError("a replica runs the slices its pacer puts on the log: call catch_up()")
        for _ in range(slices):
            with self._lock:
                self._step()

    def catch_up(self) -> int:
        """Fold every entry on ``orders`` now, running the slices the pacer's ticks among them
        call for; returns how many entries were folded (a replica's reads are then as of the
        pacer's last tick it saw)."""
        with self._lock:
            return self._catch_up()

    def _catch_up(self, limit: int = 10_000) -> int:
        return len(self._fold(self._log.entries(limit)))

    def _fold(self, records: list[Record]) -> dict[int, CommandOutcome | SignedOutcome | None]:
        """Fold ``records`` of ``orders`` in order; returns each one's answer by offset."""
        self._folding = True  # what the fold reads of accounts is what it has folded so far
        try:
            return {r.offset: self._apply_entry(r.event) for r in records}
        finally:
            self._folding = False

    def _step(self) -> None:
        """One slice. A pacer first puts its tick on ``orders`` and folds the log up to it: the
        slice runs at that place among the entries, in this process as in every replica."""
        if self.role == "pacer":
            self._enter(SliceTick(self.now + self._step_ns, time.time_ns()))
        else:
            self._slice()

    # ------------------------------------------------------------------ commands
    def open_account(
        self, account: str, cash: Number | None = None, *, account_kind: AccountKind | str = "cash"
    ) -> None:
        """Open ``account`` with ``cash`` (default ``config.default_cash``) as a ``"cash"`` or
        ``"margin"`` account (:mod:`vtrade.execution.knobs`); an existing one is an
        :class:`AccountTakenError`."""
        if not isinstance(account, str) or not account.strip():
            raise ValueError("an account needs a non-blank name")
        amount = cash_amount(self.config.default_cash if cash is None else cash)
        kind = account_kind_of(account_kind)
        with self._lock:
            if account.strip() in self._accounts or self._enter(OpenAccount(self.now, account.strip(), str(amount),
                                                                             kind)) is _NAME_TAKEN:  # fmt: skip
                raise AccountTakenError(f"account {account.strip()!r} is already open")

    def open_account_if_free(self, account: str) -> bool:
        """Open ``account`` (default cash, a cash account) unless the name is taken, by someone
        here or, on a log shared with other servers, by one of them a moment ago (the log's
        order decides); returns whether it was opened.

        >>> m = LiveMarket(LiveConfig(symbols=("XOM",), speed=0, bots=False, burn_in=20_000))
        >>> m.open_account_if_free("ada"), m.open_account_if_free("ada")
        (True, False)
        """
        try:
            self.open_account(account)
        except AccountTakenError:
            return False
        return True

    def version(self, account: str) -> int:
        """A counter that changes whenever ``account``'s orders or fills change (cheap polling)."""
        with self._lock:
            return self._account(account).version

    def has_account(self, account: str) -> bool:
        with self._lock:
            return self._known(account) is not None

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
        size_to_cash: bool = False,
        note: str = "",
    ) -> SubmitOutcome:
        """Validate, check the account rules and send an order; prices and sizes in units ($, shares).

        ``size_to_cash`` cuts an order buying power cannot pay for to what it can, instead of
        refusing it (:func:`vtrade.execution.accounts.size_to_cash`). ``note`` is the trader's
        note on the order (why they trade; a class may require one): it is kept with the order
        and shows in :meth:`orders`.

        Raises :class:`OrderInputError` (``.field``, ``.reason``) for malformed input: nothing
        is sent and nothing recorded. A refusal by the account rules returns ``ok=False`` with
        the reason and is recorded as a rejected order.

        >>> m = LiveMarket(LiveConfig(symbols=("XOM",), speed=0, bots=False, burn_in=20_000))
        >>> m.open_account("bo", cash=100)
        >>> m.submit("bo", "XOM", "buy", 100).reason
        'Not enough buying power: this order needs $8,...
        """
        if not isinstance(note, str):
            raise OrderInputError(ev.RejectCode.INVALID_NOTE, "note", f"A note must be text, got {type(note).__name__}")
        with self._lock:
            return self._submit(self._account(account), symbol, side, quantity, order_type, limit_price, tif,
                                stop_price=stop_price, post_only=post_only, size_to_cash=size_to_cash,
                                note=note)  # fmt: skip

    def _submit(self, acct: _Account, symbol: str, side: str | Side, quantity: Number,
                order_type: str | OrderType = "market", limit_price: Number | None = None,
                tif: str | TimeInForce = "day", *, stop_price: Number | None = None,
                post_only: bool = False, size_to_cash: bool = False, note: str = "") -> SubmitOutcome:  # fmt: skip
        """Validate, then the account rules, then the exchange: the one way in for people and simulated members."""
        order = submit_from_user(
            acct.name, acct.order_id(), symbol, side, order_type, quantity, limit_price, stop_price, tif=tif,
            post_only=post_only, size_to_cash=size_to_cash, ts=self.now, instruments=self._insts,
        )  # fmt: skip
        if note:
            order = msgspec.structs.replace(order, note=note)
        if acct.simulated:
            return self._send(acct, order)  # part of the deterministic market: recomputed, not entered
        outcome = self._enter(order)
        assert isinstance(outcome, CommandOutcome)
        return outcome

    def cancel(self, account: str, client_order_id: str) -> CancelOutcome:
        """Ask the exchange to cancel one of ``account``'s own open orders; others' are refused."""
        with self._lock:
            acct = self._account(account)
            o = acct.orders.get(client_order_id)
            if o is None or o.status not in OPEN_STATUSES:
                return self._cancel(acct, client_order_id)  # refused: nothing to enter
            outcome = self._enter(CancelOrder(self.now, acct.name, client_order_id, o.symbol))
            assert isinstance(outcome, CommandOutcome)
            return outcome

    def _cancel(self, acct: _Account, client_order_id: str) -> CancelOutcome:
        """A cancel at the broker: refused unless it names one of the account's open orders."""
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

    def close_session(self, account: str, *, cancel: bool = True) -> int:
        """A browser session left: the account goes idle and (``cancel``) its open orders are
        cancelled; returns how many. A durable market's returning browser passes ``cancel=False``."""
        with self._lock:
            acct = self._accounts.get(account)
            if acct is None or acct.bot or acct.simulated:
                return 0
            n = sum(o.status in OPEN_STATUSES for o in acct.orders.values()) if cancel else 0
            self._enter(CloseSession(self.now, account, cancel))
            return n

    # ------------------------------------------------------------------ the copilot's air-gap
    def register_key(self, account: str, public_key_hex: str) -> None:
        """Let the Ed25519 public key ``public_key_hex`` (64 lower-case hex digits) sign copilot
        intents for ``account`` from now on: an entry on the ``orders`` log, so a restart keeps it.
        A key that is not one is a ValueError (nothing entered); one already registered, a no-op."""
        if not valid_public_key(public_key_hex):
            raise ValueError(f"{public_key_hex!r} is not an Ed25519 public key (64 lower-case hex digits)")
        with self._lock:
            acct = self._account(account)
            if public_key_hex not in self._gate.keys.get(acct.name, ()):
                self._enter(RegisterKey(self.now, acct.name, public_key_hex))

    def submit_signed(self, account: str, intent_json: str, signature_hex: str, public_key_hex: str) -> SignedOutcome:
        """A person's signature over a copilot's intent: the only way a proposal trades (DESIGN §9).

        Entered on the ``orders`` log (stamped with the wall clock's ``received_ns``) and folded
        by the broker: the gate checks account, key, signature, expiry and nonce
        (:class:`~vtrade.copilot.airgap.Gate`), the intent's fields become an order as typed
        input would (:func:`~vtrade.execution.validation.submit_from_user`), and the account
        rules judge it like any order. Every verdict goes into :meth:`copilot_log` with the
        intent's digest. A refusal is an answer (``ok=False``, ``code``, ``reason``), not an
        exception; only a non-text argument (TypeError) or an unknown account raises.
        See :class:`~vtrade.runtime.live_copilot.SignedOutcome`.
        """
        problem = live_copilot.screen(intent_json, signature_hex, public_key_hex)
        with self._lock:
            acct = self._account(account)
            if problem is not None:  # too large or not text to journal: refused before the log
                return self._refuse_signed(acct.name, intent_json, "malformed", f"{problem}")
            entry = SignedOrder(self.now, acct.name, intent_json, signature_hex, public_key_hex, self._wall())
            outcome = self._enter(entry)
        assert isinstance(outcome, SignedOutcome)
        return outcome

    def refuse_signed(self, account: str, intent_json: str, code: str, reason: str) -> SignedOutcome:
        """Refuse a signed intent before the broker sees it (a class's copilot switched off):
        nothing is entered, the refusal goes into :meth:`copilot_log`."""
        if not isinstance(intent_json, str) or not isinstance(code, str) or not isinstance(reason, str):
            raise TypeError("the intent, code and reason of a refusal are text")
        with self._lock:
            return self._refuse_signed(self._account(account).name, intent_json, code, reason)

    def _refuse_signed(self, account: str, intent_json: str, code: str, reason: str) -> SignedOutcome:
        text = intent_json if live_copilot.screen(intent_json, "", "") is None else ""
        outcome, audit = live_copilot.refusal(account, self._wall(), text, code, reason)
        self._trail.record(self._log.bus, self._durable, audit)
        return outcome

    def record_copilot(self, event: Event) -> None:
        """Put one of the copilot service's audit events (``CopilotAsked``, ``CopilotAnswered``,
        ``ProposalMade``, ``IntentConfirmed``) on the ``copilot`` topic (journaled with a data
        dir). Any other type is a TypeError; executions and refusals are the broker's own. An
        event whose fields are not what its type says is a ValueError, an account this market
        does not have an :class:`UnknownAccountError`; nothing is recorded then."""
        checked = live_copilot.check_service_event(event)
        with self._lock:
            self._account(checked.account)  # type: ignore[attr-defined]
            self._trail.record(self._log.bus, self._durable, checked)

    def copilot_log(self, account: str | None = None, *, since: int = 0) -> pd.DataFrame:
        """The copilot's audit trail (``account``'s, or everyone's), one row per event in log
        order from offset ``since``: ``offset, ts`` (UTC), ``type`` (``CopilotAsked``,
        ``CopilotAnswered``, ``ProposalMade``, ``IntentConfirmed``, ``IntentExecuted``,
        ``IntentRefused``), ``account, conversation, digest, proposal_id``, ``code`` (a
        refusal's code; ``executed`` or ``account_rules`` for an execution; why an answer was
        refused), ``text`` (the question, the answer, the proposal in words, the reason),
        ``client_order_id, accepted, flags, tools, model``; None where an event has no such field.

        >>> m = LiveMarket(LiveConfig(symbols=("XOM",), speed=0, bots=False, burn_in=20_000))
        >>> m.open_account("ada")
        >>> m.submit_signed("ada", '{"buy": "everything"}', "", "").code
        'malformed'
        >>> m.copilot_log("ada")[["type", "account", "code", "digest"]].values.tolist()
        [['IntentRefused', 'ada', 'malformed', None]]
        """
        with self._lock:
            return live_copilot.CopilotTrail.frame(self._log.bus, account, since=since)

    def _fold_signed(self, acct: _Account, e: SignedOrder) -> SignedOutcome:
        outcome, audit = live_copilot.fold_signed(self._gate, e, order_id=acct.order_id(), instruments=self._insts,
                                                  send=lambda order: self._send(acct, order))  # fmt: skip
        self._trail.record_verdict(self._log.bus, self._durable, audit)
        return outcome

    def preview(
        self,
        account: str,
        symbol: str,
        side: str | Side,
        quantity: Number,
        order_type: str | OrderType = "market",
        limit_price: Number | None = None,
        tif: str = "day",
    ) -> Preview:
        """The estimated fill of an order against the current book, and the reason the account
        rules would refuse it if sent now (``refusal``); raises OrderInputError like submit."""
        with self._lock:
            acct = self._account(account)
            o = submit_from_user(acct.name, "preview", symbol, side, order_type, quantity, limit_price,
                                 tif=tif, ts=self.now, instruments=self._insts)  # fmt: skip
            venue = self._venue(o.symbol)
            engine = self._engine_of(o.symbol)
            book = engine.book
            top = book.top(50)
            far_px, far_sz = (top.ask_px, top.ask_sz) if o.side is Side.BUY else (top.bid_px, top.bid_sz)
            levels = list(zip(far_px.tolist(), far_sz.tolist(), strict=True))
            bid, bid_sz, ask, ask_sz = book.touch()
            return self.broker.preview(
                o, levels=levels, mid2=book.mid2(), marks=self._mark_ticks, used=engine.used,
                market=MarketStatus.at(venue.inst, o.ts, halted=engine.halted),
                bid=bid if bid_sz else None, ask=ask if ask_sz else None, last=engine.last_trade,
            )  # fmt: skip

    # ------------------------------------------------------------------ the teacher's market events
    def shock(self, symbols: Iterable[str] | str, pct: Number, *, id: str) -> bool:
        """Move every one of ``symbols`` by ``pct`` per cent now, for good (-90 < pct <= 200, not 0).

        An entry on the ``orders`` log like an order, so every student sees it on the same tape,
        a data dir keeps it and a restart re-runs it at the same slice. ``id`` is the caller's
        name for this event: an id already applied is a no-op returning False (a class may
        replay its own events). Book, quotes, marks and NAVs move at once.

        How each venue moves: a universe stock's path is shifted in log price (its later
        intraday prices and every later open and close too); a synthetic or capture symbol's
        book is shifted by the same number of ticks everywhere (``pct`` of the mid now), and its
        agent flow or recording goes on around the new level (it is seen shifted, not re-run).

        >>> m = LiveMarket(LiveConfig(symbols=("XOM",), speed=0, bots=False, burn_in=20_000))
        >>> before = m.quotes(["XOM"]).mid.iloc[0]
        >>> m.shock(["XOM"], -10, id="oil-glut")
        True
        >>> round(float(m.quotes(["XOM"]).mid.iloc[0] / before - 1), 2)
        -0.1
        >>> m.shock(["XOM"], -10, id="oil-glut")  # the same id: nothing happens
        False
        """
        key = _intervention_id(id)
        change = _shock_pct(pct)
        with self._lock:
            names = self._symbol_list(symbols)
            if key in self._interventions:
                return False
            self._enter(MarketShock(self.now, key, names, str(change)))
            return True

    def halt(self, symbol: str, reason: str = "", *, id: str) -> bool:
        """Halt trading in ``symbol`` until :meth:`resume_trading` (``reason`` is for students).

        The halt goes to the symbol's exchange as a market event on the sequenced log; orders
        are refused (``"Trading in XOM is halted; ..."``), resting ones wait, the quote freezes
        (a synthetic or capture book gets no flow). Halting a halted symbol is a ValueError; a
        repeated ``id`` is a no-op returning False.

        >>> m = LiveMarket(LiveConfig(symbols=("XOM",), speed=0, bots=False, burn_in=20_000))
        >>> m.open_account("ada")
        >>> m.halt("XOM", "news pending", id="h1")
        True
        >>> m.submit("ada", "XOM", "buy", 1).reason
        'Trading in XOM is halted; orders are refused until it resumes'
        >>> m.resume_trading("XOM", id="r1"), m.submit("ada", "XOM", "buy", 1).ok
        (True, True)
        """
        key = _intervention_id(id)
        if not isinstance(reason, str):
            raise ValueError(f"a halt's reason must be text, got {type(reason).__name__}")
        with self._lock:
            (name,) = self._symbol_list([symbol])
            if key in self._interventions:
                return False
            if name in self._halted:
                raise ValueError(f"trading in {name} is already halted")
            self._enter(TradingHalt(self.now, key, name, True, reason.strip()))
            return True

    def resume_trading(self, symbol: str, *, id: str) -> bool:
        """Resume trading in a halted ``symbol``: orders are taken again and a universe stock's
        quote gaps to where its path is now. A symbol not halted is a ValueError; a repeated
        ``id`` is a no-op returning False (see :meth:`halt`)."""
        key = _intervention_id(id)
        with self._lock:
            (name,) = self._symbol_list([symbol])
            if key in self._interventions:
                return False
            if name not in self._halted:
                raise ValueError(f"trading in {name} is not halted")
            self._enter(TradingHalt(self.now, key, name, False))
            return True

    def drought(self, symbols: Iterable[str] | str, factor: Number, duration: str | int, *, id: str) -> bool:
        """Thin the displayed depth of ``symbols`` to ``factor`` (0 < factor < 1) of normal for
        ``duration`` of simulated time (``"30min"``, ``"1h"`` or ns), then back to normal.

        Every level of the book is thinner (each keeps at least one lot), so a large order walks
        further; spreads and prices are untouched. A universe stock's synthesised depth is
        scaled; a synthetic or capture book is shown scaled while its flow goes on as it would
        (the full book comes back when the drought ends). Droughts on one symbol multiply. The
        drought ends at the first slice at or after its end (the clock may jump over a night).
        A repeated ``id`` is a no-op returning False.

        >>> m = LiveMarket(LiveConfig(symbols=("XOM",), speed=0, bots=False, burn_in=20_000))
        >>> m.drought(["XOM"], 0.25, "10s", id="dry")
        True
        """
        key = _intervention_id(id)
        scale = _drought_factor(factor)
        ns = _drought_ns(duration)
        with self._lock:
            names = self._symbol_list(symbols)
            if key in self._interventions:
                return False
            self._enter(LiquidityDrought(self.now, key, names, str(scale), ns))
            return True

    def symbols_in(self, sector: str) -> list[str]:
        """The symbols of ``sector`` (case-insensitive; a sector ETF counts in its sector), to
        shock a whole sector; an unknown sector is a ValueError listing :meth:`sectors`.

        >>> m = LiveMarket(LiveConfig(symbols=("XOM", "AAPL"), speed=0, bots=False, burn_in=20_000))
        >>> m.symbols_in("energy")
        ['XOM']
        """
        if not isinstance(sector, str) or not sector.strip():
            raise ValueError(f"a sector is a non-blank name, got {sector!r}")
        want = sector.strip().casefold()
        out = [s for s, sec in zip(self._symbols, self._sectors, strict=True) if str(sec).casefold() == want]
        if not out:
            raise ValueError(f"unknown sector {sector!r}; this market's sectors are {', '.join(self.sectors())}")
        return out

    def sectors(self) -> list[str]:
        """Every sector of this market's symbols, sorted."""
        return sorted({str(s) for s in self._sectors if s})

    def set_speed(self, speed: float) -> None:
        """Pace the market at ``speed`` simulated seconds per wall second from now on (0 = as
        fast as possible), running or not. Pacing only: what happens in the market is the same
        at any speed (a data dir's market is the same market).

        >>> m = LiveMarket(LiveConfig(symbols=("XOM",), speed=0, bots=False, burn_in=20_000))
        >>> m.set_speed(60)
        >>> m.clock()["speed"]
        60
        """
        if isinstance(speed, bool):
            raise ValueError(f"speed must be a finite number >= 0, got {speed!r}")
        with self._lock:
            self.config = replace(self.config, speed=speed)  # LiveConfig checks it
        self._repace.set()  # the running thread re-anchors its pacer at once

    def interventions(self) -> pd.DataFrame:
        """The teacher's market events applied so far, oldest first: ``id, ts, kind`` ('shock',
        'halt', 'resume', 'drought'), ``symbols`` and ``detail`` (what it did, in words).

        >>> m = LiveMarket(LiveConfig(symbols=("XOM",), speed=0, bots=False, burn_in=20_000))
        >>> m.shock("XOM", 5, id="rally")
        True
        >>> m.interventions()[["id", "kind", "symbols", "detail"]].values.tolist()
        [['rally', 'shock', ['XOM'], '5% price shock']]
        """
        with self._lock:
            rows = list(self._interventions.values())
        return pd.DataFrame({
            "id": [e.id for e in rows],
            "ts": pd.to_datetime([e.ts for e in rows], unit="ns", utc=True),
            "kind": [_kind(e) for e in rows],
            "symbols": [list(e.symbols) if isinstance(e, MarketShock | LiquidityDrought) else [e.symbol]
                        for e in rows],
            "detail": [_detail(e) for e in rows],
        })  # fmt: skip

    def _symbol_list(self, symbols: Iterable[str] | str) -> tuple[str, ...]:
        """``symbols`` as this market's names, once each, in order (one name alone is fine);
        an unknown one raises :class:`UnknownSymbolError`."""
        items = [symbols] if isinstance(symbols, str) else list(symbols)
        if not items:
            raise ValueError("name at least one symbol")
        out: list[str] = []
        for s in items:
            if not isinstance(s, str):
                raise unknown_symbol(s, self._symbols)
            name = s.strip().upper()
            if name not in self._col:
                raise unknown_symbol(s, self._symbols)
            out.append(name)
        return tuple(dict.fromkeys(out))

    def _intervene(self, e: Intervention) -> None:
        """Apply a teacher's market event now (the same on the live path and in a re-run)."""
        if isinstance(e, MarketShock):
            self._shock(e)
        elif isinstance(e, TradingHalt):
            self._halt(e)
        else:
            self._droughts.append((e.ts + e.duration_ns, e.id, e.symbols, float(Decimal(e.factor))))
            self._set_depth(e.symbols)

    def _shock(self, e: MarketShock) -> None:
        pct = Decimal(e.pct)
        u0 = self._uni0
        stocks = [self._col[s] - u0 for s in e.symbols if self._col[s] >= u0]
        if stocks:
            assert self.universe is not None
            self.universe.shift(np.array(stocks), math.log1p(float(pct) / 100))
        books: list[MarketEvent] = []
        for s in e.symbols:
            v = self._venues.get(s)
            if isinstance(v, _FlowVenue):
                # A level shift in ticks: pct of the mid now (the far levels move by as many ticks).
                mark = self._mark_ticks(s)
                k = int((Decimal(mark) * pct / 100).to_integral_value()) if mark else 0
                books.append(v.look(v.shift + k, v.scale, v.source_book(self._engine_of(s)), self.now))
        self._restate(e.symbols, books)

    def _halt(self, e: TradingHalt) -> None:
        venue = self._venue(e.symbol)  # a sleeping stock wakes: its exchange holds the halt
        venue.halted = e.halted
        if e.halted:
            self._halted[e.symbol] = e.reason
        else:
            self._halted.pop(e.symbol, None)
        status = TradingStatus(self.now, self.now, e.symbol, 0, e.halted, e.reason)
        # On resume a universe stock's book gaps to its path (restated after the status).
        self._restate(() if e.halted else (e.symbol,), [status])

    def _set_depth(self, symbols: tuple[str, ...]) -> None:
        """Displayed depth of ``symbols`` as the droughts in force say (their factors multiply)."""
        factor: dict[str, float] = {}
        for _, _, names, f in self._droughts:
            for s in names:
                factor[s] = factor.get(s, 1.0) * f
        u0 = self._uni0
        if self.universe is not None and any(self._col[s] >= u0 for s in symbols):
            full = np.ones(len(self._symbols) - u0)
            for s, f in factor.items():
                if self._col[s] >= u0:
                    full[self._col[s] - u0] = f
            self.universe.set_depth_factor(full)
        books: list[MarketEvent] = []
        for s in symbols:
            v = self._venues.get(s)
            if isinstance(v, _FlowVenue) and factor.get(s, 1.0) != v.scale:
                books.append(v.look(v.shift, factor.get(s, 1.0), v.source_book(self._engine_of(s)), self.now))
        self._restate(symbols, books)

    def _end_droughts(self) -> None:
        ended = [d for d in self._droughts if d[0] <= self.now]
        self._droughts = [d for d in self._droughts if d[0] > self.now]
        self._set_depth(tuple(dict.fromkeys(s for d in ended for s in d[2])))

    def _restate(self, symbols: Iterable[str], events: list[MarketEvent]) -> None:
        """Within a slice, through the sequenced log: ``events``, then the path's book of every
        awake, trading universe stock of ``symbols``; then quotes and marks show it at once."""
        out = list(events)
        for s in symbols:
            v = self._venues.get(s)
            if isinstance(v, _PathVenue) and not v.halted:
                out.append(v.opening(self.now))
        if out:
            self._log.pump(self._log.sequence_market(out))
            self._fold_exec()
        self._quotes_cache, self._top_cache = None, {}
        self._sample(again=True)

    # ------------------------------------------------------------------ reads
    def symbols(self) -> list[str]:
        """Every tradable symbol: the flow venues first, then the universe."""
        return list(self._symbols)

    def featured(self) -> list[str]:
        """The default watchlist: the best-known names this market trades."""
        out = [s for s in FEATURED if s in self._col]
        return out or self._symbols[:12]

    def instrument(self, symbol: str) -> Instrument:
        """The instrument behind ``symbol`` (KeyError naming what trades, if unknown)."""
        if symbol not in self._insts:
            raise unknown_symbol(symbol, self._symbols)
        return self._insts[symbol]

    def suggested_quantity(self, symbol: str) -> str:
        """A sensible first quantity for the ticket: a round lot of a stock (100 shares), a few
        hundred dollars' worth of anything traded in fractions (0.01 BTC)."""
        inst = self.instrument(symbol)
        if inst.lot_size >= 1:
            return "100"
        mark = self._mark_ticks(symbol)
        price = float(inst.price_grid.to_decimal(mark)) if mark else 1.0
        lots = max(1, round(500 / price / float(inst.lot_size)))
        return str(inst.size_grid.to_decimal(lots).normalize())

    def quotes(self, symbols: Iterable[str] | None = None) -> pd.DataFrame:
        """The watchlist: one row per symbol (all, or ``symbols`` in that order) with name, sector,
        bid/ask and sizes, last, mid, change % (vs the previous close; capture and synthetic
        venues vs their first mid) and spread in bps. Built once per slice, shared by all views."""
        if symbols is not None:
            # A watchlist's dozen rows straight from the arrays: building all 500 to pick a dozen
            # was most of a dashboard refresh's quote cost.
            wanted = list(dict.fromkeys(symbols))
            unknown = [s for s in wanted if s not in self._col]
            if unknown:
                raise unknown_symbol(unknown[0], self._symbols)
            with self._lock:
                # Every session with the same watchlist gets the same frame until the market moves.
                rows = np.array([self._col[s] for s in wanted], dtype=np.intp)
                frame: pd.DataFrame = self._shared_read(("quotes", *wanted), lambda: self._quotes_frame(rows))
                return frame
        with self._lock:
            cached = self._quotes_cache
            if cached is None or cached[0] != self._slices:
                cached = self._quotes_cache = (self._slices, self._quotes_frame())
        return cached[1]

    def depth(self, symbol: str, levels: int = 10, account: str | None = None) -> pd.DataFrame:
        """Top ``levels`` per side, best first: ``side, price, size`` and ``mine`` (lots of
        ``account``'s own open limit orders resting at that price). The book of an account with
        no order resting in ``symbol`` is everyone's: one frame shared until the market moves."""
        with self._lock:
            venue = self._venue(symbol)
            venue.idle = 0
            if account is None or not any(o.symbol == symbol and o.limit_price is not None and o.leaves
                                          for o in self._account(account).orders.values()):  # fmt: skip
                frame: pd.DataFrame = self._shared_read(("depth", symbol, levels),
                                                        lambda: self._depth_frame(venue, symbol, levels, None))
                return frame
            return self._depth_frame(venue, symbol, levels, account)

    def _depth_frame(self, venue: _Venue, symbol: str, levels: int, account: str | None) -> pd.DataFrame:
        with self._lock:
            key = (symbol, levels)
            cached = self._top_cache.get(key)
            if cached is None or cached[0] != self._slices:
                top = self._engine_of(symbol).book.top(levels)
                rows = [("ask", int(p), int(s)) for p, s in zip(top.ask_px, top.ask_sz, strict=True)]
                rows += [("bid", int(p), int(s)) for p, s in zip(top.bid_px, top.bid_sz, strict=True)]
                cached = self._top_cache[key] = (self._slices, rows)
            rows = list(cached[1])
            mine: dict[tuple[str, int], int] = {}
            if account is not None:
                for o in self._account(account).orders.values():
                    if o.symbol == symbol and o.limit_price is not None and o.leaves:
                        key2 = ("bid" if o.side is Side.BUY else "ask", o.limit_price)
                        mine[key2] = mine.get(key2, 0) + o.leaves
        px, sz = venue.inst.price_grid.to_float, venue.inst.size_grid.to_float
        # Own orders away from the displayed levels still show, at their price.
        shown = {(side, p) for side, p, _ in rows}
        rows += [(side, p, 0) for (side, p) in mine if (side, p) not in shown]
        # Highest price first (a stable sort in Python: pandas' sort_values cost more than the rows).
        rows.sort(key=lambda r: -r[1])
        return pd.DataFrame({
            "side": [r[0] for r in rows], "price": [px(r[1]) for r in rows], "size": [sz(r[2]) for r in rows],
            "mine": [sz(mine.get((r[0], r[1]), 0)) for r in rows],
        })  # fmt: skip

    def prices(self, symbol: str, since: pd.Timestamp | int | None = None) -> pd.DataFrame:
        """Price samples of ``symbol`` (one per slice, the last ``history``) after ``since``:
        ``ts, bid, ask, mid, last``."""
        c = self.price_columns(symbol, since)
        return pd.DataFrame({"ts": pd.DatetimeIndex(c["ts"]).tz_localize("UTC"), "bid": c["bid"], "ask": c["ask"],
                             "mid": c["mid"], "last": c["last"]})  # fmt: skip

    def price_columns(self, symbol: str, since: pd.Timestamp | int | None = None) -> dict[str, np.ndarray]:
        """:meth:`prices` as arrays, ``ts`` as naive ``datetime64[ns]`` in UTC: what a chart
        streams each refresh (a DataFrame per session and refresh cost more than the samples)."""
        cut = None if since is None else (since.value if isinstance(since, pd.Timestamp) else int(since))
        with self._lock:
            if symbol not in self._col:
                raise unknown_symbol(symbol, self._symbols)
            j, h, n = self._col[symbol], self.config.history, self._hist_n
            order = np.arange(n - min(n, h), n) % h
            if cut is not None:  # only the samples after ``since`` are gathered
                order = order[int(np.searchsorted(self._hist_ts[order], cut, side="right")):]
            ts = self._hist_ts[order]
            bid, ask, last = (a[order, j].astype(float) for a in (self._hist_bid, self._hist_ask, self._hist_last))
        return {"ts": ts.view("M8[ns]"), "bid": bid, "ask": ask, "mid": (bid + ask) / 2, "last": last}

    def orders(self, account: str) -> pd.DataFrame:
        """``account``'s orders (:data:`vtrade.execution.tables.ORDERS`), oldest first, with status,
        fills and the reason of a refusal."""
        with self._lock:
            acct = self._account(account)
            rows = list(acct.orders.values())
        return orders_frame(rows, self._insts)

    def fills(self, account: str) -> pd.DataFrame:
        """``account``'s fills (:data:`vtrade.execution.tables.FILLS`), oldest first, each with its
        receipt (arrival mid, slippage, fee, liquidity, queue ahead, model)."""
        with self._lock:
            fills = list(self._account(account).fills)
        return fills_frame(fills, self._insts)

    def portfolio(self, account: str, *, tables: bool = True) -> dict[str, Any]:
        """``{"summary": {nav, cash, pnl, ...}, "positions": DataFrame, "sectors": DataFrame}``;
        positions as :data:`vtrade.execution.tables.POSITIONS`. ``tables=False``: the summary
        alone (about a tenth of the cost: a dashboard refreshes the tables less often)."""
        with self._lock:
            acct = self._account(account)
            ledger = self.book.ledgers[acct.name]
            summary = self.book.stats(acct.name)  # numbers, not a one-row frame: asked for every refresh
            summary["initial_cash"] = float(ledger.initial_cash)
            summary["pnl"] = summary["nav"] - summary["initial_cash"]
            summary["realized_pnl"] = float(ledger.realized_pnl())
            summary["fees"] = float(ledger.fees_paid)
            summary["buying_power"] = float(self.broker.buying_power(acct.name, self._mark_ticks))
            if not tables:
                return {"summary": summary}
            return {
                "summary": summary,
                "positions": self.book.positions(acct.name),
                "sectors": self.book.sectors(acct.name).reset_index(),
            }

    def nav_history(self, account: str, since: pd.Timestamp | int | None = None) -> pd.DataFrame:
        """``account``'s NAV samples (after ``since``, if given): ``ts, nav``."""
        c = self.nav_columns(account, since)
        return pd.DataFrame({"ts": pd.DatetimeIndex(c["ts"]).tz_localize("UTC"), "nav": c["nav"]})

    def nav_columns(self, account: str, since: pd.Timestamp | int | None = None) -> dict[str, np.ndarray]:
        """:meth:`nav_history` as arrays, ``ts`` as naive ``datetime64[ns]`` in UTC (what the
        NAV chart streams each refresh)."""
        cut = None if since is None else (since.value if isinstance(since, pd.Timestamp) else int(since))
        with self._lock:
            nav = self._account(account).nav
            if cut is None:
                rows = list(nav)
            else:  # newest last: walk back only over what is new
                rows = []
                for row in reversed(nav):
                    if row[0] <= cut:
                        break
                    rows.append(row)
                rows.reverse()
        ts = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return {"ts": ts.view("M8[ns]"), "nav": np.fromiter((r[1] for r in rows), dtype=float, count=len(rows))}

    def margin_calls(self, account: str) -> pd.DataFrame:
        """``account``'s margin calls, oldest first: ``ts``, ``equity`` and ``requirement`` (at the
        marks of the call), the liquidation ``orders`` (client order ids) and the ``reason``."""
        with self._lock:
            calls = list(self._account(account).margin_calls)
        df = pd.DataFrame({
            "ts": pd.to_datetime([c.ts for c in calls], unit="ns", utc=True),
            "equity": [float(c.status.equity) for c in calls],
            "requirement": [float(c.status.maintenance_requirement) for c in calls],
            "orders": [[o.client_order_id for o in c.orders] for c in calls],
            "reason": [c.reason for c in calls],
        })  # fmt: skip
        return df

    def instruments(self) -> list[Instrument]:
        """Every instrument this market lists (what a class's allowed sectors resolve against)."""
        return list(self._insts.values())

    def portfolio_value(self, account: str) -> float:
        """``account``'s NAV now, marked at mid (cheaper than :meth:`portfolio`: no tables)."""
        with self._lock:
            self._account(account)
            return float(self.book.navs([account])[0])

    def portfolio_values(self, accounts: Iterable[str]) -> dict[str, float]:
        """The NAV now of each of ``accounts`` (one pass over the book: a class's roster)."""
        names = list(accounts)
        with self._lock:
            for a in names:
                self._account(a)
            return dict(zip(names, self.book.navs(names).tolist(), strict=True)) if names else {}

    def order_counts(self, account: str) -> tuple[int, int]:
        """``(placed, refused)``: orders the account placed that the rules let through, and those
        they refused — a roster's columns, without building the blotter's table."""
        with self._lock:
            orders = self._account(account).orders.values()
            refused = sum(o.status == "rejected" for o in orders)
            return len(orders) - refused, refused

    def set_limits(self, limits: SessionLimits) -> bool:
        """The class's account rules from now on (a teacher changed a rule that is not
        economics: the trades-per-day cap, the allowed universe, a position limit): an entry on
        the ``orders`` log, so a restart re-runs every order under the rules it met. Returns
        False (nothing entered) when the rules are already these; other limits (borrow rates)
        keep their values."""
        if not isinstance(limits, SessionLimits):
            raise TypeError(f"limits must be SessionLimits, got {type(limits).__name__}")
        entry = SetLimits(
            0, tuple(sorted(limits.allowed_symbols)) if limits.allowed_symbols is not None else None,
            _text(limits.max_position_pct_nav), limits.max_orders_per_day, _text(limits.min_share_price),
            limits.shorting_allowed,
        )  # fmt: skip
        with self._lock:
            if _limits_entry(self.broker.limits) == entry:
                return False
            self._enter(msgspec.structs.replace(entry, ts=self.now))
            return True

    def leaderboard(self) -> pd.DataFrame:
        """Class members (people and the simulated traders) ranked by NAV: no orders or
        positions, only what a class may see."""
        with self._lock:
            names = [a for a, acct in self._accounts.items() if not acct.bot]
            if not names:
                return pd.DataFrame(columns=["nav", "return_pct", "simulated"])
            navs = self.book.navs(names)
            init = {a: float(self.book.ledgers[a].initial_cash) for a in names}
            simulated = [self._accounts[a].simulated for a in names]
        df = pd.DataFrame({"nav": navs}, index=pd.Index(names, name="account"))
        df["return_pct"] = [(df.nav[a] / init[a] - 1) * 100 if init[a] else 0.0 for a in df.index]
        df["simulated"] = simulated
        return df.sort_values("nav", ascending=False)

    def clock(self) -> dict[str, Any]:
        """Simulated time, speed, realism, queue model and the universe's replay day (badge)."""
        with self._lock:
            now, wall = self.now, self._slice_wall
            day = self._replay_day()
        return {
            "ts": pd.Timestamp(now, unit="ns", tz="UTC"),
            "wall": wall,
            "elapsed_s": (now - self.start_ts) / 1e9,
            "speed": self.config.speed,
            "realism": self.config.realism,
            "queue": self.config.queue if isinstance(self.config.queue, str) else repr(self.config.queue),
            "day": day,
            "running": self.running,
            "faults": list(self.faults[-3:]),
            "live": self._live_feed.status() if self._live_feed is not None else None,
        }

    # ------------------------------------------------------------------ the slice
    def _slice(self) -> None:
        end = self.now + self._step_ns
        if self.universe is not None:
            self.universe.step()
        self._log.slice({s: v.events_until(end, self._step_ns) for s, v in list(self._venues.items())}, end)
        if self._live_feed is not None:
            self._publish_feed_status()
        self.now = end
        self._fold_exec()
        self._slices += 1
        self._sample()
        if self._droughts and min(d[0] for d in self._droughts) <= self.now:
            self._end_droughts()  # at the end of the slice that reaches it: depth is normal from here
        self._margin_calls()
        for strategy, desk, every, phase in self._participants:
            if self._slices % every == phase:
                strategy(desk)
        if self._feed is not None:
            self._feed_step()
        if self._day_bounds is not None and self.now >= self._day_bounds[1]:
            if self._feed is not None:
                self._feed_session_close()
            self._next_day()
            self._sample()  # the opening quotes (the overnight gap) show at once
        if self._slices % 60 == 0:
            self._retire_idle()
            if self._feed is not None:
                self._feed_retain()
        self._slice_wall = time.time()

    def _fold_exec(self) -> None:
        """Fold the execution reports the worker published into the broker and the account views."""
        for e in self._log.reports():
            self._on_exec(e)
        self._changed()  # a fill moves cash, positions and NAVs (a class's leaderboard)

    def _changed(self) -> None:
        """Anything a read shows may have changed: shared reads are built again on demand."""
        self._epoch += 1
        self._reads.clear()

    def epoch(self) -> int:
        """A counter that moves whenever anything the market shows may have changed (a slice, a
        fill, an entry, a teacher's event): a view may reuse what it built from the market while
        it stays the same."""
        with self._lock:
            return self._epoch

    def _shared_read(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """``build()``, shared by every caller until the market next changes (call with the lock)."""
        if key not in self._reads:
            self._reads[key] = build()
        return self._reads[key]

    def _open_day(self, day: int) -> None:
        """Start the universe's session ``day``: the clock moves to its open (closed hours are
        skipped, in the pacer and in the flow venues' clocks alike) and prices gap to the open."""
        assert self.universe is not None
        when = self._trading_day(day)
        bounds = calendar.session_bounds(when)
        assert bounds is not None
        open_ns, close_ns = bounds
        close = self.universe.prices()  # the path ended the session on the real close
        if day > 0:
            gap = max(open_ns - self.now, 0)
            self._skipped_ns += gap
            for v in self._flow:
                v.offset += gap
            self.now = open_ns
        self.universe.open_day(day, steps=max(1, -(-(close_ns - open_ns) // self._step_ns)))
        self._day_bounds = (open_ns, close_ns)
        u0 = self._uni0
        # "Change" is against the previous close (for day 0, the real close before the replay).
        self._ref[u0:] = self.universe.previous_close() if day == 0 else close
        self.book.nav.start_day()

    def _next_day(self) -> None:
        assert self.universe is not None
        self._open_day(self.universe.day + 1)

    def _trading_day(self, day: int) -> date:
        """The calendar date of replay day ``day``: the data's, then the NYSE trading days after it."""
        if day < len(self._day_dates):
            return self._day_dates[day]
        d = self._day_dates[-1]
        extra = day - len(self._day_dates) + 1
        while extra:
            d = date.fromordinal(d.toordinal() + 1)
            if calendar.is_trading_day(d):
                extra -= 1
        return d

    def _replay_day(self) -> str | None:
        if self.universe is None:
            return None
        day = self.universe.day
        label = self._trading_day(day).isoformat()
        return label if day < len(self._day_dates) else f"{label} (beyond the data: random walk)"

    def _retire_idle(self) -> None:
        """Put to sleep the engines of universe stocks nobody has orders in or looks at (each
        costs a book per slice); the next reader or order wakes them at the current quote."""
        busy = {o.symbol for a in self._accounts.values() for o in a.orders.values() if o.leaves}
        for symbol, v in list(self._venues.items()):
            if not isinstance(v, _PathVenue):
                continue
            # A halted stock stays awake: its exchange holds the halt and its frozen book.
            v.idle = 0 if (symbol in busy or symbol in self._halted or self._log.holds(symbol)) else v.idle + 60
            if v.idle >= 600:
                # Dormant, not dropped: the engine keeps its fill sequence, so fill ids stay unique.
                self._dormant[symbol] = v
                del self._venues[symbol]
                self._top_cache = {k: c for k, c in self._top_cache.items() if k[0] != symbol}

    def _on_exec(self, e: ev.ExecEvent) -> None:
        acct = self._accounts.get(e.account)
        o = acct.orders.get(e.client_order_id) if acct is not None else None
        if acct is None or o is None:
            return  # not ours (cannot happen: only our accounts send orders)
        acct.version += 1
        if not acct.bot:
            self.broker.on_exec(e)
            if isinstance(e, ev.OrderFilled):
                self._book_fill(acct, e)
        o = acct.orders[e.client_order_id] = o.after(e)
        if acct.bot and o.status not in OPEN_STATUSES:
            del acct.orders[o.client_order_id]  # nobody reads a simulated participant's history

    def _book_fill(self, acct: _Account, e: ev.OrderFilled) -> None:
        """A class member's fill: into the ledger and NAV view, and the receipt into the blotter."""
        self._held[self._col[e.symbol]] = True
        try:
            self.book.apply(e)
        except ArithmeticError as exc:
            # The exact ledger refused to round (see the report on issue 5): keep the market
            # running and say so, rather than kill every session's feed.
            self.faults.append(f"{e.account}: fill {e.fill_id} not booked: {type(exc).__name__}")
        acct.fills.append(e)
        if self._feed is not None and not acct.simulated:
            inst, order = self._insts[e.symbol], acct.orders[e.client_order_id]
            self._publish_feed(e.account, FillBooked(
                self.now, e.account, e.fill_id, e.client_order_id, e.symbol, "buy" if e.side is Side.BUY else "sell",
                inst.size_grid.to_float(e.quantity), inst.price_grid.to_float(e.price), str(e.liquidity),
                float(e.slippage_bps), str(order.order_type), order.note,
            ))  # fmt: skip

    def _sample(self, *, again: bool = False) -> None:
        """After a slice: every touch into the arrays, marks into the portfolio book (one batch),
        the price history, NAV samples. ``again``: the books were restated within the slice (a
        teacher's market event): the latest price sample is replaced, no NAV sample is added."""
        u0 = self._uni0
        # A halted stock's quote is frozen where the halt found it (its exchange gets no data either).
        frozen = np.array([self._col[s] for s in self._halted if self._col[s] >= u0], dtype=np.int64)
        kept = [a[frozen].copy() for a in (self._bid, self._ask, self._bid_sz, self._ask_sz)]
        for j, v in enumerate(self._flow):
            engine = self._engine_of(v.inst.symbol)
            self._bid[j], self._bid_sz[j], self._ask[j], self._ask_sz[j] = engine.book.touch()
            self._last[j] = engine.last_trade or 0
        if self.universe is not None:
            bid, ask, bid_sz, ask_sz = self.universe.touch()
            self._bid[u0:], self._ask[u0:] = bid, ask
            self._bid_sz[u0:], self._ask_sz[u0:] = bid_sz, ask_sz
            if frozen.size:
                self._bid[frozen], self._ask[frozen], self._bid_sz[frozen], self._ask_sz[frozen] = kept
            self._last[u0:] = 0
            for symbol, pv in self._venues.items():
                if isinstance(pv, _PathVenue) and (last_trade := self._engine_of(symbol).last_trade):
                    self._last[self._col[symbol]] = last_trade
        bid = np.where(self._bid_sz > 0, self._bid * self._tick, np.nan)
        ask = np.where(self._ask_sz > 0, self._ask * self._tick, np.nan)
        mid = (bid + ask) / 2
        last = np.where(self._last > 0, self._last * self._tick, mid)
        for j, v in enumerate(self._flow):
            if v.open_mid is None and math.isfinite(mid[j]):
                v.open_mid = self._ref[j] = mid[j]
        # Only what someone holds moves a NAV: marking the rest would cost a pass over every account.
        self.book.mark(np.where(self._held, mid, np.nan), ts=self.now)
        slot = (self._hist_n - again) % self.config.history
        self._hist_ts[slot] = self.now
        self._hist_bid[slot], self._hist_ask[slot], self._hist_last[slot] = bid, ask, last
        self._changed()
        if again:
            return
        self._hist_n += 1
        if self._slices % self.config.nav_every:
            return
        humans = [a for a in self._accounts.values() if not a.bot]
        if humans:
            navs = self.book.navs(a.name for a in humans)
            for acct, nav in zip(humans, navs.tolist(), strict=True):
                acct.nav.append((self.now, nav))

    def _quotes_frame(self, rows: np.ndarray | None = None) -> pd.DataFrame:
        """The quotes of every symbol, or of ``rows`` (column indices) in that order."""
        at = slice(None) if rows is None else rows
        bid_sz, ask_sz, tick, lot = self._bid_sz[at], self._ask_sz[at], self._tick[at], self._lot[at]
        bid = np.where(bid_sz > 0, self._bid[at] * tick, np.nan)
        ask = np.where(ask_sz > 0, self._ask[at] * tick, np.nan)
        last = self._last[at]
        symbols = np.asarray(self._symbols, dtype=object)[at]
        mid = (bid + ask) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            return pd.DataFrame({
                "symbol": symbols, "name": self._names[at], "sector": self._sectors[at],
                "bid": bid, "bid_size": bid_sz * lot, "ask": ask, "ask_size": ask_sz * lot,
                "last": np.where(last > 0, last * tick, mid), "mid": mid,
                "change_pct": np.nan_to_num((mid / self._ref[at] - 1) * 100), "spread_bps": (ask - bid) / mid * 1e4,
                "halted": np.isin(symbols, list(self._halted)),
            })  # fmt: skip

    # ------------------------------------------------------------------ helpers
    def _open(self, name: str, cash: Number, kind: AccountKind, *, simulated: bool = False) -> None:
        if name in self._accounts:
            raise ValueError(f"account {name!r} is already open")
        self.book.open_account(name, cash=Decimal(str(cash)))
        self.broker.open_account(name, Decimal(str(cash)), kind, books=self.book.ledgers[name])
        acct = _Account(name, simulated=simulated)
        acct.nav.append((self.now, float(Decimal(str(cash)))))
        self._accounts[name] = acct

    def _known(self, account: str) -> _Account | None:
        """``account`` if this market has it. A replica that has not (yet) first folds the log: an
        account opened through another server a moment ago is on it, so a person whose next
        request lands here finds it (read-your-writes across servers)."""
        acct = self._accounts.get(account)
        if acct is None and self.role == "replica" and not self._folding:
            self._catch_up()
            acct = self._accounts.get(account)
        return acct

    def _account(self, account: str) -> _Account:
        acct = self._known(account)
        if acct is None or acct.bot or acct.simulated:  # simulated participants are not for people to use
            raise UnknownAccountError(f"no account {account!r}")
        return acct

    def _venue(self, symbol: str) -> _Venue:
        """The exchange of ``symbol``; a universe stock's is started on first need."""
        v = self._venues.get(symbol)
        if v is not None:
            return v
        if symbol not in self._insts:
            raise unknown_symbol(symbol, self._symbols)
        assert self.universe is not None
        v = self._dormant.pop(symbol, None) or _PathVenue(self._insts[symbol], self.universe)
        self._wake(v)
        return v

    def _engine_of(self, symbol: str) -> ExecutionEngine:
        """The exchange of an awake venue, as the execution worker holds it."""
        engine = self._log.worker.engine(symbol)
        assert engine is not None, f"{symbol}: its opening book went through the worker when it woke"
        return engine

    def _mark_ticks(self, symbol: str) -> int | None:
        j = self._col[symbol]
        if self._bid_sz[j] and self._ask_sz[j]:
            return int(self._bid[j] + self._ask[j]) // 2
        return int(self._last[j]) or None

    def _send(self, acct: _Account, order: SubmitOrder) -> SubmitOutcome:
        """The broker's account rules, then the exchange (after the entry latency)."""
        venue = self._venue(order.symbol)
        engine = self._engine_of(order.symbol)
        bid, bid_sz, ask, ask_sz = engine.book.touch()
        order, refused = self.broker.admit(
            order, market=MarketStatus.at(venue.inst, order.ts, halted=engine.halted),
            bid=bid if bid_sz else None, ask=ask if ask_sz else None, last=engine.last_trade,
            marks=self._mark_ticks,
        )  # fmt: skip
        acct.next_id += 1
        acct.version += 1
        if refused is not None:
            acct.orders[order.client_order_id] = OrderRecord.entered(order, status="rejected", reason=refused.reason)
            return SubmitOutcome(False, order.client_order_id, refused.code.value, refused.reason)
        acct.orders[order.client_order_id] = OrderRecord.entered(order)
        self._route(order)
        return SubmitOutcome(True, order.client_order_id)

    # ------------------------------------------------------------------ the account feed
    def _feed_people(self) -> list[str]:
        return [a.name for a in self._accounts.values() if not (a.bot or a.simulated)]

    def _feed_step(self) -> None:
        """After a slice: NAV samples into the feed, and the snapshots or session close due now."""
        feed = self._feed
        assert feed is not None
        if self._slices % self.config.nav_every == 0:
            people = self._feed_people()
            navs = dict(zip(people, self.book.navs(people).tolist(), strict=True)) if people else {}
            bench = None
            if feed.benchmark is not None:
                j = self._col[feed.benchmark]
                if self._bid_sz[j] > 0 and self._ask_sz[j] > 0:
                    bench = float((self._bid[j] + self._ask[j]) * self._tick[j] / 2)
            feed.sample(self.now, navs, bench)
        if feed.session_due(self.now):
            self._feed_session_close()
        elif feed.snapshot_due(self.now):
            self._feed_snapshots()

    def _feed_snapshots(self) -> None:
        feed = self._feed
        assert feed is not None
        people = self._feed_people()
        if not people:
            return
        kinds = {"crypto": "crypto", "crypto_perp": "crypto"}
        for name, nav in zip(people, self.book.navs(people).tolist(), strict=True):
            ledger = self.book.ledgers[name]
            pos = self.book.nav.positions(self.book._account_row(name))
            holdings = [
                Holding(sym, sec or "", "etf" if sym in ETF_INFO else kinds.get(self._insts[sym].asset_class, "stock"),
                        float(value / nav) if nav else 0.0, float(price))
                for sym, sec, value, price in zip(pos.symbol, pos.sector, pos.value, pos.price, strict=True)
            ]  # fmt: skip
            cash = float(self.book.nav.cash[self.book._account_row(name)])
            snap = feed.snapshot(self.now, name, nav=float(nav), cash=cash, start_nav=float(ledger.initial_cash),
                                 holdings=holdings)  # fmt: skip
            self._publish_feed(name, snap)

    def _feed_session_close(self) -> None:
        """A session closes: every account's snapshot, then the close itself."""
        assert self._feed is not None
        self._feed_snapshots()
        self._publish_feed("clock", self._feed.close_session(self.now))

    def _publish_feed(self, key: str, event: Event) -> None:
        self._log.bus.publish(FEED_TOPIC, key, event)

    def _feed_tail(self) -> list[tuple[str, bytes]]:
        """The feed's records its consumers have not committed yet (a checkpoint keeps them, so
        a restart hands them out again: the consumers dedupe by id)."""
        bus = self._log.bus
        if self._feed is None or not isinstance(bus, MemoryBus):
            return []
        floor = bus.committed_floor(FEED_TOPIC)
        start = 0 if floor is None else floor[0]
        out: list[tuple[str, bytes]] = []
        while batch := bus.read(FEED_TOPIC, 0, start, 10_000):
            out += [(r.key, r.value) for r in batch]
            start = batch[-1].offset + 1
        return out

    def _feed_retain(self) -> None:
        # What every consumer has committed is forgotten: memory stays flat over a long class.
        bus = self._log.bus
        if isinstance(bus, MemoryBus) and (floor := bus.committed_floor(FEED_TOPIC)) is not None:
            bus.trim(FEED_TOPIC, floor)

    def _margin_calls(self) -> None:
        """After marks move: margin accounts below maintenance get a call, and the broker's
        liquidation orders (each carrying the call's reason) go to the exchange."""
        for call in self.broker.margin_calls(self._mark_ticks, self.now):
            acct = self._accounts[call.account]
            acct.margin_calls.append(call)
            if self._feed is not None and not acct.simulated:
                self._feed.margin_call(call.account)
                self._publish_feed(call.account, MarginCalled(self.now, call.account, call.reason))
            acct.version += 1
            for o in call.orders:
                acct.orders[o.client_order_id] = OrderRecord.entered(o, self.now, reason=call.reason)
                self._route(o)

    def _route(self, command: SubmitOrder | CancelOrder) -> None:
        """An admitted command to its exchange (woken if asleep). Its ``ts`` is the entry time:
        the sequencer stamps the arrival (+ entry latency) on the log (DESIGN §4)."""
        self._venue(command.symbol)
        self._log.command(msgspec.structs.replace(command, ts=self.now))

    # ------------------------------------------------------------------ the log
    def _enter(self, entry: OpenAccount | SubmitOrder | CancelOrder | CloseSession | Intervention | SetLimits
               | SignedOrder | RegisterKey | SliceTick) -> CommandOutcome | SignedOutcome | None:  # fmt: skip
        """A person's entry: onto the ``orders`` log (with a data dir, into the journal before
        anything answers), then folded by the broker; returns the broker's answer to it."""
        # The log has one partition: the key only labels the entry (a teacher's acts are the class's).
        key = ("class" if isinstance(entry, MarketShock | TradingHalt | LiquidityDrought | SetLimits)
               else "clock" if isinstance(entry, SliceTick) else entry.account)  # fmt: skip
        record = self._log.enter(entry, key)
        if self._durable is not None:
            self._durable.append(record)
        # Fold up to and including this entry (on a remote bus it may take a poll or two to show).
        deadline = time.monotonic() + 30.0
        while True:
            answers = self._fold(self._log.entries())
            if record.offset in answers:
                return answers[record.offset]
            if time.monotonic() > deadline:
                raise TimeoutError(f"the orders log did not deliver entry {record.offset} within 30 s")

    def _apply_entry(self, e: object) -> CommandOutcome | SignedOutcome | None:
        """The broker's fold of one entry (the same on the live path, in a replica, and when a
        restart re-runs it)."""
        if isinstance(e, SliceTick):
            if e.ts <= self.now:
                return None  # a second pacer's tick for a slice already run (a pacer taken over while slow)
            if e.ts != self.now + self._step_ns:
                raise DeterminismError(
                    f"the log's slice ends at {e.ts} but this market's next slice ends at {self.now + self._step_ns}: "
                    "the pacer runs another market (a different configuration or vtrade version)"
                )
            self._slice()
            if self.role == "replica" and e.wall_ns:
                self._slice_wall = e.wall_ns / 1e9  # the market's time of it, not this copy's
            return None
        self._changed()  # an order, an account, a halt, a rule: what reads show may differ now
        if isinstance(e, MarketOpened):
            return None  # the log's claim (see claim_pace): nothing for the broker
        if isinstance(e, MarketShock | TradingHalt | LiquidityDrought):
            if e.id not in self._interventions:  # an id acts once, however often it is entered
                self._interventions[e.id] = e
                self._intervene(e)
            return None
        if isinstance(e, OpenAccount):
            if e.account in self._accounts:  # another process entered the same name first
                return _NAME_TAKEN
            self._open(e.account, Decimal(e.cash), account_kind_of(e.kind))
            return None
        if isinstance(e, SetLimits):
            self.broker.limits = replace(
                self.broker.limits, allowed_symbols=frozenset(e.allowed_symbols) if e.allowed_symbols is not None
                else None, max_position_pct_nav=_decimal_or_none(e.max_position_pct_nav),
                max_orders_per_day=e.max_orders_per_day, min_share_price=_decimal_or_none(e.min_share_price),
                shorting_allowed=e.shorting_allowed,
            )  # fmt: skip
            return None
        acct = self._accounts.get(getattr(e, "account", ""))
        if acct is None:
            return None  # entries are checked before they are made: an unknown account is not ours
        if isinstance(e, SubmitOrder):
            if e.client_order_id != acct.order_id() or e.ts != self.now:
                # Entered by a process that had not folded everything before it (a replica, or
                # two processes trading one account): the id and time are the fold's, the same
                # in every process.
                e = msgspec.structs.replace(e, client_order_id=acct.order_id(), ts=self.now)
            return self._send(acct, e)
        if isinstance(e, CancelOrder):
            return self._cancel(acct, e.client_order_id)
        if isinstance(e, SignedOrder):
            return self._fold_signed(acct, e)
        if isinstance(e, RegisterKey):
            self._gate.register(e)
            return None
        if isinstance(e, CloseSession):
            acct.active = False
            if e.cancel:
                for coid in [c for c, o in acct.orders.items() if o.status in OPEN_STATUSES]:
                    self._cancel(acct, coid)
        return None

    def checkpoint(self) -> bool:
        """Save the whole market to its data dir now (False without one). The running market
        does it every ``CHECKPOINT_S`` seconds and on stop; a restart resumes from the latest and
        re-runs the entries made after it, so nothing acknowledged is lost even on a kill."""
        if self._durable is None:
            return False
        with self._lock:
            state = {k: getattr(self, k) for k in _STATE}
            state["engines"] = self._log.engines()
            state["sequencer"] = self._log.sequencer
            state["rngs"] = {desk.account: desk._rngs for _, desk, _, _ in self._participants}
            state["feed_tail"] = self._feed_tail()
            entries = self._log.bus.end_offsets(ENTRIES)[0]
            blob, now = dumps(state, self._shared()), self.now
            self._checkpoint_wall = time.monotonic()
        # Compressing and writing happen outside the lock: the market does not wait for the disk.
        self._durable.save(Checkpoint(entries, now, blob))
        return True

    def _shared(self) -> dict[str, object]:
        """Objects a checkpoint names instead of storing: rebuilt identically by the constructor."""
        return {f"capture:{v.inst.symbol}": v.source._events for v in self._flow if isinstance(v.source, CaptureLoop)}

    def _resume(self, durable: Durable) -> None:
        """Bring back what the data dir holds: the latest checkpoint, then the entries after it,
        each re-run at the slice it was made in (the market is deterministic between entries)."""
        t0 = time.monotonic()
        ckpt = durable.latest()
        start = 0
        if ckpt is not None:
            state = loads(ckpt.state, self._shared())
            engines, sequencer, rngs = state.pop("engines"), state.pop("sequencer"), state.pop("rngs")
            tail = state.pop("feed_tail", [])
            for k, v in state.items():
                setattr(self, k, v)
            self._log.close()
            self._log = LiveLog(None, latency=self.config.latency, seed=self.config.seed,
                                engine_config=self._engine_config, engines=engines, sequencer=sequencer)  # fmt: skip
            if self._feed is not None:
                self._log.bus.create_topic(FEED_TOPIC, 1)
                for key, value in tail:  # what the feed's consumers had not taken yet
                    self._log.bus.publish(FEED_TOPIC, key, value)
            # The awake exchanges come back from the checkpoint at once (readers need their books).
            self._log.pump(self._log.sequence_market([Clock(self.now, self.now, s, 0) for s in self._venues]))
            for _, desk, _, _ in self._participants:
                desk._acct = self._accounts[desk.account]
                desk._rngs = rngs.get(desk.account, {})
            start = ckpt.entries
        entries = durable.entries_after(0)
        for r in entries:  # the fresh log holds every entry at its journal offset
            self._log.enter(r.event, r.key)
        self._log.skip_entries(len(entries))
        self._trail.restore(self._log.bus, durable, start)
        for r in entries[start:]:
            e = r.event
            while self.now < e.ts:
                self._slice()
            self._apply_entry(e)
        self._quotes_cache, self._top_cache = None, {}
        self._changed()
        if ckpt is None and not entries:
            return  # a new data dir: nothing to bring back
        people = sum(not (a.bot or a.simulated) for a in self._accounts.values())
        self.resumed = (
            f"resumed {people} account(s) and {len(entries)} entries from {durable.root} "
            f"({len(entries) - start} re-run after the last checkpoint) in {time.monotonic() - t0:.1f}s"
        )


class _Desk:
    """A simulated participant's :class:`~vtrade.market.participants.Desk` in the live market.

    Quotes and changes come from the market's arrays (the touch after the last slice, the
    change vs the previous close). A bot (market maker, noise trader) is part of the market:
    its holding is its engine position and its orders go straight to the exchange. A simulated
    class member has a broker account: its orders pass the same account rules as people's.
    """

    def __init__(self, market: LiveMarket, acct: _Account, symbols: list[str]) -> None:
        self._m = market
        self._acct = acct
        self._symbols = symbols
        self.account = acct.name
        self._rngs: dict[str, np.random.Generator] = {}

    @property
    def now(self) -> int:
        return self._m.now

    def symbols(self) -> list[str]:
        return self._symbols

    def instrument_for(self, symbol: str) -> Instrument:
        return self._m._insts[symbol]

    def quote(self, symbol: str) -> tuple[int, int] | None:
        m, j = self._m, self._m._col[symbol]
        return (int(m._bid[j]), int(m._ask[j])) if m._bid_sz[j] and m._ask_sz[j] else None

    def change(self, symbol: str) -> float | None:
        m, j = self._m, self._m._col[symbol]
        if not (m._bid_sz[j] and m._ask_sz[j]) or not m._ref[j] > 0:
            return None
        return float((m._bid[j] + m._ask[j]) / 2 * m._tick[j] / m._ref[j] - 1)

    def holding(self, symbol: str) -> int:
        if self._acct.bot:
            engine = self._m._log.worker.engine(symbol)
            return engine.position(self.account) if engine is not None else 0
        return self._m.book.ledgers[self.account].positions.get(symbol, 0)

    def working(self, symbol: str | None = None) -> list[Any]:
        if self._acct.bot:
            return [o for o in self._acct.orders.values() if o.leaves and (symbol is None or o.symbol == symbol)]
        return self._m.broker.working(self.account, symbol)

    def capital(self) -> Decimal | None:
        return None if self._acct.bot else self._m.book.ledgers[self.account].initial_cash

    def cash(self) -> Decimal | None:
        return None if self._acct.bot else self._m.book.ledgers[self.account].cash

    def rng(self, symbol: str) -> np.random.Generator:
        gen = self._rngs.get(symbol)
        if gen is None:  # seeded from (session seed, participant, symbol): DESIGN §4
            gen = self._rngs[symbol] = seeded_rng(self._m.config.seed, f"{self.account}/{symbol}")
        return gen

    def place(self, symbol: str, side: Side, lots: int, price: int | None = None, *,
              tif: TimeInForce = TimeInForce.DAY, post_only: bool = False) -> str:  # fmt: skip
        m, acct = self._m, self._acct
        coid = acct.order_id()
        otype = OrderType.MARKET if price is None else OrderType.LIMIT
        order = SubmitOrder(m.now, acct.name, coid, symbol, side, otype, lots, limit_price=price, tif=tif,
                            post_only=post_only)  # fmt: skip
        if not acct.bot:
            m._send(acct, order)  # the account rules, as for people
            return coid
        acct.next_id += 1
        acct.orders[coid] = OrderRecord.entered(order)
        m._route(order)
        return coid

    def cancel(self, client_order_id: str) -> None:
        o = self._acct.orders.get(client_order_id)
        if o is not None and o.status in OPEN_STATUSES:
            self._m._route(CancelOrder(self._m.now, self.account, client_order_id, o.symbol))


def _intervention_id(value: object) -> str:
    """A teacher's market event's id: non-blank text (the caller's, so a replay can repeat it)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a market event needs an id: non-blank text, got {value!r}")
    return value.strip()


def _number(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | Decimal | int | float):
        raise ValueError(f"{what} must be a number, got {value!r}")
    try:
        out = Decimal(str(value).strip())
    except ArithmeticError:
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not out.is_finite():
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return out


def _shock_pct(value: object) -> Decimal:
    """A shock's per cent change: above -90 (a price stays positive), at most +200, not 0.

    >>> _shock_pct("-10"), _shock_pct(12.5)
    (Decimal('-10'), Decimal('12.5'))
    """
    pct = _number(value, "a shock's pct")
    if not (-90 < pct <= 200) or pct == 0:
        raise ValueError(f"a shock's pct must be above -90 and at most 200, and not 0; got {value!r}")
    return pct


def _drought_factor(value: object) -> Decimal:
    factor = _number(value, "a drought's factor")
    if not 0 < factor < 1:
        raise ValueError(f"a drought's factor must be between 0 and 1 (0.5 = half the depth), got {value!r}")
    return factor


def _drought_ns(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"a drought's duration is a duration like '30min' or ns, got {value!r}")
    ns = parse_duration(value)  # a clear ValueError for a malformed one
    if ns <= 0:
        raise ValueError(f"a drought's duration must be positive, got {value!r}")
    return ns


def _kind(e: Intervention) -> str:
    if isinstance(e, TradingHalt):
        return "halt" if e.halted else "resume"
    return "shock" if isinstance(e, MarketShock) else "drought"


def _detail(e: Intervention) -> str:
    if isinstance(e, MarketShock):
        return f"{e.pct}% price shock"
    if isinstance(e, TradingHalt):
        return (f"trading halted: {e.reason}" if e.reason else "trading halted") if e.halted else "trading resumed"
    return f"depth x{e.factor} for {pd.Timedelta(e.duration_ns, unit='ns')}"


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal_or_none(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _limits_entry(limits: SessionLimits) -> SetLimits:
    """The class-settable part of ``limits`` as the entry that would set it (``ts`` 0)."""
    allowed = tuple(sorted(limits.allowed_symbols)) if limits.allowed_symbols is not None else None
    return SetLimits(0, allowed, _text(limits.max_position_pct_nav), limits.max_orders_per_day,
                     _text(limits.min_share_price), limits.shorting_allowed)  # fmt: skip


#: The Binance capture's perpetual as the live market lists it (USDT at par: the paper account is in dollars).
_CRYPTO = replace(BINANCE_BTCUSDT_USDM, sector="Crypto", name="Bitcoin perpetual (Binance capture)", currency="USD")


def _engine_config(cfg: LiveConfig, queue: QueueModel, inst: Instrument) -> EngineConfig:
    return EngineConfig(inst, Realism(cfg.realism), queue_model=queue, fees=cfg.fees, session_seed=cfg.seed)


def engine_configs_of(cfg: LiveConfig) -> dict[str, EngineConfig]:
    """Every exchange of the market ``cfg`` describes, by symbol: what an execution worker in
    another process needs to run that market's exchanges (``vtrade worker execution`` takes the
    same flags as ``vtrade serve``).

    >>> sorted(engine_configs_of(LiveConfig(symbols=("SYNTH",), prices={"SYNTH": "100.00"})))
    ['SYNTH']
    """
    queue = queue_model(cfg.queue)
    insts = [_CRYPTO] if cfg.crypto else []
    insts += [inst for inst, _ in _synthetic_instruments(cfg).values()]
    if cfg.universe:
        insts += _universe(cfg)[1].values()
    return {inst.symbol: _engine_config(cfg, queue, inst) for inst in insts}


def market_fingerprint(cfg: LiveConfig) -> str:
    """What makes two markets the same market (pacing aside): a data dir holds one of them."""
    import hashlib

    same = replace(cfg, speed=0.0)
    return "market-" + hashlib.sha256(repr(same).encode()).hexdigest()[:12]


def _universe(cfg: LiveConfig) -> tuple[IntradayUniverse, dict[str, Instrument], list[date]]:
    """The universe's paths from ``cfg.universe_start``, its instruments (one-cent US equities
    with their GICS sectors; sector ETFs count in their sector) and the replayed dates."""
    from vtrade.market.feeds.daily import load_universe

    start = date.fromisoformat(cfg.universe_start)
    u = load_universe(start=date.fromordinal(start.toordinal() - 60))
    paths = IntradayUniverse.from_frame(u.frame, start=start, seed=cfg.seed)
    closed = [d for d in paths.dates if calendar.session_bounds(d) is None]
    if closed:
        raise ValueError(f"the daily data has bars on days the NYSE calendar says were closed: {closed[:3]}")
    insts = {t: us_equity(t, sector=u.instruments[t].sector, name=u.instruments[t].name) for t in paths.tickers}
    return paths, insts, list(paths.dates)


def _synthetic_instruments(cfg: LiveConfig) -> dict[str, tuple[Instrument, str]]:
    """Each synthetic-flow symbol as a one-cent stock trading around the clock with its opening
    price: a universe stock's close on ``cfg.day`` (and its sector), unless ``cfg.prices`` gives one."""
    from vtrade.market.feeds.daily import load_universe, read_meta

    symbols = [s.strip().upper() for s in cfg.symbols]
    prices = dict(cfg.prices or {})
    meta = read_meta().set_index("ticker")
    unknown = sorted(s for s in symbols if s not in meta.index and s not in prices)
    if unknown:
        raise ValueError(f"unknown symbol(s) {unknown}: synthetic flow trades stocks of the 500-stock universe, "
                         "or give another name an opening price in prices")  # fmt: skip
    missing = [s for s in symbols if s not in prices]
    if missing:
        day = pd.Timestamp(cfg.day)
        u = load_universe(tickers=missing, start=(day - pd.Timedelta(days=10)).date(), end=day.date(), etfs=False)
        last = u.frame.sort_values("date").groupby("ticker").close.last()
        prices.update({s: f"{last[s]:.2f}" for s in missing})
    out = {}
    for s in symbols:
        if s in meta.index:
            inst = us_equity(s, sector=str(meta.at[s, "gics_sector_2018"]), name=str(meta.at[s, "name"]))
        else:
            inst = us_equity(s, sector="Synthetic", name="Synthetic order flow")
        out[s] = (replace(inst, hours=ALWAYS_OPEN), prices[s])
    return out


_CAPTURE: list[MarketEvent] | None = None


def _capture_events() -> list[MarketEvent]:
    """The Binance capture's events, parsed once per process (immutable, shared by markets)."""
    global _CAPTURE
    if _CAPTURE is None:
        from vtrade.market.feeds import open_feed

        _CAPTURE = list(open_feed(CAPTURE_FILE))
    return _CAPTURE


def _session_open(day: date) -> int:
    """UTC ns of the first NYSE open on or after ``day``."""
    while (bounds := calendar.session_bounds(day)) is None:
        day = date.fromordinal(day.toordinal() + 1)
    return bounds[0]


class AccountTakenError(VtradeError, ValueError):
    """An account was opened under a name that is already open."""


class UnknownSymbolError(VtradeError, KeyError):
    """A symbol the market does not trade; the message suggests close ones.

    A ``KeyError`` (like a missing key), but printed as the sentence, not as its repr.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def unknown_symbol(symbol: object, symbols: list[str]) -> UnknownSymbolError:
    """The error for ``symbol``, naming close matches and a few of the ``symbols`` traded.

    >>> str(unknown_symbol("APPL", ["AAPL", "XOM"]))
    "Unknown symbol 'APPL'; did you mean AAPL? (2 symbols: AAPL, XOM)"
    """
    key = symbol.strip().upper() if isinstance(symbol, str) else str(symbol)
    close = difflib.get_close_matches(key, symbols, n=3)
    hint = f"did you mean {' or '.join(close)}?" if close else "the market trades none like it"
    # A 500-stock market: list a few, say how many, rather than print them all.
    listing = ", ".join(symbols[:8]) + (", ..." if len(symbols) > 8 else "")
    return UnknownSymbolError(f"Unknown symbol {symbol!r}; {hint} ({len(symbols)} symbols: {listing})")


_SHARED: LiveMarket | None = None
_SHARED_LOCK = threading.Lock()


def shared_market(config: LiveConfig | None = None, *, data_dir: str | Path | None = None) -> LiveMarket:
    """The process-wide market (created and started on first call; ``config`` and ``data_dir``
    only count then). With a data dir it checkpoints when the interpreter exits.

    Every served session reads from this one market: one feed, fanned out to light views.
    """
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = LiveMarket(config, data_dir=data_dir).start()
            if data_dir is not None:
                atexit.register(_SHARED.close)
        return _SHARED


def reset_shared_market() -> None:
    """Stop and forget the process-wide market (tests)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is not None:
            _SHARED.close()
        _SHARED = None
