"""What the two compiled-ingest tests (test_bf_ingest, test_bybit_ingest) run a venue's
decoder over: a real ShmServer and the connector's core, with or without the rings a
compiled publisher writes into (no sockets)."""

from __future__ import annotations

import numpy as np

from connector.config import ConnectorSection
from connector.core import ConnectorCore
from connector.shmserver import ShmServer
from hftlive.layout import MD_WRITE_SEQ
from tests.conftest import RecordingRouter

RING = 1 << 17


class CheckedCore(ConnectorCore):
    """The connector's core without its rings for compiled publishers: every batch goes
    through `publish`, so the decoder takes the checked path for every frame."""

    def direct_rings(self):
        return None


class RingPipeline:
    """A real ShmServer and core for one instrument; the venue's test adds its book
    (`inst`), Feed and decoder, as that venue's MarketData wires them."""

    def __init__(self, name: str, venue: str, inst_cfg, direct: bool, recorder=None):
        cfg = ConnectorSection(md_capacity=RING, snapshot_capacity=8192)
        self.shm = ShmServer(name, venue, [inst_cfg], cfg)
        self.router = RecordingRouter()
        core = ConnectorCore if direct else CheckedCore
        self.core = core(self.shm, self.router, [inst_cfg], recorder=recorder)
        self.v = self.shm.md[0]

    @property
    def seq(self) -> int:
        return int(self.v.words[MD_WRITE_SEQ])

    def events(self, lo: int, hi: int) -> np.ndarray:
        return self.v.ring[np.arange(lo, hi) & (RING - 1)]

    def levels(self):
        d = self.inst.book
        return d.bid_levels(100_000), d.ask_levels(100_000)

    def close(self) -> None:
        self.shm.close()
