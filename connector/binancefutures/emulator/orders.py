"""Orders as Binance USD-M sees them: parameter checks, order records and their JSON shapes.

Parameter checks follow §1.6 and §1.8: mandatory params (-1102), enums (-1115/-1116/-1117),
too many decimals (-1111), off the tick/step grid (-4014/-4023), PRICE_FILTER and LOT_SIZE
bounds (-4013/-4016, -4003/-4004/-4005), PERCENT_PRICE against the mark price (a buy above
mark*multiplierUp -4016, a sell below mark*multiplierDown -4024), MIN_NOTIONAL (-4164,
reduce-only exempt), newClientOrderId `^[.A-Z:/a-z0-9_-]{1,36}$` (-4015). The mark price
is the emulator's mid price (no separate mark-price model).

Bodies keep the field order of Binance's documented examples; numbers are strings with
the symbol's decimals, ids and times integers. `avgPrice`/`cumQuote` appear only in
queries (GET order, openOrders): they were dropped from the place/cancel/modify docs in
2026-07 (§0.3), so clients must not need them there.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from connector.binancefutures.emulator.errors import ApiError, missing
from connector.emulator_kit.book import SymbolSpec

CLIENT_ID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
DECIMAL_RE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
SIDES = ("BUY", "SELL")
TYPES = ("LIMIT", "MARKET")
TIFS = ("GTC", "IOC", "FOK", "GTX")
FINAL = frozenset(("FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED"))


@dataclass
class Order:
    """One order's venue-side record."""

    order_id: int
    client_id: str
    spec: SymbolSpec
    side: str
    type: str
    tif: str
    px_tick: int  # 0 for MARKET
    qty_lots: int
    reduce_only: bool
    time_ms: int
    status: str = "NEW"
    cum_lots: int = 0
    cum_quote: float = 0.0
    update_ms: int = 0

    @property
    def side_sign(self) -> int:
        return 1 if self.side == "BUY" else -1

    @property
    def is_open(self) -> bool:
        return self.status not in FINAL

    def avg_px(self) -> float:
        return self.cum_quote / (self.cum_lots * self.spec.step) if self.cum_lots else 0.0

    def body(self, query: bool = False) -> dict:
        """REST/WS-API order object (§1.6); `query` adds time, avgPrice and cumQuote."""
        spec = self.spec
        executed = spec.qty(self.cum_lots)
        d: dict = {"clientOrderId": self.client_id, "cumQty": executed}
        if query:
            d["cumQuote"] = f"{self.cum_quote:.5f}"
        d["executedQty"] = executed
        d["orderId"] = self.order_id
        if query:
            d["avgPrice"] = fmt_avg(self.avg_px(), spec)
        d.update(
            origQty=spec.qty(self.qty_lots),
            price=spec.px(self.px_tick) if self.type == "LIMIT" else "0",
            reduceOnly=self.reduce_only,
            side=self.side,
            positionSide="BOTH",
            status=self.status,
            stopPrice="0",
            closePosition=False,
            symbol=spec.upper,
            timeInForce=self.tif,
            type=self.type,
            origType=self.type,
        )
        if query:
            d["time"] = self.time_ms
        d.update(
            updateTime=self.update_ms,
            workingType="CONTRACT_PRICE",
            priceProtect=False,
            priceMatch="NONE",
            selfTradePreventionMode="NONE",
            goodTillDate=0,
        )
        return d

    def trade_update(self, now_ms: int, x: str, fill: dict | None = None, **extra) -> dict:
        """ORDER_TRADE_UPDATE (§1.5) for this order's current state."""
        spec = self.spec
        f = fill or {}
        o = {
            "s": spec.upper,
            "c": self.client_id,
            "S": self.side,
            "o": self.type,
            "f": self.tif,
            "q": spec.qty(self.qty_lots),
            "p": spec.px(self.px_tick) if self.type == "LIMIT" else "0",
            "ap": fmt_avg(self.avg_px(), spec),
            "sp": "0",
            "x": x,
            "X": self.status,
            "i": self.order_id,
            "l": f.get("l", "0"),
            "z": spec.qty(self.cum_lots),
            "L": f.get("L", "0"),
        }
        if fill:
            o["N"] = "USDT"
            o["n"] = fill["n"]
        o.update(
            T=now_ms,
            t=f.get("t", 0),
            b=extra.pop("bids_notional", "0"),
            a=extra.pop("asks_notional", "0"),
            m=f.get("m", False),
            R=self.reduce_only,
            wt="CONTRACT_PRICE",
            ot=self.type,
            ps="BOTH",
            cp=False,
            rp=f.get("rp", "0"),
            pP=False,
            si=0,
            ss=0,
            V="NONE",
            pm="NONE",
            gtd=0,
            er=extra.pop("er", "0"),
        )
        o.update(extra)
        return {"e": "ORDER_TRADE_UPDATE", "T": now_ms, "E": now_ms, "o": o}


