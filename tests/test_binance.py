"""Binance captures rebuild exactly; gaps, malformed lines and truncation are loud errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from vtrade.core.errors import DataError, SequenceGapError, UnknownFormatError
from vtrade.core.events import BookDelta, BookSnapshot, Quote, Trade
from vtrade.market.feeds import open_feed
from vtrade.market.feeds.binance import BinanceFeed
from vtrade.market.l2book import L2Book, UpdateBatch

DATA = Path(__file__).resolve().parent.parent / "data/crypto"
USDM = DATA / "hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"
SPOT = DATA / "hftbacktest_binance_spot_btcusdt_20240808.jsonl.gz"


@pytest.mark.parametrize(("path", "market", "lines"), [(USDM, "usdm", 93_954), (SPOT, "spot", 41_249)])
def test_capture_rebuilds_with_no_gap_and_no_crossed_book(path: Path, market: str, lines: int) -> None:
    feed = BinanceFeed(path)
    events = list(feed)  # a gap would raise SequenceGapError here
    assert feed.market == market
    assert feed.stats["lines"] == lines
    assert feed.stats["diffs"] == feed.stats["diffs_applied"] + feed.stats["diffs_dropped"]
    assert feed.stats["diffs_applied"] > 1000
    book_events = [e for e in events if isinstance(e, BookSnapshot | BookDelta)]
    assert isinstance(book_events[0], BookSnapshot) and len(book_events[0].bid_px) == 1000
    # Every event checks for crossing; record the top so we can also look at it ourselves.
    top = L2Book("BTCUSDT").apply_batch(UpdateBatch.from_events(book_events), record_depth=1)
    assert (top[:, 0, 0] < top[:, 2, 0]).all()  # best bid < best ask after every update
    assert sum(isinstance(e, Quote) for e in events) == feed.stats["quotes"] > 0
    assert sum(isinstance(e, Trade) for e in events) == feed.stats["trades"] > 0


def _copy_without(src: Path, dst: Path, drop: int) -> int:
    """Copy a capture dropping the ``drop``-th depth diff after the snapshot; returns its line number."""
    seen_snapshot, diffs = False, 0
    with gzip.open(src, "rt") as fin, gzip.open(dst, "wt") as fout:
        for lineno, line in enumerate(fin, 1):
            if "lastUpdateId" in line:
                seen_snapshot = True
            elif seen_snapshot and "depthUpdate" in line:
                diffs += 1
                if diffs == drop:
                    removed = lineno
                    continue
            fout.write(line)
    return removed


@pytest.mark.parametrize("path", [USDM, SPOT])
def test_a_removed_diff_is_a_gap_error_naming_the_next_line(path: Path, tmp_path: Path) -> None:
    broken = tmp_path / path.name
    removed = _copy_without(path, broken, drop=200)
    with pytest.raises(SequenceGapError, match="sequence gap") as info:
        list(BinanceFeed(broken))
    assert info.value.path == str(broken)
    assert info.value.line is not None and info.value.line > removed - 1


def _write(path: Path, lines: list[str]) -> Path:
    path.write_bytes(gzip.compress("".join(line + "\n" for line in lines).encode()))
    return path


def _head(n: int) -> list[str]:
    with gzip.open(USDM, "rt") as fh:
        return [next(fh).rstrip("\n") for _ in range(n)]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not a capture line", "expected '<receive_ts_ns> <json>'"),
        ("1723161255030314667 {\"stream\": oops", "malformed JSON"),
        ('1723161255030314667 {"stream":"btcusdt@kline","data":{"e":"kline"}}', "unknown Binance message"),
        ('1723161255030314667 {"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT"}}', "missing field"),
        (
            '1723161255088176367 {"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":1,"s":"BTCUSDT",'
            '"t":1,"p":"61800.35","q":"0.006","m":false}}',
            "not on the 0.1 grid",
        ),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, bad: str, message: str) -> None:
    path = _write(tmp_path / "cap.jsonl.gz", [*_head(5), bad])
    with pytest.raises(DataError, match=message) as info:
        list(BinanceFeed(path))
    assert info.value.line == 6 and str(path) in str(info.value)


def test_truncated_gzip_names_file_and_line(tmp_path: Path) -> None:
    data = USDM.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match="truncated or corrupt gzip") as info:
        list(BinanceFeed(cut))
    assert info.value.line is not None and info.value.line > 1000


def test_unknown_format_and_unknown_symbol(tmp_path: Path) -> None:
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(UnknownFormatError, match="unrecognised format"):
        open_feed(odd)
    with pytest.raises(UnknownFormatError, match="unknown format 'nasdaq-itch'"):
        open_feed(USDM, format="nasdaq-itch")
    eth = _write(tmp_path / "eth.jsonl.gz", [line.replace("BTCUSDT", "ETHUSDT") for line in _head(3)])
    # An unshipped symbol no longer stops the reader: its grids are inferred from the file
    # (tests/test_instrument_inference.py); these three lines then lack a REST snapshot.
    assert BinanceFeed(eth, market="usdm").resolve_instrument().symbol == "ETHUSDT"
    with pytest.raises(DataError, match="no REST snapshot"):
        list(BinanceFeed(eth, market="usdm"))
