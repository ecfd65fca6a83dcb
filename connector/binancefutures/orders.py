"""Order entry on Binance USD-M futures over REST, and what the venue says back as
OrderReports (venue_protocols.md §1.5, §1.6, §1.8).

Rules:

* Each request is sent once. No reply (a timeout, a dropped connection after sending)
  leaves the order in flight; one GET /fapi/v1/order then asks what became of it. Nothing
  is ever resent. A connection that could not be opened sent nothing: refused at once.
* newClientOrderId = prefix + run tag (base 36 of the start time in ms) + "-" + base 36 of
  the connector's key: unique across restarts by construction, and mapped back to the key.
* A refused new order ends EXPIRED with the venue's code (-5022 GTX reject included); a
  refused cancel or modify leaves the order as it was and only concludes the request.
* Fills come only from ORDER_TRADE_UPDATE (x=TRADE/CALCULATED: `l`, `L`, `m`, `n`), once per
  trade id. A REST reply (or query) that shows more executed quantity than the fills seen
  so far does not move the order to its new state: the stream, which sends fills before
  the final status, will; otherwise the router, which ignores reports after a final
  status, would lose those fills. Older states never overwrite newer ones (updateTime/T).
* Reports that change nothing (the REST reply and the stream event of the same NEW) are
  not sent.
* While a 429/418 Retry-After runs, requests are refused locally instead of sent.

Local codes (the venue's are negative four-digit numbers): NOT_READY (-9101) the user data
stream is not connected yet, so fills could be missed; PAUSED (-9102) the venue asked us
to back off; NOT_SENT (-9103) the connection to the venue failed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from connector.binancefutures.protocol import (
    ORDER_TYPE_NAMES,
    SIDE_NAMES,
    TIF_NAMES,
    ErrorReply,
    OrderResponse,
    OrderTradeUpdate,
    is_fill,
    order_status,
    parse_order_response,
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
)
from hftlive.layout import REQ_CANCEL, REQ_MODIFY, REQ_SUBMIT

log = logging.getLogger(__name__)

NOT_READY = -9101
PAUSED = -9102
NOT_SENT = -9103
NO_SUCH_ORDER = -2013
EPS = 1e-12
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_FINAL = (FILLED, CANCELED, EXPIRED)


def base36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if n == 0:
            return out


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
    filled_qty: float = 0.0  # sum of the fills reported (stream)
    last_ts_ns: int = 0
    trade_ids: set[int] = field(default_factory=set)

    def state(self) -> tuple:
        return (self.status, self.qty, self.leaves_qty, self.price_tick)


class OrderEntry:
    """Order requests over REST; `tg` (a TaskGroup) is set once the venue runs."""

    def __init__(self, prefix: str, insts, router, rest: RestClient):
        self.prefix = prefix + base36(time.time_ns() // 1_000_000) + "-"
        self.insts = insts
        self.router = router
        self.rest = rest
        self.tg = None
        self.live: dict[int, LiveOrder] = {}
        self.by_cid: dict[str, int] = {}

    # ------------------------------------------------------------------ requests
    def submit(self, key, inst, side, price_tick, qty, tif, order_type, user_ready=True) -> None:
        s = self.insts[inst]
        cid = f"{self.prefix}{base36(key)}"
        o = LiveOrder(key, inst, side, order_type, cid, qty, price_tick, leaves_qty=qty)
        self.live[key] = o
        self.by_cid[cid] = key
        refused = self._refusal(user_ready)
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
        self.tg.create_task(self._send(o, "POST", p, REQ_SUBMIT))

    def cancel(self, key, inst) -> None:
        o = self.live.get(key)
        if o is None:
            return
        refused = self._refusal(True)
        if refused:
            self._reject_existing(o, REQ_CANCEL, *refused)
            return
        p = {"symbol": self.insts[inst].upper, "origClientOrderId": o.client_id}
        self.tg.create_task(self._send(o, "DELETE", p, REQ_CANCEL))

    def modify(self, key, inst, price_tick, qty) -> None:
        o = self.live.get(key)
        if o is None:
            return
        refused = self._refusal(True)
        if refused:
            self._reject_existing(o, REQ_MODIFY, *refused)
            return
        s = self.insts[inst]
        p = {"symbol": s.upper, "origClientOrderId": o.client_id, "side": SIDE_NAMES[o.side],
             "quantity": s.qty_text(qty), "price": s.px_text(price_tick)}  # fmt: skip
        self.tg.create_task(self._send(o, "PUT", p, REQ_MODIFY))

    def _refusal(self, user_ready: bool) -> tuple[int, str] | None:
        if self.tg is None or not user_ready:
            return NOT_READY, "the user data stream is not connected yet"
        wait = self.rest.blocked_for()
        if wait > 0:
            return PAUSED, f"the venue asked to back off; {wait:.0f} s left"
        return None

    async def _send(self, o: LiveOrder, method: str, params: dict, req: int) -> None:
        try:
            r = await self.rest.request(method, "/fapi/v1/order", params, signed=True)
        except RequestFailed as e:
            if not e.sent:
                self._refused(o, req, NOT_SENT, str(e))
                return
            log.warning("order %s: %s; outcome unknown, asking the venue", o.client_id, e)
            self.router.broadcast_error(ERR_CONNECTION, 0, f"order request: {e}",
                                        o.inst)  # fmt: skip
            await self._query(o, req)
            return
        if r.status >= 500 or r.body is None:
            # 503 "Unknown error": the execution status is unknown (§1.8)
            log.warning(
                "order %s: HTTP %d; outcome unknown, asking the venue", o.client_id, r.status
            )
            await self._query(o, req)
            return
        self._on_reply(o, r, req)

    async def _query(self, o: LiveOrder, req: int) -> None:
        """One GET /fapi/v1/order to settle a request whose reply never came."""
        p = {"symbol": self.insts[o.inst].upper, "origClientOrderId": o.client_id}
        try:
            r = await self.rest.request("GET", "/fapi/v1/order", p, signed=True)
        except RequestFailed as e:
            log.error("order %s: the status query failed too (%s); left in flight", o.client_id, e)
            return
        resp = self._parse(r)
        if isinstance(resp, ErrorReply):
            if resp.code == NO_SUCH_ORDER and req == REQ_SUBMIT:
                self._refused(o, req, resp.code, resp.msg)  # it never reached the book
            else:
                log.error("order %s: status query refused: %d %s", o.client_id, resp.code, resp.msg)
            return
        if resp is not None:
            self._apply_rest(o, resp, req)

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
        log.info("order %s: %s refused: %d %s", o.client_id,
                 {REQ_SUBMIT: "submit", REQ_CANCEL: "cancel", REQ_MODIFY: "modify"}[req],
                 code, msg)  # fmt: skip
        if req == REQ_SUBMIT:
            self._reject_new(o, code, msg)
        else:
            self._reject_existing(o, req, code, msg)

    # ------------------------------------------------------------------ reports
    def _reject_new(self, o: LiveOrder, code: int, msg: str) -> None:
        # a refused new order ends EXPIRED, as hftbacktest's backtester does
        o.status, o.leaves_qty = EXPIRED, 0.0
        self._report(o, REQ_SUBMIT, reject_code=code, reject_msg=msg)

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
        self._report(o, req)

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
        if fill or o.state() != before:
            self._report(o, **fill)

    async def reconcile(self) -> None:
        """After the user stream (re)connects: query every order still open or in flight,
        since its events may have been missed while the stream was down."""
        for o in list(self.live.values()):
            if o.status not in _FINAL and o.status != NONE:
                await self._query(o, 0)
