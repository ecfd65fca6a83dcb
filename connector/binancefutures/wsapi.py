"""Binance USD-M futures WebSocket API (`ws-fapi`): order requests over one kept-open socket
(venue_protocols.md §1.7), on the venue-neutral `connector.transport.wsrpc`.

Request: one text frame `{"id":"<n>","method":"order.place","params":{...}}`, params signed
by `signing.sign_ws_params` (apiKey, timestamp, recvWindow; every param sorted by name).
Response: `{"id","status","result"|"error","rateLimits"}`, matched to its request by `id`
and returned as a `rest.Reply` (status, the `result` or `error` object, the raw frame), so
order entry treats both transports alike; `rateLimits` feed the shared `RateLimits`, and a
429/418's `retryAfter` pauses every request, REST included.

Delivery is wsrpc's (sent once; not connected or paused: `sent=False`; closed or silent
after sending: `sent=True`, the caller asks the venue). The venue pings every 3 minutes
and the websockets library answers with the same payload [BN-WSAPI]; a connection lasts
at most 24 h, after which, like after any loss, `connector.reconnect` reconnects it.
"""

from __future__ import annotations

import logging

import orjson

from connector.binancefutures.ratelimit import RATE_LIMITED
from connector.binancefutures.rest import Reply, RequestFailed, RestClient
from connector.binancefutures.signing import Credentials, sign_ws_params
from connector.reconnect import keep_connected
from connector.transport import wsrpc
from connector.venue import Core

log = logging.getLogger(__name__)

NAME = "WebSocket API"


class _Codec:
    """Binance's envelope; takes `rateLimits` and a 429's `retryAfter` from every frame."""

    def __init__(self, rest: RestClient):
        self.rest = rest

    def request(self, rid: str, method: str, params: dict) -> str:
        return orjson.dumps({"id": rid, "method": method, "params": params}).decode()

    def response(self, raw: str | bytes) -> tuple[str, Reply] | None:
        try:
            m = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.warning("%s: unreadable frame skipped: %r", NAME, raw[:200])
            return None
        if not isinstance(m, dict):
            log.warning("%s: unexpected frame skipped: %r", NAME, raw[:200])
            return None
        self.rest.limits.on_ws_limits(m.get("rateLimits"), self.rest.now_ms())
        status = m.get("status")
        if status in RATE_LIMITED:
            # [BN-WSAPI] error.data.retryAfter: venue ms when requests may resume
            data = (m.get("error") or {}).get("data") if isinstance(m.get("error"), dict) else None
            ra = data.get("retryAfter") if isinstance(data, dict) else None
            wait = (ra - self.rest.now_ms()) / 1e3 if isinstance(ra, int) else None
            self.rest.limits.block(wait)
            log.warning("%s: HTTP %s, pausing requests for %.0f s", NAME, status,
                        self.rest.blocked_for())  # fmt: skip
        body = m.get("result") if "result" in m else m.get("error")
        # raw as received (a str for a text frame): parse_order_response takes either
        return str(m.get("id")), Reply(status if isinstance(status, int) else 0, body, raw)


class WsApiClient:
    """Signed requests over the WS-API; `run()` keeps the socket open until cancelled.

    Args:
        url: e.g. wss://testnet.binancefuture.com/ws-fapi/v1.
        creds: API key and secret (HMAC or Ed25519).
        rest: the REST client whose clock offset and RateLimits this shares.
        recv_window_ms, timeout_s: as for REST.
        core: told when the connection is lost and when it is back.
        on_state: `()`, called when the socket opens or is lost (the venue recomputes
            whether its session can trade).
    """

    def __init__(self, url: str, creds: Credentials, rest: RestClient, recv_window_ms: int,
                 timeout_s: float, core: Core, on_state=None):  # fmt: skip
        self.creds = creds
        self.rest = rest
        self.recv_window_ms = recv_window_ms
        self.core = core
        self.on_state = on_state or (lambda: None)
        self.rpc = wsrpc.WsRpc(NAME, url, _Codec(rest), timeout_s)

    @property
    def connected(self) -> bool:
        return self.rpc.connected

    async def run(self) -> None:
        async def on_up() -> str:
            self.on_state()
            return ""

        await keep_connected(NAME, self.rpc.connect_once, self.core, errors=wsrpc.ERRORS,
                             notice=f"{NAME} connection", on_up=on_up,
                             on_down=lambda why: self.on_state())  # fmt: skip

    async def request(self, method: str, params: dict, weight: int = 0) -> Reply:
        """Sends one signed request once and returns its response.

        Raises:
            RequestFailed: not connected or paused (sent=False); connection lost or no
                response within the timeout after sending (sent=True).
        """
        if (pause := self.rest.blocked_for()) > 0:
            raise RequestFailed(f"{method}: not sent, the venue asked to back off "
                                f"({pause:.1f} s left)", sent=False)  # fmt: skip
        now = self.rest.now_ms()
        signed = sign_ws_params(params, self.creds, now, self.recv_window_ms)
        # orders were counted by OrderEntry; the request's weight counts once it is written
        return await self.rpc.request(method, signed,
                                      sending=lambda: self.rest.limits.sent(now, weight))  # fmt: skip
