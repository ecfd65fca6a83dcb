"""connector.binancefutures.protocol over the real capture and the fact sheet's field tables.

Section numbers refer to shared/reference/venue_protocols.md PART 1.
"""

from __future__ import annotations

import functools
import gzip
import random
from pathlib import Path

import numpy as np
import orjson
import pytest

from connector.binancefutures import _levels as L
from connector.binancefutures import protocol as P
from connector.errors import UsageError, VenueProtocolError, VenueRejected

CAPTURE = Path(__file__).resolve().parents[2] / "shared/data/binancefutures/ethusdt_20240808.gz"


@functools.cache
def capture() -> list[tuple[int, bytes]]:
    """(local receive ns, raw JSON) per line of the capture."""
    assert CAPTURE.exists(), f"capture not found: {CAPTURE} (tests read ../shared)"
    out = []
    with gzip.open(CAPTURE, "rb") as f:
        for line in f:
            ts, raw = line.rstrip(b"\n").split(b" ", 1)
            out.append((int(ts), raw))
    return out


def first(kind: bytes) -> bytes:
    return next(raw for _, raw in capture() if kind in raw[:80])


def expected_levels(levels: list) -> np.ndarray:
    """Independent reference: float() per string, shape (n, 2)."""
    return np.array([[float(p), float(q)] for p, q in levels], dtype=np.float64).reshape(-1, 2)


def assert_depth_matches_json(upd: P.DepthUpdate, raw: bytes) -> None:
    m = orjson.loads(raw)
    d = m.get("data", m)
    assert upd.symbol == d["s"].lower()
    assert (upd.event_ts_ns, upd.transact_ts_ns) == (d["E"] * 1_000_000, d["T"] * 1_000_000)
    assert upd.first_update_id == d["U"]
    assert upd.final_update_id == d["u"]
    assert upd.prev_final_update_id == d["pu"]
    for got, levels in ((upd.bids, d["b"]), (upd.asks, d["a"])):
        assert got.dtype == np.float64 and got.shape == (len(levels), 2)
        assert np.array_equal(got, expected_levels(levels))  # bit-exact, not approx


# ------------------------------------------------------------------ §1.3 market data
def test_every_capture_line_parses():
    kinds: dict[str, int] = {}
    for _, raw in capture():
        msg = P.parse_stream(raw)
        kinds[type(msg).__name__] = kinds.get(type(msg).__name__, 0) + 1
        if isinstance(msg, P.DepthUpdate):
            assert_depth_matches_json(msg, raw)
    assert kinds == {"DepthUpdate": 6586, "BookTicker": 53992, "Trade": 14076, "DepthSnapshot": 1}


def test_capture_takes_the_fast_path():
    # White-box: a silent fallback would still be correct but ~5x slower (_levels docstring).
    for _, raw in capture():
        if raw.startswith(b'{"lastUpdateId"'):
            assert L.fast_book(raw, L.scan_snapshot) is not None
        elif b"depthUpdate" in raw[:80]:
            assert P._depth_fast(raw) is not None


def test_scanner_is_bit_identical_to_float_str_on_every_capture_depth_message():
    # The byte scanner alone (no parse_stream fallback to hide a miss), compared bit for bit
    # (tobytes: array_equal would let -0.0 pass for 0.0) with float() of each level string.
    n = 0
    for _, raw in capture():
        if raw.startswith(b'{"lastUpdateId"'):
            scan, kb, ka = L.scan_snapshot, "bids", "asks"
        elif b"depthUpdate" in raw[:80]:
            scan, kb, ka = L.scan_depth_update, "b", "a"
        else:
            continue
        r = L.fast_book(raw, scan)
        assert r is not None, raw[:120]
        _, bids, asks = r
        m = orjson.loads(raw)
        d = m.get("data", m)
        for got, levels in ((bids, d[kb]), (asks, d[ka])):
            want = expected_levels(levels)
            assert got.dtype == np.float64 and got.shape == want.shape
            assert got.tobytes() == want.tobytes(), raw[:120]
        n += 1
    assert n == 6586 + 1  # every depthUpdate of the capture, and its one REST snapshot


