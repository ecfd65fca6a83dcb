"""The LiveBot jitclass: hftbacktest's backtest members over shared-memory rings.

The class is specialised per (number of assets, number of connectors, depth kind) so that
per-asset objects sit in fixed-size tuples: `hbt.depth(0)` is a tuple lookup, not an
allocation, of a HashMapMarketDepth or, for a bot built with roi_lb/roi_ub, an
ROIVectorMarketDepth (layout.DEPTH_*; every asset of a bot has the same kind, as
hftbacktest's bot classes are one per depth kind).
It is a thin facade over hftlive.botfn's cached functions: `elapse`, `wait_next_feed`
and `wait_order_response` are overloads inlined into the strategy (the LiveBot has numba
type classes of its own, hftlive._inline), whose polling (botfn.wait_begin) reads raw
addresses, so that "nothing new yet" costs a few loads, one clock read and no reference
count; the slow path (`_wait_more_cached`, and the order requests through
hftlive._sys.extern) is compiled once and cached, as is the constructor
(hftlive._jitclass_new).
Semantics follow hftbacktest's backtester (DESIGN.md, "LiveBot semantics"); the clock is
the wall clock, or a sim replay's shared with the bot (connector.lockstep).

What a strategy reads (depth, orders, state values, last trades) changes only inside
`elapse`, `wait_next_feed`, `wait_order_response` and `wait=True` calls, because events
are applied only by `_wait`.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload_method

from hftlive import _jitclass_box, _jitclass_new, signals
from hftlive import botfn as f
from hftlive._inline import jitclass_of, own_type_classes
from hftlive._sys import call_i64, extern, load_at, rdtsc, store_at
from hftlive.constants import (
    CUSTOM_ERROR,
    END_OF_DATA,
    INSTRUMENT_NOT_FOUND,
    INVALID_ORDER_REQUEST,
    MARKET_FEED,
    ORDER_RESPONSE,
)
from hftlive.depth import HashMapMarketDepth
from hftlive.depth_roi import ROIVectorMarketDepth, depth_arrays
from hftlive.layout import (
    C_CB_N,
    C_CLOSED,
    C_END,
    C_ERRORS,
    C_FOUND,
    C_HAS_CB,
    C_LAST_ERR_CODE,
    C_LAST_ERR_KIND,
    C_LAST_ERR_REASON,
    C_RESYNCS,
    DEPTH_HASHMAP,
    DEPTH_ROIVECTOR,
    DF_TICK,
    L_FEED_EXCH,
    L_FEED_LOCAL,
    L_HAS_FEED,
    L_HAS_ORDER,
    L_ORDER_EXCH,
    L_ORDER_REQ,
    L_ORDER_RESP,
    MD_WRITE_SEQ,
    N_USED,
    S_TRADING,
    SPSC_READ,
    SPSC_WRITE,
    depth_views,
    event_dtype,
    request_dtype,
    response_dtype,
)
from hftlive.orders import (
    OrderDict,
    StateValues,
    order_id_arg,
    order_nb,
    python_order_id,
    state_nb,
)

event_nb = nb.from_dtype(event_dtype)
req_nb = nb.from_dtype(request_dtype)
resp_nb = nb.from_dtype(response_dtype)

MAX_DEADLINE_NS = f.MAX_WAIT_NS

MODE_ELAPSE = 0
MODE_FEED = 1
MODE_ORDER = 2

# the slow path: called, never inlined (see hftlive._sys.extern)
_submit_impl = extern(f.submit_impl)
_cancel_impl = extern(f.cancel_impl)
_modify_impl = extern(f.modify_impl)
_clear_inactive = extern(f.clear_inactive)


log = logging.getLogger(__name__)

_CB_HANDLERS: dict[int, object] = {}  # bot key -> its Python session (has callbacks)
_SESSIONS: dict[int, object] = {}  # bot key -> its Python session


def _run_callbacks(key: int) -> int:
    cb = _CB_HANDLERS.get(key)
    return 0 if cb is None else cb.run()


def _close_session(key: int) -> None:
    s = _SESSIONS.pop(key, None)
    if s is not None:
        s.close()


def _guarded_callbacks(key: int) -> int:
    try:
        return _run_callbacks(key)
    except BaseException:  # a ctypes callback cannot raise into njit code: 19, as a handler's
        log.exception("running bot %d's callbacks failed", key)
        return CUSTOM_ERROR


def _guarded_close(key: int) -> None:
    try:
        _close_session(key)
    except BaseException:  # a ctypes callback cannot raise into njit code
        log.exception("closing bot %d's session failed", key)


# njit code re-enters the interpreter through ctypes callbacks (they take the GIL, which
# the strategy's thread holds anyway): calling one compiles to an indirect call, where an
# objmode block compiled a lifted function on every start (~0.2 s of the first elapse)
_dispatch = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(_guarded_callbacks)
_close_dispatch = ctypes.CFUNCTYPE(None, ctypes.c_int64)(_guarded_close)
# cached code reaches _dispatch through its address, a field of the bot: numba refuses to
# cache a function that calls a ctypes function object (its address is baked in)
_DISPATCH_ADDR = ctypes.cast(_dispatch, ctypes.c_void_p).value


@nb.njit(inline="always")
def _asset(self, asset_no):
    """`asset_no` as an index into the bot's per-asset arrays, or IndexError. Unchecked, a
    strategy written for more instruments than this bot registered read another region of
    memory as its position (0.0, say) or latencies; hftbacktest's backtester crashes.
    Not for the members that return a jitclass (depth, state_values, orders): a raise
    there makes numba count a reference to it on every call (depth(0).best_bid 0.7 ->
    18.5 ns); they use _past_end_if_negative."""
    a = np.int64(asset_no)
    if a < 0 or a >= self.cursor.shape[0]:
        raise IndexError("asset_no is not one of this bot's assets (0 .. num_assets - 1)")
    return a


@nb.njit(inline="always")
def _past_end_if_negative(self, asset_no):
    """`asset_no` as an index into a per-asset tuple, whose own getitem raises IndexError
    past its end; a negative one, which a tuple takes from its end (-1: the last asset),
    is made one past the end."""
    a = np.int64(asset_no)
    return a if a >= 0 else self.cursor.shape[0]


@nb.njit(inline="always")
def _now(self):
    """The bot's clock: the wall clock, or the replay's (connector.lockstep)."""
    return f.now_ns(self.ls[0], self.ts)


@nb.njit(inline="always")
def _wait(self, mode, duration, include_resp, wait_asset, wait_id, refusal=0):
    """Every LiveBot wait. Inlined into the calling method (numba IR), which LLVM inlines
    into the strategy: a call that passed the bot to a function would cost a reference-
    count increment and decrement of it, atomics that were most of `elapse(1)`.

    Polling (botfn.wait_begin, wait_spin) reads raw addresses and is compiled once and
    cached; `_wait_more` applies what it finds and spins. `elapse` counts its duration
    from the bot's time at the last wait's return (botfn.wait_begin, CADENCE_NS): a loop
    of elapse(d) steps every d whatever the strategy's own time between calls (up to d),
    and a step costs at most one clock read. A non-zero `refusal` is
    returned without waiting. Straight-line code only: numba's SSA pass warns about a
    variable assigned in branches of an inlined function.
    """
    me = _meminfo_of(self)  # the slow path gets the bot back from these two, so that
    kind = _type_of(self)  # `self` is not live across the calls (no reference count)
    ev, deadline = f.wait_begin(self.p_sig, self.p_ctrl, self.p_cursor, self.p_md_ws,
                                self.p_resp_w, self.p_resp_r, self.tpn, mode == MODE_ELAPSE,
                                np.int64(duration), np.int64(wait_asset), np.int64(wait_id),
                                np.int64(refusal), self.ls[0])  # fmt: skip
    return _wait_end(kind, me, mode, include_resp, deadline, ev)


@nb.njit
def _wait_end(kind, me, mode, include_resp, deadline, ev):
    if ev == f.EV_TIME:
        return 0  # the common case: nothing new, the time is up
    if ev < 0:
        return -ev  # the run is over, or the call was refused
    # what came, or (ev 0) nothing yet: the slow path applies it and spins
    return _wait_more_ext(kind, me, np.int64(mode), np.int64(include_resp), np.int64(deadline),
                          np.int64(ev))  # fmt: skip


@nb.njit(cache=True)
def _wait_more_cached(kind, me, mode, include_resp, deadline, ev):
    """The slow path of every wait (`_wait_more` and what it calls), compiled once per
    LiveBot class and loaded from numba's cache: the class's type pickles as a reference
    (hftlive._jitclass_new). Cached code must link what it calls (an `extern` symbol's name
    changes with each compile), so botfn's functions are called directly in it."""
    return _instance_at(kind, me)._wait_more(mode, include_resp != 0, deadline, ev)


