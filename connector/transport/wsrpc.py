"""Requests over one kept-open WebSocket, each matched to its response by id (a venue's
"WebSocket API" or "trade stream": Binance's ws-fapi, Bybit's /v5/trade).

The venue supplies the envelope as a `Codec`: how to write a request frame from
(id, method, params), and how to read (id, result) out of a frame, doing on the way
whatever else it takes from every frame (Binance: the `rateLimits` counts, a 429's
retryAfter). Everything else is the same on every venue:

* a request is sent once, never resent;
* the socket is not open: not sent (`RequestFailed(sent=False)`);
* the socket closes, or no response comes within `timeout_s`, after sending: the outcome
  is unknown (`RequestFailed(sent=True)`) and the caller asks the venue what happened;
* a response to no pending request (it came after its timeout) is logged and dropped;
* pings are answered by the websockets library with the same payload;
* a venue that wants a login first (Bybit's trade stream: `auth`) passes `login`: it runs
  once the socket is open, its requests answered as any other (`before_ready=True`);
  only then is the connection `ready`, and only a ready connection takes other requests
  (an order is never written on an unauthenticated socket). With no login a connection
  is ready as soon as it opens.

`connect_once(up)` serves one connection for `connector.reconnect.keep_connected`, which
reconnects it; `ERRORS` are what it raises for a connection that failed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any, Protocol

import websockets
from websockets.asyncio.client import ClientConnection, connect

from connector.errors import RequestFailed

log = logging.getLogger(__name__)

WS_OPTS = {"ping_interval": 60.0, "ping_timeout": 60.0, "max_size": 1 << 20,
           "compression": None, "open_timeout": 10.0, "close_timeout": 1.0}  # fmt: skip
ERRORS = (OSError, websockets.WebSocketException)


class Codec(Protocol):
    """A venue's request/response envelope."""

    def request(self, rid: str, method: str, params: Any) -> str | bytes:
        """The frame of one request (a str goes as a text frame, bytes as binary)."""
        ...

    def response(self, raw: str | bytes) -> tuple[str, Any] | None:
        """(the id it answers, the result the request returns), or None for a frame that
        answers no request (an event, an unreadable frame: the codec logs it). Runs on
        every frame, so it also takes what the venue reports on each (rate limits)."""
        ...


class WsRpc:
    """Id-matched requests over one WebSocket. Not thread-safe; one event loop.

    Args:
        name: the connection in messages ("WebSocket API").
        url: where to connect.
        codec: the venue's envelope.
        timeout_s: how long a response may take after the request was sent.
        ws_opts: options of `websockets.asyncio.client.connect` (default `WS_OPTS`).
    """

    def __init__(self, name: str, url: str, codec: Codec, timeout_s: float,
                 ws_opts: dict | None = None, login=None):  # fmt: skip
        self.name = name
        self.login = login  # `async () -> None`, raising to fail the connection
        self.url = url
        self.codec = codec
        self.timeout_s = timeout_s
        self.ws_opts = WS_OPTS if ws_opts is None else ws_opts
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future] = {}
        self._dropped: str | None = None  # why we dropped the current connection
        self._ready = False  # open and logged in

    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def ready(self) -> bool:
        """Open and logged in (if the venue wants a login): requests may go."""
        return self._ws is not None and self._ready

    def drop(self, why: str) -> None:
        """Aborts the current connection (e.g. a venue ping went unanswered); the reader
        ends with `dropped: why`, pending requests fail with `sent=True`."""
        ws = self._ws
        if ws is not None and self._dropped is None:
            self._dropped = why
            log.warning("%s: %s; dropping the connection", self.name, why)
            ws.transport.abort()

    async def send_frame(self, frame: str | bytes) -> bool:
        """Writes a frame that answers no request (a venue's app-level ping); False if
        the connection is not open or closed meanwhile."""
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(frame)
        except websockets.ConnectionClosed:
            return False
        return True

    async def connect_once(self, up) -> str:
        """Opens the socket, awaits `up()`, reads responses until it closes; returns why.

        Requests may be sent from when the socket is open, `up()` included (e.g. a login
        request). Requests still pending when it closes fail with `sent=True`.
        """
        self._dropped = None
        self._ready = False
        try:
            async with connect(self.url, **self.ws_opts) as ws:
                self._ws = ws
                if self.login is None:
                    self._ready = True
                    await up()
                    async for raw in ws:
                        self._on_frame(raw)
                    return "closed by the venue"
                # the login's reply must be read while it waits: a reader of its own
                reader = asyncio.ensure_future(self._read(ws))
                try:
                    await self.login()
                    self._ready = True
                    await up()
                    await reader
                finally:
                    if not reader.done():
                        reader.cancel()
                        await asyncio.wait([reader])
            return "closed by the venue"
        except websockets.ConnectionClosed:
            if self._dropped is not None:
                return f"dropped: {self._dropped}"
            raise
        finally:
            self._ws = None
            self._ready = False
            self._fail_pending()

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self._on_frame(raw)
        finally:
            self._fail_pending()  # a login waiting for its reply hears of the close

    def _fail_pending(self) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(RequestFailed(f"the {self.name} connection closed before "
                                                f"the response", sent=True))  # fmt: skip
        self._pending.clear()

    def _on_frame(self, raw: str | bytes) -> None:
        got = self.codec.response(raw)
        if got is None:
            return
        rid, result = got
        fut = self._pending.pop(str(rid), None)
        if fut is None or fut.done():
            log.warning("%s: response to no pending request: %r", self.name, raw[:200])
            return
        fut.set_result(result)

    async def request(self, method: str, params: Any, sending=None,
                      before_ready: bool = False) -> Any:  # fmt: skip
        """Sends one request once and returns its result (what `codec.response` read).

        Args:
            sending: called with no argument once the request is certain to be written
                (the socket is open, the frame is built), just before it is: e.g. to count
                it against a rate limit.
            before_ready: the login's own requests (the connection is not ready yet).

        Raises:
            RequestFailed: not connected (sent=False); the connection closed or no
                response within `timeout_s` after sending (sent=True).
        """
        ws = self._ws
        if ws is None or not (self._ready or before_ready):
            why = "not connected" if ws is None else "not logged in yet"
            raise RequestFailed(f"{method}: the {self.name} is {why}", sent=False)
        rid = str(next(self._ids))
        frame = self.codec.request(rid, method, params)
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        if sending is not None:
            sending()
        try:
            try:
                await ws.send(frame)
            except websockets.ConnectionClosed:
                # the frame may have left before the close was seen: the outcome is unknown
                raise RequestFailed(f"{method}: the {self.name} closed while sending",
                                    sent=True) from None  # fmt: skip
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation
                # that arrives as the response does
                async with asyncio.timeout(self.timeout_s):
                    return await fut
            except TimeoutError:
                # a venue that answers nothing may be behind a half-dead connection (no
                # FIN, no RST, no pong for a minute or more): drop it, so that the next
                # request goes out on a fresh one instead of into the same hole
                if self._ws is ws:
                    self.drop(f"no response to {method} within {self.timeout_s:g} s")
                raise RequestFailed(f"{method}: no response within {self.timeout_s:g} s",
                                    sent=True) from None  # fmt: skip
        finally:
            # answered, failed or cancelled: a response coming later answers nothing
            self._pending.pop(rid, None)
