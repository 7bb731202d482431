"""Serve the trader dashboard on the process-wide live market: what ``vtrade serve`` runs.

>>> url_for("localhost", 5006)
'http://localhost:5006/trader'
"""

from __future__ import annotations

from typing import Any

from vtrade.runtime.live import LiveConfig, LiveMarket, shared_market


def url_for(address: str, port: int) -> str:
    """The trader dashboard's URL."""
    return f"http://{address}:{port}/trader"


def serve_trader(
    *,
    port: int = 5006,
    address: str = "localhost",
    config: LiveConfig | None = None,
    market: LiveMarket | None = None,
    show: bool = False,
    threaded: bool = False,
    period_ms: int = 500,
    websocket_origin: str | list[str] | None = None,
) -> Any:
    """Start the shared market (unless ``market`` is given) and serve ``/trader`` with ``pn.serve``.

    Blocks unless ``threaded=True``, which returns the server thread (call ``.stop()``). Each
    browser session gets its own account; all share one market.
    """
    import panel as pn

    from vtrade.ui.trader import TITLE, trader_dashboard

    live = market if market is not None else shared_market(config)
    print(f"vtrade: trader dashboard at {url_for(address, port)}", flush=True)
    return pn.serve(
        {"trader": lambda: trader_dashboard(live, period_ms=period_ms)},
        port=port, address=address, show=show, threaded=threaded, title=TITLE, verbose=False,
        websocket_origin=websocket_origin,
    )  # fmt: skip