_wait_more_ext = extern(_wait_more_cached)


@intrinsic
def _meminfo_of(typingctx, inst):
    """The address of a jitclass instance's meminfo (no reference taken)."""
    sig = types.int64(inst)

    def codegen(context, builder, signature, args):
        st = cgutils.create_struct_proxy(signature.args[0])(context, builder, value=args[0])
        return builder.ptrtoint(st.meminfo, ir.IntType(64))

    return sig, codegen


@intrinsic
def _type_of(typingctx, inst):
    """The instance's numba type, as a value (a TypeRef: nothing at run time)."""
    sig = types.TypeRef(inst)(inst)

    def codegen(context, builder, signature, args):
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _instance_at(typingctx, kind, addr):
    """The jitclass instance of type `kind` whose meminfo is at `addr` (_meminfo_of), as a
    new reference. The caller must hold the instance alive (here: the strategy's bot)."""
    inst_type = kind.instance_type
    sig = inst_type(kind, types.int64)

    def codegen(context, builder, signature, args):
        st = cgutils.create_struct_proxy(inst_type)(context, builder)
        mi = builder.inttoptr(args[1], st._get_ptr_by_name("meminfo").type.pointee)
        st.meminfo = mi
        data = context.nrt.meminfo_data(builder, mi)
        st.data = builder.bitcast(data, st._get_ptr_by_name("data").type.pointee)
        value = st._getvalue()
        context.nrt.incref(builder, inst_type, value)
        return value

    return sig, codegen


