"""pybit (Bybit's official SDK), unmodified, against the Bybit emulator: only its URL
constants are pointed at the loopback ports. Where pybit and the emulator disagree, the
emulator is not wire-faithful. pybit's WebSocket clients run threads: every wait is
bounded and every client is closed in `finally`."""

from __future__ import annotations

import asyncio
import queue
import threading

import pytest

pybit_ut = pytest.importorskip("pybit.unified_trading")
import pybit._websocket_trading as pybit_trading  # noqa: E402
from pybit.exceptions import InvalidRequestError  # noqa: E402

from connector.bybit.emulator import Emulator, EmulatorConfig  # noqa: E402

KEY, SECRET = "emulator-api-key", "emulator-secret"
WAIT_S = 30.0  # a bound, not a sleep: the emulator shares this process (and its GIL) with pybit's threads


@pytest.fixture(scope="module")
def emu_urls():
    """An emulator on its own event loop thread; yields its URLs."""
    ready: queue.Queue = queue.Queue()
    stop = threading.Event()

    def serve():
        async def main():
            async with Emulator(EmulatorConfig(symbols=("BTCUSDT",))) as emu:
                # pybit records a subscription or a trade request after sending it: a reply
                # that beats it (a loaded loopback) raises KeyError in pybit's reader thread
                # (and drops the socket) or is dropped. Bybit is never that fast; the
                # emulator is given a network's latency
                emu.set_faults(stream_latency_ms=50)
                ready.put(emu.urls)
                while not stop.is_set():
                    await asyncio.sleep(0.05)  # polls the thread's stop flag

        asyncio.run(main())

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    urls = ready.get(timeout=WAIT_S)
    yield urls
    stop.set()
    t.join(WAIT_S)


@pytest.fixture
def patched(emu_urls, monkeypatch):
    host = emu_urls["rest"].removeprefix("http://")
    monkeypatch.setattr(pybit_ut, "PRIVATE_WSS", f"ws://{host}/v5/private")
    monkeypatch.setattr(pybit_ut, "PUBLIC_WSS", f"ws://{host}/v5/public/{{CHANNEL_TYPE}}")
    monkeypatch.setattr(pybit_trading, "TRADE_WSS", f"ws://{host}/v5/trade")
    return emu_urls


def http(urls, secret=SECRET):
    s = pybit_ut.HTTP(api_key=KEY, api_secret=secret, max_retries=1)
    s.endpoint = urls["rest"]
    return s


def take(q: queue.Queue, pred) -> dict:
    """The next message on `q` matching `pred`, within WAIT_S."""
    deadline = threading.Event()
    timer = threading.Timer(WAIT_S, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            try:
                m = q.get(timeout=0.1)
            except queue.Empty:
                continue
            if pred(m):
                return m
        raise AssertionError("timed out waiting for a message")
    finally:
        timer.cancel()


def test_pybit_rest(patched):
    s = http(patched)
    info = s.get_instruments_info(category="linear", symbol="BTCUSDT")
    assert info["result"]["list"][0]["lotSizeFilter"]["qtyStep"] == "0.001"
    book = s.get_orderbook(category="linear", symbol="BTCUSDT", limit=5)
    assert len(book["result"]["b"]) == 5
    assert (
        s.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]["accountType"] == "UNIFIED"
    )
    assert s.get_positions(category="linear", symbol="BTCUSDT")["retCode"] == 0
    with pytest.raises(InvalidRequestError, match="10004"):
        http(patched, secret="wrong").get_positions(category="linear", symbol="BTCUSDT")


