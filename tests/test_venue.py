"""One venue step (vtrade.execution.venue) serves replay, the live market and the execution
worker: the same market events and commands give the same engine outputs through each, and
replay's results are pinned (DESIGN.md §4)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import msgspec
import pytest

import vtrade as vt
from vtrade.core.events import BookDelta, BookSnapshot, Event, MarketEvent, Side, Trade, decode, encode
from vtrade.execution import events as ev
from vtrade.execution.engine import EngineConfig, ExecutionEngine, Realism
from vtrade.execution.fees import NoFees
from vtrade.execution.orders import CancelOrder, OrderType, SubmitOrder, TimeInForce
from vtrade.execution.queue import RiskAverseQueue
from vtrade.execution.venue import Merge, Venue, sequence
from vtrade.market.feeds import open_feed
from vtrade.market.l2book import L2Book
from vtrade.runtime.bus import open_bus
from vtrade.runtime.execution_worker import ExecutionWorker, Sequencer, read_topic
from vtrade.runtime.live_log import LiveLog
from vtrade.runtime.replay import Context
from vtrade.strategies import buy_and_hold, market_maker, market_maker_jit

ROOT = Path(__file__).resolve().parent.parent
USDM = ROOT / "data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"
SPOT = ROOT / "data/crypto/hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz"
SPY_QUOTES = ROOT / "data/intraday/lean_second_quote_bars_SPY.csv.gz"
SPY_TRADES = ROOT / "data/intraday/lean_second_trade_bars_SPY.csv.gz"
LOBSTER = ROOT / "tests/fixtures/lobster/AAPL_2012-06-21_34200000_57600000_message_10.first999.csv.gz"
MS = 1_000_000


# ---------------------------------------------------------------------------------------------
# the rule


def test_ties_go_market_data_then_expiries_then_commands() -> None:
    m = Merge()
    late = m.command(CancelOrder(7, "a", "late", "SPY"))
    early = m.command(CancelOrder(3, "a", "early", "SPY"))
    t = m.market(Trade(7, 7, "SPY", 1, 100, 1))
    assert [e.ts for e in m.take((t, 0))] == [3, 7]  # the sequencer's step: early, then the trade
    assert m.take() == [late]  # the command at 7 after the market data at 7
    assert early.ts == 3
    assert m.command(CancelOrder(1, "a", "x", "SPY")).ts == 7  # never back in time
    assert [type(e).__name__ for e in sequence([Trade(5, 5, "SPY", 1, 100, 1)], [CancelOrder(5, "a", "c", "SPY")])] \
        == ["Trade", "CancelOrder"]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# replay: pinned results, and the batch path equals the event-by-event path

# These hashes were recorded before the venue step was factored out of replay.py, the live
# market and the Sequencer, and are unchanged after it. They are pure functions of the shipped
# data files and the code (integer engine, seeded generators, no wall clock), so they hold on
# every machine; a change in them is a change in simulated results and must be deliberate.
PINNED = {
    "usdm_market_maker_L2": "19f4d1563c4f11caafe3a2baaf9c6486f609033959c0443b4da2ef5f92b1ae02",
    "spot_market_maker_L2": "f637d8d28fdc5eaa9296ed30664fd8e046de48bf10f956e23502cc3a9eed34eb",
    "spy_quote_bars_L1_buy_and_hold": "b4a9ede94ec7854a27049f19537e5f39ce0ecae57be67f9d92268b9d734c89d2",
    "spy_trade_bars_bars_buy_and_hold": "1a11b95dadf45f044bf0b5fe4db6f2fb964dfa41045c141aebda506e8c6da3e7",
    "lobster_aapl_L3_market_maker": "8b5bd64a048e4dd34677a700ae65fc9a9cd8facd746f0112c50ceb23ae2fbf41",
    "lobster_aapl_L3_buy_and_hold": "e51b1f1629e302692961ae356dfa190684c71644afbe9091acacebc9c13d167e",
}
RUNS: dict[str, tuple[Path, Any, dict[str, Any]]] = {
    "usdm_market_maker_L2": (USDM, market_maker, {"every": "100ms", "realism": "L2", "latency": "1ms"}),
    "spot_market_maker_L2": (SPOT, market_maker, {"every": "100ms", "realism": "L2", "latency": "1ms"}),
    "spy_quote_bars_L1_buy_and_hold": (SPY_QUOTES, buy_and_hold, {"realism": "L1"}),
    "spy_trade_bars_bars_buy_and_hold": (SPY_TRADES, buy_and_hold, {"realism": "bars"}),
    "lobster_aapl_L3_market_maker": (LOBSTER, market_maker, {"every": "1s", "realism": "L3", "latency": "1ms"}),
    "lobster_aapl_L3_buy_and_hold": (LOBSTER, buy_and_hold, {"realism": "L3"}),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_replay_results_are_pinned(name: str) -> None:
    path, strategy, options = RUNS[name]
    assert vt.replay(path, strategy=strategy, **options).output_hash() == PINNED[name]


@pytest.mark.parametrize(("name", "path"),
                         [("usdm_market_maker_L2", "compiled"), ("lobster_aapl_L3_market_maker", "python")])
def test_the_compiled_market_maker_gives_the_pinned_outputs(name: str, path: str) -> None:
    """The same strategy written as a jitted function: on the full Binance capture it runs in the
    compiled loop, on LOBSTER L3 on the Python engine; both byte-identical to the Python strategy."""
    feed, _, options = RUNS[name]
    result = vt.replay(feed, strategy=market_maker_jit, **options)
    assert (result.path, result.output_hash()) == (path, PINNED[name])
    assert (result.path_note is None) == (path == "compiled")


class EventByEvent:
    """Wraps a strategy with an ``on_market`` hook: the replay then steps event by event."""

    def __init__(self, strategy: Any) -> None:
        self.strategy = strategy

    def __call__(self, ctx: Context) -> None:
        self.strategy(ctx)

    def on_market(self, ctx: Context, event: MarketEvent) -> None:
        pass


def expiring_quotes(ctx: Context) -> None:
    """Quotes at the touch that expire (GTD) 150 and 230 ms later: exercises expiries."""
    bid, ask = ctx.book.best_bid(), ctx.book.best_ask()
    if bid and ask and len(ctx.open_orders) < 6:
        ctx.buy(1, price=bid[0], tif=TimeInForce.GTD, expire_ts=ctx.now + 150 * MS)
        ctx.sell(1, price=ask[0], tif=TimeInForce.GTD, expire_ts=ctx.now + 230 * MS)


@pytest.mark.parametrize("strategy", [market_maker, expiring_quotes], ids=["market_maker", "expiring_quotes"])
def test_batch_and_event_by_event_replays_are_byte_identical_on_the_usdm_capture(strategy: Any) -> None:
    options = {"every": "100ms", "realism": "L2", "latency": "1ms"}
    batch = vt.replay(USDM, strategy=strategy, **options)
    stepwise = vt.replay(USDM, strategy=EventByEvent(strategy), **options)
    assert len(batch.fills) > 0
    if strategy is expiring_quotes:
        assert sum(isinstance(e, ev.OrderExpired) for e in batch.events) > 100
    assert batch.output_hash() == stepwise.output_hash()
    if strategy is market_maker:
        assert batch.output_hash() == PINNED["usdm_market_maker_L2"]


# ---------------------------------------------------------------------------------------------
# replay, the live venue and Sequencer + ExecutionWorker: the same engine outputs

EVERY = 10 * MS  # the replay's strategy period = the live market's slice = the command grid
LATENCY = 1 * MS
EXPIRE = 35 * MS  # the scenario's GTD orders live this long


@pytest.fixture(scope="module")
def scenario() -> tuple[list[MarketEvent], dict[int, list[Event]], EngineConfig]:
    """The capture's first 4,000 events, and commands entered on a 10 ms grid from its first event."""
    feed = open_feed(USDM)
    market = list(itertools.islice(feed, 4000))
    config = EngineConfig(feed.instrument, Realism.L2, queue_model=RiskAverseQueue(), fees=NoFees(), session_seed=3)
    t0 = market[0].ts
    book, touch, i = L2Book("BTCUSDT"), {}, 0
    for k in range(1, 200):  # the touch at each grid time, as the data show it
        while i < len(market) and market[i].ts <= t0 + k * EVERY:
            if isinstance(market[i], BookSnapshot | BookDelta):
                book.apply(market[i])
            i += 1
        if book.best_bid() and book.best_ask():
            touch[k] = (book.best_bid()[0], book.best_ask()[0])  # type: ignore[index]
    script: dict[int, list[Event]] = {}
    for n, k in enumerate(sorted(touch)[::7][:25]):
        ts, (bid, ask) = t0 + k * EVERY, touch[k]
        script[ts] = [
            _submit(ts, f"b{n}", Side.BUY, OrderType.LIMIT, 2, limit_price=bid, tif=TimeInForce.GTD,
                    expire_ts=ts + EXPIRE),
            _submit(ts, f"s{n}", Side.SELL, OrderType.LIMIT, 1, limit_price=ask + 2, post_only=True),
            _submit(ts, f"m{n}", Side.BUY if n % 2 else Side.SELL, OrderType.MARKET, 1),
        ]
        if n:
            script[ts].append(CancelOrder(ts, "ana", f"s{n - 1}", "BTCUSDT"))
    return market, script, config


