"""Connector configuration: TOML loaded into frozen dataclasses.

Every key is checked: an unknown key (a typo) or a missing required key is a ConfigError
naming the key and the file. Every number has a valid range, declared once on its field
(`rng(...)`) and checked in `build_section` (so venue sections built with it get it too):
a value outside it, NaN or an infinity is a ConfigError naming the key, the file and the
range, because a limit that quietly accepts `nan` or `-1` is a limit switched off.
Paths (`path_field(...)`) are resolved against the config file's folder at load time,
not against whatever the current directory happens to be. Secrets are never in the file:
the file names the environment variables (or a file) that hold them.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """The valid values of a numeric config key: lo..hi, each end inclusive unless open.

    None means unbounded on that side; NaN and infinities are never valid."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False

    def __contains__(self, v: float) -> bool:
        if not math.isfinite(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return self.hi is None or v <= self.hi

    def __str__(self) -> str:
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        left = "(" if self.lo_open or self.lo is None else "["
        right = ")" if self.hi is None else "]"
        return f"{left}{lo}, {hi}{right}"


def rng(default: Any, lo: float | None = None, hi: float | None = None, *,
        lo_open: bool = False) -> Any:  # fmt: skip
    """A dataclass field with a default and its valid range (see `Range`)."""
    return field(default=default, metadata={"range": Range(lo, hi, lo_open)})


def path_field(default: str = "", *, must_exist: bool = True) -> Any:
    """A path field: a relative value is resolved against the config file's folder; ""
    stays "" (not set); `must_exist`: a file that is not there is a ConfigError."""
    return field(default=default, metadata={"path": True, "must_exist": must_exist})


@dataclass(frozen=True)
class InstrumentConfig:
    symbol: str
    tick_size: float = rng(0.0, 0.0)  # sim: required; real venues: taken from the venue
    lot_size: float = rng(0.0, 0.0)
    start_price: float = rng(0.0, 0.0)  # sim synthetic market only
    max_position: float = rng(0.0, 0.0)  # 0: the [risk] default
    # the smallest order qty and price * qty the venue takes (real venues: from the venue)
    min_qty: float = rng(0.0, 0.0)
    min_notional: float = rng(0.0, 0.0)


@dataclass(frozen=True)
class ConnectorSection:
    max_bots: int = rng(16, 1, 256)
    md_capacity: int = rng(1 << 16, 64, 1 << 24)  # events per market ring (power of two)
    snapshot_capacity: int = rng(8192, 16, 1 << 20)  # levels in a book snapshot
    snapshot_interval_ms: int = rng(100, 1, 60_000)
    req_capacity: int = rng(1024, 16, 1 << 20)  # power of two
    resp_capacity: int = rng(4096, 16, 1 << 20)  # power of two
    cancel_on_bot_exit: bool = True
    cancel_on_shutdown: bool = True
    stop_timeout_s: float = rng(5.0, 0.0, 600.0)  # on shutdown, how long cancels may take
    # where trading states (halt/reduce) are kept across restarts, as <name>.trading.json;
    # "" = $XDG_STATE_HOME/hftlive, else ~/.local/state/hftlive
    state_dir: str = path_field("", must_exist=False)
    # flatten: when a bot leaves (close, signal, crash) and when the connector stops, after
    # the cancels, its positions are closed with reduce-only IOC limit orders at the mid
    # -/+ flatten_slippage_bp, for at most flatten_timeout_s (python -m hftlive flatten
    # does it on demand); what could not be closed is logged and reported
    flatten_on_shutdown: bool = False
    flatten_timeout_s: float = rng(10.0, 0.1, 600.0)
    flatten_slippage_bp: float = rng(50.0, 0.0, 5000.0)


@dataclass(frozen=True)
class RiskConfig:
    max_position: float = rng(0.0, 0.0)  # per instrument and bot, in base units; 0 = no limit
    max_order_notional: float = rng(0.0, 0.0)  # quote units; 0 = no limit
    max_orders_per_second: float = rng(50.0, 0.0)  # submits and modifies per bot; 0 = no limit


@dataclass(frozen=True)
class MetricsConfig:
    """`[metrics]`: Prometheus text format at http://host:port/metrics (connector.metrics)."""

    enabled: bool = False
    host: str = "127.0.0.1"  # loopback: put a reverse proxy in front to expose it
    port: int = rng(9464, 0, 65535)  # 0: any free port (logged)


@dataclass(frozen=True)
class RecordConfig:
    """`[record]`: what the connector published, per instrument, written as hftbacktest
    event files (connector.record): `<dir>/<connector>_<symbol>_<UTC start>_<n>.npz`."""

    enabled: bool = False
    dir: str = path_field("", must_exist=False)  # required when enabled; created if missing
    # a new file at every multiple of rotate_s since the epoch, UTC (3600: on the hour,
    # 86400: at midnight), and whenever a file reaches max_events
    rotate_s: float = rng(3600.0, 1.0, 7 * 86400.0)
    # a file is sorted and compressed in memory when it ends: ~4 x 64 bytes an event at the
    # peak (~1.3 GB for 5M events)
    max_events: int = rng(5_000_000, 1_000, 1 << 31)
    # events buffered in memory per instrument before a background thread appends them to
    # the open file's spool (`.part`); the spool becomes the compressed .npz at rotation
    chunk_events: int = rng(65_536, 256, 1 << 24)


ALERT_RULES = ("connection_lost", "feed_stale", "position", "drawdown", "rejections",
               "bot_died")  # fmt: skip


@dataclass(frozen=True)
class AlertRule:
    """One `[[alerts]]` table (connector.alerts says what each rule watches)."""

    rule: str
    threshold: float = rng(0.0, 0.0)
    command: str = ""  # run (sh -c) with the alert as JSON on stdin
    webhook: str = ""  # POST the alert as JSON here
    set_trading: str = ""  # "", "reducing" or "halted": the connector's state while it fires
    min_interval_s: float = rng(60.0, 0.0, 86400.0)  # a flapping alert fires this often at most


def _check_alert(r: AlertRule, where: str, path: str) -> None:
    if r.rule not in ALERT_RULES:
        raise ConfigError(f"{path}: {where}.rule must be one of {', '.join(ALERT_RULES)}, "
                          f"got {r.rule!r}")  # fmt: skip
    if r.set_trading not in ("", "reducing", "halted"):
        raise ConfigError(f'{path}: {where}.set_trading must be "", "reducing" or "halted"')
    if r.rule not in ("rejections", "bot_died") and r.threshold <= 0:
        raise ConfigError(f"{path}: {where}.threshold must be > 0 for rule {r.rule!r}")
    if r.webhook and not r.webhook.startswith(("http://", "https://")):
        raise ConfigError(f"{path}: {where}.webhook must be an http(s) URL")


@dataclass(frozen=True)
class Config:
    path: str
    instruments: tuple[InstrumentConfig, ...]
    connector: ConnectorSection = field(default_factory=ConnectorSection)
    risk: RiskConfig = field(default_factory=RiskConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    alerts: tuple[AlertRule, ...] = ()
    record: RecordConfig = field(default_factory=RecordConfig)
    venue: str = ""  # the registry name of the venue this config was loaded for
    section: Any = None  # that venue's `[venue]` section (its spec's dataclass), or None
    # the tables of other venues' sections in the same file, as read (a venue that uses
    # another's section builds and checks it itself: the sim's live source), by name
    tables: dict[str, Any] = field(default_factory=dict)


_SECTIONS = {"connector": ConnectorSection, "risk": RiskConfig, "metrics": MetricsConfig,
             "record": RecordConfig}  # fmt: skip


def build_section(cls, data: Any, where: str, path: str):
    """`data` (a TOML table) as the frozen dataclass `cls`, every key checked as a
    section's are: unknown or missing keys, types and ranges (ConfigError naming them)."""
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
        kwargs[name] = _checked(f, v, f"{where}.{name}", path)
    return cls(**kwargs)


def _checked(f: dataclasses.Field, v: Any, key: str, path: str) -> Any:
    """The value of field `f` after its range check or path resolution (see the top)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        r = f.metadata.get("range", Range())  # a field with no declared range: finite
        if v not in r:
            raise ConfigError(f"{path}: {key} must be in {r}, got {v!r}")
    if f.metadata.get("path") and v:
        p = Path(v).expanduser()
        if not p.is_absolute():
            p = (Path(path).resolve().parent / p).resolve()
        if f.metadata.get("must_exist") and not p.exists():
            raise ConfigError(
                f"{path}: {key}: {p} does not exist (a relative path is taken from the "
                f"config file's folder)"
            )
        v = str(p)
    return v


def check_urls(path: str, where: str, section: Any, http: tuple[str, ...] = (),
               ws: tuple[str, ...] = ()) -> None:  # fmt: skip
    """Each key of `http` in `section` is an http(s) URL and each of `ws` a ws(s) one
    (ConfigError naming the key `where.<key>` and the file)."""
    for names, schemes in ((http, ("http://", "https://")), (ws, ("ws://", "wss://"))):
        for name in names:
            url = getattr(section, name)
            if not url.startswith(schemes):
                raise ConfigError(f"{path}: {where}.{name} must start with "
                                  f"{' or '.join(schemes)}, got {url!r}")  # fmt: skip


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
    known = set(_SECTIONS) | {"instruments", "alerts"} | set(registry.names())
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
        insts.append(build_section(InstrumentConfig, t, f"instruments[{i}]", p))
    syms = [i.symbol for i in insts]
    if len(set(syms)) != len(syms):
        raise ConfigError(f"{p}: instruments lists a symbol twice: {syms}")
    sections = {k: build_section(cls, data.get(k, {}), k, p) for k, cls in _SECTIONS.items()}
    c = sections["connector"]
    for k in ("md_capacity", "req_capacity", "resp_capacity"):
        v = getattr(c, k)
        if v <= 0 or v & (v - 1):
            raise ConfigError(f"{p}: connector.{k} must be a power of two, got {v}")
    if sections["record"].enabled and not sections["record"].dir:
        raise ConfigError(f"{p}: record.dir is required when record.enabled = true (a folder; "
                          f"a relative path is taken from the config file's folder)")  # fmt: skip
    section = None
    if spec.section is not None:
        if spec.section_required and venue not in data:
            raise ConfigError(f"{p}: missing section [{venue}]")
        section = build_section(spec.section, data.get(venue, {}), venue, p)
    raw_alerts = data.get("alerts", [])
    if not isinstance(raw_alerts, list):
        raise ConfigError(f"{p}: alerts must be an array of [[alerts]] tables")
    alerts = []
    for i, t in enumerate(raw_alerts):
        a = build_section(AlertRule, t, f"alerts[{i}]", p)
        _check_alert(a, f"alerts[{i}]", p)
        alerts.append(a)
    tables = {k: data[k] for k in registry.names() if k != venue and k in data}
    cfg = Config(p, tuple(insts), venue=venue, section=section, alerts=tuple(alerts),
                 tables=tables, **sections)  # fmt: skip
    if spec.check is not None:
        spec.check(cfg)
    return cfg
