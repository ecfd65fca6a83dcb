"""Building a LiveBot: attach to connectors, claim a bot slot, map the rings.

Two ways, as the seed docs and hftbacktest's own live binding show::

    hbt = (LiveBot.builder()
           .register(Instrument("bf", "btcusdt", 0.1, 0.001))
           .id(12345).error_handler(on_error).order_recv_hook(on_order)
           .build())
    hbt = HashMapMarketDepthLiveBot([LiveInstrument().connector("bf").symbol("btcusdt")
                                     .tick_size(0.1).lot_size(0.001)])

Depth kind: a bot whose instruments set `roi_lb`/`roi_ub` (prices) gets hftbacktest's
ROIVectorMarketDepth (hftlive.depth_roi) from `hbt.depth(i)`, one without gets the
HashMapMarketDepth; every instrument of a bot must say the same, as hftbacktest's bot
classes are one per depth kind. `ROIVectorMarketDepthLiveBot([...])` is hftbacktest's
spelling and requires the bounds; `HashMapMarketDepthLiveBot` ignores them, as
hftbacktest's does.

Callbacks: `error_handler(err)` and `order_recv_hook(prev, new)` are Python functions. The
jitted wait loop queues the events that concern them and, when there are any, briefly
re-enters the interpreter (numba objmode) to call them, in order, on the strategy's own
thread, inside the `elapse`/`wait_*` call that received the events. If a handler raises,
that call returns 19 (CUSTOM_ERROR). A bot with no handlers never leaves nopython mode.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from dataclasses import dataclass

import numba as nb
import numpy as np

from hftlive import constants, signals
from hftlive._sys import calibrate_tsc, set_timer_slack_ns, tsc_now
from hftlive.botcore import (
    _CB_HANDLERS,
    _SESSIONS,
    LiveBotParts,
    _close_session,
    new_livebot,
)
from hftlive.botfn import md_resync, resp_consume
from hftlive.constants import WAIT_SLEEP, WAIT_SPIN, WAIT_YIELD
from hftlive.depth import depth_init
from hftlive.depth_roi import roi_init
from hftlive.ipc import CtlViews, MdViews, load_word, slot_claim, store_word
from hftlive.layout import (
    BOT_HEADER_WORDS,
    C_CB_N,
    C_HAS_CB,
    C_LAST_TSC,
    C_POLICY,
    C_READY,
    C_SEEN_TSC,
    C_WORDS,
    CLOCK_REPLAY,
    CONN_RUNNING,
    CONN_STOPPING,
    CTL_CLOCK_MODE,
    CTL_CLOCK_NS,
    CTL_LS_GEN,
    CTL_STATE,
    D_ROI_LB,
    D_ROI_UB,
    DEPTH_HASHMAP,
    DEPTH_ROIVECTOR,
    LAYOUT_VERSION,
    MAGIC,
    N_CAPACITY,
    RESP_ERROR,
    RESP_ORDER,
    S_ACK,
    S_BOT_ID,
    S_GEN,
    S_LS_PARKED,
    S_PID,
    S_REJECT,
    S_STATE,
    SLOT_ACTIVE,
    SLOT_CLAIMED,
    SLOT_FREE,
    bot_layout,
    bot_name,
    ctl_name,
    depth_views,
    event_dtype,
    md_name,
    order_dtype,
    response_dtype,
)
from hftlive.shm import Segment, SharedMemoryError, check_name, path_of, pid_alive

log = logging.getLogger(__name__)


class BotError(RuntimeError):
    """A bot could not be built: connector absent or dead, unknown symbol, bad sizes, ..."""


# The widest range of interest an instrument may have, in ticks: each side is a vector of
# float64 in the bot's view segment, so this is 128 MiB a side (hftbacktest's examples use
# ~300,000 ticks: ETHUSDT 0..3000 at 0.01). The view must also fit in /dev/shm.
MAX_ROI_TICKS = 1 << 24


@dataclass(frozen=True)
class Instrument:
    """An instrument a bot trades: (connector name, symbol) plus the sizes it expects.

    tick_size and lot_size must equal the connector's (which come from the venue); a
    mismatch is an error at build time rather than a silently mis-priced book.

    roi_lb, roi_ub: the range of interest (prices, on the tick grid, roi_lb < roi_ub) of an
    ROI-vector depth, as hftbacktest's `roi_lb`/`roi_ub`; None (both) for the hash map.
    """

    connector: str
    symbol: str
    tick_size: float
    lot_size: float
    last_trades_capacity: int = 0
    roi_lb: float | None = None
    roi_ub: float | None = None

    def roi_ticks(self) -> tuple[int, int] | None:
        """(roi_lb, roi_ub) in ticks, or None without a ROI; BotError if the ROI is bad."""
        if self.roi_lb is None and self.roi_ub is None:
            return None
        name = f"{self.connector}/{self.symbol}"
        if self.roi_lb is None or self.roi_ub is None:
            raise BotError(f"{name}: set both roi_lb and roi_ub (got roi_lb={self.roi_lb}, "
                           f"roi_ub={self.roi_ub})")  # fmt: skip
        lb, ub = float(self.roi_lb), float(self.roi_ub)
        if not (math.isfinite(lb) and math.isfinite(ub)):
            raise BotError(f"{name}: roi_lb and roi_ub must be finite prices, got {lb}, {ub}")
        if lb >= ub:
            raise BotError(f"{name}: roi_lb must be below roi_ub, got roi_lb={lb} >= roi_ub={ub}")
        if not self.tick_size > 0:
            raise BotError(f"{name}: a ROI needs a tick size > 0, got {self.tick_size}")
        ticks = []
        r = repr(float(self.tick_size))
        places = len(r.partition(".")[2]) if "e" not in r else 12  # the tick's decimals
        for key, px in (("roi_lb", lb), ("roi_ub", ub)):
            t = px / self.tick_size
            if abs(t - round(t)) > 1e-6:
                raise BotError(f"{name}: {key}={px} is not on the tick grid (tick_size "
                               f"{self.tick_size}); the nearest prices are "
                               f"{math.floor(t) * self.tick_size:.{places}f} and "
                               f"{math.ceil(t) * self.tick_size:.{places}f}")  # fmt: skip
            ticks.append(round(t))
        width = ticks[1] - ticks[0] + 1
        if width > MAX_ROI_TICKS:
            raise BotError(f"{name}: the ROI [{lb}, {ub}] is {width} ticks wide, more than "
                           f"{MAX_ROI_TICKS} ({MAX_ROI_TICKS * 8 >> 20} MiB a side); narrow it")  # fmt: skip
        return ticks[0], ticks[1]


class LiveInstrument:
    """hftbacktest's `LiveInstrument` builder (reference §6.1)."""

    def __init__(self):
        self._c = ""
        self._s = ""
        self._tick = 0.0
        self._lot = 0.0
        self._ltc = 0
        self._roi_lb: float | None = None
        self._roi_ub: float | None = None

    def connector(self, name: str) -> LiveInstrument:
        self._c = name
        return self

    def symbol(self, symbol: str) -> LiveInstrument:
        self._s = symbol
        return self

    def tick_size(self, tick_size: float) -> LiveInstrument:
        self._tick = float(tick_size)
        return self

    def lot_size(self, lot_size: float) -> LiveInstrument:
        self._lot = float(lot_size)
        return self

    def last_trades_capacity(self, n: int) -> LiveInstrument:
        self._ltc = int(n)
        return self

    def roi_lb(self, px: float) -> LiveInstrument:
        """The ROI-vector depth's lower bound (a price); with roi_ub, the bot gets one."""
        self._roi_lb = float(px)
        return self

    def roi_ub(self, px: float) -> LiveInstrument:
        self._roi_ub = float(px)
        return self

    def to_instrument(self) -> Instrument:
        return Instrument(self._c, self._s, self._tick, self._lot, self._ltc, self._roi_lb,
                          self._roi_ub)  # fmt: skip


