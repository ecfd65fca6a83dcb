"""The replay clock (`[sim] clock = "replay"`, connector.lockstep): the sim connector
replays the real capture in its own time, which is the bot's clock, in lockstep with the
bot, through the whole live path (connector, book sync, shared memory, LiveBot)."""

import time

import numpy as np
import pytest
from numba import njit

from connector.config import load_config
from connector.errors import ConfigError
from hftlive import GTC, GTX, LIMIT, BotError, Instrument, LiveBot
from hftlive.layout import BOT_HEARTBEAT

from .conftest import CAPTURE

STEP = 100_000_000  # 100 ms
STEPS = 250  # 25 s of the capture

REPLAY = f"""
[[instruments]]
symbol = "ethusdt"
tick_size = 0.01
lot_size = 0.001

[risk]
max_position = 10.0

[sim]
data = "{CAPTURE}"
data_format = "binancefutures"
clock = "replay"
{{extra}}
"""

HBT_MODEL = """
exchange = "no_partial_fill"
queue_model = "risk_averse"
order_latency = "constant"
entry_latency_ns = 3_000_000
response_latency_ns = 2_000_000
"""


@njit(boundscheck=True)
def _strategy(hbt, out, steps):
    """Quotes at the touch, waits for responses, modifies and cancels on a schedule. Per
    step: 0 the clock after the step's elapse, 1-2 the touch, 3 the position (1e-3), 4 open
    orders, 5-6 the last order latency's legs, 7 wait_order_response's code and 9 the clock
    after it and 10-11 that response's latency legs (every 20th step), 8 the clock at the
    step's end (its last wait's return: the clock moves only inside waits)."""
    oid = 1
    k = 0
    while k < steps and hbt.elapse(STEP) == 0:
        d = hbt.depth(0)
        out[k, 0] = hbt.current_timestamp
        out[k, 1] = d.best_bid_tick
        out[k, 2] = d.best_ask_tick
        if k % 20 == 5 and np.isfinite(d.best_bid):
            hbt.submit_buy_order(0, oid, d.best_bid, 0.01, GTX, LIMIT, False)
            out[k, 7] = hbt.wait_order_response(0, oid, 1_000_000_000)
            out[k, 9] = hbt.current_timestamp
            ack = hbt.order_latency(0)
            if ack is not None:
                req, exch, resp = ack
                out[k, 10] = exch - req
                out[k, 11] = resp - exch
            oid += 1
        if k % 20 == 9 and np.isfinite(d.best_ask):
            hbt.submit_sell_order(0, oid, d.best_ask + 50 * d.tick_size, 0.01, GTC, LIMIT, True)
            oid += 1
        if k % 20 == 13:
            v = hbt.orders(0).values()
            while v.has_next():
                o = v.get()
                if o.cancellable and o.side == -1:
                    hbt.modify(0, o.order_id, o.price + d.tick_size, 0.01, True)
        if k % 20 == 17:
            hbt.clear_inactive_orders(0)
            v = hbt.orders(0).values()
            while v.has_next():
                o = v.get()
                if o.cancellable:
                    hbt.cancel(0, o.order_id, False)
        if k % 20 == 18:
            hbt.wait_next_feed(True, STEP // 2)
        out[k, 3] = round(hbt.position(0) * 1000)
        out[k, 4] = len(hbt.orders(0))
        lat = hbt.order_latency(0)
        if lat is not None:
            req, exch, resp = lat
            out[k, 5] = exch - req
            out[k, 6] = resp - exch
        out[k, 8] = hbt.current_timestamp
        k += 1
    return k


def _run(make_connector, extra: str = "") -> np.ndarray:
    c = make_connector(config=REPLAY.format(extra=extra)).start()
    hbt = LiveBot.builder().register(Instrument(c.name, "ethusdt", 0.01, 0.001)).build()
    try:
        out = np.zeros((STEPS, 12), np.int64)
        t0 = time.time_ns()
        assert _strategy(hbt, out, STEPS) == STEPS
        t1 = time.time_ns()
        # housekeeping runs on the wall clock whatever the bot's: its heartbeat (what the
        # status tools and the connector read) kept beating through the run
        assert t1 - int(hbt.view_hdr[BOT_HEARTBEAT]) < (t1 - t0) / 2
    finally:
        hbt.close()
        c.stop()
    return out


@pytest.mark.parametrize("extra", ["", HBT_MODEL], ids=["default engine", "hftbacktest model"])
def test_two_runs_are_the_same_run(make_connector, extra):
    """The replay waits for the bot and the bot's clock is the replay's: nothing depends on
    the wall clock or on scheduling, so two runs decide alike, step for step."""
    a = _run(make_connector, extra)
    b = _run(make_connector, extra)
    assert np.array_equal(a, b), f"first different step: {np.nonzero((a != b).any(axis=1))[0][:3]}"
    # the strategy traded: orders rested, filled and were cancelled
    assert a[:, 3].max() > 0 and a[:, 4].max() > 0
    # the clock is the capture's, and elapse(d) moves it exactly d past the previous wait's
    # return (a step's end)
    assert 1723161255088156767 <= a[0, 0] <= 1723161599881488984
    assert np.array_equal(a[1:, 0] - a[:-1, 8], np.full(STEPS - 1, STEP))


def test_order_latency_is_the_models_in_replay_time(make_connector):
    """With hftbacktest's constant order latency, on the bot's clock: the exchange has
    each request exactly entry latency after it was sent, the bot has the response exactly
    response latency after the exchange's time, and sees it when it arrives. (The exchange
    reads the capture ahead, at each event's exchange time, connector.sim.exchange_view:
    a request never waits for the next market event to reach the exchange.)"""
    a = _run(make_connector, HBT_MODEL)
    sub = a[a[:, 9] != 0]  # the steps that submitted and waited for the response
    assert len(sub) >= STEPS // 20 - 1
    assert np.all(sub[:, 7] == 0)  # the response came
    assert np.all(sub[:, 10] == 3_000_000) and np.all(sub[:, 11] == 2_000_000)
    assert np.all(sub[:, 9] - sub[:, 0] == 5_000_000)  # seen when it arrived


def test_replay_clock_needs_a_capture_and_a_known_name(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(REPLAY.format(extra="").replace(f'data = "{CAPTURE}"', 'data = ""'))
    with pytest.raises(ConfigError, match='clock = "replay" .* needs sim.data'):
        load_config(p, "sim")
    p.write_text(REPLAY.format(extra="").replace('clock = "replay"', 'clock = "virtual"'))
    with pytest.raises(ConfigError, match='sim.clock must be "wall" or "replay"'):
        load_config(p, "sim")


def test_a_bot_on_a_replay_clock_uses_that_connector_alone(make_connector):
    replay = make_connector(config=REPLAY.format(extra="")).start()
    wall = make_connector().start()
    with pytest.raises(BotError, match="replay clock"):
        (LiveBot.builder().register(Instrument(replay.name, "ethusdt", 0.01, 0.001))
         .register(Instrument(wall.name, "btcusdt", 0.1, 0.001)).build())  # fmt: skip


SLOW_MODEL = """
exchange = "no_partial_fill"
queue_model = "power_prob2"
order_latency = "constant"
entry_latency_ns = 300_000_000
response_latency_ns = 1_000_000
"""


@njit(boundscheck=True)
def _bid_then_cancel(hbt, out):
    """Keeps one post-only bid at the best bid under the same id, cancels it as soon as it
    is acked, and places it again once it ended. Per order: 0 how it ended (status), 1 the
    req it had when the bot saw it end, 2 the submit's return code."""
    n = 0
    placed = False
    while n < out.shape[0] and hbt.elapse(STEP) == 0:
        o = hbt.orders(0).get(1)
        if o is not None and placed:
            if o.status == 1 and o.req == 0:  # NEW, nothing in flight
                hbt.cancel(0, 1, False)
            elif o.status in (2, 3, 4) and o.req == 0:  # EXPIRED, FILLED, CANCELED: answered
                out[n, 0] = o.status
                n += 1
                placed = False
                hbt.clear_inactive_orders(0)
                if n == out.shape[0]:
                    break  # out is full: the submit below would write row n, past its end
            elif o.status in (2, 3, 4) and out[n, 1] == 0:
                out[n, 1] = o.req  # ended with a request still in flight
        d = hbt.depth(0)
        if not placed and np.isfinite(d.best_bid):
            out[n, 2] = hbt.submit_buy_order(0, 1, d.best_bid, 0.01, GTX, LIMIT, False)
            placed = out[n, 2] == 0
    return n


def test_a_cancel_that_arrives_after_the_fill_leaves_the_order_filled(make_connector):
    """A bid is cancelled as soon as it is acked; the cancel reaches the exchange 300 ms
    later, and sometimes the bid has filled by then. The fill stands, and the cancel's
    refusal ("unknown order") leaves the order FILLED, as a real venue's refusal does:
    the bot clears it and places the same id again. (The refusal once reported status
    NONE: the order looked open for ever, and its id was refused as still open.)"""
    c = make_connector(config=REPLAY.format(extra=SLOW_MODEL)).start()
    hbt = LiveBot.builder().register(Instrument(c.name, "ethusdt", 0.01, 0.001)).build()
    try:
        out = np.zeros((200, 3), np.int64)
        n = _bid_then_cancel(hbt, out)
    finally:
        hbt.close()
        c.stop()
    assert "still open" not in c.text()  # the connector never held an ended order open
    assert n >= 20
    ended = out[:n]
    assert np.all(ended[:, 2] == 0)  # every submit of id 1 was taken
    assert set(ended[:, 0]) <= {2, 3, 4}
    # some filled while their cancel was in flight (req CANCELED when seen FILLED)
    assert ((ended[:, 0] == 3) & (ended[:, 1] == 4)).sum() >= 1, ended


_PARKED_BOT = """
import sys
from hftlive import Instrument, LiveBot
hbt = LiveBot.builder().register(Instrument(sys.argv[1], "ethusdt", 0.01, 0.001)).build()
rc = 0
while rc == 0:
    rc = hbt.elapse(60_000_000_000)  # a minute of replay time a step: parked between rounds
print("rc", rc, flush=True)
hbt.close()
"""


def test_a_connector_that_dies_in_a_round_ends_the_bots_wait(make_connector):
    """The connector is killed while it writes a round (the round counter left odd, as
    it leaves it): the waiting bot reads nothing of that round, but its housekeeping
    still runs and finds the connector gone, so the wait ends with CONNECTOR_LOST. (It
    once spun on the odd counter for ever.)"""
    import glob
    import os
    import signal
    import subprocess
    import sys

    from hftlive.constants import CONNECTOR_LOST
    from hftlive.ipc import CtlViews, store_word
    from hftlive.layout import CTL_LS_GEN, S_LS_PARKED, ctl_name
    from hftlive.shm import Segment, path_of

    from .conftest import ROOT

    c = make_connector(config=REPLAY.format(extra="")).start()
    bot = subprocess.Popen([sys.executable, "-c", _PARKED_BOT, c.name], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    seg = Segment.attach(ctl_name(c.name))
    try:
        ctl = CtlViews(seg.buf)
        deadline = time.monotonic() + 60
        while not (ctl.words[CTL_LS_GEN] > 4 and ctl.slot_words[:, S_LS_PARKED].max() > 0):
            assert time.monotonic() < deadline and bot.poll() is None, "the bot never parked"
            time.sleep(0.01)  # polling for the state the test needs, bounded
        os.kill(c.proc.pid, signal.SIGKILL)
        c.proc.wait()
        gen = int(ctl.words[CTL_LS_GEN])
        if gen % 2 == 0:
            store_word(ctl.words, CTL_LS_GEN, gen + 1)  # killed between rounds: as in one
        out, _ = bot.communicate(timeout=60)
        assert f"rc {CONNECTOR_LOST}" in out, out
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait()
        del ctl
        seg.close()
        for p in glob.glob(path_of(f"hftlive.{c.name}.*")):  # what the killed one left
            os.unlink(p)
