"""Benchmark instrumentation of the emulator: order stamps and a pre-encoded "blast" market.

`python -m connector.binancefutures.emulator --bench orders|blast ...` serves a
`BenchEmulator`, the ordinary emulator plus:

orders (both modes)
    Every order request (REST `POST`/`PUT`/`DELETE /fapi/v1/order`, WS-API `order.place`/
    `order.modify`/`order.cancel`) is stamped with the wall clock (`time.time_ns()`,
    CLOCK_REALTIME, comparable across processes) when its handler receives it (after the
    HTTP request or WS frame has been parsed), when its reply starts to be written to the
    socket, and when the user-stream event it caused (ORDER_TRADE_UPDATE with x = NEW,
    CANCELED or AMENDMENT) starts to be written: a client learns the outcome from
    whichever comes first, and which one does depends on task scheduling here. Writing
    costs ~40 us for a REST reply (aiohttp's response), a few us for a WS frame.
    `GET /_emulator/bench/orders?since=N` returns them, oldest first, from the N-th:
    `{"n": total, "orders": [[kind, transport, client_id, recv_ns, reply_ns, status,
    event_ns], ..]}` (0: not written, e.g. no event for a rejected order).

blast (needs `--data <capture>`; bench/bf_ingest.py)
    The capture is not replayed. At start-up every market line is pre-encoded as one
    WebSocket text frame whose payload is the raw combined-stream JSON exactly as recorded,
    and the frames are cut in two parts: "prime", up to the first diff that bridges the
    capture's REST snapshot line (u >= lastUpdateId), and "main", every later line.
    `GET /fapi/v1/depth` serves that snapshot line (its lastUpdateId and levels), so a
    client primed with the first part syncs its book and applies every diff of the second.
    Market connections (`/public/stream?streams=..`, `/market/stream?streams=..`, which must
    ask for every stream the capture has on that route) receive nothing until asked:

        POST /_emulator/blast {"send": "prime"}   send a part to every connection now
        POST /_emulator/blast {"send": "main"}    (409 while a part is being sent)
        GET  /_emulator/blast                     connections, frame counts, send times

    A part goes out back-to-back, in file order per route (depth and bookTicker on
    `/public`, trade on `/market`, as Binance routes them), in writes of ~256 KB per route,
    and only waits while more than `HIGH_WATER` bytes a connection's socket could not take
    yet are buffered here (the client reads slower than we write). Between the two routes
    the order is kept within one write window.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import orjson
from aiohttp import web

from connector.binancefutures.emulator import wsapi
from connector.binancefutures.emulator.server import WS_OPTS, Emulator, EmulatorConfig
from connector.binancefutures.emulator.streams import MARKET, PUBLIC, WSAPI, Conn, stream_route

log = logging.getLogger(__name__)

WINDOW_BYTES = 256 * 1024  # bytes of frames per write window (both routes together)
HIGH_WATER = 1 << 20  # user-space send buffer per connection above which the sender waits
DRAIN_POLL_S = 0.0005
WSAPI_MAX_INCOMING_PER_S = 1_000_000  # see BenchEmulator._ws_api
ORDER_PATHS = {"POST": "place", "PUT": "modify", "DELETE": "cancel"}
WS_ORDER_METHODS = {"order.place": "place", "order.modify": "modify", "order.cancel": "cancel"}
EXEC_TYPE = {"place": "NEW", "modify": "AMENDMENT", "cancel": "CANCELED"}  # the event's "x"


# ---------------------------------------------------------------------- the capture
@dataclass(frozen=True, slots=True)
class Message:
    """One market line of a capture: its route, kind and raw combined-stream JSON."""

    route: str
    kind: str  # "depth", "bookTicker" or "trade"
    stream: str
    raw: bytes


@dataclass
class Capture:
    """A capture split for the blast: the snapshot, the priming part and the main part."""

    snapshot: dict
    prime: list[Message]
    main: list[Message]
    streams: dict[str, set[str]] = field(default_factory=dict)  # route -> stream names


def _kind(stream: str) -> str | None:
    if "@depth" in stream:
        return "depth"
    if stream.endswith("@bookTicker"):
        return "bookTicker"
    if stream.endswith("@trade"):
        return "trade"
    return None


def load_capture(path: str, symbols: list[str]) -> Capture:
    """Reads a `<local ns> <raw JSON>` capture and splits it at its snapshot's bridge.

    Raises:
        ValueError: no snapshot line, no combined-stream lines for `symbols`, or no diff
            that reaches the snapshot's lastUpdateId.
    """
    opener: Callable = gzip.open if path.endswith(".gz") else open
    wanted = {s.lower() for s in symbols}
    snapshot = None
    msgs: list[Message] = []
    last_u: list[int] = []  # u of each depth message (-1 for the others)
    with opener(path, "rb") as f:
        for line in f:
            raw = line.partition(b" ")[2].rstrip(b"\r\n")
            m = orjson.loads(raw)
            if "lastUpdateId" in m:
                if snapshot is None:
                    snapshot = m
                continue
            stream, data = m.get("stream"), m.get("data")
            if not isinstance(stream, str) or not isinstance(data, dict):
                continue  # a bare payload: not a combined-stream line
            kind = _kind(stream)
            if kind is None or stream.partition("@")[0] not in wanted:
                continue
            msgs.append(Message(stream_route(stream), kind, stream, raw))
            last_u.append(int(data["u"]) if kind == "depth" else -1)
    if snapshot is None:
        raise ValueError(f"{path}: no REST snapshot line ('{{\"lastUpdateId\"..}}')")
    if not msgs:
        raise ValueError(f"{path}: no combined-stream lines for {sorted(wanted)}")
    top = snapshot["lastUpdateId"]
    bridge = next((i for i, u in enumerate(last_u) if u >= top), None)
    if bridge is None:
        raise ValueError(f"{path}: no depth diff reaches the snapshot's lastUpdateId {top}")
    streams: dict[str, set[str]] = {PUBLIC: set(), MARKET: set()}
    for msg in msgs:
        streams[msg.route].add(msg.stream)
    return Capture(snapshot, msgs[: bridge + 1], msgs[bridge + 1 :], streams)


def ws_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented server-to-client text frame (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + payload


def encode_chunks(msgs: list[Message]) -> list[tuple[str, bytes]]:
    """The frames of `msgs` as (route, bytes) writes: per window of ~WINDOW_BYTES, one
    write per route, each in file order."""
    out: list[tuple[str, bytes]] = []
    window: dict[str, list[bytes]] = {PUBLIC: [], MARKET: []}
    size = 0
    for i, m in enumerate(msgs):
        frame = ws_frame(m.raw)
        window[m.route].append(frame)
        size += len(frame)
        if size >= WINDOW_BYTES or i == len(msgs) - 1:
            for route, frames in window.items():
                if frames:
                    out.append((route, b"".join(frames)))
                    frames.clear()
            size = 0
    return out


# ---------------------------------------------------------------------- the emulator
@dataclass(eq=False)
class _Sink:
    route: str
    transport: asyncio.Transport | None

    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()


class _StampedWS:
    """A WebSocketResponse whose send_str stamps the frames that answer order requests:
    WS-API replies (by id) and ORDER_TRADE_UPDATE events (by client id and x)."""

    def __init__(self, ws: web.WebSocketResponse, emu: BenchEmulator):
        self._ws = ws
        self._emu = emu

    def __getattr__(self, name: str):
        return getattr(self._ws, name)

    def __aiter__(self):
        return self._ws.__aiter__()

    async def send_str(self, text: str, *args, **kwargs) -> None:
        t = time.time_ns()  # before the write: see BenchEmulator._rest
        await self._ws.send_str(text, *args, **kwargs)
        emu = self._emu
        if not (emu._reply_pending or emu._event_pending):
            return
        try:
            m = orjson.loads(text)
            d = m.get("data", m) if "stream" in m else m
            if d.get("e") == "ORDER_TRADE_UPDATE":
                o = d["o"]
                rec = emu._event_pending.pop((o.get("c"), o.get("x")), None)
                if rec is not None:
                    rec[6] = t
            elif "id" in m:
                rec = emu._reply_pending.pop(orjson.dumps(m["id"]), None)
                if rec is not None:
                    rec[4], rec[5] = t, m.get("status", 0)
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
            return


class BenchEmulator(Emulator):
    """The emulator with order stamps and, if `blast`, the blast market (module docstring).

    Args:
        config: as Emulator's; `blast` needs `config.data`.
        blast: serve the capture pre-encoded on request instead of replaying it.
    """

    def __init__(self, config: EmulatorConfig | None = None, blast: bool = False, **overrides):
        super().__init__(config, **overrides)
        self.blast = blast
        self.order_stamps: list[list] = []
        self.capture: Capture | None = None
        self._chunks: dict[str, list[tuple[str, bytes]]] = {}
        self._sinks: set[_Sink] = set()
        self._sending: str | None = None
        self._sent: dict[str, dict] = {}
        self._reply_pending: dict[bytes, list] = {}  # WS-API request id -> stamp record
        self._event_pending: dict[tuple, list] = {}  # (client id, x) -> stamp record
        self._kinds: dict[str, int] = {}  # main part: messages per kind

    async def start(self) -> None:
        if self.blast:
            if not self.cfg.data:
                raise ValueError("--bench blast needs --data <capture>")
            self.capture = await asyncio.to_thread(load_capture, self.cfg.data,
                                                   list(self.cfg.symbols))  # fmt: skip
            self._chunks = {
                "prime": encode_chunks(self.capture.prime),
                "main": encode_chunks(self.capture.main),
            }
            for m in self.capture.main:
                self._kinds[m.kind] = self._kinds.get(m.kind, 0) + 1
        await super().start()

    def _routes(self, app: web.Application) -> None:
        super()._routes(app)
        app.router.add_get("/_emulator/bench/orders", self._control_orders)
        app.router.add_route("*", "/_emulator/blast", self._control_blast)

    # ------------------------------------------------------------------ order stamps
    def _stamp(self, kind: str, transport: str, cid: str, t_recv: int) -> list:
        rec = [kind, transport, cid, t_recv, 0, 0, 0]
        self.order_stamps.append(rec)
        self._event_pending[(cid, EXEC_TYPE[kind])] = rec
        return rec

    def user_events(self, events: list[dict]) -> None:
        for c in self.user_hub.conns:  # stamp what the user streams write (see _StampedWS)
            if not isinstance(c.ws, _StampedWS):
                c.ws = _StampedWS(c.ws, self)
        super().user_events(events)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        t_recv = time.time_ns()
        kind = ORDER_PATHS.get(request.method) if request.path == "/fapi/v1/order" else None
        if kind is None:
            return await super()._rest(request)
        q = request.query
        rec = self._stamp(kind, "rest", q.get("newClientOrderId") or
                          q.get("origClientOrderId") or "", t_recv)  # fmt: skip
        resp = await super()._rest(request)
        # Write the reply now (aiohttp would right after we return) to stamp its sending.
        # The stamp is taken before the write: the moment the reply reaches the socket the
        # woken connector may preempt us, and a stamp taken after would be late by as much.
        t = time.time_ns()
        await resp.prepare(request)
        await resp.write_eof()
        rec[4], rec[5] = t, resp.status
        return resp

    async def _ws_api(self, request: web.Request) -> web.StreamResponse:
        # Emulator._ws_api, with the socket wrapped to stamp replies and a stamping handler
        ws = web.WebSocketResponse(**WS_OPTS)
        await ws.prepare(request)
        timers = replace(self.cfg.timers, max_incoming_per_s=WSAPI_MAX_INCOMING_PER_S)
        conn = Conn(_StampedWS(ws, self), WSAPI, timers, request.transport)
        self.ws_api_conns.add(conn)
        try:
            await conn.run(self._ws_api_text)
        finally:
            self.ws_api_conns.discard(conn)
        return ws

    def _ws_api_text(self, conn: Conn, text: str) -> None:
        t_recv = time.time_ns()
        try:
            m = orjson.loads(text)
            kind = WS_ORDER_METHODS.get(m.get("method"))
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            kind = None
        if kind is not None:
            p = m.get("params")
            p = p if isinstance(p, dict) else {}
            cid = p.get("newClientOrderId") or p.get("origClientOrderId") or ""
            rec = self._stamp(kind, "ws", str(cid), t_recv)
            self._reply_pending[orjson.dumps(m.get("id"))] = rec
        wsapi.on_text(self, conn, text)

    async def _control_orders(self, request: web.Request) -> web.Response:
        try:
            since = max(0, int(request.query.get("since", "0")))
        except ValueError:
            return web.json_response({"error": "since must be an integer"}, status=400)
        stamps = self.order_stamps
        return web.json_response({"n": len(stamps), "orders": stamps[since:]})

    # ------------------------------------------------------------------ blast
    async def _market_loop(self) -> None:
        if not self.blast:
            await super()._market_loop()
        # blast: the capture goes out only when asked (POST /_emulator/blast)

    def rest_depth(self, p: dict, now_ms: int):
        if self.capture is None:
            return super().rest_depth(p, now_ms)
        snap = self.capture.snapshot
        try:
            limit = int(p.get("limit", 500))
        except ValueError:
            limit = 500
        out = {**snap, "bids": snap["bids"][:limit], "asks": snap["asks"][:limit]}
        return out, []

    async def _market_ws(self, request: web.Request) -> web.StreamResponse:
        if self.capture is None:
            return await super()._market_ws(request)
        route = MARKET if request.path.startswith("/market") else PUBLIC
        asked = {s for s in request.query.get("streams", "").split("/") if s}
        want = self.capture.streams[route]
        ws = web.WebSocketResponse(autoping=True, compress=False)  # no Conn answers pings here
        await ws.prepare(request)
        if not request.path.endswith("/stream") or not want <= asked:
            reason = f"blast: ask /{route}/stream?streams= for {'/'.join(sorted(want))}"
            await ws.close(code=1008, message=reason[:120].encode())
            return ws
        sink = _Sink(route, request.transport)
        self._sinks.add(sink)
        try:
            async for _ in ws:  # nothing is expected from the client; pings are answered
                pass
        finally:
            self._sinks.discard(sink)
        return ws

    async def _control_blast(self, request: web.Request) -> web.Response:
        if self.capture is None:
            return web.json_response({"error": "not in blast mode (--bench blast)"}, status=400)
        if request.method == "POST":
            try:
                part = orjson.loads(await request.read() or b"{}").get("send")
            except (orjson.JSONDecodeError, AttributeError):
                part = None
            if part not in self._chunks:
                return web.json_response({"error": 'send "prime" or "main"'}, status=400)
            if self._sending is not None:
                return web.json_response({"error": f"{self._sending} is being sent"}, status=409)
            self._sending = part
            self._sent[part] = {"conns": sum(s.open() for s in self._sinks)}
            self._tg.create_task(self._send(part))
        elif request.method != "GET":
            return web.Response(status=405)
        return web.json_response(self._blast_status())

    def _blast_status(self) -> dict:
        cap = self.capture
        return {
            "conns": {r: sum(s.route == r and s.open() for s in self._sinks) for r in (PUBLIC,
                                                                                      MARKET)},
            "frames": {"prime": len(cap.prime), "main": len(cap.main)},
            "bytes": {p: sum(len(b) for _, b in c) for p, c in self._chunks.items()},
            "main_kinds": self._kinds,
            "snapshot_last_update_id": cap.snapshot["lastUpdateId"],
            "sending": self._sending,
            "sent": self._sent,
        }  # fmt: skip

    async def _send(self, part: str) -> None:
        st = self._sent[part]
        sinks = [s for s in self._sinks if s.open()]
        cpu0 = time.process_time()
        st["t_first_ns"] = time.time_ns()
        try:
            for route, data in self._chunks[part]:
                for s in sinks:
                    if s.route == route and s.open():
                        s.transport.write(data)
                while any(s.open() and s.transport.get_write_buffer_size() > HIGH_WATER
                          for s in sinks):  # fmt: skip
                    await asyncio.sleep(DRAIN_POLL_S)  # the client reads slower than we write
            st["t_last_ns"] = time.time_ns()  # every byte handed to the transports
            while any(s.open() and s.transport.get_write_buffer_size() > 0 for s in sinks):
                await asyncio.sleep(DRAIN_POLL_S)
            st["t_drained_ns"] = time.time_ns()  # every byte in the kernel's socket buffers
            st["cpu_s"] = time.process_time() - cpu0
        finally:
            self._sending = None
        log.info("blast: %s sent to %d connection(s)", part, len(sinks))
