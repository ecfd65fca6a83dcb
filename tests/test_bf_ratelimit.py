"""RateLimits (connector/binancefutures/ratelimit.py): the venue's counters and the throttle
before them (venue_protocols.md §1.6, §1.8), and the REST parsers reconciliation uses."""

from __future__ import annotations

import time

import pytest

from connector.binancefutures.protocol import parse_position_risk, parse_user_trades
from connector.binancefutures.ratelimit import RateLimits
from connector.errors import VenueProtocolError

T0 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000  # a minute boundary, venue ms

EXCHANGE_INFO_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 50},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 20},
]


def limits() -> RateLimits:
    r = RateLimits(headroom=0.9)
    r.set_limits(EXCHANGE_INFO_LIMITS)
    return r


def test_limits_come_from_exchange_info():
    r = limits()
    assert (r.weight_limit, r.orders_10s_limit, r.orders_1m_limit) == (100, 20, 50)
    r.set_limits([{"rateLimitType": "RAW_REQUESTS"}, "junk", {"limit": "x"}])  # ignored
    assert r.weight_limit == 100


def test_new_orders_are_refused_at_the_headroom_of_the_10s_count_and_cancels_still_go():
    r = limits()
    for _ in range(17):
        assert r.order_refusal(T0, new_order=True) is None
        r.sent(T0, 0, new_order=True)
    assert r.order_refusal(T0, new_order=True) is None  # 17 < 18 = 90 % of 20
    r.sent(T0, 0, new_order=True)
    why = r.order_refusal(T0 + 1, new_order=True)
    assert why and "18 orders this 10 s, limit 20" in why
    assert r.order_refusal(T0 + 1, new_order=False) is None  # a cancel is not an order
    # the next 10 s window starts from zero
    assert r.order_refusal(T0 + 10_000, new_order=True) is None


def test_the_venues_count_wins_over_ours_within_a_window_and_expires_with_it():
    r = limits()
    r.on_headers({"X-MBX-ORDER-COUNT-10S": "19", "X-MBX-USED-WEIGHT-1M": "7"}, 200, T0)
    assert r.orders_10s.get(T0) == 19 and r.weight.get(T0) == 7
    r.on_headers({"X-MBX-ORDER-COUNT-10S": "3"}, 200, T0 + 5)  # late reply: not lowered
    assert r.orders_10s.get(T0 + 5) == 19
    assert r.order_refusal(T0 + 5, True) is not None
    assert r.orders_10s.get(T0 + 10_000) == 0  # next window
    r.on_ws_limits(
        [{"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "count": 46},
         {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
          "count": 12}], T0 + 20_000,
    )  # fmt: skip
    assert r.orders_1m.get(T0 + 20_000) == 46 and r.weight.get(T0 + 20_000) == 12
    assert "this minute" in r.order_refusal(T0 + 20_000, True)


def test_weight_near_the_limit_waits_for_the_next_minute():
    r = limits()
    r.on_headers({"X-MBX-USED-WEIGHT-1M": "85"}, 200, T0 + 45_000)
    assert r.weight_wait_s(5, T0 + 45_000) == 0  # 90 <= 90
    assert r.weight_wait_s(20, T0 + 45_000) == pytest.approx(15.0)
    r.on_headers({"X-MBX-USED-WEIGHT-1M": "100"}, 200, T0 + 46_000)
    assert "weight at the limit" in r.order_refusal(T0 + 46_000, new_order=False)


def test_retry_after_blocks_everything_for_its_duration():
    r = limits()
    r.on_headers({"Retry-After": "2"}, 429, T0)
    assert 1.5 < r.blocked_for() <= 2.0
    assert "back off" in r.order_refusal(T0, False)
    r.pause.until = time.monotonic() - 0.001
    assert r.order_refusal(T0, False) is None
    r.on_headers({}, 418, T0)  # no Retry-After: a minute
    assert r.blocked_for() > 59


def test_user_trades_and_position_risk_parse_and_reject_malformed_bodies():
    body = (
        b'[{"buyer":true,"commission":"0.00100000","commissionAsset":"USDT","id":17,'
        b'"maker":true,"orderId":9,"price":"2500.10","qty":"0.020","quoteQty":"50.002",'
        b'"realizedPnl":"0","side":"BUY","positionSide":"BOTH","symbol":"ETHUSDT",'
        b'"time":1700000000123}]'
    )
    (t,) = parse_user_trades(body)
    assert (t.symbol, t.trade_id, t.order_id, t.side) == ("ethusdt", 17, 9, "BUY")
    assert (t.px, t.qty, t.commission, t.maker) == (2500.1, 0.02, 0.001, True)
    assert t.time_ns == 1_700_000_000_123_000_000
    (p,) = parse_position_risk(
        b'[{"symbol":"ETHUSDT","positionSide":"BOTH","positionAmt":"-0.040",'
        b'"entryPrice":"2499.5","updateTime":1700000000000,"markPrice":"2500"}]'
    )
    assert (p.symbol, p.position_amt, p.entry_px) == ("ethusdt", -0.04, 2499.5)
    for bad, words in (
        (b'{"code":-1022,"msg":"x"}', "expected an array"),
        (b"[{", "malformed JSON"),
        (body.replace(b'"qty":"0.020"', b'"qty":0.02'), "'qty'"),
    ):
        with pytest.raises(VenueProtocolError, match=words):
            parse_user_trades(bad)
