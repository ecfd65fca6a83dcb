"""What every venue adapter publishes through: event kinds, an event batch, and a book
that records what changes it.

A venue applies each venue update to the connector's authoritative book (a DepthBook)
through `RecordingBook.set_bid`/`set_ask`/`clear`, which also record hftbacktest events
into the instrument's batch; the venue then publishes the batch as one atomic update.
"""

from __future__ import annotations

import math
import struct
from decimal import Decimal

import numpy as np

from hftlive.constants import (
    BUY,
    BUY_EVENT,
    DEPTH_BBO_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EXCH_EVENT,
    INVALID_MAX,
    INVALID_MIN,
    LOCAL_EVENT,
    SELL,
    SELL_EVENT,
    TRADE_EVENT,
)
from hftlive.depth import DepthBook, depth_apply_levels
from hftlive.layout import event_dtype

BID_DEPTH = EXCH_EVENT | LOCAL_EVENT | BUY_EVENT | DEPTH_EVENT
ASK_DEPTH = EXCH_EVENT | LOCAL_EVENT | SELL_EVENT | DEPTH_EVENT
BID_SNAP = EXCH_EVENT | LOCAL_EVENT | BUY_EVENT | DEPTH_SNAPSHOT_EVENT
ASK_SNAP = EXCH_EVENT | LOCAL_EVENT | SELL_EVENT | DEPTH_SNAPSHOT_EVENT
BUY_TRADE = EXCH_EVENT | LOCAL_EVENT | BUY_EVENT | TRADE_EVENT
SELL_TRADE = EXCH_EVENT | LOCAL_EVENT | SELL_EVENT | TRADE_EVENT
CLEAR = EXCH_EVENT | LOCAL_EVENT | DEPTH_CLEAR_EVENT
BID_BBO = EXCH_EVENT | LOCAL_EVENT | BUY_EVENT | DEPTH_BBO_EVENT
ASK_BBO = EXCH_EVENT | LOCAL_EVENT | SELL_EVENT | DEPTH_BBO_EVENT

# event_dtype as packed bytes: its 8 fields are 8 bytes each, little-endian, no padding
_EVENT = struct.Struct("<QqqddQqd")
_EVENT2 = struct.Struct("<QqqddQqdQqqddQqd")
_OFFSETS = [event_dtype.fields[f][1] for f in event_dtype.names]
assert _EVENT.size == event_dtype.itemsize and _OFFSETS == list(range(0, _EVENT.size, 8))


def _decimals(step: float) -> int:
    return max(0, -Decimal(repr(step)).normalize().as_tuple().exponent)


class Batch:
    """Events of one atomic update, built up and then published at once."""

    def __init__(self, capacity: int):
        self.ev = np.zeros(capacity, event_dtype)
        self.n = 0
        self._mem = memoryview(self.ev).cast("B")

    def reserve(self, extra: int) -> None:
        """Makes room for `extra` more events (bulk writers fill `ev` themselves)."""
        need = self.n + extra
        if need > len(self.ev):
            grown = np.zeros(max(2 * len(self.ev), need), event_dtype)
            grown[: self.n] = self.ev[: self.n]
            self.ev = grown
            self._mem = memoryview(grown).cast("B")

    def add(self, ev: int, exch_ts: int, local_ts: int, px: float, qty: float) -> None:
        if self.n == len(self.ev):
            self.reserve(1)
        # one C call writes the whole record (a tuple assigned to a numpy record: ~0.5 us)
        _EVENT.pack_into(self._mem, self.n * _EVENT.size, ev, exch_ts, local_ts, px, qty, 0, 0, 0.0)
        self.n += 1

    def add2(self, ev1: int, px1: float, qty1: float, ev2: int, px2: float, qty2: float,
             exch_ts: int, local_ts: int) -> None:  # fmt: skip
        """Two events sharing their stamps (a bookTicker's bid and ask) in one write."""
        if self.n + 2 > len(self.ev):
            self.reserve(2)
        _EVENT2.pack_into(self._mem, self.n * _EVENT.size, ev1, exch_ts, local_ts, px1, qty1,
                          0, 0, 0.0, ev2, exch_ts, local_ts, px2, qty2, 0, 0, 0.0)  # fmt: skip
        self.n += 2


class RecordingBook:
    """One instrument's book: applies updates, records them as events, and calls
    `on_level(side, tick, qty)` for each level change (a matching engine may listen)."""

    def __init__(self, idx: int, cfg):
        self.idx = idx
        self.symbol = cfg.symbol
        self.tick_size = cfg.tick_size
        self.lot_size = cfg.lot_size
        self._tick = Decimal(repr(cfg.tick_size))
        self._lot = Decimal(repr(cfg.lot_size))
        self.price_dp = _decimals(cfg.tick_size)
        self.qty_dp = _decimals(cfg.lot_size)
        self.book = DepthBook(cfg.tick_size, cfg.lot_size)
        self.batch = Batch(4096)
        self.exch_ts = 0
        self.local_ts = 0

    def on_level(self, side: int, tick: int, qty: float) -> None:
        pass

    # order formatting: exact decimals on the venue's grid (str(1e-05) would be refused)
    def px_text(self, price_tick: int) -> str:
        return f"{self._tick * price_tick:.{self.price_dp}f}"

    def qty_text(self, qty: float) -> str:
        return f"{self._lot * round(qty / self.lot_size):.{self.qty_dp}f}"

    def tick_of(self, px: float) -> int:
        return round(px / self.tick_size)

    def set_bid(self, px: float, qty: float) -> None:
        t = self.book.set_bid(px, qty, self.exch_ts)
        self.batch.add(BID_DEPTH, self.exch_ts, self.local_ts, px, qty)
        self.on_level(BUY, t, qty)

    def set_ask(self, px: float, qty: float) -> None:
        t = self.book.set_ask(px, qty, self.exch_ts)
        self.batch.add(ASK_DEPTH, self.exch_ts, self.local_ts, px, qty)
        self.on_level(SELL, t, qty)

    def apply_levels(self, bids: np.ndarray, asks: np.ndarray) -> None:
        """`set_bid` for every (px, qty) row of `bids`, then `set_ask` for `asks`: the same
        book and events, in one @njit call (hftlive.depth.depth_apply_levels)."""
        if type(self).on_level is not RecordingBook.on_level or bids.ndim != 2 or asks.ndim != 2:
            # a listener wants each level (the sim's matching engine), or an odd shape
            for px, qty in bids.tolist():
                self.set_bid(px, qty)
            for px, qty in asks.tolist():
                self.set_ask(px, qty)
            return
        b = self.batch
        b.reserve(len(bids) + len(asks))
        d = self.book
        b.n = depth_apply_levels(d.di, d.df, d.bk, d.bv, d.ak, d.av, bids, asks, self.exch_ts,
                                 self.local_ts, b.ev, b.n)  # fmt: skip

    def clear(self) -> None:
        self.book.clear()
        self.batch.add(CLEAR, self.exch_ts, self.local_ts, 0.0, 0.0)

    def mid(self) -> float:
        b, a = self.book.best_bid_tick, self.book.best_ask_tick
        if b == INVALID_MIN or a == INVALID_MAX:
            return math.nan
        return (b + a) * 0.5 * self.tick_size
