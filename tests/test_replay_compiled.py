"""The compiled replay path (vtrade.execution.fastpath, vtrade.runtime.replay_fast): a strategy
written twice, as a Python function of the Context and as a jitted function of a Desk, gives
byte-identical outputs and equal tables, through every command the compiled loop covers
(limit and market orders, IOC, FOK, post-only, cancel, replace, and the exchange's refusals),
and the path falls back to the Python engine, saying why, where the loop does not apply."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numba import njit

import vtrade as vt
import vtrade.jit as vj
from vtrade.core.errors import CrossedBookError
from vtrade.core.events import BookDelta, BookSnapshot, Quote, Side, TradingStatus
from vtrade.execution import events as ev
from vtrade.execution.fees import MakerTaker
from vtrade.execution.orders import TimeInForce
from vtrade.market import open_feed
from vtrade.market.l2book import L2Book, UpdateBatch
from vtrade.runtime.replay import Context, ReplayResult

ROOT = Path(__file__).resolve().parent.parent
USDM = ROOT / "data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"
EVENTS = 6_000  # the capture's first events (of 27,861): ~750 strategy calls at 100 ms


@pytest.fixture(scope="module")
def capture() -> tuple[UpdateBatch, Any]:
    feed = open_feed(USDM)
    batch = UpdateBatch.from_events((e for e in feed if not isinstance(e, Quote)), trades=True)
    return batch.slice(0, EVENTS), feed.instrument


def exerciser_py(ctx: Context) -> None:
    """Every command and refusal the compiled loop covers, in turn (see exerciser_jit)."""
    state = vars(ctx).setdefault("exerciser", [0, ""])
    k = state[0] = state[0] + 1
    bid, bid_sz, ask, ask_sz = ctx.book.touch()
    if not (bid_sz and ask_sz):
        return
    step = k % 8
    if step == 0:
        ctx.cancel_all()
    elif step == 1:
        ctx.buy(2)  # market: sweeps
        ctx.sell(3, price=bid, tif=TimeInForce.IOC)  # marketable limit, IOC
    elif step == 2:
        state[1] = ctx.buy(1000, price=ask, tif=TimeInForce.FOK)  # cannot fill in full
        ctx.buy(1, price=ask, tif=TimeInForce.FOK)
    elif step == 3:
        ctx.buy(1, price=ask, post_only=True)  # would take: refused
        no = ctx.buy(2, price=bid - 2)
        ctx.replace(no, quantity=1)  # a size cut keeps its place
    elif step == 4:
        if ctx.open_orders:
            ctx.replace(next(iter(ctx.open_orders)), price=bid - 3)  # a new price: the back of the queue
            ctx.replace(next(iter(ctx.open_orders)), quantity=0)  # refused
        ctx.cancel(f"{ctx.account}-999999")  # no such order
        if state[1]:
            ctx.cancel(state[1])  # done already
    elif step == 5:
        ctx.buy(0, price=bid)  # refused: quantity
        ctx.sell(1, price=0)  # refused: price
        ctx.sell(1, post_only=True)  # refused: a post-only market order
    else:
        ctx.buy(1, price=bid)  # rest at the touch: queue fills
        ctx.sell(1, price=ask)
        ctx.sell(1, tif=TimeInForce.IOC)


@njit(cache=True)
def exerciser_jit(d: vj.Desk) -> None:
    """exerciser_py, compiled."""
    d.mem[0] += 1
    k = d.mem[0]
    bid, bid_sz, ask, ask_sz = vj.touch(d)
    if bid_sz == 0 or ask_sz == 0:
        return
    step = k % 8
    if step == 0:
        vj.cancel_all(d)
    elif step == 1:
        vj.buy_market(d, 2)
        vj.sell(d, 3, bid, tif=vj.IOC)
    elif step == 2:
        d.mem[1] = vj.buy(d, 1000, ask, tif=vj.FOK)
        vj.buy(d, 1, ask, tif=vj.FOK)
    elif step == 3:
        vj.buy(d, 1, ask, post_only=True)
        no = vj.buy(d, 2, bid - 2)
        vj.replace(d, no, 1)
    elif step == 4:
        if vj.n_open(d) > 0:
            vj.replace(d, vj.open_order(d, 0)[0], vj.KEEP, bid - 3)
            vj.replace(d, vj.open_order(d, 0)[0], 0)
        vj.cancel(d, 999999)
        if d.mem[1]:
            vj.cancel(d, d.mem[1])
    elif step == 5:
        vj.buy(d, 0, bid)
        vj.sell(d, 1, 0)
        vj.submit(d, -1, 1, 0, vj.MARKET, vj.GTC, True)
    else:
        vj.buy(d, 1, bid)
        vj.sell(d, 1, ask)
        vj.sell_market(d, 1, tif=vj.IOC)


def both_ways(batch: UpdateBatch, inst: Any, **options: Any) -> tuple[ReplayResult, ReplayResult]:
    kw = {"instrument": inst, "every": "100ms", "realism": "L2", "latency": "1ms", **options}
    return vt.replay(batch, strategy=exerciser_py, **kw), vt.replay(batch, strategy=exerciser_jit, **kw)


@pytest.mark.parametrize("options", [
    {"queue": "prob"},
    {"queue": "risk_averse", "fees": MakerTaker(maker_bps=Decimal("-0.5"), taker_bps=Decimal("4"))},
    {"queue": "prob", "price_protection_ticks": 3, "latency": "3ms"},
], ids=["prob", "fees", "protection"])  # fmt: skip
def test_every_covered_command_gives_byte_identical_outputs(capture: tuple[UpdateBatch, Any],
                                                           options: dict[str, Any]) -> None:  # fmt: skip
    batch, inst = capture
    py, jit = both_ways(batch, inst, **options)
    assert (py.path, jit.path) == ("python", "compiled")
    kinds = {type(e).__name__ for e in py.events}
    assert kinds >= {"OrderAccepted", "OrderFilled", "OrderCancelled", "OrderRejected", "OrderReplaced"}
    reasons = {e.code for e in py.events if isinstance(e, ev.OrderRejected)}
    assert reasons >= {ev.RejectCode.POST_ONLY_WOULD_TAKE, ev.RejectCode.UNKNOWN_ORDER, ev.RejectCode.INVALID_QUANTITY,
                       ev.RejectCode.INVALID_PRICE, ev.RejectCode.ORDER_NOT_OPEN}  # fmt: skip
    assert {f.liquidity for f in py.events if isinstance(f, ev.OrderFilled)} == {"maker", "taker"}
    assert jit.output_hash() == py.output_hash()
    assert (jit.inputs, jit.market_events) == (py.inputs, py.market_events)
    for table in ("orders", "fills", "book"):
        pd.testing.assert_frame_equal(getattr(jit, table), getattr(py, table))
    assert jit.summary() == py.summary()


def test_the_fallback_runs_the_compiled_strategy_on_the_python_engine(capture: tuple[UpdateBatch, Any]) -> None:
    batch, inst = capture
    py, _ = both_ways(batch.slice(0, 2_000), inst)
    for options, why in [({"cash": 10**6}, "account rules"), ({"realism": "L1"}, "runs L2 replays")]:
        kw = {"instrument": inst, "every": "100ms", "realism": "L2", "latency": "1ms", **options}
        fallback = vt.replay(batch.slice(0, 2_000), strategy=exerciser_jit, **kw)
        assert fallback.path == "python" and why in (fallback.path_note or "")
        assert fallback.output_hash() == vt.replay(batch.slice(0, 2_000), strategy=exerciser_py, **kw).output_hash()
    assert py.path_note is None


def test_a_jitted_function_that_is_not_a_strategy_is_refused(capture: tuple[UpdateBatch, Any]) -> None:
    batch, inst = capture

    @njit
    def returns_a_number(d: vj.Desk) -> int:
        return 1

    @njit
    def bad_side(d: vj.Desk) -> None:
        vj.submit(d, 0, 1, 100, vj.LIMIT, vj.GTC, False)

    kw = {"instrument": inst, "every": "100ms", "realism": "L2", "latency": "1ms"}
    with pytest.raises(TypeError, match="a compiled strategy must be an @njit function of one Desk returning nothing"):
        vt.replay(batch.slice(0, 100), strategy=returns_a_number, **kw)
    with pytest.raises(ValueError, match="side must be"):
        vt.replay(batch.slice(0, 100), strategy=bad_side, **kw)
    with pytest.raises(ValueError, match="every must be a positive duration"):
        vt.replay(batch.slice(0, 100), strategy=exerciser_jit, **{**kw, "every": 0})


def test_the_desk_helpers_read_what_the_context_reads() -> None:
    book = L2Book()
    book.apply_levels(bids=[(100, 5), (99, 7)], asks=[(101, 3)])
    d = vj.new_desk(book.kernel_arrays())
    assert (vj.best_bid(d), vj.best_ask(d), vj.touch(d)) == ((100, 5), (101, 3), (100, 5, 101, 3))
    no = vj.buy(d, 2, 99, post_only=True)
    vj.cancel_all(d)
    assert (no, vj.n_open(d), vj.open_order(d, 0)) == (1, 1, (1, int(Side.BUY), vj.LIMIT, 99, 2))
    assert d.cmd[: d.st[6]].tolist() == [[1, 1, 1, 0, 99, 2, 0, 1], [2, 1, 0, 0, 0, 0, 0, 0]]
    with pytest.raises(IndexError):
        vj.open_order(d, 1)
    with pytest.raises(ValueError, match="max_open"):
        vj.new_desk(book.kernel_arrays(), max_open=0)
    assert np.all(d.mem == 0)


def test_a_stream_with_events_the_loop_does_not_replay_runs_once_on_the_python_engine() -> None:
    """A halt in the feed: the compiled path reads the stream up to it, then hands everything,
    from the first event, to the Python engine (a stream is read once)."""
    feed = open_feed(USDM)
    head = list(itertools.islice(iter(feed), 3_000))
    t = head[1_500].ts
    events = [*head[:1_500], TradingStatus(t, t, "BTCUSDT", 0, True), TradingStatus(t, t, "BTCUSDT", 0, False),
              *head[1_500:]]  # fmt: skip
    kw = {"instrument": feed.instrument, "every": "100ms", "realism": "L2", "latency": "1ms"}
    jit = vt.replay(iter(events), strategy=exerciser_jit, **kw)
    py = vt.replay(iter(events), strategy=exerciser_py, **kw)
    assert jit.path == "python" and "halts" in (jit.path_note or "")
    assert (jit.inputs, jit.market_events) == (py.inputs, py.market_events)
    assert len(jit.fills) > 0
    assert jit.output_hash() == py.output_hash()


def quote_for_10s_py(ctx: Context) -> None:
    """Quote at the touch for the first 10 s of the replay, then go quiet (so a silence can be skipped)."""
    start = vars(ctx).setdefault("start", ctx.now)
    if ctx.now - start < 10 * 10**9:
        ctx.cancel_all()
        bid, bid_sz, ask, ask_sz = ctx.book.touch()
        if bid_sz and ask_sz:
            ctx.buy(1, price=bid)
            ctx.sell(1, price=ask)


@njit(cache=True)
def quote_for_10s_jit(d: vj.Desk) -> None:
    """quote_for_10s_py, compiled."""
    if d.mem[0] == 0:
        d.mem[0] = vj.now(d)
    if vj.now(d) - d.mem[0] < 10 * 10**9:
        vj.cancel_all(d)
        bid, bid_sz, ask, ask_sz = vj.touch(d)
        if bid_sz and ask_sz:
            vj.buy(d, 1, bid)
            vj.sell(d, 1, ask)


def test_a_break_in_the_recording_and_a_crossing_event_are_handled_as_on_the_python_path(
    capture: tuple[UpdateBatch, Any],
) -> None:
    batch, inst = capture
    part = batch.slice(0, 3_000)
    ts = part.ts.copy()
    ts[1_500:] += 6 * 24 * 3600 * 10**9  # two recordings six days apart: strategy time skips the silence
    gap = UpdateBatch(part.kinds, part.ends, part.side, part.px, part.sz, ts, part.seq)
    kw = {"instrument": inst, "every": "100ms", "realism": "L2", "latency": "1ms"}
    py = vt.replay(gap, strategy=quote_for_10s_py, **kw)
    jit = vt.replay(gap, strategy=quote_for_10s_jit, **kw)
    assert jit.path == "compiled" and len(jit.book) < 2_000  # not a call every 100 ms through six days
    assert len(jit.fills) > 0
    assert jit.output_hash() == py.output_hash()
    pd.testing.assert_frame_equal(jit.book, py.book)

    snapshot = BookSnapshot(1, 1, "BTCUSDT", 1, [618000], [5], [618001], [5])
    crossing = BookDelta(2, 2, "BTCUSDT", 2, [618002], [1], [], [])
    bad = UpdateBatch.from_events([snapshot, crossing], trades=True)
    for strategy in (exerciser_py, exerciser_jit):
        with pytest.raises(CrossedBookError, match="would cross"):
            vt.replay(bad, instrument=inst, strategy=strategy, every="100ms", realism="L2", latency="1ms")
