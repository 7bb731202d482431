"""Classes on the event log (DESIGN.md §1, §8): the ``class`` topic and the fold of it.

A class is its events (:mod:`vtrade.classroom`), published on the ``class`` topic keyed by class
id, so one class's events keep their order. :class:`ClassBook` is both sides in one process:
``submit`` decides a command against the class's current state (a refusal raises
:class:`~vtrade.classroom.ClassroomError` and publishes nothing), publishes the events it
decided, and folds them; ``refresh`` folds what other producers published. On a durable log (a
``JournaledBus`` or Redis) a new book on the same log rebuilds every class from the topic, so
classes, rosters and the clock's state survive a restart.

Decisions are serialised by a lock in this process: run one book that accepts commands per log
(readers may be many). Two deciders on one log could both accept the same display name.

>>> import vtrade.classroom as vc
>>> from vtrade.runtime.bus import open_bus
>>> book = ClassBook(open_bus("memory://"))
>>> code = vc.join_code(bytes(10))
>>> _ = book.submit("econ", vc.CreateClass(0, "econ", "ms-lee", "Econ 101", code))
>>> _ = book.submit("econ", vc.OpenRegistration(1, "ms-lee"))
>>> [e.display_name for e in book.submit("econ", vc.Join(2, code, "Sam"))]
['Sam']
>>> book.state("econ").phase
<Phase.REGISTRATION: 'registration'>
"""

from __future__ import annotations

import threading

from vtrade.classroom import ClassEvent, ClassState, Command, CreateClass, apply, decide
from vtrade.runtime.bus import Bus

__all__ = ["TOPIC", "ClassBook", "UnknownClassError"]

#: The topic of class events, keyed by class id.
TOPIC = "class"


class UnknownClassError(KeyError):
    """No class of that id on the log; printed as the sentence."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ClassBook:
    """Every class on ``bus``'s ``class`` topic, folded (see the module notes)."""

    def __init__(self, bus: Bus, *, partitions: int = 4) -> None:
        self.bus = bus
        bus.create_topic(TOPIC, partitions)
        self._next = [0] * bus.partitions(TOPIC)  # per partition: the offset to fold next
        self._states: dict[str, ClassState] = {}
        self._lock = threading.RLock()
        self.refresh()

    def refresh(self) -> int:
        """Fold what was published since the last look; returns how many events."""
        n = 0
        with self._lock:
            for p, offset in enumerate(self._next):
                while batch := self.bus.read(TOPIC, p, offset, 1000):
                    for r in batch:
                        event = r.event
                        if isinstance(event, ClassEvent):  # anything else on the topic is not ours
                            self._states[event.class_id] = apply(self._states.get(event.class_id), event)
                            n += 1
                    offset = batch[-1].offset + 1
                self._next[p] = offset
        return n

    def submit(self, class_id: str, command: Command) -> list[ClassEvent]:
        """Decide ``command`` for ``class_id`` and put the events on the log; returns them.
        :class:`~vtrade.classroom.ClassroomError` (nothing published) if it is refused."""
        with self._lock:
            self.refresh()
            state = self._states.get(class_id)
            if state is None and not isinstance(command, CreateClass):
                raise UnknownClassError(f"no class {class_id!r}")
            if isinstance(command, CreateClass) and command.class_id != class_id:
                raise ValueError(f"the command creates {command.class_id!r}, not {class_id!r}")
            events = decide(state, command)
            if events:
                self.bus.publish_many(TOPIC, [(class_id, e) for e in events])
                self.refresh()
            return events

    def state(self, class_id: str) -> ClassState:
        """The class as folded now (:class:`UnknownClassError` if there is none)."""
        with self._lock:
            state = self._states.get(class_id)
        if state is None:
            raise UnknownClassError(f"no class {class_id!r}")
        return state

    def classes(self) -> list[str]:
        """The ids of every class on the log, sorted."""
        with self._lock:
            return sorted(self._states)
