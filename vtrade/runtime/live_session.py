"""One account on a live market: the handle a notebook user holds (DESIGN.md §7).

:class:`LiveSession` is the imperative shell a notebook talks to. Its commands (``submit``,
``cancel``, ``preview``) go through :class:`~vtrade.runtime.live.LiveMarket` like the
dashboard's, so they meet the same validation and account rules; its reads are DataFrames.
Its view methods (``depth``, ``order_ticket``, ``portfolio_view``, ``watchlist``, ``chart``)
return live Panel views (:mod:`vtrade.ui.notebook`) that display inline in Jupyter and give
the same data back with ``.frame()``:

=======================  ====================================  =================================
view (displays live)     what ``view.frame(name)`` returns     the same as a plain DataFrame
=======================  ====================================  =================================
``depth(symbol)``        ``"depth"``                           ``depth_frame(symbol)``
``order_ticket()``       ``"preview"``, ``"orders"``,          ``preview_frame(preview(...))``,
                         ``"fills"``                           ``orders()``, ``fills()``
``portfolio_view()``     ``"positions"``, ``"summary"``,       ``positions()``, ``summary()``,
                         ``"sectors"``, ``"nav"``              ``sectors()``, ``nav()``
``watchlist()``          ``"quotes"``                          ``quotes()``
``chart(symbol)``        ``"prices"``                          ``prices(symbol)``
=======================  ====================================  =================================

>>> from vtrade.runtime.live import LiveConfig, LiveMarket
>>> s = LiveSession(LiveMarket(LiveConfig(symbols=("AAPL",), speed=0, bots=False, burn_in=20_000)), "ada")
>>> s.advance(2)
>>> s.submit("AAPL", "buy", 10).client_order_id
'ada-1'
>>> s.advance(1)
>>> s.orders().status.tolist(), s.positions().quantity.tolist()
(['filled'], [10.0])
>>> s.submit("AAPL", "buy", -5)
Traceback (most recent call last):
...
vtrade.execution.validation.OrderInputError: The quantity must be positive, got -5
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from vtrade.core.errors import VtradeError
from vtrade.core.events import Side
from vtrade.core.numbers import Number
from vtrade.execution.accounts import AccountKind
from vtrade.execution.orders import OrderType, TimeInForce
from vtrade.runtime.live import CommandOutcome, LiveMarket, Preview, UnknownSymbolError, unknown_symbol

if TYPE_CHECKING:
    from vtrade.ui.notebook import ChartView, DepthView, LiveView, PortfolioView, TicketView, WatchlistView

V = TypeVar("V", bound="LiveView")

__all__ = ["LiveSession", "SessionClosedError", "UnknownSymbolError", "check_symbol", "preview_frame",
           "summary_frame"]  # fmt: skip

_PREVIEW_COLUMNS = [f.name for f in dataclasses.fields(Preview)]


class SessionClosedError(VtradeError, RuntimeError):
    """An order sent through a session after :meth:`LiveSession.close`."""


def check_symbol(symbols: list[str], symbol: object) -> str:
    """``symbol`` as the market spells it (any case, surrounding blanks ignored), or
    :class:`UnknownSymbolError` naming close matches.

    >>> check_symbol(["AAPL", "XOM"], " aapl ")
    'AAPL'
    >>> check_symbol(["AAPL", "XOM"], "APPL")
    Traceback (most recent call last):
    ...
    vtrade.runtime.live.UnknownSymbolError: Unknown symbol 'APPL'; did you mean AAPL? (2 symbols: ...)
    """
    key = symbol.strip().upper() if isinstance(symbol, str) else symbol
    if key in symbols:
        return str(key)
    raise unknown_symbol(symbol, symbols)


def preview_frame(preview: Preview | None) -> pd.DataFrame:
    """An order preview as a one-row DataFrame (no row when there is none, e.g. bad input).

    >>> p = Preview("AAPL", "buy", 10, 10, 100.02, 100.0, 2.0, 1000.2, 1.0, 5000, 3999.8, False, "fills now")
    >>> preview_frame(p)[["symbol", "avg_price", "slippage_bps"]]
      symbol  avg_price  slippage_bps
    0   AAPL     100.02           2.0
    >>> len(preview_frame(None))
    0
    """
    rows = [dataclasses.asdict(preview)] if preview is not None else []
    return pd.DataFrame(rows, columns=_PREVIEW_COLUMNS)


def summary_frame(summary: dict[str, float], account: str) -> pd.DataFrame:
    """An account's portfolio summary (NAV, cash, P&L, buying power, ...) as a one-row DataFrame.

    >>> summary_frame({"nav": 100.0, "cash": 100.0}, "ada")
               nav   cash
    account
    ada      100.0  100.0
    """
    return pd.DataFrame([summary] if summary else [], index=pd.Index([account] if summary else [], name="account"))


class LiveSession:
    """One account (``account``) on a live market (``market``): orders, DataFrames, live views.

    Opens ``account`` with ``cash`` (default: the market's ``default_cash``) as an
    ``account_kind`` ``"cash"`` or ``"margin"`` account, or uses an account already open when
    ``attach=True``. A session that ``owns_market`` (as :func:`vtrade.live` makes it) stops the
    market on :meth:`close`; otherwise the market is shared and keeps running.

    Prices and sizes are in units ($, shares); everything the views show is also a DataFrame
    (see the module notes). Only this account's orders, fills and positions are visible; they
    are the public tables of :mod:`vtrade.execution.tables` (``vt.schema``), as in ``vt.replay``.

    >>> from vtrade.runtime.live import LiveConfig
    >>> m = LiveMarket(LiveConfig(symbols=("XOM",), speed=0, bots=False, burn_in=20_000))
    >>> ada, bob = LiveSession(m, "ada", cash=50_000), LiveSession(m, "bob")
    >>> ada.summary().cash.tolist(), bob.summary().cash.tolist()
    ([50000.0], [100000.0])
    """

    def __init__(
        self,
        market: LiveMarket,
        account: str = "you",
        *,
        cash: Number | None = None,
        account_kind: AccountKind | str = "cash",
        attach: bool = False,
        owns_market: bool = False,
    ) -> None:
        if attach:
            market.version(account)  # UnknownAccountError unless a usable account of that name is open
        else:
            market.open_account(account, cash, account_kind=account_kind)
        self.market = market
        self.account = account.strip()  # as the market opened it
        self.owns_market = owns_market
        self.closed = False
        # Views are tracked weakly: a view nobody displays or holds goes away; close() stops the rest.
        self._views: weakref.WeakSet[LiveView] = weakref.WeakSet()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("running" if self.market.running else "paused")
        return f"<LiveSession account={self.account!r} on {len(self.market.symbols())} symbols ({state})>"

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ commands
    def submit(
        self,
        symbol: str,
        side: str | Side,
        quantity: Number,
        order_type: str | OrderType = "market",
        limit_price: Number | None = None,
        tif: str | TimeInForce = "day",
        *,
        stop_price: Number | None = None,
        post_only: bool = False,
    ) -> CommandOutcome:
        """Send an order (see :meth:`LiveMarket.submit`): ``ok`` and its ``client_order_id``, or
        refused by the account rules with ``code`` and ``reason`` (kept in :meth:`orders`).

        Malformed input (zero, negative, NaN, off-tick, unknown symbol, ...) raises
        :class:`~vtrade.execution.validation.OrderInputError` naming the ``field``: nothing is sent.
        """
        if self.closed:
            raise SessionClosedError(f"the session of {self.account!r} is closed: it sends no more orders")
        return self.market.submit(self.account, symbol, side, quantity, order_type, limit_price, tif,
                                  stop_price=stop_price, post_only=post_only)  # fmt: skip

    def cancel(self, client_order_id: str) -> CommandOutcome:
        """Ask the exchange to cancel one of this account's open orders (refused, with the reason,
        if it is not open or not this account's)."""
        return self.market.cancel(self.account, client_order_id)

    def preview(
        self,
        symbol: str,
        side: str | Side,
        quantity: Number,
        order_type: str | OrderType = "market",
        limit_price: Number | None = None,
    ) -> Preview:
        """The estimated fill, slippage, fee and buying power after an order, against the book now
        (nothing is sent; ``preview_frame(...)`` makes it a one-row DataFrame)."""
        return self.market.preview(self.account, symbol, side, quantity, order_type, limit_price)

    def advance(self, slices: int = 1) -> None:
        """Run ``slices`` slices of the market now (one simulated ``step`` each, default 1 s)."""
        self.market.advance(slices)

    def close(self) -> int:
        """Stop this session's views, cancel its open orders (a durable market keeps them for the
        session's return), and stop the market if the session owns it; returns how many cancels
        were sent. Reads keep working; orders are refused."""
        for view in list(self._views):
            view.close()
        # A durable market keeps the account's orders: the session comes back to them.
        sent = 0 if self.closed else self.market.close_session(self.account, cancel=not self.market.durable)
        self.closed = True
        if self.owns_market:
            self.market.stop()
            if sent:
                self.market.advance(1)  # the cancels are in flight: let them reach the exchange
            self.market.close()
        return sent

    # ------------------------------------------------------------------ DataFrames
    def symbols(self) -> list[str]:
        """The symbols this market trades."""
        return self.market.symbols()

    def quotes(self) -> pd.DataFrame:
        """The watchlist: sector, bid/ask and sizes, last, mid, change and spread of every symbol."""
        return self.market.quotes()

    def depth_frame(self, symbol: str, levels: int = 10) -> pd.DataFrame:
        """The top ``levels`` of ``symbol``'s book per side, best first: ``side, price, size, mine``
        (``mine``: this account's resting shares at that price)."""
        return self.market.depth(check_symbol(self.symbols(), symbol), levels, account=self.account)

    def prices(self, symbol: str, since: pd.Timestamp | None = None) -> pd.DataFrame:
        """``symbol``'s price samples (one per slice): ``ts, bid, ask, mid, last``."""
        return self.market.prices(check_symbol(self.symbols(), symbol), since)

    def orders(self) -> pd.DataFrame:
        """This account's orders (``vt.schema.ORDERS``), oldest first: status, filled, leaves,
        average price, fees, reason."""
        return self.market.orders(self.account)

    def fills(self) -> pd.DataFrame:
        """This account's fills (``vt.schema.FILLS``), oldest first, each with its receipt
        (arrival mid, slippage, fee, liquidity, queue ahead, model)."""
        return self.market.fills(self.account)

    def positions(self) -> pd.DataFrame:
        """Open positions (``vt.schema.POSITIONS``), largest first: quantity, sector, value,
        cost basis, unrealized P&L, weight."""
        return self.market.portfolio(self.account)["positions"]

    def sectors(self) -> pd.DataFrame:
        """Exposure by GICS sector."""
        return self.market.portfolio(self.account)["sectors"]

    def summary(self) -> pd.DataFrame:
        """NAV, cash, P&L, fees and buying power: one row."""
        return summary_frame(self.market.portfolio(self.account)["summary"], self.account)

    def nav(self) -> pd.DataFrame:
        """NAV samples: ``ts, nav``."""
        return self.market.nav_history(self.account)

    def leaderboard(self) -> pd.DataFrame:
        """Every person's account on this market ranked by NAV (only NAV and return are shown)."""
        return self.market.leaderboard()

    def clock(self) -> dict[str, Any]:
        """Simulated time, speed, realism and queue model."""
        return self.market.clock()

    # ------------------------------------------------------------------ live views
    # Panel is an optional dependency (the ``dashboards`` extra) and the ui layer sits above this
    # one: the views are imported when one is asked for, so the DataFrame API works without Panel.
    def depth(self, symbol: str, levels: int = 10, *, period_ms: int = 1000) -> DepthView:
        """A live depth ladder of ``symbol`` (this account's resting orders marked);
        ``.frame()`` is :meth:`depth_frame`. Refreshed every ``period_ms`` while displayed."""
        from vtrade.ui.notebook import DepthView

        return self._track(DepthView(self.market, self.account, symbol, levels=levels, period_ms=period_ms))

    def order_ticket(self, symbol: str | None = None, *, period_ms: int = 1000) -> TicketView:
        """A live order ticket (inputs, field errors, preview, Confirm) next to this account's
        orders and fills; ``.frame("preview" | "orders" | "fills")``."""
        from vtrade.ui.notebook import TicketView

        return self._track(TicketView(self.market, self.account, symbol, period_ms=period_ms))

    def portfolio_view(self, *, period_ms: int = 1000) -> PortfolioView:
        """Live NAV, P&L, NAV curve, positions and sector allocation;
        ``.frame("positions" | "summary" | "sectors" | "nav")``."""
        from vtrade.ui.notebook import PortfolioView

        return self._track(PortfolioView(self.market, self.account, period_ms=period_ms))

    def watchlist(self, *, period_ms: int = 1000) -> WatchlistView:
        """Live quotes of every symbol; ``.frame()`` is :meth:`quotes`."""
        from vtrade.ui.notebook import WatchlistView

        return self._track(WatchlistView(self.market, self.account, period_ms=period_ms))

    def chart(self, symbol: str, *, period_ms: int = 1000) -> ChartView:
        """A live mid/bid/ask chart of ``symbol``; ``.frame()`` is :meth:`prices`."""
        from vtrade.ui.notebook import ChartView

        return self._track(ChartView(self.market, self.account, symbol, period_ms=period_ms))

    def _track(self, view: V) -> V:
        if self.closed:
            view.close()  # a closed session's views show where things stood, and stay still
        self._views.add(view)
        return view
