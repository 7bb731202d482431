"""The copilot served: :class:`CopilotSession`, what the notebook magic and the dashboard chat use.

A session is one person's conversation with the copilot about one account of a
:class:`~vtrade.runtime.live.LiveMarket`. :meth:`CopilotSession.ask` runs one turn of the agent
(:mod:`vtrade.copilot.agent`) with the tools reading through :class:`MarketContext`, and returns
a :class:`Reply`: the model's text (render it with :func:`vtrade.copilot.render.to_html`), the
proposals it made (each a :class:`~vtrade.copilot.provenance.Proposal`: the intent, its
canonical bytes and digest, and the provenance flags the confirm card shows) and the tools it
called. Nothing in a session can enter an order: it holds no key, no signer, and calls none of
the market's commands. A proposal trades only if the person signs it on their side and the
market's air-gap admits the signed order (:mod:`vtrade.copilot.airgap`).

Every turn is audited through an :class:`~vtrade.copilot.audit.AuditSink` (the market's
``record_copilot``, or an in-memory sink): ``CopilotAsked``, one ``ProposalMade`` per proposal,
then ``CopilotAnswered`` — also when the copilot is switched off or has no model.

``enabled`` is the teacher's switch: a callable returning None (or True) while the copilot may
answer, the reason it may not (or False) otherwise, e.g. ``lambda: room.copilot_enabled(class_id)``;
a student's desk's own switch by default; when off, ``ask``
makes no model call and says so.

>>> from vtrade.runtime.live import LiveConfig, LiveMarket
>>> from vtrade.runtime.scripted_model import ScriptedModelServer, say
>>> from vtrade.runtime.model_client import ModelClient
>>> m = LiveMarket(LiveConfig(symbols=("AAPL",), speed=0, bots=False, burn_in=20_000))
>>> m.open_account("ann")
>>> with ScriptedModelServer(lambda body: say("Spread is ask minus bid.")) as server:
...     s = CopilotSession(m, "ann", client=ModelClient(base_url=server.base_url, environ={}))
...     reply = s.ask("what is a spread?")
>>> reply.text, reply.proposals, reply.refused
('Spread is ask minus bid.', (), None)
>>> CopilotSession(m, "ann", enabled=lambda: "exam in progress").ask("hi").refused
'exam in progress'
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vtrade.classroom.reports import risk as nav_risk
from vtrade.copilot.agent import MODES, Agent, AgentConfig, ChatModel, Mode, TurnResult
from vtrade.copilot.audit import AuditSink, MemoryAudit, as_sink
from vtrade.copilot.context import (
    DepthLevel,
    FillView,
    Headline,
    MissionsView,
    MissionView,
    PortfolioView,
    PositionView,
    QuoteView,
    RiskView,
)
from vtrade.copilot.events import CopilotAnswered, CopilotAsked, ProposalMade
from vtrade.copilot.provenance import Proposal
from vtrade.copilot.render import to_html
from vtrade.copilot.tools import ProposalMint, ToolEnv, ToolRegistry, default_tools
from vtrade.core.events import Event
from vtrade.core.instruments import Instrument
from vtrade.portfolio import analytics
from vtrade.portfolio.feed import BETA_MIN_SAMPLES
from vtrade.runtime.model_client import CopilotUnavailable, ModelClient

if TYPE_CHECKING:
    from vtrade.runtime.classroom import StudentDesk
    from vtrade.runtime.live import LiveMarket

__all__ = ["MAX_QUESTION", "MAX_REPLY", "CopilotSession", "MarketContext", "Reply", "Turn"]

log = logging.getLogger(__name__)

#: The longest question a session takes, and the longest reply it shows, in characters.
MAX_QUESTION, MAX_REPLY = 4000, 20_000
_SWITCHED_OFF = "Your teacher has switched the copilot off"


def _num(x: object) -> float | None:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in df.to_dict("records")]


def _iso(ts: object) -> str:
    try:
        return pd.Timestamp(ts).isoformat()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


class MarketContext:
    """A :class:`~vtrade.copilot.context.CopilotContext` over a live market: ``account``'s reads,
    and the class's (announcements, missions) through the student's ``desk`` when given."""

    def __init__(self, market: LiveMarket, account: str, desk: StudentDesk | None = None) -> None:
        self.market = market
        self._account = account
        self.desk = desk

    @property
    def account(self) -> str:
        return self._account

    def instruments(self) -> Mapping[str, Instrument]:
        return {i.symbol: i for i in self.market.instruments()}

    def _volumes(self) -> dict[str, float]:
        uni = self.market.universe
        if uni is None:
            return {}
        return dict(zip(uni.tickers, uni.average_volume().tolist(), strict=True))

    def quotes(self, symbols: Sequence[str] | None = None) -> list[QuoteView]:
        df = self.market.quotes(list(symbols) if symbols is not None else None)
        vol = self._volumes()
        return [QuoteView(str(r["symbol"]), str(r["name"]), str(r["sector"] or ""), _num(r["bid"]), _num(r["ask"]),
                          _num(r["mid"]), _num(r["last"]), _num(r["change_pct"]), _num(r["spread_bps"]),
                          bool(r["halted"]), vol.get(str(r["symbol"])))
                for r in _records(df)]

    def depth(self, symbol: str, levels: int) -> list[DepthLevel]:
        df = self.market.depth(symbol, levels, account=self._account)
        return [DepthLevel(str(r["side"]), float(r["price"]), float(r["size"]), float(r["mine"]))
                for r in _records(df)]

    def portfolio(self) -> PortfolioView:
        p = self.market.portfolio(self._account)
        s = p["summary"]
        pos = tuple(PositionView(str(r["symbol"]), str(r["sector"] or ""), float(r["quantity"]), float(r["price"]),
                                 float(r["value"]), float(r["unrealized_pnl"]), float(r["weight"]))
                    for r in _records(p["positions"]))
        return PortfolioView(float(s["nav"]), float(s["cash"]), float(s["pnl"]), float(s["buying_power"]),
                             float(s["fees"]), pos)  # fmt: skip

    def _benchmark(self) -> tuple[str, pd.Series] | None:
        """The benchmark's price samples: SPY where the market lists it, else an equal-weighted
        index of the market's symbols (a small synthetic market has no index of its own)."""
        symbols = self.market.symbols()
        names = ["SPY"] if "SPY" in symbols else symbols[:50]
        if not names:
            return None
        cols = [self.market.price_columns(s) for s in names]
        ts = pd.DatetimeIndex(cols[0]["ts"]).tz_localize("UTC")
        mids = np.vstack([c["mid"] for c in cols])
        first = np.array([next((v for v in row if np.isfinite(v) and v > 0), np.nan) for row in mids])
        with np.errstate(invalid="ignore", divide="ignore"):
            level = np.nanmean(mids / first[:, None], axis=0)
        label = "SPY" if names == ["SPY"] else f"equal-weight index of {', '.join(names)}"
        return label, pd.Series(level, index=ts)

    def risk(self) -> RiskView:
        nav = self.market.nav_history(self._account)
        r = nav_risk(nav)
        beta, bench, note = None, None, ""
        found = self._benchmark()
        if found is None:
            note = "this market has no benchmark to measure beta against"
        else:
            bench = found[0]
            n = 0
            if len(nav) > 1:
                s = pd.Series(nav["nav"].to_numpy(dtype=float), index=pd.DatetimeIndex(nav["ts"]))
                s = s[~s.index.duplicated(keep="last")]
                b = found[1].sort_index()
                b = b[~b.index.duplicated(keep="last")].reindex(s.index, method="ffill")
                rets, brets = analytics.returns_from_nav(s), analytics.returns_from_nav(b)
                both = rets.notna() & brets.notna()
                n = int(both.sum())
                if n >= BETA_MIN_SAMPLES:
                    beta = _num(analytics.beta(rets[both], brets[both]))
            if n < BETA_MIN_SAMPLES:
                note = (f"beta needs at least {BETA_MIN_SAMPLES} NAV returns; there are {n} so far (let the market "
                        "run a while)")  # fmt: skip
        return RiskView(r.period, r.periods, r.total_return, r.volatility, r.max_drawdown, r.sharpe, beta, bench, note)

    def fills(self) -> list[FillView]:
        fills = self.market.fills(self._account)
        if fills.empty:
            return []
        orders = {str(o["client_order_id"]): o for o in _records(self.market.orders(self._account))}
        out = []
        for f in _records(fills):
            o = orders.get(str(f["client_order_id"]), {})
            out.append(FillView(
                str(f["fill_id"]), str(f["client_order_id"]), _iso(f["ts"]), str(f["symbol"]), str(f["side"]),
                float(f["price"]), float(f["quantity"]), str(f["liquidity"]), float(f["fee"]), _num(f["arrival_mid"]),
                _num(f["slippage_bps"]), _num(f["queue_ahead"]), str(f["model"]), str(o.get("type", "")),
                _num(o.get("limit_price")), str(o.get("note") or ""),
            ))  # fmt: skip
        return out

    def headlines(self) -> list[Headline]:
        news: list[tuple[int, Headline]] = []
        if self.desk is not None:
            for a in self.desk.state.announcements:
                news.append((a.ts, Headline(_iso(pd.Timestamp(a.ts, unit="ns", tz="UTC")), "teacher", a.text)))
        for r in _records(self.market.interventions()):
            symbols = ", ".join(str(s) for s in r["symbols"])
            ts = pd.Timestamp(r["ts"])
            news.append((int(ts.value), Headline(ts.isoformat(), "market", f"{symbols}: {r['detail']}")))
        news.sort(key=lambda x: x[0])
        return [h for _, h in news]

    def missions(self) -> MissionsView | None:
        if self.desk is None:
            return None
        df = self.desk.missions()
        prog = self.desk.progress()
        rows = tuple(MissionView(str(r["mission"]), str(r["title"]), str(r["summary"]), str(r["status"]),
                                 int(r["xp"]), None if pd.isna(r["due"]) else _iso(r["due"]))
                     for r in _records(df))
        return MissionsView(self.desk.class_name, int(prog.get("xp", 0)), int(prog.get("level", 0)),
                            tuple(str(b) for b in prog.get("badges", ())), rows)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer: ``text`` (markdown from the model; render it with
    :func:`vtrade.copilot.render.to_html`), the ``proposals`` to review, the ``tools`` called in
    order, and ``refused`` — why there is no real answer (switched off, no model, the model
    failed), None otherwise."""

    text: str
    proposals: tuple[Proposal, ...] = ()
    tools: tuple[str, ...] = ()
    refused: str | None = None

    @property
    def html(self) -> str:
        """:attr:`text` as sanitised HTML (:func:`vtrade.copilot.render.to_html`)."""
        return to_html(self.text)


@dataclass(frozen=True, slots=True)
class Turn:
    """One question and its reply, with the wall-clock time it was asked (UTC ns)."""

    question: str
    reply: Reply
    ts: int


def _token() -> str:
    return secrets.token_hex(16)


class CopilotSession:
    """One person's conversation with the copilot (see the module notes).

    ``client``: the chat model (default: a :class:`~vtrade.runtime.model_client.ModelClient`
    from the environment, made at the first question; without a key the reply says how to set
    one). ``audit``: where the audit events go, a sink or a function of one event (default:
    the desk's or the market's ``record_copilot`` where there is one, else an in-memory sink).
    ``enabled``: the teacher's switch, returning None (or True) while on, the reason (or False)
    when off (default: the desk's ``copilot_enabled`` in a class, else always on).
    ``class_id``: the class the account is in (recorded with each question). ``mode``:
    ``"tools"`` (native tool calls) or ``"json"`` (structured-output routing, for models without
    tool calls). ``clock``: the wall clock (UTC ns) for audit times and proposal expiry.
    ``desk``: the student's desk in a class (announcements, missions, the switch, the audit).
    ``ttl_s``: how long a proposal stays valid.
    ``max_calls``: model calls per question. ``nonce``: the proposal nonce source (32 hex).
    """

    def __init__(
        self,
        market: LiveMarket,
        account: str,
        client: ChatModel | None = None,
        audit: AuditSink | Callable[[Event], object] | None = None,
        enabled: Callable[[], str | bool | None] | None = None,
        class_id: str | None = None,
        mode: str = "tools",
        clock: Callable[[], int] = time.time_ns,
        *,
        desk: StudentDesk | None = None,
        ttl_s: float = 120.0,
        max_calls: int = 6,
        nonce: Callable[[], str] = _token,
        registry: ToolRegistry | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not isinstance(account, str) or not market.has_account(account):
            raise ValueError(f"the market has no account {account!r}")
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float) or not math.isfinite(ttl_s) or ttl_s <= 0:
            raise ValueError(f"ttl_s must be a positive number of seconds, got {ttl_s!r}")
        self.market = market
        self.account = account
        self.class_id = class_id
        self.mode: Mode = "json" if mode == "json" else "tools"
        # The market's own audit log (its copilot topic; through the desk in a class), else in memory.
        sink = as_sink(audit) or as_sink(getattr(desk if desk is not None else market, "record_copilot", None))
        self.audit: AuditSink = sink if sink is not None else MemoryAudit()
        self._client = client
        self._enabled = enabled if enabled is not None else getattr(desk, "copilot_enabled", None)
        self._clock = clock
        self._config = AgentConfig(mode=self.mode, max_calls=max_calls)
        self._registry = registry or ToolRegistry(default_tools())
        self._context = MarketContext(market, account, desk)
        self._mint = ProposalMint(nonce, clock, round(ttl_s * 1e9))
        self._asking = threading.Lock()  # one question at a time per session (a turn can take a while)
        self._lock = threading.Lock()  # the turns and the conversation id: held briefly, never over a model call
        self._turns: list[Turn] = []
        self.conversation = _conversation_id()

    @property
    def model(self) -> str | None:
        """The model's name (None until a model is configured)."""
        return self._client.name if self._client is not None else None

    def _model(self) -> ChatModel:
        if self._client is None:
            self._client = ModelClient()
        return self._client

    def ask(self, question: str) -> Reply:
        """One turn: the copilot's reply to ``question`` (the person's own words).

        ValueError (nothing recorded) for a question that is not text, is blank or is longer than
        :data:`MAX_QUESTION` characters. Everything else — the switch off, no model, a model
        that fails or misbehaves — comes back as a :class:`Reply` (``refused`` says why)."""
        if not isinstance(question, str) or not question.strip():
            raise ValueError("ask the copilot something: the question is empty")
        if len(question) > MAX_QUESTION:
            raise ValueError(f"the question is {len(question)} characters long; at most {MAX_QUESTION} please")
        question = question.strip()
        with self._asking:
            with self._lock:
                conversation = self.conversation
                history = [(t.question, t.reply.text) for t in self._turns if t.reply.refused is None]
            asked = self._clock()
            off = _switched_off(self._enabled() if self._enabled is not None else None)
            model: ChatModel | None = None
            unavailable: str | None = None
            if off is None:
                try:
                    model = self._model()
                except CopilotUnavailable as exc:
                    unavailable = str(exc)
            name = model.name if model is not None else (self._client.name if self._client else "")
            self.audit.record(CopilotAsked(asked, self.account, conversation, question, name, self.class_id))
            if off is not None:
                reason = off.strip()
                if "teacher" in reason.casefold():
                    text = reason
                else:
                    text = f"{_SWITCHED_OFF}: {reason}" if reason else f"{_SWITCHED_OFF}."
                reply = Reply(text, refused=reason or "switched off")
            elif model is not None:
                reply = self._run(model, question, history)
            else:
                why = unavailable or "no model is configured"
                reply = Reply(why, refused=why)
            for p in reply.proposals:
                self.audit.record(ProposalMade(self._clock(), self.account, conversation, p.intent.proposal_id,
                                               p.digest, p.canonical.decode(), tuple(p.provenance.items()),
                                               p.flags))  # fmt: skip
            self.audit.record(CopilotAnswered(self._clock(), self.account, conversation, reply.text,
                                              reply.tools, reply.refused))  # fmt: skip
            with self._lock:
                if self.conversation == conversation:  # a reset meanwhile starts the new one empty
                    self._turns.append(Turn(question, reply, asked))
            return reply

    def _run(self, model: ChatModel, question: str, history: list[tuple[str, str]]) -> Reply:
        env = ToolEnv(self._context, self._mint)
        try:
            result: TurnResult = Agent(model, self._registry, self._config).run(env, question, history)
        except Exception as exc:  # a bug or a market that went away: the chat says so, the log keeps it
            log.exception("copilot turn failed for %s", self.account)
            why = f"The copilot failed: {type(exc).__name__}: {exc}"
            return Reply(why, refused=why)
        text = result.text if len(result.text) <= MAX_REPLY else result.text[:MAX_REPLY] + " [cut]"
        return Reply(text, result.proposals, result.tools, result.refused)

    def history(self) -> list[Turn]:
        """This conversation's turns, oldest first."""
        with self._lock:
            return list(self._turns)

    def reset(self) -> None:
        """Forget the conversation and start a new one (a new conversation id in the audit)."""
        with self._lock:
            self._turns.clear()
            self.conversation = _conversation_id()


def _switched_off(state: object) -> str | None:
    """The switch's answer as None (on) or the reason it is off: None or True is on, False is
    off (no reason given), a text is the reason."""
    if state is None or state is True:
        return None
    return state if isinstance(state, str) else ""


def _conversation_id() -> str:
    return f"c-{secrets.token_hex(8)}"

