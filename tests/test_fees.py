"""Fee models: every expected value below is computed by hand in the comment next to it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from vtrade.core.events import Side
from vtrade.core.instruments import BINANCE_BTCUSDT_USDM, us_equity
from vtrade.execution.fees import (
    CompositeFees,
    FeeModel,
    FillContext,
    MakerTaker,
    NoFees,
    PercentOfNotional,
    PerShare,
    USRegulatoryFees,
)
from vtrade.execution.orders import Liquidity

SPY = us_equity("SPY")
PENNY = us_equity("PNY")
D = Decimal


def run_order(model: FeeModel, fills: list[tuple[int, int]], *, side: Side = Side.BUY, instrument=SPY,
              liquidity: Liquidity = Liquidity.TAKER) -> list[Decimal]:
    """Fees of an order's fills ``[(lots, price_ticks), ...]``, threading the order totals through."""
    out: list[Decimal] = []
    filled, fee_total, notional = 0, D(0), D(0)
    for lots, price in fills:
        ctx = FillContext(instrument, side, lots, price, liquidity, filled, fee_total, notional)
        fee = model.fee(ctx)
        out.append(fee)
        filled, fee_total, notional = filled + lots, fee_total + fee, notional + ctx.notional
    return out


# ---------------------------------------------------------------------------- PerShare
IBKR = PerShare("0.005", minimum_per_order="1.00", maximum_pct_of_notional="1")


def test_per_share_minimum_is_charged_once_across_partial_fills() -> None:
    # 100 @ 167.65: 0.50 -> minimum 1.00 (cap 1 % x 16,765 = 167.65 not binding)
    # +300: order owes 400 x 0.005 = 2.00, 1.00 charged -> 1.00
    # +1:   401 x 0.005 = 2.005 -> 2.01 (half up) -> 0.01
    assert run_order(IBKR, [(100, 16765), (300, 16765), (1, 16765)]) == [D("1.00"), D("1.00"), D("0.01")]


def test_per_share_minimum_then_nothing_until_it_is_exceeded() -> None:
    # 50 shares: 0.25 -> 1.00; +100: 0.75 < 1.00 -> 0; +60: 210 x 0.005 = 1.05 -> 0.05
    assert run_order(IBKR, [(50, 10000), (100, 10000), (60, 10000)]) == [D("1.00"), D("0.00"), D("0.05")]


def test_per_share_cap_of_notional_across_partial_fills() -> None:
    # 100 @ $0.50: 0.50 -> min 1.00 -> cap 1 % x 50.00 = 0.50
    # +100 @ $0.50: 200 x 0.005 = 1.00, min 1.00, cap 1 % x 100.00 = 1.00 -> increment 0.50
    # +1000 @ $0.40: 1200 x 0.005 = 6.00, cap 1 % x (100 + 400) = 5.00 -> increment 4.00
    assert run_order(IBKR, [(100, 50), (100, 50), (1000, 40)], instrument=PENNY) == [D("0.50"), D("0.50"), D("4.00")]


def test_per_share_without_minimum_or_cap() -> None:
    # 150 x 0.01 = 1.50
    assert run_order(PerShare("0.01"), [(150, 16765)]) == [D("1.50")]


def test_per_share_sells_pay_the_same_commission() -> None:
    assert run_order(IBKR, [(400, 16765)], side=Side.SELL) == [D("2.00")]


# ---------------------------------------------------------------------------- PercentOfNotional
def test_percent_of_notional_single_fill() -> None:
    # 10 bps of 16,765.00 = 16.765 -> 16.77 (half up)
    assert run_order(PercentOfNotional(10), [(100, 16765)]) == [D("16.77")]


def test_percent_of_notional_rounds_the_order_total_not_each_fill() -> None:
    # Five fills of 1 share at $5.00, 10 bps: each is 0.005. Cumulative totals
    # 0.005, 0.010, 0.015, 0.020, 0.025 round to 0.01, 0.01, 0.02, 0.02, 0.03: increments below.
    fees = run_order(PercentOfNotional(10), [(1, 500)] * 5)
    assert fees == [D("0.01"), D("0.00"), D("0.01"), D("0.00"), D("0.01")]
    assert sum(fees) == D("0.03")  # = round(0.025); rounding each fill would have charged 0.05


