"""Connector configs and the command line: every mistake names the key and the file."""

import dataclasses
import os
import subprocess
import sys

import pytest

from connector import registry
from connector.config import (
    _SECTIONS,
    ConnectorSection,
    InstrumentConfig,
    RiskConfig,
    load_config,
)
from connector.errors import ConfigError
from connector.sim import SimConfig

from .conftest import CAPTURE, ROOT

GOOD = """
[[instruments]]
symbol = "btcusdt"
tick_size = 0.1
lot_size = 0.001
"""


def _load(tmp_path, text, venue="sim"):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return load_config(p, venue), str(p)


def test_a_minimal_config_loads_with_defaults(tmp_path):
    cfg, _ = _load(tmp_path, GOOD)
    assert cfg.instruments[0].symbol == "btcusdt" and cfg.connector.max_bots == 16
    assert cfg.section.data == "" and cfg.risk.max_orders_per_second == 50


@pytest.mark.parametrize("text,expect", [
    (GOOD + "\n[risk]\nmax_postion = 1.0\n", r"unknown key risk\.max_postion"),
    (GOOD + "\n[sim]\nspeed = \"fast\"\n", r"sim\.speed must be float, got str"),
    ("[sim]\nspeed = 1.0\n", r"missing required key instruments"),
    ("[[instruments]]\ntick_size = 0.1\nlot_size = 0.1\n", r"missing required key instruments\[0\]\.symbol"),
    ("[[instruments]]\nsymbol = \"x\"\nlot_size = 0.1\n", r"instruments\[0\]\.tick_size must be > 0"),
    (GOOD + "\n[connector]\nmd_capacity = 1000\n", r"connector\.md_capacity must be a power of two"),
    (GOOD + "\n[bogus]\n", r"unknown section or key 'bogus'"),
    (GOOD + GOOD, r"lists a symbol twice"),
    ("this is = = not toml", r"not valid TOML"),
])  # fmt: skip
def test_mistakes_are_errors_naming_key_and_file(tmp_path, text, expect):
    with pytest.raises(ConfigError, match=expect) as e:
        _load(tmp_path, text)
    assert str(tmp_path / "c.toml") in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", "sim")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "connector", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_cli_help_and_errors(tmp_path):
    h = _cli("--help")
    assert h.returncode == 0 and "--connector VENUE" in h.stdout and "sim" in h.stdout
    p = tmp_path / "bad.toml"
    p.write_text(GOOD + "\n[risk]\nmax_postion = 1\n")
    r = _cli("--name", "cfgtest", "--connector", "sim", "--config", str(p))
    assert r.returncode == 2 and "unknown key risk.max_postion" in r.stderr and str(p) in r.stderr
    r = _cli("--name", "bad name!", "--connector", "sim", "--config", str(tmp_path / "c.toml"))
    assert r.returncode == 2
    p.write_text(GOOD)
    r = _cli("--name", "bad name!", "--connector", "sim", "--config", str(p))
    assert r.returncode == 2 and "bad connector name" in r.stderr
    r = _cli("--name", "x", "--connector", "kraken", "--config", str(p))
    assert r.returncode == 2 and "unknown venue 'kraken'" in r.stderr


@pytest.mark.parametrize("section,key,value,expect", [
    ("risk", "max_position", "nan", r"risk\.max_position must be in \[0, inf\), got nan"),
    ("risk", "max_position", "-1", r"risk\.max_position must be in \[0, inf\), got -1"),
    ("risk", "max_orders_per_second", "-5", r"risk\.max_orders_per_second must be in \[0, inf\)"),
    ("risk", "max_order_notional", "inf", r"risk\.max_order_notional must be in \[0, inf\), got inf"),
    ("risk", "max_order_notional", "-inf", r"risk\.max_order_notional must be in"),
    ("sim", "speed", "-1", r"sim\.speed must be in \[0, inf\), got -1"),
    ("sim", "speed", "nan", r"sim\.speed must be in \[0, inf\), got nan"),
    ("sim", "tick_interval_ms", "0", r"sim\.tick_interval_ms must be in \(0, 60000\], got 0"),
    ("sim", "levels", "0", r"sim\.levels must be in \[1, 10000\], got 0"),
    ("sim", "maker_fee", "1.5", r"sim\.maker_fee must be in \[-0\.01, 0\.01\]"),
    ("sim", "seed", "-3", r"sim\.seed must be in \[0, "),
    ("connector", "max_bots", "0", r"connector\.max_bots must be in \[1, 256\], got 0"),
    ("connector", "max_bots", "300", r"connector\.max_bots must be in \[1, 256\], got 300"),
    ("connector", "snapshot_interval_ms", "-100", r"connector\.snapshot_interval_ms must be in \[1, "),
    ("connector", "md_capacity", "8", r"connector\.md_capacity must be in \[64, "),
])  # fmt: skip
def test_numbers_outside_their_range_are_errors_naming_key_file_and_range(
    tmp_path, section, key, value, expect
):
    with pytest.raises(ConfigError, match=expect) as e:
        _load(tmp_path, f"{GOOD}\n[{section}]\n{key} = {value}\n")
    assert str(tmp_path / "c.toml") in str(e.value)


