"""Fee models: what a fill costs, in exact ``Decimal`` money of the instrument's currency.

One small class per model behind one interface (after zipline's ``finance/commission.py``):
``FeeModel.fee(fill) -> Decimal``. Positive is a charge, negative a rebate.

**Per-order accounting across partial fills.** Brokers bill per order: a $1.00 minimum is
charged once, not on every partial fill, and a cap applies to the whole order. So a
:class:`FillContext` carries the order's totals *before* this fill, and a cumulative model
defines ``order_total(lots, notional)``, the fee the whole order owes after that much has
filled. The fee of a fill is the increment::

    fee(fill) = order_total(filled_before + quantity, notional_before + fill_notional)
              - order_total(filled_before, notional_before)

The sum of an order's fill fees therefore always equals ``order_total`` of the whole order:
no minimum charged twice, no rounding drift over many small fills. Each model derives its
"before" total from the order's lots and notional (not from ``order_fee_before``) so that
models compose: in a :class:`CompositeFees`, ``order_fee_before`` is the sum of all the
parts, and no part could tell its own share from it.

**Rounding.** Totals are quantized to the currency's minor unit (:data:`CURRENCY_PRECISION`;
cents for USD). Commissions use ``ROUND_HALF_UP`` (ties away from zero, the commercial
convention brokers print on confirmations, and symmetric for rebates). Regulatory fees use
``ROUND_UP`` (away from zero): SEC Section 31 and FINRA TAF pass-throughs are billed rounded
up to the next cent, so a sale never pays less than the regulator's charge.

>>> from vtrade.core.instruments import us_equity
>>> from vtrade.core.events import Side
>>> from vtrade.execution.orders import Liquidity
>>> spy = us_equity("SPY")
>>> ibkr = PerShare("0.005", minimum_per_order="1.00", maximum_pct_of_notional="1")
>>> first = FillContext(spy, Side.BUY, quantity=100, price=16765, liquidity=Liquidity.TAKER)
>>> ibkr.fee(first)  # 100 x 0.005 = 0.50, raised to the 1.00 order minimum
Decimal('1.00')
>>> second = FillContext(spy, Side.BUY, 300, 16765, Liquidity.TAKER, order_filled_before=100,
...                      order_fee_before=Decimal("1.00"), order_notional_before=Decimal("16765.00"))
>>> ibkr.fee(second)  # the order now owes 400 x 0.005 = 2.00; 1.00 was already charged
Decimal('1.00')
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, ROUND_UP, Decimal

from vtrade.core.events import Side
from vtrade.core.instruments import Instrument
from vtrade.core.numbers import Number, exact_decimal
from vtrade.execution.orders import Liquidity

__all__ = [
    "CURRENCY_PRECISION",
    "FINRA_TAF_SCHEDULE",
    "SEC_SECTION_31_SCHEDULE",
    "CompositeFees",
    "CumulativeFeeModel",
    "FeeModel",
    "FillContext",
    "MakerTaker",
    "NoFees",
    "PerShare",
    "PercentOfNotional",
    "USRegulatoryFees",
    "money_precision",
]

#: The minor unit money is rounded to, per currency. Crypto quote assets settle to 8 decimals
#: (Binance books fees in USDT to 1e-8); unknown currencies fall back to cents.
CURRENCY_PRECISION: dict[str, Decimal] = {
    "USD": Decimal("0.01"),
    "EUR": Decimal("0.01"),
    "GBP": Decimal("0.01"),
    "JPY": Decimal("1"),
    "USDT": Decimal("0.00000001"),
    "USDC": Decimal("0.00000001"),
    "BTC": Decimal("0.00000001"),
}
_DEFAULT_PRECISION = Decimal("0.01")
_BPS = Decimal(10_000)
_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)


def money_precision(currency: str) -> Decimal:
    """The minor unit fees in ``currency`` are rounded to.

    >>> money_precision("USD"), money_precision("USDT")
    (Decimal('0.01'), Decimal('1E-8'))
    """
    return CURRENCY_PRECISION.get(currency, _DEFAULT_PRECISION)


# Model parameters: exact and finite; a float is read through its shortest text (0.1 -> "0.1").
_param = functools.partial(exact_decimal, allow_float=True)


@dataclass(frozen=True, slots=True)
class FillContext:
    """One fill, as a fee model sees it.

    ``quantity`` is in lots and ``price`` in ticks of ``instrument``. The ``order_*_before``
    fields are the order's totals over its earlier fills (zero for the first fill):
    ``order_filled_before`` in lots, ``order_fee_before`` and ``order_notional_before`` in
    money of the instrument's currency.

    >>> from vtrade.core.instruments import us_equity
    >>> FillContext(us_equity("SPY"), Side.SELL, 10, 16765, Liquidity.MAKER).notional
    Decimal('1676.50')
    """

    instrument: Instrument
    side: Side
    quantity: int
    price: int
    liquidity: Liquidity
    order_filled_before: int = 0
    order_fee_before: Decimal = _ZERO
    order_notional_before: Decimal = _ZERO

    def __post_init__(self) -> None:
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int) or self.quantity <= 0:
            raise ValueError(f"a fill's quantity must be a positive number of lots, got {self.quantity!r}")
        if isinstance(self.price, bool) or not isinstance(self.price, int) or self.price <= 0:
            raise ValueError(f"a fill's price must be a positive number of ticks, got {self.price!r}")
        if self.order_filled_before < 0:
            raise ValueError(f"order_filled_before must not be negative, got {self.order_filled_before}")
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "liquidity", Liquidity(self.liquidity))
        fee_before = _param(self.order_fee_before, "order_fee_before", allow_negative=True)
        object.__setattr__(self, "order_fee_before", fee_before)
        object.__setattr__(self, "order_notional_before", _param(self.order_notional_before, "order_notional_before"))

    @property
    def units(self) -> Decimal:
        """The fill's size in instrument units (shares, coins): lots x lot size."""
        return self.instrument.size_grid.to_decimal(self.quantity)

    @property
    def notional(self) -> Decimal:
        """The fill's value in money of the instrument's currency, exact: units x price for a
        linear instrument, contracts x contract size / price for an inverse one (``Instrument.notional``)."""
        return self.instrument.notional(self.instrument.price_grid.to_decimal(self.price), self.units)

    @property
    def units_before(self) -> Decimal:
        """The order's filled size before this fill, in instrument units."""
        return self.instrument.size_grid.to_decimal(self.order_filled_before)


