"""The connector's side of shared memory, played by the test process itself.

A real ShmServer (real /dev/shm segments, the real registration handshake) that a test
drives by hand: it acknowledges a bot as the connector's router does (rings reset, READY
queued, then the ack), keeps its heartbeat fresh, and sends and takes exactly the records
a test gives it. What it checks is the bot side, so nothing of the bot is replaced.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np

from connector.config import ConnectorSection, InstrumentConfig
from connector.shmserver import ShmServer
from hftlive import Instrument, LiveBot
from hftlive.layout import RESP_READY, response_dtype

TIMEOUT_S = 30.0
HEARTBEAT_EVERY_S = 0.1


class InProcessConnector:
    def __init__(self, name: str | None = None):
        cfg = ConnectorSection(max_bots=2, md_capacity=1024, snapshot_capacity=64,
                               req_capacity=64, resp_capacity=64)  # fmt: skip
        name = name or f"ip{os.getpid()}"
        self.server = ShmServer(name, "sim", [InstrumentConfig("btcusdt", 0.1, 0.001)], cfg)
        self.server.heartbeat()
        self.server.running()
        self.slot: int | None = None
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        # a bot ends its run (CONNECTOR_LOST) if the heartbeat is older than 3 s
        while not self._stop.wait(HEARTBEAT_EVERY_S):
            self.server.heartbeat()

    def _register_one_bot(self) -> None:
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while self.slot is None and time.monotonic() < deadline:
                for k, _bot_id, _pid, gen, acked in self.server.active_slots():
                    if acked != gen:
                        self.server.reset_rings(k)
                        self.send(k, kind=RESP_READY)
                        self.server.ack(k, gen)
                        self.slot = k
                time.sleep(0.001)  # polling the slot table, as the connector's loop does
        except BaseException as e:  # reported by build_bot, not lost in the thread
            self.failure = e

    def build_bot(self, **builder_calls):
        """A real LiveBot on this connector's btcusdt, registered through the handshake."""
        t = threading.Thread(target=self._register_one_bot)
        t.start()
        try:
            b = LiveBot.builder().register(Instrument(self.server.name, "btcusdt", 0.1, 0.001))
            for k, v in builder_calls.items():
                getattr(b, k)(v)
            hbt = b.connect_timeout(TIMEOUT_S).build()
        finally:
            t.join(TIMEOUT_S)
        assert self.failure is None and self.slot is not None, self.failure
        return hbt

    def send(self, k: int, kind: int, **fields) -> None:
        """One response record of `kind` with these fields (e.g. order=rec, code=-5022)."""
        rec = np.zeros(1, response_dtype)
        rec["kind"] = kind
        for name, value in fields.items():
            rec[name] = value
        assert self.server.send(k, rec)

    def requests(self) -> np.ndarray:
        """What the bot queued since the last call (request_dtype records, a copy)."""
        return self.server.take_requests(self.slot).copy()

    def close(self) -> None:
        self._stop.set()
        self._beat.join(TIMEOUT_S)
        self.server.close()
