"""Connector configuration: TOML loaded into frozen dataclasses.

Every key is checked: an unknown key (a typo) or a missing required key is a ConfigError
naming the key and the file. Secrets are never in the file: the file names the
environment variables (or a file) that hold them.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class InstrumentConfig:
    symbol: str
    tick_size: float = 0.0  # sim: required; real venues: taken from the venue
    lot_size: float = 0.0
    start_price: float = 0.0  # sim synthetic market only
    max_position: float = 0.0  # 0: the [risk] default
    min_qty: float = 0.0  # smallest order qty the venue takes (real venues: from the venue)
    min_notional: float = 0.0  # smallest price * qty the venue takes (likewise)


@dataclass(frozen=True)
class ConnectorSection:
    max_bots: int = 16
    md_capacity: int = 1 << 16  # events per market ring (power of two)
    snapshot_capacity: int = 8192  # levels in a book snapshot
    snapshot_interval_ms: int = 100
    req_capacity: int = 1024
    resp_capacity: int = 4096
    cancel_on_bot_exit: bool = True
    cancel_on_shutdown: bool = True
    stop_timeout_s: float = 5.0  # on shutdown, how long to wait for cancels to conclude


@dataclass(frozen=True)
class RiskConfig:
    max_position: float = 0.0  # per instrument and bot, in base units; 0 = no limit
    max_order_notional: float = 0.0  # quote units; 0 = no limit
    max_orders_per_second: float = 50.0  # submits and modifies per bot; 0 = no limit


@dataclass(frozen=True)
class Config:
    path: str
    instruments: tuple[InstrumentConfig, ...]
    connector: ConnectorSection = field(default_factory=ConnectorSection)
    risk: RiskConfig = field(default_factory=RiskConfig)
    venue: str = ""  # the registry name of the venue this config was loaded for
    section: Any = None  # that venue's `[venue]` section (its spec's dataclass), or None


_SECTIONS = {"connector": ConnectorSection, "risk": RiskConfig}


def _build(cls, data: Any, where: str, path: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: [{where}] must be a table, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for k in data:
        if k not in fields:
            raise ConfigError(
                f"{path}: unknown key {where}.{k} (known: {', '.join(sorted(fields))})"
            )
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{path}: missing required key {where}.{name}")
            continue
        v = data[name]
        want = f.type if isinstance(f.type, type) else eval(f.type)  # noqa: S307 (our own annotations)
        if want is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, want) or (want is int and isinstance(v, bool)):
            raise ConfigError(
                f"{path}: {where}.{name} must be {want.__name__}, got {type(v).__name__} {v!r}"
            )
        kwargs[name] = v
    return cls(**kwargs)


def load_config(path: str | Path, venue: str) -> Config:
    """Load and check a connector config for `venue` (a name in connector.registry)."""
    from connector import registry

    spec = registry.spec(venue)
    p = str(path)
    try:
        raw = Path(p).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except OSError as e:
        raise ConfigError(f"config file {p} cannot be read: {e}") from None
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    known = set(_SECTIONS) | {"instruments"} | set(registry.names())
    for k in data:
        if k not in known:
            raise ConfigError(
                f"{p}: unknown section or key {k!r} (known: {', '.join(sorted(known))})"
            )
    if "instruments" not in data:
        raise ConfigError(
            f"{p}: missing required key instruments (an array of [[instruments]] tables)"
        )
    raw_insts = data["instruments"]
    if not isinstance(raw_insts, list) or not raw_insts:
        raise ConfigError(f"{p}: instruments must be a non-empty array of [[instruments]] tables")
    insts = []
    for i, t in enumerate(raw_insts):
        insts.append(_build(InstrumentConfig, t, f"instruments[{i}]", p))
    syms = [i.symbol for i in insts]
    if len(set(syms)) != len(syms):
        raise ConfigError(f"{p}: instruments lists a symbol twice: {syms}")
    sections = {k: _build(cls, data.get(k, {}), k, p) for k, cls in _SECTIONS.items()}
    c = sections["connector"]
    for k in ("md_capacity", "req_capacity", "resp_capacity"):
        v = getattr(c, k)
        if v <= 0 or v & (v - 1):
            raise ConfigError(f"{p}: connector.{k} must be a power of two, got {v}")
    if not 1 <= c.max_bots <= 256:
        raise ConfigError(f"{p}: connector.max_bots must be in 1..256, got {c.max_bots}")
    section = None
    if spec.section is not None:
        if spec.section_required and venue not in data:
            raise ConfigError(f"{p}: missing section [{venue}]")
        section = _build(spec.section, data.get(venue, {}), venue, p)
    cfg = Config(p, tuple(insts), venue=venue, section=section, **sections)
    if spec.check is not None:
        spec.check(cfg)
    return cfg
