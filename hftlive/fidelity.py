"""Does my strategy do live what it did in my backtest? One strategy, one capture, twice.

`python -m hftlive.fidelity strategies.grid:gridtrading --args 0.01,0.1,10,10,20` runs the
`@njit` strategy on a window of a Binance USD-M capture

* in an hftbacktest backtest (`HashMapMarketDepthBacktest`, or
  `ROIVectorMarketDepthBacktest` with `--roi-lb`/`--roi-ub`) over what hftbacktest's own
  converter makes of the window, and
* live: on a LiveBot against a sim connector process replaying the same window on the
  replay clock (`[sim] clock = "replay"`, connector.lockstep), with hftbacktest's
  exchange model (`[sim] exchange`, connector.sim.hbt),

with the same settings (hftbacktest's names: exchange, queue model, order latency, fees,
tick and lot size), and compares the two runs step by step.

A step is what the strategy records: it is called as `strategy(hbt, recorder, *args)` and
calls `recorder.record(hbt)` once per step, hftbacktest's Recorder convention, which the
bundled strategies follow. The recorder given here (Probe) keeps, per step, the clock,
the state values (hftbacktest's Recorder's record), the mid, and the open orders (id,
side, price tick, qty, leaves qty, status, req). Steps are aligned by index; the clock is
one of the fields compared. Per step:

* timestamp: `current_timestamp`; price: the mid (the book the strategy saw);
* position, balance, fee (state values, cumulative);
* fills: trades and volume in the step (the change of num_trades, trading_volume);
* open_orders: the order table (id, side, price tick, qty, leaves qty, status, req);
* orders_sent / orders_cancelled / orders_modified: the ids of the requests the step made
  (an order new to the table or newly with req NEW; req CANCELED; req REPLACED).

The agreement figure is the share of compared steps where position, open_orders,
orders_sent and fills all agree. As one missed fill can keep every later step apart, the
report also matches the steps that traded across the runs (how many fills they share, and
how many steps later live) and gives the live clock's lag behind the backtest's (a wait
that returns later live moves every later step). The timeline is the same on both sides
(hftlive._fidelity_capture: the capture's receive times are shifted as hftbacktest's
converter would shift them, and the shift is reported).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numba as nb
import numpy as np
from numba.experimental import jitclass

from hftlive._fidelity_capture import Window, WindowError, convert, write_window
from hftlive._fidelity_compare import AGREE, OD, ST, Run, compare, match_fills  # noqa: F401

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ROOT.parent / "shared" / "data" / "binancefutures" / "ethusdt_20240808.gz"
EXCHANGES = ("no_partial_fill", "partial_fill")
QUEUE_MODELS = ("risk_averse", "power_prob", "power_prob2", "power_prob3", "log_prob",
                "log_prob2")  # fmt: skip


class FidelityError(ValueError):
    """Bad input: an unknown strategy, a window outside the capture, bad settings."""


@dataclass(frozen=True)
class Settings:
    """What both runs are given, with hftbacktest's names and meanings."""

    exchange: str = "no_partial_fill"
    queue_model: str = "risk_averse"
    queue_power: float = 3.0  # the n of the power_prob queue models
    entry_latency_ns: int = 1_000_000  # constant order latency, request to exchange
    response_latency_ns: int = 1_000_000  # exchange to bot
    # interpolated order latency instead (hftbacktest's intp_order_latency; the sim's
    # order_latency = "intp"): an .npz (key "data") or .npy of (req_ts, exch_ts, resp_ts)
    # rows, as hftlive.recorder.OrderLatencyRecorder writes them; "" = constant
    order_latency_file: str = ""
    # ROI-vector depth on both sides (hftbacktest's ROIVectorMarketDepthBacktest with
    # roi_lb/roi_ub; a LiveBot whose instrument sets them): the range of interest, prices;
    # 0, 0 = the hash-map depth
    roi_lb: float = 0.0
    roi_ub: float = 0.0
    maker_fee: float = -0.00005
    taker_fee: float = 0.0007
    tick_size: float = 0.01
    lot_size: float = 0.001
    symbol: str = "ethusdt"

    def check(self) -> None:
        if self.exchange not in EXCHANGES:
            raise FidelityError(f"exchange must be one of {', '.join(EXCHANGES)}, got "
                                f"{self.exchange!r}")  # fmt: skip
        if self.queue_model not in QUEUE_MODELS:
            raise FidelityError(f"queue_model must be one of {', '.join(QUEUE_MODELS)}, got "
                                f"{self.queue_model!r}")  # fmt: skip
        if not (self.entry_latency_ns >= 0 and self.response_latency_ns >= 0):
            raise FidelityError("entry_latency_ns and response_latency_ns must be >= 0")
        if not (self.tick_size > 0 and self.lot_size > 0):
            raise FidelityError("tick_size and lot_size must be > 0")
        if not (abs(self.maker_fee) <= 0.01 and abs(self.taker_fee) <= 0.01):
            raise FidelityError("maker_fee and taker_fee are fractions of the traded value, "
                                "within [-0.01, 0.01] (as the sim venue takes them)")  # fmt: skip
        if not (self.queue_power > 0):
            raise FidelityError("queue_power must be > 0")
        if self.roi and not 0 < self.roi_lb < self.roi_ub:
            raise FidelityError(f"roi_lb and roi_ub are prices with 0 < roi_lb < roi_ub (or "
                                f"both 0: the hash-map depth), got {self.roi_lb}, "
                                f"{self.roi_ub}")  # fmt: skip
        if self.order_latency_file:
            from connector.errors import ConfigError
            from connector.sim.hbt import load_order_latency

            try:
                load_order_latency(self.order_latency_file, "order_latency_file")
            except ConfigError as e:
                raise FidelityError(str(e)) from None

    @property
    def roi(self) -> bool:
        return (self.roi_lb, self.roi_ub) != (0.0, 0.0)

    def latency_rows(self) -> np.ndarray:
        """The interpolated order latency rows (order_latency_file), as hftbacktest takes
        them."""
        from connector.sim.hbt import load_order_latency
        from hftlive.recorder import order_latency_dtype

        rows = load_order_latency(self.order_latency_file, "order_latency_file")
        out = np.zeros(len(rows), order_latency_dtype)
        for f in ("req_ts", "exch_ts", "resp_ts"):
            out[f] = rows[f]
        return out


