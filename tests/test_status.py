"""Worker status (issue 15, operations): heartbeats on the ``status`` topic, the status table
(lag per partition, throughput, last snapshot, stale workers), ``vtrade status`` and ``/admin``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from vtrade.core.events import Trade, decode, encode
from vtrade.ops.status import (
    GroupPartition,
    InputPartition,
    StatusTable,
    WorkerHeartbeat,
    partition_spans,
    render_text,
    status_table,
)
from vtrade.runtime.bus import Bus, MemoryBus, open_bus
from vtrade.runtime.execution_worker import INPUT_TOPIC
from vtrade.runtime.live import LiveConfig, LiveMarket
from vtrade.runtime.localhost import free_port
from vtrade.runtime.status import STATUS_TOPIC, ConsumerSource, Heartbeat, StatusReader
from vtrade.runtime.workers import run_exec_worker, run_portfolio_worker

ROOT = Path(__file__).resolve().parent.parent
S = 1_000_000_000  # ns per second
KAFKA_SESSION_MS = 2000  # short, so that a group join on Tansu takes about a second


def beat(worker: str = "exec:exec:w1", ts: int = 100 * S, *, interval_s: float = 2.0, processed: int = 10,
         partitions: tuple[InputPartition, ...] = (), stopping: bool = False) -> WorkerHeartbeat:  # fmt: skip
    return WorkerHeartbeat(ts, worker, "exec", "exec", worker.rsplit(":", 1)[-1], "box", 7, 90 * S, interval_s,
                           processed, 5.0, partitions, stopping)  # fmt: skip


def part(p: int, snapshot: int | None = None, group: str = "exec", topic: str = "exec.in") -> InputPartition:
    return InputPartition(group, topic, p, snapshot)


# ---------------------------------------------------------------------------------------------- the pure table


def test_lag_per_partition_is_end_minus_committed_and_sums_per_worker() -> None:
    b = beat(partitions=(part(0, 40), part(1, 7)))
    t = status_table([b], {"exec.in": [50, 10, 3]}, {("exec", "exec.in"): [45, 10, 1]}, now_ns=101 * S)
    [w] = t.workers
    assert [(p.partition, p.end, p.committed, p.lag, p.snapshot) for p in w.partitions] == [
        (0, 50, 45, 5, 40), (1, 10, 10, 0, 7)]  # fmt: skip
    assert w.lag == 5 and w.state == "ok" and w.age_s == pytest.approx(1.0) and w.processed == 10
    # Every partition of the group is listed; the one nobody claims has no owner and no snapshot.
    assert [(g.partition, g.lag, g.owner, g.snapshot) for g in t.groups] == [
        (0, 5, "exec:exec:w1", 40), (1, 0, "exec:exec:w1", 7), (2, 2, None, None)]  # fmt: skip


def test_a_group_that_never_committed_lags_by_the_whole_log() -> None:
    t = status_table([beat(partitions=(part(0),))], {"exec.in": [12, 0]}, {("exec", "exec.in"): [None, None]},
                     now_ns=100 * S)  # fmt: skip
    assert [(g.committed, g.lag) for g in t.groups] == [(None, 12), (None, 0)]
    assert t.workers[0].lag == 12
    rows = [line.split() for line in render_text(t).splitlines() if line.startswith("exec ")]
    assert rows[0] == ["exec", "exec.in", "0", "12", "—", "12", "—", "exec:exec:w1"]  # "—": no commit, no snapshot


def test_a_worker_is_stale_after_n_silent_intervals_and_loses_its_partitions() -> None:
    b = beat(partitions=(part(0),), interval_s=2.0)
    offsets = ({"exec.in": [5]}, {("exec", "exec.in"): [5]})
    assert status_table([b], *offsets, now_ns=106 * S).workers[0].state == "ok"  # exactly 3 intervals
    stale = status_table([b], *offsets, now_ns=106 * S + 1)
    assert stale.workers[0].state == "stale" and stale.groups[0].owner is None
    assert status_table([b], *offsets, now_ns=106 * S + 1, stale_after=10).workers[0].state == "ok"
    with pytest.raises(ValueError, match="stale_after must be a positive"):
        status_table([b], *offsets, now_ns=0, stale_after=0)


def test_the_latest_beat_of_a_worker_wins_and_the_newest_claim_owns_a_partition() -> None:
    old, new = beat(ts=100 * S, processed=1), beat(ts=101 * S, processed=2)
    assert status_table([new, old], {}, {}, now_ns=101 * S).workers[0].processed == 2
    # A rebalance: w2 took partition 0 from w1, whose next beat has not come yet.
    w1 = beat("exec:exec:w1", 100 * S, partitions=(part(0, 3),))
    w2 = beat("exec:exec:w2", 101 * S, partitions=(part(0, 4),))
    t = status_table([w1, w2], {"exec.in": [9]}, {("exec", "exec.in"): [9]}, now_ns=101 * S)
    assert [(g.owner, g.snapshot) for g in t.groups] == [("exec:exec:w2", 4)]
    stopped = status_table([beat(stopping=True, partitions=(part(0),))], {"exec.in": [1]}, {}, now_ns=100 * S)
    assert stopped.workers[0].state == "stopped" and stopped.groups[0].owner is None


def test_a_partition_on_a_missing_topic_has_no_end_and_no_lag() -> None:
    t = status_table([beat(partitions=(part(0, topic="gone"),))], {}, {}, now_ns=100 * S)
    assert (t.groups[0].end, t.groups[0].lag, t.workers[0].lag) == (None, None, 0)


def test_heartbeats_are_events_and_the_table_is_json() -> None:
    b = beat(partitions=(part(0, 3),))
    assert decode(encode(b)) == b
    t = status_table([b], {"exec.in": [4]}, {("exec", "exec.in"): [4]}, now_ns=100 * S)
    assert msgspec.json.decode(t.to_json(), type=StatusTable) == t
    text = render_text(t, title="redis://h:1/0")
    assert text.splitlines()[0] == "vtrade status · redis://h:1/0 · 1970-01-01 00:01:40 UTC"
    assert "exec:exec:w1" in text and "exec.in[0]" in text
    spans = [GroupPartition("g", "t", p, None, None, None, None, None) for p in (5, 0, 1)]
    assert partition_spans(spans) == "t[0-1,5]"


# ---------------------------------------------------------------------------------------------- heartbeats


class Clock:
    def __init__(self) -> None:
        self.now = 1_000 * S

    def __call__(self) -> int:
        return self.now


def test_heartbeat_cadence_rate_and_stop_on_a_memory_bus() -> None:
    bus, clock = MemoryBus(), Clock()
    bus.create_topic("exec.in", 2)
    consumer = bus.consumer("exec", "exec.in", member_id="m1")
    hb = Heartbeat(bus, "exec", ConsumerSource("exec", consumer), clock=clock, host="box", pid=1)
    assert hb.tick(0, force=True)
    clock.now += S
    assert not hb.tick(100)  # not due: half an interval
    clock.now += S
    assert hb.tick(300)  # 300 records in the 2 s since the last beat
    clock.now += S
    assert hb.stop(400)
    beats = [r.event for r in bus.read(STATUS_TOPIC, 0)]
    assert [(b.processed, b.rate, b.stopping) for b in beats] == [(0, 0.0, False), (300, 150.0, False),
                                                                  (400, 100.0, True)]  # fmt: skip
    assert {r.key for r in bus.read(STATUS_TOPIC, 0)} == {"exec:exec:m1"}
    assert beats[0].partitions == (part(0), part(1))


def test_a_heartbeat_that_cannot_be_published_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    bus = MemoryBus()
    bus.create_topic("exec.in", 1)
    hb = Heartbeat(bus, "exec", ConsumerSource("exec", bus.consumer("exec", "exec.in")))
    bus.close()
    assert hb.tick(1, force=True) is False
    assert "heartbeat of exec:exec:" in caplog.text


def test_the_reader_follows_the_topic_from_a_window_and_skips_foreign_records() -> None:
    bus = MemoryBus()
    assert StatusReader(bus).heartbeats() == []  # no status topic yet
    bus.create_topic(STATUS_TOPIC, 1)
    bus.publish(STATUS_TOPIC, "x", b"not an event")
    bus.publish(STATUS_TOPIC, "t", Trade(1, 1, "SPY", 1, 100, 1))
    for i in range(5):
        bus.publish(STATUS_TOPIC, f"w{i}", beat(f"exec:exec:w{i}", ts=100 * S + i))
    reader = StatusReader(bus, window=3)
    assert sorted(b.worker for b in reader.heartbeats()) == ["exec:exec:w2", "exec:exec:w3", "exec:exec:w4"]
    bus.publish(STATUS_TOPIC, "w2", beat("exec:exec:w2", ts=200 * S, processed=99))
    latest = {b.worker: b.processed for b in reader.heartbeats()}
    assert latest["exec:exec:w2"] == 99 and len(latest) == 3


def test_a_memory_bus_keeps_its_status_topic_short() -> None:
    bus, clock = MemoryBus(), Clock()
    bus.create_topic("exec.in", 1)
    hb = Heartbeat(bus, "exec", ConsumerSource("exec", bus.consumer("exec", "exec.in")), clock=clock, window=50)
    for i in range(250):
        clock.now += 3 * S
        assert hb.tick(i)
    assert bus.end_offsets(STATUS_TOPIC) == [250]
    assert len(bus.read(STATUS_TOPIC, 0, 0, 10_000)) <= 150  # trimmed every 100 beats to the last 50


# ---------------------------------------------------------------------------------------------- real loops


def _bus(kind: str, request: pytest.FixtureRequest) -> tuple[Bus, Callable[[], Bus], str | None]:
    """A bus of ``kind`` for the worker, a way to open another view of the same log (a separate
    client, as ``vtrade status`` on another machine) and its URL (None: in-process only); the
    namespace is purged after."""
    if kind == "memory":
        b = MemoryBus()
        return b, lambda: b, None
    ns = f"vts-{uuid.uuid4().hex[:10]}"
    url = request.getfixturevalue(f"{kind}_url")
    url = f"{url}?namespace={ns}" + (f"&session_timeout_ms={KAFKA_SESSION_MS}" if kind == "kafka" else "")

    def purge() -> None:
        with open_bus(url) as cleaner:
            cleaner.purge()  # type: ignore[attr-defined]

    request.addfinalizer(purge)
    return open_bus(url), lambda: open_bus(url), url


@contextlib.contextmanager
def running(target: Callable[[threading.Event], object]) -> Iterator[threading.Event]:
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target(stop)
        except BaseException as exc:  # the test fails with the worker's error, not a timeout
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive() and not errors, errors


@pytest.mark.parametrize("kind", ["memory", "redis", "kafka"])
def test_an_execution_worker_loop_reports_lag_throughput_and_snapshots(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, eventually: Callable[..., None]
) -> None:
    bus, other_view, url = _bus(kind, request)
    bus.create_topic(INPUT_TOPIC, 4)
    timeout = KAFKA_SESSION_MS / 1000 if kind == "kafka" else 10.0
    with running(lambda stop: run_exec_worker(bus, tmp_path, ["SPY", "QQQ"], stop=stop, snapshot_every=10,
                                              session_timeout_s=timeout)):  # fmt: skip
        reader = StatusReader(other_view())

        def table_shows(processed: int) -> bool:
            t = reader.table()
            return len(t.workers) == 1 and t.workers[0].state == "ok" and t.workers[0].processed == processed \
                and t.workers[0].lag == 0 and len(t.workers[0].partitions) == 4

        eventually(lambda: table_shows(0), what="the worker's first heartbeat, owning all four partitions")
        bus.publish_many(INPUT_TOPIC, [(s, Trade(i, i, s, i, 10_000 + i, 1)) for i in range(1, 31) for s in ("SPY",
                                                                                                            "QQQ")])
        eventually(lambda: table_shows(60), what="a heartbeat after the 60 records, with no lag")
        [w] = reader.table().workers
        ends = bus.end_offsets(INPUT_TOPIC)
        busy = {p.partition: p for p in w.partitions if p.end}
        assert sorted(p.end for p in busy.values()) == [30, 30] and all(p.committed == p.end for p in busy.values())
        assert all(p.snapshot == 30 for p in busy.values())  # snapshot_every=10: the last one covers all 30
        assert {p.partition for p in w.partitions if not p.end} == {p for p, e in enumerate(ends) if e == 0}
        assert w.kind == "exec" and w.group == "exec" and w.pid == os.getpid()
    t = reader.table()  # the loop stopped: its last beat says so
    assert t.workers[0].state == "stopped" and all(g.owner is None for g in t.groups)
    if url is not None:  # and ``vtrade status`` in another process reads the same from the log
        out = _cli("status", "--bus", url, "--json")
        assert out.returncode == 0 and out.stderr == "", out.stderr
        [w] = json.loads(out.stdout)["workers"]
        assert (w["state"], w["processed"], w["pid"], w["lag"]) == ("stopped", 60, os.getpid(), 0)
    reader.bus.close()
    bus.close()


def test_a_portfolio_worker_reports_both_of_its_groups(tmp_path: Path, eventually: Callable[..., None]) -> None:
    bus = MemoryBus()
    with running(lambda stop: run_portfolio_worker(bus, tmp_path, ["SPY"], ["ada"], cash=1000, stop=stop,
                                                   snapshot_every=1)):  # fmt: skip
        reader = StatusReader(bus)
        eventually(lambda: reader.table().workers, what="the portfolio worker's first heartbeat")
        bus.publish("market", "SPY", Trade(5, 5, "SPY", 1, 16765, 1))

        def folded() -> bool:
            t = reader.table()
            return bool(t.workers) and t.workers[0].processed == 1 and t.workers[0].lag == 0

        eventually(folded, what="a heartbeat after the market record")
    [w] = reader.table().workers
    assert {(p.group, p.topic) for p in w.partitions} == {("portfolio", "exec"), ("portfolio.market.0", "market")}
    market = [p for p in w.partitions if p.topic == "market" and p.end]
    assert [(p.committed, p.snapshot) for p in market] == [(1, 1)]  # snapshot_every=1: covered and committed


# ---------------------------------------------------------------------------------------------- vtrade status


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "vtrade.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)  # fmt: skip


def test_vtrade_status_shows_a_worker_process_on_redis(
    redis_url: str, tmp_path: Path, eventually: Callable[..., None]
) -> None:
    ns = f"vts-{uuid.uuid4().hex[:10]}"
    url = f"{redis_url}?namespace={ns}"
    bus = open_bus(url)
    bus.create_topic(INPUT_TOPIC, 8)
    worker = subprocess.Popen(
        [sys.executable, "-m", "vtrade.cli", "worker", "exec", "--bus", url, "--data-dir", str(tmp_path),
         "--symbols", "SPY", "--snapshot-every", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        bus.publish_many(INPUT_TOPIC, [("SPY", Trade(i, i, "SPY", i, 10_000, 1)) for i in range(1, 21)])
        seen: dict[str, Any] = {}

        def caught_up() -> bool:
            out = _cli("status", "--bus", url, "--json")
            assert out.returncode == 0, out.stderr
            seen.update(json.loads(out.stdout))
            w = seen["workers"]
            return len(w) == 1 and w[0]["processed"] == 20 and w[0]["lag"] == 0 and w[0]["state"] == "ok"

        eventually(caught_up, what="vtrade status --json to show the worker caught up")
        [w] = seen["workers"]
        assert w["pid"] == worker.pid and w["kind"] == "exec"
        [spy] = [p for p in w["partitions"] if p["end"]]
        assert (spy["end"], spy["committed"], spy["snapshot"], spy["lag"]) == (20, 20, 20, 0)
        text = _cli("status", "--bus", url)
        assert text.returncode == 0 and text.stderr == ""
        lines = text.stdout.splitlines()
        assert lines[0].startswith(f"vtrade status · {url} · ")
        assert lines[1].split() == ["worker", "kind", "state", "host:pid", "up", "last", "beat", "processed", "rec/s",
                                    "lag", "partitions"]  # fmt: skip
        assert w["worker"] in lines[3] and " ok " in lines[3] and "exec.in[0-7]" in lines[3]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
        after = json.loads(_cli("status", "--bus", url, "--json").stdout)
        assert after["workers"][0]["state"] == "stopped"
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()
        bus.purge()  # type: ignore[attr-defined]
        bus.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("foo://x", "unknown bus URL 'foo://x'"),
        ("memory://", "a memory:// bus lives inside its process"),
        ("redis://127.0.0.1:PORT/0", "cannot use Redis at 127.0.0.1:PORT/0"),
        ("kafka://127.0.0.1:PORT", "cannot reach a Kafka broker at 127.0.0.1:PORT"),
        ("kafka://", "a Kafka bus URL is 'kafka://host:port"),
    ],
)
def test_vtrade_status_bad_or_unreachable_bus_is_one_clear_line_and_exit_2(url: str, message: str) -> None:
    port = str(free_port())  # nothing listens there
    out = _cli("status", "--bus", url.replace("PORT", port))
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("vtrade status: error: "), out.stderr
    assert message.replace("PORT", port) in out.stderr


def test_vtrade_status_needs_a_bus() -> None:
    out = _cli("status")
    assert out.returncode == 2 and "--bus" in out.stderr


# ---------------------------------------------------------------------------------------------- /admin


def test_the_admin_page_shows_the_served_markets_worker_and_groups(
    tmp_path: Path, eventually: Callable[..., None], pulled_text: Callable[[str, str], str]
) -> None:
    from vtrade.ui.serve import serve_trader

    market = LiveMarket(LiveConfig(symbols=("AAPL", "XOM"), speed=50.0, seed=3, burn_in=20_000)).start()
    port = free_port()
    server = serve_trader(port=port, market=market, threaded=True, data_dir=tmp_path)
    try:
        url = f"http://localhost:{port}/admin"
        pages: list[str] = []

        def loaded() -> bool:
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=10) as resp:
                pages.append(resp.read().decode())
            return bool(pages)

        eventually(loaded, what="the server to serve /admin")
        assert "<title>vtrade · admin</title>" in pages[0]
        text = pulled_text(url, "vt-admin")
        # The embedded execution worker's heartbeat, and the market's three groups with their lag.
        assert "<td>exec:live:" in text and "<td>ok</td>" in text and "exec.in[0-7]" in text
        for group, topic in (("live", "exec.in"), ("live-broker", "orders"), ("live-views", "exec")):
            assert f"<td>{group}</td><td>{topic}</td>" in text
        # The embedded worker's state is in the market's checkpoints: no snapshot offsets of its own.
        live_rows = re.findall(r"<tr><td>live</td><td>exec\.in</td>(.*?)</tr>", text)
        assert len(live_rows) == 8 and all(re.findall(r"<td[^>]*>([^<]*)</td>", r)[4] == "—" for r in live_rows)
        assert not [a for a in market.leaderboard().index if a.startswith("trader-")]  # /admin opened no account
    finally:
        server.stop()
        market.stop()


def test_the_admin_page_in_a_browser_at_desktop_and_phone_widths() -> None:
    """Chromium renders the live table without asking the internet for anything, and on a phone the
    wide tables scroll inside their box instead of widening the page (screenshots in test-output/)."""
    from playwright.sync_api import sync_playwright

    from vtrade.ui.serve import serve_trader

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    market = LiveMarket(LiveConfig(symbols=("AAPL", "XOM"), speed=50.0, seed=3, burn_in=20_000)).start()
    port = free_port()
    server = serve_trader(port=port, address="127.0.0.1", market=market, threaded=True,
                          websocket_origin=f"127.0.0.1:{port}")  # fmt: skip
    external: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--headless=new", "--no-sandbox",
                                                                        "--disable-gpu"])  # fmt: skip
            for width in (1440, 390):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.on("request", lambda r: None if urllib.parse.urlsplit(r.url).hostname in (None, "127.0.0.1")
                        else external.append(r.url))  # fmt: skip
                page.goto(f"http://127.0.0.1:{port}/admin", timeout=60_000)
                page.get_by_text("exec:live:").first.wait_for(timeout=60_000)
                page.get_by_text("live-broker").first.wait_for(timeout=60_000)
                page.screenshot(path=str(out / f"admin-{width}.png"))
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                page.close()
            browser.close()
    finally:
        server.stop()
        market.stop()
    assert external == []
    [w] = StatusReader(market.bus).table().workers
    assert w.state == "stopped"  # a market stopped on purpose says so: not stale


def test_admin_state_of_a_market_with_remote_execution_shows_the_workers_group(
    redis_url: str, tmp_path: Path, eventually: Callable[..., None]
) -> None:
    """``vtrade serve --bus``: the market's exchanges run in execution workers of group ``exec``;
    its /admin shows them beside the market's own mirror and groups."""
    from vtrade.runtime.live import engine_configs_of
    from vtrade.ui.admin import AdminState, status_html

    url = f"{redis_url}?namespace=vts-{uuid.uuid4().hex[:10]}"
    config = LiveConfig(symbols=("AAPL", "XOM"), speed=50.0, seed=3, burn_in=20_000)
    worker_bus = open_bus(url)
    with running(lambda stop: run_exec_worker(worker_bus, tmp_path, engine_configs_of(config), stop=stop,
                                              session_timeout_s=2.0)):  # fmt: skip
        market = LiveMarket(config, bus=open_bus(url), execution="remote").start()
        try:
            state = AdminState(market.bus, market.consumer_groups)

            def both_beat() -> bool:
                state.refresh()
                kinds = {w.kind: w for w in state.table.workers if w.state == "ok"}
                return {"exec", "mirror"} <= set(kinds) and kinds["exec"].processed > 0

            eventually(both_beat, what="heartbeats of the execution worker and the market's mirror")
            assert state.error == ""
            groups = {(g.group, g.topic) for g in state.table.groups}
            expected = {("exec", "exec.in"), ("live", "exec.in"), ("live-broker", "orders"), ("live-views", "exec")}
            assert expected <= groups
            [worker] = [w for w in state.table.workers if w.kind == "exec"]
            owned = [g for g in state.table.groups if g.group == "exec"]
            assert len(owned) == 8 and all(g.owner == worker.worker for g in owned)
            assert "<td>mirror</td>" in status_html(state.table)
        finally:
            market.close()
    market.bus.close()
    worker_bus.purge()  # type: ignore[attr-defined]  # once the worker has left
    worker_bus.close()
