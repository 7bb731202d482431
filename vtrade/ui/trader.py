"""The trader dashboard's Panel components: views as functions of one session's state.

:class:`TraderState` is a ``param.Parameterized`` holding what ONE browser session shows, read
from the shared :class:`~vtrade.runtime.live.LiveMarket` in one batch per :meth:`TraderState.refresh`
(the dashboard calls it from a periodic callback at 1-4 Hz). :class:`TicketState` holds the order
ticket's inputs and sends them, as typed, to the market, which validates them and applies the
account rules: this module renders and forwards, it decides nothing (DESIGN.md §2).

The ``render_*`` functions are pure (data in, HTML out) so they are tested without a browser.

>>> from vtrade.runtime.live import LiveConfig, LiveMarket
>>> m = LiveMarket(LiveConfig(symbols=("AAPL",), speed=0, bots=False, burn_in=20_000))
>>> m.open_account("ada")
>>> s = TraderState(market=m, account="ada")
>>> s.refresh()
>>> list(s.quotes.symbol), s.clock["realism"]
(['AAPL'], 'L2')
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, FactorRange, NumeralTickFormatter
from bokeh.plotting import figure
from panel.io.document import hold
from panel.io.state import set_curdoc

from vtrade.execution.validation import OrderInputError
from vtrade.runtime.live import LiveMarket, Preview
from vtrade.ui.fanout import shared_fanout
from vtrade.ui.resources import LocalFast, local_template

if TYPE_CHECKING:
    from bokeh.models.sources import DataDict

__all__ = [
    "TicketState",
    "TraderState",
    "blotter",
    "clock_badge",
    "depth_ladder",
    "leaderboard",
    "order_ticket",
    "portfolio_panel",
    "price_chart",
    "render_clock",
    "render_ladder",
    "render_preview",
    "render_watchlist",
    "trader_dashboard",
    "watchlist",
]

TITLE = "vtrade · trader"
TICKET_FIELDS = ("symbol", "side", "order_type", "quantity", "limit_price", "tif")
CHART_POINTS = 2000  # samples a chart keeps (older ones roll off)


def _stream_dict(df: pd.DataFrame, columns: tuple[str, ...]) -> DataDict:
    """Columns for a Bokeh source: UTC times as naive datetimes (Bokeh plots them as they are)."""
    out: DataDict = {"ts": df["ts"].dt.tz_localize(None).to_numpy()}
    out.update({c: df[c].to_numpy(dtype=float) for c in columns})
    return out


def _source_frame(source: ColumnDataSource) -> pd.DataFrame:
    """What a chart shows, as a DataFrame with UTC times."""
    df = pd.DataFrame({k: np.asarray(v) for k, v in source.data.items()})
    df["ts"] = pd.to_datetime(df["ts"]).dt.tz_localize("UTC")
    return df


class TraderState(param.Parameterized):
    """What one session sees: its account's data plus the shared market's, refreshed in one batch."""

    symbol: param.Selector[str] = param.Selector(default=None, objects=[],
                                                 doc="the symbol in focus (ladder, chart, ticket); set by __init__")
    quotes = param.DataFrame(default=pd.DataFrame(), doc="watchlist (L1) of every symbol")
    depth = param.DataFrame(default=pd.DataFrame(), doc="L2 ladder of the symbol, own orders marked")
    orders = param.DataFrame(default=pd.DataFrame(), doc="this account's orders")
    fills = param.DataFrame(default=pd.DataFrame(), doc="this account's fills with receipts")
    positions = param.DataFrame(default=pd.DataFrame(), doc="this account's open positions")
    sectors = param.DataFrame(default=pd.DataFrame(), doc="this account's sector allocation")
    summary = param.Dict(default={}, doc="NAV, cash, P&L, buying power")
    clock = param.Dict(default={}, doc="simulated time, speed, realism")
    watch = param.List(default=[], doc="the watchlist's symbols (the market's featured ones to start with)")
    ranking = param.DataFrame(default=pd.DataFrame(), doc="the class leaderboard (NAV and return only)")
    open_orders = param.List(default=[], doc="client order ids of this account's open orders")
    message = param.String(default="", doc="the last answer to a cancel")

    def __init__(self, market: LiveMarket, account: str, *, levels: int = 10, **params: Any) -> None:
        symbols = market.symbols()
        super().__init__(**params)
        self.param.symbol.objects = symbols
        if self.symbol is None:
            self.symbol = market.featured()[0]
        self.market = market
        self.account = account
        self.levels = levels
        self.watch = market.featured()
        self._refreshes = 0
        # The charts' data, streamed to the browser: each refresh sends only the new samples.
        # (A HoloViews Buffer costs ~40 ms of server CPU per update and chart: 30 sessions at 2 Hz
        # cannot afford it; Bokeh's own ``stream`` costs well under a millisecond.)
        self.price_source = ColumnDataSource({"ts": [], "mid": [], "bid": [], "ask": []})
        self.nav_source = ColumnDataSource({"ts": [], "nav": []})
        self._price_since: pd.Timestamp | None = None
        self._nav_since: pd.Timestamp | None = None
        self._version = self._version_pf = -1
        self.param.watch(self._on_symbol, "symbol")

    def refresh(self) -> None:
        """Read everything this session shows from the market, in one batch."""
        m, acct = self.market, self.account
        # The watchlist: the chosen symbols, then the one in focus and what the account holds.
        held = self.positions.symbol.tolist() if "symbol" in self.positions else []
        updates: dict[str, Any] = {
            "quotes": m.quotes(dict.fromkeys([*self.watch, self.symbol, *held])),
            "depth": m.depth(self.symbol, self.levels, account=acct),
            "clock": m.clock(),
        }
        # What moves slowly refreshes less often (each table update costs the server a few ms
        # per session): the portfolio every other refresh, the ranking every eighth.
        slow = self._refreshes % 2 == 0
        if self._refreshes % 8 == 0:
            updates["ranking"] = m.leaderboard().reset_index()
        self._refreshes += 1
        version = m.version(acct)
        if version != self._version:  # orders and fills only change with this account's events
            orders = m.orders(acct)
            updates["orders"] = orders
            updates["fills"] = m.fills(acct)
            updates["open_orders"] = orders.loc[orders.leaves > 0, "client_order_id"].tolist()
        if slow or version != self._version_pf:  # a fill shows at once
            pf = m.portfolio(acct)
            updates["summary"] = pf["summary"]
            if not pf["positions"].equals(self.positions):
                updates["positions"] = pf["positions"]
            if not pf["sectors"].equals(self.sectors):
                updates["sectors"] = pf["sectors"]
        self.param.update(**updates)
        # Only once the views took the new tables: a refresh that failed half-way retries them
        # next time instead of believing the blotter already shows this version.
        self._version = self._version_pf = version
        self._stream_prices()
        nav = m.nav_history(acct, since=self._nav_since)
        if len(nav):
            self._nav_since = nav.ts.iloc[-1]
            self.nav_source.stream(_stream_dict(nav, ("nav",)), rollover=CHART_POINTS)

    def price_frame(self) -> pd.DataFrame:
        """The price chart's samples: ``ts, mid, bid, ask``."""
        return _source_frame(self.price_source)

    def nav_frame(self) -> pd.DataFrame:
        """The NAV chart's samples: ``ts, nav``."""
        return _source_frame(self.nav_source)

    def cancel(self, client_order_id: str) -> None:
        """Ask the market to cancel one of this account's orders; the answer goes to ``message``."""
        out = self.market.cancel(self.account, client_order_id)
        self.message = f"Cancel of {client_order_id} sent" if out.ok else f"Cancel refused: {out.reason}"

    def _stream_prices(self, *, restart: bool = False) -> None:
        prices = self.market.prices(self.symbol, since=None if restart else self._price_since)
        if restart:  # another symbol: replace the data, not append to it
            self.price_source.data = _stream_dict(prices.tail(CHART_POINTS), ("mid", "bid", "ask"))
        elif len(prices):
            self.price_source.stream(_stream_dict(prices, ("mid", "bid", "ask")), rollover=CHART_POINTS)
        if len(prices):
            self._price_since = prices.ts.iloc[-1]

    def _on_symbol(self, event: param.parameterized.Event) -> None:
        self._stream_prices(restart=True)


