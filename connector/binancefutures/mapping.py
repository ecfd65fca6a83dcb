"""Binance USD-M futures enums and their hftbacktest codes (venue_protocols.md §1.5, §1.6).

Venue strings stay strings in the parsed messages; these functions map them where the
connector needs hftbacktest's codes, and the *_NAMES tables map back for requests.
"""

from __future__ import annotations

from connector.errors import VenueProtocolError
from hftlive import constants as R
from hftlive.constants import (
    BUY,
    CANCELED,
    EXPIRED,
    FILLED,
    FOK,
    GTC,
    GTX,
    IOC,
    LIMIT,
    MARKET,
    NEW,
    PARTIALLY_FILLED,
    SELL,
    UNSUPPORTED,
)

GTX_REJECT_CODE = -5022  # post-only would take: HTTP 400, order not recorded (§1.8)

# Venue enums as strings (§1.5 ORDER_TRADE_UPDATE, §1.6 order response [BN-COMMON]).
ORDER_STATUSES = frozenset(
    ("NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED")
)
EXEC_TYPES = frozenset(("NEW", "CANCELED", "CALCULATED", "EXPIRED", "TRADE", "AMENDMENT"))
SIDES = frozenset(("BUY", "SELL"))

_STATUS_CODE = {
    "NEW": NEW,
    "PARTIALLY_FILLED": PARTIALLY_FILLED,
    "FILLED": FILLED,
    "CANCELED": CANCELED,
    "EXPIRED": EXPIRED,
    # STP expiry during matching: the order is gone without a cancel request.
    "EXPIRED_IN_MATCH": EXPIRED,
    # hftbacktest's backtester marks a rejected new order EXPIRED; REJECTED=6 is internal.
    "REJECTED": EXPIRED,
}
_TIF_CODE = {"GTC": GTC, "GTX": GTX, "FOK": FOK, "IOC": IOC}
_TYPE_CODE = {"LIMIT": LIMIT, "MARKET": MARKET}
SIDE_NAMES = {BUY: "BUY", SELL: "SELL"}
TIF_NAMES = {v: k for k, v in _TIF_CODE.items()}
ORDER_TYPE_NAMES = {v: k for k, v in _TYPE_CODE.items()}


def order_status(status: str) -> int:
    """Maps an order status `X` (stream) or `status` (REST) to an hftbacktest status.

    The execution type `x` never changes the result: it says what happened (`is_fill`),
    `X` says where the order is now. A rejected submit (any REST error, -5022 included)
    also ends EXPIRED, which the connector applies itself since no order body comes back.

    Raises:
        VenueProtocolError: `status` is not a documented order status.
    """
    try:
        return _STATUS_CODE[status]
    except KeyError:
        raise VenueProtocolError(f"unknown order status {status!r}") from None


def is_fill(exec_type: str) -> bool:
    """True when an ORDER_TRADE_UPDATE execution type `x` carries a fill (l, L, t)."""
    return exec_type == "TRADE" or exec_type == "CALCULATED"  # CALCULATED: liquidation fill


def side_code(side: str) -> int:
    """BUY -> BUY (1), SELL -> SELL (-1); anything else raises VenueProtocolError."""
    if side == "BUY":
        return BUY
    if side == "SELL":
        return SELL
    raise VenueProtocolError(f"unknown side {side!r}")


def tif_code(tif: str) -> int:
    """GTC/GTX/FOK/IOC -> hftbacktest codes; GTD, RPI and others -> UNSUPPORTED."""
    return _TIF_CODE.get(tif, UNSUPPORTED)


def order_type_code(order_type: str) -> int:
    """LIMIT/MARKET -> hftbacktest codes; STOP, LIQUIDATION, ... -> UNSUPPORTED."""
    return _TYPE_CODE.get(order_type, UNSUPPORTED)


# Binance's refusal codes (§1.8) as venue-neutral reasons; any other code: REJECT_OTHER
_REASONS = {
    -5022: R.REJECT_POST_ONLY,
    -2019: R.REJECT_INSUFFICIENT_MARGIN,
    -2018: R.REJECT_INSUFFICIENT_MARGIN,  # balance insufficient
    -2011: R.REJECT_UNKNOWN_ORDER,
    -2013: R.REJECT_UNKNOWN_ORDER,
    -1003: R.REJECT_RATE_LIMITED,
    -1015: R.REJECT_RATE_LIMITED,
    -1008: R.REJECT_VENUE_BUSY,
    -1001: R.REJECT_VENUE_BUSY,
    -4003: R.REJECT_INVALID_QTY,
    -4023: R.REJECT_INVALID_QTY,
    -4164: R.REJECT_INVALID_QTY,  # MIN_NOTIONAL
    -1013: R.REJECT_INVALID_QTY,  # a filter failure (LOT_SIZE, MIN_NOTIONAL, ...)
    -1111: R.REJECT_INVALID_QTY,
    -4013: R.REJECT_INVALID_PRICE,
    -4014: R.REJECT_INVALID_PRICE,
    -4016: R.REJECT_INVALID_PRICE,
    -4024: R.REJECT_INVALID_PRICE,
    -4131: R.REJECT_INVALID_PRICE,
    -2022: R.REJECT_REDUCE_ONLY,
    -5021: R.REJECT_WOULD_NOT_FILL,
    -5027: R.REJECT_NO_CHANGE,
    -4116: R.REJECT_DUPLICATE_ID,
}


def reject_reason(code: int) -> int:
    """The neutral reason (hftlive.constants.REJECT_*) of a Binance refusal code."""
    return _REASONS.get(code, R.REJECT_OTHER)
