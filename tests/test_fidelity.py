"""hftlive.fidelity: one strategy on one capture window, in hftbacktest's backtest and on
the lockstep replay (a real sim connector process, a real LiveBot), compared step by step."""

import gzip
import json

import numpy as np
import pytest
from numba import njit

from hftlive import fidelity
from hftlive.fidelity import FidelityError, Job, Settings

from .conftest import CAPTURE

GTX = 1
LIMIT = 0


@njit(boundscheck=True)
def quoter(hbt, recorder, away_ticks, every, lifecycle):
    """Every `every` steps of 100 ms: cancels its quotes, then quotes one buy and one sell
    `away_ticks` from the touch (so the market seldom reaches them); records every step.
    With `lifecycle` set, every other round moves the quotes with `modify` instead, and
    each round waits for the buy's response (`wait_order_response`)."""
    oid = 1
    k = 0
    while hbt.elapse(100_000_000) == 0:
        hbt.clear_inactive_orders(0)
        d = hbt.depth(0)
        if k % every == 0 and np.isfinite(d.best_bid) and np.isfinite(d.best_ask):
            bid = (d.best_bid_tick - away_ticks) * d.tick_size
            ask = (d.best_ask_tick + away_ticks) * d.tick_size
            modified = False
            v = hbt.orders(0).values()
            while v.has_next():
                o = v.get()
                if o.cancellable:
                    if lifecycle and (k // every) % 2 == 1:
                        hbt.modify(0, o.order_id, bid if o.side == 1 else ask, o.qty, False)
                        modified = True
                    else:
                        hbt.cancel(0, o.order_id, False)
            if not modified:
                hbt.submit_buy_order(0, oid, bid, 0.01, GTX, LIMIT, False)
                hbt.submit_sell_order(0, oid + 1, ask, 0.01, GTX, LIMIT, False)
                if lifecycle:
                    hbt.wait_order_response(0, oid, 1_000_000_000)
                oid += 2
        recorder.record(hbt)
        k += 1
    return True


QUOTER = "tests.test_fidelity:quoter"


@njit(boundscheck=True)
def silent(hbt, recorder):
    """Never records a step."""
    while hbt.elapse(100_000_000) == 0:
        pass
    return True


def test_a_quoting_strategy_agrees_step_by_step():
    """With hftbacktest's model in the sim and the same timeline on both sides, the steps
    agree: same clock, same orders sent and cancelled, the same order table."""
    r = fidelity.run(Job(QUOTER, (20, 10, 0), str(CAPTURE), start_s=5.0, duration_s=15.0))
    st = r["steps"]
    assert st["compared"] >= 140 and abs(st["backtest"] - st["replay"]) <= 1
    assert r["differing_steps"]["timestamp"] == 0  # one timeline (the converter's shift)
    assert r["clock_lag_ms"] == {"last": 0.0, "max": 0.0, "min": 0.0}
    assert r["window"]["shift_ns"] > 1_000_000_000  # this capture's venue clock runs ahead
    assert r["agreement"] >= 0.9, fidelity.format_report(r)
    assert r["differing_steps"]["orders_sent"] == 0
    # the report is JSON as it is
    assert json.loads(json.dumps(r))["agreement"] == r["agreement"]


def test_a_slower_live_order_path_is_reported_where_it_first_shows():
    """The replay's entry latency (150 ms) is longer than a step (100 ms): the first
    quotes are sent at the same step on both sides, but one step later they are acked in
    the backtest (status NEW) and still in flight live (status NONE, req NEW)."""
    slow = Settings(entry_latency_ns=150_000_000)
    r = fidelity.run(Job(QUOTER, (20, 10, 0), str(CAPTURE), start_s=5.0, duration_s=4.0,
                         replay_settings=slow))  # fmt: skip
    fd = r["first_divergence"]
    assert fd is not None and fd["step"] == 1, fidelity.format_report(r)
    assert set(fd["fields"]) == {"open_orders"}
    bt, rp = fd["fields"]["open_orders"]["backtest"], fd["fields"]["open_orders"]["replay"]
    assert [o["order_id"] for o in bt] == [o["order_id"] for o in rp] == [1.0, 2.0]
    assert all(o["status"] == 1 and o["req"] == 0 for o in bt)  # NEW, no request
    assert all(o["status"] == 0 and o["req"] == 1 for o in rp)  # NONE, req NEW
    assert fd["timestamp_ns"] == r["window"]["first_ns"] + 2 * 100_000_000
    assert r["differing_steps"]["orders_sent"] == 0 and r["differing_steps"]["position"] == 0
    assert r["agreement"] < 1.0 and r["replay_settings"]["entry_latency_ns"] == 150_000_000
    assert "first divergence: step 1" in fidelity.format_report(r)


def test_the_grid_sees_each_fill_at_the_step_the_backtest_does():
    """The replay's exchange sees each market event at its exchange time, ahead of the
    bots (connector.sim.exchange_view). 1.2 s into this window a buy trade at venue time
    +188 ms from step 10's clock reaches the receiver at +208.9 ms: the exchange fills the
    grid's ask with it at +188 ms and, 1 ms later, the strategy sees the fill before step
    12 ends at +200 ms, on both sides. (When the replay's exchange saw events at their
    receive time, it filled the ask at +208.9 ms, the strategy saw it a step late and the
    runs parted for good: agreement 4 %.)"""
    r = fidelity.run(Job("strategies.grid:gridtrading", (0.01, 0.1, 10, 10, 20), str(CAPTURE),
                         start_s=1.0, duration_s=3.0))  # fmt: skip
    assert r["first_divergence"] is None, fidelity.format_report(r)
    assert r["agreement"] == 1.0
    assert r["fill_steps"] == {"backtest": 2, "replay": 2, "matched": 2, "lag_steps": {"0": 2}}


def test_a_cancel_the_fill_overtook_agrees():
    """With 10 ms order latencies the grid cancels an order the exchange fills before
    the cancel arrives (at +15.2 s): the fill stands and the refused cancel leaves the
    order FILLED with no request in flight, on both sides, and the grid places the same
    id again. (The replay once reported the refusal as status NONE: the order stayed open
    for ever and the runs parted at the next step, agreement 28 %.)"""
    ten = Settings(entry_latency_ns=10_000_000, response_latency_ns=10_000_000)
    r = fidelity.run(Job("strategies.grid:gridtrading", (0.01, 0.1, 10, 10, 20), str(CAPTURE),
                         start_s=1.0, duration_s=16.0, settings=ten))  # fmt: skip
    assert r["first_divergence"] is None, fidelity.format_report(r)
    assert r["fill_steps"]["matched"] == r["fill_steps"]["backtest"] >= 10


@pytest.mark.parametrize("job,match", [
    (Job("tests.test_fidelity:nothing_here"), "unknown strategy"),
    (Job("tests.test_fidelity"), "module:function"),
    (Job("tests.test_fidelity:QUOTER"), "not an @njit function"),
    (Job(QUOTER, settings=Settings(queue_model="fifo")), "queue_model must be one of"),
    (Job(QUOTER, settings=Settings(exchange="default")), "exchange must be one of"),
    (Job(QUOTER, replay_settings=Settings(taker_fee=0.05)), "fractions of the traded value"),
    (Job(QUOTER, start_s=340.0, duration_s=30.0), "not inside the capture"),
    (Job(QUOTER, start_s=0.1, duration_s=5.0), "before the capture's first depth snapshot"),
    (Job(QUOTER, capture="/nonexistent.gz"), "cannot read the capture"),
    (Job(QUOTER, (20, 10), duration_s=1.0), "cannot be called as strategy"),
    (Job("tests.test_fidelity:silent", duration_s=1.0), "recorded no steps"),
], ids=["unknown", "no colon", "not njit", "queue model", "exchange", "fee", "past the end",
        "before the snapshot", "no capture", "wrong args", "no record"])  # fmt: skip
def test_bad_input_is_a_clear_error(job, match):
    with pytest.raises(FidelityError, match=match):
        fidelity.run(job)


def test_cli_reports_bad_input_with_exit_code_2(capsys):
    assert fidelity.main(["no_such_module:f"]) == 2
    assert "unknown strategy" in capsys.readouterr().err


def test_interpolated_order_latency_means_the_same_on_both_sides(tmp_path):
    """`order_latency_file`: hftbacktest's intp_order_latency in the backtest and the
    sim's order_latency = "intp" in the replay read the same rows alike: the lifecycle
    quoter, whose clock moves with each ack's arrival, agrees step for step, clock
    included; with the replay on a constant latency instead, its clock parts at once."""
    from hftlive._fidelity_capture import write_window
    from hftlive.recorder import order_latency_dtype

    start, duration = 5.0, 8.0
    first = write_window(str(CAPTURE), str(tmp_path / "w.gz"), start, duration).first_ns
    req = first + np.arange(-10, int(duration * 10) + 10) * 100_000_000
    rows = np.zeros(len(req), order_latency_dtype)
    rows["req_ts"] = req
    rows["exch_ts"] = req + 1_000_000 + (np.arange(len(req)) % 7) * 1_300_000  # 1-8.8 ms
    rows["resp_ts"] = rows["exch_ts"] + 2_000_000 + (np.arange(len(req)) % 3) * 900_000
    path = tmp_path / "latency.npz"
    np.savez_compressed(path, data=rows)
    intp = Settings(order_latency_file=str(path))
    job = Job(QUOTER, (20, 10, 1), str(CAPTURE), start_s=start, duration_s=duration,
              settings=intp)  # fmt: skip
    r = fidelity.run(job)
    assert r["first_divergence"] is None and r["agreement"] == 1.0, fidelity.format_report(r)
    assert r["settings"]["order_latency_file"] == str(path)
    const = fidelity.run(Job(QUOTER, (20, 10, 1), str(CAPTURE), start_s=start,
                             duration_s=duration, settings=intp,
                             replay_settings=Settings()))  # fmt: skip
    assert const["first_divergence"]["step"] == 0
    assert "timestamp" in const["first_divergence"]["fields"]


def test_a_bad_order_latency_file_is_a_clear_error(tmp_path):
    path = tmp_path / "lat.npy"
    np.save(path, np.zeros(3, [("req_ts", "i8"), ("exch_ts", "i8")]))
    with pytest.raises(FidelityError, match="needs fields req_ts, exch_ts, resp_ts"):
        fidelity.run(Job(QUOTER, (20, 10, 0), settings=Settings(order_latency_file=str(path))))


def test_the_window_ends_where_the_backtests_data_ends(tmp_path):
    """hftbacktest's converter makes no event of a bookTicker line: the window drops the
    ones after its last depth update or trade, so the replay has no data past the
    backtest's end (at the whole capture's end it once had, and recorded a step more)."""
    from hftlive._fidelity_capture import convert, write_window

    w = write_window(str(CAPTURE), str(tmp_path / "w.gz"), 300.0, 44.0)
    data = convert(w)
    assert w.last_ns == int(data["local_ts"].max())
    with gzip.open(w.path) as f:
        last = f.read().splitlines()[-1]
    assert b'"e":"depthUpdate"' in last or b'"e":"trade"' in last


def test_roi_vector_depth_agrees_too():
    """With roi_lb/roi_ub on both sides (hftbacktest's ROIVectorMarketDepthBacktest, a
    LiveBot whose instrument sets them), the market maker agrees step for step."""
    roi = Settings(roi_lb=2600.0, roi_ub=2750.0)
    r = fidelity.run(Job("strategies.market_maker:market_maker", (0.01, 0.1, 5, 2, 3),
                         str(CAPTURE), start_s=1.0, duration_s=10.0, settings=roi))  # fmt: skip
    assert r["first_divergence"] is None and r["agreement"] == 1.0, fidelity.format_report(r)
    assert r["fill_steps"]["matched"] == r["fill_steps"]["backtest"] > 0
    with pytest.raises(FidelityError, match="0 < roi_lb < roi_ub"):
        fidelity.run(Job(QUOTER, (20, 10, 0), settings=Settings(roi_lb=2750.0, roi_ub=2600.0)))


def test_partial_fill_pieces_hftbacktests_local_side_does_not_count():
    """PartialFill: 53.5 s into this window the grid's bid at 2683.00 fills in two pieces
    in one step, 0.008 then the last 0.002, and its bid at 2683.10 fills at once, on both
    sides alike (the same bids are left). The live account counts all three fills, as a
    venue's does; hftbacktest's local side applies a fill to its state only when the
    order is FILLED (Local::process_recv_order, 2.4.4 and later), so its position misses
    the 0.008. That is the first divergence, and the positions stay apart."""
    pf = Settings(exchange="partial_fill")
    r = fidelity.run(Job("strategies.grid:gridtrading", (0.01, 0.1, 10, 10, 20), str(CAPTURE),
                         start_s=1.0, duration_s=54.0, settings=pf))  # fmt: skip
    fd = r["first_divergence"]
    assert fd is not None and fd["step"] == 534, fidelity.format_report(r)
    fills = fd["fields"]["fills"]
    assert fills["backtest"][0] == 2 and fills["backtest"][1] == pytest.approx(0.012)
    assert fills["replay"][0] == 3 and fills["replay"][1] == pytest.approx(0.02)
    pos = fd["fields"]["position"]
    assert pos["replay"] - pos["backtest"] == pytest.approx(0.008)
    # the same bids filled and remain on both sides: only the counting differs (the asks
    # the grid places next follow each side's position)
    oo = fd["fields"]["open_orders"]
    bids = [sorted(tuple(o.items()) for o in oo[k] if o["side"] == 1) for k in oo]
    assert bids[0] == bids[1] and bids[0]
