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
* `parse_position_mode`: `GET /fapi/v1/positionSide/dual`, the account's position mode.
* `scan_ticker(raw, out, local_ns)` (from `_ticker`): a bookTicker or MARKET trade frame
  straight to hftbacktest events, ~0.6 us instead of ~4.5 us; it never raises and takes
  only the plain shape Binance sends, anything else is left to `parse_stream`.

Malformed input (bad or truncated JSON, a missing or wrongly typed field, an out-of-enum
status/side) raises `VenueProtocolError` naming the event and field, never anything else.

Module boundaries: the message dataclasses live in `messages`, the depth-level parsers (a
numba byte scanner and its checked fallback, with their measurements) in the kernel's
`connector.levels` (Binance's keys in `_levels`); this module holds the parsers, and re-exports every public name of `messages`, of `mapping`
(the venue <-> hftbacktest enum mappings) and the hftbacktest constants those return
(listed in `__all__`). Checked field access (`_get`, `_dec`, ...) lives in the kernel's
`connector.fields`.

Speed: parse_stream on bookTicker 245k msgs/s (4.1 us), trade 264k/s (3.8 us), depthUpdate
98k/s (10.2 us, see `_levels`), the whole mixed capture ethusdt_20240808.gz (54k bookTicker,
14k trade, 6.6k depth) 212k msgs/s (4.7 us); one core of a 2-vCPU Xeon, best of 5. About
1.1 us of a bookTicker or trade is the frozen dataclass's __init__ (8 fields through
object.__setattr__; a plain slots class takes 0.23 us). The depth fast path only runs when
`"depthUpdate"` is within the first 128 bytes (Binance sends `e` first).
"""

from __future__ import annotations

import numpy as np

from connector.binancefutures._levels import fast_book, scan_depth_update, scan_snapshot
from connector.binancefutures._ticker import BOOK_TICKER, FALLBACK, TRADE, scan_ticker
from connector.binancefutures.mapping import (
    EXEC_TYPES,
    GTX_REJECT_CODE,
    ORDER_STATUSES,
    ORDER_TYPE_NAMES,
    SIDE_NAMES,
    SIDES,
    TIF_NAMES,
    is_fill,
    order_status,
    order_type_code,
    side_code,
    tif_code,
)
from connector.binancefutures.messages import (
    AccountTrade,
    AccountUpdate,
    AggTrade,
    Balance,
    BookTicker,
    CommandReply,
    DepthSnapshot,
    DepthUpdate,
    ErrorReply,
    ListenKeyExpired,
    OrderResponse,
    OrderTradeUpdate,
    Position,
    PositionRisk,
    Trade,
    TradeLite,
    Unknown,
)
from connector.errors import VenueProtocolError
from connector.fields import (
    _MISSING,
    _array,
    _as_bytes,
    _bad,
    _bool,
    _dec,
    _enum,
    _get,
    _int_or_str,
    _levels,
    _loads,
    _ns,
    _opt,
    _opt_str,
)
from hftlive.constants import (
    BUY,
    CANCELED,
    EXPIRED,
    FILLED,
    FOK,
    GTC,
    GTX,
    IOC,
    LIMIT,
    MARKET,
    NEW,
    NONE,
    PARTIALLY_FILLED,
    REJECTED,
    SELL,
    UNSUPPORTED,
)

__all__ = [
    # parsers
    "parse_depth_snapshot",
    "parse_error",
    "parse_order_response",
    "parse_position_mode",
    "POSITION_MODE_WEIGHT",
    "SWITCH_TO_ONE_WAY",
    "parse_position_risk",
    "parse_stream",
    "parse_user_trades",
    # the bookTicker/trade fast path (re-exported from connector.binancefutures._ticker)
    "scan_ticker",
    "BOOK_TICKER",
    "TRADE",
    "FALLBACK",
    # venue <-> hftbacktest mappings
    "EXEC_TYPES",
    "GTX_REJECT_CODE",
    "ORDER_STATUSES",
    "ORDER_TYPE_NAMES",
    "SIDES",
    "SIDE_NAMES",
    "TIF_NAMES",
    "is_fill",
    "order_status",
    "order_type_code",
    "side_code",
    "tif_code",
    # messages (re-exported from connector.binancefutures.messages)
    "AccountTrade",
    "AccountUpdate",
    "AggTrade",
    "Balance",
    "BookTicker",
    "CommandReply",
    "DepthSnapshot",
    "DepthUpdate",
    "ErrorReply",
    "ListenKeyExpired",
    "OrderResponse",
    "OrderTradeUpdate",
    "Position",
    "PositionRisk",
    "Trade",
    "TradeLite",
    "Unknown",
    # hftbacktest constants the mappings return (re-exported from hftlive.constants)
    "BUY",
    "CANCELED",
    "EXPIRED",
    "FILLED",
    "FOK",
    "GTC",
    "GTX",
    "IOC",
    "LIMIT",
    "MARKET",
    "NEW",
    "NONE",
    "PARTIALLY_FILLED",
    "REJECTED",
    "SELL",
    "UNSUPPORTED",
]


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
    r = fast_book(raw, scan_depth_update)
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
    r = fast_book(raw, scan_snapshot)
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


def parse_user_trades(raw: bytes | str | list) -> list[AccountTrade]:
    """Parses a `GET /fapi/v1/userTrades` body (an array; numbers as strings)."""
    ev = "userTrades"
    return [
        AccountTrade(
            symbol=_get(m, "symbol", str, ev).lower(),
            trade_id=_get(m, "id", int, ev),
            order_id=_get(m, "orderId", int, ev),
            side=_enum(m, "side", SIDES, ev),
            px=_dec(m, "price", ev),
            qty=_dec(m, "qty", ev),
            commission=_dec(m, "commission", ev),
            commission_asset=_get(m, "commissionAsset", str, ev),
            maker=_bool(m, "maker", ev),
            time_ns=_ns(m, "time", ev),
        )
        for m in _array(raw, ev)
    ]


def parse_position_risk(raw: bytes | str | list) -> list[PositionRisk]:
    """Parses a `GET /fapi/v2/positionRisk` body (an array; numbers as strings)."""
    ev = "positionRisk"
    return [
        PositionRisk(
            symbol=_get(m, "symbol", str, ev).lower(),
            position_side=_get(m, "positionSide", str, ev),
            position_amt=_dec(m, "positionAmt", ev),
            entry_px=_dec(m, "entryPrice", ev),
            update_time_ns=_ns(m, "updateTime", ev),
        )
        for m in _array(raw, ev)
    ]


# GET /fapi/v1/positionSide/dual: USER_DATA, request weight 30 [BN "Get Current Position
# Mode (USER_DATA)", developers.binance.com/docs/derivatives/usds-margined-futures/account/
# rest-api/Get-Current-Position-Mode]; not in venue_protocols.md
POSITION_MODE_WEIGHT = 30
# How a user leaves hedge mode: the web UI, or POST /fapi/v1/positionSide/dual with
# dualSidePosition "false" ([BN "Change Position Mode (TRADE)"], the same path as the
# read); the venue refuses the switch while positions or open orders exist
SWITCH_TO_ONE_WAY = (
    "on Binance's futures page: settings, Position Mode, One-way Mode; or by the API: "
    "POST /fapi/v1/positionSide/dual with dualSidePosition=false, which Binance refuses "
    "while the account has open positions or orders"
)


def parse_position_mode(raw: bytes | str | dict) -> bool:
    """Parses a `GET /fapi/v1/positionSide/dual` body: True if the account is in hedge mode.

    [BN "Get Current Position Mode (USER_DATA)", developers.binance.com/docs/derivatives/
    usds-margined-futures/account/rest-api/Get-Current-Position-Mode]: USER_DATA (signed),
    request weight 30, the mode on every symbol: `{"dualSidePosition": true}` is Hedge
    Mode, false One-way Mode. Not in venue_protocols.md; checked against that page.

    Raises:
        VenueProtocolError: not a JSON object, or `dualSidePosition` missing or not a
            JSON boolean (a string "true" is malformed, not hedge mode).
    """
    m = raw if type(raw) is dict else _loads(raw)
    return _bool(m, "dualSidePosition", "positionSide/dual")


def parse_error(raw: bytes | str | dict) -> ErrorReply:
    """Parses `{"code":..,"msg":..}` or a WS-API error envelope into an ErrorReply."""
    m = raw if type(raw) is dict else _loads(raw)
    if "error" in m:
        return _error(_get(m, "error", dict, "ws-api response"), m.get("id"))
    return _error(m, m.get("id"))
