"""A recorder with hftbacktest's `Recorder` interface, for environments without hftbacktest.

`Recorder(num_assets, record_size)`; pass `.recorder` into njit code and call
`recorder.record(hbt)`; `.get(asset_no)` and `.to_npz(path)` give hftbacktest's
`record_dtype` rows, which `hftbacktest.stats.LinearAssetRecord` reads. hftbacktest's own
Recorder works with a LiveBot just as well (tests check both).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.experimental import jitclass

record_dtype = np.dtype(
    [
        ("timestamp", "i8"),
        ("price", "f8"),
        ("position", "f8"),
        ("balance", "f8"),
        ("fee", "f8"),
        ("num_trades", "i8"),
        ("trading_volume", "f8"),
        ("trading_value", "f8"),
    ],
    align=True,
)


@jitclass
class Recorder_:
    records: nb.from_dtype(record_dtype)[:, :]
    i: nb.int64

    def __init__(self, records):
        self.records = records
        self.i = 0

    def record(self, hbt):
        if self.i >= self.records.shape[0]:
            raise IndexError("Recorder is full: make it with a larger record_size")
        ts = hbt.current_timestamp
        for a in range(hbt.num_assets):
            depth = hbt.depth(a)
            sv = hbt.state_values(a)
            r = self.records[self.i, a]
            r.timestamp = ts
            r.price = (depth.best_bid + depth.best_ask) / 2.0
            r.position = sv.position
            r.balance = sv.balance
            r.fee = sv.fee
            r.num_trades = sv.num_trades
            r.trading_volume = sv.trading_volume
            r.trading_value = sv.trading_value
        self.i += 1


class Recorder:
    def __init__(self, num_assets: int, record_size: int):
        self.records = np.zeros((record_size, num_assets), record_dtype)
        self._rec = Recorder_(self.records)

    @property
    def recorder(self) -> Recorder_:
        return self._rec

    def get(self, asset_no: int) -> np.ndarray:
        return self.records[: self._rec.i, asset_no]

    def to_npz(self, path: str) -> None:
        n = self._rec.i
        np.savez_compressed(
            path, **{str(a): self.records[:n, a] for a in range(self.records.shape[1])}
        )
