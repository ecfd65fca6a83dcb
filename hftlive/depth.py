"""L2 market depth over flat arrays: an open-addressing hash map per side.

The arrays live in shared memory (a bot's view segment) or in the connector's own memory;
the same @njit functions serve the bot, the connector's authoritative book and notebooks.

Semantics follow hftbacktest's HashMapMarketDepth (reference §2.1): a price becomes a tick
with round-half-away-from-zero of px / tick_size; a level whose qty rounds to 0 lots is
deleted; a new bid at or above the best ask moves the best ask up to the next level above
(crossed levels stay in the table but are skipped), symmetrically for asks; deleting the
best level scans tick by tick toward the lowest bid / highest ask ever seen.

Hash table: keys int64 (EMPTY = INT64_MIN, never a real tick), values float64, linear
probing, backward-shift deletion (no tombstones). A side holds at most 3/4 of its capacity;
when an insert would pass that, the levels farthest from the best are dropped first (the
count is kept in D_DROPPED) so that the near book, the part strategies read, stays exact.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numba.experimental import jitclass

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
from hftlive.layout import (
    D_BEST_ASK,
    D_BEST_BID,
    D_DROPPED,
    D_HIGH_ASK,
    D_LOW_BID,
    D_N_ASK,
    D_N_BID,
    D_TS,
    D_WORDS,
    DF_LOT,
    DF_TICK,
    DF_WORDS,
    event_dtype,
)

EMPTY = INVALID_MIN
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@nb.njit(cache=True, inline="always")
def round_half_away(x):
    """Rust's f64::round: halves go away from zero (Python's round goes to even)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


@nb.njit(cache=True, inline="always")
def put_event(out, k, ev, exch_ts, local_ts, px, qty):
    """Writes one market event (no order id, ival or fval) into out[k]."""
    e = out[k]
    e.ev = ev
    e.exch_ts = exch_ts
    e.local_ts = local_ts
    e.px = px
    e.qty = qty
    e.order_id = 0
    e.ival = 0
    e.fval = 0.0


@nb.njit(cache=True, inline="always")
def _slot(key, mask):
    h = np.uint64(key) * _GOLDEN
    return np.int64((h ^ (h >> np.uint64(29))) & np.uint64(mask))


@nb.njit(cache=True)
def ht_find(keys, key):
    """Index of key, or -1."""
    mask = keys.shape[0] - 1
    i = _slot(key, mask)
    while True:
        k = keys[i]
        if k == key:
            return i
        if k == EMPTY:
            return -1
        i = (i + 1) & mask


@nb.njit(cache=True)
def ht_get(keys, vals, key):
    i = ht_find(keys, key)
    return vals[i] if i >= 0 else 0.0


@nb.njit(cache=True)
def ht_put(keys, vals, key, val):
    """Insert or overwrite; returns 1 if a new key was inserted, else 0."""
    mask = keys.shape[0] - 1
    i = _slot(key, mask)
    while True:
        k = keys[i]
        if k == key:
            vals[i] = val
            return 0
        if k == EMPTY:
            keys[i] = key
            vals[i] = val
            return 1
        i = (i + 1) & mask


@nb.njit(cache=True)
def ht_del(keys, vals, key):
    """Delete key if present (backward-shift); returns 1 if it was present."""
    mask = keys.shape[0] - 1
    i = ht_find(keys, key)
    if i < 0:
        return 0
    j = i
    while True:
        j = (j + 1) & mask
        k = keys[j]
        if k == EMPTY:
            break
        home = _slot(k, mask)
        # k may move into the hole at i if its home is not in the cyclic range (i, j]
        if (j > i and (home <= i or home > j)) or (j < i and (home <= i and home > j)):
            keys[i] = k
            vals[i] = vals[j]
            i = j
    keys[i] = EMPTY
    vals[i] = 0.0
    return 1


@nb.njit(cache=True)
def depth_init(di, df, bk, bv, ak, av, tick_size, lot_size):
    di[:] = 0
    di[D_BEST_BID] = INVALID_MIN
    di[D_BEST_ASK] = INVALID_MAX
    di[D_LOW_BID] = INVALID_MAX
    di[D_HIGH_ASK] = INVALID_MIN
    df[DF_TICK] = tick_size
    df[DF_LOT] = lot_size
    bk[:] = EMPTY
    bv[:] = 0.0
    ak[:] = EMPTY
    av[:] = 0.0


