"""Live views for notebooks: the trader dashboard's components, inline, for one account.

Each view is a :class:`panel.viewable.Viewer` built from the components of
:mod:`vtrade.ui.trader` (nothing is rendered twice) over a :class:`~vtrade.ui.trader.TraderState`
of one account. Displayed in Jupyter, it loads Panel's notebook extension if needed, renders
inline, and refreshes itself with a periodic callback (every ``period_ms``) until
:meth:`LiveView.stop` or :meth:`LiveView.close` (which :meth:`LiveSession.close
<vtrade.runtime.live_session.LiveSession.close>` calls). :meth:`LiveView.frame` returns what the
view shows as a DataFrame. Views hold no rules: orders typed in the ticket go to the market,
which validates them (DESIGN.md §2).

Usually made by a :class:`~vtrade.runtime.live_session.LiveSession` (``s.depth("SPY")``,
``s.order_ticket()``, ``s.portfolio_view()``, ``s.watchlist()``, ``s.chart("SPY")``).

>>> from vtrade.runtime.live import LiveConfig, LiveMarket
>>> m = LiveMarket(LiveConfig(symbols=("AAPL",), speed=0, bots=False, burn_in=20_000))
>>> m.open_account("ada")
>>> view = DepthView(m, "ada", "AAPL", levels=3)
>>> view.frame().equals(m.depth("AAPL", 3, account="ada"))
True
>>> type(view.__panel__().get_root()).__name__      # a Bokeh model: what Jupyter displays
'Column'
>>> view.close()
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Callable
from typing import Any, ClassVar

import pandas as pd
import panel as pn

from vtrade.runtime.live import LiveMarket
from vtrade.runtime.live_session import check_symbol, preview_frame, summary_frame
from vtrade.ui.resources import inline_notebook_resources
from vtrade.ui.trader import (
    TicketState,
    TraderState,
    blotter,
    clock_badge,
    depth_ladder,
    link_focus,
    order_ticket,
    portfolio_panel,
    price_chart,
    watchlist,
)

__all__ = ["ChartView", "DepthView", "LiveView", "PortfolioView", "TicketView", "WatchlistView", "load_extension"]

MIN_PERIOD_MS = 100
# The (market, account) pairs whose views have loaded the extension: weak, so a market that is
# gone (a notebook re-run makes a new one) does not count.
_LOADED: weakref.WeakKeyDictionary[LiveMarket, set[str]] = weakref.WeakKeyDictionary()


def load_extension(market: LiveMarket | None = None, account: str = "") -> None:
    """Load Panel's notebook extension (Panel's and Bokeh's JavaScript, which the views' HTML
    tables and plots use), so a view displays without a ``pn.extension()`` cell.

    Once per session (``market`` and ``account``), not once per kernel: a page reloaded in the
    browser has lost the JavaScript, and re-running the notebook (a new session) brings it back,
    as re-running a ``pn.extension()`` cell would. Outside Jupyter it only registers the models.

    The JavaScript is embedded in the notebook, not loaded from a CDN: the views (and a saved
    notebook) work offline (:func:`vtrade.ui.resources.inline_notebook_resources`).

    >>> load_extension()
    """
    inline_notebook_resources()
    if market is None:
        pn.extension(inline=True)
        return
    loaded = _LOADED.setdefault(market, set())
    if account not in loaded:
        pn.extension(inline=True)
        loaded.add(account)


class LiveView(pn.viewable.Viewer):
    """A live view of one account on a :class:`LiveMarket`; subclasses name a ``component`` and
    its ``frames`` (or build their own layout, as :class:`TicketView` does).

    ``frames`` names the DataFrames the view shows (the first is the default of :meth:`frame`);
    ``state`` is the :class:`TraderState` its components are bound to.
    """

    frames: ClassVar[tuple[str, ...]] = ()
    # The dashboard component the view shows under a clock badge (``component(state)``), laid out so.
    # (A staticmethod: a plain Callable class attribute would be bound to the view as a method.)
    component: ClassVar[staticmethod[[TraderState], pn.viewable.Viewable]]
    layout: ClassVar[dict[str, Any]] = {"sizing_mode": "stretch_width"}

    def __init__(
        self, market: LiveMarket, account: str, symbol: str | None = None, *, levels: int = 10,
        period_ms: int = 1000,
    ) -> None:  # fmt: skip
        if not (isinstance(period_ms, int | float) and math.isfinite(period_ms) and period_ms >= MIN_PERIOD_MS):
            raise ValueError(f"period_ms must be at least {MIN_PERIOD_MS} (ms between refreshes), got {period_ms!r}")
        if symbol is not None:
            symbol = check_symbol(market.symbols(), symbol)
        super().__init__()
        self.market = market
        self.account = account
        self.period_ms = int(period_ms)
        self.state = TraderState(market=market, account=account, symbol=symbol, levels=levels)
        self.closed = False
        self._layout: pn.viewable.Viewable | None = None
        self._callback: Any = None
        self.refresh()

    def __repr__(self) -> str:
        live = "closed" if self.closed else ("live" if self.running else "not displayed")
        return f"<{type(self).__name__} of {self.account!r} ({live}); .frame(): {', '.join(self.frames)}>"

    # ------------------------------------------------------------------ data
    def refresh(self) -> None:
        """Read what the view shows from the market now (the periodic callback calls this)."""
        self.state.refresh()

    def frame(self, name: str | None = None, *, refresh: bool = True) -> pd.DataFrame:
        """The DataFrame the view shows as ``name`` (default: the first of ``frames``), read from
        the market now (the displayed view updates with it) unless ``refresh=False``."""
        key = self.frames[0] if name is None else name
        if key not in self.frames:
            raise ValueError(f"{type(self).__name__} shows {', '.join(map(repr, self.frames))}, not {name!r}")
        if refresh:
            self.refresh()
        return self._frame(key).copy()

    to_frame = frame

    def _frame(self, name: str) -> pd.DataFrame:
        s = self.state
        if name == "summary":
            return summary_frame(s.summary, self.account)
        if name in ("nav", "prices"):  # what the chart holds: its last CHART_POINTS samples
            return s.nav_frame() if name == "nav" else s.price_frame()
        return getattr(s, name)

    # ------------------------------------------------------------------ display
    def _build(self) -> pn.viewable.Viewable:
        return pn.Column(clock_badge(self.state), self.component(self.state), **self.layout)

    def __panel__(self) -> pn.viewable.Viewable:
        # Displaying in Jupyter, placing in a layout and serving all come here first.
        load_extension(self.market, self.account)
        if self._layout is None:
            self._layout = self._build()
        self.start()
        return self._layout

    @property
    def running(self) -> bool:
        """Whether the periodic refresh is scheduled."""
        return self._callback is not None and self._callback.running

    def start(self) -> None:
        """Refresh every ``period_ms`` (done when the view is displayed; not after :meth:`close`)."""
        if self.closed or self.running:
            return
        doc = pn.state._curdoc.get()  # the document Panel made current in this context, if any
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None and (doc is None or doc.session_context is None):
            # A notebook's view (the kernel's loop runs here): refresh on this loop. Panel's
            # periodic callback would attach to whatever document or server thread is current
            # process-wide, which is another thread's server if one runs in this process.
            self._callback = _LoopRepeat(self.refresh, self.period_ms, loop)
        else:
            self._callback = pn.state.add_periodic_callback(self.refresh, period=self.period_ms)

    def stop(self) -> None:
        """Stop refreshing (the view keeps showing what it last read; displaying it resumes)."""
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    def close(self) -> None:
        """Stop refreshing for good."""
        self.stop()
        self.closed = True


class DepthView(LiveView):
    """The depth ladder of ``symbol`` (top ``levels`` per side, this account's orders marked ◆).

    ``frame()``: ``side, price, size, mine``, as :meth:`LiveMarket.depth` for this account.
    """

    frames = ("depth",)

    component = staticmethod(depth_ladder)
    layout: ClassVar[dict[str, Any]] = {"width": 460}


class ChartView(LiveView):
    """A streaming mid/bid/ask chart of ``symbol``; ``frame()``: the samples shown (``ts, mid,
    bid, ask``; the last 2,000, as :meth:`LiveMarket.prices` until then)."""

    frames = ("prices",)

    component = staticmethod(price_chart)


class WatchlistView(LiveView):
    """Quotes of every symbol; ``frame()``: the watchlist (:meth:`LiveMarket.quotes`)."""

    frames = ("quotes",)

    component = staticmethod(watchlist)


class PortfolioView(LiveView):
    """NAV and P&L, the NAV curve, positions and the sector allocation.

    ``frame("positions" | "summary" | "sectors" | "nav")``; ``summary`` is one row, ``nav`` the
    curve's samples (the last 2,000).
    """

    frames = ("positions", "summary", "sectors", "nav")

    component = staticmethod(portfolio_panel)


class TicketView(LiveView):
    """The order ticket (``ticket``: a :class:`TicketState`, its inputs as typed) next to the blotter.

    ``frame("preview")`` is the ticket's estimate as one row (none while an input is invalid:
    the reason is in ``ticket.errors``); ``frame("orders" | "fills")`` the blotter's tables.
    """

    frames = ("preview", "orders", "fills")

    def __init__(self, market: LiveMarket, account: str, symbol: str | None = None, **kwargs: Any) -> None:
        symbol = check_symbol(market.symbols(), symbol) if symbol is not None else None
        # Made first: the base class's first refresh previews the ticket too.
        self.ticket = TicketState(market=market, account=account, symbol=symbol)
        super().__init__(market, account, symbol, **kwargs)
        link_focus(self.state, self.ticket)  # one focus, as on the dashboard
        # An order sent from the ticket shows in the blotter now, not at the next tick.
        self.ticket.param.watch(lambda event: self.state.refresh(), "result")

    def refresh(self) -> None:
        self.state.refresh()
        self.ticket.update_preview()  # the estimate follows the moving book

    def _frame(self, name: str) -> pd.DataFrame:
        return preview_frame(self.ticket.preview) if name == "preview" else super()._frame(name)

    def _build(self) -> pn.viewable.Viewable:
        return pn.Row(order_ticket(self.ticket), blotter(self.state), sizing_mode="stretch_width")


class _LoopRepeat:
    """Call ``fn`` every ``period_ms`` on ``loop`` until :meth:`stop` (the shape of Panel's
    periodic callback that the view uses: ``running`` and ``stop()``)."""

    def __init__(self, fn: Callable[[], object], period_ms: float, loop: asyncio.AbstractEventLoop) -> None:
        self.running = True
        self._task = loop.create_task(self._repeat(fn, period_ms / 1000))

    async def _repeat(self, fn: Callable[[], object], period_s: float) -> None:
        while self.running:
            await asyncio.sleep(period_s)
            if self.running:
                fn()

    def stop(self) -> None:
        self.running = False
        self._task.cancel()