def fmt_avg(px: float, spec: SymbolSpec) -> str:
    """Average prices carry at least 5 decimals on Binance ("39849.93000")."""
    return f"{px:.{max(5, spec.price_dp)}f}"


def new_client_id(rng: random.Random) -> str:
    """A venue-generated client order id (22 alphanumerics)."""
    return "".join(rng.choices(string.ascii_letters + string.digits, k=22))


def need(p: dict[str, str], name: str) -> str:
    """A mandatory parameter's value, or -1102."""
    v = p.get(name)
    if v is None or v == "":
        raise missing(name)
    return v


def enum(p: dict[str, str], name: str, allowed: tuple[str, ...], code: int) -> str:
    v = need(p, name)
    if v not in allowed:
        raise ApiError(code)
    return v


def _decimal(p: dict[str, str], name: str, dp: int) -> int:
    """A decimal param as an integer count of 10**-dp; -1100 malformed, -1111 too precise."""
    text = need(p, name)
    if not re.match(DECIMAL_RE, text):
        raise ApiError(-1100, name=name, legal=DECIMAL_RE)
    try:
        d = Decimal(text).normalize()
    except InvalidOperation:
        raise ApiError(-1100, name=name, legal=DECIMAL_RE) from None
    if max(0, -d.as_tuple().exponent) > dp:
        raise ApiError(-1111)
    return int(d.scaleb(dp))


def price_tick(p: dict[str, str], spec: SymbolSpec, mark_px: float | None, side: str) -> int:
    """Checks `price` against PRICE_FILTER and PERCENT_PRICE; returns it in ticks."""
    n = _decimal(p, "price", spec.price_dp)
    if n <= 0 or n < round(float(spec.min_price) * 10**spec.price_dp):
        raise ApiError(-4013)
    if n % spec.tick_units:
        raise ApiError(-4014)
    px = n / 10**spec.price_dp
    if px > float(spec.max_price):
        raise ApiError(-4016, limit=spec.max_price)
    if mark_px is not None:
        up, down = mark_px * float(spec.multiplier_up), mark_px * float(spec.multiplier_down)
        if side == "BUY" and px > up:
            raise ApiError(-4016, limit=f"{up:.{spec.price_dp}f}")
        if side == "SELL" and px < down:
            raise ApiError(-4024, limit=f"{down:.{spec.price_dp}f}")
    return n // spec.tick_units


def qty_lots(p: dict[str, str], spec: SymbolSpec, market: bool) -> int:
    """Checks `quantity` against LOT_SIZE (MARKET_LOT_SIZE for MARKET); returns lots."""
    n = _decimal(p, "quantity", spec.qty_dp)
    if n <= 0:
        raise ApiError(-4003)
    if n < round(float(spec.min_qty) * 10**spec.qty_dp):
        raise ApiError(-4004)
    if n > round(float(spec.market_max_qty if market else spec.max_qty) * 10**spec.qty_dp):
        raise ApiError(-4005)
    if n % spec.step_units:
        raise ApiError(-4023)
    return n // spec.step_units


def check_notional(spec: SymbolSpec, px: float | None, lots: int, reduce_only: bool) -> None:
    """MIN_NOTIONAL: px * qty >= notional, unless reduce-only (-4164)."""
    if reduce_only or px is None:
        return
    if px * lots * spec.step < float(spec.min_notional) - 1e-9:
        raise ApiError(-4164, limit=spec.min_notional)


def client_id(p: dict[str, str], rng: random.Random, open_ids) -> str:
    """newClientOrderId checked (-4015) and unique among open orders (-4116), or generated."""
    cid = p.get("newClientOrderId")
    if cid is None or cid == "":
        return new_client_id(rng)
    if not CLIENT_ID_RE.match(cid):
        raise ApiError(-4015)
    if cid in open_ids:
        raise ApiError(-4116)
    return cid


def flag(p: dict[str, str], name: str) -> bool:
    """A "true"/"false" param (reduceOnly); anything else is -1100."""
    v = p.get(name, "false")
    if v not in ("true", "false"):
        raise ApiError(-1100, name=name, legal="true|false")
    return v == "true"