def _names(prefix: str) -> dict[int, str]:
    return {v: k for k, v in vars(constants).items() if k.startswith(prefix)}


_KIND_NAMES = _names("ERR_")
_REASON_NAMES = _names("REJECT_")


@dataclass(frozen=True)
class LiveError:
    """What an error_handler receives.

    kind: one of hftlive.ERR_* (ERR_ORDER, ERR_CONNECTION, ERR_BOOK_RESYNC, ERR_CONNECTOR).
    code: the venue's or connector's raw code (e.g. Binance -5022), 0 when there is none.
    asset_no: the bot's asset number, or -1 when the error is not about one asset.
    msg: a human-readable message.
    order_id: the order concerned, if any.
    reason: what a refusal means on any venue, one of hftlive.REJECT_* (REJECT_POST_ONLY,
        REJECT_INSUFFICIENT_MARGIN, ...); REJECT_NONE when nothing was refused. Act on
        `reason`, log `code`.
    """

    kind: int
    code: int
    asset_no: int
    msg: str
    order_id: int = 0
    reason: int = constants.REJECT_NONE

    def __repr__(self) -> str:
        kind = _KIND_NAMES.get(self.kind, str(self.kind))
        reason = _REASON_NAMES.get(self.reason, str(self.reason))
        return (
            f"LiveError(kind={kind}, code={self.code}, reason={reason}, "
            f"asset_no={self.asset_no}, order_id={self.order_id}, msg={self.msg!r})"
        )


