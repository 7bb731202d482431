"""The ``/admin`` page: the workers on the server's bus and its groups' lag, refreshed every 2 s.

The page shows the same table as ``vtrade status`` (:mod:`vtrade.ops.status`): one row per
worker heartbeat on the ``status`` topic (the served market's embedded execution worker among
them) and one row per partition of every group, the served market's own groups
(:attr:`LiveMarket.consumer_groups`) included. It only reads: nothing here changes the market.
The views are functions of an :class:`AdminState`'s table; the table is computed by the ops layer.

>>> from vtrade.ops.status import status_table
>>> html_text = status_html(status_table([], {"orders": [3]}, {("live-broker", "orders"): [None]}, now_ns=0))
>>> "never" in html_text and "live-broker" in html_text
True
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable
from typing import Any

import panel as pn
import param

from vtrade.ops.status import GroupPartition, StatusTable, partition_spans, status_table
from vtrade.runtime.bus import Bus
from vtrade.runtime.live import LiveMarket
from vtrade.runtime.status import StatusReader
from vtrade.ui.classroom import _template
from vtrade.ui.trader import LiveHTML, keep_fresh

__all__ = ["AdminState", "admin_page", "status_html"]

log = logging.getLogger(__name__)

_CSS = """
:host { font-size: 14px; }
.vt-admin { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
.vt-admin th, .vt-admin td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; white-space: nowrap; }
.vt-admin td.n, .vt-admin th.n { text-align: right; }
.vt-admin tr.stale td { color: #b71c1c; }
.vt-admin tr.stopped td { color: #777; }
.vt-scroll { overflow-x: auto; max-width: 100%; }
.vt-muted { color: #555; }
"""


class AdminState(param.Parameterized):
    """The status table of one bus (with ``groups``, (group, topic) pairs to show beside those
    the heartbeats name), re-read on :meth:`refresh` (``error``: why the last read failed)."""

    table = param.ClassSelector(class_=StatusTable, doc="the latest status table")
    error = param.String(default="", doc="why the last refresh could not read the bus ('' when it could)")

    def __init__(self, bus: Bus, groups: Iterable[tuple[str, str]] = (), **params: Any) -> None:
        super().__init__(table=status_table([], {}, {}, 0), **params)
        self._reader = StatusReader(bus, groups=groups)
        self.refresh()

    def refresh(self) -> None:
        try:
            table = self._reader.table()
        except Exception as exc:  # a bus that went away: the page says so and tries again
            log.warning("admin: cannot read the status: %s", exc)
            self.error = f"cannot read the status: {type(exc).__name__}: {exc}"
            return
        self.table, self.error = table, ""


def _n(value: int | None, never: str = "—") -> str:
    return never if value is None else f"{value:,}"


def _cells(cells: list[tuple[str, bool]]) -> str:
    return "".join(f"<td class='n'>{html.escape(c)}</td>" if num else f"<td>{html.escape(c)}</td>" for c, num in cells)


def _head(names: list[tuple[str, bool]]) -> str:
    return "".join(f"<th class='n'>{n}</th>" if num else f"<th>{n}</th>" for n, num in names)


def _partition_rows(groups: tuple[GroupPartition, ...]) -> str:
    rows = []
    for g in groups:
        rows.append("<tr>" + _cells([
            (g.group, False), (g.topic, False), (str(g.partition), True), (_n(g.end), True),
            (_n(g.committed, "never"), True), (_n(g.lag), True), (_n(g.snapshot), True), (g.owner or "—", False),
        ]) + "</tr>")  # fmt: skip
    return "".join(rows)


def status_html(table: StatusTable, error: str = "") -> str:
    """The status table as two HTML tables (escaped): workers, then partitions by group."""
    out = [f"<p class='vt-muted'>⚠ {html.escape(error)}</p>"] if error else []
    if table.workers:
        head = _head([("worker", False), ("kind", False), ("state", False), ("host:pid", False),
                      ("last beat", True), ("processed", True), ("rec/s", True), ("lag", True),
                      ("partitions", False)])  # fmt: skip
        rows = "".join(
            f"<tr class='{w.state}'>" + _cells([
                (w.worker, False), (w.kind, False), (w.state, False), (f"{w.host}:{w.pid}", False),
                (f"{w.age_s:.1f} s ago", True), (f"{w.processed:,}", True), (f"{w.rate:,.1f}", True),
                (f"{w.lag:,}", True), (partition_spans(w.partitions), False),
            ]) + "</tr>"
            for w in table.workers
        )  # fmt: skip
        table_html = f"<table class='vt-admin'><tr>{head}</tr>{rows}</table>"
        out.append(f"<h3>Workers</h3><div class='vt-scroll'>{table_html}</div>")
    else:
        out.append("<h3>Workers</h3><p class='vt-muted'>No worker heartbeats on the status topic yet.</p>")
    head = _head([("group", False), ("topic", False), ("partition", True), ("end", True), ("committed", True),
                  ("lag", True), ("snapshot", True), ("owner", False)])  # fmt: skip
    out.append(f"<h3>Partitions</h3><div class='vt-scroll'><table class='vt-admin'><tr>{head}</tr>"
               f"{_partition_rows(table.groups)}</table></div>")  # fmt: skip
    return "".join(out)


def admin_page(market: LiveMarket, *, period_ms: int = 2000) -> Any:
    """The ``/admin`` page of a served market: :func:`status_html` of its bus, refreshed every
    ``period_ms``. Example: ``serve_apps({"admin": lambda: admin_page(market)}, port=5006, address="localhost")``."""
    state = AdminState(market.bus, market.consumer_groups)
    view = LiveHTML(pn.bind(status_html, state.param.table, state.param.error), sizing_mode="stretch_width",
                    stylesheets=[_CSS])  # fmt: skip
    note = pn.pane.HTML(
        "<p class='vt-muted'>Workers publish a heartbeat every 2 s on the <code>status</code> topic; a worker is "
        "stale after 3 missed heartbeats. Lag = end of the log − the group's committed offset; snapshot = where "
        "a restarted worker resumes. The same table: <code>vtrade status --bus URL</code>.</p>",
        sizing_mode="stretch_width", stylesheets=[_CSS],
    )  # fmt: skip
    keep_fresh(state.refresh, period_ms)
    template = _template("vtrade · admin", [pn.Column(view, note, sizing_mode="stretch_width")])
    template.state = state  # type: ignore[attr-defined]  # for tests
    return template
