"""The copilot in a class: the teacher's switch and prompt log, and a student's chat.

- The teacher switches the class's copilot on or off (off for an exam:
  ``TeacherDesk.set_copilot``) and reads the prompt log (``TeacherDesk.prompt_log``): what each
  student asked, what the copilot answered and proposed, what they confirmed, what executed and
  what was refused, newest first. Everything in it that a student or the model wrote is shown as
  text (escaped by :func:`~vtrade.ui.trader.render_table`) and neutralised in the CSV export.
- A student's chat goes through their desk (:class:`DeskSigning`): their own account only, the
  class's switch (the chat says when the teacher switched the copilot off), the class's phase.

The views decide nothing: the desks apply the class's rules and answer with a sentence.

>>> log = pd.DataFrame({"ts": pd.to_datetime([1, 2], unit="s", utc=True), "name": ["Ada", "Ada"],
...     "type": ["CopilotAsked", "IntentRefused"], "text": ["buy 10 AAPL", "the intent expired"],
...     "code": [None, "expired"], "digest": [None, "ab" * 32], "flags": [None, None],
...     "client_order_id": [None, None]})
>>> prompt_log_frame(log)[["type", "digest"]].values.tolist()
[['refused', 'abababababab…'], ['asked', '']]
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import panel as pn
import param

from vtrade.core.events import Event
from vtrade.runtime.exports import write_csv
from vtrade.ui.copilot_chat import ChatState
from vtrade.ui.copilot_confirm import SignedOutcomeLike
from vtrade.ui.trader import LiveHTML

if TYPE_CHECKING:
    from vtrade.runtime.classroom import StudentDesk
    from vtrade.runtime.live import LiveMarket

__all__ = ["EVENT_WORDS", "PROMPT_COLUMNS", "DeskSigning", "TeacherCopilot", "prompt_log_csv", "prompt_log_frame",
           "student_chat", "teacher_copilot_items"]  # fmt: skip

#: The audit events as the prompt log names them.
EVENT_WORDS = {"CopilotAsked": "asked", "CopilotAnswered": "answered", "ProposalMade": "proposed",
               "IntentConfirmed": "confirmed", "IntentExecuted": "executed", "IntentRefused": "refused"}  # fmt: skip
#: The prompt log's columns as shown: (column, header, kind) as in :mod:`vtrade.ui.trader`.
PROMPT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("ts", "Time (UTC)", "time"), ("name", "Student", "text"), ("type", "Event", "text"),
    ("text", "What", "text"), ("code", "Code", "enum"), ("flags", "Flags", "text"),
    ("digest", "Intent (SHA-256)", "text"), ("client_order_id", "Order", "text"),
)  # fmt: skip
MAX_TEXT = 280  # characters of a question or answer shown in the table (the CSV has them whole)
SHOWN_ROWS = 200


def _flags(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        return "; ".join(str(v) for v in value)
    return str(value)


def _short(text: object, n: int) -> str:
    s = "" if text is None or (isinstance(text, float) and text != text) else " ".join(str(text).split())
    return s if len(s) <= n else s[: n - 1] + "…"


def prompt_log_frame(log: pd.DataFrame, *, whole: bool = False) -> pd.DataFrame:
    """The prompt log (``TeacherDesk.prompt_log``) as the teacher reads it: newest first, events
    in words, flags joined, the intent's digest shortened and long texts cut (``whole``: as
    exported, every row and every character)."""
    cols = [c for c, _, _ in PROMPT_COLUMNS]
    if log.empty:
        return pd.DataFrame(columns=cols)
    df = log.iloc[::-1].reset_index(drop=True)
    if not whole:
        df = df.head(SHOWN_ROWS)
    out = pd.DataFrame({c: df.get(c) for c in cols})
    out["type"] = [EVENT_WORDS.get(str(t), str(t)) for t in out["type"]]
    out["flags"] = [_flags(f) for f in out["flags"]]
    out["digest"] = ["" if not isinstance(d, str) else (d if whole else d[:12] + "…") for d in out["digest"]]
    out["text"] = [_short(t, 10**9 if whole else MAX_TEXT) for t in out["text"]]
    return out


def prompt_log_csv(log: pd.DataFrame) -> bytes:
    """The whole prompt log as CSV (UTF-8 with a BOM; anything a spreadsheet would run as a
    formula neutralised, as every vtrade export)."""
    df = prompt_log_frame(log, whole=True)
    df["ts"] = [t.strftime("%Y-%m-%d %H:%M:%S") if pd.notna(t) else "" for t in df["ts"]]
    df.columns = [h for _, h, _ in PROMPT_COLUMNS]
    with tempfile.TemporaryDirectory() as folder:
        return write_csv(df, Path(folder) / "prompt-log.csv").read_bytes()


class TeacherCopilot(param.Parameterized):
    """The copilot card of the teacher's page for the class in focus of ``state`` (a
    :class:`~vtrade.ui.classroom.TeacherState`): whether it is on, and its prompt log."""

    enabled = param.Boolean(default=True, doc="whether the focused class's copilot is on")
    # (Not ``log``: that name is param's own logging method on ``.param``.)
    prompts = param.DataFrame(default=pd.DataFrame(), doc="the focused class's prompt log, as shown")

    def __init__(self, state: Any, **params: Any) -> None:
        self.state = state
        self._raw = pd.DataFrame()
        super().__init__(**params)
        self.refresh()

    def refresh(self) -> None:
        cid = self.state.class_id
        if not cid:
            self.param.update(enabled=True, prompts=prompt_log_frame(pd.DataFrame()))
            return
        desk = self.state.desk
        raw = desk.prompt_log(cid)
        updates: dict[str, Any] = {"enabled": bool(desk.copilot_enabled(cid))}
        if len(raw) != len(self._raw) or self.prompts.empty != raw.empty:  # the log only grows
            updates["prompts"] = prompt_log_frame(raw)
        self._raw = raw
        self.param.update(**updates)

    def switch(self, on: bool) -> None:
        """Switch the focused class's copilot on or off (the answer shows under the switch)."""
        done = "The copilot is on for this class" if on else "The copilot is off for this class (students are told)"
        self.state.do("copilot", "set_copilot", bool(on), done=done)
        self.refresh()

    def csv(self) -> Any:
        import io

        return io.BytesIO(prompt_log_csv(self._raw))


