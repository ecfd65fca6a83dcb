"""The public stream `/v5/public/linear`: orderbook and publicTrade topics (§2.2).

Topics: `orderbook.{1,50,200,1000}.{SYMBOL}` and `publicTrade.{SYMBOL}` [BY websocket/
public/orderbook.mdx, trade.mdx]. Rules implemented:

* subscribe/unsubscribe reply `{"success","ret_msg","conn_id","req_id","op"}`; an unknown
  topic gets `success: false` naming it (the valid ones in the same request are still
  subscribed: UNCONFIRMED); app-level `{"op":"ping"}` -> `{"success":true,"ret_msg":
  "pong",...,"op":"ping"}`; the server also sends WS protocol pings.
* An orderbook topic starts with a `snapshot` to each new subscriber, then `delta`s.
  A topic's state is a `DepthView`: the top `depth` levels its subscribers hold, with
  its own `u`, which grows by exactly 1 per message that changes it (whether Bybit's `u`
  is +1 per delta is UNCONFIRMED; it lets a client detect a lost delta). `seq` is the
  symbol's cross sequence, shared by all depths and trades. Size "0" deletes a level.
* Level 1 sends snapshots only, and re-sends the same snapshot (same `u`) when the book
  has not changed for 3 s. Key order: level 1 has `ts` before `type`, others after.
* A later snapshot means "reset"; `u = 1` means the service restarted (the `restart`
  action): every view restarts its `u` at 1 and sends a snapshot.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable

import orjson

from connector.bybit.emulator.faults import Faults
from connector.emulator_kit.book import SymbolMarket
from connector.emulator_kit.ws import Conn

DEPTHS = (1, 50, 200, 1000)
PUSH_INTERVAL_S = {1: 0.01, 50: 0.02, 200: 0.1, 1000: 0.2}  # [BY orderbook.mdx]
LEVEL1_RESEND_S = 3.0


class BybitConn(Conn):
    """One WebSocket connection of any Bybit kind (public, private, trade)."""

    def __init__(self, ws, kind: str, timers, transport):
        super().__init__(ws, kind, timers, transport)
        self.conn_id = str(uuid.uuid4())
        self.topics: set[str] = set()
        self.authed = False
        self.req_ids: set[str] = set()


class DepthView:
    """The top `depth` levels of one symbol as the subscribers of one topic hold them."""

    def __init__(self, mkt: SymbolMarket, depth: int, u: int):
        self.mkt = mkt
        self.depth = depth
        self.u = u
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.sent_at = 0.0  # monotonic time of the last message

    def refresh(self) -> tuple[dict[int, int], dict[int, int]]:
        """Moves the view to the book's current top; returns the changed levels (0 =
        deleted) and advances `u` when anything changed."""
        top_b, top_a = self.mkt.book.top(self.depth)
        db, da = _diff(self.bids, dict(top_b)), _diff(self.asks, dict(top_a))
        if db or da:
            self.bids, self.asks = dict(top_b), dict(top_a)
            self.u += 1
        return db, da

    def levels(self, bids: dict[int, int], asks: dict[int, int]) -> tuple[list, list]:
        """[[px, qty], ...]: bids descending, asks ascending (§2.2)."""
        px, qty = self.mkt.spec.px, self.mkt.spec.qty
        b = [[px(t), qty(bids[t])] for t in sorted(bids, reverse=True)]
        return b, [[px(t), qty(asks[t])] for t in sorted(asks)]


def _diff(old: dict[int, int], new: dict[int, int]) -> dict[int, int]:
    out = {t: n for t, n in new.items() if old.get(t) != n}
    out.update({t: 0 for t in old if t not in new})
    return out


class PublicHub:
    """Subscriptions, depth views and the publishing of public frames, with the
    public-stream faults (`garbage_public`, `drop_delta`, `replay_delta`)."""

    def __init__(self, markets: dict[str, SymbolMarket], faults: Faults, first_u: int,
                 now_ms: Callable[[], int]):  # fmt: skip
        self.markets = markets
        self.now_ms = now_ms
        self.faults = faults
        self.requests: Counter[str] = Counter()  # "public <op>" (the emulator shares its own)
        self.conns: set[BybitConn] = set()
        self.subs: dict[str, set[BybitConn]] = {}
        self.views: dict[str, DepthView] = {}  # topic -> view
        self.seq = {s: first_u * 1000 for s in markets}
        self._first_u = first_u

    def valid(self, topic: str) -> bool:
        parts = topic.split(".")
        if len(parts) == 3 and parts[0] == "orderbook":
            return parts[1] in {str(d) for d in DEPTHS} and parts[2] in self.markets
        return len(parts) == 2 and parts[0] == "publicTrade" and parts[1] in self.markets

    def view(self, topic: str) -> DepthView:
        v = self.views.get(topic)
        if v is None:
            _, depth, sym = topic.split(".")
            v = self.views[topic] = DepthView(self.markets[sym], int(depth), self._first_u)
            v.refresh()
        return v

    # ------------------------------------------------------------------ requests
    def on_text(self, conn: BybitConn, text: str, now_ms: int) -> None:
        try:
            m = orjson.loads(text)
            op, rid, args = m.get("op"), m.get("req_id", ""), m.get("args") or []
        except (orjson.JSONDecodeError, AttributeError):
            conn.send(self._reply(conn, "", False, "error:request not json format", ""))
            return
        self.requests[f"public {op}"] += 1
        if op == "ping":
            conn.send(self._reply(conn, "ping", True, "pong", rid))
        elif op in ("subscribe", "unsubscribe") and isinstance(args, list):
            bad = [a for a in args if not isinstance(a, str) or not self.valid(a)]
            good = [a for a in args if a not in bad]
            if op == "subscribe":
                dup = [a for a in good if a in conn.topics]
                good = [a for a in good if a not in dup]
                if bad or dup:
                    what = ",".join(map(str, bad)) or ",".join(dup)
                    reason = "handler not found" if bad else "already subscribed"
                    conn.send(self._reply(conn, op, False, f"error:{reason},topic:{what}", rid))
                else:
                    conn.send(self._reply(conn, op, True, "", rid))
                for topic in good:
                    conn.topics.add(topic)
                    if topic.startswith("orderbook."):
                        # the snapshot comes with the topic's next push (every 10-200 ms,
                        # §2.2), never in the same instant as the reply
                        depth = int(topic.split(".")[1])
                        asyncio.get_running_loop().call_later(
                            PUSH_INTERVAL_S[depth], self._start, conn, topic
                        )
                    else:
                        self.subs.setdefault(topic, set()).add(conn)
            else:
                for topic in good:
                    conn.topics.discard(topic)
                    self.subs.get(topic, set()).discard(conn)
                ok = not bad
                conn.send(self._reply(conn, op, ok, "" if ok else f"error:{bad}", rid))
        else:
            conn.send(self._reply(conn, str(op), False, f"error:unknown op {op!r}", rid))

    @staticmethod
    def _reply(conn: BybitConn, op: str, ok: bool, msg: str, rid) -> str:
        body = {"success": ok, "ret_msg": msg, "conn_id": conn.conn_id, "req_id": rid, "op": op}
        return orjson.dumps(body).decode()

    def remove(self, conn: BybitConn) -> None:
        self.conns.discard(conn)
        for topic in conn.topics:
            self.subs.get(topic, set()).discard(conn)

    # ------------------------------------------------------------------ market
    def on_book(self, sym: str, now_ms: int, cts_ms: int) -> None:
        """The venue's book of `sym` changed: one message per subscribed depth topic."""
        self.seq[sym] += 1
        for depth in DEPTHS:
            topic = f"orderbook.{depth}.{sym}"
            if not self.subs.get(topic):
                continue
            v = self.view(topic)
            db, da = v.refresh()
            if not (db or da):
                continue
            if depth == 1:  # level 1: snapshots only
                self._send(topic, self._book_msg(v, "snapshot", v.bids, v.asks, now_ms, cts_ms))
                continue
            frame = self._book_msg(v, "delta", db, da, now_ms, cts_ms)
            if self.faults.take("drop_delta"):
                continue  # the venue applied it; nobody hears of it
            self._send(topic, frame)
            if self.faults.take("replay_delta"):
                self._send(topic, frame)  # the same u again: non-increasing

    def on_trade(self, sym: str, taker_buy: bool, px: str, qty: str, tick_dir: str,
                 now_ms: int) -> None:  # fmt: skip
        """One public trade [BY websocket/public/trade.mdx]."""
        self.seq[sym] += 1
        topic = f"publicTrade.{sym}"
        if not self.subs.get(topic):
            return
        item = {
            "T": now_ms, "s": sym, "S": "Buy" if taker_buy else "Sell", "v": qty, "p": px,
            "L": tick_dir, "i": str(uuid.uuid4()), "BT": False, "RPI": False,
            "seq": self.seq[sym],
        }  # fmt: skip
        msg = {"topic": topic, "type": "snapshot", "ts": now_ms, "data": [item]}
        self._send(topic, orjson.dumps(msg))

    def snapshot_all(self, now_ms: int, restart: bool = False) -> None:
        """A mid-stream snapshot on every subscribed orderbook topic; with `restart`,
        each view's `u` restarts at 1 first (the service restarted, §2.2)."""
        for topic, v in self.views.items():
            if restart:
                v.u = 0
            v.refresh()
            if restart:
                v.u = 1
            for conn in list(self.subs.get(topic, ())):
                self._snapshot_to(conn, topic, now_ms)

    def resend_level1(self, now_ms: int) -> None:
        """Level 1: the unchanged snapshot again, same `u`, after 3 s of quiet (§2.2)."""
        now = time.monotonic()
        for topic, v in self.views.items():
            if v.depth == 1 and self.subs.get(topic) and now - v.sent_at >= LEVEL1_RESEND_S:
                self._send(topic, self._book_msg(v, "snapshot", v.bids, v.asks, now_ms, now_ms))

    def _start(self, conn: BybitConn, topic: str) -> None:
        """A new subscriber of an orderbook topic: its snapshot, then the deltas."""
        if topic not in conn.topics or conn not in self.conns:
            return  # unsubscribed or gone meanwhile
        self.subs.setdefault(topic, set()).add(conn)
        self._snapshot_to(conn, topic, self.now_ms())

    def _snapshot_to(self, conn: BybitConn, topic: str, now_ms: int) -> None:
        v = self.view(topic)
        v.refresh()  # a view without subscribers may lag the book; nobody holds it yet
        frame = self._book_msg(v, "snapshot", v.bids, v.asks, now_ms, now_ms)
        self._send_one(conn, frame)

    def _book_msg(self, v: DepthView, kind: str, bids, asks, now_ms: int, cts_ms: int) -> bytes:
        v.sent_at = time.monotonic()
        b, a = v.levels(bids, asks)
        sym = v.mkt.spec.upper
        data = {"s": sym, "b": b, "a": a, "u": v.u, "seq": self.seq[sym]}
        topic = f"orderbook.{v.depth}.{sym}"
        if v.depth == 1:  # futures level 1: ts before type (§2.2)
            msg = {"topic": topic, "ts": now_ms, "type": kind, "data": data, "cts": cts_ms}
        else:
            msg = {"topic": topic, "type": kind, "ts": now_ms, "data": data, "cts": cts_ms}
        return orjson.dumps(msg)

    def _send(self, topic: str, frame: bytes) -> None:
        for conn in list(self.subs.get(topic, ())):
            self._send_one(conn, frame)

    def _send_one(self, conn: BybitConn, frame: bytes) -> None:
        left = self.faults.garbage_public
        if self.faults.take("garbage_public"):
            frame = garble(frame, left)
        conn.send(frame.decode())


def garble(frame: bytes, left: int) -> bytes:
    """The malformed frame sent instead of `frame` while `left` (>= 1, this one included)
    remain: odd `left` cuts it in half (truncated JSON), even `left` drops `data` (a
    field missing)."""
    if left % 2:
        return frame[: len(frame) // 2]
    m = orjson.loads(frame)
    m.pop("data", None)
    return orjson.dumps(m)
