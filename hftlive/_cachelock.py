"""A cross-process lock around every read and write of numba's on-disk cache.

Why: numba's cache (`@njit(cache=True)`) keeps, per function, an index file (signature ->
data file name, stamped with the source file's mtime and size) and one data file per
signature. Each file is written whole (a temp file, then `os.replace`), but the pair is
not: `IndexDataCacheFile.save` reads the index, picks a free data file name, writes the
index, then the data. After an install or an edit (the stamp changes) two processes that
save two signatures of one function both pick `<fn>.1.nbc`; the index can end naming
one signature and the data file hold the other's machine code, which the next process
loads and calls with the wrong types; and a process that reads between another's index
and data writes loads the old source's code under the new index (numba/numba#4807,
#10128). Both are segfaults or garbage, and both happen when a connector and bots start
together on an empty or stale cache.

What: `install()` wraps numba's `IndexDataCacheFile.save`, `load` and `flush` (the one
place every numba cache reads and writes its files: functions, cfuncs, the library
caches) in `cache_lock()`, an exclusive flock(2) on one lock file per cache (`lock_path`).
So a process reads an index and its data file only when no other is writing either, and
two writers never interleave. Two processes may still compile the same function at once
(their saves then take turns, the last one's entry stands, both whole): that costs CPU,
not correctness.

Why there, and not around the connector's warm-up and `LiveBot.build()`: the strategy's
own first compile links cached functions (`_wait_more_cached` for the bot's class, the
order requests, botfn's polling) that we cannot wrap, and a list of "what it will link"
to load beforehand would go stale with the next edit; a lock held over a whole compile
phase (seconds) must also never be held while the bot waits for its connector, which
needs it for its own warm-up. Held only inside numba's file I/O (a few ms: two small
files read, or one entry pickled and written), the lock is never held across anything
that waits for another process, so it cannot deadlock with one; every load and save in a
process that imported hftlive takes it, the user's cached functions' and hftbacktest's
included.

The lock: one fd per process (reopened in a forked child), re-entrant (a depth counter
under an RLock, so nested use in one thread is free and threads take turns; numba's own
compiler lock is always taken before it, since numba reads its cache inside `compile`).
Taken with a bounded wait (`LOCK_TIMEOUT_S`): after that a warning names the file and the
holder, and the process goes on without the lock from then on rather than hang (a holder
stuck that long is stopped or broken; a dead one releases it with its last fd).

Crash safety: numba's `save` writes the index before the data. A process stopped between
the two (SIGKILL, a second Ctrl-C, a supervisor's stop timeout during a first compile after
an upgrade) leaves an index naming a data file that holds nothing new: after a source
change the index starts afresh and numbers its files from 1 again, so the file it names
holds the previous source's machine code (the bytecode part of the key does not see a
changed constant), which every later process loads and runs. `install()` puts `_save`
in its place, which writes the data file first and the index last: a process stopped in
between leaves an index that does not name the new file, and the next process compiles
again. (A process stopped inside one write leaves at most a stray temp file: each file
is written to a temp name, then `os.replace`d.)

`HFTLIVE_CACHE_LOCK_TRACE=<file>`: each outermost acquire and release appends a line
`<pid> <acquire|release> <CLOCK_MONOTONIC ns> <what>` to that file, written while the lock
is held (tests check the turns with it).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import itertools
import logging
import os
import tempfile
import threading
import time

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 300.0  # a save holds the lock for milliseconds: a holder this long is stuck
LOCK_NAME = "hftlive-numba-cache.lock"
TRACE_ENV = "HFTLIVE_CACHE_LOCK_TRACE"
_NOTE_WAIT_S = 5.0  # waits longer than this are logged (a cold compile elsewhere saves)


def lock_path() -> str:
    """The lock file of the cache this process uses: inside NUMBA_CACHE_DIR when it is set
    (every cache file lives there, and every process sharing them sets the same); else
    numba writes beside each source file (`__pycache__` of hftlive, connector, the user's
    strategies, hftbacktest...), and one per-user lock in the temp dir covers them all."""
    from numba.core import config

    if config.CACHE_DIR:
        return os.path.join(os.path.abspath(config.CACHE_DIR), LOCK_NAME)
    return os.path.join(tempfile.gettempdir(), f"{LOCK_NAME[:-5]}-{os.getuid()}.lock")


def _holder(fd: int) -> str:
    """Who holds the flock on `fd`'s file, from /proc/locks ('pid N'), or 'another process'."""
    try:
        st = os.fstat(fd)
        ino = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks") as fh:
            for line in fh:
                f = line.split()
                if len(f) >= 6 and f[1] == "FLOCK" and f[5] == ino:
                    return f"pid {f[4]}"
    except (OSError, ValueError):
        pass
    return "another process"


