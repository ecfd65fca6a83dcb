"""connector.hbt_exchange against hftbacktest 2.4.4 itself, on the real capture.

The capture is converted with hftbacktest's own converter; the same event array drives an
hftbacktest ``HashMapMarketDepthBacktest`` and our engine, and the same scripted orders
(joins and improves at the touch, crossing GTC and GTX, cancels, modifies of price and of
qty) go to both at the same local timestamps. What the local side sees is compared
response by response: for every order and every local timestamp at which its local copy
changes, the status, req, price, qty, leaves, exec qty, exec price, maker flag and
exchange timestamp; then the position, balance and fee, and the request return codes.

Under NoPartialFill the agreement is exact. Under PartialFill the response streams agree
exactly too; the local position is compared the way hftbacktest's local side computes it
(it applies only responses with status FILLED, and only their last piece), which
:func:`test_partial_fill_local_state_counts_only_filled_responses` pins against the
engine's own exchange-side account, which counts every piece.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from numba import njit

from connector.hbt_exchange import (
    ConstantLatency,
    HashMapDepth,
    HbtExchange,
    HbtOrder,
    IntpOrderLatency,
    TradingValueFeeModel,
    queue_model,
)
from hftlive.constants import (
    BUY,
    CANCELED,
    EXCH_EVENT,
    EXPIRED,
    FILLED,
    GTC,
    GTX,
    LIMIT,
    LOCAL_EVENT,
    NEW,
    NONE,
    REJECTED,
    REPLACED,
    SELL,
)

from .conftest import CAPTURE

TICK, LOT = 0.01, 0.001
WINDOW_NS = 90_000_000_000  # the slice of the capture used (90 s of events)
STEP_NS = 200_000_000  # one scripted action every 200 ms
CANCEL_SHARE = 0.62  # the script: a share of 0.55 submits, then cancels up to this, then modifies
MAKER_FEE, TAKER_FEE = -0.00005, 0.0007

# script action kinds
SUBMIT_BUY, SUBMIT_SELL, CANCEL, MODIFY = 0, 1, 2, 3


@pytest.fixture(scope="module")
def events():
    from hftbacktest.data.utils import binancefutures

    data = binancefutures.convert(str(CAPTURE), buffer_size=1_000_000)
    t0 = int(data["local_ts"][0])
    return np.ascontiguousarray(data[data["local_ts"] < t0 + WINDOW_NS + 5_000_000_000])


def make_script(events, qty: float, seed: int = 7):
    """A fixed order sequence (ts, kind, order_id, price, qty, tif), built from the local
    book (LOCAL events, as the strategy would see it) so prices sit at or near the touch."""
    rng = np.random.default_rng(seed)
    local = events[(events["ev"] & LOCAL_EVENT) != 0]
    local = local[np.argsort(local["local_ts"], kind="stable")]
    depth = HashMapDepth(TICK, LOT)
    t0 = int(local["local_ts"][0])
    ts = t0 + 10_000_000_000
    end = t0 + WINDOW_NS
    rows, live, oid, i = [], [], 1, 0
    while ts < end:
        while i < len(local) and local["local_ts"][i] <= ts:
            e = local[i]
            _apply_local(depth, int(e["ev"]), float(e["px"]), float(e["qty"]))
            i += 1
        bid, ask = depth.best_bid_tick, depth.best_ask_tick
        r = rng.random()
        if r < 0.55 or not live:
            side = BUY if rng.random() < 0.5 else SELL
            roll = rng.random()
            if roll < 0.1:
                tick, tif = (ask, GTC) if side == BUY else (bid, GTC)  # takes
            elif roll < 0.2:
                tick, tif = (ask, GTX) if side == BUY else (bid, GTX)  # post-only crossing
            else:
                off = int(rng.integers(0, 3))
                tick = bid - off if side == BUY else ask + off
                tif = GTX if rng.random() < 0.5 else GTC
            kind = SUBMIT_BUY if side == BUY else SUBMIT_SELL
            rows.append((ts, kind, oid, tick * TICK, qty * int(rng.integers(1, 4)), tif))
            live.append((oid, side))
            oid += 1
        elif r < CANCEL_SHARE:
            target, _ = live.pop(int(rng.integers(0, len(live))))
            rows.append((ts, CANCEL, target, 0.0, 0.0, 0))
        else:
            target, side = live[int(rng.integers(0, len(live)))]
            if rng.random() < 0.5:  # re-price at the touch
                tick = bid if side == BUY else ask
                rows.append((ts, MODIFY, target, tick * TICK, qty, 0))
            else:  # qty down in place (the local copy's price is kept by the harness)
                rows.append((ts, MODIFY, target, -1.0, qty, 0))
        ts += STEP_NS
    dt = np.dtype([("ts", "i8"), ("kind", "i8"), ("oid", "i8"), ("px", "f8"), ("qty", "f8"),
                   ("tif", "i8")])  # fmt: skip
    return np.array(rows, dt), end


def _apply_local(depth: HashMapDepth, ev: int, px: float, qty: float) -> None:
    kind = ev & 0xFF
    if kind in (1, 4):
        (depth.update_bid if ev & (1 << 29) else depth.update_ask)(px, qty)
    elif kind == 3:
        side = BUY if ev & (1 << 29) else SELL if ev & (1 << 28) else 0
        depth.clear(side, px)


def latency_rows(events):
    """Order latency data in hftbacktest's OrderLatencyRow layout: a row every 250 ms with
    entry and response latencies between 1 and 40 ms, and a few technical rejections
    (exch_ts = 0)."""
    rng = np.random.default_rng(3)
    t0 = int(events["local_ts"][0])
    dt = np.dtype([("req_ts", "i8"), ("exch_ts", "i8"), ("resp_ts", "i8"), ("_padding", "i8")])
    n = int((WINDOW_NS + 10_000_000_000) // 250_000_000)
    rows = np.zeros(n, dt)
    rows["req_ts"] = t0 + np.arange(n) * 250_000_000
    entry = rng.integers(1_000_000, 40_000_000, n)
    resp = rng.integers(1_000_000, 40_000_000, n)
    rows["exch_ts"] = rows["req_ts"] + entry
    rows["resp_ts"] = rows["exch_ts"] + resp
    rows["exch_ts"][rng.random(n) < 0.03] = 0
    return rows


# ------------------------------------------------------------------ hftbacktest's side

REC = np.dtype([("ts", "i8"), ("oid", "i8"), ("status", "i8"), ("req", "i8"),
                ("price_tick", "i8"), ("qty", "f8"), ("leaves", "f8"), ("exec_qty", "f8"),
                ("exec_price_tick", "i8"), ("maker", "i8"), ("exch_ts", "i8")])  # fmt: skip


@njit(boundscheck=True)
def _snapshot(hbt, last, out, n, record):
    values = hbt.orders(0).values()
    while values.has_next():
        o = values.get()
        a = o.arr[0]
        oid = a.order_id
        changed = (last[oid, 0] != a.status or last[oid, 1] != a.req
                   or last[oid, 2] != a.exch_timestamp or last[oid, 3] != a.price_tick
                   or last[oid, 4] != a.leaves_qty * 1e9 or last[oid, 5] != a.qty * 1e9)  # fmt: skip
        if changed:
            last[oid, 0], last[oid, 1], last[oid, 2] = a.status, a.req, a.exch_timestamp
            last[oid, 3], last[oid, 4], last[oid, 5] = a.price_tick, a.leaves_qty * 1e9, a.qty * 1e9
            if record:
                r = out[n]
                r.ts, r.oid, r.status, r.req = hbt.current_timestamp, oid, a.status, a.req
                r.price_tick, r.qty, r.leaves, r.exec_qty = (
                    a.price_tick,
                    a.qty,
                    a.leaves_qty,
                    a.exec_qty,
                )
                r.exec_price_tick, r.maker, r.exch_ts = a.exec_price_tick, a.maker, a.exch_timestamp
                n += 1
    return n


@njit(boundscheck=True)
def _run_hbt(hbt, script, end_ts, out, codes, state):
    last = np.full((len(script) + 2, 6), -1.0)
    n = 0
    hbt.elapse(0)  # starts the clock at the first event
    for i in range(len(script) + 1):
        target = script[i].ts if i < len(script) else end_ts
        while hbt.current_timestamp < target:
            rc = hbt.wait_next_feed(True, target - hbt.current_timestamp)
            n = _snapshot(hbt, last, out, n, True)
            if rc == 1:
                break
        if i == len(script):
            break
        s = script[i]
        if s.kind == 0:
            codes[i] = hbt.submit_buy_order(0, s.oid, s.px, s.qty, s.tif, 0, False)
        elif s.kind == 1:
            codes[i] = hbt.submit_sell_order(0, s.oid, s.px, s.qty, s.tif, 0, False)
        elif s.kind == 2:
            codes[i] = hbt.cancel(0, s.oid, False)
        else:
            px = s.px
            o = hbt.orders(0).get(s.oid)
            if px < 0 and o is not None:
                px = o.price
            codes[i] = hbt.modify(0, s.oid, px, s.qty, False)
        n = _snapshot(hbt, last, out, n, False)
    sv = hbt.state_values(0)
    state[0], state[1], state[2] = sv.position, sv.balance, sv.fee
    return n


def run_hftbacktest(events, script, end_ts, exchange, queue, latency, lat_rows):
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    a = BacktestAsset().data(events).linear_asset(1.0).tick_size(TICK).lot_size(LOT)
    a = a.trading_value_fee_model(MAKER_FEE, TAKER_FEE).last_trades_capacity(0)
    a = a.no_partial_fill_exchange() if exchange == "no_partial_fill" else a.partial_fill_exchange()
    name, n = queue
    a = {
        "risk_averse": lambda: a.risk_adverse_queue_model(),
        "power_prob": lambda: a.power_prob_queue_model(n),
        "power_prob2": lambda: a.power_prob_queue_model2(n),
        "power_prob3": lambda: a.power_prob_queue_model3(n),
        "log_prob": lambda: a.log_prob_queue_model(),
        "log_prob2": lambda: a.log_prob_queue_model2(),
    }[name]()
    a = a.constant_order_latency(*latency) if latency else a.intp_order_latency(lat_rows)
    hbt = HashMapMarketDepthBacktest([a])
    out = np.zeros(20 * len(script) + 100, REC)
    codes = np.zeros(len(script), np.int64)
    state = np.zeros(3)
    n = _run_hbt(hbt, script, end_ts, out, codes, state)
    hbt.close()
    return _rows(out[:n]), codes.tolist(), state


# ------------------------------------------------------------------ our engine's side


def run_engine(events, script, end_ts, exchange, queue, latency, lat_rows):
    lat = ConstantLatency(*latency) if latency else IntpOrderLatency(lat_rows.tolist())
    ex = HbtExchange(TICK, LOT, exchange, queue_model(*queue), lat,
                     TradingValueFeeModel(MAKER_FEE, TAKER_FEE))  # fmt: skip
    local: dict[int, HbtOrder] = {}
    last: dict[int, tuple] = {}
    out: list[tuple] = []
    codes: list[int] = []
    seen: list = []  # every response, as received
    pos = [0.0, 0.0, 0.0]  # hftbacktest's local state: position, balance, fee
    exch = events[(events["ev"] & EXCH_EVENT) != 0]  # what hftbacktest's exchange sees
    ev, exch_ts, px, qty = (exch[k].tolist() for k in ("ev", "exch_ts", "px", "qty"))
    j = 0

    def upto(t: int) -> None:
        nonlocal j
        while j < len(ev) and exch_ts[j] <= t:
            ex.process(ev[j], exch_ts[j], px[j], qty[j])
            j += 1
        ex.advance(t)
        # responses landing at one local timestamp are seen together, as by the strategy
        rs = ex.responses(t)
        for k, r in enumerate(rs):
            seen.append(r)
            _local_apply(local, r.order, pos)
            if k + 1 == len(rs) or rs[k + 1].local_recv_ts != r.local_recv_ts:
                group = [x.order.order_id for x in rs if x.local_recv_ts == r.local_recv_ts]
                for oid in dict.fromkeys(group):
                    if oid in local:
                        _record(out, last, r.local_recv_ts, local[oid])

    for s in script.tolist():
        t, kind, oid, p, q, tif = s
        upto(t)
        if kind in (SUBMIT_BUY, SUBMIT_SELL):
            if oid in local:
                codes.append(10)
                continue
            side = BUY if kind == SUBMIT_BUY else SELL
            o = HbtOrder(oid, side, round(p / TICK), q, tif, LIMIT, leaves_qty=q, req=NEW,
                         local_ts=t)  # fmt: skip
            local[oid] = o
            ex.submit(o, t)
            codes.append(0)
        else:
            o = local.get(oid)
            if o is None or o.req != NONE:
                codes.append(12 if o is None else 11)
                continue
            codes.append(0)
            if kind == CANCEL:
                o.req, o.local_ts = CANCELED, t
                ex.cancel(o, t)
            else:
                tick = o.price_tick if p < 0 else round(p / TICK)
                o.price_tick, o.qty, o.req, o.local_ts = tick, q, REPLACED, t
                ex.modify(dataclasses.replace(o), tick, q, t)
        _record(out, last, None, local[oid])  # a request changes the copy: not a response
    upto(end_ts)
    return sorted(out), codes, np.array(pos), ex, seen


def _local_apply(local: dict[int, HbtOrder], resp: HbtOrder, state: list[float]) -> None:
    """hftbacktest 2.4.4's Local::process_recv_order: fills counted only when FILLED."""
    if resp.status == FILLED:
        value = resp.exec_price_tick * TICK * resp.exec_qty
        state[0] += resp.exec_qty * resp.side
        state[1] -= value * resp.side
        state[2] += (MAKER_FEE if resp.maker else TAKER_FEE) * value
    o = local.get(resp.order_id)
    if o is None:
        if resp.req != REJECTED:
            local[resp.order_id] = dataclasses.replace(resp)
        return
    if resp.req == REJECTED:
        if resp.local_ts == o.local_ts:
            if o.req == NEW:
                o.req, o.status = NONE, EXPIRED
            else:
                o.req = NONE
        return
    keep_local_ts, keep_exch = o.local_ts, o.exch_ts
    for f in dataclasses.fields(HbtOrder):
        setattr(o, f.name, getattr(resp, f.name))
    o.local_ts = keep_local_ts
    o.exch_ts = resp.exch_ts if resp.exch_ts > 0 else keep_exch


