"""Crash test (issue 10): a seeded class of simulated users trades through the log while the
execution and portfolio workers are killed at random points and restarted; nothing acknowledged
is lost or duplicated, and the outputs equal a fault-free run of the same input.

Two variants:

- embedded: a :class:`JournaledBus` on disk, each worker in a thread; an abrupt stop ends the
  thread between two records (a seeded record count) without checkpointing, committing or
  leaving its group, the worker object is dropped, and a new one resumes from the on-disk
  snapshot store once the group has presumed the dead one gone;
- Redis and Kafka: each worker is a ``vtrade worker`` subprocess, killed with SIGKILL when its
  progress passes a seeded threshold (we wait on the log or on the worker's progress lines, never
  on a clock) and started again; meanwhile a second execution worker process joins (a rebalance
  gives it partitions, which it replays from their start, having no snapshot of them) and is
  killed in turn, so its partitions move back.

The input is built up front from a seed (synthetic order flow for three symbols, and twenty
users placing market and limit orders and cancelling some), so both runs see the same log; the
producer publishes it through the :class:`Sequencer` merge in batches while the workers run.
A command counts as acknowledged once the ``publish_many`` carrying it returned.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest

from vtrade.core.events import BookDelta, BookSnapshot, Event, MarketEvent, Side, Trade
from vtrade.core.instruments import us_equity
from vtrade.execution import events as ev
from vtrade.execution.orders import CancelOrder, OrderType, SubmitOrder
from vtrade.market.l2book import L2Book
from vtrade.market.synthetic import SyntheticMarket, SyntheticParams
from vtrade.runtime.bus import Bus, JournaledBus, MemberConflictError, MemoryBus, open_bus
from vtrade.runtime.execution_worker import (
    INPUT_TOPIC,
    OUTPUT_TOPIC,
    DuckDBSnapshotStore,
    ExecutionWorker,
    Sequencer,
    output_hash,
    read_topic,
)
from vtrade.runtime.portfolio_worker import EXEC, MARKET, PortfolioWorker
from vtrade.runtime.workers import engine_configs, portfolio_book

ROOT = Path(__file__).resolve().parent.parent
SEED = 20_251_206
SYMBOLS = ["SPY", "QQQ", "IWM"]
ACCOUNTS = [f"u{i:02d}" for i in range(20)]
CASH = Decimal(10_000_000)
PARTITIONS = 8
MARKET_EVENTS = 1500  # per symbol
COMMANDS = 400
KILLS = 3  # per worker
SNAPSHOT_EVERY = 150
SESSION_S = 1.0  # how soon a killed worker's group presumes it dead
# On Kafka the broker's session notices a killed process; the worker's own session (Kafka's
# max.poll.interval) only notices a live one that stopped polling, and must outlast the longest
# stretch between two polls (a worker taking a partition over first reads the exec log).
KAFKA_SESSION_MS, KAFKA_POLL_INTERVAL_S = 2000, 10.0


# ---------------------------------------------------------------------------------------------
# the class: seeded input


@dataclass
class ClassInput:
    """The whole session: ``steps`` in the order the producer feeds them to the Sequencer."""

    steps: list[Event]
    submits: set[tuple[str, str]] = field(default_factory=set)  # (account, client order id)


def class_input(seed: int) -> ClassInput:
    """Synthetic flow for every symbol, merged by time, with the users' commands placed between
    market events (a command's entry time is the time of the market event the user just saw)."""
    params = SyntheticParams(burn_in=20_000, events_per_second=200.0)
    flows = [SyntheticMarket(us_equity(s), seed=seed, params=params).step(MARKET_EVENTS) for s in SYMBOLS]
    market: list[MarketEvent] = sorted((e for f in flows for e in f), key=lambda e: (e.ts, e.symbol, e.seq))
    rng = np.random.default_rng(seed)
    at = sorted(rng.choice(np.arange(50, len(market)), size=COMMANDS, replace=False).tolist())
    books = {s: L2Book(s) for s in SYMBOLS}
    resting: dict[str, list[tuple[str, str]]] = {a: [] for a in ACCOUNTS}  # account -> (symbol, coid)
    out = ClassInput([])
    n = 0
    for i, e in enumerate(market):
        if isinstance(e, BookSnapshot | BookDelta):
            books[e.symbol].apply(e)
        out.steps.append(e)
        while at and at[0] == i:
            at.pop(0)
            account = ACCOUNTS[int(rng.integers(len(ACCOUNTS)))]
            symbol = SYMBOLS[int(rng.integers(len(SYMBOLS)))]
            bid, ask = books[symbol].best_bid(), books[symbol].best_ask()
            n += 1
            coid = f"{account}-{n}"
            roll = rng.random()
            if roll < 0.2 and resting[account]:
                sym, target = resting[account].pop(int(rng.integers(len(resting[account]))))
                out.steps.append(CancelOrder(e.ts, account, target, sym))
                continue
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            qty = int(rng.integers(1, 5)) * 100
            if roll < 0.55 or bid is None or ask is None:
                out.steps.append(SubmitOrder(e.ts, account, coid, symbol, side, OrderType.MARKET, qty))
            else:
                # Near the touch: some rest and fill later as makers, some cross at once.
                away = int(rng.integers(-2, 4))
                price = bid[0] - away if side is Side.BUY else ask[0] + away
                out.steps.append(
                    SubmitOrder(e.ts, account, coid, symbol, side, OrderType.LIMIT, qty, limit_price=price)
                )
                resting[account].append((symbol, coid))
            out.submits.add((account, coid))
    return out


@pytest.fixture(scope="module")
def session_input() -> ClassInput:
    return class_input(SEED)


class Producer:
    """Publishes the input through the Sequencer merge in batches, recording what was acknowledged.

    Trades also go to ``market`` (the portfolio worker's prices). Commands released by a batch
    count as acknowledged once its ``publish_many`` returned.
    """

    def __init__(self, bus: Bus, steps: list[Event], batch: int = 200) -> None:
        self.bus, self.steps, self.batch = bus, steps, batch
        self.acked: list[SubmitOrder | CancelOrder] = []
        self.done = threading.Event()
        self.error: BaseException | None = None
        for topic in (INPUT_TOPIC, OUTPUT_TOPIC, MARKET, "portfolio"):
            bus.create_topic(topic, PARTITIONS)

    def run(self) -> None:
        try:
            seq = Sequencer(None, entry_latency="1ms", seed=SEED)  # we publish its output ourselves
            out: list[Event] = []
            for i, e in enumerate(self.steps):
                if isinstance(e, MarketEvent):
                    out.extend(seq.market(e))
                else:
                    seq.command(e)  # type: ignore[arg-type]
                if len(out) >= self.batch or i == len(self.steps) - 1:
                    if i == len(self.steps) - 1:
                        out.extend(seq.flush())
                    self._publish(out)
                    out = []
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc
        finally:
            self.done.set()

    def _publish(self, events: list[Event]) -> None:
        self.bus.publish_many(INPUT_TOPIC, [(e.symbol, e) for e in events])  # type: ignore[attr-defined]
        trades = [(e.symbol, e) for e in events if isinstance(e, Trade)]
        if trades:
            self.bus.publish_many(MARKET, trades)
        self.acked.extend(e for e in events if isinstance(e, SubmitOrder | CancelOrder))


def drained(bus: Bus, topic: str, offsets: dict[tuple[str, int], int]) -> bool:
    """Whether ``offsets`` (last processed offset per partition) reach the end of ``topic``."""
    return all(offsets.get((topic, p), -1) >= end - 1 for p, end in enumerate(bus.end_offsets(topic)))


# ---------------------------------------------------------------------------------------------
# what a run produced, and the checks


@dataclass
class Outcome:
    hash: str
    exec_fills: dict[str, list[str]]  # account -> fill ids on the exec log, in log order
    ledger_fills: dict[str, list[str]]  # account -> fill ids in the ledger
    books: dict[str, tuple[Decimal, dict[str, int]]]  # account -> (cash, positions)
    statuses: Counter[tuple[str, str]]  # (account, coid) -> accepted/rejected events on the log
    n_exec: int  # records on the exec log
    acked: list[SubmitOrder | CancelOrder]


def outcome(bus: Bus, book_ledgers: Any, acked: list[SubmitOrder | CancelOrder]) -> Outcome:
    fills: dict[str, list[str]] = {a: [] for a in ACCOUNTS}
    accepted: Counter[tuple[str, str]] = Counter()
    rejected: Counter[tuple[str, str]] = Counter()
    log = read_topic(bus, OUTPUT_TOPIC)
    for r in log:
        e = r.event
        if isinstance(e, ev.OrderFilled):
            fills[e.account].append(e.fill_id)
        elif isinstance(e, ev.OrderAccepted):
            accepted[(e.account, e.client_order_id)] += 1
        elif isinstance(e, ev.OrderRejected):  # a refused order, or a refused cancel of it
            rejected[(e.account, e.client_order_id)] += 1
    # An order's answer: its acceptances if any (a later refused cancel names it too), else its rejections.
    statuses = Counter({k: accepted[k] or rejected[k] for k in accepted.keys() | rejected.keys()})
    return Outcome(
        output_hash(bus, OUTPUT_TOPIC),
        fills,
        {a: book_ledgers[a].fill_ids for a in ACCOUNTS},
        {a: (book_ledgers[a].cash, book_ledgers[a].positions) for a in ACCOUNTS},
        statuses,
        len(log),
        list(acked),
    )


def check_against(run: Outcome, reference: Outcome, submits: set[tuple[str, str]]) -> None:
    # Every command was acknowledged, and every acknowledged order got exactly one answer.
    assert {(c.account, c.client_order_id) for c in run.acked if isinstance(c, SubmitOrder)} == submits
    assert len(run.acked) == len(reference.acked)
    missing = [k for k in submits if run.statuses[k] == 0]
    doubled = [k for k in submits if run.statuses[k] > 1]
    assert not missing and not doubled, f"orders without an answer: {missing[:5]}; answered twice: {doubled[:5]}"
    assert run.statuses == reference.statuses
    # No fill lost or duplicated, on the log and in the ledgers.
    for a in ACCOUNTS:
        assert len(run.exec_fills[a]) == len(set(run.exec_fills[a])), f"{a}: a fill was published twice"
        assert sorted(run.exec_fills[a]) == sorted(reference.exec_fills[a]), f"{a}: fills differ on the log"
        assert sorted(run.ledger_fills[a]) == sorted(reference.exec_fills[a]), f"{a}: the ledger's fills differ"
    assert run.n_exec == reference.n_exec
    assert run.hash == reference.hash
    assert run.books == reference.books


def ensure_the_input_matters(reference: Outcome, submits: set[tuple[str, str]]) -> None:
    fills = sum(len(f) for f in reference.exec_fills.values())
    traders = sum(1 for f in reference.exec_fills.values() if f)
    assert fills > 100 and traders >= 15, (fills, traders)
    assert sum(reference.statuses.values()) == len(submits)


# ---------------------------------------------------------------------------------------------
# the fault-free run


def fault_free(steps: list[Event]) -> Outcome:
    bus = MemoryBus()
    producer = Producer(bus, steps)
    producer.run()
    assert producer.error is None
    worker = ExecutionWorker(bus, engine_configs(SYMBOLS), partitions=PARTITIONS)
    worker.run()
    portfolio = PortfolioWorker(bus, portfolio_book(SYMBOLS, ACCOUNTS, CASH), partitions=PARTITIONS)
    while portfolio.poll_once():
        pass
    assert portfolio.stats["unknown_account"] == 0
    out = outcome(bus, portfolio.book.ledgers, producer.acked)
    worker.close()
    portfolio.close()
    return out


@pytest.fixture(scope="module")
def reference(session_input: ClassInput) -> Outcome:
    ref = fault_free(session_input.steps)
    ensure_the_input_matters(ref, session_input.submits)
    return ref


def test_the_fault_free_run_is_deterministic(session_input: ClassInput, reference: Outcome) -> None:
    again = fault_free(session_input.steps)
    check_against(again, reference, session_input.submits)


# ---------------------------------------------------------------------------------------------
# (a) embedded: journaled memory bus, workers in threads, abrupt stops


class Crashy:
    """Runs incarnations of one worker in a thread: each of the first ``len(budgets)`` ends
    abruptly after its budget of records (no checkpoint, no commit, no goodbye to the group);
    the last runs until ``finished()`` holds, then checkpoints."""

    def __init__(
        self,
        name: str,
        start: Callable[[], Any],
        step: Callable[[Any, int, bool], int],
        finished: Callable[[Any], bool],
        budgets: list[int],
    ) -> None:
        self.name, self.start, self.step, self.finished, self.budgets = name, start, step, finished, budgets
        self.kills = 0
        self.stats: list[Any] = []  # each incarnation's stats
        self.final: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"crashy-{name}", daemon=True)

    def _run(self) -> None:
        try:
            for budget in self.budgets:
                worker = self._start()
                done = 0
                while done < budget:
                    take = min(100, budget - done)
                    # The last poll of an incarnation is not committed: it dies right after it.
                    done += self.step(worker, take, take == budget - done)
                    if self.finished(worker):
                        raise AssertionError(f"{self.name}: input exhausted before kill {self.kills + 1}")
                self.kills += 1  # dropped as it is: no checkpoint, no commit, no close
                del worker
            worker = self._start()
            deadline = time.monotonic() + 60
            while not self.finished(worker):
                self.step(worker, 200, False)
                assert time.monotonic() < deadline, f"{self.name}: not drained within 60 s"
            worker.checkpoint()
            self.final = worker
        except BaseException as exc:
            self.error = exc

    def _start(self) -> Any:
        deadline = time.monotonic() + 30
        while True:
            try:
                worker = self.start()
                self.stats.append(worker.stats)
                return worker
            except MemberConflictError:  # the dead incarnation's session has not expired yet
                assert time.monotonic() < deadline
                time.sleep(0.05)


