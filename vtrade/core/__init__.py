"""Core: exact numbers, instruments, identity and the event types every layer shares."""

from vtrade.core.errors import (
    CrossedBookError,
    DataError,
    OffGridError,
    SequenceGapError,
    UnknownFormatError,
    VtradeError,
)
from vtrade.core.instruments import (
    ALWAYS_OPEN,
    BINANCE_BTCUSDT_SPOT,
    BINANCE_BTCUSDT_USDM,
    US_EQUITY_REGULAR,
    Instrument,
    TradingHours,
    us_equity,
)
from vtrade.core.numbers import Grid

__all__ = [
    "ALWAYS_OPEN",
    "BINANCE_BTCUSDT_SPOT",
    "BINANCE_BTCUSDT_USDM",
    "US_EQUITY_REGULAR",
    "CrossedBookError",
    "DataError",
    "Grid",
    "Instrument",
    "OffGridError",
    "SequenceGapError",
    "TradingHours",
    "UnknownFormatError",
    "VtradeError",
    "us_equity",
]
