"""A window of a Binance USD-M capture, on one timeline for hftbacktest and the replay.

hftlive.fidelity runs a strategy twice on the same market data: in an hftbacktest
backtest over what hftbacktest's converter makes of a capture, and on the sim venue's
lockstep replay of the capture itself. This module writes the one file both read:

* the window: the capture's lines whose receive time falls in [start, start + duration),
  led by a REST depth snapshot (`{"lastUpdateId", "E", "T", "bids", "asks"}`) of the book
  as it stood at the window's start, rebuilt from the capture's own first snapshot and
  the diffs after it, with `lastUpdateId` = the first diff's `U` in the window, so that
  the connector's book sync (Binance local book, step 5: the first event has
  U <= lastUpdateId <= u) and hftbacktest's converter both start from it. The snapshot
  is stamped (venue and receive time alike) with the window's earliest venue time: an
  hftbacktest backtest starts its clock at its first event's earliest timestamp, the
  replay at its first line's receive time, so both start at that time;
* on one timeline: hftbacktest's converter moves every receive time later by the
  capture's most negative feed latency (`correct_local_timestamp`: the venue's clock runs
  ahead of the receiver's), while the replay keeps a capture's receive times. The window
  is written with that shift already applied, so the converter applies none and the
  replay's clock is the backtest's; the shift is reported (`Window.shift_ns`).
"""

from __future__ import annotations

import contextlib
import gzip
import io
from dataclasses import dataclass

import numpy as np
import orjson

from connector.sim.replay import open_capture


class WindowError(ValueError):
    """The window asked for is not in the capture, or the capture cannot be used."""


@dataclass(frozen=True)
class Window:
    path: str  # the window, gzip `<local ns> <raw JSON>` lines (what the replay reads)
    first_ns: int  # the window's first receive time, after the shift
    last_ns: int  # its last
    lines: int
    shift_ns: int  # added to every receive time of the capture (hftbacktest's shift)


def _exch_ms(m: dict) -> int | None:
    """The venue's transaction time of a message, as hftbacktest's converter reads it."""
    d = m.get("data")
    if d is None:
        return m.get("T")  # a REST depth snapshot
    if d.get("e") == "trade" and d.get("X") != "MARKET":
        return None  # the converter skips these
    return d.get("T") if d.get("e") in ("trade", "depthUpdate") else None


def _apply(book: dict, levels) -> None:
    for px, qty in levels:
        if float(qty) == 0.0:
            book.pop(px, None)
        else:
            book[px] = qty


def write_window(capture: str, out_path: str, start_s: float, duration_s: float) -> Window:
    """Writes the window [capture start + start_s, + duration_s) of `capture` to
    `out_path` (gzip), led by a snapshot and shifted as the module docstring says.

    Raises:
        WindowError: the window is not inside the capture (or before its first snapshot).
    """
    if not (start_s >= 0 and duration_s > 0):
        raise WindowError(f"the window needs start >= 0 and duration > 0 (seconds), got "
                          f"start={start_s}, duration={duration_s}")  # fmt: skip
    bids: dict[str, str] = {}
    asks: dict[str, str] = {}
    synced = False
    last_u = 0
    t0 = t_last = None
    kept: list[tuple[int, bytes, int | None]] = []  # (local ns, raw, exch ms)
    end_ns = None
    try:
        f = open_capture(capture)
    except OSError as e:
        raise WindowError(f"cannot read the capture {capture}: {e}") from None
    with f:
        for n, line in enumerate(f, 1):
            ts_s, _, raw = line.partition(b" ")
            try:
                local = int(ts_s)
                m = orjson.loads(raw)
            except ValueError:
                raise WindowError(f"{capture}: line {n} is not `<local ns> <JSON>`") from None
            if t0 is None:
                t0 = local
                start_ns = t0 + int(start_s * 1e9)
                end_ns = start_ns + int(duration_s * 1e9)
            t_last = local
            if local >= end_ns:
                break
            d = m.get("data")
            if local < start_ns:  # before the window: keep the book
                if d is None and "lastUpdateId" in m:
                    bids = {px: q for px, q in m["bids"]}
                    asks = {px: q for px, q in m["asks"]}
                    synced, last_u = True, m["lastUpdateId"]
                elif synced and d is not None and d.get("e") == "depthUpdate":
                    if d["u"] > last_u:
                        _apply(bids, d["b"])
                        _apply(asks, d["a"])
                        last_u = d["u"]
                continue
            kept.append((local, raw.rstrip(b"\n"), _exch_ms(m)))
    if t0 is None:
        raise WindowError(f"the capture {capture} is empty")
    total_s = (t_last - t0) / 1e9
    if not kept or t_last < end_ns:
        raise WindowError(f"the window [{start_s}, {start_s + duration_s}) s is not inside "
                          f"the capture {capture}, which holds {total_s:.1f} s")  # fmt: skip
    if not synced:
        raise WindowError(f"the window starts at {start_s} s, before the capture's first "
                          f"depth snapshot: start after it")  # fmt: skip
    # hftbacktest's converter makes no event of a bookTicker: lines of them at the end
    # would give the replay data past the backtest's last event, and so a step more
    while kept and orjson.loads(kept[-1][1]).get("data", {}).get("e") not in ("depthUpdate",
                                                                               "trade"):  # fmt: skip
        kept.pop()
    lat = [local - exch * 1_000_000 for local, _, exch in kept if exch is not None]
    shift = max(0, -min(lat)) if lat else 0
    # the snapshot leads the window at its earliest venue time: a backtest starts its
    # clock at its first event's earliest time (an exch_ts), the replay at its first
    # line's receive time; so both start at the same time, with a feed latency of 0
    first_diff = next((orjson.loads(r)["data"] for _, r, _ in kept
                       if b'"depthUpdate"' in r), None)  # fmt: skip
    if first_diff is None:
        raise WindowError("the window holds no depth update to resume the book from")
    t0_ms = min(exch for _, _, exch in kept if exch is not None)
    snap = {"lastUpdateId": first_diff["U"], "E": t0_ms, "T": t0_ms,
            "bids": sorted(bids.items(), key=lambda kv: -float(kv[0])),
            "asks": sorted(asks.items(), key=lambda kv: float(kv[0]))}  # fmt: skip
    kept.insert(0, (t0_ms * 1_000_000 - shift, orjson.dumps(snap), t0_ms))
    with gzip.open(out_path, "wb", compresslevel=1) as g:
        for local, raw, _ in kept:
            g.write(b"%d %s\n" % (local + shift, raw))
    return Window(out_path, kept[0][0] + shift, kept[-1][0] + shift, len(kept), shift)


def convert(window: Window) -> np.ndarray:
    """hftbacktest's own converter on the window: its event rows.

    Raises:
        WindowError: the converter moved the receive times (the window's shift missed).
    """
    from hftbacktest.data.utils import binancefutures

    size = window.lines * 200 + 1000  # rows: a diff carries tens of levels, a snapshot 1000s
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
        data = binancefutures.convert(window.path, combined_stream=True, buffer_size=size)
    if len(data) and int(data["local_ts"].min()) != window.first_ns:
        raise WindowError("hftbacktest's converter shifted the window's receive times by "
                          f"{int(data['local_ts'].min()) - window.first_ns} ns more")  # fmt: skip
    return data
