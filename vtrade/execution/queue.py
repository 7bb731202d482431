"""Queue position of a resting limit order on market-by-price (L2) data.

L2 data shows only the total size at each price, so where our order sits in its level's queue
has to be estimated (DESIGN.md §5, rung 3). This follows hftbacktest's queue model family
(``hftbacktest/src/backtest/models/queue.rs``; docs "Order Fill" and "Queue Models"):

- We join at the back: the quantity ahead of us (``front``) is the level's size.
- A trade at our price drains the front first; what it trades beyond the front fills us.
- A decrease of the level's size that trades do not explain is cancellations. Who cancelled?
  :class:`RiskAverseQueue` assumes nobody ahead of us (the front only shrinks when the level
  becomes smaller than it); :class:`ProbQueue` attributes the expected share of the cancels
  to the front with a probability function of the quantities ahead and behind.

Updates are deterministic expected values, as in hftbacktest: no random draws, so the same
market data gives the same fills on every run (DESIGN.md §4). ``front`` is therefore a float
(an expected quantity); fills are whole lots.

Level sizes are the market's displayed sizes, which do not include our own simulated order.

The logic lives once, in Numba-jittable scalar kernels (:func:`trade_update`,
:func:`depth_update`, :func:`prob_behind`) that the replay engine's compiled loop calls with a
model's ``kind`` and ``n``; the classes are a typed, validated front end over the same kernels.

>>> model = ProbQueue(PowerProbQueueFunc(2))
>>> pos = model.on_join(level_size=300, quantity=50)
>>> pos = model.on_depth_change(pos, prev_size=300, new_size=400)   # someone joined behind us
>>> pos = model.on_depth_change(pos, prev_size=400, new_size=300)   # 100 lots cancelled
>>> round(pos.front, 9)                                             # 300 - 0.9 * 100
210.0
>>> pos, filled = model.on_trade(pos, 230)
>>> pos.front, pos.quantity, filled
(0.0, 30, 20)
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import ClassVar

from vtrade.core.jit import njit

# Model kinds, as the compiled replay loop sees them.
RISK_AVERSE = 0
POWER = 1  # hftbacktest PowerProbQueueFunc:  p = f(back) / (f(back) + f(front)),  f(x) = x**n
LOG = 2  # hftbacktest LogProbQueueFunc:      p = f(back) / (f(back) + f(front)),  f(x) = log(1 + x)
POWER2 = 3  # hftbacktest PowerProbQueueFunc2: p = f(back) / f(back + front),        f(x) = x**n
POWER3 = 4  # hftbacktest PowerProbQueueFunc3: p = 1 - f(front / (front + back)),     f(x) = x**n
LOG2 = 5  # hftbacktest LogProbQueueFunc2:    p = f(back) / f(back + front),        f(x) = log(1 + x)

# Expected-value updates leave float noise (a front of 2 may come out as 2.0000000000000004); a
# trade must not miss a whole lot because of it. 1e-9 lot is far below any real lot fraction.
FILL_EPSILON = 1e-9


# ---------------------------------------------------------------------------- kernels
@njit(cache=True)
def _pow_in_range(x: float, n: float) -> bool:
    # Whether x**n stays comfortably inside float64 (about 1e-304 .. 1e304), so hftbacktest's
    # literal expressions can be evaluated as written, bit for bit.
    return x == 0.0 or -700.0 < n * math.log(x) < 700.0


@njit(cache=True)
def prob_behind(kind: int, n: float, front: float, back: float) -> float:
    """Probability that a cancelled lot was *behind* us, given ``front`` ahead and ``back`` behind.

    The five hftbacktest functions, evaluated as hftbacktest writes them. Only where ``x**n``
    would overflow or underflow (huge sizes or ``n``; hftbacktest then gets inf/inf = NaN) is
    the algebraically identical ratio-first form used, which gives the correct limit. With
    nothing on either side the question has no answer; 1.0 (the cancel was behind us, we do
    not advance) is the conservative choice. ``RISK_AVERSE`` always answers 1.0: cancels are
    never ahead of us.
    """
    if kind == RISK_AVERSE:
        return 1.0
    front = max(front, 0.0)
    back = max(back, 0.0)
    total = front + back
    if total <= 0.0:
        return 1.0
    if kind == POWER:
        if _pow_in_range(max(front, back), n):
            fb = back**n
            return fb / (fb + front**n)
        # back^n / (back^n + front^n) with the smaller side over the larger raised to n (<= 1).
        if front <= back:
            return 1.0 / (1.0 + (front / back) ** n)
        r = (back / front) ** n
        return r / (1.0 + r)
    if kind == LOG:
        fb = math.log(1.0 + back)
        return fb / (fb + math.log(1.0 + front))
    if kind == POWER2:
        if _pow_in_range(total, n) and _pow_in_range(back, n):
            return back**n / total**n
        return (back / total) ** n
    if kind == POWER3:
        return 1.0 - (front / total) ** n
    if kind == LOG2:
        return math.log(1.0 + back) / math.log(1.0 + total)
    raise ValueError("unknown queue model kind")


@njit(cache=True)
def trade_update(front: float, traded_cum: float, quantity: int, traded_qty: float) -> tuple[float, float, int]:
    """A trade of ``traded_qty`` lots at our price against our side.

    The trade drains ``front`` first; its excess over ``front`` fills us, in whole lots, up to
    our ``quantity``. Returns ``(front, traded_cum, filled)``: the new front (>= 0), the trades
    seen since the last depth update (so that update does not count them as cancels again),
    and the lots filled.
    """
    excess = traded_qty - front
    filled = 0
    if excess > 0.0:
        filled = min(quantity, math.floor(excess + FILL_EPSILON))
    return max(front - traded_qty, 0.0), traded_cum + traded_qty, filled


@njit(cache=True)
def depth_update(kind: int, n: float, front: float, traded_cum: float, prev_size: float, new_size: float) -> float:
    """The new ``front`` after our level's displayed size went from ``prev_size`` to ``new_size``.

    The caller resets ``traded_cum`` to 0 afterwards (hftbacktest does the same: a depth
    update is taken to reflect every trade printed before it). With ``p = prob_behind(front,
    back)``, ``back = prev_size - front`` and ``chg = prev_size - new_size - traded_cum`` (the
    decrease trades do not explain, i.e. cancellations)::

        chg <= 0 (an increase, or trades explain it all):  front' = front
        otherwise:  front' = front - (1 - p)·chg + min(back - p·chg, 0)

    then ``front'`` is clamped to ``[0, new_size]``. The ``min`` term moves to the front the
    cancels the model would put behind us beyond what there is behind us; when it is active
    it makes ``front' = new_size + traded_cum``, so the clamp to ``new_size`` gives the same
    result with or without it (hftbacktest has both; so does this, term for term). For
    ``RISK_AVERSE``, ``p = 1`` and the formula reduces to ``front' = min(front, new_size)``.

    As in hftbacktest, ``back`` is taken from ``prev_size``, which still holds the lots that
    trades since the last update removed; that overstates ``back`` by ``traded_cum``, tilting
    attribution towards "behind us" (fewer advances, the conservative side).
    """
    chg = prev_size - new_size - traded_cum
    if chg > 0.0 and kind != RISK_AVERSE:
        # Clamped at 0: with consistent inputs front <= prev_size, and a negative back would
        # make x**n undefined for fractional n.
        back = max(prev_size - front, 0.0)
        p = prob_behind(kind, n, front, back)
        front = front - (1.0 - p) * chg + min(back - p * chg, 0.0)
    return min(max(front, 0.0), max(new_size, 0.0))


# ---------------------------------------------------------------------------- Python API
@dataclass(frozen=True, slots=True)
class QueuePosition:
    """Where our resting order stands in its price level's queue.

    ``front``: expected lots ahead of us (float, >= 0); ``quantity``: our lots still resting;
    ``traded``: lots traded at our price since the last depth update of the level.
    """

    front: float
    quantity: int
    traded: float = 0.0


class QueueModel(ABC):
    """A queue position model: how trades and depth changes at our price move us forward.

    ``kind`` and ``n`` are what the compiled replay loop passes to :func:`depth_update`.
    """

    kind: int
    n: float = 0.0

    def on_join(self, level_size: int, quantity: int) -> QueuePosition:
        """Our order of ``quantity`` lots joins the back of a level showing ``level_size`` lots.

        >>> RiskAverseQueue().on_join(120, 10)
        QueuePosition(front=120.0, quantity=10, traded=0.0)
        """
        _check_count("level_size", level_size, positive=False)
        _check_count("quantity", quantity, positive=True)
        return QueuePosition(float(level_size), quantity)

    def on_trade(self, pos: QueuePosition, traded_qty: int) -> tuple[QueuePosition, int]:
        """A trade of ``traded_qty`` lots at our price, against our side. Returns the new
        position and the lots it filled (its excess over the front, up to our quantity).

        Trades *through* our price fill the whole order; that is the matching engine's
        business, not the queue's.

        >>> pos, filled = RiskAverseQueue().on_trade(QueuePosition(front=30.0, quantity=10), 35)
        >>> pos.front, pos.quantity, filled
        (0.0, 5, 5)
        """
        _check_count("traded_qty", traded_qty, positive=False)
        front, traded, filled = trade_update(pos.front, pos.traded, pos.quantity, float(traded_qty))
        return QueuePosition(front, pos.quantity - filled, traded), filled

    def on_depth_change(self, pos: QueuePosition, prev_size: int, new_size: int) -> QueuePosition:
        """Our level's displayed size went from ``prev_size`` to ``new_size`` lots.

        An increase never moves us (newcomers join behind). A decrease is first explained by
        the trades seen since the last update; the rest is cancellations, which this model
        attributes to the front or the back (see :func:`depth_update`).
        """
        _check_count("prev_size", prev_size, positive=False)
        _check_count("new_size", new_size, positive=False)
        front = depth_update(self.kind, self.n, pos.front, pos.traded, float(prev_size), float(new_size))
        return replace(pos, front=front, traded=0.0)

    @abstractmethod
    def __repr__(self) -> str:
        """The model and its parameters, as written on fill receipts."""


class RiskAverseQueue(QueueModel):
    """hftbacktest's ``RiskAdverseQueueModel``: we advance only through trades at our price.

    Cancellations are assumed to come from behind us; the front only shrinks when the whole
    level becomes smaller than it (``front = min(front, new_size)``). The most conservative
    estimate: fills come no sooner than in the real queue.

    >>> q = RiskAverseQueue()
    >>> pos = q.on_depth_change(q.on_join(500, 10), prev_size=500, new_size=350)   # 150 cancelled
    >>> pos.front
    350.0
    """

    kind = RISK_AVERSE

    def __repr__(self) -> str:
        return "RiskAverseQueue()"


class QueueFunc:
    """Base of the probability functions of hftbacktest's ``ProbQueueModel``: ``kind`` picks
    the formula (see the module constants), ``n`` the power where it has one."""

    __slots__ = ()
    kind: ClassVar[int]
    n: float

    def prob(self, front: float, back: float) -> float:
        """Probability that a cancel was behind us with ``front`` lots ahead and ``back`` behind."""
        return prob_behind(self.kind, self.n, float(front), float(back))


@dataclass(frozen=True, slots=True)
class PowerProbQueueFunc(QueueFunc):
    """``f(back) / (f(back) + f(front))`` with ``f(x) = x**n`` (n = 1: cancels spread evenly).

    >>> PowerProbQueueFunc(2).prob(front=300, back=100)   # 100² / (100² + 300²)
    0.1
    """

    n: float
    kind: ClassVar[int] = POWER

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _power(self.n))


@dataclass(frozen=True, slots=True)
class PowerProbQueueFunc2(QueueFunc):
    """``f(back) / f(back + front)`` with ``f(x) = x**n``.

    >>> PowerProbQueueFunc2(2).prob(front=300, back=100)   # (100 / 400)²
    0.0625
    """

    n: float
    kind: ClassVar[int] = POWER2

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _power(self.n))


@dataclass(frozen=True, slots=True)
class PowerProbQueueFunc3(QueueFunc):
    """``1 - f(front / (front + back))`` with ``f(x) = x**n``.

    >>> PowerProbQueueFunc3(2).prob(front=300, back=100)   # 1 - (300 / 400)²
    0.4375
    """

    n: float
    kind: ClassVar[int] = POWER3

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _power(self.n))


@dataclass(frozen=True, slots=True)
class LogProbQueueFunc(QueueFunc):
    """``f(back) / (f(back) + f(front))`` with ``f(x) = log(1 + x)``.

    >>> round(LogProbQueueFunc().prob(front=99, back=9), 12)   # ln 10 / (ln 10 + ln 100) = 1/3
    0.333333333333
    """

    kind: ClassVar[int] = LOG
    # No power; the kernel ignores n for log functions (not an argument, not compared).
    n: float = field(default=0.0, init=False, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class LogProbQueueFunc2(QueueFunc):
    """``f(back) / f(back + front)`` with ``f(x) = log(1 + x)``.

    >>> round(LogProbQueueFunc2().prob(front=90, back=9), 12)   # ln 10 / ln 100
    0.5
    """

    kind: ClassVar[int] = LOG2
    n: float = field(default=0.0, init=False, repr=False, compare=False)


class ProbQueue(QueueModel):
    """hftbacktest's ``ProbQueueModel``: cancellations advance us by their expected share ahead.

    With ``p = func.prob(front, back)`` the probability that a cancelled lot was behind us and
    ``chg`` the decrease not explained by trades::

        front' = clamp(front - (1 - p)·chg + min(back - p·chg, 0), 0, new_size)

    (:func:`depth_update`). The rule follows Rigtorp, "Estimating order queue position" (2013):
    orders near the front are older and less likely to be cancelled, which ``f(x) = x**n``
    with n > 1, or ``log(1 + x)``, expresses.

    >>> q = ProbQueue(PowerProbQueueFunc(2))
    >>> pos = QueuePosition(front=300.0, quantity=10)
    >>> round(q.on_depth_change(pos, prev_size=400, new_size=300).front, 9)   # p = 0.1: 300 - 90
    210.0
    """

    def __init__(self, func: QueueFunc) -> None:
        if not isinstance(func, QueueFunc):
            raise TypeError(f"ProbQueue needs one of the *ProbQueueFunc probability functions, got {func!r}")
        self.func = func
        self.kind = func.kind
        self.n = func.n

    def __repr__(self) -> str:
        return f"ProbQueue({self.func!r})"


def _power(n: float) -> float:
    if isinstance(n, bool) or not isinstance(n, int | float):
        raise TypeError(f"n must be a number, got {n!r}")
    if not (math.isfinite(n) and n > 0):
        raise ValueError(f"n must be a finite number > 0, got {n!r}")
    return float(n)


def _check_count(name: str, value: int, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer number of lots, got {value!r}")
    if value < (1 if positive else 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'} lots, got {value}")


#: The names :func:`queue_model` accepts, for option lists (CLI, config, dashboards).
QUEUE_NAMES = ("risk_averse", "prob")


def queue_model(spec: str | QueueModel) -> QueueModel:
    """The queue model ``spec`` names, or ``spec`` itself when it already is one.

    ``"risk_averse"``: only trades at our price advance us. ``"prob"``: hftbacktest's
    ``PowerProbQueueFunc3(2)``, a cancelled lot was behind us with probability
    ``1 - (front / (front + back))²``, the setting of their published Binance examples.

    >>> queue_model("prob")
    ProbQueue(PowerProbQueueFunc3(n=2.0))
    >>> queue_model("fifo")
    Traceback (most recent call last):
    ...
    ValueError: queue must be 'risk_averse', 'prob' or a QueueModel, got 'fifo'
    """
    if isinstance(spec, QueueModel):
        return spec
    if spec == "risk_averse":
        return RiskAverseQueue()
    if spec == "prob":
        return ProbQueue(PowerProbQueueFunc3(2))
    raise ValueError(f"queue must be 'risk_averse', 'prob' or a QueueModel, got {spec!r}")
