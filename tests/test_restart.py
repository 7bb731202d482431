"""Restart test (issue 10, "Done means"): a real browser trades on ``vtrade serve --data-dir``, the
server is stopped (SIGTERM; in a second run SIGKILL) and started again on the same data dir, and the
SAME browser (its cookies kept) reloads the page and finds its account, its orders (the filled one
and the resting one), its fills and its NAV history from before the restart.

What the page shows is read from the page itself: the texts a person reads (account name, order
ids) and the data behind the blotter and NAV chart, from the page's Bokeh document. The server is
the real command line in a subprocess, so the stop is a real process death.

Screenshots before and after the restart: ``/tmp/restart-<signal>-before.png`` / ``-after.png``.

The same browser also finds its account on either server of a market shared by two (``vtrade up
--ui-processes 2`` on Redis, issue 15): an order sent through one shows, filled or resting, on the
other, and the other way round. Screenshots: ``/tmp/shared-server-{1,2}.png``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from vtrade.runtime.localhost import free_port, free_ports

ROOT = Path(__file__).resolve().parent.parent
# The headless Chromium of tests/test_browser.py, with its flags (root, offline, no throttling).
# (Test files are imported by path, not as a package: the few lines are repeated, not imported.)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows"]  # fmt: skip
STARTUP_S = 120.0  # the synthetic market starts in seconds; CI is loaded
WAIT_MS = 60_000




def _answers(url: str) -> bool:
    try:
        # The icon, not the page: a page load without a cookie would open an account (a first visit).
        with urllib.request.urlopen(url.replace("/trader", "/favicon.ico"), timeout=5) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


@contextlib.contextmanager
def _server(data: Path, port: int, log: Path, eventually: Callable[..., None], *, command: tuple[str, ...] = ("serve",),
            servers: int = 1) -> Iterator[subprocess.Popen[str]]:  # fmt: skip
    """``vtrade serve`` (or ``command``, serving on ``servers`` ports from ``port``) on the
    synthetic market (starts in seconds) with ``--data-dir data``, until every port answers;
    yields the process. Stopped on the way out if the test left it running."""
    args = [*command, "--market", "synthetic", "--data-dir", str(data), "--port", str(port), "--address", "127.0.0.1"]
    with log.open("a") as out:
        proc = subprocess.Popen([sys.executable, "-m", "vtrade.cli", *args], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, text=True, env=_env())  # fmt: skip

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{log.read_text()[-3000:]}", pytrace=False)
        return all(_answers(f"http://127.0.0.1:{p}/trader") for p in range(port, port + servers))

    try:
        eventually(up, STARTUP_S, "the server to answer")
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()  # `vtrade up` stops its processes (a kill would leave them running)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait(30)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Chromium is needed for the restart test: apt-get install chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


#: The data behind the page's tables and NAV chart, read from its Bokeh document: the columns of
#: every data source that has one of the columns asked for.
_SOURCES_JS = """(wanted) => {
  const found = [];
  for (const doc of window.Bokeh.documents) {
    for (const m of doc.all_models) {
      const data = m.data;
      if (data == null || typeof data !== "object") continue;
      const cols = data instanceof Map ? Object.fromEntries(data) : data;
      if (!wanted.some((c) => c in cols)) continue;
      const plain = {};
      for (const [k, v] of Object.entries(cols)) plain[k] = Array.from(v ?? []);
      found.push(plain);
    }
  }
  return found;
}"""


def _sources(page: Page, *columns: str, without: str | None = None) -> list[dict[str, list[Any]]]:
    """The page's data sources that have all ``columns`` (and not ``without``)."""
    found: list[dict[str, list[Any]]] = page.evaluate(_SOURCES_JS, list(columns))
    return [s for s in found if all(c in s for c in columns) and (without is None or without not in s)]


def _table_rows(page: Page, css: str) -> list[dict[str, str]]:
    """The rows of the dashboard's HTML table(s) ``css`` as {header: cell text} (hidden tabs too)."""
    tables: list[list[dict[str, str]]] = page.locator(css).evaluate_all(
        """els => els.map(el => {
             const heads = [...el.querySelectorAll('thead th')].map(th => th.textContent.trim());
             return [...el.querySelectorAll('tbody tr')].map(tr =>
               Object.fromEntries([...tr.cells].map((td, i) => [heads[i], td.textContent.trim()])));
           })"""
    )
    return [row for table in tables for row in table]


