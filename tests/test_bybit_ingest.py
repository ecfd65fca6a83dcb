"""The compiled hot path of Bybit public frames (connector/bybit/_ingest.py) against the
checked path it short-cuts (market.parse_public, BookSync, the Feed), over the stream of
tests/bybit_stream.py (built from the real capture; with its injected faults: a delta
before the first snapshot, a mid-stream snapshot, a service restart with u = 1, a
replayed delta, seq going back, garbage frames) and over damaged real frames.

Two real decoders, each with a real ShmServer: one whose core offers its rings
(`direct_rings`: the live connector), one whose core does not, so that every frame goes
through the checked path. Fed the same frames, they must publish the same batches (the
feed recorder sees the same batches, event for event), leave the same ring, the same
book and the same BookSync state, tell the bots the same things and count the same
malformed frames; the direct one must have published the hot frames itself.
"""

from __future__ import annotations

import json
import os

import pytest

from connector.bybit import market as M
from connector.bybit._ingest import Y_SYNC
from connector.bybit.feed import OUT_EVENTS, BybitDecoder
from connector.bybit.marketdata import BybitInstrument
from connector.config import InstrumentConfig
from connector.feed import Feed
from hftlive.constants import ERR_BOOK_RESYNC
from tests import bybit_stream
from tests.bybit_stream import SYMBOL
from tests.ingest_pipeline import RingPipeline

ETH = InstrumentConfig(SYMBOL, 0.01, 0.001)


class Batches:
    """The feed recorder's two calls (connector.record.Recorder.tap/add): every batch
    published, as it saw it."""

    def __init__(self):
        self.seen: list[bytes] = []

    def tap(self, publish):
        def publish_and_record(inst, events, n):
            publish(inst, events, n)
            self.add(inst, events, n)

        return publish_and_record

    def add(self, inst, events, n):
        if n > 0:
            self.seen.append(events[:n].tobytes())


class Pipeline(RingPipeline):
    """A decoder, its book and a real ShmServer, as MarketData wires them (no sockets)."""

    def __init__(self, tag: str, direct: bool, depth: int = 50):
        self.batches = Batches()
        super().__init__(f"bying{tag}{os.getpid()}", "bybit", ETH, direct,
                         recorder=self.batches)  # fmt: skip
        self.inst = BybitInstrument(0, ETH, depth)
        self.asked = 0
        self.feed = Feed(self.core, [self.inst], on_need_snapshot=self._asked)
        self.decoder = BybitDecoder([self.inst], self.feed, depth=depth)
        self.decoder.compile()

    def _asked(self, _s) -> None:
        self.asked += 1

    def state(self):
        """Everything a frame may change besides the ring."""
        s = self.decoder.syncs[0]
        return (self.levels(), s.state, s.asked, s.last_u, s.last_seq, s.why,
                self.inst.exch_ts, self.inst.local_ts, self.decoder.gaps, self.asked,
                list(self.router.told), int(self.shm.ctl.instruments["n_bad_messages"][0]),
                int(self.shm.ctl.instruments["n_resyncs"][0]), len(self.batches.seen))  # fmt: skip


@pytest.fixture
def pipelines():
    made = []

    def make(tag: str, direct: bool, depth: int = 50) -> Pipeline:
        p = Pipeline(tag, direct, depth)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def _lockstep(fast: Pipeline, ref: Pipeline, frames) -> None:
    """Feeds both every frame; after each, the same ring, batches and state."""
    for local_ns, raw in frames:
        s0 = fast.seq
        fast.decoder.on_frame(raw, local_ns)
        ref.decoder.on_frame(raw, local_ns)
        assert fast.seq == ref.seq, raw[:160]
        if fast.seq != s0:
            assert fast.events(s0, fast.seq).tobytes() == ref.events(s0, ref.seq).tobytes(), raw[
                :160
            ]
        assert fast.state() == ref.state(), raw[:160]
    assert fast.batches.seen == ref.batches.seen


