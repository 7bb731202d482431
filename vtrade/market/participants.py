"""Simulated market participants: ordinary strategy functions of a small context, :class:`Desk`.

Each is a function ``f(ctx)`` that looks at quotes and its own account and sends orders,
like the strategies of :mod:`vtrade.strategies`. The live market runs them (the market maker
and noise trader inside its synthetic and capture venues, the three simulated class members on
the universe) and so does :func:`vtrade.replay`, whose strategy context is a :class:`Desk` of
one symbol::

    vt.replay(path, strategy=participants.noise_trader, cash=100_000, account_kind="margin")

Pure domain code (DESIGN.md §2): no I/O, no clock, no global state. A participant's per-run
state lives in its account (what it holds and has working); its randomness comes from
``ctx.rng(symbol)``, a NumPy Generator seeded from (session seed, account, symbol) (§4), so a
symbol's draws do not depend on which other symbols trade. Prices are integer ticks and sizes
integer lots.

- :func:`market_maker`: quotes both sides at the touch (post-only, 100-300 lots), leaning
  out of one side when its inventory passes 2,000 lots;
- :func:`noise_trader`: now and then a random market order of 100-500 lots in one symbol,
  trading back toward flat past 3,000 lots;
- :func:`index_investor`: buys the index (``SPY``, else its first symbol) with 95 % of its
  capital once, then holds;
- :func:`momentum` / :func:`contrarian`: buy the three top gainers / losers of the day with
  10 % of capital each (at most eight names), exit a name that turns red / bounces 0.5 %.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Protocol

import numpy as np

from vtrade.core.events import Side
from vtrade.core.instruments import Instrument
from vtrade.execution.orders import TimeInForce

__all__ = [
    "Desk",
    "WorkingOrder",
    "contrarian",
    "index_investor",
    "market_maker",
    "momentum",
    "noise_trader",
]

INDEX = "SPY"


class WorkingOrder(Protocol):
    """What a participant sees of one of its working orders."""

    @property
    def client_order_id(self) -> str: ...

    @property
    def symbol(self) -> str: ...

    @property
    def side(self) -> Side: ...

    @property
    def limit_price(self) -> int | None: ...


class Desk(Protocol):
    """What a participant sees and does: one account over one or more symbols.

    ``quote`` is the best bid and ask in ticks (None without a two-sided market); ``change``
    the fractional move of the mid since the reference (the previous close in the live
    market; in a replay, the first mid the strategy saw); ``holding`` signed lots held;
    ``working`` orders still working; ``capital``/``cash`` the account's opening and current
    cash (None when the account has no cash limit, e.g. a replay without ``cash``).
    ``place`` sends an order (a limit at ``price`` ticks, else a market order) and returns its
    client order id: the account's rules may still refuse it.
    """

    @property
    def account(self) -> str: ...

    @property
    def now(self) -> int: ...

    def symbols(self) -> Sequence[str]: ...

    def instrument_for(self, symbol: str) -> Instrument: ...

    def quote(self, symbol: str) -> tuple[int, int] | None: ...

    def change(self, symbol: str) -> float | None: ...

    def holding(self, symbol: str) -> int: ...

    def working(self, symbol: str | None = None) -> Sequence[WorkingOrder]: ...

    def capital(self) -> Decimal | None: ...

    def cash(self) -> Decimal | None: ...

    def rng(self, symbol: str) -> np.random.Generator: ...

    def place(self, symbol: str, side: Side, lots: int, price: int | None = None, *,
              tif: TimeInForce = TimeInForce.DAY, post_only: bool = False) -> str: ...  # fmt: skip

    def cancel(self, client_order_id: str) -> None: ...


Participant = Callable[[Desk], None]


# ---------------------------------------------------------------------------- the market's own
def market_maker(ctx: Desk) -> None:
    """Quote every symbol at the touch, post-only, 100-300 lots a side (drawn per symbol);
    requote when the touch moves; stop adding to a side once inventory passes 2,000 lots."""
    for symbol in ctx.symbols():
        q = ctx.quote(symbol)
        if q is None:
            continue
        bid, ask = q
        mine = ctx.working(symbol)
        if {(o.side, o.limit_price) for o in mine} == {(Side.BUY, bid), (Side.SELL, ask)}:
            continue
        for o in mine:
            ctx.cancel(o.client_order_id)
        pos = ctx.holding(symbol)
        size = int(ctx.rng(symbol).integers(1, 4)) * 100
        if pos < 2_000:
            ctx.place(symbol, Side.BUY, size, bid, tif=TimeInForce.GTC, post_only=True)
        if pos > -2_000:
            ctx.place(symbol, Side.SELL, size, ask, tif=TimeInForce.GTC, post_only=True)


def noise_trader(ctx: Desk, rate: float = 0.35) -> None:
    """About ``rate`` times a call in all (spread over the symbols), a market order of 100-500
    lots in a random direction; past 3,000 lots held it trades back toward flat."""
    symbols = ctx.symbols()
    for symbol in symbols:
        rng = ctx.rng(symbol)
        if rng.random() >= rate / len(symbols):
            continue
        pos = ctx.holding(symbol)
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        if abs(pos) > 3_000:
            side = Side.SELL if pos > 0 else Side.BUY
        ctx.place(symbol, side, int(rng.integers(1, 6)) * 100, tif=TimeInForce.IOC)


# ---------------------------------------------------------------------------- simulated class members
def index_investor(ctx: Desk) -> None:
    """Buy the index (``SPY`` if traded, else the first symbol) with 95 % of capital once, then hold."""
    symbols = ctx.symbols()
    target = INDEX if INDEX in symbols else symbols[0]
    if ctx.holding(target) > 0 or ctx.working():
        return
    _buy_with(ctx, target, Decimal("0.95"))


def momentum(ctx: Desk) -> None:
    """Buy the day's three top gainers (10 % of capital each, at most eight names); sell what turns red."""
    _rotate(ctx, gainers=True, exit_if=lambda change: change < 0)


