"""Replay of a Binance USD-M capture through the sim venue.

The file holds one message per line, `<local receive ns> <raw JSON>`: combined-stream
depthUpdate, bookTicker and trade messages and the REST depth snapshot, in the order they
were received. The book is rebuilt exactly as the live connector does it (Binance's
documented algorithm, connector.binancefutures.book_sync), so the replay also exercises
that path; bookTicker becomes DEPTH_BBO events (which, as in hftbacktest's backtester, do
not change a bot's depth); MARKET trades become trade events and fill resting orders.

Timestamps: a message is published at the wall time of the replay; its exch_ts keeps the
latency it had in the capture (local receive time minus the venue's transaction time).
"""

from __future__ import annotations

import asyncio
import logging
import time

from connector.binancefutures.book_sync import BookSync, Gap
from connector.binancefutures.protocol import (
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    Trade,
    parse_stream,
)
from connector.book import ASK_BBO, BID_BBO
from connector.errors import VenueProtocolError
from connector.sim.venue import SimVenue, open_capture
from hftlive.constants import BUY, SELL

log = logging.getLogger(__name__)

YIELD_EVERY = 64  # messages between yields to the event loop at full speed


async def run_replay(venue: SimVenue, path: str, speed: float) -> None:
    syncs = {sym: BookSync(s) for sym, s in venue.by_symbol.items()}
    t0 = w0 = None
    n = 0
    with open_capture(path) as f:
        for line in f:
            if venue._stop.is_set():
                return
            ts_s, _, raw = line.partition(b" ")
            try:
                local = int(ts_s)
                msg = parse_stream(raw)
            except (ValueError, VenueProtocolError) as e:
                _bad(venue, f"line {n + 1}: {e}")
                n += 1
                continue
            n += 1
            if t0 is None:
                t0, w0 = local, time.monotonic_ns()
            if speed > 0:
                delay = (w0 + (local - t0) / speed - time.monotonic_ns()) / 1e9
                if delay > 0.0005 and await venue.wait_stopped(delay):
                    return
            elif n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            _apply(venue, syncs, msg, local)
            venue.maybe_snapshot()
    venue.maybe_snapshot(force=True)
    log.info("replay of %s finished: %d messages", path, n)


def _stamp(s, local: int, exch: int) -> None:
    s.local_ts = time.time_ns()
    s.exch_ts = s.local_ts - max(local - exch, 0)


def _apply(venue: SimVenue, syncs: dict, msg, local: int) -> None:
    if isinstance(msg, DepthSnapshot):
        # the capture's REST snapshot line names no symbol: it belongs to the one waiting
        for sym, sync in syncs.items():
            if sync.state != "SYNCED":
                s = venue.by_symbol[sym]
                _stamp(s, local, msg.transact_ts_ns)
                sync.on_snapshot(msg)
                venue._flush(s)
        return
    s = venue.by_symbol.get(getattr(msg, "symbol", None))
    if s is None:
        return  # a symbol this connector does not serve
    if isinstance(msg, DepthUpdate):
        _stamp(s, local, msg.transact_ts_ns)
        for action in syncs[msg.symbol].on_diff(msg):
            if isinstance(action, Gap):
                log.warning("%s: depth gap (expected pu %d, got %d): book cleared, resyncing",
                            msg.symbol, action.expected_pu, action.got_pu)  # fmt: skip
                venue.core.book_reset(s.idx, "depth gap")
        venue._flush(s)
    elif isinstance(msg, BookTicker):
        _stamp(s, local, msg.transact_ts_ns)
        s.batch.add(BID_BBO, s.exch_ts, s.local_ts, msg.bid_px, msg.bid_qty)
        s.batch.add(ASK_BBO, s.exch_ts, s.local_ts, msg.ask_px, msg.ask_qty)
        venue.core.publish(s.idx, s.batch.ev, s.batch.n)
        s.batch.n = 0
    elif isinstance(msg, Trade):
        if msg.trade_type != "MARKET":
            return  # as hftbacktest: only market trades print
        _stamp(s, local, msg.transact_ts_ns)
        # [BN] m = buyer is maker: the taker sold
        venue._trade(s, SELL if msg.buyer_is_maker else BUY, msg.px, msg.qty)


def _bad(venue: SimVenue, what: str) -> None:
    log.warning("replay: malformed message skipped: %s", what)
    venue.core.bad_message()
