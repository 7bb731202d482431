"""One venue step: how a symbol's exchange orders its inputs and steps its engine (DESIGN.md §4).

Replay (:mod:`vtrade.runtime.replay`), the live market (:mod:`vtrade.runtime.live`) and the
execution worker with its sequencer (:mod:`vtrade.runtime.execution_worker`) all use this
module; the merge rule is written here only. Pure: no I/O, no wall clock, no threads.

**The merge rule.** A venue has three kinds of input, each with a time:

- market data, in feed order, at its *merge time*: the running maximum of the feed's event
  times (a recording that interleaves two clocks never makes an event jump ahead of the one
  before it);
- order commands (:class:`SubmitOrder`, :class:`CancelOrder`, :class:`ReplaceOrder`) at the
  simulated time they reach the exchange, which the caller puts in the command's ``ts``
  (entry time + entry latency); a command arriving when the venue is already past that time
  is stamped with the venue's time (the input never goes back in time);
- expiries: the time an open DAY/GTD order ends (:meth:`ExecutionEngine.next_deadline`).

Inputs are applied in time order. **At equal times: market data first (in feed order), then
expiries, then commands (in the order they were sent).** That is the key ``(time, rank,
sequence)`` with ranks :data:`MARKET` < :data:`EXPIRY` < :data:`COMMAND`. An expiry is applied
only once time is known to reach it: an input at or after it, or an ``until`` the caller has
reached (the live market's slice end); at the end of a replay nothing moves time on. One
precision, from the engine: :meth:`ExecutionEngine.step` expires, after each input, the orders
whose deadline its clock has reached, so an order whose deadline is the time of market data
meets the first market event at that time only, then expires; the array path
(:meth:`ExecutionEngine.step_batch`) is cut there too, so both paths give the same events.

:class:`Merge` is the rule without an engine (what the sequencer writes to the log);
:class:`Venue` is the rule with the engine (what replay and the live market step);
:func:`step` applies one already-merged input (what the execution worker does with the log).

>>> from vtrade.core.events import Side, Trade
>>> from vtrade.execution.orders import OrderType, SubmitOrder
>>> m = Merge()
>>> _ = m.command(SubmitOrder(10, "a", "c1", "SPY", Side.BUY, OrderType.MARKET, 1))  # reaches the exchange at 10
>>> _ = m.market(Trade(10, 10, "SPY", 1, 100, 1))  # the same nanosecond: market data goes first
>>> _ = m.market(Trade(8, 8, "SPY", 2, 100, 1))  # behind in time: merged at 10 (feed order holds)
>>> [(type(e).__name__, e.ts) for e in m.take()]
[('Trade', 10), ('Trade', 8), ('SubmitOrder', 10)]
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

import msgspec
import numpy as np

from vtrade.core.events import BookDelta, BookSnapshot, Event, MarketBatch, MarketEvent, Trade
from vtrade.execution import events as ev
from vtrade.execution.engine import ExecutionEngine, Realism
from vtrade.execution.orders import CancelOrder, ReplaceOrder, SubmitOrder
from vtrade.market.l2book import UpdateBatch

__all__ = [
    "COMMAND", "EXPIRY", "MARKET", "Command", "Merge", "Stepped", "Venue",
    "batched", "expire_before", "sequence", "step",
]  # fmt: skip

#: Ranks at one timestamp (lower first): market data, then expiries, then commands.
MARKET, EXPIRY, COMMAND = 0, 1, 2

Command = SubmitOrder | CancelOrder | ReplaceOrder
_COMMANDS = (SubmitOrder, CancelOrder, ReplaceOrder)
_Key = tuple[int, int]  # (time, rank)


class Merge:
    """Market data and commands in flight to one venue, released in the merge rule's order.

    ``market(e)`` queues market data (returns its merge time); ``command(c)`` holds a command
    whose ``ts`` is its exchange arrival time (returns it stamped, clamped to :attr:`clock`).
    ``take(through)`` releases, in order, every input whose key ``(time, rank)`` is at or
    before ``through`` (all with ``None``). The caller must have queued every input that could
    come at or before ``through``: the sequencer knows it for ``(t, MARKET)`` when market data
    at ``t`` arrives, since a later command is clamped to ``t`` and so orders after it.

    >>> from vtrade.core.events import Trade
    >>> from vtrade.execution.orders import CancelOrder
    >>> m = Merge()
    >>> m.command(CancelOrder(5, "a", "c1", "SPY")).ts
    5
    >>> t = m.market(Trade(7, 7, "SPY", 1, 100, 1))
    >>> [(type(e).__name__, e.ts) for e in m.take((t, MARKET))]  # the sequencer's step
    [('CancelOrder', 5), ('Trade', 7)]
    >>> m.command(CancelOrder(6, "a", "c2", "SPY")).ts  # late: stamped with the venue's time
    7
    """

    def __init__(self) -> None:
        self.clock: int | None = None  # the time of the latest input released
        self._high: int | None = None  # running maximum of the market data queued
        self._market: deque[tuple[int, MarketEvent]] = deque()
        self._commands: list[tuple[int, int, Command]] = []  # (arrival, sent, command): a heap
        self._sent = 0  # an int, not itertools.count: a live market pickles its merges (checkpoints)

    # -- in
    def market(self, event: MarketEvent) -> int:
        """Queue ``event``; returns its merge time (the running maximum of market times)."""
        t = event.ts if self._high is None else max(self._high, event.ts)
        self._high = t
        self._market.append((t, event))
        return t

    def command(self, command: Command) -> Command:
        """Hold ``command`` (its ``ts`` = exchange arrival) until it is due; returns it as it will be applied."""
        if not isinstance(command, _COMMANDS):
            raise TypeError(f"a command is a SubmitOrder, CancelOrder or ReplaceOrder, got {type(command).__name__}")
        if self.clock is not None and command.ts < self.clock:
            command = msgspec.structs.replace(command, ts=self.clock)
        heapq.heappush(self._commands, (command.ts, self._sent, command))
        self._sent += 1
        return command

    # -- state
    @property
    def high(self) -> int | None:
        """The running maximum of the market times queued so far (None before any)."""
        return self._high

    def raise_high(self, t: int) -> None:
        """Market data merged elsewhere (a batch, see :meth:`Venue.feed_batch`) reached ``t``."""
        self._high = t if self._high is None else max(self._high, t)

    def next_market(self) -> int | None:
        return self._market[0][0] if self._market else None

    def next_command(self) -> int | None:
        return self._commands[0][0] if self._commands else None

    @property
    def commands(self) -> int:
        """How many commands are in flight."""
        return len(self._commands)

    def __len__(self) -> int:
        return len(self._market) + len(self._commands)

    # -- out
    def next_key(self) -> _Key | None:
        """``(time, rank)`` of the next input, or None."""
        m, c = self.next_market(), self.next_command()
        if m is not None and (c is None or m <= c):  # market data first at equal times
            return m, MARKET
        return None if c is None else (c, COMMAND)

    def pop(self) -> tuple[int, Event]:
        """Release the next input: ``(merge time, event)``."""
        key = self.next_key()
        if key is None:
            raise IndexError("nothing to release")
        e: Event
        if key[1] == MARKET:
            t, e = self._market.popleft()
        else:
            t, _, e = heapq.heappop(self._commands)
        self.reached(t)
        return t, e

    def take(self, through: _Key | None = None) -> list[Event]:
        """Release every input whose ``(time, rank)`` is at or before ``through`` (None: all), in order."""
        out: list[Event] = []
        while (key := self.next_key()) is not None and (through is None or key <= through):
            out.append(self.pop()[1])
        return out

    def reached(self, t: int) -> None:
        """The venue's time moved to ``t`` (an input or an expiry was applied there)."""
        self.clock = t if self.clock is None else max(self.clock, t)


