"""Binance USD-M market frames into the connector's books (no I/O): the decoder the live
market streams and the sim's replay of a Binance capture both use (connector.feed).

Frames (venue_protocols.md §1.2-§1.4): combined-stream `depthUpdate`, `bookTicker` and
`trade`, and the REST depth snapshot (a capture holds it as a line of its own, naming no
symbol: it belongs to the book waiting for one). Each depthUpdate goes through `BookSync`
(Binance's documented local-book algorithm); its actions go to the Feed (a gap: the bots
are told; a snapshot needed: the owner fetches one). bookTicker becomes DEPTH_BBO events
(which, as in hftbacktest's backtester, do not change a bot's depth); MARKET trades
become trade events.

The hot path is one compiled call per frame (`_ingest.ingest_frame`): bookTicker, MARKET
trade and chained depthUpdate frames of Binance's exact shape go from bytes to the book
and the market ring without a Python object (the core's `direct_rings`; the feed
recorder is handed each batch after it). Any frame it does not take goes through the
checked `parse_stream` and `BookSync`, which name what is malformed, buffer diffs while
waiting for a snapshot and detect gaps; so does every frame of a replay or of a feed
with hooks, whose events go through the Feed. bench/bf_ingest.py measures it.
"""

from __future__ import annotations

import logging

import numpy as np

from connector.binancefutures._ingest import (
    B_CHAIN,
    B_COLS,
    B_SYM,
    B_SYM_LEN,
    PUBLISHED,
    TICKER_EVENTS,
    TRADE_EVENTS,
    ingest_frame,
    symbol_words,
)
from connector.binancefutures.book_sync import BookSync, Gap, NeedSnapshot
from connector.binancefutures.protocol import (
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    ErrorReply,
    Trade,
    parse_stream,
)
from connector.book import ASK_BBO, BID_BBO, RecordingBook
from connector.errors import VenueProtocolError
from connector.feed import Feed
from connector.ingest import I_COLS, ingest_table
from hftlive.constants import BUY, BUY_EVENT, SELL
from hftlive.layout import event_dtype

log = logging.getLogger(__name__)

OUT_EVENTS = 4096  # a diff with more levels (ETHUSDT's average 65) takes the checked path


