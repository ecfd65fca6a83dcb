"""Order path latency on a real venue's adapter, REST vs its WebSocket order entry, on loopback.

Per venue (`--venue binancefutures`: Binance's WS-API; `--venue bybit`: Bybit's trade
WebSocket) and per mode (`order_entry = "rest"` / `"ws"` in the venue's section): a fresh
emulator (`--bench orders`, synthetic market, paused once the bot's book is synced, so the
book is quiet), a real `python -m connector --connector <venue>`, and a LiveBot in this
process that runs, from @njit code, N round trips of

    t_submit = wall clock; submit_buy_order(GTX LIMIT, 3% below the bid, wait=False)
    wait_order_response until the order is NEW;          t_new = wall clock
    t_cancel = wall clock; cancel(wait=False)
    wait_order_response until it is CANCELED;            t_canceled = wall clock

The emulator stamps each order request when its handler receives it, and when its answer
is handed over. Binance (connector/binancefutures/emulator/blast.py, GET
/_emulator/bench/orders): the reply and the user-stream event it caused, each as it starts
to be written to its socket; the "ack" is the first of the two (the connector takes NEW
from whichever it reads first). Stamps are taken before the write: on 2 cores the
connector, woken by the reply, often preempts the emulator right after it, and a stamp
taken then is late by up to ~0.7 ms. aiohttp's writing of a REST reply (~40 us) thus
counts in "ack -> bot sees NEW". Bybit (Emulator.stamp_order): the ack is the reply handed
over (REST: returned to aiohttp; trade WS: queued for the socket's writer), the private
pushes it caused queued just before it. Every stamp is CLOCK_REALTIME on the same
machine, so:

  submit -> receipt      bot submit -> the emulator's handler has the request
                         (bot -> shm ring -> connector -> HTTP/WS -> emulator)
  receipt -> ack         the emulator's own work (checks, matching, JSON)
  ack -> bot sees NEW    ack write -> connector reads and maps it -> response ring ->
                         the bot's wait returns with the order NEW
  round trip             bot submit -> bot sees NEW (the sum of the three)
  cancel round trip      bot cancel -> bot sees CANCELED

The i-th new order the emulator stamped is the bot's i-th submit (one order in flight at a
time). The bot waits with WAIT_YIELD by default (--policy): on 2 cores a WAIT_SPIN bot
takes a core from the connector and the emulator (milliseconds in the p90/p99), and
WAIT_SLEEP (the LiveBot default) adds an idle core's wake-up to every leg.

    python -m bench.bf_order_path [--n 200] [--policy yield|spin|sleep] [--modes rest,ws]
    python -m bench.bybit_order_path [...]       (the same, on Bybit)

A mode the connector's config loader refuses is reported as "not available: <the error>",
not as a failure.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numba as nb
import numpy as np

from bench._common import figure, machine_note, percentiles, table, write_figures
from bench._venues import BfConnector, BybitConnector, Emulator, wait_for
from connector.errors import ConfigError
from hftlive.constants import CANCELED, END_OF_DATA, EXPIRED, FILLED, GTX, LIMIT, NEW

WARMUP = 20
TIMEOUT_NS = 5_000_000_000
TIMED_OUT = 999  # a round trip's code: no NEW/CANCELED within TIMEOUT_NS
BELOW = 0.97  # GTX buys 3% below the bid rest; Binance's PERCENT_PRICE allows down to 5% below
LEGS = ("submit -> receipt", "receipt -> ack", "ack -> bot sees NEW", "round trip",
        "cancel round trip")  # fmt: skip


@dataclass(frozen=True)
class Venue:
    """What differs between the venues: the emulator, the connector, the instrument, and
    how the emulator's stamps read."""

    prefix: str  # of the figure names
    emulator_module: str
    connector: type
    symbol: str
    tick: float
    lot: float
    qty: float  # above the venue's minimum notional at the synthetic price
    place: str  # the stamp kind of a new order
    ack: Callable[[list], int]  # a new order's stamp -> its ack time
    # the private event written before the reply; None: the stamps do not say (Bybit's
    # emulator queues the order push before the reply, always)
    event_first: Callable[[list], bool] | None
    max_n: int  # round trips the venue's order rate limit allows in one run
    gap_ms: int  # submit to submit, at least: under the venue's new-order rate limit


