"""Bybit's trade stream (`/v5/trade`): order.create / amend / cancel over one kept-open
WebSocket (venue_protocols.md §2.4), on the venue-neutral `connector.transport.wsrpc`.

* Request: `{"reqId", "header": {"X-BAPI-TIMESTAMP", "X-BAPI-RECV-WINDOW"}, "op",
  "args": [one item]}`; the timestamp is the venue's clock as measured (rest.clock).
  reqIds are WsRpc's counter, unique on one connection (20006 is a duplicate reqId).
* `auth` first (the login): `{"op": "auth", "args": [key, expires_ms, signature]}`; its
  reply (`retCode` 0) carries no reqId, so the codec answers the auth request it wrote
  last. Only then is the socket `ready`; nothing else is written before.
* Replies become `rest.Reply(0, Envelope(retCode, retMsg, data, Timenow), raw)`: order
  entry treats both transports alike. The reply's `header` (X-Bapi-Limit*) feeds the
  same counters as REST (rest.ApiLimits); 10002 re-measures the clock; 10019 (the trade
  service restarts: "open a new connection") drops the socket after the reply.
* App-level ping `{"op": "ping"}` every `ping_interval_s` (Bybit recommends 20 s); a
  connection that answers nothing (no pong, no frame) for `ping_interval_s + timeout_s`
  is half-dead and dropped, and `connector.reconnect` opens a fresh one.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson

from connector.bybit.protocol import Envelope, parse_trade
from connector.bybit.rest import OUTSIDE_RECV_WINDOW, TRADE_OPS, BybitRest, Reply
from connector.bybit.signing import Credentials, ws_auth_args
from connector.errors import RequestFailed, VenueProtocolError
from connector.reconnect import keep_connected
from connector.transport import wsrpc
from connector.venue import Core

log = logging.getLogger(__name__)

NAME = "trade stream"
RESTARTING = 10019  # "ws trade service is restarting, do not send new request"
AUTH_EXPIRY_MS = 10_000  # the auth signature's validity (hftbacktest: 5 s)


class _Codec:
    def __init__(self, rest: BybitRest, recv_window_ms: int, on_frame):
        self.rest = rest
        self.recv_window_ms = recv_window_ms
        self.on_frame = on_frame  # () on every frame: the connection is alive
        self.auth_rid = ""
        self.restarting = False

    def request(self, rid: str, method: str, params) -> str:
        if method == "auth":
            self.auth_rid = rid
            return orjson.dumps({"reqId": rid, "op": "auth", "args": params}).decode()
        header = {"X-BAPI-TIMESTAMP": str(self.rest.now_ms()),
                  "X-BAPI-RECV-WINDOW": str(self.recv_window_ms)}  # fmt: skip
        return orjson.dumps({"reqId": rid, "header": header, "op": method,
                             "args": [params]}).decode()  # fmt: skip

    def response(self, raw: str | bytes) -> tuple[str, Reply] | None:
        self.on_frame()
        try:
            r = parse_trade(raw)
        except VenueProtocolError as e:
            log.warning("%s: unreadable frame skipped: %s", NAME, e)
            return None
        if r.op == "pong":
            return None
        env = Envelope(r.ret_code, r.ret_msg, r.data, r.time_ms)
        if r.op == "auth":
            return (r.req_id or self.auth_rid), Reply(0, env, raw)
        path = TRADE_OPS.get(r.op)
        if path is not None:
            self.rest.limits.on_reply(path, r.limits, r.ret_code, self.rest.now_ms())
        if r.ret_code == OUTSIDE_RECV_WINDOW:
            self.rest.clock.remeasure_soon(f"{NAME} {r.op}: 10002")
        if r.ret_code == RESTARTING:
            self.restarting = True
        if not r.req_id:
            log.warning("%s: %s reply with no reqId: %r", NAME, r.op, raw[:200])
            return None
        return r.req_id, Reply(0, env, raw)


class TradeStream:
    """Signed order ops over the trade stream; `run()` keeps it open until cancelled.

    Args:
        url: e.g. wss://stream-testnet.bybit.com/v5/trade.
        creds: the API key and secret.
        rest: the REST client whose clock and rate-limit counters this shares.
        recv_window_ms, timeout_s: as for REST.
        ping_interval_s: the app-level ping period.
        core: told when the connection is lost and when it is back.
        on_state: `()`, called when the socket becomes ready or is lost.
    """

    def __init__(self, url: str, creds: Credentials, rest: BybitRest, recv_window_ms: int,
                 timeout_s: float, ping_interval_s: float, core: Core,
                 on_state=None):  # fmt: skip
        self.creds = creds
        self.rest = rest
        self.core = core
        self.timeout_s = timeout_s
        self.ping_interval_s = ping_interval_s
        self.on_state = on_state or (lambda: None)
        self.last_rx = time.monotonic()
        self.codec = _Codec(rest, recv_window_ms, self._alive)
        self.rpc = wsrpc.WsRpc(NAME, url, self.codec, timeout_s, login=self._auth)

    def _alive(self) -> None:
        self.last_rx = time.monotonic()

    @property
    def ready(self) -> bool:
        return self.rpc.ready

    async def _auth(self) -> None:
        """[BY wss-authentication.mdx] auth before anything else; 0 = ok (20001: repeat)."""
        self.codec.restarting = False
        expires = self.rest.now_ms() + AUTH_EXPIRY_MS
        r: Reply = await self.rpc.request("auth", ws_auth_args(self.creds, expires),
                                          before_ready=True)  # fmt: skip
        if r.env is None or r.env.ret_code != 0:
            code = r.env.ret_code if r.env else "?"
            msg = r.env.ret_msg if r.env else ""
            raise VenueProtocolError(f"{NAME} auth refused: {code} {msg}")
        self.last_rx = time.monotonic()

    async def run(self) -> None:
        async def on_up() -> str:
            self.on_state()
            return ""

        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._pinger(), name="bybit-trade-ping")
            await keep_connected(NAME, self.rpc.connect_once, self.core,
                                 errors=(*wsrpc.ERRORS, RequestFailed, VenueProtocolError),
                                 notice=f"{NAME} connection", on_up=on_up,
                                 on_down=lambda why: self.on_state())  # fmt: skip

    async def _pinger(self) -> None:
        while True:
            await asyncio.sleep(min(self.ping_interval_s, 1.0))
            if not self.rpc.connected:
                continue
            silent = time.monotonic() - self.last_rx
            if silent >= self.ping_interval_s + self.timeout_s:
                self.rpc.drop(f"nothing heard for {silent:.0f} s (no pong)")
            elif silent >= self.ping_interval_s:
                await self.rpc.send_frame(orjson.dumps({"op": "ping"}).decode())

    async def request(self, op: str, params: dict) -> Reply:
        """Sends one order op once and returns its reply.

        Raises:
            RequestFailed: not ready (sent=False); closed or no reply in time after
                sending (sent=True).
        """
        path = TRADE_OPS[op]
        if (pause := self.rest.limits.blocked_for(path)) > 0:
            raise RequestFailed(f"{op}: not sent, the venue asked to back off "
                                f"({pause:.1f} s left)", sent=False)  # fmt: skip
        now = self.rest.now_ms()
        try:
            return await self.rpc.request(op, params,
                                          sending=lambda: self.rest.limits.sent(path, now))  # fmt: skip
        finally:
            if self.codec.restarting:
                self.rpc.drop("10019: the trade service restarts; a new connection")
