"""Market sources of the emulator: a replay of a capture file, or a synthetic market.

Both yield venue-shaped messages `(kind, symbol, msg)` with kind "depth", "bookTicker" or
"trade" and `msg` the payload dict exactly as Binance sends it (strings with fixed
decimals). The emulator applies each one to its own book, stamps `E`/`T` with its clock
and sends it, so REST snapshots and streams always agree.

Replay. A capture holds one message per line, `<local receive ns> <raw JSON>`: combined-
stream depthUpdate/bookTicker/trade messages and one bare REST snapshot `{"lastUpdateId"..}`
that names no symbol. `prepare()` pre-rolls the file silently, following Binance's own
algorithm [BN-OB] (§1.4), until every symbol's book is synced; streaming starts at the
next line, paced by the receive times divided by `speed` (0: as fast as possible). When
the file ends the market goes quiet (sockets stay open).

Synthetic. Per symbol a mid price follows a seeded random walk; each step prints a few
trades at the touch (taking their qty from the book), then one diff with contiguous ids
(`U` = previous `u` + 1, `pu` = previous `u`) and a bookTicker when the touch changed.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Callable

import orjson

from connector.emulator_kit.book import SymbolMarket, SymbolSpec, decimals, spec_for

log = logging.getLogger(__name__)

YIELD_EVERY = 64  # messages between yields to the event loop when not pacing
PAUSE_POLL_S = 0.02


def _open(path: str):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _kind(m: dict) -> str | None:
    e = m.get("e")
    if e == "depthUpdate":
        return "depth"
    if e in ("bookTicker", "trade"):
        return e
    return None


class ReplaySource:
    """Replays a capture; see the module docstring.

    Args:
        path: capture file (gzip or plain text).
        symbols: lowercase symbols to serve; other symbols in the file are skipped.
        speed: replay speed (2.0 = twice as fast); 0 means no pacing.
        paused: returns True while the market must stay still.
    """

    def __init__(self, path: str, symbols: list[str], speed: float, paused: Callable[[], bool]):
        self.path = path
        self.symbols = list(symbols)
        self.speed = speed
        self.paused = paused
        self.markets: dict[str, SymbolMarket] = {}
        self.lines_read = 0
        self._f = None

    def prepare(self) -> dict[str, SymbolMarket]:
        """Pre-rolls the capture until every symbol's book is synced.

        Raises:
            ValueError: the file ends before some symbol could be synced.
        """
        self._f = _open(self.path)
        buffers: dict[str, list[dict]] = {s: [] for s in self.symbols}
        held: dict | None = None  # a snapshot whose bridging diff has not come yet
        waiting = set(self.symbols)
        for line in self._f:
            self.lines_read += 1
            m = orjson.loads(line.partition(b" ")[2])
            if "lastUpdateId" in m:  # the bare REST snapshot line
                held = m
                for sym in sorted(waiting):
                    if self._bridge(sym, buffers[sym], m):
                        waiting.discard(sym)
                        held = None
                        break
            else:
                d = m.get("data", m)
                sym = str(d.get("s", "")).lower()
                if _kind(d) != "depth" or sym not in waiting:
                    continue
                buffers[sym].append(d)
                if held is not None and self._bridge(sym, buffers[sym], held):
                    waiting.discard(sym)
                    held = None
            if not waiting:
                break
        if waiting:
            self._f.close()
            raise ValueError(
                f"{self.path}: no depth snapshot that syncs {sorted(waiting)} (needs a "
                "'{\"lastUpdateId\"..}' line bridged by a diff, as in Binance's algorithm)"
            )
        log.info("replay %s: books synced after %d lines", self.path, self.lines_read)
        return self.markets

    def _bridge(self, sym: str, buf: list[dict], snap: dict) -> bool:
        """[BN-OB] steps 3-4: drop u < L; the first kept diff must have U <= L <= u."""
        last = snap["lastUpdateId"]
        kept = [d for d in buf if d["u"] >= last]
        if not kept or kept[0]["U"] > last:
            return False
        bids, asks = snap["bids"], snap["asks"]
        sample = (bids or asks)[0]
        mkt = SymbolMarket(spec_for(sym, decimals(sample[0]), decimals(sample[1])))
        mkt.load(bids, asks, last)
        mkt.last_t_ms = snap.get("T", 0)
        for d in kept:
            if d["pu"] != mkt.last_u and d is not kept[0]:
                log.warning("replay %s: capture gap before u=%d", sym, d["u"])
            mkt.apply_diff(d)
        self.markets[sym] = mkt
        buf.clear()
        return True

    async def events(self) -> AsyncIterator[tuple[str, str, dict]]:
        """Yields (kind, symbol, msg) in file order, paced; closes the file at the end."""
        f, self._f = self._f, None
        if f is None:
            raise RuntimeError("prepare() first")
        t0 = w0 = None
        n = 0
        try:
            for line in f:
                self.lines_read += 1
                ts, _, raw = line.partition(b" ")
                m = orjson.loads(raw)
                d = m.get("data", m)
                kind = _kind(d)
                sym = str(d.get("s", "")).lower()
                if kind is None or sym not in self.markets:
                    continue
                if kind == "depth" and d["u"] <= self.markets[sym].last_u:
                    continue  # already in the book (the pre-roll's tail)
                local = int(ts)
                if self.paused():
                    while self.paused():
                        await asyncio.sleep(PAUSE_POLL_S)
                    t0 = None  # rebase the pacing: no burst after a pause
                if t0 is None:
                    t0, w0 = local, time.monotonic_ns()
                if self.speed > 0:
                    delay = (w0 + (local - t0) / self.speed - time.monotonic_ns()) / 1e9
                    if delay > 0:
                        await asyncio.sleep(delay)  # pacing, not a wait for a condition
                n += 1
                if n % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                yield kind, sym, d
        finally:
            f.close()
        log.info("replay %s finished after %d lines; the market is now quiet", self.path, n)


class SyntheticSource:
    """A seeded random-walk market; see the module docstring.

    Args:
        symbols: lowercase symbols.
        speed: steps run `speed` times as often as `interval_ms` says.
        paused: returns True while the market must stay still.
        interval_ms: wall time between steps at speed 1.
        levels: price levels kept per side around the mid.
        seed: random seed.
        specs: symbol -> its spec (a venue's own grid); default `spec_for(symbol)`.
        start_px: symbol -> its first mid price; default `START_PX`, else 100.
    """

    START_PX = {"btcusdt": 60000.0, "ethusdt": 2500.0}

    def __init__(
        self,
        symbols: list[str],
        speed: float,
        paused: Callable[[], bool],
        interval_ms: float = 100.0,
        levels: int = 50,
        seed: int = 1,
        volatility_bp: float = 1.0,
        trades_per_step: float = 2.0,
        specs: dict[str, SymbolSpec] | None = None,
        start_px: dict[str, float] | None = None,
    ):
        self.symbols = list(symbols)
        self.speed = speed if speed > 0 else 1.0
        self.paused = paused
        self.interval_s = interval_ms / 1e3
        self.levels = levels
        self.rng = random.Random(seed)
        self.vol = volatility_bp * 1e-4
        self.trades_per_step = trades_per_step
        self.markets: dict[str, SymbolMarket] = {}
        self.specs = specs or {}  # symbol -> its spec (a venue's own); else spec_for
        self.start_px = {**self.START_PX, **(start_px or {})}
        self._mid: dict[str, float] = {}
        self._next_trade_id: dict[str, int] = {}

    def prepare(self) -> dict[str, SymbolMarket]:
        """Builds the initial books; ids start at a random large number."""
        for sym in self.symbols:
            mkt = SymbolMarket(self.specs.get(sym) or spec_for(sym))
            self.markets[sym] = mkt
            self._mid[sym] = self.start_px.get(sym, 100.0)
            self._next_trade_id[sym] = self.rng.randrange(10**9, 2 * 10**9)
            first = self.rng.randrange(10**12, 2 * 10**12)
            mkt.last_u = first
            diff = self._step_diff(sym, first + 1)
            mkt.apply_diff(diff)
        return self.markets

    def _size(self, sym: str) -> int:
        return max(1, int(self.rng.lognormvariate(3.0, 1.0)))

    def _step_diff(self, sym: str, first_u: int, taken: dict | None = None) -> dict:
        mkt = self.markets[sym]
        spec, book = mkt.spec, mkt.book
        self._mid[sym] *= math.exp(self.rng.gauss(0.0, self.vol))
        mid_tick = self._mid[sym] / spec.tick
        best_bid = math.floor(mid_tick - 0.5)
        best_ask = max(best_bid + 1, math.ceil(mid_tick + 0.5))
        bids, asks = dict(taken["b"]) if taken else {}, dict(taken["a"]) if taken else {}
        for t in book.bids:
            if t > best_bid or t <= best_bid - self.levels:
                bids[t] = 0
        for t in book.asks:
            if t < best_ask or t >= best_ask + self.levels:
                asks[t] = 0
        for i in range(self.levels):
            bt, at = best_bid - i, best_ask + i
            if bt not in book.bids or self.rng.random() < 0.2:
                bids[bt] = self._size(sym)
            if at not in book.asks or self.rng.random() < 0.2:
                asks[at] = self._size(sym)
        n_changes = max(1, len(bids) + len(asks))
        return {
            "e": "depthUpdate",
            "E": 0,
            "T": 0,
            "s": spec.upper,
            "U": first_u,
            "u": first_u + n_changes - 1,
            "pu": mkt.last_u,
            "b": mkt.levels(bids),
            "a": mkt.levels(asks),
        }

    def _trades(self, sym: str) -> tuple[list[dict], dict]:
        mkt = self.markets[sym]
        spec, book = mkt.spec, mkt.book
        out, taken = [], {"b": {}, "a": {}}
        lam, k, p = math.exp(-self.trades_per_step), 0, self.rng.random()
        while p > lam:  # Poisson count
            k += 1
            p *= self.rng.random()
        for _ in range(k):
            buy = self.rng.random() < 0.5  # the taker's side
            side, key = (book.asks, "a") if buy else (book.bids, "b")
            tick = book.best_ask_tick if buy else book.best_bid_tick
            left = taken[key].get(tick, side.get(tick, 0))
            if tick not in side or left <= 0:
                continue
            lots = min(left, self._size(sym))
            taken[key][tick] = left - lots
            tid = self._next_trade_id[sym]
            self._next_trade_id[sym] = tid + 1
            out.append(
                {
                    "e": "trade",
                    "E": 0,
                    "T": 0,
                    "s": spec.upper,
                    "t": tid,
                    "p": spec.px(tick),
                    "q": spec.qty(lots),
                    "X": "MARKET",
                    "m": not buy,  # buyer is maker when the taker sold
                }
            )
        return out, taken

    async def events(self) -> AsyncIterator[tuple[str, str, dict]]:
        """Steps forever; each step yields trades, one diff and maybe a bookTicker."""
        next_t = time.monotonic()
        while True:
            next_t += self.interval_s / self.speed
            delay = next_t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing, not a wait for a condition
            else:
                next_t = time.monotonic()
                await asyncio.sleep(0)
            while self.paused():
                await asyncio.sleep(PAUSE_POLL_S)
                next_t = time.monotonic()
            for sym, mkt in self.markets.items():
                trades, taken = self._trades(sym)
                for tr in trades:
                    yield "trade", sym, tr
                book = mkt.book
                before = (book.best_bid_tick, book.best_ask_tick)
                diff = self._step_diff(sym, mkt.last_u + 1, taken)
                yield "depth", sym, diff
                top = (book.best_bid_tick, book.best_ask_tick)
                if top != before or trades:
                    (bt, bq), (at, aq) = book.top(1)[0][0], book.top(1)[1][0]
                    spec = mkt.spec
                    yield (
                        "bookTicker",
                        sym,
                        {
                            "e": "bookTicker",
                            "u": diff["u"],
                            "s": spec.upper,
                            "b": spec.px(bt),
                            "B": spec.qty(bq),
                            "a": spec.px(at),
                            "A": spec.qty(aq),
                            "T": 0,
                            "E": 0,
                        },
                    )
