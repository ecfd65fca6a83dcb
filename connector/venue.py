"""The venue contract: what the connector core gives a venue, and what a venue gives it.

A venue is one folder (`connector/<venue>/`) plus one line in `connector/registry.py`.
Everything that passes between the core and a venue is named here; nothing else may be
reached through (no ShmServer, no Router, no `getattr` probing).

Down (the core calls the venue; `Venue`, every member required)::

    run()                      async; serve until cancelled (or, for a replay, until the
                               data ends: then the connector stops)
    stop(unsure)               async; the connector is stopping, after it cancelled what it
                               could. `unsure` lists the keys of orders that may still be
                               working (a request's outcome is unknown): the venue must make
                               sure they end (cancel-all per symbol) and must not disarm a
                               venue-side dead-man's switch while any is unsure
    submit(order)              a new order (`NewOrder`); the outcome comes back as reports
    cancel(key, inst, leaving) cancel an order the core knows. `leaving`: its bot left or
                               the connector stops, so the order must end even if this
                               cancel is refused or its submit is still unanswered: the
                               venue cancels it as soon as it is known to work
    modify(key, inst, px, qty) change price/qty of a working order
    reference_price(inst)      a price for risk checks of orders without one (the mid); NaN
                               if unknown
    account_position(inst)     the account's position on that instrument as the venue sees
                               it (a simulated venue: its own fills)
    unsure()                   keys of orders whose outcome is not known yet
    gauges()                   venue-specific figures for the metrics endpoint, by name
                               (rate-limit usage, ...): {} if none

Up (the venue calls the core; `Core`, the only object a venue receives)::

    publish(inst, events, n)   one atomic batch of hftbacktest events on the market ring
    write_snapshot(inst, book, ts)   the book snapshot a lagging reader resyncs from
    book_reset(inst, why)      the book was cleared (gap, reconnect): bots are told
                               (ERR_BOOK_RESYNC) and the instrument's resync count grows
    report(*reports)           order changes (`OrderReport`), published to their bots as one
                               batch per bot
    notify(kind, code, msg, inst=-1)   an error/notice to every bot (ERR_CONNECTION ...)
    connection(what, up)       a venue connection `what` went down / came back: bots are told
                               once per loss (ERR_CONNECTION 0) and once when it is back
                               (CONNECTION_RESTORED); `connected(up)` is separate
    connected(up)              every instrument's `connected` flag: the venue session is
                               usable (after reconciling, for a real venue)
    bad_message(inst=-1)       a malformed venue message was skipped (counted)
    direct_rings()             optional (None by default): `(table, after)` for a venue's
                               compiled hot path, which may write a batch straight into the
                               market rings of the ring table (`hftlive.ipc.md_publish_at`:
                               the same atomic batch and count as `publish`) and must then
                               call `after(inst, events, n)` when `after` is not None (the
                               feed recorder sees every batch)

A new venue's checklist: a section dataclass for its config (`registry.VenueSpec`), a
`prepare` step if tick/lot sizes come from the venue, a factory `(cfg, core) -> Venue`,
pure protocol modules (parsing, book sync, signing, state mapping: no I/O, no clock), order
entry through `connector.order_entry.OrderEntry` with a `VenueOrderApi` (the lifecycle
rules live in `connector.lifecycle`, not in the venue), market data through
`connector.feed`, reconnects through `connector.reconnect`, every refusal mapped to a
neutral `REJECT_*` reason (hftlive.constants) beside the venue's raw code, and a
wire-faithful emulator the end-to-end tests run against.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(slots=True, frozen=True)
class NewOrder:
    """A new order as the core hands it to a venue (ticks and lots already checked)."""

    key: int  # connector-wide id of the order; every report names it
    inst: int
    side: int  # BUY / SELL
    price_tick: int
    qty: float
    tif: int  # GTC / GTX / FOK / IOC
    order_type: int  # LIMIT / MARKET
    reduce_only: bool = False  # may only reduce the account's position (flatten)


@dataclass(slots=True)
class OrderReport:
    """One change of one order, as the venue saw it.

    completes: the request kind (hftlive.layout.REQ_*) this report concludes, 0 if none;
        the order's `req` goes back to NONE then, as in the backtester.
    exec_qty / exec_price_tick / maker / fee: this fill, when exec_qty > 0 (fee in quote
        units, negative for a rebate). A fill is reported once (the venue deduplicates by
        trade id) and counts even after the order ended.
    reject_code / reject_msg / reason: the refusal of the request that `completes`
        concludes: the raw code (the venue's, or connector.codes) and the neutral
        hftlive.constants.REJECT_* reason.
    client_id / venue_id: the order's ids at the venue, when it has them (for the log:
        one grep follows an order from the bot's request to its last fill).
    """

    key: int
    status: int
    qty: float
    leaves_qty: float
    price_tick: int
    exch_ts: int
    completes: int = 0
    exec_qty: float = 0.0
    exec_price_tick: int = 0
    maker: bool = False
    fee: float = 0.0
    reject_code: int = 0
    reject_msg: str = ""
    reason: int = 0
    client_id: str = ""
    venue_id: str = ""


class Core(abc.ABC):
    """What a venue may call: the whole of the core's surface towards venues."""

    @abc.abstractmethod
    def publish(self, inst: int, events: np.ndarray, n: int) -> None: ...

    @abc.abstractmethod
    def write_snapshot(self, inst: int, book, ts: int) -> None: ...

    @abc.abstractmethod
    def book_reset(self, inst: int, why: str) -> None: ...

    @abc.abstractmethod
    def report(self, *reports: OrderReport) -> None: ...

    @abc.abstractmethod
    def notify(self, kind: int, code: int, msg: str, inst: int = -1) -> None: ...

    @abc.abstractmethod
    def connection(self, what: str, up: bool, detail: str = "") -> None: ...

    @abc.abstractmethod
    def connected(self, up: bool) -> None: ...

    @abc.abstractmethod
    def bad_message(self, inst: int = -1) -> None: ...

    def direct_rings(self) -> tuple[np.ndarray, Callable | None] | None:
        return None

    def lockstep(self):
        """The replay clock shared with the bots (connector.lockstep.Lockstep), made on
        first call: only a venue that replays in its own time (the sim's `clock =
        "replay"`) asks for it, before the connector runs."""
        raise NotImplementedError


class Venue(abc.ABC):
    """What the core calls on a venue. Every member is required."""

    @abc.abstractmethod
    async def run(self) -> None: ...

    @abc.abstractmethod
    async def stop(self, unsure: list[int]) -> None: ...

    @abc.abstractmethod
    def submit(self, order: NewOrder) -> None: ...

    @abc.abstractmethod
    def cancel(self, key: int, inst: int, leaving: bool = False) -> None: ...

    @abc.abstractmethod
    def modify(self, key: int, inst: int, price_tick: int, qty: float) -> None: ...

    @abc.abstractmethod
    def reference_price(self, inst: int) -> float: ...

    @abc.abstractmethod
    def account_position(self, inst: int) -> float: ...

    @abc.abstractmethod
    def unsure(self) -> list[int]: ...

    @abc.abstractmethod
    def gauges(self) -> dict[str, float]: ...
