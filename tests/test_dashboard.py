"""The live market behind the trader dashboard, and the dashboard served over real HTTP.

The market tests drive :class:`LiveMarket` synchronously (``advance``: fixed simulated slices,
no pacing), so they are deterministic for a seed; the serving test starts a real Panel server.
"""

from __future__ import annotations

import math
import threading
import time
import urllib.request

import numpy as np
import pandas as pd
import panel as pn
import pytest

from vtrade.execution.validation import OrderInputError
from vtrade.runtime.live import LiveConfig, LiveMarket, UnknownAccountError
from vtrade.runtime.localhost import free_port
from vtrade.ui.trader import TITLE, TicketState, TraderState, render_ladder

SMALL = dict(symbols=("AAPL", "XOM"), speed=0, seed=3, burn_in=20_000)


@pytest.fixture
def market() -> LiveMarket:
    m = LiveMarket(LiveConfig(**SMALL))
    m.advance(3)
    return m


def _far_below(m: LiveMarket, symbol: str) -> str:
    """A limit price well below the bid, on the tick grid: the order rests and never fills here."""
    bid = float(m.quotes().set_index("symbol").loc[symbol, "bid"])
    return f"{round(bid * 0.9, 2):.2f}"


def test_accounts_cannot_see_or_cancel_each_others_orders(market: LiveMarket) -> None:
    market.open_account("ada")
    market.open_account("bob")
    out = market.submit("ada", "AAPL", "buy", 10, "limit", _far_below(market, "AAPL"), "gtc")
    assert out.ok
    market.advance(1)
    assert market.orders("ada").status.tolist() == ["accepted"]
    assert market.orders("bob").empty and market.fills("bob").empty

    refused = market.cancel("bob", out.client_order_id)
    assert not refused.ok
    assert refused.code == "unknown_order" and out.client_order_id in refused.reason
    market.advance(1)
    assert market.orders("ada").status.tolist() == ["accepted"]  # still resting

    # The ladder marks only the caller's own resting orders.
    assert market.depth("AAPL", 5, account="ada")["mine"].sum() == 10
    assert market.depth("AAPL", 5, account="bob")["mine"].sum() == 0

    assert market.cancel("ada", out.client_order_id).ok
    market.advance(1)
    assert market.orders("ada").status.tolist() == ["cancelled"]
    assert not market.cancel("ada", out.client_order_id).ok  # no longer open


def test_session_views_are_per_account(market: LiveMarket) -> None:
    market.open_account("ada")
    market.open_account("bob")
    market.submit("ada", "XOM", "buy", 5)
    market.advance(2)
    ada, bob = TraderState(market=market, account="ada"), TraderState(market=market, account="bob")
    ada.refresh()
    bob.refresh()
    assert len(ada.orders) == 1 and len(ada.fills) >= 1
    assert bob.orders.empty and bob.fills.empty
    assert bob.summary["nav"] == 100_000 and ada.summary["nav"] != 100_000


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "-5"}, "quantity"),
        ({"quantity": "nan"}, "quantity"),
        ({"quantity": float("nan")}, "quantity"),
        ({"quantity": "1.5"}, "quantity"),  # off the one-share lot
        ({"order_type": "limit", "limit_price": "100.005"}, "limit_price"),  # off the cent tick
        ({"order_type": "limit", "limit_price": "0"}, "limit_price"),
        ({"symbol": "ZZZZ"}, "symbol"),
    ],
)
def test_bad_ticket_input_names_the_field_and_sends_nothing(market: LiveMarket, inputs: dict, field: str) -> None:
    market.open_account("ada")
    order = {"symbol": "AAPL", "side": "buy", "quantity": 10, "order_type": "market", "limit_price": None} | inputs
    before = market.version("ada")
    with pytest.raises(OrderInputError) as err:
        market.submit("ada", **order)
    assert err.value.field == field and err.value.reason
    market.advance(2)
    assert market.orders("ada").empty and market.fills("ada").empty
    assert market.version("ada") == before

    # The same input through the dashboard's ticket: the reason lands on the field.
    ticket = TicketState(market=market, account="ada")
    str_inputs = {k: ("" if v is None else str(v)) for k, v in order.items() if k != "symbol"}
    if order["symbol"] in market.symbols():
        ticket.symbol = order["symbol"]
        ticket.param.update(**str_inputs)
        assert not ticket.submit()
        with pytest.raises(OrderInputError) as typed:  # what the ticket sends: the text as typed
            market.submit("ada", order["symbol"], **{k: (v or None) for k, v in str_inputs.items()})
        assert set(ticket.errors) == {field} and ticket.errors[field] == typed.value.reason
        market.advance(1)
        assert market.orders("ada").empty


