"""Bybit v5 linear public market data with no key: the sim's live source.

`[sim] live = "bybit"` paper-trades on this venue's live market: the sim runs the venue's
own public-stream client (marketdata.MarketData: orderbook and publicTrade topics, the
resubscribe for a fresh snapshot after a gap, reconnects) exactly as the live connector
does, and its matching engine fills the bots' orders from the same book and trades. Only
public endpoints are read: instruments-info (tick, lot, minimums) and the public stream;
no key, no private or trade stream, no order ever leaves.

Config: the `[bybit]` table of the sim's config, holding market-data keys only (an API
key or order key there is an unknown key)::

    rest_url = "https://api.bybit.com"                          instruments-info
    ws_public_url = "wss://stream.bybit.com/v5/public/linear"   orderbook, publicTrade
    depth = 50, stale_after_s = 10.0, ping_interval_s = 20.0, request_timeout_s = 10.0
                                                   as in a live connector's section

The defaults are Bybit's production public endpoints (venue_protocols.md §2.1): the
market worth paper-trading is the real one. Point them at the emulator in tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.bybit.client import SECTION, check_market_keys, read_instruments
from connector.bybit.marketdata import BybitInstrument, MarketData
from connector.config import check_urls, rng
from connector.registry import PublicMarket


@dataclass(frozen=True)
class BybitPublicConfig:
    rest_url: str = "https://api.bybit.com"
    ws_public_url: str = "wss://stream.bybit.com/v5/public/linear"
    depth: int = rng(50, 1, 1000)  # one of client.DEPTHS
    stale_after_s: float = rng(10.0, 0.0, 3600.0, lo_open=True)
    ping_interval_s: float = rng(20.0, 0.0, 600.0, lo_open=True)
    request_timeout_s: float = rng(10.0, 0.0, 600.0, lo_open=True)


def check(path: str, c: BybitPublicConfig, instruments) -> None:
    check_market_keys(path, c, instruments)
    check_urls(path, SECTION, c, http=("rest_url",), ws=("ws_public_url",))


async def instruments(path: str, c: BybitPublicConfig, insts: tuple) -> tuple:
    return await read_instruments(path, c.rest_url, c.request_timeout_s, insts)


def client(c: BybitPublicConfig, books: list[BybitInstrument], core, snapshot_interval_ms: int,
           on_trade=None, on_book=None) -> MarketData:  # fmt: skip
    """marketdata.MarketData itself: the public stream needs no REST session."""
    return MarketData(c, books, core, snapshot_interval_ms, on_trade=on_trade, on_book=on_book)


PUBLIC = PublicMarket(section=BybitPublicConfig, instruments=instruments, book=BybitInstrument,
                      client=client, check=check)  # fmt: skip
