"""The Bybit client's I/O pieces in process, over real sockets on 127.0.0.1, against a
small scripted venue that checks what Bybit checks (the X-BAPI signature and the window
rule `server - recv_window <= ts < server + 1000`, auth before any trade op) and answers
in Bybit's shapes (venue_protocols.md §2.4, §2.5): the clock offset and its re-measure
after one 10002, 10006 honoured until the reset, the trade stream ready only after auth.
The emulator end-to-end tests are in test_bybit_connector.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from websockets.asyncio.server import serve

from connector.bybit.rest import BybitRest
from connector.bybit.signing import Credentials, in_window, rest_payload, verify, ws_auth_payload
from connector.bybit.trade import TradeStream
from connector.core import ConnectorCore
from connector.errors import RequestFailed
from tests.conftest import RecordingRouter, RecordingShm

CREDS = Credentials("io-key", "io-secret")
DEADLINE_S = 10.0


def run(coro, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def wait_for(cond, what: str) -> None:
    async with asyncio.timeout(DEADLINE_S):
        while not cond():
            await asyncio.sleep(0.01)
    assert cond(), what


class RestVenue:
    """/v5/market/time and /v5/order/create, with a clock `skew_ms` ahead of ours."""

    def __init__(self):
        self.skew_ms = 0
        self.limited = 0  # the next N creates get 10006
        self.codes: list[int] = []  # retCode of each create, in order
        self.reset_ms = 0

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.skew_ms

    def reply(self, code: int, result: dict, remaining: int = 9) -> web.Response:
        body = {"retCode": code, "retMsg": "OK" if code == 0 else "refused",
                "result": result, "retExtInfo": {}, "time": self.now_ms()}  # fmt: skip
        headers = {"X-Bapi-Limit": "10", "X-Bapi-Limit-Status": str(remaining),
                   "X-Bapi-Limit-Reset-Timestamp": str(self.reset_ms)}  # fmt: skip
        return web.json_response(body, headers=headers)

    async def time(self, request: web.Request) -> web.Response:
        return self.reply(0, {"timeNano": str(self.now_ms() * 1_000_000)})

    async def create(self, request: web.Request) -> web.Response:
        raw = await request.text()
        h = request.headers
        ts, recv = int(h["X-BAPI-TIMESTAMP"]), int(h["X-BAPI-RECV-WINDOW"])
        assert verify(CREDS, rest_payload(ts, h["X-BAPI-API-KEY"], recv, raw), h["X-BAPI-SIGN"])
        if not in_window(ts, recv, self.now_ms()):
            code = 10002
        elif self.limited:
            self.limited -= 1
            self.reset_ms = self.now_ms() + 300
            self.codes.append(10006)
            return self.reply(10006, {}, remaining=0)
        else:
            code = 0
        self.codes.append(code)
        link = orjson.loads(raw)["orderLinkId"]
        return self.reply(code, {"orderId": "1", "orderLinkId": link} if code == 0 else {})

    async def __aenter__(self):
        app = web.Application()
        app.router.add_get("/v5/market/time", self.time)
        app.router.add_post("/v5/order/create", self.create)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()


def test_a_clock_jump_gives_one_10002_then_the_offset_is_measured_again():
    async def main():
        async with RestVenue() as venue:
            venue.skew_ms = 30_000
            async with BybitRest(venue.url, CREDS, 5000, 5.0) as rest:
                assert abs(await rest.clock.measure() - 30_000) < 500
                body = {"category": "linear", "orderLinkId": "a"}
                r = await rest.request("POST", "/v5/order/create", body, signed=True)
                assert r.env.ok and r.env.result["orderLinkId"] == "a"
                venue.skew_ms = -20_000  # the venue's clock jumps
                r = await rest.request("POST", "/v5/order/create", body, signed=True)
                assert r.env.ret_code == 10002  # this one: refused, and the clock re-measured
                assert abs(rest.clock.offset_ms + 20_000) < 500
                r = await rest.request("POST", "/v5/order/create", body, signed=True)
                assert r.env.ok
                assert venue.codes == [0, 10002, 0]
                assert rest.clock.measured == 2

    run(main())


def test_10006_pauses_the_endpoint_until_its_reset_and_nothing_is_sent_meanwhile():
    async def main():
        async with RestVenue() as venue, BybitRest(venue.url, CREDS, 5000, 5.0) as rest:
            await rest.clock.measure()
            venue.limited = 1
            body = {"category": "linear", "orderLinkId": "b"}
            r = await rest.request("POST", "/v5/order/create", body, signed=True)
            assert r.env.ret_code == 10006
            # paused until the venue's reset (300 ms on): its time in the venue's clock, read
            # through our estimate of that clock (whole ms, a round trip's midpoint), so a few
            # ms either way; not the 1 s pause of a 10006 without a reset time
            assert 0 < rest.limits.blocked_for("/v5/order/create") <= 0.3 + 0.05
            with pytest.raises(RequestFailed) as e:
                await rest.request("POST", "/v5/order/create", body, signed=True)
            assert e.value.sent is False and "back off" in str(e.value)
            assert venue.codes == [10006]  # the second never reached the venue
            await wait_for(lambda: rest.limits.blocked_for("/v5/order/create") == 0, "reset")
            r = await rest.request("POST", "/v5/order/create", body, signed=True)
            assert r.env.ok and venue.codes == [10006, 0]

    run(main())


def test_the_trade_stream_is_ready_only_after_auth_and_orders_never_precede_it():
    seen: list[tuple[str, dict]] = []
    secret = {"ok": True}

    async def trade_venue(ws):
        authed = False
        async for raw in ws:
            m = orjson.loads(raw)
            seen.append((m["op"], m))
            if m["op"] == "auth":
                key, expires, sig = m["args"]
                authed = secret["ok"] and verify(CREDS, ws_auth_payload(expires), sig)
                code = 0 if authed else 10004
                await ws.send(orjson.dumps({"retCode": code, "retMsg": "OK" if authed else
                                            "Invalid sign", "op": "auth", "connId": "c"}))  # fmt: skip
            elif m["op"] == "ping":
                await ws.send(orjson.dumps({"retCode": 0, "retMsg": "OK", "op": "pong",
                                            "data": ["1"], "connId": "c"}))  # fmt: skip
            else:
                assert authed, "an order op on an unauthenticated socket"
                assert set(m["header"]) == {"X-BAPI-TIMESTAMP", "X-BAPI-RECV-WINDOW"}
                assert len(m["args"]) == 1
                await ws.send(orjson.dumps({
                    "reqId": m["reqId"], "retCode": 0, "retMsg": "OK", "op": m["op"],
                    "data": {"orderId": "9", "orderLinkId": m["args"][0]["orderLinkId"]},
                    "header": {"X-Bapi-Limit": "10", "X-Bapi-Limit-Status": "9",
                               "X-Bapi-Limit-Reset-Timestamp": "0", "Timenow": "0"},
                }))  # fmt: skip

    async def main():
        router = RecordingRouter()
        core = ConnectorCore(RecordingShm(), router, [])
        server = await serve(trade_venue, "127.0.0.1", 0)
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/v5/trade"
        async with BybitRest("http://127.0.0.1:9", CREDS, 5000, 1.0) as rest:
            states = []
            trade = TradeStream(url, CREDS, rest, 5000, 2.0, 0.2, core,
                                on_state=lambda: states.append(trade.ready))  # fmt: skip
            task = asyncio.create_task(trade.run())
            await wait_for(lambda: trade.ready, "the trade stream ready")
            assert seen[0][0] == "auth" and states[-1] is True
            r = await trade.request("order.create", {"category": "linear", "orderLinkId": "x"})
            assert r.env.ok and r.env.result["orderLinkId"] == "x"
            assert [op for op, _ in seen if op != "ping"] == ["auth", "order.create"]
            await wait_for(lambda: any(op == "ping" for op, _ in seen), "an app-level ping")
            # a refused auth: the socket never becomes ready, nothing else is written
            secret["ok"] = False
            n = len(seen)
            trade.rpc.drop("test")
            await wait_for(lambda: len([op for op, _ in seen[n:] if op == "auth"]) >= 2,
                           "auth retried")  # fmt: skip
            assert not trade.ready
            with pytest.raises(RequestFailed) as e:
                await trade.request("order.create", {"category": "linear", "orderLinkId": "y"})
            assert e.value.sent is False
            assert all(op in ("auth", "ping") for op, _ in seen[n:])
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        server.close()
        await server.wait_closed()

    run(main())


# ---------------------------------------------------------------------------- private stream
FIX = Path(__file__).parent / "fixtures" / "bybit"
FIX_LINK = "hlm3x9k2a-1k"  # the orderLinkId in the fixtures


def _fixture(name: str, link: str) -> dict:
    return orjson.loads((FIX / f"{name}.json").read_bytes().replace(FIX_LINK.encode(),
                                                                    link.encode()))  # fmt: skip


class AccountVenue:
    """REST order endpoints and the private stream of one account, scripted: the order
    is accepted; then it fills while the private stream loses every push and drops."""

    def __init__(self, link: str):
        self.link = link
        self.filled = False
        self.private_connections = 0
        self.drop = asyncio.Event()
        self.creates = 0

    def _ok(self, result) -> web.Response:
        return web.json_response({"retCode": 0, "retMsg": "OK", "result": result,
                                  "retExtInfo": {}, "time": time.time_ns() // 1_000_000})  # fmt: skip

    async def create(self, request):
        self.creates += 1
        return self._ok({"orderId": "1e5b6d0f-7c2b-4d1e-9a31-5f2b3c4d5e6f",
                         "orderLinkId": self.link})  # fmt: skip

    async def realtime(self, request):
        new = _fixture("private_order_new", self.link)["data"]
        return self._ok({"category": "linear", "nextPageCursor": "",
                         "list": [] if self.filled else new})  # fmt: skip

    async def history(self, request):
        filled = _fixture("private_order_filled", self.link)["data"]
        return self._ok({"category": "linear", "nextPageCursor": "",
                         "list": filled if self.filled else []})  # fmt: skip

    async def executions(self, request):
        assert request.query["orderLinkId"] == self.link
        execs = _fixture("private_execution", self.link)["data"] if self.filled else []
        return self._ok({"category": "linear", "nextPageCursor": "", "list": execs})

    async def positions(self, request):
        return self._ok(_fixture("rest_position_list", self.link)["result"])

    async def private(self, ws):
        self.private_connections += 1
        first = self.private_connections == 1
        async for raw in ws:
            m = orjson.loads(raw)
            if m["op"] in ("auth", "subscribe"):
                await ws.send(orjson.dumps({"success": True, "ret_msg": "", "op": m["op"],
                                            "conn_id": "p"}))  # fmt: skip
                if m["op"] == "subscribe" and first:
                    await self.drop.wait()  # the fill's pushes are lost, then the drop
                    self.filled = True
                    await ws.close()
                    return
                if m["op"] == "subscribe":  # the lost pushes come again, late: duplicates
                    await ws.send(orjson.dumps(_fixture("private_execution", self.link)))
                    await ws.send(orjson.dumps(_fixture("private_order_filled", self.link)))

    async def __aenter__(self):
        app = web.Application()
        app.router.add_post("/v5/order/create", self.create)
        app.router.add_get("/v5/order/realtime", self.realtime)
        app.router.add_get("/v5/order/history", self.history)
        app.router.add_get("/v5/execution/list", self.executions)
        app.router.add_get("/v5/position/list", self.positions)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.rest_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        self.ws = await serve(self.private, "127.0.0.1", 0)
        self.private_url = f"ws://127.0.0.1:{self.ws.sockets[0].getsockname()[1]}/v5/private"
        return self

    async def __aexit__(self, *exc):
        self.ws.close()
        await self.ws.wait_closed()
        await self.runner.cleanup()


def test_fills_lost_with_the_private_stream_are_recovered_once_on_reconnect():
    from connector.book import RecordingBook
    from connector.bybit.orders import BybitOrders
    from connector.bybit.private import PrivateStream
    from connector.config import InstrumentConfig
    from connector.venue import NewOrder
    from hftlive.constants import BUY, FILLED, GTC, LIMIT, NEW

    async def main():
        router = RecordingRouter()
        core = ConnectorCore(RecordingShm(), router, [])
        reports = []
        core.report = lambda *r: reports.extend(r)
        inst = RecordingBook(0, InstrumentConfig("BTCUSDT", 0.1, 0.001))
        async with BybitRest("http://127.0.0.1:9", CREDS, 5000, 2.0) as rest0:
            orders0 = BybitOrders("hl", 0, [inst], core, rest0)
            link = orders0.client_id(7)
        async with AccountVenue(link) as venue, BybitRest(venue.rest_url, CREDS, 5000,
                                                             2.0) as rest:  # fmt: skip
            orders = BybitOrders("hl", 0, [inst], core, rest)
            private = PrivateStream(venue.private_url, CREDS, rest, 5.0, 2.0, core, orders,
                                    lambda: None)  # fmt: skip
            seen = []  # the executions the stream delivered (an observer, not a stand-in)
            on_execution = orders.on_execution
            orders.on_execution = lambda e: (seen.append(e), on_execution(e))
            async with asyncio.TaskGroup() as tg:
                orders.entry.tg = tg
                task = tg.create_task(private.run())
                await wait_for(lambda: orders.private_ready, "the private stream reconciled")
                orders.entry.submit(NewOrder(7, 0, BUY, 600000, 0.01, GTC, LIMIT))
                await wait_for(lambda: any(r.status == NEW for r in reports), "the ack")
                venue.drop.set()  # it fills, the pushes are lost, the stream drops
                await wait_for(lambda: any(r.status == FILLED for r in reports), "the fill")
                await wait_for(lambda: venue.private_connections == 2 and orders.private_ready,
                               "reconnected")  # fmt: skip
                await wait_for(lambda: len(seen) == 2, "the duplicated pushes read")
                task.cancel()  # the stream ends; the TaskGroup with it
        fills = [r for r in reports if r.exec_qty > 0]
        assert [r.exec_qty for r in fills] == [0.004, 0.006]  # recovered once, in order
        assert venue.creates == 1
        assert orders.positions[0] == pytest.approx(0.004)  # /v5/position/list at reconcile

    run(main())


# ---------------------------------------------------------------------------- the process
SMOKE_CONFIG = """
[[instruments]]
symbol = "BTCUSDT"

