"""Bybit v5 public market data (category linear), pure: no I/O, no clock, no logging.

Frames (venue_protocols.md §2.2):

* `orderbook.{1,50,200,1000}.{symbol}`: `type` "snapshot" | "delta", `ts` (ms, system
  time), `cts` (ms, matching-engine time, comparable with a trade's `T`), `data` =
  `{"s", "b": [[px, size], ...], "a": [...], "u", "seq"}` (strings for px and size).
* `publicTrade.{symbol}`: `data` = a list of `{"T", "s", "S" (taker side), "v", "p", ...}`.
* replies to our requests: `{"success", "ret_msg", "conn_id", "req_id", "op"}`
  (subscribe, unsubscribe, and the linear pong: op "ping", ret_msg "pong").

Venue field names are renamed here once and ms become ns here. The exchange time of a book
frame is `cts`, as hftbacktest stamps it. Malformed frames raise `VenueProtocolError`
naming the topic and field; nothing else is raised.

Book sync (`BookSync`, one per subscribed orderbook topic). Bybit's rules: the first
message after subscribing is a snapshot; any later snapshot, and any message with `u == 1`
(the service restarted), resets the book (clear, then apply); in a delta size "0" deletes
a level, an unknown price inserts one, a known price updates it; level 1 resends an
unchanged snapshot with the same `u` every 3 s. What a client can detect and calls a gap:
a delta before any snapshot, a delta whose `u` does not grow, a delta whose `seq` goes
backwards. On a gap the book is cleared and a fresh snapshot is needed (the I/O layer
resubscribes the topic). last_u / last_seq are those of the last frame applied.

    state   input     condition                          outcome                     next
    ------  --------  ---------------------------------  --------------------------  ------
    WAIT    snapshot  -                                  clear, apply: RESET         SYNCED
    WAIT    delta     u == 1                             clear, apply: RESET         SYNCED
    WAIT    delta     no snapshot asked for yet          clear: GAP (need snapshot)  WAIT
    WAIT    delta     a snapshot was asked for           drop it: DROPPED            WAIT
    SYNCED  snapshot  depth 1, u == last_u               nothing: UNCHANGED          SYNCED
    SYNCED  snapshot  otherwise                          clear, apply: RESET         SYNCED
    SYNCED  delta     u == 1                             clear, apply: RESET         SYNCED
    SYNCED  delta     u <= last_u                        clear: GAP (need snapshot)  WAIT
    SYNCED  delta     seq < last_seq                     clear: GAP (need snapshot)  WAIT
    SYNCED  delta     otherwise                          apply: APPLIED              SYNCED
    any     reset()   -                                  clear: RESET                WAIT

UNCONFIRMED (venue_protocols.md §5): whether `u` grows by exactly 1 per delta on depths
50/200/1000. We assume it need not: a jump in `u` is applied, never called a gap; only a
`u` that does not grow is. A snapshot carries the venue's whole view, so its `seq` and
`u` are taken as they come (a restart may start them over). Equal `seq` on two deltas is
accepted (seq orders data across topics; it is not documented as strictly increasing).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import orjson

from connector.errors import UsageError, VenueProtocolError
from connector.fields import _MISSING, _as_bytes, _bad, _get, _levels, _loads
from connector.levels import _P10, fast_book, scan_book
from hftlive.constants import BUY, SELL

DEPTHS = (1, 50, 200, 1000)  # linear; 500 went offline 2025-09-30 (§0 item 5)

# ------------------------------------------------------------------------- requests


def book_topic(depth: int, symbol: str) -> str:
    """`orderbook.{depth}.{SYMBOL}` (§2.2)."""
    if depth not in DEPTHS:
        raise UsageError(f"orderbook depth must be one of {DEPTHS}, got {depth}")
    return f"orderbook.{depth}.{symbol.upper()}"


def trade_topic(symbol: str) -> str:
    """`publicTrade.{SYMBOL}` (§2.2)."""
    return f"publicTrade.{symbol.upper()}"


def request(op: str, req_id: str, args: list[str] | None = None) -> bytes:
    """A request frame: `{"req_id", "op", "args"}` (subscribe, unsubscribe, ping)."""
    m: dict = {"req_id": req_id, "op": op}
    if args is not None:
        m["args"] = args
    return orjson.dumps(m)


# [BY] linear: no per-request arg count limit, but the args must stay under 21,000 chars
MAX_ARGS_CHARS = 20_000


def subscribe_requests(op: str, topics: list[str], req_id: str) -> list[bytes]:
    """`op` ("subscribe"/"unsubscribe") of `topics`, split so that each request's args
    stay under Bybit's 21,000-character limit (§2.2); req_ids `{req_id}`, `{req_id}.1`..."""
    out: list[bytes] = []
    chunk: list[str] = []
    size = 0
    for t in topics:
        if chunk and size + len(t) + 3 > MAX_ARGS_CHARS:
            out.append(request(op, f"{req_id}.{len(out)}" if out else req_id, chunk))
            chunk, size = [], 0
        chunk.append(t)
        size += len(t) + 3  # quotes and comma
    if chunk or not out:
        out.append(request(op, f"{req_id}.{len(out)}" if out else req_id, chunk))
    return out


