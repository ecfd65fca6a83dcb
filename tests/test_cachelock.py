"""hftlive._cachelock: numba's cache files are read and written under a cross-process lock.

Real processes, a real (fresh) NUMBA_CACHE_DIR, real numba: children started together
compile the same cached functions into one cache, and their saves and loads take turns
(their trace lines pair up, one holder at a time); the cache they leave is whole (a later
process loads every entry and gets the right results). Then: the lock is re-entrant, a
forked child takes its own, a lock held elsewhere is waited for a bounded time and then
gone without, with a warning naming it; a connector's warm-up and a bot's build and first
strategy compile take it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

from hftlive import _cachelock
from hftlive._cachelock import TRACE_ENV, CacheLock
from tests.conftest import ROOT, ConnectorProc

CHILD = """
import json, sys
import hftlive  # installs the lock on numba's cache I/O
from hftlive._cachelock import process_lock
from tests import cachelock_toy as toy
print("ready", flush=True)
assert sys.stdin.readline().strip() == "go"
got = toy.exercise()
lk = process_lock()
hits = sum(sum(f.stats.cache_hits.values()) for f in toy.FUNCTIONS)
print(json.dumps({"got": got, "acquired": lk.acquired, "path": lk.path, "hits": hits}))
"""


def _env(tmp_path: Path, **more) -> dict:
    return dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"),
                **{TRACE_ENV: str(tmp_path / "trace")}, **more)  # fmt: skip


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    """A line of the child's stdout, waited for at most `timeout` seconds."""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.kill()
            raise AssertionError(f"child {proc.pid} said nothing within {timeout} s")
    return proc.stdout.readline()


def _turns(trace: Path) -> list[tuple[int, int, int, str]]:
    """The trace's holds, (pid, acquired ns, released ns, what), checked to be one at a
    time: every acquire is followed by its own release before the next acquire."""
    lines = [ln.split(" ", 3) for ln in trace.read_text().splitlines()]
    assert lines and len(lines) % 2 == 0, lines[-4:]
    holds = []
    last_release = 0
    for (pa, ea, ta, what), (pr, er, tr, _) in zip(lines[::2], lines[1::2]):
        assert (ea, er) == ("acquire", "release") and pa == pr, (pa, ea, pr, er)
        assert last_release <= int(ta) <= int(tr), "two holders at once"
        last_release = int(tr)
        holds.append((int(pa), int(ta), int(tr), what))
    return holds


def test_processes_compiling_into_one_cache_take_turns_and_leave_it_whole(tmp_path):
    env = _env(tmp_path)
    kids = [subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE) for _ in range(3)]  # fmt: skip
    try:
        for k in kids:
            assert _readline(k, 60).strip() == "ready"
        for k in kids:  # all compile from here, at once
            k.stdin.write("go\n")
            k.stdin.flush()
        outs = [k.communicate(timeout=60) for k in kids]
    finally:
        for k in kids:
            if k.poll() is None:
                k.kill()
    for k, (_, err) in zip(kids, outs):
        assert k.returncode == 0, err[-3000:]
    from tests.cachelock_toy import EXPECTED

    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    lock_file = str(tmp_path / "cache" / _cachelock.LOCK_NAME)
    for r in results:
        assert r["got"] == EXPECTED and r["path"] == lock_file and r["acquired"] > 0
    holds = _turns(tmp_path / "trace")
    pids = {k.pid for k in kids}
    assert {p for p, *_ in holds} == pids  # every child took it, one at a time
    # 3 functions x 2 signatures: each entry saved at least once, by a holder of the lock
    saved = [w.split()[1] for _, _, _, w in holds if w.startswith("save")]
    assert len(saved) >= 6, saved
    for f in ("total", "scaled", "running_max"):
        assert any(n.startswith(f"cachelock_toy.{f}-") for n in saved), saved
    # the cache they left is whole: a later process loads every entry, compiles none
    later = subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)  # fmt: skip
    out, err = later.communicate("go\n", timeout=60)
    assert later.returncode == 0, err[-3000:]
    r = json.loads(out.strip().splitlines()[-1])
    assert r["got"] == EXPECTED and r["hits"] == 6


