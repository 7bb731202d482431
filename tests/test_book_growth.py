"""No fixed account cap: NavBook.add_accounts and PortfolioBook.open_account past its initial
capacity. A grown book must hold exactly the numbers of a book sized right from the start."""

from __future__ import annotations

import copy
import pickle
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from vtrade.core.events import Side, Trade
from vtrade.core.instruments import us_equity
from vtrade.execution.events import OrderFilled
from vtrade.execution.orders import Liquidity
from vtrade.portfolio.book import PortfolioBook
from vtrade.portfolio.nav import NavBook

S = 1_000_000_000
INSTRUMENTS = [us_equity("SPY", sector="ETF"), us_equity("XOM", sector="Energy"), us_equity("NEE", sector="Utilities"),
               us_equity("JPM", sector="Financials")]  # fmt: skip
PRICES = {"SPY": 10000, "XOM": 8000, "NEE": 6000, "JPM": 15000}  # ticks of $0.01
N_ACCOUNTS = 3_000
CLOSER, FLIPPER = 1500, 2600  # past the default capacity, and only in the scripted fills


def fill(ts: int, account: str, fid: str, symbol: str, side: Side, price: int, qty: int, fee: str = "0") -> OrderFilled:
    return OrderFilled(ts, account, f"c-{fid}", symbol, fid, side, price, qty, 0, Liquidity.TAKER, Decimal(fee),
                       2 * price, 0.0, "test")  # fmt: skip


def session_events(seed: int = 5) -> list[OrderFilled | Trade]:
    """Fills for a spread of accounts (below, at and well past the default 1,024 capacity),
    interleaved with prints, including a close and a flip."""
    rng = np.random.default_rng(seed)
    traders = sorted({0, 1, 1023, 1024, 1025, 2047, 2048, N_ACCOUNTS - 1, *rng.integers(0, N_ACCOUNTS, 40).tolist()}
                     - {CLOSER, FLIPPER})
    symbols = list(PRICES)
    events: list[OrderFilled | Trade] = []
    ts = S
    for k in range(300):
        a = int(rng.choice(traders))
        sym = symbols[int(rng.integers(0, len(symbols)))]
        side = Side.BUY if rng.random() < 0.6 else Side.SELL
        px = PRICES[sym] + int(rng.integers(-200, 201))
        events.append(fill(ts, f"acct{a}", f"f{k}", sym, side, px, int(rng.integers(1, 50)), fee=f"{rng.random():.2f}"))
        ts += S
        if k % 7 == 0:
            s2 = symbols[int(rng.integers(0, len(symbols)))]
            events.append(Trade(ts, ts, s2, ts, PRICES[s2] + int(rng.integers(-500, 501)), 1))
            ts += S
    # Close one position exactly and flip another.
    events.append(fill(ts, f"acct{CLOSER}", "close-a", "SPY", Side.BUY, 10000, 7))
    events.append(fill(ts + 1, f"acct{CLOSER}", "close-b", "SPY", Side.SELL, 10050, 7))
    events.append(fill(ts + 2, f"acct{FLIPPER}", "flip-a", "XOM", Side.SELL, 8000, 5))
    events.append(fill(ts + 3, f"acct{FLIPPER}", "flip-b", "XOM", Side.BUY, 8010, 12))
    return events


def run(capacity: int) -> PortfolioBook:
    book = PortfolioBook(INSTRUMENTS, prices=PRICES, capacity=capacity)
    for a in range(N_ACCOUNTS):
        book.open_account(f"acct{a}", cash=10_000 + a)
    for e in session_events():
        book.apply(e)
    book.mark(np.array([101.5, 79.25, 61.0, 149.0]), ts=10_000 * S)
    return book


