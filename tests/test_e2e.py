"""End to end with real processes: connectors on the sim venue, bots in this process and
in child processes, real shared memory, real numba."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from numba import njit

import hftlive
from connector.matching import REJECT_GTX_WOULD_CROSS
from hftlive import GTX, LIMIT, WAIT_SLEEP, WAIT_SPIN, BotError, Instrument, LiveBot, botfn
from hftlive._sys import rdtsc
from hftlive.constants import (
    CONNECTOR_LOST,
    ERR_BOOK_RESYNC,
    ERR_CONNECTOR,
    ERR_ORDER,
    INSTRUMENT_NOT_FOUND,
    INVALID_ORDER_REQUEST,
    ORDER_ID_EXIST,
    ORDER_NOT_FOUND,
    REJECT_POST_ONLY,
    REJECT_RISK_LIMIT,
)
from hftlive.layout import BOT_HEARTBEAT, C_LAST_TSC, C_SEEN_TSC, C_SKIPS, SPSC_WRITE
from hftlive.monitor import BotView, ConnectorView

from .conftest import ROOT, WAIT_BOOK_SRC, run_py, wait_book, wait_lapped


def _bot(name, symbol="btcusdt", **kw):
    b = LiveBot.builder().register(Instrument(name, symbol, 0.1 if symbol == "btcusdt" else 0.01,
                                              0.001))  # fmt: skip
    for k, v in kw.items():
        getattr(b, k)(v)
    return b.build()


OTHER_BOT = """
import sys
from hftlive import LiveBot, Instrument, GTX, LIMIT
hbt = LiveBot.builder().register(Instrument("{name}", "btcusdt", 0.1, 0.001)).id(2).build()
{wait_book}
px = hbt.depth(0).best_bid * 0.98
assert hbt.submit_buy_order(0, 1, px, 0.003, GTX, LIMIT, True) == 0
print("OTHER", len(hbt.orders(0)), hbt.orders(0).get(1).qty, flush=True)
sys.stdin.readline()  # attached, its order resting, while the other bot trades
print("OTHER AFTER", len(hbt.orders(0)), hbt.orders(0).get(1).qty, flush=True)
hbt.close()
"""


def test_two_bots_on_one_connector_each_see_only_their_orders(connector):
    other = subprocess.Popen(
        [sys.executable, "-c", OTHER_BOT.format(name=connector.name, wait_book=WAIT_BOOK_SRC)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        first = other.stdout.readline()  # once its order rests (or "" if it failed)
        assert first == "OTHER 1 0.003\n", first or other.stderr.read()
        _two_bots_second(connector)
        out, err = other.communicate("go on\n", timeout=60)
        # the other bot's table never saw this bot's orders, though both used order id 1
        assert other.returncode == 0 and out == "OTHER AFTER 1 0.003\n", out + err
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()


def _two_bots_second(connector):
    hbt = _bot(connector.name, id=1)
    try:
        wait_book(hbt)
        px = hbt.depth(0).best_bid * 0.97
        assert hbt.submit_buy_order(0, 1, px, 0.005, GTX, LIMIT, True) == 0  # same id, own bot
        assert hbt.submit_buy_order(0, 2, px, 0.005, GTX, LIMIT, True) == 0
        hbt.elapse(200_000_000)
        orders = hbt.orders(0)
        assert len(orders) == 2 and orders.get(1).qty == 0.005
        view = BotView(connector.name, 1)
        assert sorted(view.orders(0)["order_id"]) == [1, 2]  # a notebook sees the same
        view.close()
    finally:
        hbt.close()


def test_bad_requests_get_their_codes_and_send_nothing(connector):
    hbt = _bot(connector.name)
    try:
        wait_book(hbt)
        view = ConnectorView(connector.name)
        assert [i["connected"] for i in view.instruments()] == [True, True]  # sim: always
        view.close()
        px = hbt.depth(0).best_bid * 0.98
        assert hbt.submit_buy_order(0, 1, px, 0.001, GTX, LIMIT, True) == 0
        sent = int(hbt.req_hdr[0][SPSC_WRITE])  # the request ring's write sequence
        assert hbt.submit_buy_order(3, 5, px, 0.001, GTX, LIMIT, False) == INSTRUMENT_NOT_FOUND
        assert hbt.submit_buy_order(0, 1, px, 0.001, GTX, LIMIT, False) == ORDER_ID_EXIST
        assert hbt.cancel(0, 77, False) == ORDER_NOT_FOUND
        assert hbt.modify(0, 77, px, 0.001, False) == ORDER_NOT_FOUND
        for price, qty in [(px, 0.0), (px, -1.0), (px, np.nan), (px, np.inf), (0.0, 0.001),
                           (-px, 0.001), (np.nan, 0.001), (np.inf, 0.001)]:  # fmt: skip
            assert (
                hbt.submit_sell_order(0, 9, price, qty, GTX, LIMIT, False) == INVALID_ORDER_REQUEST
            )
        assert hbt.submit_sell_order(0, 9, px, 0.001, 7, LIMIT, False) == INVALID_ORDER_REQUEST
        assert hbt.submit_sell_order(0, 9, px, 0.001, GTX, 5, False) == INVALID_ORDER_REQUEST
        assert hbt.modify(0, 1, np.nan, 0.001, False) == INVALID_ORDER_REQUEST
        assert int(hbt.req_hdr[0][SPSC_WRITE]) == sent  # nothing reached the connector
        assert len(hbt.orders(0)) == 1 and 9 not in hbt.orders(0)
    finally:
        hbt.close()


def test_risk_limits_reject_with_codes_and_callbacks_run(make_connector):
    c = make_connector(max_position=0.01).start()
    errors, updates = [], []
    hbt = _bot(c.name, error_handler=errors.append,
               order_recv_hook=lambda prev, new: updates.append((int(prev["status"]),
                                                                 int(new["status"]))))  # fmt: skip
    try:
        wait_book(hbt)
        px = hbt.depth(0).best_bid * 0.98
        assert hbt.submit_buy_order(0, 1, px, 0.02, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(1).status == hftlive.EXPIRED
        assert [(e.kind, e.code, e.order_id) for e in errors] == [(ERR_ORDER, -9001, 1)]
        assert "max_position" in errors[0].msg
        assert hbt.submit_buy_order(0, 2, px, 0.005, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(2).status == hftlive.NEW
        assert (0, hftlive.NEW) in updates  # the hook saw the pending order get acked
        # a crossing post-only order: the venue's own code (the sim's engine code) reaches
        # the handler
        assert (
            hbt.submit_buy_order(0, 3, hbt.depth(0).best_ask * 1.01, 0.001, GTX, LIMIT, True) == 0
        )
        assert hbt.orders(0).get(3).status == hftlive.EXPIRED
        gtx = REJECT_GTX_WOULD_CROSS
        assert errors[-1].code == gtx and hbt.last_error_code == gtx
        # and the venue-neutral reason beside it, the same on every venue
        assert errors[-1].reason == REJECT_POST_ONLY == hbt.last_error_reason
        assert errors[0].reason == REJECT_RISK_LIMIT  # the max_position refusal
    finally:
        hbt.close()


def test_error_handler_that_raises_makes_the_call_return_19(connector):
    def handler(err):
        raise RuntimeError("stop trading")

    hbt = _bot(connector.name, error_handler=handler)
    try:
        wait_book(hbt)
        rc = hbt.submit_buy_order(0, 1, hbt.depth(0).best_ask * 1.01, 0.001, GTX, LIMIT, True)
        assert rc == 19
    finally:
        hbt.close()


def test_connector_shutdown_ends_the_run_and_cancels_orders(connector):
    errors = []
    hbt = _bot(connector.name, error_handler=errors.append)
    try:
        wait_book(hbt)
        assert (
            hbt.submit_buy_order(0, 1, hbt.depth(0).best_bid * 0.98, 0.001, GTX, LIMIT, True) == 0
        )
        connector.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        while hbt.elapse(100_000_000) == 0:
            assert time.monotonic() - t0 < 10
        assert hbt.elapse(1) == 1  # and on every later call
        assert hbt.orders(0).get(1).status == hftlive.CANCELED  # cancel on shutdown
        assert any(e.kind == ERR_CONNECTOR for e in errors)
        assert connector.proc.wait(10) == 0
    finally:
        hbt.close()


def test_killed_connector_gives_an_error_code_and_a_restart_reclaims(make_connector):
    c = make_connector().start()
    hbt = _bot(c.name)
    try:
        wait_book(hbt)
        bid = hbt.depth(0).best_bid
        c.proc.kill()
        c.proc.wait()
        t0 = time.monotonic()
        rc = 0
        while rc == 0 and time.monotonic() - t0 < 10:
            rc = hbt.elapse(100_000_000)
        assert rc == CONNECTOR_LOST
        assert hbt.submit_buy_order(0, 1, bid, 0.001, GTX, LIMIT, False) == CONNECTOR_LOST
        assert np.isfinite(hbt.depth(0).best_bid)  # the last book, not NaNs
    finally:
        hbt.close()
    with pytest.raises(BotError, match="dead|not running"):
        _bot(c.name)
    c2 = make_connector(name=c.name).start()
    assert "reclaiming" in c2.text()
    hbt = _bot(c.name)
    try:
        assert hbt.elapse(100_000_000) == 0
        wait_book(hbt)  # the restarted connector serves a book again
    finally:
        hbt.close()


def test_build_errors_are_specific(connector):
    with pytest.raises(BotError, match="not running"):
        LiveBot.builder().register(Instrument("nosuchconn", "btcusdt", 0.1, 0.001)) \
            .connect_timeout(0.2).build()  # fmt: skip
    with pytest.raises(BotError, match="does not serve 'BTCUSDT'.*case-sensitive"):
        LiveBot.builder().register(Instrument(connector.name, "BTCUSDT", 0.1, 0.001)).build()
    with pytest.raises(BotError, match="tick_size=0.01 .* venue's are tick_size=0.1"):
        LiveBot.builder().register(Instrument(connector.name, "btcusdt", 0.01, 0.001)).build()
    hbt = _bot(connector.name, id=99)
    try:
        with pytest.raises(BotError, match="already in use"):
            run_ok = run_py(f"""
