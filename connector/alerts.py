"""Alert rules: conditions the connector watches, fired once and resolved once.

    [[alerts]]
    rule = "connection_lost"   # see RULES
    threshold = 30.0           # its unit depends on the rule
    command = ""               # run with the alert as JSON on stdin (sh -c)
    webhook = ""               # POST the alert as JSON to this URL
    set_trading = ""           # "", "reducing" or "halted": the connector's trading state
                               # while it fires (resume by hand: python -m hftlive resume)
    min_interval_s = 60.0      # one firing per rule and subject this often at most

Rules (`threshold` in brackets; the subject the alert is about):

    connection_lost   an instrument's venue session down for longer than [s]   (symbol)
    feed_stale        no market event on an instrument for longer than [s]     (symbol)
    position          a bot's position beyond [fraction] of max_position       (bot, symbol)
    drawdown          a bot's equity below its run's peak by more than [quote] (bot, symbol)
    rejections        more than [n] refused or rejected orders in a minute     (bot)
    bot_died          a bot's process died while registered [unused]           (bot)

Each (rule, subject) is a small state machine: ok -> firing (logged as event
`alert_fired`, actions run) -> ok (logged as `alert_resolved`, actions run with
`"state": "resolved"`). A condition that holds stays one firing (deduplicated); one that
flaps fires again only after `min_interval_s` (the firings in between are counted and
reported with the next one). `bot_died` resolves when a bot with that id registers again.

Actions never block the connector: commands and webhooks run as tasks with a 10 s limit,
their failures logged (`alert_action_failed`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from dataclasses import dataclass

import aiohttp

from connector.config import AlertRule
from hftlive.constants import TRADING_HALTED, TRADING_NAMES, TRADING_REDUCING

log = logging.getLogger(__name__)

ACTION_TIMEOUT_S = 10.0


@dataclass
class _State:
    firing: bool = False
    last_fired: float = -math.inf
    suppressed: int = 0  # firings held back by min_interval_s
    held: bool = False  # the condition holds and its firing is being held back


class Alerts:
    """Evaluates every rule twice a second (`tick`), from the connector's state."""

    def __init__(self, name: str, rules: tuple[AlertRule, ...], shm, router, venue, instruments,
                 max_position: float):  # fmt: skip
        self.name = name
        self.rules = rules
        self.shm = shm
        self.router = router
        self.venue = venue
        self.symbols = [i.symbol for i in instruments]
        self.max_pos = [i.max_position or max_position for i in instruments]
        self.states: dict[tuple[int, tuple], _State] = {}
        self.tasks: set[asyncio.Task] = set()
        self._down_since: dict[int, float] = {}
        self._last_events: list[int] = []
        self._last_event_at: list[float] = []
        self._peak: dict[tuple[int, int], float] = {}
        self._rejects: dict[int, deque] = {}
        self._reject_seen: dict[int, int] = {}
        self.died: dict[int, int] = {}  # bot id -> pid, set by the router; cleared on return

    # ------------------------------------------------------------------ conditions
    def _conditions(self, r: AlertRule, now: float):
        """(subject, holds, detail) of one rule, for every subject it covers."""
        if r.rule in ("connection_lost", "feed_stale"):
            for i, sym in enumerate(self.symbols):
                if r.rule == "connection_lost":
                    up = bool(self.shm.ctl.instruments[i]["connected"])
                    t0 = self._down_since.get(i) if not up else None
                    age = now - t0 if t0 is not None else 0.0
                    yield (sym,), age > r.threshold, {"down_s": round(age, 3)}
                else:
                    age = now - self._last_event_at[i]
                    yield (sym,), age > r.threshold, {"silent_s": round(age, 3)}
        elif r.rule in ("position", "drawdown"):
            for (bot, inst), st in list(self.router.states.items()):
                s = st[0]
                key = (bot, self.symbols[inst])
                if r.rule == "position":
                    cap = self.max_pos[inst]
                    pos = float(s["position"])
                    yield key, cap > 0 and abs(pos) > r.threshold * cap, {
                        "position": pos, "max_position": cap}  # fmt: skip
                else:
                    mid = self.venue.reference_price(inst)
                    if not math.isfinite(mid):
                        continue
                    eq = float(s["balance"]) + float(s["position"]) * mid - float(s["fee"])
                    peak = self._peak[(bot, inst)] = max(self._peak.get((bot, inst), eq), eq)
                    yield key, peak - eq > r.threshold, {"equity": eq, "peak": peak}
        elif r.rule == "rejections":
            for bot, q in self._rejects.items():
                while q and q[0] < now - 60.0:
                    q.popleft()
                yield (bot,), len(q) > r.threshold, {"per_minute": len(q)}
        elif r.rule == "bot_died":
            firing = {k[1][0] for k, st in self.states.items() if k[0] == id(r) and st.firing}
            for bot in set(self.died) | firing:
                yield (bot,), bot in self.died, {"pid": self.died.get(bot)}

    def _observe(self, now: float) -> None:
        """What conditions need over time: down since, last market event, rejections."""
        ins = self.shm.ctl.instruments
        events = self.shm.events_published()
        if not self._last_events:
            self._last_events = list(events)
            self._last_event_at = [now] * len(events)
        for i in range(len(self.symbols)):
            if bool(ins[i]["connected"]):
                self._down_since.pop(i, None)
            else:
                self._down_since.setdefault(i, now)
            if events[i] != self._last_events[i]:
                self._last_events[i] = events[i]
                self._last_event_at[i] = now
        per_bot: dict[int, int] = {}
        for (bot, _inst, event, _reason), n in self.router.order_counts.items():
            if event in ("refused", "rejected"):
                per_bot[bot] = per_bot.get(bot, 0) + n
        for bot, n in per_bot.items():
            new = n - self._reject_seen.get(bot, 0)
            self._reject_seen[bot] = n
            if new > 0:
                self._rejects.setdefault(bot, deque()).extend([now] * new)

    # ------------------------------------------------------------------ the machine
    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._observe(now)
        for r in self.rules:
            for subject, holds, detail in list(self._conditions(r, now)):
                k = (id(r), subject)
                st = self.states.setdefault(k, _State())
                if holds and not st.firing:
                    if now - st.last_fired < r.min_interval_s:  # flapping: hold it back
                        if not st.held:
                            st.held = True
                            st.suppressed += 1
                        continue
                    st.firing, st.last_fired, st.held = True, now, False
                    self._emit(r, subject, "firing", detail, st.suppressed - (st.suppressed > 0))
                    st.suppressed = 0
                elif not holds:
                    st.held = False
                    if st.firing:
                        st.firing = False
                        self._emit(r, subject, "resolved", detail, 0)

    def _emit(self, r: AlertRule, subject: tuple, state: str, detail: dict, suppressed: int):
        names = {"connection_lost": ("symbol",), "feed_stale": ("symbol",),
                 "position": ("bot", "symbol"), "drawdown": ("bot", "symbol"),
                 "rejections": ("bot",), "bot_died": ("bot",)}[r.rule]  # fmt: skip
        alert = {"connector": self.name, "rule": r.rule, "state": state,
                 "threshold": r.threshold, **dict(zip(names, subject)), **detail,
                 "time": time.time()}  # fmt: skip
        if suppressed:
            alert["suppressed"] = suppressed
        event = "alert_fired" if state == "firing" else "alert_resolved"
        (log.warning if state == "firing" else log.info)(
            "%s: %s %s %s", event, r.rule, " ".join(f"{k}={alert[k]}" for k in names),
            json.dumps(detail), extra={"event": event, "alert": alert})  # fmt: skip
        if state == "firing" and r.set_trading:
            want = TRADING_HALTED if r.set_trading == "halted" else TRADING_REDUCING
            if self.router.trading.connector < want:
                self.router.set_trading(want, None, why=f"alert {r.rule}")
                alert["trading_state"] = TRADING_NAMES[want]
        if r.command:
            self._task(self._run_command(r.command, alert))
        if r.webhook:
            self._task(self._post(r.webhook, alert))

    async def drain(self, timeout_s: float = 2.0) -> None:
        """On shutdown: the actions still running get `timeout_s`, then are cancelled."""
        if self.tasks:
            _, late = await asyncio.wait(set(self.tasks), timeout=timeout_s)
            for t in late:
                t.cancel()

    def _task(self, coro) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    async def _run_command(self, cmd: str, alert: dict) -> None:
        try:
            p = await asyncio.create_subprocess_shell(
                cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE)  # fmt: skip
            async with asyncio.timeout(ACTION_TIMEOUT_S):
                _, err = await p.communicate(json.dumps(alert).encode())
            if p.returncode:
                raise RuntimeError(f"exit {p.returncode}: {err.decode(errors='replace')[:200]}")
        except Exception as e:  # an action that fails is reported, never fatal
            log.error("alert_action_failed: command for %s: %s", alert["rule"], e,
                      extra={"event": "alert_action_failed"})  # fmt: skip

    async def _post(self, url: str, alert: dict) -> None:
        try:
            timeout = aiohttp.ClientTimeout(total=ACTION_TIMEOUT_S)
            async with aiohttp.ClientSession(timeout=timeout) as s:
                async with s.post(url, json=alert) as resp:
                    if resp.status >= 300:
                        raise RuntimeError(f"HTTP {resp.status}")
        except Exception as e:
            log.error("alert_action_failed: webhook for %s: %s", alert["rule"], e,
                      extra={"event": "alert_action_failed"})  # fmt: skip
