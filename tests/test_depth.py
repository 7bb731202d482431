"""Depth synthesis behind quotes and bars: shape, monotonicity, determinism and calibration."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from vtrade.core.errors import CrossedBookError
from vtrade.core.events import Bar, BookSnapshot, Quote
from vtrade.core.instruments import us_equity
from vtrade.market.depth import (
    DepthParams,
    bar_daily_vol,
    depth_from_bar,
    depth_from_quote,
    depth_shape,
)
from vtrade.market.feeds.daily import load_lean_daily
from vtrade.market.feeds.lean import DATA_DIR, LeanQuoteBars

SPY = us_equity("SPY")
GOOG = us_equity("GOOG")


def quote(symbol: str = "SPY", bid: int = 16812, bid_sz: int = 5500, ask: int = 16813, ask_sz: int = 6000,
          ts: int = 1_381_152_600_000_000_000) -> Quote:
    return Quote(ts=ts, recv_ts=ts, symbol=symbol, seq=7, bid_px=bid, bid_sz=bid_sz, ask_px=ask, ask_sz=ask_sz)


def cumulative(sizes: list[int]) -> np.ndarray:
    return np.cumsum(np.asarray(sizes))


def test_touch_is_the_quote_and_levels_step_away_on_the_grid() -> None:
    q = quote()
    book = depth_from_quote(q, SPY, adv=96_000_000, daily_vol=0.006)
    assert isinstance(book, BookSnapshot)
    assert (book.ts, book.symbol, book.seq) == (q.ts, "SPY", 7)
    assert (book.bid_px[0], book.bid_sz[0], book.ask_px[0], book.ask_sz[0]) == (16812, 5500, 16813, 6000)
    assert len(book.bid_px) == len(book.ask_px) == 10
    assert all(isinstance(p, int) for p in book.bid_px + book.ask_px)
    assert np.all(np.diff(book.bid_px) == -1) and np.all(np.diff(book.ask_px) == 1)  # SPY: every tick
    assert book.bid_px[0] < book.ask_px[0]


def test_cumulative_depth_is_monotone_and_sizes_grow_away_from_the_touch() -> None:
    for symbol, inst, px, adv, vol in (("SPY", SPY, 16812, 96e6, 0.006), ("GOOG", GOOG, 74930, 1.9e6, 0.013)):
        book = depth_from_quote(quote(symbol, px, 100, px + 30, 100), inst, adv=adv, daily_vol=vol)
        for sizes in (book.bid_sz, book.ask_sz):
            assert np.all(np.diff(cumulative(sizes)) > 0)
            behind = sizes[1:]
            assert behind == sorted(behind)
            assert all(s % 100 == 0 and s >= 100 for s in behind)  # whole round lots


def test_more_volume_gives_more_depth_and_more_volatility_less() -> None:
    def per_tick(adv: float, vol: float, price: int = 18000) -> float:
        shape = depth_shape(price, adv=adv, daily_vol=vol)
        return sum(shape.sizes) / (shape.spacing * len(shape.sizes))

    assert per_tick(6_800_000, 0.01) > per_tick(3_400_000, 0.01) > per_tick(3_400_000, 0.02)
    # Large-tick regime (levels at every tick): the queues themselves shrink with volatility.
    calm, wild = depth_shape(1400, adv=80e6, daily_vol=0.009), depth_shape(1400, adv=80e6, daily_vol=0.018)
    assert calm.spacing == wild.spacing == 1 and calm.queue == pytest.approx(4 * wild.queue)
    # Small-tick regime: the queue is about kappa · trade_size, and levels spread out instead.
    goog = depth_shape(74930, adv=1_866_620, daily_vol=0.0129)
    assert goog.queue == pytest.approx(100, rel=0.05)
    # Depth within the same price distance, which is what a sweeping order meets.
    q = quote("IBM", 18000, 200, 18003, 200)
    ibm = us_equity("IBM")

    def within(book: BookSnapshot, ticks: int) -> int:
        return sum(s for p, s in zip(book.bid_px, book.bid_sz, strict=True) if book.bid_px[0] - p <= ticks)

    d_base = within(depth_from_quote(q, ibm, adv=3_400_000, daily_vol=0.01), 20)
    d_busy = within(depth_from_quote(q, ibm, adv=6_800_000, daily_vol=0.01), 20)
    d_wild = within(depth_from_quote(q, ibm, adv=3_400_000, daily_vol=0.03), 20)
    assert d_busy > d_base > d_wild


def test_spacing_scales_with_volatility_and_price() -> None:
    assert depth_shape(16812, adv=96e6, daily_vol=0.006).spacing == 1
    goog = depth_shape(74930, adv=1_866_620, daily_vol=0.0129)
    assert goog.spacing == 10 and goog.spread == 40
    assert depth_shape(74930, adv=1_866_620, daily_vol=0.026).spacing == 20
    book = depth_from_quote(quote("GOOG", 74930, 100, 74966, 100), GOOG, adv=1_866_620, daily_vol=0.0129)
    assert set(np.diff(book.ask_px).tolist()) == {10}


def test_deterministic_and_seeded_noise_is_reproducible() -> None:
    q = quote()
    a = depth_from_quote(q, SPY, adv=96e6, daily_vol=0.006)
    assert a == depth_from_quote(q, SPY, adv=96e6, daily_vol=0.006)
    noisy = DepthParams(size_noise=0.3)
    n1 = depth_from_quote(q, SPY, adv=96e6, daily_vol=0.006, params=noisy, seed=1)
    assert n1 == depth_from_quote(q, SPY, adv=96e6, daily_vol=0.006, params=noisy, seed=1)
    assert n1 != depth_from_quote(q, SPY, adv=96e6, daily_vol=0.006, params=noisy, seed=2)
    assert n1.bid_sz != n1.ask_sz  # each side draws its own noise
    assert n1.bid_sz[0] == 5500 and np.all(np.diff(cumulative(n1.bid_sz)) > 0)
    with pytest.raises(ValueError, match="needs a seed"):
        depth_from_quote(q, SPY, adv=96e6, daily_vol=0.006, params=noisy)


def test_from_a_bar_the_book_sits_around_the_close_at_the_bars_end() -> None:
    bar = Bar(ts=1_381_152_600_000_000_000, recv_ts=0, symbol="IBM", seq=3, interval_ns=60 * 10**9,
              open=18152, high=18180, low=18150, close=18170, volume=9_000)
    ibm = us_equity("IBM")
    book = depth_from_bar(bar, ibm, adv=3_400_000, daily_vol=0.01)
    shape = depth_shape(18170, adv=3_400_000, daily_vol=0.01)
    assert book.ts == bar.ts + bar.interval_ns
    assert book.ask_px[0] - book.bid_px[0] == shape.spread == 6
    assert book.bid_px[0] <= bar.close < book.ask_px[0]
    assert book.bid_sz[0] == book.ask_sz[0] == 100  # q ≈ 52 shares: at least one round lot
    # Without adv/vol the bar supplies them: volume scaled to a session, Parkinson range.
    implied = depth_from_bar(bar, ibm)
    assert implied.bid_sz[0] == implied.ask_sz[0] > 0
    assert bar_daily_vol(bar) == pytest.approx(0.6006 * np.log(18180 / 18150) * np.sqrt(390), rel=1e-3)
    flat = Bar(ts=0, recv_ts=0, symbol="IBM", seq=0, interval_ns=60 * 10**9, open=18150, high=18150,
               low=18150, close=18150, volume=100)
    assert depth_from_bar(flat, ibm).ask_px[0] > depth_from_bar(flat, ibm).bid_px[0]  # vol floor applies


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(CrossedBookError, match="locked or crossed"):
        depth_from_quote(quote(bid=16813, ask=16813), SPY, adv=1e6, daily_vol=0.01)
    with pytest.raises(ValueError, match="neither a bid nor an ask"):
        depth_from_quote(quote(bid=0, bid_sz=0, ask=0, ask_sz=0), SPY, adv=1e6, daily_vol=0.01)
    with pytest.raises(ValueError, match="quote is for SPY"):
        depth_from_quote(quote(), GOOG, adv=1e6, daily_vol=0.01)
    with pytest.raises(ValueError, match="adv"):
        depth_shape(100, adv=0, daily_vol=0.01)
    with pytest.raises(ValueError, match="daily_vol"):
        depth_shape(100, adv=1e6, daily_vol=float("nan"))
    with pytest.raises(ValueError, match="alpha"):
        DepthParams(alpha=-0.1)
    one_sided = depth_from_quote(quote(bid=0, bid_sz=0), SPY, adv=1e6, daily_vol=0.01)
    assert one_sided.bid_px == [] and len(one_sided.ask_px) == 10
    near_zero = depth_from_quote(quote(bid=3, bid_sz=100, ask=4, ask_sz=100), SPY, adv=1e6, daily_vol=0.01)
    assert min(near_zero.bid_px) > 0 and len(near_zero.bid_px) == 3


@pytest.mark.parametrize(("ticker", "day"), [("SPY", "2013-10-07"), ("IBM", "2013-10-08"), ("GOOG", "2015-12-28"),
                                             ("AIG", "2013-10-09")])
def test_calibration_against_real_touch_sizes_and_spreads(ticker: str, day: str) -> None:
    """The documented calibration holds: model queue within 4x of the real median touch, and the
    bar spread rule within 2x of the real median spread where it is not one tick."""
    lean = load_lean_daily(tickers=ticker, end=day)
    hist = lean.adjusted[lean.adjusted["date"] < pd.Timestamp(day)].tail(21)
    vol = float(np.diff(np.log(hist["close"].to_numpy())).std(ddof=1))
    adv = float(lean.raw[lean.raw["date"] < pd.Timestamp(day)].tail(20)["volume"].mean())
    bars = LeanQuoteBars(DATA_DIR / "intraday/lean_minute_quote_bars.csv.gz", tickers=ticker, start=day, end=day)
    frame = bars.to_frame()
    minutes = frame["time"].dt.hour * 60 + frame["time"].dt.minute
    rth = frame[(minutes >= 600) & (minutes < 930)]
    touch = float(np.median(np.r_[rth["bid_size"].to_numpy(), rth["ask_size"].to_numpy()]))
    spread = float(np.median(np.rint((rth["ask_close"] - rth["bid_close"]).to_numpy() * 100)))
    mid_ticks = round(float(((rth["bid_close"] + rth["ask_close"]) / 2).median()) * 100)
    shape = depth_shape(mid_ticks, adv=adv, daily_vol=vol)
    assert touch / 4 <= shape.queue <= touch * 4, (shape.queue, touch)
    if spread > 1:
        assert spread / 2 <= shape.spread <= spread * 2, (shape.spread, spread)
    else:
        assert shape.spread == 1


def test_books_from_a_quote_stream_are_valid_snapshots() -> None:
    bars = LeanQuoteBars(DATA_DIR / "intraday/lean_minute_quote_bars.csv.gz", tickers="IBM", start="2013-10-07",
                         end="2013-10-07", quotes=True)
    ibm = us_equity("IBM")
    n = 0
    for ev in itertools.islice((e for e in bars if isinstance(e, Quote)), 400):
        if ev.bid_px >= ev.ask_px:
            continue
        book = depth_from_quote(ev, ibm, adv=3_408_034, daily_vol=0.0099)
        assert book.bid_px == sorted(book.bid_px, reverse=True) and book.ask_px == sorted(book.ask_px)
        assert book.bid_px[0] == ev.bid_px and book.ask_sz[0] == ev.ask_sz
        n += 1
    assert n > 350
