"""The door of the emulated venue: API keys, signatures, the clock window, rate limits.

Checks in the order Bybit reports them (the order itself is UNCONFIRMED; each check's code
is documented) [BY guide.mdx, error.mdx, rate-limit.mdx]:

1. REST: `X-BAPI-API-KEY` missing or unknown -> 10003.
2. `X-BAPI-TIMESTAMP` outside `server - recv_window <= ts < server + 1000` -> 10002
   (`connector.bybit.signing.in_window`); a missing or non-integer timestamp or recv
   window is also 10002 (UNCONFIRMED: Bybit may answer 10001).
3. `X-BAPI-SIGN` not the HMAC of `ts + key + recv_window + (query | exact body)` -> 10004.

WebSocket auth (private and trade): `args = [key, expires_ms, sign]` over
`"GET/realtime" + expires`; unknown key, bad sign or `expires` not in the future fail.

Rate limits: per endpoint per second, the docs' linear defaults (create/amend/cancel/
cancel-all 10/s, queries 50/s). Counted in fixed one-second windows (Bybit's window shape
is UNCONFIRMED). Every signed reply carries `X-Bapi-Limit`, `X-Bapi-Limit-Status`
(remaining) and `X-Bapi-Limit-Reset-Timestamp` (ms); over the limit -> 10006.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from connector.bybit.emulator.errors import BybitError
from connector.bybit.signing import Credentials, in_window, rest_payload, verify, ws_auth_payload

ORDER_LIMIT_PER_S = 10  # create, amend, cancel, cancel-all (linear default)
QUERY_LIMIT_PER_S = 50  # realtime, history, execution, position, wallet
LIMITS = {
    "/v5/order/create": ORDER_LIMIT_PER_S,
    "/v5/order/amend": ORDER_LIMIT_PER_S,
    "/v5/order/cancel": ORDER_LIMIT_PER_S,
    "/v5/order/cancel-all": ORDER_LIMIT_PER_S,
}
ORDER_PATHS = frozenset(LIMITS)


class RateLimited(BybitError):
    """10006 with the limit headers of the refused request."""

    def __init__(self, headers: dict[str, str]):
        super().__init__(10006)
        self.headers = headers


class Gate:
    """Keys, signatures, the window rule and per-endpoint limits of the one account.

    Args:
        creds: the account's key and secret.
        now_ms: the venue clock (wall time plus the injected skew).
    """

    def __init__(self, creds: Credentials, now_ms: Callable[[], int]):
        self.creds = creds
        self.now_ms = now_ms
        self._windows: dict[str, tuple[int, int]] = {}  # endpoint -> (window start ms, used)

    def check_rest(self, headers: Mapping[str, str], signed: str) -> None:
        """Checks a signed REST request; `signed` is the query string or the exact body.

        Raises:
            BybitError: 10003, 10002 or 10004.
        """
        key = headers.get("X-BAPI-API-KEY", "")
        if key != self.creds.api_key:
            raise BybitError(10003)
        ts, recv = headers.get("X-BAPI-TIMESTAMP", ""), headers.get("X-BAPI-RECV-WINDOW", "5000")
        self.check_window(ts, recv)
        sign = headers.get("X-BAPI-SIGN", "")
        if not verify(self.creds, rest_payload(int(ts), key, int(recv), signed), sign):
            raise BybitError(10004)

    def check_window(self, ts: str, recv: str | int = "5000") -> None:
        """The window rule: server - recv_window <= ts < server + 1000.

        Raises:
            BybitError: 10002, naming both times as Bybit's message does.
        """
        now = self.now_ms()
        try:
            ts_ms, recv_ms = int(ts), int(recv)
        except (TypeError, ValueError):
            raise BybitError(10002, f"invalid timestamp {ts!r} or recv_window {recv!r}") from None
        if not in_window(ts_ms, recv_ms, now):
            raise BybitError(
                10002,
                "invalid request, please check your server timestamp or recv_window param. "
                f"req_timestamp[{ts_ms}],server_timestamp[{now}],recv_window[{recv_ms}]",
            )

    def check_ws_auth(self, args: object) -> bool:
        """`{"op":"auth","args":[key, expires_ms, sign]}`: the key, the signature over
        `"GET/realtime" + expires` and an `expires` still in the future."""
        if not isinstance(args, list) or len(args) != 3:
            return False
        key, expires, sign = args
        if key != self.creds.api_key or not isinstance(sign, str):
            return False
        try:
            expires_ms = int(expires)
        except (TypeError, ValueError):
            return False
        if expires_ms <= self.now_ms():
            return False
        return verify(self.creds, ws_auth_payload(expires_ms), sign)

    def take(self, endpoint: str, forced: bool = False) -> dict[str, str]:
        """Counts one request on `endpoint`; returns the X-Bapi-Limit* headers.

        Args:
            endpoint: the REST path (the trade WS passes the matching path).
            forced: refuse it (the `rate_limit` fault): remaining 0, reset 1 s ahead.

        Raises:
            RateLimited: over the endpoint's per-second limit (or forced).
        """
        limit = LIMITS.get(endpoint, QUERY_LIMIT_PER_S)
        now = self.now_ms()
        if forced:
            raise RateLimited(_headers(limit, 0, now + 1000))
        start, used = self._windows.get(endpoint, (0, 0))
        if now >= start + 1000:
            start, used = now - now % 1000, 0
        if used >= limit:
            raise RateLimited(_headers(limit, 0, start + 1000))
        self._windows[endpoint] = (start, used + 1)
        return _headers(limit, limit - used - 1, start + 1000)


def _headers(limit: int, left: int, reset_ms: int) -> dict[str, str]:
    return {
        "X-Bapi-Limit": str(limit),
        "X-Bapi-Limit-Status": str(left),
        "X-Bapi-Limit-Reset-Timestamp": str(reset_ms),
    }


__all__ = ["Gate", "RateLimited", "ORDER_PATHS", "Credentials"]
