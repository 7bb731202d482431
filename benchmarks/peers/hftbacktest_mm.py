"""hftbacktest peer: a one-lot, one-tick-behind market maker on the Binance USD-M BTCUSDT capture.

Run it as a script (prints one JSON object on stdout; hftbacktest's own progress lines go to stderr)::

    .venv/bin/python benchmarks/peers/hftbacktest_mm.py [--capture PATH] [--repeats 3] [--no-cold]

Pipeline, all with hftbacktest's own code (version pinned in README.md):

1. :func:`convert` runs ``hftbacktest.data.utils.binancefutures.convert`` on the raw ``.gz`` capture
   (``<local_ts_ns> <json>`` lines, the format hftbacktest's collector writes). The converter turns the
   in-stream REST snapshot into ``DEPTH_CLEAR`` + ``DEPTH_SNAPSHOT`` rows, so no separate
   ``initial_snapshot`` file is needed; it shifts every local timestamp so the smallest feed latency is 0
   (``correct_local_timestamp``) and splits rows whose exchange and local orders disagree
   (``correct_event_order``). The ``.npz`` goes to the directory you pass (a temp dir, never the repo).
2. :func:`run_market_making` replays that array with ``HashMapMarketDepthBacktest`` and the strategy in
   :data:`SETTINGS`; only the numba strategy loop is timed.
3. :func:`cold_end_to_end` does import + conversion + JIT + run in a fresh interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hftbacktest
import numpy as np
from hftbacktest import (
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EXCH_EVENT,
    GTX,
    LIMIT,
    LOCAL_EVENT,
    TRADE_EVENT,
    BacktestAsset,
    HashMapMarketDepthBacktest,
)
from hftbacktest.data.utils import binancefutures
from hftbacktest.order import BUY, CANCELED, EXPIRED, FILLED
from numba import njit

REPO_ROOT = Path(__file__).resolve().parents[2]
CAPTURE = REPO_ROOT / "data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"

TICK_SIZE = 0.1
LOT_SIZE = 0.001
ORDER_QTY = 0.001  # one lot per side
STEP_NS = 100_000_000  # cancel + re-quote every 100 ms of simulated (local) time
ENTRY_LATENCY_NS = 1_000_000  # order entry: local -> exchange, 1 ms
RESPONSE_LATENCY_NS = 1_000_000  # order response: exchange -> local, 1 ms
QUEUE_POWER_N = 2.0  # power_prob_queue_model(2.0) -> ProbQueueModel(PowerProbQueueFunc(2))
MAKER_FEE = 0.0
TAKER_FEE = 0.0

SETTINGS: dict[str, Any] = {
    "market_depth": "HashMapMarketDepthBacktest",
    "asset": "linear_asset(1.0)",
    "tick_size": TICK_SIZE,
    "lot_size": LOT_SIZE,
    "order_qty": ORDER_QTY,
    "quote": "bid at best_bid_tick - 1, ask at best_ask_tick + 1 (ticks of the local book at each step)",
    "order": "LIMIT, time_in_force=GTX (post-only; rejected as EXPIRED if it would cross on arrival)",
    "step_ns": STEP_NS,
    "loop": (
        "while elapse(step_ns) == 0: clear_inactive_orders; cancel every cancellable order (wait=False); "
        "if local time >= snapshot arrival and book valid and not crossed: submit one buy and one sell (wait=False)"
    ),
    "order_latency": f"constant_order_latency(entry={ENTRY_LATENCY_NS} ns, response={RESPONSE_LATENCY_NS} ns)",
    "feed_latency": "from the data: local_ts - exch_ts after correct_local_timestamp(base_latency=0)",
    "queue_model": f"power_prob_queue_model({QUEUE_POWER_N}): prob = back**n / (back**n + front**n)",
    "exchange": "partial_fill_exchange",
    "fees": f"trading_value_fee_model(maker={MAKER_FEE}, taker={TAKER_FEE})",
    "quoting_starts": "first step whose local time is >= the local arrival of the REST snapshot",
}

_INVALID_MIN = -(2**63)  # hftbacktest's empty-side best tick values
_INVALID_MAX = 2**63 - 1
_EV_KIND_MASK = 0xFF

# indexes into the int64 stats array filled by the numba loop
_S_STEPS, _S_QUOTING_STEPS, _S_BUY_SENT, _S_SELL_SENT = 0, 1, 2, 3
_S_BUY_FILLED, _S_SELL_FILLED, _S_EXPIRED, _S_CANCELED, _S_NUM_TRADES = 4, 5, 6, 7, 8
# indexes into the float64 final-state array
_F_POSITION, _F_BALANCE, _F_FEE, _F_VOLUME, _F_VALUE, _F_MID, _F_END_TS = 0, 1, 2, 3, 4, 5, 6


@njit
def _tally_inactive(hbt, stats) -> None:  # type: ignore[no-untyped-def]
    """Counts orders that became inactive (each is seen once: it is cleared right after)."""
    values = hbt.orders(0).values()
    while values.has_next():
        order = values.get()
        if order.status == FILLED:
            if order.side == BUY:
                stats[_S_BUY_FILLED] += 1
            else:
                stats[_S_SELL_FILLED] += 1
        elif order.status == EXPIRED:
            stats[_S_EXPIRED] += 1
        elif order.status == CANCELED:
            stats[_S_CANCELED] += 1


@njit
def _mm_loop(hbt, start_ts, tick_size, qty, step_ns, stats, final) -> None:  # type: ignore[no-untyped-def]
    """The strategy: cancel everything, then one GTX bid one tick under best bid and one ask one over best ask."""
    order_id = 0
    cancel_ids = np.empty(64, np.uint64)
    while hbt.elapse(step_ns) == 0:
        stats[_S_STEPS] += 1
        _tally_inactive(hbt, stats)
        hbt.clear_inactive_orders(0)

        n_cancel = 0
        values = hbt.orders(0).values()
        while values.has_next():
            order = values.get()
            if order.cancellable and n_cancel < cancel_ids.shape[0]:
                cancel_ids[n_cancel] = order.order_id
                n_cancel += 1
        for i in range(n_cancel):
            hbt.cancel(0, cancel_ids[i], False)

        if hbt.current_timestamp < start_ts:
            continue
        depth = hbt.depth(0)
        bid_tick = depth.best_bid_tick
        ask_tick = depth.best_ask_tick
        if bid_tick == _INVALID_MIN or ask_tick == _INVALID_MAX or bid_tick >= ask_tick:
            continue
        stats[_S_QUOTING_STEPS] += 1
        order_id += 1
        hbt.submit_buy_order(0, order_id, (bid_tick - 1) * tick_size, qty, GTX, LIMIT, False)
        stats[_S_BUY_SENT] += 1
        order_id += 1
        hbt.submit_sell_order(0, order_id, (ask_tick + 1) * tick_size, qty, GTX, LIMIT, False)
        stats[_S_SELL_SENT] += 1

    _tally_inactive(hbt, stats)
    sv = hbt.state_values(0)
    stats[_S_NUM_TRADES] = sv.num_trades
    final[_F_POSITION] = sv.position
    final[_F_BALANCE] = sv.balance
    final[_F_FEE] = sv.fee
    final[_F_VOLUME] = sv.trading_volume
    final[_F_VALUE] = sv.trading_value
    depth = hbt.depth(0)
    final[_F_MID] = (depth.best_bid + depth.best_ask) / 2.0
    final[_F_END_TS] = hbt.current_timestamp


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Sends stdout (Python and C level: numba's print) to stderr, so the JSON on stdout stays clean."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    libc.fflush(None)
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)


def convert(capture_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Converts the raw capture with hftbacktest's Binance futures converter; returns the ``.npz`` path.

    ``combined_stream=True`` (lines are ``{"stream":..., "data":...}``), ``opt=''`` (bookTicker and markPrice
    lines are skipped; only depthUpdate, MARKET trades and the REST snapshot become rows), ``base_latency=0``.
    """
    capture = Path(capture_path)
    out = Path(out_dir) / (capture.name.removesuffix(".gz").removesuffix(".jsonl") + ".npz")
    with _stdout_to_stderr():
        binancefutures.convert(str(capture), output_filename=str(out), combined_stream=True, base_latency=0)
    return out


