"""What every venue adapter publishes through: event kinds, an event batch, and a book
that records what changes it.

A venue applies each venue update to the connector's authoritative book (a DepthBook)
through `RecordingBook.set_bid`/`set_ask`/`clear`, which also record hftbacktest events
into the instrument's batch; the venue then publishes the batch as one atomic update.
"""

from __future__ import annotations

import math

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
from hftlive.depth import DepthBook
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


class Batch:
    """Events of one atomic update, built up and then published at once."""

    def __init__(self, capacity: int):
        self.ev = np.zeros(capacity, event_dtype)
        self.n = 0

    def add(self, ev: int, exch_ts: int, local_ts: int, px: float, qty: float) -> None:
        if self.n == len(self.ev):
            grown = np.zeros(2 * len(self.ev), event_dtype)
            grown[: self.n] = self.ev
            self.ev = grown
        self.ev[self.n] = (ev, exch_ts, local_ts, px, qty, 0, 0, 0.0)
        self.n += 1


class RecordingBook:
    """One instrument's book: applies updates, records them as events, and calls
    `on_level(side, tick, qty)` for each level change (a matching engine may listen)."""

    def __init__(self, idx: int, cfg):
        self.idx = idx
        self.symbol = cfg.symbol
        self.tick_size = cfg.tick_size
        self.lot_size = cfg.lot_size
        self.book = DepthBook(cfg.tick_size, cfg.lot_size)
        self.batch = Batch(4096)
        self.exch_ts = 0
        self.local_ts = 0

    def on_level(self, side: int, tick: int, qty: float) -> None:
        pass

    def set_bid(self, px: float, qty: float) -> None:
        t = self.book.set_bid(px, qty, self.exch_ts)
        self.batch.add(BID_DEPTH, self.exch_ts, self.local_ts, px, qty)
        self.on_level(BUY, t, qty)

    def set_ask(self, px: float, qty: float) -> None:
        t = self.book.set_ask(px, qty, self.exch_ts)
        self.batch.add(ASK_DEPTH, self.exch_ts, self.local_ts, px, qty)
        self.on_level(SELL, t, qty)

    def clear(self) -> None:
        self.book.clear()
        self.batch.add(CLEAR, self.exch_ts, self.local_ts, 0.0, 0.0)

    def mid(self) -> float:
        b, a = self.book.best_bid_tick, self.book.best_ask_tick
        if b == INVALID_MIN or a == INVALID_MAX:
            return math.nan
        return (b + a) * 0.5 * self.tick_size