class TicketState(param.Parameterized):
    """The order ticket: inputs as typed (strings, so validation sees exactly what was typed),
    the field errors and answer of the last action, and the preview."""

    symbol: param.Selector[str] = param.Selector(default=None, objects=[])  # set by __init__
    side: param.Selector[str] = param.Selector(default="buy", objects=["buy", "sell"])
    order_type: param.Selector[str] = param.Selector(default="market", objects=["market", "limit"])
    quantity = param.String(default="100", doc="shares")
    limit_price = param.String(default="", doc="limit price in $ (limit orders)")
    tif: param.Selector[str] = param.Selector(default="day", objects=["day", "gtc", "ioc"])
    errors = param.Dict(default={}, doc="field -> reason of the last refused input")
    result = param.String(default="", doc="what happened to the last order")
    preview = param.ClassSelector(class_=Preview, default=None, allow_None=True)

    def __init__(self, market: LiveMarket, account: str, **params: Any) -> None:
        # Set before param init: the preview watcher reads them as soon as a field is set.
        self.market = market
        self.account = account
        super().__init__(**params)
        self.param.symbol.objects = market.symbols()
        if self.symbol is None:
            self.symbol = market.featured()[0]
        self.quantity = market.suggested_quantity(self.symbol)
        self.param.watch(lambda e: setattr(self, "quantity", market.suggested_quantity(e.new)), "symbol")

    def _inputs(self) -> dict[str, Any]:
        # The limit field is left over from an earlier limit order when the type is market:
        # what is sent is what the chosen type uses.
        limit = (self.limit_price.strip() or None) if self.order_type == "limit" else None
        return {"symbol": self.symbol, "side": self.side, "quantity": self.quantity,
                "order_type": self.order_type, "limit_price": limit}  # fmt: skip

    @param.depends("symbol", "side", "order_type", "quantity", "limit_price", watch=True)
    def update_preview(self) -> None:
        """Re-estimate the order against the current book (and show input errors as they are typed)."""
        try:
            preview = self.market.preview(self.account, **self._inputs())
            errors: dict[str, str] = {}
        except OrderInputError as err:
            preview, errors = None, {err.field: err.reason}
        # Only a different estimate travels to the browser (the book often has not moved).
        if preview != self.preview:
            self.preview = preview
        if errors != self.errors:
            self.errors = errors

    def submit(self) -> bool:
        """Send the order as typed; True if the market accepted it for the exchange."""
        try:
            out = self.market.submit(self.account, tif=self.tif, **self._inputs())
        except OrderInputError as err:
            self.errors = {err.field: err.reason}
            self.result = "Not sent: fix the highlighted field"
            return False
        self.errors = {}
        self.result = f"Sent {out.client_order_id}" if out.ok else f"Refused: {out.reason}"
        return out.ok


