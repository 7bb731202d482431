"""The DuckDB journal: idempotent batch appends, filtered reads, persistence, bad input."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from vtrade.core.events import Quote, Trade, encode
from vtrade.core.ids import partition_for
from vtrade.runtime.bus import MemoryBus, Record
from vtrade.runtime.journal import Journal, JournalError

T0 = 1_700_000_000_000_000_000


def trade(i: int, symbol: str = "SPY") -> Trade:
    return Trade(ts=T0 + 10 * i, recv_ts=T0 + 10 * i, symbol=symbol, seq=i, price=10_000 + i, size=1)


def quote(i: int, symbol: str = "SPY") -> Quote:
    return Quote(ts=T0 + 10 * i + 5, recv_ts=T0 + 10 * i + 5, symbol=symbol, seq=i, bid_px=9_999 + i, bid_sz=3,
                 ask_px=10_001 + i, ask_sz=4)


@pytest.fixture
def records() -> list[Record]:
    """Trades of SPY and quotes of MSFT (on different partitions of "market"), one exec record."""
    bus = MemoryBus()
    bus.create_topic("market", 2)
    bus.create_topic("exec", 1)
    for i in range(10):
        bus.publish("market", "SPY", trade(i))
        bus.publish("market", "MSFT", quote(i, "MSFT"))
    bus.publish("exec", "acct-1", trade(99, "SPY"))
    assert (partition_for("MSFT", 2), partition_for("SPY", 2)) == (0, 1)
    out = [r for t, n in bus.topics().items() for p in range(n) for r in bus.read(t, p)]
    bus.close()
    return out


def test_append_then_read_back_as_a_dataframe(records: list[Record]) -> None:
    with Journal() as j:
        assert j.append(records) == 21
        assert len(j) == 21
        df = j.read()
        assert list(df.columns) == ["topic", "partition", "offset", "ts", "type", "key", "payload"]
        assert list(zip(df.topic, df.partition, df.offset, strict=True)) == sorted(
            (r.topic, r.partition, r.offset) for r in records
        )
        by_key = {(r.topic, r.partition, r.offset): r for r in records}
        for row in df.itertuples(index=False):
            r = by_key[(row.topic, row.partition, row.offset)]
            assert (row.key, row.payload, row.ts) == (r.key, r.value, r.event.ts)
            assert row.type == type(r.event).__name__
        assert isinstance(df.payload.iloc[0], bytes)


def test_reads_filter_by_topic_partition_offset_and_type(records: list[Record]) -> None:
    spy_p = next(r.partition for r in records if r.key == "SPY" and r.topic == "market")
    with Journal() as j:
        j.append(records)
        assert set(j.read("exec").type) == {"Trade"} and len(j.read("exec")) == 1
        spy = j.read("market", partition=spy_p)
        assert list(spy.offset) == list(range(10)) and set(spy.key) == {"SPY"}
        assert list(j.read("market", partition=spy_p, since_offset=7).offset) == [7, 8, 9]
        assert len(j.read(types="Quote")) == 10
        assert len(j.read(types=["Quote", "Trade"])) == 21
        assert len(j.read(types=[])) == 0
        assert len(j.read(types="NoSuchType")) == 0
        by_time = j.read("market", order_by="ts")
        assert list(by_time.ts) == sorted(by_time.ts)
        assert list(by_time.type[:4]) == ["Trade", "Quote", "Trade", "Quote"]
        events = list(j.read_events("market", types="Trade", order_by="ts"))
        assert events == [trade(i) for i in range(10)]
        # log order: partition 0 (MSFT) before partition 1 (SPY)
        assert list(j.read_events("market", since_offset=9, batch_size=1)) == [quote(9, "MSFT"), trade(9)]
        counts = j.query("SELECT type, count(*) AS n FROM journal GROUP BY type ORDER BY type")
        assert counts.to_dict("list") == {"type": ["Quote", "Trade"], "n": [10, 11]}


def test_appending_again_is_a_no_op(records: list[Record]) -> None:
    with Journal() as j:
        assert j.append(records[:5]) == 5
        assert j.append(records) == len(records) - 5  # only the new ones
        assert j.append(records) == 0
        assert j.append(records[0]) == 0
        assert j.append([records[1], records[1]]) == 0
        assert j.append([]) == 0
        assert len(j) == len(records)


def test_high_watermark_is_where_to_resume(records: list[Record]) -> None:
    with Journal() as j:
        assert j.high_watermark("market", 0) == 0
        j.append([r for r in records if r.topic == "market" and r.offset < 4])
        assert j.high_watermark("market", 0) == 4
        assert j.high_watermark("exec", 0) == 0
        with pytest.raises(TypeError):
            j.high_watermark(3, 0)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="partition must be >= 0"):
            j.high_watermark("market", -1)


def test_a_file_journal_survives_reopening(tmp_path: Path, records: list[Record]) -> None:
    path = tmp_path / "journal.duckdb"
    with Journal(path) as j:
        j.append(records[:12])
    with Journal(path) as j:
        assert len(j) == 12
        assert j.append(records) == len(records) - 12
        hw = j.high_watermark("market", 1)
    with Journal(str(path), read_only=True) as j:
        assert len(j) == len(records)
        assert j.high_watermark("market", 1) == hw
        assert list(j.read_events("exec")) == [trade(99)]
        with pytest.raises(JournalError, match="read-only"):
            j.append(records)


def test_a_consumer_journaling_with_redelivery_stores_each_record_once() -> None:
    bus = MemoryBus()
    bus.create_topic("market", 2)
    for i in range(20):
        bus.publish("market", f"S{i % 3}", trade(i, f"S{i % 3}"))
    with Journal() as j:
        with bus.consumer("journal", "market", member_id="a") as a:
            j.append(a.poll())  # appended, never committed: the member dies
        with bus.consumer("journal", "market", member_id="b") as b:
            again = b.poll()
            assert len(again) == 20
            assert j.append(again) == 0
            b.commit(again)
        assert len(j) == 20
    bus.close()


def test_appending_100k_records_in_one_call() -> None:  # its speed: benchmarks/bench_feeds.py
    payloads = [encode(trade(i)) for i in range(1000)]
    recs = [Record("market", i % 4, i // 4, "SPY", payloads[i % 1000], T0 + i) for i in range(100_000)]
    with Journal() as j:
        assert j.append(recs) == 100_000
        assert j.high_watermark("market", 3) == 25_000


def test_bad_records_are_refused_and_store_nothing(records: list[Record]) -> None:
    with Journal() as j:
        j.append(records[:3])
        fresh = records[3]
        with pytest.raises(TypeError, match="item 1 is a bytes"):
            j.append([fresh, b"raw"])  # type: ignore[list-item]
        garbage = Record("market", 0, 500, "SPY", b"\x00not msgpack", 0)
        with pytest.raises(JournalError, match=r"market\[0\]@500 does not hold a vtrade event"):
            j.append([fresh, garbage])
        forged = Record(records[0].topic, records[0].partition, records[0].offset, "SPY", encode(trade(12345)), 0)
        with pytest.raises(JournalError, match="already holds a different record"):
            j.append([fresh, forged])
        twins = [fresh, Record(fresh.topic, fresh.partition, fresh.offset, fresh.key, encode(trade(777)), 0)]
        with pytest.raises(JournalError, match="two different records"):
            j.append(twins)
        assert len(j) == 3
        assert j.read().payload.tolist() == [r.value for r in records[:3]]


def test_bad_read_arguments_are_refused() -> None:
    with Journal() as j:
        with pytest.raises(ValueError, match="since_offset must be >= 0"):
            j.read(since_offset=-1)
        with pytest.raises(TypeError, match="event type names"):
            j.read(types=[1])  # type: ignore[list-item]
        with pytest.raises(TypeError, match="topic must be a str"):
            j.read(topic=5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="order_by"):
            j.read(order_by="size")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="batch_size"):
            j.read_events(batch_size=0)
    with pytest.raises(JournalError, match="closed"):
        j.read()


def test_files_that_are_not_journals_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match=r"junk\.duckdb"):
        Journal(junk)
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE journal (id INTEGER, note VARCHAR)")
    con.close()
    with pytest.raises(JournalError, match="not a vtrade journal"):
        Journal(other)
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(JournalError, match="no journal table"):
        Journal(empty, read_only=True)
    with pytest.raises(JournalError, match="cannot open journal"):
        Journal(tmp_path / "missing-dir" / "j.duckdb")
