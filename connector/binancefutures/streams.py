"""Binance USD-M futures WebSocket streams: the market-data connections, and user data.

Market data (venue_protocols.md §1.2-§1.4): one combined-stream connection on the
`/public` route (`<sym>@depth@0ms` or `@<n>ms`, `<sym>@bookTicker`) and one on `/market`
(`<sym>@trade`): the routes must not share a connection. Every frame goes to the decoder
(feed.BinanceDecoder) and from there through the core's one feed path (connector.feed);
the I/O here answers its requests: a snapshot needed -> GET /fapi/v1/depth. A stream
silent for `stale_after_s` is dropped and reconnected (the watchdog); a lost connection
resets the books, and reconnects follow `connector.reconnect` (backoff, the bots told of
a loss and of a restore once). The market connections run on picows
(`connector.transport.md`: frames handed over inside the socket read, pings answered in
C).

User data (§1.5): POST a listenKey, connect `/private/ws?listenKey=..`, PUT keepalive
every 30 minutes; `listenKeyExpired` or -1125 -> a new key and a new connection.
ORDER_TRADE_UPDATE and ACCOUNT_UPDATE go to `orders.BinanceOrders`. On every (re)connect,
open orders, missed fills and positions are reconciled by REST before the stream is read
and the instruments' `connected` flag in shared memory is set again.
"""

from __future__ import annotations

import asyncio
import logging
import time

import websockets
from websockets.asyncio.client import connect

from connector.binancefutures.feed import BinanceDecoder
from connector.binancefutures.protocol import (
    AccountUpdate,
    ListenKeyExpired,
    OrderTradeUpdate,
    parse_depth_snapshot,
    parse_stream,
)
from connector.binancefutures.rest import RequestFailed, RestClient
from connector.book import (
    RecordingBook,
)
from connector.errors import VenueProtocolError
from connector.feed import Feed
from connector.reconnect import backoff, keep_connected
from connector.transport.md import ERRORS as MD_ERRORS
from connector.transport.md import MdConnection

log = logging.getLogger(__name__)

KEEPALIVE_S = 30 * 60  # [HBT] keepalive every 30 min; a key lives 60 min (§1.5)
# The user stream is quiet when nothing trades, so only pings show it is alive: a
# half-dead connection (no FIN, no RST) is noticed within ping_interval + ping_timeout
# (30 s) and replaced; its missed events are then reconciled (fills from userTrades).
WS_OPTS = {"ping_interval": 20.0, "ping_timeout": 10.0, "max_size": None, "compression": None,
           "open_timeout": 10.0, "close_timeout": 1.0}  # fmt: skip


class MdInstrument(RecordingBook):
    """One instrument: the connector's book (on the venue's grid) and its snapshot state."""

    def __init__(self, idx: int, cfg):
        super().__init__(idx, cfg)
        self.upper = cfg.symbol.upper()
        self.fetching = False  # a depth snapshot request is under way
        self.refetch = False  # BookSync asked again meanwhile


