"""python -m connector.bybit.emulator --port 0 --symbols BTCUSDT[,ETHUSDT] [--data none|PATH]
[--api-key K] [--secret S | --secret-env VAR] [--speed X] [--seed N]

Prints ONE JSON line once listening: {"rest", "ws_public", "ws_private", "ws_trade",
"control"}, then serves until SIGINT/SIGTERM. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from connector.bybit.emulator.server import Emulator, EmulatorConfig
from connector.emulator_kit.control import cli_setup


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m connector.bybit.emulator",
        description="Loopback Bybit v5 linear venue (REST, public, private and trade streams).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = an ephemeral port (printed)")
    p.add_argument("--symbols", default="BTCUSDT", help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    p.add_argument("--data", default="none", help="a Binance capture to replay, or 'none'")
    p.add_argument("--api-key", default=EmulatorConfig.api_key)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--secret", default=None, help="HMAC secret")
    g.add_argument("--secret-env", default=None, help="environment variable holding the secret")
    p.add_argument("--speed", type=float, default=1.0, help="market speed factor")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start-paused", action="store_true", help="start with the market paused")
    p.add_argument("--hedge-mode", action="store_true",
                   help="every symbol in hedge mode (positionIdx 1/2; faults.hedge_mode)")  # fmt: skip
    p.add_argument("--bench", choices=["orders"], default=None,
                   help="orders: stamp every order request (GET /_emulator/bench/orders)")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


async def _serve(cfg: EmulatorConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Emulator(cfg) as emu:
        print(json.dumps(emu.urls), flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    secret = cli_setup(a)
    symbols = tuple(s.strip() for s in a.symbols.split(",") if s.strip())
    try:
        cfg = EmulatorConfig(
            symbols=symbols,
            data=None if a.data.lower() == "none" else a.data,
            speed=a.speed,
            api_key=a.api_key,
            secret=secret if secret is not None else EmulatorConfig.secret,
            host=a.host,
            port=a.port,
            seed=a.seed,
            start_paused=a.start_paused,
            hedge_mode=a.hedge_mode,
            stamp_orders=a.bench == "orders",
        )
        asyncio.run(_serve(cfg))
    except (ValueError, OSError) as e:
        print(f"emulator: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
