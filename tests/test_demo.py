"""The README's first command: the demo trades on the sim venue and ends with a summary."""

import subprocess
import sys

from .conftest import ROOT


def test_demo_runs_and_trades(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "hftlive.demo", "--seconds", "4", "--record", str(tmp_path / "r.npz")],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "bot summary: trades" in r.stdout and "records written" in r.stdout
    assert "PnL" in r.stdout and "mid" in r.stdout
    assert (tmp_path / "r.npz").exists()


def test_demo_trades_through_the_binance_connector_and_emulator(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "hftlive.demo", "--seconds", "4", "--venue", "binance",
         "--record", str(tmp_path / "r.npz")],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "Binance USD-M connector against the loopback emulator" in r.stdout
    summary = r.stdout[r.stdout.index("bot summary: trades") :]
    assert int(summary.split()[3].rstrip(",")) > 0  # it traded through the whole stack
    assert (tmp_path / "r.npz").exists()