def test_embedded_workers_killed_at_random_points(
    tmp_path: Path, session_input: ClassInput, reference: Outcome
) -> None:
    rng = np.random.default_rng(SEED + 1)
    path = tmp_path / "log.duckdb"
    bus = JournaledBus(path)
    producer = Producer(bus, session_input.steps)
    exec_store = DuckDBSnapshotStore(tmp_path / "exec-snapshots.duckdb")
    book_store = DuckDBSnapshotStore(tmp_path / "portfolio-snapshots.duckdb")

    def new_exec() -> ExecutionWorker:
        return ExecutionWorker(
            bus, engine_configs(SYMBOLS), store=exec_store, snapshot_every=SNAPSHOT_EVERY,
            partitions=PARTITIONS, session_timeout_s=SESSION_S,
        )  # fmt: skip

    def exec_step(w: ExecutionWorker, n: int, last: bool) -> int:
        return w.poll_once(n, timeout_s=0.05, commit=not last)

    def exec_finished(w: ExecutionWorker) -> bool:
        return producer.done.is_set() and drained(bus, INPUT_TOPIC, {tuple(tp): o for tp, o in w.offsets.items()})

    exec_crashy = Crashy("exec", new_exec, exec_step, exec_finished, rng.integers(200, 900, KILLS).tolist())

    def new_portfolio() -> PortfolioWorker:
        return PortfolioWorker.resume(
            bus, book_store, lambda: portfolio_book(SYMBOLS, ACCOUNTS, CASH), partitions=PARTITIONS,
            snapshot_every=SNAPSHOT_EVERY, session_timeout_s=SESSION_S,
        )  # fmt: skip

    def portfolio_step(w: PortfolioWorker, n: int, last: bool) -> int:
        return w.poll_once(n, timeout_s=0.05)  # commits only at snapshots anyway

    def portfolio_finished(w: PortfolioWorker) -> bool:
        marks = {tuple(tp): o for tp, o in w.seen.watermarks.items()}
        return exec_crashy.final is not None and drained(bus, EXEC, marks) and drained(bus, MARKET, marks)

    book_crashy = Crashy(
        "portfolio", new_portfolio, portfolio_step, portfolio_finished, rng.integers(60, 250, KILLS).tolist()
    )
    feeder = threading.Thread(target=producer.run, daemon=True)
    for t in (feeder, exec_crashy.thread, book_crashy.thread):
        t.start()
    for t in (feeder, exec_crashy.thread, book_crashy.thread):
        t.join(timeout=120)
        assert not t.is_alive(), f"{t.name} did not finish"
    assert producer.error is None and exec_crashy.error is None and book_crashy.error is None, (
        producer.error, exec_crashy.error, book_crashy.error,
    )  # fmt: skip
    assert exec_crashy.kills == KILLS and book_crashy.kills == KILLS
    # Every restart resumed from a snapshot, and outputs the dead workers had already published
    # were recomputed and matched against the log instead of being published again.
    assert sum(s.restored for s in exec_crashy.stats[1:]) >= KILLS
    assert sum(s.suppressed for s in exec_crashy.stats) > 0
    portfolio: PortfolioWorker = book_crashy.final
    assert portfolio.stats["unknown_account"] == 0
    check_against(outcome(bus, portfolio.book.ledgers, producer.acked), reference, session_input.submits)

    # The process restarts: the same log, commits and snapshots come back from disk.
    expected = {t: [bus.read(t, p, 0, 100_000) for p in range(n)] for t, n in bus.topics().items()}
    exec_crashy.final.close()
    portfolio.close()
    bus.close()
    again = JournaledBus(path)
    assert {t: [again.read(t, p, 0, 100_000) for p in range(n)] for t, n in again.topics().items()} == expected
    resumed = PortfolioWorker.resume(again, book_store, lambda: portfolio_book(SYMBOLS, ACCOUNTS, CASH))
    assert resumed.poll_once() == 0  # everything was covered by the final checkpoint
    assert {a: (resumed.book.ledgers[a].cash, resumed.book.ledgers[a].positions) for a in ACCOUNTS} == reference.books
    resumed.close()
    again.close()
    exec_store.close()
    book_store.close()


