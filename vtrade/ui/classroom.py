"""The classroom's pages: the student's, the teacher's and the projector's (issue 12).

Views are functions of ``param.Parameterized`` states; every action goes to a desk of
:mod:`vtrade.runtime.classroom` (:class:`~vtrade.runtime.classroom.StudentDesk`,
:class:`~vtrade.runtime.classroom.TeacherDesk`), which applies the class's rules and refuses with
a sentence (:class:`~vtrade.classroom.ClassroomError`): the views show that sentence next to the
control and decide nothing themselves (DESIGN.md §2). Everything a person typed (display names,
class names, notes, headlines) is escaped wherever it is shown.

The ``render_*`` functions are pure (data in, HTML out), tested without a browser:

>>> from vtrade.classroom import MarketShocked
>>> render_market_event(MarketShocked(0, "c", "t", ("AAPL",), "-10", "<b>Tech</b>"))
'Shock: &lt;b&gt;Tech&lt;/b&gt; −10%'
"""

from __future__ import annotations

import html
import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, DataRange1d
from bokeh.models.annotations import Title
from bokeh.plotting import figure

import vtrade.classroom as vc
from vtrade.classroom import ClassroomError, ClassRules, ClassState, Phase
from vtrade.execution.fees import FEE_PRESETS
from vtrade.execution.validation import OrderInputError
from vtrade.runtime.classroom import Classroom, StudentDesk, TeacherDesk
from vtrade.runtime.exports import write_csv
from vtrade.ui.copilot_chat import copilot_panel
from vtrade.ui.copilot_class import TeacherCopilot, student_chat, teacher_copilot_items
from vtrade.ui.game import (
    METRICS,
    ProjectorGame,
    StudentGame,
    TeacherGame,
    render_projector_board,
    student_game_views,
    teacher_game_items,
)
from vtrade.ui.resources import LocalFast, local_template

if TYPE_CHECKING:
    from vtrade.runtime.live import LiveMarket
from vtrade.ui.trader import (
    FIX_FIELD,
    Column,
    LiveHTML,
    SharedByFrame,
    TicketState,
    TraderState,
    fmt_money,
    keep_fresh,
    render_clock,
    render_table,
    trader_views,
)

__all__ = [
    "ClassTicketState",
    "ClassTraderState",
    "ProjectorState",
    "StudentView",
    "TeacherState",
    "projector_page",
    "render_market_event",
    "render_news",
    "roster_csv",
    "roster_frame",
    "student_page",
    "teacher_page",
]

ACCENT = "#1565c0"
PHASE_WORDS = {
    Phase.DRAFT: "in preparation", Phase.REGISTRATION: "open for joining", Phase.TRADING: "trading",
    Phase.FROZEN: "over (frozen)", Phase.ARCHIVED: "archived",
}  # fmt: skip


def _template(title: str, main: list[Any], header: list[Any] | None = None) -> pn.template.BaseTemplate:
    """The pages' frame: Panel's Fast list template without any request off this machine."""
    template = pn.template.FastListTemplate(title=title, header=header or [], main=main, theme_toggle=False,
                                            accent=ACCENT, meta_viewport="width=device-width, initial-scale=1",
                                            main_layout=None, design=LocalFast)  # fmt: skip
    return local_template(template)


def _note(ok: bool, text: str) -> str:
    """An answer next to a control: done (✓, green) or refused (⚠, red, the desk's sentence)."""
    if not text:
        return ""
    colour, mark = ("#1b5e20", "✓") if ok else ("#b71c1c", "⚠")
    kind = "vt-ok" if ok else "vt-refused"
    return f"<div class='{kind}' style='color:{colour};font-size:14px'>{mark} {html.escape(text)}</div>"


# ---------------------------------------------------------------------------- pure renderers
def render_market_event(e: vc.MarketEvent) -> str:
    """A teacher's market event as a line for people (escaped HTML)."""
    match e:
        case vc.MarketShocked(symbols=symbols, pct=pct, label=label):
            value = float(pct)
            text = f"Shock: {label or ', '.join(symbols)} {'+' if value > 0 else '−'}{abs(value):g}%"
        case vc.TradingHalted(symbol=symbol, reason=reason):
            text = f"Trading halted in {symbol}" + (f": {reason}" if reason else "")
        case vc.TradingResumed(symbol=symbol):
            text = f"Trading resumed in {symbol}"
        case vc.LiquidityDrained(symbols=symbols, factor=factor, minutes=minutes, label=label):
            text = f"Liquidity drought in {label or ', '.join(symbols)}: depth × {factor} for {minutes} min"
        case _:
            text = type(e).__name__
    return html.escape(text)


def render_news(state: ClassState, limit: int = 5, *, big: bool = False) -> str:
    """The class's headlines, newest first: the teacher's announcements and market events.

    >>> from vtrade.classroom import Announcement
    >>> s = ClassState("c", "C", "t", "000G4-0R40M-30E20", ClassRules(),
    ...                announcements=(Announcement(1, "c", "t", "<script>x</script>"),))
    >>> "&lt;script&gt;" in render_news(s) and "<script>" not in render_news(s)
    True
    """
    # Word badges, not emoji: a classroom PC often has no emoji font (a box would show).
    badge = "<span style='background:{};color:#fff;padding:0 5px;border-radius:3px;font-size:0.75em'>{}</span>"
    teacher, market = badge.format("#1565c0", "TEACHER"), badge.format("#e65100", "MARKET")
    items: list[tuple[int, str, str]] = [(a.ts, teacher, html.escape(a.text)) for a in state.announcements]
    items += [(e.ts, market, render_market_event(e)) for e in state.market_events]
    items.sort(key=lambda x: x[0], reverse=True)
    size = "28px" if big else "14px"
    if not items:
        return f"<div class='vt-news' style='font-size:{size};color:#555'>No headlines yet</div>"
    rows = "".join(f"<li style='margin:2px 0'>{icon} {text}</li>" for _, icon, text in items[:limit])
    return f"<ul class='vt-news' style='font-size:{size};list-style:none;padding:0;margin:0'>{rows}</ul>"


