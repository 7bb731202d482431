"""Bar, quote-tick and daily feeds: real files in data/ and hand-written bad fixtures."""

from __future__ import annotations

import gzip
import itertools
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vtrade.core.errors import DataError
from vtrade.core.events import Bar, Quote, QuoteBar, Trade, decode, encode
from vtrade.core.instruments import us_equity
from vtrade.market.feeds.daily import (
    DAILY_BAR_NS,
    DAILY_TICK,
    EQUITIES_DIR,
    ETF_FILE,
    SP500_FILE,
    daily_bars,
    load_lean_daily,
    load_universe,
    read_daily,
)
from vtrade.market.feeds.lean import (
    DATA_DIR,
    MINUTE_NS,
    NEW_YORK,
    QUOTE_BAR_COLUMNS,
    SECOND_NS,
    TRADE_BAR_COLUMNS,
    LeanQuoteBars,
    LeanTradeBars,
    ny_local_to_utc_ns,
)
from vtrade.market.feeds.taq import QUOTE_COLUMNS, TRADE_COLUMNS, TaqNbbo, TaqTrades

INTRADAY = DATA_DIR / "intraday"
TAQ = DATA_DIR / "taq"
MINUTE_TRADES = INTRADAY / "lean_minute_trade_bars.csv.gz"
MINUTE_QUOTES = INTRADAY / "lean_minute_quote_bars.csv.gz"
SECOND_TRADES = INTRADAY / "lean_second_trade_bars_SPY.csv.gz"
SECOND_QUOTES = INTRADAY / "lean_second_quote_bars_SPY.csv.gz"
TICK_QUOTES = TAQ / "lean_tick_quotes_IBM_BAC.csv.gz"
TICK_TRADES = TAQ / "lean_tick_trades_IBM_BAC.csv.gz"

OPEN_2013_10_07 = 1_381_152_600 * 10**9  # 09:30 New York (EDT) in UTC ns


def write(tmp_path: Path, name: str, header: tuple[str, ...], rows: list[str], *, gz: bool = False) -> Path:
    text = ",".join(header) + "\n" + "".join(r + "\n" for r in rows)
    path = tmp_path / name
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def bar_row(ticker: str = "SPY", day: str = "2013-10-07", ms: int = 34_200_000, o: str = "167.6500",
            h: str = "167.7000", lo: str = "167.6000", c: str = "167.6800", v: str = "1200") -> str:
    return f"{ticker},{day},09:30:00.000,{ms},{o},{h},{lo},{c},{v}"


def located(exc: pytest.ExceptionInfo[DataError], path: Path, line: int | None) -> bool:
    where = f"{path}:{line}" if line is not None else str(path)
    return str(exc.value).startswith(where + ":") and exc.value.line == line


