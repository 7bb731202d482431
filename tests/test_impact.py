"""Bar fill models: zipline's VolumeShareSlippage reproduced with hand-computed numbers, the
square-root law, fixed-spread and no-friction fills, conservative rounding and limit caps."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from vtrade.core.events import Bar, Side
from vtrade.core.instruments import us_equity
from vtrade.execution.impact import (
    BarFill,
    FixedSpreadSlippage,
    NoSlippage,
    SquareRootImpact,
    VolumeShareSlippage,
    estimate_sigma_adv,
    round_fill_price,
)

SPY = us_equity("SPY")
MINUTE = 60 * 10**9
DAY = 86_400 * 10**9


def bar(close: int, volume: int, ts: int = 0, interval_ns: int = MINUTE) -> Bar:
    return Bar(ts=ts, recv_ts=ts, symbol="SPY", seq=0, interval_ns=interval_ns, open=close, high=close,
               low=close, close=close, volume=volume)


# ---------------------------------------------------------------------------- rounding
def test_rounding_is_against_the_trader() -> None:
    assert round_fill_price(Side.BUY, Fraction(100001, 10)) == 10001
    assert round_fill_price(Side.SELL, Fraction(100001, 10)) == 10000
    assert round_fill_price(Side.BUY, Fraction(99999, 10)) == 10000
    assert round_fill_price(Side.SELL, Fraction(99999, 10)) == 9999
    assert round_fill_price(Side.BUY, 10.000001) == 11
    assert round_fill_price(Side.SELL, 10.999999) == 10
    assert round_fill_price(Side.BUY, Fraction(42)) == round_fill_price(Side.SELL, Fraction(42)) == 42


# ---------------------------------------------------------------------------- VolumeShareSlippage
def test_volume_share_zipline_example() -> None:
    # $100 close, 1,000,000 shares in the bar, 10,000 ordered: volume_share = 0.01,
    # impact = 0.01² · 0.1 · $100 = $0.001 = 0.1 tick; buys round up a cent, sells down.
    model = VolumeShareSlippage(volume_limit=0.025, price_impact=0.1)
    buy = model.fill(Side.BUY, 10_000, None, bar(10000, 1_000_000), SPY)
    sell = model.fill(Side.SELL, 10_000, None, bar(10000, 1_000_000), SPY)
    assert buy == BarFill(10001, 10_000, Fraction(1, 10), "VolumeShareSlippage(volume_limit=0.025, price_impact=0.1)")
    assert sell is not None and (sell.price_ticks, sell.quantity_lots) == (9999, 10_000)
    assert sell.impact_ticks_exact == Fraction(1, 10)


def test_volume_share_caps_quantity_and_share_at_volume_limit() -> None:
    # 2.5 % of 1,000,000 = 25,000 lots; the share is capped at 0.025:
    # impact = 0.025² · 0.1 · 10000 ticks = 0.625 ticks.
    fill = VolumeShareSlippage().fill(Side.BUY, 50_000, None, bar(10000, 1_000_000), SPY)
    assert fill is not None
    assert fill.quantity_lots == 25_000
    assert fill.impact_ticks_exact == Fraction(5, 8)
    assert fill.price_ticks == 10001


def test_volume_share_cap_is_floored_like_zipline_int() -> None:
    # 0.025 · 999 = 24.975 -> 24 lots (zipline: int(min(remaining_volume, open_amount))).
    fill = VolumeShareSlippage().fill(Side.BUY, 100, None, bar(10000, 999), SPY)
    assert fill is not None and fill.quantity_lots == 24
    # 0.025 · 39 = 0.975 < 1: zipline raises LiquidityExceeded, i.e. no fill.
    assert VolumeShareSlippage().fill(Side.BUY, 100, None, bar(10000, 39), SPY) is None


def test_volume_share_multi_tick_impact() -> None:
    model = VolumeShareSlippage(volume_limit=0.5, price_impact=0.2)
    # share 0.3: 0.09 · 0.2 · 10000 = 180 ticks exactly, so no rounding either way.
    buy = model.fill(Side.BUY, 300, None, bar(10000, 1000), SPY)
    sell = model.fill(Side.SELL, 300, None, bar(10000, 1000), SPY)
    assert buy is not None and sell is not None
    assert (buy.price_ticks, sell.price_ticks) == (10180, 9820)
    # share 0.301: 0.090601 · 0.2 · 10000 = 181.202 ticks -> buy 10182 (up), sell 9818 (down).
    buy = model.fill(Side.BUY, 301, None, bar(10000, 1000), SPY)
    sell = model.fill(Side.SELL, 301, None, bar(10000, 1000), SPY)
    assert buy is not None and sell is not None
    assert buy.impact_ticks_exact == Fraction(181202, 1000)
    assert (buy.price_ticks, sell.price_ticks) == (10182, 9818)


def test_volume_share_prices_cumulative_participation() -> None:
    # zipline's total_volume = volume_for_bar + cur_volume: the second 5,000 of a bar pays
    # for a 1 % share, not 0.5 %, and the cap counts what earlier fills took.
    model = VolumeShareSlippage()
    b = bar(10000, 1_000_000)
    first = model.fill(Side.BUY, 5_000, None, b, SPY)
    second = model.fill(Side.BUY, 5_000, None, b, SPY, used_lots=5_000)
    assert first is not None and second is not None
    assert first.impact_ticks_exact == Fraction(1, 40)  # 0.005² · 0.1 · 10000
    assert second.impact_ticks_exact == Fraction(1, 10)  # 0.01² · 0.1 · 10000
    last = model.fill(Side.BUY, 10_000, None, b, SPY, used_lots=20_000)
    assert last is not None and last.quantity_lots == 5_000
    assert last.impact_ticks_exact == Fraction(5, 8)
    assert model.fill(Side.BUY, 10_000, None, b, SPY, used_lots=25_000) is None


def test_limit_price_caps_the_fill() -> None:
    model = VolumeShareSlippage()
    b = bar(10000, 1_000_000)  # 10,000 lots: exact impacted prices 10000.1 (buy) and 9999.9 (sell)
    assert model.fill(Side.BUY, 10_000, 10000, b, SPY) is None
    buy = model.fill(Side.BUY, 10_000, 10001, b, SPY)
    assert buy is not None and buy.price_ticks == 10001
    assert model.fill(Side.SELL, 10_000, 10000, b, SPY) is None
    sell = model.fill(Side.SELL, 10_000, 9999, b, SPY)
    assert sell is not None and sell.price_ticks == 9999
    # A limit far through the close is simply not binding.
    assert model.fill(Side.BUY, 10_000, 9000, b, SPY) is None
    assert model.fill(Side.SELL, 10_000, 11000, b, SPY) is None


def test_no_volume_no_fill() -> None:
    for model in (NoSlippage(), FixedSpreadSlippage(5), VolumeShareSlippage(),
                  SquareRootImpact(sigma_daily=0.02, adv_lots=1e6)):
        assert model.fill(Side.BUY, 10, None, bar(10000, 0), SPY) is None


def test_sell_impacted_below_one_tick_does_not_fill() -> None:
    # close 1 tick, any positive impact floors to 0 ticks: there is no such price.
    assert VolumeShareSlippage().fill(Side.SELL, 25, None, bar(1, 1000), SPY) is None
    buy = VolumeShareSlippage().fill(Side.BUY, 25, None, bar(1, 1000), SPY)
    assert buy is not None and buy.price_ticks == 2


# ---------------------------------------------------------------------------- NoSlippage / FixedSpread
def test_no_slippage_fills_everything_at_close() -> None:
    fill = NoSlippage().fill(Side.BUY, 1_000, None, bar(10000, 5), SPY)
    assert fill == BarFill(10000, 1_000, Fraction(0), "NoSlippage()")
    assert NoSlippage().fill(Side.BUY, 1_000, 9999, bar(10000, 5), SPY) is None
    sell = NoSlippage().fill(Side.SELL, 1_000, 10000, bar(10000, 5), SPY)
    assert sell is not None and sell.price_ticks == 10000


def test_fixed_spread_bps() -> None:
    # 5 bps of 10000 ticks = 5 ticks.
    model = FixedSpreadSlippage(5)
    buy = model.fill(Side.BUY, 100, None, bar(10000, 1_000), SPY)
    sell = model.fill(Side.SELL, 100, None, bar(10000, 1_000), SPY)
    assert buy is not None and sell is not None
    assert (buy.price_ticks, sell.price_ticks, buy.quantity_lots) == (10005, 9995, 100)
    # 2.5 bps of 10001 ticks = 2.50025 ticks: buy ceil(10003.50025), sell floor(9998.49975).
    model = FixedSpreadSlippage(2.5)
    buy = model.fill(Side.BUY, 100, None, bar(10001, 1_000), SPY)
    sell = model.fill(Side.SELL, 100, None, bar(10001, 1_000), SPY)
    assert buy is not None and sell is not None
    assert buy.impact_ticks_exact == Fraction(250025, 100000)
    assert (buy.price_ticks, sell.price_ticks) == (10004, 9998)


def test_fixed_spread_volume_limit() -> None:
    uncapped = FixedSpreadSlippage(1).fill(Side.BUY, 5_000, None, bar(10000, 1_000), SPY)
    capped = FixedSpreadSlippage(1, volume_limit=0.1).fill(Side.BUY, 5_000, None, bar(10000, 1_000), SPY)
    assert uncapped is not None and uncapped.quantity_lots == 5_000
    assert capped is not None and capped.quantity_lots == 100
    assert capped.model == "FixedSpreadSlippage(half_spread_bps=1, volume_limit=0.1)"


# ---------------------------------------------------------------------------- SquareRootImpact
def test_square_root_bar_fill_hand_computed() -> None:
    # cap 0.1 · 50,000 = 5,000 lots; impact = 0.5 · 0.015 · sqrt(5,000 / 400,000) · 12345
    # = 0.0075 · 0.1118034 · 12345 = 10.3516 ticks -> buy 12356, sell 12334.
    model = SquareRootImpact(eta=0.5, volume_limit=0.1, sigma_daily=0.015, adv_lots=400_000)
    buy = model.fill(Side.BUY, 10_000, None, bar(12345, 50_000), SPY)
    sell = model.fill(Side.SELL, 10_000, None, bar(12345, 50_000), SPY)
    assert buy is not None and sell is not None
    assert buy.quantity_lots == sell.quantity_lots == 5_000
    assert buy.impact_ticks_exact == pytest.approx(10.3516, abs=1e-4)
    assert (buy.price_ticks, sell.price_ticks) == (12356, 12334)
    # Earlier fills count: 1,400 more on top of 3,600 used is the same Q = 5,000.
    later = model.fill(Side.BUY, 1_400, None, bar(12345, 50_000), SPY, used_lots=3_600)
    assert later is not None and later.impact_ticks_exact == buy.impact_ticks_exact
    assert later.quantity_lots == 1_400
    assert model.fill(Side.BUY, 1, None, bar(12345, 50_000), SPY, used_lots=5_000) is None


def test_square_root_impact_price_for_l1_remainder() -> None:
    model = SquareRootImpact(eta=0.5)
    # 0.5 · 0.01 · sqrt(2,500 / 100,000) · 20000 = 15.811 ticks
    assert model.impact_price(Side.BUY, 2_500, 20000, 0.01, 100_000, SPY) == 20016
    assert model.impact_price(Side.SELL, 2_500, 20000, 0.01, 100_000, SPY) == 19984
    # Quadrupling the size doubles the impact: the square-root law.
    small = model.impact_exact(1_000, 20000, 0.01, 100_000, SPY)
    large = model.impact_exact(4_000, 20000, 0.01, 100_000, SPY)
    assert large == pytest.approx(2 * small, rel=1e-12)
    assert model.impact_price(Side.BUY, 1, 20000, 0.0, 100_000, SPY) == 20000


def test_square_root_eta_override_per_symbol() -> None:
    model = SquareRootImpact(eta=1.0, eta_by_symbol={"SPY": 0.25})
    qqq = us_equity("QQQ")
    assert model.eta_for(SPY) == 0.25 and model.eta_for(qqq) == 1.0
    assert model.impact_exact(10_000, 10000, 0.02, 1_000_000, SPY) == pytest.approx(5.0)
    assert model.impact_exact(10_000, 10000, 0.02, 1_000_000, qqq) == pytest.approx(20.0)


def test_square_root_needs_sigma_and_adv_for_bars() -> None:
    with pytest.raises(ValueError, match="from_bars"):
        SquareRootImpact().fill(Side.BUY, 10, None, bar(10000, 1_000), SPY)
    with pytest.raises(ValueError, match="adv"):
        SquareRootImpact().impact_price(Side.BUY, 10, 10000, 0.02, 0, SPY)
    with pytest.raises(ValueError, match="sigma"):
        SquareRootImpact().impact_price(Side.BUY, 10, 10000, math.nan, 1_000, SPY)


def test_estimate_sigma_adv_daily_hand_computed() -> None:
    # log returns ln(1.1) = 0.0953102 and ln(0.9) = -0.1053605; their sample standard
    # deviation is |difference| / sqrt(2) = 0.2006707 / 1.4142136 = 0.1418956. ADV = 20.
    history = [bar(c, v, ts=i * DAY, interval_ns=DAY) for i, (c, v) in enumerate([(100, 10), (110, 30), (99, 20)])]
    sigma, adv = estimate_sigma_adv(history)
    assert sigma == pytest.approx(0.1418956, abs=1e-7)
    assert adv == 20.0
    model = SquareRootImpact.from_bars(history, eta=0.5)
    assert (model.sigma_daily, model.adv_lots, model.eta) == (sigma, adv, 0.5)


def test_estimate_sigma_adv_scales_intraday_bars() -> None:
    # returns ±ln(1.01) = ±0.00995033 four times: sample sd = 0.0099503309 · sqrt(4/3) = 0.0114896;
    # 4 bars a day: sigma_daily = 2 · 0.0114896, ADV = 4 · 10.
    history = [bar(c, 10, ts=i * MINUTE) for i, c in enumerate([100, 101, 100, 101, 100])]
    sigma, adv = estimate_sigma_adv(history, bars_per_day=4)
    assert sigma == pytest.approx(0.0229793, abs=1e-7)
    assert adv == 40.0


def test_estimate_sigma_adv_rejects_bad_history() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        estimate_sigma_adv([bar(100, 10, ts=0), bar(101, 10, ts=1)])
    with pytest.raises(ValueError, match="increasing time"):
        estimate_sigma_adv([bar(100, 10, ts=0), bar(101, 10, ts=2), bar(102, 10, ts=1)])
    with pytest.raises(ValueError, match="no volume"):
        estimate_sigma_adv([bar(100, 0, ts=0), bar(101, 0, ts=1), bar(102, 0, ts=2)])
    with pytest.raises(ValueError, match="non-positive close"):
        estimate_sigma_adv([bar(100, 1, ts=0), bar(0, 1, ts=1), bar(102, 1, ts=2)])


# ---------------------------------------------------------------------------- bad input
def test_bad_order_input_is_rejected() -> None:
    model = VolumeShareSlippage()
    b = bar(10000, 1_000_000)
    with pytest.raises(ValueError, match="remaining_lots"):
        model.fill(Side.BUY, 0, None, b, SPY)
    with pytest.raises(ValueError, match="used_lots"):
        model.fill(Side.BUY, 10, None, b, SPY, used_lots=-1)
    with pytest.raises(TypeError, match="remaining_lots"):
        model.fill(Side.BUY, 10.0, None, b, SPY)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="limit_ticks"):
        model.fill(Side.BUY, 10, True, b, SPY)
    with pytest.raises(ValueError, match="limit_ticks"):
        model.fill(Side.BUY, 10, 0, b, SPY)
    with pytest.raises(ValueError, match="side"):
        model.fill(0, 10, None, b, SPY)  # type: ignore[arg-type]
    assert model.fill(1, 10, None, b, SPY) == model.fill(Side.BUY, 10, None, b, SPY)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: VolumeShareSlippage(volume_limit=0), "volume_limit"),
        (lambda: VolumeShareSlippage(volume_limit=1.5), "volume_limit"),
        (lambda: VolumeShareSlippage(price_impact=-0.1), "price_impact"),
        (lambda: VolumeShareSlippage(price_impact=math.inf), "price_impact"),
        (lambda: FixedSpreadSlippage(-1), "half_spread_bps"),
        (lambda: FixedSpreadSlippage("abc"), "half_spread_bps"),
        (lambda: SquareRootImpact(eta=-1), "eta"),
        (lambda: SquareRootImpact(adv_lots=0), "adv_lots"),
        (lambda: SquareRootImpact(eta_by_symbol={"SPY": math.nan}), "SPY"),
    ],
)
def test_bad_parameters_are_rejected(factory: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        factory()  # type: ignore[operator]


def test_parameters_are_read_as_written() -> None:
    # 0.025 is 1/40 exactly, not the binary float next to it, so caps and impacts are exact.
    model = VolumeShareSlippage(volume_limit=0.025, price_impact="0.1")
    assert model.volume_limit == Fraction(1, 40) and model.price_impact == Fraction(1, 10)
    assert repr(SquareRootImpact(eta=0.7, volume_limit=0.05, sigma_daily=0.02, adv_lots=1e6)) == (
        "SquareRootImpact(eta=0.7, volume_limit=0.05, sigma_daily=0.02, adv_lots=1000000.0)"
    )
