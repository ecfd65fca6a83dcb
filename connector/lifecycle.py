"""The order lifecycle of a real venue, sans-I/O: one state machine for every venue.

Inputs are venue-neutral values each venue parses its wire messages into (`VenueState`,
`Fill`, `Refusal`); outputs are commands for the I/O layer (`connector.order_entry`):
`Report` (an order change for the bots), `Send` (a request to put on the wire), `Query`
(ask the venue what became of an order) and `FetchFills` (read fills the stream did not
deliver). No I/O, no clock: time comes in as an argument where a rule needs it.

Rules. Each row has a test named after its id in tests/test_lifecycle.py.

==== ============================== ============================ ===========================
id   input                          when                         effect (outputs)
==== ============================== ============================ ===========================
S1   submit                         -                            submit pending; Send
C1   cancel                         working, no cancel pending   cancel pending; Send
C2   cancel                         submit unanswered (NONE)     doomed: Query at once, and
                                                                 a cancel goes out as soon
                                                                 as the order shows working
C3   cancel                         a cancel already pending     nothing (sent once)
C4   cancel                         final                        nothing
C5   cancel, leaving                its bot left / shutdown      doomed (D1, D2), then C1-C4
M1   modify                         working                      modify pending; Send
F1   not sent                       not connected, throttled,    refused with that reason:
                                    connection failed            a submit ends EXPIRED, a
                                                                 cancel/modify leaves the
                                                                 order as it was
F2   send failed after sending      timeout, disconnect, 5xx     outcome unknown: Query,
                                                                 never a resend
R1   reply: a state                 -                            applied (A1-A4); request
                                                                 concluded
R2   reply: submit refused          order not seen yet           EXPIRED with code/reason
R3   reply: cancel/modify refused   reason UNKNOWN_ORDER         concluded with the refusal;
                                                                 Query (it may have ended
                                                                 unseen: no retry storm)
R4   reply: cancel/modify refused   other reasons                concluded with the refusal
E1   stream event                   -                            applied (A1-A4); an event
                                                                 showing a request's effect
                                                                 (ack, amend) concludes it;
                                                                 a final state concludes
                                                                 every pending request
E2   stream fill                    trade id already seen        not counted again
E3   stream fill                    new trade id                 reported once, even after
                                                                 the order ended
Q1   query: a state                 -                            applied (A1-A4); concludes
                                                                 the requests whose outcome
                                                                 was unknown
Q2   query: not found               submit's outcome unknown     EXPIRED: it never reached
                                                                 the venue
Q3   query: not found               submit still in flight       nothing: its reply decides
Q4   query failed                   -                            still unsure: asked again
                                                                 by `due` after a while
T1   recovered fills                -                            new ones reported once, then
                                                                 the held state applied
T2   recovered fills                reading them failed          still held: `due` reads
                                                                 them again
D1   doomed order shows working     no cancel pending            Send cancel
D2   `due`: doomed and working      no cancel pending (the last  Send cancel
                                    one was refused, or got R3)
O1   reconcile: order open          -                            as Q1
O2   reconcile: order not open      -                            Query
A1   a non-final state              older than ours (seq, else   ignored, unless it shows a
                                    venue time)                  pending request's effect
A2   a final state                  -                            applied whatever its time:
                                                                 a venue clock that jumped
                                                                 back cannot hide a cancel
A3   any state                      order already final          ignored (final is final);
                                                                 a new fill still counts
A4   a state with more executed     -                            held; FetchFills; applied
     qty than the fills seen                                     after the fills (T1)
==== ============================== ============================ ===========================

"Pending" requests are sent and not concluded; a request concludes once, at whichever
comes first of its reply and the stream event showing its effect (the bot's `wait=True`
ends there, as in the backtester). "In flight" requests are sent and not answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connector.venue import NewOrder, OrderReport
from hftlive.constants import (
    CANCELED,
    EXPIRED,
    FILLED,
    NEW,
    NONE,
    PARTIALLY_FILLED,
    REJECT_UNKNOWN_ORDER,
)
from hftlive.layout import REQ_CANCEL, REQ_MODIFY, REQ_SUBMIT

EPS = 1e-12
FINAL = (FILLED, CANCELED, EXPIRED)
WORKING = (NEW, PARTIALLY_FILLED)
REQ_NAMES = {REQ_SUBMIT: "submit", REQ_CANCEL: "cancel", REQ_MODIFY: "modify"}


# ---------------------------------------------------------------------------- inputs
@dataclass(frozen=True, slots=True)
class VenueState:
    """An order as the venue shows it (a reply, a query, an open-orders entry, an event).

    price_tick: None where the venue shows no price (MARKET orders): ours is kept.
    seq: the venue's per-order sequence where it has one (0: order by `ts_ns`).
    """

    status: int
    qty: float
    cum_qty: float
    price_tick: int | None
    ts_ns: int
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Fill:
    trade_id: int | str
    qty: float
    price_tick: int
    maker: bool
    fee: float  # quote units, negative for a rebate
    ts_ns: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused: by the venue (its code) or before sending (connector.codes)."""

    code: int
    msg: str
    reason: int  # hftlive.constants.REJECT_*


