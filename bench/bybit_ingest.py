"""Ingest throughput of Bybit public market data: a Bybit-format stream blasted over a
loopback WebSocket into shared memory through `connector.bybit.marketdata.MarketData`.

The stream is tests/bybit_stream.py's (built from the real Binance capture: orderbook.50
snapshot + deltas, publicTrade; no injected faults). The sender is a minimal loopback
Bybit endpoint in a child process (picows; the bybit-emu emulator had no blast mode when
this was written): on the subscribe request it answers as Bybit does and then writes every
frame back to back into the socket's buffer. The receiver is this process: MarketData (picows, the
decoder, the book sync, the Feed) publishing into a real ShmServer market ring.

Rate = frames / (first to last frame received, polled every ~1 ms), on one core (this
process's CPU time is printed beside it: below 100%, the reader waited for the sender or
for a core shared with other work, and msgs per CPU-second is the receiver's own cost). Baseline in the same run: orjson.loads of the
same frames. Afterwards the connector's book must equal the stream's final book.

    python -m bench.bybit_ingest [--diffs N] [--in-process]

--in-process also times the connector's decoder alone (as MarketData builds it, over a
real ShmServer, no sockets), each frame once in order, and prints the mean per kind.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass

import orjson

from bench._common import figure, machine_note, table, write_figures


@dataclass(frozen=True)
class Section:
    ws_public_url: str
    depth: int = 50
    ping_interval_s: float = 20.0
    stale_after_s: float = 30.0


def _sender(frames: list[bytes], ready) -> None:
    """A minimal Bybit public endpoint (picows server): answers each request as Bybit does
    (§2.2) and, after the subscribe reply, writes every frame back to back."""
    from picows import WSListener, WSMsgType, ws_create_server

    class Blaster(WSListener):
        def on_ws_frame(self, transport, frame):
            if frame.msg_type != WSMsgType.TEXT:
                return
            m = orjson.loads(frame.get_payload_as_bytes())
            reply = {"success": True, "ret_msg": "pong" if m["op"] == "ping" else "",
                     "conn_id": "b", "req_id": m.get("req_id", ""), "op": m["op"]}  # fmt: skip
            transport.send(WSMsgType.TEXT, orjson.dumps(reply))
            if m["op"] == "subscribe":
                for f in frames:
                    transport.send(WSMsgType.TEXT, f)

    async def main():
        server = await ws_create_server(lambda r: Blaster(), "127.0.0.1", 0, use_aiofastnet=False)
        ready.send(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


def _parse_only(frames: list[bytes], repeat: int = 3) -> float:
    best = 0.0
    for _ in range(repeat):
        t = time.perf_counter()
        for f in frames:
            orjson.loads(f)
        best = max(best, len(frames) / (time.perf_counter() - t))
    return best


def in_process(frames: list[bytes]) -> dict[str, tuple[int, float]]:
    """The decoder alone, no sockets: a real ShmServer, the decoder and Feed as MarketData
    builds them, every frame once in order (the first is the snapshot), each timed.
    Returns {kind: (frames, mean ns)} for snapshot, delta and trade, plus "all"."""
    import gc
    from collections import Counter

    from connector.bybit.feed import BybitDecoder
    from connector.bybit.marketdata import BybitInstrument
    from connector.config import ConnectorSection, InstrumentConfig
    from connector.core import ConnectorCore
    from connector.feed import Feed
    from connector.shmserver import ShmServer
    from tests.bybit_stream import SYMBOL

    def kind(raw: bytes) -> str:
        if raw.startswith(b'{"topic":"publicTrade.'):
            return "trade"
        return "snapshot" if b'"type":"snapshot"' in raw[:80] else "delta"

    cfg = InstrumentConfig(SYMBOL, 0.01, 0.001)
    shm = ShmServer(f"byin{os.getpid()}", "bybit", [cfg],
                    ConnectorSection(md_capacity=1 << 16, snapshot_capacity=8192))  # fmt: skip
    try:
        inst = BybitInstrument(0, cfg)
        feed = Feed(ConnectorCore(shm, None, [cfg]), [inst], on_need_snapshot=lambda s: None)
        dec = BybitDecoder([inst], feed, depth=50)
        dec.compile()
        on_frame, clock, now = dec.on_frame, time.perf_counter_ns, time.time_ns
        kinds = [kind(f) for f in frames]
        spent: Counter = Counter()
        gc.disable()
        try:
            for f, k in zip(frames, kinds):
                t0 = clock()
                on_frame(f, now())
                spent[k] += clock() - t0
        finally:
            gc.enable()
        if dec.gaps:
            raise RuntimeError("in process: the stream gapped")
    finally:
        shm.close()
    count = Counter(kinds)
    out = {k: (count[k], spent[k] / count[k]) for k in ("snapshot", "delta", "trade")}
    out["all"] = (len(frames), sum(spent.values()) / len(frames))
    return out


async def _receive(port: int, frames: list[bytes], final) -> dict:
    from connector.bybit.marketdata import BybitInstrument, MarketData
    from connector.config import ConnectorSection, InstrumentConfig
    from connector.core import ConnectorCore
    from connector.shmserver import ShmServer
    from tests.bybit_stream import SYMBOL

    class Router:
        def broadcast_error(self, kind, code, msg, inst=-1):
            print(f"  told the bots: {kind} {code} {msg}", file=sys.stderr)

    cfg = InstrumentConfig(SYMBOL, 0.01, 0.001)
    shm = ShmServer(f"bybench{os.getpid()}", "bybit", [cfg],
                    ConnectorSection(md_capacity=1 << 16, snapshot_capacity=8192))  # fmt: skip
    try:
        inst = BybitInstrument(0, cfg)
        md = MarketData(Section(f"ws://127.0.0.1:{port}/v5/public/linear"), [inst],
                        ConnectorCore(shm, Router(), [cfg]), snapshot_interval_ms=100)  # fmt: skip
        task = asyncio.create_task(md.run())
        want = len(frames) + 1  # + the subscribe reply
        t0 = cpu0 = None
        seen = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            await asyncio.sleep(0.001)
            conn = md._conn
            if conn is None:
                continue
            seen = conn.listener.messages
            if t0 is None and seen > 0:
                t0, cpu0 = time.perf_counter(), time.process_time()
            if seen >= want:
                break
        t1, cpu1 = time.perf_counter(), time.process_time()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        d, t = inst.book, 0.01
        bids = {round(k * t, 8): q for k, q in d.bid_levels(10_000)}
        asks = {round(k * t, 8): q for k, q in d.ask_levels(10_000)}
        return {"frames": seen, "want": want, "wall_s": t1 - t0, "cpu_s": cpu1 - cpu0,
                "book_ok": (bids, asks) == final, "gaps": md.decoder.gaps}  # fmt: skip
    finally:
        shm.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--diffs", type=int, default=6000, help="capture diffs to build frames from")
    ap.add_argument("--in-process", action="store_true",
                    help="also time the decoder alone per frame kind (no sockets)")  # fmt: skip
    args = ap.parse_args(argv)
    from tests import bybit_stream

    st = bybit_stream.build(n_diffs=args.diffs, inject=False)
    frames = [raw for _, raw in st.frames]
    baseline = _parse_only(frames)
    parent, child = mp.Pipe()
    sender = mp.get_context("spawn").Process(target=_sender, args=(frames, child), daemon=True)
    sender.start()
    try:
        port = parent.recv()
        r = asyncio.run(_receive(port, frames, (st.final_bids, st.final_asks)))
    finally:
        sender.terminate()
        sender.join(5)
    rate = (r["frames"] - 1) / r["wall_s"]
    print(machine_note())
    print(f"{len(frames)} frames ({sum(map(len, frames)) / len(frames):.0f} B average)")
    per_cpu = (r["frames"] - 1) / r["cpu_s"]
    print(table(["path", "msgs/s (wall)", "us/msg", "CPU", "msgs per CPU-s"], [
        ["orjson.loads alone (baseline)", f"{baseline:,.0f}", f"{1e6 / baseline:.1f}", "100%",
         f"{baseline:,.0f}"],
        ["MarketData -> shared memory", f"{rate:,.0f}", f"{1e6 / rate:.1f}",
         f"{100 * r['cpu_s'] / r['wall_s']:.0f}%", f"{per_cpu:,.0f}"],
    ]))  # fmt: skip
    print(f"ratio to the baseline: {rate / baseline:.2f}; every frame received: "
          f"{r['frames'] >= r['want']}; book equals the stream's final book: {r['book_ok']}; "
          f"gaps: {r['gaps']}")  # fmt: skip
    if args.in_process:
        per = in_process(frames)
        print("decoder alone, in process (real ShmServer, no sockets), per frame: "
              + ", ".join(f"{k} {c} x {ns / 1e3:.2f} us" for k, (c, ns) in per.items())
              + f" = {1e9 / per['all'][1]:,.0f} msgs/s")  # fmt: skip
    ok = r["book_ok"] and r["frames"] >= r["want"] and r["gaps"] == 0
    why = "" if ok else "frames lost, a gap, or the book differs from the stream's"
    n = r["frames"] - 1
    write_figures({  # baseline: orjson.loads alone over the same frames
        # the receiver's own cost: the wall rate is bounded by the sender on 2 cores
        "bybit_ingest_msgs_per_cpu_s": figure(per_cpu if ok else None, "msgs/s", baseline, n, why),
        "bybit_ingest_msgs_per_s": figure(rate if ok else None, "msgs/s", baseline, n, why),
    })
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
