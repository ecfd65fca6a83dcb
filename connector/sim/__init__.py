"""The simulated venue: a synthetic market, a replay of a capture, or a real venue's live
market (paper trading), and a matching engine.

Config (`[sim]` in the connector TOML)::

    live = ""                    a real venue whose live public market data is traded on
                                 with simulated fills (connector.sim.live): its market-data
                                 keys in that venue's own table (`[binancefutures]`,
                                 `[bybit]`; defaults: its production public endpoints);
                                 tick and lot sizes come from the venue. Not with `data`
                                 or `clock = "replay"`
    data = ""                    a capture to replay (`<local ns> <raw JSON>` lines, .gz
                                 ok); "" = the synthetic market
    data_format = ""             whose wire format the capture holds (required with
                                 `data`): a venue of connector.registry with a capture
                                 decoder, e.g. the name of the venue it was recorded from
    speed = 1.0                  replay speed; 0 = as fast as possible
    clock = "wall"               "wall": the replay runs on the wall clock (at `speed`);
                                 "replay": lockstep, the capture's time is the bots'
                                 clock and the replay waits for them (connector.lockstep;
                                 needs `data`, and `speed` does not apply)
    seed, maker_fee, taker_fee   the synthetic market's seed; fees as fractions of notional
    tick_interval_ms, levels, volatility_bp, trades_per_tick   the synthetic market
    at_end = "stop"              replay end: stop the connector (bots see elapse() == 1)

    hftbacktest's exchange model (connector.hbt_exchange, wired by connector.sim.hbt), with
    the meaning of hftbacktest's BacktestAsset settings of the same names:
    exchange = "default"         "default": connector.matching (Binance's order rules, no
                                 latency); "no_partial_fill" / "partial_fill": hftbacktest's
                                 NoPartialFillExchange / PartialFillExchange
    queue_model = "risk_averse"  risk_averse, power_prob, power_prob2, power_prob3,
                                 log_prob, log_prob2 (hftbacktest's *_queue_model)
    queue_power = 3.0            the n of the power_prob queue models
    order_latency = "constant"   "constant": entry_latency_ns, response_latency_ns
                                 (constant_order_latency); "intp": order_latency_file, an
                                 .npz/.npy of (req_ts, exch_ts, resp_ts) rows
                                 (intp_order_latency)
    maker_fee, taker_fee         trading_value_fee_model(maker_fee, taker_fee)
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.config import path_field, rng
from connector.errors import ConfigError
from connector.registry import VenueSpec


@dataclass(frozen=True)
class SimConfig:
    # a real venue whose live public market data is paper-traded on; "" = none
    live: str = ""
    # a capture to replay (`<local ns> <raw JSON>` lines, .gz ok); "" = synthetic
    data: str = path_field("")
    data_format: str = ""  # the venue whose recorded traffic `data` holds
    speed: float = rng(1.0, 0.0)  # replay speed; 0 = as fast as possible
    # "wall", or "replay": the capture's time is the bots' clock, in lockstep with them
    clock: str = "wall"
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
    # the matching engine: "default" (connector.matching), or hftbacktest's exchange model
    # "no_partial_fill" / "partial_fill" (connector.hbt_exchange); the keys below apply to
    # the latter only and mean what hftbacktest's settings of the same names mean
    exchange: str = "default"
    queue_model: str = "risk_averse"  # risk_averse, power_prob(2/3), log_prob(2)
    queue_power: float = rng(3.0, 0.0, 100.0, lo_open=True)  # n of the power_prob models
    order_latency: str = "constant"  # "constant" or "intp" (interpolated from a file)
    entry_latency_ns: int = rng(0, 0, 60_000_000_000)  # constant: request to exchange
    response_latency_ns: int = rng(0, 0, 60_000_000_000)  # constant: exchange to bot
    # intp: hftbacktest's order latency rows (req_ts, exch_ts, resp_ts), .npz or .npy
    order_latency_file: str = path_field("")


def _check(cfg) -> None:
    p = cfg.path
    sim = cfg.section
    if sim.live:
        _check_live(cfg)
    for i, inst in enumerate(cfg.instruments):
        for k in ("tick_size", "lot_size"):
            if not getattr(inst, k) > 0 and not sim.live:  # live: from the venue
                raise ConfigError(f"{p}: instruments[{i}].{k} must be > 0 for the sim venue")
    from connector.sim import hbt

    hbt.check(cfg)
    if sim.clock not in ("wall", "replay"):
        raise ConfigError(f'{p}: sim.clock must be "wall" or "replay", got {sim.clock!r}')
    if sim.clock == "replay" and not sim.data:
        raise ConfigError(f'{p}: sim.clock = "replay" replays a capture in its own time: it '
                          f"needs sim.data")  # fmt: skip
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


def _check_live(cfg) -> None:
    from connector import registry
    from connector.sim.live import live_section

    p, sim = cfg.path, cfg.section
    if sim.data:
        raise ConfigError(f"{p}: sim.live and sim.data are two market sources: set one (live "
                          f"paper-trades {sim.live!r}'s market, data replays a capture)")  # fmt: skip
    if sim.clock == "replay":
        raise ConfigError(f'{p}: sim.live runs on the wall clock: clock = "replay" needs a '
                          f"capture (sim.data), not a live market")  # fmt: skip
    live_section(cfg)  # the venue, its section's keys
    for other in cfg.tables:
        if other != sim.live and registry.spec(other).public is not None:
            raise ConfigError(f"{p}: section [{other}] is not read: sim.live is "
                              f"{sim.live!r}")  # fmt: skip


async def _prepare(cfg):
    """Live: each instrument's tick, lot and minimums from the venue's public instrument
    list (a configured tick/lot that disagrees is a ConfigError), before shared memory."""
    if not cfg.section.live:
        return cfg
    import dataclasses

    from connector.sim.live import live_section

    public, section = live_section(cfg)
    insts = await public.instruments(cfg.path, section, cfg.instruments)
    return dataclasses.replace(cfg, instruments=insts)


def _factory(cfg, core):
    from connector.sim.venue import SimVenue

    return SimVenue(cfg, core)


SPEC = VenueSpec(name="sim", section=SimConfig, factory=_factory, check=_check,
                 prepare=_prepare)  # fmt: skip