# ------------------------------------------------------------------------------------------
# Time
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("day", ["2013-03-10", "2013-11-03", "2013-10-07", "2013-12-02", "2024-03-10"])
def test_new_york_time_matches_zoneinfo_including_dst_switch_days(day: str) -> None:
    d = date.fromisoformat(day)
    for minutes in (0, 59, 60 * 3 + 1, 9 * 60 + 30, 16 * 60, 23 * 60 + 59):
        ms = minutes * 60_000 + 123
        local = datetime(d.year, d.month, d.day, minutes // 60, minutes % 60, 0, 123_000, tzinfo=NEW_YORK)
        expected = (int(local.timestamp()) * 1000 + 123) * 10**6
        assert ny_local_to_utc_ns(d, ms) == expected, (day, minutes)


def test_vectorised_timestamps_on_a_dst_switch_day_agree_with_the_scalar_rule(tmp_path: Path) -> None:
    # 2013-11-03: 01:30 happens twice; the reader resolves each row with the zone rules.
    rows = [bar_row(day="2013-11-03", ms=ms) for ms in (0, 5_400_000, 10_800_000, 61_200_000)]
    path = write(tmp_path, "dst.csv", TRADE_BAR_COLUMNS, rows)
    got = [b.ts for b in LeanTradeBars(path, interval="minute")]
    assert got == [ny_local_to_utc_ns(date(2013, 11, 3), ms) for ms in (0, 5_400_000, 10_800_000, 61_200_000)]
    assert got[2] - got[1] == 9_000 * 10**9  # 01:30 EDT → 03:00 EST: 1.5 h on the wall, 2.5 h real


# ------------------------------------------------------------------------------------------
# Lean bars on the real files
# ------------------------------------------------------------------------------------------


def test_minute_trade_bars_real_file_exact_ticks_and_utc_times() -> None:
    bars = LeanTradeBars(MINUTE_TRADES, tickers="IBM", start="2013-10-07", end="2013-10-07")
    assert bars.interval_ns == MINUTE_NS
    events = list(bars)
    assert len(events) == 453
    first = events[0]
    assert isinstance(first, Bar)
    assert (first.symbol, first.open, first.high, first.low, first.close, first.volume) == (
        "IBM", 18152, 18180, 18152, 18180, 1283)
    assert first.ts == ny_local_to_utc_ns(date(2013, 10, 7), 4 * 3_600_000)
    opening = [b for b in events if b.ts == OPEN_2013_10_07]
    assert len(opening) == 1 and opening[0].interval_ns == MINUTE_NS
    assert all(b.ts < a.ts for b, a in itertools.pairwise(events))
    assert decode(encode(first)) == first


def test_sub_penny_prints_are_rejected_on_the_cent_grid_and_read_on_a_finer_one() -> None:
    with pytest.raises(DataError) as exc:
        list(LeanTradeBars(MINUTE_TRADES, tickers="SPY", start="2023-08-03"))
    assert located(exc, MINUTE_TRADES, 5091)
    assert "'448.8190'" in str(exc.value) and "0.01 grid" in str(exc.value)
    fine = us_equity("SPY", tick_size="0.0001")
    bars = list(LeanTradeBars(MINUTE_TRADES, start="2023-08-03", instruments=fine))
    assert len(bars) == 947
    assert {b.symbol for b in bars} == {"SPY"}
    assert any(b.close == 4490710 for b in bars)  # 449.0710


def test_second_bars_infer_their_interval_and_to_frame_matches_the_events() -> None:
    reader = LeanTradeBars(SECOND_TRADES, start="2013-10-08", end="2013-10-08")
    assert reader.interval_ns == SECOND_NS
    events = list(reader)
    frame = reader.to_frame()
    assert len(events) == len(frame) == 22_383
    assert frame["ts"].tolist() == [b.ts for b in events]
    assert np.allclose(frame["close"].to_numpy(), [b.close / 100 for b in events])
    assert str(frame["time"].dt.tz) == "America/New_York"
    assert frame["time"].iloc[0].hour == 4


def test_quote_bars_with_closing_quotes_stay_in_time_order() -> None:
    reader = LeanQuoteBars(MINUTE_QUOTES, tickers="GOOG", quotes=True)
    events = list(reader)
    bars = [e for e in events if isinstance(e, QuoteBar)]
    quotes = [e for e in events if isinstance(e, Quote)]
    assert len(bars) == len(quotes) == 740
    for bar, quote in zip(events[0::2], events[1::2], strict=True):
        assert isinstance(bar, QuoteBar) and isinstance(quote, Quote)
        assert quote.ts == bar.ts + MINUTE_NS
        assert (quote.bid_px, quote.bid_sz, quote.ask_px, quote.ask_sz) == (
            bar.bid_close, bar.bid_size, bar.ask_close, bar.ask_size)
        assert bar.bid_low <= bar.bid_close <= bar.bid_high
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(events))
    assert {b.symbol for b in bars} == {"GOOG"}


def test_second_quote_bars_read_whole_file() -> None:  # its speed: benchmarks/bench_feeds.py
    assert sum(1 for _ in LeanQuoteBars(SECOND_QUOTES)) == 144_886