def test_precision_can_be_overridden() -> None:
    # 10 bps of 16,765.00 = 16.765 at a tenth of a cent
    assert run_order(PercentOfNotional(10, precision="0.001"), [(100, 16765)]) == [D("16.765")]


# ---------------------------------------------------------------------------- MakerTaker
def test_maker_rebate_and_taker_fee() -> None:
    model = MakerTaker(maker_bps="-0.2", taker_bps="0.3")
    # maker: -0.2 bps x 16,765 = -0.3353 -> -0.34; taker: 0.3 bps x 16,765 = 0.50295 -> 0.50
    assert run_order(model, [(100, 16765)], liquidity=Liquidity.MAKER) == [D("-0.34")]
    assert run_order(model, [(100, 16765)], liquidity=Liquidity.TAKER) == [D("0.50")]


def test_maker_taker_prices_each_fill_by_its_own_liquidity() -> None:
    model = MakerTaker(maker_bps=-1, taker_bps=3)
    # 0.1 BTC at 61,800.3 = 6,180.03: taker 3 bps = 1.854009; maker -1 bps = -0.618003 (8 decimals for USDT)
    first = FillContext(BINANCE_BTCUSDT_USDM, Side.BUY, 100, 618003, Liquidity.TAKER)
    second = FillContext(BINANCE_BTCUSDT_USDM, Side.BUY, 100, 618003, Liquidity.MAKER, 100, D("1.854009"),
                         D("6180.03"))
    assert model.fee(first) == D("1.85400900")
    assert model.fee(second) == D("-0.61800300")


def test_inverted_venue_allowed_but_not_a_money_pump() -> None:
    assert MakerTaker(maker_bps=3, taker_bps=-2).taker_bps == D(-2)
    with pytest.raises(ValueError, match="would pay both sides"):
        MakerTaker(maker_bps=-3, taker_bps=2)


# ---------------------------------------------------------------------------- regulatory
def test_regulatory_fees_are_zero_on_buys() -> None:
    assert run_order(USRegulatoryFees(), [(1000, 16765)], side=Side.BUY) == [D("0")]


def test_regulatory_fees_on_a_sell() -> None:
    # SEC: 27.80 / 1e6 x 167,650.00 = 4.66067 -> 4.67 (rounded up); TAF: 1000 x 0.000166 = 0.166 -> 0.17
    assert run_order(USRegulatoryFees(), [(1000, 16765)], side=Side.SELL) == [D("4.84")]


def test_regulatory_fees_round_up_to_the_cent() -> None:
    # 1 share at $1.00: SEC 0.0000278 -> 0.01, TAF 0.000166 -> 0.01
    assert run_order(USRegulatoryFees(), [(1, 100)], side=Side.SELL, instrument=PENNY) == [D("0.02")]


def test_taf_cap_applies_to_the_whole_order_across_partial_fills() -> None:
    # 30,000 @ $10: SEC 300,000 x 27.8e-6 = 8.34; TAF 30,000 x 0.000166 = 4.98 -> 13.32
    # +30,000 @ $10: SEC 600,000 x 27.8e-6 = 16.68; TAF 9.96 capped at 8.30 -> total 24.98, increment 11.66
    fees = run_order(USRegulatoryFees(), [(30_000, 1000), (30_000, 1000)], side=Side.SELL)
    assert fees == [D("13.32"), D("11.66")]


