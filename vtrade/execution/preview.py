"""An order's estimated outcome before it is sent: what the ticket shows under "Preview".

Pure (DESIGN.md §2): given the order, the opposite side of the book, the mid, the liquidity our
own takers already consumed and the account's buying power, :func:`preview_order` walks the
book the way the engine would (:func:`vtrade.execution.liquidity.walk`) and reports the
estimated fill, its slippage against the mid, the fee and the buying power before and after.
:meth:`vtrade.execution.broker.Brokerage.preview` supplies the account's side of it; the live
market, a notebook or a copilot supply the book.

>>> from decimal import Decimal
>>> from vtrade.core.instruments import us_equity
>>> from vtrade.execution.orders import OrderType, SubmitOrder
>>> o = SubmitOrder(0, "ada", "preview", "XYZ", Side.BUY, OrderType.MARKET, 5)
>>> p = preview_order(o, us_equity("XYZ"), [(10001, 3), (10002, 4)], mid2=20000,
...                   buying_power=Decimal("1000"))
>>> p.fillable, p.avg_price, round(p.slippage_bps, 2), p.buying_power_after, p.note
(5.0, 100.014, 1.4, 499.95, 'fills now')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from vtrade.core.events import Side
from vtrade.core.instruments import Instrument
from vtrade.execution.fees import FeeModel, FillContext
from vtrade.execution.liquidity import ConsumedLiquidity, walk
from vtrade.execution.orders import Liquidity, OrderType, SubmitOrder

__all__ = ["Preview", "estimate_fill", "preview_order"]


@dataclass(frozen=True)
class Preview:
    """An order's estimated outcome against the current book (before confirming it).

    ``fillable`` is the quantity that would fill now (units), ``avg_price`` its average price,
    ``slippage_bps`` vs the current mid (positive = worse for the side), ``fee`` the estimated
    commission, ``buying_power``/``buying_power_after`` the account's before and after.
    ``refusal`` is the reason the broker's account rules would refuse the order if it were sent
    now (None: it would go out, or the rules were not asked), so a preview never looks fine
    for an order that will not go.
    """

    symbol: str
    side: str
    quantity: float
    fillable: float
    avg_price: float | None
    mid: float | None
    slippage_bps: float | None
    notional: float
    fee: float
    buying_power: float
    buying_power_after: float
    rests: bool
    note: str
    refusal: str | None = None


def estimate_fill(
    levels: Iterable[tuple[int, int]],
    side: Side,
    quantity: int,
    *,
    limit: int | None = None,
    used: ConsumedLiquidity | None = None,
) -> tuple[int, int]:
    """``(lots, notional_ticks_x_lots)`` a ``side`` order of ``quantity`` lots would take from
    ``levels`` (the opposite side, best first) now, up to ``limit``; domain :func:`walk` does
    the walking (``used``: what our own takers already consumed).

    >>> estimate_fill([(101, 3), (102, 4)], Side.BUY, 5)
    (5, 507)
    >>> estimate_fill([(101, 3), (102, 4)], Side.BUY, 5, limit=101)
    (3, 303)
    """
    takes = walk(levels, quantity, limit=limit, used=used or ConsumedLiquidity(), side=side)
    return sum(t.quantity for t in takes), sum(t.price * t.quantity for t in takes)


def preview_order(
    order: SubmitOrder,
    instrument: Instrument,
    levels: Iterable[tuple[int, int]],
    *,
    mid2: int | None,
    buying_power: Decimal,
    used: ConsumedLiquidity | None = None,
    fees: FeeModel | None = None,
) -> Preview:
    """The estimated outcome of ``order`` against ``levels`` (the opposite side of the book,
    best first, ticks and lots); ``mid2`` is twice the mid in ticks (None: no two-sided book).

    Market and limit orders walk the book (a limit order up to its price); stop orders rest.
    ``buying_power_after`` takes off what a buy would spend at its limit (else at the estimated
    average price) plus the estimated taker fee.
    """
    o, inst = order, instrument
    marketable = o.order_type in (OrderType.MARKET, OrderType.LIMIT)
    lots, notional = estimate_fill(levels, o.side, o.quantity, limit=o.limit_price, used=used) if marketable else (0, 0)
    px = inst.price_grid.to_float
    units = inst.size_grid.to_decimal
    avg = px(1) * notional / lots if lots else None
    mid = px(mid2) / 2 if mid2 else None
    slip = None
    if avg is not None and mid:
        slip = (avg - mid) / mid * 1e4 * (1 if o.side is Side.BUY else -1)
    fee = Decimal(0)
    if lots and fees is not None:
        fee = fees.fee(FillContext(inst, o.side, lots, max(1, notional // lots), Liquidity.TAKER))
    # ``notional`` is in ticks x LOTS: its value needs the lot size too (0.01 BTC is 10 lots, and
    # leaving it out made the preview 1,000x too large). Instrument.notional applies the contract
    # rule. What rests is valued at its limit or stop: a resting order's notional is not $0.
    # (Linear: sum(ticks x lots) x tick x lot exactly; inverse: at the average price.)
    if not lots:
        value = Decimal(0)
    elif inst.inverse:
        value = inst.notional(inst.price_grid.to_decimal(notional) / lots, units(lots))
    else:
        value = inst.notional(inst.price_grid.to_decimal(notional), units(1))
    rest_price = o.limit_price if o.limit_price is not None else o.stop_price
    resting = o.quantity - lots if o.order_type is not OrderType.MARKET else 0
    if resting and rest_price is not None:
        value += inst.notional(inst.price_grid.to_decimal(rest_price), units(resting))
    price_for_bp = o.limit_price if o.limit_price is not None else (notional // lots if lots else None)
    spend = Decimal(0)
    if o.side is Side.BUY and price_for_bp is not None:
        spend = inst.notional(inst.price_grid.to_decimal(price_for_bp), units(o.quantity)) + fee
    rests = lots < o.quantity and o.order_type is not OrderType.MARKET
    if o.order_type is OrderType.MARKET:
        what = f"only {units(lots)} of {units(o.quantity)} {inst.unit} available now"
        note = "fills now" if lots == o.quantity else what
    else:
        note = "rests in the book" if lots == 0 else ("fills now" if not rests else "part fills, rest rests")
    return Preview(
        o.symbol, o.side.name.lower(), float(units(o.quantity)), float(units(lots)), avg, mid, slip, float(value),
        float(fee), float(buying_power), float(buying_power - spend), rests, note,
    )  # fmt: skip
