"""One Binance market frame from bytes to the market ring in one compiled call. No I/O.

Why: per frame the connector used to cross from Python into numba two to four times
(`scan_ticker`, then `md_publish` through `ShmServer.publish`; for a diff the level
scanner, `depth_apply_levels` with 14 arguments and `md_publish`), each crossing a few
hundred ns of argument typing and unboxing, and a diff built a `DepthUpdate` dataclass
from orjson's reading of its header. `ingest_frame` does what a frame needs in one call
with four arguments: it scans the bytes, finds the instrument by its symbol, and, for
the frames that make up the live stream, applies and publishes them itself:

* bookTicker and MARKET trade (`_ticker.scan_ticker`, whose rules it keeps): events to
  the ring;
* depthUpdate of the plain shape below whose pu chains to the book's last u (Binance's
  local book step 5 [BN-OB], venue_protocols.md §1.4: the diff is applied when pu equals
  the previous diff's u; the BookSync's chain cell holds that u while SYNCED, -1
  otherwise): every bid level, then every ask level, applied to the instrument's book
  (`update_bid`/`update_ask`, as `depth_apply_levels` does) with one DEPTH event each,
  published as one batch; then the chain cell takes the diff's u.

Anything else returns FALLBACK and the caller takes the checked path (`parse_stream`,
`BookSync.on_diff`), which names what is malformed, buffers diffs while waiting for a
snapshot, and detects gaps: the scanner never raises and never decides a rule other than
the one above. A depthUpdate it accepts: the combined wrapper or bare object, no
whitespace, keys without escapes, `"e":"depthUpdate"` first (as Binance sends it; the
frame's kind is known before any scan), E, T, U, u, pu non-negative
integers (<= 18 digits; T * 1e6 fits int64), "s" a plain string, "b" then "a" arrays of
`["px","qty"]` plain decimals (`levels._decimal`: bit-equal to float(str)); other keys
with a string, integer, true, false or null value are skipped; a repeated key falls back.

The table is connector.ingest's (one row per instrument, built by the decoder with
`ingest.ingest_table`: its ring row, whether it may publish here, its book's arrays, the
scratch) with Binance's columns after it (`B_*`): the chain cell and the symbol as Binance
sends it. The level scan, the book update and the ring write are the shared core's
(`ingest.level_rows`, `apply_levels_at`, `hftlive.ipc.md_publish_at`).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from connector.binancefutures._ticker import (
    _INT,
    _STR,
    BOOK_TICKER,
    TRADE,
    scan_ticker,
)
from connector.ingest import (
    I_AK,
    I_AV,
    I_BK,
    I_BV,
    I_CAP,
    I_COLS,
    I_DF,
    I_DI,
    I_DIRECT,
    I_OUT,
    I_OUT_CAP,
    _at,
    _int,
    _int_end,
    _is,
    _string_end,
    apply_levels_at,
    key_words,
    level_rows,
    row_of_key,
    scratch,
)
from connector.ingest import MAX_T_MS as _MAX_T_MS
from hftlive.ipc import RT_CAP, md_publish_at

# what ingest_frame returns as its code
FALLBACK = 0  # take the checked path
PUBLISHED = 1  # events out[:n] are in the ring (and the book applied, for a diff)
TICKER_EVENTS = 2  # bookTicker events in out[:2], not published (a replay, a hook)
TRADE_EVENTS = 3  # a trade event in out[:1], not published

# the decoder's table (connector.ingest): a row per instrument, the shared columns (its
# ring row, I_DIRECT, its book's arrays, the scratch), then these
B_DIRECT, B_CAP, B_OUT, B_OUT_CAP = I_DIRECT, I_CAP, I_OUT, I_OUT_CAP
B_DI, B_DF, B_BK, B_BV, B_AK, B_AV = I_DI, I_DF, I_BK, I_BV, I_AK, I_AV
B_CHAIN = I_COLS  # the BookSync's chain cell: the last applied u while SYNCED, else -1
B_SYM_LEN = I_COLS + 1
B_SYM = I_COLS + 2  # the symbol's bytes, 8 a word, little-endian (ingest.key_words)
SYM_MAX = 24
B_COLS = B_SYM + SYM_MAX // 8

# the depthUpdate header's keys, in slot order
_DK = ("e", "E", "T", "s", "U", "u", "pu", "b", "a")
_D_E, _D_EV, _D_T, _D_S, _D_FIRST, _D_FINAL, _D_PREV, _D_B, _D_A = range(9)
_D_NEED = (1 << 9) - 1
_V_DEPTH_UPDATE = np.frombuffer(b"depthUpdate", np.uint8)
_W_E_DEPTH = np.frombuffer(b'"e":"depthUpdate"', np.uint8)
_W_STREAM = np.frombuffer(b'{"stream":"', np.uint8)
_W_DATA = np.frombuffer(b',"data":{', np.uint8)
_V_TRUE = np.frombuffer(b"true", np.uint8)
_V_FALSE = np.frombuffer(b"false", np.uint8)
_V_NULL = np.frombuffer(b"null", np.uint8)

_NO_DIFF = (False, 0, 0, 0, 0, 0, 0, 0, 0)


def symbol_words(wire: bytes) -> list[int] | None:
    """The B_SYM words of a symbol as sent, or None if longer than SYM_MAX bytes."""
    return key_words(wire, SYM_MAX)


@nb.njit(cache=True)
def scan_depth(buf, out):
    """A depthUpdate frame of the plain shape (module docstring): its levels' px and qty
    into out[:nb] (bids) and out[nb:nb + na] (asks); never raises.

    Returns:
        (ok, sym_lo, sym_hi, T ms, U, u, pu, nb, na); ok False: not taken, use the
        checked parser.
    """
    n = len(buf)
    if _at(buf, 0, n, _W_STREAM):  # combined stream: {"stream":"..","data":{..}}
        j = _string_end(buf, _W_STREAM.shape[0], n)
        if j < 0 or not _at(buf, j + 1, n, _W_DATA) or buf[n - 1] != 125:
            return _NO_DIFF
        i = j + 1 + _W_DATA.shape[0]
        end = n - 2
    else:
        if n < 2 or buf[0] != 123:
            return _NO_DIFF
        i = 1
        end = n - 1
    if buf[end] != 125:
        return _NO_DIFF
    lo = np.zeros(9, np.int64)
    hi = np.zeros(9, np.int64)
    kind = np.zeros(9, np.int64)
    seen = 0
    nb_ = na_ = 0
    while True:
        if i >= end or buf[i] != 34:
            return _NO_DIFF
        k1 = _string_end(buf, i + 1, end)
        if k1 < 0 or k1 + 1 >= end or buf[k1 + 1] != 58:  # ':'
            return _NO_DIFF
        slot = -1
        klen = k1 - i - 1
        c0 = buf[i + 1]
        if klen == 1:
            if c0 == 101:  # e
                slot = _D_E
            elif c0 == 69:  # E
                slot = _D_EV
            elif c0 == 84:  # T
                slot = _D_T
            elif c0 == 115:  # s
                slot = _D_S
            elif c0 == 85:  # U
                slot = _D_FIRST
            elif c0 == 117:  # u
                slot = _D_FINAL
            elif c0 == 98:  # b
                slot = _D_B
            elif c0 == 97:  # a
                slot = _D_A
        elif klen == 2 and c0 == 112 and buf[i + 2] == 117:  # pu
            slot = _D_PREV
        if slot >= 0:
            if seen & (1 << slot):
                return _NO_DIFF  # a repeated key: orjson keeps the last, leave it to it
            seen |= 1 << slot
        v = k1 + 2
        if v >= end:
            return _NO_DIFF
        c = buf[v]
        if slot == _D_B or slot == _D_A:
            if c != 91:
                return _NO_DIFF
            if slot == _D_A and not seen & (1 << _D_B):
                return _NO_DIFF  # Binance sends b first: bids are recorded first
            got, nxt = level_rows(buf, v, end, out, nb_)
            if got < 0:
                return _NO_DIFF
            if slot == _D_B:
                nb_ = got
            else:
                na_ = got
        elif c == 34:
            v_hi = _string_end(buf, v + 1, end)
            if v_hi < 0:
                return _NO_DIFF
            if slot >= 0:
                lo[slot], hi[slot], kind[slot] = v + 1, v_hi, _STR
            nxt = v_hi + 1
        elif 48 <= c <= 57:
            v_hi = _int_end(buf, v, end)
            if v_hi < 0:
                return _NO_DIFF
            if slot >= 0:
                lo[slot], hi[slot], kind[slot] = v, v_hi, _INT
            nxt = v_hi
        elif slot >= 0:
            return _NO_DIFF  # a header field of another type (or negative): checked path
        elif _at(buf, v, end, _V_TRUE) or _at(buf, v, end, _V_NULL):
            nxt = v + 4
        elif _at(buf, v, end, _V_FALSE):
            nxt = v + 5
        else:
            return _NO_DIFF  # nested or odd: the checked parser decides
        if nxt == end:
            break
        if buf[nxt] != 44:  # ','
            return _NO_DIFF
        i = nxt + 1
    if seen != _D_NEED:
        return _NO_DIFF
    if (
        kind[_D_E] != _STR
        or kind[_D_S] != _STR
        or not _is(buf, lo[_D_E], hi[_D_E], _V_DEPTH_UPDATE)
    ):
        return _NO_DIFF
    for slot in (_D_EV, _D_T, _D_FIRST, _D_FINAL, _D_PREV):
        if kind[slot] != _INT:
            return _NO_DIFF
    t_ms = _int(buf, lo[_D_T], hi[_D_T])
    if t_ms > _MAX_T_MS:
        return _NO_DIFF
    return (True, lo[_D_S], hi[_D_S], t_ms, _int(buf, lo[_D_FIRST], hi[_D_FIRST]),
            _int(buf, lo[_D_FINAL], hi[_D_FINAL]), _int(buf, lo[_D_PREV], hi[_D_PREV]), nb_,
            na_)  # fmt: skip


@nb.njit(cache=True)
def ingest_frame(buf, local_ts, tab, shift_ns):
    """One market frame; see the module docstring. Never raises.

    Args:
        buf: the frame's bytes.
        local_ts: its receive stamp, ns.
        tab: the decoder's table (a row per instrument: ring row, then B_* columns).
        shift_ns: the feed's replay shift; not 0: nothing is published here.

    Returns:
        (code, inst, n, exch_ts): code FALLBACK (inst -1), PUBLISHED, TICKER_EVENTS or
        TRADE_EVENTS; n events in the scratch (B_OUT)[:n]; exch_ts the frame's T in ns.
    """
    # one argument: a record array costs ~110 ns of dispatch, its address nothing
    out = scratch(tab)
    if _starts_depth_update(buf):  # Binance sends "e" first; a diff placed otherwise falls back
        return _diff(buf, local_ts, tab, shift_ns, out)
    kind, lo, hi, exch_ts = scan_ticker(buf, out, local_ts)
    if kind == BOOK_TICKER or kind == TRADE:
        inst = row_of_key(buf, lo, hi, tab, B_SYM_LEN, B_SYM)
        if inst < 0:
            return FALLBACK, -1, 0, 0  # the checked path: a symbol this connector does not serve
        n = 2 if kind == BOOK_TICKER else 1
        if shift_ns != 0 or tab[inst, B_DIRECT] == 0:
            return (TICKER_EVENTS if kind == BOOK_TICKER else TRADE_EVENTS), inst, n, exch_ts
        if md_publish_at(tab, inst, out, 0, n) < 0:
            return FALLBACK, -1, 0, 0  # a ring smaller than a batch: `publish` raises
        return PUBLISHED, inst, n, exch_ts
    return FALLBACK, -1, 0, 0


@nb.njit(cache=True, inline="always")
def _starts_depth_update(buf):
    """The event object (wrapped or bare) starts with "e":"depthUpdate"."""
    n = len(buf)
    if _at(buf, 0, n, _W_STREAM):
        j = _string_end(buf, _W_STREAM.shape[0], n)
        if j < 0 or not _at(buf, j + 1, n, _W_DATA):
            return False
        return _at(buf, j + 1 + _W_DATA.shape[0], n, _W_E_DEPTH)
    return _at(buf, 1, n, _W_E_DEPTH)


@nb.njit(cache=True)
def _diff(buf, local_ts, tab, shift_ns, out):
    """ingest_frame for a depthUpdate."""
    if shift_ns != 0:
        return FALLBACK, -1, 0, 0  # a replay: every diff through BookSync and the Feed
    ok, s_lo, s_hi, t_ms, _first, final, prev, nb_, na_ = scan_depth(buf, out)
    if not ok:
        return FALLBACK, -1, 0, 0
    inst = row_of_key(buf, s_lo, s_hi, tab, B_SYM_LEN, B_SYM)
    if inst < 0 or tab[inst, B_DIRECT] == 0:
        return FALLBACK, -1, 0, 0
    chain = tab[inst, B_CHAIN]
    # [BN-OB] step 5: in SYNCED (chain >= 0) a diff whose pu is the previous u is applied;
    # a duplicate, a gap or a diff while waiting for a snapshot is BookSync's to decide
    if chain < 0 or prev != chain:
        return FALLBACK, -1, 0, 0
    n = nb_ + na_
    if n > tab[inst, RT_CAP]:
        return FALLBACK, -1, 0, 0  # `publish` raises for a batch the ring cannot hold
    exch_ts = t_ms * 1_000_000
    # [BN-OB] step 6: absolute quantities, 0 removes (update_* does both); bids, then asks
    apply_levels_at(tab, inst, out, 0, nb_, na_, exch_ts, local_ts)
    tab[inst, B_CHAIN] = final
    md_publish_at(tab, inst, out, 0, n)
    return PUBLISHED, inst, n, exch_ts
