"""Binance USD-M futures wire format: parsers from venue JSON to frozen dataclasses. No I/O.

Everything the venue sends is renamed here, once (`first_update_id = m["U"]`), and venue
milliseconds become nanoseconds here (`int(ms) * 1_000_000`). Symbols are lowercased
(hftbacktest's convention); the I/O layer uppercases them for REST requests. Prices and
quantities, which the venue sends as JSON strings (venue_protocols.md §1.1), become float64.

Entry points:

* `parse_stream(raw)`: one WebSocket text frame, combined-stream wrapper
  (`{"stream":..,"data":{..}}`) or bare payload, dispatched on `e`. Subscription replies
  become `CommandReply`, `{"code","msg"}` bodies `ErrorReply`, and a bare REST depth body
  (recorded captures embed one) `DepthSnapshot`. A well-formed event whose `e` is not known
  here (ACCOUNT_CONFIG_UPDATE, ALGO_UPDATE, MARGIN_CALL, ...: the venue adds events over
  time, §1.5) returns `Unknown(event_type)` rather than raising: it is not a contract break.
* `parse_depth_snapshot`, `parse_order_response`, `parse_error`: REST (and WS-API) bodies.

Malformed input (bad or truncated JSON, a missing or wrongly typed field, an out-of-enum
status/side) raises `VenueProtocolError` naming the event and field, never anything else.

Speed. Depth diffs dominate the cost: an ETHUSDT diff averages 65 levels and 1.5 kB, some
hold ~900. Measured on ethusdt_20240808.gz (6,586 diffs; one core of this 2-vCPU Xeon
box; best of 5; each row ends in a DepthUpdate):

    orjson.loads alone, levels left as lists of str (no DepthUpdate)   114k msgs/s   8.8 us
    orjson + np.array(levels, dtype=float64)                            31k msgs/s  32.2 us
    orjson + per-level float() list, then np.array                      28k msgs/s  36.0 us
    orjson + np.array(levels).astype(float64)                           14k msgs/s  71.7 us
    orjson + checked per-level float() (the fallback path below)        21k msgs/s  47.8 us
    numba byte scanner for levels + orjson for the header (kept)        98k msgs/s  10.2 us

    parse_stream on bookTicker 245k/s (4.1 us), trade 264k/s (3.8 us), and the whole
    mixed capture (54k bookTicker, 14k trade, 6.6k depth) 212k msgs/s (4.7 us).

About 1.1 us of a bookTicker or trade is the frozen dataclass's __init__ (8 fields through
object.__setattr__; a plain slots class takes 0.23 us).

The kept fast path (`_scan_book`) walks the raw bytes once, parses the level arrays
straight into one float64 block, and splices them out of the text (`"b":[]`) so orjson
only parses the small header, which keeps every header check below. A level string is
parsed as mantissa / 10**frac only when it has <= 15 digits and no sign or exponent; then
both operands are exact doubles and IEEE division rounds once, so the value is bit-equal
to float(str). Anything else (whitespace, exponents, escapes, truncation, odd shapes) falls
back to the orjson + float() path, which is also where errors are reported. The scanner
only runs when `"depthUpdate"` is within the first 128 bytes (Binance sends `e` first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
import orjson

from connector.errors import UsageError, VenueProtocolError, VenueRejected

# hftbacktest constants (reference hftbacktest_api.md §4.2); to be centralised by the lead.
BUY = 1
SELL = -1
NONE = 0
NEW = 1
EXPIRED = 2
FILLED = 3
CANCELED = 4
PARTIALLY_FILLED = 5
REJECTED = 6
UNSUPPORTED = 255
GTC = 0
GTX = 1
FOK = 2
IOC = 3
LIMIT = 0
MARKET = 1

GTX_REJECT_CODE = -5022  # post-only would take: HTTP 400, order not recorded (§1.8)

# Venue enums as strings (§1.5 ORDER_TRADE_UPDATE, §1.6 order response [BN-COMMON]).
ORDER_STATUSES = frozenset(
    ("NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED")
)
EXEC_TYPES = frozenset(("NEW", "CANCELED", "CALCULATED", "EXPIRED", "TRADE", "AMENDMENT"))
SIDES = frozenset(("BUY", "SELL"))

_STATUS_CODE = {
    "NEW": NEW,
    "PARTIALLY_FILLED": PARTIALLY_FILLED,
    "FILLED": FILLED,
    "CANCELED": CANCELED,
    "EXPIRED": EXPIRED,
    # STP expiry during matching: the order is gone without a cancel request.
    "EXPIRED_IN_MATCH": EXPIRED,
    # hftbacktest's backtester marks a rejected new order EXPIRED; REJECTED=6 is internal.
    "REJECTED": EXPIRED,
}
_TIF_CODE = {"GTC": GTC, "GTX": GTX, "FOK": FOK, "IOC": IOC}
_TYPE_CODE = {"LIMIT": LIMIT, "MARKET": MARKET}
SIDE_NAMES = {BUY: "BUY", SELL: "SELL"}
TIF_NAMES = {v: k for k, v in _TIF_CODE.items()}
ORDER_TYPE_NAMES = {v: k for k, v in _TYPE_CODE.items()}


def order_status(status: str) -> int:
    """Maps an order status `X` (stream) or `status` (REST) to an hftbacktest status.

    The execution type `x` never changes the result: it says what happened (`is_fill`),
    `X` says where the order is now. A rejected submit (any REST error, -5022 included)
    also ends EXPIRED, which the connector applies itself since no order body comes back.

    Raises:
        VenueProtocolError: `status` is not a documented order status.
    """
    try:
        return _STATUS_CODE[status]
    except KeyError:
        raise VenueProtocolError(f"unknown order status {status!r}") from None


def is_fill(exec_type: str) -> bool:
    """True when an ORDER_TRADE_UPDATE execution type `x` carries a fill (l, L, t)."""
    return exec_type == "TRADE" or exec_type == "CALCULATED"  # CALCULATED: liquidation fill


def side_code(side: str) -> int:
    """BUY -> BUY (1), SELL -> SELL (-1); anything else raises VenueProtocolError."""
    if side == "BUY":
        return BUY
    if side == "SELL":
        return SELL
    raise VenueProtocolError(f"unknown side {side!r}")


def tif_code(tif: str) -> int:
    """GTC/GTX/FOK/IOC -> hftbacktest codes; GTD, RPI and others -> UNSUPPORTED."""
    return _TIF_CODE.get(tif, UNSUPPORTED)


def order_type_code(order_type: str) -> int:
    """LIMIT/MARKET -> hftbacktest codes; STOP, LIQUIDATION, ... -> UNSUPPORTED."""
    return _TYPE_CODE.get(order_type, UNSUPPORTED)


# ---------------------------------------------------------------------------- messages
# Messages holding arrays compare by identity (eq=False): == on arrays is elementwise.


@dataclass(frozen=True, slots=True, eq=False)
class DepthUpdate:
    """`depthUpdate` diff (§1.3). Levels are (n, 2) float64 [px, qty], absolute qty, 0 = remove."""

    symbol: str
    event_ts_ns: int
    transact_ts_ns: int
    first_update_id: int  # U
    final_update_id: int  # u
    prev_final_update_id: int  # pu
    bids: np.ndarray
    asks: np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class DepthSnapshot:
    """REST `GET /fapi/v1/depth` body (§1.4): bids descending, asks ascending."""

    last_update_id: int
    event_ts_ns: int
    transact_ts_ns: int
    bids: np.ndarray
    asks: np.ndarray


@dataclass(frozen=True, slots=True)
class BookTicker:
    """`bookTicker` (§1.3); `update_id` shares the depth stream's id space."""

    symbol: str
    update_id: int
    event_ts_ns: int
    transact_ts_ns: int
    bid_px: float
    bid_qty: float
    ask_px: float
    ask_qty: float