@jitclass
class Probe:
    """A recorder (hftbacktest's `record(hbt)`) that keeps what fidelity compares."""

    ts: nb.int64[:]
    st: nb.float64[:, :]
    od: nb.float64[:, :, :]
    on: nb.int64[:]
    i: nb.int64
    overflow: nb.int64

    def __init__(self, ts, st, od, on):
        self.ts = ts
        self.st = st
        self.od = od
        self.on = on
        self.i = 0
        self.overflow = 0

    def record(self, hbt):
        i = self.i
        if i >= self.ts.shape[0]:
            self.overflow += 1  # reported after the run: a raise here would end it
            return
        self.ts[i] = hbt.current_timestamp
        d = hbt.depth(0)
        sv = hbt.state_values(0)
        s = self.st[i]
        s[0] = (d.best_bid + d.best_ask) / 2.0
        s[1] = sv.position
        s[2] = sv.balance
        s[3] = sv.fee
        s[4] = sv.num_trades
        s[5] = sv.trading_volume
        s[6] = sv.trading_value
        n = 0
        v = hbt.orders(0).values()
        while v.has_next():
            o = v.get()
            if n < self.od.shape[1]:
                r = self.od[i, n]
                r[0] = o.order_id
                r[1] = o.side
                r[2] = o.price_tick
                r[3] = o.qty
                r[4] = o.leaves_qty
                r[5] = o.status
                r[6] = o.req
            n += 1
        if n > self.od.shape[1]:
            self.overflow += 1
        self.on[i] = n
        self.i = i + 1


def _probe(max_steps: int, max_orders: int):
    arrays = (np.zeros(max_steps, np.int64), np.zeros((max_steps, len(ST))),
              np.zeros((max_steps, max_orders, len(OD))), np.zeros(max_steps, np.int64))  # fmt: skip
    return Probe(*arrays), arrays


