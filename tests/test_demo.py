"""The README's first command: the demo trades on the sim venue and ends with a summary."""

import re
import subprocess
import sys

import pytest

from .conftest import ROOT


def test_demo_runs_and_trades(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "hftlive.demo", "--seconds", "4", "--record", str(tmp_path / "r.npz")],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "bot summary: trades" in r.stdout and "records written" in r.stdout
    assert (tmp_path / "r.npz").exists()
    # stdout is a pipe here, not a terminal: the status comes as whole lines, no "\r"
    assert "\r" not in r.stdout
    lines = r.stdout.splitlines()
    compiling = [ln for ln in lines if ln.startswith("compiling the strategy (numba")]
    status = [ln for ln in lines if ln.startswith("mid ")]
    assert compiling and status, r.stdout
    # while numba compiles it says so, instead of a status line of NaNs
    assert "nan" not in r.stdout.lower(), r.stdout
    for ln in status:
        assert len(ln) < 120 and "PnL" in ln and "trades" in ln
        assert "ms (simulated)" in ln  # the sim venue's feed latency is not a measurement
    assert lines.index(compiling[-1]) < lines.index(status[0])


@pytest.mark.parametrize("venue, what", [
    ("binance", "Binance USD-M connector against the loopback emulator"),
    # the sim on the Binance emulator's live market (public streams and snapshots only):
    # the grid bot's orders are filled by the sim's engine
    ("paper", "paper-trading on the Binance USD-M emulator's live market"),
])
def test_demo_trades_through_binance_or_paper_trades_on_its_emulator(tmp_path, venue, what):
    r = subprocess.run(
        [sys.executable, "-m", "hftlive.demo", "--seconds", "6", "--venue", venue,
         "--record", str(tmp_path / "r.npz")],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert what in r.stdout
    summary = r.stdout[r.stdout.index("bot summary: trades") :]
    assert int(summary.split()[3].rstrip(",")) > 0  # it traded through the whole stack
    assert (tmp_path / "r.npz").exists()


def test_demo_trades_through_the_bybit_connector_and_emulator(tmp_path):
    """The grid bot on Bybit's connector and emulator: it fills, and its bursts of orders
    are throttled by the connector, never refused by the venue with 10006."""
    r = subprocess.run(
        [sys.executable, "-m", "hftlive.demo", "--seconds", "6", "--venue", "bybit",
         "--record", str(tmp_path / "r.npz")],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    out = r.stdout + r.stderr
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "Bybit v5 connector against the loopback emulator" in r.stdout
    summary = r.stdout[r.stdout.index("bot summary: trades") :]
    assert int(summary.split()[3].rstrip(",")) > 0  # it traded through the whole stack
    assert "position" in summary and "equity" in summary
    # the venue's rate-limit code, not a price that contains its digits ("mid 100060.5")
    assert not re.search(r"(?<![\d.])10006(?![\d.])", out), out[-3000:]
    assert (tmp_path / "r.npz").exists()
