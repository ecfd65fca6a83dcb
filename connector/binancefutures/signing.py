"""Request signing for Binance USD-M futures (venue_protocols.md §1.6, §1.7). No I/O, no clock.

REST [BN-GI]: `signature` is the hex HMAC-SHA256 of totalParams keyed by the secret, where
totalParams is the query string concatenated directly with the request body (no `&`
between them); it must be the last parameter. With an Ed25519 key the signature is the
base64 Ed25519 signature of the same payload [BN-SDK common/utils.py], URL-encoded in the
query. `sign_params` builds a query string carrying everything (allowed for POST, PUT and
DELETE too); callers that send a body sign `query + body` with `sign_payload` instead.

WS-API [BN-WSAPI]: add `apiKey` and `timestamp` to the params, sort all by name, join as
`k=v&...`, sign that, add it as `signature` (`sign_ws_params`).

Secrets never reach a repr, a log or an exception message: `Credentials.__repr__` hides
the secret, and key-loading errors do not quote the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from connector.errors import ConfigError, UsageError

_RESERVED = frozenset(("timestamp", "recvWindow", "signature"))


@dataclass(frozen=True, slots=True)
class Credentials:
    """An API key and its secret: an HMAC secret string or a PEM (PKCS#8) Ed25519 private key.

    Raises:
        ConfigError: the secret looks like a PEM key that is not Ed25519, cannot be read,
            or `cryptography` (needed for Ed25519) is not installed.
    """

    api_key: str
    secret: str = field(repr=False)
    _ed25519: object = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.secret.lstrip().startswith("-----BEGIN"):
            object.__setattr__(self, "_ed25519", _load_ed25519(self.secret))

    def __repr__(self) -> str:
        key = self.api_key
        shown = f"{key[:4]}...{key[-4:]}" if len(key) > 12 else "..."
        return f"Credentials(api_key={shown!r}, kind={self.kind!r}, secret=<hidden>)"

    __str__ = __repr__

    @property
    def kind(self) -> str:
        """ "HMAC" or "ED25519"."""
        return "HMAC" if self._ed25519 is None else "ED25519"

    def sign(self, payload: str) -> str:
        """Signs `payload`: lowercase hex for HMAC, base64 (not URL-encoded) for Ed25519."""
        if self._ed25519 is None:
            return hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        return base64.b64encode(self._ed25519.sign(payload.encode())).decode()


def _load_ed25519(pem: str):
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError:
        raise ConfigError(
            "an Ed25519 (PEM) secret needs the 'cryptography' package: pip install cryptography"
        ) from None
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        # Never chain or quote the underlying error: it may echo key material.
        raise ConfigError("the PEM secret is not a readable unencrypted private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"PEM secrets must be Ed25519 keys, got {type(key).__name__}")
    return key


def _as_credentials(secret: str | Credentials) -> Credentials:
    return secret if isinstance(secret, Credentials) else Credentials("", secret)


def _items(params: Mapping[str, object] | Iterable[tuple[str, object]]) -> list[tuple[str, str]]:
    """(name, text) pairs in the caller's order; None values are left out."""
    pairs = params.items() if isinstance(params, Mapping) else params
    out = []
    for k, v in pairs:
        if k in _RESERVED:
            raise UsageError(f"{k!r} is added by the signer; do not pass it")
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"  # reduceOnly etc. [BN-GI]
        elif isinstance(v, float):
            # str(1e-05) == "1e-05", which the venue rejects: format to the tick/step first.
            raise UsageError(f"parameter {k!r} is a float; pass it formatted as a string")
        out.append((k, str(v)))
    return out


# quote_plus leaves these as they are (RFC 3986 unreserved); urlencode escapes the rest
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _query(items: list[tuple[str, str]]) -> str:
    """`urlencode(items)`, byte for byte, without its per-character quoting when no name or
    value needs any (an order's params never do: symbols, decimals, enums, client ids of
    `[.A-Za-z0-9_-]`): half of an HMAC-signed order's cost went into urlencode."""
    if _UNRESERVED.fullmatch("".join([k + v for k, v in items])):
        return "&".join([f"{k}={v}" for k, v in items])
    return urlencode(items)


def sign_payload(secret: str | Credentials, payload: str) -> str:
    """Signature of a raw totalParams string (query + body, concatenated directly)."""
    return _as_credentials(secret).sign(payload)


def sign_params(
    params: Mapping[str, object] | Iterable[tuple[str, object]],
    secret: str | Credentials,
    timestamp_ms: int,
    recv_window_ms: int | None,
) -> str:
    """The signed query string: params, `recvWindow`, `timestamp`, then `signature`.

    Args:
        params: request parameters, in order. Values: str, int or bool (sent as
            "true"/"false"); None is skipped; floats are refused (format them first).
        secret: an HMAC secret string, a PEM Ed25519 key, or Credentials.
        timestamp_ms: venue-clock milliseconds (the caller owns the clock).
        recv_window_ms: `recvWindow`, or None to leave it out (venue default 5000).

    Raises:
        UsageError: a reserved name (timestamp, recvWindow, signature) or a float value.
    """
    items = _items(params)
    if recv_window_ms is not None:
        items.append(("recvWindow", str(int(recv_window_ms))))
    items.append(("timestamp", str(int(timestamp_ms))))
    query = _query(items)
    creds = _as_credentials(secret)
    sig = creds.sign(query)
    if creds.kind != "HMAC":
        sig = quote(sig, safe="")  # base64 carries + / =
    return f"{query}&signature={sig}"


def sign_ws_params(
    params: Mapping[str, object],
    creds: Credentials,
    timestamp_ms: int,
    recv_window_ms: int | None = None,
) -> dict[str, object]:
    """WS-API `params` with `apiKey`, `timestamp`, optional `recvWindow` and `signature`.

    The payload is every param sorted by name and URL-encoded as k=v&k=v [BN-WSAPI].
    Values are returned unchanged (decimals stay strings, as the WS-API wants) except
    booleans, sent as the "true"/"false" strings that were signed.
    """
    bad = sorted(_RESERVED.union(("apiKey",)).intersection(params))
    if bad:
        raise UsageError(f"{bad} are added by the signer; do not pass them")
    texts = _items(params)  # also checks the values
    out: dict[str, object] = {k: v for k, v in params.items() if v is not None}
    out.update((k, t) for k, t in texts if isinstance(out[k], bool))  # sign and send "true"
    out["apiKey"] = creds.api_key
    out["timestamp"] = int(timestamp_ms)
    if recv_window_ms is not None:
        out["recvWindow"] = int(recv_window_ms)
    texts += [(k, str(out[k])) for k in ("apiKey", "timestamp", "recvWindow") if k in out]
    out["signature"] = creds.sign(_query(sorted(texts)))
    return out