@dataclass(frozen=True, slots=True)
class Trade:
    """Raw `trade` (§1.3). hftbacktest keeps only trade_type == "MARKET"."""

    symbol: str
    trade_id: int
    event_ts_ns: int
    transact_ts_ns: int
    px: float
    qty: float
    buyer_is_maker: bool
    trade_type: str

    @property
    def taker_side(self) -> int:
        """SELL when the buyer was the maker (the taker sold), else BUY."""
        return SELL if self.buyer_is_maker else BUY


@dataclass(frozen=True, slots=True)
class AggTrade:
    """`aggTrade` (§1.3). `qty_no_rpi` is `nq`, None when absent."""

    symbol: str
    agg_trade_id: int
    event_ts_ns: int
    transact_ts_ns: int
    px: float
    qty: float
    first_trade_id: int
    last_trade_id: int
    buyer_is_maker: bool
    qty_no_rpi: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderTradeUpdate:
    """`ORDER_TRADE_UPDATE` (§1.5). Enum fields keep the venue strings; map with
    `order_status`, `side_code`, `tif_code`, `order_type_code`, `is_fill`."""

    event_ts_ns: int  # E
    transact_ts_ns: int  # T of the envelope
    symbol: str  # o.s
    client_order_id: str  # c
    side: str  # S
    order_type: str  # o
    tif: str  # f
    orig_qty: float  # q
    price: float  # p
    avg_price: float | None  # ap
    stop_price: float | None  # sp
    exec_type: str  # x
    status: str  # X
    order_id: int  # i
    last_fill_qty: float  # l
    cum_qty: float  # z
    last_fill_px: float  # L
    commission: float | None  # n (absent when there is no commission)
    commission_asset: str | None  # N
    trade_time_ns: int  # o.T
    trade_id: int  # t, 0 without a trade
    maker: bool  # m
    reduce_only: bool  # R
    position_side: str | None  # ps
    orig_order_type: str | None  # ot
    realized_pnl: float | None  # rp
    expiry_reason: int | None  # er (string on the wire)
    modify_id: int | None  # M, AMENDMENT only


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeLite:
    """`TRADE_LITE` (§1.5): a fill without status or cumulative qty."""

    event_ts_ns: int
    transact_ts_ns: int
    symbol: str
    client_order_id: str
    side: str
    orig_qty: float
    price: float
    last_fill_px: float
    last_fill_qty: float
    trade_id: int
    order_id: int
    maker: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Balance:
    """`ACCOUNT_UPDATE.a.B[]` entry."""

    asset: str  # a
    wallet_balance: float  # wb
    cross_wallet_balance: float  # cw
    balance_change: float | None  # bc


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """`ACCOUNT_UPDATE.a.P[]` entry; `position_amt` is signed."""

    symbol: str  # s
    position_amt: float  # pa
    entry_px: float  # ep
    position_side: str  # ps
    breakeven_px: float | None  # bep
    accumulated_realized: float | None  # cr
    unrealized_pnl: float | None  # up
    margin_type: str | None  # mt
    isolated_wallet: float | None  # iw


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountUpdate:
    """`ACCOUNT_UPDATE` (§1.5); `funding_symbol` is `a.S` (FUNDING_FEE only)."""

    event_ts_ns: int
    transact_ts_ns: int
    reason: str  # a.m
    balances: tuple[Balance, ...]
    positions: tuple[Position, ...]
    funding_symbol: str | None


