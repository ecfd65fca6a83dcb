"""What a start, a dead peer or a bad order must not get past (hardening items 7, 8, 9, 11):
credentials checked before anything is touched, a dead bot's segment reclaimed, a squatted
segment name explained, orders below the venue's minimums refused before sending, and
resyncs counted where a monitor reads them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from connector import codes
from hftlive import ERR_BOOK_RESYNC, ERR_ORDER, EXPIRED, GTX, LIMIT, NEW, Instrument, LiveBot
from hftlive.constants import REJECT_INVALID_QTY
from hftlive.monitor import ConnectorView
from tests.conftest import ROOT, wait_until
from tests.test_bf_connector import (
    SECRET,
    BfConnector,
    Emulator,
    _bot,
    _synced,
    _wait,
    config_text,
)


def _segments(name: str) -> list[Path]:
    return list(Path("/dev/shm").glob(f"hftlive.{name}.*"))


@pytest.fixture
def emu(tmp_path):
    e = Emulator(tmp_path)
    yield e
    e.stop()


def test_a_missing_key_stops_the_start_before_network_and_shared_memory(tmp_path):
    """Item 7: no key -> one clear line naming the variable, exit 2, nothing in /dev/shm;
    the venue's URLs point nowhere, so an error naming the network would mean it was
    touched first."""
    urls = {k: "http://127.0.0.1:9" for k in ("rest", "ws_public", "ws_market", "ws_private",
                                              "ws_api")}  # fmt: skip
    cfg = tmp_path / "bf.toml"
    cfg.write_text(config_text(urls))
    name = f"nokey{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if k not in ("BFT_API_KEY", "BFT_SECRET")}
    r = subprocess.run(
        [sys.executable, "-m", "connector", "--name", name, "--connector", "binancefutures",
         "--config", str(cfg)], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "$BFT_API_KEY" in r.stderr and str(cfg) in r.stderr
    assert "exchangeInfo" not in r.stderr and "Traceback" not in r.stderr
    assert _segments(name) == []


CHILD = """
import sys
from hftlive import LiveBot, Instrument
hbt = LiveBot.builder().register(Instrument({name!r}, "btcusdt", 0.1, 0.001)).id(4242).build()
hbt.elapse(10_000_000)
print("UP", flush=True)
sys.stdin.readline()
"""


def test_a_killed_bots_view_segment_is_reclaimed_by_the_connector(connector):
    """Item 8: kill -9 leaves the bot's view segment; the connector removes it when it
    sees the bot die, not at its own next start."""
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(name=connector.name)],
                             cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    view = Path(f"/dev/shm/hftlive.{connector.name}.bot.4242")
    try:
        assert child.stdout.readline().startswith("UP")
        assert view.exists()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        wait_until(lambda: not view.exists(), 10, "the dead bot's segment removed")
        wait_until(lambda: "bot 4242 (pid" in connector.text() and "died" in connector.text(), 10,
               "the death logged")  # fmt: skip
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_segment_name_squatted_by_another_user_is_a_clear_error(tmp_path):
    """Item 8: another user's file where our segment goes: a SharedMemoryError that says so,
    not an uncaught PermissionError. The unprivileged side runs in a forked child that
    drops to user `nobody` (the test runs as root, which permissions do not stop)."""
    if os.getuid() != 0:
        pytest.fail("this test needs root to create a file another user cannot remove")
    name = f"squat{os.getpid()}"
    squat = Path(f"/dev/shm/hftlive.{name}.ctl")
    squat.write_bytes(b"not ours")
    squat.chmod(0o600)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: an unprivileged connector trying to start
        os.close(r)
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            from connector.config import ConnectorSection, InstrumentConfig
            from connector.shmserver import ShmServer
            from hftlive.shm import SharedMemoryError

            try:
                ShmServer(name, "sim", (InstrumentConfig("btcusdt", 0.1, 0.001),),
                          ConnectorSection())  # fmt: skip
                os.write(w, b"started?!")
            except SharedMemoryError as e:
                os.write(w, f"OK {e}".encode())
                code = 0
            except BaseException as e:  # noqa: BLE001 (reported to the parent)
                os.write(w, f"{type(e).__name__}: {e}".encode())
        finally:
            os._exit(code)
    os.close(w)
    try:
        _, status = os.waitpid(pid, 0)
        with os.fdopen(r) as f:
            said = f.read()
        assert os.waitstatus_to_exitcode(status) == 0, said
        assert said.startswith("OK ") and str(squat) in said
        assert "another user (uid 0)" in said and "--name" in said
    finally:
        squat.unlink(missing_ok=True)
        for p in _segments(name):
            p.unlink(missing_ok=True)


def test_orders_below_the_venues_minimums_are_refused_before_sending(tmp_path, emu):
    """Item 9: exchangeInfo's LOT_SIZE.minQty and MIN_NOTIONAL.notional (20 USDT for
    ETHUSDT) are checked by the connector: refused with the reason, nothing reaches the
    venue (which would answer -4164)."""
    conn = BfConnector(tmp_path, emu)
    errors: list = []
    hbt = _bot(conn, errors)
    try:
        _wait(hbt, lambda: _synced(hbt), what="a synced book")
        sent = emu.control("/_emulator/requests")["requests"].get("POST /fapi/v1/order", 0)
        px = round(hbt.depth(0).best_bid - 5.0, 2)
        qty = 0.001 * max(1, int(10.0 / px / 0.001))  # about 10 USDT: below 20
        assert hbt.submit_buy_order(0, 1, px, qty, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(1).status == EXPIRED
        err = errors[-1]
        assert (err.kind, err.code) == (ERR_ORDER, codes.BELOW_MINIMUM)
        assert "below the venue's minimum 20" in err.msg
        assert err.reason == REJECT_INVALID_QTY
        after = emu.control("/_emulator/requests")["requests"].get("POST /fapi/v1/order", 0)
        assert after == sent  # nothing was sent
        assert hbt.submit_buy_order(0, 2, px, 0.02, GTX, LIMIT, True) == 0  # above: sent
        assert hbt.orders(0).get(2).status == NEW
    finally:
        hbt.close()
        assert conn.stop() == 0, conn.text()
    assert SECRET not in conn.text()


def test_resyncs_are_counted_where_a_monitor_reads_them(tmp_path, emu):
    """Item 11: every book reset the bots are told of counts in the connector's view."""
    conn = BfConnector(tmp_path, emu)
    errors: list = []
    hbt = _bot(conn, errors)
    view = ConnectorView(conn.name)
    try:
        _wait(hbt, lambda: _synced(hbt), what="a synced book")
        assert view.instruments()[0]["resyncs"] == 0
        emu.faults(drop_depth=1)
        _wait(hbt, lambda: any(e.kind == ERR_BOOK_RESYNC for e in errors), timeout=20,
              what="the resync")  # fmt: skip
        n = sum(1 for e in errors if e.kind == ERR_BOOK_RESYNC)
        _wait(hbt, lambda: view.instruments()[0]["resyncs"] >= n, what="the count")
        assert view.instruments()[0]["resyncs"] == n
    finally:
        view.close()
        hbt.close()
        assert conn.stop() == 0, conn.text()


