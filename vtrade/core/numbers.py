"""Exact prices and sizes: integers counting an instrument's increment.

Inside the engine a price is a count of ticks and a size a count of lots (DESIGN.md §3).
:class:`Grid` converts at the edges: decimal text, ``Decimal``, ``int`` or ``float`` in;
``Decimal`` out. A value that is not a whole number of increments raises
:class:`~vtrade.core.errors.OffGridError`; nothing is rounded.

>>> g = Grid("0.1")
>>> g.to_int("61800.30")
618003
>>> g.to_decimal(618003)
Decimal('61800.3')
>>> g.to_int("61800.35")
Traceback (most recent call last):
...
vtrade.core.errors.OffGridError: 61800.35 is not on the 0.1 grid
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from vtrade.core.errors import OffGridError

Number = str | Decimal | int | float

# Text-to-int conversions repeat the same few thousand price strings over and over (a book's
# levels), so a bounded memo pays. It is cleared wholesale when full: cheap and never unbounded.
_MEMO_LIMIT = 1 << 18


@dataclass(frozen=True, slots=True)
class Grid:
    """A price or size grid with a fixed positive increment (tick size or lot size).

    >>> Grid("0.01").to_int(Decimal("167.65"))
    16765
    """

    increment: Decimal
    _memo: dict[str, int] = field(default_factory=dict, repr=False, compare=False, hash=False)

    def __init__(self, increment: Number) -> None:
        inc = _as_decimal(increment)
        if not inc.is_finite() or inc <= 0:
            raise ValueError(f"a grid increment must be a positive finite number, got {increment!r}")
        inc = inc.normalize()
        if inc.as_tuple().exponent > 0:  # type: ignore[operator]
            inc = inc.quantize(Decimal(1))  # 1E+1 -> 10, so values print as plain numbers
        object.__setattr__(self, "increment", inc)
        object.__setattr__(self, "_memo", {})

    def to_int(self, value: Number) -> int:
        """Count of increments in ``value``; raises OffGridError when it is not a whole count."""
        if isinstance(value, str):
            hit = self._memo.get(value)
            if hit is not None:
                return hit
            n = self._exact(_as_decimal(value), value)
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[value] = n
            return n
        if isinstance(value, bool):
            raise TypeError("a price or size cannot be a bool")
        if isinstance(value, float) and not math.isfinite(value):
            raise OffGridError(f"{value} is not a finite number")
        return self._exact(_as_decimal(value), value)

    def to_decimal(self, count: int) -> Decimal:
        """The exact decimal value of ``count`` increments, with the increment's decimal places."""
        return self.increment * count

    def decimal_scale(self) -> tuple[int, int]:
        """``(mantissa, scale)`` with ``increment == mantissa * 10**-scale`` and ``scale >= 0``.

        What exact decimal columns need: a count of increments is ``count * mantissa``
        units of ``10**-scale``.

        >>> Grid("0.05").decimal_scale(), Grid("0.0001").decimal_scale(), Grid("10").decimal_scale()
        ((5, 2), (1, 4), (10, 0))
        """
        _, digits, exponent = self.increment.as_tuple()
        mantissa = int("".join(map(str, digits)))
        assert isinstance(exponent, int)  # a finite Decimal
        if exponent >= 0:
            return mantissa * 10**exponent, 0
        return mantissa, -exponent

    def to_float(self, count: int) -> float:
        """``count`` increments as a float, for analytics and display only."""
        return float(self.to_decimal(count))

    def _exact(self, d: Decimal, original: object) -> int:
        if not d.is_finite():
            raise OffGridError(f"{original} is not a finite number")
        try:
            n = count_of(d, self.increment)
        except OverflowError:
            raise OffGridError(f"{original} is out of range: more than 2**63 increments of {self.increment}") from None
        if n is None:
            raise OffGridError(f"{original} is not on the {self.increment} grid")
        return n

    def __str__(self) -> str:
        return str(self.increment)


#: Counts of increments are int64 in the engine's arrays.
_INT64 = 1 << 63


def count_of(d: Decimal, increment: Decimal) -> int | None:
    """The exact number of ``increment`` in the finite ``d``; None when it is not a whole number.

    OverflowError when the count does not fit 64 bits (the engine's integers), instead of the
    ``decimal.InvalidOperation`` that ``divmod`` raises once the quotient outgrows the context.

    >>> count_of(Decimal("1.5"), Decimal("0.5")), count_of(Decimal("1.55"), Decimal("0.1"))
    (3, None)
    >>> count_of(Decimal("1e-999999999"), Decimal("0.1")) is None  # the remainder underflows to 0
    True
    """
    try:
        q, r = divmod(d, increment)
    except InvalidOperation:
        raise OverflowError(f"{d} is too large a multiple of {increment}") from None
    if r != 0 or (q == 0 and d != 0):  # a tiny d leaves a remainder below Emin, which reads as 0
        return None
    n = int(q)
    if not -_INT64 <= n < _INT64:
        raise OverflowError(f"{d} is too large a multiple of {increment}")
    return n


def exact_decimal(
    value: object,
    name: str,
    *,
    allow_float: bool = False,
    allow_negative: bool = False,
    error: type[Exception] = ValueError,
) -> Decimal:
    """``value`` as an exact, finite Decimal, or ``error`` naming ``name`` and what was wrong.

    Money and model parameters come in as Decimal, int or decimal text; a float is refused
    unless ``allow_float`` (then read through its shortest text, so 0.1 stays 0.1).

    >>> exact_decimal("27.80", "sec_rate")
    Decimal('27.80')
    >>> exact_decimal("-1", "rate")
    Traceback (most recent call last):
    ...
    ValueError: rate must not be negative, got '-1'
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str | float):
        raise error(f"{name} must be a Decimal, int or decimal string, got {value!r}")
    if isinstance(value, float):
        if not allow_float:
            raise error(f"{name} must be a Decimal, int or decimal string (never a float), got {value!r}")
        if not math.isfinite(value):
            raise error(f"{name} must be finite, got {value!r}")
    try:
        d = _as_decimal(value)
    except OffGridError:
        raise error(f"{name} is not a number: {value!r}") from None
    if not d.is_finite():
        raise error(f"{name} must be finite, got {value!r}")
    if d < 0 and not allow_negative:
        raise error(f"{name} must not be negative, got {value!r}")
    return d


def _as_decimal(value: Number) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        # repr() is the shortest text that round-trips, so 0.1 becomes Decimal("0.1") rather than
        # the binary expansion 0.1000000000000000055511151231257827...
        return Decimal(repr(value))
    try:
        return Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, TypeError) as exc:
        raise OffGridError(f"{value!r} is not a number") from exc