def _record(out: list, last: dict, ts: int | None, o: HbtOrder) -> None:
    key = (o.status, o.req, o.exch_ts, o.price_tick, round(o.leaves_qty * 1e9), round(o.qty * 1e9))
    if last.get(o.order_id) == key:
        return
    last[o.order_id] = key
    if ts is not None:
        out.append((ts, o.order_id, o.status, o.req, o.price_tick, round(o.qty, 9),
                    round(o.leaves_qty, 9), round(o.exec_qty, 9), o.exec_price_tick,
                    int(o.maker), o.exch_ts))  # fmt: skip


def _rows(arr) -> list[tuple]:
    return sorted(
        (int(r["ts"]), int(r["oid"]), int(r["status"]), int(r["req"]), int(r["price_tick"]),
         round(float(r["qty"]), 9), round(float(r["leaves"]), 9), round(float(r["exec_qty"]), 9),
         int(r["exec_price_tick"]), int(r["maker"]), int(r["exch_ts"]))
        for r in arr
    )  # fmt: skip


# ------------------------------------------------------------------ the parity tests

CASES = [
    ("no_partial_fill", ("risk_averse", 0.0), (5_000_000, 5_000_000), 0.01),
    ("no_partial_fill", ("power_prob", 3.0), (5_000_000, 5_000_000), 0.01),
    ("no_partial_fill", ("risk_averse", 0.0), None, 0.01),
    ("no_partial_fill", ("power_prob", 3.0), None, 0.01),
    ("partial_fill", ("risk_averse", 0.0), (2_000_000, 3_000_000), 0.2),
    ("partial_fill", ("power_prob2", 2.0), None, 0.2),
]


