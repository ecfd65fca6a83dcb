"""The simulated venue: a synthetic market or a replay of a capture, plus a matching engine.

Market data goes through the same path as a real venue's: each update is applied to the
connector's authoritative book (hftlive.depth.DepthBook), published as one atomic batch of
hftbacktest events on the instrument's ring, and shown to the matching engine, which fills
the bots' orders (connector.sim.matching). Order changes go to the Router as OrderReports.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import random
import time

from connector.book import BUY_TRADE, SELL_TRADE, RecordingBook
from connector.sim.matching import MatchingEngine, Report, SimOrder
from connector.venue import OrderReport
from hftlive.constants import (
    BUY,
)
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


class SimVenue:
    """The sim venue. `run()` drives the market until stopped (or the replay ends)."""

    def __init__(self, cfg, shm, router):
        self.cfg = cfg
        self.sim = cfg.sim
        self.shm = shm
        self.router = router
        fees = (self.sim.maker_fee, self.sim.taker_fee)
        self.insts = [SimInstrument(i, c, fees) for i, c in enumerate(cfg.instruments)]
        self.by_symbol = {s.symbol.lower(): s for s in self.insts}
        self._stop = asyncio.Event()
        self._sides: dict[int, int] = {}  # key -> side, for fees and fills
        self._last_snapshot = 0.0
        self.rng = random.Random(self.sim.seed)

    # ------------------------------------------------------------------ orders

    def submit(self, key, inst, side, price_tick, qty, tif, order_type) -> None:
        s = self.insts[inst]
        self._sides[key] = side
        o = SimOrder(
            key=key, side=side, px_tick=price_tick, qty=qty, tif=tif, order_type=order_type
        )
        self._report(s, s.engine.submit(o, self._now(s)), REQ_SUBMIT)

    def cancel(self, key, inst) -> None:
        s = self.insts[inst]
        self._report(s, s.engine.cancel(key, self._now(s)), REQ_CANCEL)

    def modify(self, key, inst, price_tick, qty) -> None:
        s = self.insts[inst]
        self._report(s, s.engine.modify(key, price_tick, qty, self._now(s)), REQ_MODIFY)

    def reference_price(self, inst: int) -> float:
        return self.insts[inst].mid()

    def stop(self) -> None:
        self._stop.set()

    @staticmethod
    def _now(s: SimInstrument) -> int:
        # the venue's clock: the market time of the instrument, advanced to the wall clock
        return max(s.exch_ts, time.time_ns())

    def _report(self, s: SimInstrument, reports: list[Report], completes: int = 0) -> None:
        for i, r in enumerate(reports):
            fee = 0.0
            if r.exec_qty > 0:
                rate = s.maker_fee if r.maker else s.taker_fee
                fee = r.exec_qty * r.exec_px_tick * s.tick_size * rate
            self.router.on_report(
                OrderReport(
                    key=r.key, status=r.status, qty=r.qty, leaves_qty=r.leaves_qty,
                    price_tick=r.px_tick, exch_ts=r.exch_ts,
                    completes=completes if i == 0 else 0,
                    exec_qty=r.exec_qty, exec_price_tick=r.exec_px_tick, maker=r.maker, fee=fee,
                    reject_code=r.reject_code, reject_msg=_REJECT_MSG.get(r.reject_code, ""),
                )
            )  # fmt: skip
        if reports:
            self.router.flush()

    # ------------------------------------------------------------------ market data

    def _flush(self, s: SimInstrument) -> None:
        """Publish the instrument's batch, then let the engine see the new book."""
        if s.batch.n:
            self.shm.publish(s.idx, s.batch.ev, s.batch.n)
            s.batch.n = 0
        self._report(s, s.engine.on_book(s.exch_ts))

    def _trade(self, s: SimInstrument, aggressor: int, px: float, qty: float) -> None:
        s.batch.add(BUY_TRADE if aggressor == BUY else SELL_TRADE, s.exch_ts, s.local_ts, px, qty)
        self.shm.publish(s.idx, s.batch.ev, s.batch.n)
        s.batch.n = 0
        tick = round(px / s.tick_size)
        self._report(s, s.engine.on_trade(aggressor, tick, qty, s.exch_ts))

    def maybe_snapshot(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_snapshot >= self.cfg.connector.snapshot_interval_ms / 1e3:
            self._last_snapshot = now
            for s in self.insts:
                self.shm.write_snapshot(s.idx, s.book, s.exch_ts)

    async def run(self) -> None:
        if self.sim.data:
            from connector.sim.replay import run_replay

            await run_replay(self, self.sim.data, self.sim.speed)
        else:
            from connector.sim.synthetic import run_synthetic

            await run_synthetic(self)

    async def wait_stopped(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel (3.11)
                await self._stop.wait()
            return True
        except TimeoutError:
            return False


_REJECT_MSG = {
    -5022: "Due to the order could not be executed as maker, the Post Only order will be rejected.",
    -5021: "Due to the order could not be filled immediately, the FOK order has been rejected.",
    -2011: "Unknown order sent.",
    -4003: "Quantity less than or equal to zero.",
    -4023: "Quantity not increased by step size.",
    -4013: "Price less than min price.",
    -5027: "No need to modify the order.",
}


def open_capture(path: str):
    """Lines of a capture file (`<local ns> <raw JSON>`), gzip or plain."""
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")