def contrarian(ctx: Desk) -> None:
    """Buy the day's three top losers (10 % of capital each, at most eight names); sell on a 0.5 % bounce."""
    _rotate(ctx, gainers=False, exit_if=lambda change: change > 0.005)


def _rotate(ctx: Desk, *, gainers: bool, exit_if: Callable[[float], bool]) -> None:
    symbols = list(ctx.symbols())
    change = {s: ctx.change(s) or 0.0 for s in symbols}
    ranked = sorted(symbols, key=change.__getitem__)  # stable: ties keep the symbols' order
    picks = ranked[::-1][:3] if gainers else ranked[:3]
    held = {s: lots for s in symbols if (lots := ctx.holding(s)) > 0}
    working = ctx.working()
    selling = {o.symbol for o in working if o.side is Side.SELL}
    for s, lots in held.items():
        if s not in selling and exit_if(change[s]):
            ctx.place(s, Side.SELL, lots)
    busy = set(held) | {o.symbol for o in working}
    for s in picks:
        if s not in busy and len(busy) < 8:
            _buy_with(ctx, s, Decimal("0.1"))
            busy.add(s)


def _buy_with(ctx: Desk, symbol: str, fraction: Decimal) -> None:
    """A market buy of ``symbol`` with ``fraction`` of the opening cash (at most 98 % of what is
    left), sized at the mid plus 1 % (without a cash limit: 100 lots)."""
    q = ctx.quote(symbol)
    if q is None:
        return
    capital, cash = ctx.capital(), ctx.cash()
    if capital is None or cash is None:
        lots = 100
    else:
        inst = ctx.instrument_for(symbol)
        unit = inst.price_grid.to_decimal((q[0] + q[1]) // 2) * inst.size_grid.to_decimal(1) * Decimal("1.01")
        budget = min(capital * fraction, cash * Decimal("0.98"))
        lots = int(budget // unit) if budget > 0 and unit > 0 else 0
    if lots > 0:
        ctx.place(symbol, Side.BUY, lots)
