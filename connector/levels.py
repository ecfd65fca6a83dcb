"""Depth levels, bytes to float64: a numba byte scanner and its checked fallback. No I/O.

Venues send depth levels as `[["px","qty"],...]` strings; this is the one parser of them:
each venue's package wraps `scan_book` in an @njit function with its own keys (the key
beside the arrays, the bid and ask keys). The measurements below are of USD-M futures
diffs, where it started.

Depth diffs dominate the cost of parsing: an ETHUSDT diff averages 65 levels and 1.5 kB,
some hold ~900. Measured on ethusdt_20240808.gz (6,586 diffs; one core of this 2-vCPU Xeon
box; best of 5; each row ends in a DepthUpdate):

    orjson.loads alone, levels left as lists of str (no DepthUpdate)   114k msgs/s   8.8 us
    orjson + np.array(levels, dtype=float64)                            31k msgs/s  32.2 us
    orjson + per-level float() list, then np.array                      28k msgs/s  36.0 us
    orjson + np.array(levels).astype(float64)                           14k msgs/s  71.7 us
    orjson + checked per-level float() (`checked_levels`, the fallback) 21k msgs/s  47.8 us
    numba byte scanner for levels + orjson for the header (kept)        98k msgs/s  10.2 us

The kept fast path (`fast_book` over a venue's wrapper of `scan_book`) walks the raw
bytes once, parses the level arrays straight into one float64 block, and splices them out
of the text (`"b":[]`) so orjson only parses the small header, which keeps every header
check of the venue's parser. A level string is parsed as mantissa / 10**frac only when it has <= 15
digits and no sign or exponent; then both operands are exact doubles and IEEE division
rounds once, so the value is bit-equal to float(str). Anything else (whitespace, exponents,
escapes, truncation, odd shapes) makes `fast_book` return None, and the caller falls back
to orjson + `checked_levels`, which is also where errors are reported: the scanner never
raises. Both paths return read-only (n, 2) float64 [px, qty] arrays.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import orjson

from connector.errors import VenueProtocolError


def checked_levels(v: list, key: str, ev: str) -> np.ndarray:
    """Reference level parser: [[px, qty], ...] strings -> (n, 2) float64, checked.

    Args:
        v: the decoded JSON array of field `key` of event `ev` (both only name errors).

    Raises:
        VenueProtocolError: a level is not two decimal strings, or is negative or not finite.
    """
    out = np.empty((len(v), 2))
    for k, lv in enumerate(v):
        try:
            if type(lv) is not list or len(lv) != 2:
                raise TypeError
            p, q = lv
            if type(p) is not str or type(q) is not str:
                raise TypeError
            out[k, 0] = float(p)
            out[k, 1] = float(q)
        except (TypeError, ValueError):
            msg = f"{ev}: {key}[{k}] must be [price, qty] strings, got {lv!r:.60}"
            raise VenueProtocolError(msg) from None
    if not (np.isfinite(out).all() and (out >= 0.0).all()):
        raise VenueProtocolError(f"{ev}: field {key!r} holds a negative or non-finite level")
    out.flags.writeable = False
    return out


# ---------------------------------------------------------- fast path (numba, no raising)
_P10 = np.array([10.0**k for k in range(16)])  # exact doubles


@nb.njit(cache=True, inline="always")
def _decimal(buf, i, n):
    """Digits[.digits] from buf[i] up to a closing quote -> (mantissa, frac, quote idx).

    Returns frac = -1 when the text is not that plain shape or has more than 15 digits.
    """
    m = 0
    j = i
    while j < n and 48 <= buf[j] <= 57:
        m = m * 10 + (int(buf[j]) - 48)  # int(): no uint8 wrap when run unjitted
        j += 1
    int_digits = j - i
    frac = 0
    if j < n and buf[j] == 46:  # '.'
        j += 1
        s = j
        while j < n and 48 <= buf[j] <= 57:
            m = m * 10 + (int(buf[j]) - 48)  # int(): no uint8 wrap when run unjitted
            j += 1
        frac = j - s
        if frac == 0:
            return 0, -1, -1
    if int_digits == 0 or int_digits + frac > 15 or j >= n or buf[j] != 34:
        return 0, -1, -1
    return m, frac, j


@nb.njit(cache=True, inline="always")
def level_pair(buf, i, n, p10):
    """buf[i:] starts with one level, ["px","qty"] (no whitespace): (px, qty, index of
    what follows its ']'), or (0.0, 0.0, -1) if not that exact shape. The one rule for a
    level: _scan_levels here and a venue's own compiled ingest both call it."""
    m, f, j = _decimal(buf, i + 2, n)
    if f < 0 or j + 2 >= n or buf[j + 1] != 44 or buf[j + 2] != 34:  # ","
        return 0.0, 0.0, -1
    px = m / p10[f]
    m, f, j = _decimal(buf, j + 3, n)
    if f < 0 or j + 2 >= n or buf[j + 1] != 93:  # ]
        return 0.0, 0.0, -1
    return px, m / p10[f], j + 2


