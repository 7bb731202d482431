"""Taking liquidity from a book: walk the levels, remember what we took.

A simulated order never changes the recorded feed, so without memory a user could take the
same displayed 2 BTC again and again. :class:`ConsumedLiquidity` keeps what our own taker
fills took from each level until the feed refreshes that level (DESIGN.md §5).

>>> used = ConsumedLiquidity()
>>> walk([(101, 3), (102, 4)], 5, limit=None, used=used, side=Side.BUY)
[Take(price=101, quantity=3), Take(price=102, quantity=2)]
>>> used.record(Side.SELL, [Take(101, 3), Take(102, 2)])
>>> walk([(101, 3), (102, 4)], 5, limit=None, used=used, side=Side.BUY)
[Take(price=102, quantity=2)]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from vtrade.core.events import Side


class Take(NamedTuple):
    """Lots taken at one price level."""

    price: int
    quantity: int


@dataclass(slots=True)
class ConsumedLiquidity:
    """Lots our taker orders took per (resting side, price), until the feed refreshes the level."""

    taken: dict[tuple[int, int], int] = field(default_factory=dict)

    def available(self, resting_side: Side, price: int, displayed: int) -> int:
        return max(0, displayed - self.taken.get((int(resting_side), price), 0))

    def record(self, resting_side: Side, takes: Iterable[Take]) -> None:
        for t in takes:
            key = (int(resting_side), t.price)
            self.taken[key] = self.taken.get(key, 0) + t.quantity

    def refresh(self, resting_side: Side, prices: Iterable[int]) -> None:
        """The feed re-stated these levels: what is displayed now is what is there."""
        if self.taken:
            for p in prices:
                self.taken.pop((int(resting_side), p), None)

    def clear(self) -> None:
        self.taken.clear()


def walk(
    levels: Iterable[tuple[int, int]],
    quantity: int,
    *,
    limit: int | None,
    used: ConsumedLiquidity,
    side: Side,
) -> list[Take]:
    """Takes for a ``side`` order of ``quantity`` lots against ``levels`` (best first).

    Stops at ``limit`` (inclusive) when given. Levels' sizes are reduced by what ``used``
    says we already took there. Pure: ``used`` is read, not changed.
    """
    resting = Side.SELL if side is Side.BUY else Side.BUY
    takes: list[Take] = []
    left = quantity
    for price, size in levels:
        if left == 0:
            break
        if limit is not None and (price > limit if side is Side.BUY else price < limit):
            break
        avail = used.available(resting, price, size)
        if avail:
            q = min(left, avail)
            takes.append(Take(price, q))
            left -= q
    return takes
