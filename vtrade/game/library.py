'''The library of teaching missions, written in the same TOML a teacher writes
(:func:`vtrade.game.missions.load_missions`), so it doubles as the example of the format.

The path: *First trade* (auto-started) opens the basics (a sell, a maker fill, notes, a crypto
trade, an ETF, three sectors); the sell opens stops and round trips; three sectors open
diversification and a cash buffer; diversification opens beta and the benchmark race, which
open the hedge. Each mission says in one sentence what to do, and what it is worth.

>>> len(LIBRARY) >= 15, LIBRARY[0].id, BY_ID["beta-band"].for_sessions
(True, 'first-trade', 5)
'''

from __future__ import annotations

from vtrade.game.missions import Mission, load_missions

__all__ = ["BY_ID", "LIBRARY", "LIBRARY_TOML"]

LIBRARY_TOML = """
[[mission]]
id = "first-trade"
title = "First trade"
summary = "Place any order and get it filled."
xp = 50
auto_start = true
goal = { kind = "fills" }

[[mission]]
id = "first-sell"
title = "First sell"
summary = "Sell something you hold: a sell order that fills."
xp = 50
prerequisites = ["first-trade"]
goal = { kind = "fills", side = "sell" }

[[mission]]
id = "maker-fill"
title = "Be the maker"
summary = "Rest a limit order in the book and get it filled as maker (you provide liquidity)."
xp = 100
prerequisites = ["first-trade"]
goal = { kind = "fills", liquidity = "maker", order_types = ["limit"] }

[[mission]]
id = "note-taker"
title = "Trading journal"
summary = "Write a note on 5 orders that fill, saying why you traded."
xp = 100
prerequisites = ["first-trade"]
goal = { kind = "fills", count = 5, with_note = true }

[[mission]]
id = "crypto-trade"
title = "Around the clock"
summary = "Trade a crypto asset: markets that never close."
xp = 50
prerequisites = ["first-trade"]
goal = { kind = "fills", kinds = ["crypto"] }

[[mission]]
id = "etf-buy"
title = "A basket in one ticket"
summary = "Buy an ETF: many stocks in one order."
xp = 50
prerequisites = ["first-trade"]
goal = { kind = "fills", side = "buy", kinds = ["etf"] }

[[mission]]
id = "stop-loss"
title = "Stop-loss"
summary = "Protect a position with a stop (or stop-limit) sell order, and see it trigger and fill."
xp = 100
prerequisites = ["first-sell"]
goal = { kind = "fills", side = "sell", order_types = ["stop", "stop_limit"], from_stop = true }

[[mission]]
id = "trailing-stop"
title = "Trailing stop"
summary = "Let a trailing stop follow the price and see it trigger and fill."
xp = 150
prerequisites = ["stop-loss"]
goal = { kind = "fills", order_types = ["trailing_stop"], from_stop = true }

[[mission]]
id = "round-trip"
title = "Profitable round trip"
summary = "Buy something and sell it for more than you paid."
xp = 100
prerequisites = ["first-sell"]
goal = { kind = "round_trip" }

[[mission]]
id = "big-order"
title = "Work a big order"
summary = "Buy at least 1,000 shares in one order with slippage under 5 bps from the arrival mid."
xp = 150
prerequisites = ["maker-fill"]
goal = { kind = "fills", side = "buy", min_quantity = 1000, max_slippage_bps = 5 }

[[mission]]
id = "three-sectors"
title = "Three sectors"
summary = "Hold long positions in at least 3 sectors at once."
xp = 75
prerequisites = ["first-trade"]
goal = { kind = "holdings", min_sectors = 3 }

[[mission]]
id = "diversified"
title = "Diversified"
summary = "Hold 5 sectors with no position above 20 % of NAV and at least half your NAV invested."
xp = 150
prerequisites = ["three-sectors"]
goal = { kind = "holdings", min_sectors = 5, max_weight = 0.20, min_invested = 0.5 }

[[mission]]
id = "cash-buffer"
title = "Keep a cash buffer"
summary = "Stay at least half invested with 10 % of NAV in cash at 3 session closes in a row."
xp = 100
prerequisites = ["three-sectors"]
for_sessions = 3
goal = { kind = "cash", min_fraction = 0.10, min_invested = 0.5 }

[[mission]]
id = "beta-band"
title = "Market-like risk"
summary = "Keep your beta to SPY between 0.8 and 1.2 at 5 session closes in a row, within 10 sessions."
xp = 200
prerequisites = ["diversified"]
within_sessions = 10
for_sessions = 5
goal = { kind = "beta_band", low = 0.8, high = 1.2 }

[[mission]]
id = "beat-spy"
title = "Beat the market, carefully"
summary = "Beat SPY over 5 sessions without ever falling more than 5 % from your peak."
xp = 250
prerequisites = ["diversified"]
within_sessions = 5
goal = { kind = "beat_benchmark", sessions = 5 }
fail_when = [{ kind = "drawdown_above", limit = 0.05 }]

[[mission]]
id = "hedge"
title = "Hedge it"
summary = "Stay at least half invested in stocks but bring your beta below 0.3 with a short ETF position."
xp = 200
prerequisites = ["beta-band", "etf-buy"]
goal = { kind = "hedge", max_beta = 0.3, min_long = 0.5, hedge_kind = "etf" }

[[mission]]
id = "survive-shock"
title = "Weather the storm"
summary = "When your teacher shocks the market, get through the next 2 session closes without a margin call."
xp = 150
prerequisites = ["first-trade"]
auto_start = true
goal = { kind = "survive_shock", closes = 2 }
fail_when = [{ kind = "margin_call" }]
"""

#: The library, in path order.
LIBRARY: tuple[Mission, ...] = load_missions(LIBRARY_TOML)
#: The library by id.
BY_ID: dict[str, Mission] = {m.id: m for m in LIBRARY}