def test_first_depth_update_golden():
    raw = first(b"@depth")
    upd = P.parse_stream(raw)
    assert isinstance(upd, P.DepthUpdate)
    assert upd.symbol == "ethusdt"
    assert upd.event_ts_ns == 1723161256303_000000
    assert upd.transact_ts_ns == 1723161256302_000000
    assert upd.first_update_id == 5123107832349
    assert upd.final_update_id == 5123107837896
    assert upd.prev_final_update_id == 5123107832175
    assert upd.bids.shape == (32, 2) and upd.asks.shape == (37, 2)
    assert upd.bids[0].tolist() == [200.00, 10.229]
    assert upd.bids[-1].tolist() == [2681.62, 1.153]
    assert upd.asks[0].tolist() == [2681.63, 73.077]
    assert upd.asks[-1].tolist() == [2695.04, 34.236]
    assert upd.bids[23].tolist() == [2681.13, 0.0]  # "0.000": remove the level
    # Same result from str input and from the bare (raw-stream) payload.
    for other in (raw.decode(), orjson.dumps(orjson.loads(raw)["data"])):
        assert_depth_matches_json(P.parse_stream(other), raw)


def test_depth_levels_are_read_only():
    upd = P.parse_stream(first(b"@depth"))
    with pytest.raises(ValueError):
        upd.bids[0, 0] = 1.0


def test_depth_slow_path_agrees_with_fast_path():
    # Indented JSON defeats the byte scanner; the orjson + float() path must agree exactly.
    for _, raw in capture()[:3000]:
        if b"depthUpdate" in raw[:80]:
            pretty = orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2)
            assert_depth_matches_json(P.parse_stream(pretty), raw)


def test_depth_unusual_but_valid_numbers():
    # Exponent, > 15 digits and integer strings: outside the fast path, still float(str).
    d = {
        "e": "depthUpdate",
        "E": 1,
        "T": 2,
        "s": "ETHUSDT",
        "U": 3,
        "u": 4,
        "pu": 2,
        "b": [["1e3", "0.1234567890123456789"], ["7", "0"]],
        "a": [],
    }
    raw = orjson.dumps(d)
    upd = P.parse_stream(raw)
    assert_depth_matches_json(upd, raw)
    assert upd.asks.shape == (0, 2)


def test_first_book_ticker_golden():
    bt = P.parse_stream(first(b"@bookTicker"))
    assert bt == P.BookTicker(
        "ethusdt",
        5123107838717,
        1723161256311_000000,
        1723161256310_000000,
        2681.62,
        1.165,
        2681.63,
        73.077,
    )


def test_first_trade_golden():
    t = P.parse_stream(first(b"@trade"))
    assert t == P.Trade(
        "ethusdt",
        4308068523,
        1723161256560_000000,
        1723161256560_000000,
        2681.62,
        1.0,
        True,
        "MARKET",
    )
    assert t.taker_side == P.SELL  # m=true: the buyer was the maker, the taker sold


def test_snapshot_line_golden():
    raw = next(raw for _, raw in capture() if raw.startswith(b'{"lastUpdateId"'))
    for snap in (
        P.parse_depth_snapshot(raw),
        P.parse_stream(raw),
        P.parse_depth_snapshot(orjson.loads(raw)),
    ):
        assert isinstance(snap, P.DepthSnapshot)
        assert snap.last_update_id == 5123107856276
        assert snap.event_ts_ns == 1723161256567_000000
        assert snap.transact_ts_ns == 1723161256561_000000
        assert snap.bids.shape == (1000, 2) and snap.asks.shape == (1000, 2)
        assert snap.bids[0].tolist() == [2681.62, 16.969]
        assert snap.bids[-1].tolist() == [2668.38, 0.013]
        assert snap.asks[0].tolist() == [2681.63, 37.442]
        assert snap.asks[-1].tolist() == [2695.44, 0.056]
        d = orjson.loads(raw)
        assert np.array_equal(snap.bids, expected_levels(d["bids"]))
        assert np.array_equal(snap.asks, expected_levels(d["asks"]))