def _submit(ts: int, coid: str, side: Side, otype: OrderType, qty: int, **kw: Any) -> SubmitOrder:
    return SubmitOrder(ts, "ana", coid, "BTCUSDT", side, otype, qty, **kw)


def through_replay(market: list[MarketEvent], script: dict[int, list[Event]], config: EngineConfig) -> list[bytes]:
    def scripted(ctx: Context) -> None:
        for c in script.get(ctx.now, []):
            if isinstance(c, SubmitOrder):
                ctx.submit(c)
            else:
                ctx._send(c)  # a cancel as entered (ts = now)

    result = vt.replay(market, strategy=scripted, instrument=config.instrument, every=EVERY, realism="L2",
                       latency=LATENCY, seed=3)  # fmt: skip
    return [encode(e) for e in result.events]


def through_live(market: list[MarketEvent], script: dict[int, list[Event]], config: EngineConfig) -> list[bytes]:
    """The live market's log, slice by slice (LiveLog.slice, as LiveMarket._slice runs it), with
    the commands entered between slices (ts = entry time, as LiveMarket._route sends them)."""
    log = LiveLog(None, latency=LATENCY, seed=0, engine_config=lambda symbol: config)
    now, last, out = market[0].ts, max(e.ts for e in market), []
    while now < last:
        for c in script.get(now, []):
            log.command(c)  # type: ignore[arg-type]
        end = now + EVERY
        first = now == market[0].ts
        log.slice({"BTCUSDT": [e for e in market if (first or now < e.ts) and e.ts <= end]}, end)
        out += [encode(e) for e in log.reports()]
        now = end
    return out


