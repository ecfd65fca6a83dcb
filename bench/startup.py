"""Bot start time: from `LiveBot.builder()...build()` to a strategy's first `elapse` return.

Every figure comes from a fresh Python subprocess, so nothing is compiled in memory:

  cold    NUMBA_CACHE_DIR set to a new empty directory: every @njit(cache=True) function
          hftlive uses compiles (a first run after install, or after an upgrade)
  cached  the same NUMBA_CACHE_DIR again: what every later start costs

Columns: import (numba + hftlive imports), build (`LiveBot.builder().register(...)
.wait_policy(WAIT_SPIN).build()`, start to return, against a real sim connector process),
first elapse (a small @njit strategy's first call: it compiles the strategy with the
LiveBot's methods, then one `elapse(1_000_000)`), process (the child's whole wall time).

Baselines, same run: `python -c "import numba"` (interpreter + numba start) and
hftbacktest's HashMapMarketDepthBacktest construction (small in-memory data) + the same
strategy's first elapse, cold and cached the same way.

    python -m bench.startup
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench._common import ROOT, SimConnector, figure, machine_note, table, write_figures

TARGET_PROCESS_CACHED_S = 1.5  # issue 11: a cached start as hftbacktest's (aim: 1 s)
CHILD_TIMEOUT_S = 110

STRATEGY = """
from numba import njit

@njit
def strategy(hbt):
    rc = hbt.elapse(1_000_000)
    return rc, hbt.depth(0).best_bid
"""

LIVEBOT_CHILD = (
    """
import json, sys, time
t0 = time.perf_counter()
import numba
from hftlive import WAIT_SPIN, Instrument, LiveBot
t1 = time.perf_counter()
hbt = LiveBot.builder().register(Instrument(sys.argv[1], "btcusdt", 0.1, 0.001)).wait_policy(
    WAIT_SPIN).build()
t2 = time.perf_counter()
"""
    + STRATEGY
    + """
t3 = time.perf_counter()
rc, bid = strategy(hbt)
t4 = time.perf_counter()
hbt.close()
print(json.dumps({"import": t1 - t0, "build": t2 - t1, "first": t4 - t3, "rc": int(rc),
                  "bid": float(bid)}))
"""
)

HFTBACKTEST_CHILD = (
    """
import json, time
t0 = time.perf_counter()
import numba
import numpy as np
from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest
from hftbacktest.types import event_dtype
t1 = time.perf_counter()
t = 1_700_000_000_000_000_000
rows = [((1 << 31) | (1 << 30) | (1 << 29) | 1, t, t, 60000.0, 1.0, 0, 0, 0.0),
        ((1 << 31) | (1 << 30) | (1 << 28) | 1, t, t, 60000.1, 1.0, 0, 0, 0.0)]
rows += [((1 << 31) | (1 << 30) | (1 << 29) | 1, t + k * 1_000_000, t + k * 1_000_000,
          60000.0, 1.0 + k % 3, 0, 0, 0.0) for k in range(1, 2000)]
data = np.array(rows, event_dtype)
t2 = time.perf_counter()
asset = (BacktestAsset().data(data).linear_asset(1.0).constant_order_latency(0, 0)
         .power_prob_queue_model(2.0).no_partial_fill_exchange().tick_size(0.1).lot_size(0.001)
         .trading_value_fee_model(0.0002, 0.0005))
hbt = HashMapMarketDepthBacktest([asset])
t3 = time.perf_counter()
"""
    + STRATEGY
    + """
t4 = time.perf_counter()
rc, bid = strategy(hbt)
t5 = time.perf_counter()
hbt.close()
print(json.dumps({"import": t1 - t0, "build": t3 - t2, "first": t5 - t4, "rc": int(rc),
                  "bid": float(bid)}))
"""
)


def _child(code: str, cache_dir: str | None, *args: str) -> dict:
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)  # fmt: skip
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"child failed ({r.returncode}):\n{r.stderr[-3000:]}")
    d = json.loads(r.stdout.strip().splitlines()[-1])
    d["process"] = wall
    return d


def _row(label: str, d: dict) -> list[object]:
    return [label, d["import"], d["build"], d["first"], d["process"]]


def main(argv: list[str] | None = None) -> int:
    t_start = time.monotonic()
    print("bench.startup: seconds, each row a fresh subprocess")
    print(machine_note())
    numba_s = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import numba"], check=True, timeout=60)
        numba_s.append(time.perf_counter() - t)
    numba_s.sort()
    base = numba_s[1]

    tmp = tempfile.mkdtemp(prefix="hftlive-bench-numba-")
    conn = SimConnector(f"benchst{os.getpid()}", tick_ms=50).start()
    try:
        lb_dir, hb_dir = os.path.join(tmp, "livebot"), os.path.join(tmp, "hftbacktest")
        lb_cold = _child(LIVEBOT_CHILD, lb_dir, conn.name)
        lb_warm = _child(LIVEBOT_CHILD, lb_dir, conn.name)
        hb_cold = _child(HFTBACKTEST_CHILD, hb_dir)
        hb_warm = _child(HFTBACKTEST_CHILD, hb_dir)
    finally:
        conn.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    for what, d in (("LiveBot", lb_cold), ("LiveBot", lb_warm), ("hftbacktest", hb_cold),
                    ("hftbacktest", hb_warm)):  # fmt: skip
        if d["rc"] != 0 or d["bid"] != d["bid"]:
            raise RuntimeError(f"{what}: first elapse returned {d['rc']}, best_bid {d['bid']}")

    rows = [
        ["baseline: python -c 'import numba'", "-", "-", "-", base],
        _row("hftbacktest cold (build = construct)", hb_cold),
        _row("hftbacktest cached", hb_warm),
        _row("LiveBot cold (empty NUMBA_CACHE_DIR)", lb_cold),
        _row("LiveBot cached (same NUMBA_CACHE_DIR)", lb_warm),
    ]
    print(table(["what", "import s", "build s", "first elapse s", "process s"], rows))
    ok = lb_warm["process"] <= TARGET_PROCESS_CACHED_S
    print(f"target: whole process <= {TARGET_PROCESS_CACHED_S:g} s cached: "
          f"{'PASS' if ok else 'MISS'} ({lb_warm['process']:.2f} s)")  # fmt: skip
    print(
        f"ratios (LiveBot / hftbacktest, cached): build {lb_warm['build'] / hb_warm['build']:.1f}x,"
        f" build + first elapse "
        f"{(lb_warm['build'] + lb_warm['first']) / (hb_warm['build'] + hb_warm['first']):.2f}x, "
        f"process {lb_warm['process'] / hb_warm['process']:.2f}x; "
        f"LiveBot cached process / 'import numba': {lb_warm['process'] / base:.1f}x"
    )
    write_figures({  # baseline: hftbacktest's same figure, same run, same cache state
        "start_cached_process_s": figure(lb_warm["process"], "s", hb_warm["process"], 1),
        "start_cold_process_s": figure(lb_cold["process"], "s", hb_cold["process"], 1),
        "start_cached_build_s": figure(lb_warm["build"], "s", hb_warm["build"], 1),
        "start_cached_first_elapse_s": figure(lb_warm["first"], "s", hb_warm["first"], 1),
        "import_numba_s": figure(base, "s", None, len(numba_s)),
    })  # fmt: skip
    print(f"elapsed {time.monotonic() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