def test_marketable_order_fills_with_receipt_and_moves_nav(market: LiveMarket) -> None:
    market.open_account("ada", cash=100_000)
    preview = market.preview("ada", "AAPL", "buy", 100)
    assert preview.fillable == 100 and preview.avg_price is not None and preview.slippage_bps >= 0
    assert preview.fee == 1.0  # IBKR fixed: 100 x $0.005 raised to the $1.00 minimum
    assert preview.buying_power_after < preview.buying_power

    out = market.submit("ada", "AAPL", "buy", 100)
    assert out.ok
    market.advance(2)
    orders, fills = market.orders("ada"), market.fills("ada")
    assert orders.status.tolist() == ["filled"] and orders.filled.iloc[0] == 100
    assert fills.quantity.sum() == 100
    for column in ("arrival_mid", "slippage_bps", "fee", "liquidity", "model"):
        assert fills[column].notna().all()
    assert set(fills.liquidity) == {"taker"}

    pf = market.portfolio("ada")
    assert pf["summary"]["nav"] != 100_000  # at least the $1.00 commission
    assert pf["summary"]["cash"] < 100_000 - 100 * 100  # AAPL is well above $100
    assert pf["positions"].set_index("symbol").loc["AAPL", "quantity"] == 100
    sectors = pf["sectors"].set_index("sector")
    assert sectors.loc["Information Technology", "exposure"] > 0
    market.advance(market.config.nav_every)
    assert len(market.nav_history("ada")) >= 2


def test_account_rules_refuse_with_a_reason(market: LiveMarket) -> None:
    market.open_account("poor", cash=100)
    out = market.submit("poor", "AAPL", "buy", 100)
    assert not out.ok and out.code == "insufficient_buying_power" and "buying power" in out.reason
    market.advance(2)
    orders = market.orders("poor")
    assert orders.status.tolist() == ["rejected"] and orders.reason.iloc[0] == out.reason
    assert market.fills("poor").empty
    assert market.portfolio("poor")["summary"]["nav"] == 100
    # A cash account cannot sell what it does not hold.
    assert market.submit("poor", "AAPL", "sell", 1).code == "short_selling_not_allowed"


def test_a_preview_the_broker_would_refuse_says_why_not_a_huge_negative_amount(market: LiveMarket) -> None:
    """Issue 11 saw "buying power $100,000.00 → $-154,759,900,063.50": the preview of a buy of a
    billion shares (a slip of the keyboard), whose buying power "after" took the whole quantity at
    the average price. The order can never go: the preview now says so, with the broker's reason."""
    from vtrade.ui.trader import render_preview

    market.open_account("typo", cash=100_000)
    p = market.preview("typo", "AAPL", "buy", "1000000000")
    assert p.refusal is not None and p.refusal.startswith("Not enough buying power: this order needs $")
    shown = render_preview(p, market.instrument("AAPL"))
    assert "would be refused: Not enough buying power" in shown and "→" not in shown, shown
    out = market.submit("typo", "AAPL", "buy", "1000000000")
    assert not out.ok and out.reason == p.refusal  # the same rules, the same words
    # A preview is not an order: it used up none of a class's orders of the day, and an order the
    # account can pay for previews with no refusal and its buying power after.
    fine = market.preview("typo", "AAPL", "buy", "10")
    assert fine.refusal is None and 0 < fine.buying_power_after < fine.buying_power
    assert "buying power $100,000.00 → $" in render_preview(fine, market.instrument("AAPL"))
    # A limit order resting where the rules let it: no refusal either.
    assert market.preview("typo", "AAPL", "buy", "10", "limit", _far_below(market, "AAPL"), "gtc").refusal is None
    assert market.orders("typo").client_order_id.tolist() == [out.client_order_id]


