"""The game worker of a class (DESIGN.md §1, §8): missions, progression and leaderboards, a
consumer of the log.

Two steps, each a consumer with its own offsets:

1. **Gather.** Everything the game reacts to becomes a game input
   (:mod:`vtrade.game.inputs`) appended to ``game.in`` on the class log (journaled with the
   classes in the data dir): the class market's account feed (``portfolio``: booked fills with
   their receipts, account snapshots, margin calls, session closes), the class's own events
   (students joining, reset or removed, the teacher's shocks), and the commands people enter
   through their desks (assign a mission, override one, start or claim one: checked against
   the current state first, so a refusal changes nothing). Class events and commands happen in
   wall time; they are stamped with the simulated time the worker has reached, so ``game.in``
   is one total order in simulated time.
2. **Fold.** :class:`GameFold` folds ``game.in`` with the pure :func:`vtrade.game.machine.apply`,
   publishes the game events on ``game`` and keeps the leaderboards (embedded or Redis: any
   :class:`~vtrade.game.leaderboard.Leaderboards`). Its state is snapshotted in the data dir
   after each batch, before the batch is committed; a restart resumes from the snapshot and
   re-folds what came after it.

At-least-once everywhere: a record gathered twice, an input folded twice or a feed record handed
out again after a market restart all carry the same input id, and the domain ignores an id it
has seen. ``game.in`` is the game's journal: :func:`recompute` folds it from scratch in a fresh
:class:`GameFold`, which must give exactly the worker's missions and standings.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
import pandas as pd

import vtrade.classroom as vc
import vtrade.game.inputs as gi
from vtrade.core.events import Event
from vtrade.game.errors import GameError
from vtrade.game.events import GameEvent, Status, XpAwarded
from vtrade.game.leaderboard import Board, EmbeddedLeaderboards, Leaderboards, Standing
from vtrade.game.machine import GameState, apply, decode_state, encode_state, new_state
from vtrade.game.scoring import Holding as Position
from vtrade.game.scoring import score
from vtrade.portfolio import events as pe
from vtrade.runtime.bus import Bus, Record
from vtrade.runtime.classes import TOPIC as CLASS_TOPIC
from vtrade.runtime.execution_worker import SnapshotStore, WorkerSnapshot

__all__ = ["GAME_IN", "GAME_OUT", "RANKED", "GameFold", "GameWorker", "from_feed", "journal", "recompute"]

GAME_IN, GAME_OUT = "game.in", "game"
#: The metrics a class is ranked on (each a board per class and a global one).
RANKED = ("return", "sharpe", "max_drawdown", "composite", "xp")
_STOPS = frozenset({"stop", "stop_limit", "trailing_stop"})
#: Session-end NAVs kept per account for the Sharpe ratio and the composite (a school year).
_NAV_SAMPLES = 400

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- gathering
def from_feed(event: Event) -> gi.GameInput | None:
    """The game input for one record of a class market's account feed (None: not one the game takes)."""
    match event:
        case pe.FillBooked():
            return gi.FillSeen(
                ts=event.ts, id=f"fill/{event.fill_id}", account=event.account,
                client_order_id=event.client_order_id, symbol=event.symbol, side=event.side,  # type: ignore[arg-type]
                quantity=event.quantity, price=event.price, liquidity=event.liquidity,  # type: ignore[arg-type]
                slippage_bps=event.slippage_bps, order_type=event.order_type,  # type: ignore[arg-type]
                from_stop=event.order_type in _STOPS, note=event.note,
            )  # fmt: skip
        case pe.AccountSnapshot():
            return gi.Snapshot(
                ts=event.ts, id=f"snap/{event.account}/{event.ts}", account=event.account, session=event.session,
                nav=event.nav, cash=event.cash, start_nav=event.start_nav, holdings=event.holdings, beta=event.beta,
                benchmark_return=event.benchmark_return, total_return=event.total_return,
                max_drawdown=event.max_drawdown, margin_call=event.margin_call,
            )  # fmt: skip
        case pe.MarginCalled():
            return gi.MarginCalled(ts=event.ts, id=f"margin/{event.account}/{event.ts}", account=event.account)
        case pe.SessionEnded():
            return gi.SessionClosed(ts=event.ts, id=f"session/{event.session}", session=event.session)
    return None


