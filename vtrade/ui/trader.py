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
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import (
    ColumnDataSource,
    DataRange1d,
    DatetimeTickFormatter,
    FactorRange,
    NoOverlap,
    NumeralTickFormatter,
)
from bokeh.models.annotations import Legend
from bokeh.plotting import figure
from panel.custom import JSComponent
from panel.io.document import hold
from panel.io.state import set_curdoc

from vtrade.core.instruments import Instrument
from vtrade.execution.validation import OrderInputError
from vtrade.runtime.live import LiveMarket, Preview
from vtrade.ui.copilot_chat import ChatState, copilot_panel
from vtrade.ui.fanout import shared_fanout
from vtrade.ui.resources import LocalFast, local_template

if TYPE_CHECKING:
    from bokeh.models.sources import DataDict

__all__ = [
    "LiveHTML",
    "SharedByFrame",
    "TicketState",
    "TraderState",
    "blotter",
    "clock_badge",
    "copilot_chat",
    "depth_ladder",
    "keep_fresh",
    "leaderboard",
    "order_ticket",
    "portfolio_panel",
    "price_chart",
    "render_clock",
    "render_ladder",
    "render_preview",
    "render_table",
    "render_watchlist",
    "trader_dashboard",
    "trader_views",
    "watchlist",
]

T = TypeVar("T")
TITLE = "vtrade · trader"
TICKET_FIELDS = ("symbol", "side", "order_type", "quantity", "limit_price", "tif")
CHART_POINTS = 2000  # samples a chart keeps (older ones roll off)
NOT_SENT = "Not sent"  # how the ticket's answer to refused input starts
FIX_FIELD = f"{NOT_SENT}: fix the field outlined in red"  # its answer to input in error


#: A NAV move (fraction) past which the positions table is rebuilt at once, not on its turn.
TABLES_NAV_MOVE = 0.001


def _source_frame(source: ColumnDataSource) -> pd.DataFrame:
    """What a chart shows, as a DataFrame with UTC times."""
    df = pd.DataFrame({k: np.asarray(v) for k, v in source.data.items()})
    df["ts"] = pd.to_datetime(df["ts"]).dt.tz_localize("UTC")
    return df


class SharedByFrame:
    """What is built from a frame the market or the classroom shares between sessions (their
    reads are built once per change and handed to every caller: ``LiveMarket.quotes``,
    ``depth``, ``Classroom.leaderboard``), so built once for every session showing it: the HTML
    of a watchlist, a ladder, a class's ranking. Keyed by the frame's identity, which the entry
    keeps alive (so the id is not reused while it is here): a frame built for one account alone
    (a book with that student's orders marked) is never anyone else's, and never found by them."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._cache: dict[tuple[Any, ...], tuple[object, Any]] = {}

    def get(self, frame: object, key: tuple[Any, ...], build: Callable[[], T]) -> T:
        hit = self._cache.get((id(frame), *key))
        if hit is not None and hit[0] is frame:
            return cast("T", hit[1])
        value = build()
        if len(self._cache) >= self.size:  # built from past slices: nobody asks for them again
            self._cache.clear()
        self._cache[(id(frame), *key)] = (frame, value)
        return value


_WATCHLIST_HTML = SharedByFrame()
_LADDER_HTML = SharedByFrame()


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
        self._price_since: int | None = None  # ns of the last sample sent
        self._restart_prices = False  # the focus moved: the chart's data is replaced at the next refresh
        self._nav_since: int | None = None
        self._version = self._version_pf = -1
        self._tables_nav = math.nan  # the NAV when the positions table was last built
        # Whether this state belongs to a served session, decided where it is built (a page being
        # built runs with its document current). Asked later, ``pn.state.curdoc`` can answer with
        # whatever document another thread's server is running a callback for (Bokeh's patched
        # curdoc is process-wide), which once made a notebook's chart wait for a refresh that
        # never came.
        # Only the document Panel made current in this context (a page it is building) counts:
        # ``pn.state.curdoc`` falls back to Bokeh's process-wide curdoc, which another thread's
        # server may have patched for its own callback at that moment, and then a notebook's (or
        # a test's) state took itself for a served one and its chart stood still.
        doc = pn.state._curdoc.get()
        self._served = doc is not None and doc.session_context is not None
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
        # per session): the portfolio's summary every other refresh, its positions and sectors
        # tables every fourth (building them is most of a refresh's cost), the ranking every eighth.
        slow = self._refreshes % 2 == 0
        tables = self._refreshes % 4 == 0
        if self._refreshes % 8 == 0:
            updates["ranking"] = self.ranking_frame()
        self._refreshes += 1
        version = m.version(acct)
        if version != self._version:  # orders and fills only change with this account's events
            orders = m.orders(acct)
            updates["orders"] = orders
            updates["fills"] = m.fills(acct)
            updates["open_orders"] = orders.loc[orders.leaves > 0, "client_order_id"].tolist()
        if slow or version != self._version_pf:  # a fill shows at once
            tables = tables or version != self._version_pf
            pf = m.portfolio(acct, tables=tables)
            nav = pf["summary"]["nav"]
            if not tables and not abs(nav - self._tables_nav) <= TABLES_NAV_MOVE * abs(nav):
                # A big move (a shock, a gap at the open) shows in the table as in the summary.
                tables = True
                pf = m.portfolio(acct)
            if tables:
                self._tables_nav = nav
            updates["summary"] = pf["summary"]
            if tables and not pf["positions"].equals(self.positions):
                updates["positions"] = pf["positions"]
            if tables and not pf["sectors"].equals(self.sectors):
                updates["sectors"] = pf["sectors"]
        self.param.update(**updates)
        # Only once the views took the new tables: a refresh that failed half-way retries them
        # next time instead of believing the blotter already shows this version.
        self._version = self._version_pf = version
        self._stream_prices(restart=self._restart_prices)
        self._restart_prices = False
        # The charts take arrays straight from the market (no DataFrame per session and refresh).
        nav = m.nav_columns(acct, since=self._nav_since)
        if len(nav["ts"]):
            self._nav_since = int(nav["ts"].view("i8")[-1])
            self.nav_source.stream(dict(nav), rollover=CHART_POINTS)

    def ranking_frame(self) -> pd.DataFrame:
        """The leaderboard this session shows (``rank, account, nav, return_pct``): the whole
        market's here; a class shows its own students by display name (``vtrade.ui.classroom``)."""
        return self.market.leaderboard().reset_index()

    def price_frame(self) -> pd.DataFrame:
        """The price chart's samples: ``ts, mid, bid, ask``."""
        return _source_frame(self.price_source)

    def nav_frame(self) -> pd.DataFrame:
        """The NAV chart's samples: ``ts, nav``."""
        return _source_frame(self.nav_source)

    def instrument(self, symbol: str | None = None) -> Instrument:
        """The instrument of ``symbol`` (default: the one in focus), for units and precision."""
        return self.market.instrument(symbol or self.symbol)

    def cancel(self, client_order_id: str) -> None:
        """Ask the market to cancel one of this account's orders; the answer goes to ``message``."""
        out = self.market.cancel(self.account, client_order_id)
        self.message = f"Cancel of {client_order_id} sent" if out.ok else f"Cancel refused: {out.reason}"

    def _stream_prices(self, *, restart: bool = False) -> None:
        c = self.market.price_columns(self.symbol, since=None if restart else self._price_since)
        ts = c["ts"][-CHART_POINTS:]
        samples: DataDict = {"ts": ts, **{k: c[k][-CHART_POINTS:] for k in ("mid", "bid", "ask")}}
        if restart:  # another symbol: replace the data, not append to it
            self.price_source.data = samples
        elif len(ts):
            self.price_source.stream(samples, rollover=CHART_POINTS)
        if len(ts):
            self._price_since = int(ts.view("i8")[-1])

    def _on_symbol(self, event: param.parameterized.Event) -> None:
        # The ladder and chart follow the focus now, not at the next refresh: for a moment they
        # would show another symbol's book under this one's name.
        self.depth = self.market.depth(self.symbol, self.levels, account=self.account)
        if self._served:
            # A served session handles a browser's change with the document unlocked (Panel's
            # own models lock themselves), so a raw Bokeh source cannot be replaced here: the
            # chart restarts at the next refresh, which runs under the document's lock.
            self._restart_prices = True
        else:
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
        self.param.watch(self._on_symbol, "symbol")

    @param.depends("order_type", watch=True)
    def _on_order_type(self) -> None:
        # A limit order starts at the passive touch (the field empty was outlined red at once,
        # "needs a limit price", before the student had typed anything).
        if self.order_type == "limit" and not self.limit_price.strip():
            self.limit_price = self._touch(self.symbol)

    def _on_symbol(self, event: param.parameterized.Event) -> None:
        # A quantity and a limit price belong to their instrument (100 shares of SPY at $650 is
        # no order for BTC): a new symbol starts from its own sensible quantity and no limit.
        # A limit order keeps its type and starts at the new symbol's own passive touch (the bid
        # for a buy, the ask for a sell: it rests, no surprise fill). One batch, so the preview
        # does not see the new quantity with the old limit.
        self.param.update(quantity=self.market.suggested_quantity(event.new), limit_price=self._touch(event.new))

    def _touch(self, symbol: str) -> str:
        if self.order_type != "limit":
            return ""
        quote = self.market.quotes([symbol]).iloc[0]
        price = quote["bid"] if self.side == "buy" else quote["ask"]
        if price != price:  # no quote on that side yet
            return ""
        return f"{price:.{self.market.instrument(symbol).price_decimals}f}"

    def _inputs(self) -> dict[str, Any]:
        # The limit field is left over from an earlier limit order when the type is market:
        # what is sent is what the chosen type uses.
        limit = (self.limit_price.strip() or None) if self.order_type == "limit" else None
        return {"symbol": self.symbol, "side": self.side, "quantity": self.quantity,
                "order_type": self.order_type, "limit_price": limit}  # fmt: skip

    @param.depends("symbol", "side", "order_type", "quantity", "limit_price", "tif", watch=True)
    def update_preview(self) -> None:
        """Re-estimate the order against the current book (and show input errors as they are typed)."""
        try:
            preview = self.market.preview(self.account, tif=self.tif, **self._inputs())
            errors: dict[str, str] = {}
        except OrderInputError as err:
            preview, errors = None, {err.field: err.reason}
        if not errors and self.result == FIX_FIELD:
            # "fix the highlighted field" once nothing is highlighted any more reads as a riddle.
            self.result = ""
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
            self.result = FIX_FIELD
            return False
        self.errors = {}
        self.result = f"Sent {out.client_order_id}" if out.ok else f"Refused: {out.reason}"
        return out.ok


