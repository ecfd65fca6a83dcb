"""hftbacktest's exchange model (connector.hbt_exchange) inside the sim venue.

Chosen with `[sim] exchange = "no_partial_fill"` or `"partial_fill"`; `queue_model`,
`queue_power`, `order_latency` (+ `entry_latency_ns`/`response_latency_ns`, or
`order_latency_file`), `maker_fee` and `taker_fee` mean what hftbacktest's
`BacktestAsset` settings of the same names mean.

Clocks. On the replay clock (`[sim] clock = "replay"`, connector.lockstep) the model is
the backtest's: it reads the capture ahead of the bots and sees each market event at its
exchange time, in hftbacktest's order (connector.sim.exchange_view); a request reaches it
at its send time + entry latency, after the market events stamped up to then (an event
stamped at the arrival itself first, as in hftbacktest), and the response reaches the bot
at the exchange's time + response latency.

On the wall clock (a synthetic market, or a replay at `speed`), timestamps of a replay are
shifted to now, keeping each event's capture latency (connector.feed); the exchange sees
every book change and trade with its exch_ts when the replay publishes it. A request made
at wall time t reaches it at t + entry latency, and it handles the request after the
market events stamped up to that time; as those events are published only at their
local time (exch_ts + their feed latency), a request waits until an event stamped after
its arrival is seen, or, in a quiet market, until the wall clock is past its arrival by
the last seen feed latency. A response is reported when the wall clock reaches its local
receive time (exch time + response latency), or at once if that is already past. So on
the wall clock the bot acts on wall time (when it acts relative to the market depends on
scheduling and on the replay speed), and responses may reach it later than in a backtest.

Feed latency is the capture's (a negative one clamped to 0: the exchange never sees an
event after we received it), where hftbacktest's converter shifts the whole capture so its
smallest latency is 0 (hftlive.fidelity shifts its window alike). The model itself
(matching, queues, latencies, fees) is the backtest's, proven against hftbacktest in
tests/test_hbt_exchange.py.
"""

from __future__ import annotations

import numpy as np

from connector.errors import ConfigError
from connector.hbt_exchange import (
    ConstantLatency,
    HbtExchange,
    HbtOrder,
    IntpOrderLatency,
    TradingValueFeeModel,
    queue_model,
)
from connector.matching import REJECT_TECHNICAL, REJECT_UNKNOWN_ORDER, Report
from hftlive.constants import (
    BUY,
    BUY_EVENT,
    CANCELED,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    EXCH_EVENT,
    EXPIRED,
    FILLED,
    NEW,
    NONE,
    PARTIALLY_FILLED,
    REJECTED,
    REPLACED,
    SELL_EVENT,
    TRADE_EVENT,
)
from hftlive.layout import REQ_CANCEL, REQ_MODIFY, REQ_SUBMIT

COMPLETES = {NEW: REQ_SUBMIT, CANCELED: REQ_CANCEL, REPLACED: REQ_MODIFY}
LATENCY_FIELDS = ("req_ts", "exch_ts", "resp_ts")


def load_order_latency(path: str, where: str) -> np.ndarray:
    """hftbacktest's order latency data: an .npz (key "data", as hftbacktest writes it) or
    an .npy of records with req_ts, exch_ts, resp_ts (ns), sorted by req_ts.

    Raises:
        ConfigError: naming `where` (file and key) when the data cannot be used.
    """
    try:
        if path.endswith(".npz"):
            with np.load(path) as z:
                if "data" not in z:
                    raise ConfigError(f"{where}: {path} has no array named 'data'")
                data = z["data"]
        else:
            data = np.load(path)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{where}: {path} is not numpy data: {e}") from None
    names = data.dtype.names or ()
    if any(f not in names for f in LATENCY_FIELDS):
        raise ConfigError(f"{where}: {path} needs fields {', '.join(LATENCY_FIELDS)} "
                          f"(hftbacktest's order latency rows), has {names}")  # fmt: skip
    if len(data) == 0:
        raise ConfigError(f"{where}: {path} has no rows")
    req = data["req_ts"]
    if np.any(np.diff(req) < 0):
        raise ConfigError(f"{where}: {path}: req_ts must not decrease")
    ok = data["exch_ts"] <= 0
    ok |= (data["exch_ts"] >= req) & (data["resp_ts"] >= data["exch_ts"])
    if not ok.all():
        i = int(np.argmin(ok))
        raise ConfigError(f"{where}: {path}: row {i} has resp_ts < exch_ts < req_ts order "
                          f"broken (exch_ts <= 0 marks a rejected request)")  # fmt: skip
    return data