#: The roster as the teacher sees it and exports it: (column, header, kind of :func:`render_table`).
ROSTER_COLUMNS: tuple[Column, ...] = (
    ("name", "Name", "text"), ("status", "Status", "text"), ("last_seen", "Last seen (UTC)", "time"),
    ("nav", "NAV", "money"), ("return_pct", "Return", "pct"), ("trades", "Trades", "text"),
    ("refusals", "Rule refusals", "text"), ("resets", "Resets", "text"),
)  # fmt: skip


def roster_frame(roster: pd.DataFrame) -> pd.DataFrame:
    """The teacher's roster (:meth:`Classroom.roster`) as shown and exported: one row per
    student, a ``status`` word instead of the ``removed`` flag."""
    df = roster.copy()
    df["status"] = np.where(df["removed"].astype(bool), "removed", "active") if len(df) else []
    return df[["student_id", *(c for c, _, _ in ROSTER_COLUMNS)]]


def roster_csv(roster: pd.DataFrame) -> bytes:
    """The roster export: the columns shown on the teacher's page under the same headers, money
    and percentages rounded as shown, written by :func:`vtrade.runtime.exports.write_csv` (UTF-8
    with a BOM for Excel; every text cell a spreadsheet would run as a formula neutralised: a
    display name ``=HYPERLINK(...)`` is a name, not a link).

    >>> df = pd.DataFrame({"student_id": ["s1"], "name": ["=1+1"], "removed": [False], "joined": [pd.NaT],
    ...     "last_seen": [pd.NaT], "nav": [100.004], "return_pct": [0.004], "trades": [1], "refusals": [0],
    ...     "resets": [0]})
    >>> roster_csv(df).decode("utf-8-sig").splitlines()[1]
    "'=1+1,active,,100.0,0.0,1,0,0"
    """
    df = roster_frame(roster).drop(columns=["student_id"])
    df["last_seen"] = [t.strftime("%Y-%m-%d %H:%M:%S") if pd.notna(t) else "" for t in df["last_seen"]]
    # Numbers stay numbers (a spreadsheet sums them; a text "-1.50" would be defused as a formula).
    df["nav"] = df["nav"].astype(float).round(2)
    df["return_pct"] = df["return_pct"].astype(float).round(2)
    df.columns = [h for _, h, _ in ROSTER_COLUMNS]
    with tempfile.TemporaryDirectory() as folder:
        return write_csv(df, Path(folder) / "roster.csv").read_bytes()


# ---------------------------------------------------------------------------- the student
class DeskMarket:
    """The market surface the trading views read (``TraderState``, ``TicketState``), through
    one student's :class:`StudentDesk`: the views never hold the market object, which trades
    for any account. A call naming another account than the student's is refused."""

    def __init__(self, desk: StudentDesk) -> None:
        self.desk = desk

    def _mine(self, account: str) -> None:
        if account != self.desk.account:
            raise ClassroomError("not_allowed", "A student's page reaches only their own account")

    def symbols(self) -> list[str]:
        return self.desk.symbols()

    def featured(self) -> list[str]:
        return self.desk.featured()

    def instrument(self, symbol: str) -> Any:
        return self.desk.instrument(symbol)

    def suggested_quantity(self, symbol: str) -> str:
        return self.desk.suggested_quantity(symbol)

    def quotes(self, symbols: Any = None) -> pd.DataFrame:
        return self.desk.quotes(symbols)

    def clock(self) -> dict[str, Any]:
        return self.desk.clock()

    def depth(self, symbol: str, levels: int = 10, account: str | None = None) -> pd.DataFrame:
        return self.desk.depth(symbol, levels)

    def prices(self, symbol: str, since: Any = None) -> pd.DataFrame:
        return self.desk.prices(symbol, since=since)

    def price_columns(self, symbol: str, since: Any = None) -> dict[str, np.ndarray]:
        return self.desk.price_columns(symbol, since=since)

    def leaderboard(self) -> pd.DataFrame:
        return self.desk.leaderboard()

    def version(self, account: str) -> int:
        self._mine(account)
        return self.desk.version()

    def orders(self, account: str) -> pd.DataFrame:
        self._mine(account)
        return self.desk.orders()

    def fills(self, account: str) -> pd.DataFrame:
        self._mine(account)
        return self.desk.fills()

    def portfolio(self, account: str, *, tables: bool = True) -> dict[str, Any]:
        self._mine(account)
        return self.desk.portfolio(tables=tables)

    def nav_history(self, account: str, since: Any = None) -> pd.DataFrame:
        self._mine(account)
        return self.desk.nav_history(since=since)

    def nav_columns(self, account: str, since: Any = None) -> dict[str, np.ndarray]:
        self._mine(account)
        return self.desk.nav_columns(since=since)

    def preview(self, account: str, **inputs: Any) -> Any:
        self._mine(account)
        return self.desk.preview(**inputs)

    def cancel(self, account: str, client_order_id: str) -> Any:
        self._mine(account)
        return self.desk.cancel(client_order_id)


def _desk_market(desk: StudentDesk) -> LiveMarket:
    # The views are typed for a LiveMarket; DeskMarket has every method they call (the test of
    # the student page runs them all), and nothing that reaches another account.
    return cast("LiveMarket", DeskMarket(desk))


_RANKINGS = SharedByFrame(8)


class ClassTraderState(TraderState):
    """A student's trading views: their own account on the class's market, the CLASS's
    leaderboard (display names, NAV and return only), cancels through their desk."""

    def __init__(self, desk: StudentDesk, **params: Any) -> None:
        self.desk = desk
        super().__init__(market=_desk_market(desk), account=desk.account, **params)

    def ranking_frame(self) -> pd.DataFrame:
        board = self.desk.leaderboard()  # the class's, shared by its pages: so is what is shown of it
        return _RANKINGS.get(board, (), lambda: board.rename(columns={"name": "account"})[
            ["rank", "account", "nav", "return_pct"]])

    def cancel(self, client_order_id: str) -> None:
        try:
            out = self.desk.cancel(client_order_id)
        except ClassroomError as refused:
            self.message = f"Cancel refused: {refused}"
            return
        self.message = f"Cancel of {client_order_id} sent" if out.ok else f"Cancel refused: {out.reason}"


