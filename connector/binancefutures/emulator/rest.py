"""REST side of the emulator: `/fapi/...` endpoints, their security type and weight.

Every request goes through the same steps, in this order: injected 418/429 faults; IP
weight (`Gate.charge`); for USER_STREAM and signed endpoints the `X-MBX-APIKEY` header;
for signed ones the signature and the clock (`Gate.check_signed`); the order counters for
new and modified orders; an injected reject; then the endpoint itself. Parameters come
from the query string and a form body (no Content-Type needed); the query wins (§1.1).
Every reply carries `X-MBX-USED-WEIGHT-1M`; order replies also carry
`X-MBX-ORDER-COUNT-10S` and `X-MBX-ORDER-COUNT-1M`; 429/418 carry `Retry-After` (§1.8).
Weights are the fact sheet's (§1.6, §1.4 for depth).
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from connector.binancefutures.emulator import accountinfo
from connector.binancefutures.emulator.errors import ApiError, missing
from connector.binancefutures.emulator.gate import split_signature

NONE, USER_STREAM, SIGNED = "NONE", "USER_STREAM", "SIGNED"
DEPTH_LIMITS = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}  # limit -> weight


@dataclass(frozen=True)
class Endpoint:
    """One REST endpoint: who may call it, what it weighs, what runs it.

    `handler` names a method taking (params, now_ms) and returning (body, user events),
    looked up on the Emulator (`emu.`) or its Account (`account.`).
    """

    security: str
    weight: object  # int, or a function of the params
    handler: str
    counts_order: bool = False  # ORDERS counters and X-MBX-ORDER-COUNT-* headers
    ack_faults: bool = False  # ack delay / lost ack apply
    new_order: bool = False  # an injected reject applies


def _depth_weight(p: dict) -> int:
    try:
        return DEPTH_LIMITS.get(int(p.get("limit", 500)), 2)
    except ValueError:
        return 2


ENDPOINTS = {
    ("GET", "/fapi/v1/ping"): Endpoint(NONE, 1, "emu.rest_ping"),
    ("GET", "/fapi/v1/time"): Endpoint(NONE, 1, "emu.rest_time"),
    ("GET", "/fapi/v1/exchangeInfo"): Endpoint(NONE, 1, "emu.rest_exchange_info"),
    ("GET", "/fapi/v1/depth"): Endpoint(NONE, _depth_weight, "emu.rest_depth"),
    ("POST", "/fapi/v1/listenKey"): Endpoint(USER_STREAM, 1, "emu.listen_key_new"),
    ("PUT", "/fapi/v1/listenKey"): Endpoint(USER_STREAM, 1, "emu.listen_key_keepalive"),
    ("DELETE", "/fapi/v1/listenKey"): Endpoint(USER_STREAM, 1, "emu.listen_key_delete"),
    # [BN "Get Current Position Mode (USER_DATA)"]: weight 30 (not in the fact sheet)
    ("GET", "/fapi/v1/positionSide/dual"): Endpoint(SIGNED, 30, "account.position_mode"),
    ("GET", "/fapi/v2/positionRisk"): Endpoint(SIGNED, 5, "account.position_risk"),
    ("GET", "/fapi/v3/positionRisk"): Endpoint(SIGNED, 5, "info.position_risk_v3"),
    ("GET", "/fapi/v2/account"): Endpoint(SIGNED, 5, "info.account_v2"),
    ("GET", "/fapi/v3/account"): Endpoint(SIGNED, 5, "info.account_v3"),
    ("GET", "/fapi/v2/balance"): Endpoint(SIGNED, 5, "info.balance"),
    ("GET", "/fapi/v3/balance"): Endpoint(SIGNED, 5, "info.balance"),
    ("GET", "/fapi/v1/openOrders"): Endpoint(
        SIGNED, lambda p: 1 if p.get("symbol") else 40, "account.open_orders"
    ),
    ("GET", "/fapi/v1/order"): Endpoint(SIGNED, 1, "account.query_order"),
    ("GET", "/fapi/v1/userTrades"): Endpoint(SIGNED, 5, "account.user_trades"),
    ("POST", "/fapi/v1/order"): Endpoint(
        SIGNED, 0, "account.new_order", counts_order=True, ack_faults=True, new_order=True
    ),
    ("PUT", "/fapi/v1/order"): Endpoint(
        SIGNED, 0, "account.modify_order", counts_order=True, ack_faults=True
    ),
    ("DELETE", "/fapi/v1/order"): Endpoint(SIGNED, 1, "account.cancel_order", ack_faults=True),
    ("DELETE", "/fapi/v1/allOpenOrders"): Endpoint(SIGNED, 1, "account.cancel_all"),
    ("POST", "/fapi/v1/countdownCancelAll"): Endpoint(SIGNED, 10, "account.countdown_cancel_all"),
}


def resolve(emu, name: str):
    owner, _, method = name.partition(".")
    if owner == "info":  # accountinfo's pure views of the account
        return functools.partial(getattr(accountinfo, method), emu.account)
    return getattr(emu if owner == "emu" else emu.account, method)


def unknown_path(method: str, path: str) -> ApiError:
    """What Binance answers for a path (or method) it does not serve: HTTP 404 with a JSON
    error body, `{"code":-5000,"msg":"Path /fapi/v1/x, Method GET is invalid"}` ([3P]
    observed replies; the code is UNCONFIRMED in the error-code page)."""
    return ApiError(-5000, f"Path {path}, Method {method} is invalid", status=404)


def execute(emu, ep: Endpoint, params: dict, api_key, payload: str, signature,
            handler_params: dict | None = None):  # fmt: skip
    """The checks every request passes, in the venue's order, then the endpoint itself
    (REST and WS-API alike): weight, key, signature and clock, order counters, an
    injected reject, an injected 503 / -1001 (before or after executing). Returns the
    body; user events go out. Raises ApiError."""
    weight = ep.weight(params) if callable(ep.weight) else ep.weight
    emu.gate.charge(weight)
    if ep.security != NONE:
        emu.gate.check_key(api_key)
    if ep.security == SIGNED:
        emu.gate.check_signed(params, payload, signature)
    if ep.counts_order:
        emu.gate.count_order()
    if ep.new_order:
        code = emu.faults.take_reject()
        if code is not None:
            raise ApiError(code)
    # an injected backend failure (§1.8): past the gateway, at or after the matching engine
    failure = emu.faults.take_server_error() if ep.ack_faults else None
    if failure is not None and not failure[2]:
        raise ApiError(failure[0], failure[1], status=503)
    result, events = resolve(emu, ep.handler)(
        params if handler_params is None else handler_params, emu.now_ms()
    )
    emu.user_events(events)
    if failure is not None:  # executed; the client is told only that it is unknown
        raise ApiError(failure[0], failure[1], status=503)
    return result


def injected_limit_error(faults, gate) -> ApiError | None:
    """The next injected 418 or 429, if any (consumes one). An injected 429 arms the ban
    as a real one does: a request before its Retry-After ends gets 418 [BN-GI]."""
    wait = faults.retry_after_s
    if faults.take("http_418"):
        until = (time.time_ns() // 1_000_000) + wait * 1000
        msg = f"Way too many requests; IP(127.0.0.1) banned until {until}."
        return ApiError(-1003, msg, status=418, retry_after_s=wait)
    if faults.take("http_429"):
        gate.back_off(wait)
        return ApiError(-1003, status=429, retry_after_s=wait, limit="(injected)")
    return None


async def handle(emu, request: web.Request) -> web.StreamResponse:
    """The one aiohttp handler behind every `/fapi/...` path."""
    ep = ENDPOINTS.get((request.method, request.path))
    if ep is None:
        err = unknown_path(request.method, request.path)
        return web.Response(
            body=orjson.dumps(err.body()), status=err.status, content_type="application/json"
        )
    query = request.raw_path.partition("?")[2]  # the bytes as sent: they were signed
    body = await request.text() if request.can_read_body else ""
    params = dict(parse_qsl(body, keep_blank_values=True))
    params.update(parse_qsl(query, keep_blank_values=True))  # the query string wins
    headers: dict[str, str] = {}
    status, executed = 200, False
    try:
        err = injected_limit_error(emu.faults, emu.gate)
        if err is not None:
            raise err
        payload, sig = split_signature(query, body) if ep.security == SIGNED else ("", None)
        result = execute(emu, ep, params, request.headers.get("X-MBX-APIKEY"), payload, sig)
        executed = True
    except ApiError as e:
        result, status = e.body(), e.status
        if e.retry_after_s is not None:
            headers["Retry-After"] = str(e.retry_after_s)
    headers["X-MBX-USED-WEIGHT-1M"] = str(emu.gate.used_weight())
    if ep.counts_order:
        n10, n60 = emu.gate.order_counts()
        headers["X-MBX-ORDER-COUNT-10S"] = str(n10)
        headers["X-MBX-ORDER-COUNT-1M"] = str(n60)
    if ep.ack_faults:
        if executed and emu.faults.take("lose_acks"):
            await emu.wait_stopping()  # the reply never comes (until shutdown)
            return web.Response(status=503, text="")
        if emu.faults.ack_delay_ms > 0:
            await asyncio.sleep(emu.faults.ack_delay_ms / 1000)  # the injected latency
    return web.Response(
        body=orjson.dumps(result), status=status, headers=headers, content_type="application/json"
    )


# ---------------------------------------------------------------------- market data bodies
def exchange_info(markets, now_ms: int, gate) -> dict:
    """GET /fapi/v1/exchangeInfo (§1.6): rate limits, USDT asset, one entry per symbol."""
    symbols = []
    for mkt in markets.values():
        s = mkt.spec
        base = s.upper.removesuffix("USDT")
        symbols.append(
            {
                "symbol": s.upper,
                "pair": s.upper,
                "contractType": "PERPETUAL",
                "deliveryDate": 4133404800000,
                "onboardDate": 1569398400000,
                "status": "TRADING",
                "maintMarginPercent": "2.5000",
                "requiredMarginPercent": "5.0000",
                "baseAsset": base,
                "quoteAsset": "USDT",
                "marginAsset": "USDT",
                "pricePrecision": s.price_dp,
                "quantityPrecision": s.qty_dp,
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "underlyingType": "COIN",
                "underlyingSubType": [],
                "triggerProtect": "0.0500",
                "liquidationFee": "0.012500",
                "marketTakeBound": "0.05",
                "maxMoveOrderLimit": 10000,
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": s.min_price,
                        "maxPrice": s.max_price,
                        "tickSize": s.tick_size,
                    },
                    {
                        "filterType": "LOT_SIZE",
                        "minQty": s.min_qty,
                        "maxQty": s.max_qty,
                        "stepSize": s.step_size,
                    },
                    {
                        "filterType": "MARKET_LOT_SIZE",
                        "minQty": s.min_qty,
                        "maxQty": s.market_max_qty,
                        "stepSize": s.step_size,
                    },
                    {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                    {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                    {"filterType": "MIN_NOTIONAL", "notional": s.min_notional},
                    {
                        "filterType": "PERCENT_PRICE",
                        "multiplierUp": s.multiplier_up,
                        "multiplierDown": s.multiplier_down,
                        "multiplierDecimal": "4",
                    },
                ],
                "orderTypes": ["LIMIT", "MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            }
        )
    return {
        "timezone": "UTC",
        "serverTime": now_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            _limit("REQUEST_WEIGHT", "MINUTE", 1, gate.weight_limit),
            _limit("ORDERS", "MINUTE", 1, gate.orders_1m),
            _limit("ORDERS", "SECOND", 10, gate.orders_10s),
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": symbols,
    }


def _limit(kind: str, interval: str, num: int, limit: int) -> dict:
    return {"rateLimitType": kind, "interval": interval, "intervalNum": num, "limit": limit}


def depth(markets, p: dict, now_ms: int) -> dict:
    """GET /fapi/v1/depth from the venue's own book; lastUpdateId = u of the last diff sent."""
    sym = p.get("symbol")
    if not sym:
        raise missing("symbol")
    mkt = markets.get(sym.lower())
    if mkt is None:
        raise ApiError(-1121)
    try:
        limit = int(p.get("limit", 500))
    except ValueError:
        raise ApiError(-4021) from None
    if limit not in DEPTH_LIMITS:
        raise ApiError(-4021)
    return mkt.snapshot(limit, now_ms)