def expire_before(engine: ExecutionEngine, event: Event) -> list[ev.ExecEvent]:
    """Expire the orders whose deadline orders before ``event`` (an input already merged):
    deadlines before a market event's time, or at or before a command's."""
    rank = MARKET if isinstance(event, MarketEvent) else COMMAND
    out: list[ev.ExecEvent] = []
    while (d := engine.next_deadline()) is not None and (d, EXPIRY) < (event.ts, rank):
        out.extend(engine.tick(d))
    return out


def step(engine: ExecutionEngine, event: Event) -> list[ev.ExecEvent]:
    """Apply one merged input: the expiries that order before it, then the input itself (a
    :class:`MarketBatch` through the engine's array path, as :class:`Venue` runs a batch).

    This is the execution worker's step over the sequenced log; :class:`Venue` does the same
    while it merges.
    """
    if isinstance(event, MarketBatch):
        if engine.realism is not Realism.L2:  # the array path serves L2 books only: event by event
            return [o for e in event.events for o in step(engine, e)]
        venue = Venue(engine)
        venue.feed_batch(UpdateBatch.from_events(event.events, trades=True))
        return venue.outputs()  # the expiries before each event, then the event, as stepping each
    out = expire_before(engine, event)
    out.extend(engine.step(event))
    return out


