"""`python -m hftlive status`: every connector on this machine and its bots, read-only.

    python -m hftlive status [CONNECTOR ...] [--json] [--watch S] [--check] [--stale-s S]

Everything comes from the shared memory the connectors and bots already write (their
control and view segments under /dev/shm), attached read-only: nothing here talks to a
process, so a status never disturbs a run, and it works for any user who may read the
segments.

`--check` is a health check for cron, systemd or a Kubernetes probe: one line with the
reason, and the exit code

    0  healthy    every connector runs with a fresh heartbeat, every instrument's venue
                  session is up, every bot alive and calling elapse/wait
    1  degraded   a venue session is down (reconnecting, reconciling), a bot is dead or
                  stalled, trading is halted or reducing (connector or bot)
    2  down       no connector, or a connector is dead, stopping, or its heartbeat stale

A bot's heartbeat is written by its own `elapse`/`wait_*` calls (every 100 ms of them): a
strategy stuck in its own code for longer than `--stale-s` shows as stalled.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

from hftlive.constants import TRADING_NAMES
from hftlive.layout import (
    CONN_RUNNING,
    CONN_STARTING,
    CONN_STOPPED,
    CONN_STOPPING,
    L_HAS_ORDER,
    L_ORDER_REQ,
    L_ORDER_RESP,
)
from hftlive.monitor import BotView, ConnectorView
from hftlive.shm import list_segments, pid_alive

STATES = {CONN_STARTING: "starting", CONN_RUNNING: "running", CONN_STOPPING: "stopping",
          CONN_STOPPED: "stopped"}  # fmt: skip
HEALTHY, DEGRADED, DOWN = 0, 1, 2
STALE_S = 5.0  # a heartbeat older than this is stale (connectors beat every 100 ms)


def connectors() -> list[str]:
    """The names of the connectors whose control segment exists on this machine."""
    return [s[len("hftlive.") : -len(".ctl")] for s in list_segments("hftlive.")
            if s.endswith(".ctl")]  # fmt: skip


def _age_s(ns: int, now_ns: int) -> float | None:
    return None if ns <= 0 else max(0.0, (now_ns - ns) / 1e9)


def _trading(state: int) -> str:
    return TRADING_NAMES[state] if 0 <= state < len(TRADING_NAMES) else f"unknown ({state})"


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def bot_status(connector: str, bot_id: int, pid: int, now_ns: int) -> dict:
    """One bot: its process, heartbeat, and per asset what its strategy sees."""
    out: dict = {"bot_id": bot_id, "pid": pid, "alive": pid_alive(pid)}
    try:
        v = BotView(connector, bot_id)
    except Exception as e:  # no view (yet): the bot is still being built, or gone
        out.update(heartbeat_age_s=None, assets=[], note=f"no view: {e}")
        return out
    try:
        out["heartbeat_age_s"] = _age_s(int(v.header[0]["heartbeat_ns"]), now_ns)
        assets = []
        for a in range(v.n_assets):
            s = v.status(a)
            lat = v.v["latency"][a]
            order_ns = int(lat[L_ORDER_RESP] - lat[L_ORDER_REQ]) if lat[L_HAS_ORDER] else None
            assets.append({
                "mid": _finite(s.mid), "position": s.position, "open_orders": s.open_orders,
                "fills": s.num_trades, "volume": s.trading_volume, "fee": s.fee,
                "pnl": _finite(s.equity), "feed_latency_ms": s.feed_latency_ns / 1e6,
                "order_latency_ms": None if order_ns is None else order_ns / 1e6,
            })  # fmt: skip
        out["assets"] = assets
    finally:
        v.close()
    return out


def connector_status(name: str, now_ns: int | None = None) -> dict:
    """One connector: state, heartbeat, instruments and bots (a dict for JSON)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    v = ConnectorView(name)
    try:
        h = v.ctl.header[0]
        pid = int(h["pid"])
        doc = {
            "connector": name,
            "venue": bytes(h["venue"]).rstrip(b"\0").decode(errors="replace"),
            "pid": pid,
            "alive": pid_alive(pid),
            "state": STATES.get(int(h["state"]), f"unknown ({int(h['state'])})"),
            "heartbeat_age_s": _age_s(int(h["heartbeat_ns"]), now_ns),
            "trading_state": _trading(int(h["trading_state"])),
            "instruments": v.instruments(),
        }
        slots = v.bots()
        for b in slots:
            b["trading_state"] = _trading(int(v.ctl.slots[b["slot"]]["trading_state"]))
    finally:
        v.close()
    doc["bots"] = [{**bot_status(name, b["bot_id"], b["pid"], now_ns),
                    "trading_state": b["trading_state"]} for b in slots]  # fmt: skip
    # each instrument's mid and latest market event as a bot of it sees them
    for i, inst in enumerate(doc["instruments"]):
        inst["mid"] = None
        for b in doc["bots"]:
            if i < len(b["assets"]) and b["assets"][i]["mid"] is not None:
                inst["mid"] = b["assets"][i]["mid"]
                break
    return doc


