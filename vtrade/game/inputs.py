"""What the game worker feeds the game domain: one input per thing that happened.

The worker (``vtrade.runtime``) translates ``exec`` fills, ``portfolio`` snapshots, ``user``
actions and class events into these and folds them with :func:`vtrade.game.machine.apply`.
Every input carries ``ts`` (simulated time, UTC nanoseconds; first, as on every vtrade event)
and ``id`` (unique: the idempotency key; redelivering an input changes nothing). Construct
them with keywords: the field order is ``ts, id`` and then the fields as documented.

Tags are namespaced ``gamein.*`` so they can be journaled next to other events.

>>> from vtrade.core.events import decode, encode
>>> f = FillSeen(ts=5, id="f-1", account="a", client_order_id="o-1", symbol="AAPL", side="buy",
...              quantity=10.0, price=190.5, liquidity="maker", slippage_bps=-1.5, order_type="limit",
...              from_stop=False, note="")
>>> decode(encode(f)) == f
True
"""

from __future__ import annotations

from typing import Literal

from vtrade.core.events import Event, register_event

# A snapshot's positions are the account feed's own (signed market value / NAV; kind stock, etf or crypto).
from vtrade.portfolio.events import Holding

__all__ = [
    "ClaimMission",
    "FillSeen",
    "GameInput",
    "Holding",
    "MarginCalled",
    "MissionAssigned",
    "MissionsDefined",
    "ShockSeen",
    "Snapshot",
    "StartMission",
    "StudentEntered",
    "StudentLeft",
    "TeacherOverride",
    "Tick",
]

Side = Literal["buy", "sell"]
LiquidityFlag = Literal["maker", "taker"]
OrderType = Literal["market", "limit", "stop", "stop_limit", "trailing_stop"]
Kind = Literal["stock", "etf", "crypto"]
OverrideAction = Literal["complete", "fail", "reopen", "unlock"]


def _in_tag(name: str) -> str:
    return f"gamein.{name}"


class GameInput(Event, frozen=True, array_like=True, tag=_in_tag):
    """Base of game inputs: ``id`` is unique (the idempotency key)."""

    id: str


class AccountInput(GameInput, frozen=True, array_like=True):
    """An input about one account (a student's trading account)."""

    account: str


class FillSeen(AccountInput, frozen=True, array_like=True):
    """A fill of ``account``'s order (``id`` = the fill id), with its receipt.

    ``quantity`` in units (may be fractional), ``price`` in the instrument's currency;
    ``slippage_bps`` vs the arrival mid, positive = worse for the side (as the receipt);
    ``from_stop``: the order was a stop that triggered; ``note``: the student's note on the
    order ('' when none). ``kind`` (added for missions on instrument kinds: the worker knows
    the instrument) is 'stock', 'etf' or 'crypto', or '' when unknown (no kind goal matches it).
    """

    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    liquidity: LiquidityFlag
    slippage_bps: float
    order_type: OrderType
    from_stop: bool
    note: str
    kind: str = ""


class Snapshot(AccountInput, frozen=True, array_like=True):
    """``account``'s portfolio now: sent at every session close (just before the
    :class:`SessionClosed`) and during sessions.

    ``beta`` to SPY over the history so far (None when unknown); ``benchmark_return``:
    SPY's return since the class started (None when unknown); ``total_return`` and
    ``max_drawdown`` (≥ 0, a fraction) since the start. Snapshots of one account must come
    with strictly increasing ``ts`` (one per instant, as the portfolio partition orders
    them): a snapshot at or before the last one applied is a redelivery or stale, and is
    ignored, so their ids need not be kept (see :mod:`vtrade.game.machine`).
    """

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


class SessionClosed(GameInput, frozen=True, array_like=True):
    """The simulated trading session ``session`` ended, for everyone. Sessions are numbered
    upward: a close of a session at or before the last closed one is ignored."""

    session: int


class Tick(GameInput, frozen=True, array_like=True):
    """Simulated time moved to ``ts`` (due dates are checked on it)."""


class MarginCalled(AccountInput, frozen=True, array_like=True):
    """``account`` got a margin call."""


class ShockSeen(GameInput, frozen=True, array_like=True):
    """The teacher shocked the market (``label`` as the teacher named it)."""

    label: str


class StudentEntered(AccountInput, frozen=True, array_like=True):
    """``account`` is in the class: class-wide missions apply to it."""


class StudentLeft(AccountInput, frozen=True, array_like=True):
    """``account`` was removed or reset away: its missions stop and later inputs for it are ignored."""


class MissionAssigned(GameInput, frozen=True, array_like=True):
    """The teacher assigned ``mission_id`` to ``accounts`` (empty = everyone in the class, now
    and later), due at ``due_ts`` (None: no due date), worth ``xp`` (None: the mission's XP)."""

    mission_id: str
    accounts: tuple[str, ...]
    due_ts: int | None
    xp: int | None


class MissionsDefined(GameInput, frozen=True, array_like=True):
    """The teacher added missions written in TOML (see :func:`vtrade.game.missions.load_missions`);
    all of them or, on any error, none. Added so that a teacher's missions travel the log and
    are in the state a worker checkpoints."""

    toml: str


class TeacherOverride(AccountInput, frozen=True, array_like=True):
    """The teacher forces ``account``'s ``mission_id``: 'complete', 'fail', 'reopen' (back to
    ACTIVE with its progress reset) or 'unlock' (skip its prerequisites)."""

    mission_id: str
    action: OverrideAction
    reason: str


class StartMission(AccountInput, frozen=True, array_like=True):
    """The student starts an AVAILABLE mission."""

    mission_id: str


class ClaimMission(AccountInput, frozen=True, array_like=True):
    """The student claims a COMPLETED mission's XP."""

    mission_id: str


register_event(
    FillSeen, Snapshot, SessionClosed, Tick, MarginCalled, ShockSeen, StudentEntered, StudentLeft,
    MissionAssigned, MissionsDefined, TeacherOverride, StartMission, ClaimMission,
)
