"""Ingest throughput of the Binance USD-M connector: a capture blasted through the emulator,
counted where it lands, in shared memory.

The emulator (`--bench blast`, connector/binancefutures/emulator/blast.py) pre-encodes
every line of the capture as a WebSocket frame carrying the raw combined-stream JSON as
recorded, before any clock starts, and on request writes them back-to-back on the routes
Binance uses (depth@0ms and bookTicker on /public, trade on /market). Its GET
/fapi/v1/depth serves the capture's own REST snapshot line, so the connector, primed with
the lines up to the diff that bridges that snapshot, syncs its book and applies every
later diff. Then the rest of the capture ("main") is sent as fast as the reader takes it.

Counted: the batches and events the connector publishes to the instrument's market ring
(one batch per venue message; a batch's events share the message's receive stamp, which
tells batches apart). Rate = batches / (first to last batch seen in shared memory, polled
every ~1 ms). CPU = the connector's utime+stime from /proc over the same span: 100% is one
core. Afterwards the connector's book snapshot is compared level for level with the
capture's book (snapshot + every diff), and its log is checked for gaps and resyncs.

Rows, all on the same messages (the "main" part of the capture):
  orjson.loads alone          in this process, bytes as recorded: the issue's baseline
  connector parse_stream      connector.binancefutures.protocol.parse_stream alone
  websockets client alone     a child process with the connector's websockets options,
                              receiving the blast on both routes and doing nothing else
  picows client alone         the same with the connector's market-data transport
                              (connector/transport/md.py, picows)
  connector -> shared memory  the headline: python -m connector, real sockets, real shm

    python -m bench.bf_ingest [--profile] [--no-client] [--in-process]

--profile runs the connector once more under cProfile and prints where its time goes;
--in-process times the connector's decoder alone (real ShmServer, no sockets), per kind.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import pstats
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter

import numpy as np

from bench._common import figure, machine_note, table, write_figures
from bench._venues import CAPTURE, BfConnector, Emulator, proc_cpu_s, wait_for
from connector.binancefutures.emulator.blast import HIGH_WATER, load_capture
from hftlive.constants import (
    BUY_EVENT,
    DEPTH_BBO_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    TRADE_EVENT,
)
from hftlive.layout import MD_SNAP_LOCK, MD_SNAP_N, MD_SNAP_SEQ, MD_WRITE_SEQ

TARGET_MSGS_S = 400_000  # issue 11 item 4 (aim: 500,000, half of orjson.loads alone)
MD_CAPACITY = 1 << 20  # events; the whole run fits, so the ring is scanned once at the end
POLL_S = 0.001
QUIET_S = 0.5  # no new batch for this long after the sender drained: the run is over
RUN_TIMEOUT_S = 60.0
TICK = 0.01  # ethusdt


# ------------------------------------------------------------------ baselines (in process)
def _rate(fn, raws: list[bytes], repeat: int) -> tuple[float, float]:
    """(msgs/s, cpu time / wall time) of fn over every raw message, best of `repeat`."""
    best, cpu = 0.0, 0.0
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        for r in raws:
            fn(r)
        dt = time.perf_counter() - t0
        if len(raws) / dt > best:
            best, cpu = len(raws) / dt, time.process_time() - c0
    return best, cpu / (len(raws) / best)


def baselines(cap) -> dict:
    import orjson

    from connector.binancefutures.protocol import parse_stream

    raws = [m.raw for m in cap.main]
    out = {"orjson": _rate(orjson.loads, raws, 3), "parse": _rate(parse_stream, raws, 2)}
    per_kind = {}
    for kind in ("depth", "bookTicker", "trade"):
        sub = [m.raw for m in cap.main if m.kind == kind]
        per_kind[kind] = (_rate(orjson.loads, sub, 2)[0], _rate(parse_stream, sub, 2)[0])
    out["per_kind"] = per_kind
    return out


# ------------------------------------------------------------------ a client alone
def _client_main(urls: list[str], expected: int, conn, transport: str = "websockets") -> None:
    """Child process: receive on every url until `expected` frames came; report times.

    `transport`: "websockets" (the connector's options for it) or "picows" (the connector's
    market-data transport, connector.transport.md)."""
    import asyncio

    from websockets.asyncio.client import connect

    from connector.binancefutures.streams import WS_OPTS
    from connector.transport.md import MdConnection

    async def run() -> tuple[int, int, int]:
        n, first, last = 0, 0, 0
        done = asyncio.Event()

        def on_message(_raw: bytes, t: int) -> None:  # t: stamped as the connector does
            nonlocal n, first, last
            if n == 0:
                first = t
            n += 1
            last = t
            if n >= expected:
                done.set()

        async def read(url: str) -> None:
            if transport == "picows":
                c = await MdConnection.open(url, on_message)
                await c.wait_closed(RUN_TIMEOUT_S)
                return
            async with connect(url, **WS_OPTS) as ws:
                async for raw in ws:
                    on_message(raw, time.time_ns())

        tasks = [asyncio.create_task(read(u)) for u in urls]
        try:
            await asyncio.wait_for(done.wait(), RUN_TIMEOUT_S)
        except TimeoutError:
            pass
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return n, first, last

    c0 = time.process_time()
    n, first, last = asyncio.run(run())
    conn.send((n, first, last, time.process_time() - c0))


def client_alone(emu: Emulator, cap, urls: list[str], transport: str) -> dict:
    expected = len(cap.main)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_client_main, args=(urls, expected, child, transport), daemon=True)
    p.start()
    try:
        wait_for(lambda: emu.control("/_emulator/blast")["conns"] == {"public": 1, "market": 1},
                 30, "the client's connections")  # fmt: skip
        c0 = proc_cpu_s(p.pid)
        emu.control("/_emulator/blast", {"send": "main"})
        if not parent.poll(RUN_TIMEOUT_S + 10):
            raise RuntimeError(f"the {transport} client did not report")
        n, first, last, _cpu = parent.recv()
        cpu = proc_cpu_s(p.pid) - c0 if p.is_alive() else _cpu
        p.join(10)
    finally:
        if p.is_alive():
            p.kill()
            p.join()
    wait_for(lambda: emu.control("/_emulator/blast")["sending"] is None, 30, "the sender")
    span = (last - first) / 1e9
    return {"msgs": n, "span": span, "rate": (n - 1) / span if span > 0 else 0.0,
            "cpu": cpu / span * 100 if span > 0 else float("nan")}  # fmt: skip


# ------------------------------------------------------------------ the connector
def _md_views(name: str):
    from hftlive.ipc import MdViews
    from hftlive.layout import md_name
    from hftlive.shm import Segment

    seg = Segment.attach(md_name(name, "ethusdt"))
    return seg, MdViews(seg.buf)


def _wait_quiet(words, quiet_s: float, timeout: float) -> int:
    """Waits until the ring's write_seq stays put for quiet_s; returns it."""
    deadline = time.monotonic() + timeout
    last, since = int(words[MD_WRITE_SEQ]), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.01)
        ws = int(words[MD_WRITE_SEQ])
        if ws != last:
            last, since = ws, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return ws
    raise TimeoutError("the market ring did not settle")


