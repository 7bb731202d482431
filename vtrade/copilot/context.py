"""What the copilot's tools may read: one person's account and their market, as plain data.

:class:`CopilotContext` is the only door the tools have. It reads; nothing on it enters, cancels
or signs anything, so no tool can trade whatever a model asks. The runtime implements it over a
live market (:class:`vtrade.runtime.copilot_service.MarketContext`); tests can implement it over
anything. Every value is a frozen dataclass of plain numbers and strings.

Text written by other people or taken from outside — instrument names, headlines (a teacher's
announcements included), order notes, mission titles — is marked by its field name ending in
``_text``: the tools hand such fields to the model as quoted data
(:func:`vtrade.copilot.tools.untrusted`), never as instructions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from vtrade.core.instruments import Instrument

__all__ = [
    "CopilotContext",
    "DepthLevel",
    "FillView",
    "Headline",
    "MissionView",
    "MissionsView",
    "PortfolioView",
    "PositionView",
    "QuoteView",
    "RiskView",
]


@dataclass(frozen=True, slots=True)
class QuoteView:
    """One symbol's quote now (prices in its currency; None where the book is empty).
    ``volume`` is its average daily volume in units where the market knows it, else None."""

    symbol: str
    name_text: str
    sector: str
    bid: float | None
    ask: float | None
    mid: float | None
    last: float | None
    change_pct: float | None
    spread_bps: float | None
    halted: bool
    volume: float | None = None


@dataclass(frozen=True, slots=True)
class DepthLevel:
    """One price level of a book: ``side`` 'bid' or 'ask'; ``mine`` the person's own resting size."""

    side: str
    price: float
    size: float
    mine: float


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    sector: str
    quantity: float
    price: float
    value: float
    unrealized_pnl: float
    weight: float


@dataclass(frozen=True, slots=True)
class PortfolioView:
    """The account now: NAV, cash, P&L, buying power and its open positions."""

    nav: float
    cash: float
    pnl: float
    buying_power: float
    fees: float
    positions: tuple[PositionView, ...]


@dataclass(frozen=True, slots=True)
class RiskView:
    """Risk of the account's NAV path. ``period`` is the spacing of the NAV samples the
    per-period figures use (e.g. ``"5 s"``); ``beta`` is against ``benchmark`` (None when the
    market has none or there are too few samples; ``note`` says why)."""

    period: str
    periods: int
    total_return: float | None
    volatility: float | None
    max_drawdown: float | None
    sharpe: float | None
    beta: float | None
    benchmark: str | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class FillView:
    """One fill with its receipt, and the order it belongs to (type, limit, the trader's note)."""

    fill_id: str
    client_order_id: str
    ts: str
    symbol: str
    side: str
    price: float
    quantity: float
    liquidity: str
    fee: float
    arrival_mid: float | None
    slippage_bps: float | None
    queue_ahead: float | None
    model: str
    order_type: str
    limit_price: float | None
    note_text: str


@dataclass(frozen=True, slots=True)
class Headline:
    """A headline: ``source`` 'teacher' (an announcement) or 'market' (a market event)."""

    ts: str
    source: str
    text: str


@dataclass(frozen=True, slots=True)
class MissionView:
    mission: str
    title_text: str
    summary_text: str
    status: str
    xp: int
    due: str | None


@dataclass(frozen=True, slots=True)
class MissionsView:
    """The person's missions in their class, with their XP, level and badges."""

    class_name_text: str
    xp: int
    level: int
    badges: tuple[str, ...]
    missions: tuple[MissionView, ...]


class CopilotContext(Protocol):
    """One person's reads (see the module notes). Unknown symbols raise ``KeyError``."""

    @property
    def account(self) -> str: ...

    def instruments(self) -> Mapping[str, Instrument]: ...

    def quotes(self, symbols: Sequence[str] | None = None) -> list[QuoteView]: ...

    def depth(self, symbol: str, levels: int) -> list[DepthLevel]: ...

    def portfolio(self) -> PortfolioView: ...

    def risk(self) -> RiskView: ...

    def fills(self) -> list[FillView]: ...

    def headlines(self) -> list[Headline]: ...

    def missions(self) -> MissionsView | None:
        """None when the account is not in a class (no missions)."""
        ...
