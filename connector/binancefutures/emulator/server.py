"""The emulator: one aiohttp application on 127.0.0.1 serving REST, streams and the WS-API.

Paths (base URLs in `Emulator.urls`):

    /fapi/...                        REST (rest.py)
    /public/ws/<s1>/<s2>, /public/ws, /public/stream?streams=<s1>/<s2>     depth, bookTicker
    /market/ws/..., /market/stream?streams=...                             trade, aggTrade
    /ws/..., /stream?...             legacy, retired 2026-04: served as /public (§0.1)
    /private/ws?listenKey=<k>&events=A/B, /private/ws/<k>,
    /private/stream?listenKey=<k1>&events=..&listenKey=<k2>..            user data (§1.5)
    /ws-fapi/v1                      WebSocket API (wsapi.py)
    /_emulator/faults                GET the switches, POST to set them (faults.py)
    /_emulator/book?symbol=&limit=   the venue's exact book (for out-of-process tests)
    /_emulator/requests              read-only: REST requests received, by "METHOD /path",
                                     and replies sent, by HTTP status (tests check that a
                                     client kept quiet, e.g. during a 429's Retry-After);
                                     WS-API requests by method and replies by status

Lifecycle: `async with Emulator(cfg) as emu:` binds the port (0 = ephemeral), pre-rolls
the market source, and runs three background tasks in a TaskGroup that the context owns:
the market source, the flusher of the 100/250/500 ms depth streams, and the sweeper of
expired listenKeys and auto-cancel countdowns (countdownCancelAll). A failing task cancels the `async with` body and its error surfaces on
exit.
"""

from __future__ import annotations

import asyncio
import logging
import random
import string
import time
from collections import Counter
from dataclasses import dataclass, field, replace

import orjson
from aiohttp import web

from connector.binancefutures.emulator import rest, wsapi
from connector.binancefutures.emulator.exchange import Account
from connector.binancefutures.emulator.faults import (
    REORDER_HOLD_MS,
    Faults,
    garble,
    split_request,
)
from connector.binancefutures.emulator.gate import Gate
from connector.binancefutures.emulator.streams import (
    MARKET,
    PUBLIC,
    WSAPI,
    Conn,
    ListenKeys,
    MarketConn,
    MarketHub,
    PrivateConn,
    Timers,
    UserHub,
    stream_route,
)
from connector.emulator_kit.book import AGG_INTERVALS_MS
from connector.emulator_kit.market import ReplaySource, SyntheticSource
from connector.emulator_kit.server import EmulatorServer

log = logging.getLogger(__name__)
WS_OPTS = {"autoping": False, "compress": False, "timeout": 2.0}


@dataclass(frozen=True)
class EmulatorConfig:
    """Emulator settings; defaults are Binance's where Binance has one.

    Attributes:
        symbols: lowercase symbols served.
        data: a capture file to replay, or None for the synthetic market.
        speed: replay/synthetic speed factor (replay: 0 = no pacing).
        api_key, secret: the one account's credentials (HMAC secret or Ed25519 PEM).
        start_paused: start with the market paused (`faults.pause_market`).
        hedge_mode: start with the account in hedge mode (`faults.hedge_mode`).
    """

    symbols: tuple[str, ...] = ("ethusdt",)
    data: str | None = None
    speed: float = 1.0
    api_key: str = "emulator-api-key"
    secret: str = "emulator-secret"
    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 1
    balance: float = 10_000.0
    maker_fee: float = 0.0002
    taker_fee: float = 0.0005
    listen_key_ttl_s: float = 3600.0
    timers: Timers = field(default_factory=Timers)
    weight_limit: int = 2400
    orders_10s: int = 300
    orders_1m: int = 1200
    ban_s: int = 120
    start_paused: bool = False
    hedge_mode: bool = False
    synthetic_interval_ms: float = 100.0


def client_url_keys(urls: dict[str, str]) -> str:
    """The `[binancefutures]` URL keys (TOML lines) pointing a connector at `urls`, an
    emulator's `Emulator.urls` (or the JSON line its command prints)."""
    names = ("rest", "ws_public", "ws_market", "ws_private", "ws_api")
    return "\n".join(f'{k}_url = "{urls[k]}"' for k in names)