def run_connector(emu: Emulator, cap, name: str, profile_to: str | None = None) -> dict:
    """Starts a connector, primes it, blasts the main part, measures; stops it."""
    conn = BfConnector(name, emu.urls, md_capacity=MD_CAPACITY, profile_to=profile_to)
    seg = None
    try:
        conn.start(60 if profile_to else 30)
        wait_for(lambda: emu.control("/_emulator/blast")["conns"] == {"public": 1, "market": 1},
                 30, "the connector's market streams", proc=conn.proc, log=conn.text)  # fmt: skip
        emu.control("/_emulator/blast", {"send": "prime"})
        wait_for(lambda: "book synced" in conn.text(), 30, "the connector's book to sync",
                 proc=conn.proc, log=conn.text)  # fmt: skip
        seg, v = _md_views(name)
        words = v.words
        seq0 = _wait_quiet(words, 0.3, 30)
        pid = conn.proc.pid
        cpu0, ecpu0 = proc_cpu_s(pid), emu.cpu_s()
        emu.control("/_emulator/blast", {"send": "main"})
        t_first = t_last = t_drained = 0
        cpu_last = cpu0
        last, next_check = seq0, 0.0
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while time.monotonic() < deadline:
            ws = int(words[MD_WRITE_SEQ])
            now = time.time_ns()
            if ws != last:
                last, t_last = ws, now
                t_first = t_first or now
                cpu_last = proc_cpu_s(pid)
            elif t_drained and (now - max(t_last, t_drained)) / 1e9 >= QUIET_S:
                break
            if not t_drained and time.monotonic() >= next_check:
                next_check = time.monotonic() + 0.1
                if emu.control("/_emulator/blast")["sending"] is None:
                    t_drained = now
            time.sleep(POLL_S)
        else:
            raise TimeoutError("the blast did not finish in time")
        if not t_first:
            raise RuntimeError(f"nothing reached shared memory:\n{conn.text()[-3000:]}")
        ecpu = emu.cpu_s() - ecpu0
        sent = emu.control("/_emulator/blast")["sent"]["main"]
        r = _scan(v, seq0, last)
        span = (t_last - t_first) / 1e9
        r.update(span=span, rate=r["msgs"] / span, ev_rate=r["events"] / span,
                 cpu=(cpu_last - cpu0) / span * 100, emu_cpu=ecpu, sent=sent)  # fmt: skip
        time.sleep(0.3)  # the connector writes its book snapshot every 100 ms
        r["book"] = _compare_book(v, cap, last)
        text = conn.text()
        r["log"] = {k: text.count(k) for k in ("depth gap", "book reset", "malformed",
                                                "stream lost", "book synced")}  # fmt: skip
        return r
    finally:
        if seg is not None:
            seg.close()  # unmapped once the views are gone; the connector unlinks the file
        conn.stop()