@dataclass(frozen=True, slots=True)
class ListenKeyExpired:
    """`listenKeyExpired` (§1.5); `E` arrives as a number or a string (§0.6)."""

    event_ts_ns: int
    listen_key: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderResponse:
    """Order body of POST/PUT/DELETE /fapi/v1/order and WS-API order.* results (§1.6).

    `avg_price`/`cum_quote` are optional: removed from the docs in 2026-07 (§0.3).
    `request_id` is the WS-API `id` (None for REST).
    """

    symbol: str
    order_id: int
    client_order_id: str
    side: str
    order_type: str
    tif: str
    orig_qty: float
    price: float
    executed_qty: float
    cum_qty: float | None
    avg_price: float | None
    cum_quote: float | None
    status: str
    reduce_only: bool | None
    position_side: str | None
    update_time_ns: int
    request_id: int | str | None = None


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """`{"code":-2019,"msg":".."}` (§1.8). Code 200 is allOpenOrders' success body."""

    code: int
    msg: str
    request_id: int | str | None = None

    def to_exception(self) -> VenueRejected:
        """The matching `VenueRejected` for callers that want to raise."""
        return VenueRejected(self.code, self.msg)


@dataclass(frozen=True, slots=True)
class CommandReply:
    """Reply to SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS/..: `{"result":..,"id":..}` (§1.2)."""

    request_id: int | str | None
    result: object


@dataclass(frozen=True, slots=True)
class Unknown:
    """A well-formed event whose `e` this module does not parse."""

    event_type: str


# ------------------------------------------------------------------------ field access
_MISSING = object()
_TYPE_NAMES = {int: "integer", str: "string", bool: "boolean", list: "array", dict: "object"}


def _bad(ev: str, key: str, want: str, v: object) -> VenueProtocolError:
    if v is _MISSING:
        return VenueProtocolError(f"{ev}: missing field {key!r}")
    return VenueProtocolError(f"{ev}: field {key!r} must be {want}, got {v!r:.60}")


