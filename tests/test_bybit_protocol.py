"""Bybit v5 private, trade and REST parsers and the status/reason mapping, over recorded-
format messages (tests/fixtures/bybit/, one message per file; shapes from
venue_protocols.md §2.3-§2.5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector import codes
from connector.bybit import mapping
from connector.bybit.protocol import (
    Execution,
    OpReply,
    OrderUpdate,
    Position,
    PrivatePush,
    Wallet,
    limits_of,
    parse_envelope,
    parse_execution_list,
    parse_instruments,
    parse_order_list,
    parse_position_list,
    parse_position_mode,
    parse_private,
    parse_trade,
)
from connector.errors import VenueProtocolError
from hftlive import constants as R

FIX = Path(__file__).parent / "fixtures" / "bybit"


def raw(name: str) -> bytes:
    return (FIX / f"{name}.json").read_bytes()


# ---------------------------------------------------------------------------- §2.3 private
def test_order_push_fields_and_times_in_ns():
    m = parse_private(raw("private_order_new"))
    assert isinstance(m, PrivatePush) and m.topic == "order"
    assert m.creation_ns == 1733300000130 * 1_000_000
    (o,) = m.items
    assert o == OrderUpdate(
        order_id="1e5b6d0f-7c2b-4d1e-9a31-5f2b3c4d5e6f", client_id="hlm3x9k2a-1k",
        symbol="BTCUSDT", side="Buy", order_type="Limit", tif="GTC", status="New",
        price=60000.0, qty=0.01, cum_qty=0.0, leaves_qty=0.01, avg_price=0.0,
        reject_reason="EC_NoError", cancel_type="UNKNOWN",
        created_ns=1733300000123_000_000, updated_ns=1733300000123_000_000,
    )  # fmt: skip


@pytest.mark.parametrize(
    "name, status",
    [
        ("private_order_new", R.NEW),
        ("private_order_partially_filled", R.PARTIALLY_FILLED),
        ("private_order_filled", R.FILLED),
        ("private_order_cancelled", R.CANCELED),
        ("private_order_postonly_cancelled", R.EXPIRED),
        ("private_order_rejected", R.EXPIRED),
        ("private_order_partially_filled_canceled", R.CANCELED),
    ],
)
def test_order_status_mapping(name, status):
    (o,) = parse_private(raw(name)).items
    assert mapping.order_status(o.status, o.reject_reason, o.cum_qty) == status


def test_a_crossing_post_only_is_expired_with_the_post_only_reason():
    (o,) = parse_private(raw("private_order_postonly_cancelled")).items
    assert o.tif == "PostOnly" and o.reject_reason == mapping.POST_ONLY_REASON
    assert mapping.is_post_only_cross(o.status, o.reject_reason, o.cum_qty)
    assert codes.REASONS[codes.POST_ONLY_CROSSED] == R.REJECT_POST_ONLY
    # a Cancelled order that had filled is a cancel, whatever its rejectReason says
    assert mapping.order_status("Cancelled", mapping.POST_ONLY_REASON, 0.004) == R.CANCELED


def test_unknown_order_status_is_a_protocol_error():
    with pytest.raises(VenueProtocolError, match="orderStatus"):
        mapping.order_status("Sleeping")


def test_execution_push_carries_each_fill():
    m = parse_private(raw("private_execution"))
    assert [type(e) for e in m.items] == [Execution, Execution]
    a, b = m.items
    assert (a.exec_id, a.client_id, a.px, a.qty, a.fee, a.maker, a.ts_ns, a.seq) == (
        "7e2ae69c-4edf-5800-a352-893d52b446aa", "hlm3x9k2a-1k", 60000.0, 0.004, 0.0024, True,
        1733300001456_000_000, 4688002127)  # fmt: skip
    assert (b.qty, b.fee) == (0.006, -0.0036)  # a rebate is negative


def test_position_push_signed_by_side_and_flat():
    (p,) = parse_private(raw("private_position")).items
    assert p == Position("BTCUSDT", "Sell", 0.01, 0, 1733300002789_000_000)
    assert p.signed_size == -0.01
    (f,) = parse_private(raw("private_position_flat")).items
    assert (f.side, f.signed_size) == ("", 0.0)


def test_a_position_with_size_and_no_side_is_refused():
    bad = raw("private_position").replace(b'"side": "Sell"', b'"side": ""')
    with pytest.raises(VenueProtocolError, match="side"):
        parse_private(bad)


def test_wallet_push():
    (w,) = parse_private(raw("private_wallet")).items
    assert w == Wallet("UNIFIED", 100021.91, {"USDT": 100021.93})


@pytest.mark.parametrize(
    "name, op, ok",
    [("private_auth_ok", "auth", True), ("private_auth_failed", "auth", False),
     ("private_subscribe_ok", "subscribe", True), ("private_pong", "pong", True)],
)  # fmt: skip
def test_private_op_replies(name, op, ok):
    m = parse_private(raw(name))
    assert isinstance(m, OpReply) and (m.op, m.success) == (op, ok)


@pytest.mark.parametrize(
    "bad, match",
    [(b'{"topic": "order", "data": [{"orderId": "x"', "not JSON"),
     (b'{"topic": "order", "creationTime": 1, "data": [{"orderId": "x"}]}', "'orderLinkId'|'symbol'"),
     (b'{"topic": "order", "creationTime": 1, "data": {}}', "'data' must be an array"),
     (b'{"topic": "greeks", "creationTime": 1, "data": []}', "not subscribed"),
     (b'[1, 2]', "not a JSON object")],
)  # fmt: skip
def test_malformed_private_frames_name_what_is_wrong(bad, match):
    with pytest.raises(VenueProtocolError, match=match):
        parse_private(bad)


def test_order_time_must_be_ms():
    bad = raw("private_order_new").replace(b'"updatedTime": "1733300000123"',
                                           b'"updatedTime": "soon"')  # fmt: skip
    with pytest.raises(VenueProtocolError, match="updatedTime"):
        parse_private(bad)


# ---------------------------------------------------------------------------- §2.4 trade
def test_trade_create_reply_with_limits():
    r = parse_trade(raw("trade_create_ok"))
    assert (r.op, r.req_id, r.ret_code, r.ok) == ("order.create", "7", 0, True)
    assert r.data["orderLinkId"] == "hlm3x9k2a-1k"
    assert (r.limits.limit, r.limits.remaining, r.limits.reset_ms) == (10, 9, 1733300000124)
    assert r.time_ms == 1733300000124


@pytest.mark.parametrize(
    "name, op, code, reason",
    [
        ("trade_auth_ok", "auth", 0, None),
        ("trade_auth_invalid_sign", "auth", 10004, R.REJECT_OTHER),
        ("trade_pong", "pong", 0, None),
        ("trade_amend_ok", "order.amend", 0, None),
        ("trade_create_insufficient", "order.create", 110007, R.REJECT_INSUFFICIENT_MARGIN),
        ("trade_cancel_unknown", "order.cancel", 110001, R.REJECT_UNKNOWN_ORDER),
        ("trade_duplicate_reqid", "order.create", 20006, R.REJECT_OTHER),
        ("trade_ip_limit", "order.create", 10403, R.REJECT_RATE_LIMITED),
        ("trade_frequency_protection", "order.create", 10429, R.REJECT_RATE_LIMITED),
        ("trade_internal_error", "order.create", 10016, R.REJECT_VENUE_BUSY),
        ("trade_service_restarting", "order.create", 10019, R.REJECT_VENUE_BUSY),
    ],
)
def test_trade_replies_and_their_reasons(name, op, code, reason):
    r = parse_trade(raw(name))
    assert (r.op, r.ret_code, r.ok) == (op, code, code == 0)
    if reason is not None:
        assert mapping.reject_reason(code) == reason


def test_trade_frame_without_op_is_refused():
    with pytest.raises(VenueProtocolError, match="'op'"):
        parse_trade(b'{"retCode": 0}')


# ---------------------------------------------------------------------------- §2.5 REST
@pytest.mark.parametrize("name", ["rest_ok_empty_msg", "rest_ok_success", "rest_market_time"])
def test_rest_success_envelopes(name):
    e = parse_envelope(raw(name))
    assert e.ok and e.ret_msg in ("", "success", "OK") and e.time_ms == 1733300000500


def test_rest_error_envelopes():
    e = parse_envelope(raw("rest_rate_limited"))
    assert (e.ok, e.ret_code, mapping.reject_reason(e.ret_code)) == (False, 10006,
                                                                     R.REJECT_RATE_LIMITED)  # fmt: skip
    assert parse_envelope(raw("rest_timestamp_window")).ret_code == 10002
    with pytest.raises(VenueProtocolError, match="retCode"):
        parse_envelope(b'{"retMsg": "OK"}')


def test_instruments_info():
    (i,) = parse_instruments(parse_envelope(raw("rest_instruments_info")).result)
    assert (i.symbol, i.status, i.tick_size, i.qty_step, i.min_qty, i.min_notional) == (
        "BTCUSDT", "Trading", "0.10", "0.001", "0.001", "5")  # fmt: skip


def test_order_realtime_execution_and_position_lists():
    (o,), cursor = parse_order_list(parse_envelope(raw("rest_order_realtime")).result)
    assert (o.status, o.cum_qty, o.leaves_qty, cursor) == ("PartiallyFilled", 0.004, 0.006, "")
    (e,), _ = parse_execution_list(parse_envelope(raw("rest_execution_list")).result)
    # the list's execId is the stream's: a fill read back is never counted twice
    (s, _) = parse_private(raw("private_execution")).items
    assert e.exec_id == s.exec_id and e.ts_ns == s.ts_ns
    (p,) = parse_position_list(parse_envelope(raw("rest_position_list")).result)
    assert (p.symbol, p.signed_size) == ("BTCUSDT", 0.004)


def test_limits_from_rest_headers():
    h = {"X-Bapi-Limit": "10", "X-Bapi-Limit-Status": "0",
         "X-Bapi-Limit-Reset-Timestamp": "1733300001000"}  # fmt: skip
    assert limits_of(h) == limits_of({**h})
    lim = limits_of(h)
    assert (lim.limit, lim.remaining, lim.reset_ms) == (10, 0, 1733300001000)
    assert limits_of({}).remaining == -1


# ---------------------------------------------------------------------------- rate limits
def test_new_orders_stop_before_the_endpoints_count_reaches_zero_and_10006_pauses_until_reset():
    from connector.bybit.protocol import Limits
    from connector.bybit.rest import RATE_LIMITED, RESERVE, ApiLimits

    t = [100.0]
    lim = ApiLimits(clock=lambda: t[0])
    path, now = "/v5/order/create", 1_000_000
    assert lim.refusal(path, now, True) is None  # nothing known yet
    lim.on_reply(path, Limits(10, RESERVE + 1, now + 400), 0, now)
    assert lim.refusal(path, now, True) is None
    lim.sent(path, now)  # counted before its reply says
    assert "throttled: 1 of 10" in lim.refusal(path, now, True)
    assert lim.refusal(path, now, False) is None  # a cancel may use the last one
    assert lim.refusal(path, now + 400, True) is None  # the second has passed
    lim.on_reply(path, Limits(10, 0, now + 1000), RATE_LIMITED, now)
    assert "back off" in lim.refusal(path, now + 1000, False)  # paused even for a cancel
    assert lim.blocked_for(path) == pytest.approx(1.0)
    assert lim.blocked_for("/v5/order/cancel") == 0.0  # per endpoint
    t[0] += 1.0
    assert lim.blocked_for(path) == 0.0
    lim.on_ip_ban()  # HTTP 403: everything, 10 minutes
    assert lim.blocked_for("/v5/order/cancel") == pytest.approx(600.0)


def test_a_burst_before_any_reply_stops_at_the_limit_we_count_ourselves():
    """Replies state the venue's count only for what it had seen: ten orders sent at once
    (the grid bot's first step) must not all pass and earn 10006s."""
    from connector.bybit.protocol import Limits
    from connector.bybit.rest import DEFAULT_LIMIT, RESERVE, WINDOW_MS, ApiLimits

    lim = ApiLimits(clock=lambda: 0.0)
    path, now = "/v5/order/create", 5_000_000
    admitted = 0
    while lim.admit(path, now, True) is None:  # all admitted before any is sent
        admitted += 1
    assert admitted == DEFAULT_LIMIT - RESERVE  # nothing known from the venue yet: its default
    assert "throttled: 9 requests on" in lim.refusal(path, now, True)
    assert lim.admit(path, now, False) is None  # a cancel may use the last one
    assert lim.admit(path, now, False) is not None  # not beyond the limit
    # a late reply saying more is left changes nothing: what we admitted still counts
    lim.on_reply(path, Limits(10, 8, now + 1000), 0, now + 20)
    assert lim.refusal(path, now + 20, True) is not None
    # the venue's own figure for the limit is used once known
    lim.on_reply(path, Limits(20, 15, now + 1000), 0, now + 20)
    assert lim.refusal(path, now + 20, True) is None
    # each request leaves our window WINDOW_MS after it was admitted
    assert lim._count(path, now + WINDOW_MS - 1) == DEFAULT_LIMIT
    assert lim._count(path, now + WINDOW_MS) == 0


# ---------------------------------------------------------------------------- order events
class _Core:
    """Collects what order entry reports (the core's `report`), nothing else."""

    def __init__(self):
        self.reports = []

    def report(self, *reports):
        self.reports += reports

    def __getattr__(self, name):
        return lambda *a, **k: None


def _orders_with_one_submitted():
    """BybitOrders with order KEY submitted as the fixtures' orderLinkId (not sent: the
    lifecycle's Send is dropped; pushes are what this checks)."""
    from connector.book import RecordingBook
    from connector.bybit.orders import BybitOrders
    from connector.config import InstrumentConfig
    from connector.venue import NewOrder

    core = _Core()
    inst = RecordingBook(0, InstrumentConfig("BTCUSDT", 0.1, 0.001))
    orders = BybitOrders("hl", 0, [inst], core, rest=None)
    new = NewOrder(key=7, inst=0, side=R.BUY, price_tick=600000, qty=0.01, tif=R.GTC,
                   order_type=R.LIMIT)  # fmt: skip
    orders.entry.lc.submit(new, "hlm3x9k2a-1k")
    return orders, core


def _push(orders, name):
    for item in parse_private(raw(name)).items:
        if isinstance(item, OrderUpdate):
            orders.on_order(item)
        else:
            orders.on_execution(item)


def test_pushes_conclude_the_submit_and_each_fill_counts_once():
    from hftlive.layout import REQ_SUBMIT

    orders, core = _orders_with_one_submitted()
    _push(orders, "private_order_new")
    (r,) = core.reports
    assert (r.status, r.completes, r.leaves_qty, r.exch_ts) == (R.NEW, REQ_SUBMIT, 0.01,
                                                                1733300000123_000_000)  # fmt: skip
    _push(orders, "private_execution")  # two fills: partial, then the rest
    a, b = core.reports[1:]
    assert (a.status, a.exec_qty, a.maker, a.fee) == (R.PARTIALLY_FILLED, 0.004, True, 0.0024)
    assert (b.status, b.exec_qty, b.fee, b.leaves_qty) == (R.FILLED, 0.006, -0.0036, 0.0)
    n = len(core.reports)
    _push(orders, "private_execution")  # the same pushes again (dup_private_events)
    _push(orders, "private_order_filled")  # and the order's own Filled: nothing new
    assert len(core.reports) == n
    assert orders.entry.lc.orders[7].filled_qty == pytest.approx(0.01)


def test_a_crossing_post_only_push_ends_the_submit_expired_with_its_reason():
    from hftlive.layout import REQ_SUBMIT

    orders, core = _orders_with_one_submitted()
    _push(orders, "private_order_postonly_cancelled")
    (r,) = core.reports
    assert (r.status, r.completes, r.reject_code, r.reason) == (
        R.EXPIRED, REQ_SUBMIT, codes.POST_ONLY_CROSSED, R.REJECT_POST_ONLY)  # fmt: skip
    assert "EC_PostOnlyWillTakeLiquidity" in r.reject_msg


def test_positions_are_signed_by_side_and_hedge_legs_net():
    orders, _ = _orders_with_one_submitted()
    (p,) = parse_private(raw("private_position")).items
    orders.on_position(p)
    assert orders.positions[0] == pytest.approx(-0.01)
    orders.on_position(Position("BTCUSDT", "Buy", 0.03, 1, 0))  # hedge mode: a long leg
    orders.on_position(Position("BTCUSDT", "Sell", 0.01, 2, 0))  # and a short one
    assert orders.positions[0] == pytest.approx(-0.01 + 0.03 - 0.01)
    orders.on_position(Position("ETHUSDT", "Buy", 1.0, 0, 0))  # not ours: ignored
    assert list(orders.positions) == [0]


# ----------------------------------------------------------------------------- position mode
def _hedge_result() -> dict:
    """The recorded one-way list entry as hedge mode shows a symbol: a buy leg
    (positionIdx 1) holding the position and a flat sell leg (positionIdx 2)."""
    (item,) = parse_envelope(raw("rest_position_list")).result["list"]
    flat = {**item, "positionIdx": 2, "side": "", "size": "0"}
    return {"category": "linear", "list": [{**item, "positionIdx": 1}, flat]}


def test_position_mode_one_way_is_false_hedge_legs_are_true():
    assert parse_position_mode(parse_envelope(raw("rest_position_list")).result) is False
    assert parse_position_mode(_hedge_result()) is True
    assert parse_position_mode({"list": []}) is False  # nothing says hedge


@pytest.mark.parametrize("idx", [3, -1, "1", None, 1.0, True])
def test_position_mode_malformed_position_idx_raises(idx):
    r = _hedge_result()
    r["list"][0]["positionIdx"] = idx
    with pytest.raises(VenueProtocolError, match="positionIdx"):
        parse_position_mode(r)


@pytest.mark.parametrize("result", [None, [], {"list": "x"}, {"list": [1]}, {"nolist": []}])
def test_position_mode_malformed_result_raises(result):
    with pytest.raises(VenueProtocolError):
        parse_position_mode(result)
