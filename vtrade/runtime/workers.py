"""Worker processes: one execution or portfolio worker against a bus, durable under a data dir.

What ``vtrade worker exec`` and ``vtrade worker portfolio`` run (the CLI only parses flags).
Each loop resumes from the latest snapshot under ``data_dir`` (a DuckDB file per worker kind),
folds records until ``stop`` is set, then checkpoints and leaves its groups. A process killed
without that last checkpoint loses nothing: the next start restores the latest snapshot and
replays the log from there (outputs already published are checked, not published again).

Engines and books are built from symbols, the simple way: every symbol is a US equity
(:func:`~vtrade.core.instruments.us_equity`) traded by an :class:`EngineConfig` with the
defaults (L2 realism, no fees); the portfolio book opens ``accounts`` with ``cash`` each.

>>> import tempfile, threading
>>> from vtrade.runtime.bus import open_bus
>>> bus, stop = open_bus("memory://"), threading.Event()
>>> stop.set()  # stop at once: start, resume, checkpoint, leave
>>> run_exec_worker(bus, tempfile.mkdtemp(), ["SPY"], stop=stop).published
0
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import TextIO

from vtrade.core.instruments import us_equity
from vtrade.execution.engine import EngineConfig
from vtrade.portfolio.book import PortfolioBook
from vtrade.runtime.bus import Bus, MemberConflictError
from vtrade.runtime.execution_worker import DuckDBSnapshotStore, ExecutionWorker, WorkerStats
from vtrade.runtime.portfolio_worker import PortfolioWorker
from vtrade.runtime.status import Heartbeat

__all__ = [
    "EXEC_SNAPSHOTS",
    "PORTFOLIO_SNAPSHOTS",
    "engine_configs",
    "portfolio_book",
    "run_exec_worker",
    "run_portfolio_worker",
    "stop_on_sigterm",
]

log = logging.getLogger(__name__)

#: The snapshot files under the data dir, one per worker kind.
EXEC_SNAPSHOTS, PORTFOLIO_SNAPSHOTS = "exec-snapshots.duckdb", "portfolio-snapshots.duckdb"


def engine_configs(symbols: Sequence[str]) -> dict[str, EngineConfig]:
    """One default :class:`EngineConfig` per symbol, each a US equity.

    >>> sorted(engine_configs(["SPY", "QQQ"]))
    ['QQQ', 'SPY']
    """
    return {s: EngineConfig(us_equity(s)) for s in symbols}


def portfolio_book(symbols: Sequence[str], accounts: Sequence[str], cash: Decimal | int | str) -> PortfolioBook:
    """A book over the symbols (US equities, marked by the first price seen) with ``accounts``
    opened with ``cash`` each.

    >>> portfolio_book(["SPY"], ["ada", "bob"], 1000).accounts
    ['ada', 'bob']
    """
    book = PortfolioBook([us_equity(s) for s in symbols], capacity=max(1024, len(accounts)))
    for a in accounts:
        book.open_account(a, cash=cash)
    return book


def stop_on_sigterm() -> threading.Event:
    """An event set by SIGTERM or SIGINT (main thread only): the signal asks the loop to stop
    after its current batch, so it can checkpoint first."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _progress(out: TextIO | None, kind: str, total: int) -> None:
    if out is not None:
        # One line per batch, flushed, so a supervisor (or a test) can follow the worker.
        print(f"{kind} progress {total}", file=out, flush=True)


def _data_dir(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"--data-dir {str(p)!r} is a file, not a directory")
    p.mkdir(parents=True, exist_ok=True)
    return p


