"""Bybit v5 linear perpetuals: the venue adapter (see client.py) and its loopback emulator."""

from __future__ import annotations

from connector.registry import VenueSpec


def _spec() -> VenueSpec:
    from connector.bybit.client import BybitConfig, _factory, check_config, preflight, prepare
    from connector.bybit.feed import capture_decoder
    from connector.bybit.public import PUBLIC

    return VenueSpec(name="bybit", section=BybitConfig, factory=_factory, section_required=True,
                     check=check_config, preflight=preflight, prepare=prepare,
                     capture=capture_decoder, public=PUBLIC)  # fmt: skip


def __getattr__(name: str):
    # SPEC is built on first use, so that importing the emulator does not load the client
    if name == "SPEC":
        return _spec()
    raise AttributeError(name)