@nb.njit(inline="always")
def _elapse(self, duration):
    return _wait(self, MODE_ELAPSE, np.int64(duration), False, -1, np.uint64(0))


@nb.njit(inline="always")
def _wait_next_feed(self, include_order_resp, timeout):
    return _wait(self, MODE_FEED, np.int64(timeout), include_order_resp, -1, np.uint64(0))


@nb.njit(inline="always")
def _wait_order_response(self, asset_no, order_id, timeout):
    a = np.int64(asset_no)
    ok, oid = order_id_arg(order_id)
    return _wait(self, MODE_ORDER, np.int64(timeout), False, a, oid,
                 _order_wait_refusal(a, self.n_assets, ok))


@nb.njit
def _order_wait_refusal(a, n_assets, id_ok):
    if a < 0 or a >= n_assets:
        return INSTRUMENT_NOT_FOUND
    if not id_ok:
        return INVALID_ORDER_REQUEST
    return 0


# The LiveBot's numba types, of its own type classes (hftlive._inline): the waits below
# are overloads for it alone.
LiveBotInstanceType, LiveBotClassType = own_type_classes("LiveBot", __name__)

# The waits a strategy calls in its loop are overloads inlined into it, not jitclass
# methods: calling a jitclass method increments and decrements the bot's reference count
# (two atomic operations, most of an `elapse(1)` here); inlined, the wait reads the bot's
# fields in place. Python calls the `_py_*` methods under the same names.
_WAITS = ("elapse", "wait_next_feed", "wait_order_response")


@overload_method(LiveBotInstanceType, "elapse", inline="always")
def _ol_elapse(self, duration):
    return _elapse.py_func


@overload_method(LiveBotInstanceType, "wait_next_feed", inline="always")
def _ol_wait_next_feed(self, include_order_resp, timeout):
    return _wait_next_feed.py_func


@overload_method(LiveBotInstanceType, "wait_order_response", inline="always")
def _ol_wait_order_response(self, asset_no, order_id, timeout):
    return _wait_order_response.py_func


