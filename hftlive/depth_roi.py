"""L2 market depth over a range of interest: one dense vector of quantities per side.

hftbacktest's ROIVectorMarketDepth (reference §2.2; Rust `hftbacktest/src/depth/
roivectormarketdepth.rs`, 2.4.4): the bid and ask quantities at every tick of
[roi_lb_tick, roi_ub_tick], index = price_tick - roi_lb_tick. The arrays live where the
hash-map depth's do (a bot's view segment: hftlive.layout `depth_i`, `depth_f`,
`roi_bids`, `roi_asks`), and the same event path fills them (hftlive.botfn.md_consume
calls `depth_event`, below, which picks this module's functions or hftlive.depth's by the
depth's arrays).

Rules, as hftbacktest's:
* a level outside the ROI is ignored entirely: it is not stored and does not move the
  best bid or ask, so when the market leaves the ROI the best on that side is the best
  level still inside it, or none (INVALID_MIN / INVALID_MAX, NaN prices);
* a level inside is stored as given (a qty that rounds to 0 lots is kept in the vector,
  and a zero ends the level); the best moves as the hash-map depth's does, its scans
  bounded by the ROI;
* `bid_qty_at_tick`/`ask_qty_at_tick` outside the ROI return NaN (the hash map: 0.0);
  `best_bid_qty` is 0.0 and `best_ask_qty` NaN when that side has no best (Rust's rule;
  hftbacktest's Python binding returns the best *price* from both, a bug not copied);
* `clear_depth(side, px)` as 2.4.4 does it, quirks included (see clear_asks_upto), so
  that a book is the backtest's tick for tick.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numba.experimental import jitclass
from numba.extending import overload

from hftlive.constants import (
    BUY_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    INVALID_MAX,
    INVALID_MIN,
    LOCAL_EVENT,
    SELL_EVENT,
)
from hftlive.depth import (
    DepthWords,
    HashMapMarketDepth,
    apply_depth_event,
    depth_clear,
    round_half_away,
)
from hftlive.layout import (
    D_BEST_ASK,
    D_BEST_BID,
    D_HIGH_ASK,
    D_LOW_BID,
    D_ROI_LB,
    D_ROI_UB,
    D_TS,
    DF_LOT,
    DF_TICK,
)


@nb.njit(cache=True)
def roi_init(di, df, bids, asks, tick_size, lot_size, roi_lb_tick, roi_ub_tick):
    """An empty depth over [roi_lb_tick, roi_ub_tick]; bids/asks hold at least that many."""
    di[:] = 0
    di[D_ROI_LB] = roi_lb_tick
    di[D_ROI_UB] = roi_ub_tick
    df[DF_TICK] = tick_size
    df[DF_LOT] = lot_size
    roi_clear(di, bids, asks)


@nb.njit(cache=True)
def roi_clear(di, bids, asks):
    bids[:] = 0.0
    asks[:] = 0.0
    di[D_BEST_BID] = INVALID_MIN
    di[D_BEST_ASK] = INVALID_MAX
    di[D_LOW_BID] = INVALID_MAX
    di[D_HIGH_ASK] = INVALID_MIN


@nb.njit(cache=True, inline="always")
def roi_below(vec, start, end, lb, ub):
    """Highest tick in [end, start), both clamped to the ROI, with qty > 0; else INVALID_MIN."""
    t = min(start, ub) - 1
    end = max(end, lb)
    while t >= end:
        if vec[t - lb] > 0.0:
            return t
        t -= 1
    return INVALID_MIN


@nb.njit(cache=True, inline="always")
def roi_above(vec, start, end, lb, ub):
    """Lowest tick in (start, end], both clamped to the ROI, with qty > 0; else INVALID_MAX."""
    t = max(start, lb) + 1
    end = min(end, ub)
    while t <= end:
        if vec[t - lb] > 0.0:
            return t
        t += 1
    return INVALID_MAX


@nb.njit(cache=True)
def roi_qty_at(di, vec, t, outside):
    """vec's qty at tick t, or `outside` if t is not in the ROI. Branch-free (the index is
    clamped, the value selected): with an early return, reading an array in one branch
    cost ~20 ns a call (reference counting numba could not drop), ~1 ns this way
    (bench/strategy_calls.py)."""
    lb = di[D_ROI_LB]
    inside = (t >= lb) & (t <= di[D_ROI_UB])
    q = vec[t - lb if inside else 0]
    return q if inside else outside


@nb.njit(cache=True)
def roi_update_bid(di, df, bids, asks, px, qty, ts):
    t = round_half_away(px / df[DF_TICK])
    di[D_TS] = ts
    lb, ub = di[D_ROI_LB], di[D_ROI_UB]
    if t < lb or t > ub:
        return t  # outside the range of interest: ignored
    bids[t - lb] = qty
    if round_half_away(qty / df[DF_LOT]) == 0:
        if t == di[D_BEST_BID]:
            di[D_BEST_BID] = roi_below(bids, t, di[D_LOW_BID], lb, ub)
            if di[D_BEST_BID] == INVALID_MIN:
                di[D_LOW_BID] = INVALID_MAX
        return t
    if t > di[D_BEST_BID]:
        di[D_BEST_BID] = t
        if t >= di[D_BEST_ASK]:
            di[D_BEST_ASK] = roi_above(asks, t, di[D_HIGH_ASK], lb, ub)
    if t < di[D_LOW_BID]:
        di[D_LOW_BID] = t
    return t


@nb.njit(cache=True)
def roi_update_ask(di, df, bids, asks, px, qty, ts):
    t = round_half_away(px / df[DF_TICK])
    di[D_TS] = ts
    lb, ub = di[D_ROI_LB], di[D_ROI_UB]
    if t < lb or t > ub:
        return t
    asks[t - lb] = qty
    if round_half_away(qty / df[DF_LOT]) == 0:
        if t == di[D_BEST_ASK]:
            di[D_BEST_ASK] = roi_above(asks, t, di[D_HIGH_ASK], lb, ub)
            if di[D_BEST_ASK] == INVALID_MAX:
                di[D_HIGH_ASK] = INVALID_MIN
        return t
    if t < di[D_BEST_ASK]:
        di[D_BEST_ASK] = t
        if di[D_BEST_BID] >= t:
            di[D_BEST_BID] = roi_below(bids, t, di[D_LOW_BID], lb, ub)
    if t > di[D_HIGH_ASK]:
        di[D_HIGH_ASK] = t
    return t


@nb.njit(cache=True)
def roi_clear_bids_upto(di, df, bids, px):
    """hftbacktest's clear_depth(BUY, px): bids from px up to the best bid are zeroed; the
    new best is searched from two ticks below px (as the hash-map depth's), within the ROI.
    A non-finite px clears the whole side."""
    lb, ub = di[D_ROI_LB], di[D_ROI_UB]
    if math.isfinite(px):
        upto = round_half_away(px / df[DF_TICK])
        if di[D_BEST_BID] != INVALID_MIN:
            bids[max(upto - lb, 0) : di[D_BEST_BID] + 1 - lb] = 0.0
        low = lb if di[D_LOW_BID] == INVALID_MAX else di[D_LOW_BID]
        di[D_BEST_BID] = roi_below(bids, min(max(upto - 1, lb), ub), low, lb, ub)
    else:
        bids[:] = 0.0
        di[D_BEST_BID] = INVALID_MIN
    if di[D_BEST_BID] == INVALID_MIN:
        di[D_LOW_BID] = INVALID_MAX


@nb.njit(cache=True)
def roi_clear_asks_upto(di, df, asks, px):
    """hftbacktest's clear_depth(SELL, px): the best ask moves above px (searched from two
    ticks above, within the ROI). 2.4.4 zeroes indexes [best_ask - roi_lb, px + 1 - roi_ub),
    roi_ub where the bid side has roi_lb, so the asks it skips usually stay in the vector
    (`ask_depth` shows them; they come back as the best once the levels below are gone).
    Reproduced: a strategy sees the book its backtest saw."""
    lb, ub = di[D_ROI_LB], di[D_ROI_UB]
    if math.isfinite(px):
        upto = round_half_away(px / df[DF_TICK])
        if di[D_BEST_ASK] != INVALID_MAX:
            frm = di[D_BEST_ASK] - lb
            to = min(upto + 1 - ub, asks.shape[0])
            if frm < to:
                asks[frm:to] = 0.0
        high = ub if di[D_HIGH_ASK] == INVALID_MIN else di[D_HIGH_ASK]
        di[D_BEST_ASK] = roi_above(asks, min(max(upto + 1, lb), ub), high, lb, ub)
    else:
        asks[:] = 0.0
        di[D_BEST_ASK] = INVALID_MAX
    if di[D_BEST_ASK] == INVALID_MAX:
        di[D_HIGH_ASK] = INVALID_MIN


@nb.njit(cache=True)
def roi_apply_depth_event(di, df, bids, asks, ev, px, qty, ts):
    """hftlive.depth.apply_depth_event for this depth: same events, same return."""
    if ev & LOCAL_EVENT == 0:
        return False
    kind = ev & 0xFF
    if kind == DEPTH_EVENT or kind == DEPTH_SNAPSHOT_EVENT:
        if ev & BUY_EVENT:
            roi_update_bid(di, df, bids, asks, px, qty, ts)
        elif ev & SELL_EVENT:
            roi_update_ask(di, df, bids, asks, px, qty, ts)
        return True
    if kind == DEPTH_CLEAR_EVENT:
        if ev & BUY_EVENT:
            roi_clear_bids_upto(di, df, bids, px)
        elif ev & SELL_EVENT:
            roi_clear_asks_upto(di, df, asks, px)
        else:
            roi_clear(di, bids, asks)
        di[D_TS] = ts
        return True
    return False


@jitclass
class ROIVectorMarketDepth(DepthWords):
    """hftbacktest's ROI-vector depth object as seen from njit (module docstring): a view,
    not a copy; `bid_depth`/`ask_depth` are views of the vectors themselves."""

    di: nb.int64[:]
    df: nb.float64[:]
    bids: nb.float64[:]
    asks: nb.float64[:]

    def __init__(self, di, df, bids, asks):
        self.di = di
        self.df = df
        self.bids = bids
        self.asks = asks

    @property
    def best_bid_qty(self):
        return roi_qty_at(self.di, self.bids, self.di[D_BEST_BID], 0.0)

    @property
    def best_ask_qty(self):
        return roi_qty_at(self.di, self.asks, self.di[D_BEST_ASK], np.nan)

    def bid_qty_at_tick(self, price_tick):
        return roi_qty_at(self.di, self.bids, np.int64(price_tick), np.nan)

    def ask_qty_at_tick(self, price_tick):
        return roi_qty_at(self.di, self.asks, np.int64(price_tick), np.nan)

    @property
    def bid_depth(self):
        return self.bids

    @property
    def ask_depth(self):
        return self.asks

    @property
    def roi_lb_tick(self):
        return self.di[D_ROI_LB]

    @property
    def roi_ub_tick(self):
        return self.di[D_ROI_UB]


# ---------------------------------------------------------------------- either depth
#
# The bot's event path (hftlive.botfn) is written once for both depths: it holds a depth
# as the tuple of its arrays, (di, df, bid_keys, bid_vals, ask_keys, ask_vals) for the hash
# map, (di, df, bids, asks) for the ROI vector, and these pick the functions by the tuple's
# type at compile time (no branch at run time).


# The Python bodies serve Python callers (and NUMBA_DISABLE_JIT=1); njit code gets the
# overloads below them.
def depth_event(dep, ev, px, qty, ts):
    """Apply one market event to the depth `dep` (a tuple of its arrays); True if it was a
    depth event (hftlive.depth.apply_depth_event)."""
    if len(dep) == 4:
        return roi_apply_depth_event(*dep, ev, px, qty, ts)
    return apply_depth_event(*dep, ev, px, qty, ts)


def depth_reset(dep):
    """Empty the depth `dep` (a tuple of its arrays)."""
    if len(dep) == 4:
        roi_clear(dep[0], dep[2], dep[3])
    else:
        depth_clear(dep[0], *dep[2:])


def depth_arrays(depth):
    """The tuple of arrays behind a depth jitclass, as depth_event takes it."""
    if hasattr(depth, "bids"):
        return depth.di, depth.df, depth.bids, depth.asks
    return depth.di, depth.df, depth.bk, depth.bv, depth.ak, depth.av


def _is_roi(dep) -> bool:
    if not isinstance(dep, nb.types.BaseTuple) or len(dep.types) not in (4, 6):
        raise nb.errors.TypingError(f"not the arrays of a depth: {dep}")
    return len(dep.types) == 4


@overload(depth_event, inline="always")
def _ol_depth_event(dep, ev, px, qty, ts):
    if _is_roi(dep):
        return lambda dep, ev, px, qty, ts: roi_apply_depth_event(
            dep[0], dep[1], dep[2], dep[3], ev, px, qty, ts)  # fmt: skip
    return lambda dep, ev, px, qty, ts: apply_depth_event(
        dep[0], dep[1], dep[2], dep[3], dep[4], dep[5], ev, px, qty, ts)  # fmt: skip


@overload(depth_reset, inline="always")
def _ol_depth_reset(dep):
    if _is_roi(dep):
        return lambda dep: roi_clear(dep[0], dep[2], dep[3])
    return lambda dep: depth_clear(dep[0], dep[2], dep[3], dep[4], dep[5])


@overload(depth_arrays, inline="always")
def _ol_depth_arrays(depth):
    if depth == ROIVectorMarketDepth.class_type.instance_type:
        return lambda depth: (depth.di, depth.df, depth.bids, depth.asks)
    if depth == HashMapMarketDepth.class_type.instance_type:
        return lambda depth: (depth.di, depth.df, depth.bk, depth.bv, depth.ak, depth.av)
    return None
