"""The Bybit v5 linear venue: config, preflight, prepare and `BybitVenue`, which owns every
task in one TaskGroup.

Pieces (one module each): `rest` (signed REST, the clock, rate limits), `trade` (the
trade stream: order entry), `private` (the private stream and reconciliation), `orders`
(the VenueOrderApi and the private pushes), `marketdata` (public data, bybit-md's), all
over the venue-neutral kernel (connector.transport, connector.reconnect,
connector.order_entry, connector.feed).

Config (`[bybit]` in the connector TOML)::

    rest_url, ws_public_url, ws_private_url, ws_trade_url     base URLs (testnet default)
    api_key_env = "BYBIT_API_KEY"  names of environment variables holding the key and
    secret_env = "BYBIT_SECRET"    the secret; or secret_file = "path" (0600): exactly one
    order_entry = "ws"             "ws" (the trade stream) or "rest"
    recv_window_ms = 5000
    client_order_prefix = "hl"     orderLinkId = prefix + run tag + key (<= 36 chars)
    depth = 50                     orderbook.{1,50,200,1000}.{SYMBOL}
    stale_after_s = 10.0           a silent public stream is reconnected
    ping_interval_s = 20.0         Bybit's application-level {"op": "ping"}
    cancel_all_on_start = true     POST /v5/order/cancel-all per symbol at startup
    request_timeout_s = 10.0
    dcp_window_s = 0               Bybit's disconnect-cancel-all (DCP) window, 3..300 s;
                                   0: off. Bybit enables DCP per account on request only
                                   ([BY order/dcp.mdx]: "contact your client manager"),
                                   so it is off by default and the connector cancels per
                                   symbol on the way out instead.

Dead-man's switch [BY order/dcp.mdx, confirmed]: POST /v5/order/disconnected-cancel-all
{"product": "DERIVATIVES", "timeWindow": 3..300} covers USDT perpetuals; it triggers only
if the private stream subscribes the `dcp` topic, and cancels every active derivatives
order of the account once the private connection has been gone `timeWindow` seconds.
With `dcp_window_s` set, the venue sets it before the first order and subscribes `dcp`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from connector.bybit.marketdata import BybitInstrument, MarketData
from connector.bybit.orders import CATEGORY, BybitOrders
from connector.bybit.private import PrivateStream
from connector.bybit.protocol import SWITCH_TO_ONE_WAY, parse_instruments, parse_position_mode
from connector.bybit.rest import TRADE_OPS, BybitRest
from connector.bybit.signing import Credentials
from connector.bybit.trade import TradeStream
from connector.clock import REMEASURE_S
from connector.config import Config, check_urls, path_field, rng
from connector.errors import ConfigError, HedgeModeError, RequestFailed, VenueProtocolError
from connector.order_entry import EntryVenue
from connector.secrets import read_key_and_secret
from connector.venue import Core

log = logging.getLogger(__name__)

SECTION = "bybit"
SETTLE_EVERY_S = 5.0  # requests of unknown outcome are asked about again this often
DEPTHS = (1, 50, 200, 1000)  # §0.5: 500 is gone
# retCodes that mean the key itself is refused [BY error.mdx]
KEY_REFUSED = {10003: "invalid API key", 10004: "signature error (wrong secret?)",
               10005: "permission denied", 10009: "IP not allowed for this key",
               10010: "unmatched IP"}  # fmt: skip


@dataclass(frozen=True)
class BybitConfig:
    rest_url: str = "https://api-testnet.bybit.com"
    ws_public_url: str = "wss://stream-testnet.bybit.com/v5/public/linear"
    ws_private_url: str = "wss://stream-testnet.bybit.com/v5/private"
    ws_trade_url: str = "wss://stream-testnet.bybit.com/v5/trade"
    api_key_env: str = "BYBIT_API_KEY"
    secret_env: str = "BYBIT_SECRET"  # ignored when secret_file is set (see secret_source)
    secret_file: str = path_field("", must_exist=False)  # checked by `credentials`
    order_entry: str = "ws"
    recv_window_ms: int = rng(5000, 1, 60_000)
    client_order_prefix: str = "hl"
    depth: int = rng(50, 1, 1000)  # one of DEPTHS (check_config)
    stale_after_s: float = rng(10.0, 0.0, 3600.0, lo_open=True)
    ping_interval_s: float = rng(20.0, 0.0, 600.0, lo_open=True)
    cancel_all_on_start: bool = True
    request_timeout_s: float = rng(10.0, 0.0, 600.0, lo_open=True)
    dcp_window_s: int = rng(0, 0, 300)

    def secret_source(self) -> tuple[str, str]:
        """(secret_env, secret_file), exactly one of them set: a `secret_file` replaces the
        default `secret_env` (check_config refuses both set to non-defaults)."""
        if self.secret_file:
            return "", self.secret_file
        return self.secret_env, ""


def check_config(cfg: Config) -> None:
    """Checks the `[bybit]` section of a loaded config (ConfigError naming key and file)."""
    c: BybitConfig = cfg.section
    p = cfg.path
    if c.order_entry not in ("ws", "rest"):
        raise ConfigError(f'{p}: {SECTION}.order_entry must be "ws" or "rest", '
                          f"got {c.order_entry!r}")  # fmt: skip
    check_market_keys(p, c, cfg.instruments)
    default_env = BybitConfig.__dataclass_fields__["secret_env"].default
    if c.secret_file and c.secret_env not in ("", default_env):
        raise ConfigError(f"{p}: {SECTION} needs exactly one of secret_env and secret_file")
    if not c.secret_file and not c.secret_env:
        raise ConfigError(f"{p}: {SECTION}.secret_env is empty (or set secret_file)")
    if c.dcp_window_s and not 3 <= c.dcp_window_s <= 300:
        raise ConfigError(f"{p}: {SECTION}.dcp_window_s must be 0 (off) or 3..300 seconds")
    prefix = c.client_order_prefix
    # orderLinkId: at most 36 of [A-Za-z0-9_-] (§2.5); 12 + run tag + key stays within
    if not prefix or len(prefix) > 12 or not all(ch.isascii() and (ch.isalnum() or ch in "_-")
                                                 for ch in prefix):  # fmt: skip
        raise ConfigError(f"{p}: {SECTION}.client_order_prefix must be 1-12 characters of "
                          f"[A-Za-z0-9_-], got {prefix!r}")  # fmt: skip
    check_urls(p, SECTION, c, http=("rest_url",),
               ws=("ws_public_url", "ws_private_url", "ws_trade_url"))  # fmt: skip


def check_market_keys(p: str, c, instruments) -> None:
    """The market-data keys of a `[bybit]` section (the full one, or the public one the
    sim's live source reads) and the instruments' symbols."""
    if c.depth not in DEPTHS:
        raise ConfigError(f"{p}: {SECTION}.depth must be one of {DEPTHS} (Bybit's linear "
                          f"depths), got {c.depth}")  # fmt: skip
    for inst in instruments:
        if inst.symbol != inst.symbol.upper():
            raise ConfigError(f"{p}: instrument symbols must be Bybit's uppercase symbols "
                              f"(BTCUSDT), got {inst.symbol!r}")  # fmt: skip


def credentials(c: BybitConfig, path: str) -> Credentials:
    """The API key and secret from where the config says they are (connector.secrets)."""
    secret_env, secret_file = c.secret_source()
    return Credentials(*read_key_and_secret(SECTION, path, c.api_key_env, secret_env,
                                            secret_file))  # fmt: skip


def preflight(cfg: Config) -> None:
    """The key and secret are there (environment, or a 0600 file) before we connect."""
    credentials(cfg.section, cfg.path)


async def prepare(cfg: Config) -> Config:
    """`cfg` with each instrument's tick, lot, min qty and min notional from GET
    /v5/market/instruments-info. An instrument the venue does not list (or does not
    trade), or a configured tick/lot that disagrees with the venue's, is a ConfigError.
    Then `check_account`: a refused key is a ConfigError, a hedge-mode symbol a
    HedgeModeError, and the connector never starts."""
    c: BybitConfig = cfg.section
    insts = await read_instruments(cfg.path, c.rest_url, c.request_timeout_s, cfg.instruments)
    await check_account(cfg)
    return dataclasses.replace(cfg, instruments=insts)


async def read_instruments(path: str, rest_url: str, timeout_s: float,
                           instruments: tuple) -> tuple:  # fmt: skip
    """`instruments` with tick, lot, min qty and min notional from the public GET
    /v5/market/instruments-info at `rest_url` (no key). An instrument the venue does not
    list (or does not trade), or a configured tick/lot that disagrees with the venue's,
    is a ConfigError."""
    insts = []
    async with BybitRest(rest_url, None, 5000, timeout_s) as rest:  # unsigned: no recvWindow
        for inst in instruments:
            try:
                r = await rest.request("GET", "/v5/market/instruments-info",
                                       {"category": CATEGORY, "symbol": inst.symbol})  # fmt: skip
            except RequestFailed as e:
                raise ConfigError(f"{path}: cannot read instruments-info from "
                                  f"{rest_url}: {e}") from None  # fmt: skip
            if r.env is None or not r.env.ok:
                raise VenueProtocolError(f"GET /v5/market/instruments-info {inst.symbol}: "
                                         f"HTTP {r.status} {str(r.raw)[:200]!r}")  # fmt: skip
            info = {i.symbol: i for i in parse_instruments(r.env.result)}.get(inst.symbol)
            if info is None:
                raise ConfigError(f"{path}: {inst.symbol!r} is not a linear instrument "
                                  f"listed by {rest_url}")  # fmt: skip
            if info.status != "Trading":
                raise ConfigError(f"{path}: {inst.symbol} is not trading at {rest_url} "
                                  f"(status {info.status!r})")  # fmt: skip
            try:
                tick, lot = float(Decimal(info.tick_size)), float(Decimal(info.qty_step))
                min_qty, min_notional = (
                    float(Decimal(info.min_qty)),
                    float(Decimal(info.min_notional)),
                )
            except InvalidOperation:
                raise VenueProtocolError(f"instruments-info {inst.symbol}: bad filters "
                                         f"{info!r}") from None  # fmt: skip
            for name, mine, venue in (("tick_size", inst.tick_size, tick),
                                      ("lot_size", inst.lot_size, lot)):  # fmt: skip
                if mine and abs(mine - venue) > 1e-12 * venue:
                    raise ConfigError(f"{path}: {inst.symbol} {name} = {mine} but the "
                                      f"venue's is {venue}")  # fmt: skip
            insts.append(dataclasses.replace(inst, tick_size=tick, lot_size=lot,
                                             min_qty=min_qty, min_notional=min_notional))  # fmt: skip
            log.info("%s: tick_size %g, lot_size %g, min_qty %g, min_notional %g "
                     "(instruments-info)", inst.symbol, tick, lot, min_qty, min_notional)  # fmt: skip
    return tuple(insts)


async def check_account(cfg: Config) -> None:
    """Signed reads before shared memory exists, so that the connector never says it runs
    on an account it cannot trade: GET /v5/position/list per instrument. A refusal means
    our key, secret or clock is wrong (ConfigError naming them); hedge-mode legs
    (positionIdx 1 and 2) mean every order without them is refused with 10001 "position
    idx not match position mode" (HedgeModeError). Reads only: nothing is ordered or
    cancelled before this."""
    c: BybitConfig = cfg.section
    hedged = []
    async with BybitRest(c.rest_url, credentials(c, cfg.path), c.recv_window_ms,
                         c.request_timeout_s) as rest:  # fmt: skip
        try:
            await rest.clock.measure()
            for inst in cfg.instruments:
                r = await rest.request("GET", "/v5/position/list",
                                       {"category": CATEGORY, "symbol": inst.symbol},
                                       signed=True)  # fmt: skip
                if r.env is None or not r.env.ok:
                    raise _refused(cfg, r)
                try:
                    if parse_position_mode(r.env.result):
                        hedged.append(inst.symbol)
                except VenueProtocolError as e:
                    raise VenueProtocolError(f"GET /v5/position/list {inst.symbol}: {e}") from None
        except RequestFailed as e:
            raise ConfigError(
                f"{cfg.path}: cannot check the account at {c.rest_url}: {e}"
            ) from None
    if hedged:
        raise HedgeModeError("Bybit linear", "GET /v5/position/list shows hedge-mode legs, "
                             f"positionIdx 1 and 2, for {', '.join(hedged)}",
                             SWITCH_TO_ONE_WAY)  # fmt: skip
    log.info("position mode: one-way (GET /v5/position/list: positionIdx 0)")


def _refused(cfg: Config, r) -> Exception:
    """A signed read the venue refused: a ConfigError naming the key and secret when the
    key is what it refused (HTTP 401, KEY_REFUSED), else a VenueProtocolError."""
    c: BybitConfig = cfg.section
    code = r.env.ret_code if r.env is not None else None
    if r.status == 401 or code in KEY_REFUSED:
        what = KEY_REFUSED.get(code, "HTTP 401") if code else "HTTP 401"
        secret_env, secret_file = c.secret_source()
        secret = f"${secret_env}" if secret_env else secret_file
        msg = r.env.ret_msg if r.env is not None else str(r.raw)[:200]
        return ConfigError(f"{cfg.path}: {c.rest_url} refused our API key: {code} {what}: "
                           f"{msg} (check ${c.api_key_env} and {secret}, and that the key may "
                           f"trade linear contracts from this IP)")  # fmt: skip
    return VenueProtocolError(f"GET /v5/position/list: HTTP {r.status} {str(r.raw)[:200]!r}")


class BybitVenue(EntryVenue):
    """The venue the connector drives: `run()` until cancelled; orders via `submit` etc."""

    NAME = "Bybit"

    def __init__(self, cfg: Config, core: Core):
        self.cfg = cfg
        self.by: BybitConfig = cfg.section
        self.core = core
        by = self.by
        self.creds = credentials(by, cfg.path)
        self.rest = BybitRest(by.rest_url, self.creds, by.recv_window_ms, by.request_timeout_s)
        self.insts = [BybitInstrument(i, ic, by.depth) for i, ic in enumerate(cfg.instruments)]
        self.md = MarketData(by, self.insts, core, cfg.connector.snapshot_interval_ms)
        self.trade = None
        if by.order_entry == "ws":
            self.trade = TradeStream(by.ws_trade_url, self.creds, self.rest, by.recv_window_ms,
                                     by.request_timeout_s, by.ping_interval_s, core)  # fmt: skip
        self.orders = BybitOrders(by.client_order_prefix, time.time_ns() // 1_000_000,
                                  self.insts, core, self.rest, self.trade)  # fmt: skip
        self.private = PrivateStream(by.ws_private_url, self.creds, self.rest,
                                     by.ping_interval_s, by.request_timeout_s, core,
                                     self.orders, self._ready_changed,
                                     dcp=bool(by.dcp_window_s))  # fmt: skip
        self._stop = asyncio.Event()
        self._serving = False

    def _ready_changed(self) -> None:
        """The instruments' `connected` flag: the private stream is up and reconciled
        (orders go over REST while the trade stream is down, so it does not count)."""
        self.core.connected(self.orders.private_ready)

    # ------------------------------------------------------------------ Venue
    def gauges(self) -> dict[str, float]:
        """Per order endpoint: the share of its per-second budget used in the current
        window (the venue's X-Bapi-Limit-Status), and seconds of a 10006/403 pause."""
        lim = self.rest.limits
        out: dict[str, float] = {}
        for path, (limit, remaining, _reset) in lim.state.items():
            if limit > 0:
                out[f"{path.rsplit('/', 1)[-1]}_used"] = 1.0 - remaining / limit
        for path in TRADE_OPS.values():
            wait = lim.blocked_for(path)
            if wait > 0:
                out[f"{path.rsplit('/', 1)[-1]}_paused_s"] = wait
        return out

    async def stop(self, unsure: list[int]) -> None:
        """The connector stops after cancelling what it could. Orders that may still work
        (unsure), and with `cancel_on_shutdown` anything of our symbols still open, are
        cancelled per symbol (POST /v5/order/cancel-all); a DCP window, if set, stays as
        it is (it only ever cancels)."""
        self._stop.set()
        if not self._serving:
            return
        if unsure or self.cfg.connector.cancel_on_shutdown:
            if unsure:
                log.warning("%d order(s) may still work at the venue: cancelling every open "
                            "order of our symbols", len(unsure))  # fmt: skip
            await self._cancel_all_open(best_effort=True)

    async def _prepare(self) -> None:
        # the key and the position mode were checked by `prepare` (check_account), before
        # shared memory existed
        offset = await self.rest.clock.measure()
        log.info("venue clock offset %+d ms", offset)

    async def _serve(self) -> None:
        async with asyncio.TaskGroup() as tg:
            if self.by.cancel_all_on_start:
                await self._cancel_all_open()
            if self.by.dcp_window_s:  # armed before the first order can go out
                await self._set_dcp(self.by.dcp_window_s)
            self.orders.entry.tg = tg
            self._serving = True
            if self.trade is not None:
                tg.create_task(self.trade.run(), name="bybit-trade")
            tg.create_task(self.private.run(), name="bybit-private")
            tg.create_task(self.md.run(), name="bybit-md")
            tg.create_task(self._housekeeping(), name="bybit-housekeeping")
            await self._stop.wait()
            # keep serving (shutdown cancels) until the connector cancels this task
            await asyncio.Event().wait()

    async def _housekeeping(self) -> None:
        next_sync = time.monotonic() + REMEASURE_S
        while True:
            await asyncio.sleep(SETTLE_EVERY_S)
            self.orders.entry.settle(SETTLE_EVERY_S)
            if self.orders.mode_suspect:
                self.orders.mode_suspect = False
                await self.orders.check_position_mode()
            if time.monotonic() >= next_sync:  # the offset drifts slowly; re-measure
                next_sync = time.monotonic() + REMEASURE_S
                await self.rest.clock.remeasure("periodic")

    async def _set_dcp(self, window_s: int) -> None:
        r = await self.rest.request("POST", "/v5/order/disconnected-cancel-all",
                                    {"product": "DERIVATIVES", "timeWindow": window_s},
                                    signed=True)  # fmt: skip
        if r.env is None or not r.env.ok:
            raise ConfigError(f"{self.cfg.path}: {SECTION}.dcp_window_s: the venue refused "
                              f"disconnect-cancel-all: HTTP {r.status} {str(r.raw)[:200]!r} "
                              f"(Bybit enables DCP per account on request)")  # fmt: skip
        log.info("DCP armed: the venue cancels our derivatives orders %d s after the "
                 "private stream is lost", window_s)  # fmt: skip

    async def _cancel_all_open(self, best_effort: bool = False) -> None:
        """POST /v5/order/cancel-all per symbol; `best_effort`: log failures, go on."""
        for s in self.insts:
            try:
                r = await self.rest.request("POST", "/v5/order/cancel-all",
                                            {"category": CATEGORY, "symbol": s.symbol},
                                            signed=True)  # fmt: skip
                res = r.env.result if r.env is not None and r.env.ok else None
                # §2.5: result.success "1"; "0" means it failed
                if not isinstance(res, dict) or str(res.get("success", "1")) != "1":
                    raise VenueProtocolError(f"cancel-all for {s.symbol} failed: HTTP "
                                             f"{r.status} {str(r.raw)[:200]!r}")  # fmt: skip
            except (RequestFailed, VenueProtocolError) as e:
                if not best_effort:
                    raise
                log.error("%s", e)
                continue
            log.info("%s: cancelled every open order (%d)", s.symbol, len(res.get("list") or []))


def _factory(cfg: Config, core: Core) -> BybitVenue:
    return BybitVenue(cfg, core)
