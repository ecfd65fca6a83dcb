"""Matching engine of the simulated venue and of the emulators: fills our orders against replayed market data.

Pure logic: no I/O, no clock, no logging. The caller owns the replayed book (read here,
never written), feeds in trades and depth changes, and stamps every call with the venue
time ``now_ns``. Every state change of an order yields one :class:`Report`, in order.

Model (no market impact, risk-averse queue):

* Our orders never change the replayed book. A taker sweep walks the opposite levels once,
  so one level's qty is never taken twice by one order, but the next order may take the
  same displayed qty again. Our orders never match each other (no self-trade modelled).
* A resting order enters last in its level's queue: ``queue_ahead`` = book qty at its price.
  A trade at its price consumes ``queue_ahead`` first; a depth change at its price sets
  ``queue_ahead = min(queue_ahead, new qty)`` (cancels ahead of us advance us).
* One trade never fills more than its own qty across all our orders (:meth:`on_trade`).
* A GTC remainder that rests crossed (it swept every level within its limit, which the
  replay still displays) is guarded, or :meth:`on_book` would fill it again from the same
  displayed qty: it fills once the opposite best moves past the best it already saw (new
  liquidity), or once the book crosses it again after it had stopped crossing it.

Reports: acceptance and a successful modify are NEW (also after partial fills); fills are
PARTIALLY_FILLED or FILLED (``exec_qty`` > 0); the unfilled rest of an IOC/MARKET order is
EXPIRED; CANCELED keeps ``leaves_qty``. A rejected new order is EXPIRED with
``reject_code``; a rejected cancel/modify carries the order's unchanged status (NONE and
zero fields when the key is not open).

Refusal codes are the engine's own; `REASONS` maps each to the neutral reason
(hftlive.constants.REJECT_*) and every venue built on the engine maps them to its own
wire codes (the Binance emulator to Binance's, the sim reports them as they are):

======================== ==== ===================== =======================================
constant                 code neutral reason        when
======================== ==== ===================== =======================================
REJECT_INVALID_QTY       1    REJECT_INVALID_QTY    qty <= 0 or not finite
REJECT_QTY_NOT_LOT_MULT  2    REJECT_INVALID_QTY    qty not a multiple of lot_size
REJECT_INVALID_PRICE     3    REJECT_INVALID_PRICE  LIMIT px_tick <= 0
REJECT_INVALID_SIDE      4    REJECT_OTHER          side not BUY/SELL
REJECT_INVALID_TIF       5    REJECT_OTHER          LIMIT tif not GTC/GTX/FOK/IOC
REJECT_INVALID_TYPE      6    REJECT_OTHER          order_type not LIMIT/MARKET
REJECT_GTX_WOULD_CROSS   7    REJECT_POST_ONLY      post-only would take liquidity
REJECT_FOK_NOT_FILLED    8    REJECT_WOULD_NOT_FILL FOK cannot fill in full
REJECT_UNKNOWN_ORDER     9    REJECT_UNKNOWN_ORDER  cancel/modify of a non-open key
REJECT_SAME_ORDER        10   REJECT_NO_CHANGE      modify with same px and qty
REJECT_REDUCE_ONLY       11   REJECT_REDUCE_ONLY    reduce-only that cannot reduce (the sim
                                                   venue's check: the engine keeps no position)
REJECT_TECHNICAL         12   REJECT_VENUE_BUSY     hftbacktest's order latency data rejected
                                                   the request (a row with exch_ts <= 0;
                                                   the sim with exchange != "default")
======================== ==== ===================== =======================================

Not used: -4014 (price off the tick grid cannot happen with integer ticks), -2021 (it
means a stop order would trigger, not "no liquidity"; a MARKET order on an empty book is
simply EXPIRED), -5025 (only LIMIT orders can be open, so only they can be modified).

Modify follows Binance ``PUT /fapi/v1/order``: a rejected modify keeps the order as it was;
the order is re-queued on every successful modify ("modified orders will be reordered in
the match queue"); and it is CANCELED, not rejected, when the new qty <= executed qty, or
when a GTX order's new price would cross (that CANCELED report carries REJECT_GTX_WOULD_CROSS).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from connector.errors import UsageError
from hftlive import constants as R
from hftlive.constants import (
    BUY,
    CANCELED,
    EXPIRED,
    FILLED,
    FOK,
    GTC,
    GTX,
    IOC,
    LIMIT,
    MARKET,
    NEW,
    NONE,
    PARTIALLY_FILLED,
    SELL,
)

# Not used here, re-exported (redundant alias) for the Book contract: a Book's
# best_bid_tick is INVALID_MIN when its bid side is empty, best_ask_tick INVALID_MAX.
from hftlive.constants import INVALID_MAX as INVALID_MAX
from hftlive.constants import INVALID_MIN as INVALID_MIN

REJECT_INVALID_QTY = 1
REJECT_QTY_NOT_LOT_MULT = 2
REJECT_INVALID_PRICE = 3
REJECT_INVALID_SIDE = 4
REJECT_INVALID_TIF = 5
REJECT_INVALID_TYPE = 6
REJECT_GTX_WOULD_CROSS = 7
REJECT_FOK_NOT_FILLED = 8
REJECT_UNKNOWN_ORDER = 9
REJECT_SAME_ORDER = 10
REJECT_REDUCE_ONLY = 11
REJECT_TECHNICAL = 12

REASONS = {
    REJECT_INVALID_QTY: R.REJECT_INVALID_QTY,
    REJECT_QTY_NOT_LOT_MULT: R.REJECT_INVALID_QTY,
    REJECT_INVALID_PRICE: R.REJECT_INVALID_PRICE,
    REJECT_INVALID_SIDE: R.REJECT_OTHER,
    REJECT_INVALID_TIF: R.REJECT_OTHER,
    REJECT_INVALID_TYPE: R.REJECT_OTHER,
    REJECT_GTX_WOULD_CROSS: R.REJECT_POST_ONLY,
    REJECT_FOK_NOT_FILLED: R.REJECT_WOULD_NOT_FILL,
    REJECT_UNKNOWN_ORDER: R.REJECT_UNKNOWN_ORDER,
    REJECT_SAME_ORDER: R.REJECT_NO_CHANGE,
    REJECT_REDUCE_ONLY: R.REJECT_REDUCE_ONLY,
    REJECT_TECHNICAL: R.REJECT_VENUE_BUSY,
}
MESSAGES = {
    REJECT_INVALID_QTY: "quantity less than or equal to zero",
    REJECT_QTY_NOT_LOT_MULT: "quantity not a multiple of the lot size",
    REJECT_INVALID_PRICE: "price less than or equal to zero",
    REJECT_INVALID_SIDE: "invalid side",
    REJECT_INVALID_TIF: "invalid time in force",
    REJECT_INVALID_TYPE: "invalid order type",
    REJECT_GTX_WOULD_CROSS: "the post-only order would have taken liquidity",
    REJECT_FOK_NOT_FILLED: "the FOK order could not be filled in full at once",
    REJECT_UNKNOWN_ORDER: "unknown order",
    REJECT_SAME_ORDER: "the modify changes nothing",
    REJECT_REDUCE_ONLY: "the reduce-only order would not reduce the position",
    REJECT_TECHNICAL: "rejected for technical reasons (the order latency data's rejection)",
}

MAX_SWEEP_LEVELS = 1000  # deepest level a taker order walks
LOT_RTOL = 1e-9  # relative tolerance of the lot-multiple check and of "fully filled"


class Book(Protocol):
    """What the engine reads from the replayed book (attributes or properties both fit)."""

    @property
    def best_bid_tick(self) -> int: ...

    @property
    def best_ask_tick(self) -> int: ...

    def bid_qty_at_tick(self, tick: int) -> float: ...

    def ask_qty_at_tick(self, tick: int) -> float: ...

    def bid_levels(self, max_levels: int) -> Iterable[tuple[int, float]]: ...

    def ask_levels(self, max_levels: int) -> Iterable[tuple[int, float]]: ...


@dataclass(slots=True)
class SimOrder:
    """One of our orders as the venue sees it.

    The caller sets ``key`` (unique among open orders), side, px_tick, qty, tif and
    order_type; :meth:`MatchingEngine.submit` initialises the other fields.
    """

    key: int
    side: int
    px_tick: int
    qty: float
    tif: int = GTC
    order_type: int = LIMIT
    status: int = NONE
    leaves_qty: float = 0.0
    cum_qty: float = 0.0
    queue_ahead: float = 0.0
    # Opposite best tick while resting crossed after a sweep (see module docstring).
    cross_guard_tick: int | None = None


@dataclass(slots=True, frozen=True)
class Report:
    """One state change of one order, as the venue would report it."""

    key: int
    status: int
    exec_qty: float  # qty of this fill; 0.0 when the report is not a fill
    exec_px_tick: int  # 0 when the report is not a fill
    maker: bool
    leaves_qty: float
    cum_qty: float
    px_tick: int
    qty: float
    exch_ts: int
    reject_code: int = 0


class MatchingEngine:
    """Fills our orders against a replayed book and its trades, without market impact.

    Args:
        book: the replayed book, read-only (see :class:`Book`).
        lot_size: the venue's qty step; every order qty must be a multiple of it.
        queue_model: only ``"risk_averse"`` is implemented.

    Raises:
        UsageError: on a bad ``lot_size`` or an unknown ``queue_model``.
    """

    def __init__(self, book: Book, lot_size: float, queue_model: str = "risk_averse"):
        if not (math.isfinite(lot_size) and lot_size > 0.0):
            raise UsageError(f"lot_size must be positive and finite, got {lot_size!r}")
        if queue_model != "risk_averse":
            raise UsageError(f"unknown queue_model {queue_model!r}; only 'risk_averse' exists")
        self.book = book
        self.lot_size = lot_size
        self.queue_model = queue_model
        self._eps = lot_size * LOT_RTOL
        self._open: dict[int, SimOrder] = {}
        # Resting orders per (side, px_tick) in queue order, and sorted ticks per side, so
        # trades and depth touch only affected levels and on_book only crossed ones.
        self._levels: dict[tuple[int, int], dict[int, SimOrder]] = {}
        self._ticks: dict[int, list[int]] = {BUY: [], SELL: []}
        self._guarded: dict[int, SimOrder] = {}

    def open_orders(self) -> list[SimOrder]:
        """Resting orders, oldest first (a snapshot list)."""
        return list(self._open.values())

    def get(self, key: int) -> SimOrder | None:
        """The open order with this key, or None (final orders are forgotten)."""
        return self._open.get(key)

    def submit(self, order: SimOrder, now_ns: int) -> list[Report]:
        """Accepts, fills and/or rests a new order.

        Raises:
            UsageError: if an open order already has ``order.key``.
        """
        if order.key in self._open:
            raise UsageError(f"order key {order.key} is already open")
        order.status, order.leaves_qty, order.cum_qty = NONE, order.qty, 0.0
        order.queue_ahead, order.cross_guard_tick = 0.0, None
        code = self._check_new(order)
        if code == 0 and order.order_type == LIMIT:
            if order.tif == GTX and self._crosses(order.side, order.px_tick):
                code = REJECT_GTX_WOULD_CROSS  # Binance rejects; hftbacktest: EXPIRED
            elif order.tif == FOK and self._takeable(order) < order.qty - self._eps:
                code = REJECT_FOK_NOT_FILLED
        if code:
            order.status = EXPIRED
            return [self._report(order, now_ns, reject_code=code)]
        order.status = NEW
        reports = [self._report(order, now_ns)]
        self._take_then_rest(order, now_ns, reports)
        return reports

    def cancel(self, key: int, now_ns: int) -> list[Report]:
        """Cancels an open order; a key that is not open is rejected (REJECT_UNKNOWN_ORDER)."""
        order = self._open.get(key)
        if order is None:
            return [_not_open(key, now_ns)]
        self._unrest(order)
        order.status = CANCELED
        return [self._report(order, now_ns)]

    def modify(self, key: int, px_tick: int, qty: float, now_ns: int) -> list[Report]:
        """Changes an open order's price and total qty (Binance PUT /fapi/v1/order rules)."""
        order = self._open.get(key)
        if order is None:
            return [_not_open(key, now_ns)]
        code = self._check_qty(qty) or (REJECT_INVALID_PRICE if px_tick <= 0 else 0)
        if code == 0 and px_tick == order.px_tick and abs(qty - order.qty) <= self._eps:
            code = REJECT_SAME_ORDER
        if code:
            return [self._report(order, now_ns, reject_code=code)]
        too_small = qty <= order.cum_qty + self._eps
        if too_small or (order.tif == GTX and self._crosses(order.side, px_tick)):
            self._unrest(order)
            order.status = CANCELED
            code = 0 if too_small else REJECT_GTX_WOULD_CROSS
            return [self._report(order, now_ns, reject_code=code)]
        self._unrest(order)  # re-queued at the back even if only the qty changed
        order.px_tick, order.qty, order.leaves_qty = px_tick, qty, qty - order.cum_qty
        order.status, order.cross_guard_tick = NEW, None
        reports = [self._report(order, now_ns)]
        self._take_then_rest(order, now_ns, reports)  # a crossing GTC takes, as on submit
        return reports

    def on_trade(self, aggressor_side: int, px_tick: int, qty: float, now_ns: int) -> list[Report]:
        """Fills resting orders hit by a market trade.

        A sell aggressor at ``px_tick`` hits our buys priced at or above it (and a buy
        aggressor our sells at or below it), best price first, then oldest first. Orders
        priced strictly better than the trade were traded through: each fills up to what is
        left of the trade qty and its queue_ahead drops to 0. Orders at the trade price:
        queue_ahead shrinks by the trade qty, and an order fills by what the trade had beyond
        its queue_ahead and beyond our fills ahead of it at that price. All fills of one
        trade add up to at most its qty. (hftbacktest fills traded-through orders in full;
        this is the conservative reading.)
        """
        if aggressor_side not in (BUY, SELL):
            raise UsageError(f"aggressor_side must be BUY or SELL, got {aggressor_side!r}")
        side = -aggressor_side
        ticks = self._ticks[side]
        if side == BUY:
            hit = ticks[bisect_left(ticks, px_tick) :][::-1]
        else:
            hit = ticks[: bisect_right(ticks, px_tick)]
        reports: list[Report] = []
        budget = qty
        for tick in hit:
            filled_here = 0.0
            for order in list(self._levels[(side, tick)].values()):
                if tick == px_tick:
                    room = qty - order.queue_ahead - filled_here
                    order.queue_ahead = max(0.0, order.queue_ahead - qty)
                else:
                    room = budget
                    order.queue_ahead = 0.0
                exec_qty = min(order.leaves_qty, room, budget)
                if exec_qty > self._eps:
                    reports.append(self._fill(order, exec_qty, order.px_tick, True, now_ns))
                    budget -= exec_qty
                    filled_here += exec_qty
        return reports

    def on_depth(self, side: int, px_tick: int, qty: float, now_ns: int) -> list[Report]:
        """A book level changed to ``qty``: queue_ahead = min(queue_ahead, qty) there.

        ``side`` is BUY for a bid level, SELL for an ask level. Never fills (see on_book).
        """
        level = self._levels.get((side, px_tick))
        if level:
            for order in level.values():
                order.queue_ahead = min(order.queue_ahead, qty)
        return []

    def on_book(self, now_ns: int) -> list[Report]:
        """After a batch of depth updates: fills in full, as maker at their own price, the
        resting orders the book now crosses (the market moved through them).
        """
        for order in list(self._guarded.values()):
            if not self._crosses(order.side, order.px_tick):
                order.cross_guard_tick = None
                del self._guarded[order.key]
        reports: list[Report] = []
        bid, ask = self.book.best_bid_tick, self.book.best_ask_tick
        buy_ticks, sell_ticks = self._ticks[BUY], self._ticks[SELL]
        crossed = [(BUY, t, ask) for t in buy_ticks[bisect_left(buy_ticks, ask) :][::-1]]
        crossed += [(SELL, t, bid) for t in sell_ticks[: bisect_right(sell_ticks, bid)]]
        for side, tick, opp_best in crossed:
            for order in list(self._levels[(side, tick)].values()):
                guard = order.cross_guard_tick
                if guard is not None and (opp_best - guard) * side >= 0:
                    order.cross_guard_tick = opp_best  # no new liquidity past the guard yet
                    continue
                reports.append(self._fill(order, order.leaves_qty, tick, True, now_ns))
        return reports

    def _check_qty(self, qty: float) -> int:
        if not (math.isfinite(qty) and qty > 0.0):
            return REJECT_INVALID_QTY
        lots = round(qty / self.lot_size)
        if lots < 1 or abs(qty - lots * self.lot_size) > LOT_RTOL * qty:
            return REJECT_QTY_NOT_LOT_MULT
        return 0

    def _check_new(self, order: SimOrder) -> int:
        if order.side not in (BUY, SELL):
            return REJECT_INVALID_SIDE
        if order.order_type not in (LIMIT, MARKET):
            return REJECT_INVALID_TYPE
        if order.order_type == LIMIT:  # Binance ignores timeInForce on MARKET orders
            if order.tif not in (GTC, GTX, FOK, IOC):
                return REJECT_INVALID_TIF
            if order.px_tick <= 0:
                return REJECT_INVALID_PRICE
        return self._check_qty(order.qty)

    def _crosses(self, side: int, px_tick: int) -> bool:
        if side == BUY:
            return px_tick >= self.book.best_ask_tick
        return px_tick <= self.book.best_bid_tick

    def _opposite_levels(self, order: SimOrder) -> Iterable[tuple[int, float]]:
        if order.side == BUY:
            return self.book.ask_levels(MAX_SWEEP_LEVELS)
        return self.book.bid_levels(MAX_SWEEP_LEVELS)

    def _within_limit(self, order: SimOrder, tick: int) -> bool:
        return order.order_type == MARKET or (tick - order.px_tick) * order.side <= 0

    def _takeable(self, order: SimOrder) -> float:
        total = 0.0
        for tick, qty in self._opposite_levels(order):
            if not self._within_limit(order, tick) or total >= order.qty:
                break
            total += qty
        return total

    def _take_then_rest(self, order: SimOrder, now_ns: int, reports: list[Report]) -> None:
        for tick, qty in self._opposite_levels(order):
            if not self._within_limit(order, tick):
                break
            if qty > self._eps:
                exec_qty = min(qty, order.leaves_qty)
                reports.append(self._fill(order, exec_qty, tick, False, now_ns))
                if order.status == FILLED:
                    return
        if order.order_type == LIMIT and order.tif in (GTC, GTX):
            self._rest(order)
        else:
            order.status = EXPIRED
            reports.append(self._report(order, now_ns))

    def _fill(
        self, order: SimOrder, exec_qty: float, px_tick: int, maker: bool, now_ns: int
    ) -> Report:
        order.cum_qty += exec_qty
        order.leaves_qty = order.qty - order.cum_qty
        if order.leaves_qty <= self._eps:  # float dust: snap to an exact full fill
            order.cum_qty, order.leaves_qty, order.status = order.qty, 0.0, FILLED
            if order.key in self._open:
                self._unrest(order)
        else:
            order.status = PARTIALLY_FILLED
        return self._report(order, now_ns, exec_qty, px_tick, maker)

    def _rest(self, order: SimOrder) -> None:
        side, tick = order.side, order.px_tick
        if side == BUY:
            order.queue_ahead = self.book.bid_qty_at_tick(tick)
        else:
            order.queue_ahead = self.book.ask_qty_at_tick(tick)
        if self._crosses(side, tick):
            order.cross_guard_tick = (
                self.book.best_ask_tick if side == BUY else self.book.best_bid_tick
            )
            self._guarded[order.key] = order
        level = self._levels.get((side, tick))
        if level is None:
            level = self._levels[(side, tick)] = {}
            insort(self._ticks[side], tick)
        level[order.key] = order
        self._open[order.key] = order

    def _unrest(self, order: SimOrder) -> None:
        del self._open[order.key]
        self._guarded.pop(order.key, None)
        level_key = (order.side, order.px_tick)
        level = self._levels[level_key]
        del level[order.key]
        if not level:
            del self._levels[level_key]
            ticks = self._ticks[order.side]
            del ticks[bisect_left(ticks, order.px_tick)]

    @staticmethod
    def _report(
        order: SimOrder,
        now_ns: int,
        exec_qty: float = 0.0,
        exec_px_tick: int = 0,
        maker: bool = False,
        reject_code: int = 0,
    ) -> Report:
        return Report(
            order.key,
            order.status,
            exec_qty,
            exec_px_tick,
            maker,
            order.leaves_qty,
            order.cum_qty,
            order.px_tick,
            order.qty,
            now_ns,
            reject_code,
        )


def _not_open(key: int, now_ns: int) -> Report:
    return Report(key, NONE, 0.0, 0, False, 0.0, 0.0, 0, 0.0, now_ns, REJECT_UNKNOWN_ORDER)
