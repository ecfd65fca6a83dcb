"""The sim's live source: paper trading on a real venue's live market (`[sim] live`).

The venue's own public market-data client (its registry `public` entry: no key, no
private or order stream) keeps the connector's books and publishes to the bots' rings
exactly as that venue's live connector does (snapshots, gap detection and resyncs
included), through a Feed whose hooks are the sim's matching engine (`on_trade`,
`on_book`): the engine fills the bots' orders from the same book and trades, as in the
replay (connector.sim.replay), on the wall clock.

Every level change reaches the engine: a Feed with hooks has no `direct_rings()`, so the
venue decoder's compiled bytes-to-ring path is off and frames take its checked path (the
parser and the book sync in Python, `RecordingBook.set_bid`/`set_ask` per level, which
call the sim's `WatchedInstrument.on_level`). That costs what the replay pays: for a
Binance depth diff of ~65 levels ~18-21 us instead of ~6 us compiled (bench/README.md,
"Ingest"), plus the engine's per-level work; a live market's rate is far below what that
path sustains.

The sim's instruments are the venue client's book class (its per-instrument state: a
snapshot under way, the topics) extended by the sim's `WatchedInstrument`.
"""

from __future__ import annotations

import logging
from functools import cache

from connector import registry
from connector.config import build_section

log = logging.getLogger(__name__)


def live_section(cfg):
    """(the venue's PublicMarket, its built `[<live>]` section) for a config whose
    `sim.live` names a venue; checks that it is one with public market data (ConfigError
    naming the key and the file)."""
    from connector.errors import ConfigError

    p, name = cfg.path, cfg.section.live
    real = [n for n in registry.names() if n != "sim"]
    if name == "sim":
        raise ConfigError(f"{p}: sim.live names the venue whose live market is paper-traded "
                          f"(one of {', '.join(real)}), not the sim itself")  # fmt: skip
    if name not in real:
        raise ConfigError(f"{p}: sim.live {name!r} is not a venue (known: {', '.join(real)})")
    public = registry.spec(name).public
    if public is None:
        raise ConfigError(f"{p}: sim.live {name!r}: that venue has no public market-data "
                          f"client to paper-trade on")  # fmt: skip
    section = build_section(public.section, cfg.tables.get(name, {}), name, p)
    if public.check is not None:
        public.check(p, section, cfg.instruments)
    return public, section


@cache
def paper_book(venue_book: type, watched: type) -> type:
    """The sim's instrument class on the venue client's book class: `watched` (the sim's
    WatchedInstrument) first, so its `on_level` and `clear` see every change."""
    return type(f"Paper{venue_book.__name__}", (watched, venue_book), {})


async def run_live(venue, client) -> None:
    """Runs the venue's market-data `client` for `venue` (a SimVenue) until cancelled."""
    log.info("paper trading on %s's live market (%s)", venue.sim.live,
             ", ".join(s.symbol for s in venue.insts))  # fmt: skip
    await client.run()
