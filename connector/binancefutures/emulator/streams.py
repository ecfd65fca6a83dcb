"""WebSocket side of the emulator: connections, market-stream routing, the user stream.

Connection rules (§1.2, §1.7), with timers shortened by config for tests:

* the server sends a ping frame every `ping_interval_s` (Binance: 180 s) and drops a
  connection that sent no pong for `pong_timeout_s` (600 s); market streams count any
  pong (unsolicited pongs are allowed), the WS-API only a pong echoing a ping payload;
* on market streams, more than `max_incoming_per_s` frames (10) in one second, pings and
  pongs included, close the connection (the WS-API has no such rule: it is limited by
  request weight and order counts, §1.7); so does a send queue that fills up;
* a connection is closed after `max_lifetime_s` (24 h).

Routing (§0.1, §1.2): `@depth*` and `@bookTicker` streams are served on `/public`,
everything else (`@trade`, `@aggTrade`, ...) on `/market`. A stream asked for on the wrong
route is accepted, listed, and sends nothing. Legacy `/ws` and `/stream` paths behave as
`/public`. `/ws/...` payloads are bare; `/stream` payloads are wrapped as
`{"stream":name,"data":payload}`.
"""

from __future__ import annotations

import logging
import time

import orjson

from connector.binancefutures.emulator.errors import ApiError
from connector.emulator_kit.ws import Conn, Timers

log = logging.getLogger(__name__)

PUBLIC, MARKET, PRIVATE, WSAPI = "public", "market", "private", "ws-api"


def stream_route(name: str) -> str:
    """The routed path a stream lives on (§0.1)."""
    if name == "!bookTicker" or name.endswith("@bookTicker") or "@depth" in name:
        return PUBLIC
    if "@rpiDepth" in name:
        return PUBLIC
    return MARKET


class MarketConn(Conn):
    """A `/public` or `/market` (or legacy) connection and its subscriptions."""

    def __init__(self, ws, route: str, combined: bool, timers: Timers, transport):
        super().__init__(ws, route, timers, transport)
        self.route = route
        self.combined = combined
        self.subs: list[str] = []


