"""A simple inventory-skewed market maker: one post-only quote per side.

Quotes sit `half_spread_ticks` around the mid, shifted against the inventory by
`skew_ticks` per `order_qty` of position, so a long position lowers both quotes (selling
becomes likelier, buying less). A quote that drifted more than `requote_ticks` from where
it should be is moved with `modify` (hftbacktest's backtester routes it; so does hftlive).
The same function runs in an hftbacktest backtest and live.
"""

from __future__ import annotations

import numpy as np
from numba import njit

BUY = 1
SELL = -1
GTX = 1
LIMIT = 0
NEW = 1
PARTIALLY_FILLED = 5

BID_ID = 1
ASK_ID = 2


@njit
def market_maker(hbt, recorder, order_qty, max_position, half_spread_ticks, skew_ticks,
                 requote_ticks):  # fmt: skip
    asset_no = 0
    tick_size = hbt.depth(asset_no).tick_size
    next_id = 10
    bid_id = 0
    ask_id = 0
    while hbt.elapse(50_000_000) == 0:
        hbt.clear_inactive_orders(asset_no)
        depth = hbt.depth(asset_no)
        if not (np.isfinite(depth.best_bid) and np.isfinite(depth.best_ask)):
            continue
        mid_tick = (depth.best_bid_tick + depth.best_ask_tick) / 2.0
        position = hbt.position(asset_no)
        skew = -position / order_qty * skew_ticks
        bid_tick = min(int(np.floor(mid_tick - half_spread_ticks + skew)), depth.best_bid_tick)
        ask_tick = max(int(np.ceil(mid_tick + half_spread_ticks + skew)), depth.best_ask_tick)
        orders = hbt.orders(asset_no)

        bid = orders.get(bid_id)
        if position >= max_position:
            if bid is not None and bid.cancellable:
                hbt.cancel(asset_no, bid_id, False)
        elif bid is None:
            next_id += 1
            bid_id = next_id
            hbt.submit_buy_order(
                asset_no, bid_id, bid_tick * tick_size, order_qty, GTX, LIMIT, False
            )
        elif bid.cancellable and abs(bid.price_tick - bid_tick) > requote_ticks:
            hbt.modify(asset_no, bid_id, bid_tick * tick_size, bid.leaves_qty, False)

        ask = orders.get(ask_id)
        if position <= -max_position:
            if ask is not None and ask.cancellable:
                hbt.cancel(asset_no, ask_id, False)
        elif ask is None:
            next_id += 1
            ask_id = next_id
            hbt.submit_sell_order(
                asset_no, ask_id, ask_tick * tick_size, order_qty, GTX, LIMIT, False
            )
        elif ask.cancellable and abs(ask.price_tick - ask_tick) > requote_ticks:
            hbt.modify(asset_no, ask_id, ask_tick * tick_size, ask.leaves_qty, False)

        recorder.record(hbt)
    return True
