"""Compiled market-data path of the L1/L2 matching engine.

:func:`run` applies a range of book and trade events to the book (the ``_l2kernels`` ladder)
and to the table of our resting limit orders, and stops right after the first event that
fills one of them, so the Python side can write receipts and the replay can deliver the
news in time order. Everything here is arithmetic on integer ticks/lots plus the queue
models' expected positions (``vtrade.execution.queue``), the same kernels the Python queue
classes use: there is one implementation of each rule.

A resting order fills when
- a trade prints THROUGH its price (the market traded past us: all of it fills, whoever the
  aggressor was: a counterparty who got a worse price would have met our order first);
- a trade prints AT its price, its aggressor hit OUR side (a seller for a resting buy, a buyer
  for a resting sell), and it drains the queue ahead of it (the excess fills us). A print at our
  price from the wrong side (a buyer lifting offers at our bid's price) neither advances nor
  fills us, nor counts as trading at our level for the next depth update, as in hftbacktest
  and NautilusTrader;
- the opposite best crosses its price after a book event (all of it fills, at our price).

A print whose aggressor the feed does not give (``Trade.aggressor is None``, side 0 in the
batch: TAQ and Lean ticks, LOBSTER type-6 crosses) hits whichever resting side is at its price,
both where both are (NautilusTrader's ``NO_AGGRESSOR`` handling). The engine does not infer
the side from the book (Lee-Ready's quote and tick tests): the book it sees excludes our own
resting orders and the liquidity we already took, so a quote rule would call a print against
our order that improved the spread a print from the other side.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from vtrade.execution.queue import depth_update, trade_update
from vtrade.market._l2kernels import SNAPSHOT, TRADE, apply_event, best, count, get

WHY_QUEUE, WHY_THROUGH, WHY_CROSSED = 0, 1, 2


@njit(cache=True, nogil=True)
def _side_size(bl, bm, bok, bos, al, am, aok, aos, side, price):  # type: ignore[no-untyped-def]
    if side > 0:
        return get(bl, bm, bok, bos, price)
    return get(al, am, aok, aos, -price)


@njit(cache=True, nogil=True)
def run(  # type: ignore[no-untyped-def]
    bl, bm, bok, bos, al, am, aok, aos,  # the book, both sides (see _l2kernels)
    kinds, ends, side, px, sz, e0, e1, tolerance, scratch,  # events e0..e1 of an UpdateBatch
    o_side, o_px, o_leaves, o_front, o_traded,  # resting orders (o_side 0 = free slot)
    qkind, qn,  # queue model
    f_slot, f_qty, f_why, state,  # outputs: fills of the stopping event; state[0] = last trade price
):
    """Apply events ``e0:e1``; return ``(next_event, n_fills, failed_event)``.

    Stops after the first event that filled something (``n_fills > 0``) or at ``e1``.
    ``failed_event`` >= 0 names an event that would have crossed the book (not applied).
    """
    k_slots = o_side.shape[0]
    prev = np.zeros(k_slots, dtype=np.int64)
    for e in range(e0, e1):
        start = ends[e - 1] if e > 0 else 0
        end = ends[e]
        nf = 0
        if kinds[e] == TRADE:
            tpx, tsz, aggressor = px[start], sz[start], side[start]  # aggressor: +1 buyer, -1 seller, 0 unknown
            state[0] = tpx
            for k in range(k_slots):
                if o_side[k] == 0 or o_leaves[k] == 0:
                    continue
                through = tpx < o_px[k] if o_side[k] > 0 else tpx > o_px[k]
                if through:
                    f_slot[nf], f_qty[nf], f_why[nf] = k, o_leaves[k], WHY_THROUGH
                    o_leaves[k] = 0
                    nf += 1
                elif tpx == o_px[k] and aggressor != o_side[k]:  # a seller hits bids, a buyer lifts offers
                    front, traded, filled = trade_update(o_front[k], o_traded[k], o_leaves[k], float(tsz))
                    o_front[k], o_traded[k] = front, traded
                    if filled > 0:
                        f_slot[nf], f_qty[nf], f_why[nf] = k, filled, WHY_QUEUE
                        o_leaves[k] -= filled
                        nf += 1
        else:
            for k in range(k_slots):
                if o_side[k] != 0:
                    prev[k] = _side_size(bl, bm, bok, bos, al, am, aok, aos, o_side[k], o_px[k])
            snapshot = kinds[e] == SNAPSHOT
            book = (bl, bm, bok, bos, al, am, aok, aos)
            if not apply_event(*book, side, px, sz, start, end, snapshot, tolerance, scratch):
                return e, 0, e
            has_bid, has_ask = count(bm) > 0, count(am) > 0
            bid = best(bl, bm, bok) if has_bid else 0
            ask = -best(al, am, aok) if has_ask else 0
            for k in range(k_slots):
                if o_side[k] == 0 or o_leaves[k] == 0:
                    continue
                now = _side_size(bl, bm, bok, bos, al, am, aok, aos, o_side[k], o_px[k])
                if now != prev[k]:
                    o_front[k] = depth_update(qkind, qn, o_front[k], o_traded[k], float(prev[k]), float(now))
                    o_traded[k] = 0.0
                crossed = (has_ask and ask <= o_px[k]) if o_side[k] > 0 else (has_bid and bid >= o_px[k])
                if crossed:
                    f_slot[nf], f_qty[nf], f_why[nf] = k, o_leaves[k], WHY_CROSSED
                    o_leaves[k] = 0
                    nf += 1
        if nf > 0:
            return e + 1, nf, -1
    return e1, 0, -1
