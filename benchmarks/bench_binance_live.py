"""Throughput of the live Binance feed, as one JSON object:

- the synchronisation core (:class:`~vtrade.market.feeds.binance_live.BinanceSync`) replaying the
  shipped USD-M capture's lines (messages per second), next to the capture reader
  (:class:`~vtrade.market.feeds.binance.BinanceFeed`) on the same file, the peer it must match;
- the whole connector (tornado websocket client, REST snapshot, the core) against the local
  exchange on 127.0.0.1 streaming as fast as the client reads (messages per second; the server
  runs in the same process, so this is a floor).

    python benchmarks/bench_binance_live.py [--repeat 3] [--messages 30000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import time
from pathlib import Path

from vtrade.core.events import BookDelta, BookSnapshot, Event
from vtrade.market.feeds.binance import BinanceFeed
from vtrade.market.feeds.binance_live import BinanceSync, replay_lines
from vtrade.runtime.binance_live import BinanceLive
from vtrade.runtime.binance_local import LocalBinance

USDM = Path(__file__).resolve().parent.parent / "data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"


def core_rate(repeat: int) -> tuple[float, float]:
    """(core, reader) lines per second, best of ``repeat``; the lines are decompressed once first."""
    with gzip.open(USDM, "rt") as fh:
        lines = fh.readlines()
    feed = BinanceFeed(USDM)
    feed.resolve_instrument()
    inst = feed.instrument
    assert inst is not None
    best_core = best_reader = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        n = sum(1 for _ in replay_lines(BinanceSync("usdm", [inst]), lines))
        best_core = min(best_core, time.perf_counter() - t)
        t = time.perf_counter()
        m = sum(1 for _ in BinanceFeed(USDM, instrument=inst))
        best_reader = min(best_reader, time.perf_counter() - t)
    assert n > 0 and m > 0
    return len(lines) / best_core, len(lines) / best_reader


def live_rate(messages: int) -> float:
    """Messages per second through the connector from the local exchange, tape start to end."""
    with LocalBinance([USDM], limit=messages) as ex:
        final = max(m.diff["u"] for m in ex.tape if m.diff is not None)
        last = [0]  # the latest book update id that came out

        def seen(e: Event) -> None:
            if isinstance(e, BookDelta | BookSnapshot):
                last[0] = e.seq

        feed = BinanceLive(ex.symbols, market="usdm", ws_url=ex.ws_url, rest_url=ex.rest_url, on_event=seen)
        t = time.perf_counter()
        feed.start()
        deadline = time.monotonic() + 600
        while not (ex.done and last[0] >= final) and time.monotonic() < deadline:
            time.sleep(0.005)
        took = time.perf_counter() - t
        received = feed.stats.get("messages", 0)
        feed.stop()
    return received / took


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--messages", type=int, default=30_000)
    args = p.parse_args()
    core, reader = core_rate(args.repeat)
    live = live_rate(args.messages)
    print(json.dumps({
        "benchmark": "binance_live",
        "machine": platform.processor() or platform.machine(),
        "core_lines_per_s": round(core),
        "reader_lines_per_s": round(reader),
        "core_vs_reader": round(core / reader, 2),
        "connector_messages_per_s": round(live),
        "connector_messages": args.messages,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
