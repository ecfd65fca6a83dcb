"""Recording the feed (connector.record), in memory over the real capture.

The capture's lines go through the Binance decoder and the core's feed path into a real
ConnectorCore (real ShmServer and Router) with a FeedRecorder tapped into its publish,
as `python -m connector` wires it. The files it writes are then backtested by hftbacktest
2.4.4 itself (`HashMapMarketDepthBacktest`, run to the end with `elapse` steps): the
backtest's book at the end must equal the connector's, level for level on the tick grid.
"""

from __future__ import annotations

import functools
import gzip
import os

import numpy as np
import pytest
from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest
from numba import njit

from connector.binancefutures.feed import capture_decoder
from connector.binancefutures.messages import DepthSnapshot
from connector.book import RecordingBook
from connector.config import load_config
from connector.core import ConnectorCore
from connector.errors import ConfigError
from connector.feed import Feed
from connector.record import FeedRecorder, correct_event_order
from connector.router import Router
from connector.shmserver import ShmServer
from hftlive.constants import (
    BUY_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EXCH_EVENT,
    GTX,
    LIMIT,
    LOCAL_EVENT,
    SELL_EVENT,
)
from hftlive.layout import event_dtype

from .conftest import CAPTURE

TICK, LOT = 0.01, 0.001
SNAPSHOT_EVERY = 100  # capture lines between the venue's book snapshots (rotation points)

CONFIG = """
[[instruments]]
symbol = "ethusdt"
tick_size = 0.01
lot_size = 0.001

[connector]
state_dir = "state"

[record]
enabled = true
dir = "rec"
max_events = {max_events}
"""


@functools.cache
def capture() -> tuple[tuple[int, bytes], ...]:
    """(local ns, raw JSON) per line, in file order."""
    with gzip.open(CAPTURE, "rb") as f:
        return tuple((int(ts), raw.rstrip(b"\n")) for ts, raw in (ln.split(b" ", 1) for ln in f))


class _Sink:
    """A Core that keeps nothing: the reference pipeline's (it is not under test)."""

    def publish(self, inst, events, n):
        pass

    def write_snapshot(self, inst, book, ts):
        pass

    def book_reset(self, inst, why):
        pass

    def bad_message(self, inst=-1):
        pass

    def direct_rings(self):
        return None  # everything through `publish`


def _pipeline(core, cfg):
    books = [RecordingBook(0, cfg.instruments[0])]
    feed = Feed(core, books)
    return books[0], capture_decoder(books, feed)


def _levels(book) -> np.ndarray:
    buf = np.zeros(book.bk.shape[0] + book.ak.shape[0], event_dtype)
    return buf[: book.snapshot_into(buf, 0)]


def _snapshot_of(ref_book: RecordingBook, last_update_id: int) -> DepthSnapshot:
    """A REST-shaped depth snapshot of the reference book (what GET /fapi/v1/depth says)."""
    lv = _levels(ref_book.book)
    side = lambda s: np.column_stack([lv["px"][lv["ev"] & s != 0], lv["qty"][lv["ev"] & s != 0]])  # noqa: E731
    return DepthSnapshot(last_update_id, ref_book.exch_ts, ref_book.exch_ts, side(BUY_EVENT),
                         side(SELL_EVENT))  # fmt: skip


class Recorded:
    """The capture through a real core with a recorder; `gap_at`: a depth line dropped
    there (the book gaps and resyncs from a REST-shaped snapshot a few diffs later)."""

    def __init__(self, tmp_path, max_events: int, gap_at: int | None = None):
        path = tmp_path / "rec.toml"
        path.write_text(CONFIG.format(max_events=max_events))
        cfg = load_config(path, "sim")
        self.shm = ShmServer(f"rec{os.getpid()}", "sim", cfg.instruments, cfg.connector)
        try:
            self.recorder = FeedRecorder("t", cfg.record, ["ethusdt"], str(path))
            core = ConnectorCore(self.shm, Router(self.shm, cfg, cfg.instruments),
                                 cfg.instruments, self.recorder)  # fmt: skip
            self.book, decoder = _pipeline(core, cfg)
            ref_book, ref = _pipeline(_Sink(), cfg) if gap_at is not None else (None, None)
            depth_lines_after_gap = -1
            for i, (local, raw) in enumerate(capture()):
                if ref is not None:
                    ref.on_frame(raw, local)
                    if i == gap_at:
                        assert b"depthUpdate" in raw
                        depth_lines_after_gap = 0
                        continue  # the venue sent it; the connector never saw it
                decoder.on_frame(raw, local)
                if depth_lines_after_gap >= 0 and b"depthUpdate" in raw:
                    depth_lines_after_gap += 1
                    if depth_lines_after_gap == 3:  # the REST reply, after its bridging diff
                        snap = _snapshot_of(ref_book, ref.syncs[0].last_update_id)
                        decoder.on_snapshot(self.book, snap, local)
                        depth_lines_after_gap = -1
                if i % SNAPSHOT_EVERY == 0:
                    core.write_snapshot(0, self.book.book, self.book.exch_ts)
            self.recorder.close()
        finally:
            self.shm.close()
        self.files = list(self.recorder.written)
        assert not self.recorder.errors

    def levels(self) -> list[tuple[int, int, float]]:
        """The connector's book at the end: (side, tick, qty), bids best first, then asks."""
        return _as_levels(_levels(self.book.book))


