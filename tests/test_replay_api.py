"""``vt.replay``: how latency orders a strategy's commands among market data, what the strategy
sees of the feed and when, and that a replay is a deterministic function of its inputs.

The small event lists use ``XYZ`` (one-dollar tick, one-share lot): each ``BookSnapshot`` moves
the best ask, so the price an order fills at tells which market events it came after.
"""

from __future__ import annotations

import gc
import itertools
from decimal import Decimal
from pathlib import Path

import pytest

import vtrade as vt
from vtrade.core.events import BookSnapshot, MarketEvent
from vtrade.core.instruments import BINANCE_BTCUSDT_USDM, Instrument
from vtrade.execution import events as ev
from vtrade.execution.latency import ConstantLatency, LogNormalLatency
from vtrade.market.feeds import open_feed
from vtrade.runtime.replay import Context, ReplayResult
from vtrade.strategies import market_maker

XYZ = Instrument("XYZ", Decimal("1"), Decimal("1"))
MS = 1_000_000
BINANCE = Path(__file__).parent.parent / "data" / "crypto" / "hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"


T0 = 1_718_976_600 * 10**9  # 2024-06-21 13:30 UTC: times below are T0 + a few ms


def _book(ts: int, ask: int) -> BookSnapshot:
    return BookSnapshot(ts, ts, "XYZ", 0, [99], [100], [ask], [100])


def _events(t0: int) -> list[MarketEvent]:
    """The best ask is 101 from t0, 102 from t0 + 1 ms, 103 from t0 + 4 ms, 104 from t0 + 6 ms."""
    return [_book(t0, 101), _book(t0 + 1 * MS, 102), _book(t0 + 4 * MS, 103), _book(t0 + 6 * MS, 104)]


EVENTS = _events(T0)


class BuyOnce:
    """Sends one market buy of 10 lots at its first call (at the feed's first event time)."""

    def __init__(self) -> None:
        self.sent_at: int | None = None
        self.asks_seen: list[tuple[int, tuple[int, int] | None]] = []

    def __call__(self, ctx: Context) -> None:
        self.asks_seen.append((ctx.now, ctx.book.best_ask()))
        if self.sent_at is None:
            self.sent_at = ctx.now
            ctx.buy(10)


class BuyOnceWatching(BuyOnce):
    """The same strategy with a per-event hook (which makes the runner go event by event)."""

    def __init__(self) -> None:
        super().__init__()
        self.market: list[tuple[int, int, tuple[int, int] | None]] = []

    def on_market(self, ctx: Context, event: MarketEvent) -> None:
        self.market.append((ctx.now, event.ts, ctx.book.best_ask()))


def _fills(result: ReplayResult) -> list[ev.OrderFilled]:
    return [e for e in result.events if isinstance(e, ev.OrderFilled)]


@pytest.mark.parametrize("strategy_cls", [BuyOnce, BuyOnceWatching], ids=["batched", "stepwise"])
@pytest.mark.parametrize(
    ("latency", "price"),
    [
        ("0ms", 101),  # reaches the book at T0: after the T0 snapshot (market data first at a tie)
        ("500us", 101),  # 0.5 ms: before the 1 ms snapshot
        ("2ms", 102),  # after 1 ms, before 4 ms
        ("4ms", 103),  # tied with the 4 ms snapshot, which goes first
        ("5ms", 103),  # after 4 ms, before 6 ms
        ("7ms", 104),  # after every snapshot
    ],
)
def test_entry_latency_places_the_order_among_market_events(
    strategy_cls: type[BuyOnce], latency: str, price: int
) -> None:
    strategy = strategy_cls()
    result = vt.replay(EVENTS, strategy=strategy, every="1s", latency=latency, instrument=XYZ)
    assert strategy.sent_at == T0
    (fill,) = _fills(result)
    assert (fill.price, fill.quantity) == (price, 10)
    # mid2 at arrival = 99 + the ask then in force.
    assert fill.arrival_mid2 == 99 + price


@pytest.mark.parametrize("strategy_cls", [BuyOnce, BuyOnceWatching], ids=["batched", "stepwise"])
def test_fill_is_stamped_when_the_order_reaches_the_exchange(strategy_cls: type[BuyOnce]) -> None:
    result = vt.replay(EVENTS, strategy=strategy_cls(), every="1s", latency="5ms", instrument=XYZ)
    accepted = [e for e in result.events if isinstance(e, ev.OrderAccepted)]
    (fill,) = _fills(result)
    # Sent at T0 with 5 ms entry latency: it exists at the exchange from T0 + 5 ms (not + 4 or + 6).
    assert [a.ts for a in accepted] == [T0 + 5 * MS]
    assert fill.ts == T0 + 5 * MS
    assert fill.price == 103


# Timer calls at T0 + 0, 2, 4 and 6 ms see what had reached them 3 ms late: nothing at 0 and 2 ms
# (the T0 book arrives at T0 + 3 ms), the T0 + 1 ms book (ask 102) at 4 ms, still it at 6 ms (the
# T0 + 4 ms book is due at T0 + 7 ms). At a tie a view update goes before the timer.
TIMER_VIEW = [(T0, None), (T0 + 2 * MS, None), (T0 + 4 * MS, (102, 100)), (T0 + 6 * MS, (102, 100))]


