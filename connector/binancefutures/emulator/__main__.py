"""python -m connector.binancefutures.emulator --port 0 --data <capture.gz|none> ...

Prints one JSON line with the base URLs on stdout once listening, then serves until
SIGINT/SIGTERM. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from connector.binancefutures.emulator.server import Emulator, EmulatorConfig
from connector.emulator_kit.control import cli_setup


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m connector.binancefutures.emulator",
        description="Loopback Binance USD-M futures venue (REST, streams, user data, WS-API).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = an ephemeral port (printed)")
    p.add_argument("--data", default="none", help="capture file to replay, or 'none' (synthetic)")
    p.add_argument("--symbols", default="ethusdt", help="comma-separated, e.g. ethusdt,btcusdt")
    p.add_argument("--speed", type=float, default=1.0, help="market speed factor")
    p.add_argument("--api-key", default=EmulatorConfig.api_key)
    p.add_argument("--secret", default=None, help="HMAC secret (or use --secret-env)")
    p.add_argument("--secret-env", default=None, help="environment variable holding the secret")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start-paused", action="store_true", help="start with the market paused")
    p.add_argument("--hedge-mode", action="store_true",
                   help="the account is in hedge mode (dualSidePosition true; faults.hedge_mode)")  # fmt: skip
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--weight-limit", type=int, default=EmulatorConfig.weight_limit,
                   help="REQUEST_WEIGHT per minute (Binance: 2400)")  # fmt: skip
    p.add_argument("--orders-10s", type=int, default=EmulatorConfig.orders_10s,
                   help="ORDERS per 10 s (Binance: 300)")  # fmt: skip
    p.add_argument("--orders-1m", type=int, default=EmulatorConfig.orders_1m,
                   help="ORDERS per minute (Binance: 1200)")  # fmt: skip
    p.add_argument("--bench", choices=("orders", "blast"), default=None,
                   help="benchmark instrumentation (blast.py): stamp order requests; 'blast' "
                        "also sends the --data capture pre-encoded on request, not replayed")  # fmt: skip
    return p.parse_args(argv)


async def _serve(cfg: EmulatorConfig, bench: str | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if bench is None:
        emu = Emulator(cfg)
    else:
        from connector.binancefutures.emulator.blast import BenchEmulator

        emu = BenchEmulator(cfg, blast=bench == "blast")
    async with emu:
        info = {**emu.urls, "port": emu.port, "symbols": list(cfg.symbols)}
        print(json.dumps(info), flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    secret = cli_setup(a)
    cfg = EmulatorConfig(
        symbols=tuple(s.strip().lower() for s in a.symbols.split(",") if s.strip()),
        data=None if a.data.lower() == "none" else a.data,
        speed=a.speed,
        api_key=a.api_key,
        secret=secret if secret is not None else EmulatorConfig.secret,
        host=a.host,
        port=a.port,
        seed=a.seed,
        start_paused=a.start_paused,
        hedge_mode=a.hedge_mode,
        weight_limit=a.weight_limit,
        orders_10s=a.orders_10s,
        orders_1m=a.orders_1m,
    )
    try:
        asyncio.run(_serve(cfg, a.bench))
    except (ValueError, OSError) as e:
        print(f"emulator: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