VENUES = {
    # ~50 USDT at the synthetic 2500: above the 20 USDT minimum notional
    "binancefutures": Venue("bf", "connector.binancefutures.emulator", BfConnector, "ethusdt",
                            0.01, 0.001, 0.02, "place",
                            lambda s: min(s[4], s[6]) if s[6] else s[4],
                            lambda s: 0 < s[6] < s[4],
                            # 300 new orders per 10 s: one run stays below, unpaced
                            260, 0),  # fmt: skip
    # ~6 USDT at the synthetic 100k: above the 5 USDT minimum order value
    "bybit": Venue("bybit", "connector.bybit.emulator", BybitConnector, "BTCUSDT", 0.1, 0.001,
                   0.002, "create", lambda s: s[4], None,
                   # order/create: 10 a second per UID (the emulator as Bybit, §2.6); the
                   # connector keeps one in reserve, so 8 a second
                   1000, 125),  # fmt: skip
}


class NotAvailable(Exception):
    """The connector refuses this order entry mode (its config loader says why)."""


# ------------------------------------------------------------------ the bot (njit)
@nb.njit
def _wait_status(hbt, oid, want, timeout_ns):
    """Waits until order `oid` is `want` or final; returns its status, TIMED_OUT, or
    -rc when the wait itself ended (rc: END_OF_DATA, CONNECTOR_LOST, ...)."""
    deadline = hbt.current_timestamp + timeout_ns
    while True:
        rc = hbt.wait_order_response(0, oid, timeout_ns)
        if rc != 0:
            return -rc
        o = hbt.orders(0).get(oid)
        if o is not None:
            s = o.status
            if s == want or s == EXPIRED or s == FILLED or s == CANCELED:
                return s
        if hbt.current_timestamp > deadline:
            return TIMED_OUT


@nb.njit
def _fail_code(s):
    """A wait's outcome that is not the status wanted, as `_round_trips` reports it."""
    return -s if s < 0 else (s if s == TIMED_OUT else 1000 + s)


@nb.njit
def _round_trips(hbt, first_id, px, qty, out, timeout_ns, gap_ns):
    """out[i] = (submit, NEW seen, cancel, CANCELED seen) in wall ns.

    Returns (round trips done, 0), or (i, code) where round trip i failed: a return code
    of submit/cancel/wait (END_OF_DATA, ...), TIMED_OUT, or 1000 + the order's status."""
    for i in range(out.shape[0]):
        oid = first_id + i
        t0 = hbt.current_timestamp
        rc = hbt.submit_buy_order(0, oid, px, qty, GTX, LIMIT, False)
        if rc != 0:
            return i, rc
        s = _wait_status(hbt, oid, NEW, timeout_ns)
        t1 = hbt.current_timestamp
        if s != NEW:
            return i, _fail_code(s)
        t2 = hbt.current_timestamp
        rc = hbt.cancel(0, oid, False)
        if rc != 0:
            return i, rc
        s = _wait_status(hbt, oid, CANCELED, timeout_ns)
        t3 = hbt.current_timestamp
        if s != CANCELED:
            return i, _fail_code(s)
        out[i, 0] = t0
        out[i, 1] = t1
        out[i, 2] = t2
        out[i, 3] = t3
        hbt.clear_inactive_orders(0)
        rest = t0 + gap_ns - hbt.current_timestamp  # pacing, between round trips
        if rest > 0:
            rc = hbt.elapse(rest)
            if rc != 0:
                return i + 1, rc
    return out.shape[0], 0


def _bot(venue: Venue, name: str, policy: int):
    from hftlive import Instrument, LiveBot

    b = LiveBot.builder().register(Instrument(name, venue.symbol, venue.tick, venue.lot))
    return b.wait_policy(policy).connect_timeout(15.0).build()


