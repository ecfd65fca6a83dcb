"""A recorded-format Bybit public stream, built deterministically from the real Binance
capture (../shared/data/binancefutures/ethusdt_20240808.gz), for tests and the bench.

The venue's book: the capture's REST snapshot, then its depth diffs in file order (those
with u >= lastUpdateId, as Binance's local-book rules say). Bybit's `orderbook.{depth}`
shows the best `depth` levels of each side: a snapshot is that view, a delta the levels of
the view that changed since the previous frame (size "0": the level left the view). The
frames carry the capture's times (`ts` = E, `cts` = T), a `u` that grows by 1 or 2 (Bybit
does not promise +1: venue_protocols.md §5) and a growing `seq`. Market trades become
`publicTrade` frames (`S` the taker's side: a buyer-maker trade was a Sell).

`build(...)` injects, at fixed places: a delta before the first snapshot, a mid-stream
snapshot, a service restart (a snapshot with u = 1, then u counting from there), a
replayed delta (non-increasing u) followed by deltas the client must drop until the
fresh snapshot it asked for, a delta whose seq goes back (likewise), and garbage frames
(truncated JSON, a missing field, a bad level, a trade without a side). Garbage frames
are extra copies: the venue's stream itself stays whole.
"""

from __future__ import annotations

import bisect
import functools
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from connector.book import BUY_TRADE, SELL_TRADE
from hftlive.constants import BUY, SELL
from hftlive.depth import DepthBook, apply_depth_event
from tests.conftest import RecordingShm

CAPTURE = Path(__file__).resolve().parents[2] / "shared/data/binancefutures/ethusdt_20240808.gz"
SYMBOL = "ETHUSDT"


@functools.cache
def capture_events() -> tuple:
    """(kind, local_ns, data) of the capture from its REST snapshot on, in file order:
    kind "snapshot" (the REST body), "diff" (depthUpdate data), "trade" (MARKET trades)."""
    assert CAPTURE.exists(), f"capture not found: {CAPTURE} (tests read ../shared)"
    out = []
    last_id = None
    with gzip.open(CAPTURE, "rb") as f:
        for line in f:
            local, raw = line.split(b" ", 1)
            m = json.loads(raw)
            if "lastUpdateId" in m:
                last_id = m["lastUpdateId"]
                out.append(("snapshot", int(local), m))
                continue
            if last_id is None:
                continue
            d = m["data"]
            if d["e"] == "depthUpdate" and d["u"] >= last_id:
                out.append(("diff", int(local), d))
            elif d["e"] == "trade" and d["X"] == "MARKET":
                out.append(("trade", int(local), d))
    return tuple(out)


class _Side:
    """One side of the venue's full book: price text -> size text, prices kept sorted."""

    def __init__(self, descending: bool):
        self.qty: dict[str, str] = {}
        self.keys: list[float] = []  # ascending
        self.text: dict[float, str] = {}
        self.descending = descending

    def set(self, px: str, qty: str) -> None:
        p = float(px)
        if float(qty) == 0.0:
            if p in self.text:
                del self.qty[self.text.pop(p)]
                del self.keys[bisect.bisect_left(self.keys, p)]
            return
        if p not in self.text:
            bisect.insort(self.keys, p)
            self.text[p] = px
        self.qty[self.text[p]] = qty

    def top(self, n: int) -> dict[str, str]:
        ks = self.keys[::-1][:n] if self.descending else self.keys[:n]
        return {self.text[p]: self.qty[self.text[p]] for p in ks}


def _delta_levels(old: dict[str, str], new: dict[str, str], descending: bool) -> list:
    out = [[p, q] for p, q in new.items() if old.get(p) != q]
    out += [[p, "0"] for p in old if p not in new]  # [BY] size "0": delete
    out.sort(key=lambda lv: float(lv[0]), reverse=descending)
    return out


def _rows(view: dict[str, str]) -> list:
    return [[p, q] for p, q in view.items()]


@dataclass
class Stream:
    """The frames, and what a correct client ends up with."""

    frames: list[tuple[int, bytes]] = field(default_factory=list)  # (local_ns, raw)
    final_bids: dict[float, float] = field(default_factory=dict)  # the venue's view at the end
    final_asks: dict[float, float] = field(default_factory=dict)
    injected: dict[str, int] = field(default_factory=dict)  # what was injected, how often
    trades: list[tuple[str, float, float]] = field(default_factory=list)  # (S, px, qty)


