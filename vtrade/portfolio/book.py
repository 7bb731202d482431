"""Many accounts' portfolios, folded from execution and market events.

:class:`PortfolioBook` keeps two views of the same accounts, each for what it is good at:

- one exact :class:`~vtrade.portfolio.ledger.Ledger` per account (Decimal cash, FIFO lots,
  realized P&L, fees): the books of record, rebuildable from the log;
- one :class:`~vtrade.portfolio.nav.NavBook` over all accounts (float64): NAV, exposures and
  sector allocation kept current by deltas as prices move.

A fill goes to both; a price goes to the NAV view. Duplicates are no-ops (the ledger knows its
fill ids) and a fill for an account nobody opened is an :class:`UnknownAccountError` that
changes nothing. Pure and deterministic: no I/O, no wall clock.

>>> from vtrade.core.instruments import us_equity
>>> book = PortfolioBook([us_equity("SPY", sector="ETF")], prices={"SPY": 16765})
>>> book.open_account("ada", cash=10_000)
>>> round(float(book.frame().loc["ada", "nav"]), 2)
10000.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

import numpy as np
import pandas as pd

from vtrade.core.errors import VtradeError
from vtrade.core.events import Bar, Event, Quote, Side, Trade
from vtrade.core.instruments import Instrument
from vtrade.execution.events import OrderFilled
from vtrade.execution.tables import positions_frame
from vtrade.portfolio.ledger import Ledger
from vtrade.portfolio.nav import NavBook


class UnknownAccountError(VtradeError, LookupError):
    """An event names an account this book never opened."""


class PortfolioBook:
    """Ledgers and the delta NAV view for any number of accounts over ``instruments``.

    ``prices`` gives opening marks in ticks per symbol (instruments without one start at 0
    and are marked by the first price event). ``capacity`` is how many accounts the NAV view
    holds from the start; opening more grows it (amortised O(1) per account), so it only
    saves the occasional buffer doubling.
    """

    def __init__(
        self, instruments: Iterable[Instrument], *, prices: Mapping[str, int] | None = None, capacity: int = 1024
    ) -> None:
        self.instruments = {i.symbol: i for i in instruments}
        if not self.instruments:
            raise ValueError("a portfolio book needs at least one instrument")
        symbols = list(self.instruments)
        marks = prices or {}
        unknown = sorted(set(marks) - set(symbols))
        if unknown:
            raise ValueError(f"prices for unknown symbols: {unknown}")
        floats = [self.instruments[s].price_grid.to_float(marks[s]) if s in marks else 0.0 for s in symbols]
        sectors = [self.instruments[s].sector for s in symbols]
        self.nav = NavBook(symbols, sectors, floats, n_accounts=capacity)
        self._index = {s: i for i, s in enumerate(symbols)}
        self.ledgers: dict[str, Ledger] = {}
        self._row: dict[str, int] = {}

    # ------------------------------------------------------------------ accounts
    def open_account(self, account: str, *, cash: Decimal | int | str = 0) -> None:
        """Open ``account`` with ``cash`` (in the instruments' currency). Opening twice is an error."""
        if account in self.ledgers:
            raise ValueError(f"account {account!r} is already open")
        ledger = Ledger(account, self.instruments.values(), Decimal(str(cash)))
        row = len(self._row)
        if row >= self.nav.n_accounts:
            # One row at a time: the NavBook doubles its buffers itself, and rows nobody opened
            # would only lengthen the O(accounts) passes (publication, the rows kernel).
            self.nav.add_accounts(1)
        self.nav.transfer_cash([row], [float(ledger.cash)])
        self.ledgers[account] = ledger
        self._row[account] = row

    @property
    def accounts(self) -> list[str]:
        return list(self._row)

    # ------------------------------------------------------------------ events
    def apply(self, event: Event) -> bool:
        """Fold one event; True when it changed something (a new fill or a new price)."""
        if isinstance(event, OrderFilled):
            return self._fill(event)
        price = _price_of(event)
        if price is None or event.symbol not in self._index:  # type: ignore[attr-defined]
            return False
        inst = self.instruments[event.symbol]  # type: ignore[attr-defined]
        batch = self.nav.apply_prices([self._index[inst.symbol]], [inst.price_grid.to_float(price)], ts=event.ts)
        return batch.stale == 0

    def mark(self, prices: np.ndarray, ts: int) -> None:
        """Mark every instrument at once: ``prices`` (float units, NaN = no price now) in the
        order the instruments were given; the NAV view updates only the holders of what moved.

        >>> from vtrade.core.instruments import us_equity
        >>> book = PortfolioBook([us_equity("A"), us_equity("B")])
        >>> book.mark(np.array([10.0, np.nan]), ts=1)
        >>> book.nav.prices.tolist()
        [10.0, 0.0]
        """
        prices = np.asarray(prices, dtype=float)
        if prices.shape != (len(self._index),):
            raise ValueError(f"mark needs one price per instrument ({len(self._index)}), got shape {prices.shape}")
        ids = np.flatnonzero(np.isfinite(prices) & (prices > 0))
        if len(ids):
            self.nav.apply_prices(ids, prices[ids], ts=ts)

    def _fill(self, f: OrderFilled) -> bool:
        ledger = self.ledgers.get(f.account)
        if ledger is None:
            raise UnknownAccountError(f"fill {f.fill_id} is for account {f.account!r}, which is not open here")
        if ledger.apply(f) is None:
            return False  # delivered before: the ledger already has it
        inst = self.instruments[f.symbol]
        qty = inst.size_grid.to_float(f.quantity) * (1 if f.side is Side.BUY else -1)
        price = inst.price_grid.to_float(f.price)
        cash = -qty * price - float(f.fee)
        self.nav.apply_fills([self._row[f.account]], [self._index[f.symbol]], [qty], [cash], fill_prices=[price])
        return True

    # ------------------------------------------------------------------ views
    def frame(self) -> pd.DataFrame:
        """One row per account: NAV, cash, exposures, P&L, concentration (float views)."""
        rows = np.arange(len(self._row))
        df = self.nav.frame(rows)
        df.index = pd.Index(list(self._row), name="account")
        return df

    def navs(self, accounts: Iterable[str]) -> np.ndarray:
        """The NAVs of ``accounts`` (a cheap read: no exposures or concentration computed)."""
        return self.nav.nav[[self._account_row(a) for a in accounts]]

    def row(self, account: str) -> pd.Series:
        """One account's line of :meth:`frame` (without computing everyone's)."""
        s = self.nav.frame([self._account_row(account)]).iloc[0]
        s.name = account
        return s

    def stats(self, account: str) -> dict[str, float]:
        """:meth:`row` as plain numbers (without building a frame)."""
        return self.nav.stats(self._account_row(account))

    def positions(self, account: str) -> pd.DataFrame:
        """An account's open positions, largest first, with sector and weight: the public
        positions table (:data:`vtrade.execution.tables.POSITIONS`), exact lots from the ledger.

        >>> from vtrade.core.instruments import us_equity
        >>> book = PortfolioBook([us_equity("SPY", sector="ETF")], prices={"SPY": 16765})
        >>> book.open_account("ada", cash=10_000)
        >>> list(book.positions("ada").columns)[:4]
        ['account', 'symbol', 'sector', 'quantity']
        """
        floats = self.nav.positions(self._account_row(account))
        return positions_frame(account, floats, self.ledgers[account].positions)

    def sectors(self, account: str) -> pd.DataFrame:
        """An account's exposure by GICS sector."""
        return self.nav.sector_frame(self._account_row(account))

    def _account_row(self, account: str) -> int:
        if account not in self._row:
            raise UnknownAccountError(f"no account {account!r} (open: {', '.join(self._row) or 'none'})")
        return self._row[account]


def _price_of(event: Event) -> int | None:
    """The price an event marks its instrument at: a print, a bar's close, a quote's mid."""
    if isinstance(event, Trade):
        return event.price
    if isinstance(event, Bar):
        return event.close
    if isinstance(event, Quote) and event.bid_sz and event.ask_sz:
        return (event.bid_px + event.ask_px) // 2
    return None