class _Session:
    """The Python side of one bot: its segments, its handlers, and its cleanup."""

    def __init__(self, key, ctrl, cbq, cbq_prev, error_handler, order_recv_hook):
        self.key = key
        self.ctrl = ctrl
        self.cbq = cbq
        self.cbq_prev = cbq_prev
        self.error_handler = error_handler
        self.order_recv_hook = order_recv_hook
        self.segments: list[Segment] = []
        self.slots: list[tuple[CtlViews, int, int]] = []  # (ctl, slot index, generation)
        self.view: Segment | None = None
        self.bell_fds: list[int] = []
        self.closed = False
        self.holds_signals = False  # signals.acquire() was called for this bot

    def run(self) -> int:
        n = int(self.ctrl[C_CB_N])
        self.ctrl[C_CB_N] = 0
        rc = 0
        for k in range(n):
            r = self.cbq[k]
            try:
                if r["kind"] == RESP_ORDER and self.order_recv_hook is not None:
                    res = self.order_recv_hook(self.cbq_prev[k].copy(), r["order"].copy())
                elif r["kind"] == RESP_ERROR and self.error_handler is not None:
                    err = LiveError(
                        int(r["err_kind"]),
                        int(r["code"]),
                        int(r["inst"]),
                        r["msg"].decode(errors="replace"),
                        int(r["order"]["order_id"]),
                        int(r["reason"]),
                    )
                    res = self.error_handler(err)
                else:
                    res = None
            except Exception:
                log.exception("a LiveBot callback raised; the waiting call returns 19")
                rc = 19
                continue
            if res is False:
                rc = 19
        return rc

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for ctl, k, gen in self.slots:
            words = ctl.slot_words
            if int(words[k, S_GEN]) == gen:
                store_word(words[k], S_STATE, SLOT_FREE)
        if self.view is not None:
            self.view.unlink()
        for fd in self.bell_fds:
            if fd >= 0:
                os.close(fd)
        _CB_HANDLERS.pop(self.key, None)
        if self.holds_signals:
            signals.release()


def _lockstep(ctls: list[CtlViews], slot_idx: list[int], names: list[str]) -> tuple:
    """The addresses a bot on a replay clock reads (connector.lockstep): the connector's
    clock and round words and this bot's ls_parked slot word; (0, 0, 0) on the wall clock.
    A replay clock is the one clock of the bot's world: its bot has that one connector."""
    replay = [int(c.words[CTL_CLOCK_MODE]) == CLOCK_REPLAY for c in ctls]
    if not any(replay):
        return (0, 0, 0)
    if len(ctls) != 1:
        raise BotError(f"connector {names[replay.index(True)]!r} runs on a replay clock "
                       f"([sim] clock = \"replay\"): a bot on it can use no other connector "
                       f"(this one has {', '.join(names)})")  # fmt: skip
    c = ctls[0]
    return (c.words.ctypes.data + 8 * CTL_CLOCK_NS, c.words.ctypes.data + 8 * CTL_LS_GEN,
            c.slot_words[slot_idx[0]].ctypes.data + 8 * S_LS_PARKED)  # fmt: skip


