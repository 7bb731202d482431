"""A teacher's market events (issue 12, item 4): shocks, halts and liquidity droughts as entries
on the ``orders`` log, so every student sees them on the same tape, two markets given the same
events at the same simulated times stay identical, and a restart brings them back. Also trade
notes on orders and changing a running market's speed.

Every test runs real markets: synthetic agent flow (small burn-in) or the 500-stock universe
(five-minute slices); ``advance`` keeps them deterministic, and nothing sleeps for a fixed time.
"""

from __future__ import annotations

import math
import time
from decimal import Decimal
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
import pytest

from vtrade.core.events import decode, encode
from vtrade.execution.orders import OrderType, SubmitOrder
from vtrade.execution.validation import OrderInputError
from vtrade.runtime.execution_worker import output_hash
from vtrade.runtime.live import LiveConfig, LiveMarket, UnknownSymbolError
from vtrade.runtime.live_log import ENTRIES

FLOW = LiveConfig(symbols=("XOM", "AAPL"), speed=0, bots=False, burn_in=20_000)
UNIVERSE = LiveConfig(symbols=(), universe=True, speed=0, bots=False, step="300s")


def _mid(m: LiveMarket, symbol: str) -> float:
    return float(m.quotes([symbol]).mid.iloc[0])


def _depth_total(m: LiveMarket, symbol: str, levels: int = 10) -> float:
    return float(m.depth(symbol, levels)["size"].sum())


def _entries(m: LiveMarket) -> int:
    return int(m._log.bus.end_offsets(ENTRIES)[0])


# ---------------------------------------------------------------------------- shocks
def test_a_sector_shock_moves_its_synthetic_quotes_and_a_holders_nav_and_nothing_else() -> None:
    m = LiveMarket(FLOW)
    m.open_account("ada", cash=50_000)
    m.advance(3)
    assert m.submit("ada", "XOM", "buy", 100).ok
    m.advance(2)
    energy = m.symbols_in("ENERGY")
    assert energy == ["XOM"]
    before = m.quotes()
    nav = m.portfolio("ada")["summary"]["nav"]
    xom = _mid(m, "XOM")
    assert m.shock(energy, -10, id="oil-glut")
    after = m.quotes()
    assert _mid(m, "XOM") == pytest.approx(0.9 * xom, abs=0.011)  # at once, to the tick
    assert after.set_index("symbol").loc["AAPL"].equals(before.set_index("symbol").loc["AAPL"])
    assert after.set_index("symbol").change_pct["XOM"] == pytest.approx(
        before.set_index("symbol").change_pct["XOM"] - 10, abs=0.5)  # fmt: skip
    # The held position is marked at the new mid at once: NAV falls by 100 x the move.
    assert m.portfolio("ada")["summary"]["nav"] == pytest.approx(nav - 100 * (xom - _mid(m, "XOM")), abs=0.01)
    # A level shift, not a blip: the flow goes on around the new level.
    m.advance(30)
    assert _mid(m, "XOM") == pytest.approx(0.9 * xom, rel=0.02)
    assert m.prices("XOM").mid.iloc[-31] == pytest.approx(0.9 * xom, abs=0.011)  # the sample shows it too
    assert not m.faults


def test_a_sector_shock_shifts_the_universe_path_for_good_and_marks_holders() -> None:
    m = LiveMarket(UNIVERSE)
    twin = LiveMarket(UNIVERSE)  # the same market without the shock
    for x in (m, twin):
        x.open_account("ada")
        assert x.submit("ada", "XOM", "buy", 100).ok
        x.advance(2)
    energy = m.symbols_in("energy")
    assert {"XOM", "CVX", "XLE"} <= set(energy) and "AAPL" not in energy
    nav = m.portfolio("ada")["summary"]["nav"]
    before = m.quotes().set_index("symbol")
    assert m.shock(energy, Decimal("-10"), id="oil")
    after = m.quotes().set_index("symbol")
    ratio = after.mid / before.mid
    np.testing.assert_allclose(ratio[energy], 0.9, atol=0.002)  # one cent on the cheapest stock
    others = after.index.difference(energy)
    pd.testing.assert_frame_equal(after.loc[others], before.loc[others])
    held = 100 * (before.mid["XOM"] - after.mid["XOM"])
    assert m.portfolio("ada")["summary"]["nav"] == pytest.approx(nav - held, abs=0.01)
    # Later prices, the next day's open and close included, stay 10 % below the unshocked path.
    for x in (m, twin):
        x.advance(100)  # past the close into the next session
    assert m.clock()["day"] == twin.clock()["day"] != "2017-10-02"
    later, plain = m.quotes().set_index("symbol"), twin.quotes().set_index("symbol")
    np.testing.assert_allclose((later.mid / plain.mid)[energy], 0.9, atol=0.002)
    pd.testing.assert_series_equal(later.mid[others], plain.mid[others])


