"""The whole real capture through the connector's own book and out to a bot's book.

`streams.MdInstrument` (a RecordingBook: the connector's per-instrument book) with a BookSync is
fed every depth message of ethusdt_20240808.gz in file order: diffs through
`sync.on_diff`, the capture's REST snapshot line through `sync.on_snapshot`, as
`streams.MarketData` does. Each batch of events it records is published into a real
shared-memory market segment with the connector's `ShmServer.publish` and consumed with
`botfn.md_consume`, the function a LiveBot runs, into a bot-side hash-map depth.

After every applied diff, the top 20 levels of both books must equal an independent
reference rebuilt from the raw JSON with plain dicts and Binance's documented rules
("How to manage a local order book correctly" [BN-OB], venue_protocols.md §1.4; steps
cited as BN-OB 1..6), and the best levels must equal the venue's own bookTicker stream.
"""

from __future__ import annotations

import bisect
import functools
import gzip
import json
import os
from decimal import Decimal
from pathlib import Path

import numba as nb
import numpy as np
import pytest

from connector.binancefutures.book_sync import SYNCED, Applied, BookSync, Gap, NeedSnapshot
from connector.binancefutures.protocol import (
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    Trade,
    parse_stream,
)
from connector.binancefutures.streams import MdInstrument
from connector.book import ASK_DEPTH, BID_DEPTH, CLEAR
from connector.config import ConnectorSection, InstrumentConfig
from connector.shmserver import ShmServer
from hftlive.botfn import md_consume, md_resync
from hftlive.constants import INVALID_MAX, INVALID_MIN
from hftlive.depth import HashMapMarketDepth, depth_init, depth_levels, ht_get
from hftlive.ipc import MdViews
from hftlive.layout import (
    C_RESYNCS,
    C_WORDS,
    D_BEST_ASK,
    D_BEST_BID,
    D_HIGH_ASK,
    D_LOW_BID,
    D_WORDS,
    DF_WORDS,
    L_WORDS,
    N_CAPACITY,
    N_WORDS,
    event_dtype,
    md_name,
    response_dtype,
)
from hftlive.shm import Segment

CAPTURE = Path(__file__).resolve().parents[2] / "shared/data/binancefutures/ethusdt_20240808.gz"
TOP = 20
TICK = Decimal("0.01")
BOT_DEPTH_CAPACITY = 1 << 14  # LiveBot's default (hftlive/bot.py)


@functools.cache
def capture() -> tuple[tuple[int, bytes], ...]:
    """(local ns, raw JSON) per line, in file order."""
    assert CAPTURE.exists(), f"capture not found: {CAPTURE} (tests read ../shared)"
    with gzip.open(CAPTURE, "rb") as f:
        return tuple(
            (int(ts), raw) for ts, raw in (line.rstrip(b"\n").split(b" ", 1) for line in f)
        )


def _tick(px: str) -> int:
    t = Decimal(px) / TICK
    assert t == t.to_integral_value(), px
    return int(t)


@nb.njit(cache=True, boundscheck=True)
def _walk(di, bk, bv, ak, av, n, out):
    """Top `n` levels per side read as a strategy reads them: from the best tick outward,
    tick by tick, with qty_at_tick (ht_get). out[0] bids, out[1] asks: rows (tick, qty)."""
    counts = np.zeros(2, np.int64)
    for side in range(2):
        keys, vals = (bk, bv) if side == 0 else (ak, av)
        t = di[D_BEST_BID] if side == 0 else di[D_BEST_ASK]
        end = di[D_LOW_BID] if side == 0 else di[D_HIGH_ASK]
        step = -1 if side == 0 else 1
        k = 0
        while k < n and (t >= end if side == 0 else t <= end):
            q = ht_get(keys, vals, t)
            if q > 0.0:
                out[side, k, 0] = t
                out[side, k, 1] = q
                k += 1
            t += step
        counts[side] = k
    return counts


def walk_top(depth_arrays, n: int) -> tuple[list, list]:
    """(bids, asks) as lists of (tick, qty), best first; depth_arrays = (di, bk, bv, ak, av)."""
    out = np.zeros((2, n, 2))
    counts = _walk(*depth_arrays, n, out)
    return tuple(
        [(int(t), float(q)) for t, q in out[side, : counts[side]].tolist()] for side in (0, 1)
    )


