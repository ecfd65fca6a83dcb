"""The Bybit v5 emulator: one aiohttp application on 127.0.0.1 serving REST and the three
WebSockets on one port.

Paths (base URLs in `Emulator.urls`, the keys of the CLI's JSON line):

    /v5/...                  REST (rest.py)
    /v5/public/linear        public stream (public.py)
    /v5/private              private stream (private.py)
    /v5/trade                trade stream (trade.py)
    /_emulator/faults        GET the switches, POST switches and actions (faults.py)
    /_emulator/book?symbol=&limit=   {"b","a","u","seq"}: the venue's exact book, strings
    /_emulator/orders?symbol=        {"list": [open orders as /v5/order/realtime has them]}
    /_emulator/position?symbol=      {"size","side"}
    /_emulator/requests              counts by "METHOD /path", trade-WS op, "public <op>"
                                     and "private <op>"
    /_emulator/bench/orders?since=N  order stamps (`--bench orders`; see stamp_order)

Lifecycle: `async with Emulator(cfg) as emu:` pre-rolls the market source, binds the port
(0 = ephemeral) and runs the background tasks (the market source, housekeeping: level-1
re-sends and the DCP timer) in a TaskGroup the context owns; a failing task cancels the
body and its error surfaces on exit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

import orjson
from aiohttp import web

from connector.bybit.emulator import rest, trade
from connector.bybit.emulator.errors import BybitError, params
from connector.bybit.emulator.exchange import Account
from connector.bybit.emulator.faults import Faults, split_request
from connector.bybit.emulator.gate import Gate
from connector.bybit.emulator.private import PrivateHub
from connector.bybit.emulator.public import BybitConn, PublicHub
from connector.bybit.signing import Credentials
from connector.emulator_kit.book import SymbolSpec
from connector.emulator_kit.market import ReplaySource, SyntheticSource
from connector.emulator_kit.server import EmulatorServer
from connector.emulator_kit.ws import Timers

log = logging.getLogger(__name__)
WS_OPTS = {"autoping": False, "compress": False, "timeout": 2.0}
HOUSEKEEPING_S = 0.1

# Bybit linear instruments-info values (2025-2026, rounded): BTCUSDT, ETHUSDT; any other
# symbol gets a generic grid.
SPECS = {
    "BTCUSDT": SymbolSpec(
        "btcusdt", "0.10", "0.001", "0.001", "1190", "119", "0.10", "1999999.80", "5"
    ),  # fmt: skip
    "ETHUSDT": SymbolSpec(
        "ethusdt", "0.01", "0.01", "0.01", "7240", "724", "0.01", "199999.98", "5"
    ),  # fmt: skip
}
START_PX = {"btcusdt": 100_000.0, "ethusdt": 3_500.0}


def spec_of(symbol: str) -> SymbolSpec:
    """The emulator's grid of `symbol` (uppercase)."""
    if symbol in SPECS:
        return SPECS[symbol]
    return SymbolSpec(symbol.lower(), "0.01", "0.001", "0.001", "100000", "10000", "0.01",
                      "1000000", "5")  # fmt: skip


@dataclass(frozen=True)
class EmulatorConfig:
    """Emulator settings; defaults are Bybit's where Bybit has one.

    Attributes:
        symbols: uppercase Bybit symbols served.
        data: a Binance capture file to replay as Bybit traffic, or None (synthetic).
        speed: market speed factor (replay: 0 = no pacing).
        api_key, secret: the one account's credentials.
        start_paused: start with `faults.pause_market` set.
        hedge_mode: start with every symbol in hedge mode (`faults.hedge_mode`).
        ws_ping_interval_s: the server's WS protocol pings.
        stamp_orders: keep a wall-clock stamp of every order request (bench/bybit_order_path.py).
    """

    symbols: tuple[str, ...] = ("BTCUSDT",)
    data: str | None = None
    speed: float = 1.0
    api_key: str = "emulator-api-key"
    secret: str = "emulator-secret"
    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 1
    balance: float = 100_000.0
    maker_fee: float = 0.0002
    taker_fee: float = 0.00055
    leverage: int = 10
    start_paused: bool = False
    hedge_mode: bool = False
    synthetic_interval_ms: float = 100.0
    ws_ping_interval_s: float = 20.0
    stamp_orders: bool = False