class _LiveBotBase:
    """hftbacktest's Bot interface; see the module docstring. Built by hftlive.bot.

    Its fields and `__init__` come from FIELDS, below the class.
    """

    # ----------------------------------------------------------------- properties

    @property
    def current_timestamp(self):
        return _now(self)

    @property
    def num_assets(self):
        return np.uint64(self.cursor.shape[0])

    # ----------------------------------------------------------------- market data

    def depth(self, asset_no):
        return self.depths[_past_end_if_negative(self, asset_no)]

    def position(self, asset_no):
        return self.state[_asset(self, asset_no)].position

    def state_values(self, asset_no):
        return self.states[_past_end_if_negative(self, asset_no)]

    def last_trades(self, asset_no):
        a = _asset(self, asset_no)
        return self.trades[a, : self.trade_n[a, N_USED]]

    def clear_last_trades(self, asset_no):
        a = np.int64(asset_no)
        if a < 0 or a >= self.cursor.shape[0]:
            self.trade_n[:, N_USED] = 0
        else:
            self.trade_n[a, N_USED] = 0

    def orders(self, asset_no):
        return self.order_dicts[_past_end_if_negative(self, asset_no)]

    def feed_latency(self, asset_no):
        a = _asset(self, asset_no)
        if self.latency[a, L_HAS_FEED] == 0:
            return None
        return (self.latency[a, L_FEED_EXCH], self.latency[a, L_FEED_LOCAL])

    def order_latency(self, asset_no):
        a = _asset(self, asset_no)
        if self.latency[a, L_HAS_ORDER] == 0:
            return None
        return (
            self.latency[a, L_ORDER_REQ],
            self.latency[a, L_ORDER_EXCH],
            self.latency[a, L_ORDER_RESP],
        )

    # ----------------------------------------------------------------- hftlive extras

    @property
    def error_count(self):
        """Errors received so far (each also went to the error_handler, if any)."""
        return self.ctrl[C_ERRORS]

    @property
    def last_error_kind(self):
        return self.ctrl[C_LAST_ERR_KIND]

    @property
    def last_error_code(self):
        return self.ctrl[C_LAST_ERR_CODE]

    @property
    def last_error_reason(self):
        """The last error's venue-neutral reason: a REJECT_* constant (REJECT_NONE if it
        refused nothing); last_error_code keeps the venue's raw code beside it."""
        return self.ctrl[C_LAST_ERR_REASON]

    @property
    def trading_state(self):
        """This bot's trading state (hftlive.constants.TRADING_*: active, reducing,
        halted), the strictest over its connectors, as they set it (`python -m hftlive
        halt|reduce|resume`, an alert, a flatten); refused orders say why as usual."""
        st = 0
        for c in range(self.n_conns):
            v = self.slot[c][S_TRADING]
            if v > st:
                st = v
        return st

    @property
    def resync_count(self):
        return self.ctrl[C_RESYNCS]

    # ----------------------------------------------------------------- orders

    def submit_buy_order(self, asset_no, order_id, price, qty, time_in_force, order_type, wait):
        ok, oid = order_id_arg(order_id)
        if not ok:
            return INVALID_ORDER_REQUEST
        return self._submit(np.int64(asset_no), oid, np.float64(price), np.float64(qty),
                            np.int64(time_in_force), np.int64(order_type), wait, 1)  # fmt: skip

    def submit_sell_order(self, asset_no, order_id, price, qty, time_in_force, order_type, wait):
        ok, oid = order_id_arg(order_id)
        if not ok:
            return INVALID_ORDER_REQUEST
        return self._submit(np.int64(asset_no), oid, np.float64(price), np.float64(qty),
                            np.int64(time_in_force), np.int64(order_type), wait, -1)  # fmt: skip

    def _submit(self, a, order_id, price, qty, tif, otype, wait, side):
        end = self._ended()
        if end != 0:
            return end
        if a < 0 or a >= self.cursor.shape[0]:
            return INSTRUMENT_NOT_FOUND
        c = self.asset_conn[a]
        rc = _submit_impl(self.otab[a], self.order_n[a], self.depths[a].df[DF_TICK], order_id,
                           price, qty, tif, otype, side, _now(self), self.req_hdr[c],
                           self.req[c], self.asset_inst[a], self.bell_fd[c], self.bell)  # fmt: skip
        if rc == 0 and wait:
            return _wait(self, MODE_ORDER, MAX_DEADLINE_NS, False, a, order_id)
        return rc

    def cancel(self, asset_no, order_id, wait):
        a = np.int64(asset_no)
        ok, oid = order_id_arg(order_id)
        if not ok:
            return INVALID_ORDER_REQUEST
        end = self._ended()
        if end != 0:
            return end
        if a < 0 or a >= self.cursor.shape[0]:
            return INSTRUMENT_NOT_FOUND
        c = self.asset_conn[a]
        rc = _cancel_impl(self.otab[a], self.order_n[a], oid, _now(self), self.req_hdr[c],
                           self.req[c], self.asset_inst[a], self.bell_fd[c], self.bell)  # fmt: skip
        if rc == 0 and wait:
            return _wait(self, MODE_ORDER, MAX_DEADLINE_NS, False, a, oid)
        return rc

    def modify(self, asset_no, order_id, price, qty, wait):
        a = np.int64(asset_no)
        ok, oid = order_id_arg(order_id)
        if not ok:
            return INVALID_ORDER_REQUEST
        end = self._ended()
        if end != 0:
            return end
        if a < 0 or a >= self.cursor.shape[0]:
            return INSTRUMENT_NOT_FOUND
        c = self.asset_conn[a]
        rc = _modify_impl(self.otab[a], self.order_n[a], oid, np.float64(price), np.float64(qty),
                           _now(self), self.req_hdr[c], self.req[c], self.asset_inst[a],
                           self.bell_fd[c], self.bell)  # fmt: skip
        if rc == 0 and wait:
            return _wait(self, MODE_ORDER, MAX_DEADLINE_NS, False, a, oid)
        return rc

    def clear_inactive_orders(self, asset_no):
        a = np.int64(asset_no)
        if a < 0 or a >= self.cursor.shape[0]:
            for k in range(self.cursor.shape[0]):
                _clear_inactive(self.otab[k], self.order_n[k])
        else:
            _clear_inactive(self.otab[a], self.order_n[a])

    # ----------------------------------------------------------------- waiting

    def elapse_bt(self, duration):
        return 0  # live: a no-op, as in hftbacktest's live bot

    # elapse, wait_next_feed and wait_order_response reach njit code as overloads inlined
    # into it (below the class); Python calls these under those names (_jitclass_box.alias)
    def _py_elapse(self, duration):
        return _elapse(self, duration)

    def _py_wait_next_feed(self, include_order_resp, timeout):
        return _wait_next_feed(self, include_order_resp, timeout)

    def _py_wait_order_response(self, asset_no, order_id, timeout):
        return _wait_order_response(self, asset_no, order_id, timeout)

    def _goto_end(self):
        """hftbacktest's HashMap backtest member: run until the end (here: until stopped)."""
        return _wait(self, MODE_ELAPSE, MAX_DEADLINE_NS, False, -1, np.uint64(0))

    def close(self):
        if self.ctrl[C_CLOSED] == 0:
            self.ctrl[C_CLOSED] = 1
            _close_dispatch(self.key)  # frees the bot's slots and its view segment
        return 0

    def _ctrl(self, i):
        return load_at(self.p_ctrl + 8 * i)

    def _set_ctrl(self, i, v):
        store_at(self.p_ctrl + 8 * i, v)

    def _ended(self):
        if load_at(self.p_sig) != 0 or self._ctrl(C_CLOSED) != 0:
            return END_OF_DATA
        return self._ctrl(C_END)

    def _wait_more(self, mode, include_resp, deadline, ev):
        """The rest of a wait once its first poll found something (EV_* bits in `ev`: apply
        it, decide, spin on) or nothing yet (`ev` 0, or a replay's clock: spin first)."""
        p_sig = self.p_sig
        p_ctrl = self.p_ctrl
        while True:
            flags = 0
            if ev & f.EV_NEWS:
                flags = self._poll()
                if load_at(p_ctrl + 8 * C_CB_N) != 0:
                    rc = self._callbacks()
                    if rc != 0:
                        return rc
            if ev & f.EV_HOUSE:
                # due by the TSC, whatever the bot's clock (a replay's is in its own ns)
                f.housekeep(self.ctrl, self.view_hdr, self.ctl, self.slot, self.conn_pid,
                            self.conn_epoch, self.bot_id, self.ts, self.tpn, rdtsc())  # fmt: skip
            if ev & f.EV_END or load_at(p_ctrl + 8 * C_END) != 0:
                # what the connector published before it stopped is applied: a final poll
                self._poll()
                self._callbacks()
                if load_at(p_sig) != 0 or load_at(p_ctrl + 8 * C_CLOSED) != 0:
                    return END_OF_DATA
                return load_at(p_ctrl + 8 * C_END)
            if mode == MODE_FEED:
                if flags & f.F_FEED:
                    return MARKET_FEED
                if include_resp and flags & f.F_RESP:
                    return ORDER_RESPONSE
            elif mode == MODE_ORDER and load_at(p_ctrl + 8 * C_FOUND) != 0:
                return 0
            if ev & f.EV_TIME:
                return 0
            ev = f.wait_spin(p_sig, p_ctrl, self.p_cursor, self.p_md_ws, self.p_resp_w,
                             self.p_resp_r, self.tpn, deadline, self.ls)  # fmt: skip

    def _callbacks(self):
        """Run the Python handlers on what the last poll queued; non-zero: stop with it."""
        p_ctrl = self.p_ctrl
        if load_at(p_ctrl + 8 * C_CB_N) == 0:
            return 0
        if load_at(p_ctrl + 8 * C_HAS_CB) == 0:
            store_at(p_ctrl + 8 * C_CB_N, 0)
            return 0
        return call_i64(self.p_dispatch, self.key)

    def _poll(self):
        """Apply what every market ring and response ring holds; the F_* flags of what came."""
        flags = 0
        for a in range(self.n_assets):
            if load_at(self.p_md_ws[a]) != load_at(self.p_cursor + 8 * a):
                flags |= f.md_consume(self.md_hdr[a], self.md_ring[a], self.md_snap[a],
                                      self.cursor, a, depth_arrays(self.depths[a]),
                                      self.trades[a], self.trade_n[a], self.latency[a],
                                      self.scratch, self.snap_scratch, self.ctrl, self.cbq)  # fmt: skip
        for c in range(self.n_conns):
            if load_at(self.p_resp_w[c]) != load_at(self.p_resp_r[c]):
                flags |= f.resp_consume(self.resp_hdr[c], self.resp[c], self.inst_asset[c],
                                        self.state, self.otab, self.order_n, self.latency,
                                        self.ctrl, self.cbq, self.cbq_prev, self.ts,
                                        self.ls[0])  # fmt: skip
        return flags