class BinanceDecoder:
    """Applies Binance market frames to `books` and reports through `feed`."""

    def __init__(self, books: list[RecordingBook], feed: Feed):
        self.books = books
        self.feed = feed
        self.by_symbol = {b.symbol: b for b in books}
        # events ingest_frame writes: a frame's, published or handed to the Feed
        self._out = np.zeros(OUT_EVENTS, event_dtype)
        # the table of ingest_frame: a row per instrument (see _ingest)
        tab, self._after, _ = ingest_table(books, feed, self._out, B_COLS - I_COLS)
        tab[:, B_CHAIN] = -1
        for b in books:
            words = symbol_words(b.symbol.upper().encode())  # "s" as Binance sends it
            if words is not None:  # else its frames take the checked path
                tab[b.idx, B_SYM_LEN] = len(b.symbol)
                tab[b.idx, B_SYM:B_COLS] = words
        self._tab = tab
        self.syncs = [BookSync(b, chain=tab[b.idx, B_CHAIN : B_CHAIN + 1]) for b in books]

    def compile(self) -> None:
        """Loads (or, on a first run, compiles: ~10 s) the @njit functions every frame uses,
        with the argument types frames bring, before any connection is opened."""
        ingest_frame(b"{}", 0, self._tab, 0)
        none = np.empty((0, 2))
        none.flags.writeable = False  # as parsed levels are
        for b in self.books:
            b.apply_levels(none, none)
            b.batch.n = 0

    def on_frame(self, raw: bytes, local_ns: int) -> None:
        """One frame from any market stream (or one line of a capture)."""
        code, i, n, exch_ns = ingest_frame(raw, local_ns, self._tab, self.feed.shift_ns)
        if code == PUBLISHED:  # live: the events are in the ring
            s = self.books[i]
            s.local_ts = local_ns
            s.exch_ts = exch_ns
            if self._after is not None:
                self._after(i, self._out, n)  # the feed recorder
        elif code == TICKER_EVENTS or code == TRADE_EVENTS:
            s = self.books[i]  # a replay (shifted times, trades to the engine) or hooks
            s.local_ts = local_ns
            s.exch_ts = exch_ns
            self._fast(s, code)
        else:
            self._checked(raw, local_ns)

    def _checked(self, raw: bytes, local_ns: int) -> None:
        """Any frame the scanner did not take: the checked parser, which names what is
        wrong with a malformed one."""
        try:
            msg = parse_stream(raw)
        except VenueProtocolError as e:
            self.feed.bad(str(e))
            return
        feed = self.feed
        if isinstance(msg, DepthUpdate):
            s = self.by_symbol.get(msg.symbol)
            if s is None:
                return  # a symbol this connector does not serve
            feed.stamp(s, local_ns, msg.transact_ts_ns)
            self._actions(s, self.syncs[s.idx].on_diff(msg))
            feed.publish(s)
        elif isinstance(msg, BookTicker):
            s = self.by_symbol.get(msg.symbol)
            if s is None:
                return
            feed.stamp(s, local_ns, msg.transact_ts_ns)
            s.batch.add2(BID_BBO, msg.bid_px, msg.bid_qty, ASK_BBO, msg.ask_px, msg.ask_qty,
                         s.exch_ts, s.local_ts)  # fmt: skip
            feed.publish(s)
        elif isinstance(msg, Trade):
            s = self.by_symbol.get(msg.symbol)
            if s is None or msg.trade_type != "MARKET":
                return  # as hftbacktest: only market trades print
            feed.stamp(s, local_ns, msg.transact_ts_ns)
            # [BN] m = buyer is maker: the taker sold
            feed.trade(s, SELL if msg.buyer_is_maker else BUY, msg.px, msg.qty)
        elif isinstance(msg, DepthSnapshot):
            # a capture's REST snapshot line names no symbol: the book waiting takes it
            for s, sync in zip(self.books, self.syncs):
                if sync.state != "SYNCED":
                    self.on_snapshot(s, msg, local_ns)
        elif isinstance(msg, ErrorReply):
            log.error("market stream: venue error %d: %s", msg.code, msg.msg)

    def _fast(self, s: RecordingBook, code: int) -> None:
        ev = self._out
        if code == TICKER_EVENTS:
            self.feed.publish_events(s, ev, 2)
            return
        self.feed.publish_events(s, ev, 1)
        if self.feed.on_trade is not None:
            e = ev[0]
            side = BUY if int(e["ev"]) & BUY_EVENT else SELL
            self.feed.on_trade(s, side, float(e["px"]), float(e["qty"]))

    def on_snapshot(self, s: RecordingBook, snap: DepthSnapshot, local_ns: int) -> None:
        """[BN-OB] step 3: a REST depth snapshot for `s`."""
        self.feed.stamp(s, local_ns, snap.transact_ts_ns)
        sync = self.syncs[s.idx]
        actions = sync.on_snapshot(snap)
        self.feed.publish(s)
        if sync.state == "SYNCED":
            log.info("%s: book synced at update id %d", s.symbol, sync.last_update_id)
        self._actions(s, actions)
        self.feed.publish(s)

    def reset(self, why: str, now_ns: int) -> None:
        """Every book cleared (the stream was lost): a snapshot is needed again."""
        for s, sync in zip(self.books, self.syncs):
            s.local_ts = s.exch_ts = now_ns
            sync.reset(why)
            self.feed.gap(s, f"book reset ({why})")

    def _actions(self, s: RecordingBook, actions) -> None:
        for a in actions:
            if isinstance(a, NeedSnapshot):
                self.feed.need_snapshot(s)
            elif isinstance(a, Gap):
                self.feed.gap(s, f"depth gap (expected pu {a.expected_pu}, got {a.got_pu})")


def capture_decoder(books: list[RecordingBook], feed: Feed) -> BinanceDecoder:
    """The registry's `capture` entry: lines of a Binance capture for the sim's replay."""
    d = BinanceDecoder(books, feed)
    d.compile()
    return d
