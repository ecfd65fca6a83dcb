"""Bybit v5 enums and codes as hftbacktest's (venue_protocols.md §2.3, §2.5, §3.2). Pure.

Order status [BY enum.mdx] -> hftlive.constants:

========================= ================= ==============================================
orderStatus               status            why
========================= ================= ==============================================
New, Untriggered          NEW               working (we send no conditional orders)
Triggered                 NEW               a passing state towards New
PartiallyFilled           PARTIALLY_FILLED
Filled                    FILLED
Cancelled                 CANCELED          (in derivatives a Cancelled order may have fills)
Cancelled + EC_PostOnly   EXPIRED           a PostOnly that would have crossed: accepted
WillTakeLiquidity, no                       with retCode 0, then cancelled by the venue
fills                                       (§2.5). hftbacktest's backtester shows a GTX
                                            that would cross as EXPIRED, and strategies
                                            were tested against it; the bot also gets
                                            REJECT_POST_ONLY (connector.codes.
                                            POST_ONLY_CROSSED) with the final record
PartiallyFilledCanceled   CANCELED          (spot only per the docs; mapped all the same)
Rejected                  EXPIRED           as hftbacktest's connector and backtester
Deactivated               CANCELED          a conditional order cancelled before trigger
========================= ================= ==============================================

retCode [BY error.mdx] -> the neutral REJECT_* reason (`reject_reason`); any code not
listed is REJECT_OTHER, with the raw code beside it for the bot.
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
)

POST_ONLY_REASON = "EC_PostOnlyWillTakeLiquidity"

_STATUS = {
    "New": NEW,
    "Untriggered": NEW,
    "Triggered": NEW,
    "PartiallyFilled": PARTIALLY_FILLED,
    "Filled": FILLED,
    "Cancelled": CANCELED,
    "PartiallyFilledCanceled": CANCELED,
    "Rejected": EXPIRED,
    "Deactivated": CANCELED,
}

SIDE_NAMES = {BUY: "Buy", SELL: "Sell"}
TIF_NAMES = {GTC: "GTC", GTX: "PostOnly", FOK: "FOK", IOC: "IOC"}
ORDER_TYPE_NAMES = {LIMIT: "Limit", MARKET: "Market"}


def is_post_only_cross(status: str, reject_reason: str, cum_qty: float) -> bool:
    """A PostOnly the venue cancelled because it would have taken liquidity (§2.5)."""
    return status == "Cancelled" and reject_reason == POST_ONLY_REASON and cum_qty <= 0.0


def order_status(status: str, reject_reason: str = "", cum_qty: float = 0.0) -> int:
    """An `orderStatus` (with its `rejectReason` and `cumExecQty`) as hftbacktest's status.

    Raises:
        VenueProtocolError: not a documented order status.
    """
    if is_post_only_cross(status, reject_reason, cum_qty):
        return EXPIRED
    try:
        return _STATUS[status]
    except KeyError:
        raise VenueProtocolError(f"unknown orderStatus {status!r}") from None


def side_code(side: str) -> int:
    if side == "Buy":
        return BUY
    if side == "Sell":
        return SELL
    raise VenueProtocolError(f"unknown side {side!r}")


# retCode -> neutral reason [BY error.mdx; §2.4 "WS OE General code"]
_REASONS = {
    10006: R.REJECT_RATE_LIMITED,  # too many visits (API rate limit)
    10403: R.REJECT_RATE_LIMITED,  # trade WS: IP limit
    10429: R.REJECT_RATE_LIMITED,  # trade WS: system frequency protection
    20003: R.REJECT_RATE_LIMITED,  # trade WS: too frequent in this session
    10016: R.REJECT_VENUE_BUSY,  # server error / restarting
    10019: R.REJECT_VENUE_BUSY,  # trade service restarting
    110001: R.REJECT_UNKNOWN_ORDER,  # order does not exist
    110008: R.REJECT_UNKNOWN_ORDER,  # order already completed or cancelled
    110003: R.REJECT_INVALID_PRICE,  # price out of the allowed range
    110004: R.REJECT_INSUFFICIENT_MARGIN,
    110006: R.REJECT_INSUFFICIENT_MARGIN,
    110007: R.REJECT_INSUFFICIENT_MARGIN,
    110012: R.REJECT_INSUFFICIENT_MARGIN,
    110017: R.REJECT_INVALID_QTY,  # qty would truncate to zero
    110094: R.REJECT_INVALID_QTY,  # notional below the minimum
    110020: R.REJECT_RISK_LIMIT,  # more than 500 active orders
    110072: R.REJECT_DUPLICATE_ID,  # duplicate orderLinkId
    110079: R.REJECT_VENUE_BUSY,  # order is processing; retry later
}


def reject_reason(code: int) -> int:
    """The neutral reason (hftlive.constants.REJECT_*) of a Bybit retCode."""
    return _REASONS.get(code, R.REJECT_OTHER)