def assert_same_books(got: PortfolioBook, want: PortfolioBook, accounts: list[str]) -> None:
    """Identical numbers, not merely close: growth must not change any arithmetic."""
    n = len(got.accounts)
    assert got.accounts == want.accounts
    pd.testing.assert_frame_equal(got.frame(), want.frame(), check_exact=True)
    for name in ("nav", "cash", "gross", "net", "sector_exposure", "prices"):
        np.testing.assert_array_equal(getattr(got.nav, name)[:n], getattr(want.nav, name)[:n], err_msg=name)
    for a in accounts:
        pd.testing.assert_frame_equal(got.positions(a), want.positions(a), check_exact=True)
        pd.testing.assert_frame_equal(got.sectors(a), want.sectors(a), check_exact=True)
        assert got.ledgers[a].cash == want.ledgers[a].cash


TRADED = ["acct0", "acct1023", "acct1024", "acct1025", "acct2047", "acct2048", f"acct{N_ACCOUNTS - 1}",
          f"acct{CLOSER}", f"acct{FLIPPER}"]


def test_portfolio_book_grows_past_its_capacity_with_identical_numbers() -> None:
    grown, sized = run(capacity=1024), run(capacity=4096)
    assert grown.nav.n_accounts == N_ACCOUNTS  # grown one row at a time: no unopened rows
    assert len(grown.accounts) == N_ACCOUNTS
    assert_same_books(grown, sized, TRADED)
    # The delta figures are still the full mark-to-market.
    full = grown.nav.full_recompute()
    np.testing.assert_allclose(grown.nav.nav, full.nav, rtol=1e-12)
    np.testing.assert_allclose(grown.nav.sector_exposure, full.sector, rtol=1e-12, atol=1e-9)
    assert (grown.frame()["positions"] > 0).sum() > 40  # the fills really spread over many accounts
    assert grown.row(f"acct{FLIPPER}")["positions"] == 1 and grown.positions(f"acct{FLIPPER}").quantity.tolist() == [7]
    assert grown.row(f"acct{CLOSER}")["positions"] == 0  # closed exactly
    # A tiny initial capacity works the same way.
    assert_same_books(run(capacity=1), sized, TRADED)


def test_publish_reports_new_and_changed_accounts_after_growth() -> None:
    book = PortfolioBook(INSTRUMENTS, prices=PRICES, capacity=2)
    book.open_account("a", cash=100)
    book.open_account("b", cash=100)
    first = book.nav.publish(0, 0)
    assert first is not None and first.accounts.tolist() == [0, 1]
    for k in range(5):  # past the capacity of 2
        book.open_account(f"new{k}", cash=1_000 * (k + 1))
    book.apply(fill(S, "new3", "f1", "SPY", Side.BUY, 10000, 3))
    book.apply(fill(S, "a", "f2", "XOM", Side.BUY, 8000, 1))
    book.apply(Trade(2 * S, 2 * S, "XOM", 2 * S, 8100, 1))  # a: +$1
    changes = book.nav.publish(5 * S, first.version)
    assert changes is not None
    assert changes.accounts.tolist() == [0, 2, 3, 4, 5, 6]  # a moved, every new account is new; b did not
    assert changes.nav.tolist() == [101.0, 1_000.0, 2_000.0, 3_000.0, 4_000.0, 5_000.0]
    # A subscriber starting from scratch sees everyone at the latest published NAV.
    assert book.nav.changed_since(0).accounts.tolist() == list(range(7))
    # Opening cash is not day P&L.
    assert book.nav.day_pnl[2:].tolist() == [0.0] * 5


def test_compact_after_growth_keeps_every_figure() -> None:
    book = run(capacity=16)
    before = book.frame()
    sectors = book.nav.sector_exposure.copy()
    rebuilds = book.nav.rebuilds
    book.nav.compact()
    assert book.nav.rebuilds == rebuilds + 1 and book.nav.holes == 0
    assert book.nav.n_positions == int(book.nav._row_len.sum())
    pd.testing.assert_frame_equal(book.frame(), before, check_exact=True)
    np.testing.assert_array_equal(book.nav.sector_exposure, sectors)
    # The book still grows and trades after a rebuild (compact writes into the grown buffers).
    book.open_account("late", cash=500)
    book.apply(fill(20_000 * S, "late", "late-1", "NEE", Side.BUY, 6100, 2))
    assert book.row("late")["nav"] == pytest.approx(500 - 122 + 2 * 61.0)
    assert book.nav.n_accounts == N_ACCOUNTS + 1
    np.testing.assert_allclose(book.nav.nav, book.nav.full_recompute().nav, rtol=1e-12)


