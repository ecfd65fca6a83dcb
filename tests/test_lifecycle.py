"""The order lifecycle (connector/lifecycle.py), row by row of its rules table, in memory.

Inputs are real Binance messages (tests/fixtures/binancefutures/, one per file) parsed by
the venue's parser and mapped by its own mapping functions, as the connector does; the
machine's outputs (reports, sends, queries, fill reads) are checked exactly. Each test is
named after the row it checks.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest

from connector import codes
from connector.binancefutures.orders import event_of, fills_of, refusal, state_of
from connector.binancefutures.protocol import (
    ErrorReply,
    parse_order_response,
    parse_stream,
    parse_user_trades,
)
from connector.binancefutures.streams import MdInstrument
from connector.config import InstrumentConfig
from connector.lifecycle import FetchFills, Lifecycle, Query, Report, Send
from connector.venue import NewOrder
from hftlive.constants import (
    BUY,
    CANCELED,
    EXPIRED,
    FILLED,
    GTC,
    LIMIT,
    NEW,
    NONE,
    PARTIALLY_FILLED,
    REJECT_INSUFFICIENT_MARGIN,
    REJECT_NOT_CONNECTED,
    REJECT_POST_ONLY,
    REJECT_UNKNOWN_ORDER,
)
from hftlive.layout import REQ_CANCEL, REQ_MODIFY, REQ_SUBMIT

FIX = Path(__file__).parent / "fixtures" / "binancefutures"
INST = MdInstrument(0, InstrumentConfig("btcusdt", 0.1, 0.001))
CID = "hlmf0x1a2b-1"  # the client order id in the fixtures
ORDER_ID = 4059381250
KEY = 7
PX_TICK = 600000  # 60000.0


def _raw(name: str) -> bytes:
    return (FIX / f"{name}.json").read_bytes()


def ws(name: str):
    """(state, fill, shows) of an ORDER_TRADE_UPDATE fixture."""
    return event_of(parse_stream(_raw(f"ws_user_order_trade_update_{name}")), INST)


def rest(name: str):
    """A REST order body as a VenueState, or an error body as a Refusal."""
    r = parse_order_response(_raw(f"rest_{name}"))
    return refusal(r.code, r.msg) if isinstance(r, ErrorReply) else state_of(r, INST)


def trades():
    return fills_of(parse_user_trades(_raw("rest_user_trades")), INST, ORDER_ID)


def new_order(lc: Lifecycle) -> list:
    return lc.submit(NewOrder(KEY, 0, BUY, PX_TICK, 0.010, GTC, LIMIT), CID)


def reports(out: list) -> list:
    return [c.report for c in out if isinstance(c, Report)]


def commands(out: list) -> list:
    return [c for c in out if not isinstance(c, Report)]


def working() -> Lifecycle:
    """An order acked NEW by its reply."""
    lc = Lifecycle()
    new_order(lc)
    lc.reply(KEY, REQ_SUBMIT, rest("order_new"))
    return lc


def event(lc: Lifecycle, name: str) -> list:
    st, fill, shows = ws(name)
    return lc.event(KEY, st, fill, shows)


# ---------------------------------------------------------------------------- requests
def test_S1_submit_is_sent_once_and_pending():
    lc = Lifecycle()
    assert new_order(lc) == [Send(KEY, REQ_SUBMIT)]
    o = lc.orders[KEY]
    assert (o.status, o.pending, o.in_flight) == (NONE, [REQ_SUBMIT], [REQ_SUBMIT])
    assert lc.by_client_id[CID] == KEY and lc.unsure() == [KEY]


def test_C1_cancel_of_a_working_order_is_sent():
    lc = working()
    assert lc.cancel(KEY) == [Send(KEY, REQ_CANCEL)]


def test_C2_cancel_of_an_unanswered_submit_dooms_it_and_asks_the_venue():
    lc = Lifecycle()
    new_order(lc)
    assert lc.cancel(KEY, leaving=True) == [Query(KEY)]
    assert lc.orders[KEY].doomed
    # the venue shows it working: the cancel goes out at once (D1)
    out = lc.query_result(KEY, rest("order_new"), now=1.0)
    assert [r.status for r in reports(out)] == [NEW] and commands(out) == [Send(KEY, REQ_CANCEL)]


def test_C3_a_second_cancel_while_one_is_pending_sends_nothing():
    lc = working()
    lc.cancel(KEY)
    assert lc.cancel(KEY) == [] and lc.cancel(KEY, leaving=True) == []
    assert lc.orders[KEY].doomed


def test_C4_cancel_of_a_final_order_sends_nothing():
    lc = working()
    lc.cancel(KEY)
    lc.reply(KEY, REQ_CANCEL, rest("order_canceled"))
    assert lc.orders[KEY].status == CANCELED
    assert lc.cancel(KEY) == [] and lc.cancel(KEY, leaving=True) == []


def test_C5_D2_a_leaving_cancel_that_is_refused_is_sent_again_by_due():
    lc = working()
    assert lc.cancel(KEY, leaving=True) == [Send(KEY, REQ_CANCEL)]
    not_ready = refusal(codes.NOT_READY, "the user data stream is not connected")
    out = lc.send_failed(KEY, REQ_CANCEL, False, "down", now=0.0, not_sent=not_ready)
    (rep,) = reports(out)
    assert (rep.status, rep.completes, rep.reject_code) == (NEW, REQ_CANCEL, codes.NOT_READY)
    assert lc.due(now=5.0, after_s=5.0) == [Send(KEY, REQ_CANCEL)]  # D2
    assert lc.due(now=10.0, after_s=5.0) == []  # one cancel pending: not again


def test_M1_modify_is_sent_with_its_target():
    lc = working()
    assert lc.modify(KEY, 599900, 0.010) == [Send(KEY, REQ_MODIFY)]
    assert lc.orders[KEY].modify_to == (599900, 0.010)


# ---------------------------------------------------------------------------- transport
def test_F1_a_submit_not_sent_ends_expired_with_the_reason():
    lc = Lifecycle()
    new_order(lc)
    not_ready = refusal(codes.NOT_READY, "not connected")
    (rep,) = reports(lc.send_failed(KEY, REQ_SUBMIT, False, "x", now=0.0, not_sent=not_ready))
    assert (rep.status, rep.completes, rep.leaves_qty) == (EXPIRED, REQ_SUBMIT, 0.0)
    assert (rep.reject_code, rep.reason) == (codes.NOT_READY, REJECT_NOT_CONNECTED)
    assert lc.unsure() == []


def test_F2_a_sent_request_without_reply_is_queried_never_resent():
    lc = Lifecycle()
    new_order(lc)
    out = lc.send_failed(KEY, REQ_SUBMIT, True, "timeout", now=3.0)
    assert out == [Query(KEY)]
    assert not any(isinstance(c, Send) for c in out)
    assert lc.orders[KEY].unknown == [REQ_SUBMIT] and lc.unsure() == [KEY]


# ---------------------------------------------------------------------------- replies
def test_R1_reply_applies_and_concludes_the_request():
    lc = Lifecycle()
    new_order(lc)
    (rep,) = reports(lc.reply(KEY, REQ_SUBMIT, rest("order_new")))
    assert (rep.status, rep.completes, rep.price_tick, rep.leaves_qty) == (
        NEW,
        REQ_SUBMIT,
        PX_TICK,
        0.010,
    )
    assert lc.orders[KEY].pending == [] and lc.unsure() == []


def test_R2_a_refused_submit_ends_expired_with_code_and_reason():
    lc = Lifecycle()
    new_order(lc)
    (rep,) = reports(lc.reply(KEY, REQ_SUBMIT, rest("error_post_only")))
    assert (rep.status, rep.completes) == (EXPIRED, REQ_SUBMIT)
    assert (rep.reject_code, rep.reason) == (-5022, REJECT_POST_ONLY)


def test_R3_a_cancel_refused_as_unknown_order_is_followed_by_one_query():
    lc = working()
    lc.cancel(KEY)
    out = lc.reply(KEY, REQ_CANCEL, rest("error_unknown_order"))
    (rep,) = reports(out)
    assert (rep.status, rep.completes, rep.reject_code, rep.reason) == (
        NEW, REQ_CANCEL, -2011, REJECT_UNKNOWN_ORDER)  # fmt: skip
    assert commands(out) == [Query(KEY)]
    # the bot cancels again meanwhile: one cancel, no second query while one is out
    lc.cancel(KEY)
    assert commands(lc.reply(KEY, REQ_CANCEL, rest("error_unknown_order"))) == []
    # the query shows the order ended: the bot's status follows the venue's
    (rep,) = reports(lc.query_result(KEY, rest("order_canceled"), now=1.0))
    assert rep.status == CANCELED and lc.orders[KEY].final


def test_R4_a_refused_modify_concludes_with_the_refusal_and_changes_nothing():
    lc = working()
    lc.modify(KEY, 599900, 0.010)
    out = lc.reply(KEY, REQ_MODIFY, rest("error_margin"))
    (rep,) = reports(out)
    assert (rep.status, rep.price_tick, rep.completes) == (NEW, PX_TICK, REQ_MODIFY)
    assert (rep.reject_code, rep.reason) == (-2019, REJECT_INSUFFICIENT_MARGIN)
    assert commands(out) == []


# ---------------------------------------------------------------------------- stream events
def test_E1_an_ack_concludes_the_submit_once():
    lc = Lifecycle()
    new_order(lc)
    (rep,) = reports(event(lc, "new"))
    assert (rep.status, rep.completes) == (NEW, REQ_SUBMIT)
    assert lc.reply(KEY, REQ_SUBMIT, rest("order_new")) == []  # the reply changes nothing


def test_E1_an_amendment_concludes_the_modify():
    lc = working()
    lc.modify(KEY, 599900, 0.010)
    (rep,) = reports(event(lc, "amendment"))
    assert (rep.price_tick, rep.completes) == (599900, REQ_MODIFY)
    assert lc.reply(KEY, REQ_MODIFY, rest("order_amended")) == []


def test_E1_a_final_state_concludes_every_pending_request():
    lc = working()
    lc.modify(KEY, 599900, 0.010)
    (rep,) = reports(event(lc, "canceled"))
    assert (rep.status, rep.completes) == (CANCELED, REQ_MODIFY)
    assert lc.orders[KEY].pending == []


def test_E1_a_refusal_on_the_stream_rides_on_the_final_report_once():
    # a venue that accepts a crossing post-only and cancels it afterwards (Bybit, §2.5)
    from connector.lifecycle import Refusal, VenueState

    lc = Lifecycle()
    new_order(lc)
    why = Refusal(codes.POST_ONLY_CROSSED, "EC_PostOnlyWillTakeLiquidity", REJECT_POST_ONLY)
    gone = VenueState(EXPIRED, 0.010, 0.0, PX_TICK, 1)
    (rep,) = reports(lc.event(KEY, gone, refusal=why))
    assert (rep.status, rep.completes) == (EXPIRED, REQ_SUBMIT)
    assert (rep.reject_code, rep.reason) == (codes.POST_ONLY_CROSSED, REJECT_POST_ONLY)
    assert lc.event(KEY, gone, refusal=why) == []  # told once


def test_E2_E3_each_fill_counts_once_by_trade_id():
    lc = working()
    (rep,) = reports(event(lc, "trade_partial"))
    assert (rep.status, rep.exec_qty, rep.exec_price_tick, rep.maker) == (
        PARTIALLY_FILLED, 0.004, PX_TICK, True)  # fmt: skip
    assert rep.fee == pytest.approx(0.048) and rep.leaves_qty == pytest.approx(0.006)
    assert event(lc, "trade_partial") == []  # E2: the same trade again
    (rep,) = reports(event(lc, "trade_filled"))
    assert (rep.status, rep.exec_qty, rep.leaves_qty) == (FILLED, 0.006, 0.0)
    assert lc.orders[KEY].filled_qty == pytest.approx(0.010)


def test_E3_a_fill_after_the_order_ended_still_counts():
    lc = working()
    lc.cancel(KEY)
    # the venue filled part of it, then cancelled; the cancel reply overtakes the fill's
    # event: the state waits for the fill (A4), which then counts
    out = lc.reply(KEY, REQ_CANCEL, rest("order_canceled_after_partial"))
    assert commands(out) == [] and lc.orders[KEY].held is not None
    out = event(lc, "trade_partial")
    assert [(r.status, r.exec_qty) for r in reports(out)] == [
        (PARTIALLY_FILLED, 0.004),
        (CANCELED, 0.0),
    ]
    assert reports(out)[1].completes == REQ_CANCEL
    # a late fill of an order already final is still a fill
    st, fill, _ = ws("trade_filled")
    (rep,) = reports(lc.event(KEY, st, fill))
    assert (rep.status, rep.exec_qty) == (CANCELED, 0.006)


# ---------------------------------------------------------------------------- ordering
def test_A1_an_older_non_final_state_is_ignored():
    lc = working()
    event(lc, "trade_partial")
    assert event(lc, "new") == []  # the ack, late: older, shows nothing pending
    assert lc.orders[KEY].status == PARTIALLY_FILLED


def test_A1_a_state_showing_a_pending_request_applies_though_older():
    # the venue's clock jumped back between the ack and the amendment
    lc = Lifecycle()
    new_order(lc)
    st, _, shows = ws("new")
    lc.event(KEY, dataclasses.replace(st, ts_ns=st.ts_ns + 3_000_000_000), None, shows)
    lc.modify(KEY, 599900, 0.010)
    (rep,) = reports(event(lc, "amendment"))
    assert (rep.price_tick, rep.completes) == (599900, REQ_MODIFY)


def test_A2_a_final_state_applies_whatever_its_time():
    # placed at venue clock +3 s, cancelled at 0: the cancel's time is older
    lc = Lifecycle()
    new_order(lc)
    st = rest("order_new")
    lc.reply(KEY, REQ_SUBMIT, dataclasses.replace(st, ts_ns=st.ts_ns + 3_000_000_000))
    lc.cancel(KEY)
    (rep,) = reports(lc.reply(KEY, REQ_CANCEL, rest("order_canceled")))
    assert (rep.status, rep.completes) == (CANCELED, REQ_CANCEL)
    assert lc.unsure() == []


def test_A3_nothing_undoes_a_final_state():
    lc = working()
    event(lc, "canceled")
    assert event(lc, "new") == [] and event(lc, "amendment") == []
    assert lc.query_result(KEY, rest("order_new"), now=0.0) == []
    assert lc.orders[KEY].status == CANCELED


def test_A4_T1_a_query_ahead_of_our_fills_reads_them_first():
    lc = working()
    out = lc.query_result(KEY, rest("order_filled"), now=0.0)
    assert commands(out) == [FetchFills(KEY)] and reports(out) == []
    out = lc.fills(KEY, trades())
    assert [(r.status, r.exec_qty) for r in reports(out)] == [
        (PARTIALLY_FILLED, 0.004),
        (FILLED, 0.006),
    ]
    assert lc.orders[KEY].held is None
    assert lc.fills(KEY, trades()) == []  # read again: nothing counted twice


def test_A4_a_reply_ahead_of_its_fills_waits_for_the_stream():
    lc = Lifecycle()
    new_order(lc)
    out = lc.reply(KEY, REQ_SUBMIT, rest("order_filled"))
    (rep,) = reports(out)
    assert (rep.status, rep.completes, rep.exec_qty) == (NEW, REQ_SUBMIT, 0.0)
    assert commands(out) == []  # its fills are on their way by the stream
    event(lc, "trade_partial")
    out = event(lc, "trade_filled")
    assert [(r.status, r.exec_qty) for r in reports(out)] == [(FILLED, 0.006)]
    assert lc.orders[KEY].held is None


def test_A4_a_held_state_whose_fills_never_come_has_them_read_by_due():
    lc = Lifecycle()
    new_order(lc)
    lc.reply(KEY, REQ_SUBMIT, rest("order_filled"))
    assert lc.due(now=10.0, after_s=5.0) == []  # first seen held
    assert lc.due(now=15.0, after_s=5.0) == [FetchFills(KEY)]
    assert [r.status for r in reports(lc.fills(KEY, trades()))] == [PARTIALLY_FILLED, FILLED]


def test_T2_fills_that_cannot_be_read_keep_the_state_held():
    lc = working()
    lc.query_result(KEY, rest("order_filled"), now=0.0)
    assert lc.fills(KEY, None) == []
    assert lc.orders[KEY].held is not None and lc.unsure() == [KEY]
    lc.due(now=1.0, after_s=5.0)
    assert lc.due(now=6.0, after_s=5.0) == [FetchFills(KEY)]


# ---------------------------------------------------------------------------- queries
def test_Q1_a_query_concludes_what_was_unknown():
    lc = Lifecycle()
    new_order(lc)
    lc.send_failed(KEY, REQ_SUBMIT, True, "timeout", now=0.0)
    (rep,) = reports(lc.query_result(KEY, rest("order_new"), now=1.0))
    assert (rep.status, rep.completes) == (NEW, REQ_SUBMIT)
    assert lc.unsure() == [] and lc.orders[KEY].unknown == []


def test_Q1_an_unknown_cancel_shown_not_done_concludes_and_a_leaving_one_is_resent():
    lc = working()
    lc.cancel(KEY, leaving=True)
    lc.send_failed(KEY, REQ_CANCEL, True, "timeout", now=0.0)
    out = lc.query_result(KEY, rest("order_new"), now=1.0)
    (rep,) = reports(out)
    assert (rep.status, rep.completes) == (NEW, REQ_CANCEL)
    assert commands(out) == [Send(KEY, REQ_CANCEL)]  # D1: a new cancel, not a resend


def test_Q2_an_unknown_submit_the_venue_does_not_know_ends_expired():
    lc = Lifecycle()
    new_order(lc)
    lc.send_failed(KEY, REQ_SUBMIT, True, "timeout", now=0.0)
    (rep,) = reports(lc.query_result(KEY, rest("error_no_such_order"), now=1.0))
    assert (rep.status, rep.completes, rep.reject_code, rep.reason) == (
        EXPIRED, REQ_SUBMIT, -2013, REJECT_UNKNOWN_ORDER)  # fmt: skip
    assert lc.unsure() == []


def test_Q3_not_found_while_the_submit_is_in_flight_decides_nothing():
    lc = Lifecycle()
    new_order(lc)
    lc.cancel(KEY, leaving=True)  # C2: queries at once
    assert lc.query_result(KEY, rest("error_no_such_order"), now=0.0) == []
    assert lc.orders[KEY].status == NONE
    # the submit's reply shows it working: cancelled at once (D1)
    out = lc.reply(KEY, REQ_SUBMIT, rest("order_new"))
    assert commands(out) == [Send(KEY, REQ_CANCEL)]


def test_Q4_a_failed_query_is_asked_again_by_due():
    lc = Lifecycle()
    new_order(lc)
    assert lc.send_failed(KEY, REQ_SUBMIT, True, "timeout", now=0.0) == [Query(KEY)]
    assert lc.query_result(KEY, None, now=0.5) == []
    assert lc.due(now=4.0, after_s=5.0) == []
    assert lc.due(now=5.0, after_s=5.0) == [Query(KEY)]
    assert lc.due(now=6.0, after_s=5.0) == []  # one query at a time


# ---------------------------------------------------------------------------- departure
def test_D1_a_doomed_order_is_cancelled_when_its_ack_arrives():
    lc = Lifecycle()
    new_order(lc)
    lc.cancel(KEY, leaving=True)
    out = event(lc, "new")
    assert commands(out) == [Send(KEY, REQ_CANCEL)]
    (rep,) = reports(lc.reply(KEY, REQ_CANCEL, rest("order_canceled")))
    assert rep.status == CANCELED and lc.unsure() == []


# ---------------------------------------------------------------------------- reconcile
def test_O1_O2_reconcile_against_the_open_orders():
    lc = Lifecycle()
    new_order(lc)
    lc.send_failed(KEY, REQ_SUBMIT, True, "disconnected", now=0.0)
    lc.query_result(KEY, None, now=0.0)  # the query failed too
    other = NewOrder(8, 0, BUY, PX_TICK, 0.010, GTC, LIMIT)
    lc.submit(other, "hlmf0x1a2b-8")
    lc.reply(8, REQ_SUBMIT, dataclasses.replace(rest("order_new")))
    open_now = {
        r["clientOrderId"]: state_of(parse_order_response(r), INST)
        for r in orjson.loads(_raw("rest_open_orders"))
    }
    out = lc.open_orders(open_now)
    # O1: ours is open: its submit concludes; O2: order 8 is not open: asked about
    assert [(r.key, r.status, r.completes) for r in reports(out)] == [(KEY, NEW, REQ_SUBMIT)]
    assert commands(out) == [Query(8)]


def test_every_row_of_the_rules_table_has_a_test():
    import re

    from connector import lifecycle

    ids = re.findall(r"^([A-Z]\d)\s", lifecycle.__doc__, re.M)
    assert len(ids) >= 25
    names = [n for n in globals() if n.startswith("test_")]
    assert [i for i in ids if not any(f"_{i}_" in n for n in names)] == []


def test_final_orders_are_forgotten_after_a_while():
    lc = working()
    event(lc, "canceled")
    assert lc.prune(now=100.0, keep_s=60.0) == []  # first seen final
    assert lc.prune(now=159.0, keep_s=60.0) == []
    assert lc.prune(now=160.0, keep_s=60.0) == [KEY]
    assert KEY not in lc.orders and CID not in lc.by_client_id


def test_R3_D2_a_doomed_order_the_venue_calls_unknown_is_cancelled_again_only_by_due():
    lc = working()
    lc.cancel(KEY, leaving=True)
    assert commands(lc.reply(KEY, REQ_CANCEL, rest("error_unknown_order"))) == [Query(KEY)]
    # the query still shows it open: no cancel at once (a venue that keeps answering
    # -2011 would otherwise get a cancel and a query every round trip)
    assert commands(lc.query_result(KEY, rest("order_new"), now=0.0)) == []
    assert lc.due(now=5.0, after_s=5.0) == [Send(KEY, REQ_CANCEL)]
