"""hftlive's hash-map depth: the hash table against a dict, and the book against
hftbacktest's own HashMapMarketDepth over the real Binance capture."""

import random

import numpy as np
import pytest
from numba import njit

from hftlive.constants import (
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    INVALID_MAX,
    INVALID_MIN,
    LOCAL_EVENT,
)
from hftlive.depth import EMPTY, DepthBook, apply_depth_event, ht_del, ht_find, ht_get, ht_put
from hftlive.layout import D_DROPPED, D_HIGH_ASK, D_LOW_BID, D_N_ASK, D_N_BID

from .conftest import CAPTURE


def test_hash_table_matches_a_dict_under_random_operations():
    keys = np.full(256, EMPTY, np.int64)
    vals = np.zeros(256)
    ref = {}
    rng = random.Random(7)
    for step in range(20000):
        k = rng.randint(-300, 300) * 7919  # spread keys, negative ones too
        if rng.random() < 0.45:
            assert ht_del(keys, vals, k) == (k in ref)
            ref.pop(k, None)
        elif len(ref) < 180:
            v = rng.random()
            assert ht_put(keys, vals, k, v) == (k not in ref)
            ref[k] = v
        if step % 500 == 0:
            assert sorted(int(x) for x in keys if x != EMPTY) == sorted(ref)
            for q in list(ref)[:50]:
                assert ht_get(keys, vals, q) == ref[q]
            assert ht_find(keys, 123456789) == -1


class RefDepth:
    """hftbacktest's HashMapMarketDepth rules (reference §2.1), written naively."""

    def __init__(self, tick, lot):
        self.tick, self.lot = tick, lot
        self.bid, self.ask = {}, {}
        self.best_bid, self.best_ask = INVALID_MIN, INVALID_MAX
        self.low_bid, self.high_ask = INVALID_MAX, INVALID_MIN

    @staticmethod
    def _r(x):
        return int(np.copysign(np.floor(abs(x) + 0.5), x))

    def set_bid(self, px, qty):
        t = self._r(px / self.tick)
        if self._r(qty / self.lot) <= 0:
            self.bid.pop(t, None)
            if t == self.best_bid:
                cands = [k for k, v in self.bid.items() if self.low_bid <= k < t and v > 0]
                self.best_bid = max(cands) if cands else INVALID_MIN
                if self.best_bid == INVALID_MIN:
                    self.low_bid = INVALID_MAX
            return
        self.bid[t] = qty
        if t > self.best_bid:
            self.best_bid = t
            if t >= self.best_ask:
                cands = [k for k, v in self.ask.items() if t < k <= self.high_ask and v > 0]
                self.best_ask = min(cands) if cands else INVALID_MAX
        self.low_bid = min(self.low_bid, t)

    def set_ask(self, px, qty):
        t = self._r(px / self.tick)
        if self._r(qty / self.lot) <= 0:
            self.ask.pop(t, None)
            if t == self.best_ask:
                cands = [k for k, v in self.ask.items() if t < k <= self.high_ask and v > 0]
                self.best_ask = min(cands) if cands else INVALID_MAX
                if self.best_ask == INVALID_MAX:
                    self.high_ask = INVALID_MIN
            return
        self.ask[t] = qty
        if t < self.best_ask:
            self.best_ask = t
            if self.best_bid >= t:
                cands = [k for k, v in self.bid.items() if self.low_bid <= k < t and v > 0]
                self.best_bid = max(cands) if cands else INVALID_MIN
        self.high_ask = max(self.high_ask, t)


def test_book_follows_hftbacktest_rules_including_crossed_levels():
    rng = random.Random(3)
    book, ref = DepthBook(0.5, 0.1, 1024), RefDepth(0.5, 0.1)
    for _ in range(20000):
        px = rng.randint(180, 220) * 0.5
        qty = rng.choice([0.0, 0.0, 0.04, 0.1, 0.3, 1.2])  # 0.04 rounds to 0 lots: a delete
        if rng.random() < 0.5:
            book.set_bid(px, qty)
            ref.set_bid(px, qty)
        else:
            book.set_ask(px, qty)
            ref.set_ask(px, qty)
        assert (book.best_bid_tick, book.best_ask_tick) == (ref.best_bid, ref.best_ask)
        t = ref._r(px / 0.5)
        assert book.bid_qty_at_tick(t) == ref.bid.get(t, 0.0)
        assert book.ask_qty_at_tick(t) == ref.ask.get(t, 0.0)


