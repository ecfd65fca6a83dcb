"""hftbacktest's exchange model in Python: NoPartialFillExchange and PartialFillExchange.

Pure logic: no I/O, no clock, no logging. It reproduces hftbacktest 2.4.4's backtest
exchange (Rust, ``hftbacktest/src/backtest/``: ``proc/nopartialfillexchange.rs``,
``proc/partialfillexchange.rs``, ``models/{queue,latency,fee}.rs``, ``order.rs``) so that a
setting means the same thing in the sim venue as in a backtest. Names are hftbacktest's.

The engine keeps its own copy of the book, as hftbacktest's exchange processor does
(``HashMapMarketDepth`` rules), fed with exchange-side events in ``exch_ts`` order
(:meth:`HbtExchange.process`); orders reach it through an order bus with hftbacktest's
latency model, and its responses leave through the same bus (:meth:`HbtExchange.responses`).

Order bus (``order.rs``):

* A request made at local time ``t`` arrives at ``t + entry(t)``; a negative entry latency
  is a technical rejection that the local side receives at ``t - entry``. Arrival times
  never decrease in request order (each is at least the last one still queued).
* Arrivals are handled after every exchange event with ``exch_ts <=`` the arrival time
  (hftbacktest's event set orders ties: local data, local order, exchange data, exchange
  order).
* A response made at exchange time ``e`` reaches the local side at ``e + response(e)``,
  never before the last response still queued.

Matching (both exchanges; "buy" shown, sell mirrored):

* New limit buy at ``px >= best_ask``: GTX expires. Otherwise it takes: NoPartialFill fills
  the whole qty at the best ask as taker, whatever the displayed qty (GTC, IOC and FOK
  alike); PartialFill walks the ask levels (FOK only if they hold the qty, IOC expires its
  rest, GTC fills the rest at its own price; the buy side's GTC walk stops one tick short
  of its price, the sell side's includes it, as in 2.4.4). Below the ask: GTC/GTX rest
  with the queue model's initial position, IOC/FOK expire.
* Market orders: NoPartialFill fills in full at the best; PartialFill walks 100 ticks
  (101 on the sell side) and expires the rest.
* A resting buy fills in full as maker at its own price when the best ask falls to it or
  below (a depth event), or when a sell trade prints below it. A sell trade at its price
  advances the queue model; NoPartialFill fills in full once the queue model reports any
  qty, PartialFill fills what it reports (at most the leaves).
* A depth change at its price updates the queue model with (prev qty, new qty).
* Cancel: unknown ids are answered with ``req = REJECTED``. Modify: a new price or a qty
  above the leaves re-queues (cancel + new, GTX may expire); otherwise qty and leaves are
  set in place, keeping the queue position.

Queue models (``models/queue.rs``): ``RiskAverseQueueModel`` (front qty = book qty at
entry, minus trades, ``min(front, new qty)`` on depth changes) and ``ProbQueueModel`` with
``PowerProbQueueFunc(n)``, ``PowerProbQueueFunc2(n)``, ``PowerProbQueueFunc3(n)``,
``LogProbQueueFunc`` and ``LogProbQueueFunc2``. Float semantics are Rust's (``f64::min``
ignores a NaN, 0/0 is NaN, ``powf`` of a negative base is NaN).

Fees: ``TradingValueFeeModel`` (maker/taker fee times price * qty; negative = rebate) on a
linear asset (contract size 1). :attr:`HbtExchange.state` holds the exchange-side account
(position, balance, fee, num_trades, trading_volume, trading_value) with every fill.

Deliberate differences from 2.4.4, each pinned in tests/test_hbt_exchange.py:

* PartialFill: an order that a trade at its price fills exactly to zero leaves is removed.
  2.4.4 leaves it in its book as FILLED, and its next touch errors the whole backtest
  (``InvalidOrderStatus``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace

from connector.errors import UsageError
from hftlive.constants import (
    BUY,
    BUY_EVENT,
    CANCELED,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EXCH_EVENT,
    EXPIRED,
    FILLED,
    FOK,
    GTC,
    GTX,
    INVALID_MAX,
    INVALID_MIN,
    IOC,
    LIMIT,
    MARKET,
    NEW,
    NONE,
    PARTIALLY_FILLED,
    REJECTED,
    REPLACED,
    SELL,
    SELL_EVENT,
    TRADE_EVENT,
)

EXCHANGES = ("no_partial_fill", "partial_fill")
QUEUE_MODELS = ("risk_averse", "power_prob", "power_prob2", "power_prob3", "log_prob", "log_prob2")


# ---------------------------------------------------------------- Rust float semantics


def _fmin(a: float, b: float) -> float:
    """Rust's f64::min: a NaN operand is ignored."""
    if a != a:
        return b
    if b != b:
        return a
    return a if a < b else b


