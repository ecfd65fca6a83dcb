"""Views over the segments of one connector, and the ring operations both sides share.

`CtlViews` and `MdViews` turn a mapped segment into named numpy arrays (structured
records plus int64 word views of the headers that the rings use atomically).
The ring writers below are @njit so that the connector publishes with release stores.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from hftlive._sys import atomic_cas, atomic_load, atomic_store, fence_release, void_ptr_at
from hftlive.layout import (
    MD_SNAP_LOCK,
    MD_SNAP_N,
    MD_SNAP_SEQ,
    MD_WRITE_SEQ,
    MD_WRITING_END,
    S_STATE,
    SPSC_READ,
    SPSC_WRITE,
    ctl_header_dtype,
    ctl_layout,
    event_dtype,
    md_header_dtype,
    md_layout,
    slot_dtype,
)


def _words(buf, offset: int, nbytes: int) -> np.ndarray:
    return np.frombuffer(buf, np.int64, count=nbytes // 8, offset=offset)


class CtlViews:
    """The control segment: header, instruments, bot slots and each slot's two rings."""

    def __init__(self, buf):
        head = np.frombuffer(buf, ctl_header_dtype, count=1)[0]
        self.layout = ctl_layout(
            int(head["n_instruments"]),
            int(head["max_bots"]),
            int(head["req_capacity"]),
            int(head["resp_capacity"]),
        )
        v = self.layout.views(buf)
        self.header = v["header"]
        self.instruments = v["instruments"]
        self.slots = v["slots"]
        self.req_hdr = v["req_hdr"]
        self.req = v["req"]
        self.resp_hdr = v["resp_hdr"]
        self.resp = v["resp"]
        self.words = _words(buf, 0, ctl_header_dtype.itemsize)
        r = self.layout.regions["slots"]
        self.slot_words = _words(buf, r.offset, r.nbytes).reshape(-1, slot_dtype.itemsize // 8)

    def symbols(self) -> list[str]:
        n = int(self.header[0]["n_instruments"])
        return [self.instruments[i]["symbol"].decode() for i in range(n)]


def init_ctl_header(buf, n_inst: int, max_bots: int, req_cap: int, resp_cap: int) -> None:
    """Write the sizes a CtlViews needs before it can map the rest (magic is written last)."""
    h = np.frombuffer(buf, ctl_header_dtype, count=1)
    h["n_instruments"] = n_inst
    h["max_bots"] = max_bots
    h["req_capacity"] = req_cap
    h["resp_capacity"] = resp_cap


class MdViews:
    """A market segment: its broadcast ring and the book snapshot."""

    def __init__(self, buf, capacity: int | None = None, snap_capacity: int | None = None):
        if capacity is None:
            probe = md_layout(1, 1)
            off = probe.regions["header"].offset
            head = np.frombuffer(buf, md_header_dtype, count=1, offset=off)[0]
            capacity, snap_capacity = int(head["capacity"]), int(head["snap_capacity"])
        self.layout = md_layout(capacity, snap_capacity)
        v = self.layout.views(buf)
        self.seg = v["seg"]
        self.header = v["header"]
        self.ring = v["ring"]
        self.snapshot = v["snapshot"]
        r = self.layout.regions["header"]
        self.words = _words(buf, r.offset, r.nbytes)


@nb.njit(cache=True)
def md_publish(words, ring, events, n):
    """Append events[:n] to the broadcast ring as one batch, published atomically."""
    cap = ring.shape[0]
    ws = words[MD_WRITE_SEQ]
    atomic_store(words, MD_WRITING_END, ws + n)
    fence_release()
    for k in range(n):
        ring[(ws + k) & (cap - 1)] = events[k]
    atomic_store(words, MD_WRITE_SEQ, ws + n)
    return ws + n


# A ring table: one int64 row per market segment, so that compiled code publishing for
# any instrument takes one argument (each array argument costs a numba dispatch ~40-110
# ns, and a tuple of them as much per element). A row is self-contained (a venue's hot
# path copies rows into a table of its own): raw addresses, valid while the segments and
# the counters they point to stay mapped (the ShmServer owns both, for its whole life).
RT_WORDS = 0  # address of the segment's header words (MdViews.words)
RT_RING = 1  # address of its ring
RT_CAP = 2  # ring capacity, events (a power of two)
RT_COUNT_AT = 3  # address of the int64 counting the events published through the row
RT_COLS = 4
_RT_NWORDS = max(MD_WRITE_SEQ, MD_WRITING_END) + 1


def ring_table_row(v: MdViews, counter: np.ndarray) -> list[int]:
    """The table row of one market segment's views; `counter` (an int64 array, kept
    alive by the caller) counts what is published through it."""
    return [v.words.ctypes.data, v.ring.ctypes.data, v.ring.shape[0], counter.ctypes.data]


@nb.njit(cache=True, inline="always")
def md_publish_at(table, inst, events, lo, n):
    """`md_publish` of events[lo:lo + n] to the ring of row `inst` of a ring table (its
    first RT_COLS columns); counts them in the row's counter. Returns the new write_seq,
    or -1 (nothing written) when the batch does not fit the ring."""
    cap = table[inst, RT_CAP]
    if n > cap:
        return -1
    words = nb.carray(void_ptr_at(table[inst, RT_WORDS]), (_RT_NWORDS,), np.int64)
    ring = nb.carray(void_ptr_at(table[inst, RT_RING]), (cap,), event_dtype)
    ws = words[MD_WRITE_SEQ]
    atomic_store(words, MD_WRITING_END, ws + n)
    fence_release()
    for k in range(n):
        ring[(ws + k) & (cap - 1)] = events[lo + k]
    atomic_store(words, MD_WRITE_SEQ, ws + n)
    nb.carray(void_ptr_at(table[inst, RT_COUNT_AT]), (1,), np.int64)[0] += n
    return ws + n


@nb.njit(cache=True)
def md_write_snapshot(words, snap, events, n):
    """Replace the snapshot under the seqlock; it is consistent with the current write_seq."""
    lock = words[MD_SNAP_LOCK]
    atomic_store(words, MD_SNAP_LOCK, lock + 1)
    fence_release()
    m = min(n, snap.shape[0])
    for k in range(m):
        snap[k] = events[k]
    words[MD_SNAP_N] = m
    words[MD_SNAP_SEQ] = words[MD_WRITE_SEQ]
    atomic_store(words, MD_SNAP_LOCK, lock + 2)


@nb.njit(cache=True)
def spsc_pending(hdr):
    return atomic_load(hdr, SPSC_WRITE) - hdr[SPSC_READ]


@nb.njit(cache=True)
def spsc_take(hdr, ring, out):
    """Move up to len(out) records from an SPSC ring into out; returns how many."""
    ws = atomic_load(hdr, SPSC_WRITE)
    rs = hdr[SPSC_READ]
    cap = ring.shape[0]
    n = min(ws - rs, out.shape[0])
    for k in range(n):
        out[k] = ring[(rs + k) & (cap - 1)]
    atomic_store(hdr, SPSC_READ, rs + n)
    return n


@nb.njit(cache=True)
def spsc_put(hdr, ring, rec):
    """Append rec[0] to an SPSC ring; False if it is full."""
    cap = ring.shape[0]
    ws = hdr[SPSC_WRITE]
    if ws - atomic_load(hdr, SPSC_READ) >= cap:
        return False
    ring[ws & (cap - 1)] = rec[0]
    atomic_store(hdr, SPSC_WRITE, ws + 1)
    return True


@nb.njit(cache=True)
def spsc_put_many(hdr, ring, recs, n):
    """Append recs[:n] and publish them at once (a reader sees all or none); returns how
    many fitted."""
    cap = ring.shape[0]
    ws = hdr[SPSC_WRITE]
    m = min(n, cap - (ws - atomic_load(hdr, SPSC_READ)))
    for k in range(m):
        ring[(ws + k) & (cap - 1)] = recs[k]
    atomic_store(hdr, SPSC_WRITE, ws + m)
    return m


@nb.njit(cache=True)
def slot_claim(words, k, expected, new):
    return atomic_cas(words[k], S_STATE, expected, new)


@nb.njit(cache=True)
def store_word(words, i, v):
    atomic_store(words, i, v)


@nb.njit(cache=True)
def load_word(words, i):
    return atomic_load(words, i)