def from_class(event: vc.ClassEvent, ts: int, accounts: dict[str, str]) -> list[gi.GameInput]:
    """The game inputs for one class event, stamped at simulated time ``ts``. ``accounts``
    (student -> account now) is kept up to date here: a reset or removal names the account
    that leaves."""
    key = f"class/{event.class_id}/{event.ts}/{type(event).__name__}"
    match event:
        case vc.StudentJoined(student_id=sid, account_id=acct):
            accounts[sid] = acct
            return [gi.StudentEntered(ts=ts, id=f"{key}/{sid}", account=acct)]
        case vc.StudentReset(student_id=sid, account_id=acct):
            old = accounts.get(sid)
            accounts[sid] = acct
            out: list[gi.GameInput] = [gi.StudentLeft(ts=ts, id=f"{key}/{sid}/left", account=old)] if old else []
            return [*out, gi.StudentEntered(ts=ts, id=f"{key}/{sid}", account=acct)]
        case vc.StudentRemoved(student_id=sid):
            old = accounts.pop(sid, None)
            return [gi.StudentLeft(ts=ts, id=f"{key}/{sid}", account=old)] if old else []
        case vc.MarketShocked(label=label):
            return [gi.ShockSeen(ts=ts, id=key, label=label)]
    return []


# ---------------------------------------------------------------------------- folding
class GameFold:
    """The fold of one class's ``game.in``: the game state, and the leaderboards it keeps.

    Pure apart from the boards it writes (the embedded structure, or Redis); the online worker
    and :func:`recompute` run this same code, so they can only differ by what they were given.
    """

    def __init__(self, class_id: str, boards: Leaderboards, state: GameState | None = None) -> None:
        self.class_id = class_id
        self.boards = boards
        self.state = state if state is not None else new_state()
        # Per account: (session, NAV at its latest snapshot in that session), oldest first: the
        # daily series Sharpe and the composite are measured on.
        self.navs: dict[str, list[tuple[int, float]]] = {}
        self.refused = 0  # inputs the domain refused when folded (a command that raced another)
        self.xp_day: dict[str, tuple[str, int]] = {}  # per account: (day board, XP total when that day began)
        self.frozen = False
        # Board posts of the inputs being folded, per board key: the board and its rows, in order.
        self._posts: dict[str, tuple[Board, list[str], list[float], list[int]]] = {}

    def boards_of(self, metric: str) -> tuple[Board, Board]:
        return Board(metric, class_id=self.class_id), Board(metric)

    def take(self, inp: gi.GameInput) -> tuple[GameEvent, ...]:
        """Fold one input; returns the game events it caused."""
        return tuple(self.take_many((inp,)))

    def take_many(self, inputs: Iterable[gi.GameInput]) -> list[GameEvent]:
        """Fold inputs in order; returns the game events they caused.

        The leaderboard posts of the whole batch go out at the end, one ``set_many`` per board
        (a snapshot posts on a dozen boards; with Redis that was a round trip each). The boards
        end as posting one by one leaves them: rows keep their order on each board, boards are
        independent, and nothing reads them or freezes the class in between."""
        events: list[GameEvent] = []
        try:
            for inp in inputs:
                events += self._take(inp)
        finally:
            posts, self._posts = self._posts, {}
            for board, members, values, times in posts.values():
                self.boards.set_many(board, members, values, times)
        return events

    def _take(self, inp: gi.GameInput) -> tuple[GameEvent, ...]:
        try:
            self.state, events = apply(self.state, inp)
        except GameError as refused:
            self.refused += 1
            log.info("game input %s refused when folded: %s", inp.id, refused)
            return ()
        if isinstance(inp, gi.Snapshot):
            self._rank_snapshot(inp)
        for e in events:
            if isinstance(e, XpAwarded):
                # XP of the day = the total now less the total the day started with (a set, not
                # an add: folding the same award again after a restart posts the same value).
                day = self.boards_of("xp")[0].day(e.ts).key
                seen = self.xp_day.get(e.account)
                if seen is None or seen[0] != day:
                    seen = self.xp_day[e.account] = (day, e.total - e.amount)
                self._set("xp", e.account, float(e.total), e.ts, day_value=float(e.total - seen[1]))
        return events

    def freeze(self) -> None:
        """The class froze: its standings stop moving (global boards go on with other classes)."""
        self.frozen = True
        for metric in RANKED:
            self.boards.freeze(self.boards_of(metric)[0])

    def _rank_snapshot(self, s: gi.Snapshot) -> None:
        series = self.navs.setdefault(s.account, [])
        if series and series[-1][0] == s.session:
            series[-1] = (s.session, s.nav)
        else:
            series.append((s.session, s.nav))
        del series[:-_NAV_SAMPLES]
        # Return and drawdown as the market measured them (every NAV sample); Sharpe and the
        # composite on the session-end series, with the composite's gates on today's holdings.
        scores = score(pd.Series([nav for _, nav in series]), [Position(h.symbol, h.weight * s.nav, h.price)
                                                               for h in s.holdings])  # fmt: skip
        figures = {"return": s.total_return, "max_drawdown": -s.max_drawdown, "sharpe": scores.sharpe,
                   "composite": scores.composite}  # fmt: skip
        for metric, value in figures.items():
            if value is not None and math.isfinite(value):
                self._set(metric, s.account, value, s.ts)

    def _set(self, metric: str, account: str, value: float, ts: int, *, day_value: float | None = None) -> None:
        """Post ``value`` on the class's and the global board of ``metric``, and on the class's
        board of the simulated day: the latest value, or ``day_value`` (for XP: what was earned
        that day), so that a week's view (:meth:`week`) is each student's best day or the XP of
        the week (the metric's union aggregate)."""
        mine, everyone = self.boards_of(metric)
        spec = mine.spec
        value = min(max(value, spec.min_score), spec.max_score)  # a Sharpe of three days can be huge
        if not self.frozen:  # a frozen class's standings stay as they were
            self._post(mine, account, value, ts)
            self._post(mine.day(ts), account, value if day_value is None else day_value, ts)
        self._post(everyone, f"{self.class_id}/{account}", value, ts)

    def _post(self, board: Board, member: str, value: float, ts: int) -> None:
        rows = self._posts.get(board.key)
        if rows is None:
            rows = self._posts[board.key] = (board, [], [], [])
        rows[1].append(member)
        rows[2].append(value)
        rows[3].append(ts)

    def week(self, metric: str, at_ns: int) -> Board:
        """The class's board of ``metric`` for the ISO week (simulated time) holding ``at_ns``:
        the union of its day boards (ZUNIONSTORE), made now."""
        board = self.boards_of(metric)[0]
        self.boards.union(board.week(at_ns), board.week_days(at_ns))
        return board.week(at_ns)

    # -- snapshot
    def dump(self) -> bytes:
        return msgspec.msgpack.encode({"state": encode_state(self.state), "navs": self.navs, "refused": self.refused,
                                       "frozen": self.frozen, "xp_day": self.xp_day})  # fmt: skip

    @classmethod
    def load(cls, class_id: str, boards: Leaderboards, blob: bytes) -> GameFold:
        d = msgspec.msgpack.decode(blob)
        fold = cls(class_id, boards, decode_state(d["state"]))
        fold.navs = {a: [(int(n), float(v)) for n, v in rows] for a, rows in d["navs"].items()}
        fold.refused, fold.frozen = d["refused"], d["frozen"]
        fold.xp_day = {a: (str(day), int(base)) for a, (day, base) in d.get("xp_day", {}).items()}
        return fold


