"""hftbacktest's exchange model in the sim venue, through the real connector process.

A connector runs the sim's synthetic market with `[sim] exchange = "no_partial_fill"`,
constant order latencies and fees; a LiveBot in this process trades on it through shared
memory. What it shows is hftbacktest's model, not the default engine's: a crossing GTC
order is filled in full at the best ask whatever qty the level shows (the default engine
walks the levels), a crossing GTX order just expires (the default engine rejects it with
REJECT_GTX_WOULD_CROSS), and every answer comes after the configured latencies.
"""

from __future__ import annotations

import pytest

from hftlive import GTC, GTX, LIMIT, Instrument, LiveBot
from hftlive.constants import EXPIRED, FILLED, NEW

from .conftest import wait_book, wait_bot

ENTRY_NS, RESPONSE_NS = 200_000_000, 100_000_000
TAKER_FEE = 0.0005

HBT = f"""exchange = "no_partial_fill"
queue_model = "power_prob"
queue_power = 3.0
order_latency = "constant"
entry_latency_ns = {ENTRY_NS}
response_latency_ns = {RESPONSE_NS}
maker_fee = -0.0001
taker_fee = {TAKER_FEE}
"""


def test_the_sim_runs_hftbacktests_exchange_model_with_its_latencies(make_connector):
    c = make_connector(extra=HBT).start()
    hbt = LiveBot.builder().register(Instrument(c.name, "btcusdt", 0.1, 0.001)).build()
    try:
        wait_book(hbt)
        d = hbt.depth(0)
        ask_tick, ask_qty = d.best_ask_tick, d.ask_qty_at_tick(d.best_ask_tick)
        qty = 0.5
        assert ask_qty < qty  # more than the best level shows
        limit_tick = ask_tick + 20
        assert hbt.submit_buy_order(0, 1, limit_tick * 0.1, qty, GTC, LIMIT, False) == 0
        wait_bot(hbt, lambda: hbt.orders(0).get(1).status == FILLED, 10.0, "the taker fill")
        o = hbt.orders(0).get(1)
        seen_at = hbt.current_timestamp
        # one fill of the whole qty, as taker, at one price at the touch (not a walk)
        sv = hbt.state_values(0)
        assert sv.num_trades == 1 and sv.position == pytest.approx(qty)
        assert o.exec_qty == pytest.approx(qty) and not o.maker
        assert o.exec_price_tick < limit_tick
        px = o.exec_price_tick * 0.1
        assert sv.fee == pytest.approx(TAKER_FEE * px * qty)
        # it reached the exchange after the entry latency; the bot heard of it after the
        # response latency on top
        assert o.exch_timestamp - o.local_timestamp >= ENTRY_NS
        assert seen_at - o.local_timestamp >= ENTRY_NS + RESPONSE_NS

        # a post-only order that would cross expires, as in a backtest (no rejection code)
        ask = hbt.depth(0).best_ask_tick
        assert hbt.submit_sell_order(0, 2, (ask - 50) * 0.1, 0.01, GTX, LIMIT, False) == 0
        wait_bot(hbt, lambda: hbt.orders(0).get(2).status == EXPIRED, 10.0, "the GTX expiry")
        assert hbt.orders(0).get(2).exec_qty == 0.0

        # a resting order, then its cancel: each answered after both latencies
        bid = hbt.depth(0).best_bid_tick
        assert hbt.submit_sell_order(0, 3, (bid + 500) * 0.1, 0.01, GTX, LIMIT, False) == 0
        wait_bot(hbt, lambda: hbt.orders(0).get(3).status == NEW, 10.0, "the order resting")
        assert hbt.cancel(0, 3, False) == 0
        wait_bot(hbt, lambda: hbt.orders(0).get(3).status == 4, 10.0, "the cancel")
        assert hbt.state_values(0).num_trades == 1
    finally:
        hbt.close()
    assert c.stop() == 0


def test_a_replay_of_the_capture_trades_through_hftbacktests_exchange(make_connector):
    """The real capture (snapshot, clears, diffs, trades) replayed into the hbt engine: a
    bot that keeps a post-only bid and ask at the touch gets maker fills at its own prices
    and the run ends cleanly."""
    from .conftest import CAPTURE

    _warm_up(make_connector)  # numba compiles the bot's calls before the replay runs
    c = make_connector(config=f"""
[[instruments]]
symbol = "ethusdt"
tick_size = 0.01
lot_size = 0.001

[risk]
max_position = 100.0
max_orders_per_second = 1000

[sim]
data = "{CAPTURE}"
data_format = "binancefutures"
speed = 30.0
exchange = "no_partial_fill"
queue_model = "power_prob2"
order_latency = "constant"
entry_latency_ns = 1000000
response_latency_ns = 1000000
maker_fee = -0.0001
""").start()  # fmt: skip
    hbt = LiveBot.builder().register(Instrument(c.name, "ethusdt", 0.01, 0.001)).build()
    try:
        oid, fills = _quote_at_the_touch(hbt, 0.01)
        assert fills > 0 and oid > fills
        sv = hbt.state_values(0)
        assert sv.num_trades == fills and sv.fee < 0.0  # makers only: the maker rebate
    finally:
        hbt.close()
    text = c.text()
    assert "replay of" in text and "Traceback" not in text


def _quote_at_the_touch(hbt, tick_size: float, steps: int = -1) -> tuple[int, int]:
    """Keeps a GTX bid at the best bid and a GTX ask at the best ask until the run ends
    (or for `steps` elapses); returns (orders sent, maker fills seen)."""
    oid = fills = 0
    while steps != 0 and hbt.elapse(5_000_000) == 0:
        steps -= 1
        d = hbt.depth(0)
        if not (d.best_bid_tick > 0 and d.best_ask_tick < 2**62):
            continue
        live = set()
        values = hbt.orders(0).values()
        while values.has_next():
            o = values.get()
            if o.status == FILLED:
                assert o.maker and o.exec_price_tick == o.price_tick
                fills += 1
            elif o.status in (0, NEW) or o.req != 0:
                live.add(o.side)
        hbt.clear_inactive_orders(0)
        for side in (1, -1):
            if side not in live:
                oid += 1
                tick = d.best_bid_tick if side == 1 else d.best_ask_tick
                submit = hbt.submit_buy_order if side == 1 else hbt.submit_sell_order
                submit(0, oid, tick * tick_size, 0.01, GTX, LIMIT, False)
    return oid, fills


def _warm_up(make_connector) -> None:
    c = make_connector(extra=HBT.replace("200000000", "0").replace("100000000", "0")).start()
    hbt = LiveBot.builder().register(Instrument(c.name, "btcusdt", 0.1, 0.001)).build()
    try:
        wait_book(hbt)
        _quote_at_the_touch(hbt, 0.1, steps=20)
        hbt.state_values(0)
    finally:
        hbt.close()
    c.stop()
