"""The trade stream `/v5/trade`: order entry over WebSocket (venue_protocols.md §2.4).

* Auth as on the private stream, but the reply is camelCase: `{"retCode":0,"retMsg":"OK",
  "op":"auth","connId":..}`; a bad key, signature or past `expires` -> 10004, a
  malformed `args` -> 10001, a second auth -> 20001 [BY websocket/trade/guideline.mdx].
* Request: `{"reqId","header":{"X-BAPI-TIMESTAMP","X-BAPI-RECV-WINDOW"},"op":
  "order.create|order.amend|order.cancel","args":[one item]}`. The timestamp is required
  and the window rule is REST's (10002). A `reqId` seen before on this connection ->
  20006 (uniqueness per connection is UNCONFIRMED). An unknown op -> 10404. A request
  before auth -> 10005 (UNCONFIRMED: Bybit's code for it is not documented).
* Reply: `{"reqId","retCode","retMsg","op","data","retExtInfo","header":{X-Bapi-Limit*,
  "Traceid","Timenow"},"connId"}`. retCode 0 only means accepted: the final state comes
  on the private `order` topic. Business errors carry REST retCodes.
* `{"op":"ping"}` -> `{"retCode":0,"retMsg":"OK","op":"pong","data":["<ms>"],"connId"}`.
* Faults: `lose_acks` (executed, no response frame), `ack_delay_ms` (the response held;
  the private pushes go first), `rate_limit` and `reject_orders` as on REST.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson

from connector.bybit.emulator.errors import BybitError
from connector.bybit.emulator.gate import RateLimited
from connector.bybit.emulator.host import Host
from connector.bybit.emulator.public import BybitConn

OPS = {
    "order.create": "/v5/order/create",
    "order.amend": "/v5/order/amend",
    "order.cancel": "/v5/order/cancel",
}


def on_text(emu: Host, conn: BybitConn, text: str) -> None:
    """Handles one frame of a trade connection (replies are queued, never awaited)."""
    t_recv = time.time_ns()
    now = emu.now_ms()
    try:
        m = orjson.loads(text)
        op = m.get("op")
    except (orjson.JSONDecodeError, AttributeError):
        conn.send(_frame(conn, {"retCode": 10001, "retMsg": "request not json format", "op": ""}))
        return
    emu.requests[str(op)] += 1  # by trade-WS op (REST counts by "METHOD /path")
    if op == "ping":
        conn.send(_frame(conn, {"retCode": 0, "retMsg": "OK", "op": "pong", "data": [str(now)]}))
        return
    if op == "auth":
        args = m.get("args")
        if conn.authed:
            code, msg = 20001, "Repeat auth"
        elif not isinstance(args, list) or len(args) != 3:
            code, msg = 10001, "Params Error"
        elif emu.gate.check_ws_auth(args):
            conn.authed = True
            code, msg = 0, "OK"
        else:
            code, msg = 10004, "Invalid sign"
        conn.send(_frame(conn, {"retCode": code, "retMsg": msg, "op": "auth"}))
        return
    rid = m.get("reqId", "")
    base = {"reqId": rid, "op": op}

    def refuse(code: int, msg: str | None = None, headers: dict | None = None) -> None:
        e = BybitError(code, msg)
        reply = {**base, "retCode": code, "retMsg": e.msg, "data": {}, "retExtInfo": {}}
        reply["header"] = {**(headers or {}), "Traceid": uuid.uuid4().hex, "Timenow": str(now)}
        conn.send(_frame(conn, reply))

    if not conn.authed:
        return refuse(10005, "Request not authorized")
    if op not in OPS:
        return refuse(10404)
    if rid and rid in conn.req_ids:
        return refuse(20006)
    if rid:
        conn.req_ids.add(rid)
    header, args = m.get("header"), m.get("args")
    if not isinstance(header, dict) or "X-BAPI-TIMESTAMP" not in header:
        return refuse(10001, "params error: header X-BAPI-TIMESTAMP is required")
    try:
        emu.gate.check_window(header["X-BAPI-TIMESTAMP"], header.get("X-BAPI-RECV-WINDOW", "5000"))
    except BybitError as e:
        return refuse(e.code, e.msg)
    if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], dict):
        return refuse(10001, "params error: args takes exactly one order")
    path = OPS[op]
    try:
        limit_headers = emu.gate.take(path, forced=emu.faults.take("rate_limit"))
    except RateLimited as e:
        return refuse(10006, None, e.headers)
    try:
        data = emu.execute_order(path, args[0])
        code, msg = 0, "OK"
    except BybitError as e:
        data, code, msg = {}, e.code, e.msg
    reply = {**base, "retCode": code, "retMsg": msg, "data": data, "retExtInfo": {}}
    reply["header"] = {**limit_headers, "Traceid": uuid.uuid4().hex, "Timenow": str(emu.now_ms())}
    if emu.faults.take("lose_acks"):
        return None  # executed (or refused); the response frame never comes
    frame = _frame(conn, reply)
    emu.stamp_order(path, "ws", args[0], t_recv)
    if emu.faults.ack_delay_ms > 0:  # the private pushes are already out
        asyncio.get_running_loop().call_later(emu.faults.ack_delay_ms / 1000, conn.send, frame)
    else:
        conn.send(frame)
    return None


def _frame(conn: BybitConn, body: dict) -> str:
    return orjson.dumps({**body, "connId": conn.conn_id}).decode()
