"""Progression: XP, levels and badges, folded from the same inputs as the missions.

:func:`vtrade.game.machine.apply` calls these for each account input it applies (one fold,
one entry point for the worker); they return the account's new :class:`Progress` and add
their events to the :class:`~vtrade.game.events.Outbox`.

Levels: level ``n`` needs ``threshold(n) = 50·n·(n+1)`` XP in total (100 for level 1, 300 for
level 2, 600 for 3, 1000 for 4, ...: each level costs 100 XP more than the one before, so
early levels come quickly and later ones take a steady stream of missions). A new account is
level 0. XP comes only from claimed missions.

>>> [threshold(n) for n in range(5)], level_for(299), level_for(300)
([0, 100, 300, 600, 1000], 1, 2)
"""

from __future__ import annotations

from math import isqrt

import msgspec

from vtrade.game.events import Outbox
from vtrade.game.inputs import FillSeen, Snapshot
from vtrade.game.missions import sectors

__all__ = [
    "BADGES",
    "DIVERSIFIED_MAX_WEIGHT",
    "DIVERSIFIED_SECTORS",
    "NOTES_FOR_BADGE",
    "SHOCK_CLOSES",
    "Badge",
    "Progress",
    "level_for",
    "on_claim",
    "on_fill",
    "on_margin_call",
    "on_session_closed",
    "on_shock",
    "on_snapshot",
    "threshold",
]

NOTES_FOR_BADGE = 5  #: orders with a note for the note-taker badge
DIVERSIFIED_SECTORS = 5  #: long sectors held at once for the diversified badge ...
DIVERSIFIED_MAX_WEIGHT = 0.20  #: ... with no position above this fraction of NAV
SHOCK_CLOSES = 2  #: session closes after a shock without a margin call for the survivor badge
MISSIONS_FOR_BADGE = 3  #: missions claimed for the mission-streak badge
LEVEL_FOR_BADGE = 3  #: the level of the rising-trader badge


class Badge(msgspec.Struct, frozen=True):
    """A badge: ``title`` to show, ``description`` (how it is earned) for a student."""

    title: str
    description: str


#: Every badge, by id, in the order a student is likely to earn them.
BADGES: dict[str, Badge] = {
    "first_fill": Badge("First fill", "Your first order filled."),
    "first_maker": Badge("Liquidity provider", "A resting limit order of yours filled as maker."),
    "safety_net": Badge("Safety net", "A stop order of yours triggered and filled."),
    "note_taker": Badge("Note-taker", f"You wrote notes on {NOTES_FOR_BADGE} orders."),
    "diversified": Badge(
        "Diversified",
        f"You held {DIVERSIFIED_SECTORS} sectors at once with no position above {DIVERSIFIED_MAX_WEIGHT:.0%} of NAV.",
    ),
    "shock_survivor": Badge(
        "Shock survivor", f"You went {SHOCK_CLOSES} session closes after a market shock without a margin call."
    ),
    "three_missions": Badge("Mission streak", f"You claimed {MISSIONS_FOR_BADGE} missions."),
    "rising_trader": Badge("Rising trader", f"You reached level {LEVEL_FOR_BADGE}."),
}


def threshold(level: int) -> int:
    """The total XP level ``level`` needs: ``50·n·(n+1)``.

    >>> threshold(3)
    600
    """
    return 50 * level * (level + 1)