def _attach_connector(name: str, wait_s: float) -> tuple[Segment, CtlViews]:
    check_name(name)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            seg = Segment.attach(ctl_name(name))
        except SharedMemoryError as e:
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            raise BotError(
                f"connector {name!r} is not running ({e}); start it with "
                f"`python -m connector --name {name} --connector sim --config <file>.toml`"
            ) from None
        ctl = CtlViews(seg.buf)
        h = ctl.header[0]
        pid = int(h["pid"])
        if not pid_alive(pid):
            seg.close()
            raise BotError(
                f"connector {name!r} is dead: its pid {pid} is gone (stale {path_of(ctl_name(name))})"
            )
        state = int(load_word(ctl.words, CTL_STATE))
        if state == CONN_RUNNING:
            return seg, ctl
        if state >= CONN_STOPPING:
            seg.close()
            raise BotError(f"connector {name!r} is shutting down")
        seg.close()
        if time.monotonic() > deadline:
            raise BotError(f"connector {name!r} did not finish starting within {wait_s} s")
        time.sleep(0.05)


class LiveBotBuilder:
    """Collects instruments, id and callbacks; `build()` returns the jitted LiveBot."""

    def __init__(self):
        self._instruments: list[Instrument] = []
        self._id: int | None = None
        self._error_handler = None
        self._order_recv_hook = None
        self._policy = WAIT_SLEEP
        self._order_capacity = 1024
        self._depth_capacity = 1 << 14
        self._depth_kind: int | None = None  # None: from the instruments (roi_lb/roi_ub)
        # a connector's first start after an install compiles its njit functions before
        # it says RUNNING (~7 s on 2 cores, more on a busy machine): wait that long for it
        self._connect_timeout = 30.0

    def register(self, instrument) -> LiveBotBuilder:
        if isinstance(instrument, LiveInstrument):
            instrument = instrument.to_instrument()
        if not isinstance(instrument, Instrument):
            raise TypeError(f"register() takes an Instrument or LiveInstrument, got {instrument!r}")
        self._instruments.append(instrument)
        return self

    def id(self, bot_id: int) -> LiveBotBuilder:
        if not 0 < int(bot_id) < 2**63:
            raise ValueError(f"bot id must be in 1..2**63-1, got {bot_id}")
        self._id = int(bot_id)
        return self

    def error_handler(self, fn) -> LiveBotBuilder:
        self._error_handler = fn
        return self

    def order_recv_hook(self, fn) -> LiveBotBuilder:
        self._order_recv_hook = fn
        return self

    def wait_policy(self, policy: int) -> LiveBotBuilder:
        if policy not in (WAIT_SPIN, WAIT_YIELD, WAIT_SLEEP):
            raise ValueError(
                f"unknown wait policy {policy}: use WAIT_SPIN, WAIT_YIELD or WAIT_SLEEP"
            )
        self._policy = policy
        return self

    def order_capacity(self, n: int) -> LiveBotBuilder:
        self._order_capacity = int(n)
        return self

    def connect_timeout(self, seconds: float) -> LiveBotBuilder:
        self._connect_timeout = float(seconds)
        return self

    def build(self):
        if not self._instruments:
            raise BotError("register at least one instrument before build()")
        return _build(self)


class LiveBot:
    """Namespace for `LiveBot.builder()`, as in the seed docs."""

    @staticmethod
    def builder() -> LiveBotBuilder:
        return LiveBotBuilder()


def HashMapMarketDepthLiveBot(instruments, **kwargs):  # noqa: N802 (hftbacktest's name)
    """hftbacktest's factory: a LiveBot with a HashMap depth over these instruments (their
    roi_lb/roi_ub, if set, are not used, as in hftbacktest)."""
    return _factory(instruments, DEPTH_HASHMAP, kwargs)


def ROIVectorMarketDepthLiveBot(instruments, **kwargs):  # noqa: N802 (hftbacktest's name)
    """hftbacktest's factory: a LiveBot with an ROI-vector depth over these instruments,
    each of which must set roi_lb and roi_ub."""
    return _factory(instruments, DEPTH_ROIVECTOR, kwargs)


def _factory(instruments, kind: int, kwargs):
    b = LiveBotBuilder()
    b._depth_kind = kind
    for inst in instruments:
        b.register(inst)
    for k, v in kwargs.items():
        getattr(b, k)(v)
    return b.build()


