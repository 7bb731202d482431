"""Short builders of game inputs, for tests, notebooks and the game worker's tests: every
input gets a fresh unique id unless one is given, and the fields that do not matter to a
scenario get plain defaults.

>>> from vtrade.game.machine import new_state
>>> s, events = run(new_state(), [assign(1, "first-trade"), fill(2)])
>>> status(s, "first-trade"), changes(events)[-1]
(<Status.COMPLETED: 'completed'>, (<Status.ACTIVE: 'active'>, <Status.COMPLETED: 'completed'>))
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from vtrade.game.events import GameEvent, MissionChanged, Status
from vtrade.game.inputs import (
    ClaimMission,
    FillSeen,
    GameInput,
    Holding,
    Kind,
    LiquidityFlag,
    MarginCalled,
    MissionAssigned,
    OrderType,
    OverrideAction,
    SessionClosed,
    ShockSeen,
    Side,
    Snapshot,
    StartMission,
    StudentEntered,
    StudentLeft,
    TeacherOverride,
    Tick,
)
from vtrade.game.machine import GameState, apply

A = "ada"
_ids = itertools.count()


def uid(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def fill(
    ts: int,
    order: str = "o1",
    *,
    side: Side = "buy",
    qty: float = 10.0,
    price: float = 100.0,
    liq: LiquidityFlag = "taker",
    slip: float = 1.0,
    otype: OrderType = "market",
    from_stop: bool = False,
    note: str = "",
    kind: str = "stock",
    symbol: str = "AAPL",
    account: str = A,
    id: str | None = None,
) -> FillSeen:
    return FillSeen(
        ts=ts,
        id=id or uid("f"),
        account=account,
        client_order_id=order,
        symbol=symbol,
        side=side,
        quantity=qty,
        price=price,
        liquidity=liq,
        slippage_bps=slip,
        order_type=otype,
        from_stop=from_stop,
        note=note,
        kind=kind,
    )


def h(symbol: str, sector: str, weight: float, kind: Kind = "stock") -> Holding:
    return Holding(symbol, sector, kind, weight, 100.0)


def snap(
    ts: int,
    session: int,
    *,
    nav: float = 100_000.0,
    cash: float | None = None,
    holdings: Iterable[Holding] = (),
    beta: float | None = None,
    bench: float | None = None,
    tr: float = 0.0,
    margin: bool = False,
    account: str = A,
) -> Snapshot:
    hs = tuple(holdings)
    if cash is None:
        cash = nav * (1 - sum(x.weight for x in hs))
    return Snapshot(
        ts=ts,
        id=uid("s"),
        account=account,
        session=session,
        nav=nav,
        cash=cash,
        start_nav=100_000.0,
        holdings=hs,
        beta=beta,
        benchmark_return=bench,
        total_return=tr,
        max_drawdown=0.0,
        margin_call=margin,
    )


def close(ts: int, session: int) -> SessionClosed:
    return SessionClosed(ts=ts, id=uid("close"), session=session)


def tick(ts: int) -> Tick:
    return Tick(ts=ts, id=uid("t"))


def shock(ts: int) -> ShockSeen:
    return ShockSeen(ts=ts, id=uid("shock"), label="Information Technology -10 %")


def margin(ts: int, account: str = A) -> MarginCalled:
    return MarginCalled(ts=ts, id=uid("mc"), account=account)


def assign(
    ts: int, mission: str, accounts: tuple[str, ...] = (A,), due: int | None = None, xp: int | None = None
) -> MissionAssigned:
    return MissionAssigned(ts=ts, id=uid("as"), mission_id=mission, accounts=accounts, due_ts=due, xp=xp)


def override(
    ts: int, mission: str, action: OverrideAction, account: str = A, reason: str = "teacher's call"
) -> TeacherOverride:
    return TeacherOverride(ts=ts, id=uid("ov"), account=account, mission_id=mission, action=action, reason=reason)


def start(ts: int, mission: str, account: str = A) -> StartMission:
    return StartMission(ts=ts, id=uid("st"), account=account, mission_id=mission)


def claim(ts: int, mission: str, account: str = A) -> ClaimMission:
    return ClaimMission(ts=ts, id=uid("cl"), account=account, mission_id=mission)


def enter(ts: int, account: str) -> StudentEntered:
    return StudentEntered(ts=ts, id=uid("in"), account=account)


def leave(ts: int, account: str) -> StudentLeft:
    return StudentLeft(ts=ts, id=uid("out"), account=account)


def status(state: GameState, mission: str, account: str = A) -> Status:
    return state.players[account].missions[mission].status


def run(state: GameState, inputs: Iterable[GameInput]) -> tuple[GameState, list[GameEvent]]:
    events: list[GameEvent] = []
    for i in inputs:
        state, out = apply(state, i)
        events.extend(out)
    return state, events


def changes(events: Iterable[GameEvent], mission: str | None = None) -> list[tuple[Status | None, Status]]:
    return [
        (e.before, e.after)
        for e in events
        if isinstance(e, MissionChanged) and (mission is None or e.mission_id == mission)
    ]