def make_exchange(sim, tick_size: float, lot_size: float, where: str) -> HbtExchange:
    """The HbtExchange the `[sim]` section asks for."""
    if sim.order_latency == "intp":
        rows = load_order_latency(sim.order_latency_file, where)
        latency = IntpOrderLatency(np.stack([rows[f] for f in LATENCY_FIELDS], axis=1).tolist())
    else:
        latency = ConstantLatency(sim.entry_latency_ns, sim.response_latency_ns)
    return HbtExchange(tick_size, lot_size, sim.exchange,
                       queue_model(sim.queue_model, sim.queue_power), latency,
                       TradingValueFeeModel(sim.maker_fee, sim.taker_fee))  # fmt: skip


def to_reports(key: int, r, copy: HbtOrder | None) -> list[Report]:
    """The sim's reports (connector.matching.Report) for one hftbacktest response: one per
    executed piece, then the response's own state."""
    o = r.order
    out = []
    if o.req == REJECTED:  # a cancel/modify of an order not open there, or a technical one
        code = REJECT_TECHNICAL if o.exch_ts == 0 else REJECT_UNKNOWN_ORDER
        status = EXPIRED if r.req == NEW else (copy.status if copy is not None else NONE)
        return [Report(key, status, 0.0, 0, False, o.leaves_qty, o.qty - o.leaves_qty,
                       o.price_tick, o.qty, o.exch_ts, code)]  # fmt: skip
    leaves = o.leaves_qty + sum(q for _, q, _ in r.fills)
    for i, (px_tick, qty, maker) in enumerate(r.fills):
        leaves -= qty
        last = i == len(r.fills) - 1
        status = o.status if last else PARTIALLY_FILLED
        out.append(Report(key, status, qty, px_tick, maker, max(leaves, 0.0),
                          o.qty - max(leaves, 0.0), o.price_tick, o.qty, o.exch_ts))  # fmt: skip
    if not r.fills:
        out.append(Report(key, o.status, 0.0, 0, False, o.leaves_qty, o.qty - o.leaves_qty,
                          o.price_tick, o.qty, o.exch_ts))  # fmt: skip
    return out


