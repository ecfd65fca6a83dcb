"""What every venue's compiled market ingest is built from: one @njit call per frame that
scans the raw bytes, applies depth levels to the book and writes the events into the
market ring (connector.feed's "direct rings"). No I/O.

A venue's `_ingest` module scans its own frame shapes with the byte primitives below
(plain JSON only: no whitespace, no escapes; anything else is the venue's checked
parser's to read and to name), parses level arrays with `level_rows` (the one rule for a
["px","qty"] level, connector.levels.level_pair), applies them with `apply_levels_at`
and publishes with `hftlive.ipc.md_publish_at`. Nothing here raises or decides a venue
rule: a scanner that meets anything unexpected returns "not taken" and its caller falls
back to the checked path.

The ingest table: one int64 row per instrument, passed as the one argument that carries
everything a frame may touch (a 2-D int64 array costs ~40 ns of dispatch; the arrays
apart, ~100 ns each). Its columns:

    [0, RT_COLS)              the instrument's ring table row (hftlive.ipc RT_*)
    I_DIRECT                  1: this instrument's frames may be published here
    I_DI .. I_AV, I_CAP       the addresses of its DepthBook's arrays, their hash capacity
    I_OUT, I_OUT_CAP          the decoder's event scratch (the same in every row)
    I_COLS ..                 the venue's own columns (sync state cells, keys to match)

It holds raw addresses: valid while their owners (the decoder's books and scratch, the
ShmServer's segments and counters) live, which is the connector's life.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from connector.book import RecordingBook
from connector.errors import UsageError
from connector.levels import _P10, _decimal, level_pair
from hftlive._sys import void_ptr_at
from hftlive.constants import BUY_EVENT, DEPTH_EVENT, EXCH_EVENT, LOCAL_EVENT, SELL_EVENT
from hftlive.depth import depth_clear, put_event, update_ask, update_bid
from hftlive.ipc import RT_COLS
from hftlive.layout import D_WORDS, DF_WORDS, event_dtype

I_DIRECT = RT_COLS
I_DI, I_DF, I_BK, I_BV, I_AK, I_AV = range(RT_COLS + 1, RT_COLS + 7)
I_CAP = RT_COLS + 7
I_OUT = RT_COLS + 8
I_OUT_CAP = RT_COLS + 9
I_COLS = RT_COLS + 10

_BID_DEPTH = EXCH_EVENT | LOCAL_EVENT | BUY_EVENT | DEPTH_EVENT
_ASK_DEPTH = EXCH_EVENT | LOCAL_EVENT | SELL_EVENT | DEPTH_EVENT
MAX_T_MS = 9_000_000_000_000  # a venue time in ms whose ns (* 1e6) fits int64


# ------------------------------------------------------------------- the table (Python)


def ingest_table(books: list[RecordingBook], feed, out: np.ndarray, venue_cols: int):
    """The ingest table of `books` (instruments 0..n-1), with `venue_cols` venue columns
    after I_COLS left 0, and the hook to hand each directly published batch to.

    Returns:
        (table, after, direct): `after` the core's recorder hook or None; `direct` False
        when the feed offers no rings (a hook wants each event, or no shared memory): then
        no row may publish here and the caller's frames all take the checked path.
    """
    if not books or [b.idx for b in books] != list(range(len(books))):
        # the compiled path indexes its table by instrument (row 0 holds the scratch)
        raise UsageError(f"books must be instruments 0..n-1, got {[b.idx for b in books]}")
    tab = np.zeros((len(books), I_COLS + venue_cols), np.int64)
    tab[:, I_OUT] = out.ctypes.data
    tab[:, I_OUT_CAP] = len(out)
    rings = feed.direct_rings()
    after = None
    if rings is not None:
        ring_rows, after = rings
        if ring_rows.shape != (len(books), RT_COLS):
            raise UsageError(f"ring table {ring_rows.shape} for {len(books)} books")
        tab[:, :RT_COLS] = ring_rows
    for b in books:
        row = tab[b.idx]
        d = b.book
        row[I_DI : I_AV + 1] = [a.ctypes.data for a in (d.di, d.df, d.bk, d.bv, d.ak, d.av)]
        row[I_CAP] = d.bk.shape[0]
        # a book whose levels someone listens to (the sim's matching engine) is written
        # through RecordingBook, level by level
        row[I_DIRECT] = rings is not None and type(b).on_level is RecordingBook.on_level
    return tab, after, rings is not None


def key_words(wire: bytes, max_bytes: int) -> list[int] | None:
    """`wire` as int64 words (8 bytes a word, little-endian, zero-padded to `max_bytes`)
    for a table's key columns, or None if longer than `max_bytes`."""
    if len(wire) > max_bytes:
        return None
    padded = wire.ljust(max_bytes, b"\0")
    return [
        int.from_bytes(padded[k : k + 8], "little", signed=True) for k in range(0, max_bytes, 8)
    ]


