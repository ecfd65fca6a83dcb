"""Bybit public market data, pure side: connector/bybit/market.py's parser and book-sync
table (one test per row, named after it), and connector/bybit/feed.py's decoder over a
recorded-format stream built from the real capture (tests/bybit_stream.py), checked after
every frame against an independent reference written here from Bybit's rules
(venue_protocols.md §2.2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.book import ASK_DEPTH, BID_DEPTH, CLEAR, RecordingBook
from connector.bybit import market as M
from connector.bybit.feed import BybitDecoder, capture_decoder
from connector.config import InstrumentConfig
from connector.core import ConnectorCore
from connector.errors import UsageError, VenueProtocolError
from connector.feed import Feed
from hftlive.constants import BUY, ERR_BOOK_RESYNC, SELL
from tests import bybit_stream
from tests.bybit_stream import Shm
from tests.conftest import RecordingRouter

FIX = Path(__file__).parent / "fixtures" / "bybit"


def fixture(name: str) -> bytes:
    return (FIX / f"public_{name}.json").read_bytes().strip()


def book(symbol: str = "BTCUSDT", tick: float = 0.1, lot: float = 0.001) -> RecordingBook:
    return RecordingBook(0, InstrumentConfig(symbol, tick, lot))


def levels(b: RecordingBook) -> tuple[dict, dict]:
    """The connector book's levels, px -> qty."""
    d, t = b.book, b.tick_size
    bids = {round(k * t, 8): q for k, q in d.bid_levels(10_000)}
    asks = {round(k * t, 8): q for k, q in d.ask_levels(10_000)}
    return bids, asks


def frame(kind: str, u: int, seq: int, b=(), a=(), depth: int = 50) -> M.BookFrame:
    raw = json.dumps({"topic": f"orderbook.{depth}.BTCUSDT", "type": kind, "ts": 2, "cts": 1,
                      "data": {"s": "BTCUSDT", "b": list(b), "a": list(a), "u": u, "seq": seq}})  # fmt: skip
    f = M.parse_public(raw)
    assert type(f) is M.BookFrame
    return f


SNAP = (("100.0", "1"), ("99.9", "2")), (("100.1", "3"), ("100.2", "4"))


def synced(u: int = 10, seq: int = 100) -> M.BookSync:
    s = M.BookSync(book())
    assert s.on_frame(frame("snapshot", u, seq, *SNAP)) == M.RESET
    return s


# -------------------------------------------------------------------------- parsing


def test_parse_snapshot_fixture_renames_and_converts_ms_to_ns():
    f = M.parse_public(fixture("orderbook_snapshot"))
    assert type(f) is M.BookFrame
    assert (f.topic, f.depth, f.symbol, f.snapshot) == ("orderbook.50.BTCUSDT", 50, "BTCUSDT", True)
    assert (f.update_id, f.seq) == (21111422, 457538796400)
    assert (f.ts_ns, f.cts_ns) == (1758845431663_000_000, 1758845431660_000_000)
    assert f.bids.tolist() == [[109147.8, 1.687], [109147.7, 0.004], [109147.5, 2.1]]
    assert f.asks.tolist() == [[109148.0, 0.25], [109148.1, 3.0], [109148.4, 0.013]]


def test_parse_delta_fixture_keeps_zero_sizes_and_the_fast_path_equals_the_checked_one():
    raw = fixture("orderbook_delta")
    f = M.parse_public(raw)
    assert not f.snapshot and f.update_id == 21111423
    assert f.bids.tolist() == [[109147.8, 1.5], [109147.6, 0.7], [109147.5, 0.0]]
    assert f.asks.tolist() == [[109148.0, 0.0]]
    # the checked path (whitespace defeats the byte scanner) reads the same frame
    slow = M.parse_public(json.dumps(json.loads(raw), indent=1))
    assert slow.bids.tolist() == f.bids.tolist() and slow.asks.tolist() == f.asks.tolist()
    assert (slow.update_id, slow.seq, slow.cts_ns) == (f.update_id, f.seq, f.cts_ns)


