"""The public tables: orders, fills and positions, one schema everywhere (``vt.schema``).

Replay (``vt.replay(...).orders`` / ``.fills``), the live market (``LiveMarket.orders/fills``,
``LiveSession.orders/fills/positions``), the session store (``Session.fills()``, the ``fills``
table of ``Session.sql``), the portfolio book and the dashboard all build these tables here,
so they have the same columns, in the same order, with the same dtypes:

- ``side`` is ``'buy'`` or ``'sell'``; ``ts`` is a tz-aware UTC datetime (simulated time);
- prices are in the instrument's currency per unit and sizes in units (shares, coins,
  contracts), as floats for analytics; the exact integers the engine keeps (DESIGN.md §3) are
  the extra ``*_ticks`` and ``*_lots`` columns at the end (``price == price_ticks x tick size``);
- ``account`` and ``symbol`` are always there; orders and fills are oldest first (ties keep the
  order the exchange produced them in); positions are largest absolute value first.

The tables below are the schema itself: :data:`ORDERS`, :data:`FILLS` and :data:`POSITIONS`
are read from them (a column's name, dtype and meaning), so this page cannot drift from the code.

Fills (``FILLS``): one row per fill, with its receipt.

==================  ===================  =========================================================================
column              dtype                meaning
==================  ===================  =========================================================================
ts                  datetime64[ns, UTC]  when the exchange filled it (simulated time)
account             str                  the account that traded
symbol              str                  the instrument
client_order_id     str                  the order that filled
fill_id             str                  the exchange's id of the fill (unique per symbol's exchange and account)
side                str                  'buy' or 'sell'
price               float64              fill price, in the instrument's currency per unit
quantity            float64              units filled (shares, coins, contracts), always positive
leaves              float64              units of the order still open after this fill
liquidity           str                  'maker' (a resting order was hit) or 'taker' (it took liquidity)
fee                 float64              fee on this fill, in the instrument's currency (negative = rebate)
arrival_mid         float64              the mid when the order reached the book
slippage_bps        float64              fill price vs arrival mid in basis points, positive = worse for the side
queue_ahead         float64              units ahead of a resting order when it joined the queue (NaN for takers)
model               str                  the fill model that produced it (e.g. 'l2-walk', 'l2-queue')
price_ticks         int64                the price exactly: a count of the instrument's tick
quantity_lots       int64                the quantity exactly: a count of the instrument's lot
leaves_lots         int64                ``leaves`` exactly, in lots
queue_ahead_lots    Int64                ``queue_ahead`` exactly, in lots (<NA> for takers)
==================  ===================  =========================================================================

Orders (``ORDERS``): one row per order sent, including the ones refused.

==================  ===================  =========================================================================
column              dtype                meaning
==================  ===================  =========================================================================
ts                  datetime64[ns, UTC]  when the order was entered (before the entry latency)
account             str                  the account that sent it
symbol              str                  the instrument
client_order_id     str                  the order's id, unique per account
side                str                  'buy' or 'sell'
type                str                  'market', 'limit', 'stop', 'stop_limit', ...
tif                 str                  time in force: 'day', 'gtc', 'ioc', 'fok', 'gtd'
quantity            float64              units ordered (after a size-to-cash cut)
requested           float64              units asked for (more than quantity when size_to_cash cut the order)
limit_price         float64              limit price (NaN when the order has none)
stop_price          float64              stop price (NaN when the order has none)
status              str                  'pending_new', 'accepted', 'partially_filled', 'filled', 'cancelled', ...
filled              float64              units filled so far
leaves              float64              units still open (0 once the order is done)
avg_price           float64              average fill price (NaN before the first fill)
fees                float64              fees paid on the order's fills so far
reason              str                  why it was refused or cancelled ('' when there is nothing to say)
note                str                  the trader's note on the order ('' when none)
quantity_lots       int64                ``quantity`` exactly, in lots
requested_lots      int64                ``requested`` exactly, in lots
filled_lots         int64                ``filled`` exactly, in lots
leaves_lots         int64                ``leaves`` exactly, in lots
limit_price_ticks   Int64                ``limit_price`` exactly, in ticks (<NA> when none)
stop_price_ticks    Int64                ``stop_price`` exactly, in ticks (<NA> when none)
==================  ===================  =========================================================================

Positions (``POSITIONS``): one row per open position of an account.

==================  ===================  =========================================================================
column              dtype                meaning
==================  ===================  =========================================================================
account             str                  the account that holds it
symbol              str                  the instrument
sector              str                  its GICS sector (or the venue's label, e.g. 'Crypto')
quantity            float64              units held, negative = short
price               float64              the mark: the price the position is valued at
value               float64              quantity x price (negative for a short)
cost_basis          float64              what the open quantity cost
unrealized_pnl      float64              value - cost_basis
weight              float64              abs(value) / the account's gross exposure
quantity_lots       int64                ``quantity`` exactly, in lots (from the exact ledger)
==================  ===================  =========================================================================

>>> list(FILLS)[:6]
['ts', 'account', 'symbol', 'client_order_id', 'fill_id', 'side']
>>> FILLS.dtypes["ts"], FILLS.dtypes["quantity_lots"]
('datetime64[ns, UTC]', 'int64')
>>> FILLS.empty().dtypes["side"]
<StringDtype(na_value=nan)>
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from typing import Any, overload

import numpy as np
import pandas as pd

from vtrade.core.events import Side
from vtrade.core.instruments import Instrument
from vtrade.execution.events import (
    ExecEvent,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderTriggered,
)
from vtrade.execution.orders import SubmitOrder

__all__ = [
    "FILLS",
    "OPEN_STATUSES",
    "ORDERS",
    "POSITIONS",
    "Column",
    "OrderRecord",
    "Schema",
    "fills_frame",
    "orders_frame",
    "positions_frame",
    "side_name",
]

#: Order statuses in which an order can still fill (``leaves`` counts only for these).
OPEN_STATUSES = frozenset({"new", "pending_new", "accepted", "partially_filled", "triggered"})


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a public table: its name, pandas dtype and what it means."""

    name: str
    dtype: str
    meaning: str