def _scan(v, seq0: int, seq1: int) -> dict:
    """Batches and events published in [seq0, seq1), by kind (the ring holds them all)."""
    cap = v.ring.shape[0]
    n = seq1 - seq0
    if n > cap:
        raise RuntimeError(f"{n} events do not fit the ring of {cap}: raise MD_CAPACITY")
    ev = v.ring[np.arange(seq0, seq1) & (cap - 1)]
    kind = ev["ev"].astype(np.int64) & 0xFF
    lts = ev["local_ts"]
    new = np.ones(n, bool)
    new[1:] = lts[1:] != lts[:-1]  # a batch's events share its message's receive stamp
    names = {DEPTH_EVENT: "depth", DEPTH_BBO_EVENT: "bookTicker", TRADE_EVENT: "trade"}
    by_kind = Counter(names.get(int(k), "other") for k in kind[new])
    return {"msgs": int(new.sum()), "events": int(n), "by_kind": dict(by_kind),
            "recv_span": (int(lts[-1]) - int(lts[0])) / 1e9 if n else 0.0}  # fmt: skip


def _expected_book(cap) -> tuple[dict[int, float], dict[int, float]]:
    """The capture's book after every line: its snapshot, then each diff with u >= L."""
    import orjson

    snap = cap.snapshot
    top = snap["lastUpdateId"]
    sides = ({}, {})
    for side, key in ((0, "bids"), (1, "asks")):
        for px, qty in snap[key]:
            sides[side][round(float(px) / TICK)] = float(qty)
    for m in (*cap.prime, *cap.main):
        if m.kind != "depth":
            continue
        d = orjson.loads(m.raw)["data"]
        if d["u"] < top:
            continue
        for side, key in ((0, "b"), (1, "a")):
            book = sides[side]
            for px, qty in d[key]:
                t, q = round(float(px) / TICK), float(qty)
                if q == 0.0:
                    book.pop(t, None)
                else:
                    book[t] = q
    return sides