class Emulator(EmulatorServer):
    """A loopback Bybit v5 (linear) venue. See the module docstring.

    Args:
        config: settings; keyword overrides are applied on top (`Emulator(speed=5)`).
    """

    NAME = "bybit emulator"

    def __init__(self, config: EmulatorConfig | None = None, **overrides):
        super().__init__()
        self.cfg = cfg = replace(config or EmulatorConfig(), **overrides)
        bad = [s for s in cfg.symbols if not s or s != s.upper()]
        if bad:
            raise ValueError(f"symbols must be uppercase Bybit symbols, got {bad}")
        self.faults = Faults(pause_market=cfg.start_paused, hedge_mode=cfg.hedge_mode)
        self.gate = Gate(Credentials(cfg.api_key, cfg.secret), self.now_ms)
        self.timers = Timers(
            ping_interval_s=cfg.ws_ping_interval_s, pong_timeout_s=600.0,
            max_incoming_per_s=1 << 30,
        )  # fmt: skip
        self.requests: Counter[str] = Counter()
        self.order_stamps: list[list] = []
        self.markets: dict = {}
        self.account: Account | None = None
        self.public: PublicHub | None = None
        self.private = PrivateHub(self.gate, self.faults)
        self.private.requests = self.requests
        self.trade_conns: set[BybitConn] = set()
        self.dcp_window_s: int | None = None
        self._dcp_lost_at: float | None = None
        self._last_trade_tick: dict[str, int] = {}
        self._tick_dir: dict[str, str] = {}

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Pre-rolls the market, binds the port and starts the background tasks."""
        cfg = self.cfg
        lower = [s.lower() for s in cfg.symbols]

        def paused() -> bool:
            return self.faults.pause_market

        if cfg.data:
            self.source = ReplaySource(cfg.data, lower, cfg.speed, paused)
        else:
            self.source = SyntheticSource(
                lower, cfg.speed, paused, cfg.synthetic_interval_ms, seed=cfg.seed,
                specs={s.lower(): spec_of(s) for s in cfg.symbols}, start_px=START_PX,
            )  # fmt: skip
        by_lower = await asyncio.to_thread(self.source.prepare)
        self.markets = {s.upper(): m for s, m in by_lower.items()}
        for mkt in self.markets.values():
            mkt.batches.clear()  # Binance's aggregated streams: not used here
        self.account = Account(
            self.markets, cfg.balance, cfg.maker_fee, cfg.taker_fee, cfg.leverage, cfg.seed,
            hedge_mode=lambda: self.faults.hedge_mode,
        )  # fmt: skip
        self.public = PublicHub(self.markets, self.faults, cfg.seed * 1_000_000, self.now_ms)
        self.public.requests = self.requests
        await self.serve()

    def _background(self) -> list:
        return [self._market_loop(), self._housekeeping_loop()]

    def connections(self) -> list:
        return self._conns("all")

    @property
    def urls(self) -> dict[str, str]:
        """Base URLs for a client (the keys of the CLI's JSON line)."""
        host = f"{self.cfg.host}:{self.port}"
        return {
            "rest": f"http://{host}",
            "ws_public": f"ws://{host}/v5/public/linear",
            "ws_private": f"ws://{host}/v5/private",
            "ws_trade": f"ws://{host}/v5/trade",
            "control": f"http://{host}/_emulator/faults",
        }

    # ------------------------------------------------------------------ faults
    def set_faults(self, **switches) -> None:
        """Sets fault switches by name (validated as the control endpoint does)."""
        values, actions = split_request(switches)
        if actions:
            raise ValueError(f"{sorted(actions)} are actions: call apply_actions instead")
        for k, v in values.items():
            setattr(self.faults, k, v)

    async def apply_actions(self, actions: dict) -> None:
        """Runs control actions (faults.py): disconnect, snapshot, restart, silence."""
        if actions.get("restart"):
            self.public.snapshot_all(self.now_ms(), restart=True)
        elif actions.get("snapshot"):
            self.public.snapshot_all(self.now_ms())
        if "silence" in actions:
            for c in self._conns(actions["silence"]):
                c.silent = True
        if "disconnect" in actions:
            conns = self._conns(actions["disconnect"])
            await asyncio.gather(*(c.close(1001, "disconnect") for c in conns))

    def _conns(self, kind: str) -> list[BybitConn]:
        out: list[BybitConn] = []
        if kind in ("all", "public") and self.public is not None:
            out += list(self.public.conns)
        if kind in ("all", "private"):
            out += list(self.private.conns)
        if kind in ("all", "trade"):
            out += list(self.trade_conns)
        return out

    # ------------------------------------------------------------------ orders
    def stamp_order(self, path: str, transport: str, p: dict, t_recv: int) -> None:
        """With `stamp_orders`, records [op, transport, orderLinkId, t_recv, t_ack] in
        time.time_ns(): t_recv when the handler got the request (REST: its headers, before
        the body is read; trade WS: the frame), t_ack when its reply is handed over (REST:
        the response returned to aiohttp; trade WS: the frame queued for the socket's
        writer). The private pushes it caused were queued before t_ack."""
        if self.cfg.stamp_orders:
            link = p.get("orderLinkId", "") if isinstance(p, dict) else ""
            op = path.rpartition("/")[2]
            self.order_stamps.append([op, transport, str(link), t_recv, time.time_ns()])

    def execute_order(self, path: str, p: dict) -> dict:
        """Runs one order request (REST or trade WS) and pushes its private events.

        Raises:
            BybitError: the venue refuses it (an injected `reject_orders` code included).
        """
        acct, now = self.account, self.now_ms()
        if path == "/v5/order/create":
            code = self.faults.take_reject()
            if code is not None:
                raise BybitError(code)
            result, events = acct.create(p, now)
        elif path == "/v5/order/amend":
            result, events = acct.amend(p, now)
        elif path == "/v5/order/cancel":
            result, events = acct.cancel(p, now)
        else:
            result, events = acct.cancel_all(p, now)
        self.private.push(events, now)
        return result

    # ------------------------------------------------------------------ market
    async def _market_loop(self) -> None:
        async for kind, sym, msg in self.source.events():
            self._on_market(kind, sym.upper(), msg)

    def _on_market(self, kind: str, sym: str, msg: dict) -> None:
        mkt = self.markets[sym]
        now = self.now_ms()
        lag = max(0, msg.get("E", 0) - msg.get("T", 0))  # keep the capture's engine lag
        if kind == "depth":
            msg["T"] = now - lag
            changes = mkt.apply_diff(msg)
            self.public.on_book(sym, now, now - lag)
            self.private.push(self.account.on_depth(sym, changes, now), now)
        elif kind == "trade" and msg.get("X", "MARKET") == "MARKET":
            spec = mkt.spec
            tick, lots = spec.tick_of(msg["p"]), spec.lots_of(msg["q"])
            taker_buy = not msg["m"]
            last = self._last_trade_tick.get(sym, tick)
            if tick != last:
                self._tick_dir[sym] = "PlusTick" if tick > last else "MinusTick"
            else:
                d = self._tick_dir.get(sym, "ZeroPlusTick")
                self._tick_dir[sym] = "ZeroPlusTick" if "Plus" in d else "ZeroMinusTick"
            self._last_trade_tick[sym] = tick
            self.public.on_trade(
                sym, taker_buy, spec.px(tick), spec.qty(lots), self._tick_dir[sym], now
            )
            self.private.push(self.account.on_trade(sym, taker_buy, tick, lots, now), now)

    async def _housekeeping_loop(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_S)  # the sweeper's period
            now = self.now_ms()
            self.public.resend_level1(now)
            self._run_dcp(now)

    def _run_dcp(self, now_ms: int) -> None:
        """Disconnect cancel-all: no live private connection subscribed to `dcp` for
        `dcp_window_s` after one was -> every open order is cancelled (rest.py)."""
        if self.dcp_window_s is None:
            return
        alive = any(c.authed and "dcp" in c.topics and not c.silent for c in self.private.conns)
        t = time.monotonic()
        if alive:
            self._dcp_lost_at = 0.0  # armed: a loss starts the countdown
        elif self._dcp_lost_at == 0.0:
            self._dcp_lost_at = t
        elif self._dcp_lost_at and t - self._dcp_lost_at >= self.dcp_window_s:
            self._dcp_lost_at = None  # fired; re-armed by the next dcp connection
            _, events = self.account.cancel_all(
                {"category": "linear", "settleCoin": "USDT"}, now_ms, cancel_type="CancelByDCP"
            )
            self.private.push(events, now_ms)
            log.info("DCP fired: open orders cancelled")

    # ------------------------------------------------------------------ REST handlers
    def rest_time(self, p: dict, now_ms: int) -> dict:
        return {"timeSecond": str(now_ms // 1000), "timeNano": str(now_ms * 1_000_000)}

    def rest_instruments(self, p: dict, now_ms: int) -> dict:
        return rest.instruments(self.markets, p)

    def rest_orderbook(self, p: dict, now_ms: int) -> dict:
        """GET /v5/market/orderbook: `u` is the orderbook.1000 stream's (§2.2)."""
        if p.get("category") != "linear":
            raise params("category must be linear")
        sym = p.get("symbol", "")
        if sym not in self.markets:
            raise params(f"symbol {sym!r} is not served")
        try:
            limit = int(p.get("limit", 25))
        except ValueError:
            raise params("limit must be an integer") from None
        if not 1 <= limit <= 1000:
            raise params("limit must be 1-1000")
        book = self.book(sym, limit)
        return {"s": sym, "b": book["b"], "a": book["a"], "ts": now_ms, "u": book["u"],
                "seq": book["seq"], "cts": now_ms}  # fmt: skip

    def rest_order(self, path: str, p: dict) -> dict:
        return self.execute_order(path, p)

    def rest_dcp(self, p: dict, now_ms: int) -> dict:
        product = p.get("product", "OPTIONS")
        if product not in ("OPTIONS", "DERIVATIVES", "SPOT"):
            raise params("product must be OPTIONS, DERIVATIVES or SPOT")
        window = p.get("timeWindow")
        if type(window) is not int or not 3 <= window <= 300:
            raise params("timeWindow must be an integer of seconds in [3, 300]")
        if product == "DERIVATIVES":
            self.dcp_window_s = window
            self._dcp_lost_at = None
        return {}

    def rest_realtime(self, p: dict, now_ms: int) -> dict:
        return self.account.realtime(p)

    def rest_history(self, p: dict, now_ms: int) -> dict:
        return self.account.history(p)

    def rest_executions(self, p: dict, now_ms: int) -> dict:
        return self.account.execution_list(p)

    def rest_positions(self, p: dict, now_ms: int) -> dict:
        return self.account.position_list(p, now_ms)

    def rest_wallet(self, p: dict, now_ms: int) -> dict:
        return self.account.wallet_balance(p, now_ms)

    # ------------------------------------------------------------------ views
    def book(self, sym: str, limit: int) -> dict:
        """The venue's exact book of `sym`: top `limit` levels, as wire strings."""
        mkt = self.markets[sym]
        v = self.public.view(f"orderbook.1000.{sym}")
        v.refresh()
        bids, asks = mkt.book.top(limit)
        px, qty = mkt.spec.px, mkt.spec.qty
        return {
            "b": [[px(t), qty(n)] for t, n in bids],
            "a": [[px(t), qty(n)] for t, n in asks],
            "u": v.u,
            "seq": self.public.seq[sym],
        }

    # ------------------------------------------------------------------ HTTP wiring
    def _routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/v5/public/linear", self._public_ws)
        r.add_get("/v5/private", self._private_ws)
        r.add_get("/v5/trade", self._trade_ws)
        r.add_route("*", "/v5/{tail:.*}", self._rest)
        r.add_route("*", "/_emulator/faults", self._control_faults)
        r.add_get("/_emulator/book", self._control_book)
        r.add_get("/_emulator/orders", self._control_orders)
        r.add_get("/_emulator/position", self._control_position)
        r.add_get("/_emulator/requests", self._control_requests)
        r.add_get("/_emulator/bench/orders", self._control_stamps)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        return await rest.handle(self, request)

    async def _serve_ws(self, request: web.Request, kind: str, hub_conns: set, on_text):
        ws = web.WebSocketResponse(**WS_OPTS)
        await ws.prepare(request)
        conn = BybitConn(ws, kind, self.timers, request.transport)
        hub_conns.add(conn)
        try:
            await conn.run(on_text)
        finally:
            hub_conns.discard(conn)
        return ws

    def _later(self, handle: Callable[[], None]) -> None:
        """Handles a frame a client sent on a stream now, or `stream_latency_ms` later."""
        delay = self.faults.stream_latency_ms
        if delay > 0:
            asyncio.get_running_loop().call_later(delay / 1000, handle)
        else:
            handle()

    async def _public_ws(self, request: web.Request) -> web.StreamResponse:
        hub = self.public
        ws = web.WebSocketResponse(**WS_OPTS)
        await ws.prepare(request)
        conn = BybitConn(ws, "public", self.timers, request.transport)
        hub.conns.add(conn)
        try:
            await conn.run(lambda c, text: self._later(lambda: hub.on_text(c, text, self.now_ms())))
        finally:
            hub.remove(conn)
        return ws

    async def _private_ws(self, request: web.Request) -> web.StreamResponse:
        hub = self.private
        return await self._serve_ws(
            request,
            "private",
            hub.conns,
            lambda c, text: self._later(lambda: hub.on_text(c, text, self.now_ms())),
        )

    async def _trade_ws(self, request: web.Request) -> web.StreamResponse:
        if self.faults.refuse_trade:
            return web.Response(status=503, text="Service Unavailable")
        return await self._serve_ws(
            request,
            "trade",
            self.trade_conns,
            lambda c, text: self._later(lambda: trade.on_text(self, c, text)),
        )

    async def _control_faults(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                switches, actions = split_request(orjson.loads(await request.read() or b"{}"))
            except (ValueError, orjson.JSONDecodeError) as e:
                return web.json_response({"error": str(e)}, status=400)
            for k, v in switches.items():
                setattr(self.faults, k, v)
            await self.apply_actions(actions)
        elif request.method != "GET":
            return web.Response(status=405)
        return web.json_response(self.faults.as_dict())

    def _symbol(self, request: web.Request) -> str | None:
        sym = request.query.get("symbol", "")
        return sym if sym in self.markets else None

    async def _control_book(self, request: web.Request) -> web.Response:
        sym = self._symbol(request)
        if sym is None:
            return web.json_response({"error": "unknown symbol"}, status=400)
        try:
            limit = int(request.query.get("limit", "1000000"))
        except ValueError:
            return web.json_response({"error": "limit must be an integer"}, status=400)
        return web.json_response(self.book(sym, limit))

    async def _control_orders(self, request: web.Request) -> web.Response:
        sym = self._symbol(request)
        if sym is None:
            return web.json_response({"error": "unknown symbol"}, status=400)
        orders = sorted(self.account.open[sym].values(), key=lambda o: o.created_ms)
        return web.json_response({"list": [o.body() for o in reversed(orders)]})

    async def _control_position(self, request: web.Request) -> web.Response:
        sym = self._symbol(request)
        if sym is None:
            return web.json_response({"error": "unknown symbol"}, status=400)
        item = self.account.position_item(sym, self.now_ms())
        return web.json_response({"size": item["size"], "side": item["side"]})

    async def _control_requests(self, request: web.Request) -> web.Response:
        return web.json_response(dict(self.requests))

    async def _control_stamps(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        stamps = self.order_stamps
        return web.json_response({"n": len(stamps), "orders": stamps[since:]})
