"""A served WebSocket connection, venue-neutral: a send queue drained by a writer task,
server pings with a pong timeout, an incoming-frame limit, a lifetime limit, and the
half-dead `silent` state of the emulators' `silence` fault.

Timers default to Binance's values (§1.2); another venue passes its own `Timers`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timers:
    """Connection limits; defaults are Binance's (§1.2); other venues pass their own."""

    ping_interval_s: float = 180.0
    pong_timeout_s: float = 600.0
    max_lifetime_s: float = 86_400.0
    max_incoming_per_s: int = 10
    queue_size: int = 10_000


class Conn:
    """One accepted WebSocket: a send queue drained by a writer task, server pings,
    the incoming-frame limit and the lifetime limit. `run` returns when it closes."""

    def __init__(self, ws: web.WebSocketResponse, kind: str, timers: Timers, transport,
                 strict_pong: bool = False):  # fmt: skip
        self.ws = ws
        self.kind = kind
        # strict: only a pong echoing one of our ping payloads counts (Binance's WS-API)
        self.strict_pong = strict_pong
        self.timers = timers
        self.transport = transport
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(timers.queue_size)
        self.opened = time.monotonic()
        self.last_pong = self.opened
        self._pings: deque[bytes] = deque(maxlen=16)
        self._incoming: deque[float] = deque()
        self._closed = asyncio.Event()
        # half-dead (faults `silence`): nothing goes either way, nobody is told
        self.silent = False
        self._close_after: tuple[int, str] | None = None

    def send(self, text: str) -> None:
        """Queues a text frame; a full queue (slow reader) closes the connection."""
        if self._closed.is_set() or self.silent:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            log.info("%s connection: send queue full, closing", self.kind)
            self.abort()

    def send_then_close(self, text: str, code: int, reason: str) -> None:
        """Queues a last frame; the connection closes once it is sent."""
        self.send(text)
        if not self._closed.is_set() and not self.silent:
            self._close_after = (code, reason)
            try:
                self.queue.put_nowait(None)  # the writer's cue to close
            except asyncio.QueueFull:
                self.abort()

    def abort(self) -> None:
        """Drops the TCP connection without a close frame (a network failure)."""
        self._closed.set()
        if self.transport is not None:
            self.transport.abort()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self._closed.set()
        await self.ws.close(code=code, message=reason.encode())

    async def run(self, on_text) -> None:
        """Serves the connection; `on_text(conn, text)` (not async: it only queues replies)
        handles each incoming text frame."""
        async with asyncio.TaskGroup() as tg:
            writer = tg.create_task(self._writer())
            pinger = tg.create_task(self._pinger())
            try:
                async for msg in self.ws:
                    if self.silent:  # lost on the dead path: never reaches the venue
                        continue
                    if not self._count_incoming():
                        await self.close(1008, "Too many requests")
                        break
                    if msg.type == WSMsgType.TEXT:
                        on_text(self, msg.data)
                    elif msg.type == WSMsgType.PING:
                        try:
                            await self.ws.pong(msg.data)
                        except ConnectionError:  # the peer is gone
                            break
                    elif msg.type == WSMsgType.PONG:
                        if not self.strict_pong or msg.data in self._pings:
                            self.last_pong = time.monotonic()
            finally:
                self._closed.set()
                writer.cancel()  # frames still queued are lost with the connection
                pinger.cancel()

    def _count_incoming(self) -> bool:
        now = time.monotonic()
        q = self._incoming
        q.append(now)
        while q and q[0] <= now - 1.0:
            q.popleft()
        return len(q) <= self.timers.max_incoming_per_s

    async def _writer(self) -> None:
        while not self._closed.is_set():
            text = await self.queue.get()
            if text is None:  # send_then_close
                await self.close(*self._close_after)
                return
            if self.silent:
                continue
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):  # closing or gone
                self.abort()
                return

    async def _pinger(self) -> None:
        t = self.timers
        next_ping = self.opened + t.ping_interval_s
        while not self._closed.is_set():
            now = time.monotonic()
            if self.silent:  # no pings sent, no pongs seen: wait for the client to go
                self.last_pong = now
                next_ping = now + t.ping_interval_s
            if now - self.last_pong > t.pong_timeout_s:
                log.info("%s connection: no pong for %.1f s, closing", self.kind, t.pong_timeout_s)
                await self.close(1008, "Pong timeout")
                return
            if now - self.opened > t.max_lifetime_s:
                await self.close(1000, "Connection lifetime expired")
                return
            if now >= next_ping:
                payload = str(time.time_ns() // 1_000_000).encode()
                self._pings.append(payload)
                try:
                    await self.ws.ping(payload)
                except (ConnectionError, RuntimeError):
                    return
                next_ping = now + t.ping_interval_s
            wake = min(next_ping, self.last_pong + t.pong_timeout_s, self.opened + t.max_lifetime_s)
            try:
                async with asyncio.timeout(max(0.001, wake - time.monotonic())):  # not wait_for
                    await self._closed.wait()
            except TimeoutError:
                pass
