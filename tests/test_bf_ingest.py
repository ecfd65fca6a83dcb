"""The compiled hot path of Binance market frames (connector/binancefutures/_ingest.py)
against the checked path it short-cuts, over the real capture ethusdt_20240808.gz.

Two real decoders, each with a real ShmServer: one whose core offers its rings
(`direct_rings`: the live connector), one whose core does not, so that every frame goes
through `parse_stream`, `BookSync` and `Feed.publish`. Fed every line of the capture in
file order, they must publish the same batches, event for event, and hold the same book;
the direct one must have published the hot frames itself. Damaged depth diffs (every
truncation, deletion and a set of byte replacements of a real diff) must scan to exactly
what `parse_stream` reads or fall back, never to something it refuses; malformed frames
in the stream are counted, and a diff lost to one is a gap that the checked BookSync
detects (BN-OB step 5, venue_protocols.md §1.4), not something the fast path papers over.
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from connector.binancefutures._ingest import (
    B_CHAIN,
    SYM_MAX,
    scan_depth,
    symbol_words,
)
from connector.binancefutures.feed import OUT_EVENTS, BinanceDecoder
from connector.binancefutures.protocol import DepthUpdate, parse_stream
from connector.binancefutures.streams import MdInstrument
from connector.config import InstrumentConfig
from connector.errors import VenueProtocolError
from connector.feed import Feed
from hftlive.constants import ERR_BOOK_RESYNC
from hftlive.layout import event_dtype
from tests.ingest_pipeline import RingPipeline

CAPTURE = Path(__file__).resolve().parents[2] / "shared/data/binancefutures/ethusdt_20240808.gz"
ETH = InstrumentConfig("ethusdt", 0.01, 0.001)


@functools.cache
def capture() -> tuple[tuple[int, bytes], ...]:
    """(local ns, raw JSON) per line, in file order."""
    assert CAPTURE.exists(), f"capture not found: {CAPTURE} (tests read ../shared)"
    with gzip.open(CAPTURE, "rb") as f:
        return tuple(
            (int(ts), raw) for ts, raw in (line.rstrip(b"\n").split(b" ", 1) for line in f)
        )


class Pipeline(RingPipeline):
    """A decoder, its book and a real ShmServer, as MarketData wires them (no sockets)."""

    def __init__(self, tag: str, direct: bool):
        super().__init__(f"bfing{tag}{os.getpid()}", "binancefutures", ETH, direct)
        self.inst = MdInstrument(0, ETH)
        self.snapshots_asked = 0
        self.feed = Feed(self.core, [self.inst], on_need_snapshot=self._asked)
        self.decoder = BinanceDecoder([self.inst], self.feed)
        self.decoder.compile()

    def _asked(self, _s) -> None:
        self.snapshots_asked += 1


@pytest.fixture
def pipelines():
    made = []

    def make(tag: str, direct: bool) -> Pipeline:
        p = Pipeline(tag, direct)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def test_whole_capture_publishes_what_the_checked_path_publishes(pipelines):
    fast, ref = pipelines("f", True), pipelines("r", False)
    for local_ns, raw in capture():
        s0 = fast.seq
        fast.decoder.on_frame(raw, local_ns)
        ref.decoder.on_frame(raw, local_ns)
        assert fast.seq == ref.seq, raw[:120]
        if fast.seq != s0:
            got, want = fast.events(s0, fast.seq), ref.events(s0, ref.seq)
            assert got.tobytes() == want.tobytes(), raw[:120]
    assert fast.levels() == ref.levels()
    assert len(fast.levels()[0]) > 1000 and len(fast.levels()[1]) > 1000
    assert (fast.inst.exch_ts, fast.inst.local_ts) == (ref.inst.exch_ts, ref.inst.local_ts)
    # the hot frames went straight to the ring: after the sync, everything but a handful
    direct = int(fast.shm.direct_events[0])
    assert direct > 0.95 * fast.seq, (direct, fast.seq)
    assert int(ref.shm.direct_events[0]) == 0
    # and the counters the heartbeat, the metrics and the stale-feed alert read agree
    fast.shm.heartbeat()
    ref.shm.heartbeat()
    n_events = [int(p.shm.ctl.instruments["n_events"][0]) for p in (fast, ref)]
    assert n_events == [fast.seq, ref.seq]
    assert fast.shm.events_published() == [fast.seq]  # what metrics and alerts read
    assert fast.decoder.syncs[0].last_update_id == ref.decoder.syncs[0].last_update_id
    assert fast.router.told == ref.router.told == []


def test_a_diff_larger_than_the_scratch_takes_the_checked_path_and_applies_the_same(
    pipelines,
):
    fast, ref = pipelines("bf", True), pipelines("br", False)
    k = _sync(fast)
    assert _sync(ref) == k
    lines = capture()
    i = next(j for j in range(k, len(lines)) if b'"depthUpdate"' in lines[j][1][:128])
    local_ns, raw = lines[i]
    # far from the book, qty 0: removing absent levels is normal (BN-OB step 6)
    extra = b"".join(b'["%d.00","0"],' % (100_000 + t) for t in range(OUT_EVENTS + 10))
    big = raw.replace(b'"b":[', b'"b":[' + extra, 1)
    assert big.count(b'"],["') > OUT_EVENTS
    direct = int(fast.shm.direct_events[0])
    for p in (fast, ref):
        s0 = p.seq
        p.decoder.on_frame(big, local_ns)
        assert p.seq - s0 > OUT_EVENTS
    assert fast.events(s0, fast.seq).tobytes() == ref.events(s0, ref.seq).tobytes()
    assert int(fast.shm.direct_events[0]) == direct  # not the compiled path
    for local_ns, raw in lines[i + 1 : i + 500]:  # and the chain goes on from there
        fast.decoder.on_frame(raw, local_ns)
        ref.decoder.on_frame(raw, local_ns)
    assert fast.levels() == ref.levels() and fast.seq == ref.seq
    assert fast.router.told == ref.router.told == []


def _diffs():
    return [raw for _, raw in capture() if b'"e":"depthUpdate"' in raw[:128]]


def _scan(raw: bytes):
    """(symbol, T ns, U, u, pu, bids, asks) as scan_depth reads `raw`, or None."""
    out = np.zeros(len(raw) // 9 + 2, event_dtype)
    ok, s_lo, s_hi, t_ms, first, final, prev, nb, na = scan_depth(raw, out)
    if not ok:
        return None
    lv = np.stack((out["px"], out["qty"]), axis=1)
    return (raw[s_lo:s_hi].decode().lower(), t_ms * 1_000_000, first, final, prev,
            lv[:nb].tolist(), lv[nb : nb + na].tolist())  # fmt: skip


def _checked(raw: bytes):
    """The same as `parse_stream` reads it; None if it refuses it or it is no diff."""
    try:
        m = parse_stream(raw)
    except VenueProtocolError:
        return None
    if not isinstance(m, DepthUpdate):
        return None
    return (m.symbol, m.transact_ts_ns, m.first_update_id, m.final_update_id,
            m.prev_final_update_id, m.bids.tolist(), m.asks.tolist())  # fmt: skip


def test_every_diff_of_the_capture_scans_to_the_checked_reading():
    diffs = _diffs()
    assert len(diffs) > 6000
    for raw in diffs:
        got = _scan(raw)
        assert got is not None, raw[:200]
        assert got == _checked(raw), raw[:200]
    bare = diffs[0][diffs[0].index(b',"data":') + 8 : -1]
    assert _scan(bare) == _checked(bare) is not None


def _damaged(raw: bytes):
    """Every truncation, every deletion of one byte, and replacements by bytes that break
    JSON or change a type, at every position."""
    for i in range(len(raw)):
        yield raw[:i]
        yield raw[:i] + raw[i + 1 :]
        for b in (b'"', b"\\", b" ", b"-", b"0", b"9", b"x", b"]", b"[", b"}", b",", b"\xc3"):
            yield raw[:i] + b + raw[i + 1 :]
        yield raw[:i] + b"1" + raw[i:]


def test_damaged_diffs_scan_to_the_checked_reading_or_fall_back():
    raw = min((r for r in _diffs() if r.count(b'"],["') >= 3), key=len)  # a few levels
    n_fast = n_refused = 0
    for bad in _damaged(raw):
        got = _scan(bad)
        want = _checked(bad)
        if got is None:
            n_refused += want is None
            continue
        n_fast += 1
        assert got == want, bad
    assert n_fast > 100 and n_refused > 1000  # digits changed in a level: still taken


@pytest.mark.parametrize(
    "raw",
    [
        # not the plain shape, or a field of the wrong type: the checked parser decides
        b'{"e":"depthUpdate","E":1,"T":1,"s":"ETHUSDT","U":1,"u":2,"pu":-1,"b":[],"a":[]}',
        b'{"e":"depthUpdate","E":1,"T":1,"s":"ETHUSDT","U":1,"u":"2","pu":0,"b":[],"a":[]}',
        b'{"e":"depthUpdate","E":1,"T":1,"s":"ETHUSDT","U":1,"u":2,"pu":0,"a":[],"b":[]}',
        b'{"e":"depthUpdate","E":1,"T":1,"s":"ETHUSDT","U":1,"u":2,"pu":0,"b":[]}',
        b'{"e":"depthUpdate","E":1,"T":1,"s":"ETHUSDT","U":1,"u":2,"pu":0,"b":[],"a":[],"u":3}',
        b'{"e":"depthUpdate","E":1,"T":1,"s":"ETHUSDT","U":1,"u":2,"pu":0,"b":[["1","1",'
        b'"1"]],"a":[]}',
        b'{"e":"depthUpdate","E":1,"T":1,"s":"ETHUSDT","U":1,"u":2,"pu":0,"b":[["1e3","1"]],'
        b'"a":[]}',
        b'{"e":"depthUpdate","E":1,"T":1,"s":"ETHUSDT","U":1,"u":2,"pu":0,"b":[],"a":[],"x":{}}',
        b'{"e":"depthUpdate","E":1,"T":1,"s":"ETHUSDT","U":1,"u":2,"pu":0,"b":[] ,"a":[]}',
        b'{"e":"depthUpdate","E":true,"T":1,"s":"ETHUSDT","U":1,"u":2,"pu":0,"b":[],"a":[]}',
        b'{"e":"depthUpdate","E":1,"T":9000000000001,"s":"E","U":1,"u":2,"pu":0,"b":[],"a":[]}',
        b'{"e":"depthUpdate","E":1,"T":1,"s":"ETHUSDT","U":1,"u":1234567890123456789,"pu":0,'
        b'"b":[],"a":[]}',
        b'{"e":"bookTicker","E":1,"T":1,"s":"ETHUSDT","U":1,"u":2,"pu":0,"b":[],"a":[]}',
    ],
)
def test_what_the_depth_scanner_does_not_take(raw):
    assert _scan(raw) is None


def test_unknown_simple_fields_of_a_diff_are_skipped():
    raw = (
        b'{"stream":"ethusdt@depth@0ms","data":{"e":"depthUpdate","E":5,"T":4,"s":"ETHUSDT",'
        b'"U":10,"u":12,"pu":9,"new":"x","n2":7,"n3":null,"n4":true,"b":[["2681.62","0.061"]],'
        b'"a":[["2681.63","0"],["2681.70","1.5"]],"n5":false}}'
    )
    got = _scan(raw)
    assert got == _checked(raw)
    assert got == ("ethusdt", 4_000_000, 10, 12, 9, [[2681.62, 0.061]],
                   [[2681.63, 0.0], [2681.7, 1.5]])  # fmt: skip


def test_symbols_longer_than_the_table_holds_take_the_checked_path():
    assert symbol_words(b"X" * SYM_MAX) is not None
    assert symbol_words(b"X" * (SYM_MAX + 1)) is None
    w = symbol_words(b"ETHUSDT")
    assert int(w[0]).to_bytes(8, "little", signed=True) == b"ETHUSDT\0"


def _sync(p: Pipeline) -> int:
    """Feeds the capture up to and including the snapshot's bridge; returns the next line."""
    lines = capture()
    for k, (local_ns, raw) in enumerate(lines):
        p.decoder.on_frame(raw, local_ns)
        if p.decoder.syncs[0].state == "SYNCED":
            return k + 1
    raise AssertionError("the capture never synced the book")


