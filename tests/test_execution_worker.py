"""The execution worker: one sequenced input on the log, deterministic outputs on every run,
transport and restart (DESIGN.md §1, §4)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vtrade.core.events import BookDelta, BookSnapshot, Event, MarketEvent, Side, Trade, encode
from vtrade.core.ids import partition_for
from vtrade.core.instruments import BINANCE_BTCUSDT_USDM
from vtrade.execution import events as ev
from vtrade.execution.engine import EngineConfig, ExecutionEngine
from vtrade.execution.fees import MakerTaker
from vtrade.execution.orders import CancelOrder, OrderType, ReplaceOrder, SubmitOrder
from vtrade.market.feeds import open_feed
from vtrade.market.l2book import L2Book
from vtrade.runtime.bus import Bus, Consumer, TopicPartition, open_bus
from vtrade.runtime.bus.redis_streams import RedisBus
from vtrade.runtime.execution_worker import (
    DeterminismError,
    DuckDBSnapshotStore,
    ExecutionWorker,
    MemorySnapshotStore,
    Sequencer,
    merge,
    output_hash,
    read_topic,
)

FEED = Path(__file__).resolve().parent.parent / "data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"
BTC = BINANCE_BTCUSDT_USDM
CONFIGS = {"BTCUSDT": EngineConfig(BTC)}
LATENCY = "1ms"
N_EVENTS = 3000


# ---------------------------------------------------------------------------------------------
# input: the first 3,000 events of the capture and a handful of commands placed near the touch


@pytest.fixture(scope="module")
def market() -> list[MarketEvent]:
    return list(itertools.islice(open_feed(FEED, instrument=BTC), N_EVENTS))


@pytest.fixture(scope="module")
def commands(market: list[MarketEvent]) -> list[Event]:
    book = L2Book("BTCUSDT")
    touch: dict[int, tuple[int, int, int]] = {}  # event index -> (ts, best bid, best ask)
    for i, e in enumerate(market):
        if isinstance(e, BookSnapshot | BookDelta):
            book.apply(e)
        bid, ask = book.best_bid(), book.best_ask()
        if bid and ask:
            touch[i] = (e.ts, bid[0], ask[0])

    def at(i: int) -> tuple[int, int, int]:
        return touch[i]

    def limit(i: int, acct: str, coid: str, side: Side, qty: int, offset: int = 0) -> SubmitOrder:
        ts, bid, ask = at(i)
        price = (bid - offset) if side is Side.BUY else (ask + offset)
        return SubmitOrder(ts, acct, coid, "BTCUSDT", side, OrderType.LIMIT, qty, limit_price=price)

    out: list[Event] = [
        limit(200, "ana", "a1", Side.BUY, 5),  # joins the bid queue
        limit(200, "ana", "a2", Side.SELL, 5),  # joins the ask queue
        SubmitOrder(at(400)[0], "ben", "b1", "BTCUSDT", Side.BUY, OrderType.MARKET, 30),  # takes
        limit(700, "ben", "b2", Side.BUY, 4, offset=300),  # rests deep, then is cancelled
        SubmitOrder(at(1100)[0], "ana", "a3", "BTCUSDT", Side.SELL, OrderType.MARKET, 12),
        ReplaceOrder(at(1300)[0], "ben", "b2", "BTCUSDT", quantity=2),
        CancelOrder(at(1800)[0], "ben", "b2", "BTCUSDT"),
        limit(2000, "cat", "c1", Side.SELL, 3, offset=0),
        CancelOrder(at(2600)[0], "ana", "a1", "BTCUSDT"),  # cancelled, or rejected if it filled
        SubmitOrder(at(2700)[0], "cat", "c2", "ETHUSDT", Side.BUY, OrderType.MARKET, 1),  # unknown symbol
    ]
    return out


@pytest.fixture(scope="module")
def expected(market: list[MarketEvent], commands: list[Event]) -> list[ev.ExecEvent]:
    """What the engine itself makes of the merged sequence, with no bus involved."""
    engine = ExecutionEngine(CONFIGS["BTCUSDT"])
    out: list[ev.ExecEvent] = []
    for e in merge(market, commands, entry_latency=LATENCY):  # type: ignore[arg-type]
        if e.symbol == "BTCUSDT":  # type: ignore[attr-defined]
            out.extend(engine.step(e))
        else:
            assert isinstance(e, SubmitOrder)
            out.append(ev.OrderRejected(e.ts, e.account, e.client_order_id, e.symbol, ev.RejectCode.UNKNOWN_SYMBOL,
                                        f"no exchange trades {e.symbol!r} in this session"))  # fmt: skip
    return out


def test_the_input_exercises_makers_takers_cancels_and_rejects(expected: list[ev.ExecEvent]) -> None:
    fills = [e for e in expected if isinstance(e, ev.OrderFilled)]
    assert {str(f.liquidity) for f in fills} == {"maker", "taker"}
    assert any(isinstance(e, ev.OrderCancelled) and e.client_order_id == "b2" for e in expected)
    assert any(isinstance(e, ev.OrderReplaced) for e in expected)
    assert any(isinstance(e, ev.OrderRejected) and e.code is ev.RejectCode.UNKNOWN_SYMBOL for e in expected)
    assert len({f.fill_id for f in fills}) == len(fills)


# ---------------------------------------------------------------------------------------------
# transports


@pytest.fixture(params=["memory", "redis"])
def make_bus(request: pytest.FixtureRequest) -> Iterator[Callable[[], Bus]]:
    """A factory of fresh, empty buses of one transport (a new namespace per Redis bus)."""
    made: list[Bus] = []

    def make() -> Bus:
        if request.param == "memory":
            bus: Bus = open_bus("memory://")
        else:
            bus = open_bus(request.getfixturevalue("redis_url"), namespace=f"vtw-{uuid.uuid4().hex[:12]}")
        made.append(bus)
        return bus

    yield make
    for bus in made:
        if isinstance(bus, RedisBus):
            bus.purge()
        bus.close()


def sequence(bus: Bus, market: list[MarketEvent], commands: list[Event]) -> int:
    return Sequencer(bus, entry_latency=LATENCY).feed(market, commands)  # type: ignore[arg-type]


def run_uninterrupted(bus: Bus, market: list[MarketEvent], commands: list[Event]) -> str:
    assert sequence(bus, market, commands) == N_EVENTS + len(commands)
    with ExecutionWorker(bus, CONFIGS, snapshot_every=1000) as w:
        assert w.run() == N_EVENTS + len(commands)
        assert w.stats.duplicates == 0 and w.stats.suppressed == 0
    return output_hash(bus, "exec")


# ---------------------------------------------------------------------------------------------
# the sequencer


def test_sequencer_orders_by_arrival_with_market_data_first_on_ties() -> None:
    def trade(ts: int) -> Trade:
        return Trade(ts, ts, "SPY", ts, 100, 1)

    s = Sequencer(None, entry_latency=10)
    late = SubmitOrder(5, "a", "late", "SPY", Side.BUY, OrderType.MARKET, 1)  # arrives at 15
    first = CancelOrder(0, "a", "x", "SPY")  # arrives at 10, given first
    second = CancelOrder(0, "a", "y", "SPY")  # arrives at 10 too: after `first`
    assert [s.command(c) for c in (late, first, second)] == [15, 10, 10]
    assert s.market(trade(10)) == [trade(10)]  # a tie: market data first, the commands wait
    out = s.market(trade(20))
    assert [(type(e).__name__, e.ts) for e in out] == [
        ("CancelOrder", 10), ("CancelOrder", 10), ("SubmitOrder", 15), ("Trade", 20),
    ]  # fmt: skip
    assert [e.client_order_id for e in out[:3]] == ["x", "y", "late"]  # type: ignore[attr-defined]
    assert out[2] == SubmitOrder(15, "a", "late", "SPY", Side.BUY, OrderType.MARKET, 1)  # stamped on arrival
    # A command that reaches the sequencer after the market passed its arrival time: stamped now.
    assert s.command(CancelOrder(3, "a", "z", "SPY")) == 20
    assert [e.ts for e in s.flush()] == [20]
    with pytest.raises(TypeError, match="a command is a SubmitOrder"):
        s.command(trade(1))  # type: ignore[arg-type]


def test_sequencer_publishes_one_time_ordered_partition_per_symbol(
    make_bus: Callable[[], Bus], market: list[MarketEvent], commands: list[Event]
) -> None:
    bus = make_bus()
    n = sequence(bus, market, commands)
    records = read_topic(bus, "exec.in")
    assert n == len(records) == N_EVENTS + len(commands)
    btc = [r for r in records if r.key == "BTCUSDT"]
    assert {r.partition for r in btc} == {btc[0].partition}
    times = [r.event.ts for r in btc]
    assert [r.event for r in btc if isinstance(r.event, MarketEvent)] == market  # the feed, in its order
    arrivals = [r.event for r in btc if not isinstance(r.event, MarketEvent)]
    assert len(arrivals) == len(commands) - 1
    for c in arrivals:  # every command is stamped 1 ms after entry
        entered = next(x for x in commands if x.client_order_id == c.client_order_id and type(x) is type(c))  # type: ignore[attr-defined]
        assert c.ts == entered.ts + 1_000_000
    i = times.index(arrivals[0].ts)
    assert isinstance(btc[i].event, MarketEvent) or times[i - 1] < times[i]  # market first on a tie
    assert [r.value for r in btc] == [encode(e) for e in merge(market, commands, entry_latency=LATENCY)  # type: ignore[arg-type]
                                      if e.symbol == "BTCUSDT"]  # type: ignore[attr-defined]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# (a) same input twice -> identical outputs


def test_same_input_twice_gives_identical_outputs(
    make_bus: Callable[[], Bus], market: list[MarketEvent], commands: list[Event], expected: list[ev.ExecEvent]
) -> None:
    first, second = make_bus(), make_bus()
    h1 = run_uninterrupted(first, market, commands)
    h2 = run_uninterrupted(second, market, commands)
    assert h1 == h2
    published = read_topic(first, "exec")
    # Exactly the engine's outputs, each keyed by its account, in order within each partition.
    assert sorted(r.value for r in published) == sorted(encode(e) for e in expected)
    for p in {r.partition for r in published}:
        mine = [r for r in published if r.partition == p and r.event.symbol == "BTCUSDT"]  # type: ignore[attr-defined]
        accounts = {r.key for r in mine}
        btc = [e for e in expected if e.symbol == "BTCUSDT"]
        assert [r.value for r in mine] == [encode(e) for e in btc if e.account in accounts]
    assert all(r.key == r.event.account for r in published)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# (b) kill mid-way, restart from the last snapshot -> the same log as an uninterrupted run


@pytest.mark.parametrize(
    ("snapshot_every", "committed_batches", "uncommitted_batches"),
    [
        (700, 4, 1),  # committed (~1000) past the snapshot (699): rewind, replay from 700
        (400, 4, 2),  # snapshot (1199) past the committed offset (~1000): ~1000..1199 are duplicates
    ],
)
def test_restart_from_snapshot_matches_an_uninterrupted_run(
    make_bus: Callable[[], Bus],
    market: list[MarketEvent],
    commands: list[Event],
    snapshot_every: int,
    committed_batches: int,
    uncommitted_batches: int,
) -> None:
    reference = run_uninterrupted(make_bus(), market, commands)
    bus = make_bus()
    sequence(bus, market, commands)
    store = MemorySnapshotStore()
    first = ExecutionWorker(bus, CONFIGS, snapshot_every=snapshot_every, store=store)
    for _ in range(committed_batches):
        assert first.poll_once(250) == 250
    for _ in range(uncommitted_batches):
        assert first.poll_once(250, commit=False) == 250
    btc = TopicPartition("exec.in", partition_for("BTCUSDT", 8))
    committed = first._consumer.committed(*btc)
    snapshot = store.latest("exec", *btc)
    assert committed is not None and snapshot is not None
    assert snapshot.offset < first.offsets[btc]  # the worker got past its last snapshot ...
    assert len(read_topic(bus, "exec")) > 0
    first.close()  # ... and is killed: no commit of the last batches, nothing more published

    second = ExecutionWorker.restore(bus, CONFIGS, store=store, snapshot_every=snapshot_every)
    second.run()
    # It resumed from the snapshot, not from the committed offset nor from the start ...
    assert second.stats.duplicates == max(0, snapshot.offset + 1 - committed)
    assert second.offsets[btc] == N_EVENTS + len(commands) - 2
    assert second.stats.applied >= second.offsets[btc] - snapshot.offset
    # ... recomputed what the dead worker had already published, and did not publish it again.
    assert second.stats.suppressed > 0
    assert output_hash(bus, "exec") == reference
    fills = [r.event for r in read_topic(bus, "exec") if isinstance(r.event, ev.OrderFilled)]
    assert len({f.fill_id for f in fills}) == len(fills)
    second.close()


def test_a_partition_taken_over_by_a_worker_with_a_store_of_its_own_publishes_nothing_twice(
    make_bus: Callable[[], Bus], market: list[MarketEvent], commands: list[Event]
) -> None:
    """Workers on other machines keep their own snapshot stores: the one that takes a partition
    over has no snapshot of it, replays it from the start and checks the outputs on the log."""
    reference = run_uninterrupted(make_bus(), market, commands)
    bus = make_bus()
    sequence(bus, market, commands)
    first = ExecutionWorker(bus, CONFIGS, snapshot_every=300, store=MemorySnapshotStore())
    for _ in range(3):
        first.poll_once(250)
    first.poll_once(250, commit=False)  # published, not committed: the next owner sees it again
    first.close()
    second = ExecutionWorker(bus, CONFIGS, snapshot_every=300, store=MemorySnapshotStore())
    second.run()
    assert second.stats.suppressed > 0 and second.stats.restored == 0
    assert output_hash(bus, "exec") == reference
    fills = [r.event for r in read_topic(bus, "exec") if isinstance(r.event, ev.OrderFilled)]
    assert len({f.fill_id for f in fills}) == len(fills)
    second.close()


def test_restart_after_a_checkpoint_with_a_file_snapshot_store(
    tmp_path: Path, market: list[MarketEvent], commands: list[Event]
) -> None:
    reference = run_uninterrupted(open_bus("memory://"), market, commands)
    bus = open_bus("memory://")
    sequence(bus, market, commands)
    path = tmp_path / "snapshots.duckdb"
    with DuckDBSnapshotStore(path) as store:
        w = ExecutionWorker(bus, CONFIGS, snapshot_every=500, store=store)
        w.run(max_records=1700)
        w.checkpoint()  # a planned stop: snapshot at 1699, committed 1700
        w.close()
    with DuckDBSnapshotStore(path) as store:
        assert store.partitions("exec", "exec.in") == {tp.partition: o for tp, o in w.offsets.items()}
        w2 = ExecutionWorker.restore(bus, CONFIGS, store=store, snapshot_every=500)
        w2.run()
        assert w2.stats.suppressed == 0 and w2.stats.duplicates == 0  # nothing to redo after a clean stop
        w2.close()
    assert output_hash(bus, "exec") == reference


def reference_and_input(
    make_bus: Callable[[], Bus], market: list[MarketEvent], commands: list[Event]
) -> tuple[str, Bus]:
    """The output hash of an uninterrupted run, and a fresh bus holding the same input."""
    reference = run_uninterrupted(make_bus(), market, commands)
    bus = make_bus()
    sequence(bus, market, commands)
    return reference, bus


def test_a_partition_moved_to_a_worker_with_its_own_store_is_replayed_not_republished(
    make_bus: Callable[[], Bus], market: list[MarketEvent], commands: list[Event]
) -> None:
    reference, bus = reference_and_input(make_bus, market, commands)
    first = ExecutionWorker(bus, CONFIGS, snapshot_every=400, store=MemorySnapshotStore(), member_id="a")
    for _ in range(4):
        assert first.poll_once(250) == 250
    published = sum(r.event.symbol == "BTCUSDT" for r in read_topic(bus, "exec"))  # type: ignore[attr-defined]
    assert published > 0
    first.close()  # it leaves: the partition moves to a worker whose store never saw it
    second = ExecutionWorker(bus, CONFIGS, snapshot_every=400, store=MemorySnapshotStore(), member_id="b")
    second.run()
    # It started from the genesis (offset 0, not the group's commit) and checked what the first
    # worker had published instead of publishing it again.
    btc = TopicPartition("exec.in", partition_for("BTCUSDT", 8))
    assert second.stats.applied == second.offsets[btc] + 1 > 1000 and second.stats.suppressed == published
    assert output_hash(bus, "exec") == reference
    second.close()


def test_a_snapshot_taken_while_replaying_behind_a_previous_owner_restores_exactly(
    make_bus: Callable[[], Bus], market: list[MarketEvent], commands: list[Event]
) -> None:
    reference, bus = reference_and_input(make_bus, market, commands)
    btc = TopicPartition("exec.in", partition_for("BTCUSDT", 8))
    mine = MemorySnapshotStore()

    def worker(store: MemorySnapshotStore, member: str) -> ExecutionWorker:
        return ExecutionWorker(bus, CONFIGS, snapshot_every=100, store=store, member_id=member)

    def run_to(w: ExecutionWorker, offset: int) -> None:
        while w.offsets.get(btc, -1) < offset:
            assert w.poll_once(50) > 0

    with worker(mine, "a") as first:
        run_to(first, 300)
    with worker(MemorySnapshotStore(), "b") as other:  # another store: it gets far further
        run_to(other, 2800)
    # Back to a worker on the first store: it replays from ~300 behind the other's outputs,
    # snapshots on the way (those outputs lie before the end of the log) and dies before 2800.
    with worker(mine, "a") as again:
        run_to(again, 1000)
        assert again.stats.suppressed > 0 and again.stats.published == 0
    last = worker(mine, "a")  # from the snapshot taken mid-replay
    last.run()
    assert last.stats.suppressed > 0
    assert output_hash(bus, "exec") == reference
    last.close()


def test_a_partition_lost_while_its_worker_rewinds_it_is_left_to_its_new_owner(
    make_bus: Callable[[], Bus], market: list[MarketEvent], commands: list[Event]
) -> None:
    reference, bus = reference_and_input(make_bus, market, commands)
    with ExecutionWorker(bus, CONFIGS, member_id="m") as first:  # commits past offset 0 ...
        first.poll_once(500)
    worker = ExecutionWorker(bus, CONFIGS, member_id="m")  # ... so this one rewinds to its genesis
    btc = TopicPartition("exec.in", partition_for("BTCUSDT", 8))
    # A member that takes BTCUSDT's half of the partitions joins just before that rewind.
    rival_id = "a" if btc.partition < 4 else "z"
    rivals: list[Consumer] = []
    opened = worker._open

    def open_then_lose(tp: TopicPartition) -> Any:
        part = opened(tp)
        rivals.append(bus.consumer("exec", "exec.in", member_id=rival_id))
        return part

    worker._open = open_then_lose  # type: ignore[method-assign]
    assert worker.poll_once(500) == 500  # no error: the rewind of a partition it lost is skipped
    assert btc not in worker.offsets
    assert btc in rivals[0].assignment()
    rivals[0].close()  # the partition comes back, and the worker replays it from its genesis
    worker._open = opened  # type: ignore[method-assign]
    worker.run()
    assert output_hash(bus, "exec") == reference
    worker.close()


def test_a_record_delivered_twice_is_applied_once(market: list[MarketEvent], commands: list[Event]) -> None:
    bus = open_bus("memory://")
    sequence(bus, market[:500], commands[:3])
    w = ExecutionWorker(bus, CONFIGS)
    w.poll_once(300)
    tp = next(iter(w.offsets))
    w._consumer.seek(tp.topic, tp.partition, 100)  # a redelivery, as after a rebalance
    w.run()
    assert w.stats.duplicates == 200 and w.stats.applied == 503
    assert w.offsets == {tp: 502}
    engine = ExecutionEngine(CONFIGS["BTCUSDT"])
    outs = [encode(o) for e in merge(market[:500], commands[:3], entry_latency=LATENCY) for o in engine.step(e)]  # type: ignore[arg-type]
    assert sorted(r.value for r in read_topic(bus, "exec")) == sorted(outs)
    w.close()


def test_a_restart_that_computes_different_outputs_is_refused(market: list[MarketEvent], commands: list[Event]) -> None:
    bus = open_bus("memory://")
    sequence(bus, market, commands)
    store = MemorySnapshotStore()
    w = ExecutionWorker(bus, CONFIGS, snapshot_every=100_000, store=store)  # only the genesis snapshot
    w.poll_once(1000, commit=False)
    assert any(isinstance(r.event, ev.OrderFilled) for r in read_topic(bus, "exec"))
    w.close()
    # The same log, but the engine now charges fees: the recomputed fills differ from the log's.
    charging = {"BTCUSDT": EngineConfig(BTC, fees=MakerTaker(0, 5))}
    w2 = ExecutionWorker.restore(bus, charging, store=store)
    with pytest.raises(DeterminismError, match="already holds a different event"):
        w2.run()
    w2.close()


# ---------------------------------------------------------------------------------------------
# (c) memory and Redis give the same outputs


def test_memory_and_redis_publish_identical_logs(
    redis_url: str, market: list[MarketEvent], commands: list[Event]
) -> None:
    memory = open_bus("memory://")
    redis_bus = open_bus(redis_url, namespace=f"vtw-{uuid.uuid4().hex[:12]}")
    try:
        assert run_uninterrupted(memory, market, commands) == run_uninterrupted(redis_bus, market, commands)
        assert output_hash(memory, "exec.in") == output_hash(redis_bus, "exec.in")
    finally:
        assert isinstance(redis_bus, RedisBus)
        redis_bus.purge()
        redis_bus.close()