class ClassTicketState(TicketState):
    """The order ticket of a student: orders go through their desk, so the class's rules apply
    (its phase, a trade note when the class asks for one) before the market's."""

    note = param.String(default="", doc="why this trade (the class may require it)")

    def __init__(self, desk: StudentDesk, **params: Any) -> None:
        self.desk = desk
        required = desk.state.rules.trade_notes_required
        self.note_label = "Trade note (required)" if required else "Trade note (optional)"
        super().__init__(market=_desk_market(desk), account=desk.account, **params)

    def submit(self) -> bool:
        """Send the order as typed through the student's desk; True if it went to the exchange."""
        i = self._inputs()
        try:
            out = self.desk.submit(i["symbol"], i["side"], i["quantity"], i["order_type"], i["limit_price"], self.tif,
                                   note=self.note)  # fmt: skip
        except OrderInputError as err:
            self.errors = {err.field: err.reason}
            self.result = FIX_FIELD
            return False
        except ClassroomError as refused:
            self.errors = {"note": str(refused)} if refused.code in ("note_required", "bad_text") else {}
            self.result = f"Not sent: {refused}"
            return False
        self.errors = {}
        self.result = f"Sent {out.client_order_id}" if out.ok else f"Refused: {out.reason}"
        if out.ok:
            self.note = ""  # a note belongs to one trade
        return out.ok


class StudentView(param.Parameterized):
    """What a student's page shows of their class (read from their desk each refresh)."""

    class_name = param.String(default="")
    display_name = param.String(default="")
    phase = param.String(default="")
    clock_running = param.Boolean(default=False)
    students = param.Integer(default=0, doc="active students in the class")
    news = param.String(default="", doc="headlines as escaped HTML")
    clock = param.Dict(default={}, doc="the class market's clock (once trading started)")
    account = param.String(default="", doc="the account the student trades now")
    signed_out = param.String(default="", doc="why this page no longer reaches the student's class")

    def __init__(self, desk: StudentDesk, **params: Any) -> None:
        self.desk = desk
        super().__init__(**params)
        self.refresh()

    def refresh(self) -> None:
        try:
            state = self.desk.state
            account = self.desk.account  # checked each time: a removal ends it, a reset moves it
        except ClassroomError as refused:
            self.signed_out = str(refused)
            return
        try:
            clock = self.desk.clock()
        except ClassroomError:  # no market before trading starts
            clock = {}
        self.param.update(
            class_name=state.name, display_name=self.desk.display_name, phase=state.phase.value,
            clock_running=state.clock_running, students=len(state.active), news=render_news(state),
            clock=clock, account=account,
        )  # fmt: skip

    @property
    def trading(self) -> bool:
        """Whether the class's market is open to this page (trading, or over with its results)."""
        return self.phase in (Phase.TRADING, Phase.FROZEN, Phase.ARCHIVED) and bool(self.clock)


def _class_bar(view: StudentView) -> str:
    if view.signed_out:
        return _signed_out_html(view.signed_out)
    phase = Phase(view.phase) if view.phase else Phase.DRAFT
    if phase is Phase.TRADING and not view.clock_running:
        status = "<b style='color:#e65100'>⏸ Your teacher paused the clock</b>"
    elif phase is Phase.TRADING:
        status = "<b style='color:#1b5e20'>● Trading</b>"
    else:
        status = f"<b>{html.escape(PHASE_WORDS[phase].capitalize())}</b>"
    return (f"<div class='vt-class-bar' style='display:flex;flex-wrap:wrap;gap:4px 24px;align-items:baseline'>"
            f"<div style='font-size:22px;font-weight:600' class='vt-class-name'>{html.escape(view.class_name)}</div>"
            f"<div>{status}</div>"
            f"<div>Signed in as <b class='vt-me'>{html.escape(view.display_name)}</b></div></div>")  # fmt: skip


def _class_news(news: str, signed_out: str) -> str:
    return "" if signed_out else f"<div style='margin-top:6px'>{news}</div>"


def _class_clock(clock: dict[str, Any], signed_out: str) -> str:
    # Its own pane: the clock changes every refresh, the bar (headlines included) seldom, so a
    # refresh sends the clock's few bytes, not the whole bar again.
    return "" if signed_out or not clock else f"<div class='vt-class-clock'>{render_clock(clock)}</div>"


def _signed_out_html(why: str) -> str:
    return (f"<div class='vt-signed-out' style='font-size:18px;padding:24px'><p>{html.escape(why)}.</p>"
            "<p><a href='join'>Join a class with its code</a>, or ask your teacher for your personal link.</p></div>")


def _waiting_html(view: StudentView) -> str:
    if view.signed_out:
        return ""
    who = "student has" if view.students == 1 else "students have"
    over = Phase(view.phase) in (Phase.FROZEN, Phase.ARCHIVED) if view.phase else False
    head = "This class is over" if over else "Your teacher starts trading soon"
    return (f"<div class='vt-waiting' style='text-align:center;padding:48px 12px'>"
            f"<div style='font-size:32px;font-weight:600'>{head}</div>"
            f"<div style='font-size:20px;margin-top:12px'>{view.students} {who} joined "
            f"{html.escape(view.class_name)} so far.</div>"
            "<div style='color:#555;margin-top:12px'>This page switches to the market by itself.</div></div>")