# ---------------------------------------------------------------------------------------------
# (b) Redis: worker processes killed with SIGKILL


class WorkerProcess:
    """A ``vtrade worker`` subprocess; its progress lines are read by a thread."""

    def __init__(self, kind: str, url: str, data_dir: Path, extra: list[str]) -> None:
        args = [sys.executable, "-m", "vtrade.cli", "worker", kind, "--bus", url, "--data-dir", str(data_dir),
                "--symbols", ",".join(SYMBOLS), "--snapshot-every", str(SNAPSHOT_EVERY),
                "--progress", *extra]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
        self.progress = 0
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self.reader.start()

    def _read(self, out: IO[str] | None) -> None:
        assert out is not None
        for line in out:
            self.lines.append(line.rstrip())
            parts = line.split()
            if len(parts) == 3 and parts[1] == "progress":
                self.progress = int(parts[2])

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.reader.join(timeout=30)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.reader.join(timeout=30)
        return code


class Background:
    """``fn(*args)`` in a daemon thread; :meth:`join` re-raises what it raised, so a condition
    that timed out in the thread (``eventually``) fails the test."""

    def __init__(self, fn: Callable[..., None], *args: Any) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn, *args), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as exc:
            self.error = exc

    def join(self, timeout_s: float) -> None:
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), f"{self.thread.name} did not finish within {timeout_s:.0f} s"
        if self.error is not None:
            raise self.error


