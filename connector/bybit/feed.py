"""Bybit public frames into the connector's books (no I/O): the decoder the live public
stream (marketdata.MarketData) and the sim's replay of a Bybit capture both use.

    frame -> market.parse_public -> orderbook: BookSync (market.py's table) writes the
                                      RecordingBook; Feed.publish: one batch per frame
                                      a GAP: Feed.gap (bots told, counted) and
                                      Feed.need_snapshot (the owner resubscribes)
                                    publicTrade: Feed.trade per trade (S = taker side)
                                    a reply: `on_reply` (pongs, subscribe results)
          malformed -> Feed.bad (counted, skipped; the book is untouched)

Exchange time of a book frame is `cts` (matching-engine time), of a trade its `T`.

The hot path is one compiled call per frame (`_ingest.ingest_frame`): orderbook snapshots
and deltas that BookSync's table applies without asking anything of Python, and trade
frames, of Bybit's exact shape, go from bytes to the book and the market ring without a
Python object (the core's `direct_rings`; the feed recorder is handed each batch after
it), reading and advancing BookSync's own state (its sync cell). Any other frame goes
through `parse_public` and BookSync above, which name what is malformed and handle gaps;
so does every frame of a replay or of a feed with hooks. bench/bybit_ingest.py measures it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from connector.book import RecordingBook
from connector.bybit._ingest import (
    FALLBACK,
    RESET,
    TRADES,
    Y_BOOK,
    Y_BOOK_LEN,
    Y_COLS,
    Y_DEPTH1,
    Y_SYM_AT,
    Y_SYNC,
    Y_TRADE,
    Y_TRADE_LEN,
    ingest_frame,
    topic_words,
)
from connector.bybit.market import (
    GAP,
    BookFrame,
    BookSync,
    Reply,
    TradeFrame,
    book_topic,
    parse_public,
    reset_why,
    trade_topic,
)
from connector.errors import VenueProtocolError
from connector.feed import Feed
from connector.ingest import I_COLS, ingest_table
from hftlive.layout import event_dtype

log = logging.getLogger(__name__)

OUT_EVENTS = 4096  # a frame with more levels or trades takes the checked path


class BybitDecoder:
    """Applies Bybit public frames to `books` and reports through `feed`.

    Args:
        books: the instruments' RecordingBooks, by instrument index; symbols as Bybit
            spells them (BTCUSDT).
        feed: the session's Feed.
        depth: the orderbook depth subscribed (frames of another depth are ignored); None
            takes, per symbol, the first depth seen (a capture holding several).
        on_reply: `(market.Reply)` for every reply to a request (pong, subscribe result).
    """

    def __init__(self, books: list[RecordingBook], feed: Feed, depth: int | None = None,
                 on_reply: Callable[[Reply], None] | None = None):  # fmt: skip
        self.books = books
        self.feed = feed
        self.on_reply = on_reply
        # events ingest_frame writes; its table: a row per instrument (see _ingest)
        self._out = np.zeros(OUT_EVENTS, event_dtype)
        tab, self._after, self._direct = ingest_table(books, feed, self._out, Y_COLS - I_COLS)
        self._tab = tab
        self.syncs = [BookSync(b, cell=tab[b.idx, Y_SYNC : Y_SYNC + 3]) for b in books]
        self.by_symbol = {b.symbol.upper(): b for b in books}
        # topic -> (book, its sync): the one orderbook topic each symbol is kept from
        self.by_topic: dict[str, tuple[RecordingBook, BookSync]] = {}
        if depth is not None:
            for b, sync in zip(books, self.syncs):
                self.by_topic[book_topic(depth, b.symbol)] = (b, sync)
        self._any_depth = depth is None
        self.gaps = 0
        for b in books:  # the topics the compiled path may take: those the dicts map to b
            row = tab[b.idx]
            t = trade_topic(b.symbol)
            words = topic_words(t)
            if words is not None and self.by_symbol[b.symbol.upper()] is b:
                row[Y_TRADE_LEN] = len(t)
                row[Y_TRADE:Y_COLS] = words
            t = book_topic(depth, b.symbol) if depth is not None else ""
            words = topic_words(t)
            if t and words is not None and self.by_topic[t][0] is b and t.count(".") == 2:
                row[Y_BOOK_LEN] = len(t)
                row[Y_BOOK:Y_TRADE_LEN] = words
                row[Y_SYM_AT] = t.rindex(".") + 1
                row[Y_DEPTH1] = depth == 1

    def compile(self) -> None:
        """Loads (or compiles, on a first run) the @njit functions frames use, before any
        connection is opened."""
        parse_public(b'{"topic":"orderbook.1.X","type":"snapshot","ts":1,"cts":1,'
                     b'"data":{"s":"X","b":[["1.5","2"]],"a":[],"u":1,"seq":1}}')  # fmt: skip
        ingest_frame(b"{}", 0, self._tab)
        none = np.empty((0, 2))
        none.flags.writeable = False  # as parsed levels are
        for b in self.books:
            b.apply_levels(none, none)
            b.batch.n = 0

    def on_frame(self, raw: bytes, local_ns: int) -> None:
        """One frame of the public stream (or one line of a capture)."""
        if self._direct and self.feed.shift_ns == 0 and type(raw) is bytes:
            code, i, lo, n, exch_ns = ingest_frame(raw, local_ns, self._tab)
            if code != FALLBACK:  # live: the book applied and the events in the ring
                s = self.books[i]
                s.local_ts = local_ns
                s.exch_ts = exch_ns
                if code == RESET:
                    sync = self.syncs[i]
                    sync.why = reset_why(sync.last_u)
                after = self._after
                if after is not None:  # the feed recorder, batch by batch
                    if code == TRADES:
                        for k in range(n):
                            after(i, self._out[k:], 1)
                    elif n:
                        after(i, self._out[lo:], n)
                return
        self._checked(raw, local_ns)

    def _checked(self, raw: bytes, local_ns: int) -> None:
        """Any frame the compiled path did not take: the checked parser, which names what
        is wrong with a malformed one, and BookSync."""
        try:
            f = parse_public(raw)
        except VenueProtocolError as e:
            self.feed.bad(str(e))
            return
        if type(f) is BookFrame:
            entry = self.by_topic.get(f.topic)
            if entry is None:
                entry = self._new_topic(f)
                if entry is None:
                    return
            s, sync = entry
            feed = self.feed
            feed.stamp(s, local_ns, f.cts_ns)
            if sync.on_frame(f) == GAP:
                self.gaps += 1
                feed.gap(s, f"{f.topic}: {sync.why}")  # publishes the clear, tells the bots
                feed.need_snapshot(s)
            else:
                feed.publish(s)
        elif type(f) is TradeFrame:
            s = self.by_symbol.get(f.symbol)
            if s is None:
                return
            feed = self.feed
            for t_ns, side, px, qty in f.trades:
                feed.stamp(s, local_ns, t_ns)
                feed.trade(s, side, px, qty)
        elif type(f) is Reply:
            if not f.success:
                log.error("public stream: %s refused: %s (req_id %s)", f.op, f.ret_msg, f.req_id)
            if self.on_reply is not None:
                self.on_reply(f)

    def _new_topic(self, f: BookFrame) -> tuple[RecordingBook, BookSync] | None:
        if not self._any_depth:
            return None  # a depth or symbol not subscribed
        s = self.by_symbol.get(f.symbol)
        if s is None or any(b is s for b, _ in self.by_topic.values()):
            return None  # another depth of a symbol already kept from its first one
        entry = (s, self.syncs[s.idx])
        self.by_topic[f.topic] = entry
        return entry

    def reset(self, why: str, now_ns: int) -> None:
        """Every book cleared (the stream was lost): each waits for its snapshot again."""
        for s, sync in zip(self.books, self.syncs):
            s.local_ts = s.exch_ts = now_ns
            sync.reset(why)
            self.feed.gap(s, f"book reset ({why})")


def capture_decoder(books: list[RecordingBook], feed: Feed) -> BybitDecoder:
    """The registry's `capture` entry: lines of a Bybit capture for the sim's replay (each
    symbol's book is kept from the first orderbook depth the capture shows for it)."""
    d = BybitDecoder(books, feed)
    d.compile()
    return d
