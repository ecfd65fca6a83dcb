"""The Binance USD-M futures venue adapter: asyncio I/O around the pure protocol layer.

Pieces (one module each): `rest` (signed REST, clock offset), `ratelimit` (the venue's
counters and the throttle), `wsapi` (the WebSocket API), `streams` (market data into the
connector's books and shared memory; the user data stream), `orders` (order entry over
either transport, reconciliation, and the mapping of replies and ORDER_TRADE_UPDATE to
OrderReports). The sockets themselves are venue-neutral (`connector.transport`: `md`,
`wsrpc`, `http`), and every connection is kept up by `connector.reconnect`.
This module holds the `[binancefutures]` config, `prepare` (exchangeInfo, and the account
check: the key accepted and the account in one-way position mode, all before shared memory
exists) and `BinanceFuturesVenue`, which owns every task in one TaskGroup.

Config (`[binancefutures]` in the connector TOML)::

    rest_url, ws_public_url, ws_market_url, ws_private_url, ws_api_url   base URLs
    api_key_env, secret_env      names of the environment variables holding the key/secret
    secret_file = ""             or a file holding the secret (e.g. an Ed25519 PEM key; it
                                 must not be readable by group or others)
    order_entry = "rest"         "rest" (POST/PUT/DELETE /fapi/v1/order) or "ws" (the WS-API)
    recv_window_ms = 5000
    client_order_prefix = "hl"   newClientOrderId = prefix + run tag + key (<= 36 chars)
    depth_interval_ms = 0        diff depth stream: 0 (<sym>@depth@0ms), 100, 250 or 500
    snapshot_limit = 1000        GET /fapi/v1/depth limit
    stale_after_s = 10.0         a market stream silent this long is reconnected
    cancel_all_on_start = true   DELETE /fapi/v1/allOpenOrders per symbol at startup
    auto_cancel_s = 60.0         dead-man's switch: the venue cancels every open order of
                                 our symbols this long after our last heartbeat
                                 (countdownCancelAll, sent every auto_cancel_s / 4); a
                                 killed or cut-off connector leaves nothing working. 0: off
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from decimal import Decimal

from connector.binancefutures.orders import BinanceOrders, WsOrders
from connector.binancefutures.protocol import (
    POSITION_MODE_WEIGHT,
    SWITCH_TO_ONE_WAY,
    parse_error,
    parse_position_mode,
)
from connector.binancefutures.rest import RequestFailed, RestClient
from connector.binancefutures.signing import Credentials
from connector.binancefutures.streams import MarketData, MdInstrument, UserStream
from connector.binancefutures.wsapi import WsApiClient
from connector.config import Config, path_field, rng
from connector.errors import ConfigError, HedgeModeError, VenueProtocolError
from connector.order_entry import EntryVenue
from connector.secrets import read_key_and_secret
from connector.venue import Core

log = logging.getLogger(__name__)

SECTION = "binancefutures"
SETTLE_EVERY_S = 5.0  # requests of unknown outcome are asked about again this often


@dataclass(frozen=True)
class BinanceFuturesConfig:
    rest_url: str
    ws_public_url: str
    ws_market_url: str
    ws_private_url: str
    ws_api_url: str
    api_key_env: str
    secret_env: str = ""
    secret_file: str = path_field("", must_exist=False)  # checked by `credentials`
    order_entry: str = "rest"
    recv_window_ms: int = rng(5000, 1, 60_000)
    client_order_prefix: str = "hl"
    depth_interval_ms: int = 0
    snapshot_limit: int = 1000
    stale_after_s: float = rng(10.0, 0.0, 3600.0, lo_open=True)
    cancel_all_on_start: bool = True
    auto_cancel_s: float = rng(60.0, 0.0, 3600.0)
    request_timeout_s: float = rng(10.0, 0.0, 600.0, lo_open=True)


def check_config(cfg: Config) -> None:
    """Checks the `[binancefutures]` section of a loaded config (ConfigError if bad)."""
    c: BinanceFuturesConfig = cfg.section
    p = cfg.path
    if c.order_entry not in ("rest", "ws"):
        raise ConfigError(
            f'{p}: {SECTION}.order_entry must be "rest" or "ws", got {c.order_entry!r}'
        )
    check_market_keys(p, c, cfg.instruments)
    if not 0 < c.recv_window_ms <= 60_000:
        raise ConfigError(f"{p}: {SECTION}.recv_window_ms must be in 1..60000")
    if c.auto_cancel_s and not 1.0 <= c.auto_cancel_s <= 3600.0:
        raise ConfigError(f"{p}: {SECTION}.auto_cancel_s must be 0 (off) or 1..3600 seconds")
    if bool(c.secret_env) == bool(c.secret_file):
        raise ConfigError(f"{p}: {SECTION} needs exactly one of secret_env and secret_file")
    prefix = c.client_order_prefix
    if not prefix or len(prefix) > 12 or not all(ch.isalnum() or ch in "._-" for ch in prefix):
        raise ConfigError(
            f"{p}: {SECTION}.client_order_prefix must be 1-12 characters of [A-Za-z0-9._-]"
        )


def check_market_keys(p: str, c, instruments) -> None:
    """The market-data keys of a `[binancefutures]` section (the full one, or the public
    one the sim's live source reads) and the instruments' symbols."""
    if c.depth_interval_ms not in (0, 100, 250, 500):
        raise ConfigError(f"{p}: {SECTION}.depth_interval_ms must be 0, 100, 250 or 500")
    if c.snapshot_limit not in (5, 10, 20, 50, 100, 500, 1000):
        raise ConfigError(f"{p}: {SECTION}.snapshot_limit must be one of 5..1000 (Binance's)")
    for inst in instruments:
        if inst.symbol != inst.symbol.lower():
            raise ConfigError(f"{p}: instrument symbols must be lowercase, got {inst.symbol!r}")


def credentials(c: BinanceFuturesConfig, path: str) -> Credentials:
    """The API key and secret from where the config says they are (connector.secrets)."""
    return Credentials(*read_key_and_secret(SECTION, path, c.api_key_env, c.secret_env,
                                            c.secret_file))  # fmt: skip


def preflight(cfg: Config) -> None:
    """The key and secret are there (environment, or a 0600 file) before we connect."""
    credentials(cfg.section, cfg.path)


def _filters(sym: dict) -> dict[str, dict]:
    return {f.get("filterType"): f for f in sym.get("filters", []) if isinstance(f, dict)}


async def prepare(cfg: Config) -> Config:
    """`cfg` with each instrument's tick_size and lot_size from GET /fapi/v1/exchangeInfo.

    Runs before the connector creates shared memory, which carries tick and lot sizes.
    A configured tick/lot that disagrees with the venue's is an error (a stale config).
    Then `check_account`: a refused key is a ConfigError, a hedge-mode account a
    HedgeModeError, and the connector never starts.
    """
    c: BinanceFuturesConfig = cfg.section
    insts = await read_instruments(cfg.path, c.rest_url, c.request_timeout_s, cfg.instruments)
    await check_account(cfg)
    return dataclasses.replace(cfg, instruments=insts)


async def read_instruments(path: str, rest_url: str, timeout_s: float,
                           instruments: tuple) -> tuple:  # fmt: skip
    """`instruments` with tick_size, lot_size, min_qty and min_notional from the public
    GET /fapi/v1/exchangeInfo at `rest_url` (no key). A configured tick/lot that
    disagrees with the venue's is a ConfigError (a stale config), and so is a symbol the
    venue does not list."""
    async with RestClient(rest_url, None, 5000, timeout_s) as rest:  # unsigned: no recvWindow
        try:
            r = await rest.request("GET", "/fapi/v1/exchangeInfo")
        except RequestFailed as e:
            raise ConfigError(f"{path}: cannot read exchangeInfo from {rest_url}: {e}") from None
    if r.status != 200 or not isinstance(r.body, dict):
        raise VenueProtocolError(f"GET /fapi/v1/exchangeInfo: HTTP {r.status} {r.raw[:200]!r}")
    by_sym = {s.get("symbol", "").lower(): s for s in r.body.get("symbols", [])}
    insts = []
    for inst in instruments:
        s = by_sym.get(inst.symbol)
        if s is None:
            raise ConfigError(f"{path}: {inst.symbol!r} is not listed by {rest_url}")
        f = _filters(s)
        try:
            tick = float(Decimal(f["PRICE_FILTER"]["tickSize"]))
            lot = float(Decimal(f["LOT_SIZE"]["stepSize"]))
            # §1.6 filters: LOT_SIZE.minQty, and MIN_NOTIONAL.notional (futures' field name)
            min_qty = float(Decimal(f["LOT_SIZE"].get("minQty", "0")))
            min_notional = float(Decimal(f.get("MIN_NOTIONAL", {}).get("notional", "0")))
        except (KeyError, ArithmeticError) as e:
            raise VenueProtocolError(f"exchangeInfo {inst.symbol}: bad filters ({e})") from None
        for name, mine, venue in (
            ("tick_size", inst.tick_size, tick),
            ("lot_size", inst.lot_size, lot),
        ):
            if mine and abs(mine - venue) > 1e-12 * venue:
                raise ConfigError(
                    f"{path}: {inst.symbol} {name} = {mine} but the venue's is {venue}"
                )
        insts.append(dataclasses.replace(inst, tick_size=tick, lot_size=lot, min_qty=min_qty,
                                         min_notional=min_notional))  # fmt: skip
        log.info("%s: tick_size %g, lot_size %g, min_qty %g, min_notional %g (exchangeInfo)",
                 inst.symbol, tick, lot, min_qty, min_notional)  # fmt: skip
    return tuple(insts)


async def check_account(cfg: Config) -> None:
    """One signed read before shared memory exists, so that the connector never says it
    runs on an account it cannot trade: GET /fapi/v1/positionSide/dual. A refusal means
    our key, secret or clock is wrong (ConfigError naming them); `dualSidePosition` true
    means hedge mode, where every order without positionSide LONG/SHORT is refused with
    -4061 (HedgeModeError). Reads only: nothing is ordered or cancelled before this."""
    c: BinanceFuturesConfig = cfg.section
    creds = credentials(c, cfg.path)
    async with RestClient(c.rest_url, creds, c.recv_window_ms, c.request_timeout_s) as rest:
        try:
            await rest.sync_time()
            r = await rest.request(*POSITION_MODE_READ, signed=True, weight=POSITION_MODE_WEIGHT)
        except RequestFailed as e:
            raise ConfigError(
                f"{cfg.path}: cannot check the account at {c.rest_url}: {e}"
            ) from None
    if r.status != 200:
        raise _refused(cfg, "GET /fapi/v1/positionSide/dual", r.status, r.raw)
    if _hedge_mode(r):
        raise HedgeModeError("Binance USD-M futures",
                             "GET /fapi/v1/positionSide/dual says dualSidePosition=true",
                             SWITCH_TO_ONE_WAY)  # fmt: skip
    log.info("position mode: one-way (GET /fapi/v1/positionSide/dual)")


POSITION_MODE_READ = ("GET", "/fapi/v1/positionSide/dual", {})


def _hedge_mode(r) -> bool:
    """A 200 reply of POSITION_MODE_READ: whether the account is in hedge mode."""
    try:
        return parse_position_mode(r.body if isinstance(r.body, dict) else r.raw)
    except VenueProtocolError as e:
        raise VenueProtocolError(f"GET /fapi/v1/positionSide/dual: {e}") from None


def _refused(cfg: Config, what: str, status: int, raw: bytes) -> Exception:
    """A signed read the venue refused: a ConfigError naming the key and secret, or a
    VenueProtocolError when the reply is not Binance's error body."""
    c: BinanceFuturesConfig = cfg.section
    try:
        err = parse_error(raw)
    except VenueProtocolError:
        return VenueProtocolError(f"{what}: HTTP {status} {raw[:200]!r}")
    secret = f"${c.secret_env}" if c.secret_env else c.secret_file
    return ConfigError(
        f"{cfg.path}: {c.rest_url} refused our API key: {err.code} {err.msg} "
        f"(check ${c.api_key_env} and {secret}, and that the key may trade "
        f"futures from this IP)"
    )


class BinanceFuturesVenue(EntryVenue):
    """The venue the connector drives: `run()` until cancelled; orders via `submit` etc."""

    NAME = "Binance"

    def __init__(self, cfg: Config, core: Core):
        self.cfg = cfg
        self.bf: BinanceFuturesConfig = cfg.section
        self.core = core
        self.creds = credentials(self.bf, cfg.path)
        self.rest = RestClient(self.bf.rest_url, self.creds, self.bf.recv_window_ms,
                               self.bf.request_timeout_s)  # fmt: skip
        self.insts = [MdInstrument(i, ic) for i, ic in enumerate(cfg.instruments)]
        self.md = MarketData(self.bf, self.insts, core, self.rest,
                             cfg.connector.snapshot_interval_ms)  # fmt: skip
        self.ws_api = None
        transport = None  # REST
        if self.bf.order_entry == "ws":
            self.ws_api = WsApiClient(self.bf.ws_api_url, self.creds, self.rest,
                                      self.bf.recv_window_ms, self.bf.request_timeout_s,
                                      core, self._ready_changed)  # fmt: skip
            transport = WsOrders(self.ws_api)
        self.orders = BinanceOrders(self.bf.client_order_prefix, time.time_ns() // 1_000_000,
                                    self.insts, core, self.rest, transport)  # fmt: skip
        self.user = UserStream(self.bf, self.rest, core, self.orders, self._ready_changed)
        self._stop = asyncio.Event()
        self._serving = False

    def _ready_changed(self) -> None:
        """The instruments' `connected` flag: the session can trade (the user stream is
        reconciled and, with `order_entry = "ws"`, the WebSocket API is up)."""
        ws_up = self.ws_api is None or self.ws_api.connected
        self.core.connected(self.orders.user_ready and ws_up)

    # ------------------------------------------------------------------ Venue
    def gauges(self) -> dict[str, float]:
        """Rate-limit usage as fractions of the venue's limits (1.0 = at the limit), and
        how long the venue asked us to wait."""
        lim, now = self.rest.limits, self.rest.now_ms()
        return {
            "weight_1m_used": lim.weight.get(now) / max(lim.weight_limit, 1),
            "orders_10s_used": lim.orders_10s.get(now) / max(lim.orders_10s_limit, 1),
            "orders_1m_used": lim.orders_1m.get(now) / max(lim.orders_1m_limit, 1),
            "paused_s": lim.blocked_for(),
        }

    async def stop(self, unsure: list[int]) -> None:
        """The connector stops after cancelling what it could. Orders that may still work
        are cancelled per symbol (DELETE allOpenOrders), and then the venue's dead-man's
        switch stays armed: a request still on its way cannot outlive it. Only a stop with
        nothing unsure disarms it."""
        self._stop.set()
        if not self._serving:
            return
        if unsure:
            log.warning("%d order(s) may still work at the venue: cancelling every open "
                        "order of our symbols", len(unsure))  # fmt: skip
            await self._cancel_all_open(best_effort=True)
            if self.bf.auto_cancel_s:
                log.warning("auto-cancel left armed: the venue cancels anything left in %g s",
                            self.bf.auto_cancel_s)  # fmt: skip
        elif self.bf.auto_cancel_s:
            await self._disarm_auto_cancel()

    async def _prepare(self) -> None:
        # the key and the position mode were checked by `prepare` (check_account), before
        # shared memory existed
        offset = await self.rest.sync_time()
        log.info("venue clock offset %+d ms", offset)

    async def _serve(self) -> None:
        async with asyncio.TaskGroup() as tg:
            await self._read_rate_limits()
            if self.bf.cancel_all_on_start:
                await self._cancel_all_open()
            if self.bf.auto_cancel_s:  # armed before the first order can go out
                await self._set_countdown(round(self.bf.auto_cancel_s * 1000))
                log.info("auto-cancel armed: the venue cancels our open orders %g s after our "
                         "last heartbeat", self.bf.auto_cancel_s)  # fmt: skip
                tg.create_task(self._auto_cancel_heartbeat(), name="bf-auto-cancel")
            # positions are read when the user stream connects (reconcile), before any order
            self.orders.entry.tg = tg
            self._serving = True
            if self.ws_api is not None:
                tg.create_task(self.ws_api.run(), name="bf-ws-api")
            tg.create_task(self.user.run(), name="bf-user")
            tg.create_task(self.md.run(), name="bf-md")
            tg.create_task(self._housekeeping(), name="bf-housekeeping")
            await self._stop.wait()
            # keep serving (shutdown cancels) until the connector cancels this task
            await asyncio.Event().wait()

    async def _housekeeping(self) -> None:
        next_sync = time.monotonic() + 300.0
        while True:
            await asyncio.sleep(SETTLE_EVERY_S)
            self.orders.entry.settle(SETTLE_EVERY_S)
            if self.orders.mode_suspect:
                self.orders.mode_suspect = False
                await self._recheck_position_mode()
            if time.monotonic() >= next_sync:  # the clock offset drifts slowly; re-measure
                next_sync = time.monotonic() + 300.0
                try:
                    await self.rest.sync_time()
                except RequestFailed as e:
                    log.warning("clock offset refresh failed: %s", e)

    async def _recheck_position_mode(self) -> None:
        """After a -4061 refusal: the mode read again (weight 30). Hedge mode (switched
        while we ran; Binance allows it only with no position and no open order) stops the
        connector with HedgeModeError, as at start, rather than have every order refused;
        a read that fails is logged, and the next -4061 asks again."""
        try:
            r = await self.rest.request(*POSITION_MODE_READ, signed=True,
                                        weight=POSITION_MODE_WEIGHT)  # fmt: skip
            if r.status != 200:
                raise VenueProtocolError(f"HTTP {r.status} {r.raw[:200]!r}")
            hedge = _hedge_mode(r)
        except (RequestFailed, VenueProtocolError) as e:
            log.warning("an order was refused with -4061; the position mode could not be "
                        "read: %s", e)  # fmt: skip
            return
        if hedge:
            raise HedgeModeError("Binance USD-M futures", "orders are refused with -4061 and "
                                 "GET /fapi/v1/positionSide/dual says dualSidePosition=true: "
                                 "the mode was switched while the connector ran",
                                 SWITCH_TO_ONE_WAY, running=True)  # fmt: skip
        log.warning("an order was refused with -4061, but GET /fapi/v1/positionSide/dual says "
                    "one-way mode")  # fmt: skip

    async def _auto_cancel_heartbeat(self) -> None:
        """Keeps the venue's auto-cancel countdown from running out while we are alive."""
        ms = round(self.bf.auto_cancel_s * 1000)
        while True:
            await asyncio.sleep(self.bf.auto_cancel_s / 4)
            try:
                await self._set_countdown(ms)
            except (RequestFailed, VenueProtocolError) as e:
                log.warning("auto-cancel heartbeat failed: %s", e)

    async def _disarm_auto_cancel(self) -> None:
        """A clean stop: the countdown must not cancel orders someone placed after us."""
        try:
            await self._set_countdown(0)
            log.info("auto-cancel timer stopped")
        except (RequestFailed, VenueProtocolError) as e:
            log.warning("auto-cancel timer could not be stopped: %s", e)

    async def _set_countdown(self, ms: int) -> None:
        for s in self.insts:
            r = await self.rest.request("POST", "/fapi/v1/countdownCancelAll",
                                        {"symbol": s.upper, "countdownTime": ms}, signed=True,
                                        weight=10)  # fmt: skip
            if r.status != 200:
                raise VenueProtocolError(f"countdownCancelAll {s.symbol}: HTTP {r.status} "
                                         f"{r.raw[:200]!r}")  # fmt: skip

    async def _read_rate_limits(self) -> None:
        r = await self.rest.request("GET", "/fapi/v1/exchangeInfo")
        if r.status != 200 or not isinstance(r.body, dict):
            raise VenueProtocolError(f"GET /fapi/v1/exchangeInfo: HTTP {r.status} {r.raw[:200]!r}")
        lim = self.rest.limits
        lim.set_limits(r.body.get("rateLimits") or [])
        log.info("rate limits: weight %d/min, orders %d/10s and %d/min (throttle at %d%%)",
                 lim.weight_limit, lim.orders_10s_limit, lim.orders_1m_limit,
                 round(100 * lim.headroom))  # fmt: skip

    async def _cancel_all_open(self, best_effort: bool = False) -> None:
        """DELETE /fapi/v1/allOpenOrders per symbol; `best_effort`: log failures, go on."""
        for s in self.insts:
            try:
                r = await self.rest.request("DELETE", "/fapi/v1/allOpenOrders",
                                            {"symbol": s.upper}, signed=True)  # fmt: skip
                if r.status != 200:
                    raise VenueProtocolError(f"cancel-all for {s.symbol} failed: HTTP "
                                             f"{r.status} {r.raw[:200]!r}")  # fmt: skip
            except (RequestFailed, VenueProtocolError) as e:
                if not best_effort:
                    raise
                log.error("%s", e)
                continue
            log.info("%s: cancelled every open order", s.symbol)


def _factory(cfg: Config, core: Core) -> BinanceFuturesVenue:
    return BinanceFuturesVenue(cfg, core)