def test_agg_trade():
    d = {"e": "aggTrade", "E": 10, "s": "ETHUSDT", "a": 77, "p": "2681.62", "q": "1.5", "nq": "1.4"}
    d |= {"f": 100, "l": 105, "T": 9, "m": False, "st": 1}
    a = P.parse_stream(orjson.dumps({"stream": "ethusdt@aggTrade", "data": d}))
    assert a == P.AggTrade("ethusdt", 77, 10_000_000, 9_000_000, 2681.62, 1.5, 100, 105, False, 1.4)


def test_subscribe_reply_and_unknown_event():
    assert P.parse_stream(b'{"result":null,"id":"abc"}') == P.CommandReply("abc", None)
    assert P.parse_stream(b'{"e":"MARGIN_CALL","E":1,"cw":"3.1","p":[]}') == P.Unknown(
        "MARGIN_CALL"
    )
    err = P.parse_stream(b'{"code":2,"msg":"Invalid request","id":5}')
    assert err == P.ErrorReply(2, "Invalid request", 5)


# ---------------------------------------------------------------- malformed input
def raises_protocol_error(raw, *needles: str) -> None:
    with pytest.raises(VenueProtocolError) as ei:
        P.parse_stream(raw)
    for n in needles:
        assert n in str(ei.value)


def test_every_prefix_of_a_depth_message_raises():
    raw = first(b"@depth")
    for k in range(len(raw)):
        raises_protocol_error(raw[:k])


@pytest.mark.parametrize("kind", [b"@bookTicker", b"@trade"])
def test_every_prefix_of_small_messages_raises(kind):
    raw = first(kind)
    for k in range(len(raw)):
        raises_protocol_error(raw[:k])


def test_prefixes_of_the_snapshot_raise():
    raw = next(raw for _, raw in capture() if raw.startswith(b'{"lastUpdateId"'))
    for k in range(0, len(raw), 97):
        with pytest.raises(VenueProtocolError):
            P.parse_depth_snapshot(raw[:k])


def depth_data() -> dict:
    return orjson.loads(first(b"@depth"))["data"]


@pytest.mark.parametrize("field", ["s", "E", "T", "U", "u", "pu", "b", "a"])
def test_depth_missing_field_named(field):
    d = depth_data()
    del d[field]
    raises_protocol_error(orjson.dumps({"stream": "x", "data": d}), "depthUpdate", repr(field))


@pytest.mark.parametrize(
    "field, value",
    [
        ("U", "5123107832349"),
        ("u", 5.5),
        ("pu", True),
        ("E", None),
        ("s", 1),
        ("b", {"2681.62": "1"}),
        ("b", [[2681.62, 1.0]]),
        ("b", [["2681.62", "1.0", "9"]]),
        ("b", [["2681.62"]]),
        ("b", ["2681.62"]),
        ("a", [["2681.62", "abc"]]),
        ("a", [["2681.62", "-1.0"]]),
        ("a", [["nan", "1.0"]]),
        ("a", [["2681.62", "inf"]]),
    ],
)
def test_depth_wrong_types(field, value):
    d = depth_data()
    d[field] = value
    raises_protocol_error(orjson.dumps({"stream": "x", "data": d}), "depthUpdate", field)


@pytest.mark.parametrize("kind", [b"@bookTicker", b"@trade"])
def test_small_messages_missing_and_mistyped_fields(kind):
    d = orjson.loads(first(kind))["data"]
    for field in d:
        if field == "e":
            continue
        m = dict(d)
        del m[field]
        raises_protocol_error(orjson.dumps(m), repr(field))
        m[field] = [] if not isinstance(d[field], list) else "x"
        raises_protocol_error(orjson.dumps(m), repr(field))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"null",
        b"[1,2]",
        b"123",
        b'"depthUpdate"',
        b"\xff\xfe",
        b'{"e":5}',
        b"{}",
        b'{"stream":"x","data":7}',
        b'{"e":"depthUpdate"}',
        b'{"e":"depthUpdate","b":[],"a":[]}',
    ],
)
def test_garbage_raises(raw):
    raises_protocol_error(raw)


def test_bad_text_and_wrong_python_types():
    raises_protocol_error("\ud800")  # a lone surrogate cannot be UTF-8
    assert isinstance(P.parse_stream(bytearray(first(b"@trade"))), P.Trade)
    with pytest.raises(UsageError):
        P.parse_stream(5)


