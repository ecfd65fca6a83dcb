"""Read-only views of a running connector and its bots, for status lines and notebooks.

Attaching never writes: it maps the same segments the bot and the connector write, so
what you see is exactly what the strategy saw (its depth, its orders, its state values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hftlive.constants import INVALID_MAX, INVALID_MIN, NEW, PARTIALLY_FILLED
from hftlive.depth import depth_levels
from hftlive.ipc import CtlViews
from hftlive.layout import (
    CONN_RUNNING,
    D_BEST_ASK,
    D_BEST_BID,
    D_ROI_LB,
    DEPTH_ROIVECTOR,
    DF_TICK,
    L_FEED_EXCH,
    L_FEED_LOCAL,
    L_HAS_FEED,
    N_USED,
    bot_header_dtype,
    bot_layout,
    bot_name,
    ctl_name,
    depth_views,
)
from hftlive.shm import Segment, SharedMemoryError, list_segments


@dataclass
class AssetStatus:
    mid: float
    best_bid: float
    best_ask: float
    position: float
    balance: float
    fee: float
    num_trades: int
    trading_volume: float
    open_orders: int
    feed_latency_ns: int

    @property
    def equity(self) -> float:
        """balance + position * mid - fee (linear contract), as hftbacktest.stats computes it."""
        if not math.isfinite(self.mid):
            return math.nan
        return self.balance + self.position * self.mid - self.fee


class BotView:
    """A bot's own view segment (`hftlive.<connector>.bot.<id>`), read-only."""

    def __init__(self, connector: str, bot_id: int):
        self.seg = Segment.attach(bot_name(connector, bot_id))
        h = np.frombuffer(self.seg.buf, bot_header_dtype, count=1)[0]
        self.n_assets = int(h["n_assets"])
        self.depth_kind = int(h["depth_kind"])
        lay = bot_layout(self.n_assets, int(h["depth_capacity"]), int(h["order_capacity"]),
                         max(int(h["trade_capacity"]), 1), int(h["roi_capacity"]))  # fmt: skip
        self.v = lay.views(self.seg.buf)
        self.header = self.v["header"]

    @classmethod
    def list(cls, connector: str) -> list[int]:
        prefix = f"hftlive.{connector}.bot."
        return [int(s[len(prefix) :]) for s in list_segments(prefix)]

    def orders(self, asset_no: int = 0) -> np.ndarray:
        """A copy of the bot's order table for the asset (hftbacktest's order_dtype)."""
        n = int(self.v["order_n"][asset_no, N_USED])
        return self.v["orders"][asset_no, :n].copy()

    def depth(self, asset_no: int = 0, levels: int = 10):
        """(bids, asks): arrays of (price, qty) from the best outward."""
        v, a = self.v, asset_no
        tick = float(v["depth_f"][a, DF_TICK])
        if self.depth_kind == DEPTH_ROIVECTOR:
            _, _, bids, asks = depth_views(v, a, DEPTH_ROIVECTOR)
            lb = int(v["depth_i"][a, D_ROI_LB])
            bt = lb + np.flatnonzero(bids > 0.0)[::-1]
            at = lb + np.flatnonzero(asks > 0.0)
            bq, aq = bids[bt - lb], asks[at - lb]
        else:
            bt, bq = depth_levels(v["bid_keys"][a], v["bid_vals"][a], True, levels + 64)
            at, aq = depth_levels(v["ask_keys"][a], v["ask_vals"][a], False, levels + 64)
        bb, ba = int(v["depth_i"][a, D_BEST_BID]), int(v["depth_i"][a, D_BEST_ASK])
        kb, ka = bt <= bb, at >= ba
        bids = np.column_stack([bt[kb] * tick, bq[kb]])[:levels]
        asks = np.column_stack([at[ka] * tick, aq[ka]])[:levels]
        return bids, asks

    def status(self, asset_no: int = 0) -> AssetStatus:
        v, a = self.v, asset_no
        tick = float(v["depth_f"][a, DF_TICK])
        bb, ba = int(v["depth_i"][a, D_BEST_BID]), int(v["depth_i"][a, D_BEST_ASK])
        bid = math.nan if bb == INVALID_MIN else bb * tick
        ask = math.nan if ba == INVALID_MAX else ba * tick
        st = v["state"][a]
        o = self.orders(a)
        lat = v["latency"][a]
        feed = int(lat[L_FEED_LOCAL] - lat[L_FEED_EXCH]) if lat[L_HAS_FEED] else 0
        return AssetStatus(
            mid=(bid + ask) / 2, best_bid=bid, best_ask=ask,
            position=float(st["position"]), balance=float(st["balance"]), fee=float(st["fee"]),
            num_trades=int(st["num_trades"]), trading_volume=float(st["trading_volume"]),
            open_orders=int(np.count_nonzero((o["status"] == NEW) | (o["status"] == PARTIALLY_FILLED))),
            feed_latency_ns=feed,
        )  # fmt: skip

    def close(self) -> None:
        self.seg.close()


class ConnectorView:
    """A connector's control segment, read-only: instruments, bot slots, heartbeat."""

    def __init__(self, connector: str):
        self.seg = Segment.attach(ctl_name(connector))
        self.ctl = CtlViews(self.seg.buf)

    def instruments(self) -> list[dict]:
        out = []
        for i, sym in enumerate(self.ctl.symbols()):
            r = self.ctl.instruments[i]
            out.append({
                "symbol": sym, "tick_size": float(r["tick_size"]), "lot_size": float(r["lot_size"]),
                "account_position": float(r["account_position"]), "events": int(r["n_events"]),
                "resyncs": int(r["n_resyncs"]), "bad_messages": int(r["n_bad_messages"]),
                "connected": bool(r["connected"]),
            })  # fmt: skip
        return out

    def bots(self) -> list[dict]:
        return [
            {"slot": k, "bot_id": int(np.int64(s["bot_id"])), "pid": int(s["pid"])}
            for k, s in enumerate(self.ctl.slots) if int(s["state"]) == 2
        ]  # fmt: skip

    def close(self) -> None:
        self.seg.close()


def connector_running(name: str, pid: int) -> bool:
    """Whether connector `name`, of process `pid`, says it is running: what a launcher
    polls for after starting one (a segment left by an earlier process of that name, or one
    still being made, is not it)."""
    try:
        v = ConnectorView(name)
    except (SharedMemoryError, ValueError, OSError):
        return False  # not made yet, or not complete
    try:
        h = v.ctl.header[0]
        return int(h["state"]) == CONN_RUNNING and int(h["pid"]) == pid
    finally:
        v.close()