def test_tickers_and_dates_filter_and_a_missing_ticker_is_named() -> None:
    bars = list(LeanTradeBars(MINUTE_TRADES, tickers=["AIG", "BAC"], start="2013-10-10", end="2013-10-11"))
    assert {b.symbol for b in bars} == {"AIG", "BAC"}
    days = {datetime.fromtimestamp(b.ts / 1e9, tz=UTC).astimezone(NEW_YORK).date() for b in bars}
    assert days == {date(2013, 10, 10), date(2013, 10, 11)}
    with pytest.raises(DataError, match=r"\['XYZ'\] not in the file"):
        list(LeanTradeBars(MINUTE_TRADES, tickers=["SPY", "XYZ"], end="2013-10-04"))
    with pytest.raises(ValueError, match=r"start .* is after end"):
        LeanTradeBars(MINUTE_TRADES, start="2013-10-11", end="2013-10-04")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        LeanTradeBars(MINUTE_TRADES, start="10/04/2013")


# ------------------------------------------------------------------------------------------
# Lean bars: bad input names file and line
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "line", "message"),
    [
        (bar_row(o="16x.65"), 3, "open '16x.65' of SPY is not a non-negative decimal"),
        (bar_row(o="167.655"), 3, "open '167.655' of SPY is not on the 0.01 grid"),
        (bar_row(o="-167.65"), 3, "is not a non-negative decimal"),
        (bar_row(v="12.5"), 3, "volume '12.5' of SPY is not on the 1 grid"),
        (bar_row(day="2013-02-30"), 3, "date '2013-02-30' is not a YYYY-MM-DD date"),
        (bar_row(ms=34_200_500), 3, "not on the 60000 ms interval grid"),
        (bar_row(ms=34_140_000), 3, "time goes backwards or repeats (previous row at line 2)"),
        (bar_row(h="167.6000", lo="167.7000"), 3, "low/high do not bracket open and close"),
        (bar_row() + ",7", 3, "Expected 9 columns, got 10"),
        ("SPY,2013-10-07,09:31:00.000,34260000,167.65", 3, "Expected 9 columns, got 5"),
    ],
)
def test_bad_trade_bar_rows_raise_data_error_at_their_line(tmp_path: Path, row: str, line: int, message: str) -> None:
    path = write(tmp_path, "bars.csv", TRADE_BAR_COLUMNS, [bar_row(ms=34_200_000 - 60_000), row])
    with pytest.raises(DataError) as exc:
        list(LeanTradeBars(path, interval="minute"))
    assert located(exc, path, line), str(exc.value)
    assert message in str(exc.value)


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text(",".join(TRADE_BAR_COLUMNS) + "\n" + bar_row() + "\n\n" + bar_row(ms=34_260_000, o="1.001") + "\n")
    with pytest.raises(DataError) as exc:
        list(LeanTradeBars(path, interval="minute"))
    assert located(exc, path, 4)


def test_truncated_gzip_is_a_data_error_not_an_eof(tmp_path: Path) -> None:
    rows = [bar_row(ms=14_400_000 + 1_000 * i) for i in range(20_000)]  # all within one day
    full = write(tmp_path, "full.csv.gz", TRADE_BAR_COLUMNS, rows, gz=True)
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
    with pytest.raises(DataError, match="truncated or corrupt gzip") as exc:
        list(LeanTradeBars(cut, interval="second"))
    assert exc.value.path == str(cut) and exc.value.line is not None and exc.value.line > 1


def test_wrong_header_missing_file_and_uninferable_interval(tmp_path: Path) -> None:
    path = write(tmp_path, "q.csv", QUOTE_BAR_COLUMNS, [])
    with pytest.raises(DataError) as exc:
        LeanTradeBars(path, interval="minute").to_frame()
    assert located(exc, path, 1) and "unexpected header" in str(exc.value)
    with pytest.raises(DataError, match="no such file"):
        list(LeanTradeBars(tmp_path / "absent.csv", interval="minute"))
    odd = write(tmp_path, "odd.csv", TRADE_BAR_COLUMNS, [bar_row(ms=34_200_250)])
    with pytest.raises(DataError, match="cannot infer the bar interval"):
        LeanTradeBars(odd)


