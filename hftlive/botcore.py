"""The LiveBot jitclass: hftbacktest's backtest members over shared-memory rings.

The class is specialised per (number of assets, number of connectors) so that per-asset
objects sit in fixed-size tuples: `hbt.depth(0)` is then a tuple lookup, not an allocation.
`make_livebot_class(n_assets, n_conns)` builds (and caches) the class; `hftlive.bot` builds
instances. Semantics follow hftbacktest's backtester (DESIGN.md, "LiveBot semantics").

State that a strategy reads (depth, orders, state values, last trades) changes only inside
`elapse`, `wait_next_feed`, `wait_order_response` and `submit_*`/`cancel`/`modify` with
`wait=True`, because events are applied only by `_wait`.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import types
from numba.experimental import jitclass

from hftlive._sys import (
    atomic_load,
    atomic_store,
    fence_acquire,
    pid_alive,
    rdtsc,
    ring_doorbell,
    sleep_ns,
    wall_ns,
    yield_cpu,
)
from hftlive.constants import (
    BUY_EVENT,
    CONNECTOR_LOST,
    END_OF_DATA,
    ERR_BOOK_RESYNC,
    ERR_CONNECTOR,
    FOK,
    GTC,
    INSTRUMENT_NOT_FOUND,
    INVALID_ORDER_REQUEST,
    LIMIT,
    LOCAL_EVENT,
    MARKET,
    MARKET_FEED,
    NEW,
    NONE,
    ORDER_ID_EXIST,
    ORDER_NOT_FOUND,
    ORDER_REQUEST_IN_PROCESS,
    ORDER_RESPONSE,
    REPLACED,
    REQUEST_QUEUE_FULL,
    SELL_EVENT,
    TRADE_EVENT,
    CANCELED,
    WAIT_SLEEP,
    WAIT_YIELD,
)
from hftlive.constants import CANCELED as _CANCELED_STATUS  # noqa: F401  (clarity in _clear)
from hftlive.depth import HashMapMarketDepth, apply_depth_event, depth_clear, round_half_away
from hftlive.layout import (
    CONN_STOPPING,
    L_FEED_EXCH,
    L_FEED_LOCAL,
    L_HAS_FEED,
    L_HAS_ORDER,
    L_ORDER_EXCH,
    L_ORDER_REQ,
    L_ORDER_RESP,
    MD_SNAP_LOCK,
    MD_SNAP_N,
    MD_SNAP_SEQ,
    MD_WRITE_SEQ,
    MD_WRITING_END,
    REQ_CANCEL,
    REQ_MODIFY,
    REQ_SUBMIT,
    RESP_ERROR,
    RESP_ORDER,
    RESP_READY,
    RESP_STATE,
    SPSC_READ,
    SPSC_WRITE,
    event_dtype,
    request_dtype,
    response_dtype,
)
from hftlive.orders import OrderDict, StateValues, find_order, is_final, order_nb, state_nb

event_nb = nb.from_dtype(event_dtype)
req_nb = nb.from_dtype(request_dtype)
resp_nb = nb.from_dtype(response_dtype)

# ctrl words
C_SIGNAL = 0  # unused here: the process-wide signal flag lives in `sig`
C_CLOSED = 1
C_END = 2  # non-zero: the code every waiting call returns from now on
C_CB_N = 4  # entries in the callback queue
C_ERRORS = 5
C_LAST_ERR_KIND = 6
C_LAST_ERR_CODE = 7
C_POLICY = 8
C_FOUND = 9
C_HAS_CB = 10
C_READY = 11
C_WAIT_ASSET = 12
C_WAIT_ID = 13
C_RESYNCS = 14
C_WORDS = 16

# ctl header int64 words
W_PID = 2
W_STATE = 3
W_EPOCH = 4
W_HEARTBEAT = 16
# slot int64 words
S_BOT_ID = 1
S_HEARTBEAT = 8

HOUSEKEEP_NS = 50_000_000
HEARTBEAT_STALE_NS = 3_000_000_000
IDLE_SPINS = 200
SLEEP_SLICE_NS = 50_000
MAX_DEADLINE_NS = 1 << 50

MODE_ELAPSE = 0
MODE_FEED = 1
MODE_ORDER = 2

_CB_HANDLERS: dict[int, object] = {}  # bot key -> its Python session (has callbacks)
_SESSIONS: dict[int, object] = {}  # bot key -> its Python session


def _run_callbacks(key: int) -> int:
    cb = _CB_HANDLERS.get(key)
    return 0 if cb is None else cb.run()


def _close_session(key: int) -> None:
    s = _SESSIONS.pop(key, None)
    if s is not None:
        s.close()


@nb.njit
def _dispatch(key):
    with nb.objmode(rc="int64"):
        rc = _run_callbacks(key)
    return rc


@nb.njit
def _close_dispatch(key):
    with nb.objmode():
        _close_session(key)


@nb.njit(cache=True)
def _as_asset(asset_no):
    return np.int64(asset_no)


class _LiveBotBase:
    """hftbacktest's Bot interface; see the module docstring. Not used directly."""

    def __init__(
        self, depths, order_dicts, states, otab, order_n, state, trades, trade_n, latency,
        md_hdr, md_ring, md_snap, cursor, asset_conn, asset_inst, inst_asset,
        ctl, slot, req_hdr, req, resp_hdr, resp, conn_pid, conn_epoch, bell_fd,
        ctrl, sig, tsc, ts, scratch, snap_scratch, cbq, cbq_prev, bell, view_hdr, bot_id, key,
    ):  # fmt: skip
        self.depths = depths
        self.order_dicts = order_dicts
        self.states = states
        self.otab = otab
        self.order_n = order_n
        self.state = state
        self.trades = trades
        self.trade_n = trade_n
        self.latency = latency
        self.md_hdr = md_hdr
        self.md_ring = md_ring
        self.md_snap = md_snap
        self.cursor = cursor
        self.asset_conn = asset_conn
        self.asset_inst = asset_inst
        self.inst_asset = inst_asset
        self.ctl = ctl
        self.slot = slot
        self.req_hdr = req_hdr
        self.req = req
        self.resp_hdr = resp_hdr
        self.resp = resp
        self.conn_pid = conn_pid
        self.conn_epoch = conn_epoch
        self.bell_fd = bell_fd
        self.ctrl = ctrl
        self.sig = sig
        self.tsc = tsc
        self.ts = ts
        self.scratch = scratch
        self.snap_scratch = snap_scratch
        self.cbq = cbq
        self.cbq_prev = cbq_prev
        self.bell = bell
        self.view_hdr = view_hdr
        self.bot_id = bot_id
        self.key = key

    # ----------------------------------------------------------------- properties

    @property
    def current_timestamp(self):
        return wall_ns(self.ts)

    @property
    def num_assets(self):
        return np.uint64(self.cursor.shape[0])

    # ----------------------------------------------------------------- market data

    def depth(self, asset_no):
        return self.depths[_as_asset(asset_no)]

    def position(self, asset_no):
        return self.state[_as_asset(asset_no)].position

    def state_values(self, asset_no):
        return self.states[_as_asset(asset_no)]

    def last_trades(self, asset_no):
        a = _as_asset(asset_no)
        return self.trades[a, : self.trade_n[a, 0]]

    def clear_last_trades(self, asset_no):
        a = _as_asset(asset_no)
        if a < 0 or a >= self.cursor.shape[0]:
            self.trade_n[:, 0] = 0
        else:
            self.trade_n[a, 0] = 0

    def orders(self, asset_no):
        return self.order_dicts[_as_asset(asset_no)]

    def feed_latency(self, asset_no):
        a = _as_asset(asset_no)
        if self.latency[a, L_HAS_FEED] == 0:
            return None
        return (self.latency[a, L_FEED_EXCH], self.latency[a, L_FEED_LOCAL])

    def order_latency(self, asset_no):
        a = _as_asset(asset_no)
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
        """Errors received from connectors so far (each also went to the error_handler)."""
        return self.ctrl[C_ERRORS]

    @property
    def last_error_kind(self):
        return self.ctrl[C_LAST_ERR_KIND]

    @property
    def last_error_code(self):
        return self.ctrl[C_LAST_ERR_CODE]

    @property
    def resync_count(self):
        return self.ctrl[C_RESYNCS]

    # ----------------------------------------------------------------- orders

    def submit_buy_order(self, asset_no, order_id, price, qty, time_in_force, order_type, wait):
        return self._submit(
            _as_asset(asset_no), np.uint64(order_id), np.float64(price), np.float64(qty),
            np.int64(time_in_force), np.int64(order_type), wait, 1,
        )  # fmt: skip

    def submit_sell_order(self, asset_no, order_id, price, qty, time_in_force, order_type, wait):
        return self._submit(
            _as_asset(asset_no), np.uint64(order_id), np.float64(price), np.float64(qty),
            np.int64(time_in_force), np.int64(order_type), wait, -1,
        )  # fmt: skip

    def _submit(self, a, order_id, price, qty, tif, otype, wait, side):
        if self.ctrl[C_END] != 0:
            return self.ctrl[C_END]
        if a < 0 or a >= self.cursor.shape[0]:
            return INSTRUMENT_NOT_FOUND
        n = self.order_n[a, 0]
        tbl = self.otab[a]
        if find_order(tbl, n, order_id) >= 0:
            return ORDER_ID_EXIST
        if tif < GTC or tif > 3 or (otype != LIMIT and otype != MARKET):
            return INVALID_ORDER_REQUEST
        if not (np.isfinite(qty) and qty > 0.0) or not np.isfinite(price):
            return INVALID_ORDER_REQUEST
        if otype == LIMIT and not price > 0.0:
            return INVALID_ORDER_REQUEST
        if n >= tbl.shape[0]:
            return REQUEST_QUEUE_FULL
        tick = self.depths[a].df[0]
        o = tbl[n]
        o.qty = qty
        o.leaves_qty = qty
        o.exec_qty = 0.0
        o.exec_price_tick = 0
        o.price_tick = round_half_away(price / tick) if otype == LIMIT or price > 0 else 0
        o.tick_size = tick
        o.exch_timestamp = 0
        o.local_timestamp = wall_ns(self.ts)
        o.order_id = order_id
        o._q1 = 0
        o._q2 = 0
        o.maker = False
        o.order_type = otype
        o.req = NEW
        o.status = NONE
        o.side = side
        o.time_in_force = tif
        if not self._push(a, REQ_SUBMIT, n):
            return REQUEST_QUEUE_FULL  # the order was not added: n is unchanged
        self.order_n[a, 0] = n + 1
        if wait:
            return self._wait(MODE_ORDER, MAX_DEADLINE_NS, False, a, order_id)
        return 0

    def cancel(self, asset_no, order_id, wait):
        a = _as_asset(asset_no)
        oid = np.uint64(order_id)
        if self.ctrl[C_END] != 0:
            return self.ctrl[C_END]
        if a < 0 or a >= self.cursor.shape[0]:
            return INSTRUMENT_NOT_FOUND
        i = find_order(self.otab[a], self.order_n[a, 0], oid)
        if i < 0:
            return ORDER_NOT_FOUND
        o = self.otab[a, i]
        if o.req != NONE:
            return ORDER_REQUEST_IN_PROCESS
        o.req = CANCELED
        prev_ts = o.local_timestamp
        o.local_timestamp = wall_ns(self.ts)
        if not self._push(a, REQ_CANCEL, i):
            o.req = NONE
            o.local_timestamp = prev_ts
            return REQUEST_QUEUE_FULL
        if wait:
            return self._wait(MODE_ORDER, MAX_DEADLINE_NS, False, a, oid)
        return 0

    def modify(self, asset_no, order_id, price, qty, wait):
        a = _as_asset(asset_no)
        oid = np.uint64(order_id)
        px = np.float64(price)
        q = np.float64(qty)
        if self.ctrl[C_END] != 0:
            return self.ctrl[C_END]
        if a < 0 or a >= self.cursor.shape[0]:
            return INSTRUMENT_NOT_FOUND
        i = find_order(self.otab[a], self.order_n[a, 0], oid)
        if i < 0:
            return ORDER_NOT_FOUND
        o = self.otab[a, i]
        if o.req != NONE:
            return ORDER_REQUEST_IN_PROCESS
        if not (np.isfinite(px) and px > 0.0 and np.isfinite(q) and q > 0.0):
            return INVALID_ORDER_REQUEST
        old_tick = o.price_tick
        old_qty = o.qty
        old_ts = o.local_timestamp
        # As the backtester does: the new price and qty are written locally at once; the
        # connector's response (accepted or rejected) then carries the venue's truth.
        o.price_tick = round_half_away(px / o.tick_size)
        o.qty = q
        o.req = REPLACED
        o.local_timestamp = wall_ns(self.ts)
        if not self._push(a, REQ_MODIFY, i):
            o.price_tick = old_tick
            o.qty = old_qty
            o.req = NONE
            o.local_timestamp = old_ts
            return REQUEST_QUEUE_FULL
        if wait:
            return self._wait(MODE_ORDER, MAX_DEADLINE_NS, False, a, oid)
        return 0

    def clear_inactive_orders(self, asset_no):
        a = _as_asset(asset_no)
        if a < 0 or a >= self.cursor.shape[0]:
            for k in range(self.cursor.shape[0]):
                self._clear(k)
        else:
            self._clear(a)

    def _clear(self, a):
        # The backtester removes EXPIRED, FILLED and CANCELED orders; order is preserved.
        tbl = self.otab[a]
        n = self.order_n[a, 0]
        k = 0
        for i in range(n):
            if not is_final(tbl[i].status):
                if k != i:
                    tbl[k] = tbl[i]
                k += 1
        self.order_n[a, 0] = k

    def _push(self, a, kind, i):
        c = self.asset_conn[a]
        hdr = self.req_hdr[c]
        ring = self.req[c]
        cap = ring.shape[0]
        ws = hdr[SPSC_WRITE]
        if ws - atomic_load(hdr, SPSC_READ) >= cap:
            return False
        r = ring[ws & (cap - 1)]
        r.kind = kind
        r.inst = self.asset_inst[a]
        r.ts = self.otab[a, i].local_timestamp
        r.order = self.otab[a, i]
        atomic_store(hdr, SPSC_WRITE, ws + 1)
        ring_doorbell(self.bell_fd[c], self.bell)
        return True

    # ----------------------------------------------------------------- waiting

    def elapse(self, duration):
        return self._wait(MODE_ELAPSE, np.int64(duration), False, -1, np.uint64(0))

    def elapse_bt(self, duration):
        return 0  # live: a no-op, as in hftbacktest's live bot

    def wait_next_feed(self, include_order_resp, timeout):
        return self._wait(MODE_FEED, np.int64(timeout), include_order_resp, -1, np.uint64(0))

    def wait_order_response(self, asset_no, order_id, timeout):
        a = _as_asset(asset_no)
        if a < 0 or a >= self.cursor.shape[0]:
            return INSTRUMENT_NOT_FOUND
        return self._wait(MODE_ORDER, np.int64(timeout), False, a, np.uint64(order_id))

    def close(self):
        if self.ctrl[C_CLOSED] == 0:
            self.ctrl[C_CLOSED] = 1
            _close_dispatch(self.key)  # frees the bot's slots and its view segment
        return 0

    def _ended(self):
        if atomic_load(self.sig, 0) != 0 or self.ctrl[C_CLOSED] != 0:
            return END_OF_DATA
        return self.ctrl[C_END]

    def _wait(self, mode, duration, include_resp, wait_asset, wait_id):
        end = self._ended()
        if end != 0:
            return end
        t0 = rdtsc()
        tpn = self.tsc[0]
        if duration < 0:
            duration = 0
        if duration > MAX_DEADLINE_NS:
            duration = MAX_DEADLINE_NS
        deadline = t0 + np.int64(duration * tpn)
        self.ctrl[C_WAIT_ASSET] = wait_asset
        self.ctrl[C_WAIT_ID] = np.int64(wait_id)
        self.ctrl[C_FOUND] = 0
        policy = self.ctrl[C_POLICY]
        idle = 0
        while True:
            flags = self._poll()
            if self.ctrl[C_CB_N] > 0:
                if self.ctrl[C_HAS_CB] != 0:
                    rc = _dispatch(self.key)
                    if rc != 0:
                        return rc
                else:
                    self.ctrl[C_CB_N] = 0
            now = rdtsc()
            if now >= np.int64(self.tsc[1]):
                self._housekeep(now)
            end = self._ended()
            if end != 0:
                return end
            if mode == MODE_FEED:
                if flags & 1:
                    return MARKET_FEED
                if include_resp and flags & 2:
                    return ORDER_RESPONSE
            elif mode == MODE_ORDER and self.ctrl[C_FOUND] != 0:
                return 0
            if now >= deadline:
                return 0
            if flags == 0:
                idle += 1
                if idle > IDLE_SPINS:
                    if policy == WAIT_SLEEP:
                        left = np.int64((deadline - now) / tpn)
                        sleep_ns(self.ts, min(left, SLEEP_SLICE_NS))
                    elif policy == WAIT_YIELD:
                        yield_cpu()
            else:
                idle = 0

    def _housekeep(self, now_tsc):
        self.tsc[1] = now_tsc + HOUSEKEEP_NS * self.tsc[0]
        now = wall_ns(self.ts)
        self.view_hdr[S_HEARTBEAT] = now
        for c in range(self.conn_pid.shape[0]):
            slot = self.slot[c]
            slot[S_HEARTBEAT] = now
            ctl = self.ctl[c]
            if atomic_load(ctl, W_STATE) >= CONN_STOPPING:
                if self.ctrl[C_END] == 0:
                    self.ctrl[C_END] = END_OF_DATA
            elif (
                ctl[W_EPOCH] != self.conn_epoch[c]
                or not pid_alive(self.conn_pid[c])
                or now - atomic_load(ctl, W_HEARTBEAT) > HEARTBEAT_STALE_NS
                or np.uint64(slot[S_BOT_ID]) != self.bot_id
            ):
                self.ctrl[C_END] = CONNECTOR_LOST

    def _poll(self):
        flags = 0
        for a in range(self.cursor.shape[0]):
            flags |= self._poll_md(a)
        for c in range(self.conn_pid.shape[0]):
            flags |= self._poll_resp(c)
        return flags

    def _poll_md(self, a):
        hdr = self.md_hdr[a]
        ws = atomic_load(hdr, MD_WRITE_SEQ)
        cur = self.cursor[a]
        if ws == cur:
            return 0
        ring = self.md_ring[a]
        cap = ring.shape[0]
        if ws - cur > cap:
            self._resync(a, True)
            return 1
        scratch = self.scratch
        sc = scratch.shape[0]
        while cur < ws:
            k = min(ws - cur, sc)
            for j in range(k):
                scratch[j] = ring[(cur + j) & (cap - 1)]
            fence_acquire()
            if cur < atomic_load(hdr, MD_WRITING_END) - cap:
                # the writer lapped us while we copied: the copy may be torn
                self._resync(a, True)
                return 1
            for j in range(k):
                self._apply_event(a, scratch[j])
            cur += k
        self.cursor[a] = cur
        return 1

    def _apply_event(self, a, e):
        ev = e.ev
        d = self.depths[a]
        if not apply_depth_event(d.di, d.df, d.bk, d.bv, d.ak, d.av, ev, e.px, e.qty, e.exch_ts):
            if (ev & 0xFF) == TRADE_EVENT and (ev & LOCAL_EVENT) and (ev & (BUY_EVENT | SELL_EVENT)):
                n = self.trade_n[a, 0]
                if n < self.trades.shape[1] and self.trade_n[a, 1] > 0:
                    self.trades[a, n] = e
                    self.trade_n[a, 0] = n + 1
        self.latency[a, L_FEED_EXCH] = e.exch_ts
        self.latency[a, L_FEED_LOCAL] = e.local_ts
        self.latency[a, L_HAS_FEED] = 1

    def _resync(self, a, report):
        """Rebuild asset a's depth from the connector's snapshot (seqlock-protected)."""
        hdr = self.md_hdr[a]
        snap = self.md_snap[a]
        out = self.snap_scratch
        while True:
            l1 = atomic_load(hdr, MD_SNAP_LOCK)
            if l1 & 1:
                continue
            n = min(hdr[MD_SNAP_N], out.shape[0])
            seq = hdr[MD_SNAP_SEQ]
            for j in range(n):
                out[j] = snap[j]
            fence_acquire()
            if atomic_load(hdr, MD_SNAP_LOCK) == l1:
                break
        d = self.depths[a]
        depth_clear(d.di, d.bk, d.bv, d.ak, d.av)
        for j in range(n):
            e = out[j]
            apply_depth_event(d.di, d.df, d.bk, d.bv, d.ak, d.av, e.ev, e.px, e.qty, e.exch_ts)
        self.cursor[a] = seq
        if report:
            self.ctrl[C_RESYNCS] += 1
            self._push_error(a, ERR_BOOK_RESYNC, 0)

    def _push_error(self, a, kind, code):
        self.ctrl[C_ERRORS] += 1
        self.ctrl[C_LAST_ERR_KIND] = kind
        self.ctrl[C_LAST_ERR_CODE] = code
        n = self.ctrl[C_CB_N]
        if self.ctrl[C_HAS_CB] != 0 and n < self.cbq.shape[0]:
            r = self.cbq[n]
            r.kind = RESP_ERROR
            r.err_kind = kind
            r.inst = a  # local asset number
            r.code = code
            r.ts = 0
            self.ctrl[C_CB_N] = n + 1

    def _poll_resp(self, c):
        hdr = self.resp_hdr[c]
        ws = atomic_load(hdr, SPSC_WRITE)
        rs = hdr[SPSC_READ]
        if ws == rs:
            return 0
        ring = self.resp[c]
        cap = ring.shape[0]
        flags = 0
        while rs < ws:
            flags |= self._apply_resp(c, ring[rs & (cap - 1)])
            rs += 1
        atomic_store(hdr, SPSC_READ, rs)
        return flags

    def _apply_resp(self, c, r):
        kind = r.kind
        if kind == RESP_READY:
            self.ctrl[C_READY] += 1
            return 0
        if kind == RESP_ERROR:
            a = self.inst_asset[c, r.inst] if r.inst >= 0 else -1
            self.ctrl[C_ERRORS] += 1
            self.ctrl[C_LAST_ERR_KIND] = r.err_kind
            self.ctrl[C_LAST_ERR_CODE] = r.code
            if r.err_kind == ERR_CONNECTOR and self.ctrl[C_END] == 0:
                self.ctrl[C_END] = END_OF_DATA
            n = self.ctrl[C_CB_N]
            if self.ctrl[C_HAS_CB] != 0 and n < self.cbq.shape[0]:
                self.cbq[n] = r
                self.cbq[n].inst = a
                self.ctrl[C_CB_N] = n + 1
            return 4
        a = self.inst_asset[c, r.inst]
        if a < 0:
            return 0
        self.state[a] = r.state
        if kind == RESP_STATE:
            return 0
        o = r.order
        tbl = self.otab[a]
        n = self.order_n[a, 0]
        i = find_order(tbl, n, o.order_id)
        cb_n = self.ctrl[C_CB_N]
        has_cb = self.ctrl[C_HAS_CB] != 0 and cb_n < self.cbq.shape[0]
        if i < 0:
            if n >= tbl.shape[0]:
                return 2
            # unknown ids are inserted: how a restarted bot gets its open orders back
            tbl[n] = o
            self.order_n[a, 0] = n + 1
            i = n
            if has_cb:
                self.cbq_prev[cb_n] = o
                self.cbq_prev[cb_n].status = NONE
        else:
            old = tbl[i]
            if has_cb:
                self.cbq_prev[cb_n] = old
            if not is_final(old.status) and o.exch_timestamp >= old.exch_timestamp:
                lt = old.local_timestamp
                tbl[i] = o
                tbl[i].local_timestamp = lt
        if o.exch_timestamp > 0:
            self.latency[a, L_ORDER_REQ] = tbl[i].local_timestamp
            self.latency[a, L_ORDER_EXCH] = o.exch_timestamp
            self.latency[a, L_ORDER_RESP] = wall_ns(self.ts)
            self.latency[a, L_HAS_ORDER] = 1
        if has_cb:
            self.cbq[cb_n] = r
            self.cbq[cb_n].inst = a
            self.ctrl[C_CB_N] = cb_n + 1
        if a == self.ctrl[C_WAIT_ASSET] and np.int64(o.order_id) == self.ctrl[C_WAIT_ID]:
            self.ctrl[C_FOUND] = 1
        return 2

    def _startup(self, timeout_ns):
        """Sync every book from its snapshot, then apply the connectors' replay (orders,
        state values) until each connector said READY. Returns 0, or an error code."""
        for a in range(self.cursor.shape[0]):
            self._resync(a, False)
        t_end = wall_ns(self.ts) + timeout_ns
        while self.ctrl[C_READY] < self.conn_pid.shape[0]:
            self._poll()
            if wall_ns(self.ts) > t_end:
                return CONNECTOR_LOST
        self.tsc[1] = 0.0
        return 0