def _collect(probe, arrays, side: str, wall_s: float) -> Run:
    ts, st, od, on = arrays
    if probe.overflow:
        raise FidelityError(f"{side}: more steps or open orders than the probe holds "
                            f"(raise max_steps / max_orders)")  # fmt: skip
    n = probe.i
    if n == 0:
        raise FidelityError(f"{side}: the strategy recorded no steps: it must call "
                            f"recorder.record(hbt) once per step")  # fmt: skip
    orders = [tuple(sorted(tuple(float(x) for x in row) for row in od[k, : on[k]]))
              for k in range(n)]  # fmt: skip
    return Run(ts[:n].copy(), st[:n].copy(), orders, wall_s)


def _call(strategy, hbt, probe, args, side: str) -> None:
    """strategy(hbt, probe, *args); arguments it cannot take are a FidelityError."""
    from numba.core.errors import TypingError

    try:
        strategy(hbt, probe, *args)
    except (TypingError, TypeError) as e:
        first = str(e).strip().splitlines()[0]
        raise FidelityError(f"{side}: the strategy cannot be called as strategy(hbt, "
                            f"recorder, *{args!r}): {first}") from None  # fmt: skip


def load_strategy(spec: str):
    """`module:function` -> the @njit function."""
    mod, _, name = spec.partition(":")
    if not mod or not name:
        raise FidelityError(f"a strategy is given as module:function, got {spec!r}")
    try:
        fn = getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError) as e:
        raise FidelityError(f"unknown strategy {spec!r}: {e}") from None
    if not hasattr(fn, "py_func"):
        raise FidelityError(f"strategy {spec!r} is not an @njit function")
    return fn


# --- the backtest -------------------------------------------------------------------


def run_backtest(strategy, args, data: np.ndarray, s: Settings, max_steps: int,
                 max_orders: int) -> Run:  # fmt: skip
    """The strategy in hftbacktest's backtest over `data` (converted events)."""
    from hftbacktest import (
        BacktestAsset,
        HashMapMarketDepthBacktest,
        ROIVectorMarketDepthBacktest,
    )

    a = (BacktestAsset().data(data).linear_asset(1.0).tick_size(s.tick_size)
         .lot_size(s.lot_size).trading_value_fee_model(s.maker_fee, s.taker_fee))  # fmt: skip
    rows = None
    if s.order_latency_file:
        # hftbacktest keeps a pointer to the rows, not a copy: they live until the end
        rows = s.latency_rows()
        a = a.intp_order_latency(rows)
    else:
        a = a.constant_order_latency(s.entry_latency_ns, s.response_latency_ns)
    n = s.queue_power
    a = {"risk_averse": lambda: a.risk_adverse_queue_model(),
         "power_prob": lambda: a.power_prob_queue_model(n),
         "power_prob2": lambda: a.power_prob_queue_model2(n),
         "power_prob3": lambda: a.power_prob_queue_model3(n),
         "log_prob": lambda: a.log_prob_queue_model(),
         "log_prob2": lambda: a.log_prob_queue_model2()}[s.queue_model]()  # fmt: skip
    a = (
        a.no_partial_fill_exchange()
        if s.exchange == "no_partial_fill"
        else a.partial_fill_exchange()
    )
    if s.roi:
        hbt = ROIVectorMarketDepthBacktest([a.roi_lb(s.roi_lb).roi_ub(s.roi_ub)])
    else:
        hbt = HashMapMarketDepthBacktest([a])
    probe, arrays = _probe(max_steps, max_orders)
    t = time.monotonic()
    try:
        _call(strategy, hbt, probe, args, "backtest")
    finally:
        hbt.close()
        del rows
    return _collect(probe, arrays, "backtest", time.monotonic() - t)


# --- the lockstep replay ------------------------------------------------------------

CONFIG = """
[[instruments]]
symbol = "{symbol}"
tick_size = {tick_size!r}
lot_size = {lot_size!r}

[connector]
state_dir = "{state_dir}"

[risk]
max_position = 0.0
max_order_notional = 0.0
max_orders_per_second = 0.0

[sim]
data = "{data}"
data_format = "binancefutures"
clock = "replay"
exchange = "{exchange}"
queue_model = "{queue_model}"
queue_power = {queue_power!r}
{latency}
maker_fee = {maker_fee!r}
taker_fee = {taker_fee!r}
"""


