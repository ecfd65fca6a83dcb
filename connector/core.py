"""The core's side of the venue contract (connector.venue.Core): the one object a venue
receives. It forwards to shared memory (ShmServer) and to the bots (Router) and keeps
the rules every venue shares: a lost connection is announced once and its return once,
a book reset is counted and announced.
"""

from __future__ import annotations

import logging

import numpy as np

from connector.venue import Core, OrderReport
from hftlive.constants import CONNECTION_RESTORED, ERR_BOOK_RESYNC, ERR_CONNECTION

log = logging.getLogger(__name__)


class ConnectorCore(Core):
    def __init__(self, shm, router, instruments, recorder=None):
        self._shm = shm
        self._router = router
        self._symbols = [i.symbol for i in instruments]
        self._lost: set[str] = set()  # connections whose loss the bots were told of
        self._lockstep = None
        # the hot path: a venue's publish is the ring's, with no frame of ours between
        self.publish = shm.publish
        # [record]: the ring's publish, then a copy to the feed recorder (connector.record)
        self._recorder = recorder
        if recorder is not None:
            self.publish = recorder.tap(shm.publish)

    def publish(self, inst: int, events: np.ndarray, n: int) -> None:
        self._shm.publish(inst, events, n)

    def lockstep(self):
        if self._lockstep is None:
            from connector.lockstep import Lockstep

            self._lockstep = Lockstep(self._shm, self._router)
        return self._lockstep

    def write_snapshot(self, inst: int, book, ts: int) -> None:
        self._shm.write_snapshot(inst, book, ts)
        if self._recorder is not None:
            self._recorder.at_snapshot(inst, book)  # where recorded files rotate

    def book_reset(self, inst: int, why: str) -> None:
        self._shm.count_resync(inst)
        self._router.broadcast_error(ERR_BOOK_RESYNC, 0, f"{self._symbols[inst]}: {why}", inst)

    def report(self, *reports: OrderReport) -> None:
        for r in reports:
            self._router.on_report(r)
        self._router.flush()

    def notify(self, kind: int, code: int, msg: str, inst: int = -1) -> None:
        self._router.broadcast_error(kind, code, msg, inst)

    def connection(self, what: str, up: bool, detail: str = "") -> None:
        if not up:
            if what not in self._lost:
                self._lost.add(what)
                self.notify(ERR_CONNECTION, 0, f"{what} lost" + (f": {detail}" if detail else ""))
        elif what in self._lost:
            self._lost.discard(what)
            self.notify(ERR_CONNECTION, CONNECTION_RESTORED,
                        f"{what} restored" + (f"; {detail}" if detail else ""))  # fmt: skip

    def connected(self, up: bool) -> None:
        self._shm.set_connected(up)

    def bad_message(self, inst: int = -1) -> None:
        self._shm.count_bad_message(inst)

    def direct_rings(self):
        table = self._shm.ring_table
        if table is None:
            return None
        return table, (self._recorder.add if self._recorder is not None else None)
