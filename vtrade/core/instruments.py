"""Instruments: what is traded, on which price and size grid, in which currency and hours.

>>> spy = us_equity("SPY", sector="ETF")
>>> spy.price("167.65"), spy.size(100)
(16765, 100)
>>> BINANCE_BTCUSDT_USDM.price_grid.to_decimal(618003)
Decimal('61800.3')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from vtrade.core.numbers import Grid, Number


@dataclass(frozen=True, slots=True)
class TradingHours:
    """A venue's regular session in its local time zone; ``open is None`` means always open.

    >>> US_EQUITY_REGULAR.is_open(1381152600 * 10**9)  # 2013-10-07 09:30 New York
    True
    """

    timezone: str = "UTC"
    open: time | None = None
    close: time | None = None
    weekdays_only: bool = False

    def is_open(self, ts_ns: int) -> bool:
        """Whether the regular session is open at ``ts_ns`` (UTC ns). Holidays are not modelled here."""
        if self.open is None or self.close is None:
            return True
        local = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).astimezone(_zone(self.timezone))
        if self.weekdays_only and local.weekday() >= 5:
            return False
        return self.open <= local.time() < self.close


    def session_close(self, ts_ns: int) -> int | None:
        """UTC ns of the close of the session that ``ts_ns`` falls in (before the close), else None.

        None for always-open venues, and for times after that day's close: a DAY order
        entered after the close has no session left to live in.

        >>> US_EQUITY_REGULAR.session_close(1381152600 * 10**9)  # 2013-10-07 09:30 New York
        1381176000000000000
        """
        if self.close is None:
            return None
        local = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).astimezone(_zone(self.timezone))
        close = local.replace(hour=self.close.hour, minute=self.close.minute, second=0, microsecond=0)
        return int(close.timestamp()) * 1_000_000_000 if local < close else None


@lru_cache(maxsize=32)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


class _Scalable(Protocol):
    """What notional() multiplies and divides: Decimal, float, a NumPy array, a pandas Series."""

    def __mul__(self, other: Any, /) -> Any: ...
    def __truediv__(self, other: Any, /) -> Any: ...


_N = TypeVar("_N", bound=_Scalable)  # notional() keeps the kind it is given

ALWAYS_OPEN = TradingHours()
US_EQUITY_REGULAR = TradingHours("America/New_York", time(9, 30), time(16, 0), weekdays_only=True)


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable instrument. Prices are integer ticks and sizes integer lots inside the engine.

    ``price()``/``size()`` convert user input to the grid (OffGridError when off it);
    ``price_grid.to_decimal()``/``size_grid.to_decimal()`` convert back for display.

    ``contract_size`` and ``inverse`` describe derivatives whose size is a count of
    contracts. A linear contract is worth ``quantity x contract_size x price`` (a stock or
    a USD-M perpetual: ``contract_size`` None means 1). An *inverse* contract (Binance
    COIN-M: ``BTCUSD_PERP``, 100 USD a contract) is worth a fixed amount of the quote
    currency, so its value in the coin it settles in (``currency``) is
    ``quantity x contract_size / price``. :meth:`notional` is the one place that rule lives.
    """

    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    currency: str = "USD"
    venue: str = ""
    asset_class: str = "equity"
    sector: str | None = None
    name: str = ""
    hours: TradingHours = ALWAYS_OPEN
    contract_size: Decimal | None = None
    inverse: bool = False
    price_grid: Grid = field(init=False, repr=False, compare=False)
    size_grid: Grid = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.symbol or self.symbol != self.symbol.strip():
            raise ValueError(f"an instrument needs a non-blank symbol without surrounding spaces, got {self.symbol!r}")
        object.__setattr__(self, "tick_size", Decimal(self.tick_size))
        object.__setattr__(self, "lot_size", Decimal(self.lot_size))
        object.__setattr__(self, "price_grid", Grid(self.tick_size))
        object.__setattr__(self, "size_grid", Grid(self.lot_size))
        if self.contract_size is not None:
            cs = Decimal(self.contract_size)
            if not cs.is_finite() or cs <= 0:
                raise ValueError(f"{self.symbol}: contract_size must be a positive number, got {self.contract_size!r}")
            object.__setattr__(self, "contract_size", cs)
        if self.inverse and self.contract_size is None:
            raise ValueError(f"{self.symbol}: an inverse contract needs a contract_size (its value in quote currency)")

    def price(self, value: Number) -> int:
        """``value`` in ticks; raises OffGridError if it is not a multiple of the tick size."""
        return self.price_grid.to_int(value)

    def size(self, value: Number) -> int:
        """``value`` in lots; raises OffGridError if it is not a multiple of the lot size."""
        return self.size_grid.to_int(value)

    def notional(self, price: _N, quantity: _N) -> _N:
        """The value of ``quantity`` units (shares, coins, contracts; not lots) at ``price``, in ``currency``.

        Exact for ``Decimal`` inputs; floats and NumPy/pandas arrays work too (analytics).
        Linear: ``quantity x price x contract_size``; inverse: ``quantity x contract_size / price``.

        >>> btcusd = Instrument("BTCUSD_PERP", "0.1", "1", currency="BTC", contract_size=Decimal(100), inverse=True)
        >>> btcusd.notional(Decimal(50000), Decimal(10))  # 10 contracts x 100 USD at 50,000 USD/BTC
        Decimal('0.02')
        >>> BINANCE_BTCUSDT_USDM.notional(Decimal("61800.3"), Decimal("0.1"))
        Decimal('6180.03')
        """
        cs: Decimal | float | None = self.contract_size
        if cs is not None and not isinstance(price, Decimal):
            cs = float(cs)  # Decimal x float is a TypeError
        if self.inverse:
            return quantity * cs / price
        if cs is None:
            return quantity * price
        return quantity * price * cs

    @property
    def unit(self) -> str:
        """What one unit of quantity is called, for every view: ``"shares"``, the coin
        (``"BTC"``) or ``"contracts"``.

        >>> BINANCE_BTCUSDT_USDM.unit, us_equity("XYZ").unit
        ('BTC', 'shares')
        """
        if self.contract_size is not None:
            return "contracts"
        if self.asset_class.startswith("crypto"):
            pair = self.symbol.split("_")[0]
            for quote in (self.currency, "USDT", "USDC", "BUSD", "USD"):
                if quote and pair.endswith(quote) and len(pair) > len(quote):
                    return pair[: -len(quote)]
            return pair
        return "shares"

    @property
    def size_decimals(self) -> int:
        """Decimals a quantity needs to be shown exactly (0 for whole shares, 3 for 0.001 BTC).

        >>> BINANCE_BTCUSDT_USDM.size_decimals, us_equity("XYZ").size_decimals
        (3, 0)
        """
        return _decimals(self.lot_size)

    @property
    def price_decimals(self) -> int:
        """Decimals a price needs to be shown exactly (2 for a cent tick, 1 for 0.1).

        >>> BINANCE_BTCUSDT_USDM.price_decimals
        1
        """
        return _decimals(self.tick_size)

    def describe(self, venue: str | None = None) -> str:
        """One line naming the instrument and its grid, for what a command prints; ``venue``
        replaces the venue code with a name people read.

        >>> BINANCE_BTCUSDT_USDM.describe()
        'BTCUSDT (BINANCE_USDM): tick 0.1, lot 0.001'
        """
        venue = venue if venue is not None else self.venue
        where = [venue] if venue else []
        if self.inverse:
            where += ["inverse", f"{_plain(self.contract_size)} {_quote_of(self)}/contract"]
        elif self.contract_size is not None:
            where += [f"{_plain(self.contract_size)} units/contract"]
        unit = " contract" + ("s" if self.lot_size != 1 else "") if self.contract_size is not None else ""
        head = f"{self.symbol} ({', '.join(where)})" if where else self.symbol
        return f"{head}: tick {_plain(self.tick_size)}, lot {_plain(self.lot_size)}{unit}"