[connector]
snapshot_interval_ms = 50

[risk]
max_orders_per_second = 1000

[bybit]
rest_url = "{rest}"
ws_public_url = "{ws_public}"
ws_private_url = "{ws_private}"
ws_trade_url = "{ws_trade}"
api_key_env = "BYM_API_KEY"
secret_env = "BYM_SECRET"
order_entry = "{order_entry}"
client_order_prefix = "m"
ping_interval_s = 2.0
"""


@pytest.mark.parametrize("order_entry", ["ws", "rest"])
def test_the_connector_process_syncs_the_book_and_runs_an_order_life(tmp_path, order_entry):
    """The real `python -m connector --connector bybit` against the scripted loopback venue
    (tests/bybit_minivenue.py), a real LiveBot: prepare, the signed key check, the three
    WebSockets, then submit / modify / cancel and a crossing PostOnly."""
    import os
    import subprocess
    import sys
    import urllib.request

    from connector import codes
    from hftlive import CANCELED, EXPIRED, GTX, LIMIT, NEW, Instrument, LiveBot
    from hftlive.constants import REJECT_POST_ONLY
    from tests.conftest import ROOT, book_synced, stop_process, wait_bot, wait_session

    key, secret = "mini-key", "mini-secret-not-logged"
    mini = subprocess.Popen([sys.executable, "-m", "tests.bybit_minivenue", key, secret],
                            cwd=ROOT, stdout=subprocess.PIPE)  # fmt: skip

    def venue_state() -> dict:
        with urllib.request.urlopen(urls["rest"] + "/_mini/state", timeout=5) as r:
            return orjson.loads(r.read())

    try:
        urls = orjson.loads(mini.stdout.readline())
        name = f"bym{os.getpid()}{order_entry}"
        cfg = tmp_path / "c.toml"
        cfg.write_text(SMOKE_CONFIG.format(**urls, order_entry=order_entry))
        log = tmp_path / "c.log"
        with open(log, "ab") as logf:
            proc = subprocess.Popen(
                [sys.executable, "-m", "connector", "--name", name, "--connector", "bybit",
                 "--config", str(cfg), "--log-level", "INFO"], cwd=ROOT, stdout=logf,
                stderr=subprocess.STDOUT, env={**os.environ, "BYM_API_KEY": key,
                                                "BYM_SECRET": secret},
            )  # fmt: skip
            errors: list = []
            hbt = None
            try:
                hbt = (LiveBot.builder().register(Instrument(name, "BTCUSDT", 0.1, 0.001))
                       .connect_timeout(60.0).error_handler(errors.append).build())  # fmt: skip
                wait_bot(hbt, lambda: book_synced(hbt), 20, "a synced book")
                d = hbt.depth(0)
                assert (d.best_bid_tick, d.best_ask_tick) == (600000, 600001)
                assert d.bid_qty_at_tick(round(59999.0 / 0.1)) == pytest.approx(0.6)
                wait_session(hbt, name, 20)
                assert hbt.submit_buy_order(0, 1, 59990.0, 0.002, GTX, LIMIT, True) == 0
                o = hbt.orders(0).get(1)
                assert (o.status, o.price_tick) == (NEW, 599900)
                [(link, venue_order)] = venue_state()["orders"].items()
                assert link.startswith("m") and venue_order["timeInForce"] == "PostOnly"
                assert hbt.modify(0, 1, 59980.0, 0.003, True) == 0
                o = hbt.orders(0).get(1)
                assert (o.status, o.price_tick, o.qty) == (NEW, 599800, 0.003)
                venue_order = venue_state()["orders"][link]
                assert venue_order["price"] == "59980.0" and venue_order["qty"] == "0.003"
                assert hbt.cancel(0, 1, True) == 0
                assert hbt.orders(0).get(1).status == CANCELED
                assert hbt.submit_buy_order(0, 2, 60000.2, 0.002, GTX, LIMIT, True) == 0
                assert hbt.orders(0).get(2).status == EXPIRED
                wait_bot(hbt, lambda: any(e.order_id == 2 for e in errors), 5, "its error")
                e = next(e for e in errors if e.order_id == 2)
                assert (e.code, e.reason) == (codes.POST_ONLY_CROSSED, REJECT_POST_ONLY)
                sent = venue_state()["requests"]
                if order_entry == "ws":
                    assert sent["order.create"] == 2 and sent["order.amend"] == 1
                    assert sent["order.cancel"] == 1
                else:
                    assert sent["POST /v5/order/create"] == 2
                    assert sent["POST /v5/order/amend"] == sent["POST /v5/order/cancel"] == 1
            finally:
                if hbt is not None:
                    hbt.close()
                rc = stop_process(proc, timeout=15)
        text = log.read_text()
        assert rc == 0, text
        assert secret not in text
    finally:
        stop_process(mini, timeout=10)


def test_a_refused_key_is_a_clear_config_error_and_the_secret_file_must_be_0600(tmp_path):
    import os
    import subprocess
    import sys

    from hftlive import Instrument, LiveBot
    from tests.conftest import ROOT, stop_process, wait_session

    key, secret = "mini-key", "mini-secret-not-logged"
    mini = subprocess.Popen([sys.executable, "-m", "tests.bybit_minivenue", key, secret],
                            cwd=ROOT, stdout=subprocess.PIPE)  # fmt: skip

    def start(name: str, secret_line: str, env_key: str) -> tuple[subprocess.Popen, Path]:
        cfg = tmp_path / f"{name}.toml"
        text = SMOKE_CONFIG.format(**urls, order_entry="ws")
        cfg.write_text(text.replace('secret_env = "BYM_SECRET"', secret_line))
        log = tmp_path / f"{name}.log"
        with open(log, "ab") as logf:
            p = subprocess.Popen(
                [sys.executable, "-m", "connector", "--name", name, "--connector", "bybit",
                 "--config", str(cfg)], cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT,
                env={**os.environ, "BYM_API_KEY": env_key, "BYM_SECRET": secret},
            )  # fmt: skip
        return p, log

    try:
        urls = orjson.loads(mini.stdout.readline())
        base = f"bym{os.getpid()}k"
        # a key the venue refuses: the connector exits with the venue's code, the variable
        # and the config file named
        p, log = start(base + "0", 'secret_env = "BYM_SECRET"', "wrong-key")
        assert p.wait(30) != 0
        text = log.read_text()
        assert "refused our API key: 10003" in text and "$BYM_API_KEY" in text
        assert str(tmp_path / f"{base}0.toml") in text and secret not in text
        # a secret file others can read is refused before anything is sent
        f = tmp_path / "bybit.secret"
        f.write_text(secret + "\n")
        f.chmod(0o644)
        p, log = start(base + "1", f'secret_file = "{f}"', key)
        assert p.wait(30) != 0
        assert "readable by others" in log.read_text() and "chmod 600" in log.read_text()
        # 0600: the session comes up
        f.chmod(0o600)
        p, log = start(base + "2", f'secret_file = "{f}"', key)
        hbt = None
        try:
            hbt = (LiveBot.builder().register(Instrument(base + "2", "BTCUSDT", 0.1, 0.001))
                   .connect_timeout(60.0).build())  # fmt: skip
            wait_session(hbt, base + "2", 20)
        finally:
            if hbt is not None:
                hbt.close()
            assert stop_process(p, timeout=15) == 0, log.read_text()
        assert secret not in log.read_text()
    finally:
        stop_process(mini, timeout=10)
