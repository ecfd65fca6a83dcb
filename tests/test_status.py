"""`python -m hftlive status`: table, --json and --check against real connector and bot
processes' shared memory."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np

from hftlive import GTX, LIMIT, Instrument, LiveBot
from hftlive.status import DEGRADED, DOWN, HEALTHY, connector_status, health

from .conftest import ROOT, wait_book, wait_until


def status(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hftlive", "status", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_a_running_connector_and_bot_are_shown_and_healthy(connector):
    hbt = LiveBot.builder().register(Instrument(connector.name, "btcusdt", 0.1, 0.001)).id(7).build()
    try:
        wait_book(hbt)
        bid = hbt.depth(0).best_bid
        assert hbt.submit_buy_order(0, 1, round(bid * 0.98, 1), 0.001, GTX, LIMIT, True) == 0
        assert hbt.elapse(1_000_000) == 0
        r = status(connector.name, "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["health"] == HEALTHY, doc["reason"]
        (c,) = doc["connectors"]
        assert (c["connector"], c["venue"], c["state"], c["alive"]) == (
            connector.name, "sim", "running", True)  # fmt: skip
        assert [i["symbol"] for i in c["instruments"]] == ["btcusdt", "ethusdt"]
        assert c["instruments"][0]["connected"] and c["instruments"][0]["events"] > 0
        (b,) = c["bots"]
        assert (b["bot_id"], b["alive"]) == (7, True)
        a = b["assets"][0]
        assert a["open_orders"] == 1 and np.isfinite(a["mid"]) and a["order_latency_ms"] > 0
        assert c["instruments"][0]["mid"] == a["mid"]
        table = status(connector.name)
        assert table.returncode == 0 and f"connector {connector.name}" in table.stdout
        assert "bot 7" in table.stdout and "healthy:" in table.stdout
        check = status(connector.name, "--check")
        assert (check.returncode, check.stdout.split(":")[0]) == (0, "healthy")

        # a bot that stops calling elapse/wait is stalled: degraded, with its id
        seen = []

        def stalled():
            seen.append(status(connector.name, "--check", "--stale-s", "0.3"))
            return seen[-1].returncode == DEGRADED

        wait_until(stalled, 30, "the idle bot to show as stalled")
        assert "bot 7 has not called elapse/wait" in seen[-1].stdout
    finally:
        hbt.close()


def test_a_killed_connector_is_down(connector):
    assert health([connector_status(connector.name)])[0] == HEALTHY
    connector.stop(signal.SIGKILL)
    r = status(connector.name, "--check")
    assert r.returncode == DOWN and f"{connector.name}: connector process" in r.stdout
    assert "is dead" in r.stdout


def test_no_connector_or_an_unknown_one_is_down():
    r = status("no-such-connector-anywhere", "--check")
    assert r.returncode == DOWN and "unreachable" in r.stdout
    assert json.loads(status("no-such-connector-anywhere", "--json").stdout)["health"] == DOWN