def test_regulatory_rates_by_trade_date() -> None:
    mid_2023 = USRegulatoryFees.as_of(date(2023, 6, 1))
    assert (mid_2023.sec_rate_per_million, mid_2023.taf_per_share, mid_2023.taf_max_per_trade) == (
        D("8.00"), D("0.000145"), D("7.27"))
    early_2024 = USRegulatoryFees.as_of(date(2024, 5, 21))  # the day before the $27.80 rate
    assert (early_2024.sec_rate_per_million, early_2024.taf_per_share) == (D("8.00"), D("0.000166"))
    assert USRegulatoryFees.as_of(date(2024, 5, 22)).sec_rate_per_million == D("27.80")
    assert USRegulatoryFees.as_of(date(2025, 5, 14)).sec_rate_per_million == D("0.00")
    with pytest.raises(ValueError, match="no US regulatory fee rates"):
        USRegulatoryFees.as_of(date(2022, 12, 30))


def test_zero_sec_rate_leaves_only_taf() -> None:
    # 2025-06-02: SEC 0; TAF 1000 x 0.000166 = 0.166 -> 0.17
    assert run_order(USRegulatoryFees.as_of(date(2025, 6, 2)), [(1000, 16765)], side=Side.SELL) == [D("0.17")]


# ---------------------------------------------------------------------------- composite / none
def test_composite_sums_its_parts() -> None:
    model = CompositeFees(IBKR, USRegulatoryFees())
    # commission 1000 x 0.005 = 5.00; regulatory 4.84 (above)
    assert run_order(model, [(1000, 16765)], side=Side.SELL) == [D("9.84")]
    # buy: commission only
    assert run_order(model, [(1000, 16765)], side=Side.BUY) == [D("5.00")]


def test_composite_across_partial_fills_keeps_each_models_own_totals() -> None:
    model = CompositeFees(IBKR, USRegulatoryFees())
    # fill 1, 100 @ 167.65 sell: commission 1.00 (minimum); SEC 16,765 x 27.8e-6 = 0.466067 -> 0.47;
    #   TAF 0.0166 -> 0.02. Total 1.49.
    # fill 2, +300: commission 2.00 - 1.00 = 1.00; SEC 67,060 x 27.8e-6 = 1.864268 -> 1.87, +1.40;
    #   TAF 400 x 0.000166 = 0.0664 -> 0.07, +0.05. Total 2.45.
    assert run_order(model, [(100, 16765), (300, 16765)], side=Side.SELL) == [D("1.49"), D("2.45")]


def test_no_fees() -> None:
    assert run_order(NoFees(), [(100, 16765), (5, 1)]) == [D(0), D(0)]


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "build",
    [
        lambda: PerShare("-0.005"),
        lambda: PerShare(float("nan")),
        lambda: PerShare("0.005", minimum_per_order="-1"),
        lambda: PerShare("0.005", maximum_pct_of_notional=float("inf")),
        lambda: PercentOfNotional(-1),
        lambda: PercentOfNotional("NaN"),
        lambda: PercentOfNotional("ten"),
        lambda: PercentOfNotional(True),
        lambda: MakerTaker(float("nan"), 1),
        lambda: MakerTaker(0, "Infinity"),
        lambda: USRegulatoryFees(sec_rate_per_million=-1),
        lambda: USRegulatoryFees(taf_per_share=float("nan")),
        lambda: PercentOfNotional(1, precision=0),
        lambda: CompositeFees(),
        lambda: CompositeFees("not a model"),  # type: ignore[arg-type]
    ],
)
def test_bad_parameters_raise_value_error(build) -> None:
    with pytest.raises(ValueError):
        build()


@pytest.mark.parametrize(("lots", "price"), [(0, 16765), (-5, 16765), (100, 0), (100, -1)])
def test_fill_context_rejects_non_positive_sizes_and_prices(lots: int, price: int) -> None:
    with pytest.raises(ValueError):
        FillContext(SPY, Side.BUY, lots, price, Liquidity.TAKER)


def test_fill_context_exact_notional_for_fractional_lots() -> None:
    # 0.123 BTC (123 lots of 0.001) at 61,800.3 = 7,601.4369
    ctx = FillContext(BINANCE_BTCUSDT_USDM, Side.SELL, 123, 618003, Liquidity.TAKER)
    assert ctx.notional == D("7601.4369")
    assert ctx.units == D("0.123")