def test_quote_bar_side_without_a_quote_is_zero_and_partial_side_is_an_error(tmp_path: Path) -> None:
    good = "SPY,2013-10-07,09:30:00.000,34200000,,,,,,167.70,167.80,167.60,167.65,300"
    bad = "SPY,2013-10-07,09:31:00.000,34260000,167.60,,167.50,167.55,200,167.70,167.80,167.60,167.65,300"
    path = write(tmp_path, "qb.csv", QUOTE_BAR_COLUMNS, [good])
    (bar,) = list(LeanQuoteBars(path, interval="minute"))
    assert isinstance(bar, QuoteBar)
    assert (bar.bid_close, bar.bid_size, bar.ask_close, bar.ask_size) == (0, 0, 16765, 300)
    path = write(tmp_path, "qb2.csv", QUOTE_BAR_COLUMNS, [good, bad])
    with pytest.raises(DataError) as exc:
        list(LeanQuoteBars(path, interval="minute"))
    assert located(exc, path, 3) and "bid side is partly empty" in str(exc.value)


# ------------------------------------------------------------------------------------------
# TAQ
# ------------------------------------------------------------------------------------------


def test_nbbo_reproduces_leans_own_minute_quote_bars() -> None:
    nbbo = TaqNbbo(TICK_QUOTES, tickers="IBM", start="2013-10-07", end="2013-10-07")
    frame = nbbo.to_frame()
    bars = LeanQuoteBars(MINUTE_QUOTES, tickers="IBM", start="2013-10-07", end="2013-10-07").to_frame()
    at = np.searchsorted(frame["ts"].to_numpy(), bars["ts"].to_numpy() + MINUTE_NS, side="left") - 1
    last = frame.iloc[at].reset_index(drop=True)
    assert len(bars) == 554
    assert (last["bid"].to_numpy() == bars["bid_close"].to_numpy()).all()
    assert (last["ask"].to_numpy() == bars["ask_close"].to_numpy()).all()
    assert (last["bid_size"].to_numpy() == bars["bid_size"].to_numpy()).all()
    assert (last["ask_size"].to_numpy() == bars["ask_size"].to_numpy()).all()
    st = nbbo.stats
    assert st.rows == 109_067 and st.skipped_suspicious == 1 and st.quotes == len(frame)
    assert 0 < st.locked < st.quotes // 50 and st.crossed < st.quotes // 500
    assert {"N", "Q", "P"} <= st.exchanges


def test_whole_quote_file_streams_in_time_order() -> None:  # its speed: benchmarks/bench_feeds.py
    nbbo = TaqNbbo(TICK_QUOTES)
    last: dict[str, int] = {}
    n = 0
    for q in nbbo:
        assert q.ts >= last.get(q.symbol, 0)
        last[q.symbol] = q.ts
        n += 1
    assert nbbo.stats.rows == 1_052_444 and nbbo.stats.quotes == n
    assert nbbo.stats.skipped_suspicious == 3
    assert set(nbbo.stats_by_symbol) == {"IBM", "BAC"}


def test_keep_suspicious_uses_the_flagged_rows() -> None:
    skip = TaqNbbo(TICK_QUOTES, tickers="IBM", end="2013-10-07")
    keep = TaqNbbo(TICK_QUOTES, tickers="IBM", end="2013-10-07", keep_suspicious=True)
    a, b = list(skip), list(keep)
    assert skip.stats.skipped_suspicious == 1 and keep.stats.skipped_suspicious == 0
    assert a != b


Q = "IBM,2013-10-07,09:30:00.{ms:03d},{total},{bp},{bs},{ap},{az},{ex},1,0"


def qrow(ms: int, bp: str = "0", bs: int = 0, ap: str = "0", az: int = 0, ex: str = "N",
         day: str = "2013-10-07") -> str:
    return Q.format(ms=ms, total=34_200_000 + ms, bp=bp, bs=bs, ap=ap, az=az, ex=ex).replace("2013-10-07", day)


