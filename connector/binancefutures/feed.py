"""Binance USD-M market frames into the connector's books (no I/O): the decoder the live
market streams and the sim's replay of a Binance capture both use (connector.feed).

Frames (venue_protocols.md §1.2-§1.4): combined-stream `depthUpdate`, `bookTicker` and
`trade`, and the REST depth snapshot (a capture holds it as a line of its own, naming no
symbol: it belongs to the book waiting for one). Each depthUpdate goes through `BookSync`
(Binance's documented local-book algorithm); its actions go to the Feed (a gap: the bots
are told; a snapshot needed: the owner fetches one). bookTicker becomes DEPTH_BBO events
(which, as in hftbacktest's backtester, do not change a bot's depth); MARKET trades
become trade events.

The hot kinds skip the dataclasses: bookTicker and MARKET trade frames of Binance's exact
shape go through `scan_ticker` straight to events (any frame it does not take goes
through the checked `parse_stream`), and a diff's levels are applied to the book and
recorded in one @njit call (`RecordingBook.apply_levels`). bench/bf_ingest.py measures it.
"""

from __future__ import annotations

import logging

import numpy as np

from connector.binancefutures.book_sync import BookSync, Gap, NeedSnapshot
from connector.binancefutures.protocol import (
    BOOK_TICKER,
    TRADE,
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    ErrorReply,
    Trade,
    parse_stream,
    scan_ticker,
)
from connector.book import ASK_BBO, BID_BBO, RecordingBook
from connector.errors import VenueProtocolError
from connector.feed import Feed
from hftlive.constants import BUY, BUY_EVENT, SELL
from hftlive.layout import event_dtype

log = logging.getLogger(__name__)


class BinanceDecoder:
    """Applies Binance market frames to `books` and reports through `feed`."""

    def __init__(self, books: list[RecordingBook], feed: Feed):
        self.books = books
        self.feed = feed
        self.syncs = [BookSync(b) for b in books]
        self.by_symbol = {b.symbol: b for b in books}
        self._by_wire = {b.symbol.upper().encode(): b for b in books}  # "s" as Binance sends it
        self._fast_ev = np.zeros(2, event_dtype)  # scan_ticker's events, published at once

    def compile(self) -> None:
        """Loads (or, on a first run, compiles: ~10 s) the @njit functions every frame uses,
        with the argument types frames bring, before any connection is opened."""
        scan_ticker(b"{}", self._fast_ev, 0)
        none = np.empty((0, 2))
        none.flags.writeable = False  # as parsed levels are
        for b in self.books:
            b.apply_levels(none, none)
            b.batch.n = 0

    def on_frame(self, raw: bytes, local_ns: int) -> None:
        """One frame from any market stream (or one line of a capture)."""
        ev = self._fast_ev
        kind, lo, hi, exch_ns = scan_ticker(raw, ev, local_ns)
        if kind == BOOK_TICKER or kind == TRADE:
            s = self._by_wire.get(raw[lo:hi])
            if s is not None:
                s.local_ts = local_ns
                s.exch_ts = exch_ns
                feed = self.feed
                if feed.shift_ns or feed.on_trade is not None:
                    self._fast(s, kind)  # a replay: shifted times, trades to the engine
                else:  # live: the hot path, straight to the ring
                    feed.publish_now(s.idx, ev, 2 if kind == BOOK_TICKER else 1)
                return
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

    def _fast(self, s: RecordingBook, kind: int) -> None:
        ev = self._fast_ev
        if kind == BOOK_TICKER:
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
