"""The shared-memory layout: every dtype and every segment's shape, defined once.

Three kinds of segment, all named after the connector (``hftlive.<connector>.*``) and
created owner-only (0600) under ``/dev/shm``:

``hftlive.<c>.ctl`` (written by the connector, except each bot slot's request ring)
    control header | instrument table | bot slot table | per slot: request ring, response ring
``hftlive.<c>.md.<symbol>`` (written by the connector only)
    market header | broadcast event ring | book snapshot (seqlock) for late or slow readers
``hftlive.<c>.bot.<bot_id>`` (written by that bot only)
    the bot's own view: depth, order table, state values, last trades, latencies

Market events, orders and state values use hftbacktest's own dtypes (reference §3.1, §4.3),
byte for byte. Every region is 64-byte aligned so that a writer's hot words never share a
cache line with a reader's. ``tests/test_layout.py`` pins every size and offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAGIC = 0x314556494C544648  # b"HFTLIVE1" little-endian
LAYOUT_VERSION = 5  # 2: response_dtype carries the venue-neutral reject `reason`; 3: trading
# states and the command mailbox (ctl header), a bot's trading state (slot); 4: a bot's view
# holds either depth kind (header `depth_kind`, `roi_capacity`; depth words `roi_lb`/`roi_ub`);
# 5: the replay clock (ctl header `clock_mode`, `clock_ns`, `ls_gen`; slot `ls_parked`,
# `ls_until`: connector.lockstep)
ALIGN = 64

# hftbacktest.types.event_dtype: Rust #[repr(C, align(64))] struct Event
event_dtype = np.dtype(
    [
        ("ev", "<u8"),
        ("exch_ts", "<i8"),
        ("local_ts", "<i8"),
        ("px", "<f8"),
        ("qty", "<f8"),
        ("order_id", "<u8"),
        ("ival", "<i8"),
        ("fval", "<f8"),
    ],
    align=True,
)

# hftbacktest.types.order_dtype: Rust #[repr(C)] struct Order (96 bytes, 2 of tail padding)
order_dtype = np.dtype(
    [
        ("qty", "<f8"),
        ("leaves_qty", "<f8"),
        ("exec_qty", "<f8"),
        ("exec_price_tick", "<i8"),
        ("price_tick", "<i8"),
        ("tick_size", "<f8"),
        ("exch_timestamp", "<i8"),
        ("local_timestamp", "<i8"),
        ("order_id", "<u8"),
        ("_q1", "<u8"),
        ("_q2", "<u8"),
        ("maker", "?"),
        ("order_type", "u1"),
        ("req", "u1"),
        ("status", "u1"),
        ("side", "i1"),
        ("time_in_force", "u1"),
    ],
    align=True,
)

# hftbacktest.types.state_values_dtype
state_values_dtype = np.dtype(
    [
        ("position", "<f8"),
        ("balance", "<f8"),
        ("fee", "<f8"),
        ("num_trades", "<i8"),
        ("trading_volume", "<f8"),
        ("trading_value", "<f8"),
    ],
    align=True,
)


def _struct(fields: list[tuple[str, str | np.dtype, int]], itemsize: int) -> np.dtype:
    """A dtype with explicit offsets: fields are (name, format, offset)."""
    return np.dtype(
        {
            "names": [f[0] for f in fields],
            "formats": [f[1] for f in fields],
            "offsets": [f[2] for f in fields],
            "itemsize": itemsize,
        }
    )


def _words(names: list[str], itemsize: int = 0) -> np.dtype:
    """A record of consecutive int64 words, for arrays that are indexed word by word."""
    return _struct([(n, "<i8", 8 * i) for i, n in enumerate(names)], itemsize or 8 * len(names))


def word(dt: np.dtype, field: str) -> int:
    """The index of an 8-byte `field` when a `dt` record is viewed as an int64 array.

    Rings and headers are updated with atomic word stores (hftlive._sys), so both sides
    index them as int64 arrays; every such index is derived here, from the dtype, so that
    a moved field moves its index with it.
    """
    fmt, off = dt.fields[field][:2]
    if fmt.itemsize != 8 or off % 8:
        raise ValueError(f"{field!r} of {dt} is not an aligned 8-byte word")
    return off // 8


def n_words(dt: np.dtype) -> int:
    """How many int64 words a `dt` record spans."""
    return dt.itemsize // 8


# Connector states (ctl header `state`)
CONN_STARTING = 0
CONN_RUNNING = 1
CONN_STOPPING = 2
CONN_STOPPED = 3

ctl_header_dtype = _struct(
    [
        ("magic", "<u8", 0),
        ("version", "<u8", 8),
        ("pid", "<i8", 16),
        ("state", "<i8", 24),
        ("epoch", "<i8", 32),  # start time in ns: tells a restarted connector apart
        ("n_instruments", "<i8", 40),
        ("max_bots", "<i8", 48),
        ("md_capacity", "<i8", 56),
        ("snap_capacity", "<i8", 64),
        ("req_capacity", "<i8", 72),
        ("resp_capacity", "<i8", 80),
        # the connector-wide trading state (hftlive.constants.TRADING_*), written by the
        # connector; tools ask for a change through the mailbox (hftlive.control): they
        # write `cmd` and `cmd_bot`, then bump `cmd_seq`; the connector applies it and
        # sets `cmd_ack` to that seq
        ("trading_state", "<i8", 88),
        ("cmd_seq", "<i8", 96),
        ("cmd_ack", "<i8", 104),
        ("cmd", "<i8", 112),
        ("cmd_bot", "<u8", 120),
        ("heartbeat_ns", "<i8", 128),  # its own cache line: written every 100 ms
        ("venue", "S32", 192),
        # the replay clock (connector.lockstep), when clock_mode is 1: the replay's time,
        # and the round counter (odd while the connector publishes a round)
        ("clock_mode", "<i8", 224),
        ("clock_ns", "<i8", 232),
        ("ls_gen", "<i8", 240),
    ],
    256,
)
# int64 word indexes into the ctl header (CtlViews.words)
CTL_PID = word(ctl_header_dtype, "pid")
CTL_STATE = word(ctl_header_dtype, "state")
CTL_EPOCH = word(ctl_header_dtype, "epoch")
CTL_HEARTBEAT = word(ctl_header_dtype, "heartbeat_ns")
CTL_TRADING = word(ctl_header_dtype, "trading_state")
CTL_CMD_SEQ = word(ctl_header_dtype, "cmd_seq")
CTL_CMD_ACK = word(ctl_header_dtype, "cmd_ack")
CTL_CMD = word(ctl_header_dtype, "cmd")
CTL_CMD_BOT = word(ctl_header_dtype, "cmd_bot")
CTL_CLOCK_MODE = word(ctl_header_dtype, "clock_mode")
CTL_CLOCK_NS = word(ctl_header_dtype, "clock_ns")
CTL_LS_GEN = word(ctl_header_dtype, "ls_gen")
CLOCK_WALL = 0
CLOCK_REPLAY = 1

instrument_dtype = _struct(
    [
        ("symbol", "S32", 0),
        ("tick_size", "<f8", 32),
        ("lot_size", "<f8", 40),
        ("account_position", "<f8", 48),  # the venue's position for the whole account
        ("n_events", "<i8", 56),
        ("n_resyncs", "<i8", 64),
        ("n_bad_messages", "<i8", 72),
        ("connected", "<i8", 80),
    ],
    128,
)

# Bot slot states
SLOT_FREE = 0
SLOT_CLAIMED = 1  # a bot won the slot and is filling it in
SLOT_ACTIVE = 2  # the bot is ready; the connector acknowledges by setting `ack = generation`

slot_dtype = _struct(
    [
        ("state", "<i8", 0),
        ("bot_id", "<u8", 8),
        ("pid", "<i8", 16),
        ("generation", "<i8", 24),
        ("ack", "<i8", 32),
        ("reject", "<i8", 40),  # non-zero: the connector refused the registration
        ("trading_state", "<i8", 48),  # the bot's own (TRADING_*), written by the connector
        ("heartbeat_ns", "<i8", 64),
        # the replay clock: the round the bot is parked at (waiting, nothing left to read),
        # and the replay time its wait ends at (connector.lockstep)
        ("ls_parked", "<i8", 72),
        ("ls_until", "<i8", 80),
    ],
    128,
)
# int64 word indexes into a slot (CtlViews.slot_words[k])
S_STATE = word(slot_dtype, "state")
S_BOT_ID = word(slot_dtype, "bot_id")
S_PID = word(slot_dtype, "pid")
S_GEN = word(slot_dtype, "generation")
S_ACK = word(slot_dtype, "ack")
S_REJECT = word(slot_dtype, "reject")
S_HEARTBEAT = word(slot_dtype, "heartbeat_ns")
S_TRADING = word(slot_dtype, "trading_state")
S_LS_PARKED = word(slot_dtype, "ls_parked")
S_LS_UNTIL = word(slot_dtype, "ls_until")

# Single-producer single-consumer ring header: the two counters on separate lines.
spsc_header_dtype = _struct([("write_seq", "<i8", 0), ("read_seq", "<i8", 64)], 128)
SPSC_WRITE = word(spsc_header_dtype, "write_seq")  # int64 word indexes of a ring header
SPSC_READ = word(spsc_header_dtype, "read_seq")
SPSC_WORDS = n_words(spsc_header_dtype)

# Broadcast market ring header (one writer, any number of readers with their own cursor).
#   write_seq: events [0, write_seq) are published; batches are published whole.
#   writing_end: the end of the batch being written; a reader that copied event r checks
#       r >= writing_end - capacity afterwards, else the copy may be torn (overrun).
#   snap_lock: a seqlock over the snapshot (odd while it is rewritten).
#   snap_seq: the ring position the snapshot is consistent with.
md_header_dtype = _struct(
    [
        ("write_seq", "<i8", 0),
        ("writing_end", "<i8", 8),
        ("snap_lock", "<i8", 64),
        ("snap_seq", "<i8", 72),
        ("snap_n", "<i8", 80),
        ("capacity", "<i8", 128),
        ("snap_capacity", "<i8", 136),
        ("tick_size", "<f8", 144),
        ("lot_size", "<f8", 152),
    ],
    192,
)
MD_WRITE_SEQ = word(md_header_dtype, "write_seq")  # int64 word indexes (MdViews.words)
MD_WRITING_END = word(md_header_dtype, "writing_end")
MD_SNAP_LOCK = word(md_header_dtype, "snap_lock")
MD_SNAP_SEQ = word(md_header_dtype, "snap_seq")
MD_SNAP_N = word(md_header_dtype, "snap_n")

# Request kinds (bot -> connector)
REQ_SUBMIT = 1
REQ_CANCEL = 2
REQ_MODIFY = 3

request_dtype = _struct(
    [
        ("kind", "<i8", 0),
        ("inst", "<i8", 8),  # the connector's instrument index
        ("ts", "<i8", 16),
        ("order", order_dtype, 32),
    ],
    128,
)

# Response kinds (connector -> bot)
RESP_ORDER = 1  # order update, with the bot's state values for that instrument
RESP_STATE = 2  # state values only
RESP_ERROR = 3  # an error for the bot's error_handler
RESP_READY = 4  # registration replay finished

response_dtype = _struct(
    [
        ("kind", "<i4", 0),
        ("err_kind", "<i4", 4),
        ("inst", "<i8", 8),
        ("code", "<i8", 16),
        ("ts", "<i8", 24),
        ("order", order_dtype, 32),
        ("state", state_values_dtype, 128),
        ("msg", "S72", 176),  # utf-8, truncated
        ("reason", "<i4", 248),  # RESP_ERROR: a constants.REJECT_* beside the raw `code`
    ],
    256,
)

bot_header_dtype = _struct(
    [
        ("magic", "<u8", 0),
        ("version", "<u8", 8),
        ("pid", "<i8", 16),
        ("bot_id", "<u8", 24),
        ("n_assets", "<i8", 32),
        ("depth_capacity", "<i8", 40),
        ("order_capacity", "<i8", 48),
        ("trade_capacity", "<i8", 56),
        ("heartbeat_ns", "<i8", 64),
        ("depth_kind", "<i8", 72),  # DEPTH_HASHMAP or DEPTH_ROIVECTOR, for every asset
        ("roi_capacity", "<i8", 80),  # ticks a row of `roi_bids`/`roi_asks` holds
    ],
    128,
)
# The depth kind of a bot (all its assets have the same, as hftbacktest's bot classes do)
DEPTH_HASHMAP = 0  # hftlive.depth: a hash map per side (`bid_keys`/`bid_vals`, ...)
DEPTH_ROIVECTOR = 1  # hftlive.depth_roi: a vector per side over the ROI (`roi_bids`, ...)
BOT_HEARTBEAT = word(bot_header_dtype, "heartbeat_ns")  # int64 word index of the bot header
BOT_HEADER_WORDS = n_words(bot_header_dtype)

# Counters of a table in the bot's view (`order_n`, `trade_n`: an int64 row per asset)
counter_dtype = _words(["n", "capacity"], 64)
N_USED = word(counter_dtype, "n")  # records in use
N_CAPACITY = word(counter_dtype, "capacity")  # trade_n only: how many it may hold
N_WORDS = n_words(counter_dtype)

# A depth's int64 words (`depth_i`, a row per asset; tick units, see depth.py, depth_roi.py)
depth_words_dtype = _words(
    ["best_bid", "best_ask", "low_bid", "high_ask", "n_bid", "n_ask", "ts",
     "dropped",  # levels dropped because a side's table was full (hash map, see depth.py)
     "roi_lb", "roi_ub"],  # the ROI vector's range, in ticks (index 0 is roi_lb)
    128,
)  # fmt: skip
D_BEST_BID = word(depth_words_dtype, "best_bid")
D_BEST_ASK = word(depth_words_dtype, "best_ask")
D_LOW_BID = word(depth_words_dtype, "low_bid")
D_HIGH_ASK = word(depth_words_dtype, "high_ask")
D_N_BID = word(depth_words_dtype, "n_bid")
D_N_ASK = word(depth_words_dtype, "n_ask")
D_TS = word(depth_words_dtype, "ts")
D_DROPPED = word(depth_words_dtype, "dropped")
D_ROI_LB = word(depth_words_dtype, "roi_lb")
D_ROI_UB = word(depth_words_dtype, "roi_ub")
D_WORDS = n_words(depth_words_dtype)
# A depth's float64 words (`depth_f`, a row per asset)
depth_floats_dtype = _struct([("tick_size", "<f8", 0), ("lot_size", "<f8", 8)], 16)
DF_TICK = word(depth_floats_dtype, "tick_size")
DF_LOT = word(depth_floats_dtype, "lot_size")
DF_WORDS = n_words(depth_floats_dtype)
# Latency words (`latency`, an int64 row per asset): the last feed and order latencies
latency_words_dtype = _words(
    ["feed_exch", "feed_local", "has_feed", "order_req", "order_exch", "order_resp",
     "has_order"],
    64,
)  # fmt: skip
L_FEED_EXCH = word(latency_words_dtype, "feed_exch")
L_FEED_LOCAL = word(latency_words_dtype, "feed_local")
L_HAS_FEED = word(latency_words_dtype, "has_feed")
L_ORDER_REQ = word(latency_words_dtype, "order_req")
L_ORDER_EXCH = word(latency_words_dtype, "order_exch")
L_ORDER_RESP = word(latency_words_dtype, "order_resp")
L_HAS_ORDER = word(latency_words_dtype, "has_order")
L_WORDS = n_words(latency_words_dtype)

# A bot's control words: an int64 array in the bot's own process (not shared memory) that
# hftlive.bot fills in and hftlive.botfn and the LiveBot jitclass (hftlive.botcore) update.
ctrl_dtype = _words(
    [
        "closed",  # close() was called
        "end",  # non-zero: the code every waiting call returns from now on
        "cb_n",  # entries in the callback queue
        "errors",  # errors received so far
        "last_err_kind",
        "last_err_code",
        "last_err_reason",
        "policy",  # the wait policy (WAIT_*)
        "found",  # the awaited order response arrived
        "has_cb",  # the bot has a Python callback
        "ready",  # connectors that finished the registration replay
        "wait_asset",  # the order a waiting call waits for: asset and id
        "wait_id",
        "resyncs",  # book resyncs so far
        "housekeep_tsc",  # the TSC reading at which the next housekeeping is due
        "last_tsc",  # the bot's time (TSC) at the last wait's return: elapse counts from it
        "seen_tsc",  # the last TSC reading a wait made (>= last_tsc)
        "skips",  # elapses returned since then without reading the clock
    ]
)
C_CLOSED = word(ctrl_dtype, "closed")
C_END = word(ctrl_dtype, "end")
C_CB_N = word(ctrl_dtype, "cb_n")
C_ERRORS = word(ctrl_dtype, "errors")
C_LAST_ERR_KIND = word(ctrl_dtype, "last_err_kind")
C_LAST_ERR_CODE = word(ctrl_dtype, "last_err_code")
C_LAST_ERR_REASON = word(ctrl_dtype, "last_err_reason")
C_POLICY = word(ctrl_dtype, "policy")
C_LAST_TSC = word(ctrl_dtype, "last_tsc")
C_FOUND = word(ctrl_dtype, "found")
C_HAS_CB = word(ctrl_dtype, "has_cb")
C_READY = word(ctrl_dtype, "ready")
C_WAIT_ASSET = word(ctrl_dtype, "wait_asset")
C_WAIT_ID = word(ctrl_dtype, "wait_id")
C_RESYNCS = word(ctrl_dtype, "resyncs")
C_HOUSEKEEP_TSC = word(ctrl_dtype, "housekeep_tsc")
C_SEEN_TSC = word(ctrl_dtype, "seen_tsc")
C_SKIPS = word(ctrl_dtype, "skips")
C_WORDS = n_words(ctrl_dtype)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass(frozen=True)
class Region:
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize


class SegmentLayout:
    """An ordered list of 64-byte-aligned regions; `views(buf)` maps them onto a buffer."""

    def __init__(self, regions: list[tuple[str, np.dtype, tuple[int, ...]]]):
        self.regions: dict[str, Region] = {}
        off = 0
        for name, dt, shape in regions:
            r = Region(name, np.dtype(dt), tuple(shape), off)
            self.regions[name] = r
            off = _align(off + r.nbytes)
        self.size = off

    def views(self, buf) -> dict[str, np.ndarray]:
        out = {}
        for r in self.regions.values():
            count = int(np.prod(r.shape))
            a = np.frombuffer(buf, dtype=r.dtype, count=count, offset=r.offset)
            out[r.name] = a.reshape(r.shape)
        return out


def _pow2(n: int, what: str) -> int:
    if n <= 0 or n & (n - 1):
        raise ValueError(f"{what} must be a power of two, got {n}")
    return n


def ctl_layout(n_instruments: int, max_bots: int, req_cap: int, resp_cap: int) -> SegmentLayout:
    _pow2(req_cap, "request ring capacity")
    _pow2(resp_cap, "response ring capacity")
    return SegmentLayout(
        [
            ("header", ctl_header_dtype, (1,)),
            ("instruments", instrument_dtype, (max(n_instruments, 1),)),
            ("slots", slot_dtype, (max_bots,)),
            ("req_hdr", np.dtype("<i8"), (max_bots, SPSC_WORDS)),
            ("req", request_dtype, (max_bots, req_cap)),
            ("resp_hdr", np.dtype("<i8"), (max_bots, SPSC_WORDS)),
            ("resp", response_dtype, (max_bots, resp_cap)),
        ]
    )


seg_header_dtype = _struct([("magic", "<u8", 0), ("version", "<u8", 8), ("pid", "<i8", 16)], 64)


def md_layout(capacity: int, snap_capacity: int) -> SegmentLayout:
    _pow2(capacity, "market ring capacity")
    return SegmentLayout(
        [
            ("seg", seg_header_dtype, (1,)),
            ("header", md_header_dtype, (1,)),
            ("ring", event_dtype, (capacity,)),
            ("snapshot", event_dtype, (snap_capacity,)),
        ]
    )


def bot_layout(n_assets: int, depth_cap: int, order_cap: int, trade_cap: int,
               roi_cap: int = 1) -> SegmentLayout:  # fmt: skip
    """A bot's view. A hash-map bot's ROI rows hold one tick; an ROI bot's hash tables one
    key (depth_cap 1): only its own depth kind's regions are sized."""
    _pow2(depth_cap, "depth table capacity")
    n = n_assets
    return SegmentLayout(
        [
            ("header", bot_header_dtype, (1,)),
            ("depth_i", np.dtype("<i8"), (n, D_WORDS)),
            ("depth_f", np.dtype("<f8"), (n, DF_WORDS)),
            ("bid_keys", np.dtype("<i8"), (n, depth_cap)),
            ("bid_vals", np.dtype("<f8"), (n, depth_cap)),
            ("ask_keys", np.dtype("<i8"), (n, depth_cap)),
            ("ask_vals", np.dtype("<f8"), (n, depth_cap)),
            ("roi_bids", np.dtype("<f8"), (n, roi_cap)),
            ("roi_asks", np.dtype("<f8"), (n, roi_cap)),
            ("orders", order_dtype, (n, order_cap)),
            ("order_n", np.dtype("<i8"), (n, N_WORDS)),
            ("state", state_values_dtype, (n,)),
            ("trades", event_dtype, (n, max(trade_cap, 1))),
            ("trade_n", np.dtype("<i8"), (n, N_WORDS)),
            ("latency", np.dtype("<i8"), (n, L_WORDS)),
        ]
    )


def depth_views(v: dict[str, np.ndarray], a: int, kind: int) -> tuple[np.ndarray, ...]:
    """Asset `a`'s depth arrays in a bot view `v`, in the order its jitclass and
    hftlive.depth_roi.depth_event take them: (di, df, bid_keys, bid_vals, ask_keys, ask_vals)
    for the hash map, (di, df, bids, asks) for the ROI vector (its `roi_lb`/`roi_ub` words
    set first: the rows are cut to the asset's own range)."""
    di, df = v["depth_i"][a], v["depth_f"][a]
    if kind == DEPTH_ROIVECTOR:
        width = int(di[D_ROI_UB] - di[D_ROI_LB]) + 1
        return di, df, v["roi_bids"][a, :width], v["roi_asks"][a, :width]
    return di, df, v["bid_keys"][a], v["bid_vals"][a], v["ask_keys"][a], v["ask_vals"][a]


def ctl_name(connector: str) -> str:
    return f"hftlive.{connector}.ctl"


def md_name(connector: str, symbol: str) -> str:
    return f"hftlive.{connector}.md.{symbol}"


def bot_name(connector: str, bot_id: int) -> str:
    return f"hftlive.{connector}.bot.{bot_id}"