def run_exec_worker(
    bus: Bus,
    data_dir: str | os.PathLike[str],
    symbols: Sequence[str] | Mapping[str, EngineConfig],
    *,
    stop: threading.Event,
    snapshot_every: int = 1000,
    batch: int = 200,
    session_timeout_s: float = 10.0,
    progress: TextIO | None = None,
) -> WorkerStats:
    """Run an :class:`ExecutionWorker` for ``symbols`` until ``stop`` is set; returns its stats.
    ``symbols`` are names (default US-equity exchanges, :func:`engine_configs`) or each
    exchange's :class:`EngineConfig` by symbol (a live market's: :func:`~vtrade.runtime.live.engine_configs_of`).

    Snapshots go to ``<data_dir>/exec-snapshots.duckdb``; a worker started on a data dir with
    snapshots resumes from them. On stop it checkpoints, then leaves the group.
    """
    store = DuckDBSnapshotStore(_data_dir(data_dir) / EXEC_SNAPSHOTS)
    try:
        worker = ExecutionWorker(
            bus, symbols if isinstance(symbols, Mapping) else engine_configs(symbols), store=store,
            snapshot_every=snapshot_every,
            session_timeout_s=session_timeout_s,
        )  # fmt: skip
        _fold_until(stop, worker, batch, "exec", progress)
        return worker.stats
    finally:
        store.close()


def run_portfolio_worker(
    bus: Bus,
    data_dir: str | os.PathLike[str],
    symbols: Sequence[str],
    accounts: Sequence[str],
    *,
    cash: Decimal | int | str,
    stop: threading.Event,
    member: str = "0",
    snapshot_every: int = 1000,
    batch: int = 200,
    session_timeout_s: float = 10.0,
    progress: TextIO | None = None,
) -> dict[str, int]:
    """Run a :class:`PortfolioWorker` until ``stop`` is set; returns its stats.

    Snapshots go to ``<data_dir>/portfolio-snapshots.duckdb``; without one the worker starts on
    a fresh book of ``accounts`` with ``cash`` each. A restarted member waits (up to three
    session timeouts) for the group to presume its killed predecessor dead.
    """
    store = DuckDBSnapshotStore(_data_dir(data_dir) / PORTFOLIO_SNAPSHOTS)
    try:

        def new_book() -> PortfolioBook:
            return portfolio_book(symbols, accounts, cash)

        def resume() -> PortfolioWorker:
            return PortfolioWorker.resume(
                bus, store, new_book, member=member, snapshot_every=snapshot_every, session_timeout_s=session_timeout_s
            )

        worker = _join(resume, stop, 3 * session_timeout_s + 5)
        if worker is None:
            return {}
        _fold_until(stop, worker, batch, "portfolio", progress)
        return dict(worker.stats)
    finally:
        store.close()


def _join(make: Callable[[], PortfolioWorker], stop: threading.Event, timeout_s: float) -> PortfolioWorker | None:
    """``make()``, retried while a killed predecessor still holds the member id (it is
    presumed dead once its session times out). None if ``stop`` is set first."""
    deadline = time.monotonic() + timeout_s
    while not stop.is_set():
        try:
            return make()
        except MemberConflictError:
            if time.monotonic() > deadline:
                raise
            log.info("waiting for the previous incarnation of this member to time out")
            stop.wait(0.1)
    return None


def _fold_until(stop: threading.Event, worker: ExecutionWorker | PortfolioWorker, batch: int, kind: str,
                progress: TextIO | None) -> None:  # fmt: skip
    """Poll ``worker`` until ``stop`` is set, then checkpoint; it leaves its group either way.
    It publishes a heartbeat on the ``status`` topic every couple of seconds (``vtrade status``)."""
    try:
        total = 0
        held: list[int] | None = None
        beat = Heartbeat(worker.bus, kind, worker)
        beat.tick(total, force=True)  # seen at once, before the first (maybe long) batch
        while not stop.is_set():
            n = worker.poll_once(batch, timeout_s=0.1)
            if n:
                total += n
                _progress(progress, kind, total)
            if progress is not None and isinstance(worker, ExecutionWorker) and (now := worker.owned()) != held:
                held = now  # the group moved partitions (a member joined or left)
                print(f"{kind} partitions {','.join(map(str, now)) or '-'}", file=progress, flush=True)
            beat.tick(total)
        worker.checkpoint()
        beat.stop(total)
    finally:
        worker.close()
