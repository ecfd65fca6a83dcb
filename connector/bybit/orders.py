"""Bybit order entry: the `VenueOrderApi` (connector.order_entry) for linear perpetuals,
and the private stream's order, execution and position pushes (venue_protocols.md §2.3-
§2.5). The lifecycle rules are connector.lifecycle's; this module only speaks Bybit.

* `orderLinkId` = prefix + run tag + key (connector.order_entry.client_id_prefix): unique
  across bots and restarts by construction, at most 36 characters of [A-Za-z0-9_-].
* Transport: the trade stream (`order_entry = "ws"`, the default) or REST
  (`order_entry = "rest"`). While the trade stream is not ready (down, or not yet
  authenticated) every request goes over REST: a cancel must always get through, and a
  new order or an amend is the same signed request over the other door (sent once, its
  outcome resolved by a query like any other); the bots are told of the trade stream's
  loss and return by the connection notices, and the session stays usable.
* A reply's retCode 0 means only "accepted" (§2.4/§2.5: the state comes on the `order`
  topic). `send` therefore waits up to `STREAM_WAIT_S` for the order's push (it is
  usually there first) so the request concludes on the venue's real state: a crossing
  PostOnly ends EXPIRED at once, a cancel shows CANCELED. Without a push the ack counts:
  a submit shows NEW, an amend its new price and qty; a cancel asks the venue (a query)
  what became of the order, and the stream (or `settle`'s queries) brings the rest.
* No reply, a lost socket after sending, 10016 (internal error) or a 5xx: the outcome is
  unknown: `RequestFailed(sent=True)`, resolved by a query, never resent.
* `query`: GET /v5/order/realtime by orderLinkId, then /v5/order/history; `fills`:
  GET /v5/execution/list by orderLinkId (execId is the dedup id, the stream's); open
  orders: /v5/order/realtime per symbol, every page.
* Positions from `position` pushes and GET /v5/position/list: size signed by side,
  one-way (positionIdx 0). A hedge-mode symbol is refused before the connector starts
  (client.check_account), and a reconcile that finds legs with positionIdx 1/2, or a
  10001 refusal after which the venue's housekeeping reads them (check_position_mode;
  the mode was switched since), stops the connector with the same HedgeModeError rather
  than trade on it; legs that a push carries meanwhile are summed.
"""

from __future__ import annotations

import asyncio
import logging

from connector import codes
from connector.bybit import mapping
from connector.bybit.protocol import (
    SWITCH_TO_ONE_WAY,
    Execution,
    OrderUpdate,
    Position,
    hedge_legs_in,
    parse_execution_list,
    parse_order_list,
    parse_position_list,
)
from connector.bybit.rest import RATE_LIMITED, BybitRest, Reply
from connector.errors import HedgeModeError, RequestFailed, VenueProtocolError
from connector.lifecycle import Fill, Order, Refusal, VenueState
from connector.order_entry import OrderEntry, base36, client_id_prefix
from hftlive.constants import FILLED, LIMIT, NEW, NONE, PARTIALLY_FILLED
from hftlive.layout import REQ_CANCEL, REQ_MODIFY, REQ_SUBMIT

log = logging.getLogger(__name__)

CATEGORY = "linear"
STREAM_WAIT_S = 1.0  # how long an accepted request waits for the order's push
INTERNAL_ERROR = 10016  # "server error": the request may have executed
# "params error": among others, an order without positionIdx 1/2 on a hedge-mode symbol
# ("position idx not match position mode", users' reports: UNCONFIRMED); so any 10001
# makes the venue's housekeeping read the mode (check_position_mode)
PARAMS_ERROR = 10001
_OPS = {REQ_SUBMIT: "order.create", REQ_MODIFY: "order.amend", REQ_CANCEL: "order.cancel"}
_PATHS = {REQ_SUBMIT: "/v5/order/create", REQ_MODIFY: "/v5/order/amend",
          REQ_CANCEL: "/v5/order/cancel"}  # fmt: skip
_LIMIT = 50  # /v5/order/realtime and /v5/execution/list page size (their maximum)


def refusal(code: int, msg: str) -> Refusal:
    """A Bybit retCode (or a connector code) with its neutral reason."""
    return Refusal(code, msg, codes.REASONS.get(code) or mapping.reject_reason(code))


def state_of(u: OrderUpdate, s) -> VenueState:
    """An order (push, realtime, history) as the lifecycle's VenueState."""
    px = s.tick_of(u.price) if u.order_type == "Limit" and u.price > 0 else None
    return VenueState(mapping.order_status(u.status, u.reject_reason, u.cum_qty), u.qty,
                      u.cum_qty, px, u.updated_ns)  # fmt: skip


