"""Reads shared between sessions (the class page at 2 Hz for 30 students): what the market and
the classroom build once per change and hand to every page must never be stale and never carry
one student's private data to another.

The market is driven synchronously (``advance``), and the pages' refreshes are run by hand in
the order the fan-out would run them (no server, no timing).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from bokeh.document import Document
from panel.io.document import hold
from panel.io.state import set_curdoc

import vtrade.ui.classroom as ui_classroom
from vtrade.classroom import ClassRules
from vtrade.runtime.classroom import Classroom
from vtrade.runtime.live import LiveConfig, LiveMarket
from vtrade.ui.trader import TraderState, depth_ladder

SMALL = dict(symbols=("AAPL", "XOM"), speed=0, seed=3, burn_in=20_000)


@pytest.fixture
def market() -> LiveMarket:
    m = LiveMarket(LiveConfig(**SMALL))
    m.advance(3)
    return m


def _far_below(m: LiveMarket, symbol: str) -> str:
    bid = float(m.quotes([symbol]).bid.iloc[0])
    return f"{round(bid * 0.9, 2):.2f}"


def test_a_shared_read_is_shared_until_the_market_changes(market: LiveMarket) -> None:
    quotes = market.quotes(["AAPL", "XOM"])
    assert market.quotes(["AAPL", "XOM"]) is quotes  # one frame for every watchlist like it
    epoch = market.epoch()
    market.advance(1)
    assert market.epoch() != epoch and market.quotes(["AAPL", "XOM"]) is not quotes
    # A teacher's halt within a slice (no advance) shows in the very next read.
    before = market.quotes(["AAPL", "XOM"])
    assert not before.halted.any()
    assert market.halt("XOM", "news pending", id="h1")
    after = market.quotes(["AAPL", "XOM"])
    assert after.set_index("symbol").halted.to_dict() == {"AAPL": False, "XOM": True}


def test_a_shared_book_never_shows_anyone_elses_orders(market: LiveMarket) -> None:
    market.open_account("ada")
    market.open_account("bob")
    assert market.submit("ada", "AAPL", "buy", 10, "limit", _far_below(market, "AAPL"), "gtc").ok
    market.advance(1)
    ada, bob = TraderState(market=market, account="ada"), TraderState(market=market, account="bob")
    ada.symbol = bob.symbol = "AAPL"
    ladders = {"ada": depth_ladder(ada), "bob": depth_ladder(bob)}
    # Bob first, then Ada, then Bob again, all within one slice: the shared book and its HTML
    # are built once for Bob and must not be what Ada sees, nor Ada's what Bob sees after her.
    for state in (bob, ada, bob):
        state.refresh()
    assert bob.depth["mine"].sum() == 0 and ada.depth["mine"].sum() == 10
    mark = re.compile(r">◆ \d")  # a level's own-orders cell (the heading explains ◆ on every ladder)
    assert mark.search(ladders["ada"].object) and not mark.search(ladders["bob"].object)
    assert bob.depth is market.depth("AAPL", bob.levels, account="bob")  # Bob's book is everyone's
    assert ada.depth is not bob.depth


def test_the_charts_stream_every_new_sample_once(market: LiveMarket) -> None:
    market.open_account("ada")
    state = TraderState(market=market, account="ada")
    state.refresh()
    for _ in range(3):
        market.advance(2)
        state.refresh()
    chart, prices = state.price_frame(), market.prices(state.symbol)
    assert chart.ts.tolist() == prices.ts.tolist()  # no sample missed, none sent twice
    assert chart.mid.tolist() == pytest.approx(prices.mid.tolist())
    nav = market.nav_history("ada")
    assert state.nav_frame().ts.tolist() == nav.ts.tolist()


# ---------------------------------------------------------------------------- the class page
class _Pages:
    """Student pages of one class, built as the server builds them, refreshed by hand."""

    def __init__(self, room: Classroom, tokens: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
        ticks: list[Callable[[], None]] = []
        monkeypatch.setattr(ui_classroom, "keep_fresh", lambda tick, period_ms, **kw: ticks.append(tick))
        self.pages: list[Any] = []
        self.docs: list[Document] = []
        for token in tokens:
            page = ui_classroom.student_page(room, token)
            doc = Document()
            page.server_doc(doc)
            self.pages.append(page)
            self.docs.append(doc)
        self.ticks = ticks

    def refresh(self, *which: int) -> None:
        for i in which or range(len(self.pages)):
            with set_curdoc(self.docs[i]), hold(self.docs[i]):
                self.ticks[i]()

    def state(self, i: int) -> Any:
        return self.pages[i].live["state"]


def test_a_students_fill_shows_on_their_page_at_the_next_refresh_and_only_there(
        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    room = Classroom(None, market_overrides={"burn_in": 20_000}, teacher_secret="s" * 24)
    try:
        teacher = room.teacher(room.teacher_secret)
        cid = teacher.create_class("Econ 101", ClassRules(market="synthetic", starting_cash=50_000))
        teacher.open_registration(cid)
        passes = [room.join(teacher.join_code(cid), name) for name in ("Ada", "Bo")]
        teacher.start(cid)
        teacher.pause(cid)  # the test moves the clock itself
        market = room.market(cid)
        assert market is not None
        pages = _Pages(room, [p.token for p in passes], monkeypatch)
        pages.refresh()
        ada_desk = room.student(passes[0].token)
        board_before = room.leaderboard(cid)
        assert ada_desk.submit("AAPL", "buy", 100).ok
        for _ in range(50):
            market.advance(1)
            if not ada_desk.fills().empty:
                break
        assert not ada_desk.fills().empty
        pages.refresh()  # one refresh each, Bo's first: the shared reads are warm when Ada's runs
        ada, bo = pages.state(0), pages.state(1)
        assert len(ada.fills) == len(ada_desk.fills()) >= 1 and "AAPL" in ada.positions.symbol.tolist()
        assert ada.summary["cash"] < 50_000
        assert bo.fills.empty and bo.orders.empty and bo.positions.empty
        assert bo.summary["cash"] == 50_000
        # Ada's trade moved the class board (NAV after fees), and both pages show the new board.
        board = room.leaderboard(cid)
        assert board is not board_before
        navs = dict(zip(board.name, board.nav, strict=True))
        assert navs["Ada"] == pytest.approx(ada.summary["nav"])
        for state in (ada, bo):
            ranking = state.ranking_frame()
            assert dict(zip(ranking.account, ranking.nav, strict=True)) == navs
        # What a page shows of the class is the class's board; nobody's positions are in it.
        assert list(room.leaderboard(cid).columns) == ["rank", "student_id", "name", "nav", "return_pct"]
    finally:
        room.close()


def test_the_class_board_is_rebuilt_when_a_student_joins_or_the_market_moves() -> None:
    room = Classroom(None, market_overrides={"burn_in": 20_000}, teacher_secret="s" * 24)
    try:
        teacher = room.teacher(room.teacher_secret)
        cid = teacher.create_class("Econ 101", ClassRules(market="synthetic", starting_cash=50_000))
        teacher.open_registration(cid)
        room.join(teacher.join_code(cid), "Ada")
        board = room.leaderboard(cid)
        assert room.leaderboard(cid) is board  # nothing changed: the same board
        room.join(teacher.join_code(cid), "Bo")
        assert room.leaderboard(cid).name.tolist() == ["Ada", "Bo"]
        teacher.start(cid)
        teacher.pause(cid)
        market = room.market(cid)
        assert market is not None
        board = room.leaderboard(cid)
        market.advance(1)
        assert room.leaderboard(cid) is not board
        pd.testing.assert_frame_equal(room.leaderboard(cid), room.leaderboard(cid))
    finally:
        room.close()