class HbtMarket:
    """One instrument's hftbacktest exchange in the sim: events in, reports out on time."""

    def __init__(self, ex: HbtExchange):
        self.ex = ex
        self.copies: dict[int, HbtOrder] = {}  # the local side's copy of each order
        self.feed_latency_ns = 0  # of the last market event seen

    # market data, stamped with the event's exch_ts and the time the model sees it
    # (local_ts on the wall clock; exch_ts itself when it reads the capture ahead)
    def depth(self, side: int, px: float, qty: float, exch_ts: int, local_ts: int) -> None:
        self.feed_latency_ns = max(0, local_ts - exch_ts)
        flag = BUY_EVENT if side == BUY else SELL_EVENT
        self.ex.process(EXCH_EVENT | flag | DEPTH_EVENT, exch_ts, px, qty)

    def trade(self, aggressor: int, px: float, qty: float, exch_ts: int, local_ts: int) -> None:
        self.feed_latency_ns = max(0, local_ts - exch_ts)
        flag = BUY_EVENT if aggressor == BUY else SELL_EVENT
        self.ex.process(EXCH_EVENT | flag | TRADE_EVENT, exch_ts, px, qty)

    def clear(self, exch_ts: int) -> None:
        self.ex.process(EXCH_EVENT | DEPTH_CLEAR_EVENT, exch_ts, 0.0, 0.0)

    # requests at wall time now_ns
    def submit(self, key: int, side: int, px_tick: int, qty: float, tif: int, order_type: int,
               now_ns: int) -> None:  # fmt: skip
        o = HbtOrder(key, side, px_tick, qty, tif, order_type, leaves_qty=qty, req=NEW,
                     local_ts=now_ns)  # fmt: skip
        self.copies[key] = o
        self.ex.submit(o, now_ns)

    def cancel(self, key: int, now_ns: int) -> None:
        self.ex.cancel(self._copy(key), now_ns)

    def modify(self, key: int, px_tick: int, qty: float, now_ns: int) -> None:
        self.ex.modify(self._copy(key), px_tick, qty, now_ns)

    def _copy(self, key: int) -> HbtOrder:
        o = self.copies.get(key)
        return o if o is not None else HbtOrder(key, BUY, 0, 0.0, status=NONE)

    def due(self, now_ns: int) -> list[tuple[int, list[Report], int]]:
        """Handles requests whose time has come in a quiet market, then takes the responses
        due by now: (key, reports, the request kind it completes or 0) each."""
        nxt = self.ex.next_arrival_ts()
        if nxt is not None and now_ns - self.feed_latency_ns >= nxt:
            self.ex.advance(now_ns - self.feed_latency_ns)
        out = []
        for r in self.ex.responses(now_ns):
            key = r.order.order_id
            copy = self.copies.get(key)
            reports = to_reports(key, r, copy)
            if r.order.req != REJECTED:
                self.copies[key] = r.order
            if reports[-1].status in (EXPIRED, CANCELED, FILLED):
                self.copies.pop(key, None)
            out.append((key, reports, COMPLETES.get(r.req, 0)))
        return out

    def next_wake_ns(self) -> int | None:
        """When `due` has something to do next (wall clock), None if nothing is pending."""
        times = []
        resp = self.ex.next_response_ts()
        if resp is not None:
            times.append(resp)
        nxt = self.ex.next_arrival_ts()
        if nxt is not None:
            times.append(nxt + self.feed_latency_ns)
        return min(times) if times else None


def check(cfg) -> None:
    """The `[sim]` keys of hftbacktest's exchange model (called by connector.sim._check)."""
    from connector.hbt_exchange import EXCHANGES, QUEUE_MODELS

    p, sim = cfg.path, cfg.section
    known = ("default", *EXCHANGES)
    if sim.exchange not in known:
        raise ConfigError(f"{p}: sim.exchange must be one of {', '.join(known)}, got "
                          f"{sim.exchange!r}")  # fmt: skip
    if sim.exchange == "default":
        fields = type(sim).__dataclass_fields__
        for k in ("queue_model", "queue_power", "order_latency", "entry_latency_ns",
                  "response_latency_ns", "order_latency_file"):  # fmt: skip
            if getattr(sim, k) != fields[k].default:
                raise ConfigError(f"{p}: sim.{k} applies to hftbacktest's exchange models "
                                  f"only: set sim.exchange to one of {', '.join(EXCHANGES)}")  # fmt: skip
        return
    if sim.queue_model not in QUEUE_MODELS:
        raise ConfigError(f"{p}: sim.queue_model must be one of {', '.join(QUEUE_MODELS)}, "
                          f"got {sim.queue_model!r}")  # fmt: skip
    if sim.order_latency not in ("constant", "intp"):
        raise ConfigError(f'{p}: sim.order_latency must be "constant" or "intp", got '
                          f"{sim.order_latency!r}")  # fmt: skip
    if sim.order_latency == "intp":
        if not sim.order_latency_file:
            raise ConfigError(f'{p}: sim.order_latency = "intp" needs sim.order_latency_file')
        if sim.entry_latency_ns or sim.response_latency_ns:
            raise ConfigError(f'{p}: sim.entry_latency_ns/response_latency_ns apply to '
                              f'order_latency = "constant" only')  # fmt: skip
        load_order_latency(sim.order_latency_file, f"{p}: sim.order_latency_file")
    elif sim.order_latency_file:
        raise ConfigError(f'{p}: sim.order_latency_file is read with order_latency = "intp" '
                          f"only")  # fmt: skip
