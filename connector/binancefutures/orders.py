"""Order entry on Binance USD-M futures, over REST or the WebSocket API, and what the venue
says back as OrderReports (venue_protocols.md §1.5-§1.8).

Rules:

* Each request is sent once. No reply (a timeout, a dropped connection after sending)
  leaves the order in flight; a GET /fapi/v1/order then asks what became of it (again
  every 5 s while that fails: `settle_unknown`). Nothing is ever resent. A request that
  could not be sent (no connection, a Retry-After running) is refused at once.
* newClientOrderId = prefix + run tag (base 36 of the start time in ms) + "-" + base 36 of
  the connector's key: unique across restarts by construction, and mapped back to the key.
* A refused new order ends EXPIRED with the venue's code (-5022 GTX reject included); a
  refused cancel or modify leaves the order as it was and only concludes the request.
* Fills come from ORDER_TRADE_UPDATE (x=TRADE/CALCULATED: `l`, `L`, `m`, `n`), once per
  trade id. A REST reply (or query) that shows more executed quantity than the fills seen
  so far does not move the order to its new state: the stream, which sends fills before
  the final status, will; otherwise the router, which ignores reports after a final
  status, would lose those fills. Older states never overwrite newer ones (updateTime/T).
* Reconciliation (after the user stream connects or reconnects): the orders still open
  come from GET openOrders, the others are queried; when the venue shows fills we have
  not seen (there, or in any query), they are read from GET /fapi/v1/userTrades (the
  trade `id` is the stream's `t`, so nothing is counted twice) before the order's state
  is applied; positions come from positionRisk and ACCOUNT_UPDATE.
* A -1021 (timestamp outside recvWindow) makes the REST client re-measure the clock.
* A request concludes once, at whichever comes first: its reply, or the stream event
  that shows its effect (NEW for a submit, AMENDMENT for a modify, any final status for
  every request pending on the order). The bot's `wait=True` ends there, as in the
  backtester; the later one only updates the state.
* Reports that change nothing (the REST reply and the stream event of the same NEW) are
  not sent.
* With `order_entry = "ws"`, a cancel goes over REST while the WebSocket API is down;
  new orders and modifies are refused then (NOT_READY).
* Rate limits (`ratelimit.RateLimits`): during a 429/418 Retry-After nothing is sent; new
  orders are refused locally before the order counts reach the venue's limits.

Local codes (the venue's are negative four-digit numbers): NOT_READY (-9101) the user data
stream (or the WebSocket API) is not connected, so the order could not be sent or its fills
could be missed; PAUSED (-9102) the venue asked to back off; NOT_SENT (-9103) the
connection to the venue failed; THROTTLED (-9104) near the venue's order rate limit.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from connector.binancefutures.protocol import (
    ORDER_TYPE_NAMES,
    SIDE_NAMES,
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
from connector.errors import VenueProtocolError
from connector.venue import OrderReport
from hftlive.constants import (
    CANCELED,
    ERR_CONNECTION,
    EXPIRED,
    FILLED,
    LIMIT,
    NEW,
    NONE,
    PARTIALLY_FILLED,
)
from hftlive.layout import REQ_CANCEL, REQ_MODIFY, REQ_SUBMIT

log = logging.getLogger(__name__)

NOT_READY = -9101
PAUSED = -9102
NOT_SENT = -9103
THROTTLED = -9104
NO_SUCH_ORDER = -2013
OUTSIDE_RECV_WINDOW = -1021
EPS = 1e-12
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_FINAL = (FILLED, CANCELED, EXPIRED)
_REQ_NAMES = {REQ_SUBMIT: "submit", REQ_CANCEL: "cancel", REQ_MODIFY: "modify", 0: "query"}


def base36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if n == 0:
            return out


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


@dataclass
class LiveOrder:
    """What we know of one order; every report is built from it."""

    key: int
    inst: int
    side: int
    order_type: int
    client_id: str
    qty: float
    price_tick: int
    status: int = NONE
    leaves_qty: float = 0.0
    filled_qty: float = 0.0  # sum of the fills reported
    last_ts_ns: int = 0
    in_flight: int = 0  # requests sent and not answered
    pending: list[int] = field(default_factory=list)  # requests sent and not concluded
    unsettled_at: float = 0.0  # time.monotonic() a request's outcome became unknown, 0: none
    trade_ids: set[int] = field(default_factory=set)

    def state(self) -> tuple:
        return (self.status, self.qty, self.leaves_qty, self.price_tick)


class OrderEntry:
    """Order requests through `transport` (RestOrders or WsOrders); queries and fill
    recovery over `rest`. `tg` (a TaskGroup) is set once the venue runs."""

    def __init__(self, prefix: str, insts, router, rest: RestClient, transport=None):
        self.prefix = prefix + base36(time.time_ns() // 1_000_000) + "-"
        self.insts = insts
        self.by_symbol = {s.symbol: s for s in insts}
        self.router = router
        self.rest = rest
        self.rest_orders = RestOrders(rest)
        self.transport = transport or self.rest_orders
        self.tg = None
        self.live: dict[int, LiveOrder] = {}
        self.by_cid: dict[str, int] = {}
        self._legs: dict[tuple[int, str], float] = {}  # (inst, positionSide) -> amount
        self.positions: dict[int, float] = {}  # inst -> the account's position (venue's)

    # ------------------------------------------------------------------ requests
    def submit(self, key, inst, side, price_tick, qty, tif, order_type, user_ready=True) -> None:
        s = self.insts[inst]
        cid = f"{self.prefix}{base36(key)}"
        o = LiveOrder(key, inst, side, order_type, cid, qty, price_tick, leaves_qty=qty)
        self.live[key] = o
        self.by_cid[cid] = key
        refused = self._refusal(user_ready, True)
        if refused:
            self._reject_new(o, *refused)
            return
        p = {"symbol": s.upper, "side": SIDE_NAMES[side], "type": ORDER_TYPE_NAMES[order_type]}
        if order_type == LIMIT:
            p["timeInForce"] = TIF_NAMES[tif]
            p["price"] = s.px_text(price_tick)
        p["quantity"] = s.qty_text(qty)
        p["newClientOrderId"] = cid
        p["newOrderRespType"] = "RESULT"  # IOC/FOK/MARKET replies carry their outcome
        self._start(o, REQ_SUBMIT, p)

    def cancel(self, key, inst) -> None:
        o = self.live.get(key)
        if o is None:
            return
        # a cancel must get through: over REST while the WebSocket API is down
        via = self.transport if self.transport.connected else self.rest_orders
        refused = self._refusal(True, False, via)
        if refused:
            self._reject_existing(o, REQ_CANCEL, *refused)
            return
        self._start(o, REQ_CANCEL, {"symbol": self.insts[inst].upper,
                                    "origClientOrderId": o.client_id}, via)  # fmt: skip

    def modify(self, key, inst, price_tick, qty) -> None:
        o = self.live.get(key)
        if o is None:
            return
        refused = self._refusal(True, True)
        if refused:
            self._reject_existing(o, REQ_MODIFY, *refused)
            return
        s = self.insts[inst]
        p = {"symbol": s.upper, "origClientOrderId": o.client_id, "side": SIDE_NAMES[o.side],
             "quantity": s.qty_text(qty), "price": s.px_text(price_tick)}  # fmt: skip
        self._start(o, REQ_MODIFY, p)

    def _refusal(self, user_ready: bool, new_order: bool, via=None) -> tuple[int, str] | None:
        via = via or self.transport
        if self.tg is None or not user_ready:
            return NOT_READY, "the user data stream is not connected yet"
        if not via.connected:
            return NOT_READY, f"the {via.name} is not connected"
        why = self.rest.limits.order_refusal(self.rest.now_ms(), new_order)
        if why:
            return (PAUSED if self.rest.blocked_for() > 0 else THROTTLED), why
        return None

    def _start(self, o: LiveOrder, req: int, params: dict, via=None) -> None:
        o.in_flight += 1
        o.pending.append(req)
        if req != REQ_CANCEL:
            # counted now, not when the task sends it: a burst is checked order by order
            self.rest.limits.sent(self.rest.now_ms(), 0, new_order=True)
        self.tg.create_task(self._send(o, req, params, via or self.transport))

    async def _send(self, o: LiveOrder, req: int, params: dict, via) -> None:
        try:
            r = await via.send(req, params)
        except RequestFailed as e:
            o.in_flight -= 1
            if not e.sent:
                self._refused(o, req, NOT_SENT, str(e))
                return
            log.warning("order %s: %s; outcome unknown, asking the venue", o.client_id, e)
            self.router.broadcast_error(ERR_CONNECTION, 0, f"order request: {e}",
                                        o.inst)  # fmt: skip
            await self._query(o, req)
            return
        o.in_flight -= 1
        if r.status >= 500 or r.body is None:
            # 503 "Unknown error": the execution status is unknown (§1.8)
            log.warning(
                "order %s: HTTP %d; outcome unknown, asking the venue", o.client_id, r.status
            )
            await self._query(o, req)
            return
        self._on_reply(o, r, req)

    async def _query(self, o: LiveOrder, req: int) -> None:
        """One GET /fapi/v1/order to settle a request whose reply never came (req) or to
        reconcile an order after the user stream was down (req 0)."""
        p = {"symbol": self.insts[o.inst].upper, "origClientOrderId": o.client_id}
        try:
            r = await self.rest.request("GET", "/fapi/v1/order", p, signed=True)
        except RequestFailed as e:
            if req:
                o.unsettled_at = o.unsettled_at or time.monotonic()
            log.error("order %s: the status query failed too (%s); left in flight, asked "
                      "again later", o.client_id, e)  # fmt: skip
            return
        o.unsettled_at = 0.0
        resp = self._parse(r)
        if isinstance(resp, ErrorReply):
            if resp.code == NO_SUCH_ORDER and (req == REQ_SUBMIT or o.status == NONE
                                               and not o.in_flight):  # fmt: skip
                self._refused(o, REQ_SUBMIT, resp.code, resp.msg)  # it never reached the book
            else:
                log.error("order %s: status query refused: %d %s", o.client_id, resp.code, resp.msg)
            return
        if resp is not None:
            await self._settle(o, resp, req)

    async def _settle(self, o: LiveOrder, resp: OrderResponse, req: int) -> None:
        """Applies what the venue says of `o`, after reading fills it shows and we lack."""
        if resp.executed_qty > o.filled_qty + EPS:
            await self._recover_fills(o, resp.order_id)
        self._apply_rest(o, resp, req)

    async def _recover_fills(self, o: LiveOrder, order_id: int) -> None:
        """Fills of `o` the venue has and the stream has not delivered (GET userTrades)."""
        p = {"symbol": self.insts[o.inst].upper, "orderId": order_id}
        try:
            r = await self.rest.request("GET", "/fapi/v1/userTrades", p, signed=True, weight=5)
            if r.status != 200:
                raise VenueProtocolError(f"HTTP {r.status} {r.raw[:200]!r}")
            trades = parse_user_trades(r.raw)
        except (RequestFailed, VenueProtocolError) as e:
            log.error("order %s: cannot read its trades (%s); fills may be missing until the "
                      "stream delivers them", o.client_id, e)  # fmt: skip
            return
        new = sorted((t for t in trades if t.trade_id not in o.trade_ids), key=lambda t: t.trade_id)
        for t in new:
            self._fill_from_trade(o, t)
        if new:
            log.warning("order %s: %d fill(s) missed by the user stream recovered from "
                        "userTrades", o.client_id, len(new))  # fmt: skip

    def _fill_from_trade(self, o: LiveOrder, t: AccountTrade) -> None:
        o.trade_ids.add(t.trade_id)
        o.filled_qty += t.qty
        o.leaves_qty = max(o.qty - o.filled_qty, 0.0)
        o.status = FILLED if o.leaves_qty <= EPS else PARTIALLY_FILLED
        o.last_ts_ns = max(o.last_ts_ns, t.time_ns)
        # userTrades `commission` is in `commissionAsset`, as the stream's `n`; the sign of
        # a rebate there is UNCONFIRMED (the docs' example shows a negative commission)
        self._report(o, exec_qty=t.qty, exec_price_tick=self.insts[o.inst].tick_of(t.px),
                     maker=t.maker, fee=t.commission)  # fmt: skip

    @staticmethod
    def _parse(r: Reply) -> OrderResponse | ErrorReply | None:
        try:
            return parse_order_response(r.body if isinstance(r.body, dict) else r.raw)
        except VenueProtocolError as e:
            log.error("unreadable order reply (HTTP %d): %s", r.status, e)
            return None

    def _on_reply(self, o: LiveOrder, r: Reply, req: int) -> None:
        resp = self._parse(r)
        if resp is None:
            return
        if isinstance(resp, ErrorReply):
            self._refused(o, req, resp.code, resp.msg)
        else:
            self._apply_rest(o, resp, req)

    def _refused(self, o: LiveOrder, req: int, code: int, msg: str) -> None:
        """The venue (or the way to it) refused a request that was sent or tried."""
        log.info("order %s: %s refused: %d %s", o.client_id, _REQ_NAMES[req], code, msg)
        if code == OUTSIDE_RECV_WINDOW and self.tg is not None:
            # our clock and the venue's drifted apart faster than the periodic re-measure
            self.tg.create_task(self.rest.resync_clock(f"order {o.client_id}: -1021"))
        done = self._conclude(o, req)
        if req == REQ_SUBMIT:
            self._reject_new(o, code, msg, done)
        else:
            self._reject_existing(o, done, code, msg)

    @staticmethod
    def _conclude(o: LiveOrder, req: int) -> int:
        """`req` if it was still pending on `o` (now concluded), else 0."""
        if req in o.pending:
            o.pending.remove(req)
            return req
        return 0

    # ------------------------------------------------------------------ reports
    def _reject_new(self, o: LiveOrder, code: int, msg: str, completes: int = REQ_SUBMIT) -> None:
        # a refused new order ends EXPIRED, as hftbacktest's backtester does
        o.status, o.leaves_qty = EXPIRED, 0.0
        self._report(o, completes, reject_code=code, reject_msg=msg)

    def _reject_existing(self, o: LiveOrder, req: int, code: int, msg: str) -> None:
        self._report(o, req, reject_code=code, reject_msg=msg)

    def _report(self, o: LiveOrder, completes: int = 0, **kw) -> None:
        self.router.on_report(
            OrderReport(
                key=o.key, status=o.status, qty=o.qty, leaves_qty=o.leaves_qty,
                price_tick=o.price_tick, exch_ts=o.last_ts_ns or time.time_ns(),
                completes=completes, **kw,
            )
        )  # fmt: skip
        self.router.flush()

    def _apply_rest(self, o: LiveOrder, resp: OrderResponse, req: int) -> None:
        """An order body (reply or query): apply it unless it is older or ahead of our fills."""
        s = self.insts[o.inst]
        before = o.state()
        if resp.update_time_ns >= o.last_ts_ns and resp.executed_qty <= o.filled_qty + EPS:
            o.status = order_status(resp.status)
            o.qty = resp.orig_qty
            if resp.order_type == "LIMIT":
                o.price_tick = s.tick_of(resp.price)
            o.leaves_qty = max(resp.orig_qty - resp.executed_qty, 0.0)
            o.last_ts_ns = resp.update_time_ns
        elif o.status == NONE:
            # accepted, with fills the user stream has not delivered yet: they follow
            o.status = NEW
        done = self._conclude(o, req)
        if done or o.state() != before:
            self._report(o, done)

    def on_trade_update(self, m: OrderTradeUpdate) -> None:
        """ORDER_TRADE_UPDATE from the user data stream."""
        key = self.by_cid.get(m.client_order_id)
        if key is None:
            log.debug("ORDER_TRADE_UPDATE for %s (not ours) ignored", m.client_order_id)
            return
        o = self.live[key]
        fill = {}
        if is_fill(m.exec_type) and m.last_fill_qty > 0 and m.trade_id not in o.trade_ids:
            o.trade_ids.add(m.trade_id)
            o.filled_qty += m.last_fill_qty
            # `n` is in the commission asset `N`; USDT-margined symbols charge USDT unless
            # BNB fee discount is on (then this is BNB, not converted here)
            fill = {"exec_qty": m.last_fill_qty, "exec_price_tick": self.insts[o.inst].tick_of(
                m.last_fill_px), "maker": m.maker, "fee": m.commission or 0.0}  # fmt: skip
        before = o.state()
        if m.transact_ts_ns >= o.last_ts_ns or fill:
            o.status = order_status(m.status)
            o.qty = m.orig_qty
            if m.order_type == "LIMIT":
                o.price_tick = self.insts[o.inst].tick_of(m.price)
            o.leaves_qty = max(m.orig_qty - m.cum_qty, 0.0)
            o.last_ts_ns = max(o.last_ts_ns, m.transact_ts_ns)
        done = 0
        if o.status in _FINAL and o.pending:
            done = o.pending[0]  # the order ended: every request on it has concluded
            o.pending.clear()
        elif m.exec_type == "NEW":
            done = self._conclude(o, REQ_SUBMIT)
        elif m.exec_type == "AMENDMENT":
            done = self._conclude(o, REQ_MODIFY)
        if fill or done or o.state() != before:
            self._report(o, done, **fill)

    # ------------------------------------------------------------------ account
    def on_account_update(self, m: AccountUpdate) -> None:
        """ACCOUNT_UPDATE: the positions it lists (changed ones only, §1.5)."""
        for p in m.positions:
            s = self.by_symbol.get(p.symbol)
            if s is not None:
                self._set_leg(s.idx, p.position_side or "BOTH", p.position_amt)

    def _set_leg(self, inst: int, side: str, amt: float) -> None:
        self._legs[(inst, side)] = amt
        # hedge mode: LONG and SHORT legs (SHORT's amount is negative) net to the position
        self.positions[inst] = sum(v for (i, _), v in self._legs.items() if i == inst)

    async def fetch_positions(self) -> None:
        """GET /fapi/v2/positionRisk: the account's position per instrument."""
        r = await self.rest.request("GET", "/fapi/v2/positionRisk", {}, signed=True, weight=5)
        if r.status != 200:
            raise VenueProtocolError(f"GET positionRisk: HTTP {r.status} {r.raw[:200]!r}")
        for p in parse_position_risk(r.raw):
            s = self.by_symbol.get(p.symbol)
            if s is not None:
                self._set_leg(s.idx, p.position_side, p.position_amt)
        for s in self.insts:
            log.info("%s: account position %g (positionRisk)", s.symbol,
                     self.positions.get(s.idx, 0.0))  # fmt: skip

    async def settle_unknown(self, after_s: float) -> None:
        """Asks again about requests whose outcome is still unknown after `after_s` (their
        reply and the first query both failed, and no stream event concluded them)."""
        now = time.monotonic()
        for o in list(self.live.values()):
            if o.unsettled_at and not o.pending:
                o.unsettled_at = 0.0  # the stream concluded it meanwhile
            elif o.unsettled_at and now - o.unsettled_at >= after_s and not o.in_flight:
                await self._query(o, o.pending[0])

    async def reconcile(self) -> None:
        """After the user stream (re)connects, every order not final is brought up to date
        (its events, fills included, may have been missed while the stream was down): one
        GET openOrders per symbol (weight 1) for those still open, a status query each for
        the others (they ended, or never reached the venue); then positions."""
        mine = [o for o in self.live.values() if o.status not in _FINAL]
        if not mine:
            await self.fetch_positions()
            return
        open_now: dict[str, OrderResponse] = {}
        for s in self.insts:
            r = await self.rest.request("GET", "/fapi/v1/openOrders", {"symbol": s.upper},
                                        signed=True)  # fmt: skip
            if r.status != 200 or not isinstance(r.body, list):
                raise VenueProtocolError(f"GET openOrders: HTTP {r.status} {r.raw[:200]!r}")
            for m in r.body:
                resp = parse_order_response(m if isinstance(m, dict) else {})
                if isinstance(resp, OrderResponse):
                    open_now[resp.client_order_id] = resp
        for o in mine:
            resp = open_now.get(o.client_id)
            if resp is None:
                await self._query(o, 0)
            else:
                await self._settle(o, resp, 0)
        await self.fetch_positions()
        log.info("reconciled %d order(s) (%d open at the venue) and positions", len(mine),
                 sum(o.client_id in open_now for o in mine))  # fmt: skip
