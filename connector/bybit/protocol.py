"""Bybit v5 (category `linear`) private, trade and REST wire formats: parsers from venue
JSON to frozen dataclasses. No I/O, no clock.

Venue field names are renamed here, once (`client_id = m["orderLinkId"]`); venue
milliseconds become nanoseconds here, once (§2.3: time fields inside private `data` are
*strings* of ms, `creationTime` and REST `time` are numbers: both are accepted). Prices and
quantities, strings on the wire, become float64; an empty string (`avgPrice` before any
fill, `price` of a market order) becomes 0.0.

Entry points (venue_protocols.md section in brackets):

* `parse_private(raw)` [§2.3]: one frame of the private stream: a topic push
  (`PrivatePush` with `OrderUpdate` / `Execution` / `Position` / `Wallet` items) or an op
  reply (`OpReply`: auth, subscribe, pong).
* `parse_trade(raw)` [§2.4]: one frame of the trade stream: `TradeReply` (order.create /
  amend / cancel, auth, pong; the general codes 20006, 10403, 10429, 10016, 10019 are
  plain `ret_code`s), its rate-limit header as `Limits`.
* `parse_envelope(raw)` [§2.5]: a REST body `{"retCode","retMsg","result","time"}`; then
  `parse_instruments`, `parse_order_list`, `parse_execution_list`, `parse_position_list`
  on its `result`; `parse_position_mode` reads the position mode from the latter.

Malformed input (bad JSON, a missing or wrongly typed field) raises `VenueProtocolError`
naming the message and field; nothing else is raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from connector.errors import VenueProtocolError

# §2.3 positionIdx: 0 one-way mode, 1 the buy side and 2 the sell side of a hedge-mode
# ("both sides") position
POSITION_IDX = (0, 1, 2)
HEDGE_LEGS = (1, 2)
# How a user leaves hedge mode: the web UI, or POST /v5/position/switch-mode with mode 0
# ("Merged Single"; 3 is "Both Sides") and `symbol` or `coin` [BY v5/position/position-mode];
# the venue refuses it while the symbol has a position or open orders (3P reports)
SWITCH_TO_ONE_WAY = (
    "on Bybit's derivatives trading page: the position mode setting, One-Way Mode; or by "
    "the API: POST /v5/position/switch-mode with category=linear, the symbol (or "
    "coin=USDT) and mode=0, which Bybit refuses while the symbol has a position or open "
    "orders"
)

# §2.5: these retMsg values all mean success (with retCode 0)
OK_MESSAGES = frozenset(("OK", "success", "SUCCESS", ""))
PRIVATE_TOPICS = ("order", "execution", "position", "wallet")

# ---------------------------------------------------------------------------- fields


def _loads(raw: str | bytes | dict, what: str) -> dict:
    if isinstance(raw, dict):
        return raw
    try:
        m = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise VenueProtocolError(f"{what}: not JSON ({e})") from None
    if not isinstance(m, dict):
        raise VenueProtocolError(f"{what}: not a JSON object: {str(raw)[:120]!r}")
    return m


def _get(m: dict, k: str, what: str) -> Any:
    try:
        return m[k]
    except KeyError:
        raise VenueProtocolError(f"{what}: field {k!r} missing") from None


def _str(m: dict, k: str, what: str) -> str:
    v = _get(m, k, what)
    if not isinstance(v, str):
        raise VenueProtocolError(f"{what}: field {k!r} must be a string, got {v!r}")
    return v


def _dec(m: dict, k: str, what: str, default: str | None = None) -> float:
    """A decimal string (or number) as float; "" is 0.0 (no price, nothing filled)."""
    v = m.get(k, default) if default is not None else _get(m, k, what)
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise VenueProtocolError(f"{what}: field {k!r} must be a decimal string, got {v!r}")
    if v == "":
        return 0.0
    try:
        return float(v)
    except ValueError:
        raise VenueProtocolError(f"{what}: field {k!r} is not a number: {v!r}") from None


def _ns(m: dict, k: str, what: str, default: str | None = None) -> int:
    """Venue ms (a string inside private `data`, a number elsewhere) as ns."""
    v = m.get(k, default) if default is not None else _get(m, k, what)
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise VenueProtocolError(f"{what}: field {k!r} must be ms, got {v!r}")
    if v == "":
        return 0
    try:
        return int(v) * 1_000_000
    except ValueError:
        raise VenueProtocolError(f"{what}: field {k!r} is not ms: {v!r}") from None


def _list(m: dict, k: str, what: str) -> list:
    v = _get(m, k, what)
    if not isinstance(v, list):
        raise VenueProtocolError(f"{what}: field {k!r} must be an array, got {type(v).__name__}")
    return v


def _obj(v: Any, what: str) -> dict:
    if not isinstance(v, dict):
        raise VenueProtocolError(f"{what}: an item must be an object, got {v!r}")
    return v


# ---------------------------------------------------------------------------- messages
@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order as the `order` topic and `/v5/order/realtime` show it [§2.3]."""

    order_id: str
    client_id: str  # orderLinkId ("" when the order was placed without one)
    symbol: str
    side: str  # Buy / Sell
    order_type: str  # Limit / Market
    tif: str  # GTC / IOC / FOK / PostOnly / RPI
    status: str  # orderStatus
    price: float  # 0.0 for a market order shown without a price
    qty: float
    cum_qty: float  # cumExecQty
    leaves_qty: float
    avg_price: float  # 0.0 while nothing filled
    reject_reason: str  # EC_NoError, EC_PostOnlyWillTakeLiquidity, ...
    cancel_type: str
    created_ns: int
    updated_ns: int


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill from the `execution` topic or `/v5/execution/list` [§2.3]."""

    exec_id: str  # the dedup id (the same on the stream and in the list)
    order_id: str
    client_id: str
    symbol: str
    side: str
    exec_type: str  # Trade, Funding, AdlTrade, BustTrade, ...
    px: float
    qty: float
    fee: float  # execFee, quote units (USDT for linear), negative for a rebate
    maker: bool
    ts_ns: int  # execTime
    seq: int


@dataclass(frozen=True, slots=True)
class Position:
    """A `position` push or a `/v5/position/list` entry [§2.3, §2.5]."""

    symbol: str
    side: str  # Buy / Sell / "" when flat
    size: float  # >= 0 on the wire
    position_idx: int  # 0 one-way, 1 hedge buy, 2 hedge sell
    updated_ns: int

    @property
    def signed_size(self) -> float:
        """The size signed by side (a Sell position is negative)."""
        return -self.size if self.side == "Sell" else self.size


@dataclass(frozen=True, slots=True)
class Wallet:
    """A `wallet` push: the account's equity and each coin's wallet balance [§2.3]."""

    account_type: str
    total_equity: float
    balances: dict  # coin -> walletBalance


@dataclass(frozen=True, slots=True)
class PrivatePush:
    topic: str  # order / execution / position / wallet (category variants: "order.linear")
    creation_ns: int
    items: tuple  # OrderUpdate / Execution / Position / Wallet


@dataclass(frozen=True, slots=True)
class OpReply:
    """A private (or public) stream's reply to auth / subscribe / ping [§2.3]."""

    op: str
    success: bool
    ret_msg: str
    req_id: str