from hftlive import LiveBot, Instrument
LiveBot.builder().register(Instrument("{connector.name}", "btcusdt", 0.1, 0.001)).id(99).build()
""")  # fmt: skip
            raise BotError(run_ok.stderr)
    finally:
        hbt.close()


CRASHING_BOT = """
import os
from hftlive import LiveBot, Instrument, GTX, LIMIT
hbt = LiveBot.builder().register(Instrument("{name}", "btcusdt", 0.1, 0.001)).id(7).build()
{wait_book}
assert hbt.submit_buy_order(0, 11, hbt.depth(0).best_bid * 0.98, 0.002, GTX, LIMIT, True) == 0
print("SUBMITTED", flush=True)
os._exit(0)  # dies without close(): its slot and view segment are left behind
"""

RESTARTED_BOT = """
import time
from hftlive import LiveBot, Instrument
hbt = LiveBot.builder().register(Instrument("{name}", "btcusdt", 0.1, 0.001)).id(7).build()
hbt.elapse(300_000_000)
o = hbt.orders(0).get(11)
print("RESTORED", None if o is None else (o.status, o.qty), hbt.position(0))
hbt.close()
"""


@pytest.mark.parametrize("cancel_on_exit", [False, True])
def test_crashed_bot_restarts_with_its_orders_or_has_them_cancelled(make_connector, cancel_on_exit):
    c = make_connector(cancel_on_bot_exit=str(cancel_on_exit).lower()).start()
    first = run_py(CRASHING_BOT.format(name=c.name, wait_book=WAIT_BOOK_SRC))
    assert "SUBMITTED" in first.stdout, first.stderr
    t0 = time.monotonic()
    while "died" not in c.text():
        assert time.monotonic() - t0 < 20, c.text()  # its liveness check, on a loaded machine
        time.sleep(0.02)
    second = run_py(RESTARTED_BOT.format(name=c.name))
    if cancel_on_exit:  # the connector cancelled the dead bot's order: nothing to restore
        assert "RESTORED None 0.0" in second.stdout, second.stdout + second.stderr
    else:  # the order is still open at the venue and comes back to the same bot id
        assert "RESTORED (1, 0.002) 0.0" in second.stdout, second.stdout + second.stderr
    # the connector removed the dead bot's view segment when it saw it die: nothing stale
    # is left for the restarted bot to reclaim
    assert "reclaiming stale shared memory" not in second.stderr


def test_slow_reader_resyncs_from_the_snapshot(make_connector):
    c = make_connector(md_capacity=256, tick_ms=5).start()
    errors = []
    hbt = _bot(c.name, error_handler=errors.append)
    try:
        wait_book(hbt)
        # the strategy is busy (it does not call elapse) until the connector has lapped the
        # 256-event ring under its cursor, twice over
        wait_lapped(hbt, 256)
        hbt.elapse(200_000_000)
        assert hbt.resync_count >= 1
        assert any(e.kind == ERR_BOOK_RESYNC for e in errors)
        d = hbt.depth(0)
        assert np.isfinite(d.best_bid) and d.best_bid < d.best_ask
        assert ConnectorView(c.name).bots()[0]["bot_id"] == int(hbt.bot_id)
    finally:
        hbt.close()


@njit(boundscheck=True)
def _two_steps_around_busy_work(hbt, d, busy_ns, out):
    """elapse(d); then the strategy works busy_ns without calling the bot; elapse(d) again.
    out: each elapse's return code and how long each call took (ns, the bot's clock)."""
    hbt.elapse(1)  # the step the next one counts from
    t = hbt.current_timestamp
    out[0] = hbt.elapse(d)
    t1 = hbt.current_timestamp
    out[1] = t1 - t
    while hbt.current_timestamp - t1 < busy_ns:
        pass
    t2 = hbt.current_timestamp
    out[2] = hbt.elapse(d)
    out[3] = hbt.current_timestamp - t2


def test_elapse_counts_its_duration_from_the_last_wait_return(connector):
    """As hftbacktest's clock advances by d from current_timestamp, elapse(d) returns d after
    the previous wait returned, so a loop of elapse(d) steps every d whatever the strategy's
    own time between calls: after longer work than d, the next elapse(d) only polls once.
    (Before: every elapse blocked d from its own entry, and the loop's period drifted.)"""
    hbt = _bot(connector.name)
    try:
        wait_book(hbt)
        out = np.zeros(4, np.int64)
        d = 2_000_000_000
        _two_steps_around_busy_work(hbt, d, 2_500_000_000, out)
        assert out[0] == 0 and out[2] == 0
        assert out[1] >= d - 500_000_000  # a full step: d from the previous return, read just after it
        assert out[3] < d // 2  # the second found its d already passed: one poll, no 2 s wait
    finally:
        hbt.close()


@njit(boundscheck=True)
def _elapse_steps(hbt, d, n, slack_ticks, out):
    """n calls of elapse(d), each checked against the rule of the bot's time (botfn.
    wait_begin, CADENCE_NS, MAX_SKIPS), from the bot's control words and the TSC read just
    after the call. out: [rc != 0, returned early, broke the rule, calls that read no clock,
    longest run of those, housekeeping passes (heartbeat changes)]."""
    ctrl = hbt.ctrl
    dt = np.int64(d * hbt.tpn)
    beat = hbt.view_hdr[BOT_HEARTBEAT]
    for _ in range(n):
        last, seen, skips = ctrl[C_LAST_TSC], ctrl[C_SEEN_TSC], ctrl[C_SKIPS]
        rc = hbt.elapse(d)
        now = rdtsc()
        out[0] += rc != 0
        due = last + dt
        out[1] += now < due  # elapse(d) must not return before d has passed
        if ctrl[C_SKIPS] == skips + 1:  # no clock read: only when the last one proved it
            out[3] += 1
            out[2] += ctrl[C_SEEN_TSC] != seen or due > seen or ctrl[C_LAST_TSC] != due
        elif ctrl[C_SKIPS] == 0:  # a reading: the deadline if at most the slack late, else it
            s = ctrl[C_SEEN_TSC]
            expect = due if s - due <= slack_ticks else s
            out[2] += ctrl[C_LAST_TSC] != expect or s < due
        else:
            out[2] += 1
        out[4] = max(out[4], ctrl[C_SKIPS])
        if hbt.view_hdr[BOT_HEARTBEAT] != beat:
            beat = hbt.view_hdr[BOT_HEARTBEAT]
            out[5] += 1


@pytest.mark.parametrize("d, n, policy", [(1, 20_000_000, WAIT_SPIN), (3_000, 100_000, WAIT_SPIN),
                                          (20_000_000, 12, WAIT_SPIN),
                                          (20_000_000, 12, WAIT_SLEEP), (1, 100_000, WAIT_SLEEP)])
def test_elapse_keeps_cadence_and_reads_the_clock_only_when_it_must(connector, d, n, policy):
    """The bot's time after elapse(d) is its deadline (previous time + d) when the call
    returned at most CADENCE_NS late, else the clock's reading: a loop of elapse(d) steps
    every d, as the backtest's clock does, without a burst to catch up after a late step.
    An elapse whose deadline the last reading already passed returns without reading the
    clock (at most MAX_SKIPS in a row). Checked on every call: none returns before d has
    passed, and a tight loop of elapse(1) still housekeeps (every 50 ms). Under the default
    policy (WAIT_SLEEP) too, whose wake-ups are late by tens of us."""
    hbt = _bot(connector.name, wait_policy=policy)
    try:
        wait_book(hbt)
        out = np.zeros(6, np.int64)
        slack = int(botfn.CADENCE_NS * hbt.tpn)
        _elapse_steps(hbt, d, n, slack, out)
        assert out[0] == 0 and out[1] == 0 and out[2] == 0, out
        assert out[4] <= botfn.MAX_SKIPS
        if d == 1:  # each call takes far more than 1 ns: most need no reading
            assert out[3] > n // 2 and out[4] == botfn.MAX_SKIPS, out
        if n == 20_000_000:
            assert out[5] >= 1, out  # 20 M calls take well over 50 ms
    finally:
        hbt.close()
