"""Run every benchmark, one fresh subprocess each, and print their tables in turn.

    python -m bench.run_all [--json FILE] [--quick] [feed_latency strategy_calls startup ...]

`--json FILE` also writes one JSON object keyed by figure name (`elapse_1_ns`,
`orders_iter_ns`, `start_cached_process_s`, `bf_ingest_msgs_per_s`, ...; FIGURES lists them
per script), each {"value", "unit", "baseline", "ratio", "samples", "valid"} plus "reason"
when not valid. `baseline` is the same-run reference (hftbacktest's figure, orjson's rate,
the shm ping-pong) or null; `ratio` is value / baseline. A figure its script did not report
(it failed, ran past its time, or was not run) is there with value null, valid false and
the reason. `--quick` runs only the scripts that have a quick path (strategy_calls), with
it: its figures are marked not valid; it is how the test checks the schema.

Exit status: 0 if every script ran to the end (a MISS against a target, or a run a script
found not valid, e.g. on a busy machine, is reported, not an error), 1 if one failed or
ran past its time limit.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from bench._common import EXIT_NOT_VALID, FIGURES_ENV, ROOT, figure

BENCHES = ["feed_latency", "strategy_calls", "startup", "bf_ingest", "bf_order_path",
           "bybit_ingest", "bybit_order_path", "signing"]
QUICK = {"strategy_calls": ["--quick"]}  # the scripts with a quick path, and its arguments
TIMEOUT_S = 120  # each script is built to finish well within this on 2 cores
# every figure each script reports: (name, unit)
FIGURES = {
    "feed_latency": [("feed_to_strategy_spin_median_us", "us"),
                     ("feed_to_strategy_spin_p99_us", "us"),
                     ("feed_to_strategy_spin_njit_writer_median_us", "us"),
                     ("feed_to_strategy_sleep_median_us", "us")],
    "strategy_calls": [("best_bid_ns", "ns"), ("elapse_1_ns", "ns"),
                       ("elapse_1_then_best_bid_ns", "ns"), ("orders_iter_ns", "ns"),
                       ("roi_best_bid_ns", "ns"), ("roi_bid_qty_at_tick_ns", "ns")],
    "startup": [("start_cached_process_s", "s"), ("start_cold_process_s", "s"),
                ("start_cached_build_s", "s"), ("start_cached_first_elapse_s", "s"),
                ("import_numba_s", "s")],
    "bf_ingest": [("bf_ingest_msgs_per_s", "msgs/s"), ("bf_ingest_cpu_pct", "%")],
    "bf_order_path": [("bf_order_path_rest_median_us", "us"),
                      ("bf_order_path_rest_p99_us", "us"),
                      ("bf_order_path_ws_median_us", "us"), ("bf_order_path_ws_p99_us", "us")],
    "bybit_ingest": [("bybit_ingest_msgs_per_cpu_s", "msgs/s"), ("bybit_ingest_msgs_per_s", "msgs/s")],
    "bybit_order_path": [("bybit_order_path_rest_median_us", "us"),
                         ("bybit_order_path_rest_p99_us", "us"),
                         ("bybit_order_path_ws_median_us", "us"),
                         ("bybit_order_path_ws_p99_us", "us")],
    "signing": [("sign_hmac_ws_us", "us"), ("sign_ed25519_ws_us", "us")],
}  # fmt: skip


def run_one(name: str, args: list[str], figures_path: str) -> tuple[str, dict]:
    """Runs `python -m bench.<name> <args>`; returns (outcome, its figures).

    outcome: "" (ran to the end), "not valid", or why it failed. The figures are those the
    script wrote, each one it did not write filled in as not valid with the outcome.
    """
    env = dict(os.environ, **{FIGURES_ENV: figures_path})
    # its own session, so that a script past its time is stopped with what it started
    p = subprocess.Popen([sys.executable, "-m", f"bench.{name}", *args], cwd=ROOT, env=env,
                         start_new_session=True)  # fmt: skip
    try:
        rc = p.wait(TIMEOUT_S)
        outcome = {0: "", EXIT_NOT_VALID: "not valid"}.get(rc, f"exit {rc}")
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        outcome = f"over {TIMEOUT_S} s"
    got: dict = {}
    try:
        with open(figures_path) as fh:
            got = json.load(fh)
    except (OSError, ValueError):
        pass
    why = f"bench.{name} did not report it ({outcome or 'ran to the end'})"
    for fig, unit in FIGURES[name]:
        if fig not in got:
            got[fig] = figure(None, unit, None, 0, why)
    return outcome, got


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--json", metavar="FILE", help="write every figure to FILE as JSON")
    ap.add_argument("--quick", action="store_true", help="only the quick paths (schema check)")
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"of {', '.join(BENCHES)}")
    a = ap.parse_args(argv if argv is not None else sys.argv[1:])
    names = a.names or (list(QUICK) if a.quick else BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    if a.quick and any(n not in QUICK for n in names):
        print(f"--quick: only {', '.join(QUICK)} have a quick path", file=sys.stderr)
        return 2
    failed, invalid, took, figures = [], [], {}, {}
    with tempfile.TemporaryDirectory(prefix="hftlive-bench-figures-") as tmp:
        for name in names:
            args = QUICK[name] if a.quick else []
            print(f"==== python -m bench.{' '.join([name, *args])}", flush=True)
            t = time.monotonic()
            outcome, got = run_one(name, args, os.path.join(tmp, f"{name}.json"))
            figures.update(got)
            if outcome == "not valid":
                invalid.append(name)
            elif outcome:
                failed.append(f"{name} ({outcome})")
            took[name] = time.monotonic() - t
            print(flush=True)
    print("==== " + ", ".join(f"{n} {s:.0f} s" for n, s in took.items()))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(figures, fh, indent=1, allow_nan=False)
            fh.write("\n")
        print(f"figures: {a.json}")
    if invalid:
        print("NOT VALID (ran, but the figures say nothing; see each script's reasons): "
              + ", ".join(invalid))  # fmt: skip
    if failed:
        print("FAILED: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
