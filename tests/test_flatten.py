"""Flatten: a bot that leaves, a connector that stops, and `python -m hftlive flatten`
close positions with reduce-only orders; real sim connector, real bots."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from hftlive import GTX, IOC, LIMIT, MARKET, Instrument, LiveBot
from hftlive.constants import ERR_TRADING_STATE, FILLED, NEW, TRADING_HALTED
from hftlive.monitor import ConnectorView

from .conftest import ROOT, wait_book, wait_until

FLATTEN = "flatten_on_shutdown = true\nflatten_timeout_s = 5.0"


def _account_position(name: str) -> float:
    v = ConnectorView(name)
    try:
        return v.instruments()[0]["account_position"]
    finally:
        v.close()


def _bot(name: str, bot_id: int, errors: list | None = None):
    b = LiveBot.builder().register(Instrument(name, "btcusdt", 0.1, 0.001)).id(bot_id)
    if errors is not None:
        b = b.error_handler(errors.append)
    return b.build()


def _buy(hbt, oid: int, qty: float) -> None:
    assert hbt.submit_buy_order(0, oid, hbt.depth(0).best_ask, qty, IOC, MARKET, True) == 0
    for _ in range(500):
        if hbt.orders(0).get(oid).status == FILLED:
            return
        hbt.elapse(20_000_000)
    raise AssertionError("the market buy did not fill")


def test_a_bot_that_leaves_is_flattened(make_connector):
    c = make_connector(connector_extra=FLATTEN).start()
    hbt = _bot(c.name, 41)
    try:
        wait_book(hbt)
        _buy(hbt, 1, 0.003)
        wait_until(lambda: _account_position(c.name) == pytest.approx(0.003), 20, "the position")
    finally:
        hbt.close()
    wait_until(lambda: "flatten: bot 41 is flat" in c.text(), 30, "the flatten")
    wait_until(lambda: abs(_account_position(c.name)) < 1e-12, 10, "the venue's position flat")
    assert "reduce-only IOC" in c.text()


def test_flatten_command_halts_cancels_and_closes_a_running_bot(make_connector):
    c = make_connector().start()  # flatten_on_shutdown off: the command alone
    errors: list = []
    hbt = _bot(c.name, 42, errors)
    try:
        wait_book(hbt)
        _buy(hbt, 1, 0.002)
        px = round(hbt.depth(0).best_bid * 0.98, 1)
        assert hbt.submit_buy_order(0, 2, px, 0.001, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(2).status == NEW
        r = subprocess.run([sys.executable, "-m", "hftlive", "flatten", c.name, "--bot", "42"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert r.returncode == 0 and "positions being closed" in r.stdout, r.stderr
        for _ in range(1000):
            if hbt.position(0) == pytest.approx(0.0, abs=1e-12):
                break
            hbt.elapse(20_000_000)
        assert hbt.position(0) == pytest.approx(0.0, abs=1e-12)
        assert hbt.orders(0).get(2).status != NEW  # cancelled first
        assert [e.code for e in errors if e.kind == ERR_TRADING_STATE] == [TRADING_HALTED]
        # the connector's flatten order is in the bot's table, with an id of its own range
        ids, it = [], hbt.orders(0).values()
        while it.has_next():
            ids.append(int(it.get().order_id))
        assert any(i >= 1 << 63 for i in ids), ids
    finally:
        hbt.close()
    wait_until(lambda: "flatten: bot 42 is flat" in c.text(), 20, "the flatten log")
    wait_until(lambda: abs(_account_position(c.name)) < 1e-12, 10, "the venue's position flat")


def test_a_stopping_connector_flattens_and_says_what_it_could_not_close(make_connector):
    c = make_connector(connector_extra=FLATTEN).start()
    hbt = _bot(c.name, 43)
    try:
        wait_book(hbt)
        _buy(hbt, 1, 0.002)
        assert c.stop(signal.SIGTERM) == 0
    finally:
        hbt.close()
    log = c.text()
    assert "flatten: bot 43 is flat" in log, log[-3000:]
