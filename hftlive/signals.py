"""Ending a jitted loop on SIGINT/SIGTERM.

Python runs its signal handlers only between bytecodes, never while a @njit loop runs, so
a Ctrl-C would go unnoticed until the strategy returned. While a bot is open we install a
C-level handler (a numba cfunc: no GIL, async-signal-safe) that sets a process-wide flag
which every LiveBot's waiting calls read; `elapse` then returns 1, as at the end of a
backtest. Python's own handlers are put back when the last bot closes.
"""

from __future__ import annotations

import ctypes
import signal
import threading

import numpy as np
from llvmlite import ir
from numba import cfunc, types
from numba.extending import intrinsic

FLAG = np.zeros(8, np.int64)  # FLAG[0]: the signal number received, 0 if none
_ADDR = FLAG.ctypes.data
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_lock = threading.Lock()
_users = 0
_saved: dict[int, object] = {}


@intrinsic
def _store_at(typingctx, addr, val):
    sig = types.void(types.int64, types.int64)

    def codegen(context, builder, signature, args):
        p = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        builder.store_atomic(args[1], p, "seq_cst", 8)
        return context.get_dummy_value()

    return sig, codegen


@cfunc(types.void(types.int32))
def _on_signal(signum):
    _store_at(_ADDR, signum)


_libc = ctypes.CDLL(None, use_errno=True)
_libc.signal.restype = ctypes.c_void_p
_libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]


def acquire() -> None:
    """Install the handler (first user) and clear the flag."""
    global _users
    with _lock:
        if _users == 0:
            FLAG[:] = 0
            if threading.current_thread() is threading.main_thread():
                for s in _SIGNALS:
                    _saved[s] = signal.getsignal(s)
                    _libc.signal(s, _on_signal.address)
        _users += 1


def release() -> None:
    """Restore Python's handlers when the last user is gone."""
    global _users
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users == 0 and threading.current_thread() is threading.main_thread():
            for s, h in _saved.items():
                signal.signal(s, h if h is not None else signal.SIG_DFL)
            _saved.clear()


def received() -> int:
    return int(FLAG[0])
