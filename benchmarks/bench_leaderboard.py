"""Leaderboards at 1,000,000 members: the embedded structure and Redis, with redis-benchmark's raw
ZREVRANK on the same server as the ceiling.

Prints one JSON object.

Setup (seeded): one ``composite`` board of ``--members`` members ``s:000000000000`` … (twelve
digits, the names redis-benchmark's ``__rand_int__`` produces), scores uniform in [-5, 5] (so
about 100,000 distinct values at the 1e-4 quantum, plus ties broken by time).

Figures, per backend:

- ``load_per_s``: members set into the empty board through ``set`` (embedded). Redis is loaded
  with pipelined raw ``ZADD`` of the same packed scores (the API is one round trip per update, so
  loading through it would time the network, not the board; ``updates_per_s`` does that).
- ``updates_per_s``: ``set`` of a new random score for a random existing member of the full board
  (remove + insert in the sorted order, the worst case: a random jump, not a small increment),
  one at a time; for Redis one Lua round trip each. The floor is on this figure.
- ``batched_updates_per_s``: the same updates (other new scores) through ``set_many`` in batches
  of ``--batch`` rows, one simulated time per row; for Redis one Lua script per batch.
- ``rank``/``top10``/``around5`` ``p50_us``/``p99_us``/``max_us``: one call each for random members
  (``around`` with k = 5: 11 standings), timed one by one with ``perf_counter_ns``.
- ``redis_benchmark``: ``redis-benchmark -c 1 -P 1 ZREVRANK <key> s:__rand_int__`` on the same
  server and board, one client without pipelining like ours: its requests/s and latency, and
  ``ratio_rank_rps`` = our Redis ``rank`` calls/s ÷ its requests/s (how close the Python client
  gets to the server's raw ceiling).
- ``ok``: the floors, embedded p99 ≤ 1 ms for each query and ≥ 100,000 updates/s (one at a time).

    python benchmarks/bench_leaderboard.py [--members 1000000] [--queries 20000] [--updates 200000]
        [--redis-updates 20000] [--batch 1000] [--redis-url redis://127.0.0.1:6379/0] [--seed 7]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import platform
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import redis
from bench_live import private_redis  # the same throwaway redis-server (this directory is on sys.path)

from vtrade.game.leaderboard import Board, EmbeddedLeaderboards, Leaderboards, pack, tie_of
from vtrade.runtime.leaderboard_redis import RedisLeaderboards

FLOOR_P99_MS = 1.0
FLOOR_UPDATES_PER_S = 100_000
BOARD = Board("composite")
T0 = 1_704_196_800 * 10**9  # 2024-01-02T12:00Z, simulated


def member(i: int) -> str:
    return f"s:{i:012d}"


def percentiles(ns: list[int]) -> dict[str, float]:
    a = np.asarray(ns, dtype=np.float64) / 1e3
    return {"p50_us": round(float(np.percentile(a, 50)), 2), "p99_us": round(float(np.percentile(a, 99)), 2),
            "max_us": round(float(a.max()), 2), "calls_per_s": round(len(a) / (a.sum() / 1e6), 1)}  # fmt: skip


def time_calls(fn: Callable[[str], object], names: list[str]) -> dict[str, float]:
    out = []
    clock = time.perf_counter_ns
    for m in names:
        t = clock()
        fn(m)
        out.append(clock() - t)
    return percentiles(out)


def queries(lb: Leaderboards, names: list[str]) -> dict[str, dict[str, float]]:
    return {
        "rank": time_calls(lambda m: lb.rank(BOARD, m), names),
        "top10": time_calls(lambda m: lb.top(BOARD, 10), names),
        "around5": time_calls(lambda m: lb.around(BOARD, m, 5), names),
    }


def time_updates(lb: Leaderboards, names: list[str], scores: list[float], t0: int) -> float:
    t = time.perf_counter()
    for i, (m, s) in enumerate(zip(names, scores, strict=True)):
        lb.set(BOARD, m, s, t0 + i * 1_000_000)
    return len(names) / (time.perf_counter() - t)


def time_batches(lb: Leaderboards, names: list[str], scores: list[float], t0: int, batch: int) -> float:
    times = [t0 + i * 1_000_000 for i in range(len(names))]
    t = time.perf_counter()
    for lo in range(0, len(names), batch):
        hi = lo + batch
        lb.set_many(BOARD, names[lo:hi], scores[lo:hi], times[lo:hi])
    return len(names) / (time.perf_counter() - t)


@contextmanager
def given_redis(url: str) -> Iterator[str]:
    yield url


def redis_benchmark(url: str, key: str, members: int, requests: int) -> dict[str, Any]:
    """redis-benchmark's raw ZREVRANK on ``key`` for random ``s:<12 digits>`` members."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return {"error": "redis-benchmark not on PATH"}
    conn = redis.Redis.from_url(url).connection_pool.connection_kwargs
    cmd = [binary, "-h", str(conn.get("host", "127.0.0.1")), "-p", str(conn.get("port", 6379)),
           "--dbnum", str(conn.get("db", 0)), "-n", str(requests), "-c", "1", "-P", "1", "-r", str(members),
           "--csv", "ZREVRANK", key, "s:__rand_int__"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-500:]}
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    row = rows[-1]
    latency = {k: float(row[k]) for k in ("avg_latency_ms", "p50_latency_ms", "p99_latency_ms") if k in row}
    return {"requests": requests, "rps": float(row["rps"]), **latency}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=20_000)
    ap.add_argument("--updates", type=int, default=200_000)
    ap.add_argument("--redis-updates", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=1_000, help="rows per set_many call")
    ap.add_argument("--redis-url", default=None, help="an existing server (default: start a private one)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    n = args.members
    if n < 1 or args.batch < 1:
        ap.error("--members and --batch must be >= 1")
    rng = np.random.default_rng(args.seed)
    names = [member(i) for i in range(n)]
    scores = np.round(rng.uniform(-5, 5, n), 4).tolist()
    q_names = [names[i] for i in rng.integers(0, n, args.queries)]
    u_names = [names[i] for i in rng.integers(0, n, args.updates)]
    u_scores = np.round(rng.uniform(-5, 5, args.updates), 4).tolist()
    b_scores = np.round(rng.uniform(-5, 5, args.updates), 4).tolist()  # new scores again for the batches
    t_updates, t_batches = T0 + n * 1_000_000, T0 + (n + args.updates) * 1_000_000

    # embedded -------------------------------------------------------------------------------
    emb = EmbeddedLeaderboards()
    t = time.perf_counter()
    for i, (m, s) in enumerate(zip(names, scores, strict=True)):
        emb.set(BOARD, m, s, T0 + i * 1_000_000)
    load_s = time.perf_counter() - t
    embedded: dict[str, Any] = {"load_per_s": round(n / load_s, 1),
                                "updates_per_s": round(time_updates(emb, u_names, u_scores, t_updates), 1),
                                "batched_updates_per_s": round(time_batches(emb, u_names, b_scores, t_batches,
                                                                            args.batch), 1),
                                **queries(emb, q_names), "size": emb.size(BOARD)}  # fmt: skip

    # redis ----------------------------------------------------------------------------------
    ns = f"bench-{uuid.uuid4().hex[:8]}"
    if not args.redis_url and shutil.which("redis-server") is None:
        raise SystemExit("bench_leaderboard needs redis-server on PATH or --redis-url")
    with given_redis(args.redis_url) if args.redis_url else private_redis() as url:
        red = RedisLeaderboards(url, namespace=ns)
        key = red.key(BOARD)
        r = redis.Redis.from_url(url)
        t = time.perf_counter()
        metric = BOARD.spec
        for lo in range(0, n, 10_000):
            pipe = r.pipeline(transaction=False)
            pipe.zadd(key, {names[i]: float(pack(metric.units(scores[i]), tie_of(T0 + i * 1_000_000)))
                            for i in range(lo, min(n, lo + 10_000))})  # fmt: skip
            pipe.execute()
        load_s = time.perf_counter() - t
        # The raw ceiling first, on the freshly loaded board, then our client on the same board.
        raw = redis_benchmark(url, key, n, args.queries)
        ru = min(args.redis_updates, args.updates)
        on_redis: dict[str, Any] = {"load_per_s_pipelined_zadd": round(n / load_s, 1),
                                    "updates_per_s": round(time_updates(red, u_names[:ru], u_scores[:ru],
                                                                        t_updates), 1),
                                    "batched_updates_per_s": round(time_batches(red, u_names, b_scores, t_batches,
                                                                                args.batch), 1),
                                    **queries(red, q_names), "size": red.size(BOARD),
                                    "redis_benchmark_zrevrank": raw}  # fmt: skip
        if "rps" in raw:
            on_redis["ratio_rank_rps"] = round(on_redis["rank"]["calls_per_s"] / raw["rps"], 3)
            if "p50_latency_ms" in raw:
                on_redis["ratio_rank_p50"] = round(on_redis["rank"]["p50_us"] / 1e3 / raw["p50_latency_ms"], 3)
        r.delete(key)
        r.close()
        red.close()

    floors = {q: embedded[q]["p99_us"] / 1e3 <= FLOOR_P99_MS for q in ("rank", "top10", "around5")}
    floors["updates"] = embedded["updates_per_s"] >= FLOOR_UPDATES_PER_S
    out = {
        "members": n,
        "queries": args.queries,
        "updates": args.updates,
        "redis_updates": ru,
        "batch": args.batch,
        "embedded": embedded,
        "redis": on_redis,
        "floor": {"p99_ms": FLOOR_P99_MS, "updates_per_s": FLOOR_UPDATES_PER_S, **floors},
        "ok": all(floors.values()),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