def _get(m: dict, key: str, typ: type, ev: str):
    v = m.get(key, _MISSING)
    if type(v) is typ:  # exact: bool is not accepted as int
        return v
    raise _bad(ev, key, _TYPE_NAMES[typ], v)


def _ns(m: dict, key: str, ev: str) -> int:
    return _get(m, key, int, ev) * 1_000_000


def _dec(m: dict, key: str, ev: str) -> float:
    """A decimal sent as a JSON string; must be finite."""
    v = m.get(key, _MISSING)
    if type(v) is str:
        try:
            x = float(v)
        except ValueError:
            pass
        else:
            if math.isfinite(x):
                return x
    raise _bad(ev, key, "a decimal string", v)


def _bool(m: dict, key: str, ev: str) -> bool:
    return _get(m, key, bool, ev)


def _opt(fn, m: dict, key: str, ev: str):
    return None if m.get(key) is None else fn(m, key, ev)


def _opt_str(m: dict, key: str, ev: str) -> str | None:
    return None if m.get(key) is None else _get(m, key, str, ev)


def _int_or_str(m: dict, key: str, ev: str) -> int:
    """An integer that some venue versions send as a string (listenKeyExpired.E, er)."""
    v = m.get(key, _MISSING)
    if type(v) is int:
        return v
    if type(v) is str and v.isascii() and v.isdigit():
        return int(v)
    raise _bad(ev, key, "an integer or a digit string", v)


def _as_bytes(raw: bytes | str) -> bytes:
    if type(raw) is bytes:
        return raw
    if type(raw) is str:
        try:
            return raw.encode()
        except UnicodeEncodeError:  # lone surrogates
            raise VenueProtocolError("frame is not valid UTF-8 text") from None
    if isinstance(raw, (bytearray, memoryview)):
        return bytes(raw)
    raise UsageError(f"expected a text or bytes frame, got {type(raw).__name__}")


def _loads(raw: bytes | str) -> dict:
    try:
        m = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise VenueProtocolError(f"malformed JSON: {e}") from None
    if type(m) is not dict:
        raise VenueProtocolError(f"expected a JSON object, got {type(m).__name__}")
    return m


def _levels(m: dict, key: str, ev: str) -> np.ndarray:
    """Reference level parser: [[px, qty], ...] strings -> (n, 2) float64, checked."""
    v = _get(m, key, list, ev)
    out = np.empty((len(v), 2))
    for k, lv in enumerate(v):
        try:
            if type(lv) is not list or len(lv) != 2:
                raise TypeError
            p, q = lv
            if type(p) is not str or type(q) is not str:
                raise TypeError
            out[k, 0] = float(p)
            out[k, 1] = float(q)
        except (TypeError, ValueError):
            msg = f"{ev}: {key}[{k}] must be [price, qty] strings, got {lv!r:.60}"
            raise VenueProtocolError(msg) from None
    if not (np.isfinite(out).all() and (out >= 0.0).all()):
        raise VenueProtocolError(f"{ev}: field {key!r} holds a negative or non-finite level")
    out.flags.writeable = False
    return out


# ---------------------------------------------------- depth fast path (numba, no raising)
_P10 = np.array([10.0**k for k in range(16)])  # exact doubles
_K_E = np.frombuffer(b"e", np.uint8)
_K_B = np.frombuffer(b"b", np.uint8)
_K_A = np.frombuffer(b"a", np.uint8)
_K_LAST = np.frombuffer(b"lastUpdateId", np.uint8)
_K_BIDS = np.frombuffer(b"bids", np.uint8)
_K_ASKS = np.frombuffer(b"asks", np.uint8)


@nb.njit(cache=True, inline="always")
def _decimal(buf, i, n):
    """Digits[.digits] from buf[i] up to a closing quote -> (mantissa, frac, quote idx).

    Returns frac = -1 when the text is not that plain shape or has more than 15 digits.
    """
    m = 0
    j = i
    while j < n and 48 <= buf[j] <= 57:
        m = m * 10 + (int(buf[j]) - 48)  # int(): no uint8 wrap when run unjitted
        j += 1
    int_digits = j - i
    frac = 0
    if j < n and buf[j] == 46:  # '.'
        j += 1
        s = j
        while j < n and 48 <= buf[j] <= 57:
            m = m * 10 + (int(buf[j]) - 48)  # int(): no uint8 wrap when run unjitted
            j += 1
        frac = j - s
        if frac == 0:
            return 0, -1, -1
    if int_digits == 0 or int_digits + frac > 15 or j >= n or buf[j] != 34:
        return 0, -1, -1
    return m, frac, j