@nb.njit(cache=True)
def _scan_levels(buf, i, n, out, row, p10):
    """buf[i] == '['; parses [["px","qty"],...] (no whitespace) into out[row:].

    Returns (levels, index after the closing ']'), or (-1, -1) if not that exact shape.
    """
    k = row
    i += 1
    if i < n and buf[i] == 93:
        return 0, i + 1
    while i + 2 < n and buf[i] == 91 and buf[i + 1] == 34:  # ["
        px, qty, j = level_pair(buf, i, n, p10)
        if j < 0:
            return -1, -1
        out[k, 0] = px
        out[k, 1] = qty
        k += 1
        if buf[j] == 93:
            return k - row, j + 1
        if buf[j] != 44:
            return -1, -1
        i = j + 1
    return -1, -1


@nb.njit(cache=True, inline="always")
def _is_key(buf, s, e, key):
    if e - s != key.shape[0]:
        return False
    for t in range(e - s):
        if buf[s + t] != key[t]:
            return False
    return True


@nb.njit(cache=True)
def scan_book(buf, anchor, kb, ka, out, p10):
    """Finds keys `kb`/`ka` with array values at the object depth of key `anchor`.

    Parses both level arrays into `out` (the first found from row 0, the other after it)
    and returns (ok, b_lo, b_hi, b_row, nb, a_lo, a_hi, a_row, na) with [lo, hi) the byte
    span of each array. ok is False on anything unexpected; the caller then falls back.
    """
    n = buf.shape[0]
    depth = 0
    anchor_depth = -1
    b = np.full(4, -1)  # lo, hi, row, depth
    a = np.full(4, -1)
    nb_ = na_ = 0
    row = 0
    i = 0
    while i < n:
        c = buf[i]
        if c == 34:  # a string: key if followed by ':'
            s = i + 1
            j = s
            while j < n and buf[j] != 34:
                j += 2 if buf[j] == 92 else 1  # skip escaped chars
            if j >= n:
                return False, 0, 0, 0, 0, 0, 0, 0, 0
            i = j + 1
            while i < n and (buf[i] == 32 or buf[i] == 9 or buf[i] == 10 or buf[i] == 13):
                i += 1
            if i >= n or buf[i] != 58:
                continue
            i += 1
            while i < n and (buf[i] == 32 or buf[i] == 9 or buf[i] == 10 or buf[i] == 13):
                i += 1
            if _is_key(buf, s, j, anchor):
                anchor_depth = depth
                continue
            is_b = _is_key(buf, s, j, kb)
            if i < n and buf[i] == 91 and (is_b or _is_key(buf, s, j, ka)):
                slot = b if is_b else a
                if slot[0] >= 0:  # duplicate key
                    return False, 0, 0, 0, 0, 0, 0, 0, 0
                k, end = _scan_levels(buf, i, n, out, row, p10)
                if k < 0:
                    return False, 0, 0, 0, 0, 0, 0, 0, 0
                slot[0], slot[1], slot[2], slot[3] = i, end, row, depth
                if is_b:
                    nb_ = k
                else:
                    na_ = k
                row += k
                i = end
            continue
        if c == 123 or c == 91:
            depth += 1
        elif c == 125 or c == 93:
            depth -= 1
        i += 1
    ok = b[0] >= 0 and a[0] >= 0 and b[3] == anchor_depth and a[3] == anchor_depth
    return ok, b[0], b[1], b[2], nb_, a[0], a[1], a[2], na_


def fast_book(raw: bytes, scan):
    """Levels of `raw` by `scan` (a venue's @njit wrapper of `scan_book` with its keys), never raising.

    Returns:
        (header, bids, asks): `header` is orjson's reading of `raw` with both level arrays
        spliced to `[]` (the caller checks it is the event it expects and that the splice
        hit its own keys), `bids`/`asks` read-only (n, 2) float64; or None to fall back.
    """
    out = np.empty((len(raw) // 9 + 2, 2))  # a level takes >= 9 bytes: ["1","1"]
    ok, b_lo, b_hi, b_row, nb_, a_lo, a_hi, a_row, na_ = scan(np.frombuffer(raw, np.uint8), out)
    if not ok:
        return None
    if b_lo < a_lo:
        doc = b"".join((raw[:b_lo], b"[]", raw[b_hi:a_lo], b"[]", raw[a_hi:]))
    else:
        doc = b"".join((raw[:a_lo], b"[]", raw[a_hi:b_lo], b"[]", raw[b_hi:]))
    try:
        m = orjson.loads(doc)
    except orjson.JSONDecodeError:
        return None
    out.flags.writeable = False
    return m, out[b_row : b_row + nb_], out[a_row : a_row + na_]
