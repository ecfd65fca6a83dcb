"""Bybit v5 REST: signed requests (signing.py) on the venue-neutral kept-alive session
(connector.transport.http), the venue's clock (connector.clock) and its rate limits
(venue_protocols.md §2.5).

* Signing [BY guide.mdx]: GET signs the query string exactly as sent, POST the raw JSON
  body exactly as sent; both go to the session as bytes we built, so what is signed is
  what is on the wire.
* Clock: the offset is measured with GET /v5/market/time before anything is signed,
  re-measured every `connector.clock.REMEASURE_S` by the venue, and at once after a
  10002 (timestamp outside the recv window): one 10002, never a stream of them.
* Rate limits [BY rate-limit.mdx]: every reply's X-Bapi-Limit, -Limit-Status (what is
  left this second) and -Limit-Reset-Timestamp are kept per endpoint (`ApiLimits`); the
  trade stream's reply `header` feeds the same counters (its op is counted against the
  REST endpoint of the same name: that the two share one per-UID budget is UNCONFIRMED,
  counting them together is the safe side). A new order is refused locally
  (THROTTLED) while the endpoint has `RESERVE` or fewer requests left before its reset,
  so we stop before the count reaches 0; a cancel may use the last one. A retCode 10006
  pauses that endpoint until its reset timestamp (1 s if none). HTTP 403 is the IP limit
  ("stop all sessions for at least 10 min"): nothing is sent for `IP_BAN_S`.

Replies come back as `Reply(status, env, raw)`: business errors (retCode != 0) are not
raised; callers map them. No reply raises `RequestFailed` with `sent` (a timeout: maybe
executed; a refused connection or a pause: no).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass

import orjson

from connector.bybit.protocol import Envelope, Limits, limits_of, parse_envelope
from connector.bybit.signing import Credentials, rest_headers
from connector.clock import VenueClock
from connector.errors import RequestFailed, VenueProtocolError
from connector.pause import Pause
from connector.transport.http import HttpSession

log = logging.getLogger(__name__)

RATE_LIMITED = 10006  # "Too many visits": the API rate limit
OUTSIDE_RECV_WINDOW = 10002  # timestamp outside the recv window
IP_BAN_S = 600.0  # §2.5: HTTP 403 = IP limit, stop for at least 10 minutes
RESERVE = 1  # new orders stop with this many requests left in the endpoint's second
# Bybit counts per endpoint per second [§2.5]; our own count of what we sent covers any
# 1.1 s (0.1 s for the arrival jitter), which bounds every second the venue can count in
WINDOW_MS = 1100
DEFAULT_LIMIT = 10  # §2.5: linear create/amend/cancel, 10/s per UID, until a reply says
TRADE_OPS = {"order.create": "/v5/order/create", "order.amend": "/v5/order/amend",
             "order.cancel": "/v5/order/cancel"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Reply:
    status: int  # HTTP status (0 for a trade-stream reply)
    env: Envelope | None  # None when the body is not a Bybit envelope
    raw: bytes | str


class ApiLimits:
    """Bybit's per-endpoint, per-second counters, as its replies state them and as we
    count what we send. Pure: the caller passes the venue clock (ms) and the monotonic
    clock for pauses.

    A reply states what is left only for the requests the venue had seen when it wrote
    it: a burst admitted before the first reply of a second (the grid bot's ten orders at
    once) would all pass a check on the replies alone and earn 10006s. So every order
    request admitted is also counted here, and a new order goes only while fewer than
    `limit - RESERVE` were admitted in the last `WINDOW_MS` (a cancel, fewer than `limit`)."""

    def __init__(self, clock=time.monotonic):
        self.state: dict[str, list[int]] = {}  # path -> [limit, remaining, reset_ms]
        self.recent: dict[str, deque[int]] = {}  # path -> when we admitted (venue ms)
        self.paused: dict[str, Pause] = {}  # path -> its 10006 pause
        self.ip = Pause(clock)  # HTTP 403: everything
        self._clock = clock

    def on_reply(self, path: str, lim: Limits, ret_code: int, now_ms: int) -> None:
        if lim.remaining >= 0:
            self.state[path] = [lim.limit, lim.remaining, lim.reset_ms]
        if ret_code == RATE_LIMITED:
            reset = lim.reset_ms if lim.reset_ms > 0 else now_ms + 1000
            wait_s = min(max((reset - now_ms) / 1e3, 0.05), 60.0)
            self.paused.setdefault(path, Pause(self._clock)).block(wait_s)
            log.warning("%s: 10006 too many visits, paused %.2f s (until the reset)", path,
                        wait_s)  # fmt: skip

    def on_ip_ban(self) -> None:
        self.ip.block(IP_BAN_S)
        log.error("HTTP 403: the venue's IP limit; nothing is sent for %.0f s", IP_BAN_S)

    def blocked_for(self, path: str) -> float:
        p = self.paused.get(path)
        return max(self.ip.left_s(), p.left_s() if p is not None else 0.0)

    def refusal(self, path: str, now_ms: int, new_order: bool) -> str | None:
        """Why an order request to `path` may not go now, or None."""
        wait = self.blocked_for(path)
        if wait > 0:
            return f"the venue asked to back off ({path}); {wait:.2f} s left"
        st = self.state.get(path)
        floor = RESERVE if new_order else 0
        limit = st[0] if st is not None and st[0] > 0 else DEFAULT_LIMIT
        n = self._count(path, now_ms)
        if limit - n <= floor:
            return (f"throttled: {n} requests on {path} in the last {WINDOW_MS} ms, "
                    f"limit {limit}/s")  # fmt: skip
        if st is None or now_ms >= st[2]:
            return None  # the venue's count is unknown, or its window has reset
        if st[1] <= floor:
            return (f"throttled: {st[1]} of {st[0]} requests/s left on {path} "
                    f"({(st[2] - now_ms) / 1e3:.2f} s to the reset)")  # fmt: skip
        return None

    def _count(self, path: str, now_ms: int) -> int:
        q = self.recent.get(path)
        if not q:
            return 0
        while q and q[0] <= now_ms - WINDOW_MS:
            q.popleft()
        return len(q)

    def admit(self, path: str, now_ms: int, new_order: bool) -> str | None:
        """`refusal`, and if there is none the request is counted in our window at once:
        order entry admits a burst before it sends any of it."""
        why = self.refusal(path, now_ms, new_order)
        if why is None:
            self.recent.setdefault(path, deque()).append(now_ms)
        return why

    def sent(self, path: str, now_ms: int) -> None:
        """Counts a request sent against the venue's last stated figure, until its reply
        states the new one."""
        st = self.state.get(path)
        if st is not None and now_ms < st[2] and st[1] > 0:
            st[1] -= 1


class BybitRest:
    """REST access to one account. One event loop.

    Args:
        base_url: e.g. https://api-testnet.bybit.com.
        creds: the key and secret (None: public endpoints only).
        recv_window_ms: X-BAPI-RECV-WINDOW.
        timeout_s: the longest a request may take; past it its outcome is unknown.
    """

    def __init__(self, base_url: str, creds: Credentials | None, recv_window_ms: int,
                 timeout_s: float = 10.0):  # fmt: skip
        self.http = HttpSession(base_url, timeout_s, max_connections=32, keepalive_s=60)
        self.creds = creds
        self.recv_window_ms = recv_window_ms
        self.clock = VenueClock(self._server_ms)
        self.limits = ApiLimits()

    async def __aenter__(self) -> BybitRest:
        await self.http.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.__aexit__(*exc)

    def now_ms(self) -> int:
        return self.clock.now_ms()

    async def _server_ms(self) -> int:
        r = await self.request("GET", "/v5/market/time")
        env = r.env
        if env is None or not env.ok or not isinstance(env.result, dict):
            raise RequestFailed(f"GET /v5/market/time: HTTP {r.status} {r.raw[:200]!r}", False)
        nano = env.result.get("timeNano")
        if isinstance(nano, str) and nano.isdigit():
            return int(nano) // 1_000_000
        if env.time_ms > 0:
            return env.time_ms
        raise VenueProtocolError(f"GET /v5/market/time: no time in {r.raw[:200]!r}")

    async def request(self, method: str, path: str, params: dict | None = None,
                      signed: bool = False) -> Reply:  # fmt: skip
        """Sends one request once; never retries.

        Args:
            params: GET: the query (str/int values, in order); POST: the JSON body.
            signed: add the X-BAPI-* headers.

        Raises:
            RequestFailed: no reply, or not sent during a pause (sent=False).
        """
        if (pause := self.limits.blocked_for(path)) > 0:
            # a request during a pause is what gets an IP banned
            raise RequestFailed(f"{method} {path}: not sent, the venue asked to back off "
                                f"({pause:.1f} s left)", sent=False)  # fmt: skip
        params = params or {}
        headers: dict[str, str] = {}
        body = None
        if method == "GET":
            query = "&".join(f"{k}={v}" for k, v in params.items())
            payload = query
        else:
            query = ""
            body = orjson.dumps(params)
            payload = body.decode()
            headers["Content-Type"] = "application/json"
        if signed:
            headers.update(rest_headers(self.creds, self.now_ms(), self.recv_window_ms, payload))
        self.limits.sent(path, self.now_ms())
        resp = await self.http.request(method, path, query, headers, body)  # RequestFailed
        env = None
        try:
            env = parse_envelope(resp.raw) if resp.raw else None
        except VenueProtocolError:
            pass
        if resp.status == 403:
            self.limits.on_ip_ban()
        self.limits.on_reply(path, limits_of(resp.headers), env.ret_code if env else 0,
                             self.now_ms())  # fmt: skip
        if env is not None and env.ret_code == OUTSIDE_RECV_WINDOW and signed:
            # our clock and the venue's moved apart faster than the periodic re-measure
            await self.clock.remeasure(f"{method} {path}: 10002")
        log.debug("%s %s: HTTP %d retCode %s", method, path, resp.status,
                  env.ret_code if env else "-")  # fmt: skip
        return Reply(resp.status, env, resp.raw)
