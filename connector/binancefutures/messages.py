"""Binance USD-M futures messages: the frozen dataclasses `protocol` parses venue JSON into.

Field names are ours, units in the name (`_ns`, `px`, `qty`); trailing comments give the
venue's keys of the user-data messages. Timestamps are ns, prices and quantities float64.
Enum fields of user-data messages keep the venue strings; `protocol` maps them to
hftbacktest codes (`order_status`, `side_code`, `tif_code`, `order_type_code`).

Messages holding arrays compare by identity (eq=False): == on arrays is elementwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from connector.errors import VenueRejected
from hftlive.constants import BUY, SELL


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
class AccountTrade:
    """One of our fills, from `GET /fapi/v1/userTrades` (§1.6); `id` is the stream's `t`."""

    symbol: str
    trade_id: int  # id
    order_id: int  # orderId
    side: str  # side
    px: float  # price
    qty: float  # qty
    commission: float  # commission (in commissionAsset)
    commission_asset: str  # commissionAsset
    maker: bool  # maker
    time_ns: int  # time


@dataclass(frozen=True, slots=True)
class PositionRisk:
    """One entry of `GET /fapi/v2/positionRisk` (§1.6); `position_amt` is signed."""

    symbol: str
    position_side: str  # positionSide: BOTH in one-way mode
    position_amt: float  # positionAmt
    entry_px: float  # entryPrice
    update_time_ns: int  # updateTime


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
    """A well-formed event whose `e` `protocol` does not parse (see `parse_stream`)."""

    event_type: str