class FeeModel(ABC):
    """The interface every fee model implements.

    ``precision`` is the minor unit to round to; ``None`` means the instrument currency's
    (:func:`money_precision`).
    """

    precision: Decimal | None = None
    rounding: str = ROUND_HALF_UP

    @abstractmethod
    def fee(self, fill: FillContext) -> Decimal:
        """The money this fill costs (negative: a rebate), rounded to the model's precision."""

    def _round(self, amount: Decimal, fill: FillContext) -> Decimal:
        unit = self.precision if self.precision is not None else money_precision(fill.instrument.currency)
        return amount.quantize(unit, rounding=self.rounding)

    @staticmethod
    def _precision(value: Number | None) -> Decimal | None:
        if value is None:
            return None
        p = _param(value, "precision")
        if p <= 0:
            raise ValueError(f"precision must be positive, got {value!r}")
        return p


class CumulativeFeeModel(FeeModel):
    """A model defined by what a whole order owes; a fill pays the increment (module docstring)."""

    @abstractmethod
    def order_total(self, fill: FillContext, units: Decimal, notional: Decimal) -> Decimal:
        """Unrounded fee owed by the order of ``fill`` once ``units`` worth ``notional`` have filled.

        Must be 0 when ``units`` is 0 and must not decrease as units and notional grow.
        """

    def fee(self, fill: FillContext) -> Decimal:
        before_units = fill.units_before
        before = _ZERO if before_units == 0 else self._round(
            self.order_total(fill, before_units, fill.order_notional_before), fill
        )
        after = self._round(
            self.order_total(fill, before_units + fill.units, fill.order_notional_before + fill.notional), fill
        )
        return after - before


