"""Binance's official Python SDK (binance-sdk-derivatives-trading-usds-futures 18.x) as a
client of the emulator: a faithful third-party client, unmodified, pointed at loopback.

The SDK is configured only through its public configuration objects: `base_path` (REST),
`stream_url` of the WebSocket streams (the SDK appends `/stream` and routes it to
`/public`, `/market` and `/private` itself) and of the WebSocket API. Every TCP connection
made during a test is recorded at `socket.connect` and must go to 127.0.0.1: no test
touches the internet. The emulator runs in-process on an ephemeral port; waits are for
conditions, each with a deadline. Section numbers cite venue_protocols.md.
"""

from __future__ import annotations

import asyncio
import socket
import time
from contextlib import asynccontextmanager

# a test dependency (pyproject's `test` extra): missing, this file fails, it is not skipped
import pytest
from binance_common.configuration import (  # noqa: E402
    ConfigurationRestAPI,
    ConfigurationWebSocketAPI,
    ConfigurationWebSocketStreams,
)
from binance_common.errors import BadRequestError, NotFoundError  # noqa: E402
from binance_common.utils import send_request  # noqa: E402
from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (  # noqa: E402
    DerivativesTradingUsdsFutures,
)

from connector.binancefutures.emulator import Emulator  # noqa: E402

KEY, SECRET = "sdk-api-key", "sdk-secret"
SYM = "ETHUSDT"
QTY = 0.02  # above the 20 USDT min notional at ~2500
DEADLINE_S = 10.0