def count_events(data: np.ndarray) -> dict[str, int]:
    """Row counts of the converted event array.

    ``events`` (the benchmark's figure) = rows whose kind is DEPTH_EVENT or TRADE_EVENT, i.e. price-level updates
    plus trades as hftbacktest stores them. ``correct_event_order`` may store one feed update as two rows (one
    EXCH-only, one LOCAL-only) when exchange and local order disagree, so ``events_unique`` counts only the rows
    carrying the EXCH flag: each feed update exactly once.
    """
    kind = data["ev"] & _EV_KIND_MASK
    exch = (data["ev"] & EXCH_EVENT) != 0
    local = (data["ev"] & LOCAL_EVENT) != 0
    depth = kind == DEPTH_EVENT
    trade = kind == TRADE_EVENT
    snap = (kind == DEPTH_SNAPSHOT_EVENT) | (kind == DEPTH_CLEAR_EVENT)
    return {
        "rows_total": len(data),
        "events": int(depth.sum() + trade.sum()),
        "depth_rows": int(depth.sum()),
        "trade_rows": int(trade.sum()),
        "events_unique": int((exch & (depth | trade)).sum()),
        "depth_unique": int((exch & depth).sum()),
        "trades_unique": int((exch & trade).sum()),
        "split_rows": int(((exch ^ local) & (depth | trade)).sum()),
        "snapshot_rows": int(snap.sum()),
    }


