"""A bot built with roi_lb/roi_ub, end to end: a real sim connector process, real shared
memory, an @njit strategy that reads `bid_depth`/`ask_depth`; its vectors checked against
the connector's own book (its published snapshot plus the ring events after it)."""

import math
import time

import numpy as np
import pytest
from numba import njit

import hftlive
from hftlive import BotError, Instrument, LiveBot, LiveInstrument, ROIVectorMarketDepthLiveBot
from hftlive.bot import MAX_ROI_TICKS
from hftlive.constants import INVALID_MAX, INVALID_MIN
from hftlive.depth import DepthBook, apply_depth_event
from hftlive.ipc import MdViews
from hftlive.layout import MD_SNAP_LOCK, MD_SNAP_N, MD_SNAP_SEQ, MD_WRITE_SEQ, md_name
from hftlive.monitor import BotView
from hftlive.shm import Segment

from .conftest import wait_book, wait_lapped

TICK, LOT = 0.01, 0.001
ROI = (2499.80, 2500.20)  # the sim's ethusdt sits at 2500 with 30 levels a side: ~20 inside


@njit(boundscheck=True)
def _read_vectors(hbt, n_steps, out):
    """Per 20 ms step: the best ticks as the depth says and as a scan of bid_depth /
    ask_depth finds them, the levels in each vector, and the ROI members' consistency."""
    for i in range(n_steps):
        if hbt.elapse(20_000_000) != 0:
            return i
        d = hbt.depth(0)
        bids, asks = d.bid_depth, d.ask_depth
        lb, ub = d.roi_lb_tick, d.roi_ub_tick
        hi, lo, nb, na = INVALID_MIN, INVALID_MAX, 0, 0
        for k in range(bids.shape[0]):
            if bids[k] > 0.0:
                hi = lb + k
                nb += 1
        for k in range(asks.shape[0] - 1, -1, -1):
            if asks[k] > 0.0:
                lo = lb + k
                na += 1
        out[i, 0], out[i, 1] = d.best_bid_tick, hi
        out[i, 2], out[i, 3] = d.best_ask_tick, lo
        out[i, 4], out[i, 5] = nb, na
        out[i, 6] = bids.shape[0] == ub + 1 - lb and asks.shape[0] == bids.shape[0]
        out[i, 7] = math.isnan(d.bid_qty_at_tick(lb - 1)) and math.isnan(d.ask_qty_at_tick(ub + 1))
        out[i, 8] = d.best_bid_qty == d.bid_qty_at_tick(d.best_bid_tick)
    return n_steps


def _connector_book(md: MdViews, hbt, deadline: float) -> DepthBook:
    """The connector's book at the bot's ring cursor: its last published snapshot (read
    under its seqlock) plus the ring's events from there to the cursor (the bot is moved
    past the snapshot first)."""
    while True:
        lock = int(md.words[MD_SNAP_LOCK])
        seq, n = int(md.words[MD_SNAP_SEQ]), int(md.words[MD_SNAP_N])
        snap = md.snapshot[:n].copy()
        if lock % 2 == 0 and int(md.words[MD_SNAP_LOCK]) == lock and n > 0:
            break
        assert time.monotonic() < deadline, "no consistent snapshot"
    while int(hbt.cursor[0]) < seq:
        assert time.monotonic() < deadline, "the bot never passed the snapshot"
        hbt.elapse(5_000_000)
    cur = int(hbt.cursor[0])
    cap = len(md.ring)
    events = np.array([md.ring[s & (cap - 1)] for s in range(seq, cur)])
    assert int(md.words[MD_WRITE_SEQ]) - seq <= cap, "the ring lapped the events we need"
    book = DepthBook(TICK, LOT)
    for e in [*snap, *events]:
        apply_depth_event(book.di, book.df, book.bk, book.bv, book.ak, book.av,
                          np.uint64(e["ev"]), e["px"], e["qty"], e["exch_ts"])  # fmt: skip
    return book


