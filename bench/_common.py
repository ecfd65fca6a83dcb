"""Helpers shared by the benchmark scripts: statistics, tables, a sim connector process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

SIM_CONFIG = """
[[instruments]]
symbol = "btcusdt"
tick_size = 0.1
lot_size = 0.001
start_price = 60000.0

[connector]
md_capacity = 65536
snapshot_interval_ms = 100

[risk]
max_position = 100.0
max_order_notional = 10000000.0
max_orders_per_second = 10000

[sim]
tick_interval_ms = {tick_ms}
levels = 30
volatility_bp = 0.05
trades_per_tick = 2.0
"""


def percentiles(ns: np.ndarray) -> dict[str, float]:
    """n / median / p90 / p99 / max of a sample in ns; NaN figures (printed "-") for an
    empty sample, which the caller reports as a run that is not valid."""
    a = np.asarray(ns, np.float64)
    if a.size == 0:
        nan = float("nan")
        return {"n": 0, "median": nan, "p90": nan, "p99": nan, "max": nan}
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"n": int(a.size), "median": p50, "p90": p90, "p99": p99, "max": float(a.max())}


# `python -m bench.X` exits with this when it ran to the end but its figures do not
# measure what they say (the machine was busy, samples were lost); it prints why.
EXIT_NOT_VALID = 3


def verdict(reasons: list[str]) -> int:
    """Prints whether the run is valid (and why not); returns the script's exit status."""
    if not reasons:
        print("run: VALID")
        return 0
    print("run: NOT VALID, do not compare these figures:")
    for r in reasons:
        print(f"  - {r}")
    return EXIT_NOT_VALID


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A plain fixed-width table (first column left-aligned, the rest right-aligned)."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for k, r in enumerate(cells):
        line = "  ".join(
            c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)
        )
        out.append(line.rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _fmt(c: object) -> str:
    if isinstance(c, float):
        if c != c:
            return "-"
        if abs(c) >= 100:
            return f"{c:.0f}"
        if abs(c) >= 10:
            return f"{c:.1f}"
        return f"{c:.2f}"
    return str(c)


def machine_note() -> str:
    """One line about the machine and what else is running (numbers depend on it)."""
    la = os.getloadavg()
    return (
        f"machine: {os.cpu_count()} cpus, load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} "
        f"(a load above ~0.5 before the run means other work shares the cores)"
    )


class SimConnector:
    """A real `python -m connector --connector sim` child process on its own config file."""

    def __init__(self, name: str, tick_ms: float = 100.0, env: dict | None = None):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="hftlive-bench-")
        self.cfg = Path(self.dir) / f"{name}.toml"
        self.cfg.write_text(SIM_CONFIG.format(tick_ms=tick_ms))
        self.log = Path(self.dir) / f"{name}.log"
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> SimConnector:
        self._logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "connector", "--name", self.name, "--connector", "sim",
             "--config", str(self.cfg), "--log-level", "WARNING"],
            cwd=ROOT, stdout=self._logf, stderr=subprocess.STDOUT, env=self.env,
        )  # fmt: skip
        self._wait_running(timeout)
        return self

    def _wait_running(self, timeout: float) -> None:
        from hftlive.monitor import connector_running

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                text = self.log.read_text()
                self.stop()
                raise RuntimeError(f"connector exited early:\n{text}")
            if connector_running(self.name, self.proc.pid):
                return
            time.sleep(0.05)
        text = self.log.read_text()
        self.stop()
        raise TimeoutError(f"connector did not start:\n{text}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and remove its config and log."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self._logf.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- machine-readable figures

# `python -m bench.run_all --json FILE` gives each script a file to write its figures to
# through this variable; a script run by hand without it writes none.
FIGURES_ENV = "HFTLIVE_BENCH_FIGURES"
FIGURE_KEYS = ("value", "unit", "baseline", "ratio", "samples", "valid")


def figure(value: float, unit: str, baseline: float | None, samples: int, reason: str = "") -> dict:
    """One figure for `--json`: the measured value, the same-run baseline it is compared with
    (None when there is none), their ratio, and how many samples the value comes from.

    Args:
        value: the measured figure, in `unit`.
        unit: e.g. "ns", "us", "s", "msgs/s".
        baseline: the same-run reference in the same unit (hftbacktest's figure, orjson's rate).
        samples: how many measurements the value summarises (loops, events, round trips).
        reason: why the run could not measure it properly; non-empty makes it not valid.

    Returns:
        {"value", "unit", "baseline", "ratio", "samples", "valid"} (+ "reason" when not valid).
        A NaN value or baseline becomes null (JSON has no NaN) and a NaN value is not valid.
    """
    v = None if value is None or value != value else float(value)
    b = None if baseline is None or baseline != baseline else float(baseline)
    if v is None and not reason:
        reason = "no value was measured"
    d = {"value": v, "unit": unit, "baseline": b,
         "ratio": v / b if v is not None and b else None,
         "samples": int(samples), "valid": not reason}  # fmt: skip
    if reason:
        d["reason"] = reason
    return d


def write_figures(figures: dict[str, dict]) -> None:
    """Write this script's figures where run_all asked (FIGURES_ENV), if it asked."""
    path = os.environ.get(FIGURES_ENV)
    if path:
        import json

        with open(path, "w") as fh:
            json.dump(figures, fh, indent=1, allow_nan=False)