def _compare_book(v, cap, seq: int) -> str:
    """The connector's book snapshot against the capture's book, level for level."""
    words = v.words
    for _ in range(200):
        lock = int(words[MD_SNAP_LOCK])
        n, snap_seq = int(words[MD_SNAP_N]), int(words[MD_SNAP_SEQ])
        ev = v.snapshot[:n].copy()
        if lock % 2 == 0 and int(words[MD_SNAP_LOCK]) == lock and snap_seq == seq:
            break
        time.sleep(0.01)
    else:
        return "no snapshot consistent with the last batch"
    kind = ev["ev"].astype(np.int64) & 0xFF
    is_bid = (ev["ev"].astype(np.int64) & BUY_EVENT) != 0
    ok = kind == DEPTH_SNAPSHOT_EVENT
    got = [
        {round(p / TICK): q for p, q in zip(ev["px"][ok & sel], ev["qty"][ok & sel])}
        for sel in (is_bid, ~is_bid)
    ]
    want = _expected_book(cap)
    bad = 0
    for side in (0, 1):
        # the snapshot may hold fewer levels than the book (its capacity): compare its range
        ticks = sorted(want[side], reverse=side == 0)[: len(got[side])]
        bad += sum(abs(want[side][t] - got[side].get(t, -1.0)) > 1e-9 for t in ticks)
        bad += len(set(got[side]) - set(ticks))
    nb, na = len(got[0]), len(got[1])
    if bad:
        return f"DIFFERS: {bad} of {nb + na} levels"
    return f"equal ({nb} bid + {na} ask levels, {len(want[0]) + len(want[1])} in the book)"


# ------------------------------------------------------------------ profile
def profile_text(path: str, top: int = 18) -> str:
    """Where the profiled connector spent its time: by area, then the top functions."""
    st = pstats.Stats(path)
    groups: Counter = Counter()
    idle = 0.0
    for (file, _line, fn), (_cc, _nc, tt, _ct, _callers) in st.stats.items():
        if "select.epoll" in fn:
            idle += tt  # waiting for the sockets: not work
        else:
            groups[_area(file)] += tt
    busy = st.total_tt - idle
    out = [f"connector under cProfile, whole process life (start-up and priming included): "
           f"{busy:.2f} s busy, {idle:.2f} s waiting in epoll; own time by area:"]  # fmt: skip
    rows = [[a, t, f"{t / busy * 100:.0f}%"] for a, t in groups.most_common(11)]
    out.append(table(["area", "s", "share of busy"], rows))
    buf = io.StringIO()
    pstats.Stats(path, stream=buf).sort_stats("tottime").print_stats(top)
    lines = buf.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    out.append(f"top {top} functions by own time:")
    root = str(_repo_root()) + "/"
    out += ["  " + line.replace(root, "")[:150] for line in lines[start:] if line.strip()]
    return "\n".join(out)


def _repo_root():
    from bench._common import ROOT

    return ROOT


def _area(file: str) -> str:
    f = file.replace("\\", "/")
    for key, name in (
        ("/websockets/", "websockets (frames, reading)"),
        ("transport/md", "picows listener (on_ws_frame)"),
        ("binancefutures/_ingest", "ingest_frame (compiled: scan, book, ring)"),
        ("binancefutures/feed", "decoder (on_frame, checked path)"),
        ("binancefutures/protocol", "protocol.parse_stream"),
        ("binancefutures/_fields", "protocol.parse_stream"),
        ("binancefutures/_levels", "protocol level scanner"),
        ("binancefutures/messages", "protocol messages"),
        ("binancefutures/book_sync", "book_sync"),
        ("binancefutures/streams", "streams (on_frame, publish)"),
        ("connector/book", "RecordingBook / Batch"),
        ("connector/shmserver", "shmserver.publish"),
        ("hftlive/", "hftlive (DepthBook, rings)"),
        ("/numba/", "numba dispatch"),
        ("/asyncio/", "asyncio"),
        ("/numpy/", "numpy"),
    ):
        if key in f:
            return name
    if file == "~":
        return "builtins (orjson, numpy C, ...)"
    return "other"


