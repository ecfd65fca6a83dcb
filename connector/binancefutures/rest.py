"""Binance USD-M futures REST client: signing, the clock offset and the rate limits
(`ratelimit.RateLimits`, venue_protocols.md §1.6, §1.8) on the venue-neutral kept-alive
session (`connector.transport.http`).

Every signed request carries all its parameters in the query string, signed over that
exact string (`signing.sign_params`); the session sends the query as given, so the bytes
on the wire are the bytes signed.

Replies come back as `Reply(status, body, headers)`; the venue's `{"code","msg"}` bodies
are not raised: callers map them to order reports. Transport failures raise
`RequestFailed` with `sent` telling whether the request may have reached the venue (a
timeout: maybe; a refused connection, or a request held back by a Retry-After: no): the
session's rule, plus Binance's Retry-After.
Requests other than orders wait while the minute's weight is near the limit.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import orjson

from connector.binancefutures.ratelimit import RATE_LIMITED, RateLimits
from connector.binancefutures.signing import Credentials, sign_params
from connector.clock import VenueClock
from connector.errors import RequestFailed  # noqa: F401 (re-exported for the venue)
from connector.transport.http import HttpSession

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: object  # parsed JSON (dict or list), None when the body is not JSON
    raw: bytes


class RestClient:
    """REST access to one account. Not thread-safe; one event loop.

    Args:
        base_url: e.g. https://demo-fapi.binance.com (no trailing slash).
        creds: API key and secret (None: public endpoints only).
        recv_window_ms: `recvWindow` of signed requests.
        timeout_s: total time a request may take before it counts as failed.
    """

    def __init__(self, base_url: str, creds: Credentials | None, recv_window_ms: int,
                 timeout_s: float = 10.0):  # fmt: skip
        self.http = HttpSession(base_url, timeout_s, max_connections=64, keepalive_s=60)
        self.creds = creds
        self.recv_window_ms = recv_window_ms
        self.clock = VenueClock(self._server_ms)  # the kernel's offset rule
        self.limits = RateLimits()

    async def __aenter__(self) -> RestClient:
        await self.http.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.__aexit__(*exc)

    # ------------------------------------------------------------------ clock
    @property
    def offset_ms(self) -> int:
        return self.clock.offset_ms

    def now_ms(self) -> int:
        """Venue-clock milliseconds."""
        return self.clock.now_ms()

    async def _server_ms(self) -> int:
        r = await self.request("GET", "/fapi/v1/time")
        if r.status != 200 or not isinstance(r.body, dict) or "serverTime" not in r.body:
            raise RequestFailed(f"GET /fapi/v1/time: HTTP {r.status} {r.raw[:200]!r}", False)
        return int(r.body["serverTime"])

    async def sync_time(self) -> int:
        """Measures the venue clock offset with GET /fapi/v1/time; returns it (ms)."""
        return await self.clock.measure()

    # ------------------------------------------------------------------ requests
    def blocked_for(self) -> float:
        """Seconds left of a venue-imposed pause (429/418 Retry-After), 0 if none."""
        return self.limits.blocked_for()

    async def request(self, method: str, path: str, params: dict | None = None,
                      signed: bool = False, key: bool = False, weight: int = 1,
                      order: bool = False) -> Reply:  # fmt: skip
        """Sends one request once; never retries.

        Args:
            params: str/int/bool values in order; floats must be formatted by the caller.
            signed: add recvWindow, timestamp and signature (TRADE / USER_DATA endpoints).
            key: send X-MBX-APIKEY (USER_STREAM endpoints; implied by signed).
            weight: the endpoint's request weight (§1.6); counted until the reply says.
            order: an order request, which the caller has checked with
                `limits.order_refusal` (and counted); others wait for weight room here.

        Raises:
            RequestFailed: no HTTP reply (timeout, connection failure), or not sent
                because the venue's Retry-After is still running (sent=False).
        """
        if not order:
            wait = self.limits.weight_wait_s(weight, self.now_ms())
            if wait > 0:
                log.warning("%s %s: request weight near the limit, waiting %.1f s", method, path,
                            wait)  # fmt: skip
                await asyncio.sleep(wait)
        if (pause := self.blocked_for()) > 0:
            # [BN-GI] a request during a 429's Retry-After gets the IP banned (418)
            raise RequestFailed(f"{method} {path}: not sent, the venue asked to back off "
                                f"({pause:.1f} s left)", sent=False)  # fmt: skip
        headers = {}
        if signed or key:
            headers["X-MBX-APIKEY"] = self.creds.api_key
        if signed:
            query = sign_params(params or {}, self.creds, self.now_ms(), self.recv_window_ms)
        else:
            query = "&".join(f"{k}={v}" for k, v in (params or {}).items())
        self.limits.sent(self.now_ms(), weight)  # orders were counted by OrderEntry
        resp = await self.http.request(method, path, query, headers)  # RequestFailed
        raw, status = resp.raw, resp.status
        self.limits.on_headers(resp.headers, status, self.now_ms())
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        if status in RATE_LIMITED:
            log.warning("%s %s: HTTP %d, pausing requests for %.0f s", method, path, status,
                        self.blocked_for())  # fmt: skip
        else:
            log.debug("%s %s: HTTP %d", method, path, status)
        return Reply(status, body, raw)
