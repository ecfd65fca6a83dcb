"""Low-level primitives for njit code: atomics, clocks, and a few libc calls.

Why intrinsics: numba treats array memory as ordinary memory, so LLVM may hoist a load
out of a polling loop or reorder a publishing store; shared-memory rings need acquire
loads and release stores. libc functions are declared as external symbols in the
generated code (not ctypes pointers) so that every function using them can be cached to
disk by numba (`cache=True`).

Memory-ordering assumption: the rings are correct under the C++ memory model given the
acquire/release pairs below; the Python-side writers (the connector's asyncio code) only
publish through these same njit functions.
"""

from __future__ import annotations

import time

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _item_ptr(context, builder, aryty, ary_val, idx):
    ary = context.make_array(aryty)(context, builder, ary_val)
    return cgutils.get_item_pointer(context, builder, aryty, ary, [idx], wraparound=False)


@intrinsic
def atomic_load(typingctx, arr, idx):
    """Acquire load of arr[idx] (1-D int64 array)."""
    sig = arr.dtype(arr, idx)

    def codegen(context, builder, signature, args):
        ptr = _item_ptr(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


@intrinsic
def atomic_store(typingctx, arr, idx, val):
    """Release store arr[idx] = val (1-D int64 array)."""
    sig = types.void(arr, idx, arr.dtype)

    def codegen(context, builder, signature, args):
        ptr = _item_ptr(context, builder, signature.args[0], args[0], args[1])
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def atomic_cas(typingctx, arr, idx, expected, new):
    """Compare-and-swap on arr[idx]; True if it swapped."""
    sig = types.boolean(arr, idx, arr.dtype, arr.dtype)

    def codegen(context, builder, signature, args):
        ptr = _item_ptr(context, builder, signature.args[0], args[0], args[1])
        res = builder.cmpxchg(ptr, args[2], args[3], "acq_rel", "acquire")
        return builder.extract_value(res, 1)

    return sig, codegen


@intrinsic
def fence_acquire(typingctx):
    """Loads before the fence stay before loads and stores after it."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        builder.fence("acquire")
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def fence_release(typingctx):
    sig = types.void()

    def codegen(context, builder, signature, args):
        builder.fence("release")
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def rdtsc(typingctx):
    """The CPU cycle counter (constant and non-stop on x86-64 Linux hosts)."""
    sig = types.int64()

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(64), [])
        fn = builder.module.declare_intrinsic("llvm.readcyclecounter", fnty=fnty)
        return builder.call(fn, [])

    return sig, codegen


def _arg(context, builder, kind, aty, val):
    if kind == "ptr":  # an array argument: pass its data pointer
        ary = context.make_array(aty)(context, builder, val)
        return ir.IntType(8).as_pointer(), builder.bitcast(ary.data, ir.IntType(8).as_pointer())
    nbty = types.int32 if kind == "i32" else types.int64
    return context.get_value_type(nbty), context.cast(builder, val, aty, nbty)


def _libc_codegen(name, ret_bits, kinds):
    def codegen(context, builder, signature, llargs):
        pairs = [_arg(context, builder, k, t, v) for k, t, v in zip(kinds, signature.args, llargs)]
        fnty = ir.FunctionType(ir.IntType(ret_bits), [p[0] for p in pairs])
        fn = cgutils.get_or_insert_function(builder.module, fnty, name)
        return builder.call(fn, [p[1] for p in pairs])

    return codegen


@intrinsic
def _c_clock_gettime(typingctx, clk, buf):
    return types.int32(clk, buf), _libc_codegen("clock_gettime", 32, ("i32", "ptr"))


@intrinsic
def _c_sched_yield(typingctx):
    return types.int32(), _libc_codegen("sched_yield", 32, ())


@intrinsic
def _c_nanosleep(typingctx, req, rem):
    return types.int32(req, rem), _libc_codegen("nanosleep", 32, ("ptr", "i64"))


@intrinsic
def _c_kill(typingctx, pid, sig):
    return types.int32(pid, sig), _libc_codegen("kill", 32, ("i32", "i32"))


@intrinsic
def _c_write(typingctx, fd, buf, n):
    return types.int64(fd, buf, n), _libc_codegen("write", 64, ("i32", "ptr", "i64"))


CLOCK_REALTIME = 0


@nb.njit(cache=True)
def wall_ns(buf):
    """Wall-clock time in ns; `buf` is a scratch int64[2] (a struct timespec)."""
    _c_clock_gettime(np.int32(CLOCK_REALTIME), buf)
    return buf[0] * 1_000_000_000 + buf[1]


@nb.njit(cache=True)
def sleep_ns(buf, ns):
    """nanosleep; `buf` is a scratch int64[2]."""
    buf[0] = ns // 1_000_000_000
    buf[1] = ns % 1_000_000_000
    _c_nanosleep(buf, np.int64(0))


@nb.njit(cache=True)
def yield_cpu():
    _c_sched_yield()


@nb.njit(cache=True)
def pid_alive(pid):
    """True if a process with this pid exists (kill(pid, 0) == 0, or EPERM)."""
    if pid <= 0:
        return False
    return _c_kill(np.int32(pid), np.int32(0)) == 0


@nb.njit(cache=True)
def ring_doorbell(fd, buf):
    """Write one byte to a non-blocking FIFO to wake the connector; errors are ignored."""
    if fd >= 0:
        _c_write(np.int32(fd), buf, np.int64(1))


def calibrate_tsc(duration_s: float = 0.02) -> float:
    """TSC ticks per ns, measured against the wall clock over `duration_s`."""
    tsc_now()  # compile first
    t0, c0 = time.perf_counter_ns(), tsc_now()
    while time.perf_counter_ns() - t0 < duration_s * 1e9:
        pass
    t1, c1 = time.perf_counter_ns(), tsc_now()
    return (c1 - c0) / (t1 - t0)


@nb.njit(cache=True)
def tsc_now():
    return rdtsc()


@intrinsic
def load_at(typingctx, addr):
    """Acquire load of the int64 at a raw address (a field of no reference count)."""
    sig = types.int64(types.int64)

    def codegen(context, builder, signature, args):
        p = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        return builder.load_atomic(p, "acquire", 8)

    return sig, codegen


@intrinsic
def store_at(typingctx, addr, val):
    """Release store of an int64 at a raw address."""
    sig = types.void(types.int64, types.int64)

    def codegen(context, builder, signature, args):
        p = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        v = context.cast(builder, args[1], signature.args[1], types.int64)
        builder.store_atomic(v, p, "release", 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def call_i64(typingctx, fn_addr, arg):
    """Call the C function `int64_t f(int64_t)` at address `fn_addr` (a ctypes callback's,
    say: a function that calls a ctypes function object cannot be cached)."""
    sig = types.int64(types.int64, types.int64)

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(64), [ir.IntType(64)])
        fn = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(fn, [context.cast(builder, args[1], signature.args[1], types.int64)])

    return sig, codegen


@intrinsic
def void_ptr_at(typingctx, addr):
    """The int64 `addr` as a void pointer, for `numba.carray` over memory the caller keeps
    alive (a mapped segment, an array it holds a reference to)."""
    sig = types.voidptr(types.int64)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return sig, codegen


def set_timer_slack_ns(ns: int = 1) -> None:
    """Linux rounds every sleep up by the thread's timer slack (50 us by default); a bot
    that sleeps in 50 us slices wants it small (prctl PR_SET_TIMERSLACK)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(29, ctypes.c_ulong(ns), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover (not Linux)
        pass


def extern(disp):
    """`disp` (an `@njit(cache=True)` function), callable from njit code as an external call.

    numba links a callee's whole LLVM module into every uncached caller and optimises it
    again there, and jitclass methods are never cached: each layer of methods above a big
    cached function re-optimised all of it, on every start (the LiveBot's first `elapse`
    took 3.6 s with a warm cache, mostly that). Through this wrapper the caller only
    declares the callee's symbol and calls it with numba's calling convention (exceptions
    propagate); the code is the one loaded from the cache (or compiled) for those argument
    types. The price is that the callee is never inlined: use it for the slow path only.
    """

    @intrinsic
    def call(typingctx, *args):
        disp.compile(tuple(args))
        cres = disp.overloads[tuple(args)]
        sig = cres.signature

        def codegen(context, builder, signature, packed):
            llargs = cgutils.unpack_tuple(builder, packed[0], len(sig.args))
            fn = context.declare_function(builder.module, cres.fndesc)
            status, res = context.call_conv.call_function(
                builder, fn, sig.return_type, sig.args, llargs
            )
            with cgutils.if_unlikely(builder, status.is_error):
                context.call_conv.return_status_propagate(builder, status)
            return res

        return sig.return_type(types.StarArgTuple.from_types(tuple(args))), codegen

    call.__name__ = call.__qualname__ = f"extern_{disp.__name__}"
    return call