@pytest.fixture
def spawn() -> Iterator[Callable[[str, str, Path, list[str]], WorkerProcess]]:
    """Starts worker processes; whatever still runs when the test ends (it failed) is killed."""
    started: list[WorkerProcess] = []

    def start(kind: str, url: str, data_dir: Path, extra: list[str]) -> WorkerProcess:
        started.append(WorkerProcess(kind, url, data_dir, extra))
        return started[-1]

    yield start
    for p in started:
        if p.proc.poll() is None:
            p.kill()
    for p in started:  # shown if the test failed
        said = [line for line in p.lines if " progress " not in line]
        print(f"{p.proc.args[4]} worker: exit {p.proc.returncode}, progress {p.progress}", *said[-10:], sep="\n  ")


@pytest.fixture(params=["redis", "kafka"])
def worker_bus(request: pytest.FixtureRequest) -> Iterator[tuple[Bus, str, list[str]]]:
    """A bus on a real Redis or Kafka-protocol broker (a fresh namespace), the URL that worker
    processes open it with, and their session flags."""
    ns = f"vtcrash-{uuid.uuid4().hex[:10]}"
    if request.param == "redis":
        url = f"{request.getfixturevalue('redis_url')}?namespace={ns}"
        session = SESSION_S
    else:  # the broker's session: how soon a killed process's partitions move on (a join takes ~half)
        url = f"{request.getfixturevalue('kafka_url')}?namespace={ns}&session_timeout_ms={KAFKA_SESSION_MS}"
        session = KAFKA_POLL_INTERVAL_S
    bus = open_bus(url)
    yield bus, url, ["--session-timeout", str(session)]
    bus.purge()  # type: ignore[attr-defined]
    bus.close()


