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
from typing import Any

import holoviews as hv
import pandas as pd
import panel as pn
import param
from holoviews.streams import Buffer

from vtrade.execution.validation import OrderInputError
from vtrade.runtime.live import LiveMarket, Preview

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
    "trader_dashboard",
    "watchlist",
]

TITLE = "vtrade · trader"
TICKET_FIELDS = ("symbol", "side", "order_type", "quantity", "limit_price", "tif")
_PRICE_COLUMNS = {"ts": pd.Series([], dtype="datetime64[ns]"), "mid": pd.Series([], dtype=float),
                  "bid": pd.Series([], dtype=float), "ask": pd.Series([], dtype=float)}  # fmt: skip
_NAV_COLUMNS = {"ts": pd.Series([], dtype="datetime64[ns]"), "nav": pd.Series([], dtype=float)}


def _naive(df: pd.DataFrame) -> pd.DataFrame:
    """UTC timestamps without the zone: Bokeh plots naive datetimes as they are."""
    out = df.copy()
    out["ts"] = out["ts"].dt.tz_localize(None)
    return out


class TraderState(param.Parameterized):
    """What one session sees: its account's data plus the shared market's, refreshed in one batch."""

    symbol = param.Selector(default=None, objects=[], doc="the symbol in focus (ladder, chart, ticket)")
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
    chart_version = param.Integer(default=0, doc="bumped when the price chart needs a new stream (new symbol)")
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
        self.price_buffer = Buffer(pd.DataFrame(_PRICE_COLUMNS), length=2000, index=False)
        self.nav_buffer = Buffer(pd.DataFrame(_NAV_COLUMNS), length=2000, index=False)
        self._price_since: pd.Timestamp | None = None
        self._nav_since: pd.Timestamp | None = None
        self._version = -1
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
        if self._refreshes % 4 == 0:  # the ranking moves slowly: every few refreshes is enough
            updates["ranking"] = m.leaderboard().reset_index()
        self._refreshes += 1
        version = m.version(acct)
        if version != self._version:  # orders and fills only change with this account's events
            self._version = version
            orders = m.orders(acct)
            updates["orders"] = orders
            updates["fills"] = m.fills(acct)
            updates["open_orders"] = orders.loc[orders.leaves > 0, "client_order_id"].tolist()
        pf = m.portfolio(acct)
        updates["summary"] = pf["summary"]
        if not pf["positions"].equals(self.positions):
            updates["positions"] = pf["positions"]
        if not pf["sectors"].equals(self.sectors):
            updates["sectors"] = pf["sectors"]
        self.param.update(**updates)
        self._stream_prices()
        nav = m.nav_history(acct, since=self._nav_since)
        if len(nav):
            self._nav_since = nav.ts.iloc[-1]
            self.nav_buffer.send(_naive(nav))

    def cancel(self, client_order_id: str) -> None:
        """Ask the market to cancel one of this account's orders; the answer goes to ``message``."""
        out = self.market.cancel(self.account, client_order_id)
        self.message = f"Cancel of {client_order_id} sent" if out.ok else f"Cancel refused: {out.reason}"

    def _stream_prices(self) -> None:
        prices = self.market.prices(self.symbol, since=self._price_since)
        if len(prices):
            self._price_since = prices.ts.iloc[-1]
            self.price_buffer.send(_naive(prices[["ts", "mid", "bid", "ask"]]))

    def _on_symbol(self, event: param.parameterized.Event) -> None:
        # A fresh stream per symbol: a cleared Buffer keeps streaming into the plot's old data.
        self.price_buffer = Buffer(pd.DataFrame(_PRICE_COLUMNS), length=2000, index=False)
        self._price_since = None
        self._stream_prices()
        self.chart_version += 1