# ---------------------------------------------------------------------------- pure renderers
def render_ladder(depth: pd.DataFrame, symbol: str, inst: Instrument | None = None) -> str:
    """The depth ladder as HTML: asks above bids, size bars, own resting orders marked ◆, sizes
    and prices with ``inst``'s precision (a 0.01 BTC order is "◆ 0.010", not "◆ 0").

    >>> df = pd.DataFrame({"side": ["ask", "bid"], "price": [10.01, 10.0], "size": [300.0, 200.0],
    ...                    "mine": [0.0, 100.0]})
    >>> "◆ 100" in render_ladder(df, "XYZ") and "10.01" in render_ladder(df, "XYZ")
    True
    >>> far = pd.concat([df, pd.DataFrame({"side": ["bid"], "price": [9.0], "size": [0.0], "mine": [50.0]})])
    >>> out = render_ladder(far, "XYZ")  # an own bid far below the book: set apart, no "0" size
    >>> "beyond the levels shown" in out and ">0<" not in out and "◆ 50" in out
    True
    """
    if depth is None or depth.empty:
        return f"<div class='vt-ladder'><b>{html.escape(str(symbol))}</b>: no book yet</div>"
    sd, pd_ = (inst.size_decimals, inst.price_decimals) if inst is not None else (0, 2)
    unit = f" ({html.escape(inst.unit)})" if inst is not None else ""
    biggest = max(float(depth["size"].max()), 1e-12)
    rows = []
    levels: Iterable[tuple[str, float, float, float]] = zip(
        depth["side"], depth["price"], depth["size"], depth["mine"], strict=True)
    for side, price, size, own in levels:
        colour = "#c62828" if side == "ask" else "#2e7d32"
        width = int(100 * float(size) / biggest)
        mine = f"◆ {own:,.{sd}f}" if own else ""
        bar = f"<div style='background:{colour}33;width:{width}%;height:14px'></div>"
        # An own order away from the levels shown has no book size here (the market says 0):
        # a dashed line sets it apart from the book, and its size is left blank, not "0".
        beyond = own and not size
        shown = "" if beyond else f"{size:,.{sd}f}"
        edge = (f" style='{'border-top' if side == 'bid' else 'border-bottom'}:1px dashed #999'"
                " title='your order, beyond the levels shown'") if beyond else ""  # fmt: skip
        rows.append(
            f"<tr{edge}>"
            f"<td style='color:{colour};text-align:right;padding-right:8px'>{price:,.{pd_}f}</td>"
            f"<td style='text-align:right;padding-right:6px'>{shown}</td><td style='width:40%'>{bar}</td>"
            f"<td style='color:#1565c0;font-weight:bold'>{mine}</td></tr>"
        )
    return (
        f"<div class='vt-ladder'><b>{html.escape(str(symbol))}</b> depth (◆ = your resting orders)"
        "<table style='width:100%;font-family:monospace;font-size:12px;border-collapse:collapse'>"
        f"<tr><th>Price</th><th>Size{unit}</th><th></th><th>Yours</th></tr>" + "".join(rows) + "</table></div>"
    )


_CLOCK_ICON = ("<svg width='12' height='12' viewBox='0 0 12 12' style='vertical-align:-1px' aria-hidden='true'>"
               "<circle cx='6' cy='6' r='5' fill='none' stroke='currentColor' stroke-width='1.4'/>"
               "<path d='M6 3v3l2 1.5' fill='none' stroke='currentColor' stroke-width='1.4'/></svg>")  # fmt: skip


