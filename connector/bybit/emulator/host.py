"""What the REST and trade-WS handlers need from the emulator that serves them.

A protocol, so `rest` and `trade` depend on this shape and not on `server` (which imports
them): the handlers stay free of an import cycle.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from connector.bybit.emulator.faults import Faults
from connector.bybit.emulator.gate import Gate


class Host(Protocol):
    gate: Gate
    faults: Faults
    requests: Counter[str]

    def now_ms(self) -> int: ...

    async def wait_stopping(self) -> None: ...

    def execute_order(self, path: str, p: dict) -> dict: ...

    def stamp_order(self, path: str, transport: str, p: dict, t_recv: int) -> None: ...
