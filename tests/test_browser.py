"""The served trader dashboard in a real headless Chromium (Debian's package, driven by
Playwright with an explicit executable path): load, refuse bad ticket input next to the field,
place an order and see it fill in the blotter with the NAV changing, keep two browser sessions
apart, and save a screenshot under ``test-output/``; lay out without overlaps at a desktop, a
laptop and a phone width (screenshots kept), and trade 0.01 BTC with every view showing 0.010."""

from __future__ import annotations

import itertools
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

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


#: How long a browser action (fill, click, select) may wait for its element: a loaded 2-core CI
#: machine serving several sessions at 50x once needed more than Playwright's default 30 s.
ACTION_TIMEOUT_MS = 90_000


def open_dashboard(browser: Browser, url: str) -> tuple[Page, str]:
    # Tall enough that the whole dashboard is in view: the screenshot shows every panel.
    page = browser.new_context(viewport={"width": 1600, "height": 2000}).new_page()
    page.set_default_timeout(ACTION_TIMEOUT_MS)
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


def choose_limit(page: Page) -> None:
    """Make the ticket a limit order and wait until its price field is open and filled in with
    the touch (greyed out for a market order): text typed next is not overwritten by it."""
    page.get_by_label("Type").select_option("limit")
    box = page.get_by_label("Limit price ($)")
    expect(box).to_be_enabled(timeout=ACTION_TIMEOUT_MS)
    expect(box).not_to_have_value("", timeout=ACTION_TIMEOUT_MS)


def confirm(page: Page, preview: str) -> None:
    """Click confirm once the ticket shows ``preview``: the inputs have reached the server."""
    page.get_by_text(preview).first.wait_for(timeout=ACTION_TIMEOUT_MS)
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
    choose_limit(page)
    type_into(page, "Quantity (shares)", "10")
    type_into(page, "Limit price ($)", "173.005")
    page.get_by_text(re.compile("⚠.*tick", re.IGNORECASE)).wait_for(timeout=15_000)
    assert market.orders(account).empty

    # A marketable order fills: the blotter shows the fill and the NAV moves (fees at least).
    page.get_by_label("Type").select_option("market")
    type_into(page, "Quantity (shares)", "10")
    confirm(page, "BUY 10 shares AAPL")
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
    choose_limit(page_a)
    type_into(page_a, "Quantity (shares)", "5")
    type_into(page_a, "Limit price ($)", "100.00")
    page_a.get_by_label("Time in force").select_option("gtc")
    confirm(page_a, "BUY 5 shares AAPL")
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


# ---------------------------------------------------------------------------- issue 11: layout and quantities
WIDTHS = [(1440, 900), (1024, 768), (390, 844)]
# Every main view carries ``vt-view`` (see trader_dashboard); Playwright's CSS pierces shadow roots.
VIEWS = ".vt-view"


_SNAPSHOT = """els => els.map(e => {
  const r = e.getBoundingClientRect()
  return [e.className, r.x, r.y, r.width, r.height]
})"""


def _snapshot(page: Page) -> dict[str, dict[str, float]]:
    # Every view's box from one script run, so from one layout: measured one by one, a view that
    # grew in between (the copilot's key line arrives late) seemed to overlap the next one's old box.
    out: dict[str, dict[str, float]] = {}
    for cls, x, y, w, h in page.locator(VIEWS).evaluate_all(_SNAPSHOT):
        name = next(c for c in cls.split() if c.endswith("-view") and c != "vt-view")
        out[name] = {"x": x, "y": y, "width": w, "height": h}
    return out


def _boxes(page: Page) -> dict[str, dict[str, float]]:
    """The views' boxes once the layout holds still (two snapshots in a row agree)."""
    shots = [_snapshot(page)]

    def settled() -> bool:
        shots.append(_snapshot(page))
        return shots[-1] == shots[-2]

    wait_until(settled)
    for name, box in shots[-1].items():
        assert box["width"] > 0 and box["height"] > 0, name
    return shots[-1]


def _overlap(a: dict[str, float], b: dict[str, float]) -> float:
    dx = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
    dy = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
    return max(dx, 0) * max(dy, 0)


