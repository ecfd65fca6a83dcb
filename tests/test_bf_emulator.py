"""The Binance USD-M futures emulator, end to end over real loopback sockets.

Each test runs the emulator in-process and talks to it with real clients (aiohttp HTTP
and WebSocket), signing with connector.binancefutures.signing and parsing every reply with
connector.binancefutures.protocol, the connector's own wire layer. No mocks, no network.
pytest-asyncio is not installed, so each test drives its coroutine with asyncio.run; waits
are for conditions, each with a deadline. Section numbers cite venue_protocols.md.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import pytest
import websockets.asyncio.client
from yarl import URL

from connector.binancefutures.book_sync import SYNCED, BookSync, DictBook, Gap, NeedSnapshot
from connector.binancefutures.emulator import Emulator, Timers
from connector.binancefutures.emulator.gate import Gate, split_signature
from connector.binancefutures.protocol import (
    AccountUpdate,
    CommandReply,
    DepthUpdate,
    ListenKeyExpired,
    OrderResponse,
    OrderTradeUpdate,
    TradeLite,
    parse_depth_snapshot,
    parse_error,
    parse_order_response,
    parse_position_mode,
    parse_position_risk,
    parse_stream,
)
from connector.binancefutures.signing import Credentials, sign_params, sign_ws_params

ROOT = Path(__file__).resolve().parents[1]
CAPTURE = ROOT.parent / "shared/data/binancefutures/ethusdt_20240808.gz"
KEY, SECRET = "test-api-key", "test-secret"
DEADLINE_S = 8.0
SYM = "ethusdt"


def run(coro, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def replay(**kw) -> Emulator:
    assert CAPTURE.exists(), f"capture not found: {CAPTURE} (tests read ../shared)"
    kw = {"speed": 20.0, "api_key": KEY, "secret": SECRET, **kw}
    return Emulator(data=str(CAPTURE), symbols=(SYM,), **kw)


def synthetic(**kw) -> Emulator:
    return Emulator(data=None, symbols=(SYM,), api_key=KEY, secret=SECRET, **kw)


class Client:
    """A minimal REST client as a connector would write it (HMAC, params in the query)."""

    def __init__(self, emu: Emulator, session: aiohttp.ClientSession):
        self.emu, self.s, self.base = emu, session, emu.urls["rest"]

    async def call(self, method: str, path: str, query: str = "", body: str = "", headers=None):
        url = f"{self.base}{path}" + (f"?{query}" if query else "")
        hdrs = {"X-MBX-APIKEY": KEY, **(headers or {})}
        if body:
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        # encoded=True: send the query exactly as signed (aiohttp would requote "%21" to "!")
        async with self.s.request(
            method, URL(url, encoded=True), data=body or None, headers=hdrs
        ) as r:
            return r.status, r.headers, await r.read()

    async def signed(self, method, path, params, secret=SECRET, ts_ms=None, in_body=False):
        ts = self.emu.now_ms() if ts_ms is None else ts_ms
        signed = sign_params(params, secret, ts, 5000)
        if in_body:
            return await self.call(method, path, body=signed)
        return await self.call(method, path, query=signed)

    async def json(self, method, path, query=""):
        status, _, body = await self.call(method, path, query)
        return status, orjson.loads(body)

    async def book_top(self) -> tuple[str, str]:
        _, d = await self.json("GET", "/fapi/v1/depth", "symbol=ETHUSDT&limit=5")
        return d["bids"][0][0], d["asks"][0][0]

    async def listen_key(self) -> str:
        status, d = await self.json("POST", "/fapi/v1/listenKey")
        assert status == 200
        return d["listenKey"]

    async def place(self, side, price, tif="GTC", qty="0.010", cid=None, **extra):
        params = {"symbol": "ETHUSDT", "side": side, "type": "LIMIT", "timeInForce": tif}
        params.update(quantity=qty, price=price, newClientOrderId=cid, **extra)
        return await self.signed("POST", "/fapi/v1/order", params)


def ticks(px: str, n: int) -> str:
    """px moved by n ticks of 0.01 (ETHUSDT)."""
    return f"{float(px) + n * 0.01:.2f}"


async def wait_window_room(period_s: float, room_s: float) -> None:
    """Waits until `room_s` or more remain in the venue's current fixed window of
    `period_s` (weight per calendar minute, orders per 10 s: §1.8); at a window's end the
    counts start again from 0, which would break a check that adds them up across it."""
    while period_s - time.time() % period_s < room_s:
        await asyncio.sleep(0.05)


async def recv(ws, pred=lambda m: True, timeout: float = DEADLINE_S):
    """The first parsed frame matching `pred`, read within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no matching frame before the deadline")
        msg = await ws.receive(timeout=left)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"socket ended: {msg.type} {msg.data!r}")
        parsed = parse_stream(msg.data)
        if pred(parsed):
            return parsed


async def assert_silent(ws, timeout: float) -> None:
    """Nothing arrives on `ws` within `timeout` (the deadline of a negative check)."""
    with pytest.raises(asyncio.TimeoutError):
        msg = await ws.receive(timeout=timeout)
        pytest.fail(f"unexpected frame: {msg.data!r:.200}")


