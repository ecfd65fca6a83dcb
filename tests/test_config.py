"""Connector configs and the command line: every mistake names the key and the file."""

import subprocess
import sys

import pytest

from connector.config import load_config
from connector.errors import ConfigError

from .conftest import ROOT

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