def student_page(room: Classroom, token: str | None, *, period_ms: int = 500) -> pn.template.BaseTemplate:
    """The page of the student whose token is ``token`` (their cookie or personal link): their
    class, its headlines and clock, the class leaderboard and a trading dashboard on their own
    account; a waiting page until trading starts; a message with a link to ``/join`` for no or
    a bad token."""
    try:
        desk = room.student(token)
    except ClassroomError as refused:
        return _template("vtrade · class", [pn.pane.HTML(_signed_out_html(str(refused)), sizing_mode="stretch_width")])
    view = StudentView(desk)
    bar = LiveHTML(pn.bind(lambda *_: _class_bar(view), view.param.class_name, view.param.phase,
                               view.param.clock_running, view.param.signed_out),
                       sizing_mode="stretch_width", css_classes=["vt-class-bar-pane"])  # fmt: skip
    news = LiveHTML(pn.bind(_class_news, view.param.news, view.param.signed_out), sizing_mode="stretch_width")
    clock = LiveHTML(pn.bind(_class_clock, view.param.clock, view.param.signed_out), sizing_mode="stretch_width",
                         css_classes=["vt-class-clock-pane"])  # fmt: skip
    body = pn.Column(sizing_mode="stretch_width")
    live: dict[str, Any] = {}

    def show_body() -> None:
        """The waiting page, or the trading views for the account the student has now."""
        if view.signed_out:
            body.objects = []
            live.clear()
            return
        if not view.trading:
            if "waiting" not in live:
                live.clear()
                live["waiting"] = LiveHTML(pn.bind(lambda *_: _waiting_html(view), view.param.students,
                                                       view.param.phase), sizing_mode="stretch_width")  # fmt: skip
                body.objects = [live["waiting"]]
            return
        if live.get("account") == view.account:
            return
        state = ClassTraderState(desk)
        ticket = ClassTicketState(desk, symbol=state.symbol)
        market = room.market(desk.state.class_id)
        assert market is not None  # trading (view.trading): the class's market is open
        chat = student_chat(desk, market)  # their account's copilot, under the class's switch
        label = (f"<b>{html.escape(view.display_name)}</b> · your orders, fills and portfolio below are yours "
                 "alone; the leaderboard shows your class.")  # fmt: skip
        live.clear()
        live.update(account=view.account, state=state, ticket=ticket, chat=chat)
        body.objects = [trader_views(state, ticket, label, copilot_panel(chat))]

    show_body()

    def tick() -> None:
        view.refresh()
        show_body()
        if "state" in live:
            live["state"].refresh()
            live["ticket"].update_preview()
            live["chat"].check()  # the teacher's switch shows at once

    keep_fresh(tick, period_ms)
    # The game (issue 13) refreshes on its own tick: it reads the game's log, not the market.
    game = StudentGame(desk)
    progress, game_cards, toasts = student_game_views(game)
    keep_fresh(game.refresh, max(period_ms, 1000))  # a toast a second late is fine; the market's views come first
    # The title is generic: Panel renders a template's title as HTML, and a class name is typed text.
    template = _template("vtrade · class", [pn.Column(bar, progress, clock, news, body, game_cards, toasts,
                                                      sizing_mode="stretch_width")])  # fmt: skip
    template.desk = desk  # type: ignore[attr-defined]  # for tests and logs
    template.live = live  # type: ignore[attr-defined]
    template.game = game  # type: ignore[attr-defined]
    return template


# ---------------------------------------------------------------------------- the teacher
#: The preset fields the teacher's form edits: (rule, label, widget kind).
PRESET_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("market", "Market", "market"), ("starting_cash", "Starting cash ($)", "text"),
    ("realism", "Realism", "realism"), ("fees", "Fees", "fees"), ("account_kind", "Accounts", "kind"),
    ("shorting_allowed", "Short selling", "bool"), ("max_trades_per_day", "Max trades a day (blank: no cap)", "text"),
    ("max_position_pct", "Max position % of NAV (blank: none)", "text"),
    ("trade_notes_required", "Trade notes required", "bool"), ("late_entry", "Late joining allowed", "bool"),
    ("peers_visible", "Students see each other's portfolios", "bool"),
)  # fmt: skip
_CHOICES = {"market": list(vc.MARKETS), "realism": ["bars", "L1", "L2", "L3"], "fees": list(FEE_PRESETS),
            "kind": ["cash", "margin"]}  # fmt: skip


