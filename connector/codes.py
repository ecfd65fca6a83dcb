"""The connector's own refusal codes, defined once, with their neutral reasons.

A refused request reaches its bot with a raw code (LiveError.code) and a venue-neutral
reason (LiveError.reason, hftlive.constants.REJECT_*). Venue codes are the venue's own
(Binance's are negative four-digit numbers, Bybit's positive five-digit ones); the
connector's are below -9000 so they never collide with a venue's.

-9001..-9099: the connector's risk checks and request validation (nothing was sent);
-9101..-9199: the way to the venue (the request was not sent, or the venue asked to wait).
"""

from __future__ import annotations

from hftlive.constants import (
    REJECT_DUPLICATE_ID,
    REJECT_HALTED,
    REJECT_INVALID_QTY,
    REJECT_NOT_CONNECTED,
    REJECT_POST_ONLY,
    REJECT_RATE_LIMITED,
    REJECT_REDUCE_ONLY,
    REJECT_RISK_LIMIT,
    REJECT_STOPPING,
    REJECT_UNKNOWN_ORDER,
)

RISK_MAX_POSITION = -9001  # the order could take the position beyond max_position
RISK_MAX_NOTIONAL = -9002  # the order's notional exceeds max_order_notional
RISK_ORDER_RATE = -9003  # more than max_orders_per_second
DUPLICATE_ORDER_ID = -9004  # the bot's order id is still open
CONNECTOR_STOPPING = -9005  # the connector is shutting down
UNKNOWN_ORDER = -9006  # cancel/modify of an order the connector does not know (or ended)
BELOW_MINIMUM = -9007  # qty or notional below the venue's minimum (its filters)
HALTED = -9008  # trading is halted for the bot or the connector
REDUCE_ONLY = -9009  # trading is reducing: the order would not reduce the bot's position
# a post-only order the venue accepted and then cancelled because it would have taken
# liquidity: the refusal comes on the order stream, with no code of the venue's (Bybit's
# EC_PostOnlyWillTakeLiquidity, venue_protocols.md §2.5)
POST_ONLY_CROSSED = -9010

NOT_READY = -9101  # the venue session is not connected: the request could not be sent
PAUSED = -9102  # the venue asked us to back off (Retry-After): nothing is sent meanwhile
NOT_SENT = -9103  # the connection to the venue failed before the request left
THROTTLED = -9104  # refused locally, near the venue's order rate limit

REASONS = {
    RISK_MAX_POSITION: REJECT_RISK_LIMIT,
    RISK_MAX_NOTIONAL: REJECT_RISK_LIMIT,
    RISK_ORDER_RATE: REJECT_RISK_LIMIT,
    DUPLICATE_ORDER_ID: REJECT_DUPLICATE_ID,
    CONNECTOR_STOPPING: REJECT_STOPPING,
    UNKNOWN_ORDER: REJECT_UNKNOWN_ORDER,
    BELOW_MINIMUM: REJECT_INVALID_QTY,
    HALTED: REJECT_HALTED,
    REDUCE_ONLY: REJECT_REDUCE_ONLY,
    POST_ONLY_CROSSED: REJECT_POST_ONLY,
    NOT_READY: REJECT_NOT_CONNECTED,
    PAUSED: REJECT_RATE_LIMITED,
    NOT_SENT: REJECT_NOT_CONNECTED,
    THROTTLED: REJECT_RATE_LIMITED,
}

MESSAGES = {
    UNKNOWN_ORDER: "no such open order",
}