@dataclass(frozen=True, slots=True)
class Limits:
    """X-Bapi-Limit* as a reply states them [§2.5]: the endpoint's per-second limit, what is
    left of it, and when the count resets (venue ms). -1 where the reply has none."""

    limit: int = -1
    remaining: int = -1
    reset_ms: int = -1


@dataclass(frozen=True, slots=True)
class TradeReply:
    """One trade-stream frame [§2.4]: an order op's reply, auth's, or pong."""

    op: str
    req_id: str  # "" for auth and pong
    ret_code: int
    ret_msg: str
    data: dict  # order ops: {"orderId", "orderLinkId"}
    limits: Limits
    time_ms: int  # the header's Timenow, -1 if none

    @property
    def ok(self) -> bool:
        return self.ret_code == 0


@dataclass(frozen=True, slots=True)
class Envelope:
    """A REST body [§2.5]."""

    ret_code: int
    ret_msg: str
    result: Any
    time_ms: int  # the venue's clock at the reply, -1 if not given

    @property
    def ok(self) -> bool:
        return self.ret_code == 0


@dataclass(frozen=True, slots=True)
class InstrumentInfo:
    """One `/v5/market/instruments-info` entry [§2.5]."""

    symbol: str
    status: str  # Trading, PreLaunch, Settling, ...
    tick_size: str  # decimal text as the venue gives it
    qty_step: str
    min_qty: str
    min_notional: str  # lotSizeFilter.minNotionalValue ("0" when absent)