def _typed(text: str | None) -> object:
    """A form's text as the value a rule takes: blank is None (no limit), a whole number an int;
    anything else as typed, for the rules to accept or refuse with their sentence."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return text


class TeacherState(param.Parameterized):
    """The teacher's page: the class in focus, its state and roster, and the answer of the
    last action of each group of controls (``messages``: group -> (done, sentence))."""

    class_id = param.String(default="", doc="the class in focus ('' = none yet)")
    classes = param.Dict(default={}, doc="label -> class id, newest last")
    info = param.Dict(default={}, doc="the focused class: name, phase, join code, students, clock, halted…")
    roster = param.DataFrame(default=pd.DataFrame(), doc="the roster as shown (roster_frame)")
    students = param.Dict(default={}, doc="label -> student id, for the per-student controls")
    symbols = param.List(default=[], doc="symbols and sectors of the class's market (event targets)")
    messages = param.Dict(default={}, doc="group -> (done, sentence) of the last action")
    link = param.String(default="", doc="the last personal link made")

    def __init__(self, room: Classroom, desk: TeacherDesk, origin: str = "", **params: Any) -> None:
        self.room, self.desk, self.origin = room, desk, origin
        super().__init__(**params)
        self.refresh()

    def refresh(self) -> None:
        """Read the classes, the focused class and its roster in one batch."""
        classes = {}
        for cid in self.room.classes():
            st = self.room.state(cid)
            if st.phase is not Phase.ARCHIVED or cid == self.class_id:
                classes[f"{st.name} ({cid})"] = cid
        updates: dict[str, Any] = {}
        if classes != self.classes:
            updates["classes"] = classes
        cid = self.class_id if self.class_id in classes.values() else (list(classes.values())[-1] if classes else "")
        updates["class_id"] = cid
        if cid:
            st = self.room.state(cid)
            market = self.room.market(cid)
            updates["info"] = {
                "name": st.name, "phase": st.phase.value, "join_code": st.join_code, "students": len(st.active),
                "clock_running": st.clock_running, "speed": st.speed, "halted": sorted(st.halted),
                "rules": st.rules, "clock": market.clock() if market is not None else {},
                "news": render_news(st, 6),
            }  # fmt: skip
            roster = roster_frame(self.room.roster(cid))
            if not roster.equals(self.roster):
                updates["roster"] = roster
            students = {f"{r.name} ({r.student_id})": r.student_id for r in roster.itertuples() if r.status == "active"}
            if students != self.students:
                updates["students"] = students
            symbols = []
            if market is not None:
                symbols = market.symbols()
                symbols += [s for s in getattr(market, "sectors", list)() if s not in symbols]
            if symbols != self.symbols:
                updates["symbols"] = symbols
        else:
            updates |= {"info": {}, "roster": pd.DataFrame(), "students": {}, "symbols": []}
        self.param.update(**updates)

    def act(self, group: str, action: Callable[[], object], done: str) -> bool:
        """Run a desk action; its refusal (or ``done``) becomes the group's message."""
        try:
            action()
        except ClassroomError as refused:
            self.messages = {**self.messages, group: (False, str(refused))}
            return False
        except (ValueError, TypeError) as bad:  # a value the market refused (e.g. halting a halted symbol)
            text = str(bad)
            self.messages = {**self.messages, group: (False, text[:1].upper() + text[1:])}
            return False
        self.messages = {**self.messages, group: (True, done)}
        self.refresh()
        return True

    def _focused(self, group: str) -> str | None:
        if not self.class_id:
            self.messages = {**self.messages, group: (False, "Create a class first")}
            return None
        return self.class_id

    # -------------------------------------------------------------- actions
    def create(self, name: str, preset: dict[str, Any]) -> None:
        made: dict[str, str] = {}

        def go() -> None:
            made["id"] = self.desk.create_class(name, ClassRules(**preset))

        if self.act("class", go, f"Created {name.strip()}"):
            self.class_id = made["id"]
            self.refresh()

    def save_settings(self, preset: dict[str, Any]) -> None:
        if (cid := self._focused("class")) is not None:
            self.act("class", lambda: self.desk.change_settings(cid, **preset), "Settings saved")

    def do(self, group: str, method: str, *args: Any, done: str) -> None:
        """``desk.<method>(class_id, *args)`` for the focused class."""
        if (cid := self._focused(group)) is not None:
            self.act(group, lambda: getattr(self.desk, method)(cid, *args), done)

    def personal_link(self, student_id: str) -> None:
        if (cid := self._focused("students")) is None:
            return
        made: dict[str, str] = {}

        def go() -> None:
            made["token"] = self.desk.personal_link(cid, student_id)

        if self.act("students", go, "Personal link made: give it to that student only (it signs them in)"):
            self.link = f"{self.origin}/student?token={made['token']}"

    def csv(self) -> io.BytesIO:
        """The focused class's roster as CSV (what :class:`pn.widgets.FileDownload` sends)."""
        if not self.class_id:
            return io.BytesIO(b"")
        return io.BytesIO(roster_csv(self.room.roster(self.class_id)))


def _section(title: str, *items: Any, css: str = "") -> pn.Column:
    return pn.Column(f"### {title}", *items, sizing_mode="stretch_width", css_classes=["vt-card", css],
                     styles={"border": "1px solid #ddd", "border-radius": "6px", "padding": "4px 12px",
                             "background": "#fff"}, min_width=300)  # fmt: skip


def _message(state: TeacherState, group: str) -> pn.pane.HTML:
    def show(messages: dict[str, tuple[bool, str]]) -> str:
        ok, text = messages.get(group, (True, ""))
        return _note(ok, text)

    return LiveHTML(pn.bind(show, state.param.messages), sizing_mode="stretch_width",
                        css_classes=[f"vt-msg-{group}"])  # fmt: skip


def _button(label: str, action: Callable[[], None], color: str = "primary") -> pn.widgets.Button:
    # Aligned with the bottom of the inputs beside it (their labels sit above them).
    button = pn.widgets.Button(label=label, color=color, align="end")
    button.on_click(lambda event: action())
    return button


def _class_form(state: TeacherState) -> pn.viewable.Viewable:
    """Create a class, or edit the focused class's preset (the rules say what may still change)."""
    name = pn.widgets.TextInput(label="Class name", placeholder="e.g. Econ 101, period 3", max_length=200)
    widgets: dict[str, pn.widgets.Widget] = {}
    defaults = ClassRules()
    for field, label, kind in PRESET_FIELDS:
        value = getattr(defaults, field)
        if kind == "bool":
            widgets[field] = pn.widgets.Checkbox(name=label, value=bool(value))
        elif kind == "text":
            widgets[field] = pn.widgets.TextInput(name=label, value="" if value is None else str(value))
        else:
            widgets[field] = pn.widgets.Select(name=label, options=_CHOICES[kind], value=str(value))

    def preset() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field, _label, kind in PRESET_FIELDS:
            v = widgets[field].value
            out[field] = _typed(v) if kind == "text" else v
        if out["starting_cash"] is None:
            out["starting_cash"] = ""  # blank cash is refused by the rules with their sentence, not defaulted
        return out

    def load(*_: object) -> None:  # the form shows the focused class's rules, for editing
        rules = state.info.get("rules")
        if not isinstance(rules, ClassRules):
            return
        for field, _label, kind in PRESET_FIELDS:
            v = getattr(rules, field)
            widgets[field].value = bool(v) if kind == "bool" else ("" if v is None else str(v))

    state.param.watch(load, "class_id")
    load()
    create = _button("Create class", lambda: state.create(name.value or "", preset()))
    save = _button("Save settings of this class", lambda: state.save_settings(preset()), "default")
    grid = pn.FlexBox(*widgets.values(), flex_wrap="wrap", gap="0 12px", sizing_mode="stretch_width")
    return _section("Class and rules", name, grid, pn.Row(create, save), _message(state, "class"), css="vt-class-form")


