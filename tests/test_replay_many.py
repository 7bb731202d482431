"""``vt.replay_many``: every row is what a separate ``vt.replay`` with its parameters gives, on the
batched path (Binance L2 and L1) and event by event (LOBSTER L3), and bad parameters are refused
before anything runs."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import vtrade as vt
from vtrade.core.events import MarketEvent
from vtrade.core.instruments import BINANCE_BTCUSDT_USDM
from vtrade.market.feeds import open_feed
from vtrade.runtime.replay import Context, ReplayResult
from vtrade.strategies import market_maker

ROOT = Path(__file__).resolve().parent.parent
BINANCE = ROOT / "data/crypto/hftbacktest_binance_usdm_btcusdt_20240808.jsonl.gz"
AAPL_L10 = ROOT / "tests/fixtures/lobster/AAPL_2012-06-21_34200000_57600000_message_10.first999.csv.gz"
SUMMARY = ["fills", "volume", "position", "position_lots", "vwap_shortfall_bps", "fees", "pnl", "maker_share",
           "currency"]  # fmt: skip


@pytest.fixture(scope="module")
def binance_events() -> list[MarketEvent]:
    return list(itertools.islice(open_feed(BINANCE), 20_000))


def _row_of(result: ReplayResult) -> dict[str, Any]:
    return {**result.summary(), "output_hash": result.output_hash()}


def _same(row: pd.Series, expected: dict[str, Any]) -> None:
    got = {k: row[k] for k in expected}
    # NaN != NaN: compare the figures as text (an empty run's shortfall and maker share are NaN).
    assert {k: repr(v) for k, v in got.items()} == {k: repr(v) for k, v in expected.items()}


def test_each_row_equals_a_separate_replay_on_the_batched_path(binance_events: list[MarketEvent]) -> None:
    grid = {"realism": ["L2", "L1"], "offset": [1, 2], "latency": ["1ms", "5ms"]}
    runs = vt.replay_many(binance_events, market_maker, params=grid, every="100ms", instrument=BINANCE_BTCUSDT_USDM)
    assert list(runs.columns) == ["realism", "offset", "latency", *SUMMARY, "output_hash"]
    assert len(runs) == 8 and runs[["realism", "offset", "latency"]].values.tolist()[:3] == [
        ["L2", 1, "1ms"], ["L2", 1, "5ms"], ["L2", 2, "1ms"]]  # fmt: skip
    assert runs.output_hash.nunique() == 8  # every setting changes the run
    for _, row in runs.iterrows():
        alone = vt.replay(binance_events, strategy=functools.partial(market_maker, offset=row.offset), every="100ms",
                          realism=row.realism, latency=row.latency, instrument=BINANCE_BTCUSDT_USDM)  # fmt: skip
        _same(row, _row_of(alone))
    assert (runs.fills > 0).all()


class Counter:
    """A stateful strategy class: quotes ``lots`` and stops after ``stop_after`` calls."""

    def __init__(self, lots: int = 1, stop_after: int = 50) -> None:
        self.lots, self.stop_after, self.calls = lots, stop_after, 0

    def __call__(self, ctx: Context) -> None:
        self.calls += 1
        if self.calls <= self.stop_after:
            market_maker(ctx, lots=self.lots)


def test_a_strategy_class_gets_a_new_instance_per_run(binance_events: list[MarketEvent]) -> None:
    params = [{"lots": 1}, {"lots": 1}, {"lots": 2, "stop_after": 10}]
    runs = vt.replay_many(binance_events, Counter, params=params, every="100ms", latency="1ms",
                          instrument=BINANCE_BTCUSDT_USDM)  # fmt: skip
    assert list(runs.columns[:2]) == ["lots", "stop_after"]
    assert runs.stop_after.isna().tolist() == [True, True, False]
    assert runs.output_hash[0] == runs.output_hash[1]  # the second run did not inherit the first's count
    for (_, row), p in zip(runs.iterrows(), params, strict=True):
        alone = vt.replay(binance_events, strategy=Counter(**p), every="100ms", latency="1ms",
                          instrument=BINANCE_BTCUSDT_USDM)  # fmt: skip
        _same(row, _row_of(alone))


def test_a_path_read_once_event_by_event_at_l3() -> None:
    params = [{"latency": "0ms"}, {"latency": "1ms", "offset": 2}, {"every": "500ms", "queue": "prob"}]
    runs = vt.replay_many(AAPL_L10, market_maker, params=params, realism="L3")
    assert list(runs.columns[:4]) == ["latency", "offset", "every", "queue"]
    for (_, row), p in zip(runs.iterrows(), params, strict=True):
        offset = p.pop("offset", 1)
        replay_args: dict[str, Any] = {"every": "1s", "latency": 0, **p}
        alone = vt.replay(AAPL_L10, strategy=functools.partial(market_maker, offset=offset), realism="L3",
                          **replay_args)  # fmt: skip
        _same(row, _row_of(alone))


@pytest.mark.parametrize(
    ("params", "common", "message"),
    [
        ([], {}, "params is empty"),
        ({"offset": []}, {}, "has no combination"),
        ({"offset": 1}, {}, "a list of values"),
        ({"every": "100ms"}, {}, "a list of values"),
        ("every=1s", {}, "list of parameter sets"),
        ([{"offset": 1}, "latency=1ms"], {}, r"params\[1\]"),
        ([{"ofset": 1}], {}, r"unknown parameter 'ofset'.*the strategy takes \['lots', 'offset'\]"),
        ([{"symbol": "BTCUSDT"}], {}, "cannot vary between runs"),
        ([{"strategy": market_maker}], {}, "second argument"),
        ([{"latency": "1ms"}], {"latency": "2ms"}, "also in params"),
        ([{"offset": 1}], {"latncy": "2ms"}, r"unknown keyword\(s\) \['latncy'\]"),
        ([{"offset": 1}, {"every": "soon"}], {}, "not a duration"),
        ([{"offset": 1}, {"queue": "fifo"}], {}, "queue"),
    ],
)
def test_bad_parameters_are_refused_before_any_run(
    binance_events: list[MarketEvent], params: Any, common: dict[str, Any], message: str
) -> None:
    calls: list[int] = []

    def watched(ctx: Context, offset: int = 1, lots: int = 1) -> None:
        calls.append(ctx.now)
        market_maker(ctx, offset=offset, lots=lots)

    with pytest.raises(ValueError, match=message):
        vt.replay_many(binance_events[:2000], watched, params=params, instrument=BINANCE_BTCUSDT_USDM, **common)
    assert calls == []  # nothing ran


def test_parameters_of_a_strategy_object_need_a_function_or_a_class(binance_events: list[MarketEvent]) -> None:
    with pytest.raises(ValueError, match="strategy takes no parameters"):
        vt.replay_many(binance_events[:2000], Counter(), params=[{"lots": 2}], instrument=BINANCE_BTCUSDT_USDM)
    with pytest.raises(ValueError, match=r"not a vt\.replay keyword"):
        vt.replay_many(binance_events[:2000], None, params=[{"lots": 2}], instrument=BINANCE_BTCUSDT_USDM)