@pytest.mark.parametrize("exchange,queue,latency,qty", CASES,
                         ids=["-".join((c[0], c[1][0], "const" if c[2] else "intp")) for c in CASES])  # fmt: skip
def test_same_responses_fills_and_state_as_hftbacktest(events, exchange, queue, latency, qty):
    script, end_ts = make_script(events, qty)
    lat_rows = latency_rows(events)
    theirs, their_codes, their_state = run_hftbacktest(events, script, end_ts, exchange, queue,
                                                       latency, lat_rows)  # fmt: skip
    ours, our_codes, our_state, ex, ours_all = run_engine(events, script, end_ts, exchange, queue,
                                                latency, lat_rows)  # fmt: skip
    assert our_codes == their_codes
    fills = [r for r in theirs if r[2] == FILLED or r[2] == 5]
    assert len(fills) > 20, "the script should fill orders both as maker and as taker"
    assert {r[9] for r in fills} == {0, 1}
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a == b, f"response {i} of {len(theirs)} differs: ours {a}, hftbacktest {b}"
    assert len(ours) == len(theirs)
    assert our_state == pytest.approx(their_state, rel=1e-9, abs=1e-9)
    # The engine's own account counts every fill once, also those whose response is still
    # on its way at the end. hftbacktest's local side (mirrored above) counts a fill again
    # when a cancel or modify of an order that had already filled is rejected: the
    # rejection carries the local copy, status FILLED, and Local::process_recv_order applies
    # any FILLED response. Counted once and landed, the local view is the account.
    if exchange == "no_partial_fill":
        once = [0.0, 0.0, 0.0]
        for r in ours_all + ex.responses():
            if r.order.req != REJECTED:
                _local_apply({}, r.order, once)
        sv = ex.state
        assert [sv.position, sv.balance, sv.fee] == pytest.approx(once, rel=1e-9, abs=1e-9)
    if latency is None:  # the latency data's technical rejections reached the local side
        assert any(r[2] == EXPIRED and r[3] == NONE and r[10] == 0 for r in theirs)
    assert any(r[2] == CANCELED for r in theirs) and any(r[2] == NEW for r in theirs)