def test_ticket_starts_a_limit_at_the_touch_and_forgets_a_fixed_mistake(market: LiveMarket) -> None:
    """Choosing "limit" fills in the passive touch (an empty field was outlined red before anything
    was typed); "Not sent: fix the field outlined in red" goes once no field is in error."""
    market.open_account("ada")
    ticket = TicketState(market=market, account="ada", symbol="AAPL")
    ticket.order_type = "limit"
    assert float(ticket.limit_price) == pytest.approx(market.quotes(["AAPL"]).bid.iloc[0]) and ticket.errors == {}
    ticket.quantity = "abc"
    assert not ticket.submit() and ticket.result.startswith("Not sent") and set(ticket.errors) == {"quantity"}
    ticket.update_preview()  # a refresh while the mistake stands keeps the answer
    assert ticket.result.startswith("Not sent")
    ticket.quantity = "5"
    assert ticket.errors == {} and ticket.result == ""
    ticket.result = "Not sent: The class has ended"  # a refusal no field can fix stays
    ticket.update_preview()
    assert ticket.result == "Not sent: The class has ended"
    assert market.orders("ada").empty


def test_price_chart_says_real_time_on_a_live_market(market: LiveMarket) -> None:
    """A live exchange's clock is real time: its chart's axis does not say "simulated"."""
    from bokeh.plotting import figure

    from vtrade.ui.trader import price_chart

    market.open_account("ada")
    state = TraderState(market=market, account="ada")
    state.refresh()

    def axis_label() -> str:
        fig = next(p.object for p in price_chart(state).select(pn.pane.Bokeh) if isinstance(p.object, figure))
        return str(fig.xaxis[0].axis_label)

    assert axis_label() == "simulated time (UTC)"
    state.clock = {**state.clock, "live": {"state": "live", "delay_ms": 80.0}}  # what a live feed's clock holds
    assert axis_label() == "time (UTC)"


def test_unknown_and_simulated_accounts_are_not_usable(market: LiveMarket) -> None:
    with pytest.raises(UnknownAccountError):
        market.orders("nobody")
    with pytest.raises(UnknownAccountError):
        market.submit("bot-maker", "AAPL", "buy", 1)
    with pytest.raises(ValueError, match="already open"):
        market.open_account("bot-maker")


def test_closing_a_session_cancels_its_resting_orders(market: LiveMarket) -> None:
    market.open_account("ada")
    market.submit("ada", "XOM", "buy", 3, "limit", _far_below(market, "XOM"), "gtc")
    market.advance(1)
    assert market.close_session("ada") == 1
    market.advance(1)
    assert market.orders("ada").status.tolist() == ["cancelled"]


def test_market_moves_and_is_deterministic_for_a_seed() -> None:
    a, b = LiveMarket(LiveConfig(**SMALL)), LiveMarket(LiveConfig(**SMALL))
    a.advance(30)
    b.advance(30)
    pd.testing.assert_frame_equal(a.quotes(), b.quotes())
    pd.testing.assert_frame_equal(a.prices("AAPL"), b.prices("AAPL"))
    mids = a.prices("AAPL").mid
    assert len(mids) == 31 and mids.nunique() > 1  # the simulated traders and flow move prices
    assert a.clock()["elapsed_s"] == 30.0


def test_depth_ladder_and_chart_state(market: LiveMarket) -> None:
    market.open_account("ada")
    state = TraderState(market=market, account="ada")
    state.refresh()
    html = render_ladder(state.depth, state.symbol)
    assert state.symbol in html and html.count("<tr>") == 1 + len(state.depth)
    assert len(state.price_frame()) == len(market.prices(state.symbol))
    market.advance(2)
    state.refresh()
    assert len(state.price_frame()) == len(market.prices(state.symbol))  # only new rows were sent
    state.symbol = "XOM"
    chart, xom = state.price_frame(), market.prices("XOM")
    assert len(chart) == len(xom) and np.allclose(chart.mid, xom.mid)  # replaced, not appended to
    assert (chart.ts == xom.ts).all()




def test_served_dashboard_opens_an_account_per_session() -> None:
    from vtrade.ui.serve import serve_trader

    market = LiveMarket(LiveConfig(**(SMALL | {"speed": 50.0}))).start()
    port = free_port()
    server = serve_trader(port=port, market=market, threaded=True)
    try:
        url = f"http://localhost:{port}/trader"
        deadline, page, status = time.monotonic() + 20, "", 0
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=10) as resp:
                    status, page = resp.status, resp.read().decode()
                break
            except OSError:
                time.sleep(0.2)
        assert status == 200 and f"<title>{TITLE}</title>" in page
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200
        traders = [a for a in market.leaderboard().index if a.startswith("trader-")]
        assert len(traders) == 2  # two page loads, two sessions, two accounts
        assert market.running and market.clock()["elapsed_s"] > 0
    finally:
        server.stop()
        market.stop()
    assert not market.running
    assert not math.isnan(market.quotes().mid.iloc[0])


