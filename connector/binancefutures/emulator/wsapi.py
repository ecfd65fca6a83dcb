"""WebSocket API (`/ws-fapi/v1`): trading over one socket (§1.7).

Request: one text frame `{"id":..,"method":"order.place","params":{..}}`; signed methods
carry `apiKey`, `timestamp` and `signature` in `params`, signed over every other param
sorted by name (`gate.ws_payload`). Response:
`{"id":..,"status":200,"result":{..},"rateLimits":[..]}` or
`{"id":..,"status":4xx,"error":{"code":..,"msg":..},"rateLimits":[..]}` (the error shape is
spot's; identical on futures is UNCONFIRMED). Results are the REST order bodies. The id is
echoed as sent. Injected ack faults apply as on REST (a delayed or lost response frame),
and so do the injected 503 / -1001 (`status` 503). The REST 418/429 counters are
REST-only; `ws_api_429` injects the WS-API's own 429 (with `error.data.retryAfter`). The
real weight limit and the IP ban apply to both; a 418 reply is followed by the close of
the connection.
"""

from __future__ import annotations

import asyncio

import orjson

from connector.binancefutures.emulator.errors import ApiError, missing
from connector.binancefutures.emulator.gate import ws_payload
from connector.binancefutures.emulator.rest import ENDPOINTS, execute

# the REST endpoints' rules (rest.Endpoint) under the WS-API's method names [BN-WSAPI]
METHODS = {
    "order.place": ENDPOINTS[("POST", "/fapi/v1/order")],
    "order.modify": ENDPOINTS[("PUT", "/fapi/v1/order")],
    "order.cancel": ENDPOINTS[("DELETE", "/fapi/v1/order")],
    "order.status": ENDPOINTS[("GET", "/fapi/v1/order")],
    "userDataStream.start": ENDPOINTS[("POST", "/fapi/v1/listenKey")],
    "userDataStream.ping": ENDPOINTS[("PUT", "/fapi/v1/listenKey")],
    "userDataStream.stop": ENDPOINTS[("DELETE", "/fapi/v1/listenKey")],
}


def _text(v: object) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def rate_limits(gate, counts_order: bool) -> list[dict]:
    out = [
        {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": gate.weight_limit,
            "count": gate.used_weight(),
        }
    ]
    if counts_order:
        n10, n60 = gate.order_counts()
        for interval, num, limit, n in (
            ("SECOND", 10, gate.orders_10s, n10),
            ("MINUTE", 1, gate.orders_1m, n60),
        ):
            out.append(
                {
                    "rateLimitType": "ORDERS",
                    "interval": interval,
                    "intervalNum": num,
                    "limit": limit,
                    "count": n,
                }
            )
    return out


def on_text(emu, conn, text: str) -> None:
    """Handles one WS-API request frame and queues its response."""
    rid, method = None, None
    executed = False
    try:
        try:
            m = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise ApiError(-1102, "Malformed request: invalid JSON.") from None
        if not isinstance(m, dict):
            raise ApiError(-1102, "Malformed request: expected an object.")
        rid = m.get("id")
        name = m.get("method")
        if not name:
            raise missing("method")
        emu.ws_api_requests[name] += 1
        if emu.faults.take("ws_api_429"):
            wait = emu.faults.retry_after_s
            emu.gate.back_off(wait)  # a request before retryAfter gets the IP banned
            raise ApiError(-1003, status=429, retry_after_s=wait, limit="(injected)")
        method = METHODS.get(name)
        if method is None:
            raise ApiError(-1020, status=400)
        params = m.get("params", {})
        if not isinstance(params, dict):
            raise missing("params")
        p = {k: _text(v) for k, v in params.items() if k not in ("apiKey", "signature")}
        result = execute(emu, method, params, params.get("apiKey"), ws_payload(params),
                         params.get("signature"), handler_params=p)  # fmt: skip
        executed = True
        reply = {"id": rid, "status": 200, "result": result}
    except ApiError as e:
        reply = {"id": rid, "status": e.status, "error": e.body()}
        if e.retry_after_s is not None:  # spot's shape: ms timestamps [BN-SPOT-WSAPI]
            now = emu.now_ms()
            data = {"serverTime": now, "retryAfter": now + 1000 * e.retry_after_s}
            reply["error"]["data"] = data
    reply["rateLimits"] = rate_limits(emu.gate, bool(method and method.counts_order))
    emu.ws_api_statuses[reply["status"]] += 1
    frame = orjson.dumps(reply).decode()
    if reply["status"] == 418:  # banned: the reply, then the connection is dropped
        conn.send_then_close(frame, 1008, "IP banned")
        return
    if method is not None and method.ack_faults:
        if executed and emu.faults.take("lose_acks"):
            return  # executed; the response frame never comes
        if emu.faults.ack_delay_ms > 0:
            # Delay this response only: later requests on the socket are not held up.
            asyncio.get_running_loop().call_later(emu.faults.ack_delay_ms / 1000, conn.send, frame)
            return
    conn.send(frame)
