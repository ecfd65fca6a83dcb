"""Shared-memory segments: files under /dev/shm, created owner-only, mapped with mmap.

We do not use multiprocessing.shared_memory: its resource tracker unlinks segments that
another process still uses when an attaching process exits (CPython gh-82300).

Every segment starts with a magic number, a layout version and the writer's pid. Creating
a segment whose file already exists is allowed only when its writer is dead: the stale
segment is reported, unlinked and created anew, never silently reused.
"""

from __future__ import annotations

import logging
import mmap
import os
import re

import numpy as np

from hftlive.layout import LAYOUT_VERSION, MAGIC, seg_header_dtype

log = logging.getLogger(__name__)

SHM_DIR = "/dev/shm"
_NAME_RE = re.compile(r"^[A-Za-z0-9_\-]{1,40}$")


class SharedMemoryError(RuntimeError):
    """A segment is missing, foreign, of another layout version, or still owned by a live process."""


def check_name(name: str, what: str = "connector name") -> str:
    if not _NAME_RE.match(name):
        raise ValueError(f"bad {what} {name!r}: use 1-40 letters, digits, '_' or '-'")
    return name


def path_of(segment: str) -> str:
    return os.path.join(SHM_DIR, segment)


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Segment:
    """One mapped segment. `buf` is a writable memoryview of the whole mapping."""

    def __init__(self, name: str, fd: int, size: int, created: bool):
        self.name = name
        self.size = size
        self.created = created
        self._mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        os.close(fd)
        self.buf = memoryview(self._mm)

    @classmethod
    def create(cls, name: str, size: int) -> Segment:
        """Create `name`; reclaims a stale one whose writer pid is dead."""
        path = path_of(name)
        if os.path.exists(path):
            owner = read_owner(name)
            if owner is not None and pid_alive(owner):
                raise SharedMemoryError(
                    f"shared memory {path} belongs to running process {owner}; "
                    f"is another process already using this name?"
                )
            log.warning(
                "reclaiming stale shared memory %s (its writer pid %s is gone)", path, owner
            )
            unlink_or_explain(path)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except (PermissionError, FileExistsError) as e:
            raise SharedMemoryError(f"cannot create shared memory {path}: {e.strerror}; "
                                    f"{_owner_hint(path)}") from None  # fmt: skip
        try:
            os.ftruncate(fd, size)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        return cls(name, fd, size, True)

    @classmethod
    def attach(cls, name: str) -> Segment:
        path = path_of(name)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            raise SharedMemoryError(f"no shared memory segment {path}") from None
        size = os.fstat(fd).st_size
        seg = cls(name, fd, size, False)
        head = np.frombuffer(seg.buf, seg_header_dtype, count=1)[0]
        magic, version = int(head["magic"]), int(head["version"])
        del head  # a view of the mapping: close() could not unmap it
        if magic != MAGIC:
            seg.close()
            raise SharedMemoryError(f"{path} is not an hftlive segment (bad magic)")
        if version != LAYOUT_VERSION:
            seg.close()
            raise SharedMemoryError(
                f"{path} has layout version {version}, this hftlive speaks {LAYOUT_VERSION}"
            )
        return seg

    def close(self) -> None:
        if self._mm is not None:
            self.buf.release()
            try:
                self._mm.close()
            except BufferError:
                # numpy views still reference the mapping; it is unmapped when they go away
                pass
            self._mm = None

    def unlink(self) -> None:
        try:
            os.unlink(path_of(self.name))
        except FileNotFoundError:
            pass


def _owner_hint(path: str) -> str:
    try:
        uid = os.stat(path).st_uid
    except OSError:
        return "check the permissions of its folder"
    if uid == os.getuid():
        return "it is yours: remove it, or choose another --name"
    return f"it belongs to another user (uid {uid}): ask them to remove it, or choose another --name"


def unlink_or_explain(path: str) -> None:
    """Removes a stale segment file; one we may not remove is a clear SharedMemoryError."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except PermissionError:
        raise SharedMemoryError(
            f"shared memory {path} is in the way and cannot be removed; {_owner_hint(path)}"
        ) from None


def read_owner(name: str) -> int | None:
    """The writer pid stored in a segment's header (words: magic, version, pid), or None."""
    try:
        with open(path_of(name), "rb") as f:
            head = f.read(seg_header_dtype.itemsize)
    except OSError:
        return None
    if len(head) < seg_header_dtype.itemsize:
        return None
    h = np.frombuffer(head, seg_header_dtype, count=1)[0]
    if int(h["magic"]) != MAGIC:
        return None
    return int(h["pid"])


def list_segments(prefix: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(SHM_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def write_header(arr: np.ndarray, pid: int) -> None:
    """Fill magic/version/pid of a header record; magic last, so a half-made header is foreign."""
    arr["version"] = LAYOUT_VERSION
    arr["pid"] = pid
    arr["magic"] = MAGIC