def _held_elsewhere(path: Path) -> bool:
    """Whether an flock on `path` is held (through another open file than this probe's)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the probe's own lock, if it took one
    return False


def test_the_lock_is_reentrant_and_released_by_the_outermost_hold(tmp_path):
    path = tmp_path / "l.lock"
    lk = CacheLock(str(path), timeout_s=5)
    with lk.hold("outer") as outer:
        assert outer and _held_elsewhere(path)
        with lk.hold("inner") as inner:  # the same thread again: no self-deadlock
            assert inner and lk.depth == 2
        assert lk.depth == 1 and _held_elsewhere(path)  # the inner release kept it
    assert lk.depth == 0 and not _held_elsewhere(path)
    assert lk.acquired == 1  # one flock for the nested pair


FORK_CHILD = """
import os, sys
from hftlive._cachelock import process_lock
lk = process_lock()
lk.timeout_s = 0.05
with lk.hold("parent"):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child shares the parent's open file: it must take a lock of its own
        took = lk.acquire("child")
        lk.release()
        os.write(w, b"%d %d" % (took, lk.depth))
        os._exit(0)
    os.close(w)
    got = os.read(r, 16).decode()
    os.waitpid(pid, 0)
print(got, lk.depth)
"""


def test_a_forked_child_does_not_share_its_parents_hold(tmp_path):
    r = subprocess.run([sys.executable, "-c", FORK_CHILD], cwd=ROOT, env=_env(tmp_path),
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    # the child could not take it (its parent held it), after 0.05 s; nothing held after
    assert r.stdout.split() == ["0", "0", "0"], r.stdout
    assert "held by pid" in r.stderr and "goes on without it" in r.stderr


HOLDER = """
import sys
from hftlive._cachelock import CacheLock
lk = CacheLock(sys.argv[1])
assert lk.acquire("holder")
print("held", flush=True)
sys.stdin.readline()
"""


def test_a_lock_held_elsewhere_is_waited_for_a_bounded_time_then_gone_without(tmp_path, caplog):
    path = tmp_path / "l.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert _readline(holder, 60).strip() == "held"
        lk = CacheLock(str(path), timeout_s=0.3)
        t = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="hftlive._cachelock"):
            assert lk.acquire("test") is False
        assert time.monotonic() - t >= 0.3 and lk.degraded
        lk.release()
        msg = caplog.text
        assert str(path) in msg and f"held by pid {holder.pid}" in msg
        assert "within 0.3 s" in msg and "goes on without it" in msg
        # from then on it does not wait again (a holder that long is stuck)
        waited = lk.waited_s
        with lk.hold("again") as held:
            assert held is False
        assert lk.waited_s == waited and caplog.text.count("goes on without it") == 1
    finally:
        holder.communicate("", timeout=30)
    assert holder.returncode == 0
    # the holder's exit released it
    assert CacheLock(str(path), timeout_s=10).acquire("after") is True


BOT = """
import json, sys
from numba import njit
from hftlive import Instrument, LiveBot
from hftlive._cachelock import process_lock
hbt = LiveBot.builder().register(Instrument(sys.argv[1], "btcusdt", 0.1, 0.001)).build()
built = process_lock().acquired

@njit
def strategy(hbt):
    return hbt.elapse(1_000_000)