def post_only_refusal(u: OrderUpdate) -> Refusal | None:
    if mapping.is_post_only_cross(u.status, u.reject_reason, u.cum_qty):
        return refusal(codes.POST_ONLY_CROSSED, f"{u.reject_reason}: the PostOnly order would "
                                                f"have taken liquidity")  # fmt: skip
    return None


def fill_of(e: Execution, s) -> Fill:
    return Fill(e.exec_id, e.qty, s.tick_of(e.px), e.maker, e.fee, e.ts_ns)


class BybitOrders:
    """`VenueOrderApi` for Bybit, and the private stream's order events.

    Args:
        prefix: `client_order_prefix`.
        run_tag_ms: this run's start (ms): part of every orderLinkId.
        insts: the instruments (RecordingBook: symbol, tick_of, px_text, qty_text).
        core: the connector core.
        rest: the REST client.
        trade: the trade stream (`TradeStream`), or None for REST only.
    """

    fills_source = "/v5/execution/list"

    def __init__(self, prefix: str, run_tag_ms: int, insts, core, rest: BybitRest,
                 trade=None):  # fmt: skip
        self.prefix = client_id_prefix(prefix, run_tag_ms)
        self.insts = insts
        self.by_symbol = {s.symbol: s for s in insts}
        self.rest = rest
        self.trade = trade
        self.private_ready = False  # the private stream is up and reconciled
        self.mode_suspect = False  # a 10001 came back: the mode may have been switched
        self.entry = OrderEntry(core, self)
        self._legs: dict[tuple[int, int], float] = {}  # (inst, positionIdx) -> signed size
        self.positions: dict[int, float] = {}  # inst -> the account's position
        self._pushed: dict[int, asyncio.Event] = {}  # key -> set by the order's next push
        self._via_rest_logged = False

    # ------------------------------------------------------------------ VenueOrderApi
    def client_id(self, key: int) -> str:
        return f"{self.prefix}{base36(key)}"

    def _over_ws(self) -> bool:
        if self.trade is None:
            return False
        if self.trade.ready:
            self._via_rest_logged = False
            return True
        if not self._via_rest_logged:
            self._via_rest_logged = True
            log.warning("the trade stream is not ready: order requests go over REST")
        return False

    def admit(self, o: Order, req: int) -> Refusal | None:
        if not self.private_ready:
            # the fills of an order sent now could be missed
            return refusal(codes.NOT_READY, "the private stream is not connected")
        why = self.rest.limits.admit(_PATHS[req], self.rest.now_ms(), req != REQ_CANCEL)
        if why:
            paused = self.rest.limits.blocked_for(_PATHS[req]) > 0
            return refusal(codes.PAUSED if paused else codes.THROTTLED, why)
        return None

    def _params(self, o: Order, req: int) -> dict:
        s = self.insts[o.inst]
        p = {"category": CATEGORY, "symbol": s.symbol}
        if req == REQ_SUBMIT:
            p["side"] = mapping.SIDE_NAMES[o.side]
            p["orderType"] = mapping.ORDER_TYPE_NAMES[o.order_type]
            p["qty"] = s.qty_text(o.qty)
            if o.order_type == LIMIT:
                p["price"] = s.px_text(o.price_tick)
                p["timeInForce"] = mapping.TIF_NAMES[o.tif]
            else:
                p["timeInForce"] = "IOC"  # §2.5: a market order is always IOC
            if o.reduce_only:
                p["reduceOnly"] = True  # §2.5 create: only reduces the position (flatten)
            p["orderLinkId"] = o.client_id
        elif req == REQ_CANCEL:
            p["orderLinkId"] = o.client_id
        else:
            px_tick, qty = o.modify_to
            p["orderLinkId"] = o.client_id
            # §2.5 amend: send only the fields that change
            if qty != o.qty:
                p["qty"] = s.qty_text(qty)
            if px_tick != o.price_tick or "qty" not in p:
                p["price"] = s.px_text(px_tick)
        return p

    async def send(self, o: Order, req: int) -> VenueState | Refusal:
        params = self._params(o, req)
        pushed = self._pushed.setdefault(o.key, asyncio.Event())
        pushed.clear()  # a push from here on may be this request's effect
        if self._over_ws():
            r = await self.trade.request(_OPS[req], params)
        else:
            r = await self.rest.request("POST", _PATHS[req], params, signed=True)
        result = self._result(o, req, r)
        if isinstance(result, Refusal) or o.final:
            return result
        if not pushed.is_set():
            try:
                async with asyncio.timeout(STREAM_WAIT_S):
                    await pushed.wait()
            except TimeoutError:
                if req == REQ_CANCEL:
                    # the push is late or lost: the venue tells what the cancel did (a
                    # submit or amend keeps its ack: a query racing the venue's books
                    # could miss a fresh order)
                    try:
                        now = await self.query(o)
                    except (RequestFailed, VenueProtocolError) as e:
                        log.warning("order %s: cancel accepted, no push, query failed: %s",
                                    o.client_id, e)  # fmt: skip
                    else:
                        if isinstance(now, VenueState):
                            return now
        return result

    def _result(self, o: Order, req: int, r: Reply) -> VenueState | Refusal:
        env = r.env
        if r.status == 403:
            return refusal(codes.PAUSED, "HTTP 403: the venue's IP limit")
        if env is None:
            # a 5xx, a gateway page, a body that is not Bybit's: it may have executed
            raise RequestFailed(f"HTTP {r.status} {str(r.raw)[:120]!r}", sent=True)
        if env.ret_code == INTERNAL_ERROR:
            raise RequestFailed(f"{env.ret_code} {env.ret_msg}", sent=True)
        if env.ret_code != 0:
            if env.ret_code == RATE_LIMITED:
                log.warning("order %s: 10006 too many visits", o.client_id)
            elif env.ret_code == PARAMS_ERROR:
                self.mode_suspect = True
            return refusal(env.ret_code, env.ret_msg)
        if isinstance(env.result, dict) and env.result.get("orderId"):
            o.venue_id = env.result["orderId"]
        st = NEW if req == REQ_SUBMIT and o.status == NONE else o.status
        qty = o.modify_to[1] if req == REQ_MODIFY else o.qty
        px = o.modify_to[0] if req == REQ_MODIFY else o.price_tick
        # the ack carries no order time: ts 0 lets any state the venue shows win (A1)
        return VenueState(st, qty, o.filled_qty, px if o.order_type == LIMIT else None, 0)

    async def _orders(self, s, **params) -> tuple[list[OrderUpdate], str]:
        path = params.pop("path", "/v5/order/realtime")
        p = {"category": CATEGORY, "symbol": s.symbol, **params}
        r = await self.rest.request("GET", path, p, signed=True)
        if r.env is None or not r.env.ok:
            raise VenueProtocolError(f"GET {path}: HTTP {r.status} {str(r.raw)[:200]!r}")
        return parse_order_list(r.env.result)

    async def query(self, o: Order) -> VenueState | Refusal:
        s = self.insts[o.inst]
        for path in ("/v5/order/realtime", "/v5/order/history"):
            found, _ = await self._orders(s, path=path, orderLinkId=o.client_id)
            for u in found:
                if u.client_id == o.client_id:
                    o.venue_id = u.order_id
                    return state_of(u, s)
        return refusal(codes.UNKNOWN_ORDER, f"{o.client_id}: no such order at the venue")

    async def fills(self, o: Order) -> list[Fill]:
        s = self.insts[o.inst]
        out, cursor = [], ""
        while True:
            p = {"category": CATEGORY, "symbol": s.symbol, "orderLinkId": o.client_id,
                 "limit": _LIMIT}  # fmt: skip
            if cursor:
                p["cursor"] = cursor
            r = await self.rest.request("GET", "/v5/execution/list", p, signed=True)
            if r.env is None or not r.env.ok:
                raise VenueProtocolError(f"GET /v5/execution/list: HTTP {r.status} "
                                         f"{str(r.raw)[:200]!r}")  # fmt: skip
            execs, cursor = parse_execution_list(r.env.result)
            out += [fill_of(e, s) for e in execs
                    if e.client_id == o.client_id and e.exec_type == "Trade"]  # fmt: skip
            if not cursor or not execs:
                return out

    async def open_orders(self) -> dict[str, VenueState]:
        out: dict[str, VenueState] = {}
        for s in self.insts:
            cursor = ""
            while True:
                kw = {"limit": _LIMIT, **({"cursor": cursor} if cursor else {})}
                found, cursor = await self._orders(s, **kw)
                for u in found:
                    if u.client_id:
                        out[u.client_id] = state_of(u, s)
                if not cursor or not found:
                    break
        return out

    # ------------------------------------------------------------------ private stream
    def on_order(self, u: OrderUpdate) -> None:
        key = self.entry.key_of(u.client_id)
        if key is None:
            log.debug("order push for %r (not ours) ignored", u.client_id)
            return
        o = self.entry.lc.orders[key]
        s = self.insts[o.inst]
        o.venue_id = u.order_id
        try:
            state = state_of(u, s)
        except VenueProtocolError as e:
            log.warning("order push for %s skipped: %s", u.client_id, e)
            return
        shows = 0
        if REQ_SUBMIT in o.pending:
            shows = REQ_SUBMIT  # any push shows the venue has the order
        elif REQ_MODIFY in o.pending and (state.price_tick, state.qty) == (
            o.modify_to[0] if o.order_type == LIMIT else None, o.modify_to[1]):  # fmt: skip
            shows = REQ_MODIFY  # §2.5: an amend shows in price/qty (and updatedTime)
        self.entry.on_event(u.client_id, state, None, shows, post_only_refusal(u))
        ev = self._pushed.get(key)
        if ev is not None:
            ev.set()
        if o.final:
            self._pushed.pop(key, None)

    def on_execution(self, e: Execution) -> None:
        if e.exec_type != "Trade":
            return  # funding, ADL, ... are not fills of our orders' requests
        key = self.entry.key_of(e.client_id)
        if key is None:
            log.debug("execution for %r (not ours) ignored", e.client_id)
            return
        o = self.entry.lc.orders[key]
        if e.exec_id in o.trade_ids:
            return  # a push seen twice: its fill counted once, its state nothing new
        s = self.insts[o.inst]
        # the order as this fill leaves it (its order push follows, or was lost)
        leaves = max(o.qty - o.filled_qty - e.qty, 0.0)
        status = FILLED if leaves <= 1e-12 else PARTIALLY_FILLED
        px = o.price_tick if o.order_type == LIMIT else None
        state = VenueState(status, o.qty, o.qty - leaves, px, e.ts_ns)
        self.entry.on_event(e.client_id, state, fill_of(e, s))

    def on_position(self, p: Position) -> None:
        s = self.by_symbol.get(p.symbol)
        if s is not None:
            self._set_leg(s.idx, p.position_idx, p.signed_size)

    def _set_leg(self, inst: int, idx: int, size: float) -> None:
        self._legs[(inst, idx)] = size
        self.positions[inst] = sum(v for (i, _), v in self._legs.items() if i == inst)

    async def _one_way_positions(self, s, why: str = "") -> list[Position]:
        """GET /v5/position/list for `s`: its legs. Hedge-mode legs (positionIdx 1/2):
        HedgeModeError. The mode was checked at start; a switch since (possible with
        nothing open) makes every order get 10001 "position idx not match position mode"."""
        r = await self.rest.request("GET", "/v5/position/list",
                                    {"category": CATEGORY, "symbol": s.symbol},
                                    signed=True)  # fmt: skip
        if r.env is None or not r.env.ok:
            raise VenueProtocolError(f"GET /v5/position/list: HTTP {r.status} "
                                     f"{str(r.raw)[:200]!r}")  # fmt: skip
        ours = [p for p in parse_position_list(r.env.result) if p.symbol == s.symbol]
        if hedge_legs_in(ours):
            raise HedgeModeError("Bybit linear", f"{why}GET /v5/position/list shows "
                                 f"hedge-mode legs, positionIdx 1 and 2, for {s.symbol}",
                                 SWITCH_TO_ONE_WAY, running=True)  # fmt: skip
        return ours

    async def check_position_mode(self) -> None:
        """After a 10001 refusal: each symbol's mode read again (its legs are left to the
        private stream). Hedge mode stops the connector with HedgeModeError, as at start;
        a read that fails is logged, and the next 10001 asks again."""
        try:
            for s in self.insts:
                await self._one_way_positions(s, "orders are refused with 10001 and ")
        except (RequestFailed, VenueProtocolError) as e:
            log.warning("an order was refused with 10001; the position mode could not be "
                        "read: %s", e)  # fmt: skip

    async def fetch_positions(self) -> None:
        for s in self.insts:
            ours = await self._one_way_positions(s)
            for p in ours:
                self._set_leg(s.idx, p.position_idx, p.signed_size)
            log.info("%s: account position %g (/v5/position/list)", s.symbol,
                     self.positions.get(s.idx, 0.0))  # fmt: skip

    async def reconcile(self) -> None:
        """After the private stream (re)connects: orders, missed fills, then positions."""
        await self.entry.reconcile()
        await self.fetch_positions()