def _depth_kind(b: LiveBotBuilder) -> tuple[int, list[tuple[int, int] | None]]:
    """The bot's depth kind and each instrument's ROI in ticks (None for the hash map)."""
    rois = [i.roi_ticks() for i in b._instruments]
    if b._depth_kind == DEPTH_HASHMAP:
        if any(rois):
            log.warning("HashMapMarketDepthLiveBot: roi_lb/roi_ub are not used by a hash-map depth")
        return DEPTH_HASHMAP, [None] * len(rois)
    with_roi = [f"{i.connector}/{i.symbol}" for i, r in zip(b._instruments, rois) if r]
    without = [f"{i.connector}/{i.symbol}" for i, r in zip(b._instruments, rois) if not r]
    if b._depth_kind == DEPTH_ROIVECTOR and without:
        raise BotError(
            f"ROIVectorMarketDepthLiveBot: set roi_lb and roi_ub on {', '.join(without)}"
        )
    if with_roi and without:
        raise BotError(
            "every instrument of a bot has the same depth kind (as hftbacktest's bot classes): "
            f"{', '.join(with_roi)} set roi_lb/roi_ub (ROI-vector depth) but "
            f"{', '.join(without)} do not (hash-map depth); set them on all or none"
        )
    return (DEPTH_ROIVECTOR if with_roi else DEPTH_HASHMAP), rois


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-12 * max(abs(a), abs(b))


def _build(b: LiveBotBuilder):
    insts = b._instruments
    kind, rois = _depth_kind(b)  # a bad ROI fails here, before any connector is touched
    conn_names = list(dict.fromkeys(i.connector for i in insts))
    seen = set()
    for i in insts:
        if (i.connector, i.symbol) in seen:
            raise BotError(f"instrument {i.connector}/{i.symbol} registered twice")
        seen.add((i.connector, i.symbol))
    n, nc = len(insts), len(conn_names)
    bot_id = b._id if b._id is not None else random.getrandbits(62) + 1
    key = bot_id
    pid = os.getpid()
    segs: list[Segment] = []
    try:
        ctls: list[CtlViews] = []
        for name in conn_names:
            seg, ctl = _attach_connector(name, b._connect_timeout)
            segs.append(seg)
            ctls.append(ctl)
        asset_conn, asset_inst, inst_asset, mds = _map_instruments(insts, conn_names, ctls, segs)
        for c, ctl in enumerate(ctls):
            _check_id_free(ctl, conn_names[c], bot_id, pid)
        view, v = _create_view(b, conn_names[0], bot_id, pid, kind, rois)
        ctrl = np.zeros(C_WORDS, np.int64)
        ctrl[C_POLICY] = b._policy
        ctrl[C_LAST_TSC] = ctrl[C_SEEN_TSC] = tsc_now()  # the first elapse counts from here
        has_cb = b._error_handler is not None or b._order_recv_hook is not None
        ctrl[C_HAS_CB] = 1 if has_cb else 0
        resp_cap = max(int(c.header[0]["resp_capacity"]) for c in ctls)
        cbq = np.zeros(resp_cap + 64, response_dtype)
        cbq_prev = np.zeros(resp_cap + 64, order_dtype)
        session = _Session(key, ctrl, cbq, cbq_prev, b._error_handler, b._order_recv_hook)
        session.segments = segs
        session.view = view
        _SESSIONS[key] = session  # from here a failed build frees its slots and its view
        # claim a slot on every connector, then wait for each to acknowledge
        for c, ctl in enumerate(ctls):
            k, gen = _claim_slot(ctl, conn_names[c], bot_id, pid)
            session.slots.append((ctl, k, gen))
        slot_idx = [k for _, k, _ in session.slots]
        for c, (ctl, k, gen) in enumerate(session.slots):
            _wait_ack(ctl, k, gen, conn_names[c], b._connect_timeout)
        session.bell_fds = [_open_bell(nm) for nm in conn_names]
        parts = LiveBotParts(
            n=n, nc=nc, depth_kind=kind, bot_id=bot_id, key=key, view=v,
            view_hdr=np.frombuffer(view.buf, np.int64, count=BOT_HEADER_WORDS),
            mds=mds, ctls=ctls, slot_idx=slot_idx, asset_conn=asset_conn,
            asset_inst=asset_inst, inst_asset=inst_asset, cursor=np.zeros(n, np.int64),
            ctrl=ctrl, cbq=cbq, cbq_prev=cbq_prev, bell_fds=session.bell_fds,
            ticks_per_ns=calibrate_tsc(), lockstep=_lockstep(ctls, slot_idx, conn_names),
        )  # fmt: skip
        if parts.lockstep[0] != 0:  # the first elapse counts from the replay's time
            ctrl[C_LAST_TSC] = load_word(ctls[0].words, CTL_CLOCK_NS)
        if b._policy == WAIT_SLEEP:
            set_timer_slack_ns(1)
        signals.acquire()
        session.holds_signals = True
        if has_cb:
            _CB_HANDLERS[key] = session
        hbt = new_livebot(parts)
    except BaseException:
        s = _SESSIONS.pop(key, None)
        if s is not None:
            s.close()
        raise
    if not _startup(parts, b._connect_timeout):
        _close_session(key)
        raise BotError(f"connector(s) {conn_names} did not replay the bot's state in time")
    return hbt


