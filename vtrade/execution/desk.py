"""The compiled strategy interface: what a Numba-jitted strategy reads and how it sends orders.

A compiled strategy is an ``@njit`` function taking one :class:`Desk` (plain arrays, so the
replay's compiled loop can hand it over with no Python object in between, in the spirit of
hftbacktest's ``hbt.depth()``/``hbt.submit_buy_order``). The replay calls it every ``every``
of simulated time, exactly where it would call a Python strategy with its ``Context``, and
the helpers here mirror the Context's methods one for one:

=========================  =============================================
Python ``Context``          compiled (``vtrade.jit``)
=========================  =============================================
``ctx.now``                 ``now(d)``
``ctx.position``            ``position(d)``
``ctx.last_trade``          ``last_trade(d)`` -> ``(price, known)``
``ctx.book.touch()``        ``touch(d)`` -> ``(bid, bid_size, ask, ask_size)``
``ctx.book.best_bid()``     ``best_bid(d)`` -> ``(price, size)``, size 0 = none
``ctx.buy(q, price=p)``     ``buy(d, q, p)`` (``buy_market(d, q)``)
``ctx.sell(...)``           ``sell(d, q, p)`` (``sell_market(d, q)``)
``ctx.cancel(coid)``        ``cancel(d, order_no)``
``ctx.cancel_all()``        ``cancel_all(d)``
``ctx.replace(coid, ...)``  ``replace(d, order_no, quantity, price)``
``ctx.open_orders``         ``n_open(d)``, ``open_order(d, i)``
=========================  =============================================

A strategy keeps its own state between calls in ``d.mem`` (int64) and ``d.fmem`` (float64),
zero at the start of each run (a compiled function has no context to hang attributes on).

Orders are numbered 1, 2, 3... in the order the strategy sends them; the order's client id is
``f"{account}-{number}"``, as the Context names them. Prices are integer ticks and quantities
integer lots (DESIGN.md §3). ``tif`` is :data:`GTC`, :data:`IOC` or :data:`FOK`.

The book arrays are the strategy's own, feed-delayed view (the ``_l2kernels`` layout of
:meth:`vtrade.market.l2book.L2Book.kernel_arrays`). Everything here is pure and compiled.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from vtrade.market import _l2kernels as k

# st[] slots: the scalars of the desk.
NOW, POSITION, LAST_TRADE, HAS_LAST, NEXT_NO, N_OPEN, N_CMD, ST_SIZE = range(8)
# Command kinds in the command buffer.
SUBMIT, CANCEL, REPLACE = 1, 2, 3
# Order types and times in force as the compiled path codes them.
LIMIT, MARKET = 0, 1
GTC, IOC, FOK = 0, 1, 2
#: A field a replace leaves as it is.
KEEP = -1


class Desk(NamedTuple):
    """What a compiled strategy gets. Build one with :func:`new_desk`; read it with the helpers."""

    bl: np.ndarray  # the strategy's view of the book: bid side ...
    bm: np.ndarray
    bok: np.ndarray
    bos: np.ndarray
    al: np.ndarray  # ... and ask side (see vtrade.market._l2kernels)
    am: np.ndarray
    aok: np.ndarray
    aos: np.ndarray
    st: np.ndarray  # int64 scalars, see NOW, POSITION, ...
    op: np.ndarray  # open orders as the strategy knows them, oldest first: [n, (no, side, type, price, qty)]
    cmd: np.ndarray  # commands sent during this call: [n, (kind, no, side, type, price, qty, tif, post_only)]
    mem: np.ndarray  # the strategy's own int64 scalars, kept from call to call (zero at the start of a run)
    fmem: np.ndarray  # ... and float64 ones


def new_desk(book: tuple[np.ndarray, ...], max_open: int = 1024, max_commands: int = 1024, memory: int = 64) -> Desk:
    """An empty desk over ``book`` (an ``L2Book.kernel_arrays()`` tuple), with ``memory`` slots
    of each of ``mem`` and ``fmem`` for the strategy's own state.

    >>> from vtrade.market.l2book import L2Book
    >>> d = new_desk(L2Book().kernel_arrays())
    >>> int(d.st[NEXT_NO]), d.op.shape, d.cmd.shape
    (1, (1024, 5), (1024, 8))
    """
    if max_open < 1 or max_commands < 1 or memory < 0:
        raise ValueError(f"need max_open, max_commands >= 1 and memory >= 0, got {max_open}, {max_commands}, {memory}")
    st = np.zeros(ST_SIZE, dtype=np.int64)
    st[NEXT_NO] = 1
    bl, bm, bok, bos, al, am, aok, aos = book
    return Desk(bl, bm, bok, bos, al, am, aok, aos, st, np.zeros((max_open, 5), dtype=np.int64),
                np.zeros((max_commands, 8), dtype=np.int64), np.zeros(memory, dtype=np.int64),
                np.zeros(memory, dtype=np.float64))  # fmt: skip


# ------------------------------------------------------------------ reading
@njit(cache=True, nogil=True)
def now(d: Desk) -> int:
    """Simulated time (ns) of this call."""
    return d.st[NOW]


@njit(cache=True, nogil=True)
def position(d: Desk) -> int:
    """Net lots held, from the fills the strategy has heard of."""
    return d.st[POSITION]


@njit(cache=True, nogil=True)
def last_trade(d: Desk) -> tuple[int, bool]:
    """``(price, known)`` of the last print the strategy saw."""
    return d.st[LAST_TRADE], d.st[HAS_LAST] != 0


@njit(cache=True, nogil=True)
def touch(d: Desk) -> tuple[int, int, int, int]:
    """``(bid, bid_size, ask, ask_size)`` of the strategy's view; a size of 0 means that side is empty."""
    return k.touch(d.bl, d.bm, d.bok, d.bos, d.al, d.am, d.aok, d.aos)


