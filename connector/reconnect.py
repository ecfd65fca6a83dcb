"""The reconnect rule every venue socket follows: one loop, written once.

The rule::

    attempt:  connect_once(up) opens one connection, awaits up() as soon as it is open,
              serves it until it ends and returns why (a sentence); a failure it expects
              (a refused connection, a handshake error, a request failing ...) is raised
              as one of `errors` and ends the attempt the same way
    up():     on_up() runs first (e.g. reconciliation: the connection is not usable
              before), then the connection counts as up: logged, and the core is told
              (`Core.connection(notice, True, detail)`: bots hear of a restore once)
    loss:     logged, the core is told (`Core.connection(notice, False, why)`: bots hear
              of a loss once, however many attempts fail after it); on_down(why) runs if
              the connection had opened (e.g. reset the books, clear the connected flag)
    backoff:  the next attempt waits the next delay of `delays()` (100 ms doubling to
              30 s); a connection that lived `STABLE_S` or longer starts the delays over
    anything else raised (a bug, a cancellation) propagates: it is not a disconnect

Only `keep_connected` does I/O (through `connect_once`, `sleep` and `clock`, both
injectable); `backoff` is a pure generator.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import NoReturn

from connector.venue import Core

log = logging.getLogger(__name__)

STABLE_S = 30.0  # a connection that lived this long starts the backoff over


def backoff(initial_s: float = 0.1, factor: float = 2.0, cap_s: float = 30.0) -> Iterator[float]:
    """Reconnect delays: initial_s, doubling, capped at cap_s (hftbacktest: 100 ms to 60 s)."""
    d = initial_s
    while True:
        yield d
        d = min(d * factor, cap_s)


Up = Callable[[], Awaitable[None]]


async def keep_connected(
    name: str,
    connect_once: Callable[[Up], Awaitable[str]],
    core: Core,
    *,
    errors: tuple[type[BaseException], ...] = (OSError,),
    on_up: Callable[[], Awaitable[str]] | None = None,
    on_down: Callable[[str], None] | None = None,
    notice: str | None = None,
    delays: Callable[[], Iterator[float]] = backoff,
    stable_s: float = STABLE_S,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> NoReturn:
    """Keeps one connection up until cancelled (the rule in the module docstring).

    Args:
        name: the connection in the log ("public market stream", "WebSocket API").
        connect_once: `async (up) -> why it ended`: one connection, start to end.
        core: told of every loss and every restore.
        errors: what `connect_once` raises for a failed attempt (not a bug).
        on_up: run before the connection counts as up; returns the detail of the
            restore notice ("" for none). Raising one of `errors` fails the attempt.
        on_down: `(why)`, run when a connection that had opened ended.
        notice: the connection as bots are told of it (default: `name`).
        delays, stable_s, sleep, clock: the backoff, injectable for tests.
    """
    notice = notice or name
    waits = delays()
    while True:
        opened: float | None = None

        async def up() -> None:
            nonlocal opened
            if opened is not None:
                raise RuntimeError(f"{name}: up() awaited twice for one connection")
            opened = clock()
            detail = await on_up() if on_up is not None else ""
            log.info("%s connected", name)
            core.connection(notice, True, detail)

        try:
            why = await connect_once(up)
        except errors as e:
            why = f"{type(e).__name__}: {e}"
        log.warning("%s lost (%s); reconnecting", name, why)
        core.connection(notice, False, why)
        if opened is not None:
            if on_down is not None:
                on_down(why)
            if clock() - opened >= stable_s:
                waits = delays()
        await sleep(next(waits))
