"""Parity with hftbacktest's backtester: same members, and one @njit function that runs
on both and observes the same order lifecycle (reference §1.2-§1.4)."""

import inspect

import hftbacktest.binding as hb
import hftbacktest.order as ho
import hftbacktest.state as hs
import numpy as np
import pytest
from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest, ROIVectorMarketDepthBacktest
from numba import njit

import hftlive
from hftlive import FOK, GTC, GTX, IOC, LIMIT, MARKET, Instrument, LiveBot
from hftlive.botcore import _WAITS, LiveBotInstanceType, make_livebot_class
from hftlive.constants import BUY_EVENT, DEPTH_EVENT, EXCH_EVENT, LOCAL_EVENT, SELL_EVENT
from hftlive.depth import HashMapMarketDepth
from hftlive.depth_roi import ROIVectorMarketDepth
from hftlive.layout import DEPTH_ROIVECTOR, event_dtype
from hftlive.orders import Order, OrderDict, StateValues, Values

from .conftest import wait_book

# each hftbacktest class and ours; the bots are one class per depth kind, as theirs
PAIRS = [
    (hb.HashMapMarketDepthBacktest_, make_livebot_class(1, 1)),
    (hb.HashMapMarketDepth_, HashMapMarketDepth),
    (hb.ROIVectorMarketDepthBacktest_, make_livebot_class(1, 1, DEPTH_ROIVECTOR)),
    (hb.ROIVectorMarketDepth_, ROIVectorMarketDepth),
    (hb.OrderDict_, OrderDict),
    (hb.Values_, Values),
    (ho.Order_, Order),
    (hs.StateValues_, StateValues),
]


def _params(fn):
    return list(inspect.signature(fn).parameters)


def _method(cls, name):
    """The member `name` of a jitclass; the LiveBot's waits are overloads inlined into njit
    callers (hftlive.botcore._WAITS), and Python reaches them as `_py_<name>`, whose
    signature is the member's."""
    methods = cls.class_type.jit_methods
    if name not in methods and isinstance(cls.class_type.instance_type, LiveBotInstanceType):
        if name in _WAITS:
            return methods[f"_py_{name}"]
    return methods.get(name)


@pytest.mark.parametrize("theirs,ours", PAIRS, ids=lambda c: c.class_type.class_name)
def test_same_members_signatures_and_property_split(theirs, ours):
    t, o = theirs.class_type, ours.class_type
    for name, fn in t.jit_methods.items():
        if name == "__init__":
            continue
        mine = _method(ours, name)
        assert mine is not None, f"missing method {name}"
        assert _params(mine.py_func) == _params(fn.py_func), name
    for name in t.jit_props:
        assert name in o.jit_props, f"missing property {name} (must not be a method)"
        assert name not in o.jit_methods


def test_constants_are_exported_with_hftbacktests_values():
    import hftbacktest

    for name in ["BUY", "SELL", "NEW", "FILLED", "CANCELED", "EXPIRED", "GTC", "GTX", "LIMIT",
                 "MARKET", "ALL_ASSETS", "DEPTH_EVENT", "TRADE_EVENT", "LOCAL_EVENT",
                 "EXCH_EVENT", "BUY_EVENT", "SELL_EVENT", "DEPTH_CLEAR_EVENT"]:  # fmt: skip
        assert getattr(hftlive, name) == getattr(hftbacktest, name), name
    for name in ["FOK", "IOC", "PARTIALLY_FILLED", "REJECTED", "UNSUPPORTED"]:
        assert getattr(hftlive, name) == getattr(ho, name), name


