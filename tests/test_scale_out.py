"""Issue 15: the live market scaled out. The same seeded session with the same scripted orders
gives the same execution log (hash) and fills on memory, Redis and Kafka, with its exchanges
in-process and in ``vtrade worker execution`` processes, one of which joins mid-session (the
group moves partitions to it); ``vtrade up`` brings a market up as supervised processes,
restarts a killed worker, and stops everything together.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import pandas as pd
import pytest

from vtrade.cli import main
from vtrade.core.events import BookSnapshot
from vtrade.runtime.bus import Bus, open_bus
from vtrade.runtime.execution_worker import INPUT_TOPIC, OUTPUT_TOPIC, output_hash
from vtrade.runtime.live import LiveConfig, LiveMarket, engine_configs_of, market_fingerprint
from vtrade.runtime.live_log import ENTRIES, EXEC_GROUP, ExecutionUnavailable, LiveLog, claim_pace
from vtrade.runtime.localhost import free_ports

ROOT = Path(__file__).resolve().parent.parent
SEED = 11
# What `--market synthetic --seed 11` names: the workers build their exchanges from these flags.
CONFIG = LiveConfig(speed=0, seed=SEED)
MARKET_FLAGS = ["--market", "synthetic", "--seed", str(SEED)]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


class LineProcess:
    """A ``vtrade`` subprocess whose output lines a thread collects."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "vtrade.cli", *argv], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=ENV, text=True)  # fmt: skip
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=90)
        self.reader.join(timeout=30)
        return code


def execution_worker(url: str, data_dir: Path) -> LineProcess:
    return LineProcess(["worker", "execution", "--bus", url, *MARKET_FLAGS, "--data-dir", str(data_dir),
                        "--session-timeout", "2", "--progress"])  # fmt: skip


def script(m: LiveMarket, during: Callable[[int], None] = lambda i: None) -> None:
    """The scripted session: two people trading the four synthetic stocks, market and limit."""
    m.open_account("ada", cash=100_000)
    m.open_account("bob", cash=50_000)
    symbols = m.symbols()
    for i in range(12):
        during(i)
        m.advance(3)
        symbol = symbols[i % len(symbols)]
        m.submit("ada", symbol, "buy" if i % 3 else "sell", 5 + i)
        if i % 4 == 1:
            bid = float(m.quotes([symbol]).bid[0])
            m.submit("bob", symbol, "buy", 7, "limit", round(bid - 0.02, 2))
    m.advance(20)


def outcome(m: LiveMarket) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    return output_hash(m._log.bus, OUTPUT_TOPIC), m.fills("ada"), m.fills("bob")


@pytest.fixture(scope="module")
def reference() -> tuple[str, pd.DataFrame, pd.DataFrame]:
    m = LiveMarket(CONFIG, keep_log=True)
    script(m)
    out = outcome(m)
    m.close()
    assert len(out[1]) > 5 and len(out[2]) > 0, "the script must trade, or the comparison proves nothing"
    return out


def bus_url(request: pytest.FixtureRequest, transport: str) -> str:
    ns = f"scale-{uuid.uuid4().hex[:10]}"
    base = request.getfixturevalue("redis_url" if transport == "redis" else "kafka_url")
    return f"{base}?namespace={ns}"


def same(run: tuple[str, pd.DataFrame, pd.DataFrame], reference: tuple[str, pd.DataFrame, pd.DataFrame]) -> None:
    assert run[0] == reference[0]
    pd.testing.assert_frame_equal(run[1], reference[1])
    pd.testing.assert_frame_equal(run[2], reference[2])


