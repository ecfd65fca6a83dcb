"""Trading states (active / reducing / halted), per connector and per bot, kept across
restarts: the connector's side of the kill switch (the tool's side: hftlive.control).

The stricter of the connector's state and the bot's own applies to a bot's requests:

==========  ===================================  =============================================
state       new orders                           modifies              cancels
==========  ===================================  =============================================
active      as the risk limits allow             as the risk limits    yes
reducing    only if it cannot grow the position  only if qty does not  yes
            (opposite side, and with the bot's   grow
            open orders on that side it cannot
            go through zero)
halted      refused (HALTED)                     refused (HALTED)      yes
==========  ===================================  =============================================

States are kept in `<state_dir>/<connector>.trading.json` while any is not active (the
file goes away once everything is active again), so a halted connector that restarts is
still halted until someone resumes it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from connector import codes
from hftlive.constants import TRADING_ACTIVE, TRADING_HALTED, TRADING_NAMES, TRADING_REDUCING

log = logging.getLogger(__name__)


def default_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "hftlive"


class TradingStates:
    """The states of one connector and its bots, and their file."""

    def __init__(self, path: Path | None):
        self.path = path
        self.connector = TRADING_ACTIVE
        self.bots: dict[int, int] = {}
        if path is not None and path.exists():
            try:
                doc = json.loads(path.read_text())
                self.connector = _checked(doc.get("connector", 0))
                self.bots = {int(k): _checked(v) for k, v in doc.get("bots", {}).items()}
            except (OSError, ValueError, TypeError, AttributeError) as e:
                # a state we cannot read must not silently become "active": halt, loudly
                log.error("trading states in %s unreadable (%s): the connector starts HALTED",
                          path, e)  # fmt: skip
                self.connector = TRADING_HALTED
            if self.connector or self.bots:
                log.warning("trading states from %s: connector %s%s", path,
                            TRADING_NAMES[self.connector],
                            "".join(f", bot {b} {TRADING_NAMES[s]}"
                                    for b, s in sorted(self.bots.items())))  # fmt: skip

    def of(self, bot_id: int) -> int:
        """What applies to `bot_id`: the stricter of the connector's and its own."""
        return max(self.connector, self.bots.get(bot_id, TRADING_ACTIVE))

    def set(self, state: int, bot_id: int | None) -> None:
        """Sets the connector's state (bot_id None) or one bot's, and saves them."""
        if bot_id is None:
            self.connector = state
        elif state == TRADING_ACTIVE:
            self.bots.pop(bot_id, None)
        else:
            self.bots[bot_id] = state
        self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            if not self.connector and not self.bots:
                self.path.unlink(missing_ok=True)
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"connector": self.connector,
                                       "bots": {str(k): v for k, v in self.bots.items()}}))  # fmt: skip
            tmp.replace(self.path)  # whole or not at all
        except OSError as e:
            log.error("trading states could not be saved to %s: %s (they hold until this "
                      "connector stops)", self.path, e)  # fmt: skip


def _checked(v) -> int:
    if v not in (TRADING_ACTIVE, TRADING_REDUCING, TRADING_HALTED):
        raise ValueError(f"unknown trading state {v!r}")
    return int(v)


def refusal(state: int, position: float, side: int, qty: float, open_same_side: float,
            modify_grows: bool = False, modify: bool = False) -> tuple[int, str] | None:  # fmt: skip
    """(code, message) if `state` refuses the request, else None.

    Args:
        position: the bot's position on the instrument.
        side: the order's side (BUY 1 / SELL -1); qty: its quantity.
        open_same_side: what the bot's other open orders on that side may still fill.
        modify: the request is a modify; modify_grows: it raises the order's quantity.
    """
    if state == TRADING_HALTED:
        return codes.HALTED, "trading is halted (python -m hftlive resume)"
    if state == TRADING_REDUCING:
        if modify:
            if modify_grows:
                return codes.REDUCE_ONLY, "trading is reducing: a modify may not raise the qty"
            return None
        worst = position + side * (open_same_side + qty)
        if position == 0 or side * position > 0 or worst * position < 0:
            return codes.REDUCE_ONLY, (f"trading is reducing: the order could take the "
                                       f"position from {position:g} to {worst:g}")  # fmt: skip
    return None
