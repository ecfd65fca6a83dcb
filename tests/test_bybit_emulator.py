"""The Bybit v5 emulator over real loopback sockets, with a plain aiohttp client:
the REST envelope and signature rules, the streams, order entry and fault switches."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import aiohttp
import pytest

from connector.bybit.emulator import Emulator, EmulatorConfig
from connector.bybit.signing import Credentials, rest_headers, ws_auth_args
from tests.conftest import ROOT, stop_process

CREDS = Credentials("emulator-api-key", "emulator-secret")
TIMEOUT_S = 10.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Client:
    """A signed REST client and WS helpers over one aiohttp session."""

    def __init__(self, emu: Emulator, session: aiohttp.ClientSession):
        self.emu, self.s, self.u = emu, session, emu.urls

    async def get(self, path: str, query: str = "", ts: int | None = None):
        h = rest_headers(CREDS, ts or now_ms(), 5000, query)
        url = self.u["rest"] + path + (f"?{query}" if query else "")
        async with self.s.get(url, headers=h) as r:
            return r.status, r.headers, await r.json()

    async def post(self, path: str, body: dict, ts: int | None = None, creds=CREDS):
        text = json.dumps(body)
        h = rest_headers(creds, ts or now_ms(), 5000, text)
        async with self.s.post(self.u["rest"] + path, data=text,
                               headers={**h, "Content-Type": "application/json"}) as r:  # fmt: skip
            return r.headers, await r.json()

    async def ws(self, kind: str, auth: bool = False):
        ws = await self.s.ws_connect(self.u[kind])
        if auth:
            await ws.send_str(
                json.dumps({"op": "auth", "args": ws_auth_args(CREDS, now_ms() + 5000)})
            )
            reply = await recv(ws)
            assert reply.get("success") is True or reply.get("retCode") == 0, reply
        return ws

    async def touch(self) -> tuple[float, float]:
        _, _, body = await self.get(
            "/v5/market/orderbook", "category=linear&symbol=BTCUSDT&limit=1"
        )
        return float(body["result"]["b"][0][0]), float(body["result"]["a"][0][0])


async def recv(ws, pred=lambda m: True, timeout: float = TIMEOUT_S) -> dict:
    """The next JSON frame matching `pred` (bounded wait)."""
    async with asyncio.timeout(timeout):
        while True:
            m = json.loads(await ws.receive_str())
            if pred(m):
                return m


def run(body, **cfg):
    async def main():
        async with Emulator(EmulatorConfig(**cfg)) as emu, aiohttp.ClientSession() as s:
            await body(Client(emu, s))

    asyncio.run(main())


def test_cli_prints_one_json_line_with_the_contract_keys():
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector.bybit.emulator", "--port", "0", "--symbols",
         "BTCUSDT,ETHUSDT", "--log-level", "WARNING"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        info = json.loads(proc.stdout.readline())
        assert set(info) == {"rest", "ws_public", "ws_private", "ws_trade", "control"}
        assert info["ws_public"].endswith("/v5/public/linear")
        assert info["control"].endswith("/_emulator/faults")
    finally:
        stop_process(proc)


def test_rest_envelope_signature_and_window_rule():
    async def body(c: Client):
        status, _, t = await c.get("/v5/market/time")
        assert status == 200 and t["retCode"] == 0 and set(t) >= {"result", "retExtInfo", "time"}
        _, h, w = await c.get("/v5/account/wallet-balance", "accountType=UNIFIED")
        assert w["retCode"] == 0 and h["X-Bapi-Limit"] == "50"
        # 10004: signed over other text than sent
        hdr = rest_headers(CREDS, now_ms(), 5000, "accountType=SPOT")
        async with c.s.get(c.u["rest"] + "/v5/account/wallet-balance?accountType=UNIFIED",
                           headers=hdr) as r:  # fmt: skip
            assert (await r.json())["retCode"] == 10004
        # 10003: unknown key
        _, bad = await c.post("/v5/order/cancel-all", {"category": "linear", "symbol": "BTCUSDT"},
                              creds=Credentials("nope", "emulator-secret"))  # fmt: skip
        assert bad["retCode"] == 10003
        # 10002: server - recv_window <= ts < server + 1000
        assert (await c.get("/v5/position/list", "category=linear&symbol=BTCUSDT",
                            ts=now_ms() - 6000))[2]["retCode"] == 10002  # fmt: skip
        assert (await c.get("/v5/position/list", "category=linear&symbol=BTCUSDT",
                            ts=now_ms() + 1500))[2]["retCode"] == 10002  # fmt: skip
        assert (await c.get("/v5/position/list", "category=linear&symbol=BTCUSDT",
                            ts=now_ms() - 3000))[2]["retCode"] == 0  # fmt: skip

    run(body)


def test_orders_events_postonly_market_and_errors():
    async def body(c: Client):
        priv = await c.ws("ws_private", auth=True)
        await priv.send_str(
            json.dumps({"op": "subscribe", "args": ["order", "execution", "position", "wallet"]})
        )
        assert (await recv(priv))["success"] is True
        bid, ask = await c.touch()
        p = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
             "qty": "0.010", "price": f"{bid - 500:.2f}", "orderLinkId": "t-1"}  # fmt: skip
        _, r = await c.post("/v5/order/create", p)
        assert r["retCode"] == 0 and r["result"]["orderLinkId"] == "t-1"
        o = await recv(priv, lambda m: m.get("topic") == "order")
        assert o["data"][0]["orderStatus"] == "New" and isinstance(o["creationTime"], int)
        assert isinstance(o["data"][0]["createdTime"], str)
        await recv(priv, lambda m: m.get("topic") == "position")
        assert (await c.post("/v5/order/create", p))[1]["retCode"] == 110072
        amend = {
            "category": "linear",
            "symbol": "BTCUSDT",
            "orderLinkId": "t-1",
            "price": f"{bid - 600:.2f}",
        }
        assert (await c.post("/v5/order/amend", amend))[1]["retCode"] == 0
        o = await recv(priv, lambda m: m.get("topic") == "order")
        assert o["data"][0]["price"] == f"{bid - 600:.2f}"
        cancel = {"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "t-1"}
        assert (await c.post("/v5/order/cancel", cancel))[1]["retCode"] == 0
        o = await recv(priv, lambda m: m.get("topic") == "order")
        assert o["data"][0]["orderStatus"] == "Cancelled"
        assert (await c.post("/v5/order/cancel", cancel))[1]["retCode"] == 110001
        # closed order still found by orderLinkId (assumed: the last 500 closed)
        _, _, rt = await c.get(
            "/v5/order/realtime", "category=linear&symbol=BTCUSDT&orderLinkId=t-1"
        )
        assert rt["result"]["list"][0]["orderStatus"] == "Cancelled"
        # crossing PostOnly: retCode 0, then Cancelled with EC_PostOnlyWillTakeLiquidity
        await c.post("/v5/order/create", {**p, "orderLinkId": "t-2", "price": f"{ask + 50:.2f}",
                                          "timeInForce": "PostOnly"})  # fmt: skip
        o = await recv(priv, lambda m: m.get("topic") == "order")
        d = o["data"][0]
        assert (d["orderStatus"], d["rejectReason"], d["cumExecQty"]) == (
            "Cancelled",
            "EC_PostOnlyWillTakeLiquidity",
            "0.000",
        )
        # market order: execution, position and wallet pushes
        mkt = {
            "category": "linear",
            "symbol": "BTCUSDT",
            "side": "Buy",
            "orderType": "Market",
            "qty": "0.005",
        }
        assert (await c.post("/v5/order/create", mkt))[1]["retCode"] == 0
        e = await recv(priv, lambda m: m.get("topic") == "execution")
        assert e["data"][0]["execQty"] == "0.005" and e["data"][0]["isMaker"] is False
        pos = await recv(priv, lambda m: m.get("topic") == "position")
        assert (pos["data"][0]["side"], pos["data"][0]["size"]) == ("Buy", "0.005")
        await recv(priv, lambda m: m.get("topic") == "wallet")
        async with c.s.get(c.u["rest"] + "/_emulator/position?symbol=BTCUSDT") as r:
            assert await r.json() == {"size": "0.005", "side": "Buy"}
        # parameter and grid checks
        assert (await c.post("/v5/order/create", {**p, "orderLinkId": "t-3", "qty": "0.0105"}))[1][
            "retCode"
        ] == 10001
        assert (await c.post("/v5/order/create", {**p, "orderLinkId": "t-4", "qty": "0.001",
                                                  "price": "1000.00"}))[1]["retCode"] == 110094  # fmt: skip

    run(body)


def test_trade_ws_create_cancel_duplicate_reqid_window_and_ping():
    async def body(c: Client):
        t = await c.ws("ws_trade", auth=True)
        bid, _ = await c.touch()
        hdr = {"X-BAPI-TIMESTAMP": str(now_ms()), "X-BAPI-RECV-WINDOW": "5000"}
        args = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
                "qty": "0.010", "price": f"{bid - 500:.2f}", "orderLinkId": "w-1"}  # fmt: skip
        await t.send_str(
            json.dumps({"reqId": "r1", "header": hdr, "op": "order.create", "args": [args]})
        )
        r = await recv(t)
        assert r["retCode"] == 0 and r["reqId"] == "r1" and "connId" in r
        assert r["header"]["X-Bapi-Limit"] == "10"
        await t.send_str(json.dumps({"reqId": "r1", "header": hdr, "op": "order.cancel",
                                     "args": [{"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "w-1"}]}))  # fmt: skip
        assert (await recv(t))["retCode"] == 20006
        old = {"X-BAPI-TIMESTAMP": str(now_ms() - 10_000), "X-BAPI-RECV-WINDOW": "5000"}
        await t.send_str(json.dumps({"reqId": "r2", "header": old, "op": "order.cancel",
                                     "args": [{"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "w-1"}]}))  # fmt: skip
        assert (await recv(t))["retCode"] == 10002
        await t.send_str(json.dumps({"reqId": "r3", "header": hdr, "op": "order.cancel",
                                     "args": [{"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "w-1"}]}))  # fmt: skip
        assert (await recv(t))["retCode"] == 0
        await t.send_str(json.dumps({"op": "ping"}))
        pong = await recv(t)
        assert (pong["op"], pong["retCode"]) == ("pong", 0)

    run(body)


def test_hedge_mode_lists_two_legs_and_refuses_orders_without_them_10001():
    """A hedge-mode ("both sides") symbol: GET /v5/position/list shows positionIdx 1 and 2
    (read by the connector's parse_position_mode), and an order without positionIdx 1/2
    gets 10001 "position idx not match position mode" over REST and the trade WS alike,
    as one with positionIdx 1 does in one-way mode."""
    from connector.bybit.protocol import parse_position_mode

    async def body(c: Client):
        q = "category=linear&symbol=BTCUSDT"
        _, _, r = await c.get("/v5/position/list", q)
        assert [i["positionIdx"] for i in r["result"]["list"]] == [0]
        assert parse_position_mode(r["result"]) is False
        bid, _ = await c.touch()
        p = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
             "qty": "0.010", "price": f"{bid - 500:.2f}"}  # fmt: skip
        _, r = await c.post("/v5/order/create", {**p, "positionIdx": 1})
        assert (r["retCode"], r["retMsg"]) == (10001, "position idx not match position mode")

        c.emu.set_faults(hedge_mode=True)
        _, _, r = await c.get("/v5/position/list", q)
        legs = r["result"]["list"]
        assert [(i["positionIdx"], i["size"]) for i in legs] == [(1, "0"), (2, "0")]
        assert parse_position_mode(r["result"]) is True
        for extra in ({}, {"positionIdx": 0}):
            _, r = await c.post("/v5/order/create", {**p, **extra})
            assert (r["retCode"], r["retMsg"]) == (10001, "position idx not match position mode")
        t = await c.ws("ws_trade", auth=True)
        hdr = {"X-BAPI-TIMESTAMP": str(now_ms()), "X-BAPI-RECV-WINDOW": "5000"}
        await t.send_str(json.dumps({"reqId": "h1", "header": hdr, "op": "order.create",
                                     "args": [p]}))  # fmt: skip
        r = await recv(t)
        assert (r["reqId"], r["retCode"]) == ("h1", 10001)
        assert c.emu.account.open["BTCUSDT"] == {}  # nothing was placed

    run(body, start_paused=True)


def test_bench_orders_stamps_each_order_request_over_rest_and_trade_ws():
    async def body(c: Client):
        bid, _ = await c.touch()
        order = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
                 "qty": "0.010", "price": f"{bid - 500:.2f}", "orderLinkId": "s-1"}  # fmt: skip
        t0 = time.time_ns()
        _, r = await c.post("/v5/order/create", order)
        assert r["retCode"] == 0
        t = await c.ws("ws_trade", auth=True)
        hdr = {"X-BAPI-TIMESTAMP": str(now_ms()), "X-BAPI-RECV-WINDOW": "5000"}
        cancel = {"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "s-1"}
        await t.send_str(json.dumps({"reqId": "c", "header": hdr, "op": "order.cancel",
                                     "args": [cancel]}))  # fmt: skip
        assert (await recv(t))["retCode"] == 0
        t1 = time.time_ns()
        async with c.s.get(c.u["rest"] + "/_emulator/bench/orders?since=0") as resp:
            got = await resp.json()
        assert got["n"] == 2
        (op1, via1, link1, recv1, ack1), (op2, via2, link2, recv2, ack2) = got["orders"]
        assert (op1, via1, link1, op2, via2, link2) == ("create", "rest", "s-1",
                                                        "cancel", "ws", "s-1")  # fmt: skip
        assert t0 <= recv1 <= ack1 <= recv2 <= ack2 <= t1

    run(body, stamp_orders=True)


def test_public_snapshot_then_deltas_and_replay_restart_faults():
    async def body(c: Client):
        ws = await c.ws("ws_public")
        await ws.send_str(
            json.dumps({"op": "subscribe", "req_id": "s", "args": ["orderbook.50.BTCUSDT"]})
        )
        assert (await recv(ws))["success"] is True
        snap = await recv(ws)
        assert snap["type"] == "snapshot"
        d1 = await recv(ws, lambda m: m.get("type") == "delta")
        assert d1["data"]["u"] == snap["data"]["u"] + 1
        c.emu.faults.replay_delta = 1
        d2 = await recv(ws, lambda m: m.get("type") == "delta")
        d3 = await recv(ws, lambda m: m.get("type") == "delta")
        assert d3 == d2  # the same delta again: a non-increasing u
        async with c.s.post(c.u["control"], json={"restart": True}) as r:
            assert r.status == 200
        m = await recv(ws)
        assert (m["type"], m["data"]["u"]) == ("snapshot", 1)
        async with c.s.post(c.u["control"], json={"drop_delta": 1}) as r:
            assert r.status == 200
        nxt = await recv(ws, lambda m: m.get("type") == "delta")
        assert nxt["data"]["u"] == 3  # u=2 was dropped: a gap the client must see
        async with c.s.post(c.u["control"], json={"bogus": 1}) as r:
            assert r.status == 400 and "bogus" in (await r.json())["error"]

    run(body)


def test_rate_limit_fault_gives_10006_with_headers():
    async def body(c: Client):
        async with c.s.post(c.u["control"], json={"rate_limit": 1}) as r:
            assert r.status == 200
        h, r = await c.post("/v5/order/cancel-all", {"category": "linear", "symbol": "BTCUSDT"})
        assert r["retCode"] == 10006 and h["X-Bapi-Limit-Status"] == "0"
        assert int(h["X-Bapi-Limit-Reset-Timestamp"]) > now_ms()
        _, r = await c.post("/v5/order/cancel-all", {"category": "linear", "symbol": "BTCUSDT"})
        assert r["retCode"] == 0 and r["result"]["success"] == "1"

    run(body)


@pytest.mark.parametrize("bad", ["wrong-sign", "expired"])
def test_private_auth_refused(bad):
    async def body(c: Client):
        ws = await c.s.ws_connect(c.u["ws_private"])
        args = ws_auth_args(CREDS, now_ms() + (5000 if bad != "expired" else -1000))
        if bad == "wrong-sign":
            args[2] = "0" * 64
        await ws.send_str(json.dumps({"op": "auth", "args": args}))
        m = await recv(ws)
        assert (m["success"], m["ret_msg"]) == (False, "Params Error")

    run(body)


def test_private_lose_dup_trade_lose_acks_refuse_and_silence():
    async def body(c: Client):
        priv = await c.ws("ws_private", auth=True)
        await priv.send_str(json.dumps({"op": "subscribe", "args": ["order"]}))
        assert (await recv(priv))["success"] is True
        t = await c.ws("ws_trade", auth=True)
        bid, _ = await c.touch()

        def create(rid: str, link: str) -> str:
            args = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
                    "qty": "0.010", "price": f"{bid - 500:.2f}", "orderLinkId": link}  # fmt: skip
            hdr = {"X-BAPI-TIMESTAMP": str(now_ms())}
            return json.dumps({"reqId": rid, "header": hdr, "op": "order.create", "args": [args]})

        c.emu.set_faults(lose_private_events=1, lose_acks=1)
        await t.send_str(create("a", "f-1"))  # executed, no ack, its order push lost
        await t.send_str(create("b", "f-2"))
        ack = await recv(t)
        assert ack["reqId"] == "b"  # "a" never answered
        o = await recv(priv, lambda m: m.get("topic") == "order")
        assert o["data"][0]["orderLinkId"] == "f-2"  # f-1's push was lost
        async with c.s.get(c.u["rest"] + "/_emulator/orders?symbol=BTCUSDT") as r:
            links = {x["orderLinkId"] for x in (await r.json())["list"]}
        assert links == {"f-1", "f-2"}  # the account changed all the same
        c.emu.set_faults(dup_private_events=1)
        await t.send_str(create("c", "f-3"))
        o1 = await recv(priv, lambda m: m.get("topic") == "order")
        o2 = await recv(priv, lambda m: m.get("topic") == "order")
        assert o1 == o2
        assert (await recv(t))["reqId"] == "c"
        c.emu.set_faults(refuse_trade=True)
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await c.s.ws_connect(c.u["ws_trade"])
        async with c.s.post(c.u["control"], json={"refuse_trade": False, "silence": "trade"}) as r:
            assert r.status == 200
        await t.send_str(json.dumps({"op": "ping"}))
        with pytest.raises(TimeoutError):
            await recv(t, timeout=0.5)  # half-dead: no pong (the wait is the check)
        async with c.s.get(c.u["rest"] + "/_emulator/requests") as r:
            counts = await r.json()
        assert counts["order.create"] == 3

    run(body)


def test_replays_a_binance_capture_as_bybit_traffic():
    from tests.conftest import CAPTURE

    if not CAPTURE.exists():
        pytest.skip(f"{CAPTURE} not present")

    async def body(c: Client):
        ws = await c.ws("ws_public")
        await ws.send_str(json.dumps({"op": "subscribe", "args": ["orderbook.50.ETHUSDT"]}))
        assert (await recv(ws))["success"] is True
        snap = await recv(ws)
        assert snap["type"] == "snapshot" and snap["data"]["s"] == "ETHUSDT"
        delta = await recv(ws, lambda m: m.get("type") == "delta")
        assert delta["data"]["u"] == snap["data"]["u"] + 1
        async with c.s.get(c.u["rest"] + "/_emulator/book?symbol=ETHUSDT&limit=5") as r:
            book = await r.json()
        assert float(book["b"][0][0]) < float(book["a"][0][0])

    run(body, symbols=("ETHUSDT",), data=str(CAPTURE), speed=5.0)
