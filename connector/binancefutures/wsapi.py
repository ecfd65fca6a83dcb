"""Binance USD-M futures WebSocket API client (`ws-fapi`): order requests over one kept-open
socket (venue_protocols.md §1.7).

Request: one text frame `{"id":"<n>","method":"order.place","params":{...}}`, params signed
by `signing.sign_ws_params` (apiKey, timestamp, recvWindow; every param sorted by name).
Response: `{"id","status","result"|"error","rateLimits"}`, matched to its request by `id`
and returned as a `rest.Reply` (status, the `result` or `error` object, the raw frame), so
order entry treats both transports alike; `rateLimits` feed the shared `RateLimits`.

Delivery, as over REST: a request is sent once. If the socket is not open it is not sent
(`RequestFailed(sent=False)`); if the socket closes or no response comes within the
timeout after sending, the outcome is unknown (`RequestFailed(sent=True)`) and the caller
asks the venue. The venue pings every 3 minutes and the websockets library answers with
the same payload [BN-WSAPI]; a connection lasts at most 24 h, after which, like after any
loss, the client reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import orjson
import websockets
from websockets.asyncio.client import connect

from connector.binancefutures.ratelimit import RATE_LIMITED
from connector.binancefutures.rest import Reply, RequestFailed, RestClient
from connector.binancefutures.signing import Credentials, sign_ws_params
from connector.binancefutures.streams import STABLE_S, backoff

log = logging.getLogger(__name__)

WS_OPTS = {"ping_interval": 60.0, "ping_timeout": 60.0, "max_size": 1 << 20,
           "compression": None, "open_timeout": 10.0, "close_timeout": 1.0}  # fmt: skip


class WsApiClient:
    """Signed requests over the WS-API; `run()` keeps the socket open until cancelled.

    Args:
        url: e.g. wss://testnet.binancefuture.com/ws-fapi/v1.
        creds: API key and secret (HMAC or Ed25519).
        rest: the REST client whose clock offset and RateLimits this shares.
        recv_window_ms, timeout_s: as for REST.
        on_state: called with True when the socket opens, False when it is lost.
    """

    def __init__(self, url: str, creds: Credentials, rest: RestClient, recv_window_ms: int,
                 timeout_s: float, on_state=None):  # fmt: skip
        self.url = url
        self.creds = creds
        self.rest = rest
        self.recv_window_ms = recv_window_ms
        self.timeout_s = timeout_s
        self.on_state = on_state
        self.ws = None
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future] = {}

    @property
    def connected(self) -> bool:
        return self.ws is not None

    async def run(self) -> None:
        delays = backoff()
        while True:
            opened = None
            try:
                async with connect(self.url, **WS_OPTS) as ws:
                    opened = time.monotonic()
                    self.ws = ws
                    log.info("WebSocket API connected")
                    if self.on_state:
                        self.on_state(True)
                    async for raw in ws:
                        self._on_frame(raw)
                reason = "closed by the venue"
            except (OSError, websockets.WebSocketException) as e:
                reason = f"{type(e).__name__}: {e}"
            finally:
                self.ws = None
                self._fail_pending()
            log.warning("WebSocket API lost (%s); reconnecting", reason)
            if self.on_state:
                self.on_state(False)
            if opened is not None and time.monotonic() - opened > STABLE_S:
                delays = backoff()
            await asyncio.sleep(next(delays))

    def _fail_pending(self) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(RequestFailed("the WebSocket API connection closed before "
                                                "the response", sent=True))  # fmt: skip
        self._pending.clear()

    def _on_frame(self, raw) -> None:
        try:
            m = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.warning("WebSocket API: unreadable frame skipped: %r", raw[:200])
            return
        if not isinstance(m, dict):
            log.warning("WebSocket API: unexpected frame skipped: %r", raw[:200])
            return
        self.rest.limits.on_ws_limits(m.get("rateLimits"), self.rest.now_ms())
        status = m.get("status")
        if status in RATE_LIMITED:
            # [BN-WSAPI] error.data.retryAfter: venue ms when requests may resume
            data = (m.get("error") or {}).get("data") if isinstance(m.get("error"), dict) else None
            ra = data.get("retryAfter") if isinstance(data, dict) else None
            wait = (ra - self.rest.now_ms()) / 1e3 if isinstance(ra, int) else None
            self.rest.limits.block(wait)
            log.warning("WebSocket API: HTTP %s, pausing requests for %.0f s", status,
                        self.rest.blocked_for())  # fmt: skip
        fut = self._pending.pop(str(m.get("id")), None)
        if fut is None or fut.done():
            log.warning("WebSocket API: response to no pending request: %r", raw[:200])
            return
        body = m.get("result") if "result" in m else m.get("error")
        fut.set_result(Reply(status if isinstance(status, int) else 0, body, raw))

    async def request(self, method: str, params: dict, weight: int = 0) -> Reply:
        """Sends one signed request once and returns its response.

        Raises:
            RequestFailed: not connected or paused (sent=False); connection lost or no
                response within the timeout after sending (sent=True).
        """
        ws = self.ws
        if ws is None:
            raise RequestFailed(f"{method}: the WebSocket API is not connected", sent=False)
        if (pause := self.rest.blocked_for()) > 0:
            raise RequestFailed(f"{method}: not sent, the venue asked to back off "
                                f"({pause:.1f} s left)", sent=False)  # fmt: skip
        rid = str(next(self._ids))
        now = self.rest.now_ms()
        signed = sign_ws_params(params, self.creds, now, self.recv_window_ms)
        frame = orjson.dumps({"id": rid, "method": method, "params": signed}).decode()
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        self.rest.limits.sent(now, weight)  # orders were counted by OrderEntry
        try:
            await ws.send(frame)
        except websockets.ConnectionClosed:
            self._pending.pop(rid, None)
            # the frame may have left before the close was seen: the outcome is unknown
            raise RequestFailed(f"{method}: the WebSocket API closed while sending",
                                sent=True) from None  # fmt: skip
        try:
            async with asyncio.timeout(self.timeout_s):  # not wait_for: see streams._read
                return await fut
        except TimeoutError:
            self._pending.pop(rid, None)
            raise RequestFailed(f"{method}: no response within {self.timeout_s:g} s",
                                sent=True) from None  # fmt: skip
