"""Recording the feed: what the connector published, per instrument, as hftbacktest files.

    Core.publish(inst, events, n) -- tap --> shared memory, then FeedRecorder.add: a copy
                                             into the instrument's chunk (numpy, in memory)
    a full chunk ---------------- thread --> appended to the open file's spool `<file>.part`
    Core.write_snapshot(inst, book, ts) ---> FeedRecorder.at_snapshot: where files rotate
    rotation, close() ----------- thread --> spool -> event order corrected -> `<file>.npz`

The event loop only copies events into a preallocated numpy chunk; the writer thread does
the file I/O, the sort and the compression (numpy and zlib release the GIL there).

A file is what hftbacktest's collector and one of its converters (`hftbacktest.data.utils`)
produce: one `event_dtype` array under the key `data` of an `.npz`, every event
flagged EXCH_EVENT and/or LOCAL_EVENT after hftbacktest's `correct_event_order` (an event
whose exchange-time order differs from its local-time order is written twice: once
EXCH-only where its exch_ts sorts, once LOCAL-only where its local_ts sorts). It starts
with a snapshot of the book as the converter writes one: per side a DEPTH_CLEAR_EVENT
(`px` = the deepest level of the snapshot, NaN for an empty side: that clears the whole
side) followed by DEPTH_SNAPSHOT_EVENTs, bids then asks. So each file backtests alone,
and a list of consecutive files backtests as one day.

What is recorded is what bots were sent, so a backtest's book follows the connector's:
a gap or a resync is a DEPTH_CLEAR_EVENT (no side: both sides) followed by the rebuilt
book, exactly as it was published. Timestamps are kept as published (no latency
correction: a negative feed latency stays negative; hftbacktest's
`correct_local_timestamp` applies it if wanted).

Files: `<dir>/<connector>_<symbol>_<UTC start, YYYYmmddTHHMMSSZ>_<n>.npz`, `n` counting
the files of one run; sorted by name they are in time order. A new file starts at every
multiple of `rotate_s` since the epoch (UTC) and when a file reaches `max_events`; the
switch happens at the next book snapshot the venue writes (every
`snapshot_interval_ms`), where the connector's book is whole. A clean stop writes every
open file. After a crash the spool (`.npz.part`, raw `event_dtype` records without the
leading snapshot) is left behind: `np.fromfile(path, event_dtype)` reads it.
"""

from __future__ import annotations

import logging
import os
import queue
import tempfile
import threading
import time
from pathlib import Path

import numba as nb
import numpy as np

from connector.errors import ConfigError
from hftlive.constants import (
    BUY_EVENT,
    DEPTH_CLEAR_EVENT,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
)
from hftlive.layout import event_dtype

log = logging.getLogger(__name__)

_BOTH = EXCH_EVENT | LOCAL_EVENT
_NOT_BOTH = np.uint64(~_BOTH & 0xFFFF_FFFF_FFFF_FFFF)


@nb.njit(cache=True, nogil=True)
def _merge(exch_ts, local_ts, by_exch, by_local, rows, flags):  # pragma: no cover (compiled)
    """hftbacktest.data.validation.correct_event_order's walk: the rows in exch_ts order
    and in local_ts order at once; a row at the same place in both is written once
    (EXCH|LOCAL), otherwise each side gets its own copy. Fills `rows` (indices) and
    `flags`; returns how many."""
    n = exch_ts.shape[0]
    o = x = lo = 0
    while x < n or lo < n:
        if x < n and lo < n:
            e = by_exch[x]
            c = by_local[lo]
            if exch_ts[e] == exch_ts[c] and local_ts[e] == local_ts[c]:
                rows[o], flags[o] = e, EXCH_EVENT | LOCAL_EVENT
                x += 1
                lo += 1
            elif exch_ts[e] < exch_ts[c] or (
                exch_ts[e] == exch_ts[c] and local_ts[e] < local_ts[c]
            ):
                rows[o], flags[o] = e, EXCH_EVENT
                x += 1
            else:
                rows[o], flags[o] = c, LOCAL_EVENT
                lo += 1
        elif x < n:
            rows[o], flags[o] = by_exch[x], EXCH_EVENT
            x += 1
        else:
            rows[o], flags[o] = by_local[lo], LOCAL_EVENT
            lo += 1
        o += 1
    return o


@nb.njit(cache=True)
def _append(dst, pos, src, n):  # pragma: no cover (compiled)
    """src[:n] copied to dst[pos:]; the new end (a third of a numpy slice copy's cost)."""
    for i in range(n):
        dst[pos + i] = src[i]
    return pos + n