def table_levels(keys, vals, descending: bool) -> list:
    """Every level held in a hash-map side, best first, crossed or not."""
    t, q = depth_levels(keys, vals, descending, keys.shape[0])
    return list(zip(t.tolist(), q.tolist()))


class RawBook:
    """BN-OB read plainly from the raw JSON: exact ticks (Decimal), qty = float(text)."""

    def __init__(self) -> None:
        self.pending: list[dict] = []  # BN-OB 1: diffs buffered until the snapshot
        self.sides: dict[str, dict[int, float]] | None = None
        self.ticks: dict[str, list[int]] = {"b": [], "a": []}  # sorted ascending
        self.last_u: int | None = None
        self.applied: list[dict] = []

    def on_snapshot(self, snap: dict) -> None:
        self.sides = {"b": {}, "a": {}}
        for side, levels in (("b", snap["bids"]), ("a", snap["asks"])):
            for px, qty in levels:
                self._set(side, px, qty)
        last = snap["lastUpdateId"]
        kept = [d for d in self.pending if d["u"] >= last]  # BN-OB 3: drop u < lastUpdateId
        assert kept[0]["U"] <= last <= kept[0]["u"]  # BN-OB 4
        self.pending = []
        for d in kept:
            self.on_diff(d)

    def on_diff(self, d: dict) -> bool:
        """True if the diff was applied to the book."""
        if self.sides is None:
            self.pending.append(d)
            return False
        if self.last_u is not None:
            assert d["pu"] == self.last_u  # BN-OB 5 (the capture has no gap)
        for side in ("b", "a"):
            for px, qty in d[side]:
                self._set(side, px, qty)
        self.last_u = d["u"]
        self.applied.append(d)
        return True

    def _set(self, side: str, px: str, qty: str) -> None:
        t, q = _tick(px), float(qty)
        book, ticks = self.sides[side], self.ticks[side]
        if q == 0.0:  # BN-OB 6: qty 0 removes; an absent level is fine
            if book.pop(t, None) is not None:
                del ticks[bisect.bisect_left(ticks, t)]
        else:
            if t not in book:
                bisect.insort(ticks, t)
            book[t] = q

    def top(self, n: int | None = None) -> tuple[list, list]:
        b, a = self.sides["b"], self.sides["a"]
        bt, at = self.ticks["b"][::-1], self.ticks["a"]
        return [(t, b[t]) for t in bt[:n]], [(t, a[t]) for t in at[:n]]


class BotDepth:
    """A bot's depth of one asset, fed from the market segment as LiveBot feeds it."""

    def __init__(self, md: MdViews, snap_capacity: int):
        cap = BOT_DEPTH_CAPACITY
        self.di, self.df = np.zeros(D_WORDS, np.int64), np.zeros(DF_WORDS, np.float64)
        self.bk, self.bv = np.empty(cap, np.int64), np.empty(cap, np.float64)
        self.ak, self.av = np.empty(cap, np.int64), np.empty(cap, np.float64)
        depth_init(self.di, self.df, self.bk, self.bv, self.ak, self.av, 0.01, 0.001)
        self.depth = HashMapMarketDepth(self.di, self.df, self.bk, self.bv, self.ak, self.av)
        self.md = md
        self.cursor = np.zeros(1, np.int64)
        self.trades = np.zeros(256, event_dtype)
        self.trade_n = np.zeros(N_WORDS, np.int64)
        self.trade_n[N_CAPACITY] = len(self.trades)
        self.latency = np.zeros(L_WORDS, np.int64)
        self.scratch = np.zeros(256, event_dtype)
        self.snap_scratch = np.zeros(snap_capacity, event_dtype)
        self.ctrl = np.zeros(C_WORDS, np.int64)
        self.cbq = np.zeros(64, response_dtype)

    def arrays(self) -> tuple:
        return self.di, self.df, self.bk, self.bv, self.ak, self.av

    def resync(self) -> None:
        """What a bot does when it attaches: the book from the connector's snapshot."""
        m = self.md
        md_resync(m.words, m.snapshot, self.cursor, 0, self.arrays(), self.snap_scratch,
                  self.ctrl, self.cbq, False)  # fmt: skip

    def consume(self) -> None:
        m = self.md
        md_consume(m.words, m.ring, m.snapshot, self.cursor, 0, self.arrays(), self.trades,
                   self.trade_n, self.latency, self.scratch, self.snap_scratch, self.ctrl,
                   self.cbq)  # fmt: skip

    def top(self, n: int) -> tuple[list, list]:
        return walk_top((self.di, self.bk, self.bv, self.ak, self.av), n)

    def levels(self) -> tuple[list, list]:
        return table_levels(self.bk, self.bv, True), table_levels(self.ak, self.av, False)