def test_per_exchange_consolidation_sums_sizes_at_the_best_price(tmp_path: Path) -> None:
    rows = [
        qrow(1, bp="182.00", bs=100, ex="N"),
        qrow(1, ap="182.10", az=200, ex="N"),  # same ms as the bid: one quote for both
        qrow(2, bp="182.00", bs=300, ex="P"),  # joins the best bid: sizes add up
        qrow(3, bp="182.01", bs=100, ex="Q"),  # improves the bid
        qrow(4, bp="181.90", bs=500, ex="Q"),  # Q backs off: best returns to 182.00 (N + P)
        qrow(5, bp="182.00", bs=0, ex="P"),  # P withdraws its bid (price with size 0)
        qrow(6, ap="182.05", az=100, ex="K"),
        qrow(7, ap="182.05", az=100, ex="K"),  # no change: no quote
        qrow(1, bp="183.00", bs=100, ex="Z", day="2013-10-08"),  # a new day starts empty
    ]
    path = write(tmp_path, "q.csv", QUOTE_COLUMNS, rows)
    reader = TaqNbbo(path, method="per_exchange")
    got = [(q.bid_px, q.bid_sz, q.ask_px, q.ask_sz) for q in reader]
    assert got == [
        (18200, 100, 18210, 200),
        (18200, 400, 18210, 200),
        (18201, 100, 18210, 200),
        (18200, 400, 18210, 200),
        (18200, 100, 18210, 200),
        (18200, 100, 18205, 100),
        (18300, 100, 0, 0),
    ]
    assert reader.stats.quotes == 7 and reader.stats.locked == reader.stats.crossed == 0


def test_latest_consolidation_and_locked_crossed_counts(tmp_path: Path) -> None:
    rows = [
        qrow(1, bp="182.00", bs=100, ex="N"),
        qrow(1, ap="182.02", az=200, ex="P"),
        qrow(2, bp="182.02", bs=300, ex="Q"),  # locked
        qrow(3, bp="182.03", bs=300, ex="Q"),  # crossed
        qrow(4, ap="182.05", az=100, ex="K"),
    ]
    path = write(tmp_path, "q.csv", QUOTE_COLUMNS, rows, gz=True)
    reader = TaqNbbo(path)
    got = [(q.ts, q.bid_px, q.bid_sz, q.ask_px, q.ask_sz) for q in reader]
    base = ny_local_to_utc_ns(date(2013, 10, 7), 34_200_000)
    assert got == [
        (base + 1_000_000, 18200, 100, 18202, 200),
        (base + 2_000_000, 18202, 300, 18202, 200),
        (base + 3_000_000, 18203, 300, 18202, 200),
        (base + 4_000_000, 18203, 300, 18205, 100),
    ]
    assert (reader.stats.locked, reader.stats.crossed) == (1, 1)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (qrow(2, bp="0", bs=100), "a size is quoted at price 0"),
        (qrow(2), "the row updates neither side"),
        (qrow(2, bp="182.001", bs=100), "bid_price '182.001' of IBM is not on the 0.01 grid"),
        (qrow(2, bp="182.00", bs=100).replace(",1,0", ",1,2"), "suspicious must be 0 or 1"),
        (qrow(2, bp="182.00", bs=100, ex=""), "empty exchange code"),
        (qrow(0, bp="182.00", bs=100).replace("34200000", "34199999"), "time goes backwards"),
    ],
)
def test_bad_quote_ticks_name_their_line(tmp_path: Path, row: str, message: str) -> None:
    path = write(tmp_path, "q.csv", QUOTE_COLUMNS, [qrow(1, bp="182.00", bs=100), row])
    with pytest.raises(DataError) as exc:
        list(TaqNbbo(path))
    assert located(exc, path, 3), str(exc.value)
    assert message in str(exc.value)


def test_trades_reader_real_file() -> None:
    reader = TaqTrades(TICK_TRADES, tickers="BAC")
    trades = list(reader)
    assert len(trades) == 88_172
    first = trades[0]
    assert isinstance(first, Trade)
    assert (first.symbol, first.price, first.size, first.aggressor) == ("BAC", 1394, 500, None)
    frame = reader.to_frame()
    assert len(frame) == len(trades)
    assert set(frame["exchange"]) >= {"N", "D", "P"}
    assert frame["sale_condition"].iloc[0] == "20002020"
    assert not frame["suspicious"].any()
    assert (frame["price"].to_numpy() == [t.price / 100 for t in trades]).all()


def test_trade_of_size_zero_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", TRADE_COLUMNS, ["IBM,2013-10-07,09:30:00.001,34200001,182.00,0,N,1,0"])
    with pytest.raises(DataError) as exc:
        list(TaqTrades(path))
    assert located(exc, path, 2) and "trade of size 0" in str(exc.value)


# ------------------------------------------------------------------------------------------
# Daily universe
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def universe() -> object:
    return load_universe()


