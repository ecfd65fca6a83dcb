"""Order ids are hftbacktest's u64: every one of them works, from Python and from njit.

numba's dispatcher types a Python int as int64 when it fits and then converts every
later int to that specialisation, so once a bot had seen id 1, id 2**64-1 raised
OverflowError and killed the strategy. A bad id (negative, above 2**64-1, not an int)
gets INVALID_ORDER_REQUEST and nothing is sent. A real LiveBot, a real request ring.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from hftlive import GTX, LIMIT, NEW, NONE
from hftlive.constants import INVALID_ORDER_REQUEST, ORDER_REQUEST_IN_PROCESS
from hftlive.layout import REQ_CANCEL, REQ_SUBMIT, RESP_ORDER, order_dtype

from .inproc import TIMEOUT_S, InProcessConnector

TOP = 2**64 - 1
PX, QTY = 50_000.0, 0.001
BAD_IDS = [-1, 2**64, 1.5, float("nan"), 2.0**64, -1.0, "7", True, None, np.int64(-3)]


@pytest.fixture
def conn():
    c = InProcessConnector()
    try:
        yield c
    finally:
        c.close()


def _ack(conn: InProcessConnector, order_id: int) -> None:
    """The connector's answer to a new order: accepted, resting (NEW, no request pending)."""
    o = np.zeros(1, order_dtype)
    o["order_id"], o["qty"], o["leaves_qty"] = order_id, QTY, QTY
    o["price_tick"], o["tick_size"] = round(PX / 0.1), 0.1
    o["status"], o["req"], o["side"], o["time_in_force"] = NEW, NONE, 1, GTX
    o["exch_timestamp"] = 1
    conn.send(conn.slot, kind=RESP_ORDER, inst=0, order=o[0])


def test_any_uint64_id_from_python_and_bad_ids_get_13(conn):
    hbt = conn.build_bot()
    try:
        # id 1 first: the int64 specialisation that made the bigger ids overflow
        # (hftbacktest's examples pass integral floats: 2.0**62 is 2**62 exactly)
        for oid in (1, TOP, 2.0**62, np.uint64(TOP - 1)):
            assert hbt.submit_buy_order(0, oid, PX, QTY, GTX, LIMIT, False) == 0
        reqs = conn.requests()
        assert reqs["kind"].tolist() == [REQ_SUBMIT] * 4
        assert reqs["order"]["order_id"].tolist() == [1, TOP, 2**62, TOP - 1]
        assert TOP in hbt.orders(0) and hbt.orders(0).get(TOP).order_id == TOP
        # a request in flight, as the backtester: 11, not a crash
        assert hbt.cancel(0, TOP, False) == ORDER_REQUEST_IN_PROCESS
        _ack(conn, TOP)
        assert hbt.wait_order_response(0, TOP, int(TIMEOUT_S * 1e9)) == 0
        assert hbt.orders(0).get(TOP).status == NEW
        assert hbt.cancel(0, TOP, False) == 0
        reqs = conn.requests()
        assert (reqs["kind"].tolist(), reqs["order"]["order_id"].tolist()) == ([REQ_CANCEL], [TOP])

        for bad in BAD_IDS:
            assert hbt.submit_buy_order(0, bad, PX, QTY, GTX, LIMIT, False) == 13, bad
            assert hbt.submit_sell_order(0, bad, PX, QTY, GTX, LIMIT, False) == 13, bad
            assert hbt.cancel(0, bad, False) == INVALID_ORDER_REQUEST, bad
            assert hbt.modify(0, bad, PX, QTY, False) == INVALID_ORDER_REQUEST, bad
            assert hbt.wait_order_response(0, bad, 1) == INVALID_ORDER_REQUEST, bad
            assert hbt.orders(0).get(bad) is None and bad not in hbt.orders(0), bad
        assert len(conn.requests()) == 0  # nothing was sent
        assert len(hbt.orders(0)) == 4
    finally:
        hbt.close()


@njit(boundscheck=True)
def _submit_from_njit(hbt, big, negative, fraction):
    return (
        hbt.submit_buy_order(0, big, PX, QTY, GTX, LIMIT, False),
        hbt.submit_buy_order(0, negative, PX, QTY, GTX, LIMIT, False),
        hbt.submit_buy_order(0, fraction, PX, QTY, GTX, LIMIT, False),
        hbt.submit_buy_order(0, 5, PX, QTY, GTX, LIMIT, False),
        hbt.submit_buy_order(0, 6.0, PX, QTY, GTX, LIMIT, False),
        big in hbt.orders(0),
    )


def test_njit_strategy_ids_uint64_and_a_negative_one_is_refused(conn):
    hbt = conn.build_bot()
    try:
        rcs = _submit_from_njit(hbt, np.uint64(TOP), np.int64(-5), 2.5)
        assert rcs == (0, INVALID_ORDER_REQUEST, INVALID_ORDER_REQUEST, 0, 0, True)
        assert conn.requests()["order"]["order_id"].tolist() == [TOP, 5, 6]
    finally:
        hbt.close()
