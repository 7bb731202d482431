"""A recorded full-depth feed replayed on a live clock, in a loop.

The live market's full-depth venue is a real Binance capture a few minutes long; a demo runs
for hours. :class:`CaptureLoop` replays the capture from its book snapshot on, re-stamped so that
the snapshot falls at ``start_ts``, and when the recording ends starts again from the snapshot
one ``gap`` later (the book is restated, so nothing of the previous pass leaks into the next).
Level-1 ``Quote`` events are left out: the depth diffs are the book, and the touch they carry
duplicates it at another cadence.

It offers the interface of :class:`~vtrade.market.synthetic.SyntheticMarket` that a live venue
uses (``snapshot``, ``step``, ``events_per_second``), so either can drive one.

>>> from vtrade.core.events import BookDelta, BookSnapshot, Trade, Side
>>> evs = [BookSnapshot(100, 100, "X", 0, [99], [5], [101], [5]),
...        Trade(150, 150, "X", 1, 101, 2, Side.BUY), BookDelta(200, 200, "X", 2, [], [], [101], [3])]
>>> loop = CaptureLoop(evs, start_ts=1_000, gap_ns=50)
>>> loop.snapshot().ts, [e.ts for e in loop.step(5)]
(1000, [1050, 1100, 1150, 1200, 1250])
>>> loop.passes
2
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import msgspec

from vtrade.core.events import BookSnapshot, MarketEvent, Quote

_E = TypeVar("_E", bound=MarketEvent)  # re-stamping keeps the event's type

__all__ = ["CaptureLoop"]


class CaptureLoop:
    """Loop ``events`` (a recorded feed) on a clock that starts at ``start_ts``: see the module notes."""

    def __init__(self, events: Iterable[MarketEvent], *, start_ts: int, gap_ns: int = 1_000_000_000) -> None:
        evs = list(events)
        first = next((i for i, e in enumerate(evs) if isinstance(e, BookSnapshot)), None)
        if first is None:
            raise ValueError("a capture to loop needs a book snapshot to start each pass from")
        self._events = [e for e in evs[first:] if not isinstance(e, Quote)]
        if len(self._events) < 2:
            raise ValueError("a capture to loop needs events after its snapshot")
        if gap_ns <= 0:
            raise ValueError(f"gap_ns must be positive, got {gap_ns}")
        t0, t1 = self._events[0].ts, self._events[-1].ts
        self._period = t1 - t0 + gap_ns
        self.events_per_second = len(self._events) / max((t1 - t0) / 1e9, 1e-9)
        self._offset = start_ts - t0
        self._i = 0
        self.passes = 1

    def snapshot(self) -> BookSnapshot:
        """The capture's opening book on the live clock (the start of the current pass)."""
        snap = self._events[0]
        assert isinstance(snap, BookSnapshot)
        return self._stamp(snap)

    def step(self, n: int) -> list[MarketEvent]:
        """The next ``n`` events, re-stamped; a new pass starts with the snapshot again."""
        out: list[MarketEvent] = []
        for _ in range(n):
            self._i += 1
            if self._i == len(self._events):
                self._i = 0
                self._offset += self._period
                self.passes += 1
            out.append(self._stamp(self._events[self._i]))
        return out

    def _stamp(self, e: _E) -> _E:
        return msgspec.structs.replace(e, ts=e.ts + self._offset, recv_ts=e.recv_ts + self._offset)
