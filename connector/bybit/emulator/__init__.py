"""A wire-faithful loopback emulator of Bybit v5 (category linear), for end-to-end tests.

In process::

    from connector.bybit.emulator import Emulator, EmulatorConfig

    async with Emulator(EmulatorConfig(symbols=("BTCUSDT",))) as emu:
        emu.urls["rest"]           # http://127.0.0.1:<port>; also ws_public, ws_private,
                                   # ws_trade, control
        emu.faults.drop_delta = 1  # fault switches (faults.py)
        await emu.apply_actions({"disconnect": "private"})

From a shell: `python -m connector.bybit.emulator --port 0 --symbols BTCUSDT` prints the
same URLs as one JSON line. Modules: server (the app, lifecycle, control API), gate (keys,
signatures, the window rule, rate limits), rest, public (public stream), private (private
stream), trade (trade stream), exchange and orders (account, matching on
`connector.matching`, executions, position, wallet), faults, errors. The book and the
market sources (synthetic, Binance-capture replay) are `connector.emulator_kit`'s.
"""

from connector.bybit.emulator.faults import Faults
from connector.bybit.emulator.server import Emulator, EmulatorConfig

__all__ = ["Emulator", "EmulatorConfig", "Faults"]
