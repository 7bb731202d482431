"""The LOBSTER feed: exact replays of the real samples through the L3 book, and bad input.

The two real samples (tests/fixtures/lobster, see its README) are replayed message by message:
apply the event, apply any reveal, truncate to the file's depth, and the book must equal the
orderbook file's row on every visible level. The expected rows are parsed here, independently
of the feed's own orderbook parser.
"""

from __future__ import annotations

import gzip
import itertools
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from vtrade import cli
from vtrade.core.errors import DataError, OffGridError
from vtrade.core.events import (
    BookDelta,
    BookSnapshot,
    MarketEvent,
    OrderAdded,
    OrderCancelled,
    OrderDeleted,
    OrderExecuted,
    Side,
    Trade,
    TradingStatus,
)
from vtrade.core.instruments import Instrument, us_equity
from vtrade.market.feeds import MessagesOnly, open_feed
from vtrade.market.feeds.lobster import (
    LobsterMessages,
    LobsterOffGridError,
    StaleOrder,
    UnknownOrderRef,
    lobster_files,
    lobster_instrument,
    read_lobster,
)
from vtrade.market.l3book import L3Book

FIXTURES = Path(__file__).parent / "fixtures" / "lobster"
GOOG_STEM = "GOOG_2012-06-21_34200000_57600000"
AAPL_STEM = "AAPL_2012-06-21_34200000_57600000"
GOOG_MSG = FIXTURES / f"{GOOG_STEM}_message_1.csv.gz"
GOOG_BOOK = FIXTURES / f"{GOOG_STEM}_orderbook_1.csv.gz"
AAPL_MSG = FIXTURES / f"{AAPL_STEM}_message_10.first999.csv.gz"
AAPL_BOOK = FIXTURES / f"{AAPL_STEM}_orderbook_10.first999.csv.gz"
# GOOG has 50 hidden executions at the half-cent midpoint (e.g. 577.775), so its replay needs a
# half-cent grid; AAPL's first 999 messages are all on the cent grid of the default instrument.
GOOG_HALF_CENT = us_equity("GOOG", tick_size="0.005")


def read_cents(msg: Path, **kw: Any) -> Iterator[MarketEvent]:
    """Read with a one-cent instrument, the grid the expected values below are written in."""
    return read_lobster(msg, instrument=us_equity(lobster_files(msg).symbol), **kw)
NY = ZoneInfo("America/New_York")

Row = tuple[list[int], list[int], list[int], list[int]]