@njit(boundscheck=True)
def lifecycle(hbt, out):
    """Walks reference §1.4 and writes what it observes; runs unchanged on both."""
    k = 0
    hbt.elapse(300_000_000)
    d = hbt.depth(0)
    tick = d.tick_size
    far = d.best_bid - 50 * tick
    out[k] = hbt.submit_buy_order(0, 1, far, 0.02, GTX, LIMIT, False)
    o = hbt.orders(0).get(1)
    out[k + 1], out[k + 2], out[k + 3] = o.status, o.req, o.cancellable  # pending: NONE, NEW
    out[k + 4] = hbt.submit_buy_order(0, 1, far, 0.02, GTX, LIMIT, False)  # 10: id exists
    out[k + 5] = hbt.cancel(0, 1, False)  # 11: a request is in flight
    out[k + 6] = hbt.modify(0, 1, far - tick, 0.02, False)  # 11
    out[k + 7] = hbt.wait_order_response(0, 1, 5_000_000_000)  # 0 on receipt
    o = hbt.orders(0).get(1)
    out[k + 8], out[k + 9], out[k + 10] = o.status, o.req, o.cancellable  # NEW, NONE, True
    k += 11
    out[k] = hbt.modify(0, 1, far - 2 * tick, 0.03, False)
    o = hbt.orders(0).get(1)
    out[k + 1] = o.req  # REPLACED while pending
    out[k + 2] = hbt.wait_order_response(0, 1, 5_000_000_000)
    o = hbt.orders(0).get(1)
    out[k + 3], out[k + 4] = o.status, o.req
    out[k + 5] = round(o.qty * 100)
    out[k + 6] = o.price_tick == round((far - 2 * tick) / tick)
    k += 7
    out[k] = hbt.cancel(0, 1, False)
    out[k + 1] = hbt.orders(0).get(1).req  # CANCELED while pending
    out[k + 2] = hbt.wait_order_response(0, 1, 5_000_000_000)
    o = hbt.orders(0).get(1)
    out[k + 3], out[k + 4], out[k + 5] = o.status, o.req, o.cancellable
    out[k + 6] = hbt.cancel(0, 99, False)  # 12: unknown id
    k += 7
    d = hbt.depth(0)
    out[k] = hbt.submit_buy_order(0, 2, d.best_ask + 5 * tick, 0.02, GTX, LIMIT, True)
    out[k + 1] = hbt.orders(0).get(2).status  # a crossing GTX ends EXPIRED
    out[k + 2] = hbt.submit_buy_order(0, 3, d.best_ask, 0.02, GTC, MARKET, True)
    o = hbt.orders(0).get(3)
    out[k + 3], out[k + 4], out[k + 5] = o.status, o.order_type, o.arr[0].maker
    out[k + 6] = round(hbt.position(0) * 100)
    d = hbt.depth(0)
    out[k + 7] = hbt.submit_sell_order(0, 4, d.best_bid - 15 * tick, 0.02, IOC, LIMIT, True)
    out[k + 8] = hbt.orders(0).get(4).status
    out[k + 9] = round(hbt.position(0) * 100)
    out[k + 10] = hbt.state_values(0).num_trades >= 2  # one per fill; a sweep may be several
    k += 11
    out[k] = len(hbt.orders(0))
    hbt.clear_inactive_orders(0)
    out[k + 1] = len(hbt.orders(0))  # all four ended
    out[k + 2] = hbt.wait_next_feed(False, 5_000_000_000)  # 2: a feed event
    out[k + 3] = hbt.submit_buy_order(0, 5, hbt.depth(0).best_bid - 40 * tick, 0.02, GTX,
                                      LIMIT, False)  # fmt: skip
    saw_resp = 0
    for _ in range(50):
        if hbt.wait_next_feed(True, 5_000_000_000) == 3:
            saw_resp = 1
            break
    out[k + 4] = saw_resp
    out[k + 5] = hbt.elapse(1)
    out[k + 6] = hbt.num_assets
    out[k + 7] = hbt.feed_latency(0) is not None
    out[k + 8] = hbt.order_latency(0) is not None
    out[k + 9] = hbt.current_timestamp > 1_600_000_000 * 10**9
    out[k + 10] = hbt.elapse_bt(1) == 0
    values = hbt.orders(0).values()
    n = 0
    while values.has_next():
        n += values.get().order_id == 5
    out[k + 11] = n
    values = hbt.orders(0).values()
    n = 0
    while True:
        o = values.next()
        if o is None:
            break
        n += 1
    out[k + 12] = n
    out[k + 13] = 5 in hbt.orders(0)
    return k + 14


EXPECTED = [
    0, 0, 1, 0, 10, 11, 11, 0, 1, 0, 1,  # submit pending NONE/NEW, then acked NEW/NONE
    0, 7, 0, 1, 0, 3, 1,  # modify: REPLACED while pending, then NEW, qty 0.03
    0, 4, 0, 4, 0, 0, 12,  # cancel: CANCELED
    0, 2, 0, 3, 1, 0, 2, 0, 3, 0, 1,  # GTX cross EXPIRED, MARKET FILLED, IOC FILLED
    4, 0, 2, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1,  # cleared, feed 2, response 3, the rest
]  # fmt: skip


