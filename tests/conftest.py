"""Shared fixtures: real connector processes on the sim venue, real shared memory."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ROOT.parent / "shared" / "data" / "binancefutures" / "ethusdt_20240808.gz"
_names = itertools.count()



def _pad_hftbacktests_event_order() -> None:
    """Under NUMBA_BOUNDSCHECK=1 (every compiled function checks its indexing: the suite's
    sweep for out-of-bounds reads and writes in our compiled code, connectors included, as
    they inherit the environment), hftbacktest's `correct_event_order` fails: it reads
    its index arrays at len(data) before testing the bound, a read it then ignores. Its
    callers get it with both index arrays padded by one, which changes nothing else."""
    import hftbacktest.data
    import numpy as np
    from hftbacktest.data import validation
    from hftbacktest.data.utils import binancefutures

    theirs = validation.correct_event_order

    def padded(data, sorted_exch_index, sorted_local_index):
        return theirs(data, np.append(sorted_exch_index, 0), np.append(sorted_local_index, 0))

    for module in (hftbacktest.data, validation, binancefutures):
        module.correct_event_order = padded


if os.environ.get("NUMBA_BOUNDSCHECK") == "1":
    _pad_hftbacktests_event_order()

SIM_CONFIG = """
[[instruments]]
symbol = "btcusdt"
tick_size = 0.1
lot_size = 0.001
start_price = 60000.0

[[instruments]]
symbol = "ethusdt"
tick_size = 0.01
lot_size = 0.001
start_price = 2500.0

[connector]
md_capacity = {md_capacity}
snapshot_interval_ms = 50
cancel_on_bot_exit = {cancel_on_bot_exit}
state_dir = "{state_dir}"
{connector_extra}

[risk]
max_position = {max_position}
max_order_notional = 1000000.0
max_orders_per_second = 1000

[sim]
tick_interval_ms = {tick_ms}
levels = 30
volatility_bp = {vol}
trades_per_tick = {trades}
{extra}
"""


def wait_until(cond, timeout: float, what: str, poll_s: float = 0.05) -> None:
    """Polls `cond()` (no bot to drive) until it holds; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(poll_s)
    raise AssertionError(f"timed out waiting for {what}")


def wait_bot(hbt, cond, timeout: float = 10.0, what: str = "condition") -> None:
    """Drives `hbt` (elapse 20 ms) until `cond()` holds; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hbt.elapse(20_000_000)
        if cond():
            return
    raise AssertionError(f"timed out waiting for {what}")


def wait_lapped(hbt, capacity: int, timeout: float = 30.0) -> None:
    """Waits, without reading the bot's rings, until the connector has written more than
    twice `capacity` market events past the bot's cursor (the ring lapped under it)."""
    from hftlive.layout import MD_WRITE_SEQ

    deadline = time.monotonic() + timeout
    while int(hbt.md_hdr[0][MD_WRITE_SEQ]) - int(hbt.cursor[0]) <= 2 * capacity:
        assert time.monotonic() < deadline, "the connector never lapped the ring"
        time.sleep(0.01)  # polling the state this waits for, bounded


def book_synced(hbt, inst: int = 0) -> bool:
    """The bot's book of `inst` has both sides and is not crossed."""
    import numpy as np

    d = hbt.depth(inst)
    return bool(np.isfinite(d.best_bid) and np.isfinite(d.best_ask) and d.best_bid < d.best_ask)


def wait_session(hbt, name: str, timeout: float = 10.0) -> None:
    """Until connector `name` says its venue session can trade (its `connected` flag)."""
    from hftlive.monitor import ConnectorView

    view = ConnectorView(name)
    try:
        wait_bot(hbt, lambda: view.instruments()[0]["connected"], timeout, "the venue session")
    finally:
        view.close()


def wait_connector_ends_run(proc: subprocess.Popen, hbt, timeout: float = 60.0) -> None:
    """The connector process `proc` exits by itself within `timeout` s, and then the run of
    its bot `hbt` ends (elapse returns non-zero)."""
    wait_until(lambda: proc.poll() is not None, timeout, "the connector to stop")
    wait_until(lambda: hbt.elapse(10_000_000) != 0, 30.0, "the bot's run to end")


def exit_error(proc: subprocess.Popen, text: str) -> str:
    """What `python -m connector` said it stopped for, its exit status checked to be 2
    (a ConfigError): its output's last line, without the "connector: error: " prefix."""
    assert proc.returncode == 2, text[-3000:]
    last = text.strip().splitlines()[-1]
    assert last.startswith("connector: error: "), text[-3000:]
    return last.removeprefix("connector: error: ")


