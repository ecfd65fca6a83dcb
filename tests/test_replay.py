"""The sim venue replaying the real Binance capture through the live path."""

import numpy as np

from hftlive import Instrument, LiveBot
from hftlive.layout import MD_SNAP_N

from .conftest import CAPTURE

REPLAY = f"""
[[instruments]]
symbol = "ethusdt"
tick_size = 0.01
lot_size = 0.001

[sim]
data = "{CAPTURE}"
data_format = "binancefutures"
speed = 0.0
"""


def test_replay_to_the_end_with_a_bot_attached(make_connector):
    c = make_connector(config=REPLAY).start()
    hbt = LiveBot.builder().register(Instrument(c.name, "ethusdt", 0.01, 0.001)).build()
    try:
        n = 0
        while (rc := hbt.elapse(10_000_000)) == 0:
            n += 1
            d = hbt.depth(0)
            if np.isfinite(d.best_bid):
                assert d.best_bid < d.best_ask  # never a crossed top of book
        assert rc == 1  # the replay ended: the connector stopped, the run is over
        # the connector's final snapshot (its segment is still mapped by the bot)
        snap = hbt.md_snap[0][: int(hbt.md_hdr[0][MD_SNAP_N])]
        bids = snap[(snap["ev"] & (1 << 29)) != 0][:20]
        asks = snap[(snap["ev"] & (1 << 28)) != 0][:20]
        d = hbt.depth(0)
        assert round(bids[0]["px"] / 0.01) == d.best_bid_tick
        assert round(asks[0]["px"] / 0.01) == d.best_ask_tick
        for e in bids:
            assert d.bid_qty_at_tick(round(e["px"] / 0.01)) == e["qty"]
        for e in asks:
            assert d.ask_qty_at_tick(round(e["px"] / 0.01)) == e["qty"]
        assert 2600 < d.best_bid < 2800  # ETHUSDT on 2024-08-08
        assert hbt.resync_count == 0
    finally:
        hbt.close()
    assert "replay of" in c.text() and "finished" in c.text()