@njit(cache=True, nogil=True)
def best_bid(d: Desk) -> tuple[int, int]:
    """``(price, size)`` of the best bid; size 0 when there is none."""
    key, size = k.best_level(d.bl, d.bm, d.bok, d.bos)
    return key, size


@njit(cache=True, nogil=True)
def best_ask(d: Desk) -> tuple[int, int]:
    """``(price, size)`` of the best ask; size 0 when there is none."""
    key, size = k.best_level(d.al, d.am, d.aok, d.aos)
    return -key, size


@njit(cache=True, nogil=True)
def n_open(d: Desk) -> int:
    """How many orders the strategy holds open (sent, and not yet heard to be done)."""
    return d.st[N_OPEN]


@njit(cache=True, nogil=True)
def open_order(d: Desk, i: int) -> tuple[int, int, int, int, int]:
    """The ``i``-th open order, oldest first: ``(order_no, side, order_type, price, quantity)``."""
    if not 0 <= i < d.st[N_OPEN]:
        raise IndexError("open_order: no such open order")
    r = d.op[i]
    return r[0], r[1], r[2], r[3], r[4]


# ------------------------------------------------------------------ sending
@njit(cache=True, nogil=True)
def _command(d: Desk, kind: int, no: int, side: int, otype: int, price: int, qty: int, tif: int, post: int) -> None:
    n = d.st[N_CMD]
    if n >= d.cmd.shape[0]:
        raise ValueError("too many commands in one strategy call for the desk (raise max_commands)")
    c = d.cmd[n]
    c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7] = kind, no, side, otype, price, qty, tif, post
    d.st[N_CMD] = n + 1


@njit(cache=True, nogil=True)
def submit(d: Desk, side: int, quantity: int, price: int, order_type: int, tif: int, post_only: bool) -> int:
    """Send an order (side +1 buy, -1 sell; ``price`` ignored for a market order); returns its number."""
    if side != 1 and side != -1:
        raise ValueError("submit: side must be +1 (buy) or -1 (sell)")
    if order_type != LIMIT and order_type != MARKET:
        raise ValueError("submit: order_type must be LIMIT or MARKET")
    if tif != GTC and tif != IOC and tif != FOK:
        raise ValueError("submit: tif must be GTC, IOC or FOK")
    n = d.st[N_OPEN]
    if n >= d.op.shape[0]:
        raise ValueError("too many open orders for the desk (raise max_open)")
    no = d.st[NEXT_NO]
    d.st[NEXT_NO] = no + 1
    px = price if order_type == LIMIT else 0
    r = d.op[n]
    r[0], r[1], r[2], r[3], r[4] = no, side, order_type, px, quantity
    d.st[N_OPEN] = n + 1
    _command(d, SUBMIT, no, side, order_type, px, quantity, tif, 1 if post_only else 0)
    return no


@njit(cache=True, nogil=True)
def buy(d: Desk, quantity: int, price: int, post_only: bool = False, tif: int = GTC) -> int:
    """A limit buy of ``quantity`` lots at ``price`` ticks; returns the order's number."""
    return submit(d, 1, quantity, price, LIMIT, tif, post_only)


@njit(cache=True, nogil=True)
def sell(d: Desk, quantity: int, price: int, post_only: bool = False, tif: int = GTC) -> int:
    """A limit sell of ``quantity`` lots at ``price`` ticks; returns the order's number."""
    return submit(d, -1, quantity, price, LIMIT, tif, post_only)


@njit(cache=True, nogil=True)
def buy_market(d: Desk, quantity: int, tif: int = GTC) -> int:
    """A market buy of ``quantity`` lots; returns the order's number."""
    return submit(d, 1, quantity, 0, MARKET, tif, False)


@njit(cache=True, nogil=True)
def sell_market(d: Desk, quantity: int, tif: int = GTC) -> int:
    """A market sell of ``quantity`` lots; returns the order's number."""
    return submit(d, -1, quantity, 0, MARKET, tif, False)


@njit(cache=True, nogil=True)
def cancel(d: Desk, order_no: int) -> None:
    """Cancel order ``order_no`` (the exchange refuses it if the order is already done)."""
    _command(d, CANCEL, order_no, 0, 0, 0, 0, 0, 0)


@njit(cache=True, nogil=True)
def cancel_all(d: Desk) -> None:
    """Cancel every order the strategy holds open, oldest first."""
    for i in range(d.st[N_OPEN]):
        _command(d, CANCEL, d.op[i, 0], 0, 0, 0, 0, 0, 0)


@njit(cache=True, nogil=True)
def replace(d: Desk, order_no: int, quantity: int = KEEP, price: int = KEEP) -> None:
    """Change an open order's quantity and/or limit price (:data:`KEEP` leaves one as it is)."""
    _command(d, REPLACE, order_no, 0, 0, price, quantity, 0, 0)


# ------------------------------------------------------------------ the loop's side
@njit(cache=True, nogil=True)
def forget(d: Desk, order_no: int) -> None:
    """The strategy heard that ``order_no`` is done: it leaves the open orders (order kept)."""
    n = d.st[N_OPEN]
    for i in range(n):
        if d.op[i, 0] == order_no:
            for j in range(i, n - 1):
                d.op[j, :] = d.op[j + 1, :]
            d.st[N_OPEN] = n - 1
            return
