"""End to end on the Binance USD-M futures adapter: the loopback emulator and the real
connector as child processes, a real LiveBot in this process, real sockets and shared
memory. No internet: everything listens on 127.0.0.1."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from connector import codes
from connector.binancefutures.emulator import client_url_keys
from hftlive import (
    CANCELED,
    CONNECTION_RESTORED,
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
    Instrument,
    LiveBot,
)
from hftlive.constants import REJECT_POST_ONLY, REJECT_UNKNOWN_ORDER
from hftlive.monitor import ConnectorView
from hftlive.shm import SharedMemoryError
from tests.conftest import book_synced as _synced
from tests.conftest import (
    exit_error,
    stop_process,
    wait_connector_ends_run,
    wait_session,
    wait_until,
)
from tests.conftest import wait_bot as _wait

ROOT = Path(__file__).resolve().parent.parent
KEY, SECRET = "test-api-key", "test-secret-not-logged"
_names = itertools.count()

CONFIG = """
[[instruments]]
symbol = "ethusdt"

[connector]
snapshot_interval_ms = 50
{connector_extra}

[risk]
max_orders_per_second = 1000

[binancefutures]
{url_keys}
api_key_env = "BFT_API_KEY"
secret_env = "BFT_SECRET"
order_entry = "{order_entry}"
recv_window_ms = 5000
client_order_prefix = "t"
{extra}
"""


def config_text(urls: dict, extra: str = "", order_entry: str = "rest",
                connector_extra: str = "") -> str:  # fmt: skip
    return CONFIG.format(url_keys=client_url_keys(urls), extra=extra, order_entry=order_entry,
                         connector_extra=connector_extra)  # fmt: skip


class Emulator:
    """`python -m connector.binancefutures.emulator` in a child process."""

    def __init__(self, tmp_path: Path, *args: str):
        self.log = open(tmp_path / "emulator.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "connector.binancefutures.emulator", "--port", "0",
             "--data", "none", "--symbols", "ethusdt", "--api-key", KEY, "--secret-env",
             "BFT_SECRET", *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log,
            env={**os.environ, "BFT_SECRET": SECRET},
        )  # fmt: skip
        self.urls = json.loads(self.proc.stdout.readline())

    def control(self, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.urls["rest"] + path, data=data,
                                     method="POST" if data else "GET")  # fmt: skip
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def faults(self, **switches):
        return self.control("/_emulator/faults", switches)

    def book(self, limit: int = 1000) -> dict:
        return self.control(f"/_emulator/book?symbol=ethusdt&limit={limit}")

    def stop(self) -> None:
        stop_process(self.proc, timeout=10)
        self.log.close()


class BfConnector:
    """`python -m connector --connector binancefutures` with its key in the environment."""

    def __init__(self, tmp_path: Path, emu: Emulator, extra: str = "", order_entry: str = "rest",
                 connector_extra: str = "", env: dict | None = None):  # fmt: skip
        self.name = f"bf{os.getpid()}x{next(_names)}"
        self.cfg = tmp_path / f"{self.name}.toml"
        self.cfg.write_text(config_text(emu.urls, extra, order_entry, connector_extra))
        self.log = tmp_path / f"{self.name}.log"
        self._logf = open(self.log, "ab")
        env = {**os.environ, "BFT_API_KEY": KEY, "BFT_SECRET": SECRET, **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "connector", "--name", self.name, "--connector",
             "binancefutures", "--config", str(self.cfg), "--log-level", "INFO"],
            cwd=ROOT, stdout=self._logf, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        rc = stop_process(self.proc, timeout=15)
        self._logf.close()
        return rc


@pytest.fixture
def emu(tmp_path):
    e = Emulator(tmp_path)
    yield e
    e.stop()


@pytest.fixture
def conn(tmp_path, emu):
    c = BfConnector(tmp_path, emu)
    yield c
    rc = c.stop()
    assert SECRET not in c.text()  # secrets never logged
    assert rc == 0, c.text()


def _bot(conn: BfConnector, errors: list | None = None, timeline: list | None = None):
    """A bot on `conn`; `errors` gets its LiveErrors; `timeline` gets its errors and its
    order updates ((order_id, status) tuples) in the order the bot received them."""
    b = LiveBot.builder().register(Instrument(conn.name, "ethusdt", 0.01, 0.001))
    b.connect_timeout(60.0)
    if errors is not None or timeline is not None:

        def on_error(e):
            for seen in (errors, timeline):
                if seen is not None:
                    seen.append(e)

        b.error_handler(on_error)
    if timeline is not None:
        b.order_recv_hook(lambda prev, new: timeline.append((int(new["order_id"]),
                                                             int(new["status"]))))  # fmt: skip
    return b.build()


def _wait_session(hbt, conn: BfConnector) -> None:
    wait_session(hbt, conn.name)


def _assert_book_equal(hbt, emu: Emulator, levels: int = 1000) -> None:
    """With the market paused, the bot's book equals the venue's, level for level."""
    venue = emu.book(levels)
    d = hbt.depth(0)
    assert venue["bids"] and venue["asks"]
    assert d.best_bid == pytest.approx(float(venue["bids"][0][0]))
    assert d.best_ask == pytest.approx(float(venue["asks"][0][0]))
    for side, qty_at in (("bids", d.bid_qty_at_tick), ("asks", d.ask_qty_at_tick)):
        for px, qty in venue[side]:
            assert qty_at(round(float(px) / 0.01)) == pytest.approx(float(qty)), (side, px)


def _book_equal(hbt, emu: Emulator, levels: int = 1000) -> bool:
    """_assert_book_equal's comparison, as a condition to wait for."""
    venue = emu.book(levels)
    d = hbt.depth(0)
    if not (venue["bids"] and venue["asks"]):
        return False
    same = d.best_bid == pytest.approx(float(venue["bids"][0][0])) and (
        d.best_ask == pytest.approx(float(venue["asks"][0][0]))
    )
    for side, qty_at in (("bids", d.bid_qty_at_tick), ("asks", d.ask_qty_at_tick)):
        for px, qty in venue[side]:
            same = same and qty_at(round(float(px) / 0.01)) == pytest.approx(float(qty))
    return same


