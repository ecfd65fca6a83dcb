"""Alert rules: fired once, resolved once, rate-limited, with their actions (a command
fed the alert as JSON, a webhook on a real loopback HTTP server), and a rule that halts
trading. End to end on a real sim connector with real bot processes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from connector.errors import ConfigError
from hftlive import IOC, MARKET, Instrument, LiveBot

from .conftest import ROOT, wait_book, wait_until


class Hook(BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        n = int(self.headers["Content-Length"])
        Hook.got.append(json.loads(self.rfile.read(n)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture
def webhook():
    Hook.got = []
    srv = HTTPServer(("127.0.0.1", 0), Hook)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/alert", Hook.got
    srv.shutdown()
    srv.server_close()


BOT = """
import sys, time
from hftlive import LiveBot, Instrument
hbt = LiveBot.builder().register(Instrument("{name}", "btcusdt", 0.1, 0.001)).id(77).build()
print("ready", flush=True)
while True:
    hbt.elapse(100_000_000)
"""


def _fired(text: str, event: str, rule: str) -> int:
    return sum(1 for ln in text.splitlines() if f"{event}: {rule} " in ln)


def test_a_dead_bot_fires_once_runs_its_actions_and_resolves_when_it_returns(
        make_connector, tmp_path, webhook):  # fmt: skip
    url, posted = webhook
    out = tmp_path / "alerts.jsonl"
    # two rules: one posts every firing (min_interval_s = 0); the other, rate-limited
    # (60 s by default), runs a command and holds back the second death
    c = make_connector(extra=f"""
[[alerts]]
rule = "bot_died"
webhook = "{url}"
min_interval_s = 0

[[alerts]]
rule = "bot_died"
command = "cat >> {out}; echo >> {out}"
""").start()
    for round_ in range(2):
        bot = subprocess.Popen([sys.executable, "-c", BOT.format(name=c.name)], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert bot.stdout.readline().strip() == "ready"
            if round_ == 1:  # the same bot id is back: the alert resolves
                wait_until(lambda: _fired(c.text(), "alert_resolved", "bot_died") == 2, 20,
                           "the resolutions")  # fmt: skip
        finally:
            bot.send_signal(signal.SIGKILL)
            bot.wait()
        want = round_ + 2
        wait_until(lambda: _fired(c.text(), "alert_fired", "bot_died") == want, 20,  # noqa: B023
                   "the firing")  # fmt: skip
    wait_until(lambda: len(posted) == 3, 20, "three webhook posts")
    assert [(a["rule"], a["state"], a["bot"]) for a in posted] == [
        ("bot_died", "firing", 77), ("bot_died", "resolved", 77), ("bot_died", "firing", 77)]
    assert posted[0]["connector"] == c.name and posted[0]["pid"] > 0
    def lines():
        return [x for x in out.read_text().splitlines() if x.strip()] if out.exists() else []

    wait_until(lambda: len(lines()) == 2, 20, "the command")
    assert [json.loads(x)["state"] for x in lines()] == ["firing", "resolved"]


def test_a_position_alert_sets_reducing_and_rejections_fire_once(make_connector):
    c = make_connector(max_position=0.002, extra="""
[[alerts]]
rule = "position"
threshold = 0.4
set_trading = "reducing"

[[alerts]]
rule = "rejections"
threshold = 2
""").start()
    hbt = LiveBot.builder().register(Instrument(c.name, "btcusdt", 0.1, 0.001)).id(5).build()
    try:
        wait_book(hbt)
        assert hbt.submit_buy_order(0, 1, hbt.depth(0).best_ask, 0.001, IOC, MARKET, True) == 0
        wait_until(lambda: _fired(c.text(), "alert_fired", "position") == 1, 20, "position")
        wait_until(lambda: "trading state: connector reducing (alert position)" in c.text(), 20,
                   "the trading state")  # fmt: skip
        # reducing: buys are refused; three refusals in a minute fire `rejections` once
        for oid in (2, 3, 4, 5):
            assert hbt.submit_buy_order(0, oid, hbt.depth(0).best_ask, 0.001, IOC, MARKET,
                                        True) == 0  # fmt: skip
        wait_until(lambda: _fired(c.text(), "alert_fired", "rejections") == 1, 20, "rejections")
        hbt.elapse(1_500_000_000)  # three more ticks: still one firing
        assert _fired(c.text(), "alert_fired", "rejections") == 1
        # selling back reduces (allowed) and resolves the position alert
        assert hbt.submit_sell_order(0, 6, hbt.depth(0).best_bid, 0.001, IOC, MARKET, True) == 0
        wait_until(lambda: _fired(c.text(), "alert_resolved", "position") == 1, 20, "resolved")
    finally:
        hbt.close()


@pytest.mark.parametrize(
    "table, message",
    [
        ('rule = "moon"', "alerts[0].rule must be one of"),
        ('rule = "feed_stale"', "alerts[0].threshold must be > 0"),
        ('rule = "bot_died"\nset_trading = "off"', "alerts[0].set_trading must be"),
        ('rule = "bot_died"\nwebhook = "ftp://x"', "alerts[0].webhook must be an http(s) URL"),
        ('rule = "bot_died"\ncolour = 1', "unknown key alerts[0].colour"),
    ],
)
def test_bad_alert_rules_are_config_errors(tmp_path, table, message):
    from connector.config import load_config

    p = tmp_path / "c.toml"
    p.write_text('[[instruments]]\nsymbol = "x"\ntick_size = 0.1\nlot_size = 0.1\n\n'
                 f"[[alerts]]\n{table}\n")  # fmt: skip
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(p, "sim")