def test_parse_level1_fixture_with_ts_before_type():
    f = M.parse_public(fixture("orderbook1_snapshot"))
    assert (f.depth, f.snapshot, f.bids.tolist(), f.asks.tolist()) == (
        1, True, [[109147.8, 1.5]], [[109148.1, 3.0]])  # fmt: skip


def test_parse_trade_fixture_taker_side_and_times():
    f = M.parse_public(fixture("trade"))
    assert type(f) is M.TradeFrame and f.symbol == "BTCUSDT"
    assert f.trades == [(1758845431688_000_000, BUY, 109148.0, 0.01),
                        (1758845431689_000_000, SELL, 109147.8, 0.25)]  # fmt: skip


def test_parse_replies():
    ok, bad, pong = (
        M.parse_public(fixture(n)) for n in ("subscribe_reply", "subscribe_error", "pong")
    )
    assert (ok.op, ok.success, ok.req_id, ok.is_pong) == ("subscribe", True, "sub", False)
    assert (bad.success, bad.ret_msg) == (
        False,
        "error:handler not found,topic:orderbook.50.NOSUCH",
    )
    assert pong.is_pong and pong.req_id == "ping-1"
    assert type(M.parse_public(b'{"topic":"tickers.BTCUSDT","data":{}}')) is M.OtherTopic


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b'{"topic":"orderbook.50.BTCUSDT","type":"delta"', "malformed JSON"),
        (b"[1]", "JSON object"),
        (
            b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"cts":1,'
            b'"data":{"s":"BTCUSDT","b":[],"a":[],"seq":1}}',
            "missing field 'u'",
        ),
        (
            b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"cts":1,'
            b'"data":{"s":"BTCUSDT","b":[["x","1"]],"a":[],"u":2,"seq":1}}',
            "b[0]",
        ),
        (
            b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":"1","cts":1,'
            b'"data":{"s":"BTCUSDT","b":[],"a":[],"u":2,"seq":1}}',
            "'ts' must be integer",
        ),
        (
            b'{"topic":"orderbook.50.BTCUSDT","type":"both","ts":1,"cts":1,'
            b'"data":{"s":"BTCUSDT","b":[],"a":[],"u":2,"seq":1}}',
            "'type'",
        ),
        (
            b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"cts":1,'
            b'"data":{"s":"ETHUSDT","b":[],"a":[],"u":2,"seq":1}}',
            "topic's symbol",
        ),
        (b'{"topic":"publicTrade.BTCUSDT","data":[{"T":1,"v":"1","p":"1"}]}', "data[0].S"),
        (b'{"topic":"publicTrade.BTCUSDT","data":[{"T":1,"S":"Buy","v":"0","p":"1"}]}', "positive"),
        (b'{"success":true}', "neither topic nor op"),
    ],
)
def test_malformed_frames_raise_a_specific_error(raw, says):
    with pytest.raises(VenueProtocolError, match=None) as e:
        M.parse_public(raw)
    assert says in str(e.value)


def test_requests_and_topics():
    assert M.book_topic(50, "btcusdt") == "orderbook.50.BTCUSDT"
    assert M.trade_topic("BTCUSDT") == "publicTrade.BTCUSDT"
    with pytest.raises(UsageError, match="500"):
        M.book_topic(500, "BTCUSDT")  # gone since 2025-09-30
    assert json.loads(M.request("ping", "p1")) == {"req_id": "p1", "op": "ping"}
    (one,) = M.subscribe_requests("subscribe", ["a", "b"], "s")
    assert json.loads(one) == {"req_id": "s", "op": "subscribe", "args": ["a", "b"]}
    many = M.subscribe_requests(
        "subscribe", [f"orderbook.1000.SYM{i:05d}" for i in range(2000)], "s"
    )
    assert len(many) > 1 and all(len(",".join(json.loads(r)["args"])) < 21_000 for r in many)
    assert sum(len(json.loads(r)["args"]) for r in many) == 2000


# --------------------------------------------------------------- the table, row by row


