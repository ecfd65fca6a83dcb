"""The simulated venue: a synthetic market or a replay of a capture, and a matching engine.

Config (`[sim]` in the connector TOML)::

    data = ""                    a capture to replay (`<local ns> <raw JSON>` lines, .gz
                                 ok); "" = the synthetic market
    data_format = ""             whose wire format the capture holds (required with
                                 `data`): a venue of connector.registry with a capture
                                 decoder, e.g. the name of the venue it was recorded from
    speed = 1.0                  replay speed; 0 = as fast as possible
    seed, maker_fee, taker_fee   the synthetic market's seed; fees as fractions of notional
    tick_interval_ms, levels, volatility_bp, trades_per_tick   the synthetic market
    at_end = "stop"              replay end: stop the connector (bots see elapse() == 1)
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.config import path_field, rng
from connector.errors import ConfigError
from connector.registry import VenueSpec


@dataclass(frozen=True)
class SimConfig:
    # a capture to replay (`<local ns> <raw JSON>` lines, .gz ok); "" = synthetic
    data: str = path_field("")
    data_format: str = ""  # the venue whose recorded traffic `data` holds
    speed: float = rng(1.0, 0.0)  # replay speed; 0 = as fast as possible
    seed: int = rng(1, 0, 2**63 - 1)
    # fees as fractions of the traded value; negative = a rebate, never a 100 % fee
    maker_fee: float = rng(0.0002, -0.01, 0.01)
    taker_fee: float = rng(0.0005, -0.01, 0.01)
    # synthetic market: one batch of updates per interval
    tick_interval_ms: float = rng(100.0, 0.0, 60_000.0, lo_open=True)
    levels: int = rng(50, 1, 10_000)  # synthetic market: levels per side
    # synthetic market: std dev of the mid per interval, in bp
    volatility_bp: float = rng(1.0, 0.0, 1000.0)
    trades_per_tick: float = rng(3.0, 0.0, 10_000.0)  # synthetic market: mean trades per interval
    at_end: str = "stop"  # replay end: "stop" the connector (bots see elapse() == 1)


def _check(cfg) -> None:
    p = cfg.path
    for i, inst in enumerate(cfg.instruments):
        for k in ("tick_size", "lot_size"):
            if not getattr(inst, k) > 0:
                raise ConfigError(f"{p}: instruments[{i}].{k} must be > 0 for the sim venue")
    sim = cfg.section
    if sim.at_end not in ("stop",):
        raise ConfigError(f'{p}: sim.at_end must be "stop", got {sim.at_end!r}')
    if sim.data:
        from connector import registry

        known = ", ".join(n for n in registry.names() if n != "sim")
        if not sim.data_format:
            raise ConfigError(f"{p}: sim.data needs sim.data_format, the venue the capture "
                              f"was recorded from (known: {known})")  # fmt: skip
        if sim.data_format not in registry.names() or sim.data_format == "sim":
            raise ConfigError(f"{p}: sim.data_format {sim.data_format!r} is not a venue "
                              f"(known: {known})")  # fmt: skip
        if registry.spec(sim.data_format).capture is None:
            raise ConfigError(f"{p}: sim.data_format {sim.data_format!r}: that venue has no "
                              f"capture decoder to replay")  # fmt: skip


def _factory(cfg, core):
    from connector.sim.venue import SimVenue

    return SimVenue(cfg, core)


SPEC = VenueSpec(name="sim", section=SimConfig, factory=_factory, check=_check)