def test_random_corruptions_raise_protocol_error_or_parse_exactly():
    raw = first(b"@depth")
    rng = random.Random(20240808)
    alphabet = b'0123456789.,:[]{}"-eE \\ab'
    parsed = 0
    for _ in range(3000):
        buf = bytearray(raw)
        for _ in range(rng.randint(1, 3)):
            buf[rng.randrange(len(buf))] = rng.choice(alphabet)
        try:
            msg = P.parse_stream(bytes(buf))
        except VenueProtocolError:
            continue
        parsed += 1  # then it must be exactly what a plain JSON reading says
        if isinstance(msg, P.DepthUpdate):
            assert_depth_matches_json(msg, bytes(buf))
    assert parsed > 0


# ---------------------------------------------------------------- §1.5 user data
OTU_2021 = (
    b'{"e":"ORDER_TRADE_UPDATE","T":1610638208309,"E":1610638208312,"o":{"s":"BTCUSDT",'
    b'"c":"6bngAbc","S":"BUY","o":"MARKET","f":"GTC","q":"1","p":"0","ap":"39849.93000",'
    b'"sp":"0","x":"TRADE","X":"FILLED","i":2611733004,"l":"1","z":"1","L":"39849.93",'
    b'"n":"15.93997200","N":"USDT","T":1610638208309,"t":154402974,"b":"0","a":"0","m":false,'
    b'"R":false,"wt":"CONTRACT_PRICE","ot":"MARKET","ps":"BOTH","cp":false,"rp":"0",'
    b'"pP":false,"si":0,"ss":0}}'
)


def otu(**over) -> dict:
    """A current-shape ORDER_TRADE_UPDATE (every field of the §1.5 table)."""
    o = {
        "s": "ETHUSDT", "c": "hft0001abcdefghijklmnop", "S": "SELL", "o": "LIMIT", "f": "GTX",
        "q": "0.500", "p": "2690.10", "ap": "2690.10", "sp": "0", "x": "TRADE",
        "X": "PARTIALLY_FILLED", "i": 8389765512, "l": "0.200", "z": "0.200", "L": "2690.10",
        "N": "USDT", "n": "-0.01076040", "T": 1723161300123, "t": 4308070001, "b": "0",
        "a": "1345.05", "m": True, "R": False, "wt": "CONTRACT_PRICE", "ot": "LIMIT",
        "ps": "BOTH", "cp": False, "rp": "0.43210000", "pP": False, "si": 0, "ss": 0,
        "V": "EXPIRE_TAKER", "pm": "NONE", "gtd": 0, "er": "0",
    }  # fmt: skip
    o.update(over)
    return {"e": "ORDER_TRADE_UPDATE", "E": 1723161300125, "T": 1723161300123, "o": o}


def test_order_trade_update_2021_message():
    u = P.parse_stream(OTU_2021)
    assert isinstance(u, P.OrderTradeUpdate)
    assert (u.symbol, u.client_order_id, u.side, u.order_type, u.tif) == (
        "btcusdt",
        "6bngAbc",
        "BUY",
        "MARKET",
        "GTC",
    )
    assert (u.exec_type, u.status, u.order_id, u.trade_id) == (
        "TRADE",
        "FILLED",
        2611733004,
        154402974,
    )
    assert (u.orig_qty, u.price, u.avg_price, u.last_fill_qty, u.cum_qty) == (
        1.0,
        0.0,
        39849.93,
        1.0,
        1.0,
    )
    assert (u.last_fill_px, u.commission, u.commission_asset) == (39849.93, 15.939972, "USDT")
    assert (u.event_ts_ns, u.transact_ts_ns) == (1610638208312_000000, 1610638208309_000000)
    assert u.trade_time_ns == 1610638208309_000000
    assert (u.maker, u.reduce_only, u.position_side, u.orig_order_type) == (
        False,
        False,
        "BOTH",
        "MARKET",
    )
    assert (u.expiry_reason, u.modify_id) == (None, None)
    assert P.order_status(u.status) == P.FILLED and P.is_fill(u.exec_type)