@pytest.mark.parametrize("line,expect", [
    ("max_position = nan", r"instruments\[0\]\.max_position must be in \[0, inf\), got nan"),
    ("start_price = -60000.0", r"instruments\[0\]\.start_price must be in \[0, inf\)"),
    ("lot_size = inf", r"instruments\[0\]\.lot_size must be in \[0, inf\), got inf"),
])  # fmt: skip
def test_instrument_numbers_are_range_checked_too(tmp_path, line, expect):
    with pytest.raises(ConfigError, match=expect):
        _load(tmp_path, GOOD.replace("lot_size = 0.001", "") + line + "\n")


def test_the_ends_of_each_range_are_accepted(tmp_path):
    cfg, _ = _load(tmp_path, GOOD + """
[risk]
max_position = 0
max_order_notional = 0
max_orders_per_second = 0
[sim]
speed = 0
maker_fee = -0.0001
[connector]
max_bots = 256
""")  # fmt: skip
    assert cfg.risk.max_position == 0.0 and cfg.section.speed == 0.0 and cfg.connector.max_bots == 256


def test_every_numeric_field_declares_its_range():
    """A range is declared once, on the field; a numeric field without one would only be
    checked for being finite."""
    venues = [registry.spec(n).section for n in registry.names()]
    for cls in (InstrumentConfig, *_SECTIONS.values(), *venues):
        for f in dataclasses.fields(cls):
            if f.type in ("int", "float", int, float) and f.name not in ENUMERATED:
                assert "range" in f.metadata, f"{cls.__name__}.{f.name} has no range"
    assert {ConnectorSection, RiskConfig} <= set(_SECTIONS.values()) and SimConfig in venues


# numbers checked against a list of the venue's allowed values instead of a range
ENUMERATED = {"depth_interval_ms", "snapshot_limit"}


def test_a_venue_section_built_with__build_gets_the_checks(tmp_path):
    """Sections of other modules go through the same _build: NaN is refused there too,
    whether or not their fields declare a range."""
    text = (
        GOOD
        + """
[binancefutures]
rest_url = "http://127.0.0.1:1"
ws_public_url = "ws://127.0.0.1:1/public"
ws_market_url = "ws://127.0.0.1:1/market"
ws_private_url = "ws://127.0.0.1:1/private"
ws_api_url = "ws://127.0.0.1:1/ws-fapi/v1"
api_key_env = "K"
secret_env = "S"
stale_after_s = nan
"""
    )
    with pytest.raises(ConfigError, match=r"binancefutures\.stale_after_s must be in .*got nan"):
        _load(tmp_path, text, venue="binancefutures")


REPLAY = """
[[instruments]]
symbol = "ethusdt"
tick_size = 0.01
lot_size = 0.001

[sim]
data = "{data}"
data_format = "binancefutures"
"""


