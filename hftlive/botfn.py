"""The LiveBot's work, as @njit(cache=True) functions over arrays.

numba cannot cache jitclasses, so the LiveBot jitclass (hftlive.botcore) is a thin facade:
its hot path (is anything new? is the deadline reached?) is a few atomic loads compiled
with the strategy, and everything else happens here, compiled once and cached on disk.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from hftlive._sys import (
    atomic_load,
    atomic_store,
    fence_acquire,
    load_at,
    pid_alive,
    rdtsc,
    ring_doorbell,
    sleep_ns,
    store_at,
    wall_ns,
    yield_cpu,
)
from hftlive.constants import (
    BUY_EVENT,
    CANCELED,
    CONNECTOR_LOST,
    END_OF_DATA,
    ERR_BOOK_RESYNC,
    ERR_CONNECTOR,
    GTC,
    INVALID_ORDER_REQUEST,
    LIMIT,
    LOCAL_EVENT,
    MARKET,
    NEW,
    NONE,
    ORDER_ID_EXIST,
    ORDER_NOT_FOUND,
    ORDER_REQUEST_IN_PROCESS,
    REJECT_NONE,
    REPLACED,
    REQUEST_QUEUE_FULL,
    SELL_EVENT,
    TRADE_EVENT,
    WAIT_SLEEP,
    WAIT_YIELD,
)
from hftlive.depth import round_half_away
from hftlive.depth_roi import depth_event, depth_reset
from hftlive.layout import (
    BOT_HEARTBEAT,
    C_CB_N,
    C_CLOSED,
    C_END,
    C_ERRORS,
    C_FOUND,
    C_HAS_CB,
    C_HOUSEKEEP_TSC,
    C_LAST_ERR_CODE,
    C_LAST_ERR_KIND,
    C_LAST_ERR_REASON,
    C_LAST_TSC,
    C_POLICY,
    C_READY,
    C_RESYNCS,
    C_SEEN_TSC,
    C_SKIPS,
    C_WAIT_ASSET,
    C_WAIT_ID,
    CONN_STOPPING,
    CTL_EPOCH,
    CTL_HEARTBEAT,
    CTL_STATE,
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
    N_CAPACITY,
    N_USED,
    REQ_CANCEL,
    REQ_MODIFY,
    REQ_SUBMIT,
    RESP_ERROR,
    RESP_ORDER,
    RESP_READY,
    RESP_STATE,
    S_BOT_ID,
    S_HEARTBEAT,
    SPSC_READ,
    SPSC_WRITE,
)
from hftlive.orders import find_order, is_final

HEARTBEAT_STALE_NS = 3_000_000_000

# poll flags
F_FEED = 1
F_RESP = 2
F_ERROR = 4


# ---------------------------------------------------------------------- market data


@nb.njit(cache=True)
def md_resync(hdr, snap, cursor, a, dep, out, ctrl, cbq, report):
    """Rebuild one asset's depth `dep` (the tuple of its arrays, either kind: see
    hftlive.depth_roi.depth_event) from the connector's snapshot (seqlock-protected) and
    continue from the ring position the snapshot is consistent with."""
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
    depth_reset(dep)
    for j in range(n):
        e = out[j]
        depth_event(dep, e.ev, e.px, e.qty, e.exch_ts)
    cursor[a] = seq
    if report:
        ctrl[C_RESYNCS] += 1
        push_error(ctrl, cbq, a, ERR_BOOK_RESYNC, 0)


@nb.njit(cache=True)
def md_consume(hdr, ring, snap, cursor, a, dep, trades, trade_n, latency, scratch, snap_scratch,
               ctrl, cbq):  # fmt: skip
    """Apply every published event of one asset's ring to its depth `dep` (the tuple of its
    arrays, either kind); F_FEED if there was any. Each event is applied once, to
    whichever depth the bot has (hftlive.depth_roi.depth_event picks it at compile time).

    Events are copied out first and applied only if the writer did not lap the copy
    (writing_end check); a reader that fell behind by more than the ring resyncs."""
    ws = atomic_load(hdr, MD_WRITE_SEQ)
    cur = cursor[a]
    if ws == cur:
        return 0
    cap = ring.shape[0]
    sc = scratch.shape[0]
    resynced = False
    while cur < ws:
        if ws - cur > cap:
            lapped = True
        else:
            k = min(ws - cur, sc)
            for j in range(k):
                scratch[j] = ring[(cur + j) & (cap - 1)]
            fence_acquire()
            lapped = cur < atomic_load(hdr, MD_WRITING_END) - cap  # the copy may be torn
        if lapped:
            if resynced:  # the snapshot is older than the ring: wait for a fresher one
                return F_FEED
            # a bool, not the literal True: the specialisation hftlive.bot's start-up uses
            md_resync(hdr, snap, cursor, a, dep, snap_scratch, ctrl, cbq, np.bool_(True))
            resynced = True
            cur = cursor[a]
            ws = atomic_load(hdr, MD_WRITE_SEQ)
            continue
        for j in range(k):
            e = scratch[j]
            ev = e.ev
            if not depth_event(dep, ev, e.px, e.qty, e.exch_ts):
                if (
                    (ev & 0xFF) == TRADE_EVENT
                    and (ev & LOCAL_EVENT)
                    and (ev & (BUY_EVENT | SELL_EVENT))
                ):
                    n = trade_n[N_USED]
                    if n < trade_n[N_CAPACITY]:
                        trades[n] = e
                        trade_n[N_USED] = n + 1
            latency[L_FEED_EXCH] = e.exch_ts
            latency[L_FEED_LOCAL] = e.local_ts
            latency[L_HAS_FEED] = 1
        cur += k
    cursor[a] = cur
    return F_FEED


# ---------------------------------------------------------------------- responses


@nb.njit(cache=True)
def push_error(ctrl, cbq, a, kind, code):
    ctrl[C_ERRORS] += 1
    ctrl[C_LAST_ERR_KIND] = kind
    ctrl[C_LAST_ERR_CODE] = code
    ctrl[C_LAST_ERR_REASON] = REJECT_NONE  # the bot's own notices refuse nothing
    n = ctrl[C_CB_N]
    if ctrl[C_HAS_CB] != 0 and n < cbq.shape[0]:
        r = cbq[n]
        r.kind = RESP_ERROR
        r.err_kind = kind
        r.inst = a
        r.code = code
        r.ts = 0
        r.msg = b""
        r.reason = REJECT_NONE
        ctrl[C_CB_N] = n + 1


@nb.njit(cache=True)
def resp_consume(hdr, ring, inst_asset, state, otab, order_n, latency, ctrl, cbq, cbq_prev, ts,
                 p_clock):
    """Apply every response from one connector; returns F_RESP / F_ERROR flags."""
    ws = atomic_load(hdr, SPSC_WRITE)
    rs = hdr[SPSC_READ]
    if ws == rs:
        return 0
    cap = ring.shape[0]
    flags = 0
    while rs < ws:
        flags |= _apply_resp(ring[rs & (cap - 1)], inst_asset, state, otab, order_n, latency,
                             ctrl, cbq, cbq_prev, ts, p_clock)  # fmt: skip
        rs += 1
    atomic_store(hdr, SPSC_READ, rs)
    return flags


@nb.njit(cache=True)
def _apply_resp(r, inst_asset, state, otab, order_n, latency, ctrl, cbq, cbq_prev, ts, p_clock):
    kind = r.kind
    if kind == RESP_READY:
        ctrl[C_READY] += 1
        return 0
    if kind == RESP_ERROR:
        a = inst_asset[r.inst] if r.inst >= 0 else -1
        ctrl[C_ERRORS] += 1
        ctrl[C_LAST_ERR_KIND] = r.err_kind
        ctrl[C_LAST_ERR_CODE] = r.code
        ctrl[C_LAST_ERR_REASON] = r.reason
        if r.err_kind == ERR_CONNECTOR and ctrl[C_END] == 0:
            ctrl[C_END] = END_OF_DATA
        n = ctrl[C_CB_N]
        if ctrl[C_HAS_CB] != 0 and n < cbq.shape[0]:
            cbq[n] = r
            cbq[n].inst = a
            ctrl[C_CB_N] = n + 1
        return F_ERROR
    a = inst_asset[r.inst]
    if a < 0:
        return 0
    state[a] = r.state
    if kind == RESP_STATE or kind != RESP_ORDER:
        return 0
    o = r.order
    tbl = otab[a]
    n = order_n[a, N_USED]
    i = find_order(tbl, n, o.order_id)
    cb_n = ctrl[C_CB_N]
    has_cb = ctrl[C_HAS_CB] != 0 and cb_n < cbq.shape[0]
    if i < 0:
        if n >= tbl.shape[0]:
            return F_RESP
        # unknown ids are inserted: how a restarted bot gets its open orders back
        tbl[n] = o
        order_n[a, N_USED] = n + 1
        i = n
        if has_cb:
            cbq_prev[cb_n] = o
            cbq_prev[cb_n].status = NONE
            cbq_prev[cb_n].req = NONE
    else:
        old = tbl[i]
        if has_cb:
            cbq_prev[cb_n] = old
        # as hftbacktest: never after a final status, never older than what we hold
        if o.exch_timestamp >= old.exch_timestamp:
            if not is_final(old.status):
                lt = old.local_timestamp
                tbl[i] = o
                tbl[i].local_timestamp = lt
            elif o.req == NONE:
                # a request the order's end overtook was answered (a cancel refused as
                # the order had filled): no request in flight, as hftbacktest's local
                # side clears req on a rejection; the order stays as it ended
                tbl[i].req = NONE
    if o.exch_timestamp > 0:
        latency[a, L_ORDER_REQ] = tbl[i].local_timestamp
        latency[a, L_ORDER_EXCH] = o.exch_timestamp
        latency[a, L_ORDER_RESP] = now_ns(p_clock, ts)  # received: now, on the bot's clock
        latency[a, L_HAS_ORDER] = 1
    if has_cb:
        cbq[cb_n] = r
        cbq[cb_n].inst = a
        ctrl[C_CB_N] = cb_n + 1
    if a == ctrl[C_WAIT_ASSET] and np.int64(o.order_id) == ctrl[C_WAIT_ID]:
        ctrl[C_FOUND] = 1
    return F_RESP


# ---------------------------------------------------------------------- liveness


@nb.njit(cache=True)
def check_connector(ctl, slot, pid, epoch, bot_id, now, ctrl):
    """Publish our heartbeat; end the run if the connector stops, or fail if it is gone."""
    slot[S_HEARTBEAT] = now
    if atomic_load(ctl, CTL_STATE) >= CONN_STOPPING:
        if ctrl[C_END] == 0:
            ctrl[C_END] = END_OF_DATA
    elif (
        ctl[CTL_EPOCH] != epoch
        or not pid_alive(pid)
        or now - atomic_load(ctl, CTL_HEARTBEAT) > HEARTBEAT_STALE_NS
        or np.uint64(slot[S_BOT_ID]) != bot_id
    ):
        ctrl[C_END] = CONNECTOR_LOST


MAX_WAIT_NS = 1 << 50  # the longest wait (13 days): a deadline far from overflow
IDLE_SPINS = 200  # polls that found nothing before the wait policy yields or sleeps
SLEEP_SLICE_NS = 50_000
EV_NEWS = 1  # wait_spin's answer: a market or response ring has something new
EV_HOUSE = 2  # ... housekeeping is due
EV_END = 4  # ... the run is over (signal, close(), the connector's end)
EV_TIME = 8  # ... the deadline is reached
# A wait that returns for its time at most CADENCE_NS late gives the bot the deadline as its
# time (C_LAST_TSC, where the next elapse counts from): a loop of elapse(d) steps every d, as
# the backtest's clock does; later than that, the reading (no burst of steps to catch up).
CADENCE_NS = 100_000
# An elapse whose deadline the last clock reading already passed returns without reading the
# clock again, at most MAX_SKIPS times in a row (housekeeping is seen at the next reading).
MAX_SKIPS = 8


@nb.njit(cache=True)
def _news(p_cursor, p_md_ws, p_resp_w, p_resp_r):
    """EV_NEWS if a market ring or a response ring has something the bot has not read
    (each ring's write and read words XORed together: no branch per ring)."""
    news = 0
    for a in range(len(p_md_ws)):
        news |= load_at(p_md_ws[a]) ^ load_at(p_cursor + 8 * a)
    for c in range(len(p_resp_w)):
        news |= load_at(p_resp_w[c]) ^ load_at(p_resp_r[c])
    return EV_NEWS * (news != 0)


@nb.njit(cache=True)
def _over(p_sig, p_ctrl):
    """The run is over: a signal, close(), or the connector's end."""
    return (load_at(p_sig) != 0 or load_at(p_ctrl + 8 * C_CLOSED) != 0
            or load_at(p_ctrl + 8 * C_END) != 0)  # fmt: skip


@nb.njit(cache=True)
def _due(p_ctrl, now_tsc, clock, deadline):
    """EV_HOUSE if housekeeping is due (by the TSC), EV_TIME if the bot's clock (the wall's
    TSC or a replay's ns) reached `deadline`."""
    return (EV_HOUSE * (now_tsc >= load_at(p_ctrl + 8 * C_HOUSEKEEP_TSC))
            | EV_TIME * (clock >= deadline))  # fmt: skip


@nb.njit(cache=True)
def _events(ev, p_sig, p_ctrl, now_tsc, clock, deadline):
    """`ev` with EV_HOUSE, EV_END and EV_TIME added where they hold (_due; the run's end)."""
    return ev | _due(p_ctrl, now_tsc, clock, deadline) | EV_END * _over(p_sig, p_ctrl)


@nb.njit(cache=True)
def _idle(p_ctrl, sleep_max_ns):
    """After IDLE_SPINS empty polls: yield or sleep (at most sleep_max_ns), as the bot's
    policy says; spin otherwise."""
    policy = load_at(p_ctrl + 8 * C_POLICY)
    if policy == WAIT_SLEEP:
        sleep_ns(np.empty(2, np.int64), sleep_max_ns)
    elif policy == WAIT_YIELD:
        yield_cpu()


@nb.njit(cache=True)
def now_ns(p_clock, ts):
    """The bot's clock: the replay's (the word at p_clock, connector.lockstep), or the wall
    clock when p_clock is 0."""
    if p_clock != 0:
        return load_at(p_clock)
    return wall_ns(ts)


@nb.njit(cache=True)
def _spin_replay(p_sig, p_ctrl, p_cursor, p_md_ws, p_resp_w, p_resp_r, deadline, ls):
    """wait_spin on the replay clock (connector.lockstep). The connector publishes in
    rounds: the round counter is odd while it writes (market events, responses, then the
    clock), even when done. What the bot sees (the clock, news in its rings) is taken from
    one even round, read twice around it, so it never acts on half a round; with nothing
    to do it parks (its slot's ls_parked = the round, ls_until = its deadline), and the
    connector, once every bot is parked, starts the next round."""
    p_clock, p_gen, p_parked = ls
    idle = 0
    while True:
        g = load_at(p_gen)
        if g & 1 == 0:
            clk = load_at(p_clock)
            ev = _news(p_cursor, p_md_ws, p_resp_w, p_resp_r)
            if load_at(p_gen) == g:  # else a round began while we looked: look again
                ev = _events(ev, p_sig, p_ctrl, rdtsc(), clk, deadline)
                if ev != 0:
                    store_at(p_ctrl + 8 * C_LAST_TSC, clk)
                    return ev
                if load_at(p_parked) != g or load_at(p_parked + 8) != deadline:
                    store_at(p_parked + 8, deadline)
                    store_at(p_parked, g)  # after ls_until: the connector reads in this order
        else:
            # a round being written: nothing of it is read, but housekeeping and the
            # run's end are still seen (a connector that died in a round never ends it,
            # and only housekeeping finds it gone)
            ev = _events(0, p_sig, p_ctrl, rdtsc(), 0, 1) & (EV_HOUSE | EV_END)
            if ev != 0:
                return ev
        idle += 1
        if idle > IDLE_SPINS:
            _idle(p_ctrl, SLEEP_SLICE_NS)


@nb.njit(cache=True)
def wait_spin(p_sig, p_ctrl, p_cursor, p_md_ws, p_resp_w, p_resp_r, tpn, deadline, ls):
    """The polling half of every LiveBot wait, over raw addresses (no array, so no
    reference count): poll until a ring has news, housekeeping is due, the run ends or
    the TSC reaches `deadline`, and say which (EV_* bits). One clock read per poll; the
    reading it returns on is kept as the bot's last wait return (C_LAST_TSC). Idle, it
    spins, yields or sleeps as the bot's policy says. On a replay clock (`ls[0]` non-zero:
    connector.lockstep) the clock is the replay's and `deadline` is in its ns."""
    if ls[0] != 0:
        return _spin_replay(p_sig, p_ctrl, p_cursor, p_md_ws, p_resp_w, p_resp_r, deadline, ls)
    idle = 0
    while True:
        now = rdtsc()
        ev = _events(_news(p_cursor, p_md_ws, p_resp_w, p_resp_r), p_sig, p_ctrl, now, now,
                     deadline)  # fmt: skip
        if ev != 0:
            _returned(p_ctrl, ev, now, deadline, tpn)
            return ev
        idle += 1
        if idle > IDLE_SPINS:
            _idle(p_ctrl, min(np.int64((deadline - now) / tpn), SLEEP_SLICE_NS))


@nb.njit(cache=True)
def _returned(p_ctrl, ev, now, deadline, tpn):
    """A wait returns on its clock reading `now`: keep it (C_SEEN_TSC), and set the bot's
    time (C_LAST_TSC): the deadline when the wait returns for its time at most CADENCE_NS
    after it, else the reading."""
    late = now - deadline
    last = deadline if (ev & EV_TIME) != 0 and late <= np.int64(CADENCE_NS * tpn) else now
    store_at(p_ctrl + 8 * C_LAST_TSC, last)
    store_at(p_ctrl + 8 * C_SEEN_TSC, now)
    store_at(p_ctrl + 8 * C_SKIPS, 0)


@nb.njit(cache=True)
def wait_begin(p_sig, p_ctrl, p_cursor, p_md_ws, p_resp_w, p_resp_r, tpn, elapse, duration,
               wait_asset, wait_id, refusal, p_clock):  # fmt: skip
    """A wait's start and first poll: (EV_* bits, deadline), or (-code, 0) when the run is
    already over or the call is refused (`refusal`, a return code, non-zero). EV bits 0:
    nothing yet, or a replay's clock (`p_clock` non-zero, connector.lockstep: the deadline
    is in its ns), where the slow path's wait_spin waits.

    `elapse` counts `duration` from the bot's time at the last wait's return (C_LAST_TSC;
    see CADENCE_NS), as hftbacktest's clock advances from current_timestamp; other waits
    count from now. An elapse whose deadline the last clock reading (C_SEEN_TSC) has
    already passed is up without reading the clock again (at most MAX_SKIPS in a row).

    Small, without a loop, so that LLVM inlines it into the strategy (wait_spin, with its
    loop, is not): a wait that finds its time up and nothing new (`elapse(1)`) is then a
    few loads and compares in the strategy's own code, and at most one clock read."""
    if refusal != 0:
        return -refusal, 0
    # the run is over: one test of the three words (a signal, close(), the connector's end)
    if (load_at(p_sig) | load_at(p_ctrl + 8 * C_CLOSED) | load_at(p_ctrl + 8 * C_END)) != 0:
        end = load_at(p_ctrl + 8 * C_END)
        if load_at(p_sig) != 0 or load_at(p_ctrl + 8 * C_CLOSED) != 0 or end == 0:
            return -END_OF_DATA, 0
        return -end, 0
    duration = max(0, min(duration, MAX_WAIT_NS))
    if not elapse:
        store_at(p_ctrl + 8 * C_WAIT_ASSET, wait_asset)
        store_at(p_ctrl + 8 * C_WAIT_ID, wait_id)
        store_at(p_ctrl + 8 * C_FOUND, 0)
    if p_clock != 0:
        t0 = load_at(p_ctrl + 8 * C_LAST_TSC) if elapse else load_at(p_clock)
        return 0, t0 + duration
    if elapse:
        deadline = load_at(p_ctrl + 8 * C_LAST_TSC) + np.int64(duration * tpn)
        seen = load_at(p_ctrl + 8 * C_SEEN_TSC)
        skips = load_at(p_ctrl + 8 * C_SKIPS)
        if deadline <= seen and skips < MAX_SKIPS:
            # the last reading is past the deadline: the time is up, no need to read again
            store_at(p_ctrl + 8 * C_SKIPS, skips + 1)
            store_at(p_ctrl + 8 * C_LAST_TSC, deadline)
            return (_news(p_cursor, p_md_ws, p_resp_w, p_resp_r)
                    | _due(p_ctrl, seen, seen, deadline)), deadline
        now = rdtsc()
    else:
        now = rdtsc()
        deadline = now + np.int64(duration * tpn)
    # wait_spin's poll, once (the run's end was checked above)
    ev = _news(p_cursor, p_md_ws, p_resp_w, p_resp_r) | _due(p_ctrl, now, now, deadline)
    if ev != 0:
        _returned(p_ctrl, ev, now, deadline, tpn)
    return ev, deadline


HOUSEKEEP_NS = 50_000_000  # how often a waiting bot beats its heartbeat and checks its connectors


@nb.njit(cache=True)
def housekeep(ctrl, view_hdr, ctls, slots, pids, epochs, bot_id, ts, tpn, now_tsc):
    """Every HOUSEKEEP_NS of waiting: the bot's heartbeat, and each connector checked."""
    ctrl[C_HOUSEKEEP_TSC] = now_tsc + np.int64(HOUSEKEEP_NS * tpn)
    now = wall_ns(ts)
    view_hdr[BOT_HEARTBEAT] = now
    for c in range(pids.shape[0]):
        check_connector(ctls[c], slots[c], pids[c], epochs[c], bot_id, now, ctrl)


# ---------------------------------------------------------------------- requests


@nb.njit(cache=True)
def push_request(hdr, ring, kind, inst, order, bell_fd, bell):
    cap = ring.shape[0]
    ws = hdr[SPSC_WRITE]
    if ws - atomic_load(hdr, SPSC_READ) >= cap:
        return False
    r = ring[ws & (cap - 1)]
    r.kind = kind
    r.inst = inst
    r.ts = order.local_timestamp
    r.order = order
    atomic_store(hdr, SPSC_WRITE, ws + 1)
    ring_doorbell(bell_fd, bell)
    return True


@nb.njit(cache=True)
def submit_impl(tbl, count, tick, order_id, price, qty, tif, otype, side, now,
                hdr, ring, inst, bell_fd, bell):  # fmt: skip
    """Checks as the backtester (10 duplicate id, 13 invalid request), then queue it."""
    n = count[N_USED]
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
    o = tbl[n]
    o.qty = qty
    o.leaves_qty = qty
    o.exec_qty = 0.0
    o.exec_price_tick = 0
    o.price_tick = round_half_away(price / tick)
    o.tick_size = tick
    o.exch_timestamp = 0
    o.local_timestamp = now
    o.order_id = order_id
    o._q1 = 0
    o._q2 = 0
    o.maker = False
    o.order_type = otype
    o.req = NEW
    o.status = NONE
    o.side = side
    o.time_in_force = tif
    if not push_request(hdr, ring, REQ_SUBMIT, inst, o, bell_fd, bell):
        return REQUEST_QUEUE_FULL  # not added: the count is unchanged
    count[N_USED] = n + 1
    return 0


@nb.njit(cache=True)
def cancel_impl(tbl, count, order_id, now, hdr, ring, inst, bell_fd, bell):
    i = find_order(tbl, count[N_USED], order_id)
    if i < 0:
        return ORDER_NOT_FOUND
    o = tbl[i]
    if o.req != NONE:
        return ORDER_REQUEST_IN_PROCESS
    prev_ts = o.local_timestamp
    o.req = CANCELED
    o.local_timestamp = now
    if not push_request(hdr, ring, REQ_CANCEL, inst, o, bell_fd, bell):
        o.req = NONE
        o.local_timestamp = prev_ts
        return REQUEST_QUEUE_FULL
    return 0


@nb.njit(cache=True)
def modify_impl(tbl, count, order_id, price, qty, now, hdr, ring, inst, bell_fd, bell):
    i = find_order(tbl, count[N_USED], order_id)
    if i < 0:
        return ORDER_NOT_FOUND
    o = tbl[i]
    if o.req != NONE:
        return ORDER_REQUEST_IN_PROCESS
    if not (np.isfinite(price) and price > 0.0 and np.isfinite(qty) and qty > 0.0):
        return INVALID_ORDER_REQUEST
    old_tick = o.price_tick
    old_qty = o.qty
    old_ts = o.local_timestamp
    # As the backtester does: the new price and qty are written locally at once; the
    # connector's response (accepted or rejected) then carries the venue's truth.
    o.price_tick = round_half_away(price / o.tick_size)
    o.qty = qty
    o.req = REPLACED
    o.local_timestamp = now
    if not push_request(hdr, ring, REQ_MODIFY, inst, o, bell_fd, bell):
        o.price_tick = old_tick
        o.qty = old_qty
        o.req = NONE
        o.local_timestamp = old_ts
        return REQUEST_QUEUE_FULL
    return 0


@nb.njit(cache=True)
def clear_inactive(tbl, count):
    """The backtester removes EXPIRED, FILLED and CANCELED orders; order is preserved."""
    n = count[N_USED]
    k = 0
    for i in range(n):
        if not is_final(tbl[i].status):
            if k != i:
                tbl[k] = tbl[i]
            k += 1
    count[N_USED] = k