_BATCHABLE = (BookSnapshot, BookDelta, Trade)


def batched(events: Iterable[Event]) -> list[Event]:
    """Merged input with each run of two or more consecutive book or trade events of one symbol
    as one :class:`MarketBatch` (what a live market publishes: a record per venue and slice).

    >>> trades = [Trade(t, t, "SPY", t, 100, 1) for t in (1, 2, 3)]
    >>> [type(e).__name__ for e in batched([*trades[:2], CancelOrder(2, "a", "c1", "SPY"), trades[2]])]
    ['MarketBatch', 'CancelOrder', 'Trade']
    """
    out: list[Event] = []
    run: list[BookSnapshot | BookDelta | Trade] = []

    def flush() -> None:
        if len(run) > 1:
            first = run[0]
            out.append(MarketBatch(first.ts, first.recv_ts, first.symbol, first.seq, list(run)))
        else:
            out.extend(run)
        run.clear()

    for e in events:
        if isinstance(e, _BATCHABLE):
            if run and run[0].symbol != e.symbol:
                flush()
            run.append(e)
        else:
            flush()
            out.append(e)
    flush()
    return out


class Stepped(NamedTuple):
    """What one :meth:`Venue.advance` applied."""

    #: The merge time of what was applied (the last market event's for a batch run).
    ts: int
    #: The input applied (None for a run of batched market data, or an expiry).
    event: Event | None
    #: How many market events were applied (0, 1, or a batch run's length).
    markets: int
    #: The engine's output events.
    outputs: list[ev.ExecEvent]


class _Batch:
    """Market data as arrays (an :class:`UpdateBatch` with trades), consumed front to back."""

    def __init__(self, batch: UpdateBatch, floor: int | None) -> None:
        self.batch = batch
        clock = np.maximum.accumulate(batch.ts) if batch.n_events else batch.ts
        self.clock = clock if floor is None or not batch.n_events else np.maximum(clock, floor)
        self.at = 0
        self.n = batch.n_events

    def head(self) -> int | None:
        return int(self.clock[self.at]) if self.at < self.n else None


