"""hftlive: run hftbacktest strategies live, from pure Python + numba.

A strategy written as ``@njit def strategy(hbt)`` for hftbacktest's backtester runs
unchanged against a `LiveBot`, which a connector process (``python -m connector``) feeds
through shared memory.
"""

# first, before anything loads or saves a numba cache entry: it puts numba's cache file I/O
# under a cross-process lock (hftlive._cachelock says why)
from hftlive import _cachelock  # noqa: F401  (installs on import)
from hftlive.bot import (
    BotError,
    HashMapMarketDepthLiveBot,
    Instrument,
    LiveBot,
    LiveBotBuilder,
    LiveError,
    LiveInstrument,
    ROIVectorMarketDepthLiveBot,
)
from hftlive.constants import *  # noqa: F401,F403  (hftbacktest's constants, same names)
from hftlive.layout import event_dtype, order_dtype, state_values_dtype

__all__ = [
    "BotError",
    "HashMapMarketDepthLiveBot",
    "Instrument",
    "LiveBot",
    "LiveBotBuilder",
    "LiveError",
    "LiveInstrument",
    "ROIVectorMarketDepthLiveBot",
    "event_dtype",
    "order_dtype",
    "state_values_dtype",
]
