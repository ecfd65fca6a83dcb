"""The one path market data takes into shared memory, for every venue and for the sim's
replay of a venue's capture.

    frame -> the venue's decoder (parse, book sync) -> RecordingBook (book + events)
          -> Feed: one batch per frame and instrument -> Core.publish
                   a gap or reset -> Core.book_reset (bots told, counted)
                   a trade -> the owner's `on_trade` (the sim's matching engine)
                   a book change -> the owner's `on_book` (the sim's matching engine)
                   a snapshot needed -> the owner's `on_need_snapshot` (a live venue: REST)

A venue's hot path may skip the Feed: with `direct_rings()` (a live feed with no hook) a
compiled decoder writes a frame's batch straight into the instrument's ring, under the
same rules (one atomic batch per frame, counted, the recorder handed it after), and
comes back here for everything else (a venue's `_ingest` module, where it has one).

A decoder is venue code with no I/O: it turns one frame into changes of the books
(`RecordingBook.set_bid`/`set_ask`/`apply_levels`/`clear`, which record the events) and
tells the Feed what happened through the calls below. Timestamps: a live frame's local
time is its receive time; a replayed frame is shifted to now (`shift_ns`), keeping the
latency it had in the capture.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from connector.book import BUY_TRADE, SELL_TRADE, RecordingBook
from connector.venue import Core
from hftlive.constants import BUY

log = logging.getLogger(__name__)


class Feed:
    """Publishes what a decoder did to the books of one venue session.

    Args:
        core: the venue's Core.
        books: the instruments' RecordingBooks, by instrument index.
        on_trade: `(book, aggressor_side, px, qty)` after a trade was published.
        on_book: `(book)` after a book change was published.
        on_need_snapshot: `(book)` when the book sync asks for a snapshot.
    """

    def __init__(self, core: Core, books: list[RecordingBook], *,
                 on_trade: Callable | None = None, on_book: Callable | None = None,
                 on_need_snapshot: Callable | None = None):  # fmt: skip
        self.core = core
        self.books = books
        self.on_trade = on_trade
        self.on_book = on_book
        self.on_need_snapshot = on_need_snapshot
        self.shift_ns = 0  # added to every timestamp: a replay's "now minus then"

    def direct_rings(self):
        """The core's `direct_rings()` for a decoder's compiled hot path, or None when a hook
        must see what is published (on_trade, on_book). A decoder using them publishes
        there only while `shift_ns` is 0, and goes through this Feed otherwise."""
        if self.on_trade is not None or self.on_book is not None:
            return None
        return self.core.direct_rings()

    def stamp(self, s: RecordingBook, local_ns: int, exch_ns: int) -> None:
        """The times of the events a frame is about to record (a venue that stamps a
        time later than it received the frame gets zero latency, never a negative one)."""
        s.local_ts = local_ns + self.shift_ns
        s.exch_ts = min(exch_ns, local_ns) + self.shift_ns if self.shift_ns else exch_ns

    def publish(self, s: RecordingBook) -> None:
        """The batch a frame recorded for `s`, as one update."""
        b = s.batch
        if b.n:
            self.core.publish(s.idx, b.ev, b.n)
            b.n = 0
            if self.on_book is not None:
                self.on_book(s)

    def publish_events(self, s: RecordingBook, ev: np.ndarray, n: int) -> None:
        """Events a decoder wrote itself (a fast path that skips the book)."""
        if self.shift_ns:
            ev["local_ts"][:n] += self.shift_ns
            ev["exch_ts"][:n] = np.minimum(ev["exch_ts"][:n] + self.shift_ns, ev["local_ts"][:n])
        self.core.publish(s.idx, ev, n)

    def trade(self, s: RecordingBook, aggressor: int, px: float, qty: float) -> None:
        s.batch.add(BUY_TRADE if aggressor == BUY else SELL_TRADE, s.exch_ts, s.local_ts, px, qty)
        self.core.publish(s.idx, s.batch.ev, s.batch.n)
        s.batch.n = 0
        if self.on_trade is not None:
            self.on_trade(s, aggressor, px, qty)

    def gap(self, s: RecordingBook, why: str) -> None:
        """The book of `s` was cleared and is resynchronising: bots are told."""
        log.warning("%s: %s: book cleared, resyncing", s.symbol, why)
        self.publish(s)
        self.core.book_reset(s.idx, why)

    def need_snapshot(self, s: RecordingBook) -> None:
        if self.on_need_snapshot is not None:
            self.on_need_snapshot(s)

    def bad(self, what: str, inst: int = -1) -> None:
        """A malformed frame was skipped."""
        log.warning("malformed market message skipped: %s", what)
        self.core.bad_message(inst)