class Venue:
    """One symbol's exchange: an :class:`ExecutionEngine` and the :class:`Merge` of its inputs.

    Market data comes event by event (:meth:`market`) or as an array batch
    (:meth:`feed_batch`, the compiled fast path; the engine's ``step_batch`` gives the same
    events as stepping each); commands come through :meth:`send`. :meth:`advance` applies the
    next input at or before ``until``; :meth:`run` applies everything through ``until``.

    >>> from vtrade.core.events import BookSnapshot, Side
    >>> from vtrade.core.instruments import us_equity
    >>> from vtrade.execution.engine import EngineConfig
    >>> from vtrade.execution.orders import OrderType, SubmitOrder, TimeInForce
    >>> v = Venue(ExecutionEngine(EngineConfig(us_equity("SPY"))))
    >>> _ = v.market(BookSnapshot(0, 0, "SPY", 1, [16764], [500], [16765], [300]))
    >>> gtd = SubmitOrder(1, "ana", "c1", "SPY", Side.BUY, OrderType.LIMIT, 100, limit_price=16700,
    ...                   tif=TimeInForce.GTD, expire_ts=4)
    >>> _ = v.send(gtd)
    >>> _ = v.send(SubmitOrder(4, "ana", "c2", "SPY", Side.BUY, OrderType.MARKET, 100))
    >>> _ = v.market(BookSnapshot(6, 6, "SPY", 2, [16764], [500], [16766], [300]))
    >>> for s in v.run(until=10):  # at t=4: c1's expiry (no input: event None), then the command c2
    ...     print(s.ts, type(s.event).__name__, [type(o).__name__ for o in s.outputs])
    0 BookSnapshot []
    1 SubmitOrder ['OrderAccepted']
    4 NoneType ['OrderExpired']
    4 SubmitOrder ['OrderAccepted', 'OrderFilled']
    6 BookSnapshot []
    """

    def __init__(self, engine: ExecutionEngine) -> None:
        self.engine = engine
        self.merge = Merge()
        self._batch: _Batch | None = None

    # -- in
    def market(self, event: MarketEvent) -> int:
        """Queue market data; returns its merge time."""
        if self._batch is not None and self._batch.head() is not None:
            raise RuntimeError("the venue is consuming a batch: queue events after it is done")
        return self.merge.market(event)

    def feed_batch(self, batch: UpdateBatch) -> None:
        """Take market data as arrays (after everything queued before it)."""
        if len(self.merge._market) or (self._batch is not None and self._batch.head() is not None):
            raise RuntimeError("the venue still holds market data: run it first")
        self._batch = _Batch(batch, self.merge.high)
        if batch.n_events:
            self.merge.raise_high(int(self._batch.clock[-1]))

    def send(self, command: Command) -> Command:
        """Hold ``command`` (``ts`` = when it reaches the exchange); returns it as it will be applied."""
        return self.merge.command(command)

    # -- state
    @property
    def batch_clock(self) -> np.ndarray | None:
        """The merge times of the batch's events (see :meth:`feed_batch`)."""
        return None if self._batch is None else self._batch.clock

    @property
    def batch_at(self) -> int:
        """How many events of the batch were applied."""
        return 0 if self._batch is None else self._batch.at

    def next_market(self) -> int | None:
        """The merge time of the next market event (None: none is queued)."""
        if self._batch is not None and (t := self._batch.head()) is not None:
            return t
        return self.merge.next_market()

    def has_market(self) -> bool:
        return self.next_market() is not None

    def has_commands(self) -> bool:
        return self.merge.commands > 0

    def next_time(self) -> int | None:
        """The time of the next thing that can happen here: an input or an expiry."""
        times = [t for t in (self.next_market(), self.merge.next_command(), self.engine.next_deadline())
                 if t is not None]  # fmt: skip
        return min(times) if times else None

    # -- out
    def advance(self, until: int | None = None) -> Stepped | None:
        """Apply the next input (or expiry) whose time is at or before ``until`` (None: no bound).

        Returns what was applied, or None if nothing is due. A batch applies every market
        event up to the next command, expiry or ``until`` at once (it stops early after an
        event that fills an order, so the caller can react in time order).
        """
        m, c, d = self.next_market(), self.merge.next_command(), self.engine.next_deadline()
        candidates = [(t, rank) for t, rank in ((m, MARKET), (d, EXPIRY), (c, COMMAND)) if t is not None]
        if not candidates:
            return None
        t, rank = min(candidates)
        if until is not None and t > until:
            return None
        if rank == EXPIRY:
            if until is None and m is None and c is None:
                return None  # nothing shows that time reaches the deadline
            self.merge.reached(t)
            return Stepped(t, None, 0, self.engine.tick(t))
        if rank == MARKET and self._batch is not None and self._batch.head() is not None:
            b = self._batch
            limit = min([x for x in (c, until) if x is not None], default=None)
            end = b.n if limit is None else int(b.clock.searchsorted(limit, side="right"))
            if d is not None:  # as event by event: the engine expires after the first market event at d
                at_d = int(b.clock.searchsorted(d, side="left"))
                end = min(end, at_d + 1 if at_d < b.n and b.clock[at_d] == d else at_d)
            nxt, out = self.engine.step_batch(b.batch, b.at, end)
            k, b.at = nxt - b.at, nxt
            ts = int(b.clock[nxt - 1])
            self.merge.reached(ts)
            return Stepped(ts, None, k, out)
        t, event = self.merge.pop()
        return Stepped(t, event, int(rank == MARKET), self.engine.step(event))

    def run(self, until: int | None = None) -> list[Stepped]:
        """Apply everything at or before ``until`` (None: every input held; no expiry after the last)."""
        out: list[Stepped] = []
        while (s := self.advance(until)) is not None:
            out.append(s)
        return out

    def outputs(self, until: int | None = None) -> list[ev.ExecEvent]:
        """:meth:`run`, keeping only the engine's output events."""
        return [e for s in self.run(until) for e in s.outputs]


def sequence(market: Iterable[MarketEvent], commands: Iterable[Command] = ()) -> list[Event]:
    """The merged input of ``market`` and ``commands`` (their ``ts`` = exchange arrival).

    >>> from vtrade.core.events import Trade
    >>> from vtrade.execution.orders import CancelOrder
    >>> trades = [Trade(t, t, "SPY", t, 100, 1) for t in (0, 5, 9)]
    >>> [(type(e).__name__, e.ts) for e in sequence(trades, [CancelOrder(5, "a", "c1", "SPY")])]
    [('Trade', 0), ('Trade', 5), ('CancelOrder', 5), ('Trade', 9)]
    """
    m = Merge()
    for c in commands:
        m.command(c)
    for e in market:
        m.market(e)
    return m.take()