def test_the_queue_model_setting_changes_the_fills(events):
    """On this script the probabilistic queue fills orders differently (earlier, or ones
    the risk-averse queue never fills): the parity above is not two models that happen to
    behave alike."""
    script, end_ts = make_script(events, 0.01)
    lat = (5_000_000, 5_000_000)
    averse = run_engine(events, script, end_ts, "no_partial_fill", ("risk_averse", 0.0), lat, None)
    prob = run_engine(events, script, end_ts, "no_partial_fill", ("power_prob", 3.0), lat, None)
    fills = [{r for r in rows if r[2] == FILLED} for rows in (averse[0], prob[0])]
    assert fills[0] != fills[1]
    assert averse[2][0] != prob[2][0]  # and so the position differs


# ------------------------------------------------------------------ pinned details

EX_BID = EXCH_EVENT | LOCAL_EVENT | (1 << 29) | 1
EX_ASK = EXCH_EVENT | LOCAL_EVENT | (1 << 28) | 1
SELL_TRADE = EXCH_EVENT | LOCAL_EVENT | (1 << 28) | 2


def test_partial_fill_order_filled_to_exactly_zero_is_removed_where_hftbacktest_errors():
    """The one deliberate difference: in 2.4.4's PartialFillExchange an order that a trade
    at its price fills exactly to zero leaves stays in the exchange's book as FILLED, and the
    next trade that reaches it fails the whole backtest (elapse returns 14,
    INVALID_ORDER_STATUS). The engine removes it and goes on."""
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest
    from hftbacktest.types import event_dtype

    rows = [(EX_BID, 1000, 1001, 100.0, 1.0, 0, 0, 0.0), (EX_ASK, 1000, 1001, 101.0, 1.0, 0, 0, 0.0),
            (SELL_TRADE, 5000, 5001, 100.0, 1.5, 0, 0, 0.0),  # front 1.0 - 1.5: fills 0.5
            (SELL_TRADE, 6000, 6001, 100.0, 0.1, 0, 0, 0.0),  # reaches the filled order
            (EX_BID, 9000, 9001, 99.0, 1.0, 0, 0, 0.0)]  # fmt: skip
    data = np.array(rows, event_dtype)
    a = (BacktestAsset().data(data).linear_asset(1.0).tick_size(1.0).lot_size(0.1)
         .constant_order_latency(0, 0).risk_adverse_queue_model().partial_fill_exchange()
         .trading_value_fee_model(0.0, 0.0))  # fmt: skip
    hbt = HashMapMarketDepthBacktest([a])
    assert hbt.elapse(1500) == 0 and hbt.current_timestamp == 2500  # from the first event
    assert hbt.submit_buy_order(0, 1, 100.0, 0.5, GTC, LIMIT, False) == 0
    assert hbt.elapse(3000) == 0 and hbt.orders(0).get(1).status == FILLED
    assert hbt.elapse(2000) == 14  # hftbacktest: InvalidOrderStatus, the run is over
    hbt.close()

    ex = HbtExchange(1.0, 0.1, "partial_fill")
    for e in rows[:2]:
        ex.process(e[0], e[1], e[3], e[4])
    ex.submit(HbtOrder(1, BUY, 100, 0.5), 2500)
    for e in rows[2:]:
        ex.process(e[0], e[1], e[3], e[4])
    got = [(r.order.status, r.order.leaves_qty, r.fills) for r in ex.responses()]
    assert got == [(NEW, 0.5, ()), (FILLED, 0.0, ((100, 0.5, True),))]
    assert ex.orders == {} and ex.state.position == 0.5


