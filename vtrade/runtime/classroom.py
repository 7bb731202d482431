"""Classes served: the class log, one market per class, and who may do what (DESIGN.md §1, §8).

:class:`Classroom` is the imperative shell around the pure :mod:`vtrade.classroom` domain:

- **The class log.** Every class is its events on the ``class`` topic (:class:`ClassBook`);
  with a data dir the topic is journaled there, so classes, rosters and the clock's state
  survive a restart (a SIGKILL included).
- **One market per class.** When trading starts, the class gets its own :class:`LiveMarket`
  built from its locked rules (market, realism, fees, cash or margin, limits), kept in its own
  folder of the data dir. The market is a *consumer* of the class log: :meth:`Classroom._sync`
  reconciles it with the class's state after every class event and at start-up — accounts for
  joined and reset students, the clock running or paused at the class's speed, and the
  teacher's market events entered into the market's own journaled log by the class event's
  id (so a replay after a restart applies each exactly once, at the simulated time it had).
- **Identity.** The teacher proves who they are with the teacher's secret (kept in the data
  dir, or given); a student with a signed token handed out at joining (an HMAC under the
  server's secret over the class, the student and 96 random bits). A :class:`StudentDesk` is
  bound to one student's current account: no method takes an account name, so no call can
  reach another student's account or another class. Joining is rate-limited per address
  (:class:`JoinLimiter`), so nobody guesses a join code.
- **The copilot switch.** A class's copilot is on unless its teacher switches it off (an exam):
  a class event like the others (:class:`~vtrade.classroom.SetCopilot`). While it is off a
  student's signed copilot intents are refused (and audited) and the copilot service answers
  nothing; the teacher reads what was asked and proposed in :meth:`TeacherDesk.prompt_log`.

>>> room = Classroom()                       # ephemeral: nothing kept on disk
>>> teacher = room.teacher(room.teacher_secret)
>>> cid = teacher.create_class("Econ 101", ClassRules(market="synthetic", starting_cash=50_000))
>>> teacher.open_registration(cid)
>>> ada = room.join(teacher.join_code(cid), "Ada")
>>> room.student(ada.token).class_name
'Econ 101'
>>> room.close()
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import vtrade.classroom as vc
import vtrade.game.inputs as gi
from vtrade.classroom import ClassroomError, ClassRules, ClassState, Phase
from vtrade.classroom.reports import Debrief, Statement, StudentRecord, debrief, grade_sheet, statement
from vtrade.core.events import Event
from vtrade.core.instruments import Instrument
from vtrade.core.numbers import Number
from vtrade.core.tokens import STUDENT, TEACHER, sign_token, verify_token
from vtrade.game.events import GameEvent
from vtrade.game.leaderboard import EmbeddedLeaderboards, Leaderboards
from vtrade.runtime.bus import Bus, open_bus
from vtrade.runtime.classes import ClassBook, UnknownClassError
from vtrade.runtime.datadir import prepare_data_dir, server_secret
from vtrade.runtime.execution_worker import DuckDBSnapshotStore
from vtrade.runtime.exports import market_marks, student_record, write_csv, write_excel
from vtrade.runtime.game_worker import GAME_OUT, RANKED, GameWorker
from vtrade.runtime.live import CancelOutcome, LiveConfig, LiveMarket, SubmitOutcome
from vtrade.runtime.live_copilot import COPILOT_COLUMNS, SignedOutcome

__all__ = [
    "TEACHER_ID",
    "Classroom",
    "JoinLimiter",
    "StudentDesk",
    "StudentPass",
    "TeacherDesk",
    "class_market_config",
]

log = logging.getLogger(__name__)

#: The one teacher of a server (a deployment with several teachers runs a server each, or puts
#: Panel's OAuth in front and maps each login to a teacher id: see the README).
TEACHER_ID = "teacher"
TEACHER_SECRET_FILE = "teacher-secret"
#: What a student's signed copilot intent is told while the class's copilot is switched off.
COPILOT_OFF = "Your teacher has switched the copilot off for this class: place orders yourself"
#: What a class's returns are measured against, where its market lists it.
BENCHMARK = "SPY"
#: The synthetic class market: agent order flow on six well-known stocks (their real sectors
#: and their closes on the configured day), seeded by the class's rules.
SYNTHETIC_SYMBOLS = ("AAPL", "MSFT", "AMZN", "JPM", "XOM", "JNJ")


def class_market_config(rules: ClassRules, *, speed: float = 1.0, **overrides: Any) -> LiveConfig:
    """The :class:`LiveConfig` of a class's market: its market, seed, realism, fees and margin
    rates from ``rules`` (the class's locked economics). ``overrides`` are for tests and
    benchmarks (``burn_in``, ``history``).

    >>> class_market_config(ClassRules(market="crypto", realism="L1")).crypto
    True
    """
    base: dict[str, Any] = {
        "speed": speed, "seed": rules.seed, "realism": rules.realism, "fees": rules.fee_model(),
        "margin": rules.margin_policy(), "default_cash": int(rules.starting_cash), "bots": True,
    }  # fmt: skip
    if rules.market == "universe":
        # Students are the class: no simulated members in its rankings (and none to pay for).
        base |= {"symbols": (), "universe": True, "universe_start": rules.replay_start, "bots": False}
    elif rules.market == "crypto":
        base |= {"symbols": (), "crypto": True}
    else:
        base |= {"symbols": SYNTHETIC_SYMBOLS}
    base["account_feed"] = True  # the class's game worker follows its students' accounts
    return LiveConfig(**(base | overrides))


# ---------------------------------------------------------------------------- identity
@dataclass(frozen=True, slots=True)
class StudentPass:
    """What a student gets at joining: who they are in the class, and the ``token`` that lets
    them back in (a browser keeps it in a cookie; a personal link carries it)."""

    class_id: str
    student_id: str
    display_name: str
    token: str


class JoinLimiter:
    """At most ``attempts`` join attempts per address per ``window`` seconds (a sliding
    window): with 75-bit codes and 10 tries a minute, guessing a code takes longer than the
    universe has existed. ``clock`` is injectable so a test needs no waiting.

    >>> t = [0.0]; limit = JoinLimiter(attempts=2, window=60, clock=lambda: t[0])
    >>> limit.check("10.0.0.1"); limit.check("10.0.0.1")
    >>> limit.check("10.0.0.1")
    Traceback (most recent call last):
    ...
    vtrade.classroom.errors.ClassroomError: Too many attempts to join from your address: wait 60 s and try again
    >>> t[0] = 61.0; limit.check("10.0.0.1")      # the window moved on
    """

    def __init__(
        self, attempts: int = 10, window: float = 60.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if attempts < 1 or window <= 0:
            raise ValueError("a join limit needs at least one attempt in a positive window")
        self.attempts, self.window, self._clock = attempts, window, clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        """Count an attempt from ``address``, or refuse it (``rate_limited``) when it is one too many."""
        now = self._clock()
        with self._lock:
            seen = self._seen.setdefault(address, deque())
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            if len(seen) >= self.attempts:
                wait = math.ceil(seen[0] + self.window - now)
                says = f"Too many attempts to join from your address: wait {wait} s and try again"
                raise ClassroomError("rate_limited", says)
            seen.append(now)
            if len(self._seen) > 100_000:  # a scan from many addresses must not grow memory forever
                self._seen = {a: q for a, q in self._seen.items() if q and q[-1] > now - self.window}


def _teacher_secret(root: Path | None, given: str | None) -> str:
    if given is not None:
        if not isinstance(given, str) or len(given) < 16:
            raise ValueError("a teacher secret must be text of at least 16 characters")
        return given
    if root is None:
        return secrets.token_urlsafe(24)
    path = root / TEACHER_SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(24) + "\n")
            out.flush()
            os.fsync(out.fileno())
    secret = path.read_text().strip()
    if len(secret) < 16:
        raise ValueError(f"{path} holds no usable teacher secret (delete it and restart for a new one)")
    return secret


# ---------------------------------------------------------------------------- the service
class Classroom:
    """Every class of one server: see the module notes.

    ``data_dir``: keep classes and their markets there (None: in memory, gone at exit).
    ``teacher_secret``: the teacher's secret (default: made once and kept in the data dir,
    ``$VTRADE_TEACHER_SECRET`` if set). ``now``: the wall clock that stamps commands (UTC ns).
    ``market_overrides``: passed to every class's :func:`class_market_config` (tests).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        teacher_secret: str | None = None,
        now: Callable[[], int] = time.time_ns,
        limiter: JoinLimiter | None = None,
        market_overrides: dict[str, Any] | None = None,
        boards: Leaderboards | None = None,
        game_poll_s: float | None = 0.5,
    ) -> None:
        self.root = prepare_data_dir(data_dir) if data_dir is not None else None
        self._now = now
        self.limiter = limiter or JoinLimiter()
        self._overrides = dict(market_overrides or {})
        self._key = server_secret(self.root) if self.root is not None else secrets.token_bytes(32)
        self.teacher_secret = _teacher_secret(self.root, teacher_secret or os.environ.get("VTRADE_TEACHER_SECRET"))
        self.bus: Bus = (open_bus("memory://", journal=self.root / "classes.duckdb") if self.root is not None
                         else open_bus("memory://"))  # fmt: skip
        self.book = ClassBook(self.bus)
        # The game: one worker per class on this log, the leaderboards (Redis Sorted Sets when
        # given, else the embedded structure) and the workers' snapshots beside the classes.
        self.boards: Leaderboards = boards if boards is not None else EmbeddedLeaderboards()
        # Every class's game worker writes the global boards: one lock for all of them (the game
        # thread and request threads poll different classes at once).
        self._games_lock = threading.RLock()
        self._game_snapshots = (DuckDBSnapshotStore(str(self.root / "game-snapshots.duckdb"))
                                if self.root is not None else None)  # fmt: skip
        self._games: dict[str, GameWorker] = {}
        self._markets: dict[str, LiveMarket] = {}
        self._applied: dict[str, int] = {}  # per class: how many market events its market has taken
        # Per class: the leaderboard with what it was built from (the class's state, its market
        # and the market's epoch). Every student's page and the projector show the same board:
        # built once while neither the class nor its market changes, not once per page.
        self._boards: dict[str, tuple[ClassState, LiveMarket | None, int, pd.DataFrame]] = {}
        self._lock = threading.RLock()
        self.last_seen: dict[tuple[str, str], int] = {}  # (class, student) -> wall ns of their last request
        for cid in self.book.classes():
            self._sync(cid)
        self._game_stop = threading.Event()
        self._game_thread: threading.Thread | None = None
        if game_poll_s is not None:
            # The game follows the markets on its own: a class's missions move whether anyone looks.
            self._game_thread = threading.Thread(target=self._run_games, args=(game_poll_s,), daemon=True,
                                                 name="vtrade-game")  # fmt: skip
            self._game_thread.start()

    def _run_games(self, every_s: float) -> None:
        while not self._game_stop.wait(every_s):
            for game in list(self._games.values()):
                try:
                    game.poll_once()
                except Exception:  # one class's bad state must not stop every class's game
                    log.exception("game worker of class %s failed", game.class_id)

    def game(self, class_id: str) -> GameWorker:
        """The class's game worker (brought up to date)."""
        with self._lock:
            self.state(class_id)  # an unknown class: the usual refusal
            game = self._games.get(class_id)
            if game is None:
                self._sync(class_id)
                game = self._games[class_id]
        game.poll_once()
        return game

    # ------------------------------------------------------------------ who
    def teacher(self, secret: object) -> TeacherDesk:
        """The teacher's desk, for the right secret; a :class:`ClassroomError` (``not_teacher``)
        otherwise, changing nothing."""
        ok = isinstance(secret, str) and hmac.compare_digest(secret.encode(), self.teacher_secret.encode())
        if not ok:
            raise ClassroomError("not_teacher", "That is not the teacher's secret: teacher pages need it")
        return TeacherDesk(self)

    def teacher_token(self, secret: object) -> str:
        """A signed token that stands for the teacher's secret (a browser keeps it in an httponly
        cookie, so the secret is typed once and never stored in the browser). It names a hash
        of the secret: a new secret retires every token made under the old one."""
        self.teacher(secret)  # the right secret, or the refusal
        return sign_token(f"{TEACHER_ID}/{self._secret_id()}/{secrets.token_hex(12)}", self._key, TEACHER)

    def teacher_session(self, token: object) -> TeacherDesk:
        """The teacher's desk for a token from :meth:`teacher_token` (``not_teacher`` otherwise)."""
        value = verify_token(token, self._key, TEACHER)
        parts = value.split("/") if value else []
        if len(parts) != 3 or parts[0] != TEACHER_ID or not hmac.compare_digest(parts[1], self._secret_id()):
            raise ClassroomError("not_teacher", "Teacher pages need the teacher's secret: sign in again")
        return TeacherDesk(self)

    def _secret_id(self) -> str:
        return hashlib.sha256(self.teacher_secret.encode()).hexdigest()[:16]

    def join(self, code: object, display_name: object, *, address: str = "local") -> StudentPass:
        """Join the class whose code is ``code`` as ``display_name``: a new student with an
        account in that class (opened at once if it trades). Rate-limited per ``address``;
        a refusal (``wrong_code``, ``name_taken``, ``registration_closed``, ``rate_limited``,
        ``bad_text``) changes nothing."""
        self.limiter.check(address)
        with self._lock:
            self.book.refresh()
            cid = self._class_of_code(code)
            (joined,) = self._submit(cid, vc.Join(self._now(), code, display_name))  # type: ignore[arg-type]
        assert isinstance(joined, vc.StudentJoined)
        nonce = secrets.token_hex(12)  # 96 bits: a token is unguessable even to someone who knows the ids
        token = sign_token(f"{cid}/{joined.student_id}/{nonce}", self._key, STUDENT)
        return StudentPass(cid, joined.student_id, joined.display_name, token)

    def student(self, token: object) -> StudentDesk:
        """The desk of the student ``token`` names (a removed student, a forged or another
        server's token: ``bad_token``)."""
        value = verify_token(token, self._key, STUDENT)
        parts = value.split("/") if value else []
        if len(parts) != 3:
            raise ClassroomError("bad_token", "This sign-in is not valid for any class here: join with your "
                                              "class's code, or ask your teacher for your personal link")  # fmt: skip
        cid, sid, _ = parts
        state = self.state(cid)
        student = state.student(sid)
        if student is None or student.removed:
            raise ClassroomError("bad_token", "Your teacher removed you from this class")
        return StudentDesk(self, cid, sid)

    # ------------------------------------------------------------------ reads
    def classes(self) -> list[str]:
        with self._lock:
            self.book.refresh()
            return self.book.classes()

    def state(self, class_id: str) -> ClassState:
        with self._lock:
            try:
                return self.book.state(class_id)
            except UnknownClassError:
                raise ClassroomError("unknown_class", f"There is no class {class_id!r}") from None

    def market(self, class_id: str) -> LiveMarket | None:
        """The class's market (None until trading starts)."""
        with self._lock:
            return self._markets.get(class_id)

    def copilot_enabled(self, class_id: str) -> bool:
        """Whether the class's copilot is on (the teacher switches it off for an exam)."""
        return self.state(class_id).copilot

    def prompt_log(self, class_id: str) -> pd.DataFrame:
        """The class's copilot audit trail: every question, answer, proposal, confirmation,
        execution and refusal of its students' accounts (reset-away and removed ones included),
        in log order, as ``LiveMarket.copilot_log`` with ``student_id`` and ``name`` first."""
        state = self.state(class_id)
        who = {a: s for s in state.students for a in s.accounts}
        market = self.market(class_id)
        log = market.copilot_log() if market is not None else pd.DataFrame(columns=COPILOT_COLUMNS)
        log = log[log["account"].isin(list(who))].reset_index(drop=True)
        log.insert(0, "name", [who[a].display_name for a in log["account"]])
        log.insert(0, "student_id", [who[a].student_id for a in log["account"]])
        return log

    def _navs(self, state: ClassState, accounts: Iterable[str]) -> dict[str, float]:
        """NAVs now of ``accounts`` (the starting cash for an account the market has not opened)."""
        market = self.market(state.class_id)
        names = [a for a in accounts if market is not None and market.has_account(a)]
        navs = market.portfolio_values(names) if market is not None else {}
        cash = float(state.rules.starting_cash)
        return {a: navs.get(a, cash) for a in accounts}

    def leaderboard(self, class_id: str) -> pd.DataFrame:
        """The class's students ranked by NAV: display name, NAV, return % (what a class may
        see of each other; no positions). Shared by every caller: read-only."""
        state = self.state(class_id)
        market = self.market(class_id)
        epoch = market.epoch() if market is not None else -1  # before the NAVs: a change meanwhile rebuilds
        cached = self._boards.get(class_id)
        if cached is not None and cached[0] is state and cached[1] is market and cached[2] == epoch:
            return cached[3]
        navs = self._navs(state, [s.account_id for s in state.active])
        df = pd.DataFrame({"student_id": [s.student_id for s in state.active],
                           "name": [s.display_name for s in state.active],
                           "nav": [navs[s.account_id] for s in state.active]})  # fmt: skip
        df["return_pct"] = (df.nav / float(state.rules.starting_cash) - 1) * 100
        df = df.sort_values(["nav", "name"], ascending=[False, True], kind="stable").reset_index(drop=True)
        df.insert(0, "rank", range(1, len(df) + 1))
        self._boards[class_id] = (state, market, epoch, df)
        return df

    def standings(self, class_id: str, metric: str = "composite", *, n: int = 10, around: str | None = None,
                  k: int = 3, window: str | None = None) -> pd.DataFrame:  # fmt: skip
        """A class leaderboard on ``metric`` (see :data:`~vtrade.runtime.game_worker.RANKED`):
        rank (1 = top), name, score; the top ``n``, or ``k`` either side of account ``around``;
        ``window="day"`` or ``"week"`` for the simulated day or week the class has reached."""
        if window not in (None, "day", "week"):
            raise ClassroomError("out_of_range", f"Unknown window {window!r}: choose 'day', 'week' or none")
        if metric not in RANKED:
            raise ClassroomError("out_of_range", f"Unknown ranking {metric!r}: choose one of {', '.join(RANKED)}")
        state = self.state(class_id)
        names = {a: s.display_name for s in state.students for a in s.accounts}
        ranked = self.game(class_id).standings(metric, n=n, around=around, k=k, window=window)
        rows = [{"rank": st.rank + 1, "name": names.get(st.member, st.member), "score": st.score,
                 "account": st.member} for st in ranked]  # fmt: skip
        return pd.DataFrame(rows, columns=["rank", "name", "score", "account"])

    def roster(self, class_id: str) -> pd.DataFrame:
        """One row per student (removed ones flagged): name, joined, last seen, NAV, return %,
        trades and rule refusals — the teacher's roster and its CSV export."""
        state = self.state(class_id)
        market = self.market(class_id)
        cash = float(state.rules.starting_cash)
        navs = self._navs(state, [s.account_id for s in state.students])
        rows = []
        for s in state.students:
            trades, refusals = 0, 0
            if market is not None and market.has_account(s.account_id):
                trades, refusals = market.order_counts(s.account_id)
            seen = self.last_seen.get((class_id, s.student_id))
            nav = navs[s.account_id]
            rows.append({
                "student_id": s.student_id, "name": s.display_name,
                "joined": pd.Timestamp(s.joined_ts, unit="ns", tz="UTC"),
                "last_seen": pd.Timestamp(seen, unit="ns", tz="UTC") if seen else pd.NaT,
                "nav": nav, "return_pct": (nav / cash - 1) * 100, "trades": trades, "refusals": refusals,
                "resets": s.resets, "removed": s.removed,
            })  # fmt: skip
        columns = ["student_id", "name", "joined", "last_seen", "nav", "return_pct", "trades", "refusals", "resets",
                   "removed"]  # fmt: skip
        return pd.DataFrame(rows, columns=columns)

    # ------------------------------------------------------------------ reports
    def record(self, class_id: str, student_id: str) -> StudentRecord:
        """One student's :class:`~vtrade.classroom.reports.StudentRecord` (their current account)."""
        state = self.state(class_id)
        student = state.student(student_id)
        if student is None:
            raise ClassroomError("unknown_student", f"There is no student {student_id!r} in this class")
        market = self.market(class_id)
        if market is None or not market.has_account(student.account_id):
            raise ClassroomError("bad_transition", "Reports start when trading starts")
        return student_record(market, student_id=student_id, display_name=student.display_name,
                              account_id=student.account_id)  # fmt: skip

    def benchmark(self, class_id: str) -> tuple[str, pd.DataFrame]:
        """What the class's returns are measured against: SPY where the market lists it, else the
        class's first symbol (a synthetic or crypto market has no index)."""
        market = self.market(class_id)
        if market is None:
            raise ClassroomError("bad_transition", "Reports start when trading starts")
        symbols = market.symbols()
        name = BENCHMARK if BENCHMARK in symbols else symbols[0]
        return name, market.prices(name)

    def _sectors(self, class_id: str) -> dict[str, str]:
        # Every listed symbol's sector: a position sold out still counts in its own sector.
        market = self.market(class_id)
        assert market is not None
        return {i.symbol: i.sector for i in market.instruments() if i.sector}

    def _marks(self, class_id: str, records: Iterable[StudentRecord]) -> pd.DataFrame:
        market = self.market(class_id)
        assert market is not None
        traded = {s for r in records for s in r.fills.symbol}
        return market_marks(market, sorted(traded))

    def statement(self, class_id: str, student_id: str) -> Statement:
        """One student's statement: positions, transactions with receipts and notes, P&L, risk."""
        return statement(self.record(class_id, student_id), self._sectors(class_id))

    def debrief(self, class_id: str, student_id: str) -> Debrief:
        """The automatic debrief of one student: return vs the benchmark, sector P&L,
        turnover and costs, the disposition effect, concentration, and plain-text lines."""
        rec = self.record(class_id, student_id)
        name, bench = self.benchmark(class_id)
        return debrief(rec, bench, self._sectors(class_id), marks=self._marks(class_id, [rec]), benchmark_name=name)

    def grade_sheet(self, class_id: str) -> pd.DataFrame:
        """One row per active student, best return first (:func:`~vtrade.classroom.reports.grade_sheet`)."""
        state = self.state(class_id)
        records = [self.record(class_id, s.student_id) for s in state.active]
        _, bench = self.benchmark(class_id)
        return grade_sheet(records, bench, sectors=self._sectors(class_id), marks=self._marks(class_id, records))

    def export(self, class_id: str, folder: str | os.PathLike[str]) -> dict[str, Path]:
        """Write the class's roster and grade sheet as CSV and one Excel workbook (roster,
        grades, and each student's transactions) into ``folder`` (made if missing); every text cell that a
        spreadsheet would run as a formula is neutralised. Returns the paths by name."""
        roster = self.roster(class_id)
        grades = self.grade_sheet(class_id)
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)  # "export to ~/grades/econ" makes the folder
        sheets = {"Roster": roster, "Grades": grades}
        for s in self.state(class_id).active:
            sheets[f"{s.student_id} trades"[:31]] = self.statement(class_id, s.student_id).transactions
        return {
            "roster_csv": write_csv(roster, target / "roster.csv"),
            "grades_csv": write_csv(grades, target / "grades.csv"),
            "workbook": write_excel(sheets, target / "class.xlsx"),
        }

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop every class's market (checkpointing it) and let go of the data dir."""
        self._game_stop.set()
        if self._game_thread is not None:
            self._game_thread.join(timeout=10)
        with self._lock:
            for game in self._games.values():
                game.poll_once()
                game.close()
            self._games.clear()
            for market in self._markets.values():
                market.close()
            self._markets.clear()
            if self._game_snapshots is not None:
                self._game_snapshots.close()
            close = getattr(self.bus, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> Classroom:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the shell
    def _class_of_code(self, code: object) -> str:
        if isinstance(code, str):
            for cid in self.book.classes():
                if vc.codes_match(code, self.book.state(cid).join_code):
                    return cid
        vc.normalize_code(code)  # a malformed code gets the message saying what a code looks like
        raise ClassroomError("wrong_code", "That join code is not right; check it with your teacher")

    def _submit(self, class_id: str, command: vc.Command) -> list[vc.ClassEvent]:
        with self._lock:
            events = self.book.submit(class_id, command)
            if events:
                self._sync(class_id)
            return events

    def _sync(self, class_id: str) -> None:
        """Bring the class's market in line with the class's state (idempotent: at start-up it
        rebuilds, on a live event it applies just what changed)."""
        state = self.book.state(class_id)
        game = self._games.get(class_id)
        if game is None:
            game = self._games[class_id] = GameWorker(self.bus, class_id, self.boards, snapshots=self._game_snapshots,
                                                      lock=self._games_lock)  # fmt: skip
        if state.phase in (Phase.DRAFT, Phase.REGISTRATION):
            return
        market = self._markets.get(class_id)
        if market is None:
            market = self._markets[class_id] = self._open_market(state)
            game.attach(market._log.bus)
        rules = state.rules
        for s in state.students:
            for account in s.accounts:
                if not market.has_account(account):
                    market.open_account(account, rules.starting_cash, account_kind=rules.kind)
            old = s.accounts[:-1] if not s.removed else s.accounts
            for account in old:  # reset-away or removed: nothing of theirs keeps working
                market.close_session(account)
        market.set_limits(rules.session_limits(market.instruments()))
        for i, e in enumerate(state.market_events[self._applied.get(class_id, 0) :], self._applied.get(class_id, 0)):
            self._apply_market_event(market, f"{class_id}/m{i}", e)
        self._applied[class_id] = len(state.market_events)
        market.set_speed(state.speed)
        if state.phase is Phase.TRADING and state.clock_running:
            market.start()
        elif market.running:
            market.stop()

    def _open_market(self, state: ClassState) -> LiveMarket:
        cfg = class_market_config(state.rules, speed=state.speed, **self._overrides)
        folder = self.root / "classes" / state.class_id if self.root is not None else None
        return LiveMarket(cfg, data_dir=folder)

    @staticmethod
    def _apply_market_event(market: LiveMarket, id: str, e: vc.MarketEvent) -> None:
        match e:
            case vc.MarketShocked(symbols=symbols, pct=pct):
                market.shock(symbols, Decimal(pct), id=id)
            case vc.TradingHalted(symbol=symbol, reason=reason):
                market.halt(symbol, reason, id=id)
            case vc.TradingResumed(symbol=symbol):
                market.resume_trading(symbol, id=id)
            case vc.LiquidityDrained(symbols=symbols, factor=factor, minutes=minutes):
                market.drought(symbols, Decimal(factor), minutes * 60 * 10**9, id=id)


def _command_id() -> str:
    # A command's input id: unique, so a retry of the same command is a new command.
    return f"cmd/{secrets.token_hex(8)}"


# ---------------------------------------------------------------------------- desks
class TeacherDesk:
    """What the teacher does (got from :meth:`Classroom.teacher`; every method checks nothing
    more about who: the secret was the proof). Refusals are :class:`ClassroomError` and change
    nothing."""

    def __init__(self, room: Classroom) -> None:
        self._room = room

    def _do(self, class_id: str, command: vc.Command) -> None:
        self._room._submit(class_id, command)

    @property
    def _ts(self) -> int:
        return self._room._now()

    def create_class(self, name: str, rules: ClassRules | None = None) -> str:
        """A new class in draft with a fresh join code; returns its id."""
        cid = f"c{secrets.token_hex(4)}"
        self._do(cid, vc.CreateClass(self._ts, cid, TEACHER_ID, name, vc.new_join_code(), rules or ClassRules()))
        return cid

    def join_code(self, class_id: str) -> str:
        return self._room.state(class_id).join_code

    def change_settings(self, class_id: str, **changes: Any) -> None:
        """Change rules by name (``max_trades_per_day=5``); economics lock once trading starts."""
        try:
            patch = vc.RulesPatch(**changes)
        except TypeError as exc:
            raise ClassroomError("out_of_range", f"Unknown setting: {exc}") from None
        self._do(class_id, vc.ChangeSettings(self._ts, TEACHER_ID, patch))

    def new_join_code(self, class_id: str) -> str:
        self._do(class_id, vc.ChangeJoinCode(self._ts, TEACHER_ID, vc.new_join_code()))
        return self.join_code(class_id)

    def open_registration(self, class_id: str) -> None:
        self._do(class_id, vc.OpenRegistration(self._ts, TEACHER_ID))

    def start(self, class_id: str) -> None:
        """Start trading: the class's market opens and its clock runs."""
        self._do(class_id, vc.StartTrading(self._ts, TEACHER_ID))

    def pause(self, class_id: str) -> None:
        self._do(class_id, vc.PauseClock(self._ts, TEACHER_ID))

    def resume(self, class_id: str) -> None:
        self._do(class_id, vc.ResumeClock(self._ts, TEACHER_ID))

    def set_speed(self, class_id: str, speed: float) -> None:
        self._do(class_id, vc.SetSpeed(self._ts, TEACHER_ID, speed))

    def set_copilot(self, class_id: str, enabled: bool) -> None:
        """Switch the class's copilot on or off (off for an exam: it answers nothing and no
        copilot proposal executes, not even one signed before). Switching it to what it is
        already changes nothing."""
        self._do(class_id, vc.SetCopilot(self._ts, TEACHER_ID, enabled))

    def copilot_enabled(self, class_id: str) -> bool:
        return self._room.copilot_enabled(class_id)

    def prompt_log(self, class_id: str) -> pd.DataFrame:
        """What the class's students asked the copilot, what it answered and proposed, what they
        confirmed and what executed or was refused (:meth:`Classroom.prompt_log`)."""
        return self._room.prompt_log(class_id)

    def freeze(self, class_id: str) -> None:
        self._do(class_id, vc.Freeze(self._ts, TEACHER_ID))

    def archive(self, class_id: str) -> None:
        self._do(class_id, vc.Archive(self._ts, TEACHER_ID))

    def announce(self, class_id: str, text: str) -> None:
        """A headline every student sees."""
        self._do(class_id, vc.Announce(self._ts, TEACHER_ID, text))

    def reset_student(self, class_id: str, student_id: str) -> None:
        self._do(class_id, vc.ResetStudent(self._ts, TEACHER_ID, student_id))

    def remove_student(self, class_id: str, student_id: str, reason: str = "") -> None:
        self._do(class_id, vc.RemoveStudent(self._ts, TEACHER_ID, student_id, reason))

    def _symbols(self, class_id: str, target: str | Iterable[str]) -> tuple[tuple[str, ...], str]:
        """What a teacher named — a symbol, a list of them, or a sector — as the market's symbols."""
        market = self._room.market(class_id)
        if market is None:
            raise ClassroomError("bad_transition", "The class's market opens when trading starts")
        names = [target] if isinstance(target, str) else list(target)
        symbols: list[str] = []
        for name in names:
            if not isinstance(name, str) or not name.strip():
                raise ClassroomError("out_of_range", f"Name a symbol or a sector, got {name!r}")
            if name.strip().upper() in market.symbols():
                symbols.append(name.strip().upper())
                continue
            try:
                symbols.extend(market.symbols_in(name))
            except ValueError as exc:
                raise ClassroomError("out_of_range", f"{name!r} is neither a symbol nor a sector of this "
                                                     f"class's market ({exc})") from None  # fmt: skip
        label = names[0].strip() if len(names) == 1 else ""
        return tuple(symbols), label

    def shock(self, class_id: str, target: str | Iterable[str], pct: Number) -> None:
        """Move the prices of a symbol, some symbols or a whole sector by ``pct`` % now."""
        symbols, label = self._symbols(class_id, target)
        self._do(class_id, vc.ShockMarket(self._ts, TEACHER_ID, symbols, pct, label))

    def halt(self, class_id: str, symbol: str, reason: str = "") -> None:
        (sym,), _ = self._symbols(class_id, symbol)
        self._do(class_id, vc.HaltTrading(self._ts, TEACHER_ID, sym, reason))

    def resume_trading(self, class_id: str, symbol: str) -> None:
        (sym,), _ = self._symbols(class_id, symbol)
        self._do(class_id, vc.ResumeTrading(self._ts, TEACHER_ID, sym))

    def drought(self, class_id: str, target: str | Iterable[str], factor: Number, minutes: int = 30) -> None:
        """Displayed depth × ``factor`` for ``minutes`` of simulated time."""
        symbols, label = self._symbols(class_id, target)
        self._do(class_id, vc.DrainLiquidity(self._ts, TEACHER_ID, symbols, factor, minutes, label))

    def roster(self, class_id: str) -> pd.DataFrame:
        return self._room.roster(class_id)

    def grade_sheet(self, class_id: str) -> pd.DataFrame:
        return self._room.grade_sheet(class_id)

    def debrief(self, class_id: str, student_id: str) -> Debrief:
        return self._room.debrief(class_id, student_id)

    def statement(self, class_id: str, student_id: str) -> Statement:
        return self._room.statement(class_id, student_id)

    def export(self, class_id: str, folder: str | os.PathLike[str]) -> dict[str, Path]:
        return self._room.export(class_id, folder)

    # ---------------------------------------------------------------- the game
    def assign_mission(
        self, class_id: str, mission_id: str, *, due_ts: int | None = None, xp: int | None = None,
        students: Iterable[str] = (),
    ) -> None:
        """Assign a mission (from the library, or the class's own) to ``students`` (ids; none:
        everyone, including later joiners), due at simulated time ``due_ts``, worth ``xp``."""
        state = self._room.state(class_id)
        accounts = []
        for sid in students:
            student = state.student(sid)
            if student is None or student.removed:
                raise ClassroomError("unknown_student", f"There is no student {sid!r} in this class")
            accounts.append(student.account_id)
        self._room.game(class_id).enter(gi.MissionAssigned(ts=0, id=_command_id(), mission_id=mission_id,
                                                           accounts=tuple(accounts), due_ts=due_ts, xp=xp))  # fmt: skip

    def override_mission(self, class_id: str, student_id: str, mission_id: str, action: str, reason: str = "") -> None:
        """Complete, fail, reopen or unlock a student's mission by hand (``action``)."""
        student = self._room.state(class_id).student(student_id)
        if student is None or student.removed:
            raise ClassroomError("unknown_student", f"There is no student {student_id!r} in this class")
        self._room.game(class_id).enter(gi.TeacherOverride(ts=0, id=_command_id(), account=student.account_id,
                                                           mission_id=mission_id, action=action,  # type: ignore[arg-type]
                                                           reason=reason))  # fmt: skip

    def catalog(self, class_id: str) -> pd.DataFrame:
        """The missions this class can assign (the library, and any the class defined): id,
        title, summary, XP, what each needs and whether it starts by itself."""
        return self._room.game(class_id).catalog()

    def missions(self, class_id: str, student_id: str) -> pd.DataFrame:
        student = self._room.state(class_id).student(student_id)
        if student is None:
            raise ClassroomError("unknown_student", f"There is no student {student_id!r} in this class")
        return self._room.game(class_id).missions(student.account_id)

    def standings(self, class_id: str, metric: str = "composite", n: int = 10) -> pd.DataFrame:
        return self._room.standings(class_id, metric, n=n)

    def game_progress(self, class_id: str) -> pd.DataFrame:
        """One row per active student: name, XP, level, badges earned, and how many of their
        missions are assigned, active, completed (not yet claimed), claimed, and failed or expired."""
        state = self._room.state(class_id)
        game = self._room.game(class_id)
        rows = []
        for s in state.active:
            p, n = game.progress(s.account_id), game.tally(s.account_id)
            rows.append({"student_id": s.student_id, "name": s.display_name, "xp": p["xp"], "level": p["level"],
                         "badges": len(p["badges"]), "assigned": sum(n.values()), "active": n["active"],
                         "completed": n["completed"], "claimed": n["claimed"],
                         "missed": n["failed"] + n["expired"]})  # fmt: skip
        columns = ["student_id", "name", "xp", "level", "badges", "assigned", "active", "completed", "claimed",
                   "missed"]  # fmt: skip
        return pd.DataFrame(rows, columns=columns)

    def personal_link(self, class_id: str, student_id: str) -> str:
        """A fresh token for a student who lost theirs (the teacher hands it over as a link)."""
        student = self._room.state(class_id).student(student_id)
        if student is None or student.removed:
            raise ClassroomError("unknown_student", f"There is no student {student_id!r} in this class")
        return sign_token(f"{class_id}/{student_id}/{secrets.token_hex(12)}", self._room._key, STUDENT)


class StudentDesk:
    """One student's view of their class: their own account (whichever is current after a
    reset), the class's market, its leaderboard and announcements. Nothing here takes an
    account or a class: a student cannot name anyone else's."""

    def __init__(self, room: Classroom, class_id: str, student_id: str) -> None:
        self._room, self.class_id, self.student_id = room, class_id, student_id

    @property
    def state(self) -> ClassState:
        return self._room.state(self.class_id)

    @property
    def class_name(self) -> str:
        return self.state.name

    @property
    def display_name(self) -> str:
        student = self.state.student(self.student_id)
        assert student is not None
        return student.display_name

    @property
    def account(self) -> str:
        """The account this student trades now (checked on every call: a reset moves it, a
        removal ends it)."""
        student = self.state.student(self.student_id)
        if student is None or student.removed:
            raise ClassroomError("bad_token", "Your teacher removed you from this class")
        self._room.last_seen[(self.class_id, self.student_id)] = time.time_ns()
        return student.account_id

    @property
    def _market(self) -> LiveMarket:
        # Private: the market object trades for any account; the desk hands out reads only.
        market = self._room.market(self.class_id)
        if market is None:
            raise ClassroomError("bad_transition", "Trading has not started yet: your teacher starts the clock")
        return market

    # Reads of the class's market (the same for every student).
    def quotes(self, symbols: Iterable[str] | None = None) -> pd.DataFrame:
        return self._market.quotes(symbols)

    def depth(self, symbol: str, levels: int = 10) -> pd.DataFrame:
        """The book of ``symbol``, with this student's own resting orders marked."""
        return self._market.depth(symbol, levels, account=self.account)

    def prices(self, symbol: str, since: pd.Timestamp | int | None = None) -> pd.DataFrame:
        return self._market.prices(symbol, since=since)

    def price_columns(self, symbol: str, since: pd.Timestamp | int | None = None) -> dict[str, np.ndarray]:
        return self._market.price_columns(symbol, since=since)

    def featured(self) -> list[str]:
        return self._market.featured()

    def instrument(self, symbol: str) -> Instrument:
        return self._market.instrument(symbol)

    def suggested_quantity(self, symbol: str) -> str:
        return self._market.suggested_quantity(symbol)

    def version(self) -> int:
        """Changes whenever this student's orders or fills do (a view re-reads them only then)."""
        return self._market.version(self.account)

    def nav_history(self, since: pd.Timestamp | int | None = None) -> pd.DataFrame:
        return self._market.nav_history(self.account, since=since)

    def nav_columns(self, since: pd.Timestamp | int | None = None) -> dict[str, np.ndarray]:
        return self._market.nav_columns(self.account, since=since)

    def clock(self) -> dict[str, Any]:
        return self._market.clock()

    def symbols(self) -> list[str]:
        return self._market.symbols()

    def preview(self, symbol: str, side: str, quantity: Number, order_type: str = "market",
                limit_price: Number | None = None, tif: str = "day") -> Any:  # fmt: skip
        return self._market.preview(self.account, symbol, side, quantity, order_type, limit_price, tif)

    def submit(self, symbol: str, side: str, quantity: Number, order_type: str = "market",
               limit_price: Number | None = None, tif: str = "day", *, note: object = None,
               stop_price: Number | None = None) -> SubmitOutcome:  # fmt: skip
        """Place an order on the student's own account under the class's rules (a trade note
        when the class asks for one; none once the class is frozen)."""
        state = self.state
        account = self.account
        if state.phase is not Phase.TRADING:
            says = "has not started trading yet" if state.phase is Phase.REGISTRATION else "has ended: trading is over"
            raise ClassroomError("bad_transition", f"The class {says}")
        text = state.rules.check_note(note)
        return self._market.submit(account, symbol, side, quantity, order_type, limit_price, tif,
                                  stop_price=stop_price, note=text)  # fmt: skip

    def cancel(self, client_order_id: str) -> CancelOutcome:
        return self._market.cancel(self.account, client_order_id)

    # ---------------------------------------------------------------- the copilot
    def copilot_enabled(self) -> bool:
        """Whether this class's copilot is on (the teacher switches it off for an exam)."""
        return self.state.copilot

    def register_key(self, public_key_hex: str) -> None:
        """Let this Ed25519 public key (hex) sign copilot intents for the student's own account."""
        self._market.register_key(self.account, public_key_hex)

    def submit_signed(self, intent_json: str, signature_hex: str, public_key_hex: str) -> SignedOutcome:
        """A signed copilot intent for the student's own account (an intent for anyone else's is
        refused by the gate: ``wrong_account``). Refused with ``copilot_off`` while the teacher
        has the copilot switched off; every refusal is in the prompt log."""
        state = self.state
        account = self.account
        if state.phase is not Phase.TRADING:
            says = "has not started trading yet" if state.phase is Phase.REGISTRATION else "has ended: trading is over"
            raise ClassroomError("bad_transition", f"The class {says}")
        if not state.copilot:
            return self._market.refuse_signed(account, intent_json, "copilot_off", COPILOT_OFF)
        return self._market.submit_signed(account, intent_json, signature_hex, public_key_hex)

    def record_copilot(self, event: Event) -> None:
        """Audit one of the copilot service's events for this student (``LiveMarket.record_copilot``);
        an event naming another account is refused (``not_allowed``)."""
        if getattr(event, "account", None) != self.account:
            raise ClassroomError("not_allowed", "A student's copilot events are about their own account")
        self._market.record_copilot(event)

    def copilot_log(self) -> pd.DataFrame:
        """This student's copilot history (their current account's audit trail)."""
        return self._market.copilot_log(self.account)

    def orders(self) -> pd.DataFrame:
        return self._market.orders(self.account)

    def fills(self) -> pd.DataFrame:
        return self._market.fills(self.account)

    def portfolio(self, *, tables: bool = True) -> dict[str, Any]:
        return self._market.portfolio(self.account, tables=tables)

    def leaderboard(self, metric: str | None = None, *, around_me: int | None = None, n: int = 10) -> pd.DataFrame:
        """The class's ranking. No ``metric``: by NAV (rank, name, NAV, return %). With one of
        :data:`~vtrade.runtime.game_worker.RANKED` (``return``, ``sharpe``, ``max_drawdown``,
        ``composite``, ``xp``): the game's leaderboard, top ``n`` or the ``around_me`` either
        side of this student, with ``me`` marking this student's row."""
        if metric is None:
            return self._room.leaderboard(self.class_id)
        df = self._room.standings(self.class_id, metric, n=n, around=self.account if around_me else None,
                                  k=around_me or 0)  # fmt: skip
        df["me"] = df.pop("account") == self.account
        return df

    def peer_portfolio(self, student_id: str) -> dict[str, Any]:
        """Another student's portfolio, only where the class shows peers' portfolios."""
        state = self.state
        if not state.rules.peers_visible:
            raise ClassroomError("not_allowed", "This class keeps portfolios private: the leaderboard shows NAVs")
        peer = state.student(student_id)
        if peer is None or peer.removed:
            raise ClassroomError("unknown_student", f"There is no student {student_id!r} in this class")
        return self._market.portfolio(peer.account_id)

    def statement(self) -> Statement:
        """This student's statement: positions, transactions with receipts and notes, P&L, risk."""
        self.account  # noqa: B018 - a removed student gets the refusal, not a report
        return self._room.statement(self.class_id, self.student_id)

    def debrief(self) -> Debrief:
        """This student's automatic debrief."""
        self.account  # noqa: B018 - as above
        return self._room.debrief(self.class_id, self.student_id)

    def announcements(self) -> list[str]:
        return [a.text for a in self.state.announcements]

    # ---------------------------------------------------------------- the game
    def missions(self) -> pd.DataFrame:
        """This student's missions: id, title, summary, status, XP, due."""
        return self._room.game(self.class_id).missions(self.account)

    def progress(self) -> dict[str, Any]:
        """This student's XP, level and badges."""
        return self._room.game(self.class_id).progress(self.account)

    def start_mission(self, mission_id: str) -> None:
        self._room.game(self.class_id).enter(gi.StartMission(ts=0, id=_command_id(), account=self.account,
                                                             mission_id=mission_id))  # fmt: skip

    def claim_mission(self, mission_id: str) -> None:
        """Claim a completed mission's XP."""
        self._room.game(self.class_id).enter(gi.ClaimMission(ts=0, id=_command_id(), account=self.account,
                                                             mission_id=mission_id))  # fmt: skip

    def mission_titles(self) -> dict[str, str]:
        """Mission id -> title, for every mission of the class (to name a prerequisite)."""
        cat = self._room.game(self.class_id).catalog()
        return dict(zip(cat.mission, cat.title, strict=True))

    def game_events(self, offset: int | None = None) -> tuple[list[GameEvent], int]:
        """This student's game events (missions moving, XP, levels, badges) published since
        ``offset`` of the class's ``game`` topic, and the offset to ask from next time. No
        ``offset``: none, only where the topic ends now (a page opened now shows what happens
        from now on). Other students' events are never returned. Reads what the game worker
        published; it does not make the worker poll (its own thread does)."""
        account = self.account
        if offset is None:
            self._room.game(self.class_id)  # the worker exists, so its topic does
            return [], self._room.bus.end_offsets(GAME_OUT)[0]
        mine: list[GameEvent] = []
        while batch := self._room.bus.read(GAME_OUT, 0, offset, 1000):
            mine += [r.event for r in batch if r.key == account and isinstance(r.event, GameEvent)
                     and r.event.account == account]  # fmt: skip
            offset = batch[-1].offset + 1
        return mine, offset