def _check_end(rc: int) -> None:
    """END_OF_DATA: the bot took a Ctrl-C/SIGTERM (its own handler): stop the whole run."""
    if rc == END_OF_DATA:
        raise KeyboardInterrupt("stopped by a signal")


def _synced(hbt) -> bool:
    d = hbt.depth(0)
    return bool(np.isfinite(d.best_bid) and np.isfinite(d.best_ask) and d.best_bid < d.best_ask)


# ------------------------------------------------------------------ one mode
def run_mode(venue: Venue, mode: str, n: int, policy: int) -> dict:
    """Round trips through a fresh emulator and connector; the legs in ns."""
    emu = Emulator("orders", module=venue.emulator_module, symbols=venue.symbol).start()
    conn = venue.connector(f"{venue.prefix}o{os.getpid()}{mode}", emu.urls, order_entry=mode)
    hbt = None
    try:
        try:
            conn.check_config()
        except ConfigError as e:
            raise NotAvailable(str(e).replace(str(conn.cfg), "<config>")) from None
        conn.start()
        hbt = _bot(venue, conn.name, policy)
        deadline = time.monotonic() + 20
        while not _synced(hbt):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bot's book did not sync:\n{conn.text()[-3000:]}")
            _check_end(hbt.elapse(20_000_000))
        emu.control("/_emulator/faults", {"pause_market": True})
        hbt.elapse(300_000_000)  # what was in flight arrives; then the book is quiet
        bid = hbt.depth(0).best_bid
        px = round(round(bid * BELOW / venue.tick) * venue.tick, 8)
        qty = venue.qty
        gap = venue.gap_ms * 1_000_000
        _round_trips(hbt, 1, px, qty, np.zeros((0, 4), np.int64), TIMEOUT_NS, gap)  # compile
        warm = np.zeros((WARMUP, 4), np.int64)
        done, code = _round_trips(hbt, 1, px, qty, warm, TIMEOUT_NS, gap)
        _check_end(code)
        if code:
            raise RuntimeError(f"warm-up round trip {done} failed with {code}:\n"
                               f"{conn.text()[-3000:]}")  # fmt: skip
        n0 = emu.control("/_emulator/bench/orders")["n"]
        out = np.zeros((n, 4), np.int64)
        done, code = _round_trips(hbt, 1 + WARMUP, px, qty, out, TIMEOUT_NS, gap)
        _check_end(code)
        if code:
            raise RuntimeError(f"round trip {done} failed with {code}:\n{conn.text()[-3000:]}")
        stamps = wait_for(lambda: _stamps(venue, emu, n0, n), 5, "the emulator's stamps")
    finally:
        if hbt is not None:
            hbt.close()
        conn.stop()
        emu.stop()
    place, cancel = stamps
    recv = np.array([s[3] for s in place])
    ack = np.array([venue.ack(s) for s in place])
    event_first = None if venue.event_first is None else sum(venue.event_first(s) for s in place)
    legs = {
        "submit -> receipt": recv - out[:, 0],
        "receipt -> ack": ack - recv,
        "ack -> bot sees NEW": out[:, 1] - ack,
        "round trip": out[:, 1] - out[:, 0],
        "cancel round trip": out[:, 3] - out[:, 2],
    }
    via = {k: sorted({s[1] for s in v}) for k, v in (("place", place), ("cancel", cancel))}
    stats = {}
    for k, v in legs.items():
        stats[k] = percentiles(v)
        stats[k]["min"] = float(v.min())
    return {"legs": stats, "via": via, "px": px, "event_first": event_first}


