"""The shared-memory layout is pinned: a change here breaks every running peer."""

import numpy as np
import pytest
from hftbacktest import types as hbt_types

from hftlive import layout as L


def test_dtypes_are_hftbacktests_byte_for_byte():
    assert L.event_dtype == hbt_types.event_dtype
    assert L.order_dtype == hbt_types.order_dtype
    assert L.state_values_dtype == hbt_types.state_values_dtype
    assert (L.event_dtype.itemsize, L.order_dtype.itemsize, L.state_values_dtype.itemsize) == (
        64, 96, 48)  # fmt: skip


def _offsets(dt):
    return {n: dt.fields[n][1] for n in dt.names}


def test_record_sizes_and_offsets():
    assert L.ctl_header_dtype.itemsize == 256
    assert _offsets(L.ctl_header_dtype) == {
        "magic": 0, "version": 8, "pid": 16, "state": 24, "epoch": 32, "n_instruments": 40,
        "max_bots": 48, "md_capacity": 56, "snap_capacity": 64, "req_capacity": 72,
        "resp_capacity": 80, "trading_state": 88, "cmd_seq": 96, "cmd_ack": 104, "cmd": 112,
        "cmd_bot": 120, "heartbeat_ns": 128, "venue": 192, "clock_mode": 224, "clock_ns": 232,
        "ls_gen": 240,
    }  # fmt: skip
    assert L.instrument_dtype.itemsize == 128
    assert _offsets(L.slot_dtype) == {
        "state": 0, "bot_id": 8, "pid": 16, "generation": 24, "ack": 32, "reject": 40,
        "trading_state": 48, "heartbeat_ns": 64, "ls_parked": 72, "ls_until": 80,
    }  # fmt: skip
    assert L.slot_dtype.itemsize == 128
    assert _offsets(L.md_header_dtype) == {
        "write_seq": 0, "writing_end": 8, "snap_lock": 64, "snap_seq": 72, "snap_n": 80,
        "capacity": 128, "snap_capacity": 136, "tick_size": 144, "lot_size": 152,
    }  # fmt: skip
    # the int64 word indexes the rings use atomically
    assert (L.MD_WRITE_SEQ, L.MD_WRITING_END, L.MD_SNAP_LOCK, L.MD_SNAP_SEQ, L.MD_SNAP_N) == (
        0, 1, 8, 9, 10)  # fmt: skip
    assert (L.SPSC_WRITE, L.SPSC_READ, L.SPSC_WORDS) == (0, 8, 16)
    assert L.request_dtype.itemsize == 128 and _offsets(L.request_dtype)["order"] == 32
    assert L.response_dtype.itemsize == 256
    assert _offsets(L.response_dtype) == {
        "kind": 0, "err_kind": 4, "inst": 8, "code": 16, "ts": 24, "order": 32, "state": 128,
        "msg": 176, "reason": 248,
    }  # fmt: skip
    assert L.response_dtype["msg"].itemsize == 72 and L.response_dtype["reason"] == np.int32
    assert L.bot_header_dtype.itemsize == 128
    assert L.MAGIC.to_bytes(8, "little") == b"HFTLIVE1"
    assert _offsets(L.bot_header_dtype) == {
        "magic": 0, "version": 8, "pid": 16, "bot_id": 24, "n_assets": 32, "depth_capacity": 40,
        "order_capacity": 48, "trade_capacity": 56, "heartbeat_ns": 64, "depth_kind": 72,
        "roi_capacity": 80,
    }  # fmt: skip
    assert L.LAYOUT_VERSION == 5  # bump it with every change above: peers then refuse to attach


