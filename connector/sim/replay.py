"""Replay of a recorded capture through the sim venue.

The file holds one message per line, `<local receive ns> <raw JSON>`, in the order they
were received, in the wire format of the venue `sim.data_format` names (default:
Binance USD-M's combined streams and REST depth snapshot, as hftbacktest's collector
writes them). Each line goes through that venue's own decoder (its registry `capture`
entry) and the core's one feed path (connector.feed), exactly as the live connector
handles the same frames; book changes and trades also reach the matching engine, which
fills the bots' orders.

Timestamps: a message is published at the wall time of the replay; its exch_ts keeps the
latency it had in the capture (local receive time minus the venue's transaction time).
On the replay clock (`clock = "replay"`, run_lockstep) a message keeps its own times and
is published when the replay's time reaches its receive time (connector.lockstep);
hftbacktest's exchange model, if chosen, reads the capture ahead and sees each event at
its exchange time (connector.sim.exchange_view).
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import time

from connector import registry

log = logging.getLogger(__name__)

YIELD_EVERY = 64  # messages between yields to the event loop at full speed


def open_capture(path: str):
    """Lines of a capture file (`<local ns> <raw JSON>`), gzip or plain."""
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _lines(path: str, feed):
    """(local receive ns, raw) of each line of a capture; a line without a time is
    reported as bad and skipped."""
    with open_capture(path) as f:
        for n, line in enumerate(f, 1):
            ts_s, _, raw = line.partition(b" ")
            try:
                local = int(ts_s)
            except ValueError:
                feed.bad(f"line {n}: no receive time: {ts_s[:40]!r}")
                continue
            yield local, raw.rstrip(b"\n")


class _Lines:
    """The capture's lines for the replay to publish, when nothing reads ahead."""

    def __init__(self, lines):
        self._lines = lines
        self._nxt = next(lines, None)

    def peek(self) -> tuple[int, bytes] | None:
        return self._nxt

    def pop(self) -> None:
        self._nxt = next(self._lines, None)


async def run_lockstep(venue, path: str, ls) -> None:
    """Replays `path` into `venue` on the replay clock `ls` (connector.lockstep): in the
    capture's own time, each round once every bot waits. With hftbacktest's exchange
    model, the exchange reads the capture ahead and sees each event at its exchange time
    (connector.sim.exchange_view): a round's time is also never past an event the
    exchange has not yet been shown, nor past a response that event causes."""
    feed = venue.feed
    feed.shift_ns = 0  # the capture's times are the clock
    capture = registry.spec(venue.sim.data_format).capture
    decoder = capture(venue.insts, feed)
    view = venue.exchange_view(capture, _lines(path, feed))
    src = view if view is not None else _Lines(_lines(path, feed))
    nxt = src.peek()
    if nxt is not None:
        ls.set_clock(nxt[0])  # the replay starts at its first message
    n = 0
    while not venue.stopped():
        until = await ls.settle(venue.stopped)
        if until is None:
            return  # stopped
        ls.begin()
        if ls.requests():  # a round of their own: responses are seen before time moves
            ls.end()
            continue
        nxt = src.peek()
        t = until if nxt is None else min(until, nxt[0])
        while True:
            # the round's time: the next line, deadline, request arrival or response;
            # the exchange is shown its events up to that time first, as any of them
            # may bring a response due sooner (and it never runs past a time at which
            # a bot could still act, so a request meets the market it would in a
            # backtest: hftbacktest's exchange takes an event stamped at a request's
            # arrival before the request)
            wake = venue.next_wake_ns()
            if wake is not None:
                t = min(t, wake)
            t = max(t, ls.now())
            e = None if view is None else view.next_event_ns(t)
            if e is None or e > t:
                break
            view.hand_over(e)
        if nxt is None and wake is None:
            ls.end()
            break  # the capture is over and no order has anything due
        ls.set_clock(t)
        while nxt is not None and nxt[0] <= t:
            decoder.on_frame(nxt[1], nxt[0])
            venue.maybe_snapshot()
            n += 1
            src.pop()
            nxt = src.peek()
        venue.pump_all()
        ls.end()
    if view is not None:
        view.finish()
    venue.maybe_snapshot(force=True)
    log.info("replay of %s on the replay clock finished: %d messages, at %d", path, n, ls.now())


async def run_replay(venue, path: str, speed: float) -> None:
    """Replays `path` into `venue` (a SimVenue) at `speed` times real time (0: at once)."""
    feed = venue.feed
    decoder = registry.spec(venue.sim.data_format).capture(venue.insts, feed)
    t0 = w0 = None
    n = 0
    for local, raw in _lines(path, feed):
        if venue.stopped():
            return
        n += 1
        if t0 is None:
            t0, w0 = local, time.monotonic_ns()
        if speed > 0:
            delay = (w0 + (local - t0) / speed - time.monotonic_ns()) / 1e9
            if delay > 0.0005 and await venue.wait_stopped(delay):
                return
        elif n % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        feed.shift_ns = time.time_ns() - local
        decoder.on_frame(raw, local)
        venue.maybe_snapshot()
    venue.maybe_snapshot(force=True)
    log.info("replay of %s finished: %d messages", path, n)