def run(coro, timeout: float = 60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def connects(monkeypatch) -> list:
    """Every address a socket of this process connects to during the test."""
    seen: list = []
    real = socket.socket.connect

    def connect(self, address):
        seen.append(address)
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield seen
    inet = [a for a in seen if isinstance(a, tuple)]
    assert inet, "no connection was recorded"
    assert {a[0] for a in inet} == {"127.0.0.1"}, inet


class Session:
    """The SDK client and an in-process emulator, plus what the streams delivered."""

    def __init__(self, emu: Emulator):
        self.emu = emu
        u = emu.urls
        ws_root = u["rest"].replace("http://", "ws://", 1)
        self.client = DerivativesTradingUsdsFutures(
            config_rest_api=ConfigurationRestAPI(api_key=KEY, api_secret=SECRET,
                                                 base_path=u["rest"], retries=0),
            config_ws_api=ConfigurationWebSocketAPI(api_key=KEY, api_secret=SECRET,
                                                    stream_url=u["ws_api"]),
            config_ws_streams=ConfigurationWebSocketStreams(stream_url=ws_root),
        )  # fmt: skip
        for url in (u["rest"], u["ws_api"], ws_root):
            assert url.split("//")[1].startswith("127.0.0.1:"), url
        self.user: list = []  # user-stream events, unwrapped from the SDK's one-of model

    async def rest(self, name: str, **kw):
        """Calls a REST method of the SDK (it is synchronous) and returns its data."""
        resp = await asyncio.to_thread(getattr(self.client.rest_api, name), **kw)
        return resp.data()

    def on_user(self, msg) -> None:
        self.user.append(getattr(msg, "actual_instance", msg))

    def events(self, kind: str, order_id: int | None = None) -> list:
        """User events of one kind (`ORDER_TRADE_UPDATE`, ...), for one order if given.
        The SDK's event models drop the `e` field: the model class names the kind."""
        model = kind.title().replace("_", "")  # ORDER_TRADE_UPDATE -> OrderTradeUpdate
        out = [e for e in self.user if type(e).__name__ == model]
        if order_id is not None:
            out = [e for e in out if e.o.i == order_id]
        return out


@asynccontextmanager
async def session():
    async with Emulator(data=None, symbols=("ethusdt",), api_key=KEY, secret=SECRET) as emu:
        yield Session(emu)


async def wait_until(cond, what: str, timeout: float = DEADLINE_S):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def user_stream(s: Session):
    """A streams connection with the user stream on a fresh listenKey (§1.5)."""
    key = (await s.rest("start_user_data_stream")).listen_key
    assert key == s.emu.listen_keys.active
    conn = await s.client.websocket_streams.create_connection()
    handle = await conn.user_data(key)
    handle.on("message", s.on_user)
    # the SUBSCRIBE with the key was answered before user_data returned; the emulator
    # has the key attached to the /private connection
    await wait_until(lambda: any(key in c.keys for c in s.emu.user_hub.conns), "the key")
    return conn, key


# ---------------------------------------------------------------------- REST reads
def test_sdk_reads_exchange_info_depth_account_balance_and_positions(connects):
    async def main():
        async with session() as s:
            info = await s.rest("exchange_information")
            (sym,) = [x for x in info.symbols if x.symbol == SYM]
            kinds = {f.filter_type for f in sym.filters}
            assert {"PRICE_FILTER", "LOT_SIZE", "MIN_NOTIONAL", "PERCENT_PRICE"} <= kinds
            assert {r.rate_limit_type for r in info.rate_limits} == {"REQUEST_WEIGHT", "ORDERS"}

            depth = await s.rest("order_book", symbol=SYM, limit=5)
            assert len(depth.bids) == len(depth.asks) == 5
            assert float(depth.bids[0][0]) < float(depth.asks[0][0])

            for name in ("account_information_v3", "account_information_v2"):
                acct = await s.rest(name)
                assert acct.total_wallet_balance == "10000.00000000"
                assert acct.available_balance == "10000.00000000"
                assert [a.asset for a in acct.assets] == ["USDT"]
            assert (await s.rest("account_information_v3")).positions == []  # none open
            v2_positions = (await s.rest("account_information_v2")).positions
            assert [(p.symbol, p.position_amt) for p in v2_positions] == [(SYM, "0.000")]
            for name in ("futures_account_balance_v3", "futures_account_balance_v2"):
                (bal,) = await s.rest(name)
                assert (bal.asset, bal.balance, bal.margin_available) == (
                    "USDT",
                    "10000.00000000",
                    True,
                )
            assert await s.rest("position_information_v3") == []  # only active symbols
            (pos,) = await s.rest("position_information_v2", symbol=SYM)
            assert (pos.symbol, pos.position_amt) == (SYM, "0.000")

            # the listenKey lifecycle (§1.5): POST, PUT keeps it, DELETE ends it, then -1125
            key = (await s.rest("start_user_data_stream")).listen_key
            assert (await s.rest("start_user_data_stream")).listen_key == key  # the same key
            assert (await s.rest("keepalive_user_data_stream")).listen_key == key
            await s.rest("close_user_data_stream")
            assert s.emu.listen_keys.active is None
            with pytest.raises(BadRequestError) as e:
                await s.rest("keepalive_user_data_stream")
            assert e.value.status_code == -1125

            # a path Binance does not serve: a JSON error the SDK parses (not a bare 404).
            # The SDK's own RestAPI.send_request is broken in 18.1.0 (`send_request[T]`
            # on a function: TypeError), so its transport function is called directly.
            rest = s.client.rest_api
            with pytest.raises(NotFoundError) as e:
                await asyncio.to_thread(
                    send_request, rest._session, rest.configuration, "GET", "/fapi/v1/noSuch"
                )
            assert e.value.status_code == -5000 and "/fapi/v1/noSuch" in str(e.value)
            seen = s.emu.rest_requests
            for path in ("/fapi/v3/account", "/fapi/v2/account", "/fapi/v3/balance",
                         "/fapi/v2/balance", "/fapi/v3/positionRisk"):  # fmt: skip
                assert seen[f"GET {path}"] >= 1, path

    run(main())


# ------------------------------------------------------------- market streams (§1.2)
def test_sdk_market_stream_subscriptions_deliver_depth_and_book_ticker(connects):
    async def main():
        async with session() as s:
            conn = await s.client.websocket_streams.create_connection()
            diffs, tickers, trades = [], [], []
            (await conn.diff_book_depth_streams(symbol="ethusdt", update_speed="100ms")).on(
                "message", diffs.append
            )
            (await conn.individual_symbol_book_ticker_streams(symbol="ethusdt")).on(
                "message", tickers.append
            )
            (await conn.aggregate_trade_streams(symbol="ethusdt")).on("message", trades.append)
            await wait_until(lambda: len(diffs) >= 3 and tickers and trades, "market data")
            for prev, d in zip(diffs, diffs[1:]):
                assert d.pu == prev.u  # §1.3: the diffs chain
            assert diffs[0].s == SYM and tickers[0].s == SYM and trades[0].s == SYM
            # the SDK asks its first connection, the /market one: aggTrade lives there (§0.1)
            assert (await conn.list_subscribe())["result"] == ["ethusdt@aggTrade"]
            routes = {c.route: c.subs for c in s.emu.market_hub.conns}
            assert routes == {"market": ["ethusdt@aggTrade"],
                              "public": ["ethusdt@depth@100ms", "ethusdt@bookTicker"]}  # fmt: skip
            await conn.close_connection()

    run(main())


# ------------------------------------------------- a resting order's lifecycle, REST
def test_sdk_far_limit_order_is_placed_queried_modified_and_cancelled(connects):
    async def main():
        async with session() as s:
            conn, _ = await user_stream(s)
            bid = float((await s.rest("order_book", symbol=SYM, limit=5)).bids[0][0])
            px = round(bid - 50.0, 2)
            new = await s.rest("new_order", symbol=SYM, side="BUY", type="LIMIT",
                               time_in_force="GTC", quantity=QTY, price=px,
                               new_client_order_id="sdk-far-1")  # fmt: skip
            oid = new.order_id
            assert (new.status, new.client_order_id, float(new.price)) == ("NEW", "sdk-far-1", px)
            q = await s.rest("query_order", symbol=SYM, order_id=oid)
            assert (q.status, q.orig_qty, q.time_in_force) == ("NEW", "0.020", "GTC")
            (open_,) = await s.rest("current_all_open_orders", symbol=SYM)
            assert open_.order_id == oid
            (pos,) = await s.rest("position_information_v3")  # open orders make it active
            assert pos.position_amt == "0.000" and float(pos.bid_notional) > 0

            px2 = round(px - 1.0, 2)
            mod = await s.rest("modify_order", symbol=SYM, side="BUY", quantity=QTY,
                               price=px2, order_id=oid)  # fmt: skip
            assert (mod.status, float(mod.price)) == ("NEW", px2)
            cxl = await s.rest("cancel_order", symbol=SYM, order_id=oid)
            assert cxl.status == "CANCELED"
            assert await s.rest("current_all_open_orders", symbol=SYM) == []

            await wait_until(lambda: len(s.events("ORDER_TRADE_UPDATE", oid)) >= 3, "events")
            got = [(e.o.x, e.o.X, e.o.p) for e in s.events("ORDER_TRADE_UPDATE", oid)]
            assert got == [("NEW", "NEW", f"{px:.2f}"), ("AMENDMENT", "NEW", f"{px2:.2f}"),
                           ("CANCELED", "CANCELED", f"{px2:.2f}")]  # fmt: skip
            assert s.events("ACCOUNT_UPDATE") == []  # resting orders move no balance (§1.5)

            # a cancel of the cancelled order: -2011, the SDK's BadRequestError
            with pytest.raises(BadRequestError) as e:
                await s.rest("cancel_order", symbol=SYM, order_id=oid)
            assert e.value.status_code == -2011
            await conn.close_connection()

    run(main())


def test_sdk_crossing_post_only_order_is_rejected_and_not_recorded(connects):
    async def main():
        async with session() as s:
            conn, _ = await user_stream(s)
            ask = float((await s.rest("order_book", symbol=SYM, limit=5)).asks[0][0])
            s.emu.faults.pause_market = True  # the ask stays where it is
            with pytest.raises(BadRequestError) as e:
                await s.rest("new_order", symbol=SYM, side="BUY", type="LIMIT",
                             time_in_force="GTX", quantity=QTY, price=round(ask + 1.0, 2),
                             new_client_order_id="sdk-gtx")  # fmt: skip
            assert e.value.status_code == -5022  # §1.8: synchronous, HTTP 400
            # not recorded: unknown to a query, and a later order is the first event
            with pytest.raises(BadRequestError) as q:
                await s.rest("query_order", symbol=SYM, orig_client_order_id="sdk-gtx")
            assert q.value.status_code == -2013
            bid = float((await s.rest("order_book", symbol=SYM, limit=5)).bids[0][0])
            ok = await s.rest("new_order", symbol=SYM, side="BUY", type="LIMIT",
                              time_in_force="GTX", quantity=QTY, price=round(bid - 5, 2))  # fmt: skip
            await wait_until(lambda: s.events("ORDER_TRADE_UPDATE"), "the resting order's NEW")
            assert [e.o.i for e in s.events("ORDER_TRADE_UPDATE")] == [ok.order_id]
            await conn.close_connection()

    run(main())


# ----------------------------------------------- a fill, the position and its close
def test_sdk_market_order_fills_updates_the_account_and_the_position_closes(connects):
    async def main():
        async with session() as s:
            conn, _ = await user_stream(s)
            buy = await s.rest("new_order", symbol=SYM, side="BUY", type="MARKET",
                               quantity=QTY, new_order_resp_type="RESULT")  # fmt: skip
            assert (buy.status, buy.executed_qty) == ("FILLED", "0.020")
            oid = buy.order_id
            await wait_until(
                lambda: (
                    any(e.o.X == "FILLED" for e in s.events("ORDER_TRADE_UPDATE", oid))
                    and s.events("ACCOUNT_UPDATE")
                ),
                "the fill and ACCOUNT_UPDATE",
            )
            fill = [e for e in s.events("ORDER_TRADE_UPDATE", oid) if e.o.x == "TRADE"][-1]
            assert (fill.o.X, fill.o.z, fill.o.m) == ("FILLED", "0.020", False)
            assert float(fill.o.n) > 0 and fill.o.N == "USDT"  # taker fee
            acc = s.events("ACCOUNT_UPDATE")[-1]
            assert acc.a.m == "ORDER"
            assert [(p.s, p.pa) for p in acc.a.P] == [(SYM, "0.020")]
            assert float(acc.a.B[0].wb) < 10_000.0  # the fee left the wallet
            (pos,) = await s.rest("position_information_v3", symbol=SYM)
            assert pos.position_amt == "0.020"
            assert float(pos.entry_price) == pytest.approx(float(fill.o.ap))  # average of the fills
            acct = await s.rest("account_information_v3")
            assert [(p.symbol, p.position_amt) for p in acct.positions] == [(SYM, "0.020")]
            assert float(acct.total_position_initial_margin) > 0

            n_acc = len(s.events("ACCOUNT_UPDATE"))
            close = await s.rest("new_order", symbol=SYM, side="SELL", type="MARKET",
                                 quantity=QTY, reduce_only="true")  # fmt: skip
            await wait_until(lambda: len(s.events("ACCOUNT_UPDATE")) > n_acc, "the close")
            assert s.events("ACCOUNT_UPDATE")[-1].a.P[0].pa == "0.000"
            await wait_until(
                lambda: any(e.o.X == "FILLED" for e in s.events("ORDER_TRADE_UPDATE",
                                                                 close.order_id)),
                "the closing fill",
            )  # fmt: skip
            assert await s.rest("position_information_v3") == []
            # nothing left to reduce: a second reduce-only close is refused (-2022)
            with pytest.raises(BadRequestError) as e:
                await s.rest("new_order", symbol=SYM, side="SELL", type="MARKET",
                             quantity=QTY, reduce_only="true")  # fmt: skip
            assert e.value.status_code == -2022
            await conn.close_connection()

    run(main())


# --------------------------------------------------------------------- WS-API (§1.7)
def test_sdk_ws_api_places_queries_and_cancels_an_order(connects):
    async def main():
        async with session() as s:
            conn, _ = await user_stream(s)
            api = await s.client.websocket_api.create_connection()
            bid = float((await s.rest("order_book", symbol=SYM, limit=5)).bids[0][0])
            px = round(bid - 40.0, 2)
            placed = await api.new_order(symbol=SYM, side="BUY", type="LIMIT",
                                         time_in_force="GTX", quantity=QTY, price=px,
                                         new_client_order_id="sdk-ws-1")  # fmt: skip
            assert placed.data().status == 200
            r = placed.data().result
            assert (r.status, r.client_order_id, float(r.price)) == ("NEW", "sdk-ws-1", px)
            kinds = {x.rate_limit_type for x in placed.data().rate_limits}
            assert kinds == {"REQUEST_WEIGHT", "ORDERS"}
            st = (await api.query_order(symbol=SYM, order_id=r.order_id)).data().result
            assert st.status == "NEW"
            cancelled = (await api.cancel_order(symbol=SYM, order_id=r.order_id)).data().result
            assert cancelled.status == "CANCELED"
            await wait_until(lambda: len(s.events("ORDER_TRADE_UPDATE", r.order_id)) >= 2,
                             "the NEW and CANCELED events")  # fmt: skip
            got = [(e.o.x, e.o.c) for e in s.events("ORDER_TRADE_UPDATE", r.order_id)]
            assert got == [("NEW", "sdk-ws-1"), ("CANCELED", "sdk-ws-1")]
            # a venue error: the SDK hands back the reply's `error` object for that request
            again = (await api.cancel_order(symbol=SYM, order_id=r.order_id)).data()
            assert again == {"error": {"code": -2011, "msg": "Unknown order sent."}}
            assert "POST /fapi/v1/order" not in s.emu.rest_requests  # it went over the WS
            await api.close_connection()
            await conn.close_connection()

    run(main())