def test_worker_processes_killed_with_sigkill_and_an_exec_worker_joining(
    tmp_path: Path,
    worker_bus: tuple[Bus, str, list[str]],
    session_input: ClassInput,
    reference: Outcome,
    eventually: Callable[..., None],
    spawn: Callable[[str, str, Path, list[str]], WorkerProcess],
) -> None:
    bus, url, exec_args = worker_bus
    rng = np.random.default_rng(SEED + 2)
    producer = Producer(bus, session_input.steps)
    feeder = threading.Thread(target=producer.run, daemon=True)
    feeder.start()
    book_args = [*exec_args, "--accounts", ",".join(ACCOUNTS), "--cash", str(CASH)]
    n_out = reference.n_exec
    # Kill points: the exec log passing a seeded size, the portfolio worker's progress passing one.
    exec_marks = sorted(rng.integers(n_out // 10, n_out * 7 // 10, KILLS).tolist())
    # Small enough that three incarnations never need more than the ~840 records there are.
    book_marks = rng.integers(40, 200, KILLS).tolist()
    # A second exec worker joins when the exec log passes a seeded size, and is killed once it
    # has polled a seeded number of records: below what the partitions it takes hold (it replays
    # them from offset 0, having no snapshot), so it always gets there.
    join_mark, joiner_mark = int(rng.integers(n_out // 10, n_out // 2)), int(rng.integers(100, 800))
    procs = {
        "exec": spawn("exec", url, tmp_path / "exec", exec_args),
        "portfolio": spawn("portfolio", url, tmp_path / "portfolio", book_args),
    }

    def exec_grown(mark: int) -> Callable[[], bool]:
        # ...and the current incarnation is at work (not killed while it starts up).
        return lambda: sum(bus.end_offsets(OUTPUT_TOPIC)) >= mark and procs["exec"].progress > 0

    def book_progressed(proc: WorkerProcess, mark: int) -> Callable[[], bool]:
        return lambda: proc.progress >= mark or proc.proc.poll() is not None

    def killer(kind: str, conditions: list[Callable[[], Callable[[], bool]]]) -> None:
        for make in conditions:
            eventually(make(), timeout_s=60, what=f"{kind} progress before a kill")
            assert procs[kind].proc.poll() is None, procs[kind].lines[-20:]
            procs[kind].kill()
            procs[kind] = spawn(kind, url, tmp_path / kind, exec_args if kind == "exec" else book_args)

    def joiner() -> None:
        eventually(exec_grown(join_mark), timeout_s=60, what="the exec log before the second worker joins")
        procs["joiner"] = spawn("exec", url, tmp_path / "exec-joiner", exec_args)
        # It got partitions in the rebalance (it polls nothing otherwise), then dies with them:
        # they move back to the first worker.
        eventually(lambda: procs["joiner"].progress >= joiner_mark, timeout_s=60, what="the joiner's progress")
        procs["joiner"].kill()

    # Exec kills wait on the log; each portfolio kill waits for the current incarnation's progress.
    exec_killer = Background(killer, "exec", [lambda m=m: exec_grown(m) for m in exec_marks])
    joining = Background(joiner)
    killer("portfolio", [lambda m=m: book_progressed(procs["portfolio"], m) for m in book_marks])
    exec_killer.join(timeout_s=120)
    joining.join(timeout_s=120)
    assert procs["joiner"].proc.returncode == -signal.SIGKILL
    feeder.join(timeout=60)
    assert producer.error is None
    # Everything the fault-free run published arrives, then the workers stop cleanly (SIGTERM).
    eventually(lambda: sum(bus.end_offsets(OUTPUT_TOPIC)) >= n_out, timeout_s=60, what="every exec output")
    assert procs["exec"].stop() == 0, procs["exec"].lines[-20:]
    eventually(lambda: procs["portfolio"].progress >= 1, timeout_s=60, what="the last portfolio worker to start")
    assert procs["portfolio"].stop() == 0, procs["portfolio"].lines[-20:]
    # One more restart, in this process: the SIGTERM checkpoint plus the log after it give the
    # books (whatever the stopped worker had not folded yet is replayed here).
    store = DuckDBSnapshotStore(tmp_path / "portfolio" / "portfolio-snapshots.duckdb")
    portfolio = PortfolioWorker.resume(bus, store, lambda: portfolio_book(SYMBOLS, ACCOUNTS, CASH))
    while portfolio.poll_once():
        pass
    assert portfolio.stats["unknown_account"] == 0
    check_against(outcome(bus, portfolio.book.ledgers, producer.acked), reference, session_input.submits)
    portfolio.close()
    store.close()
