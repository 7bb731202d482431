"""The copilot's chat in the dashboard: questions, sanitised answers and proposal cards.

:class:`ChatState` holds one browser session's conversation (``param.Parameterized``, like the
dashboard's other states) and asks a copilot session (:class:`vtrade.runtime.copilot_service.CopilotSession`,
made on the first question, so a page without a model key still loads) off the server's event
loop. :func:`copilot_panel` is its view.

What reaches the page:

- the person's question, escaped;
- the model's text only through the sanitiser (:func:`vtrade.copilot.render.to_html`), in a
  pane that runs no scripts and typesets no math: markup, event handlers, ``javascript:`` links and
  images (which would load a URL: an exfiltration channel) never reach the browser as such;
- each proposal as a :class:`~vtrade.ui.copilot_signer.ProposalCard` built from its canonical
  bytes, confirmed only by the person's click, signed in their browser
  (:mod:`vtrade.ui.copilot_signer`) and sent through :func:`~vtrade.ui.copilot_confirm.send_signed`;
- why the copilot does not answer: switched off by the teacher, no model key (and how to set
  one), or the model's error, in one sentence.

The chat decides nothing: the copilot session answers or refuses, the market admits or refuses a
signed order (DESIGN.md §2).
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import panel as pn
import param
from panel.models.markup import HTML as HTMLModel

from vtrade.copilot.render import to_html
from vtrade.ui.copilot_card import CardData, CardError, ProposalLike
from vtrade.ui.copilot_confirm import SigningMarket, register_once, send_signed
from vtrade.ui.copilot_signer import BrowserKey, ProposalCard

__all__ = ["MAX_QUESTION", "OFF_SENTENCE", "ChatEntry", "ChatState", "CopilotLike", "ReplyLike", "SafeHTML",
           "copilot_panel", "render_entry"]  # fmt: skip

log = logging.getLogger(__name__)

#: The longest question the chat sends (a question, not a document).
MAX_QUESTION = 2000
#: What the chat says when the class has the copilot switched off.
OFF_SENTENCE = "Your teacher has switched the copilot off for this class. Use the order ticket, or ask your teacher."


class ReplyLike(Protocol):
    """A copilot's reply (:class:`vtrade.runtime.copilot_service.Reply`)."""

    @property
    def text(self) -> str: ...

    @property
    def proposals(self) -> Sequence[ProposalLike]: ...

    @property
    def tools(self) -> Sequence[str]: ...

    @property
    def refused(self) -> str | None: ...