# ---------------------------------------------------------------------- fields

ASSET = "asset"  # the field is a tuple with one item per asset
CONN = "conn"  # ... one item per connector

i8 = nb.int64
# The depth jitclass of each kind; the class's kind picks the type of `depths` (DEPTH, below)
DEPTHS = {DEPTH_HASHMAP: HashMapMarketDepth, DEPTH_ROIVECTOR: ROIVectorMarketDepth}
DEPTH = "depth"  # in FIELDS: the type of the class's depth kind's jitclass
_odict_nb = OrderDict.class_type.instance_type
_svals_nb = StateValues.class_type.instance_type


@dataclass
class LiveBotParts:
    """What hftlive.bot gathers to build a LiveBot; FIELDS makes each field from it."""

    n: int  # assets
    nc: int  # connectors
    depth_kind: int  # layout.DEPTH_*: the depth every asset has
    bot_id: int
    key: int  # the bot's key in _SESSIONS and _CB_HANDLERS
    view: dict[str, np.ndarray]  # the bot's view segment, by region (layout.bot_layout)
    view_hdr: np.ndarray  # its header as int64 words
    mds: list  # ipc.MdViews per asset
    ctls: list  # ipc.CtlViews per connector
    slot_idx: list[int]  # the bot's slot on each connector
    asset_conn: np.ndarray  # asset -> connector
    asset_inst: np.ndarray  # asset -> the connector's instrument index
    inst_asset: np.ndarray  # (connector, instrument) -> asset, or -1
    cursor: np.ndarray  # per asset: the next market ring position to read
    ctrl: np.ndarray  # layout.ctrl_dtype words
    cbq: np.ndarray  # responses queued for the Python callbacks
    cbq_prev: np.ndarray  # the order as it was before each queued response
    bell_fds: list[int]  # per connector: the doorbell FIFO, or -1
    ticks_per_ns: float
    lockstep: tuple = (0, 0, 0)  # the replay clock's addresses (hftlive.bot._lockstep)