# --------------------------------------------------------- byte primitives (compiled)


@nb.njit(cache=True, inline="always")
def _at(buf, i, n, lit):
    """buf[i:] starts with the bytes of `lit`."""
    m = lit.shape[0]
    if i + m > n:
        return False
    for t in range(m):
        if buf[i + t] != lit[t]:
            return False
    return True


@nb.njit(cache=True, inline="always")
def _string_end(buf, i, n):
    """buf[i - 1] is an opening quote: index of the closing one, or -1 unless every byte
    between is printable ASCII other than a quote or a backslash."""
    while i < n:
        c = buf[i]
        if c == 34:
            return i
        if c < 32 or c > 126 or c == 92:
            return -1
        i += 1
    return -1


@nb.njit(cache=True, inline="always")
def _int_end(buf, i, n):
    """End of a JSON integer at buf[i] (-? digits, no leading zero, <= 18 digits), or -1."""
    if i < n and buf[i] == 45:  # '-'
        i += 1
    s = i
    while i < n and 48 <= buf[i] <= 57:
        i += 1
    if i == s or i - s > 18 or (buf[s] == 48 and i - s > 1):
        return -1
    return i


@nb.njit(cache=True, inline="always")
def _int(buf, lo, hi):
    v = 0
    for i in range(lo, hi):
        v = v * 10 + (int(buf[i]) - 48)  # int(): no uint8 wrap when run unjitted
    return v


@nb.njit(cache=True, inline="always")
def _dec(buf, lo, hi):
    """The decimal string buf[lo:hi] (hi: its closing quote) as float64, or -1.0
    (levels._decimal: bit-equal to float(str))."""
    m, f, j = _decimal(buf, lo, hi + 1)
    if f < 0 or j != hi:
        return -1.0
    return m / _P10[f]


@nb.njit(cache=True, inline="always")
def _is(buf, lo, hi, lit):
    return hi - lo == lit.shape[0] and _at(buf, lo, hi, lit)


_V_TRUE = np.frombuffer(b"true", np.uint8)
_V_FALSE = np.frombuffer(b"false", np.uint8)
_V_NULL = np.frombuffer(b"null", np.uint8)


@nb.njit(cache=True, inline="always")
def _simple_end(buf, v, n):
    """End of a string, integer, true, false or null value at buf[v], or -1 (anything
    else: nested, a float, odd text)."""
    c = buf[v]
    if c == 34:
        e = _string_end(buf, v + 1, n)
        return e + 1 if e >= 0 else -1
    if c == 45 or 48 <= c <= 57:
        return _int_end(buf, v, n)
    if _at(buf, v, n, _V_TRUE) or _at(buf, v, n, _V_NULL):
        return v + 4
    if _at(buf, v, n, _V_FALSE):
        return v + 5
    return -1


@nb.njit(cache=True, inline="always")
def _uint_at(buf, v, n):
    """A non-negative JSON integer (<= 18 digits) at buf[v]: (value, end), or (-1, -1)."""
    if v >= n or not 48 <= buf[v] <= 57:
        return -1, -1
    e = _int_end(buf, v, n)
    if e < 0:
        return -1, -1
    return _int(buf, v, e), e


# --------------------------------------------------------------- keys, levels, books


