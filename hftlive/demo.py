"""The demo: a connector on the simulated venue plus the tutorial grid bot, ~35 seconds.

    python -m hftlive.demo [--seconds 30] [--venue sim|binance|bybit|paper]

It trades for `--seconds` once the bot quotes, after numba has compiled the strategy
(a few s; ~20 s the first time, when hftlive's own functions are compiled and cached too).

No network, no keys. Three processes, as in production: the connector (python -m
connector ... --connector sim), the bot (this module with --bot), and this one, which
attaches read-only to the bot's shared memory to print a live status line (rewritten in
place on a terminal; one whole line every few seconds to a file or a pipe). At the end
the connector is stopped with SIGINT: it cancels the bot's open orders and shuts down,
the bot's elapse() returns 1, and the bot prints its summary.

`--venue binance` runs the same bot through the Binance USD-M connector against the
loopback Binance emulator (a fourth process speaking Binance's REST, streams, user data
stream and matching): the path a live run takes, with the emulator's keys. `--venue
bybit` does the same through the Bybit v5 connector and the loopback Bybit emulator
(REST, public, private and trade WebSockets on one port). `--venue paper` paper-trades:
the sim connector on the Binance emulator's live market (`[sim] live`, its public streams
and depth snapshots only, no key), every fill the sim's; on the real market the same
config without the emulator's URLs is examples/paper_binance.toml.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

DEMO_CONFIG = """
[[instruments]]
symbol = "btcusdt"
tick_size = 0.1
lot_size = 0.001
start_price = 60000.0

[risk]
max_position = 0.05
max_order_notional = 10000.0
max_orders_per_second = 200

[sim]
tick_interval_ms = 50
levels = 40
volatility_bp = 1.0
trades_per_tick = 3.0
"""

BF_DEMO_CONFIG = """
[[instruments]]
symbol = "btcusdt"

[risk]
max_position = 0.05
max_order_notional = 10000.0
max_orders_per_second = 200

[binancefutures]
{url_keys}
api_key_env = "HFTLIVE_DEMO_KEY"
secret_env = "HFTLIVE_DEMO_SECRET"
order_entry = "ws"
"""

BYBIT_DEMO_CONFIG = """
[[instruments]]
symbol = "BTCUSDT"

[risk]
max_position = 0.05
max_order_notional = 10000.0
max_orders_per_second = 200

[bybit]
rest_url = "{rest}"
ws_public_url = "{ws_public}"
ws_private_url = "{ws_private}"
ws_trade_url = "{ws_trade}"
api_key_env = "HFTLIVE_DEMO_KEY"
secret_env = "HFTLIVE_DEMO_SECRET"
order_entry = "ws"
"""

# paper trading: the sim on the Binance emulator's market, which stands for the real one
PAPER_CONFIG = """
[[instruments]]
symbol = "btcusdt"

[risk]
max_position = 0.05
max_orders_per_second = 100

[sim]
live = "binancefutures"

[binancefutures]
rest_url = "{rest}"
ws_public_url = "{ws_public}"
ws_market_url = "{ws_market}"
"""

# each venue's name for the demo's instrument (Bybit's symbols are uppercase)
SYMBOL = {"sim": "btcusdt", "binance": "btcusdt", "bybit": "BTCUSDT", "paper": "btcusdt"}

BOT_ID = 4242
# measured on the 2-core machine, idle: numba compiles the grid strategy on every run
# (under 5 s) and, on the first run after an install, hftlive's cached functions too
# (15-20 s in all); the whole demo takes ~36 s, ~50 s the first time
COMPILE_NOTE = "numba: a few s, ~20 s on the first run"
LINE_EVERY_S = 5.0  # not a terminal (a file, a pipe): one whole status line this often
# the sim venue's synthetic market stamps each event 1 ms before it "receives" it, so its
# feed latency is a constant of the simulation, not a measurement
SIM_FEED_NOTE = "simulated"


def status_line(view, venue: str, started: float, left: float | None) -> str:
    """The demo's status: what the bot is doing until its loop runs, then its figures."""
    now = time.monotonic()
    if view is None or int(view.header[0]["heartbeat_ns"]) == 0:
        # the view exists once the bot is built; its heartbeat once the jitted loop runs
        return f"compiling the strategy ({COMPILE_NOTE})... {now - started:3.0f} s"
    s = view.status(0)
    if left is None:
        return f"the strategy runs; waiting for its first quotes... {now - started:3.0f} s"
    feed = f"{s.feed_latency_ns / 1e6:5.2f} ms"
    if venue == "sim":
        feed += f" ({SIM_FEED_NOTE})"
    return (
        f"mid {s.mid:10.1f}  pos {s.position:+.3f}  open {s.open_orders:3d}  "
        f"trades {s.num_trades:4d}  PnL {s.equity:+9.4f}  feed {feed}  [{left:4.0f}s]"
    )