class NoFees(FeeModel):
    """No friction: every fill is free (the first rung of a classroom's realism ladder).

    >>> from vtrade.core.instruments import us_equity
    >>> NoFees().fee(FillContext(us_equity("SPY"), Side.BUY, 100, 16765, Liquidity.TAKER))
    Decimal('0')
    """

    def fee(self, fill: FillContext) -> Decimal:
        return _ZERO

    def __repr__(self) -> str:
        return "NoFees()"


class PerShare(CumulativeFeeModel):
    """A per-share commission with a per-order minimum and a cap (IBKR "fixed" style).

    For an order that has filled ``n`` units worth ``V`` so far::

        order_total = min(max(rate * n, minimum_per_order), maximum_pct_of_notional / 100 * V)

    The cap wins over the minimum, as at IBKR, where a tiny trade pays 1 % of its value
    rather than the $1.00 minimum. IBKR's published fixed US-stock schedule is
    ``PerShare("0.005", "1.00", "1")``. ``maximum_pct_of_notional=None`` means no cap.

    >>> from vtrade.core.instruments import us_equity
    >>> PerShare("0.005", "1.00", "1").fee(FillContext(us_equity("XYZ"), Side.BUY, 50, 100, Liquidity.TAKER))
    Decimal('0.50')

    (50 shares at $1.00: 0.25 raised to the 1.00 minimum, capped at 1 % of $50 = 0.50.)
    """

    def __init__(
        self,
        rate: Number,
        minimum_per_order: Number = 0,
        maximum_pct_of_notional: Number | None = None,
        *,
        precision: Number | None = None,
    ) -> None:
        self.rate = _param(rate, "rate")
        self.minimum_per_order = _param(minimum_per_order, "minimum_per_order")
        self.maximum_pct_of_notional = (
            None if maximum_pct_of_notional is None else _param(maximum_pct_of_notional, "maximum_pct_of_notional")
        )
        self.precision = self._precision(precision)

    def order_total(self, fill: FillContext, units: Decimal, notional: Decimal) -> Decimal:
        if units == 0:
            return _ZERO
        total = max(self.rate * units, self.minimum_per_order)
        if self.maximum_pct_of_notional is not None:
            total = min(total, self.maximum_pct_of_notional / 100 * notional)
        return total

    def __repr__(self) -> str:
        return f"PerShare(rate={self.rate}, minimum_per_order={self.minimum_per_order}, " \
            f"maximum_pct_of_notional={self.maximum_pct_of_notional})"


class PercentOfNotional(CumulativeFeeModel):
    """A commission proportional to traded value: ``order_total = bps / 10_000 * V``.

    >>> from vtrade.core.instruments import us_equity
    >>> PercentOfNotional(10).fee(FillContext(us_equity("SPY"), Side.BUY, 100, 16765, Liquidity.TAKER))
    Decimal('16.77')

    (10 bps of $16,765.00 = 16.765, rounded half up.)
    """

    def __init__(self, bps: Number, *, precision: Number | None = None) -> None:
        self.bps = _param(bps, "bps")
        self.precision = self._precision(precision)

    def order_total(self, fill: FillContext, units: Decimal, notional: Decimal) -> Decimal:
        return self.bps / _BPS * notional

    def __repr__(self) -> str:
        return f"PercentOfNotional(bps={self.bps})"