def _as_levels(snap: np.ndarray) -> list[tuple[int, int, float]]:
    return [(1 if int(e["ev"]) & BUY_EVENT else -1, round(float(e["px"]) / TICK), float(e["qty"]))
            for e in snap]  # fmt: skip


def _asset(files):
    return (
        BacktestAsset()
        .data([str(f) for f in files])
        .linear_asset(1.0)
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(0.0, 0.0)
        .tick_size(TICK)
        .lot_size(LOT)
    )


def backtest_levels(files) -> list[tuple[int, int, float]]:
    """hftbacktest's book after running `files` to the end with elapse steps."""
    hbt = HashMapMarketDepthBacktest([_asset(files).constant_order_latency(0, 0)])
    steps = 0
    while hbt.elapse(1_000_000_000) == 0:
        steps += 1
        assert steps < 100_000
    depth = hbt.depth(0)
    snap = depth.snapshot()
    out = _as_levels(snap.copy())
    depth.snapshot_free(snap)
    hbt.close()
    return out


@pytest.fixture(scope="module")
def rotated(tmp_path_factory):
    return Recorded(tmp_path_factory.mktemp("rotated"), max_events=200_000)


def test_files_are_hftbacktest_event_files_starting_with_a_snapshot(rotated):
    assert len(rotated.files) >= 3  # rotated by size
    for f in rotated.files:
        assert f.name.startswith("t_ethusdt_") and f.suffix == ".npz"
        with np.load(f) as z:
            assert list(z.keys()) == ["data"]
            data = z["data"]
        assert data.dtype == event_dtype
        ev = data["ev"].astype(np.int64)
        kind = ev & 0xFF
        # the converter's snapshot: DEPTH_CLEAR|BUY, bid snapshot, DEPTH_CLEAR|SELL, asks
        assert ev[0] == EXCH_EVENT | LOCAL_EVENT | DEPTH_CLEAR_EVENT | BUY_EVENT
        n_bid = int(np.argmax(kind[1:] != DEPTH_SNAPSHOT_EVENT))
        assert ev[n_bid + 1] == EXCH_EVENT | LOCAL_EVENT | DEPTH_CLEAR_EVENT | SELL_EVENT
        bids = data[1 : n_bid + 1]
        assert (bids["ev"].astype(np.int64) & BUY_EVENT != 0).all()
        if len(bids):
            assert (np.diff(bids["px"]) < 0).all() and data[0]["px"] == bids[-1]["px"]
        # hftbacktest's ordering rules, as its validate_event_order checks them
        exch = (ev & EXCH_EVENT) != 0
        local = (ev & LOCAL_EVENT) != 0
        assert (np.diff(data["exch_ts"][exch]) >= 0).all()
        assert (np.diff(data["local_ts"][local]) >= 0).all()
        assert (exch | local).all()
    # the first file starts from an empty book (nothing was published before it)
    with np.load(rotated.files[0]) as z:
        assert np.isnan(z["data"]["px"][:2]).all()
    assert not list(rotated.files[0].parent.glob("*.part"))


def test_each_file_ends_where_the_next_one_starts(rotated):
    """A file backtested alone ends with the book the next file's snapshot starts from."""
    for f, nxt in zip(rotated.files[:-1], rotated.files[1:]):
        with np.load(nxt) as z:
            head = z["data"]
        head = head[(head["ev"].astype(np.int64) & 0xFF) == DEPTH_SNAPSHOT_EVENT]
        head = head[: int(np.argmax(head["ev"].astype(np.int64) & 0xFF != DEPTH_SNAPSHOT_EVENT))
                    or len(head)]  # fmt: skip
        assert backtest_levels([f]) == _as_levels(head)


def test_recorded_files_backtest_to_the_connectors_book(rotated):
    got = backtest_levels(rotated.files)
    want = rotated.levels()
    assert len(want) > 500
    assert got == want


