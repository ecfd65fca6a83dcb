"""Bybit v5 public market data (linear), the asyncio side: one public WebSocket for every
instrument (venue_protocols.md §2.2).

On each connection (connector.transport.md, picows): subscribe `orderbook.{depth}.{SYMBOL}`
and `publicTrade.{SYMBOL}` for every instrument, then every frame goes to the decoder
(feed.BybitDecoder: market.py's book sync) and through the core's one feed path
(connector.feed). Around it:

* an application-level ping `{"req_id": "ping-N", "op": "ping"}` every `ping_interval_s`
  ([BY] asks for one every 20 s; the server's WS-protocol pings are answered in C);
* the stale watchdog: a connection with no message (data or pong) for `stale_after_s`
  is closed and reconnected (`MdConnection.wait_closed`);
* reconnects by `connector.reconnect.keep_connected` (backoff; bots told of the loss
  once and of the restore once); on a loss every book is cleared and the bots told
  (ERR_BOOK_RESYNC), the new connection subscribes again and each book waits for its
  snapshot;
* a gap the book sync detects (a delta before a snapshot, a `u` that does not grow,
  `seq` going back) resubscribes that topic: unsubscribe, then subscribe, on the same
  connection, for a fresh snapshot ([BY]: the first message after subscribing is a
  snapshot). UNCONFIRMED: that Bybit handles the two requests in the order sent; if it
  refuses the subscribe (e.g. "already subscribed"), the refusal drops the connection,
  and the reconnect subscribes everything afresh;
* a refused subscription drops the connection the same way (a wrong symbol shows as a
  connection that keeps failing, with the venue's message in the log and to the bots);
* the book snapshot a lagging bot resyncs from, every `snapshot_interval_ms`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

from connector.book import RecordingBook
from connector.bybit.feed import BybitDecoder
from connector.bybit.market import Reply, book_topic, request, subscribe_requests, trade_topic
from connector.feed import Feed
from connector.reconnect import keep_connected
from connector.transport.md import ERRORS as MD_ERRORS
from connector.transport.md import MdConnection
from connector.venue import Core

log = logging.getLogger(__name__)

NOTICE = "Bybit public market data stream"


class BybitInstrument(RecordingBook):
    """One instrument: the connector's book (on the venue's grid) and its two topics."""

    def __init__(self, idx: int, cfg, depth: int = 50):
        super().__init__(idx, cfg)
        self.book_topic = book_topic(depth, cfg.symbol)
        self.trade_topic = trade_topic(cfg.symbol)


class MarketData:
    """The public stream for every instrument; `run()` until cancelled.

    Args:
        section: the `[bybit]` section (BybitConfig): reads `ws_public_url`, `depth`,
            `ping_interval_s`, `stale_after_s`.
        insts: the instruments, by index (their symbols as Bybit spells them).
        core: the venue's Core.
        snapshot_interval_ms: how often the book snapshots for lagging bots are written.
        on_trade, on_book: the Feed's hooks (the sim's engine paper-trading this market);
            with a hook, the decoder's compiled direct-to-ring path is off and every level
            change is seen.

    Attributes:
        pings_sent / pongs: application-level pings sent and answered (all connections).
        resubscribes: topics resubscribed after a gap.
        connections: connections opened.
    """

    def __init__(self, section, insts: list[BybitInstrument], core: Core,
                 snapshot_interval_ms: int, on_trade=None, on_book=None):  # fmt: skip
        self.section = section
        self.insts = insts
        self.core = core
        self.snapshot_interval_s = snapshot_interval_ms / 1e3
        for s in insts:  # the topics follow the configured depth
            s.book_topic = book_topic(section.depth, s.symbol)
        self.url = section.ws_public_url
        self.topics = [t for s in insts for t in (s.book_topic, s.trade_topic)]
        self.feed = Feed(core, insts, on_need_snapshot=self._need_snapshot,
                         on_trade=on_trade, on_book=on_book)  # fmt: skip
        self.decoder = BybitDecoder(insts, self.feed, depth=section.depth, on_reply=self._on_reply)
        self.decoder.compile()
        self._conn: MdConnection | None = None
        self._ids = itertools.count(1)
        self._refused: str | None = None  # a refused (re)subscription: the connection goes
        self.pings_sent = self.pongs = self.resubscribes = self.connections = 0

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._stream())
            tg.create_task(self._snapshot_loop())

    async def _snapshot_loop(self) -> None:
        while True:
            for s in self.insts:
                self.core.write_snapshot(s.idx, s.book, s.exch_ts)
            await asyncio.sleep(self.snapshot_interval_s)  # [connector] snapshot_interval_ms

    async def _stream(self) -> None:
        def on_down(why: str) -> None:
            # a book that may have missed deltas is not kept; each waits for its snapshot
            self.decoder.reset("reconnect", time.time_ns())

        await keep_connected(NOTICE, self._connect_once, self.core, errors=MD_ERRORS,
                             on_down=on_down)  # fmt: skip

    async def _connect_once(self, up) -> str:
        conn = await MdConnection.open(self.url, self.decoder.on_frame)
        self.connections += 1
        self._refused = None
        self._conn = conn  # frames (and gaps) may come from here on
        pinger = None
        try:
            # [BY] §2.2: {"req_id", "op": "subscribe", "args": [topics]}; the first message
            # of each orderbook topic is then its snapshot
            for r in subscribe_requests("subscribe", self.topics, f"sub-{next(self._ids)}"):
                conn.send_text(r)
            await up()
            pinger = asyncio.create_task(self._ping_loop(conn))
            why = await conn.wait_closed(self.section.stale_after_s)
        except BaseException:
            if not conn.transport.is_disconnected:
                conn.transport.disconnect(graceful=False)
            raise
        finally:
            self._conn = None
            if pinger is not None:
                await self._stop(pinger)
        return self._refused or why

    @staticmethod
    async def _stop(pinger: asyncio.Task) -> None:
        pinger.cancel()
        try:
            await pinger
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise  # we are being cancelled too, not just the pinger

    async def _ping_loop(self, conn: MdConnection) -> None:
        """[BY] §2.2: an application-level ping every `ping_interval_s` (20 s advised)."""
        while True:
            await asyncio.sleep(self.section.ping_interval_s)
            conn.send_text(request("ping", f"ping-{next(self._ids)}"))
            self.pings_sent += 1

    def _on_reply(self, r: Reply) -> None:
        if r.is_pong:
            self.pongs += 1
        elif not r.success and r.op == "subscribe" and self._conn is not None:
            # the decoder logged it; a topic we are not subscribed to gets no data: start over
            self._refused = f"subscription refused: {r.ret_msg}"
            self._conn.transport.disconnect(graceful=False)

    def _need_snapshot(self, s: BybitInstrument) -> None:
        """A gap: resubscribe the book topic for a fresh snapshot. The sync drops deltas
        until it comes; no connection: the reconnect subscribes anyway."""
        conn = self._conn
        if conn is None:
            return
        self.resubscribes += 1
        log.info("%s: resubscribing %s for a fresh snapshot", s.symbol, s.book_topic)
        n = next(self._ids)
        conn.send_text(request("unsubscribe", f"unsub-{n}", [s.book_topic]))
        conn.send_text(request("subscribe", f"resub-{n}", [s.book_topic]))