# ---------------------------------------------------------------------------- halts
def test_a_halt_refuses_orders_with_the_reason_and_resume_takes_them_again() -> None:
    m = LiveMarket(FLOW)
    m.open_account("ada", cash=50_000)
    m.advance(2)
    assert m.halt("XOM", "pending news", id="h1")
    assert m.quotes().set_index("symbol").halted.to_dict() == {"XOM": True, "AAPL": False}
    out = m.submit("ada", "XOM", "buy", 10)
    assert not out.ok and out.code == "halted"
    assert out.reason == "Trading in XOM is halted; orders are refused until it resumes"
    assert m.orders("ada").reason.iloc[-1] == out.reason  # kept as a rejected order
    assert m.submit("ada", "AAPL", "buy", 1).ok  # other symbols trade on
    frozen = m.depth("XOM")
    m.advance(5)
    pd.testing.assert_frame_equal(m.depth("XOM"), frozen)  # no flow while halted
    assert m.resume_trading("XOM", id="r1")
    assert not m.quotes(["XOM"]).halted.iloc[0]
    assert m.submit("ada", "XOM", "buy", 10).ok
    m.advance(2)
    assert m.orders("ada").status.tolist() == ["rejected", "filled", "filled"]
    assert not m.faults


def test_an_order_on_its_way_when_the_halt_comes_is_refused_by_the_exchange_with_the_same_reason() -> None:
    m = LiveMarket(FLOW)
    m.open_account("ada", cash=50_000)
    m.advance(2)
    assert m.submit("ada", "XOM", "buy", 10).ok  # admitted; it reaches the exchange after the entry latency
    m.halt("XOM", id="h")
    m.advance(1)
    row = m.orders("ada").iloc[0]
    assert row.status == "rejected" and row.reason == "Trading in XOM is halted; orders are refused until it resumes"


def test_a_halted_universe_stock_freezes_and_gaps_to_its_path_on_resume() -> None:
    m = LiveMarket(UNIVERSE)
    m.advance(1)
    assert "AAPL" not in m._venues  # asleep: the halt wakes its exchange
    assert m.halt("AAPL", id="h")
    frozen = m.quotes(["AAPL", "MSFT"])
    m.advance(3)
    moved = m.quotes(["AAPL", "MSFT"])
    assert moved.iloc[0].equals(frozen.iloc[0]) and moved.halted.tolist() == [True, False]
    assert moved.mid.iloc[1] != frozen.mid.iloc[1]
    m.advance(700)  # days: a halted stock's exchange does not go to sleep, its quote stays frozen
    touch = ["bid", "ask", "bid_size", "ask_size"]  # (the change is against each day's previous close)
    assert "AAPL" in m._venues and m.quotes(["AAPL"])[touch].equals(frozen[touch].iloc[[0]])
    assert m.resume_trading("AAPL", id="r")
    assert m.universe is not None
    bid, ask, _, _ = m.universe.touch()
    i = m.universe.index["AAPL"]
    q = m.quotes(["AAPL"]).iloc[0]
    assert (q.bid, q.ask) == (bid[i] * 0.01, ask[i] * 0.01) and q.mid != frozen.mid.iloc[0]
    top = m.depth("AAPL", 1)
    assert top.price.tolist() == pytest.approx([ask[i] / 100, bid[i] / 100])  # the exchange's book gapped too


# ---------------------------------------------------------------------------- droughts
def test_a_drought_thins_synthetic_depth_and_the_book_comes_back_after_it() -> None:
    m, twin = LiveMarket(FLOW), LiveMarket(FLOW)
    for x in (m, twin):
        x.advance(3)
    before = m.depth("XOM", 10)
    assert m.drought(["XOM"], 0.25, "10s", id="dry")
    during = m.depth("XOM", 10)
    assert during.price.tolist() == before.price.tolist()  # prices untouched
    expected = [max(1, round(s * 0.25)) for s in before["size"]]
    assert during["size"].tolist() == expected
    assert _depth_total(m, "AAPL") == _depth_total(twin, "AAPL")
    for x in (m, twin):
        x.advance(9)
    assert _depth_total(m, "XOM") < 0.4 * _depth_total(twin, "XOM")  # still dry as the flow goes on
    for x in (m, twin):
        x.advance(1)  # ten seconds: the drought is over, and the flow never changed under it
    pd.testing.assert_frame_equal(m.depth("XOM", 20), twin.depth("XOM", 20))
    pd.testing.assert_frame_equal(m.quotes(), twin.quotes())