def _div(a: float, b: float) -> float:
    if b == 0.0:
        if a == 0.0 or a != a:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _powf(x: float, n: float) -> float:
    try:
        return math.pow(x, n)
    except ValueError:  # negative base, fractional exponent
        return math.nan
    except (OverflowError, ZeroDivisionError):
        return math.inf


def _ln1p(x: float) -> float:  # Rust (1.0 + x).ln()
    y = 1.0 + x
    if y < 0.0 or y != y:
        return math.nan
    return -math.inf if y == 0.0 else math.log(y)


# ---------------------------------------------------------------- orders and depth


@dataclass(slots=True)
class HbtOrder:
    """An order as hftbacktest's ``Order``: ids, price in ticks, and its state."""

    order_id: int
    side: int
    price_tick: int
    qty: float
    tif: int = GTC
    order_type: int = LIMIT
    leaves_qty: float = 0.0
    exec_qty: float = 0.0
    exec_price_tick: int = 0
    status: int = NONE
    req: int = NONE
    maker: bool = False
    local_ts: int = 0
    exch_ts: int = 0
    q: object = None  # the queue model's state


@dataclass(slots=True)
class Response:
    """One response of the exchange (or a technical rejection), as the local side gets it.

    ``req`` is the request kind it answers (NEW, CANCELED, REPLACED), 0 for a fill caused
    by market data. ``fills`` lists what this response executed, (price_tick, qty, maker)
    per piece: hftbacktest's Order carries only the last piece of a taker walk across
    levels, a venue account needs each one.
    """

    local_recv_ts: int
    order: HbtOrder
    req: int = 0
    fills: tuple = ()


@dataclass(slots=True)
class StateValues:
    """hftbacktest's ``state_values``, kept by the exchange from every fill."""

    position: float = 0.0
    balance: float = 0.0
    fee: float = 0.0
    num_trades: int = 0
    trading_volume: float = 0.0
    trading_value: float = 0.0