def test_row_wait_snapshot_clear_apply_reset():
    s = M.BookSync(book())
    assert s.on_frame(frame("snapshot", 10, 100, *SNAP)) == M.RESET
    assert s.state == M.SYNCED and (s.last_u, s.last_seq) == (10, 100)
    assert levels(s.book) == ({100.0: 1.0, 99.9: 2.0}, {100.1: 3.0, 100.2: 4.0})


def test_row_wait_delta_u1_clear_apply_reset():
    s = M.BookSync(book())
    assert s.on_frame(frame("delta", 1, 5, [["50.0", "1"]])) == M.RESET
    assert s.state == M.SYNCED and levels(s.book) == ({50.0: 1.0}, {})


def test_row_wait_delta_no_snapshot_asked_gap():
    s = M.BookSync(book())
    assert s.on_frame(frame("delta", 11, 101, [["100.0", "5"]])) == M.GAP
    assert s.state == M.WAIT and s.asked and "before any snapshot" in s.why
    assert levels(s.book) == ({}, {})


def test_row_wait_delta_snapshot_asked_dropped():
    s = synced()
    assert s.on_frame(frame("delta", 10, 101)) == M.GAP
    assert s.on_frame(frame("delta", 12, 102, [["100.0", "5"]])) == M.DROPPED
    assert levels(s.book) == ({}, {}) and s.state == M.WAIT
    assert s.on_frame(frame("snapshot", 13, 103, *SNAP)) == M.RESET and not s.asked


def test_row_synced_snapshot_depth1_same_u_unchanged():
    s = M.BookSync(book())
    one = (("100.0", "1"),), (("100.1", "3"),)
    assert s.on_frame(frame("snapshot", 7, 100, *one, depth=1)) == M.RESET
    s.book.batch.n = 0
    assert s.on_frame(frame("snapshot", 7, 100, *one, depth=1)) == M.UNCHANGED
    assert s.book.batch.n == 0  # nothing recorded: the bots see nothing
    assert s.on_frame(frame("snapshot", 8, 101, (("100.0", "2"),), (), depth=1)) == M.RESET
    assert levels(s.book) == ({100.0: 2.0}, {})


def test_row_synced_snapshot_otherwise_clear_apply_reset():
    s = synced()
    s.book.batch.n = 0
    assert s.on_frame(frame("snapshot", 10, 100, [["98.0", "1"]], [["101.0", "1"]])) == M.RESET
    assert levels(s.book) == ({98.0: 1.0}, {101.0: 1.0})  # nothing of the old book is left
    assert s.book.batch.ev["ev"][0] == CLEAR  # the bots' books are cleared first


def test_row_synced_delta_u1_clear_apply_reset():
    s = synced(u=500)
    assert s.on_frame(frame("delta", 1, 7, [["90.0", "1"]])) == M.RESET
    assert "restart" in s.why and levels(s.book) == ({90.0: 1.0}, {}) and s.last_u == 1


def test_row_synced_delta_non_increasing_u_gap():
    for u in (10, 9):
        s = synced(u=10)
        assert s.on_frame(frame("delta", u, 200, [["100.0", "9"]])) == M.GAP
        assert s.state == M.WAIT and levels(s.book) == ({}, {}) and "does not follow" in s.why


def test_row_synced_delta_seq_back_gap():
    s = synced(u=10, seq=100)
    assert s.on_frame(frame("delta", 11, 99)) == M.GAP
    assert "seq 99 went back" in s.why and levels(s.book) == ({}, {})


def test_row_synced_delta_otherwise_apply():
    s = synced(u=10, seq=100)
    # [BY] size "0" deletes, an unknown price inserts, a known price updates
    d = frame("delta", 11, 100, [["100.0", "0"], ["99.8", "5"], ["99.9", "2.5"]], [["100.1", "0"]])
    assert s.on_frame(d) == M.APPLIED
    assert levels(s.book) == ({99.9: 2.5, 99.8: 5.0}, {100.2: 4.0})
    # UNCONFIRMED +1: a jump in u is applied, not a gap
    assert s.on_frame(frame("delta", 50, 101, [["99.7", "1"]])) == M.APPLIED and s.last_u == 50


