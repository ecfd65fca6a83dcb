"""REST endpoints of the emulated venue (venue_protocols.md §2.5).

Envelope: `{"retCode","retMsg","result","retExtInfo","time"}`. Business and auth errors
come with HTTP 200 and their retCode (that Bybit uses 200 for them is UNCONFIRMED but
widely assumed; pybit raises its InvalidRequestError on them); an unknown path is 404.
Signed endpoints are checked by `gate.Gate` over the raw query string (GET) or the exact
body (POST) and answer with the X-Bapi-Limit* headers.

`POST /v5/order/disconnected-cancel-all` (DCP) [BY order/dcp.mdx]: `timeWindow` 3-300 s,
`product` OPTIONS (default) / DERIVATIVES / SPOT. The emulator honours DERIVATIVES: when
no authenticated private connection subscribed to `dcp` has been up for `timeWindow`
seconds after one was, every open linear order is cancelled (cancelType CancelByDCP).
Bybit enables DCP per account on request; here it is on once set (assumed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import orjson
from aiohttp import web

from connector.bybit.emulator.errors import BybitError, params
from connector.bybit.emulator.gate import ORDER_PATHS, RateLimited
from connector.bybit.emulator.host import Host

log = logging.getLogger(__name__)

# (method, path) -> (signed, handler name on the emulator taking (params, now_ms))
ENDPOINTS: dict[tuple[str, str], tuple[bool, str]] = {
    ("GET", "/v5/market/time"): (False, "rest_time"),
    ("GET", "/v5/market/instruments-info"): (False, "rest_instruments"),
    ("GET", "/v5/market/orderbook"): (False, "rest_orderbook"),
    ("POST", "/v5/order/create"): (True, "rest_order"),
    ("POST", "/v5/order/amend"): (True, "rest_order"),
    ("POST", "/v5/order/cancel"): (True, "rest_order"),
    ("POST", "/v5/order/cancel-all"): (True, "rest_order"),
    ("POST", "/v5/order/disconnected-cancel-all"): (True, "rest_dcp"),
    ("GET", "/v5/order/realtime"): (True, "rest_realtime"),
    ("GET", "/v5/order/history"): (True, "rest_history"),
    ("GET", "/v5/execution/list"): (True, "rest_executions"),
    ("GET", "/v5/position/list"): (True, "rest_positions"),
    ("GET", "/v5/account/wallet-balance"): (True, "rest_wallet"),
}


def envelope(code: int, msg: str, result, now_ms: int) -> bytes:
    return orjson.dumps(
        {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": now_ms}
    )


async def handle(emu: Host, request: web.Request) -> web.StreamResponse:
    """Serves one REST request."""
    t_recv = time.time_ns()
    key = (request.method, request.path)
    emu.requests[f"{request.method} {request.path}"] += 1
    if key not in ENDPOINTS:
        return web.Response(status=404, text="404 page not found")
    signed, name = ENDPOINTS[key]
    handler: Callable = getattr(emu, name)
    raw = (await request.read()).decode("utf-8", "replace")
    headers: dict[str, str] = {}
    p: dict = {}
    is_order = request.path in ORDER_PATHS
    try:
        if request.method == "GET":
            # a GET with a body is refused by Bybit with 403 (§2.5 HTTP codes)
            p = dict(request.query)
            signed_text = request.query_string
        else:
            p = _body(raw)
            signed_text = raw
        if signed:
            emu.gate.check_rest(request.headers, signed_text)
            forced = is_order and emu.faults.take("rate_limit")
            headers = emu.gate.take(request.path, forced=forced)
        if is_order:
            result = handler(request.path, p)
        else:
            result = handler(p, emu.now_ms())
        code, msg = 0, "OK"
    except RateLimited as e:
        headers, result, code, msg = e.headers, {}, e.code, e.msg
    except BybitError as e:
        result, code, msg = {}, e.code, e.msg
    now = emu.now_ms()
    headers["Timenow"] = str(now)
    if is_order and code != 10006 and (signed and code not in (10002, 10003, 10004)):
        if emu.faults.take("lose_acks"):
            await emu.wait_stopping()  # the reply never comes (until shutdown)
            return web.Response(status=503, text="")
        if emu.faults.ack_delay_ms > 0:
            await asyncio.sleep(emu.faults.ack_delay_ms / 1000)  # the injected latency
    if is_order:
        emu.stamp_order(request.path, "rest", p, t_recv)
    return web.Response(
        body=envelope(code, msg, result, now), headers=headers, content_type="application/json"
    )


def _body(raw: str) -> dict:
    if not raw:
        return {}
    try:
        p = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise params("the body is not JSON") from None
    if not isinstance(p, dict):
        raise params("the body must be a JSON object")
    return p


def instruments(markets, p: dict) -> dict:
    """GET /v5/market/instruments-info [BY market/instrument.mdx]."""
    if p.get("category") != "linear":
        raise params("category must be linear")
    syms = [p["symbol"]] if p.get("symbol") else list(markets)
    out = []
    for s in syms:
        if s not in markets:
            continue
        spec = markets[s].spec
        base = s.removesuffix("USDT")
        out.append(
            {
                "symbol": s,
                "contractType": "LinearPerpetual",
                "status": "Trading",
                "baseCoin": base,
                "quoteCoin": "USDT",
                "launchTime": "1585526400000",
                "deliveryTime": "0",
                "deliveryFeeRate": "",
                "priceScale": str(spec.price_dp),
                "leverageFilter": {
                    "minLeverage": "1",
                    "maxLeverage": "100.00",
                    "leverageStep": "0.01",
                },
                "priceFilter": {
                    "minPrice": spec.min_price,
                    "maxPrice": spec.max_price,
                    "tickSize": spec.tick_size,
                },
                "lotSizeFilter": {
                    "maxOrderQty": spec.max_qty,
                    "minOrderQty": spec.min_qty,
                    "qtyStep": spec.step_size,
                    "postOnlyMaxOrderQty": spec.max_qty,
                    "maxMktOrderQty": spec.market_max_qty,
                    "minNotionalValue": spec.min_notional,
                },
                "unifiedMarginTrade": True,
                "fundingInterval": 480,
                "settleCoin": "USDT",
                "copyTrading": "both",
                "upperFundingRate": "0.00375",
                "lowerFundingRate": "-0.00375",
                "isPreListing": False,
                "preListingInfo": None,
                "displayName": "",
            }
        )
    return {"category": "linear", "list": out, "nextPageCursor": ""}