class MarketHub:
    """Routes published market payloads to the connections subscribed on the right route."""

    def __init__(self) -> None:
        self.conns: set[MarketConn] = set()
        self._by_stream: dict[str, set[MarketConn]] = {}

    def add(self, conn: MarketConn, streams: list[str]) -> None:
        self.conns.add(conn)
        self.subscribe(conn, streams)

    def remove(self, conn: MarketConn) -> None:
        self.conns.discard(conn)
        self.unsubscribe(conn, list(conn.subs))

    def subscribe(self, conn: MarketConn, streams: list[str]) -> None:
        for s in streams:
            if s in conn.subs:
                continue
            conn.subs.append(s)
            if stream_route(s) == conn.route:  # wrong route: accepted, silent (§0.1)
                self._by_stream.setdefault(s, set()).add(conn)

    def unsubscribe(self, conn: MarketConn, streams: list[str]) -> None:
        for s in streams:
            if s in conn.subs:
                conn.subs.remove(s)
            subs = self._by_stream.get(s)
            if subs is not None:
                subs.discard(conn)
                if not subs:
                    del self._by_stream[s]

    def wanted(self, stream: str) -> bool:
        """True if anyone would receive `stream` (lets publishers skip serialising)."""
        return stream in self._by_stream

    def publish(self, stream: str, payload: bytes) -> None:
        """Sends one payload (serialised JSON) to every subscriber of `stream`."""
        conns = self._by_stream.get(stream)
        if not conns:
            return
        bare = payload.decode()
        wrapped = None
        for c in list(conns):
            if c.combined:
                if wrapped is None:
                    wrapped = f'{{"stream":"{stream}","data":{bare}}}'
                c.send(wrapped)
            else:
                c.send(bare)

    def on_text(self, conn: MarketConn, text: str) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY (§1.2)."""
        try:
            m = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            conn.send(orjson.dumps({"code": 3, "msg": f"Invalid JSON: {e}", "id": None}).decode())
            return
        if not isinstance(m, dict):
            conn.send('{"code":3,"msg":"Invalid JSON: expected an object","id":null}')
            return
        rid, method, params = m.get("id"), m.get("method"), m.get("params", [])
        result: object = None
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                reply = {"code": 2, "msg": "Invalid request: params must be strings", "id": rid}
                conn.send(orjson.dumps(reply).decode())
                return
            if method == "SUBSCRIBE":
                self.subscribe(conn, params)
            else:
                self.unsubscribe(conn, params)
        elif method == "LIST_SUBSCRIPTIONS":
            result = list(conn.subs)
        elif method in ("SET_PROPERTY", "GET_PROPERTY"):
            if not params or params[0] != "combined":
                conn.send(orjson.dumps({"code": 0, "msg": "Unknown property", "id": rid}).decode())
                return
            if method == "GET_PROPERTY":
                result = conn.combined
            elif len(params) < 2 or not isinstance(params[1], bool):
                reply = {"code": 1, "msg": "Invalid value type: expected Boolean", "id": rid}
                conn.send(orjson.dumps(reply).decode())
                return
            else:
                conn.combined = params[1]
        else:
            reply = {"code": 2, "msg": f"Invalid request: unknown method {method!r}", "id": rid}
            conn.send(orjson.dumps(reply).decode())
            return
        conn.send(orjson.dumps({"result": result, "id": rid}).decode())  # id echoed as sent


class PrivateConn(Conn):
    """A `/private` connection: listen keys, each with an optional event filter."""

    def __init__(self, ws, combined: bool, timers: Timers, transport):
        super().__init__(ws, PRIVATE, timers, transport)
        self.combined = combined
        self.keys: dict[str, frozenset[str] | None] = {}  # listenKey -> events (None: all)


class ListenKeys:
    """The account's listenKey (§1.5): POST returns the active key and extends it by the
    TTL, PUT extends it (-1125 when there is none or it differs), DELETE invalidates it."""

    def __init__(self, ttl_s: float, new_key) -> None:
        self.ttl_s = ttl_s
        self._new_key = new_key
        self.active: str | None = None
        self.expires_at = 0.0

    def create(self) -> str:
        if self.active is None:
            self.active = self._new_key()
        self.expires_at = time.monotonic() + self.ttl_s
        return self.active

    def keepalive(self, key: str | None) -> str:
        if self.active is None or (key and key != self.active):
            raise ApiError(-1125)
        self.expires_at = time.monotonic() + self.ttl_s
        return self.active

    def take_expired(self, force: bool = False) -> str | None:
        """The active key if it has expired (or `force`); it is invalid from then on."""
        if self.active is not None and (force or time.monotonic() >= self.expires_at):
            key, self.active = self.active, None
            return key
        return None


class UserHub:
    """Delivers user-stream events to the `/private` connections on the active key."""

    def __init__(self) -> None:
        self.conns: set[PrivateConn] = set()

    def deliver(self, key: str | None, event: dict) -> None:
        if key is None:
            return
        text = None
        for c in list(self.conns):
            if key not in c.keys:
                continue
            events = c.keys[key]
            if events is not None and event["e"] not in events:
                continue
            if text is None:
                text = orjson.dumps(event).decode()
            c.send(f'{{"stream":"{key}","data":{text}}}' if c.combined else text)

    def expired(self, key: str, event: dict) -> None:
        """Sends listenKeyExpired on `key`, then detaches it: nothing more comes (§1.5)."""
        text = orjson.dumps(event).decode()
        for c in list(self.conns):
            if key in c.keys:
                c.send(f'{{"stream":"{key}","data":{text}}}' if c.combined else text)
                del c.keys[key]

    def closed(self, key: str) -> list[PrivateConn]:
        """Connections whose only key was `key` (DELETE listenKey closes the stream)."""
        return [c for c in self.conns if set(c.keys) == {key}]