@nb.njit(cache=True)
def depth_clear(di, bk, bv, ak, av):
    bk[:] = EMPTY
    bv[:] = 0.0
    ak[:] = EMPTY
    av[:] = 0.0
    di[D_BEST_BID] = INVALID_MIN
    di[D_BEST_ASK] = INVALID_MAX
    di[D_LOW_BID] = INVALID_MAX
    di[D_HIGH_ASK] = INVALID_MIN
    di[D_N_BID] = 0
    di[D_N_ASK] = 0


@nb.njit(cache=True)
def depth_below(keys, vals, start, end):
    """Highest tick in [end, start) with qty > 0, else INVALID_MIN."""
    t = start - 1
    while t >= end:
        if ht_get(keys, vals, t) > 0.0:
            return t
        t -= 1
    return INVALID_MIN


@nb.njit(cache=True)
def depth_above(keys, vals, start, end):
    """Lowest tick in (start, end] with qty > 0, else INVALID_MAX."""
    t = start + 1
    while t <= end:
        if ht_get(keys, vals, t) > 0.0:
            return t
        t += 1
    return INVALID_MAX


@nb.njit(cache=True)
def argsort_i64(a):
    """The indexes that sort `a` ascending (ties in no set order): a heapsort, written here
    because numba's np.argsort instantiates its quicksort machinery, which took ~1.4 s of
    every cold start (the bot's and the connector's) for the two sorts below."""
    n = a.shape[0]
    idx = np.arange(n)
    for start in range(n // 2 - 1, -1, -1):
        _sift(a, idx, start, n)
    for end in range(n - 1, 0, -1):
        idx[0], idx[end] = idx[end], idx[0]
        _sift(a, idx, 0, end)
    return idx


@nb.njit(cache=True)
def _sift(a, idx, root, end):
    """Sift idx[root] down the max-heap idx[:end] (by a[idx[i]])."""
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and a[idx[child + 1]] > a[idx[child]]:
            child += 1
        if a[idx[child]] <= a[idx[root]]:
            return
        idx[root], idx[child] = idx[child], idx[root]
        root = child


@nb.njit(cache=True)
def _prune(di, keys, vals, n_word, best, is_bid):
    """Drop the levels farthest from `best` until the side is half full."""
    cap = keys.shape[0]
    n = di[n_word]
    live = np.empty(n, np.int64)
    m = 0
    for i in range(cap):
        if keys[i] != EMPTY:
            live[m] = keys[i]
            m += 1
    if m == 0:
        di[n_word] = 0
        return
    if best == INVALID_MIN or best == INVALID_MAX:
        best = live[0]
    dist = np.empty(m, np.int64)
    for i in range(m):
        dist[i] = abs(live[i] - best)
    order = argsort_i64(dist)  # plain loops here: each numpy call compiles on a cold start
    keep = cap // 2
    for r in range(keep, m):
        ht_del(keys, vals, live[order[r]])
    n_kept = min(m, keep)
    di[n_word] = n_kept
    di[D_DROPPED] += m - n_kept
    lo, hi = live[order[0]], live[order[0]]
    for r in range(1, n_kept):
        lo = min(lo, live[order[r]])
        hi = max(hi, live[order[r]])
    if is_bid:
        di[D_LOW_BID] = lo
    else:
        di[D_HIGH_ASK] = hi


@nb.njit(cache=True)
def update_bid(di, df, bk, bv, ak, av, px, qty, ts):
    t = round_half_away(px / df[DF_TICK])
    qlot = round_half_away(qty / df[DF_LOT])
    di[D_TS] = ts
    if qlot <= 0:
        di[D_N_BID] -= ht_del(bk, bv, t)
        if t == di[D_BEST_BID]:
            di[D_BEST_BID] = depth_below(bk, bv, t, di[D_LOW_BID])
            if di[D_BEST_BID] == INVALID_MIN:
                di[D_LOW_BID] = INVALID_MAX
        return t
    if (di[D_N_BID] + 1) * 4 > bk.shape[0] * 3 and ht_find(bk, t) < 0:
        _prune(di, bk, bv, D_N_BID, max(t, di[D_BEST_BID]), True)
    di[D_N_BID] += ht_put(bk, bv, t, qty)
    if t > di[D_BEST_BID]:
        di[D_BEST_BID] = t
        if t >= di[D_BEST_ASK]:
            di[D_BEST_ASK] = depth_above(ak, av, t, di[D_HIGH_ASK])
    if t < di[D_LOW_BID]:
        di[D_LOW_BID] = t
    return t


@nb.njit(cache=True)
def update_ask(di, df, bk, bv, ak, av, px, qty, ts):
    t = round_half_away(px / df[DF_TICK])
    qlot = round_half_away(qty / df[DF_LOT])
    di[D_TS] = ts
    if qlot <= 0:
        di[D_N_ASK] -= ht_del(ak, av, t)
        if t == di[D_BEST_ASK]:
            di[D_BEST_ASK] = depth_above(ak, av, t, di[D_HIGH_ASK])
            if di[D_BEST_ASK] == INVALID_MAX:
                di[D_HIGH_ASK] = INVALID_MIN
        return t
    if (di[D_N_ASK] + 1) * 4 > ak.shape[0] * 3 and ht_find(ak, t) < 0:
        _prune(di, ak, av, D_N_ASK, min(t, di[D_BEST_ASK]), False)
    di[D_N_ASK] += ht_put(ak, av, t, qty)
    if t < di[D_BEST_ASK]:
        di[D_BEST_ASK] = t
        if di[D_BEST_BID] >= t:
            di[D_BEST_BID] = depth_below(bk, bv, t, di[D_LOW_BID])
    if t > di[D_HIGH_ASK]:
        di[D_HIGH_ASK] = t
    return t


@nb.njit(cache=True)
def depth_apply_levels(di, df, bk, bv, ak, av, bids, asks, exch_ts, local_ts, out, n):
    """Sets every level of `bids`, then of `asks` ((m, 2) [px, qty] rows, in order, as
    update_bid/update_ask one by one) and writes one DEPTH event per level into out[n:],
    px and qty as given. Returns the new event count; `out` must have room for them all.

    One call per venue diff: per level from Python, the same work took ~1.5 us a level."""
    for side in range(2):
        levels = bids if side == 0 else asks
        flags = (BUY_EVENT if side == 0 else SELL_EVENT) | EXCH_EVENT | LOCAL_EVENT | DEPTH_EVENT
        for i in range(levels.shape[0]):
            px = levels[i, 0]
            qty = levels[i, 1]
            if side == 0:
                update_bid(di, df, bk, bv, ak, av, px, qty, exch_ts)
            else:
                update_ask(di, df, bk, bv, ak, av, px, qty, exch_ts)
            put_event(out, n, flags, exch_ts, local_ts, px, qty)
            n += 1
    return n


@nb.njit(cache=True)
def apply_depth_event(di, df, bk, bv, ak, av, ev, px, qty, ts):
    """Apply one market event to the depth if it is a LOCAL depth kind; returns True if so.

    DEPTH and DEPTH_SNAPSHOT set a level; DEPTH_CLEAR with a BUY/SELL flag clears that side
    from its best up to `px` (hftbacktest's clear_depth); without a side flag, everything.
    BBO and trade events do not touch the depth, as in hftbacktest's backtester.
    """
    if ev & LOCAL_EVENT == 0:
        return False
    kind = ev & 0xFF
    if kind == DEPTH_EVENT or kind == DEPTH_SNAPSHOT_EVENT:
        if ev & BUY_EVENT:
            update_bid(di, df, bk, bv, ak, av, px, qty, ts)
        elif ev & SELL_EVENT:
            update_ask(di, df, bk, bv, ak, av, px, qty, ts)
        return True
    if kind == DEPTH_CLEAR_EVENT:
        if ev & BUY_EVENT:
            clear_bids_upto(di, df, bk, bv, px)
        elif ev & SELL_EVENT:
            clear_asks_upto(di, df, ak, av, px)
        else:
            depth_clear(di, bk, bv, ak, av)
        di[D_TS] = ts
        return True
    return False


@nb.njit(cache=True)
def _delete_range(keys, vals, lo, hi):
    """Delete every key in [lo, hi]; returns how many."""
    doomed = np.empty(keys.shape[0], np.int64)
    m = 0
    for i in range(keys.shape[0]):
        k = keys[i]
        if k != EMPTY and lo <= k <= hi:
            doomed[m] = k
            m += 1
    for i in range(m):
        ht_del(keys, vals, doomed[i])
    return m


@nb.njit(cache=True)
def clear_bids_upto(di, df, bk, bv, px):
    """hftbacktest's clear_depth(BUY, px): drop bids from px up to the best bid.

    The new best is searched from two ticks below px, as hftbacktest 2.4 does (its
    depth_below(clear_upto - 1, ...) starts one tick lower than the cleared range)."""
    upto = round_half_away(px / df[DF_TICK])
    if di[D_BEST_BID] != INVALID_MIN:
        di[D_N_BID] -= _delete_range(bk, bv, upto, di[D_BEST_BID])
    di[D_BEST_BID] = depth_below(bk, bv, upto - 1, di[D_LOW_BID])
    if di[D_BEST_BID] == INVALID_MIN:
        di[D_LOW_BID] = INVALID_MAX


@nb.njit(cache=True)
def clear_asks_upto(di, df, ak, av, px):
    """hftbacktest's clear_depth(SELL, px): drop asks from the best ask up to px."""
    upto = round_half_away(px / df[DF_TICK])
    if di[D_BEST_ASK] != INVALID_MAX:
        di[D_N_ASK] -= _delete_range(ak, av, di[D_BEST_ASK], upto)
    di[D_BEST_ASK] = depth_above(ak, av, upto + 1, di[D_HIGH_ASK])
    if di[D_BEST_ASK] == INVALID_MAX:
        di[D_HIGH_ASK] = INVALID_MIN


@nb.njit(cache=True)
def depth_levels(keys, vals, descending, max_levels):
    """(ticks, qtys) of a side sorted from the best outward, at most max_levels."""
    n = 0
    for i in range(keys.shape[0]):
        if keys[i] != EMPTY and vals[i] > 0.0:
            n += 1
    ticks = np.empty(n, np.int64)
    qtys = np.empty(n, np.float64)
    m = 0
    for i in range(keys.shape[0]):
        if keys[i] != EMPTY and vals[i] > 0.0:
            ticks[m] = keys[i]
            qtys[m] = vals[i]
            m += 1
    order = argsort_i64(ticks)
    if descending:
        order = order[::-1]
    k = min(n, max_levels)
    return ticks[order[:k]], qtys[order[:k]]


@nb.njit(cache=True)
def depth_snapshot_into(di, df, bk, bv, ak, av, out, ts):
    """Write the book as DEPTH_SNAPSHOT events into `out`: bids descending, then asks
    ascending, skipping crossed levels (bids above the best bid, asks below the best ask).
    Returns the number written (truncated to len(out), keeping the levels nearest the top)."""
    cap = out.shape[0]
    bt, bq = depth_levels(bk, bv, True, cap)
    at, aq = depth_levels(ak, av, False, cap)
    tick = df[DF_TICK]
    n = 0
    best_bid = di[D_BEST_BID]
    best_ask = di[D_BEST_ASK]
    half = cap // 2
    nb_ = 0
    for i in range(bt.shape[0]):
        if bt[i] <= best_bid:
            nb_ += 1
    na_ = 0
    for i in range(at.shape[0]):
        if at[i] >= best_ask:
            na_ += 1
    # share the room between the sides when both do not fit
    if nb_ + na_ > cap:
        if nb_ < half:
            na_ = cap - nb_
        elif na_ < half:
            nb_ = cap - na_
        else:
            nb_ = half
            na_ = cap - half
    k = 0
    for i in range(bt.shape[0]):
        if k >= nb_:
            break
        if bt[i] <= best_bid:
            ev = EXCH_EVENT | LOCAL_EVENT | BUY_EVENT | DEPTH_SNAPSHOT_EVENT
            put_event(out, n, ev, ts, ts, bt[i] * tick, bq[i])
            n += 1
            k += 1
    k = 0
    for i in range(at.shape[0]):
        if k >= na_:
            break
        if at[i] >= best_ask:
            ev = EXCH_EVENT | LOCAL_EVENT | SELL_EVENT | DEPTH_SNAPSHOT_EVENT
            put_event(out, n, ev, ts, ts, at[i] * tick, aq[i])
            n += 1
            k += 1
    return n


class DepthWords:
    """The members both depth jitclasses read from their words (di: ints, df: floats);
    jitclass takes them from this base."""

    @property
    def best_bid_tick(self):
        return self.di[D_BEST_BID]

    @property
    def best_ask_tick(self):
        return self.di[D_BEST_ASK]

    @property
    def best_bid(self):
        t = self.di[D_BEST_BID]
        return np.nan if t == INVALID_MIN else t * self.df[DF_TICK]

    @property
    def best_ask(self):
        t = self.di[D_BEST_ASK]
        return np.nan if t == INVALID_MAX else t * self.df[DF_TICK]

    @property
    def tick_size(self):
        return self.df[DF_TICK]

    @property
    def lot_size(self):
        return self.df[DF_LOT]

    @property
    def timestamp(self):
        return self.di[D_TS]


@jitclass
class HashMapMarketDepth(DepthWords):
    """hftbacktest's depth object as seen from njit (reference §2.1): a view, not a copy."""

    di: nb.int64[:]
    df: nb.float64[:]
    bk: nb.int64[:]
    bv: nb.float64[:]
    ak: nb.int64[:]
    av: nb.float64[:]

    def __init__(self, di, df, bk, bv, ak, av):
        self.di = di
        self.df = df
        self.bk = bk
        self.bv = bv
        self.ak = ak
        self.av = av

    @property
    def best_bid_qty(self):
        t = self.di[D_BEST_BID]
        return 0.0 if t == INVALID_MIN else ht_get(self.bk, self.bv, t)

    @property
    def best_ask_qty(self):
        t = self.di[D_BEST_ASK]
        return 0.0 if t == INVALID_MAX else ht_get(self.ak, self.av, t)

    def bid_qty_at_tick(self, price_tick):
        return ht_get(self.bk, self.bv, np.int64(price_tick))

    def ask_qty_at_tick(self, price_tick):
        return ht_get(self.ak, self.av, np.int64(price_tick))

    def snapshot(self):
        out = np.empty(self.di[D_N_BID] + self.di[D_N_ASK], event_dtype)
        n = depth_snapshot_into(self.di, self.df, self.bk, self.bv, self.ak, self.av, out, 0)
        return out[:n]

    def snapshot_free(self, arr):
        pass  # numpy owns the snapshot; kept for hftbacktest compatibility


class DepthBook:
    """A depth with its own arrays, for Python code (the connector, the sim, tests).

    Exposes the read interface the sim's matching engine expects (best ticks, qty at tick,
    levels from the best outward) and the mutators a book synchroniser expects.
    """

    def __init__(self, tick_size: float, lot_size: float, capacity: int = 1 << 14):
        self.di = np.zeros(D_WORDS, np.int64)
        self.df = np.zeros(DF_WORDS, np.float64)
        self.bk = np.empty(capacity, np.int64)
        self.bv = np.empty(capacity, np.float64)
        self.ak = np.empty(capacity, np.int64)
        self.av = np.empty(capacity, np.float64)
        depth_init(self.di, self.df, self.bk, self.bv, self.ak, self.av, tick_size, lot_size)
        self.tick_size = tick_size
        self.lot_size = lot_size

    @property
    def best_bid_tick(self) -> int:
        return int(self.di[D_BEST_BID])

    @property
    def best_ask_tick(self) -> int:
        return int(self.di[D_BEST_ASK])

    def bid_qty_at_tick(self, tick: int) -> float:
        return float(ht_get(self.bk, self.bv, tick))

    def ask_qty_at_tick(self, tick: int) -> float:
        return float(ht_get(self.ak, self.av, tick))

    def bid_levels(self, max_levels: int):
        t, q = depth_levels(self.bk, self.bv, True, max_levels + 64)
        best = self.best_bid_tick
        return [(int(a), float(b)) for a, b in zip(t, q) if a <= best][:max_levels]

    def ask_levels(self, max_levels: int):
        t, q = depth_levels(self.ak, self.av, False, max_levels + 64)
        best = self.best_ask_tick
        return [(int(a), float(b)) for a, b in zip(t, q) if a >= best][:max_levels]

    def clear(self) -> None:
        depth_clear(self.di, self.bk, self.bv, self.ak, self.av)

    def set_bid(self, px: float, qty: float, ts: int = 0) -> int:
        return update_bid(self.di, self.df, self.bk, self.bv, self.ak, self.av, px, qty, ts)

    def set_ask(self, px: float, qty: float, ts: int = 0) -> int:
        return update_ask(self.di, self.df, self.bk, self.bv, self.ak, self.av, px, qty, ts)

    def snapshot_into(self, out: np.ndarray, ts: int) -> int:
        return depth_snapshot_into(self.di, self.df, self.bk, self.bv, self.ak, self.av, out, ts)