def stop_process(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 20.0) -> int:
    """Sends `sig`, waits up to `timeout`, kills if need be; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


class ConnectorProc:
    """A `python -m connector` child process, stopped (or killed) at teardown."""

    def __init__(self, tmp_path: Path, name: str | None = None, config: str | None = None,
                 **fmt):  # fmt: skip
        self.name = name or f"t{os.getpid()}x{next(_names)}"
        self.cfg = tmp_path / f"{self.name}.toml"
        params = {
            "md_capacity": 65536,
            "max_position": 1.0,
            "tick_ms": 20,
            "extra": "",
            "cancel_on_bot_exit": "true",
            "trades": 2.0,
            "vol": 0.05,
            "state_dir": str(tmp_path / "state"),  # trading states never in the user's home
            "connector_extra": "",  # more [connector] keys
        }
        params.update(fmt)
        self.cfg.write_text(config if config is not None else SIM_CONFIG.format(**params))
        self.log = tmp_path / f"{self.name}.log"
        self.log_args: list[str] = []  # more logging options (--log-format ...)
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> ConnectorProc:
        self._logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "connector", "--name", self.name, "--connector", "sim",
             "--config", str(self.cfg), "--log-level", "INFO", *self.log_args],
            cwd=ROOT, stdout=self._logf, stderr=subprocess.STDOUT,
        )  # fmt: skip
        if wait:
            self.wait_running()
        return self

    def wait_running(self, timeout: float = 60.0) -> None:
        from hftlive.monitor import connector_running

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"connector exited early:\n{self.log.read_text()}")
            if connector_running(self.name, self.proc.pid):  # not a stale segment
                return
            time.sleep(0.05)
        raise TimeoutError(f"connector did not start:\n{self.log.read_text()}")

    def stop(self, sig=signal.SIGTERM, timeout: float = 20.0) -> int:
        return 0 if self.proc is None else stop_process(self.proc, sig, timeout)

    def text(self) -> str:
        return self.log.read_text()

    def remove_segments(self) -> None:
        """Unlinks what a connector that was killed (on purpose) left in /dev/shm."""
        assert self.proc is None or self.proc.poll() is not None
        for p in Path("/dev/shm").glob(f"hftlive.{self.name}.*"):
            p.unlink(missing_ok=True)


@pytest.fixture
def connector(tmp_path):
    """A running sim connector (btcusdt, ethusdt) with a synthetic market."""
    c = ConnectorProc(tmp_path).start()
    yield c
    c.stop()
    c.remove_segments()


@pytest.fixture
def make_connector(tmp_path):
    made: list[ConnectorProc] = []

    def make(**kw) -> ConnectorProc:
        c = ConnectorProc(tmp_path, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()
        c.remove_segments()


def wait_book(hbt, timeout: float = 20.0) -> None:
    """Elapses until the bot's book has both sides. A connector says it is running before
    its venue has published a first book, so a bot built at once may start empty."""
    import math

    deadline = time.monotonic() + timeout
    while not (math.isfinite(hbt.depth(0).best_bid) and math.isfinite(hbt.depth(0).best_ask)):
        assert time.monotonic() < deadline, "the bot's book never got both sides"
        hbt.elapse(20_000_000)


# the same, for bots in child processes (code strings run with run_py)
WAIT_BOOK_SRC = """
import math, time
_deadline = time.monotonic() + 20
while not (math.isfinite(hbt.depth(0).best_bid) and math.isfinite(hbt.depth(0).best_ask)):
    assert time.monotonic() < _deadline, "the bot's book never got both sides"
    hbt.elapse(20_000_000)
"""


def run_py(code: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run Python code in a fresh process (a separate bot), from the repo root."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


class RecordingRouter:
    """In front of a real ConnectorCore in unit tests: what the bots would be told."""

    def __init__(self):
        self.told: list[tuple[int, int, str]] = []

    def broadcast_error(self, kind, code, msg, inst=-1):
        self.told.append((kind, code, msg))


class RecordingShm:
    """In front of a real ConnectorCore in unit tests: the connected flags it set."""

    ring_table = None  # no shared memory: nothing publishes around `publish`

    def __init__(self):
        self.connected: list[bool] = []
        self.published: list[tuple[int, int]] = []  # (instrument, events)

    def set_connected(self, up):
        self.connected.append(up)

    def publish(self, inst, events, n):
        self.published.append((inst, n))


def _children(pid: int) -> list[int]:
    """The live child processes of `pid` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == pid and fields[0] != "Z":  # ppid, state (not a zombie)
            out.append(int(d.name))
    return out


def pytest_sessionfinish(session, exitstatus):
    """A test that failed half-way may have left a connector or an emulator running:
    none outlives the run (each is named on stderr, then stopped)."""
    left = _children(os.getpid())
    for pid in left:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            print(f"\nconftest: stopping a process a test left running: {pid} {cmd[:200]}",
                  file=sys.stderr)  # fmt: skip
            os.kill(pid, signal.SIGTERM)
        except (OSError, ProcessLookupError):
            pass
    deadline = time.monotonic() + 10
    while left and time.monotonic() < deadline:
        left = [p for p in left if p in _children(os.getpid())]
        time.sleep(0.05)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
