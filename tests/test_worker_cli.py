"""``vtrade worker``: bad input exits 2 with a clear message; SIGTERM checkpoints and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from vtrade.cli import main
from vtrade.core.events import BookSnapshot
from vtrade.runtime.bus import open_bus
from vtrade.runtime.execution_worker import INPUT_TOPIC, DuckDBSnapshotStore
from vtrade.runtime.workers import EXEC_SNAPSHOTS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["worker", "portfolio", "--bus", "memory://", "--symbols", "SPY"], "needs --symbols and --accounts"),
        (["worker", "portfolio", "--bus", "memory://", "--accounts", "ada"], "needs --symbols and --accounts"),
        (["worker", "exec", "--bus", "kafka9://x", "--symbols", "SPY"], "unknown bus URL"),
        (["worker", "exec", "--bus", "memory://", "--symbols", "SPY", "--session-timeout", "0"], "must be positive"),
        (["worker", "exec", "--bus", "memory://", "--symbols", "SPY", "--data-dir", "FILE"], "is a file"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    argv = [str(afile) if a == "FILE" else a for a in argv]
    if "--data-dir" not in argv:
        argv += ["--data-dir", str(tmp_path / "d")]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_sigterm_checkpoints_and_exits_cleanly(redis_url: str, tmp_path: Path) -> None:
    ns = f"vtw-{uuid.uuid4().hex[:10]}"
    bus = open_bus(redis_url, namespace=ns)
    bus.create_topic(INPUT_TOPIC, 8)
    bus.publish_many(INPUT_TOPIC, [("SPY", BookSnapshot(t, t, "SPY", t, [16764], [500], [16765], [300]))
                                   for t in range(1, 11)])  # fmt: skip
    args = [sys.executable, "-m", "vtrade.cli", "worker", "exec", "--bus", f"{redis_url}?namespace={ns}",
            "--data-dir", str(tmp_path), "--symbols", "SPY", "--progress"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "exec progress 10"  # it folded the ten records
    proc.send_signal(signal.SIGTERM)
    out = proc.stdout.read()
    assert proc.wait(timeout=60) == 0, out
    assert "stopped cleanly" in out
    with DuckDBSnapshotStore(tmp_path / EXEC_SNAPSHOTS) as store:
        partitions = store.partitions("exec", INPUT_TOPIC)
    assert list(partitions.values()) == [9]  # the checkpoint covers the last record
    bus.purge()  # type: ignore[attr-defined]
    bus.close()