def otu(cid: str, x: str | None = None):
    return lambda m: (
        isinstance(m, OrderTradeUpdate)
        and m.client_order_id == cid
        and (x is None or m.exec_type == x)
    )


# ----------------------------------------------------------------------------- signing
def test_gate_accepts_official_hmac_vector():
    """§1.6 [BN-GI] Example 1: the published signature verifies; one changed byte does not."""
    secret = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
    key = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
    msg = (
        "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
        "&recvWindow=5000&timestamp=1591702613943"
    )
    sig = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
    gate = Gate(key, secret, clock_ms=lambda: 1591702613943 + 100)
    params = dict(p.split("=") for p in msg.split("&"))
    for query, body in ((f"{msg}&signature={sig}", ""), ("", f"{msg}&signature={sig}")):
        payload, got = split_signature(query, body)
        gate.check_signed(params, payload, got)
    payload, got = split_signature(msg.replace("9000", "9001") + f"&signature={sig}", "")
    with pytest.raises(Exception, match="-1022"):
        gate.check_signed(params, payload, got)


def test_ed25519_signed_request():
    """§1.6: an Ed25519 key signs base64 over the same payload (URL-encoded in the query)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )

    async def main():
        async with replay(start_paused=True, secret=pem) as emu, aiohttp.ClientSession() as s:
            c = Client(emu, s)
            status, _, body = await c.signed("GET", "/fapi/v2/positionRisk", {}, secret=pem)
            assert status == 200 and orjson.loads(body)[0]["symbol"] == "ETHUSDT"
            status, _, body = await c.signed("GET", "/fapi/v2/positionRisk", {}, secret="hmac")
            assert parse_error(body).code == -1022

    run(main())


def test_signed_order_round_trip():
    """§1.6: place (query), query, list, cancel (body) with signing.py's HMAC."""

    async def main():
        async with replay(start_paused=True) as emu, aiohttp.ClientSession() as s:
            c = Client(emu, s)
            bid, _ = await c.book_top()
            status, hdrs, body = await c.place("BUY", ticks(bid, -100), cid="rt-1")
            assert status == 200, body
            assert hdrs["X-MBX-ORDER-COUNT-10S"] == "1" and hdrs["X-MBX-ORDER-COUNT-1M"] == "1"
            assert "X-MBX-USED-WEIGHT-1M" in hdrs
            placed = parse_order_response(body)
            assert isinstance(placed, OrderResponse)
            assert (placed.client_order_id, placed.status, placed.tif) == ("rt-1", "NEW", "GTC")
            assert placed.price == float(ticks(bid, -100)) and placed.orig_qty == 0.01

            q = {"symbol": "ETHUSDT", "orderId": placed.order_id}
            status, _, body = await c.signed("GET", "/fapi/v1/order", q)
            assert status == 200 and orjson.loads(body)["avgPrice"] == "0.00000"
            assert parse_order_response(body).order_id == placed.order_id
            status, _, body = await c.signed("GET", "/fapi/v1/openOrders", {"symbol": "ETHUSDT"})
            assert [o["clientOrderId"] for o in orjson.loads(body)] == ["rt-1"]

            cancel = {"symbol": "ETHUSDT", "origClientOrderId": "rt-1"}
            status, _, body = await c.signed("DELETE", "/fapi/v1/order", cancel, in_body=True)
            assert status == 200 and parse_order_response(body).status == "CANCELED"
            status, _, body = await c.signed("GET", "/fapi/v1/order", q)
            assert orjson.loads(body)["status"] == "CANCELED"
            # -2013: a query of an order that never existed
            status, _, body = await c.signed("GET", "/fapi/v1/order", {**q, "orderId": 1})
            assert (status, parse_error(body).code) == (400, -2013)

    run(main())


def test_bad_signature_and_bad_keys():
    """§1.8: -1022 bad signature; -2014 no key header; -2015 unknown key; -1102 missing."""

    async def main():
        async with replay(start_paused=True) as emu, aiohttp.ClientSession() as s:
            c = Client(emu, s)
            status, _, body = await c.signed("GET", "/fapi/v2/positionRisk", {}, secret="wrong")
            assert (status, parse_error(body).code) == (400, -1022)
            good = sign_params({}, SECRET, emu.now_ms(), None)
            status, _, body = await c.call(
                "GET", "/fapi/v2/positionRisk", good, headers={"X-MBX-APIKEY": ""}
            )
            assert parse_error(body).code == -2014
            status, _, body = await c.call(
                "GET", "/fapi/v2/positionRisk", good, headers={"X-MBX-APIKEY": "other"}
            )
            assert parse_error(body).code == -2015
            status, _, body = await c.call("GET", "/fapi/v2/positionRisk", "recvWindow=5000")
            assert parse_error(body).code == -1102

    run(main())