class Emulator(EmulatorServer):
    """A loopback Binance USD-M futures venue. See the module docstring.

    Args:
        config: settings; keyword overrides are applied on top (`Emulator(speed=5)`).
    """

    NAME = "binance futures emulator"

    def __init__(self, config: EmulatorConfig | None = None, **overrides):
        super().__init__()
        self.cfg = cfg = replace(config or EmulatorConfig(), **overrides)
        self.faults = Faults(pause_market=cfg.start_paused, hedge_mode=cfg.hedge_mode)
        self.gate = Gate(
            cfg.api_key, cfg.secret, self.now_ms, cfg.weight_limit, cfg.orders_10s,
            cfg.orders_1m, cfg.ban_s,
        )  # fmt: skip
        self.market_hub = MarketHub()
        self.user_hub = UserHub()
        self.ws_api_conns: set[Conn] = set()
        self._rng = random.Random(cfg.seed)
        self.listen_keys = ListenKeys(cfg.listen_key_ttl_s, self._new_listen_key)
        self.markets: dict = {}
        self.account: Account | None = None
        self.rest_requests: Counter[str] = Counter()  # "METHOD /path" -> received
        self.rest_statuses: Counter[int] = Counter()  # HTTP status -> replies sent
        self.ws_api_requests: Counter[str] = Counter()  # WS-API method -> received
        self.ws_api_statuses: Counter[int] = Counter()  # WS-API status -> replies made
        self._held: list[tuple[str | None, dict]] = []  # reorder_user_events: (key, event)
        self._held_since = 0.0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Pre-rolls the market, binds the port and starts the background tasks."""
        cfg = self.cfg
        symbols = [s.lower() for s in cfg.symbols]

        def paused() -> bool:
            return self.faults.pause_market

        if cfg.data:
            self.source = ReplaySource(cfg.data, symbols, cfg.speed, paused)
        else:
            self.source = SyntheticSource(
                symbols, cfg.speed, paused, cfg.synthetic_interval_ms, seed=cfg.seed
            )
        self.markets = await asyncio.to_thread(self.source.prepare)
        self.account = Account(self.markets, cfg.balance, cfg.maker_fee, cfg.taker_fee, cfg.seed,
                               hedge_mode=lambda: self.faults.hedge_mode)  # fmt: skip
        await self.serve()

    def _background(self) -> list:
        return [self._market_loop(), self._flush_loop(), self._expiry_loop()]

    def connections(self) -> list:
        return [*self.market_hub.conns, *self.user_hub.conns, *self.ws_api_conns]

    @property
    def urls(self) -> dict[str, str]:
        """Base URLs for a client: REST, WS public/market/private roots, WS-API, control."""
        host = f"{self.cfg.host}:{self.port}"
        return {
            "rest": f"http://{host}",
            "ws_public": f"ws://{host}/public",
            "ws_market": f"ws://{host}/market",
            "ws_private": f"ws://{host}/private",
            "ws_api": f"ws://{host}/ws-fapi/v1",
            "control": f"http://{host}/_emulator/faults",
        }

    # ------------------------------------------------------------------ faults
    def set_faults(self, **switches) -> None:
        """Sets fault switches by name (validated as the control endpoint does)."""
        values, actions = split_request(switches)
        if actions:
            raise ValueError(f"{sorted(actions)} are actions: call the methods instead")
        for k, v in values.items():
            setattr(self.faults, k, v)

    async def disconnect(self, kind: str = "all", abort: bool = False) -> int:
        """Closes every connection of a kind now: all/public/market/private/ws-api.

        `abort` drops TCP without a close frame (a network failure). Returns the count.
        """
        conns = self._conns(kind)
        if abort:
            for c in conns:
                c.abort()
        else:
            await asyncio.gather(*(c.close(1001, "disconnect") for c in conns))
        return len(conns)

    def _conns(self, kind: str) -> list[Conn]:
        conns: list[Conn] = []
        if kind in ("all", PUBLIC, MARKET):
            conns += [c for c in self.market_hub.conns if kind in ("all", c.route)]
        if kind in ("all", "private"):
            conns += list(self.user_hub.conns)
        if kind in ("all", WSAPI):
            conns += list(self.ws_api_conns)
        return conns

    def silence(self, kind: str = "all") -> int:
        """Makes every connection of a kind open now half-dead (faults.py `silence`):
        frames are lost both ways and nobody is told. Returns the count."""
        conns = [c for c in self._conns(kind) if not c.silent]
        for c in conns:
            c.silent = True
        log.info("silenced %d %s connection(s)", len(conns), kind)
        return len(conns)

    def expire_listen_keys(self) -> None:
        """Expires the active listenKey now: listenKeyExpired, then silence (§1.5)."""
        key = self.listen_keys.take_expired(force=True)
        if key is not None:
            self._send_expired(key)

    def _send_expired(self, key: str) -> None:
        now = self.now_ms()
        e = str(now) if self.faults.listen_key_expired_e_str else now
        self.user_hub.expired(key, {"e": "listenKeyExpired", "E": e, "listenKey": key})

    # ------------------------------------------------------------------ market
    async def _market_loop(self) -> None:
        async for kind, sym, msg in self.source.events():
            self._on_market(kind, sym, msg)

    def _on_market(self, kind: str, sym: str, msg: dict) -> None:
        mkt, hub = self.markets[sym], self.market_hub
        now = self.now_ms()
        lag = max(0, msg.get("E", 0) - msg.get("T", 0))  # keep the venue's E-T (§1.3)
        msg["E"], msg["T"] = now, now - lag
        if kind == "depth":
            changes = mkt.apply_diff(msg)
            self._send_depth(f"{sym}@depth@0ms", msg)
            self.user_events(self.account.on_depth(sym, changes, now))
        elif kind == "bookTicker":
            payload = orjson.dumps(msg)
            self._publish(f"{sym}@bookTicker", payload)
            self._publish("!bookTicker", payload)
        elif kind == "trade":
            if hub.wanted(f"{sym}@trade"):
                self._publish(f"{sym}@trade", orjson.dumps(msg))
            agg_id, mkt.next_agg_id = mkt.next_agg_id, mkt.next_agg_id + 1
            if hub.wanted(f"{sym}@aggTrade"):
                agg = {"e": "aggTrade", "E": now, "s": msg["s"], "a": agg_id, "p": msg["p"]}
                agg.update(q=msg["q"], nq=msg["q"], f=msg["t"], l=msg["t"], T=msg["T"])
                agg["m"] = msg["m"]
                self._publish(f"{sym}@aggTrade", orjson.dumps(agg))
            if msg.get("X", "MARKET") == "MARKET":  # as hftbacktest: only market trades
                tick, lots = mkt.spec.tick_of(msg["p"]), mkt.spec.lots_of(msg["q"])
                self.user_events(self.account.on_trade(sym, not msg["m"], tick, lots, now))

    def _send_depth(self, stream: str, msg: dict) -> None:
        """Publishes one diff event, unless a gap fault drops it or corrupts its pu."""
        if not self.market_hub.wanted(stream):
            return
        if self.faults.take("drop_depth"):
            return
        if self.faults.take("corrupt_pu"):
            msg = {**msg, "pu": msg["pu"] - 1}
        self._publish(stream, orjson.dumps(msg))

    def _publish(self, stream: str, payload: bytes) -> None:
        """Sends one market payload, garbled while a garbage_* fault counts down."""
        hub = self.market_hub
        if not hub.wanted(stream):
            return
        name = "garbage_public" if stream_route(stream) == PUBLIC else "garbage_market"
        left = getattr(self.faults, name)
        if self.faults.take(name):
            payload = garble(payload, left)
        hub.publish(stream, payload)

    async def _flush_loop(self) -> None:
        due = {ms: time.monotonic() + ms / 1000 for ms in AGG_INTERVALS_MS}
        while True:
            delay = min(due.values()) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # the stream's update interval
            now = time.monotonic()
            for ms, t in due.items():
                if now >= t:
                    due[ms] = max(t + ms / 1000, now)
                    self._flush(ms)

    def _flush(self, ms: int) -> None:
        """Sends the batched diffs (and partial depth) of the `ms` streams (§1.3)."""
        suffix = "" if ms == 250 else f"@{ms}ms"
        hub = self.market_hub
        for sym, mkt in self.markets.items():
            batch = mkt.batches[ms]
            flushed = batch.flush()
            if flushed is None:
                continue
            first_u, last_u, prev_u, bids, asks = flushed
            head = {"e": "depthUpdate", "E": self.now_ms(), "T": batch.last_t_ms}
            head.update(s=mkt.spec.upper, U=first_u, u=last_u, pu=prev_u)
            if hub.wanted(f"{sym}@depth{suffix}"):
                diff = {**head, "b": mkt.levels(bids), "a": mkt.levels(asks)}
                self._send_depth(f"{sym}@depth{suffix}", diff)
            for n in (5, 10, 20):
                name = f"{sym}@depth{n}{suffix}"
                if hub.wanted(name):
                    top_b, top_a = mkt.book.top(n)
                    part = {**head, "b": mkt.levels(dict(top_b)), "a": mkt.levels(dict(top_a))}
                    self._publish(name, orjson.dumps(part))

    async def _expiry_loop(self) -> None:
        period = min(0.05, self.cfg.listen_key_ttl_s / 4)  # Binance checks every ~10 ms
        while True:
            await asyncio.sleep(period)  # the sweeper's period
            key = self.listen_keys.take_expired()
            if key is not None:
                self._send_expired(key)
            self.user_events(self.account.run_countdowns(self.now_ms()))
            self._release_held(REORDER_HOLD_MS / 1000)  # no successor came

    # ------------------------------------------------------------------ user data
    def user_events(self, events: list[dict]) -> None:
        """Delivers user-data events on the active key, through the lose/dup/reorder
        faults (faults.py)."""
        key = self.listen_keys.active
        f = self.faults
        for ev in events:
            if f.take("lose_user_events"):
                continue
            copies = [ev, ev] if f.take("dup_user_events") else [ev]
            if f.take("reorder_user_events"):  # held back until the next event is out
                if not self._held:
                    self._held_since = time.monotonic()
                self._held += [(key, e) for e in copies]
                continue
            for e in copies:
                self.user_hub.deliver(key, e)
            self._release_held()

    def _release_held(self, after_s: float = 0.0) -> None:
        """Sends the held (reordered) events, if held at least `after_s`."""
        if self._held and time.monotonic() - self._held_since >= after_s:
            held, self._held = self._held, []
            for key, ev in held:
                self.user_hub.deliver(key, ev)

    def _new_listen_key(self) -> str:
        return "".join(self._rng.choices(string.ascii_letters + string.digits, k=64))

    def listen_key_new(self, p: dict, now_ms: int):
        return {"listenKey": self.listen_keys.create()}, []

    def listen_key_keepalive(self, p: dict, now_ms: int):
        return {"listenKey": self.listen_keys.keepalive(p.get("listenKey"))}, []

    def listen_key_delete(self, p: dict, now_ms: int):
        key = self.listen_keys.take_expired(force=True)
        if key is not None:
            for c in self.user_hub.closed(key):
                self._tg.create_task(c.close(1000, "listenKey deleted"))
        return {}, []

    # ------------------------------------------------------------------ REST market data
    def rest_ping(self, p: dict, now_ms: int):
        return {}, []

    def rest_time(self, p: dict, now_ms: int):
        return {"serverTime": now_ms}, []

    def rest_exchange_info(self, p: dict, now_ms: int):
        return rest.exchange_info(self.markets, now_ms, self.gate), []

    def rest_depth(self, p: dict, now_ms: int):
        return rest.depth(self.markets, p, now_ms), []

    # ------------------------------------------------------------------ HTTP wiring
    def _routes(self, app: web.Application) -> None:
        r = app.router
        r.add_route("*", "/fapi/{tail:.*}", self._rest)
        for prefix in ("/public", "/market", ""):
            r.add_get(f"{prefix}/ws", self._market_ws)
            r.add_get(f"{prefix}/ws/{{streams:.*}}", self._market_ws)
            r.add_get(f"{prefix}/stream", self._market_ws)
        r.add_get("/private/ws", self._private_ws)
        r.add_get("/private/ws/{key}", self._private_ws)
        r.add_get("/private/stream", self._private_ws)
        r.add_get("/ws-fapi/v1", self._ws_api)
        r.add_route("*", "/_emulator/faults", self._control_faults)
        r.add_get("/_emulator/book", self._control_book)
        r.add_get("/_emulator/requests", self._control_requests)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        self.rest_requests[f"{request.method} {request.path}"] += 1
        resp = await rest.handle(self, request)
        self.rest_statuses[resp.status] += 1
        return resp

    async def _market_ws(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        route = MARKET if path.startswith("/market") else PUBLIC  # legacy paths: /public
        combined = path.endswith("/stream")
        names = (
            request.query.get("streams", "") if combined else request.match_info.get("streams", "")
        )
        ws = web.WebSocketResponse(**WS_OPTS)
        await ws.prepare(request)
        conn = MarketConn(ws, route, combined, self.cfg.timers, request.transport)
        self.market_hub.add(conn, [s for s in names.split("/") if s])
        try:
            await conn.run(self.market_hub.on_text)
        finally:
            self.market_hub.remove(conn)
        return ws

    async def _private_ws(self, request: web.Request) -> web.StreamResponse:
        asked: dict[str, frozenset[str] | None] = {}
        last = request.match_info.get("key")
        if last:
            asked[last] = None
        for k, v in request.query.items():  # listenKey=k1&events=..&listenKey=k2&events=..
            if k == "listenKey":
                asked[v] = None
                last = v
            elif k == "events" and last:
                asked[last] = frozenset(e for e in v.split("/") if e)
        ws = web.WebSocketResponse(**WS_OPTS)
        await ws.prepare(request)
        conn = PrivateConn(ws, request.path.endswith("/stream"), self.cfg.timers, request.transport)
        # an unknown or expired key is accepted and stays silent
        conn.keys = {k: ev for k, ev in asked.items() if k == self.listen_keys.active}
        self.user_hub.conns.add(conn)
        try:
            await conn.run(self._private_text)
        finally:
            self.user_hub.conns.discard(conn)
        return ws

    def _private_text(self, conn: PrivateConn, text: str) -> None:
        """SUBSCRIBE/UNSUBSCRIBE with listenKey items, LIST_SUBSCRIPTIONS (§1.5)."""
        try:
            m = orjson.loads(text)
            rid, method, params = m.get("id"), m.get("method"), m.get("params", [])
        except (orjson.JSONDecodeError, AttributeError):
            conn.send('{"code":3,"msg":"Invalid JSON","id":null}')
            return
        result = None
        if method == "SUBSCRIBE":
            for k in params:
                if k == self.listen_keys.active:
                    conn.keys.setdefault(k, None)
        elif method == "UNSUBSCRIBE":
            for k in params:
                conn.keys.pop(k, None)
        elif method == "LIST_SUBSCRIPTIONS":
            result = list(conn.keys)
        else:
            conn.send(orjson.dumps({"code": 2, "msg": "Invalid request", "id": rid}).decode())
            return
        conn.send(orjson.dumps({"result": result, "id": rid}).decode())

    async def _ws_api(self, request: web.Request) -> web.StreamResponse:
        if self.faults.refuse_ws_api:
            return web.Response(status=503, text="Service Unavailable.")
        ws = web.WebSocketResponse(**WS_OPTS)
        await ws.prepare(request)
        # the 10 frames/s rule is the market streams' (§1.2); the WS-API's limits are
        # request weight and order counts (§1.7), applied per request by wsapi.on_text
        timers = replace(self.cfg.timers, max_incoming_per_s=1 << 30)
        conn = Conn(ws, WSAPI, timers, request.transport, strict_pong=True)
        self.ws_api_conns.add(conn)
        try:
            await conn.run(lambda c, text: wsapi.on_text(self, c, text))
        finally:
            self.ws_api_conns.discard(conn)
        return ws

    async def _control_faults(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                switches, actions = split_request(orjson.loads(await request.read() or b"{}"))
            except (ValueError, orjson.JSONDecodeError) as e:
                return web.json_response({"error": str(e)}, status=400)
            for k, v in switches.items():
                setattr(self.faults, k, v)
            if "silence" in actions:
                self.silence(actions["silence"])
            if actions.get("expire_listen_keys"):
                self.expire_listen_keys()
            if "disconnect" in actions:
                await self.disconnect(actions["disconnect"], actions.get("abort", False))
        elif request.method != "GET":
            return web.Response(status=405)
        return web.json_response(self.faults.as_dict())

    async def _control_requests(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": dict(self.rest_requests),
                "statuses": dict(self.rest_statuses),
                "ws_api": dict(self.ws_api_requests),
                "ws_api_statuses": dict(self.ws_api_statuses),
            }
        )

    async def _control_book(self, request: web.Request) -> web.Response:
        mkt = self.markets.get(request.query.get("symbol", "").lower())
        if mkt is None:
            return web.json_response({"error": "unknown symbol"}, status=400)
        limit = int(request.query.get("limit", "1000000"))
        return web.json_response(mkt.snapshot(limit, self.now_ms()))
