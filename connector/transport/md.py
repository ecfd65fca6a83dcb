"""Market-data WebSocket transport: one picows connection, every message handed to a
callback from inside the socket's read, plus the stale-stream watchdog.

Why picows and not `websockets` (which the user stream and the WS-API keep: low volume):
receiving the bf_ingest blast and doing nothing else, the `websockets` client reads ~185k
msgs/s (5-6 us a frame: an asyncio future and a queue hop per frame); picows parses frames
in Cython inside `data_received` and calls `MdListener.on_ws_frame` synchronously, ~1M
msgs/s on the same box (bench/bf_ingest.py prints both rows).

Connection rules kept (the RFC's, and Binance's: venue_protocols.md §1.2):

* server pings are answered with a pong echoing the payload (picows' auto-pong, in C);
  other control frames count against the venue's 10 frames/s limit, so we send none
  except one keepalive ping after `KEEPALIVE_S` without any incoming data;
* a close frame from the venue is answered with the same code and the connection ends;
* fragmented messages are reassembled (Binance sends whole frames, the protocol allows it).

A venue that wants more (a subscription sent after the upgrade, an application-level ping)
writes it with `MdConnection.send_text`; nothing here reads a venue's messages.

The watchdog: the listener counts data messages (an integer increment; re-arming an
`asyncio.timeout` per frame cost ~3.7 us), and `MdConnection.wait_closed` looks at the
count `WATCHDOG_TICKS` times per stale period. A stream with no message for `stale_s`
(detected within [stale_s, stale_s * (1 + 1/WATCHDOG_TICKS)]) is closed and reported.

Errors: `open` raises OSError, TimeoutError or `picows.WSError` (handshake refused, ...);
`wait_closed` returns why the connection ended, raises `picows.WSError` for a protocol
violation, and re-raises whatever the message callback raised (a bug is not a disconnect).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from picows import WSCloseCode, WSError, WSListener, WSMsgType, WSProtocolError, ws_connect

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 10.0  # TCP + TLS + upgrade
CLOSE_TIMEOUT_S = 1.0  # our close frame to the venue's, when we end a connection
KEEPALIVE_S = 60.0  # ping after this long without incoming data; drop if no pong as long
MAX_FRAME = 1 << 28  # no practical limit (websockets ran with max_size=None)
WATCHDOG_TICKS = 4
WATCHDOG_MAX_PERIOD_S = 1.0

# what `open` and `wait_closed` raise for a connection that failed (not for a bug)
ERRORS = (OSError, TimeoutError, WSError)

_TEXT, _BINARY, _CONT, _CLOSE = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION, WSMsgType.CLOSE  # fmt: skip


class MdListener(WSListener):
    """picows callbacks of one market connection: messages to `on_message(raw, local_ns)`.

    `messages` counts delivered messages (the watchdog reads it); `closed_by_venue` holds
    (code, reason) of the venue's close frame, if one came.
    """

    def __init__(self, on_message: Callable[[bytes, int], None]):
        self.on_message = on_message
        self.messages = 0
        self.closed_by_venue: tuple[int, str] | None = None
        self._parts: list[bytes] | None = None  # a fragmented message being reassembled

    def on_ws_frame(self, transport, frame) -> None:
        t = frame.msg_type
        if (t is _TEXT or t is _BINARY) and self._parts is None:
            if frame.fin:
                self.messages += 1
                self.on_message(frame.get_payload_as_bytes(), time.time_ns())
            else:
                self._parts = [frame.get_payload_as_bytes()]
        elif t is _CONT and self._parts is not None:
            self._parts.append(frame.get_payload_as_bytes())
            if frame.fin:
                raw = b"".join(self._parts)
                self._parts = None
                self.messages += 1
                self.on_message(raw, time.time_ns())
        elif t is _CLOSE:
            code = frame.get_close_code()
            self.closed_by_venue = (int(getattr(code, "value", code)), frame.get_close_reason())
            if not transport.is_close_frame_sent:  # else this answers ours
                transport.send_close(code)  # RFC 6455 5.5.1: echo the code, then close
            transport.disconnect()
        elif t is not WSMsgType.PONG:  # picows answers pings itself
            # a data frame inside a fragmented message, or a stray continuation
            raise WSProtocolError(WSCloseCode.PROTOCOL_ERROR, f"unexpected {t.name} frame")


class MdConnection:
    """An open market-data connection; `open()` it, then `wait_closed()`."""

    def __init__(self, transport, listener: MdListener):
        self.transport = transport
        self.listener = listener

    @classmethod
    async def open(cls, url: str, on_message: Callable[[bytes, int], None]) -> MdConnection:
        """Connects (TLS for wss://, the system's trust store) and completes the upgrade."""
        async with asyncio.timeout(OPEN_TIMEOUT_S):
            transport, listener = await ws_connect(
                lambda: MdListener(on_message),
                url,
                websocket_handshake_timeout=OPEN_TIMEOUT_S,
                logger_name=f"{__name__}.picows",
                enable_auto_ping=True,
                auto_ping_idle_timeout=KEEPALIVE_S,
                auto_ping_reply_timeout=KEEPALIVE_S,
                enable_auto_pong=True,
                max_frame_size=MAX_FRAME,
                max_redirects=0,
            )
        return cls(transport, listener)

    def send_text(self, data: bytes) -> None:
        """Writes one text message (a subscription, an application-level ping); a
        connection already closing drops it (its loss is reported by `wait_closed`)."""
        if not self.transport.is_close_frame_sent:
            self.transport.send(WSMsgType.TEXT, data)

    async def wait_closed(self, stale_s: float) -> str:
        """Serves the connection until it ends; returns why. Always leaves it closed."""
        transport, listener = self.transport, self.listener
        period = min(stale_s / WATCHDOG_TICKS, WATCHDOG_MAX_PERIOD_S)
        loop = asyncio.get_running_loop()
        done = asyncio.ensure_future(transport.wait_disconnected())
        try:
            seen, quiet_since = listener.messages, loop.time()
            while True:
                finished, _ = await asyncio.wait((done,), timeout=period)
                if finished:
                    done.result()  # a local failure (protocol error, callback bug) raises
                    return self._reason()
                now = loop.time()
                if listener.messages != seen:
                    seen, quiet_since = listener.messages, now
                elif now - quiet_since >= stale_s:
                    transport.send_close(WSCloseCode.GOING_AWAY)
                    return f"silent for {stale_s:g} s"
        finally:
            if not done.done():
                if not transport.is_close_frame_sent:
                    transport.send_close(WSCloseCode.OK)
                # let the venue answer our close frame, briefly; then drop the socket
                await asyncio.wait((done,), timeout=CLOSE_TIMEOUT_S)
                transport.disconnect(graceful=False)
                await asyncio.wait((done,), timeout=CLOSE_TIMEOUT_S)
            if not done.done():
                done.cancel()
            elif not done.cancelled():
                done.exception()  # retrieved: reported above or superseded by the reason

    def _reason(self) -> str:
        c = self.listener.closed_by_venue
        if c is None:
            return "connection lost (no close frame)"
        code, text = c
        return f"closed by the venue ({code} {text})" if text else f"closed by the venue ({code})"


__all__ = ["ERRORS", "MdConnection", "MdListener", "WSError"]
