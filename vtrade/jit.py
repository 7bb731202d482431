"""Compiled strategies: write a strategy as a Numba ``@njit`` function of a desk.

``import vtrade.jit as vj`` gives the helpers of :mod:`vtrade.execution.desk` (reading the
strategy's book, position and open orders; sending and cancelling orders). Pass the jitted
function as ``strategy=`` to :func:`vtrade.replay`: an L2 replay with a constant latency and no
account rules then runs as one compiled loop (``result.path == "compiled"``); any other replay
runs the same function on the Python engine. Both give byte-identical outputs.

>>> from numba import njit
>>> import vtrade as vt
>>> import vtrade.jit as vj
>>> @njit
... def quote_both_sides(d):
...     vj.cancel_all(d)
...     bid, bid_size, ask, ask_size = vj.touch(d)
...     if bid_size and ask_size:
...         vj.buy(d, 1, bid - 1, post_only=True)
...         vj.sell(d, 1, ask + 1, post_only=True)
>>> r = vt.replay("data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz", strategy=quote_both_sides,
...               every="100ms", realism="L2", latency="1ms")
>>> r.path, r.summary()["maker_share"]
('compiled', 1.0)
"""

from __future__ import annotations

from vtrade.execution.desk import (
    FOK,
    GTC,
    IOC,
    KEEP,
    LIMIT,
    MARKET,
    Desk,
    best_ask,
    best_bid,
    buy,
    buy_market,
    cancel,
    cancel_all,
    last_trade,
    n_open,
    new_desk,
    now,
    open_order,
    position,
    replace,
    sell,
    sell_market,
    submit,
    touch,
)

__all__ = [
    "FOK", "GTC", "IOC", "KEEP", "LIMIT", "MARKET", "Desk", "best_ask", "best_bid", "buy", "buy_market", "cancel",
    "cancel_all", "last_trade", "n_open", "new_desk", "now", "open_order", "position", "replace", "sell",
    "sell_market", "submit", "touch",
]  # fmt: skip