def test_a_drought_thins_universe_depth_for_its_duration() -> None:
    m = LiveMarket(UNIVERSE)
    m.advance(2)
    before = _depth_total(m, "XOM")
    touch = m.quotes(["XOM", "AAPL"])
    assert m.drought("XOM", "0.5", "15min", id="dry")  # three five-minute slices
    assert _depth_total(m, "XOM") == pytest.approx(0.5 * before, rel=0.1)
    after = m.quotes(["XOM", "AAPL"])
    assert after.mid.tolist() == touch.mid.tolist() and after.bid_size.iloc[1] == touch.bid_size.iloc[1]
    m.advance(2)
    assert m.universe is not None and m.universe._log_liq[m.universe.index["XOM"]] == pytest.approx(math.log(0.5))
    m.advance(1)
    assert not m._droughts and not np.any(m.universe._log_liq)


# ---------------------------------------------------------------------------- determinism and durability
def _class_script(m: LiveMarket) -> None:
    """One lesson: a student trades, the teacher shocks, halts, dries up and resumes."""
    m.open_account("ada", cash=80_000)
    m.advance(3)
    assert m.submit("ada", "XOM", "buy", 50, note="oil looks cheap").ok
    m.advance(2)
    assert m.shock(m.symbols_in("energy"), -10, id="oil")
    m.advance(2)
    assert m.halt("AAPL", "earnings", id="halt-aapl")
    m.advance(2)
    assert m.drought(["XOM"], 0.5, "5s", id="dry")
    m.advance(3)
    assert m.resume_trading("AAPL", id="resume-aapl")
    assert m.submit("ada", "XOM", "sell", 20).ok
    m.advance(2)


def test_two_markets_given_the_same_events_at_the_same_times_are_identical() -> None:
    cfg = LiveConfig(symbols=("XOM", "AAPL"), speed=0, burn_in=20_000)  # with the market's bots
    a, b = LiveMarket(cfg, keep_log=True), LiveMarket(cfg, keep_log=True)
    for m in (a, b):
        _class_script(m)
        m.advance(10)
    pd.testing.assert_frame_equal(a.quotes(), b.quotes())
    for s in ("XOM", "AAPL"):
        pd.testing.assert_frame_equal(a.depth(s, 20), b.depth(s, 20))
    pd.testing.assert_frame_equal(a.orders("ada"), b.orders("ada"))
    assert output_hash(a._log.bus, "exec") == output_hash(b._log.bus, "exec")
    pd.testing.assert_frame_equal(a.interventions(), b.interventions())
    assert a.interventions().kind.tolist() == ["shock", "halt", "drought", "resume"]


@pytest.mark.parametrize("stop", ["killed", "closed"])
def test_market_events_come_back_after_a_restart(tmp_path: Path, stop: str) -> None:
    cfg = FLOW
    m = LiveMarket(cfg, data_dir=tmp_path)
    m.advance(2)
    m.checkpoint()  # everything below is after it: a kill leaves it only in the journal
    _class_script(m)
    assert m.halt("XOM", "circuit breaker", id="halt-xom")
    if stop == "killed":
        assert m._durable is not None
        m._durable.close()
        m._durable = None
    else:
        m.close()
    back = LiveMarket(cfg, data_dir=tmp_path)
    pd.testing.assert_frame_equal(back.quotes(), m.quotes())  # shocked prices and the halt are back
    assert back.quotes(["XOM"]).halted.iloc[0]
    pd.testing.assert_frame_equal(back.orders("ada"), m.orders("ada"))
    assert back.orders("ada").note.tolist() == ["oil looks cheap", ""]
    assert not back.submit("ada", "XOM", "buy", 1).ok
    # The class runtime replays its own events after a restart: each id acts once.
    n = _entries(back)
    assert not back.shock(["XOM"], -10, id="oil")
    assert not back.halt("AAPL", id="halt-aapl")
    assert not back.drought(["XOM"], 0.5, "5s", id="dry")
    assert _entries(back) == n
    m.advance(10)
    back.advance(10)
    pd.testing.assert_frame_equal(back.quotes(), m.quotes())
    back.close()


