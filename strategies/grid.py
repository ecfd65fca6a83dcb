"""Grid trading, as in hftbacktest's "High-Frequency Grid Trading" tutorial.

The same function object runs in an hftbacktest backtest (HashMapMarketDepthBacktest or
ROIVectorMarketDepthBacktest) and live on a hftlive LiveBot. Every 100 ms it lays a grid
of post-only (GTX) orders below and above the mid, aligned to `grid_interval`, keeps the
orders that are still on the grid, cancels the others, and stops adding to one side when
the position reaches `max_position`. Order ids are the price in ticks, as in the tutorial.
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64
from numba.typed import Dict

BUY = 1
SELL = -1
GTX = 1
LIMIT = 0


@njit
def gridtrading(hbt, recorder, order_qty, max_position, grid_num, grid_interval_ticks,
                half_spread_ticks):  # fmt: skip
    asset_no = 0
    tick_size = hbt.depth(asset_no).tick_size
    grid_interval = tick_size * grid_interval_ticks
    half_spread = tick_size * half_spread_ticks

    # the run ends when elapse() returns non-zero: end of data in a backtest; Ctrl-C,
    # close() or connector shutdown live
    while hbt.elapse(100_000_000) == 0:
        hbt.clear_inactive_orders(asset_no)

        depth = hbt.depth(asset_no)
        position = hbt.position(asset_no)
        orders = hbt.orders(asset_no)

        best_bid = depth.best_bid
        best_ask = depth.best_ask
        mid_price = (best_bid + best_ask) / 2.0

        # aligns the prices to the grid
        bid_price = np.floor((mid_price - half_spread) / grid_interval) * grid_interval
        ask_price = np.ceil((mid_price + half_spread) / grid_interval) * grid_interval

        # the buy grid (keyed by price tick, which is also the order id)
        new_bid_orders = Dict.empty(np.uint64, np.float64)
        if position < max_position and np.isfinite(bid_price):
            for i in range(grid_num):
                bid_price_tick = round((bid_price - i * grid_interval) / tick_size)
                new_bid_orders[uint64(bid_price_tick)] = bid_price_tick * tick_size
        # the sell grid
        new_ask_orders = Dict.empty(np.uint64, np.float64)
        if position > -max_position and np.isfinite(ask_price):
            for i in range(grid_num):
                ask_price_tick = round((ask_price + i * grid_interval) / tick_size)
                new_ask_orders[uint64(ask_price_tick)] = ask_price_tick * tick_size

        order_values = orders.values()
        while order_values.has_next():
            order = order_values.get()
            # cancels the orders that are no longer on the grid
            if order.cancellable:
                if (order.side == BUY and order.order_id not in new_bid_orders) or (
                    order.side == SELL and order.order_id not in new_ask_orders
                ):
                    hbt.cancel(asset_no, order.order_id, False)

        for order_id, order_price in new_bid_orders.items():
            # posts a new buy order if there is no working order at the price
            if order_id not in orders:
                hbt.submit_buy_order(asset_no, order_id, order_price, order_qty, GTX, LIMIT, False)
        for order_id, order_price in new_ask_orders.items():
            if order_id not in orders:
                hbt.submit_sell_order(asset_no, order_id, order_price, order_qty, GTX, LIMIT, False)

        recorder.record(hbt)
    return True
