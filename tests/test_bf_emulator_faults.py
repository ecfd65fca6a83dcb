"""The emulator's soak faults (emulator/faults.py): half-dead connections, 503 / -1001 on
order requests, duplicated and reordered user events, the WS-API's 429 and 418.

Two parts. First each switch is checked on the emulator itself, in-process, with a raw
client over real loopback sockets (what goes on the wire). Then each runs end to end:
the emulator and the real connector as child processes, a real LiveBot in this process
(the pattern of test_bf_connector.py and test_bf_faults.py), checking that nothing is
lost and nothing is sent twice: what the venue received (its request counters, its open
orders and position) and what the bot saw must agree within a bounded wait. Where the
connector does not cope, the test stays, marked xfail(strict) with the defect stated.
Section numbers cite venue_protocols.md.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest

from connector.binancefutures.emulator import Emulator as InProcess
from connector.binancefutures.emulator.faults import Faults, split_request
from connector.binancefutures.signing import Credentials, sign_params, sign_ws_params
from hftlive import CANCELED, ERR_ORDER, EXPIRED, FILLED, GTX, IOC, LIMIT, MARKET, NEW
from tests.test_bf_connector import (
    SECRET,
    BfConnector,
    Emulator,
    _bot,
    _synced,
    _venue_get,
    _venue_position,
    _wait,
)

KEY = "test-api-key"
QTY = 0.02  # above the 20 USDT min notional at ~2500


# =============================================================== the switches themselves
def test_new_switches_are_validated_and_named_in_the_docstring():
    ok = {"http_503": 2, "http_503_executed": True, "disconnected_1001": 1,
          "dup_user_events": 3, "reorder_user_events": 3, "ws_api_429": 1}  # fmt: skip
    switches, actions = split_request({**ok, "silence": "ws-api"})
    assert switches == ok and actions == {"silence": "ws-api"}
    for bad in ({"http_503": -1}, {"http_503_executed": 1}, {"ws_api_429": "1"},
                {"silence": "everything"}, {"silence": True}, {"dup_user_event": 1}):  # fmt: skip
        with pytest.raises(ValueError, match=next(iter(bad))):
            split_request(bad)
    for name in [*ok, "silence"]:
        assert f"{name}:" in Faults.__doc__ or f"`{name}: kind`" in Faults.__doc__, name
    f = Faults(http_503=1, http_503_executed=True, disconnected_1001=1)
    assert f.take_server_error() == (-1001, "Internal error; unable to process your "
                                     "request. Please try again.", False)  # fmt: skip
    code, msg, executed = f.take_server_error()
    assert (code, executed) == (-1000, True) and msg.startswith("Unknown error, please")
    assert f.take_server_error() is None


def run(coro, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def emulator(**kw) -> InProcess:
    return InProcess(data=None, symbols=("ethusdt",), api_key=KEY, secret=SECRET, **kw)


async def wait_until(cond, what: str, timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def rest(emu, s: aiohttp.ClientSession, method: str, path: str, **params):
    q = sign_params(params, SECRET, emu.now_ms(), 5000)
    async with s.request(method, f"{emu.urls['rest']}{path}?{q}",
                         headers={"X-MBX-APIKEY": KEY}) as r:  # fmt: skip
        return r.status, await r.json(content_type=None)


def far_bid(emu) -> str:
    mkt = emu.markets["ethusdt"]
    return mkt.spec.px(int(mkt.book.mid_tick()) - 5000)  # 50 USDT below: rests


def limit(emu, cid: str) -> dict:
    return {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTX",
            "quantity": "0.020", "price": far_bid(emu), "newClientOrderId": cid}  # fmt: skip


@pytest.mark.parametrize("executed", [True, False])
def test_503_unknown_executes_or_not_as_switched_and_1001_never_does(executed):
    async def main():
        async with emulator() as emu, aiohttp.ClientSession() as s:
            emu.set_faults(http_503=1, http_503_executed=executed)
            status, body = await rest(emu, s, "POST", "/fapi/v1/order", **limit(emu, "u1"))
            assert status == 503, body
            assert body == {"code": -1000, "msg": "Unknown error, please check your "
                            "request or try again later."}  # fmt: skip
            st, q = await rest(emu, s, "GET", "/fapi/v1/order", symbol="ETHUSDT",
                               origClientOrderId="u1")  # fmt: skip
            assert (st, q.get("status")) == ((200, "NEW") if executed else (400, None))

            emu.set_faults(disconnected_1001=1)
            status, body = await rest(emu, s, "POST", "/fapi/v1/order", **limit(emu, "d1"))
            assert (status, body["code"]) == (503, -1001)
            st, q = await rest(emu, s, "GET", "/fapi/v1/order", symbol="ETHUSDT",
                               origClientOrderId="d1")  # fmt: skip
            assert (st, q["code"]) == (400, -2013)  # never executed
            assert emu.rest_statuses[503] == 2

    run(main())


def test_user_events_are_duplicated_and_reordered_on_the_wire():
    async def main():
        async with emulator() as emu, aiohttp.ClientSession() as s:
            _, lk = await rest(emu, s, "POST", "/fapi/v1/listenKey")
            got: list[dict] = []
            ws = await s.ws_connect(f"{emu.urls['ws_private']}/ws?listenKey={lk['listenKey']}")
            reader = asyncio.create_task(_collect(ws, got))
            await wait_until(lambda: emu.user_hub.conns, "the user stream")
            # a MARKET order: NEW, then per fill TRADE_LITE, ACCOUNT_UPDATE and the trade
            # update; three held back: the (first) trade update comes first
            emu.set_faults(reorder_user_events=3)
            mkt = {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.020"}
            await rest(emu, s, "POST", "/fapi/v1/order", **mkt)
            await wait_until(lambda: any(e.get("o", {}).get("X") == "FILLED" for e in got)
                             and len(got) >= 4, "the events")  # fmt: skip
            kinds = [(e["e"], e.get("o", {}).get("x")) for e in got[:4]]
            assert kinds == [("ORDER_TRADE_UPDATE", "TRADE"), ("ORDER_TRADE_UPDATE", "NEW"),
                             ("TRADE_LITE", None), ("ACCOUNT_UPDATE", None)]  # fmt: skip
            # a lone held event (a resting order's NEW) goes out late, not never
            got.clear()
            emu.set_faults(reorder_user_events=1)
            await rest(emu, s, "POST", "/fapi/v1/order", **limit(emu, "r1"))
            await wait_until(lambda: got, "the held NEW", timeout=3)
            assert [e["o"]["c"] for e in got] == ["r1"]
            # duplicates: every event of the next cancel twice, back to back
            got.clear()
            emu.set_faults(dup_user_events=1)
            await rest(emu, s, "DELETE", "/fapi/v1/order", symbol="ETHUSDT",
                       origClientOrderId="r1")  # fmt: skip
            await wait_until(lambda: len(got) >= 2, "the duplicate")
            assert got[0] == got[1] and got[0]["o"]["X"] == "CANCELED"
            reader.cancel()
            await ws.close()

    run(main())


async def _collect(ws, out: list) -> None:
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            out.append(orjson.loads(msg.data))


def test_ws_api_429_then_418_ban_closes_the_connection():
    async def main():
        async with emulator() as emu, aiohttp.ClientSession() as s:
            emu.set_faults(ws_api_429=1, retry_after_s=5)
            ws = await s.ws_connect(emu.urls["ws_api"])
            creds = Credentials(KEY, SECRET)

            async def call(rid: int, method: str, params: dict) -> dict:
                signed = sign_ws_params(params, creds, emu.now_ms())
                await ws.send_str(orjson.dumps({"id": rid, "method": method,
                                                "params": signed}).decode())  # fmt: skip
                return orjson.loads((await ws.receive(timeout=5)).data)

            r = await call(1, "order.status", {"symbol": "ETHUSDT", "orderId": 1})
            assert (r["id"], r["status"], r["error"]["code"]) == (1, 429, -1003)
            data = r["error"]["data"]
            assert data["retryAfter"] - data["serverTime"] == 5000
            assert r["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
            # sent again before retryAfter: banned (418), then the connection is closed
            r = await call(2, "order.place", limit(emu, "b1"))
            assert (r["status"], r["error"]["code"]) == (418, -1003)
            assert "banned until" in r["error"]["msg"]
            closing = await ws.receive(timeout=5)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert emu.account.orders == {}  # nothing executed
            # the ban is the IP's: REST is refused too
            status, body = await rest(emu, s, "GET", "/fapi/v1/openOrders", symbol="ETHUSDT")
            assert (status, body["code"]) == (418, -1003)

    run(main())


def test_a_silenced_ws_api_connection_takes_requests_and_answers_nothing():
    async def main():
        async with emulator() as emu, aiohttp.ClientSession() as s:
            ws = await s.ws_connect(emu.urls["ws_api"], autoping=False)
            creds = Credentials(KEY, SECRET)
            await wait_until(lambda: emu.ws_api_conns, "the connection")
            assert emu.silence("ws-api") == 1
            signed = sign_ws_params(limit(emu, "s1"), creds, emu.now_ms())
            await ws.send_str(orjson.dumps({"id": 1, "method": "order.place",
                                            "params": signed}).decode())  # fmt: skip
            await ws.ping(b"are you there")
            with pytest.raises(asyncio.TimeoutError):
                await ws.receive(timeout=1.0)  # no reply, no pong, no close
            assert not ws.closed
            assert emu.account.orders == {} and emu.ws_api_requests == {}  # never arrived
            # a new connection takes a new path: it works
            ws2 = await s.ws_connect(emu.urls["ws_api"])
            signed = sign_ws_params(limit(emu, "s2"), creds, emu.now_ms())
            await ws2.send_str(orjson.dumps({"id": 2, "method": "order.place",
                                             "params": signed}).decode())  # fmt: skip
            r = orjson.loads((await ws2.receive(timeout=5)).data)
            assert (r["status"], r["result"]["clientOrderId"]) == (200, "s2")
            await ws.close()
            await ws2.close()

    run(main())


# =================================================== end to end: the connector under each
@pytest.fixture
def emu(tmp_path):
    e = Emulator(tmp_path)
    yield e
    e.stop()


def _seen(emu) -> dict:
    return emu.control("/_emulator/requests")


def _open_orders(emu) -> list:
    return _venue_get(emu, "/fapi/v1/openOrders")


def _run_bot(tmp_path, emu, order_entry: str, extra: str = "request_timeout_s = 1.0"):
    conn = BfConnector(tmp_path, emu, extra=extra, order_entry=order_entry)
    errors: list = []
    hbt = _bot(conn, errors)
    _wait(hbt, lambda: _synced(hbt), timeout=20, what="a synced book")
    return conn, hbt, errors


def _close(conn, hbt) -> None:
    if hbt is not None:
        hbt.close()
    rc = conn.stop()
    assert SECRET not in conn.text()
    assert rc == 0, conn.text()[-3000:]


def _order_requests(emu, order_entry: str, method: str = "order.place") -> int:
    seen = _seen(emu)
    if order_entry == "ws":
        return seen["ws_api"].get(method, 0)
    rest = {"order.place": "POST", "order.cancel": "DELETE"}[method]
    return seen["requests"].get(f"{rest} /fapi/v1/order", 0)


# ----------------------------------------------------------------- (b) 503 and -1001
@pytest.mark.parametrize("order_entry", ["rest", "ws"])
def test_503_with_unknown_outcome_is_asked_about_not_resent(tmp_path, emu, order_entry):
    """§1.8: a 503 "Unknown error" leaves the execution status unknown. The connector
    must ask (GET order), never resend, and end where the venue is: the order resting
    when it executed, EXPIRED when it did not. -1001 never executes: it is a definite
    failure (the order ends EXPIRED with -1001, no question asked)."""
    conn, hbt, errors = _run_bot(tmp_path, emu, order_entry)
    try:
        px = round(hbt.depth(0).best_bid - 5.0, 2)
        # executed: the order rests at the venue and the bot sees it NEW
        emu.faults(http_503=1, http_503_executed=True)
        assert hbt.submit_buy_order(0, 1, px, QTY, GTX, LIMIT, False) == 0
        _wait(hbt, lambda: hbt.orders(0).get(1).status == NEW, what="the order NEW")
        _wait(hbt, lambda: int(hbt.orders(0).get(1).req) == 0, what="the submit to conclude")
        assert [o["clientOrderId"] for o in _open_orders(emu)] != []
        # not executed: nothing rests, the bot's order ends EXPIRED
        emu.faults(http_503=1, http_503_executed=False)
        assert hbt.submit_buy_order(0, 2, px - 1, QTY, GTX, LIMIT, False) == 0
        _wait(hbt, lambda: hbt.orders(0).get(2).status == EXPIRED, what="order 2 EXPIRED")
        # -1001 DISCONNECTED: a definite failure
        emu.faults(disconnected_1001=1)
        assert hbt.submit_buy_order(0, 3, px - 2, QTY, GTX, LIMIT, False) == 0
        _wait(hbt, lambda: hbt.orders(0).get(3).status == EXPIRED, what="order 3 EXPIRED")
        assert {e.order_id for e in errors if e.kind == ERR_ORDER} == {2, 3}

        assert len(_open_orders(emu)) == 1  # the venue and the bot agree: order 1 only
        assert _order_requests(emu, order_entry) == 3  # each sent once, none resent
        assert _seen(emu)["requests"]["GET /fapi/v1/order"] == 2  # one per unknown outcome
        assert hbt.cancel(0, 1, True) == 0
        assert hbt.orders(0).get(1).status == CANCELED
        assert _open_orders(emu) == []
    finally:
        _close(conn, hbt)


def test_1001_reaches_the_bot_with_its_own_code(tmp_path, emu):
    conn, hbt, errors = _run_bot(tmp_path, emu, "rest")
    try:
        emu.faults(disconnected_1001=1)
        px = round(hbt.depth(0).best_bid - 5.0, 2)
        assert hbt.submit_buy_order(0, 1, px, QTY, GTX, LIMIT, False) == 0
        _wait(hbt, lambda: any(e.order_id == 1 for e in errors), what="the error")
        assert hbt.orders(0).get(1).status == EXPIRED
        assert _order_requests(emu, "rest") == 1 and _open_orders(emu) == []
        assert next(e for e in errors if e.order_id == 1).code == -1001
    finally:
        _close(conn, hbt)


# ------------------------------------------------- (c) duplicated and reordered events
def test_duplicated_user_events_count_each_fill_once(tmp_path, emu):
    conn, hbt, errors = _run_bot(tmp_path, emu, "rest")
    try:
        emu.faults(dup_user_events=100)
        ask = hbt.depth(0).best_ask
        assert hbt.submit_buy_order(0, 1, ask, QTY, IOC, MARKET, True) == 0
        _wait(hbt, lambda: hbt.orders(0).get(1).status == FILLED, what="the fill")
        bid = hbt.depth(0).best_bid
        assert hbt.submit_sell_order(0, 2, bid, QTY, IOC, MARKET, True) == 0
        _wait(hbt, lambda: hbt.orders(0).get(2).status == FILLED, what="the close")
        trades = _venue_get(emu, "/fapi/v1/userTrades")
        fee = sum(float(t["commission"]) for t in trades)
        assert emu.faults()["dup_user_events"] <= 100 - 8  # both orders' events doubled
        # a duplicate goes out right behind its original; give them time to be applied
        _wait(hbt, lambda: hbt.state_values(0).num_trades >= len(trades), what="the fills")
        hbt.elapse(300_000_000)
        sv = hbt.state_values(0)
        assert sv.num_trades == len(trades)
        assert sv.fee == pytest.approx(fee)
        assert hbt.position(0) == pytest.approx(0.0, abs=1e-9)
        assert hbt.position(0) == pytest.approx(_venue_position(emu), abs=1e-9)
        assert _order_requests(emu, "rest") == 2
    finally:
        _close(conn, hbt)


def test_reordered_user_events_leave_the_venues_final_state(tmp_path, emu):
    """A MARKET order's FILLED update before its NEW (same ms), and a modify's AMENDMENT
    after the cancel that followed it: the bot ends where the venue is."""
    conn, hbt, errors = _run_bot(tmp_path, emu, "rest")
    try:
        emu.faults(reorder_user_events=3)  # NEW, TRADE_LITE, ACCOUNT_UPDATE after FILLED
        ask = hbt.depth(0).best_ask
        assert hbt.submit_buy_order(0, 1, ask, QTY, IOC, MARKET, False) == 0
        _wait(hbt, lambda: emu.faults()["reorder_user_events"] == 0, what="the reorder")
        _wait(hbt, lambda: hbt.orders(0).get(1).status == FILLED, what="the fill")
        hbt.elapse(500_000_000)  # the held events (after FILLED) have been delivered
        assert hbt.orders(0).get(1).status == FILLED  # not back to NEW
        assert hbt.position(0) == pytest.approx(QTY)

        px = round(hbt.depth(0).best_bid - 5.0, 2)
        assert hbt.submit_buy_order(0, 2, px, QTY, GTX, LIMIT, True) == 0
        emu.faults(reorder_user_events=1)  # the AMENDMENT goes out after the CANCELED
        assert hbt.modify(0, 2, round(px - 1.0, 2), QTY, True) == 0
        assert hbt.cancel(0, 2, True) == 0
        _wait(hbt, lambda: hbt.orders(0).get(2).status == CANCELED, what="the cancel")
        hbt.elapse(500_000_000)
        assert hbt.orders(0).get(2).status == CANCELED
        assert _open_orders(emu) == []
        assert hbt.position(0) == pytest.approx(_venue_position(emu))
        assert hbt.state_values(0).num_trades == len(_venue_get(emu, "/fapi/v1/userTrades"))
        assert _order_requests(emu, "rest") == 2
    finally:
        _close(conn, hbt)


# ------------------------------------------------------------- (d) the WS-API's 429
def test_ws_api_429_pauses_order_entry_until_retry_after_and_is_never_banned(tmp_path, emu):
    conn, hbt, errors = _run_bot(tmp_path, emu, "ws")
    try:
        px = round(hbt.depth(0).best_bid - 5.0, 2)
        emu.faults(ws_api_429=1, retry_after_s=3)
        assert hbt.submit_buy_order(0, 1, px, QTY, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(1).status == EXPIRED
        _wait(hbt, lambda: any(e.order_id == 1 for e in errors), what="the -1003 error")
        assert next(e for e in errors if e.order_id == 1).code == -1003
        placed = _order_requests(emu, "ws")
        assert placed == 1
        oid, deadline = 2, time.monotonic() + 20
        while True:  # refused locally during retryAfter, then it goes through
            assert time.monotonic() < deadline, "order entry never resumed"
            assert hbt.submit_buy_order(0, oid, px, QTY, GTX, LIMIT, True) == 0
            if hbt.orders(0).get(oid).status != EXPIRED:
                break
            assert _order_requests(emu, "ws") == placed  # nothing reached the venue
            oid += 1
            hbt.elapse(250_000_000)
        assert oid > 2  # at least one local refusal inside retryAfter
        assert hbt.orders(0).get(oid).status == NEW
        seen = _seen(emu)
        assert seen["ws_api"]["order.place"] == 2
        assert "418" not in seen["ws_api_statuses"] and "418" not in seen["statuses"]
        assert [o["clientOrderId"] for o in _open_orders(emu)] != []
    finally:
        _close(conn, hbt)


# --------------------------------------------------------- (a) half-dead connections
def test_a_silent_ws_api_request_concludes_without_a_resend(tmp_path, emu):
    """The WS-API socket goes half-dead: the order never reaches the venue. The request
    times out, the connector asks over REST (-2013), the order ends EXPIRED, and nothing
    is resent."""
    conn, hbt, errors = _run_bot(tmp_path, emu, "ws")
    try:
        px = round(hbt.depth(0).best_bid - 5.0, 2)
        emu.faults(silence="ws-api")
        assert hbt.submit_buy_order(0, 1, px, QTY, GTX, LIMIT, False) == 0
        _wait(hbt, lambda: hbt.orders(0).get(1).status == EXPIRED, timeout=15,
              what="the request to conclude")  # fmt: skip
        assert _open_orders(emu) == []
        seen = _seen(emu)
        assert seen["ws_api"].get("order.place", 0) == 0  # lost on the dead path
        assert "POST /fapi/v1/order" not in seen["requests"]  # not resent over REST
        assert seen["requests"]["GET /fapi/v1/order"] == 1
    finally:
        _close(conn, hbt)


def test_a_silent_ws_api_socket_is_replaced_within_a_bounded_time(tmp_path, emu):
    conn, hbt, errors = _run_bot(tmp_path, emu, "ws")
    try:
        px = round(hbt.depth(0).best_bid - 5.0, 2)
        emu.faults(silence="ws-api")
        assert hbt.submit_buy_order(0, 1, px, QTY, GTX, LIMIT, False) == 0
        _wait(hbt, lambda: hbt.orders(0).get(1).status == EXPIRED, timeout=15,
              what="the first request to conclude")  # fmt: skip
        _wait(hbt, lambda: conn.text().count("WebSocket API connected") >= 2, timeout=15,
              what="a new WS-API connection")  # fmt: skip
        assert hbt.submit_buy_order(0, 2, px, QTY, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(2).status == NEW
        assert _seen(emu)["ws_api"]["order.place"] == 1
    finally:
        _close(conn, hbt)


# a reply ahead of the stream's fills holds the order's state; if the fills never come
# (the stream is half-dead), the lifecycle reads them back from userTrades (rule A4)
def test_fills_on_a_silent_user_stream_reach_the_bot_within_a_bounded_time(tmp_path, emu):
    conn, hbt, errors = _run_bot(tmp_path, emu, "rest")
    try:
        emu.faults(silence="private")
        ask = hbt.depth(0).best_ask
        assert hbt.submit_buy_order(0, 1, ask, QTY, IOC, MARKET, False) == 0
        _wait(hbt, lambda: _order_requests(emu, "rest") == 1, what="the order at the venue")
        assert _venue_position(emu) == pytest.approx(QTY)  # filled there
        _wait(hbt, lambda: hbt.orders(0).get(1).status == FILLED, timeout=20,
              what="the fill at the bot")  # fmt: skip
        assert hbt.position(0) == pytest.approx(QTY)
        assert _order_requests(emu, "rest") == 1
    finally:
        _close(conn, hbt)
