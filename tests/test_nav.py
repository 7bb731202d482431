"""Delta NAV across many accounts (vtrade.portfolio.nav): deltas == full recompute == a plain
Python reference model, hand-computed cases, analytics, bad input and the publish stream."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from vtrade.portfolio.nav import NavBook

SECTORS = ["Energy", "Utilities", "Financials", None]


class Reference:
    """Dict-of-positions model of the same semantics, in plain Python (no shared code)."""

    def __init__(self, prices: list[float], mult: list[float], sec: list[str], cash: list[float]) -> None:
        self.prices, self.mult, self.sec, self.cash = list(prices), mult, sec, list(cash)
        self.pos: list[dict[int, list[float]]] = [{} for _ in cash]  # account -> {instrument: [qty, cost]}
        self.last_ts: dict[int, int] = {}

    def prices_batch(self, ids: list[int], px: list[float], ts: list[int]) -> None:
        for i, p, t in zip(ids, px, ts, strict=True):
            if t < self.last_ts.get(i, -(2**63)):
                continue
            self.last_ts[i] = t
            self.prices[i] = p

    def fill(self, a: int, i: int, dq: float, dc: float) -> None:
        self.cash[a] += dc
        if dq == 0:
            return
        q0, c0 = self.pos[a].get(i, [0.0, 0.0])
        f = -dc / dq
        q1 = q0 + dq
        if q0 == 0 or (q0 > 0) == (dq > 0):
            c1 = c0 + dq * f
        elif abs(dq) <= abs(q0):
            c1 = c0 * q1 / q0
        else:
            c1 = q1 * f
        self.pos[a][i] = [q1, 0.0 if q1 == 0 else c1]

    def marks(self, a: int) -> tuple[float, float, float, dict[str, float], float]:
        net = gross = cost = 0.0
        sectors: dict[str, float] = {}
        for i, (q, c) in self.pos[a].items():
            v = q * self.prices[i] * self.mult[i]
            net += v
            gross += abs(v)
            cost += c
            sectors[self.sec[i]] = sectors.get(self.sec[i], 0.0) + v
        return self.cash[a] + net, net, gross, sectors, net - cost


def snapshot(book: NavBook) -> dict[str, object]:
    """Every piece of state, deep-copied (arrays, counters), to prove a call changed nothing."""
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(book).items()
            if isinstance(v, np.ndarray | int | float)}


def assert_same_state(before: dict[str, object], book: NavBook) -> None:
    after = snapshot(book)
    assert before.keys() == after.keys()
    for k, v in before.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(v, after[k], err_msg=k)
        else:
            assert v == after[k], k


def make_book(n_acc: int = 2, **kwargs: object) -> NavBook:
    return NavBook(["AAA", "BBB", "CCC"], ["Energy", "Energy", "Utilities"], [10.0, 20.0, 50.0],
                   n_accounts=n_acc, cash=1000.0, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Randomized property test
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_delta_matches_full_recompute_and_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_acc, n_ins = 40, 15
    prices = rng.uniform(5, 200, n_ins).round(2)
    mult = np.where(rng.random(n_ins) < 0.2, 50.0, 1.0)  # some futures-like multipliers
    sec_names = [SECTORS[k % len(SECTORS)] for k in range(n_ins)]
    cash = rng.uniform(1e4, 1e5, n_acc).round(2)
    # min_slack=1 forces row/column relocations, array doubling and automatic compactions.
    book = NavBook([f"S{i}" for i in range(n_ins)], sec_names, prices, n_accounts=n_acc, cash=cash,
                   multipliers=mult, min_slack=1, slack_ratio=0.0)
    ref = Reference(prices.tolist(), mult.tolist(), [s or "Unknown" for s in sec_names], cash.tolist())
    paths_used: set[str] = set()
    saw_holes = False
    ts = 0
    for step in range(150):
        # Fills: new positions, adds, reductions, closes to exactly zero and flips.
        k = int(rng.integers(0, 25))
        acc = rng.integers(0, n_acc, k)
        ins = rng.integers(0, n_ins, k)
        dq = rng.integers(-30, 31, k).astype(float)
        for j in range(k):  # sometimes close the position exactly
            held = ref.pos[acc[j]].get(ins[j], [0.0])[0]
            if held and rng.random() < 0.3:
                dq[j] = -held
        fill_px = np.asarray(ref.prices)[ins] * (1 + rng.normal(0, 0.01, k))
        dc = -dq * fill_px * mult[ins] - rng.uniform(0, 2, k)  # fees join the cost basis
        book.apply_fills(acc, ins, dq, dc)
        for a, i, q, c in zip(acc.tolist(), ins.tolist(), dq.tolist(), dc.tolist(), strict=True):
            ref.fill(a, i, q, c)
        saw_holes |= book.holes > 0
        # Prices: repeated instruments (last wins) and late prints (ignored).
        m = int(rng.choice([1, 3, 40]))
        ids = rng.integers(0, n_ins, m)
        px = (np.asarray(ref.prices)[ids] * np.exp(rng.normal(0, 0.02, m))).round(4)
        stamps = ts + rng.integers(-5, 10, m)
        ts += 10
        path = str(rng.choice(["auto", "csc", "rows"]))
        res = book.apply_prices(ids, px, stamps, path=path)  # type: ignore[arg-type]
        paths_used.add(res.path)
        ref.prices_batch(ids.tolist(), px.tolist(), stamps.tolist())

        full = book.full_recompute()
        # Relative to each account's size (|cash| + gross): a net figure can cancel to ~0.
        scale = np.abs(book.cash) + full.gross + 1.0
        for got, want in ((book.nav, full.nav), (book.net, full.net), (book.gross, full.gross)):
            assert np.all(np.abs(got - want) <= 1e-9 * scale), step
        assert np.all(np.abs(book.sector_exposure - full.sector) <= 1e-9 * scale[:, None]), step
        np.testing.assert_array_equal(book.prices, ref.prices)
        if step % 10 == 0:
            frame = book.frame()
            for a in range(n_acc):
                nav, _net, gross, sectors, unreal = ref.marks(a)
                s = abs(ref.cash[a]) + gross + 1.0
                assert abs(book.nav[a] - nav) <= 1e-9 * s
                assert abs(book.gross[a] - gross) <= 1e-9 * s
                assert abs(frame.loc[a, "unrealized_pnl"] - unreal) <= 1e-9 * s
                sf = book.sector_frame(a)["exposure"]
                for name in book.sectors:
                    assert abs(sf[name] - sectors.get(name, 0.0)) <= 1e-9 * s
                held = {i: q for i, (q, _) in ref.pos[a].items() if q != 0}
                assert frame.loc[a, "positions"] == len(held)
    assert paths_used >= {"csc", "rows"}
    assert saw_holes and book.rebuilds >= 2  # the structural paths really ran
    assert book.stale_updates > 0


def test_compact_keeps_every_figure() -> None:
    rng = np.random.default_rng(7)
    book = NavBook([f"S{i}" for i in range(6)], SECTORS[:3] * 2, rng.uniform(1, 9, 6), n_accounts=5, min_slack=1)
    book.apply_fills(rng.integers(0, 5, 60), rng.integers(0, 6, 60), rng.integers(-3, 4, 60), rng.normal(0, 5, 60))
    before = book.frame()
    sectors = book.sector_exposure.copy()
    n = book.rebuilds
    book.compact()
    assert book.rebuilds == n + 1 and book.holes == 0
    pd.testing.assert_frame_equal(book.frame(), before)
    np.testing.assert_array_equal(book.sector_exposure, sectors)


# ---------------------------------------------------------------------------------------------
# Hand-computed cases: 2 accounts, 3 instruments (AAA, BBB Energy; CCC Utilities)
# ---------------------------------------------------------------------------------------------


def test_hand_computed_two_accounts_three_instruments() -> None:
    book = make_book()
    # account 0: long 10 AAA @10, short 5 CCC @50; account 1: long 2 BBB @20, long 1 CCC @50
    book.apply_fills([0, 0, 1, 1], [0, 2, 1, 2], [10, -5, 2, 1], [-100.0, 250.0, -40.0, -50.0])
    assert book.cash.tolist() == [1150.0, 910.0]
    assert book.nav.tolist() == [1000.0, 1000.0]
    assert book.gross.tolist() == [350.0, 90.0]
    assert book.net.tolist() == [-150.0, 90.0]
    # AAA 10 -> 12 -> 11 (last wins, delta against 10), CCC 50 -> 40
    res = book.apply_prices([0, 2, 0], [12.0, 40.0, 11.0])
    assert (res.updates, res.stale, res.instruments) == (3, 0, 2)
    # account 0: 10 × (11-10) + (-5) × (40-50) = 10 + 50; account 1: 1 × (40-50) = -10
    assert book.nav.tolist() == [1060.0, 990.0]
    assert book.gross.tolist() == [110.0 + 200.0, 40.0 + 40.0]
    assert book.net.tolist() == [110.0 - 200.0, 80.0]
    energy, utilities = book.sectors.index("Energy"), book.sectors.index("Utilities")
    assert book.sector_exposure[:, energy].tolist() == [110.0, 40.0]
    assert book.sector_exposure[:, utilities].tolist() == [-200.0, 40.0]
    frame = book.frame()
    assert frame["unrealized_pnl"].tolist() == [60.0, -10.0]
    assert frame["day_pnl"].tolist() == [60.0, -10.0]
    assert frame["positions"].tolist() == [2, 2]
    sf = book.sector_frame(0)
    assert sf.loc["Energy"].tolist() == [110.0, 110.0, 110.0 / 1060.0, 110.0 / 310.0]
    assert sf.loc["Utilities", "pct_gross"] == 200.0 / 310.0
    book.start_day()
    assert book.day_pnl.tolist() == [0.0, 0.0]
    book.apply_prices([1], [25.0])
    assert book.day_pnl.tolist() == [0.0, 10.0]


def test_multiplier_and_zero_price() -> None:
    book = NavBook(["ES", "X"], ["Broad", "Energy"], [4000.0, 3.0], n_accounts=1, multipliers=[50.0, 1.0])
    book.apply_fills([0], [0], [2], [0.0], fill_prices=[4000.0])  # futures: no cash changes hands
    assert book.nav[0] == 400_000.0 and book.frame()["unrealized_pnl"][0] == 0.0
    book.apply_prices([0], [4010.0])
    assert book.nav[0] == 400_000.0 + 2 * 10 * 50
    book.apply_fills([0], [1], [100], [-300.0])
    book.apply_prices([1], [0.0])  # a price of zero is a valid mark (a worthless stock)
    assert book.frame().loc[0, "unrealized_pnl"] == 1000.0 - 300.0


def test_average_cost_add_reduce_flip_close() -> None:
    book = NavBook(["A"], ["Energy"], [10.0], n_accounts=1)
    book.apply_fills([0], [0], [10], [-100.0])  # 10 @ 10
    book.apply_fills([0], [0], [10], [-140.0])  # add 10 @ 14 -> basis 240 (avg 12)
    assert book.positions(0)["cost_basis"].tolist() == [240.0]
    book.apply_fills([0], [0], [-5], [75.0])  # sell 5 @ 15: the rest keeps avg 12 -> 180
    assert book.positions(0)["cost_basis"].tolist() == [180.0]
    book.apply_fills([0], [0], [-20], [300.0])  # flip to -5 @ 15 -> basis -75
    pos = book.positions(0)
    assert pos["qty"].tolist() == [-5.0] and pos["cost_basis"].tolist() == [-75.0]
    assert pos["unrealized_pnl"].tolist() == [-50.0 + 75.0]  # short 5 marked at 10, sold at 15
    book.apply_fills([0], [0], [5], [-50.0])  # cover: closed
    assert book.positions(0).empty
    assert book.frame().loc[0, ["positions", "gross_exposure", "unrealized_pnl"]].tolist() == [0, 0.0, 0.0]
    assert math.isnan(book.frame().loc[0, "hhi"])


def test_pure_cash_fill_moves_nav_only() -> None:
    book = make_book()
    book.apply_fills([1], [2], [0], [-7.5])  # a fee with no quantity: no position is opened
    assert book.nav.tolist() == [1000.0, 992.5] and book.positions(1).empty


# ---------------------------------------------------------------------------------------------
# HHI and top holdings
# ---------------------------------------------------------------------------------------------


def test_hhi_and_top_holdings() -> None:
    book = NavBook(list("ABCDE"), ["Energy"] * 5, [10.0, 20.0, 5.0, 1.0, 4.0], n_accounts=3)
    # account 0: values A 100, B -300, C 50, D 50 ; account 1: one position ; account 2: none
    book.apply_fills([0, 0, 0, 0, 1], [0, 1, 2, 3, 4], [10, -15, 10, 50, 3], [0.0] * 5,
                     fill_prices=[10.0, 20.0, 5.0, 1.0, 4.0])
    hhi = book.frame()["hhi"]
    assert hhi[0] == pytest.approx((100**2 + 300**2 + 50**2 + 50**2) / 500**2)  # 0.44
    assert hhi[1] == 1.0
    assert math.isnan(hhi[2])
    top = book.top_holdings(0, 3)
    assert top["symbol"].tolist() == ["B", "A", "C"]  # C and D tie at |50|: lower id first
    assert top["value"].tolist() == [-300.0, 100.0, 50.0]
    assert top["weight"].tolist() == [0.6, 0.2, 0.1]
    assert len(book.top_holdings(0, 10)) == 4 and book.top_holdings(2, 3).empty
    with pytest.raises(ValueError, match="k must be"):
        book.top_holdings(0, -1)


# ---------------------------------------------------------------------------------------------
# Bad input: a clear ValueError, and nothing changes
# ---------------------------------------------------------------------------------------------

BAD_CALLS: list[tuple[str, Callable[[NavBook], object], str]] = [
    ("unknown instrument", lambda b: b.apply_prices([0, 3], [1.0, 2.0]), "unknown instrument id 3"),
    ("negative instrument", lambda b: b.apply_prices([-1], [1.0]), "unknown instrument id -1"),
    ("float ids", lambda b: b.apply_prices([0.0], [1.0]), "must be integers"),
    ("NaN price", lambda b: b.apply_prices([0, 1], [11.0, float("nan")]), r"prices\[1\] = nan"),
    ("inf price", lambda b: b.apply_prices([0], [float("inf")]), "finite"),
    ("negative price", lambda b: b.apply_prices([1, 0], [3.0, -1.0]), r"prices\[1\] = -1.0"),
    ("lengths", lambda b: b.apply_prices([0, 1], [1.0]), "mismatched array lengths"),
    ("ts lengths", lambda b: b.apply_prices([0, 1], [1.0, 2.0], ts=[1, 2, 3]), "mismatched array lengths"),
    ("ts dtype", lambda b: b.apply_prices([0], [1.0], ts=[1.5]), "integer nanoseconds"),
    ("2-D", lambda b: b.apply_prices([[0]], [[1.0]]), "1-D"),
    ("path", lambda b: b.apply_prices([0], [1.0], path="fast"), "path must be"),  # type: ignore[arg-type]
    ("unknown account", lambda b: b.apply_fills([0, 2], [0, 0], [1, 1], [0.0, 0.0]), "unknown account id 2"),
    ("fill instrument", lambda b: b.apply_fills([0], [9], [1], [0.0]), "unknown instrument id 9"),
    ("NaN qty", lambda b: b.apply_fills([0, 1], [0, 0], [1, float("nan")], [0.0, 0.0]), r"qty_delta\[1\]"),
    ("inf cash", lambda b: b.apply_fills([0], [0], [1], [float("-inf")]), r"cash_delta\[0\]"),
    ("fill lengths", lambda b: b.apply_fills([0, 1], [0, 1], [1, 1], [0.0]), "mismatched array lengths"),
    ("fill price", lambda b: b.apply_fills([0], [0], [1], [0.0], fill_prices=[-2.0]), r"fill_prices\[0\]"),
    ("transfer", lambda b: b.apply_fills([0], [0], [1], [0.0], fill_prices=[1.0, 2.0]), "mismatched"),
    ("transfer account", lambda b: b.transfer_cash([5], [1.0]), "unknown account id 5"),
    ("transfer NaN", lambda b: b.transfer_cash([0], [float("nan")]), "amounts"),
    ("version", lambda b: b.changed_since(99), "version must be"),
    ("frame account", lambda b: b.frame([0, 7]), "unknown account id 7"),
    ("sector_frame account", lambda b: b.sector_frame(-1), "unknown account id -1"),
    ("symbol", lambda b: b.instrument_ids(["AAA", "ZZZ"]), "unknown instrument"),
]


@pytest.mark.parametrize(("name", "call", "message"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_raises_and_changes_nothing(name: str, call: Callable[[NavBook], object], message: str) -> None:
    book = make_book()
    book.apply_fills([0, 1], [0, 2], [10, -3], [-100.0, 150.0])
    book.apply_prices([0, 2], [11.0, 49.0], ts=[100, 100])
    book.changed_since(0)
    before = snapshot(book)
    with pytest.raises(ValueError, match=message):
        call(book)
    assert_same_state(before, book)


@pytest.mark.parametrize("kwargs", [
    {"prices": [1.0, float("nan"), 1.0]}, {"prices": [1.0, 2.0]}, {"multipliers": [1.0, 0.0, 1.0]},
    {"n_accounts": -1}, {"cash": [1.0, 2.0, 3.0]}, {"symbols": ["A", "A", "B"]}, {"min_slack": 0},
])
def test_bad_constructor_arguments(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"symbols": ["A", "B", "C"], "sectors": [None] * 3, "prices": [1.0, 2.0, 3.0],
                               "n_accounts": 2}
    args.update(kwargs)
    with pytest.raises(ValueError):
        NavBook(**args)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Out-of-order prices
# ---------------------------------------------------------------------------------------------


def test_out_of_order_prices_are_ignored_and_counted() -> None:
    book = make_book()
    book.apply_fills([0], [0], [10], [-100.0])
    assert book.apply_prices([0], [12.0], ts=1_000).stale == 0
    res = book.apply_prices([0, 0, 1], [99.0, 13.0, 21.0], ts=[999, 1_000, 5])  # 999 is late; 1000 ties (kept)
    assert (res.stale, res.instruments) == (1, 2)
    assert book.prices.tolist() == [13.0, 21.0, 50.0]
    assert book.nav[0] == 1000.0 + 10 * 3.0
    # Within one batch a late print after a newer one is ignored too.
    res = book.apply_prices([1, 1], [30.0, 25.0], ts=[20, 10])
    assert res.stale == 1 and book.prices[1] == 30.0
    assert book.stale_updates == 2
    # Updates without ts are never stale (no ordering information) and leave the last ts as is.
    book.apply_prices([0], [14.0])
    assert book.apply_prices([0], [1.0], ts=999).stale == 1 and book.prices[0] == 14.0


# ---------------------------------------------------------------------------------------------
# The portfolio stream: changed_since / publish
# ---------------------------------------------------------------------------------------------


def test_changed_since_keeps_subscribers_within_tolerance() -> None:
    rng = np.random.default_rng(11)
    n = 30
    book = NavBook([f"S{i}" for i in range(8)], SECTORS * 2, rng.uniform(10, 50, 8), n_accounts=n, cash=1e4,
                   publish_tol=0.5)
    book.apply_fills(rng.integers(0, n, 100), rng.integers(0, 8, 100), rng.integers(-20, 20, 100),
                     rng.normal(0, 10, 100))
    fast = np.full(n, np.nan)  # follows every version
    slow = np.full(n, np.nan)  # catches up every 5th round
    v_fast = v_slow = 0
    for r in range(40):
        ids = rng.integers(0, 8, 3)
        book.apply_prices(ids, book.prices[ids] * np.exp(rng.normal(0, 0.002, 3)))
        ch = book.changed_since(v_fast)
        assert ch.version >= v_fast and np.all(np.diff(ch.accounts) > 0)
        if r:  # everything reported really moved past the tolerance since it was last reported
            assert np.all(np.abs(ch.nav - fast[ch.accounts]) > 0.5)
        fast[ch.accounts] = ch.nav
        v_fast = ch.version
        assert np.all(np.abs(fast - book.nav) <= 0.5)  # the subscriber's view is never more than tol off
        if r % 5 == 4:
            ch = book.changed_since(v_slow)
            slow[ch.accounts] = ch.nav
            v_slow = ch.version
            np.testing.assert_array_equal(slow, fast)
    quiet = book.changed_since(v_fast)
    assert quiet.version == v_fast and len(quiet.accounts) == 0


def test_publish_cadence_uses_simulated_time() -> None:
    book = make_book(publish_every_ns=1_000, publish_tol=0.0)
    first = book.publish(10_000, 0)
    assert first is not None and first.accounts.tolist() == [0, 1]
    book.transfer_cash([1], [5.0])
    assert book.publish(10_999, first.version) is None
    later = book.publish(11_000, first.version)
    assert later is not None and later.accounts.tolist() == [1] and later.nav.tolist() == [1005.0]


def test_transfers_are_not_pnl() -> None:
    book = make_book()
    book.apply_fills([0], [1], [5], [-100.0])
    book.start_day()
    book.transfer_cash([0, 0, 1], [500.0, -200.0, 50.0])
    book.apply_prices([1], [22.0])
    assert book.nav.tolist() == [1000.0 + 300.0 + 10.0, 1050.0]
    assert book.day_pnl.tolist() == [10.0, 0.0]


# ---------------------------------------------------------------------------------------------
# Views and the universe
# ---------------------------------------------------------------------------------------------


def test_views_are_read_only_and_frames_select_accounts() -> None:
    book = make_book(n_acc=4)
    with pytest.raises(ValueError):
        book.nav[0] = 1.0
    frame = book.frame([3, 1])
    assert frame.index.tolist() == [3, 1] and frame["nav"].tolist() == [1000.0, 1000.0]
    assert list(frame.columns) == ["nav", "cash", "gross_exposure", "net_exposure", "unrealized_pnl", "day_pnl",
                                   "positions", "hhi", "leverage"]
    assert book.sector_frame(2).index.tolist() == ["Energy", "Utilities"]
    assert book.nbytes()["total"] == sum(v for k, v in book.nbytes().items() if k != "total")


def test_from_universe_uses_closes_and_gics_sectors() -> None:
    from vtrade.market.feeds.daily import load_universe

    u = load_universe(tickers=["AAPL", "XOM", "JPM"], start="2017-01-03", end="2017-01-04", etfs=False)
    book = NavBook.from_universe(u, n_accounts=2, day="2017-01-03", cash=100.0)
    assert book.symbols == ("AAPL", "JPM", "XOM")
    assert book.sectors == ("Energy", "Financials", "Information Technology")
    closes = u.frame[u.frame["date"] == "2017-01-03"].set_index("ticker")["close"]
    assert book.prices.tolist() == closes.loc[list(book.symbols)].tolist()
    with pytest.raises(ValueError, match="no close"):
        NavBook.from_universe(u, n_accounts=1, day="2017-01-07")  # a Saturday