rc = strategy(hbt)
hbt.close()
print(json.dumps({"built": built, "rc": int(rc), "depth": process_lock().depth}))
"""


def test_a_connectors_warm_up_and_a_bots_build_and_first_compile_take_it(tmp_path,
                                                                        monkeypatch):  # fmt: skip
    trace = tmp_path / "trace"
    monkeypatch.setenv(TRACE_ENV, str(trace))  # the connector and the bot inherit it
    c = ConnectorProc(tmp_path).start()  # its warm-up loads (or compiles) its functions
    try:
        r = subprocess.run([sys.executable, "-c", BOT, c.name], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    finally:
        c.stop()
        c.remove_segments()
    assert r.returncode == 0, r.stderr[-3000:]
    bot = json.loads(r.stdout.strip().splitlines()[-1])
    assert bot["rc"] == 0 and bot["built"] > 0 and bot["depth"] == 0
    holds = _turns(trace)
    by_conn = {w.split()[1] for p, _, _, w in holds if p == c.proc.pid and w.strip()}
    assert any(n.startswith("depth.") for n in by_conn), by_conn  # the book, in the warm-up
    assert any(n.startswith("ipc.md_publish") for n in by_conn), by_conn
    mine = [w.split()[1] for p, _, _, w in holds if p not in (c.proc.pid, os.getpid())
            and w.strip()]  # fmt: skip
    # the build's cached constructor, and what the strategy's compile links from the cache
    assert any(n.startswith("_jitclass_new._new") for n in mine), mine
    assert any(n.startswith("botcore._wait_more_cached") for n in mine), mine
    assert any(n.startswith("botfn.wait_begin") for n in mine), mine


def _lock_path_in(env: dict) -> str:
    code = "from hftlive._cachelock import lock_path; print(lock_path())"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_the_lock_file_is_tied_to_the_cache(tmp_path):
    assert _lock_path_in(_env(tmp_path)) == str(tmp_path / "cache" / _cachelock.LOCK_NAME)
    env = dict(os.environ)
    env.pop("NUMBA_CACHE_DIR", None)  # numba writes beside each source: one lock per user
    assert _lock_path_in(env).endswith(f"-{os.getuid()}.lock")


STALE_TOY = """import numba as nb


@nb.njit(cache=True)
def f(x):
    return x + {k}
"""

KILLED_MID_SAVE = """
import os, sys
{imports}
from numba.core.caching import IndexDataCacheFile as Cache

def stop_after(write):
    def stopped(self, *a, **k):
        write(self, *a, **k)
        os._exit(9)  # as a SIGKILL between the save's two writes: no cleanup, no flush
    return stopped

Cache._save_index = stop_after(Cache._save_index)
Cache._save_data = stop_after(Cache._save_data)
import stale_toy
stale_toy.f(1)
"""


def _run_toy(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_a_process_killed_between_a_saves_two_writes_leaves_no_stale_code(tmp_path):
    """After a source change numba numbers a function's data files from 1 again; its own
    save writes the index (naming `f.1.nbc`) before the data, so a process killed between
    the two left an index that names the old source's machine code, which every later
    process ran (here: x + 1 where the source says x + 22; numba 0.68 without hftlive
    does). hftlive's save writes the data first: the killed save leaves nothing named."""
    src = tmp_path / "src"
    src.mkdir()
    toy = src / "stale_toy.py"
    env = _env(tmp_path, PYTHONPATH=os.pathsep.join([str(src), str(ROOT)]))
    call = "import hftlive, stale_toy; print(stale_toy.f(1))"
    toy.write_text(STALE_TOY.format(k=1))
    r = _run_toy(call, env)
    assert (r.returncode, r.stdout.strip()) == (0, "2"), r.stderr[-3000:]
    toy.write_text(STALE_TOY.format(k=22))  # the same line, another size: another stamp
    st = toy.stat()
    os.utime(toy, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    r = _run_toy(KILLED_MID_SAVE.format(imports="import hftlive"), env)
    assert r.returncode == 9, r.stderr[-3000:]  # stopped after its first write
    r = _run_toy(call, env)
    assert (r.returncode, r.stdout.strip()) == (0, "23"), r.stderr[-3000:]
