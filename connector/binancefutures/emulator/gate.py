"""What every request passes before it reaches the account: keys, signatures, clock, limits.

Signatures (§1.6, §1.7). REST: the signed payload is totalParams, the raw query string
concatenated directly with the raw body, with the trailing `signature=` parameter cut
out of whichever part carries it. WS-API: every param but `signature`, sorted by name,
joined as `k=v&...`. Both are recomputed with `signing.Credentials` (HMAC hex, compared
case-insensitively; Ed25519 is deterministic, so its base64 is recomputed and compared).

Clock (§1.6): accept when `timestamp < serverTime + 1000` and
`serverTime - timestamp <= recvWindow` (default 5000), else -1021; a recvWindow above
60000 is -1131 (spot's documented maximum; the futures maximum is UNCONFIRMED).

Limits (§1.6, §1.8). IP weight per calendar minute (REQUEST_WEIGHT, default 2400) and the
account's order counts per 10 s and per minute (ORDERS 300/10s, 1200/1m), fixed windows.
Over the weight limit: 429 -1003 with Retry-After (seconds to the next minute). A request
that comes while that Retry-After is still running gets the IP banned: 418 -1003 with
Retry-After for `ban_s`, and every request during the ban gets 418 again. Over an order
limit: 429 -1015.
"""

from __future__ import annotations

import math
import time
from urllib.parse import unquote_plus, urlencode

from connector.binancefutures.emulator.errors import ApiError, missing
from connector.binancefutures.signing import Credentials

MAX_FUTURE_MS = 1000  # a timestamp this far ahead of serverTime is refused
DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60_000


def split_signature(query: str, body: str) -> tuple[str, str | None]:
    """(signed payload, signature) from the raw query and body; signature None if absent.

    The payload is the query concatenated with the body, minus the `signature=` parameter
    (which the venue wants last, §1.6).
    """
    for in_query, part in ((True, query), (False, body)):
        pieces = part.split("&") if part else []
        for k, piece in enumerate(pieces):
            if piece.startswith("signature="):
                sig = unquote_plus(piece[len("signature=") :])
                rest = "&".join(pieces[:k] + pieces[k + 1 :])
                return (rest + body if in_query else query + rest), sig
    return query + body, None


def ws_payload(params: dict) -> str:
    """The WS-API signed payload: params except signature, sorted, `k=v&...` [BN-WSAPI]."""
    items = [
        (k, ("true" if v else "false") if isinstance(v, bool) else str(v))
        for k, v in params.items()
        if k != "signature"
    ]
    return urlencode(sorted(items))


class Gate:
    """Key, signature and clock checks plus rate limits for one emulated venue.

    Args:
        api_key, secret: the one account's credentials (HMAC secret or Ed25519 PEM).
        clock_ms: the server clock (skew included).
        weight_limit, orders_10s, orders_1m: limits (§1.6 [3P] production values).
        ban_s: how long a 418 ban lasts.
    """

    def __init__(
        self,
        api_key: str,
        secret: str,
        clock_ms,
        weight_limit: int = 2400,
        orders_10s: int = 300,
        orders_1m: int = 1200,
        ban_s: int = 120,
    ):
        self.creds = Credentials(api_key, secret)
        self.clock_ms = clock_ms
        self.weight_limit, self.orders_10s, self.orders_1m = weight_limit, orders_10s, orders_1m
        self.ban_s = ban_s
        self._weight = (0, 0)  # (minute index, used)
        self._orders = {10: (0, 0), 60: (0, 0)}
        self._backoff_until = 0.0  # monotonic s: Retry-After of the last 429
        self._banned_until = 0.0

    # ------------------------------------------------------------------ limits
    def used_weight(self) -> int:
        minute, used = self._weight
        return used if minute == int(time.time() // 60) else 0

    def order_counts(self) -> tuple[int, int]:
        return self._count(10), self._count(60)

    def _count(self, window: int) -> int:
        idx, n = self._orders[window]
        return n if idx == int(time.time() // window) else 0

    def charge(self, weight: int) -> None:
        """Adds request weight; raises the 429/418 ApiError when the IP must be refused."""
        now = time.monotonic()
        if now < self._banned_until:
            raise self._ban_error(now)
        if now < self._backoff_until:  # kept going after a 429: ban [BN-GI]
            self._banned_until = now + self.ban_s
            self._backoff_until = 0.0
            raise self._ban_error(now)
        minute = int(time.time() // 60)
        used = self.used_weight()
        if used + weight > self.weight_limit:
            wait = math.ceil((minute + 1) * 60 - time.time())
            self._backoff_until = now + wait
            raise ApiError(-1003, retry_after_s=wait, limit=self.weight_limit)
        self._weight = (minute, used + weight)

    def back_off(self, wait_s: float) -> None:
        """A 429 was answered: a request within `wait_s` gets the IP banned (418)."""
        self._backoff_until = max(self._backoff_until, time.monotonic() + wait_s)

    def _ban_error(self, now: float) -> ApiError:
        wait = math.ceil(self._banned_until - now)
        until = self.clock_ms() + wait * 1000
        msg = (
            f"Way too many requests; IP(127.0.0.1) banned until {until}. Please use the "
            "websocket for live updates to avoid bans."
        )
        return ApiError(-1003, msg, status=418, retry_after_s=wait)

    def count_order(self) -> None:
        """Counts one new/modified order against ORDERS; raises 429 -1015 over a limit."""
        n10, n60 = self.order_counts()
        if n10 + 1 > self.orders_10s:
            raise ApiError(-1015, limit=self.orders_10s, interval="TEN_SECONDS")
        if n60 + 1 > self.orders_1m:
            raise ApiError(-1015, limit=self.orders_1m, interval="MINUTE")
        now = time.time()
        self._orders[10] = (int(now // 10), n10 + 1)
        self._orders[60] = (int(now // 60), n60 + 1)

    # ------------------------------------------------------------------ auth
    def check_key(self, api_key: str | None) -> None:
        """USER_STREAM / signed endpoints: the key must be present and known."""
        if not api_key:
            raise ApiError(-2014)
        if api_key != self.creds.api_key:
            raise ApiError(-2015)

    def check_signed(self, params: dict, payload: str, signature: str | None) -> None:
        """Signature (-1102 absent, -1022 wrong) then timestamp and recvWindow (-1021)."""
        if not params.get("timestamp"):
            raise missing("timestamp")
        if not signature:
            raise missing("signature")
        expected = self.creds.sign(payload)
        ok = (
            expected.lower() == signature.lower()
            if self.creds.kind == "HMAC"
            else expected == signature
        )
        if not ok:
            raise ApiError(-1022)
        self.check_time(params)

    def check_time(self, params: dict) -> None:
        try:
            ts = int(params["timestamp"])
            window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
        except (TypeError, ValueError):
            raise ApiError(-1100, name="timestamp", legal="^[0-9]{1,20}$") from None
        if window > MAX_RECV_WINDOW_MS:
            raise ApiError(-1131)
        now = self.clock_ms()
        if ts >= now + MAX_FUTURE_MS:
            raise ApiError(
                -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if now - ts > window:
            raise ApiError(-1021)
