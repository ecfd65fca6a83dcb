"""connector.sim.exchange_view: on the replay clock, hftbacktest's exchange model reads the
capture ahead of the bots and sees each market event at its exchange time, in the order
hftbacktest's own exchange sees it. In memory, over the real capture."""

import gzip
import logging

import numpy as np
import pytest

from connector import registry
from connector.config import InstrumentConfig
from connector.sim import exchange_view
from connector.sim.exchange_view import ExchangeView
from connector.sim.replay import _lines
from hftlive._fidelity_capture import convert, write_window
from hftlive.constants import (
    BUY_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EXCH_EVENT,
    TRADE_EVENT,
)

from .conftest import CAPTURE

ETH = InstrumentConfig("ethusdt", 0.01, 0.001)


class Exchange:
    """What an HbtMarket is shown (connector.sim.hbt), in order: (ts, kind, side, px, qty)."""

    def __init__(self):
        self.seen = []

    def depth(self, side, px, qty, exch_ts, local_ts):
        assert local_ts == exch_ts  # seen when it happens: no feed latency before it
        self.seen.append((exch_ts, DEPTH_EVENT, side, round(px, 2), round(qty, 3)))

    def trade(self, side, px, qty, exch_ts, local_ts):
        assert local_ts == exch_ts
        self.seen.append((exch_ts, TRADE_EVENT, side, round(px, 2), round(qty, 3)))

    def clear(self, exch_ts):
        self.seen.append((exch_ts, DEPTH_CLEAR_EVENT, 0, 0.0, 0.0))


class NoBadLines:
    def bad(self, what, inst=-1):
        raise AssertionError(what)


def replay(path):
    """Drives the view as connector.sim.replay.run_lockstep does: before a line is
    published at its receive time t (or at once, if the clock has passed it), the
    exchange is shown every event up to t. Returns
    the exchange's events, the view, and (t, events shown by t) at each line."""
    ex = Exchange()
    view = ExchangeView([ETH], [ex], registry.spec("binancefutures").capture,
                        _lines(str(path), NoBadLines()))  # fmt: skip
    shown = []
    t = 0
    while (line := view.peek()) is not None:
        t = max(t, line[0])  # the replay's clock never goes back
        while (e := view.next_event_ns(t)) is not None and e <= t:
            view.hand_over(e)
        shown.append((t, len(ex.seen)))
        view.pop()
    assert view.next_event_ns(0) is None  # every event was shown by the last line
    return ex.seen, view, shown


@pytest.fixture(scope="module")
def window(tmp_path_factory):
    """30 s of the capture on hftbacktest's timeline (its converter's receive-time shift,
    so feed latencies are >= 0 and spread over ~90 ms), and its converted events."""
    w = write_window(str(CAPTURE), str(tmp_path_factory.mktemp("w") / "window.gz"), 1.0, 30.0)
    return w, convert(w)


def _rows(data, kinds):
    ev = data["ev"]
    pick = data[((ev & EXCH_EVENT) != 0) & np.isin(ev & 0xFF, kinds)]
    return [(int(r["exch_ts"]), int(r["ev"]) & 0xFF, 1 if int(r["ev"]) & BUY_EVENT else -1,
             round(float(r["px"]), 2), round(float(r["qty"]), 3)) for r in pick]  # fmt: skip