# ---------------------------------------------------------------------------- pure renderers
def render_ladder(depth: pd.DataFrame, symbol: str) -> str:
    """The depth ladder as HTML: asks above bids, size bars, own resting orders marked ◆.

    >>> df = pd.DataFrame({"side": ["ask", "bid"], "price": [10.01, 10.0], "size": [300.0, 200.0],
    ...                    "mine": [0.0, 100.0]})
    >>> "◆ 100" in render_ladder(df, "XYZ") and "10.01" in render_ladder(df, "XYZ")
    True
    """
    if depth is None or depth.empty:
        return f"<div class='vt-ladder'><b>{html.escape(str(symbol))}</b>: no book yet</div>"
    biggest = max(float(depth["size"].max()), 1.0)
    rows = []
    levels: Iterable[tuple[str, float, float, float]] = zip(
        depth["side"], depth["price"], depth["size"], depth["mine"], strict=True)
    for side, price, size, own in levels:
        colour = "#c62828" if side == "ask" else "#2e7d32"
        width = int(100 * float(size) / biggest)
        mine = f"◆ {own:,.0f}" if own else ""
        bar = f"<div style='background:{colour}33;width:{width}%;height:14px'></div>"
        rows.append(
            f"<tr><td style='color:{colour};text-align:right;padding-right:8px'>{price:,.2f}</td>"
            f"<td style='text-align:right;padding-right:6px'>{size:,.0f}</td><td style='width:45%'>{bar}</td>"
            f"<td style='color:#1565c0;font-weight:bold'>{mine}</td></tr>"
        )
    return (
        f"<div class='vt-ladder'><b>{html.escape(str(symbol))}</b> depth (◆ = your resting orders)"
        "<table style='width:100%;font-family:monospace;font-size:12px;border-collapse:collapse'>"
        "<tr><th>price</th><th>size</th><th></th><th>yours</th></tr>" + "".join(rows) + "</table></div>"
    )