def test_stale_or_future_timestamp_and_clock_skew():
    """§1.6: serverTime - timestamp > recvWindow, or timestamp >= serverTime + 1000: -1021."""

    async def main():
        async with replay(start_paused=True) as emu, aiohttp.ClientSession() as s:
            c = Client(emu, s)
            path = "/fapi/v2/positionRisk"
            status, _, body = await c.signed("GET", path, {}, ts_ms=emu.now_ms() - 6000)
            assert (status, parse_error(body).code) == (400, -1021)
            status, _, body = await c.signed("GET", path, {}, ts_ms=emu.now_ms() + 2000)
            assert parse_error(body).code == -1021
            status, _, body = await c.signed("GET", path, {}, ts_ms=emu.now_ms() - 4000)
            assert status == 200
            # the server clock runs 10 s behind: a client on wall time is "ahead"
            emu.set_faults(clock_skew_ms=-10_000)
            _, t = await c.json("GET", "/fapi/v1/time")
            assert abs(t["serverTime"] - (time.time() * 1000 - 10_000)) < 2000
            wall_ms = time.time_ns() // 1_000_000
            status, _, body = await c.signed("GET", path, {}, ts_ms=wall_ms)
            assert parse_error(body).code == -1021

    run(main())


# ----------------------------------------------------------------------------- book
class DepthClient:
    """Binance's documented local-book algorithm (§1.4) through book_sync.BookSync."""

    def __init__(self, client: Client, ws):
        self.c, self.ws = client, ws
        self.book = DictBook()
        self.sync = BookSync(self.book)

    async def pump(self, until, timeout: float = DEADLINE_S) -> list:
        """Feeds diffs (fetching snapshots when asked) until `until(actions)`; returns them."""
        deadline = time.monotonic() + timeout
        seen: list = []
        while not until(seen):
            left = deadline - time.monotonic()
            assert left > 0, "condition not reached before the deadline"
            msg = await self.ws.receive(timeout=left)
            upd = parse_stream(msg.data)
            assert isinstance(upd, DepthUpdate)
            actions = self.sync.on_diff(upd)
            while any(isinstance(a, NeedSnapshot) for a in actions):
                seen += actions
                status, _, body = await self.c.call(
                    "GET", "/fapi/v1/depth", "symbol=ETHUSDT&limit=1000"
                )
                assert status == 200
                actions = self.sync.on_snapshot(parse_depth_snapshot(body))
            seen += actions
        return seen

    def top(self, n: int):
        return self.book.top(n)


def emulator_top(emu: Emulator, n: int):
    mkt = emu.markets[SYM]
    bids, asks = mkt.book.top(n)
    spec = mkt.spec
    return (
        [(float(spec.px(t)), float(spec.qty(q))) for t, q in bids],
        [(float(spec.px(t)), float(spec.qty(q))) for t, q in asks],
    )


async def wait_caught_up(d: DepthClient, emu: Emulator) -> None:
    """Pauses the market and pumps until the client's book is at the emulator's last u."""
    emu.faults.pause_market = True
    mkt = emu.markets[SYM]
    await d.pump(lambda _: d.sync.last_update_id == mkt.last_u)


@pytest.mark.parametrize("stream", ["@depth@0ms", "@depth@100ms"])
def test_book_sync_against_replay_matches_emulator_book(stream):
    """§1.4: buffer diffs, fetch the snapshot, sync; the synced top 20 is the venue's."""

    async def main():
        async with replay(speed=10.0) as emu, aiohttp.ClientSession() as s:
            url = emu.urls["ws_public"] + f"/stream?streams={SYM}{stream}"
            async with s.ws_connect(url) as ws:
                d = DepthClient(Client(emu, s), ws)
                await d.pump(lambda acts: sum(type(a).__name__ == "Applied" for a in acts) >= 10)
                assert d.sync.state == SYNCED
                await wait_caught_up(d, emu)
                assert d.top(20) == emulator_top(emu, 20)
                assert len(d.top(20)[0]) == 20

    run(main())


def test_gap_injection_shows_as_pu_mismatch_then_resyncs():
    """§1.4 step 5: a dropped diff, then a corrupted pu (set over HTTP), both show as gaps."""

    async def main():
        async with replay(speed=5.0) as emu, aiohttp.ClientSession() as s:
            url = emu.urls["ws_public"] + f"/ws/{SYM}@depth@0ms"
            async with s.ws_connect(url) as ws:
                d = DepthClient(Client(emu, s), ws)
                await d.pump(lambda _: d.sync.state == SYNCED)
                emu.faults.drop_depth = 1
                acts = await d.pump(lambda a: any(isinstance(x, Gap) for x in a))
                gap = next(x for x in acts if isinstance(x, Gap))
                assert gap.expected_pu != gap.got_pu
                await d.pump(lambda _: d.sync.state == SYNCED)  # resynced from a new snapshot
                async with s.post(emu.urls["control"], json={"corrupt_pu": 1}) as r:
                    assert r.status == 200 and (await r.json())["corrupt_pu"] == 1
                await d.pump(lambda a: any(isinstance(x, Gap) for x in a))
                await d.pump(lambda _: d.sync.state == SYNCED)
                await wait_caught_up(d, emu)
                assert d.top(20) == emulator_top(emu, 20)

    run(main())