def test_universe_instruments_sectors_and_tidy_frame(universe: object) -> None:
    from vtrade.market.feeds.daily import DailyUniverse

    assert isinstance(universe, DailyUniverse)
    inst = universe.instruments
    assert len(inst) == 513  # 500 stocks + 13 ETFs
    assert inst["MMM"].sector == "Industrials" and inst["MMM"].name == "3M Company"
    assert inst["T"].sector == "Telecommunication Services"
    assert inst["XLE"].sector == "Energy" and inst["XLE"].asset_class == "etf"
    assert inst["SPY"].sector == "Broad Market"
    assert all(i.tick_size == DAILY_TICK for i in inst.values())
    frame = universe.frame
    assert len(frame) == 600_029 + 43_113
    assert list(frame.columns[:7]) == ["date", "ticker", "open", "high", "low", "close", "volume"]
    assert frame["close"].dtype == np.float64 and frame["volume"].dtype == np.float64
    assert frame["sector"].notna().all()
    assert frame["date"].is_monotonic_increasing
    mmm = frame[(frame["ticker"] == "MMM") & (frame["date"] == pd.Timestamp("2013-01-02"))].iloc[0]
    assert (mmm["open"], mmm["close"], mmm["volume"]) == (83.803, 84.326, 3_604_164.0)


def test_flagged_rows_are_marked_not_dropped(universe: object) -> None:
    frame = universe.frame  # type: ignore[attr-defined]
    flagged = frame[frame["flagged"]]
    assert len(flagged) == 15  # 17 flags on 15 rows
    pxd = flagged[(flagged["ticker"] == "PXD") & (flagged["date"] == pd.Timestamp("2013-08-05"))].iloc[0]
    assert pxd["close"] == 17.968
    assert pxd["flags"] == "abs_close_to_close_move_gt_40pct;ohlc_inconsistent"
    amd = frame[(frame["ticker"] == "AMD") & (frame["date"] == pd.Timestamp("2016-04-22"))].iloc[0]
    assert amd["flagged"] and amd["close"] == 3.99
    assert frame.loc[~frame["flagged"], "flags"].eq("").all()


def test_universe_bars_are_time_ordered_across_tickers(universe: object) -> None:
    keys = []
    first = None
    for i, bar in enumerate(universe.bars()):  # type: ignore[attr-defined]
        if i == 0:
            first = bar
        keys.append((bar.ts, bar.symbol))
        if i >= 5000:
            break
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert first is not None and first.interval_ns == DAILY_BAR_NS
    # The ETF file starts in 1999, long before the stocks: the merge starts with ETFs.
    assert first.symbol == "QQQ" and first.ts == ny_local_to_utc_ns(date(1999, 3, 10), 34_200_000)


def test_universe_selection_and_unknown_tickers() -> None:
    u = load_universe(tickers=["AAPL", "XLK", "PXD"], start="2013-08-01", end="2013-08-09")
    assert set(u.instruments) == {"AAPL", "XLK", "PXD"}
    assert set(u.frame["ticker"]) == {"AAPL", "XLK", "PXD"}
    assert u.frame["flagged"].sum() == 2  # PXD 2013-08-05 and 2013-08-06
    bars = list(u.bars())
    assert len(bars) == len(u.frame) == 21
    assert [b.symbol for b in bars[:3]] == ["AAPL", "PXD", "XLK"]
    with pytest.raises(ValueError, match=r"unknown ticker\(s\) \['NOPE'\]"):
        load_universe(tickers=["AAPL", "NOPE"])
    with pytest.raises(ValueError, match="MISSING_IN_SOURCE"):
        load_universe(tickers=["BKNG"])


DAILY_HEADER = ("date", "ticker", "open", "high", "low", "close", "volume")


