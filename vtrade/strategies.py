"""Built-in example strategies for ``vtrade replay`` and :func:`vtrade.replay`.

A strategy is any callable taking the replay's :class:`~vtrade.runtime.replay.Context`; the
replay calls it every ``--every`` of simulated time. Prices are integer ticks and quantities
integer lots of the instrument (DESIGN.md §3). Keep per-run state on the context, never in a
module global, so that the same strategy can run twice in one process.

From the command line::

    vtrade replay data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz \\
        --strategy vtrade.strategies:market_maker --realism L2 --every 100ms --latency 1ms --out /tmp/mm
    vtrade replay data/intraday/lean_second_trade_bars_SPY.csv.gz \\
        --strategy vtrade.strategies:buy_and_hold --realism bars --out /tmp/bh
"""

from __future__ import annotations

from numba import njit

from vtrade.execution.desk import Desk, buy, cancel_all, sell, touch
from vtrade.runtime.replay import Context

__all__ = ["buy_and_hold", "market_maker", "market_maker_jit"]


def market_maker(ctx: Context, offset: int = 1, lots: int = 1) -> None:
    """Quote both sides ``offset`` ticks outside the touch: cancel every open order, then post a
    bid at best bid - offset and an ask at best ask + offset, ``lots`` each, post-only (an order
    that would trade on arrival is rejected instead of taking liquidity). Needs a book (L1/L2/L3).
    ``vt.replay_many`` sweeps ``offset`` and ``lots`` like any replay setting.

    >>> import vtrade as vt
    >>> result = vt.replay("data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz",
    ...                    strategy=market_maker, every="100ms", latency="1ms", realism="L2")
    >>> result.summary()["maker_share"]
    1.0
    """
    ctx.cancel_all()
    bid, ask = ctx.book.best_bid(), ctx.book.best_ask()
    if bid is None or ask is None:
        return
    ctx.buy(lots, price=bid[0] - offset, post_only=True)
    ctx.sell(lots, price=ask[0] + offset, post_only=True)


def buy_and_hold(ctx: Context) -> None:
    """One market buy of 100 lots at the first call with a market, then hold to the end. Works on bars.

    >>> import vtrade as vt
    >>> from vtrade.core.events import Bar
    >>> from vtrade.core.instruments import us_equity
    >>> bars = [Bar(t * 10**9, t * 10**9, "SPY", 0, 10**9, 16700, 16710, 16690, 16705, 100_000) for t in range(5)]
    >>> result = vt.replay(bars, strategy=buy_and_hold, realism="bars", instrument=us_equity("SPY"))
    >>> int(result.fills.quantity_lots.sum())
    100
    """
    state = vars(ctx)  # this run's state lives on its context
    if state.get("buy_and_hold_done"):
        return
    if ctx.book.best_ask() is None and ctx.last_trade is None:
        return  # no market yet (a feed that starts before its first quote or bar): a market order would find nothing
    ctx.buy(100)
    state["buy_and_hold_done"] = True


@njit(cache=True)
def market_maker_jit(d: Desk) -> None:
    """:func:`market_maker` as a compiled strategy (:mod:`vtrade.jit`): the same quotes, the same
    outputs byte for byte, and on an L2 replay with a constant latency it runs in one compiled loop.

    >>> import vtrade as vt
    >>> r = vt.replay("data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz",
    ...               strategy=market_maker_jit, every="100ms", latency="1ms", realism="L2")
    >>> r.path, r.summary()["maker_share"]
    ('compiled', 1.0)
    """
    cancel_all(d)
    bid, bid_size, ask, ask_size = touch(d)
    if bid_size == 0 or ask_size == 0:
        return
    buy(d, 1, bid - 1, True)
    sell(d, 1, ask + 1, True)
