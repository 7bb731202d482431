"""Are a feed's prices as traded (raw) or split/dividend-adjusted? Decided from the file format.

- Lean minute/second bars (``lean-trade-bars``, ``lean-quote-bars``) and TAQ-like ticks
  (``taq-trades``, ``taq-quotes``) are **raw**: prices as they printed, so a split shows as a
  jump (AAPL 645.57 -> 92.70 on 2014-06-09) and a dividend as a gap at the ex-date.
- LOBSTER messages are raw as well (exchange messages).
- The ``daily`` format (``date,ticker,open,high,low,close,volume``) holds two kinds of files
  with the same header. Lean's raw daily bars print every price in fixed point with exactly
  four decimals (``645.5700``: Lean stores 1/10,000 dollars), the Kaggle universe prints
  adjusted prices with trailing zeros dropped (``83.803``, ``104.77``, ``106``). A daily file
  whose first rows all print four decimals is raw; any other daily file is adjusted.
- Crypto (``binance``) has no corporate actions: None.

>>> price_basis("lean-trade-bars", "data/intraday/lean_minute_trade_bars.csv.gz")
'raw'
>>> price_basis("daily", "data/equities_daily/lean_daily_raw_unadjusted_1998_2021.csv.gz")
'raw'
>>> price_basis("daily", "data/equities_daily/sp500_2018members_daily_2013_2017.csv.gz")
'adjusted'
>>> price_basis("binance", "data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz") is None
True
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from vtrade.market.feeds._io import numbered_lines

__all__ = ["RAW_FORMATS", "PriceBasis", "price_basis"]

PriceBasis = Literal["raw", "adjusted"]
RAW_FORMATS = frozenset({"lean-trade-bars", "lean-quote-bars", "taq-trades", "taq-quotes", "lobster"})
_LEAN_FIXED_POINT = re.compile(r"\d+\.\d{4}")
_SNIFF_ROWS = 50


def price_basis(format: str, path: str | Path) -> PriceBasis | None:
    """``"raw"``, ``"adjusted"``, or None (no corporate actions apply, or the format is unknown)."""
    if format in RAW_FORMATS:
        return "raw"
    if format == "daily":
        return "raw" if _lean_fixed_point(Path(path)) else "adjusted"
    return None


def _lean_fixed_point(path: Path) -> bool:
    """Whether the first data rows print open/high/low/close with exactly four decimals."""
    seen = 0
    for lineno, line in numbered_lines(path):
        if lineno == 1:
            continue
        cells = line.split(",")
        if len(cells) != 7 or not all(_LEAN_FIXED_POINT.fullmatch(c) for c in cells[2:6]):
            return False
        seen += 1
        if seen >= _SNIFF_ROWS:
            break
    return seen > 0
