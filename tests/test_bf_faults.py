"""Fault paths of the Binance USD-M futures adapter, end to end: the emulator and the real
connector as child processes, a real LiveBot in this process, real sockets and shared
memory on 127.0.0.1. Each fault is switched on through the emulator's control endpoint
(`emulator/faults.py`); section numbers cite venue_protocols.md.
"""

from __future__ import annotations

import itertools
import time
import urllib.error
import urllib.request

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

import tests.test_bf_connector as bfc
from connector.binancefutures.emulator.faults import Faults, garble, split_request
from connector.binancefutures.protocol import parse_stream
from connector.binancefutures.signing import sign_params
from connector.codes import PAUSED
from connector.errors import VenueProtocolError
from connector.reconnect import backoff
from hftlive import (
    ERR_BOOK_RESYNC,
    ERR_CONNECTION,
    ERR_ORDER,
    EXPIRED,
    FILLED,
    GTX,
    IOC,
    LIMIT,
    MARKET,
    NEW,
)
from hftlive.constants import INVALID_MAX, INVALID_MIN
from hftlive.depth import depth_levels
from hftlive.monitor import ConnectorView
from tests.test_bf_connector import KEY, BfConnector, Emulator, _bot, _synced, _wait

QTY = 0.02  # above the 20 USDT min notional at ~2500


# ------------------------------------------------------------------------------ helpers
@pytest.fixture
def emu(tmp_path):
    e = Emulator(tmp_path)
    yield e
    e.stop()


@pytest.fixture
def connectors():
    """Starts BfConnectors; each must stop cleanly and never log the secret."""
    made: list[BfConnector] = []
    yield made
    for c in made:
        rc = c.stop()
        assert bfc.SECRET not in c.text()
        assert rc == 0, c.text()


def _start(connectors: list, tmp_path, emu: Emulator, extra: str = "") -> BfConnector:
    c = BfConnector(tmp_path, emu, extra=extra)
    connectors.append(c)
    return c


def _levels(hbt) -> tuple[list, list]:
    """The bot's book as a strategy sees it: (tick, qty) from the best outward, crossed
    levels skipped (as BotView.depth)."""
    d = hbt.depth(0)
    bb, ba = d.best_bid_tick, d.best_ask_tick
    bt, bq = depth_levels(d.bk, d.bv, True, d.bk.shape[0])
    at, aq = depth_levels(d.ak, d.av, False, d.ak.shape[0])
    return (
        [(int(t), float(q)) for t, q in zip(bt, bq) if t <= bb],
        [(int(t), float(q)) for t, q in zip(at, aq) if t >= ba],
    )


def _venue_levels(emu: Emulator) -> tuple[list, list]:
    v = emu.book(1000)
    assert len(v["bids"]) < 1000 and len(v["asks"]) < 1000  # the whole venue book
    return tuple(
        [(round(float(p) / 0.01), float(q)) for p, q in v[side]] for side in ("bids", "asks")
    )


def _empty(hbt) -> bool:
    d = hbt.depth(0)
    return d.best_bid_tick == INVALID_MIN and d.best_ask_tick == INVALID_MAX