@pytest.mark.parametrize("inject", [False, True], ids=["clean", "faults"])
def test_the_stream_publishes_what_the_checked_path_publishes(pipelines, inject):
    st = bybit_stream.build(n_diffs=2500, inject=inject)
    fast, ref = pipelines("f", True), pipelines("r", False)
    _lockstep(fast, ref, st.frames)
    bids, asks = fast.levels()
    t = ETH.tick_size
    assert ({round(k * t, 8): q for k, q in bids}, {round(k * t, 8): q for k, q in asks}) == (
        st.final_bids, st.final_asks)  # fmt: skip
    # the hot frames went straight to the ring
    direct = int(fast.shm.direct_events[0])
    assert direct > 0.95 * fast.seq, (direct, fast.seq)
    assert int(ref.shm.direct_events[0]) == 0
    assert fast.shm.events_published() == [fast.seq] and ref.shm.events_published() == [ref.seq]
    if inject:  # the faults went through the checked path, as before: told, counted, asked
        resyncs = [m for k, _, m in fast.router.told if k == ERR_BOOK_RESYNC]
        assert len(resyncs) == 3 == fast.decoder.gaps == fast.asked
        assert "before any snapshot" in resyncs[0] and "does not follow" in resyncs[1]
        assert "went back" in resyncs[2]
        assert fast.state()[11] == st.injected["garbage"]
        assert fast.decoder.syncs[0].why == "snapshot"
    else:
        assert fast.router.told == [] and fast.decoder.gaps == 0


def _book_frame(kind, u, seq, b=(), a=(), depth=50, cts=5):
    m = {"topic": f"orderbook.{depth}.{SYMBOL}", "type": kind, "ts": cts + 1,
         "data": {"s": SYMBOL, "b": [list(x) for x in b], "a": [list(x) for x in a], "u": u,
                  "seq": seq}, "cts": cts}  # fmt: skip
    return json.dumps(m, separators=(",", ":")).encode()


SNAP = (("2681.62", "1"), ("2681.60", "2")), (("2681.63", "3"), ("2681.70", "4"))


def test_depth_1_an_unchanged_resend_publishes_nothing_and_a_restart_resets(pipelines):
    fast, ref = pipelines("1f", True, depth=1), pipelines("1r", False, depth=1)
    frames = [
        _book_frame("snapshot", 10, 100, *SNAP, depth=1),
        _book_frame("snapshot", 10, 100, *SNAP, depth=1),  # [BY] every 3 s, same u: nothing
        _book_frame("snapshot", 11, 101, [("2681.61", "1")], [("2681.64", "2")], depth=1),
        _book_frame("delta", 12, 102, [("2681.61", "0")], [], depth=1),
        _book_frame("delta", 1, 5, [("2681.50", "7")], [], depth=1),  # u = 1: restart
        _book_frame("snapshot", 1, 5, [("2681.50", "7")], [], depth=1),  # unchanged again
    ]
    seqs = []
    for k, raw in enumerate(frames):
        _lockstep(fast, ref, [(1000 + k, raw)])
        seqs.append(fast.seq)
    assert seqs[1] == seqs[0] and seqs[5] == seqs[4]  # the two resends
    assert fast.decoder.syncs[0].why == "service restart (u = 1)"
    assert int(fast.shm.direct_events[0]) == fast.seq == 1 + 4 + 1 + 2 + 1 + 2


def test_every_batch_kind_from_the_compiled_path_alone(pipelines):
    """A snapshot, a delta, an empty delta and two trades in one frame, each published
    by ingest_frame (not the Feed): what the checked path would publish."""
    fast, ref = pipelines("kf", True), pipelines("kr", False)
    trade = (b'{"topic":"publicTrade.ETHUSDT","type":"snapshot","ts":9,"data":['
             b'{"T":7,"s":"ETHUSDT","S":"Buy","v":"0.010","p":"2681.63","L":"PlusTick",'
             b'"i":"a","BT":false,"seq":1},{"T":8,"s":"ETHUSDT","S":"Sell","v":"0.25",'
             b'"p":"2681.62","BT":false,"RPI":null}]}')  # fmt: skip
    frames = [
        _book_frame("snapshot", 10, 100, *SNAP),
        _book_frame("delta", 12, 100, [("2681.62", "0"), ("2681.61", "5")], [("2681.63", "1")]),
        _book_frame("delta", 13, 101),
        trade,
    ]
    for k, raw in enumerate(frames):
        _lockstep(fast, ref, [(1000 + k, raw)])
        assert int(fast.shm.direct_events[0]) == fast.seq  # all of it through the ring table
    assert fast.seq == 5 + 3 + 0 + 2 == int(fast.shm.direct_events[0])
    assert len(fast.batches.seen) == 4  # snapshot, delta, and one per trade
    assert (fast.inst.exch_ts, fast.inst.local_ts) == (8_000_000, 1003)


