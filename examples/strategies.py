"""Example strategies, for ``vtrade replay --strategy examples/strategies.py:NAME``.

The built-in ones live in :mod:`vtrade.strategies` (``--strategy vtrade.strategies:NAME``
works from anywhere); this file shows that a strategy file of your own is just as good.
Write yours here: a function taking the replay's ``Context``, called every ``--every``.
"""

from vtrade.strategies import buy_and_hold, market_maker

__all__ = ["buy_and_hold", "market_maker"]