def render_clock(clock: dict[str, Any]) -> str:
    """The clock badge: simulated time, speed, realism and queue model. ``data-wall`` carries the
    wall-clock time the shown slice was computed, so a client can measure its update lag.

    >>> out = render_clock({"ts": pd.Timestamp(0, tz="UTC"), "speed": 20.0, "realism": "L2", "queue": "prob",
    ...                     "wall": 1.5})
    >>> out.startswith("<span class='vt-clock' data-wall='1.500000'><span class='vt-date'>1970-01-01 </span>00:00")
    True
    >>> "realism L2 · prob queue" in out
    True
    >>> "live 85 ms" in render_clock({"ts": pd.Timestamp(0, tz="UTC"), "speed": 1.0, "realism": "L2", "queue": "prob",
    ...                               "live": {"state": "live", "delay_ms": 85.2}})
    True
    """
    if not clock:
        return "<span class='vt-clock'>starting…</span>"
    ts = clock["ts"].strftime("<span class='vt-date'>%Y-%m-%d </span>%H:%M:%S UTC")
    speed = "max speed" if not clock["speed"] else f"{clock['speed']:g}×"
    queue = str(clock["queue"]).replace("_", "-")
    day = f" · replaying {clock['day']}" if clock.get("day") else ""
    wall = f" data-wall='{clock['wall']:.6f}'" if "wall" in clock else ""
    live = clock.get("live")
    if live:  # a live feed: its state (live, syncing, connecting) and how far behind the exchange it is
        delay = f" {live['delay_ms']:,.0f} ms" if live.get("delay_ms") is not None else ""
        speed = f"<span class='vt-live' data-state='{live['state']}'>{live['state']}{delay}</span>"
    # What a phone's header has no room for is marked, so the badge can leave it out there.
    text = f"{ts} · {speed}<span class='vt-more'> · realism {clock['realism']} · {queue} queue{day}</span>"
    return f"<span class='vt-clock'{wall}>{text}</span>"


def render_preview(p: Preview | None, inst: Instrument | None = None) -> str:
    """The ticket's estimate as HTML (it changes with the book: no Markdown parse per refresh);
    the quantity in ``inst``'s unit and precision.

    >>> p = Preview("AAPL", "buy", 10, 10, 100.02, 100.0, 2.0, 1000.2, 1.0, 5000, 3999.8, False, "fills now")
    >>> "2.0 bps" in render_preview(p)
    True
    >>> from dataclasses import replace
    >>> "would be refused: Not enough" in render_preview(replace(p, refusal="Not enough buying power"))
    True
    """
    if p is None:
        return ""
    qty = fmt_quantity(p.quantity, inst)
    pd_ = inst.price_decimals if inst is not None else 2
    est = f"≈ {fmt_money(p.avg_price, max(2, pd_))} avg" if p.avg_price is not None else "no immediate fill"
    slip = f"{p.slippage_bps:.1f} bps vs mid {fmt_money(p.mid, max(2, pd_))}" if p.slippage_bps is not None else "–"
    side = _side_badge(p.side)
    if p.refusal:
        # Not a buying power "after" that can never happen (−$154bn for a typo'd quantity): the
        # broker's own reason, which says what it needs and what there is.
        after = (f"<span class='vt-refusal' style='color:#c62828'>⚠ This order would be refused: "
                 f"{html.escape(p.refusal)}</span>")  # fmt: skip
    else:
        after = f"buying power {fmt_money(p.buying_power)} → {fmt_money(p.buying_power_after)}"
    return (
        f"<div class='vt-preview'><b>Preview</b> {side} {qty} {html.escape(p.symbol)}: {est} "
        f"({html.escape(p.note)})<br>slippage {slip} · est. fee {fmt_money(p.fee)} · "
        f"notional {fmt_money(p.notional)}<br>{after}</div>"
    )


# ---------------------------------------------------------------------------- formatting for people
def fmt_money(x: float | None, decimals: int = 2) -> str:
    """Money as people write it: "−$1,234.50" (never "$-1,234.50"), blank when unknown.

    >>> fmt_money(-1234.5), fmt_money(float("nan")), fmt_money(0.5, 4)
    ('−$1,234.50', '', '$0.5000')
    """
    if x is None or x != x:
        return ""
    sign = "−" if x < 0 and round(x, decimals) != 0 else ""
    return f"{sign}${abs(x):,.{decimals}f}"


def fmt_quantity(x: float | None, inst: Instrument | None, *, unit: bool = True) -> str:
    """A quantity with the instrument's precision and, if ``unit``, its unit: "0.010 BTC", "100 shares".

    >>> from vtrade.core.instruments import BINANCE_BTCUSDT_USDM
    >>> fmt_quantity(0.01, BINANCE_BTCUSDT_USDM), fmt_quantity(10.0, None)
    ('0.010 BTC', '10')
    """
    if x is None or x != x:
        return ""
    decimals = inst.size_decimals if inst is not None else 0
    text = f"{x:,.{decimals}f}"
    return f"{text} {inst.unit}" if unit and inst is not None else text


def _side_badge(side: str) -> str:
    # Buy and sell differ by word, arrow AND colour: not by a shade alone (colour-blind readers).
    buy = str(side).lower() == "buy"
    colour, arrow = ("#1b5e20", "▲") if buy else ("#b71c1c", "▼")
    bg = "#e8f5e9" if buy else "#ffebee"
    return (f"<span class='vt-side vt-{'buy' if buy else 'sell'}' style='color:{colour};background:{bg};"
            f"padding:0 4px;border-radius:3px;font-weight:600'>{arrow} {html.escape(str(side).upper())}</span>")


#: How a column is shown: its header and kind (``money``, ``price``, ``qty``, ``pct``, ``bps``,
#: ``side``, ``time``, ``enum``, ``text``, ``wrap`` for long text). Columns not listed are not shown
#: (internal ones: ``*_lots``, ``account``, ``simulated`` as true/false). What a student looks for
#: first comes first (symbol, side, quantity, then status or price): on a phone the table scrolls
#: sideways and the first columns are what shows; ids come last.
Column = tuple[str, str, str]
ORDER_COLUMNS: tuple[Column, ...] = (
    ("symbol", "Symbol", "text"), ("side", "Side", "side"), ("quantity", "Quantity", "qty"),
    ("status", "Status", "enum"), ("filled", "Filled", "qty"), ("avg_price", "Avg price", "price"),
    ("type", "Type", "enum"), ("limit_price", "Limit", "price"), ("tif", "TIF", "upper"), ("fees", "Fees", "money"),
    ("ts", "Time (UTC)", "time"), ("client_order_id", "Order", "text"), ("reason", "Note", "wrap"),
)  # fmt: skip
FILL_COLUMNS: tuple[Column, ...] = (
    ("symbol", "Symbol", "text"), ("side", "Side", "side"), ("quantity", "Quantity", "qty"),
    ("price", "Price", "price"), ("fee", "Fee", "money"), ("slippage_bps", "Slippage", "bps"),
    ("arrival_mid", "Mid at arrival", "price"), ("liquidity", "Liquidity", "enum"),
    ("queue_ahead", "Queue ahead", "qty"), ("model", "Fill model", "text"), ("ts", "Time (UTC)", "time"),
    ("fill_id", "Fill", "text"),
)  # fmt: skip
POSITION_COLUMNS: tuple[Column, ...] = (
    ("symbol", "Symbol", "text"), ("quantity", "Quantity", "qty"), ("value", "Value", "money"),
    ("unrealized_pnl", "Unrealized P&L", "pnl"), ("price", "Price", "price"), ("cost_basis", "Cost basis", "money"),
    ("weight", "% of holdings", "weight"), ("sector", "Sector", "wrap"),
)  # fmt: skip
RANKING_COLUMNS: tuple[Column, ...] = (
    ("rank", "#", "text"), ("account", "Trader", "trader"), ("nav", "NAV", "money"), ("return_pct", "Return", "pct"),
)  # fmt: skip


