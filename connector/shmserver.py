"""The connector's side of shared memory: it creates and owns every segment of its name.

One control segment (header, instruments, bot slots, per-slot rings), one market segment
per instrument, and a FIFO "doorbell" a bot writes a byte to after queuing a request, so
that an idle connector wakes at once instead of polling.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from hftlive.ipc import (
    RT_COLS,
    CtlViews,
    MdViews,
    init_ctl_header,
    md_publish,
    md_write_snapshot,
    ring_table_row,
    spsc_put,
    spsc_put_many,
    spsc_take,
    store_word,
)
from hftlive.layout import (
    CONN_RUNNING,
    CONN_STARTING,
    CONN_STOPPED,
    CTL_HEARTBEAT,
    CTL_STATE,
    LAYOUT_VERSION,
    MAGIC,
    S_ACK,
    S_BOT_ID,
    S_GEN,
    S_PID,
    S_STATE,
    SLOT_ACTIVE,
    SLOT_FREE,
    bot_name,
    ctl_layout,
    ctl_name,
    event_dtype,
    md_layout,
    md_name,
    request_dtype,
    response_dtype,
)
from hftlive.shm import (
    Segment,
    SharedMemoryError,
    check_name,
    list_segments,
    path_of,
    pid_alive,
    read_owner,
    unlink_or_explain,
)

log = logging.getLogger(__name__)


class ShmServer:
    """Creates the segments of connector `name` and offers the operations on them."""

    def __init__(self, name: str, venue: str, instruments, cfg):
        check_name(name)
        self.name = name
        self.pid = os.getpid()
        self._reclaim_stale(name)
        n = len(instruments)
        c = cfg
        lay = ctl_layout(n, c.max_bots, c.req_capacity, c.resp_capacity)
        self.ctl_seg = Segment.create(ctl_name(name), lay.size)
        init_ctl_header(self.ctl_seg.buf, n, c.max_bots, c.req_capacity, c.resp_capacity)
        self.ctl = CtlViews(self.ctl_seg.buf)
        h = self.ctl.header
        h["version"] = LAYOUT_VERSION
        h["pid"] = self.pid
        h["state"] = CONN_STARTING
        h["epoch"] = time.time_ns()
        h["md_capacity"] = c.md_capacity
        h["snap_capacity"] = c.snapshot_capacity
        h["venue"] = venue.encode()
        h["heartbeat_ns"] = time.time_ns()
        self.md_segs: list[Segment] = []
        self.md: list[MdViews] = []
        for i, inst in enumerate(instruments):
            rec = self.ctl.instruments[i]
            rec["symbol"] = inst.symbol.encode()
            rec["tick_size"] = inst.tick_size
            rec["lot_size"] = inst.lot_size
            mlay = md_layout(c.md_capacity, c.snapshot_capacity)
            seg = Segment.create(md_name(name, inst.symbol), mlay.size)
            v = MdViews(seg.buf, c.md_capacity, c.snapshot_capacity)
            # The ring's pages, allocated now rather than by the first pass of the feed:
            # a fresh tmpfs page costs a fault (~1 us) every 64 events, which on a busy
            # stream is ~20% of publishing a depth diff for the first md_capacity events.
            # Zeros on zeros: the content is unchanged; bots map the same pages.
            v.ring.view(np.uint8)[:: os.sysconf("SC_PAGE_SIZE")] = 0
            hd = v.header
            hd["capacity"] = c.md_capacity
            hd["snap_capacity"] = c.snapshot_capacity
            hd["tick_size"] = inst.tick_size
            hd["lot_size"] = inst.lot_size
            v.seg["version"] = LAYOUT_VERSION
            v.seg["pid"] = self.pid
            v.seg["magic"] = MAGIC
            md_write_snapshot(v.words, v.snapshot, v.snapshot, 0)  # an empty book at seq 0
            self.md_segs.append(seg)
            self.md.append(v)
        h["magic"] = MAGIC
        self.bell_path = path_of(f"hftlive.{name}.bell")
        if os.path.exists(self.bell_path):
            os.unlink(self.bell_path)
        os.mkfifo(self.bell_path, 0o600)
        # Read and write: the connector holds a writer itself, so the FIFO never reaches
        # EOF. Opened read-only, once the last bot closed its end, epoll would report it
        # readable (hang-up) for ever and the event loop would spin a core on _on_bell
        # until the next bot came (fifo(7); O_RDWR on a FIFO is defined on Linux).
        self.bell_fd = os.open(self.bell_path, os.O_RDWR | os.O_NONBLOCK)
        self.n_instruments = n
        self._n_events = [0] * n
        # every market ring for compiled publishers (hftlive.ipc.md_publish_at): a venue's
        # hot path writes a frame's events straight from its scanner, without this
        # object's `publish` (its Python frame and a second numba dispatch) between them;
        # the same size check, and what it publishes is counted in `direct_events`
        self.direct_events = np.zeros(n, np.int64)
        rows = [ring_table_row(v, self.direct_events[i:]) for i, v in enumerate(self.md)]
        self.ring_table = np.array(rows, np.int64).reshape(n, RT_COLS)
        self._req_buf = np.zeros(256, request_dtype)
        self._resp_buf = np.zeros(1, response_dtype)
        self._snap_buf = np.zeros(c.snapshot_capacity, event_dtype)

    @staticmethod
    def _reclaim_stale(name: str) -> None:
        """Segments of this name left by a dead connector are reported and removed."""
        owner = read_owner(ctl_name(name))
        if owner is not None and pid_alive(owner) and owner != os.getpid():
            raise SharedMemoryError(
                f"connector {name!r} is already running as pid {owner} "
                f"({path_of(ctl_name(name))}); stop it or choose another --name"
            )
        stale = list_segments(f"hftlive.{name}.")
        if stale:
            log.warning(
                "connector %r: reclaiming %d stale shared-memory segment(s) of dead pid %s: %s",
                name, len(stale), owner, ", ".join(stale),
            )  # fmt: skip
            for s in stale:
                # a live bot's own view segment is not ours to remove
                if ".bot." in s:
                    bot_pid = read_owner(s)
                    if bot_pid is not None and pid_alive(bot_pid):
                        continue
                unlink_or_explain(path_of(s))

    # ------------------------------------------------------------------ lifecycle

    def set_state(self, state: int) -> None:
        store_word(self.ctl.words, CTL_STATE, state)

    def running(self) -> None:
        self.set_state(CONN_RUNNING)

    def set_connected(self, up: bool) -> None:
        """Every instrument's `connected` flag: the venue session is (not) usable."""
        self.ctl.instruments["connected"][: self.n_instruments] = int(up)

    def count_bad_message(self, inst: int = -1) -> None:
        """A malformed venue message: counted on `inst`, or on all when it names none."""
        if inst >= 0:
            self.ctl.instruments["n_bad_messages"][inst] += 1
        else:
            self.ctl.instruments["n_bad_messages"][: self.n_instruments] += 1

    def count_resync(self, inst: int) -> None:
        """The book of `inst` was cleared and is being resynchronised."""
        self.ctl.instruments["n_resyncs"][inst] += 1

    def heartbeat(self, now_ns: int | None = None) -> None:
        store_word(self.ctl.words, CTL_HEARTBEAT, now_ns if now_ns is not None else time.time_ns())
        self.ctl.instruments["n_events"][: self.n_instruments] = self.events_published()

    def events_published(self) -> list[int]:
        """Events published per instrument, through `publish` and through the ring table."""
        return [a + int(b) for a, b in zip(self._n_events, self.direct_events)]

    def close(self) -> None:
        self.set_state(CONN_STOPPED)
        try:
            os.close(self.bell_fd)
        except OSError:
            pass
        for p in [self.bell_path]:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        self.ctl_seg.unlink()
        for s in self.md_segs:
            s.unlink()

    # ------------------------------------------------------------------ market data

    def publish(self, inst: int, events: np.ndarray, n: int) -> None:
        if n <= 0:
            return
        v = self.md[inst]
        if n > v.ring.shape[0]:
            raise ValueError(f"a batch of {n} events does not fit a ring of {v.ring.shape[0]}")
        md_publish(v.words, v.ring, events, n)
        self._n_events[inst] += n  # to shared memory with the heartbeat: it is slow to index

    def write_snapshot(self, inst: int, book, ts: int) -> None:
        n = book.snapshot_into(self._snap_buf, ts)
        v = self.md[inst]
        md_write_snapshot(v.words, v.snapshot, self._snap_buf, n)

    # ------------------------------------------------------------------ bots

    def drain_bell(self) -> None:
        try:
            while os.read(self.bell_fd, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def slot_words(self, k: int) -> np.ndarray:
        return self.ctl.slot_words[k]

    def active_slots(self):
        """(slot, bot_id, pid, generation, acked) of every slot a bot holds."""
        w = self.ctl.slot_words
        for k in range(w.shape[0]):
            if int(w[k, S_STATE]) == SLOT_ACTIVE:
                yield (
                    k,
                    int(np.int64(w[k, S_BOT_ID]).astype(np.uint64)),
                    int(w[k, S_PID]),
                    int(w[k, S_GEN]),
                    int(w[k, S_ACK]),
                )

    def reset_rings(self, k: int) -> None:
        self.ctl.req_hdr[k][:] = 0
        self.ctl.resp_hdr[k][:] = 0

    def ack(self, k: int, gen: int) -> None:
        store_word(self.ctl.slot_words[k], S_ACK, gen)

    def reclaim_bot_view(self, bot_id: int) -> None:
        """Removes the view segment of a bot that died (its pid is gone)."""
        name = bot_name(self.name, bot_id)
        owner = read_owner(name)
        if owner is not None and pid_alive(owner):
            return
        try:
            unlink_or_explain(path_of(name))
        except SharedMemoryError as e:
            log.warning("%s", e)

    def free_slot(self, k: int) -> None:
        store_word(self.ctl.slot_words[k], S_STATE, SLOT_FREE)

    def warm_up(self) -> None:
        """Compiles (or loads from numba's cache) the ring functions of the market and bot
        paths, on scratch rings of the real ones' types: nothing is published or taken."""
        v = self.md[0]
        md_publish(v.words, v.ring, self._snap_buf, 0)  # 0 events: the sequence unchanged
        req_hdr, req = np.zeros_like(self.ctl.req_hdr[0]), np.zeros_like(self.ctl.req[0])
        spsc_take(req_hdr, req, self._req_buf)
        resp_hdr, resp = np.zeros_like(self.ctl.resp_hdr[0]), np.zeros_like(self.ctl.resp[0])
        spsc_put_many(resp_hdr, resp, self._resp_buf, 1)
        spsc_put(resp_hdr, resp, self._resp_buf)

    def take_requests(self, k: int) -> np.ndarray:
        n = spsc_take(self.ctl.req_hdr[k], self.ctl.req[k], self._req_buf)
        return self._req_buf[:n]

    def send(self, k: int, rec: np.ndarray) -> bool:
        """Queue one response (a 1-element response_dtype array) for slot k."""
        return bool(spsc_put(self.ctl.resp_hdr[k], self.ctl.resp[k], rec))

    def send_many(self, k: int, recs: np.ndarray, n: int) -> int:
        """Queue recs[:n] for slot k, visible to the bot all at once; returns how many fitted."""
        return int(spsc_put_many(self.ctl.resp_hdr[k], self.ctl.resp[k], recs, n))
