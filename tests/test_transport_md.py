"""The market-data transport (connector/transport/md.py) over real sockets on
127.0.0.1: against the Binance emulator in this process (§1.2: pings, closes, silence), and against
a small picows server for what the emulator never sends (fragmented messages)."""

from __future__ import annotations

import asyncio

import pytest
from picows import WSListener, WSMsgType, ws_create_server

from connector.binancefutures.emulator import Emulator, Timers
from connector.binancefutures.protocol import BookTicker, CommandReply, parse_stream
from connector.transport.md import MdConnection

DEADLINE_S = 10.0
SYM = "ethusdt"


def run(coro, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def synthetic(**kw) -> Emulator:
    return Emulator(data=None, symbols=(SYM,), synthetic_interval_ms=5.0, **kw)


async def wait_until(cond, what: str, timeout: float = DEADLINE_S) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)
    assert cond(), what


def public_url(emu: Emulator) -> str:
    return f"{emu.urls['ws_public']}/stream?streams={SYM}@depth@0ms/{SYM}@bookTicker"


def test_messages_reach_the_callback_whole_and_stamped():
    async def main():
        got: list[tuple[bytes, int]] = []
        async with synthetic() as emu:
            conn = await MdConnection.open(public_url(emu), lambda raw, ns: got.append((raw, ns)))
            waiter = asyncio.create_task(conn.wait_closed(stale_s=30.0))
            await wait_until(lambda: len(got) >= 20, "20 messages")
            assert all(type(raw) is bytes for raw, _ in got)
            assert any(isinstance(parse_stream(raw), BookTicker) for raw, _ in got)
            stamps = [ns for _, ns in got]
            assert stamps == sorted(stamps)
            assert conn.listener.messages == len(got)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            assert conn.transport.is_disconnected

    run(main())


def test_server_pings_are_answered_with_their_payload():
    """§1.2. The emulator's WS-API counts only pongs that echo one of its ping payloads and
    drops a connection without one for pong_timeout_s; ours lives on past that."""

    async def main():
        timers = Timers(ping_interval_s=0.1, pong_timeout_s=0.4)
        async with synthetic(timers=timers) as emu:
            conn = await MdConnection.open(emu.urls["ws_api"], lambda raw, ns: None)
            waiter = asyncio.create_task(conn.wait_closed(stale_s=30.0))
            await wait_until(lambda: len(emu.ws_api_conns) == 1, "the server side")
            (server,) = emu.ws_api_conns
            # several echoed pongs, spanning more than the pong timeout
            await wait_until(lambda: server.last_pong > server.opened + 3 * 0.4, "echoed pongs")
            assert not waiter.done() and len(emu.ws_api_conns) == 1
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter

    run(main())


@pytest.mark.parametrize("abort", [False, True])
def test_venue_disconnect_ends_the_connection_with_the_reason(abort):
    async def main():
        async with synthetic() as emu:
            conn = await MdConnection.open(public_url(emu), lambda raw, ns: None)
            waiter = asyncio.create_task(conn.wait_closed(stale_s=30.0))
            await wait_until(lambda: conn.listener.messages > 0, "a first message")
            await emu.disconnect("public", abort=abort)
            reason = await asyncio.wait_for(waiter, DEADLINE_S)
            if abort:
                assert reason == "connection lost (no close frame)"
            else:
                assert reason == "closed by the venue (1001 disconnect)"
                assert conn.transport.close_handshake.sent.code == 1001  # echoed
            assert conn.transport.is_disconnected

    run(main())


def test_silent_stream_is_closed_by_the_watchdog():
    async def main():
        async with synthetic() as emu:
            conn = await MdConnection.open(public_url(emu), lambda raw, ns: None)
            await wait_until(lambda: conn.listener.messages > 0, "a first message")
            emu.faults.pause_market = True  # the socket stays open, nothing is sent
            reason = await asyncio.wait_for(conn.wait_closed(stale_s=0.3), DEADLINE_S)
            assert reason == "silent for 0.3 s"
            assert conn.transport.is_disconnected
            await wait_until(lambda: not emu.market_hub.conns, "the server side closed")

    run(main())


def test_a_failing_callback_is_raised_not_taken_for_a_disconnect():
    class Bug(Exception):
        pass

    def on_message(raw, ns):
        raise Bug("in the handler")

    async def main():
        async with synthetic() as emu:
            conn = await MdConnection.open(public_url(emu), on_message)
            with pytest.raises(Bug):
                await asyncio.wait_for(conn.wait_closed(stale_s=30.0), DEADLINE_S)
            assert conn.transport.is_disconnected

    run(main())


def test_refused_connection_raises_oserror():
    async def main():
        async with synthetic() as emu:
            url = public_url(emu)
        with pytest.raises(OSError):  # the emulator has stopped: nothing listens there
            await MdConnection.open(url, lambda raw, ns: None)

    run(main())


class _Fragmenter(WSListener):
    """Sends a subscription reply in three fragments with a ping between them (RFC 6455
    5.4: control frames may come between fragments), then a whole one."""

    def on_ws_connected(self, transport):
        transport.send(WSMsgType.TEXT, b'{"result":null,', fin=False)
        transport.send_ping(b"between")
        transport.send(WSMsgType.CONTINUATION, b'"id":', fin=False)
        transport.send(WSMsgType.CONTINUATION, b"1}", fin=True)
        transport.send(WSMsgType.TEXT, b'{"result":null,"id":2}')
        self.pongs: list[bytes] = []

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.PONG:
            self.pongs.append(frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()


def test_fragmented_messages_are_reassembled():
    async def main():
        servers: list[_Fragmenter] = []

        def factory(request):
            servers.append(_Fragmenter())
            return servers[-1]

        server = await ws_create_server(factory, "127.0.0.1", 0, use_aiofastnet=False)
        port = server.sockets[0].getsockname()[1]
        got: list[bytes] = []
        try:
            conn = await MdConnection.open(f"ws://127.0.0.1:{port}/", lambda r, ns: got.append(r))
            waiter = asyncio.create_task(conn.wait_closed(stale_s=30.0))
            await wait_until(lambda: len(got) == 2 and servers[0].pongs, "both messages")
            assert [parse_stream(r) for r in got] == [CommandReply(1, None), CommandReply(2, None)]
            assert servers[0].pongs == [b"between"]
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
        finally:
            server.close()
            await server.wait_closed()

    run(main())