@pytest.fixture(params=["redis", "kafka"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_session_is_the_same_in_process_on_every_transport(
    request: pytest.FixtureRequest, transport: str, reference: tuple[str, pd.DataFrame, pd.DataFrame]
) -> None:
    bus = open_bus(bus_url(request, transport))
    m = LiveMarket(CONFIG, bus=bus)
    script(m)
    same(outcome(m), reference)
    m.close()
    bus.close()


def test_the_session_is_the_same_with_worker_processes_and_one_joining_midway(
    request: pytest.FixtureRequest,
    transport: str,
    reference: tuple[str, pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
    eventually: Callable[..., None],
) -> None:
    url = bus_url(request, transport)
    bus = open_bus(url)
    first = execution_worker(url, tmp_path / "w1")
    workers = [first]

    def join_at_half(i: int) -> None:
        if i == 6:  # a second worker joins; the group moves partitions to it mid-session
            workers.append(execution_worker(url, tmp_path / "w2"))
            # (Not waiting for it to work: no record comes while this script waits.)
            eventually(lambda: any(line.startswith("exec partitions ") and not line.endswith(" -")
                                   for line in workers[1].lines) or workers[1].proc.poll() is not None,
                       timeout_s=90, what="the joining worker to take partitions")  # fmt: skip

    try:
        m = LiveMarket(CONFIG, bus=bus, execution="remote")
        script(m, join_at_half)
        run = outcome(m)
        m.close()
    finally:
        codes = [w.stop() for w in workers]
    assert codes == [0, 0], [w.lines[-5:] for w in workers]
    same(run, reference)
    published = [int(line.split("published=")[1].split(",")[0]) for w in workers for line in w.lines
                 if "stopped cleanly" in line]  # fmt: skip
    assert len(published) == 2 and all(n > 0 for n in published), published  # both ran exchanges
    bus.close()


def test_a_market_waiting_for_absent_workers_says_what_to_start(redis_url: str) -> None:
    bus = open_bus(f"{redis_url}?namespace=scale-{uuid.uuid4().hex[:10]}")

    configs = engine_configs_of(CONFIG)
    log = LiveLog(bus, latency="5ms", seed=SEED, engine_config=configs.__getitem__, execution="remote",
                  remote_wait_s=0.5)  # fmt: skip
    symbol = sorted(configs)[0]
    opening = BookSnapshot(1, 1, symbol, 1, [10_000], [500], [10_001], [300])
    with pytest.raises(ExecutionUnavailable, match="vtrade worker execution"):
        log.pump(log.sequence_market([opening]))
    assert bus.group_offsets(EXEC_GROUP, INPUT_TOPIC) == [None] * bus.partitions(INPUT_TOPIC)
    with pytest.raises(ValueError, match="needs a bus"):
        LiveLog(None, latency="5ms", seed=SEED, engine_config=configs.__getitem__, execution="remote")
    with pytest.raises(ValueError, match="'embedded' or 'remote'"):
        LiveLog(bus, latency="5ms", seed=SEED, engine_config=configs.__getitem__, execution="elsewhere")  # type: ignore[arg-type]
    log.close()
    bus.close()


# ---------------------------------------------------------------------------------------------- vtrade up


def serves(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return int(r.status) == 200
    except OSError:  # not listening yet (the server names its address before it listens)
        return False


def test_vtrade_up_serves_restarts_a_killed_worker_or_server_and_stops_everything(
    request: pytest.FixtureRequest, transport: str, tmp_path: Path, eventually: Callable[..., None]
) -> None:
    url = bus_url(request, transport)
    port = free_ports(2)
    up = LineProcess(["up", "--bus", url, *MARKET_FLAGS, "--port", str(port), "--data-dir", str(tmp_path),
                      "--speed", "20", "--execution-workers", "2", "--ui-processes", "2"])  # fmt: skip
    answer = lambda: all(serves(f"http://localhost:{p}/trader") for p in (port, port + 1))  # noqa: E731
    try:
        eventually(lambda: up.saw("trader dashboard at") or up.proc.poll() is not None, timeout_s=120,
                   what="the server to come up")  # fmt: skip
        assert up.proc.poll() is None, up.lines[-20:]
        eventually(answer, timeout_s=120, what="/trader to answer on both servers")
        bus: Bus = open_bus(url)
        # The market runs on the log, its exchanges in both workers' processes.
        committed = lambda: sum(o or 0 for o in bus.group_offsets(EXEC_GROUP, INPUT_TOPIC))  # noqa: E731
        eventually(lambda: committed() > 100, timeout_s=60, what="the workers to handle the market")
        pids = {line.split()[2]: int(line.split("pid ")[1].split(":")[0]) for line in up.lines
                if line.startswith("vtrade up:") and " started, pid " in line}  # fmt: skip
        assert set(pids) == {"market", "execution-1", "execution-2", "serve-1", "serve-2"}
        # The market worker paces the market; both servers joined it.
        assert up.saw("[market] vtrade: this market worker paces the market"), up.lines[-20:]
        for server in ("serve-1", "serve-2"):
            assert up.saw(f"[{server}] vtrade: joined the market on"), up.lines[-20:]
        os.kill(pids["execution-1"], signal.SIGKILL)
        eventually(lambda: up.saw("execution-1 exited with -9; restarting it"), timeout_s=30, what="a restart")
        before = committed()
        eventually(lambda: committed() > before + 50, timeout_s=90, what="the market to go on after the restart")
        # The market worker dies: a server (or the restarted worker) finds it gone and paces on.
        ticks = lambda: bus.end_offsets(ENTRIES)[0]  # noqa: E731
        os.kill(pids["market"], signal.SIGKILL)
        eventually(lambda: up.saw("market exited with -9; restarting it"), timeout_s=30, what="a restart")
        eventually(lambda: up.saw("paces it from") or up.saw("resumed it from its log"), timeout_s=120,
                   what="a server to take the pacing over")  # fmt: skip
        before = ticks()
        eventually(lambda: ticks() > before + 40, timeout_s=120, what="the market to tick on")
        eventually(answer, timeout_s=120, what="both servers to answer again")
        bus.close()
    finally:
        code = up.stop()
    assert code == 0, up.lines[-20:]
    for role in ("serve-1", "serve-2", "market", "execution-1", "execution-2"):
        assert up.saw(f"vtrade up: {role} stopped (0)"), up.lines[-20:]
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["up", "--market", "synthetic"], "--bus: give the log the processes share"),
        (["up", "--bus", "memory://"], "is this process only"),
        (["up", "--bus", "redis://127.0.0.1:1/0"], "--bus:"),
        (["up", "--bus", "nats://x"], "unknown bus URL"),
        (["serve", "--bus", "memory://"], "is this process only"),
        (["worker", "execution", "--bus", "memory://", "--market", "nasdaq", "--data-dir", "D"], "invalid choice"),
        (["worker", "execution", "--bus", "memory://", "--market", "synthetic"], "needs --data-dir"),
        (["worker", "market", "--bus", "memory://", "--data-dir", "D"], "not --symbols or --data-dir"),
        (["worker", "market", "--bus", "memory://"], "is this process only"),
        (["serve", "--join", "--market", "synthetic"], "--join: give the --bus"),
        (["up", "--bus", "redis://127.0.0.1:1/0", "--join"], "`vtrade up` starts a market of its own"),
    ],
)
def test_bad_scale_out_input_exits_2_with_one_clear_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(tmp_path / "d") if a == "D" else a for a in argv]
    with pytest.raises(SystemExit) if "nasdaq" in argv else nullcontext():
        assert main([*argv, "--ephemeral"] if argv[0] in ("up", "serve") else argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_serve_refuses_a_bus_that_already_holds_a_market(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{redis_url}?namespace=scale-{uuid.uuid4().hex[:10]}"
    bus = open_bus(url)
    bus.create_topic(INPUT_TOPIC, 8)
    bus.publish(INPUT_TOPIC, "SPY", b"x")
    assert main(["serve", "--bus", url, "--market", "synthetic", "--ephemeral"]) == 2
    assert "already holds a market (1 record)" in capsys.readouterr().err
    assert bus.end_offsets(INPUT_TOPIC)[0:8] and sum(bus.end_offsets(INPUT_TOPIC)) == 1  # untouched
    bus.close()



def test_serve_refuses_to_join_a_shared_market_of_another_configuration(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{redis_url}?namespace=scale-{uuid.uuid4().hex[:10]}"
    bus = open_bus(url)
    assert claim_pace(bus, market_fingerprint(CONFIG))
    pacer = LiveMarket(CONFIG, bus=bus, role="pacer")
    pacer.advance(3)
    # Another seed is another market: refused, nothing written.
    assert main(["serve", "--bus", url, "--market", "synthetic", "--seed", str(SEED + 1), "--ephemeral"]) == 2
    err = capsys.readouterr().err
    assert "another market than this one" in err and "same --market, --seed and --queue" in err, err
    entries = [r.event for r in bus.read(ENTRIES, 0, 0, 100_000)]
    assert type(entries[0]).__name__ == "MarketOpened"
    assert [type(e).__name__ for e in entries[1:]] == ["SliceTick"] * 3
    bus.close()

