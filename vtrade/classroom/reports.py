"""Class reports: a student's statement and debrief, and the teacher's grade sheet (pure).

Inputs are what the live market already answers (DESIGN.md §7): one :class:`StudentRecord`
per student holds that account's ``orders``, ``fills``, ``positions``, portfolio ``summary``
and ``nav`` history exactly as ``LiveMarket.orders/fills/portfolio/nav_history`` return them
(:mod:`vtrade.runtime.exports` gathers them). The benchmark is ``LiveMarket.prices("SPY")``;
``marks`` (market prices over time, :func:`marks_from_prices`) value the positions a student
kept when they sold something else. Nothing here reads a clock, a file or the market.

Conventions every number follows:

- **P&L is average cost**, like the positions' ``cost_basis``: realized P&L is gross of fees
  (fees are their own line) and ``realized + unrealized - fees + other = nav - initial cash``,
  where ``other`` is what fills do not explain (borrow fees, dividends; 0 in a cash account).
- **Returns are fractions** (0.012 = 1.2 %) in the dataclasses and frames; the plain-English
  lines and the grade sheet's ``*_pct`` / ``*_pts`` columns show percent and percentage points.
- **Time** is simulated time, UTC. The risk table's returns are per NAV sample (the market
  samples NAV every few simulated seconds); they are not annualised, because a class lasts
  hours, and a yearly figure from an hour of trading would be a guess dressed as a number.
- **Undefined is not zero**: a metric that cannot be computed is ``None`` (NaN in a frame),
  and the lines say why ("not enough sells").
- **Text is data**: display names and notes are kept as typed; the lines are plain text, never
  HTML (views escape); :func:`neutralise` defuses spreadsheet formulas before an export.

>>> ts = pd.to_datetime(["2024-01-02 14:00", "2024-01-02 15:00", "2024-01-02 16:00"], utc=True)
>>> orders = pd.DataFrame({"client_order_id": ["a-1", "a-2", "a-3"], "status": ["filled", "filled", "rejected"],
...                        "type": "market", "note": ["oil will rise", "", ""]})
>>> fills = pd.DataFrame({"ts": ts[:2], "symbol": ["XOM", "XOM"], "client_order_id": ["a-1", "a-2"],
...                       "side": ["buy", "sell"], "price": [80.0, 84.0], "quantity": [100.0, 50.0],
...                       "fee": [1.0, 1.0], "arrival_mid": [79.99, 84.01]})
>>> positions = pd.DataFrame({"symbol": ["XOM"], "sector": ["Energy"], "quantity": [50.0], "price": [86.0],
...                           "value": [4300.0], "cost_basis": [4000.0], "unrealized_pnl": [300.0], "weight": [1.0]})
>>> nav = pd.DataFrame({"ts": ts, "nav": [10_000.0, 10_198.0, 10_498.0]})
>>> rec = StudentRecord("s1", "Ada", "acct-ada", 10_000.0, orders, fills, positions,
...                     {"nav": 10_498.0, "cash": 6_198.0}, nav)
>>> st = statement(rec)
>>> st.pnl.realized, st.pnl.unrealized, st.pnl.fees, st.pnl.total
(200.0, 300.0, 2.0, 498.0)
>>> st.transactions[["side", "price", "slippage_cost", "realized_pnl", "note"]]
   side  price  slippage_cost  realized_pnl           note
0   buy   80.0            1.0           0.0  oil will rise
1  sell   84.0            0.5         200.0
>>> spy = pd.DataFrame({"ts": ts, "mid": [400.0, 402.0, 404.0]})
>>> d = debrief(rec, spy)
>>> round(d.versus.student_return, 4), round(d.versus.benchmark_return, 4), round(d.versus.difference, 4)
(0.0498, 0.01, 0.0398)
>>> print(d.lines[1])
You beat SPY by 4.0 points (you +4.98%, SPY +1.00%).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vtrade.portfolio import analytics

__all__ = [
    "FORMULA_PREFIXES",
    "GRADE_SHEET_COLUMNS",
    "GRADE_SHEET_DISPLAY",
    "NOT_ENOUGH_SELLS",
    "OTHER",
    "UNCLASSIFIED",
    "Activity",
    "Concentration",
    "Debrief",
    "Disposition",
    "PnL",
    "Risk",
    "Statement",
    "StudentRecord",
    "VersusBenchmark",
    "activity",
    "concentration",
    "debrief",
    "disposition",
    "grade_sheet",
    "grade_sheet_display",
    "marks_from_prices",
    "neutralise",
    "risk",
    "sector_pnl",
    "statement",
    "versus_benchmark",
]

#: A text cell starting with one of these is read as a formula by Excel, LibreOffice or Sheets
#: (OWASP "CSV injection"); tab and carriage return hide a formula behind whitespace.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_DAY_NS = 86_400 * 10**9
_REL_TOL = 1e-9  # average costs are float quotients: 30.03 / 3 is not exactly 10.01
UNCLASSIFIED = "Unclassified"
OTHER = "Other (borrow, dividends)"
NOT_ENOUGH_SELLS = "not enough sells"

_FILLS_NEED = ("ts", "symbol", "side", "price", "quantity")
_POSITIONS_NEED = ("symbol", "quantity", "price", "value", "cost_basis")
_NAV_NEED = ("ts", "nav")


# --------------------------------------------------------------------------------------------
# the input


def _need(df: object, what: str, columns: Iterable[str]) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}")
    return df


@dataclass(frozen=True, eq=False)
class StudentRecord:
    """Everything the reports read of one student, as the live market answers it.

    ``orders``: ``LiveMarket.orders(account)`` (``client_order_id``, ``status``, ``type``, and
    the student's ``note``, read as ``""`` when the column or a value is missing);
    ``fills``: ``LiveMarket.fills(account)`` (needs ``ts, symbol, side, price, quantity``; the
    receipt columns ``fee, liquidity, arrival_mid, slippage_bps, client_order_id, fill_id`` are
    used when present); ``positions``: ``portfolio(account)["positions"]`` (needs ``symbol,
    quantity, price, value, cost_basis``); ``summary``: ``portfolio(account)["summary"]`` (``nav``, ``cash``
    and the rest; only ``nav`` and ``cash`` are read, the rest is recomputed so it reconciles);
    ``nav``: ``LiveMarket.nav_history(account)`` (``ts, nav``). A wrong type or a missing
    column is a clear error at construction, not a wrong number later.

    Not comparable with ``==`` (it holds DataFrames): compare its fields.
    """

    student_id: str
    display_name: str
    account_id: str
    initial_cash: float
    orders: pd.DataFrame
    fills: pd.DataFrame
    positions: pd.DataFrame
    summary: Mapping[str, float]
    nav: pd.DataFrame

    def __post_init__(self) -> None:
        for name in ("student_id", "display_name", "account_id"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be text, got {type(getattr(self, name)).__name__}")
        cash = self.initial_cash
        if isinstance(cash, bool) or not isinstance(cash, int | float) or not math.isfinite(cash) or cash <= 0:
            raise ValueError(f"initial_cash must be a positive number, got {cash!r}")
        _need(self.orders, "orders", ("client_order_id", "status"))
        _need(self.fills, "fills", _FILLS_NEED)
        _need(self.positions, "positions", _POSITIONS_NEED)
        _need(self.nav, "nav", _NAV_NEED)
        if not isinstance(self.summary, Mapping):
            raise TypeError(f"summary must be a mapping (portfolio(...)['summary']), got {type(self.summary).__name__}")
        bad = set(self.fills["side"].dropna().astype(str).str.lower()) - {"buy", "sell"}
        if bad or self.fills["side"].isna().any():
            raise ValueError(f"fills: side must be 'buy' or 'sell', got {sorted(bad) or ['a missing side']}")


# --------------------------------------------------------------------------------------------
# small helpers


def _ns(values: pd.Series | pd.Index) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the epoch, UTC (a naive time is read as UTC)."""
    return pd.to_datetime(pd.Series(values), utc=True).to_numpy(dtype="datetime64[ns]").astype("int64")


def _floats(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _col(df: pd.DataFrame, name: str, default: object) -> pd.Series:
    return df[name] if name in df.columns else pd.Series([default] * len(df), index=df.index, dtype=object)


def _cmp(a: float, b: float) -> int:
    """Sign of ``a - b``, 0 within float noise of average-cost arithmetic."""
    if abs(a - b) <= _REL_TOL * max(abs(a), abs(b), 1.0):
        return 0
    return 1 if a > b else -1


def _finite(x: float | pd.Series) -> float | None:
    """A finite float, or None for NaN / ±inf (analytics answers a Series only for a frame)."""
    if isinstance(x, pd.Series):
        raise TypeError("expected one number, got a Series")
    return float(x) if math.isfinite(x) else None


def _notes(orders: pd.DataFrame) -> dict[str, str]:
    """client_order_id -> the student's note ("" when there is none or no note column yet)."""
    if "note" not in orders.columns:
        return {}
    return {str(k): ("" if pd.isna(v) else str(v)) for k, v in zip(orders["client_order_id"], orders["note"],
                                                                   strict=True)}  # fmt: skip


def _span_text(ns: int) -> str:
    """A duration in plain words: ``5 s``, ``1 min``, ``2 h``, ``1 day``."""
    for unit, size in (("day", _DAY_NS), ("h", 3600 * 10**9), ("min", 60 * 10**9), ("s", 10**9)):
        if ns >= size and ns % size == 0:
            n = ns // size
            return f"{n} {unit}{'s' if unit == 'day' and n != 1 else ''}"
    return f"{ns / 10**6:g} ms"


def _pct(x: float, digits: int = 2) -> str:
    text = f"{x * 100:+.{digits}f}%"
    return text if text.strip("+-0.%") else f"{0:.{digits}f}%"  # never "-0.00%"


def _share(x: float) -> str:
    """A small positive fraction as a percentage that does not round to 0: 0.15%, 0.0039%."""
    return f"{x * 100:.2f}%" if abs(x) >= 0.001 or x == 0 else f"{x * 100:.2g}%"


def _money(x: float) -> str:
    return f"{'-' if x < 0 else '+'}${abs(x):,.2f}"


# --------------------------------------------------------------------------------------------
# average-cost walk over the fills


@dataclass(slots=True)
class _Holding:
    quantity: float = 0.0
    cost: float = 0.0  # signed average-cost basis of the open quantity (negative for a short)


@dataclass(frozen=True)
class _Walk:
    """Per fill (in the fills' row order): realized P&L and the position before it; per symbol:
    realized P&L and the open quantity and cost at the end."""

    realized: np.ndarray
    before: np.ndarray
    average_before: np.ndarray
    by_symbol_realized: dict[str, float]
    open: dict[str, _Holding]


def _trade(h: _Holding, delta: float, price: float) -> float:
    """Apply a signed fill to ``h`` (average cost, the portfolio book's method); its realized P&L."""
    q0, c0 = h.quantity, h.cost
    q1 = q0 + delta
    if abs(q1) <= 1e-12 * max(abs(q0), abs(delta)):
        q1 = 0.0  # float residue of fractional sizes: the position is closed
    realized = 0.0
    if q0 == 0.0 or (q0 > 0) == (delta > 0):
        c1 = c0 + delta * price
    elif abs(delta) <= abs(q0):
        realized = -delta * (price - c0 / q0)
        c1 = c0 * (q1 / q0)
    else:  # flips: closes all of q0, opens the rest at the fill price
        realized = q0 * price - c0
        c1 = q1 * price
    h.quantity, h.cost = q1, (0.0 if q1 == 0.0 else c1)
    return realized


def _ordered(fills: pd.DataFrame) -> pd.DataFrame:
    f = fills.reset_index(drop=True)
    f = f.assign(_ns=_ns(f["ts"]), _sign=np.where(f["side"].astype(str).str.lower() == "buy", 1.0, -1.0),
                 _px=_floats(f["price"]), _qty=_floats(f["quantity"]))  # fmt: skip
    bad = ~(np.isfinite(f["_px"]) & np.isfinite(f["_qty"]) & (f["_qty"] > 0))
    if bad.any():
        raise ValueError(f"fills: price must be a number and quantity > 0 (row {int(np.flatnonzero(bad)[0])})")
    return f.sort_values("_ns", kind="stable")


def _walk(fills: pd.DataFrame) -> _Walk:
    f = _ordered(fills)
    n = len(fills)
    realized, before, avg = np.zeros(n), np.zeros(n), np.full(n, np.nan)
    books: dict[str, _Holding] = {}
    by_symbol: dict[str, float] = {}
    for i, sym, sign, px, qty in zip(f.index, f["symbol"].astype(str), f["_sign"], f["_px"], f["_qty"], strict=True):
        h = books.setdefault(sym, _Holding())
        before[i] = h.quantity
        avg[i] = h.cost / h.quantity if h.quantity else np.nan
        realized[i] = _trade(h, sign * qty, px)
        by_symbol[sym] = by_symbol.get(sym, 0.0) + realized[i]
    return _Walk(realized, before, avg, by_symbol, books)


# --------------------------------------------------------------------------------------------
# statement


@dataclass(frozen=True)
class PnL:
    """Where the money went, reconciled: ``realized + unrealized - fees + other == total``.

    ``total`` is ``nav - initial_cash``; ``realized`` (average cost, gross of fees) and
    ``fees`` come from the fills, ``unrealized`` from the positions (``value - cost_basis``);
    ``other`` is the rest (borrow fees, dividends), 0 in a plain cash account.
    """

    initial_cash: float
    nav: float
    cash: float
    realized: float
    unrealized: float
    fees: float
    other: float
    total: float

    @property
    def total_return(self) -> float:
        """``total / initial_cash``: the return on the starting cash."""
        return self.total / self.initial_cash


@dataclass(frozen=True)
class Risk:
    """Risk of the NAV path, from :mod:`vtrade.portfolio.analytics` on the NAV's simple returns.

    ``period`` is the spacing of the NAV samples (their median gap, e.g. ``"5 s"`` of simulated
    time): ``volatility`` (sample standard deviation, ddof=1) and ``sharpe`` (mean over standard
    deviation, risk-free 0) are *per period*, not annualised. ``periods`` is the number of
    returns. ``sharpe`` is ``None`` where undefined (fewer than two returns, a flat NAV) and so
    is any metric without returns.
    """

    period: str
    periods: int
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    total_return: float | None
    volatility: float | None
    max_drawdown: float | None
    sharpe: float | None

    def frame(self) -> pd.DataFrame:
        """The risk table as rows of ``metric, value, meaning`` (for a page or a sheet)."""
        per = f"{self.period} returns" if self.period else "returns (there are none)"
        rows = [
            ("Total return", self.total_return, "NAV at the end over NAV at the start, minus 1"),
            ("Volatility", self.volatility, f"standard deviation of the {per}, not annualised"),
            ("Max drawdown", self.max_drawdown, "worst fall from a previous NAV high"),
            ("Sharpe ratio", self.sharpe, f"mean over standard deviation of the {per} (risk-free 0), not annualised"),
            ("Returns", float(self.periods), f"number of NAV returns, one every {self.period or '-'}"),
        ]
        return pd.DataFrame(rows, columns=["metric", "value", "meaning"]).astype({"value": "float64"})


def _nav_series(nav: pd.DataFrame) -> pd.Series:
    """NAV as floats indexed by UTC time, oldest first, missing marks dropped."""
    s = pd.Series(_floats(nav["nav"]), index=pd.DatetimeIndex(pd.to_datetime(nav["ts"], utc=True)).as_unit("ns"),
                  name="nav")
    s = s[np.isfinite(s.to_numpy())].sort_index(kind="stable")
    return s[~s.index.duplicated(keep="last")]


def risk(nav: pd.DataFrame) -> Risk:
    """:class:`Risk` of a NAV history (``ts, nav``, as ``LiveMarket.nav_history`` gives it).

    >>> nav = pd.DataFrame({"ts": pd.date_range("2024-01-02 14:00", periods=4, freq="5s", tz="UTC"),
    ...                     "nav": [100.0, 110.0, 99.0, 108.9]})
    >>> r = risk(nav)
    >>> r.period, r.periods, round(r.total_return, 4), round(r.max_drawdown, 4)
    ('5 s', 3, 0.089, -0.1)
    """
    s = _nav_series(_need(nav, "nav", _NAV_NEED))
    rets = analytics.returns_from_nav(s)
    if len(rets) == 0:
        return Risk("", 0, None, None, None, None, None, None)
    gaps = np.diff(_ns(s.index))
    period = _span_text(int(np.median(gaps)))
    return Risk(
        period=period,
        periods=len(rets),
        start=s.index[0],
        end=s.index[-1],
        total_return=_finite(analytics.total_return(rets)),
        volatility=_finite(analytics.annual_volatility(rets, annualization=1)),
        max_drawdown=_finite(analytics.max_drawdown(rets)),
        sharpe=_finite(analytics.sharpe_ratio(rets, annualization=1)),
    )


@dataclass(frozen=True, eq=False)
class Statement:
    """A student's account statement: positions, every fill with its receipt and note, P&L and risk.

    ``positions``: ``symbol, sector, quantity, price, value, cost_basis, average_cost,
    unrealized_pnl, weight``. ``transactions``: one row per fill, oldest first: ``ts, symbol,
    side, quantity, price, notional, fee, liquidity, arrival_mid, slippage_bps, slippage_cost``
    (money lost to the spread and impact vs the arrival mid, positive = paid), ``realized_pnl``
    (average cost, gross of fees), ``order_type, client_order_id, fill_id, note`` (the student's
    note on the order, ``""`` if none).
    """

    student_id: str
    display_name: str
    account_id: str
    positions: pd.DataFrame
    transactions: pd.DataFrame
    pnl: PnL
    risk: Risk

    def sheets(self) -> dict[str, pd.DataFrame]:
        """The statement as named tables, for :func:`vtrade.runtime.exports.write_excel`."""
        p = self.pnl
        summary = pd.DataFrame({
            "item": ["Student", "Account", "Starting cash", "NAV", "Cash", "Realized P&L", "Unrealized P&L",
                     "Fees", "Other (borrow, dividends)", "Total P&L", "Return"],
            "value": [self.display_name, self.account_id, p.initial_cash, p.nav, p.cash, p.realized, p.unrealized,
                      p.fees, p.other, p.total, p.total_return],
        })  # fmt: skip
        return {"Summary": summary, "Positions": self.positions, "Transactions": self.transactions,
                "Risk": self.risk.frame()}  # fmt: skip


_TRANSACTION_COLUMNS = (
    "ts", "symbol", "side", "quantity", "price", "notional", "fee", "liquidity", "arrival_mid", "slippage_bps",
    "slippage_cost", "realized_pnl", "order_type", "client_order_id", "fill_id", "note",
)  # fmt: skip


def _transactions(record: StudentRecord, walk: _Walk) -> pd.DataFrame:
    f = record.fills.reset_index(drop=True)
    sign = np.where(f["side"].astype(str).str.lower() == "buy", 1.0, -1.0)
    px, qty = _floats(f["price"]), _floats(f["quantity"])
    mid = _floats(_col(f, "arrival_mid", np.nan))
    coid = _col(f, "client_order_id", "").astype(str)
    notes = _notes(record.orders)
    types = dict(zip(record.orders["client_order_id"].astype(str), _col(record.orders, "type", "").astype(str),
                     strict=True))  # fmt: skip
    fee = _floats(_col(f, "fee", 0.0))
    out = pd.DataFrame({
        "ts": pd.to_datetime(f["ts"], utc=True),
        "symbol": f["symbol"].astype(str),
        "side": f["side"].astype(str).str.lower(),
        "quantity": qty,
        "price": px,
        "notional": px * qty,
        "fee": np.nan_to_num(fee),
        "liquidity": _col(f, "liquidity", "").astype(str),
        "arrival_mid": mid,
        "slippage_bps": _floats(_col(f, "slippage_bps", np.nan)),
        "slippage_cost": sign * (px - mid) * qty,
        "realized_pnl": walk.realized,
        "order_type": [types.get(c, "") for c in coid],
        "client_order_id": coid,
        "fill_id": _col(f, "fill_id", "").astype(str),
        "note": [notes.get(c, "") for c in coid],
    })  # fmt: skip
    return out.sort_values("ts", kind="stable").reset_index(drop=True)[list(_TRANSACTION_COLUMNS)]


def _sector_of(positions: pd.DataFrame, sectors: Mapping[str, str] | None) -> dict[str, str]:
    """symbol -> sector: ``sectors`` first, then the positions' own ``sector`` column."""
    known: dict[str, str] = {}
    if "sector" in positions.columns:
        known.update(zip(positions["symbol"].astype(str), positions["sector"].astype(str), strict=True))
    if sectors is not None:
        if not isinstance(sectors, Mapping):
            raise TypeError(f"sectors must be a mapping symbol -> sector, got {type(sectors).__name__}")
        known.update({str(k): str(v) for k, v in sectors.items()})
    return known


def _pnl(record: StudentRecord, walk: _Walk) -> PnL:
    pos = record.positions
    unrealized = float(np.nansum(_floats(pos["value"]) - _floats(pos["cost_basis"])))
    fees = float(np.nansum(_floats(_col(record.fills, "fee", 0.0))))
    realized = float(sum(walk.by_symbol_realized.values()))
    summary_nav = record.summary.get("nav")
    series = _nav_series(record.nav)
    if isinstance(summary_nav, int | float) and math.isfinite(summary_nav):
        nav = float(summary_nav)
    else:
        nav = float(series.iloc[-1]) if len(series) else record.initial_cash
    cash = record.summary.get("cash")
    total = nav - record.initial_cash
    return PnL(
        initial_cash=float(record.initial_cash),
        nav=nav,
        cash=float(cash) if isinstance(cash, int | float) else math.nan,
        realized=realized,
        unrealized=unrealized,
        fees=fees,
        other=total - (realized + unrealized - fees),
        total=total,
    )


def statement(record: StudentRecord, sectors: Mapping[str, str] | None = None) -> Statement:
    """The account statement of ``record`` (see :class:`Statement`); ``sectors`` (symbol ->
    sector) fills in a sector the positions table does not carry.

    >>> ts = pd.to_datetime(["2024-01-02 14:00", "2024-01-02 14:01"], utc=True)
    >>> fills = pd.DataFrame({"ts": ts, "symbol": "XOM", "side": ["buy", "sell"], "price": [10.0, 12.0],
    ...                       "quantity": [10.0, 4.0], "fee": 1.0})
    >>> pos = pd.DataFrame({"symbol": ["XOM"], "quantity": [6.0], "price": [11.0], "value": [66.0],
    ...                     "cost_basis": [60.0]})
    >>> nav = pd.DataFrame({"ts": ts, "nav": [1000.0, 1012.0]})
    >>> rec = StudentRecord("s1", "Ada", "a", 1000.0, pd.DataFrame({"client_order_id": [], "status": []}),
    ...                     fills, pos, {"nav": 1012.0}, nav)
    >>> p = statement(rec).pnl
    >>> p.realized, p.unrealized, p.fees, p.other, p.total   # 4 x (12 - 10); 6 x (11 - 10)
    (8.0, 6.0, 2.0, 0.0, 12.0)
    """
    if not isinstance(record, StudentRecord):
        raise TypeError(f"record must be a StudentRecord, got {type(record).__name__}")
    walk = _walk(record.fills)
    pos = record.positions.reset_index(drop=True)
    sector_of = _sector_of(record.positions, sectors)
    qty = _floats(pos["quantity"])
    cost = _floats(pos["cost_basis"])
    value = _floats(pos["value"])
    gross = float(np.nansum(np.abs(value)))
    with np.errstate(divide="ignore", invalid="ignore"):
        positions = pd.DataFrame({
            "symbol": pos["symbol"].astype(str),
            "sector": [sector_of.get(s, UNCLASSIFIED) for s in pos["symbol"].astype(str)],
            "quantity": qty,
            "price": _floats(pos["price"]),
            "value": value,
            "cost_basis": cost,
            "average_cost": np.where(qty != 0, cost / qty, np.nan),
            "unrealized_pnl": value - cost,
            "weight": np.abs(value) / gross if gross > 0 else np.full(len(pos), np.nan),
        })  # fmt: skip
    return Statement(
        student_id=record.student_id,
        display_name=record.display_name,
        account_id=record.account_id,
        positions=positions,
        transactions=_transactions(record, walk),
        pnl=_pnl(record, walk),
        risk=risk(record.nav),
    )


# --------------------------------------------------------------------------------------------
# debrief: benchmark, sectors, activity, disposition, concentration


@dataclass(frozen=True)
class VersusBenchmark:
    """The student's return and the benchmark's over the same window of simulated time.

    The window is where both the NAV history and the benchmark prices exist (``start`` to
    ``end``); ``full_period`` says whether it is the student's whole NAV history (a long class
    can outlast the benchmark prices the market keeps). Each return is the last value at or
    before ``end`` over the last at or before ``start``, minus 1; ``difference`` is student
    minus benchmark. ``None`` when there is no common window.
    """

    start: pd.Timestamp | None
    end: pd.Timestamp | None
    student_return: float | None
    benchmark_return: float | None
    difference: float | None
    full_period: bool


def _benchmark_series(benchmark: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(ns, price) of a benchmark frame: its ``mid``, else its ``last``, valid positive prices only."""
    b = _need(benchmark, "benchmark", ("ts",))
    if "mid" not in b.columns and "last" not in b.columns:
        raise ValueError("benchmark needs a 'mid' or a 'last' price column (LiveMarket.prices gives both)")
    price = _floats(_col(b, "mid", np.nan))
    if "last" in b.columns:  # a one-sided book has no mid: its last trade still prices it
        price = np.where(np.isfinite(price), price, _floats(b["last"]))
    ns = _ns(b["ts"])
    ok = np.isfinite(price) & (price > 0)
    order = np.argsort(ns[ok], kind="stable")
    return ns[ok][order], price[ok][order]


def _at(ns: np.ndarray, values: np.ndarray, t: int) -> float:
    return float(values[int(np.searchsorted(ns, t, side="right")) - 1])


def versus_benchmark(nav: pd.DataFrame, benchmark: pd.DataFrame) -> VersusBenchmark:
    """The NAV's return against ``benchmark`` (``LiveMarket.prices("SPY")``) over their common window.

    >>> ts = pd.date_range("2024-01-02 14:00", periods=3, freq="1h", tz="UTC")
    >>> nav = pd.DataFrame({"ts": ts, "nav": [1000.0, 1010.0, 1030.0]})
    >>> spy = pd.DataFrame({"ts": ts[1:], "mid": [400.0, 404.0]})        # starts an hour later
    >>> v = versus_benchmark(nav, spy)
    >>> v.start.hour, round(v.student_return, 6), round(v.benchmark_return, 6), v.full_period
    (15, 0.019802, 0.01, False)
    """
    s = _nav_series(_need(nav, "nav", _NAV_NEED))
    s = s[s > 0]
    b_ns, b_px = _benchmark_series(benchmark)
    none = VersusBenchmark(None, None, None, None, None, False)
    if len(s) < 2 or len(b_ns) < 2:
        return none
    n_ns, n_val = _ns(s.index), s.to_numpy()
    start, end = max(int(n_ns[0]), int(b_ns[0])), min(int(n_ns[-1]), int(b_ns[-1]))
    if end <= start:
        return none
    mine = _at(n_ns, n_val, end) / _at(n_ns, n_val, start) - 1.0
    theirs = _at(b_ns, b_px, end) / _at(b_ns, b_px, start) - 1.0
    return VersusBenchmark(
        start=pd.Timestamp(start, tz="UTC"),
        end=pd.Timestamp(end, tz="UTC"),
        student_return=mine,
        benchmark_return=theirs,
        difference=mine - theirs,
        full_period=start == int(n_ns[0]) and end == int(n_ns[-1]),
    )


_SECTOR_COLUMNS = ("sector", "symbols", "realized_pnl", "unrealized_pnl", "fees", "pnl")


def sector_pnl(fills: pd.DataFrame, positions: pd.DataFrame, sectors: Mapping[str, str] | None = None) -> pd.DataFrame:
    """P&L by sector: ``sector, symbols, realized_pnl, unrealized_pnl, fees, pnl``, best first.

    ``realized_pnl`` (average cost, gross of fees) and ``fees`` come from the fills,
    ``unrealized_pnl`` from the positions (``value - cost_basis``), ``pnl`` is realized +
    unrealized - fees, so the column sums to the account's P&L from trading. A symbol's sector
    is ``sectors[symbol]``, else the positions' ``sector`` column, else ``"Unclassified"``.
    (This is a dollar split of the student's own P&L, not the Brinson–Fachler attribution of
    :mod:`vtrade.portfolio.attribution`: that needs the benchmark's sector weights and returns,
    which one SPY price series does not give.)

    >>> fills = pd.DataFrame({"ts": pd.to_datetime([1, 2, 3], unit="s", utc=True), "symbol": ["XOM", "XOM", "AAPL"],
    ...                       "side": ["buy", "sell", "buy"], "price": [10.0, 12.0, 100.0],
    ...                       "quantity": [10.0, 10.0, 1.0], "fee": [1.0, 1.0, 1.0]})
    >>> pos = pd.DataFrame({"symbol": ["AAPL"], "quantity": [1.0], "price": [90.0], "value": [90.0],
    ...                     "cost_basis": [100.0]})
    >>> sector_pnl(fills, pos, {"XOM": "Energy", "AAPL": "Tech"})
       sector symbols  realized_pnl  unrealized_pnl  fees   pnl
    0  Energy     XOM          20.0             0.0   2.0  18.0
    1    Tech    AAPL           0.0           -10.0   1.0 -11.0
    """
    _need(fills, "fills", _FILLS_NEED)
    _need(positions, "positions", _POSITIONS_NEED)
    walk = _walk(fills)
    fee = pd.Series(np.nan_to_num(_floats(_col(fills, "fee", 0.0))), index=fills.index)
    fees = {str(k): float(v) for k, v in fee.groupby(fills["symbol"].astype(str).to_numpy()).sum().items()}
    unreal = pd.Series(_floats(positions["value"]) - _floats(positions["cost_basis"]), index=positions.index)
    unrealized = {str(k): float(v) for k, v in unreal.groupby(positions["symbol"].astype(str).to_numpy()).sum().items()}
    known = _sector_of(positions, sectors)
    symbols = sorted(set(walk.by_symbol_realized) | set(unrealized))
    rows = pd.DataFrame({
        "sector": [known.get(s, UNCLASSIFIED) for s in symbols],
        "symbols": symbols,
        "realized_pnl": [walk.by_symbol_realized.get(s, 0.0) for s in symbols],
        "unrealized_pnl": [float(unrealized.get(s, 0.0)) for s in symbols],
        "fees": [float(fees.get(s, 0.0)) for s in symbols],
    })  # fmt: skip
    rows["pnl"] = rows["realized_pnl"] + rows["unrealized_pnl"] - rows["fees"]
    if rows.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c.endswith(("pnl", "fees")) else object)
                             for c in _SECTOR_COLUMNS})  # fmt: skip
    table = rows.groupby("sector", sort=False).agg(
        symbols=("symbols", ", ".join), realized_pnl=("realized_pnl", "sum"),
        unrealized_pnl=("unrealized_pnl", "sum"), fees=("fees", "sum"), pnl=("pnl", "sum"),
    )  # fmt: skip
    return table.reset_index().sort_values(["pnl", "sector"], ascending=[False, True], kind="stable",
                                           ignore_index=True)[list(_SECTOR_COLUMNS)]  # fmt: skip


@dataclass(frozen=True)
class Activity:
    """How much and how expensively the student traded.

    ``trades``: orders that filled at least once (a market order that walks three levels is one
    trade of three ``fills``). ``turnover``: traded notional (buys and sells) over the average
    NAV sample, so buying and later selling the whole account once is 2.0. ``days``: simulated
    days the NAV history spans; ``trades_per_day`` divides by at least one day, so a one-hour
    class is not extrapolated to a day. ``slippage_cost``: what fills cost against the arrival
    mid (positive = paid; ``unmeasured_fills`` had no arrival mid and add nothing);
    ``trading_costs`` = fees + slippage cost, and ``costs_pct_of_cash`` its fraction of the
    starting cash.
    """

    trades: int
    fills: int
    traded_notional: float
    average_nav: float | None
    turnover: float | None
    days: float
    trades_per_day: float
    fees: float
    slippage_cost: float
    unmeasured_fills: int
    trading_costs: float
    costs_pct_of_cash: float


def activity(record: StudentRecord) -> Activity:
    """:class:`Activity` of ``record``.

    >>> ts = pd.to_datetime(["2024-01-02 14:00", "2024-01-04 14:00"], utc=True)     # two days
    >>> fills = pd.DataFrame({"ts": ts, "symbol": "XOM", "client_order_id": ["o1", "o2"], "side": ["buy", "sell"],
    ...                       "price": [10.0, 11.0], "quantity": [100.0, 100.0], "fee": 1.0,
    ...                       "arrival_mid": [9.99, 11.0]})
    >>> nav = pd.DataFrame({"ts": ts, "nav": [1000.0, 1098.0]})
    >>> pos = pd.DataFrame({"symbol": [], "quantity": [], "price": [], "value": [], "cost_basis": []})
    >>> rec = StudentRecord("s", "S", "a", 1000.0, pd.DataFrame({"client_order_id": [], "status": []}),
    ...                     fills, pos, {"nav": 1098.0}, nav)
    >>> a = activity(rec)
    >>> a.trades, a.traded_notional, round(a.turnover, 4), a.trades_per_day, round(a.trading_costs, 2)
    (2, 2100.0, 2.0019, 1.0, 3.0)
    """
    f = record.fills
    px, qty = _floats(f["price"]), _floats(f["quantity"])
    sign = np.where(f["side"].astype(str).str.lower() == "buy", 1.0, -1.0)
    mid = _floats(_col(f, "arrival_mid", np.nan))
    slip = sign * (px - mid) * qty
    notional = float(np.abs(px * qty).sum())
    s = _nav_series(record.nav)
    # Not analytics.turnover: that averages per NAV period, and a period of a few simulated
    # seconds means nothing to a student; "times your account traded" does.
    average = float(s.mean()) if len(s) else math.nan
    times = _ns(s.index) if len(s) else _ns(f["ts"])
    days = float(times.max() - times.min()) / _DAY_NS if len(times) else 0.0
    trades = int(f["client_order_id"].nunique()) if "client_order_id" in f.columns else len(f)
    fees = float(np.nansum(_floats(_col(f, "fee", 0.0))))
    slippage = float(np.nansum(slip))
    costs = fees + slippage
    return Activity(
        trades=trades,
        fills=len(f),
        traded_notional=notional,
        average_nav=_finite(average),
        turnover=notional / average if average > 0 else None,
        days=days,
        trades_per_day=trades / max(days, 1.0),
        fees=fees,
        slippage_cost=slippage,
        unmeasured_fills=int(np.isnan(slip).sum()),
        trading_costs=costs,
        costs_pct_of_cash=costs / record.initial_cash,
    )


@dataclass(frozen=True)
class Disposition:
    """The disposition effect (Odean 1998): selling winners too early, riding losers too long.

    At each sell (each moment at which the student sold from a long position) every long position
    held just before is counted once: a stock sold is a *realized* gain or loss (its sale price
    against its average cost), a stock kept is a *paper* gain or loss (its market price then,
    from ``marks``, against its average cost); at exactly its cost it is neither.
    ``pgr = realized gains / (realized gains + paper gains)``, ``plr = realized losses /
    (realized losses + paper losses)``, ``de = pgr - plr`` (> 0: winners sold more readily).
    Each is ``None`` when its denominator is 0, with ``reason`` ``"not enough sells"``. Kept
    positions without a price at the sell are ``unpriced`` and left out; with no ``marks`` at
    all nothing is computed (it would count no paper gains or losses, and every sale would look
    like a disposition).

    Shorts are not counted: Odean's measure is about selling what you own.
    """

    sells: int
    realized_gains: int
    realized_losses: int
    paper_gains: int
    paper_losses: int
    unpriced: int
    pgr: float | None
    plr: float | None
    de: float | None
    reason: str


def marks_from_prices(prices: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Market prices over time, ``ts, symbol, price``, from ``{symbol: LiveMarket.prices(symbol)}``:
    each sample's mid, or its last trade when the book had no mid.

    >>> p = pd.DataFrame({"ts": pd.to_datetime([1, 2], unit="s", utc=True), "mid": [10.0, float("nan")],
    ...                   "last": [10.0, 10.5]})
    >>> marks_from_prices({"XOM": p})["price"].tolist()
    [10.0, 10.5]
    """
    if not isinstance(prices, Mapping):
        raise TypeError(f"prices must be a mapping symbol -> prices frame, got {type(prices).__name__}")
    parts = []
    for symbol, frame in prices.items():
        ns, px = _benchmark_series(frame)
        parts.append(pd.DataFrame({"ts": pd.to_datetime(ns, unit="ns", utc=True), "symbol": str(symbol),
                                   "price": px}))  # fmt: skip
    if not parts:
        return pd.DataFrame({"ts": pd.Series(dtype="datetime64[ns, UTC]"), "symbol": pd.Series(dtype=object),
                             "price": pd.Series(dtype="float64")})  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def _mark_table(marks: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    m = _need(marks, "marks", ("ts", "symbol", "price"))
    ns, px = _ns(m["ts"]), _floats(m["price"])
    ok = np.isfinite(px) & (px > 0)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    syms = m["symbol"].astype(str).to_numpy()
    for sym in np.unique(syms[ok]):
        sel = ok & (syms == sym)
        order = np.argsort(ns[sel], kind="stable")
        out[str(sym)] = (ns[sel][order], px[sel][order])
    return out


def disposition(fills: pd.DataFrame, marks: pd.DataFrame | None) -> Disposition:
    """Count realized and paper gains and losses at each sell (see :class:`Disposition`).

    ``marks``: ``ts, symbol, price`` (:func:`marks_from_prices`); the price of a kept stock at a
    sell is its last mark at or before the sell.

    >>> t = pd.to_datetime([1, 2, 3], unit="m", utc=True)
    >>> fills = pd.DataFrame({"ts": t, "symbol": ["WIN", "LOSE", "WIN"], "side": ["buy", "buy", "sell"],
    ...                       "price": [10.0, 20.0, 12.0], "quantity": [10.0, 10.0, 5.0]})
    >>> marks = pd.DataFrame({"ts": t[:2], "symbol": ["WIN", "LOSE"], "price": [10.0, 18.0]})
    >>> d = disposition(fills, marks)        # sold WIN at a gain, kept LOSE at a paper loss
    >>> d.realized_gains, d.paper_losses, d.pgr, d.plr, d.de
    (1, 1, 1.0, 0.0, 1.0)
    """
    f = _ordered(_need(fills, "fills", _FILLS_NEED))
    table = _mark_table(marks) if marks is not None else None
    books: dict[str, _Holding] = {}
    sells = rg = rl = pg = pl = unpriced = 0
    ns = f["_ns"].to_numpy()
    cuts = [0, *(np.flatnonzero(np.diff(ns)) + 1).tolist(), len(f)] if len(f) else [0]
    for lo, hi in itertools.pairwise(cuts):  # the fills of one moment together
        t, group = int(ns[lo]), f.iloc[lo:hi]
        held = {s: h.cost / h.quantity for s, h in books.items() if h.quantity > 0}
        sold: dict[str, tuple[float, float, float]] = {}  # symbol -> (quantity, proceeds, average cost)
        for sym, sign, px, qty in zip(group["symbol"].astype(str), group["_sign"], group["_px"], group["_qty"],
                                      strict=True):  # fmt: skip
            h = books.setdefault(sym, _Holding())
            if sign < 0 and h.quantity > 0:
                m = min(qty, h.quantity)
                q, proceeds, avg = sold.get(sym, (0.0, 0.0, h.cost / h.quantity))
                sold[sym] = (q + m, proceeds + m * px, avg)
            _trade(h, sign * qty, px)
        if not sold:
            continue
        sells += 1
        for q, proceeds, avg in sold.values():
            c = _cmp(proceeds / q, avg)
            rg, rl = rg + (c > 0), rl + (c < 0)
        for sym, avg in held.items():
            if sym in sold:
                continue
            series = table.get(sym) if table is not None else None
            k = int(np.searchsorted(series[0], t, side="right")) - 1 if series is not None else -1
            if series is None or k < 0:
                unpriced += 1
                continue
            c = _cmp(float(series[1][k]), avg)
            pg, pl = pg + (c > 0), pl + (c < 0)
    if table is None and unpriced:
        return Disposition(sells, rg, rl, pg, pl, unpriced, None, None, None,
                           "no market prices to value the positions kept at the sells")  # fmt: skip
    pgr = rg / (rg + pg) if rg + pg else None
    plr = rl / (rl + pl) if rl + pl else None
    de = pgr - plr if pgr is not None and plr is not None else None
    return Disposition(sells, rg, rl, pg, pl, unpriced, pgr, plr, de, "" if de is not None else NOT_ENOUGH_SELLS)


@dataclass(frozen=True)
class Concentration:
    """How concentrated the holdings are now: the Herfindahl–Hirschman index of the position
    weights (``|value| / gross exposure``; 1.0 = one position, 1/n = n equal ones), its inverse
    ``effective_positions`` (as many equal positions as that), and the largest weight. ``None``
    when nothing is held."""

    positions: int
    hhi: float | None
    effective_positions: float | None
    largest_symbol: str | None
    largest_weight: float | None


def concentration(positions: pd.DataFrame) -> Concentration:
    """:class:`Concentration` of a positions table (``symbol``, ``value``).

    >>> pos = pd.DataFrame({"symbol": ["XOM", "AAPL"], "value": [3000.0, -1000.0]})
    >>> c = concentration(pos)
    >>> c.hhi, c.effective_positions, c.largest_symbol, c.largest_weight
    (0.625, 1.6, 'XOM', 0.75)
    """
    p = _need(positions, "positions", ("symbol", "value"))
    value = np.abs(np.nan_to_num(_floats(p["value"])))
    held = value > 0
    gross = float(value[held].sum())
    if gross <= 0:
        return Concentration(0, None, None, None, None)
    w = value[held] / gross
    hhi = float((w**2).sum())
    k = int(np.argmax(w))
    return Concentration(int(held.sum()), hhi, 1.0 / hhi, str(p["symbol"].to_numpy()[held][k]), float(w[k]))


@dataclass(frozen=True, eq=False)
class Debrief:
    """What a student reads after a session: how they did against the benchmark, where the P&L
    came from, how much they traded and at what cost, whether they sold winners and kept losers,
    how concentrated they are, and ``lines``: the same in plain sentences (text, not HTML), always
    seven, in this order: return, benchmark, sectors, trading, costs, disposition, concentration.

    ``sectors`` is :func:`sector_pnl` plus ``contribution`` (P&L over starting cash); its ``pnl``
    sums to the account's total P&L (a row ``"Other (borrow, dividends)"`` holds what fills do
    not explain, when there is any).
    """

    student_id: str
    display_name: str
    benchmark_name: str
    versus: VersusBenchmark
    sectors: pd.DataFrame
    activity: Activity
    disposition: Disposition
    concentration: Concentration
    pnl: PnL
    lines: tuple[str, ...]


def _return_line(p: PnL) -> str:
    cash = f"${p.initial_cash:,.2f}"
    if round(p.total, 2) > 0:
        return f"You made ${p.total:,.2f} ({_pct(p.total_return, 2)}) on your {cash} starting cash."
    if round(p.total, 2) < 0:
        return f"You lost ${-p.total:,.2f} ({_pct(p.total_return, 2)}) of your {cash} starting cash."
    return f"Your account is where it started, at {cash}."


def _versus_line(v: VersusBenchmark, name: str) -> str:
    if v.difference is None or v.student_return is None or v.benchmark_return is None:
        return f"There are no {name} prices over your trading period, so there is no comparison with {name}."
    both = f"(you {_pct(v.student_return)}, {name} {_pct(v.benchmark_return)})"
    points = abs(v.difference) * 100
    gap = f"{points:.1f}" if points >= 1 else f"{points:.2f}"
    if round(points, 2) == 0:
        line = f"You matched {name} {both}."
    elif v.difference > 0:
        line = f"You beat {name} by {gap} points {both}."
    else:
        line = f"{name} beat you by {gap} points {both}."
    if not v.full_period and v.start is not None and v.end is not None:
        line += (f" Compared from {v.start:%Y-%m-%d %H:%M} to {v.end:%Y-%m-%d %H:%M} UTC (simulated), "
                 f"where {name} prices are available.")  # fmt: skip
    return line


def _sector_line(sectors: pd.DataFrame) -> str:
    rows = sectors[sectors["sector"] != OTHER]
    if rows.empty:
        return "No profit or loss by sector yet: you have not traded."
    best, worst = rows.iloc[0], rows.iloc[-1]
    if len(rows) == 1:
        return f"All your trading P&L came from {best['sector']}: {_money(float(best['pnl']))}."
    return (f"Your best sector was {best['sector']} ({_money(float(best['pnl']))}); "
            f"your worst was {worst['sector']} ({_money(float(worst['pnl']))}).")  # fmt: skip


def _activity_lines(a: Activity) -> list[str]:
    if a.trades == 0:
        return ["You made no trades.", "You paid no trading costs."]
    plural = "trade" if a.trades == 1 else "trades"
    line = f"You made {a.trades} {plural} ({a.trades_per_day:.1f} per simulated day)"
    if a.turnover is not None:
        line += f" and traded {a.turnover:.2f}× your average account value"
    costs = (f"Trading costs came to ${a.trading_costs:,.2f} (fees ${a.fees:,.2f} + slippage "
             f"${a.slippage_cost:,.2f}), {_share(a.costs_pct_of_cash)} of your starting cash.")  # fmt: skip
    if a.unmeasured_fills:
        costs += f" {a.unmeasured_fills} fill(s) had no arrival price, so their slippage is not counted."
    return [line + ".", costs]


def _disposition_line(d: Disposition) -> str:
    if d.de is None or d.pgr is None or d.plr is None:
        why = ("it needs, at your sales, winners and losers you sold or kept"
               if d.reason == NOT_ENOUGH_SELLS else d.reason)  # fmt: skip
        line = f"Selling winners vs losers: {d.reason or NOT_ENOUGH_SELLS} to tell yet ({why})."
    else:
        rates = f"(PGR {d.pgr:.2f}, PLR {d.plr:.2f}, over {d.sells} sale{'' if d.sells == 1 else 's'})"
        if d.pgr > 0 and d.plr == 0:
            line = f"You sold winners but never a loser {rates}: the disposition effect."
        elif d.plr > 0 and d.pgr == 0:
            line = f"You sold losers but never a winner {rates}: you cut losses."
        elif d.pgr == 0 and d.plr == 0:
            line = f"You kept every winner and every loser at your sales {rates}."
        elif d.pgr / d.plr >= 1.05:
            line = f"You sold winners {d.pgr / d.plr:.1f}× as readily as losers {rates}: the disposition effect."
        elif d.plr / d.pgr >= 1.05:
            line = f"You sold losers {d.plr / d.pgr:.1f}× as readily as winners {rates}: you cut losses."
        else:
            line = f"You sold winners and losers about equally readily {rates}."
    if d.unpriced and d.reason != "no market prices to value the positions kept at the sells":
        line += f" {d.unpriced} position(s) you kept had no market price at a sale and were left out."
    return line


def _concentration_line(c: Concentration) -> str:
    if c.hhi is None or c.largest_symbol is None or c.largest_weight is None or c.effective_positions is None:
        return "You hold no positions now."
    if c.positions == 1:
        return f"Everything you hold is in {c.largest_symbol} (HHI 1.00): one position, no diversification."
    return (f"Your largest position, {c.largest_symbol}, is {c.largest_weight * 100:.0f}% of your holdings; "
            f"HHI {c.hhi:.2f}, like holding {c.effective_positions:.1f} equal positions.")  # fmt: skip


def debrief(
    record: StudentRecord,
    benchmark: pd.DataFrame,
    sectors: Mapping[str, str] | None = None,
    *,
    marks: pd.DataFrame | None = None,
    benchmark_name: str = "SPY",
) -> Debrief:
    """The student's :class:`Debrief` against ``benchmark`` (``LiveMarket.prices("SPY")``).

    ``sectors``: symbol -> sector for symbols the positions table does not name (a stock sold
    out of); ``marks``: market prices (:func:`marks_from_prices`) to value the positions kept at
    each sale, for the disposition effect. See the module example.
    """
    if not isinstance(record, StudentRecord):
        raise TypeError(f"record must be a StudentRecord, got {type(record).__name__}")
    pnl = _pnl(record, _walk(record.fills))
    table = sector_pnl(record.fills, record.positions, sectors)
    if abs(pnl.other) > 1e-9 * record.initial_cash:
        other = pd.DataFrame({"sector": [OTHER], "symbols": [""], "realized_pnl": [0.0], "unrealized_pnl": [0.0],
                              "fees": [0.0], "pnl": [pnl.other]})  # fmt: skip
        table = pd.concat([table, other], ignore_index=True)
    table["contribution"] = table["pnl"] / record.initial_cash
    versus = versus_benchmark(record.nav, benchmark)
    act = activity(record)
    disp = disposition(record.fills, marks)
    conc = concentration(record.positions)
    lines = (_return_line(pnl), _versus_line(versus, benchmark_name), _sector_line(table), *_activity_lines(act),
             _disposition_line(disp), _concentration_line(conc))  # fmt: skip
    return Debrief(record.student_id, record.display_name, benchmark_name, versus, table, act, disp, conc, pnl,
                   lines)  # fmt: skip


# --------------------------------------------------------------------------------------------
# the teacher's grade sheet

GRADE_SHEET_COLUMNS = (
    "student_id", "name", "return_pct", "vs_benchmark_pts", "trades", "turnover", "max_drawdown_pct",
    "disposition_effect", "hhi", "refusals", "notes",
)  # fmt: skip


def grade_sheet_display(benchmark_name: str = "SPY") -> dict[str, str]:
    """Human headers for :func:`grade_sheet`'s columns (``df.rename(columns=grade_sheet_display())``).

    >>> grade_sheet_display()["vs_benchmark_pts"]
    'vs SPY (points)'
    """
    return {
        "student_id": "Student ID",
        "name": "Name",
        "return_pct": "Return %",
        "vs_benchmark_pts": f"vs {benchmark_name} (points)",
        "trades": "Trades",
        "turnover": "Turnover (× average NAV)",
        "max_drawdown_pct": "Max drawdown %",
        "disposition_effect": "Disposition effect (PGR − PLR)",
        "hhi": "Concentration (HHI)",
        "refusals": "Rule refusals",
        "notes": "Notes written",
    }


GRADE_SHEET_DISPLAY = grade_sheet_display()


def grade_sheet(
    records: Sequence[StudentRecord],
    benchmark: pd.DataFrame,
    *,
    sectors: Mapping[str, str] | None = None,
    marks: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per student, best return first (ties by name; no return last).

    Columns (:data:`GRADE_SHEET_DISPLAY` gives headers): ``student_id``, ``name``,
    ``return_pct`` (P&L over starting cash, %), ``vs_benchmark_pts`` (the debrief's difference
    with the benchmark over their common window, percentage points), ``trades``, ``turnover``,
    ``max_drawdown_pct`` (of the NAV, %, ≤ 0), ``disposition_effect`` (PGR − PLR, or the text
    ``"not enough sells"``), ``hhi`` (NaN when nothing is held), ``refusals`` (orders the rules
    refused, status ``"rejected"``) and ``notes`` (orders with a note).

    >>> ts = pd.to_datetime(["2024-01-02 14:00", "2024-01-02 15:00"], utc=True)
    >>> none = pd.DataFrame({"symbol": [], "quantity": [], "price": [], "value": [], "cost_basis": []})
    >>> fills = pd.DataFrame({"ts": [], "symbol": [], "side": [], "price": [], "quantity": []})
    >>> orders = pd.DataFrame({"client_order_id": ["b-1"], "status": ["rejected"], "note": ["=1+1"]})
    >>> def rec(sid, name, end):
    ...     return StudentRecord(sid, name, sid, 100.0, orders, fills, none, {"nav": end},
    ...                          pd.DataFrame({"ts": ts, "nav": [100.0, end]}))
    >>> spy = pd.DataFrame({"ts": ts, "mid": [400.0, 404.0]})
    >>> grade_sheet([rec("a", "Ann", 99.0), rec("b", "Bo", 103.0)], spy)[["name", "return_pct", "vs_benchmark_pts",
    ...                                                                    "refusals", "notes"]]
      name  return_pct  vs_benchmark_pts  refusals  notes
    0   Bo         3.0               2.0         1      1
    1  Ann        -1.0              -2.0         1      1
    """
    if isinstance(records, StudentRecord) or not isinstance(records, Sequence):
        raise TypeError(f"records must be a list of StudentRecord, got {type(records).__name__}")
    ids = [r.student_id for r in records if isinstance(r, StudentRecord)]
    if len(ids) != len(records):
        raise TypeError("records must all be StudentRecord")
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"a student appears twice in records: {dupes}")
    rows = []
    for r in records:
        d = debrief(r, benchmark, sectors, marks=marks)
        st_risk = risk(r.nav)
        notes = _notes(r.orders)
        rows.append({
            "student_id": r.student_id,
            "name": r.display_name,
            "return_pct": d.pnl.total_return * 100,
            "vs_benchmark_pts": d.versus.difference * 100 if d.versus.difference is not None else math.nan,
            "trades": d.activity.trades,
            "turnover": d.activity.turnover if d.activity.turnover is not None else math.nan,
            "max_drawdown_pct": st_risk.max_drawdown * 100 if st_risk.max_drawdown is not None else math.nan,
            "disposition_effect": d.disposition.de if d.disposition.de is not None else d.disposition.reason,
            "hhi": d.concentration.hhi if d.concentration.hhi is not None else math.nan,
            "refusals": int((r.orders["status"].astype(str) == "rejected").sum()),
            "notes": sum(bool(n.strip()) for n in notes.values()),
        })  # fmt: skip
    df = pd.DataFrame(rows, columns=list(GRADE_SHEET_COLUMNS))
    df = df.astype({"return_pct": "float64", "vs_benchmark_pts": "float64", "turnover": "float64",
                    "max_drawdown_pct": "float64", "hhi": "float64", "trades": "int64", "refusals": "int64",
                    "notes": "int64", "disposition_effect": object})  # fmt: skip
    return df.sort_values(["return_pct", "name"], ascending=[False, True], na_position="last", kind="stable",
                          ignore_index=True)  # fmt: skip


# --------------------------------------------------------------------------------------------
# exports: formulas stay text


def _defuse(v: object) -> object:
    return "'" + v if isinstance(v, str) and v.startswith(FORMULA_PREFIXES) else v


def neutralise(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` in which every text cell a spreadsheet would run as a formula (starting
    with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) starts with ``'`` instead, so it
    shows as typed. Numbers (negative ones too), dates, column names and the index are left as
    they are; other text, ``<script>`` included, is kept verbatim (escaping HTML is a web
    page's job, not a spreadsheet's).

    >>> df = pd.DataFrame({"name": ['=HYPERLINK("http://x","y")', "@SUM(A1)", "-2+3", "Ada"], "pnl": [-2.0, 1, 0, 3]})
    >>> neutralise(df)
                              name  pnl
    0  '=HYPERLINK("http://x","y") -2.0
    1                    '@SUM(A1)  1.0
    2                        '-2+3  0.0
    3                          Ada  3.0
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"neutralise takes a pandas DataFrame, got {type(df).__name__}")
    out = df.copy()
    for i in range(out.shape[1]):
        col = out.iloc[:, i]
        if isinstance(col.dtype, pd.CategoricalDtype):
            col = col.astype(object)
        elif not (pd.api.types.is_object_dtype(col.dtype) or pd.api.types.is_string_dtype(col.dtype)):
            continue
        out.isetitem(i, col.map(_defuse).to_numpy(dtype=object))
    return out
