"""Run every benchmark, one fresh subprocess each, and print their tables in turn.

    python -m bench.run_all [feed_latency strategy_calls startup bf_ingest bf_order_path]

Exit status: 0 if every script ran to the end (a MISS against a target, or a run a script
found not valid, e.g. on a busy machine, is reported, not an error), 1 if one failed or
ran past its time limit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from bench._common import EXIT_NOT_VALID, ROOT

BENCHES = ["feed_latency", "strategy_calls", "startup", "bf_ingest", "bf_order_path"]
TIMEOUT_S = 120  # each script is built to finish well within this on 2 cores


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or BENCHES
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    failed, invalid, took = [], [], {}
    for name in names:
        print(f"==== python -m bench.{name}", flush=True)
        t = time.monotonic()
        # its own session, so that a script past its time is stopped with what it started
        p = subprocess.Popen([sys.executable, "-m", f"bench.{name}"], cwd=ROOT,
                             start_new_session=True)  # fmt: skip
        try:
            rc = p.wait(TIMEOUT_S)
            if rc == EXIT_NOT_VALID:
                invalid.append(name)
            elif rc != 0:
                failed.append(f"{name} (exit {rc})")
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            failed.append(f"{name} (over {TIMEOUT_S} s)")
        took[name] = time.monotonic() - t
        print(flush=True)
    print("==== " + ", ".join(f"{n} {s:.0f} s" for n, s in took.items()))
    if invalid:
        print("NOT VALID (ran, but the figures say nothing; see each script's reasons): "
              + ", ".join(invalid))  # fmt: skip
    if failed:
        print("FAILED: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