def test_fanout_queues_each_session_once_per_round_and_never_twice(eventually) -> None:  # type: ignore[no-untyped-def]
    """A session whose refresh has not run yet is not queued again: a busy server slows every
    session alike instead of piling work up behind one."""
    from vtrade.ui.fanout import Fanout

    class HeldDoc:  # a document whose event loop is too busy to run anything yet
        def __init__(self) -> None:
            self.queued: list = []

        def add_next_tick_callback(self, fn) -> None:  # type: ignore[no-untyped-def]
            self.queued.append(fn)

    fan = Fanout(period_ms=50)
    busy, ran = HeldDoc(), []
    k1 = fan.add(busy, lambda: ran.append("busy"))
    eventually(lambda: fan.skipped >= 3, what="three rounds that found the refresh still waiting")
    assert len(busy.queued) == 1  # still waiting: not queued again
    busy.queued.pop()()  # the loop frees up and runs it
    eventually(lambda: len(busy.queued) == 1, what="the next round to queue it again")
    assert ran == ["busy"]
    fan.remove(k1)
    busy.queued.pop()()  # a refresh still queued for a closed session does nothing
    assert ran == ["busy"]
    fan.stop()
    # A session added right after a stop is refreshed by a new timer (the stopping one may
    # still be in its last wait: it must neither swallow the session nor run beside the new one).
    k2 = fan.add(busy, lambda: ran.append("again"))
    eventually(lambda: len(busy.queued) == 1, what="the restarted timer to queue the new session")
    busy.queued.pop()()
    assert ran == ["busy", "again"]
    fan.remove(k2)
    fan.stop()
    with pytest.raises(ValueError, match="period_ms"):
        Fanout(period_ms=0)


def test_fanout_queues_from_the_server_loop_and_a_failed_queueing_does_not_drop_the_session(eventually) -> None:  # type: ignore[no-untyped-def]
    """CI once saw a student's waiting page stuck at "1 student has joined": the timer thread
    queued into a document the loop was still building, Bokeh raised, and the fan-out dropped the
    session for good. Queueing now happens on the loop's thread, and a failure is retried."""
    import asyncio

    from tornado.ioloop import IOLoop

    from vtrade.ui.fanout import Fanout

    loop_thread: list[threading.Thread] = []
    ready = threading.Event()
    holder: dict = {}

    def serve() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        holder["loop"] = IOLoop.current()
        loop_thread.append(threading.current_thread())
        ready.set()
        holder["loop"].start()

    threading.Thread(target=serve, daemon=True).start()
    assert ready.wait(30)

    class FlakyDoc:  # refuses the first queueing, as a document being built did
        def __init__(self) -> None:
            self.calls: list[threading.Thread] = []

        def add_next_tick_callback(self, fn) -> None:  # type: ignore[no-untyped-def]
            self.calls.append(threading.current_thread())
            if len(self.calls) == 1:
                raise RuntimeError("dictionary changed size during iteration")
            fn()

    fan = Fanout(period_ms=50)
    doc, ran = FlakyDoc(), []
    key = fan.add(doc, lambda: ran.append(1), holder["loop"])
    eventually(lambda: len(ran) >= 3, what="the session to be refreshed after a failed queueing")
    assert set(doc.calls) == set(loop_thread)  # always queued from the loop's own thread
    fan.remove(key)
    fan.stop()
    holder["loop"].add_callback(holder["loop"].stop)


# ---------------------------------------------------------------------------- issue 11: quantities, focus, tables
KINDS = dict(symbols=("AAPL", "SYNTH"), prices={"SYNTH": "100.00"}, crypto=True, speed=0, seed=3, burn_in=20_000)


@pytest.fixture(scope="module")
def kinds() -> LiveMarket:
    """A stock (AAPL), a crypto perpetual in 0.001 BTC lots (BTCUSDT) and a synthetic stock."""
    m = LiveMarket(LiveConfig(**KINDS))
    m.advance(3)
    return m


@pytest.mark.parametrize(("symbol", "quantity", "unit", "shown"),
                         [("AAPL", "10", "shares", "10"), ("BTCUSDT", "0.01", "BTC", "0.010"),
                          ("SYNTH", "7", "shares", "7")])  # fmt: skip