# ---------------------------------------------------------------------------- frames


class BookFrame:
    """One `orderbook.*` message. A plain slots class: one is built per frame on the hot
    path (levels stay in two read-only (n, 2) float64 arrays, never an object per level).

    Attributes:
        topic: the topic as sent; depth and symbol: its parts.
        snapshot: type "snapshot" (else "delta").
        update_id: `u`; seq: `seq` (the cross sequence).
        ts_ns: `ts` (system time); cts_ns: `cts` (matching-engine time), both ns.
        bids, asks: [px, size] rows, as sent (a size of 0 deletes the level).
    """

    __slots__ = ("topic", "depth", "symbol", "snapshot", "update_id", "seq", "ts_ns", "cts_ns",
                 "bids", "asks")  # fmt: skip

    def __init__(self, topic, depth, symbol, snapshot, update_id, seq, ts_ns, cts_ns, bids, asks):
        self.topic = topic
        self.depth = depth
        self.symbol = symbol
        self.snapshot = snapshot
        self.update_id = update_id
        self.seq = seq
        self.ts_ns = ts_ns
        self.cts_ns = cts_ns
        self.bids = bids
        self.asks = asks


class TradeFrame:
    """One `publicTrade.*` message: `trades` = [(time_ns, taker side BUY/SELL, px, qty)],
    in the venue's order (match time)."""

    __slots__ = ("topic", "symbol", "trades")

    def __init__(self, topic: str, symbol: str, trades: list[tuple[int, int, float, float]]):
        self.topic = topic
        self.symbol = symbol
        self.trades = trades


class Reply:
    """The venue's answer to a request of ours (subscribe, unsubscribe, ping)."""

    __slots__ = ("op", "success", "ret_msg", "req_id")

    def __init__(self, op: str, success: bool, ret_msg: str, req_id: str):
        self.op = op
        self.success = success
        self.ret_msg = ret_msg
        self.req_id = req_id

    @property
    def is_pong(self) -> bool:
        return self.op in ("ping", "pong") and self.success


class OtherTopic:
    """A well-formed push on a topic this module does not read (tickers, ...)."""

    __slots__ = ("topic",)

    def __init__(self, topic: str):
        self.topic = topic


_K_S = np.frombuffer(b"s", np.uint8)
_K_B = np.frombuffer(b"b", np.uint8)
_K_A = np.frombuffer(b"a", np.uint8)


@nb.njit(cache=True)
def scan_book_frame(buf, out):
    """`connector.levels.scan_book` for an orderbook frame: "b"/"a" beside "s" in `data`."""
    return scan_book(buf, _K_S, _K_B, _K_A, out, _P10)


_SIDES = {"Buy": BUY, "Sell": SELL}


def _ms_ns(m: dict, key: str, ev: str) -> int:
    return _get(m, key, int, ev) * 1_000_000


