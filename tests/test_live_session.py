"""The notebook API on a live market: ``LiveSession`` DataFrames, its inline views, their lifecycle.

The market is driven synchronously (``start=False``, ``advance``), so what a view shows and
what the DataFrame methods return can be compared exactly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pandas as pd
import panel as pn
import pytest
from bokeh.model import Model

import vtrade as vt
from vtrade.execution.validation import OrderInputError
from vtrade.runtime.live import LiveConfig, LiveMarket, UnknownAccountError
from vtrade.runtime.live_session import LiveSession, SessionClosedError, UnknownSymbolError, preview_frame
from vtrade.ui.notebook import DepthView, LiveView

SMALL = LiveConfig(symbols=("AAPL", "XOM"), speed=0, bots=False, burn_in=20_000)


@pytest.fixture
def s() -> Iterator[LiveSession]:
    session = vt.Session.demo(SMALL, start=False)
    session.advance(3)
    yield session
    session.close()


def _far_below(s: LiveSession, symbol: str) -> str:
    """A limit price well below the bid, on the cent grid: the order rests."""
    bid = float(s.quotes().set_index("symbol").loc[symbol, "bid"])
    return f"{round(bid * 0.9, 2):.2f}"


def test_demo_opens_one_account_on_its_own_market() -> None:
    s = vt.Session.demo(SMALL, account="ada", cash=25_000, start=False, speed=5)
    assert isinstance(s, vt.LiveSession) and s.account == "ada" and s.owns_market
    assert s.market.config.speed == 5 and s.market.config.symbols == SMALL.symbols
    assert not s.market.running and s.symbols() == ["AAPL", "XOM"]
    assert s.summary().loc["ada", "cash"] == 25_000
    s.close()
    other = vt.Session.demo(SMALL)  # start=True: the market runs in the background
    try:
        assert other.market.running and other.account == "you"
    finally:
        other.close()
    assert not other.market.running


def test_views_show_what_the_dataframes_hold(s: LiveSession) -> None:
    s.submit("AAPL", "buy", 10)
    s.submit("XOM", "buy", 5, "limit", _far_below(s, "XOM"), "gtc")
    s.advance(s.market.config.nav_every)

    depth = s.depth("xom", levels=5)  # any case, as when ordering
    pd.testing.assert_frame_equal(depth.frame(), s.market.depth("XOM", 5, account=s.account))
    pd.testing.assert_frame_equal(depth.frame(), s.depth_frame("XOM", 5))
    assert depth.frame()["mine"].sum() == 5  # the resting order, marked on the ladder

    pf = s.portfolio_view()
    pd.testing.assert_frame_equal(pf.frame(), s.positions())
    pd.testing.assert_frame_equal(pf.frame("positions"), pf.state.positions)  # the table the view renders
    pd.testing.assert_frame_equal(pf.frame("summary"), s.summary())
    pd.testing.assert_frame_equal(pf.frame("sectors"), s.sectors())
    pd.testing.assert_frame_equal(pf.frame("nav"), s.nav())
    assert pf.to_frame("positions").set_index("symbol").loc["AAPL", "quantity"] == 10

    ticket = s.order_ticket("AAPL")
    pd.testing.assert_frame_equal(ticket.frame("orders"), s.orders())
    pd.testing.assert_frame_equal(ticket.frame("fills"), s.fills())
    pd.testing.assert_frame_equal(ticket.frame(), preview_frame(s.preview("AAPL", "buy", 100)))
    assert ticket.frame().fillable.tolist() == [100.0]

    pd.testing.assert_frame_equal(s.watchlist().frame(), s.quotes())
    pd.testing.assert_frame_equal(s.chart("AAPL").frame(), s.prices("AAPL")[["ts", "mid", "bid", "ask"]])
    with pytest.raises(ValueError, match="'preview', 'orders', 'fills'"):
        ticket.frame("positions")


def test_views_render_to_bokeh_models_without_a_server(s: LiveSession) -> None:
    views = [s.depth("AAPL"), s.order_ticket(), s.portfolio_view(), s.watchlist(), s.chart("XOM")]
    for view in views:
        root = pn.panel(view).get_root()
        assert isinstance(root, Model)
        assert view.running  # displaying a view schedules its refresh
    ladder = pn.panel(views[0]).get_root()
    html = next(m.text for m in ladder.select({"type": pn.models.markup.HTML}) if "depth" in str(m.text))
    assert "AAPL" in html
    s.close()
    assert not any(view.running for view in views)
    pn.panel(views[0]).get_root()  # a closed view still renders, and stays still
    assert not views[0].running


def test_an_order_shows_in_orders_and_fills_after_advancing(s: LiveSession) -> None:
    out = s.submit("AAPL", "buy", 20)
    assert out.ok and out.client_order_id == "you-1"
    assert s.orders().status.tolist() == ["pending_new"] and s.fills().empty
    s.advance(1)
    orders, fills = s.orders(), s.fills()
    assert orders.status.tolist() == ["filled"] and fills.quantity.sum() == 20
    assert set(fills.client_order_id) == {"you-1"} and fills.slippage_bps.notna().all()
    assert s.positions().set_index("symbol").loc["AAPL", "quantity"] == 20
    assert s.sectors().set_index("sector").loc["Information Technology", "exposure"] > 0


BAD_ORDERS = [
    ({"quantity": 0}, "quantity"),
    ({"quantity": -5}, "quantity"),
    ({"quantity": float("nan")}, "quantity"),
    ({"quantity": "nan"}, "quantity"),
    ({"quantity": "1.5"}, "quantity"),  # off the one-share lot
    ({"order_type": "limit", "limit_price": "100.005"}, "limit_price"),  # off the cent tick
    ({"order_type": "limit", "limit_price": float("nan")}, "limit_price"),
    ({"symbol": "NOPE"}, "symbol"),
]


def test_bad_input_raises_and_changes_nothing(s: LiveSession) -> None:
    s.submit("XOM", "buy", 1, "limit", _far_below(s, "XOM"), "gtc")
    s.advance(1)
    before = s.orders()
    for order, field in BAD_ORDERS:
        args = {"symbol": "AAPL", "side": "buy", "quantity": 10} | order
        with pytest.raises(OrderInputError) as err:
            s.submit(**args)
        assert err.value.field == field and err.value.reason, order
        with pytest.raises(OrderInputError):
            s.preview(**args)
    s.advance(1)
    pd.testing.assert_frame_equal(s.orders(), before)
    assert s.fills().empty


def test_the_ticket_view_shows_input_errors_and_sends_nothing(s: LiveSession) -> None:
    view = s.order_ticket("AAPL")
    view.ticket.quantity = "-3"
    assert view.frame().empty and set(view.ticket.errors) == {"quantity"}
    assert not view.ticket.submit()
    assert view.frame("orders").empty
    view.ticket.quantity = "10"
    assert view.ticket.submit()
    assert view.frame("orders", refresh=False).status.tolist() == ["pending_new"]  # shown at once


def test_unknown_symbol_in_a_view_is_a_clear_error(s: LiveSession) -> None:
    for make in (s.depth, s.chart, s.order_ticket, s.depth_frame, s.prices):
        with pytest.raises(UnknownSymbolError) as err:
            make("NOPE")
        assert str(err.value).startswith("Unknown symbol 'NOPE'") and "AAPL, XOM" in str(err.value)
    with pytest.raises(KeyError, match="did you mean AAPL"):  # still a KeyError, like a missing key
        s.depth("APPL")
    with pytest.raises(ValueError, match="period_ms"):
        s.depth("AAPL", period_ms=0)


def test_two_sessions_on_one_market_see_only_their_own() -> None:
    market = LiveMarket(SMALL)
    market.advance(3)
    ada, bob = LiveSession(market, "ada"), LiveSession(market, "bob")
    rest = ada.submit("AAPL", "buy", 7, "limit", _far_below(ada, "AAPL"), "gtc")
    ada.submit("XOM", "buy", 3)
    market.advance(1)
    assert len(ada.orders()) == 2 and len(ada.fills()) > 0
    assert bob.orders().empty and bob.fills().empty and bob.positions().empty
    assert bob.depth("AAPL").frame()["mine"].sum() == 0 and ada.depth("AAPL").frame()["mine"].sum() == 7
    assert bob.order_ticket().frame("orders").empty and bob.portfolio_view().frame("positions").empty
    refused = bob.cancel(rest.client_order_id)
    assert not refused.ok and refused.code == "unknown_order"

    ada_orders = market.orders("ada").set_index("client_order_id")
    assert bob.close() == 0 and ada_orders.loc[rest.client_order_id, "status"] == "accepted"  # ada's rests
    with pytest.raises(SessionClosedError):
        bob.submit("AAPL", "buy", 1)
    again = LiveSession(market, "bob", attach=True)  # the same account, picked up again
    assert again.summary().index.tolist() == ["bob"]
    with pytest.raises(UnknownAccountError):
        LiveSession(market, "bot-maker", attach=True)
    with pytest.raises(ValueError, match="already open"):
        LiveSession(market, "ada")


def test_close_cancels_open_orders_and_stops_the_refresh() -> None:
    s = vt.Session.demo(SMALL, start=False)
    s.advance(3)
    s.submit("AAPL", "buy", 5, "limit", _far_below(s, "AAPL"), "gtc")
    s.submit("XOM", "buy", 5, "limit", _far_below(s, "XOM"), "gtc")
    s.advance(1)
    view = s.depth("AAPL", period_ms=100)
    calls: list[int] = []
    refresh = view.state.refresh

    def counted() -> None:
        calls.append(1)
        refresh()

    view.state.refresh = counted

    async def displayed() -> None:
        # What happens in Jupyter: displaying the view schedules its refresh on the kernel's loop.
        pn.panel(view).get_root()
        deadline = time.monotonic() + 60
        while len(calls) < 3:  # a loaded machine may be slow to run the first refreshes
            assert time.monotonic() < deadline, f"only {len(calls)} refreshes in 60 s"
            await asyncio.sleep(0.02)
        assert s.close() == 2
        seen = len(calls)
        await asyncio.sleep(0.3)
        assert len(calls) == seen  # no refresh after close

    asyncio.run(displayed())
    assert not view.running and not s.market.running
    assert s.orders().status.tolist() == ["cancelled", "cancelled"]
    assert s.close() == 0  # closing twice is harmless


def test_views_are_panel_viewers_with_a_notebook_repr(s: LiveSession) -> None:
    view = s.depth("AAPL")
    assert isinstance(view, LiveView | DepthView) and isinstance(view, pn.viewable.Viewer)
    bundle, _ = view._repr_mimebundle_()
    assert "application/vnd.holoviews_exec.v0+json" in bundle  # what Jupyter renders inline
    assert "DepthView of 'you'" in repr(view) and ".frame(): depth" in repr(view)
    assert "LiveSession account='you' on 2 symbols (paused)" in repr(s)
