"""The game on the classroom's pages (issue 13): missions, progress, achievements, rankings.

- A student sees their missions (each with its status as a word, not only a colour), a Start
  button where a mission waits to be started and a Claim button where one is completed, their
  XP, level and badges, achievement toasts as they happen, and the class's rankings on a metric
  of their choice with their own rank and the ranks around them.
- The projector shows the class's ranking on a metric in large type.
- The teacher assigns missions and sees each student's progress.

Every action goes to a desk (:class:`~vtrade.runtime.classroom.StudentDesk`,
:class:`~vtrade.runtime.classroom.TeacherDesk`), which decides; a refusal's sentence is shown
next to the control (DESIGN.md §2). The buttons are offered where the domain would take them
(``available`` → Start, ``completed`` → Claim: :mod:`vtrade.game.machine`), a convenience, not
a rule: the desk refuses anything else with its sentence.

The ``render_*`` functions are pure (data in, escaped HTML out), tested without a browser:

>>> render_status("completed")
"<span class='vt-status vt-status-completed' ...>✓ Completed</span>"
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
import panel as pn
import param
from panel.custom import JSComponent

from vtrade.classroom import ClassroomError
from vtrade.game.errors import GameError
from vtrade.game.events import BadgeEarned, GameEvent, LevelReached, MissionChanged, Status
from vtrade.game.progression import BADGES, threshold
from vtrade.game.scoring import DEFAULT_GATES

__all__ = [
    "METRICS",
    "ActionHTML",
    "ProjectorGame",
    "StudentGame",
    "TeacherGame",
    "fmt_score",
    "parse_due",
    "parse_xp",
    "projector_board",
    "render_missions",
    "render_progress",
    "render_projector_board",
    "render_standings",
    "render_status",
    "render_toasts",
    "student_game_views",
    "teacher_game_items",
    "toast_text",
]

#: The rankings a person can pick: label -> metric of :data:`vtrade.runtime.game_worker.RANKED`.
METRICS: dict[str, str] = {"Composite": "composite", "Return": "return", "Sharpe": "sharpe",
                           "Drawdown": "max_drawdown", "XP": "xp"}  # fmt: skip
_METRIC_WORDS = {v: k for k, v in METRICS.items()}

# Each status as (word, mark, colour): the word and the mark carry the meaning, the colour only
# helps (a colour-blind student, a grey-scale printout, a projector washed out by daylight).
_STATUS: dict[str, tuple[str, str, str]] = {
    "locked": ("Locked", "▪", "#616161"), "available": ("Ready to start", "▸", "#1565c0"),
    "active": ("In progress", "●", "#6a1b9a"), "completed": ("Completed", "✓", "#1b5e20"),
    "claimed": ("Claimed", "★", "#2e7d32"), "failed": ("Failed", "✗", "#b71c1c"),
    "expired": ("Expired", "⌛", "#795548"),
}  # fmt: skip
# Where the domain takes a student's command (machine.start / machine.claim): the button offered.
_ACTIONS = {"available": ("start", "Start"), "completed": ("claim", "Claim")}
# The order a student reads their missions in: what they can act on first, what is over last.
_ORDER = {"completed": 0, "available": 1, "active": 2, "locked": 3, "claimed": 4, "failed": 5, "expired": 6}
#: The composite's formula with the gates the game scores with.
FORMULA = DEFAULT_GATES.formula()


def _esc(x: object) -> str:
    return html.escape(str(x))


def render_note(ok: bool, text: str) -> str:
    """An answer next to a control: done (✓) or refused (⚠, the desk's sentence), escaped.

    >>> render_note(False, "You already claimed 'First trade'")
    "<span class='vt-refused' ...>⚠ You already claimed &#x27;First trade&#x27;</span>"
    """
    if not text:
        return ""
    colour, mark, kind = ("#1b5e20", "✓", "vt-ok") if ok else ("#b71c1c", "⚠", "vt-refused")
    return f"<span class='{kind}' style='color:{colour};font-size:13px'>{mark} {_esc(text)}</span>"


def render_status(status: str) -> str:
    """A mission's status as a pill: a mark and a word on a colour."""
    word, mark, colour = _STATUS.get(status, (status.capitalize(), "", "#616161"))
    return (f"<span class='vt-status vt-status-{_esc(status)}' style='background:{colour};color:#fff;"
            f"border-radius:10px;padding:0 8px;font-size:12px;white-space:nowrap'>{mark} {_esc(word)}</span>")


def _due(due: Any) -> str:
    if due is None or due is pd.NaT or (isinstance(due, float) and due != due):
        return ""
    return pd.Timestamp(due).strftime("Due %Y-%m-%d %H:%M UTC (market time)")


def render_missions(missions: pd.DataFrame, titles: dict[str, str] | None = None,
                    notes: dict[str, tuple[bool, str]] | None = None) -> str:  # fmt: skip
    """A student's missions (:meth:`StudentDesk.missions`) as cards: title, status, XP, the
    one-line summary, the due date in market time, what it needs (by title), a Start or
    Claim button where the domain takes one (``data-action="start/<id>"``) and the answer of
    the last action on that mission (``notes``: mission -> (done, sentence)).

    >>> df = pd.DataFrame([{"mission": "m1", "title": "<b>T</b>", "summary": "Do it.", "status": "completed",
    ...                     "xp": 50, "due": pd.NaT, "needs": ""},
    ...                    {"mission": "m2", "title": "U", "summary": "Then this.", "status": "locked",
    ...                     "xp": 80, "due": pd.Timestamp("2024-03-08 16:00", tz="UTC"), "needs": "m0"}])
    >>> out = render_missions(df, {"m0": "First <i>trade</i>"}, {"m1": (False, "No <script>")})
    >>> "&lt;b&gt;T&lt;/b&gt;" in out and "<b>T</b>" not in out, "Needs: First &lt;i&gt;trade&lt;/i&gt;" in out
    (True, True)
    >>> "data-action='claim/m1'" in out, "aria-label='Claim &lt;b&gt;T&lt;/b&gt;'" in out, "&lt;script&gt;" in out
    (True, True, True)
    >>> "Due 2024-03-08 16:00 UTC" in out, out.count("<button")
    (True, 1)
    """
    if missions is None or missions.empty:
        return ("<div class='vt-missions vt-empty' style='color:#666;font-style:italic;padding:8px 0'>No missions "
                "yet: your teacher assigns them.</div>")
    titles, notes = titles or {}, notes or {}
    rows = sorted(missions.to_dict("records"), key=lambda r: (_ORDER.get(str(r["status"]), 9), str(r["title"])))
    cards = []
    for r in rows:
        mid, status = str(r["mission"]), str(r["status"])
        needs = [titles.get(n.strip(), n.strip()) for n in str(r.get("needs") or "").split(",") if n.strip()]
        meta = [m for m in (_due(r.get("due")), ("Needs: " + ", ".join(needs)) if needs and status == "locked"
                                                else "") if m]  # fmt: skip
        button = ""
        if status in _ACTIONS:
            action, label = _ACTIONS[status]
            button = (f"<button type='button' class='vt-mission-{action}' data-action='{action}/{_esc(mid)}' "
                      f"aria-label='{label} {_esc(r['title'])}' style='font:inherit;font-weight:600;padding:2px 14px;"
                      f"border-radius:4px;border:1px solid #1565c0;background:#1565c0;color:#fff;cursor:pointer'>"
                      f"{label}</button>")
        ok, text = notes.get(mid, (True, ""))
        tail = f"<div style='display:flex;flex-wrap:wrap;gap:4px 10px;align-items:center;margin-top:4px'>" \
               f"{button}{render_note(ok, text)}</div>" if button or text else ""  # fmt: skip
        cards.append(
            f"<div class='vt-mission' data-mission='{_esc(mid)}' data-status='{_esc(status)}' "
            "style='border-top:1px solid #e0e0e0;padding:6px 0'>"
            "<div style='display:flex;flex-wrap:wrap;gap:2px 10px;align-items:baseline'>"
            f"<b class='vt-mission-title' style='font-size:15px'>{_esc(r['title'])}</b>{render_status(status)}"
            f"<span style='color:#333;font-size:13px'>{int(r['xp'])} XP</span></div>"
            f"<div style='font-size:13px;color:#222'>{_esc(r['summary'])}</div>"
            + (f"<div style='font-size:12px;color:#555'>{_esc(' · '.join(meta))}</div>" if meta else "")
            + tail + "</div>"
        )  # fmt: skip
    return "<div class='vt-missions' style='overflow-wrap:anywhere'>" + "".join(cards) + "</div>"


def render_progress(progress: dict[str, Any]) -> str:
    """XP, level, the way to the next level and the badges (titles, described on hover).

    >>> out = render_progress({"xp": 150, "level": 1, "badges": ["first_fill"]})
    >>> "Level 1" in out, "150 XP" in out, "150 XP to level 2" in out, "First fill" in out
    (True, True, True, True)
    """
    if not progress:
        return ""
    xp, level = int(progress.get("xp", 0)), int(progress.get("level", 0))
    low, high = threshold(level), threshold(level + 1)
    pct = 100 * (xp - low) / (high - low) if high > low else 0
    badges = "".join(
        f"<span class='vt-badge' title='{_esc(BADGES[b].description if b in BADGES else b)}' style='border:1px solid "
        f"#b8860b;color:#6d4c00;background:#fff8e1;border-radius:10px;padding:0 8px;font-size:12px;"
        f"white-space:nowrap'>★ {_esc(BADGES[b].title if b in BADGES else b)}</span>"
        for b in progress.get("badges", [])
    )  # fmt: skip
    badges = badges or "<span style='color:#666;font-size:12px'>no badges yet</span>"
    return ("<div class='vt-progress' style='display:flex;flex-wrap:wrap;gap:4px 14px;align-items:center'>"
            f"<b class='vt-level' style='font-size:16px'>Level {level}</b>"
            f"<span class='vt-xp'>{xp} XP</span>"
            f"<span style='display:inline-flex;align-items:center;gap:6px;font-size:12px;color:#444'>"
            f"<span role='progressbar' aria-valuemin='{low}' aria-valuemax='{high}' aria-valuenow='{xp}' "
            f"style='display:inline-block;width:110px;height:8px;background:#e0e0e0;border-radius:4px;overflow:hidden'>"
            f"<span style='display:block;height:100%;width:{pct:.0f}%;background:#1565c0'></span></span>"
            f"{high - xp} XP to level {level + 1}</span>"
            f"<span style='display:flex;flex-wrap:wrap;gap:4px'>{badges}</span></div>")  # fmt: skip


def toast_text(event: GameEvent) -> str | None:
    """The achievement a game event is worth a toast for (escaped HTML), or None: a mission
    completed, a level reached, a badge earned.

    >>> from vtrade.game.events import Status
    >>> toast_text(BadgeEarned(1, "x/0", "a", "x", "first_fill", "First <fill>"))
    '<b>Badge earned: First &lt;fill&gt;</b><br>Your first order filled.'
    >>> toast_text(MissionChanged(1, "x/1", "a", "x", "m", Status.ACTIVE, Status.FAILED, "late")) is None
    True
    """
    match event:
        case MissionChanged(after=Status.COMPLETED, reason=reason):
            return f"<b>Mission complete</b><br>{_esc(reason.rstrip('.'))}. Claim your XP in Missions."
        case LevelReached(level=level, xp=xp):
            return f"<b>Level {level} reached</b><br>You have {xp} XP."
        case BadgeEarned(badge=badge, title=title):
            about = f"<br>{_esc(BADGES[badge].description)}" if badge in BADGES else ""
            return f"<b>Badge earned: {_esc(title)}</b>{about}"
    return None


# Toasts never take taps (pointer-events: none: what is under them stays usable); on a phone they
# sit at the bottom, one at a time and smaller, so they never cover the ticket or the missions.
_TOAST_CSS = (
    "<style>.vt-toasts{position:fixed;top:64px;right:12px;z-index:1000;display:flex;flex-direction:column;"
    "gap:8px;max-width:calc(100vw - 24px);pointer-events:none}"
    ".vt-toast{background:#1b5e20;color:#fff;padding:10px 14px;border-radius:6px;"
    "box-shadow:0 2px 8px rgba(0,0,0,.3);font-size:14px;max-width:320px}"
    "@media (max-width:600px){.vt-toasts{top:auto;bottom:8px;left:8px;right:8px}"
    ".vt-toast{max-width:none;font-size:13px;padding:6px 10px;opacity:.95}"
    ".vt-toast:not(:last-child){display:none}}</style>"
)


def render_toasts(toasts: Iterable[tuple[str, str]]) -> str:
    """The toasts shown now (``(event id, HTML)``, oldest first), in a corner that stays on
    screen while the page scrolls (on a phone: the newest only, at the bottom); ``role=status``
    so a screen reader says them."""
    items = "".join(f"<div class='vt-toast' data-event='{_esc(eid)}'>{text}</div>" for eid, text in toasts)
    return f"{_TOAST_CSS}<div class='vt-toasts' role='status' aria-live='polite'>{items}</div>"


def fmt_score(metric: str, score: float) -> str:
    """A ranking's score as people read it (the boards keep "higher is better": a drawdown
    is stored negated, so −0.05 reads "5.00 % drawdown").

    >>> fmt_score("return", 0.0123), fmt_score("max_drawdown", -0.05), fmt_score("xp", 150.0)
    ('+1.23%', '−5.00%', '150 XP')
    """
    if metric == "return":
        return f"{score * 100:+.2f}%".replace("-", "−")
    if metric == "max_drawdown":
        return f"−{abs(score) * 100:.2f}%"
    if metric == "xp":
        return f"{score:.0f} XP"
    if metric == "sharpe":
        return f"{score:.2f}".replace("-", "−")
    return f"{score:+.3f}".replace("-", "−")


def _board_rows(df: pd.DataFrame, metric: str) -> str:
    rows = []
    for r in df.to_dict("records"):
        me = bool(r.get("me"))
        style = "background:#e3f2fd;font-weight:700" if me else ""
        you = " <span class='vt-you' style='font-size:11px'>(you)</span>" if me else ""
        rows.append(f"<tr class='{'vt-me-row' if me else ''}' style='border-top:1px solid #eee;{style}'>"
                    f"<td style='padding:2px 6px;text-align:right'>{int(r['rank'])}</td>"
                    f"<td style='padding:2px 6px;max-width:14em;overflow:hidden;text-overflow:ellipsis;"
                    f"white-space:nowrap'>{_esc(r['name'])}{you}</td>"
                    f"<td style='padding:2px 6px;text-align:right'>{fmt_score(metric, float(r['score']))}</td></tr>")
    return ("<table style='border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums;width:100%'>"
            "<thead><tr><th style='text-align:right;padding:2px 6px'>#</th><th style='text-align:left;padding:2px 6px'>"
            f"Student</th><th style='text-align:right;padding:2px 6px'>{_esc(_METRIC_WORDS.get(metric, metric))}</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")  # fmt: skip


def render_standings(top: pd.DataFrame, around: pd.DataFrame, metric: str) -> str:
    """The class's top (rank, name, score, me) on ``metric``, "you are #k" and, when that is
    below the top, the ranks around this student; the composite's formula under it.

    >>> top = pd.DataFrame({"rank": [1, 2], "name": ["<i>Bo</i>", "Ada"], "score": [0.1, 0.05], "me": [False, True]})
    >>> out = render_standings(top, top.iloc[1:], "return")
    >>> "You are <b>#2</b>" in out, "&lt;i&gt;Bo&lt;/i&gt;" in out, "+10.00%" in out, "composite =" in out
    (True, True, True, True)
    """
    word = _METRIC_WORDS.get(metric, metric)
    if top is None or top.empty:
        board = f"<div style='color:#666;font-style:italic;padding:6px 0'>Nobody is ranked on {_esc(word)} yet.</div>"
    else:
        board = _board_rows(top, metric)
    mine = around[around["me"].astype(bool)] if around is not None and not around.empty else pd.DataFrame()
    if mine.empty:
        why = (" It needs a diversified portfolio: see how the composite works below." if metric == "composite"
               else "")  # fmt: skip
        where = f"<div class='vt-my-rank'>You are not ranked on {_esc(word)} yet.{why}</div>"
    else:
        rank = int(mine["rank"].iloc[0])
        where = f"<div class='vt-my-rank'>You are <b>#{rank}</b> on {_esc(word)}.</div>"
        shown = set(top["rank"]) if top is not None and not top.empty else set()
        if rank not in shown:
            where += "<div style='margin-top:4px;font-size:12px;color:#444'>Around you</div>" + _board_rows(around,
                                                                                                           metric)
    formula = (f"<details class='vt-formula'{' open' if metric == 'composite' else ''} style='margin-top:6px'>"
               "<summary style='cursor:pointer'>How the composite score works</summary>"
               f"<pre style='white-space:pre-wrap;font-size:12px;margin:4px 0'>{_esc(FORMULA)}</pre></details>")
    return f"<div class='vt-standings'>{board}<div style='margin-top:6px'>{where}</div>{formula}</div>"


class ActionHTML(JSComponent):
    """HTML whose buttons can be clicked: a click on an element with ``data-action`` sets
    ``clicked`` to it (rendered on the server like every view here; only the click is browser
    code, a few lines, nothing downloaded)."""

    object = param.String(default="", doc="the HTML shown")
    clicked = param.String(default="", doc="the data-action of the last click ('' once handled)")

    _esm = """
    export function render({ model, el }) {
      const box = document.createElement('div')
      box.innerHTML = model.object
      model.on('object', () => { box.innerHTML = model.object })
      box.addEventListener('click', (e) => {
        const button = e.target.closest('[data-action]')
        if (button) { model.clicked = button.dataset.action }
      })
      return box
    }
    """


# ---------------------------------------------------------------------------- the student
class StudentGame(param.Parameterized):
    """The game as one student's page shows it, read from their desk.

    Missions and progress are re-read only when a game event for this student arrives (they
    change only then); the rankings every ``board_every`` refreshes (they move with every
    portfolio snapshot, which makes no game event) or at once when the metric changes.
    """

    missions = param.DataFrame(default=pd.DataFrame(), doc="the student's missions (StudentDesk.missions)")
    titles = param.Dict(default={}, doc="mission id -> title")
    progress = param.Dict(default={}, doc="xp, level, badges")
    metric: param.Selector[str] = param.Selector(objects=METRICS, default="composite", doc="the ranking shown")
    top = param.DataFrame(default=pd.DataFrame(), doc="the top 10 on the metric")
    around = param.DataFrame(default=pd.DataFrame(), doc="the ranks around this student")
    notes = param.Dict(default={}, doc="mission -> (done, sentence) of the last action on it")
    toasts = param.List(default=[], doc="(event id, HTML) shown now")

    def __init__(self, desk: Any, *, board_every: int = 4, toast_s: float = 15.0,
                 clock: Callable[[], float] = time.monotonic, **params: Any) -> None:  # fmt: skip
        self.desk, self.board_every, self.toast_s, self.clock = desk, board_every, toast_s, clock
        super().__init__(**params)
        self._offset: int | None = None
        self._seen: set[str] = set()  # event ids already toasted: a redelivered event is not shown twice
        self._expiry: dict[str, float] = {}
        self._ticks = 0
        self.param.watch(lambda _: self.refresh_board(), "metric")
        self.refresh(force=True)

    def refresh(self, *, force: bool = False) -> None:
        """New events (toasts), then missions and progress if anything of this student moved."""
        try:
            events, self._offset = self.desk.game_events(self._offset)
        except ClassroomError:  # removed, or no class: the page says so elsewhere
            return
        fresh = [e for e in events if e.id not in self._seen]
        self._seen.update(e.id for e in fresh)
        updates: dict[str, Any] = {}
        if fresh or force:
            updates |= {"missions": self.desk.missions(), "progress": self.desk.progress()}
            if force or set(updates["missions"].mission) - set(self.titles):
                updates["titles"] = self.desk.mission_titles()
        now = self.clock()
        toasts = [(i, t) for i, t in self.toasts if self._expiry.get(i, 0) > now]
        for e in fresh:
            if (text := toast_text(e)) is not None:
                toasts.append((e.id, text))
                self._expiry[e.id] = now + self.toast_s
        if toasts != self.toasts:
            updates["toasts"] = toasts[-4:]
        self.param.update(**updates)
        self._ticks += 1
        if force or self._ticks % self.board_every == 0:
            self.refresh_board()

    def refresh_board(self) -> None:
        try:
            top = self.desk.leaderboard(self.metric, n=10)
            around = self.desk.leaderboard(self.metric, around_me=2)
        except ClassroomError:
            return
        self.param.update(top=top, around=around)

    def act(self, action: str) -> None:
        """``"start/<mission>"`` or ``"claim/<mission>"``: the desk's answer goes next to it."""
        verb, _, mission = action.partition("/")
        run = {"start": self.desk.start_mission, "claim": self.desk.claim_mission}.get(verb)
        if run is None or not mission:
            return
        try:
            run(mission)
        except (GameError, ClassroomError) as refused:
            self.notes = {**self.notes, mission: (False, str(refused))}
        else:
            done = "Started" if verb == "start" else "Claimed: the XP is yours"
            self.notes = {**self.notes, mission: (True, done)}
        self.refresh(force=True)


def _card(title: str, *items: Any, css: str) -> pn.Column:
    return pn.Column(f"### {title}", *items, sizing_mode="stretch_width", css_classes=["vt-card", css],
                     styles={"border": "1px solid #ddd", "border-radius": "6px", "padding": "0 12px 8px",
                             "background": "#fff"})  # fmt: skip


def student_game_views(game: StudentGame) -> tuple[pn.viewable.Viewable, pn.viewable.Viewable, pn.viewable.Viewable]:
    """(the progress line, the missions and rankings cards, the toasts) of a student's page."""
    progress = pn.pane.HTML(pn.bind(render_progress, game.param.progress), sizing_mode="stretch_width",
                            css_classes=["vt-progress-pane"])  # fmt: skip
    missions = ActionHTML(object=render_missions(game.missions, game.titles, game.notes), sizing_mode="stretch_width")

    def show(*_: object) -> None:
        missions.object = render_missions(game.missions, game.titles, game.notes)

    def clicked(event: param.parameterized.Event) -> None:
        if event.new:
            missions.clicked = ""  # the same button can be clicked again
            game.act(event.new)

    game.param.watch(show, ["missions", "titles", "notes"])
    missions.param.watch(clicked, "clicked")
    metric = pn.widgets.Select.from_param(game.param.metric, name="Rank by", width=180)
    board = pn.pane.HTML(pn.bind(render_standings, game.param.top, game.param.around, game.param.metric),
                         sizing_mode="stretch_width")  # fmt: skip
    cards = pn.FlexBox(
        _card("Missions", missions, css="vt-missions-card"),
        _card("Class rankings", metric, board, css="vt-rankings-card"),
        flex_wrap="wrap", gap="8px 16px", align_items="flex-start", sizing_mode="stretch_width",
    )  # fmt: skip
    for card, basis in zip(cards.objects, ("520px", "340px"), strict=True):
        card.styles = {**card.styles, "flex": f"1 1 {basis}", "min-width": "0"}
    toasts = pn.pane.HTML(pn.bind(render_toasts, game.param.toasts), sizing_mode="stretch_width", margin=0,
                          css_classes=["vt-toasts-pane"])  # fmt: skip
    return progress, cards, toasts


# ---------------------------------------------------------------------------- the projector
def projector_board(room: Any, class_id: str, metric: str = "composite", n: int = 10) -> tuple[str, pd.DataFrame]:
    """The metric the projector shows and its top ``n``: ``metric``, or return when nobody
    qualifies on it yet (the composite's gates keep a new class off its board)."""
    board = room.standings(class_id, metric, n=n)
    if board.empty and metric != "return":
        return "return", room.standings(class_id, "return", n=n)
    return metric, board


def render_projector_board(board: pd.DataFrame, metric: str) -> str:
    """The class's top on ``metric`` for the back of the room: large, high contrast, names escaped.

    >>> out = render_projector_board(pd.DataFrame({"rank": [1], "name": ["<b>Bo</b>"], "score": [0.02]}), "return")
    >>> "&lt;b&gt;Bo&lt;/b&gt;" in out, "+2.00%" in out, "Ranked by return" in out
    (True, True, True)
    """
    word = _METRIC_WORDS.get(metric, metric)
    word = word if word in ("XP", "Sharpe") else word.lower()  # names stay capitalised
    head = f"<div class='vt-projector-metric' style='font-size:24px;color:#333'>Ranked by {_esc(word)}</div>"
    if board is None or board.empty:
        return head + "<div style='font-size:32px'>Nobody is ranked yet</div>"
    rows = []
    for r in board.to_dict("records"):
        score = float(r["score"])
        colour = "#000" if metric not in ("return", "composite") else (
            "#1b5e20" if score > 0 else ("#b71c1c" if score < 0 else "#000"))  # fmt: skip
        rows.append(f"<tr><td style='padding:4px 16px 4px 0;color:#555'>{int(r['rank'])}</td>"
                    f"<td style='padding:4px 24px 4px 0'><div class='vt-name' style='max-width:11em;overflow:hidden;"
                    f"text-overflow:ellipsis;white-space:nowrap'>{_esc(r['name'])}</div></td>"
                    f"<td style='text-align:right;color:{colour};font-weight:700'>{fmt_score(metric, score)}</td></tr>")
    return (head + "<table class='vt-projector-board vt-projector-standings' style='font-size:32px;line-height:1.25;"
            "border-collapse:collapse;font-variant-numeric:tabular-nums;color:#000'>" + "".join(rows) + "</table>")


class ProjectorGame(param.Parameterized):
    """The projector's ranking: the chosen metric (composite unless changed), read each refresh."""

    metric: param.Selector[str] = param.Selector(objects=METRICS, default="composite")
    shown = param.String(default="composite", doc="the metric shown (return when nobody qualifies on the chosen)")
    board = param.DataFrame(default=pd.DataFrame())

    def __init__(self, room: Any, class_id: str, **params: Any) -> None:
        self.room, self.class_id = room, class_id
        super().__init__(**params)
        self.param.watch(lambda _: self.refresh(), "metric")
        self.refresh()

    def refresh(self) -> None:
        shown, board = projector_board(self.room, self.class_id, self.metric)
        self.param.update(shown=shown, board=board)


# ---------------------------------------------------------------------------- the teacher
def parse_due(text: str | None, now: pd.Timestamp | None) -> int | None:
    """A due date as typed: blank (none), a date and time in market time (UTC), or ``+``
    and a span from the market's time now (``+2 days``, ``+90 min``); as ns since the epoch.
    The domain refuses a date already past with its sentence.

    >>> parse_due("", None), parse_due("2024-03-08 16:00", None) == pd.Timestamp("2024-03-08 16:00", tz="UTC").value
    (None, True)
    >>> parse_due("+1 day", pd.Timestamp("2024-03-01", tz="UTC")) == pd.Timestamp("2024-03-02", tz="UTC").value
    True
    >>> parse_due("soon", None)
    Traceback (most recent call last):
    ...
    ValueError: Due date 'soon' not understood: write a date and time like 2024-03-08 16:00, or +2 days
    """
    text = (text or "").strip()
    if not text:
        return None
    bad = ValueError(f"Due date {text!r} not understood: write a date and time like 2024-03-08 16:00, or +2 days")
    try:
        if text.startswith("+"):
            if now is None:
                raise ValueError("The market has not started: give the due date as a date and time")
            return int((now + pd.Timedelta(text[1:].strip())).value)
        ts = pd.Timestamp(text)
    except ValueError as err:
        if "market has not started" in str(err):
            raise
        raise bad from None
    if pd.isna(ts):
        raise bad
    return int((ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).value)


def parse_xp(text: str | None) -> int | None:
    """The XP as typed: blank (the mission's own), else a whole number (the domain judges it).

    >>> parse_xp(""), parse_xp(" 120 ")
    (None, 120)
    """
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"XP {text!r} is not a whole number: leave it blank for the mission's own XP") from None


