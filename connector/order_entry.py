"""Order entry for a real venue: the asyncio side of `connector.lifecycle`.

The lifecycle decides; this module carries its commands out over the venue's
`VenueOrderApi` (which builds the wire requests and parses the answers into neutral
values) and feeds the outcomes back:

* `Send` -> `api.admit` (may it go now? counted against the venue's limits at once, so
  a burst is checked order by order), then `api.send` in a task; its reply, or the
  failure (`RequestFailed.sent`: an unknown outcome, or nothing sent), goes back in.
* `Query` -> `api.query`; `FetchFills` -> `api.fills`; `Report` -> the core (published
  to the bots as one batch per pass).
* `reconcile()` after a (re)connect of the venue's order stream; `settle()` every few
  seconds (re-asks what is still unknown, reads fills that never came, re-sends the cancel
  of an order whose bot left).

Nothing is ever resent: an unknown outcome is resolved by a query.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from connector import codes
from connector.errors import RequestFailed, VenueProtocolError
from connector.lifecycle import (
    REQ_NAMES,
    FetchFills,
    Fill,
    Lifecycle,
    Order,
    Query,
    Refusal,
    Report,
    Send,
    VenueState,
)
from connector.venue import Core, NewOrder, Venue
from hftlive.constants import ERR_CONNECTION

log = logging.getLogger(__name__)


_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(n: int) -> str:
    """`n` >= 0 in base 36 (0-9a-z): short ids made of characters every venue allows."""
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if n == 0:
            return out


def client_id_prefix(prefix: str, run_tag_ms: int) -> str:
    """The client order id prefix of one connector run: the configured prefix, the run's
    start time (ms, base 36) and "-"; `prefix + base36(key)` is then unique across bots
    (keys are connector-wide) and across restarts (a later run has a later tag) by
    construction. With a prefix of at most 12 characters and a uint64 key the id stays
    within 12 + 9 + 1 + 13 = 35 characters (Binance and Bybit both allow 36)."""
    return f"{prefix}{base36(run_tag_ms)}-"


class VenueOrderApi(Protocol):
    """What a venue implements for order entry (wire formats only; no rules)."""

    def client_id(self, key: int) -> str:
        """A client order id for `key`, unique across bots and restarts by construction."""

    def admit(self, o: Order, req: int) -> Refusal | None:
        """May `req` be sent now (connected, not throttled)? Counts it if so."""

    async def send(self, o: Order, req: int) -> VenueState | Refusal:
        """Sends `req` (REQ_SUBMIT/CANCEL/MODIFY; a modify's target is `o.modify_to`).

        Raises:
            RequestFailed: no answer; `sent` says whether it may have executed.
        """

    async def query(self, o: Order) -> VenueState | Refusal:
        """The order's state at the venue (a Refusal with REJECT_UNKNOWN_ORDER: none)."""

    fills_source: str  # where `fills` reads them, for the log (e.g. "userTrades")

    async def fills(self, o: Order) -> list[Fill]:
        """Every fill of the order the venue has (deduplicated by the lifecycle)."""

    async def open_orders(self) -> dict[str, VenueState]:
        """The venue's open orders of our symbols, by client order id."""


class OrderEntry:
    """Runs the lifecycle of one venue session. `tg` is set once the venue runs."""

    def __init__(self, core: Core, api: VenueOrderApi):
        self.core = core
        self.api = api
        self.lc = Lifecycle()
        self.tg: asyncio.TaskGroup | None = None
        self._checks: set[asyncio.Task] = set()  # queries and fill reads under way

    # ------------------------------------------------------------------ the core's calls
    def submit(self, new: NewOrder) -> None:
        self._run(self.lc.submit(new, self.api.client_id(new.key)))

    def cancel(self, key: int, leaving: bool = False) -> None:
        self._run(self.lc.cancel(key, leaving))

    def modify(self, key: int, price_tick: int, qty: float) -> None:
        self._run(self.lc.modify(key, price_tick, qty))

    def unsure(self) -> list[int]:
        return self.lc.unsure()

    # ------------------------------------------------------------------ the venue's calls
    def key_of(self, client_id: str) -> int | None:
        return self.lc.by_client_id.get(client_id)

    def on_event(self, client_id: str, state: VenueState, fill: Fill | None = None,
                 shows: int = 0, refusal: Refusal | None = None) -> None:  # fmt: skip
        """An order event from the venue's private stream (`refusal`: see
        `Lifecycle.event`)."""
        key = self.lc.by_client_id.get(client_id)
        if key is None:
            log.debug("order event for %s (not ours) ignored", client_id)
            return
        self._run(self.lc.event(key, state, fill, shows, refusal))

    async def reconcile(self) -> None:
        """After the order stream (re)connects: orders still open are brought up to date
        from the venue's open orders, the others are queried (their fills read).

        Raises:
            RequestFailed, VenueProtocolError: the open orders could not be read (the
                caller reconnects and tries again).
        """
        if not any(not o.final for o in self.lc.orders.values()):
            return
        open_now = await self.api.open_orders()
        n = sum(1 for o in self.lc.orders.values() if not o.final)
        self._run(self.lc.open_orders(open_now))
        # the queries and fill reads it started (and those they start) end before the
        # session counts as reconciled: bots hear "all is well" with every fill in
        while self._checks:
            await asyncio.wait(set(self._checks))
        log.info("reconciled %d order(s) not final (%d open at the venue)", n,
                 sum(1 for o in self.lc.orders.values() if o.client_id in open_now))  # fmt: skip

    def settle(self, after_s: float, keep_s: float = 60.0) -> None:
        """What has waited `after_s` (connector.lifecycle.Lifecycle.due); orders final for
        `keep_s` are forgotten."""
        now = time.monotonic()
        self._run(self.lc.due(now, after_s))
        self.lc.prune(now, keep_s)

    # ------------------------------------------------------------------ commands
    def _run(self, cmds: list) -> None:
        reports = []
        while cmds:
            more = []
            for c in cmds:
                if isinstance(c, Report):
                    r = c.report
                    if r.exch_ts <= 0:
                        r.exch_ts = time.time_ns()
                    reports.append(r)
                elif isinstance(c, Send):
                    more += self._send(c)
                elif isinstance(c, Query):
                    self._task(self._query(c.key), f"query {c.key}", check=True)
                elif isinstance(c, FetchFills):
                    self._task(self._fills(c.key), f"fills {c.key}", check=True)
            cmds = more
        if reports:
            self.core.report(*reports)

    def _send(self, c: Send) -> list:
        o = self.lc.orders[c.key]
        refused = (
            self.api.admit(o, c.req)
            if self.tg is not None
            else Refusal(
                codes.NOT_READY, "the venue session is not running", codes.REASONS[codes.NOT_READY]
            )
        )
        if refused is not None:
            log.info("order %s: %s refused before sending: %d %s", o.client_id,
                     REQ_NAMES[c.req], refused.code, refused.msg)  # fmt: skip
            return self.lc.send_failed(c.key, c.req, False, refused.msg, time.monotonic(),
                                       refused)  # fmt: skip
        self._task(self._request(o, c.req), f"{REQ_NAMES[c.req]} {c.key}")
        return []

    def _task(self, coro, name: str, check: bool = False) -> None:
        if self.tg is None:
            coro.close()
            return
        t = self.tg.create_task(coro, name=name)
        if check:  # a query or a fill read: reconcile() waits for these
            self._checks.add(t)
            t.add_done_callback(self._checks.discard)

    async def _request(self, o: Order, req: int) -> None:
        try:
            result = await self.api.send(o, req)
        except RequestFailed as e:
            if e.sent:
                log.warning("order %s: %s: %s; outcome unknown, asking the venue", o.client_id,
                            REQ_NAMES[req], e)  # fmt: skip
                self.core.notify(ERR_CONNECTION, 0, f"order request: {e}", o.inst)
            r = Refusal(codes.NOT_SENT, str(e), codes.REASONS[codes.NOT_SENT])
            self._run(self.lc.send_failed(o.key, req, e.sent, str(e), time.monotonic(), r))
            return
        if isinstance(result, Refusal):
            log.info("order %s: %s refused: %d %s", o.client_id, REQ_NAMES[req], result.code,
                     result.msg)  # fmt: skip
        self._run(self.lc.reply(o.key, req, result))

    async def _query(self, key: int) -> None:
        o = self.lc.orders[key]
        try:
            result = await self.api.query(o)
        except (RequestFailed, VenueProtocolError) as e:
            log.error("order %s: the status query failed (%s); asked again later",
                      o.client_id, e)  # fmt: skip
            result = None
        self._run(self.lc.query_result(key, result, time.monotonic()))

    async def _fills(self, key: int) -> None:
        o = self.lc.orders[key]
        try:
            fills = await self.api.fills(o)
        except (RequestFailed, VenueProtocolError) as e:
            log.error("order %s: cannot read its fills (%s)", o.client_id, e)
            fills = None
        else:
            n_new = sum(1 for f in fills if f.trade_id not in o.trade_ids)
            if n_new:
                log.warning("order %s: %d fill(s) missed by the stream recovered from %s",
                            o.client_id, n_new, self.api.fills_source)  # fmt: skip
        self._run(self.lc.fills(key, fills))


class EntryVenue(Venue):
    """The `Venue` members every real venue serves the same way: orders through its
    `OrderEntry` (`self.orders.entry`), the reference price from its instruments' books
    (`self.insts[inst].mid()`) and the account position the venue reports
    (`self.orders.positions`, from its private stream and position queries)."""

    orders: _HasEntry
    insts: list
    NAME = "venue"  # in the log: "the <NAME> adapter failed"

    async def run(self) -> None:
        """The session (`self.rest`, an async context) opened and prepared, then
        `_serve()` until cancelled; an adapter that fails cancels every open order of
        its symbols before the failure ends the connector (leave nothing working)."""
        async with self.rest:
            await self._prepare()
            try:
                await self._serve()
            except asyncio.CancelledError:
                raise  # the connector's own stop: it has cancelled what it had to
            except BaseException:
                if self.cfg.connector.cancel_on_shutdown:
                    log.error("the %s adapter failed; cancelling every open order", self.NAME)
                    await self._cancel_all_open(best_effort=True)
                raise
            finally:
                self._serving = False

    async def _prepare(self) -> None:
        """Before serving: the venue clock measured. (The API key and the account's
        position mode are checked earlier, by the venue's `prepare`, before the connector
        creates shared memory: a refused key or a hedge-mode account never starts it.)"""

    async def _serve(self) -> None:
        raise NotImplementedError

    async def _cancel_all_open(self, best_effort: bool = False) -> None:
        raise NotImplementedError

    def submit(self, order: NewOrder) -> None:
        self.orders.entry.submit(order)

    def cancel(self, key: int, inst: int, leaving: bool = False) -> None:
        self.orders.entry.cancel(key, leaving)

    def modify(self, key: int, inst: int, price_tick: int, qty: float) -> None:
        self.orders.entry.modify(key, price_tick, qty)

    def reference_price(self, inst: int) -> float:
        return self.insts[inst].mid()

    def account_position(self, inst: int) -> float:
        return self.orders.positions.get(inst, 0.0)

    def unsure(self) -> list[int]:
        return self.orders.entry.unsure()


class _HasEntry(Protocol):
    entry: OrderEntry
    positions: dict[int, float]