def _paused_and_settled(hbt, emu: Emulator) -> None:
    """Pauses the market and waits until its last batch (the 500 ms depth streams flush it
    late) has reached the bot, i.e. until the bot's book equals the paused venue's."""
    emu.faults(pause_market=True)
    _wait(hbt, lambda: _book_equal(hbt, emu), what="the bot's book to settle on the venue's")


def test_book_syncs_to_the_venue_book(conn, emu):
    hbt = _bot(conn)
    try:
        _wait(hbt, lambda: _synced(hbt), what="a synced book")
        hbt.elapse(300_000_000)  # some diffs on top of the snapshot
        _paused_and_settled(hbt, emu)
        _assert_book_equal(hbt, emu)
    finally:
        hbt.close()


def test_depth_gap_tells_the_bot_and_resyncs(conn, emu):
    errors = []
    hbt = _bot(conn, errors)
    try:
        _wait(hbt, lambda: _synced(hbt), what="a synced book")
        emu.faults(corrupt_pu=1)
        _wait(hbt, lambda: any(e.kind == ERR_BOOK_RESYNC for e in errors), what="ERR_BOOK_RESYNC")
        assert "depth gap" in conn.text()
        _wait(hbt, lambda: conn.text().count("book synced") >= 2, what="a second sync")
        hbt.elapse(200_000_000)
        _paused_and_settled(hbt, emu)
        _assert_book_equal(hbt, emu)
    finally:
        hbt.close()


