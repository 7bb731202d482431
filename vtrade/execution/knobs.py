"""The knobs every entry point shares, each with one name and one accepted shape.

``vt.replay``, :class:`~vtrade.runtime.live.LiveConfig` / :class:`~vtrade.runtime.live.LiveMarket`,
``vt.live`` / ``vt.Session.demo`` and :class:`~vtrade.runtime.session.Session` read them through
these functions, so a value that works in one works in all of them, and a bad one gets the same
error everywhere:

- ``queue``: ``"risk_averse"``, ``"prob"`` or a :class:`~vtrade.execution.queue.QueueModel`
  (:func:`~vtrade.execution.queue.queue_model`);
- ``cash``: money as a ``Decimal``, an ``int``, decimal text or a float (read through its
  shortest text, so ``0.1`` stays ``0.1``), finite and not negative (:func:`cash_amount`);
- ``account_kind``: ``"cash"`` or ``"margin"``, any case (:func:`account_kind`).

>>> cash_amount("25000.50"), cash_amount(1e4), account_kind(" Margin ")
(Decimal('25000.50'), Decimal('10000.0'), 'margin')
>>> queue_model("prob")
ProbQueue(PowerProbQueueFunc3(n=2.0))
"""

from __future__ import annotations

from decimal import Decimal

from vtrade.core.numbers import Number, exact_decimal
from vtrade.execution.accounts import AccountKind
from vtrade.execution.queue import QueueModel, queue_model

__all__ = ["ACCOUNT_KINDS", "AccountKind", "QueueModel", "account_kind", "cash_amount", "queue_model"]

ACCOUNT_KINDS: tuple[AccountKind, ...] = ("cash", "margin")


def account_kind(spec: object) -> AccountKind:
    """``"cash"`` or ``"margin"`` (any case, blanks ignored); anything else is a ``ValueError``.

    >>> account_kind("portfolio")
    Traceback (most recent call last):
    ...
    ValueError: account_kind must be 'cash' or 'margin', got 'portfolio'
    """
    key = spec.strip().lower() if isinstance(spec, str) else spec
    if key not in ACCOUNT_KINDS:
        raise ValueError(f"account_kind must be 'cash' or 'margin', got {spec!r}")
    return "margin" if key == "margin" else "cash"


def cash_amount(spec: Number, name: str = "cash") -> Decimal:
    """An account's opening cash as an exact Decimal: finite and not negative.

    >>> cash_amount(float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: cash must be finite, got nan
    """
    return exact_decimal(spec, name, allow_float=True)
