"""No order is ever left working: a bot that leaves (close, kill -9) or a connector that
stops while its submits are unanswered, and a venue clock that jumps, all through the real
connector process, the Binance emulator (which executes the orders and loses their
replies and events) and a real LiveBot. The venue's own open-orders list is the judge."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from hftlive import CANCELED, ERR_ORDER, GTX, LIMIT, NEW
from tests.conftest import wait_until
from tests.test_bf_connector import (
    ROOT,
    BfConnector,
    Emulator,
    _bot,
    _synced,
    _venue_get,
    _wait,
)

N = 10


def _open_at_venue(emu: Emulator) -> list:
    return _venue_get(emu, "/fapi/v1/openOrders")


def _orders_sent(emu: Emulator) -> int:
    return emu.control("/_emulator/requests")["requests"].get("POST /fapi/v1/order", 0)


def _submit_unanswered(hbt, emu: Emulator) -> None:
    """N far GTX orders the venue executes while their replies and events are lost."""
    emu.faults(lose_acks=N, lose_user_events=N)
    px = round(hbt.depth(0).best_bid - 20.0, 2)
    for i in range(1, N + 1):
        assert hbt.submit_buy_order(0, i, round(px - 0.01 * i, 2), 0.02, GTX, LIMIT, False) == 0
    _wait(hbt, lambda: len(_open_at_venue(emu)) == N, what="the orders working at the venue")
    assert all(hbt.orders(0).get(i).status == 0 for i in range(1, N + 1))  # still unanswered


@pytest.fixture
def emu(tmp_path):
    e = Emulator(tmp_path)
    yield e
    e.stop()


def test_a_bot_that_closes_with_unanswered_submits_leaves_nothing_working(tmp_path, emu):
    conn = BfConnector(tmp_path, emu)
    try:
        hbt = _bot(conn)
        try:
            _wait(hbt, lambda: _synced(hbt), what="a synced book")
            _submit_unanswered(hbt, emu)
        finally:
            hbt.close()
        wait_until(lambda: _open_at_venue(emu) == [], 20, "the venue to show nothing working")
        assert _orders_sent(emu) == N  # asked about, cancelled, never sent twice
        assert "bot " in conn.text() and " left" in conn.text()
    finally:
        assert conn.stop() == 0, conn.text()


CHILD_BOT = """
import sys, time
from hftlive import LiveBot, Instrument, GTX, LIMIT
hbt = (LiveBot.builder().register(Instrument({name!r}, "ethusdt", 0.01, 0.001))
       .connect_timeout(60.0).build())
while not (hbt.depth(0).best_bid > 0 and hbt.depth(0).best_ask > hbt.depth(0).best_bid):
    hbt.elapse(20_000_000)
print("READY", hbt.depth(0).best_bid, flush=True)
sys.stdin.readline()  # the parent has set the faults
px = round(hbt.depth(0).best_bid - 20.0, 2)
for i in range(1, {n} + 1):
    assert hbt.submit_buy_order(0, i, round(px - 0.01 * i, 2), 0.02, GTX, LIMIT, False) == 0
print("SUBMITTED", flush=True)
while True:
    hbt.elapse(100_000_000)
"""


def test_a_bot_killed_with_unanswered_submits_leaves_nothing_working(tmp_path, emu):
    conn = BfConnector(tmp_path, emu)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_BOT.format(name=conn.name, n=N)], cwd=ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout.readline().startswith("READY")
        emu.faults(lose_acks=N, lose_user_events=N)
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().startswith("SUBMITTED")
        wait_until(lambda: len(_open_at_venue(emu)) == N, 20, "the orders working")
        os.kill(child.pid, signal.SIGKILL)  # no close(), no goodbye
        child.wait(10)
        wait_until(lambda: _open_at_venue(emu) == [], 20, "the venue to show nothing working")
        assert _orders_sent(emu) == N
        assert "died" in conn.text()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert conn.stop() == 0, conn.text()


def test_a_connector_stopped_with_unanswered_submits_leaves_nothing_working(tmp_path, emu):
    conn = BfConnector(tmp_path, emu)
    hbt = None
    try:
        hbt = _bot(conn)
        _wait(hbt, lambda: _synced(hbt), what="a synced book")
        _submit_unanswered(hbt, emu)
        assert conn.stop() == 0, conn.text()  # SIGTERM: a clean stop
        # the connector cancelled before it exited: nothing is left, now
        assert _open_at_venue(emu) == []
        assert _orders_sent(emu) == N
        while hbt.elapse(10_000_000) == 0:  # the bot learns the run is over
            pass
    finally:
        if hbt is not None:
            hbt.close()
        if conn.proc.poll() is None:  # it failed before the stop under test: no stray process
            conn.stop()


@pytest.mark.parametrize(
    "place_skew_ms,cancel_skew_ms",
    [(4_000, 0), (0, -7_000)],
    ids=["placed-ahead-cancelled-at-0", "placed-at-0-cancelled-behind"],
)
def test_a_venue_clock_jump_never_leaves_a_cancelled_order_new(
    tmp_path, emu, place_skew_ms, cancel_skew_ms
):
    """The venue's clock jumps between an order's placement and its cancel, so the cancel
    carries an older venue time: the bot still sees CANCELED, as the venue does, at once,
    and its later cancels get no -2011 storm."""
    conn = BfConnector(tmp_path, emu)
    errors: list = []
    hbt = _bot(conn, errors)
    try:
        _wait(hbt, lambda: _synced(hbt), what="a synced book")
        emu.faults(clock_skew_ms=place_skew_ms)
        px = round(hbt.depth(0).best_bid - 20.0, 2)
        for i in (1, 2):
            assert hbt.submit_buy_order(0, i, px - i, 0.02, GTX, LIMIT, True) == 0
            assert hbt.orders(0).get(i).status == NEW
        emu.faults(clock_skew_ms=cancel_skew_ms)
        for i in (1, 2):
            # 7 s behind, the venue refuses our first signed request (-1021) and the
            # connector re-measures its clock; a bot simply cancels again
            for _ in range(3):
                assert hbt.cancel(0, i, True) == 0
                if hbt.orders(0).get(i).status == CANCELED:
                    break
                assert errors[-1].code == -1021
                _wait(hbt, lambda: "re-measured" in conn.text(), what="the clock re-measured")
            assert hbt.orders(0).get(i).status == CANCELED
        emu.faults(clock_skew_ms=0)  # our own check below is signed with our clock
        assert _open_at_venue(emu) == []
        hbt.elapse(500_000_000)
        assert [hbt.orders(0).get(i).status for i in (1, 2)] == [CANCELED, CANCELED]
        # no order left NEW, and no -2011 at all (before: every later cancel got one)
        assert [e.code for e in errors if e.kind == ERR_ORDER and e.code != -1021] == []
    finally:
        hbt.close()
        assert conn.stop() == 0, conn.text()