class Schema(Sequence[str]):
    """A public table's columns in order: iterates over the names (``list(FILLS)``), with
    ``dtypes`` and ``columns`` (:class:`Column`) for the details."""

    def __init__(self, name: str, columns: Sequence[Column]) -> None:
        self.name = name
        self.columns = tuple(columns)
        self.names = tuple(c.name for c in self.columns)
        self.dtypes = {c.name: c.dtype for c in self.columns}

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...
    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        return self.names[i]

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __repr__(self) -> str:
        return f"Schema({self.name!r}, {list(self.names)!r})"

    def describe(self) -> pd.DataFrame:
        """The schema as a DataFrame: ``column, dtype, meaning``."""
        rows = [(c.name, c.dtype, c.meaning) for c in self.columns]
        return pd.DataFrame(rows, columns=["column", "dtype", "meaning"])

    def empty(self) -> pd.DataFrame:
        """A table with no rows and every column at its dtype."""
        return self.frame({name: [] for name in self.names})

    def frame(self, data: Mapping[str, Any]) -> pd.DataFrame:
        """A table from ``data`` (column name -> values): exactly this schema's columns, in order,
        at their dtypes. A column missing or extra is a ``ValueError``."""
        missing = [n for n in self.names if n not in data]
        extra = [n for n in data if n not in self.dtypes]
        if missing or extra:
            raise ValueError(f"{self.name}: missing columns {missing}, unexpected columns {extra}")
        return pd.DataFrame({n: _column(data[n], self.dtypes[n]) for n in self.names})

    def conform(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` (e.g. read back from DuckDB or Parquet) with this schema's columns, order and
        dtypes: naive datetimes are UTC, integer nanoseconds become datetimes."""
        missing = [n for n in self.names if n not in df]
        if missing:
            raise ValueError(f"{self.name}: missing columns {missing}")
        return self.frame({n: df[n] for n in self.names})

    def check(self, df: pd.DataFrame) -> None:
        """Raise ``ValueError`` naming what differs when ``df`` does not have exactly this schema."""
        got = [(c, str(t)) for c, t in df.dtypes.items()]
        want = list(self.dtypes.items())
        if got != want:
            diff = [f"{g} != {w}" for g, w in zip(got, want, strict=False) if g != w]
            raise ValueError(f"{self.name}: columns or dtypes differ from the schema: {diff or (got, want)}")


def _column(values: Any, dtype: str) -> Any:
    """``values`` as a column of ``dtype`` for :meth:`Schema.frame`: text and numbers straight
    into an array (a Series per column, then a frame aligning them, was most of the cost of a
    small table, such as the positions a dashboard rebuilds every other second per session);
    anything else (times, nullable integers, values needing pandas' conversions) via
    :func:`_series`."""
    arr = values.to_numpy(dtype=object if dtype == "str" else None) if isinstance(values, pd.Series) else values
    try:
        if dtype == "str":
            arr = np.asarray(arr, dtype=object)
            if arr.ndim == 1:
                return pd.array(arr, dtype="str")
        elif dtype in _NUMPY_KINDS:
            arr = np.asarray(arr)
            if arr.ndim == 1 and arr.dtype.kind in _NUMPY_KINDS[dtype]:  # never NaN into an integer
                return arr.astype(dtype)
    except (TypeError, ValueError):
        pass
    return _series(values, dtype)


#: The numpy dtypes :func:`_column` fills directly, from arrays of these kinds only.
_NUMPY_KINDS = {"float64": "fiub", "int64": "iub", "bool": "b"}


def _series(values: Any, dtype: str) -> pd.Series:
    """``values`` (a list, an array or a Series) as a Series of ``dtype``, with a fresh index."""
    if isinstance(values, pd.Series):
        values = values.reset_index(drop=True)
    if dtype.startswith("datetime64"):
        s = pd.Series(values)
        if s.empty:
            return pd.Series([], dtype=dtype)
        if s.dtype.kind in "iu":  # integer nanoseconds since the epoch, UTC
            return pd.Series(pd.to_datetime(s, unit="ns", utc=True)).astype(pd.api.types.pandas_dtype(dtype))
        s = pd.Series(pd.to_datetime(s, utc=s.dtype.kind != "M"))
        s = s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")  # naive times are UTC
        return s.astype(pd.api.types.pandas_dtype(dtype))
    if dtype == "str":
        return pd.Series(values, dtype=object).astype("str")
    if dtype == "Int64" and not isinstance(values, pd.Series | np.ndarray):
        return pd.Series(pd.array(list(values), dtype="Int64"))
    return pd.Series(values).astype(pd.api.types.pandas_dtype(dtype)) if len(values) else pd.Series([], dtype=dtype)


def _parse(doc: str) -> dict[str, Schema]:
    """The schemas in this module's docstring: each table follows a line naming it (``NAME``)."""
    out: dict[str, Schema] = {}
    blocks = re.split(r"^.*\(``([A-Z]+)``\).*$", doc, flags=re.M)
    for name, body in zip(blocks[1::2], blocks[2::2], strict=True):
        lines = body.strip("\n").splitlines()
        rule = next(i for i, line in enumerate(lines) if line.startswith("="))
        cuts = [m.start() for m in re.finditer(r"=+", lines[rule])]
        columns = []
        for line in lines[rule + 3 :]:
            if line.startswith("="):
                break
            name_, dtype, meaning = (line[a:b].strip() for a, b in zip(cuts, [*cuts[1:], None], strict=True))
            columns.append(Column(name_, dtype, meaning))
        out[name] = Schema(name.lower(), columns)
    return out


_SCHEMAS = _parse(__doc__ or "")
#: The fills table: see the module notes.
FILLS: Schema = _SCHEMAS["FILLS"]
#: The orders table: see the module notes.
ORDERS: Schema = _SCHEMAS["ORDERS"]
#: The positions table: see the module notes.
POSITIONS: Schema = _SCHEMAS["POSITIONS"]

Instruments = Instrument | Mapping[str, Instrument]


def side_name(side: Side | int) -> str:
    """``'buy'`` or ``'sell'``.

    >>> side_name(Side.SELL), side_name(1)
    ('sell', 'buy')
    """
    return "buy" if int(side) > 0 else "sell"


def _lookup(instruments: Instruments) -> Any:
    if isinstance(instruments, Instrument):
        return lambda symbol: instruments
    return instruments.__getitem__


def _oldest_first(df: pd.DataFrame) -> pd.DataFrame:
    if len(df) > 1 and not df["ts"].is_monotonic_increasing:
        df = df.sort_values("ts", kind="stable")
    return df.reset_index(drop=True)


def fills_frame(fills: Iterable[OrderFilled], instruments: Instruments) -> pd.DataFrame:
    """The :data:`FILLS` table of ``fills`` (execution events), oldest first; ``instruments``
    is the one instrument traded or a mapping of symbol -> instrument.

    >>> from vtrade.core.instruments import us_equity
    >>> from vtrade.execution.orders import Liquidity
    >>> f = OrderFilled(5, "ada", "ada-1", "SPY", "1", Side.BUY, 16765, 10, 0, Liquidity.TAKER, Decimal("1"),
    ...                 33530, 0.0, "l2-walk")
    >>> print(fills_frame([f], us_equity("SPY"))[["side", "price", "quantity", "price_ticks", "quantity_lots"]])
      side   price  quantity  price_ticks  quantity_lots
    0  buy  167.65      10.0        16765             10
    """
    fills = list(fills)
    inst_of = _lookup(instruments)
    insts = [inst_of(f.symbol) for f in fills]
    lot = [i.size_grid.to_float(1) for i in insts]  # units per lot of each row's instrument
    qa = [f.queue_ahead for f in fills]
    return _oldest_first(FILLS.frame({
        "ts": np.array([f.ts for f in fills], dtype=np.int64),
        "account": [f.account for f in fills],
        "symbol": [f.symbol for f in fills],
        "client_order_id": [f.client_order_id for f in fills],
        "fill_id": [f.fill_id for f in fills],
        "side": [side_name(f.side) for f in fills],
        "price": [i.price_grid.to_float(f.price) for i, f in zip(insts, fills, strict=True)],
        "quantity": [i.size_grid.to_float(f.quantity) for i, f in zip(insts, fills, strict=True)],
        "leaves": [i.size_grid.to_float(f.leaves) for i, f in zip(insts, fills, strict=True)],
        "liquidity": [str(f.liquidity) for f in fills],
        "fee": [float(f.fee) for f in fills],
        "arrival_mid": [i.price_grid.to_float(f.arrival_mid2) / 2 for i, f in zip(insts, fills, strict=True)],
        "slippage_bps": [float(f.slippage_bps) for f in fills],
        "queue_ahead": [np.nan if q is None else q * k for q, k in zip(qa, lot, strict=True)],
        "model": [f.model for f in fills],
        "price_ticks": [f.price for f in fills],
        "quantity_lots": [f.quantity for f in fills],
        "leaves_lots": [f.leaves for f in fills],
        "queue_ahead_lots": qa,
    }))  # fmt: skip


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """What an orders table row is built from, in exact units (ticks, lots, Decimal money).

    ``ts`` is when the order was entered (UTC ns); ``quantity`` what is ordered and
    ``requested`` what was asked for (they differ when size-to-cash cut the order);
    ``notional`` the sum of fill price ticks x lots (the exact average is notional / filled).
    """

    ts: int
    account: str
    symbol: str
    client_order_id: str
    side: Side
    order_type: str
    tif: str
    quantity: int
    status: str
    requested: int | None = None
    limit_price: int | None = None
    stop_price: int | None = None
    filled: int = 0
    notional: int = 0
    fees: Decimal = Decimal(0)
    reason: str = ""
    note: str = ""

    def __setstate__(self, state: list[Any]) -> None:
        # A checkpoint written before a field was added (``note``) has fewer values: the rest default.
        names = [f.name for f in fields(self)]
        values = dict(zip(names, state, strict=False))
        for f in fields(self):
            object.__setattr__(self, f.name, values.get(f.name, f.default))

    @property
    def leaves(self) -> int:
        return self.quantity - self.filled if self.status in OPEN_STATUSES else 0

    @classmethod
    def entered(cls, order: SubmitOrder, ts: int | None = None, *, status: str = "pending_new",
                reason: str = "") -> OrderRecord:  # fmt: skip
        """The row of ``order`` as entered at ``ts`` (default: the order's own ``ts``)."""
        return cls(order.ts if ts is None else ts, order.account, order.symbol, order.client_order_id, order.side,
                   str(order.order_type), str(order.tif), order.quantity, status, order.requested_quantity,
                   order.limit_price, order.stop_price, reason=reason, note=order.note)  # fmt: skip

    def after(self, e: ExecEvent) -> OrderRecord:
        """This order's row after the execution report ``e`` about it (the blotter's fold).

        >>> from vtrade.execution.orders import Liquidity, OrderType
        >>> o = OrderRecord.entered(SubmitOrder(0, "ada", "c1", "SPY", Side.BUY, OrderType.MARKET, 10))
        >>> fill = OrderFilled(1, "ada", "c1", "SPY", "SPY-f1", Side.BUY, 16765, 10, 0, Liquidity.TAKER,
        ...                    Decimal("0.05"), 33529, 0.3, "L2")
        >>> o.after(fill).status, o.after(fill).filled
        ('filled', 10)
        """
        if isinstance(e, OrderFilled):
            status = "filled" if e.leaves == 0 else "partially_filled"
            filled, notional, fees = self.filled + e.quantity, self.notional + e.price * e.quantity, self.fees + e.fee
            return replace(self, filled=filled, notional=notional, fees=fees, status=status)
        if isinstance(e, OrderAccepted):
            return replace(self, status="accepted") if self.status == "pending_new" else self
        if isinstance(e, OrderRejected | OrderCancelled):
            return replace(self, status="rejected" if isinstance(e, OrderRejected) else "cancelled", reason=e.reason)
        if isinstance(e, OrderExpired):
            return replace(self, status="expired")
        if isinstance(e, OrderTriggered):
            return replace(self, status="triggered")
        return self


def orders_frame(orders: Iterable[OrderRecord], instruments: Instruments) -> pd.DataFrame:
    """The :data:`ORDERS` table of ``orders``, oldest first (by entry time).

    >>> from vtrade.core.instruments import us_equity
    >>> o = OrderRecord(0, "ada", "SPY", "ada-1", Side.SELL, "limit", "day", 10, "partially_filled",
    ...                 limit_price=16765, filled=4, notional=4 * 16765)
    >>> print(orders_frame([o], us_equity("SPY"))[["side", "limit_price", "filled", "leaves", "leaves_lots"]])
       side  limit_price  filled  leaves  leaves_lots
    0  sell       167.65     4.0     6.0            6
    """
    orders = list(orders)
    inst_of = _lookup(instruments)
    insts = [inst_of(o.symbol) for o in orders]
    pairs = list(zip(insts, orders, strict=True))

    def price(i: Instrument, ticks: int | None) -> float:
        return np.nan if ticks is None else i.price_grid.to_float(ticks)

    requested = [o.quantity if o.requested is None else o.requested for o in orders]
    return _oldest_first(ORDERS.frame({
        "ts": np.array([o.ts for o in orders], dtype=np.int64),
        "account": [o.account for o in orders],
        "symbol": [o.symbol for o in orders],
        "client_order_id": [o.client_order_id for o in orders],
        "side": [side_name(o.side) for o in orders],
        "type": [str(o.order_type) for o in orders],
        "tif": [str(o.tif) for o in orders],
        "quantity": [i.size_grid.to_float(o.quantity) for i, o in pairs],
        "requested": [i.size_grid.to_float(r) for (i, _), r in zip(pairs, requested, strict=True)],
        "limit_price": [price(i, o.limit_price) for i, o in pairs],
        "stop_price": [price(i, o.stop_price) for i, o in pairs],
        "status": [o.status for o in orders],
        "filled": [i.size_grid.to_float(o.filled) for i, o in pairs],
        "leaves": [i.size_grid.to_float(o.leaves) for i, o in pairs],
        "avg_price": [i.price_grid.to_float(1) * o.notional / o.filled if o.filled else np.nan for i, o in pairs],
        "fees": [float(o.fees) for o in orders],
        "reason": [o.reason or "" for o in orders],
        "note": [o.note for o in orders],
        "quantity_lots": [o.quantity for o in orders],
        "requested_lots": requested,
        "filled_lots": [o.filled for o in orders],
        "leaves_lots": [o.leaves for o in orders],
        "limit_price_ticks": [o.limit_price for o in orders],
        "stop_price_ticks": [o.stop_price for o in orders],
    }))  # fmt: skip


def positions_frame(
    account: str,
    positions: pd.DataFrame,
    lots: Mapping[str, int],
) -> pd.DataFrame:
    """The :data:`POSITIONS` table of ``account``: ``positions`` has the float view's columns
    (``symbol, sector, qty, price, value, cost_basis, unrealized_pnl, weight``, largest first, as
    :meth:`vtrade.portfolio.nav.NavBook.positions` gives them) and ``lots`` the exact ledger's
    position of each symbol in lots.
    """
    n = len(positions)
    return POSITIONS.frame({
        "account": [account] * n,
        "symbol": positions["symbol"].to_numpy(),
        "sector": positions["sector"].to_numpy(),
        "quantity": positions["qty"].to_numpy(),
        "price": positions["price"].to_numpy(),
        "value": positions["value"].to_numpy(),
        "cost_basis": positions["cost_basis"].to_numpy(),
        "unrealized_pnl": positions["unrealized_pnl"].to_numpy(),
        "weight": positions["weight"].to_numpy(),
        "quantity_lots": [int(lots.get(s, 0)) for s in positions["symbol"]],
    })  # fmt: skip