def test_quantity_path_is_exact_in_every_view(kinds: LiveMarket, symbol: str, quantity: str, unit: str,
                                              shown: str) -> None:  # fmt: skip
    """Preview notional = quantity x price, the ladder's own-order mark, the blotter and the
    position all show the domain's quantity in the instrument's unit and precision."""
    from decimal import Decimal

    from vtrade.runtime.live_session import preview_frame
    from vtrade.ui.trader import FILL_COLUMNS, ORDER_COLUMNS, POSITION_COLUMNS, render_preview, render_table

    m, acct = kinds, f"q-{symbol}"
    m.open_account(acct, 10_000_000)
    inst = m.instrument(symbol)
    assert inst.unit == unit
    q = float(quantity)

    # A market order's preview: notional = quantity x its average price (was 1,000x for BTC).
    p = m.preview(acct, symbol, "buy", quantity)
    assert p.quantity == q and p.fillable == q and p.avg_price is not None
    assert p.notional == pytest.approx(q * p.avg_price, rel=1e-12)
    assert f"{shown} {unit} {symbol}" in render_preview(p, inst)
    assert preview_frame(p).notional.iloc[0] == pytest.approx(q * p.avg_price, rel=1e-12)  # the notebook's row

    # A resting limit: its notional is quantity x limit (was $0.00); the ladder marks it exactly.
    limit = Decimal(_far_below(m, symbol)).quantize(inst.tick_size)
    rest = m.preview(acct, symbol, "buy", quantity, "limit", str(limit))
    assert rest.rests and rest.notional == pytest.approx(q * float(limit), rel=1e-12)
    assert m.submit(acct, symbol, "buy", quantity, "limit", str(limit), "gtc").ok
    m.advance(1)
    depth = m.depth(symbol, 5, account=acct)
    assert depth.loc[depth.price == float(limit), "mine"].tolist() == [q]
    assert f"◆ {shown}<" in render_ladder(depth, symbol, inst)

    # A market order fills: the fill, the blotter and the position carry the same quantity.
    assert m.submit(acct, symbol, "buy", quantity).ok
    m.advance(2)
    fills, orders, positions = m.fills(acct), m.orders(acct), m.portfolio(acct)["positions"]
    assert fills.quantity.sum() == q and positions.set_index("symbol").loc[symbol, "quantity"] == q
    assert orders.quantity.tolist() == [q, q]
    lookup = m.instrument
    for df, cols in ((fills, FILL_COLUMNS), (orders, ORDER_COLUMNS), (positions, POSITION_COLUMNS)):
        assert f">{shown}<" in render_table(df, cols, "", lookup), cols


def test_one_focus_moves_ladder_chart_ticket_and_preview(kinds: LiveMarket) -> None:
    """A symbol chosen in the ticket, the focus box or by a watchlist row click moves the ladder,
    the chart, the ticket and its preview together; prices of another instrument are reset."""
    from vtrade.ui.trader import ClickableHTML, link_focus, watchlist

    m = kinds
    m.open_account("focus")
    state, ticket = TraderState(market=m, account="focus"), TicketState(market=m, account="focus")
    link_focus(state, ticket)
    state.refresh()

    def follows(symbol: str) -> None:
        assert state.symbol == ticket.symbol == symbol
        assert state.depth.price.tolist() == m.depth(symbol, state.levels).price.tolist()
        chart = state.price_frame()
        assert len(chart) and chart.mid.iloc[-1] == pytest.approx(m.prices(symbol).mid.iloc[-1])
        assert ticket.preview is not None and ticket.preview.symbol == symbol
        assert ticket.quantity == m.suggested_quantity(symbol)
        # A limit restarts at this symbol's own bid, never another instrument's price.
        assert float(ticket.limit_price) == pytest.approx(m.quotes([symbol]).bid.iloc[0])

    ticket.param.update(order_type="limit", quantity="10", limit_price=_far_below(m, "AAPL"), symbol="AAPL")
    follows("AAPL")  # the ticket moved the rest (and its own numbers reset to AAPL's)
    ticket.limit_price = _far_below(m, "AAPL")
    state.symbol = "BTCUSDT"  # the focus box
    follows("BTCUSDT")
    assert ticket.errors == {}  # no AAPL price carried over to bitcoin (checked in follows)

    view = watchlist(state)
    click = next(o for o in view.select(ClickableHTML))
    assert "data-symbol='SYNTH'" in click.object
    click.clicked = "SYNTH"  # what the browser sends on a row click
    follows("SYNTH")
    assert click.clicked == ""  # ready for the next click


