"""The example strategies: the same function objects run in hftbacktest and live, and
hftbacktest's own Recorder and stats work on the live run."""

import subprocess
import sys

import numpy as np
import pytest
from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest, Recorder
from hftbacktest.stats import LinearAssetRecord

from hftlive import Instrument, LiveBot
from strategies.grid import gridtrading
from strategies.market_maker import market_maker

from .conftest import CAPTURE, ROOT


@pytest.fixture(scope="module")
def capture_events():
    from hftbacktest.data.utils import binancefutures

    return binancefutures.convert(str(CAPTURE), combined_stream=True)


def _backtest(data):
    asset = (BacktestAsset().data(data).linear_asset(1.0)
             .constant_order_latency(1_000_000, 1_000_000).risk_adverse_queue_model()
             .no_partial_fill_exchange().trading_value_fee_model(-0.00005, 0.0007)
             .tick_size(0.01).lot_size(0.001))  # fmt: skip
    return HashMapMarketDepthBacktest([asset])


STOPPER = """
import os, signal, sys, time
from hftlive.monitor import BotView
conn, bot_id, pid, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
deadline = time.monotonic() + 180
view = None
try:
    # until the strategy has orders out (numba compiled it)
    while view is None or view.status(0).open_orders == 0:
        assert time.monotonic() < deadline, "the strategy never quoted"
        try:
            view = view or BotView(conn, bot_id)
        except Exception:
            pass  # not built yet
        time.sleep(0.1)
    # then `seconds` of trading at least, and until it has traded and holds a position
    # (what the test checks), however long a loaded machine takes for that
    at_least = time.monotonic() + seconds
    while True:
        s = view.status(0)
        if time.monotonic() >= at_least and s.num_trades > 0 and s.position != 0:
            break
        assert time.monotonic() < deadline, f"the strategy never traded: {s}"
        time.sleep(0.1)
finally:
    os.kill(pid, signal.SIGTERM)  # whatever happened, the strategy's run ends
"""


def _stop_after_trading(connector, bot_id, seconds):
    """SIGTERM the connector once the bot has traded for `seconds` at least and holds a
    position (from another process: a jitted loop holds the GIL, so no Python timer would
    run here)."""
    return subprocess.Popen([sys.executable, "-c", STOPPER, connector.name, str(bot_id),
                             str(connector.proc.pid), str(seconds)], cwd=ROOT)  # fmt: skip


@pytest.mark.parametrize("strategy,args", [
    (gridtrading, (0.01, 0.1, 10, 10, 20)),
    (market_maker, (0.01, 0.1, 5, 2, 3)),
], ids=["grid", "market_maker"])  # fmt: skip
def test_strategy_in_an_hftbacktest_backtest(capture_events, strategy, args):
    # (capture_events outlives the backtest: hftbacktest reads the array in place)
    hbt = _backtest(capture_events)
    rec = Recorder(1, 10_000)
    strategy(hbt, rec.recorder, *args)
    hbt.close()
    r = rec.get(0)
    assert len(r) > 3000  # the ~6 minutes of data, every 100 ms (50 ms for the market maker)
    assert r["num_trades"][-1] > 0 and np.any(r["position"] != 0)
    LinearAssetRecord(r).resample("10s").stats(book_size=10_000).summary()


@pytest.mark.parametrize("strategy,args", [
    (gridtrading, (0.001, 0.01, 5, 20, 10)),
    (market_maker, (0.001, 0.01, 3, 2, 3)),
], ids=["grid", "market_maker"])  # fmt: skip
def test_same_strategy_live_on_the_sim_venue(make_connector, strategy, args):
    c = make_connector(trades=4.0).start()
    hbt = LiveBot.builder().register(Instrument(c.name, "btcusdt", 0.1, 0.001)).id(31).build()
    rec = Recorder(1, 10_000)
    timer = _stop_after_trading(c, 31, 6.0)
    try:
        assert strategy(hbt, rec.recorder, *args)  # returns when the connector stops
    finally:
        stopper_rc = timer.wait()
        sv = hbt.state_values(0)
        hbt.close()
    assert stopper_rc == 0  # it stopped the run for the reason it was told to
    r = rec.get(0)
    assert len(r) >= 40
    assert sv.num_trades > 0 and sv.trading_volume > 0 and sv.fee != 0  # hftlive keeps them all
    assert np.any(r["position"] != 0) and np.all(np.isfinite(r["price"]))
    summary = LinearAssetRecord(r).resample("1s").stats(book_size=10_000).summary()
    assert summary["NumberOfTrades" if "NumberOfTrades" in summary.columns else "Return"].len() == 1