def correct_event_order(events: np.ndarray) -> np.ndarray:
    """The rows of `events` (any EXCH/LOCAL flags) as hftbacktest's converter orders them:
    exchange events by exch_ts, local events by local_ts, ties in file order."""
    exch_ts, local_ts = events["exch_ts"], events["local_ts"]
    by_exch = np.argsort(exch_ts, kind="stable")
    by_local = np.argsort(local_ts, kind="stable")
    rows = np.empty(2 * len(events), np.int64)
    flags = np.empty(2 * len(events), np.uint64)
    n = _merge(exch_ts, local_ts, by_exch, by_local, rows, flags)
    out = events[rows[:n]]
    out["ev"] = (out["ev"] & _NOT_BOTH) | flags[:n]
    return out


def snapshot_events(book, exch_ts: int, local_ts: int) -> np.ndarray:
    """`book` (a hftlive.depth.DepthBook) as the converter writes a snapshot: per side a
    DEPTH_CLEAR up to its deepest level (NaN: an empty side, cleared whole), then its
    DEPTH_SNAPSHOT events; bids (best first), then asks."""
    buf = np.zeros(book.bk.shape[0] + book.ak.shape[0], event_dtype)
    snap = buf[: book.snapshot_into(buf, 0)]
    out = np.zeros(len(snap) + 2, event_dtype)
    k = 0
    for side in (BUY_EVENT, SELL_EVENT):
        lv = snap[(snap["ev"] & side) != 0]
        out[k]["ev"] = _BOTH | DEPTH_CLEAR_EVENT | side
        out[k]["px"] = lv["px"][-1] if len(lv) else np.nan
        out[k + 1 : k + 1 + len(lv)] = lv
        k += 1 + len(lv)
    out["exch_ts"] = exch_ts
    out["local_ts"] = local_ts
    return out


class _File:
    """One instrument's open file."""

    def __init__(self, path: Path, head: np.ndarray, chunk_events: int, due: float):
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self.head = head  # the leading snapshot
        self.buf = np.zeros(chunk_events, event_dtype)
        self.pos = 0
        self.count = 0
        self.due = due  # time.time() at which it rotates
        self._last = (int(head["exch_ts"][0]), int(head["local_ts"][0]))  # of spilled chunks

    def last(self) -> tuple[int, int]:
        """(exch_ts, local_ts) of the last event recorded."""
        if self.pos:
            e = self.buf[self.pos - 1]
            return int(e["exch_ts"]), int(e["local_ts"])
        return self._last