def _book(m: dict, topic: str, bids: np.ndarray | None, asks: np.ndarray | None) -> BookFrame:
    ev = topic
    parts = topic.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        raise VenueProtocolError(f"{ev}: topic must be orderbook.<depth>.<symbol>")
    kind = m.get("type", _MISSING)
    if kind != "snapshot" and kind != "delta":
        raise _bad(ev, "type", '"snapshot" or "delta"', kind)
    d = m.get("data", _MISSING)
    if type(d) is not dict:
        raise _bad(ev, "data", "an object", d)
    if bids is None:
        bids = _levels(d, "b", ev)
        asks = _levels(d, "a", ev)
    symbol = _get(d, "s", str, ev)
    if symbol != parts[2]:
        raise VenueProtocolError(f"{ev}: data.s {symbol!r} is not the topic's symbol")
    return BookFrame(topic, int(parts[1]), symbol, kind == "snapshot", _get(d, "u", int, ev),
                     _get(d, "seq", int, ev), _ms_ns(m, "ts", ev), _ms_ns(m, "cts", ev),
                     bids, asks)  # fmt: skip


def _book_fast(raw: bytes) -> BookFrame | None:
    r = fast_book(raw, scan_book_frame)
    if r is None:
        return None
    m, bids, asks = r
    d = m.get("data") if type(m) is dict else None
    # the splice must have hit this frame's own data.b / data.a
    if type(d) is not dict or d.get("b") != [] or d.get("a") != []:
        return None
    topic = m.get("topic")
    if type(topic) is not str or not topic.startswith("orderbook."):
        return None
    return _book(m, topic, bids, asks)


def _trades(m: dict, topic: str) -> TradeFrame:
    ev = topic
    symbol = topic[len("publicTrade.") :]
    d = m.get("data", _MISSING)
    if type(d) is not list:
        raise _bad(ev, "data", "an array", d)
    out = []
    for k, t in enumerate(d):
        if type(t) is not dict:
            raise _bad(ev, f"data[{k}]", "an object", t)
        side = t.get("S")
        side = _SIDES.get(side) if type(side) is str else None  # [BY] S is the taker's side
        if side is None:
            raise _bad(ev, f"data[{k}].S", '"Buy" or "Sell"', t.get("S", _MISSING))
        try:
            px, qty = float(t["p"]), float(t["v"])
            if (
                type(t["p"]) is not str
                or type(t["v"]) is not str
                or not (0 < px < math.inf and 0 < qty < math.inf)
            ):
                raise ValueError
        except (KeyError, TypeError, ValueError):
            msg = f"{ev}: data[{k}] must hold positive decimal strings p and v"
            raise VenueProtocolError(msg) from None
        out.append((_ms_ns(t, "T", f"{ev}: data[{k}]"), side, px, qty))
    return TradeFrame(topic, symbol, out)


def parse_public(raw: bytes | str) -> BookFrame | TradeFrame | Reply | OtherTopic:
    """One frame of the public stream.

    Raises:
        VenueProtocolError: malformed JSON, a missing or wrongly typed field.
    """
    raw = _as_bytes(raw)
    if raw.find(b'"orderbook.', 0, 64) >= 0:
        f = _book_fast(raw)
        if f is not None:
            return f
    m = _loads(raw)
    topic = m.get("topic", _MISSING)
    if type(topic) is str:
        if topic.startswith("orderbook."):
            return _book(m, topic, None, None)
        if topic.startswith("publicTrade."):
            return _trades(m, topic)
        return OtherTopic(topic)
    if topic is not _MISSING:
        raise _bad("public frame", "topic", "a string", topic)
    op = m.get("op", _MISSING)
    if type(op) is str:
        ok = m.get("success", _MISSING)
        if type(ok) is not bool:
            raise _bad(f"{op} reply", "success", "a boolean", ok)
        msg = m.get("ret_msg")
        req_id = m.get("req_id")
        return Reply(op, ok, msg if type(msg) is str else "", req_id if type(req_id) is str else "")
    raise VenueProtocolError(f"public frame with neither topic nor op: keys {sorted(m)[:8]}")


# ------------------------------------------------------------------------- book sync

WAIT = "WAIT"
SYNCED = "SYNCED"

