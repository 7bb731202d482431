"""Every option of ``vtrade serve`` / ``vtrade demo`` runs once, through the real command line in
a subprocess: the server comes up on the asked port and address, and what the options change is
checked where it shows (the startup lines, the dashboard's clock badge, the browser ``--show``
opens, the terminal ladder's depth). Bad input exits with code 2 and a message naming the option,
before anything starts."""

from __future__ import annotations

import contextlib
import gzip
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vtrade.runtime.localhost import free_port

ROOT = Path(__file__).resolve().parent.parent
USDM = ROOT / "data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"
STARTUP_S = 120.0  # the demo market loads 500 stocks, and CI is loaded


@pytest.fixture(autouse=True)
def _own_default_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default data dir ($VTRADE_STATE_DIR) of every server these tests start: never the
    developer's own ~/.local/share/vtrade."""
    folder = tmp_path / "default-data"
    monkeypatch.setenv("VTRADE_STATE_DIR", str(folder))
    return folder




def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120", **extra}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "vtrade.cli", *args]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


@contextlib.contextmanager
def _served(args: list[str], log: Path, eventually: Callable[..., None], **env: str) -> Iterator[str]:
    """Run ``vtrade`` with ``args`` until it serves /trader; yield the URL; terminate it after."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/trader"
    with log.open("w") as out:
        proc = subprocess.Popen(
            _cli(*args, "--port", str(port), "--address", "127.0.0.1"),
            cwd=ROOT, env=_env(**env), stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

        def up() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}:\n{log.read_text()[-3000:]}", pytrace=False)
            return _answers(url)

        try:
            eventually(up, STARTUP_S, f"{url} to answer 200")
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return str(resp.read().decode())


def test_synthetic_market_with_speed_seed_queue_and_show(
    tmp_path: Path, eventually: Callable[..., None], pulled_text: Callable[[str, str], str]
) -> None:
    """``--market synthetic --speed 0 --seed 3 --queue prob --show``: ``--show`` opens the URL in
    ``$BROWSER`` (here a script that records it), and the badge shows max speed and the prob queue."""
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" >> "{opened}"\n')
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "serve.log"
    args = ["serve", "--market", "synthetic", "--speed", "0", "--seed", "3", "--queue", "prob", "--show", "--ephemeral"]
    with _served(args, log, eventually, BROWSER=str(browser)) as url:
        assert _set_cookie(url) is None  # --ephemeral: every page load a new account, no cookie
        assert "<title>vtrade · trader</title>" in _page(url)
        badge = pulled_text(url, "vt-clock")
        assert "max speed" in badge and "prob queue" in badge and "realism L2" in badge, badge
        eventually(lambda: opened.exists() and opened.read_text().strip(), 30, "--show to open a browser")
        assert ":" in opened.read_text() and "127.0.0.1" in opened.read_text()  # bokeh opens the server's address
        assert _answers(url)  # opening the browser did not stop the server
    lines = log.read_text().splitlines()
    assert lines[0] == "vtrade: ephemeral: nothing is kept (accounts, orders and fills end with the server)"
    assert "vtrade: starting the synthetic market…" in lines
    assert f"vtrade: trader dashboard at {url}" in lines
    assert not Path(os.environ["VTRADE_STATE_DIR"]).exists()  # nothing written anywhere


def test_synthetic_market_defaults_show_on_the_badge(
    tmp_path: Path, eventually: Callable[..., None], _own_default_data_dir: Path,
    pulled_text: Callable[[str, str], str],
) -> None:
    """Without the options the badge differs (so the test above can fail): 20× and risk-averse;
    the data is kept in the default data dir ($VTRADE_STATE_DIR here), and a page sets a cookie."""
    log = tmp_path / "serve.log"
    with _served(["serve", "--market", "synthetic"], log, eventually) as url:
        badge = pulled_text(url, "vt-clock")
        assert "20×" in badge and "risk-averse queue" in badge, badge
        cookie = _set_cookie(url)
        assert cookie is not None and cookie.startswith("vtrade_account=") and "HttpOnly" in cookie
    assert log.read_text().splitlines()[0] == f"vtrade: data in {_own_default_data_dir} (kept across restarts)"
    assert (_own_default_data_dir / "cookie-secret").stat().st_mode & 0o777 == 0o600


def _set_cookie(url: str) -> str | None:
    """The Set-Cookie header a first page load (no cookie) gets."""
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.headers.get("Set-Cookie")


def test_demo_serves_the_demo_market(
    tmp_path: Path, eventually: Callable[..., None], pulled_text: Callable[[str, str], str]
) -> None:
    """``vtrade demo`` (default ``--market demo``) at ``--speed 50`` with ``--data-dir``: a missing
    directory is created (parents too) and named on the first line."""
    log, data = tmp_path / "demo.log", tmp_path / "class" / "data"
    with _served(["demo", "--speed", "50", "--data-dir", str(data)], log, eventually) as url:
        assert "<title>vtrade · trader</title>" in _page(url)
        badge = pulled_text(url, "vt-clock")
        assert "50×" in badge and "risk-averse queue" in badge, badge
        assert _set_cookie(url) is not None
    lines = log.read_text().splitlines()
    assert lines[0] == f"vtrade: data in {data.resolve()} (kept across restarts)"
    assert "vtrade: starting the demo market…" in lines
    assert (data / "cookie-secret").exists()


def test_demo_terminal_replays_a_file_with_the_asked_depth(tmp_path: Path) -> None:
    """``vtrade demo --terminal --file F --levels 5 --speed 0`` replays F to its end and exits 0;
    the ladder has 5 levels a side (each a row with a size bar)."""
    short = tmp_path / "short.jsonl.gz"
    with gzip.open(USDM, "rt") as fin, gzip.open(short, "wt") as fout:
        for _, line in zip(range(2000), fin, strict=False):
            fout.write(line)
    proc = subprocess.run(
        _cli("demo", "--terminal", "--file", str(short), "--levels", "5", "--speed", "0"),
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "BTCUSDT" in out and "speed max" in out and "depth" in out and "bid size" in out
    assert sum("█" in line for line in out.splitlines()) == 10, out  # 5 asks + 5 bids
    assert "replay summary: BTCUSDT" in out and "sequence gaps / crossed books" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--port", "0"], "--port must be 1-65535, got 0"),
        (["serve", "--port", "70000"], "--port must be 1-65535, got 70000"),
        (["serve", "--speed", "-1"], "argument --speed: must be a finite number >= 0"),
        (["serve", "--speed", "nan"], "argument --speed: must be a finite number >= 0"),
        (["serve", "--queue", "fifo"], "argument --queue: invalid choice: 'fifo'"),
        (["serve", "--market", "nope"], "argument --market: invalid choice: 'nope'"),
        (["demo", "--port", "0"], "--port must be 1-65535, got 0"),
        (["demo", "--terminal", "--speed", "-1"], "argument --speed: must be a finite number >= 0"),
        (["demo", "--terminal", "--levels", "0"], "argument --levels: must be at least 1"),
        (["serve", "--data-dir", "x", "--ephemeral"], "argument --ephemeral: not allowed with argument --data-dir"),
        (["demo", "--data-dir", "/sys/vtrade-data"], "--data-dir: '/sys/vtrade-data' cannot be created"),
        (["serve", "--ephemeral", "--leaderboards", "http://x"], "--leaderboards: expected a redis:// URL"),
        (["serve", "--ephemeral", "--leaderboards", "redis://127.0.0.1:1/0"],
         "--leaderboards: cannot reach Redis at redis://127.0.0.1:1/0"),
    ],
)
def test_bad_input_exits_2_naming_the_option(args: list[str], message: str) -> None:
    proc = subprocess.run(_cli(*args), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert f"vtrade {args[0]}: error: " in proc.stderr and message in proc.stderr, proc.stderr
    assert "starting" not in proc.stdout and "dashboard at" not in proc.stdout  # nothing started
    assert "Traceback" not in proc.stderr


def test_a_data_dir_that_is_a_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    """``--data-dir FILE``, and a default data dir that is a file (then the message says how to
    choose another): exit 2 naming the option, the file unchanged, nothing started."""
    afile = tmp_path / "notes.txt"
    afile.write_text("keep me")
    for args, env, hint in ((["serve", "--data-dir", str(afile)], {}, False),
                            (["serve"], {"VTRADE_STATE_DIR": str(afile)}, True)):  # fmt: skip
        proc = subprocess.run(_cli(*args), cwd=ROOT, env=_env(**env), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        assert f"vtrade serve: error: --data-dir: '{afile}' is a file, not a directory" in proc.stderr, proc.stderr
        assert ("choose one with --data-dir DIR or use --ephemeral" in proc.stderr) == hint, proc.stderr
        assert "starting" not in proc.stdout and "Traceback" not in proc.stderr
        assert afile.read_text() == "keep me"
