"""Portfolios at runtime: the session API, the worker on the bus (memory and real Redis),
history in DuckDB, and bad input (unknown account, duplicates, out-of-order prices)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import vtrade as vt
from vtrade.core.events import Side, Trade
from vtrade.core.instruments import us_equity
from vtrade.execution.events import OrderFilled
from vtrade.execution.orders import Liquidity
from vtrade.portfolio.book import PortfolioBook, UnknownAccountError
from vtrade.portfolio.events import PortfolioUpdate
from vtrade.portfolio.ledger import Ledger
from vtrade.runtime.bus import Bus, open_bus
from vtrade.runtime.execution_worker import DuckDBSnapshotStore
from vtrade.runtime.portfolio_worker import EXEC, MARKET, PORTFOLIO, PortfolioWorker
from vtrade.runtime.store import Store

S = 1_000_000_000
SPY, XOM = us_equity("SPY", sector="ETF"), us_equity("XOM", sector="Energy")
PRICES = {"SPY": 10000, "XOM": 8000}  # $100.00 and $80.00


def fill(ts: int, account: str, fid: str, symbol: str, side: Side, price: int, qty: int, fee: str = "0") -> OrderFilled:
    return OrderFilled(ts, account, f"c-{fid}", symbol, fid, side, price, qty, 0, Liquidity.TAKER, Decimal(fee),
                       2 * price, 0.0, "test")  # fmt: skip


def trade(ts: int, symbol: str, price: int) -> Trade:
    return Trade(ts, ts, symbol, ts, price, 1)


def session() -> vt.Session:
    s = vt.Session([SPY, XOM], prices=PRICES)
    s.open_account("ada", cash=10_000)
    s.open_account("bob", cash=5_000)
    return s


def test_session_portfolios_by_hand() -> None:
    s = session()
    s.record([
        fill(30 * S, "ada", "f1", "SPY", Side.BUY, 10000, 30, fee="1.00"),  # cash 10,000 - 3,000 - 1 = 6,999
        fill(40 * S, "bob", "f2", "XOM", Side.SELL, 8000, 10),  # short 10 XOM: cash 5,000 + 800 = 5,800
        trade(90 * S, "SPY", 10100),  # SPY $101: ada's 30 shares worth 3,030
        trade(150 * S, "XOM", 7900),  # XOM $79: bob's short worth -790
    ])  # fmt: skip
    p = s.portfolios()
    assert p.loc["ada", "nav"] == pytest.approx(6_999 + 3_030)
    assert p.loc["bob", "nav"] == pytest.approx(5_800 - 790)
    assert p.loc["bob", "net_exposure"] == pytest.approx(-790)
    assert p.loc["ada", "day_pnl"] == pytest.approx(29.0)  # +30 on the price, -1 fee
    pos = s.portfolio("ada")
    assert pos.symbol.tolist() == ["SPY"] and pos.unrealized_pnl.iloc[0] == pytest.approx(30.0)
    assert s.sectors("bob").loc["Energy", "exposure"] == pytest.approx(-790)
    # Exact books: the ledger holds Decimal cash and the FIFO lot.
    assert s.ledger("ada").cash == Decimal("6999.00")
    # History: events at 30 s, 40 s, 90 s, 150 s -> samples at the 60 s and 120 s grid points.
    hist = s.sql("select ts, account, nav from nav_history order by ts, account")
    assert sorted(set(hist.ts.tolist())) == [60 * S, 120 * S]
    ada_60 = hist[(hist.ts == 60 * S) & (hist.account == "ada")].nav.iloc[0]
    assert ada_60 == pytest.approx(6_999 + 3_000)  # before the 90 s print
    assert int(s.sql("select count(*) as n from fills").n.iloc[0]) == 2


def test_bad_input_is_refused_or_a_no_op() -> None:
    s = session()
    f1 = fill(30 * S, "ada", "f1", "SPY", Side.BUY, 10000, 30)
    assert s.record([f1]) == 1
    before = s.portfolios().copy()
    assert s.record([f1]) == 0  # delivered twice: a no-op
    with pytest.raises(UnknownAccountError, match="'eve'"):
        s.record([fill(31 * S, "eve", "f9", "SPY", Side.BUY, 10000, 1)])
    assert s.record([trade(100 * S, "SPY", 10200), trade(99 * S, "SPY", 9000)]) == 1  # the late print is ignored
    after = s.portfolios()
    assert after.loc["ada", "nav"] == pytest.approx(before.loc["ada", "nav"] + 30 * 2)
    assert int(s.sql("select count(*) as n from fills").n.iloc[0]) == 1
    with pytest.raises(UnknownAccountError):
        s.portfolio("eve")


def test_universe_session_has_sectors_and_benchmarks() -> None:
    s = vt.Session.universe(day="2017-11-10")
    s.open_account("ada", cash=100_000)
    aapl = s.book.instruments["AAPL"]
    s.record([fill(S, "ada", "f1", "AAPL", Side.BUY, aapl.price("174.67"), 100)])
    assert s.sectors("ada").loc["Information Technology", "exposure"] > 0
    spy = s.sql("select count(*) as n, max(date) as last from benchmarks where symbol = 'SPY'")
    assert spy.n.iloc[0] > 1000 and str(spy["last"].iloc[0]) == "2017-11-10"


@pytest.fixture(params=["memory", "redis"])
def buses(request: pytest.FixtureRequest) -> Iterator[Bus]:
    if request.param == "memory":
        yield open_bus("memory://")
    else:
        bus = open_bus(request.getfixturevalue("redis_url"), namespace=f"vtp-{uuid.uuid4().hex[:12]}")
        yield bus
        bus.purge()  # type: ignore[attr-defined]


def book() -> PortfolioBook:
    b = PortfolioBook([SPY, XOM], prices=PRICES)
    b.open_account("ada", cash=10_000)
    b.open_account("bob", cash=5_000)
    return b


EVENTS = [
    (EXEC, "ada", fill(10 * S, "ada", "f1", "SPY", Side.BUY, 10000, 30)),
    (MARKET, "SPY", trade(20 * S, "SPY", 10100)),
    (EXEC, "bob", fill(30 * S, "bob", "f2", "XOM", Side.BUY, 8000, 10)),
    (EXEC, "eve", fill(35 * S, "eve", "f3", "XOM", Side.BUY, 8000, 10)),  # unknown account
    (MARKET, "XOM", trade(70 * S, "XOM", 8200)),
    (EXEC, "ada", fill(80 * S, "ada", "f4", "SPY", Side.SELL, 10100, 10)),
    (MARKET, "SPY", trade(130 * S, "SPY", 9900)),
]


def test_worker_publishes_restarts_and_matches_an_uninterrupted_run(buses: Bus) -> None:
    bus = buses
    for topic in (EXEC, MARKET, PORTFOLIO):
        bus.create_topic(topic, 1)  # one partition each: a total order for this small log
    for topic, key, e in EVENTS[:4]:
        bus.publish(topic, key, e)
    store = Store()
    worker = PortfolioWorker(bus, book(), store=store, partitions=1)
    while worker.poll_once():
        pass
    blob = worker.snapshot()
    worker.close()
    for topic, key, e in EVENTS[4:]:
        bus.publish(topic, key, e)
    restored = PortfolioWorker.restore(bus, blob, store=store, partitions=1)
    while restored.poll_once():
        pass
    assert restored.stats["unknown_account"] == 1 and "eve" in restored.errors[0]
    # The same log folded in one go.
    direct = book()
    for _, _, e in EVENTS:
        with contextlib.suppress(UnknownAccountError):
            direct.apply(e)
    assert restored.book.frame().nav.tolist() == pytest.approx(direct.frame().nav.tolist())
    # ada: 10,000 - 3,000 + 1,010 = 8,010 cash + 20 x 99 = 9,990; bob: 4,200 + 10 x 82 = 5,020.
    assert direct.frame().nav.tolist() == pytest.approx([9_990.0, 5_020.0])
    updates = [r.event for p in range(1) for r in bus.read(PORTFOLIO, p, 0, 1000)]
    assert all(isinstance(u, PortfolioUpdate) for u in updates)
    assert updates[-1].account in ("ada", "bob")
    # A ledger rebuilt from the exec log equals the live one.
    log = [r.event for r in bus.read(EXEC, 0, 0, 1000) if r.event.account == "ada"]
    rebuilt = Ledger.rebuild(log, "ada", [SPY, XOM], Decimal(10_000))
    assert rebuilt.cash == restored.book.ledgers["ada"].cash == Decimal("8010.00")
    restored.close()


def test_two_workers_split_accounts_and_both_see_every_price() -> None:
    bus = open_bus("memory://")
    for topic in (EXEC, MARKET, PORTFOLIO):
        bus.create_topic(topic, 4)
    w0 = PortfolioWorker(bus, book(), member="0", partitions=4)
    w1 = PortfolioWorker(bus, book(), member="1", partitions=4)
    for topic, key, e in EVENTS:
        bus.publish(topic, key, e)
    for _ in range(3):
        w0.poll_once()
        w1.poll_once()
    fills_seen = [w.stats["records"] - 3 for w in (w0, w1)]  # 3 prices each, the rest are exec records
    assert sum(fills_seen) == 4  # ada x2, bob, eve: each exec record folded exactly once across the group
    for w in (w0, w1):
        assert w.book.nav.prices.tolist() == pytest.approx([99.0, 82.0])  # both saw every price
    w0.close()
    w1.close()


# -- durability (issue 10): snapshots in a store, resume, and the order of one partition ------------


def test_a_partition_out_of_time_order_across_symbols_loses_no_fill() -> None:
    """The exec log is keyed by account: an account's fills of two symbols arrive in the order
    the execution workers ran, not in time order. Every one must be folded (a sort by time used
    to fold the later offset first and then skip the earlier one as already seen)."""
    bus = open_bus("memory://")
    for topic in (EXEC, MARKET, PORTFOLIO):
        bus.create_topic(topic, 1)
    bus.publish(EXEC, "ada", fill(50 * S, "ada", "f1", "SPY", Side.BUY, 10000, 10))
    bus.publish(EXEC, "ada", fill(20 * S, "ada", "f2", "XOM", Side.BUY, 8000, 10))  # earlier, other symbol
    worker = PortfolioWorker(bus, book(), partitions=1)
    worker.poll_once()
    assert worker.stats["duplicates"] == 0
    assert sorted(worker.book.ledgers["ada"].fill_ids) == ["f1", "f2"]
    assert worker.book.ledgers["ada"].positions == {"SPY": 10, "XOM": 10}
    worker.close()


def test_resume_from_the_store_replays_only_what_came_after_and_applies_a_fill_once(tmp_path: Path) -> None:
    bus = open_bus("memory://", journal=tmp_path / "log.duckdb")
    for topic in (EXEC, MARKET, PORTFOLIO):
        bus.create_topic(topic, 1)
    store = DuckDBSnapshotStore(tmp_path / "snaps.duckdb")
    for topic, key, e in EVENTS[:3]:
        bus.publish(topic, key, e)
    w = PortfolioWorker.resume(bus, store, book, partitions=1, snapshot_every=2, session_timeout_s=0.5)
    assert w.poll_once() == 3  # 3 records >= 2: a snapshot, and the offsets it covers committed
    bus.publish(EXEC, "ada", EVENTS[5][2])
    assert w.poll_once() == 1  # folded, but not committed: no snapshot covers it yet
    w.close()  # a crash: no checkpoint
    with bus.consumer("portfolio", EXEC, member_id="probe") as c:
        assert c.committed(EXEC, 0) == 2  # the two fills the snapshot covers, not the third
    again = PortfolioWorker.resume(bus, store, book, partitions=1, snapshot_every=2)
    assert again.stats["records"] == 3  # the snapshot's state...
    assert again.poll_once() == 1  # ...and only the record after it is replayed
    # The same fill published again (say by a zombie execution worker): a no-op.
    bus.publish(EXEC, "ada", EVENTS[5][2])
    assert again.poll_once() == 1
    assert again.book.ledgers["ada"].fill_ids == ["f1", "f4"]
    assert again.book.ledgers["ada"].cash == Decimal("8010.00")
    again.checkpoint()
    again.close()
    store.close()
    bus.close()