def _stamps(venue: Venue, emu: Emulator, n0: int, n: int):
    orders = emu.control(f"/_emulator/bench/orders?since={n0}")["orders"]
    place = [s for s in orders if s[0] == venue.place]
    cancel = [s for s in orders if s[0] == "cancel"]
    if len(place) < n or len(cancel) < n or any(s[4] == 0 for s in place):
        return None
    if len(place) > n:
        raise RuntimeError(f"the emulator saw {len(place)} new orders for {n} submits")
    return place, cancel


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None, venue_name: str = "binancefutures") -> int:
    from hftlive import WAIT_SLEEP, WAIT_SPIN, WAIT_YIELD

    venue = VENUES[venue_name]
    policies = {"spin": WAIT_SPIN, "yield": WAIT_YIELD, "sleep": WAIT_SLEEP}
    p = argparse.ArgumentParser(prog=f"python -m bench.{venue.prefix}_order_path",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    default_n = 200 if venue.gap_ms == 0 else 80  # each mode in well under a minute
    p.add_argument("--n", type=int, default=default_n,
                   help=f"round trips per mode (<= {venue.max_n - WARMUP})")  # fmt: skip
    p.add_argument("--policy", choices=sorted(policies), default="yield", help="bot wait policy")
    p.add_argument("--modes", default="rest,ws", help="comma-separated: rest, ws")
    args = p.parse_args(argv)
    if not 1 <= args.n <= venue.max_n - WARMUP:
        p.error(f"--n must be in 1..{venue.max_n - WARMUP} (the venue's order rate limit)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-ups
    t_start = time.monotonic()
    paced = f", one every {venue.gap_ms} ms (rate limit)" if venue.gap_ms else ""
    print(f"bench.{venue.prefix}_order_path: {args.n} GTX submit/cancel round trips per mode "
          f"after {WARMUP} warm-up{paced}, bot {args.policy.upper()}, loopback emulator")  # fmt: skip
    print(machine_note())
    results: dict[str, dict] = {}
    notes: list[str] = []
    failed = False
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        try:
            results[mode] = run_mode(venue, mode, args.n, policies[args.policy])
        except NotAvailable as e:
            notes.append(f"{mode}: not available: {e}")
        except Exception as e:  # report, and go on with the other mode
            notes.append(f"{mode}: FAILED: {type(e).__name__}: {e}")
            failed = True
    rows = []
    for mode, r in results.items():
        for leg in LEGS:
            d = r["legs"][leg]
            rows.append([f"{mode}: {leg}", d["n"], d["min"] / 1e3, d["median"] / 1e3,
                         d["p90"] / 1e3, d["p99"] / 1e3, d["max"] / 1e3])  # fmt: skip
    if rows:
        print(table(["mode: leg", "n", "min us", "median us", "p90 us", "p99 us", "max us"],
                    rows))  # fmt: skip
    for mode, r in results.items():
        ef = r["event_first"]
        first = ("" if ef is None else
                 f"; the private NEW was out before the reply {ef} of {args.n} times")  # fmt: skip
        print(f"{mode}: new orders via {'/'.join(r['via']['place'])}, cancels via "
              f"{'/'.join(r['via']['cancel'])}; buy {venue.qty} @ {r['px']}{first}")  # fmt: skip
    for note in notes:
        print(note)
    if "rest" in results and "ws" in results:
        ratios = []
        for leg in LEGS:
            a, b = results["ws"]["legs"][leg], results["rest"]["legs"][leg]
            ratios.append([leg, a["median"] / b["median"], a["p99"] / b["p99"]])
        print(table(["WS / REST", "median", "p99"], ratios))
    figs = {}
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        r = results.get(mode)
        for stat in ("median", "p99"):
            name = f"{venue.prefix}_order_path_{mode}_{stat}_us"
            if r is None:
                why = next((x for x in notes if x.startswith(f"{mode}:")), "not run")
                figs[name] = figure(None, "us", None, 0, why)
                continue
            d = r["legs"]["round trip"]
            other = results.get("rest") if mode == "ws" else None  # ws against rest
            base = other["legs"]["round trip"][stat] / 1e3 if other else None
            figs[name] = figure(d[stat] / 1e3, "us", base, d["n"])
    write_figures(figs)
    print(f"elapsed {time.monotonic() - t_start:.1f} s")
    return 1 if failed else 0
