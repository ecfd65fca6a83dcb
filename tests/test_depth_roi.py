"""hftlive's ROI-vector depth against hftbacktest's own ROIVectorMarketDepth (2.4.4): on
random books (crossed levels and side clears included) and over the real Binance capture,
tick for tick, with ranges of interest that the price stays in, leaves and comes back to.

hftbacktest is stepped from Python and its depth read after every step; ours is fed the
same LOCAL events up to the same timestamp with the function a LiveBot runs
(hftlive.depth_roi.roi_apply_depth_event, which hftlive.botfn.md_consume calls)."""

import math

import numpy as np
import pytest
from numba import njit

from hftlive.constants import (
    BUY_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EXCH_EVENT,
    INVALID_MAX,
    INVALID_MIN,
    LOCAL_EVENT,
    SELL_EVENT,
)
from hftlive.depth import DepthBook, apply_depth_event
from hftlive.depth_roi import (
    ROIVectorMarketDepth,
    depth_arrays,
    depth_event,
    depth_reset,
    roi_apply_depth_event,
    roi_init,
)
from hftlive.layout import D_WORDS, DF_WORDS, event_dtype

from .conftest import CAPTURE


def _ours(tick, lot, lb_tick, ub_tick):
    di, df = np.zeros(D_WORDS, np.int64), np.zeros(DF_WORDS)
    bids, asks = np.zeros(ub_tick - lb_tick + 1), np.zeros(ub_tick - lb_tick + 1)
    roi_init(di, df, bids, asks, tick, lot, lb_tick, ub_tick)
    return ROIVectorMarketDepth(di, df, bids, asks)


@njit(boundscheck=True)
def _apply_until(d, events, j, ts):
    """Apply events[j:] with local_ts <= ts to the ROI depth d; returns the next j."""
    while j < events.shape[0] and events[j].local_ts <= ts:
        e = events[j]
        roi_apply_depth_event(d.di, d.df, d.bids, d.asks, e.ev, e.px, e.qty, e.exch_ts)
        j += 1
    return j