def test_malformed_frames_are_counted_and_a_lost_diff_is_a_gap(pipelines):
    p = pipelines("m", True)
    k = _sync(p)
    lines = capture()
    rest = lines[k : k + 3000]
    diffs = [i for i, (_, raw) in enumerate(rest) if b'"depthUpdate"' in raw[:128]]
    tickers = [i for i, (_, raw) in enumerate(rest) if b'"bookTicker"' in raw[:128]]
    lost = diffs[10]  # truncated: the checked parser names it, the diff is gone
    bad_ticker = tickers[5]  # a bookTicker cut short, before the lost diff
    assert bad_ticker < lost
    asked = p.snapshots_asked
    codes = []
    for i, (local_ns, raw) in enumerate(rest):
        if i in (lost, bad_ticker):
            raw = raw[: len(raw) // 2]
        seq = p.seq
        p.decoder.on_frame(raw, local_ns)
        codes.append(p.seq != seq)
        if i == lost - 1:
            book_before = p.levels()
        if i == lost:
            assert p.seq == seq and p.levels() == book_before  # nothing published or applied
    assert int(p.shm.ctl.instruments["n_bad_messages"][0]) == 2
    # the diff after the lost one does not chain (pu != last u): BookSync's gap, once
    assert [k for k, _, _ in p.router.told] == [ERR_BOOK_RESYNC]
    assert "depth gap" in p.router.told[0][2]
    assert int(p.shm.ctl.instruments["n_resyncs"][0]) == 1
    sync = p.decoder.syncs[0]
    assert sync.state == "WAIT_SNAPSHOT" and p.snapshots_asked == asked + 1
    assert p.decoder._tab[0, B_CHAIN] == -1  # the chain cell: no compiled step 5 until synced
    assert p.levels() == ([], [])  # the book cleared; later diffs buffered, not applied
    assert sync.buffered == len([d for d in diffs if d > lost])
    # bookTicker and trades kept flowing to the ring meanwhile
    assert all(codes[t] for t in tickers if t != bad_ticker)


def test_a_symbol_not_served_is_ignored_not_counted(pipelines):
    p = pipelines("s", True)
    _sync(p)
    seq = p.seq
    for _, raw in capture()[-2000:]:
        p.decoder.on_frame(raw.replace(b"ETHUSDT", b"BTCUSDT"), 0)
    assert p.seq == seq
    assert int(p.shm.ctl.instruments["n_bad_messages"][0]) == 0


def test_a_replay_shift_publishes_through_the_feed_as_the_checked_path_does(pipelines):
    fast, ref = pipelines("pf", True), pipelines("pr", False)
    for p in (fast, ref):
        p.feed.shift_ns = 1_000_000_007  # the sim's replay: now minus then
    lines = capture()[:20_000]
    for local_ns, raw in lines:
        s0 = fast.seq
        fast.decoder.on_frame(raw, local_ns)
        ref.decoder.on_frame(raw, local_ns)
        assert fast.seq == ref.seq
        if fast.seq != s0:
            assert fast.events(s0, fast.seq).tobytes() == ref.events(s0, ref.seq).tobytes()
    assert fast.decoder.syncs[0].state == "SYNCED"
    assert fast.seq > 100_000 and int(fast.shm.direct_events[0]) == 0
    assert fast.levels() == ref.levels()