# One line per field: (name, numba type [of each item if per ASSET or CONN], per, how it
# is made from a LiveBotParts p [and the asset or connector number]; for a jitclass, the
# arguments of its constructor). The jitclass spec, its __init__ and the values
# hftlive.bot passes are all derived from this table.
FIELDS = (
    ("depths", DEPTH, ASSET, lambda p, a: depth_views(p.view, a, p.depth_kind)),
    ("order_dicts", _odict_nb, ASSET, lambda p, a: (p.view["orders"][a], p.view["order_n"][a])),
    ("states", _svals_nb, ASSET, lambda p, a: (p.view["state"][a : a + 1],)),
    ("otab", order_nb[:, :], None, lambda p: p.view["orders"]),
    ("order_n", i8[:, :], None, lambda p: p.view["order_n"]),
    ("state", state_nb[:], None, lambda p: p.view["state"]),
    ("trades", event_nb[:, :], None, lambda p: p.view["trades"]),
    ("trade_n", i8[:, :], None, lambda p: p.view["trade_n"]),
    ("latency", i8[:, :], None, lambda p: p.view["latency"]),
    ("md_hdr", i8[:], ASSET, lambda p, a: p.mds[a].words),
    ("md_ring", event_nb[:], ASSET, lambda p, a: p.mds[a].ring),
    ("md_snap", event_nb[:], ASSET, lambda p, a: p.mds[a].snapshot),
    ("cursor", i8[:], None, lambda p: p.cursor),
    ("asset_conn", i8[:], None, lambda p: p.asset_conn),
    ("asset_inst", i8[:], None, lambda p: p.asset_inst),
    ("inst_asset", i8[:, :], None, lambda p: p.inst_asset),
    ("ctl", i8[:], CONN, lambda p, c: p.ctls[c].words),
    ("slot", i8[:], CONN, lambda p, c: p.ctls[c].slot_words[p.slot_idx[c]]),
    ("req_hdr", i8[:], CONN, lambda p, c: p.ctls[c].req_hdr[p.slot_idx[c]]),
    ("req", req_nb[:], CONN, lambda p, c: p.ctls[c].req[p.slot_idx[c]]),
    ("resp_hdr", i8[:], CONN, lambda p, c: p.ctls[c].resp_hdr[p.slot_idx[c]]),
    ("resp", resp_nb[:], CONN, lambda p, c: p.ctls[c].resp[p.slot_idx[c]]),
    ("conn_pid", i8[:], None, lambda p: _header_words(p, "pid")),
    ("conn_epoch", i8[:], None, lambda p: _header_words(p, "epoch")),
    ("bell_fd", i8[:], None, lambda p: np.array(p.bell_fds, np.int64)),
    ("ctrl", i8[:], None, lambda p: p.ctrl),
    ("ts", i8[:], None, lambda p: np.zeros(2, np.int64)),  # a struct timespec for _sys
    ("scratch", event_nb[:], None, lambda p: np.zeros(256, event_dtype)),
    ("snap_scratch", event_nb[:], None,
        lambda p: np.zeros(max(len(m.snapshot) for m in p.mds), event_dtype)),
    ("cbq", resp_nb[:], None, lambda p: p.cbq),
    ("cbq_prev", order_nb[:], None, lambda p: p.cbq_prev),
    ("bell", nb.uint8[:], None, lambda p: np.ones(1, np.uint8)),  # the doorbell's byte
    ("view_hdr", i8[:], None, lambda p: p.view_hdr),
    ("bot_id", nb.uint64, None, lambda p: np.uint64(p.bot_id)),
    ("key", i8, None, lambda p: p.key),
    ("p_dispatch", i8, None, lambda p: _DISPATCH_ADDR),  # runs the Python callbacks
    # The polling loop reads through raw addresses (ints): reading an array field of a
    # jitclass costs an atomic reference-count increment and decrement each time. The
    # arrays stay alive: they are fields too (the signal flag is a module global).
    ("n_assets", i8, None, lambda p: p.n),
    ("n_conns", i8, None, lambda p: p.nc),
    ("p_sig", i8, None, lambda p: signals.FLAG.ctypes.data),
    ("p_ctrl", i8, None, lambda p: p.ctrl.ctypes.data),
    ("p_cursor", i8, None, lambda p: p.cursor.ctypes.data),
    ("p_md_ws", i8, ASSET, lambda p, a: p.mds[a].words.ctypes.data + 8 * MD_WRITE_SEQ),
    ("p_resp_w", i8, CONN, lambda p, c: _resp_word(p, c, SPSC_WRITE)),
    ("p_resp_r", i8, CONN, lambda p, c: _resp_word(p, c, SPSC_READ)),
    ("tpn", nb.float64, None, lambda p: p.ticks_per_ns),  # TSC ticks per ns
    # the replay clock (connector.lockstep): addresses of its clock and round words and of
    # this bot's ls_parked slot word; (0, 0, 0) on the wall clock
    ("ls", types.UniTuple(i8, 3), None, lambda p: p.lockstep),
)  # fmt: skip