def test_tables_render_for_people(kinds: LiveMarket) -> None:
    """The HTML the dashboard sends: no NaN, no snake_case headers, placeholders when empty,
    buy and sell told apart by word and arrow (not colour alone), money signs before the $."""
    import re

    from vtrade.ui.trader import (
        FILL_COLUMNS,
        ORDER_COLUMNS,
        POSITION_COLUMNS,
        RANKING_COLUMNS,
        fmt_money,
        order_ticket,
        render_table,
        render_watchlist,
    )  # fmt: skip

    m = kinds
    m.open_account("tables")
    empty = [render_table(m.orders("tables"), ORDER_COLUMNS, "No orders yet", m.instrument),
             render_table(m.fills("tables"), FILL_COLUMNS, "No fills yet", m.instrument),
             render_table(m.portfolio("tables")["positions"], POSITION_COLUMNS, "No positions yet", m.instrument)]
    for text, placeholder in zip(empty, ("No orders yet", "No fills yet", "No positions yet"), strict=True):
        assert placeholder in text
    # A resting order (no average price), a filled buy and a filled sell: missing values abound.
    assert m.submit("tables", "AAPL", "buy", 10, "limit", _far_below(m, "AAPL"), "gtc").ok
    assert m.submit("tables", "BTCUSDT", "buy", "0.01").ok
    m.advance(2)  # the buy fills before the sell is checked against the holding
    assert m.submit("tables", "BTCUSDT", "sell", "0.005").ok
    m.advance(2)
    ranking = m.leaderboard().reset_index()
    pages = [render_table(m.orders("tables"), ORDER_COLUMNS, "", m.instrument),
             render_table(m.fills("tables"), FILL_COLUMNS, "", m.instrument),
             render_table(m.portfolio("tables")["positions"], POSITION_COLUMNS, "", m.instrument),
             render_table(ranking, RANKING_COLUMNS, ""), render_watchlist(m.quotes())]  # fmt: skip
    for page in pages:
        assert not re.search(r"\bnan\b", page, re.IGNORECASE), page
        headers = re.findall(r"<th[^>]*>(.*?)</th>", page)
        assert headers and not [h for h in headers if re.search(r"[a-z]_[a-z]", h)], headers
        assert "true" not in page.lower().split("<style>")[0] and "false" not in page.lower()
    orders, fills = pages[0], pages[1]
    assert "▲ BUY" in fills and "▼ SELL" in fills and "▲ BUY" in orders
    assert "0.005" in fills and "0.010" in fills
    assert "simulated" not in pages[3] or "(simulated)" in pages[3]
    assert fmt_money(-154_759_900_063.5) == "−$154,759,900,063.50"

    # The field in error is highlighted, not just named.
    ticket = TicketState(market=m, account="tables", symbol="AAPL")
    view = order_ticket(ticket)
    qty = next(w for w in view.select(pn.widgets.TextInput) if w.name.startswith("Quantity"))
    assert qty.name == "Quantity (shares)"
    ticket.quantity = "-5"
    assert ticket.errors and "vt-error" in qty.css_classes
    ticket.quantity = "5"
    assert not ticket.errors and "vt-error" not in qty.css_classes
    ticket.symbol = "BTCUSDT"
    assert qty.name == "Quantity (BTC)"


def test_a_big_move_shows_in_the_positions_table_at_once(market: LiveMarket) -> None:
    """The positions table is rebuilt every fourth refresh to save work, but a move of the NAV
    (a teacher's shock) rebuilds it in the same refresh that shows the new summary."""
    market.open_account("ada", 100_000)
    assert market.submit("ada", "XOM", "buy", 100).ok
    market.advance(5)
    state = TraderState(market=market, account="ada")
    for _ in range(5):
        state.refresh()  # refreshes 0 and 4 built the tables; 5 and 6 (below) are not the table's turn
    before = float(state.positions.set_index("symbol").price["XOM"])
    market.shock(["XOM"], -20, id="crash")
    state.refresh()
    state.refresh()  # 6: the summary's turn, which sees the move and rebuilds the table too
    after = float(state.positions.set_index("symbol").price["XOM"])
    assert after == pytest.approx(before * 0.8, rel=0.01)
    assert state.summary["nav"] == pytest.approx(float(state.positions.value.sum()) + state.summary["cash"], rel=1e-9)