@pytest.mark.parametrize("order_entry", ["rest", "ws"])
def test_order_lifecycle_submit_modify_cancel_fill_and_rejects(tmp_path, emu, order_entry):
    conn = BfConnector(tmp_path, emu, order_entry=order_entry)
    errors = []
    hbt = None
    try:
        hbt = _bot(conn, errors)
        _wait(hbt, lambda: _synced(hbt), what="a synced book")
        if order_entry == "ws":
            assert "WebSocket API connected" in conn.text()
        d = hbt.depth(0)
        bid, ask = d.best_bid, d.best_ask
        qty = 0.02  # above the 20 USDT min notional at ~2500

        # submit -> NEW
        px = round(bid - 5.0, 2)
        assert hbt.submit_buy_order(0, 1, px, qty, GTX, LIMIT, True) == 0
        o = hbt.orders(0).get(1)
        assert o.status == NEW and o.price_tick == round(px / 0.01) and o.qty == qty

        # modify -> still NEW at the new price
        px2 = round(bid - 6.0, 2)
        assert hbt.modify(0, 1, px2, qty, True) == 0
        o = hbt.orders(0).get(1)
        assert o.status == NEW and o.price_tick == round(px2 / 0.01)

        # cancel -> CANCELED
        assert hbt.cancel(0, 1, True) == 0
        assert hbt.orders(0).get(1).status == CANCELED

        # a MARKET buy fills as taker: FILLED, position and fee from ORDER_TRADE_UPDATE
        assert hbt.submit_buy_order(0, 2, ask, qty, IOC, MARKET, True) == 0
        _wait(hbt, lambda: hbt.orders(0).get(2).status == FILLED, what="the market fill")
        assert hbt.position(0) == pytest.approx(qty)
        sv = hbt.state_values(0)
        assert sv.num_trades >= 1 and sv.fee > 0

        # cancel of a filled order is refused by the connector (it knows the order ended;
        # the raw code is the connector's own, not Binance's -2011), the order stays FILLED
        n_err = len(errors)
        assert hbt.cancel(0, 2, True) == 0
        assert hbt.orders(0).get(2).status == FILLED
        _wait(hbt, lambda: len(errors) > n_err, what="the unknown-order error")
        assert errors[-1].kind == ERR_ORDER and errors[-1].code == codes.UNKNOWN_ORDER
        assert errors[-1].reason == REJECT_UNKNOWN_ORDER

        # a post-only order that would take: -5022 -> EXPIRED and the bot's error_handler
        d = hbt.depth(0)
        cross = round(d.best_ask + 1.0, 2)
        assert hbt.submit_buy_order(0, 3, cross, qty, GTX, LIMIT, True) == 0
        _wait(hbt, lambda: any(e.code == -5022 for e in errors), what="the -5022 error")
        assert next(e for e in errors if e.code == -5022).reason == REJECT_POST_ONLY
        assert hbt.orders(0).get(3).status == EXPIRED
        e = next(e for e in errors if e.code == -5022)
        assert e.kind == ERR_ORDER and e.order_id == 3

        # the venue refuses for margin: -2019 -> EXPIRED with the venue's code
        emu.faults(reject_orders=[-2019])
        assert hbt.submit_buy_order(0, 4, round(bid - 5.0, 2), qty, GTX, LIMIT, True) == 0
        _wait(hbt, lambda: any(e.code == -2019 for e in errors), what="the -2019 error")
        assert hbt.orders(0).get(4).status == EXPIRED

        # partial fill: an IOC sell for more than the best bid holds, on a paused market,
        # takes that level and expires the rest (IOC), the fill reported before the end
        _paused_and_settled(hbt, emu)
        d = hbt.depth(0)
        top_px, top_qty = d.best_bid, d.bid_qty_at_tick(d.best_bid_tick)
        big = round(top_qty + 0.5, 3)
        pos0, n0 = hbt.position(0), hbt.state_values(0).num_trades
        assert hbt.submit_sell_order(0, 5, top_px, big, IOC, LIMIT, True) == 0
        _wait(hbt, lambda: hbt.orders(0).get(5).status == EXPIRED, what="the IOC to end")
        o = hbt.orders(0).get(5)
        assert o.exec_price_tick == d.best_bid_tick
        assert o.leaves_qty == pytest.approx(big - top_qty)  # the part the IOC let expire
        assert hbt.position(0) == pytest.approx(pos0 - top_qty)
        assert hbt.state_values(0).num_trades == n0 + 1
        assert hbt.position(0) == pytest.approx(_venue_position(emu))
    finally:
        if hbt is not None:
            hbt.close()
        assert conn.stop() == 0, conn.text()
    assert SECRET not in conn.text()
    # the order journal: each event of order 1 once, with the venue's ids (one grep)
    one = [ln for ln in conn.text().splitlines() if " order bot=" in ln and " id=1 " in ln]
    assert [ln.split(" ethusdt ")[1].split()[0] for ln in one] == [
        "submit", "key=1", "modify", "key=1", "cancel", "key=1"]  # fmt: skip
    assert all(re.search(r"client=t\w+-1 venue=\d+ ", ln) for ln in one[1::2]), one


def _venue_get(emu: Emulator, path: str):
    """A signed GET on the emulator for ETHUSDT, with the test key: the venue's own view."""
    from connector.binancefutures.signing import sign_params

    q = sign_params({"symbol": "ETHUSDT"}, SECRET, int(time.time() * 1000), 5000)
    req = urllib.request.Request(f"{emu.urls['rest']}{path}?{q}",
                                 headers={"X-MBX-APIKEY": KEY})  # fmt: skip
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def _venue_position(emu: Emulator) -> float:
    """The emulator account's position (its own positionRisk)."""
    return float(_venue_get(emu, "/fapi/v2/positionRisk")[0]["positionAmt"])


