"""Corporate actions (splits, cash dividends) derived from Lean factor files.

A Lean factor file row is ``date, price_factor, split_factor, reference_price``. A raw bar
dated D is adjusted with the factors of the FIRST row dated on or after D, so two consecutive
rows ``r[i]``, ``r[i+1]`` say: bars up to and including ``r[i].date`` use ``r[i]``'s factors,
later bars use ``r[i+1]``'s. Whatever changed between them happened at the open of the next
trading day after ``r[i].date``: that is the **ex-date**. ``r[i].reference_price`` is the raw
close on ``r[i].date``, the last price before the event (Lean's ``CorporateFactorRow``:
"the raw closing value from the trading date before the updated factor takes effect").

Split (``split_factor`` changes). Lean multiplies historical prices by
``split_factor[i] / split_factor[i+1]``; holders get the inverse in shares::

    ratio = split_factor[i+1] / split_factor[i]      (new shares per old share)

AAPL 2014-06-09 (row 2014-06-06): ``0.25 / 0.0357143 = 6.99999720`` -> 7 (a 7:1 split,
reference close $645.57, so about $92.22 a share afterwards). AIG 2009-07-01 (row 2009-06-30):
``1 / 20`` -> a 1:20 reverse split (reference $1.13, about $22.60 afterwards). The factors are
printed with 6-8 significant digits, so the quotient is snapped to the nearest simple fraction
``p/q`` (``min(p, q) <= 20``) when it is within 1e-5 relative of it; a ratio that is not near
any simple fraction (GOOG 2015-04-27, Lean's 1.0027:1 for the Class C adjustment payment) is
kept exactly as the factor digits give it, ``Fraction(split_factor[i+1]) / Fraction(split_factor[i])``.

Dividend (``price_factor`` changes). Lean builds factors backwards with
``pf[i] = pf[i+1] x (C - D) / C`` (C = reference close, D = distribution per share), so::

    D = C x (1 - pf[i] / pf[i+1])    rounded half-even to ``decimal_places`` (Lean's default 2)

AAPL ex 2014-05-08 (row 2014-05-07): ``592.33 x (1 - 0.8961764 / 0.9011818) = 3.2898...`` ->
$3.29, the dividend Apple paid per (pre-split) share. The amount is per share held at the
close before the ex-date; when a row carries both, the dividend comes before the split in the
returned order (its amount is per pre-split share). A change that rounds to $0.00 is dropped.

Ex-dates use the NYSE calendar (:mod:`vtrade.execution.calendar`, 2000-2030); rows outside
those years step to the next weekday (holidays there are not known).

>>> acts = read_corporate_actions(tickers="AAPL", start="2014-05-01", end="2014-06-30")
>>> [(a.kind.value, str(a.ex_date), str(a.ratio), a.amount) for a in acts]
[('dividend', '2014-05-08', '1', Decimal('3.29')), ('split', '2014-06-09', '7', Decimal('0'))]
"""

from __future__ import annotations

import csv
import functools
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction
from pathlib import Path

from vtrade.core.errors import DataError
from vtrade.core.numbers import exact_decimal
from vtrade.execution import calendar
from vtrade.market.feeds._io import numbered_lines
from vtrade.market.feeds.daily import EQUITIES_DIR, LEAN_FACTOR_FILE, read_factors
from vtrade.market.feeds.lean import DateSpec, parse_day, parse_tickers

__all__ = [
    "ActionKind",
    "CorporateAction",
    "FactorRow",
    "actions_between",
    "actions_from_factor_rows",
    "next_trading_day",
    "read_corporate_actions",
    "read_factor_rows",
    "split_ratio",
]

_ZERO = Decimal(0)
# Factor files print 6-8 significant digits (AIG's 10.6667 for 32/3 is off by 3e-6 relative);
# a true ratio p/q with min(p, q) <= 20 is never closer than ~1/400 to another such fraction,
# so 1e-5 snaps rounding noise and nothing else.
_SNAP_TOLERANCE = Fraction(1, 100_000)
_SNAP_MAX_TERM = 20