def connector_top(inst: MdInstrument, n: int) -> tuple[list, list]:
    b = inst.book
    return walk_top((b.di, b.bk, b.bv, b.ak, b.av), n)


def connector_levels(inst: MdInstrument) -> tuple[list, list]:
    b = inst.book
    return table_levels(b.bk, b.bv, True), table_levels(b.ak, b.av, False)


@pytest.fixture
def shm():
    cfg = ConnectorSection(md_capacity=1 << 16, snapshot_capacity=8192)
    s = ShmServer(f"bfcap{os.getpid()}", "binancefutures",
                  [InstrumentConfig("ethusdt", 0.01, 0.001)], cfg)  # fmt: skip
    seg = Segment.attach(md_name(s.name, "ethusdt"))
    try:
        yield s, MdViews(seg.buf), cfg.snapshot_capacity
    finally:
        seg.close()
        s.close()


def assert_batch_is_the_diff(ev: np.ndarray, raw: dict) -> None:
    """A synced diff publishes exactly its levels, bids then asks, as sent (BN-OB 6)."""
    want = [(BID_DEPTH, float(p), float(q)) for p, q in raw["b"]]
    want += [(ASK_DEPTH, float(p), float(q)) for p, q in raw["a"]]
    got = list(zip(ev["ev"].tolist(), ev["px"].tolist(), ev["qty"].tolist()))
    assert got == want, raw["u"]


