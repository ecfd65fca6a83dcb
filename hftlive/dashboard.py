"""A live dashboard of one bot, for notebooks: pictures drawn from its shared memory.

    from hftlive.dashboard import Dashboard
    dash = Dashboard("bf", 4242)        # a running connector and bot id (read-only)
    dash.run(seconds=60, every_s=1.0)   # redraws in place in Jupyter

Six panels, refreshed from what the bot's strategy sees (hftlive.monitor.BotView):
the depth ladder around the touch with the bot's own working orders on it (dashed: blue
buys, orange sells); position and PnL over time; fills and refused/expired orders over
time; the feed latency and order response time of the samples taken (histograms); the
mid. matplotlib is needed (the `notebook`
extra); nothing here writes to the bot's memory.
"""

from __future__ import annotations

import time

import numpy as np

from hftlive.constants import BUY, EXPIRED, NEW, PARTIALLY_FILLED
from hftlive.layout import L_HAS_ORDER, L_ORDER_REQ, L_ORDER_RESP
from hftlive.monitor import BotView

ORDER_MAX_MS = 1000.0


class Dashboard:
    """Samples a bot's view and draws it. `asset_no`: which of the bot's assets."""

    def __init__(self, connector: str, bot_id: int, asset_no: int = 0, levels: int = 15):
        self.view = BotView(connector, bot_id)
        self.title = f"{connector} / bot {bot_id}"
        self.a = asset_no
        self.levels = levels
        self.t: list[float] = []
        self.mid: list[float] = []
        self.pos: list[float] = []
        self.pnl: list[float] = []
        self.fills: list[int] = []
        self.refused: list[int] = []
        self.feed_ms: list[float] = []
        self.order_ms: list[float] = []
        self._last_order_resp = 0
        self._t0 = time.time()

    def sample(self) -> None:
        """One sample of every series."""
        s = self.view.status(self.a)
        self.t.append(time.time() - self._t0)
        self.mid.append(s.mid)
        self.pos.append(s.position)
        self.pnl.append(s.equity)
        self.fills.append(s.num_trades)
        o = self.view.orders(self.a)
        self.refused.append(int(np.count_nonzero(o["status"] == EXPIRED)))
        if s.feed_latency_ns > 0:
            self.feed_ms.append(s.feed_latency_ns / 1e6)
        lat = self.view.v["latency"][self.a]
        if lat[L_HAS_ORDER] and int(lat[L_ORDER_RESP]) != self._last_order_resp:
            self._last_order_resp = int(lat[L_ORDER_RESP])
            ms = (int(lat[L_ORDER_RESP]) - int(lat[L_ORDER_REQ])) / 1e6
            # a fill of a resting order is a response too, long after its request: those
            # are left out (this is the bot's own last-response record, not a histogram
            # of every request; the connector's /metrics has that)
            if 0 <= ms < ORDER_MAX_MS:
                self.order_ms.append(ms)

    def figure(self):
        """The four panels as a matplotlib Figure."""
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(2, 3, figsize=(15, 7))
        fig.suptitle(self.title)
        self._ladder(ax[0, 0])
        a = ax[0, 1]
        a.plot(self.t, self.pos, color="tab:blue")
        a.set_ylabel("position", color="tab:blue")
        a.set_xlabel("s")
        b = a.twinx()
        b.plot(self.t, self.pnl, color="tab:green")
        b.set_ylabel("PnL", color="tab:green")
        a.set_title("position and PnL")
        for a, data, what in ((ax[1, 0], self.feed_ms, "feed latency (exchange -> bot)"),
                              (ax[1, 1], self.order_ms, "order responses (request -> response, "
                                                        f"< {ORDER_MAX_MS / 1e3:g} s)")):  # fmt: skip
            if data:
                a.hist(data, bins=30, color="tab:purple")
            a.set_xlabel("ms")
            a.set_title(f"{what}, n={len(data)}", fontsize=10)
        a = ax[0, 2]
        a.step(self.t, self.fills, where="post", label="fills")
        a.step(self.t, self.refused, where="post", label="refused / expired")
        a.set_xlabel("s")
        a.set_title("fills and refusals")
        a.legend()
        a = ax[1, 2]
        a.plot(self.t, self.mid, color="black", lw=1)
        a.set_xlabel("s")
        a.set_title("mid")
        fig.tight_layout()
        return fig

    def _ladder(self, a) -> None:
        bids, asks = self.view.depth(self.a, self.levels)
        if len(bids):
            a.barh(bids[:, 0], bids[:, 1], height=self._tick(), color="tab:green", label="bids")
        if len(asks):
            a.barh(asks[:, 0], asks[:, 1], height=self._tick(), color="tab:red", label="asks")
        o = self.view.orders(self.a)
        live = o[(o["status"] == NEW) | (o["status"] == PARTIALLY_FILLED)]
        for r in live:
            px = float(r["price_tick"]) * float(r["tick_size"])
            a.axhline(px, color="tab:blue" if int(r["side"]) == BUY else "tab:orange", lw=1.5,
                      ls="--")  # fmt: skip
        a.set_title(f"book and own orders ({len(live)} working)")
        a.set_xlabel("qty")
        a.set_ylabel("price")
        if len(bids) or len(asks):
            a.legend(loc="lower right")

    def _tick(self) -> float:
        from hftlive.layout import DF_TICK

        return float(self.view.v["depth_f"][self.a, DF_TICK]) * 0.8

    def run(self, seconds: float = 60.0, every_s: float = 1.0, samples_per_draw: int = 4) -> None:
        """Samples and redraws in place (IPython) for `seconds`."""
        import matplotlib.pyplot as plt
        from IPython.display import clear_output, display

        end = time.monotonic() + seconds
        while True:
            for _ in range(samples_per_draw):
                self.sample()
                time.sleep(every_s / samples_per_draw)
            fig = self.figure()
            clear_output(wait=True)
            display(fig)
            plt.close(fig)
            if time.monotonic() >= end:
                return

    def close(self) -> None:
        self.view.close()