class HashMapDepth:
    """The exchange's book with ``HashMapMarketDepth``'s update rules (best-tick tracking
    included, as it decides when resting orders are crossed)."""

    def __init__(self, tick_size: float, lot_size: float):
        self.tick_size, self.lot_size = tick_size, lot_size
        self.bid: dict[int, float] = {}
        self.ask: dict[int, float] = {}
        self.best_bid_tick, self.best_ask_tick = INVALID_MIN, INVALID_MAX
        self.low_bid_tick, self.high_ask_tick = INVALID_MAX, INVALID_MIN

    def bid_qty_at_tick(self, tick: int) -> float:
        return self.bid.get(tick, 0.0)

    def ask_qty_at_tick(self, tick: int) -> float:
        return self.ask.get(tick, 0.0)

    def _below(self, start: int, end: int) -> int:
        bid = self.bid
        for t in range(start - 1, end - 1, -1):
            if bid.get(t, 0.0) > 0.0:
                return t
        return INVALID_MIN

    def _above(self, start: int, end: int) -> int:
        ask = self.ask
        for t in range(start + 1, end + 1):
            if ask.get(t, 0.0) > 0.0:
                return t
        return INVALID_MAX

    def update_bid(self, px: float, qty: float) -> tuple[int, int, float]:
        """Sets a bid level; returns (price_tick, prev_best_bid_tick, prev_qty)."""
        tick = round(px / self.tick_size)
        alive = round(qty / self.lot_size) > 0
        prev_best = self.best_bid_tick
        prev_qty = self.bid.pop(tick, 0.0) if not alive else self.bid.get(tick, 0.0)
        if alive:
            self.bid[tick] = qty
            if tick > self.best_bid_tick:
                self.best_bid_tick = tick
                if tick >= self.best_ask_tick:
                    self.best_ask_tick = self._above(tick, self.high_ask_tick)
            self.low_bid_tick = min(self.low_bid_tick, tick)
        elif tick == self.best_bid_tick:
            self.best_bid_tick = self._below(tick, self.low_bid_tick)
            if self.best_bid_tick == INVALID_MIN:
                self.low_bid_tick = INVALID_MAX
        return tick, prev_best, prev_qty

    def update_ask(self, px: float, qty: float) -> tuple[int, int, float]:
        """Sets an ask level; returns (price_tick, prev_best_ask_tick, prev_qty)."""
        tick = round(px / self.tick_size)
        alive = round(qty / self.lot_size) > 0
        prev_best = self.best_ask_tick
        prev_qty = self.ask.pop(tick, 0.0) if not alive else self.ask.get(tick, 0.0)
        if alive:
            self.ask[tick] = qty
            if tick < self.best_ask_tick:
                self.best_ask_tick = tick
                if self.best_bid_tick >= tick:
                    self.best_bid_tick = self._below(tick, self.low_bid_tick)
            self.high_ask_tick = max(self.high_ask_tick, tick)
        elif tick == self.best_ask_tick:
            self.best_ask_tick = self._above(tick, self.high_ask_tick)
            if self.best_ask_tick == INVALID_MAX:
                self.high_ask_tick = INVALID_MIN
        return tick, prev_best, prev_qty

    def clear(self, side: int, upto_px: float) -> None:
        """hftbacktest's clear_depth: one side up to a price (inclusive), or everything."""
        if side == BUY:
            if math.isfinite(upto_px):
                upto = round(upto_px / self.tick_size)
                if self.best_bid_tick != INVALID_MIN:
                    for t in range(upto, self.best_bid_tick + 1):
                        self.bid.pop(t, None)
                self.best_bid_tick = self._below(upto - 1, self.low_bid_tick)
            else:
                self.bid.clear()
                self.best_bid_tick = INVALID_MIN
            if self.best_bid_tick == INVALID_MIN:
                self.low_bid_tick = INVALID_MAX
        elif side == SELL:
            if math.isfinite(upto_px):
                upto = round(upto_px / self.tick_size)
                if self.best_ask_tick != INVALID_MAX:
                    for t in range(self.best_ask_tick, upto + 1):
                        self.ask.pop(t, None)
                self.best_ask_tick = self._above(upto + 1, self.high_ask_tick)
            else:
                self.ask.clear()
                self.best_ask_tick = INVALID_MAX
            if self.best_ask_tick == INVALID_MAX:
                self.high_ask_tick = INVALID_MIN
        else:
            self.__init__(self.tick_size, self.lot_size)


# ---------------------------------------------------------------- models


class RiskAverseQueueModel:
    """Queue position advances only by trades at the order's price, or when the level
    shrinks below it (hftbacktest's ``RiskAdverseQueueModel``)."""

    def new_order(self, order: HbtOrder, depth: HashMapDepth) -> None:
        order.q = _front_qty(order, depth)

    def trade(self, order: HbtOrder, qty: float) -> None:
        order.q -= qty

    def depth(self, order: HbtOrder, prev_qty: float, new_qty: float) -> None:
        order.q = _fmin(order.q, new_qty)

    def is_filled(self, order: HbtOrder, lot_size: float) -> float:
        lots = round(-order.q / lot_size)
        if lots > 0:
            order.q = 0.0
            return lots * lot_size
        return 0.0


