"""Request signing for Bybit v5 (venue_protocols.md §2.3-§2.5). No I/O, no clock.

REST [BY guide.mdx]: headers X-BAPI-API-KEY, X-BAPI-TIMESTAMP (ms), X-BAPI-RECV-WINDOW and
X-BAPI-SIGN, the lowercase hex HMAC-SHA256 of `timestamp + api_key + recv_window + X`, where
X is the query string exactly as sent (GET) or the raw JSON body exactly as sent (POST).
The venue accepts a request when `server_time - recv_window <= timestamp < server_time +
1000` (`in_window`).

WebSocket auth (private and trade streams) [BY wss-authentication.mdx]: `{"op": "auth",
"args": [api_key, expires_ms, signature]}` with signature = hex HMAC-SHA256 of
`"GET/realtime" + str(expires_ms)`; expires is a time in the future.

Only HMAC keys are supported (Bybit's RSA keys are not). The secret never reaches a repr,
a log or an exception message.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Credentials:
    """A Bybit API key and its HMAC secret."""

    api_key: str
    secret: str = field(repr=False)

    def __repr__(self) -> str:
        key = self.api_key
        shown = f"{key[:4]}...{key[-4:]}" if len(key) > 12 else "..."
        return f"Credentials(api_key={shown!r}, secret=<hidden>)"

    __str__ = __repr__

    def sign(self, payload: str) -> str:
        """Lowercase hex HMAC-SHA256 of `payload` keyed by the secret."""
        return hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def rest_payload(timestamp_ms: int, api_key: str, recv_window_ms: int, query_or_body: str) -> str:
    """The string a REST request signs: `timestamp + api_key + recv_window + X`."""
    return f"{timestamp_ms}{api_key}{recv_window_ms}{query_or_body}"


def rest_headers(creds: Credentials, timestamp_ms: int, recv_window_ms: int,
                 query_or_body: str) -> dict[str, str]:  # fmt: skip
    """The X-BAPI-* headers of one signed REST request."""
    sig = creds.sign(rest_payload(timestamp_ms, creds.api_key, recv_window_ms, query_or_body))
    return {
        "X-BAPI-API-KEY": creds.api_key,
        "X-BAPI-TIMESTAMP": str(timestamp_ms),
        "X-BAPI-RECV-WINDOW": str(recv_window_ms),
        "X-BAPI-SIGN": sig,
    }


def ws_auth_payload(expires_ms: int) -> str:
    return f"GET/realtime{expires_ms}"


def ws_auth_args(creds: Credentials, expires_ms: int) -> list:
    """The `args` of a WebSocket `auth` request: [api_key, expires_ms, signature]."""
    return [creds.api_key, expires_ms, creds.sign(ws_auth_payload(expires_ms))]


def in_window(timestamp_ms: int, recv_window_ms: int, server_ms: int) -> bool:
    """Bybit's acceptance rule: server - recv_window <= timestamp < server + 1000."""
    return server_ms - recv_window_ms <= timestamp_ms < server_ms + 1000


def verify(creds: Credentials, payload: str, signature: str) -> bool:
    """`signature` is the HMAC of `payload` (constant time)."""
    return hmac.compare_digest(creds.sign(payload), signature.lower())