def render_clock(clock: dict[str, Any]) -> str:
    """The clock badge: simulated time, speed, realism and queue model. ``data-wall`` carries the
    wall-clock time the shown slice was computed, so a client can measure its update lag.

    >>> render_clock({"ts": pd.Timestamp(0, tz="UTC"), "speed": 20.0, "realism": "L2", "queue": "prob",
    ...               "wall": 1.5})
    "<span class='vt-clock' data-wall='1.500000'>🕒 1970-01-01 00:00:00 UTC · 20× · realism L2 · prob queue</span>"
    """
    if not clock:
        return "<span class='vt-clock'>🕒 starting…</span>"
    ts = clock["ts"].strftime("%Y-%m-%d %H:%M:%S UTC")
    speed = "max speed" if not clock["speed"] else f"{clock['speed']:g}×"
    queue = str(clock["queue"]).replace("_", "-")
    day = f" · replaying {clock['day']}" if clock.get("day") else ""
    wall = f" data-wall='{clock['wall']:.6f}'" if "wall" in clock else ""
    return f"<span class='vt-clock'{wall}>🕒 {ts} · {speed} · realism {clock['realism']} · {queue} queue{day}</span>"


def render_preview(p: Preview | None) -> str:
    """The ticket's estimate as HTML (it changes with the book: no Markdown parse per refresh).

    >>> p = Preview("AAPL", "buy", 10, 10, 100.02, 100.0, 2.0, 1000.2, 1.0, 5000, 3999.8, False, "fills now")
    >>> "2.0 bps" in render_preview(p)
    True
    """
    if p is None:
        return ""
    est = f"≈ ${p.avg_price:,.2f} avg" if p.avg_price is not None else "no immediate fill"
    slip = f"{p.slippage_bps:.1f} bps vs mid ${p.mid:,.2f}" if p.slippage_bps is not None else "–"
    warn = " ⚠ exceeds buying power" if p.buying_power_after < 0 else ""
    return (
        f"<div class='vt-preview'><b>Preview</b> {p.side} {p.quantity:,.0f} {html.escape(p.symbol)}: {est} "
        f"({html.escape(p.note)})<br>slippage {slip} · est. fee ${p.fee:,.2f} · notional ${p.notional:,.2f}<br>"
        f"buying power ${p.buying_power:,.2f} → ${p.buying_power_after:,.2f}{warn}</div>"
    )


def _field_error(errors: dict[str, str], field: str) -> str:
    reason = errors.get(field)
    return f"<span style='color:#c62828;font-size:12px'>⚠ {html.escape(reason)}</span>" if reason else ""


