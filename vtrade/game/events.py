"""What the game publishes on the ``game`` topic: mission transitions and progression.

Every event's ``id`` is ``"<cause input id>/<index>"``: the same input always makes the same
events with the same ids, so a consumer dedupes them like any other event. ``cause`` is the
input id. Tags are namespaced ``game.*``.

>>> from vtrade.core.events import decode, encode
>>> e = MissionChanged(7, "f-1/0", "a", "f-1", "first-trade", Status.ACTIVE, Status.COMPLETED,
...                    "Completed 'First trade': you traded")
>>> decode(encode(e)) == e
True
"""

from __future__ import annotations

from enum import StrEnum

from vtrade.core.events import Event, register_event

__all__ = ["BadgeEarned", "GameEvent", "LevelReached", "MissionChanged", "Outbox", "Status", "XpAwarded"]


class Status(StrEnum):
    """Where an assigned mission is: LOCKED → AVAILABLE → ACTIVE → COMPLETED | FAILED |
    EXPIRED, and COMPLETED → CLAIMED."""

    LOCKED = "locked"
    AVAILABLE = "available"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CLAIMED = "claimed"

    @property
    def open(self) -> bool:
        """Not yet decided: it can still complete, fail or expire."""
        return self in (Status.LOCKED, Status.AVAILABLE, Status.ACTIVE)


def _game_tag(name: str) -> str:
    return f"game.{name}"


class GameEvent(Event, frozen=True, array_like=True, tag=_game_tag):
    """Base of game events: ``id`` (deterministic), the ``account`` it is about, and the
    ``cause``: the id of the input that made it."""

    id: str
    account: str
    cause: str


class MissionChanged(GameEvent, frozen=True, array_like=True):
    """``account``'s ``mission_id`` went from ``before`` (None: just assigned) to ``after``;
    ``reason`` is a sentence the student can read."""

    mission_id: str
    before: Status | None
    after: Status
    reason: str


class XpAwarded(GameEvent, frozen=True, array_like=True):
    """``amount`` XP for ``mission_id`` (claimed): ``total`` is the account's XP now."""

    mission_id: str
    amount: int
    total: int


class LevelReached(GameEvent, frozen=True, array_like=True):
    """``account`` reached ``level`` (one event per level crossed) with ``xp`` XP."""

    level: int
    xp: int


class BadgeEarned(GameEvent, frozen=True, array_like=True):
    """``account`` earned ``badge`` (an id of :data:`vtrade.game.progression.BADGES`); ``title``
    to show."""

    badge: str
    title: str


register_event(MissionChanged, XpAwarded, LevelReached, BadgeEarned)


class Outbox:
    """Collects the events one input makes, numbering their ids ``"<cause>/<n>"`` in order
    (deterministic, so a consumer can dedupe redelivered events).

    >>> out = Outbox("f-1", 7)
    >>> out.xp("a", "first-trade", 50, 50).id, out.level("a", 1, 100).id
    ('f-1/0', 'f-1/1')
    """

    def __init__(self, cause: str, ts: int) -> None:
        self.cause = cause
        self.ts = ts
        self.events: list[GameEvent] = []

    def _next_id(self) -> str:
        return f"{self.cause}/{len(self.events)}"

    def _add(self, event: GameEvent) -> GameEvent:
        self.events.append(event)
        return event

    def mission(self, account: str, mission_id: str, before: Status | None, after: Status, reason: str) -> GameEvent:
        """A mission transition."""
        return self._add(
            MissionChanged(self.ts, self._next_id(), account, self.cause, mission_id, before, after, reason)
        )

    def xp(self, account: str, mission_id: str, amount: int, total: int) -> GameEvent:
        """XP awarded."""
        return self._add(XpAwarded(self.ts, self._next_id(), account, self.cause, mission_id, amount, total))

    def level(self, account: str, level: int, xp: int) -> GameEvent:
        """A level reached."""
        return self._add(LevelReached(self.ts, self._next_id(), account, self.cause, level, xp))

    def badge(self, account: str, badge: str, title: str) -> GameEvent:
        """A badge earned."""
        return self._add(BadgeEarned(self.ts, self._next_id(), account, self.cause, badge, title))