def snapshot_arrival_ts(data: np.ndarray) -> int:
    """Local (corrected) timestamp at which the REST snapshot reaches the strategy; first row if none."""
    kind = data["ev"] & _EV_KIND_MASK
    mask = ((kind == DEPTH_SNAPSHOT_EVENT) | (kind == DEPTH_CLEAR_EVENT)) & ((data["ev"] & LOCAL_EVENT) != 0)
    return int(data["local_ts"][mask].min()) if mask.any() else int(data["local_ts"].min())


def _build(data: np.ndarray) -> Any:
    asset = (
        BacktestAsset()
        .data(data)
        .linear_asset(1.0)
        .constant_order_latency(ENTRY_LATENCY_NS, RESPONSE_LATENCY_NS)
        .power_prob_queue_model(QUEUE_POWER_N)
        .partial_fill_exchange()
        .trading_value_fee_model(MAKER_FEE, TAKER_FEE)
        .tick_size(TICK_SIZE)
        .lot_size(LOT_SIZE)
    )
    return HashMapMarketDepthBacktest([asset])


def _run_once(data: np.ndarray, start_ts: int) -> tuple[float, np.ndarray, np.ndarray]:
    """Builds a fresh backtest (untimed), times only the strategy loop, closes it."""
    hbt = _build(data)
    stats = np.zeros(16, np.int64)
    final = np.zeros(8, np.float64)
    t0 = time.perf_counter()
    _mm_loop(hbt, start_ts, TICK_SIZE, ORDER_QTY, STEP_NS, stats, final)
    seconds = time.perf_counter() - t0
    hbt.close()
    return seconds, stats, final


def run_market_making(npz_path: str | os.PathLike[str], *, warm: bool, repeats: int = 3) -> dict[str, Any]:
    """Replays the converted capture with the market maker in :data:`SETTINGS`.

    ``warm=True``: one full untimed run first (compiles the numba strategy and hftbacktest's jitclasses), then
    ``repeats`` timed runs, each on a freshly built backtest; ``seconds`` is their median. ``warm=False``: one
    timed run that includes the JIT compilation. Loading the ``.npz`` and building the backtest are never timed.
    """
    data = np.load(npz_path)["data"]
    start_ts = snapshot_arrival_ts(data)
    counts = count_events(data)
    if warm:
        _run_once(data, start_ts)
        runs = [_run_once(data, start_ts) for _ in range(max(1, repeats))]
    else:
        runs = [_run_once(data, start_ts)]
    times = [r[0] for r in runs]
    stats, final = runs[-1][1], runs[-1][2]
    if any(not np.array_equal(r[1], stats) for r in runs):
        raise RuntimeError("hftbacktest runs disagree on the same input")
    seconds = statistics.median(times)
    position = float(final[_F_POSITION])
    return {
        "warm": warm,
        "seconds": seconds,
        "seconds_all": times,
        "events_per_s": counts["events"] / seconds,
        "unique_events_per_s": counts["events_unique"] / seconds,
        **counts,
        "fills": int(stats[_S_NUM_TRADES]),
        "filled_buy_orders": int(stats[_S_BUY_FILLED]),
        "filled_sell_orders": int(stats[_S_SELL_FILLED]),
        "final_position": round(position, 9),
        "balance": float(final[_F_BALANCE]),
        "equity_at_mid": float(final[_F_BALANCE]) + position * float(final[_F_MID]),
        "fees": float(final[_F_FEE]),
        "trading_volume": round(float(final[_F_VOLUME]), 9),
        "trading_value": float(final[_F_VALUE]),
        "steps": int(stats[_S_STEPS]),
        "quoting_steps": int(stats[_S_QUOTING_STEPS]),
        "orders_submitted": int(stats[_S_BUY_SENT] + stats[_S_SELL_SENT]),
        "orders_expired_gtx": int(stats[_S_EXPIRED]),
        "orders_canceled": int(stats[_S_CANCELED]),
        "first_local_ts": int(data["local_ts"].min()),
        "quote_start_local_ts": start_ts,
        "end_local_ts": int(final[_F_END_TS]),
    }