def test_strategy_reads_the_roi_vectors_and_they_are_the_connectors_book(make_connector):
    c = make_connector(vol=0.0).start()  # a market that stays around 2500
    hbt = ROIVectorMarketDepthLiveBot([
        LiveInstrument().connector(c.name).symbol("ethusdt").tick_size(TICK).lot_size(LOT)
        .roi_lb(ROI[0]).roi_ub(ROI[1])])  # fmt: skip
    seg = Segment.attach(md_name(c.name, "ethusdt"))
    try:
        wait_book(hbt)
        d = hbt.depth(0)
        assert type(d).__name__ == "ROIVectorMarketDepth"
        lb, ub = round(ROI[0] / TICK), round(ROI[1] / TICK)
        assert (d.roi_lb_tick, d.roi_ub_tick) == (lb, ub)
        out = np.zeros((100, 9), np.int64)
        assert _read_vectors(hbt, 100, out) == 100
        assert (out[:, 0] == out[:, 1]).all() and (out[:, 2] == out[:, 3]).all()
        assert (out[:, 6:] == 1).all()
        # part of the book only: 30 levels a side, ~20 of them in the ROI
        assert (out[:, 4] > 5).all() and (out[:, 4] < 30).all(), out[:, 4]
        assert (out[:, 5] > 5).all() and (out[:, 5] < 30).all(), out[:, 5]

        md = MdViews(seg.buf)
        for _ in range(3):  # three checks, the market moving in between
            book = _connector_book(md, hbt, time.monotonic() + 20)
            d = hbt.depth(0)
            ref_bid = np.array([book.bid_qty_at_tick(t) for t in range(lb, ub + 1)])
            ref_ask = np.array([book.ask_qty_at_tick(t) for t in range(lb, ub + 1)])
            assert np.array_equal(d.bid_depth, ref_bid)
            assert np.array_equal(d.ask_depth, ref_ask)
            assert lb <= book.best_bid_tick <= ub and lb <= book.best_ask_tick <= ub
            assert (d.best_bid_tick, d.best_ask_tick) == (book.best_bid_tick, book.best_ask_tick)
            assert book.bid_qty_at_tick(lb - 5) > 0.0  # the connector has levels beyond it
            assert math.isnan(d.bid_qty_at_tick(lb - 5))
            # a notebook sees what the strategy saw (hftlive.monitor reads the view segment)
            view = BotView(c.name, int(hbt.bot_id))
            bids, asks = view.depth(0, 5)
            view.close()
            assert bids[0, 0] == pytest.approx(d.best_bid) and asks[0, 0] == pytest.approx(
                d.best_ask
            )
            assert bids[0, 1] == d.best_bid_qty
            hbt.elapse(100_000_000)
    finally:
        hbt.close()
        seg.close()


def test_builder_spelling_and_the_hashmap_factory(connector):
    inst = Instrument(connector.name, "ethusdt", TICK, LOT, roi_lb=2000.0, roi_ub=3000.0)
    hbt = LiveBot.builder().register(inst).build()
    try:
        wait_book(hbt)
        d = hbt.depth(0)
        assert (d.roi_lb_tick, d.roi_ub_tick) == (200000, 300000) and len(d.bid_depth) == 100001
        assert d.best_bid < d.best_ask
    finally:
        hbt.close()
    # hftbacktest's HashMapMarketDepthLiveBot does not use the ROI: neither do we
    hbt = hftlive.HashMapMarketDepthLiveBot([
        LiveInstrument().connector(connector.name).symbol("ethusdt").tick_size(TICK)
        .lot_size(LOT).roi_lb(2000.0).roi_ub(3000.0)])  # fmt: skip
    try:
        wait_book(hbt)
        d = hbt.depth(0)
        assert d.bid_qty_at_tick(1) == 0.0  # a hash map: 0.0 anywhere without a level
    finally:
        hbt.close()