def through_the_log(market: list[MarketEvent], script: dict[int, list[Event]], config: EngineConfig) -> list[bytes]:
    bus = open_bus("memory://")
    commands = [c for ts in sorted(script) for c in script[ts]]
    Sequencer(bus, entry_latency=LATENCY).feed(market, commands)  # type: ignore[arg-type]
    with ExecutionWorker(bus, {"BTCUSDT": config}) as worker:
        worker.run()
    return [r.value for r in read_topic(bus, "exec")]  # one account: one partition, in order


def test_replay_live_venue_and_workers_give_the_same_outputs(
    scenario: tuple[list[MarketEvent], dict[int, list[Event]], EngineConfig],
) -> None:
    market, script, config = scenario
    replayed = through_replay(market, script, config)
    kinds = {type(decode(b)).__name__ for b in replayed}
    assert {"OrderAccepted", "OrderFilled", "OrderExpired", "OrderCancelled"} <= kinds, kinds
    assert replayed == through_replay(market, script, config)  # twice: the same bytes
    assert through_live(market, script, config) == replayed
    assert through_the_log(market, script, config) == replayed


def test_the_scenario_fills_expires_and_cancels(
    scenario: tuple[list[MarketEvent], dict[int, list[Event]], EngineConfig],
) -> None:
    market, script, config = scenario
    venue = Venue(ExecutionEngine(config))
    for c in (c for ts in sorted(script) for c in script[ts]):
        venue.send(msgspec.structs.replace(c, ts=c.ts + LATENCY))  # type: ignore[arg-type]
    for e in market:
        venue.market(e)
    names = {type(e).__name__ for e in venue.outputs()}
    assert {"OrderAccepted", "OrderFilled", "OrderExpired", "OrderCancelled"} <= names