class ActionKind(StrEnum):
    """What a corporate action does to a holding."""

    SPLIT = "split"  # shares x ratio, cost unchanged
    DIVIDEND = "dividend"  # cash per share: credited to longs, debited to shorts


@dataclass(frozen=True, slots=True)
class CorporateAction:
    """One split or cash dividend of ``symbol``, effective at the open of ``ex_date``.

    ``ratio`` (splits): new shares per old share, exact (``Fraction(7)`` for 7:1,
    ``Fraction(1, 20)`` for a 1:20 reverse split). ``amount`` (dividends): cash per share held
    at the previous close, in the instrument's currency. ``reference_price``: the raw close
    before the ex-date (pre-split units); fractional shares left by a split are cashed out at
    ``reference_price / ratio`` per new share.

    >>> CorporateAction.split("AIG", date(2009, 7, 1), Fraction(1, 20), Decimal("1.13")).ratio
    Fraction(1, 20)
    >>> CorporateAction.dividend("AAPL", date(2014, 5, 8), Decimal("3.29")).amount
    Decimal('3.29')
    """

    symbol: str
    ex_date: date
    kind: ActionKind
    ratio: Fraction = Fraction(1)
    amount: Decimal = _ZERO
    reference_price: Decimal = _ZERO

    def __post_init__(self) -> None:
        if not self.symbol or self.symbol != self.symbol.strip():
            raise ValueError(f"a corporate action needs a non-blank symbol, got {self.symbol!r}")
        if not isinstance(self.ex_date, date):
            raise ValueError(f"ex_date must be a date, got {self.ex_date!r}")
        object.__setattr__(self, "kind", ActionKind(self.kind))
        object.__setattr__(self, "ratio", _exact_ratio(self.ratio))
        object.__setattr__(self, "amount", _finite(self.amount, "amount"))
        object.__setattr__(self, "reference_price", _finite(self.reference_price, "reference_price"))
        if self.reference_price < 0:
            raise ValueError(f"reference_price must not be negative, got {self.reference_price}")
        if self.kind is ActionKind.SPLIT:
            if self.ratio <= 0:
                raise ValueError(f"a split ratio must be positive, got {self.ratio}")
            if self.amount != 0:
                raise ValueError("a split carries no cash amount")
        else:
            if self.amount <= 0:
                raise ValueError(f"a dividend amount must be positive, got {self.amount}")
            if self.ratio != 1:
                raise ValueError("a cash dividend has no share ratio")

    @classmethod
    def split(cls, symbol: str, ex_date: date, ratio: Fraction | int, reference_price: Decimal | str = _ZERO
              ) -> CorporateAction:
        """A ``ratio``:1 split (``Fraction(1, 20)`` for a 1:20 reverse split)."""
        return cls(symbol, ex_date, ActionKind.SPLIT, ratio=_exact_ratio(ratio),
                   reference_price=_finite(reference_price, "reference_price"))

    @classmethod
    def dividend(cls, symbol: str, ex_date: date, amount: Decimal | str, reference_price: Decimal | str = _ZERO
                 ) -> CorporateAction:
        """A cash dividend of ``amount`` per share."""
        return cls(symbol, ex_date, ActionKind.DIVIDEND, amount=_finite(amount, "amount"),
                   reference_price=_finite(reference_price, "reference_price"))


_finite = functools.partial(exact_decimal, allow_negative=True)


def _exact_ratio(value: object) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, Fraction | int):
        raise ValueError(f"ratio must be a Fraction or int (exact), got {value!r}")
    return Fraction(value)


@dataclass(frozen=True, slots=True)
class FactorRow:
    """One Lean factor row with its values exactly as printed (``line``: 1-based line in the file)."""

    day: date
    price_factor: Decimal
    split_factor: Decimal
    reference_price: Decimal
    line: int = 0