def test_a_bot_that_leaves_is_flattened_at_the_venue_with_reduce_only_orders(tmp_path, emu):
    conn = BfConnector(tmp_path, emu, connector_extra="flatten_on_shutdown = true")
    hbt = None
    try:
        hbt = _bot(conn)
        _wait(hbt, lambda: _synced(hbt), what="a synced book")
        assert hbt.submit_buy_order(0, 1, hbt.depth(0).best_ask, 0.02, IOC, MARKET, True) == 0
        _wait(hbt, lambda: hbt.orders(0).get(1).status == FILLED, what="the market fill")
        assert _venue_position(emu) == pytest.approx(0.02)
        hbt.close()
        hbt = None
        wait_until(lambda: "flatten: bot" in conn.text() and " is flat" in conn.text(), 30,
                   "the flatten")  # fmt: skip
        assert _venue_position(emu) == pytest.approx(0.0, abs=1e-12)
        assert "reduce-only IOC" in conn.text()
    finally:
        if hbt is not None:
            hbt.close()
        assert conn.stop() == 0, conn.text()


def test_config_section_is_checked_naming_key_and_file(tmp_path):
    from connector.config import load_config
    from connector.errors import ConfigError

    urls = {k: "http://127.0.0.1:9" for k in ("rest", "ws_public", "ws_market", "ws_private",
                                              "ws_api")}  # fmt: skip
    good = config_text(urls, "", "rest")
    for text, words in (
        (good + "typo_key = 1\n", ["binancefutures.typo_key"]),
        (good.replace('order_entry = "rest"', 'order_entry = "fix"'), ["order_entry"]),
        (good.replace("recv_window_ms = 5000", "recv_window_ms = 0"), ["recv_window_ms"]),
    ):
        p = tmp_path / "bf.toml"
        p.write_text(text)
        with pytest.raises(ConfigError) as e:
            load_config(p, "binancefutures")
        for w in [*words, str(p)]:
            assert w in str(e.value)
    p.write_text(good.replace('api_key_env = "BFT_API_KEY"\n', ""))
    with pytest.raises(ConfigError, match="missing required key binancefutures.api_key_env"):
        load_config(p, "binancefutures")


def test_secret_from_a_file_that_only_its_owner_can_read(tmp_path, monkeypatch):
    from connector.binancefutures.client import credentials
    from connector.config import load_config
    from connector.errors import ConfigError

    urls = dict.fromkeys(("rest", "ws_public", "ws_market", "ws_private", "ws_api"), "http://x")
    text = config_text(urls, "", "ws")
    monkeypatch.setenv("BFT_API_KEY", KEY)
    secret = tmp_path / "bf.secret"
    secret.write_text(SECRET + "\n")
    p = tmp_path / "bf.toml"
    p.write_text(text.replace('secret_env = "BFT_SECRET"', 'secret_file = "bf.secret"'))
    c = load_config(p, "binancefutures").section
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others; chmod 600"):
        credentials(c, str(p))
    secret.chmod(0o600)
    creds = credentials(c, str(p))  # relative to the config's folder; newline stripped
    assert creds.secret == SECRET and creds.kind == "HMAC" and SECRET not in repr(creds)
    p.write_text(text.replace('secret_env = "BFT_SECRET"', 'secret_file = "none"'))
    with pytest.raises(ConfigError, match="No such file"):
        credentials(load_config(p, "binancefutures").section, str(p))
    p.write_text(text + 'secret_file = "bf.secret"\n')
    with pytest.raises(ConfigError, match="exactly one of secret_env and secret_file"):
        load_config(p, "binancefutures")


@pytest.mark.parametrize("order_entry", ["rest", "ws"])
def test_listen_key_expiry_reconnects_and_a_lost_ack_is_resolved_not_resent(
    tmp_path, emu, order_entry
):
    conn = BfConnector(tmp_path, emu, extra="request_timeout_s = 1.0", order_entry=order_entry)
    hbt = None
    try:
        hbt = _bot(conn)
        _wait(hbt, lambda: _synced(hbt), what="a synced book")
        qty = 0.02

        # listenKeyExpired -> a new key and a new user stream; fills still arrive
        emu.faults(expire_listen_keys=True)
        _wait(hbt, lambda: conn.text().count("user data stream connected") >= 2,
              what="the user stream back")  # fmt: skip
        # connected again once reconciled: orders sent before that are refused (NOT_READY)
        _wait_session(hbt, conn)
        assert "listenKeyExpired" in conn.text()
        ask = hbt.depth(0).best_ask
        assert hbt.submit_buy_order(0, 1, ask, qty, IOC, MARKET, True) == 0
        _wait(hbt, lambda: hbt.orders(0).get(1).status == FILLED, what="the fill")
        assert hbt.position(0) == pytest.approx(qty)

        # the venue executes the order but the reply never comes: the connector asks,
        # once, and the request concludes without a second order being sent
        emu.faults(lose_acks=1)
        px = round(hbt.depth(0).best_bid - 5.0, 2)
        assert hbt.submit_buy_order(0, 2, px, qty, GTX, LIMIT, False) == 0
        _wait(hbt, lambda: "outcome unknown" in conn.text(), what="the timeout")
        _wait(hbt, lambda: int(hbt.orders(0).get(2).req) == 0, what="the request to conclude")
        assert hbt.orders(0).get(2).status == NEW
        assert conn.text().count("outcome unknown") == 1
        assert hbt.cancel(0, 2, True) == 0
        assert hbt.orders(0).get(2).status == CANCELED
    finally:
        if hbt is not None:
            hbt.close()
        assert conn.stop() == 0, conn.text()


