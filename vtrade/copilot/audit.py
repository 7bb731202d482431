"""Where the copilot's audit events go: any :class:`AuditSink`.

The live market's sink journals them on its ``copilot`` topic (``LiveMarket.record_copilot``);
:class:`MemoryAudit` keeps them in a list (a notebook without a market, tests).

>>> from vtrade.copilot.events import CopilotAsked
>>> sink = MemoryAudit()
>>> sink.record(CopilotAsked(1, "ann", "c-1", "what is my beta?", "scripted"))
>>> [type(e).__name__ for e in sink.events]
['CopilotAsked']
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from vtrade.core.events import Event

__all__ = ["AuditSink", "CallableAudit", "MemoryAudit", "as_sink"]


class AuditSink(Protocol):
    """Takes one audit event (:mod:`vtrade.copilot.events`); must not drop it silently."""

    def record(self, event: Event) -> None: ...


class MemoryAudit:
    """An in-memory sink: ``events`` in the order recorded (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []

    def record(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    @property
    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)


class CallableAudit:
    """A sink over a function taking one event (e.g. ``LiveMarket.record_copilot``)."""

    def __init__(self, record: Callable[[Event], object]) -> None:
        self._record = record

    def record(self, event: Event) -> None:
        self._record(event)


def as_sink(target: AuditSink | Callable[[Event], object] | None) -> AuditSink | None:
    """``target`` as an :class:`AuditSink`: a sink as is, a function wrapped, None as None.

    >>> as_sink(print).record("an event")  # type: ignore[arg-type]
    an event
    """
    if target is None or hasattr(target, "record"):
        return target
    if callable(target):
        return CallableAudit(target)
    raise TypeError(f"an audit sink has a record(event) method or is a function of one event, got {target!r}")