def test_word_indexes_are_pinned_and_follow_their_fields():
    """Both sides index headers and slots as int64 words: each index is its field's offset."""
    assert (L.CTL_PID, L.CTL_STATE, L.CTL_EPOCH, L.CTL_HEARTBEAT) == (2, 3, 4, 16)
    assert (L.CTL_TRADING, L.CTL_CMD_SEQ, L.CTL_CMD_ACK, L.CTL_CMD, L.CTL_CMD_BOT) == (
        11, 12, 13, 14, 15)  # fmt: skip
    assert L.S_TRADING == 6
    assert (L.S_STATE, L.S_BOT_ID, L.S_PID, L.S_GEN, L.S_ACK, L.S_REJECT, L.S_HEARTBEAT) == (
        0, 1, 2, 3, 4, 5, 8)  # fmt: skip
    assert (L.BOT_HEARTBEAT, L.BOT_HEADER_WORDS) == (8, 16)
    assert (L.N_USED, L.N_CAPACITY, L.N_WORDS) == (0, 1, 8)
    assert (L.D_BEST_BID, L.D_BEST_ASK, L.D_LOW_BID, L.D_HIGH_ASK, L.D_N_BID, L.D_N_ASK,
            L.D_TS, L.D_DROPPED, L.D_ROI_LB, L.D_ROI_UB, L.D_WORDS) == (
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16)  # fmt: skip
    assert (L.DF_TICK, L.DF_LOT, L.DF_WORDS) == (0, 1, 2)
    assert (L.L_FEED_EXCH, L.L_FEED_LOCAL, L.L_HAS_FEED, L.L_ORDER_REQ, L.L_ORDER_EXCH,
            L.L_ORDER_RESP, L.L_HAS_ORDER, L.L_WORDS) == (0, 1, 2, 3, 4, 5, 6, 8)  # fmt: skip
    for dt, idx in [
        (L.ctl_header_dtype, {"state": L.CTL_STATE, "heartbeat_ns": L.CTL_HEARTBEAT}),
        (L.slot_dtype, {"bot_id": L.S_BOT_ID, "ack": L.S_ACK, "heartbeat_ns": L.S_HEARTBEAT}),
        (L.md_header_dtype, {"writing_end": L.MD_WRITING_END, "snap_n": L.MD_SNAP_N}),
        (L.spsc_header_dtype, {"read_seq": L.SPSC_READ}),
    ]:
        rec = np.zeros(1, dt)
        words = rec.view(np.int64)
        for field, i in idx.items():
            words[i] = 12345
            assert rec[0][field] == 12345, (dt, field)
            words[i] = 0
    # every segment header starts with magic, version, pid (hftlive.shm reads them so)
    for dt in (L.ctl_header_dtype, L.bot_header_dtype, L.seg_header_dtype):
        assert [(n, dt.fields[n][1]) for n in ("magic", "version", "pid")] == [
            ("magic", 0), ("version", 8), ("pid", 16)]  # fmt: skip
    with pytest.raises(ValueError):
        L.word(L.response_dtype, "kind")  # 4 bytes: not a word


def test_bot_control_words():
    """Private to a bot, but indexed by hftlive.bot, botfn and botcore: distinct, dense."""
    idx = [getattr(L, n) for n in dir(L) if n.startswith("C_") and n != "C_WORDS"]
    assert sorted(idx) == list(range(L.C_WORDS)) == list(range(len(L.ctrl_dtype.names)))


def test_segment_layouts_are_aligned_and_pinned():
    ctl = L.ctl_layout(2, 16, 1024, 4096)
    assert {k: r.offset for k, r in ctl.regions.items()} == {
        "header": 0, "instruments": 256, "slots": 512, "req_hdr": 2560, "req": 4608,
        "resp_hdr": 2101760, "resp": 2103808,
    }  # fmt: skip
    assert ctl.size == 18881024
    md = L.md_layout(65536, 8192)
    assert {k: r.offset for k, r in md.regions.items()} == {
        "seg": 0, "header": 64, "ring": 256, "snapshot": 4194560}  # fmt: skip
    assert md.size == 4718848
    bot = L.bot_layout(3, 1024, 64, 10, 2001)
    assert list(bot.regions) == [
        "header", "depth_i", "depth_f", "bid_keys", "bid_vals", "ask_keys", "ask_vals",
        "roi_bids", "roi_asks", "orders", "order_n", "state", "trades", "trade_n", "latency"]  # fmt: skip
    assert bot.regions["roi_asks"].shape == (3, 2001)
    for lay in (ctl, md, bot):
        assert all(r.offset % 64 == 0 for r in lay.regions.values())


def test_views_map_a_buffer():
    lay = L.md_layout(8, 4)
    buf = bytearray(lay.size)
    v = lay.views(buf)
    v["ring"][3]["px"] = 1.5
    assert np.frombuffer(buf, np.float64)[(lay.regions["ring"].offset + 3 * 64 + 24) // 8] == 1.5