def _seen(page: Page) -> dict[str, Any]:
    """What the page shows of the account: its name, orders (id -> status), fill ids and NAV points."""
    label = page.get_by_text(re.compile(r"Your account: trader-\d+")).first
    label.wait_for(timeout=WAIT_MS)
    account = re.search(r"Your account: (trader-\d+)", label.inner_text())
    assert account is not None
    # The blotter's tables are HTML rendered on the server (its rows as people read them).
    orders = {row["Order"]: row["Status"] for row in _table_rows(page, ".vt-orders")}
    fills = {row["Fill"] for row in _table_rows(page, ".vt-fills")}
    nav = {ts: v for src in _sources(page, "ts", "nav") for ts, v in zip(src["ts"], src["nav"], strict=True)}
    return {"account": account.group(1), "orders": orders, "fills": fills, "nav": nav}


def type_into(page: Page, label: str, text: str) -> None:
    box = page.get_by_label(label)
    box.fill(text)
    box.press("Enter")


def confirm(page: Page, preview: str) -> None:
    """Click confirm once the ticket shows ``preview``: the inputs have reached the server."""
    page.get_by_text(preview).first.wait_for(timeout=WAIT_MS)
    page.get_by_role("button", name="Confirm order").click()


def _open(page: Page, url: str) -> None:
    page.goto(url, timeout=WAIT_MS)
    page.get_by_text("Confirm order").wait_for(timeout=WAIT_MS)
    page.get_by_label(re.compile("Focus")).select_option("AAPL")  # the ticket follows the focus
    page.get_by_text("AAPL depth").wait_for(timeout=WAIT_MS)