#: The teacher's per-student game view: (column, header, kind of ``render_table``).
PROGRESS_COLUMNS = (
    ("name", "Name", "text"), ("level", "Level", "text"), ("xp", "XP", "text"), ("badges", "Badges", "text"),
    ("assigned", "Missions", "text"), ("active", "In progress", "text"), ("completed", "To claim", "text"),
    ("claimed", "Claimed", "text"), ("missed", "Failed or expired", "text"),
)  # fmt: skip


class TeacherGame(param.Parameterized):
    """The game as the teacher's page shows it for the focused class of ``state``
    (:class:`vtrade.ui.classroom.TeacherState`): the catalog to assign from, per-student progress."""

    catalog = param.Dict(default={}, doc="label -> mission id")
    progress = param.DataFrame(default=pd.DataFrame(), doc="TeacherDesk.game_progress")

    def __init__(self, state: Any, **params: Any) -> None:
        self.state = state
        super().__init__(**params)
        self._class = ""
        self.refresh()

    def refresh(self) -> None:
        cid = self.state.class_id
        if not cid:
            self.param.update(catalog={}, progress=pd.DataFrame())
            return
        updates: dict[str, Any] = {}
        if cid != self._class or not self.catalog:
            cat = self.state.desk.catalog(cid)
            updates["catalog"] = {f"{r.title} ({r.xp} XP)": r.mission for r in cat.itertuples()}
            self._class = cid
        progress = self.state.desk.game_progress(cid)
        if not progress.equals(self.progress):
            updates["progress"] = progress
        self.param.update(**updates)

    def assign(self, mission: str | None, due: str, xp: str, students: list[str]) -> None:
        """Assign ``mission`` to ``students`` (none: everyone) through the teacher's desk; the
        answer goes to the page's ``missions`` message."""
        if not mission:
            self.state.messages = {**self.state.messages, "missions": (False, "Choose a mission first")}
            return
        clock = self.state.info.get("clock") or {}

        def go() -> None:
            self.state.desk.assign_mission(self.state.class_id, mission, due_ts=parse_due(due, clock.get("ts")),
                                           xp=parse_xp(xp), students=students)  # fmt: skip

        who = f"{len(students)} student{'s' if len(students) != 1 else ''}" if students else "everyone"
        if self.state.act("missions", go, f"Assigned {mission} to {who}"):
            self.refresh()