class FeedRecorder:
    """Writes what the connector publishes, per instrument (see the module docstring).

    Args:
        name: the connector's name (in file names).
        cfg: the `[record]` section (connector.config.RecordConfig).
        symbols: the instruments' symbols, by instrument index.
        config_path: the config file, for error messages.

    Raises:
        ConfigError: the folder cannot be created or written to.
    """

    def __init__(self, name: str, cfg, symbols: list[str], config_path: str = ""):
        self.name = name
        self.cfg = cfg
        self.symbols = list(symbols)
        self.dir = Path(cfg.dir)
        where = f"{config_path}: " if config_path else ""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.dir):
                pass
        except OSError as e:
            raise ConfigError(f"{where}record.dir {self.dir}: cannot write there: "
                              f"{e.strerror or e}") from None  # fmt: skip
        # compiled (or loaded from numba's cache) now, not by the writer thread at the
        # first rotation, where compiling would hold the GIL, and the event loop, for ~1 s
        scratch = np.zeros(1, event_dtype)
        correct_event_order(scratch)
        _append(scratch, 0, scratch, 1)  # and the hot path's copy
        n = len(self.symbols)
        self._files: list[_File | None] = [None] * n
        self._seq = 0
        self.written: list[Path] = []  # the finished files, in the order they were written
        self.errors: list[str] = []
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._write_loop, name="feed-recorder",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        self._closed = False

    # ------------------------------------------------------------------ event loop side

    def tap(self, publish):
        """`publish(inst, events, n)` that also records what it published."""
        add = self.add

        def publish_and_record(inst: int, events: np.ndarray, n: int) -> None:
            publish(inst, events, n)
            add(inst, events, n)

        return publish_and_record

    def add(self, inst: int, events: np.ndarray, n: int) -> None:
        """Keeps a copy of `events[:n]`, just published for instrument `inst`."""
        if n <= 0 or self._closed:
            return
        f = self._files[inst]
        if f is None:  # the first file: nothing was published before, the book was empty
            e = events[0]
            f = self._open(inst, None, int(e["exch_ts"]), int(e["local_ts"]))
        if f.pos + n > len(f.buf):
            self._spill(f, max(n, self.cfg.chunk_events))
        f.pos = _append(f.buf, f.pos, events, n)
        f.count += n

    def at_snapshot(self, inst: int, book) -> None:
        """The venue wrote `book` (its DepthBook of `inst`) to shared memory: the book is
        whole here, so a file due to end ends here and the next starts with it."""
        f = self._files[inst]
        if f is None or self._closed:
            return
        if f.count >= self.cfg.max_events or time.time() >= f.due:
            exch_ts, local_ts = f.last()
            self._finish(f)
            self._open(inst, book, exch_ts, local_ts)

    def close(self) -> None:
        """Writes every open file and waits for the writer (a clean stop loses nothing)."""
        if self._closed:
            return
        self._closed = True
        for f in self._files:
            if f is not None:
                self._finish(f)
        self._jobs.put(None)
        self._thread.join()

    def _open(self, inst: int, book, exch_ts: int, local_ts: int) -> _File:
        """A new file for `inst`, starting with `book` (None: an empty book) at these times."""
        if book is not None:
            head = snapshot_events(book, exch_ts, local_ts)
        else:
            head = np.zeros(2, event_dtype)
            head["ev"] = [
                _BOTH | DEPTH_CLEAR_EVENT | BUY_EVENT,
                _BOTH | DEPTH_CLEAR_EVENT | SELL_EVENT,
            ]
            head["px"] = np.nan
            head["exch_ts"], head["local_ts"] = exch_ts, local_ts
        now = time.time()
        r = self.cfg.rotate_s
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        path = self.dir / f"{self.name}_{self.symbols[inst]}_{stamp}_{self._seq:04d}.npz"
        self._seq += 1
        f = _File(path, head, self.cfg.chunk_events, (now // r + 1) * r)
        self._files[inst] = f
        return f

    def _spill(self, f: _File, size: int) -> None:
        """Hands the chunk to the writer and starts a new one of `size` events."""
        if f.pos:
            f._last = f.last()
            self._jobs.put((f, f.buf[: f.pos]))
        f.buf = np.zeros(size, event_dtype)
        f.pos = 0

    def _finish(self, f: _File) -> None:
        self._spill(f, 0)
        self._jobs.put((f, None))

    # ------------------------------------------------------------------ writer thread

    def _write_loop(self) -> None:
        spools: dict[Path, object] = {}
        failed: set[Path] = set()  # files given up: one error each, not one per chunk
        while (job := self._jobs.get()) is not None:
            f, chunk = job
            if f.path in failed:
                if chunk is None:
                    failed.discard(f.path)
                    fh = spools.pop(f.part, None)
                    if fh is not None:
                        fh.close()
                continue
            try:
                if chunk is not None:
                    if f.part not in spools:
                        spools[f.part] = open(f.part, "ab")  # noqa: SIM115 (kept open)
                    spools[f.part].write(chunk.tobytes())
                    continue
                fh = spools.pop(f.part, None)
                if fh is not None:
                    fh.close()
                self._write_file(f)
            except Exception as e:  # the thread's boundary: logged; the next job goes on
                msg = f"{f.path}: {getattr(e, 'strerror', None) or e}"
                log.error("feed recording: cannot write %s; this file is lost", msg)
                self.errors.append(msg)
                if chunk is not None:
                    failed.add(f.path)
        for fh in spools.values():
            fh.close()

    def _write_file(self, f: _File) -> None:
        body = np.fromfile(f.part, event_dtype) if f.part.exists() else np.zeros(0, event_dtype)
        head = f.head
        if len(body):
            # the snapshot sorts first on both clocks (published stamps are not monotonic
            # across streams); the converter's ordering below keeps it there
            head["exch_ts"] = min(int(head["exch_ts"][0]), int(body["exch_ts"].min()))
            head["local_ts"] = min(int(head["local_ts"][0]), int(body["local_ts"].min()))
        data = correct_event_order(np.concatenate([head, body]))
        tmp = f.path.with_name(f.path.name + ".tmp")
        with open(tmp, "wb") as out:
            np.savez_compressed(out, data=data)
        os.replace(tmp, f.path)
        if f.part.exists():
            f.part.unlink()
        self.written.append(f.path)
        log.info("feed recording: wrote %s (%d events)", f.path.name, len(data))