def test_full_side_drops_the_farthest_levels_first():
    book = DepthBook(1.0, 1.0, 64)  # holds 48 levels per side
    for t in range(1000, 1100):
        book.set_bid(float(t), 1.0)
    assert book.best_bid_tick == 1099
    kept = [t for t, _ in book.bid_levels(200)]
    assert kept[0] == 1099 and len(kept) <= 48 and kept == sorted(kept, reverse=True)
    assert kept[-1] >= 1099 - 48  # the near book is exact
    assert book.di[D_DROPPED] > 0
    # every prune kept the 32 levels nearest the best, so what is left is one run from it
    assert kept == list(range(1099, 1099 - len(kept), -1))
    assert book.di[D_N_BID] == len(kept) == int((book.bk != EMPTY).sum())
    assert book.di[D_LOW_BID] == kept[-1]
    assert book.di[D_DROPPED] == 100 - len(kept)
    for t in range(2100, 2000, -1):  # the asks, from far to near
        book.set_ask(float(t), 1.0)
    kept = [t for t, _ in book.ask_levels(200)]
    assert kept == list(range(2001, 2001 + len(kept))) and len(kept) <= 48
    assert book.di[D_N_ASK] == len(kept) == int((book.ak != EMPTY).sum())
    assert book.di[D_HIGH_ASK] == kept[-1]
    assert book.di[D_DROPPED] == 200 - len(kept) - book.di[D_N_BID]


@njit(boundscheck=True)
def _record_backtest_depth(hbt, out):
    i = 0
    while i < out.shape[0] and hbt.elapse(100_000_000) == 0:
        d = hbt.depth(0)
        out[i, 0] = hbt.current_timestamp
        out[i, 1] = d.best_bid_tick
        out[i, 2] = d.best_ask_tick
        out[i, 3] = round(d.best_bid_qty * 1000)
        out[i, 4] = round(d.best_ask_qty * 1000)
        out[i, 5] = round(d.bid_qty_at_tick(d.best_bid_tick - 3) * 1000)
        out[i, 6] = round(d.ask_qty_at_tick(d.best_ask_tick + 3) * 1000)
        i += 1
    return i


@pytest.fixture(scope="module")
def converted_capture():
    from hftbacktest.data.utils import binancefutures

    return binancefutures.convert(str(CAPTURE), combined_stream=True)


def test_depth_equals_hftbacktests_over_the_real_capture(converted_capture):
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    data = converted_capture
    asset = (BacktestAsset().data(data).linear_asset(1.0).constant_order_latency(0, 0)
             .tick_size(0.01).lot_size(0.001))  # fmt: skip
    hbt = HashMapMarketDepthBacktest([asset])
    out = np.zeros((1200, 7), np.int64)  # two minutes of 100 ms steps
    n = _record_backtest_depth(hbt, out)
    hbt.close()
    assert n > 1000

    book = DepthBook(0.01, 0.001)
    local = data[(data["ev"] & LOCAL_EVENT) != 0]
    j = 0
    kinds = (DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, DEPTH_CLEAR_EVENT)
    checked = 0
    for i in range(n):
        ts = out[i, 0]
        while j < len(local) and local[j]["local_ts"] <= ts:
            e = local[j]
            if int(e["ev"]) & 0xFF in kinds:
                apply_depth_event(book.di, book.df, book.bk, book.bv, book.ak, book.av,
                                  np.uint64(e["ev"]), e["px"], e["qty"], e["exch_ts"])  # fmt: skip
            j += 1
        b, a = book.best_bid_tick, book.best_ask_tick
        got = (
            b,
            a,
            round(book.bid_qty_at_tick(b) * 1000),
            round(book.ask_qty_at_tick(a) * 1000),
            round(book.bid_qty_at_tick(b - 3) * 1000),
            round(book.ask_qty_at_tick(a + 3) * 1000),
        )
        assert got == tuple(out[i, 1:]), f"step {i} at {ts}"
        checked += b != INVALID_MIN
    assert checked > 1000  # the book was live for most of it, not two empty books agreeing