def teacher_game_items(game: TeacherGame, render_table: Callable[..., str]) -> list[Any]:
    """The controls and views of the teacher's Missions card (the page wraps them in its card)."""
    state = game.state
    mission = pn.widgets.Select(name="Mission", options=game.catalog, width=300)
    game.param.watch(lambda e: setattr(mission, "options", e.new), "catalog")
    due = pn.widgets.TextInput(name="Due date (optional)", placeholder="2024-03-08 16:00 UTC, or +2 days",
                               width=240)  # fmt: skip
    xp = pn.widgets.TextInput(name="XP (blank: the mission's)", width=150)
    # A native list, not MultiChoice: Choices.js renders option labels as HTML, and a display
    # name is typed text (an ``<img onerror>`` name ran there).
    who = pn.widgets.MultiSelect(name="Only these students (none chosen: everyone, later joiners too)",
                                 options=state.students, size=4, sizing_mode="stretch_width")  # fmt: skip
    state.param.watch(lambda e: setattr(who, "options", e.new), "students")
    button = pn.widgets.Button(label="Assign mission", color="primary", align="end")
    button.on_click(lambda _: game.assign(mission.value, due.value or "", xp.value or "", list(who.value)))
    table = pn.pane.HTML(pn.bind(render_table, game.param.progress, PROGRESS_COLUMNS, "No students yet", None,
                                 "vt-game-progress"), sizing_mode="stretch_width")  # fmt: skip
    row = pn.FlexBox(mission, due, xp, button, flex_wrap="wrap", gap="0 12px", sizing_mode="stretch_width")
    return [row, who, table]
