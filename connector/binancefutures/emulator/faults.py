"""Fault switches of the emulator, set in-process or over `POST /_emulator/faults`.

Standing switches live in `Faults` (a plain mutable dataclass: tests may assign fields
directly, e.g. `emu.faults.drop_depth = 1`). Counters ("the next N ...") are consumed one
per use by `take`. One-shot actions (disconnect a stream kind, expire listen keys) are
methods of the Emulator; the control endpoint accepts them in the same JSON object:

    POST /_emulator/faults
    {"drop_depth": 1, "ack_delay_ms": 200, "reject_orders": [-2019],
     "disconnect": "public", "expire_listen_keys": true, "silence": "ws-api"}

Unknown keys or wrongly typed values are refused as a whole (nothing is applied), naming
the key, so a typo in a test never silently does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import orjson

from connector.emulator_kit.control import split_request as kit_split_request

DISCONNECT_KINDS = ("all", "public", "market", "private", "ws-api")
ACTIONS = {"disconnect": str, "abort": bool, "expire_listen_keys": bool, "silence": str}
ACTION_VALUES = {"disconnect": DISCONNECT_KINDS, "silence": DISCONNECT_KINDS}

# The bodies of the injected server errors (§1.8). Binance documents the 503 texts; the
# codes sent with them are UNCONFIRMED: -1000 UNKNOWN and -1001 DISCONNECTED, after the
# error-code page's names [BN-ERR].
UNKNOWN_503 = (-1000, "Unknown error, please check your request or try again later.")
DISCONNECTED = (-1001, "Internal error; unable to process your request. Please try again.")
REORDER_HOLD_MS = 300  # a reordered event with no successor is sent this late


@dataclass
class Faults:
    """Standing fault switches. Counters count requests/events still to be affected.

    Attributes:
        drop_depth: the next N diff-depth events are not sent to anyone; the venue's book
            still applies them, so the next event's `pu` shows the gap (§1.4 step 5).
        corrupt_pu: the next N diff-depth events are sent with a `pu` that does not chain.
        pause_market: the market source stops (a stale feed); sockets stay open.
        ack_delay_ms: order requests (REST and WS-API) execute at once, and their reply is
            held this long, so user-stream events arrive first.
        lose_acks: the next N order requests execute but get no reply at all (REST: the
            request hangs until the client gives up; WS-API: no response frame).
        reject_orders: the next new orders are rejected with these codes, in turn.
        http_429: the next N REST requests get 429 (-1003) with Retry-After.
        http_418: the next N REST requests get 418 (-1003, banned) with Retry-After.
        retry_after_s: the Retry-After of injected 429/418 replies.
        clock_skew_ms: added to the server clock (serverTime, E/T stamps, the -1021 check).
        listen_key_expired_e_str: send listenKeyExpired.E as a string, as seen in real
            traffic before 2026 (§0.6); otherwise an integer.
        garbage_public: the next N market-data payloads sent on `/public` streams (depth,
            bookTicker) are malformed (`garble`): alternately cut to half their length
            (truncated JSON; the last of the run is one of these) and replaced by valid
            JSON of the same event type with every other field missing. The venue's book
            still applies a garbled diff, so the next diff's `pu` shows the gap, as with
            `drop_depth`. Only payloads someone is subscribed to count.
        garbage_market: the same for payloads sent on `/market` streams (trade, aggTrade).
        refuse_ws_api: new WebSocket API connections are refused (HTTP 503 to the
            upgrade) while set; pair it with `disconnect: "ws-api"` for an outage.
        lose_user_events: the next N user-data events (ORDER_TRADE_UPDATE, TRADE_LITE,
            ACCOUNT_UPDATE) are never delivered, as events in flight when a connection
            dies; the account still changes. Pair it with `disconnect: "private"` or
            `expire_listen_keys` to test recovery.
        http_503: the next N order requests (new, modify, cancel; REST and WS-API) get
            HTTP 503 (WS-API: `status` 503) with Binance's "Unknown error, please check
            your request or try again later." body: the execution status is UNKNOWN
            (§1.8). Whether the venue executed it is `http_503_executed`.
        http_503_executed: with `http_503`, the request is executed (the order exists,
            its user-stream events go out) and only the reply is the 503; when False it
            is not executed at all.
        disconnected_1001: the next N order requests get -1001 DISCONNECTED ("Internal
            error; unable to process your request. Please try again.", HTTP 503): a
            definite failure, never executed; safe to resend (§1.8).
        dup_user_events: the next N user-data events are delivered twice in a row.
        reorder_user_events: the next N user-data events are held back and delivered, in
            their order, right after the event that follows them (N=1 swaps two events;
            N=3 on a MARKET order's NEW, TRADE_LITE, ACCOUNT_UPDATE, TRADE sends the
            FILLED update first). Held events with no successor go out `REORDER_HOLD_MS`
            late. Binance promises order on one connection and advises ordering by `E`
            (§1.5), whose ms ties leave the order of one request's events open.
        hedge_mode: the account is in hedge mode (a setting, not a fault): GET
            /fapi/v1/positionSide/dual answers `{"dualSidePosition": true}`, GET
            /fapi/v2/positionRisk lists a LONG and a SHORT entry per symbol, and a new
            order (REST and WS-API) without positionSide LONG or SHORT is refused with
            -4061, as one with a positionSide other than BOTH is in one-way mode. Orders
            with LONG/SHORT are refused too (-1000): hedge-mode positions are not
            emulated. Set it before a client starts (Binance refuses a mode switch while
            positions or orders are open; the emulator does not check that).
        ws_api_429: the next N WebSocket API requests get `status` 429 with error -1003
            and `error.data.retryAfter` (a ms timestamp, `retry_after_s` ahead), spot's
            WS-API shape (UNCONFIRMED for futures). As on REST, a request sent before
            `retryAfter` gets the IP banned: `status` 418, and the WS-API connection is
            closed after that reply [BN-SPOT-WSAPI]; the ban lasts the config's `ban_s`
            and covers REST too (one IP).

    Actions (not fields; in the same POST body): `disconnect: kind` (with `abort`),
    `expire_listen_keys: true`, and `silence: kind` (all/public/market/private/ws-api):
    the connections of that kind open now go half-dead, as a TCP connection whose path
    died without a FIN or RST: the client's frames never reach the venue (requests are
    not executed), the venue sends nothing (no replies, events, market data, pings or
    pongs), and neither side is told. Only a client-side watchdog can notice. New
    connections are healthy (a reconnect takes a new path).
    """

    drop_depth: int = 0
    corrupt_pu: int = 0
    pause_market: bool = False
    ack_delay_ms: int = 0
    lose_acks: int = 0
    reject_orders: list[int] = field(default_factory=list)
    http_429: int = 0
    http_418: int = 0
    retry_after_s: int = 1
    clock_skew_ms: int = 0
    listen_key_expired_e_str: bool = False
    garbage_public: int = 0
    garbage_market: int = 0
    lose_user_events: int = 0
    refuse_ws_api: bool = False
    http_503: int = 0
    http_503_executed: bool = False
    disconnected_1001: int = 0
    dup_user_events: int = 0
    reorder_user_events: int = 0
    ws_api_429: int = 0
    hedge_mode: bool = False

    def take(self, name: str) -> bool:
        """Consumes one unit of counter `name`; True if there was one."""
        n = getattr(self, name)
        if n > 0:
            setattr(self, name, n - 1)
            return True
        return False

    def take_server_error(self) -> tuple[int, str, bool] | None:
        """The next injected 503 / -1001 for an order request, or None (consumes one):
        (code, msg, executed)."""
        if self.take("disconnected_1001"):
            return (*DISCONNECTED, False)
        if self.take("http_503"):
            return (*UNKNOWN_503, self.http_503_executed)
        return None

    def take_reject(self) -> int | None:
        """The next injected reject code, or None."""
        return self.reject_orders.pop(0) if self.reject_orders else None

    def as_dict(self) -> dict:
        """Current switches, JSON-ready."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def garble(payload: bytes, left: int) -> bytes:
    """The malformed payload sent instead of `payload` while `left` (>= 1, this one
    included) garbage payloads remain: odd `left` cuts it to half its length (truncated
    JSON), even `left` keeps only its event type (`{"e":"trade"}`: every field missing)."""
    if left % 2:
        return payload[: len(payload) // 2]
    return orjson.dumps({"e": orjson.loads(payload).get("e", "")})


def split_request(body: object) -> tuple[dict, dict]:
    """Validates a control-endpoint body; returns (switches, actions) (ValueError naming
    the key)."""
    return kit_split_request(body, Faults, ACTIONS, ACTION_VALUES, code_sign=-1)