def next_trading_day(day: date) -> date:
    """The first NYSE trading day after ``day`` (next weekday outside 2000-2030).

    >>> next_trading_day(date(2014, 6, 6)), next_trading_day(date(2009, 6, 30))
    (datetime.date(2014, 6, 9), datetime.date(2009, 7, 1))
    """
    d = day + timedelta(days=1)
    while True:
        if calendar.FIRST_YEAR <= d.year <= calendar.LAST_YEAR:
            if calendar.is_trading_day(d):
                return d
        elif d.weekday() < 5:
            return d
        d += timedelta(days=1)


def split_ratio(split_factor_before: Decimal, split_factor_after: Decimal) -> Fraction:
    """New shares per old share between two rows: ``after / before``, snapped to ``p/q`` with
    ``min(p, q) <= 20`` when within 1e-5 relative (the factor files' rounding), else exact.

    >>> split_ratio(Decimal("0.0357143"), Decimal("0.25")), split_ratio(Decimal("20"), Decimal("1"))
    (Fraction(7, 1), Fraction(1, 20))
    >>> split_ratio(Decimal("0.997307"), Decimal("1"))  # GOOG 2015: no simple ratio, kept exact
    Fraction(1000000, 997307)
    """
    raw = Fraction(split_factor_after) / Fraction(split_factor_before)
    best: Fraction | None = None
    for n in range(1, _SNAP_MAX_TERM + 1):
        # Either the denominator or the numerator is the small term.
        for cand in (Fraction(round(raw * n), n), Fraction(n, max(round(n / raw), 1))):
            if cand > 0 and abs(cand - raw) <= _SNAP_TOLERANCE * raw and (
                best is None or abs(cand - raw) < abs(best - raw)
            ):
                best = cand
    return best if best is not None else raw


def _dividend(row: FactorRow, nxt: FactorRow, quantum: Decimal) -> Decimal:
    exact = Fraction(row.reference_price) * (1 - Fraction(row.price_factor) / Fraction(nxt.price_factor))
    # round() on a Fraction is exact and rounds half to even, like C#'s Math.Round in Lean.
    return Decimal(round(exact / Fraction(quantum))) * quantum if exact else _ZERO


def actions_from_factor_rows(symbol: str, rows: Sequence[FactorRow], *, decimal_places: int = 2,
                             path: str | Path = "<factor rows>") -> list[CorporateAction]:
    """The splits and dividends implied by one ticker's factor rows (ascending dates).

    >>> rows = [FactorRow(date(2009, 6, 30), Decimal("0.7048563"), Decimal("20"), Decimal("1.13")),
    ...         FactorRow(date(2011, 1, 19), Decimal("0.7048563"), Decimal("1"), Decimal("51.2"))]
    >>> [(a.kind.value, str(a.ex_date), a.ratio) for a in actions_from_factor_rows("AIG", rows)]
    [('split', '2009-07-01', Fraction(1, 20))]
    """
    if isinstance(decimal_places, bool) or not isinstance(decimal_places, int) or decimal_places < 0:
        raise ValueError(f"decimal_places must be a non-negative int, got {decimal_places!r}")
    quantum = Decimal(1).scaleb(-decimal_places)
    out: list[CorporateAction] = []
    for row, nxt in itertools.pairwise(rows):
        if nxt.day <= row.day:
            raise DataError(path, nxt.line or None, f"{symbol} factor dates must increase")
        ex = next_trading_day(row.day)
        if row.price_factor != nxt.price_factor:
            if row.reference_price <= 0:
                raise DataError(path, row.line or None,
                                f"{symbol} {row.day}: price factor changes but there is no reference price")
            amount = _dividend(row, nxt, quantum)
            if amount < 0:
                raise DataError(path, row.line or None,
                                f"{symbol} {row.day}: price factor falls ({row.price_factor} -> "
                                f"{nxt.price_factor}), which is not a cash dividend")
            if amount > 0:
                out.append(CorporateAction.dividend(symbol, ex, amount, row.reference_price))
        if row.split_factor != nxt.split_factor:
            ratio = split_ratio(row.split_factor, nxt.split_factor)
            if ratio != 1:
                out.append(CorporateAction.split(symbol, ex, ratio, row.reference_price))
    return out


