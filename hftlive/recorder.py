"""A recorder with hftbacktest's `Recorder` interface, for environments without hftbacktest.

`Recorder(num_assets, record_size)`; pass `.recorder` into njit code and call
`recorder.record(hbt)`; `.get(asset_no)` and `.to_npz(path)` give hftbacktest's
`record_dtype` rows, which `hftbacktest.stats.LinearAssetRecord` reads. hftbacktest's own
Recorder works with a LiveBot just as well (tests check both).

`OrderLatencyRecorder(num_assets, size)` keeps the order latencies a bot measured
(`hbt.order_latency(a)`) and writes them as hftbacktest's order latency rows, which its
interpolated order latency model reads (`BacktestAsset().intp_order_latency(path)`).
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


# hftbacktest's order latency row (Rust `OrderLatencyRow`, hftbacktest.data.utils.
# feed_order_latency.order_latency_dtype): what its interpolated order latency model reads
order_latency_dtype = np.dtype(
    [("req_ts", "i8"), ("exch_ts", "i8"), ("resp_ts", "i8"), ("_padding", "i8")], align=True
)


@jitclass
class OrderLatencyRecorder_:
    rows: nb.from_dtype(order_latency_dtype)[:, :]
    n: nb.int64[:]

    def __init__(self, rows, n):
        self.rows = rows
        self.n = n

    def record(self, hbt):
        """Keeps `hbt.order_latency(a)` of every asset when it is a new request's: its
        request time is later than the last one kept (a fill of an order resting since
        an earlier request is not an order latency, and is skipped)."""
        for a in range(hbt.num_assets):
            lat = hbt.order_latency(a)
            if lat is not None:
                req_ts, exch_ts, resp_ts = lat
                k = self.n[a]
                if k > 0 and req_ts <= self.rows[k - 1, a].req_ts:
                    continue
                if k >= self.rows.shape[0]:
                    raise IndexError("OrderLatencyRecorder is full: make it with a larger size")
                r = self.rows[k, a]
                r.req_ts = req_ts
                r.exch_ts = exch_ts
                r.resp_ts = resp_ts
                self.n[a] = k + 1


class OrderLatencyRecorder:
    """The order latencies a bot measured, for hftbacktest's interpolated latency model.

    Pass `.recorder` into njit code and call `.record(hbt)` right after each request
    returns (`submit_*`/`cancel`/`modify` with `wait=True`, or `wait_order_response`):
    `hbt.order_latency(a)` only holds the last response, as in hftbacktest. Then
    `.to_npz(path, asset_no)` writes what `BacktestAsset().intp_order_latency(path)`
    reads: hftbacktest's `(req_ts, exch_ts, resp_ts, _padding)` rows under the key `data`.
    It works on hftbacktest's own backtest as well.

    Args:
        num_assets: the bot's number of assets.
        size: the most rows kept per asset.
    """

    def __init__(self, num_assets: int, size: int):
        self.rows = np.zeros((size, num_assets), order_latency_dtype)
        self.n = np.zeros(num_assets, np.int64)
        self._rec = OrderLatencyRecorder_(self.rows, self.n)

    @property
    def recorder(self) -> OrderLatencyRecorder_:
        return self._rec

    def get(self, asset_no: int) -> np.ndarray:
        """The rows of `asset_no`, as hftbacktest's model wants them: in request order and
        never a negative leg. A venue stamps its time in ms (Binance, Bybit) while the bot's
        are in ns, and clocks differ: an exchange time outside [req_ts, resp_ts] is moved
        to the nearest end of it."""
        rows = self.rows[: self.n[asset_no], asset_no].copy()
        rows["exch_ts"] = np.clip(rows["exch_ts"], rows["req_ts"], rows["resp_ts"])
        return rows

    def to_npz(self, path: str, asset_no: int = 0) -> None:
        """Writes the rows of `asset_no` for `BacktestAsset().intp_order_latency(path)`."""
        np.savez_compressed(path, data=self.get(asset_no))