@pytest.mark.parametrize("outage", ["disconnect", "listen_key_expired"])
def test_fills_lost_with_the_user_stream_are_recovered_once(tmp_path, emu, outage):
    """The venue fills orders while their user-stream events are lost and the stream then
    drops (or its listenKey expires): after the reconnect the connector reads the missing
    fills from userTrades; none is lost, none counted twice, no order sent twice, and the
    bot's position equals the venue's."""
    conn = BfConnector(tmp_path, emu)
    errors = []
    timeline = []
    hbt = None
    try:
        hbt = _bot(conn, errors, timeline)
        _wait(hbt, lambda: _synced(hbt), what="a synced book")
        qty = 0.02
        # a resting order, and two MARKET orders filled while the user stream loses events
        d = hbt.depth(0)
        assert hbt.submit_buy_order(0, 1, round(d.best_bid - 5.0, 2), qty, GTX, LIMIT, True) == 0
        emu.faults(lose_user_events=1000)
        assert hbt.submit_buy_order(0, 2, d.best_ask, qty, IOC, MARKET, True) == 0
        assert hbt.submit_sell_order(0, 3, d.best_bid, 2 * qty, IOC, MARKET, True) == 0
        # the replies say FILLED, but no fill has arrived: the orders wait for their fills
        assert hbt.orders(0).get(2).status == NEW and hbt.position(0) == 0
        if outage == "disconnect":
            emu.faults(lose_user_events=0, disconnect="private")
        else:
            emu.faults(lose_user_events=0, expire_listen_keys=True)
        _wait(hbt, lambda: hbt.orders(0).get(3).status == FILLED, what="the recovered fills")
        assert hbt.orders(0).get(2).status == FILLED
        assert hbt.orders(0).get(1).status == NEW  # reconciled, unchanged
        assert hbt.position(0) == pytest.approx(-qty)
        assert hbt.position(0) == pytest.approx(_venue_position(emu))
        sv = hbt.state_values(0)
        n_trades = sv.num_trades
        assert n_trades >= 2 and sv.fee > 0
        assert "recovered from userTrades" in conn.text()
        # the bots were told of the loss, then that all is well again, in that order; the
        # connector tells them after it has delivered the recovered fills, so wait for it
        _wait(hbt, lambda: CONNECTION_RESTORED in _conn_codes(errors), what="CONNECTION_RESTORED")
        conn_events = _conn_codes(errors)
        assert conn_events[-1] == CONNECTION_RESTORED and 0 in conn_events
        # "all is well" comes after the recovered fills, never before them
        restored = max(i for i, x in enumerate(timeline) if not isinstance(x, tuple)
                       and x.kind == ERR_CONNECTION and x.code == CONNECTION_RESTORED)  # fmt: skip
        assert {(2, FILLED), (3, FILLED)} <= set(timeline[:restored])
        # fills after the reconnect flow from the stream again, and nothing is doubled
        assert hbt.submit_buy_order(0, 4, hbt.depth(0).best_ask, qty, IOC, MARKET, True) == 0
        _wait(hbt, lambda: hbt.orders(0).get(4).status == FILLED, what="a streamed fill")
        hbt.elapse(300_000_000)
        assert hbt.position(0) == pytest.approx(0.0, abs=1e-9)
        assert hbt.position(0) == pytest.approx(_venue_position(emu), abs=1e-9)
        assert emu.control("/_emulator/requests")["requests"]["POST /fapi/v1/order"] == 4
        view = ConnectorView(conn.name)
        try:  # the account position the connector publishes is the venue's
            _wait(hbt, lambda: abs(view.instruments()[0]["account_position"]) < 1e-9,
                  what="the account position")  # fmt: skip
            assert view.instruments()[0]["connected"]  # reconciled and back
        finally:
            view.close()
    finally:
        if hbt is not None:
            hbt.close()
        assert conn.stop() == 0, conn.text()