# ------------------------------------------------------------------ in process, per kind
def in_process(cap) -> dict[str, tuple[int, float]]:
    """The connector's decoder alone, no sockets: a real ShmServer (md_capacity as the
    run's), the decoder as MarketData builds it, primed and synced on the capture's
    own snapshot, then every main message once in order, each timed. Returns
    {kind: (messages, mean ns)}, plus "all"."""
    import gc

    import orjson

    from connector.binancefutures.feed import BinanceDecoder
    from connector.binancefutures.protocol import parse_depth_snapshot
    from connector.binancefutures.streams import MdInstrument
    from connector.config import ConnectorSection, InstrumentConfig
    from connector.core import ConnectorCore
    from connector.feed import Feed
    from connector.shmserver import ShmServer

    ic = InstrumentConfig("ethusdt", TICK, 0.001)
    cfg = ConnectorSection(md_capacity=MD_CAPACITY, snapshot_capacity=8192)
    shm = ShmServer(f"bfin{os.getpid()}", "binancefutures", [ic], cfg)
    try:
        inst = MdInstrument(0, ic)
        dec = BinanceDecoder([inst], Feed(ConnectorCore(shm, None, [ic]), [inst]))
        dec.compile()
        for m in cap.prime:
            dec.on_frame(m.raw, time.time_ns())
        dec.on_snapshot(inst, parse_depth_snapshot(orjson.dumps(cap.snapshot)), time.time_ns())
        if dec.syncs[0].state != "SYNCED":
            raise RuntimeError("in process: the book did not sync on the capture's snapshot")
        on_frame, clock, now = dec.on_frame, time.perf_counter_ns, time.time_ns
        spent: Counter = Counter()
        gc.disable()
        try:
            for m in cap.main:
                t0 = clock()
                on_frame(m.raw, now())
                spent[m.kind] += clock() - t0
        finally:
            gc.enable()
    finally:
        shm.close()
    count = Counter(m.kind for m in cap.main)
    out = {k: (count[k], spent[k] / count[k]) for k in ("bookTicker", "trade", "depth")}
    out["all"] = (len(cap.main), sum(spent.values()) / len(cap.main))
    return out


