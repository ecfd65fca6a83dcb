"""The broadcast market ring and the SPSC rings, over real numpy/mmap memory."""

import numpy as np

from hftlive import botfn
from hftlive.constants import BUY_EVENT, DEPTH_EVENT, EXCH_EVENT, LOCAL_EVENT, SELL_EVENT
from hftlive.depth import DepthBook
from hftlive.ipc import MdViews, md_publish, md_write_snapshot, spsc_put, spsc_take
from hftlive.layout import (
    C_RESYNCS,
    C_WORDS,
    L_WORDS,
    MD_WRITING_END,
    N_WORDS,
    event_dtype,
    md_layout,
    request_dtype,
    response_dtype,
)
from hftlive.shm import Segment

BID = EXCH_EVENT | LOCAL_EVENT | BUY_EVENT | DEPTH_EVENT
ASK = EXCH_EVENT | LOCAL_EVENT | SELL_EVENT | DEPTH_EVENT


class Reader:
    """A bot's per-asset reading state, as hftlive.botcore holds it."""

    def __init__(self, md: MdViews, tick=1.0, lot=1.0):
        self.md = md
        self.book = DepthBook(tick, lot, 1024)
        self.cursor = np.zeros(1, np.int64)
        self.trades = np.zeros(4, event_dtype)
        self.trade_n = np.zeros(N_WORDS, np.int64)
        self.latency = np.zeros(L_WORDS, np.int64)
        self.scratch = np.zeros(16, event_dtype)
        self.snap_scratch = np.zeros(len(md.snapshot), event_dtype)
        self.ctrl = np.zeros(C_WORDS, np.int64)
        self.cbq = np.zeros(8, response_dtype)

    def poll(self):
        b = self.book
        return botfn.md_consume(self.md.words, self.md.ring, self.md.snapshot, self.cursor, 0,
                                (b.di, b.df, b.bk, b.bv, b.ak, b.av), self.trades, self.trade_n,
                                self.latency, self.scratch, self.snap_scratch, self.ctrl,
                                self.cbq)  # fmt: skip


def _md(tmp_name, cap=64, snap=128):
    lay = md_layout(cap, snap)
    seg = Segment.create(tmp_name, lay.size)  # real /dev/shm
    return seg, MdViews(seg.buf, cap, snap)


def _ev(kind, px, qty):
    e = np.zeros(1, event_dtype)
    e[0] = (kind, 1, 2, px, qty, 0, 0, 0.0)
    return e


class Writer:
    """The connector side: its own book, the ring, snapshots on demand."""

    def __init__(self, md):
        self.md = md
        self.book = DepthBook(1.0, 1.0, 1024)
        self.snap = np.zeros(len(md.snapshot), event_dtype)

    def set(self, kind, px, qty):
        (self.book.set_bid if kind == BID else self.book.set_ask)(px, qty)
        md_publish(self.md.words, self.md.ring, _ev(kind, px, qty), 1)

    def snapshot(self):
        n = self.book.snapshot_into(self.snap, 0)
        md_write_snapshot(self.md.words, self.md.snapshot, self.snap, n)


def _same(a: DepthBook, b: DepthBook):
    assert (a.best_bid_tick, a.best_ask_tick) == (b.best_bid_tick, b.best_ask_tick)
    assert a.bid_levels(500) == b.bid_levels(500)
    assert a.ask_levels(500) == b.ask_levels(500)


def test_ring_wraps_around_and_reader_keeps_up(request):
    seg, md = _md(f"hftlive.test{id(request)}.md.x")
    try:
        w, r = Writer(md), Reader(md)
        w.snapshot()
        for i in range(1000):  # 15 times around a 64-slot ring
            w.set(BID, 100 + i % 37, float(i % 5))
            w.set(ASK, 200 + i % 41, float(i % 3))
            if i % 7 == 0:
                assert r.poll() == botfn.F_FEED
        r.poll()
        _same(r.book, w.book)
        assert r.cursor[0] == 2000 and r.ctrl[C_RESYNCS] == 0
    finally:
        seg.unlink()


def test_slow_reader_detects_overrun_and_resyncs_from_snapshot(request):
    seg, md = _md(f"hftlive.test{id(request)}.md.y")
    try:
        w, r = Writer(md), Reader(md)
        w.snapshot()
        r.poll()
        for i in range(500):  # the reader sleeps through 500 events on a 64-slot ring
            w.set(BID, 100 + i % 29, float(1 + i % 4))
            if i == 450:
                w.snapshot()  # the connector refreshes its snapshot periodically
        assert r.poll() == botfn.F_FEED
        assert r.ctrl[C_RESYNCS] == 1
        _same(r.book, w.book)  # snapshot at 451 + the 49 events after it
    finally:
        seg.unlink()


def test_torn_copy_is_detected_by_writing_end(request):
    seg, md = _md(f"hftlive.test{id(request)}.md.z", cap=16)
    try:
        w, r = Writer(md), Reader(md)
        w.snapshot()
        for i in range(10):
            w.set(BID, 100 + i, 1.0)
        w.snapshot()
        # a writer that started a batch lapping the reader's next record: writing_end says so
        md.words[MD_WRITING_END] = 100
        r.poll()
        assert r.ctrl[C_RESYNCS] == 1
        _same(r.book, w.book)
    finally:
        seg.unlink()


def test_spsc_ring_fills_up_and_preserves_order():
    hdr = np.zeros(16, np.int64)
    ring = np.zeros(8, request_dtype)
    rec = np.zeros(1, request_dtype)
    for i in range(8):
        rec[0]["inst"] = i
        assert spsc_put(hdr, ring, rec)
    rec[0]["inst"] = 99
    assert not spsc_put(hdr, ring, rec)  # full: nothing overwritten
    out = np.zeros(5, request_dtype)
    assert spsc_take(hdr, ring, out) == 5
    assert list(out["inst"]) == [0, 1, 2, 3, 4]
    for i in range(5):
        rec[0]["inst"] = 10 + i
        assert spsc_put(hdr, ring, rec)
    out = np.zeros(16, request_dtype)
    n = spsc_take(hdr, ring, out)
    assert list(out["inst"][:n]) == [5, 6, 7, 10, 11, 12, 13, 14]
