"""A synthetic market for the sim venue: no file, no network.

Per instrument, a mid price follows a geometric random walk; the book holds `levels`
contiguous price levels per side around it with random sizes, a fraction of which change
each interval; trades print on both sides at the best prices, with Poisson counts. It is
made to exercise strategies and the whole live path, not to model any real market.
"""

from __future__ import annotations

import asyncio
import math
import time

from connector.book import RecordingBook
from hftlive.constants import BUY, INVALID_MAX, INVALID_MIN, SELL

DEFAULT_START = {"btcusdt": 60000.0, "ethusdt": 2500.0, "solusdt": 150.0}


def _size(rng, lot: float) -> float:
    lots = max(1, int(rng.lognormvariate(3.0, 1.0)))
    return round(lots * lot, 10)


class SyntheticMarket:
    def __init__(self, venue, s: RecordingBook, start_price: float):
        self.v = venue
        self.s = s
        self.rng = venue.rng
        self.mid = start_price
        self.levels = venue.sim.levels
        self.vol = venue.sim.volatility_bp * 1e-4
        self.trades_per_tick = venue.sim.trades_per_tick

    def step(self, now_ns: int) -> None:
        s, rng = self.s, self.rng
        s.exch_ts = now_ns - 1_000_000  # the venue's time: 1 ms before we "received" it
        s.local_ts = now_ns
        self.mid *= math.exp(rng.gauss(0.0, self.vol))
        tick = s.tick_size
        mid_tick = self.mid / tick
        best_bid = math.floor(mid_tick - 0.5)
        best_ask = max(best_bid + 1, math.ceil(mid_tick + 0.5))
        book = s.book
        # remove levels now on the wrong side of the new touch or beyond the depth window
        for t, _ in book.bid_levels(10 * self.levels):
            if t > best_bid or t <= best_bid - self.levels:
                s.set_bid(t * tick, 0.0)
        for t, _ in book.ask_levels(10 * self.levels):
            if t < best_ask or t >= best_ask + self.levels:
                s.set_ask(t * tick, 0.0)
        for i in range(self.levels):
            bt, at = best_bid - i, best_ask + i
            if book.bid_qty_at_tick(bt) == 0.0 or rng.random() < 0.2:
                s.set_bid(bt * tick, _size(rng, s.lot_size))
            if book.ask_qty_at_tick(at) == 0.0 or rng.random() < 0.2:
                s.set_ask(at * tick, _size(rng, s.lot_size))
        self.v.feed.publish(s)
        n_trades = _poisson(rng, self.trades_per_tick)
        for _ in range(n_trades):
            side = BUY if rng.random() < 0.5 else SELL
            t = book.best_ask_tick if side == BUY else book.best_bid_tick
            if t in (INVALID_MIN, INVALID_MAX):
                continue
            self.v.feed.trade(s, side, t * tick, _size(rng, s.lot_size))


def _poisson(rng, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


async def run_synthetic(venue) -> None:
    """Drives `venue` (a SimVenue: its instruments, feed and stop) until it stops."""
    markets = []
    for s, c in zip(venue.insts, venue.cfg.instruments):
        start = c.start_price or DEFAULT_START.get(s.symbol.lower(), 100.0)
        markets.append(SyntheticMarket(venue, s, start))
    interval = venue.sim.tick_interval_ms / 1e3
    for m in markets:
        m.step(time.time_ns())
    venue.maybe_snapshot(force=True)
    next_t = time.monotonic()
    while not venue.stopped():
        next_t += interval
        delay = next_t - time.monotonic()
        if delay > 0:
            if await venue.wait_stopped(delay):
                break
        else:
            next_t = time.monotonic()
            await asyncio.sleep(0)
        now = time.time_ns()
        for m in markets:
            m.step(now)
        venue.maybe_snapshot()