def test_order_trade_update_current_shape_wrapped():
    u = P.parse_stream(orjson.dumps({"stream": "listenkey123", "data": otu()}))
    assert u.symbol == "ethusdt" and u.side == "SELL" and P.side_code(u.side) == P.SELL
    assert P.tif_code(u.tif) == P.GTX and P.order_type_code(u.order_type) == P.LIMIT
    assert P.order_status(u.status) == P.PARTIALLY_FILLED
    assert (u.commission, u.realized_pnl, u.expiry_reason, u.maker) == (-0.0107604, 0.4321, 0, True)


def test_order_trade_update_optional_fields_absent():
    d = otu(x="NEW", X="NEW", l="0", z="0", L="0", t=0)
    for k in ("n", "N", "ap", "sp", "rp", "er", "ps", "ot"):
        del d["o"][k]
    u = P.parse_stream(orjson.dumps(d))
    assert (u.commission, u.commission_asset, u.avg_price, u.expiry_reason) == (
        None,
        None,
        None,
        None,
    )
    assert not P.is_fill(u.exec_type)


def test_order_trade_update_amendment_and_expiry():
    u = P.parse_stream(orjson.dumps(otu(x="AMENDMENT", X="NEW", M=12)))
    assert (u.exec_type, u.modify_id) == ("AMENDMENT", 12)
    u = P.parse_stream(orjson.dumps(otu(x="EXPIRED", X="EXPIRED_IN_MATCH", er="1")))
    assert P.order_status(u.status) == P.EXPIRED and u.expiry_reason == 1


@pytest.mark.parametrize(
    "over, needle",
    [
        ({"X": "WEIRD"}, "'X'"),
        ({"x": "FILL"}, "'x'"),
        ({"S": "buy"}, "'S'"),
        ({"i": "8389765512"}, "'i'"),
        ({"l": 0.2}, "'l'"),
        ({"m": "true"}, "'m'"),
        ({"er": "x"}, "'er'"),
    ],
)
def test_order_trade_update_bad_fields(over, needle):
    raises_protocol_error(orjson.dumps(otu(**over)), "ORDER_TRADE_UPDATE", needle)


@pytest.mark.parametrize(
    "field", ["s", "c", "S", "o", "f", "q", "p", "x", "X", "i", "l", "z", "L", "T", "t", "m", "R"]
)
def test_order_trade_update_missing_required(field):
    d = otu()
    del d["o"][field]
    raises_protocol_error(orjson.dumps(d), "ORDER_TRADE_UPDATE.o", repr(field))


def test_trade_lite():
    d = {
        "e": "TRADE_LITE", "E": 1723161300125, "T": 1723161300123, "s": "ETHUSDT", "q": "0.500",
        "p": "2690.10", "m": True, "c": "hft0001x", "S": "SELL", "L": "2690.10", "l": "0.200",
        "t": 4308070001, "i": 8389765512,
    }  # fmt: skip
    t = P.parse_stream(orjson.dumps(d))
    assert t == P.TradeLite(
        event_ts_ns=1723161300125_000000, transact_ts_ns=1723161300123_000000, symbol="ethusdt",
        client_order_id="hft0001x", side="SELL", orig_qty=0.5, price=2690.1,
        last_fill_px=2690.1, last_fill_qty=0.2, trade_id=4308070001, order_id=8389765512,
        maker=True,
    )  # fmt: skip
    del d["i"]
    raises_protocol_error(orjson.dumps(d), "TRADE_LITE", "'i'")