def test_whole_capture_connector_book_and_bot_book_match_the_raw_reference(shm):
    server, md, snap_cap = shm
    inst = MdInstrument(0, InstrumentConfig("ethusdt", 0.01, 0.001))
    sync = BookSync(inst)
    bot, late = BotDepth(md, snap_cap), BotDepth(md, snap_cap)
    bot.resync()  # an empty book at sequence 0, as a bot attaching before any data
    ref = RawBook()
    tickers = sorted(
        (m for _, raw in capture() if isinstance(m := parse_stream(raw), BookTicker)),
        key=lambda t: t.update_id,
    )
    ticker_u = [t.update_id for t in tickers]
    n_diffs = n_applied = n_batches = n_compared = 0
    need = 0
    for local_ns, raw in capture():
        if b'"depthUpdate"' not in raw[:128] and b'"lastUpdateId"' not in raw[:32]:
            continue
        msg = parse_stream(raw)
        inst.local_ts = local_ns
        inst.exch_ts = msg.transact_ts_ns
        if isinstance(msg, DepthSnapshot):
            actions = sync.on_snapshot(msg)
            ref.on_snapshot(json.loads(raw))
            assert sync.state == SYNCED
        else:
            assert isinstance(msg, DepthUpdate)
            n_diffs += 1
            actions = sync.on_diff(msg)
            applied_by_ref = ref.on_diff(json.loads(raw)["data"])
            assert any(isinstance(a, Applied) for a in actions) == applied_by_ref
        assert not any(isinstance(a, Gap) for a in actions)
        need += sum(isinstance(a, NeedSnapshot) for a in actions)
        applied = [a.update for a in actions if isinstance(a, Applied)]
        n_applied += len(applied)
        assert n_applied == len(ref.applied)
        ev = inst.batch.ev[: inst.batch.n]
        if isinstance(msg, DepthUpdate) and applied == [msg]:
            assert_batch_is_the_diff(ev, ref.applied[-1])
        elif isinstance(msg, DepthSnapshot):
            assert ev["ev"][0] == CLEAR  # the snapshot replaces whatever the bot held
        # publish as MarketData._publish does, then consume as the bot does
        if inst.batch.n:
            server.publish(0, inst.batch.ev, inst.batch.n)
            inst.batch.n = 0
            n_batches += 1
        bot.consume()
        if not applied:
            # buffered (BN-OB 1) or dropped (BN-OB 3): nothing reaches the bot
            assert bot.depth.best_bid_tick == INVALID_MIN
            assert bot.depth.best_ask_tick == INVALID_MAX
            continue
        want = ref.top(TOP)
        assert connector_top(inst, TOP) == want, ref.last_u
        assert bot.top(TOP) == want, ref.last_u
        assert bot.depth.best_bid_tick == want[0][0][0]
        assert bot.depth.best_ask_tick == want[1][0][0]
        # the venue's own BBO stream: the last bookTicker at or before this u is the top
        t = tickers[bisect.bisect_right(ticker_u, ref.last_u) - 1]
        assert (inst.book.best_bid_tick, inst.book.best_ask_tick) == (
            _tick(f"{t.bid_px:.2f}"),
            _tick(f"{t.ask_px:.2f}"),
        )
        assert (want[0][0][1], want[1][0][1]) == (t.bid_qty, t.ask_qty)
        n_compared += 1
        if n_applied % 500 == 0:
            # every level, not only the top: nothing stale is left anywhere in the tables
            assert connector_levels(inst) == bot.levels() == ref.top(), ref.last_u
            assert inst.book.bid_levels(TOP) == want[0] and inst.book.ask_levels(TOP) == want[1]
            # a bot attaching now starts from the connector's snapshot (_snapshot_loop)
            server.write_snapshot(0, inst.book, inst.exch_ts)
            late.resync()
            assert late.levels() == ref.top()
            late.consume()  # nothing published since: still the same book
            assert late.top(TOP) == want

    # Golden counts: every line parsed into its kind; 5 diffs precede lastUpdateId
    # 5123107856276 (BN-OB 3); every later diff applied, none silently dropped.
    assert n_diffs == 6586 and need == 1
    assert n_applied == len(ref.applied) == n_diffs - 5
    # one batch, and one comparison, per venue message: the snapshot's also carries the
    # two buffered diffs from its bridge on
    assert n_batches == n_compared == n_applied - 1
    assert connector_levels(inst) == bot.levels() == ref.top()
    assert bot.ctrl[C_RESYNCS] == 0  # the bot never fell behind the ring
    assert bot.trade_n[0] == 0  # depth diffs are not trades
    snap = next(json.loads(r) for _, r in capture() if b'"lastUpdateId"' in r[:32])
    assert ref.applied[0]["U"] <= snap["lastUpdateId"] == ref.applied[0]["u"]


def test_every_book_ticker_and_trade_of_the_capture_parses_to_its_raw_fields():
    n_tickers = n_trades = 0
    prev_trade_id = None
    prev_ticker_u = 0
    for _, raw in capture():
        if b"@bookTicker" not in raw[:40] and b"@trade" not in raw[:40]:
            continue
        msg, d = parse_stream(raw), json.loads(raw)["data"]
        if d["e"] == "bookTicker":
            assert isinstance(msg, BookTicker)
            assert msg == BookTicker(
                "ethusdt", d["u"], d["E"] * 1_000_000, d["T"] * 1_000_000,
                float(d["b"]), float(d["B"]), float(d["a"]), float(d["A"]),
            )  # fmt: skip
            assert msg.update_id > prev_ticker_u  # §1.3: u increases strictly
            prev_ticker_u = msg.update_id
            n_tickers += 1
        else:
            assert d["e"] == "trade" and isinstance(msg, Trade)
            assert msg == Trade(
                "ethusdt", d["t"], d["E"] * 1_000_000, d["T"] * 1_000_000,
                float(d["p"]), float(d["q"]), d["m"], d["X"],
            )  # fmt: skip
            if prev_trade_id is not None:
                assert msg.trade_id == prev_trade_id + 1  # §1.3: contiguous trade ids
            prev_trade_id = msg.trade_id
            n_trades += 1
    assert (n_tickers, n_trades) == (53992, 14076)
    assert n_tickers + n_trades + 6586 + 1 == len(capture())  # nothing else in the file
