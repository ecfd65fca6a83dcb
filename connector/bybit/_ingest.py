"""One Bybit public frame from bytes to the market ring in one compiled call. No I/O.

Why: through `market.parse_public` a frame became orjson objects and a BookFrame or
TradeFrame, then went through BookSync, RecordingBook and the Feed, and crossed from
Python into numba two or three times (the level scan, the book update, the ring write).
`ingest_frame` does it in one call with three arguments: it scans the bytes, finds the
instrument by its topic, and for the frames that make up the live stream applies and
publishes them itself, with the shared core's pieces (connector.ingest: `level_rows`,
`apply_levels_at`, `clear_book_at`; `hftlive.ipc.md_publish_at`):

* `orderbook.{depth}.{SYMBOL}` (venue_protocols.md §2.2), the transitions of BookSync's
  table (market.py) that need nothing from Python, read from and written to BookSync's
  sync cell (market.BookSync: [1, last_u, last_seq] while SYNCED):
  - snapshot, or u == 1 (the service restarted): the book cleared, then every bid level
    and every ask level applied: CLEAR and one DEPTH event each, one batch (RESET); the
    cell takes u and seq. Except SYNCED, depth 1, a snapshot with u == last_u: nothing
    (UNCHANGED, the level-1 resend);
  - SYNCED delta with u > last_u and seq >= last_seq: its levels applied, one DEPTH event
    each, one batch (APPLIED); the cell takes u and seq.
  Every other book frame (a delta before a snapshot, one dropped after a gap, a gap) is
  BookSync's: FALLBACK.
* `publicTrade.{SYMBOL}`: every trade of `data` a BUY_TRADE or SELL_TRADE event ([BY] S
  is the taker's side), each published as its own batch, as `Feed.trade` does.

Events as the checked path makes them: exch_ts a book frame's `cts` (a trade's `T`) in ns,
local_ts the receive stamp. Anything not of the exact shape below returns FALLBACK and
the caller takes the checked path (`parse_public`, BookSync, the Feed), which names what
is malformed; nothing here raises or half-applies a frame: a frame is scanned whole before
the book or the ring is touched.

Accepted: `{"topic":"<topic>",...}` with "topic" first and the topic one of the table's
(so a symbol or depth not subscribed falls back), no whitespace, keys without escapes,
the closing brace last; a book frame's "type" ("snapshot" | "delta"), "ts", "cts" and a
"data" object with "s" (the topic's symbol), "b" before "a" (arrays of `["px","qty"]`
plain decimals, `levels._decimal`: bit-equal to float(str)), "u" and "seq"; a trade
frame's "data" array of objects, each with "T", "S" ("Buy" | "Sell"), "v" and "p"
(positive plain decimals). Integers are non-negative, at most 18 digits, and times below
9e12 ms. Other keys with a string, integer, true, false or null value are skipped; a
repeated key, a nested unknown value or an empty trade list falls back.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from connector.book import CLEAR
from connector.ingest import (
    I_COLS,
    I_DIRECT,
    MAX_T_MS,
    _at,
    _dec,
    _is,
    _simple_end,
    _string_end,
    _uint_at,
    apply_levels_at,
    clear_book_at,
    key_eq,
    key_words,
    level_rows,
    row_of_key,
    scratch,
)
from hftlive.constants import BUY_EVENT, EXCH_EVENT, LOCAL_EVENT, SELL_EVENT, TRADE_EVENT
from hftlive.depth import put_event
from hftlive.ipc import RT_CAP, md_publish_at

# what ingest_frame returns as its code
FALLBACK = 0  # take the checked path
APPLIED = 1  # a delta's events out[lo:lo + n] are in the ring (n may be 0), book applied
RESET = 2  # the book reset from a snapshot (or u == 1): out[lo:lo + n] in the ring
UNCHANGED = 3  # a level-1 resend of the book held: nothing published
TRADES = 4  # out[0:n] in the ring, each its own batch

# the decoder's table: connector.ingest's columns, then these
Y_SYNC = I_COLS  # BookSync's cell: [1, last_u, last_seq] while SYNCED, else [0, 0, 0]
Y_DEPTH1 = I_COLS + 3  # 1: the book topic is depth 1 (its unchanged resends)
Y_SYM_AT = I_COLS + 4  # where the symbol starts in the book topic
TOPIC_MAX = 48
Y_BOOK_LEN = I_COLS + 5
Y_BOOK = Y_BOOK_LEN + 1  # the book topic's bytes (ingest.key_words); length 0: none
Y_TRADE_LEN = Y_BOOK + TOPIC_MAX // 8
Y_TRADE = Y_TRADE_LEN + 1  # the trade topic's bytes
Y_COLS = Y_TRADE + TOPIC_MAX // 8

_BUY_TRADE = EXCH_EVENT | LOCAL_EVENT | BUY_EVENT | TRADE_EVENT
_SELL_TRADE = EXCH_EVENT | LOCAL_EVENT | SELL_EVENT | TRADE_EVENT

_W_TOPIC = np.frombuffer(b'{"topic":"', np.uint8)
_K_TOPIC = np.frombuffer(b"topic", np.uint8)
_K_TYPE = np.frombuffer(b"type", np.uint8)
_K_TS = np.frombuffer(b"ts", np.uint8)
_K_CTS = np.frombuffer(b"cts", np.uint8)
_K_DATA = np.frombuffer(b"data", np.uint8)
_K_SEQ = np.frombuffer(b"seq", np.uint8)
_V_SNAPSHOT = np.frombuffer(b"snapshot", np.uint8)
_V_DELTA = np.frombuffer(b"delta", np.uint8)
_V_BUY = np.frombuffer(b"Buy", np.uint8)
_V_SELL = np.frombuffer(b"Sell", np.uint8)

_NO = (FALLBACK, -1, 0, 0, 0)
_NO_DATA = (-1, 0, 0, 0, 0, 0, 0)


def topic_words(topic: str) -> list[int] | None:
    """The key words of a topic for the table, or None if longer than TOPIC_MAX bytes."""
    return key_words(topic.encode(), TOPIC_MAX)


@nb.njit(cache=True, inline="always")
def _key(buf, i, end):
    """buf[i:] is `"key":`: (key's first byte, its closing quote, the value's index), or
    (-1, -1, -1)."""
    if i >= end or buf[i] != 34:
        return -1, -1, -1
    k1 = _string_end(buf, i + 1, end)
    if k1 < 0 or k1 + 2 >= end or buf[k1 + 1] != 58:  # ':'
        return -1, -1, -1
    return i + 1, k1, k1 + 2


@nb.njit(cache=True, inline="always")
def _one_byte_key(buf, k0, k1, c):
    return k1 - k0 == 1 and buf[k0] == c


@nb.njit(cache=True)
def _book_data(buf, i, end, out):
    """buf[i] == '{': an orderbook frame's data, levels into out[1:] (bids, then asks).

    Returns (index after its '}', u, seq, nb, na, s_lo, s_hi), or _NO_DATA."""
    u = seq = nb_ = na_ = s_lo = s_hi = -1
    i += 1
    while True:
        k0, k1, v = _key(buf, i, end)
        if v < 0:
            return _NO_DATA
        c = buf[v]
        if _one_byte_key(buf, k0, k1, 115):  # s
            if s_lo >= 0 or c != 34:
                return _NO_DATA
            e = _string_end(buf, v + 1, end)
            if e < 0:
                return _NO_DATA
            s_lo, s_hi, nxt = v + 1, e, e + 1
        elif _one_byte_key(buf, k0, k1, 98):  # b: Bybit sends it before a
            if nb_ >= 0 or na_ >= 0 or c != 91:
                return _NO_DATA
            nb_, nxt = level_rows(buf, v, end, out, 1)
            if nb_ < 0:
                return _NO_DATA
        elif _one_byte_key(buf, k0, k1, 97):  # a
            if na_ >= 0 or nb_ < 0 or c != 91:
                return _NO_DATA
            na_, nxt = level_rows(buf, v, end, out, 1 + nb_)
            if na_ < 0:
                return _NO_DATA
        elif _one_byte_key(buf, k0, k1, 117):  # u
            if u >= 0:
                return _NO_DATA
            u, nxt = _uint_at(buf, v, end)
        elif _is(buf, k0, k1, _K_SEQ):
            if seq >= 0:
                return _NO_DATA
            seq, nxt = _uint_at(buf, v, end)
        else:
            nxt = _simple_end(buf, v, end)
        if nxt < 0 or nxt >= end:
            return _NO_DATA
        if buf[nxt] == 125:  # '}'
            break
        if buf[nxt] != 44:
            return _NO_DATA
        i = nxt + 1
    if s_lo < 0 or nb_ < 0 or na_ < 0 or u < 0 or seq < 0:
        return _NO_DATA
    return nxt + 1, u, seq, nb_, na_, s_lo, s_hi


@nb.njit(cache=True)
def _book(buf, i, end, local_ts, tab, inst, out):
    """ingest_frame for an orderbook topic of row `inst`; buf[i] follows the topic."""
    typ = ts = cts = -1
    got = False
    u = seq = nb_ = na_ = s_lo = s_hi = 0
    while i != end:
        if buf[i] != 44:  # ','
            return _NO
        k0, k1, v = _key(buf, i + 1, end)
        if v < 0:
            return _NO
        c = buf[v]
        if _is(buf, k0, k1, _K_DATA):
            if got or c != 123:
                return _NO
            got = True
            nxt, u, seq, nb_, na_, s_lo, s_hi = _book_data(buf, v, end, out)
        elif _is(buf, k0, k1, _K_TYPE):
            if typ >= 0 or c != 34:
                return _NO
            e = _string_end(buf, v + 1, end)
            if e < 0:
                return _NO
            if _is(buf, v + 1, e, _V_SNAPSHOT):
                typ = 1
            elif _is(buf, v + 1, e, _V_DELTA):
                typ = 0
            else:
                return _NO
            nxt = e + 1
        elif _is(buf, k0, k1, _K_TS):
            if ts >= 0:
                return _NO
            ts, nxt = _uint_at(buf, v, end)
        elif _is(buf, k0, k1, _K_CTS):
            if cts >= 0:
                return _NO
            cts, nxt = _uint_at(buf, v, end)
        elif _is(buf, k0, k1, _K_TOPIC):
            return _NO  # repeated
        else:
            nxt = _simple_end(buf, v, end)
        if nxt < 0 or nxt > end:
            return _NO
        i = nxt
    if typ < 0 or ts < 0 or cts < 0 or not got or cts > MAX_T_MS:
        return _NO
    if not key_eq(buf, s_lo, s_hi, tab, inst, Y_BOOK_LEN, Y_BOOK, tab[inst, Y_SYM_AT]):
        return _NO  # data.s is not the topic's symbol: the checked parser names it
    exch_ts = cts * 1_000_000
    synced = tab[inst, Y_SYNC] != 0
    if typ == 1 or u == 1:  # [BY] any snapshot resets; u == 1: the service restarted
        if synced and tab[inst, Y_DEPTH1] != 0 and typ == 1 and u == tab[inst, Y_SYNC + 1]:
            return UNCHANGED, inst, 0, 0, exch_ts  # [BY] level 1's unchanged resend
        n = 1 + nb_ + na_
        if n > tab[inst, RT_CAP]:
            return _NO  # `publish` raises for a batch the ring cannot hold
        clear_book_at(tab, inst)
        put_event(out, 0, CLEAR, exch_ts, local_ts, 0.0, 0.0)
        apply_levels_at(tab, inst, out, 1, nb_, na_, exch_ts, local_ts)
        tab[inst, Y_SYNC + 1] = u
        tab[inst, Y_SYNC + 2] = seq
        tab[inst, Y_SYNC] = 1
        md_publish_at(tab, inst, out, 0, n)
        return RESET, inst, 0, n, exch_ts
    # a delta: applied in SYNCED when u grows and seq does not go back; else BookSync's
    if not synced or u <= tab[inst, Y_SYNC + 1] or seq < tab[inst, Y_SYNC + 2]:
        return _NO
    n = nb_ + na_
    if n > tab[inst, RT_CAP]:
        return _NO
    # [BY] size "0" deletes, an unknown price inserts, a known price updates
    apply_levels_at(tab, inst, out, 1, nb_, na_, exch_ts, local_ts)
    tab[inst, Y_SYNC + 1] = u
    tab[inst, Y_SYNC + 2] = seq
    if n > 0:
        md_publish_at(tab, inst, out, 1, n)
    return APPLIED, inst, 1, n, exch_ts


@nb.njit(cache=True)
def _trade_list(buf, i, end, out, local_ts):
    """buf[i] == '[': a publicTrade frame's data, one event per trade into out[0:].

    Returns (trades, index after its ']'), or (-1, -1)."""
    i += 1
    k = 0
    cap = out.shape[0]
    while True:
        if i >= end or buf[i] != 123 or k >= cap:  # '{'
            return -1, -1
        i += 1
        t = side = -1
        px = qty = -1.0
        while True:
            k0, k1, v = _key(buf, i, end)
            if v < 0:
                return -1, -1
            c = buf[v]
            if _one_byte_key(buf, k0, k1, 84):  # T
                if t >= 0:
                    return -1, -1
                t, nxt = _uint_at(buf, v, end)
            elif _one_byte_key(buf, k0, k1, 83):  # S, the taker's side
                if side >= 0 or c != 34:
                    return -1, -1
                e = _string_end(buf, v + 1, end)
                if e < 0:
                    return -1, -1
                if _is(buf, v + 1, e, _V_BUY):
                    side = _BUY_TRADE
                elif _is(buf, v + 1, e, _V_SELL):
                    side = _SELL_TRADE
                else:
                    return -1, -1
                nxt = e + 1
            elif _one_byte_key(buf, k0, k1, 118) or _one_byte_key(buf, k0, k1, 112):  # v, p
                if c != 34:
                    return -1, -1
                e = _string_end(buf, v + 1, end)
                if e < 0:
                    return -1, -1
                x = _dec(buf, v + 1, e)
                if x <= 0.0:
                    return -1, -1  # not plain, or not positive: the checked parser decides
                if buf[k0] == 118:
                    if qty >= 0.0:
                        return -1, -1
                    qty = x
                else:
                    if px >= 0.0:
                        return -1, -1
                    px = x
                nxt = e + 1
            else:
                nxt = _simple_end(buf, v, end)
            if nxt < 0 or nxt >= end:
                return -1, -1
            if buf[nxt] == 125:  # '}'
                break
            if buf[nxt] != 44:
                return -1, -1
            i = nxt + 1
        if t < 0 or t > MAX_T_MS or side < 0 or px <= 0.0 or qty <= 0.0:
            return -1, -1
        put_event(out, k, side, t * 1_000_000, local_ts, px, qty)
        k += 1
        i = nxt + 1
        if i >= end:
            return -1, -1
        if buf[i] == 93:  # ']'
            return k, i + 1
        if buf[i] != 44:
            return -1, -1
        i += 1


@nb.njit(cache=True)
def _trades(buf, i, end, local_ts, tab, inst, out):
    """ingest_frame for the trade topic of row `inst`; buf[i] follows the topic."""
    n = -1
    while i != end:
        if buf[i] != 44:
            return _NO
        k0, k1, v = _key(buf, i + 1, end)
        if v < 0:
            return _NO
        if _is(buf, k0, k1, _K_DATA):
            if n >= 0 or buf[v] != 91:
                return _NO
            n, nxt = _trade_list(buf, v, end, out, local_ts)
            if n < 0:
                return _NO
        elif _is(buf, k0, k1, _K_TOPIC):
            return _NO
        else:
            nxt = _simple_end(buf, v, end)  # type, ts: not read for trades
        if nxt < 0 or nxt > end:
            return _NO
        i = nxt
    if n <= 0:
        return _NO
    for k in range(n):  # one batch per trade, as Feed.trade
        md_publish_at(tab, inst, out, k, 1)
    return TRADES, inst, 0, n, out[n - 1].exch_ts


@nb.njit(cache=True)
def ingest_frame(buf, local_ts, tab):
    """One public frame; see the module docstring. Never raises.

    Args:
        buf: the frame's bytes.
        local_ts: its receive stamp, ns.
        tab: the decoder's table (a row per instrument: connector.ingest's columns, then
            the Y_* ones).

    Returns:
        (code, inst, lo, n, exch_ts): code FALLBACK (inst -1), APPLIED, RESET, UNCHANGED
        or TRADES; events (scratch)[lo:lo + n] are in the ring; exch_ts of the frame (of
        its last trade), ns.
    """
    n = len(buf)
    w = _W_TOPIC.shape[0]
    if n < w + 2 or not _at(buf, 0, n, _W_TOPIC) or buf[n - 1] != 125:
        return _NO
    t_hi = _string_end(buf, w, n)
    if t_hi < 0:
        return _NO
    out = scratch(tab)
    inst = row_of_key(buf, w, t_hi, tab, Y_BOOK_LEN, Y_BOOK)
    if inst >= 0:
        if tab[inst, I_DIRECT] == 0:
            return _NO
        return _book(buf, t_hi + 1, n - 1, local_ts, tab, inst, out)
    inst = row_of_key(buf, w, t_hi, tab, Y_TRADE_LEN, Y_TRADE)
    if inst >= 0 and tab[inst, I_DIRECT] != 0:
        return _trades(buf, t_hi + 1, n - 1, local_ts, tab, inst, out)
    return _NO
