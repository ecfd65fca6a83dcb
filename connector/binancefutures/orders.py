"""Order entry on Binance USD-M futures: the wire side of the venue-neutral lifecycle
(connector.lifecycle decides; connector.order_entry runs it; this module speaks Binance).

* Requests go over REST (`/fapi/v1/order`) or the WebSocket API (`order.place` etc.,
  §1.7), with the same params and the same result bodies; with `order_entry = "ws"`, a
  cancel goes over REST while the WebSocket API is down, and new orders and modifies are
  refused then (NOT_READY).
* newClientOrderId = prefix + run tag (base 36 of the start time in ms) + "-" + base 36 of
  the connector's key: unique across restarts by construction (§1.6: at most 36 chars of
  `^[.A-Z:/a-z0-9_-]{1,36}$`).
* `newOrderRespType = RESULT`: IOC/FOK/MARKET replies carry their outcome.
* Replies, queries (`GET /fapi/v1/order`), open orders (`GET /fapi/v1/openOrders`, one
  call per symbol, weight 1) and fills (`GET /fapi/v1/userTrades`: its `id` is the
  stream's `t`, so nothing is counted twice) become `VenueState`/`Fill`/`Refusal`;
  ORDER_TRADE_UPDATE (§1.5) becomes a stream event: x=NEW shows a submit's effect,
  x=AMENDMENT a modify's, x=TRADE/CALCULATED carries a fill (`l`, `L`, `m`, `n`, `t`).
* A 503 or a body that is not JSON leaves the outcome unknown (§1.8: "Unknown error" may
  have executed): resolved by a query, never resent.
* A -1021 (timestamp outside recvWindow) makes the REST client re-measure the clock.
* Rate limits (`ratelimit.RateLimits`): during a 429/418 Retry-After nothing is sent
  (PAUSED); new orders are refused locally (THROTTLED) before the order counts reach the
  venue's limits, counted the moment they are admitted.
* Positions come from positionRisk and ACCOUNT_UPDATE, one-way (positionSide BOTH): a
  hedge-mode account is refused before the connector starts (client.check_account), and a
  reconcile that finds LONG/SHORT legs, or a -4061 refusal after which the venue's
  housekeeping reads the mode as hedge (the mode was switched since), stops the connector
  with the same HedgeModeError rather than trade on it.
"""

from __future__ import annotations

import logging

from connector import codes
from connector.binancefutures.mapping import reject_reason
from connector.binancefutures.protocol import (
    ORDER_TYPE_NAMES,
    SIDE_NAMES,
    SWITCH_TO_ONE_WAY,
    TIF_NAMES,
    AccountTrade,
    AccountUpdate,
    ErrorReply,
    OrderResponse,
    OrderTradeUpdate,
    is_fill,
    order_status,
    parse_order_response,
    parse_position_risk,
    parse_user_trades,
)
from connector.binancefutures.rest import Reply, RequestFailed, RestClient
from connector.errors import HedgeModeError, VenueProtocolError
from connector.lifecycle import Fill, Order, Refusal, VenueState
from connector.order_entry import OrderEntry, base36, client_id_prefix
from hftlive.constants import LIMIT
from hftlive.layout import REQ_CANCEL, REQ_MODIFY, REQ_SUBMIT

log = logging.getLogger(__name__)

OUTSIDE_RECV_WINDOW = -1021
# "Order's position side does not match user's setting": an order without positionSide
# LONG/SHORT on a hedge-mode account (Binance's error codes, -4061)
POSITION_SIDE_MISMATCH = -4061
# request weight of each order request, REST and WS-API alike (§1.6, §1.7); place and
# modify count against the ORDERS limits instead
_WEIGHT = {REQ_SUBMIT: 0, REQ_MODIFY: 0, REQ_CANCEL: 1}


class RestOrders:
    """Order requests as REST calls on /fapi/v1/order."""

    name = "REST"
    _METHODS = {REQ_SUBMIT: "POST", REQ_MODIFY: "PUT", REQ_CANCEL: "DELETE"}

    def __init__(self, rest: RestClient):
        self.rest = rest
        self.connected = True  # a connection is made per need (kept alive by the pool)

    async def send(self, req: int, params: dict) -> Reply:
        return await self.rest.request(self._METHODS[req], "/fapi/v1/order", params,
                                       signed=True, weight=_WEIGHT[req], order=True)  # fmt: skip


