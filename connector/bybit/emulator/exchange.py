"""The emulator's account: orders, matching, executions, the position and the wallet.

Pure logic (no I/O, no clock): every call takes the venue time `now_ms` and returns the
reply's `result` and the private pushes it caused, `[(topic, [items])]` in order. Matching
is the kernel's `connector.matching.MatchingEngine` over the venue's own book; this module
maps its reports to Bybit's records [BY websocket/private/*.mdx, order/*.mdx]:

==================================== ==================================================
engine report                        Bybit
==================================== ==================================================
NEW                                  orderStatus New (PartiallyFilled after fills)
fill                                 PartiallyFilled / Filled + an `execution` item
CANCELED                             Cancelled, cancelType CancelByUser (CancelByDCP)
EXPIRED, post-only would cross       Cancelled, rejectReason EC_PostOnlyWillTakeLiquidity,
                                     cancelType UNKNOWN, no fills (§2.5: accepted with
                                     retCode 0, then cancelled)
EXPIRED, FOK cannot fill             Cancelled, EC_CancelForNoFullFill (UNCONFIRMED)
EXPIRED, IOC/Market remainder        Cancelled, EC_NoImmediateQtyToFill (UNCONFIRMED)
==================================== ==================================================

Pushes per request or market event (the relative order is UNCONFIRMED; clients must not
depend on it): `order` (one item per order touched, its final state in this matching
cycle: a crossing PostOnly shows only Cancelled, never New first, UNCONFIRMED),
`execution` (every fill), `position`, `wallet` (after fills). Every create, amend and
cancel pushes a `position` message, even with no change (§2.3).

Hedge mode (`hedge_mode()` true, the `hedge_mode` switch) is emulated as far as a client
sees it before trading: two legs per symbol in the position list (positionIdx 1 and 2),
and 10001 "position idx not match position mode" for an order without positionIdx 1/2
(errors.POSITION_IDX_MISMATCH). Orders on the legs are not emulated.

One-way mode (positionIdx 0), USDT linear, cross margin at `leverage`: a new order needs
`notional / leverage` of available balance (110007). Fees in USDT move the wallet with
realized PnL. A Market order runs as an IOC sweep (no slippage band); its `price` is a
protection price 5 % through the touch (the band's width is UNCONFIRMED).
"""

from __future__ import annotations

import random
import uuid
from collections import deque

from connector import matching as me
from connector.bybit.emulator import orders as ov
from connector.bybit.emulator.errors import POSITION_IDX_MISMATCH, BybitError, params
from connector.bybit.emulator.orders import Order
from connector.emulator_kit.book import SymbolMarket
from connector.emulator_kit.position import Position

CLOSED_KEPT = 500  # /v5/order/realtime openOnly=1: "the most recent 500 closed orders"
MARKET_BAND = 0.05
_TIF = {"GTC": me.GTC, "IOC": me.IOC, "FOK": me.FOK, "PostOnly": me.GTX}
_REASON = {
    me.REJECT_GTX_WOULD_CROSS: "EC_PostOnlyWillTakeLiquidity",
    me.REJECT_FOK_NOT_FILLED: "EC_CancelForNoFullFill",
}
Events = list[tuple[str, list[dict]]]