def health(docs: list[dict], stale_s: float = STALE_S) -> tuple[int, str]:
    """(HEALTHY / DEGRADED / DOWN, the reason in one line) of connectors' status docs."""
    if not docs:
        return DOWN, "no connector runs on this machine"
    down, degraded = [], []
    for d in docs:
        n = d["connector"]
        age = d["heartbeat_age_s"]
        if d["state"].startswith("unreachable"):
            down.append(f"{n}: {d['state']}")
        elif not d["alive"]:
            down.append(f"{n}: connector process {d['pid']} is dead")
        elif d["state"] != "running":
            down.append(f"{n}: connector is {d['state']}")
        elif age is None or age > stale_s:
            down.append(f"{n}: connector heartbeat {'never' if age is None else f'{age:.0f} s old'}")
        if d.get("trading_state", "active") != "active":
            degraded.append(f"{n}: trading is {d['trading_state']}")
        for i in d["instruments"]:
            if not i["connected"]:
                degraded.append(f"{n}/{i['symbol']}: venue connection down")
        for b in d["bots"]:
            bid = b["bot_id"]
            if b.get("trading_state", "active") != "active":
                degraded.append(f"{n}: bot {bid} trading is {b['trading_state']}")
            if not b["alive"]:
                degraded.append(f"{n}: bot {bid} (pid {b['pid']}) is dead")
            elif b["heartbeat_age_s"] is not None and b["heartbeat_age_s"] > stale_s:
                degraded.append(f"{n}: bot {bid} has not called elapse/wait for "
                                f"{b['heartbeat_age_s']:.0f} s")  # fmt: skip
    if down:
        return DOWN, "; ".join(down + degraded)
    if degraded:
        return DEGRADED, "; ".join(degraded)
    n_bots = sum(len(d["bots"]) for d in docs)
    return HEALTHY, f"{len(docs)} connector(s), {n_bots} bot(s): all healthy"


def _fmt(x, spec: str, none: str = "-") -> str:
    return none if x is None else format(x, spec)


def table(docs: list[dict]) -> str:
    """The readable form: a block per connector."""
    lines = []
    for d in docs:
        lines.append(f"connector {d['connector']}  venue {d['venue'] or '?'}  {d['state']}  "
                     f"trading {d.get('trading_state', '?')}  "
                     f"pid {d['pid']}{'' if d['alive'] else ' (dead)'}  heartbeat "
                     f"{_fmt(d['heartbeat_age_s'], '.1f')} s")  # fmt: skip
        lines.append(f"  {'symbol':<14}{'mid':>14}{'connected':>11}{'events':>12}"
                     f"{'resyncs':>9}{'bad msgs':>10}{'acct pos':>12}")  # fmt: skip
        for i in d["instruments"]:
            lines.append(f"  {i['symbol']:<14}{_fmt(i['mid'], '.6g'):>14}"
                         f"{'yes' if i['connected'] else 'NO':>11}{i['events']:>12}"
                         f"{i['resyncs']:>9}{i['bad_messages']:>10}"
                         f"{i['account_position']:>12.6g}")  # fmt: skip
        if not d["bots"]:
            lines.append("  no bot")
        for b in d["bots"]:
            alive = "alive" if b["alive"] else "DEAD"
            lines.append(f"  bot {b['bot_id']}  pid {b['pid']} {alive}  trading "
                         f"{b.get('trading_state', '?')}  heartbeat "
                         f"{_fmt(b['heartbeat_age_s'], '.1f')} s")  # fmt: skip
            for k, a in enumerate(b["assets"]):
                sym = d["instruments"][k]["symbol"] if k < len(d["instruments"]) else k
                lines.append(f"    {sym:<12} pos {a['position']:+.6g}  open {a['open_orders']}  "
                             f"fills {a['fills']}  PnL {_fmt(a['pnl'], '+.4f')}  feed "
                             f"{a['feed_latency_ms']:.2f} ms  order "
                             f"{_fmt(a['order_latency_ms'], '.2f')} ms")  # fmt: skip
    return "\n".join(lines) if lines else "no connector runs on this machine"


def gather(names: list[str] | None = None) -> list[dict]:
    """Status docs of the named connectors (all on this machine if None); a connector that
    vanished meanwhile is left out, one that is named and missing is reported dead."""
    out = []
    for n in names if names else connectors():
        try:
            out.append(connector_status(n))
        except Exception as e:
            if names:
                out.append({"connector": n, "venue": "", "pid": 0, "alive": False,
                            "state": f"unreachable ({e})", "heartbeat_age_s": None,
                            "instruments": [], "bots": []})  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hftlive status", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("connector", nargs="*", help="connector names (default: every one)")
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.add_argument("--watch", type=float, metavar="S", default=0.0,
                   help="refresh every S seconds until Ctrl-C")  # fmt: skip
    p.add_argument("--check", action="store_true",
                   help="health check: exit 0 healthy, 1 degraded, 2 down; the reason on stdout")  # fmt: skip
    p.add_argument("--stale-s", type=float, default=STALE_S,
                   help="a heartbeat older than this is stale (default %(default)s)")  # fmt: skip
    args = p.parse_args(argv)
    while True:
        docs = gather(args.connector)
        code, why = health(docs, args.stale_s)
        if args.json:
            out = json.dumps({"health": code, "reason": why, "connectors": docs}, indent=1,
                             default=lambda o: o.item() if isinstance(o, np.generic) else str(o))  # fmt: skip
        elif args.check:
            out = ("healthy", "degraded", "down")[code] + ": " + why
        else:
            out = table(docs) + "\n" + ("healthy", "degraded", "down")[code] + ": " + why
        if not args.watch:
            print(out)
            return code if args.check else 0
        sys.stdout.write("\x1b[H\x1b[2J" + out + "\n")  # in place, as `watch` does
        sys.stdout.flush()
        try:
            time.sleep(args.watch)
        except KeyboardInterrupt:
            return 0
