"""hftlive._jitclass_new: a jitclass built by cached code (the LiveBot's constructor)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

from hftlive import _jitclass_new
from tests.conftest import ROOT

CHILD = """
import gc, json
from numba.core import event
compiled = []
class Listener(event.Listener):
    def on_start(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__qualname__)
    def on_end(self, ev):
        pass
event.register("numba:compile", Listener())
from numba.core.runtime import rtsys
from tests.jitclass_toy import new_toy
t = new_toy(2)
before_del = rtsys.get_allocation_stats()
got = [t.scale, t.words.tolist(), [(h.arr.tolist(), h.k) for h in t.held]]
del t
gc.collect()
after = rtsys.get_allocation_stats()
print(json.dumps({"got": got, "compiled": compiled, "live": before_del.mi_alloc - before_del.mi_free,
                  "leaked": after.mi_alloc - after.mi_free}))
"""


def _run(cache_dir) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), NUMBA_NRT_STATS="1",
               PYTHONPATH=str(ROOT))  # fmt: skip
    r = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_cached_constructor_builds_the_instance_and_compiles_nothing_the_second_time(tmp_path):
    cold = _run(tmp_path)
    warm = _run(tmp_path)
    expected = [0.5, [0, 1, 2, 3], [[[1.0] * 3, 1], [[2.0] * 3, 2]]]
    assert cold["got"] == expected and warm["got"] == expected
    assert "_new" in cold["compiled"] and "Held.__init__" in cold["compiled"]
    # from the cache: neither the constructor nor any __init__ compiles again
    assert not [q for q in warm["compiled"] if q == "_new" or q.endswith("__init__")], warm
    # alive while the box is: the toy, its two held instances and the meminfos of the
    # three numpy arrays they hold; then all freed
    assert cold["live"] == warm["live"] == 6
    assert cold["leaked"] == warm["leaked"] == 0


def test_a_changed_layout_or_dependency_does_not_match_the_cached_reference(tmp_path):
    from tests.jitclass_toy import _toy_class_type, toy_class

    ct = toy_class(1).class_type
    digest = _jitclass_new._digest(ct)
    assert _jitclass_new._rebuild(_toy_class_type, (1,), digest) is ct
    stale = _jitclass_new._rebuild(_toy_class_type, (1,), "0" * 64)
    assert stale != ct and stale.key != ct.key
    assert _jitclass_new._digest(toy_class(2).class_type) != digest
    # a module the class names in stable_depends changed: a new digest
    dep = tmp_path / "hftlive_test_dep.py"
    dep.write_text("X = 1\n")
    sys.path.insert(0, str(tmp_path))
    ct.stable_depends = ("hftlive_test_dep",)
    try:
        importlib.import_module("hftlive_test_dep")
        with_dep = _jitclass_new._digest(ct)
        assert with_dep != digest
        assert _jitclass_new._digest(ct) == with_dep
        dep.write_text("X = 22\n")  # numba's stamp: (mtime, size)
        assert _jitclass_new._digest(ct) != with_dep
    finally:
        del ct.stable_depends
        sys.path.remove(str(tmp_path))
        sys.modules.pop("hftlive_test_dep", None)