class TicketState(param.Parameterized):
    """The order ticket: inputs as typed (strings, so validation sees exactly what was typed),
    the field errors and answer of the last action, and the preview."""

    symbol = param.Selector(default=None, objects=[])
    side = param.Selector(default="buy", objects=["buy", "sell"])
    order_type = param.Selector(default="market", objects=["market", "limit"])
    quantity = param.String(default="100", doc="shares")
    limit_price = param.String(default="", doc="limit price in $ (limit orders)")
    tif = param.Selector(default="day", objects=["day", "gtc", "ioc"])
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
    for r in depth.itertuples(index=False):
        colour = "#c62828" if r.side == "ask" else "#2e7d32"
        width = int(100 * float(r.size) / biggest)
        mine = f"◆ {r.mine:,.0f}" if r.mine else ""
        bar = f"<div style='background:{colour}33;width:{width}%;height:14px'></div>"
        rows.append(
            f"<tr><td style='color:{colour};text-align:right;padding-right:8px'>{r.price:,.2f}</td>"
            f"<td style='text-align:right;padding-right:6px'>{r.size:,.0f}</td><td style='width:45%'>{bar}</td>"
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
    """The ticket's estimate as Markdown.

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
        f"**Preview** {p.side} {p.quantity:,.0f} {p.symbol}: {est} ({p.note})  \n"
        f"slippage {slip} · est. fee ${p.fee:,.2f} · notional ${p.notional:,.2f}  \n"
        f"buying power ${p.buying_power:,.2f} → ${p.buying_power_after:,.2f}{warn}"
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
def watchlist(state: TraderState) -> pn.viewable.Viewable:
    """L1 quotes of every symbol (a Tabulator bound to ``state.quotes``)."""
    cols = ["symbol", "name", "sector", "bid", "bid_size", "ask", "ask_size", "last", "change_pct", "spread_bps"]
    table = pn.widgets.Tabulator(
        pn.bind(lambda q: q[cols] if not q.empty else q, state.param.quotes), disabled=True, show_index=False,
        sizing_mode="stretch_width", height=260,
        formatters={c: {"type": "money", "precision": 2} for c in ("bid", "ask", "last", "change_pct", "spread_bps")},
    )  # fmt: skip
    focus = pn.widgets.Select.from_param(state.param.symbol, label=f"Focus ({len(state.param.symbol.objects)} symbols)",
                                         width=220)  # fmt: skip
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


def price_chart(state: TraderState) -> pn.viewable.Viewable:
    """A streaming mid/bid/ask chart (HoloViews ``Buffer``): only new samples travel."""

    def lines(data: pd.DataFrame) -> hv.Overlay:
        mid = hv.Curve(data, "ts", "mid", label="mid").opts(color="#1565c0", line_width=2)
        bid = hv.Curve(data, "ts", ("bid", "mid"), label="bid").opts(color="#2e7d32", alpha=0.5)
        ask = hv.Curve(data, "ts", ("ask", "mid"), label="ask").opts(color="#c62828", alpha=0.5)
        return (bid * ask * mid).opts(legend_position="top_left")

    def chart(version: int) -> hv.DynamicMap:
        return hv.DynamicMap(lines, streams=[state.price_buffer]).opts(
            hv.opts.Curve(responsive=True, height=260, framewise=True, xlabel="simulated time (UTC)", ylabel="$",
                          tools=["hover"], axiswise=True))  # fmt: skip

    title = pn.bind(lambda s: f"### {s} price", state.param.symbol)
    return pn.Column(pn.pane.Markdown(title),
                     pn.pane.HoloViews(pn.bind(chart, state.param.chart_version), sizing_mode="stretch_width"))


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
    rows = []
    for field in TICKET_FIELDS:
        rows.append(widgets[field])
        rows.append(pn.pane.HTML(pn.bind(_field_error, errs, field), margin=(0, 10)))
    submit = pn.widgets.Button(label="Confirm order", color="success")
    submit.on_click(lambda event: ticket.submit())
    refresh = pn.widgets.Button(label="Refresh preview", color="light")
    refresh.on_click(lambda event: ticket.update_preview())
    return pn.Column(
        "### Order ticket", *rows,
        pn.pane.Markdown(pn.bind(render_preview, ticket.param.preview), sizing_mode="stretch_width"),
        pn.Row(refresh, submit), pn.pane.Markdown(ticket.param.result), width=330,
    )  # fmt: skip


def blotter(state: TraderState) -> pn.viewable.Viewable:
    """This account's orders and fills (with receipts), and cancelling an open order."""
    # What a trader scans first (id, what, status, price) leads; the time and reason trail.
    first = ["client_order_id", "symbol", "side", "type", "quantity", "status", "filled", "avg_price", "limit_price"]

    def lead(df: pd.DataFrame) -> pd.DataFrame:
        return df[[c for c in first if c in df] + [c for c in df if c not in first]]

    money = {"type": "money", "precision": 4}
    formatters = {c: money for c in ("avg_price", "limit_price", "price", "arrival_mid", "fees", "fee")}
    table = {"disabled": True, "show_index": False, "height": 220, "sizing_mode": "stretch_width",
             "layout": "fit_data_table"}  # fmt: skip
    orders = pn.widgets.Tabulator(pn.bind(lead, state.param.orders), formatters=formatters, **table)
    bps = {"slippage_bps": {"type": "money", "precision": 2}}
    fills = pn.widgets.Tabulator(state.param.fills, formatters=formatters | bps, **table)
    which = pn.widgets.Select(label="Open order", options=state.param.open_orders, width=180)
    cancel = pn.widgets.Button(label="Cancel order", color="warning", align="end")
    cancel.on_click(lambda event: which.value and state.cancel(which.value))
    return pn.Column("### Blotter", pn.Tabs(("Orders", orders), ("Fills", fills)),
                     pn.Row(which, cancel), pn.pane.Markdown(state.param.message))  # fmt: skip


def portfolio_panel(state: TraderState) -> pn.viewable.Viewable:
    """NAV and P&L, the NAV curve (streamed), positions and the sector allocation chart."""
    nav = hv.DynamicMap(lambda data: hv.Curve(data, "ts", "nav"), streams=[state.nav_buffer]).opts(
        hv.opts.Curve(responsive=True, height=220, framewise=True, color="#6a1b9a", xlabel="", ylabel="NAV $",
                      title="NAV", yformatter="%.0f"))

    def sector_bars(sectors: pd.DataFrame) -> hv.Bars:
        held = sectors[sectors.exposure != 0] if not sectors.empty else pd.DataFrame({"sector": [], "exposure": []})
        return hv.Bars(held, "sector", "exposure").opts(
            responsive=True, height=220, invert_axes=True, color="#00838f", ylabel="exposure $", xlabel="",
            title="Sector allocation")

    positions = pn.widgets.Tabulator(state.param.positions, disabled=True, show_index=False, height=150,
                                     sizing_mode="stretch_width")  # fmt: skip
    return pn.Column(
        "### Portfolio", pn.pane.HTML(pn.bind(_summary_html, state.param.summary)),
        pn.Row(pn.pane.HoloViews(nav, sizing_mode="stretch_width"),
               pn.pane.HoloViews(pn.bind(sector_bars, state.param.sectors), sizing_mode="stretch_width"),
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


def trader_dashboard(market: LiveMarket, *, period_ms: int = 500) -> pn.template.BaseTemplate:
    """The trader dashboard for the CURRENT browser session: its own account (opened now), views
    of the shared market refreshed every ``period_ms`` (default 2 Hz), cleaned up on close."""
    if not math.isfinite(period_ms) or not 250 <= period_ms <= 1000:
        raise ValueError(f"period_ms must be 250-1000 (1-4 Hz), got {period_ms}")
    hv.extension("bokeh", logo=False)
    account = _new_account(market)
    state = TraderState(market=market, account=account)
    ticket = TicketState(market=market, account=account)
    state.param.watch(lambda e: setattr(ticket, "symbol", e.new), "symbol")
    state.refresh()
    ticket.update_preview()

    template = pn.template.FastListTemplate(title=TITLE, header=[clock_badge(state)], theme_toggle=False,
                                            accent="#1565c0")  # fmt: skip
    template.main.append(
        pn.Column(
            pn.pane.Markdown(f"**Your account: {account}** · orders, fills and portfolio below are yours alone."),
            pn.Row(watchlist(state), leaderboard(state), sizing_mode="stretch_width"),
            pn.Row(pn.Column(depth_ladder(state), width=380), price_chart(state), order_ticket(ticket),
                   sizing_mode="stretch_width"),
            pn.Row(blotter(state), portfolio_panel(state), sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
    )
    if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
        def tick() -> None:
            state.refresh()
            ticket.update_preview()  # the estimate follows the moving book

        callback = pn.state.add_periodic_callback(tick, period=period_ms)

        def cleanup(session_context: Any) -> None:
            # The session's views go away with it; its resting orders must not outlive it.
            callback.stop()
            market.close_session(account)

        pn.state.on_session_destroyed(cleanup)
    template.account = account  # type: ignore[attr-defined]  # for tests and logs
    return template