class WsOrders:
    """Order requests as WebSocket API methods (§1.7): same params, same result bodies."""

    name = "WebSocket API"
    _METHODS = {REQ_SUBMIT: "order.place", REQ_MODIFY: "order.modify", REQ_CANCEL: "order.cancel"}

    def __init__(self, ws):
        self.ws = ws

    @property
    def connected(self) -> bool:
        return self.ws.connected

    async def send(self, req: int, params: dict) -> Reply:
        return await self.ws.request(self._METHODS[req], params, weight=_WEIGHT[req])


# §1.8: 5xx answers that are definite failures (nothing was executed), unlike 503
# "Unknown error, please check your request or try again later." whose outcome is unknown
_FAILED_CODES = (-1001, -1008)  # DISCONNECTED (internal error), throttled by the system
_FAILED_MSGS = ("Service Unavailable", "Internal error; unable to process your request")


def definite_failure(r: Reply) -> Refusal | None:
    """A 5xx reply that says nothing was executed, as a Refusal; None if the outcome is
    unknown (or the body says nothing)."""
    body = r.body if isinstance(r.body, dict) else (r.body or {})
    if isinstance(body, dict) and "error" in body:  # a WS-API envelope
        body = body["error"] if isinstance(body["error"], dict) else {}
    code, msg = body.get("code"), body.get("msg")
    if not isinstance(msg, str):
        return None
    if code in _FAILED_CODES or msg.startswith(_FAILED_MSGS):
        return refusal(code if isinstance(code, int) else -1000, msg)
    return None


# ---------------------------------------------------------------------------- mapping
def refusal(code: int, msg: str) -> Refusal:
    """A Binance (or connector) refusal code with its neutral reason."""
    return Refusal(code, msg, codes.REASONS.get(code) or reject_reason(code))


def state_of(resp: OrderResponse, s) -> VenueState:
    """An order body (reply, query, open orders) as the lifecycle's VenueState."""
    px = s.tick_of(resp.price) if resp.order_type == "LIMIT" else None
    return VenueState(order_status(resp.status), resp.orig_qty, resp.executed_qty, px,
                      resp.update_time_ns)  # fmt: skip


def event_of(m: OrderTradeUpdate, s) -> tuple[VenueState, Fill | None, int]:
    """ORDER_TRADE_UPDATE as (state, fill or None, the request whose effect it shows)."""
    fill = None
    if is_fill(m.exec_type) and m.last_fill_qty > 0:
        # `n` is in the commission asset `N`; USDT-margined symbols charge USDT unless
        # BNB fee discount is on (then this is BNB, not converted here)
        fill = Fill(m.trade_id, m.last_fill_qty, s.tick_of(m.last_fill_px), m.maker,
                    m.commission or 0.0, m.transact_ts_ns)  # fmt: skip
    px = s.tick_of(m.price) if m.order_type == "LIMIT" else None
    state = VenueState(order_status(m.status), m.orig_qty, m.cum_qty, px, m.transact_ts_ns)
    return state, fill, {"NEW": REQ_SUBMIT, "AMENDMENT": REQ_MODIFY}.get(m.exec_type, 0)


def fills_of(trades: list[AccountTrade], s, order_id: int) -> list[Fill]:
    """GET userTrades entries of one order as Fills (`id` is the stream's `t`)."""
    # userTrades `commission` is in `commissionAsset`, as the stream's `n`; the sign of
    # a rebate there is UNCONFIRMED (the docs' example shows a negative commission)
    return [Fill(t.trade_id, t.qty, s.tick_of(t.px), t.maker, t.commission, t.time_ns)
            for t in trades if t.order_id == order_id]  # fmt: skip