def _conn_codes(errors) -> list[int]:
    return [e.code for e in errors if e.kind == ERR_CONNECTION]


def test_new_orders_are_throttled_before_the_venues_order_limit(tmp_path):
    """With ORDERS 10 per 10 s (from exchangeInfo), a burst of 12 submits sends 9 (90 %)
    and refuses 3 locally with THROTTLED; the venue never answers 429 or 418."""
    from connector.codes import THROTTLED

    emu = Emulator(tmp_path, "--orders-10s", "10")
    conn = BfConnector(tmp_path, emu)
    errors = []
    hbt = None
    try:
        hbt = _bot(conn, errors)
        _wait(hbt, lambda: _synced(hbt), what="a synced book")
        assert "orders 10/10s" in conn.text()
        while time.time() % 10 > 4:  # the burst stays inside one 10 s window
            hbt.elapse(50_000_000)
        px = round(hbt.depth(0).best_bid - 20.0, 2)
        for i in range(1, 13):
            assert hbt.submit_buy_order(0, i, px, 0.02, GTX, LIMIT, False) == 0
        _wait(hbt, lambda: all(int(hbt.orders(0).get(i).req) == 0 for i in range(1, 13)),
              what="every request to conclude")  # fmt: skip
        status = [hbt.orders(0).get(i).status for i in range(1, 13)]
        assert status == [NEW] * 9 + [EXPIRED] * 3
        assert [e.code for e in errors if e.kind == ERR_ORDER] == [THROTTLED] * 3
        assert "throttled: 9 orders this 10 s, limit 10" in errors[-1].msg
        seen = emu.control("/_emulator/requests")
        assert seen["requests"]["POST /fapi/v1/order"] == 9
        assert not {"429", "418"} & set(seen["statuses"])
    finally:
        if hbt is not None:
            hbt.close()
        assert conn.stop() == 0, conn.text()
        emu.stop()


