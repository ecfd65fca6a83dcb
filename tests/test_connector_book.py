"""`RecordingBook.apply_levels` (one @njit call, hftlive.depth.depth_apply_levels) against
its plain reference, `set_bid`/`set_ask` level by level (book_sync.levels_by_one): the same
book, word for word, and the same events, in the same order."""

from __future__ import annotations

import numpy as np
import pytest

from connector.binancefutures.book_sync import SYNCED, BookSync, levels_by_one
from connector.binancefutures.messages import DepthSnapshot, DepthUpdate
from connector.book import ASK_DEPTH, BID_DEPTH, RecordingBook
from connector.config import InstrumentConfig
from hftlive.depth import DepthBook

TICK, LOT = 0.01, 0.001


def _pair(capacity: int) -> tuple[RecordingBook, RecordingBook]:
    cfg = InstrumentConfig("ethusdt", TICK, LOT)
    books = RecordingBook(0, cfg), RecordingBook(0, cfg)
    for b in books:
        b.book = DepthBook(TICK, LOT, capacity)
        b.batch.ev = b.batch.ev[:8]  # small, so that reserve() has to grow it
        b.batch.reserve(0)
    return books


def _levels(rng, n: int, mid: int) -> np.ndarray:
    """n rows [px, qty] around `mid` ticks: a quarter deletions, some crossing the book."""
    ticks = mid + rng.integers(-60, 60, n)
    qty = np.round(rng.uniform(0.0, 5.0, n), 3)
    qty[rng.random(n) < 0.25] = 0.0
    out = np.column_stack([np.round(ticks * TICK, 2), qty])
    out.flags.writeable = False  # as parsed levels are
    return out


def _state(b: RecordingBook):
    d = b.book
    return [a.tolist() for a in (d.di, d.df, d.bk, d.bv, d.ak, d.av)], b.batch.ev[
        : b.batch.n
    ].tolist()


@pytest.mark.parametrize("capacity", [1 << 14, 64])  # 64: the side fills up, far levels go
def test_bulk_levels_equal_level_by_level(capacity):
    rng = np.random.default_rng(7)
    bulk, plain = _pair(capacity)
    for step in range(300):
        bids, asks = (
            _levels(rng, rng.integers(0, 40), 250_000),
            _levels(rng, rng.integers(0, 40), 250_010),
        )
        for b in (bulk, plain):
            b.exch_ts, b.local_ts = 1_000 + step, 2_000 + step
        bulk.apply_levels(bids, asks)
        levels_by_one(plain, bids, asks)
        assert _state(bulk) == _state(plain)
        if step % 50 == 49:
            for b in (bulk, plain):
                b.clear()
                b.batch.n = 0
    ev = bulk.batch.ev[: bulk.batch.n]
    assert set(ev["ev"].tolist()) <= {BID_DEPTH, ASK_DEPTH}


def test_odd_shapes_and_listeners_go_level_by_level():
    class Listening(RecordingBook):
        def __init__(self, *a):
            super().__init__(*a)
            self.seen = []

        def on_level(self, side, tick, qty):
            self.seen.append((side, tick, qty))

    b = Listening(0, InstrumentConfig("ethusdt", TICK, LOT))
    b.apply_levels(np.array([[100.0, 1.0], [100.01, 2.0]]), np.array([]))  # an empty 1-d side
    assert [t for _, t, _ in b.seen] == [10_000, 10_001]
    assert b.batch.n == 2 and b.book.best_bid_tick == 10_001


def test_book_sync_writes_a_book_without_apply_levels_level_by_level():
    class Minimal:  # the Book protocol before apply_levels: still served
        def __init__(self):
            self.calls = []

        def clear(self):
            self.calls.append("clear")

        def set_bid(self, px, qty):
            self.calls.append(("b", px, qty))

        def set_ask(self, px, qty):
            self.calls.append(("a", px, qty))

    book = Minimal()
    sync = BookSync(book)
    diff = DepthUpdate("ethusdt", 0, 0, 10, 12, 9, np.array([[1.0, 2.0]]), np.array([[3.0, 0.0]]))
    snap = DepthSnapshot(11, 0, 0, np.array([[1.0, 1.0]]), np.array([[3.0, 5.0], [4.0, 1.0]]))
    sync.on_diff(diff)
    sync.on_snapshot(snap)
    assert sync.state == SYNCED
    assert book.calls == [
        "clear",
        ("b", 1.0, 1.0),
        ("a", 3.0, 5.0),
        ("a", 4.0, 1.0),
        ("b", 1.0, 2.0),
        ("a", 3.0, 0.0),
    ]
