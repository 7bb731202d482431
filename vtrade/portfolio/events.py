"""Portfolio events: what the portfolio worker publishes on the ``portfolio`` topic (keyed by account)."""

from __future__ import annotations

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