def test_synthetic_diffs_chain_and_keep_fixed_decimals():
    """§1.3: U..u contiguous, pu = previous u, both sides ascending, fixed decimals."""

    async def main():
        async with synthetic(speed=5.0) as emu, aiohttp.ClientSession() as s:
            url = emu.urls["ws_public"] + f"/ws/{SYM}@depth@0ms"
            async with s.ws_connect(url) as ws:
                prev_u = None
                for _ in range(10):
                    raw = orjson.loads((await ws.receive(timeout=DEADLINE_S)).data)
                    if prev_u is not None:
                        assert raw["pu"] == prev_u and raw["U"] == prev_u + 1
                    prev_u = raw["u"]
                    for side in ("b", "a"):
                        pxs = [float(p) for p, _ in raw[side]]
                        assert pxs == sorted(pxs)
                        assert all(len(q.split(".")[1]) == 3 for _, q in raw[side])
                        assert all(len(p.split(".")[1]) == 2 for p, _ in raw[side])
                d = DepthClient(Client(emu, s), ws)
                await d.pump(lambda _: d.sync.state == SYNCED)
                await wait_caught_up(d, emu)
                assert d.top(20) == emulator_top(emu, 20)

    run(main())


def test_depth_limits():
    """§1.4: limits 5/10/20/50/100/500/1000 with their weights; anything else -4021."""

    async def main():
        async with replay(start_paused=True) as emu, aiohttp.ClientSession() as s:
            c = Client(emu, s)
            await wait_window_room(60, 5)  # the two calls' weight adds up in one minute
            status, hdrs, body = await c.call("GET", "/fapi/v1/depth", "symbol=ETHUSDT&limit=50")
            snap = parse_depth_snapshot(body)
            assert status == 200 and len(snap.bids) == 50 and len(snap.asks) == 50
            assert snap.last_update_id == emu.markets[SYM].last_u
            assert (snap.bids[:, 0] == sorted(snap.bids[:, 0], reverse=True)).all()
            used = int(hdrs["X-MBX-USED-WEIGHT-1M"])
            _, hdrs, _ = await c.call("GET", "/fapi/v1/depth", "symbol=ETHUSDT&limit=1000")
            assert int(hdrs["X-MBX-USED-WEIGHT-1M"]) == used + 20
            status, _, body = await c.call("GET", "/fapi/v1/depth", "symbol=ETHUSDT&limit=7")
            assert (status, parse_error(body).code) == (400, -4021)
            _, info = await c.json("GET", "/fapi/v1/exchangeInfo")
            filters = {f["filterType"]: f for f in info["symbols"][0]["filters"]}
            assert filters["PRICE_FILTER"]["tickSize"] == "0.01"
            assert filters["LOT_SIZE"]["stepSize"] == "0.001"
            assert filters["MIN_NOTIONAL"]["notional"] == "20"

    run(main())


