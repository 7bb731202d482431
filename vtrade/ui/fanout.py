"""One process-wide clock that refreshes every served session's views in turn.

DESIGN.md §7: one process-wide feed, fanned out to light per-session views. :class:`Fanout`
is that fan-out for the dashboards: a single timer thread that, every ``period_ms``, asks the
server's event loop to run each registered session's refresh under that session's document lock
(``Document.add_next_tick_callback``).

That call is queued from the event loop's own thread (``IOLoop.add_callback``, which is what
is thread-safe): calling it from the timer thread while the loop builds a new session's
document raced with Bokeh's own bookkeeping, failed, and a session whose queueing failed once
was never refreshed again (a student's waiting page stuck at "1 student has joined").

Why not one Panel periodic callback per session: under load each session's timer fires on its
own schedule and the late-comers can be starved for as long as the loop stays saturated; here
every session is queued once per round and never twice (a refresh still waiting is not queued
again), so when the server is busy every session slows down alike instead of some stopping,
and work never piles up behind a slow round.

>>> ran = []
>>> class Doc:  # stands in for a Bokeh document: runs the callback at once
...     def add_next_tick_callback(self, fn): fn()
>>> f = Fanout(period_ms=50)
>>> key = f.add(Doc(), lambda: ran.append(1))
>>> deadline = time.monotonic() + 30
>>> while len(ran) < 3 and time.monotonic() < deadline:
...     time.sleep(0.01)
>>> f.remove(key); f.stop()
>>> len(ran) >= 3
True
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Fanout", "shared_fanout"]

log = logging.getLogger(__name__)


class Fanout:
    """Refresh every registered session each ``period_ms`` (see the module notes)."""

    def __init__(self, period_ms: int = 500) -> None:
        if not 50 <= period_ms <= 10_000:
            raise ValueError(f"period_ms must be 50-10000, got {period_ms}")
        self.period_s = period_ms / 1000
        self._sessions: dict[int, tuple[Any, Callable[[], None], Any]] = {}
        self._pending: set[int] = set()
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.skipped = 0  # rounds in which a session's previous refresh had not run yet

    def add(self, doc: Any, refresh: Callable[[], None], loop: Any = None) -> int:
        """Refresh ``doc``'s views with ``refresh`` every period from now on; returns a key for
        :meth:`remove`. ``loop`` is the server's event loop (a Tornado ``IOLoop``) the document
        lives on: the refresh is queued from that loop's thread. Without one it is queued from
        the timer's thread (documents that are not served, tests)."""
        with self._lock:
            key = next(self._ids)
            self._sessions[key] = (doc, refresh, loop)
            if self._thread is None or self._stop.is_set() or not self._thread.is_alive():
                # A stopped timer may still be finishing its last wait: give the new one its own
                # stop flag, or clearing the old flag would revive it beside the new thread.
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._stop,), name="vtrade-fanout", daemon=True)
                self._thread.start()
        return key

    def remove(self, key: int) -> None:
        """Stop refreshing a session (it closed)."""
        with self._lock:
            self._sessions.pop(key, None)
            self._pending.discard(key)

    def stop(self) -> None:
        self._stop.set()

    def __len__(self) -> int:
        return len(self._sessions)

    def _run(self, stop: threading.Event) -> None:
        # Rounds on fixed deadlines (start + k·period): a round that ran late does not push every
        # later one back; one that fell a whole period behind is dropped, not made up in a burst.
        deadline = time.monotonic() + self.period_s
        while not stop.wait(max(0.0, deadline - time.monotonic())):
            now = time.monotonic()
            deadline += self.period_s
            if deadline <= now:
                deadline = now + self.period_s
            with self._lock:
                due = [(k, d, f, lp) for k, (d, f, lp) in self._sessions.items() if k not in self._pending]
                self.skipped += len(self._sessions) - len(due)
                self._pending.update(k for k, _, _, _ in due)
            for key, doc, refresh, loop in due:
                if loop is None:
                    self._queue(key, doc, refresh)
                    continue
                try:
                    loop.add_callback(self._queue, key, doc, refresh)
                except RuntimeError:  # the loop is closed: the server is stopping
                    self._done(key)

    def _queue(self, key: int, doc: Any, refresh: Callable[[], None]) -> None:
        try:
            doc.add_next_tick_callback(self._runner(key, refresh))
        except Exception:
            # Not queued this round (a document that is closing): try again next round. A
            # closed session leaves through remove(); dropping it here stopped live pages too.
            log.debug("could not queue a refresh for session %s", key, exc_info=True)
            self._done(key)

    def _done(self, key: int) -> None:
        with self._lock:
            self._pending.discard(key)

    def _runner(self, key: int, refresh: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                with self._lock:
                    live = key in self._sessions
                if live:
                    refresh()
            finally:
                self._done(key)

        return run


_SHARED: dict[int, Fanout] = {}
_SHARED_LOCK = threading.Lock()


def shared_fanout(period_ms: int = 500) -> Fanout:
    """The process-wide fan-out for ``period_ms`` (one timer however many sessions)."""
    with _SHARED_LOCK:
        if period_ms not in _SHARED:
            _SHARED[period_ms] = Fanout(period_ms)
        return _SHARED[period_ms]
