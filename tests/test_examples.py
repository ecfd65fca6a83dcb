"""examples/run_grid.py, the README's code sample, run against a real sim connector."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from hftlive.monitor import BotView, ConnectorView
from hftlive.recorder import record_dtype

from .conftest import ROOT, stop_process

RUN_GRID = ROOT / "examples" / "run_grid.py"


def _readme_sample() -> str:
    readme = (ROOT / "README.md").read_text()
    return re.search(r"```python\n(.*?)```", readme, re.S).group(1)


def test_the_readme_sample_is_run_grid_py():
    """The README's first Python block is run_grid.py's two marked parts (the second
    dedented out of main()), character for character."""
    src = RUN_GRID.read_text()
    part1 = src.split("# --- the README's sample, part 1\n")[1].split("# --- end of part 1")[0]
    part2 = src.split("    # --- the README's sample, part 2\n")[1].split(
        "    # --- end of part 2"
    )[0]
    assert _readme_sample() == part1.strip() + "\n\n\n" + textwrap.dedent(part2).strip() + "\n"


def _wait_for(cond, what: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, f"run_grid.py exited early while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _quoting(name: str, bot_id: int) -> bool:
    try:
        v = BotView(name, bot_id)
    except Exception:
        return False  # not built yet (numba compiles the strategy first)
    try:
        return v.status(0).open_orders > 0
    finally:
        v.close()


def test_run_grid_trades_on_a_sim_connector_and_saves_a_record(connector, tmp_path):
    record = tmp_path / "grid.npz"
    out = tmp_path / "run_grid.out"
    # PYTHONPATH: this checkout's packages, whatever `pip install -e` points at
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(out, "w") as f:
        bot = subprocess.Popen(
            [sys.executable, str(RUN_GRID), connector.name, "--id", "777", "--record",
             str(record)], cwd=tmp_path, env=env, stdout=f, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_for(lambda: _quoting(connector.name, 777), "the bot to quote", bot)
        # the ways the README gives to find a bot's id
        assert "bot id 777 on connector" in out.read_text()
        assert 777 in BotView.list(connector.name)
        view = ConnectorView(connector.name)
        assert [b["bot_id"] for b in view.bots()] == [777]
        view.close()
        # the order hook prints each ack (NONE 0 -> NEW 1): the whole grid, 5 bids 5 asks
        _wait_for(lambda: out.read_text().count("status 0 -> 1,") >= 10, "the grid's acks", bot)
        # a few seconds of the strategy's loop (it records every 100 ms), by the bot's own
        # heartbeat, so that the record has something for hftbacktest.stats to resample
        view = BotView(connector.name, 777)
        hb0 = int(view.header[0]["heartbeat_ns"])
        _wait_for(lambda: int(view.header[0]["heartbeat_ns"]) - hb0 > 3e9, "3 s of trading", bot)
        view.close()
        # the connector stops: it cancels the bot's orders, the error handler hears of the
        # shutdown, elapse() returns 1 and the script saves its record
        assert connector.stop(signal.SIGINT) == 0
        assert bot.wait(60) == 0, out.read_text()
    finally:
        stop_process(bot)
    text = out.read_text()
    assert text.count("status 1 -> 4,") >= 1  # the hook printed the cancels (NEW -> CANCELED)
    assert re.search(r"error: kind \d+ code -?\d+ order \d+: .*", text), text
    assert re.search(r"^\d+ records saved to ", text, re.M), text
    rec = np.load(record)["0"]
    assert rec.dtype == record_dtype and len(rec) >= 20
    assert np.all(np.isfinite(rec["price"])) and np.all(np.diff(rec["timestamp"]) > 0)
    # ... and hftbacktest.stats reads it, as the README shows
    stats = pytest.importorskip("hftbacktest.stats")
    summary = stats.LinearAssetRecord(rec).resample("1s").stats(book_size=10_000).summary()
    assert len(summary) == 1
