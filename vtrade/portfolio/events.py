"""Portfolio events: what the portfolio worker publishes on the ``portfolio`` topic (keyed by account)."""

from __future__ import annotations

import msgspec

from vtrade.core.events import Event, register_event


def _portfolio_tag(name: str) -> str:
    return f"portfolio.{name}"


class PortfolioUpdate(Event, frozen=True, array_like=True, tag=_portfolio_tag):
    """An account's NAV view changed by more than the publish tolerance (float64 figures:
    the exact books are the account's ledger)."""

    account: str
    nav: float
    cash: float
    gross: float
    net: float
    day_pnl: float


register_event(PortfolioUpdate)


# ---------------------------------------------------------------------------- the account feed
# What a class market publishes on ``portfolio`` for consumers that follow students' accounts
# (the game worker): each booked fill with its receipt and order, snapshots of each account at
# fixed simulated times and at every session close, margin calls, and the session closes.
class Holding(msgspec.Struct, frozen=True, array_like=True):
    """One position in an :class:`AccountSnapshot`: ``weight`` is its signed market value over
    the account's NAV; ``kind`` is ``stock``, ``etf`` or ``crypto``."""

    symbol: str
    sector: str
    kind: str
    weight: float
    price: float


class FillBooked(Event, frozen=True, array_like=True, tag=_portfolio_tag):
    """A fill booked into an account, with its order's type and note and the fill's receipt
    (``quantity`` in units, ``price`` in the quote currency, ``side`` ``buy``/``sell``)."""

    account: str
    fill_id: str
    client_order_id: str
    symbol: str
    side: str
    quantity: float
    price: float
    liquidity: str
    slippage_bps: float
    order_type: str
    note: str


class AccountSnapshot(Event, frozen=True, array_like=True, tag=_portfolio_tag):
    """An account at ``ts``: NAV and cash, its holdings, and the figures a class grades on:
    ``beta`` to the benchmark over the samples so far (None with too few or no benchmark),
    ``benchmark_return`` since the class began, ``total_return`` since the account opened,
    ``max_drawdown`` (a fraction, ≥ 0) and whether a margin call came since the last snapshot.
    ``session`` counts the sessions closed before this one."""

    account: str
    session: int
    nav: float
    cash: float
    start_nav: float
    holdings: tuple[Holding, ...]
    beta: float | None
    benchmark_return: float | None
    total_return: float
    max_drawdown: float
    margin_call: bool


class MarginCalled(Event, frozen=True, array_like=True, tag=_portfolio_tag):
    """A margin account fell below maintenance (``reason`` is what the student reads)."""

    account: str
    reason: str


class SessionEnded(Event, frozen=True, array_like=True, tag=_portfolio_tag):
    """Trading session ``session`` (0-based) closed; every account's snapshot came just before."""

    session: int


register_event(FillBooked, AccountSnapshot, MarginCalled, SessionEnded)