@nb.njit(cache=True)
def _scan_levels(buf, i, n, out, row, p10):
    """buf[i] == '['; parses [["px","qty"],...] (no whitespace) into out[row:].

    Returns (levels, index after the closing ']'), or (-1, -1) if not that exact shape.
    """
    k = row
    i += 1
    if i < n and buf[i] == 93:
        return 0, i + 1
    while i + 2 < n and buf[i] == 91 and buf[i + 1] == 34:  # ["
        m, f, j = _decimal(buf, i + 2, n)
        if f < 0 or j + 2 >= n or buf[j + 1] != 44 or buf[j + 2] != 34:  # ","
            return -1, -1
        out[k, 0] = m / p10[f]
        m, f, j = _decimal(buf, j + 3, n)
        if f < 0 or j + 2 >= n or buf[j + 1] != 93:  # ]
            return -1, -1
        out[k, 1] = m / p10[f]
        k += 1
        if buf[j + 2] == 93:
            return k - row, j + 3
        if buf[j + 2] != 44:
            return -1, -1
        i = j + 3
    return -1, -1


@nb.njit(cache=True, inline="always")
def _is_key(buf, s, e, key):
    if e - s != key.shape[0]:
        return False
    for t in range(e - s):
        if buf[s + t] != key[t]:
            return False
    return True


@nb.njit(cache=True)
def _scan_book(buf, anchor, kb, ka, out, p10):
    """Finds keys `kb`/`ka` with array values at the object depth of key `anchor`.

    Parses both level arrays into `out` (the first found from row 0, the other after it)
    and returns (ok, b_lo, b_hi, b_row, nb, a_lo, a_hi, a_row, na) with [lo, hi) the byte
    span of each array. ok is False on anything unexpected; the caller then falls back.
    """
    n = buf.shape[0]
    depth = 0
    anchor_depth = -1
    b = np.full(4, -1)  # lo, hi, row, depth
    a = np.full(4, -1)
    nb_ = na_ = 0
    row = 0
    i = 0
    while i < n:
        c = buf[i]
        if c == 34:  # a string: key if followed by ':'
            s = i + 1
            j = s
            while j < n and buf[j] != 34:
                j += 2 if buf[j] == 92 else 1  # skip escaped chars
            if j >= n:
                return False, 0, 0, 0, 0, 0, 0, 0, 0
            i = j + 1
            while i < n and (buf[i] == 32 or buf[i] == 9 or buf[i] == 10 or buf[i] == 13):
                i += 1
            if i >= n or buf[i] != 58:
                continue
            i += 1
            while i < n and (buf[i] == 32 or buf[i] == 9 or buf[i] == 10 or buf[i] == 13):
                i += 1
            if _is_key(buf, s, j, anchor):
                anchor_depth = depth
                continue
            is_b = _is_key(buf, s, j, kb)
            if i < n and buf[i] == 91 and (is_b or _is_key(buf, s, j, ka)):
                slot = b if is_b else a
                if slot[0] >= 0:  # duplicate key
                    return False, 0, 0, 0, 0, 0, 0, 0, 0
                k, end = _scan_levels(buf, i, n, out, row, p10)
                if k < 0:
                    return False, 0, 0, 0, 0, 0, 0, 0, 0
                slot[0], slot[1], slot[2], slot[3] = i, end, row, depth
                if is_b:
                    nb_ = k
                else:
                    na_ = k
                row += k
                i = end
            continue
        if c == 123 or c == 91:
            depth += 1
        elif c == 125 or c == 93:
            depth -= 1
        i += 1
    ok = b[0] >= 0 and a[0] >= 0 and b[3] == anchor_depth and a[3] == anchor_depth
    return ok, b[0], b[1], b[2], nb_, a[0], a[1], a[2], na_


@nb.njit(cache=True)
def _scan_depth_update(buf, out):
    # Constants are frozen into the compiled code: fewer arguments, cheaper dispatch.
    return _scan_book(buf, _K_E, _K_B, _K_A, out, _P10)


@nb.njit(cache=True)
def _scan_snapshot(buf, out):
    return _scan_book(buf, _K_LAST, _K_BIDS, _K_ASKS, out, _P10)


