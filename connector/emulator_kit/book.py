"""The venue's own book per symbol: specs, integer levels, update ids and stream batching.

Prices are integer ticks and quantities integer lots, so that every string the emulator
sends keeps the symbol's fixed number of decimals (§1.3: "2681.62", "0.000") exactly.
`SymbolMarket` holds what the public streams need: the book, the last applied update id
`u` (the REST snapshot's lastUpdateId), and one `DiffBatch` per stream speed: `@depth@0ms`
sends every diff as it comes; `@depth@100ms`, `@depth` (250 ms) and `@depth@500ms` send the
levels changed in the interval, with `U` the first id, `u` the last, and `pu` the `u` of the
previous event on that same stream (§1.3).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field

INVALID_MIN = -(2**63)  # best_bid_tick of an empty side (matching.py's convention)
INVALID_MAX = 2**63 - 1
_P10 = [10**k for k in range(19)]


def decimals(text: str) -> int:
    """Digits after the point of a decimal string ("0.10" -> 2)."""
    _, _, frac = text.partition(".")
    return len(frac)


def units(text: str, dp: int) -> int:
    """A decimal string as an integer count of 10**-dp (exact for <= 15 significant digits)."""
    return round(float(text) * _P10[dp])


def fmt_units(n: int, dp: int) -> str:
    """An integer count of 10**-dp as a fixed-decimal string (12345, 2 -> "123.45")."""
    sign = "-" if n < 0 else ""
    s = str(abs(n))
    if dp == 0:
        return sign + s
    s = s.rjust(dp + 1, "0")
    return f"{sign}{s[:-dp]}.{s[-dp:]}"


@dataclass(frozen=True)
class SymbolSpec:
    """Exchange-info filters of one symbol (§1.6 exchangeInfo). Decimal fields are strings."""

    symbol: str  # lowercase, as in stream names
    tick_size: str
    step_size: str
    min_qty: str
    max_qty: str
    market_max_qty: str
    min_price: str
    max_price: str
    min_notional: str
    multiplier_up: str = "1.0500"
    multiplier_down: str = "0.9500"
    price_dp: int = field(init=False)
    qty_dp: int = field(init=False)
    tick_units: int = field(init=False)  # tick in 10**-price_dp
    step_units: int = field(init=False)  # step in 10**-qty_dp

    def __post_init__(self) -> None:
        object.__setattr__(self, "price_dp", decimals(self.tick_size))
        object.__setattr__(self, "qty_dp", decimals(self.step_size))
        object.__setattr__(self, "tick_units", units(self.tick_size, self.price_dp))
        object.__setattr__(self, "step_units", units(self.step_size, self.qty_dp))

    @property
    def upper(self) -> str:
        return self.symbol.upper()

    @property
    def tick(self) -> float:
        return float(self.tick_size)

    @property
    def step(self) -> float:
        return float(self.step_size)

    def px(self, tick: int) -> str:
        return fmt_units(tick * self.tick_units, self.price_dp)

    def qty(self, lots: int) -> str:
        return fmt_units(lots * self.step_units, self.qty_dp)

    def tick_of(self, text: str) -> int:
        """A venue price string (trusted: from a capture) as ticks."""
        return round(units(text, self.price_dp) / self.tick_units)

    def lots_of(self, text: str) -> int:
        return round(units(text, self.qty_dp) / self.step_units)


# Binance USD-M values as of 2024-2026 (ETHUSDT/BTCUSDT exchangeInfo; minNotional 20/100 USDT).
DEFAULT_SPECS = {
    "ethusdt": SymbolSpec(
        "ethusdt", "0.01", "0.001", "0.001", "10000", "2000", "39.86", "306177", "20"
    ),
    "btcusdt": SymbolSpec(
        "btcusdt", "0.10", "0.001", "0.001", "1000", "120", "556.80", "4529764", "100"
    ),
}


def spec_for(symbol: str, price_dp: int = 2, qty_dp: int = 3) -> SymbolSpec:
    """The default spec of `symbol`, or a generic one with the given decimals."""
    if symbol in DEFAULT_SPECS:
        return DEFAULT_SPECS[symbol]
    tick = fmt_units(1, price_dp)
    step = fmt_units(1, qty_dp)
    return SymbolSpec(symbol, tick, step, step, "1000000", "100000", tick, "10000000", "5")


class LevelBook:
    """A full price-level book: tick -> lots per side, plus sorted ticks.

    It also serves as `connector.sim.matching.Book` (qty as float) for the matching engine.
    """

    def __init__(self, spec: SymbolSpec):
        self.spec = spec
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self._bid_ticks: list[int] = []  # ascending
        self._ask_ticks: list[int] = []

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self._bid_ticks.clear()
        self._ask_ticks.clear()

    def set(self, is_bid: bool, tick: int, lots: int) -> None:
        """Sets a level's absolute size; 0 lots deletes it (absent is fine)."""
        side, ticks = (self.bids, self._bid_ticks) if is_bid else (self.asks, self._ask_ticks)
        if lots <= 0:
            if side.pop(tick, None) is not None:
                del ticks[bisect_left(ticks, tick)]
        else:
            if tick not in side:
                insort(ticks, tick)
            side[tick] = lots

    @property
    def best_bid_tick(self) -> int:
        return self._bid_ticks[-1] if self._bid_ticks else INVALID_MIN

    @property
    def best_ask_tick(self) -> int:
        return self._ask_ticks[0] if self._ask_ticks else INVALID_MAX

    def bid_qty_at_tick(self, tick: int) -> float:
        return self.bids.get(tick, 0) * self.spec.step

    def ask_qty_at_tick(self, tick: int) -> float:
        return self.asks.get(tick, 0) * self.spec.step

    def bid_levels(self, max_levels: int):
        step = self.spec.step
        for t in reversed(self._bid_ticks[-max_levels:]):
            yield t, self.bids[t] * step

    def ask_levels(self, max_levels: int):
        step = self.spec.step
        for t in self._ask_ticks[:max_levels]:
            yield t, self.asks[t] * step

    def top(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Best n levels (tick, lots): bids descending, asks ascending."""
        bids = [(t, self.bids[t]) for t in reversed(self._bid_ticks[-n:])] if n else []
        return bids, [(t, self.asks[t]) for t in self._ask_ticks[:n]]

    def mid_tick(self) -> float | None:
        if not self._bid_ticks or not self._ask_ticks:
            return None
        return (self._bid_ticks[-1] + self._ask_ticks[0]) / 2


class DiffBatch:
    """Levels changed since the last flush of one aggregated diff stream."""

    def __init__(self) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.first_u = 0  # U of the first diff in the batch, 0 when empty
        self.last_u = 0
        self.last_t_ms = 0
        self.prev_u = 0  # u of the previous event sent on this stream

    def add(self, first_u: int, last_u: int, t_ms: int, changes) -> None:
        if not self.first_u:
            self.first_u = first_u
        self.last_u, self.last_t_ms = last_u, t_ms
        for is_bid, tick, lots in changes:
            (self.bids if is_bid else self.asks)[tick] = lots

    def flush(self) -> tuple[int, int, int, dict, dict] | None:
        """(U, u, pu, bids, asks) of the interval, or None if nothing changed."""
        if not self.first_u:
            return None
        out = (self.first_u, self.last_u, self.prev_u or self.first_u - 1, self.bids, self.asks)
        self.prev_u = self.last_u
        self.first_u = 0
        self.bids, self.asks = {}, {}
        return out


AGG_INTERVALS_MS = (100, 250, 500)  # @depth@100ms, @depth (250 ms default), @depth@500ms


class SymbolMarket:
    """One symbol's market state: the book, the update-id chain and stream batches."""

    def __init__(self, spec: SymbolSpec):
        self.spec = spec
        self.book = LevelBook(spec)
        self.last_u = 0  # u of the last applied diff: the snapshot's lastUpdateId
        self.last_t_ms = 0  # T of the last applied diff
        self.batches = {ms: DiffBatch() for ms in AGG_INTERVALS_MS}
        self.next_agg_id = 1

    def apply_diff(self, msg: dict) -> list[tuple[bool, int, int]]:
        """Applies a depthUpdate dict (venue strings); returns (is_bid, tick, lots) changes.

        Quantities are absolute and 0 deletes a level [BN-OB step 6].
        """
        spec, book = self.spec, self.book
        changes = []
        for is_bid, key in ((True, "b"), (False, "a")):
            for px, qty in msg[key]:
                tick, lots = spec.tick_of(px), spec.lots_of(qty)
                book.set(is_bid, tick, lots)
                changes.append((is_bid, tick, lots))
        self.last_u = msg["u"]
        self.last_t_ms = msg["T"]
        for batch in self.batches.values():
            batch.add(msg["U"], msg["u"], msg["T"], changes)
        return changes

    def load(self, bids, asks, last_u: int) -> None:
        """Replaces the book with snapshot levels ([px, qty] strings)."""
        self.book.clear()
        for px, qty in bids:
            self.book.set(True, self.spec.tick_of(px), self.spec.lots_of(qty))
        for px, qty in asks:
            self.book.set(False, self.spec.tick_of(px), self.spec.lots_of(qty))
        self.last_u = last_u

    def levels(self, levels: dict[int, int]) -> list[list[str]]:
        """[[px, qty], ...] ascending by price, as in every diff event (§1.3)."""
        px, qty = self.spec.px, self.spec.qty
        return [[px(t), qty(levels[t])] for t in sorted(levels)]

    def snapshot(self, limit: int, now_ms: int) -> dict:
        """GET /fapi/v1/depth body: bids descending, asks ascending (§1.4)."""
        bids, asks = self.book.top(limit)
        px, qty = self.spec.px, self.spec.qty
        return {
            "lastUpdateId": self.last_u,
            "E": now_ms,
            "T": self.last_t_ms or now_ms,
            "bids": [[px(t), qty(n)] for t, n in bids],
            "asks": [[px(t), qty(n)] for t, n in asks],
        }
