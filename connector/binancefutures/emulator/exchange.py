"""The emulator's account: orders, matching, positions, balance and user-stream events.

Pure logic (no I/O, no clock): every call takes the venue time `now_ms` and returns the
reply body and the user-stream events it caused, in order. Matching is
`connector.matching.MatchingEngine` over the venue's own book (`LevelBook`), which
implements Binance's rules with Binance codes: GTX that would cross -5022 and FOK that
cannot fill -5021 (both synchronous HTTP 400, order not recorded, no user event); IOC and
MARKET rests expire (x=EXPIRED, er 2 / 9); resting orders fill as maker when a trade
prints through them or the book crosses them; partial fills. Our orders do not move the
replayed book (no market impact) and never match each other.

Per fill the user stream gets TRADE_LITE, ACCOUNT_UPDATE (m="ORDER", the position) and
ORDER_TRADE_UPDATE x=TRADE (§1.5). That relative order is not documented (UNCONFIRMED);
clients must not depend on it. One-way mode (positionSide BOTH), cross margin, no margin
checks; fees are charged in USDT and move the wallet balance with realized PnL.

Hedge mode (`hedge_mode()` true, the `hedge_mode` switch) is emulated as far as a client
can see it before trading: the mode read (`position_mode`), two legs per symbol in
positionRisk, and -4061 for an order without positionSide LONG/SHORT [BN error codes:
-4061 "Order's position side does not match user's setting."]. Orders on the legs are not
emulated.
"""

from __future__ import annotations

import random

from connector import matching as me
from connector.binancefutures.emulator import orders as ov
from connector.binancefutures.emulator.errors import ApiError
from connector.binancefutures.emulator.orders import Order
from connector.emulator_kit.book import SymbolMarket
from connector.emulator_kit.position import Position

FIRST_ORDER_ID = 8_389_765_500_000_000_000  # the size of real USD-M order ids
_STATUS = {
    me.NEW: "NEW",
    me.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    me.FILLED: "FILLED",
    me.CANCELED: "CANCELED",
    me.EXPIRED: "EXPIRED",
}
# the matching engine's refusals as Binance's codes (venue_protocols.md §1.8)
BINANCE_CODES = {
    me.REJECT_INVALID_QTY: -4003,
    me.REJECT_QTY_NOT_LOT_MULT: -4023,
    me.REJECT_INVALID_PRICE: -4013,
    me.REJECT_INVALID_SIDE: -1117,
    me.REJECT_INVALID_TIF: -1115,
    me.REJECT_INVALID_TYPE: -1116,
    me.REJECT_GTX_WOULD_CROSS: -5022,
    me.REJECT_FOK_NOT_FILLED: -5021,
    me.REJECT_UNKNOWN_ORDER: -2011,
    me.REJECT_SAME_ORDER: -5027,
}
_TIF = {"GTC": me.GTC, "GTX": me.GTX, "FOK": me.FOK, "IOC": me.IOC}


