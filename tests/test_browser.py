"""The served trader dashboard in a real headless Chromium (Debian's package, driven by
Playwright with an explicit executable path): load, refuse bad ticket input next to the field,
place an order and see it fill in the blotter with the NAV changing, keep two browser sessions
apart, and save a screenshot under ``test-output/``."""

from __future__ import annotations

import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from vtrade.runtime.live import LiveConfig, LiveMarket
from vtrade.ui.serve import serve_trader, url_for

OUT = Path(__file__).resolve().parent.parent / "test-output"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What a root, headless, offline Chromium needs (no sandbox; no calls home that would be refused),
# and no throttling of the page that is not in front: the test drives two sessions at once.
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows"]  # fmt: skip


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, LiveMarket]]:
    assert Path(CHROMIUM).exists(), "Chromium is needed for the browser test: apt-get install chromium"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    market = LiveMarket(LiveConfig.demo(speed=50)).start()
    server = serve_trader(port=port, address="127.0.0.1", market=market, threaded=True,
                          websocket_origin=f"127.0.0.1:{port}")  # fmt: skip
    try:
        yield url_for("127.0.0.1", port), market
    finally:
        server.stop()
        market.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_dashboard(browser: Browser, url: str) -> tuple[Page, str]:
    # Tall enough that the whole dashboard is in view: the screenshot shows every panel.
    page = browser.new_context(viewport={"width": 1600, "height": 2000}).new_page()
    page.goto(url, timeout=60_000)
    page.get_by_text("Confirm order").wait_for(timeout=60_000)
    label = page.get_by_text(re.compile(r"Your account: trader-\d+")).first
    label.wait_for(timeout=60_000)  # rendered in full, not just its first words
    account = re.search(r"Your account: (trader-\d+)", label.inner_text())
    assert account is not None, label.inner_text()
    page.get_by_label(re.compile("Focus")).select_option("AAPL")  # the ticket follows the focus
    page.get_by_text("AAPL depth").wait_for(timeout=30_000)
    return page, account.group(1)


def type_into(page: Page, label: str, text: str) -> None:
    box = page.get_by_label(label)
    box.fill(text)
    box.press("Enter")


def confirm(page: Page, preview: str) -> None:
    """Click confirm once the ticket shows ``preview``: the inputs have reached the server."""
    page.get_by_text(preview).first.wait_for(timeout=45_000)
    page.get_by_role("button", name="Confirm order").click()


def wait_until(check, timeout: float = 45.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out waiting for the dashboard"
        time.sleep(0.25)


def test_trade_from_the_browser(served: tuple[str, LiveMarket], browser: Browser) -> None:
    url, market = served
    page, account = open_dashboard(browser, url)
    nav_before = market.portfolio(account)["summary"]["nav"]

    # Bad input: the reason shows next to the field and nothing is sent.
    for bad, reason in (("0", "positive"), ("-5", "positive"), ("nan", "number"), ("2.5", "lot")):
        type_into(page, "Quantity (shares)", bad)
        page.get_by_text(re.compile("⚠.*" + reason, re.IGNORECASE)).wait_for(timeout=15_000)
        page.get_by_role("button", name="Confirm order").click()
        page.get_by_text("Not sent").wait_for(timeout=15_000)
    page.get_by_label("Type").select_option("limit")
    type_into(page, "Quantity (shares)", "10")
    type_into(page, "Limit price ($)", "173.005")
    page.get_by_text(re.compile("⚠.*tick", re.IGNORECASE)).wait_for(timeout=15_000)
    assert market.orders(account).empty

    # A marketable order fills: the blotter shows the fill and the NAV moves (fees at least).
    page.get_by_label("Type").select_option("market")
    type_into(page, "Quantity (shares)", "10")
    confirm(page, "buy 10 AAPL")
    wait_until(lambda: not market.fills(account).empty)
    page.get_by_text(re.compile(r"Sent \S+")).wait_for(timeout=45_000)
    fill_id = str(market.fills(account).iloc[0]["fill_id"])
    page.get_by_text("Fills", exact=True).click()  # the receipts are one tab away, as for a user
    page.get_by_text(fill_id).first.wait_for(timeout=45_000)
    wait_until(lambda: market.portfolio(account)["summary"]["nav"] != nav_before)
    page.get_by_text("Information Technology").first.wait_for(timeout=30_000)  # the sector allocation
    shown = market.clock()["elapsed_s"]  # let the ladder and chart move once more before the picture
    wait_until(lambda: market.clock()["elapsed_s"] > shown + 60)
    OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUT / "trader-dashboard.png"), full_page=True)
    assert (OUT / "trader-dashboard.png").stat().st_size > 50_000
    page.context.close()


def test_two_browser_sessions_cannot_see_or_cancel_each_others_orders(
    served: tuple[str, LiveMarket], browser: Browser
) -> None:
    url, market = served
    page_a, a = open_dashboard(browser, url)
    page_b, b = open_dashboard(browser, url)
    assert a != b
    # A rests a bid far below the market.
    page_a.bring_to_front()
    page_a.get_by_label("Type").select_option("limit")
    type_into(page_a, "Quantity (shares)", "5")
    type_into(page_a, "Limit price ($)", "100.00")
    page_a.get_by_label("Time in force").select_option("gtc")
    confirm(page_a, "buy 5 AAPL")
    wait_until(lambda: not market.orders(a).empty)
    page_a.get_by_text(re.compile(r"Sent \S+")).wait_for(timeout=45_000)
    coid = str(market.orders(a).iloc[0]["client_order_id"])
    page_a.get_by_text(coid).first.wait_for(timeout=30_000)
    page_b.bring_to_front()
    time.sleep(1.5)  # B's view refreshes at 2 Hz: give it a few chances to leak
    assert page_b.get_by_text(coid).count() == 0
    assert market.orders(b).empty
    refused = market.cancel(b, coid)
    assert not refused.ok and refused.code == "unknown_order" and "no order" in refused.reason
    assert coid in set(market.orders(a).client_order_id)
    page_a.context.close()
    page_b.context.close()
