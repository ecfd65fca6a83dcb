"""A refusal reaches the bot with the venue's raw code and the venue-neutral reason.

The test process plays the connector over a real ShmServer (real shared memory, the real
registration handshake), writes one RESP_ERROR record into the bot's real response ring,
and a real LiveBot reads it: in `LiveError.reason` for its error_handler and in
`hbt.last_error_reason` for njit code.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from numba import njit

from connector.config import ConnectorSection, InstrumentConfig
from connector.shmserver import ShmServer
from hftlive import (
    ERR_CONNECTION,
    ERR_ORDER,
    REJECT_NONE,
    REJECT_POST_ONLY,
    Instrument,
    LiveBot,
    LiveError,
)
from hftlive.layout import RESP_ERROR, RESP_READY, response_dtype

TIMEOUT_S = 30.0


class InProcessConnector:
    """A connector's shared memory in this process: it acknowledges bots as the router
    does (rings reset, READY queued, then the ack) and sends what a test gives it."""

    def __init__(self, name: str):
        cfg = ConnectorSection(max_bots=2, md_capacity=1024, snapshot_capacity=64,
                               req_capacity=64, resp_capacity=64)  # fmt: skip
        self.server = ShmServer(name, "sim", [InstrumentConfig("btcusdt", 0.1, 0.001)], cfg)
        self.server.heartbeat()
        self.server.running()
        self.slot: int | None = None
        self.failure: BaseException | None = None

    def register_one_bot(self) -> None:
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while self.slot is None and time.monotonic() < deadline:
                self.server.heartbeat()
                for k, _bot_id, _pid, gen, acked in self.server.active_slots():
                    if acked != gen:
                        self.server.reset_rings(k)
                        self.send(k, kind=RESP_READY)
                        self.server.ack(k, gen)
                        self.slot = k
                time.sleep(0.001)  # polling the slot table, as the connector's loop does
        except BaseException as e:  # reported by the test, not lost in the thread
            self.failure = e

    def send(self, k: int, kind: int, **fields) -> None:
        rec = np.zeros(1, response_dtype)
        rec["kind"] = kind
        for name, value in fields.items():
            rec[name] = value
        assert self.server.send(k, rec)


@pytest.fixture
def conn():
    c = InProcessConnector(f"rr{os.getpid()}")
    try:
        yield c
    finally:
        c.server.close()


@njit
def wait_for_error(hbt, timeout_ns):
    """What njit code sees of the first error, waiting for it at most timeout_ns."""
    waited = 0
    while hbt.error_count == 0 and waited < timeout_ns:
        if hbt.elapse(1_000_000) != 0:
            break
        waited += 1_000_000
    return hbt.error_count, hbt.last_error_kind, hbt.last_error_code, hbt.last_error_reason


def test_reject_reason_reaches_error_handler_and_njit(conn):
    errors: list[LiveError] = []
    t = threading.Thread(target=conn.register_one_bot)
    t.start()
    try:
        hbt = (
            LiveBot.builder()
            .register(Instrument(conn.server.name, "btcusdt", 0.1, 0.001))
            .error_handler(errors.append)
            .connect_timeout(TIMEOUT_S)
            .build()
        )
    finally:
        t.join(TIMEOUT_S)
    assert conn.failure is None and conn.slot is not None
    try:
        msg = b"Order would immediately match and take."
        conn.send(conn.slot, kind=RESP_ERROR, err_kind=ERR_ORDER, inst=0, code=-5022,
                  reason=REJECT_POST_ONLY, msg=msg)  # fmt: skip
        conn.server.heartbeat()
        n, kind, code, reason = wait_for_error(hbt, int(TIMEOUT_S * 1e9))
        assert (n, kind, code, reason) == (1, ERR_ORDER, -5022, REJECT_POST_ONLY)
        assert [(e.kind, e.code, e.reason, e.asset_no, e.msg) for e in errors] == [
            (ERR_ORDER, -5022, REJECT_POST_ONLY, 0, msg.decode())
        ]
        assert repr(errors[0]).startswith(
            "LiveError(kind=ERR_ORDER, code=-5022, reason=REJECT_POST_ONLY, asset_no=0,"
        )
    finally:
        hbt.close()


def test_a_notice_that_refuses_nothing_has_no_reason():
    e = LiveError(kind=ERR_CONNECTION, code=0, asset_no=-1, msg="venue connection lost")
    assert e.reason == REJECT_NONE
    assert repr(e) == (
        "LiveError(kind=ERR_CONNECTION, code=0, reason=REJECT_NONE, asset_no=-1, "
        "order_id=0, msg='venue connection lost')"
    )
