"""A venue's clock as measured from here: every venue that signs a timestamp needs one.

Signed requests carry a timestamp the venue checks against its own clock (Binance's
recvWindow, Bybit's `server - recv_window <= ts < server + 1000`). A local clock that
drifts, or jumps, makes every request fail; so the offset is measured (the venue's time
endpoint, read halfway through the round trip), re-measured periodically, and at once
when the venue says a timestamp was outside its window: once at a time, however many
requests fail together.

The venue supplies only `fetch_ms`: an async call returning the venue's clock in ms.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from connector.errors import RequestFailed, VenueProtocolError

log = logging.getLogger(__name__)

REMEASURE_S = 300.0  # the offset drifts slowly; re-measured this often


class VenueClock:
    """The venue's clock: local time plus a measured offset.

    Args:
        fetch_ms: `async () -> venue ms` (e.g. GET /fapi/v1/time, GET /v5/market/time);
            raises RequestFailed (or VenueProtocolError) when it cannot tell.
        now_ns: the local clock (injectable for tests).
    """

    def __init__(self, fetch_ms: Callable[[], Awaitable[int]],
                 now_ns: Callable[[], int] = time.time_ns):  # fmt: skip
        self.fetch_ms = fetch_ms
        self.now_ns = now_ns
        self.offset_ms = 0  # venue clock minus local clock
        self.measured = 0  # how many times it was measured
        self._busy = False
        self._task: asyncio.Task | None = None  # remeasure_soon's, held: see there

    def now_ms(self) -> int:
        """Venue-clock milliseconds."""
        return self.now_ns() // 1_000_000 + self.offset_ms

    async def measure(self) -> int:
        """Measures the offset now; returns it (ms).

        Raises:
            RequestFailed, VenueProtocolError: the venue did not tell its time.
        """
        t0 = self.now_ns()
        venue_ms = await self.fetch_ms()
        t1 = self.now_ns()
        self.offset_ms = venue_ms - (t0 + t1) // 2_000_000
        self.measured += 1
        return self.offset_ms

    def remeasure_soon(self, why: str) -> None:
        """`remeasure(why)` in a task of its own, for a reply handler that cannot wait for
        it. The clock holds the task: the event loop keeps only a weak reference to a task,
        and one nobody holds can be collected before it ends. A re-measure already
        running, or already asked for, makes this a no-op."""
        if self._busy or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.get_running_loop().create_task(self.remeasure(why),
                                                            name="venue-clock-remeasure")
        self._task.add_done_callback(_log_unexpected)

    async def remeasure(self, why: str) -> None:
        """Re-measures at once (once at a time), e.g. after a timestamp-window refusal;
        a failure is logged, the old offset kept."""
        if self._busy:
            return
        self._busy = True
        try:
            before = self.offset_ms
            await self.measure()
            log.warning("%s: venue clock offset re-measured, %+d -> %+d ms", why, before,
                        self.offset_ms)  # fmt: skip
        except (RequestFailed, VenueProtocolError) as e:
            log.error("%s: venue clock offset could not be re-measured: %s", why, e)
        finally:
            self._busy = False


def _log_unexpected(task: asyncio.Task) -> None:
    """What remeasure() does not expect (a bug, not a venue that did not answer) is logged
    with its traceback when its task ends, rather than by asyncio whenever it is collected."""
    if not task.cancelled() and task.exception() is not None:
        log.error("venue clock re-measure failed", exc_info=task.exception())