def test_pybit_streams_and_orders(patched):
    s = http(patched)
    pub_q: queue.Queue = queue.Queue()
    priv_q: queue.Queue = queue.Queue()
    trade_q: queue.Queue = queue.Queue()
    pub = priv = tws = None
    try:
        pub = pybit_ut.WebSocket(channel_type="linear", testnet=True)
        pub.orderbook_stream(50, "BTCUSDT", pub_q.put)
        first = take(pub_q, lambda m: True)
        assert first["topic"] == "orderbook.50.BTCUSDT"
        take(pub_q, lambda m: m["ts"] > first["ts"])  # a delta, merged by pybit into its book
        priv = pybit_ut.WebSocket(
            channel_type="private", api_key=KEY, api_secret=SECRET, testnet=True
        )
        subs = _requests(patched).get("private subscribe", 0)
        priv.order_stream(priv_q.put)
        priv.execution_stream(priv_q.put)
        priv.position_stream(priv_q.put)
        # the pushes of an order placed before the venue has the subscriptions are lost,
        # on Bybit as here: wait until it has all three
        _wait(lambda: _requests(patched).get("private subscribe", 0) >= subs + 3,
              "the private subscriptions at the venue")  # fmt: skip
        bid = float(
            s.get_orderbook(category="linear", symbol="BTCUSDT", limit=1)["result"]["b"][0][0]
        )
        r = s.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit",
                          qty="0.010", price=f"{bid - 500:.2f}", orderLinkId="pb-1")  # fmt: skip
        assert r["retCode"] == 0
        take(priv_q, lambda m: m["topic"] == "order" and m["data"][0]["orderLinkId"] == "pb-1")
        take(priv_q, lambda m: m["topic"] == "position")
        s.amend_order(
            category="linear", symbol="BTCUSDT", orderLinkId="pb-1", price=f"{bid - 600:.2f}"
        )
        take(
            priv_q, lambda m: m["topic"] == "order" and m["data"][0]["price"] == f"{bid - 600:.2f}"
        )
        s.cancel_order(category="linear", symbol="BTCUSDT", orderLinkId="pb-1")
        take(priv_q, lambda m: m["topic"] == "order" and m["data"][0]["orderStatus"] == "Cancelled")
        s.place_order(
            category="linear", symbol="BTCUSDT", side="Sell", orderType="Market", qty="0.002"
        )
        e = take(priv_q, lambda m: m["topic"] == "execution")
        assert e["data"][0]["execQty"] == "0.002"
        tws = pybit_ut.WebSocketTrading(testnet=True, api_key=KEY, api_secret=SECRET)
        tws.place_order(trade_q.put, category="linear", symbol="BTCUSDT", side="Buy",
                        orderType="Limit", qty="0.010", price=f"{bid - 700:.2f}",
                        orderLinkId="pb-2")  # fmt: skip
        ack = take(trade_q, lambda m: m.get("op") == "order.create")
        assert ack["retCode"] == 0
        tws.cancel_order(trade_q.put, category="linear", symbol="BTCUSDT", orderLinkId="pb-2")
        assert take(trade_q, lambda m: m.get("op") == "order.cancel")["retCode"] == 0
    finally:
        for ws in (pub, priv, tws):
            if ws is not None:
                ws.exit()


def _requests(urls) -> dict:
    """The emulator's request counts (GET /_emulator/requests)."""
    import json
    import urllib.request

    with urllib.request.urlopen(urls["rest"] + "/_emulator/requests", timeout=WAIT_S) as r:
        return json.loads(r.read())


def _wait(cond, what: str) -> None:
    """Polls `cond()` until it holds, within WAIT_S."""
    deadline = threading.Event()
    timer = threading.Timer(WAIT_S, deadline.set)
    timer.start()
    try:
        while not cond():
            assert not deadline.wait(0.05), f"timed out waiting for {what}"
    finally:
        timer.cancel()


def test_pybit_heartbeat_is_answered_and_the_streams_live_on(patched):
    """pybit's own heartbeat: websocket-client sends a protocol ping every ping_interval and
    needs its pong within ping_timeout, and on each pong pybit sends Bybit's
    {"op": "ping"}. With a 1.5 s interval, the emulator answers several rounds on the public
    and the private stream, neither connection is dropped, and data keeps flowing."""
    q: queue.Queue = queue.Queue()
    pub = priv = None
    try:
        # websocket-client wants ping_timeout < ping_interval; 1.4 s leaves a busy machine
        # room to answer
        hb = {"ping_interval": 1.5, "ping_timeout": 1.4}
        pub = pybit_ut.WebSocket(channel_type="linear", testnet=True, **hb)
        priv = pybit_ut.WebSocket(channel_type="private", api_key=KEY, api_secret=SECRET,
                                  testnet=True, **hb)  # fmt: skip
        pub.orderbook_stream(50, "BTCUSDT", q.put)
        base = _requests(patched)

        def pinged(kind: str) -> int:
            return _requests(patched).get(f"{kind} ping", 0) - base.get(f"{kind} ping", 0)

        _wait(lambda: pinged("public") >= 3 and pinged("private") >= 3,
              "3 of pybit's pings answered on each stream")  # fmt: skip
        assert pub.is_connected() and priv.is_connected()
        while not q.empty():
            q.get_nowait()
        take(q, lambda m: m["topic"] == "orderbook.50.BTCUSDT")  # still flowing
    finally:
        for ws in (pub, priv):
            if ws is not None:
                ws.exit()