@pytest.mark.parametrize("clone", [lambda b: pickle.loads(pickle.dumps(b)), copy.deepcopy], ids=["pickle", "deepcopy"])
def test_snapshot_of_a_grown_book_round_trips_and_keeps_growing(clone) -> None:  # type: ignore[no-untyped-def]
    book = run(capacity=1024)
    twin = clone(book)
    assert_same_books(twin, book, TRADED)
    # Both continue identically: more accounts (another doubling), fills and prints.
    for b in (book, twin):
        for k in range(2_000):
            b.open_account(f"more{k}", cash=k)
        b.apply(fill(30_000 * S, "more1999", "m1", "JPM", Side.SELL, 15000, 4))
        b.apply(fill(30_000 * S, "acct5", "m2", "SPY", Side.BUY, 10000, 4))
        b.apply(Trade(30_001 * S, 30_001 * S, "JPM", 30_001 * S, 14900, 1))
    assert_same_books(twin, book, [*TRADED, "more1999", "acct5"])
    assert twin.row("more1999")["nav"] == pytest.approx(1999 + 600 - 4 * 149.0)
    # The views still alias the buffers that grow (a write through one shows in the other).
    nav = twin.nav
    for name in ("_nav", "_row_len", "_sector"):
        assert np.shares_memory(getattr(nav, name), nav._acct_buf[name]), name


def test_snapshot_from_before_the_slot_counter_still_loads() -> None:
    """PortfolioWorker snapshots pickle the book: one taken before ``st`` had its slot counter
    (4 entries) must load with the counter restored, not let a kernel read past the array."""
    book = NavBook(["A", "B"], ["Energy", "Energy"], [10.0, 20.0], n_accounts=3, cash=100.0)
    book.apply_fills([0, 1, 1], [0, 0, 1], [1, 2, 3], [-10.0, -20.0, -60.0])
    state = book.__getstate__()
    state["_st"] = state["_st"][:4].copy()
    old = NavBook.__new__(NavBook)
    old.__setstate__(state)
    assert old._st.tolist() == book._st.tolist() and old.n_positions == 3
    old.add_accounts(1, cash=5.0)
    old.apply_fills([3], [1], [1], [-20.0])
    assert old.n_positions == 4 and old.nav.tolist() == [100.0, 100.0, 100.0, 5.0]


def test_add_accounts_appends_empty_accounts() -> None:
    book = NavBook(["A", "B"], ["Energy", "Utilities"], [10.0, 20.0], n_accounts=2, cash=100.0)
    book.apply_fills([1], [1], [2], [-40.0])
    assert book.add_accounts(0).tolist() == []
    ids = book.add_accounts(3, cash=[1.0, 2.0, 3.0])
    assert ids.tolist() == [2, 3, 4] and book.n_accounts == 5
    assert book.nav.tolist() == [100.0, 100.0, 1.0, 2.0, 3.0]
    assert book.gross.tolist() == [0.0, 40.0, 0.0, 0.0, 0.0]
    assert book.sector_exposure.shape == (5, 2) and book.sector_exposure[2:].sum() == 0.0
    assert book.frame().loc[2:, "positions"].tolist() == [0, 0, 0]
    assert book.positions(4).empty
    book.apply_fills([4, 4], [0, 1], [1, -1], [-10.0, 20.0])
    book.apply_prices([0, 1], [11.0, 19.0])
    assert book.nav.tolist() == [100.0, 98.0, 1.0, 2.0, 5.0]
    np.testing.assert_array_equal(book.nav, book.full_recompute().nav)


