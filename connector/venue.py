"""What a venue adapter gives the connector core, and what it gets from it.

A venue (sim, binancefutures, ...) publishes market data through the ShmServer and reports
order changes to the Router as `OrderReport`s; the Router calls `submit`, `cancel` and
`modify` on it. Orders are identified by a connector-wide integer `key`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class OrderReport:
    """One change of one order, as the venue saw it.

    completes: the request kind (hftlive.layout.REQ_*) this report concludes, 0 if none;
        the order's `req` goes back to NONE then, as in the backtester.
    exec_qty / exec_price_tick / maker / fee: this fill, when exec_qty > 0 (fee in quote
        units, negative for a rebate).
    reject_code / reject_msg: the venue's rejection, when the request was refused.
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


class Venue(Protocol):
    async def run(self) -> None:
        """Run until stopped (or, for a replay, until the data ends)."""

    def stop(self) -> None: ...

    def submit(self, key: int, inst: int, side: int, price_tick: int, qty: float,
               tif: int, order_type: int) -> None: ...  # fmt: skip

    def cancel(self, key: int, inst: int) -> None: ...

    def modify(self, key: int, inst: int, price_tick: int, qty: float) -> None: ...

    def reference_price(self, inst: int) -> float:
        """A price for risk checks of orders without one (the mid), NaN if unknown."""

    # Optional: `reports_connected = True` when the venue sets the instruments' `connected`
    # flag itself (after reconciling a session); otherwise the connector sets it at start.
    # Optional: `account_position(inst) -> float`, the account's position as the venue
    # reports it; without it the connector publishes the sum of its bots' fills.
