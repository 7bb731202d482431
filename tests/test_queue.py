"""Queue position models for resting limit orders on L2 data (hftbacktest's family), with
hand-computed expected values, and the Numba kernels called from compiled code."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numba import njit

from vtrade.execution.queue import (
    LOG,
    LOG2,
    POWER,
    POWER2,
    POWER3,
    RISK_AVERSE,
    LogProbQueueFunc,
    LogProbQueueFunc2,
    PowerProbQueueFunc,
    PowerProbQueueFunc2,
    PowerProbQueueFunc3,
    ProbQueue,
    QueueModel,
    QueuePosition,
    RiskAverseQueue,
    depth_update,
    prob_behind,
    trade_update,
)

ALL_MODELS: list[QueueModel] = [
    RiskAverseQueue(),
    ProbQueue(PowerProbQueueFunc(1)),
    ProbQueue(PowerProbQueueFunc(2)),
    ProbQueue(LogProbQueueFunc()),
    ProbQueue(PowerProbQueueFunc2(2)),
    ProbQueue(PowerProbQueueFunc3(3)),
    ProbQueue(LogProbQueueFunc2()),
]


# ---------------------------------------------------------------------------- join and trades
@pytest.mark.parametrize("model", ALL_MODELS, ids=repr)
def test_join_at_the_back(model: QueueModel) -> None:
    assert model.on_join(300, 10) == QueuePosition(front=300.0, quantity=10, traded=0.0)
    assert model.on_join(0, 10).front == 0.0


@pytest.mark.parametrize("model", ALL_MODELS, ids=repr)
def test_trades_drain_the_front_then_fill_us(model: QueueModel) -> None:
    pos = model.on_join(100, 50)
    pos, filled = model.on_trade(pos, 60)
    assert (pos.front, pos.quantity, pos.traded, filled) == (40.0, 50, 60.0, 0)
    pos, filled = model.on_trade(pos, 70)  # 40 ahead, 30 of excess fill us
    assert (pos.front, pos.quantity, pos.traded, filled) == (0.0, 20, 130.0, 30)
    pos, filled = model.on_trade(pos, 100)  # only our remaining 20 can fill
    assert (pos.front, pos.quantity, filled) == (0.0, 0, 20)


def test_trade_exactly_the_front_fills_nothing() -> None:
    pos, filled = RiskAverseQueue().on_trade(QueuePosition(front=25.0, quantity=5), 25)
    assert (pos.front, filled) == (0.0, 0)
    pos, filled = RiskAverseQueue().on_trade(pos, 1)
    assert (pos.quantity, filled) == (4, 1)


def test_empty_level_first_trade_fills_us() -> None:
    model = ProbQueue(PowerProbQueueFunc(2))
    pos = model.on_join(0, 10)
    pos = model.on_depth_change(pos, 0, 0)
    assert pos.front == 0.0
    pos, filled = model.on_trade(pos, 4)
    assert (pos.quantity, filled) == (6, 4)


def test_fractional_front_fills_whole_lots_only() -> None:
    pos, filled = RiskAverseQueue().on_trade(QueuePosition(front=209.5, quantity=10), 212)
    assert (pos.front, filled) == (0.0, 2)  # 2.5 lots of excess: 2 whole lots fill


def test_float_noise_does_not_withhold_a_lot() -> None:
    # 2.0000000000000004 ahead (float noise from an expected-value update) and 3 traded:
    # the excess is one lot, not 0.9999999999999996 of one.
    pos, filled = RiskAverseQueue().on_trade(QueuePosition(front=2.0000000000000004, quantity=5), 3)
    assert filled == 1 and pos.quantity == 4


# ---------------------------------------------------------------------------- risk averse
def test_risk_averse_cancels_never_advance_us_except_by_clamp() -> None:
    model = RiskAverseQueue()
    pos = model.on_join(300, 10)
    pos = model.on_depth_change(pos, 300, 500)  # 200 join behind us
    assert pos.front == 300.0
    pos = model.on_depth_change(pos, 500, 350)  # 150 cancelled: assumed behind us
    assert pos.front == 300.0
    pos = model.on_depth_change(pos, 350, 100)  # the level is now smaller than our front
    assert pos.front == 100.0
    pos = model.on_depth_change(pos, 100, 0)
    assert pos.front == 0.0


def test_risk_averse_drains_only_by_trades() -> None:
    model = RiskAverseQueue()
    pos = model.on_join(300, 10)
    pos, _ = model.on_trade(pos, 100)
    pos = model.on_depth_change(pos, 300, 200)  # the trade's own decrease
    assert (pos.front, pos.traded) == (200.0, 0.0)
    pos = model.on_depth_change(pos, 200, 150)  # a cancel of 50: no advance, 200 > 150 clamps
    assert pos.front == 150.0


# ---------------------------------------------------------------------------- probabilistic
def test_power2_example_from_hftbacktest_formula() -> None:
    # front 300, back 100, 100 cancelled: p(behind) = 100²/(100²+300²) = 0.1, so the front's
    # expected share is 0.9 · 100 = 90 and front' = 300 - 90 + min(100 - 10, 0) = 210.
    model = ProbQueue(PowerProbQueueFunc(2))
    pos = model.on_depth_change(QueuePosition(front=300.0, quantity=10), 400, 300)
    assert pos.front == pytest.approx(210.0, abs=1e-12)
    # The same through the public flow: join 300, 100 join behind, 100 cancel.
    pos = model.on_join(300, 10)
    pos = model.on_depth_change(pos, 300, 400)
    pos = model.on_depth_change(pos, 400, 300)
    assert pos.front == pytest.approx(210.0, abs=1e-12)


def test_power1_spreads_cancels_evenly() -> None:
    # front 50, back 50, 90 cancelled: p = 0.5, front' = 50 - 45 + min(50 - 45, 0) = 5.
    pos = ProbQueue(PowerProbQueueFunc(1)).on_depth_change(QueuePosition(front=50.0, quantity=1), 100, 10)
    assert pos.front == pytest.approx(5.0, abs=1e-12)


def test_log_func() -> None:
    # front 99, back 9: p = ln 10 / (ln 10 + ln 100) = 1/3.
    model = ProbQueue(LogProbQueueFunc())
    # 12 cancelled: front' = 99 - (2/3)·12 + min(9 - 4, 0) = 91.
    assert model.on_depth_change(QueuePosition(99.0, 1), 108, 96).front == pytest.approx(91.0, abs=1e-9)
    # 30 cancelled: p·chg = 10 > back 9, so the extra lot must have come from the front:
    # front' = 99 - 20 + (9 - 10) = 78, which is the whole remaining level.
    assert model.on_depth_change(QueuePosition(99.0, 1), 108, 78).front == pytest.approx(78.0, abs=1e-9)


def test_power2_variant() -> None:
    # PowerProbQueueFunc2(2): p = (100/400)² = 0.0625; front' = 300 - 0.9375·100 + 0 = 206.25.
    pos = ProbQueue(PowerProbQueueFunc2(2)).on_depth_change(QueuePosition(300.0, 1), 400, 300)
    assert pos.front == pytest.approx(206.25, abs=1e-12)


def test_power3_variant() -> None:
    # PowerProbQueueFunc3(2): p = 1 - (300/400)² = 0.4375; front' = 300 - 0.5625·100 = 243.75.
    pos = ProbQueue(PowerProbQueueFunc3(2)).on_depth_change(QueuePosition(300.0, 1), 400, 300)
    assert pos.front == pytest.approx(243.75, abs=1e-12)


def test_log2_variant() -> None:
    # LogProbQueueFunc2: front 90, back 9: p = ln 10 / ln 100 = 0.5.
    model = ProbQueue(LogProbQueueFunc2())
    # 10 cancelled: front' = 90 - 5 + min(9 - 5, 0) = 85.
    assert model.on_depth_change(QueuePosition(90.0, 1), 99, 89).front == pytest.approx(85.0, abs=1e-9)
    # 20 cancelled: front' = 90 - 10 + (9 - 10) = 79 = the whole remaining level.
    assert model.on_depth_change(QueuePosition(90.0, 1), 99, 79).front == pytest.approx(79.0, abs=1e-9)


def test_trades_before_a_depth_update_are_not_counted_as_cancels() -> None:
    model = ProbQueue(PowerProbQueueFunc(2))
    pos = QueuePosition(front=300.0, quantity=10)
    pos, _ = model.on_trade(pos, 50)
    assert (pos.front, pos.traded) == (250.0, 50.0)
    explained = model.on_depth_change(pos, 400, 350)  # the decrease is exactly the trade
    assert (explained.front, explained.traded) == (250.0, 0.0)
    # 70 fewer, 50 of them traded: 20 cancelled. As in hftbacktest, back = prev - front
    # = 400 - 250 = 150, so p = 150²/(150² + 250²) = 0.2647 and
    # front' = 250 - 20 · 62500/85000 = 235.2941.
    partly = model.on_depth_change(pos, 400, 330)
    assert partly.front == pytest.approx(235.2941176, abs=1e-6)
    assert partly.traded == 0.0


@pytest.mark.parametrize("model", ALL_MODELS, ids=repr)
def test_increases_leave_front_unchanged(model: QueueModel) -> None:
    pos = model.on_depth_change(QueuePosition(front=300.0, quantity=10), 400, 600)
    assert pos.front == 300.0
    pos, _ = model.on_trade(pos, 50)
    pos = model.on_depth_change(pos, 600, 620)  # 50 traded, yet the level grew: 70 joined
    assert (pos.front, pos.traded) == (250.0, 0.0)


@pytest.mark.parametrize("model", ALL_MODELS, ids=repr)
def test_decrease_larger_than_front(model: QueueModel) -> None:
    pos = model.on_depth_change(QueuePosition(front=100.0, quantity=10), 500, 50)
    assert 0.0 <= pos.front <= 50.0
    assert model.on_depth_change(QueuePosition(front=100.0, quantity=10), 500, 0).front == 0.0


def test_decrease_larger_than_front_hand_computed() -> None:
    # n = 1, front 100, back 400, 450 cancelled: p = 0.8,
    # front' = 100 - 0.2·450 + min(400 - 360, 0) = 10 (below the new size 50, kept).
    pos = ProbQueue(PowerProbQueueFunc(1)).on_depth_change(QueuePosition(100.0, 1), 500, 50)
    assert pos.front == pytest.approx(10.0, abs=1e-12)


def test_front_never_below_zero() -> None:
    # PowerProbQueueFunc2(2), front 10, back 90, 95 cancelled: p = 0.81,
    # front - (1 - p)·chg = 10 - 18.05 = -8.05; hftbacktest would read that as 8 lots filled by
    # cancels. Cancels fill nobody: the front stops at 0.
    pos = ProbQueue(PowerProbQueueFunc2(2)).on_depth_change(QueuePosition(10.0, 1), 100, 5)
    assert pos.front == 0.0
    assert depth_update(POWER2, 2.0, 10.0, 0.0, 100.0, 5.0) == 0.0


def test_front_never_above_new_size_with_inconsistent_input() -> None:
    # A caller whose prev_size is below our front (it missed an update): back is taken as 0,
    # so p = 0 and front' = 300 - 50 = 250, clamped to the new size 200.
    pos = ProbQueue(PowerProbQueueFunc(2)).on_depth_change(QueuePosition(300.0, 1), 250, 200)
    assert pos.front == 200.0


# ---------------------------------------------------------------------------- probability kernels
def test_probability_functions_hand_computed() -> None:
    assert PowerProbQueueFunc(2).prob(300, 100) == pytest.approx(0.1, abs=1e-15)
    assert PowerProbQueueFunc(1).prob(300, 100) == pytest.approx(0.25, abs=1e-15)
    assert LogProbQueueFunc().prob(99, 9) == pytest.approx(1 / 3, abs=1e-15)
    assert PowerProbQueueFunc2(2).prob(300, 100) == pytest.approx(0.0625, abs=1e-15)
    assert PowerProbQueueFunc3(2).prob(300, 100) == pytest.approx(0.4375, abs=1e-15)
    assert LogProbQueueFunc2().prob(90, 9) == pytest.approx(0.5, abs=1e-15)


def test_probability_edges() -> None:
    for kind in (POWER, LOG, POWER2, POWER3, LOG2):
        assert prob_behind(kind, 2.0, 0.0, 0.0) == 1.0  # nothing either side: no advance
        assert prob_behind(kind, 2.0, 0.0, 50.0) == pytest.approx(1.0)  # at the front: all behind
        assert prob_behind(kind, 2.0, 50.0, 0.0) == pytest.approx(0.0)  # at the back: all ahead
    assert prob_behind(RISK_AVERSE, 0.0, 300.0, 100.0) == 1.0
    # x**n overflows for large n; the rearranged forms give the limit, not inf/inf = nan.
    assert prob_behind(POWER, 400.0, 1000.0, 100.0) == 0.0
    assert prob_behind(POWER, 400.0, 100.0, 1000.0) == 1.0
    assert prob_behind(POWER, 2000.0, 0.5, 0.25) == 0.0  # both powers underflow to 0: 0/0 avoided
    assert prob_behind(POWER2, 400.0, 900.0, 100.0) == 0.0
    assert prob_behind(POWER2, 400.0, 0.0, 1000.0) == 1.0


def test_literal_formula_matches_hftbacktest_bit_for_bit() -> None:
    # hftbacktest evaluates f(back) / (f(back) + f(front)) as written: 100² / (100² + 300²) is
    # 10000 / 100000, exactly the double nearest 0.1 (a ratio-first form gives 0.09999999999999999).
    assert PowerProbQueueFunc(2).prob(300, 100) == 10_000.0 / 100_000.0
    assert LogProbQueueFunc().prob(99, 9) == math.log(1.0 + 9) / (math.log(1.0 + 9) + math.log(1.0 + 99))
    assert PowerProbQueueFunc2(3).prob(7, 5) == 5.0**3 / 12.0**3
    with pytest.raises(ValueError, match="unknown queue model kind"):
        prob_behind(99, 1.0, 1.0, 1.0)


# ---------------------------------------------------------------------------- compiled hot loop
@njit(cache=False)
def _replay(kind: int, n: float, level: np.ndarray, trades: np.ndarray, quantity: int) -> tuple[float, int]:
    # The shape of the replay engine's loop: event i is a trade of trades[i] lots at our price
    # followed by the level's new size level[i + 1].
    front = level[0]
    traded = 0.0
    total = 0
    for i in range(trades.shape[0]):
        if trades[i] > 0:
            front, traded, filled = trade_update(front, traded, quantity, trades[i])
            quantity -= filled
            total += filled
        front = depth_update(kind, n, front, traded, level[i], level[i + 1])
        traded = 0.0
    return front, total


@pytest.mark.parametrize("model", ALL_MODELS, ids=repr)
def test_kernels_run_in_compiled_code_and_match_the_classes(model: QueueModel) -> None:
    level = np.array([300.0, 400.0, 320.0, 320.0, 250.0, 260.0, 120.0, 40.0])
    trades = np.array([0.0, 30.0, 0.0, 50.0, 0.0, 100.0, 80.0])
    front, total = _replay(model.kind, model.n, level, trades, 60)
    pos = model.on_join(300, 60)
    filled_total = 0
    for i, traded in enumerate(trades):
        if traded > 0:
            pos, filled = model.on_trade(pos, int(traded))
            filled_total += filled
        pos = model.on_depth_change(pos, int(level[i]), int(level[i + 1]))
    assert front == pos.front and total == filled_total
    assert not math.isnan(front)


def test_models_rank_from_conservative_to_optimistic() -> None:
    # Same cancels, different beliefs about who cancelled: risk-averse never advances; the
    # uniform (n = 1) model advances more than the back-loaded n = 2 one at the back of a queue.
    start, prev, new = QueuePosition(200.0, 1), 400, 300
    fronts = [m.on_depth_change(start, prev, new).front for m in
              (RiskAverseQueue(), ProbQueue(PowerProbQueueFunc(2)), ProbQueue(PowerProbQueueFunc(1)))]
    assert fronts[0] == 200.0
    assert fronts == sorted(fronts, reverse=True)
    assert fronts[2] == pytest.approx(150.0)  # p = 0.5: half of 100 ahead


# ---------------------------------------------------------------------------- bad input
def test_bad_input_is_rejected() -> None:
    model = RiskAverseQueue()
    with pytest.raises(ValueError, match="quantity"):
        model.on_join(100, 0)
    with pytest.raises(ValueError, match="level_size"):
        model.on_join(-1, 10)
    with pytest.raises(TypeError, match="level_size"):
        model.on_join(1.5, 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="traded_qty"):
        model.on_trade(QueuePosition(10.0, 1), -5)
    with pytest.raises(TypeError, match="new_size"):
        model.on_depth_change(QueuePosition(10.0, 1), 10, True)
    with pytest.raises(ValueError, match="n must be"):
        PowerProbQueueFunc(0)
    with pytest.raises(ValueError, match="n must be"):
        PowerProbQueueFunc3(math.inf)
    with pytest.raises(TypeError, match="ProbQueue needs"):
        ProbQueue(lambda front, back: 0.5)  # type: ignore[arg-type]


def test_reprs_name_the_model() -> None:
    assert repr(RiskAverseQueue()) == "RiskAverseQueue()"
    assert repr(ProbQueue(PowerProbQueueFunc3(3))) == "ProbQueue(PowerProbQueueFunc3(n=3.0))"
    assert repr(ProbQueue(LogProbQueueFunc())) == "ProbQueue(LogProbQueueFunc())"
    assert (ProbQueue(LogProbQueueFunc2()).kind, ProbQueue(PowerProbQueueFunc2(2)).kind) == (LOG2, POWER2)
    assert ProbQueue(LogProbQueueFunc()).kind == LOG and ProbQueue(PowerProbQueueFunc(2)).kind == POWER
    assert ProbQueue(PowerProbQueueFunc3(2)).kind == POWER3
