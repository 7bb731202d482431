"""The copilot in a notebook: ``%load_ext vtrade``, then ``%%copilot`` cells (jupyter-ai style).

::

    import vtrade as vt
    s = vt.live()                 # a live market and your account
    %load_ext vtrade
    %copilot use s                # the copilot reads and proposes for s's account

    %%copilot
    What is my beta? Buy 10 AAPL with a limit at the bid.

The cell's text is the question, exactly as typed: nothing in it is interpolated (``{x}`` and
``$x`` stay literal, in the cell and on the magic's line). The answer displays as a rich output
(sanitised HTML of the model's text, plain text, and ``application/json`` with the tools used and
each proposal's canonical bytes, digest, flags and provenance, also in the output's metadata).
The output never executes anything: each proposal shows a confirm widget
(:class:`~vtrade.ui.copilot_widget.ConfirmWidget`) whose *Confirm* button signs that exact intent
in a subprocess (the kernel never loads the key) and sends it through the market's air-gap.

Line subcommands: ``%copilot help``, ``%copilot model [NAME]``, ``%copilot history``,
``%copilot reset``, ``%copilot use VARIABLE [ACCOUNT]``. Settings go through IPython's config
system (``%config Copilot.model = "llama3.2"``; also ``base_url``, ``mode`` (``tools`` or
``json``), ``account``, ``key_dir``; or ``c.Copilot.model`` in ``ipython_config.py``). Keys come
only from environment variables (``OPENAI_API_KEY``; ``OPENAI_BASE_URL`` and
``VTRADE_COPILOT_MODEL`` give defaults): there is deliberately no setting for a key.

Errors print one line on stderr (``copilot: …``), never a traceback.
"""

from __future__ import annotations

import html
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Enum, Unicode
from traitlets.config import Configurable

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from vtrade.runtime.copilot_service import CopilotSession
    from vtrade.runtime.live import LiveMarket
    from vtrade.ui.copilot_chat import ReplyLike

__all__ = ["Answer", "Copilot", "CopilotMagics", "CopilotUsageError", "load_ipython_extension", "reply_bundle",
           "unload_ipython_extension"]  # fmt: skip

HELP = """\
**vtrade copilot** — ask about your live account; it may *propose* orders, which only you can confirm.

| | |
|---|---|
| `%copilot use s` | talk about the account of live session `s` (`s = vt.live()`) |
| `%copilot use m ACCOUNT` | or about `ACCOUNT` on market `m` |
| `%%copilot` + question | ask (the cell's text, exactly as typed: `{x}` stays `{x}`) |
| `%copilot model [NAME]` | show the model, endpoint and mode, or choose a model |
| `%copilot history` | this conversation so far |
| `answer = %copilot last` | the last answer: `answer.reply`, and `answer.widgets` (its confirm widgets) |
| `%copilot reset` | start a new conversation |
| `%config Copilot.mode = "json"` | route by structured output, for models without native tool calls |

The endpoint is any OpenAI-compatible server: set `OPENAI_API_KEY` (and `OPENAI_BASE_URL` for
Ollama, llama.cpp, vLLM…) in the environment before starting Jupyter; `VTRADE_COPILOT_MODEL` or
`%config Copilot.model = "..."` picks the model. Keys are read from the environment only.
"""


class CopilotUsageError(ValueError):
    """A magic used the wrong way (the message says the right way)."""


class Copilot(Configurable):
    """The copilot magic's settings (IPython's config system: ``%config Copilot.model = "..."``)."""

    model = Unicode("", help="Model name ('' = $VTRADE_COPILOT_MODEL, else the client's default)").tag(config=True)
    base_url = Unicode("", help="OpenAI-compatible endpoint URL ('' = $OPENAI_BASE_URL, else OpenAI's)").tag(
        config=True)
    mode = Enum(["tools", "json"], default_value="tools",
                help="How the model routes to tools: native tool calls, or JSON structured output").tag(config=True)
    account = Unicode("", help="The account the copilot acts for ('' = the bound live session's own)").tag(config=True)
    key_dir = Unicode("", help="Folder of the per-account signing keys ('' = the key store's default)").tag(
        config=True)