class CacheLock:
    """An exclusive, re-entrant, cross-process lock on the file at `path` (lock_path()
    when None), taken with a wait bounded by `timeout_s`."""

    def __init__(self, path: str | None = None, timeout_s: float = LOCK_TIMEOUT_S):
        self._path = path
        self.timeout_s = timeout_s
        self._mutex = threading.RLock()
        self._fd = -1
        self.depth = 0  # outermost acquire: 0 -> 1
        self.held = False  # the flock is ours (False at depth > 0 when going on without it)
        self.degraded = False  # could not take it once: go on without it from then on
        self.acquired = 0  # outermost acquisitions that took the flock
        self.waited_s = 0.0  # time spent waiting for other processes

    @property
    def path(self) -> str:
        if self._path is None:
            self._path = lock_path()
        return self._path

    def _open(self) -> int:
        if self._fd < 0:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                               0o600)  # fmt: skip
        return self._fd

    def _take(self, what: str) -> bool:
        try:
            fd = self._open()
        except OSError as e:
            log.warning("numba cache lock: cannot open %s (%s); going on without it: processes "
                        "compiling into the same cache at once can corrupt it", self.path, e)  # fmt: skip
            self.degraded = True
            return False
        t0 = time.monotonic()
        deadline = t0 + self.timeout_s
        pause, noted = 0.0005, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    # e.g. ENOLCK on a network file system: never fail numba's cache I/O
                    log.warning("numba cache lock: cannot lock %s (%s); going on without it: "
                                "processes compiling into the same cache at once can "
                                "corrupt it", self.path, e)  # fmt: skip
                    self.degraded = True
                    return False
            now = time.monotonic()
            if now >= deadline:
                self.waited_s += now - t0
                log.warning("numba cache lock: %s is held by %s and was not released within "
                            "%g s; this process goes on without it from now on (a process "
                            "writing the same cache entries at once can corrupt them: if one "
                            "crashes, delete the cache and start again)", self.path,
                            _holder(fd), self.timeout_s)  # fmt: skip
                self.degraded = True
                return False
            if not noted and now - t0 > _NOTE_WAIT_S:
                noted = True
                log.info("waiting for the numba cache lock %s, held by %s (%s)", self.path,
                         _holder(fd), what)  # fmt: skip
            time.sleep(min(pause, deadline - now))
            pause = min(pause * 2, 0.02)
        self.waited_s += time.monotonic() - t0
        self.acquired += 1
        self._trace("acquire", what)
        return True

    def acquire(self, what: str = "") -> bool:
        """Takes the lock (again, if this thread holds it); True if the flock is held, False
        if this process goes on without it (it could not be taken: see the warning)."""
        self._mutex.acquire()
        try:
            if self.depth == 0 and not self.degraded:
                self.held = self._take(what)
        except BaseException:
            self._mutex.release()
            raise
        self.depth += 1
        return self.held

    def release(self) -> None:
        if self.depth <= 0:
            raise RuntimeError("CacheLock.release() without an acquire()")
        self.depth -= 1
        if self.depth == 0 and self.held:
            self.held = False
            self._trace("release", "")
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._mutex.release()

    @contextlib.contextmanager
    def hold(self, what: str = ""):
        """`with lock.hold("why"):` the lock around a block; yields acquire()'s result."""
        ok = self.acquire(what)
        try:
            yield ok
        finally:
            self.release()

    def _trace(self, event: str, what: str) -> None:
        path = os.environ.get(TRACE_ENV)
        if path:
            line = f"{os.getpid()} {event} {time.monotonic_ns()} {what}\n".encode()
            with contextlib.suppress(OSError):  # a test hook: never fail numba's cache I/O
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    os.write(fd, line)  # one write of a short line: whole, under O_APPEND
                finally:
                    os.close(fd)

    def _after_fork(self) -> None:
        """In a forked child: the inherited fd shares the parent's open file, hence its
        flock; the child takes its own from a new one."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # the parent's lock stays: its own fd still refers to it
        self._fd = -1
        self._mutex = threading.RLock()
        self.depth, self.held = 0, False


_LOCK = CacheLock()
os.register_at_fork(after_in_child=_LOCK._after_fork)


def cache_lock(what: str = ""):
    """This process's lock on its numba cache, as a context manager (re-entrant)."""
    return _LOCK.hold(what)


