"""Helpers of the venue benchmarks: an emulator and a connector as child processes.

Both run exactly as a user runs them (`python -m connector.binancefutures.emulator ...`,
`python -m connector --connector binancefutures ...`; Bybit's likewise), the emulator with
`--bench` (Binance: connector/binancefutures/emulator/blast.py, order stamps and the
pre-encoded blast market; Bybit: order stamps, connector/bybit/emulator/server.py).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench._common import ROOT
from connector.binancefutures.emulator.server import client_url_keys

# CI keeps ../shared beside the repository; the capture is never copied into it
CAPTURE = ROOT.parent / "shared/data/binancefutures/ethusdt_20240808.gz"
KEY, SECRET = "bench-api-key", "bench-secret-not-logged"
KEY_ENV, SECRET_ENV = "BF_BENCH_API_KEY", "BF_BENCH_SECRET"
CLK_TCK = os.sysconf("SC_CLK_TCK")

CONFIG = """
[[instruments]]
symbol = "ethusdt"

[connector]
md_capacity = {md_capacity}
snapshot_interval_ms = 100

[risk]
max_orders_per_second = 100000

[binancefutures]
{url_keys}
api_key_env = "{key_env}"
secret_env = "{secret_env}"
order_entry = "{order_entry}"
client_order_prefix = "b"
# the benchmarks pause the market (or send nothing between parts): no watchdog reconnects
stale_after_s = 120.0
"""


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process so far, in s (from /proc/<pid>/stat; 1/CLK_TCK steps)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def wait_for(cond, timeout: float, what: str, poll_s: float = 0.02, proc=None, log=None):
    """Polls `cond()` until it returns a true value (returned); TimeoutError naming `what`.

    `proc` (a Popen) that exits meanwhile fails at once, with the tail of `log()`."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            tail = log()[-3000:] if log else ""
            raise RuntimeError(f"process exited (code {proc.returncode}) waiting for {what}:\n"
                               f"{tail}")  # fmt: skip
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll_s)


def _stop(proc: subprocess.Popen | None, timeout: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


BYBIT_CONFIG = """
[[instruments]]
symbol = "{symbol}"

[connector]
md_capacity = {md_capacity}
snapshot_interval_ms = 100

[risk]
max_orders_per_second = 100000

[bybit]
rest_url = "{rest}"
ws_public_url = "{ws_public}"
ws_private_url = "{ws_private}"
ws_trade_url = "{ws_trade}"
api_key_env = "{key_env}"
secret_env = "{secret_env}"
order_entry = "{order_entry}"
client_order_prefix = "b"
stale_after_s = 120.0
"""


class Emulator:
    """`python -m <module> --bench MODE` in a child process: a venue's emulator.

    Args:
        bench: its --bench mode ("orders", Binance's "blast").
        module: connector.binancefutures.emulator or connector.bybit.emulator.
        symbols: as the venue spells them (ethusdt, BTCUSDT).
    """

    def __init__(self, bench: str, data: str = "none", start_paused: bool = False,
                 module: str = "connector.binancefutures.emulator",
                 symbols: str = "ethusdt"):  # fmt: skip
        self.dir = tempfile.mkdtemp(prefix="hftlive-bench-emu-")
        self.log = Path(self.dir) / "emulator.log"
        self._logf = open(self.log, "ab")
        cmd = [sys.executable, "-m", module, "--port", "0",
               "--data", data, "--symbols", symbols, "--api-key", KEY, "--secret-env",
               SECRET_ENV, "--bench", bench, "--log-level", "WARNING"]  # fmt: skip
        if start_paused:
            cmd.append("--start-paused")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._logf,
                                     env={**os.environ, SECRET_ENV: SECRET})  # fmt: skip
        self.urls: dict = {}

    def start(self, timeout: float = 30.0) -> Emulator:
        """Waits for the line of URLs it prints once listening."""
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if r else b""
        if not line:
            self.stop()
            raise RuntimeError(f"emulator did not start:\n{self.log.read_text()[-3000:]}")
        self.urls = json.loads(line)
        return self

    def control(self, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.urls["rest"] + path, data=data,
                                     method="POST" if data else "GET")  # fmt: skip
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def cpu_s(self) -> float:
        return proc_cpu_s(self.proc.pid)

    def stop(self) -> None:
        _stop(self.proc, 10.0)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._logf.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class BfConnector:
    """`python -m connector --connector binancefutures` with its key in the environment.

    Args:
        name: connector name (shared memory under /dev/shm/hftlive.<name>.*).
        urls: the emulator's URLs.
        order_entry: "rest" or "ws".
        md_capacity: events per market ring.
        profile_to: run it under cProfile, writing the stats to this file at exit.
    """

    VENUE = "binancefutures"

    def __init__(self, name: str, urls: dict, order_entry: str = "rest",
                 md_capacity: int = 1 << 16, profile_to: str | None = None):  # fmt: skip
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"hftlive-bench-{self.VENUE}-")
        self.cfg = Path(self.dir) / f"{name}.toml"
        self.cfg.write_text(self.config_text(urls, order_entry, md_capacity))
        self.log = Path(self.dir) / f"{name}.log"
        self.profile_to = profile_to
        self.proc: subprocess.Popen | None = None

    def config_text(self, urls: dict, order_entry: str, md_capacity: int) -> str:
        return CONFIG.format(order_entry=order_entry, md_capacity=md_capacity, key_env=KEY_ENV,
                             secret_env=SECRET_ENV, url_keys=client_url_keys(urls))  # fmt: skip

    def check_config(self) -> None:
        """Loads the config as the connector will (ConfigError if it refuses it)."""
        from connector.config import load_config

        load_config(self.cfg, self.VENUE)

    def start(self, timeout: float = 30.0) -> BfConnector:
        """Starts it and waits until its shared memory says RUNNING."""
        self._logf = open(self.log, "ab")
        prof = ["-m", "cProfile", "-o", self.profile_to] if self.profile_to else []
        self.proc = subprocess.Popen(
            [sys.executable, *prof, "-m", "connector", "--name", self.name, "--connector",
             self.VENUE, "--config", str(self.cfg), "--log-level", "INFO"],
            cwd=ROOT, stdout=self._logf, stderr=subprocess.STDOUT,
            env={**os.environ, KEY_ENV: KEY, SECRET_ENV: SECRET},
        )  # fmt: skip
        wait_for(self._running, timeout, f"connector {self.name} to run", proc=self.proc,
                 log=self.text)  # fmt: skip
        return self

    def _running(self) -> bool:
        from hftlive.monitor import connector_running

        return connector_running(self.name, self.proc.pid)

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def cpu_s(self) -> float:
        return proc_cpu_s(self.proc.pid)

    def stop(self) -> int | None:
        """SIGTERM (then SIGKILL); removes segments a killed connector left, and its files."""
        _stop(self.proc, 15.0)
        if self.proc is not None:
            self._logf.close()
        from hftlive.shm import list_segments, path_of

        for s in list_segments(f"hftlive.{self.name}."):
            try:
                os.unlink(path_of(s))
            except FileNotFoundError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
        return None if self.proc is None else self.proc.returncode


class BybitConnector(BfConnector):
    """`python -m connector --connector bybit` (BTCUSDT) with its key in the environment."""

    VENUE = "bybit"

    def config_text(self, urls: dict, order_entry: str, md_capacity: int) -> str:
        return BYBIT_CONFIG.format(**urls, symbol="BTCUSDT", order_entry=order_entry,
                                   md_capacity=md_capacity, key_env=KEY_ENV,
                                   secret_env=SECRET_ENV)  # fmt: skip
