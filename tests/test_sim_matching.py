"""Golden tests of the simulated venue's matching engine (connector/matching.py)."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest

from connector.errors import UsageError
from connector.matching import (
    BUY,
    CANCELED,
    EXPIRED,
    FILLED,
    FOK,
    GTC,
    GTX,
    INVALID_MAX,
    INVALID_MIN,
    IOC,
    LIMIT,
    MARKET,
    NEW,
    NONE,
    PARTIALLY_FILLED,
    REJECT_FOK_NOT_FILLED,
    REJECT_GTX_WOULD_CROSS,
    REJECT_INVALID_PRICE,
    REJECT_INVALID_QTY,
    REJECT_INVALID_SIDE,
    REJECT_INVALID_TIF,
    REJECT_INVALID_TYPE,
    REJECT_QTY_NOT_LOT_MULT,
    REJECT_SAME_ORDER,
    REJECT_UNKNOWN_ORDER,
    SELL,
    MatchingEngine,
    Report,
    SimOrder,
)

FINAL = (EXPIRED, FILLED, CANCELED)
T = 1_000  # an arbitrary exch_ts


class DictBook:
    """Pure-Python test double of the replayed book interface the engine reads."""

    def __init__(self, bids: dict[int, float] | None = None, asks: dict[int, float] | None = None):
        self.bids = dict(bids or {})
        self.asks = dict(asks or {})

    @property
    def best_bid_tick(self) -> int:
        return max(self.bids) if self.bids else INVALID_MIN

    @property
    def best_ask_tick(self) -> int:
        return min(self.asks) if self.asks else INVALID_MAX

    def bid_qty_at_tick(self, tick: int) -> float:
        return self.bids.get(tick, 0.0)

    def ask_qty_at_tick(self, tick: int) -> float:
        return self.asks.get(tick, 0.0)

    def bid_levels(self, max_levels: int):
        return [(t, self.bids[t]) for t in sorted(self.bids, reverse=True)[:max_levels]]

    def ask_levels(self, max_levels: int):
        return [(t, self.asks[t]) for t in sorted(self.asks)[:max_levels]]

    def set(self, side: int, tick: int, qty: float) -> None:
        levels = self.bids if side == BUY else self.asks
        if qty > 0.0:
            levels[tick] = qty
        else:
            levels.pop(tick, None)


def make(bids=None, asks=None, lot_size: float = 0.5) -> tuple[DictBook, MatchingEngine]:
    book = DictBook(bids, asks)
    return book, MatchingEngine(book, lot_size)


def lim(key, side, px_tick, qty, tif=GTC) -> SimOrder:
    return SimOrder(key=key, side=side, px_tick=px_tick, qty=qty, tif=tif, order_type=LIMIT)


def mkt(key, side, qty) -> SimOrder:
    return SimOrder(key=key, side=side, px_tick=0, qty=qty, tif=IOC, order_type=MARKET)


def fields(order: SimOrder) -> tuple:
    return tuple(getattr(order, f.name) for f in dataclasses.fields(order))


def brief(reports: list[Report]) -> list[tuple]:
    """(key, status, exec_qty, exec_px_tick, maker, leaves_qty, cum_qty, reject_code)."""
    return [
        (
            r.key,
            r.status,
            r.exec_qty,
            r.exec_px_tick,
            r.maker,
            r.leaves_qty,
            r.cum_qty,
            r.reject_code,
        )
        for r in reports
    ]


BOOK = {"bids": {100: 5.0, 99: 2.0, 98: 5.0}, "asks": {102: 1.0, 103: 1.0, 104: 5.0}}


# --- submit: validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("qty", "code"),
    [
        (0.0, REJECT_INVALID_QTY),
        (-1.0, REJECT_INVALID_QTY),
        (math.nan, REJECT_INVALID_QTY),
        (math.inf, REJECT_INVALID_QTY),
        (0.25, REJECT_QTY_NOT_LOT_MULT),
        (0.3, REJECT_QTY_NOT_LOT_MULT),
        (1.0 + 1e-6, REJECT_QTY_NOT_LOT_MULT),
    ],
)
def test_bad_qty_is_rejected_as_expired(qty, code):
    _, eng = make(**BOOK)
    reports = eng.submit(lim(1, BUY, 100, qty), T)
    assert len(reports) == 1
    r = reports[0]
    assert (r.key, r.status, r.exec_qty, r.reject_code, r.exch_ts) == (1, EXPIRED, 0.0, code, T)
    assert eng.get(1) is None and eng.open_orders() == []


def test_lot_multiple_check_tolerates_float_representation():
    _, eng = make(**BOOK, lot_size=0.1)
    assert [r.status for r in eng.submit(lim(1, BUY, 100, 0.3), T)] == [NEW]
    assert [r.status for r in eng.submit(lim(2, BUY, 100, 0.7 + 1e-12), T)] == [NEW]
    assert eng.submit(lim(3, BUY, 100, 0.35), T)[0].reject_code == REJECT_QTY_NOT_LOT_MULT


@pytest.mark.parametrize(
    ("order", "code"),
    [
        (lim(1, BUY, 0, 1.0), REJECT_INVALID_PRICE),
        (lim(1, SELL, -5, 1.0), REJECT_INVALID_PRICE),
        (lim(1, 0, 100, 1.0), REJECT_INVALID_SIDE),
        (lim(1, BUY, 100, 1.0, tif=7), REJECT_INVALID_TIF),
        (SimOrder(1, BUY, 100, 1.0, GTC, 5), REJECT_INVALID_TYPE),
    ],
)
def test_bad_price_side_tif_or_type_is_rejected(order, code):
    _, eng = make(**BOOK)
    assert brief(eng.submit(order, T)) == [(1, EXPIRED, 0.0, 0, False, order.qty, 0.0, code)]


def test_market_order_needs_no_price():
    _, eng = make(**BOOK)
    assert eng.submit(mkt(1, BUY, 1.0), T)[-1].status == FILLED


def test_duplicate_open_key_and_bad_construction_raise_usage_error():
    book, eng = make(**BOOK)
    eng.submit(lim(1, BUY, 100, 1.0), T)
    with pytest.raises(UsageError):
        eng.submit(lim(1, BUY, 99, 1.0), T)
    with pytest.raises(UsageError):
        MatchingEngine(book, 0.0)
    with pytest.raises(UsageError):
        MatchingEngine(book, 1.0, queue_model="prob_queue")


# --- submit: GTX, GTC ---------------------------------------------------------------------


@pytest.mark.parametrize(("side", "px_tick"), [(BUY, 102), (BUY, 110), (SELL, 100), (SELL, 90)])
def test_gtx_that_would_cross_is_expired_with_5022(side, px_tick):
    _, eng = make(**BOOK)
    reports = eng.submit(lim(1, side, px_tick, 1.0, tif=GTX), T)
    assert brief(reports) == [(1, EXPIRED, 0.0, 0, False, 1.0, 0.0, REJECT_GTX_WOULD_CROSS)]
    assert eng.open_orders() == []


def test_gtx_that_does_not_cross_rests_last_in_queue():
    _, eng = make(**BOOK)
    assert brief(eng.submit(lim(1, BUY, 101, 1.0, tif=GTX), T)) == [
        (1, NEW, 0.0, 0, False, 1.0, 0.0, 0)
    ]
    eng.submit(lim(2, SELL, 103, 2.0, tif=GTX), T)
    assert eng.get(1).queue_ahead == 0.0  # inside the spread: nobody ahead
    assert eng.get(2).queue_ahead == 1.0  # behind the 1.0 displayed at 103
    assert [o.key for o in eng.open_orders()] == [1, 2]


def test_gtx_on_empty_book_rests():
    _, eng = make()
    assert [r.status for r in eng.submit(lim(1, BUY, 100, 1.0, tif=GTX), T)] == [NEW]
    assert [r.status for r in eng.submit(lim(2, SELL, 100, 1.0, tif=GTX), T)] == [NEW]


def test_gtc_crossing_takes_then_rests_the_remainder():
    _, eng = make(**BOOK)
    reports = eng.submit(lim(1, BUY, 103, 3.0), T)
    assert brief(reports) == [
        (1, NEW, 0.0, 0, False, 3.0, 0.0, 0),
        (1, PARTIALLY_FILLED, 1.0, 102, False, 2.0, 1.0, 0),
        (1, PARTIALLY_FILLED, 1.0, 103, False, 1.0, 2.0, 0),
    ]
    order = eng.get(1)
    assert (order.status, order.leaves_qty, order.px_tick) == (PARTIALLY_FILLED, 1.0, 103)


def test_gtc_fully_taken_ends_filled():
    _, eng = make(**BOOK)
    reports = eng.submit(lim(1, SELL, 99, 6.0), T)
    assert brief(reports) == [
        (1, NEW, 0.0, 0, False, 6.0, 0.0, 0),
        (1, PARTIALLY_FILLED, 5.0, 100, False, 1.0, 5.0, 0),
        (1, FILLED, 1.0, 99, False, 0.0, 6.0, 0),
    ]
    assert eng.get(1) is None


def test_gtc_rests_then_is_filled_by_a_trade_through():
    _, eng = make(**BOOK)
    eng.submit(lim(1, BUY, 100, 2.0), T)
    assert eng.get(1).queue_ahead == 5.0
    # A seller traded at 99 (below our bid): the trade went through our price.
    assert brief(eng.on_trade(SELL, 99, 1.5, T + 1)) == [
        (1, PARTIALLY_FILLED, 1.5, 100, True, 0.5, 1.5, 0)
    ]
    assert eng.get(1).queue_ahead == 0.0
    assert brief(eng.on_trade(SELL, 98, 3.0, T + 2)) == [(1, FILLED, 0.5, 100, True, 0.0, 2.0, 0)]
    assert eng.open_orders() == []


def test_trade_on_the_other_side_or_beyond_our_price_does_nothing():
    _, eng = make(**BOOK)
    eng.submit(lim(1, BUY, 100, 2.0), T)
    eng.submit(lim(2, SELL, 102, 2.0), T)
    assert eng.on_trade(BUY, 101, 9.0, T) == []  # buy aggressor at 101 < our ask 102
    assert eng.on_trade(SELL, 101, 9.0, T) == []  # sell aggressor at 101 > our bid 100
    assert eng.get(1).queue_ahead == 5.0 and eng.get(2).queue_ahead == 1.0


# --- queue position -----------------------------------------------------------------------


def test_queue_position_partial_fills_at_same_price():
    _, eng = make(**BOOK)
    eng.submit(lim(1, BUY, 100, 3.0), T)
    assert eng.on_trade(SELL, 100, 4.0, T + 1) == []  # 5 ahead of us -> 1 ahead
    assert eng.get(1).queue_ahead == 1.0
    assert brief(eng.on_trade(SELL, 100, 3.0, T + 2)) == [
        (1, PARTIALLY_FILLED, 2.0, 100, True, 1.0, 2.0, 0)
    ]
    assert eng.get(1).queue_ahead == 0.0
    assert brief(eng.on_trade(SELL, 100, 5.0, T + 3)) == [(1, FILLED, 1.0, 100, True, 0.0, 3.0, 0)]


def test_buy_aggressor_fills_resting_sell_by_queue():
    _, eng = make(**BOOK)
    eng.submit(lim(1, SELL, 103, 2.0), T)  # 1.0 ahead
    assert brief(eng.on_trade(BUY, 103, 2.0, T)) == [
        (1, PARTIALLY_FILLED, 1.0, 103, True, 1.0, 1.0, 0)
    ]


def test_one_trade_is_shared_in_arrival_order_at_one_price():
    _, eng = make(bids={100: 2.0})
    eng.submit(lim(1, BUY, 100, 2.0), T)
    eng.submit(lim(2, BUY, 100, 2.0), T)
    # 5 traded: 2 to the book queue, 2 to order 1, the last 1 to order 2.
    assert brief(eng.on_trade(SELL, 100, 5.0, T)) == [
        (1, FILLED, 2.0, 100, True, 0.0, 2.0, 0),
        (2, PARTIALLY_FILLED, 1.0, 100, True, 1.0, 1.0, 0),
    ]


def test_one_trade_is_shared_across_prices_best_first():
    _, eng = make(bids={100: 1.0})
    eng.submit(lim(1, BUY, 100, 2.0), T)  # 1.0 ahead
    eng.submit(lim(2, BUY, 101, 2.0), T)  # traded through first
    assert brief(eng.on_trade(SELL, 100, 3.0, T)) == [
        (2, FILLED, 2.0, 101, True, 0.0, 2.0, 0),
        (1, PARTIALLY_FILLED, 1.0, 100, True, 1.0, 1.0, 0),
    ]
    assert eng.get(1).queue_ahead == 0.0


def test_depth_decrease_advances_the_queue_increase_does_not():
    _, eng = make(**BOOK)
    eng.submit(lim(1, BUY, 100, 2.0), T)
    eng.submit(lim(2, BUY, 99, 2.0), T)
    assert eng.on_depth(BUY, 100, 2.0, T) == []
    assert eng.get(1).queue_ahead == 2.0
    eng.on_depth(BUY, 100, 7.0, T)  # orders joined behind us
    assert eng.get(1).queue_ahead == 2.0
    eng.on_depth(SELL, 100, 0.0, T)  # other side: untouched
    assert eng.get(1).queue_ahead == 2.0 and eng.get(2).queue_ahead == 2.0
    assert brief(eng.on_trade(SELL, 100, 3.0, T)) == [
        (1, PARTIALLY_FILLED, 1.0, 100, True, 1.0, 1.0, 0)
    ]


# --- book moving through resting orders ---------------------------------------------------


def test_book_moving_through_resting_orders_fills_them_as_maker():
    book, eng = make(**BOOK)
    eng.submit(lim(1, BUY, 101, 2.0), T)
    eng.submit(lim(2, BUY, 100, 2.0), T)
    eng.submit(lim(3, SELL, 103, 1.0), T)
    assert eng.on_book(T) == []
    book.set(SELL, 102, 0.0)
    book.set(SELL, 103, 0.0)
    book.set(SELL, 101, 4.0)  # best ask 101 now crosses our buy at 101 only
    assert brief(eng.on_book(T + 5)) == [(1, FILLED, 2.0, 101, True, 0.0, 2.0, 0)]
    book.set(BUY, 103, 1.0)  # best bid 103 crosses our sell at 103
    book.set(SELL, 101, 0.0)
    assert brief(eng.on_book(T + 6)) == [(3, FILLED, 1.0, 103, True, 0.0, 1.0, 0)]
    assert [o.key for o in eng.open_orders()] == [2]


def test_gtc_remainder_resting_crossed_is_not_filled_again_by_the_same_liquidity():
    book, eng = make(**BOOK)
    eng.submit(lim(1, BUY, 103, 3.0), T)  # takes 102 and 103, rests 1.0 at 103
    assert eng.on_book(T) == []
    book.set(SELL, 104, 9.0)  # unrelated change
    assert eng.on_book(T) == []
    book.set(SELL, 101, 1.0)  # a seller now offers below the asks we already took
    assert brief(eng.on_book(T + 1)) == [(1, FILLED, 1.0, 103, True, 0.0, 3.0, 0)]


def test_crossed_remainder_fills_when_the_book_moves_away_and_back():
    book, eng = make(**BOOK)
    eng.submit(lim(1, BUY, 103, 3.0), T)
    book.set(SELL, 102, 0.0)
    book.set(SELL, 103, 0.0)  # best ask 104: no longer crossed
    assert eng.on_book(T) == []
    book.set(SELL, 103, 1.0)
    assert brief(eng.on_book(T)) == [(1, FILLED, 1.0, 103, True, 0.0, 3.0, 0)]


# --- IOC, FOK, MARKET ---------------------------------------------------------------------


def test_ioc_takes_what_it_can_then_expires():
    _, eng = make(**BOOK)
    assert brief(eng.submit(lim(1, BUY, 103, 3.0, tif=IOC), T)) == [
        (1, NEW, 0.0, 0, False, 3.0, 0.0, 0),
        (1, PARTIALLY_FILLED, 1.0, 102, False, 2.0, 1.0, 0),
        (1, PARTIALLY_FILLED, 1.0, 103, False, 1.0, 2.0, 0),
        (1, EXPIRED, 0.0, 0, False, 1.0, 2.0, 0),
    ]
    assert brief(eng.submit(lim(2, SELL, 101, 1.0, tif=IOC), T)) == [
        (2, NEW, 0.0, 0, False, 1.0, 0.0, 0),
        (2, EXPIRED, 0.0, 0, False, 1.0, 0.0, 0),
    ]
    assert eng.open_orders() == []


def test_fok_fills_all_or_none():
    _, eng = make(**BOOK)
    assert brief(eng.submit(lim(1, BUY, 103, 2.5, tif=FOK), T)) == [
        (1, EXPIRED, 0.0, 0, False, 2.5, 0.0, REJECT_FOK_NOT_FILLED)
    ]
    assert brief(eng.submit(lim(2, BUY, 104, 2.5, tif=FOK), T)) == [
        (2, NEW, 0.0, 0, False, 2.5, 0.0, 0),
        (2, PARTIALLY_FILLED, 1.0, 102, False, 1.5, 1.0, 0),
        (2, PARTIALLY_FILLED, 1.0, 103, False, 0.5, 2.0, 0),
        (2, FILLED, 0.5, 104, False, 0.0, 2.5, 0),
    ]
    assert brief(eng.submit(lim(3, SELL, 100, 5.0, tif=FOK), T)) == [
        (3, NEW, 0.0, 0, False, 5.0, 0.0, 0),
        (3, FILLED, 5.0, 100, False, 0.0, 5.0, 0),
    ]
    assert eng.open_orders() == []


def test_market_sweeps_several_levels_without_market_impact():
    book, eng = make(**BOOK)
    for key in (1, 2):  # the book is not changed, so the same liquidity is there again
        assert brief(eng.submit(mkt(key, SELL, 8.0), T)) == [
            (key, NEW, 0.0, 0, False, 8.0, 0.0, 0),
            (key, PARTIALLY_FILLED, 5.0, 100, False, 3.0, 5.0, 0),
            (key, PARTIALLY_FILLED, 2.0, 99, False, 1.0, 7.0, 0),
            (key, FILLED, 1.0, 98, False, 0.0, 8.0, 0),
        ]
    assert book.bids == BOOK["bids"]


def test_market_remainder_expires_when_the_book_runs_out():
    _, eng = make(**BOOK)
    assert brief(eng.submit(mkt(1, BUY, 9.0), T)) == [
        (1, NEW, 0.0, 0, False, 9.0, 0.0, 0),
        (1, PARTIALLY_FILLED, 1.0, 102, False, 8.0, 1.0, 0),
        (1, PARTIALLY_FILLED, 1.0, 103, False, 7.0, 2.0, 0),
        (1, PARTIALLY_FILLED, 5.0, 104, False, 2.0, 7.0, 0),
        (1, EXPIRED, 0.0, 0, False, 2.0, 7.0, 0),
    ]


def test_market_on_empty_book_expires_unfilled():
    _, eng = make(bids={100: 1.0})
    assert brief(eng.submit(mkt(1, BUY, 1.0), T)) == [
        (1, NEW, 0.0, 0, False, 1.0, 0.0, 0),
        (1, EXPIRED, 0.0, 0, False, 1.0, 0.0, 0),
    ]


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_open_order_then_reject_the_second_cancel():
    _, eng = make(**BOOK)
    eng.submit(lim(1, BUY, 100, 2.0), T)
    eng.on_trade(SELL, 99, 0.5, T)
    assert brief(eng.cancel(1, T + 1)) == [(1, CANCELED, 0.0, 0, False, 1.5, 0.5, 0)]
    assert eng.get(1) is None
    not_open = (1, NONE, 0.0, 0, False, 0.0, 0.0, REJECT_UNKNOWN_ORDER)
    assert brief(eng.cancel(1, T + 2)) == [not_open]
    assert brief(eng.cancel(42, T + 2)) == [(42, *not_open[1:])]


def test_cancel_of_a_filled_order_is_rejected():
    _, eng = make(**BOOK)
    eng.submit(lim(1, BUY, 102, 1.0), T)  # filled on entry
    assert eng.cancel(1, T)[0].reject_code == REJECT_UNKNOWN_ORDER


# --- modify ---------------------------------------------------------------------------------


def test_modify_price_requeues_at_the_new_level():
    _, eng = make(**BOOK)
    eng.submit(lim(1, BUY, 100, 2.0), T)
    assert brief(eng.modify(1, 99, 3.0, T + 1)) == [(1, NEW, 0.0, 0, False, 3.0, 0.0, 0)]
    order = eng.get(1)
    assert (order.px_tick, order.qty, order.queue_ahead) == (99, 3.0, 2.0)
    assert eng.on_trade(SELL, 100, 9.0, T) == []  # no longer at 100


def test_modify_qty_down_loses_priority_like_binance():
    book, eng = make(bids={100: 1.0})
    eng.submit(lim(1, BUY, 100, 2.0), T)
    eng.submit(lim(2, BUY, 100, 2.0), T)
    book.set(BUY, 100, 0.0)
    eng.on_depth(BUY, 100, 0.0, T)  # both at the front
    eng.modify(1, 100, 1.0, T)  # re-queued behind order 2 with 0.0 ahead (level is empty)
    assert [o.key for o in eng.open_orders()] == [2, 1]
    assert [(r.key, r.exec_qty) for r in eng.on_trade(SELL, 100, 2.5, T)] == [(2, 2.0), (1, 0.5)]


def test_modify_of_partially_filled_order_keeps_cum_qty():
    _, eng = make(**BOOK)
    eng.submit(lim(1, BUY, 100, 2.0), T)
    eng.on_trade(SELL, 99, 0.5, T)
    assert brief(eng.modify(1, 100, 3.0, T)) == [(1, NEW, 0.0, 0, False, 2.5, 0.5, 0)]


@pytest.mark.parametrize(
    ("px_tick", "qty", "code"),
    [
        (100, 2.0, REJECT_SAME_ORDER),
        (100, 0.0, REJECT_INVALID_QTY),
        (100, 1.25, REJECT_QTY_NOT_LOT_MULT),
        (0, 2.0, REJECT_INVALID_PRICE),
    ],
)
def test_rejected_modify_leaves_the_order_as_it_was(px_tick, qty, code):
    _, eng = make(**BOOK)
    eng.submit(lim(1, BUY, 100, 2.0), T)
    before = fields(eng.get(1))
    assert brief(eng.modify(1, px_tick, qty, T)) == [(1, NEW, 0.0, 0, False, 2.0, 0.0, code)]
    assert fields(eng.get(1)) == before


def test_modify_of_unknown_or_final_order_is_rejected():
    _, eng = make(**BOOK)
    eng.submit(lim(1, BUY, 100, 1.0), T)
    eng.cancel(1, T)
    assert brief(eng.modify(1, 99, 1.0, T)) == [
        (1, NONE, 0.0, 0, False, 0.0, 0.0, REJECT_UNKNOWN_ORDER)
    ]
    assert eng.modify(7, 99, 1.0, T)[0].reject_code == REJECT_UNKNOWN_ORDER


def test_modify_qty_not_above_executed_qty_cancels_like_binance():
    _, eng = make(**BOOK)
    eng.submit(lim(1, BUY, 100, 2.0), T)
    eng.on_trade(SELL, 99, 1.0, T)
    assert brief(eng.modify(1, 100, 1.0, T)) == [(1, CANCELED, 0.0, 0, False, 1.0, 1.0, 0)]
    assert eng.get(1) is None


def test_modify_gtx_to_a_crossing_price_cancels_with_5022():
    _, eng = make(**BOOK)
    eng.submit(lim(1, BUY, 100, 1.0, tif=GTX), T)
    assert brief(eng.modify(1, 102, 1.0, T)) == [
        (1, CANCELED, 0.0, 0, False, 1.0, 0.0, REJECT_GTX_WOULD_CROSS)
    ]
    assert eng.open_orders() == []


def test_modify_gtc_to_a_crossing_price_takes_liquidity():
    _, eng = make(**BOOK)
    eng.submit(lim(1, SELL, 104, 3.0), T)
    assert brief(eng.modify(1, 99, 8.0, T)) == [
        (1, NEW, 0.0, 0, False, 8.0, 0.0, 0),
        (1, PARTIALLY_FILLED, 5.0, 100, False, 3.0, 5.0, 0),
        (1, PARTIALLY_FILLED, 2.0, 99, False, 1.0, 7.0, 0),
    ]
    order = eng.get(1)
    assert (order.px_tick, order.leaves_qty, order.queue_ahead) == (99, 1.0, 0.0)


# --- property-style check -----------------------------------------------------------------


def test_random_operations_keep_the_invariants():
    rng = random.Random(20240611)
    lot = 0.1
    book = DictBook()
    mid = 1000
    for i in range(1, 11):
        book.set(BUY, mid - i, lot * rng.randint(1, 30))
        book.set(SELL, mid + i, lot * rng.randint(1, 30))
    eng = MatchingEngine(book, lot)
    orders: dict[int, SimOrder] = {}
    final: dict[int, tuple] = {}
    exec_sum: dict[int, float] = {}
    live: set[int] = set()
    next_key = 1
    n_fills = 0

    def pick_key() -> int:  # mostly an open order, sometimes a final or unknown key
        if live and rng.random() < 0.8:
            return rng.choice(sorted(live))
        return rng.randint(1, next_key + 2)

    for step in range(4000):
        now = step
        op = rng.random()
        trade_qty = None
        if op < 0.3:
            side = rng.choice((BUY, SELL))
            order = SimOrder(
                key=next_key,
                side=side,
                px_tick=mid - side * rng.randint(-3, 8),  # mostly passive
                qty=lot * rng.randint(-1, 40) if rng.random() > 0.05 else 0.15,
                tif=rng.choice((GTC, GTC, GTX, FOK, IOC)),
                order_type=MARKET if rng.random() < 0.1 else LIMIT,
            )
            orders[next_key] = order
            next_key += 1
            reports = eng.submit(order, now)
            live.add(order.key)
        elif op < 0.4:
            reports = eng.cancel(pick_key(), now)
        elif op < 0.5:
            reports = eng.modify(
                pick_key(), mid + rng.randint(-8, 8), lot * rng.randint(0, 40), now
            )
        elif op < 0.7:
            trade_qty = lot * rng.randint(1, 30)
            aggressor = rng.choice((BUY, SELL))
            px = book.best_ask_tick if aggressor == BUY else book.best_bid_tick
            px = px if abs(px) < 10**6 else mid
            reports = eng.on_trade(aggressor, px + rng.randint(-2, 2), trade_qty, now)
        elif op < 0.95:
            side = rng.choice((BUY, SELL))
            if rng.random() < 0.2:  # the whole book shifts
                mid += rng.choice((-3, -1, 1, 3))
                for levels in (book.bids, book.asks):
                    for tick in list(levels):
                        levels.pop(tick)
                        eng.on_depth(BUY if levels is book.bids else SELL, tick, 0.0, now)
                for i in range(1, 11):
                    for s in (BUY, SELL):
                        tick, qty = mid - i * s, lot * rng.randint(1, 30)
                        book.set(s, tick, qty)
                        eng.on_depth(s, tick, qty, now)
            else:
                tick = mid - rng.randint(1, 10) * side
                qty = lot * rng.randint(0, 30)
                book.set(side, tick, qty)
                eng.on_depth(side, tick, qty, now)
            reports = eng.on_book(now)
        else:
            reports = eng.on_book(now)

        for r in reports:
            assert r.exch_ts == now
            assert r.exec_qty >= 0.0
            if r.reject_code == REJECT_UNKNOWN_ORDER:
                assert r.status == NONE
                continue
            assert r.key not in final, f"report after final: {r}"
            if r.exec_qty > 0.0:
                n_fills += 1
                assert r.status in (PARTIALLY_FILLED, FILLED)
                exec_sum[r.key] = exec_sum.get(r.key, 0.0) + r.exec_qty
        if trade_qty is not None:
            assert sum(r.exec_qty for r in reports) <= trade_qty + 1e-9

        for key in list(live):  # submitted orders not yet final
            o = orders[key]
            if not (math.isfinite(o.qty) and o.qty > 0.0):  # rejected for its qty
                assert (o.status, o.cum_qty) == (EXPIRED, 0.0)
                live.discard(key)
                final[key] = fields(o)
                continue
            assert o.cum_qty <= o.qty + 1e-9
            assert o.leaves_qty >= 0.0
            assert math.isclose(o.leaves_qty + o.cum_qty, o.qty, abs_tol=1e-9)
            assert math.isclose(exec_sum.get(key, 0.0), o.cum_qty, abs_tol=1e-9)
            if o.status in FINAL:
                live.discard(key)
                final[key] = fields(o)
        assert {o.key for o in eng.open_orders()} == live
        if step % 100 == 0:
            for key, snapshot in final.items():
                assert fields(orders[key]) == snapshot, "final order changed"
    for key, snapshot in final.items():
        assert fields(orders[key]) == snapshot, "final order changed"
    # The walk must exercise the engine, not just reject everything.
    assert n_fills > 300
    assert len(final) > 500
    assert len(eng.open_orders()) > 0
