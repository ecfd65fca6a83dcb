"""connector.binancefutures.signing against venue_protocols.md §1.6 (REST) and §1.7 (WS-API)."""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl, unquote

import pytest

from connector.binancefutures.signing import (
    Credentials,
    sign_params,
    sign_payload,
    sign_ws_params,
)
from connector.errors import ConfigError, UsageError

# Official HMAC test vector [BN-GI], example 1.
SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
API_KEY = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
MESSAGE = (
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
    "&recvWindow=5000&timestamp=1591702613943"
)
SIGNATURE = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
PARAMS = [
    ("symbol", "BTCUSDT"),
    ("side", "BUY"),
    ("type", "LIMIT"),
    ("quantity", "1"),
    ("price", "9000"),
    ("timeInForce", "GTC"),
]


def test_official_hmac_vector_payload():
    assert sign_payload(SECRET, MESSAGE) == SIGNATURE


@pytest.mark.parametrize("params", [PARAMS, dict(PARAMS)])
def test_official_hmac_vector_query(params):
    query = sign_params(params, SECRET, 1591702613943, 5000)
    assert query == f"{MESSAGE}&signature={SIGNATURE}"
    creds = Credentials(API_KEY, SECRET)
    assert sign_params(params, creds, 1591702613943, 5000) == query


def test_query_plus_body_is_concatenated_without_ampersand():
    # [BN-GI] totalParams = query string + body, directly concatenated; example 3 split.
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
    body = "quantity=1&price=9000&recvWindow=5000&timestamp=1591702613943"
    # The fact sheet's own computation without the docs' stray space.
    expected = "30baaf0fab549bbeda7f5ef201898b34122da25fd23c646cac2c529aebe670a4"
    assert sign_payload(SECRET, query + body) == expected


def test_ws_api_params_sorted_and_signed():
    # Self-computed vector from the fact sheet §1.7 (not published by Binance).
    creds = Credentials(API_KEY, SECRET)
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTX",
        "quantity": "0.001",
        "price": "60000.0",
        "newClientOrderId": "test-0001",
    }
    out = sign_ws_params(params, creds, 1591702613943)
    assert out["signature"] == "9c0a4cde769b44ce4802396d6fbc3619ee4784630691eceeda4ff9daa6cf64d2"
    assert out["apiKey"] == API_KEY and out["timestamp"] == 1591702613943
    assert "recvWindow" not in out and params.get("signature") is None  # input untouched


def test_param_values():
    q = sign_params({"reduceOnly": True, "price": None, "n": 3}, SECRET, 1, None)
    assert q.startswith("reduceOnly=true&n=3&timestamp=1&signature=")
    with pytest.raises(UsageError, match="float"):
        sign_params({"price": 1e-05}, SECRET, 1, 5000)
    for reserved in ("timestamp", "recvWindow", "signature"):
        with pytest.raises(UsageError, match=reserved):
            sign_params({reserved: "1"}, SECRET, 1, 5000)
    with pytest.raises(UsageError):
        sign_ws_params({"apiKey": "x"}, Credentials(API_KEY, SECRET), 1)


def test_repr_hides_the_secret():
    creds = Credentials(API_KEY, SECRET)
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert SECRET not in text and SECRET[:8] not in text
        assert API_KEY not in text  # only a short hint of the key
    assert creds.kind == "HMAC"


def test_ed25519_key_signs_base64_and_verifies():
    import cryptography.hazmat.primitives.asymmetric.ed25519 as ed25519
    import cryptography.hazmat.primitives.serialization as serialization

    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    creds = Credentials(API_KEY, pem)
    assert creds.kind == "ED25519"
    assert "PRIVATE KEY" not in repr(creds) and pem not in repr(creds)
    query = sign_params(PARAMS, creds, 1591702613943, 5000)
    payload, _, sig = query.rpartition("&signature=")
    assert payload == MESSAGE
    raw = base64.b64decode(unquote(sig))
    key.public_key().verify(raw, MESSAGE.encode())  # raises if wrong
    assert dict(parse_qsl(query))["signature"] == base64.b64encode(raw).decode()
    # Ed25519 is deterministic: same payload, same signature.
    assert sign_params(PARAMS, creds, 1591702613943, 5000) == query


def test_bad_pem_is_a_config_error_without_key_material():
    bad = "-----BEGIN PRIVATE KEY-----\nnot-base64-at-all\n-----END PRIVATE KEY-----\n"
    with pytest.raises(ConfigError) as ei:
        Credentials(API_KEY, bad)
    assert "not-base64" not in str(ei.value)
    assert ei.value.__cause__ is None and ei.value.__suppress_context__


def test_non_ed25519_pem_is_refused():
    import cryptography.hazmat.primitives.asymmetric.ec as ec
    import cryptography.hazmat.primitives.serialization as serialization

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ConfigError, match="Ed25519"):
        Credentials(API_KEY, pem)


def test_the_query_is_urlencodes_byte_for_byte_with_or_without_its_shortcut():
    """signing._query skips urlencode's quoting when nothing needs it: for every name and
    value, safe or not, the text is urlencode's (what was signed is what is sent)."""
    import random
    from urllib.parse import urlencode

    from connector.binancefutures.signing import _query

    rng = random.Random(5)
    alphabet = "AZaz09_.~-" + " +&=/:%?#\u00e9\u20ac\"'"
    cases = [[("newClientOrderId", "hl:run/1"), ("price", "2500.00")], [("a", "")], [],
             [("symbol", "ETHUSDT"), ("quantity", "0.010"), ("timeInForce", "GTX")]]  # fmt: skip
    for _ in range(2000):
        cases.append([("".join(rng.choices(alphabet, k=rng.randint(1, 6))),
                       "".join(rng.choices(alphabet, k=rng.randint(0, 8))))
                      for _ in range(rng.randint(1, 4))])  # fmt: skip
    for items in cases:
        assert _query(items) == urlencode(items), items
