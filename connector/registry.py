"""The venues a connector can run: name -> where its spec lives. Adding a venue is one line
here plus its folder; nothing else in the core names a venue.

A venue's package exposes `SPEC`, a `VenueSpec`: the dataclass of its config section, the
checks of a loaded config, an optional `prepare` step (tick and lot sizes from the venue,
before shared memory exists), the factory `(cfg, core) -> Venue`, and optionally a capture
decoder (`replay`) that lets the sim venue replay that venue's recorded traffic, and
optionally its public market data (`public`, a `PublicMarket`) that lets the sim venue
paper-trade on that venue's live market (`[sim] live = NAME`).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from connector.errors import ConfigError

# name -> (module holding SPEC, one line for --help)
VENUES: dict[str, tuple[str, str]] = {
    "sim": ("connector.sim", "simulated venue: synthetic market or capture replay, offline"),
    "binancefutures": ("connector.binancefutures", "Binance USD-M futures (REST + WebSockets)"),
    "bybit": ("connector.bybit", "Bybit v5 linear perpetuals (REST + WebSockets)"),
}


@dataclass(frozen=True)
class PublicMarket:
    """A venue's public market data, without keys: what the sim's live source runs.

    The sim config's `[name]` table (the venue's own section name) is read with
    `section`, which holds only the market-data keys; its defaults are the venue's real
    public endpoints.

    Attributes:
        section: the frozen dataclass of those keys.
        check: `(path, section, instruments) -> None`, ConfigError on what the client
            cannot serve (a bad URL scheme, a symbol in the wrong case), or None.
        instruments: `async (path, section, instruments) -> instruments`, the instruments
            with the venue's tick, lot, min qty and min notional from its public
            instrument list (a configured tick/lot that disagrees is a ConfigError).
        book: the venue client's per-instrument book class (a RecordingBook subclass
            taking `(idx, cfg)`), which the sim's instruments extend.
        client: `(section, books, core, snapshot_interval_ms, on_trade, on_book) ->` an
            object with `async run()`: the venue's own market-data client, publishing
            through a Feed with those hooks (so the sim's engine sees every change).
    """

    section: type
    instruments: Callable[..., Awaitable[Any]]
    book: type
    client: Callable[..., Any]
    check: Callable[..., None] | None = None


@dataclass(frozen=True)
class VenueSpec:
    """How the core loads, prepares and builds one venue.

    Attributes:
        name: the registry name (`--connector NAME`) and the config section's name.
        section: the frozen dataclass of the `[name]` config section, or None.
        section_required: a config without the section is an error.
        check: `(cfg) -> None`, raises ConfigError on what this venue cannot serve
            (e.g. the sim needs tick and lot sizes in the config); runs at load time,
            before any network or shared memory.
        preflight: `(cfg) -> None`, what can be checked before the network or shared
            memory is touched (credentials present and readable), raising ConfigError;
            run when a connector starts (not when a config is merely loaded), or None.
        prepare: `async (cfg) -> cfg`, run before shared memory exists (tick/lot sizes
            from the venue), or None.
        factory: `(cfg, core) -> Venue`.
        capture: `(symbols) -> CaptureDecoder`, turning this venue's recorded traffic into
            feed updates for the sim's replay (connector.feed), or None.
        public: the venue's keyless market data for the sim's live source, or None.
    """

    name: str
    section: type | None
    factory: Callable[[Any, Any], Any]
    section_required: bool = False
    check: Callable[[Any], None] | None = None
    preflight: Callable[[Any], None] | None = None
    prepare: Callable[[Any], Awaitable[Any]] | None = None
    capture: Callable[..., Any] | None = None
    public: PublicMarket | None = None


def names() -> list[str]:
    return list(VENUES)


def spec(name: str) -> VenueSpec:
    """The spec of venue `name` (ConfigError naming the known ones if there is none)."""
    entry = VENUES.get(name)
    if entry is None:
        raise ConfigError(f"unknown venue {name!r} (known: {', '.join(VENUES)})")
    return importlib.import_module(entry[0]).SPEC


def help_text() -> str:
    return "; ".join(f"'{n}': {d}" for n, (_, d) in VENUES.items())
