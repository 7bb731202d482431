"""A live terminal view of a replayed feed: depth ladder, trades and a closing summary.

This is what ``make demo`` shows until the dashboards land. Rendering functions are pure
(state in, ``rich`` renderable out); :func:`run_demo` is the loop that paces and draws.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from vtrade.core.events import BookDelta, BookSnapshot, MarketEvent, Side, Trade
from vtrade.core.instruments import Instrument
from vtrade.market.feeds import open_feed
from vtrade.market.l2book import L2Book
from vtrade.runtime.pacer import Pacer


@dataclass
class ReplayStats:
    """Running figures of a replay, shown live and in the summary."""

    events: int = 0
    book_updates: int = 0
    level_updates: int = 0
    trades: int = 0
    volume: int = 0
    notional: int = 0  # sum of price_ticks * size_lots, exact
    high: int | None = None
    low: int | None = None
    spread_sum: int = 0
    spread_n: int = 0
    first_ts: int | None = None
    last_ts: int = 0
    recent: deque[Trade] = field(default_factory=lambda: deque(maxlen=12))

    def on_event(self, ev: MarketEvent, book: L2Book) -> None:
        self.events += 1
        self.first_ts = ev.ts if self.first_ts is None else self.first_ts
        self.last_ts = max(self.last_ts, ev.ts)
        if isinstance(ev, BookSnapshot | BookDelta):
            self.book_updates += 1
            self.level_updates += len(ev.bid_px) + len(ev.ask_px)
            spread = book.spread()
            if spread is not None:
                self.spread_sum += spread
                self.spread_n += 1
        elif isinstance(ev, Trade):
            self.trades += 1
            self.volume += ev.size
            self.notional += ev.price * ev.size
            self.high = ev.price if self.high is None else max(self.high, ev.price)
            self.low = ev.price if self.low is None else min(self.low, ev.price)
            self.recent.appendleft(ev)


def _clock(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1e9, tz=UTC).strftime("%H:%M:%S.%f")[:-3]


def render(
    book: L2Book, stats: ReplayStats, inst: Instrument, levels: int, speed: float, screen_width: int = 120
) -> Group:
    """The live screen: a header, the depth ladder (asks above bids) and the latest trades.

    Ladder and trades sit side by side on a wide screen and stacked on a narrow one.
    """
    px, sz = inst.price_grid.to_decimal, inst.size_grid.to_decimal
    top = book.top(levels)
    largest = max([1, *top.bid_sz.tolist(), *top.ask_sz.tolist()])
    ladder = Table(title="depth", expand=False, show_edge=False)
    ladder.add_column("", justify="right", style="green", no_wrap=True, width=12)
    ladder.add_column("bid size", justify="right", style="green", no_wrap=True)
    ladder.add_column("price", justify="right", no_wrap=True)
    ladder.add_column("ask size", justify="right", style="red", no_wrap=True)
    ladder.add_column("", justify="left", style="red", no_wrap=True, width=12)

    def bar(s: int) -> str:
        return "█" * max(1, 12 * s // largest)

    for p, s in reversed(list(zip(top.ask_px.tolist(), top.ask_sz.tolist(), strict=True))):
        ladder.add_row("", "", str(px(p)), str(sz(s)), bar(s))
    for p, s in zip(top.bid_px.tolist(), top.bid_sz.tolist(), strict=True):
        ladder.add_row(bar(s), str(sz(s)), str(px(p)), "", "")
    trades = Table(title="trades", show_edge=False)
    for col in ("time", "price", "size", "side"):
        trades.add_column(col, justify="right")
    for t in stats.recent:
        side = "buy" if t.aggressor is Side.BUY else "sell"
        trades.add_row(_clock(t.ts), str(px(t.price)), str(sz(t.size)), Text(side, "green" if side == "buy" else "red"))
    bb, ba = book.best_bid(), book.best_ask()
    mid = f"{(px(bb[0]) + px(ba[0])) / 2}" if bb and ba else "-"
    header = Text.assemble(
        (f" {inst.symbol} ", "bold reverse"), f"  sim {_clock(stats.last_ts)}  ",
        f"speed {'max' if speed == 0 else f'{speed:g}x'}  mid {mid}  spread {book.spread()} ticks  ",
        f"events {stats.events:,}  trades {stats.trades:,}",
    )  # fmt: skip
    if screen_width < 110:
        return Group(header, ladder, trades)
    grid = Table.grid(padding=(0, 4))
    grid.add_row(ladder, trades)
    return Group(header, grid)


def summary(stats: ReplayStats, inst: Instrument, wall_s: float) -> Table:
    """The closing table of a replay."""
    px, sz = inst.price_grid.to_decimal, inst.size_grid.to_decimal
    t = Table(title=f"replay summary: {inst.symbol} ({inst.venue})", show_header=False)
    sim_s = (stats.last_ts - (stats.first_ts or stats.last_ts)) / 1e9
    vwap = (inst.price_grid.increment * stats.notional / stats.volume) if stats.volume else None
    rows = [
        ("simulated time", f"{sim_s:,.1f} s in {wall_s:,.1f} s wall"),
        ("events", f"{stats.events:,}"),
        ("book updates applied", f"{stats.book_updates:,} ({stats.level_updates:,} level updates)"),
        ("sequence gaps / crossed books", "0 / 0"),
        ("trades", f"{stats.trades:,}, volume {sz(stats.volume)}"),
        ("VWAP", f"{vwap.quantize(inst.price_grid.increment / 100)}" if vwap is not None else "-"),
        ("high / low", "-" if stats.high is None or stats.low is None else f"{px(stats.high)} / {px(stats.low)}"),
        ("mean spread", f"{stats.spread_sum / stats.spread_n:.2f} ticks" if stats.spread_n else "-"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    return t


def run_demo(path: str | Path, *, speed: float = 30.0, levels: int = 10, console: Console | None = None) -> ReplayStats:
    """Replay ``path`` paced at ``speed`` and draw it live; print a summary at the end.

    Gaps and crossed books abort with their error (the summary's "0 / 0" is earned, not assumed).
    """
    console = console or Console()
    feed = open_feed(path)
    if feed.book_kind != "L2" or feed.instrument is None:
        raise ValueError(f"{path}: the terminal demo replays L2 feeds (got {feed.book_kind})")
    inst = feed.instrument
    book = L2Book(inst.symbol)
    stats = ReplayStats()
    pacer = Pacer(speed)
    started = time.monotonic()
    next_draw = 0.0
    with Live(console=console, auto_refresh=False, transient=False) as live:
        for ev in feed:
            pacer.wait_until(ev.ts)
            book.apply(ev)
            stats.on_event(ev, book)
            now = time.monotonic()
            if now >= next_draw:  # ~10 frames a second, whatever the event rate
                live.update(render(book, stats, inst, levels, speed, console.width), refresh=True)
                next_draw = now + 0.1
        live.update(render(book, stats, inst, levels, speed, console.width), refresh=True)
    console.print(summary(stats, inst, time.monotonic() - started))
    return stats
