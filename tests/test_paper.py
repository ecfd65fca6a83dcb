"""Paper trading on a real venue's live market (`[sim] live`, connector.sim.live): the
venue's loopback emulator and the sim connector as child processes, a real LiveBot in
this process; no internet. The connector runs the venue's own public market-data client
against the emulator and fills the bot's orders with the sim's engines; the emulator's
own views are the judge of the book, and its request log shows nothing private was
asked for and no order was sent."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from connector import registry
from connector.config import load_config
from connector.errors import ConfigError
from hftlive import ERR_BOOK_RESYNC, FILLED, GTC, IOC, LIMIT, NEW, Instrument, LiveBot
from tests.conftest import ConnectorProc, book_synced, wait_bot, wait_session
from tests.test_bf_connector import Emulator as BfEmulator
from tests.test_bybit_connector import SYMBOL as BY_SYMBOL
from tests.test_bybit_connector import Emulator as BybitEmulator

BF_PAPER = """
[[instruments]]
symbol = "ethusdt"
{inst_extra}

[connector]
snapshot_interval_ms = 50

[risk]
max_orders_per_second = 1000

[sim]
live = "binancefutures"
{sim_extra}

[binancefutures]
rest_url = "{rest}"
ws_public_url = "{ws_public}"
ws_market_url = "{ws_market}"
"""

BY_PAPER = """
[[instruments]]
symbol = "BTCUSDT"

[connector]
snapshot_interval_ms = 50

[risk]
max_orders_per_second = 1000

[sim]
live = "bybit"
{sim_extra}