_CLASSES: dict[tuple[int, int], type] = {}


def _tuple_of(t, n):
    return types.UniTuple(t, n)


def make_livebot_class(n_assets: int, n_conns: int):
    """The LiveBot jitclass for this many assets and connectors (cached)."""
    key = (n_assets, n_conns)
    if key in _CLASSES:
        return _CLASSES[key]
    i8 = nb.int64
    spec = [
        ("depths", _tuple_of(HashMapMarketDepth.class_type.instance_type, n_assets)),
        ("order_dicts", _tuple_of(OrderDict.class_type.instance_type, n_assets)),
        ("states", _tuple_of(StateValues.class_type.instance_type, n_assets)),
        ("otab", order_nb[:, :]),
        ("order_n", i8[:, :]),
        ("state", state_nb[:]),
        ("trades", event_nb[:, :]),
        ("trade_n", i8[:, :]),
        ("latency", i8[:, :]),
        ("md_hdr", _tuple_of(i8[:], n_assets)),
        ("md_ring", _tuple_of(event_nb[:], n_assets)),
        ("md_snap", _tuple_of(event_nb[:], n_assets)),
        ("cursor", i8[:]),
        ("asset_conn", i8[:]),
        ("asset_inst", i8[:]),
        ("inst_asset", i8[:, :]),
        ("ctl", _tuple_of(i8[:], n_conns)),
        ("slot", _tuple_of(i8[:], n_conns)),
        ("req_hdr", _tuple_of(i8[:], n_conns)),
        ("req", _tuple_of(req_nb[:], n_conns)),
        ("resp_hdr", _tuple_of(i8[:], n_conns)),
        ("resp", _tuple_of(resp_nb[:], n_conns)),
        ("conn_pid", i8[:]),
        ("conn_epoch", i8[:]),
        ("bell_fd", i8[:]),
        ("ctrl", i8[:]),
        ("sig", i8[:]),
        ("tsc", nb.float64[:]),
        ("ts", i8[:]),
        ("scratch", event_nb[:]),
        ("snap_scratch", event_nb[:]),
        ("cbq", resp_nb[:]),
        ("cbq_prev", order_nb[:]),
        ("bell", nb.uint8[:]),
        ("view_hdr", i8[:]),
        ("bot_id", nb.uint64),
        ("key", i8),
    ]
    cls = type(f"LiveBot_{n_assets}x{n_conns}", (), dict(_LiveBotBase.__dict__))
    jc = jitclass(spec)(cls)
    _CLASSES[key] = jc
    return jc
