"""Local order book synchronisation for Binance USD-M diff depth: a sans-I/O state machine.

It implements Binance's "How to manage a local order book correctly" [BN-OB]
(venue_protocols.md §1.4): buffer diffs until a REST snapshot is supplied, drop buffered
diffs with u < lastUpdateId, apply first the diff with U <= lastUpdateId <= u, then
require every diff's pu to equal the previous diff's u; on a gap, clear the book and start
over from a new snapshot. Quantities are absolute, qty 0 removes a level, and removing a
level that is not there is normal.

Nothing here does I/O or reads a clock. The caller feeds parsed messages in and carries
out the returned actions: `NeedSnapshot` means "fetch GET /fapi/v1/depth and pass the
result to on_snapshot" (keep diffs flowing meanwhile; they are buffered here). The book is
written to directly through `clear()` and `apply_levels(bids, asks)` (every bid level,
then every ask level, in order: a whole diff or snapshot in one call, so that a fast book
applies it in bulk); the other actions tell the caller what happened to it (to publish a
depth clear, count gaps, ...).

States and transitions. L is the snapshot's lastUpdateId; prev_u is the u of the last
applied diff; "held" is a snapshot newer than every buffered diff, kept until the diff
that bridges it arrives (the REST reply can beat that diff, or, as in the captures, come
after it).

    state   input     condition                       actions                             next
    ------  --------  ------------------------------  ----------------------------------  ------
    WAIT    diff      nothing held                    buffer it (step 1); NeedSnapshot    WAIT
                                                      unless already asked
    WAIT    diff      buffer full                     drop the oldest; NeedSnapshot       WAIT
                                                      (once per snapshot asked for)
    WAIT    snapshot  after dropping u < L (step 3),  NeedSnapshot                        WAIT
                      the first kept has U > L
    WAIT    snapshot  first kept has U <= L <= u      Cleared, SnapshotApplied, then      SYNCED
                      (step 4)                        Applied per buffered diff
    WAIT    snapshot  no diff kept                    hold it                             WAIT
    WAIT    diff      held, u < L                     drop it (step 3)                    WAIT
    WAIT    diff      held, U <= L <= u               Cleared, SnapshotApplied, Applied   SYNCED
    WAIT    diff      held, U > L                     forget the snapshot, buffer the     WAIT
                                                      diff, NeedSnapshot
    SYNCED  diff      pu == prev_u (step 5)           apply; Applied                      SYNCED
    SYNCED  diff      u <= prev_u                     ignore (duplicate or old)           SYNCED
    SYNCED  diff      otherwise: a gap                clear; Gap, Cleared, NeedSnapshot;  WAIT
                                                      buffer the diff
    SYNCED  snapshot  -                               ignore (a late reply)               SYNCED
    any     reset()   -                               clear; Cleared                      WAIT

WAIT is WAIT_SNAPSHOT. A gap met while replaying the buffer after a snapshot is handled
like a gap in SYNCED: the diffs from the gap on stay buffered for the next snapshot.
SYNCED ignores u <= prev_u rather than calling it a gap: such a diff is already in the
book, and nothing is missing.

The chain cell: prev_u lives in a one-element int64 array (`chain`, -1 outside SYNCED or
for an id that does not fit it) so
that a compiled hot path can take the one transition that dominates, SYNCED + diff with
pu == prev_u (step 5), without a Python call: it applies the diff to the book itself and
stores the diff's u in the cell, exactly as `on_diff` would. Any other diff must come here.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import numpy as np

from connector.binancefutures.messages import DepthSnapshot, DepthUpdate
from connector.errors import UsageError

WAIT_SNAPSHOT = "WAIT_SNAPSHOT"
SYNCED = "SYNCED"


class Book(Protocol):
    """What BookSync writes to. `set_*` with qty 0 deletes the level (absent is fine).

    `apply_levels(bids, asks)` means `set_bid` for each (px, qty) row of `bids`, then
    `set_ask` for each row of `asks` ((n, 2) float64); `levels_by_one` is the plain way."""

    def clear(self) -> None: ...
    def set_bid(self, px: float, qty: float) -> None: ...
    def set_ask(self, px: float, qty: float) -> None: ...
    def apply_levels(self, bids: np.ndarray, asks: np.ndarray) -> None: ...


def levels_by_one(book, bids: np.ndarray, asks: np.ndarray) -> None:
    """`Book.apply_levels` one level at a time, through `set_bid`/`set_ask`."""
    set_bid, set_ask = book.set_bid, book.set_ask
    for px, qty in bids.tolist():
        set_bid(px, qty)
    for px, qty in asks.tolist():
        set_ask(px, qty)


@dataclass(frozen=True, slots=True)
class NeedSnapshot:
    """The I/O layer must fetch GET /fapi/v1/depth and call on_snapshot with it."""


@dataclass(frozen=True, slots=True)
class Applied:
    """The book was updated with this diff."""

    update: DepthUpdate


@dataclass(frozen=True, slots=True)
class Cleared:
    """The book was emptied: "gap", "snapshot" (about to be applied) or the reset reason."""

    reason: str


@dataclass(frozen=True, slots=True)
class SnapshotApplied:
    """The book now holds exactly this snapshot (diffs follow as Applied)."""

    snapshot: DepthSnapshot


@dataclass(frozen=True, slots=True)
class Gap:
    """A diff's pu did not chain to the previous u: the book was dropped."""

    expected_pu: int
    got_pu: int