def test_a_gap_is_recorded_as_a_clear_and_the_new_book(tmp_path):
    depth_lines = [i for i, (_, raw) in enumerate(capture()) if b"depthUpdate" in raw]
    r = Recorded(tmp_path, max_events=20_000_000, gap_at=depth_lines[len(depth_lines) // 2])
    assert len(r.files) == 1
    with np.load(r.files[0]) as z:
        data = z["data"]
    clears = data[(data["ev"].astype(np.int64) & 0xFF) == DEPTH_CLEAR_EVENT]
    sides = clears["ev"].astype(np.int64) & (BUY_EVENT | SELL_EVENT)
    # the file's leading snapshot (one per side), then the REST snapshot's and the gap's
    # clear of both sides (no side flag: hftbacktest clears the whole book)
    assert list(sides[:2]) == [BUY_EVENT, SELL_EVENT]
    assert list(sides[2:]) == [0, 0, 0]
    assert backtest_levels(r.files) == r.levels()


def test_correct_event_order_matches_hftbacktests():
    from hftbacktest.data.validation import correct_event_order as hbt_correct

    rng = np.random.default_rng(7)
    ev = np.zeros(500, event_dtype)
    ev["ev"] = rng.choice([1, 2], 500) | BUY_EVENT
    ev["local_ts"] = np.cumsum(rng.integers(0, 3, 500))
    ev["exch_ts"] = ev["local_ts"] - rng.integers(0, 6, 500)  # reordered on the way
    ev["px"] = rng.integers(1, 100, 500)
    ev["qty"] = rng.random(500)
    theirs = hbt_correct(ev.copy(), np.argsort(ev["exch_ts"], kind="mergesort"),
                         np.argsort(ev["local_ts"], kind="mergesort"))  # fmt: skip
    ours = correct_event_order(_flagged(ev))
    assert (ours == theirs).all()


def _flagged(ev: np.ndarray) -> np.ndarray:
    """As published: every event flagged EXCH|LOCAL (correct_event_order strips them)."""
    out = ev.copy()
    out["ev"] |= np.uint64(EXCH_EVENT | LOCAL_EVENT)
    return out


# ------------------------------------------------------------------------ config


def _load(tmp_path, record: str):
    p = tmp_path / "c.toml"
    p.write_text(f'[[instruments]]\nsymbol = "x"\ntick_size = 0.1\nlot_size = 1.0\n\n'
                 f"[record]\n{record}\n")  # fmt: skip
    return load_config(p, "sim")


def test_record_config_defaults_off_and_resolves_dir_against_the_config(tmp_path):
    assert not _load(tmp_path, "").record.enabled
    cfg = _load(tmp_path, 'enabled = true\ndir = "day"')
    assert cfg.record.dir == str(tmp_path / "day")
    assert cfg.record.rotate_s == 3600.0


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("enabled = true", "record.dir is required"),
        ('dir = "x"\nrotate_s = 0.5', "record.rotate_s must be in [1, 604800]"),
        ('dir = "x"\nrotate_s = nan', "record.rotate_s must be in"),
        ('dir = "x"\nmax_events = 10', "record.max_events must be in [1000,"),
        ('dir = "x"\nchunk_events = 0', "record.chunk_events must be in [256,"),
        ('dir = "x"\nrotate = 60', "unknown key record.rotate"),
        ('enabled = "yes"\ndir = "x"', "record.enabled must be bool"),
    ],
)
def test_bad_record_config_is_named(tmp_path, text, msg):
    with pytest.raises(ConfigError, match=msg.replace("[", r"\[").replace("(", r"\(")):
        _load(tmp_path, text)


def test_unwritable_record_dir_is_a_clear_error(tmp_path):
    # a folder under a regular file: cannot be created, whoever runs the test (root too)
    (tmp_path / "afile").write_text("")
    cfg = _load(tmp_path, 'enabled = true\ndir = "afile/sub"')
    with pytest.raises(ConfigError, match=r"c.toml: record.dir .*afile/sub: cannot write there: "
                                          r"Not a directory"):  # fmt: skip
        FeedRecorder("t", cfg.record, ["x"], cfg.path)


