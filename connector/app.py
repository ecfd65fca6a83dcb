"""The connector process: shared memory + router + one venue, on one asyncio loop."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

import numpy as np

from connector import registry
from connector.book import RecordingBook
from connector.config import Config
from connector.core import ConnectorCore
from connector.router import Router
from connector.shmserver import ShmServer
from hftlive.layout import CONN_STOPPING, event_dtype

log = logging.getLogger(__name__)

HOUSEKEEP_S = 0.002
SLOTS_EVERY_S = 0.02
HEARTBEAT_EVERY_S = 0.1
FORGET_EVERY_S = 5.0
ALERTS_EVERY_S = 0.5
SHUTDOWN_GRACE_S = 0.3
SETTLE_POLL_S = 0.01


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

class Connector:
    def __init__(self, name: str, venue: str, cfg: Config):
        self.name = name
        self.venue_name = venue
        self.cfg = cfg
        self.recorder = None
        if cfg.record.enabled:  # first: a folder it cannot write to is a config error
            from connector.record import FeedRecorder

            self.recorder = FeedRecorder(name, cfg.record, [i.symbol for i in cfg.instruments],
                                         cfg.path)  # fmt: skip
        try:
            self.shm = ShmServer(name, venue, cfg.instruments, cfg.connector)
        except BaseException:
            self._close_recorder()
            raise
        self.router = Router(self.shm, cfg, cfg.instruments)
        self.core = ConnectorCore(self.shm, self.router, cfg.instruments, self.recorder)
        try:
            self.venue = registry.spec(venue).factory(cfg, self.core)
        except BaseException:
            self.shm.close()  # a failed start leaves no segment behind
            self._close_recorder()
            raise
        self.router.venue = self.venue
        self.metrics = None
        if cfg.metrics.enabled:
            from connector.metrics import Metrics

            self.metrics = Metrics(name, venue, self.shm, self.router, self.venue, cfg.instruments)
            self.router.metrics = self.metrics
        self.alerts = None
        if cfg.alerts:
            from connector.alerts import Alerts

            self.alerts = Alerts(name, cfg.alerts, self.shm, self.router, self.venue,
                                 cfg.instruments, cfg.risk.max_position)  # fmt: skip
            self.router.alerts = self.alerts
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    def _close_recorder(self) -> None:
        """Writes the recorded files still open (after the venue's last publish)."""
        if self.recorder is not None:
            self.recorder.close()

    def _on_bell(self) -> None:
        self.shm.drain_bell()
        self.router.poll_slots()
        self.router.drain()

    async def _housekeep(self) -> None:
        last_slots = last_hb = last_forget = last_alerts = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            self.router.drain()
            if now - last_slots >= SLOTS_EVERY_S:
                last_slots = now
                self.router.poll_slots()
            if now - last_hb >= HEARTBEAT_EVERY_S:
                last_hb = now
                self.shm.heartbeat()
                self.router.poll_commands()  # halt / reduce / resume (hftlive.control)
                if self.metrics is not None:
                    self.metrics.sample_feed()
                for i in range(len(self.cfg.instruments)):
                    self.shm.ctl.instruments[i]["account_position"] = (
                        self.venue.account_position(i)
                    )
            if self.router.flattening():
                self.router.flatten_step()
            if self.alerts is not None and now - last_alerts >= ALERTS_EVERY_S:
                last_alerts = now
                self.alerts.tick(now)
            if now - last_forget >= FORGET_EVERY_S:
                last_forget = now
                self.router.forget_final()
            await asyncio.sleep(HOUSEKEEP_S)

    async def _run_venue(self) -> None:
        await self.venue.run()
        if not self._stop.is_set():
            log.info("venue %s finished (end of data); stopping", self.venue_name)
            self._stop.set()

    def _warm_up(self) -> None:
        """Compiles (or loads from numba's cache) the njit functions of the market and bot
        paths before the connector says RUNNING. Compiled lazily, they held the event loop
        for ~5 s on a fresh install (more on a busy machine) just as the first bot
        registered, whose connect timeout could run out."""
        t = time.monotonic()
        self.shm.warm_up()
        rb = RecordingBook(0, self.cfg.instruments[0])  # scratch: the book functions
        px, lot = 1000 * rb.tick_size, rb.lot_size
        rb.set_bid(px, lot)
        rb.set_ask(px + rb.tick_size, lot)
        rb.set_bid(px - rb.tick_size, lot)
        rb.set_bid(px + rb.tick_size, lot)  # crosses the ask: the prune paths
        rb.set_ask(px - rb.tick_size, lot)
        rb.set_bid(px - rb.tick_size, 0.0)  # a delete
        rb.apply_levels(np.array([[px, lot]]), np.array([[px + rb.tick_size, lot]]))
        rb.book.snapshot_into(np.zeros(16, event_dtype), 0)
        rb.book.bid_levels(5)  # the sim's market and matching read levels
        rb.book.ask_levels(5)
        rb.clear()
        log.debug("njit functions ready in %.2f s", time.monotonic() - t)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for s in STOP_SIGNALS:
            loop.add_signal_handler(s, self.stop)
        # Blocked from the process's start (connector.__main__): a stop while the connector
        # started (it made its shared memory, then compiled its njit functions: seconds on
        # an empty numba cache) is delivered now, to the handler above, and takes the
        # ordinary stop path: exit 0, nothing left in /dev/shm. Their default action killed
        # it and left its segments; an exception raised from a Python handler inside
        # numba's compiler breaks the compiler.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        loop.add_reader(self.shm.bell_fd, self._on_bell)
        self.shm.heartbeat()
        metrics_runner = None
        if self.metrics is not None:
            try:
                metrics_runner = await self.metrics.serve(self.cfg.metrics)
            except OSError as e:
                self.shm.close()
                self._close_recorder()
                raise ValueError(f"[metrics] cannot listen on {self.cfg.metrics.host}:"
                                 f"{self.cfg.metrics.port}: {e.strerror}") from None
        self._warm_up()
        self.shm.running()
        log.info(
            "connector %r (%s, pid %d) serving %s",
            self.name, self.venue_name, os.getpid(), ", ".join(i.symbol for i in self.cfg.instruments),
        )  # fmt: skip
        try:
            venue_task = asyncio.create_task(self._run_venue(), name="venue")
            house_task = asyncio.create_task(self._housekeep(), name="housekeeping")
            stop_task = asyncio.create_task(self._stop.wait(), name="stop")
            done, _ = await asyncio.wait(
                {venue_task, house_task, stop_task}, return_when=asyncio.FIRST_COMPLETED
            )
            for t in done:
                if t is not stop_task and t.exception() is not None:
                    raise t.exception()
            await self._shutdown()
            for t in (venue_task, house_task, stop_task):
                t.cancel()
            await asyncio.gather(venue_task, house_task, stop_task, return_exceptions=True)
        finally:
            if metrics_runner is not None:
                await metrics_runner.cleanup()
            loop.remove_reader(self.shm.bell_fd)
            for s in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(s)
            self.shm.close()
            self._close_recorder()
            log.info("connector %r stopped", self.name)

    async def _shutdown(self) -> None:
        """Cancel what is open (or may be), let the venue make sure of the rest, tell bots.

        Orders whose outcome is not known yet (a submit unanswered) are cancelled as soon
        as the venue shows them working; what is still unsure after `stop_timeout_s` is
        handed to the venue's `stop`, which cancels per symbol and leaves its dead-man's
        switch armed.
        """
        self.router.stopping = True  # refuse new orders from here on
        self.router.drain()
        unsure: list[int] = []
        if self.cfg.connector.cancel_on_shutdown:
            n = self.router.cancel_all()
            self.router.flush()
            if n:
                log.info("cancelling %d open order(s) on shutdown", n)
            deadline = time.monotonic() + self.cfg.connector.stop_timeout_s
            while time.monotonic() < deadline:
                unsure = sorted(set(self.venue.unsure()) | set(self.router.open_keys()))
                if not unsure:
                    break
                self.router.drain()
                await asyncio.sleep(SETTLE_POLL_S)
            if unsure:
                log.warning("%d order(s) still unsure after %g s; the venue makes sure they "
                            "end", len(unsure), self.cfg.connector.stop_timeout_s)  # fmt: skip
        if self.cfg.connector.flatten_on_shutdown:
            # after the cancels: the positions, with reduce-only orders, bounded in time
            self.router.request_flatten(None)
            while self.router.flattening():
                self.router.drain()
                self.router.flatten_step()
                await asyncio.sleep(SETTLE_POLL_S)
            unsure = sorted(set(self.venue.unsure()) | set(self.router.open_keys()))
        await self.venue.stop(unsure)
        if self.alerts is not None:
            await self.alerts.drain()
        # bots read the cancellations before this notice, which ends their run
        self.router.shutdown_notice()
        self.shm.set_state(CONN_STOPPING)
        await asyncio.sleep(SHUTDOWN_GRACE_S)


def run(name: str, venue: str, cfg: Config) -> None:
    asyncio.run(_main(name, venue, cfg))


async def _main(name: str, venue: str, cfg: Config) -> None:
    spec = registry.spec(venue)
    if spec.preflight is not None:
        spec.preflight(cfg)  # before any network or shared memory: nothing to undo
    if spec.prepare is not None:
        # e.g. tick and lot sizes from the venue: they go into shared memory, so ask first
        cfg = await spec.prepare(cfg)
    await Connector(name, venue, cfg).run()
