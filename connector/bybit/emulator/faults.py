"""Fault switches of the Bybit emulator, set in-process or over `POST /_emulator/faults`.

Standing switches live in `Faults` (a plain mutable dataclass: tests may assign fields,
e.g. `emu.faults.drop_delta = 1`). Counters ("the next N ...") are consumed one per use by
`take`. One-shot actions ride in the same JSON object and are carried out by the emulator:

    POST /_emulator/faults
    {"lose_acks": 1, "reject_orders": [110007], "disconnect": "private", "restart": true}

Unknown keys or wrongly typed values are refused as a whole (nothing is applied) with the
key named, so that a typo in a test never silently does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from connector.emulator_kit.control import split_request as kit_split_request

KINDS = ("public", "private", "trade")
ACTIONS = {"disconnect": str, "snapshot": bool, "restart": bool, "silence": str}
ACTION_VALUES = {"disconnect": (*KINDS, "all"), "silence": KINDS}


@dataclass
class Faults:
    """Standing fault switches; counters count what is still to be affected.

    Attributes:
        lose_acks: the next N order requests (REST or trade WS) execute but get no reply:
            REST hangs until the client's timeout; the trade WS sends no response frame.
        ack_delay_ms: order replies are held this long; private events go first.
        stream_latency_ms: each frame a client sends on a public, private or trade stream
            is handled this much later, as a network's one-way latency would (pybit records
            a subscription or a trade request only after sending it, so a reply faster
            than that, on a loaded loopback, is dropped or raises in its reader thread).
        lose_private_events: the next N private pushes are never delivered; the account
            still changes.
        dup_private_events: the next N private pushes are delivered twice.
        reject_orders: the next new orders are refused with these retCodes, in turn.
        rate_limit: the next N order requests get retCode 10006 "Too many visits" with
            `X-Bapi-Limit-Status: 0` and a reset timestamp 1 s ahead.
        clock_skew_ms: added to the server clock (timestamps, window checks).
        garbage_public: the next N public frames are malformed: alternately truncated
            JSON and a frame with `data` missing.
        replay_delta: the next N orderbook deltas are followed by a resend of the same
            delta (a non-increasing `u`).
        drop_delta: the next N orderbook deltas are not sent; the venue's book applies them.
        pause_market: the market source stops (a quiet feed); sockets stay open.
        refuse_trade: new trade-WS connections are refused (HTTP 503) while set.
        hedge_mode: every symbol is in hedge mode, "both sides" (a setting, not a fault):
            GET /v5/position/list lists two legs per symbol, positionIdx 1 (buy side) and
            2 (sell side), and a new order (REST or trade WS) without positionIdx 1 or 2
            is refused with 10001 "position idx not match position mode", as one with a
            positionIdx other than 0 is in one-way mode. Orders with 1 or 2 are refused
            too (10001): hedge-mode positions are not emulated. Set it before a client
            starts (Bybit refuses a mode switch while a position or orders are open; the
            emulator does not check that).

    Actions: `disconnect` (public/private/trade/all), `snapshot: true` (a mid-stream
    snapshot on every orderbook topic), `restart: true` (the book service restarts: the
    next orderbook message is a snapshot with u = 1), `silence` (public/private/trade:
    connections of that kind open now go half-dead, nothing in, nothing out, nobody told).
    """

    lose_acks: int = 0
    ack_delay_ms: int = 0
    stream_latency_ms: int = 0
    lose_private_events: int = 0
    dup_private_events: int = 0
    reject_orders: list[int] = field(default_factory=list)
    rate_limit: int = 0
    clock_skew_ms: int = 0
    garbage_public: int = 0
    replay_delta: int = 0
    drop_delta: int = 0
    pause_market: bool = False
    refuse_trade: bool = False
    hedge_mode: bool = False

    def take(self, name: str) -> bool:
        """Consumes one unit of counter `name`; True if there was one."""
        n = getattr(self, name)
        if n > 0:
            setattr(self, name, n - 1)
            return True
        return False

    def take_reject(self) -> int | None:
        """The next injected retCode for a new order, or None."""
        return self.reject_orders.pop(0) if self.reject_orders else None

    def as_dict(self) -> dict:
        """Current switches, JSON-ready."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def split_request(body: object) -> tuple[dict, dict]:
    """Validates a control-endpoint body; returns (switches, actions) (ValueError naming
    the key)."""
    return kit_split_request(body, Faults, ACTIONS, ACTION_VALUES, code_sign=1)