def test_prob_queue_follows_rusts_float_rules():
    """An order alone at an emptied level: front = back = 0 makes PowerProbQueueFunc's prob
    0/0 = NaN, and Rust's f64::min ignores a NaN, so the front becomes the new qty."""
    from connector.hbt_exchange import ProbQueueModel, power_prob

    m = ProbQueueModel(power_prob(3.0))
    o = HbtOrder(1, BUY, 100, 1.0, q=[0.0, 0.0])
    m.depth(o, 0.0, 2.0)  # grew: what joined is behind
    assert o.q == [0.0, 0.0]
    o.q = [0.0, 0.0]
    m.depth(o, 0.0, 0.0)  # no change, prob NaN
    assert o.q[0] == 0.0
    o.q = [3.0, 0.0]
    m.depth(o, 4.0, 2.0)  # front 3, back 1, chg 2: prob = 1 / (1 + 27)
    p = 1 / 28
    assert o.q[0] == pytest.approx(min(3.0 - (1 - p) * 2.0 + min(1.0 - p * 2.0, 0.0), 2.0))


def test_interpolated_latency_and_the_order_bus():
    """IntpOrderLatency interpolates entry on req_ts and response on exch_ts, holds the ends,
    and turns a row with exch_ts <= 0 into a technical rejection; the bus never lets a
    request overtake an earlier one."""
    rows = [(1000, 1100, 1300), (2000, 2300, 2400), (3000, 0, 3500), (4000, 4010, 4020)]
    lat = IntpOrderLatency(rows)
    assert lat.entry(500) == 100  # before the first row: the first row's
    assert lat.entry(1500) == 200  # halfway between 100 and 300
    assert lat.entry(2500) == -450  # next to a rejected row: -(round trip), interpolated
    assert lat.entry(9000) == 10  # after the last row: the last row's
    assert IntpOrderLatency(rows).response(1700) == 150  # between 200 (at 1100) and 100
    ex = HbtExchange(1.0, 1.0, latency=IntpOrderLatency(rows))
    ex.process(EX_BID, 0, 100.0, 5.0)
    ex.process(EX_ASK, 0, 101.0, 5.0)
    ex.submit(HbtOrder(1, BUY, 99, 1.0), 1999)  # arrives at 1999 + 299
    ex.submit(HbtOrder(2, BUY, 98, 1.0), 2100)  # technically rejected, heard at 2100 + 410
    ex.submit(HbtOrder(3, BUY, 97, 1.0), 2150)  # rejected too
    assert ex.next_arrival_ts() == 2298
    ex.advance(10_000)
    got = {r.order.order_id: (r.local_recv_ts, r.order.req, r.order.status) for r in ex.responses()}
    assert got[2] == (2510, REJECTED, NONE) and got[1][2] == NEW
    const = HbtExchange(1.0, 1.0, latency=ConstantLatency(50, 5))
    const.submit(HbtOrder(1, BUY, 99, 1.0), 100)
    const.latency = ConstantLatency(10, 5)  # a later request with a shorter latency
    const.submit(HbtOrder(2, BUY, 98, 1.0), 110)
    assert list(const._to_exch.items)[1][0] == 150  # waits behind the first (OrderBus)
