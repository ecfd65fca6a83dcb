"""Binance USD-M futures WebSocket streams: market data into shared memory, and user data.

Market data (venue_protocols.md §1.2-§1.4): one combined-stream connection on the
`/public` route (`<sym>@depth@0ms` or `@<n>ms`, `<sym>@bookTicker`) and one on `/market`
(`<sym>@trade`): the routes must not share a connection. Each depthUpdate goes through
`BookSync` (Binance's documented local-book algorithm); its actions drive the I/O here:
NeedSnapshot -> GET /fapi/v1/depth, Gap -> the bots get ERR_BOOK_RESYNC. Book changes are
recorded as hftbacktest events into the instrument's batch and published as one atomic
batch per venue message, as the sim venue does (exch_ts = the venue's transaction time T,
local_ts = our receive time). A stream silent for `stale_after_s` is dropped and
reconnected (the watchdog); a lost connection resets the books, and reconnects follow
`connector.reconnect` (backoff, the bots told of a loss and of a restore once).

The market connections run on picows (`connector.transport.md`: frames handed over inside the
socket read, pings answered in C), and the hot kinds skip the dataclasses: bookTicker and
MARKET trade frames go through `scan_ticker` straight to events (any frame it does not
take goes through `parse_stream`), and a diff's levels are applied to the book and
recorded in one @njit call (`RecordingBook.apply_levels`). bench/bf_ingest.py measures it.

User data (§1.5): POST a listenKey, connect `/private/ws?listenKey=..`, PUT keepalive
every 30 minutes; `listenKeyExpired` or -1125 -> a new key and a new connection.
ORDER_TRADE_UPDATE and ACCOUNT_UPDATE go to `orders.OrderEntry`. On every (re)connect,
open orders, missed fills and positions are reconciled by REST before the stream is read
and the instruments' `connected` flag in shared memory is set again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal

import numpy as np
import websockets
from websockets.asyncio.client import connect

from connector.binancefutures.book_sync import BookSync, Gap, NeedSnapshot
from connector.binancefutures.protocol import (
    BOOK_TICKER,
    TRADE,
    AccountUpdate,
    BookTicker,
    DepthUpdate,
    ErrorReply,
    ListenKeyExpired,
    OrderTradeUpdate,
    Trade,
    parse_depth_snapshot,
    parse_stream,
    scan_ticker,
)
from connector.binancefutures.rest import RequestFailed, RestClient
from connector.book import (
    ASK_BBO,
    BID_BBO,
    BUY_TRADE,
    SELL_TRADE,
    RecordingBook,
)
from connector.errors import VenueProtocolError
from connector.reconnect import backoff, keep_connected
from connector.transport.md import ERRORS as MD_ERRORS
from connector.transport.md import MdConnection
from hftlive.layout import event_dtype

log = logging.getLogger(__name__)

KEEPALIVE_S = 30 * 60  # [HBT] keepalive every 30 min; a key lives 60 min (§1.5)
WS_OPTS = {"ping_interval": 60.0, "ping_timeout": 60.0, "max_size": None, "compression": None,
           "open_timeout": 10.0, "close_timeout": 1.0}  # fmt: skip


def _decimals(step: float) -> int:
    return max(0, -Decimal(repr(step)).normalize().as_tuple().exponent)


class MdInstrument(RecordingBook):
    """One instrument: the venue's spec, the connector's book and its event batch.

    `set_bid`/`set_ask`/`clear` (BookSync's Book) apply to the book and record events.
    """

    def __init__(self, idx: int, cfg):
        super().__init__(idx, cfg)
        self.upper = cfg.symbol.upper()
        self.price_dp = _decimals(cfg.tick_size)
        self.qty_dp = _decimals(cfg.lot_size)
        self._tick = Decimal(repr(cfg.tick_size))
        self._lot = Decimal(repr(cfg.lot_size))
        self.sync = BookSync(self)
        self.fetching = False  # a depth snapshot request is under way
        self.refetch = False  # BookSync asked again meanwhile

    # order formatting: exact decimals on the venue's grid (str(1e-05) would be refused)
    def px_text(self, price_tick: int) -> str:
        return f"{self._tick * price_tick:.{self.price_dp}f}"

    def qty_text(self, qty: float) -> str:
        return f"{self._lot * round(qty / self.lot_size):.{self.qty_dp}f}"

    def tick_of(self, px: float) -> int:
        return round(px / self.tick_size)


class MarketData:
    """Market streams for every instrument; `run()` until cancelled."""

    def __init__(self, bf, insts: list[MdInstrument], core, rest: RestClient,
                 snapshot_interval_ms: int):  # fmt: skip
        self.bf = bf
        self.insts = insts
        self.by_symbol = {s.symbol: s for s in insts}
        self._by_wire = {s.upper.encode(): s for s in insts}  # "s" as Binance sends it
        self._fast_ev = np.zeros(2, event_dtype)  # scan_ticker's events, published at once
        self.core = core
        self.rest = rest
        self.snapshot_interval_s = snapshot_interval_ms / 1e3
        self._tg: asyncio.TaskGroup | None = None
        depth = "depth" if bf.depth_interval_ms == 250 else f"depth@{bf.depth_interval_ms}ms"
        pub = [f"{s.symbol}@{n}" for s in insts for n in (depth, "bookTicker")]
        mkt = [f"{s.symbol}@trade" for s in insts]
        self.public_url = f"{bf.ws_public_url.rstrip('/')}/stream?streams={'/'.join(pub)}"
        self.market_url = f"{bf.ws_market_url.rstrip('/')}/stream?streams={'/'.join(mkt)}"
        self._compile()

    def _compile(self) -> None:
        """Loads (or, on a first run, compiles: ~10 s) the @njit functions every frame uses,
        with the argument types frames bring, before any connection is opened."""
        scan_ticker(b"{}", self._fast_ev, 0)
        none = np.empty((0, 2))
        none.flags.writeable = False  # as parsed levels are
        for s in self.insts:
            s.apply_levels(none, none)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            tg.create_task(self._stream("public", self.public_url, self._on_public))
            tg.create_task(self._stream("market", self.market_url, self._on_market))
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

        # depth and bookTicker come on /public: a book that missed diffs is not left standing
        on_down = (lambda why: self._reset_books("reconnect")) if route == "public" else None
        await keep_connected(f"{route} market stream", connect_once, self.core,
                             errors=MD_ERRORS, on_down=on_down)  # fmt: skip

    def _reset_books(self, reason: str) -> None:
        now = time.time_ns()
        for s in self.insts:
            s.local_ts = now
            s.exch_ts = now
            s.sync.reset(reason)
            self._publish(s)
            self.core.book_reset(s.idx, f"book reset ({reason})")

    def _publish(self, s: MdInstrument) -> None:
        if s.batch.n:
            self.core.publish(s.idx, s.batch.ev, s.batch.n)
            s.batch.n = 0

    def _parse(self, raw, route: str):
        try:
            return parse_stream(raw)
        except VenueProtocolError as e:
            log.warning("%s stream: malformed message skipped: %s", route, e)
            self.core.bad_message()
            return None

    def _fast(self, raw: bytes, local_ns: int, want: int, n_events: int) -> bool:
        """Publishes a frame `scan_ticker` took as `want` (BOOK_TICKER: 2 events, TRADE: 1)
        for a symbol we serve; False leaves the frame to `parse_stream`, which lowercases
        symbols, checks every field and may not know the symbol either."""
        kind, lo, hi, exch_ns = scan_ticker(raw, self._fast_ev, local_ns)
        if kind != want:
            return False
        s = self._by_wire.get(raw[lo:hi])
        if s is None:
            return False
        s.local_ts, s.exch_ts = local_ns, exch_ns
        self.core.publish(s.idx, self._fast_ev, n_events)
        return True

    def _on_public(self, raw: bytes, local_ns: int) -> None:
        if self._fast(raw, local_ns, BOOK_TICKER, 2):
            return
        msg = self._parse(raw, "public")
        if isinstance(msg, DepthUpdate):
            s = self.by_symbol.get(msg.symbol)
            if s is None:
                return
            s.local_ts, s.exch_ts = local_ns, msg.transact_ts_ns
            self._actions(s, s.sync.on_diff(msg))
            self._publish(s)
        elif isinstance(msg, BookTicker):
            s = self.by_symbol.get(msg.symbol)
            if s is None:
                return
            s.local_ts, s.exch_ts = local_ns, msg.transact_ts_ns
            s.batch.add2(BID_BBO, msg.bid_px, msg.bid_qty, ASK_BBO, msg.ask_px, msg.ask_qty,
                         s.exch_ts, s.local_ts)  # fmt: skip
            self._publish(s)
        elif isinstance(msg, ErrorReply):
            log.error("public stream: venue error %d: %s", msg.code, msg.msg)

    def _on_market(self, raw: bytes, local_ns: int) -> None:
        if self._fast(raw, local_ns, TRADE, 1):
            return
        msg = self._parse(raw, "market")
        if isinstance(msg, Trade):
            s = self.by_symbol.get(msg.symbol)
            if s is None or msg.trade_type != "MARKET":
                return  # as hftbacktest: only market trades print
            s.local_ts, s.exch_ts = local_ns, msg.transact_ts_ns
            # [BN] m = buyer is maker: the taker sold
            ev = SELL_TRADE if msg.buyer_is_maker else BUY_TRADE
            s.batch.add(ev, s.exch_ts, s.local_ts, msg.px, msg.qty)
            self._publish(s)
        elif isinstance(msg, ErrorReply):
            log.error("market stream: venue error %d: %s", msg.code, msg.msg)

    def _actions(self, s: MdInstrument, actions) -> None:
        for a in actions:
            if isinstance(a, NeedSnapshot):
                if s.fetching:
                    s.refetch = True
                else:
                    s.fetching = True
                    self._tg.create_task(self._fetch_snapshot(s))
            elif isinstance(a, Gap):
                log.warning("%s: depth gap (expected pu %d, got %d): book cleared, resyncing",
                            s.symbol, a.expected_pu, a.got_pu)  # fmt: skip
                self.core.book_reset(s.idx, "depth gap")

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
            s.local_ts, s.exch_ts = time.time_ns(), snap.transact_ts_ns
            actions = s.sync.on_snapshot(snap)
            self._publish(s)
            self.core.write_snapshot(s.idx, s.book, s.exch_ts)
            if s.sync.state == "SYNCED":
                log.info("%s: book synced at update id %d", s.symbol, s.sync.last_update_id)
            if s.refetch and not any(isinstance(a, NeedSnapshot) for a in actions):
                actions = [*actions, NeedSnapshot()]
            self._actions(s, actions)
            self._publish(s)
            return


class UserStream:
    """The user data stream: listenKey lifecycle and ORDER_TRADE_UPDATE to `orders`."""

    def __init__(self, bf, rest: RestClient, core, orders):
        self.url = bf.ws_private_url.rstrip("/")
        self.rest = rest
        self.core = core
        self.orders = orders

    def _set_connected(self, up: bool) -> None:
        self.orders.user_ready = up
        self.core.connected(up)

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