def test_the_exchange_sees_the_events_hftbacktests_exchange_sees_in_its_order(window):
    """hftbacktest's exchange processor reads the converter's EXCH events in exch_ts
    order; the view shows the same trades and depth diffs in the same order (the snapshot
    that opens the window: the same levels, after a clear), each by the time the replay
    reaches it, ahead of the line that brings it to the bots."""
    w, data = window
    seen, view, shown = replay(w.path)
    assert view.late == 0
    ts = np.array([e[0] for e in seen])
    assert np.all(np.diff(ts) >= 0)
    # the opening snapshot: a clear, then its levels (hftbacktest: clears, snapshot rows)
    snap = _rows(data, [DEPTH_SNAPSHOT_EVENT])
    assert seen[0][1] == DEPTH_CLEAR_EVENT
    n = len(snap)
    assert sorted((t, s, px, q) for t, _, s, px, q in seen[1 : n + 1]) == sorted(
        (t, s, px, q) for t, _, s, px, q in snap)  # fmt: skip
    rest = [(t, k, s, px, q) for t, k, s, px, q in seen[n + 1 :]]
    assert rest == _rows(data, [DEPTH_EVENT, TRADE_EVENT])
    assert len(rest) > 30_000 and sum(k == TRADE_EVENT for _, k, *_ in rest) > 500
    # shown ahead of the bots: by the time a line is published, the exchange has every
    # event stamped up to its receive time, and often events received later
    for t, k in shown:
        assert k == len(seen) or seen[k][0] > t
        assert k == 0 or seen[k - 1][0] <= t
    # which is ahead of the bots: on this timeline nearly every event is received after
    # its exchange time
    rows = data[(data["ev"] & EXCH_EVENT) != 0]
    assert np.mean(rows["local_ts"] > rows["exch_ts"]) > 0.9


def test_an_event_later_than_the_lookahead_is_shown_at_once_and_counted(window, monkeypatch,
                                                                        caplog):  # fmt: skip
    """A feed latency longer than the view reads ahead: the event reaches the exchange
    when it is read, after events stamped later; counted and logged, not lost."""
    w, data = window
    monkeypatch.setattr(exchange_view, "LOOKAHEAD_NS", 1_000_000)  # 1 ms: latencies reach ~90
    seen, view, _ = replay(w.path)
    assert view.late > 0
    assert len(seen) == 1 + len(_rows(data, [DEPTH_SNAPSHOT_EVENT, DEPTH_EVENT, TRADE_EVENT]))
    with caplog.at_level(logging.WARNING):
        view.finish()
    assert f"{view.late} market events reached the exchange late" in caplog.text


def test_a_capture_whose_receive_clock_lags_the_venues_is_seen_at_receive_time(tmp_path):
    """The raw capture's venue clock runs ~1.27 s ahead of its receive clock (every feed
    latency is negative): the exchange sees each event when it was received, never after
    the bots (the wall-clock replay clamps alike)."""
    path = tmp_path / "head.txt"
    with gzip.open(CAPTURE) as g:
        lines = [next(g) for _ in range(3000)]
    path.write_bytes(b"".join(lines))
    local = {int(x.partition(b" ")[0]) for x in lines}
    seen, view, _ = replay(path)
    assert view.late == 0 and len(seen) > 1000
    assert {e[0] for e in seen} <= local


def test_a_bybit_capture_with_gaps_gives_the_exchange_the_venues_book_and_every_trade():
    """The view reads any venue's capture with that venue's decoder: a recorded-format
    Bybit stream (tests/bybit_stream.py: snapshots, a service restart, a replayed delta,
    a seq going back, garbage frames) gives the exchange, applied in order, the venue's own
    view at the end and every trade with its taker side; each resync reaches it as a
    clear."""
    from hftlive.constants import BUY, SELL
    from tests import bybit_stream

    st = bybit_stream.build()
    inst = InstrumentConfig("ethusdt", 0.01, 0.001)
    ex = Exchange()
    # the frames' times are the receive times; garbage frames are the replay's own pass's
    # to report: the view reads them silently
    view = ExchangeView([inst], [ex], registry.spec("bybit").capture, iter(st.frames))
    while (line := view.peek()) is not None:
        while (e := view.next_event_ns(line[0])) is not None and e <= line[0]:
            view.hand_over(e)
        view.pop()
    view.hand_over(1 << 62)
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    trades = []
    clears = 0
    for _, kind, side, px, qty in ex.seen:
        if kind == DEPTH_CLEAR_EVENT:
            bids.clear()
            asks.clear()
            clears += 1
        elif kind == DEPTH_EVENT:
            book = bids if side == BUY else asks
            if qty > 0:
                book[px] = qty
            else:
                book.pop(px, None)
        else:
            trades.append((side, px, qty))
    assert (bids, asks) == (st.final_bids, st.final_asks)
    assert trades == [(BUY if s == "Buy" else SELL, p, q) for s, p, q in st.trades]
    assert clears >= 3  # the snapshots after each gap start from a cleared book
    assert view.late == 0