@nb.njit(cache=True, inline="always")
def key_eq(buf, lo, hi, tab, r, len_col, words_col, off):
    """buf[lo:hi] equals the key of row `r` (its length in column `len_col`, its bytes
    from column `words_col`, as `key_words` packs them) from byte `off` on."""
    m = hi - lo
    if tab[r, len_col] - off != m:
        return False
    for k in range(m):
        t = off + k
        if (tab[r, words_col + t // 8] >> (8 * (t % 8))) & 0xFF != buf[lo + k]:
            return False
    return True


@nb.njit(cache=True, inline="always")
def row_of_key(buf, lo, hi, tab, len_col, words_col):
    """The row of `tab` whose key (see key_eq) is buf[lo:hi], or -1."""
    if hi <= lo:
        return -1  # an empty key is no key: a row whose own did not fit has length 0
    for r in range(tab.shape[0]):
        if key_eq(buf, lo, hi, tab, r, len_col, words_col, 0):
            return r
    return -1


@nb.njit(cache=True, inline="always")
def scratch(tab):
    """The decoder's event scratch, from its address in the table."""
    return nb.carray(void_ptr_at(tab[0, I_OUT]), (tab[0, I_OUT_CAP],), event_dtype)


@nb.njit(cache=True, inline="always")
def level_rows(buf, i, n, out, row):
    """buf[i] == '['; [["px","qty"],...] (no whitespace) into out[row:]'s px and qty.

    Returns (levels, index after the closing ']'), or (-1, -1) if not that exact shape
    or out has no room."""
    k = row
    i += 1
    if i < n and buf[i] == 93:
        return 0, i + 1
    cap = out.shape[0]
    while i + 2 < n and buf[i] == 91 and buf[i + 1] == 34:  # ["
        if k >= cap:
            return -1, -1
        px, qty, j = level_pair(buf, i, n, _P10)
        if j < 0:
            return -1, -1
        out[k].px = px
        out[k].qty = qty
        k += 1
        if buf[j] == 93:
            return k - row, j + 1
        if buf[j] != 44:
            return -1, -1
        i = j + 1
    return -1, -1


@nb.njit(cache=True)
def apply_levels_at(tab, inst, out, lo, nb_, na_, exch_ts, local_ts):
    """The levels in out[lo:lo + nb_] (bids) and then out[lo + nb_:lo + nb_ + na_] (asks),
    px and qty as scanned, applied in that order to the book of row `inst`
    (update_bid/update_ask: absolute quantities, 0 removes; as depth_apply_levels), each
    made the DEPTH event recording it."""
    cap = tab[inst, I_CAP]
    di = nb.carray(void_ptr_at(tab[inst, I_DI]), (D_WORDS,), np.int64)
    df = nb.carray(void_ptr_at(tab[inst, I_DF]), (DF_WORDS,), np.float64)
    bk = nb.carray(void_ptr_at(tab[inst, I_BK]), (cap,), np.int64)
    bv = nb.carray(void_ptr_at(tab[inst, I_BV]), (cap,), np.float64)
    ak = nb.carray(void_ptr_at(tab[inst, I_AK]), (cap,), np.int64)
    av = nb.carray(void_ptr_at(tab[inst, I_AV]), (cap,), np.float64)
    for k in range(lo, lo + nb_ + na_):
        px, qty = out[k].px, out[k].qty
        if k < lo + nb_:
            update_bid(di, df, bk, bv, ak, av, px, qty, exch_ts)
            put_event(out, k, _BID_DEPTH, exch_ts, local_ts, px, qty)
        else:
            update_ask(di, df, bk, bv, ak, av, px, qty, exch_ts)
            put_event(out, k, _ASK_DEPTH, exch_ts, local_ts, px, qty)


@nb.njit(cache=True)
def clear_book_at(tab, inst):
    """Empties the book of row `inst` (DepthBook.clear)."""
    cap = tab[inst, I_CAP]
    depth_clear(nb.carray(void_ptr_at(tab[inst, I_DI]), (D_WORDS,), np.int64),
                nb.carray(void_ptr_at(tab[inst, I_BK]), (cap,), np.int64),
                nb.carray(void_ptr_at(tab[inst, I_BV]), (cap,), np.float64),
                nb.carray(void_ptr_at(tab[inst, I_AK]), (cap,), np.int64),
                nb.carray(void_ptr_at(tab[inst, I_AV]), (cap,), np.float64))  # fmt: skip
