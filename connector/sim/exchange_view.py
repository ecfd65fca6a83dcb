"""The exchange's own view of a replayed capture: every market event at its exchange time.

On the replay clock (`[sim] clock = "replay"`, connector.lockstep) with hftbacktest's
exchange model (`[sim] exchange`, connector.sim.hbt), the bots see a market event at its
receive time (local_ts) and the exchange must see it at its exchange time (exch_ts), as
in hftbacktest's backtest, where the exchange processor reads the events in exch_ts order
and the local processor in local_ts order (its converter keeps both orders of one file).
A capture is in receive order and an event reaches the venue's books a feed latency
before it reaches ours, so the exchange reads the capture ahead of the bots:

* each line is decoded twice, by the same decoder (the venue's registry `capture` entry,
  its book sync included): once when it is read, LOOKAHEAD_NS of receive time before the
  replay publishes it, into books of this view whose level changes, trades and clears
  are kept as the exchange's events, stamped with the line's exch_ts; and once when the
  replay's clock reaches its receive time, into the connector's books and the bots'
  rings (connector.sim.replay.run_lockstep);
* the exchange's events wait in a heap ordered by (exch_ts, line): hftbacktest's stable
  sort by exch_ts. `run_until(t)` hands the exchange every event stamped up to t, and
  the replay's clock never passes an event the exchange has not seen.

An event whose feed latency exceeds LOOKAHEAD_NS is read after the exchange's time has
passed it: it is handed over as soon as it is read, out of order, and counted (`late`,
logged at the end). This capture's latencies spread over ~90 ms.
"""

from __future__ import annotations

import heapq
import logging
from collections import deque

from connector.book import RecordingBook
from connector.feed import Feed

log = logging.getLogger(__name__)

LOOKAHEAD_NS = 10_000_000_000  # receive time read ahead of the bots' clock

DEPTH, TRADE, CLEAR = 0, 1, 2


def _seen(s: RecordingBook) -> int:
    """When the exchange sees a line's events: its exch_ts, but never after we received
    it (a capture whose receive clock lags the venue's, as this one's does by ~1.27 s,
    would have the exchange see the market after the bots; the wall-clock replay clamps
    the same way, connector.feed.Feed.stamp)."""
    return min(s.exch_ts, s.local_ts)


class _ExchBook(RecordingBook):
    """An instrument's book as the exchange sees it: its level changes are the exchange's
    depth events (the batch of events for the bots is dropped)."""

    def __init__(self, idx: int, cfg):
        super().__init__(idx, cfg)
        self.pending: list[tuple] = []  # the current line's events, (kind, side, px, qty)

    def on_level(self, side: int, tick: int, qty: float) -> None:
        self.pending.append((DEPTH, side, tick * self.tick_size, qty))

    def clear(self) -> None:
        super().clear()
        self.pending.append((CLEAR, 0, 0.0, 0.0))


class _ExchFeed(Feed):
    """What the decoder tells the Feed, for the exchange: nothing is published (the
    replay's own pass publishes, reports bad lines and gaps); a line's events go to the
    view, stamped with the line's exch_ts."""

    def __init__(self, view: ExchangeView, books: list[_ExchBook]):
        super().__init__(None, books, on_trade=self._trade)
        self.view = view

    def publish(self, s: RecordingBook) -> None:
        s.batch.n = 0
        if s.pending:
            self.view.push(s.idx, _seen(s), list(s.pending))
            s.pending.clear()

    def publish_events(self, s: RecordingBook, ev, n: int) -> None:
        pass  # a bookTicker's BBO (hftbacktest's exchange takes depth and trades) or a
        # trade's event, whose trade reaches `_trade`

    def trade(self, s: RecordingBook, aggressor: int, px: float, qty: float) -> None:
        s.batch.n = 0
        self._trade(s, aggressor, px, qty)

    def _trade(self, s: RecordingBook, aggressor: int, px: float, qty: float) -> None:
        self.publish(s)  # anything the line did before
        self.view.push(s.idx, _seen(s), [(TRADE, aggressor, px, qty)])

    def gap(self, s: RecordingBook, why: str) -> None:
        self.publish(s)

    def need_snapshot(self, s: RecordingBook) -> None:
        pass  # a capture carries its snapshots

    def bad(self, what: str, inst: int = -1) -> None:
        pass  # reported once, by the replay's own pass


class ExchangeView:
    """Reads a capture ahead of the replay for the venue's hbt markets (connector.sim.hbt
    HbtMarket, one per instrument, by index) and hands them its events in exch_ts order.

    Args:
        instruments: the instruments' configs (tick and lot size, symbol), by index.
        markets: the HbtMarket of each instrument.
        capture: the venue's capture decoder factory (connector.registry `capture`).
        lines: the capture's (receive ns, raw line) pairs, in order.
    """

    def __init__(self, instruments, markets, capture, lines):
        self.markets = markets
        books = [_ExchBook(i, c) for i, c in enumerate(instruments)]
        self._decoder = capture(books, _ExchFeed(self, books))
        self._lines = lines
        self._read: deque[tuple[int, bytes]] = deque()  # read ahead, not yet published
        self._heap: list[tuple[int, int, int, list]] = []
        self._seq = 0
        self._done = False
        self.now = None  # the exch_ts of the last events handed over
        self.late = 0  # events handed over after a later one (feed latency > LOOKAHEAD_NS)

    def push(self, idx: int, exch_ts: int, events: list) -> None:
        if self.now is not None and exch_ts < self.now:
            self.late += len(events)
        self._seq += 1
        heapq.heappush(self._heap, (exch_ts, self._seq, idx, events))

    # the replay's lines, each decoded here before the replay publishes it

    def _read_one(self) -> bool:
        line = None if self._done else next(self._lines, None)
        if line is None:
            self._done = True
            return False
        self._read.append(line)
        self._decoder.on_frame(line[1], line[0])
        return True

    def _read_until(self, local_ns: int) -> None:
        while (not self._read or self._read[-1][0] <= local_ns) and self._read_one():
            pass

    def peek(self) -> tuple[int, bytes] | None:
        """The next line for the replay to publish (receive ns, raw), None at the end."""
        if not self._read and not self._read_one():
            return None
        return self._read[0]

    def pop(self) -> None:
        """The line `peek` gave was published."""
        self._read.popleft()

    # the exchange's time

    def next_event_ns(self, horizon_ns: int) -> int | None:
        """The exch_ts of the exchange's next event, having read the capture up to
        `horizon_ns` + LOOKAHEAD_NS of receive time."""
        self._read_until(horizon_ns + LOOKAHEAD_NS)
        return self._heap[0][0] if self._heap else None

    def hand_over(self, ts: int) -> None:
        """Every event stamped up to `ts` to its exchange, in (exch_ts, line) order."""
        heap = self._heap
        while heap and heap[0][0] <= ts:
            exch_ts, _, idx, events = heapq.heappop(heap)
            m = self.markets[idx]
            for kind, side, px, qty in events:
                # seen at its exch_ts: no feed latency between the event and the exchange
                if kind == DEPTH:
                    m.depth(side, px, qty, exch_ts, exch_ts)
                elif kind == TRADE:
                    m.trade(side, px, qty, exch_ts, exch_ts)
                else:
                    m.clear(exch_ts)
            self.now = exch_ts if self.now is None else max(self.now, exch_ts)

    def finish(self) -> None:
        if self.late:
            log.warning("%d market events reached the exchange late: their feed latency "
                        "exceeds the replay's lookahead (%.0f s)", self.late, LOOKAHEAD_NS / 1e9)  # fmt: skip