class MarketData:
    """Market streams for every instrument; `run()` until cancelled. Frames go through
    the venue's decoder (feed.BinanceDecoder) into the core's Feed. `on_trade`/`on_book`
    are the Feed's hooks (the sim's engine paper-trading this market); with a hook, the
    decoder's compiled direct-to-ring path is off and every level change is seen."""

    def __init__(self, bf, insts: list[MdInstrument], core, rest: RestClient,
                 snapshot_interval_ms: int, on_trade=None, on_book=None):  # fmt: skip
        self.bf = bf
        self.insts = insts
        self.core = core
        self.rest = rest
        self.snapshot_interval_s = snapshot_interval_ms / 1e3
        self._tg: asyncio.TaskGroup | None = None
        self.feed = Feed(core, insts, on_need_snapshot=self._need_snapshot,
                         on_trade=on_trade, on_book=on_book)  # fmt: skip
        self.decoder = BinanceDecoder(insts, self.feed)
        depth = "depth" if bf.depth_interval_ms == 250 else f"depth@{bf.depth_interval_ms}ms"
        pub = [f"{s.symbol}@{n}" for s in insts for n in (depth, "bookTicker")]
        mkt = [f"{s.symbol}@trade" for s in insts]
        self.public_url = f"{bf.ws_public_url.rstrip('/')}/stream?streams={'/'.join(pub)}"
        self.market_url = f"{bf.ws_market_url.rstrip('/')}/stream?streams={'/'.join(mkt)}"
        self.decoder.compile()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            tg.create_task(self._stream("public", self.public_url, self.decoder.on_frame))
            tg.create_task(self._stream("market", self.market_url, self.decoder.on_frame))
            tg.create_task(self._snapshot_loop())

    async def _snapshot_loop(self) -> None:
        while True:
            for s in self.insts:
                self.core.write_snapshot(s.idx, s.book, s.exch_ts)
            await asyncio.sleep(self.snapshot_interval_s)  # [connector] snapshot_interval_ms

    async def _stream(self, route: str, url: str, on_frame) -> None:
        async def connect_once(up) -> str:
            conn = await MdConnection.open(url, on_frame)
            try:
                await up()
            except BaseException:
                conn.transport.disconnect(graceful=False)
                raise
            return await conn.wait_closed(self.bf.stale_after_s)  # the watchdog runs in there

        def on_down(why: str) -> None:
            # depth and bookTicker come on /public: a book that missed diffs is not kept
            if route == "public":
                self.decoder.reset("reconnect", time.time_ns())

        await keep_connected(f"{route} stream", connect_once, self.core, errors=MD_ERRORS,
                             on_down=on_down, notice=f"{route} market data stream")  # fmt: skip

    def _need_snapshot(self, s: MdInstrument) -> None:
        if s.fetching:
            s.refetch = True
        else:
            s.fetching = True
            self._tg.create_task(self._fetch_snapshot(s))

    async def _fetch_snapshot(self, s: MdInstrument) -> None:
        """[BN-OB] step 2: GET /fapi/v1/depth, retried with backoff until it is applied."""
        delays = backoff(0.2)
        while True:
            s.refetch = False
            try:
                r = await self.rest.request(
                    "GET", "/fapi/v1/depth", {"symbol": s.upper, "limit": self.bf.snapshot_limit}
                )
                if r.status != 200:
                    raise RequestFailed(f"HTTP {r.status} {r.raw[:200]!r}", sent=True)
                snap = parse_depth_snapshot(r.raw)
            except (RequestFailed, VenueProtocolError) as e:
                log.warning("%s: depth snapshot failed: %s", s.symbol, e)
                await asyncio.sleep(max(next(delays), self.rest.blocked_for()))
                continue
            s.fetching = False
            refetch = s.refetch
            self.decoder.on_snapshot(s, snap, time.time_ns())
            self.core.write_snapshot(s.idx, s.book, s.exch_ts)
            if refetch and not s.fetching:
                self._need_snapshot(s)  # BookSync asked again while this one was under way
            return


class UserStream:
    """The user data stream: listenKey lifecycle and ORDER_TRADE_UPDATE to `orders`."""

    def __init__(self, bf, rest: RestClient, core, orders, on_ready):
        self.url = bf.ws_private_url.rstrip("/")
        self.rest = rest
        self.core = core
        self.orders = orders
        self.on_ready = on_ready  # the venue recomputes whether the session can trade

    def _set_connected(self, up: bool) -> None:
        self.orders.user_ready = up
        self.on_ready()

    async def _listen_key(self, method: str, key: str | None = None) -> str | None:
        params = {"listenKey": key} if key else None
        r = await self.rest.request(method, "/fapi/v1/listenKey", params, key=True)
        if isinstance(r.body, dict) and isinstance(r.body.get("listenKey"), str):
            return r.body["listenKey"]
        if method == "PUT":
            return None  # -1125: the key is gone
        raise RequestFailed(f"{method} listenKey: HTTP {r.status} {r.raw[:200]!r}", sent=True)

    async def run(self) -> None:
        await keep_connected("user data stream", self._connect_once, self.core,
                             errors=(OSError, RequestFailed, VenueProtocolError,
                                     websockets.WebSocketException),
                             on_up=self._reconcile,
                             on_down=lambda why: self._set_connected(False))  # fmt: skip

    async def _connect_once(self, up) -> str:
        key = await self._listen_key("POST")
        url = f"{self.url}/ws?listenKey={key}&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE"
        async with connect(url, **WS_OPTS) as ws:
            await up()
            return await self._read(ws, key)

    async def _reconcile(self) -> str:
        # events arriving meanwhile wait in the socket; fills are deduplicated
        await self.orders.reconcile()
        self._set_connected(True)
        return "orders, fills and positions reconciled"  # bots told of a loss learn all is well

    async def _read(self, ws, key: str) -> str:
        next_keepalive = time.monotonic() + KEEPALIVE_S
        while True:
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation
                # that arrives as the frame does, and the stream would outlive its TaskGroup
                async with asyncio.timeout(next_keepalive - time.monotonic()):
                    raw = await ws.recv()
            except TimeoutError:
                if await self._listen_key("PUT", key) is None:
                    return "listenKey no longer exists (-1125)"
                next_keepalive = time.monotonic() + KEEPALIVE_S
                continue
            except websockets.ConnectionClosed as e:
                return f"closed: {e}"
            try:
                msg = parse_stream(raw)
            except VenueProtocolError as e:
                log.warning("user stream: malformed message skipped: %s", e)
                self.core.bad_message()
                continue
            if isinstance(msg, OrderTradeUpdate):
                self.orders.on_trade_update(msg)
            elif isinstance(msg, AccountUpdate):
                self.orders.on_account_update(msg)
            elif isinstance(msg, ListenKeyExpired):
                return "listenKeyExpired"