@pytest.mark.parametrize(("width", "height"), WIDTHS, ids=[f"{w}px" for w, _ in WIDTHS])
def test_layout_has_no_overlaps_at_each_width(served: tuple[str, LiveMarket], browser: Browser, width: int,
                                              height: int) -> None:  # fmt: skip
    url, _ = served
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    page.goto(url, timeout=60_000)
    page.get_by_text("Confirm order").wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"depth \(◆")).first.wait_for(timeout=60_000)
    page.get_by_text("No orders yet").first.wait_for(timeout=30_000)  # the tables have their first data
    # A phone lays the page out at its own width (no 980 px page shrunk to fit).
    assert page.locator("meta[name=viewport]").get_attribute("content").startswith("width=device-width")

    wait_until(lambda: page.locator(VIEWS).count() == 9)  # the eight trading views and the copilot's chat
    boxes = _boxes(page)
    assert len(boxes) == 9, boxes
    overlaps = [(a, b) for a, b in itertools.combinations(boxes, 2) if _overlap(boxes[a], boxes[b]) > 1]
    assert not overlaps, (overlaps, boxes)
    assert all(b["x"] >= 0 and b["x"] + b["width"] <= width + 1 for b in boxes.values()), boxes
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing runs off to the side
    assert page.get_by_text(re.compile(r"\bNaN\b")).count() == 0
    if 700 < width <= 1200:  # a laptop: the chart has a row of its own (it was ~300 px wide at 1024)
        assert boxes["vt-chart-view"]["width"] > 0.8 * width, boxes
    if width <= 1200:  # every column the watchlist shows at this width is in its box, none cut off
        fits = page.locator("table.vt-watchlist").evaluate("t => t.scrollWidth <= t.parentElement.clientWidth + 1")
        assert fits, page.locator("table.vt-watchlist").evaluate("t => [t.scrollWidth, t.parentElement.clientWidth]")
    if width < 700:  # on a phone what a trader acts on comes first
        y = {k: v["y"] for k, v in boxes.items()}
        assert y["vt-ticket-view"] < y["vt-portfolio-view"] < y["vt-blotter-view"] < y["vt-copilot-view"] \
            < y["vt-watchlist-view"], y

    OUT.mkdir(exist_ok=True)  # kept with the test output, where a person looks at them
    shot = OUT / f"ui-{width}.png"
    page.screenshot(path=str(shot))  # what a student sees first
    assert shot.stat().st_size > 20_000
    # The template's main area scrolls inside the page: a tall window shows every view at once.
    bottom = max(b["y"] + b["height"] for b in boxes.values())
    page.set_viewport_size({"width": width, "height": int(bottom) + 40})
    page.screenshot(path=str(OUT / f"ui-{width}-all.png"))
    page.context.close()


def _money(text: str) -> float:
    return float(text.replace("$", "").replace(",", ""))


def test_a_0_01_btc_order_shows_0_010_btc_everywhere(served: tuple[str, LiveMarket], browser: Browser,
                                                      eventually: Callable[..., None]) -> None:  # fmt: skip
    url, market = served
    page, account = open_dashboard(browser, url)
    wait = 90_000  # ms; each step waits on what it needs to see, this only bounds a stall
    page.get_by_label(re.compile("Focus")).select_option("BTCUSDT")
    page.get_by_text("BTCUSDT depth").wait_for(timeout=wait)
    page.get_by_label("Quantity (BTC)").wait_for(timeout=wait)  # the ticket followed the focus, in the coin's unit
    type_into(page, "Quantity (BTC)", "0.01")

    # The preview: 0.010 BTC and notional = 0.01 x its average price (it was 1,000x). Read from
    # one rendering (the preview is re-rendered as the book moves): both numbers or none.
    preview = page.locator(".vt-preview").filter(has_text="0.010 BTC BTCUSDT").filter(has_text="fills now")
    preview.wait_for(timeout=wait)
    text = preview.inner_text(timeout=wait)
    avg = re.search(r"≈ (\$[\d,.]+) avg", text)
    notional = re.search(r"notional (\$[\d,.]+)", text)
    assert avg and notional, text
    assert _money(notional.group(1)) == pytest.approx(0.01 * _money(avg.group(1)), abs=0.01), text

    # A resting bid: the ladder marks 0.010, and its preview values it at the limit (not $0.00).
    bid = float(market.quotes(["BTCUSDT"]).bid.iloc[0])
    limit = f"{round(bid * 0.9, 1):.1f}"
    choose_limit(page)  # a new limit starts at the touch: the test types over it
    type_into(page, "Limit price ($)", limit)
    page.get_by_label("Time in force").select_option("gtc")
    resting = page.locator(".vt-preview").filter(has_text="rests in the book").filter(has_text="0.010 BTC")
    expect(resting).to_contain_text(f"notional ${0.01 * float(limit):,.2f}", timeout=wait)
    confirm(page, "0.010 BTC BTCUSDT")
    eventually(lambda: not market.orders(account).empty, 90, "the resting BTC bid to reach the market")
    page.get_by_text("◆ 0.010").first.wait_for(timeout=wait)

    # A market order fills: the fills tab and the position say 0.010, as the domain does.
    page.get_by_label("Type").select_option("market")
    confirm(page, "fills now")
    eventually(lambda: len(market.orders(account)) == 2, 90, "the market order to reach the market")
    eventually(lambda: not market.fills(account).empty, 90, "the BTC market order to fill")
    assert market.fills(account).quantity.sum() == 0.01
    assert market.portfolio(account)["positions"].set_index("symbol").loc["BTCUSDT", "quantity"] == 0.01
    page.locator(".vt-positions td").filter(has_text=re.compile(r"^0\.010$")).first.wait_for(timeout=wait)
    page.get_by_text("Fills", exact=True).click()
    page.locator(".vt-fills td").filter(has_text=re.compile(r"^0\.010$")).first.wait_for(timeout=wait)
    page.context.close()