@dataclass(frozen=True)
class Answer:
    """The last ``%%copilot`` answer (``answer = %copilot last``): the copilot's reply and the
    confirm widget of each proposal it showed."""

    reply: ReplyLike
    widgets: tuple[Any, ...]

    def __repr__(self) -> str:
        shown = f"{len(self.widgets)} proposal(s) to confirm" if self.widgets else "no proposal"
        return f"<copilot answer: {len(self.reply.text)} characters, {shown}>"


class _Bindable(Protocol):
    market: LiveMarket
    account: str


def _one_line(exc: BaseException) -> str:
    """An error as one line: vtrade's and bad values' own sentences as they are; anything else
    (a bug, the network) with its type, so the person can search for it.

    >>> _one_line(CopilotUsageError("usage: %copilot use SESSION")), _one_line(KeyError("x"))
    ('usage: %copilot use SESSION', "KeyError: 'x'")
    """
    from vtrade.core.errors import VtradeError

    text = " ".join(str(exc).split())
    if isinstance(exc, VtradeError | ValueError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _error(exc: BaseException) -> None:
    print(f"copilot: {_one_line(exc)}", file=sys.stderr)


def reply_bundle(reply: ReplyLike, account: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The display data and metadata of a reply: ``text/plain`` (the model's text as is: plain
    text runs nothing), ``text/html`` (sanitised), and ``application/json`` (also in the
    metadata under ``vtrade``) with the tools used, any refusal, and each proposal's canonical
    bytes, digest, flags and provenance."""
    from vtrade.copilot.render import to_html

    proposals = [{"digest": p.digest, "canonical": p.canonical.decode("utf-8", "replace"), "flags": list(p.flags),
                  "provenance": dict(p.provenance)} for p in reply.proposals]  # fmt: skip
    info = {"account": account, "tools": list(reply.tools), "refused": reply.refused, "proposals": proposals}
    if reply.refused:
        plain = reply.text or reply.refused
        body = f"<div class='vt-copilot-refused'>⚠ {html.escape(plain)}</div>"
    else:
        body = f"<div class='vt-copilot-reply'>{to_html(reply.text)}</div>"
        plain = reply.text
    if reply.tools:
        body += (f"<div style='font-size:11px;color:#666'>looked at: "
                 f"{html.escape(', '.join(reply.tools))}</div>")  # fmt: skip
    data = {"text/plain": plain, "text/html": body, "application/json": info}
    metadata = {"application/json": {"expanded": False}, "vtrade": {"copilot": info}}
    return data, metadata


@magics_class
class CopilotMagics(Magics):
    """``%copilot`` and ``%%copilot`` (see the module notes)."""

    def __init__(self, shell: InteractiveShell, settings: Copilot) -> None:
        super().__init__(shell)
        self.settings = settings
        self.market: LiveMarket | None = None
        self._account = ""
        self._session: CopilotSession | None = None
        self.last: Answer | None = None
        settings.observe(self._settings_changed, names=["model", "base_url", "mode", "account", "key_dir"])

    # ------------------------------------------------------------------ the magic
    @no_var_expand
    @line_cell_magic
    def copilot(self, line: str, cell: str | None = None) -> Answer | None:
        """Ask the copilot (``%%copilot`` cell) or run a subcommand (``%copilot help``)."""
        try:
            if cell is None:
                return self._command(line)
            elif line.strip():
                raise CopilotUsageError(f"%%copilot takes no arguments (got {line.strip()!r}): the question is the "
                                        "cell's text; settings go through %config Copilot")  # fmt: skip
            else:
                self.ask(cell)
        except Exception as exc:  # the person reads one line; the model, the network or a typo alike
            _error(exc)
        return None

    def _command(self, line: str) -> Answer | None:
        words = line.split()
        name, args = (words[0].lower(), words[1:]) if words else ("help", [])
        if name == "help":
            self._display({"text/markdown": HELP, "text/plain": HELP})
        elif name == "model":
            self._model(args)
        elif name == "history":
            self._history()
        elif name == "reset":
            if self._session is not None:
                self._session.reset()
            print("copilot: a new conversation starts (the previous one is forgotten)")
        elif name == "use":
            self._use(args)
        elif name == "last":
            if self.last is None:
                raise CopilotUsageError("no answer yet: ask in a %%copilot cell")
            return self.last
        else:
            raise CopilotUsageError(f"unknown subcommand {name!r}: use help, model, history, reset, use or last; "
                                    "ask a question in a %%copilot cell")  # fmt: skip
        return None

    # ------------------------------------------------------------------ binding
    @property
    def account(self) -> str:
        """The account the copilot acts for now ('' before ``%copilot use``)."""
        return self.settings.account or self._account

    def bind(self, market: LiveMarket, account: str) -> None:
        """Talk about ``account`` on ``market`` from now on (a new conversation)."""
        if not market.has_account(account):
            raise CopilotUsageError(f"no account {account!r} in that market: open it first")
        self.market, self._account, self._session = market, account, None

    def _use(self, args: list[str]) -> None:
        from vtrade.runtime.live import LiveMarket

        if not args or len(args) > 2 or not args[0].isidentifier():
            raise CopilotUsageError("usage: %copilot use SESSION (a variable holding vt.live()), or %copilot use "
                                    "MARKET ACCOUNT")  # fmt: skip
        ns = self.shell.user_ns if self.shell is not None else {}
        if args[0] not in ns:
            raise CopilotUsageError(f"no variable {args[0]!r} in this notebook")
        obj = ns[args[0]]
        if isinstance(obj, LiveMarket):
            if len(args) != 2:
                raise CopilotUsageError(f"{args[0]} is a market: say whose account, %copilot use {args[0]} ACCOUNT")
            self.bind(obj, args[1])
        elif isinstance(getattr(obj, "market", None), LiveMarket) and isinstance(getattr(obj, "account", None), str):
            session: _Bindable = obj
            if getattr(obj, "closed", False):
                raise CopilotUsageError(f"{args[0]} is closed: open a new live session")
            self.bind(session.market, args[1] if len(args) == 2 else session.account)
        else:
            raise CopilotUsageError(f"{args[0]} is a {type(obj).__name__}, not a live session (vt.live()) or market")
        print(f"copilot: acting for account {self.account!r} (it reads through tools and only proposes orders)")

    def _bound(self) -> tuple[LiveMarket, str]:
        if self.market is None:
            self._bind_only_session()
        if self.market is None:
            raise CopilotUsageError("no live session to talk about: s = vt.live(), then %copilot use s")
        return self.market, self.account

    def _bind_only_session(self) -> None:
        # Exactly one open live session in the notebook: that is the one meant (said out loud).
        from vtrade.runtime.live_session import LiveSession

        ns = self.shell.user_ns if self.shell is not None else {}
        found = {n: v for n, v in ns.items() if isinstance(v, LiveSession) and not v.closed and not n.startswith("_")}
        if len(set(map(id, found.values()))) == 1:
            name, session = next(iter(found.items()))
            self.bind(session.market, session.account)
            print(f"copilot: using live session {name} (account {self.account!r}); %copilot use NAME to choose")

    # ------------------------------------------------------------------ asking
    def session(self) -> CopilotSession:
        """The conversation (made on first use, anew after a setting changes)."""
        market, account = self._bound()
        if self._session is None:
            from vtrade.runtime.copilot_service import CopilotSession

            # Audited on the market's log (its record_copilot). Without a key the client is made
            # at the first question, whose reply then says how to set one.
            self._session = CopilotSession(market, account, client=self._client(), mode=self.settings.mode)
        return self._session

    def ask(self, question: str) -> ReplyLike:
        """Ask ``question`` (verbatim) and display the answer and a confirm widget per proposal."""
        from vtrade.ui.copilot_card import CardData, CardError

        if not question.strip():
            raise CopilotUsageError("the cell is empty: write your question under %%copilot")
        session = self.session()
        market, account = self._bound()
        reply = session.ask(question)
        data, metadata = reply_bundle(reply, account)
        self._display(data, metadata)
        widgets = []
        for proposal in reply.proposals:
            try:
                card = CardData.of(proposal)
            except CardError as exc:
                _error(exc)
                continue
            widgets.append(self.confirm_widget(card, market))
            self._display_widget(widgets[-1])
        self.last = Answer(reply, tuple(widgets))
        return reply

    def confirm_widget(self, card: Any, market: LiveMarket) -> Any:
        """The confirm widget of ``card``: Confirm signs in the signer subprocess with the
        account's key (``Copilot.key_dir``) and submits through ``market``'s air-gap."""
        from vtrade.runtime import keystore
        from vtrade.runtime.signer import sign_in_subprocess
        from vtrade.ui.copilot_widget import ConfirmWidget

        key_dir = self.settings.key_dir or None
        account = card.intent.account
        return ConfirmWidget(card, market=market,
                             sign=lambda intent: sign_in_subprocess(intent, account, key_dir=key_dir),
                             public_key=lambda: keystore.public_key(account, key_dir=key_dir))  # fmt: skip

    # ------------------------------------------------------------------ other subcommands
    def _client(self) -> Any:
        """The model client the settings and the environment name, or None when they name none
        (no key): the session then answers how to set one."""
        from vtrade.runtime.model_client import CopilotUnavailable, ModelClient

        try:
            return ModelClient(model=self.settings.model or None, base_url=self.settings.base_url or None)
        except CopilotUnavailable:
            return None

    def _model(self, args: list[str]) -> None:
        from vtrade.runtime.model_client import HOW_TO

        if len(args) > 1:
            raise CopilotUsageError("usage: %copilot model [NAME]")
        if args:
            self.settings.model = args[0]
        client = self._client()
        if client is None:
            print(f"copilot: no model yet. {HOW_TO}")
            return
        print(f"copilot: model {client.name!r} at {client.endpoint} (mode {self.settings.mode}; "
              "the key, if any, comes from OPENAI_API_KEY)")  # fmt: skip

    def _history(self) -> None:
        from vtrade.copilot.render import to_html

        if self._session is None:
            print("copilot: no conversation yet")
            return
        turns = list(self._session.history())
        if not turns:
            print("copilot: no conversation yet")
            return
        plain = "\n\n".join(f"you: {t.question}\ncopilot: {t.reply.text}" for t in turns)
        rows = "".join(f"<div style='margin:6px 0'><b>You</b>: {html.escape(t.question)}</div>"
                       f"<div><b>Copilot</b>: {to_html(t.reply.text)}</div>" for t in turns)  # fmt: skip
        self._display({"text/plain": plain, "text/html": rows})

    def _settings_changed(self, change: Any) -> None:
        # Another model, endpoint, mode or account: a new conversation at the next question.
        self._session = None

    # ------------------------------------------------------------------ output
    def _display(self, data: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        from IPython.display import display

        display(data, raw=True, metadata=metadata or {})

    def _display_widget(self, widget: Any) -> None:
        from IPython.display import display

        display(widget)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext vtrade``: the ``%copilot``/``%%copilot`` magics and the ``Copilot`` settings."""
    settings = Copilot(parent=ipython)
    # %config Copilot.model = ... reaches it. (IPython's list is typed by its first member, the shell.)
    ipython.configurables.append(settings)  # type: ignore[arg-type]
    ipython.register_magics(CopilotMagics(ipython, settings))


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """``%unload_ext vtrade`` (and ``%reload_ext``): forget the settings; a new load starts afresh."""
    ipython.configurables[:] = [c for c in ipython.configurables if not isinstance(c, Copilot)]
