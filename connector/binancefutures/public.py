"""Binance USD-M futures' public market data with no key: the sim's live source.

`[sim] live = "binancefutures"` paper-trades on this venue's live market: the sim runs
the venue's own market-data client (streams.MarketData: the `/public` and `/market`
combined streams, the REST depth snapshot, BookSync's resyncs after a gap) exactly as
the live connector does, and its matching engine fills the bots' orders from the same
book and trades. Only public endpoints are read: exchangeInfo (tick, lot, minimums),
the depth snapshot and the streams; no key, no listenKey, no order ever leaves.

Config: the `[binancefutures]` table of the sim's config, holding market-data keys only
(an API key or order key there is an unknown key)::

    rest_url = "https://fapi.binance.com"              exchangeInfo and depth snapshots
    ws_public_url = "wss://fstream.binance.com/public"   depth and bookTicker
    ws_market_url = "wss://fstream.binance.com/market"   trades
    depth_interval_ms = 0, snapshot_limit = 1000, stale_after_s = 10.0,
    request_timeout_s = 10.0                           as in a live connector's section

The defaults are Binance's production public endpoints (venue_protocols.md §1.1): the
market worth paper-trading is the real one. Point them at the emulator in tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.binancefutures.client import SECTION, check_market_keys, read_instruments
from connector.binancefutures.rest import RestClient
from connector.binancefutures.streams import MarketData, MdInstrument
from connector.config import check_urls, rng
from connector.registry import PublicMarket


@dataclass(frozen=True)
class BinancePublicConfig:
    rest_url: str = "https://fapi.binance.com"
    ws_public_url: str = "wss://fstream.binance.com/public"
    ws_market_url: str = "wss://fstream.binance.com/market"
    depth_interval_ms: int = 0
    snapshot_limit: int = 1000
    stale_after_s: float = rng(10.0, 0.0, 3600.0, lo_open=True)
    request_timeout_s: float = rng(10.0, 0.0, 600.0, lo_open=True)


def check(path: str, c: BinancePublicConfig, instruments) -> None:
    check_market_keys(path, c, instruments)
    check_urls(path, SECTION, c, http=("rest_url",), ws=("ws_public_url", "ws_market_url"))


async def instruments(path: str, c: BinancePublicConfig, insts: tuple) -> tuple:
    return await read_instruments(path, c.rest_url, c.request_timeout_s, insts)


class PublicMarketData:
    """streams.MarketData with an unsigned REST session of its own; `run()` until
    cancelled. `feed` is the client's Feed (with the hooks given)."""

    def __init__(self, c: BinancePublicConfig, books: list[MdInstrument], core,
                 snapshot_interval_ms: int, on_trade=None, on_book=None):  # fmt: skip
        self.rest = RestClient(c.rest_url, None, 5000, c.request_timeout_s)  # unsigned
        self.md = MarketData(c, books, core, self.rest, snapshot_interval_ms,
                             on_trade=on_trade, on_book=on_book)  # fmt: skip
        self.feed = self.md.feed

    async def run(self) -> None:
        async with self.rest:
            await self.md.run()


PUBLIC = PublicMarket(section=BinancePublicConfig, instruments=instruments, book=MdInstrument,
                      client=PublicMarketData, check=check)  # fmt: skip
