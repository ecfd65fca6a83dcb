"""Prometheus metrics of one connector: `/metrics` on a loopback port, off by default.

    [metrics]
    enabled = true
    host = "127.0.0.1"     # loopback: put a reverse proxy in front to expose it
    port = 9464

Served from the connector's own event loop (aiohttp), in Prometheus' text exposition
format (prometheus_client writes it). Every name starts with `hftlive_`; labels are
`connector`, `symbol` and `bot`. Most values are read when scraped, from what the
connector already keeps (its shared memory counters, the router's per-bot state, the
venue's position), so nothing is added to the hot paths; two histograms are observed as
things happen:

* `hftlive_order_latency_seconds{request}`: a bot's request (its local timestamp) to the
  report that concluded it reaching the connector (the venue's answer, or the
  connector's refusal): submit, cancel, modify.
* `hftlive_feed_latency_seconds`: exchange time to the connector's receive time of the
  newest market event, sampled every 100 ms per instrument (a sample, not every event:
  the market path stays untouched).
"""

from __future__ import annotations

import logging
import time

import numpy as np
from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from connector.config import MetricsConfig
from hftlive.constants import NEW, PARTIALLY_FILLED, TRADING_NAMES
from hftlive.layout import MD_WRITE_SEQ, REQ_CANCEL, REQ_MODIFY, REQ_SUBMIT
from hftlive.shm import pid_alive

log = logging.getLogger(__name__)

ORDER_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0,
                 2.0, 5.0)  # fmt: skip
FEED_BUCKETS = (0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
                1.0, 5.0)  # fmt: skip
REQUESTS = {REQ_SUBMIT: "submit", REQ_CANCEL: "cancel", REQ_MODIFY: "modify"}