@pytest.mark.parametrize(("n", "cash"), [(-1, 0.0), (1.5, 0.0), (2, [1.0, 2.0, 3.0]), (1, float("nan"))])
def test_add_accounts_refuses_bad_input_and_changes_nothing(n: object, cash: object) -> None:
    book = NavBook(["A"], ["Energy"], [10.0], n_accounts=2, cash=5.0)
    with pytest.raises(ValueError):
        book.add_accounts(n, cash=cash)  # type: ignore[arg-type]
    assert book.n_accounts == 2 and book.nav.tolist() == [5.0, 5.0]


def test_add_accounts_one_by_one_is_amortised() -> None:
    """Geometric growth: 100k single additions reallocate the buffers ~log2(100k) times."""
    book = NavBook(["A"], ["Energy"], [10.0], n_accounts=1)
    reallocations, buf = 0, book._acct_buf["_nav"]
    for _ in range(100_000):
        book.add_accounts(1, cash=1.0)
        if book._acct_buf["_nav"] is not buf:
            reallocations, buf = reallocations + 1, book._acct_buf["_nav"]
    assert book.n_accounts == 100_001 and reallocations <= 14
    assert book._acct_buf["_nav"].shape[0] < 2 * 100_001
    book.apply_fills([100_000], [0], [1], [-10.0])
    assert book.n_positions == 1 and float(book.nav[100_000]) == 1.0


def test_grown_navbook_matches_a_presized_one_on_every_path() -> None:
    """Random fills and prices (both kernels, relocations, automatic compactions) on a book grown
    account by account while trading, against one created with every account: identical."""
    rng = np.random.default_rng(11)
    n_acc, n_ins = 200, 12
    prices = rng.uniform(5, 200, n_ins).round(2)
    kw = {"multipliers": np.where(rng.random(n_ins) < 0.3, 50.0, 1.0), "min_slack": 1, "slack_ratio": 0.0}
    args = ([f"S{i}" for i in range(n_ins)], ["Energy", "Utilities", None] * 4, prices)
    cash = rng.uniform(1e3, 1e5, n_acc).round(2)
    sized = NavBook(*args, n_accounts=n_acc, cash=cash, **kw)  # type: ignore[arg-type]
    grown = NavBook(*args, n_accounts=3, cash=cash[:3], **kw)  # type: ignore[arg-type]
    for step in range(120):
        if grown.n_accounts < n_acc:
            k = min(int(rng.integers(0, 6)), n_acc - grown.n_accounts)
            grown.add_accounts(k, cash=cash[grown.n_accounts:grown.n_accounts + k])
        m = int(rng.integers(0, 20))
        acc, ins = rng.integers(0, grown.n_accounts, m), rng.integers(0, n_ins, m)
        dq = rng.integers(-30, 31, m).astype(float)
        dc = -dq * prices[ins] * (1 + rng.normal(0, 0.01, m))
        ids = rng.integers(0, n_ins, int(rng.choice([1, 4, 30])))
        px = (prices[ids] * np.exp(rng.normal(0, 0.02, len(ids)))).round(4)
        path = str(rng.choice(["auto", "csc", "rows"]))
        for b in (grown, sized):
            b.apply_fills(acc, ins, dq, dc)
            b.apply_prices(ids, px, path=path)  # type: ignore[arg-type]
        n = grown.n_accounts
        for name in ("nav", "cash", "gross", "net", "sector_exposure"):
            np.testing.assert_array_equal(getattr(grown, name), getattr(sized, name)[:n], err_msg=f"{name} @ {step}")
    assert grown.n_accounts == n_acc and grown.rebuilds >= 1
    pd.testing.assert_frame_equal(grown.frame(), sized.frame(), check_exact=True)
    for a in range(0, n_acc, 17):
        pd.testing.assert_frame_equal(grown.positions(a), sized.positions(a), check_exact=True)
    # Slots in use, closed ones included until a rebuild (whose timing differs between the two).
    for b in (grown, sized):
        assert b.n_positions == int(b._row_len.sum())
