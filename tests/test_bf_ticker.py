"""The bookTicker/trade byte scanner (connector/binancefutures/_ticker.py) against the checked
path it short-cuts: `parse_stream` and the events `streams.MarketData` records from it.

Over every message of the real capture the scanner must take the fast path for each
bookTicker and MARKET trade and write exactly the checked path's events; over thousands of
damaged variants of real messages it must either write those same events or fall back,
never accept what `parse_stream` refuses."""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np
import pytest

from connector.binancefutures._ticker import BOOK_TICKER, FALLBACK, TRADE, scan_ticker
from connector.binancefutures.protocol import BookTicker, Trade, parse_stream
from connector.book import ASK_BBO, BID_BBO, BUY_TRADE, SELL_TRADE
from connector.errors import VenueProtocolError
from hftlive.layout import event_dtype

CAPTURE = Path(__file__).resolve().parents[2] / "shared/data/binancefutures/ethusdt_20240808.gz"
LOCAL_NS = 1_723_161_256_999_000_123


@functools.cache
def capture() -> tuple[bytes, ...]:
    assert CAPTURE.exists(), f"capture not found: {CAPTURE} (tests read ../shared)"
    with gzip.open(CAPTURE, "rb") as f:
        return tuple(line.rstrip(b"\n").split(b" ", 1)[1] for line in f)


def checked(raw: bytes):
    """(kind, symbol, events) the checked path gives; kind FALLBACK when it has none."""
    try:
        m = parse_stream(raw)
    except VenueProtocolError:
        return FALLBACK, None, []
    t = getattr(m, "transact_ts_ns", 0)
    if isinstance(m, BookTicker):
        return BOOK_TICKER, m.symbol, [
            (BID_BBO, t, LOCAL_NS, m.bid_px, m.bid_qty, 0, 0, 0.0),
            (ASK_BBO, t, LOCAL_NS, m.ask_px, m.ask_qty, 0, 0, 0.0),
        ]  # fmt: skip
    if isinstance(m, Trade) and m.trade_type == "MARKET":
        ev = SELL_TRADE if m.buyer_is_maker else BUY_TRADE
        return TRADE, m.symbol, [(ev, t, LOCAL_NS, m.px, m.qty, 0, 0, 0.0)]
    return FALLBACK, None, []


def fast(raw: bytes):
    out = np.zeros(2, event_dtype)
    kind, lo, hi, exch_ts = scan_ticker(raw, out, LOCAL_NS)
    n = {BOOK_TICKER: 2, TRADE: 1}.get(kind, 0)
    events = out[:n].tolist()
    assert all(e[1] == exch_ts for e in events)
    return kind, raw[lo:hi].decode().lower() if kind else None, events


def test_every_ticker_and_trade_of_the_capture_takes_the_fast_path_with_equal_events():
    counts = {BOOK_TICKER: 0, TRADE: 0, FALLBACK: 0}
    for raw in capture():
        want = checked(raw)
        got = fast(raw)
        assert got == want, raw
        counts[got[0]] += 1
    assert counts[BOOK_TICKER] > 50_000 and counts[TRADE] > 14_000  # 72% and 19% of the mix


def _damaged(raw: bytes):
    """Every truncation, every deletion of one byte, and replacements by bytes that break
    JSON or change a type, at every position."""
    for i in range(len(raw)):
        yield raw[:i]
        yield raw[:i] + raw[i + 1 :]
        for b in (b'"', b"\\", b" ", b"-", b"0", b"9", b"x", b"}", b",", b"\xc3", b"e"):
            yield raw[:i] + b + raw[i + 1 :]
        yield raw[:i] + b"1" + raw[i:]


@pytest.mark.parametrize("kind", ["bookTicker", "trade"])
def test_damaged_messages_give_the_checked_events_or_fall_back(kind):
    raw = next(r for r in capture() if f'"e":"{kind}"'.encode() in r)
    bare = raw[raw.index(b',"data":') + 8 : -1]
    n_fast = 0
    for base in (raw, bare):
        for bad in _damaged(base):
            got = fast(bad)
            if got[0] == FALLBACK:
                continue
            n_fast += 1
            want = checked(bad)
            assert got == want, bad
    assert n_fast > 100  # e.g. digits changed in a price: still the fast path


@pytest.mark.parametrize(
    "raw",
    [
        # a field of the wrong type, missing, or repeated: parse_stream names it
        b'{"e":"bookTicker","u":"1","s":"ETHUSDT","b":"1.0","B":"1","a":"2","A":"1","T":1,"E":1}',
        b'{"e":"bookTicker","u":1,"s":"ETHUSDT","b":"1.0","B":"1","a":"2","A":"1","T":1}',
        b'{"e":"bookTicker","u":1,"s":"ETHUSDT","b":1.0,"B":"1","a":"2","A":"1","T":1,"E":1}',
        b'{"e":"bookTicker","u":1,"s":"ETHUSDT","b":"1.0","B":"1","a":"2","A":"1","T":1,"E":1,"b":"x"}',
        b'{"e":"trade","E":1,"T":1,"s":"ETHUSDT","t":1,"p":"1.5","q":"1","X":"MARKET","m":1}',
        b'{"e":"trade","E":1,"T":1,"s":"ETHUSDT","t":1,"p":"1e3","q":"1","X":"MARKET","m":true}',
        b'{"e":"trade","E":1,"T":1,"s":"ETHUSDT","t":1,"p":"-1","q":"1","X":"MARKET","m":true}',
        # valid, but not the plain shape: the checked path decides
        b'{"e":"trade","E":1,"T":1,"s":"ETHUSDT","t":1,"p":"1.5","q":"1","X":"INSURANCE_FUND","m":true}',
        b'{"e":"trade","E":1,"T":1,"s":"ETH\\u0055SDT","t":1,"p":"1.5","q":"1","X":"MARKET","m":true}',
        b'{"e": "trade","E":1,"T":1,"s":"ETHUSDT","t":1,"p":"1.5","q":"1","X":"MARKET","m":true}',
        b'{"e":"trade","E":1,"T":1,"s":"ETHUSDT","t":1,"p":"1.5","q":"1","X":"MARKET","m":true,"o":{}}',
        b'{"stream":"x","data":{"e":"trade","E":1,"T":1,"s":"E","t":1,"p":"1","q":"1","X":"MARKET","m":true},"z":1}',
        b'{"e":"depthUpdate","E":1,"T":1,"s":"ETHUSDT","U":1,"u":2,"pu":0,"b":[],"a":[]}',
    ],
)
def test_what_the_scanner_does_not_take(raw):
    assert fast(raw)[0] == FALLBACK


def test_unknown_simple_fields_are_skipped():
    raw = (
        b'{"stream":"ethusdt@trade","data":{"e":"trade","E":1,"T":2,"s":"ETHUSDT","t":3,'
        b'"p":"2681.62","q":"0.061","X":"MARKET","m":false,"new":"x","n2":-5,"n3":null}}'
    )
    assert fast(raw) == checked(raw)
    assert fast(raw)[2] == [(BUY_TRADE, 2_000_000, LOCAL_NS, 2681.62, 0.061, 0, 0, 0.0)]
