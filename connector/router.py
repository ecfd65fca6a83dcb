"""Venue-independent order routing: which bot owns which order, risk limits, fills into
state values, and the bots' registration and departure.

Each order is tracked by the connector under a `key`, and per bot under
(bot_id, instrument, order_id): bots sharing a connector never see each other's orders.
State values (position, balance, fee, num_trades, trading_volume, trading_value) are
kept per (bot, instrument) from that bot's own fills, so a recording of a live run gives
hftbacktest.stats a real equity curve.

Risk limits are checked here, before anything reaches the venue, so that a runaway jitted
loop cannot bypass them. A refused request comes back to the bot as an order record
(status EXPIRED for a new order, else only `req` reset) plus an ERR_ORDER error with one
of the codes below.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from connector import codes
from connector.codes import (
    BELOW_MINIMUM,
    CONNECTOR_STOPPING,
    DUPLICATE_ORDER_ID,
    RISK_MAX_NOTIONAL,
    RISK_MAX_POSITION,
    RISK_ORDER_RATE,
    UNKNOWN_ORDER,
)
from connector.trading import TradingStates, default_dir, refusal
from connector.venue import NewOrder, OrderReport
from hftlive import control
from hftlive.constants import (
    BUY,
    CANCELED,
    ERR_CONNECTOR,
    ERR_CUSTOM,
    ERR_ORDER,
    ERR_TRADING_STATE,
    EXPIRED,
    FILLED,
    IOC,
    LIMIT,
    NEW,
    NONE,
    PARTIALLY_FILLED,
    REJECT_NONE,
    REPLACED,
    SELL,
    TRADING_HALTED,
    TRADING_NAMES,
)
from hftlive.ipc import store_word
from hftlive.layout import (
    CTL_CMD,
    CTL_CMD_ACK,
    CTL_CMD_BOT,
    CTL_CMD_SEQ,
    CTL_TRADING,
    REQ_CANCEL,
    REQ_MODIFY,
    REQ_SUBMIT,
    RESP_ERROR,
    RESP_ORDER,
    RESP_READY,
    RESP_STATE,
    S_TRADING,
    order_dtype,
    response_dtype,
    state_values_dtype,
)
from hftlive.shm import pid_alive as _pid_alive

log = logging.getLogger(__name__)
# one line per order event (a bot's request, each change the venue reports), with bot,
# order, key and the venue's ids as fields (connector.logsetup writes them as JSON)
journal = logging.getLogger("connector.orders")
_STATUS = {NONE: "NONE", NEW: "NEW", EXPIRED: "EXPIRED", FILLED: "FILLED", CANCELED: "CANCELED",
           PARTIALLY_FILLED: "PARTIALLY_FILLED"}  # fmt: skip
_REQ = {REQ_SUBMIT: "submit", REQ_CANCEL: "cancel", REQ_MODIFY: "modify"}
# order counts by the status an order reached (a fill is counted by itself)
_EVENTS = {NEW: "acked", CANCELED: "canceled", EXPIRED: "expired"}

MSG_BYTES = response_dtype["msg"].itemsize
# the order ids of the connector's own flatten orders in a bot's order table: the top half
# of the uint64 range, which strategies' ids do not reach
FLATTEN_ID_BASE = 1 << 63
FINAL_KEEP_S = 60.0  # final orders are forgotten this long after they ended


def _final(status: int) -> bool:
    return status in (FILLED, CANCELED, EXPIRED)


@dataclass
class Tracked:
    bot_id: int
    inst: int
    order_id: int
    rec: np.ndarray  # 1-element order_dtype: the connector's copy, as bots see it
    final_at: float = 0.0
    doomed: bool = False  # a cancel was asked for by the core (bot left, shutdown)


@dataclass
class BotState:
    slot: int
    generation: int
    pid: int
    tokens: float = 0.0
    last_refill: float = field(default_factory=time.monotonic)


class Router:
    def __init__(self, shm, cfg, instruments):
        self.shm = shm
        self.now_ns = time.time_ns  # the connector's clock (a replay's: connector.lockstep)
        self.hold = False  # requests wait for the replay clock's rounds (connector.lockstep)
        self.cfg = cfg
        self.instruments = instruments
        self.venue = None
        self.orders: dict[int, Tracked] = {}
        self.by_id: dict[tuple[int, int, int], int] = {}
        self.states: dict[tuple[int, int], np.ndarray] = {}
        self.bots: dict[int, BotState] = {}
        self._next_key = 1
        self._resp = np.zeros(1, response_dtype)
        # responses wait here until flush(): what one request or one market event caused
        # reaches the bot as one batch (a MARKET order's NEW and FILLED together)
        self._out: dict[int, list[np.ndarray]] = {}
        self.stopping = False
        self.n_dropped_responses = 0
        state_dir = cfg.connector.state_dir or default_dir()
        self.trading = TradingStates(Path(state_dir) / f"{shm.name}.trading.json")
        self._cmd_seen = 0
        self._publish_trading()
        self.metrics = None  # connector.metrics.Metrics, when [metrics] is enabled
        self.alerts = None  # connector.alerts.Alerts, when [[alerts]] are configured
        # flatten: bot id (None: every bot) -> deadline (monotonic), waiting for its cancels;
        # then bot id -> (its flatten order keys, deadline)
        self._flatten_wait: dict[int | None, float] = {}
        self._flattening: dict[int, tuple[list[int], float]] = {}
        self._flatten_next = FLATTEN_ID_BASE
        # (bot, inst, event, neutral reason) -> count, for the metrics endpoint
        self.order_counts: dict[tuple[int, int, str, int], int] = {}

    # ------------------------------------------------------------------ bots

    def poll_slots(self) -> None:
        """Register bots that claimed a slot; forget bots that left or died."""
        seen = set()
        for k, bot_id, pid, gen, acked in self.shm.active_slots():
            if acked != gen:
                self._register(k, bot_id, pid, gen)
            b = self.bots.get(bot_id)
            if b is not None and b.slot == k:
                if not _pid_alive(pid):
                    log.warning("bot %d (pid %d) died; freeing its slot %d", bot_id, pid, k)
                    if self.alerts is not None:
                        self.alerts.died[bot_id] = pid
                    self.shm.free_slot(k)
                    self.shm.reclaim_bot_view(bot_id)
                    continue
                seen.add(bot_id)
        for bot_id in [b for b in self.bots if b not in seen]:
            self._unregister(bot_id)

    def _register(self, k: int, bot_id: int, pid: int, gen: int) -> None:
        old = self.bots.get(bot_id)
        if old is not None and old.slot != k:
            self.shm.free_slot(old.slot)
        self.shm.reset_rings(k)
        rate = self.cfg.risk.max_orders_per_second
        self.bots[bot_id] = BotState(k, gen, pid, tokens=rate)
        if self.alerts is not None:
            self.alerts.died.pop(bot_id, None)
        # replay what the connector holds for this bot id: state values, open orders
        for b, inst in list(self.states):
            if b == bot_id:
                self._send_state(bot_id, inst)
        for key, t in self.orders.items():
            if t.bot_id == bot_id and not _final(int(t.rec[0]["status"])):
                self._send_order(key)
        self._queue(bot_id, self._response(bot_id, RESP_READY, 0))
        state = self.trading.of(bot_id)
        store_word(self.shm.ctl.slot_words[k], S_TRADING, state)
        if state:
            own = self.trading.bots.get(bot_id, 0)
            self.send_error(bot_id, ERR_TRADING_STATE, state, f"trading is {TRADING_NAMES[state]} "
                            f"(connector {TRADING_NAMES[self.trading.connector]}, this bot "
                            f"{TRADING_NAMES[own]})", reason=REJECT_NONE)  # fmt: skip
        self.flush()
        self.shm.ack(k, gen)
        log.info("bot %d (pid %d) registered in slot %d", bot_id, pid, k)

    def _unregister(self, bot_id: int) -> None:
        self.bots.pop(bot_id, None)
        log.info("bot %d left", bot_id)
        if self.cfg.connector.cancel_on_bot_exit:
            self.cancel_all(bot_id)
        if self.cfg.connector.flatten_on_shutdown:
            self.request_flatten(bot_id)

    def cancel_all(self, bot_id: int | None = None) -> int:
        """Cancels every order of `bot_id` (None: of every bot) that works or may work.

        An order whose submit is unanswered (status NONE) is included: the venue cancels
        it as soon as it shows it working (connector.lifecycle), so a bot that leaves, or
        a connector that stops, leaves nothing behind.
        """
        n = 0
        for key, t in list(self.orders.items()):
            if (bot_id is None or t.bot_id == bot_id) and not _final(int(t.rec[0]["status"])):
                if t.doomed:
                    continue
                t.doomed = True
                self.venue.cancel(key, t.inst, leaving=True)
                n += 1
        return n

    # ------------------------------------------------------------------ trading states

    def _publish_trading(self) -> None:
        """The states into shared memory: the connector's, and each bot slot's own."""
        store_word(self.shm.ctl.words, CTL_TRADING, self.trading.connector)
        for bot_id, b in self.bots.items():
            store_word(self.shm.ctl.slot_words[b.slot], S_TRADING, self.trading.of(bot_id))

    def poll_commands(self) -> None:
        """Applies a command a tool left in the mailbox (hftlive.control), once."""
        w = self.shm.ctl.words
        seq = int(w[CTL_CMD_SEQ])
        if seq == self._cmd_seen:
            return
        self._cmd_seen = seq
        state, bot, cancel, flatten = control.decode(int(w[CTL_CMD]),
                                                     int(w[CTL_CMD_BOT].view(np.uint64)))  # fmt: skip
        if flatten:  # halted, its orders cancelled, then its positions closed
            self.set_trading(TRADING_HALTED, bot, True, why="python -m hftlive flatten")
            self.request_flatten(bot)
        else:
            self.set_trading(state, bot, cancel)
        store_word(w, CTL_CMD_ACK, seq)

    def set_trading(self, state: int, bot_id: int | None = None, cancel: bool = False,
                    why: str = "python -m hftlive") -> None:  # fmt: skip
        """Sets the connector's (bot_id None) or one bot's trading state; bots whose state
        changed are told (ERR_TRADING_STATE); `cancel`: their open orders are cancelled."""
        before = {b: self.trading.of(b) for b in self.bots}
        self.trading.set(state, bot_id)
        self._publish_trading()
        who = "connector" if bot_id is None else f"bot {bot_id}"
        log.warning("trading state: %s %s (%s)", who, TRADING_NAMES[state], why)
        for b, old in before.items():
            new = self.trading.of(b)
            if new != old:
                self.send_error(b, ERR_TRADING_STATE, new, f"trading is {TRADING_NAMES[new]} "
                                f"({who} set {TRADING_NAMES[state]})", reason=REJECT_NONE)  # fmt: skip
        if cancel:
            targets = [bot_id] if bot_id is not None else list({t.bot_id for t in self.orders.values()})
            n = 0
            for key, t in list(self.orders.items()):
                if t.bot_id in targets and not _final(int(t.rec[0]["status"])) and not t.doomed:
                    if t.rec[0]["req"] != CANCELED:
                        t.rec[0]["req"] = CANCELED
                        self.venue.cancel(key, t.inst)
                        n += 1
            log.warning("trading state: %d open order(s) of %s cancelled", n, who)
        self.flush()

    # ------------------------------------------------------------------ flatten

    def request_flatten(self, bot_id: int | None = None) -> None:
        """Close the positions of `bot_id` (None: every bot) once its open orders ended
        (or after flatten_timeout_s); `flatten_step` carries it out."""
        self._flatten_wait[bot_id] = time.monotonic() + self.cfg.connector.flatten_timeout_s

    def flattening(self) -> bool:
        return bool(self._flatten_wait or self._flattening)

    def flatten_step(self) -> None:
        """Called every housekeeping round: sends the flatten orders of bots whose orders
        ended, and reports, once their flatten orders ended, what is left."""
        now = time.monotonic()
        for target, deadline in list(self._flatten_wait.items()):
            bots = {b for b, _ in self.states} if target is None else {target}
            if now < deadline and any(
                t.bot_id in bots and not _final(int(t.rec[0]["status"]))
                for t in self.orders.values()
            ):
                continue  # the cancels are still under way
            del self._flatten_wait[target]
            for b in bots:
                if b not in self._flattening:
                    self._flattening[b] = (self._flatten_orders(b), now + self.cfg.connector.flatten_timeout_s)
        for b, (keys, deadline) in list(self._flattening.items()):
            if now < deadline and any(
                k in self.orders and not _final(int(self.orders[k].rec[0]["status"])) for k in keys
            ):
                continue
            del self._flattening[b]
            self._flatten_report(b)
        self.flush()

    def _flatten_orders(self, bot_id: int) -> list[int]:
        """Reduce-only IOC limit orders closing each position of `bot_id`."""
        slip = self.cfg.connector.flatten_slippage_bp / 1e4
        keys = []
        for (b, inst), st in list(self.states.items()):
            spec = self.instruments[inst]
            pos = float(st[0]["position"])
            qty = math.floor(abs(pos) / spec.lot_size + 1e-9) * spec.lot_size
            if b != bot_id or qty <= 0:
                continue
            side = SELL if pos > 0 else BUY
            mid = self.venue.reference_price(inst)
            if not math.isfinite(mid):
                log.error("flatten: bot %d %s: no price to close %g at", b, spec.symbol, pos)
                continue
            # far enough through the book to fill at once, no further than the slippage
            px = mid * (1.0 + side * slip) / spec.tick_size
            tick = math.floor(px) if side == SELL else math.ceil(px)
            oid = self._flatten_next
            self._flatten_next += 1
            rec = np.zeros(1, order_dtype)
            r = rec[0]
            r["order_id"], r["side"], r["price_tick"], r["qty"] = oid, side, tick, qty
            r["leaves_qty"], r["tick_size"], r["time_in_force"] = qty, spec.tick_size, IOC
            r["order_type"], r["status"], r["req"] = LIMIT, NONE, NEW
            r["local_timestamp"] = self.now_ns()
            key = self._next_key
            self._next_key += 1
            self.orders[key] = Tracked(b, inst, oid, rec)
            self.by_id[(b, inst, oid)] = key
            self._count(b, inst, "sent")
            log.warning("flatten: bot %d %s: position %g -> %s %g @ %g (reduce-only IOC, order "
                        "id %d)", b, spec.symbol, pos, "SELL" if side == SELL else "BUY", qty,
                        tick * spec.tick_size, oid)  # fmt: skip
            self.venue.submit(NewOrder(key, inst, side, tick, qty, IOC, LIMIT, reduce_only=True))
            keys.append(key)
        return keys

    def _flatten_report(self, bot_id: int) -> None:
        left = [(inst, float(st[0]["position"])) for (b, inst), st in self.states.items()
                if b == bot_id and abs(float(st[0]["position"])) >= self.instruments[inst].lot_size / 2]  # fmt: skip
        if not left:
            log.info("flatten: bot %d is flat", bot_id)
            return
        what = ", ".join(f"{self.instruments[i].symbol} {p:g}" for i, p in left)
        log.error("flatten: bot %d could not be closed: %s left", bot_id, what,
                  extra={"event": "flatten_incomplete", "bot": bot_id})  # fmt: skip
        if bot_id in self.bots:
            self.send_error(bot_id, ERR_CUSTOM, 0, f"flatten incomplete: {what} left",
                            reason=REJECT_NONE)  # fmt: skip

    def open_keys(self) -> list[int]:
        """Keys of the orders not final yet."""
        return [k for k, t in self.orders.items() if not _final(int(t.rec[0]["status"]))]

    # ------------------------------------------------------------------ requests

    def drain(self, force: bool = False) -> int:
        """Handles every bot's pending requests; how many. While `hold` is set (a replay
        clock, connector.lockstep) only a forced drain (the clock's round) handles any."""
        if self.hold and not force:
            return 0
        n = 0
        for bot_id, b in list(self.bots.items()):
            reqs = self.shm.take_requests(b.slot)
            for i in range(len(reqs)):
                self._handle(bot_id, b, reqs[i])
            n += len(reqs)
        self.flush()
        return n

    def _handle(self, bot_id: int, b: BotState, req) -> None:
        kind = int(req["kind"])
        inst = int(req["inst"])
        o = req["order"]
        oid = int(o["order_id"])
        if not 0 <= inst < len(self.instruments):
            log.error("bot %d sent a request for unknown instrument %d", bot_id, inst)
            return
        if journal.isEnabledFor(logging.INFO):
            self._journal_request(bot_id, inst, kind, o)
        if kind == REQ_SUBMIT:
            self._submit(bot_id, b, inst, o)
        elif kind in (REQ_CANCEL, REQ_MODIFY):
            key = self.by_id.get((bot_id, inst, oid))
            t = self.orders.get(key) if key is not None else None
            if t is None or _final(int(t.rec[0]["status"])):
                self._refuse_existing(bot_id, inst, o, UNKNOWN_ORDER, "no such open order")
                return
            if kind == REQ_CANCEL:
                t.rec[0]["req"] = CANCELED
                t.rec[0]["local_timestamp"] = o["local_timestamp"]
                self.venue.cancel(key, inst)
            else:
                px_tick = int(o["price_tick"])
                err = (self._trading(bot_id, inst, o, t.rec[0]) or self._venue_minimum(inst, o, px_tick)
                       or self._risk_rate(b) or self._risk_notional(inst, o, px_tick))  # fmt: skip
                if err:
                    self._refuse_existing(bot_id, inst, t.rec[0], *err)
                    return
                t.rec[0]["req"] = REPLACED
                t.rec[0]["local_timestamp"] = o["local_timestamp"]
                self.venue.modify(key, inst, int(o["price_tick"]), float(o["qty"]))
        else:
            log.error("bot %d sent an unknown request kind %d", bot_id, kind)

    def _submit(self, bot_id: int, b: BotState, inst: int, o) -> None:
        oid = int(o["order_id"])
        idk = (bot_id, inst, oid)
        old = self.by_id.get(idk)
        if old is not None and not _final(int(self.orders[old].rec[0]["status"])):
            self._refuse_new(bot_id, inst, o, DUPLICATE_ORDER_ID, f"order id {oid} is still open")
            return
        rec = np.zeros(1, order_dtype)
        rec[0] = o
        rec[0]["status"] = NONE
        rec[0]["req"] = NEW
        if self.stopping:
            self._refuse_new(bot_id, inst, o, CONNECTOR_STOPPING, "the connector is shutting down")
            return
        err = (
            self._trading(bot_id, inst, o)
            or self._venue_minimum(inst, o, int(o["price_tick"]))
            or self._risk_rate(b)
            or self._risk_notional(inst, o, int(o["price_tick"]))
            or self._risk_position(bot_id, inst, o)
        )
        if err:
            self._refuse_new(bot_id, inst, o, *err)
            return
        key = self._next_key
        self._next_key += 1
        self.orders[key] = Tracked(bot_id, inst, oid, rec)
        self.by_id[idk] = key
        self._count(bot_id, inst, "sent")
        self.venue.submit(
            NewOrder(key, inst, int(o["side"]), int(o["price_tick"]), float(o["qty"]),
                     int(o["time_in_force"]), int(o["order_type"]))
        )  # fmt: skip

    # ------------------------------------------------------------------ risk

    def _risk_rate(self, b: BotState):
        rate = self.cfg.risk.max_orders_per_second
        if rate <= 0:
            return None
        now = time.monotonic()
        b.tokens = min(rate, b.tokens + (now - b.last_refill) * rate)
        b.last_refill = now
        if b.tokens < 1.0:
            return RISK_ORDER_RATE, f"more than {rate:g} orders per second"
        b.tokens -= 1.0
        return None

    def _order_px(self, inst: int, o, price_tick: int) -> float:
        """The price an order trades at for notional checks: its limit, else the mid."""
        if int(o["order_type"]) == LIMIT:
            return price_tick * self.instruments[inst].tick_size
        return self.venue.reference_price(inst)

    def _venue_minimum(self, inst: int, o, price_tick: int):
        """The venue's own minimums (its filters): refused here, nothing is sent."""
        spec = self.instruments[inst]
        qty = float(o["qty"])
        if spec.min_qty and qty < spec.min_qty - 1e-12:
            return BELOW_MINIMUM, f"qty {qty:g} below the venue's minimum {spec.min_qty:g}"
        if spec.min_notional:
            px = self._order_px(inst, o, price_tick)
            if math.isfinite(px) and px * qty < spec.min_notional - 1e-9:
                return BELOW_MINIMUM, (f"notional {px * qty:.4f} below the venue's minimum "
                                       f"{spec.min_notional:g}")  # fmt: skip
        return None

    def _risk_notional(self, inst: int, o, price_tick: int):
        cap = self.cfg.risk.max_order_notional
        if cap <= 0:
            return None
        notional = self._order_px(inst, o, price_tick) * float(o["qty"])
        if not math.isfinite(notional) or notional > cap:
            return (
                RISK_MAX_NOTIONAL,
                f"order notional {notional:.2f} exceeds max_order_notional {cap:g}",
            )
        return None

    def _open_same(self, bot_id: int, inst: int, side: int) -> float:
        """What the bot's open orders on `side` of `inst` may still fill."""
        return sum(
            float(t.rec[0]["leaves_qty"])
            for t in self.orders.values()
            if t.bot_id == bot_id and t.inst == inst and int(t.rec[0]["side"]) == side
            and not _final(int(t.rec[0]["status"]))
        )  # fmt: skip

    def _trading(self, bot_id: int, inst: int, o, current=None):
        """The trading state's refusal (connector.trading), if any; `current`: the order a
        modify changes."""
        state = self.trading.of(bot_id)
        if not state:
            return None
        side = int(o["side"])
        pos = float(self._state(bot_id, inst)[0]["position"])
        if current is not None:
            grows = float(o["qty"]) > float(current["leaves_qty"]) + 1e-12
            return refusal(state, pos, side, float(o["qty"]), 0.0, grows, modify=True)
        return refusal(state, pos, side, float(o["qty"]), self._open_same(bot_id, inst, side))

    def _risk_position(self, bot_id: int, inst: int, o):
        cap = self.instruments[inst].max_position or self.cfg.risk.max_position
        if cap <= 0:
            return None
        side = int(o["side"])
        pos = float(self._state(bot_id, inst)[0]["position"])
        open_same = self._open_same(bot_id, inst, side)
        worst = pos + side * (open_same + float(o["qty"]))
        if abs(worst) > cap + 1e-12:
            return RISK_MAX_POSITION, f"position could reach {worst:g}, beyond max_position {cap:g}"
        return None

    # ------------------------------------------------------------------ the order journal

    def _journal_request(self, bot_id: int, inst: int, kind: int, o) -> None:
        oid = int(o["order_id"])
        key = self.by_id.get((bot_id, inst, oid))
        sym = self.instruments[inst].symbol
        px = int(o["price_tick"]) * self.instruments[inst].tick_size
        what = _REQ.get(kind, f"kind {kind}")
        side = "BUY" if int(o["side"]) > 0 else "SELL"
        journal.info("order bot=%d id=%d %s %s %s %g @ %g", bot_id, oid, sym, what, side,
                     float(o["qty"]), px,
                     extra={"event": "order_request", "bot": bot_id, "order_id": oid,
                            "key": key if kind != REQ_SUBMIT else None, "symbol": sym,
                            "request": what, "side": side, "qty": float(o["qty"]),
                            "price": px})  # fmt: skip

    def _journal_report(self, t: Tracked, rep: OrderReport) -> None:
        sym = self.instruments[t.inst].symbol
        tick = self.instruments[t.inst].tick_size
        status = _STATUS.get(rep.status, str(rep.status))
        f = {"event": "order", "bot": t.bot_id, "order_id": t.order_id, "key": rep.key,
             "symbol": sym, "client_id": rep.client_id, "venue_id": rep.venue_id,
             "status": status, "qty": rep.qty, "leaves_qty": rep.leaves_qty,
             "price": rep.price_tick * tick}  # fmt: skip
        more = ""
        if rep.exec_qty > 0:
            f.update(exec_qty=rep.exec_qty, exec_price=rep.exec_price_tick * tick,
                     maker=rep.maker, fee=rep.fee)  # fmt: skip
            more += f" fill {rep.exec_qty:g} @ {rep.exec_price_tick * tick:g}" + (
                " maker" if rep.maker else " taker")
        if rep.reject_code:
            f.update(reject_code=rep.reject_code, reason=rep.reason, reject_msg=rep.reject_msg)
            more += f" refused {rep.reject_code} (reason {rep.reason}): {rep.reject_msg}"
        journal.info("order bot=%d id=%d %s key=%d client=%s venue=%s %s leaves %g%s", t.bot_id,
                     t.order_id, sym, rep.key, rep.client_id or "-", rep.venue_id or "-", status,
                     rep.leaves_qty, more, extra=f)  # fmt: skip

    def _journal_refusal(self, bot_id: int, inst: int, o, code: int, msg: str) -> None:
        oid = int(o["order_id"])
        sym = self.instruments[inst].symbol
        journal.info("order bot=%d id=%d %s refused by the connector: %d %s", bot_id, oid, sym,
                     code, msg,
                     extra={"event": "order_refused", "bot": bot_id, "order_id": oid,
                            "symbol": sym, "reject_code": code, "reason": codes.REASONS.get(code),
                            "reject_msg": msg})  # fmt: skip

    def _count(self, bot_id: int, inst: int, event: str, reason: int = 0) -> None:
        k = (bot_id, inst, event, reason)
        self.order_counts[k] = self.order_counts.get(k, 0) + 1

    def _refuse_new(self, bot_id: int, inst: int, o, code: int, msg: str) -> None:
        self._count(bot_id, inst, "refused", codes.REASONS.get(code, 0))
        self._journal_refusal(bot_id, inst, o, code, msg)
        rec = np.zeros(1, order_dtype)
        rec[0] = o
        rec[0]["status"] = EXPIRED
        rec[0]["req"] = NONE
        rec[0]["exch_timestamp"] = self.now_ns()
        self._send_rec(bot_id, inst, rec[0])
        self.send_error(bot_id, ERR_ORDER, code, msg, inst, int(o["order_id"]))

    def _refuse_existing(self, bot_id: int, inst: int, o, code: int, msg: str) -> None:
        self._count(bot_id, inst, "refused", codes.REASONS.get(code, 0))
        self._journal_refusal(bot_id, inst, o, code, msg)
        rec = np.zeros(1, order_dtype)
        rec[0] = o
        rec[0]["req"] = NONE
        self._send_rec(bot_id, inst, rec[0])
        self.send_error(bot_id, ERR_ORDER, code, msg, inst, int(o["order_id"]))

    # ------------------------------------------------------------------ venue reports

    def on_report(self, rep: OrderReport) -> None:
        """Applies one order change as the venue's lifecycle decided it (connector.lifecycle
        for real venues, the matching engine for the sim): nothing is decided here again.
        A fill counts once, whenever it comes (the venue deduplicates by trade id)."""
        t = self.orders.get(rep.key)
        if t is None:
            log.warning("report for unknown order key %d ignored", rep.key)
            return
        o = t.rec[0]
        before = int(o["status"])
        o["status"] = rep.status
        o["qty"] = rep.qty
        o["leaves_qty"] = rep.leaves_qty
        o["price_tick"] = rep.price_tick
        if rep.exec_qty > 0:
            o["exec_qty"] = rep.exec_qty
            o["exec_price_tick"] = rep.exec_price_tick
            o["maker"] = rep.maker
            self._fill(t, rep)
        if rep.exch_ts > 0:
            o["exch_timestamp"] = max(int(o["exch_timestamp"]), rep.exch_ts)
        if rep.completes:
            o["req"] = NONE
        if _final(int(o["status"])) and not t.final_at:
            t.final_at = time.monotonic()
        self._send_order(rep.key)
        if rep.status != before and rep.status in _EVENTS:
            self._count(t.bot_id, t.inst, _EVENTS[rep.status])
        if rep.exec_qty > 0:
            self._count(t.bot_id, t.inst, "filled")
        if rep.reject_code:
            self._count(t.bot_id, t.inst, "rejected", rep.reason)
        if self.metrics is not None and rep.completes:
            self.metrics.order_concluded(t.inst, rep.completes, int(o["local_timestamp"]))
        if journal.isEnabledFor(logging.INFO):
            self._journal_report(t, rep)
        if rep.reject_code:
            self.send_error(t.bot_id, ERR_ORDER, rep.reject_code, rep.reject_msg, t.inst,
                            t.order_id, rep.reason)  # fmt: skip

    def _fill(self, t: Tracked, rep: OrderReport) -> None:
        st = self._state(t.bot_id, t.inst)[0]
        side = int(t.rec[0]["side"])
        px = rep.exec_price_tick * self.instruments[t.inst].tick_size
        qty = rep.exec_qty
        st["position"] += side * qty
        st["balance"] -= side * qty * px
        st["fee"] += rep.fee
        st["num_trades"] += 1
        st["trading_volume"] += qty
        st["trading_value"] += qty * px

    def _state(self, bot_id: int, inst: int) -> np.ndarray:
        k = (bot_id, inst)
        st = self.states.get(k)
        if st is None:
            st = self.states[k] = np.zeros(1, state_values_dtype)
        return st

    def position(self, inst: int) -> float:
        return float(sum(st[0]["position"] for (b, i), st in self.states.items() if i == inst))

    # ------------------------------------------------------------------ responses

    def _send_order(self, key: int) -> None:
        t = self.orders[key]
        self._send_rec(t.bot_id, t.inst, t.rec[0])

    def _response(self, bot_id: int, kind: int, inst: int) -> np.ndarray | None:
        """A zeroed response record for a bot that is attached, else None (dropped)."""
        if bot_id not in self.bots:
            return None
        r = self._resp
        r[:] = 0
        r["kind"] = kind
        r["inst"] = inst
        r["ts"] = self.now_ns()
        return r

    def _send_rec(self, bot_id: int, inst: int, rec) -> None:
        r = self._response(bot_id, RESP_ORDER, inst)
        if r is not None:
            r["order"] = rec
            r["state"] = self._state(bot_id, inst)[0]
            self._queue(bot_id, r)

    def _send_state(self, bot_id: int, inst: int) -> None:
        r = self._response(bot_id, RESP_STATE, inst)
        if r is not None:
            r["state"] = self._state(bot_id, inst)[0]
            self._queue(bot_id, r)

    def send_error(self, bot_id: int, kind: int, code: int, msg: str, inst: int = -1,
                   order_id: int = 0, reason: int | None = None) -> None:  # fmt: skip
        """An error record; `reason` (REJECT_*) defaults to the connector code's own."""
        r = self._response(bot_id, RESP_ERROR, inst)
        if r is not None:
            r["err_kind"] = kind
            r["code"] = code
            r["reason"] = codes.REASONS.get(code, 0) if reason is None else reason
            r["order"]["order_id"] = order_id
            # the field's size, cut on a character boundary (a cut UTF-8 sequence would
            # decode as a replacement character)
            r["msg"] = msg.encode()[:MSG_BYTES].decode(errors="ignore").encode()
            self._queue(bot_id, r)

    def _queue(self, bot_id: int, r: np.ndarray) -> None:
        self._out.setdefault(bot_id, []).append(r[0].copy())

    def flush(self) -> None:
        """Publish every queued response, one batch per bot."""
        if not self._out:
            return
        out, self._out = self._out, {}
        for bot_id, recs in out.items():
            b = self.bots.get(bot_id)
            if b is None:
                continue
            arr = np.array(recs, dtype=response_dtype)
            sent = self.shm.send_many(b.slot, arr, len(arr))
            if sent < len(arr):
                self.n_dropped_responses += len(arr) - sent
                log.error("bot %d is not reading its responses: dropped %d", bot_id,
                          len(arr) - sent)  # fmt: skip

    def broadcast_error(self, kind: int, code: int, msg: str, inst: int = -1) -> None:
        for bot_id in list(self.bots):
            self.send_error(bot_id, kind, code, msg, inst)
        self.flush()

    def shutdown_notice(self) -> None:
        self.stopping = True
        self.broadcast_error(ERR_CONNECTOR, CONNECTOR_STOPPING, "connector shutting down")

    def forget_final(self) -> None:
        cutoff = time.monotonic() - FINAL_KEEP_S
        for key in [k for k, t in self.orders.items() if t.final_at and t.final_at < cutoff]:
            t = self.orders.pop(key)
            if self.by_id.get((t.bot_id, t.inst, t.order_id)) == key:
                del self.by_id[(t.bot_id, t.inst, t.order_id)]
