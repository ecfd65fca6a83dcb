"""Bybit v5 signing against the self-computed vectors of venue_protocols.md §2.5."""

from connector.bybit.signing import (
    Credentials,
    in_window,
    rest_headers,
    rest_payload,
    verify,
    ws_auth_args,
)

SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
CREDS = Credentials("XXXXXXXXXX", SECRET)


def test_rest_get_vector():
    payload = rest_payload(1658384314791, "XXXXXXXXXX", 5000,
                           "category=option&symbol=BTC-29JUL22-25000-C")  # fmt: skip
    assert CREDS.sign(payload) == "e323698c63f02f247518ed579097320ce272aecaa4abaaa43e7fe5bc2a1ff528"


def test_rest_post_vector_signs_the_exact_body():
    h = rest_headers(CREDS, 1658385579423, 5000, '{"category": "option"}')
    assert h["X-BAPI-SIGN"] == "5f2445bfb8ff074dd96fe71f167243068e147b94713ebfafa28cee6252ebaedc"
    assert h["X-BAPI-TIMESTAMP"] == "1658385579423" and h["X-BAPI-RECV-WINDOW"] == "5000"
    # the same JSON written without the space is another body, another signature
    assert rest_headers(CREDS, 1658385579423, 5000, '{"category":"option"}')["X-BAPI-SIGN"] != h[
        "X-BAPI-SIGN"
    ]


def test_ws_auth_vector():
    key, expires, sig = ws_auth_args(CREDS, 1711010121452)
    assert (key, expires) == ("XXXXXXXXXX", 1711010121452)
    assert sig == "24871582bc2ed7dbd0d50649f3e91e7661e77400ff0ede151433c11c715eb68c"
    assert verify(CREDS, "GET/realtime1711010121452", sig.upper())
    assert not verify(CREDS, "GET/realtime1711010121453", sig)


def test_window_rule():
    assert in_window(10_000, 5000, 10_000)
    assert in_window(5000, 5000, 10_000)
    assert not in_window(4999, 5000, 10_000)
    assert in_window(10_999, 5000, 10_000)
    assert not in_window(11_000, 5000, 10_000)


def test_secret_never_shown():
    c = Credentials("abcdefghijklmnop", "topsecret")
    assert "topsecret" not in repr(c) and "topsecret" not in str(c)