def test_daily_prices_must_fit_the_fine_grid_and_rows_be_unique(tmp_path: Path) -> None:
    ok = "2013-01-02,MMM,83.803,84.335,83.597,84.326,3604164"
    path = write(tmp_path, "d.csv", DAILY_HEADER, [ok, "2013-01-03,MMM,83.80301,84.4,83.7,84.2,100"])
    with pytest.raises(DataError) as exc:
        read_daily(path)
    assert located(exc, path, 3) and "'83.80301' is not on the 0.0001 grid" in str(exc.value)
    path = write(tmp_path, "dup.csv", DAILY_HEADER, [ok, "2013-01-03,MMM,1,1,1,1,1", ok])
    with pytest.raises(DataError) as exc:
        read_daily(path)
    assert located(exc, path, 4) and "appears twice (also line 2)" in str(exc.value)
    with pytest.raises(DataError, match=r"\['ZZZ'\] not in the file"):
        read_daily(path, tickers="ZZZ")
    path = write(tmp_path, "cols.csv", DAILY_HEADER, [ok, "2013-01-03,MMM,1,1,1,1"])
    with pytest.raises(DataError) as exc:
        read_daily(path)
    assert located(exc, path, 3) and "Expected 7 columns, got 6" in str(exc.value)


def test_daily_files_merge_by_date() -> None:
    etf = read_daily(EQUITIES_DIR / ETF_FILE, tickers=["SPY", "XLF"], start="2017-11-01")
    stocks = read_daily(EQUITIES_DIR / SP500_FILE, tickers=["JPM", "AAPL"], start="2017-11-01")
    merged = list(daily_bars(etf, stocks))
    assert len(merged) == len(etf) + len(stocks) == 32
    assert [b.symbol for b in merged[:4]] == ["AAPL", "JPM", "SPY", "XLF"]
    assert all((a.ts, a.symbol) < (b.ts, b.symbol) for a, b in itertools.pairwise(merged))


def test_lean_daily_adjustment_follows_the_factor_rule() -> None:
    lean = load_lean_daily(tickers=["AAPL", "AIG"])
    adj = lean.adjusted.set_index(["ticker", "date"])
    raw = lean.raw.set_index(["ticker", "date"])
    # AAPL 7:1 split effective 2014-06-09: raw drops ~86 %, adjusted moves ~+0.3 %.
    before, after = ("AAPL", pd.Timestamp("2014-06-06")), ("AAPL", pd.Timestamp("2014-06-09"))
    r0, r1 = raw.loc[before, "close"], raw.loc[after, "close"]
    a0, a1 = adj.loc[before, "close"], adj.loc[after, "close"]
    assert r1 / r0 < 0.15 and abs(a1 / a0 - 1) < 0.02
    # A bar dated exactly on a factor row uses that row (2014-06-06 → split factor 1/28).
    assert adj.loc[("AAPL", pd.Timestamp("2014-06-06")), "split_factor"] == pytest.approx(0.0357143)
    assert adj.loc[("AAPL", pd.Timestamp("2014-06-09")), "split_factor"] == 0.25
    # The last bars use the far-future row (factor 1): adjusted equals raw.
    last = lean.adjusted[lean.adjusted["ticker"] == "AAPL"].iloc[-1]
    assert last["factor"] == 1.0 and last["close"] == lean.raw[lean.raw["ticker"] == "AAPL"].iloc[-1]["close"]
    # AIG's 1:20 reverse split (2009-07-01): adjusted volume is in today's shares.
    v_raw = raw.loc[("AIG", pd.Timestamp("2009-06-30")), "volume"]
    assert adj.loc[("AIG", pd.Timestamp("2009-06-30")), "volume"] == pytest.approx(v_raw / 20)


def test_lean_daily_needs_factor_coverage(tmp_path: Path) -> None:
    raw = write(tmp_path, "raw.csv", DAILY_HEADER, ["2020-01-02,SPY,300,301,299,300.5,100",
                                                    "2020-01-03,SPY,300,301,299,300.5,100"])
    factors = tmp_path / "f.csv"
    factors.write_text("ticker,date,price_factor,split_factor,reference_price\nSPY,2020-01-02,0.9,1,0\n")
    with pytest.raises(DataError) as exc:
        load_lean_daily(raw, factors)
    assert located(exc, raw, 3) and "after the last factor row" in str(exc.value)
    factors.write_text("ticker,date,price_factor,split_factor,reference_price\nSPY,2020-01-02,-1,1,0\n")
    with pytest.raises(DataError) as exc:
        load_lean_daily(raw, factors)
    assert located(exc, factors, 2) and "positive" in str(exc.value)