def _sent(page: Page, earlier: tuple[str, ...] = ()) -> str:
    """The id of the order the ticket just sent: the order the blotter lists besides the
    ``earlier`` ones, once it does (the blotter is the page's record of what was sent)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        new = [o for o in (row["Order"] for row in _table_rows(page, ".vt-orders")) if o not in earlier]
        if new:
            assert len(new) == 1, new
            return new[0]
        assert time.monotonic() < deadline, f"no order besides {earlier} in the blotter"
        page.wait_for_timeout(200)  # the blotter refreshes twice a second


def _buy_one_filled_one_resting(page: Page) -> tuple[str, str]:
    """A marketable buy of 10 AAPL, which fills, and a GTC bid of 5 far below the market, which
    rests, sent through the ticket; returns their order ids."""
    page.get_by_label("Type").select_option("market")
    type_into(page, "Quantity (shares)", "10")
    confirm(page, "BUY 10 shares AAPL")
    filled = _sent(page)
    page.get_by_label("Type").select_option("limit")
    # A new limit starts at the touch: type over it only once it is there.
    box = page.get_by_label("Limit price ($)")
    expect(box).to_be_enabled(timeout=WAIT_MS)
    expect(box).not_to_have_value("", timeout=WAIT_MS)
    type_into(page, "Quantity (shares)", "5")
    type_into(page, "Limit price ($)", "100.00")
    page.get_by_label("Time in force").select_option("gtc")
    page.locator(".vt-preview").filter(has_text="BUY 5 shares AAPL").filter(has_text="rests in the book").wait_for(
        timeout=WAIT_MS)  # fmt: skip
    confirm(page, "BUY 5 shares AAPL")
    return filled, _sent(page, (filled,))


def _has_all_of(now: dict[str, Any], before: dict[str, Any], filled: str, resting: str) -> bool:
    """``now`` shows the filled order, the still-resting one, every fill and every NAV point of ``before``."""
    return (now["orders"].get(filled) == "filled" and now["orders"].get(resting) == "accepted"
            and before["fills"] <= now["fills"] and before["nav"].items() <= now["nav"].items())  # fmt: skip


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_the_same_browser_gets_its_account_orders_fills_and_nav_back_after_a_restart(
    stop: signal.Signals, tmp_path: Path, browser: Browser, eventually: Callable[..., None]
) -> None:
    data, log, port = tmp_path / "data", tmp_path / "serve.log", free_port()
    url = f"http://127.0.0.1:{port}/trader"
    name = stop.name.lower()
    context = browser.new_context(viewport={"width": 1600, "height": 2000})  # desktop width
    page = context.new_page()
    with _server(data, port, log, eventually) as proc:
        _open(page, url)
        filled, resting = _buy_one_filled_one_resting(page)
        for coid in (filled, resting):  # the blotter lists both (a visible cell: an order id also
            # names a hidden <option> of the open-orders select, which may come first in the page)
            page.get_by_text(coid, exact=True).filter(visible=True).first.wait_for(timeout=WAIT_MS)

        def traded() -> dict[str, Any] | None:
            seen = _seen(page)
            ok = (seen["orders"].get(filled) == "filled" and seen["orders"].get(resting) == "accepted"
                  and seen["fills"] and len(seen["nav"]) >= 3)  # fmt: skip
            return seen if ok else None

        eventually(traded, 90, "the fill, the resting order and a few NAV points on the page")
        before = traded()
        assert before is not None
        assert _has_all_of(_seen(page), before, filled, resting)  # the check used after the restart can pass
        page.screenshot(path=f"/tmp/restart-{name}-before.png", full_page=True)
        proc.send_signal(stop)
        proc.wait(60)
    if stop == signal.SIGTERM:
        assert proc.returncode == 0, log.read_text()[-3000:]  # a clean stop, not a crash
    assert "vtrade: data in " + str(data.resolve()) in log.read_text().splitlines()[0]  # the first line

    with _server(data, port, log, eventually):
        page.reload(timeout=WAIT_MS)  # the same browser context: it still has its cookie
        page.get_by_text("Confirm order").wait_for(timeout=WAIT_MS)
        after = _seen(page)
        # The account comes back: the signed cookie names it (works today).
        assert after["account"] == before["account"], (before["account"], after["account"])

        # --- From here the test waits on the durable LiveMarket (issue 10 item 4): without it the
        # market restarts empty, the account is reopened under its name with no orders. ---
        try:
            eventually(lambda: _has_all_of(_seen(page), before, filled, resting), 45,
                       "the orders, fills and NAV history from before the restart")  # fmt: skip
        finally:
            page.screenshot(path=f"/tmp/restart-{name}-after.png", full_page=True)
        after = _seen(page)
        assert after["orders"][filled] == "filled" and after["orders"][resting] == "accepted", after["orders"]
        assert before["fills"] <= after["fills"]
        assert before["nav"].items() <= after["nav"].items()
        page.get_by_text(resting, exact=True).filter(visible=True).first.wait_for(timeout=WAIT_MS)  # shown too
    context.close()


def test_the_same_browser_sees_its_account_on_either_server_of_a_shared_market(
    tmp_path: Path, browser: Browser, eventually: Callable[..., None], redis_url: str
) -> None:
    data, log, port = tmp_path / "data", tmp_path / "up.log", free_ports(2)
    bus = f"{redis_url}?namespace=ui-{uuid.uuid4().hex[:10]}"
    command = ("up", "--bus", bus, "--ui-processes", "2", "--execution-workers", "1")
    context = browser.new_context(viewport={"width": 1600, "height": 2000})
    one, two = context.new_page(), context.new_page()
    with _server(data, port, log, eventually, command=command, servers=2):
        # Server 1 gives the browser its account; a fill and a resting order go through it.
        _open(one, f"http://127.0.0.1:{port}/trader")
        filled, resting = _buy_one_filled_one_resting(one)

        def traded(page: Page) -> dict[str, Any] | None:
            seen = _seen(page)
            ok = seen["orders"].get(filled) == "filled" and seen["orders"].get(resting) == "accepted" and seen["fills"]
            return seen if ok else None

        eventually(lambda: traded(one), 90, "the fill and the resting order on server 1")
        before = traded(one)
        assert before is not None
        # The same browser (its cookie) on server 2: the same account, its orders, fills and NAV.
        _open(two, f"http://127.0.0.1:{port + 1}/trader")
        eventually(lambda: _has_all_of(_seen(two), before, filled, resting), 90,
                   "server 2 to show the orders, fills and NAV from server 1")  # fmt: skip
        assert _seen(two)["account"] == before["account"]
        # And back: a buy through server 2 shows filled on server 1.
        two.get_by_label("Type").select_option("market")
        type_into(two, "Quantity (shares)", "4")
        confirm(two, "BUY 4 shares AAPL")
        bought = _sent(two, (filled, resting))
        eventually(lambda: _seen(one)["orders"].get(bought) == "filled", 90, "server 1 to show the order from 2")
        for i, page in enumerate((one, two), 1):
            page.screenshot(path=f"/tmp/shared-server-{i}.png", full_page=True)
        eventually(lambda: _seen(one)["orders"] == _seen(two)["orders"], 30, "both servers to list the same orders")
    context.close()
    text = log.read_text()
    assert "[market] vtrade: this market worker paces the market" in text, text[-3000:]
    assert "[serve-1] vtrade: joined the market on" in text and "[serve-2] vtrade: joined the market on" in text
