"""The demo's live market: the universe replayed intraday through real daily bars, the looped
Binance capture, NYSE sessions with the clock jumping over the night, simulated class members,
and the engines of idle stocks put to sleep and woken without losing their fill sequence."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from vtrade.core.events import BookDelta, BookSnapshot, Trade
from vtrade.core.instruments import us_equity
from vtrade.execution.accounts import MarginPolicy
from vtrade.market.capture import CaptureLoop
from vtrade.market.feeds.daily import load_universe
from vtrade.market.intraday import IntradayUniverse
from vtrade.runtime.live import CAPTURE_FILE, SIM_TRADERS, LiveConfig, LiveMarket, UnknownAccountError
from vtrade.runtime.pacer import Pacer


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return load_universe(start="2017-08-15", end="2017-10-10").frame


def test_paths_open_at_the_real_open_and_land_on_the_real_close(frame: pd.DataFrame) -> None:
    u = IntradayUniverse.from_frame(frame, start="2017-10-02", seed=3)
    day = frame[frame.date == "2017-10-02"].set_index("ticker")
    clean = day[~day.flagged]
    cols = [u.index[t] for t in clean.index if t in u.index]
    assert len(cols) > 500
    u.open_day(0, steps=50)
    np.testing.assert_allclose(u.prices()[cols], clean.open.loc[[u.tickers[c] for c in cols]], rtol=1e-12)
    path = []
    for _ in range(50):
        u.step()
        path.append(u.prices().copy())
    np.testing.assert_allclose(u.prices()[cols], clean.close.loc[[u.tickers[c] for c in cols]], rtol=1e-9)
    # In between it wanders (a bridge, not a straight line).
    mid = np.array(path[:-1])[:, cols]
    assert (np.abs(np.diff(np.log(mid), axis=0)) > 0).mean() > 0.9
    # Day two opens at day two's real open: the overnight gap happens at the bell.
    u.open_day(1, steps=10)
    day2 = frame[frame.date == "2017-10-03"].set_index("ticker")
    assert u.prices()[u.index["AAPL"]] == pytest.approx(day2.open["AAPL"])


def test_paths_are_deterministic_per_seed_and_go_on_past_the_data(frame: pd.DataFrame) -> None:
    def run(seed: int, day: int) -> np.ndarray:
        u = IntradayUniverse.from_frame(frame, start="2017-10-02", seed=seed)
        u.open_day(day, steps=20)
        for _ in range(7):
            u.step()
        return u.prices()

    assert np.array_equal(run(1, 0), run(1, 0))
    assert not np.array_equal(run(1, 0), run(2, 0))
    beyond = IntradayUniverse.from_frame(frame, start="2017-10-02", seed=1)
    n_days = len(beyond.dates)
    assert beyond.dates[-1] == pd.Timestamp("2017-10-10").date()
    beyond.open_day(n_days + 3, steps=20)  # past the data: a random walk from where it was
    before = beyond.prices().copy()
    beyond.step()
    assert np.all(np.isfinite(beyond.prices())) and not np.array_equal(before, beyond.prices())


def test_quotes_and_depth_come_from_the_depth_model(frame: pd.DataFrame) -> None:
    u = IntradayUniverse.from_frame(frame, start="2017-10-02", seed=3)
    u.open_day(0, steps=10)
    u.step()
    bid, ask, size = u.quotes()
    assert np.all(ask > bid) and np.all(size >= 100)
    with pytest.raises(ValueError):
        bid[0] = 1  # shared, read-only
    snap = u.snapshot("AAPL", us_equity("AAPL"), ts=5)
    i = u.index["AAPL"]
    assert (snap.bid_px[0], snap.ask_px[0]) == (bid[i], ask[i]) and len(snap.bid_px) == 10
    assert snap.bid_px == sorted(snap.bid_px, reverse=True) and snap.ask_px == sorted(snap.ask_px)


def test_intraday_bad_input(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no day before"):
        IntradayUniverse.from_frame(frame, start="2000-01-03", seed=1)
    with pytest.raises(ValueError, match="ends before"):
        IntradayUniverse.from_frame(frame, start="2030-01-02", seed=1)
    u = IntradayUniverse.from_frame(frame, start="2017-10-02", seed=1)
    with pytest.raises(RuntimeError, match="open_day"):
        u.step()
    with pytest.raises(ValueError, match="at least one step"):
        u.open_day(0, steps=0)


def test_capture_loop_restates_the_book_every_pass() -> None:
    evs = [
        BookDelta(50, 50, "X", 0, [98], [1], [], []),  # before the snapshot: not replayable
        BookSnapshot(100, 100, "X", 1, [99], [5], [101], [5]),
        Trade(150, 150, "X", 2, 101, 2, 1),
        BookDelta(200, 200, "X", 3, [], [], [101], [3]),
    ]
    loop = CaptureLoop(evs, start_ts=10_000, gap_ns=100)
    out = loop.step(6)
    assert [type(e).__name__ for e in out] == ["Trade", "BookDelta", "BookSnapshot", "Trade", "BookDelta",
                                               "BookSnapshot"]  # fmt: skip
    assert [e.ts for e in out] == [10_050, 10_100, 10_200, 10_250, 10_300, 10_400]
    assert loop.passes == 3
    with pytest.raises(ValueError, match="snapshot"):
        CaptureLoop(evs[:1], start_ts=0)
    with pytest.raises(ValueError, match="gap_ns"):
        CaptureLoop(evs, start_ts=0, gap_ns=0)


def test_the_binance_capture_loops_without_crossing() -> None:
    """The recording is not strictly time ordered; a slice must still take every event up to its
    end (on the running maximum), or the book diverges and crosses a few passes later."""
    m = LiveMarket(LiveConfig(symbols=(), crypto=True, speed=0, bots=True))
    venue = m._venues["BTCUSDT"]
    m.advance(1100)  # three passes of the 345-second capture
    assert venue.source.passes >= 3  # type: ignore[attr-defined]
    q = m.quotes(["BTCUSDT"]).iloc[0]
    assert q.bid < q.ask and not m.faults
    assert CAPTURE_FILE.exists()


@pytest.fixture()
def universe_market() -> LiveMarket:
    # Five-minute slices: a whole session in 78 slices.
    return LiveMarket(LiveConfig(symbols=(), universe=True, speed=0, step="300s"))


def test_the_universe_follows_nyse_sessions_and_jumps_over_the_night(universe_market: LiveMarket) -> None:
    m = universe_market
    assert m.clock()["day"] == "2017-10-02"
    assert m.clock()["ts"] == pd.Timestamp("2017-10-02 13:30", tz="UTC")  # 09:30 New York
    m.open_account("ada")
    out = m.submit("ada", "AAPL", "buy", 10, "limit", "100.00")  # far below: rests until the close
    assert out.ok
    m.advance(78)
    clock = m.clock()
    assert clock["ts"] == pd.Timestamp("2017-10-03 13:30", tz="UTC") and clock["day"] == "2017-10-03"
    assert m._skipped_ns == (17 * 3600 + 1800) * 10**9  # 16:00 to 09:30 next day: no wall time waited
    assert m.orders("ada").status.tolist() == ["expired"]  # a DAY order dies at the close
    hist = m.prices("SPY")
    close = load_universe(tickers="SPY", start="2017-10-02", end="2017-10-02").frame.close.iloc[0]
    at_close = hist[hist.ts == pd.Timestamp("2017-10-02 20:00", tz="UTC")].mid.iloc[0]
    assert at_close == pytest.approx(close, abs=0.011)  # the real close, to within the synthesised spread
    assert m.quotes(["SPY"]).change_pct.iloc[0] == pytest.approx((hist.mid.iloc[-1] / close - 1) * 100, rel=1e-4)


def test_the_pacer_waits_only_for_open_hours() -> None:
    slept: list[float] = []
    p = Pacer(10.0, clock=lambda: 0.0, sleep=slept.append)
    p.wait_until(0)
    p.wait_until(10 * 10**9)
    assert slept == [1.0]


def test_simulated_class_members_trade_through_the_rules_and_rank(universe_market: LiveMarket) -> None:
    m = universe_market
    m.advance(10)
    board = m.leaderboard()
    assert set(SIM_TRADERS) <= set(board.index) and board.loc[list(SIM_TRADERS), "simulated"].all()
    assert board.nav.is_monotonic_decreasing
    index = m.book.ledgers["sim-index"]
    assert index.positions.get("SPY", 0) > 0  # the index investor bought SPY
    for name in SIM_TRADERS:
        with pytest.raises(UnknownAccountError):
            m.orders(name)  # nobody can act for them
        with pytest.raises(UnknownAccountError):
            m.submit(name, "SPY", "sell", 1)


def test_idle_stocks_sleep_and_wake_with_unique_fill_ids(universe_market: LiveMarket) -> None:
    m = universe_market
    m.open_account("bo")
    m.submit("bo", "XRAY", "buy", 10)
    m.advance(2)
    first = set(m.fills("bo").fill_id)
    assert first and "XRAY" in m._venues
    m.advance(700)  # nobody looks at XRAY and nothing rests there: its engine sleeps
    assert "XRAY" not in m._venues and "XRAY" in m._dormant
    m.submit("bo", "XRAY", "sell", 10)  # wakes it at the current quote
    m.advance(2)
    fills = m.fills("bo")
    assert len(fills) == len(set(fills.fill_id)) >= 2 and not m.faults
    assert m.portfolio("bo")["positions"].empty


def test_live_config_and_reads_refuse_bad_input() -> None:
    with pytest.raises(ValueError, match="universe replay"):
        LiveMarket(LiveConfig(symbols=("AAPL",), universe=True, speed=0, burn_in=20_000))
    with pytest.raises(ValueError, match="opening price"):
        LiveConfig(symbols=("NOPE",), speed=0)  # checked when the market is built
        LiveMarket(LiveConfig(symbols=("NOPE",), speed=0, burn_in=20_000))
    with pytest.raises(ValueError, match="at least one symbol"):
        LiveConfig(symbols=())
    with pytest.raises(ValueError):
        LiveConfig(universe_start="2017-13-01")
    m = LiveMarket(LiveConfig(symbols=("XYZ",), prices={"XYZ": "20.00"}, speed=0, burn_in=20_000, bots=False))
    assert m.instrument("XYZ").sector == "Synthetic"
    with pytest.raises(KeyError, match=r"(?i)unknown symbol 'NOPE'"):
        m.quotes(["XYZ", "NOPE"])
    with pytest.raises(KeyError, match=r"(?i)unknown symbol"):
        m.depth("NOPE")
    with pytest.raises(KeyError, match=r"(?i)unknown symbol"):
        m.prices("NOPE")
    assert m.suggested_quantity("XYZ") == "100"


def test_refused_input_changes_nothing_and_uses_up_no_order_id() -> None:
    m = LiveMarket(LiveConfig(symbols=("XYZ",), prices={"XYZ": "20.00"}, speed=0, burn_in=20_000, bots=False))
    m.open_account("cy")
    for bad in ({"quantity": 0}, {"quantity": -5}, {"quantity": float("nan")},
                {"quantity": 10, "limit_price": "20.005"}, {"quantity": 10, "symbol": "NOPE"}):  # fmt: skip
        args = {"symbol": "XYZ", "side": "buy", "order_type": "limit", "limit_price": "19.00"} | bad
        with pytest.raises(ValueError):
            m.submit("cy", **args)
    assert m.orders("cy").empty and m.version("cy") == 0
    assert m.submit("cy", "XYZ", "buy", 10).client_order_id == "cy-1"


@pytest.mark.parametrize("queue", ["risk_averse", "prob"])
def test_every_queue_option_of_vtrade_serve_trades(queue: str) -> None:
    """`vtrade serve --queue prob` once raised TypeError at start: each choice builds and fills."""
    import argparse

    from vtrade.cli import _serving_args
    from vtrade.execution.queue import QUEUE_NAMES

    parser = argparse.ArgumentParser()
    _serving_args(parser)
    choices = next(a.choices for a in parser._actions if a.dest == "queue")
    assert tuple(choices) == QUEUE_NAMES  # the CLI offers exactly the names the market accepts
    m = LiveMarket(LiveConfig(symbols=("AAPL",), speed=0, queue=queue, burn_in=20_000))
    m.advance(2)
    m.open_account("ada")
    bid = m.quotes().set_index("symbol").loc["AAPL", "bid"]
    assert m.submit("ada", "AAPL", "buy", 10, "market").ok
    assert m.submit("ada", "AAPL", "buy", 10, "limit", f"{bid:.2f}", "gtc").ok  # rests in the queue
    m.advance(30)
    assert m.fills("ada").quantity.iloc[0] == 10
    with pytest.raises(ValueError, match="queue must be"):
        LiveConfig(queue="fifo")  # type: ignore[arg-type]


def test_a_margin_account_below_maintenance_gets_a_call_and_is_liquidated_live() -> None:
    """The class's margin policy comes from the config. Here maintenance equals the initial
    margin (50 %), so an account that buys to its Reg T limit has no cushion: the spread and
    the book levels its market order walked through put it below maintenance at the first
    mark, and the broker liquidates it in the live market, saying why."""
    policy = MarginPolicy(initial="0.50", maintenance_long="0.50")
    m = LiveMarket(LiveConfig(symbols=("XYZ",), prices={"XYZ": "20.00"}, speed=0, burn_in=20_000, bots=False,
                              margin=policy))  # fmt: skip
    m.open_account("mo", cash=10_000, account_kind="margin")
    m.open_account("ca", cash=10_000)  # a cash account next to it: never called
    m.advance(2)
    assert m.portfolio("mo")["summary"]["buying_power"] == 20_000  # Reg T from the config: 2 x cash
    assert m.submit("mo", "XYZ", "buy", 2000, size_to_cash=True).ok  # cut to what $20,000 buys
    assert m.submit("ca", "XYZ", "buy", 2000, size_to_cash=True).ok
    m.advance(1)  # the buy fills; after the slice's marks the broker checks maintenance

    ledger = m.book.ledgers["mo"]
    lots, mark = ledger.positions["XYZ"], m._mark_ticks("XYZ")
    assert mark is not None
    price = Decimal(mark) / 100
    equity = ledger.cash + lots * price  # cash is negative: the loan
    requirement = Decimal("0.50") * lots * price
    assert equity < requirement
    calls = m.margin_calls("mo")
    assert len(calls) == 1 and m.margin_calls("ca").empty
    call = calls.iloc[0]
    assert (call.equity, call.requirement) == (float(equity), float(requirement))
    # Release the deficit plus the 5 % buffer of equity; each share sold releases 50 % of its value.
    release = (requirement - equity) + Decimal("0.05") * equity
    qty = math.ceil(release / (Decimal("0.50") * price))
    liq = m.orders("mo").set_index("client_order_id").loc[call.orders[0]]
    assert (liq.side, liq.type, liq.quantity) == ("sell", "market", qty)
    assert liq.reason == call.reason
    assert call.reason.startswith(f"Margin call: your equity of ${equity:,.2f} is below the maintenance requirement")
    assert call.reason.endswith(f"the broker is selling {qty} XYZ to restore it")

    m.advance(1)  # the forced sale fills
    fills = m.fills("mo")
    sold = fills[fills.client_order_id == call.orders[0]]
    assert sold.side.tolist() == ["sell"] * len(sold) and sold.quantity.sum() == qty
    assert m.book.ledgers["mo"].positions["XYZ"] == lots - qty
    assert m.orders("mo").set_index("client_order_id").loc[call.orders[0], "status"] == "filled"
    assert not m.broker.margin("mo", m._mark_ticks).margin_call  # back above maintenance
    assert not m.faults