def _wait_running(name: str, proc: subprocess.Popen, logf: Path, timeout: float) -> None:
    from hftlive.monitor import connector_running

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise FidelityError(f"the sim connector exited:\n{logf.read_text()[-3000:]}")
        if connector_running(name, proc.pid):
            return
        time.sleep(0.05)
    raise FidelityError(f"the sim connector did not start in {timeout} s")


def run_replay(strategy, args, window: Window, s: Settings, max_steps: int, max_orders: int,
               workdir: str) -> Run:  # fmt: skip
    """The strategy on a LiveBot against a sim connector process replaying `window` on
    the replay clock."""
    from hftlive import Instrument, LiveBot

    name = f"fid{os.getpid()}x{time.monotonic_ns() % 1_000_000}"
    cfg = Path(workdir) / f"{name}.toml"
    if s.order_latency_file:
        path = Path(s.order_latency_file).resolve()
        latency = f'order_latency = "intp"\norder_latency_file = "{path}"'
    else:
        latency = (f'order_latency = "constant"\nentry_latency_ns = {s.entry_latency_ns}\n'
                   f"response_latency_ns = {s.response_latency_ns}")  # fmt: skip
    cfg.write_text(CONFIG.format(data=window.path, state_dir=Path(workdir) / "state",
                                 latency=latency, **asdict(s)))  # fmt: skip
    logf = Path(workdir) / f"{name}.log"
    with open(logf, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "connector", "--name", name,
                                 "--connector", "sim", "--config", str(cfg)],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        _wait_running(name, proc, logf, 60.0)
        roi = {"roi_lb": s.roi_lb, "roi_ub": s.roi_ub} if s.roi else {}
        hbt = (LiveBot.builder().register(Instrument(name, s.symbol, s.tick_size, s.lot_size,
                                                     **roi)).build())  # fmt: skip
        probe, arrays = _probe(max_steps, max_orders)
        t = time.monotonic()
        try:
            _call(strategy, hbt, probe, args, "replay")
        finally:
            hbt.close()
        return _collect(probe, arrays, "replay", time.monotonic() - t)
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the comparison -----------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One comparison: which strategy, on which window, with which settings."""

    strategy: str  # module:function
    args: tuple = ()
    capture: str = str(CAPTURE)
    start_s: float = 1.0  # the window's start, seconds after the capture's first line
    duration_s: float = 30.0
    settings: Settings = field(default_factory=Settings)
    # the live side's settings where they differ (to measure what a setting does)
    replay_settings: Settings | None = None
    max_steps: int = 0  # 0: one per 10 ms of the window
    max_orders: int = 64


def run(job: Job, workdir: str | None = None) -> dict:
    """Runs both sides and compares them: the report (a JSON-able dict).

    Raises:
        FidelityError: bad input (strategy, window, settings), or a run that failed.
    """
    strategy = load_strategy(job.strategy)
    job.settings.check()
    rs = job.replay_settings or job.settings
    rs.check()
    max_steps = job.max_steps or int(job.duration_s * 100) + 100
    with tempfile.TemporaryDirectory(prefix="hftlive-fidelity-", dir=workdir) as tmp:
        try:
            window = write_window(job.capture, os.path.join(tmp, "window.gz"), job.start_s,
                                  job.duration_s)  # fmt: skip
            data = convert(window)
        except WindowError as e:
            raise FidelityError(str(e)) from None
        bt = run_backtest(strategy, job.args, data, job.settings, max_steps, job.max_orders)
        rp = run_replay(strategy, job.args, window, rs, max_steps, job.max_orders, tmp)
    report = compare(bt, rp, job.settings.lot_size, job.settings.tick_size, window.first_ns)
    report = {
        "strategy": job.strategy, "args": list(job.args),
        "window": {"capture": job.capture, "start_s": job.start_s,
                   "duration_s": job.duration_s, "first_ns": window.first_ns,
                   "shift_ns": window.shift_ns, "lines": window.lines},
        "settings": asdict(job.settings),
        "replay_settings": asdict(rs) if job.replay_settings else None,
        **report,
    }  # fmt: skip
    return report


def format_report(r: dict) -> str:
    """The report, for a terminal."""
    w, st = r["window"], r["steps"]
    out = [
        f"{r['strategy']}{tuple(r['args'])} on {Path(w['capture']).name} "
        f"[{w['start_s']} s, +{w['duration_s']} s]",
        f"timeline: the capture's receive times + {w['shift_ns'] / 1e6:.3f} ms on both sides "
        f"(hftbacktest's converter shift)",
        f"steps: backtest {st['backtest']}, replay {st['replay']}, compared {st['compared']}",
        f"agreement: {100 * r['agreement']:.2f} % of steps agree on {', '.join(AGREE)}",
        "differing steps per field: "
        + ", ".join(f"{k} {v}" for k, v in r["differing_steps"].items()),  # fmt: skip
    ]
    fs = r["fill_steps"]
    out.append(f"steps that traded: backtest {fs['backtest']}, replay {fs['replay']}, "
               f"matched {fs['matched']} (same qty and price; replay lag in steps: "
               f"{fs['lag_steps']})")  # fmt: skip
    cl = r["clock_lag_ms"]
    out.append(f"live clock minus backtest clock: last {cl['last']:.3f} ms, min "
               f"{cl['min']:.3f}, max {cl['max']:.3f}")  # fmt: skip
    fd = r["first_divergence"]
    if fd is None:
        out.append("no divergence")
    else:
        out.append(f"first divergence: step {fd['step']} at +{fd['offset_s']:.3f} s into the window "
                   f"(ts {fd['timestamp_ns']})")  # fmt: skip
        for f, v in fd["fields"].items():
            out.append(f"  {f}: backtest {v['backtest']}  replay {v['replay']}")
    for side, v in r.get("final", {}).items():
        out.append(f"final {side}: {v}")
    return "\n".join(out)


def _settings_from(ns, prefix: str, base: Settings) -> Settings:
    kw = {}
    for k in Settings.__dataclass_fields__:
        v = getattr(ns, prefix + k, None)
        if v is not None:
            kw[k] = v
    return replace(base, **kw)


def _literal(x: str):
    try:
        return int(x)
    except ValueError:
        return float(x)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hftlive.fidelity", description=__doc__.split(
        "\n")[0])  # fmt: skip
    p.add_argument("strategy", help="module:function, an @njit strategy(hbt, recorder, *args)")
    p.add_argument("--args", default="", help="the strategy's arguments after the recorder, "
                   "comma-separated numbers")  # fmt: skip
    p.add_argument("--capture", default=str(CAPTURE))
    p.add_argument("--start", type=float, default=1.0, help="window start, s into the capture")
    p.add_argument("--duration", type=float, default=30.0, help="window length, s")
    d = Settings()
    for k, v in asdict(d).items():
        p.add_argument("--" + k.replace("_", "-"), type=type(v), default=None,
                       help=f"hftbacktest's {k} (default {v})")  # fmt: skip
        if k in ("entry_latency_ns", "response_latency_ns", "queue_model", "exchange",
                 "order_latency_file"):  # fmt: skip
            p.add_argument("--replay-" + k.replace("_", "-"), type=type(v), default=None,
                           help=f"the replay's {k}, if it should differ")  # fmt: skip
    p.add_argument("--max-orders", type=int, default=64, help="open orders a step can hold")
    p.add_argument("--max-steps", type=int, default=0,
                   help="steps a run can record (default: one per 10 ms of the window)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="the report as JSON")
    ns = p.parse_args(argv)
    try:
        args = tuple(_literal(x) for x in ns.args.split(",") if x.strip())
    except ValueError:
        p.error(f"--args must be comma-separated numbers, got {ns.args!r}")
    s = _settings_from(ns, "", d)
    rs = _settings_from(ns, "replay_", s)
    job = Job(ns.strategy, args, ns.capture, ns.start, ns.duration, s,
              rs if rs != s else None, max_steps=ns.max_steps, max_orders=ns.max_orders)  # fmt: skip
    try:
        report = run(job)
    except FidelityError as e:
        print(f"fidelity: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=1) if ns.json else format_report(report))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
