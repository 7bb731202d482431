"""The compiled replay path: when it applies, how it runs, and how its arrays become results.

``vt.replay(feed, strategy=f)`` with ``f`` a Numba-jitted strategy (see :mod:`vtrade.jit`)
runs :func:`vtrade.execution.fastpath.run`, one compiled loop over the strategy, our orders
and both books, when the replay is one that loop implements: L2, a constant latency, no
account rules (``cash=None``), market data that converts to an ``UpdateBatch``. Otherwise the
same jitted strategy runs on the Python engine through :class:`JitAdapter` (the engine is the
reference and covers every order type and rung). ``result.path`` says which ran, and why.

Both give byte-identical outputs (``result.output_hash()``). The loop records orders, fills
and book samples in int64 arrays; :class:`CompiledRun` turns them into the execution events
and the public tables only when they are asked for.

>>> from vtrade.core.instruments import us_equity
>>> why_not_compiled(EngineConfig(us_equity("SPY"), Realism.L3), ConstantLatency(0), has_broker=False)
'the compiled loop runs L2 replays; this one is L3'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from numba.core.registry import CPUDispatcher

from vtrade.core.events import Side
from vtrade.core.instruments import Instrument
from vtrade.execution import desk as dk
from vtrade.execution import events as ev
from vtrade.execution import fastpath as fp
from vtrade.execution.engine import EngineConfig, Realism
from vtrade.execution.fees import FillContext
from vtrade.execution.latency import ConstantLatency, LatencyModel
from vtrade.execution.orders import Liquidity, OrderType, SubmitOrder, TimeInForce
from vtrade.execution.tables import OrderRecord, fills_frame, orders_frame
from vtrade.market.l2book import L2Book, UpdateBatch

Code = ev.RejectCode
_MIN_WINDOW, _MAX_WINDOW = 1 << 12, 1 << 18  # ladder widths in ticks (L2Book's default and its widest)
_TYPES = {dk.LIMIT: OrderType.LIMIT, dk.MARKET: OrderType.MARKET}
_TIFS = {dk.GTC: TimeInForce.GTC, dk.IOC: TimeInForce.IOC, dk.FOK: TimeInForce.FOK}
_STATUS = {fp.S_ACCEPTED: "accepted", fp.S_PARTIAL: "partially_filled", fp.S_FILLED: "filled",
           fp.S_CANCELLED: "cancelled"}  # fmt: skip


def is_compiled_strategy(strategy: object) -> bool:
    """True for a Numba-jitted strategy (an ``@njit`` function taking a :class:`~vtrade.execution.desk.Desk`)."""
    return isinstance(strategy, CPUDispatcher)


def why_not_compiled(config: EngineConfig, latency: LatencyModel, has_broker: bool) -> str | None:
    """Why the compiled loop cannot run this replay (None: it can)."""
    if config.realism is not Realism.L2:
        return f"the compiled loop runs L2 replays; this one is {config.realism}"
    if not isinstance(latency, ConstantLatency):
        return "the compiled loop needs a constant latency"
    if has_broker:
        return "account rules (cash=...) run on the Python path"
    if not config.extended_hours:
        return "trading hours (extended_hours=False) are checked on the Python path"
    return None


class JitAdapter:
    """A compiled strategy as a Python strategy: the Python engine's fallback for it.

    Each call builds a :class:`~vtrade.execution.desk.Desk` over the context's book and open
    orders, runs the jitted function, and sends its commands through the context, in order.
    """

    def __init__(self, strategy: Callable[[dk.Desk], None]) -> None:
        self.strategy = strategy
        self._numbers: dict[str, int] = {}  # client order id -> the desk's order number
        self._next = 1
        self._mem: tuple[np.ndarray, np.ndarray] | None = None  # the desk's mem and fmem, kept between calls

    def __call__(self, ctx: Any) -> None:
        d = dk.new_desk(ctx.book.kernel_arrays())
        if len(ctx.open_orders) > d.op.shape[0]:
            raise ValueError("too many open orders for the desk (raise max_open)")
        if self._mem is None:
            self._mem = (d.mem, d.fmem)
        d = d._replace(mem=self._mem[0], fmem=self._mem[1])
        st = d.st
        st[dk.NOW], st[dk.POSITION], st[dk.NEXT_NO] = ctx.now, ctx.position, self._next
        st[dk.LAST_TRADE], st[dk.HAS_LAST] = (ctx.last_trade or 0), ctx.last_trade is not None
        for i, (coid, o) in enumerate(ctx.open_orders.items()):
            otype = dk.LIMIT if o.order_type is OrderType.LIMIT else dk.MARKET
            d.op[i] = (self._numbers[coid], int(o.side), otype, o.limit_price or 0, o.quantity)
        st[dk.N_OPEN] = len(ctx.open_orders)
        self.strategy(d)
        self._next = int(st[dk.NEXT_NO])
        for kind, no, side, otype, price, qty, tif, post in d.cmd[: st[dk.N_CMD]].tolist():
            coid = f"{ctx.account}-{no}"
            if kind == dk.SUBMIT:
                sent = ctx._order(Side(side), qty, price if otype == dk.LIMIT else None, client_order_id=coid,
                                  tif=_TIFS[tif], post_only=bool(post))  # fmt: skip
                self._numbers[sent] = no
            elif kind == dk.CANCEL:
                ctx.cancel(coid)
            else:
                ctx.replace(coid, quantity=None if qty == dk.KEEP else qty, price=None if price == dk.KEEP else price)


class CompiledRun:
    """The compiled loop's arrays for one replay, and the events and tables built from them on demand."""

    def __init__(self, inst: Instrument, account: str, config: EngineConfig, orders: np.ndarray, log: np.ndarray,
                 samples: np.ndarray) -> None:  # fmt: skip
        self.inst, self.account, self.config = inst, account, config
        self.orders, self.log, self.samples = orders, log, samples
        self._events: list[ev.ExecEvent] | None = None
        self._records: list[OrderRecord] = []

    def coid(self, no: int) -> str:
        return f"{self.account}-{no}"

    def submitted(self, no: int) -> SubmitOrder:
        o = self.orders[no]
        otype = _TYPES[int(o[fp.O_TYPE])]
        return SubmitOrder(int(o[fp.O_ARRIVAL]), self.account, self.coid(no), self.inst.symbol, Side(int(o[fp.O_SIDE])),
                           otype, int(o[fp.O_QTY]), limit_price=int(o[fp.O_PX]) if otype is OrderType.LIMIT else None,
                           tif=_TIFS[int(o[fp.O_TIF])], post_only=bool(o[fp.O_POST]))  # fmt: skip

    def events(self) -> list[ev.ExecEvent]:
        """The execution events, exactly as the Python engine writes them."""
        if self._events is None:
            self._events, self._records = self._materialize()
        return self._events

    def order_records(self) -> list[OrderRecord]:
        self.events()
        return self._records

    def _materialize(self) -> tuple[list[ev.ExecEvent], list[OrderRecord]]:
        inst, sym, cfg = self.inst, self.inst.symbol, self.config
        qm = cfg.queue_model
        models = {fp.M_QUEUE: f"queue {qm!r}", fp.M_THROUGH: "trade through", fp.M_CROSSED: "market crossed the order",
                  fp.M_SWEEP: f"{cfg.realism} sweep"}  # fmt: skip
        out: list[ev.ExecEvent] = []
        fees: dict[int, tuple[int, Decimal, Decimal]] = {}  # order no -> filled, fees, notional (fee models' inputs)
        reasons: dict[int, str] = {}
        rejected: list[int] = []
        fill_seq = 0
        for kind, ts, no, p0, p1, p2, p3, p4, p5, p6 in self.log.tolist():
            coid = self.coid(no)
            if kind == fp.EV_ACCEPTED:
                out.append(ev.OrderAccepted(ts, self.account, coid, sym))
            elif kind == fp.EV_FILLED:
                side = Side(int(self.orders[no, fp.O_SIDE]))
                liq = Liquidity.TAKER if p3 else Liquidity.MAKER
                filled, fee_sum, notional = fees.get(no, (0, Decimal(0), Decimal(0)))
                fctx = FillContext(inst, side, p1, p0, liq, filled, fee_sum, notional)
                fee = cfg.fees.fee(fctx)
                fees[no] = (filled + p1, fee_sum + fee, notional + fctx.notional)
                fill_seq += 1
                slip = float(int(side) * (2 * p0 - p4) / p4 * 1e4) if p4 > 0 else 0.0
                out.append(ev.OrderFilled(ts, self.account, coid, sym, f"{sym}-f{fill_seq}", side, p0, p1, p2, liq, fee,
                                          p4, slip, models[p5], None if p6 < 0 else p6))  # fmt: skip
            elif kind == fp.EV_CANCELLED:
                reason = self._cancel_reason(p1, p2)
                reasons[no] = reason
                out.append(ev.OrderCancelled(ts, self.account, coid, sym, p0, reason))
            elif kind == fp.EV_REPLACED:
                out.append(ev.OrderReplaced(ts, self.account, coid, sym, p0, p1, None, bool(p2)))
            else:
                code, why = self._reject_reason(no, p0, p1, p2)
                out.append(ev.OrderRejected(ts, self.account, coid, sym, code, why))
                if p0 in (fp.R_INVALID_QUANTITY, fp.R_INVALID_PRICE, fp.R_POST_ONLY):
                    rejected.append(len(out) - 1)
        return out, self._records_of(out, fees, reasons, rejected)

    def _records_of(self, out: list[ev.ExecEvent], fees: dict[int, tuple[int, Decimal, Decimal]],
                    reasons: dict[int, str], rejected: list[int]) -> list[OrderRecord]:  # fmt: skip
        """The orders table's rows as replay's ``_orders_frame`` writes them: accepted orders in the
        order the exchange accepted them, then the orders it refused, in output order."""
        o = self.orders
        accepted = np.flatnonzero(o[:, fp.O_STATUS] != fp.S_NONE)
        accepted = accepted[np.argsort(o[accepted, fp.O_ACCEPT_NO], kind="stable")]
        rows = []
        for no in accepted.tolist():
            sub = self.submitted(no)
            entered = OrderRecord.entered(sub, int(o[no, fp.O_ENTERED]), status=_STATUS[int(o[no, fp.O_STATUS])],
                                          reason=reasons.get(no, ""))  # fmt: skip
            fee = fees.get(no, (0, Decimal(0)))[1]
            rows.append(replace(entered, filled=int(o[no, fp.O_FILLED]), notional=int(o[no, fp.O_NOTIONAL]), fees=fee))
        for i in rejected:
            r = out[i]
            assert isinstance(r, ev.OrderRejected)
            no = int(r.client_order_id.rsplit("-", 1)[1])
            rows.append(OrderRecord.entered(self.submitted(no), int(o[no, fp.O_ENTERED]), status="rejected",
                                            reason=r.reason))  # fmt: skip
        return rows

    def _cancel_reason(self, code: int, bounded: int) -> str:
        if code == fp.C_USER:
            return "cancelled by user"
        if code == fp.C_IOC:
            return "IOC: rest cancelled"
        if code == fp.C_FOK:
            return "FOK: the book cannot fill it in full"
        if bounded:
            ticks, bps = self.config.price_protection_ticks, self.config.price_protection_bps
            within = f"{bps} bps" if ticks is None else f"{ticks} tick{'s' * (ticks != 1)}"
            return f"market order: no more liquidity within {within} of the touch"
        return "market order: no liquidity left to fill it"

    def _reject_reason(self, no: int, code: int, value: int, status: int) -> tuple[Code, str]:
        coid = self.coid(no)
        if code == fp.R_INVALID_QUANTITY:
            return Code.INVALID_QUANTITY, f"quantity must be positive, got {value}"
        if code == fp.R_INVALID_PRICE:
            return Code.INVALID_PRICE, f"limit price must be positive, got {value}"
        if code == fp.R_POST_ONLY:
            return Code.POST_ONLY_WOULD_TAKE, "a post-only order must rest: this one would trade on arrival"
        if code == fp.R_UNKNOWN_ORDER:
            return Code.UNKNOWN_ORDER, f"no order {coid} to cancel"
        if code == fp.R_UNKNOWN_REPLACE:
            return Code.UNKNOWN_ORDER, f"no order {coid} to replace"
        if code in (fp.R_NOT_OPEN, fp.R_NOT_OPEN_REPLACE):
            return Code.ORDER_NOT_OPEN, f"order {coid} is already {_STATUS[status]}"
        if code == fp.R_REPLACE_QTY:
            return Code.INVALID_QUANTITY, f"new quantity {value} must exceed the {status} already filled"
        if code == fp.R_REPLACE_PRICE:
            return Code.INVALID_PRICE, "prices must be positive"
        return Code.POST_ONLY_WOULD_TAKE, "the new price would trade on arrival; the order is unchanged"

    def orders_frame(self) -> pd.DataFrame:
        return orders_frame(self.order_records(), self.inst)

    def fills_frame(self) -> pd.DataFrame:
        return fills_frame((e for e in self.events() if isinstance(e, ev.OrderFilled)), self.inst)

    def book_samples(self) -> list[tuple[int, int | None, int | None, int | None, int | None, int | None]]:
        """The top of the exchange's book and its last trade at each strategy call (replay's ``_Sample`` rows)."""
        rows = []
        for t, bid, bs, ask, az, last in self.samples.tolist():
            last_px = None if last < 0 else last
            rows.append((t, bid if bs else None, bs or None, ask if az else None, az or None, last_px))
        return rows