def teacher_copilot_items(copilot: TeacherCopilot, render_table: Callable[..., str]) -> list[Any]:
    """The copilot card's contents: the on/off switch and the prompt log with its CSV."""
    switch = pn.widgets.RadioButtonGroup(options={"Copilot on": True, "Copilot off (exam)": False},
                                         value=copilot.enabled, color="primary", variant="outline",
                                         css_classes=["vt-copilot-switch"])  # fmt: skip
    syncing = False

    def chosen(event: param.parameterized.Event) -> None:
        if not syncing and event.new != copilot.enabled:
            copilot.switch(event.new)

    def follow(event: param.parameterized.Event) -> None:
        nonlocal syncing
        syncing = True
        try:
            switch.value = event.new
        finally:
            syncing = False

    switch.param.watch(chosen, "value")
    copilot.param.watch(follow, "enabled")
    state = LiveHTML(pn.bind(_switch_html, copilot.param.enabled), css_classes=["vt-copilot-state"])
    table = LiveHTML(pn.bind(render_table, copilot.param.prompts, PROMPT_COLUMNS,
                                 "Nothing asked yet: the students' questions show here", None, "vt-prompt-log"),
                         sizing_mode="stretch_width")  # fmt: skip
    download = pn.widgets.FileDownload(callback=copilot.csv, filename="prompt-log.csv", embed=False,
                                       label="Download prompt log (CSV)")  # fmt: skip
    words = pn.pane.HTML("<div style='font-size:13px;color:#555'>Off for an exam: the copilot answers nothing and "
                         "no copilot proposal executes, not even one signed before.</div>",
                         sizing_mode="stretch_width")  # fmt: skip
    return [pn.Row(switch, state), words, "#### Prompt log", table, download]


def _switch_html(on: bool) -> str:
    """Whether the copilot is on, in words and colour (not by a button's shade alone)."""
    if on:
        return "<b style='color:#1b5e20'>● On: students can ask it and confirm its proposals</b>"
    return "<b style='color:#b71c1c'>■ Off: it answers nothing and no copilot order executes</b>"


class DeskSigning:
    """A student's desk as the chat's market (:class:`~vtrade.ui.copilot_confirm.SigningMarket`):
    keys, confirmations and signed intents go through the desk, for the student's own account
    only, under the class's switch and phase."""

    def __init__(self, desk: StudentDesk) -> None:
        self.desk = desk

    def _mine(self, account: str) -> None:
        if account != self.desk.account:
            raise ValueError("a student's chat acts for their own account only")

    def register_key(self, account: str, public_key_hex: str) -> None:
        self._mine(account)
        self.desk.register_key(public_key_hex)

    def record_copilot(self, event: Event) -> None:
        self.desk.record_copilot(event)

    def submit_signed(self, account: str, intent_json: str, signature_hex: str,
                      public_key_hex: str) -> SignedOutcomeLike:  # fmt: skip
        self._mine(account)
        return self.desk.submit_signed(intent_json, signature_hex, public_key_hex)


def student_chat(desk: StudentDesk, market: LiveMarket) -> ChatState:
    """The chat of the student at ``desk``: the copilot reads the class's ``market`` for the
    student's account (and the class's headlines and missions through the desk), answers only
    while the class has it on, and audits through the desk; confirmations go through the desk
    too (:class:`DeskSigning`)."""
    from vtrade.runtime.copilot_service import CopilotSession

    account, cid = desk.account, desk.state.class_id
    # With the desk, the session takes the class's switch and audits through the desk.
    return ChatState(DeskSigning(desk), account, enabled=desk.copilot_enabled,
                     session=lambda: CopilotSession(market, account, class_id=cid, desk=desk))  # fmt: skip
