"""hftlive.fidelity's comparison: two runs' steps, field by field (see hftlive.fidelity).

A run is what fidelity's Probe recorded: per step the clock, the state columns `ST` and
the order table (rows of `OD`). Cumulative state (position, balance, fee) is compared as
it stands at each step; fills as what the step added; requests as what the step made,
read from its order table against the previous step's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hftlive.constants import CANCELED, NEW, REPLACED

AGREE = ("position", "open_orders", "orders_sent", "fills")
FIELDS = ("timestamp", "price", "position", "balance", "fee", "fills", "open_orders",
          "orders_sent", "orders_cancelled", "orders_modified")  # fmt: skip
# per-step state columns of fidelity's Probe.st
ST = ("price", "position", "balance", "fee", "num_trades", "trading_volume", "trading_value")
# per-order columns of fidelity's Probe.od
OD = ("order_id", "side", "price_tick", "qty", "leaves_qty", "status", "req")


@dataclass
class Run:
    """One run's steps (what Probe recorded)."""

    ts: np.ndarray
    st: np.ndarray
    orders: list  # per step: a sorted tuple of order rows (tuples of OD)
    wall_s: float = 0.0

    def __len__(self) -> int:
        return len(self.ts)


def _requests(prev: tuple, cur: tuple) -> tuple[tuple, tuple, tuple]:
    """(sent, cancelled, modified) order ids of a step, from its order table and the
    previous step's."""
    before = {r[0]: r for r in prev}
    sent, cancelled, modified = [], [], []
    for r in cur:
        p = before.get(r[0])
        req = r[6]
        if p is None or (req == NEW and p[6] != NEW):
            sent.append(r[0])
        elif req == CANCELED and p[6] != CANCELED:
            cancelled.append(r[0])
        elif req == REPLACED and (p[6] != REPLACED or p[2:4] != r[2:4]):
            modified.append(r[0])
    return tuple(sent), tuple(cancelled), tuple(modified)


def _fields(run: Run, k: int) -> dict:
    st, prev_st = run.st[k], run.st[k - 1] if k else np.zeros(len(ST))
    sent, cancelled, modified = _requests(run.orders[k - 1] if k else (), run.orders[k])
    return {
        "timestamp": int(run.ts[k]),
        "price": float(st[0]),
        "position": float(st[1]),
        "balance": float(st[2]),
        "fee": float(st[3]),
        "fills": (int(st[4] - prev_st[4]), float(st[5] - prev_st[5])),
        "open_orders": run.orders[k],
        "orders_sent": sent,
        "orders_cancelled": cancelled,
        "orders_modified": modified,
    }


def _same(name: str, a, b, lot: float) -> bool:
    if name in ("position",):
        return abs(a - b) < lot / 2
    if name in ("balance", "fee", "price"):
        return (
            a == b
            or (math.isnan(a) and math.isnan(b))
            or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
        )
    if name == "fills":
        return a[0] == b[0] and abs(a[1] - b[1]) < lot / 2
    return a == b


def _show(v):
    if isinstance(v, tuple) and v and isinstance(v[0], tuple):  # an order table
        return [dict(zip(OD, r, strict=True)) for r in v]
    return list(v) if isinstance(v, tuple) else v


def _fill_steps(run: Run) -> list[tuple[int, float, float]]:
    """(step, signed qty, average price) of each step that traded."""
    d = np.diff(run.st[:, 1:7], axis=0, prepend=np.zeros((1, 6)))  # position .. trading_value
    out = []
    for k in np.nonzero(d[:, 3])[0]:  # num_trades moved
        vol = d[k, 4]
        out.append((int(k), float(d[k, 0]), float(d[k, 5] / vol) if vol else math.nan))
    return out


def match_fills(bt: Run, rp: Run, lot_size: float, tick_size: float, within: int = 10) -> dict:
    """The steps that traded, matched across the runs: same signed qty and average price,
    at most `within` steps apart (each matched once, nearest first). Where the step-wise
    comparison counts every step after a missed fill as different, this says how many
    fills the two runs share and how late the live side saw them."""
    a, b = _fill_steps(bt), _fill_steps(rp)
    used = [False] * len(b)
    lags: dict[int, int] = {}
    matched = 0
    for k, q, px in a:
        best = None
        for j, (k2, q2, px2) in enumerate(b):
            if used[j] or abs(k2 - k) > within:
                continue
            if abs(q2 - q) < lot_size / 2 and abs(px2 - px) < tick_size / 2:
                if best is None or abs(k2 - k) < abs(b[best][0] - k):
                    best = j
        if best is not None:
            used[best] = True
            matched += 1
            lag = b[best][0] - k
            lags[lag] = lags.get(lag, 0) + 1
    return {"backtest": len(a), "replay": len(b), "matched": matched,
            "lag_steps": {str(k): v for k, v in sorted(lags.items())}}  # fmt: skip


def compare(bt: Run, rp: Run, lot_size: float = 0.001, tick_size: float = 0.01,
            t0_ns: int | None = None) -> dict:  # fmt: skip
    """Step by step: the first divergence (its `offset_s` from `t0_ns`, the window's
    start; default: the first step), the differing steps per field, the agreement."""
    if t0_ns is None:
        t0_ns = int(bt.ts[0]) if len(bt) else 0
    n = min(len(bt), len(rp))
    lag = rp.ts[:n] - bt.ts[:n]
    counts = dict.fromkeys(FIELDS, 0)
    first_by_field: dict = {}
    first = None
    agree = 0
    for k in range(n):
        fa, fb = _fields(bt, k), _fields(rp, k)
        diff = [f for f in FIELDS if not _same(f, fa[f], fb[f], lot_size)]
        for f in diff:
            counts[f] += 1
            if f not in first_by_field:
                first_by_field[f] = {"step": k, "backtest": _show(fa[f]), "replay": _show(fb[f])}
        if not any(f in AGREE for f in diff):
            agree += 1
        if diff and first is None:
            first = {"step": k, "timestamp_ns": fa["timestamp"],
                     "offset_s": (fa["timestamp"] - t0_ns) / 1e9,
                     "fields": {f: {"backtest": _show(fa[f]), "replay": _show(fb[f])}
                                for f in diff}}  # fmt: skip
    return {
        "steps": {"backtest": len(bt), "replay": len(rp), "compared": n},
        "agreement": agree / n if n else 0.0,
        "agreeing_steps": agree,
        "differing_steps": counts,
        "first_divergence": first,
        "first_divergence_by_field": first_by_field,
        "fill_steps": match_fills(bt, rp, lot_size, tick_size),
        # the live clock minus the backtest's at each step (a wait that returns later live
        # moves every later step)
        "clock_lag_ms": {
            "last": float(lag[-1]) / 1e6 if n else 0.0,
            "max": float(lag.max()) / 1e6 if n else 0.0,
            "min": float(lag.min()) / 1e6 if n else 0.0,
        },
        "final": {
            side: {
                "position": float(r.st[-1, 1]),
                "balance": float(r.st[-1, 2]),
                "fee": float(r.st[-1, 3]),
                "num_trades": int(r.st[-1, 4]),
            }
            for side, r in (("backtest", bt), ("replay", rp))
            if len(r)
        },  # fmt: skip
        "wall_s": {"backtest": round(bt.wall_s, 3), "replay": round(rp.wall_s, 3)},
    }
