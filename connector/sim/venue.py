"""The simulated venue: a synthetic market, a replay of a capture or a real venue's live
market (connector.sim.live), plus a matching engine.

Market data goes through the same path as a real venue's: each update is applied to the
connector's authoritative book (hftlive.depth.DepthBook), published as one atomic batch of
hftbacktest events on the instrument's ring, and shown to the matching engine, which fills
the bots' orders: connector.matching by default, or hftbacktest's exchange model with its
latencies (`[sim] exchange = "no_partial_fill"`/`"partial_fill"`, connector.sim.hbt).
Order changes go to the core as OrderReports.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import replace

from connector.book import RecordingBook
from connector.feed import Feed
from connector.matching import (
    MESSAGES,
    REASONS,
    REJECT_REDUCE_ONLY,
    REJECT_UNKNOWN_ORDER,
    MatchingEngine,
    Report,
    SimOrder,
)
from connector.sim.exchange_view import ExchangeView
from connector.sim.hbt import HbtMarket, make_exchange
from connector.sim.live import live_section, paper_book, run_live
from connector.sim.replay import run_lockstep, run_replay
from connector.sim.synthetic import run_synthetic
from connector.venue import Core, NewOrder, OrderReport, Venue
from hftlive.constants import CANCELED, EXPIRED, FILLED
from hftlive.layout import REQ_CANCEL, REQ_MODIFY, REQ_SUBMIT

log = logging.getLogger(__name__)

ENDED = (FILLED, CANCELED, EXPIRED)
ENDED_KEPT = 100_000  # ended orders whose final state a late refusal reports


class SimInstrument(RecordingBook):
    """One instrument of the sim: its book, its batch, and its matching engine."""

    def __init__(self, idx: int, cfg, fees: tuple[float, float], hbt: HbtMarket | None = None):
        super().__init__(idx, cfg)
        # exactly one of the two engines
        self.hbt = hbt
        self.engine = MatchingEngine(self.book, cfg.lot_size) if hbt is None else None
        self.maker_fee, self.taker_fee = fees
        self.wake = None  # the timer of the hbt engine's next due request or response


class WatchedInstrument(SimInstrument):
    """An instrument whose engine watches every level change of the book the bots see
    (on the replay clock, hftbacktest's model reads the capture itself, ahead:
    connector.sim.exchange_view)."""

    def on_level(self, side: int, tick: int, qty: float) -> None:
        if self.hbt is not None:
            self.hbt.depth(side, tick * self.tick_size, qty, self.exch_ts, self.local_ts)
        else:
            self.engine.on_depth(side, tick, qty, self.exch_ts)

    def clear(self) -> None:
        super().clear()
        if self.hbt is not None:
            self.hbt.clear(self.exch_ts)


class SimVenue(Venue):
    """The sim venue. `run()` drives the market until stopped (or the replay ends)."""

    def __init__(self, cfg, core: Core):
        self.cfg = cfg
        self.sim = cfg.section
        self.core = core
        fees = (self.sim.maker_fee, self.sim.taker_fee)
        # the venue's clock: the wall clock, or the replay's shared with the bots
        self.lockstep = core.lockstep() if self.sim.clock == "replay" else None
        self._clock = self.lockstep.now if self.lockstep is not None else time.time_ns
        # on the replay clock hftbacktest's model sees the market at its exchange time,
        # from its own reading of the capture (connector.sim.exchange_view), not through
        # the bots' books
        self.reads_ahead = self.lockstep is not None and self.sim.exchange != "default"
        public = None
        cls = SimInstrument if self.reads_ahead else WatchedInstrument
        if self.sim.live:  # the venue client's books, watched by the engine
            public, section = live_section(cfg)
            cls = paper_book(public.book, WatchedInstrument)
        self.insts = []
        for i, c in enumerate(cfg.instruments):
            hbt = None
            if self.sim.exchange != "default":
                ex = make_exchange(self.sim, c.tick_size, c.lot_size, f"{cfg.path}: sim")
                hbt = HbtMarket(ex)
            self.insts.append(cls(i, c, fees, hbt))
        self.by_symbol = {s.symbol.lower(): s for s in self.insts}
        self._stop = asyncio.Event()
        self._sides: dict[int, int] = {}  # key -> side of an order not ended, for its fills
        self._ended: dict[int, Report] = {}  # key -> final report, the last ENDED_KEPT
        self._positions = [0.0] * len(self.insts)  # the simulated account's, from its fills
        self._last_snapshot = 0.0
        self.rng = random.Random(self.sim.seed)
        self.live = None  # the venue's market-data client (live), publishing through its Feed
        if public is not None:
            self.live = public.client(section, self.insts, core,
                                      cfg.connector.snapshot_interval_ms,
                                      on_trade=self.on_trade, on_book=self.on_book)  # fmt: skip
            self.feed = self.live.feed
        elif self.reads_ahead:
            self.feed = Feed(core, self.insts)  # the bots' books only: nothing watches them
        else:
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
        if s.hbt is not None:  # answered after the order latency (connector.sim.hbt)
            s.hbt.submit(order.key, order.side, order.price_tick, qty, order.tif,
                         order.order_type, self._clock())  # fmt: skip
            self._pump(s)
            return
        o = SimOrder(key=order.key, side=order.side, px_tick=order.price_tick, qty=qty,
                     tif=order.tif, order_type=order.order_type)  # fmt: skip
        self._report(s, s.engine.submit(o, self._now(s)), REQ_SUBMIT)

    def cancel(self, key: int, inst: int, leaving: bool = False) -> None:
        # the engine answers (at once, or after the order latency): no order of the sim is
        # ever of unknown outcome
        s = self.insts[inst]
        if s.hbt is not None:
            s.hbt.cancel(key, self._clock())
            self._pump(s)
            return
        self._report(s, s.engine.cancel(key, self._now(s)), REQ_CANCEL)

    def modify(self, key: int, inst: int, price_tick: int, qty: float) -> None:
        s = self.insts[inst]
        if s.hbt is not None:
            s.hbt.modify(key, price_tick, qty, self._clock())
            self._pump(s)
            return
        self._report(s, s.engine.modify(key, price_tick, qty, self._now(s)), REQ_MODIFY)

    def _pump(self, s: SimInstrument) -> None:
        """Reports what the hbt engine has due by now, and sets a timer for what is next
        (on the replay clock, the replay's rounds ask for it: next_wake_ns)."""
        now = self._clock()
        for _key, reports, completes in s.hbt.due(now):
            self._report(s, reports, completes)
        if self.lockstep is not None:
            return
        if s.wake is not None:
            s.wake.cancel()
            s.wake = None
        at = s.hbt.next_wake_ns()
        if at is not None and not self.stopped():
            delay = max(0.0, (at - now) / 1e9)
            s.wake = asyncio.get_running_loop().call_later(delay, self._pump, s)

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

    def _now(self, s: SimInstrument) -> int:
        # the venue's clock: the market time of the instrument, advanced to the wall clock
        # (on the replay clock: the replay's time)
        return max(s.exch_ts, self._clock())

    def next_wake_ns(self) -> int | None:
        """The earliest time an hbt engine has something due (the replay clock's rounds)."""
        wakes = [w for s in self.insts if s.hbt is not None
                 for w in (s.hbt.next_wake_ns(),) if w is not None]  # fmt: skip
        return min(wakes) if wakes else None

    def exchange_view(self, capture, lines) -> ExchangeView | None:
        """hftbacktest's model's own reading of the capture `lines` (receive ns, raw) on
        the replay clock, with the venue's `capture` decoder factory; None when the
        engine watches the bots' books instead."""
        if not self.reads_ahead:
            return None
        return ExchangeView(self.cfg.instruments, [s.hbt for s in self.insts], capture, lines)

    def pump_all(self) -> None:
        """Reports what every hbt engine has due by now."""
        for s in self.insts:
            if s.hbt is not None:
                self._pump(s)

    def _report(self, s: SimInstrument, reports: list[Report], completes: int = 0) -> None:
        out = []
        for i, r in enumerate(reports):
            last = self._ended.get(r.key)
            if r.reject_code == REJECT_UNKNOWN_ORDER and last is not None:
                # a cancel or modify of an order the engine no longer has (it filled, or
                # was cancelled, before the request arrived): the refusal leaves the order
                # as it ended, as a real venue's refusal does (connector.lifecycle R3); the
                # engine's own report knows nothing of it and would read as status NONE
                r = replace(r, status=last.status, leaves_qty=last.leaves_qty,
                            cum_qty=last.cum_qty, px_tick=last.px_tick, qty=last.qty)  # fmt: skip
            fee = 0.0
            if r.exec_qty > 0:
                rate = s.maker_fee if r.maker else s.taker_fee
                fee = r.exec_qty * r.exec_px_tick * s.tick_size * rate
                self._positions[s.idx] += self._sides.get(r.key, 0) * r.exec_qty
            if r.status in ENDED and last is None:
                self._sides.pop(r.key, None)
                self._ended[r.key] = r
                if len(self._ended) > ENDED_KEPT:
                    del self._ended[next(iter(self._ended))]
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
        if s.hbt is not None:  # it saw each level (on_level)
            self._pump(s)
            return
        self._report(s, s.engine.on_book(s.exch_ts))

    def on_trade(self, s: SimInstrument, aggressor: int, px: float, qty: float) -> None:
        """After the feed published a trade: it may fill resting orders."""
        if s.hbt is not None:
            s.hbt.trade(aggressor, px, qty, s.exch_ts, s.local_ts)
            self._pump(s)
            return
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
        if self.live is not None:
            await run_live(self, self.live)
        elif self.lockstep is not None:
            await run_lockstep(self, self.sim.data, self.lockstep)
        elif self.sim.data:
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