class Account:
    """One UNIFIED account on the emulator.

    Args:
        markets: uppercase symbol -> its market (book and spec), shared with the source.
        balance: initial USDT wallet balance.
        maker_fee, taker_fee: fee rates (Bybit VIP 0 linear: 0.02 % / 0.055 %).
        leverage: the margin rate of orders and positions.
        seed: for order and execution ids.
        hedge_mode: `() -> bool`, every symbol is in hedge mode (read per request, so a
            test can switch it).
    """

    def __init__(self, markets: dict[str, SymbolMarket], balance: float = 10_000.0,
                 maker_fee: float = 0.0002, taker_fee: float = 0.00055, leverage: int = 10,
                 seed: int = 1, hedge_mode=lambda: False):  # fmt: skip
        self.markets = markets
        self.hedge_mode = hedge_mode
        self.engines = {s: me.MatchingEngine(m.book, m.spec.step) for s, m in markets.items()}
        self.wallet = balance
        self.maker_fee, self.taker_fee, self.leverage = maker_fee, taker_fee, leverage
        self.orders: dict[str, Order] = {}  # orderId -> every order
        self.by_link: dict[str, str] = {}  # orderLinkId -> orderId
        self.open: dict[str, dict[str, Order]] = {s: {} for s in markets}
        self.closed: deque[str] = deque(maxlen=CLOSED_KEPT)
        self.executions: list[dict] = []  # oldest first
        self.positions = {s: Position() for s in markets}
        self.last_px: dict[str, str] = {}
        self.cum_realized = 0.0
        self._keys: dict[int, str] = {}  # matching-engine key -> orderId
        self._seq = 1_000_000
        self._rng = random.Random(seed)

    # ------------------------------------------------------------------ order entry
    def market(self, p: dict) -> SymbolMarket:
        """The market a request names; category must be linear."""
        if p.get("category") != "linear":
            raise params("category must be linear")
        sym = ov.need(p, "symbol")
        if sym not in self.markets:
            raise params(f"symbol {sym} is not served")
        return self.markets[sym]

    def create(self, p: dict, now_ms: int) -> tuple[dict, Events]:
        """POST /v5/order/create, trade WS order.create. Raises BybitError on a refusal."""
        mkt = self.market(p)
        spec, sym = mkt.spec, mkt.spec.upper
        side = ov.enum(p, "side", ov.SIDES)
        typ = ov.enum(p, "orderType", ov.TYPES)
        # positionIdx must fit the mode: 0 (or none) one-way, 1/2 hedge [§2.5 create]
        idx = p.get("positionIdx", 0)
        if self.hedge_mode():
            if idx not in (1, 2, "1", "2"):
                raise BybitError(*POSITION_IDX_MISMATCH)
            raise params("emulator: hedge-mode orders (positionIdx 1/2) are not emulated")
        if idx not in (0, "0"):
            raise BybitError(*POSITION_IDX_MISMATCH)
        reduce_only = ov.flag(p, "reduceOnly")
        if typ == "Limit":
            tif = ov.enum(p, "timeInForce", ov.TIFS, "GTC")
            lots = ov.qty_lots(p, spec, market=False)
            tick = ov.price_tick(p, spec)
            notional_px = tick * spec.tick
            price_text = spec.px(tick)
        else:
            tif, tick = "IOC", 0  # Market is always IOC (§2.5)
            lots = ov.qty_lots(p, spec, market=True)
            price_text = self._protection_px(sym, side)
            notional_px = float(price_text) if price_text else self._mark(sym)
        link = ov.link_id(p)
        if link and link in self.by_link:
            raise BybitError(110072)
        pos = self.positions[sym].lots
        if reduce_only and (pos == 0 or (pos > 0) == (side == "Buy") or lots > abs(pos)):
            raise BybitError(110017, "Reduce-only rule not satisfied")
        notional = notional_px * lots * spec.step
        if notional < float(spec.min_notional) and not reduce_only:
            raise BybitError(110094, f"order value {notional:.4f} is below {spec.min_notional}")
        if not reduce_only and notional / self.leverage > self.available():
            raise BybitError(110007)
        if len(self.open[sym]) >= 500:
            raise BybitError(110020)
        oid = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        order = Order(
            oid, link, spec, side, typ, tif, tick, lots, reduce_only, now_ms, price_text,
            self.last_px.get(sym, price_text),
        )  # fmt: skip
        self.orders[oid] = order
        if link:
            self.by_link[link] = oid
        sim = me.SimOrder(
            key=_key(oid), side=order.sign, px_tick=tick, qty=lots * spec.step,
            tif=_TIF[tif], order_type=me.LIMIT if typ == "Limit" else me.MARKET,
        )  # fmt: skip
        self._keys[_key(oid)] = oid
        reports = self.engines[sym].submit(sim, now_ms * 1_000_000)
        events = self._apply(reports, now_ms, always_position=sym)
        return {"orderId": oid, "orderLinkId": link}, events

    def amend(self, p: dict, now_ms: int) -> tuple[dict, Events]:
        """POST /v5/order/amend: `qty` and/or `price` of an open order (orderId wins)."""
        mkt = self.market(p)
        spec, sym = mkt.spec, mkt.spec.upper
        order = self._find(p, sym)
        if not p.get("qty") and not p.get("price"):
            raise params("qty or price is required")
        if not order.is_open:
            raise BybitError(110001)
        lots = ov.qty_lots(p, spec, order.order_type == "Market") if p.get("qty") else None
        tick = ov.price_tick(p, spec) if p.get("price") else None
        new_lots = order.qty_lots if lots is None else lots
        new_tick = order.px_tick if tick is None else tick
        if new_lots == order.qty_lots and new_tick == order.px_tick:
            raise BybitError(34040)
        reports = self.engines[sym].modify(
            _key(order.order_id), new_tick, new_lots * spec.step, now_ms * 1_000_000
        )
        first = reports[0]
        if first.status == me.NONE:
            raise BybitError(110001)
        if first.status != me.CANCELED:
            order.px_tick, order.qty_lots = new_tick, new_lots
            order.price_text = spec.px(new_tick)
        events = self._apply(reports, now_ms, always_position=sym)
        return {"orderId": order.order_id, "orderLinkId": order.link_id}, events

    def cancel(
        self, p: dict, now_ms: int, cancel_type: str = "CancelByUser"
    ) -> tuple[dict, Events]:
        """POST /v5/order/cancel: unknown or no longer open -> 110001."""
        sym = self.market(p).spec.upper
        order = self._find(p, sym)
        if not order.is_open:
            raise BybitError(110001)
        reports = self.engines[sym].cancel(_key(order.order_id), now_ms * 1_000_000)
        events = self._apply(reports, now_ms, always_position=sym, cancel_type=cancel_type)
        return {"orderId": order.order_id, "orderLinkId": order.link_id}, events

    def cancel_all(
        self, p: dict, now_ms: int, cancel_type: str = "CancelByUser"
    ) -> tuple[dict, Events]:
        """POST /v5/order/cancel-all: by symbol, or every symbol of a settleCoin/baseCoin."""
        if p.get("category") != "linear":
            raise params("category must be linear")
        if p.get("symbol"):
            syms = [self.market(p).spec.upper]
        elif p.get("settleCoin") == "USDT":
            syms = list(self.markets)
        elif p.get("baseCoin"):
            syms = [s for s in self.markets if s.startswith(str(p["baseCoin"]))]
        else:
            raise params("symbol, baseCoin or settleCoin is required for linear")
        out, reports_by_sym = [], []
        for sym in syms:
            for order in list(self.open[sym].values()):
                reports_by_sym += self.engines[sym].cancel(_key(order.order_id), now_ms * 10**6)
                out.append({"orderId": order.order_id, "orderLinkId": order.link_id})
        events = self._apply(reports_by_sym, now_ms, cancel_type=cancel_type)
        for sym in syms:  # a position message per symbol touched (§2.3)
            if any(o["orderId"] in self.orders and self.orders[o["orderId"]].symbol == sym
                   for o in out):  # fmt: skip
                events.append(("position", [self.position_item(sym, now_ms)]))
        return {"list": out, "success": "1"}, events

    # ------------------------------------------------------------------ queries
    def realtime(self, p: dict) -> dict:
        """GET /v5/order/realtime. openOnly=0 (default): the open orders; with orderId or
        orderLinkId also a recently closed order (assumed: any of the last 500 closed, as
        Bybit's docs say closed orders can be queried by id). openOnly=1: the last 500
        closed orders. Newest first; `limit` 1-50 (20); `cursor` is an offset here."""
        syms = self._symbols(p)
        oid, link = p.get("orderId"), p.get("orderLinkId")
        if oid or link:
            i = oid or self.by_link.get(link, "")
            o = self.orders.get(i)
            found = [o] if o is not None and o.symbol in syms and (
                o.is_open or i in self.closed) else []  # fmt: skip
        elif str(p.get("openOnly", "0")) == "1":
            found = [self.orders[i] for i in reversed(self.closed) if self.orders[i].symbol in syms]
        else:
            found = [o for s in syms for o in self.open[s].values()]
            found.sort(key=lambda o: o.created_ms, reverse=True)
        return self._page(p, [o.body() for o in found], 50, 20)

    def history(self, p: dict) -> dict:
        """GET /v5/order/history: closed orders, newest first (`orderId`, `orderLinkId`,
        `orderStatus` filters; `limit` 1-50 (20))."""
        syms = self._symbols(p, need_one=False)
        found = [self.orders[i] for i in reversed(self.closed) if self.orders[i].symbol in syms]
        for k, f in (
            ("orderId", "order_id"),
            ("orderLinkId", "link_id"),
            ("orderStatus", "status"),
        ):
            if p.get(k):
                found = [o for o in found if getattr(o, f) == p[k]]
        return self._page(p, [o.body() for o in found], 50, 20)

    def execution_list(self, p: dict) -> dict:
        """GET /v5/execution/list: newest first; `symbol`, `orderId`, `orderLinkId`;
        `limit` 1-100 (50)."""
        syms = self._symbols(p, need_one=False)
        found = [e for e in reversed(self.executions) if e["symbol"] in syms]
        for k in ("orderId", "orderLinkId"):
            if p.get(k):
                found = [e for e in found if e[k] == p[k]]
        return self._page(p, found, 100, 50)

    def position_list(self, p: dict, now_ms: int) -> dict:
        """GET /v5/position/list: one-way positions, `avgPrice` where the topic says
        `entryPrice` (§2.5)."""
        syms = self._symbols(p, coin_key="settleCoin")
        items = []
        for s in syms:
            item = self.position_item(s, now_ms)
            item["avgPrice"] = item.pop("entryPrice")
            item.pop("seq", None)
            if self.hedge_mode():  # both sides: a buy leg and a sell leg (§2.3 positionIdx)
                items.extend(self._hedge_legs(item))
            else:
                items.append(item)
        return {**self._page(p, items, 200, 20), "category": "linear"}

    @staticmethod
    def _hedge_legs(item: dict) -> list[dict]:
        """A one-way list item as hedge mode's two legs: positionIdx 1 holds a long
        position, 2 a short one; the other leg is flat."""
        legs = []
        for idx, side in ((1, "Buy"), (2, "Sell")):
            leg = {**item, "positionIdx": idx}
            if item["side"] != side:
                leg.update(side="", size="0", positionValue="0", unrealisedPnl="0")
            legs.append(leg)
        return legs

    def wallet_balance(self, p: dict, now_ms: int) -> dict:
        if p.get("accountType") != "UNIFIED":
            raise params("accountType must be UNIFIED")
        return {"list": [self.wallet_item()]}

    # ------------------------------------------------------------------ market input
    def on_trade(self, sym: str, taker_buy: bool, tick: int, lots: int, now_ms: int) -> Events:
        """A public trade printed: resting orders it went through fill as maker."""
        spec = self.markets[sym].spec
        self.last_px[sym] = spec.px(tick)
        eng = self.engines[sym]
        if not eng.open_orders():
            return []
        aggressor = me.BUY if taker_buy else me.SELL
        return self._apply(eng.on_trade(aggressor, tick, lots * spec.step, now_ms * 10**6), now_ms)

    def on_depth(self, sym: str, changes, now_ms: int) -> Events:
        """Levels changed: queues advance; resting orders the book now crosses fill."""
        eng, step, now_ns = self.engines[sym], self.markets[sym].spec.step, now_ms * 10**6
        if not eng.open_orders():
            return []
        for is_bid, tick, lots in changes:
            eng.on_depth(me.BUY if is_bid else me.SELL, tick, lots * step, now_ns)
        return self._apply(eng.on_book(now_ns), now_ms)

    # ------------------------------------------------------------------ views
    def available(self) -> float:
        """Wallet balance less the margin of positions and open orders."""
        return self.wallet - self._position_im() - self._order_im()

    def position_item(self, sym: str, now_ms: int) -> dict:
        """The `position` topic item of `sym` [BY websocket/private/position.mdx]."""
        pos, spec = self.positions[sym], self.markets[sym].spec
        mark = self._mark(sym) or pos.entry_px
        size = abs(pos.lots) * spec.step
        value = size * pos.entry_px
        upl = (mark - pos.entry_px) * pos.lots * spec.step
        self._seq += 1
        return {
            "category": "linear",
            "symbol": sym,
            "side": "" if pos.lots == 0 else ("Buy" if pos.lots > 0 else "Sell"),
            "size": spec.qty(abs(pos.lots)),
            "positionIdx": 0,
            "tradeMode": 0,
            "positionValue": _f(value),
            "riskId": 1,
            "riskLimitValue": "2000000",
            "entryPrice": _f(pos.entry_px),
            "markPrice": _f(mark),
            "leverage": str(self.leverage),
            "positionBalance": _f(value / self.leverage),
            "autoAddMargin": 0,
            "positionIM": _f(value / self.leverage),
            "positionMM": _f(value * 0.005),
            "liqPrice": "",
            "bustPrice": "",
            "takeProfit": "0",
            "stopLoss": "0",
            "trailingStop": "0",
            "unrealisedPnl": _f(upl),
            "curRealisedPnl": _f(pos.realized),
            "cumRealisedPnl": _f(pos.realized),
            "sessionAvgPrice": "",
            "breakEvenPrice": _f(pos.entry_px),
            "positionStatus": "Normal",
            "adlRankIndicator": 0 if pos.lots == 0 else 2,
            "isReduceOnly": False,
            "tpslMode": "Full",
            "createdTime": str(pos.created_ms or now_ms),
            "updatedTime": str(pos.update_ms or now_ms),
            "seq": self._seq,
        }

    def wallet_item(self) -> dict:
        """The `wallet` topic item and the wallet-balance list item (UNIFIED, USDT only)."""
        upl = sum(
            ((self._mark(s) or p.entry_px) - p.entry_px) * p.lots * self.markets[s].spec.step
            for s, p in self.positions.items()
        )
        pos_im, ord_im = self._position_im(), self._order_im()
        equity = self.wallet + upl
        mm = pos_im * 0.05
        return {
            "accountType": "UNIFIED",
            "accountIMRate": _f((pos_im + ord_im) / equity if equity > 0 else 0.0, 4),
            "accountMMRate": _f(mm / equity if equity > 0 else 0.0, 4),
            "accountLTV": "0",
            "totalEquity": _f(equity),
            "totalWalletBalance": _f(self.wallet),
            "totalMarginBalance": _f(equity),
            "totalAvailableBalance": _f(equity - pos_im - ord_im),
            "totalPerpUPL": _f(upl),
            "totalInitialMargin": _f(pos_im + ord_im),
            "totalMaintenanceMargin": _f(mm),
            "coin": [
                {
                    "coin": "USDT",
                    "equity": _f(equity),
                    "usdValue": _f(equity),
                    "walletBalance": _f(self.wallet),
                    "free": "",
                    "locked": "0",
                    "spotHedgingQty": "0",
                    "borrowAmount": "0",
                    "availableToWithdraw": "",
                    "accruedInterest": "0",
                    "totalOrderIM": _f(ord_im),
                    "totalPositionIM": _f(pos_im),
                    "totalPositionMM": _f(mm),
                    "unrealisedPnl": _f(upl),
                    "cumRealisedPnl": _f(self.cum_realized),
                    "bonus": "0",
                    "marginCollateral": True,
                    "collateralSwitch": True,
                    "spotBorrow": "0",
                }
            ],
        }

    # ------------------------------------------------------------------ internals
    def _find(self, p: dict, sym: str) -> Order:
        """The order a cancel/amend names: orderId wins over orderLinkId (§2.5)."""
        oid, link = p.get("orderId"), p.get("orderLinkId")
        if not oid and not link:
            raise params("orderId or orderLinkId is required")
        order = self.orders.get(oid) if oid else self.orders.get(self.by_link.get(link, ""))
        if order is None or order.symbol != sym:
            raise BybitError(110001)
        return order

    def _symbols(self, p: dict, need_one: bool = True, coin_key: str = "settleCoin") -> list[str]:
        if p.get("category") != "linear":
            raise params("category must be linear")
        if p.get("symbol"):
            return [self.market(p).spec.upper]
        if p.get(coin_key) == "USDT" or p.get("settleCoin") == "USDT":
            return list(self.markets)
        if p.get("baseCoin") and coin_key != "settleCoin":
            return [s for s in self.markets if s.startswith(str(p["baseCoin"]))]
        if need_one:
            raise params("symbol or settleCoin is required for linear")
        return list(self.markets)

    @staticmethod
    def _page(p: dict, items: list, max_limit: int, default: int) -> dict:
        try:
            limit = int(p.get("limit", default))
            start = int(p.get("cursor") or 0)
        except (TypeError, ValueError):
            raise params("limit and cursor must be integers") from None
        if not 1 <= limit <= max_limit:
            raise params(f"limit must be 1-{max_limit}")
        page = items[start : start + limit]
        more = start + limit < len(items)
        return {"category": "linear", "nextPageCursor": str(start + limit) if more else "",
                "list": page}  # fmt: skip

    def _mark(self, sym: str) -> float:
        mkt = self.markets[sym]
        mid = mkt.book.mid_tick()
        return 0.0 if mid is None else mid * mkt.spec.tick

    def _protection_px(self, sym: str, side: str) -> str:
        mkt = self.markets[sym]
        book, spec = mkt.book, mkt.spec
        if side == "Buy":
            t = book.best_ask_tick
            return "" if t == me.INVALID_MAX else spec.px(round(t * (1 + MARKET_BAND)))
        t = book.best_bid_tick
        return "" if t == me.INVALID_MIN else spec.px(round(t * (1 - MARKET_BAND)))

    def _position_im(self) -> float:
        return sum(
            abs(p.lots) * self.markets[s].spec.step * p.entry_px / self.leverage
            for s, p in self.positions.items()
        )

    def _order_im(self) -> float:
        total = 0.0
        for sym, orders in self.open.items():
            spec = self.markets[sym].spec
            for o in orders.values():
                total += o.leaves_lots() * spec.step * o.px_tick * spec.tick / self.leverage
        return total

    def _apply(self, reports, now_ms: int, always_position: str | None = None,
               cancel_type: str = "CancelByUser") -> Events:  # fmt: skip
        """Engine reports -> order state, executions, position and wallet; the pushes."""
        touched: dict[str, Order] = {}
        execs: list[dict] = []
        filled_syms: list[str] = []
        for r in reports:
            order = self.orders[self._keys[r.key]]
            sym = order.symbol
            touched[order.order_id] = order
            order.updated_ms = now_ms
            if r.exec_qty > 0:
                execs.append(self._fill(order, r, now_ms))
                if sym not in filled_syms:
                    filled_syms.append(sym)
            elif r.status == me.NEW:
                order.status = "PartiallyFilled" if order.cum_lots else "New"
                self.open[sym][order.order_id] = order
            elif r.status in (me.CANCELED, me.EXPIRED):
                order.status = "Cancelled"
                if r.reject_code in _REASON:
                    order.reject_reason, order.cancel_type = _REASON[r.reject_code], "UNKNOWN"
                elif r.status == me.EXPIRED:
                    order.reject_reason = "EC_NoImmediateQtyToFill"
                else:
                    order.cancel_type = cancel_type
            if not order.is_open and not order.closed_seen:
                order.closed_seen = True
                self.open[sym].pop(order.order_id, None)
                self.closed.append(order.order_id)
        events: Events = []
        if touched:
            events.append(("order", [o.body() for o in touched.values()]))
        if execs:
            events.append(("execution", execs))
        syms = list(filled_syms)
        if always_position and always_position not in syms:
            syms.append(always_position)
        if syms:
            events.append(("position", [self.position_item(s, now_ms) for s in syms]))
        if execs:
            events.append(("wallet", [self.wallet_item()]))
        return events

    def _fill(self, order: Order, r, now_ms: int) -> dict:
        spec = order.spec
        lots = round(r.exec_qty / spec.step)
        px = r.exec_px_tick * spec.tick
        qty = lots * spec.step
        rate = self.maker_fee if r.maker else self.taker_fee
        fee = px * qty * rate
        pos = self.positions[order.symbol]
        before = pos.lots
        # closedSize: the part of this fill that reduced the position
        closed_lots = min(abs(before), lots) if before * order.sign < 0 else 0
        realized = pos.fill(order.sign * lots, px, spec.step, now_ms)
        self.wallet += realized - fee
        self.cum_realized += realized
        order.cum_lots += lots
        order.cum_value += px * qty
        order.cum_fee += fee
        order.closed_pnl += realized - fee if closed_lots else 0.0
        order.status = "Filled" if order.cum_lots >= order.qty_lots else "PartiallyFilled"
        self._seq += 1
        item = {
            "category": "linear",
            "symbol": spec.upper,
            "orderId": order.order_id,
            "orderLinkId": order.link_id,
            "side": order.side,
            "orderPrice": order.price_text,
            "orderQty": spec.qty(order.qty_lots),
            "leavesQty": spec.qty(order.qty_lots - order.cum_lots),
            "createType": "CreateByUser",
            "orderType": order.order_type,
            "stopOrderType": "",
            "execFee": f"{fee:.8f}",
            "execId": str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            "execPrice": spec.px(r.exec_px_tick),
            "execQty": spec.qty(lots),
            "execPnl": _f(realized),
            "execType": "Trade",
            "execValue": _f(px * qty),
            "execTime": str(now_ms),
            "isMaker": r.maker,
            "feeRate": str(rate),
            "tradeIv": "",
            "markIv": "",
            "markPrice": _f(self._mark(order.symbol) or px),
            "indexPrice": "",
            "underlyingPrice": "",
            "blockTradeId": "",
            "closedSize": spec.qty(closed_lots),
            "seq": self._seq,
            "feeCurrency": "USDT",
            "extraFees": "",
        }
        self.executions.append(item)
        return item


def _key(order_id: str) -> int:
    """The matching engine's int key of a Bybit orderId (its 64 low bits)."""
    return uuid.UUID(order_id).int & ((1 << 63) - 1)


def _f(x: float, dp: int = 8) -> str:
    return ov._dec(x, dp)