def _header_words(p: LiveBotParts, field: str) -> np.ndarray:
    return np.array([int(c.header[0][field]) for c in p.ctls], np.int64)


def _resp_word(p: LiveBotParts, c: int, word: int) -> int:
    return p.ctls[c].resp_hdr[p.slot_idx[c]].ctypes.data + 8 * word


def _init_from_fields():
    """`def __init__(self, <each field>): self.<field> = <field> ...`, generated as
    dataclasses does: a jitclass needs a plain function whose assignments type its fields."""
    names = [f[0] for f in FIELDS]
    src = f"def __init__(self, {', '.join(names)}):\n"
    src += "".join(f"    self.{n} = {n}\n" for n in names)
    ns: dict = {}
    exec(compile(src, "<hftlive.botcore FIELDS>", "exec"), ns)
    return ns["__init__"]


_INIT = _init_from_fields()
_CLASSES: dict[tuple, type] = {}
_jitclass_box.register("HashMapMarketDepth", "ROIVectorMarketDepth", "OrderDict", "StateValues",
                       "Order", "Values")  # fmt: skip
# hftbacktest's order ids are u64: from Python, any of them works and a bad one gets 13
_ORDER_ID_METHODS = ("submit_buy_order", "submit_sell_order", "cancel", "modify",
                     "wait_order_response")  # fmt: skip