def start_venue(venue: str, name: str, tmp: str) -> tuple[list[subprocess.Popen], str]:
    """Starts the connector (and, for a real venue, its emulator); returns them and a label."""
    cfg = os.path.join(tmp, "demo.toml")
    if venue == "sim":
        with open(cfg, "w") as f:
            f.write(DEMO_CONFIG)
        conn = subprocess.Popen(
            [sys.executable, "-m", "connector", "--name", name, "--connector", "sim",
             "--config", cfg, "--log-level", "WARNING"],
        )  # fmt: skip
        return [conn], "the simulated venue (synthetic BTCUSDT market)"
    import json

    if venue == "bybit":
        module, label = "connector.bybit.emulator", "Bybit v5"
        key, secret = "emulator-api-key", "emulator-secret"  # the emulator's defaults
        args = ["--symbols", "BTCUSDT"]
    else:
        from connector.binancefutures.emulator.server import EmulatorConfig

        module, label = "connector.binancefutures.emulator", "Binance USD-M"
        key, secret = EmulatorConfig.api_key, EmulatorConfig.secret
        args = ["--symbols", "btcusdt"]
    emu = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", *args, "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    urls = json.loads(emu.stdout.readline() or "{}")
    if "rest" not in urls:
        emu.kill()
        raise RuntimeError(f"the {label} emulator did not start")
    if venue == "paper":
        with open(cfg, "w") as f:
            f.write(PAPER_CONFIG.format(**urls))
        conn = subprocess.Popen(
            [sys.executable, "-m", "connector", "--name", name, "--connector", "sim",
             "--config", cfg, "--log-level", "WARNING"],
        )  # fmt: skip
        return [conn, emu], (f"the simulated venue paper-trading on the {label} emulator's "
                             f"live market ({urls['rest']}; no key, every fill simulated)")
    with open(cfg, "w") as f:
        if venue == "bybit":
            f.write(BYBIT_DEMO_CONFIG.format(**urls))
        else:
            from connector.binancefutures.emulator.server import client_url_keys

            f.write(BF_DEMO_CONFIG.format(url_keys=client_url_keys(urls)))
    env = {**os.environ, "HFTLIVE_DEMO_KEY": key, "HFTLIVE_DEMO_SECRET": secret}
    connector = "bybit" if venue == "bybit" else "binancefutures"
    conn = subprocess.Popen(
        [sys.executable, "-m", "connector", "--name", name, "--connector", connector,
         "--config", cfg, "--log-level", "WARNING"], env=env,
    )  # fmt: skip
    return [conn, emu], f"the {label} connector against the loopback emulator ({urls['rest']})"


