"""The journaled memory bus: the log and the group commits survive a restart, acknowledged
records survive a SIGKILL, and files it cannot use get a clear error. (The Bus semantics
themselves are checked by tests/test_bus_conformance.py, which runs on this backend too.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from vtrade.core.events import Trade
from vtrade.runtime.bus import JournaledBus, MemoryBus, open_bus
from vtrade.runtime.journal import JournalError

ROOT = Path(__file__).resolve().parent.parent


def trade(i: int, symbol: str = "SPY") -> Trade:
    return Trade(ts=1_000 + i, recv_ts=1_000 + i, symbol=symbol, seq=i, price=10_000 + i, size=1)


def test_a_reopened_bus_has_the_same_topics_records_and_commits(tmp_path: Path) -> None:
    path = tmp_path / "log.duckdb"
    bus = open_bus("memory://", journal=path)
    assert isinstance(bus, JournaledBus)
    bus.create_topic("market", 4)
    bus.create_topic("user", 1)
    bus.publish_many("market", [(s, trade(i, s)) for i in range(20) for s in ("SPY", "QQQ", "IWM")])
    bus.publish("user", "ana", b"raw bytes, not an event", timestamp_ns=42)  # kept exactly too
    bus.publish("market", "SPY", trade(99), timestamp_ns=7)  # a record time other than the event's
    with bus.consumer("risk", "market", member_id="m") as c:
        got = c.poll(max_records=25)
        c.commit(got)
        committed = {tp: c.committed(*tp) for tp in c.assignment()}
    before = {t: [bus.read(t, p, 0, 10_000) for p in range(n)] for t, n in bus.topics().items()}
    bus.close()

    again = JournaledBus(path)
    assert again.topics() == {"market": 4, "user": 1}
    assert {t: [again.read(t, p, 0, 10_000) for p in range(n)] for t, n in again.topics().items()} == before
    with again.consumer("risk", "market", member_id="m") as c:
        assert {tp: c.committed(*tp) for tp in c.assignment()} == committed
        rest = c.poll(max_records=1000)
    assert len(rest) == 61 - 25  # exactly what the group had not committed
    # New records continue the offsets, and the file answers SQL.
    assert again.publish("user", "ben", b"x").offset == 1
    counts = again.query("SELECT topic, count(*) AS n FROM bus_records GROUP BY topic ORDER BY topic")
    assert counts.to_dict("list") == {"topic": ["market", "user"], "n": [61, 2]}
    again.close()


def test_it_behaves_like_the_memory_bus_record_for_record(tmp_path: Path) -> None:
    plain, journaled = MemoryBus(), JournaledBus(tmp_path / "j.duckdb")
    for bus in (plain, journaled):
        bus.create_topic("market", 3)
        bus.publish_many("market", [(s, trade(i, s)) for i in range(10) for s in ("SPY", "XOM")])
    assert [plain.read("market", p) for p in range(3)] == [journaled.read("market", p) for p in range(3)]
    journaled.close()


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log.duckdb"
    bus = JournaledBus(path)
    bus.create_topic("t", 1)
    with pytest.raises(TypeError):
        bus.publish_many("t", [("k", b"ok"), ("k", "not bytes")])  # type: ignore[list-item]
    bus.close()
    assert JournaledBus(path).end_offsets("t") == [0]


def test_files_it_cannot_use_get_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="is a directory"):
        JournaledBus(tmp_path)
    corrupt = tmp_path / "corrupt.duckdb"
    corrupt.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="cannot open the bus journal"):
        JournaledBus(corrupt)
    foreign = tmp_path / "foreign.duckdb"
    with duckdb.connect(str(foreign)) as con:
        con.execute("CREATE TABLE bus_records (id INTEGER)")
    with pytest.raises(JournalError, match="not a vtrade bus journal"):
        JournaledBus(foreign)
    gap = tmp_path / "gap.duckdb"
    with JournaledBus(gap) as bus:
        bus.create_topic("t", 1)
        bus.publish_many("t", [("k", b"a"), ("k", b"b"), ("k", b"c")])
    with duckdb.connect(str(gap)) as con:
        con.execute('DELETE FROM bus_records WHERE "offset" = 1')
    with pytest.raises(JournalError, match="does not follow the log"):
        JournaledBus(gap)
    with pytest.raises(ValueError, match="journal= is for the memory bus"):
        open_bus("redis://localhost:1/0", journal=tmp_path / "x.duckdb")


_CHILD = textwrap.dedent(
    """
    import sys
    from vtrade.runtime.bus import JournaledBus
    bus = JournaledBus(sys.argv[1])
    bus.create_topic("t", 2)
    i = 0
    while True:
        md = bus.publish("t", f"k{i % 5}", str(i).encode())
        print(md.partition, md.offset, i, flush=True)  # the acknowledgement
        i += 1
    """
)


def test_every_acknowledged_record_survives_a_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "log.duckdb"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], stdout=subprocess.PIPE, env=env, text=True)
    assert child.stdout is not None
    acked = [child.stdout.readline() for _ in range(300)]  # wait for acknowledgements, not for time
    child.send_signal(signal.SIGKILL)
    child.wait()
    acked += child.stdout.read().splitlines()  # what was printed before the kill landed
    bus = JournaledBus(path)
    for line in filter(None, (a.strip() for a in acked)):
        partition, offset, i = map(int, line.split())
        [record] = bus.read("t", partition, offset, 1)
        assert record.value == str(i).encode()
    bus.close()