def _paused_book_matches(hbt, emu: Emulator, timeout: float = 15.0) -> bool:
    """Pauses the market, then waits until the bot's book equals the venue's, every level.

    Returns False if the book was cleared meanwhile (a 1 s watchdog firing on the paused
    feed); raises with the difference if it never matches."""
    emu.faults(pause_market=True)
    venue = _venue_levels(emu)
    assert venue[0] and venue[1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hbt.elapse(20_000_000)
        if _empty(hbt):
            return False
        mine = _levels(hbt)
        if mine == venue:
            return True
    bids, asks = _levels(hbt)
    raise AssertionError(
        f"bot book != venue book:\n bot   {bids[:5]} {asks[:5]} ({len(bids)}, {len(asks)})"
        f"\n venue {venue[0][:5]} {venue[1][:5]} ({len(venue[0])}, {len(venue[1])})"
    )


def _assert_book_matches(hbt, emu: Emulator) -> None:
    assert _paused_book_matches(hbt, emu)


def _logged(conn: BfConnector, *words: str) -> bool:
    """Some line of the connector's log holds every one of `words`."""
    return any(all(w in line for w in words) for line in conn.text().splitlines())


def _requests(emu: Emulator) -> dict:
    return emu.control("/_emulator/requests")


def _bad_messages(view: ConnectorView) -> int:
    return int(view.ctl.instruments[0]["n_bad_messages"])


# ------------------------------------------------------------------------------ backoff
def test_backoff_doubles_from_the_initial_delay_and_caps():
    """§1.2 [HBT]: exponential reconnect backoff; ours is 100 ms doubling to 30 s."""
    got = list(itertools.islice(backoff(), 12))
    assert got == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0, 30.0]
    assert list(itertools.islice(backoff(1.0, 3.0, 10.0), 5)) == [1.0, 3.0, 9.0, 10.0, 10.0]
    assert list(itertools.islice(backoff(0.2), 3)) == [0.2, 0.4, 0.8]  # snapshot retries
    assert next(backoff()) == 0.1  # a fresh generator is the reset after a stable link


