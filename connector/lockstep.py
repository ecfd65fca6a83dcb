"""The replay clock a sim connector shares with its bots: a lockstep replay.

With `[sim] clock = "replay"` the connector replays its capture in the capture's own time,
and that time is every bot's clock (`current_timestamp`, `elapse`, `wait_*` timeouts,
order timestamps). The replay waits for the bots, so nothing depends on wall-clock speed
or on scheduling: two runs of a strategy on a capture are the same run.

Protocol (words in the control segment, hftlive.layout; the bot side is
hftlive.botfn._spin_replay):

* The connector works in rounds. `ls_gen` is odd while it writes a round (market events,
  order responses, the clock `clock_ns`) and even when the round is done. A bot only
  looks at an even round, reading `ls_gen` before and after what it reads.
* A waiting bot that has read everything of the current round and whose wait is not over
  parks: its slot's `ls_until` = the replay time its wait ends at, then `ls_parked` = the
  round. It leaves the wait only when a later round brings it something.
* When every registered bot is parked at the current round, the connector starts the
  next: the bots' pending requests first, handled at the current time, in a round of their
  own (their responses are seen before time moves); otherwise time moves to the earliest
  of the next capture message, the earliest parked deadline and the order engine's next
  due event, and everything up to that time is published. (hftbacktest's exchange model
  is shown the market up to that time first, at each event's exchange time, and may
  bring the time nearer: connector.sim.exchange_view.)

The replay does not start before a bot is parked, and it waits for every registered bot
(one that never waits again holds it until it leaves). Requests reach the connector only
through rounds: the doorbell's drain is held (Router.hold).
"""

from __future__ import annotations

import asyncio

from hftlive.ipc import load_word, store_word
from hftlive.layout import (
    CLOCK_REPLAY,
    CTL_CLOCK_MODE,
    CTL_CLOCK_NS,
    CTL_LS_GEN,
    S_LS_PARKED,
    S_LS_UNTIL,
)

SPIN = 2000  # polls of the bots' slots (each yielding to the event loop) before sleeping
IDLE_S = 0.0002


class Lockstep:
    def __init__(self, shm, router):
        self._w = shm.ctl.words
        self._slots = shm.ctl.slot_words
        self.router = router
        self.gen = 2  # even: no round being written
        store_word(self._w, CTL_CLOCK_NS, 0)
        store_word(self._w, CTL_LS_GEN, self.gen)
        store_word(self._w, CTL_CLOCK_MODE, CLOCK_REPLAY)
        router.now_ns = self.now
        router.hold = True  # requests are handled in rounds only

    def now(self) -> int:
        """The replay's time, ns."""
        return int(self._w[CTL_CLOCK_NS])

    def set_clock(self, t: int) -> None:
        store_word(self._w, CTL_CLOCK_NS, t)

    def begin(self) -> None:
        """A round starts: the bots look away."""
        self.gen += 1
        store_word(self._w, CTL_LS_GEN, self.gen)

    def end(self) -> None:
        """The round is written: the bots may look."""
        self.gen += 1
        store_word(self._w, CTL_LS_GEN, self.gen)

    def parked(self) -> int | None:
        """The earliest deadline the bots wait for, if every registered bot is parked at
        the current round; None while one is not (or no bot is registered)."""
        bots = self.router.bots
        if not bots:
            return None
        until = None
        for b in bots.values():
            words = self._slots[b.slot]
            if load_word(words, S_LS_PARKED) != self.gen:
                return None
            u = int(words[S_LS_UNTIL])
            until = u if until is None else min(until, u)
        return until

    async def settle(self, stopped) -> int | None:
        """Waits until every bot is parked; their earliest deadline, or None if stopped."""
        n = 0
        while not stopped():
            until = self.parked()
            if until is not None:
                return until
            n += 1
            await asyncio.sleep(0 if n < SPIN else IDLE_S)
        return None

    def requests(self) -> int:
        """Handles the bots' pending requests at the current time; how many there were."""
        return self.router.drain(force=True)