class ProbQueueModel:
    """Queue position also advances by a share of each decrease of the level, the share
    ``prob(front, back)`` being the chance the decrease was behind us. ``q`` holds
    [front qty, trade qty since the last depth change] (hftbacktest's ``QueuePos``)."""

    def __init__(self, prob):
        self.prob = prob

    def new_order(self, order: HbtOrder, depth: HashMapDepth) -> None:
        order.q = [_front_qty(order, depth), 0.0]

    def trade(self, order: HbtOrder, qty: float) -> None:
        order.q[0] -= qty
        order.q[1] += qty

    def depth(self, order: HbtOrder, prev_qty: float, new_qty: float) -> None:
        q = order.q
        # the trades since the last change already advanced us: not counted twice
        chg = prev_qty - new_qty - q[1]
        q[1] = 0.0
        if chg < 0.0:  # the level grew: what joined is behind us
            q[0] = _fmin(q[0], new_qty)
            return
        front = q[0]
        back = prev_qty - front
        prob = self.prob(front, back)
        if math.isinf(prob):
            prob = 1.0
        est = front - (1.0 - prob) * chg + _fmin(back - prob * chg, 0.0)
        q[0] = _fmin(est, new_qty)

    def is_filled(self, order: HbtOrder, lot_size: float) -> float:
        q = order.q
        lots = round(-q[0] / lot_size) if q[0] == q[0] else 0
        if lots > 0:
            q[0] = 0.0
            return lots * lot_size
        return 0.0


def _front_qty(order: HbtOrder, depth: HashMapDepth) -> float:
    if order.side == BUY:
        return depth.bid_qty_at_tick(order.price_tick)
    return depth.ask_qty_at_tick(order.price_tick)


def power_prob(n: float):
    """PowerProbQueueFunc: f(back) / (f(back) + f(front)), f(x) = x ** n."""
    return lambda front, back: _div(_powf(back, n), _powf(back, n) + _powf(front, n))


def power_prob2(n: float):
    """PowerProbQueueFunc2: f(back) / f(back + front), f(x) = x ** n."""
    return lambda front, back: _div(_powf(back, n), _powf(back + front, n))


def power_prob3(n: float):
    """PowerProbQueueFunc3: 1 - f(front / (front + back)), f(x) = x ** n."""
    return lambda front, back: 1.0 - _powf(_div(front, front + back), n)


def log_prob(front: float, back: float) -> float:
    """LogProbQueueFunc: f(back) / (f(back) + f(front)), f(x) = ln(1 + x)."""
    return _div(_ln1p(back), _ln1p(back) + _ln1p(front))


def log_prob2(front: float, back: float) -> float:
    """LogProbQueueFunc2: f(back) / f(back + front), f(x) = ln(1 + x)."""
    return _div(_ln1p(back), _ln1p(back + front))


def queue_model(name: str, n: float = 3.0):
    """The queue model hftbacktest calls ``<name>_queue_model`` (risk_averse is its
    ``risk_adverse_queue_model``); ``n`` is the power of the power_prob ones."""
    if name == "risk_averse":
        return RiskAverseQueueModel()
    funcs = {"power_prob": power_prob, "power_prob2": power_prob2, "power_prob3": power_prob3}
    if name in funcs:
        return ProbQueueModel(funcs[name](n))
    if name in ("log_prob", "log_prob2"):
        return ProbQueueModel(log_prob if name == "log_prob" else log_prob2)
    raise UsageError(f"unknown queue model {name!r} (known: {', '.join(QUEUE_MODELS)})")


class ConstantLatency:
    """``constant_order_latency(entry_ns, response_ns)``."""

    def __init__(self, entry_ns: int, response_ns: int):
        self.entry_ns, self.response_ns = int(entry_ns), int(response_ns)

    def entry(self, ts: int) -> int:
        return self.entry_ns

    def response(self, ts: int) -> int:
        return self.response_ns