# ------------------------------------------------------------------ the garbage switches
def test_garbage_switches_are_validated_and_garble_breaks_every_kind_of_frame():
    switches, actions = split_request({"garbage_public": 3, "garbage_market": 1})
    assert switches == {"garbage_public": 3, "garbage_market": 1} and actions == {}
    for bad in ({"garbage_public": -1}, {"garbage_market": True}, {"garbage_frames": 1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            split_request(bad)
    f = Faults(garbage_public=2)
    assert f.take("garbage_public") and f.take("garbage_public")
    assert not f.take("garbage_public") and f.garbage_public == 0

    frames = [
        {"e": "depthUpdate", "E": 1, "T": 1, "s": "ETHUSDT", "U": 5, "u": 7, "pu": 4,
         "b": [["2500.00", "1.000"]], "a": [["2500.01", "0.000"]]},
        {"e": "bookTicker", "u": 7, "s": "ETHUSDT", "b": "2500.00", "B": "1.000",
         "a": "2500.01", "A": "2.000", "T": 1, "E": 1},
        {"e": "trade", "E": 1, "T": 1, "s": "ETHUSDT", "t": 9, "p": "2500.01", "q": "0.010",
         "X": "MARKET", "m": False},
    ]  # fmt: skip
    for msg in frames:
        payload = orjson.dumps(msg)
        parse_stream(payload)  # well-formed before
        cut = garble(payload, 1)
        assert cut == payload[: len(payload) // 2]
        assert garble(payload, 2) == orjson.dumps({"e": msg["e"]})
        for bad in (cut, garble(payload, 2)):
            wrapped = b'{"stream":"ethusdt@x","data":' + bad + b"}"  # as /stream sends it
            with pytest.raises(VenueProtocolError):
                parse_stream(wrapped)


# ---------------------------------------------------------------------- 1. the watchdog
def test_silent_streams_are_dropped_reconnected_and_the_book_resyncs(tmp_path, emu, connectors):
    conn = _start(connectors, tmp_path, emu, extra="stale_after_s = 1.0")
    errors: list = []
    hbt = _bot(conn, errors)
    try:
        _wait(hbt, lambda: _synced(hbt), timeout=20, what="a synced book")
        emu.faults(pause_market=True)  # sockets stay open, nothing is sent
        # both routes are watched: /public (depth, bookTicker) and /market (trade)
        _wait(hbt, lambda: _logged(conn, "public", "silent for 1 s"), timeout=20,
              what="the public watchdog")  # fmt: skip
        _wait(hbt, lambda: _logged(conn, "market stream lost", "silent for 1 s"), timeout=20,
              what="the market watchdog")  # fmt: skip
        # the bot hears about it, and a stale book is not left standing
        _wait(hbt, lambda: any(e.kind == ERR_CONNECTION for e in errors), what="ERR_CONNECTION")
        _wait(hbt, lambda: any(e.kind == ERR_BOOK_RESYNC for e in errors), what="the reset")
        _wait(hbt, lambda: _empty(hbt), what="the book cleared")
        assert any("silent for 1 s" in e.msg for e in errors if e.kind == ERR_CONNECTION)
        _wait(hbt, lambda: conn.text().count("public stream connected") >= 2,
              timeout=20, what="a reconnect")  # fmt: skip

        emu.faults(pause_market=False)
        _wait(hbt, lambda: conn.text().count("book synced") >= 2 and _synced(hbt),
              timeout=20, what="a resync")  # fmt: skip
        # Compare with the market paused; the 1 s watchdog may clear the book first on a
        # loaded machine, then it resyncs once the market runs again and we compare again.
        for _ in range(5):
            if _paused_book_matches(hbt, emu):
                break
            emu.faults(pause_market=False)
            _wait(hbt, lambda: _synced(hbt), timeout=20, what="a resync")
        else:
            raise AssertionError("the watchdog cleared the book before every comparison")
        assert conn.proc.poll() is None
    finally:
        hbt.close()


# ------------------------------------------------------------------ 2. a dropped diff
def test_dropped_diff_is_a_gap_the_bot_is_told_and_the_book_resyncs(tmp_path, emu, connectors):
    conn = _start(connectors, tmp_path, emu)
    errors: list = []
    hbt = _bot(conn, errors)
    try:
        _wait(hbt, lambda: _synced(hbt), timeout=20, what="a synced book")
        emu.faults(drop_depth=1)  # the venue applies it, nobody receives it (§1.4 step 5)
        _wait(hbt, lambda: any(e.kind == ERR_BOOK_RESYNC for e in errors), what="ERR_BOOK_RESYNC")
        assert "depth gap (expected pu" in conn.text()
        _wait(hbt, lambda: conn.text().count("book synced") >= 2 and _synced(hbt),
              timeout=20, what="a second sync")  # fmt: skip
        assert emu.faults()["drop_depth"] == 0
        _assert_book_matches(hbt, emu)
    finally:
        hbt.close()


# -------------------------------------------------------------- 3. 429 and Retry-After
def test_429_retry_after_is_honoured_then_orders_flow_again(tmp_path, emu, connectors):
    conn = _start(connectors, tmp_path, emu)
    errors: list = []
    hbt = _bot(conn, errors)
    try:
        _wait(hbt, lambda: _synced(hbt), timeout=20, what="a synced book")
        px = round(hbt.depth(0).best_bid - 5.0, 2)  # rests as a maker if it gets through
        # 3 s rather than 2: the locally refused submit below must land inside the pause
        # even on a loaded machine
        emu.faults(http_429=1, retry_after_s=3)

        # the next REST request, our submit, gets 429 -1003: EXPIRED with the venue's code
        assert hbt.submit_buy_order(0, 1, px, QTY, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(1).status == EXPIRED
        _wait(hbt, lambda: any(e.order_id == 1 for e in errors), what="the -1003 error")
        e1 = next(e for e in errors if e.order_id == 1)
        assert (e1.kind, e1.code) == (ERR_ORDER, -1003)
        after_429 = _requests(emu)
        assert after_429["statuses"].get("429") == 1
        assert "HTTP 429" in conn.text()

        # during Retry-After the connector refuses locally: nothing reaches the venue
        refused = []
        oid = 2
        deadline = time.monotonic() + 20
        while True:
            assert time.monotonic() < deadline, "submits never worked again"
            assert hbt.submit_buy_order(0, oid, px, QTY, GTX, LIMIT, True) == 0
            if hbt.orders(0).get(oid).status != EXPIRED:
                break
            refused.append(oid)
            assert _requests(emu) == after_429
            oid += 1
            hbt.elapse(250_000_000)
        assert refused  # at least the submit right after the 429
        _wait(hbt, lambda: {e.order_id for e in errors} >= set(refused), what="the refusals")
        for e in errors:
            if e.order_id in refused:
                assert (e.kind, e.code) == (ERR_ORDER, PAUSED)

        # after the pause: the venue got exactly one more order, and it rests
        assert hbt.orders(0).get(oid).status == NEW
        after = _requests(emu)
        assert after["requests"]["POST /fapi/v1/order"] == (
            after_429["requests"]["POST /fapi/v1/order"] + 1
        )
        assert "418" not in after["statuses"]  # never banned: we kept quiet (§1.8)
        assert emu.faults()["http_429"] == 0
    finally:
        hbt.close()


# ---------------------------------------------------------------------- 4. Ed25519 keys
def test_ed25519_key_signs_every_request(tmp_path, monkeypatch, connectors):
    """§1.6: an Ed25519 (PKCS#8 PEM) secret; the emulator verifies with the same key."""
    pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        .decode()
    )
    # The helpers read the module's SECRET for both processes' environments.
    monkeypatch.setattr(bfc, "SECRET", pem)
    emu = Emulator(tmp_path)
    try:
        # a request signed with another Ed25519 key is refused: the venue really checks
        other = (
            Ed25519PrivateKey.generate()
            .private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
            .decode()
        )
        query = sign_params({"symbol": "ETHUSDT"}, other, time.time_ns() // 1_000_000, 5000)
        req = urllib.request.Request(
            f"{emu.urls['rest']}/fapi/v2/positionRisk?{query}", headers={"X-MBX-APIKEY": KEY}
        )
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert orjson.loads(e.value.read())["code"] == -1022
        before = _requests(emu)["statuses"]

        conn = _start(connectors, tmp_path, emu)
        hbt = _bot(conn)
        try:
            _wait(hbt, lambda: _synced(hbt), timeout=20, what="a synced book")
            ask = hbt.depth(0).best_ask
            assert hbt.submit_buy_order(0, 1, ask, QTY, IOC, MARKET, True) == 0
            _wait(hbt, lambda: hbt.orders(0).get(1).status == FILLED, what="the fill")
            assert hbt.position(0) == pytest.approx(QTY)
        finally:
            hbt.close()
        assert pem.splitlines()[1] not in conn.text()  # no line of the key logged
        after = _requests(emu)["statuses"]
        changed = {k for k in after if after[k] != before.get(k)}
        assert changed == {"200"}  # every request of the connector was accepted
    finally:
        for c in connectors:  # the connector stops before its venue (rc checked later)
            c.stop()
        emu.stop()


# ------------------------------------------------------- 5. malformed venue messages
def test_malformed_frames_are_counted_skipped_and_the_book_recovers(tmp_path, emu, connectors):
    conn = _start(connectors, tmp_path, emu)
    errors: list = []
    hbt = _bot(conn, errors)
    view = ConnectorView(conn.name)
    try:
        _wait(hbt, lambda: _synced(hbt), timeout=20, what="a synced book")
        assert _bad_messages(view) == 0
        emu.faults(garbage_public=4, garbage_market=2)
        _wait(hbt, lambda: _bad_messages(view) >= 6, timeout=20, what="6 bad messages")
        mark_ns = time.time_ns()
        assert _bad_messages(view) == 6  # each counted once, nothing else called bad
        assert emu.faults()["garbage_public"] == emu.faults()["garbage_market"] == 0
        text = conn.text()
        # 4 on /public and 2 on /market (the emulator's counters above are both spent)
        assert text.count("malformed market message skipped") == 6
        assert conn.proc.poll() is None
        # a garbled diff is a gap: wait for a diff sent after the garbage to be in the
        # bot's book (then any resync is done too) before comparing with the venue
        _wait(hbt, lambda: hbt.depth(0).timestamp > mark_ns and _synced(hbt), timeout=20,
              what="the book past the garbage")  # fmt: skip
        _assert_book_matches(hbt, emu)
        assert conn.proc.poll() is None
    finally:
        view.close()
        hbt.close()
