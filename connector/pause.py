"""A venue's "stop sending" order, kept: every venue has one (Binance's 429/418
Retry-After, Bybit's 10006 until its reset timestamp and its 403 IP ban of 10 minutes).

While a pause runs, nothing it covers may be sent: a request sent during it is what turns
a rate limit into a ban. Pauses only ever extend; the clock is monotonic (injectable).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pause:
    """Until when sending must wait. `clock`: seconds, monotonic."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.until = 0.0  # clock() before which nothing is sent

    def block(self, seconds: float) -> None:
        """Nothing is sent for `seconds` (an earlier end is never brought forward)."""
        self.until = max(self.until, self.clock() + max(seconds, 0.0))

    def left_s(self) -> float:
        """Seconds left of the pause, 0 if none."""
        return max(0.0, self.until - self.clock())