def _cell(kind: str, value: Any, row: Mapping[Any, Any], inst: Instrument | None) -> tuple[str, bool]:
    """(HTML, right-aligned) of one cell; blank for a missing value, never "NaN"."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT or value is pd.NA:
        return "", kind not in ("text", "wrap", "enum", "side", "time")
    if kind == "qty":
        return fmt_quantity(float(value), inst, unit=False), True
    if kind == "price":
        return fmt_money(float(value), max(2, inst.price_decimals) if inst is not None else 2), True
    if kind == "money":
        return fmt_money(float(value)), True
    if kind == "pnl":
        colour = "#2e7d32" if value > 0 else ("#c62828" if value < 0 else "inherit")
        return f"<span style='color:{colour}'>{'+' if value > 0 else ''}{fmt_money(float(value))}</span>", True
    if kind == "pct":
        return f"{float(value):+.2f}%", True
    if kind == "weight":
        return f"{100 * float(value):.1f}%", True
    if kind == "bps":
        return f"{float(value):+.1f} bps", True
    if kind == "side":
        return _side_badge(str(value)), False
    if kind == "time":
        return html.escape(pd.Timestamp(value).strftime("%m-%d %H:%M:%S")), False
    if kind == "upper":
        return html.escape(str(value).upper()), False
    if kind == "trader":
        tag = " <span style='color:#777;font-size:11px'>(simulated)</span>" if row.get("simulated") else ""
        return html.escape(str(value)) + tag, False
    if kind == "enum":  # a code word ("pending_new") read as words; ids and names stay as they are
        return html.escape(str(value).replace("_", " ")), False
    return html.escape(str(value)), False


_LEFT = ("text", "wrap", "enum", "side", "time", "upper", "trader")  # kinds of column read from the left


def render_table(df: pd.DataFrame | None, columns: Iterable[Column], empty: str,
                 instrument: Any = None, css_class: str = "vt-table") -> str:  # fmt: skip
    """A table for people: human headers, money/percent/instrument-precision formats, blanks for
    missing values and ``empty`` as a placeholder when there are no rows. ``instrument(symbol)``
    gives a row's :class:`Instrument` (for its size and price precision).

    >>> df = pd.DataFrame({"symbol": ["XYZ"], "side": ["buy"], "quantity": [10.0], "avg_price": [float("nan")],
    ...                    "quantity_lots": [10]})
    >>> out = render_table(df, ORDER_COLUMNS, "No orders yet")
    >>> "NaN" in out, "quantity_lots" in out, ">10<" in out, "▲ BUY" in out
    (False, False, True, True)
    >>> "No orders yet" in render_table(pd.DataFrame(), ORDER_COLUMNS, "No orders yet")
    True
    """
    cols = [c for c in columns if df is not None and (c[0] in df.columns or c[0] == "rank")]
    if df is None or df.empty:
        return f"<div class='{css_class} vt-empty' style='color:#777;padding:12px 4px;font-style:italic'>{empty}</div>"
    head = "".join(
        f"<th style='text-align:{'left' if k in _LEFT else 'right'};"
        f"padding:3px 6px;position:sticky;top:0;background:#f5f7fa;white-space:nowrap'>{h}</th>"
        for _, h, k in cols
    )
    rows = []
    for i, row in enumerate(df.to_dict("records")):
        inst = None
        if instrument is not None and "symbol" in row:
            try:
                inst = instrument(row["symbol"])
            except KeyError:
                inst = None
        cells = []
        for name, _, kind in cols:
            text, right = _cell(kind, i + 1 if name == "rank" else row.get(name), row, inst)
            # Long text (a refusal's reason, a sector's name) wraps in its cell instead of running
            # off the table's edge.
            wrap = "white-space:normal;min-width:140px;max-width:320px" if kind == "wrap" else "white-space:nowrap"
            cells.append(f"<td style='padding:2px 6px;{wrap};text-align:{'right' if right else 'left'}'>"
                         f"{text}</td>")  # fmt: skip
        rows.append("<tr style='border-top:1px solid #eee'>" + "".join(cells) + "</tr>")
    return (f"<div class='{css_class}' style='overflow:auto;max-height:260px'>"
            "<table style='border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums;width:100%'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")  # fmt: skip


def _result_html(result: str) -> str:
    # Nothing at all when there is no answer yet (an empty Markdown pane still took a line).
    if not result:
        return ""
    colour = "#c62828" if result.startswith((NOT_SENT, "Refused", "Cancel refused")) else "#1b5e20"
    return f"<span style='color:{colour}'>{html.escape(result)}</span>"


def _field_error(errors: dict[str, str], field: str) -> str:
    reason = errors.get(field)
    return f"<span style='color:#c62828;font-size:12px'>⚠ {html.escape(reason)}</span>" if reason else ""


def _summary_html(s: dict[str, Any]) -> str:
    if not s:
        return ""
    pnl = s["pnl"]
    colour = "#2e7d32" if pnl >= 0 else "#c62828"
    cells = [("NAV", fmt_money(s["nav"])),
             ("P&L", f"<span style='color:{colour}'>{'+' if pnl > 0 else ''}{fmt_money(pnl)}</span>"),
             ("Cash", fmt_money(s["cash"])), ("Buying power", fmt_money(s["buying_power"])),
             ("Fees", fmt_money(s["fees"]))]  # fmt: skip
    return "<div style='display:flex;flex-wrap:wrap;gap:6px 18px'>" + "".join(
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
    # (header, class): numbers right-aligned; sector and spread give way on a laptop, name and
    # sizes too on a phone (the prices and the change are what a glance needs).
    head = (("Symbol", ""), ("Name", "name wide"), ("Sector", "wide mid"), ("Bid", "n"), ("Size", "n wide"),
            ("Ask", "n"), ("Size", "n wide"), ("Last", "n"), ("Change", "n"), ("Spread", "n wide mid"))  # fmt: skip
    rows = []
    columns = ("symbol", "name", "sector", "bid", "bid_size", "ask", "ask_size", "last", "change_pct", "spread_bps")
    # A teacher's halt (a class market's quotes say which): the row says so, not just a frozen price.
    # (An empty frame may have no columns at all: the state's default before the first refresh.)
    # Columns as plain lists: iterating the Series themselves cost more than the HTML.
    cols = {c: quotes[c].tolist() for c in (*columns, "halted") if c in quotes} if not quotes.empty else {}
    halted = {s for s, h in zip(cols["symbol"], cols["halted"], strict=True) if h} if "halted" in cols else set()
    lines: Iterable[tuple[str, str, str, float, float, float, float, float, float, float]] = (
        () if not cols else zip(*(cols[c] for c in columns), strict=True))
    for symbol, name, sector, bid, bid_size, ask, ask_size, last, change_pct, spread_bps in lines:
        colour = "#2e7d32" if change_pct > 0 else ("#c62828" if change_pct < 0 else "#444")
        arrow = "▲ " if change_pct > 0 else ("▼ " if change_pct < 0 else "")
        # Each row names its symbol: a click on it moves the focus (ClickableHTML).
        style = (f" data-symbol='{html.escape(symbol)}' title='Focus {html.escape(symbol)}' style='cursor:pointer"
                 + (";background:#e3f2fd'" if symbol == focus else "'"))  # fmt: skip
        tag = " <span class='vt-halted' style='background:#b71c1c;color:#fff;padding:0 4px;border-radius:3px;" \
              "font-size:11px'>HALTED</span>" if symbol in halted else ""
        cells = (f"<b>{html.escape(symbol)}</b>{tag}", html.escape(str(name)), html.escape(str(sector)),
                 _num(bid), _num(bid_size, 3), _num(ask), _num(ask_size, 3), _num(last),
                 f"<span style='color:{colour}'>{arrow}{change_pct:+.2f}%</span>",
                 f"{_num(spread_bps, 1)} bps")  # fmt: skip
        rows.append(f"<tr{style}>" + "".join(f"<td class='{k}'>{c}</td>" for c, (_, k) in zip(cells, head, strict=True))
                    + "</tr>")  # fmt: skip
    return (_WATCH_CSS + "<table class='vt-watchlist'><tr>"
            + "".join(f"<th class='{k}'>{h}</th>" for h, k in head) + "</tr>" + "".join(rows) + "</table>")


_WATCH_CSS = """<style>
.vt-watchlist { width: 100%; font-size: 13px; border-collapse: collapse; white-space: nowrap;
  font-variant-numeric: tabular-nums; }