def _join_html(info: dict[str, Any], origin: str) -> str:
    if not info:
        return "<div style='color:#555'>No class yet: create one.</div>"
    phase = Phase(info["phase"])
    code = html.escape(info["join_code"])
    where = html.escape(f"{origin}/join")
    open_ = phase in (Phase.REGISTRATION, Phase.TRADING)
    return (f"<div style='font-size:15px'>{html.escape(info['name'])} is <b>{PHASE_WORDS[phase]}</b> · "
            f"{info['students']} student{'s' if info['students'] != 1 else ''}</div>"
            f"<div class='vt-join-code' style='font:700 44px/1.2 ui-monospace,monospace;letter-spacing:2px;"
            f"color:{'#000' if open_ else '#888'}'>{code}</div>"
            f"<div style='font-size:15px'>Students go to <b>{where}</b> and type this code."
            + ("" if open_ else " (Open registration first.)") + "</div>")  # fmt: skip


def _clock_html(info: dict[str, Any]) -> str:
    if not info:
        return ""
    clock = render_clock(info["clock"]) if info.get("clock") else "the market opens when you start trading"
    running = "running" if info["clock_running"] else "stopped"
    halted = ", ".join(info["halted"]) or "none"
    return (f"<div class='vt-teacher-clock'>Clock <b>{running}</b> at {info['speed']:g}× · {clock}</div>"
            f"<div>Halted: {html.escape(halted)}</div>")


def _news_of(info: dict[str, Any]) -> str:
    return str(info.get("news", ""))


def _projector_link(class_id: str) -> str:
    if not class_id:
        return ""
    return f"<a href='projector?class={html.escape(class_id)}' target='_blank'>Open the projector view</a>"


def teacher_page(room: Classroom, desk: TeacherDesk, *, origin: str = "", period_ms: int = 1000
                 ) -> pn.template.BaseTemplate:  # fmt: skip
    """The teacher's dashboard: classes and their presets, registration and the join code, the
    roster with per-student actions, the clock, market events and headlines, freezing, and the
    roster's CSV export. ``origin`` (``http://host:port``) makes the links it shows absolute."""
    state = TeacherState(room, desk, origin)
    pick = pn.widgets.Select(name="Class", options=state.classes, value=state.class_id or None, width=320)

    def classes_changed(*_: object) -> None:
        pick.options = state.classes
        if state.class_id and pick.value != state.class_id:
            pick.value = state.class_id

    state.param.watch(classes_changed, ["classes", "class_id"])
    def picked(event: param.parameterized.Event) -> None:
        state.class_id = event.new or ""
        state.refresh()

    pick.param.watch(picked, "value")

    # Registration and the join code.
    join = _section("Join code",
                    LiveHTML(pn.bind(_join_html, state.param.info, origin), sizing_mode="stretch_width"),
                    pn.Row(_button("Open registration", lambda: state.do("registration", "open_registration",
                                                                          done="Registration is open")),
                           _button("New join code", lambda: state.do("registration", "new_join_code",
                                                                      done="New code: the old one stops working"),
                                   "default")),
                    _message(state, "registration"), css="vt-join")  # fmt: skip

    # The roster and per-student actions.
    roster = LiveHTML(pn.bind(render_table, state.param.roster, ROSTER_COLUMNS, "No students yet", None,
                                  "vt-roster"), sizing_mode="stretch_width")  # fmt: skip
    who = pn.widgets.Select(name="Student", options=state.students, width=260)
    state.param.watch(lambda e: setattr(who, "options", e.new), "students")

    def on_student(method: str, done: str) -> Callable[[], None]:
        def run() -> None:
            if not who.value:
                state.messages = {**state.messages, "students": (False, "Choose a student first")}
                return
            state.do("students", method, who.value, done=done)
        return run

    def link() -> None:
        if who.value:
            state.personal_link(who.value)
        else:
            state.messages = {**state.messages, "students": (False, "Choose a student first")}

    download = pn.widgets.FileDownload(callback=state.csv, filename="roster.csv", label="Download roster (CSV)",
                                       button_type="default", embed=False)  # fmt: skip
    state.param.watch(lambda e: setattr(download, "filename", f"roster-{e.new}.csv"), "class_id")
    link_box = pn.widgets.TextInput(name="Personal link", value=state.param.link, sizing_mode="stretch_width",
                                    placeholder="choose a student, then Personal link: it signs them in")  # fmt: skip
    students = _section("Roster", roster,
                        pn.Row(who, _button("Reset account", on_student("reset_student", "Account reset"), "default"),
                               _button("Remove", on_student("remove_student", "Removed from the class"), "danger"),
                               _button("Personal link", link, "default")),
                        link_box, _message(state, "students"), download, css="vt-roster-card")  # fmt: skip

    # The clock.
    speed = pn.widgets.TextInput(name="Speed (simulated s per s; 0 = max)", value="1", width=200)
    clock = _section("Clock", LiveHTML(pn.bind(_clock_html, state.param.info), sizing_mode="stretch_width"),
                     pn.Row(_button("Start trading", lambda: state.do("clock", "start", done="Trading started")),
                            _button("Pause", lambda: state.do("clock", "pause", done="Clock paused"), "default"),
                            _button("Resume", lambda: state.do("clock", "resume", done="Clock running"), "default")),
                     pn.Row(speed, _button("Set speed", lambda: state.do("clock", "set_speed", _typed(speed.value),
                                                                         done="Speed set"), "default")),
                     _message(state, "clock"), css="vt-clock-card")  # fmt: skip

    # Market events and headlines.
    target = pn.widgets.AutocompleteInput(name="Symbol or sector", options=state.param.symbols, min_characters=0,
                                          restrict=False, case_sensitive=False, placeholder="AAPL or Energy",
                                          width=240)  # fmt: skip
    pct = pn.widgets.TextInput(name="Shock %", value="-10", width=90)
    reason = pn.widgets.TextInput(name="Halt reason", placeholder="news pending", width=200, max_length=200)
    factor = pn.widgets.TextInput(name="Depth ×", value="0.2", width=80)
    minutes = pn.widgets.TextInput(name="For minutes", value="30", width=90)
    headline = pn.widgets.TextInput(name="Headline to every student", placeholder="e.g. Fed raises rates 0.5%",
                                    max_length=500, sizing_mode="stretch_width")  # fmt: skip
    events = _section("Market events", target,
                      pn.Row(pct, _button("Shock", lambda: state.do("events", "shock", target.value, _typed(pct.value),
                                                                   done="Shock applied"))),
                      pn.Row(reason, _button("Halt", lambda: state.do("events", "halt", target.value, reason.value,
                                                                     done="Trading halted"), "warning"),
                             _button("Resume trading", lambda: state.do("events", "resume_trading", target.value,
                                                                       done="Trading resumed"), "default"),
                             ),
                      pn.Row(factor, minutes, _button("Drought", lambda: state.do(
                          "events", "drought", target.value, _typed(factor.value), _typed(minutes.value),
                          done="Liquidity drought on"), "default")),
                      _message(state, "events"),
                      pn.Row(headline, _button("Announce", lambda: state.do("news", "announce", headline.value,
                                                                           done="Sent to every student")),
                             sizing_mode="stretch_width"),
                      _message(state, "news"),
                      LiveHTML(pn.bind(_news_of, state.param.info), sizing_mode="stretch_width"),
                      css="vt-events")  # fmt: skip

    sure = pn.widgets.Checkbox(name="Yes, end trading for good (results become final)")

    def freeze() -> None:
        if not sure.value:
            state.messages = {**state.messages, "freeze": (False, "Tick the box first: freezing cannot be undone")}
            return
        state.do("freeze", "freeze", done="The class is frozen: results are final")
        sure.value = False

    end = _section("End of class", sure, pn.Row(_button("Freeze class", freeze, "danger"),
                                                _button("Archive", lambda: state.do("freeze", "archive",
                                                                                    done="Archived"), "default")),
                   LiveHTML(pn.bind(_projector_link, state.param.class_id)),
                   _message(state, "freeze"), css="vt-end")  # fmt: skip

    # Missions and the students' progress (issue 13), refreshed on a tick of their own.
    game = TeacherGame(state)
    state.param.watch(lambda _: game.refresh(), "class_id")
    missions = _section("Missions", *teacher_game_items(game, render_table), _message(state, "missions"),
                        css="vt-missions-teacher")  # fmt: skip
    # The copilot: on or off (an exam) and what the students asked it (issue 14).
    copilot = TeacherCopilot(state)
    state.param.watch(lambda _: copilot.refresh(), "class_id")
    copilot_card = _section("Copilot", *teacher_copilot_items(copilot, render_table), _message(state, "copilot"),
                            css="vt-copilot-teacher")  # fmt: skip

    top = pn.Row(pick, sizing_mode="stretch_width")
    grid = pn.FlexBox(join, clock, students, events, _class_form(state), end, missions, copilot_card, flex_wrap="wrap",
                      gap="12px", sizing_mode="stretch_width", align_items="flex-start")  # fmt: skip
    form = grid.objects[4]
    for card, basis in ((join, "420px"), (clock, "420px"), (students, "100%"), (events, "520px"), (form, "520px"),
                        (end, "300px"), (missions, "100%"), (copilot_card, "100%")):  # fmt: skip
        card.styles = {**card.styles, "flex": f"1 1 {basis}"}
    keep_fresh(state.refresh, period_ms)
    keep_fresh(game.refresh, max(period_ms, 2000))
    keep_fresh(copilot.refresh, max(period_ms, 2000))
    template = _template("vtrade · teacher", [pn.Column(top, grid, sizing_mode="stretch_width")])
    template.state = state  # type: ignore[attr-defined]  # for tests
    template.game = game  # type: ignore[attr-defined]
    template.copilot = copilot  # type: ignore[attr-defined]
    return template


