"""A small scripted Bybit v5 venue on one loopback port (REST + the three WebSockets), for
the client's process-level smoke tests while the full emulator (branch bybit-emu) is not
merged. It checks what Bybit checks on every request (X-BAPI signature and window, auth
before any private or trade op) and answers in Bybit's shapes (venue_protocols.md §2.2-
§2.5); it has one static book and no matching beyond a crossing PostOnly. Not a stand-in
for the component under test: the connector process is the real one.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

import orjson
from aiohttp import WSMsgType, web

from connector.bybit.signing import Credentials, in_window, rest_payload, verify, ws_auth_payload

SYMBOL = "BTCUSDT"
BIDS = [[f"{60000.0 - 0.1 * i:.1f}", f"{0.5 + i * 0.01:.3f}"] for i in range(20)]
ASKS = [[f"{60000.1 + 0.1 * i:.1f}", f"{0.4 + i * 0.01:.3f}"] for i in range(20)]


def _ms() -> int:
    return time.time_ns() // 1_000_000


class MiniVenue:
    """Serves until killed; prints the URLs as one JSON line (the emulator's keys)."""

    def __init__(self, key: str, secret: str):
        self.creds = Credentials(key, secret)
        self.orders: dict[str, dict] = {}  # orderLinkId -> the order (Bybit's fields)
        self.requests: dict[str, int] = {}
        self.private: list[web.WebSocketResponse] = []
        self._loop = asyncio.new_event_loop()

    # ------------------------------------------------------------------ plumbing
    # It runs in a process of its own (`python -m tests.bybit_minivenue KEY SECRET`): a
    # LiveBot waiting in the test's process holds the GIL, a thread there would starve.
    def run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def state(self, request):
        return web.json_response({"orders": self.orders, "requests": self.requests})

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        app = web.Application()
        r = app.router
        r.add_get("/v5/market/time", self.time)
        r.add_get("/v5/market/instruments-info", self.instruments)
        for path in ("/v5/position/list", "/v5/order/realtime", "/v5/order/history",
                     "/v5/execution/list"):  # fmt: skip
            r.add_get(path, self.signed_get)
        for path in ("/v5/order/create", "/v5/order/amend", "/v5/order/cancel",
                     "/v5/order/cancel-all"):  # fmt: skip
            r.add_post(path, self.signed_post)
        r.add_get("/v5/public/linear", self.ws_public)
        r.add_get("/v5/private", self.ws_private)
        r.add_get("/v5/trade", self.ws_trade)
        r.add_get("/_mini/state", self.state)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        base = f"127.0.0.1:{port}"
        self.urls = {"rest": f"http://{base}", "ws_public": f"ws://{base}/v5/public/linear",
                     "ws_private": f"ws://{base}/v5/private", "ws_trade": f"ws://{base}/v5/trade"}  # fmt: skip
        print(orjson.dumps(self.urls).decode(), flush=True)
        await self._stop.wait()
        for ws in list(self.private):
            await ws.close()
        await runner.cleanup()

    def _count(self, what: str) -> None:
        self.requests[what] = self.requests.get(what, 0) + 1

    @staticmethod
    def _env(code: int, result, msg: str = "OK") -> web.Response:
        return web.json_response({"retCode": code, "retMsg": msg, "result": result,
                                  "retExtInfo": {}, "time": _ms()},
                                 headers={"X-Bapi-Limit": "10", "X-Bapi-Limit-Status": "9",
                                          "X-Bapi-Limit-Reset-Timestamp": str(_ms() + 1000)})  # fmt: skip

    def _check(self, request: web.Request, payload: str) -> web.Response | None:
        h = request.headers
        try:
            ts, recv = int(h["X-BAPI-TIMESTAMP"]), int(h["X-BAPI-RECV-WINDOW"])
            key, sig = h["X-BAPI-API-KEY"], h["X-BAPI-SIGN"]
        except (KeyError, ValueError):
            return self._env(10001, {}, "missing auth headers")
        if key != self.creds.api_key:
            return self._env(10003, {}, "API key is invalid.")
        if not verify(self.creds, rest_payload(ts, key, recv, payload), sig):
            return self._env(10004, {}, "error sign!")
        if not in_window(ts, recv, _ms()):
            return self._env(10002, {}, "invalid request, please check your server timestamp")
        return None

    # ------------------------------------------------------------------ REST
    async def time(self, request):
        return self._env(0, {"timeSecond": str(_ms() // 1000), "timeNano": str(time.time_ns())})

    async def instruments(self, request):
        return self._env(0, {"category": "linear", "nextPageCursor": "", "list": [{
            "symbol": SYMBOL, "contractType": "LinearPerpetual", "status": "Trading",
            "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
            "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": "0.001",
                              "qtyStep": "0.001", "minNotionalValue": "5"}}]})  # fmt: skip

    async def signed_get(self, request):
        self._count(f"GET {request.path}")
        refused = self._check(request, request.query_string)
        if refused is not None:
            return refused
        q = request.query
        if request.path == "/v5/position/list":
            return self._env(0, {"category": "linear", "nextPageCursor": "", "list": [
                {"symbol": SYMBOL, "side": "", "size": "0", "positionIdx": 0,
                 "updatedTime": str(_ms())}]})  # fmt: skip
        if request.path == "/v5/execution/list":
            return self._env(0, {"category": "linear", "nextPageCursor": "", "list": []})
        is_open = request.path == "/v5/order/realtime"
        found = [o for o in self.orders.values()
                 if (o["orderStatus"] in ("New", "PartiallyFilled")) == is_open
                 and q.get("orderLinkId", o["orderLinkId"]) == o["orderLinkId"]]  # fmt: skip
        return self._env(0, {"category": "linear", "nextPageCursor": "", "list": found})

    async def signed_post(self, request):
        self._count(f"POST {request.path}")
        raw = await request.text()
        refused = self._check(request, raw)
        if refused is not None:
            return refused
        op = "order." + request.path.rsplit("/", 1)[1]
        code, msg, data = await self._order_op(op, orjson.loads(raw))
        return self._env(code, data, msg)

    # ------------------------------------------------------------------ orders
    async def _push(self, o: dict) -> None:
        frame = orjson.dumps({"id": uuid.uuid4().hex, "topic": "order",
                              "creationTime": _ms(), "data": [o]}).decode()  # fmt: skip
        for ws in list(self.private):
            await ws.send_str(frame)

    async def _order_op(self, op: str, a: dict) -> tuple[int, str, dict]:
        link = a.get("orderLinkId", "")
        if op == "order.cancel-all":
            gone = [o for o in self.orders.values() if o["orderStatus"] == "New"]
            for o in gone:
                o.update(orderStatus="Cancelled", cancelType="CancelByUser",
                         updatedTime=str(_ms()))  # fmt: skip
                await self._push(o)
            return 0, "OK", {"list": [{"orderId": o["orderId"], "orderLinkId": o["orderLinkId"]}
                                      for o in gone], "success": "1"}  # fmt: skip
        if op == "order.create":
            if link in self.orders:
                return 110072, "OrderLinkedID is duplicate", {}
            o = {"category": "linear", "orderId": uuid.uuid4().hex, "orderLinkId": link,
                 "symbol": a["symbol"], "price": a.get("price", ""), "qty": a["qty"],
                 "side": a["side"], "orderType": a["orderType"], "orderStatus": "New",
                 "timeInForce": a.get("timeInForce", "GTC"), "rejectReason": "EC_NoError",
                 "cancelType": "UNKNOWN", "avgPrice": "", "leavesQty": a["qty"],
                 "cumExecQty": "0", "createdTime": str(_ms()), "updatedTime": str(_ms())}  # fmt: skip
            crosses = (float(a.get("price") or 0) >= float(ASKS[0][0]) if a["side"] == "Buy"
                       else float(a.get("price") or 1e18) <= float(BIDS[0][0]))  # fmt: skip
            if o["timeInForce"] == "PostOnly" and crosses:
                o.update(orderStatus="Cancelled", rejectReason="EC_PostOnlyWillTakeLiquidity",
                         leavesQty="0")  # fmt: skip
            self.orders[link] = o
        else:
            o = self.orders.get(link)
            if o is None or o["orderStatus"] != "New":
                return 110001, "order not exists or too late to cancel", {}
            if op == "order.amend":
                o.update({k: a[k] for k in ("price", "qty") if k in a})
                o["leavesQty"] = o["qty"]
            else:
                o.update(orderStatus="Cancelled", cancelType="CancelByUser", leavesQty="0")
            o["updatedTime"] = str(_ms() + 1)
        await self._push(dict(o))  # the private push goes first, as the venue often does
        return 0, "OK", {"orderId": o["orderId"], "orderLinkId": link}

    # ------------------------------------------------------------------ WebSockets
    async def _auth_ok(self, m: dict) -> bool:
        key, expires, sig = m["args"]
        return key == self.creds.api_key and verify(self.creds, ws_auth_payload(expires), sig)

    async def ws_public(self, request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            m = orjson.loads(msg.data)
            if m["op"] == "ping":
                await ws.send_str(orjson.dumps({"success": True, "ret_msg": "pong", "conn_id": "c",
                                                "req_id": m.get("req_id", ""), "op": "ping"}).decode())  # fmt: skip
                continue
            await ws.send_str(orjson.dumps({"success": True, "ret_msg": "", "conn_id": "c",
                                            "req_id": m.get("req_id", ""), "op": m["op"]}).decode())  # fmt: skip
            if m["op"] == "subscribe":
                for topic in m["args"]:
                    if topic.startswith("orderbook."):
                        await ws.send_str(orjson.dumps({
                            "topic": topic, "type": "snapshot", "ts": _ms(), "cts": _ms(),
                            "data": {"s": SYMBOL, "b": BIDS, "a": ASKS, "u": 1000, "seq": 1},
                        }).decode())  # fmt: skip
        return ws

    async def ws_private(self, request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        authed = False
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            m = orjson.loads(msg.data)
            if m["op"] == "auth":
                authed = await self._auth_ok(m)
                ok, text = (True, "") if authed else (False, "Params Error")
            elif m["op"] == "subscribe":
                ok, text = authed, "" if authed else "Request not authorized"
                if ok:
                    self.private.append(ws)
            else:
                await ws.send_str(orjson.dumps({"req_id": m.get("req_id", ""), "op": "pong",
                                                "args": [str(_ms())], "conn_id": "p"}).decode())  # fmt: skip
                continue
            await ws.send_str(orjson.dumps({"success": ok, "ret_msg": text, "op": m["op"],
                                            "conn_id": "p"}).decode())  # fmt: skip
        if ws in self.private:
            self.private.remove(ws)
        return ws

    async def ws_trade(self, request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        authed = False
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            m = orjson.loads(msg.data)
            if m["op"] == "auth":
                authed = await self._auth_ok(m)
                reply = {"retCode": 0 if authed else 10004, "retMsg": "OK" if authed else
                         "Invalid sign", "op": "auth", "connId": "t"}  # fmt: skip
            elif m["op"] == "ping":
                reply = {"retCode": 0, "retMsg": "OK", "op": "pong", "data": [str(_ms())],
                         "connId": "t"}  # fmt: skip
            elif not authed:
                reply = {"reqId": m.get("reqId"), "retCode": 10003, "retMsg": "not authed",
                         "op": m["op"]}  # fmt: skip
            else:
                self._count(m["op"])
                ts = int(m["header"]["X-BAPI-TIMESTAMP"])
                if not in_window(ts, int(m["header"]["X-BAPI-RECV-WINDOW"]), _ms()):
                    code, text, data = 10002, "timestamp outside the window", {}
                else:
                    code, text, data = await self._order_op(m["op"], m["args"][0])
                reply = {"reqId": m["reqId"], "retCode": code, "retMsg": text, "op": m["op"],
                         "data": data, "retExtInfo": {}, "connId": "t",
                         "header": {"X-Bapi-Limit": "10", "X-Bapi-Limit-Status": "9",
                                    "X-Bapi-Limit-Reset-Timestamp": str(_ms() + 1000),
                                    "Timenow": str(_ms())}}  # fmt: skip
            await ws.send_str(orjson.dumps(reply).decode())
        return ws


if __name__ == "__main__":
    MiniVenue(sys.argv[1], sys.argv[2]).run()
