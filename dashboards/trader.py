"""The trader dashboard: ``panel serve dashboards/trader.py`` (or ``vtrade serve``).

Every browser session gets its own account on the ONE process-wide live market
(:func:`vtrade.runtime.live.shared_market`), the demo market of ``make demo`` (the 500-stock
universe replayed intraday, the Binance BTCUSDT capture, a synthetic stock); it starts with
the first session.
``VTRADE_SPEED`` sets the replay speed (simulated seconds per wall second, default 20).
"""

from __future__ import annotations

import os

from vtrade.runtime.live import LiveConfig, shared_market
from vtrade.ui.trader import trader_dashboard

market = shared_market(LiveConfig.demo(speed=float(os.environ.get("VTRADE_SPEED", "20"))))
trader_dashboard(market).servable()