def test_account_update():
    d = {
        "e": "ACCOUNT_UPDATE", "E": 1723161300130, "T": 1723161300123,
        "a": {
            "m": "ORDER",
            "B": [{"a": "USDT", "wb": "1000.5", "cw": "990.25", "bc": "0"}],
            "P": [
                {"s": "ETHUSDT", "pa": "-0.200", "ep": "2690.10", "bep": "2691.2", "cr": "12.5",
                 "up": "0.01", "mt": "cross", "iw": "0", "ps": "BOTH"},
                {"s": "BTCUSDT", "pa": "0", "ep": "0.0", "ps": "BOTH"},
            ],
        },
    }  # fmt: skip
    a = P.parse_stream(orjson.dumps(d))
    assert a.reason == "ORDER" and a.funding_symbol is None
    assert (a.event_ts_ns, a.transact_ts_ns) == (1723161300130_000000, 1723161300123_000000)
    assert a.balances == (
        P.Balance(
            asset="USDT", wallet_balance=1000.5, cross_wallet_balance=990.25, balance_change=0.0
        ),
    )
    p0, p1 = a.positions
    assert (p0.symbol, p0.position_amt, p0.entry_px, p0.breakeven_px, p0.margin_type) == (
        "ethusdt",
        -0.2,
        2690.1,
        2691.2,
        "cross",
    )
    assert (p1.symbol, p1.position_amt, p1.unrealized_pnl) == ("btcusdt", 0.0, None)
    # FUNDING_FEE on a cross position: B only, plus the symbol in a.S.
    d["a"] = {"m": "FUNDING_FEE", "B": d["a"]["B"], "P": [], "S": "ETHUSDT"}
    a = P.parse_stream(orjson.dumps(d))
    assert (a.reason, a.positions, a.funding_symbol) == ("FUNDING_FEE", (), "ethusdt")
    d["a"]["P"] = [{"s": "ETHUSDT", "ep": "1"}]
    raises_protocol_error(orjson.dumps(d), "ACCOUNT_UPDATE.a.P[0]", "'pa'")


@pytest.mark.parametrize("e_value", [1693427319838, "1693427319838"])
def test_listen_key_expired_number_or_string(e_value):
    d = {
        "e": "listenKeyExpired",
        "E": e_value,
        "listenKey": "OfYGbUzi3PraNagEkdKuFwUHn48brFsItTdsuiIXrucEvD0rhRXZ7I6URWfE8YE8",
    }
    x = P.parse_stream(orjson.dumps({"stream": d["listenKey"], "data": d}))
    assert x == P.ListenKeyExpired(1693427319838_000000, d["listenKey"])


@pytest.mark.parametrize("e_value", ["16934x", 1.5, None, True])
def test_listen_key_expired_bad_time(e_value):
    raises_protocol_error(orjson.dumps({"e": "listenKeyExpired", "E": e_value}), "'E'")


# ----------------------------------------------------------------- §1.6-1.8 REST
ORDER_BODY = {
    "clientOrderId": "hft0001abc", "cumQty": "0", "cumQuote": "0", "executedQty": "0",
    "orderId": 8389765512, "avgPrice": "0.00", "origQty": "0.500", "price": "2690.10",
    "reduceOnly": False, "side": "BUY", "positionSide": "BOTH", "status": "NEW",
    "stopPrice": "0", "closePosition": False, "symbol": "ETHUSDT", "timeInForce": "GTX",
    "type": "LIMIT", "origType": "LIMIT", "updateTime": 1723161300123,
    "workingType": "CONTRACT_PRICE", "priceProtect": False, "priceMatch": "NONE",
    "selfTradePreventionMode": "NONE", "goodTillDate": 0,
}  # fmt: skip


def test_order_response_rest():
    r = P.parse_order_response(orjson.dumps(ORDER_BODY))
    assert r == P.OrderResponse(
        symbol="ethusdt", order_id=8389765512, client_order_id="hft0001abc", side="BUY",
        order_type="LIMIT", tif="GTX", orig_qty=0.5, price=2690.1, executed_qty=0.0,
        cum_qty=0.0, avg_price=0.0, cum_quote=0.0, status="NEW", reduce_only=False,
        position_side="BOTH", update_time_ns=1723161300123_000000, request_id=None,
    )  # fmt: skip


def test_order_response_without_avg_price_and_cum_quote():
    body = {k: v for k, v in ORDER_BODY.items() if k not in ("avgPrice", "cumQuote")}
    r = P.parse_order_response(body | {"status": "CANCELED"})
    assert (r.avg_price, r.cum_quote, P.order_status(r.status)) == (None, None, P.CANCELED)


def test_order_response_ws_api_envelopes():
    ok = {"id": "r-1", "status": 200, "result": ORDER_BODY, "rateLimits": []}
    r = P.parse_order_response(orjson.dumps(ok))
    assert isinstance(r, P.OrderResponse) and r.request_id == "r-1" and r.order_id == 8389765512
    bad = {
        "id": 7,
        "status": 400,
        "error": {"code": -5022, "msg": "Post Only order will be rejected."},
    }
    e = P.parse_order_response(orjson.dumps(bad))
    assert e == P.ErrorReply(P.GTX_REJECT_CODE, "Post Only order will be rejected.", 7)
    assert P.parse_error(orjson.dumps(bad)) == e