_CHILD_MARKER = "HBT_COLD_RESULT "

_CHILD_CODE = """
import time
_t0 = time.perf_counter()
import json, sys, tempfile
sys.path.insert(0, {root!r})
from benchmarks.peers import hftbacktest_mm as m
_t1 = time.perf_counter()
with tempfile.TemporaryDirectory(prefix="hbt_cold_") as tmp:
    npz = m.convert({capture!r}, tmp)
    _t2 = time.perf_counter()
    res = m.run_market_making(npz, warm=False)
    _t3 = time.perf_counter()
out = {{
    "import_s": _t1 - _t0,
    "convert_s": _t2 - _t1,
    "jit_and_run_s": _t3 - _t2,
    "jit_and_loop_s": res["seconds"],
    "child_total_s": _t3 - _t0,
    "fills": res["fills"],
    "final_position": res["final_position"],
    "events": res["events"],
}}
print({marker!r} + json.dumps(out), flush=True)
"""


def cold_end_to_end(capture_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Process start -> finished market-making result in a fresh interpreter, timed by this (parent) process.

    The child's breakdown: ``import_s`` (hftbacktest, numba, numpy and this module), ``convert_s`` (raw ``.gz``
    -> ``.npz`` with hftbacktest's converter, including its numba helpers' JIT and the compressed save),
    ``jit_and_run_s`` (load ``.npz``, build the backtest, JIT the strategy, run it); ``jit_and_loop_s`` is the
    part of that spent in the first strategy call. Nothing is numba-cached (no ``cache=True``), so every
    cold run compiles.
    """
    code = textwrap.dedent(
        _CHILD_CODE.format(root=str(REPO_ROOT), capture=str(Path(capture_path).resolve()), marker=_CHILD_MARKER)
    )
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"cold hftbacktest child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    line = next(ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith(_CHILD_MARKER))
    child = json.loads(line[len(_CHILD_MARKER) :])
    child["interpreter_start_and_exit_s"] = wall - child["child_total_s"]
    return {"seconds": wall, "breakdown": child}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--capture", type=Path, default=CAPTURE)
    ap.add_argument("--repeats", type=int, default=3, help="timed warm runs (median reported)")
    ap.add_argument("--no-cold", action="store_true", help="skip the fresh-subprocess end-to-end run")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="hbt_peer_") as tmp:
        t0 = time.perf_counter()
        npz = convert(args.capture, tmp)
        convert_s = time.perf_counter() - t0
        res = run_market_making(npz, warm=True, repeats=args.repeats)
    cold = None if args.no_cold else cold_end_to_end(args.capture)
    if res["fills"] <= 0:
        print("warning: the hftbacktest market maker got no fills", file=sys.stderr)
    if cold is not None and cold["breakdown"]["fills"] != res["fills"]:
        print("warning: cold and warm runs disagree on fills", file=sys.stderr)
    out = {
        "peer": "hftbacktest",
        "version": hftbacktest.__version__,
        "events": res["events"],
        "events_unique": res["events_unique"],
        "fills": res["fills"],
        "final_position": res["final_position"],
        "warm_events_per_s": res["events_per_s"],
        "warm_unique_events_per_s": res["unique_events_per_s"],
        "warm_seconds": res["seconds"],
        "cold_seconds": None if cold is None else cold["seconds"],
        "cold_breakdown": None if cold is None else cold["breakdown"],
        "convert_seconds_in_process": convert_s,
        "run": res,
        "settings": SETTINGS,
        "numpy": np.__version__,
        "numba": __import__("numba").__version__,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