# ---------------------------------------------------------------------------- parsers
def _order(m: Any, what: str) -> OrderUpdate:
    m = _obj(m, what)
    return OrderUpdate(
        order_id=_str(m, "orderId", what),
        client_id=m.get("orderLinkId") or "",
        symbol=_str(m, "symbol", what),
        side=_str(m, "side", what),
        order_type=_str(m, "orderType", what),
        tif=m.get("timeInForce") or "",
        status=_str(m, "orderStatus", what),
        price=_dec(m, "price", what, ""),
        qty=_dec(m, "qty", what),
        cum_qty=_dec(m, "cumExecQty", what),
        leaves_qty=_dec(m, "leavesQty", what, ""),
        avg_price=_dec(m, "avgPrice", what, ""),
        reject_reason=m.get("rejectReason") or "",
        cancel_type=m.get("cancelType") or "",
        created_ns=_ns(m, "createdTime", what, ""),
        updated_ns=_ns(m, "updatedTime", what),
    )


def _execution(m: Any, what: str) -> Execution:
    m = _obj(m, what)
    seq = m.get("seq", 0)
    return Execution(
        exec_id=_str(m, "execId", what),
        order_id=_str(m, "orderId", what),
        client_id=m.get("orderLinkId") or "",
        symbol=_str(m, "symbol", what),
        side=_str(m, "side", what),
        exec_type=m.get("execType") or "Trade",
        px=_dec(m, "execPrice", what),
        qty=_dec(m, "execQty", what),
        fee=_dec(m, "execFee", what, "0"),
        maker=bool(m.get("isMaker", False)),
        ts_ns=_ns(m, "execTime", what),
        seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else 0,
    )


def _position(m: Any, what: str) -> Position:
    m = _obj(m, what)
    idx = m.get("positionIdx", 0)  # always sent (§2.3); absent read as one-way, as before
    # the mode is read from it (parse_position_mode): anything but 0/1/2 is malformed
    if type(idx) is not int or idx not in POSITION_IDX:
        raise VenueProtocolError(f"{what}: field 'positionIdx' must be 0, 1 or 2, got {idx!r:.40}")
    size = _dec(m, "size", what)
    side = m.get("side") or ""
    if size and side not in ("Buy", "Sell"):
        # hftbacktest panics here (§3.2); we refuse the message instead
        raise VenueProtocolError(f"{what}: size {size} with side {side!r}")
    return Position(
        symbol=_str(m, "symbol", what),
        side=side,
        size=size,
        position_idx=idx,
        updated_ns=_ns(m, "updatedTime", what, ""),
    )


def _wallet(m: Any, what: str) -> Wallet:
    m = _obj(m, what)
    coins = {}
    for c in m.get("coin") or []:
        c = _obj(c, what + " coin")
        coins[_str(c, "coin", what)] = _dec(c, "walletBalance", what, "")
    return Wallet(m.get("accountType") or "", _dec(m, "totalEquity", what, ""), coins)


_ITEMS = {
    "order": _order,
    "execution": _execution,
    "position": _position,
    "wallet": _wallet,
    "dcp": lambda d, what: _obj(d, what),
}  # DCP status pushes: kept as they come


def parse_private(raw: str | bytes) -> PrivatePush | OpReply:
    """One private-stream frame [§2.3].

    Raises:
        VenueProtocolError: malformed, or a topic we did not subscribe to.
    """
    m = _loads(raw, "private stream")
    if "op" in m and "topic" not in m:
        op = m["op"]
        # linear auth/subscribe replies carry `success`; the private pong carries none
        return OpReply(str(op), bool(m.get("success", op == "pong")), str(m.get("ret_msg", "")),
                       str(m.get("req_id", "")))  # fmt: skip
    topic = _str(m, "topic", "private push")
    base = topic.split(".", 1)[0]
    item = _ITEMS.get(base)
    if item is None:
        raise VenueProtocolError(f"private push: topic {topic!r} was not subscribed")
    what = f"private {topic}"
    items = tuple(item(d, what) for d in _list(m, "data", what))
    return PrivatePush(topic, _ns(m, "creationTime", what, ""), items)


def _int(v: Any, default: int = -1) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lstrip("-").isdigit():
        return int(v)
    return default


def limits_of(headers: Any) -> Limits:
    """X-Bapi-Limit, -Status, -Reset-Timestamp from a REST reply's headers or a trade
    reply's `header` (any mapping; names as the venue spells them)."""
    if not headers:
        return Limits()
    get = headers.get
    return Limits(_int(get("X-Bapi-Limit")), _int(get("X-Bapi-Limit-Status")),
                  _int(get("X-Bapi-Limit-Reset-Timestamp")))  # fmt: skip


