"""The served market on the live Binance feed, in a real headless Chromium: a local exchange on
127.0.0.1 replays the USD-M capture at its own pace, restamped to now, over Binance's wire
formats; the market trades on the live feed; an order placed in the browser fills against the
live book, and the clock badge says "live" with the feed's delay. No internet is used."""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from vtrade.runtime.binance_local import LocalBinance
from vtrade.runtime.live import LiveConfig, LiveMarket
from vtrade.ui.serve import serve_trader, url_for

USDM = Path(__file__).resolve().parent.parent / "data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"
OUT = Path(__file__).resolve().parent.parent / "test-output"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-background-timer-throttling", "--disable-renderer-backgrounding"]  # fmt: skip


@pytest.fixture
def served() -> Iterator[tuple[str, LiveMarket, LocalBinance]]:
    assert Path(CHROMIUM).exists(), "Chromium is needed for the browser test: apt-get install chromium"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with LocalBinance([USDM], speed=1.0, restamp=True) as ex:
        cfg = LiveConfig(symbols=(), binance=("BTCUSDT",), binance_market="usdm", binance_urls=(ex.ws_url, ex.rest_url),
                         bots=False, speed=1.0)  # fmt: skip
        market = LiveMarket(cfg).start()
        server = serve_trader(port=port, address="127.0.0.1", market=market, threaded=True,
                              websocket_origin=f"127.0.0.1:{port}")  # fmt: skip
        try:
            yield url_for("127.0.0.1", port), market, ex
        finally:
            server.stop()
            market.close()


def test_an_order_fills_against_the_live_book_and_the_badge_says_live(
    served: tuple[str, LiveMarket, LocalBinance], eventually: Callable[..., None]
) -> None:
    url, market, ex = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context(viewport={"width": 1600, "height": 1400}).new_page()
            page.goto(url, timeout=60_000)
            page.get_by_text("Confirm order").wait_for(timeout=60_000)
            label = page.get_by_text(re.compile(r"Your account: trader-\d+")).first
            label.wait_for(timeout=60_000)
            found = re.search(r"Your account: (trader-\d+)", label.inner_text())
            assert found is not None
            account = found.group(1)
            page.get_by_text("BTCUSDT depth").wait_for(timeout=30_000)  # the only symbol: in focus

            badge = page.locator(".vt-live").first
            badge.wait_for(timeout=30_000)
            eventually(lambda: re.fullmatch(r"live [\d,]+ ms", badge.inner_text().strip()) is not None, 30,
                       "the badge to show the live feed and its delay")  # fmt: skip
            assert market.clock()["live"]["state"] == "live"

            page.get_by_label("Quantity (BTC)").fill("0.01")
            page.get_by_label("Quantity (BTC)").press("Enter")
            page.locator(".vt-preview").filter(has_text="fills now").wait_for(timeout=45_000)
            sent_at = ex.cursor
            page.get_by_role("button", name="Confirm order").click()
            eventually(lambda: not market.fills(account).empty, 45, "the market order to fill on the live book")
            fill = market.fills(account).iloc[0]
            assert fill.quantity == 0.01 and fill.liquidity == "taker"
            assert ex.cursor > sent_at  # the exchange kept streaming: the book it filled on was live
            page.locator(".vt-positions td").filter(has_text=re.compile(r"^0\.010$")).first.wait_for(timeout=45_000)
            OUT.mkdir(exist_ok=True)
            page.screenshot(path=str(OUT / "binance_live.png"), full_page=True)
        finally:
            browser.close()
