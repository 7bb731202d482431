"""Map simulated time onto wall time: the only place that reads the wall clock for replays.

>>> ticks = []
>>> p = Pacer(speed=10.0, clock=lambda: 0.0, sleep=ticks.append)
>>> p.wait_until(0); p.wait_until(5_000_000_000)  # 5 simulated seconds at 10x
>>> ticks
[0.5]
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """Sleeps so that simulated time advances ``speed`` times faster than wall time.

    ``speed=0`` replays as fast as possible. The first ``wait_until`` anchors the two clocks.
    """

    def __init__(
        self,
        speed: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,  # a return value (Event.wait's) is ignored
    ) -> None:
        if not speed >= 0:  # also rejects NaN
            raise ValueError(f"speed must be >= 0, got {speed}")
        self.speed = speed
        self._clock = clock
        self._sleep = sleep
        self._anchor: tuple[int, float] | None = None

    def wait_until(self, sim_ts_ns: int) -> None:
        """Block until wall time catches up with ``sim_ts_ns`` (never sleeps backwards)."""
        if self.speed == 0:
            return
        if self._anchor is None:
            self._anchor = (sim_ts_ns, self._clock())
            return
        sim0, wall0 = self._anchor
        due = wall0 + (sim_ts_ns - sim0) / 1e9 / self.speed
        delay = due - self._clock()
        if delay > 0:
            self._sleep(delay)
