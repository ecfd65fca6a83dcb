"""Constants with hftbacktest's names and values (reference §4), plus hftlive's own.

Strategies compare against these names, never against literals. Everything here is a
plain Python int so numba freezes it as a compile-time constant.
"""

from __future__ import annotations

# Sides (hftbacktest.order)
BUY = 1
SELL = -1

# Order status, also used as `req` (hftbacktest.order; REPLACED exists only in Rust)
NONE = 0
NEW = 1
EXPIRED = 2
FILLED = 3
CANCELED = 4
PARTIALLY_FILLED = 5
REJECTED = 6
REPLACED = 7
UNSUPPORTED = 255

# Time in force
GTC = 0
GTX = 1
FOK = 2
IOC = 3

# Order type
LIMIT = 0
MARKET = 1

# Event kinds (low byte of `ev`)
DEPTH_EVENT = 1
TRADE_EVENT = 2
DEPTH_CLEAR_EVENT = 3
DEPTH_SNAPSHOT_EVENT = 4
DEPTH_BBO_EVENT = 5
ADD_ORDER_EVENT = 10
CANCEL_ORDER_EVENT = 11
MODIFY_ORDER_EVENT = 12
FILL_EVENT = 13

# Event flags
EXCH_EVENT = 1 << 31
LOCAL_EVENT = 1 << 30
BUY_EVENT = 1 << 29
SELL_EVENT = 1 << 28

LOCAL_BID_DEPTH_EVENT = LOCAL_EVENT | BUY_EVENT | DEPTH_EVENT
LOCAL_ASK_DEPTH_EVENT = LOCAL_EVENT | SELL_EVENT | DEPTH_EVENT
LOCAL_BUY_TRADE_EVENT = LOCAL_EVENT | BUY_EVENT | TRADE_EVENT
LOCAL_SELL_TRADE_EVENT = LOCAL_EVENT | SELL_EVENT | TRADE_EVENT
LOCAL_BID_DEPTH_BBO_EVENT = LOCAL_EVENT | BUY_EVENT | DEPTH_BBO_EVENT
LOCAL_ASK_DEPTH_BBO_EVENT = LOCAL_EVENT | SELL_EVENT | DEPTH_BBO_EVENT
LOCAL_DEPTH_CLEAR_EVENT = LOCAL_EVENT | DEPTH_CLEAR_EVENT

# Misc (hftbacktest.types)
ALL_ASSETS = -1
UNTIL_END_OF_DATA = 9223372036854775807
INVALID_MIN = -9223372036854775808
INVALID_MAX = 9223372036854775807

# Return codes. 0-3 and 10-15 are the backtester's (reference §1.3); 16 and 19 are
# hftbacktest live's (§6.3); 20 and up are hftlive's own.
OK = 0
END_OF_DATA = 1
MARKET_FEED = 2
ORDER_RESPONSE = 3
ORDER_ID_EXIST = 10
ORDER_REQUEST_IN_PROCESS = 11
ORDER_NOT_FOUND = 12
INVALID_ORDER_REQUEST = 13
INVALID_ORDER_STATUS = 14
INSTRUMENT_NOT_FOUND = 16
CUSTOM_ERROR = 19  # an error handler asked the bot to stop
CONNECTOR_LOST = 20  # the connector process died or stopped publishing its heartbeat
REQUEST_QUEUE_FULL = 21  # the request ring to the connector is full; nothing was sent

# Wait policies of a LiveBot (how it waits for the next event)
WAIT_SPIN = 0  # busy-spin: lowest latency, one core at 100%
WAIT_YIELD = 1  # spin, then sched_yield between polls
WAIT_SLEEP = 2  # spin briefly, then sleep in short slices: the default, kind to small machines

# Error kinds delivered to a bot's error_handler (LiveError.kind)
ERR_ORDER = 1  # the venue or the connector's risk checks rejected an order request
ERR_CONNECTION = 2  # the connector lost (or regained) its venue connection
ERR_BOOK_RESYNC = 3  # a book was cleared and resynchronised (venue gap or slow reader)
ERR_CONNECTOR = 4  # the connector is shutting down or is gone
ERR_CUSTOM = 5  # anything else the connector wants a bot to know
ERR_TRADING_STATE = 6  # the bot's trading state changed; LiveError.code is the new TRADING_*

# Trading states, per connector and per bot (the stricter of the two applies), set by
# `python -m hftlive halt|reduce|resume` and kept across a connector restart
TRADING_ACTIVE = 0  # every order the risk limits allow
TRADING_REDUCING = 1  # only orders that reduce the bot's position (cancels always go)
TRADING_HALTED = 2  # no new order and no modify (cancels always go)
TRADING_NAMES = ("active", "reducing", "halted")

# LiveError.code of ERR_CONNECTION events: 0 when a connection is lost, and
CONNECTION_RESTORED = 1  # the venue session is back, open orders, fills and positions reconciled

# Venue-neutral reject reasons (LiveError.reason; njit: hbt.last_error_reason): what a
# refused request means on any venue. LiveError.code keeps the raw code beside it (the
# venue's, e.g. Binance -5022, or the connector's own, connector/codes.py), so a handler
# can act on one vocabulary everywhere and still log the venue's exact answer.
REJECT_NONE = 0  # not a rejection (connection notices, book resyncs, ...)
REJECT_OTHER = 1  # a refusal with no neutral meaning (yet): read LiveError.code
REJECT_POST_ONLY = 2  # a post-only (GTX) order would have crossed and taken liquidity
REJECT_INSUFFICIENT_MARGIN = 3  # not enough margin or balance for the order
REJECT_UNKNOWN_ORDER = 4  # no such open order (it ended, or never reached the venue)
REJECT_RATE_LIMITED = 5  # the venue's rate limit, or the connector's throttle ahead of it
REJECT_INVALID_PRICE = 6  # price off the tick grid, outside the venue's bands, ...
REJECT_INVALID_QTY = 7  # quantity off the lot grid, below the minimum, notional too small
REJECT_REDUCE_ONLY = 8  # a reduce-only order would have increased the position
REJECT_RISK_LIMIT = 9  # the connector's risk limits: position, order notional, order rate
REJECT_NOT_CONNECTED = 10  # the venue session (or the way to it) is down: nothing was sent
REJECT_WOULD_NOT_FILL = 11  # FOK/IOC that could not fill (as required) at once
REJECT_DUPLICATE_ID = 12  # the order id is already in use by an open order
REJECT_STOPPING = 13  # the connector is shutting down
REJECT_NO_CHANGE = 14  # a modify that changes nothing
REJECT_VENUE_BUSY = 15  # the venue was overloaded or failed internally; nothing happened
REJECT_HALTED = 16  # trading is halted for this bot or connector (python -m hftlive halt)