class IntpOrderLatency:
    """``intp_order_latency(data)``: latencies interpolated between rows of (req_ts, exch_ts,
    resp_ts) (hftbacktest's ``OrderLatencyRow``). Entry latency is interpolated on req_ts,
    response latency on exch_ts; before the first row the first row's latency applies,
    after the last row the last's. A row with exch_ts <= 0 marks a request the venue
    rejected: the entry latency is then the negated round trip (a technical rejection).
    Like hftbacktest, each lookup walks forward from where the last one stopped.
    """

    def __init__(self, rows):
        self.rows = [(int(r[0]), int(r[1]), int(r[2])) for r in rows]
        if not self.rows:
            raise UsageError("order latency data has no rows")
        self._entry_rn = self._resp_rn = 0

    @staticmethod
    def _intp(x: int, x1: int, y1: int, x2: int, y2: int) -> int:
        return int(float(y2 - y1) / float(x2 - x1) * float(x - x1)) + y1

    def entry(self, ts: int) -> int:
        rows = self.rows
        req0, exch0, _ = rows[0]
        if ts < req0:
            return exch0 - req0
        while True:
            if self._entry_rn + 1 >= len(rows):
                req, exch, _ = rows[-1]
                return exch - req
            req, exch, resp = rows[self._entry_rn]
            nreq, nexch, nresp = rows[self._entry_rn + 1]
            if req <= ts < nreq:
                if exch <= 0 or nexch <= 0:
                    return -self._intp(ts, req, resp - req, nreq, nresp - nreq)
                return self._intp(ts, req, exch - req, nreq, nexch - nreq)
            self._entry_rn += 1

    def response(self, ts: int) -> int:
        rows = self.rows
        _, exch0, resp0 = rows[0]
        if ts < exch0:
            return resp0 - exch0
        while True:
            if self._resp_rn + 1 >= len(rows):
                _, exch, resp = rows[-1]
                return resp - exch
            _, exch, resp = rows[self._resp_rn]
            _, nexch, nresp = rows[self._resp_rn + 1]
            if exch <= ts < nexch:
                return self._intp(ts, exch, resp - exch, nexch, nresp - nexch)
            self._resp_rn += 1


@dataclass(frozen=True)
class TradingValueFeeModel:
    """``trading_value_fee_model(maker_fee, taker_fee)``: fee = rate * price * qty."""

    maker_fee: float = 0.0
    taker_fee: float = 0.0

    def amount(self, maker: bool, value: float) -> float:
        return (self.maker_fee if maker else self.taker_fee) * value


# ---------------------------------------------------------------- the exchange


@dataclass
class _Bus:
    """hftbacktest's OrderBus: FIFO, each timestamp at least the last one queued."""

    items: deque = field(default_factory=deque)

    def append(self, ts: int, order: HbtOrder) -> None:
        if self.items:
            ts = max(ts, self.items[-1][0])
        self.items.append((ts, order))


