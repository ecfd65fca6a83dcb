"""BookSync + DictBook replayed over the real capture, against an independent reference.

Rules are Binance's "How to manage a local order book correctly" [BN-OB],
venue_protocols.md §1.4 (steps cited as BN-OB 1..6).
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np
import pytest

from connector.binancefutures.book_sync import (
    SYNCED,
    WAIT_SNAPSHOT,
    Applied,
    BookSync,
    Cleared,
    DictBook,
    Gap,
    NeedSnapshot,
    SnapshotApplied,
)
from connector.binancefutures.protocol import DepthSnapshot, DepthUpdate, parse_stream
from connector.errors import UsageError

CAPTURE = Path(__file__).resolve().parents[2] / "shared/data/binancefutures/ethusdt_20240808.gz"
TOP = 20


@functools.cache
def messages() -> tuple[DepthUpdate | DepthSnapshot, ...]:
    """Depth diffs and the snapshot of the capture, in file order."""
    assert CAPTURE.exists(), f"capture not found: {CAPTURE} (tests read ../shared)"
    out = []
    with gzip.open(CAPTURE, "rb") as f:
        for line in f:
            msg = parse_stream(line.split(b" ", 1)[1])
            if isinstance(msg, (DepthUpdate, DepthSnapshot)):
                out.append(msg)
    return tuple(out)


def diffs() -> list[DepthUpdate]:
    return [m for m in messages() if isinstance(m, DepthUpdate)]


def real_snapshot() -> DepthSnapshot:
    return next(m for m in messages() if isinstance(m, DepthSnapshot))


class Reference:
    """A separate, plain reading of BN-OB: keep every diff; on the snapshot, start from it
    and apply in file order the diffs with u >= lastUpdateId, checking pu chains."""

    def __init__(self) -> None:
        self.seen: list[DepthUpdate] = []
        self.bids: dict[float, float] | None = None
        self.asks: dict[float, float] = {}
        self.last_u: int | None = None
        self.applied: list[DepthUpdate] = []

    def start(self, snap: DepthSnapshot) -> None:
        self.bids = {px: q for px, q in snap.bids.tolist()}
        self.asks = {px: q for px, q in snap.asks.tolist()}
        self.last_u = None
        later = [d for d in self.seen if d.final_update_id >= snap.last_update_id]  # BN-OB 3
        assert later[0].first_update_id <= snap.last_update_id  # BN-OB 4
        for d in later:
            self.apply(d)

    def on_diff(self, d: DepthUpdate) -> None:
        if self.bids is None:
            self.seen.append(d)
        else:
            self.apply(d)

    def apply(self, d: DepthUpdate) -> None:
        if self.last_u is not None:
            assert d.prev_final_update_id == self.last_u  # BN-OB 5 (no gap in this capture)
        for side, levels in ((self.bids, d.bids), (self.asks, d.asks)):
            for px, q in levels.tolist():
                if q == 0.0:
                    side.pop(px, None)  # BN-OB 6
                else:
                    side[px] = q
        self.last_u = d.final_update_id
        self.applied.append(d)

    def top(self, n: int):
        return (
            sorted(self.bids.items(), reverse=True)[:n],
            sorted(self.asks.items())[:n],
        )

    def snapshot(self) -> DepthSnapshot:
        """A REST-shaped snapshot of the reference book at its last applied u."""
        bids = np.array(sorted(self.bids.items(), reverse=True), dtype=np.float64)
        asks = np.array(sorted(self.asks.items()), dtype=np.float64)
        return DepthSnapshot(self.last_u, 0, 0, bids, asks)


def assert_same_book(book: DictBook, ref: Reference, n_applied: int = 0) -> None:
    """Every level equal (implies the top 20); the sorted top 20 themselves every 64th call:
    sorting ~2,500 levels per side per event would make the replay take ~10 s."""
    assert book.bids == ref.bids and book.asks == ref.asks
    if n_applied % 64 == 0:
        assert book.top(TOP) == ref.top(TOP)


def applied(actions) -> list[DepthUpdate]:
    return [a.update for a in actions if isinstance(a, Applied)]


# ------------------------------------------------------------------------ replay
def test_replay_whole_capture_matches_reference():
    book, ref = DictBook(), Reference()
    sync = BookSync(book)
    need = 0
    got: list[DepthUpdate] = []
    for msg in messages():
        if isinstance(msg, DepthUpdate):
            actions = sync.on_diff(msg)
            ref.on_diff(msg)
        else:
            actions = sync.on_snapshot(msg)
            ref.start(msg)
            # The snapshot arrives after its bridging diff (§1.4): buffering matters.
            assert actions[:2] == [Cleared("snapshot"), SnapshotApplied(msg)]
        need += sum(isinstance(a, NeedSnapshot) for a in actions)
        assert not any(isinstance(a, (Gap, Cleared)) for a in actions[2:])
        if applied(actions):
            got += applied(actions)
            assert got[-1] is ref.applied[-1] and len(got) == len(ref.applied)
            assert sync.last_update_id == ref.last_u
            assert_same_book(book, ref, len(got))
    assert need == 1 and sync.state == SYNCED
    assert got == ref.applied  # same diffs, same order
    assert (book.bids, book.asks) == (ref.bids, ref.asks)  # every level, not just the top
    # Golden: 5 diffs precede lastUpdateId 5123107856276; the bridge has u == lastUpdateId.
    snap = real_snapshot()
    assert len(got) == len(diffs()) - 5 == 6581
    assert got[0].first_update_id <= snap.last_update_id == got[0].final_update_id


def test_snapshot_bridge_golden_actions():
    sync = BookSync(DictBook())
    msgs = messages()
    k = next(i for i, m in enumerate(msgs) if isinstance(m, DepthSnapshot))
    assert sync.on_diff(msgs[0]) == [NeedSnapshot()]  # BN-OB 1-2: buffer and fetch
    for m in msgs[1:k]:
        assert sync.on_diff(m) == []
    assert sync.state == WAIT_SNAPSHOT and sync.buffered == k
    actions = sync.on_snapshot(msgs[k])
    assert actions == [
        Cleared("snapshot"),
        SnapshotApplied(msgs[k]),
        Applied(msgs[k - 2]),  # U <= L <= u
        Applied(msgs[k - 1]),
    ]
    assert sync.state == SYNCED and sync.buffered == 0
    assert sync.last_update_id == msgs[k - 1].final_update_id


# -------------------------------------------------------------------- gap handling
def test_gap_injection_resyncs_from_a_later_snapshot():
    d = diffs()
    snap = real_snapshot()
    book, ref = DictBook(), Reference()
    sync = BookSync(book)
    for x in d[:6]:
        sync.on_diff(x)
        ref.on_diff(x)
    sync.on_snapshot(snap)
    ref.start(snap)
    drop = 3000
    for x in d[6:drop]:
        assert sync.on_diff(x) == [Applied(x)]
        ref.on_diff(x)
    ref.on_diff(d[drop])  # the venue sent it; we never see it
    ref.on_diff(d[drop + 1])
    assert sync.on_diff(d[drop + 1]) == [
        Gap(expected_pu=d[drop - 1].final_update_id, got_pu=d[drop].final_update_id),
        Cleared("gap"),
        NeedSnapshot(),
    ]
    assert sync.state == WAIT_SNAPSHOT and book.top(1) == ([], [])
    for x in d[drop + 2 : drop + 6]:  # buffered; one request is enough
        assert sync.on_diff(x) == []
        ref.on_diff(x)
        if x is d[drop + 3]:
            later = ref.snapshot()  # lastUpdateId = u of d[drop + 3]
    # The reply arrives after its bridging diff, as in the capture.
    actions = sync.on_snapshot(later)
    assert actions == [
        Cleared("snapshot"),
        SnapshotApplied(later),
        Applied(d[drop + 3]),
        Applied(d[drop + 4]),
        Applied(d[drop + 5]),
    ]
    assert_same_book(book, ref)
    for i, x in enumerate(d[drop + 6 :]):
        assert sync.on_diff(x) == [Applied(x)]
        ref.on_diff(x)
        assert_same_book(book, ref, i)
    assert (book.bids, book.asks) == (ref.bids, ref.asks)


def test_gap_inside_the_buffer_replay():
    d = diffs()
    sync = BookSync(DictBook())
    for x in d[:6] + d[7:9]:  # d[6] lost while waiting for the snapshot
        sync.on_diff(x)
    actions = sync.on_snapshot(real_snapshot())
    assert actions == [
        Cleared("snapshot"),
        SnapshotApplied(real_snapshot()),
        Applied(d[5]),
        Gap(d[5].final_update_id, d[6].final_update_id),
        Cleared("gap"),
        NeedSnapshot(),
    ]
    assert sync.state == WAIT_SNAPSHOT and sync.buffered == 2


def test_snapshot_too_old_to_bridge_asks_again():
    d = diffs()
    snap = real_snapshot()
    book = DictBook()
    sync = BookSync(book)
    assert d[6].first_update_id > snap.last_update_id  # lastUpdateId < first buffered U
    assert sync.on_diff(d[6]) == [NeedSnapshot()]
    assert sync.on_snapshot(snap) == [NeedSnapshot()]
    assert sync.state == WAIT_SNAPSHOT and book.top(1) == ([], []) and sync.buffered == 1
    # A fresher snapshot (the reference book at d[7]) then bridges through d[7].
    ref = Reference()
    for x in d[:6]:
        ref.on_diff(x)
    ref.start(snap)
    ref.on_diff(d[6])
    ref.on_diff(d[7])
    later = ref.snapshot()
    assert sync.on_diff(d[7]) == []
    assert sync.on_snapshot(later) == [Cleared("snapshot"), SnapshotApplied(later), Applied(d[7])]
    assert_same_book(book, ref)
    assert (book.bids, book.asks) == (ref.bids, ref.asks)


def test_snapshot_before_its_bridging_diff_is_held():
    d = diffs()
    snap = real_snapshot()
    sync = BookSync(DictBook())
    for x in d[:5]:
        sync.on_diff(x)
    assert sync.on_snapshot(snap) == []  # every buffered u < L: dropped, snapshot held
    assert sync.buffered == 0 and sync.state == WAIT_SNAPSHOT
    assert sync.on_diff(d[0]) == []  # an old diff while holding (u < L)
    assert sync.on_diff(d[5]) == [Cleared("snapshot"), SnapshotApplied(snap), Applied(d[5])]
    assert sync.on_diff(d[6]) == [Applied(d[6])]


def test_held_snapshot_without_a_bridge_is_dropped():
    d = diffs()
    sync = BookSync(DictBook())
    sync.on_diff(d[0])
    assert sync.on_snapshot(real_snapshot()) == []
    assert sync.on_diff(d[6]) == [NeedSnapshot()]  # d[5], the bridge, never came
    assert sync.state == WAIT_SNAPSHOT and sync.buffered == 1


def test_duplicate_and_old_diffs_are_ignored():
    d = diffs()
    book = DictBook()
    sync = BookSync(book)
    for x in d[:7]:
        sync.on_diff(x)
    sync.on_snapshot(real_snapshot())
    before = (dict(book.bids), dict(book.asks))
    for old in (d[6], d[5], d[0]):  # u <= last applied u
        assert sync.on_diff(old) == []
    assert (book.bids, book.asks) == before and sync.state == SYNCED
    assert sync.on_diff(d[7]) == [Applied(d[7])]


def test_late_snapshot_when_synced_is_ignored():
    d = diffs()
    sync = BookSync(DictBook())
    for x in d[:6]:
        sync.on_diff(x)
    sync.on_snapshot(real_snapshot())
    assert sync.on_snapshot(real_snapshot()) == [] and sync.state == SYNCED


# ---------------------------------------------------------------- buffer and misuse
def test_buffer_overflow_drops_oldest_and_asks_once():
    d = diffs()
    sync = BookSync(DictBook(), max_buffer=3)
    assert sync.on_diff(d[0]) == [NeedSnapshot()]
    assert sync.on_diff(d[1]) == [] and sync.on_diff(d[2]) == []
    assert sync.on_diff(d[3]) == [NeedSnapshot()]  # overflow: the fetch in flight may be stale
    assert sync.on_diff(d[4]) == [] and sync.buffered == 3
    # The real snapshot still bridges through d[5] (d[0] and d[1] were dropped).
    sync.on_diff(d[5])
    actions = sync.on_snapshot(real_snapshot())
    assert applied(actions) == [d[5]] and sync.state == SYNCED


def test_reset_clears_and_restarts():
    d = diffs()
    book = DictBook()
    sync = BookSync(book)
    for x in d[:6]:
        sync.on_diff(x)
    sync.on_snapshot(real_snapshot())
    assert sync.reset("reconnect") == [Cleared("reconnect")]
    assert sync.state == WAIT_SNAPSHOT and book.top(1) == ([], []) and sync.last_update_id is None
    assert sync.on_diff(d[6]) == [NeedSnapshot()]


def test_usage_errors():
    with pytest.raises(UsageError):
        BookSync(DictBook(), max_buffer=0)
    d = diffs()[0]
    sync = BookSync(DictBook())
    sync.on_diff(d)
    other = DepthUpdate("btcusdt", 0, 0, 1, 2, 0, d.bids, d.asks)
    with pytest.raises(UsageError):
        sync.on_diff(other)


def test_dict_book_contract():
    b = DictBook()
    b.set_bid(10.0, 1.0)
    b.set_bid(11.0, 2.0)
    b.set_bid(9.0, 0.0)  # removing an absent level is normal (BN-OB 6)
    b.set_ask(12.0, 3.0)
    b.set_ask(13.0, 4.0)
    b.set_ask(12.0, 0.0)
    assert b.top(5) == ([(11.0, 2.0), (10.0, 1.0)], [(13.0, 4.0)])
    assert b.top(1) == ([(11.0, 2.0)], [(13.0, 4.0)])
    b.clear()
    assert b.top(5) == ([], [])
