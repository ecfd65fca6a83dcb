"""Trading states and the kill switch: `python -m hftlive halt|reduce|resume` against a
real sim connector and a real bot; the rules of connector.trading in memory."""

from __future__ import annotations

import json
import subprocess
import sys

import numba
import pytest

from connector import codes
from connector.trading import TradingStates, refusal
from hftlive import GTX, IOC, LIMIT, MARKET, Instrument, LiveBot
from hftlive.constants import (
    CANCELED,
    ERR_ORDER,
    ERR_TRADING_STATE,
    EXPIRED,
    FILLED,
    NEW,
    REJECT_HALTED,
    REJECT_REDUCE_ONLY,
    TRADING_ACTIVE,
    TRADING_HALTED,
    TRADING_REDUCING,
)

from .conftest import ROOT, wait_book


# ---------------------------------------------------------------------- the rules
@pytest.mark.parametrize(
    "state, pos, side, qty, open_same, refused",
    [
        (TRADING_ACTIVE, 0.0, 1, 1.0, 0.0, None),
        (TRADING_HALTED, 0.0, 1, 1.0, 0.0, codes.HALTED),
        (TRADING_HALTED, 1.0, -1, 1.0, 0.0, codes.HALTED),
        (TRADING_REDUCING, 0.0, 1, 1.0, 0.0, codes.REDUCE_ONLY),  # flat: nothing reduces
        (TRADING_REDUCING, 2.0, 1, 1.0, 0.0, codes.REDUCE_ONLY),  # same side grows
        (TRADING_REDUCING, 2.0, -1, 1.0, 0.0, None),  # opposite side, stays long
        (TRADING_REDUCING, 2.0, -1, 2.0, 0.0, None),  # to flat exactly
        (TRADING_REDUCING, 2.0, -1, 3.0, 0.0, codes.REDUCE_ONLY),  # would flip short
        (TRADING_REDUCING, 2.0, -1, 1.5, 1.0, codes.REDUCE_ONLY),  # with open sells, flips
        (TRADING_REDUCING, -2.0, 1, 1.0, 0.0, None),
    ],
)  # fmt: skip
def test_refusal_table(state, pos, side, qty, open_same, refused):
    got = refusal(state, pos, side, qty, open_same)
    assert (got[0] if got else None) == refused


def test_reducing_modifies_may_not_grow_and_halted_refuses_them():
    assert refusal(TRADING_REDUCING, 1.0, -1, 0.5, 0, modify_grows=False, modify=True) is None
    assert refusal(TRADING_REDUCING, 1.0, -1, 0.5, 0, True, modify=True)[0] == codes.REDUCE_ONLY
    assert refusal(TRADING_HALTED, 1.0, -1, 0.5, 0, False, modify=True)[0] == codes.HALTED


def test_states_persist_and_an_unreadable_file_starts_halted(tmp_path):
    path = tmp_path / "c.trading.json"
    s = TradingStates(path)
    assert (s.connector, s.of(7)) == (TRADING_ACTIVE, TRADING_ACTIVE) and not path.exists()
    s.set(TRADING_REDUCING, 7)
    s.set(TRADING_HALTED, None)
    assert TradingStates(path).of(7) == TRADING_HALTED
    s.set(TRADING_ACTIVE, None)
    again = TradingStates(path)
    assert (again.connector, again.of(7), again.of(8)) == (TRADING_ACTIVE, TRADING_REDUCING, 0)
    s.set(TRADING_ACTIVE, 7)
    assert not path.exists()  # everything active: nothing kept
    path.write_text("{not json")
    assert TradingStates(path).connector == TRADING_HALTED
    path.write_text(json.dumps({"connector": 9}))
    assert TradingStates(path).connector == TRADING_HALTED