class HbtExchange:
    """hftbacktest's NoPartialFillExchange or PartialFillExchange with its order bus.

    Args:
        tick_size, lot_size: the instrument's.
        exchange: ``"no_partial_fill"`` or ``"partial_fill"``.
        queue: a queue model (see :func:`queue_model`).
        latency: a :class:`ConstantLatency` or :class:`IntpOrderLatency`.
        fees: a :class:`TradingValueFeeModel`.

    Raises:
        UsageError: on an unknown exchange or a bad tick/lot size.
    """

    def __init__(self, tick_size: float, lot_size: float, exchange: str = "no_partial_fill",
                 queue=None, latency=None, fees=None):  # fmt: skip
        if exchange not in EXCHANGES:
            raise UsageError(f"unknown exchange {exchange!r} (known: {', '.join(EXCHANGES)})")
        for k, v in (("tick_size", tick_size), ("lot_size", lot_size)):
            if not (math.isfinite(v) and v > 0.0):
                raise UsageError(f"{k} must be positive and finite, got {v!r}")
        self.partial = exchange == "partial_fill"
        self.tick_size, self.lot_size = tick_size, lot_size
        self.depth = HashMapDepth(tick_size, lot_size)
        self.queue = queue if queue is not None else RiskAverseQueueModel()
        self.latency = latency if latency is not None else ConstantLatency(0, 0)
        self.fees = fees if fees is not None else TradingValueFeeModel()
        self.state = StateValues()
        self.orders: dict[int, HbtOrder] = {}  # resting, by order id
        self._at: dict[tuple[int, int], dict[int, None]] = {}  # (side, tick) -> ids
        self._to_exch = _Bus()
        self._to_local = _Bus()
        self._filled: list[int] = []
        self._taken: list[tuple] = []  # taker pieces of the request being handled

    # ------------------------------------------------------------ local side: requests

    def submit(self, order: HbtOrder, local_ts: int) -> None:
        """Sends a new order (its id, side, price_tick, qty, tif, order_type) at local_ts."""
        if order.side not in (BUY, SELL) or order.order_type not in (LIMIT, MARKET):
            raise UsageError(f"bad side or order type: {order!r}")
        if order.tif not in (GTC, GTX, FOK, IOC):
            raise UsageError(f"bad time in force: {order!r}")
        order = replace(order, leaves_qty=order.qty, exec_qty=0.0, status=NONE, req=NEW,
                        local_ts=local_ts, exch_ts=0, q=None)  # fmt: skip
        self._request(order, local_ts, None)

    def cancel(self, order: HbtOrder, local_ts: int) -> None:
        """Sends a cancel of `order` (the local side's copy) at local_ts."""
        self._request(replace(order, req=CANCELED, local_ts=local_ts, q=None), local_ts, None)

    def modify(self, order: HbtOrder, price_tick: int, qty: float, local_ts: int) -> None:
        """Sends a modify of `order` (the local side's copy) to price_tick and qty."""
        orig = (order.price_tick, order.qty)
        sent = replace(order, price_tick=price_tick, qty=qty, req=REPLACED, local_ts=local_ts,
                       q=None)  # fmt: skip
        self._request(sent, local_ts, orig)

    def _request(self, order: HbtOrder, local_ts: int, orig) -> None:
        lat = self.latency.entry(local_ts)
        if lat < 0:  # a technical rejection, received back after -lat
            kind = order.req
            order.req = REJECTED
            if orig is not None:
                order.price_tick, order.qty = orig
            self._to_local.append(local_ts - lat, Response(0, order, kind))
        else:
            self._to_exch.append(local_ts + lat, order)

    def responses(self, until_ts: int | None = None) -> list[Response]:
        """Takes the responses the local side has received by until_ts (None: all)."""
        out = []
        items = self._to_local.items
        while items and (until_ts is None or items[0][0] <= until_ts):
            ts, r = items.popleft()
            r.local_recv_ts = ts
            out.append(r)
        return out

    def next_response_ts(self) -> int | None:
        """When the next response in flight reaches the local side."""
        return self._to_local.items[0][0] if self._to_local.items else None

    def next_arrival_ts(self) -> int | None:
        """When the next request in flight reaches the exchange."""
        return self._to_exch.items[0][0] if self._to_exch.items else None

    # ------------------------------------------------------------ exchange side

    def advance(self, ts: int) -> None:
        """Handles the requests that reach the exchange by ts."""
        items = self._to_exch.items
        while items and items[0][0] <= ts:
            at, order = items.popleft()
            req, order.req = order.req, NONE
            self._taken = []
            if req == NEW:
                self._ack_new(order, at)
            elif req == CANCELED:
                order = self._ack_cancel(order, at)
            else:
                self._ack_modify(order, at)
            self._respond(order, req, tuple(self._taken))

    def process(self, ev: int, exch_ts: int, px: float, qty: float) -> None:
        """One event of the capture, in exch_ts order (only EXCH_EVENT ones matter).

        Requests arriving strictly before exch_ts are handled first.
        """
        if not ev & EXCH_EVENT:
            return
        items = self._to_exch.items
        if items and items[0][0] < exch_ts:
            self.advance(exch_ts - 1)
        kind = ev & 0xFF
        if kind == DEPTH_EVENT or kind == DEPTH_SNAPSHOT_EVENT:
            if ev & BUY_EVENT:
                tick, prev_best, prev_qty = self.depth.update_bid(px, qty)
                self._on_qty_chg(BUY, tick, prev_qty, qty)
                if self.depth.best_bid_tick > prev_best:
                    self._on_best_bid_up(prev_best, exch_ts)
            elif ev & SELL_EVENT:
                tick, prev_best, prev_qty = self.depth.update_ask(px, qty)
                self._on_qty_chg(SELL, tick, prev_qty, qty)
                if self.depth.best_ask_tick < prev_best:
                    self._on_best_ask_down(prev_best, exch_ts)
        elif kind == TRADE_EVENT:
            tick = round(px / self.tick_size)
            if ev & BUY_EVENT:  # a buy aggressor: our sells at or below its price
                hit = [o for o in self.orders.values() if o.side == SELL and o.price_tick <= tick]
            elif ev & SELL_EVENT:
                hit = [o for o in self.orders.values() if o.side == BUY and o.price_tick >= tick]
            else:
                hit = []
            for o in hit:
                self._check_trade(o, tick, qty, exch_ts)
            self._remove_filled()
        elif kind == DEPTH_CLEAR_EVENT:
            if ev & BUY_EVENT:
                self.depth.clear(BUY, px)
            elif ev & SELL_EVENT:
                self.depth.clear(SELL, px)
            else:
                self.depth.clear(0, 0.0)

    # ------------------------------------------------------------ matching

    def _on_qty_chg(self, side: int, tick: int, prev_qty: float, new_qty: float) -> None:
        ids = self._at.get((side, tick))
        if ids:
            for oid in ids:
                self.queue.depth(self.orders[oid], prev_qty, new_qty)

    def _on_best_bid_up(self, prev_best: int, ts: int) -> None:
        best = self.depth.best_bid_tick
        for o in [o for o in self.orders.values() if o.side == SELL and o.price_tick <= best]:
            self._filled.append(o.order_id)
            self._fill(o, ts, True, o.price_tick, o.leaves_qty, True)
        self._remove_filled()

    def _on_best_ask_down(self, prev_best: int, ts: int) -> None:
        best = self.depth.best_ask_tick
        for o in [o for o in self.orders.values() if o.side == BUY and o.price_tick >= best]:
            self._filled.append(o.order_id)
            self._fill(o, ts, True, o.price_tick, o.leaves_qty, True)
        self._remove_filled()

    def _check_trade(self, o: HbtOrder, tick: int, qty: float, ts: int) -> None:
        if o.price_tick != tick:  # traded through: filled in full
            self._filled.append(o.order_id)
            self._fill(o, ts, True, o.price_tick, o.leaves_qty, True)
            return
        self.queue.trade(o, qty)
        filled = self.queue.is_filled(o, self.lot_size)
        if filled <= 0.0:
            return
        if not self.partial:
            self._filled.append(o.order_id)
            self._fill(o, ts, True, o.price_tick, o.leaves_qty, True)
        elif filled > o.leaves_qty:
            self._filled.append(o.order_id)
            self._fill(o, ts, True, o.price_tick, o.leaves_qty, True)
        else:
            self._fill(o, ts, True, o.price_tick, filled, True)
            if o.status == FILLED:  # 2.4.4 keeps it (see the module docstring)
                self._filled.append(o.order_id)

    def _fill(self, o: HbtOrder, ts: int, maker: bool, px_tick: int, qty: float,
              respond: bool) -> None:  # fmt: skip
        o.maker = maker
        o.exec_price_tick = o.price_tick if maker else px_tick
        o.exec_qty = qty
        if self.partial:
            o.leaves_qty -= qty
            partly = round(o.leaves_qty / self.lot_size) > 0
            o.status = PARTIALLY_FILLED if partly else FILLED
        else:
            o.leaves_qty, o.status = 0.0, FILLED
        o.exch_ts = ts
        s, side = self.state, float(o.side)
        value = o.exec_price_tick * self.tick_size * qty
        s.position += qty * side
        s.balance -= value * side
        s.fee += self.fees.amount(maker, value)
        s.num_trades += 1
        s.trading_volume += qty
        s.trading_value += value
        if respond:
            self._respond(o, 0, ((o.exec_price_tick, qty, maker),))
        else:  # a taker piece: answered with the request
            self._taken.append((o.exec_price_tick, qty, maker))

    def _respond(self, o: HbtOrder, req: int, fills: tuple) -> None:
        at = o.exch_ts + self.latency.response(o.exch_ts)
        self._to_local.append(at, Response(0, replace(o, q=None), req, fills))

    def _remove_filled(self) -> None:
        for oid in self._filled:
            self._unrest(self.orders[oid])
        self._filled.clear()

    def _rest(self, o: HbtOrder) -> None:
        self.orders[o.order_id] = o
        self._at.setdefault((o.side, o.price_tick), {})[o.order_id] = None

    def _unrest(self, o: HbtOrder) -> None:
        del self.orders[o.order_id]
        ids = self._at[(o.side, o.price_tick)]
        del ids[o.order_id]
        if not ids:
            del self._at[(o.side, o.price_tick)]

    # ------------------------------------------------------------ requests at the exchange

    def _ack_new(self, o: HbtOrder, ts: int) -> None:
        if o.order_id in self.orders:
            raise UsageError(f"order id {o.order_id} is already open")
        d = self.depth
        o.exch_ts = ts
        if o.side == BUY:
            best, crossing = d.best_ask_tick, o.price_tick >= d.best_ask_tick
        else:
            best, crossing = d.best_bid_tick, o.price_tick <= d.best_bid_tick
        if o.order_type == MARKET:
            if not self.partial:
                self._fill(o, ts, False, best, o.leaves_qty, False)
            elif o.side == BUY:
                self._walk(o, ts, range(best, best + 100), expire=True)
            else:
                self._walk(o, ts, range(best, best - 101, -1), expire=True)
            return
        if not crossing:
            if o.tif in (GTC, GTX):
                self.queue.new_order(o, d)
                o.status = NEW
                self._rest(replace(o))  # the book keeps its own copy, as hftbacktest
                o.q = None
            else:
                o.status = EXPIRED
            return
        if o.tif == GTX:
            o.status = EXPIRED
        elif not self.partial:
            # whatever the displayed qty, the whole order fills at the best
            self._fill(o, ts, False, best, o.leaves_qty, False)
        elif o.side == BUY:
            through = range(best, o.price_tick + 1)
            if o.tif == FOK:
                self._fok(o, ts, through)
            elif o.tif == IOC:
                self._walk(o, ts, through, expire=True)
            elif self._walk(o, ts, range(best, o.price_tick), expire=False):
                self._fill(o, ts, False, o.price_tick, o.leaves_qty, False)
        else:
            through = range(best, o.price_tick - 1, -1)
            if o.tif == FOK:
                self._fok(o, ts, through)
            elif o.tif == IOC:
                self._walk(o, ts, through, expire=True)
            elif self._walk(o, ts, through, expire=False):
                self._fill(o, ts, False, o.price_tick, o.leaves_qty, False)

    def _level_qty(self, side: int, tick: int) -> float:
        d = self.depth
        return d.ask_qty_at_tick(tick) if side == BUY else d.bid_qty_at_tick(tick)

    def _walk(self, o: HbtOrder, ts: int, ticks: range, expire: bool) -> bool:
        """Takes each opposite level in `ticks`; True if something is left (then EXPIRED
        if `expire`)."""
        for t in ticks:
            qty = self._level_qty(o.side, t)
            if qty > 0.0:
                self._fill(o, ts, False, t, min(qty, o.leaves_qty), False)
            if o.status == FILLED:
                return False
        if expire:
            o.status = EXPIRED
        return True

    def _fok(self, o: HbtOrder, ts: int, ticks: range) -> None:
        lot, cum = self.lot_size, 0.0
        for t in ticks:
            cum += self._level_qty(o.side, t)
            if round(cum / lot) >= round(o.qty / lot):
                for t2 in ticks:
                    qty = self._level_qty(o.side, t2)
                    if qty > 0.0:
                        self._fill(o, ts, False, t2, min(qty, o.leaves_qty), False)
                        if o.status == FILLED:
                            return
                return
        o.status = EXPIRED

    def _ack_cancel(self, o: HbtOrder, ts: int) -> HbtOrder:
        resting = self.orders.get(o.order_id)
        if resting is None:
            o.req, o.exch_ts = REJECTED, ts
            return o
        self._unrest(resting)
        resting.status, resting.exch_ts = CANCELED, ts
        return resting

    def _ack_modify(self, o: HbtOrder, ts: int) -> None:
        resting = self.orders.get(o.order_id)
        if resting is None:  # filled or expired meanwhile
            o.req, o.exch_ts = REJECTED, ts
            return
        if resting.price_tick != o.price_tick or o.qty > resting.leaves_qty:
            # re-queued: cancel + new, with the request's leaves_qty (as 2.4.4 does)
            self._unrest(resting)
            self._ack_new(o, ts)
        else:  # qty down at the same price: keeps the queue position
            resting.qty = resting.leaves_qty = o.qty
            resting.exch_ts = ts
            o.leaves_qty, o.exch_ts = o.qty, ts