def _fast_book(raw: bytes, scan):
    """(header dict with both arrays spliced to [], bids, asks) or None to fall back."""
    out = np.empty((len(raw) // 9 + 2, 2))  # a level takes >= 9 bytes: ["1","1"]
    ok, b_lo, b_hi, b_row, nb_, a_lo, a_hi, a_row, na_ = scan(np.frombuffer(raw, np.uint8), out)
    if not ok:
        return None
    if b_lo < a_lo:
        doc = b"".join((raw[:b_lo], b"[]", raw[b_hi:a_lo], b"[]", raw[a_hi:]))
    else:
        doc = b"".join((raw[:a_lo], b"[]", raw[a_hi:b_lo], b"[]", raw[b_hi:]))
    try:
        m = orjson.loads(doc)
    except orjson.JSONDecodeError:
        return None
    out.flags.writeable = False
    return m, out[b_row : b_row + nb_], out[a_row : a_row + na_]


# ------------------------------------------------------------------------------ parsers
def _depth_update(m: dict, bids: np.ndarray | None = None, asks=None) -> DepthUpdate:
    ev = "depthUpdate"
    if bids is None:
        bids = _levels(m, "b", ev)
        asks = _levels(m, "a", ev)
    return DepthUpdate(
        _get(m, "s", str, ev).lower(),
        _ns(m, "E", ev),
        _ns(m, "T", ev),
        _get(m, "U", int, ev),
        _get(m, "u", int, ev),
        _get(m, "pu", int, ev),
        bids,
        asks,
    )


def _depth_fast(raw: bytes) -> DepthUpdate | None:
    r = _fast_book(raw, _scan_depth_update)
    if r is None:
        return None
    m, bids, asks = r
    if type(m) is dict and type(m.get("data")) is dict:
        m = m["data"]
    # The splice must have hit this event's own b/a (escaped keys could dodge the scanner).
    if type(m) is not dict or m.get("e") != "depthUpdate" or m.get("b") != [] or m.get("a") != []:
        return None
    return _depth_update(m, bids, asks)


def _snapshot(m: dict, bids: np.ndarray | None = None, asks=None) -> DepthSnapshot:
    ev = "depth snapshot"
    if bids is None:
        bids = _levels(m, "bids", ev)
        asks = _levels(m, "asks", ev)
    return DepthSnapshot(
        _get(m, "lastUpdateId", int, ev), _ns(m, "E", ev), _ns(m, "T", ev), bids, asks
    )


def _book_ticker(m: dict) -> BookTicker:
    ev = "bookTicker"
    return BookTicker(
        _get(m, "s", str, ev).lower(),
        _get(m, "u", int, ev),
        _ns(m, "E", ev),
        _ns(m, "T", ev),
        _dec(m, "b", ev),
        _dec(m, "B", ev),
        _dec(m, "a", ev),
        _dec(m, "A", ev),
    )


def _trade(m: dict) -> Trade:
    ev = "trade"
    return Trade(
        _get(m, "s", str, ev).lower(),
        _get(m, "t", int, ev),
        _ns(m, "E", ev),
        _ns(m, "T", ev),
        _dec(m, "p", ev),
        _dec(m, "q", ev),
        _get(m, "m", bool, ev),
        _get(m, "X", str, ev),
    )


def _agg_trade(m: dict) -> AggTrade:
    ev = "aggTrade"
    return AggTrade(
        _get(m, "s", str, ev).lower(),
        _get(m, "a", int, ev),
        _ns(m, "E", ev),
        _ns(m, "T", ev),
        _dec(m, "p", ev),
        _dec(m, "q", ev),
        _get(m, "f", int, ev),
        _get(m, "l", int, ev),
        _get(m, "m", bool, ev),
        _opt(_dec, m, "nq", ev),
    )


def _enum(m: dict, key: str, allowed: frozenset, ev: str) -> str:
    v = _get(m, key, str, ev)
    if v not in allowed:
        raise VenueProtocolError(f"{ev}: field {key!r} has unknown value {v!r}")
    return v


def _order_trade_update(m: dict) -> OrderTradeUpdate:
    ev = "ORDER_TRADE_UPDATE"
    o = _get(m, "o", dict, ev)
    evo = ev + ".o"
    return OrderTradeUpdate(
        event_ts_ns=_ns(m, "E", ev),
        transact_ts_ns=_ns(m, "T", ev),
        symbol=_get(o, "s", str, evo).lower(),
        client_order_id=_get(o, "c", str, evo),
        side=_enum(o, "S", SIDES, evo),
        order_type=_get(o, "o", str, evo),
        tif=_get(o, "f", str, evo),
        orig_qty=_dec(o, "q", evo),
        price=_dec(o, "p", evo),
        avg_price=_opt(_dec, o, "ap", evo),
        stop_price=_opt(_dec, o, "sp", evo),
        exec_type=_enum(o, "x", EXEC_TYPES, evo),
        status=_enum(o, "X", ORDER_STATUSES, evo),
        order_id=_get(o, "i", int, evo),
        last_fill_qty=_dec(o, "l", evo),
        cum_qty=_dec(o, "z", evo),
        last_fill_px=_dec(o, "L", evo),
        commission=_opt(_dec, o, "n", evo),
        commission_asset=_opt_str(o, "N", evo),
        trade_time_ns=_ns(o, "T", evo),
        trade_id=_get(o, "t", int, evo),
        maker=_get(o, "m", bool, evo),
        reduce_only=_get(o, "R", bool, evo),
        position_side=_opt_str(o, "ps", evo),
        orig_order_type=_opt_str(o, "ot", evo),
        realized_pnl=_opt(_dec, o, "rp", evo),
        expiry_reason=_opt(_int_or_str, o, "er", evo),
        modify_id=_opt(_int_or_str, o, "M", evo),
    )


def _trade_lite(m: dict) -> TradeLite:
    ev = "TRADE_LITE"
    return TradeLite(
        event_ts_ns=_ns(m, "E", ev),
        transact_ts_ns=_ns(m, "T", ev),
        symbol=_get(m, "s", str, ev).lower(),
        client_order_id=_get(m, "c", str, ev),
        side=_enum(m, "S", SIDES, ev),
        orig_qty=_dec(m, "q", ev),
        price=_dec(m, "p", ev),
        last_fill_px=_dec(m, "L", ev),
        last_fill_qty=_dec(m, "l", ev),
        trade_id=_get(m, "t", int, ev),
        order_id=_get(m, "i", int, ev),
        maker=_get(m, "m", bool, ev),
    )


def _account_update(m: dict) -> AccountUpdate:
    ev = "ACCOUNT_UPDATE"
    a = _get(m, "a", dict, ev)
    balances, positions = [], []
    for k, b in enumerate(_get(a, "B", list, ev + ".a")):
        evb = f"{ev}.a.B[{k}]"
        if type(b) is not dict:
            raise VenueProtocolError(f"{evb} must be an object")
        balances.append(
            Balance(
                asset=_get(b, "a", str, evb),
                wallet_balance=_dec(b, "wb", evb),
                cross_wallet_balance=_dec(b, "cw", evb),
                balance_change=_opt(_dec, b, "bc", evb),
            )
        )
    for k, p in enumerate(_get(a, "P", list, ev + ".a")):
        evp = f"{ev}.a.P[{k}]"
        if type(p) is not dict:
            raise VenueProtocolError(f"{evp} must be an object")
        positions.append(
            Position(
                symbol=_get(p, "s", str, evp).lower(),
                position_amt=_dec(p, "pa", evp),
                entry_px=_dec(p, "ep", evp),
                position_side=_get(p, "ps", str, evp),
                breakeven_px=_opt(_dec, p, "bep", evp),
                accumulated_realized=_opt(_dec, p, "cr", evp),
                unrealized_pnl=_opt(_dec, p, "up", evp),
                margin_type=_opt_str(p, "mt", evp),
                isolated_wallet=_opt(_dec, p, "iw", evp),
            )
        )
    fs = _opt_str(a, "S", ev + ".a")
    return AccountUpdate(
        event_ts_ns=_ns(m, "E", ev),
        transact_ts_ns=_ns(m, "T", ev),
        reason=_get(a, "m", str, ev + ".a"),
        balances=tuple(balances),
        positions=tuple(positions),
        funding_symbol=None if fs is None else fs.lower(),
    )


def _listen_key_expired(m: dict) -> ListenKeyExpired:
    ev = "listenKeyExpired"
    return ListenKeyExpired(_int_or_str(m, "E", ev) * 1_000_000, _opt_str(m, "listenKey", ev))


_EVENTS = {
    "depthUpdate": _depth_update,
    "bookTicker": _book_ticker,
    "trade": _trade,
    "aggTrade": _agg_trade,
    "ORDER_TRADE_UPDATE": _order_trade_update,
    "TRADE_LITE": _trade_lite,
    "ACCOUNT_UPDATE": _account_update,
    "listenKeyExpired": _listen_key_expired,
}


def _error(m: dict, request_id=None) -> ErrorReply:
    return ErrorReply(_get(m, "code", int, "error"), _get(m, "msg", str, "error"), request_id)


def parse_stream(raw: bytes | str):
    """Parses one WebSocket text frame (combined wrapper or bare).

    Returns one of DepthUpdate, BookTicker, Trade, AggTrade, OrderTradeUpdate, TradeLite,
    AccountUpdate, ListenKeyExpired, DepthSnapshot, CommandReply, ErrorReply, Unknown.

    Raises:
        VenueProtocolError: malformed frame; the message names the event and field.
        UsageError: `raw` is neither text nor bytes.
    """
    raw = _as_bytes(raw)
    # Binance sends "e" first; an event placed later still parses, on the slow path.
    if raw.find(b'"depthUpdate"', 0, 128) >= 0:
        upd = _depth_fast(raw)
        if upd is not None:
            return upd
    m = _loads(raw)
    d = m.get("data")
    if type(d) is dict and "stream" in m:
        m = d
    e = m.get("e", _MISSING)
    if type(e) is str:
        fn = _EVENTS.get(e)
        return Unknown(e) if fn is None else fn(m)
    if e is not _MISSING:
        raise _bad("event", "e", "a string", e)
    if "result" in m and "id" in m:
        return CommandReply(m["id"], m["result"])
    if "code" in m:
        return _error(m, m.get("id"))
    if "lastUpdateId" in m:
        return parse_depth_snapshot(raw)
    raise VenueProtocolError(f"unrecognised frame without 'e': keys {sorted(m)[:8]}")


def parse_depth_snapshot(raw: bytes | str | dict) -> DepthSnapshot:
    """Parses a `GET /fapi/v1/depth` body (bytes/str use the fast level scanner)."""
    if type(raw) is dict:
        return _snapshot(raw)
    raw = _as_bytes(raw)
    r = _fast_book(raw, _scan_snapshot)
    if r is not None:
        m, bids, asks = r
        if type(m) is dict and m.get("bids") == [] and m.get("asks") == []:
            return _snapshot(m, bids, asks)
    return _snapshot(_loads(raw))


def parse_order_response(raw: bytes | str | dict) -> OrderResponse | ErrorReply:
    """Parses a REST order body, a REST error body, or a WS-API order.* response.

    WS-API envelopes `{"id","status","result"|"error"}` are unwrapped; their `id` is kept
    as `request_id`. Errors come back as `ErrorReply` (not raised): rejections reach bots
    as order records carrying the venue's code.
    """
    m = raw if type(raw) is dict else _loads(raw)
    request_id = None
    if "result" in m or "error" in m:  # WS-API envelope [BN-WSAPI]
        request_id = m.get("id")
        if "error" in m:
            return _error(_get(m, "error", dict, "ws-api response"), request_id)
        m = _get(m, "result", dict, "ws-api response")
    elif "code" in m and "orderId" not in m:
        return _error(m)
    ev = "order response"
    return OrderResponse(
        symbol=_get(m, "symbol", str, ev).lower(),
        order_id=_get(m, "orderId", int, ev),
        client_order_id=_get(m, "clientOrderId", str, ev),
        side=_enum(m, "side", SIDES, ev),
        order_type=_get(m, "type", str, ev),
        tif=_get(m, "timeInForce", str, ev),
        orig_qty=_dec(m, "origQty", ev),
        price=_dec(m, "price", ev),
        executed_qty=_dec(m, "executedQty", ev),
        cum_qty=_opt(_dec, m, "cumQty", ev),
        avg_price=_opt(_dec, m, "avgPrice", ev),
        cum_quote=_opt(_dec, m, "cumQuote", ev),
        status=_enum(m, "status", ORDER_STATUSES, ev),
        reduce_only=_opt(_bool, m, "reduceOnly", ev),
        position_side=_opt_str(m, "positionSide", ev),
        update_time_ns=_ns(m, "updateTime", ev),
        request_id=request_id,
    )


def parse_error(raw: bytes | str | dict) -> ErrorReply:
    """Parses `{"code":..,"msg":..}` or a WS-API error envelope into an ErrorReply."""
    m = raw if type(raw) is dict else _loads(raw)
    if "error" in m:
        return _error(_get(m, "error", dict, "ws-api response"), m.get("id"))
    return _error(m, m.get("id"))