Action = NeedSnapshot | Applied | Cleared | SnapshotApplied | Gap


class BookSync:
    """Keeps `book` equal to the venue's book for one symbol; see the module table.

    Args:
        book: a `Book`; one without `apply_levels` is written level by level.
        max_buffer: diffs kept while waiting for a snapshot; the oldest go first.
        chain: the one-element int64 array holding prev_u (see the module docstring);
            its own by default.
    """

    def __init__(self, book: Book, max_buffer: int = 10_000, chain: np.ndarray | None = None):
        if max_buffer < 1:
            raise UsageError(f"max_buffer must be >= 1, got {max_buffer}")
        self.book = book
        bulk = getattr(book, "apply_levels", None)
        self._apply_levels = bulk if bulk is not None else partial(levels_by_one, book)
        self.max_buffer = max_buffer
        self.state = WAIT_SNAPSHOT
        self._buffer: deque[DepthUpdate] = deque()
        self._held: DepthSnapshot | None = None
        self._asked = False  # NeedSnapshot emitted and no snapshot since
        self._overflowed = False  # NeedSnapshot emitted for an overflow since the last snapshot
        self._chain = np.full(1, -1, np.int64) if chain is None else chain
        self._prev_u_any = -1
        self._prev_u = -1
        self._symbol: str | None = None

    @property
    def _prev_u(self) -> int:
        c = int(self._chain[0])
        return c if c >= 0 else self._prev_u_any

    @_prev_u.setter
    def _prev_u(self, u: int) -> None:
        # an id outside [0, 2**63) (only a malformed venue sends one) stays in Python, and
        # the cell says -1: no compiled step 5 for it, this object decides
        self._prev_u_any = u
        self._chain[0] = u if 0 <= u < 1 << 63 else -1

    @property
    def last_update_id(self) -> int | None:
        """The u of the last applied diff, None unless SYNCED."""
        return self._prev_u if self.state == SYNCED else None

    @property
    def buffered(self) -> int:
        """Number of diffs waiting for a snapshot."""
        return len(self._buffer)

    def on_diff(self, upd: DepthUpdate) -> list[Action]:
        """Feeds one parsed depthUpdate; returns what happened."""
        if self._symbol != upd.symbol:
            if self._symbol is not None:
                raise UsageError(f"BookSync for {self._symbol!r} fed a {upd.symbol!r} diff")
            self._symbol = upd.symbol
        if self.state == SYNCED:
            if upd.prev_final_update_id == self._prev_u:  # [BN-OB] step 5
                self._apply(upd)
                return [Applied(upd)]
            if upd.final_update_id <= self._prev_u:
                return []  # already in the book: a duplicate or an old diff
            gap = Gap(self._prev_u, upd.prev_final_update_id)
            return [gap, *self._drop_book("gap", upd)]
        held = self._held
        if held is not None:
            last = held.last_update_id
            if upd.final_update_id < last:  # [BN-OB] step 3
                return []
            if upd.first_update_id <= last:  # U <= L <= u: step 4
                self._held = None
                self._buffer.append(upd)
                return self._sync(held)
            self._held = None  # U > L: this snapshot can never be bridged
        return self._buffer_diff(upd)

    def on_snapshot(self, snap: DepthSnapshot) -> list[Action]:
        """Feeds a REST depth snapshot (the reply to NeedSnapshot)."""
        if self.state == SYNCED:
            return []
        self._asked = False
        self._overflowed = False
        last = snap.last_update_id
        buf = self._buffer
        while buf and buf[0].final_update_id < last:  # [BN-OB] step 3
            buf.popleft()
        if not buf:
            self._held = snap  # the bridging diff has not arrived yet
            return []
        if buf[0].first_update_id > last:  # older than every diff we kept: cannot bridge
            self._held = None
            self._asked = True
            return [NeedSnapshot()]
        return self._sync(snap)

    def reset(self, reason: str = "reset") -> list[Action]:
        """Forgets everything (e.g. the stream reconnected); the next diff asks for a snapshot."""
        self.book.clear()
        self.state = WAIT_SNAPSHOT
        self._buffer.clear()
        self._held = None
        self._asked = self._overflowed = False
        self._prev_u = -1
        return [Cleared(reason)]

    # ------------------------------------------------------------------------ internals
    def _buffer_diff(self, upd: DepthUpdate) -> list[Action]:
        actions: list[Action] = []
        if len(self._buffer) >= self.max_buffer:
            self._buffer.popleft()
            if not self._overflowed:  # the snapshot in flight may now be too old
                self._overflowed = self._asked = True
                actions.append(NeedSnapshot())
        self._buffer.append(upd)
        if not self._asked:
            self._asked = True
            actions.append(NeedSnapshot())
        return actions

    def _sync(self, snap: DepthSnapshot) -> list[Action]:
        """Buffer head satisfies U <= L <= u: load the snapshot, replay the buffer."""
        self.book.clear()
        self._apply_levels(snap.bids, snap.asks)
        actions: list[Action] = [Cleared("snapshot"), SnapshotApplied(snap)]
        self.state = SYNCED
        buf = self._buffer
        upd = buf.popleft()
        self._apply(upd)  # the bridging diff
        actions.append(Applied(upd))
        while buf:
            upd = buf.popleft()
            if upd.prev_final_update_id != self._prev_u:  # [BN-OB] step 5
                actions.append(Gap(self._prev_u, upd.prev_final_update_id))
                actions.extend(self._drop_book("gap", upd))
                break
            self._apply(upd)
            actions.append(Applied(upd))
        return actions

    def _apply(self, upd: DepthUpdate) -> None:
        # [BN-OB] step 6: absolute quantities, 0 removes, removing an absent level is normal.
        self._apply_levels(upd.bids, upd.asks)
        self._prev_u = upd.final_update_id

    def _drop_book(self, reason: str, upd: DepthUpdate) -> list[Action]:
        """Gap: empty the book, keep `upd` (and whatever is still buffered) for the next try."""
        self.book.clear()
        self.state = WAIT_SNAPSHOT
        self._prev_u = -1
        self._buffer.appendleft(upd)
        self._held = None
        self._asked = True
        self._overflowed = False
        return [Cleared(reason), NeedSnapshot()]


class DictBook:
    """Reference `Book`: a dict px -> qty per side. For tests, and the documented contract."""

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def set_bid(self, px: float, qty: float) -> None:
        if qty == 0.0:
            self.bids.pop(px, None)
        else:
            self.bids[px] = qty

    def set_ask(self, px: float, qty: float) -> None:
        if qty == 0.0:
            self.asks.pop(px, None)
        else:
            self.asks[px] = qty

    def apply_levels(self, bids: np.ndarray, asks: np.ndarray) -> None:
        levels_by_one(self, bids, asks)

    def top(self, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """Best `n` levels per side: bids by price descending, asks ascending."""
        return heapq.nlargest(n, self.bids.items()), heapq.nsmallest(n, self.asks.items())
