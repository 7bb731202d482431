"""The synthetic zero-intelligence market: calibration, determinism, book consistency, speed."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pytest

from vtrade.core.events import BookDelta, BookSnapshot, Event, Side, Trade, encode
from vtrade.core.instruments import us_equity
from vtrade.market.synthetic import SECONDS_PER_YEAR, SyntheticMarket, SyntheticParams, synthetic_events


@dataclass
class Replay:
    """A dict book rebuilt from the published events, with statistics sampled once a second."""

    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    spreads: list[int] = field(default_factory=list)
    top5_bid: list[int] = field(default_factory=list)
    top5_ask: list[int] = field(default_factory=list)
    touch: list[int] = field(default_factory=list)
    mids: list[float] = field(default_factory=list)
    crossed: int = 0
    trades: int = 0

    def snapshot(self, snap: BookSnapshot) -> None:
        self.bids = dict(zip(snap.bid_px, snap.bid_sz, strict=True))
        self.asks = dict(zip(snap.ask_px, snap.ask_sz, strict=True))

    def apply(self, delta: BookDelta) -> None:
        for book, pxs, szs in ((self.bids, delta.bid_px, delta.bid_sz), (self.asks, delta.ask_px, delta.ask_sz)):
            for px, sz in zip(pxs, szs, strict=True):
                if sz:
                    book[px] = sz
                else:
                    book.pop(px, None)

    def sample(self) -> None:
        bb, ba = max(self.bids), min(self.asks)
        self.spreads.append(ba - bb)
        self.mids.append((bb + ba) / 2)
        self.touch.append(self.bids[bb])
        self.top5_bid.append(sum(self.bids[p] for p in sorted(self.bids, reverse=True)[:5]))
        self.top5_ask.append(sum(self.asks[p] for p in sorted(self.asks)[:5]))


def replay(events: list[Event], snap: BookSnapshot, every_ns: int = 10**9) -> Replay:
    r = Replay()
    r.snapshot(snap)
    next_sample = snap.ts
    for ev in events:
        if isinstance(ev, Trade):
            r.trades += 1
            continue
        assert isinstance(ev, BookDelta)
        r.apply(ev)
        if max(r.bids) >= min(r.asks):
            r.crossed += 1
        if ev.ts >= next_sample:
            r.sample()
            next_sample = ev.ts + every_ns
    return r


def annual_vol(mids: list[float], samples: int, sample_s: float) -> float:
    """Annualised volatility of log mid returns over ``samples`` sampling intervals."""
    m = np.asarray(mids[::samples])
    return float(np.diff(np.log(m)).std() * math.sqrt(SECONDS_PER_YEAR / (samples * sample_s)))


def sample_seconds(price: Decimal) -> float:
    # The calibrated clock runs (price/150)² faster for a dearer stock; sampling as often keeps the
    # same number of orders between samples, so every price gets equally many samples.
    return float((Decimal(150) / price) ** 2)


@pytest.fixture(scope="module", params=["150.00", "450.00"])
def long_run(request: pytest.FixtureRequest) -> tuple[SyntheticMarket, Replay, list[Event]]:
    price = Decimal(request.param)
    m = SyntheticMarket(us_equity("TEST"), seed=11, params=SyntheticParams(initial_price=price))
    snap = m.snapshot()
    events = m.step(250_000)
    return m, replay(events, snap, every_ns=round(sample_seconds(price) * 1e9)), events


def test_spread_is_one_tick_most_of_the_time(long_run: tuple[SyntheticMarket, Replay, list[Event]]) -> None:
    _, r, _ = long_run
    spreads = np.asarray(r.spreads)
    assert len(spreads) > 500
    assert spreads.min() >= 1
    assert np.mean(spreads == 1) > 0.70
    assert np.mean(spreads > 3) < 0.03


def test_top_five_levels_hold_hundreds_to_thousands_of_shares(
    long_run: tuple[SyntheticMarket, Replay, list[Event]],
) -> None:
    _, r, _ = long_run
    for depth in (r.top5_bid, r.top5_ask):
        assert 1_000 <= np.median(depth) <= 4_000
        assert np.percentile(depth, 5) >= 300
        assert np.percentile(depth, 95) <= 8_000
    assert 200 <= np.median(r.touch) <= 1_000


def test_realised_volatility_is_a_large_caps(long_run: tuple[SyntheticMarket, Replay, list[Event]]) -> None:
    m, r, _ = long_run
    vol = annual_vol(r.mids, 10, sample_seconds(m.params.initial_price))
    assert 0.10 <= vol <= 0.40, vol
    assert abs(vol - m.params.annual_volatility) < 0.06
    # A dearer stock runs a faster clock to move the same percentage.
    assert 20 <= m.events_per_second <= 5_000


def test_book_is_never_crossed_and_trades_sweep_the_touch(
    long_run: tuple[SyntheticMarket, Replay, list[Event]],
) -> None:
    _, r, events = long_run
    assert r.crossed == 0
    assert r.trades > 1_000
    last_ts = 0
    for ev in events:
        assert ev.ts >= last_ts
        last_ts = ev.ts
    trades = [e for e in events if isinstance(e, Trade)]
    assert {t.aggressor for t in trades} == {Side.BUY, Side.SELL}
    assert all(t.size > 0 for t in trades)
    ids = [t.trade_id for t in trades]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_snapshot_plus_deltas_rebuild_the_generators_own_book() -> None:
    m = SyntheticMarket("AAPL", seed=5)
    snap = m.snapshot()
    events = m.step(60_000)
    r = Replay()
    r.snapshot(snap)
    for ev in events:
        if isinstance(ev, BookDelta):
            r.apply(ev)
    bids, asks = m.book()
    assert sorted(r.bids.items(), reverse=True) == bids
    assert sorted(r.asks.items()) == asks
    assert bids[0][0] < asks[0][0]
    seqs = [snap.seq] + [e.seq for e in events]  # type: ignore[attr-defined]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_iteration_starts_with_a_snapshot_and_is_one_shot() -> None:
    m = SyntheticMarket("IBM", seed=2)
    it = iter(m)
    first = next(it)
    assert isinstance(first, BookSnapshot) and first.ts == m.params.start_ts and first.seq == 1
    rest = list(itertools.islice(it, 20_000))
    assert all(isinstance(e, BookDelta | Trade) for e in rest)
    assert rest[0].ts >= first.ts
    with pytest.raises(RuntimeError, match="iterated once"):
        next(iter(m))


def _stream(symbol: str, seed: int, n: int = 30_000) -> list[bytes]:
    return [encode(e) for e in itertools.islice(synthetic_events(symbol, seed), n)]


def test_same_seed_and_symbol_give_identical_bytes_other_symbol_or_seed_differ() -> None:
    a = _stream("MSFT", 42)
    assert a == _stream("MSFT", 42)
    assert a != _stream("MSFT", 43)
    assert a != _stream("MSFX", 42)
    assert len(a) == 30_000


def test_chunking_does_not_change_the_stream() -> None:
    one = SyntheticMarket("XOM", seed=9)
    two = SyntheticMarket("XOM", seed=9)
    whole = one.step(40_000)
    parts = two.step(12_345) + two.step(7) + two.step(27_648)
    assert [encode(e) for e in whole] == [encode(e) for e in parts]
    assert one.book() == two.book()


def test_fixed_clock_and_parameter_validation() -> None:
    m = SyntheticMarket("GE", seed=3, params=SyntheticParams(events_per_second=50.0))
    assert m.events_per_second == pytest.approx(50.0)
    events = m.step(5_000)
    span_s = (events[-1].ts - events[0].ts) / 1e9
    assert 70 <= span_s <= 130  # 5,000 orders at 50 a second
    with pytest.raises(ValueError, match="market_rate"):
        SyntheticParams(market_rate=0.0)
    with pytest.raises(ValueError, match="max_distance"):
        SyntheticParams(max_distance=400)
    with pytest.raises(ValueError, match="burn_in"):
        SyntheticParams(burn_in=10)
    with pytest.raises(ValueError, match="initial_price"):
        SyntheticParams(initial_price=Decimal("-1"))
    with pytest.raises(ValueError, match="non-negative"):
        m.step(-1)