def _decimals(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _plain(d: Decimal | None) -> str:
    """``Decimal`` as people write it: 1E-8 -> 0.00000001, 100.0 -> 100."""
    if d is None:
        return "-"
    d = d.normalize()
    return f"{d:f}"


def _quote_of(inst: Instrument) -> str:
    # Binance COIN-M contracts are denominated in USD whatever the coin; other inverse
    # venues would say so in their symbol (the part after the settlement coin).
    pair = inst.symbol.split("_")[0]
    quote = pair[len(inst.currency) :] if pair.startswith(inst.currency) else ""
    return quote or "USD"


def us_equity(symbol: str, *, sector: str | None = None, name: str = "", tick_size: Number = "0.01") -> Instrument:
    """A US-listed stock or ETF: one-cent tick, one-share lots, NYSE/Nasdaq regular hours."""
    return Instrument(
        symbol=symbol,
        tick_size=Decimal(str(tick_size)),
        lot_size=Decimal(1),
        venue="US",
        sector=sector,
        name=name,
        hours=US_EQUITY_REGULAR,
    )


# Binance BTCUSDT grids for the 2024-08-08 captures in data/. Spot depth levels aggregate
# quantities at the asset's 8-decimal precision (e.g. 25.42618900), finer than the 0.00001
# order step, so the spot size grid is 1e-8; futures quantities are on the 0.001 step.
BINANCE_BTCUSDT_SPOT = Instrument(
    "BTCUSDT", Decimal("0.01"), Decimal("0.00000001"), currency="USDT", venue="BINANCE", asset_class="crypto"
)
BINANCE_BTCUSDT_USDM = Instrument(
    "BTCUSDT", Decimal("0.1"), Decimal("0.001"), currency="USDT", venue="BINANCE_USDM", asset_class="crypto_perp"
)
