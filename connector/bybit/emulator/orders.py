"""Bybit order records and the validation of order parameters (venue_protocols.md §2.3, §2.5).

`Order` renders itself as the `order` topic item and the `/v5/order/realtime` list item
(the same fields, [BY websocket/private/order.mdx, order/open-order.mdx]). Decimal fields
are strings with the symbol's fixed decimals; times are strings of ms.

Parameter rules (Bybit's own checks, codes from [BY error.mdx]):

* `category` must be "linear" (10001); `symbol` a served symbol (10001).
* `side` Buy/Sell, `orderType` Limit/Market, `timeInForce` GTC/IOC/FOK/PostOnly (10001).
* `qty` a decimal on the qtyStep grid (10001), >= minOrderQty (110017: the docs' "qty
  would truncate to zero"; UNCONFIRMED which of 10001/110017 Bybit picks below the
  minimum), <= maxOrderQty (maxMktOrderQty for Market) (10001).
* `price` (Limit) on the tickSize grid (10001) and inside [minPrice, maxPrice] (110003).
  Off-grid prices and quantities are refused rather than truncated (UNCONFIRMED: Bybit
  may truncate some of them).
* `orderLinkId`: at most 36 of `[A-Za-z0-9_-]` (10001), unique (110072).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from connector.bybit.emulator.errors import BybitError, params
from connector.emulator_kit.book import SymbolSpec

LINK_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
SIDES = ("Buy", "Sell")
TYPES = ("Limit", "Market")
TIFS = ("GTC", "IOC", "FOK", "PostOnly")
OPEN = ("New", "PartiallyFilled", "Untriggered")


@dataclass
class Order:
    """One order of the account as the venue records it."""

    order_id: str
    link_id: str
    spec: SymbolSpec
    side: str
    order_type: str
    tif: str
    px_tick: int
    qty_lots: int
    reduce_only: bool
    created_ms: int
    price_text: str  # Limit: its price; Market: the internal protection price
    last_px_on_created: str
    status: str = "New"
    cum_lots: int = 0
    cum_value: float = 0.0
    cum_fee: float = 0.0
    reject_reason: str = "EC_NoError"
    cancel_type: str = "UNKNOWN"
    updated_ms: int = 0
    closed_pnl: float = 0.0
    closed_seen: bool = False  # recorded among the closed orders

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def sign(self) -> int:
        return 1 if self.side == "Buy" else -1

    @property
    def symbol(self) -> str:
        return self.spec.upper

    def leaves_lots(self) -> int:
        return self.qty_lots - self.cum_lots if self.is_open else 0

    def body(self) -> dict:
        """The order as the `order` topic and `/v5/order/realtime` carry it."""
        spec = self.spec
        leaves = self.leaves_lots()
        px = float(self.price_text) if self.price_text else 0.0
        cum_qty = self.cum_lots * spec.step
        avg = self.cum_value / cum_qty if cum_qty else 0.0
        fee = f"{self.cum_fee:.8f}"
        return {
            "category": "linear",
            "orderId": self.order_id,
            "orderLinkId": self.link_id,
            "blockTradeId": "",
            "symbol": spec.upper,
            "price": self.price_text,
            "qty": spec.qty(self.qty_lots),
            "side": self.side,
            "isLeverage": "",
            "positionIdx": 0,
            "orderStatus": self.status,
            "createType": "CreateByUser",
            "cancelType": self.cancel_type,
            "rejectReason": self.reject_reason,
            # "" until something fills (§2.3); the exact decimals of avgPrice: UNCONFIRMED
            "avgPrice": _dec(avg, spec.price_dp + 2) if cum_qty else "",
            "leavesQty": spec.qty(leaves),
            "leavesValue": _dec(leaves * spec.step * px, 8),
            "cumExecQty": spec.qty(self.cum_lots),
            "cumExecValue": _dec(self.cum_value, 8),
            "cumExecFee": fee,
            "cumFeeDetail": {"USDT": fee} if self.cum_lots else {},
            "closedPnl": _dec(self.closed_pnl, 8),
            "timeInForce": self.tif,
            "orderType": self.order_type,
            "stopOrderType": "",
            "orderIv": "",
            "marketUnit": "",
            "slippageToleranceType": "UNKNOWN",
            "slippageTolerance": "0",
            "triggerPrice": "",
            "takeProfit": "",
            "stopLoss": "",
            "tpslMode": "",
            "ocoTriggerBy": "",
            "tpLimitPrice": "",
            "slLimitPrice": "",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "triggerDirection": 0,
            "triggerBy": "",
            "lastPriceOnCreated": self.last_px_on_created,
            "reduceOnly": self.reduce_only,
            "closeOnTrigger": False,
            "placeType": "",
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "parentOrderLinkId": "",
            "createdTime": str(self.created_ms),
            "updatedTime": str(self.updated_ms or self.created_ms),
        }


def _dec(x: float, dp: int) -> str:
    """A float as a plain decimal string without trailing zeros ("0" for zero)."""
    text = f"{x:.{dp}f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def need(p: dict, name: str) -> str:
    """A required string parameter.

    Raises:
        BybitError: 10001 naming the parameter.
    """
    v = p.get(name)
    if v is None or v == "":
        raise params(f"{name} is required")
    if not isinstance(v, str):
        raise params(f"{name} must be a string")
    return v


def enum(p: dict, name: str, legal: tuple[str, ...], default: str | None = None) -> str:
    v = p.get(name, default)
    if v not in legal:
        raise params(f"{name} must be one of {'/'.join(legal)}, got {v!r}")
    return v


def flag(p: dict, name: str) -> bool:
    v = p.get(name, False)
    if isinstance(v, bool):
        return v
    if v in ("true", "false"):  # a query string's form
        return v == "true"
    raise params(f"{name} must be a boolean")


def _grid(text: str, unit: str, what: str) -> int:
    """How many `unit`s `text` is, exactly.

    Raises:
        BybitError: 10001 when `text` is not a positive decimal on the grid.
    """
    try:
        d = Decimal(text)
    except (InvalidOperation, TypeError):
        raise params(f"{what} {text!r} is not a decimal") from None
    if not d.is_finite() or d <= 0:
        raise params(f"{what} {text!r} must be positive")
    n, rest = divmod(d, Decimal(unit))
    if rest != 0:
        raise params(f"{what} {text!r} is not a multiple of {unit}")
    return int(n)


def qty_lots(p: dict, spec: SymbolSpec, market: bool) -> int:
    """The `qty` parameter in lots; see the module docstring for the codes."""
    lots = _grid(need(p, "qty"), spec.step_size, "qty")
    if lots * spec.step_units < Decimal(spec.min_qty) * 10**spec.qty_dp:
        raise BybitError(110017, f"qty {p['qty']} is below minOrderQty {spec.min_qty}")
    cap = spec.market_max_qty if market else spec.max_qty
    if Decimal(p["qty"]) > Decimal(cap):
        raise params(f"qty {p['qty']} exceeds the maximum {cap}")
    return lots


def price_tick(p: dict, spec: SymbolSpec) -> int:
    """The `price` parameter of a Limit order in ticks."""
    text = need(p, "price")
    tick = _grid(text, spec.tick_size, "price")
    d = Decimal(text)
    if d < Decimal(spec.min_price) or d > Decimal(spec.max_price):
        raise BybitError(110003)
    return tick


def link_id(p: dict) -> str:
    v = p.get("orderLinkId", "")
    if v == "":
        return ""
    if not isinstance(v, str) or not LINK_ID_RE.match(v):
        raise params("orderLinkId must be at most 36 characters of A-Z a-z 0-9 _ -")
    return v