@pytest.mark.parametrize("lb,ub,match", [
    (2600.0, 2500.0, "roi_lb must be below roi_ub"),
    (2500.0, 2500.0, "roi_lb must be below roi_ub"),
    (2500.005, 2600.0, "roi_lb=2500.005 is not on the tick grid"),
    (2500.0, float("nan"), "must be finite"),
    (2500.0, None, "set both roi_lb and roi_ub"),
    (0.0, (MAX_ROI_TICKS + 1) * TICK, "ticks wide, more than"),
])  # fmt: skip
def test_bad_rois_are_specific_errors_at_build(lb, ub, match):
    # refused before any connector is attached: the names need not exist
    inst = Instrument("noconn", "ethusdt", TICK, LOT, roi_lb=lb, roi_ub=ub)
    with pytest.raises(BotError, match=match):
        LiveBot.builder().register(inst).build()


def test_a_bot_has_one_depth_kind():
    with pytest.raises(
        BotError, match="same depth kind.*noconn/ethusdt set roi_lb.*noconn/btcusdt"
    ):
        (LiveBot.builder()
         .register(Instrument("noconn", "ethusdt", TICK, LOT, roi_lb=2000.0, roi_ub=3000.0))
         .register(Instrument("noconn", "btcusdt", 0.1, 0.001)).build())  # fmt: skip
    with pytest.raises(BotError, match="ROIVectorMarketDepthLiveBot: set roi_lb and roi_ub on"):
        ROIVectorMarketDepthLiveBot([Instrument("noconn", "ethusdt", TICK, LOT)])


def test_two_assets_with_their_own_ranges(connector):
    hbt = (LiveBot.builder()
           .register(Instrument(connector.name, "btcusdt", 0.1, 0.001, roi_lb=55000.0,
                                roi_ub=65000.0))
           .register(Instrument(connector.name, "ethusdt", TICK, LOT, roi_lb=2400.0,
                                roi_ub=2600.0)).build())  # fmt: skip
    try:
        wait_book(hbt)
        deadline = time.monotonic() + 20
        while not math.isfinite(hbt.depth(1).best_bid):
            assert time.monotonic() < deadline, "no ethusdt book"
            hbt.elapse(20_000_000)
        btc, eth = hbt.depth(0), hbt.depth(1)
        assert (btc.roi_lb_tick, btc.roi_ub_tick, len(btc.ask_depth)) == (550000, 650000, 100001)
        assert (eth.roi_lb_tick, eth.roi_ub_tick, len(eth.ask_depth)) == (240000, 260000, 20001)
        for d in (btc, eth):
            assert d.best_bid < d.best_ask
            assert d.bid_depth[d.best_bid_tick - d.roi_lb_tick] == d.best_bid_qty > 0.0
            assert d.ask_depth[d.best_ask_tick - d.roi_lb_tick] == d.best_ask_qty > 0.0
    finally:
        hbt.close()


def test_a_lapped_roi_bot_resyncs_from_the_snapshot(make_connector):
    """md_consume's resync path (the connector's snapshot into the ROI vectors)."""
    c = make_connector(md_capacity=256, tick_ms=5).start()
    hbt = (
        LiveBot.builder()
        .register(Instrument(c.name, "btcusdt", 0.1, 0.001, roi_lb=50000.0, roi_ub=70000.0))
        .build()
    )
    try:
        wait_book(hbt)
        wait_lapped(hbt, 256)
        hbt.elapse(200_000_000)
        assert hbt.resync_count >= 1
        d = hbt.depth(0)
        assert np.isfinite(d.best_bid) and d.best_bid < d.best_ask
        assert d.bid_depth[d.best_bid_tick - d.roi_lb_tick] > 0.0
        assert not d.bid_depth[d.best_bid_tick - d.roi_lb_tick + 1 :].any()  # nothing above it
    finally:
        hbt.close()