def _map_instruments(insts, conn_names, ctls, segs):
    """Check each instrument against its connector (symbol served, same sizes) and attach its
    market segment; returns (asset_conn, asset_inst, inst_asset, mds)."""
    n = len(insts)
    asset_conn = np.zeros(n, np.int64)
    asset_inst = np.zeros(n, np.int64)
    max_inst = max(int(c.header[0]["n_instruments"]) for c in ctls)
    inst_asset = np.full((len(ctls), max(max_inst, 1)), -1, np.int64)
    mds: list[MdViews] = []
    for a, inst in enumerate(insts):
        c = conn_names.index(inst.connector)
        syms = ctls[c].symbols()
        if inst.symbol not in syms:
            hint = ""
            if inst.symbol.lower() in syms or inst.symbol.upper() in syms:
                hint = " (symbols are case-sensitive)"
            raise BotError(
                f"connector {inst.connector!r} does not serve {inst.symbol!r}{hint}; "
                f"it serves: {', '.join(syms)}"
            )
        j = syms.index(inst.symbol)
        rec = ctls[c].instruments[j]
        tick, lot = float(rec["tick_size"]), float(rec["lot_size"])
        if not _same(tick, inst.tick_size) or not _same(lot, inst.lot_size):
            raise BotError(
                f"{inst.connector}/{inst.symbol}: the bot registered tick_size={inst.tick_size} "
                f"lot_size={inst.lot_size} but the venue's are tick_size={tick} lot_size={lot}"
            )
        asset_conn[a], asset_inst[a] = c, j
        inst_asset[c, j] = a
        mseg = Segment.attach(md_name(inst.connector, inst.symbol))
        segs.append(mseg)
        mds.append(MdViews(mseg.buf))
    return asset_conn, asset_inst, inst_asset, mds


def _create_view(b: LiveBotBuilder, connector: str, bot_id: int, pid: int, kind: int, rois):
    """The bot's own view segment, its header written and every depth empty."""
    insts = b._instruments
    n = len(insts)
    trade_cap = max(i.last_trades_capacity for i in insts)
    if kind == DEPTH_ROIVECTOR:
        depth_cap, roi_cap = 1, max(ub - lb + 1 for lb, ub in rois)
    else:
        depth_cap, roi_cap = b._depth_capacity, 1
    lay = bot_layout(n, depth_cap, b._order_capacity, trade_cap, roi_cap)
    _check_room(lay.size, insts, kind, roi_cap)
    view = Segment.create(bot_name(connector, bot_id), lay.size)
    v = lay.views(view.buf)
    h = v["header"]
    h["version"] = LAYOUT_VERSION
    h["pid"] = pid
    h["bot_id"] = bot_id
    h["n_assets"] = n
    h["depth_capacity"] = depth_cap
    h["order_capacity"] = b._order_capacity
    h["trade_capacity"] = trade_cap
    h["depth_kind"] = kind
    h["roi_capacity"] = roi_cap
    h["magic"] = MAGIC
    for a, inst in enumerate(insts):
        if kind == DEPTH_ROIVECTOR:
            lb, ub = rois[a]
            v["depth_i"][a, :] = 0
            v["depth_i"][a, D_ROI_LB], v["depth_i"][a, D_ROI_UB] = lb, ub  # before depth_views
            roi_init(*depth_views(v, a, kind), inst.tick_size, inst.lot_size, lb, ub)
        else:
            depth_init(*depth_views(v, a, kind), inst.tick_size, inst.lot_size)
        v["trade_n"][a, N_CAPACITY] = inst.last_trades_capacity
    return view, v


