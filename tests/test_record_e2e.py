"""End to end: the Binance connector records the emulator's feed and a bot's order
latencies; hftbacktest 2.4.4 backtests both.

The loopback emulator and the real connector (with `[record]`) run as child processes, a
real LiveBot in this process places and cancels orders (its latencies kept by an
OrderLatencyRecorder); a depth gap makes the connector clear and resync its book. With the
market paused and the books settled, the connector's
book snapshot (its shared-memory one) is the book at the end; after a clean stop, the
recorded files, run to the end in hftbacktest with elapse steps, must end with that book,
level for level on the tick grid; and the exported latencies drive hftbacktest's
interpolated order latency model in a backtest over those files.
"""

from __future__ import annotations

import numpy as np
from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

from hftlive import CANCELED, ERR_BOOK_RESYNC, GTX, LIMIT, NEW
from hftlive.constants import DEPTH_CLEAR_EVENT, EXCH_EVENT, LOCAL_EVENT
from hftlive.layout import MD_SNAP_N, event_dtype
from hftlive.recorder import OrderLatencyRecorder, order_latency_dtype
from tests.conftest import book_synced, wait_bot, wait_session
from tests.test_bf_connector import BfConnector, Emulator, _bot, _paused_and_settled
from tests.test_record import TICK, _as_levels, backtest_levels

RECORD = """
[record]
enabled = true
dir = "rec"
rotate_s = 1  # a new file every second: the run spans several
"""
N_ORDERS = 8


def _venue_levels(emu: Emulator) -> list[tuple[int, int, float]]:
    book = emu.book(1000)
    return [(1, round(float(px) / TICK), float(q)) for px, q in book["bids"]] + [
        (-1, round(float(px) / TICK), float(q)) for px, q in book["asks"]
    ]


def _connector_snapshot(hbt) -> list[tuple[int, int, float]]:
    """The connector's book snapshot in shared memory (the one bots resync from)."""
    snap = np.array(hbt.md_snap[0][: int(hbt.md_hdr[0][MD_SNAP_N])], dtype=event_dtype)
    return _as_levels(snap)


def test_recorded_feed_and_latencies_backtest_in_hftbacktest(tmp_path):
    emu = Emulator(tmp_path)
    conn = None
    try:
        conn = BfConnector(tmp_path, emu, extra=RECORD)
        lat = OrderLatencyRecorder(1, 1000)
        errors = []
        hbt = _bot(conn, errors)
        try:
            wait_bot(hbt, lambda: book_synced(hbt), 15.0, "a synced book")
            wait_session(hbt, conn.name)
            for i in range(N_ORDERS):  # post-only bids far from the market, then cancelled
                px = round(hbt.depth(0).best_bid - 5.0 - i * TICK, 2)
                assert hbt.submit_buy_order(0, i + 1, px, 0.02, GTX, LIMIT, True) == 0
                assert hbt.orders(0).get(i + 1).status == NEW
                lat.recorder.record(hbt)
                assert hbt.cancel(0, i + 1, True) == 0
                assert hbt.orders(0).get(i + 1).status == CANCELED
                lat.recorder.record(hbt)
            emu.faults(corrupt_pu=1)  # a depth gap: cleared, resynced from a new snapshot
            wait_bot(hbt, lambda: any(e.kind == ERR_BOOK_RESYNC for e in errors), 10.0,
                     "ERR_BOOK_RESYNC")  # fmt: skip
            wait_bot(hbt, lambda: conn.text().count("book synced") >= 2, 15.0, "a second sync")
            hbt.elapse(300_000_000)  # more market on top
            _paused_and_settled(hbt, emu)
            venue = _venue_levels(emu)
            wait_bot(hbt, lambda: _connector_snapshot(hbt) == venue, 10.0,
                     "the connector's snapshot of the paused market")  # fmt: skip
            final = _connector_snapshot(hbt)
        finally:
            hbt.close()
        assert conn.stop() == 0, conn.text()
    finally:
        if conn is not None and conn.proc.poll() is None:
            conn.stop()
        emu.stop()

    # the feed: rotated every second, the last file written on the clean stop
    files = sorted((tmp_path / "rec").glob(f"{conn.name}_ethusdt_*.npz"))
    assert len(files) >= 2 and not list((tmp_path / "rec").glob("*.part")), conn.text()
    assert conn.text().count("feed recording: wrote") == len(files)
    ev = np.concatenate([np.load(f)["data"]["ev"] for f in files]).astype(np.int64)
    # clears of the whole book (no side flag): at least the gap's and the resync's
    assert (ev == EXCH_EVENT | LOCAL_EVENT | DEPTH_CLEAR_EVENT).sum() >= 2
    assert len(final) > 20
    assert backtest_levels(files) == final

    # the latencies: two requests per order, in request order, no negative leg
    rows = lat.get(0)
    assert len(rows) == 2 * N_ORDERS
    assert (np.diff(rows["req_ts"]) > 0).all()
    assert (rows["req_ts"] <= rows["exch_ts"]).all() and (rows["exch_ts"] <= rows["resp_ts"]).all()
    assert (rows["resp_ts"] - rows["req_ts"] < 5_000_000_000).all()
    path = tmp_path / "order_latency.npz"
    lat.to_npz(str(path))
    with np.load(path) as z:
        assert list(z.keys()) == ["data"] and z["data"].dtype == order_latency_dtype

    # hftbacktest's interpolated model reads them, and a backtest over the recorded day
    # sees order latencies within the measured ones
    asset = (
        BacktestAsset()
        .data([str(f) for f in files])
        .linear_asset(1.0)
        .intp_order_latency(str(path))
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(0.0, 0.0)
        .tick_size(TICK)
        .lot_size(0.001)
    )
    bt = HashMapMarketDepthBacktest([asset])
    t_first = int(rows["req_ts"][0])
    while bt.current_timestamp < t_first or not np.isfinite(bt.depth(0).best_bid):
        assert bt.elapse(10_000_000) == 0
    entry = rows["exch_ts"] - rows["req_ts"]
    resp = rows["resp_ts"] - rows["exch_ts"]
    placed = 0
    for i in range(4):
        px = bt.depth(0).best_bid - 50 * TICK
        assert bt.submit_buy_order(0, 100 + i, px, 0.02, GTX, LIMIT, False) == 0
        assert bt.wait_order_response(0, 100 + i, 5_000_000_000) == 0
        assert bt.orders(0).get(100 + i).status == NEW
        req_ts, exch_ts, resp_ts = bt.order_latency(0)
        assert entry.min() <= exch_ts - req_ts <= entry.max()
        assert resp.min() <= resp_ts - exch_ts <= resp.max()
        placed += 1
        if bt.elapse(20_000_000) != 0:
            break
    assert placed >= 1
    bt.close()
