"""Opt-in: each real venue's connector against the venue's testnet.

    BF_API_KEY=... BF_SECRET=... python -m pytest -m live tests/test_live.py -k binance
    BYBIT_API_KEY=... BYBIT_SECRET=... python -m pytest -m live tests/test_live.py -k bybit

Uses the venue's example config as a user would (examples/binancefutures.toml,
examples/bybit.toml: their URLs are the testnets'). Places one post-only BTCUSDT buy far
below the market and cancels it; nothing can fill. Needs a network and testnet keys
(https://testnet.binancefuture.com, https://testnet.bybit.com); never runs in CI.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hftlive import CANCELED, GTX, LIMIT, NEW, Instrument, LiveBot

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.live


def _wait(hbt, cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hbt.elapse(50_000_000)
        if cond():
            return
    raise AssertionError(f"timed out waiting for {what}")


# venue -> (its example config, the environment variables it reads, BTCUSDT's symbol there)
VENUES = {
    "binancefutures": ("examples/binancefutures.toml", ("BF_API_KEY", "BF_SECRET"), "btcusdt"),
    "bybit": ("examples/bybit.toml", ("BYBIT_API_KEY", "BYBIT_SECRET"), "BTCUSDT"),
}


@pytest.mark.parametrize("venue", list(VENUES))
def test_testnet_book_syncs_and_a_post_only_order_rests_and_cancels(tmp_path, venue):
    config, keys, symbol = VENUES[venue]
    missing = [k for k in keys if not os.environ.get(k)]
    assert not missing, f"set {', '.join(missing)} to testnet keys to run the live tests"
    name = f"live{venue[:2]}{os.getpid()}"
    log = tmp_path / "connector.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "connector", "--name", name, "--connector", venue,
             "--config", str(ROOT / config)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    hbt = None
    try:
        b = LiveBot.builder().register(Instrument(name, symbol, 0.1, 0.001))
        hbt = b.connect_timeout(60.0).build()
        d = hbt.depth(0)
        _wait(hbt, lambda: np.isfinite(d.best_bid) and d.best_bid < d.best_ask, 60, "a book")
        px = round(d.best_bid * 0.9, 1)  # far from the touch, inside the venues' price bands
        qty = math.ceil(110.0 / px / 0.001) * 0.001  # above Binance's 100 USDT minimum notional
        assert hbt.submit_buy_order(0, 1, px, qty, GTX, LIMIT, False) == 0
        _wait(hbt, lambda: hbt.orders(0).get(1).status == NEW, 30, "NEW")
        assert hbt.cancel(0, 1, False) == 0
        _wait(hbt, lambda: hbt.orders(0).get(1).status == CANCELED, 30, "CANCELED")
    finally:
        if hbt is not None:
            hbt.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        print(log.read_text())
