"""`python -m bench.run_all --json FILE`: the schema of the figures file (not the figures).

The quick path runs bench.strategy_calls for real (a sim connector process, hftbacktest,
a LiveBot) with loops too short to mean anything: its figures are there and marked not
valid; the other scripts' figures are not, since they were not run.
"""

import json
import math
import subprocess
import sys

from bench._common import FIGURE_KEYS, figure
from bench.run_all import FIGURES, run_one
from tests.conftest import ROOT


def _check_schema(name: str, d: dict) -> None:
    assert set(FIGURE_KEYS) <= set(d), f"{name}: {d}"
    assert set(d) <= {*FIGURE_KEYS, "reason"}, f"{name}: {d}"
    assert isinstance(d["unit"], str) and d["unit"]
    assert isinstance(d["samples"], int) and d["samples"] >= 0
    assert isinstance(d["valid"], bool)
    for k in ("value", "baseline", "ratio"):
        assert d[k] is None or (isinstance(d[k], float) and math.isfinite(d[k])), (name, k)
    if d["value"] is not None and d["baseline"]:
        assert math.isclose(d["ratio"], d["value"] / d["baseline"])
    if d["valid"]:
        assert d["value"] is not None and "reason" not in d
    else:
        assert isinstance(d.get("reason"), str) and d["reason"], f"{name}: invalid, no reason"


def test_quick_run_writes_every_figure_of_the_scripts_it_ran(tmp_path):
    out = tmp_path / "figures.json"
    r = subprocess.run([sys.executable, "-m", "bench.run_all", "--quick", "--json", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=170)  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "==== python -m bench.strategy_calls --quick" in r.stdout  # the table is printed
    assert "elapse(1)" in r.stdout
    got = json.loads(out.read_text())
    assert set(got) == {name for name, _ in FIGURES["strategy_calls"]}
    for name, unit in FIGURES["strategy_calls"]:
        _check_schema(name, got[name])
        d = got[name]
        assert d["unit"] == unit == "ns"
        assert d["value"] is not None and d["value"] > 0 and d["baseline"] > 0
        assert d["samples"] == 3
        assert d["valid"] is False and "--quick" in d["reason"]


def test_a_script_that_fails_still_has_its_figures_marked_not_valid(tmp_path):
    # a script refuses an unknown option at once (argparse, exit 2): nothing reported
    outcome, got = run_one("bf_order_path", ["--no-such-option"], str(tmp_path / "f.json"))
    assert outcome == "exit 2"
    assert set(got) == {name for name, _ in FIGURES["bf_order_path"]}
    for name, d in got.items():
        _check_schema(name, d)
        assert d["value"] is None and d["valid"] is False
        assert "bench.bf_order_path did not report it (exit 2)" in d["reason"]


def test_figure_has_no_nan_and_says_why_it_is_not_valid():
    d = figure(float("nan"), "us", 2.0, 0)
    assert d["value"] is None and d["ratio"] is None and not d["valid"] and d["reason"]
    d = figure(3.0, "ns", 1.5, 7)
    assert d == {"value": 3.0, "unit": "ns", "baseline": 1.5, "ratio": 2.0, "samples": 7,
                 "valid": True}  # fmt: skip
    d = figure(3.0, "s", None, 1, "the machine was busy")
    assert d["ratio"] is None and d["valid"] is False and d["reason"] == "the machine was busy"
    json.dumps(d, allow_nan=False)