class BinanceOrders:
    """`VenueOrderApi` for Binance, and the user stream's order and account events.

    `entry` (connector.order_entry.OrderEntry) runs the lifecycle over it.
    """

    fills_source = "userTrades"

    def __init__(self, prefix: str, run_tag_ms: int, insts, core, rest: RestClient,
                 transport=None):  # fmt: skip
        self.prefix = client_id_prefix(prefix, run_tag_ms)
        self.insts = insts
        self.by_symbol = {s.symbol: s for s in insts}
        self.rest = rest
        self.rest_orders = RestOrders(rest)
        self.transport = transport or self.rest_orders
        self.user_ready = False  # the user data stream is connected (set by UserStream)
        # a -4061 came back: the account may have been switched to hedge mode while we ran
        # (the venue's housekeeping reads the mode, and stops the connector if so)
        self.mode_suspect = False
        self.entry = OrderEntry(core, self)
        self._legs: dict[tuple[int, str], float] = {}  # (inst, positionSide) -> amount
        self.positions: dict[int, float] = {}  # inst -> the account's position (venue's)

    # ------------------------------------------------------------------ VenueOrderApi
    def client_id(self, key: int) -> str:
        return f"{self.prefix}{base36(key)}"

    def _via(self, req: int):
        # a cancel must get through: over REST while the WebSocket API is down
        if req == REQ_CANCEL and not self.transport.connected:
            return self.rest_orders
        return self.transport

    def admit(self, o: Order, req: int) -> Refusal | None:
        via = self._via(req)
        if not self.user_ready:
            # fills of an order sent now could be missed
            return refusal(codes.NOT_READY, "the user data stream is not connected")
        if not via.connected:
            return refusal(codes.NOT_READY, f"the {via.name} is not connected")
        new_order = req != REQ_CANCEL
        why = self.rest.limits.order_refusal(self.rest.now_ms(), new_order)
        if why:
            return refusal(codes.PAUSED if self.rest.blocked_for() > 0 else codes.THROTTLED, why)
        if new_order:
            # counted now, not when the task sends it: a burst is checked order by order
            self.rest.limits.sent(self.rest.now_ms(), 0, new_order=True)
        return None

    async def send(self, o: Order, req: int) -> VenueState | Refusal:
        s = self.insts[o.inst]
        if req == REQ_SUBMIT:
            p = {"symbol": s.upper, "side": SIDE_NAMES[o.side],
                 "type": ORDER_TYPE_NAMES[o.order_type]}  # fmt: skip
            if o.order_type == LIMIT:
                p["timeInForce"] = TIF_NAMES[o.tif]
                p["price"] = s.px_text(o.price_tick)
            p["quantity"] = s.qty_text(o.qty)
            if o.reduce_only:
                p["reduceOnly"] = "true"  # §1.6: only reduces the position (flatten)
            p["newClientOrderId"] = o.client_id
            p["newOrderRespType"] = "RESULT"
        elif req == REQ_CANCEL:
            p = {"symbol": s.upper, "origClientOrderId": o.client_id}
        else:
            px_tick, qty = o.modify_to
            p = {"symbol": s.upper, "origClientOrderId": o.client_id, "side": SIDE_NAMES[o.side],
                 "quantity": s.qty_text(qty), "price": s.px_text(px_tick)}  # fmt: skip
        r = await self._via(req).send(req, p)
        if r.status >= 500 or r.body is None:
            failed = definite_failure(r)
            if failed is not None:
                return failed
            # 503 "Unknown error": the execution status is unknown (§1.8)
            raise RequestFailed(f"HTTP {r.status} {r.raw[:120]!r}", sent=True)
        return self._result(o, r)

    async def query(self, o: Order) -> VenueState | Refusal:
        p = {"symbol": self.insts[o.inst].upper, "origClientOrderId": o.client_id}
        r = await self.rest.request("GET", "/fapi/v1/order", p, signed=True)
        if r.status >= 500 or r.body is None:
            raise RequestFailed(f"HTTP {r.status} {r.raw[:120]!r}", sent=True)
        return self._result(o, r)

    async def fills(self, o: Order) -> list[Fill]:
        s = self.insts[o.inst]
        # userTrades takes orderId, not the client id: ask the order first if need be
        order_id = o.venue_id or await self._order_id(o)
        r = await self.rest.request("GET", "/fapi/v1/userTrades",
                                    {"symbol": s.upper, "orderId": order_id}, signed=True,
                                    weight=5)  # fmt: skip
        if r.status != 200:
            raise VenueProtocolError(f"GET userTrades: HTTP {r.status} {r.raw[:200]!r}")
        return fills_of(parse_user_trades(r.raw), s, order_id)

    async def _order_id(self, o: Order) -> int:
        """The venue's id of `o`, asked with the same GET /fapi/v1/order as a query."""
        if isinstance(await self.query(o), Refusal) or not o.venue_id:
            raise VenueProtocolError(f"order {o.client_id}: the venue gives no order id")
        return o.venue_id

    async def open_orders(self) -> dict[str, VenueState]:
        out: dict[str, VenueState] = {}
        for s in self.insts:
            r = await self.rest.request("GET", "/fapi/v1/openOrders", {"symbol": s.upper},
                                        signed=True)  # fmt: skip
            if r.status != 200 or not isinstance(r.body, list):
                raise VenueProtocolError(f"GET openOrders: HTTP {r.status} {r.raw[:200]!r}")
            for m in r.body:
                resp = parse_order_response(m if isinstance(m, dict) else {})
                s = self.by_symbol.get(resp.symbol) if isinstance(resp, OrderResponse) else None
                if s is not None:
                    out[resp.client_order_id] = state_of(resp, s)
        return out

    # ------------------------------------------------------------------ parsing
    @staticmethod
    def _parse(r: Reply) -> OrderResponse | ErrorReply:
        try:
            return parse_order_response(r.body if isinstance(r.body, dict) else r.raw)
        except VenueProtocolError as e:
            raise VenueProtocolError(f"unreadable order reply (HTTP {r.status}): {e}") from None

    def _result(self, o: Order, r: Reply) -> VenueState | Refusal:
        resp = self._parse(r)
        if isinstance(resp, ErrorReply):
            if resp.code == OUTSIDE_RECV_WINDOW:
                # our clock and the venue's drifted apart faster than the periodic re-measure
                self.rest.clock.remeasure_soon(f"order {o.client_id}: -1021")
            elif resp.code == POSITION_SIDE_MISMATCH:
                self.mode_suspect = True
            return refusal(resp.code, resp.msg)
        o.venue_id = resp.order_id
        return state_of(resp, self.insts[o.inst])

    # ------------------------------------------------------------------ user stream
    def on_trade_update(self, m: OrderTradeUpdate) -> None:
        """ORDER_TRADE_UPDATE from the user data stream."""
        key = self.entry.key_of(m.client_order_id)
        if key is None:
            log.debug("ORDER_TRADE_UPDATE for %s (not ours) ignored", m.client_order_id)
            return
        o = self.entry.lc.orders[key]
        o.venue_id = m.order_id
        state, fill, shows = event_of(m, self.insts[o.inst])
        self.entry.on_event(m.client_order_id, state, fill, shows)

    def on_account_update(self, m: AccountUpdate) -> None:
        """ACCOUNT_UPDATE: the positions it lists (changed ones only, §1.5)."""
        for p in m.positions:
            s = self.by_symbol.get(p.symbol)
            if s is not None:
                self._set_leg(s.idx, p.position_side or "BOTH", p.position_amt)

    def _set_leg(self, inst: int, side: str, amt: float) -> None:
        self._legs[(inst, side)] = amt
        # one-way: the BOTH leg is the position (hedge mode is refused, so a LONG/SHORT
        # leg could only come from a switch since the last reconcile: summed until then)
        self.positions[inst] = sum(v for (i, _), v in self._legs.items() if i == inst)

    async def fetch_positions(self) -> None:
        """GET /fapi/v2/positionRisk: the account's position per instrument."""
        r = await self.rest.request("GET", "/fapi/v2/positionRisk", {}, signed=True, weight=5)
        if r.status != 200:
            raise VenueProtocolError(f"GET positionRisk: HTTP {r.status} {r.raw[:200]!r}")
        risks = [p for p in parse_position_risk(r.raw) if p.symbol in self.by_symbol]
        # in hedge mode positionRisk lists a LONG and a SHORT entry per symbol, one-way
        # mode one BOTH entry (§1.6); the mode was checked at start, but may have been
        # switched since (possible with nothing open): every order would now get -4061
        hedged = sorted({p.symbol for p in risks if p.position_side != "BOTH"})
        if hedged:
            raise HedgeModeError("Binance USD-M futures", "GET /fapi/v2/positionRisk lists "
                                 f"LONG/SHORT legs for {', '.join(hedged)}",
                                 SWITCH_TO_ONE_WAY, running=True)  # fmt: skip
        for p in risks:
            self._set_leg(self.by_symbol[p.symbol].idx, p.position_side, p.position_amt)
        for s in self.insts:
            log.info("%s: account position %g (positionRisk)", s.symbol,
                     self.positions.get(s.idx, 0.0))  # fmt: skip

    async def reconcile(self) -> None:
        """After the user stream (re)connects: orders, missed fills, then positions."""
        await self.entry.reconcile()
        await self.fetch_positions()