# ---------------------------------------------------------------------- end to end
def hftlive(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hftlive", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def _bot(name: str, bot_id: int, errors: list):
    return (LiveBot.builder().register(Instrument(name, "btcusdt", 0.1, 0.001)).id(bot_id)
            .error_handler(errors.append).build())  # fmt: skip


@numba.njit(boundscheck=True)
def _njit_state(hbt):
    return hbt.trading_state  # what a strategy reads in its loop


def _notices(errors: list) -> list[int]:
    """The trading states a bot was told of, in order."""
    return [e.code for e in errors if e.kind == ERR_TRADING_STATE]


def _until(hbt, cond, what: str, timeout_s: float = 20.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if cond():
            return
        hbt.elapse(20_000_000)
    raise AssertionError(f"timed out waiting for {what}")


def test_halt_reduce_resume_change_what_a_running_bot_can_do(make_connector):
    c = make_connector(max_position=1.0).start()
    errors: list = []
    hbt = _bot(c.name, 11, errors)
    try:
        wait_book(hbt)
        bid = hbt.depth(0).best_bid
        low = round(bid * 0.98, 1)
        assert hbt.submit_buy_order(0, 1, low, 0.001, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(1).status == NEW

        r = hftlive("halt", c.name)
        assert r.returncode == 0 and "halted" in r.stdout, r.stderr
        _until(hbt, lambda: _notices(errors), "the notice")
        assert _notices(errors) == [TRADING_HALTED]
        assert hbt.trading_state == TRADING_HALTED and _njit_state(hbt) == TRADING_HALTED
        st = json.loads(hftlive("status", c.name, "--json").stdout)["connectors"][0]
        assert st["trading_state"] == "halted" and st["bots"][0]["trading_state"] == "halted"

        # a new order and a modify are refused by the connector; a cancel still goes
        assert hbt.submit_buy_order(0, 2, low, 0.001, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(2).status == EXPIRED
        e = [e for e in errors if e.kind == ERR_ORDER][-1]
        assert (e.code, e.reason, e.order_id) == (codes.HALTED, REJECT_HALTED, 2)
        assert hbt.modify(0, 1, round(low - 1, 1), 0.001, True) == 0
        assert [e for e in errors if e.kind == ERR_ORDER][-1].code == codes.HALTED
        assert hbt.orders(0).get(1).price_tick == round(low / 0.1)
        assert hbt.cancel(0, 1, True) == 0
        assert hbt.orders(0).get(1).status == CANCELED

        # resume, take a position, then reducing: only a sell that cannot flip it passes
        assert hftlive("resume", c.name).returncode == 0
        ask = hbt.depth(0).best_ask
        assert hbt.submit_buy_order(0, 3, ask, 0.002, IOC, MARKET, True) == 0
        _until(hbt, lambda: hbt.orders(0).get(3).status == FILLED, "the market buy")
        assert hbt.position(0) == pytest.approx(0.002)
        assert hftlive("reduce", c.name, "--bot", "11").returncode == 0
        _until(hbt, lambda: _notices(errors)[-1] == TRADING_REDUCING, "the reducing notice")
        assert hbt.trading_state == TRADING_REDUCING
        assert _notices(errors) == [TRADING_HALTED, TRADING_ACTIVE, TRADING_REDUCING]
        assert hbt.submit_buy_order(0, 4, low, 0.001, GTX, LIMIT, True) == 0
        e = [e for e in errors if e.kind == ERR_ORDER][-1]
        assert (e.code, e.reason, e.order_id) == (codes.REDUCE_ONLY, REJECT_REDUCE_ONLY, 4)
        high = round(hbt.depth(0).best_ask * 1.02, 1)
        assert hbt.submit_sell_order(0, 5, high, 0.003, GTX, LIMIT, True) == 0  # would flip
        assert hbt.orders(0).get(5).status == EXPIRED
        assert hbt.submit_sell_order(0, 6, high, 0.002, GTX, LIMIT, True) == 0  # to flat
        assert hbt.orders(0).get(6).status == NEW

        # halt --cancel for this bot: its open orders go; resume --bot: active again
        r = hftlive("halt", c.name, "--bot", "11", "--cancel")
        assert r.returncode == 0 and "cancelled" in r.stdout
        _until(hbt, lambda: hbt.orders(0).get(6).status == CANCELED, "the cancel of order 6")
        assert hftlive("resume", c.name, "--bot", "11").returncode == 0
        _until(hbt, lambda: _notices(errors)[-1] == TRADING_ACTIVE, "the active notice")
        assert _notices(errors)[-3:] == [TRADING_REDUCING, TRADING_HALTED, TRADING_ACTIVE]
        assert hbt.submit_buy_order(0, 7, low, 0.001, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(7).status == NEW
    finally:
        hbt.close()
    log = c.text()
    # the refused orders never reached the venue: no venue report in the order journal
    for oid in (2, 4, 5):
        assert f"id={oid} btcusdt refused by the connector" in log
        assert f"id={oid} btcusdt key=" not in log


def test_a_halt_survives_a_connector_restart_until_resumed(make_connector):
    c = make_connector().start()
    assert hftlive("halt", c.name).returncode == 0
    c.stop()
    c.start()  # the same name and state_dir
    r = hftlive("status", c.name, "--json")
    assert json.loads(r.stdout)["connectors"][0]["trading_state"] == "halted"
    errors: list = []
    hbt = _bot(c.name, 12, errors)
    try:
        wait_book(hbt)
        # a bot that registers with a halted connector is told at once
        _until(hbt, lambda: _notices(errors), "the notice")
        assert _notices(errors) == [TRADING_HALTED]
        bid = hbt.depth(0).best_bid
        assert hbt.submit_buy_order(0, 1, round(bid * 0.98, 1), 0.001, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(1).status == EXPIRED
        assert hftlive("resume", c.name).returncode == 0
        assert hbt.submit_buy_order(0, 2, round(bid * 0.98, 1), 0.001, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(2).status == NEW
    finally:
        hbt.close()


def test_commands_to_a_missing_connector_are_clear_errors():
    r = hftlive("halt", "no-such-connector-here")
    assert r.returncode == 2 and "no connector 'no-such-connector-here'" in r.stderr