# outcomes of BookSync.on_frame (the table's last-but-one column)
APPLIED = 0  # a delta went into the book
RESET = 1  # the book was cleared and the frame applied as the whole book
UNCHANGED = 2  # a level-1 resend of the book we hold
DROPPED = 3  # a delta while waiting for the snapshot asked for
GAP = 4  # the book was cleared; a fresh snapshot is needed (resubscribe); see `why`


def reset_why(u: int) -> str:
    """What a RESET was: a service restart (u == 1) or a snapshot."""
    return "service restart (u = 1)" if u == 1 else "snapshot"


class BookSync:
    """Keeps `book` equal to the venue's book of one orderbook topic; see the module table.

    `book` has `clear()` and `apply_levels(bids, asks)` (connector.book.RecordingBook).
    `why` says what the last GAP or RESET was.

    The sync cell: while SYNCED with last_u and last_seq in [0, 2**63), the state lives in
    a three-element int64 array `cell` = [1, last_u, last_seq] ([0, 0, 0] otherwise), so
    that a compiled hot path (connector/bybit/_ingest.py) can take the transitions that
    need no Python (APPLIED, RESET, UNCHANGED) exactly as `on_frame` would, reading and
    advancing the same cell; every other frame comes here. `asked` is False while SYNCED.
    """

    __slots__ = ("book", "why", "_cell", "_state", "_asked", "_last_u", "_last_seq")

    def __init__(self, book, cell: np.ndarray | None = None):
        self.book = book
        self._cell = np.zeros(3, np.int64) if cell is None else cell
        self._set(WAIT, False, 0, 0)
        self.why = ""

    # the state: the cell while it holds it (see the class docstring), else these fields
    @property
    def state(self) -> str:
        return SYNCED if self._cell[0] else self._state

    @property
    def asked(self) -> bool:
        """A GAP asked for a snapshot that has not come yet."""
        return False if self._cell[0] else self._asked

    @property
    def last_u(self) -> int:
        return int(self._cell[1]) if self._cell[0] else self._last_u

    @property
    def last_seq(self) -> int:
        return int(self._cell[2]) if self._cell[0] else self._last_seq

    def _set(self, state: str, asked: bool, u: int, seq: int) -> None:
        self._state, self._asked, self._last_u, self._last_seq = state, asked, u, seq
        c = self._cell
        if state == SYNCED and 0 <= u < 1 << 63 and 0 <= seq < 1 << 63:
            c[1], c[2], c[0] = u, seq, 1
        else:
            c[0], c[1], c[2] = 0, 0, 0  # ids only a malformed venue sends stay here

    def on_frame(self, f: BookFrame) -> int:
        """Applies one parsed orderbook frame; returns APPLIED, RESET, UNCHANGED, DROPPED or GAP."""
        u = f.update_id
        state = self.state
        if f.snapshot or u == 1:  # [BY] any snapshot resets; u == 1: the service restarted
            if state == SYNCED and f.depth == 1 and f.snapshot and u == self.last_u:
                return UNCHANGED  # [BY] level 1 resends an unchanged snapshot, same u
            self.why = reset_why(u)
            self._load(f)
            return RESET
        if state == WAIT:
            if self.asked:
                return DROPPED  # the old subscription's tail; the snapshot is on its way
            return self._gap("delta before any snapshot")
        last_u, last_seq = self.last_u, self.last_seq
        if u <= last_u:
            return self._gap(f"delta u {u} does not follow u {last_u}")
        if f.seq < last_seq:
            return self._gap(f"delta seq {f.seq} went back from seq {last_seq}")
        # [BY] size "0" deletes, an unknown price inserts, a known price updates
        self.book.apply_levels(f.bids, f.asks)
        self._set(SYNCED, False, u, f.seq)
        return APPLIED

    def reset(self, why: str) -> None:
        """Forgets the book (the stream was lost): the next frame must be a snapshot."""
        self.book.clear()
        self._set(WAIT, False, 0, 0)
        self.why = why

    def _load(self, f: BookFrame) -> None:
        self.book.clear()
        self.book.apply_levels(f.bids, f.asks)
        self._set(SYNCED, False, f.update_id, f.seq)

    def _gap(self, why: str) -> int:
        self.book.clear()
        self._set(WAIT, True, 0, 0)
        self.why = why
        return GAP