def test_relative_paths_are_taken_from_the_config_files_folder(tmp_path, monkeypatch):
    (tmp_path / "captures").mkdir()
    (tmp_path / "captures" / "x.gz").write_bytes(b"")
    (tmp_path / "cfg").mkdir()
    p = tmp_path / "cfg" / "replay.toml"
    p.write_text(REPLAY.format(data="../captures/x.gz"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # neither the repo root nor the config's folder
    cfg = load_config(p, "sim")
    assert cfg.section.data == str(tmp_path / "captures" / "x.gz")
    assert os.path.isabs(cfg.section.data)
    # absolute paths stay as they are; "" still means the synthetic market
    p.write_text(REPLAY.format(data=CAPTURE))
    assert load_config(p, "sim").section.data == str(CAPTURE)
    p.write_text(REPLAY.format(data=""))
    assert load_config(p, "sim").section.data == ""


def test_a_missing_data_file_is_an_error_naming_key_and_file(tmp_path):
    p = tmp_path / "replay.toml"
    p.write_text(REPLAY.format(data="nope/none.gz"))
    with pytest.raises(ConfigError, match=r"sim\.data: .*nope/none\.gz does not exist") as e:
        load_config(p, "sim")
    assert str(p) in str(e.value) and str(tmp_path / "nope" / "none.gz") in str(e.value)


def test_the_example_replay_config_loads_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(ROOT / "examples" / "replay.toml", "sim")
    assert cfg.section.data == str(CAPTURE.resolve())


def test_the_connector_started_elsewhere_finds_the_examples_capture(tmp_path):
    """The bug report: `python -m connector ... --config <repo>/examples/replay.toml` from
    another folder gave a raw FileNotFoundError traceback; it now runs (and a config
    naming a missing file is one line naming key and file, exit 2)."""
    bad = tmp_path / "bad.toml"
    bad.write_text(REPLAY.format(data="missing.gz"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "connector", "--name", f"cfgp{os.getpid()}",
                        "--connector", "sim", "--config", str(bad)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "sim.data" in r.stderr and str(bad) in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


# every example config the README and the example comments point at, with the venue it is for
EXAMPLES = {
    "sim.toml": "sim",
    "replay.toml": "sim",
    "paper_binance.toml": "sim",
    "paper_bybit.toml": "sim",
    "binancefutures.toml": "binancefutures",
    "binancefutures_emulator.toml": "binancefutures",
    "bybit.toml": "bybit",
    "bybit_emulator.toml": "bybit",
}


def test_every_example_config_is_listed_here():
    assert sorted(p.name for p in (ROOT / "examples").glob("*.toml")) == sorted(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_config_loads_and_passes_its_venues_checks(name):
    # load_config runs the venue's `check` too (not its preflight: no keys needed here)
    cfg = load_config(ROOT / "examples" / name, EXAMPLES[name])
    assert cfg.instruments and cfg.venue == EXAMPLES[name]


def _latency_file(tmp_path, rows, name="lat.npz", fields=("req_ts", "exch_ts", "resp_ts")):
    import numpy as np

    dt = np.dtype([(f, "i8") for f in fields])
    arr = np.array([tuple(r) for r in rows], dt)
    p = tmp_path / name
    np.savez(p, data=arr) if name.endswith(".npz") else np.save(p, arr)
    return p


def test_hftbacktest_exchange_settings_load(tmp_path):
    lat = _latency_file(tmp_path, [(0, 10, 20), (100, 115, 130)])
    cfg, _ = _load(tmp_path, GOOD + f"""
[sim]
exchange = "partial_fill"
queue_model = "power_prob3"
queue_power = 2.0
order_latency = "intp"
order_latency_file = "{lat.name}"
maker_fee = -0.0001
taker_fee = 0.0004
""")  # fmt: skip
    s = cfg.section
    assert (s.exchange, s.queue_model, s.order_latency) == ("partial_fill", "power_prob3", "intp")
    assert s.queue_power == 2.0
    assert s.order_latency_file == str(lat)
    assert SimConfig().exchange == "default"  # today's engine unless asked


@pytest.mark.parametrize("lines,expect", [
    ('exchange = "partial"', r"sim\.exchange must be one of default, no_partial_fill, partial_fill"),
    ('queue_model = "power_prob"', r"sim\.queue_model applies to hftbacktest's exchange models only"),
    ('exchange = "no_partial_fill"\nqueue_model = "powerprob"', r"sim\.queue_model must be one of risk_averse, power_prob"),
    ('exchange = "no_partial_fill"\nqueue_power = 0', r"sim\.queue_power must be in \(0, 100\], got 0"),
    ('exchange = "no_partial_fill"\norder_latency = "interpolated"', r'sim\.order_latency must be "constant" or "intp"'),
    ('exchange = "no_partial_fill"\norder_latency = "intp"', r"needs sim\.order_latency_file"),
    ('exchange = "no_partial_fill"\nentry_latency_ns = -1', r"sim\.entry_latency_ns must be in \[0, 6e\+10\], got -1"),
    ('exchange = "no_partial_fill"\norder_latency_file = "lat.npz"', r'order_latency_file is read with order_latency = "intp" only'),
    ('exchange = "no_partial_fill"\norder_latency = "intp"\norder_latency_file = "nope.npz"', r"nope\.npz does not exist"),
])  # fmt: skip
def test_hftbacktest_exchange_mistakes_are_specific_errors(tmp_path, lines, expect):
    _latency_file(tmp_path, [(0, 10, 20)])
    with pytest.raises(ConfigError, match=expect) as e:
        _load(tmp_path, f"{GOOD}\n[sim]\n{lines}\n")
    assert str(tmp_path / "c.toml") in str(e.value)


@pytest.mark.parametrize("rows,fields,expect", [
    ([(0, 10)], ("req_ts", "exch_ts"), r"needs fields req_ts, exch_ts, resp_ts"),
    ([], ("req_ts", "exch_ts", "resp_ts"), r"has no rows"),
    ([(100, 110, 120), (50, 60, 70)], ("req_ts", "exch_ts", "resp_ts"), r"req_ts must not decrease"),
    ([(100, 90, 120)], ("req_ts", "exch_ts", "resp_ts"), r"row 0 has"),
])  # fmt: skip
def test_bad_order_latency_data_is_a_config_error(tmp_path, rows, fields, expect):
    _latency_file(tmp_path, rows, "lat.npy", fields)
    text = (f'{GOOD}\n[sim]\nexchange = "no_partial_fill"\norder_latency = "intp"\n'
            f'order_latency_file = "lat.npy"\n')  # fmt: skip
    with pytest.raises(ConfigError, match=expect):
        _load(tmp_path, text)
