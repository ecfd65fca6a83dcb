"""Bybit's private stream (`/v5/private`): order, execution, position and wallet pushes
(venue_protocols.md §2.3), receive-only, on the `websockets` library.

Per connection: `auth` (`GET/realtime` + expires), wait for its reply; subscribe
`order`, `execution`, `position`, `wallet`, wait for its reply; then the reconciliation
(open orders, missed fills, positions: `orders.BybitOrders.reconcile`) before the
connection counts as up and the bots are told all is well (`core.connected(True)`);
pushes arriving meanwhile wait in the socket, and fills are deduplicated by execId.
An app-level `{"op": "ping"}` goes every `ping_interval_s`; a connection that hears
nothing (no pong, no push) for `ping_interval_s + timeout_s` is half-dead: it is dropped
and reconnected by `connector.reconnect` (with a new reconciliation).
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
import websockets
from websockets.asyncio.client import connect

from connector.bybit.protocol import (
    PRIVATE_TOPICS,
    Execution,
    OpReply,
    OrderUpdate,
    Position,
    Wallet,
    parse_private,
)
from connector.bybit.rest import BybitRest
from connector.bybit.signing import Credentials, ws_auth_args
from connector.errors import RequestFailed, VenueProtocolError
from connector.reconnect import keep_connected

log = logging.getLogger(__name__)

NAME = "private stream"
AUTH_EXPIRY_MS = 10_000
WS_OPTS = {"ping_interval": 20.0, "ping_timeout": 20.0, "max_size": None, "compression": None,
           "open_timeout": 10.0, "close_timeout": 1.0}  # fmt: skip


class PrivateStream:
    """Keeps the private stream up; its pushes go to `orders` (BybitOrders).

    Args:
        url: e.g. wss://stream-testnet.bybit.com/v5/private.
        creds, rest: the key and secret; the REST client (its clock signs `expires`).
        ping_interval_s, timeout_s: the app-level ping and how long a reply may take.
        core: told of losses and restores.
        orders: `on_order`, `on_execution`, `on_position`, `reconcile`, `private_ready`.
        on_state: `()`, called when the stream becomes usable or is lost.
        dcp: also subscribe `dcp` (the venue's disconnect-cancel-all is armed).
    """

    def __init__(self, url: str, creds: Credentials, rest: BybitRest, ping_interval_s: float,
                 timeout_s: float, core, orders, on_state, dcp: bool = False):  # fmt: skip
        self.url = url
        self.creds = creds
        self.rest = rest
        self.ping_interval_s = ping_interval_s
        self.timeout_s = timeout_s
        self.core = core
        self.orders = orders
        self.on_state = on_state
        self.wallet: Wallet | None = None
        # [BY order/dcp.mdx]: DCP triggers only for a private connection subscribed to `dcp`
        self.topics = [*PRIVATE_TOPICS, "dcp"] if dcp else list(PRIVATE_TOPICS)

    def _set_ready(self, up: bool) -> None:
        self.orders.private_ready = up
        self.on_state()

    async def run(self) -> None:
        await keep_connected(NAME, self._connect_once, self.core,
                             errors=(OSError, RequestFailed, VenueProtocolError, TimeoutError,
                                     websockets.WebSocketException),
                             on_up=self._reconcile,
                             on_down=lambda why: self._set_ready(False))  # fmt: skip

    async def _op(self, ws, op: str, args: list) -> None:
        """Sends `op` and reads until its reply (pushes cannot come before a subscribe)."""
        await ws.send(orjson.dumps({"req_id": op, "op": op, "args": args}).decode())
        async with asyncio.timeout(self.timeout_s):
            while True:
                m = parse_private(await ws.recv())
                if isinstance(m, OpReply) and m.op == op:
                    if not m.success:
                        raise VenueProtocolError(f"{NAME} {op} refused: {m.ret_msg!r}")
                    return
                log.debug("%s: %r before the %s reply", NAME, m, op)

    async def _connect_once(self, up) -> str:
        async with connect(self.url, **WS_OPTS) as ws:
            expires = self.rest.now_ms() + AUTH_EXPIRY_MS
            await self._op(ws, "auth", ws_auth_args(self.creds, expires))
            await self._op(ws, "subscribe", self.topics)
            await up()
            return await self._read(ws)

    async def _reconcile(self) -> str:
        await self.orders.reconcile()
        self._set_ready(True)
        return "orders, fills and positions reconciled"

    async def _read(self, ws) -> str:
        deadline = time.monotonic() + self.ping_interval_s
        pinged = False
        while True:
            try:
                async with asyncio.timeout(max(deadline - time.monotonic(), 0.0)):
                    raw = await ws.recv()
            except TimeoutError:
                if pinged:
                    return f"no pong within {self.timeout_s:g} s (half-dead)"
                await ws.send(orjson.dumps({"req_id": "ping", "op": "ping"}).decode())
                pinged = True
                deadline = time.monotonic() + self.timeout_s
                continue
            except websockets.ConnectionClosed as e:
                return f"closed: {e}"
            deadline = time.monotonic() + self.ping_interval_s
            pinged = False
            try:
                m = parse_private(raw)
            except VenueProtocolError as e:
                log.warning("%s: malformed message skipped: %s", NAME, e)
                self.core.bad_message()
                continue
            if isinstance(m, OpReply):
                continue
            for item in m.items:
                if isinstance(item, OrderUpdate):
                    self.orders.on_order(item)
                elif isinstance(item, Execution):
                    self.orders.on_execution(item)
                elif isinstance(item, Position):
                    self.orders.on_position(item)
                elif isinstance(item, Wallet):
                    self.wallet = item