def test_strategy_sees_market_data_feed_latency_late() -> None:
    strategy = BuyOnceWatching()
    latency = ConstantLatency(entry_ns=5 * MS, response_ns=0, feed_ns=3 * MS)
    vt.replay(EVENTS, strategy=strategy, every="2ms", latency=latency, instrument=XYZ)
    # Each event reaches the strategy 3 ms after its time, and its book then shows that event.
    assert strategy.market == [
        (T0 + 3 * MS, T0, (101, 100)),
        (T0 + 4 * MS, T0 + 1 * MS, (102, 100)),
        (T0 + 7 * MS, T0 + 4 * MS, (103, 100)),
        (T0 + 9 * MS, T0 + 6 * MS, (104, 100)),
    ]
    assert strategy.asks_seen[:4] == TIMER_VIEW


def test_feed_latency_in_the_batched_path_too() -> None:
    strategy = BuyOnce()
    latency = ConstantLatency(entry_ns=5 * MS, response_ns=0, feed_ns=3 * MS)
    vt.replay(EVENTS, strategy=strategy, every="2ms", latency=latency, instrument=XYZ)
    assert strategy.asks_seen[:4] == TIMER_VIEW


def test_batched_replay_of_a_feed_starting_at_time_zero_honours_latency() -> None:
    strategy = BuyOnce()
    result = vt.replay(_events(0), strategy=strategy, every="1s", latency="2ms", instrument=XYZ)
    (fill,) = _fills(result)
    assert (fill.ts, fill.price) == (2 * MS, 102)  # after the 1 ms book, before the 4 ms one


# ---------------------------------------------------------------------------- determinism
from vtrade.strategies import market_maker as _quote_both_sides  # noqa: E402


def _binance_run() -> ReplayResult:
    events = itertools.islice(open_feed(BINANCE), 20_000)
    return vt.replay(events, strategy=_quote_both_sides, every="100ms", realism="L2", latency="1ms",
                     instrument=BINANCE_BTCUSDT_USDM)  # fmt: skip


def test_binance_replay_is_deterministic() -> None:
    first, second = _binance_run(), _binance_run()
    assert first.output_hash() == second.output_hash()
    assert first.events == second.events
    # Not vacuous: the strategy quoted, got fills and cancelled.
    assert len(first.fills) > 10
    assert {type(e).__name__ for e in first.events} >= {"OrderAccepted", "OrderFilled", "OrderCancelled"}


def test_l3_view_gets_the_feed_in_order_under_a_sampled_latency() -> None:
    """A sampled feed latency delays market data but never reorders it: the strategy's
    order-by-order view would otherwise see an order deleted before it was added (AAPL seq 10)."""
    aapl = Path(__file__).parent / "fixtures/lobster/AAPL_2012-06-21_34200000_57600000_message_10.first999.csv.gz"

    class Quoter:
        def __init__(self) -> None:
            self.last: tuple[int, int] = (-1, -1)
            self.seen: list[tuple[object, object]] = []

        def __call__(self, ctx: Context) -> None:
            market_maker(ctx)

        def on_market(self, ctx: Context, e: MarketEvent) -> None:
            assert (e.ts, e.seq) >= self.last, "market data reached the strategy out of order"
            self.last = (e.ts, e.seq)
            self.seen.append((ctx.book.best_bid(), ctx.book.best_ask()))

    q = Quoter()
    result = vt.replay(aapl, strategy=q, realism="L3", every="100ms", latency=LogNormalLatency(MS, sigma=0.8))
    assert result.market_events == len(q.seen) == 999 + 318 + 1
    # After the last message the view is the orderbook file's last row (raw 5853500 x 18 / 5857100 x 100).
    assert q.seen[-1] == ((117070, 18), (117142, 100))


# ---------------------------------------------------------------------------- garbage collector
@pytest.mark.parametrize("enabled", [True, False])
def test_a_replay_leaves_no_cyclic_garbage_and_the_collector_as_it_found_it(enabled: bool) -> None:
    """The cyclic collector is paused during a run (full collections made warm runs vary by
    +-20 %); that loses nothing only if the run leaves no reference cycle behind."""
    contexts: list[Context] = []

    def quoting(ctx: Context) -> None:
        contexts.append(ctx)
        _quote_both_sides(ctx)

    vt.replay(EVENTS, strategy=quoting, every="1ms", instrument=XYZ)  # first-use caches (importlib's) are made
    gc.collect()
    gc.disable()
    try:
        if enabled:
            gc.enable()
        result = vt.replay(EVENTS, strategy=quoting, every="1ms", instrument=XYZ)
        assert gc.isenabled() is enabled
        gc.disable()
        assert len(result.events) > 0
        del result
        assert gc.collect() == 0  # the runner, engine and orders went with the last reference
    finally:
        gc.enable()
    with pytest.raises(RuntimeError, match="this replay has ended"):
        contexts[-1].buy(1)
