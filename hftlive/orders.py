"""Orders as seen from njit: `Order`, `OrderDict` and its `Values` iterator (reference §3).

A bot keeps each asset's orders in a compact table of hftbacktest's `order_dtype` records
(in its shared-memory view); `OrderDict` is a view over that table, as in hftbacktest.
An `Order` holds a 1-record view (`arr`), so `order.arr[0].maker` works as it does there.
Like hftbacktest, a held `Order` may point at another order after `clear_inactive_orders`.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.experimental import jitclass

from hftlive.constants import CANCELED, EXPIRED, FILLED, NEW, NONE, PARTIALLY_FILLED
from hftlive.layout import N_USED, order_dtype, state_values_dtype

order_nb = nb.from_dtype(order_dtype)
state_nb = nb.from_dtype(state_values_dtype)


@jitclass
class Order:
    arr: order_nb[:]

    def __init__(self, arr):
        self.arr = arr

    @property
    def price(self):
        return self.arr[0].price_tick * self.arr[0].tick_size

    @property
    def exec_price(self):
        return self.arr[0].exec_price_tick * self.arr[0].tick_size

    @property
    def cancellable(self):
        s = self.arr[0].status
        return (s == NEW or s == PARTIALLY_FILLED) and self.arr[0].req == NONE

    @property
    def qty(self):
        return self.arr[0].qty

    @property
    def leaves_qty(self):
        return self.arr[0].leaves_qty

    @property
    def price_tick(self):
        return self.arr[0].price_tick

    @property
    def tick_size(self):
        # hftbacktest 2.4.4 returns price_tick here (a bug, reference §3.2); we return the tick size.
        return self.arr[0].tick_size

    @property
    def exch_timestamp(self):
        return self.arr[0].exch_timestamp

    @property
    def local_timestamp(self):
        return self.arr[0].local_timestamp

    @property
    def exec_price_tick(self):
        return self.arr[0].exec_price_tick

    @property
    def exec_qty(self):
        return self.arr[0].exec_qty

    @property
    def order_id(self):
        return self.arr[0].order_id

    @property
    def order_type(self):
        return self.arr[0].order_type

    @property
    def req(self):
        return self.arr[0].req

    @property
    def status(self):
        return self.arr[0].status

    @property
    def side(self):
        return self.arr[0].side

    @property
    def time_in_force(self):
        return self.arr[0].time_in_force

    @property
    def maker(self):
        return self.arr[0].maker


@nb.njit(cache=True)
def find_order(table, n, order_id):
    """Index of order_id among the first n records, or -1."""
    for i in range(n):
        if table[i].order_id == order_id:
            return i
    return -1


@nb.njit(cache=True)
def is_final(status):
    return status == FILLED or status == CANCELED or status == EXPIRED


@jitclass
class Values:
    table: order_nb[:]
    count: nb.int64[:]
    i: nb.int64

    def __init__(self, table, count):
        self.table = table
        self.count = count
        self.i = -1

    def next(self):
        self.i += 1
        if self.i < self.count[N_USED]:
            return Order(self.table[self.i : self.i + 1])
        return None

    def has_next(self):
        self.i += 1
        return self.i < self.count[N_USED]

    def get(self):
        if self.i < 0 or self.i >= self.count[N_USED]:
            raise RuntimeError("Values.get() with no current order: call has_next() first")
        return Order(self.table[self.i : self.i + 1])


@jitclass
class OrderDict:
    table: order_nb[:]
    count: nb.int64[:]

    def __init__(self, table, count):
        self.table = table
        self.count = count

    def get(self, order_id):
        i = find_order(self.table, self.count[N_USED], np.uint64(order_id))
        if i < 0:
            return None
        return Order(self.table[i : i + 1])

    def __contains__(self, order_id):
        return find_order(self.table, self.count[N_USED], np.uint64(order_id)) >= 0

    def __len__(self):
        return np.uint64(self.count[N_USED])

    def values(self):
        return Values(self.table, self.count)


@jitclass
class StateValues:
    arr: state_nb[:]

    def __init__(self, arr):
        self.arr = arr

    @property
    def position(self):
        return self.arr[0].position

    @property
    def balance(self):
        return self.arr[0].balance

    @property
    def fee(self):
        return self.arr[0].fee

    @property
    def num_trades(self):
        return self.arr[0].num_trades

    @property
    def trading_volume(self):
        return self.arr[0].trading_volume

    @property
    def trading_value(self):
        return self.arr[0].trading_value
