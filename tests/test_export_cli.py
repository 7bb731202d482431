"""Book export (`vtrade book` / read_book), the terminal demo, and the CLI's error handling."""

from __future__ import annotations

import gzip
import io
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from vtrade.cli import main
from vtrade.market import export
from vtrade.market.export import read_book
from vtrade.ui.terminal import run_demo

DATA = Path(__file__).resolve().parent.parent / "data/crypto"
USDM = DATA / "hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"
SPOT = DATA / "hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz"


def test_read_book_is_exact_and_matches_the_feed_row_count() -> None:
    df = read_book(SPOT, levels=3)
    assert list(df.columns[:6]) == ["ts", "seq", "bid_px_1", "bid_sz_1", "ask_px_1", "ask_sz_1"]
    assert len(df.columns) == 2 + 4 * 3
    assert df.seq.is_monotonic_increasing
    first = df.iloc[0]
    assert first.bid_px_1 == Decimal("61837.63") and first.ask_px_1 == Decimal("61837.64")
    assert isinstance(first.bid_sz_1, Decimal)
    assert (df.bid_px_1 < df.ask_px_1).all()


def test_cli_book_writes_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "book.parquet"
    assert main(["book", str(USDM), "--levels", "5", "--out", str(out), "--quiet"]) == 0
    table = pq.read_table(out)
    assert table.num_rows == 6548  # one row per applied diff + the snapshot
    assert table.schema.field("bid_px_5").type.scale == 1
    assert "6,548 book updates" in capsys.readouterr().out
    assert not (tmp_path / "book.parquet.partial").exists()