class MakerTaker(FeeModel):
    """Venue pricing by liquidity: ``fee = (maker_bps or taker_bps) / 10_000 * fill notional``.

    A negative rate is a rebate (paid to the account). Either side may be negative (an
    inverted venue pays takers), but ``maker_bps + taker_bps`` must not be: otherwise trading
    with oneself would print money. Exchanges bill maker/taker per execution, and an order
    can both take and then rest, so each fill is priced and rounded on its own.

    >>> from vtrade.core.instruments import BINANCE_BTCUSDT_USDM as btc
    >>> fees = MakerTaker(maker_bps="-0.5", taker_bps="4")
    >>> fees.fee(FillContext(btc, Side.BUY, 100, 618003, Liquidity.MAKER))  # 0.1 BTC at 61800.3
    Decimal('-0.30900150')
    """

    def __init__(self, maker_bps: Number, taker_bps: Number, *, precision: Number | None = None) -> None:
        self.maker_bps = _param(maker_bps, "maker_bps", allow_negative=True)
        self.taker_bps = _param(taker_bps, "taker_bps", allow_negative=True)
        if self.maker_bps + self.taker_bps < 0:
            raise ValueError(
                f"maker_bps + taker_bps must not be negative (got {self.maker_bps} + {self.taker_bps}): "
                "the venue would pay both sides of every trade"
            )
        self.precision = self._precision(precision)

    def fee(self, fill: FillContext) -> Decimal:
        bps = self.maker_bps if fill.liquidity is Liquidity.MAKER else self.taker_bps
        return self._round(bps / _BPS * fill.notional, fill)

    def __repr__(self) -> str:
        return f"MakerTaker(maker_bps={self.maker_bps}, taker_bps={self.taker_bps})"


#: SEC Section 31 fee rate, dollars per $1,000,000 of covered sales, by the first trade date on
#: which it applies (SEC fee rate advisories / annual orders; FY2024 order, Release 34-99973;
#: FY2025 order, Release 34-102779). Dates before the first entry are not covered.
SEC_SECTION_31_SCHEDULE: tuple[tuple[date, Decimal], ...] = (
    (date(2023, 2, 27), Decimal("8.00")),
    (date(2024, 5, 22), Decimal("27.80")),
    (date(2025, 5, 14), Decimal("0.00")),
)

#: FINRA Trading Activity Fee for sales of covered equity securities: (first trade date,
#: dollars per share, maximum per trade) from Section 1 of Schedule A to the FINRA By-Laws.
FINRA_TAF_SCHEDULE: tuple[tuple[date, Decimal, Decimal], ...] = (
    (date(2022, 1, 1), Decimal("0.000130"), Decimal("6.49")),
    (date(2023, 1, 1), Decimal("0.000145"), Decimal("7.27")),
    (date(2024, 1, 1), Decimal("0.000166"), Decimal("8.30")),
)