def test_error_replies():
    e = P.parse_order_response(b'{"code":-2019,"msg":"Margin is insufficient."}')
    assert e == P.ErrorReply(-2019, "Margin is insufficient.")
    assert P.parse_error(b'{"code":-2011,"msg":"Unknown order sent."}').code == -2011
    ok = P.parse_error(b'{"code":200,"msg":"The operation of cancel all open order is done."}')
    assert ok.code == 200
    exc = e.to_exception()
    assert isinstance(exc, VenueRejected) and (exc.code, exc.msg) == (
        -2019,
        "Margin is insufficient.",
    )
    for raw in (b'{"code":"-2019","msg":"x"}', b'{"msg":"x"}', b'{"code":-1,"msg":3}', b"oops"):
        with pytest.raises(VenueProtocolError):
            P.parse_error(raw)


@pytest.mark.parametrize(
    "field", ["symbol", "orderId", "clientOrderId", "side", "status", "updateTime", "origQty"]
)
def test_order_response_missing_field(field):
    body = dict(ORDER_BODY)
    del body[field]
    with pytest.raises(VenueProtocolError, match=repr(field)):
        P.parse_order_response(body)


# ----------------------------------------------------------------- enum mappings
def test_order_status_mapping():
    assert {s: P.order_status(s) for s in sorted(P.ORDER_STATUSES)} == {
        "CANCELED": P.CANCELED,
        "EXPIRED": P.EXPIRED,
        "EXPIRED_IN_MATCH": P.EXPIRED,
        "FILLED": P.FILLED,
        "NEW": P.NEW,
        "PARTIALLY_FILLED": P.PARTIALLY_FILLED,
        "REJECTED": P.EXPIRED,
    }
    assert (
        P.NONE,
        P.NEW,
        P.EXPIRED,
        P.FILLED,
        P.CANCELED,
        P.PARTIALLY_FILLED,
        P.REJECTED,
    ) == tuple(range(7))
    with pytest.raises(VenueProtocolError):
        P.order_status("PENDING_NEW")


def test_side_tif_type_mapping():
    assert (P.side_code("BUY"), P.side_code("SELL")) == (1, -1)
    assert [P.tif_code(t) for t in ("GTC", "GTX", "FOK", "IOC", "GTD")] == [
        0,
        1,
        2,
        3,
        P.UNSUPPORTED,
    ]
    assert [P.order_type_code(t) for t in ("LIMIT", "MARKET", "STOP")] == [0, 1, P.UNSUPPORTED]
    assert P.TIF_NAMES[P.GTX] == "GTX" and P.SIDE_NAMES[P.SELL] == "SELL"
    assert P.ORDER_TYPE_NAMES[P.MARKET] == "MARKET"
    with pytest.raises(VenueProtocolError):
        P.side_code("BOTH")


# ----------------------------------------------------------------------------- position mode
def test_position_mode_true_is_hedge_false_is_one_way():
    """[BN "Get Current Position Mode"]: `{"dualSidePosition": true}` is hedge mode."""
    assert P.parse_position_mode(b'{"dualSidePosition":true}') is True
    assert P.parse_position_mode(b'{"dualSidePosition":false}') is False
    assert P.parse_position_mode({"dualSidePosition": False}) is False  # a parsed body


@pytest.mark.parametrize(
    "raw, names",
    [
        (b"{}", "missing field 'dualSidePosition'"),
        (b'{"dualSidePosition":"true"}', "must be boolean"),  # a string is not the mode
        (b'{"dualSidePosition":1}', "must be boolean"),
        (b'{"dualSidePosition":null}', "dualSidePosition"),
        (b"[true]", "expected a JSON object"),
        (b'{"dualSidePosition":tru', "malformed JSON"),
    ],
)
def test_position_mode_malformed_raises_naming_the_field(raw, names):
    with pytest.raises(VenueProtocolError, match=names):
        P.parse_position_mode(raw)