def test_cli_errors_leave_nothing_behind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = USDM.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "book.parquet"
    assert main(["book", str(cut), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "truncated or corrupt gzip" in err and str(cut) in err
    assert list(tmp_path.iterdir()) == [cut]  # no book.parquet, no .partial

    odd = tmp_path / "odd.txt"
    odd.write_text("hello\n")
    assert main(["book", str(odd), "--out", str(out), "--quiet"]) == 2
    assert "unrecognised format" in capsys.readouterr().err
    assert main(["book", str(USDM), "--format", "bogus", "--out", str(out), "--quiet"]) == 2
    assert "unknown format 'bogus'" in capsys.readouterr().err
    assert main(["book", str(USDM), "--levels", "0", "--out", str(out)]) == 2
    assert not out.exists()


def test_export_streams_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "_CHUNK_EVENTS", 1000)
    chunked = read_book(USDM, levels=2)
    monkeypatch.setattr(export, "_CHUNK_EVENTS", 1 << 20)
    whole = read_book(USDM, levels=2)
    pd.testing.assert_frame_equal(chunked, whole)


def test_demo_replays_and_summarises(tmp_path: Path) -> None:
    short = tmp_path / "short.jsonl.gz"
    with gzip.open(USDM, "rt") as fin, gzip.open(short, "wt") as fout:
        for _, line in zip(range(5000), fin, strict=False):
            fout.write(line)
    buf = io.StringIO()
    stats = run_demo(short, speed=0, levels=5, console=Console(file=buf, width=120))
    text = buf.getvalue()
    assert "replay summary: BTCUSDT" in text and "sequence gaps / crossed books" in text
    assert stats.events > 4000 and stats.trades > 0 and stats.book_updates > 0
    assert "61" in text  # prices on the ladder


def test_lobster_export_reproduces_the_orderbook_file() -> None:
    fixtures = Path(__file__).resolve().parent / "fixtures/lobster"
    msg = fixtures / "AAPL_2012-06-21_34200000_57600000_message_10.first999.csv.gz"
    truth = pd.read_csv(fixtures / "AAPL_2012-06-21_34200000_57600000_orderbook_10.first999.csv.gz", header=None)
    messages = pd.read_csv(fixtures / "AAPL_2012-06-21_34200000_57600000_message_10.first999.csv.gz", header=None)
    df = read_book(msg, levels=10)
    assert df.seq.iloc[0] == 0  # the opening book (row 0 with message 0 undone)
    df = df.iloc[1:]
    # One row per message that changed the visible book; hidden executions, crosses and
    # halts (types 5-7) change nothing, so they have no row.
    skipped = sorted(set(range(1, 1000)) - set(df.seq.tolist()))
    assert skipped == [i + 1 for i in messages.index[messages[1] >= 5]]
    truth = truth.iloc[df.seq.to_numpy() - 1]
    for k in range(10):
        # LOBSTER columns per level: ask_px, ask_sz, bid_px, bid_sz; prices in USD x 10000.
        ask_px = df[f"ask_px_{k + 1}"].astype(float).mul(10000).round().astype("int64")
        bid_px = df[f"bid_px_{k + 1}"].astype(float).mul(10000).round().astype("int64")
        assert (ask_px.to_numpy() == truth[4 * k].to_numpy()).all()
        assert (df[f"ask_sz_{k + 1}"].astype("int64").to_numpy() == truth[4 * k + 1].to_numpy()).all()
        assert (bid_px.to_numpy() == truth[4 * k + 2].to_numpy()).all()
        assert (df[f"bid_sz_{k + 1}"].astype("int64").to_numpy() == truth[4 * k + 3].to_numpy()).all()


ROOT = Path(__file__).resolve().parent.parent / "data"


def test_every_market_data_file_in_data_is_recognised() -> None:
    from vtrade.market.feeds import open_feed

    expected = {
        "crypto/hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz": ("binance", "L2"),
        "intraday/lean_second_quote_bars_SPY.csv.gz": ("lean-quote-bars", "L1"),
        "intraday/lean_minute_trade_bars.csv.gz": ("lean-trade-bars", "bars"),
        "taq/lean_tick_quotes_IBM_BAC.csv.gz": ("taq-quotes", "L1"),
        "taq/lean_tick_trades_IBM_BAC.csv.gz": ("taq-trades", "trades"),
        "equities_daily/sp500_2018members_daily_2013_2017.csv.gz": ("daily", "bars"),
    }
    for name, (fmt, kind) in expected.items():
        feed = open_feed(ROOT / name)
        assert (feed.format, feed.book_kind) == (fmt, kind), name


def test_nbbo_export_keeps_real_crossed_consolidated_quotes() -> None:
    df = read_book(ROOT / "taq/lean_tick_quotes_IBM_BAC.csv.gz", levels=1, symbol="IBM")
    assert len(df) > 50_000
    both = df.bid_px_1.notna() & df.ask_px_1.notna()
    crossed = (df.bid_px_1 > df.ask_px_1) & both
    assert 0 < crossed.sum() < 0.01 * both.sum()  # rare, pre-market, and real: kept, not an error


def test_quote_bar_export_and_symbol_selection(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    df = read_book(ROOT / "intraday/lean_minute_quote_bars.csv.gz", levels=1, symbol="IBM")
    assert len(df) > 1000 and (df.bid_px_1.dropna() > 100).all()
    out = tmp_path / "b.parquet"
    quotes = str(ROOT / "intraday/lean_minute_quote_bars.csv.gz")
    assert main(["book", quotes, "--out", str(out), "--quiet"]) == 2
    assert "several tickers (SPY, IBM" in capsys.readouterr().err
    assert main(["book", str(ROOT / "intraday/lean_minute_trade_bars.csv.gz"), "--out", str(out), "--quiet"]) == 2
    assert "no book to rebuild" in capsys.readouterr().err
    assert main(["book", str(ROOT / "equities_daily/sp500_2018members_meta.csv"), "--out", str(out), "--quiet"]) == 2
    assert "metadata (names, GICS sectors, date ranges), not a market feed" in capsys.readouterr().err
    assert not out.exists()


def test_warmup_compiles_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["warmup"]) == 0
    assert "compiled kernels are cached" in capsys.readouterr().out