def parse_trade(raw: str | bytes) -> TradeReply:
    """One trade-stream frame [§2.4] (camelCase: `retCode`, `retMsg`, `reqId`).

    Raises:
        VenueProtocolError: malformed.
    """
    m = _loads(raw, "trade stream")
    op = m.get("op")
    if not isinstance(op, str):
        raise VenueProtocolError(f"trade stream: field 'op' missing: {str(raw)[:120]!r}")
    code = m.get("retCode", 0)
    if not isinstance(code, int) or isinstance(code, bool):
        raise VenueProtocolError(f"trade {op}: retCode must be an integer, got {code!r}")
    data = m.get("data")
    header = m.get("header") if isinstance(m.get("header"), dict) else {}
    return TradeReply(op=op, req_id=str(m.get("reqId") or ""), ret_code=code,
                      ret_msg=str(m.get("retMsg", "")),
                      data=data if isinstance(data, dict) else {}, limits=limits_of(header),
                      time_ms=_int(header.get("Timenow")))  # fmt: skip


def parse_envelope(raw: str | bytes | dict) -> Envelope:
    """A REST body [§2.5].

    Raises:
        VenueProtocolError: not JSON, or no integer `retCode`.
    """
    m = _loads(raw, "REST reply")
    code = _get(m, "retCode", "REST reply")
    if not isinstance(code, int) or isinstance(code, bool):
        raise VenueProtocolError(f"REST reply: retCode must be an integer, got {code!r}")
    msg = m.get("retMsg", "")
    if code == 0 and msg not in OK_MESSAGES:
        # §2.5 lists the success messages; a retCode 0 with another message is taken as
        # success too (the code decides), but it is unusual enough to say so
        msg = f"{msg} (retCode 0)"
    return Envelope(code, str(msg), m.get("result"), _int(m.get("time")))


def _result_list(result: Any, what: str) -> list:
    return _list(_obj(result, what), "list", what)


def parse_instruments(result: Any) -> list[InstrumentInfo]:
    """`result` of GET /v5/market/instruments-info [§2.5]."""
    out = []
    for m in _result_list(result, "instruments-info"):
        m = _obj(m, "instruments-info")
        what = f"instruments-info {m.get('symbol')!r}"
        pf = _obj(_get(m, "priceFilter", what), what)
        lf = _obj(_get(m, "lotSizeFilter", what), what)
        out.append(InstrumentInfo(
            symbol=_str(m, "symbol", what), status=str(m.get("status", "")),
            tick_size=_str(pf, "tickSize", what), qty_step=_str(lf, "qtyStep", what),
            min_qty=_str(lf, "minOrderQty", what),
            min_notional=str(lf.get("minNotionalValue") or "0"),
        ))  # fmt: skip
    return out


def parse_order_list(result: Any) -> tuple[list[OrderUpdate], str]:
    """`result` of GET /v5/order/realtime or /v5/order/history: (orders, nextPageCursor)."""
    r = _obj(result, "order list")
    orders = [_order(m, "order list") for m in _result_list(r, "order list")]
    return orders, str(r.get("nextPageCursor") or "")


def parse_execution_list(result: Any) -> tuple[list[Execution], str]:
    """`result` of GET /v5/execution/list: (executions, nextPageCursor)."""
    r = _obj(result, "execution list")
    execs = [_execution(m, "execution list") for m in _result_list(r, "execution list")]
    return execs, str(r.get("nextPageCursor") or "")


def parse_position_list(result: Any) -> list[Position]:
    """`result` of GET /v5/position/list."""
    return [_position(m, "position list") for m in _result_list(result, "position list")]


def parse_position_mode(result: Any) -> bool:
    """`result` of GET /v5/position/list for one symbol: True if that symbol is in hedge
    mode ("both sides"), False if one-way ("merged single").

    Bybit has no v5 query of the position mode itself (only `POST /v5/position/switch-mode`
    sets it, per symbol or per settle coin [BY v5/position/position-mode]); the position
    list tells it: asked with `symbol` it returns that symbol's entries whether or not a
    position is open (Bybit's "Get Position Info" page, as SDK docs quote it: "If symbol
    passed, it returns data regardless of having position or not"), one with positionIdx
    0 in one-way mode and two, positionIdx 1 (buy side) and 2 (sell side), in hedge mode
    (§2.3). An empty list says nothing of a hedge and reads as one-way.

    Raises:
        VenueProtocolError: a malformed result, or a positionIdx other than 0/1/2.
    """
    return hedge_legs_in(parse_position_list(result))


def hedge_legs_in(positions: list[Position]) -> bool:
    """Whether `positions` (one symbol's) hold hedge-mode legs, positionIdx 1 or 2."""
    return any(p.position_idx in HEDGE_LEGS for p in positions)