def _read_all(bus: Bus, topic: str) -> Iterator[Record]:
    offset = 0
    while batch := bus.read(topic, 0, offset, 10_000):
        yield from batch
        offset = batch[-1].offset + 1


def journal(bus: Bus) -> list[Record]:
    """Every record of ``game.in`` on ``bus`` (all classes), oldest first."""
    return list(_read_all(bus, GAME_IN))


def recompute(records: Iterable[Record], class_id: str, boards: Leaderboards) -> GameFold:
    """Fold a class's ``game.in`` records from scratch (the batch view of the journal)."""
    fold = GameFold(class_id, boards)
    fold.take_many(r.event for r in records if r.key == class_id and isinstance(r.event, gi.GameInput))
    return fold


# ---------------------------------------------------------------------------- the worker
class GameWorker:
    """One class's game worker on ``bus`` (the class log): see the module notes.

    ``snapshots`` keeps the fold's state (None: in memory only). Call :meth:`attach` with the
    class market's bus when it opens (and again after a restart), :meth:`poll_once` to run
    both steps once, :meth:`enter` for a person's command.

    ``lock``: workers that share ``boards`` must share one lock too (the classes' workers all
    write the global boards, and the embedded structure has a single writer); by default a
    worker has its own.
    """

    def __init__(
        self, bus: Bus, class_id: str, boards: Leaderboards, *, snapshots: SnapshotStore | None = None,
        lock: threading.RLock | None = None,
    ) -> None:
        self.bus, self.class_id, self.boards, self.snapshots = bus, class_id, boards, snapshots
        for topic in (GAME_IN, GAME_OUT):
            bus.create_topic(topic, 1)
        self.group = f"game.{class_id}"
        self._lock = lock if lock is not None else threading.RLock()
        self.now = 0  # the simulated time the game has reached (stamps class events and commands)
        self._accounts: dict[str, str] = {}
        self._class_in = bus.consumer(f"{self.group}.class", CLASS_TOPIC)
        self._feed_in: Any = None
        snap = snapshots.latest(self.group, GAME_IN, 0) if snapshots is not None else None
        if snap is not None:
            meta = msgspec.msgpack.decode(snap.engines["gather"])
            self.now, self._accounts = meta["now"], meta["accounts"]
        if isinstance(boards, EmbeddedLeaderboards):
            # Boards in this process's memory start empty: fold the whole journal into them.
            self.fold = recompute(_read_all(bus, GAME_IN), class_id, boards)
            self._next = bus.end_offsets(GAME_IN)[0]
        elif snap is None:
            self.fold, self._next = GameFold(class_id, boards), 0
        else:
            self.fold, self._next = GameFold.load(class_id, boards, snap.engines["fold"]), snap.offset + 1
        self.published = 0

    def attach(self, market_bus: Bus, feed_topic: str = "portfolio") -> None:
        """Follow the class market's account feed (a new market after a restart: attach again)."""
        with self._lock:
            if self._feed_in is not None:
                self._feed_in.close()
            self._feed_in = market_bus.consumer(self.group, feed_topic)

    # -- commands
    def enter(self, inp: gi.GameInput) -> None:
        """A person's command (assign, override, start, claim), stamped at the game's simulated
        time: refused with a :class:`~vtrade.game.errors.GameError` (nothing changes) if the
        current state refuses it, else appended to ``game.in``."""
        with self._lock:
            self.poll_once()  # decide against what has happened so far
            stamped = msgspec.structs.replace(inp, ts=max(inp.ts, self.now))
            apply(self.fold.state, stamped)  # raises the refusal; the state itself is not kept
            self._publish([stamped])
            self.poll_once()

    # -- the two steps
    def poll_once(self) -> int:
        """Gather what is new, fold ``game.in`` up to its end; returns how many inputs were folded.

        The sources are committed only after the fold's snapshot covers what they gave: a crash
        in between gathers them again, and the domain ignores the input ids it has seen."""
        with self._lock:
            feed, records = self._gather()
            n = self._fold()
            if feed:
                self._feed_in.commit(feed)
            if records:
                self._class_in.commit(records)
            return n

    def _gather(self) -> tuple[list[Record], list[Record]]:
        feed: list[Record] = []
        if self._feed_in is not None:
            feed = self._feed_in.poll(10_000)
            inputs = []
            for r in feed:
                inp = from_feed(r.event)
                if inp is not None:
                    inputs.append(inp)
                    self.now = max(self.now, inp.ts)
            self._publish(inputs)
        records = self._class_in.poll(10_000)
        inputs = []
        for r in records:
            e = r.event
            if isinstance(e, vc.ClassEvent) and e.class_id == self.class_id:
                if isinstance(e, vc.ClassFrozen):
                    self.fold.freeze()
                inputs += from_class(e, self.now, self._accounts)
        self._publish(inputs)
        return feed, records

    def _publish(self, inputs: list[gi.GameInput]) -> None:
        if inputs:
            self.bus.publish_many(GAME_IN, [(self.class_id, i) for i in inputs])

    def _fold(self) -> int:
        n, last = 0, None
        while batch := self.bus.read(GAME_IN, 0, self._next, 10_000):
            inputs = [r.event for r in batch if r.key == self.class_id and isinstance(r.event, gi.GameInput)]
            out = self.fold.take_many(inputs)
            n += len(inputs)
            if out:
                self.bus.publish_many(GAME_OUT, [(e.account, e) for e in out])
                self.published += len(out)
            last = batch[-1].offset
            self._next = last + 1
        if last is not None and self.snapshots is not None:
            gather = msgspec.msgpack.encode({"now": self.now, "accounts": self._accounts})
            self.snapshots.save(WorkerSnapshot(self.group, GAME_IN, 0, last, {"fold": self.fold.dump(),
                                                                               "gather": gather}, []))  # fmt: skip
        return n

    # -- reads
    def missions(self, account: str) -> pd.DataFrame:
        """The account's assigned missions: id, title, summary, status, XP, due (simulated time)."""
        with self._lock:
            state = self.fold.state
        player = state.players.get(account)
        rows = []
        for mid, a in (player.missions if player is not None else {}).items():
            m = state.missions[mid]
            rows.append({"mission": mid, "title": m.title, "summary": m.summary, "status": str(a.status),
                         "xp": a.xp, "due": pd.Timestamp(a.due_ts, unit="ns", tz="UTC") if a.due_ts else pd.NaT,
                         "needs": ", ".join(m.prerequisites)})  # fmt: skip
        return pd.DataFrame(rows, columns=["mission", "title", "summary", "status", "xp", "due", "needs"])

    def progress(self, account: str) -> dict[str, Any]:
        """The account's XP, level and badges."""
        with self._lock:
            player = self.fold.state.players.get(account)
        if player is None:
            return {"xp": 0, "level": 0, "badges": []}
        p = player.progress
        return {"xp": p.xp, "level": p.level, "badges": list(p.badges)}

    def catalog(self) -> pd.DataFrame:
        """The missions a teacher can assign in this class (the library and the class's own):
        id, title, summary, XP, prerequisites (ids) and whether it starts by itself."""
        with self._lock:
            missions = list(self.fold.state.missions.values())
        rows = [{"mission": m.id, "title": m.title, "summary": m.summary, "xp": m.xp,
                 "needs": ", ".join(m.prerequisites), "auto_start": m.auto_start} for m in missions]  # fmt: skip
        return pd.DataFrame(rows, columns=["mission", "title", "summary", "xp", "needs", "auto_start"])

    def tally(self, account: str) -> dict[str, int]:
        """How many of the account's missions are in each status (every status, zeros included)."""
        with self._lock:
            player = self.fold.state.players.get(account)
        counts = dict.fromkeys((str(s) for s in Status), 0)
        for a in (player.missions if player is not None else {}).values():
            counts[str(a.status)] += 1
        return counts

    def standings(
        self, metric: str, *, n: int = 10, around: str | None = None, k: int = 3, window: str | None = None,
        at_ns: int | None = None,
    ) -> list[Standing]:
        """The class's top ``n`` on ``metric``, or the ``k`` either side of account ``around``;
        ``window`` ``"day"`` or ``"week"``: of the simulated day or week holding ``at_ns``
        (default: the time the game has reached)."""
        with self._lock:
            at = self.now if at_ns is None else at_ns
            if window is None:
                board = self.fold.boards_of(metric)[0]
            elif window == "day":
                board = self.fold.boards_of(metric)[0].day(at)
            elif window == "week":
                board = self.fold.week(metric, at)
            else:
                raise ValueError(f"window must be None, 'day' or 'week', got {window!r}")
            if around is not None:
                return self.boards.around(board, around, k)
            return self.boards.top(board, n)

    def close(self) -> None:
        with self._lock:
            self._class_in.close()
            if self._feed_in is not None:
                self._feed_in.close()
