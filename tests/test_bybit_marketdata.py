"""Bybit MarketData end to end over a real loopback WebSocket (picows client, real numba,
the real ConnectorCore in front of a recording shm and router).

The peer is a small Bybit public endpoint written here on aiohttp (a test peer, not a
mock of the code under test): it keeps its own book, answers subscribe / unsubscribe /
ping as Bybit's linear stream does (venue_protocols.md §2.2: a success reply, then the
topic's snapshot; the pong is op "ping", ret_msg "pong"), plays the recorded-format stream
of tests/bybit_stream.py, and can replay a delta, drop every connection or go half-dead.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from connector.bybit.marketdata import BybitInstrument, MarketData
from connector.config import InstrumentConfig
from connector.core import ConnectorCore
from hftlive.constants import CONNECTION_RESTORED, ERR_BOOK_RESYNC, ERR_CONNECTION
from tests import bybit_stream
from tests.bybit_stream import SYMBOL, Shm
from tests.conftest import RecordingRouter

DEADLINE_S = 10.0
BOOK = f"orderbook.50.{SYMBOL}"
TRADE = f"publicTrade.{SYMBOL}"


@dataclass(frozen=True)
class Section:
    """The fields of `[bybit]` (BybitConfig, connector/bybit/client.py) MarketData reads."""

    ws_public_url: str
    depth: int = 50
    ping_interval_s: float = 20.0
    stale_after_s: float = 10.0


def run(coro, timeout: float = 60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def wait_until(cond, what: str, timeout: float = DEADLINE_S) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not cond():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class Peer:
    """A Bybit public linear endpoint on 127.0.0.1."""

    def __init__(self):
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.u, self.seq, self.cts = 0, 0, 0
        self.subs: dict[web.WebSocketResponse, set[str]] = {}
        self.silent: set[web.WebSocketResponse] = set()
        self.got: list[dict] = []  # every request, in order
        self.connections = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> Peer:
        app = web.Application()
        app.router.add_get("/v5/public/linear", self._ws)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/v5/public/linear"
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()

    # ------------------------------------------------------------------- the venue's book
    def levels(self) -> tuple[dict, dict]:
        return ({float(p): float(q) for p, q in self.bids.items()},
                {float(p): float(q) for p, q in self.asks.items()})  # fmt: skip

    def _frame(self, kind: str, b: list, a: list, u: int) -> str:
        m = {"topic": BOOK, "type": kind, "ts": self.cts + 1,
             "data": {"s": SYMBOL, "b": b, "a": a, "u": u, "seq": self.seq}, "cts": self.cts}  # fmt: skip
        return json.dumps(m, separators=(",", ":"))

    def snapshot(self) -> str:
        b = sorted(self.bids.items(), key=lambda lv: -float(lv[0]))
        a = sorted(self.asks.items(), key=lambda lv: float(lv[0]))
        return self._frame("snapshot", [list(x) for x in b], [list(x) for x in a], self.u)

    async def play(self, raw: bytes) -> None:
        """One frame of a recorded stream: the book's frames move this venue's book (its
        snapshots set it), and go out to the subscribers of their topic."""
        m = json.loads(raw)
        if m["topic"].startswith("orderbook."):
            d = m["data"]
            if m["type"] == "snapshot":
                self.bids, self.asks = {}, {}
            for side, lv in ((self.bids, d["b"]), (self.asks, d["a"])):
                for p, q in lv:
                    if float(q) == 0:
                        side.pop(p, None)
                    else:
                        side[p] = q
            self.u, self.seq, self.cts = d["u"], d["seq"], m["cts"]
        await self.send(m["topic"], raw.decode())

    async def send(self, topic: str, text: str) -> None:
        for ws, topics in list(self.subs.items()):
            if topic in topics and ws not in self.silent and not ws.closed:
                await ws.send_str(text)

    async def replay_last_delta(self) -> None:
        """A delta whose u does not grow (the venue resent one)."""
        await self.send(BOOK, self._frame("delta", [], [], self.u))

    async def drop_all(self) -> None:
        for ws in list(self.subs):
            await ws.close()

    def go_silent(self) -> None:
        """Every open connection goes half-dead: nothing in, nothing out."""
        self.silent.update(self.subs)

    # ---------------------------------------------------------------------- the socket
    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections += 1
        self.subs[ws] = set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT or ws in self.silent:
                    continue
                m = json.loads(msg.data)
                self.got.append(m)
                op, req_id = m.get("op"), m.get("req_id", "")
                reply = {
                    "success": True,
                    "ret_msg": "",
                    "conn_id": "c1",
                    "req_id": req_id,
                    "op": op,
                }
                if op == "ping":
                    reply["ret_msg"] = "pong"
                    await ws.send_str(json.dumps(reply))
                elif op in ("subscribe", "unsubscribe"):
                    await ws.send_str(json.dumps(reply))
                    for t in m["args"]:
                        if op == "unsubscribe":
                            self.subs[ws].discard(t)
                            continue
                        self.subs[ws].add(t)
                        if t == BOOK:  # [BY] the first message after subscribing: a snapshot
                            await ws.send_str(self.snapshot())
        finally:
            self.subs.pop(ws, None)
        return ws


class Session:
    """MarketData for ETHUSDT against `peer`, running in this loop."""

    def __init__(self, peer: Peer, **section):
        cfg = InstrumentConfig(SYMBOL, 0.01, 0.001)
        self.shm, self.router = Shm(0.01, 0.001), RecordingRouter()
        core = ConnectorCore(self.shm, self.router, [cfg])
        self.inst = BybitInstrument(0, cfg)
        self.md = MarketData(
            Section(peer.url, **section), [self.inst], core, snapshot_interval_ms=50
        )
        self.peer = peer
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> Session:
        self.task = asyncio.create_task(self.md.run())
        return self

    async def __aexit__(self, *exc) -> None:
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass

    def book(self) -> tuple[dict, dict]:
        d, t = self.inst.book, 0.01
        return ({round(k * t, 8): q for k, q in d.bid_levels(10_000)},
                {round(k * t, 8): q for k, q in d.ask_levels(10_000)})  # fmt: skip

    def in_sync(self) -> bool:
        want = self.peer.levels()
        return bool(want[0]) and self.book() == want and self.shm.bot_levels() == want

    def told(self, kind: int) -> list[tuple[int, str]]:
        return [(c, m) for k, c, m in self.router.told if k == kind]

    async def wait_synced(self, what: str) -> None:
        await wait_until(self.in_sync, what)


def stream_frames(n_diffs: int) -> list[bytes]:
    """The recorded-format stream without injections: a snapshot, then deltas and trades."""
    return [raw for _, raw in bybit_stream.build(n_diffs=n_diffs, inject=False).frames]


def test_snapshot_then_deltas_reach_the_book_trades_print_and_pings_are_answered():
    async def main():
        frames = stream_frames(300)
        async with Peer() as peer:
            await peer.play(frames[0])  # the venue's book before anyone connects
            async with Session(peer, ping_interval_s=0.1) as s:
                await wait_until(lambda: peer.got, "the subscription")
                sub = peer.got[0]
                assert sub["op"] == "subscribe" and sub["args"] == [BOOK, TRADE]
                await s.wait_synced("the snapshot in the book")
                for raw in frames[1:]:
                    await peer.play(raw)
                await s.wait_synced("every delta in the book")
                n_trades = sum(raw.startswith(b'{"topic":"publicTrade') for raw in frames)
                await wait_until(lambda: len(s.shm.trades) == n_trades, "every trade printed")
                assert n_trades > 10
                # app-level pings, answered: {"req_id": ..., "op": "ping"} (§2.2)
                await wait_until(lambda: s.md.pongs >= 2, "two pongs")
                pings = [m for m in peer.got if m["op"] == "ping"]
                assert len(pings) >= 2 and all(set(m) == {"req_id", "op"} for m in pings)
                assert len({m["req_id"] for m in pings}) == len(pings)
                await wait_until(lambda: s.shm.snapshots >= 2, "book snapshots for lagging bots")
                assert s.told(ERR_BOOK_RESYNC) == [] and s.md.connections == 1

    run(main())


def test_a_gap_resubscribes_the_topic_and_the_fresh_snapshot_restores_the_book():
    async def main():
        frames = stream_frames(200)
        async with Peer() as peer:
            await peer.play(frames[0])
            async with Session(peer) as s:
                await s.wait_synced("the first snapshot")
                for raw in frames[1:100]:
                    await peer.play(raw)
                await s.wait_synced("the first deltas")
                await peer.replay_last_delta()  # u does not grow: a gap
                await wait_until(lambda: s.md.resubscribes == 1, "a resubscribe")
                await wait_until(lambda: len(s.told(ERR_BOOK_RESYNC)) == 1, "the bots told")
                assert "does not follow" in s.told(ERR_BOOK_RESYNC)[0][1]
                for raw in frames[100:]:
                    await peer.play(raw)
                await s.wait_synced("the fresh snapshot and the deltas after it")
                ops = [(m["op"], m.get("args")) for m in peer.got if m["op"] != "ping"]
                assert ops == [("subscribe", [BOOK, TRADE]), ("unsubscribe", [BOOK]),
                               ("subscribe", [BOOK])]  # fmt: skip
                assert s.md.connections == 1 and len(s.told(ERR_BOOK_RESYNC)) == 1

    run(main())


def test_a_dropped_or_silent_connection_reconnects_and_the_bots_are_told():
    async def main():
        frames = stream_frames(200)
        async with Peer() as peer:
            await peer.play(frames[0])
            # pings every 0.1 s keep a quiet but live connection from looking stale
            async with Session(peer, stale_after_s=1.0, ping_interval_s=0.1) as s:
                await s.wait_synced("the first snapshot")
                for raw in frames[1:60]:
                    await peer.play(raw)
                await s.wait_synced("the first deltas")
                # the venue drops the connection
                await peer.drop_all()
                await wait_until(lambda: s.md.connections == 2 and s.in_sync(),
                                 "a new connection with its snapshot")  # fmt: skip
                lost = s.told(ERR_CONNECTION)
                assert [c for c, _ in lost] == [0, CONNECTION_RESTORED]
                assert "Bybit public market data stream lost" in lost[0][1]
                assert [m for _, m in s.told(ERR_BOOK_RESYNC)] == [
                    f"{SYMBOL}: book reset (reconnect)"
                ]
                # the connection goes half-dead: the watchdog drops it after stale_after_s
                for raw in frames[60:120]:
                    await peer.play(raw)
                await s.wait_synced("deltas on the new connection")
                peer.go_silent()
                await wait_until(lambda: s.md.connections == 3 and s.in_sync(),
                                 "a third connection after the silence")  # fmt: skip
                for raw in frames[120:]:
                    await peer.play(raw)
                await s.wait_synced("deltas on the third connection")
                assert [c for c, _ in s.told(ERR_CONNECTION)] == [0, CONNECTION_RESTORED] * 2
                assert "silent for 1 s" in s.told(ERR_CONNECTION)[2][1]
                assert len(s.told(ERR_BOOK_RESYNC)) == 2

    run(main())
