"""Simulated students: seeded traders that join a class and trade through their own
:class:`~vtrade.runtime.classroom.StudentDesk`, under the class's rules, like people do.

For a teacher trying a class out before the term, the ``05_teaching`` notebook and the
benchmarks. Each student has a style, a seed and a trade note for every order, so a debrief
has something to say. Five styles, chosen to show what a debrief measures:

- ``buy_and_hold``: buys a few stocks on the first look, then holds (low turnover);
- ``momentum``: buys what rose most since the open, sells what fell (trend following);
- ``contrarian``: buys what fell most, sells what rose (mean reversion);
- ``disposition``: sells winners quickly and holds losers (the disposition effect);
- ``overtrader``: small random trades every look (turnover and fees).

>>> from vtrade.runtime.classroom import Classroom
>>> from vtrade.classroom import ClassRules
>>> room = Classroom(market_overrides={"burn_in": 20_000})
>>> teacher = room.teacher(room.teacher_secret)
>>> cid = teacher.create_class("Try-out", ClassRules(market="synthetic"))
>>> teacher.open_registration(cid)
>>> students = join_students(room, cid, 5, seed=1)
>>> [s.style for s in students]
['buy_and_hold', 'momentum', 'contrarian', 'disposition', 'overtrader']
>>> room.close()
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vtrade.classroom import ClassroomError
from vtrade.core.rng import seeded_rng
from vtrade.runtime.classroom import Classroom, StudentDesk

__all__ = ["STYLES", "SimulatedStudent", "join_students"]

STYLES = ("buy_and_hold", "momentum", "contrarian", "disposition", "overtrader")
_NAMES = ("Ada", "Bo", "Cy", "Di", "Ed", "Flo", "Gus", "Hal", "Ivy", "Jo", "Kit", "Lu", "Max", "Ned", "Oz", "Pia",
          "Quin", "Ray", "Sol", "Tam", "Uma", "Vic", "Wes", "Xia", "Yan", "Zed")  # fmt: skip


@dataclass
class SimulatedStudent:
    """One simulated student: a desk (their own account only), a style and a seeded generator."""

    desk: StudentDesk
    style: str
    rng: np.random.Generator
    universe: tuple[str, ...] = ()
    refusals: list[str] = field(default_factory=list)

    def look(self) -> int:
        """Look at the market once and trade as the style says; returns orders placed."""
        quotes = self.desk.quotes(self.universe or None)
        quotes = quotes[np.isfinite(quotes.mid) & (quotes.mid > 0)]
        if quotes.empty:
            return 0
        book = self.desk.portfolio()
        cash = float(book["summary"]["cash"])
        nav = float(book["summary"]["nav"])
        pos = book["positions"]
        held = {str(sym): (float(q), float(u)) for sym, q, u in zip(pos.symbol, pos.quantity, pos.unrealized_pnl,
                                                                     strict=True)}  # fmt: skip
        orders = getattr(self, f"_{self.style}")(quotes, held, cash, nav)
        placed = 0
        for symbol, side, qty, note in orders:
            if qty <= 0:
                continue
            try:
                out = self.desk.submit(symbol, side, qty, note=note)
            except ClassroomError as refused:  # the class's rules said no (a frozen class, a note)
                self.refusals.append(str(refused))
                continue
            placed += out.ok
            if not out.ok:
                self.refusals.append(out.reason or "")
        return placed

    # Each style returns (symbol, side, shares, note) orders.
    def _shares(self, value: float, price: float) -> int:
        return int(max(value, 0) // price)

    def _buy_and_hold(self, q: pd.DataFrame, held: Held, cash: float, nav: float) -> list[Order]:
        if held:
            return []
        picks = q.iloc[self.rng.choice(len(q), size=min(4, len(q)), replace=False)]
        each = cash * 0.9 / len(picks)
        return [(s, "buy", self._shares(each, p), "long-term holding: a diversified basket")
                for s, p in zip(picks.symbol, picks.ask, strict=True)]  # fmt: skip

    def _momentum(self, q: pd.DataFrame, held: Held, cash: float, nav: float) -> list[Order]:
        out: list[Order] = [(s, "sell", int(held[s][0]), f"cutting {s}: it stopped rising")
                            for s in held if _change(q, s) < -0.5]  # fmt: skip
        best = q.sort_values("change_pct").iloc[-1]
        if best.change_pct > 0 and best.symbol not in held:
            out.append((best.symbol, "buy", self._shares(min(cash, nav * 0.25), best.ask),
                        f"{best.symbol} is up {best.change_pct:.1f}% today: riding the trend"))  # fmt: skip
        return out

    def _contrarian(self, q: pd.DataFrame, held: Held, cash: float, nav: float) -> list[Order]:
        out: list[Order] = [(s, "sell", int(held[s][0]), f"taking profit on {s}")
                            for s in held if _change(q, s) > 0.5]  # fmt: skip
        worst = q.sort_values("change_pct").iloc[0]
        if worst.change_pct < 0 and worst.symbol not in held:
            out.append((worst.symbol, "buy", self._shares(min(cash, nav * 0.25), worst.ask),
                        f"{worst.symbol} is down {-worst.change_pct:.1f}%: oversold"))  # fmt: skip
        return out

    def _disposition(self, q: pd.DataFrame, held: Held, cash: float, nav: float) -> list[Order]:
        # Sells a winner at the first small gain; a loser is kept "until it comes back".
        out: list[Order] = [(s, "sell", int(held[s][0]), f"locking in the gain on {s}")
                            for s in held if held[s][1] > 0]  # fmt: skip
        if len(held) < 5:
            pick = q.iloc[int(self.rng.integers(len(q)))]
            out.append((pick.symbol, "buy", self._shares(min(cash, nav * 0.2), pick.ask), f"a hunch on {pick.symbol}"))
        return out

    def _overtrader(self, q: pd.DataFrame, held: Held, cash: float, nav: float) -> list[Order]:
        pick = q.iloc[int(self.rng.integers(len(q)))]
        if pick.symbol in held and self.rng.random() < 0.5:
            return [(pick.symbol, "sell", int(held[pick.symbol][0]), "changed my mind")]
        return [(pick.symbol, "buy", self._shares(min(cash, nav * 0.05), pick.ask), "quick trade")]


Order = tuple[str, str, int, str]  # symbol, side, shares, note
Held = dict[str, tuple[float, float]]  # symbol -> (shares, unrealized P&L)


def _change(q: pd.DataFrame, symbol: str) -> float:
    row = q.loc[q.symbol == symbol, "change_pct"]
    return float(row.iloc[0]) if len(row) and math.isfinite(row.iloc[0]) else 0.0


def join_students(room: Classroom, class_id: str, n: int, *, seed: int = 0,
                  universe: tuple[str, ...] = ()) -> list[SimulatedStudent]:  # fmt: skip
    """``n`` simulated students join ``class_id`` with its code (styles in turn, one seed
    each); ``universe`` limits what they look at (default: everything the market lists)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"simulate at least one student, got {n!r}")
    code = room.state(class_id).join_code
    out = []
    for i in range(n):
        name = f"{_NAMES[i % len(_NAMES)]} (sim {i + 1})"
        ticket = room.join(code, name, address=f"simulated-{i}")
        out.append(SimulatedStudent(room.student(ticket.token), STYLES[i % len(STYLES)],
                                    seeded_rng(seed, "student", i), universe))  # fmt: skip
    return out
