"""A notebook session: many accounts' portfolios and their history, as DataFrames and SQL.

>>> import vtrade as vt
>>> from vtrade.core.instruments import us_equity
>>> s = vt.Session([us_equity("SPY", sector="ETF")], prices={"SPY": 16765})
>>> s.open_account("ada", cash=20_000)
>>> s.portfolios()[["nav", "cash"]]
             nav     cash
account
ada      20000.0  20000.0
>>> int(s.sql("select count(*) as n from fills").n.iloc[0])
0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from vtrade.core.events import Event
from vtrade.core.instruments import Instrument
from vtrade.core.numbers import Number
from vtrade.execution.accounts import AccountKind
from vtrade.execution.events import OrderFilled
from vtrade.execution.knobs import cash_amount
from vtrade.execution.queue import QueueModel
from vtrade.execution.tables import fills_frame
from vtrade.portfolio.book import PortfolioBook, UnknownAccountError
from vtrade.portfolio.ledger import Ledger
from vtrade.runtime.live import LiveConfig, LiveMarket
from vtrade.runtime.live_session import LiveSession
from vtrade.runtime.portfolio_worker import NavSampler, nav_rows
from vtrade.runtime.store import Store

BENCHMARKS = ("SPY", "XLB", "XLE", "XLF", "XLI", "XLK", "XLP", "XLU", "XLV", "XLY")


class Session:
    """Accounts over ``instruments`` (opening marks ``prices`` in ticks), history in a DuckDB ``store``."""

    def __init__(
        self,
        instruments: Iterable[Instrument],
        *,
        prices: Mapping[str, int] | None = None,
        capacity: int = 1024,
        store: str | Path | Store = ":memory:",
        sample_every: str = "1min",
    ) -> None:
        self.book = PortfolioBook(instruments, prices=prices, capacity=capacity)
        self.store = store if isinstance(store, Store) else Store(store)
        self.sampler = NavSampler(self.book, self.store, sample_every)

    @classmethod
    def universe(cls, day: str = "2017-11-10", **kwargs: Any) -> Session:
        """The 500-stock universe with GICS sectors, marked at ``day``'s closes, with SPY and
        the sector SPDRs stored as benchmark series (``select * from benchmarks``)."""
        from vtrade.market.feeds.daily import load_universe

        u = load_universe(end=day)
        last = u.frame[u.frame.date == u.frame.date.max()]
        insts = list(u.instruments.values())
        prices = {r.ticker: u.instruments[r.ticker].price(repr(round(r.close, 4))) for r in last.itertuples()}
        session = cls(insts, prices=prices, **kwargs)
        bench = u.frame[u.frame.ticker.isin(BENCHMARKS)]
        session.store.load_benchmarks(pd.DataFrame({"date": bench.date.dt.date, "symbol": bench.ticker,
                                                    "close": bench.close}))  # fmt: skip
        return session

    @classmethod
    def demo(
        cls,
        config: LiveConfig | None = None,
        *,
        account: str = "you",
        cash: Number | None = None,
        account_kind: AccountKind | str = "cash",
        start: bool = True,
        speed: float | None = None,
    ) -> LiveSession:
        """The same as :func:`vtrade.live` (kept for notebooks written before it)."""
        return live(config, account=account, cash=cash, account_kind=account_kind, start=start, speed=speed)

    def open_account(self, account: str, *, cash: Number = 100_000) -> None:
        """Open an account with ``cash`` (any shape :func:`vtrade.execution.knobs.cash_amount` takes)."""
        self.book.open_account(account, cash=cash_amount(cash))

    def record(self, events: Iterable[Event]) -> int:
        """Fold fills and market events into the portfolios (in time order); returns how many
        changed something. Fills go to the ``fills`` table; NAV is sampled on the session's grid."""
        changed = 0
        new_fills: list[OrderFilled] = []
        for e in events:
            self.sampler.advance(e.ts)
            if self.book.apply(e):
                changed += 1
                if isinstance(e, OrderFilled):
                    new_fills.append(e)
        if new_fills:
            self.store.append_fills(fills_frame(new_fills, self.book.instruments))
        return changed

    def sample_nav(self, ts: int | None = None) -> int:
        """Write every account's NAV now (or at ``ts``) into ``nav_history``."""
        return self.store.append_nav(nav_rows(self.book, self.sampler.clock if ts is None else ts))

    # ------------------------------------------------------------------ views
    def portfolios(self) -> pd.DataFrame:
        """One row per account: NAV, cash, exposures, unrealized and day P&L, HHI."""
        return self.book.frame()

    def fills(self, account: str | None = None) -> pd.DataFrame:
        """The fills recorded (``account``'s, or everyone's) from the store, oldest first: the
        public fills table (``vt.schema.FILLS``), as ``vt.replay(...).fills`` and live sessions give it."""
        return self.store.fills(account)

    def positions(self, account: str) -> pd.DataFrame:
        """An account's positions (``vt.schema.POSITIONS``) with sector, value, cost basis,
        unrealized P&L and weight, largest first."""
        return self.book.positions(account)

    def portfolio(self, account: str) -> pd.DataFrame:
        """The same as :meth:`positions`."""
        return self.positions(account)

    def sectors(self, account: str) -> pd.DataFrame:
        """An account's exposure by GICS sector."""
        return self.book.sectors(account)

    def ledger(self, account: str) -> Ledger:
        """The exact ledger of ``account`` (Decimal cash, FIFO lots, realized P&L)."""
        if account not in self.book.ledgers:
            raise UnknownAccountError(f"no account {account!r} (open: {', '.join(self.book.accounts) or 'none'})")
        return self.book.ledgers[account]

    def sql(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        """SQL over ``nav_history``, ``fills`` and ``benchmarks``."""
        return self.store.sql(query, params)


def live(
    config: LiveConfig | None = None,
    *,
    account: str = "you",
    cash: Number | None = None,
    account_kind: AccountKind | str = "cash",
    queue: str | QueueModel | None = None,
    start: bool = True,
    speed: float | None = None,
    data_dir: str | Path | None = None,
) -> LiveSession:
    """Open a live session: an account (``account``, with ``cash``, a ``"cash"`` or ``"margin"``
    ``account_kind``) on a new live simulated market, for a notebook. The demo market
    (:meth:`LiveConfig.demo`) unless ``config``; ``speed`` simulated seconds per wall second and
    ``queue`` (a name or a :class:`~vtrade.execution.queue.QueueModel`) override the config's.
    It runs in the background unless ``start=False`` (then ``advance(n)`` moves it); ``close()``
    stops it. With ``data_dir`` the market is durable: a later ``vt.live(..., data_dir=same)``
    brings back the account, its orders, fills and NAV history (``account`` must be the same).
    See :class:`~vtrade.runtime.live_session.LiveSession`.

    >>> import vtrade as vt
    >>> from vtrade.runtime.live import LiveConfig
    >>> s = vt.live(LiveConfig(symbols=("AAPL",), speed=0, bots=False, burn_in=20_000), start=False)
    >>> s.advance(1)
    >>> s.submit("AAPL", "buy", 10).ok
    True
    >>> s.advance(1)
    >>> s.orders().status.tolist(), s.fills().side.tolist()
    (['filled'], ['buy'])
    >>> s.close(), s.market.running
    (0, False)
    """
    overrides: dict[str, Any] = {k: v for k, v in (("speed", speed), ("queue", queue)) if v is not None}
    config = LiveConfig.demo(**overrides) if config is None else dataclasses.replace(config, **overrides)
    market = LiveMarket(config, data_dir=data_dir)
    back = market.has_account(account.strip()) if isinstance(account, str) else False  # resumed from data_dir
    session = LiveSession(market, account, cash=cash, account_kind=account_kind, owns_market=True, attach=back)
    if start:
        session.market.start()
    return session