def _summary_html(s: dict[str, Any]) -> str:
    if not s:
        return ""
    pnl = s["pnl"]
    colour = "#2e7d32" if pnl >= 0 else "#c62828"
    cells = [("NAV", f"${s['nav']:,.2f}"), ("P&L", f"<span style='color:{colour}'>{pnl:+,.2f}</span>"),
             ("cash", f"${s['cash']:,.2f}"), ("buying power", f"${s['buying_power']:,.2f}"),
             ("fees", f"${s['fees']:,.2f}")]  # fmt: skip
    return "<div style='display:flex;gap:18px'>" + "".join(
        f"<div><div style='font-size:11px;color:#666'>{k}</div><div style='font-size:16px'>{v}</div></div>"
        for k, v in cells
    ) + "</div>"


# ---------------------------------------------------------------------------- components
def render_watchlist(quotes: pd.DataFrame, focus: str | None = None) -> str:
    """The watchlist (L1 quotes) as an HTML table, the focused symbol highlighted.

    >>> q = pd.DataFrame({"symbol": ["XYZ"], "name": ["X Corp"], "sector": ["Energy"], "bid": [9.99],
    ...     "bid_size": [300.0], "ask": [10.01], "ask_size": [200.0], "last": [10.0], "change_pct": [-1.25],
    ...     "spread_bps": [20.0]})
    >>> "-1.25%" in render_watchlist(q, "XYZ") and "X Corp" in render_watchlist(q)
    True
    """
    head = ("symbol", "name", "sector", "bid", "size", "ask", "size", "last", "change", "spread bps")
    rows = []
    columns = ("symbol", "name", "sector", "bid", "bid_size", "ask", "ask_size", "last", "change_pct", "spread_bps")
    # (An empty frame may have no columns at all: the state's default before the first refresh.)
    lines: Iterable[tuple[str, str, str, float, float, float, float, float, float, float]] = (
        () if quotes.empty else zip(*(quotes[c] for c in columns), strict=True))
    for symbol, name, sector, bid, bid_size, ask, ask_size, last, change_pct, spread_bps in lines:
        colour = "#2e7d32" if change_pct > 0 else ("#c62828" if change_pct < 0 else "#444")
        style = " style='background:#e3f2fd'" if symbol == focus else ""
        cells = (f"<b>{html.escape(symbol)}</b>", html.escape(str(name)), html.escape(str(sector)),
                 _num(bid), _num(bid_size, 3), _num(ask), _num(ask_size, 3), _num(last),
                 f"<span style='color:{colour}'>{change_pct:+.2f}%</span>", _num(spread_bps))  # fmt: skip
        rows.append(f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return ("<table class='vt-watchlist' style='width:100%;font-size:13px;border-collapse:collapse'><tr>"
            + "".join(f"<th style='text-align:left'>{h}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>")


def _num(x: float, decimals: int = 2) -> str:
    if x != x:  # NaN: no price on that side
        return "–"
    text = f"{x:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if decimals > 2 and "." in text else text


def watchlist(state: TraderState) -> pn.viewable.Viewable:
    """L1 quotes of the watchlist (an HTML table bound to ``state.quotes``: a full table widget
    costs the server several times more per refresh) and the symbol in focus."""
    focus = pn.widgets.Select.from_param(state.param.symbol, label=f"Focus ({len(state.param.symbol.objects)} symbols)",
                                         width=220)  # fmt: skip
    table = pn.pane.HTML(pn.bind(render_watchlist, state.param.quotes, state.param.symbol),
                         sizing_mode="stretch_width")  # fmt: skip
    return pn.Column("### Watchlist", focus, table, sizing_mode="stretch_width")


def leaderboard(state: TraderState) -> pn.viewable.Viewable:
    """The class ranked by NAV (simulated members marked): what everyone may see of everyone."""
    table = pn.widgets.Tabulator(state.param.ranking, disabled=True, show_index=False, height=200, width=360,
                                 layout="fit_columns",
                                 formatters={"nav": {"type": "money", "precision": 2},
                                             "return_pct": {"type": "money", "precision": 3}})  # fmt: skip
    return pn.Column("### Leaderboard", table)


def depth_ladder(state: TraderState) -> pn.viewable.Viewable:
    """The L2 ladder of the focused symbol with this account's resting orders marked."""
    return pn.pane.HTML(pn.bind(render_ladder, state.param.depth, state.param.symbol), sizing_mode="stretch_width")


def _time_figure(height: int, ylabel: str, title: str | None = None) -> figure:
    fig = figure(x_axis_type="datetime", height=height, sizing_mode="stretch_width", title=title,
                 tools="pan,wheel_zoom,box_zoom,reset,hover", toolbar_location="right")  # fmt: skip
    fig.yaxis.axis_label = ylabel
    fig.yaxis.formatter = NumeralTickFormatter(format="0,0.00")
    return fig


def price_chart(state: TraderState) -> pn.viewable.Viewable:
    """A streaming mid/bid/ask chart: each refresh sends only the new samples (Bokeh ``stream``);
    its ranges follow the data in the browser."""
    fig = _time_figure(260, "$")
    fig.xaxis.axis_label = "simulated time (UTC)"
    for col, colour, width, alpha in (("bid", "#2e7d32", 1, 0.6), ("ask", "#c62828", 1, 0.6),
                                      ("mid", "#1565c0", 2, 1.0)):  # fmt: skip
        fig.line("ts", col, source=state.price_source, color=colour, line_width=width, alpha=alpha, legend_label=col)
    fig.legend.location = "top_left"
    title = pn.bind(lambda s: f"### {s} price", state.param.symbol)
    return pn.Column(pn.pane.Markdown(title), pn.pane.Bokeh(fig, sizing_mode="stretch_width"),
                     sizing_mode="stretch_width")  # fmt: skip


def order_ticket(ticket: TicketState) -> pn.viewable.Viewable:
    """Inputs with their errors next to them, the preview, and Submit."""
    errs = ticket.param.errors
    widgets: dict[str, pn.widgets.Widget] = {
        "symbol": pn.widgets.Select.from_param(ticket.param.symbol, label="Symbol"),
        "side": pn.widgets.RadioButtonGroup.from_param(ticket.param.side, label="Side", color="primary"),
        "order_type": pn.widgets.Select.from_param(ticket.param.order_type, label="Type"),
        "quantity": pn.widgets.TextInput.from_param(ticket.param.quantity, label="Quantity (shares)"),
        "limit_price": pn.widgets.TextInput.from_param(ticket.param.limit_price, label="Limit price ($)"),
        "tif": pn.widgets.Select.from_param(ticket.param.tif, label="Time in force"),
    }
    rows: list[pn.viewable.Viewable] = []
    for field in TICKET_FIELDS:
        rows.append(widgets[field])
        rows.append(pn.pane.HTML(pn.bind(_field_error, errs, field), margin=(0, 10)))
    def send(event: param.parameterized.Event) -> None:
        ticket.submit()  # its answer shows in ticket.result

    submit = pn.widgets.Button(label="Confirm order", color="success")
    submit.on_click(send)
    refresh = pn.widgets.Button(label="Refresh preview", color="light")
    refresh.on_click(lambda event: ticket.update_preview())
    return pn.Column(
        "### Order ticket", *rows,
        pn.pane.HTML(pn.bind(render_preview, ticket.param.preview), sizing_mode="stretch_width"),
        pn.Row(refresh, submit), pn.pane.Markdown(ticket.param.result), width=330,
    )  # fmt: skip


def shown(df: pd.DataFrame) -> pd.DataFrame:
    """A public table (:mod:`vtrade.execution.tables`) as a person reads it: without the account
    (it is always theirs) and the exact ``*_lots``/``*_ticks`` columns kept for analytics.

    >>> list(shown(pd.DataFrame(columns=["ts", "account", "price", "price_ticks", "quantity_lots"])).columns)
    ['ts', 'price']
    """
    return df[[c for c in df.columns if c != "account" and not c.endswith(("_lots", "_ticks"))]]


def blotter(state: TraderState) -> pn.viewable.Viewable:
    """This account's orders and fills (with receipts), and cancelling an open order."""
    # What a trader scans first (id, what, status, price) leads; the time and reason trail.
    first = ["client_order_id", "symbol", "side", "type", "quantity", "status", "filled", "avg_price", "limit_price"]

    def lead(df: pd.DataFrame) -> pd.DataFrame:
        df = newest_first(df)
        return df[[c for c in first if c in df] + [c for c in df if c not in first]]

    def newest_first(df: pd.DataFrame) -> pd.DataFrame:  # a blotter reads from the top: the latest first
        return shown(df).iloc[::-1].reset_index(drop=True)

    money = {"type": "money", "precision": 4}
    formatters = {c: money for c in ("avg_price", "limit_price", "price", "arrival_mid", "fees", "fee")}
    table = {"disabled": True, "show_index": False, "height": 220, "sizing_mode": "stretch_width",
             "layout": "fit_data_table"}  # fmt: skip
    orders = pn.widgets.Tabulator(pn.bind(lead, state.param.orders), formatters=formatters, **table)
    bps = {"slippage_bps": {"type": "money", "precision": 2}}
    fills = pn.widgets.Tabulator(pn.bind(newest_first, state.param.fills), formatters=formatters | bps, **table)
    which = pn.widgets.Select(label="Open order", options=state.param.open_orders, width=180)
    cancel = pn.widgets.Button(label="Cancel order", color="warning", align="end")

    def cancel_selected(event: param.parameterized.Event) -> None:
        if which.value:
            state.cancel(which.value)

    cancel.on_click(cancel_selected)
    return pn.Column("### Blotter", pn.Tabs(("Orders", orders), ("Fills", fills)),
                     pn.Row(which, cancel), pn.pane.Markdown(state.param.message))  # fmt: skip


def portfolio_panel(state: TraderState) -> pn.viewable.Viewable:
    """NAV and P&L, the NAV curve (streamed), positions and the sector allocation chart."""
    nav = _time_figure(220, "NAV $", "NAV")
    nav.line("ts", "nav", source=state.nav_source, color="#6a1b9a", line_width=2)
    # Only the sectors held, as horizontal bars; the source changes only when the allocation does.
    bars = ColumnDataSource({"sector": [], "exposure": []})
    sector_range = FactorRange()
    sector_fig = figure(y_range=sector_range, height=220, sizing_mode="stretch_width", title="Sector allocation",
                        tools="hover", toolbar_location=None)  # fmt: skip
    sector_fig.hbar(y="sector", right="exposure", height=0.7, source=bars, color="#00838f")
    sector_fig.xaxis.axis_label = "exposure $"
    sector_fig.xaxis.formatter = NumeralTickFormatter(format="0,0")

    def show_sectors(event: param.parameterized.Event | None = None) -> None:
        sectors = state.sectors
        held = sectors[sectors.exposure != 0] if not sectors.empty else pd.DataFrame({"sector": [], "exposure": []})
        factors = [str(x) for x in held.sector]
        if list(sector_range.factors) != factors:
            sector_range.factors = factors
        bars.data = {"sector": factors, "exposure": held.exposure.to_numpy(dtype=float)}

    state.param.watch(show_sectors, "sectors")
    show_sectors()
    positions = pn.widgets.Tabulator(pn.bind(shown, state.param.positions), disabled=True, show_index=False, height=150,
                                     sizing_mode="stretch_width")  # fmt: skip
    return pn.Column(
        "### Portfolio", pn.pane.HTML(pn.bind(_summary_html, state.param.summary)),
        pn.Row(pn.pane.Bokeh(nav, sizing_mode="stretch_width"), pn.pane.Bokeh(sector_fig, sizing_mode="stretch_width"),
               sizing_mode="stretch_width"),
        positions, sizing_mode="stretch_width",
    )  # fmt: skip


def clock_badge(state: TraderState) -> pn.viewable.Viewable:
    """Simulated time, replay speed and realism level."""
    return pn.pane.HTML(pn.bind(render_clock, state.param.clock))


# ---------------------------------------------------------------------------- the dashboard
_ACCOUNT_IDS = itertools.count(1)


def _new_account(market: LiveMarket) -> str:
    """A fresh account name for a new browser session (never reused, never chosen by the client)."""
    while True:
        name = f"trader-{next(_ACCOUNT_IDS)}"
        if not market.has_account(name):
            market.open_account(name)
            return name


def trader_dashboard(
    market: LiveMarket, *, period_ms: int = 500, account: str | None = None, cancel_on_leave: bool = True
) -> pn.template.BaseTemplate:
    """The trader dashboard for the CURRENT browser session, trading as ``account`` (an open
    account of ``market``; default: a new one opened now), views of the shared market refreshed
    every ``period_ms`` (default 2 Hz), cleaned up on close. ``cancel_on_leave`` cancels the
    account's open orders when the session closes: right for a throwaway account nobody can come
    back to, wrong for one a browser gets back (:mod:`vtrade.ui.serve` with a data dir).

    >>> from vtrade.runtime.live import LiveConfig
    >>> m = LiveMarket(LiveConfig(symbols=("AAPL",), speed=0, bots=False, burn_in=20_000))
    >>> m.open_account("ada")
    >>> trader_dashboard(m, account="ada", cancel_on_leave=False).account
    'ada'
    """
    if not math.isfinite(period_ms) or not 250 <= period_ms <= 1000:
        raise ValueError(f"period_ms must be 250-1000 (1-4 Hz), got {period_ms}")
    if account is None:
        account = _new_account(market)
    elif not market.has_account(account):
        raise ValueError(f"no account {account!r} in this market: open it first")
    state = TraderState(market=market, account=account)
    ticket = TicketState(market=market, account=account)
    state.param.watch(lambda e: setattr(ticket, "symbol", e.new), "symbol")
    state.refresh()
    ticket.update_preview()

    header = clock_badge(state)
    main = pn.Column(
        pn.pane.Markdown(f"**Your account: {account}** · orders, fills and portfolio below are yours alone."),
        pn.Row(watchlist(state), leaderboard(state), sizing_mode="stretch_width"),
        pn.Row(pn.Column(depth_ladder(state), width=380), price_chart(state), order_ticket(ticket),
               sizing_mode="stretch_width"),
        pn.Row(blotter(state), portfolio_panel(state), sizing_mode="stretch_width"),
        sizing_mode="stretch_width",
    )
    template = pn.template.FastListTemplate(title=TITLE, header=[header], main=[main], theme_toggle=False,
                                            accent="#1565c0", design=LocalFast)  # fmt: skip
    local_template(template)  # offline: fonts from our server, not Google's (vtrade.ui.resources)
    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        def tick() -> None:
            with set_curdoc(doc), hold(doc):  # one batch of model changes per refresh, not one per view
                state.refresh()
                ticket.update_preview()  # the estimate follows the moving book

        # One process-wide timer refreshes every session in turn (fair under load).
        fanout = shared_fanout(period_ms)
        key = fanout.add(doc, tick)

        def cleanup(session_context: Any) -> None:
            # The session's views go away with it. Its resting orders must not outlive an account
            # nobody can return to; one the browser gets back keeps them (they are its own).
            fanout.remove(key)
            if cancel_on_leave:
                market.close_session(account)

        pn.state.on_session_destroyed(cleanup)
    template.account = account  # type: ignore[attr-defined]  # for tests and logs
    return template
