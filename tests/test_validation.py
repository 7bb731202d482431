"""Order input validation at the edge: exact conversion, and a code, field and readable reason per error."""

from __future__ import annotations

from decimal import Decimal

import pytest

from vtrade.core.errors import VtradeError
from vtrade.core.events import Side
from vtrade.core.instruments import BINANCE_BTCUSDT_USDM, us_equity
from vtrade.execution.events import OrderRejected, RejectCode
from vtrade.execution.orders import OrderType, TimeInForce
from vtrade.execution.validation import OrderInputError, submit_from_user

SPY = us_equity("SPY")
BTC = BINANCE_BTCUSDT_USDM
UNIVERSE = {"SPY": SPY, "BTCUSDT": BTC}


def reject(**kwargs) -> OrderInputError:
    args = {"account": "acct-1", "client_order_id": "c-1", "instrument": SPY, "side": "buy",
            "order_type": "limit", "quantity": 100, "limit_price": "167.65"}
    args.update(kwargs)
    with pytest.raises(OrderInputError) as info:
        submit_from_user(**args)
    return info.value


# ---------------------------------------------------------------------------- happy paths
def test_limit_order_on_a_fractional_grid() -> None:
    o = submit_from_user("acct-1", "c-1", BTC, "buy", "limit", "0.25", limit_price="61800.3", tif="gtc", ts=5)
    assert (o.ts, o.account, o.client_order_id, o.symbol) == (5, "acct-1", "c-1", "BTCUSDT")
    assert (o.side, o.order_type, o.quantity, o.limit_price, o.tif) == (
        Side.BUY, OrderType.LIMIT, 250, 618003, TimeInForce.GTC)
    assert o.stop_price is None and o.trail_ticks is None and o.trail_bps is None


@pytest.mark.parametrize("qty", ["0.1", Decimal("0.1"), 0.1, " 0.100 "])
def test_quantity_types_convert_exactly(qty: object) -> None:
    # 0.1 BTC on the 0.001 lot grid is 100 lots, whether typed as text, Decimal or float
    assert submit_from_user("a", "c", BTC, "sell", "market", qty).quantity == 100


def test_symbol_lookup_is_case_insensitive_and_enums_pass_through() -> None:
    o = submit_from_user("a", "c", "spy", Side.SELL, OrderType.MARKET, "1,000", tif=TimeInForce.IOC,
                         instruments=UNIVERSE)
    assert (o.symbol, o.side, o.order_type, o.quantity, o.tif) == ("SPY", Side.SELL, OrderType.MARKET, 1000,
                                                                  TimeInForce.IOC)


def test_stop_and_stop_limit() -> None:
    stop = submit_from_user("a", "c", SPY, "SELL", "Stop", 10, stop_price="160")
    assert (stop.order_type, stop.stop_price, stop.limit_price) == (OrderType.STOP, 16000, None)
    sl = submit_from_user("a", "c", SPY, "sell", "stop-limit", 10, limit_price="159.50", stop_price=160)
    assert (sl.order_type, sl.stop_price, sl.limit_price) == (OrderType.STOP_LIMIT, 16000, 15950)


def test_trailing_stop_by_amount_and_by_percent() -> None:
    by_amount = submit_from_user("a", "c", SPY, "sell", "trailing stop", 10, trail="0.50")
    assert (by_amount.trail_ticks, by_amount.trail_bps) == (50, None)
    by_text = submit_from_user("a", "c", SPY, "sell", "trailing_stop", 10, trail="1.5%")
    assert (by_text.trail_ticks, by_text.trail_bps) == (None, 150)
    by_number = submit_from_user("a", "c", SPY, "sell", "trailing_stop", 10, trail_percent=Decimal("0.25"))
    assert by_number.trail_bps == 25


def test_gtd_with_expiry_and_flags() -> None:
    o = submit_from_user("a", "c", SPY, "buy", "limit", 1, limit_price=100, tif="GTD", expire_ts=2_000, ts=1_000,
                         post_only=True, reduce_only=True)
    assert (o.tif, o.expire_ts, o.post_only, o.reduce_only) == (TimeInForce.GTD, 2_000, True, True)


# ---------------------------------------------------------------------------- quantity
@pytest.mark.parametrize(
    ("qty", "reason"),
    [
        (0, "The quantity must be positive, got 0"),
        (-5, "The quantity must be positive, got -5"),
        ("-0.5", "The quantity must be positive, got -0.5"),
        (float("nan"), "The quantity must be a finite number, got nan"),
        (float("inf"), "The quantity must be a finite number, got inf"),
        ("NaN", "The quantity must be a finite number, got NaN"),
        ("-Infinity", "The quantity must be a finite number, got -Infinity"),
        ("ten", "The quantity must be a number, got 'ten'"),
        (True, "The quantity must be a number, got True"),
        (None, "The quantity must be a number, got None"),
    ],
)
def test_bad_quantity(qty: object, reason: str) -> None:
    err = reject(quantity=qty)
    assert (err.code, err.field, err.reason) == (RejectCode.INVALID_QUANTITY, "quantity", reason)