def process_lock() -> CacheLock:
    """The CacheLock that `cache_lock()` and numba's cache I/O (after install()) take."""
    return _LOCK


def _locked(method, what: str):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with _LOCK.hold(f"{what} {getattr(self, '_index_name', '')}"):
            return method(self, *args, **kwargs)

    wrapper._hftlive_cache_lock = True
    return wrapper


def _save(self, key, data):
    """numba's `IndexDataCacheFile.save` with its two writes in the crash-safe order: the
    new entry's data file, then the index that names it (see the module's docstring)."""
    overloads = self._load_index()
    data_name = overloads.get(key)
    if data_name is not None:  # the index already names it: replace the data, index as is
        self._save_data(data_name, data)
        return
    existing = set(overloads.values())
    data_name = next(n for n in map(self._data_name, itertools.count(1)) if n not in existing)
    self._save_data(data_name, data)
    overloads[key] = data_name
    self._save_index(overloads)


_SAVE_NEEDS = ("_load_index", "_save_index", "_save_data", "_data_name")


def install() -> bool:
    """Puts numba's cache file I/O under the lock, with `save` in the crash-safe order
    (idempotent); False, with a warning, if this numba's cache has not the shape this was
    written for (numba 0.6x)."""
    try:
        from numba.core.caching import IndexDataCacheFile
    except ImportError:
        log.warning("numba.core.caching.IndexDataCacheFile not found: numba's cache is not "
                    "locked across processes")  # fmt: skip
        return False
    names = ("save", "load", "flush")
    missing = [n for n in names if not callable(getattr(IndexDataCacheFile, n, None))]
    if missing:
        log.warning("numba's IndexDataCacheFile has no %s(): its cache is not locked across "
                    "processes", ", ".join(missing))  # fmt: skip
        return False
    if not getattr(IndexDataCacheFile.save, "_hftlive_cache_lock", False):
        if all(callable(getattr(IndexDataCacheFile, n, None)) for n in _SAVE_NEEDS):
            IndexDataCacheFile.save = _save
        else:
            log.warning("numba's IndexDataCacheFile has not the private methods %s: its own "
                        "save() stays, which a process killed while saving can leave naming "
                        "stale machine code", ", ".join(_SAVE_NEEDS))  # fmt: skip
    for name in names:
        method = getattr(IndexDataCacheFile, name)
        if not getattr(method, "_hftlive_cache_lock", False):
            setattr(IndexDataCacheFile, name, _locked(method, name))
    return True


install()  # on import: hftlive/__init__ imports this module before anything else
