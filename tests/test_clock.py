"""connector.clock.VenueClock: the offset rule, and a re-measure asked for by a reply
handler (remeasure_soon): one task, held by the clock, however many replies ask for it."""

from __future__ import annotations

import asyncio
import contextlib

from connector.clock import VenueClock
from connector.errors import RequestFailed


def test_the_offset_is_the_venue_time_at_the_round_trips_midpoint():
    local = iter([1_000_000_000, 1_010_000_000])  # the request leaves at 1000 ms, back at 1010

    async def venue_ms():
        return 1_505

    clock = VenueClock(venue_ms, now_ns=lambda: next(local))
    assert asyncio.run(clock.measure()) == 500 and clock.measured == 1


def _remeasure_tasks() -> list:
    return [t for t in asyncio.all_tasks() if t.get_name() == "venue-clock-remeasure"]


def test_a_remeasure_asked_for_by_many_replies_is_one_task_the_clock_holds():
    """Five replies at once make one task (not five that each find the first busy), and
    it is the clock's; once it ended, the next request makes a new one."""

    async def main():
        release = asyncio.Event()
        fetches = 0

        async def venue_ms():
            nonlocal fetches
            fetches += 1
            await release.wait()
            return 7  # the local clock reads 0: the venue is 7 ms ahead

        clock = VenueClock(venue_ms, now_ns=lambda: 0)
        for i in range(5):  # five replies said "outside the window" at once
            clock.remeasure_soon(f"reply {i}")
        assert _remeasure_tasks() == [clock._task]
        await asyncio.sleep(0)  # the task starts: it waits for the venue's time
        clock.remeasure_soon("a sixth, while it runs")
        assert _remeasure_tasks() == [clock._task]
        release.set()
        while clock.measured == 0:
            await asyncio.sleep(0)
        assert (fetches, clock.offset_ms) == (1, 7)
        await asyncio.sleep(0)
        clock.remeasure_soon("later")  # the last one ended: a new one runs
        while clock.measured == 1:
            await asyncio.sleep(0)
        assert fetches == 2

    asyncio.run(asyncio.wait_for(main(), 10))


def test_a_remeasure_that_fails_keeps_the_old_offset_and_lets_the_next_one_run():
    async def main():
        calls = []

        async def venue_ms():
            calls.append(1)
            if len(calls) == 1:
                raise RequestFailed("GET /fapi/v1/time: timeout", sent=True)
            return 42

        clock = VenueClock(venue_ms, now_ns=lambda: 0)
        clock.offset_ms = 3
        clock.remeasure_soon("first")
        while not calls:
            await asyncio.sleep(0)
        while clock._task is not None and not clock._task.done():
            await asyncio.sleep(0)
        assert clock.offset_ms == 3 and clock._task.exception() is None
        clock.remeasure_soon("second")
        await clock._task
        assert clock.offset_ms == 42

    asyncio.run(asyncio.wait_for(main(), 10))


def test_a_remeasure_that_breaks_unexpectedly_is_logged_with_its_traceback(caplog):
    async def main():
        async def venue_ms():
            raise ZeroDivisionError("a bug")

        clock = VenueClock(venue_ms, now_ns=lambda: 0)
        clock.remeasure_soon("reply")
        with contextlib.suppress(ZeroDivisionError):
            await clock._task
        await asyncio.sleep(0)  # the done callback runs

    asyncio.run(asyncio.wait_for(main(), 10))
    (rec,) = [r for r in caplog.records if r.msg == "venue clock re-measure failed"]
    assert rec.exc_info[0] is ZeroDivisionError