def test_row_any_reset_clear_wait():
    s = synced()
    s.reset("reconnect")
    assert s.state == M.WAIT and not s.asked and levels(s.book) == ({}, {})
    # after a reset (a new connection) a delta first is again a gap
    assert s.on_frame(frame("delta", 11, 101)) == M.GAP


# ------------------------------------------------------- the decoder through a real core


def decoder(symbol="ETHUSDT", tick=0.01, lot=0.001, depth=50):
    cfg = InstrumentConfig(symbol, tick, lot)
    shm, router = Shm(tick, lot), RecordingRouter()
    core = ConnectorCore(shm, router, [cfg])
    b = RecordingBook(0, cfg)
    asked: list[str] = []
    feed = Feed(core, [b], on_need_snapshot=lambda s: asked.append(s.symbol))
    d = BybitDecoder([b], feed, depth=depth)
    d.compile()
    return d, b, shm, router, asked


def bot_levels(shm: Shm, tick: float) -> tuple[dict, dict]:
    d = shm.bot
    return ({round(k * tick, 8): q for k, q in d.bid_levels(10_000)},
            {round(k * tick, 8): q for k, q in d.ask_levels(10_000)})  # fmt: skip


class Reference:
    """Bybit's rules (§2.2) over the raw JSON, in plain dicts: not the connector's code."""

    def __init__(self):
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.synced = self.asked = False
        self.last_u = self.last_seq = 0
        self.gaps = self.bad = 0

    def on(self, raw: bytes) -> None:
        try:
            m = json.loads(raw)
            if not m["topic"].startswith("orderbook."):
                for t in m["data"]:
                    assert t["S"] in ("Buy", "Sell")
                return
            d = m["data"]
            kind, u, seq, b, a = m["type"], d["u"], d["seq"], d["b"], d["a"]
            b = [(float(p), float(q)) for p, q in b]
            a = [(float(p), float(q)) for p, q in a]
        except (ValueError, KeyError, AssertionError):
            self.bad += 1
            return
        if kind == "snapshot" or u == 1:
            self.bids, self.asks = dict(b), dict(a)
            self.synced, self.asked, self.last_u, self.last_seq = True, False, u, seq
            return
        if not self.synced or u <= self.last_u or seq < self.last_seq:
            if not self.asked:  # a delta while waiting for the snapshot asked for: dropped
                self.gaps += 1
                self.bids, self.asks = {}, {}
                self.synced, self.asked = False, True
            return
        for side, lv in ((self.bids, b), (self.asks, a)):
            for p, q in lv:
                if q == 0:
                    side.pop(p, None)
                else:
                    side[p] = q
        self.last_u, self.last_seq = u, seq


def test_recorded_stream_book_equals_the_reference_after_every_frame():
    st = bybit_stream.build()
    assert st.injected == {"delta_before_snapshot": 1, "restart": 1, "mid_snapshot": 1,
                           "replayed_delta": 1, "seq_back": 1, "garbage": 16}  # fmt: skip
    d, b, shm, router, asked = decoder()
    ref = Reference()
    n_book = 0
    for local_ns, raw in st.frames:
        d.on_frame(raw, local_ns)
        ref.on(raw)
        if raw.startswith(b'{"topic":"orderbook.'):
            n_book += 1
        # the connector's book and the bot's (from the published events) equal the reference
        assert levels(b) == (ref.bids, ref.asks), n_book
        assert bot_levels(shm, 0.01) == (ref.bids, ref.asks), n_book
    assert n_book > 1000
    # every gap told to the bots (ERR_BOOK_RESYNC), counted, and a snapshot asked for
    resyncs = [m for k, _, m in router.told if k == ERR_BOOK_RESYNC]
    assert ref.gaps == 3 == len(resyncs) == shm.resyncs == d.gaps == len(asked)
    assert "before any snapshot" in resyncs[0] and "does not follow" in resyncs[1]
    assert "went back" in resyncs[2]
    assert ref.bad == shm.bad == st.injected["garbage"]
    # the stream ends synced on the venue's own view; every trade printed, taker side
    assert (ref.bids, ref.asks) == (st.final_bids, st.final_asks)
    assert shm.trades == [(BUY if s == "Buy" else SELL, p, q) for s, p, q in st.trades]
    assert len(st.trades) > 100


