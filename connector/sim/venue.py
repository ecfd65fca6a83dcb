"""The simulated venue: a synthetic market or a replay of a capture, plus a matching engine.

Market data goes through the same path as a real venue's: each update is applied to the
connector's authoritative book (hftlive.depth.DepthBook), published as one atomic batch of
hftbacktest events on the instrument's ring, and shown to the matching engine, which fills
the bots' orders (connector.matching). Order changes go to the core as OrderReports.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from connector.book import RecordingBook
from connector.feed import Feed
from connector.matching import (
    MESSAGES,
    REASONS,
    REJECT_REDUCE_ONLY,
    MatchingEngine,
    Report,
    SimOrder,
)
from connector.sim.replay import run_replay
from connector.sim.synthetic import run_synthetic
from connector.venue import Core, NewOrder, OrderReport, Venue
from hftlive.constants import EXPIRED
from hftlive.layout import REQ_CANCEL, REQ_MODIFY, REQ_SUBMIT

log = logging.getLogger(__name__)


class SimInstrument(RecordingBook):
    """One instrument of the sim: its book, its batch, and the matching engine that
    watches every level change."""

    def __init__(self, idx: int, cfg, fees: tuple[float, float]):
        super().__init__(idx, cfg)
        self.engine = MatchingEngine(self.book, cfg.lot_size)
        self.maker_fee, self.taker_fee = fees

    def on_level(self, side: int, tick: int, qty: float) -> None:
        self.engine.on_depth(side, tick, qty, self.exch_ts)


class SimVenue(Venue):
    """The sim venue. `run()` drives the market until stopped (or the replay ends)."""

    def __init__(self, cfg, core: Core):
        self.cfg = cfg
        self.sim = cfg.section
        self.core = core
        fees = (self.sim.maker_fee, self.sim.taker_fee)
        self.insts = [SimInstrument(i, c, fees) for i, c in enumerate(cfg.instruments)]
        self.by_symbol = {s.symbol.lower(): s for s in self.insts}
        self._stop = asyncio.Event()
        self._sides: dict[int, int] = {}  # key -> side, for fees and fills
        self._positions = [0.0] * len(self.insts)  # the simulated account's, from its fills
        self._last_snapshot = 0.0
        self.rng = random.Random(self.sim.seed)
        self.feed = Feed(core, self.insts, on_trade=self.on_trade, on_book=self.on_book)

    # ------------------------------------------------------------------ orders

    def submit(self, order: NewOrder) -> None:
        s = self.insts[order.inst]
        self._sides[order.key] = order.side
        qty = order.qty
        if order.reduce_only:
            # as a venue does it for the whole account: never beyond the position, never
            # on its side (the engine itself keeps no position)
            pos = self._positions[order.inst]
            if pos * order.side >= 0:
                now = self._now(s)
                self._report(s, [Report(order.key, EXPIRED, 0.0, 0, False, 0.0, 0.0,
                                        order.price_tick, qty, now,
                                        reject_code=REJECT_REDUCE_ONLY)], REQ_SUBMIT)  # fmt: skip
                return
            qty = min(qty, abs(pos))
        o = SimOrder(key=order.key, side=order.side, px_tick=order.price_tick, qty=qty,
                     tif=order.tif, order_type=order.order_type)  # fmt: skip
        self._report(s, s.engine.submit(o, self._now(s)), REQ_SUBMIT)

    def cancel(self, key: int, inst: int, leaving: bool = False) -> None:
        # the engine answers at once: no order of the sim is ever of unknown outcome
        s = self.insts[inst]
        self._report(s, s.engine.cancel(key, self._now(s)), REQ_CANCEL)

    def modify(self, key: int, inst: int, price_tick: int, qty: float) -> None:
        s = self.insts[inst]
        self._report(s, s.engine.modify(key, price_tick, qty, self._now(s)), REQ_MODIFY)

    def reference_price(self, inst: int) -> float:
        return self.insts[inst].mid()

    def account_position(self, inst: int) -> float:
        return self._positions[inst]

    def unsure(self) -> list[int]:
        return []

    def gauges(self) -> dict[str, float]:
        return {}

    async def stop(self, unsure: list[int]) -> None:
        self._stop.set()

    @staticmethod
    def _now(s: SimInstrument) -> int:
        # the venue's clock: the market time of the instrument, advanced to the wall clock
        return max(s.exch_ts, time.time_ns())

    def _report(self, s: SimInstrument, reports: list[Report], completes: int = 0) -> None:
        out = []
        for i, r in enumerate(reports):
            fee = 0.0
            if r.exec_qty > 0:
                rate = s.maker_fee if r.maker else s.taker_fee
                fee = r.exec_qty * r.exec_px_tick * s.tick_size * rate
                self._positions[s.idx] += self._sides.get(r.key, 0) * r.exec_qty
            out.append(OrderReport(
                key=r.key, status=r.status, qty=r.qty, leaves_qty=r.leaves_qty,
                price_tick=r.px_tick, exch_ts=r.exch_ts, completes=completes if i == 0 else 0,
                exec_qty=r.exec_qty, exec_price_tick=r.exec_px_tick, maker=r.maker, fee=fee,
                reject_code=r.reject_code, reject_msg=MESSAGES.get(r.reject_code, ""),
                reason=REASONS.get(r.reject_code, 0),
            ))  # fmt: skip
        if out:
            self.core.report(*out)

    # ------------------------------------------------------------------ market data

    def on_book(self, s: SimInstrument) -> None:
        """After the feed published a book change: the engine sees the new book."""
        self._report(s, s.engine.on_book(s.exch_ts))

    def on_trade(self, s: SimInstrument, aggressor: int, px: float, qty: float) -> None:
        """After the feed published a trade: it may fill resting orders."""
        tick = round(px / s.tick_size)
        self._report(s, s.engine.on_trade(aggressor, tick, qty, s.exch_ts))

    def maybe_snapshot(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_snapshot >= self.cfg.connector.snapshot_interval_ms / 1e3:
            self._last_snapshot = now
            for s in self.insts:
                self.core.write_snapshot(s.idx, s.book, s.exch_ts)

    async def run(self) -> None:
        # no session of its own to lose: the sim is connected from the start
        self.core.connected(True)
        if self.sim.data:
            await run_replay(self, self.sim.data, self.sim.speed)
        else:
            await run_synthetic(self)

    def stopped(self) -> bool:
        return self._stop.is_set()

    async def wait_stopped(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel (3.11)
                await self._stop.wait()
            return True
        except TimeoutError:
            return False