def test_off_lot_quantity_names_the_lot_size() -> None:
    err = reject(quantity="10.5")
    assert (err.code, err.field, err.reason) == (RejectCode.OFF_LOT, "quantity",
                                                 "10.5 is not a multiple of the 1 lot size")
    err = reject(instrument=BTC, quantity="0.0005", limit_price="61800.3")
    assert err.reason == "0.0005 is not a multiple of the 0.001 lot size"


# ---------------------------------------------------------------------------- prices
@pytest.mark.parametrize(
    ("price", "reason"),
    [
        (0, "The limit price must be positive, got 0"),
        ("-1.25", "The limit price must be positive, got -1.25"),
        (float("nan"), "The limit price must be a finite number, got nan"),
        (float("-inf"), "The limit price must be a finite number, got -inf"),
        ("abc", "The limit price must be a number, got 'abc'"),
    ],
)
def test_bad_limit_price(price: object, reason: str) -> None:
    err = reject(limit_price=price)
    assert (err.code, err.field, err.reason) == (RejectCode.INVALID_PRICE, "limit_price", reason)


def test_off_tick_price_names_the_tick() -> None:
    err = reject(instrument=BTC, quantity="0.1", limit_price="61800.35")
    assert (err.code, err.field, err.reason) == (RejectCode.OFF_TICK, "limit_price",
                                                 "61800.35 is not a multiple of the 0.1 tick")
    err = reject(order_type="stop", limit_price=None, stop_price=167.655)
    assert (err.code, err.field, err.reason) == (RejectCode.OFF_TICK, "stop_price",
                                                 "167.655 is not a multiple of the 0.01 tick")


def test_empty_price_text_is_a_missing_field() -> None:
    err = reject(limit_price="  ")
    assert (err.code, err.field, err.reason) == (RejectCode.MISSING_FIELD, "limit_price", "The limit price is empty")


# ---------------------------------------------------------------------------- names
def test_unknown_order_type_lists_the_valid_ones() -> None:
    err = reject(order_type="limt")
    assert (err.code, err.field) == (RejectCode.UNKNOWN_ORDER_TYPE, "order_type")
    assert err.reason == ("Unknown order type 'limt': use one of 'market', 'limit', 'stop', 'stop_limit', "
                          "'trailing_stop'")


def test_unknown_side_lists_the_valid_ones() -> None:
    err = reject(side="hold")
    assert (err.code, err.field, err.reason) == (RejectCode.UNKNOWN_ORDER_TYPE, "side",
                                                 "Unknown side 'hold': use one of 'buy', 'sell'")
    assert reject(side=1).field == "side"  # an int is not a side name


def test_unknown_tif_lists_the_valid_ones() -> None:
    err = reject(tif="week")
    assert (err.code, err.field) == (RejectCode.UNKNOWN_ORDER_TYPE, "tif")
    assert err.reason == "Unknown time in force 'week': use one of 'day', 'gtc', 'ioc', 'fok', 'gtd'"


def test_unknown_symbol() -> None:
    err = reject(instrument="QQQ", instruments=UNIVERSE)
    assert (err.code, err.field) == (RejectCode.UNKNOWN_SYMBOL, "symbol")
    assert err.reason == "Unknown symbol 'QQQ'; this session trades BTCUSDT, SPY"
    assert reject(instrument="SPY").code is RejectCode.UNKNOWN_SYMBOL  # no universe given


@pytest.mark.parametrize("field", ["account", "client_order_id"])
def test_account_and_client_order_id_are_required(field: str) -> None:
    err = reject(**{field: " "})
    assert (err.code, err.field) == (RejectCode.MISSING_FIELD, field)
    assert err.reason == f"The order needs a non-empty {field}"


# ---------------------------------------------------------------------------- per-type fields
@pytest.mark.parametrize(
    ("kwargs", "field", "reason"),
    [
        ({"order_type": "limit", "limit_price": None}, "limit_price", "A limit order needs a limit price"),
        ({"order_type": "stop", "limit_price": None}, "stop_price", "A stop order needs a stop price"),
        ({"order_type": "stop_limit", "stop_price": None}, "stop_price", "A stop-limit order needs a stop price"),
        ({"order_type": "stop_limit", "limit_price": None, "stop_price": 160}, "limit_price",
         "A stop-limit order needs a limit price"),
        ({"order_type": "trailing_stop", "limit_price": None}, "trail",
         "A trailing-stop order needs exactly one trailing distance: an amount (trail) or a percent (trail_percent)"),
        ({"order_type": "trailing_stop", "limit_price": None, "trail": "0.5", "trail_percent": 1}, "trail",
         "Give the trailing distance once: an amount or a percent, not both"),
        ({"order_type": "trailing_stop", "limit_price": None, "trail": "1%", "trail_percent": 1}, "trail",
         "Give the trailing distance once: an amount or a percent, not both"),
        ({"tif": "gtd"}, "expire_ts", "A GTD (good-till-date) order needs an expiry"),
    ],
)
def test_missing_required_fields(kwargs: dict, field: str, reason: str) -> None:
    err = reject(**kwargs)
    assert (err.code, err.field, err.reason) == (RejectCode.MISSING_FIELD, field, reason)


