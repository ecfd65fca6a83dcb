"""The HTTP session (connector/transport/http.py) over real sockets on 127.0.0.1: a small
asyncio server that answers, refuses, stays silent or hangs up, and the three outcomes a
caller must tell apart (a response; no response, maybe sent; no response, not sent)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from connector.errors import RequestFailed
from connector.transport.http import HttpSession


def run(coro, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Server:
    """A one-behaviour HTTP server. `mode`: "answer" (HTTP 418 with a header and the
    request line echoed in the body), "silent" (reads the request, never answers),
    "hangup" (reads the request, closes the socket)."""

    def __init__(self, mode: str):
        self.mode = mode
        self.requests: list[bytes] = []  # the head and body of each request, as received
        self.got_request = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/api/"
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        for w in self.writers:  # Python 3.11's Server has no close_clients()
            w.close()
        await self.server.wait_closed()

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                self.got_request.set()
                if self.mode == "hangup":
                    writer.close()
                    return
                if self.mode == "silent":
                    await reader.read()  # until the client gives up and closes
                line = head.split(b"\r\n", 1)[0]
                writer.write(b"HTTP/1.1 418 I'm a teapot\r\nX-Used-Weight: 7\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(line), line))  # fmt: skip
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def test_any_status_is_a_response_and_the_query_goes_out_as_given():
    async def main():
        async with Server("answer") as srv, HttpSession(srv.url, timeout_s=5.0) as http:
            # a query already encoded and signed: '%2F' and the order must not change
            r = await http.request("GET", "/v1/x", "b=2&a=%2F&signature=ab%2Bcd",
                                   headers={"X-Key": "k"})  # fmt: skip
            assert r.status == 418
            assert r.headers["x-used-weight"] == "7"  # case-insensitive
            assert r.raw == b"GET /api/v1/x?b=2&a=%2F&signature=ab%2Bcd HTTP/1.1"
            assert b"\r\nX-Key: k\r\n" in srv.requests[0]
            # a body, and the kept-alive connection serves the next request
            r = await http.request("POST", "/v1/y", body=b'{"a":1}',
                                   headers={"Content-Type": "application/json"})  # fmt: skip
            assert r.raw == b"POST /api/v1/y HTTP/1.1"
            assert srv.requests[1].endswith(b'\r\n\r\n{"a":1}')

    run(main())


def test_a_refused_connection_was_not_sent():
    async def main():
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        async with HttpSession(f"http://127.0.0.1:{port}", timeout_s=5.0) as http:
            with pytest.raises(RequestFailed) as e:
                await http.request("DELETE", "/v1/order", "signature=secret")
        assert e.value.sent is False
        assert str(e.value).startswith("DELETE /v1/order: cannot connect")
        assert "secret" not in str(e.value)

    run(main())


@pytest.mark.parametrize("mode", ["silent", "hangup"])
def test_no_response_after_sending_leaves_the_outcome_unknown(mode):
    async def main():
        async with Server(mode) as srv, HttpSession(srv.url, timeout_s=0.5) as http:
            with pytest.raises(RequestFailed) as e:
                await http.request("POST", "/v1/order", "qty=1&signature=secret")
            assert srv.got_request.is_set()  # it did reach the venue
        assert e.value.sent is True
        assert "secret" not in str(e.value)
        if mode == "silent":
            assert str(e.value) == "POST /v1/order: no reply within 0.5 s"

    run(main())