def _damaged(raw: bytes):
    """Every truncation, every deletion of one byte, and replacements by bytes that break
    JSON or change a type, at every position."""
    for i in range(len(raw)):
        yield raw[:i]
        yield raw[:i] + raw[i + 1 :]
        for b in (b'"', b"\\", b" ", b"-", b"0", b"9", b"x", b"]", b"[", b"}", b",", b"{",
                  b"\xc3"):  # fmt: skip
            yield raw[:i] + b + raw[i + 1 :]
        yield raw[:i] + b"1" + raw[i:]


@pytest.mark.parametrize("kind", ["delta", "snapshot", "trade"])
def test_damaged_frames_take_what_the_checked_path_takes(pipelines, kind):
    """From a synced book, each damaged variant of a real frame: the same ring, book and
    state as the checked path (a malformed one counted and skipped, nothing applied;
    one the compiled path takes, exactly as parsed)."""
    fast, ref = pipelines("df", True), pipelines("dr", False)
    snap = _book_frame("snapshot", 100, 1000, *SNAP)
    if kind == "delta":
        raw = _book_frame("delta", 102, 1001, [("2681.61", "5"), ("2681.62", "0")],
                          [("2681.7", "1.5")])  # fmt: skip
    elif kind == "snapshot":
        raw = _book_frame("snapshot", 101, 1001, [("2681.61", "5")], [("2681.70", "1.5")])
    else:
        raw = (b'{"topic":"publicTrade.ETHUSDT","type":"snapshot","ts":9,"data":[{"T":7,'
               b'"s":"ETHUSDT","S":"Buy","v":"0.01","p":"2681.63","BT":false},{"T":8,'
               b'"S":"Sell","v":"2","p":"2681.6"}]}')  # fmt: skip
    taken = 0
    for k, bad in enumerate(_damaged(raw)):
        d0 = int(fast.shm.direct_events[0])
        _lockstep(fast, ref, [(k, snap), (k, bad)])
        taken += int(fast.shm.direct_events[0]) - d0 > 5  # more than the snapshot's
    assert int(fast.shm.ctl.instruments["n_bad_messages"][0]) > 500
    assert taken > 100  # digits changed in a level or an id: still the compiled path


def test_a_frame_larger_than_the_scratch_takes_the_checked_path(pipelines):
    fast, ref = pipelines("bf", True), pipelines("br", False)
    bids = [(f"{1000 + t * 0.01:.2f}", "1") for t in range(OUT_EVENTS + 10)]
    frames = [_book_frame("snapshot", 10, 100, bids, [("3000.00", "1")]),
              _book_frame("delta", 11, 101, [("1000.00", "0")], [])]  # fmt: skip
    _lockstep(fast, ref, [(1, frames[0])])
    assert int(fast.shm.direct_events[0]) == 0 and fast.seq > OUT_EVENTS
    assert fast.decoder.syncs[0]._cell.tolist() == [1, 10, 100]  # the checked path's state
    assert fast.decoder._tab[0, Y_SYNC + 1] == 10  # is the compiled path's
    _lockstep(fast, ref, [(2, frames[1])])
    assert int(fast.shm.direct_events[0]) == 1