# ---------------------------------------------------------------------------- the projector
class ProjectorState(param.Parameterized):
    """What the projector shows of one class, read each refresh."""

    class_name = param.String(default="")
    phase = param.String(default="")
    board = param.DataFrame(default=pd.DataFrame(), doc="the class leaderboard")
    tape = param.DataFrame(default=pd.DataFrame(), doc="a few symbols' last prices and changes")
    news = param.String(default="", doc="headlines as escaped HTML")
    clock = param.Dict(default={})
    clock_running = param.Boolean(default=False)

    def __init__(self, room: Classroom, class_id: str, **params: Any) -> None:
        self.room, self.class_id = room, class_id
        super().__init__(**params)
        self.hist = ColumnDataSource({"left": [], "right": [], "count": []})
        self.refresh()

    def refresh(self) -> None:
        st = self.room.state(self.class_id)
        market = self.room.market(self.class_id)
        board = self.room.leaderboard(self.class_id)
        tape = market.quotes(market.featured()[:6]) if market is not None else pd.DataFrame()
        self.param.update(class_name=st.name, phase=st.phase.value, board=board, tape=tape,
                          news=render_news(st, 4, big=True), clock=market.clock() if market is not None else {},
                          clock_running=st.clock_running)  # fmt: skip
        data: Any = _histogram(board["return_pct"].to_numpy(dtype=float))
        self.hist.data = data