class CopilotLike(Protocol):
    """A conversation with the copilot (:class:`vtrade.runtime.copilot_service.CopilotSession`)."""

    def ask(self, text: str) -> ReplyLike: ...

    def reset(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ChatEntry:
    """One line of the conversation as shown: ``role`` is ``you``, ``copilot`` or ``notice``;
    ``html`` is already safe (escaped, or sanitised model text); ``cards`` are the proposals
    (checked against their bytes) and ``unshown`` why any proposal could not be shown."""

    role: str
    html: str
    tools: tuple[str, ...] = ()
    cards: tuple[CardData, ...] = ()
    unshown: tuple[str, ...] = ()


def _escape_lines(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def reply_entry(reply: ReplyLike) -> ChatEntry:
    """The entry of a copilot's reply: its text sanitised, a refusal escaped, the proposals as
    checked cards (a proposal whose bytes do not check is listed as not shown)."""
    if reply.refused:  # its text says why in a sentence (the refusal itself may be a short code)
        return ChatEntry("notice", _escape_lines(reply.text or reply.refused), tuple(reply.tools))
    cards: list[CardData] = []
    unshown: list[str] = []
    for proposal in reply.proposals:
        try:
            cards.append(CardData.of(proposal))
        except CardError as exc:
            unshown.append(str(exc))
    return ChatEntry("copilot", to_html(reply.text), tuple(reply.tools), tuple(cards), tuple(unshown))


class ChatState(param.Parameterized):
    """One session's conversation with the copilot for ``account`` on ``market``.

    ``session()`` makes the copilot session (called once, on the first question; an exception
    from it, such as the model client's "no key" error, becomes a notice and is tried again at
    the next question). ``enabled()`` says whether the copilot may answer now (the class's
    teacher switch); None: always.
    """

    entries = param.List(default=[], item_type=ChatEntry, doc="the conversation, oldest first")
    busy = param.Boolean(default=False, doc="a question is with the model")
    notice = param.String(default="", doc="why the copilot cannot answer now ('' when it can)")

    def __init__(
        self,
        market: SigningMarket,
        account: str,
        *,
        session: Callable[[], CopilotLike],
        enabled: Callable[[], bool] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.market = market
        self.account = account
        self._make_session = session
        self._enabled = enabled
        self._session: CopilotLike | None = None
        self.check()

    def check(self) -> None:
        """Read the teacher's switch (the dashboard calls this with its refreshes)."""
        notice = "" if self._enabled is None or self._enabled() else OFF_SENTENCE
        if notice != self.notice:
            self.notice = notice

    def accept(self, text: object) -> str | None:
        """Take a question as typed: its text to ask, or None (with a notice entry saying why,
        or nothing for a blank one) when there is nothing to ask now."""
        if not isinstance(text, str) or not text.strip():
            return None
        text = text.strip()
        if self.busy:
            self._add(ChatEntry("notice", "One question at a time: the copilot is still answering the last one."))
            return None
        if len(text) > MAX_QUESTION:
            self._add(ChatEntry("notice", f"That question is {len(text):,} characters long: ask in at most "
                                          f"{MAX_QUESTION:,}."))  # fmt: skip
            return None
        self._add(ChatEntry("you", _escape_lines(text)))
        return text

    def answer(self, text: str) -> ChatEntry:
        """The model's answer to ``text`` as an entry (runs the model: call off the event loop;
        it changes no parameter, so no view is touched from the worker thread). Never raises: a
        failure is a notice."""
        try:
            if self._session is None:
                self._session = self._make_session()
            return reply_entry(self._session.ask(text))
        except Exception as exc:  # the model, its client or the network: the person reads one line
            log.warning("the copilot could not answer: %s", exc, exc_info=True)
            if self.notice:
                return ChatEntry("notice", _escape_lines(self.notice))
            return ChatEntry("notice", _escape_lines(f"The copilot could not answer: {_one_line(exc)}"))

    def ask_now(self, text: object) -> None:
        """Ask and wait for the answer (notebooks, tests); the dashboard uses :meth:`ask`."""
        question = self.accept(text)
        if question is None:
            return
        self.check()
        self.busy = True
        try:
            self._add(self.answer(question))
        finally:
            self.busy = False

    async def ask(self, text: object) -> None:
        """Ask from the dashboard: the model runs in a worker thread, the page stays live."""
        question = self.accept(text)
        if question is None:
            return
        self.check()
        self.busy = True
        try:
            entry = await asyncio.to_thread(self.answer, question)
            self._add(entry)
        finally:
            self.busy = False

    def reset(self) -> None:
        """Forget the conversation (the copilot's memory of it too)."""
        if self._session is not None:
            self._session.reset()
        self.entries = []

    def confirm(self, card: ProposalCard, signature: str, public_key: str) -> tuple[bool, str]:
        """A person signed ``card`` in their browser: send it to the market's air-gap."""
        return send_signed(self.market, self.account, card.canonical, signature, public_key)

    def register(self, public_key: str) -> bool:
        """This browser's public key, sent once when the page loads: register it for the account."""
        try:
            register_once(self.market, self.account, public_key)
        except ValueError as exc:
            log.warning("a browser sent a key the market refused: %s", exc)
            return False
        return True

    def _add(self, entry: ChatEntry) -> None:
        self.entries = [*self.entries, entry]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


class SafeHTML(pn.pane.HTML):
    """An HTML pane for text that is already safe, which additionally runs no ``<script>`` and
    typesets no ``$…$`` math (prices are written with dollars; Panel's HTML pane does both by
    default)."""

    def __init__(self, object: Any = None, **params: Any) -> None:  # Panel's own name
        params.setdefault("disable_math", True)
        super().__init__(object, **params)

    def _get_model(self, doc: Any, root: Any = None, parent: Any = None, comm: Any = None) -> Any:
        model = super()._get_model(doc, root, parent, comm)
        if isinstance(model, HTMLModel):  # Panel's own HTML model (the one this pane makes)
            model.update(run_scripts=False)
        return model


_ROLE = {"you": ("You", "vt-chat-you"), "copilot": ("Copilot", "vt-chat-bot"), "notice": ("", "vt-chat-note")}


def render_entry(entry: ChatEntry) -> str:
    """One entry's text as HTML (its cards are separate components).

    >>> render_entry(ChatEntry("you", "buy 10 &lt;b&gt;AAPL&lt;/b&gt;"))
    "<div class='vt-chat vt-chat-you'><div class='vt-chat-who'>You</div>buy 10 &lt;b&gt;AAPL&lt;/b&gt;</div>"
    """
    who, cls = _ROLE.get(entry.role, ("", "vt-chat-note"))
    head = f"<div class='vt-chat-who'>{who}</div>" if who else "⚠ "
    tools = (f"<div class='vt-chat-tools'>looked at: {html.escape(', '.join(entry.tools))}</div>"
             if entry.tools and entry.role == "copilot" else "")  # fmt: skip
    unshown = "".join(f"<div class='vt-chat-unshown'>⚠ A proposal was not shown: {html.escape(u)}</div>"
                      for u in entry.unshown)  # fmt: skip
    return f"<div class='vt-chat {cls}'>{head}{entry.html}{tools}{unshown}</div>"


CHAT_CSS = """
.vt-chat { padding: 6px 10px; border-radius: 8px; margin: 2px 0; font-size: 14px; line-height: 1.4;
  overflow-wrap: anywhere; }
.vt-chat p { margin: 4px 0; }
.vt-chat pre, .vt-chat code { white-space: pre-wrap; font-size: 12px; }
.vt-chat table { border-collapse: collapse; font-size: 12px; }
.vt-chat td, .vt-chat th { border: 1px solid #ddd; padding: 2px 6px; }
.vt-chat-you { background: #e3f2fd; margin-left: 15%; }
.vt-chat-bot { background: #f5f7fa; margin-right: 5%; }
.vt-chat-note { background: #fff3e0; color: #bf360c; font-weight: 600; }
.vt-chat-who { font-size: 11px; color: #555; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
.vt-chat-tools, .vt-chat-unshown { font-size: 11px; color: #666; margin-top: 4px; }
.vt-chat-unshown { color: #b71c1c; }
"""


def _entry_views(entry: ChatEntry, chat: ChatState) -> list[pn.viewable.Viewable]:
    views: list[pn.viewable.Viewable] = [SafeHTML(render_entry(entry), sizing_mode="stretch_width",
                                                  stylesheets=[CHAT_CSS], margin=(2, 4))]  # fmt: skip
    for card in entry.cards:
        views.append(ProposalCard.of(card, confirm=chat.confirm, sizing_mode="stretch_width", margin=(4, 4),
                                     css_classes=["vt-proposal-card"]))  # fmt: skip
    return views


def copilot_panel(chat: ChatState) -> pn.viewable.Viewable:
    """The chat: this browser's signing key, the teacher's switch, the conversation (scrolling,
    newest at the bottom), and a box to ask in (Enter or the Ask button)."""
    key = BrowserKey(account=chat.account, register=chat.register, sizing_mode="stretch_width", margin=(0, 4))
    notice = SafeHTML(sizing_mode="stretch_width", stylesheets=[CHAT_CSS], css_classes=["vt-chat-notice"])
    # A bounded log that scrolls (newest at the bottom, followed while the reader is near it), so
    # the box to ask in stays in reach however long the conversation. (Panel's max_height is not
    # applied to a stretching column: the CSS says it.)
    log_view = pn.Column(sizing_mode="stretch_width", scroll=True, auto_scroll_limit=400,
                         styles={"max-height": "440px", "overflow-y": "auto"},
                         css_classes=["vt-chat-log"])  # fmt: skip
    hint = ("Ask about quotes, your portfolio or a fill, or for an order (“buy 10 AAPL”). The copilot "
            "only proposes: an order is sent when you confirm it.")  # fmt: skip
    placeholder = SafeHTML(f"<div style='color:#666;font-size:13px'>{html.escape(hint)}</div>",
                           sizing_mode="stretch_width")  # fmt: skip
    shown = 0

    def show(*_: object) -> None:
        nonlocal shown
        if len(chat.entries) < shown:  # reset
            log_view.objects, shown = [], 0
        new = chat.entries[shown:]
        shown = len(chat.entries)
        views = [v for e in new for v in _entry_views(e, chat)]
        if views:
            log_view.objects = [o for o in log_view.objects if o is not placeholder] + views

    def show_notice(*_: object) -> None:
        notice.object = render_entry(ChatEntry("notice", html.escape(chat.notice))) if chat.notice else ""
        notice.visible = bool(chat.notice)

    chat.param.watch(show, "entries")
    chat.param.watch(show_notice, "notice")
    log_view.objects = [placeholder]
    show()
    show_notice()
    box = pn.widgets.TextInput(placeholder="Ask the copilot…", sizing_mode="stretch_width", max_length=MAX_QUESTION,
                               css_classes=["vt-chat-input"])  # fmt: skip
    send = pn.widgets.Button(label="Ask", color="primary", width=70, align="end")
    thinking = pn.indicators.LoadingSpinner(value=False, size=20, visible=False, align="center")

    async def go(*_: object) -> None:
        text = box.value_input or box.value
        box.param.update(value="", value_input="")
        await chat.ask(text)

    def busy(event: param.parameterized.Event) -> None:
        thinking.param.update(value=event.new, visible=event.new)
        send.disabled = event.new

    box.param.watch(go, "enter_pressed")
    send.on_click(go)
    chat.param.watch(busy, "busy")
    return pn.Column("### Copilot", key, notice, log_view, pn.Row(box, thinking, send, sizing_mode="stretch_width"),
                     sizing_mode="stretch_width", css_classes=["vt-copilot"])  # fmt: skip
