"""What a split or cash dividend does at the exchange and the broker while raw data replays.

Pure and deterministic (DESIGN.md §2, §4). The actions come from Lean factor files through
:mod:`vtrade.portfolio.corporate_actions` (the one place that answers "which corporate actions
of ticker X fall between t0 and t1"); this module turns them into input events and applies them.

**Which.** Lean's own reading of a factor file (QuantConnect/Lean,
``Common/Data/Auxiliary/CorporateFactorProvider.cs``: ``GetSplitsAndDividends``,
``HasSplitEventOnNextTradingDay``, ``HasDividendEventOnNextTradingDay``): between two rows
``i`` and ``i+1`` a change of ``split_factor`` is a split (Lean's factor
``split_factor[i] / split_factor[i+1]``; holders get the inverse in shares) and a change of
``price_factor`` a dividend with ratio ``price_factor[i] / price_factor[i+1]`` on the
reference price (row ``i``'s raw close): ``D = reference x (1 - pf[i] / pf[i+1])``, rounded to
2 decimals (``GetDividend``'s default). Both take effect on the next trading day after row
``i``'s date, the ex-date. The derivation is in :mod:`vtrade.portfolio.corporate_actions`.

**When.** An action takes effect at the first market event of ``symbol`` on or after 00:00 of
its ex-date (instrument's time zone): :class:`ActionStream` puts a
:class:`~vtrade.core.events.CorporateActionEvent` stamped with that event's time right before it
in the sequenced input, so the run stays deterministic and the action is part of what
``output_hash()`` covers. Actions dated on or before the feed's first day are already behind it
and are skipped.

**Positions** (:func:`holding_after`). A ``ratio``:1 split turns ``q`` shares into
``trunc(q x ratio)``; the fraction left (a 1:20 reverse split of 30 shares leaves 1.5) is paid
in cash at the pre-ex-date close ``reference_price / ratio`` per new share, as brokers pay
"cash in lieu" (a short pays it to buy the fraction back). Money is rounded half-even to
the cent. Average cost per share divides by the ratio (the cost of the holding is unchanged:
the replay's P&L is cash + position x mark, so nothing else needs restating).

**Dividends** are credited at the **ex-date** open (debited from a short): the factor file
carries no pay date, and booking them at the ex-date keeps the P&L equal to the
adjusted-price P&L on the day the price drops by the dividend. Brokers pay weeks later on the
pay date; the amount is the same.

**Resting orders at a split are cancelled**, each with a reason a student can read: what
brokers do today (Saxo, tastytrade/OptionsHouse, Longbridge and others withdraw open orders on
a split's ex-date before the open; for a reverse split even the old NYSE Rule 118 / FINRA 5330
practice of adjusting GTC orders cancelled them). Re-pricing ``limit / ratio`` on the tick grid
would invent prices the user never chose; cancelling leaves the decision with the user, who
hears of it through the cancel. At a dividend, resting orders are left as they are (FINRA
5330's reduction of buy limits and sell stops by the dividend is not modelled).

>>> from datetime import date
>>> from fractions import Fraction
>>> from vtrade.portfolio.corporate_actions import CorporateAction
>>> holding_after(CorporateAction.split("AIG", date(2009, 7, 1), Fraction(1, 20), "1.13"), 30, Decimal(1))
(1, Decimal('11.30'))
>>> describe(CorporateAction.split("AAPL", date(2014, 6, 9), 7))
'7:1 split on 2014-06-09'
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from vtrade.core.events import CorporateActionEvent, MarketEvent
from vtrade.core.instruments import Instrument
from vtrade.portfolio.corporate_actions import ActionKind, CorporateAction

__all__ = [
    "ActionStream",
    "cancel_reason",
    "describe",
    "from_event",
    "holding_after",
    "to_event",
]

_CENT = Decimal("0.01")


def to_event(action: CorporateAction, ts: int) -> CorporateActionEvent:
    """``action`` as an input event at ``ts``.

    >>> e = to_event(CorporateAction.split("AAPL", date(2014, 6, 9), 7, "645.57"), 5)
    >>> (e.kind, e.ex_date, e.ratio_num, e.ratio_den), from_event(e).ratio
    (('split', '2014-06-09', 7, 1), Fraction(7, 1))
    """
    r = action.ratio
    return CorporateActionEvent(ts, ts, action.symbol, 0, action.kind.value, action.ex_date.isoformat(),
                                r.numerator, r.denominator, action.amount, action.reference_price)  # fmt: skip


def from_event(e: CorporateActionEvent) -> CorporateAction:
    """The :class:`CorporateAction` an input event carries."""
    return CorporateAction(e.symbol, date.fromisoformat(e.ex_date), ActionKind(e.kind),
                           ratio=Fraction(e.ratio_num, e.ratio_den), amount=e.amount,
                           reference_price=e.reference_price)  # fmt: skip


def holding_after(action: CorporateAction, lots: int, lot_size: Decimal) -> tuple[int, Decimal]:
    """``(lots after, cash received)`` for a holding of ``lots`` (negative: short) of ``lot_size``
    shares each; see the module notes. Same arithmetic as the ledger's
    :meth:`~vtrade.portfolio.ledger.Ledger.apply_corporate_action`.

    >>> d = CorporateAction.dividend("SPY", date(2014, 6, 20), "0.94")
    >>> holding_after(d, 100, Decimal(1)), holding_after(d, -100, Decimal(1))
    ((100, Decimal('94.00')), (-100, Decimal('-94.00')))
    >>> holding_after(CorporateAction.split("AAPL", date(2014, 6, 9), 7, "645.57"), 100, Decimal(1))
    (700, Decimal('0'))
    """
    if action.kind is ActionKind.DIVIDEND:
        return lots, action.amount * lot_size * lots
    if lots == 0:
        return 0, Decimal(0)
    sign = 1 if lots > 0 else -1
    exact = abs(lots) * action.ratio
    whole = int(exact)  # a fraction of a share is paid out, never rounded up
    frac = exact - whole
    if not frac:
        return sign * whole, Decimal(0)
    if action.reference_price <= 0:
        raise ValueError(f"split of {action.symbol} on {action.ex_date} leaves a fraction of a share but has "
                         "no reference price to pay it at")  # fmt: skip
    value = frac * Fraction(lot_size) * Fraction(action.reference_price) / action.ratio
    cash = (Decimal(value.numerator) / Decimal(value.denominator)).quantize(_CENT, rounding=ROUND_HALF_EVEN)
    return sign * whole, sign * cash


def describe(action: CorporateAction) -> str:
    """``'7:1 split on 2014-06-09'``, ``'1:20 reverse split on 2009-07-01'``, ``'0.94 dividend ex 2014-06-20'``."""
    if action.kind is ActionKind.DIVIDEND:
        return f"{action.amount} dividend ex {action.ex_date}"
    r = action.ratio
    reverse = " reverse" if r < 1 else ""
    return f"{r.numerator}:{r.denominator}{reverse} split on {action.ex_date}"


def cancel_reason(action: CorporateAction) -> str:
    """The reason an order resting at a split is cancelled with."""
    return (f"cancelled by the broker: {action.symbol} {describe(action)}; open orders are cancelled at a split "
            "because their prices and sizes are in pre-split shares; enter them again if you still want them")


class ActionStream:
    """Puts ``actions`` of ``instrument`` into a market-event stream at the first event of each
    ex-date, and notes the stream's first and last day (of the instrument's own events).

    >>> from vtrade.core.events import Bar
    >>> from vtrade.core.instruments import us_equity
    >>> ns = lambda d: int(datetime(2014, 6, d, 13, 30, tzinfo=ZoneInfo("UTC")).timestamp()) * 10**9
    >>> bars = [Bar(ns(d), ns(d), "AAPL", 0, 1, 1, 1, 1, 1, 1) for d in (5, 6, 9)]
    >>> s = ActionStream(us_equity("AAPL"), [CorporateAction.split("AAPL", date(2014, 6, 9), 7)])
    >>> [type(e).__name__ for e in s.wrap(bars)], [str(a.ex_date) for a in s.taken], str(s.last_day)
    (['Bar', 'Bar', 'CorporateActionEvent', 'Bar'], ['2014-06-09'], '2014-06-09')
    """

    def __init__(self, instrument: Instrument, actions: Sequence[CorporateAction]) -> None:
        self.symbol = instrument.symbol
        self.zone = ZoneInfo(instrument.hours.timezone)
        self.pending = sorted((a for a in actions if a.symbol == self.symbol),
                              key=lambda a: (a.ex_date, a.kind is ActionKind.SPLIT))  # fmt: skip
        self.taken: list[CorporateAction] = []
        self.first_ts: int | None = None
        self.last_ts: int | None = None

    def _day(self, ts: int) -> date:
        return datetime.fromtimestamp(ts / 1e9, tz=self.zone).date()

    def _midnight(self, day: date) -> int:
        return int(datetime.combine(day, time(0), tzinfo=self.zone).timestamp()) * 1_000_000_000

    @property
    def first_day(self) -> date | None:
        return None if self.first_ts is None else self._day(self.first_ts)

    @property
    def last_day(self) -> date | None:
        return None if self.last_ts is None else self._day(self.last_ts)

    def wrap(self, events: Iterable[MarketEvent]) -> Iterator[MarketEvent]:
        pending = iter(self.pending)
        nxt: CorporateAction | None = None
        due = 0  # ts from which ``nxt`` takes effect
        for e in events:
            if e.symbol == self.symbol:
                if self.first_ts is None:
                    self.first_ts = e.ts
                    first = self._day(e.ts)
                    # Actions dated on or before the first day are already in the data.
                    nxt = next((a for a in pending if a.ex_date > first), None)
                    due = self._midnight(nxt.ex_date) if nxt else 0
                self.last_ts = e.ts if self.last_ts is None else max(self.last_ts, e.ts)
                while nxt is not None and e.ts >= due:
                    self.taken.append(nxt)
                    yield to_event(nxt, e.ts)
                    nxt = next(pending, None)
                    due = self._midnight(nxt.ex_date) if nxt else 0
            yield e