# ---------------------------------------------------------------------------- outputs
@dataclass(frozen=True, slots=True)
class Report:
    report: OrderReport


@dataclass(frozen=True, slots=True)
class Send:
    key: int
    req: int  # REQ_SUBMIT / REQ_CANCEL / REQ_MODIFY


@dataclass(frozen=True, slots=True)
class Query:
    key: int


@dataclass(frozen=True, slots=True)
class FetchFills:
    key: int


# ---------------------------------------------------------------------------- state
@dataclass
class Order:
    """What we know of one order; every report is built from it."""

    key: int
    inst: int
    side: int
    order_type: int
    tif: int
    client_id: str
    qty: float
    price_tick: int
    status: int = NONE
    leaves_qty: float = 0.0
    filled_qty: float = 0.0  # the sum of the fills reported
    ts_ns: int = 0  # the venue time of the newest state applied
    seq: int = 0
    pending: list[int] = field(default_factory=list)  # sent, not concluded
    in_flight: list[int] = field(default_factory=list)  # sent, not answered
    unknown: list[int] = field(default_factory=list)  # sent, outcome unknown
    unsure_since: float | None = None  # when an outcome became unknown (caller's clock)
    querying: bool = False
    fetching: bool = False
    held: tuple[VenueState, list[int]] | None = None  # a state waiting for its fills
    held_since: float | None = None  # when `due` first saw it held (caller's clock)
    doomed: bool = False  # to be cancelled as soon as it works (its bot left, shutdown)
    cancel_waits: bool = False  # its last cancel got "unknown order": the next waits for due
    modify_to: tuple[int, float] = (0, 0.0)  # price_tick, qty of the modify being sent
    venue_id: int | str = 0  # the venue's own id of the order, once known
    reduce_only: bool = False
    final_seen: float | None = None  # when `prune` first saw it final (caller's clock)
    trade_ids: set = field(default_factory=set)

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def view(self) -> tuple:
        return (self.status, self.qty, self.leaves_qty, self.price_tick)