# ---------------------------------------------------------------------------- bad input
def test_bad_market_events_get_a_clear_error_and_change_nothing() -> None:
    m = LiveMarket(FLOW)
    m.advance(2)
    quotes, n = m.quotes(), _entries(m)
    with pytest.raises(UnknownSymbolError, match="Unknown symbol 'XON'; did you mean XOM"):
        m.shock(["XOM", "XON"], -10, id="a")
    with pytest.raises(ValueError, match="at least one symbol"):
        m.shock([], -10, id="a")
    with pytest.raises(ValueError, match=r"unknown sector 'Oil'.*Energy"):
        m.symbols_in("Oil")
    for pct in (-90, -95, 0, 200.5, float("nan"), "ten", True, None):
        with pytest.raises(ValueError, match="pct"):
            m.shock(["XOM"], pct, id="a")  # type: ignore[arg-type]
    for factor in (0, 1, 1.5, -0.5, float("inf"), "x"):
        with pytest.raises(ValueError, match="factor"):
            m.drought(["XOM"], factor, "1min", id="a")
    for duration in ("soon", 0, -5, "", None, True, 1.5):
        with pytest.raises(ValueError, match="duration"):
            m.drought(["XOM"], 0.5, duration, id="a")  # type: ignore[arg-type]
    for bad_id in (5, None, "", "  "):
        with pytest.raises(ValueError, match="id"):
            m.shock(["XOM"], -10, id=bad_id)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="id"):
            m.halt("XOM", id=bad_id)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not halted"):
        m.resume_trading("XOM", id="a")
    with pytest.raises(UnknownSymbolError):
        m.halt("NOPE", id="a")
    with pytest.raises(ValueError, match="reason"):
        m.halt("XOM", 42, id="a")  # type: ignore[arg-type]
    assert m.halt("XOM", id="h")
    with pytest.raises(ValueError, match="already halted"):
        m.halt("XOM", id="h2")
    assert _entries(m) == n + 1 and m.interventions().id.tolist() == ["h"]
    pd.testing.assert_frame_equal(m.quotes().drop(columns="halted"), quotes.drop(columns="halted"))
    m.open_account("ada")
    with pytest.raises(OrderInputError, match="note must be text"):
        m.submit("ada", "XOM", "buy", 1, note=3)  # type: ignore[arg-type]
    assert m.orders("ada").empty


# ---------------------------------------------------------------------------- notes and speed
def test_a_trade_note_travels_with_the_order_and_old_journals_still_decode() -> None:
    m = LiveMarket(FLOW)
    m.open_account("ada")
    m.advance(2)
    m.submit("ada", "AAPL", "buy", 5, note="earnings beat: buying the dip")
    m.submit("ada", "AAPL", "buy", 5)
    assert m.orders("ada").note.tolist() == ["earnings beat: buying the dip", ""]
    # An entry journaled before notes existed has one field less: it decodes with no note.
    new = SubmitOrder(1, "ada", "ada-1", "AAPL", 1, OrderType.MARKET, 5)  # type: ignore[arg-type]
    old = msgspec.msgpack.decode(encode(new))[:-1]
    assert decode(msgspec.msgpack.encode(old)) == new and new.note == ""


def test_set_speed_changes_the_pace_of_a_running_market_but_not_what_happens() -> None:
    m = LiveMarket(LiveConfig(symbols=("XOM",), speed=0.001, bots=False, burn_in=20_000))
    fingerprint = m._durable is None and repr(m.config)
    for bad in (-1, float("nan"), float("inf"), True, "fast"):
        with pytest.raises(ValueError, match="speed"):
            m.set_speed(bad)  # type: ignore[arg-type]
    assert m.config.speed == 0.001 and repr(m.config) == fingerprint
    m.start()
    try:
        t0 = m.clock()["ts"]
        m.set_speed(0)  # as fast as possible: hundreds of slices where 0.001x would give none
        deadline = time.monotonic() + 30
        while m.clock()["ts"] - t0 < pd.Timedelta(seconds=200):
            assert time.monotonic() < deadline, "the market did not speed up"
            time.sleep(0.01)
        assert m.clock()["speed"] == 0
    finally:
        m.stop()
    assert not m.faults


def test_the_binance_capture_is_shocked_and_dried_up_through_its_loop() -> None:
    """A recorded tape: the exchange sees it shifted and scaled, pass after pass of the loop."""
    m = LiveMarket(LiveConfig(symbols=(), crypto=True, speed=0, bots=False))
    m.advance(5)
    mid = _mid(m, "BTCUSDT")
    assert m.shock(["BTCUSDT"], 5, id="rally")
    assert _mid(m, "BTCUSDT") == pytest.approx(1.05 * mid, abs=0.1)
    full = _depth_total(m, "BTCUSDT")
    assert m.drought("BTCUSDT", 0.5, "20s", id="dry")
    assert _depth_total(m, "BTCUSDT") == pytest.approx(0.5 * full, rel=0.05)
    m.advance(400)  # past the end of the 345-second capture: the loop restates its book
    assert m._flow[0].source.passes >= 2  # type: ignore[attr-defined]
    assert _mid(m, "BTCUSDT") == pytest.approx(1.05 * mid, rel=0.01) and not m.faults
    assert m._flow[0].mirror is None and m._flow[0].scale == 1.0  # the drought is over
