"""One public schema: the orders, fills and positions tables built through replay, the live
market and the session store have the same columns, order and dtypes (``vt.schema``), sides
``'buy'``/``'sell'``, UTC times, rows oldest first, and floats that agree with the exact ticks and
lots. The knobs ``queue``, ``cash`` and ``account_kind`` take the same shapes everywhere."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

import vtrade as vt
from vtrade.core.events import BookSnapshot, Side, Trade
from vtrade.core.instruments import Instrument
from vtrade.execution.events import OrderFilled
from vtrade.execution.queue import PowerProbQueueFunc, ProbQueue
from vtrade.runtime.live import LiveConfig, LiveMarket
from vtrade.runtime.live_session import LiveSession
from vtrade.runtime.replay import Context, ReplayResult

# A 5-cent tick and a half-unit lot, so that floats and exact counts differ in every column.
XYZ = Instrument("XYZ", Decimal("0.05"), Decimal("0.5"))
S = 1_000_000_000
SMALL = LiveConfig(symbols=("AAPL",), speed=0, bots=False, burn_in=20_000)


def _feed() -> list[BookSnapshot | Trade]:
    """A book at 100.00 / 100.10 (ticks 2000 / 2002); at 3 s a sell print of 40 lots at the bid
    reaches a resting bid behind 10 lots."""
    out: list[BookSnapshot | Trade] = []
    for t in range(6):
        out.append(BookSnapshot(t * S, t * S, "XYZ", 2 * t, [2000], [10], [2002], [10]))
        if t == 3:
            out.append(Trade(t * S + 1, t * S + 1, "XYZ", 2 * t + 1, 2000, 40, Side.SELL))
    return out


def _strategy(ctx: Context) -> None:
    step = getattr(ctx, "step", 0)
    ctx.step = step + 1  # type: ignore[attr-defined]
    if step == 0:
        ctx.buy(3)  # a taker at 100.10
        ctx.buy(4, price=2000)  # rests at the bid: a maker fill at 3 s
    elif step == 4:
        ctx.sell(2)  # a taker at 100.00


@pytest.fixture(scope="module")
def replayed() -> ReplayResult:
    return vt.replay(_feed(), instrument=XYZ, strategy=_strategy, every="1s", account="ada")


@pytest.fixture(scope="module")
def live() -> LiveSession:
    s = LiveSession(LiveMarket(SMALL), "ada", cash=1_000_000)
    s.advance(2)
    assert s.submit("AAPL", "buy", 30).ok
    s.advance(1)
    assert s.submit("AAPL", "sell", 10).ok
    rest = s.submit("AAPL", "buy", 5, "limit", "1.00", "gtc")  # far below the market: rests
    assert rest.ok
    s.advance(2)
    return s


@pytest.fixture(scope="module")
def stored(replayed: ReplayResult) -> vt.Session:
    session = vt.Session([XYZ], prices={"XYZ": 2000})
    session.open_account("ada", cash="1000000")
    session.record(e for e in replayed.events if isinstance(e, OrderFilled))
    return session


def _same_schema(schema: vt.schema.Schema, *frames: pd.DataFrame) -> None:
    for df in frames:
        schema.check(df)  # names, order and dtypes, exactly
        assert list(df.columns) == list(schema)
        assert {c: str(t) for c, t in df.dtypes.items()} == schema.dtypes
        assert not df.empty


def _oldest_first(df: pd.DataFrame) -> None:
    assert str(df.ts.dtype) == "datetime64[ns, UTC]"
    assert df.ts.is_monotonic_increasing


def test_fills_are_one_table_in_replay_live_and_the_store(replayed, live, stored) -> None:  # type: ignore[no-untyped-def]
    sql = vt.schema.FILLS.conform(stored.sql("select * from fills"))
    frames = {"replay": replayed.fills, "live": live.fills(), "live market": live.market.fills("ada"),
              "store": stored.fills("ada"), "sql": sql}  # fmt: skip
    _same_schema(vt.schema.FILLS, *frames.values())
    for df in frames.values():
        assert set(df.side) == {"buy", "sell"}
        assert set(df.account) == {"ada"} and df.symbol.notna().all()
        _oldest_first(df)
    pd.testing.assert_frame_equal(frames["store"], replayed.fills)  # the store keeps every column, exactly
    pd.testing.assert_frame_equal(frames["live"], frames["live market"])


def test_a_fill_says_the_same_in_floats_and_in_exact_ticks_and_lots(replayed, live) -> None:  # type: ignore[no-untyped-def]
    for df, inst in ((replayed.fills, XYZ), (live.fills(), live.market._insts["AAPL"])):
        # The float is the exact count times the increment, read as a float (no drift, no rounding).
        def px(t: int, inst: Instrument = inst) -> float:
            return float(t * inst.tick_size)

        def sz(n: int, inst: Instrument = inst) -> float:
            return float(n * inst.lot_size)

        assert df.price.tolist() == [px(t) for t in df.price_ticks] and (df.price_ticks > 0).all()
        assert df.quantity.tolist() == [sz(n) for n in df.quantity_lots] and (df.quantity_lots > 0).all()
        assert df.leaves.tolist() == [sz(n) for n in df.leaves_lots]
        maker = df[df.liquidity == "maker"]
        assert maker.queue_ahead.tolist() == [sz(int(n)) for n in maker.queue_ahead_lots]
        assert df[df.liquidity == "taker"].queue_ahead.isna().all()
        assert df[df.liquidity == "taker"].queue_ahead_lots.isna().all()
    f = replayed.fills
    # Hand-checked: 3 lots taken at 100.10, 4 made at 100.00 behind 10 lots, 2 sold at 100.00.
    assert f[["side", "liquidity", "price", "quantity", "price_ticks", "quantity_lots"]].values.tolist() == [
        ["buy", "taker", 100.10, 1.5, 2002, 3],
        ["buy", "maker", 100.00, 2.0, 2000, 4],
        ["sell", "taker", 100.00, 1.0, 2000, 2],
    ]
    assert f.queue_ahead_lots.tolist()[1] == 10


def test_orders_are_one_table_in_replay_and_live(replayed, live) -> None:  # type: ignore[no-untyped-def]
    _same_schema(vt.schema.ORDERS, replayed.orders, live.orders(), live.market.orders("ada"))
    for df in (replayed.orders, live.orders()):
        assert set(df.side) == {"buy", "sell"} and set(df.account) == {"ada"}
        _oldest_first(df)
        assert (df.filled == df.filled_lots * df.quantity / df.quantity_lots).all()
        open_ = df.status.isin(["pending_new", "accepted", "partially_filled", "triggered"])
        assert (df.leaves_lots == (df.quantity_lots - df.filled_lots).where(open_, 0)).all()
        assert (df.leaves == df.leaves_lots * df.quantity / df.quantity_lots).all()
    o = replayed.orders
    assert o.client_order_id.tolist() == ["ada-1", "ada-2", "ada-3"]  # in the order they were entered
    assert o.status.tolist() == ["filled", "filled", "filled"]
    assert o.ts.tolist()[:2] == [pd.Timestamp(0, tz="UTC")] * 2  # entry time, not arrival at the exchange
    assert o.limit_price.isna().tolist() == [True, False, True] and o.limit_price_ticks.tolist()[1] == 2000
    resting = live.orders().iloc[-1]
    assert (resting.status, resting.leaves, resting.limit_price) == ("accepted", 5.0, 1.0)


def test_positions_are_one_table_live_and_in_the_session(live, stored) -> None:  # type: ignore[no-untyped-def]
    _same_schema(vt.schema.POSITIONS, live.positions(), stored.positions("ada"))
    assert live.positions()[["account", "symbol", "quantity", "quantity_lots"]].values.tolist() == [
        ["ada", "AAPL", 20.0, 20]
    ]
    assert stored.positions("ada")[["symbol", "quantity", "quantity_lots"]].values.tolist() == [["XYZ", 2.5, 5]]
    empty = LiveSession(live.market, "nobody-yet").positions()
    assert list(empty.columns) == list(vt.schema.POSITIONS) and empty.empty


def test_an_empty_table_has_the_schema_too() -> None:
    r = vt.replay(_feed(), instrument=XYZ, every="1s")
    _ = [vt.schema.ORDERS.check(r.orders), vt.schema.FILLS.check(r.fills)]
    s = vt.live(SMALL, start=False)
    vt.schema.ORDERS.check(s.orders())
    vt.schema.FILLS.check(s.fills())
    vt.schema.POSITIONS.check(s.positions())
    s.close()


def test_the_schema_is_written_down_once() -> None:
    described = vt.schema.FILLS.describe()
    assert described.column.tolist() == list(vt.schema.FILLS)
    assert described.set_index("column").dtype["ts"] == "datetime64[ns, UTC]"
    assert vt.schema.__doc__ is not None and all(c in vt.schema.__doc__ for c in vt.schema.ORDERS)
    assert {"arrival_mid", "slippage_bps", "fee", "liquidity", "queue_ahead", "model"} <= set(vt.schema.FILLS)


# ---------------------------------------------------------------------------- one shape per knob
@pytest.mark.parametrize("queue", ["prob", "risk_averse", ProbQueue(PowerProbQueueFunc(2))])
def test_queue_is_a_name_or_a_model_everywhere(queue) -> None:  # type: ignore[no-untyped-def]
    r = vt.replay(_feed(), instrument=XYZ, strategy=_strategy, every="1s", queue=queue)
    assert len(r.fills) == 3
    m = LiveMarket(LiveConfig(symbols=("AAPL",), speed=0, bots=False, burn_in=20_000, queue=queue))
    assert isinstance(m.clock()["queue"], str)
    s = vt.live(SMALL, queue=queue, start=False)
    assert s.market.config.queue is queue
    s.close()


def test_a_bad_queue_is_the_same_error_everywhere() -> None:
    message = "queue must be 'risk_averse', 'prob' or a QueueModel, got 'fifo'"
    with pytest.raises(ValueError, match=message):
        vt.replay(_feed(), instrument=XYZ, queue="fifo")
    with pytest.raises(ValueError, match=message):
        LiveConfig(queue="fifo")
    with pytest.raises(ValueError, match=message):
        vt.live(SMALL, queue="fifo", start=False)


@pytest.mark.parametrize("cash", [25_000, "25000", Decimal("25000"), 25_000.0])
@pytest.mark.parametrize("kind", ["margin", " Margin "])
def test_cash_and_account_kind_take_the_same_shapes_everywhere(cash, kind) -> None:  # type: ignore[no-untyped-def]
    r = vt.replay(_feed(), instrument=XYZ, strategy=_strategy, every="1s", cash=cash, account_kind=kind)
    assert len(r.fills) == 3
    s = vt.live(SMALL, cash=cash, account_kind=kind, start=False)
    assert s.summary().cash.tolist() == [25_000.0]
    assert s.market.broker.account("you").kind == "margin"
    s.close()
    session = vt.Session([XYZ])
    session.open_account("ada", cash=cash)
    assert session.portfolios().cash.tolist() == [25_000.0]


@pytest.mark.parametrize("bad", [{"cash": -1}, {"cash": float("nan")}, {"account_kind": "portfolio"}])
def test_bad_cash_or_account_kind_is_refused_everywhere(bad) -> None:  # type: ignore[no-untyped-def]
    args = {"cash": 1_000, "account_kind": "cash"} | bad
    with pytest.raises(ValueError):
        vt.replay(_feed(), instrument=XYZ, **args)
    with pytest.raises(ValueError):
        vt.live(SMALL, start=False, **args)
    if "cash" in bad:
        with pytest.raises(ValueError):
            vt.Session([XYZ]).open_account("ada", cash=bad["cash"])


def test_live_is_what_session_demo_was() -> None:
    a, b = vt.live(SMALL, start=False), vt.Session.demo(SMALL, start=False)
    assert type(a) is type(b) and a.account == b.account == "you" and a.owns_market and b.owns_market
    a.close(), b.close()
