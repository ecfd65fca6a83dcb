"""The private stream `/v5/private`: auth, topics and pushes (venue_protocols.md §2.3).

* `{"op":"auth","args":[key, expires_ms, sign]}` -> `{"success":true,"ret_msg":"","op":
  "auth","conn_id":..}`; a wrong key or signature, or an `expires` already past ->
  `success: false, ret_msg: "Params Error"` (as seen in the wild [3P pybit#300]).
* `subscribe` before auth -> `success: false, "Request not authorized"` (wording
  UNCONFIRMED). Topics: `order`, `execution`, `execution.fast`, `position`, `wallet`,
  `dcp`, `greeks`, and the category forms `order.linear`, `execution.linear`,
  `execution.fast.linear`, `position.linear`; all-in-one and category forms of one topic
  cannot be mixed on a connection [BY websocket/private/*.mdx].
* `{"op":"ping"}` -> `{"req_id":..,"op":"pong","args":["<ms>"],"conn_id":..}`.
* A push: `{"id","topic","creationTime": <ms number>,"data":[items]}`, time fields inside
  `data` strings of ms. `execution.fast` items carry `orderLinkId: ""` for maker fills.
* Faults: `lose_private_events` (a push never delivered), `dup_private_events` (twice).
"""

from __future__ import annotations

import uuid
from collections import Counter

import orjson

from connector.bybit.emulator.faults import Faults
from connector.bybit.emulator.gate import Gate
from connector.bybit.emulator.public import BybitConn

TOPICS = ("order", "execution", "execution.fast", "position", "wallet", "dcp", "greeks")
CATEGORY_TOPICS = ("order.linear", "execution.linear", "execution.fast.linear", "position.linear")
FAST_FIELDS = ("category", "symbol", "orderId", "isMaker", "orderLinkId", "execId",
               "execPrice", "execQty", "side", "execTime", "seq")  # fmt: skip


def _base(topic: str) -> str:
    return topic.removesuffix(".linear")


class PrivateHub:
    """Authenticated private connections and the account's pushes to them."""

    def __init__(self, gate: Gate, faults: Faults):
        self.gate = gate
        self.faults = faults
        self.requests: Counter[str] = Counter()  # "private <op>" (the emulator shares its own)
        self.conns: set[BybitConn] = set()
        self.pushed = 0  # pushes delivered (or lost by a fault), for tests

    def on_text(self, conn: BybitConn, text: str, now_ms: int) -> None:
        try:
            m = orjson.loads(text)
            op, rid, args = m.get("op"), m.get("req_id", ""), m.get("args") or []
        except (orjson.JSONDecodeError, AttributeError):
            conn.send(self._reply(conn, "", False, "error:request not json format", ""))
            return
        self.requests[f"private {op}"] += 1
        if op == "ping":
            pong = {"req_id": rid, "op": "pong", "args": [str(now_ms)], "conn_id": conn.conn_id}
            conn.send(orjson.dumps(pong).decode())
        elif op == "auth":
            if conn.authed:
                conn.send(self._reply(conn, op, False, "Request already authorized", rid))
            elif self.gate.check_ws_auth(args):
                conn.authed = True
                conn.send(self._reply(conn, op, True, "", rid))
            else:
                conn.send(self._reply(conn, op, False, "Params Error", rid))
        elif op in ("subscribe", "unsubscribe"):
            if not conn.authed:
                conn.send(self._reply(conn, op, False, "Request not authorized", rid))
                return
            names = [a for a in args if isinstance(a, str)] if isinstance(args, list) else []
            bad = [a for a in args if a not in names or a not in (*TOPICS, *CATEGORY_TOPICS)]
            if op == "subscribe":
                have = {_base(t): t for t in conn.topics}
                mixed = [a for a in names if _base(a) in have and have[_base(a)] != a]
                if bad or mixed:
                    what = ",".join(map(str, bad or mixed))
                    conn.send(
                        self._reply(conn, op, False, f"error:invalid topic,topic:{what}", rid)
                    )
                    return
                conn.topics.update(names)
            else:
                conn.topics.difference_update(names)
            conn.send(self._reply(conn, op, True, "", rid))
        else:
            conn.send(self._reply(conn, str(op), False, f"error:unknown op {op!r}", rid))

    @staticmethod
    def _reply(conn: BybitConn, op: str, ok: bool, msg: str, rid) -> str:
        body = {"success": ok, "ret_msg": msg, "op": op, "conn_id": conn.conn_id, "req_id": rid}
        return orjson.dumps(body).decode()

    def push(self, events: list[tuple[str, list[dict]]], now_ms: int) -> None:
        """Delivers the account's pushes to every connection subscribed to their topic."""
        for topic, items in events:
            if topic == "execution":  # also the fast form (§2.3)
                fast = [{k: e[k] for k in FAST_FIELDS} for e in items]
                for f in fast:
                    if f["isMaker"]:
                        f["orderLinkId"] = ""
                self._push("execution.fast", fast, now_ms)
            self._push(topic, items, now_ms)

    def _push(self, topic: str, items: list[dict], now_ms: int) -> None:
        wanted = [c for c in self.conns if topic in c.topics or f"{topic}.linear" in c.topics]
        if not wanted:
            return
        self.pushed += 1
        if self.faults.take("lose_private_events"):
            return
        copies = 2 if self.faults.take("dup_private_events") else 1
        msg_id = str(uuid.uuid4())
        for conn in wanted:
            name = topic if topic in conn.topics else f"{topic}.linear"
            body = {"id": msg_id, "topic": name, "creationTime": now_ms, "data": items}
            frame = orjson.dumps(body).decode()
            for _ in range(copies):
                conn.send(frame)

    def remove(self, conn: BybitConn) -> None:
        self.conns.discard(conn)