class USRegulatoryFees(CumulativeFeeModel):
    """SEC Section 31 fee and FINRA TAF, charged on sells only (buys pay nothing).

    For a sell order that has filled ``n`` shares worth ``V``::

        section_31 = ceil_cent(sec_rate_per_million / 1_000_000 * V)
        taf        = min(ceil_cent(taf_per_share * n), taf_max_per_trade)
        order_total = section_31 + taf

    Each part is rounded up to the cent on its own, as brokers itemize them. The TAF cap is
    applied per order (a broker passes the TAF through per customer order), and both parts
    accumulate across partial fills like every cumulative model.

    Defaults are the rates in force from 2024-05-22 to 2025-05-13: Section 31 $27.80 per
    million (effective 2024-05-22) and TAF $0.000166 per share, max $8.30 (effective
    2024-01-01). From 2025-05-14 the SEC rate is $0.00; the defaults keep a non-zero rate so
    a classroom sees that sells carry regulatory fees. Use :meth:`as_of` for a trade date.

    >>> from vtrade.core.instruments import us_equity
    >>> sell = FillContext(us_equity("SPY"), Side.SELL, 1000, 16765, Liquidity.TAKER)
    >>> USRegulatoryFees().fee(sell)  # 27.80e-6 x 167,650 = 4.66067 -> 4.67; 1000 x 0.000166 = 0.166 -> 0.17
    Decimal('4.84')
    """

    rounding = ROUND_UP

    def __init__(
        self,
        sec_rate_per_million: Number = "27.80",
        taf_per_share: Number = "0.000166",
        taf_max_per_trade: Number = "8.30",
        *,
        precision: Number | None = None,
    ) -> None:
        self.sec_rate_per_million = _param(sec_rate_per_million, "sec_rate_per_million")
        self.taf_per_share = _param(taf_per_share, "taf_per_share")
        self.taf_max_per_trade = _param(taf_max_per_trade, "taf_max_per_trade")
        self.precision = self._precision(precision)

    @classmethod
    def as_of(cls, trade_date: date) -> USRegulatoryFees:
        """The rates in force on ``trade_date`` per the schedules above.

        >>> USRegulatoryFees.as_of(date(2025, 6, 2)).sec_rate_per_million
        Decimal('0.00')
        """
        i = bisect_right([d for d, _ in SEC_SECTION_31_SCHEDULE], trade_date) - 1
        j = bisect_right([d for d, _, _ in FINRA_TAF_SCHEDULE], trade_date) - 1
        if i < 0 or j < 0:
            first = max(SEC_SECTION_31_SCHEDULE[0][0], FINRA_TAF_SCHEDULE[0][0])
            raise ValueError(f"no US regulatory fee rates are recorded before {first}; pass the rates explicitly")
        _, taf, cap = FINRA_TAF_SCHEDULE[j]
        return cls(SEC_SECTION_31_SCHEDULE[i][1], taf, cap)

    def order_total(self, fill: FillContext, units: Decimal, notional: Decimal) -> Decimal:
        if fill.side is not Side.SELL or units == 0:
            return _ZERO
        section_31 = self._round(self.sec_rate_per_million / _MILLION * notional, fill)
        taf = min(self._round(self.taf_per_share * units, fill), self.taf_max_per_trade)
        return section_31 + taf

    def __repr__(self) -> str:
        return f"USRegulatoryFees(sec_rate_per_million={self.sec_rate_per_million}, " \
            f"taf_per_share={self.taf_per_share}, taf_max_per_trade={self.taf_max_per_trade})"


class CompositeFees(FeeModel):
    """The sum of several models, e.g. a commission plus regulatory fees.

    Each part rounds on its own, so the total is what an itemized confirmation adds up to.

    >>> from vtrade.core.instruments import us_equity
    >>> fees = CompositeFees(PerShare("0.005", "1.00", "1"), USRegulatoryFees())
    >>> fees.fee(FillContext(us_equity("SPY"), Side.SELL, 1000, 16765, Liquidity.TAKER))  # 5.00 + 4.84
    Decimal('9.84')
    """

    def __init__(self, *models: FeeModel) -> None:
        if not models:
            raise ValueError("CompositeFees needs at least one model (use NoFees() for none)")
        for m in models:
            if not isinstance(m, FeeModel):
                raise ValueError(f"CompositeFees takes FeeModel instances, got {m!r}")
        self.models: tuple[FeeModel, ...] = models

    def fee(self, fill: FillContext) -> Decimal:
        return sum((m.fee(fill) for m in self.models), _ZERO)

    def __repr__(self) -> str:
        return f"CompositeFees({', '.join(map(repr, self.models))})"


# ---------------------------------------------------------------------------- named schedules
#: Fee schedules by name, as ``vtrade replay --fees`` and a class's rules
#: (:class:`vtrade.classroom.ClassRules`) name them: ``per-share`` is IBKR's fixed US-stock
#: schedule ($0.005/share, $1.00 minimum, 1 % cap); ``maker-taker`` is Binance USD-M futures'
#: base tier (2 bps maker, 5 bps taker).
FEE_PRESETS = ("none", "per-share", "maker-taker")


def fee_preset(name: str) -> FeeModel:
    """The fee model ``name`` (one of :data:`FEE_PRESETS`) stands for; ValueError otherwise.

    >>> fee_preset("maker-taker")
    MakerTaker(maker_bps=2, taker_bps=5)
    """
    if name == "none":
        return NoFees()
    if name == "per-share":
        return PerShare("0.005", minimum_per_order="1.00", maximum_pct_of_notional="1")
    if name == "maker-taker":
        return MakerTaker(maker_bps="2", taker_bps="5")
    raise ValueError(f"unknown fee model {name!r} (choose from {', '.join(FEE_PRESETS)})")
