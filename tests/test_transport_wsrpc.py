"""The id-matched WebSocket request/response client (connector/transport/wsrpc.py) over real
sockets on 127.0.0.1, against a small websockets server scripted per test, with a plain
JSON envelope as the venue's codec. The send-once rules: not connected -> not sent; closed
or silent after sending -> outcome unknown; a late response is dropped."""

from __future__ import annotations

import asyncio
import itertools
import logging

import orjson
import pytest
from websockets.asyncio.server import serve

from connector.core import ConnectorCore
from connector.errors import RequestFailed
from connector.reconnect import keep_connected
from connector.transport.wsrpc import ERRORS, WsRpc
from hftlive.constants import CONNECTION_RESTORED, ERR_CONNECTION
from tests.conftest import RecordingRouter, RecordingShm

DEADLINE_S = 10.0


def run(coro, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class JsonCodec:
    """{"id", "method", "params"} out; {"id", "result"} in; anything else is an event."""

    def __init__(self):
        self.events: list[dict] = []

    def request(self, rid, method, params):
        return orjson.dumps({"id": rid, "method": method, "params": params}).decode()

    def response(self, raw):
        m = orjson.loads(raw)
        if "id" not in m:
            self.events.append(m)
            return None
        return m["id"], m["result"]


class Venue:
    """A websockets server; `handler(ws)` serves each connection (the test's script)."""

    def __init__(self, handler):
        self.handler = handler
        self.connections = 0

    async def _serve(self, ws):
        self.connections += 1
        await self.handler(ws)

    async def __aenter__(self):
        self.server = await serve(self._serve, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()


async def wait_until(cond, what: str, timeout: float = DEADLINE_S) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)
    assert cond(), what


async def open_rpc(rpc: WsRpc) -> asyncio.Task:
    """Runs rpc.connect_once in a task; returns once it called up()."""
    opened = asyncio.Event()

    async def up():
        opened.set()

    task = asyncio.create_task(rpc.connect_once(up))
    await asyncio.wait_for(opened.wait(), DEADLINE_S)
    assert rpc.connected
    return task


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_responses_are_matched_by_id_whatever_their_order():
    async def answer_in_reverse(ws):
        a = orjson.loads(await ws.recv())
        b = orjson.loads(await ws.recv())
        await ws.send(orjson.dumps({"event": "tick"}).decode())  # answers nothing
        for m in (b, a):
            await ws.send(orjson.dumps({"id": m["id"], "result": [m["method"], m["params"]]}))
        await ws.wait_closed()

    async def main():
        codec = JsonCodec()
        counted: list[str] = []
        async with Venue(answer_in_reverse) as venue:
            rpc = WsRpc("test API", venue.url, codec, timeout_s=5.0)
            task = await open_rpc(rpc)
            got = await asyncio.gather(
                rpc.request("order.place", {"q": 1}, sending=lambda: counted.append("a")),
                rpc.request("order.cancel", {"q": 2}, sending=lambda: counted.append("b")),
            )
            assert got == [["order.place", {"q": 1}], ["order.cancel", {"q": 2}]]
            assert counted == ["a", "b"]
            assert codec.events == [{"event": "tick"}]
            await stop(task)
        assert not rpc.connected

    run(main())


def test_not_connected_is_not_sent():
    async def main():
        counted = []
        rpc = WsRpc("test API", "ws://127.0.0.1:9/", JsonCodec(), timeout_s=5.0)
        with pytest.raises(RequestFailed) as e:
            await rpc.request("order.place", {}, sending=lambda: counted.append(1))
        assert e.value.sent is False
        assert str(e.value) == "order.place: the test API is not connected"
        assert counted == []

    run(main())


def test_a_close_after_sending_leaves_the_outcome_unknown():
    async def read_one_then_close(ws):
        await ws.recv()
        await ws.close(1001, "going away")

    async def main():
        async with Venue(read_one_then_close) as venue:
            rpc = WsRpc("test API", venue.url, JsonCodec(), timeout_s=DEADLINE_S)
            task = await open_rpc(rpc)
            with pytest.raises(RequestFailed) as e:
                await rpc.request("order.place", {})
            assert e.value.sent is True
            assert "closed before the response" in str(e.value)
            assert await asyncio.wait_for(task, DEADLINE_S) == "closed by the venue"
            assert not rpc.connected
            with pytest.raises(RequestFailed) as e:
                await rpc.request("order.place", {})
            assert e.value.sent is False

    run(main())


def test_no_response_in_time_leaves_the_outcome_unknown_and_drops_the_connection(caplog):
    """A venue that answers nothing may sit behind a half-dead connection: the request's
    outcome is unknown (sent=True), and the connection is dropped at once so the next
    request goes out on a fresh one (the reconnect rule opens it)."""

    async def never_answer(ws):
        await ws.recv()
        await ws.wait_closed()

    async def answer(ws):
        m = orjson.loads(await ws.recv())
        await ws.send(orjson.dumps({"id": m["id"], "result": "prompt"}).decode())
        await ws.wait_closed()

    async def main():
        async with Venue(never_answer) as venue:
            rpc = WsRpc("test API", venue.url, JsonCodec(), timeout_s=0.3)
            task = await open_rpc(rpc)
            with pytest.raises(RequestFailed) as e:
                await rpc.request("order.place", {})
            assert e.value.sent is True
            assert str(e.value) == "order.place: no response within 0.3 s"
            why = await asyncio.wait_for(task, DEADLINE_S)
            assert why == "dropped: no response to order.place within 0.3 s"
            assert not rpc.connected and "dropping the connection" in caplog.text
        async with Venue(answer) as venue:
            rpc.url, rpc.timeout_s = venue.url, DEADLINE_S
            task = await open_rpc(rpc)  # what keep_connected does next
            assert await rpc.request("order.place", {}) == "prompt"
            await stop(task)

    with caplog.at_level(logging.WARNING, logger="connector.transport.wsrpc"):
        run(main())


def test_a_cancelled_request_is_forgotten_and_its_response_dropped(caplog):
    answer = asyncio.Event()
    received = asyncio.Event()

    async def answer_when_told(ws):
        m = orjson.loads(await ws.recv())
        received.set()
        await answer.wait()
        await ws.send(orjson.dumps({"id": m["id"], "result": "unwanted"}).decode())
        await ws.wait_closed()

    async def main():
        async with Venue(answer_when_told) as venue:
            rpc = WsRpc("test API", venue.url, JsonCodec(), timeout_s=DEADLINE_S)
            task = await open_rpc(rpc)
            req = asyncio.create_task(rpc.request("order.place", {}))
            await asyncio.wait_for(received.wait(), DEADLINE_S)  # the request went out
            req.cancel()
            with pytest.raises(asyncio.CancelledError):
                await req
            answer.set()
            await wait_until(lambda: "response to no pending request" in caplog.text,
                             "the response dropped")  # fmt: skip
            await stop(task)

    with caplog.at_level(logging.WARNING, logger="connector.transport.wsrpc"):
        run(main())


def test_kept_connected_it_comes_back_after_a_drop_and_serves_again():
    """The rule and the transport together: the venue drops the first connection, the
    client reconnects, bots hear of the loss and of the restore once, requests flow."""

    seen = itertools.count(1)

    async def drop_first_then_echo(ws):
        if next(seen) == 1:
            await ws.close(1011, "bye")
            return
        async for raw in ws:
            m = orjson.loads(raw)
            await ws.send(orjson.dumps({"id": m["id"], "result": m["params"]}).decode())

    async def main():
        router = RecordingRouter()
        core = ConnectorCore(RecordingShm(), router, [])
        async with Venue(drop_first_then_echo) as venue:
            rpc = WsRpc("test API", venue.url, JsonCodec(), timeout_s=DEADLINE_S)
            keeper = asyncio.create_task(
                keep_connected(
                    "test API",
                    rpc.connect_once,
                    core,
                    errors=ERRORS,
                    delays=lambda: itertools.repeat(0.01),
                )
            )
            await wait_until(lambda: venue.connections == 2 and rpc.connected, "a reconnect")
            assert await rpc.request("echo", {"x": 1}) == {"x": 1}
            await stop(keeper)
        assert [(k, c) for k, c, _ in router.told] == [
            (ERR_CONNECTION, 0),
            (ERR_CONNECTION, CONNECTION_RESTORED),
        ]
        assert router.told[0][2].startswith("test API lost: ")

    run(main())


def test_with_a_login_nothing_else_goes_until_it_succeeds_and_a_failed_login_fails_the_connection():
    seen: list[str] = []
    release = asyncio.Event()

    async def venue_script(ws):
        async for raw in ws:
            m = orjson.loads(raw)
            seen.append(m["method"])
            if m["method"] == "login":
                await release.wait()  # the login's reply is held: the socket is open meanwhile
                ok = m["params"]["key"] == "good"
                await ws.send(orjson.dumps({"id": m["id"], "result": ok}))
            else:
                await ws.send(orjson.dumps({"id": m["id"], "result": "done"}))

    async def main():
        async with Venue(venue_script) as venue:
            key = {"key": "good"}
            rpc = None

            async def login():
                if not await rpc.request("login", dict(key), before_ready=True):
                    raise RequestFailed("login refused", sent=False)

            rpc = WsRpc("test API", venue.url, JsonCodec(), timeout_s=5.0, login=login)
            opened = asyncio.Event()

            async def up():
                opened.set()

            task = asyncio.create_task(rpc.connect_once(up))
            await wait_until(lambda: seen == ["login"], "the login sent")
            assert rpc.connected and not rpc.ready
            with pytest.raises(RequestFailed) as e:
                await rpc.request("order.place", {})
            assert e.value.sent is False and "not logged in" in str(e.value)
            release.set()
            await asyncio.wait_for(opened.wait(), DEADLINE_S)
            assert rpc.ready
            assert await rpc.request("order.place", {}) == "done"
            assert seen == ["login", "order.place"]  # the refused one never left
            await stop(task)
            assert not rpc.ready

            key["key"] = "bad"
            with pytest.raises(RequestFailed, match="login refused"):
                await asyncio.wait_for(rpc.connect_once(up), DEADLINE_S)
            assert not rpc.connected

    run(main())
