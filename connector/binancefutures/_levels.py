"""Binance's keys for the kernel's level scanner (connector.levels): a depthUpdate's
"b"/"a" beside "e", a REST snapshot's "bids"/"asks" beside "lastUpdateId". No I/O."""

from __future__ import annotations

import numba as nb
import numpy as np

from connector.levels import _P10, _decimal, checked_levels, fast_book, scan_book

__all__ = ["_P10", "_decimal", "checked_levels", "fast_book", "scan_depth_update", "scan_snapshot"]

_K_E = np.frombuffer(b"e", np.uint8)
_K_B = np.frombuffer(b"b", np.uint8)
_K_A = np.frombuffer(b"a", np.uint8)
_K_LAST = np.frombuffer(b"lastUpdateId", np.uint8)
_K_BIDS = np.frombuffer(b"bids", np.uint8)
_K_ASKS = np.frombuffer(b"asks", np.uint8)


@nb.njit(cache=True)
def scan_depth_update(buf, out):
    """`connector.levels.scan_book` for a `depthUpdate` frame: keys "b"/"a" beside "e" (wrapped or bare)."""
    # Constants are frozen into the compiled code: fewer arguments, cheaper dispatch.
    return scan_book(buf, _K_E, _K_B, _K_A, out, _P10)


@nb.njit(cache=True)
def scan_snapshot(buf, out):
    """`connector.levels.scan_book` for a REST depth body: keys "bids"/"asks" beside "lastUpdateId"."""
    return scan_book(buf, _K_LAST, _K_BIDS, _K_ASKS, out, _P10)