.vt-watchlist th { text-align: left; background: #f5f7fa; }
.vt-watchlist td, .vt-watchlist th { padding: 3px 5px; }
.vt-watchlist tr + tr { border-top: 1px solid #eee; }
.vt-watchlist .n { text-align: right; }
.vt-watchlist .name { max-width: 150px; overflow: hidden; text-overflow: ellipsis; }
@media (max-width: 900px) { .vt-watchlist .mid { display: none; } .vt-watchlist .name { max-width: 140px; } }
@media (max-width: 700px) { .vt-watchlist .wide { display: none; } }
</style>"""


def _num(x: float, decimals: int = 2) -> str:
    if x != x:  # NaN: no price on that side
        return "–"
    text = f"{x:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if decimals > 2 and "." in text else text


class LiveHTML(pn.pane.HTML):
    """An HTML pane whose new object sends only its new text to the browser model.

    Panel's HTML pane answers every new object by recomputing and re-applying all of its
    model's properties (design, stylesheets, sizing...: some twenty, each validated and
    compared by Bokeh): with 30 sessions refreshing a handful of panes twice a second that was a
    quarter of a refresh's cost, for one property that changed. Only ``text`` follows the
    object; the other parameters reach the model through their own watchers as before, except
    ``stylesheets``, which Panel's panes apply only with an object: a change of them (or the
    first update) still takes the full path."""

    def _get_model(self, doc: Any, root: Any = None, parent: Any = None, comm: Any = None) -> Any:
        model = super()._get_model(doc, root, parent, comm)
        self._applied_stylesheets = self.stylesheets  # the new model has every property already
        return model

    def _update(self, ref: str, model: Any) -> None:
        if self.stylesheets is not getattr(self, "_applied_stylesheets", None):
            super()._update(ref, model)
            self._applied_stylesheets = self.stylesheets
            return
        model.update(**self._process_param_change({"object": self.object}))


class ClickableHTML(JSComponent):
    """HTML whose rows can be clicked: a click on an element with ``data-symbol`` sets
    ``clicked`` (the watchlist's row click moves the focus). The HTML is rendered on the server
    as elsewhere; this only adds the click, in a few lines of browser code (no download)."""

    object = param.String(default="", doc="the HTML shown")
    clicked = param.String(default="", doc="the data-symbol of the last clicked row ('' once handled)")

    _esm = """
    export function render({ model, el }) {
      const box = document.createElement('div')
      box.style.overflowX = 'auto'
      box.innerHTML = model.object
      model.on('object', () => { box.innerHTML = model.object })
      box.addEventListener('click', (e) => {
        const row = e.target.closest('[data-symbol]')
        if (row) { model.clicked = row.dataset.symbol }
      })
      return box
    }
    """

    def _update_properties(self, *events: param.parameterized.Event, doc: Any) -> dict[str, Any]:
        # Panel resolves the design's parameters on every change but uses them only for a change
        # of stylesheets: the watchlist's new HTML twice a second need not pay for it.
        if any(e.name == "stylesheets" for e in events):
            return super()._update_properties(*events, doc=doc)
        return self._process_param_change({e.name: e.new for e in events})


def watchlist(state: TraderState) -> pn.viewable.Viewable:
    """L1 quotes of the watchlist (HTML rendered on the server: a full table widget costs the
    server several times more per refresh) and the symbol in focus: a row click or the search
    box moves the focus."""
    focus = pn.widgets.Select.from_param(state.param.symbol, label=f"Focus ({len(state.param.symbol.objects)} symbols)",
                                         width=220)  # fmt: skip
    table = ClickableHTML(object=render_watchlist(state.quotes, state.symbol), sizing_mode="stretch_width",
                          styles={"overflow-x": "auto"})  # fmt: skip

    def show(*_: object) -> None:
        quotes, focus = state.quotes, state.symbol
        table.object = _WATCHLIST_HTML.get(quotes, (focus,), lambda: render_watchlist(quotes, focus))

    def clicked(event: param.parameterized.Event) -> None:
        if event.new in state.param.symbol.objects:
            state.symbol = event.new
        if event.new:
            table.clicked = ""  # the same row can be clicked again later

    state.param.watch(show, ["quotes", "symbol"])
    table.param.watch(clicked, "clicked")
    return pn.Column(heading("### Watchlist"), focus, table, sizing_mode="stretch_width", css_classes=["vt-watch"])


def leaderboard(state: TraderState) -> pn.viewable.Viewable:
    """The class ranked by NAV (simulated members marked): what everyone may see of everyone."""
    table = LiveHTML(pn.bind(render_table, state.param.ranking, RANKING_COLUMNS, "No traders yet"),
                         sizing_mode="stretch_width")  # fmt: skip
    return pn.Column(heading("### Leaderboard"), table, sizing_mode="stretch_width", css_classes=["vt-leaderboard"])


def depth_ladder(state: TraderState) -> pn.viewable.Viewable:
    """The L2 ladder of the focused symbol with this account's resting orders marked, in the
    instrument's precision."""
    def show(depth: pd.DataFrame, symbol: str) -> str:
        return _LADDER_HTML.get(depth, (symbol,), lambda: render_ladder(depth, symbol, state.instrument(symbol)))

    return LiveHTML(pn.bind(show, state.param.depth, state.param.symbol), sizing_mode="stretch_width",
                        css_classes=["vt-ladder-pane"])  # fmt: skip


#: Simulated time runs at up to 50x: a tick label shows what changes at the chart's zoom, and
#: hours:minutes at most (dates only where the day changes), so labels never run together.
def time_ticks() -> DatetimeTickFormatter:
    """A new formatter for every figure: a Bokeh model belongs to one document (one session),
    and a shared one fails as soon as a second session adds a chart to a page already shown."""
    return DatetimeTickFormatter(
        seconds="%H:%M:%S", minsec="%H:%M:%S", minutes="%H:%M", hourmin="%H:%M", hours="%H:%M",
        days="%b %d", months="%b %Y", years="%Y", context=None,
    )  # fmt: skip


def time_axis_label(clock: Mapping[str, Any]) -> str:
    """The time axis's label: a live feed's clock is the exchange's real time, any other the
    simulation's.

    >>> time_axis_label({"live": {"state": "live"}}), time_axis_label({"live": None})
    ('time (UTC)', 'simulated time (UTC)')
    """
    return "time (UTC)" if clock.get("live") else "simulated time (UTC)"


def _time_figure(height: int, ylabel: str, title: str | None = None) -> figure:
    fig = figure(x_axis_type="datetime", height=height, sizing_mode="stretch_width", title=title,
                 tools="pan,wheel_zoom,box_zoom,reset,hover", toolbar_location="above", min_width=260)  # fmt: skip
    fig.yaxis.axis_label = ylabel
    fig.yaxis.formatter = NumeralTickFormatter(format="0,0.00")
    fig.xaxis.formatter = time_ticks()
    # Where the plot is narrow (a phone) labels that would run together are left out.
    fig.xaxis.major_label_policy = NoOverlap(min_distance=8)
    _ticks(fig.xaxis, 4)
    _ticks(fig.yaxis, 5)
    return fig


def _ticks(axes: Any, n: int) -> None:
    """Ask ``axes``' tickers for about ``n`` ticks. (Bokeh types an axis's ticker as a Ticker or
    a list of fixed ticks; a figure's default tickers all take ``desired_num_ticks``.)"""
    for axis in axes:
        axis.ticker.desired_num_ticks = n


def price_chart(state: TraderState) -> pn.viewable.Viewable:
    """A streaming mid/bid/ask chart: each refresh sends only the new samples (Bokeh ``stream``);
    its ranges follow the data in the browser."""
    fig = _time_figure(400, "")
    fig.yaxis.formatter = NumeralTickFormatter(format="$0,0.00")
    fig.xaxis.axis_label = time_axis_label(state.clock)
    items = []
    for col, colour, width, alpha in (("bid", "#2e7d32", 1, 0.6), ("ask", "#c62828", 1, 0.6),
                                      ("mid", "#1565c0", 2, 1.0)):  # fmt: skip
        r = fig.line("ts", col, source=state.price_source, color=colour, line_width=width, alpha=alpha)
        items.append((col, [r]))
    # The legend sits above the plot, never over the data (at 1024 px the plot is narrow). (Passed
    # as a dict: Bokeh's stubs type ``items`` and ``padding`` narrower than Bokeh accepts.)
    options: dict[str, Any] = {"items": items, "orientation": "horizontal", "location": "top_left", "margin": 0,
                               "padding": 2, "spacing": 8, "border_line_alpha": 0}  # fmt: skip
    legend = Legend(**options)
    fig.add_layout(legend, "above")
    title = pn.bind(lambda s: f"### {s} price", state.param.symbol)
    return pn.Column(heading(title), pn.pane.Bokeh(fig, sizing_mode="stretch_width"),
                     sizing_mode="stretch_width", min_width=280, css_classes=["vt-chart"])  # fmt: skip


HEADING_CSS = ":host h3, :host h4 { margin: 6px 0 2px 0; }"


def heading(text: Any) -> pn.pane.Markdown:
    """A section heading ("### My orders", or a function of params giving it) without the
    theme's wide margins above and below."""
    return pn.pane.Markdown(text, margin=(2, 10), stylesheets=[HEADING_CSS])


#: The field in error is outlined red (Panel widgets render in a shadow root: the rule goes there).
ERROR_CSS = (":host(.vt-error) input, :host(.vt-error) select "
             "{ border: 2px solid #c62828 !important; background: #ffebee; }")


SIDE_CSS = """
.bk-btn-group .bk-btn { font-weight: 600; background: #fff; }
.bk-btn-group .bk-btn:nth-child(1) { color: #1b5e20; border-color: #2e7d32; }
.bk-btn-group .bk-btn:nth-child(1).bk-active { background: #2e7d32 !important; color: #fff !important; }
.bk-btn-group .bk-btn:nth-child(2) { color: #b71c1c; border-color: #c62828; }
.bk-btn-group .bk-btn:nth-child(2).bk-active { background: #c62828 !important; color: #fff !important; }
"""


def order_ticket(ticket: TicketState) -> pn.viewable.Viewable:
    """Inputs with their errors next to them (the field outlined), the preview, and Submit; the
    quantity is labelled in the instrument's unit (shares, BTC, contracts)."""
    errs = ticket.param.errors

    def qty_label(symbol: str) -> str:
        return f"Quantity ({ticket.market.instrument(symbol).unit})"

    widgets: dict[str, pn.widgets.Widget] = {
        "symbol": pn.widgets.Select.from_param(ticket.param.symbol, label="Symbol"),
        "side": pn.widgets.RadioButtonGroup.from_param(ticket.param.side, label="Side",
                                                       options={"▲ Buy": "buy", "▼ Sell": "sell"}),
        "order_type": pn.widgets.Select.from_param(ticket.param.order_type, label="Type"),
        "quantity": pn.widgets.TextInput.from_param(ticket.param.quantity, label=qty_label(ticket.symbol)),
        "limit_price": pn.widgets.TextInput.from_param(ticket.param.limit_price, label="Limit price ($)"),
        "tif": pn.widgets.Select.from_param(ticket.param.tif, label="Time in force"),
    }
    for w in widgets.values():
        w.stylesheets = [*w.stylesheets, ERROR_CSS]
    # Buy green, sell red, each with its arrow and word: the chosen one filled (not a shade of one colour).
    widgets["side"].stylesheets = [*widgets["side"].stylesheets, SIDE_CSS]

    def limit_applies(order_type: str) -> None:
        # A market order has no limit: the field is greyed out rather than left to look ignored.
        widgets["limit_price"].param.update(disabled=order_type != "limit",
                                            placeholder="" if order_type == "limit" else "limit orders only")

    def on_change(event: param.parameterized.Event) -> None:
        if event.name == "symbol":
            widgets["quantity"].name = qty_label(event.new)
        elif event.name == "order_type":
            limit_applies(event.new)
        elif event.name == "errors":
            for field, w in widgets.items():
                classes = [c for c in w.css_classes if c != "vt-error"]
                w.css_classes = [*classes, "vt-error"] if field in event.new else classes

    limit_applies(ticket.order_type)
    ticket.param.watch(on_change, ["symbol", "errors", "order_type"])
    if "note" in ticket.param:  # a class's ticket: the trade note (why), required or not by the class
        widgets["note"] = pn.widgets.TextInput.from_param(ticket.param.note, name=getattr(ticket, "note_label", "Note"),
                                                          placeholder="why this trade, in a sentence")  # fmt: skip
        widgets["note"].stylesheets = [*widgets["note"].stylesheets, ERROR_CSS]
    rows: list[pn.viewable.Viewable] = []
    for field in widgets:
        rows.append(widgets[field])
        rows.append(LiveHTML(pn.bind(_field_error, errs, field), margin=(0, 10)))

    def send(event: param.parameterized.Event) -> None:
        ticket.submit()  # its answer shows in ticket.result

    submit = pn.widgets.Button(label="Confirm order", color="primary")
    submit.on_click(send)
    refresh = pn.widgets.Button(label="Refresh preview", color="light")
    refresh.on_click(lambda event: ticket.update_preview())

    def preview(p: Preview | None, symbol: str) -> str:
        return render_preview(p, ticket.market.instrument(symbol))

    return pn.Column(
        heading("### Order ticket"), *rows,
        LiveHTML(pn.bind(preview, ticket.param.preview, ticket.param.symbol), sizing_mode="stretch_width"),
        pn.Row(refresh, submit), LiveHTML(pn.bind(_result_html, ticket.param.result), margin=(0, 10)), width=330,
        css_classes=["vt-ticket"],
    )  # fmt: skip


def shown(df: pd.DataFrame) -> pd.DataFrame:
    """A public table (:mod:`vtrade.execution.tables`) as a person reads it: without the account
    (it is always theirs) and the exact ``*_lots``/``*_ticks`` columns kept for analytics.

    >>> list(shown(pd.DataFrame(columns=["ts", "account", "price", "price_ticks", "quantity_lots"])).columns)
    ['ts', 'price']
    """
    return df[[c for c in df.columns if c != "account" and not c.endswith(("_lots", "_ticks"))]]


def blotter(state: TraderState) -> pn.viewable.Viewable:
    """This account's orders and fills (with receipts, scrolling sideways rather than off the
    page), and cancelling an open order."""
    def newest_first(df: pd.DataFrame) -> pd.DataFrame:  # a blotter reads from the top: the latest first
        return df.iloc[::-1].reset_index(drop=True)

    def orders_html(df: pd.DataFrame) -> str:
        return render_table(newest_first(df), ORDER_COLUMNS, "No orders yet: use the order ticket",
                            state.instrument, "vt-orders")  # fmt: skip

    def fills_html(df: pd.DataFrame) -> str:
        return render_table(newest_first(df), FILL_COLUMNS, "No fills yet", state.instrument, "vt-fills")

    orders = LiveHTML(pn.bind(orders_html, state.param.orders), sizing_mode="stretch_width")
    fills = LiveHTML(pn.bind(fills_html, state.param.fills), sizing_mode="stretch_width")
    which = pn.widgets.Select(label="Open order", options=state.param.open_orders, width=180)
    cancel = pn.widgets.Button(label="Cancel order", color="warning", align="end")

    def cancellable(open_orders: list[str]) -> None:
        # An empty picker and a live button read as broken when there is nothing to cancel.
        which.param.update(disabled=not open_orders, name="Open order" if open_orders else "Open order (none)")
        cancel.disabled = not open_orders

    cancellable(state.open_orders)
    state.param.watch(lambda e: cancellable(e.new), "open_orders")

    def cancel_selected(event: param.parameterized.Event) -> None:
        if which.value:
            state.cancel(which.value)

    cancel.on_click(cancel_selected)
    tabs = pn.Tabs(("Orders", orders), ("Fills", fills), sizing_mode="stretch_width")
    answer = LiveHTML(pn.bind(_result_html, state.param.message), margin=(0, 10))
    return pn.Column(heading("### My orders"), tabs, pn.Row(which, cancel), answer, sizing_mode="stretch_width",
                     css_classes=["vt-blotter"])  # fmt: skip


def _allocation(sectors: pd.DataFrame, cash: float | None) -> dict[str, Any]:
    """What the allocation chart shows: the sectors held and the cash (so the chart is never
    empty: an account that holds nothing is all cash)."""
    # Plain lists, not a filtered frame: this runs with every summary (every other refresh).
    pairs: Iterable[tuple[Any, Any]] = () if sectors.empty else zip(
        sectors.sector.tolist(), sectors.exposure.tolist(), strict=True)
    held = [(str(s), float(e)) for s, e in pairs if e != 0]
    names = [s for s, _ in held]
    values = [e for _, e in held]
    if cash is not None and cash == cash:
        names.append("Cash")
        values.append(float(cash))
    return {"sector": names, "exposure": values}


def portfolio_panel(state: TraderState) -> pn.viewable.Viewable:
    """NAV and P&L, positions, the NAV curve (streamed) and the allocation chart (sectors and cash)."""
    nav = _time_figure(220, "NAV $", "NAV")
    # Cents show when the NAV barely moves (else the ticks read "$100,000 $100,000 $100,000").
    nav.yaxis.formatter = NumeralTickFormatter(format="$0,0.[00]")
    nav.line("ts", "nav", source=state.nav_source, color="#6a1b9a", line_width=2)
    # The sectors held and the cash, as horizontal bars; the source changes only when they do.
    bars = ColumnDataSource({"sector": [], "exposure": []})
    sector_range = FactorRange()
    sector_fig = figure(y_range=sector_range, x_range=DataRange1d(start=0), height=220, sizing_mode="stretch_width",
                        title="Allocation",
                        tools="hover", toolbar_location=None, min_width=260,
                        tooltips=[("", "@sector"), ("$", "@exposure{$0,0.00}")])  # fmt: skip
    sector_fig.hbar(y="sector", right="exposure", height=0.7, source=bars, color="#00838f")
    sector_fig.xaxis.axis_label = "exposure"
    # Short labels ($1.2k, $100k) and few ticks: "0 200400600800 1,001,201…" ran together.
    sector_fig.xaxis.formatter = NumeralTickFormatter(format="$0.[0]a")
    sector_fig.xaxis.major_label_policy = NoOverlap(min_distance=8)
    _ticks(sector_fig.xaxis, 4)

    def show_sectors(*events: param.parameterized.Event) -> None:
        data = _allocation(state.sectors, state.summary.get("cash") if state.summary else None)
        if list(sector_range.factors) != data["sector"]:
            sector_range.factors = data["sector"]
        if bars.data.get("exposure") != data["exposure"] or list(bars.data.get("sector", [])) != data["sector"]:
            bars.data = data

    state.param.watch(show_sectors, ["sectors", "summary"])
    show_sectors()

    def positions_html(df: pd.DataFrame) -> str:
        return render_table(df, POSITION_COLUMNS, "No positions yet: you hold only cash", state.instrument,
                            "vt-positions")  # fmt: skip

    positions = LiveHTML(pn.bind(positions_html, state.param.positions), sizing_mode="stretch_width")
    charts = pn.FlexBox(pn.pane.Bokeh(nav, sizing_mode="stretch_width", min_width=260, styles={"flex": "1 1 300px"}),
                        pn.pane.Bokeh(sector_fig, sizing_mode="stretch_width", min_width=260,
                                      styles={"flex": "1 1 300px"}),
                        sizing_mode="stretch_width", flex_wrap="wrap")  # fmt: skip
    summary = pn.Column(heading("### My portfolio"), LiveHTML(pn.bind(_summary_html, state.param.summary)),
                        heading("#### Positions"), positions, sizing_mode="stretch_width",
                        css_classes=["vt-positions-pane"])  # fmt: skip
    return pn.Column(summary, charts, sizing_mode="stretch_width", css_classes=["vt-portfolio"])


def clock_badge(state: TraderState) -> pn.viewable.Viewable:
    """Simulated time, replay speed and realism level (the icon is drawn, not a font glyph)."""
    css = (".vt-clock { white-space: nowrap; } "
           "@media (max-width: 700px) { .vt-more, .vt-date, svg { display: none; } .vt-clock { font-size: 12px; } }")
    def badge(clock: dict[str, Any]) -> str:  # the icon stays on the time's line
        return f"<span style='white-space:nowrap'>{_CLOCK_ICON} {render_clock(clock)}</span>"

    return LiveHTML(pn.bind(badge, state.param.clock), stylesheets=[css])


# ---------------------------------------------------------------------------- the dashboard
def link_focus(state: TraderState, ticket: TicketState) -> None:
    """One focus: the symbol chosen anywhere (watchlist row, focus search, ticket) moves the
    ladder, the chart, the ticket and its preview together. (param only notifies a change, so
    the two watchers do not loop.)"""
    if ticket.symbol != state.symbol:
        ticket.symbol = state.symbol
    state.param.watch(lambda e: setattr(ticket, "symbol", e.new), "symbol")
    ticket.param.watch(lambda e: setattr(state, "symbol", e.new), "symbol")


#: Where each view goes, by width: (order, flex grow, flex basis) on a wide screen, and its order
#: on a phone, where what a trader acts on (ticket, positions, orders) comes first. The rows of a
#: wide screen are: the watchlist and leaderboard; ladder, chart and ticket; orders and portfolio
#: (the "break" slots end a row). With the copilot's chat, the chat takes the leaderboard's place
#: beside the watchlist and the leaderboard ends the last row ("leaderboard-low"). The rule sits
#: in the view's own shadow root (``:host``): Panel renders each view in one.
_SLOTS: dict[str, tuple[int, int, str, int]] = {
    "account": (0, 0, "100%", 0), "watchlist": (1, 3, "560px", 5), "copilot": (2, 2, "380px", 4),
    "leaderboard": (3, 1, "300px", 8), "break1": (4, 0, "100%", 9), "ladder": (5, 0, "300px", 6),
    "chart": (6, 1, "320px", 7), "ticket": (7, 0, "330px", 1), "break2": (8, 0, "100%", 9),
    "blotter": (9, 1, "100%", 3), "portfolio": (10, 1, "520px", 2), "leaderboard-low": (11, 1, "330px", 8),
}  # fmt: skip


#: On a laptop (701-1200 px) the views that need width get whole rows: the watchlist (its
#: columns were cut off beside the chat), then the chat, then the price chart (~300 px wide
#: between ladder and ticket at 1024 px), then the ladder, widened, beside the ticket.
_LAPTOP: dict[str, str] = {
    "watchlist": "flex: 1 1 100%;", "copilot": "flex: 1 1 100%;", "chart": "order: 4; flex: 1 1 100%;",
    "ladder": "flex: 1 1 250px; width: auto !important;",
}  # fmt: skip


def _slot_css(slot: str) -> str:
    order, grow, basis, phone = _SLOTS[slot]
    laptop = (f"@media (min-width: 701px) and (max-width: 1200px) {{ :host {{ {_LAPTOP[slot]} }} }}\n"
              if slot in _LAPTOP else "")  # fmt: skip
    return (f":host {{ order: {order}; flex: {grow} 1 {basis}; min-width: 0; max-width: 100%; }}\n{laptop}"
            f"@media (max-width: 700px) {{ :host {{ order: {phone}; flex: 1 1 100%; width: 100% !important; }} }}")


def _row_break(slot: str) -> pn.viewable.Viewable:
    # An empty, zero-height item a whole row wide: the flex row wraps after it.
    return pn.Spacer(height=0, margin=0, stylesheets=[_slot_css(slot)], css_classes=["vt-break"])


_ACCOUNT_IDS = itertools.count(1)


def _new_account(market: LiveMarket) -> str:
    """A fresh account name for a new browser session (never reused, never chosen by the client)."""
    while True:
        name = f"trader-{next(_ACCOUNT_IDS)}"
        if market.open_account_if_free(name):
            return name


def trader_views(state: TraderState, ticket: TicketState, label_html: str,
                 copilot: pn.viewable.Viewable | None = None) -> pn.FlexBox:  # fmt: skip
    """The trading views of one session laid out by width (see ``_SLOTS``), under a first line
    ``label_html`` saying whose account this is (HTML: escape what a person typed), with the
    ``copilot``'s chat (:func:`vtrade.ui.copilot_chat.copilot_panel`) beside the watchlist when
    given. Links the focus of ``state`` and ``ticket`` and reads their first data."""
    link_focus(state, ticket)
    state.refresh()
    ticket.update_preview()
    views = [
        (pn.pane.HTML(label_html, sizing_mode="stretch_width"), "account"),
        (watchlist(state), "watchlist"), (leaderboard(state), "leaderboard"),
        (pn.Column(depth_ladder(state), width=300), "ladder"), (price_chart(state), "chart"),
        (order_ticket(ticket), "ticket"), (blotter(state), "blotter"), (portfolio_panel(state), "portfolio"),
    ]  # fmt: skip
    slots = {}
    if copilot is not None:
        views.insert(2, (copilot, "copilot"))
        slots["leaderboard"] = "leaderboard-low"  # the chat takes its place in the top row
    for view, name in views:
        view.stylesheets = [*view.stylesheets, _slot_css(slots.get(name, name))]
        view.css_classes = [*view.css_classes, "vt-view", f"vt-{name}-view"]
    return pn.FlexBox(*(v for v, _ in views), _row_break("break1"), _row_break("break2"), flex_wrap="wrap",
                      gap="8px 16px", align_items="flex-start", sizing_mode="stretch_width")  # fmt: skip


def _server_loop(doc: Any) -> Any:
    """The event loop serving ``doc`` (Bokeh's application context holds it), or None where
    there is none to find (a document made by hand): then the fan-out queues from its own thread."""
    server = getattr(doc.session_context, "server_context", None)
    app = getattr(server, "application_context", None)
    return getattr(app, "io_loop", None)


def keep_fresh(tick: Callable[[], None], period_ms: int, *, on_leave: Callable[[], None] | None = None) -> None:
    """Run ``tick`` for the CURRENT served session every ``period_ms`` (one batch of model
    changes per run) until the session closes, then ``on_leave``. Outside a served session
    (a test, a notebook) nothing is scheduled."""
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        return

    def run() -> None:
        with set_curdoc(doc), hold(doc):  # one batch of model changes per refresh, not one per view
            tick()

    # One process-wide timer refreshes every session in turn (fair under load).
    fanout = shared_fanout(period_ms)
    key = fanout.add(doc, run, _server_loop(doc))

    def cleanup(session_context: Any) -> None:
        fanout.remove(key)  # the session's views go away with it
        if on_leave is not None:
            on_leave()

    pn.state.on_session_destroyed(cleanup)


def trader_dashboard(
    market: LiveMarket, *, period_ms: int = 500, account: str | None = None, cancel_on_leave: bool = True,
    copilot: bool = True,
) -> pn.template.BaseTemplate:
    """The trader dashboard for the CURRENT browser session, trading as ``account`` (an open
    account of ``market``; default: a new one opened now), views of the shared market refreshed
    every ``period_ms`` (default 2 Hz), cleaned up on close. ``cancel_on_leave`` cancels the
    account's open orders when the session closes: right for a throwaway account nobody can come
    back to, wrong for one a browser gets back (:mod:`vtrade.ui.serve` with a data dir).
    ``copilot`` adds the copilot's chat (:mod:`vtrade.ui.copilot_chat`; its model is the one the
    environment names, see :mod:`vtrade.runtime.model_client`), whose proposals this browser signs.

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
    ticket = TicketState(market=market, account=account, symbol=state.symbol)
    label = f"<b>Your account: {html.escape(account)}</b> · orders, fills and portfolio below are yours alone."
    chat = copilot_chat(market, account) if copilot else None
    main = trader_views(state, ticket, label, None if chat is None else copilot_panel(chat))
    # A phone lays the page out at its own width (not 980 px shrunk by 40 %): the viewport tag.
    template = pn.template.FastListTemplate(title=TITLE, header=[clock_badge(state)], main=[main], theme_toggle=False,
                                            accent="#1565c0", meta_viewport="width=device-width, initial-scale=1",
                                            main_layout=None, design=LocalFast)  # fmt: skip
    local_template(template)  # offline: fonts from our server, not Google's (vtrade.ui.resources)

    def tick() -> None:
        state.refresh()
        ticket.update_preview()  # the estimate follows the moving book

    def leave() -> None:
        # Its resting orders must not outlive an account nobody can return to; one the browser
        # gets back keeps them (they are its own).
        if cancel_on_leave:
            market.close_session(account)

    keep_fresh(tick, period_ms, on_leave=leave)
    template.account = account  # type: ignore[attr-defined]  # for tests and logs
    template.chat = chat  # type: ignore[attr-defined]
    return template


def copilot_chat(market: LiveMarket, account: str) -> ChatState:
    """The copilot's chat state for ``account`` on ``market`` (its conversation starts with the
    first question; the model client comes from the environment)."""
    from vtrade.runtime.copilot_service import CopilotSession

    # Every question, answer and proposal is audited on the market's log (its record_copilot).
    return ChatState(market, account, session=lambda: CopilotSession(market, account))
