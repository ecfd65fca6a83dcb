"""The benchmarks' statistics and verdicts: an empty or noisy run is reported, not a crash
or a ratio of noise (the benchmarks themselves are run by hand, not by the test suite)."""

import math

import numpy as np

from bench._common import EXIT_NOT_VALID, percentiles, verdict
from bench.feed_latency import _invalid


def test_percentiles_of_an_empty_sample_are_nan_not_an_indexerror():
    d = percentiles(np.array([], np.int64))
    assert d["n"] == 0 and all(math.isnan(d[k]) for k in ("median", "p90", "p99", "max"))
    d = percentiles(np.arange(1, 101))
    assert d["n"] == 100 and d["median"] == 50.5 and d["max"] == 100.0


def _row(n, median=2000.0, p90=3000.0, cs=5, sent=None):
    d = percentiles(np.full(n, median)) if n else percentiles(np.array([]))
    d.update(p90=p90 if n else d["p90"], cs=cs, missed=0, sent=n + 1000 if sent is None else sent)
    return d


def test_a_quiet_run_is_valid(capsys):
    base = _row(25000, median=150.0, p90=270.0)
    rows = {"spin": _row(25000), "nb": _row(25000), "sleep": _row(25000, median=50_000)}
    assert _invalid(25000, base, dict(base), rows) == []
    assert verdict([]) == 0 and "run: VALID" in capsys.readouterr().out


def test_lost_samples_a_busy_baseline_and_a_preempted_bot_make_it_not_valid(capsys):
    quiet = _row(25000, median=150.0, p90=270.0)
    busy = _row(25000, median=200.0, p90=1_552_000.0)  # p90 1.5 ms: taking turns on a core
    rows = {"spin": _row(23, sent=1023), "nb": _row(25000, cs=5000), "sleep": _row(25000)}
    reasons = _invalid(25000, quiet, busy, rows)
    assert any(r.startswith("spin: 23 samples of 25000 events") for r in reasons)
    assert any(r.startswith("nb: the bot was preempted 5000 times") for r in reasons)
    assert any("baseline after the rows has p90 1552.0 us" in r for r in reasons)
    assert verdict(reasons) == EXIT_NOT_VALID
    out = capsys.readouterr().out
    assert "run: NOT VALID" in out and "23 samples" in out


def test_a_baseline_that_moves_during_the_run_makes_it_not_valid():
    before = _row(25000, median=66_600.0, p90=70_000.0)
    after = _row(25000, median=150.0, p90=270.0)
    rows = {"spin": _row(25000)}
    reasons = _invalid(25000, before, after, rows)
    assert any("before the rows has p90 70.0 us" in r for r in reasons)
    moved = _invalid(25000, _row(25000, median=3000.0, p90=4000.0), after, rows)
    assert moved and "moved from 3.00 us to 0.15 us" in moved[0]