def level_for(xp: int) -> int:
    """The level of an account with ``xp`` XP: the largest ``n`` with ``threshold(n) <= xp``.

    >>> level_for(0), level_for(99), level_for(100), level_for(10**6)
    (0, 0, 1, 140)
    """
    if xp <= 0:
        return 0
    # 50n(n+1) <= xp  <=>  (2n+1)^2 <= 1 + 2xp/25: an integer square root, then exact checks.
    n = max(0, (isqrt((25 + 2 * xp) // 25) - 1) // 2)
    while threshold(n + 1) <= xp:
        n += 1
    while threshold(n) > xp:
        n -= 1
    return n


class Progress(msgspec.Struct, frozen=True, array_like=True):
    """An account's progression: ``xp`` and ``level``, ``badges`` earned (ids, in order), and
    the counters badges need: ``fills``, ``noted_orders`` (up to :data:`NOTES_FOR_BADGE` order
    ids), ``claimed`` missions, ``shock_closes`` (closes since the last shock while watching
    for the survivor badge; None when not watching)."""

    xp: int = 0
    level: int = 0
    badges: tuple[str, ...] = ()
    fills: int = 0
    noted_orders: tuple[str, ...] = ()
    claimed: int = 0
    shock_closes: int | None = None


def _earn(p: Progress, badge: str, account: str, out: Outbox) -> Progress:
    if badge in p.badges:
        return p
    out.badge(account, badge, BADGES[badge].title)
    return msgspec.structs.replace(p, badges=(*p.badges, badge))


def on_fill(p: Progress, fill: FillSeen, out: Outbox) -> Progress:
    """A fill of the account: first fill, maker, stop and note badges."""
    p = msgspec.structs.replace(p, fills=p.fills + 1)
    p = _earn(p, "first_fill", fill.account, out)
    if fill.liquidity == "maker":
        p = _earn(p, "first_maker", fill.account, out)
    if fill.from_stop:
        p = _earn(p, "safety_net", fill.account, out)
    noted = p.noted_orders
    if fill.note.strip() and fill.client_order_id not in noted and len(noted) < NOTES_FOR_BADGE:
        p = msgspec.structs.replace(p, noted_orders=(*noted, fill.client_order_id))
        if len(p.noted_orders) >= NOTES_FOR_BADGE:
            p = _earn(p, "note_taker", fill.account, out)
    return p


def on_snapshot(p: Progress, snap: Snapshot, out: Outbox) -> Progress:
    """A portfolio snapshot: the diversified badge; a margin call ends the shock watch."""
    if snap.margin_call:
        p = on_margin_call(p)
    biggest = max((abs(h.weight) for h in snap.holdings), default=0.0)
    if len(sectors(snap)) >= DIVERSIFIED_SECTORS and biggest <= DIVERSIFIED_MAX_WEIGHT:
        p = _earn(p, "diversified", snap.account, out)
    return p


def on_margin_call(p: Progress) -> Progress:
    """A margin call: this shock is not survived."""
    return msgspec.structs.replace(p, shock_closes=None) if p.shock_closes is not None else p


def on_shock(p: Progress) -> Progress:
    """A market shock: watch the next closes (again, if a shock came before)."""
    return p if "shock_survivor" in p.badges else msgspec.structs.replace(p, shock_closes=0)


def on_session_closed(p: Progress, account: str, out: Outbox) -> Progress:
    """A session close: one more close survived since the shock."""
    if p.shock_closes is None:
        return p
    closes = p.shock_closes + 1
    if closes < SHOCK_CLOSES:
        return msgspec.structs.replace(p, shock_closes=closes)
    return _earn(msgspec.structs.replace(p, shock_closes=None), "shock_survivor", account, out)


def on_claim(p: Progress, account: str, mission_id: str, amount: int, out: Outbox) -> Progress:
    """A claimed mission: its XP, each level crossed, and the claim-count and level badges."""
    xp = p.xp + amount
    out.xp(account, mission_id, amount, xp)
    level = level_for(xp)
    for reached in range(p.level + 1, level + 1):
        out.level(account, reached, xp)
    p = msgspec.structs.replace(p, xp=xp, level=level, claimed=p.claimed + 1)
    if p.claimed >= MISSIONS_FOR_BADGE:
        p = _earn(p, "three_missions", account, out)
    if p.level >= LEVEL_FOR_BADGE:
        p = _earn(p, "rising_trader", account, out)
    return p