class Lifecycle:
    """Every order of one venue session, keyed by the connector's order key."""

    def __init__(self) -> None:
        self.orders: dict[int, Order] = {}
        self.by_client_id: dict[str, int] = {}

    # ------------------------------------------------------------------ requests
    def submit(self, new: NewOrder, client_id: str) -> list:
        o = Order(new.key, new.inst, new.side, new.order_type, new.tif, client_id, new.qty,
                  new.price_tick, leaves_qty=new.qty, reduce_only=new.reduce_only)  # fmt: skip
        self.orders[o.key] = o
        self.by_client_id[client_id] = o.key
        return self._send(o, REQ_SUBMIT)  # S1

    def cancel(self, key: int, leaving: bool = False) -> list:
        """Cancel `key`; `leaving`: its bot left or the connector stops, so it must end
        even if this cancel is refused, or the order is not known to work yet."""
        o = self.orders.get(key)
        if o is None or o.final:  # C4
            return []
        o.doomed = o.doomed or leaving  # C5
        if REQ_CANCEL in o.pending:  # C3
            return []
        if o.status == NONE:  # C2: its submit is unanswered
            o.doomed = True
            return self._query(o)
        return self._send(o, REQ_CANCEL)  # C1

    def modify(self, key: int, price_tick: int, qty: float) -> list:
        o = self.orders.get(key)
        if o is None or o.final:
            return []
        o.modify_to = (price_tick, qty)
        return self._send(o, REQ_MODIFY)  # M1

    def _send(self, o: Order, req: int) -> list:
        o.pending.append(req)
        o.in_flight.append(req)
        return [Send(o.key, req)]

    # ------------------------------------------------------------------ transport outcomes
    def send_failed(self, key: int, req: int, sent: bool, why: str, now: float,
                    not_sent: Refusal | None = None) -> list:  # fmt: skip
        """The request could not be sent (F1, with `not_sent`), or was sent and its reply
        never came (F2: timeout, disconnect, a 5xx whose outcome is unknown)."""
        o = self.orders[key]
        _drop(o.in_flight, req)
        if not sent:
            return self._refused(o, req, not_sent or Refusal(0, why, 0))  # F1
        o.unknown.append(req)  # F2
        if o.unsure_since is None:
            o.unsure_since = now
        return self._query(o)

    def reply(self, key: int, req: int, result: VenueState | Refusal) -> list:
        """The venue's answer to request `req` (R1-R4)."""
        o = self.orders[key]
        _drop(o.in_flight, req)
        if isinstance(result, Refusal):
            out = self._refused(o, req, result)
            if req != REQ_SUBMIT and result.reason == REJECT_UNKNOWN_ORDER:
                # R3: ask, once; if it must go anyway (doomed), the next cancel waits for
                # `due`, so a venue that keeps answering -2011 meets no storm
                o.cancel_waits = req == REQ_CANCEL
                out += self._query(o)
            return out
        return self._apply(o, result, [req])  # R1

    def _refused(self, o: Order, req: int, r: Refusal) -> list:
        done = _drop(o.pending, req)
        if req == REQ_SUBMIT:
            if o.status != NONE:
                return []  # the venue shows the order: this refusal is stale
            o.status, o.leaves_qty = EXPIRED, 0.0  # R2, as hftbacktest's backtester does
            o.pending.clear()
            o.unknown.clear()
            o.unsure_since = None
        return [self._report(o, done, reject_code=r.code, reject_msg=r.msg, reason=r.reason)]

    # ------------------------------------------------------------------ what the venue shows
    def event(self, key: int, state: VenueState, fill: Fill | None = None,
              shows: int = 0, refusal: Refusal | None = None) -> list:  # fmt: skip
        """A stream event (E1-E3); `shows` is the request whose effect it shows (an ack
        shows REQ_SUBMIT, an amendment REQ_MODIFY), 0 if none. `refusal`: the venue
        ended the order on the stream for a reason the bot must hear (a venue that
        accepts a crossing post-only and cancels it afterwards: Bybit); it rides on the
        report of the final state."""
        o = self.orders[key]
        return self._apply(o, state, [shows] if shows else [], fill, refusal=refusal)

    def query_result(self, key: int, result: VenueState | Refusal | None, now: float) -> list:
        """The answer to a Query (Q1-Q3); None: the query failed (Q4)."""
        o = self.orders[key]
        o.querying = False
        if result is None:  # Q4
            if (o.unknown or o.doomed and o.status == NONE) and o.unsure_since is None:
                o.unsure_since = now
            return []
        if isinstance(result, Refusal):
            if o.status == NONE and REQ_SUBMIT in o.unknown and REQ_SUBMIT not in o.in_flight:
                return self._refused(o, REQ_SUBMIT, result)  # Q2
            return []  # Q3 (or the order is known: a stale "not found")
        return self._apply(o, result, list(o.unknown), fetch=True)  # Q1

    def fills(self, key: int, fills: list[Fill] | None) -> list:
        """Fills read back after FetchFills (T1); None: reading them failed."""
        o = self.orders[key]
        o.fetching = False
        out = []
        for f in sorted(fills or [], key=lambda f: (f.ts_ns, str(f.trade_id))):
            if f.trade_id not in o.trade_ids:
                o.trade_ids.add(f.trade_id)
                o.filled_qty += f.qty
                out.append(self._fill_report(o, f))
        if fills is None:
            o.held_since = None  # still held: `due` reads them again later
            return out
        held, o.held = o.held, None
        o.held_since = None
        if held is not None:
            out += self._apply(o, held[0], held[1])
        return out

    def open_orders(self, open_now: dict[str, VenueState]) -> list:
        """After a reconnect: every order not final, against the venue's open orders."""
        out = []
        for o in list(self.orders.values()):
            if o.final:
                continue
            st = open_now.get(o.client_id)
            if st is not None:
                out += self._apply(o, st, list(o.unknown), fetch=True)  # O1
            else:
                out += self._query(o)  # O2
        return out

    def due(self, now: float, after_s: float) -> list:
        """What has waited `after_s`: a query for an order whose outcome is still unknown
        (Q4), a fill read for a state held for fills the stream never brought (A4), a
        cancel for an order that must go and whose last cancel was refused (D1)."""
        out = []
        for o in self.orders.values():
            if o.final:
                continue
            if o.unsure_since is not None and not o.querying and now - o.unsure_since >= after_s:
                o.unsure_since = now
                out += self._query(o)
            if o.held is not None and not o.fetching:
                if o.held_since is None:
                    o.held_since = now
                elif now - o.held_since >= after_s:
                    o.held_since = now
                    o.fetching = True
                    out.append(FetchFills(o.key))
            if o.doomed and o.status in WORKING and REQ_CANCEL not in o.pending:
                o.cancel_waits = False
                out += self._send(o, REQ_CANCEL)  # D2
        return out

    def prune(self, now: float, keep_s: float) -> list[int]:
        """Forgets orders final for `keep_s` with nothing in flight (a late event for one
        is then "not ours"); returns their keys."""
        gone = []
        for o in list(self.orders.values()):
            if not o.final or o.in_flight or o.querying or o.fetching:
                continue
            if o.final_seen is None:
                o.final_seen = now
            elif now - o.final_seen >= keep_s:
                self.forget(o.key)
                gone.append(o.key)
        return gone

    def unsure(self) -> list[int]:
        """Orders that may be working and are not known to: unanswered or unknown."""
        return [o.key for o in self.orders.values() if not o.final
                and (o.status == NONE or o.unknown or o.held is not None)]  # fmt: skip

    def forget(self, key: int) -> None:
        o = self.orders.pop(key, None)
        if o is not None:
            self.by_client_id.pop(o.client_id, None)

    # ------------------------------------------------------------------ the rules
    def _apply(self, o: Order, st: VenueState, shows: list[int], fill: Fill | None = None,
               fetch: bool = False, refusal: Refusal | None = None) -> list:  # fmt: skip
        """`fetch`: the state comes from a query or a reconcile, so fills it shows that
        we lack will not come by the stream: read them (a reply's or an event's fills
        are on their way by the stream; `due` reads them if they never come)."""
        out: list = []
        if fill is not None and fill.trade_id not in o.trade_ids:  # E2/E3
            o.trade_ids.add(fill.trade_id)
            o.filled_qty += fill.qty
            out.append(self._fill_report(o, fill))
        if o.held is not None and o.held[0].cum_qty <= o.filled_qty + EPS:
            # the fills a held state waited for came (by the stream): it applies now
            (held, held_shows), o.held = o.held, None
            o.held_since = None
            out += self._apply(o, held, held_shows)
        if o.final:  # A3
            return out
        if st.cum_qty > o.filled_qty + EPS:  # A4: fills first
            if o.held is None or _newer(st, o.held[0]):
                o.held = (st, sorted(set(shows) | set(o.held[1] if o.held else [])))
            before = o.view()
            if o.status == NONE:
                o.status = NEW  # the venue has it; its fills follow
            if fetch and not o.fetching:
                o.fetching = True
                out.append(FetchFills(o.key))
            done = self._conclude(o, [r for r in shows if r == REQ_SUBMIT])
            if done or o.view() != before:
                out.append(self._report(o, done))
            return out
        before = o.view()
        concluding = [r for r in shows if r in o.pending]
        # A1's exception: a state showing a pending request's effect is applied even if
        # its venue time is older (the venue's clock jumped back), unless it is behind
        # the fills we have already seen
        forced = concluding and st.cum_qty + EPS >= o.filled_qty
        if st.status in FINAL or forced or _newer(st, o):  # A2, A1
            o.status = st.status
            o.qty = st.qty
            if st.price_tick is not None:
                o.price_tick = st.price_tick
            o.leaves_qty = max(st.qty - st.cum_qty, 0.0)
            o.ts_ns = max(o.ts_ns, st.ts_ns)
            o.seq = max(o.seq, st.seq)
        for r in shows:
            _drop(o.unknown, r)
        if not o.unknown:
            o.unsure_since = None
        kw = {}
        if o.final:
            done = o.pending[0] if o.pending else 0  # every request on it concluded
            o.pending.clear()
            o.unknown.clear()
            o.unsure_since = None
            if refusal is not None and o.view() != before:
                kw = {"reject_code": refusal.code, "reject_msg": refusal.msg,
                      "reason": refusal.reason}  # fmt: skip
        else:
            done = self._conclude(o, concluding)
        if done or o.view() != before:
            out.append(self._report(o, done, **kw))
        if o.doomed and o.status in WORKING and REQ_CANCEL not in o.pending:
            if not o.cancel_waits:  # D1 (after an R3, D2 sends it)
                out += self._send(o, REQ_CANCEL)
        return out

    @staticmethod
    def _conclude(o: Order, reqs: list[int]) -> int:
        done = 0
        for r in reqs:
            if _drop(o.pending, r):
                done = done or r
        return done

    def _query(self, o: Order) -> list:
        if o.querying:
            return []
        o.querying = True
        return [Query(o.key)]

    # ------------------------------------------------------------------ reports
    @staticmethod
    def _report(o: Order, completes: int = 0, **kw) -> Report:
        return Report(OrderReport(key=o.key, status=o.status, qty=o.qty, leaves_qty=o.leaves_qty,
                                  price_tick=o.price_tick, exch_ts=o.ts_ns, completes=completes,
                                  client_id=o.client_id, venue_id=str(o.venue_id or ""),
                                  **kw))  # fmt: skip

    def _fill_report(self, o: Order, f: Fill) -> Report:
        # a fill moves the order by itself (the state that comes with it, or is held
        # for it, follows), so the bot sees every fill in order; the last one ends it
        done = 0
        if not o.final:
            o.leaves_qty = max(o.qty - o.filled_qty, 0.0)
            o.status = FILLED if o.leaves_qty <= EPS else PARTIALLY_FILLED
            if o.status == FILLED:
                done = o.pending[0] if o.pending else 0
                o.pending.clear()
                o.unknown.clear()
                o.unsure_since = None
        o.ts_ns = max(o.ts_ns, f.ts_ns)
        return self._report(o, done, exec_qty=f.qty, exec_price_tick=f.price_tick,
                            maker=f.maker, fee=f.fee)  # fmt: skip


def _newer(st: VenueState, than) -> bool:
    """A1: by the venue's sequence where both have one, else by venue time."""
    if st.seq and than.seq:
        return st.seq > than.seq
    return st.ts_ns >= than.ts_ns


def _drop(reqs: list[int], req: int) -> int:
    if req in reqs:
        reqs.remove(req)
        return req
    return 0