class Metrics:
    """The connector's metrics: histograms it observes, and a collector read at scrape."""

    def __init__(self, name: str, venue: str, shm, router, venue_obj, instruments):
        self.name = name
        self.venue_name = venue
        self.shm = shm
        self.router = router
        self.venue = venue_obj
        self.symbols = [i.symbol for i in instruments]
        self.ticks = [i.tick_size for i in instruments]
        self.registry = CollectorRegistry(auto_describe=False)
        self.order_latency = Histogram(
            "hftlive_order_latency_seconds", "bot request to the report that concluded it",
            ["connector", "symbol", "request"], buckets=ORDER_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.feed_latency = Histogram(
            "hftlive_feed_latency_seconds",
            "exchange time to the connector's receive time of the newest market event "
            "(sampled every 100 ms)",
            ["connector", "symbol"], buckets=FEED_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self._seen = [0] * len(self.symbols)
        self.registry.register(self)
        self.url = ""

    # ------------------------------------------------------------------ observed
    def order_concluded(self, inst: int, request: int, local_ts_ns: int) -> None:
        if local_ts_ns > 0 and request in REQUESTS:
            dt = (time.time_ns() - local_ts_ns) / 1e9
            if dt >= 0:
                self.order_latency.labels(self.name, self.symbols[inst], REQUESTS[request]).observe(dt)

    def sample_feed(self) -> None:
        """The newest event of each market ring, if a new one came (every 100 ms)."""
        for i, v in enumerate(self.shm.md):
            ws = int(v.words[MD_WRITE_SEQ])
            if ws <= self._seen[i]:
                continue
            self._seen[i] = ws
            ev = v.ring[(ws - 1) & (v.ring.shape[0] - 1)]
            dt = (int(ev["local_ts"]) - int(ev["exch_ts"])) / 1e9
            if 0 <= dt < 3600:
                self.feed_latency.labels(self.name, self.symbols[i]).observe(dt)

    # ------------------------------------------------------------------ collected at scrape
    def collect(self):
        c, syms = self.name, self.symbols
        ctl = self.shm.ctl
        insts = ctl.instruments
        g = GaugeMetricFamily("hftlive_connector_info", "the connector (value 1)",
                              labels=["connector", "venue"])  # fmt: skip
        g.add_metric([c, self.venue_name], 1)
        yield g
        g = GaugeMetricFamily("hftlive_connector_heartbeat_age_seconds",
                              "age of the connector's heartbeat in shared memory",
                              labels=["connector"])  # fmt: skip
        g.add_metric([c], max(0.0, (time.time_ns() - int(ctl.header[0]["heartbeat_ns"])) / 1e9))
        yield g
        per_inst = (
            ("hftlive_market_events", "market events published", "n_events", CounterMetricFamily),
            ("hftlive_book_resyncs", "books cleared and resynchronised", "n_resyncs",
             CounterMetricFamily),
            ("hftlive_bad_messages", "malformed venue messages skipped", "n_bad_messages",
             CounterMetricFamily),
            ("hftlive_venue_connected", "the venue session is usable (1) or not (0)", "connected",
             GaugeMetricFamily),
            ("hftlive_account_position", "the account's position as the venue reports it",
             "account_position", GaugeMetricFamily),
        )  # fmt: skip
        n_events = self.shm.events_published()  # fresher than the shared memory copy
        for metric, doc, fld, fam in per_inst:
            m = fam(metric, doc, labels=["connector", "symbol"])
            for i, s in enumerate(syms):
                v = n_events[i] if fld == "n_events" else insts[i][fld]
                m.add_metric([c, s], float(v))
            yield m
        # trading states: the connector's (bot="") and each bot's own
        m = GaugeMetricFamily("hftlive_trading_state",
                              "0 active, 1 reducing, 2 halted (" + ", ".join(TRADING_NAMES) + ")",
                              labels=["connector", "bot"])  # fmt: skip
        t = self.router.trading
        m.add_metric([c, ""], t.connector)
        for b in sorted(set(self.router.bots) | set(t.bots)):
            m.add_metric([c, str(b)], t.bots.get(b, 0))
        yield m
        yield from self._bots()
        yield from self._orders()

    def _bots(self):
        c, r = self.name, self.router
        pos = GaugeMetricFamily("hftlive_position", "a bot's position", labels=["connector", "bot", "symbol"])
        pnl = GaugeMetricFamily("hftlive_pnl", "a bot's equity: balance + position * mid - fees "
                                "(quote units)", labels=["connector", "bot", "symbol"])  # fmt: skip
        fills = CounterMetricFamily("hftlive_fills", "a bot's fills",
                                    labels=["connector", "bot", "symbol"])  # fmt: skip
        fee = CounterMetricFamily("hftlive_fees", "a bot's fees (quote units)",
                                  labels=["connector", "bot", "symbol"])  # fmt: skip
        for (bot, inst), st in sorted(r.states.items()):
            s = st[0]
            lab = [c, str(bot), self.symbols[inst]]
            p = float(s["position"])
            pos.add_metric(lab, p)
            mid = self.venue.reference_price(inst)
            if np.isfinite(mid):
                pnl.add_metric(lab, float(s["balance"]) + p * mid - float(s["fee"]))
            fills.add_metric(lab, float(s["num_trades"]))
            fee.add_metric(lab, float(s["fee"]))
        yield from (pos, pnl, fills, fee)
        alive = GaugeMetricFamily("hftlive_bot_up", "a registered bot's process is alive",
                                  labels=["connector", "bot"])  # fmt: skip
        hb = GaugeMetricFamily("hftlive_bot_heartbeat_age_seconds",
                               "since the bot last called elapse/wait",
                               labels=["connector", "bot"])  # fmt: skip
        now = time.time_ns()
        for bot, b in sorted(r.bots.items()):
            alive.add_metric([c, str(bot)], 1.0 if pid_alive(b.pid) else 0.0)
            beat = int(self.shm.ctl.slots[b.slot]["heartbeat_ns"])
            if beat > 0:
                hb.add_metric([c, str(bot)], max(0.0, (now - beat) / 1e9))
        yield alive
        yield hb

    def _orders(self):
        c, r = self.name, self.router
        open_n: dict[tuple[int, int], int] = {}
        for t in r.orders.values():
            if int(t.rec[0]["status"]) in (NEW, PARTIALLY_FILLED):
                open_n[(t.bot_id, t.inst)] = open_n.get((t.bot_id, t.inst), 0) + 1
        m = GaugeMetricFamily("hftlive_open_orders", "a bot's working orders",
                              labels=["connector", "bot", "symbol"])  # fmt: skip
        for (bot, inst), n in sorted(open_n.items()):
            m.add_metric([c, str(bot), self.symbols[inst]], n)
        yield m
        m = CounterMetricFamily("hftlive_orders", "order events by what happened: sent (to the "
                                "venue), refused (by the connector), rejected (by the venue), "
                                "acked, filled, canceled, expired; with the neutral reason of a "
                                "refusal", labels=["connector", "bot", "symbol", "event", "reason"])  # fmt: skip
        for (bot, inst, event, reason), n in sorted(r.order_counts.items()):
            m.add_metric([c, str(bot), self.symbols[inst], event, str(reason)], n)
        yield m
        extra = self.venue.gauges()
        if extra:
            m = GaugeMetricFamily("hftlive_venue", "venue-specific gauges (rate-limit usage...)",
                                  labels=["connector", "name"])  # fmt: skip
            for k, v in sorted(extra.items()):
                m.add_metric([c, k], float(v))
            yield m

    # ------------------------------------------------------------------ the server
    async def serve(self, cfg: MetricsConfig) -> web.AppRunner:
        async def handler(_req: web.Request) -> web.Response:
            body = generate_latest(self.registry)
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

        app = web.Application()
        app.router.add_get("/metrics", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, cfg.host, cfg.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://{cfg.host}:{port}/metrics"
        log.info("metrics on %s", self.url)
        return runner