[bybit]
rest_url = "{rest}"
ws_public_url = "{ws_public}"
ping_interval_s = 5.0
"""

HBT = 'exchange = "no_partial_fill"\nentry_latency_ns = 1000000\nresponse_latency_ns = 1000000'


def _bot(name: str, symbol: str, tick: float, lot: float, errors: list) -> LiveBot:
    b = LiveBot.builder().register(Instrument(name, symbol, tick, lot))
    b.connect_timeout(60.0)
    b.error_handler(errors.append)
    return b.build()


def _book_equal(hbt, bids: list, asks: list, tick: float) -> bool:
    """The bot's book equals the venue's (`bids`/`asks`: [px, qty] strings), level for level."""
    d = hbt.depth(0)
    if not (bids and asks) or d.best_bid != pytest.approx(float(bids[0][0])):
        return False
    if d.best_ask != pytest.approx(float(asks[0][0])):
        return False
    for levels, qty_at in ((bids, d.bid_qty_at_tick), (asks, d.ask_qty_at_tick)):
        for px, qty in levels:
            if qty_at(round(float(px) / tick)) != pytest.approx(float(qty)):
                return False
    return True


def _trade(hbt, tick: float, qty: float, pause, same) -> None:
    """A taker fill (an IOC buy through the ask); then, the market paused and the bot's
    book equal to the venue's (`same`), a buy resting at the bid and a sell at the ask,
    and the market moving again until it fills one of them as a maker: every fill is the
    sim engine's. `pause(bool)` pauses or resumes the venue's market."""
    # 1 % through the ask: the emulators' markets move many ticks between the bot's look
    # and the engine's (the sim's engine fills at its own book's prices)
    px = round(round(hbt.depth(0).best_ask * 1.01 / tick) * tick, 8)
    assert hbt.submit_buy_order(0, 1, px, qty, IOC, LIMIT, True) == 0
    wait_bot(hbt, lambda: hbt.orders(0).get(1).status == FILLED, 10.0, "the taker fill")
    assert hbt.position(0) == pytest.approx(qty)
    assert hbt.state_values(0).fee > 0  # [sim] taker_fee
    pause(True)
    wait_bot(hbt, same, 10.0, "the bot's book to equal the venue's")
    d = hbt.depth(0)
    assert hbt.submit_buy_order(0, 2, d.best_bid, qty, GTC, LIMIT, True) == 0
    assert hbt.submit_sell_order(0, 3, d.best_ask, qty, GTC, LIMIT, True) == 0
    o = hbt.orders(0)
    assert o.get(2).status == NEW and o.get(3).status == NEW  # resting: the market is still
    pause(False)

    def filled() -> list:
        return [o.get(k) for k in (2, 3) if o.get(k) is not None and o.get(k).status == FILLED]

    wait_bot(hbt, lambda: filled(), 60.0, "a resting order filled as the market moved")
    assert all(f.maker for f in filled())


# ------------------------------------------------------------------ Binance


@pytest.mark.parametrize("engine", ["default", "hbt"])
def test_paper_on_binance_market(tmp_path, engine):
    emu = BfEmulator(tmp_path)
    conn = None
    try:
        cfg = BF_PAPER.format(rest=emu.urls["rest"], ws_public=emu.urls["ws_public"],
                              ws_market=emu.urls["ws_market"], inst_extra="",
                              sim_extra=HBT if engine == "hbt" else "")  # fmt: skip
        conn = ConnectorProc(tmp_path, config=cfg).start()
        errors: list = []
        hbt = _bot(conn.name, "ethusdt", 0.01, 0.001, errors)  # the venue's tick and lot
        try:
            wait_session(hbt, conn.name)
            wait_bot(hbt, lambda: book_synced(hbt), 30.0, "the first book")

            def same() -> bool:
                b = emu.book()
                return _book_equal(hbt, b["bids"], b["asks"], 0.01)

            _trade(hbt, 0.01, 0.01, lambda on: emu.faults(pause_market=on), same)
            emu.faults(pause_market=True)  # the market moved: the bot's book still the venue's
            wait_bot(hbt, same, 10.0, "the bot's book to equal the venue's")
            # a gap: one diff lost; BookSync resyncs from a new REST snapshot, bots told
            emu.faults(drop_depth=1, pause_market=False)
            wait_bot(hbt, lambda: any(e.kind == ERR_BOOK_RESYNC for e in errors), 20.0,
                     "ERR_BOOK_RESYNC")  # fmt: skip
            wait_bot(hbt, lambda: emu.control("/_emulator/requests")["requests"]
                     .get("GET /fapi/v1/depth", 0) >= 2, 20.0, "the resync's snapshot")  # fmt: skip
            emu.faults(pause_market=True)
            wait_bot(hbt, same, 20.0, "the book after the resync to equal the venue's")
        finally:
            hbt.close()
        assert conn.stop() == 0, conn.text()
        log = emu.control("/_emulator/requests")
        # public reads only: no listenKey, no signed read, no order, no WebSocket API
        assert set(log["requests"]) == {"GET /fapi/v1/exchangeInfo", "GET /fapi/v1/depth"}
        assert log["ws_api"] == {}
        assert "paper trading on binancefutures" in conn.text()
    finally:
        if conn is not None:
            conn.stop()
            conn.remove_segments()
        emu.stop()


def test_paper_takes_tick_and_lot_from_the_venue(tmp_path):
    emu = BfEmulator(tmp_path)
    try:
        urls = {"rest": emu.urls["rest"], "ws_public": emu.urls["ws_public"],
                "ws_market": emu.urls["ws_market"]}  # fmt: skip
        path = tmp_path / "p.toml"
        path.write_text(BF_PAPER.format(**urls, inst_extra="", sim_extra=""))
        cfg = load_config(path, "sim")
        got = asyncio.run(registry.spec("sim").prepare(cfg)).instruments[0]
        assert (got.tick_size, got.lot_size) == (0.01, 0.001)
        assert got.min_qty > 0 and got.min_notional > 0
        path.write_text(BF_PAPER.format(**urls, inst_extra="tick_size = 0.1", sim_extra=""))
        with pytest.raises(ConfigError, match="ethusdt tick_size = 0.1 but the venue's is 0.01"):
            asyncio.run(registry.spec("sim").prepare(load_config(path, "sim")))
    finally:
        emu.stop()


# ------------------------------------------------------------------ Bybit


def test_paper_on_bybit_market(tmp_path):
    emu = BybitEmulator(tmp_path)
    conn = None
    try:
        cfg = BY_PAPER.format(rest=emu.urls["rest"], ws_public=emu.urls["ws_public"],
                              sim_extra="")  # fmt: skip
        conn = ConnectorProc(tmp_path, config=cfg).start()
        errors: list = []
        hbt = _bot(conn.name, BY_SYMBOL, emu.tick, emu.lot, errors)
        try:
            wait_session(hbt, conn.name)
            wait_bot(hbt, lambda: book_synced(hbt), 30.0, "the first book")

            def same() -> bool:
                b = emu.book()
                return _book_equal(hbt, b["b"], b["a"], emu.tick)

            _trade(hbt, emu.tick, max(emu.min_qty, emu.lot),
                   lambda on: emu.faults(pause_market=on), same)  # fmt: skip
            emu.faults(pause_market=True)  # the market moved: the bot's book still the venue's
            wait_bot(hbt, same, 10.0, "the bot's book to equal the venue's")
            # a gap: a delta resent (`u` does not grow); the client resubscribes for a
            # fresh snapshot
            emu.faults(replay_delta=1, pause_market=False)
            wait_bot(hbt, lambda: any(e.kind == ERR_BOOK_RESYNC for e in errors), 20.0,
                     "ERR_BOOK_RESYNC")  # fmt: skip
            wait_bot(hbt, lambda: emu.requests("public unsubscribe") >= 1, 20.0,
                     "the resubscribe")  # fmt: skip
            emu.faults(pause_market=True)
            wait_bot(hbt, same, 20.0, "the book after the resync to equal the venue's")
        finally:
            hbt.close()
        assert conn.stop() == 0, conn.text()
        log = emu.control("/_emulator/requests")
        log = log.get("requests", log)
        # public only: instruments-info and the public stream's ops
        assert all(k == "GET /v5/market/instruments-info" or k.startswith("public ")
                   for k in log), log  # fmt: skip
    finally:
        if conn is not None:
            conn.stop()
            conn.remove_segments()
        emu.stop()


# ------------------------------------------------------------------ config errors


def _load(tmp_path, text: str):
    p = tmp_path / "paper.toml"
    p.write_text(text)
    return load_config(p, "sim")


BASE = '[[instruments]]\nsymbol = "ethusdt"\n[sim]\nlive = "binancefutures"\n'


@pytest.mark.parametrize("extra, match", [
    ('[sim]\nlive = "kraken"', r"sim.live 'kraken' is not a venue \(known: binancefutures, bybit\)"),
    ('[sim]\nlive = "sim"', "not the sim itself"),
    ('[sim]\nlive = "binancefutures"\ndata = "{cap}"\ndata_format = "binancefutures"',
     "sim.live and sim.data are two market sources"),
    ('[sim]\nlive = "binancefutures"\nclock = "replay"', "sim.live runs on the wall clock"),
    ('[sim]\nlive = "binancefutures"\n[binancefutures]\napi_key_env = "K"',
     "unknown key binancefutures.api_key_env"),
    ('[sim]\nlive = "binancefutures"\n[binancefutures]\nws_public_url = "http://x"',
     "binancefutures.ws_public_url must start with ws:// or wss://"),
    ('[sim]\nlive = "binancefutures"\n[binancefutures]\nsnapshot_limit = 7',
     "snapshot_limit must be one of"),
    ('[sim]\nlive = "binancefutures"\n[bybit]\ndepth = 50',
     r"section \[bybit\] is not read: sim.live is 'binancefutures'"),
    ('[sim]\nlive = "bybit"', "must be Bybit's uppercase symbols"),
])  # fmt: skip
def test_paper_config_errors(tmp_path, extra, match):
    cap = tmp_path / "cap.txt"
    cap.write_text("")
    text = '[[instruments]]\nsymbol = "ethusdt"\n' + extra.format(cap=cap)
    with pytest.raises(ConfigError, match=match):
        _load(tmp_path, text)


def test_paper_config_defaults_are_the_venues_public_endpoints(tmp_path):
    from connector.sim.live import live_section

    cfg = _load(tmp_path, BASE)
    assert cfg.instruments[0].tick_size == 0  # from the venue, in prepare
    _, c = live_section(cfg)
    assert (c.rest_url, c.ws_public_url, c.ws_market_url) == (
        "https://fapi.binance.com", "wss://fstream.binance.com/public",
        "wss://fstream.binance.com/market")  # fmt: skip
    cfg = _load(tmp_path, '[[instruments]]\nsymbol = "BTCUSDT"\n[sim]\nlive = "bybit"\n')
    _, c = live_section(cfg)
    assert (c.rest_url, c.ws_public_url) == ("https://api.bybit.com",
                                             "wss://stream.bybit.com/v5/public/linear")  # fmt: skip


def test_paper_on_a_venue_without_public_market_data(tmp_path, monkeypatch):
    real = registry.spec

    def spec(name):
        s = real(name)
        return dataclasses.replace(s, public=None) if name == "bybit" else s

    monkeypatch.setattr(registry, "spec", spec)
    with pytest.raises(ConfigError, match="'bybit': that venue has no public market-data client"):
        _load(tmp_path, '[[instruments]]\nsymbol = "BTCUSDT"\n[sim]\nlive = "bybit"\n')


@pytest.mark.parametrize("example", ["paper_binance.toml", "paper_bybit.toml"])
def test_paper_examples_load(example):
    from connector.sim.live import live_section
    from tests.conftest import ROOT

    cfg = load_config(ROOT / "examples" / example, "sim")
    public, section = live_section(cfg)
    assert section.rest_url.startswith("https://") and public is not None