def run_bot(name: str, record_path: str, qty: float, symbol: str) -> int:
    import numpy as np

    from hftlive import Instrument, LiveBot
    from hftlive.recorder import Recorder
    from strategies.grid import gridtrading

    hbt = (
        LiveBot.builder()
        .register(Instrument(name, symbol, 0.1, 0.001))
        .id(BOT_ID)
        .error_handler(lambda e: None)
        .build()
    )
    recorder = Recorder(1, 100_000)
    gridtrading(hbt, recorder.recorder, qty, 10 * qty, 5, 20, 10)
    sv = hbt.state_values(0)
    mid = (hbt.depth(0).best_bid + hbt.depth(0).best_ask) / 2
    print(
        f"\nbot summary: trades {sv.num_trades}, volume {sv.trading_volume:.3f} BTC, "
        f"value {sv.trading_value:,.0f} USDT, position {sv.position:+.3f}, "
        f"fees {sv.fee:.4f}, equity {sv.balance + sv.position * mid - sv.fee:+.4f} USDT"
    )
    recorder.to_npz(record_path)
    n = len(recorder.get(0))
    print(f"bot: {n} records written to {record_path} (hftbacktest.stats reads them)")
    hbt.close()
    return 0 if np.isfinite(mid) else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hftlive.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=30.0, help="how long the demo trades")
    p.add_argument("--bot", metavar="CONNECTOR", help=argparse.SUPPRESS)
    p.add_argument("--record", default="demo_record.npz", help="where the bot writes its recording")
    p.add_argument("--venue", choices=("sim", "binance", "bybit", "paper"), default="sim",
                   help="sim (default), binance or bybit: that venue's connector against its "
                        "loopback emulator; paper: the sim paper-trading on the Binance "
                        "emulator's market")  # fmt: skip
    p.add_argument("--qty", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    # Binance's minimum order notional for BTCUSDT is 100 USDT: 0.002 BTC at ~60,000 (the
    # paper sim takes the venue's minimums too)
    qty = args.qty or (0.002 if args.venue in ("binance", "paper") else 0.001)
    if args.bot:
        return run_bot(args.bot, args.record, qty, SYMBOL[args.venue])

    from hftlive.monitor import BotView

    name = f"demo{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        procs, what = start_venue(args.venue, name, tmp)
        conn = procs[0]
        print(f"started connector {name!r} on {what}")
        bot = None
        try:
            print("starting the grid bot (strategies/grid.py; numba compiles it first)")
            bot = subprocess.Popen([sys.executable, "-m", "hftlive.demo", "--bot", name,
                                    "--record", args.record, "--qty", str(qty),
                                    "--venue", args.venue])  # fmt: skip
            view = None
            t_end = None
            started = time.monotonic()
            tty = sys.stdout.isatty()
            last_line = -LINE_EVERY_S
            width = 0
            while bot.poll() is None:
                if view is None:
                    try:
                        view = BotView(name, BOT_ID)
                    except Exception:
                        view = None  # not built yet
                if view is not None and t_end is None and view.status(0).open_orders > 0:
                    t_end = time.monotonic() + args.seconds  # the clock starts once it trades
                left = None if t_end is None else max(0.0, t_end - time.monotonic())
                line = status_line(view, args.venue, started, left)
                if tty:  # one line, rewritten in place
                    sys.stdout.write("\r" + line.ljust(width))
                    width = len(line)
                    sys.stdout.flush()
                elif time.monotonic() - last_line >= LINE_EVERY_S:  # a log: whole lines
                    print(line, flush=True)
                    last_line = time.monotonic()
                if t_end is not None and time.monotonic() >= t_end:
                    print(line if not tty else "", flush=True)  # the last figures, kept
                    break
                time.sleep(0.25)
            conn.send_signal(signal.SIGINT)  # the connector cancels orders; elapse() returns 1
            rc = bot.wait(timeout=60)
            conn.wait(timeout=30)
            for emu in procs[1:]:
                emu.send_signal(signal.SIGTERM)
                emu.wait(timeout=30)
            return rc
        finally:
            for proc in (bot, *procs):
                if proc is not None and proc.poll() is None:
                    proc.kill()


if __name__ == "__main__":
    sys.exit(main())