def build(n_diffs: int = 1200, depth: int = 50, inject: bool = True) -> Stream:
    """The stream of the first `n_diffs` capture diffs (after its snapshot), as Bybit's
    `orderbook.{depth}.ETHUSDT` and `publicTrade.ETHUSDT`, with the injections above."""
    topic = f"orderbook.{depth}.{SYMBOL}"
    events = capture_events()
    bids, asks = _Side(True), _Side(False)
    _, _, snap = events[0]
    for px, q in snap["bids"]:
        bids.set(px, q)
    for px, q in snap["asks"]:
        asks.set(px, q)
    st = Stream()
    u, seq = 1000, 50_000_000
    view_b, view_a = {}, {}

    def book_frame(kind: str, local: int, ts: int, cts: int, b: list, a: list, uu: int, sq: int):
        m = {"topic": topic, "type": kind, "ts": ts,
             "data": {"s": SYMBOL, "b": b, "a": a, "u": uu, "seq": sq}, "cts": cts}  # fmt: skip
        return local, json.dumps(m, separators=(",", ":")).encode()

    def count(what: str) -> None:
        st.injected[what] = st.injected.get(what, 0) + 1

    n = 0
    mid_snap, restart, replay, seq_back = (
        n_diffs // 5,
        2 * n_diffs // 5,
        3 * n_diffs // 5,
        4 * n_diffs // 5,
    )
    garbage_at = {n_diffs // 10, n_diffs // 3, n_diffs // 2, 7 * n_diffs // 10}
    tail = 0  # deltas the client must drop after a gap before the venue's fresh snapshot
    first = True
    for kind, local, d in events[1:]:
        if kind == "trade":
            side = "Sell" if d["m"] else "Buy"  # buyer is maker: the taker sold
            seq += 1
            m = {"topic": f"publicTrade.{SYMBOL}", "type": "snapshot", "ts": d["E"],
                 "data": [{"T": d["T"], "s": SYMBOL, "S": side, "v": d["q"], "p": d["p"],
                           "L": "PlusTick", "i": f"t-{d['t']}", "BT": False, "RPI": False,
                           "seq": seq}]}  # fmt: skip
            st.frames.append((local, json.dumps(m, separators=(",", ":")).encode()))
            st.trades.append((side, float(d["p"]), float(d["q"])))
            continue
        if n >= n_diffs:
            break
        n += 1
        for px, q in d["b"]:
            bids.set(px, q)
        for px, q in d["a"]:
            asks.set(px, q)
        new_b, new_a = bids.top(depth), asks.top(depth)
        db = _delta_levels(view_b, new_b, True)
        da = _delta_levels(view_a, new_a, False)
        if not db and not da:
            continue  # the view did not change: Bybit sends nothing
        view_b, view_a = new_b, new_a
        u += 1 + (n % 2)  # u jumps by 2 every other delta: not a gap (UNCONFIRMED +1)
        seq += 3
        ts, cts = d["E"], d["T"]

        if first:
            first = False
            if inject:  # a delta before any snapshot: the client asks for one
                st.frames.append(book_frame("delta", local, ts, cts, db, da, u, seq))
                count("delta_before_snapshot")
                u += 1
            st.frames.append(
                book_frame("snapshot", local, ts, cts, _rows(view_b), _rows(view_a), u, seq)
            )
            continue
        if inject and n == restart:  # [BY] u = 1: the service restarted, this is a snapshot
            u = 1
            st.frames.append(
                book_frame("snapshot", local, ts, cts, _rows(view_b), _rows(view_a), u, seq)
            )
            count("restart")
            continue
        delta = book_frame("delta", local, ts, cts, db, da, u, seq)
        if inject and n in garbage_at:
            g = delta[1]
            bad = [g[: len(g) // 2], g.replace(b'"u":', b'"uu":'),
                   g.replace(b'"b":[', b'"b":[["abc","1"],'),
                   json.dumps({"topic": f"publicTrade.{SYMBOL}", "type": "snapshot", "ts": ts,
                               "data": [{"T": cts, "s": SYMBOL, "v": "1", "p": "1"}]}).encode()]  # fmt: skip
            for b in bad:
                st.frames.append((local, b))
                count("garbage")
        st.frames.append(delta)
        if inject and n == mid_snap:
            st.frames.append(
                book_frame("snapshot", local, ts, cts, _rows(view_b), _rows(view_a), u, seq)
            )  # a mid-stream snapshot: same book, reset anyway
            count("mid_snapshot")
        if inject and n == replay:
            st.frames.append(delta)  # the same delta again: u does not grow
            count("replayed_delta")
            tail = 3
            continue
        if inject and n == seq_back:
            seq += 1
            st.frames.append(book_frame("delta", local, ts, cts, db, da, u + 1, seq - 100))
            u += 1
            count("seq_back")
            tail = 2
            continue
        if tail:
            tail -= 1
            if tail == 0:
                u += 1
                st.frames.append(
                    book_frame("snapshot", local, ts, cts, _rows(view_b), _rows(view_a), u, seq)
                )  # the fresh snapshot the resubscribe asked for
    st.final_bids = {float(p): float(q) for p, q in view_b.items()}
    st.final_asks = {float(p): float(q) for p, q in view_a.items()}
    return st


class Shm(RecordingShm):
    """RecordingShm that also keeps what a bot would read: every published event applied
    to a bot-side book (hftlive.depth.apply_depth_event, as a LiveBot does), trades
    listed, resyncs and bad messages counted."""

    def __init__(self, tick: float, lot: float):
        super().__init__()
        self.bot = DepthBook(tick, lot)
        self.trades: list[tuple[int, float, float]] = []
        self.resyncs = self.bad = self.snapshots = 0
        self.events: list[np.ndarray] = []

    def publish(self, inst, events, n):
        super().publish(inst, events, n)
        ev = events[:n].copy()
        self.events.append(ev)
        d = self.bot
        for e in ev:
            k = int(e["ev"])
            if k in (BUY_TRADE, SELL_TRADE):
                self.trades.append(
                    (BUY if k == BUY_TRADE else SELL, float(e["px"]), float(e["qty"]))
                )
            else:
                apply_depth_event(
                    d.di, d.df, d.bk, d.bv, d.ak, d.av, k, e["px"], e["qty"], e["exch_ts"]
                )

    def write_snapshot(self, inst, book, ts):
        self.snapshots += 1

    def count_resync(self, inst):
        self.resyncs += 1

    def count_bad_message(self, inst=-1):
        self.bad += 1

    def bot_levels(self) -> tuple[dict, dict]:
        """The bot-side book's levels, px -> qty."""
        d, t = self.bot, self.bot.tick_size
        return ({round(k * t, 8): q for k, q in d.bid_levels(10_000)},
                {round(k * t, 8): q for k, q in d.ask_levels(10_000)})  # fmt: skip
