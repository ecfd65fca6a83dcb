"""What every loopback emulator's server does alike: one aiohttp app on one port, a
TaskGroup spanning start() .. stop() that owns the background tasks (so `async with
Emulator()` sees a task's failure), and the venue clock with the injected skew.

A venue's emulator subclasses `EmulatorServer`, builds its markets in `start()` and then
awaits `serve()`; it says which connections are open (`connections`), which routes it
serves (`_routes`) and which tasks run beside them (`_background`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine

from aiohttp import web

log = logging.getLogger(__name__)


class EmulatorServer:
    """The lifecycle. Subclasses set `faults` (with `clock_skew_ms`) and `NAME`."""

    NAME = "emulator"

    def __init__(self):
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task] = []
        self._stopping = asyncio.Event()

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, et, e, tb) -> bool | None:
        return await self.stop(et, e, tb)

    async def start(self) -> None:
        await self.serve()

    def _routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def _background(self) -> list[Coroutine]:
        """The tasks that run from start to stop (the market, housekeeping)."""
        return []

    def connections(self) -> list:
        """Every open connection (each with `abort()`)."""
        return []

    @property
    def urls(self) -> dict[str, str]:
        raise NotImplementedError

    async def serve(self) -> None:
        """Binds the port (`cfg.host`, `cfg.port`; 0 = ephemeral) and starts the tasks."""
        app = web.Application()
        self._routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.host, self.cfg.port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            raise
        self.port = site._server.sockets[0].getsockname()[1]
        # The TaskGroup spans start() .. stop(), entered by hand so that `async with
        # Emulator()` owns every background task and a failure propagates.
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        for coro in self._background():
            self._tasks.append(self._tg.create_task(coro))
        log.info("%s listening on %s", self.NAME, self.urls["rest"])

    async def stop(self, et=None, e=None, tb=None) -> bool | None:
        """Closes every connection and stops; re-raises a background task's failure."""
        self._stopping.set()
        for t in self._tasks:
            t.cancel()
        for c in self.connections():
            c.abort()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._tg is not None:
            tg, self._tg = self._tg, None
            if et is not None and not issubclass(et, asyncio.CancelledError):
                await tg.__aexit__(None, None, None)  # the body's own error propagates as is
                return None
            return await tg.__aexit__(et, e, tb)  # a task's failure cancelled the body
        return None

    async def wait_stopping(self) -> None:
        await self._stopping.wait()

    def now_ms(self) -> int:
        """The venue clock: wall time plus the injected skew."""
        return time.time_ns() // 1_000_000 + self.faults.clock_skew_ms