def read_factor_rows(path: str | Path = EQUITIES_DIR / LEAN_FACTOR_FILE) -> dict[str, tuple[FactorRow, ...]]:
    """Every ticker's factor rows with exact Decimal values.

    The file is validated by :func:`vtrade.market.feeds.daily.read_factors` (header, dates,
    positive finite factors, ascending dates; DataError naming ``file:line``); this then re-reads
    the same lines as decimal text, because that reader keeps floats and drops the reference price.

    >>> rows = read_factor_rows()["AAPL"]
    >>> [(str(r.day), r.split_factor, r.reference_price) for r in rows if r.day.year == 2014][2:4]
    [('2014-06-06', Decimal('0.03571430'), Decimal('645.57')), ('2014-08-06', Decimal('0.25'), Decimal('94.97'))]
    """
    p = Path(path)
    read_factors(p)
    out: dict[str, list[FactorRow]] = {}
    for lineno, line in numbered_lines(p):
        if lineno == 1:
            continue
        ticker, day_text, pf, sf, ref = next(csv.reader([line]))
        try:
            reference = Decimal(ref)
        except InvalidOperation:
            raise DataError(p, lineno, f"reference price {ref!r} is not a number") from None
        if not reference.is_finite() or reference < 0:
            raise DataError(p, lineno, f"reference price must be finite and not negative, got {ref!r}")
        day = parse_day(day_text)
        assert day is not None  # read_factors has checked every date
        out.setdefault(ticker, []).append(FactorRow(day, Decimal(pf), Decimal(sf), reference, lineno))
    return {t: tuple(v) for t, v in out.items()}


def read_corporate_actions(
    path: str | Path = EQUITIES_DIR / LEAN_FACTOR_FILE,
    *,
    tickers: str | Iterable[str] | None = None,
    start: DateSpec = None,
    end: DateSpec = None,
    decimal_places: int = 2,
) -> list[CorporateAction]:
    """Splits and dividends from a Lean factor file, ordered by ex-date, symbol, then dividend
    before split; ``start``/``end`` filter on the ex-date (inclusive).

    >>> [(str(a.ex_date), a.ratio, a.reference_price) for a in read_corporate_actions(tickers="AIG")
    ...  if a.kind is ActionKind.SPLIT and a.ex_date.year == 2009]
    [('2009-07-01', Fraction(1, 20), Decimal('1.13'))]
    """
    return actions_between(read_factor_rows(path), tickers=tickers, start=start, end=end,
                           decimal_places=decimal_places, path=path)


def actions_between(
    rows: Mapping[str, Sequence[FactorRow]],
    *,
    tickers: str | Iterable[str] | None = None,
    start: DateSpec = None,
    end: DateSpec = None,
    decimal_places: int = 2,
    path: str | Path = "<factor rows>",
) -> list[CorporateAction]:
    """THE answer to "which corporate actions of these tickers have an ex-date in [start, end]"
    (inclusive; None = open), from factor rows already read (:func:`read_factor_rows`), in the
    order of :func:`read_corporate_actions`. The ledger's readers and the replay both use it.

    >>> [str(a.ex_date) for a in actions_between(read_factor_rows(), tickers="AAPL", start="2014-06-01",
    ...                                          end="2014-06-30")]
    ['2014-06-09']
    """
    wanted = parse_tickers(tickers)
    lo, hi = parse_day(start), parse_day(end)
    acts: list[CorporateAction] = []
    for ticker, seq in rows.items():
        if wanted is not None and ticker not in wanted:
            continue
        acts.extend(
            a for a in actions_from_factor_rows(ticker, seq, decimal_places=decimal_places, path=path)
            if (lo is None or a.ex_date >= lo) and (hi is None or a.ex_date <= hi)
        )
    order = {ActionKind.DIVIDEND: 0, ActionKind.SPLIT: 1}
    acts.sort(key=lambda a: (a.ex_date, a.symbol, order[a.kind]))
    return acts