_jitclass_box.alias("LiveBot_", {name: f"_py_{name}" for name in _WAITS})
if _jitclass_new.AVAILABLE:
    _jitclass_box.python_method("LiveBot_", "close", lambda hbt: _py_close(hbt))
_jitclass_box.guard("LiveBot_", "order_id", python_order_id,
                    dict.fromkeys(_ORDER_ID_METHODS, INVALID_ORDER_REQUEST))  # fmt: skip


def make_livebot_class(n_assets: int, n_conns: int, depth_kind: int = DEPTH_HASHMAP):
    """The LiveBot jitclass for this many assets and connectors and this depth kind
    (layout.DEPTH_*), made once per process."""
    key = (n_assets, n_conns, depth_kind)
    if key in _CLASSES:
        return _CLASSES[key]
    count = {None: 0, ASSET: n_assets, CONN: n_conns}
    kind_types = {DEPTH: DEPTHS[depth_kind].class_type.instance_type}
    spec = [(name, kind_types.get(typ, typ) if per is None
             else types.UniTuple(kind_types.get(typ, typ), count[per]))
            for name, typ, per, _ in FIELDS]  # fmt: skip
    body = dict(_LiveBotBase.__dict__, __init__=_INIT)
    suffix = "_roi" if depth_kind == DEPTH_ROIVECTOR else ""
    jc = jitclass_of(type(f"LiveBot_{n_assets}x{n_conns}{suffix}", (), body), spec,
                     LiveBotClassType)  # fmt: skip
    jc.class_type.stable_args = key  # how the cache refers to it (_jitclass_new)
    jc.class_type.stable_depends = _SLOW_PATH_MODULES
    _CLASSES[key] = jc
    return jc


# The modules whose njit code the cached constructor and slow path link (botfn and what
# it imports): an edit to one of them makes numba's cache miss those entries.
_SLOW_PATH_MODULES = ("hftlive.botfn", "hftlive._sys", "hftlive.constants", "hftlive.depth",
                      "hftlive.depth_roi", "hftlive.layout", "hftlive.orders")  # fmt: skip


def _livebot_class_type(n_assets: int, n_conns: int, depth_kind: int):
    return make_livebot_class(n_assets, n_conns, depth_kind).class_type


# the constructor is cached code (_jitclass_new), whose cache names the class by its key
_jitclass_new.stable_reduce(LiveBotClassType, _livebot_class_type)


# a live bot's data address -> (its key, its ctrl words), for close() from Python; an
# address is overwritten by the next bot built there, so a live bot's entry is its own
_BY_DATA: dict[int, tuple[int, np.ndarray]] = {}


def _py_close(hbt):
    """`hbt.close()` called from Python: what the method does (njit code calls the method),
    without compiling its Python wrapper on every start (~0.13 s). The bot's entry goes
    with its first close (it holds a view of the bot's segment: the mapping would outlive
    the bot); a second close finds none and, as the method, does nothing."""
    entry = _BY_DATA.pop(_jitclass_new.data_address(hbt), None)
    if entry is not None and entry[1][C_CLOSED] == 0:
        key, ctrl = entry
        ctrl[C_CLOSED] = 1
        _guarded_close(key)  # frees the bot's slots and its view segment
    return 0


def new_livebot(p: LiveBotParts):
    """A LiveBot over the parts: each field made as FIELDS says."""
    count = {ASSET: p.n, CONN: p.nc}
    values = tuple(make(p) if per is None else tuple(make(p, i) for i in range(count[per]))
                   for _, _, per, make in FIELDS)  # fmt: skip
    cls = make_livebot_class(p.n, p.nc, p.depth_kind)
    if _jitclass_new.AVAILABLE:
        hbt = _jitclass_new.new_instance(cls, values)
        _BY_DATA[_jitclass_new.data_address(hbt)] = (p.key, p.ctrl)
        return hbt
    made = {"depths": DEPTHS[p.depth_kind], "order_dicts": OrderDict, "states": StateValues}
    return cls(*(tuple(made[name](*a) for a in v) if name in made else v
                 for (name, *_), v in zip(FIELDS, values)))  # fmt: skip
