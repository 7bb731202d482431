"""Market: order books and the feeds that rebuild them. Pure domain code, no I/O beyond reading files.

>>> from vtrade.market import read_book
>>> read_book("data/crypto/hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz", levels=1).shape
(3450, 6)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vtrade.market.export import read_book
    from vtrade.market.feeds import open_feed
    from vtrade.market.l2book import L2Book
    from vtrade.market.l3book import L3Book

__all__ = ["L2Book", "L3Book", "open_feed", "read_book"]

_LAZY = {
    "read_book": "vtrade.market.export",
    "open_feed": "vtrade.market.feeds",
    "L2Book": "vtrade.market.l2book",
    "L3Book": "vtrade.market.l3book",
}


def __getattr__(name: str) -> Any:
    # Lazy, so `import vtrade.market.l2book` does not pay for pandas and pyarrow.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vtrade.market' has no attribute {name!r}")