def test_ids_beyond_int64_stay_with_the_checked_path(pipelines):
    fast, ref = pipelines("if", True), pipelines("ir", False)
    big = (1 << 63) + 5  # a u64 (orjson reads it), not an int64
    frames = [
        _book_frame("snapshot", big, 100, *SNAP),
        _book_frame("delta", big + 1, 101, [("2681.61", "5")]),
        _book_frame("delta", 12, 102, [("2681.61", "6")]),  # u went back: a gap
        _book_frame("snapshot", 20, 103, *SNAP),
        _book_frame("delta", 21, big, [("2681.61", "7")]),
        _book_frame("delta", 22, 104, [("2681.61", "8")]),  # seq went back: a gap
    ]
    _lockstep(fast, ref, [(k, f) for k, f in enumerate(frames)])
    assert fast.decoder.gaps == 2 and fast.decoder.syncs[0].state == M.WAIT


def test_a_replay_shift_publishes_through_the_feed(pipelines):
    fast, ref = pipelines("pf", True), pipelines("pr", False)
    for p in (fast, ref):
        p.feed.shift_ns = 1_000_000_007  # the sim's replay: now minus then
    _lockstep(fast, ref, bybit_stream.build(n_diffs=300).frames)
    assert fast.seq > 1000 and int(fast.shm.direct_events[0]) == 0


_D = (b'{"topic":"orderbook.50.ETHUSDT","type":"delta","ts":6,"data":{"s":"ETHUSDT",'
      b'"b":[["2681.61","5"]],"a":[],"u":102,"seq":1001},"cts":5}')  # fmt: skip
_T = (b'{"topic":"publicTrade.ETHUSDT","type":"snapshot","ts":9,"data":[{"T":7,"s":"ETHUSDT",'
      b'"S":"Buy","v":"0.01","p":"2681.63"}]}')  # fmt: skip


@pytest.mark.parametrize(
    "raw",
    [
        _D.replace(b'"seq":1001', b'"seq":1001,"u":103'),  # a repeated key: orjson keeps the last
        _D.replace(b'"b":[["2681.61","5"]],"a":[]', b'"a":[],"b":[["2681.61","5"]]'),
        _D.replace(b'"ts":6,', b'"ts":6, '),
        _D.replace(b'"delta"', b'"other"'),
        _D.replace(b'"ts":6,', b'"ts":6,"x":{"y":1},'),
        _D.replace(b'"u":102', b'"u":102.0'),
        _D.replace(b'"u":102', b'"u":-102'),
        _D.replace(b'"cts":5', b'"cts":9000000000001'),
        _D.replace(b'"s":"ETHUSDT"', b'"s":"BTCUSDT"'),
        _D.replace(b'"5"]]', b'"1e3"]]'),
        _D.replace(b'"orderbook.50.', b'"orderbook.200.'),  # not subscribed
        _D.replace(b'"type"', b'"typ\\u0065"'),
        _D.replace(
            b'{"topic":"orderbook.50.ETHUSDT","type":"delta",',
            b'{"type":"delta","topic":"orderbook.50.ETHUSDT",',
        ),  # fmt: skip
        _T.replace(b'[{"T"', b"[]}").split(b"]}")[0] + b"]}",  # no trade
        _T.replace(b'"v":"0.01"', b'"v":"0"'),
        _T.replace(b'"Buy"', b'"buy"'),
        _T.replace(b'"p":"2681.63"', b'"p":"2681.63","p":"1"'),
        _T.replace(b'"T":7', b'"T":"7"'),
        _T.replace(b'"v":"0.01"', b'"v":0.01'),
        _T.replace(b"publicTrade.ETHUSDT", b"publicTrade.ethusdt"),
    ],
)
def test_what_the_compiled_path_leaves_to_the_checked_one(pipelines, raw):
    fast, ref = pipelines("nf", True), pipelines("nr", False)
    _lockstep(fast, ref, [(1, _book_frame("snapshot", 100, 1000, *SNAP))])
    direct = int(fast.shm.direct_events[0])
    _lockstep(fast, ref, [(2, raw)])
    assert int(fast.shm.direct_events[0]) == direct, raw
    # and the frames it is cut from are the compiled path's
    _lockstep(fast, ref, [(3, _D), (4, _T)])
    assert int(fast.shm.direct_events[0]) > direct