def _histogram(returns: np.ndarray) -> dict[str, list[float]]:
    """Bins of the class's returns (%): about one bin per three students, at least 1 % wide, so
    a class at 0 % shows one bar instead of nothing."""
    if not len(returns):
        return {"left": [], "right": [], "count": []}
    lo, hi = float(np.floor(returns.min())), float(np.ceil(returns.max()))
    if hi - lo < 1:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(returns, bins=max(1, min(12, len(returns) // 3 + 1)), range=(lo, hi))
    return {"left": edges[:-1].tolist(), "right": edges[1:].tolist(), "count": counts.astype(float).tolist()}


def _board_html(board: pd.DataFrame) -> str:
    if board.empty:
        return "<div style='font-size:32px'>No students yet</div>"
    rows = []
    for r in board.head(10).to_dict("records"):
        ret = float(r["return_pct"])
        colour = "#1b5e20" if ret > 0 else ("#b71c1c" if ret < 0 else "#000")
        rows.append(f"<tr><td style='padding:4px 16px 4px 0;color:#555'>{r['rank']}</td>"
                    f"<td style='padding:4px 24px 4px 0'><div class='vt-name' style='max-width:11em;overflow:hidden;"
                    f"text-overflow:ellipsis;white-space:nowrap'>{html.escape(str(r['name']))}</div></td>"
                    f"<td style='text-align:right;padding-right:24px'>{fmt_money(float(r['nav']))}</td>"
                    f"<td style='text-align:right;color:{colour};font-weight:700'>{ret:+.2f}%</td></tr>")
    return ("<table class='vt-projector-board' style='font-size:32px;line-height:1.25;border-collapse:collapse;"
            "font-variant-numeric:tabular-nums;color:#000'>" + "".join(rows) + "</table>")


def _rankings_html(board: pd.DataFrame, metric: str, navs: pd.DataFrame) -> str:
    # Before anyone has a score (trading just started), the class ranked by NAV as before.
    if board.empty and not navs.empty:
        return ("<div class='vt-projector-metric' style='font-size:24px;color:#333'>Ranked by portfolio value "
                "(no scores yet)</div>" + _board_html(navs))
    return render_projector_board(board, metric)


def _tape_html(tape: pd.DataFrame) -> str:
    if tape.empty:
        return "<div style='font-size:28px;color:#444'>The market opens when trading starts</div>"
    cells = []
    for r in tape.to_dict("records"):
        ch = float(r.get("change_pct", 0.0))
        colour = "#1b5e20" if ch > 0 else ("#b71c1c" if ch < 0 else "#000")
        arrow = "▲" if ch > 0 else ("▼" if ch < 0 else "")
        halted = " <span style='background:#b71c1c;color:#fff;padding:0 6px'>HALTED</span>" if r.get("halted") else ""
        cells.append(f"<div style='margin-right:36px;white-space:nowrap'><b>{html.escape(str(r['symbol']))}</b> "
                     f"{r['last']:,.2f} <span style='color:{colour}'>{arrow}{ch:+.2f}%</span>{halted}</div>")
    return ("<div class='vt-tape' style='display:flex;flex-wrap:wrap;font-size:30px;font-variant-numeric:tabular-nums'>"
            + "".join(cells) + "</div>")


def _projector_clock(name: str, phase: str, clock: dict[str, Any], running: bool) -> str:
    when = clock["ts"].strftime("%H:%M:%S") if clock else "--:--:--"
    state = PHASE_WORDS[Phase(phase)] if phase else ""
    if phase == Phase.TRADING and not running:
        state = "paused"
    # ``vt-clock`` and ``data-wall`` as on every page: when the market computed what is shown
    # (benchmarks/bench_serve.py measures each page's update lag by it).
    wall = f" data-wall='{clock['wall']:.6f}'" if clock and "wall" in clock else ""
    return (f"<div style='display:flex;justify-content:space-between;align-items:baseline;flex-wrap:wrap'>"
            f"<div style='font-size:44px;font-weight:700'>{html.escape(name)}</div>"
            f"<div class='vt-projector-clock vt-clock'{wall} style='font-size:44px;font-variant-numeric:tabular-nums'>"
            f"{when} <span style='font-size:26px;color:#444'>{html.escape(state)}</span></div></div>")


def _heading(text: str) -> pn.pane.HTML:
    return pn.pane.HTML(f"<div style='font-size:30px;font-weight:700;margin:8px 0 4px'>{html.escape(text)}</div>",
                        sizing_mode="stretch_width")  # fmt: skip


def projector_page(room: Classroom, class_id: str, *, period_ms: int = 1000) -> pn.template.BaseTemplate:
    """The projector view of ``class_id``: top 10, the distribution of returns, the market tape
    and headlines, the clock, in large high-contrast type for the back of a room."""
    state = ProjectorState(room, class_id)
    title = Title(text="Students by return (%)", text_font_size="26px")
    fig = figure(height=320, sizing_mode="stretch_width", title=title, toolbar_location=None, tools="",
                 y_range=DataRange1d(start=0))  # fmt: skip
    fig.quad(left="left", right="right", bottom=0, top="count", source=state.hist, color=ACCENT, line_color="#fff")
    for axis in (*fig.xaxis, *fig.yaxis):
        axis.major_label_text_font_size = "20px"
    for ticker in fig.yaxis:  # counts of students: whole numbers only
        cast("Any", ticker.ticker).min_interval = 1
    head = LiveHTML(pn.bind(_projector_clock, state.param.class_name, state.param.phase, state.param.clock,
                                state.param.clock_running), sizing_mode="stretch_width")  # fmt: skip
    # The class's ranking on a metric (issue 13): the composite unless the teacher picks another.
    game = ProjectorGame(room, class_id)
    metric = pn.widgets.Select.from_param(game.param.metric, name="Rank by", width=200, options=METRICS)
    board = LiveHTML(pn.bind(_rankings_html, game.param.board, game.param.shown, state.param.board),
                     sizing_mode="stretch_width")  # fmt: skip
    tape = LiveHTML(pn.bind(_tape_html, state.param.tape), sizing_mode="stretch_width")
    news = LiveHTML(state.param.news, sizing_mode="stretch_width")
    left = pn.Column(_heading("Leaderboard"), metric, board, sizing_mode="stretch_width",
                     styles={"flex": "1 1 640px", "min-width": "0", "overflow": "hidden"})  # fmt: skip
    right = pn.Column(pn.pane.Bokeh(fig, sizing_mode="stretch_width"), _heading("Headlines"), news,
                      sizing_mode="stretch_width", styles={"flex": "1 1 480px"})  # fmt: skip
    main = pn.Column(head, tape, pn.FlexBox(left, right, flex_wrap="wrap", gap="24px", sizing_mode="stretch_width"),
                     sizing_mode="stretch_width",
                     stylesheets=[":host { color: #000; } h2 { font-size: 30px; margin: 12px 0 4px; }"])  # fmt: skip
    keep_fresh(state.refresh, period_ms)
    keep_fresh(game.refresh, period_ms)
    template = _template("vtrade · projector", [main])  # not the class name: Panel renders titles as HTML
    template.state = state  # type: ignore[attr-defined]
    template.game = game  # type: ignore[attr-defined]
    return template