def test_a_frame_publishes_one_batch_stamped_with_cts_and_the_local_time():
    d, b, shm, *_ = decoder("BTCUSDT", 0.1, 0.001)
    d.on_frame(fixture("orderbook_snapshot"), 123)
    d.on_frame(fixture("orderbook_delta"), 456)
    snap, delta = shm.events
    assert snap["ev"].tolist() == [CLEAR] + [BID_DEPTH] * 3 + [ASK_DEPTH] * 3
    assert set(snap["exch_ts"].tolist()) == {1758845431660_000_000}
    assert set(snap["local_ts"].tolist()) == {123}
    assert list(zip(delta["ev"].tolist(), delta["px"].tolist(), delta["qty"].tolist())) == [
        (BID_DEPTH, 109147.8, 1.5), (BID_DEPTH, 109147.6, 0.7), (BID_DEPTH, 109147.5, 0.0),
        (ASK_DEPTH, 109148.0, 0.0)]  # fmt: skip
    assert set(delta["exch_ts"].tolist()) == {1758845431682_000_000}
    d.on_frame(fixture("trade"), 789)
    assert shm.trades == [(BUY, 109148.0, 0.01), (SELL, 109147.8, 0.25)]
    assert shm.events[-2]["exch_ts"][0] == 1758845431688_000_000


def test_malformed_frame_is_counted_and_loses_nothing():
    d, b, shm, router, _ = decoder("BTCUSDT", 0.1, 0.001)
    d.on_frame(fixture("orderbook_snapshot"), 1)
    before = levels(b)
    for raw in (
        b"{",
        b'{"topic":"orderbook.50.BTCUSDT"}',
        b"\xff\xfe",
        fixture("orderbook_delta")[:-5],
    ):
        d.on_frame(raw, 2)
    assert shm.bad == 4 and levels(b) == before and router.told == []
    d.on_frame(fixture("orderbook_delta"), 3)  # the stream goes on where it was
    assert levels(b)[1] == {109148.1: 3.0, 109148.4: 0.013}


def test_other_depths_and_symbols_are_ignored_live_and_the_capture_decoder_locks_one_depth():
    d, b, shm, *_ = decoder("BTCUSDT", 0.1, 0.001, depth=50)
    d.on_frame(fixture("orderbook1_snapshot"), 1)  # depth 1: not subscribed
    assert shm.events == []
    cfg = InstrumentConfig("BTCUSDT", 0.1, 0.001)
    s2 = Shm(0.1, 0.001)
    rb = RecordingBook(0, cfg)
    cd = capture_decoder([rb], Feed(ConnectorCore(s2, RecordingRouter(), [cfg]), [rb]))
    cd.on_frame(fixture("orderbook_snapshot"), 1)  # the first depth seen: 50
    cd.on_frame(fixture("orderbook1_snapshot"), 2)  # another depth of the same symbol
    assert levels(rb)[0] == {109147.8: 1.687, 109147.7: 0.004, 109147.5: 2.1}


def test_reset_clears_every_book_and_tells_the_bots_once_each():
    d, b, shm, router, _ = decoder("BTCUSDT", 0.1, 0.001)
    d.on_frame(fixture("orderbook_snapshot"), 1)
    d.reset("reconnect", 5)
    assert levels(b) == ({}, {}) and bot_levels(shm, 0.1) == ({}, {})
    assert [(k, m) for k, _, m in router.told] == [
        (ERR_BOOK_RESYNC, "BTCUSDT: book reset (reconnect)")
    ]
    d.on_frame(fixture("orderbook_restart"), 6)  # u = 1 after a reset: a snapshot
    assert levels(b) == ({109100.0: 1.0}, {109100.1: 2.0})