def _check_room(size: int, insts, kind: int, roi_cap: int) -> None:
    """A view that /dev/shm cannot hold fails now, with its cause, not at first touch."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return
    free = st.f_bavail * st.f_frsize
    if size > free:
        why = ""
        if kind == DEPTH_ROIVECTOR:
            why = (f": the ROI vectors take {2 * 8 * roi_cap * len(insts) >> 20} MiB "
                   f"({roi_cap} ticks a side, {len(insts)} instrument(s)); narrow roi_lb/roi_ub")  # fmt: skip
        raise BotError(f"the bot's view needs {size >> 20} MiB but /dev/shm has "
                       f"{free >> 20} MiB free{why}")  # fmt: skip


def _startup(p: LiveBotParts, timeout: float) -> bool:
    """Sync every book from its snapshot, then apply each connector's replay (open orders,
    state values) until it said READY."""
    v = p.view
    scratch = np.zeros(max(len(m.snapshot) for m in p.mds), event_dtype)
    for a, m in enumerate(p.mds):
        args = (m.words, m.snapshot, p.cursor, a, depth_views(v, a, p.depth_kind), scratch,
                p.ctrl, p.cbq, False)  # fmt: skip
        _any_layout_overload(md_resync, args)(*args)
    deadline = time.monotonic() + timeout
    ts = np.zeros(2, np.int64)
    consume = None
    while int(p.ctrl[C_READY]) < p.nc:
        for c, ctl in enumerate(p.ctls):
            k = p.slot_idx[c]
            args = (ctl.resp_hdr[k], ctl.resp[k], p.inst_asset[c], v["state"], v["orders"],
                    v["order_n"], v["latency"], p.ctrl, p.cbq, p.cbq_prev, ts, p.lockstep[0])  # fmt: skip
            consume = consume or _any_layout_overload(resp_consume, args)
            consume(*args)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0005)
    return True


def _any_layout(t):
    if isinstance(t, nb.types.Array):
        return t.copy(layout="A")
    if isinstance(t, nb.types.BaseTuple):
        return nb.types.BaseTuple.from_types([_any_layout(x) for x in t])
    return t


def _any_layout_overload(disp, args):
    """`disp`'s specialisation for `args` with arrays of any layout: the one the bot's slow
    path compiles (its arrays are jitclass fields, of layout 'A'), so that a first start
    compiles md_resync and resp_consume once, not once more for C arrays (~6 s)."""
    return disp.compile(tuple(_any_layout(nb.typeof(x)) for x in args))


def _check_id_free(ctl: CtlViews, name: str, bot_id: int, pid: int) -> None:
    words = ctl.slot_words
    for k in range(words.shape[0]):
        if int(words[k, S_STATE]) != SLOT_FREE and int(words[k, S_BOT_ID]) == int(
            np.int64(np.uint64(bot_id))
        ):
            other = int(words[k, S_PID])
            if pid_alive(other) and other != pid:
                raise BotError(
                    f"bot id {bot_id} is already in use on connector {name!r} by pid {other}"
                )


def _claim_slot(ctl: CtlViews, name: str, bot_id: int, pid: int) -> tuple[int, int]:
    _check_id_free(ctl, name, bot_id, pid)
    words = ctl.slot_words
    nslots = words.shape[0]
    for k in range(nslots):
        if int(words[k, S_STATE]) == SLOT_FREE and slot_claim(words, k, SLOT_FREE, SLOT_CLAIMED):
            gen = int(words[k, S_GEN]) + 1
            words[k, S_BOT_ID] = np.int64(np.uint64(bot_id).astype(np.int64))
            words[k, S_PID] = pid
            words[k, S_GEN] = gen
            words[k, S_REJECT] = 0
            store_word(words[k], S_STATE, SLOT_ACTIVE)
            return k, gen
    raise BotError(f"connector {name!r} has no free bot slot ({nslots} in use); raise max_bots")


def _wait_ack(ctl: CtlViews, k: int, gen: int, name: str, timeout: float) -> None:
    words = ctl.slot_words
    deadline = time.monotonic() + timeout
    while int(load_word(words[k], S_ACK)) != gen:
        if int(words[k, S_REJECT]) != 0:
            raise BotError(f"connector {name!r} refused the bot (code {int(words[k, S_REJECT])})")
        if time.monotonic() > deadline:
            store_word(words[k], S_STATE, SLOT_FREE)
            raise BotError(f"connector {name!r} did not answer the registration within {timeout} s")
        time.sleep(0.001)


def _open_bell(name: str) -> int:
    try:
        return os.open(path_of(f"hftlive.{name}.bell"), os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return -1  # the connector also polls its request rings every few ms