# ----------------------------------------------------------------------------- trading
def test_order_filters():
    """§1.6/§1.8: tick -4014, too many decimals -1111, step -4023, min notional -4164."""

    async def main():
        async with replay(start_paused=True) as emu, aiohttp.ClientSession() as s:
            c = Client(emu, s)
            bid, _ = await c.book_top()
            cases = [
                ({"price": bid + "5"}, -1111),
                ({"qty": "0.0105"}, -1111),
                ({"qty": "0.001"}, -4164),
                ({"tif": "GTD"}, -1115),
                ({"cid": "bad id!"}, -4015),
            ]
            for kw, code in cases:
                price = kw.pop("price", ticks(bid, -10))
                status, _, body = await c.place("BUY", price, **kw)
                assert (status, parse_error(body).code) == (400, code), kw
            status, _, body = await c.signed(
                "POST",
                "/fapi/v1/order",
                {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01"},
            )
            assert parse_error(body).code == -1102

    run(main())


def test_gtx_that_would_cross_is_rejected_without_user_event():
    """§1.8: -5022, HTTP 400, order not recorded, no ORDER_TRADE_UPDATE."""

    async def main():
        async with replay(start_paused=True) as emu, aiohttp.ClientSession() as s:
            c = Client(emu, s)
            key = await c.listen_key()
            async with s.ws_connect(emu.urls["ws_private"] + f"/ws?listenKey={key}") as us:
                _, ask = await c.book_top()
                status, _, body = await c.place("BUY", ask, tif="GTX", cid="gtx-1")
                assert (status, parse_error(body).code) == (400, -5022)
                status, _, body = await c.signed(
                    "GET", "/fapi/v1/order", {"symbol": "ETHUSDT", "origClientOrderId": "gtx-1"}
                )
                assert parse_error(body).code == -2013  # not recorded
                status, _, _ = await c.place("BUY", ticks(ask, -20), tif="GTX", cid="gtx-2")
                assert status == 200
                first = await recv(us, lambda m: isinstance(m, OrderTradeUpdate))
                assert first.client_order_id == "gtx-2"  # nothing came for gtx-1

    run(main())


def test_resting_order_filled_by_replayed_trades():
    """§1.5: NEW, then TRADE_LITE + ACCOUNT_UPDATE + ORDER_TRADE_UPDATE TRADE; positionRisk."""

    async def main():
        async with replay(start_paused=True) as emu, aiohttp.ClientSession() as s:
            c = Client(emu, s)
            key = await c.listen_key()
            async with s.ws_connect(emu.urls["ws_private"] + f"/ws/{key}") as us:
                bid, _ = await c.book_top()
                status, _, body = await c.place("BUY", bid, cid="fill-1")
                assert status == 200
                new = await recv(us, otu("fill-1"))
                assert (new.exec_type, new.status) == ("NEW", "NEW")
                emu.faults.pause_market = False
                lite = await recv(us, lambda m: isinstance(m, TradeLite))
                acct = await recv(us, lambda m: isinstance(m, AccountUpdate))
                fill = await recv(us, otu("fill-1", "TRADE"))
                emu.faults.pause_market = True
                assert lite.client_order_id == "fill-1" and lite.last_fill_px == float(bid)
                assert fill.status == "FILLED" and fill.maker and fill.cum_qty == 0.01
                assert fill.last_fill_px == float(bid) and fill.commission > 0
                assert acct.reason == "ORDER" and acct.positions[0].position_amt == 0.01
                status, _, body = await c.signed("GET", "/fapi/v2/positionRisk", {"symbol": SYM})
                (pos,) = orjson.loads(body)
                assert pos["positionAmt"] == "0.010" and float(pos["entryPrice"]) == float(bid)
                status, _, body = await c.signed(
                    "GET", "/fapi/v1/order", {"symbol": "ETHUSDT", "origClientOrderId": "fill-1"}
                )
                assert orjson.loads(body)["status"] == "FILLED"

    run(main(), timeout=40)


def test_modify_emits_amendment_and_cancel_unknown_is_2011():
    """§1.6: PUT /fapi/v1/order pushes x=AMENDMENT; same values -5027; -2011 unknown."""

    async def main():
        async with replay(start_paused=True) as emu, aiohttp.ClientSession() as s:
            c = Client(emu, s)
            key = await c.listen_key()
            async with s.ws_connect(emu.urls["ws_private"] + f"/ws?listenKey={key}") as us:
                bid, _ = await c.book_top()
                await wait_window_room(10, 3)  # the place and the modify count in one 10 s
                _, _, body = await c.place("BUY", ticks(bid, -100), cid="mod-1")
                oid = parse_order_response(body).order_id
                new_px = ticks(bid, -50)
                params = {"symbol": "ETHUSDT", "orderId": oid, "side": "BUY"}
                params.update(quantity="0.020", price=new_px)
                status, hdrs, body = await c.signed("PUT", "/fapi/v1/order", params)
                assert status == 200 and hdrs["X-MBX-ORDER-COUNT-10S"] == "2"
                resp = parse_order_response(body)
                assert resp.price == float(new_px) and resp.orig_qty == 0.02
                amend = await recv(us, otu("mod-1", "AMENDMENT"))
                assert amend.status == "NEW" and amend.price == float(new_px)
                status, _, body = await c.signed("PUT", "/fapi/v1/order", params)
                assert parse_error(body).code == -5027
                gone = {"symbol": "ETHUSDT", "origClientOrderId": "nope"}
                status, _, body = await c.signed("DELETE", "/fapi/v1/order", gone)
                err = parse_error(body)
                assert (status, err.code, err.msg) == (400, -2011, "Unknown order sent.")
                status, _, body = await c.signed(
                    "DELETE", "/fapi/v1/allOpenOrders", {"symbol": "ETHUSDT"}
                )
                assert orjson.loads(body) == {
                    "code": 200,
                    "msg": "The operation of cancel all open order is done.",
                }
                done = await recv(us, otu("mod-1", "CANCELED"))
                assert done.status == "CANCELED"

    run(main())


def test_ioc_and_market_orders():
    """§1.6: a MARKET order takes and fills; an IOC that cannot fill expires (er 2)."""

    async def main():
        async with replay(start_paused=True) as emu, aiohttp.ClientSession() as s:
            c = Client(emu, s)
            key = await c.listen_key()
            async with s.ws_connect(emu.urls["ws_private"] + f"/ws?listenKey={key}") as us:
                bid, _ = await c.book_top()
                status, _, body = await c.place("BUY", ticks(bid, -5), tif="IOC", cid="ioc-1")
                assert status == 200 and parse_order_response(body).status == "NEW"  # ACK
                exp = await recv(us, otu("ioc-1", "EXPIRED"))
                assert exp.status == "EXPIRED" and exp.expiry_reason == 2
                params = {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET"}
                params.update(quantity="0.020", newClientOrderId="mkt-1", newOrderRespType="RESULT")
                status, _, body = await c.signed("POST", "/fapi/v1/order", params)
                resp = parse_order_response(body)
                assert resp.status == "FILLED" and resp.executed_qty == 0.02
                fill = await recv(us, otu("mkt-1", "TRADE"))
                assert not fill.maker and fill.last_fill_px == float(bid)

    run(main())


def test_ack_delay_and_lost_ack():
    """Faults: a delayed reply comes after the user event; a lost reply never comes, but
    the order exists."""

    async def main():
        async with replay(start_paused=True) as emu, aiohttp.ClientSession() as s:
            c = Client(emu, s)
            key = await c.listen_key()
            async with s.ws_connect(emu.urls["ws_private"] + f"/ws?listenKey={key}") as us:
                bid, _ = await c.book_top()
                emu.set_faults(ack_delay_ms=1500)
                post = asyncio.ensure_future(c.place("BUY", ticks(bid, -30), cid="slow-1"))
                await recv(us, otu("slow-1", "NEW"))
                assert not post.done()
                assert (await post)[0] == 200
                emu.set_faults(ack_delay_ms=0, lose_acks=1)
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(c.place("BUY", ticks(bid, -31), cid="lost-1"), 0.5)
                await recv(us, otu("lost-1", "NEW"))
                status, _, body = await c.signed(
                    "GET", "/fapi/v1/order", {"symbol": "ETHUSDT", "origClientOrderId": "lost-1"}
                )
                assert orjson.loads(body)["status"] == "NEW"
                emu.faults.reject_orders = [-2019]
                status, _, body = await c.place("BUY", ticks(bid, -32))
                assert (status, parse_error(body).code) == (400, -2019)

    run(main())


# ----------------------------------------------------------------------------- limits
def test_429_retry_after_then_418_ban():
    """§1.8: injected 429 (set over HTTP); the real weight limit: 429, then 418 if ignored."""

    async def main():
        async with replay(start_paused=True, weight_limit=30) as emu, aiohttp.ClientSession() as s:
            c = Client(emu, s)
            await wait_window_room(60, 5)  # the checks below add weight up for ~1.2 s
            async with s.post(emu.urls["control"], json={"http_429": 1}) as r:
                assert r.status == 200
            status, hdrs, body = await c.call("GET", "/fapi/v1/time")
            assert (status, parse_error(body).code, hdrs["Retry-After"]) == (429, -1003, "1")
            assert "X-MBX-USED-WEIGHT-1M" in hdrs
            await asyncio.sleep(1.05)  # Retry-After honoured
            status, _, _ = await c.call("GET", "/fapi/v1/time")
            assert status == 200
            status, _, _ = await c.call("GET", "/fapi/v1/depth", "symbol=ETHUSDT&limit=1000")
            assert status == 200  # weight 20 of 30, with the two /time calls: 21
            status, hdrs, body = await c.call("GET", "/fapi/v1/depth", "symbol=ETHUSDT&limit=500")
            assert (status, parse_error(body).code) == (429, -1003)
            assert 0 < int(hdrs["Retry-After"]) <= 60
            status, hdrs, body = await c.call("GET", "/fapi/v1/time")
            assert (status, parse_error(body).code) == (418, -1003)
            assert int(hdrs["Retry-After"]) > 60  # ban_s = 120

    run(main())


def test_a_request_inside_an_injected_429s_retry_after_is_banned():
    async def main():
        async with replay(start_paused=True) as emu, aiohttp.ClientSession() as s:
            c = Client(emu, s)
            emu.set_faults(http_429=1, retry_after_s=5)
            status, hdrs, _ = await c.call("GET", "/fapi/v1/time")
            assert (status, hdrs["Retry-After"]) == (429, "5")
            status, hdrs, body = await c.call("GET", "/fapi/v1/time")
            assert (status, parse_error(body).code) == (418, -1003)

    run(main())


# ----------------------------------------------------------------------------- user stream
def test_listen_key_expired_by_control_endpoint():
    """§1.5: listenKeyExpired on the live connection; PUT then gives -1125; POST a new key."""

    async def main():
        async with replay(start_paused=True) as emu, aiohttp.ClientSession() as s:
            c = Client(emu, s)
            key = await c.listen_key()
            assert await c.listen_key() == key  # POST again: the same key, extended
            status, d = await c.json("PUT", "/fapi/v1/listenKey")
            assert status == 200 and d["listenKey"] == key
            async with s.ws_connect(emu.urls["ws_private"] + f"/ws?listenKey={key}") as us:
                async with s.post(emu.urls["control"], json={"expire_listen_keys": True}) as r:
                    assert r.status == 200
                ev = await recv(us)
                assert isinstance(ev, ListenKeyExpired) and ev.listen_key == key
            status, d = await c.json("PUT", "/fapi/v1/listenKey")
            assert (status, d["code"]) == (400, -1125)
            assert await c.listen_key() != key

    run(main())


def test_listen_key_expires_after_ttl():
    """§1.5/§0.6: a key not kept alive expires; E may be sent as a string."""

    async def main():
        async with synthetic(listen_key_ttl_s=0.4) as emu, aiohttp.ClientSession() as s:
            emu.set_faults(listen_key_expired_e_str=True)
            c = Client(emu, s)
            key = await c.listen_key()
            async with s.ws_connect(emu.urls["ws_private"] + f"/stream?listenKey={key}") as us:
                msg = await us.receive(timeout=DEADLINE_S)
                raw = orjson.loads(msg.data)
                assert raw["stream"] == key and isinstance(raw["data"]["E"], str)
                assert isinstance(parse_stream(msg.data), ListenKeyExpired)

    run(main())


def test_user_stream_events_filter():
    """§1.5: `events=` keeps only the listed event types."""

    async def main():
        async with replay(start_paused=True) as emu, aiohttp.ClientSession() as s:
            c = Client(emu, s)
            key = await c.listen_key()
            url = emu.urls["ws_private"] + f"/ws?listenKey={key}&events=ACCOUNT_UPDATE"
            async with s.ws_connect(url) as us:
                bid, _ = await c.book_top()
                await c.place("BUY", ticks(bid, -40), cid="flt-1")
                params = {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}
                await c.signed("POST", "/fapi/v1/order", params)
                ev = await recv(us)
                assert isinstance(ev, AccountUpdate)  # no ORDER_TRADE_UPDATE/TRADE_LITE first

    run(main())


# ----------------------------------------------------------------------------- WS-API
def test_ws_api_place_status_cancel():
    """§1.7: signed order.place / order.status / order.cancel; envelope and rateLimits."""

    async def main():
        async with replay(start_paused=True) as emu, aiohttp.ClientSession() as s:
            c = Client(emu, s)
            bid, _ = await c.book_top()
            creds = Credentials(KEY, SECRET)
            async with s.ws_connect(emu.urls["ws_api"]) as ws:

                async def call(rid, method, params, creds=creds):
                    signed = sign_ws_params(params, creds, emu.now_ms())
                    await ws.send_str(
                        orjson.dumps({"id": rid, "method": method, "params": signed}).decode()
                    )
                    return orjson.loads((await ws.receive(timeout=DEADLINE_S)).data)

                order = {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
                order.update(price=ticks(bid, -60), quantity="0.010", newClientOrderId="wsapi-1")
                r = await call("req-1", "order.place", order)
                assert r["status"] == 200 and r["id"] == "req-1"
                placed = parse_order_response(r)
                assert placed.request_id == "req-1" and placed.status == "NEW"
                kinds = {(x["rateLimitType"], x["interval"]) for x in r["rateLimits"]}
                assert ("ORDERS", "SECOND") in kinds and ("REQUEST_WEIGHT", "MINUTE") in kinds
                r = await call(7, "order.status", {"symbol": "ETHUSDT", "orderId": placed.order_id})
                assert r["id"] == 7 and r["result"]["clientOrderId"] == "wsapi-1"
                r = await call(8, "order.cancel", {"symbol": "ETHUSDT", "orderId": placed.order_id})
                assert parse_order_response(r).status == "CANCELED"
                r = await call(9, "order.cancel", {"symbol": "ETHUSDT", "orderId": placed.order_id})
                assert (r["status"], parse_error(r).code) == (400, -2011)
                r = await call(10, "order.place", order, creds=Credentials(KEY, "wrong"))
                assert (r["status"], r["error"]["code"]) == (400, -1022)

    run(main())


def test_hedge_mode_account_position_mode_legs_and_4061():
    """[BN "Get Current Position Mode"]: GET /fapi/v1/positionSide/dual (signed, weight 30)
    tells the mode; in hedge mode positionRisk lists LONG and SHORT legs and an order
    without positionSide LONG/SHORT gets -4061 over REST and the WS-API alike, as one
    with a positionSide other than BOTH does in one-way mode."""

    async def main():
        async with replay(start_paused=True) as emu, aiohttp.ClientSession() as s:
            c = Client(emu, s)
            bid, _ = await c.book_top()

            async def mode() -> tuple[bool, int]:
                status, hdrs, body = await c.signed("GET", "/fapi/v1/positionSide/dual", {})
                assert status == 200, body
                return parse_position_mode(body), int(hdrs["X-MBX-USED-WEIGHT-1M"])

            async def sides() -> list[str]:
                _, _, body = await c.signed("GET", "/fapi/v2/positionRisk", {})
                return [p.position_side for p in parse_position_risk(body)]

            await wait_window_room(60.0, 5.0)
            hedge, w0 = await mode()
            assert hedge is False and await sides() == ["BOTH"]
            status, _, body = await c.place("BUY", ticks(bid, -50), positionSide="LONG")
            assert (status, parse_error(body).code) == (400, -4061)
            # unsigned: refused before the mode is told
            status, _, body = await c.call("GET", "/fapi/v1/positionSide/dual")
            assert status != 200 and parse_error(body).code in (-1102, -2014, -1022)

            emu.set_faults(hedge_mode=True)
            hedge, w1 = await mode()
            assert hedge is True and w1 - w0 >= 30  # its weight, 30 (plus the calls between)
            assert sorted(await sides()) == ["LONG", "SHORT"]
            for extra in ({}, {"positionSide": "BOTH"}):
                status, _, body = await c.place("BUY", ticks(bid, -50), **extra)
                assert (status, parse_error(body).code) == (400, -4061), extra
            async with s.ws_connect(emu.urls["ws_api"]) as ws:
                order = {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                         "price": ticks(bid, -50), "quantity": "0.010"}  # fmt: skip
                signed = sign_ws_params(order, Credentials(KEY, SECRET), emu.now_ms())
                await ws.send_str(orjson.dumps({"id": 1, "method": "order.place",
                                                "params": signed}).decode())  # fmt: skip
                r = orjson.loads((await ws.receive(timeout=DEADLINE_S)).data)
                assert (r["status"], parse_error(r).code) == (400, -4061)
            assert emu.account.open_ids["ethusdt"] == {}  # nothing was placed

    run(main())


# ----------------------------------------------------------------------------- market streams
def test_wrong_route_stream_gets_nothing():
    """§0.1: a /market stream on /public (and the reverse) is accepted and stays silent."""

    async def main():
        async with replay(speed=20.0) as emu, aiohttp.ClientSession() as s:
            pub, mkt = emu.urls["ws_public"], emu.urls["ws_market"]
            async with (
                s.ws_connect(f"{pub}/ws/{SYM}@trade") as wrong_trade,
                s.ws_connect(f"{mkt}/ws/{SYM}@depth@0ms") as wrong_depth,
                s.ws_connect(f"{mkt}/stream?streams={SYM}@trade/{SYM}@aggTrade") as right,
                s.ws_connect(f"{pub}/ws/{SYM}@bookTicker") as right_pub,
            ):
                seen = set()
                while seen != {f"{SYM}@trade", f"{SYM}@aggTrade"}:
                    raw = orjson.loads((await right.receive(timeout=DEADLINE_S)).data)
                    seen.add(raw["stream"])
                await recv(right_pub)
                await wrong_depth.send_str('{"method":"LIST_SUBSCRIPTIONS","id":"q1"}')
                reply = await recv(wrong_depth)
                assert isinstance(reply, CommandReply) and reply.result == [f"{SYM}@depth@0ms"]
                await assert_silent(wrong_trade, 0.3)
                await assert_silent(wrong_depth, 0.3)

    run(main())


def test_subscribe_echoes_id_and_serves_stream():
    """§1.2: SUBSCRIBE replies {"result":null,"id":<same id>}; UNSUBSCRIBE likewise."""

    async def main():
        async with replay(speed=20.0) as emu, aiohttp.ClientSession() as s:
            async with s.ws_connect(emu.urls["ws_public"] + "/ws") as ws:
                req = {"method": "SUBSCRIBE", "params": [f"{SYM}@bookTicker"], "id": "Ab3xYz"}
                await ws.send_str(json.dumps(req))
                reply = await recv(ws, lambda m: isinstance(m, CommandReply))
                assert (reply.request_id, reply.result) == ("Ab3xYz", None)
                tick = await recv(ws, lambda m: not isinstance(m, CommandReply))
                assert type(tick).__name__ == "BookTicker" and tick.symbol == SYM
                await ws.send_str(json.dumps({**req, "method": "UNSUBSCRIBE", "id": 5}))
                reply = await recv(ws, lambda m: isinstance(m, CommandReply))
                assert reply.request_id == 5

    run(main())


def test_server_pings_and_drops_a_client_that_never_pongs():
    """§1.2: server ping frames; no pong within the timeout closes the connection.

    The polite client is `websockets`, which answers pings in the background (aiohttp's
    client answers them only while the application is reading).
    """

    async def main():
        timers = Timers(ping_interval_s=0.2, pong_timeout_s=0.6)  # pongs count as frames
        async with synthetic(timers=timers) as emu, aiohttp.ClientSession() as s:
            url = emu.urls["ws_public"] + "/ws"
            async with (
                s.ws_connect(url, autoping=False) as mute,
                websockets.asyncio.client.connect(url, ping_interval=None) as polite,
            ):
                msg = await mute.receive(timeout=DEADLINE_S)
                assert msg.type == aiohttp.WSMsgType.PING
                while msg.type == aiohttp.WSMsgType.PING:
                    msg = await mute.receive(timeout=DEADLINE_S)
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                assert msg.data == 1008
                await polite.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
                reply = parse_stream(await asyncio.wait_for(polite.recv(), DEADLINE_S))
                assert isinstance(reply, CommandReply) and reply.request_id == 1

    run(main())


def test_disconnect_fault_closes_streams():
    """Faults: disconnect("public") closes public sockets and leaves the others."""

    async def main():
        async with synthetic() as emu, aiohttp.ClientSession() as s:
            async with (
                s.ws_connect(emu.urls["ws_public"] + "/ws") as pub,
                s.ws_connect(emu.urls["ws_api"]) as api,
            ):
                async with s.post(emu.urls["control"], json={"disconnect": "public"}) as r:
                    assert r.status == 200
                msg = await pub.receive(timeout=DEADLINE_S)
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                assert not api.closed
                async with s.post(emu.urls["control"], json={"no_such": 1}) as r:
                    assert r.status == 400 and "no_such" in (await r.json())["error"]

    run(main())


# ----------------------------------------------------------------------------- CLI
def test_cli_starts_and_prints_urls():
    """`python -m connector.binancefutures.emulator` prints its URLs as one JSON line."""
    cmd = [sys.executable, "-m", "connector.binancefutures.emulator", "--port", "0"]
    cmd += ["--data", "none", "--symbols", "ethusdt", "--speed", "1.0"]
    cmd += ["--api-key", "K", "--secret", "S"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = _readline(proc, timeout=20.0)
        info = json.loads(line)
        assert set(info) >= {"rest", "ws_public", "ws_market", "ws_private", "ws_api", "port"}
        assert info["rest"] == f"http://127.0.0.1:{info['port']}"

        async def probe():
            async with aiohttp.ClientSession() as s:
                async with s.get(info["rest"] + "/fapi/v1/time") as r:
                    return r.status, await r.json()

        status, body = run(probe())
        assert status == 200 and "serverTime" in body
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def _readline(proc: subprocess.Popen, timeout: float) -> bytes:
    """One stdout line of `proc`, waiting at most `timeout` seconds."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        raise AssertionError("the emulator printed nothing before the deadline")
    return proc.stdout.readline()