def test_ws_api_outage_cancels_go_over_rest_and_new_orders_are_refused(tmp_path, emu):
    from connector.codes import NOT_READY

    conn = BfConnector(tmp_path, emu, order_entry="ws")
    errors = []
    hbt = None
    try:
        hbt = _bot(conn, errors)
        _wait(hbt, lambda: _synced(hbt), what="a synced book")
        _wait_session(hbt, conn)  # the user stream and the WebSocket API are both up
        px = round(hbt.depth(0).best_bid - 5.0, 2)
        assert hbt.submit_buy_order(0, 1, px, 0.02, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(1).status == NEW
        emu.faults(refuse_ws_api=True, disconnect="ws-api")
        _wait(hbt, lambda: any("WebSocket API connection lost" in e.msg for e in errors),
              what="the outage")  # fmt: skip
        assert any(e.kind == ERR_CONNECTION for e in errors)
        assert hbt.cancel(0, 1, True) == 0
        assert hbt.orders(0).get(1).status == CANCELED
        assert emu.control("/_emulator/requests")["requests"]["DELETE /fapi/v1/order"] == 1
        assert hbt.submit_buy_order(0, 2, px, 0.02, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(2).status == EXPIRED
        assert errors[-1].code == NOT_READY and "WebSocket API" in errors[-1].msg
        emu.faults(refuse_ws_api=False)
        _wait(hbt, lambda: any(e.code == CONNECTION_RESTORED for e in errors), what="a reconnect")
        assert "WebSocket API connection restored" in errors[-1].msg
        assert hbt.submit_buy_order(0, 3, px, 0.02, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(3).status == NEW
        assert "POST /fapi/v1/order" not in emu.control("/_emulator/requests")["requests"]
    finally:
        if hbt is not None:
            hbt.close()
        assert conn.stop() == 0, conn.text()


def test_a_clock_jump_gives_one_1021_then_the_offset_is_measured_again(tmp_path, emu):
    conn = BfConnector(tmp_path, emu)
    errors = []
    hbt = None
    try:
        hbt = _bot(conn, errors)
        _wait(hbt, lambda: _synced(hbt), what="a synced book")
        emu.faults(clock_skew_ms=30_000)  # the venue's clock jumps 30 s ahead of ours
        px = round(hbt.depth(0).best_bid - 5.0, 2)
        assert hbt.submit_buy_order(0, 1, px, 0.02, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(1).status == EXPIRED and errors[-1].code == -1021
        _wait(hbt, lambda: "re-measured" in conn.text(), what="the clock re-measured")
        assert hbt.submit_buy_order(0, 2, px, 0.02, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(2).status == NEW
    finally:
        if hbt is not None:
            hbt.close()
        assert conn.stop() == 0, conn.text()


def test_a_killed_connector_leaves_no_working_order_at_the_venue(tmp_path, emu):
    """The dead-man's switch: countdownCancelAll heartbeats stop with the process, and the
    venue cancels the orders it left (a clean stop disarms the timer instead)."""
    conn = BfConnector(tmp_path, emu, extra="auto_cancel_s = 2.0")
    hbt = None
    try:
        hbt = _bot(conn)
        _wait(hbt, lambda: _synced(hbt), what="a synced book")
        assert "auto-cancel armed" in conn.text()
        px = round(hbt.depth(0).best_bid - 5.0, 2)
        for i in (1, 2):
            assert hbt.submit_buy_order(0, i, px - i, 0.02, GTX, LIMIT, True) == 0
        hbt.elapse(3_000_000_000)  # heartbeats keep the orders alive past one countdown
        assert len(_venue_get(emu, "/fapi/v1/openOrders")) == 2
        conn.proc.kill()  # no shutdown, no cancel from us
        conn.proc.wait()
        deadline = time.monotonic() + 10
        while _venue_get(emu, "/fapi/v1/openOrders") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _venue_get(emu, "/fapi/v1/openOrders") == []
    finally:
        if hbt is not None:
            hbt.close()
        conn.stop()
        for p in Path("/dev/shm").glob(f"hftlive.{conn.name}.*"):
            p.unlink(missing_ok=True)  # what the killed connector left


def test_a_failing_adapter_cancels_every_open_order_before_the_connector_exits(
    tmp_path, emu, monkeypatch
):
    """A bug in the adapter (injected: the market-data task raises) ends the connector; on
    the way out it cancels every open order on the venue at once (auto-cancel is off here,
    so the dead-man's switch is not what does it)."""
    import asyncio

    from connector.app import Connector
    from connector.binancefutures.client import prepare
    from connector.config import load_config
    from connector.errors import VenueProtocolError

    monkeypatch.setenv("BFT_API_KEY", KEY)
    monkeypatch.setenv("BFT_SECRET", SECRET)
    cfg_path = tmp_path / "crash.toml"
    cfg_path.write_text(config_text(emu.urls, "auto_cancel_s = 0", "rest"))
    name = f"bfcrash{os.getpid()}"

    async def main():
        cfg = await prepare(load_config(cfg_path, "binancefutures"))
        conn = Connector(name, "binancefutures", cfg)
        started, ready = asyncio.Event(), asyncio.Event()

        async def failing_md():
            started.set()
            await ready.wait()
            raise VenueProtocolError("injected adapter bug")

        conn.venue.md.run = failing_md
        task = asyncio.create_task(conn.run())
        # the venue starts its market data once cancel_all_on_start has run (_serve)
        md_up = asyncio.ensure_future(started.wait())
        await asyncio.wait({md_up, task}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        assert md_up.done(), f"the venue did not start its market data: {task}"
        # an order resting on the venue (placed by anyone on the account)
        from connector.binancefutures.signing import sign_params

        q = sign_params({"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT",
                         "timeInForce": "GTC", "quantity": "0.020", "price": "1000.00"},
                        SECRET, int(time.time() * 1000), 5000)  # fmt: skip
        req = urllib.request.Request(f"{emu.urls['rest']}/fapi/v1/order?{q}", method="POST",
                                     headers={"X-MBX-APIKEY": KEY})  # fmt: skip
        await asyncio.to_thread(urllib.request.urlopen, req, timeout=5)
        assert len(_venue_get(emu, "/fapi/v1/openOrders")) == 1
        ready.set()
        with pytest.raises(BaseException) as e:
            await asyncio.wait_for(task, 20)
        return e.value

    err = asyncio.run(main())
    assert "injected adapter bug" in repr(err)
    assert _venue_get(emu, "/fapi/v1/openOrders") == []
    assert not list(Path("/dev/shm").glob(f"hftlive.{name}.*"))  # segments removed


def test_a_refused_key_is_a_clear_config_error(tmp_path, emu):
    cfg = tmp_path / "badkey.toml"
    cfg.write_text(config_text(emu.urls, "", "rest"))
    r = subprocess.run(
        [sys.executable, "-m", "connector", "--name", f"bfkey{os.getpid()}", "--connector",
         "binancefutures", "--config", str(cfg)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "BFT_API_KEY": KEY, "BFT_SECRET": "not-the-secret"},
    )  # fmt: skip
    assert r.returncode == 2, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("connector: error: ") and str(cfg) in last
    assert "refused our API key: -1022" in last and "$BFT_SECRET" in last
    assert "not-the-secret" not in r.stderr and "Traceback" not in r.stderr


def test_a_switch_to_hedge_mode_while_running_stops_the_connector(tmp_path, emu):
    """Binance switches the position mode only with no position and no open order, so it
    can happen while a connector runs idle; from then on every order is refused with -4061.
    The refusal reaches the bot; the connector then reads the mode (within a housekeeping
    pass), finds hedge mode, and stops as it would have at start: exit 2, one line saying
    so and how to switch back, and the bot's run ends."""
    conn = BfConnector(tmp_path, emu)
    errors = []
    hbt = None
    try:
        hbt = _bot(conn, errors)
        _wait(hbt, lambda: _synced(hbt), what="a synced book")
        px = round(hbt.depth(0).best_bid - 5.0, 2)
        assert hbt.submit_buy_order(0, 1, px, 0.02, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(1).status == NEW  # one-way mode: it trades
        assert hbt.cancel(0, 1, True) == 0
        emu.faults(hedge_mode=True)
        assert hbt.submit_buy_order(0, 2, px, 0.02, GTX, LIMIT, True) == 0
        assert hbt.orders(0).get(2).status == EXPIRED and errors[-1].code == -4061
        wait_connector_ends_run(conn.proc, hbt)
    finally:
        if hbt is not None:
            hbt.close()
        conn.stop()
    why = exit_error(conn.proc, conn.text())
    assert why.startswith("the Binance USD-M futures account is in hedge mode")
    assert "switched while the connector ran" in why and "one-way" in why
    seen = emu.control("/_emulator/requests")["requests"]
    assert seen.get("GET /fapi/v1/positionSide/dual") == 2  # at start, and after the -4061
    assert not list(Path("/dev/shm").glob(f"hftlive.{conn.name}.*"))


def test_a_hedge_mode_account_is_refused_before_the_connector_starts(tmp_path, emu):
    """An account in hedge mode (dualSidePosition true) would refuse every order with
    -4061: the connector reads GET /fapi/v1/positionSide/dual before it creates shared
    memory, exits 2 with one line saying what to switch and how, and the venue never sees
    an order, a cancel or anything else that changes the account."""
    emu.faults(hedge_mode=True)
    c = BfConnector(tmp_path, emu)
    rc = c.proc.wait(60)
    text = c.text()
    c.stop()
    assert rc == 2, text[-2000:]
    last = text.strip().splitlines()[-1]
    assert last.startswith("connector: error: the Binance USD-M futures account is in hedge mode")
    assert "dualSidePosition=true" in last and "one-way" in last
    assert "POST /fapi/v1/positionSide/dual with dualSidePosition=false" in last
    assert "Traceback" not in text and "serving" not in text  # it never said it runs
    assert not list(Path("/dev/shm").glob(f"hftlive.{c.name}.*"))
    seen = emu.control("/_emulator/requests")
    assert seen["requests"].get("GET /fapi/v1/positionSide/dual") == 1
    changes = [k for k in seen["requests"] if not k.startswith("GET ")]
    assert changes == [] and seen["ws_api"] == {}, seen  # no order, cancel, countdown


def test_a_sigterm_while_the_connector_starts_stops_it_cleanly(tmp_path, emu):
    """A connector compiles its njit functions while it starts (seconds on an empty numba
    cache), before its event loop handles signals: a SIGTERM then waits for the loop and
    stops it the ordinary way, exit 0 and no segment left in /dev/shm (its default action
    killed it and left them)."""
    env_cache = {"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}  # empty: a long start
    c = BfConnector(tmp_path, emu, env=env_cache)
    states = []

    def segments_made() -> bool:  # attachable: its header complete (magic written last)
        try:
            v = ConnectorView(c.name)
        except SharedMemoryError:
            return c.proc.poll() is not None
        states.append(int(v.ctl.header[0]["state"]))
        v.close()
        return True

    wait_until(segments_made, 120, "its segments")
    assert c.proc.poll() is None, c.text()
    assert states[-1] != 1, "running already: the start was too quick to test (warm cache?)"
    c.proc.send_signal(signal.SIGTERM)
    rc = c.proc.wait(timeout=120)
    left = list(Path("/dev/shm").glob(f"hftlive.{c.name}.*"))
    for p in left:  # not to litter /dev/shm when this fails
        p.unlink(missing_ok=True)
    assert rc == 0, c.text()
    assert not left
    assert f"connector {c.name!r} stopped" in c.text()
