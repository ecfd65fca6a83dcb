"""A wire-faithful loopback emulator of Binance USD-M futures, for end-to-end tests.

In process::

    from connector.binancefutures.emulator import Emulator

    async with Emulator(data="capture.gz", symbols=("ethusdt",), speed=5.0,
                        api_key="K", secret="S") as emu:
        emu.urls["rest"]             # http://127.0.0.1:<port>
        emu.faults.drop_depth = 1    # fault switches (faults.py)
        await emu.disconnect("public")
        emu.expire_listen_keys()

From a shell: `python -m connector.binancefutures.emulator --port 0 --data none` prints
its base URLs as one JSON line. Modules: server (the app and lifecycle), rest, wsapi,
streams (WebSocket connections and routing), gate (keys, signatures, clock, rate limits),
exchange and orders (account, matching, positions), accountinfo (account, balance
and position views), faults, errors. The venue's book and the market sources are
venue-neutral and live in `connector.emulator_kit` (shared with the Bybit emulator).
"""

from connector.binancefutures.emulator.faults import Faults
from connector.binancefutures.emulator.server import Emulator, EmulatorConfig, client_url_keys
from connector.binancefutures.emulator.streams import Timers

__all__ = ["Emulator", "EmulatorConfig", "Faults", "Timers", "client_url_keys"]