# ---------------------------------------------------------------------------------- helpers
def expected_rows(path: Path, per_tick: int) -> Iterator[Row]:
    """Orderbook rows as (bid_px, bid_sz, ask_px, ask_sz) in ticks, parsed independently of the feed."""
    with gzip.open(path, "rt") as fh:
        for line in fh:
            v = [int(x) for x in line.split(",")]
            asks = [(p, s) for p, s in zip(v[0::4], v[1::4], strict=True) if s]  # padded levels have size 0
            bids = [(p, s) for p, s in zip(v[2::4], v[3::4], strict=True) if s]
            assert all(p % per_tick == 0 for p, _ in asks + bids), line
            yield (
                [p // per_tick for p, _ in bids],
                [s for _, s in bids],
                [p // per_tick for p, _ in asks],
                [s for _, s in asks],
            )


def visible(book: L3Book, levels: int) -> Row:
    bp, bs = book.levels(Side.BUY, levels)
    ap, az = book.levels(Side.SELL, levels)
    return bp, bs, ap, az


def replay(
    events: Iterator[MarketEvent], rows: Iterator[Row], levels: int, *, use_reveals: bool = True
) -> Counter[str]:
    """Replay the feed through an L3 book, checking every row; returns counts of what happened."""
    stats: Counter[str] = Counter()
    book = L3Book()
    snapshot = next(events)
    assert isinstance(snapshot, BookSnapshot) and snapshot.seq == 0
    book.apply(snapshot)
    prev = visible(book, levels)
    last_ts = snapshot.ts
    for seq, group in itertools.groupby(events, key=lambda e: e.seq):
        message, *rest = list(group)
        assert seq == stats["rows"] + 1, "seq is the 1-based message row"
        assert not isinstance(message, BookDelta | BookSnapshot), f"seq {seq} starts with a reveal"
        assert message.ts >= last_ts
        last_ts = message.ts
        stats[type(message).__name__] += 1
        book.apply(message)
        for reveal in rest:
            assert isinstance(reveal, BookDelta) and len(rest) == 1, f"seq {seq}: one reveal at most"
            assert reveal.ts == message.ts
            stats["reveals"] += 1
            for side, px, prev_px in ((Side.BUY, reveal.bid_px, prev[0]), (Side.SELL, reveal.ask_px, prev[2])):
                for p in px:
                    # Only levels strictly beyond a full previous window, never a patch of one we had.
                    beyond = p < prev_px[-1] if side is Side.BUY else p > prev_px[-1]
                    assert len(prev_px) == levels and beyond, f"seq {seq}: reveal {p} inside {prev_px}"
                    assert book.size_at(side, p) == 0, f"seq {seq}: reveal {p} overwrites a level"
                    stats["revealed_levels"] += 1
            assert all(s > 0 for s in reveal.bid_sz + reveal.ask_sz)
            if use_reveals:
                book.apply(reveal)
        book.truncate(levels)
        row = next(rows)
        got = visible(book, levels)
        assert got == row, f"seq {seq}: book {got} != orderbook row {row}"
        stats["rows"] += 1
        prev = row
    assert next(rows, None) is None, "the feed stopped before the orderbook file"
    return stats


def fixture_lines(path: Path, n: int | None = None) -> list[str]:
    with gzip.open(path, "rt") as fh:
        lines = [line.rstrip("\n") for line in fh]
    return lines if n is None else lines[:n]


def write_pair(
    tmp_path: Path, messages: list[str], rows: list[str], *, stem: str = AAPL_STEM, levels: int = 10
) -> tuple[Path, Path]:
    msg = tmp_path / f"{stem}_message_{levels}.csv"
    book = tmp_path / f"{stem}_orderbook_{levels}.csv"
    msg.write_text("\n".join(messages) + "\n")
    book.write_text("\n".join(rows) + "\n")
    return msg, book


def aapl_pair(n: int = 20) -> tuple[list[str], list[str]]:
    """The first ``n`` lines of the real AAPL message and orderbook files, to corrupt in a test."""
    return fixture_lines(AAPL_MSG, n), fixture_lines(AAPL_BOOK, n)


# ---------------------------------------------------------------------------------- real samples
def test_goog_level1_full_day_reproduces_every_row() -> None:
    stats = replay(read_lobster(GOOG_MSG, instrument=GOOG_HALF_CENT), expected_rows(GOOG_BOOK, 50), 1)
    assert stats["rows"] == 49_482
    assert (stats["OrderAdded"], stats["OrderCancelled"], stats["OrderDeleted"]) == (24_368, 7, 13_429)
    assert (stats["OrderExecuted"], stats["Trade"]) == (7_765, 3_913)
    assert (stats["reveals"], stats["revealed_levels"]) == (11_207, 11_207)


def test_aapl_level10_reproduces_every_row_on_all_levels() -> None:
    stats = replay(read_cents(AAPL_MSG), expected_rows(AAPL_BOOK, 100), 10)
    assert stats["rows"] == 999
    assert (stats["OrderAdded"], stats["OrderDeleted"], stats["OrderExecuted"], stats["Trade"]) == (471, 369, 98, 61)
    assert (stats["reveals"], stats["revealed_levels"]) == (318, 318)


def test_without_reveals_the_depth_limited_replay_diverges() -> None:
    # The reveals are needed: the messages alone cannot know a level that moves up from beyond the window.
    with pytest.raises(AssertionError, match="orderbook row"):
        replay(read_cents(AAPL_MSG), expected_rows(AAPL_BOOK, 100), 10, use_reveals=False)


def test_first_message_undone_gives_the_opening_book() -> None:
    goog = next(read_lobster(GOOG_MSG, instrument=GOOG_HALF_CENT))
    # Row 0 shows 496 bid at 579.40 after message 0 executed 4 of them: 500 rested before.
    assert goog == BookSnapshot(1340285400015105074, 1340285400015105074, "GOOG", 0, [115880], [500], [116046], [100])

    aapl = next(read_cents(AAPL_MSG))
    assert isinstance(aapl, BookSnapshot)
    row0 = next(expected_rows(AAPL_BOOK, 100))
    # Message 0 added the whole 18-lot level at 585.33, so before it the bids start one level lower
    # and only 9 are known: the 10th bid before the add was pushed out of view by it.
    assert (aapl.bid_px, aapl.bid_sz) == (row0[0][1:], row0[1][1:])
    assert (aapl.ask_px, aapl.ask_sz) == (row0[2], row0[3])
    events = read_cents(AAPL_MSG)
    book = L3Book()
    book.apply(next(events))
    first = next(events)
    assert first == OrderAdded(1340285400004241176, 1340285400004241176, "AAPL", 1, 16113575, Side.BUY, 58533, 18)
    book.apply(first)
    assert next(events).seq == 2  # no reveal: the snapshot's 9 bids were not a full window
    assert visible(book, 10) == row0


def test_default_grid_is_half_cent_so_goog_midpoint_prints_read() -> None:
    assert lobster_instrument("GOOG").tick_size == Decimal("0.005")
    prints = [e for e in read_lobster(GOOG_MSG) if isinstance(e, Trade) and e.price % 2]
    assert len(prints) == 50  # half-cent hidden executions, exact on the default grid


def test_a_cent_grid_rejects_half_cent_midpoint_trade() -> None:
    with pytest.raises(LobsterOffGridError) as err:
        for _ in read_lobster(GOOG_MSG, instrument=us_equity("GOOG")):
            pass
    assert isinstance(err.value, DataError) and isinstance(err.value, OffGridError)
    assert (err.value.path, err.value.line) == (str(GOOG_MSG), 862)
    assert "5777750" in str(err.value) and "577.775" in str(err.value) and "tick_size='0.005'" in str(err.value)


def test_hidden_execution_aggressor_is_opposite_of_resting_direction() -> None:
    trades = [
        e for e in itertools.islice(read_lobster(GOOG_MSG, instrument=GOOG_HALF_CENT), 12) if isinstance(e, Trade)
    ]
    # Raw rows 3-5: "34200.113246707,5,0,1,5795100,1" etc: hidden BUY orders hit by a seller.
    assert trades[0] == Trade(1340285400113246707, 1340285400113246707, "GOOG", 3, 115902, 1, Side.SELL)
    assert {t.aggressor for t in trades} == {Side.SELL}


# ---------------------------------------------------------------------------------- event mapping
LEVEL1 = [  # (message, orderbook row after it): consistent, so the L3 book rebuilds each row too
    ("34200.1,1,1,100,1000000,1", "1000100,50,1000000,300"),  # add: 200 were resting before
    ("34200.2,2,1,30,1000000,1", "1000100,50,1000000,270"),  # partial cancel
    ("34200.3,4,7,20,1000000,1", "1000100,50,1000000,250"),  # execution of an order never seen
    ("34200.4,5,0,10,1000100,-1", "1000100,50,1000000,250"),  # hidden sell hit by a buyer
    ("34200.5,6,99,500,1000000,-1", "1000100,50,1000000,250"),  # cross trade
    ("34200.6,7,0,0,-1,-1", "1000100,50,1000000,250"),  # halt
    ("34200.7,7,0,0,0,-1", "1000100,50,1000000,250"),  # quotes resume
    ("34200.8,7,0,0,1,-1", "1000100,50,1000000,250"),  # trading resumes
    ("34200.9,3,1,70,1000000,1", "1000100,50,1000000,180"),  # delete what remains of order 1
]


def test_every_event_type_maps_to_its_event(tmp_path: Path) -> None:
    msg, _ = write_pair(tmp_path, [m for m, _ in LEVEL1], [r for _, r in LEVEL1], stem="XYZ_2012-06-21_0_1", levels=1)
    base = 1340251200 * 10**9 + 34200 * 10**9  # 2012-06-21 09:30 New York (EDT) in UTC ns

    def t(k: int) -> tuple[int, int, str, int]:
        return base + k * 10**8, base + k * 10**8, "XYZ", k

    events = list(read_cents(msg))
    assert events == [
        BookSnapshot(*t(1)[:3], 0, [10000], [200], [10001], [50]),
        OrderAdded(*t(1), 1, Side.BUY, 10000, 100),
        OrderCancelled(*t(2), 1, Side.BUY, 10000, 30),
        OrderExecuted(*t(3), 7, Side.BUY, 10000, 20),
        Trade(*t(4), 10001, 10, Side.BUY),
        Trade(*t(5), 10000, 500, None),
        TradingStatus(*t(6), True, "trading halted"),
        TradingStatus(*t(7), True, "quoting resumed, trading still halted"),
        TradingStatus(*t(8), False, "trading resumed"),
        OrderDeleted(*t(9), 1, Side.BUY, 10000, 70),
    ]
    stats = replay(iter(events), (r for r in expected_rows_text([r for _, r in LEVEL1], 100)), 1)
    assert stats["rows"] == len(LEVEL1)


def expected_rows_text(rows: list[str], per_tick: int) -> Iterator[Row]:
    """Like :func:`expected_rows`, for rows written inline in a test."""
    for line in rows:
        v = [int(x) for x in line.split(",")]
        assert all(p % per_tick == 0 for p in v[0::2] if abs(p) != 9999999999), line
        bids = [(p // per_tick, s) for p, s in zip(v[2::4], v[3::4], strict=True) if s]
        asks = [(p // per_tick, s) for p, s in zip(v[0::4], v[1::4], strict=True) if s]
        yield [p for p, _ in bids], [s for _, s in bids], [p for p, _ in asks], [s for _, s in asks]


LEVEL2 = [
    # add a better bid: the window now ends at 99.99 (99.98 is out of view)
    ("34200.1,1,1,10,1000000,1", "1000100,5,1000000,10,1000200,7,999900,4"),
    # delete it: 99.98 moves up without a message -> revealed
    ("34200.2,3,1,10,1000000,1", "1000100,5,999900,4,1000200,7,999800,6"),
    # the whole best ask (an order never seen) trades: 100.03 moves up -> revealed
    ("34200.3,4,9,5,1000100,-1", "1000200,7,999900,4,1000300,9,999800,6"),
    # a new order joins the ask at 100.02
    ("34200.4,1,2,3,1000200,-1", "1000200,10,999900,4,1000300,9,999800,6"),
    # delete the bid at 99.99 with nothing below it: the side shrinks, padded
    ("34200.5,3,8,4,999900,1", "1000200,10,999800,6,1000300,9,-9999999999,0"),
    # with the bid window not full, a deeper bid is in view and comes from its message alone
    ("34200.6,1,3,2,999000,1", "1000200,10,999800,6,1000300,9,999000,2"),
]


def test_reveals_only_levels_beyond_the_previous_full_window(tmp_path: Path) -> None:
    msg, _ = write_pair(tmp_path, [m for m, _ in LEVEL2], [r for _, r in LEVEL2], stem="XYZ_2012-06-21_0_1", levels=2)
    events = list(read_cents(msg))
    reveals = [e for e in events if isinstance(e, BookDelta)]
    assert [(e.seq, e.bid_px, e.bid_sz, e.ask_px, e.ask_sz) for e in reveals] == [
        (2, [9998], [6], [], []),
        (3, [], [], [10003], [9]),
    ]
    # Before message 0 only one bid is known: the add pushed the unseen 2nd one out of view.
    snap = events[0]
    assert isinstance(snap, BookSnapshot)
    assert (snap.bid_px, snap.bid_sz, snap.ask_px, snap.ask_sz) == ([9999], [4], [10001, 10002], [5, 7])
    assert replay(iter(events), expected_rows_text([r for _, r in LEVEL2], 100), 2)["rows"] == len(LEVEL2)


def test_a_level_inside_the_window_is_never_patched(tmp_path: Path) -> None:
    # Row 4 claims 11 lots at 100.02 where the messages give 10: the feed must not paper over it.
    rows = [r for _, r in LEVEL2]
    rows[3] = rows[3].replace("1000200,10", "1000200,11")
    msg, _ = write_pair(tmp_path, [m for m, _ in LEVEL2], rows, stem="XYZ_2012-06-21_0_1", levels=2)
    events = list(read_cents(msg))
    assert not [e for e in events if isinstance(e, BookDelta) and e.seq == 4]
    with pytest.raises(AssertionError, match="seq 4"):
        replay(iter(events), expected_rows_text(rows, 100), 2)


# ---------------------------------------------------------------------------------- time
@pytest.mark.parametrize(
    ("day", "text", "wall"),
    [
        ("2012-06-21", "34200.004241176", (9, 30, 0, 4241176)),
        ("2012-06-21", "34200.05990197", (9, 30, 0, 59901970)),  # 8 decimals: ns are padded, not rounded
        ("2012-06-21", "57599.999999999", (15, 59, 59, 999999999)),
        ("2012-06-21", "36000.123456789000", (10, 0, 0, 123456789)),  # trailing zeros beyond ns are fine
        ("2012-01-03", "34200", (9, 30, 0, 0)),  # winter: New York is UTC-5
    ],
)
def test_time_is_exact_utc_nanoseconds(tmp_path: Path, day: str, text: str, wall: tuple[int, int, int, int]) -> None:
    msg, _ = write_pair(
        tmp_path, [f"{text},5,0,1,1000000,1"], ["1000100,5,1000000,10"], stem=f"XYZ_{day}_0_1", levels=1
    )
    ev = list(read_cents(msg))[1]
    h, m, s, ns = wall
    y, mo, d = (int(x) for x in day.split("-"))
    # datetime.timestamp() is exact for whole seconds; the nanoseconds are added as integers.
    expected = int(datetime(y, mo, d, h, m, s, tzinfo=NY).timestamp()) * 10**9 + ns
    assert (ev.ts, ev.recv_ts) == (expected, expected)


@pytest.mark.parametrize("text", ["34200.0000000001", "86400.5", "-1.5", "34200.", "3.42e4"])
def test_bad_times_are_data_errors(tmp_path: Path, text: str) -> None:
    msg, _ = write_pair(
        tmp_path, [f"{text},5,0,1,1000000,1"], ["1000100,5,1000000,10"], stem="XYZ_2012-06-21_0_1", levels=1
    )
    with pytest.raises(DataError) as err:
        list(read_cents(msg))
    assert (err.value.path, err.value.line) == (str(msg), 1)


# ---------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("which", ["message", "orderbook"])
def test_truncated_gzip_names_file_and_line(tmp_path: Path, which: str) -> None:
    msg = tmp_path / GOOG_MSG.name
    book = tmp_path / GOOG_BOOK.name
    msg.write_bytes(GOOG_MSG.read_bytes())
    book.write_bytes(GOOG_BOOK.read_bytes())
    bad = msg if which == "message" else book
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    seen = 0
    with pytest.raises(DataError) as err:
        for _ in read_lobster(msg, instrument=GOOG_HALF_CENT):
            seen += 1
    assert err.value.path == str(bad) and err.value.line is not None and err.value.line > 1000
    assert "truncated" in str(err.value) and f"{bad}:{err.value.line}:" in str(err.value)
    assert seen > 1000  # streamed up to the damage, not loaded whole


@pytest.mark.parametrize(
    ("which", "line", "edit", "reason"),
    [
        ("message", 5, lambda s: s.rsplit(",", 1)[0], "expected 6 fields"),
        ("message", 5, lambda s: s.replace(",18,", ",1x8,"), "malformed message"),
        ("message", 6, lambda s: "34200.0x" + s[s.index(",") :], "malformed message"),
        ("message", 8, lambda s: s[: s.rindex(",")] + ",0", "direction must be 1"),
        ("message", 8, lambda s: ",".join([*s.split(",")[:3], "0", *s.split(",")[4:]]), "must be positive"),
        ("message", 9, lambda s: ",".join([*s.split(",")[:2], "-5", *s.split(",")[3:]]), "not negative"),
        ("message", 9, lambda s: ",".join([*s.split(",")[:5], "2"]), "direction must be 1"),
        ("orderbook", 4, lambda s: s + ",1", "expected 40 fields"),
        ("orderbook", 4, lambda s: s.replace(",", ";", 1), "expected 40 fields"),
        ("orderbook", 4, lambda s: "58594OO" + s[s.index(",") :], "malformed orderbook row"),
        ("orderbook", 6, lambda s: ",".join([s.split(",")[4], *s.split(",")[1:]]), "not strictly sorted"),
        ("orderbook", 7, lambda s: ",".join(["9999999999", "0", *s.split(",")[2:]]), "is empty but a deeper"),
        ("orderbook", 7, lambda s: ",".join([*s.split(",")[:3], "0", *s.split(",")[4:]]), "must be positive"),
        ("orderbook", 9, lambda s: ",".join(["5850000", *s.split(",")[1:]]), "crossed book"),
    ],
)
def test_malformed_lines_name_file_and_line(
    tmp_path: Path, which: str, line: int, edit: Callable[[str], str], reason: str
) -> None:
    messages, rows = aapl_pair()
    target = messages if which == "message" else rows
    target[line - 1] = edit(target[line - 1])
    msg, book = write_pair(tmp_path, messages, rows)
    seen: list[MarketEvent] = []
    with pytest.raises(DataError) as err:
        seen.extend(read_cents(msg))
    assert (err.value.path, err.value.line) == (str(msg if which == "message" else book), line)
    assert reason in str(err.value)


def test_unknown_event_type(tmp_path: Path) -> None:
    messages, rows = aapl_pair()
    messages[6] = messages[6].replace(",1,", ",9,", 1)
    msg, _ = write_pair(tmp_path, messages, rows)
    events: list[MarketEvent] = []
    with pytest.raises(DataError, match=r"message_10\.csv:7: unknown event type 9"):
        events.extend(read_cents(msg))
    assert [e.seq for e in events if not isinstance(e, BookDelta)] == list(range(7))  # the six before it arrived


def test_unknown_halt_state(tmp_path: Path) -> None:
    messages, rows = aapl_pair()
    messages[2] = "34200.1,7,0,0,2,-1"
    msg, _ = write_pair(tmp_path, messages, rows)
    with pytest.raises(DataError, match=r":3: halt message \(type 7\) with price 2"):
        list(read_cents(msg))


@pytest.mark.parametrize("which", ["message", "orderbook"])
def test_off_grid_price_is_an_off_grid_data_error(tmp_path: Path, which: str) -> None:
    messages, rows = aapl_pair()
    if which == "message":
        messages[2] = messages[2].replace(",5853100,", ",5853101,")
    else:
        rows[2] = rows[2].replace("5859800,", "5859850,", 1)
    msg, book = write_pair(tmp_path, messages, rows)
    with pytest.raises(LobsterOffGridError) as err:
        list(read_cents(msg))
    assert isinstance(err.value, OffGridError) and isinstance(err.value, DataError)
    assert (err.value.path, err.value.line) == (str(msg if which == "message" else book), 3)
    assert "not on the 0.01 tick grid" in str(err.value)


def test_a_finer_instrument_grid_accepts_what_the_cent_grid_rejects(tmp_path: Path) -> None:
    messages, rows = aapl_pair(3)
    messages[2] = messages[2].replace(",5853100,", ",5853150,")
    msg, _ = write_pair(tmp_path, messages, rows)
    fine = Instrument("AAPL", tick_size=Decimal("0.005"), lot_size=Decimal(1))
    added = [e for e in read_lobster(msg, instrument=fine) if isinstance(e, OrderAdded)]
    assert [e.price for e in added] == [117066, 117064, 117063]


@pytest.mark.parametrize("short", ["message", "orderbook"])
def test_row_counts_must_match(tmp_path: Path, short: str) -> None:
    messages, rows = aapl_pair()
    if short == "message":
        messages.pop()
    else:
        rows.pop()
    msg, book = write_pair(tmp_path, messages, rows)
    with pytest.raises(DataError, match="ends after 19 rows") as err:
        list(read_cents(msg))
    assert (err.value.path, err.value.line) == (str(msg if short == "message" else book), 20)


def test_time_going_backwards(tmp_path: Path) -> None:
    messages, rows = aapl_pair()
    messages[9] = "34200.0" + messages[9][messages[9].index(",") :]
    msg, _ = write_pair(tmp_path, messages, rows)
    with pytest.raises(DataError, match=r"message_10\.csv:10: time goes backwards"):
        list(read_cents(msg))


def test_first_add_larger_than_the_first_row_shows(tmp_path: Path) -> None:
    messages, rows = aapl_pair(3)
    messages[0] = messages[0].replace(",18,", ",19,")
    msg, _ = write_pair(tmp_path, messages, rows)
    with pytest.raises(DataError, match=r":1: the first message adds 19 lots"):
        next(read_cents(msg))


def test_empty_files_yield_nothing(tmp_path: Path) -> None:
    msg, _ = write_pair(tmp_path, [], [])
    assert list(read_cents(msg)) == []


# ---------------------------------------------------------------------------------- file names
@pytest.mark.parametrize(
    ("msg_suffix", "book_suffix"),
    [
        (".csv", ".csv"),
        (".csv.gz", ".csv.gz"),
        (".first999", ".first999"),
        (".first999.csv.gz", ".first999.csv.gz"),
        ("", ""),
        (".csv.gz", ".csv"),  # one side compressed, the other not
        (".csv", ".csv.gz"),
    ],
)
def test_orderbook_found_from_message_name(tmp_path: Path, msg_suffix: str, book_suffix: str) -> None:
    msg = tmp_path / f"{AAPL_STEM}_message_10{msg_suffix}"
    book = tmp_path / f"{AAPL_STEM}_orderbook_10{book_suffix}"
    msg.touch()
    book.touch()
    (tmp_path / f"{AAPL_STEM}_orderbook_5{book_suffix}").touch()  # another depth must not be picked
    f = lobster_files(msg)
    assert (f.message, f.orderbook, f.symbol, f.date.isoformat(), f.levels) == (msg, book, "AAPL", "2012-06-21", 10)
    assert (f.start_ms, f.end_ms) == (34_200_000, 57_600_000)


def test_symbol_with_underscore_and_explicit_orderbook(tmp_path: Path) -> None:
    f = lobster_files(tmp_path / "BRK_B_2012-06-21_0_1_message_5.csv", tmp_path / "elsewhere.csv")
    assert (f.symbol, f.levels, f.orderbook.name) == ("BRK_B", 5, "elsewhere.csv")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("AAPL_2012-06-21_34200000_57600000_orderbook_10.csv", "not a LOBSTER message file name"),
        ("aapl_messages.csv", "not a LOBSTER message file name"),
        ("AAPL_2012-13-45_34200000_57600000_message_10.csv", "invalid date"),
        ("AAPL_2012-06-21_34200000_57600000_message_0.csv", "0 levels"),
        ("AAPL_2012-06-21_34200000_57600000_message_10.csv", "orderbook file is missing"),
    ],
)
def test_bad_names_and_missing_orderbook(tmp_path: Path, name: str, reason: str) -> None:
    (tmp_path / name).touch()
    with pytest.raises(DataError, match=reason) as err:
        read_lobster(tmp_path / name)
    assert err.value.path == str(tmp_path / name)


def test_levels_argument_must_agree_with_the_file(tmp_path: Path) -> None:
    messages, rows = aapl_pair(3)
    msg, _ = write_pair(tmp_path, messages, rows)
    with pytest.raises(DataError, match="levels=5 but the file name says 10"):
        read_cents(msg, levels=5)
    assert len(list(read_cents(msg, levels=10))) >= 4


# ---------------------------------------------------------------------------------- messages alone
MSG_ONLY = [  # (time, type, id, size, price, direction); prices are USD × 10000, read on a cent grid
    "34200.1,1,1,100,1000000,1",  # 1 submit: buy #1 100 @ 100.00
    "34200.2,1,2,50,1000100,-1",  # 2 submit: sell #2 50 @ 100.01
    "34200.3,4,1,30,1000000,1",  # 3 partial execution of #1: 70 left
    "34200.4,2,1,20,1000000,1",  # 4 partial cancel of #1: 50 left
    "34200.5,1,3,40,999900,1",  # 5 submit: buy #3 40 @ 99.99
    "34200.6,4,77,25,1000100,-1",  # 6 execution of #77, never seen: a print, not book liquidity
    "34200.7,5,0,10,1000000,1",  # 7 hidden buy hit by a seller
    "34200.8,7,0,0,-1,-1",  # 8 halt
    "34200.9,3,2,50,1000100,-1",  # 9 delete #2
    "34201.0,3,88,10,999800,1",  # 10 delete of #88, never seen: nothing to remove
    "34201.1,2,77,5,1000100,-1",  # 11 partial cancel of #77 (its second unknown reference)
]


def write_messages(tmp_path: Path, lines: list[str], levels: int = 10) -> Path:
    msg = tmp_path / f"XYZ_2012-06-21_34200000_57600000_message_{levels}.csv"
    msg.write_text("\n".join(lines) + "\n")
    return msg


def test_messages_alone_build_the_book_of_known_orders(tmp_path: Path) -> None:
    reader = LobsterMessages(write_messages(tmp_path, MSG_ONLY), instrument=us_equity("XYZ"))
    base = 1340251200 * 10**9 + 34200 * 10**9  # 2012-06-21 09:30 New York (EDT) in UTC ns

    def t(k: int) -> tuple[int, int, str, int]:
        return base + k * 10**8, base + k * 10**8, "XYZ", k

    events = list(reader)
    assert events == [
        OrderAdded(*t(1), 1, Side.BUY, 10000, 100),
        OrderAdded(*t(2), 2, Side.SELL, 10001, 50),
        OrderExecuted(*t(3), 1, Side.BUY, 10000, 30),
        OrderCancelled(*t(4), 1, Side.BUY, 10000, 20),
        OrderAdded(*t(5), 3, Side.BUY, 9999, 40),
        Trade(*t(6), 10001, 25, Side.BUY),  # a buyer lifted the unseen sell #77
        Trade(*t(7), 10000, 10, Side.SELL),
        TradingStatus(*t(8), True, "trading halted"),
        OrderDeleted(*t(9), 2, Side.SELL, 10001, 50),
    ]
    book = L3Book("XYZ")
    for e in events:
        book.apply(e)
    # #1: 100 − 30 − 20 = 50 @ 100.00; #3: 40 @ 99.99; no ask (#2 deleted, #77 never in the book).
    assert visible(book, 10) == ([10000, 9999], [50, 40], [], [])
    assert book.queue(Side.BUY, 10000) == [(1, 50)] and book.anonymous_at(Side.BUY, 10000) == 0
    assert reader.stats == {
        "messages": 11, "added": 3, "cancelled": 1, "deleted": 1, "executed": 1, "hidden_executions": 1,
        "crosses": 0, "halts": 1, "unknown_order_refs": 3, "unknown_orders": 2, "unknown_executions": 1,
        "stale_orders_dropped": 0,
    }  # fmt: skip
    assert reader.unknown_refs == [
        UnknownOrderRef(6, 6, "visible execution", 77, Side.SELL, 10001, 25),
        UnknownOrderRef(10, 10, "delete", 88, Side.BUY, 9998, 10),
        UnknownOrderRef(11, 11, "partial cancel", 77, Side.SELL, 10001, 5),
    ]
    assert list(reader) == events and reader.stats["unknown_order_refs"] == 3  # a new pass starts afresh


def test_messages_alone_drop_orders_a_later_message_proves_gone(tmp_path: Path) -> None:
    lines = [
        "34200.1,1,1,100,1000000,1",  # buy #1 100 @ 100.00
        "34200.2,1,2,10,1000200,1",  # buy #2 @ 100.02: a level-1 file stops showing #1 ...
        "34200.3,3,2,10,1000200,1",  # ... whose cancel it then never sees
        "34200.4,1,3,30,999900,-1",  # sell #3 @ 99.99: #1 at 100.00 cannot have been there
        "34200.5,1,4,60,999700,1",  # buy #4 60 @ 99.97
        "34200.6,3,4,45,999700,1",  # delete #4 with 45: 15 were cancelled out of view
    ]
    reader = LobsterMessages(write_messages(tmp_path, lines, levels=1), instrument=us_equity("XYZ"))
    events = list(reader)
    book = L3Book("XYZ")
    for e in events:
        book.apply(e)
    assert [(type(e).__name__, e.seq) for e in events] == [
        ("OrderAdded", 1), ("OrderAdded", 2), ("OrderDeleted", 3),
        ("OrderDeleted", 4), ("OrderAdded", 4),  # the stale #1 goes first, under the same seq
        ("OrderAdded", 5), ("OrderDeleted", 6),
    ]  # fmt: skip
    assert events[3] == OrderDeleted(events[3].ts, events[3].ts, "XYZ", 4, 1, Side.BUY, 10000, 100)
    assert events[-1].size == 60  # type: ignore[attr-defined]  # all of #4 leaves the book
    assert visible(book, 5) == ([], [], [9999], [30])
    assert reader.stale_orders == [StaleOrder(4, 4, 1, Side.BUY, 10000, 100)]
    assert (reader.stats["stale_orders_dropped"], reader.stats["deleted"], reader.stats["unknown_order_refs"]) == (
        1, 2, 0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("34200.2,4,1,101,1000000,1", "visible execution of 101 lots of order 1, but 100 rest"),
        ("34200.2,2,1,5,1000100,1", "partial cancel of order 1, which rests as BUY @ 10000"),
        ("34200.2,1,1,5,1000000,1", "order 1 is submitted again while it rests"),
        ("34200.0,1,2,5,1000000,1", "time goes backwards"),
    ],
)
def test_messages_alone_bad_input_names_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    msg = write_messages(tmp_path, ["34200.1,1,1,100,1000000,1", line])
    with pytest.raises(DataError, match=reason) as err:
        list(LobsterMessages(msg, instrument=us_equity("XYZ")))
    assert (err.value.path, err.value.line) == (str(msg), 2)


def test_real_aapl_messages_alone_are_a_subset_of_the_real_book(tmp_path: Path) -> None:
    msg = tmp_path / AAPL_MSG.name
    msg.write_bytes(AAPL_MSG.read_bytes())  # without its orderbook file
    reader = LobsterMessages(msg, instrument=us_equity("AAPL"))
    book = L3Book("AAPL")
    rows = enumerate(expected_rows(AAPL_BOOK, 100), start=1)
    checked = 0
    over: Counter[int] = Counter()  # level (1-based) -> rows where the known orders exceed the real level
    for seq, group in itertools.groupby(reader, key=lambda e: e.seq):
        for e in group:
            book.apply(e)
        n, row = next(rows)
        while n < seq:  # a message that yielded nothing (an unknown cancel) still had its row
            n, row = next(rows)
        checked += 1
        for side, px, sz in ((Side.BUY, row[0], row[1]), (Side.SELL, row[2], row[3])):
            for level, (p, s) in enumerate(zip(px, sz, strict=True), start=1):
                over[level] += book.size_at(side, p) > s
    assert checked == 994  # 999 messages, 5 of them deletes of unknown orders that yield nothing
    # The known orders are a subset of the real book on levels 1-7 of every row. Near the edge of
    # the 10-level window they may not be: an order that drifted beyond it was cancelled unseen,
    # then its price came back into view (97 of the 19,880 level checks, all on levels 8-10).
    assert {k: v for k, v in over.items() if v} == {8: 30, 9: 45, 10: 22}
    assert reader.stats == {
        "messages": 999, "added": 471, "cancelled": 0, "deleted": 364, "executed": 94, "hidden_executions": 61,
        "crosses": 0, "halts": 0, "unknown_order_refs": 9, "unknown_orders": 9, "unknown_executions": 4,
        "stale_orders_dropped": 0,
    }  # fmt: skip
    # The paired reader saw 369 deletes and 98 executions: 5 and 4 of them were of orders resting
    # before the file, which the messages alone can only list.
    assert sum(r.kind == "delete" for r in reader.unknown_refs) == 5


def test_open_feed_reads_messages_alone_when_the_orderbook_is_missing(tmp_path: Path) -> None:
    msg = write_messages(tmp_path, MSG_ONLY)
    with pytest.warns(MessagesOnly, match="no orderbook file next to it; reading the messages alone"):
        feed = open_feed(msg)
    assert (feed.format, feed.book_kind, feed.window) == ("lobster-messages", "L3", None)
    assert len(list(feed)) == 9 and feed.events().stats["unknown_order_refs"] == 3  # type: ignore[attr-defined]
    # With the orderbook file next to it, the pair is read, without a warning.
    (tmp_path / "pair").mkdir()
    pair, _ = write_pair(tmp_path / "pair", [m for m, _ in LEVEL1], [r for _, r in LEVEL1],
                         stem="XYZ_2012-06-21_0_1", levels=1)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paired = open_feed(pair)
        assert (paired.format, paired.window) == ("lobster", 1)
        assert open_feed(pair, "lobster-messages").format == "lobster-messages"  # chosen by name


def test_vtrade_book_says_so_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    msg = write_messages(tmp_path, MSG_ONLY)
    assert cli.main(["book", str(msg), "--out", str(tmp_path / "b.parquet"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "(lobster-messages)" in out
    notes = [line for line in err.splitlines() if line.startswith("vtrade: note:")]
    assert len(notes) == 1 and notes[0].startswith("vtrade: note: XYZ_2012-06-21") and "messages alone" in notes[0]
    assert "XYZ" in err.splitlines()[-1] and "the LOBSTER default" in err  # then the grid it read on


def test_real_goog_level1_messages_alone_never_cross(tmp_path: Path) -> None:
    # A level-1 file shows only the touch: most orders drift out of view and are cancelled unseen.
    # Every such order is dropped when the other side reaches its price, so the book never crosses.
    msg = tmp_path / GOOG_MSG.name
    msg.write_bytes(GOOG_MSG.read_bytes())
    reader = LobsterMessages(msg)
    book = L3Book("GOOG")
    for e in reader:
        book.apply(e)  # raises CrossedBookError on a crossed book
    assert reader.stats == {
        "messages": 49_482, "added": 24_368, "cancelled": 6, "deleted": 11_263, "executed": 5_456,
        "hidden_executions": 3_913, "crosses": 0, "halts": 0, "unknown_order_refs": 4_476, "unknown_orders": 3_822,
        "unknown_executions": 2_309, "stale_orders_dropped": 7_638,
    }  # fmt: skip
    assert len(reader.unknown_refs) == 4_476 and len(reader.stale_orders) == 7_638
