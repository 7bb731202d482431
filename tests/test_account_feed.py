"""The class market's account feed on ``portfolio``: what the game worker consumes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from vtrade.portfolio.events import AccountSnapshot, FillBooked, MarginCalled, SessionEnded
from vtrade.portfolio.feed import AccountFeed
from vtrade.runtime.live import FEED_TOPIC, LiveConfig, LiveMarket, market_fingerprint

FLOW = dict(symbols=("AAPL", "XOM"), speed=0, burn_in=20_000, seed=5, account_feed=True, session="120s")


def drain(consumer, commit: bool = True) -> list:  # type: ignore[no-untyped-def]
    out = []
    while records := consumer.poll(10_000):
        out += records
        if commit:
            consumer.commit(records)
    return out


def test_fills_carry_their_order_and_receipt_and_sessions_close_after_every_snapshot() -> None:
    m = LiveMarket(LiveConfig(**FLOW))  # type: ignore[arg-type]
    m.open_account("ada", cash=50_000)
    m.open_account("bo", cash=50_000)
    game = m._log.bus.consumer("game", FEED_TOPIC)
    m.advance(3)
    assert m.submit("ada", "AAPL", "buy", 10, note="earnings next week").ok
    m.advance(250)  # two 120 s sessions
    events = [r.event for r in drain(game)]
    (fill,) = [e for e in events if isinstance(e, FillBooked)]
    assert (fill.account, fill.symbol, fill.side, fill.quantity, fill.order_type, fill.note) == (
        "ada", "AAPL", "buy", 10.0, "market", "earnings next week")
    receipt = m.fills("ada").iloc[0]
    assert fill.price == pytest.approx(float(receipt.price)) and fill.liquidity == "taker"
    closes = [i for i, e in enumerate(events) if isinstance(e, SessionEnded)]
    assert [events[i].session for i in closes] == [0, 1]
    for i in closes:  # each close comes right after one snapshot per person, of that session
        before = events[i - 2 : i]
        assert {e.account for e in before} == {"ada", "bo"}
        assert all(isinstance(e, AccountSnapshot) and e.session == events[i].session for e in before)
    snap = next(e for e in reversed(events) if isinstance(e, AccountSnapshot) and e.account == "ada")
    hist = m.nav_history("ada").set_index("ts").nav  # the market's own NAV sample at that time
    assert snap.nav == pytest.approx(hist[pd.Timestamp(snap.ts, unit="ns", tz="UTC")], abs=0.005)
    (held,) = snap.holdings
    assert held.symbol == "AAPL" and held.kind == "stock" and held.sector
    assert held.weight == pytest.approx(10 * held.price / snap.nav)
    assert snap.beta is None and snap.benchmark_return is None  # no SPY in this market
    assert snap.total_return == pytest.approx(snap.nav / 50_000 - 1)


def test_what_every_consumer_committed_is_forgotten_and_a_checkpoint_keeps_the_rest(tmp_path: Path) -> None:
    m = LiveMarket(LiveConfig(**FLOW), data_dir=tmp_path)  # type: ignore[arg-type]
    m.open_account("ada", cash=50_000)
    game = m._log.bus.consumer("game", FEED_TOPIC)
    m.advance(130)
    taken = drain(game)
    assert taken and m._log.bus.committed_floor(FEED_TOPIC) == [taken[-1].offset + 1]
    m.advance(60)  # retention runs every 60 slices
    kept = m._log.bus.read(FEED_TOPIC, 0, 0, 10)
    assert not kept or kept[0].offset > taken[-1].offset
    m.advance(130)
    pending = [r.event for r in drain(game, commit=False)]
    assert any(isinstance(e, SessionEnded) for e in pending)
    assert m.checkpoint()
    m.close()
    again = LiveMarket(LiveConfig(**FLOW), data_dir=tmp_path)  # type: ignore[arg-type]
    after = [r.event for r in drain(again._log.bus.consumer("game", FEED_TOPIC))]
    assert after[: len(pending)] == pending  # handed out again after the restart
    again.close()


def test_universe_sessions_close_with_the_nyse_day_and_carry_beta_to_spy() -> None:
    m = LiveMarket(LiveConfig(symbols=(), universe=True, bots=False, speed=0, step="1min", account_feed=True))
    m.open_account("ada", cash=100_000)
    game = m._log.bus.consumer("game", FEED_TOPIC)
    m.advance(2)
    assert m.submit("ada", "SPY", "buy", 200).ok
    m.advance(2 * 391)
    events = [r.event for r in drain(game)]
    assert [e.session for e in events if isinstance(e, SessionEnded)] == [0, 1]
    last = [e for e in events if isinstance(e, AccountSnapshot)][-1]
    assert last.benchmark_return is not None and last.beta is not None
    assert 0.2 < last.beta < 0.6  # about 40 % of NAV in SPY, the rest cash
    assert {h.kind for h in last.holdings} == {"etf"}
    assert not any(isinstance(e, MarginCalled) for e in events)


def test_the_feed_changes_nothing_of_the_market_itself() -> None:
    plain = LiveConfig(**{**FLOW, "account_feed": False})  # type: ignore[arg-type]
    assert market_fingerprint(plain) == market_fingerprint(LiveConfig(**FLOW))  # type: ignore[arg-type]
    m = LiveMarket(plain)
    assert FEED_TOPIC not in m._log.bus.topics()
    with pytest.raises(ValueError, match="positive"):
        AccountFeed(None, session_ns=0)
