"""The copilot's glossary: short teaching definitions of the ideas a student meets in vtrade.

A plain, fixed table (no model writes it and no one edits it at run time), so the
``glossary`` tool's answers are the course's own words, not a model's guess. Look-ups forgive
case, spacing, hyphens, plurals and a few common aliases ("sharpe", "P&L", "maker/taker").

>>> define("Slippage").term
'slippage'
>>> define("maker/taker").term
'maker and taker'
>>> define("astrology") is None
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["GLOSSARY", "Definition", "define", "terms"]

_ENTRIES: dict[str, str] = {
    "bid": "The highest price someone in the order book is willing to pay right now. You sell at the bid "
           "when you sell with a market order.",
    "ask": "The lowest price someone in the order book is willing to sell at right now (also called the "
           "offer). You buy at the ask when you buy with a market order.",
    "spread": "The gap between the best ask and the best bid. It is what an immediate round trip (buy then "
              "sell at once) costs you; tight spreads mean a liquid market. vtrade shows it in basis points "
              "of the mid.",
    "mid": "The midpoint between the best bid and the best ask: a fair reference price, though nobody may "
           "trade exactly there.",
    "basis point": "One hundredth of one per cent (0.01%). 25 bps on a $10,000 trade is $25.",
    "slippage": "How much worse your fill price was than a reference price, usually the mid when your order "
                "arrived (the arrival mid). Buying at 100.05 when the mid was 100.00 is 5 bps of slippage. "
                "Crossing the spread and walking through several levels of a thin book both cause it.",
    "arrival mid": "The mid price at the moment your order reached the exchange: vtrade measures each fill's "
                   "slippage against it.",
    "market order": "An order to trade now at whatever prices the book offers. It fills quickly but you do not "
                    "control the price: in a thin book it can walk through several levels.",
    "limit order": "An order with a worst acceptable price: a buy limit fills at that price or lower, a sell "
                   "limit at that price or higher. If it cannot fill at once it rests in the book and waits "
                   "its turn in the queue.",
    "stop order": "An order that stays dormant until the market trades through its stop price, then becomes a "
                  "market order (or a limit order, for a stop-limit). Often used to cap a loss.",
    "time in force": "How long an order stays working: day (until the close), gtc (good till cancelled), ioc "
                     "(fill what you can immediately, cancel the rest), fok (fill everything immediately or "
                     "nothing).",
    "maker and taker": "A maker's resting limit order adds liquidity to the book and is filled when someone "
                       "trades against it; a taker's order removes liquidity by trading against what rests. "
                       "Venues often charge takers more (or pay makers a rebate).",
    "order book": "Every resting buy and sell limit order for an instrument, grouped into price levels. Its "
                  "depth is how much size waits at each level: deep books absorb big orders with little "
                  "slippage.",
    "queue position": "Where your resting limit order waits among others at the same price: earlier orders "
                      "fill first, so a fill may need more trading at your price than your own size.",
    "liquidity": "How easily you can trade a size without moving the price: tight spreads, deep books and "
                 "busy trading mean high liquidity.",
    "fee": "What the venue or broker charges per trade (per share in vtrade's default model). A negative fee "
           "is a rebate.",
    "nav": "Net asset value: your cash plus the market value of your positions (shorts count negative). "
           "It is what your account is worth now.",
    "buying power": "How much more you can buy right now under the account rules: cash for a cash account, "
                    "more for a margin account (the broker lends the rest).",
    "margin": "Borrowing from the broker to hold more than your cash pays for (or to sell short). If your "
              "equity falls below the maintenance requirement you get a margin call and positions are sold.",
    "short selling": "Selling shares you do not own (borrowed), hoping to buy them back cheaper. Losses have "
                     "no ceiling because the price can keep rising.",
    "return": "How much an investment gained or lost, as a fraction of what it started at: (end - start) / "
              "start.",
    "volatility": "How much returns swing around their average: the standard deviation of returns. Higher "
                  "volatility means a bumpier ride and a wider range of outcomes.",
    "drawdown": "How far your NAV has fallen from its highest point so far, as a fraction of that high. The "
                "max drawdown is the worst such fall over the whole period.",
    "beta": "How much your portfolio tends to move when the market moves: a beta of 1.2 means about 1.2% "
            "when the benchmark moves 1%. It is the covariance of your returns with the benchmark's over "
            "the benchmark's variance.",
    "sharpe ratio": "Average return over its volatility (after a risk-free rate): return per unit of risk "
                    "taken. Higher is better; it says nothing about rare large losses.",
    "diversification": "Spreading money over assets that do not all move together, so one bad holding hurts "
                       "less. It lowers volatility without necessarily lowering the expected return.",
    "benchmark": "What you compare your results with, e.g. the S&P 500 (SPY): beating it means your choices "
                 "added something over simply holding the market.",
    "realized p&l": "Profit or loss locked in by closing (part of) a position.",
    "unrealized p&l": "Profit or loss on positions you still hold, at today's prices: it changes until you "
                      "close them.",
    "sector": "The industry group a company belongs to (GICS sectors such as Energy or Information "
              "Technology). Stocks of a sector tend to move together.",
}

_ALIASES: dict[str, str] = {
    "offer": "ask", "bid ask spread": "spread", "bid-ask spread": "spread", "bps": "basis point",
    "bp": "basis point", "midpoint": "mid", "mid price": "mid", "market orders": "market order",
    "limit": "limit order", "stop": "stop order", "stop loss": "stop order", "stop limit": "stop order",
    "tif": "time in force", "maker": "maker and taker", "taker": "maker and taker",
    "maker taker": "maker and taker", "maker/taker": "maker and taker", "rebate": "fee", "fees": "fee",
    "book": "order book", "depth": "order book", "queue": "queue position",
    "net asset value": "nav", "short": "short selling", "shorting": "short selling",
    "short sale": "short selling", "margin call": "margin", "vol": "volatility", "max drawdown": "drawdown",
    "maximum drawdown": "drawdown", "sharpe": "sharpe ratio", "pnl": "unrealized p&l",
    "p&l": "unrealized p&l", "profit and loss": "unrealized p&l", "realized pnl": "realized p&l",
    "unrealized pnl": "unrealized p&l", "gics": "sector", "diversify": "diversification",
}  # fmt: skip

#: Every term and its definition, read-only.
GLOSSARY: MappingProxyType[str, str] = MappingProxyType(_ENTRIES)


@dataclass(frozen=True, slots=True)
class Definition:
    """One glossary entry."""

    term: str
    text: str


def _key(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text.strip().casefold())


def define(term: object) -> Definition | None:
    """The entry for ``term`` (forgiving spelling, see the module notes), or None."""
    if not isinstance(term, str) or not term.strip() or len(term) > 80:
        return None
    key = _key(term)
    candidates = [key, key.rstrip("s") if key.endswith("s") and not key.endswith("ss") else key]
    for k in candidates:
        k = _ALIASES.get(k, k)
        if k in _ENTRIES:
            return Definition(k, _ENTRIES[k])
    return None


def terms() -> list[str]:
    """Every term, sorted (what the copilot offers when a look-up fails)."""
    return sorted(_ENTRIES)