def test_files_rotate_on_the_clock_at_the_next_book_snapshot(tmp_path):
    from connector.config import RecordConfig
    from hftlive.depth import DepthBook

    from .conftest import wait_until

    cfg = RecordConfig(enabled=True, dir=str(tmp_path), rotate_s=1.0, chunk_events=256)
    rec = FeedRecorder("t", cfg, ["x"])
    book = DepthBook(TICK, LOT)
    ev = np.zeros(1000, event_dtype)  # more than a chunk: spooled by the writer thread
    ev["ev"] = EXCH_EVENT | LOCAL_EVENT | BUY_EVENT | 1
    ev["exch_ts"] = ev["local_ts"] = np.arange(1000) + 10**18
    ev["px"] = 100.0 - np.arange(1000) * TICK
    ev["qty"] = 1.0
    for k in range(0, 1000, 100):  # published in batches of 100, applied to the book
        for e in ev[k : k + 100]:
            book.set_bid(float(e["px"]), float(e["qty"]))
        rec.add(0, ev[k : k + 100], 100)
    rec.at_snapshot(0, book)
    assert rec.written == []  # not due yet
    due = rec._files[0].due
    assert due % 1.0 == 0.0  # on a whole multiple of rotate_s
    import time

    wait_until(lambda: time.time() >= due, 5.0, "the rotation time")
    rec.at_snapshot(0, book)  # the switch
    rec.add(0, ev[999:], 1)
    rec.close()
    assert len(rec.written) == 2 and not list(tmp_path.glob("*.part"))
    first, second = (np.load(f)["data"] for f in rec.written)
    assert len(first) == 2 + 1000 and (first["px"][2:] == ev["px"]).all()
    # the second starts with the whole book: clear + 1000 bids, clear of the empty asks
    assert second["ev"][0] == EXCH_EVENT | LOCAL_EVENT | DEPTH_CLEAR_EVENT | BUY_EVENT
    ticks = np.round(ev["px"] / TICK)
    assert round(second["px"][0] / TICK) == ticks[-1]
    assert (np.round(second["px"][1:1001] / TICK) == ticks).all()
    assert second["ev"][1001] == EXCH_EVENT | LOCAL_EVENT | DEPTH_CLEAR_EVENT | SELL_EVENT
    assert np.isnan(second["px"][1001]) and len(second) == 1003
    assert (second["exch_ts"][:1002] == ev["exch_ts"][-1]).all()


def test_connector_with_an_unwritable_record_dir_exits_with_the_reason(tmp_path):
    import subprocess
    import sys

    from .conftest import ROOT

    (tmp_path / "afile").write_text("")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[instruments]]\nsymbol = "btcusdt"\ntick_size = 0.1\nlot_size = 0.001\n'
                   'start_price = 60000.0\n\n[record]\nenabled = true\ndir = "afile/sub"\n')  # fmt: skip
    p = subprocess.run([sys.executable, "-m", "connector", "--name", f"rec{os.getpid()}",
                        "--connector", "sim", "--config", str(cfg)],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert p.returncode == 2
    assert "record.dir" in p.stderr and "afile/sub: cannot write there: Not a directory" in p.stderr


@njit(boundscheck=True)
def _orders_then_record(hbt, rec, n):
    """Waits for a book, then n times: a far bid submitted, its response awaited, recorded."""
    while not (hbt.depth(0).best_bid > 0):
        if hbt.elapse(10_000_000) != 0:
            return 0
    for i in range(n):
        px = hbt.depth(0).best_bid - 50 * TICK
        hbt.submit_buy_order(0, i + 1, px, 0.02, GTX, LIMIT, False)
        hbt.wait_order_response(0, i + 1, 5_000_000_000)
        rec.record(hbt)
        if hbt.elapse(100_000_000) != 0:
            return i + 1
    return n


def test_order_latency_recorder_round_trips_through_hftbacktest(rotated, tmp_path):
    """Latencies kept in njit code from a backtest with constant latencies, exported, then
    read by hftbacktest's interpolated model: the second backtest sees the same ones."""
    from hftlive.recorder import OrderLatencyRecorder

    files = rotated.files[:1]
    lat = OrderLatencyRecorder(1, 100)
    bt = HashMapMarketDepthBacktest([_asset(files).constant_order_latency(1_000_000, 2_000_000)])
    assert _orders_then_record(bt, lat.recorder, 20) == 20
    bt.close()
    rows = lat.get(0)
    assert len(rows) == 20
    assert (rows["exch_ts"] - rows["req_ts"] == 1_000_000).all()
    assert (rows["resp_ts"] - rows["exch_ts"] == 2_000_000).all()
    lat.to_npz(str(tmp_path / "lat.npz"))
    again = OrderLatencyRecorder(1, 100)
    bt = HashMapMarketDepthBacktest([_asset(files).intp_order_latency(str(tmp_path / "lat.npz"))])
    assert _orders_then_record(bt, again.recorder, 20) == 20
    bt.close()
    got = again.get(0)
    assert (got["exch_ts"] - got["req_ts"] == 1_000_000).all()
    assert (got["resp_ts"] - got["exch_ts"] == 2_000_000).all()


def test_a_write_failure_is_logged_and_kept_not_raised(tmp_path, caplog):
    import shutil

    from connector.config import RecordConfig

    d = tmp_path / "gone"
    rec = FeedRecorder("t", RecordConfig(enabled=True, dir=str(d)), ["x"])
    ev = np.zeros(10, event_dtype)
    ev["ev"] = EXCH_EVENT | LOCAL_EVENT | BUY_EVENT | 1
    rec.add(0, ev, 10)
    shutil.rmtree(d)  # the disk went away under the connector
    rec.close()  # no exception: the connector stops cleanly
    assert rec.written == [] and len(rec.errors) == 1
    assert "No such file or directory" in rec.errors[0]
    assert "feed recording: cannot write" in caplog.text