def test_a_sim_order_below_a_configured_minimum_is_refused(make_connector):
    c = make_connector(config="""
[[instruments]]
symbol = "btcusdt"
tick_size = 0.1
lot_size = 0.001
min_qty = 0.002
start_price = 60000.0
""").start()  # fmt: skip
    errors: list = []
    hbt = (LiveBot.builder().register(Instrument(c.name, "btcusdt", 0.1, 0.001))
           .error_handler(errors.append).build())  # fmt: skip
    try:
        hbt.elapse(100_000_000)
        px = hbt.depth(0).best_bid * 0.99
        assert hbt.submit_buy_order(0, 1, px, 0.001, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(1).status == EXPIRED
        assert errors[-1].code == codes.BELOW_MINIMUM
    finally:
        hbt.close()


def test_the_doorbell_stays_quiet_once_the_last_bot_has_closed_it():
    """Bots ring the connector's doorbell FIFO. Once the last one has closed its end, the
    FIFO must not poll readable (EOF, hang-up): the connector's event loop would wake for
    it without end and spin a core until the next bot came (it did: a connector left
    behind by a failed test ran at 90% CPU)."""
    import select

    from connector.config import ConnectorSection, InstrumentConfig
    from connector.shmserver import ShmServer

    s = ShmServer(f"bell{os.getpid()}", "sim", (InstrumentConfig("btcusdt", 0.1, 0.001),),
                  ConnectorSection())  # fmt: skip
    try:
        p = select.poll()
        p.register(s.bell_fd, select.POLLIN)
        assert p.poll(0) == []  # no bot yet
        w = os.open(s.bell_path, os.O_WRONLY | os.O_NONBLOCK)  # a bot, as hftlive.bot opens it
        os.write(w, b"x")
        assert p.poll(1000) != []  # rung
        s.drain_bell()
        assert p.poll(0) == []
        os.close(w)  # the bot leaves
        assert p.poll(0) == []  # quiet: nothing to wake for
    finally:
        s.close()
