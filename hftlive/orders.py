"""Orders as seen from njit: `Order`, `OrderDict` and its `Values` iterator (reference §3).

A bot keeps each asset's orders in a compact table of hftbacktest's `order_dtype` records
(in its shared-memory view); `OrderDict` is a view over that table, as in hftbacktest.
An `Order` holds a 1-record view (`arr`), so `order.arr[0].maker` works as it does there.
Like hftbacktest, a held `Order` may point at another order after `clear_inactive_orders`.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import types
from numba.experimental import jitclass
from numba.extending import overload

from hftlive import _jitclass_box
from hftlive._sys import void_ptr_at
from hftlive.constants import CANCELED, EXPIRED, FILLED, NEW, NONE, PARTIALLY_FILLED
from hftlive.layout import N_USED, order_dtype, state_values_dtype

order_nb = nb.from_dtype(order_dtype)
state_nb = nb.from_dtype(state_values_dtype)

ORDER_ID_MAX = 2**64 - 1  # order ids are hftbacktest's u64: every one of them is valid
_TWO_POW_64 = 18446744073709551616.0


def order_id_arg(order_id):
    """(True, order_id as uint64) for a valid id, else (False, 0).

    Valid: an integer in 0..2**64-1, or an integral float in that range, since hftbacktest's
    examples pass floats (`submit_buy_order(0, 7.0, ...)`). Not valid: a negative or larger
    number, a fraction, NaN, a bool, anything else. In njit code the same rules hold by
    type; a negative signed integer is refused rather than wrapped round to a huge id.
    """
    if isinstance(order_id, (bool, np.bool_)):
        return False, np.uint64(0)
    if isinstance(order_id, (int, np.integer)):
        if 0 <= order_id <= ORDER_ID_MAX:
            return True, np.uint64(order_id)
    elif isinstance(order_id, (float, np.floating)):
        if 0.0 <= order_id < _TWO_POW_64 and float(order_id).is_integer():
            return True, np.uint64(int(order_id))
    return False, np.uint64(0)


@overload(order_id_arg)
def _order_id_arg_nb(order_id):
    if isinstance(order_id, types.Integer):
        if order_id.signed:
            return lambda order_id: (order_id >= 0, np.uint64(order_id))
        return lambda order_id: (True, np.uint64(order_id))
    if isinstance(order_id, types.Float):

        def impl(order_id):
            # NaN fails every comparison; 2**64-1 is not a float, 2.0**64 is the bound
            if 0.0 <= order_id < _TWO_POW_64 and np.floor(order_id) == order_id:
                return True, np.uint64(order_id)
            return False, np.uint64(0)

        return impl
    return lambda order_id: (False, np.uint64(0))


def python_order_id(order_id):
    """For _jitclass_box.guard: the id as np.uint64, so that numba's dispatcher always
    picks the uint64 specialisation (a Python int is typed int64 when it fits, and a later
    id above 2**63-1 would overflow that one), or None if it is not a valid id."""
    ok, oid = order_id_arg(order_id)
    return oid if ok else None


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


@nb.njit(inline="always")
def row_view(table, i):
    """table[i:i+1] as a 1-record array that holds no reference to the table (a raw view,
    as hftbacktest's Order is over its engine's memory): a slice would increment and
    decrement the table's reference count for every order walked. The table is the bot's
    view segment, alive while the bot is."""
    return nb.carray(void_ptr_at(table.ctypes.data + i * _ORDER_SIZE), 1, order_dtype)


_ORDER_SIZE = order_dtype.itemsize


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
            return Order(row_view(self.table, self.i))
        return None

    def has_next(self):
        self.i += 1
        return self.i < self.count[N_USED]

    def get(self):
        if self.i < 0 or self.i >= self.count[N_USED]:
            raise RuntimeError("Values.get() with no current order: call has_next() first")
        return Order(row_view(self.table, self.i))


@jitclass
class OrderDict:
    table: order_nb[:]
    count: nb.int64[:]

    def __init__(self, table, count):
        self.table = table
        self.count = count

    def get(self, order_id):
        ok, oid = order_id_arg(order_id)
        i = find_order(self.table, self.count[N_USED], oid) if ok else -1
        if i < 0:
            return None
        return Order(row_view(self.table, i))

    def __contains__(self, order_id):
        ok, oid = order_id_arg(order_id)
        return ok and find_order(self.table, self.count[N_USED], oid) >= 0

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


_jitclass_box.guard("OrderDict", "order_id", python_order_id, {"get": None, "__contains__": False})
