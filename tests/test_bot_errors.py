"""A refusal reaches the bot with the venue's raw code and the venue-neutral reason.

The test process plays the connector (tests/inproc.py: a real ShmServer, the real
registration handshake), writes one RESP_ERROR record into the bot's real response ring,
and a real LiveBot reads it: in `LiveError.reason` for its error_handler and in
`hbt.last_error_reason` for njit code.
"""

from __future__ import annotations

import pytest
from numba import njit

from hftlive import (
    ERR_CONNECTION,
    ERR_ORDER,
    REJECT_NONE,
    REJECT_POST_ONLY,
    BotError,
    Instrument,
    LiveBot,
    LiveError,
)
from hftlive.layout import RESP_ERROR
from hftlive.shm import list_segments

from .inproc import TIMEOUT_S, InProcessConnector


@pytest.fixture
def conn():
    c = InProcessConnector()
    try:
        yield c
    finally:
        c.close()


@njit(boundscheck=True)
def wait_for_error(hbt, timeout_ns):
    """What njit code sees of the first error, waiting for it at most timeout_ns."""
    waited = 0
    while hbt.error_count == 0 and waited < timeout_ns:
        if hbt.elapse(1_000_000) != 0:
            break
        waited += 1_000_000
    return hbt.error_count, hbt.last_error_kind, hbt.last_error_code, hbt.last_error_reason


def test_reject_reason_reaches_error_handler_and_njit(conn):
    errors: list[LiveError] = []
    hbt = conn.build_bot(error_handler=errors.append)
    try:
        msg = b"Order would immediately match and take."
        conn.send(conn.slot, kind=RESP_ERROR, err_kind=ERR_ORDER, inst=0, code=-5022,
                  reason=REJECT_POST_ONLY, msg=msg)  # fmt: skip
        n, kind, code, reason = wait_for_error(hbt, int(TIMEOUT_S * 1e9))
        assert (n, kind, code, reason) == (1, ERR_ORDER, -5022, REJECT_POST_ONLY)
        assert [(e.kind, e.code, e.reason, e.asset_no, e.msg) for e in errors] == [
            (ERR_ORDER, -5022, REJECT_POST_ONLY, 0, msg.decode())
        ]
        assert repr(errors[0]).startswith(
            "LiveError(kind=ERR_ORDER, code=-5022, reason=REJECT_POST_ONLY, asset_no=0,"
        )
    finally:
        hbt.close()


def test_a_notice_that_refuses_nothing_has_no_reason():
    e = LiveError(kind=ERR_CONNECTION, code=0, asset_no=-1, msg="venue connection lost")
    assert e.reason == REJECT_NONE
    assert repr(e) == (
        "LiveError(kind=ERR_CONNECTION, code=0, reason=REJECT_NONE, asset_no=-1, "
        "order_id=0, msg='venue connection lost')"
    )


def test_a_build_the_connector_does_not_answer_leaves_nothing_behind(conn):
    """Its slot is freed and its view segment removed, as for a bot that closes."""
    name = conn.server.name
    b = LiveBot.builder().register(Instrument(name, "btcusdt", 0.1, 0.001)).connect_timeout(0.5)
    with pytest.raises(BotError, match="did not answer the registration"):
        b.build()  # nobody acknowledges the slot: the connector's loop is not running
    assert list_segments(f"hftlive.{name}.bot.") == []
    assert [s[0] for s in conn.server.active_slots()] == []


@njit(boundscheck=True)
def _read_asset(hbt, what, a):
    """One of the per-asset reads a strategy makes, of asset `a`."""
    if what == 0:
        return hbt.position(a)
    if what == 1:
        return hbt.depth(a).best_bid
    if what == 2:
        return hbt.state_values(a).balance
    if what == 3:
        return float(len(hbt.orders(a)))
    if what == 4:
        return float(hbt.last_trades(a).shape[0])
    if what == 5:
        return 1.0 if hbt.feed_latency(a) is None else 0.0
    return 1.0 if hbt.order_latency(a) is None else 0.0


READS = ["position", "depth", "state_values", "orders", "last_trades", "feed_latency",
         "order_latency"]  # fmt: skip


@pytest.mark.parametrize("what", range(len(READS)), ids=READS)
def test_reading_an_asset_the_bot_did_not_register_is_an_index_error(conn, what):
    """A strategy backtested on two instruments and run on a bot that registered one: its
    reads of the second are an IndexError, from njit code and from Python, not another
    region of memory read as a position of 0.0 (as position, the latencies and
    last_trades did); the bot's own asset reads as before."""
    hbt = conn.build_bot()
    try:
        assert hbt.num_assets == 1
        _read_asset(hbt, what, 0)
        # depth, state_values and orders index a tuple (numba's own IndexError message)
        says = "not one of this bot's assets" if what in (0, 4, 5, 6) else "out of range"
        for a in (1, 5, -1):
            with pytest.raises(IndexError, match=says):
                _read_asset(hbt, what, a)
            with pytest.raises(IndexError, match=says):
                getattr(hbt, READS[what])(a)
    finally:
        hbt.close()