@pytest.mark.parametrize(
    ("kwargs", "field", "reason"),
    [
        ({"order_type": "market"}, "limit_price", "A market order takes no limit price"),
        ({"order_type": "limit", "stop_price": 160}, "stop_price", "A limit order takes no stop price"),
        ({"order_type": "limit", "trail": "0.5"}, "trail", "A limit order takes no trailing distance"),
        ({"order_type": "trailing_stop", "limit_price": 1, "trail": "0.5"}, "limit_price",
         "A trailing-stop order takes no limit price"),
    ],
)
def test_fields_the_type_does_not_use_are_refused(kwargs: dict, field: str, reason: str) -> None:
    err = reject(**kwargs)
    assert (err.code, err.field, err.reason) == (RejectCode.INVALID_PRICE, field, reason)


def test_bad_trailing_distances() -> None:
    base = {"order_type": "trailing_stop", "limit_price": None}
    err = reject(**base, trail="0.015%")
    assert (err.code, err.field, err.reason) == (
        RejectCode.INVALID_PRICE, "trail_percent",
        "0.015% is finer than the 0.01% (one basis point) a trailing percent is set in")
    err = reject(**base, trail_percent=150)
    assert (err.code, err.field, err.reason) == (
        RejectCode.INVALID_PRICE, "trail_percent", "The trailing percent must be between 0 and 100, got 150")
    err = reject(**base, trail="0.005")
    assert (err.code, err.field, err.reason) == (RejectCode.OFF_TICK, "trail",
                                                 "0.005 is not a multiple of the 0.01 tick")
    err = reject(**base, trail=0)
    assert (err.code, err.field, err.reason) == (RejectCode.INVALID_PRICE, "trail",
                                                 "The trailing amount must be positive, got 0")


def test_expiry_rules() -> None:
    err = reject(tif="gtd", expire_ts=500, ts=1_000)
    assert (err.code, err.field) == (RejectCode.MISSING_FIELD, "expire_ts")
    assert err.reason == "A GTD order's expiry must be a time (UTC ns) after the order's entry at 1000, got 500"
    err = reject(tif="day", expire_ts=2_000)
    assert (err.field, err.reason) == ("expire_ts", "Only GTD orders take an expiry; this one is DAY")


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"order_type": "market", "limit_price": None},
         "A market order takes liquidity when it executes, so it cannot be post-only; use a limit order"),
        ({"order_type": "stop", "limit_price": None, "stop_price": 160},
         "A stop order takes liquidity when it executes, so it cannot be post-only; use a limit order"),
        ({"tif": "ioc"}, "A post-only order must rest in the book, which IOC never does"),
    ],
)
def test_post_only_that_cannot_rest(kwargs: dict, reason: str) -> None:
    err = reject(post_only=True, **kwargs)
    assert (err.code, err.field, err.reason) == (RejectCode.POST_ONLY_WOULD_TAKE, "post_only", reason)


# ---------------------------------------------------------------------------- the error type
def test_error_is_a_vtrade_value_error_and_becomes_a_rejection_event() -> None:
    err = reject(quantity=0)
    assert isinstance(err, VtradeError) and isinstance(err, ValueError)
    assert str(err) == err.reason
    event = err.as_rejected(9, "acct-1", "c-1", "SPY")
    assert event == OrderRejected(9, "acct-1", "c-1", "SPY", RejectCode.INVALID_QUANTITY,
                                  "The quantity must be positive, got 0")


def test_first_failure_wins_in_the_documented_order() -> None:
    # unknown symbol is checked before the bad quantity and the bad side
    err = reject(instrument="QQQ", instruments=UNIVERSE, quantity=-1, side="hold")
    assert err.code is RejectCode.UNKNOWN_SYMBOL
    # side before quantity
    assert reject(quantity=-1, side="hold").field == "side"


def test_a_bad_entry_time_is_a_caller_bug_not_user_input() -> None:
    with pytest.raises(ValueError, match="ts must be a non-negative int") as info:
        submit_from_user("a", "c", SPY, "buy", "market", 1, ts=-1)
    assert not isinstance(info.value, OrderInputError)


def test_numpy_scalars_are_numbers_like_their_python_twins() -> None:
    """Prices read out of a DataFrame are np.float64, counts np.int64: they validate as float/int."""
    import numpy as np

    spy = us_equity("SPY")
    a = submit_from_user("u", "c", "SPY", "buy", "limit", np.int64(10), np.float64(172.73), instruments={"SPY": spy})
    b = submit_from_user("u", "c", "SPY", "buy", "limit", 10, 172.73, instruments={"SPY": spy})
    assert a == b
    with pytest.raises(OrderInputError, match="finite"):
        submit_from_user("u", "c", "SPY", "buy", "limit", 10, np.float64("nan"), instruments={"SPY": spy})
    with pytest.raises(OrderInputError, match="must be a number"):
        submit_from_user("u", "c", "SPY", "buy", "market", np.bool_(True), instruments={"SPY": spy})
