"""`[metrics]`: a real sim connector serves /metrics; scraped over a real socket and parsed
with Prometheus' own text parser."""

from __future__ import annotations

import re
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from hftlive import GTX, LIMIT, Instrument, LiveBot
from hftlive.constants import REJECT_RISK_LIMIT

from .conftest import wait_book, wait_until

METRICS = """
[metrics]
enabled = true
port = 0
"""


def scrape(url: str) -> dict[str, list]:
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(m: dict, name: str, **labels) -> float:
    got = [v for lab, v in m.get(name, []) if all(lab.get(k) == str(x) for k, x in labels.items())]
    assert len(got) == 1, (name, labels, m.get(name))
    return got[0]


def test_metrics_endpoint_shows_market_orders_and_bots(make_connector):
    c = make_connector(max_position=0.002, extra=METRICS).start()
    found = []
    wait_until(lambda: found.extend(re.findall(r"metrics on (http://\S+)", c.text())) or found,
               20, "the metrics URL in the log")  # fmt: skip
    url = found[0]
    hbt = LiveBot.builder().register(Instrument(c.name, "btcusdt", 0.1, 0.001)).id(21).build()
    try:
        wait_book(hbt)
        px = round(hbt.depth(0).best_bid * 0.98, 1)
        assert hbt.submit_buy_order(0, 1, px, 0.001, GTX, LIMIT, True) == 0
        assert hbt.submit_buy_order(0, 2, px, 0.001, GTX, LIMIT, True) == 0
        assert hbt.cancel(0, 2, True) == 0
        assert hbt.submit_buy_order(0, 3, px, 0.005, GTX, LIMIT, True) == 0  # max_position
        hbt.elapse(1_000_000)

        def ready():
            m = scrape(url)
            return m if m.get("hftlive_feed_latency_seconds_count") else None

        got = []
        wait_until(lambda: got.append(ready()) or got[-1], 20, "a feed latency sample")
        m = got[-1]
    finally:
        hbt.close()
    n = c.name
    assert value(m, "hftlive_connector_info", connector=n, venue="sim") == 1
    assert value(m, "hftlive_market_events_total", connector=n, symbol="btcusdt") > 0
    assert value(m, "hftlive_venue_connected", connector=n, symbol="ethusdt") == 1
    assert value(m, "hftlive_feed_latency_seconds_count", connector=n, symbol="btcusdt") >= 1
    bot = {"connector": n, "bot": 21, "symbol": "btcusdt"}
    assert value(m, "hftlive_orders_total", event="sent", reason=0, **bot) == 2
    assert value(m, "hftlive_orders_total", event="acked", reason=0, **bot) == 2
    assert value(m, "hftlive_orders_total", event="canceled", reason=0, **bot) == 1
    assert value(m, "hftlive_orders_total", event="refused", reason=REJECT_RISK_LIMIT, **bot) == 1
    assert value(m, "hftlive_open_orders", **bot) == 1
    assert value(m, "hftlive_position", **bot) == 0
    assert value(m, "hftlive_order_latency_seconds_count", connector=n, symbol="btcusdt",
                 request="submit") == 2  # fmt: skip
    assert value(m, "hftlive_order_latency_seconds_count", connector=n, symbol="btcusdt",
                 request="cancel") == 1  # fmt: skip
    assert value(m, "hftlive_trading_state", connector=n, bot="") == 0
    assert value(m, "hftlive_bot_up", connector=n, bot=21) == 1
    assert value(m, "hftlive_connector_heartbeat_age_seconds", connector=n) < 5


def test_metrics_on_a_port_in_use_is_a_clear_error(make_connector, tmp_path):
    import socket
    import subprocess
    import sys

    from .conftest import ROOT

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    try:
        c = make_connector(extra=METRICS.replace("port = 0", f"port = {port}"))
        r = subprocess.run([sys.executable, "-m", "connector", "--name", c.name, "--connector",
                            "sim", "--config", str(c.cfg)], cwd=ROOT, capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    finally:
        s.close()
    assert r.returncode == 2 and f"[metrics] cannot listen on 127.0.0.1:{port}" in r.stderr