def _backtest_data(n_steps=6000):
    """A static two-sided book (bid 100.0, ask 100.1, tick 0.1) refreshed every 10 ms."""
    rows = []
    t0 = 1_700_000_000_000_000_000
    bid, ask = (
        EXCH_EVENT | LOCAL_EVENT | BUY_EVENT | DEPTH_EVENT,
        EXCH_EVENT | LOCAL_EVENT | SELL_EVENT | DEPTH_EVENT,
    )
    for i in range(20):
        rows.append((bid, t0, t0, 100.0 - i * 0.1, 5.0, 0, 0, 0.0))
        rows.append((ask, t0, t0, 100.1 + i * 0.1, 5.0, 0, 0, 0.0))
    for s in range(1, n_steps):
        t = t0 + s * 10_000_000
        rows.append((bid, t, t, 100.0, 5.0 + (s % 3), 0, 0, 0.0))
        rows.append((ask, t, t, 100.1, 5.0 + (s % 2), 0, 0, 0.0))
    return np.array(rows, event_dtype)


@pytest.mark.parametrize("roi", [False, True], ids=["hashmap", "roivector"])
def test_lifecycle_in_hftbacktest_backtest(roi):
    # The event array is kept alive for the backtest's whole life: built from a temporary
    # array, the first backtest of a process once ran its clock from 0 with an empty book
    # (hftbacktest 2.4.4; add_data may not hold a reference to the array).
    data = _backtest_data()
    asset = (BacktestAsset().data(data).linear_asset(1.0)
             .constant_order_latency(1_000_000, 1_000_000).tick_size(0.1).lot_size(0.01)
             .trading_value_fee_model(0.0002, 0.0005))  # fmt: skip
    if roi:
        hbt = ROIVectorMarketDepthBacktest([asset.roi_lb(90.0).roi_ub(110.0)])
    else:
        hbt = HashMapMarketDepthBacktest([asset])
    out = np.zeros(64, np.int64)
    n = lifecycle(hbt, out)
    hbt.close()
    assert list(out[:n]) == EXPECTED
    del data


@pytest.mark.parametrize("roi", [None, (59000.0, 61000.0)], ids=["hashmap", "roivector"])
def test_same_lifecycle_live_on_the_sim_venue(make_connector, roi):
    # a market that does not drift: the lifecycle prices its orders off the book it last
    # saw (a GTX 5 ticks through the ask must cross, an IOC 15 ticks through must fill),
    # and a bot preempted on a loaded machine sees a book a few 20 ms ticks old, which a
    # drifting market (std ~3 ticks a tick) can have left behind
    connector = make_connector(vol=0.0).start()
    lb, ub = roi or (None, None)
    inst = Instrument(connector.name, "btcusdt", 0.1, 0.001, roi_lb=lb, roi_ub=ub)
    hbt = LiveBot.builder().register(inst).build()
    try:
        wait_book(hbt)  # the connector may not have published its first book yet
        out = np.zeros(64, np.int64)
        n = lifecycle(hbt, out)
        assert list(out[:n]) == EXPECTED
    finally:
        hbt.close()


def test_hftbacktest_style_factory_and_float_arguments(connector):
    hbt = hftlive.HashMapMarketDepthLiveBot(
        [hftlive.LiveInstrument().connector(connector.name).symbol("ethusdt").tick_size(0.01)
         .lot_size(0.001)])  # fmt: skip
    try:
        # hftbacktest's examples pass floats for durations and order ids (reference §1.1)
        assert hbt.elapse(5e7) == 0
        wait_book(hbt)
        d = hbt.depth(0)
        assert np.isfinite(d.best_bid) and d.best_bid < d.best_ask
        # 1% away: a method's first call from Python compiles it (~2 s) while the market moves
        assert hbt.submit_buy_order(0, 7.0, d.best_bid * 0.99, 0.01, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(7).status == hftlive.NEW
        hbt.clear_last_trades(-1)  # ALL_ASSETS
        hbt.clear_inactive_orders(hftlive.ALL_ASSETS)
        assert hbt.submit_sell_order(0, 8, d.best_ask * 1.01, 0.01, FOK, LIMIT, False) == 0
    finally:
        hbt.close()
