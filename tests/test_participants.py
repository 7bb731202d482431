"""Simulated participants are ordinary strategy functions of a small context (a Desk): the same
functions run in the live market and in ``vt.replay``, seeded per (session seed, account, symbol)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

import vtrade as vt
from vtrade.core.events import Side
from vtrade.core.instruments import Instrument, us_equity
from vtrade.core.rng import seeded_rng
from vtrade.execution.orders import TimeInForce
from vtrade.market import participants as p

CAPTURE = "data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"


def test_the_noise_trader_runs_in_replay_deterministically_per_seed() -> None:
    def run(seed: int) -> vt.ReplayResult:
        return vt.replay(CAPTURE, strategy=p.noise_trader, every="1s", latency="1ms", realism="L2", seed=seed,
                         cash=1_000_000, account_kind="margin")  # fmt: skip

    a, b, c = run(3), run(3), run(4)
    assert len(a.fills) > 50 and (a.fills.liquidity == "taker").all()
    assert a.output_hash() == b.output_hash() != c.output_hash()
    # Market orders of 100-500 lots, IOC: every order's quantity is a whole number of hundreds.
    assert set(a.orders.quantity_lots.dropna()) <= {100.0, 200.0, 300.0, 400.0, 500.0}


def test_the_market_maker_runs_in_replay_and_only_makes() -> None:
    r = vt.replay(CAPTURE, strategy=p.market_maker, every="1s", latency="1ms", realism="L2", seed=3)
    s = r.summary()
    assert s["fills"] > 0 and s["maker_share"] == 1.0


@dataclass
class FakeDesk:
    """A Desk over a few symbols with set quotes and changes: what a participant sees, nothing else."""

    quotes: dict[str, tuple[int, int]]
    changes: dict[str, float]
    held: dict[str, int] = field(default_factory=dict)
    sent: list[tuple[str, Side, int, int | None]] = field(default_factory=list)
    account: str = "sim"
    now: int = 0

    def symbols(self) -> list[str]:
        return list(self.quotes)

    def instrument_for(self, symbol: str) -> Instrument:
        return us_equity(symbol)

    def quote(self, symbol: str) -> tuple[int, int] | None:
        return self.quotes.get(symbol)

    def change(self, symbol: str) -> float | None:
        return self.changes.get(symbol)

    def holding(self, symbol: str) -> int:
        return self.held.get(symbol, 0)

    def working(self, symbol: str | None = None) -> list[p.WorkingOrder]:
        return []

    def capital(self) -> Decimal | None:
        return Decimal("100000")

    def cash(self) -> Decimal | None:
        return Decimal("100000")

    def rng(self, symbol: str) -> np.random.Generator:
        return seeded_rng(7, f"{self.account}/{symbol}")

    def place(self, symbol: str, side: Side, lots: int, price: int | None = None, *,
              tif: TimeInForce = TimeInForce.DAY, post_only: bool = False) -> str:  # fmt: skip
        self.sent.append((symbol, side, lots, price))
        return f"{self.account}-{len(self.sent)}"

    def cancel(self, client_order_id: str) -> None:
        pass


def test_momentum_and_contrarian_rank_the_day_and_exit_by_their_rules() -> None:
    quotes = {s: (9999, 10001) for s in "ABCDEF"}  # all at $100.00
    changes = {"A": 0.03, "B": -0.02, "C": 0.01, "D": -0.04, "E": 0.02, "F": 0.0}
    mom = FakeDesk(quotes, changes, held={"B": 50, "F": 7})
    p.momentum(mom)
    # Sells what is red (B), keeps the flat F; buys the three top gainers, $10,000 each at $101.
    assert mom.sent == [("B", Side.SELL, 50, None), ("A", Side.BUY, 99, None), ("E", Side.BUY, 99, None),
                        ("C", Side.BUY, 99, None)]  # fmt: skip
    con = FakeDesk(quotes, changes, held={"A": 10})
    p.contrarian(con)
    assert con.sent == [("A", Side.SELL, 10, None), ("D", Side.BUY, 99, None), ("B", Side.BUY, 99, None),
                        ("F", Side.BUY, 99, None)]  # fmt: skip