# ------------------------------------------------------------------ main
def _mix(cap) -> str:
    c = Counter(m.kind for m in cap.main)
    n = len(cap.main)
    nbytes = sum(len(m.raw) for m in cap.main)
    parts = [f"{k} {c[k]} ({c[k] / n * 100:.0f}%)" for k in ("bookTicker", "trade", "depth")]
    return (f"message mix (the {n} main messages, {nbytes / 1e6:.1f} MB of JSON): "
            + ", ".join(parts))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bf_ingest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--profile", action="store_true", help="also profile the connector once")
    p.add_argument("--no-client", action="store_true", help="skip the client-alone rows")
    p.add_argument("--in-process", action="store_true",
                   help="also time the decoder alone per message kind (no sockets)")  # fmt: skip
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-ups
    t_start = time.monotonic()
    print(f"bench.bf_ingest: {CAPTURE.name} blasted through the emulator into the connector")
    print(machine_note())
    if not CAPTURE.exists():
        print(f"capture not found: {CAPTURE}", file=sys.stderr)
        return 1
    cap = load_capture(str(CAPTURE), ["ethusdt"])
    print(_mix(cap))
    base = baselines(cap)
    emu = Emulator("blast", data=str(CAPTURE)).start()
    prof_dir = tempfile.mkdtemp(prefix="hftlive-bench-prof-")
    prof_file = os.path.join(prof_dir, "connector.prof")
    prof_text = None
    try:
        clients = {}
        if not args.no_client:
            u = emu.urls
            urls = [f"{u['ws_public']}/stream?streams=ethusdt@depth@0ms/ethusdt@bookTicker",
                    f"{u['ws_market']}/stream?streams=ethusdt@trade"]  # fmt: skip
            for transport in ("websockets", "picows"):
                clients[transport] = client_alone(emu, cap, urls, transport)
        r = run_connector(emu, cap, f"bfi{os.getpid()}")
        prof = None
        if args.profile:
            prof = run_connector(emu, cap, f"bfp{os.getpid()}", profile_to=prof_file)
            prof_text = profile_text(prof_file)
    finally:
        emu.stop()
        shutil.rmtree(prof_dir, ignore_errors=True)

    o_rate, o_cpu = base["orjson"]
    p_rate, p_cpu = base["parse"]

    def ratio(x: float) -> str:
        return f"{x / o_rate:.2f}"

    n = len(cap.main)
    rows = [
        ["orjson.loads alone (in process)", n, n / o_rate, o_rate, "-", "1.00", o_cpu * 100],
        ["connector parse_stream alone (in process)", n, n / p_rate, p_rate, "-", ratio(p_rate),
         p_cpu * 100],
    ]  # fmt: skip
    for transport, client in clients.items():
        rows.append([f"{transport} client alone (recv only)", client["msgs"], client["span"],
                     client["rate"], "-", ratio(client["rate"]), client["cpu"]])  # fmt: skip
    rows.append(["connector: capture -> shared memory", r["msgs"], r["span"], r["rate"],
                 r["ev_rate"], ratio(r["rate"]), r["cpu"]])  # fmt: skip
    print(table(["what", "msgs", "s", "msgs/s", "events/s", "x orjson", "cpu %"], rows))
    verdict = "PASS" if r["rate"] >= TARGET_MSGS_S else "MISS"
    print(f"target: >= {TARGET_MSGS_S:,} mixed msgs/s on one core: {verdict} "
          f"({r['rate']:,.0f} msgs/s, {r['rate'] / TARGET_MSGS_S:.2f}x the target; "
          f"connector cpu {r['cpu']:.0f}% of one core)")  # fmt: skip
    pk = base["per_kind"]
    print("alone, per kind, msgs/s (orjson.loads / parse_stream): "
          + ", ".join(f"{k} {pk[k][0]:,.0f} / {pk[k][1]:,.0f}" for k in pk))  # fmt: skip
    by = r["by_kind"]
    print(f"reached shared memory: {r['msgs']} of {n} messages sent ("
          + ", ".join(f"{k} {by.get(k, 0)}" for k in ("bookTicker", "trade", "depth", "other"))
          + f"), {r['events']} events; receive stamps span {r['recv_span']:.3f} s")  # fmt: skip
    s = r["sent"]
    send_s = (s["t_last_ns"] - s["t_first_ns"]) / 1e9
    print(f"sender (emulator): handed {n} pre-encoded frames to the sockets in {send_s:.3f} s "
          f"(waiting whenever the reader was {HIGH_WATER >> 10} KB behind); emulator cpu "
          f"{r['emu_cpu']:.2f} s over the run")  # fmt: skip
    print(f"book after the run vs the capture's: {r['book']}; connector log: "
          + ", ".join(f"'{k}' x{c}" for k, c in r["log"].items()))  # fmt: skip
    bad = []
    if not r["book"].startswith("equal"):
        bad.append(f"book after the run: {r['book']}")
    bad += [f"connector log: '{k}' x{c}" for k, c in r["log"].items()
            if c and k in ("depth gap", "book reset", "malformed", "stream lost")]  # fmt: skip
    write_figures({  # baseline: orjson.loads alone over the same messages
        "bf_ingest_msgs_per_s": figure(r["rate"], "msgs/s", o_rate, r["msgs"], "; ".join(bad)),
        "bf_ingest_cpu_pct": figure(r["cpu"], "%", None, r["msgs"], "; ".join(bad)),
    })  # fmt: skip
    if prof is not None:
        print(f"profiled run (cProfile slows it): {prof['rate']:,.0f} msgs/s")
        print(prof_text)
    if args.in_process:
        per = in_process(cap)
        print("decoder alone, in process (real ShmServer, no sockets), per message: "
              + ", ".join(f"{k} {c} x {ns / 1e3:.2f} us" for k, (c, ns) in per.items())
              + f" = {1e9 / per['all'][1]:,.0f} msgs/s")  # fmt: skip
    print(f"elapsed {time.monotonic() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; child processes stopped", file=sys.stderr)
        sys.exit(130)