@njit(boundscheck=True)
def _hashmap_until(di, df, bk, bv, ak, av, events, j, ts):
    while j < events.shape[0] and events[j].local_ts <= ts:
        e = events[j]
        apply_depth_event(di, df, bk, bv, ak, av, e.ev, e.px, e.qty, e.exch_ts)
        j += 1
    return j


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _compare(theirs, ours, step):
    """Every member of the two depths, the whole vectors, and qty at sampled ticks."""
    tb, ta = theirs.best_bid_tick, theirs.best_ask_tick
    assert (ours.best_bid_tick, ours.best_ask_tick) == (tb, ta), step
    assert _same(ours.best_bid, theirs.best_bid) and _same(ours.best_ask, theirs.best_ask), step
    assert (ours.roi_lb_tick, ours.roi_ub_tick) == (theirs.roi_lb_tick, theirs.roi_ub_tick)
    assert np.array_equal(ours.bid_depth, theirs.bid_depth), step
    assert np.array_equal(ours.ask_depth, theirs.ask_depth), step
    lb, ub = ours.roi_lb_tick, ours.roi_ub_tick
    # hftbacktest's binding returns the best *price* from best_bid_qty/best_ask_qty (a bug,
    # reference §2.2); ours are Rust's: the qty at the best, 0.0 / NaN without one
    bq = theirs.bid_qty_at_tick(tb) if tb != INVALID_MIN else 0.0
    aq = theirs.ask_qty_at_tick(ta) if ta != INVALID_MAX else math.nan
    assert _same(ours.best_bid_qty, bq) and _same(ours.best_ask_qty, aq), step
    ticks = [lb - 1, lb, lb + 1, ub - 1, ub, ub + 1, (lb + ub) // 2]
    for t in (tb, ta):
        if t not in (INVALID_MIN, INVALID_MAX):
            ticks += [t - 3, t - 1, t, t + 1, t + 3]
    for t in ticks:
        assert _same(ours.bid_qty_at_tick(t), theirs.bid_qty_at_tick(t)), (step, t)
        assert _same(ours.ask_qty_at_tick(t), theirs.ask_qty_at_tick(t)), (step, t)


def _backtest(data, tick, lot, roi_lb, roi_ub):
    from hftbacktest import BacktestAsset, ROIVectorMarketDepthBacktest

    asset = (BacktestAsset().data(data).linear_asset(1.0).constant_order_latency(0, 0)
             .tick_size(tick).lot_size(lot).roi_lb(roi_lb).roi_ub(roi_ub))  # fmt: skip
    return ROIVectorMarketDepthBacktest([asset])


BID, ASK = EXCH_EVENT | LOCAL_EVENT | BUY_EVENT, EXCH_EVENT | LOCAL_EVENT | SELL_EVENT


def _random_events(rng, n):
    """Levels in and out of the ROI [100, 140] (ticks of 1.0), crossing ones, deletes (qty
    0 and qty that rounds to 0 lots), snapshots and clears of one side or both."""
    rows = []
    t0 = 1_700_000_000_000_000_000
    for i in range(n):
        ts = t0 + (i + 1) * 1_000_000
        r = rng.random()
        side = BID if rng.random() < 0.5 else ASK
        if r < 0.02:
            px = float(rng.integers(95, 146))
            rows.append((side | DEPTH_CLEAR_EVENT, ts, ts, px, 0.0))
        elif r < 0.025:
            rows.append((EXCH_EVENT | LOCAL_EVENT | DEPTH_CLEAR_EVENT, ts, ts, 0.0, 0.0))
        else:
            kind = DEPTH_SNAPSHOT_EVENT if r < 0.1 else DEPTH_EVENT
            # bids mostly below 125, asks above: a book that crosses now and then
            centre = 118 if side == BID else 127
            px = float(np.clip(round(rng.normal(centre, 12)), 80, 170))
            qty = float(rng.choice([0.0, 0.0, 0.04, 0.1, 0.3, 1.2]))  # 0.04: 0 lots of 0.1
            rows.append((side | kind, ts, ts, px, qty))
    out = np.zeros(len(rows), event_dtype)
    for k, (ev, e, loc, px, qty) in enumerate(rows):
        out[k] = (ev, e, loc, px, qty, 0, 0, 0.0)
    return out


def test_random_books_equal_hftbacktests_event_by_event():
    rng = np.random.default_rng(11)
    data = _random_events(rng, 6000)
    hbt = _backtest(data, 1.0, 0.1, 100.0, 140.0)
    ours = _ours(1.0, 0.1, 100, 140)
    j = step = 0
    try:
        while hbt.elapse(1_000_000) == 0:  # one event per step
            j = _apply_until(ours, data, j, hbt.current_timestamp)
            _compare(hbt.depth(0), ours, step)
            step += 1
    finally:
        hbt.close()
    assert j == len(data) - 1  # the last one is read with the end of the data (elapse: 1)
    del data  # kept alive for the backtest's whole life (tests/test_parity.py says why)


def test_rules_hand_computed():
    d = _ours(1.0, 0.1, 100, 110)
    for e, px, qty in [(BID, 105.0, 1.0), (BID, 120.0, 5.0), (ASK, 107.0, 2.0), (ASK, 95.0, 3.0)]:
        roi_apply_depth_event(d.di, d.df, d.bids, d.asks, e | DEPTH_EVENT, px, qty, 1)
    # the bid at 120 and the ask at 95 are outside [100, 110]: ignored entirely
    assert (d.best_bid_tick, d.best_ask_tick) == (105, 107)
    assert math.isnan(d.bid_qty_at_tick(120)) and math.isnan(d.ask_qty_at_tick(95))
    assert d.bid_qty_at_tick(104) == 0.0 and d.best_bid_qty == 1.0 and d.best_ask_qty == 2.0
    assert len(d.bid_depth) == 11 and d.bid_depth[5] == 1.0 and d.ask_depth[7] == 2.0
    # a bid through the ask moves the ask up to the next level in the ROI: none, so no ask
    roi_apply_depth_event(d.di, d.df, d.bids, d.asks, BID | DEPTH_EVENT, 108.0, 1.0, 2)
    assert (d.best_bid_tick, d.best_ask_tick) == (108, INVALID_MAX)
    assert math.isnan(d.best_ask) and math.isnan(d.best_ask_qty)  # Rust: NaN, the bid 0.0
    assert d.ask_depth[7] == 2.0  # the crossed ask stays in the vector, skipped
    # clear_depth(SELL, px) in 2.4.4 zeroes [best_ask - lb, px + 1 - ub): here nothing, so
    # asks it skips stay and come back once the levels below them go
    d = _ours(1.0, 0.1, 100, 110)
    for px in (103.0, 104.0, 106.0):
        roi_apply_depth_event(d.di, d.df, d.bids, d.asks, ASK | DEPTH_EVENT, px, 1.0, 1)
    roi_apply_depth_event(d.di, d.df, d.bids, d.asks, ASK | DEPTH_CLEAR_EVENT, 104.0, 0.0, 2)
    assert d.best_ask_tick == 106 and d.ask_depth[3] == 1.0 and d.ask_depth[4] == 1.0
    roi_apply_depth_event(d.di, d.df, d.bids, d.asks, ASK | DEPTH_EVENT, 102.0, 1.0, 3)
    roi_apply_depth_event(d.di, d.df, d.bids, d.asks, ASK | DEPTH_EVENT, 102.0, 0.0, 4)
    assert d.best_ask_tick == 103  # the stale level is the best again, as in hftbacktest
    # clear_depth(BUY, px) zeroes [px, best_bid] and searches the new best from px - 2
    d = _ours(1.0, 0.1, 100, 110)
    for px in (101.0, 103.0, 104.0, 106.0):
        roi_apply_depth_event(d.di, d.df, d.bids, d.asks, BID | DEPTH_EVENT, px, 1.0, 1)
    roi_apply_depth_event(d.di, d.df, d.bids, d.asks, BID | DEPTH_CLEAR_EVENT, 104.0, 0.0, 2)
    assert d.best_bid_tick == 101 and list(d.bid_depth[3:7]) == [1.0, 0.0, 0.0, 0.0]


@pytest.fixture(scope="module")
def converted_capture():
    from hftbacktest.data.utils import binancefutures

    return binancefutures.convert(str(CAPTURE), combined_stream=True)


# ETHUSDT on the capture trades between ~2678 and ~2684 (tick 0.01)
ROIS = {
    "wide": (2600.0, 2760.0),  # the near book, all the time
    "narrow": (2679.0, 2681.0),  # the price leaves it above and below, and comes back
    "below": (2670.0, 2680.0),  # the market is above it most of the time
}


@pytest.mark.parametrize("roi", list(ROIS), ids=list(ROIS))
def test_roi_depth_equals_hftbacktests_over_the_real_capture(converted_capture, roi):
    data = converted_capture
    tick, lot = 0.01, 0.001
    roi_lb, roi_ub = ROIS[roi]
    lb, ub = round(roi_lb / tick), round(roi_ub / tick)
    hbt = _backtest(data, tick, lot, roi_lb, roi_ub)
    ours = _ours(tick, lot, lb, ub)
    full = DepthBook(tick, lot)  # the whole book, to know where the market is
    local = data[(data["ev"] & LOCAL_EVENT) != 0]
    j = jf = 0
    seen = {"steps": 0, "inside": 0, "bid_out": 0, "ask_out": 0, "near_bound": 0}
    try:
        while hbt.elapse(100_000_000) == 0:
            ts = hbt.current_timestamp
            j = _apply_until(ours, local, j, ts)
            jf = _hashmap_until(full.di, full.df, full.bk, full.bv, full.ak, full.av, local, jf,
                                ts)  # fmt: skip
            _compare(hbt.depth(0), ours, seen["steps"])
            seen["steps"] += 1
            fb, fa = full.best_bid_tick, full.best_ask_tick
            if fb == INVALID_MIN or fa == INVALID_MAX:
                continue
            seen["inside"] += lb <= fb and fa <= ub
            seen["bid_out"] += not lb <= fb <= ub  # the market's best bid is outside the ROI
            seen["ask_out"] += not lb <= fa <= ub
            seen["near_bound"] += min(abs(fb - lb), abs(fa - ub), abs(fb - ub), abs(fa - lb)) < 20
    finally:
        hbt.close()
    assert seen["steps"] > 3000, seen  # the whole capture, in 100 ms steps
    if roi == "wide":
        assert seen["inside"] > 3000, seen
    elif roi == "narrow":
        assert seen["inside"] > 300 and seen["bid_out"] > 300 and seen["ask_out"] > 300, seen
        assert seen["near_bound"] > 100, seen
    else:
        assert seen["bid_out"] > 2000 and seen["ask_out"] > 2000 and seen["inside"] > 300, seen
    del data


def test_the_dispatch_picks_each_depths_functions_from_python_and_njit():
    """md_consume applies events through depth_event/depth_reset on a tuple of arrays: the
    ROI vector's (4 arrays) or the hash map's (6), from njit and from Python alike."""
    roi = _ours(1.0, 0.1, 100, 110)
    book = DepthBook(1.0, 0.1, 64)
    hm = (book.di, book.df, book.bk, book.bv, book.ak, book.av)

    @njit(boundscheck=True)
    def both(r, h):
        a = depth_event((r.di, r.df, r.bids, r.asks), BID | DEPTH_EVENT, 120.0, 1.0, 1)
        b = depth_event(h, BID | DEPTH_EVENT, 120.0, 1.0, 1)
        c = depth_event(depth_arrays(r), BID | DEPTH_EVENT, 105.0, 1.0, 2)
        return a, b, c

    assert both(roi, hm) == (True, True, True)
    assert roi.best_bid_tick == 105 and book.best_bid_tick == 120  # 120 is outside the ROI
    assert depth_event(depth_arrays(roi), ASK | DEPTH_EVENT, 107.0, 2.0, 3)
    assert not depth_event(hm, BID | 2, 1.0, 1.0, 3)  # a trade: not a depth event
    depth_reset(depth_arrays(roi))
    depth_reset(hm)
    assert (roi.best_bid_tick, roi.best_ask_tick) == (INVALID_MIN, INVALID_MAX)
    assert book.best_bid_tick == INVALID_MIN and not roi.ask_depth.any()