def run_compiled(batch: UpdateBatch, strategy: Callable[[dk.Desk], None], config: EngineConfig, every: int,
                 latency: ConstantLatency, account: str, t_first: int | None, t_last: int
                 ) -> tuple[CompiledRun, int, int]:  # fmt: skip
    """Run the compiled loop over ``batch``; returns the run and the input and market event counts.

    Raises :class:`~vtrade.core.errors.CrossedBookError` as the Python path does when an event
    would cross the exchange's book or the strategy's view.
    """
    inst = config.instrument
    n = batch.n_events
    # The loop cannot widen a ladder between kernel calls as the Python path does (L2Book.settle):
    # size both books' windows once, from the prices the batch holds.
    span = int(batch.px.max() - batch.px.min()) + 1 if batch.n_updates else 0
    window = min(_MAX_WINDOW, max(_MIN_WINDOW, 1 << max(span - 1, 1).bit_length()))
    # Room for every level the batch can add, given at construction (a reservation later copies).
    book = L2Book(inst.symbol, window=window, max_window=_MAX_WINDOW, capacity=batch.n_updates + 1)
    view = L2Book(inst.symbol, window=window, max_window=_MAX_WINDOW, capacity=batch.n_updates + 1)
    scratch = np.zeros(max(1, batch.max_event_updates()), dtype=np.int64)  # a crossing event's undo space
    vscratch = np.zeros_like(scratch)
    clock = np.maximum.accumulate(batch.ts) if n else batch.ts
    d = dk.new_desk(view.kernel_arrays())
    qm = config.queue_model
    bps, ticks = config.price_protection_bps, config.price_protection_ticks
    prot = (fp.PROT_TICKS, ticks) if ticks is not None else (fp.PROT_BPS, bps) if bps is not None else (fp.PROT_NONE, 0)
    lat = np.array([latency.entry(None), latency.response(None), latency.feed(None)], dtype=np.int64)
    S = np.zeros(fp.X_SIZE, dtype=np.int64)
    orders = np.zeros((64, fp.O_WIDTH), dtype=np.int64)
    log = np.zeros((1024, fp.LOG_WIDTH), dtype=np.int64)
    samples = np.zeros((1024, 6), dtype=np.int64)
    used = np.zeros((16, 3), dtype=np.int64)
    _, orders, log, samples, _ = fp.run(
        strategy, d, book.kernel_arrays(), scratch, vscratch, batch.kinds, batch.ends, batch.side, batch.px, batch.sz,
        batch.ts, clock, -1 if t_first is None else t_first, t_last, every, lat, book.tolerance, qm.kind, qm.n,
        prot[0], prot[1], fp.new_table(), orders, log, samples, used, S,
    )  # fmt: skip
    book.settle()
    view.settle()
    if S[fp.X_FAILED] >= 0:
        (view if S[fp.X_FAILED_BOOK] else book).raise_crossed(batch, int(S[fp.X_FAILED]))
    run = CompiledRun(inst, account, config, orders, log[: S[fp.X_NEV]], samples[: S[fp.X_NSAMPLE]])
    return run, int(S[fp.X_INPUTS]), int(S[fp.X_MARKETS])