class Account:
    """One account on the emulator (one-way mode, USDT margin).

    Args:
        markets: symbol -> its market (book and spec), shared with the market source.
        balance: initial USDT wallet balance.
        maker_fee, taker_fee: fee rates (Binance VIP 0: 0.02 % / 0.05 %).
        seed: for generated client order ids.
        hedge_mode: `() -> bool`, the account's position mode is hedge (read per request,
            so a test can switch it).
    """

    def __init__(
        self,
        markets: dict[str, SymbolMarket],
        balance: float = 10_000.0,
        maker_fee: float = 0.0002,
        taker_fee: float = 0.0005,
        seed: int = 1,
        hedge_mode=lambda: False,
    ):
        self.markets = markets
        self.hedge_mode = hedge_mode
        self.engines = {s: me.MatchingEngine(m.book, m.spec.step) for s, m in markets.items()}
        self.wallet = balance
        self.maker_fee, self.taker_fee = maker_fee, taker_fee
        self.orders: dict[int, Order] = {}  # every recorded order, for queries
        self.open_ids: dict[str, dict[str, int]] = {s: {} for s in markets}  # cid -> id
        self.positions = {s: Position() for s in markets}
        self._next_id = FIRST_ORDER_ID
        self._next_trade_id = 1_000_000_000
        self.trades: list[dict] = []  # GET /fapi/v1/userTrades bodies, oldest first
        self.countdowns: dict[str, int] = {}  # symbol -> venue ms its orders are cancelled
        self._rng = random.Random(seed)

    # ------------------------------------------------------------------ requests
    def market(self, p: dict[str, str]) -> SymbolMarket:
        sym = ov.need(p, "symbol").lower()
        if sym not in self.markets:
            raise ApiError(-1121)
        return self.markets[sym]

    def mark_px(self, sym: str) -> float | None:
        mkt = self.markets[sym]
        mid = mkt.book.mid_tick()
        return None if mid is None else mid * mkt.spec.tick

    def new_order(self, p: dict[str, str], now_ms: int) -> tuple[dict, list[dict]]:
        """POST /fapi/v1/order, WS-API order.place. Raises ApiError on a reject."""
        mkt = self.market(p)
        spec, sym = mkt.spec, mkt.spec.symbol
        side = ov.enum(p, "side", ov.SIDES, -1117)
        typ = ov.enum(p, "type", ov.TYPES, -1116)
        # -4061: the positionSide must match the account's mode: BOTH (or none) in one-way
        # mode, LONG or SHORT in hedge mode (§1.6 POST /fapi/v1/order)
        position_side = p.get("positionSide", "BOTH")
        if self.hedge_mode():
            if position_side not in ("LONG", "SHORT"):
                raise ApiError(-4061)
            raise ApiError(-1000, "emulator: hedge-mode orders (positionSide LONG/SHORT) are "
                                  "not emulated")  # fmt: skip
        if position_side != "BOTH":
            raise ApiError(-4061)
        reduce_only = ov.flag(p, "reduceOnly")
        mark = self.mark_px(sym)
        if typ == "LIMIT":
            tif = ov.enum(p, "timeInForce", ov.TIFS, -1115)
            lots = ov.qty_lots(p, spec, market=False)
            tick = ov.price_tick(p, spec, mark, side)
            notional_px = tick * spec.tick
        else:
            if p.get("price"):
                raise ApiError(-1106, name="price")
            tif, tick = "GTC", 0
            lots = ov.qty_lots(p, spec, market=True)
            notional_px = mark
        ov.check_notional(spec, notional_px, lots, reduce_only)
        cid = ov.client_id(p, self._rng, self.open_ids[sym])
        if reduce_only:
            pos = self.positions[sym].lots
            if pos == 0 or (pos > 0) == (side == "BUY"):
                raise ApiError(-2022)
        resp_type = p.get("newOrderRespType", "ACK")
        if resp_type not in ("ACK", "RESULT"):
            raise ApiError(-1100, name="newOrderRespType", legal="ACK|RESULT")
        order = Order(self._next_id, cid, spec, side, typ, tif, tick, lots, reduce_only, now_ms)
        order.update_ms = now_ms
        sim = me.SimOrder(
            key=order.order_id,
            side=order.side_sign,
            px_tick=tick,
            qty=lots * spec.step,
            tif=_TIF[tif],
            order_type=me.LIMIT if typ == "LIMIT" else me.MARKET,
        )
        reports = self.engines[sym].submit(sim, now_ms * 1_000_000)
        if reports[0].reject_code:
            # -5022/-5021: not recorded, no event
            raise ApiError(BINANCE_CODES[reports[0].reject_code])
        self._next_id += 1
        self.orders[order.order_id] = order
        self.open_ids[sym][cid] = order.order_id
        ack = order.body()  # the state at acceptance: NEW, nothing executed
        events = self._apply(order, reports, now_ms)
        return (order.body() if resp_type == "RESULT" else ack), events

    def modify_order(self, p: dict[str, str], now_ms: int) -> tuple[dict, list[dict]]:
        """PUT /fapi/v1/order, WS-API order.modify (§1.6 modify rules)."""
        mkt = self.market(p)
        ov.enum(p, "side", ov.SIDES, -1117)
        order = self._find(p, mkt.spec.symbol, -2013)
        if not order.is_open:
            raise ApiError(-2013)
        lots = ov.qty_lots(p, mkt.spec, market=False)
        tick = ov.price_tick(p, mkt.spec, self.mark_px(mkt.spec.symbol), order.side)
        ov.check_notional(mkt.spec, tick * mkt.spec.tick, lots, order.reduce_only)
        if tick == order.px_tick and lots == order.qty_lots:
            raise ApiError(-5027)
        reports = self.engines[mkt.spec.symbol].modify(
            order.order_id, tick, lots * mkt.spec.step, now_ms * 1_000_000
        )
        first = reports[0]
        if first.status == me.NONE or (first.reject_code and first.status != me.CANCELED):
            raise ApiError(BINANCE_CODES[first.reject_code] if first.reject_code else -2013)
        if first.status != me.CANCELED:
            order.px_tick, order.qty_lots = tick, lots
        extra = {"M": p["modifyId"]} if p.get("modifyId") else {}
        events = self._apply(order, reports, now_ms, amend=True, extra=extra)
        return order.body(), events

    def cancel_order(self, p: dict[str, str], now_ms: int) -> tuple[dict, list[dict]]:
        """DELETE /fapi/v1/order, WS-API order.cancel; unknown or closed: -2011."""
        mkt = self.market(p)
        order = self._find(p, mkt.spec.symbol, -2011)
        if not order.is_open:
            raise ApiError(-2011)
        reports = self.engines[mkt.spec.symbol].cancel(order.order_id, now_ms * 1_000_000)
        events = self._apply(order, reports, now_ms)
        return order.body(), events

    def cancel_all(self, p: dict[str, str], now_ms: int) -> tuple[dict, list[dict]]:
        """DELETE /fapi/v1/allOpenOrders: success body carries code 200 (§1.6)."""
        sym = self.market(p).spec.symbol
        events: list[dict] = []
        for oid in list(self.open_ids[sym].values()):
            reports = self.engines[sym].cancel(oid, now_ms * 1_000_000)
            events += self._apply(self.orders[oid], reports, now_ms)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}, events

    def countdown_cancel_all(self, p: dict[str, str], now_ms: int) -> tuple[dict, list[dict]]:
        """POST /fapi/v1/countdownCancelAll: every open order of `symbol` is cancelled when
        `countdownTime` ms pass without another call; 0 stops the timer [BN auto-cancel]."""
        spec = self.market(p).spec
        try:
            ms = int(ov.need(p, "countdownTime"))
        except ValueError:
            raise ApiError(-1100, name="countdownTime", legal="an integer") from None
        if ms < 0:
            raise ApiError(-1100, name="countdownTime", legal="0 or more")
        if ms:
            self.countdowns[spec.symbol] = now_ms + ms
        else:
            self.countdowns.pop(spec.symbol, None)
        return {"symbol": spec.upper, "countdownTime": str(ms)}, []

    def run_countdowns(self, now_ms: int) -> list[dict]:
        """Cancels the open orders of every symbol whose countdown ran out; their events."""
        events: list[dict] = []
        for sym, deadline in list(self.countdowns.items()):
            if now_ms >= deadline:
                del self.countdowns[sym]
                events += self.cancel_all({"symbol": sym}, now_ms)[1]
        return events

    def query_order(self, p: dict[str, str], now_ms: int) -> tuple[dict, list[dict]]:
        """GET /fapi/v1/order, WS-API order.status; unknown: -2013."""
        mkt = self.market(p)
        return self._find(p, mkt.spec.symbol, -2013).body(query=True), []

    def open_orders(self, p: dict[str, str], now_ms: int) -> tuple[list, list[dict]]:
        syms = [self.market(p).spec.symbol] if p.get("symbol") else list(self.markets)
        out = [self.orders[i].body(query=True) for s in syms for i in self.open_ids[s].values()]
        return out, []

    def position_mode(self, p: dict[str, str], now_ms: int) -> tuple[dict, list[dict]]:
        """GET /fapi/v1/positionSide/dual [BN "Get Current Position Mode (USER_DATA)"]:
        true is hedge mode, false one-way mode, for every symbol."""
        return {"dualSidePosition": bool(self.hedge_mode())}, []

    def position_risk(self, p: dict[str, str], now_ms: int) -> tuple[list, list[dict]]:
        """GET /fapi/v2/positionRisk: one entry per symbol (positionSide BOTH) in one-way
        mode; in hedge mode two, LONG (amount >= 0) and SHORT (amount <= 0) (§1.6)."""
        syms = [self.market(p).spec.symbol] if p.get("symbol") else list(self.markets)
        out = []
        for s in syms:
            pos, spec = self.positions[s], self.markets[s].spec
            mark = self.mark_px(s) or pos.entry_px
            if self.hedge_mode():
                legs = [("LONG", max(pos.lots, 0)), ("SHORT", min(pos.lots, 0))]
            else:
                legs = [("BOTH", pos.lots)]
            for side, lots in legs:
                out.append(self._risk_entry(pos, spec, mark, side, lots))
        return out, []

    @staticmethod
    def _risk_entry(pos, spec, mark: float, side: str, lots: int) -> dict:
        amt = lots * spec.step
        return {
            "entryPrice": f"{pos.entry_px:.8f}",
            "breakEvenPrice": f"{pos.entry_px:.8f}",
            "marginType": "cross",
            "isAutoAddMargin": "false",
            "isolatedMargin": "0.00000000",
            "leverage": "20",
            "liquidationPrice": "0",
            "markPrice": f"{mark:.8f}",
            "maxNotionalValue": "1000000",
            "positionAmt": spec.qty(lots),
            "notional": f"{amt * mark:.8f}",
            "isolatedWallet": "0",
            "symbol": spec.upper,
            "unRealizedProfit": f"{(mark - pos.entry_px) * amt:.8f}",
            "positionSide": side,
            "updateTime": pos.update_ms,
        }

    def user_trades(self, p: dict[str, str], now_ms: int) -> tuple[list, list[dict]]:
        """GET /fapi/v1/userTrades: `symbol`, optional `orderId`, `fromId`, `limit` (500,
        at most 1000), oldest first [BN account trade list]."""
        sym = self.market(p).spec.upper
        try:
            oid = int(p["orderId"]) if "orderId" in p else None
            from_id = int(p["fromId"]) if "fromId" in p else None
            limit = int(p.get("limit", 500))
        except ValueError:
            raise ApiError(-1100, name="orderId/fromId/limit", legal="an integer") from None
        if not 1 <= limit <= 1000:
            raise ApiError(-1100, name="limit", legal="1-1000")
        out = [
            t for t in self.trades
            if t["symbol"] == sym and (oid is None or t["orderId"] == oid)
            and (from_id is None or t["id"] >= from_id)
        ]  # fmt: skip
        return out[:limit], []

    # ------------------------------------------------------------------ market input
    def on_trade(self, sym: str, taker_buy: bool, tick: int, lots: int, now_ms: int) -> list:
        """A market trade printed: fills resting orders it went through."""
        eng = self.engines[sym]
        aggressor = me.BUY if taker_buy else me.SELL
        reports = eng.on_trade(aggressor, tick, lots * self.markets[sym].spec.step, now_ms * 10**6)
        return self._apply_many(reports, now_ms)

    def on_depth(self, sym: str, changes, now_ms: int) -> list[dict]:
        """Levels changed: queue positions advance; resting orders the book crosses fill."""
        eng, step, now_ns = self.engines[sym], self.markets[sym].spec.step, now_ms * 10**6
        if not eng.open_orders():
            return []
        for is_bid, tick, lots in changes:
            eng.on_depth(me.BUY if is_bid else me.SELL, tick, lots * step, now_ns)
        return self._apply_many(eng.on_book(now_ns), now_ms)

    # ------------------------------------------------------------------ internals
    def _find(self, p: dict[str, str], sym: str, code: int) -> Order:
        oid, cid = p.get("orderId"), p.get("origClientOrderId")
        if not oid and not cid:
            raise ApiError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        order = None
        if oid:  # orderId wins when both are sent (§1.6)
            order = self.orders.get(int(oid)) if oid.isdigit() else None
        else:
            i = self.open_ids[sym].get(cid)
            if i is None:  # a closed order: the latest with that client id
                i = max((o.order_id for o in self.orders.values() if o.client_id == cid), default=0)
            order = self.orders.get(i)
        if order is None or order.spec.symbol != sym:
            raise ApiError(code)
        return order

    def _apply_many(self, reports, now_ms: int) -> list[dict]:
        events: list[dict] = []
        for r in reports:
            events += self._apply(self.orders[r.key], [r], now_ms)
        return events

    def _apply(self, order: Order, reports, now_ms: int, amend=False, extra=None) -> list[dict]:
        """Turns engine reports for `order` into its new state and user-stream events."""
        events: list[dict] = []
        spec = order.spec
        for k, r in enumerate(reports):
            order.status = _STATUS[r.status]
            order.update_ms = now_ms
            x, fill, er = "NEW", None, "0"
            if r.exec_qty > 0:
                lots = round(r.exec_qty / spec.step)
                fill = self._fill(order, lots, r.exec_px_tick, r.maker, now_ms)
                events += fill.pop("_events")
                x = "TRADE"
            elif r.status == me.CANCELED:
                x = "CANCELED"
            elif r.status == me.EXPIRED:
                x, er = "EXPIRED", "9" if order.type == "MARKET" else "2"
            elif amend and k == 0:
                x = "AMENDMENT"
                if order.cum_lots:
                    order.status = "PARTIALLY_FILLED"
            if not order.is_open:
                self.open_ids[spec.symbol].pop(order.client_id, None)
            ex = dict(extra or {}) if x == "AMENDMENT" else {}
            ex.update(er=er, **self._notionals(spec.symbol))
            events.append(order.trade_update(now_ms, x, fill, **ex))
        return events

    def _notionals(self, sym: str) -> dict:
        bids = asks = 0.0
        for oid in self.open_ids[sym].values():
            o = self.orders[oid]
            n = (o.qty_lots - o.cum_lots) * o.spec.step * o.px_tick * o.spec.tick
            if o.side == "BUY":
                bids += n
            else:
                asks += n
        return {"bids_notional": f"{bids:.5f}", "asks_notional": f"{asks:.5f}"}

    def _fill(self, order: Order, lots: int, tick: int, maker: bool, now_ms: int) -> dict:
        spec = order.spec
        px = tick * spec.tick
        qty = lots * spec.step
        order.cum_lots += lots
        order.cum_quote += px * qty
        fee = px * qty * (self.maker_fee if maker else self.taker_fee)
        realized = self._position(spec.symbol, order.side_sign * lots, px, now_ms)
        self.wallet += realized - fee
        trade_id = self._next_trade_id
        self._next_trade_id += 1
        self.trades.append(
            {
                "buyer": order.side == "BUY",
                "commission": f"{fee:.8f}",
                "commissionAsset": "USDT",
                "id": trade_id,
                "maker": maker,
                "orderId": order.order_id,
                "price": spec.px(tick),
                "qty": spec.qty(lots),
                "quoteQty": f"{px * qty:.8f}",
                "realizedPnl": f"{realized:.8f}",
                "side": order.side,
                "positionSide": "BOTH",
                "symbol": spec.upper,
                "time": now_ms,
            }
        )
        lite = {
            "e": "TRADE_LITE",
            "E": now_ms,
            "T": now_ms,
            "s": spec.upper,
            "q": spec.qty(order.qty_lots),
            "p": spec.px(order.px_tick) if order.type == "LIMIT" else "0",
            "m": maker,
            "c": order.client_id,
            "S": order.side,
            "L": spec.px(tick),
            "l": spec.qty(lots),
            "t": trade_id,
            "i": order.order_id,
        }
        return {
            "l": spec.qty(lots),
            "L": spec.px(tick),
            "n": f"{fee:.8f}",
            "t": trade_id,
            "m": maker,
            "rp": f"{realized:.8f}",
            "_events": [lite, self._account_update(spec.symbol, now_ms)],
        }

    def _position(self, sym: str, signed_lots: int, px: float, now_ms: int) -> float:
        """Applies a fill to the position; returns the realized PnL."""
        step = self.markets[sym].spec.step
        return self.positions[sym].fill(signed_lots, px, step, now_ms)

    def _account_update(self, sym: str, now_ms: int) -> dict:
        pos, spec = self.positions[sym], self.markets[sym].spec
        mark = self.mark_px(sym) or pos.entry_px
        wallet = f"{self.wallet:.8f}"
        return {
            "e": "ACCOUNT_UPDATE",
            "T": now_ms,
            "E": now_ms,
            "a": {
                "B": [{"a": "USDT", "wb": wallet, "cw": wallet, "bc": "0"}],
                "P": [
                    {
                        "s": spec.upper,
                        "pa": spec.qty(pos.lots),
                        "ep": f"{pos.entry_px:.8f}",
                        "bep": f"{pos.entry_px:.8f}",
                        "cr": f"{pos.realized:.8f}",
                        "up": f"{(mark - pos.entry_px) * pos.lots * spec.step:.8f}",
                        "mt": "cross",
                        "iw": "0",
                        "ps": "BOTH",
                        "ma": "USDT",
                    }
                ],
                "m": "ORDER",
            },
        }
