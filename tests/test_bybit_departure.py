"""No Bybit order is ever left working: a bot that leaves (close, kill -9) or a connector
that stops (SIGTERM) while ~10 submits are unanswered, through the real connector
process, the Bybit emulator (which executes the orders and loses their replies and
pushes) and a real LiveBot. The venue's own open orders are the judge; its request
counts show nothing was sent twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from hftlive import GTX, LIMIT
from tests.conftest import wait_until
from tests.test_bybit_connector import (
    ROOT,
    SYMBOL,
    BybitConnector,
    Emulator,
    bot,
    far_bid,
    qty_for,
    ready,
)

N = 8  # at once: within Bybit's 10 new orders a second (the connector admits 9)


def _orders_sent(emu: Emulator) -> int:
    return emu.requests("order.create") + emu.requests("POST /v5/order/create")


def _submit_unanswered(hbt, emu: Emulator) -> None:
    """N far PostOnly orders the venue executes while their replies and pushes are lost."""
    emu.faults(lose_acks=N, lose_private_events=1000)
    px = far_bid(hbt, emu)
    qty = qty_for(emu, px)
    for i in range(1, N + 1):
        assert hbt.submit_buy_order(0, i, round(px - i * emu.tick, 8), qty, GTX, LIMIT,
                                    False) == 0  # fmt: skip
    wait_until(lambda: len(emu.open_orders()) == N, 20, "the orders working at the venue")
    assert all(hbt.orders(0).get(i).status == 0 for i in range(1, N + 1))  # unanswered


@pytest.fixture
def emu(tmp_path):
    e = Emulator(tmp_path)
    yield e
    e.stop()


def test_a_bot_that_closes_with_unanswered_submits_leaves_nothing_working(tmp_path, emu):
    conn = BybitConnector(tmp_path, emu)
    try:
        hbt = bot(conn, emu)
        try:
            ready(hbt, conn)
            _submit_unanswered(hbt, emu)
        finally:
            hbt.close()
        wait_until(lambda: emu.open_orders() == [], 30, "the venue to show nothing working")
        assert _orders_sent(emu) == N  # asked about, cancelled, never sent twice
    finally:
        assert conn.stop() == 0, conn.text()


CHILD_BOT = """
import sys
from hftlive import LiveBot, Instrument, GTX, LIMIT
hbt = (LiveBot.builder().register(Instrument({name!r}, {sym!r}, {tick!r}, {lot!r}))
       .connect_timeout(60.0).build())
while not (hbt.depth(0).best_bid > 0 and hbt.depth(0).best_ask > hbt.depth(0).best_bid):
    hbt.elapse(20_000_000)
print("READY", flush=True)
sys.stdin.readline()  # the parent has set the faults
px = round(round(hbt.depth(0).best_bid * 0.995 / {tick!r}) * {tick!r}, 8)  # as far_bid: 50 bp
for i in range(1, {n} + 1):
    assert hbt.submit_buy_order(0, i, round(px - i * {tick!r}, 8), {qty!r}, GTX, LIMIT,
                                False) == 0
print("SUBMITTED", flush=True)
while True:
    hbt.elapse(100_000_000)
"""


def test_a_bot_killed_with_unanswered_submits_leaves_nothing_working(tmp_path, emu):
    conn = BybitConnector(tmp_path, emu)
    qty = qty_for(emu, float(emu.book(1)["b"][0][0]))
    code = CHILD_BOT.format(name=conn.name, sym=SYMBOL, tick=emu.tick, lot=emu.lot, n=N, qty=qty)
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert child.stdout.readline().startswith("READY")
        emu.faults(lose_acks=N, lose_private_events=1000)
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().startswith("SUBMITTED")
        wait_until(lambda: len(emu.open_orders()) == N, 20, "the orders working")
        os.kill(child.pid, signal.SIGKILL)  # no close(), no goodbye
        child.wait(10)
        wait_until(lambda: emu.open_orders() == [], 30, "the venue to show nothing working")
        assert _orders_sent(emu) == N
        assert "died" in conn.text()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert conn.stop() == 0, conn.text()


def test_a_connector_stopped_with_unanswered_submits_leaves_nothing_working(tmp_path, emu):
    conn = BybitConnector(tmp_path, emu)
    hbt = None
    try:
        hbt = bot(conn, emu)
        ready(hbt, conn)
        _submit_unanswered(hbt, emu)
        assert conn.stop() == 0, conn.text()  # SIGTERM: a clean stop
        assert emu.open_orders() == []  # cancelled before it exited
        assert _orders_sent(emu) == N
        while hbt.elapse(10_000_000) == 0:  # the bot learns the run is over
            pass
    finally:
        if hbt is not None:
            hbt.close()
        if conn.proc.poll() is None:  # it failed before the stop under test: no stray process
            conn.stop()
