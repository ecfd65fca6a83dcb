"""Build a jitclass instance, and the jitclass instances it holds, in cached njit code.

A jitclass constructor called from Python compiles on every process: numba compiles a
wrapper that unboxes the arguments and calls `__init__`, and jitclass methods are never
cached. For the LiveBot (forty-odd fields, three per-asset jitclasses) that was ~0.9 s of
every start. `new_instance` instead calls one `@njit(cache=True)` function, `_new`, whose
code (the constructors and their `__init__`s, linked in) is loaded from the cache, and
boxes what it returns as numba's own boxing does.

Two things stand in the way of caching such a function, and how they are met:

* Its signature names the class (a TypeRef argument). numba pickles the type into the
  cache index, and a jitclass type's name holds the `id()` of its class type, different in
  every process: the class type must pickle to a reference to the same class in the new
  process (`stable_reduce`; its type classes, too, must be module-level names:
  hftlive._inline.own_type_classes). That reference carries a digest (`_digest`) of the
  instance's layout (every field's type, the held jitclasses' fields and `__init__` code)
  and of the source stamps of the modules the class names in `stable_depends`, so that a
  class whose layout or linked code changed in another module (numba's cache only sees the
  function's own file) no longer matches a stale entry. Only the outer class is named in
  the signature: the held jitclasses' types need no such care.
* Returning a jitclass instance to Python boxes it with the address of a Python class
  baked in (numba refuses to cache that). `_new` returns the new reference's meminfo and
  data addresses; Python sets them in the box (`_box_at`), as numba's box code does.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys

import numba as nb
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

try:
    from numba.experimental.jitclass import _box, boxing

    _MI_OFFSET = _box.box_meminfoptr_offset
    _DATA_OFFSET = _box.box_dataptr_offset
    _specialize_box = boxing._specialize_box  # noqa: F401 (checked here, looked up at use)
    AVAILABLE = True
except (ImportError, AttributeError):  # pragma: no cover (another numba)
    AVAILABLE = False


def _is_jitclass(t) -> bool:
    return isinstance(t, types.ClassInstanceType)


def _held(t):
    """The jitclass instance type a field holds (itself, or a UniTuple's item), or None."""
    if _is_jitclass(t):
        return t
    if isinstance(t, types.UniTuple) and _is_jitclass(t.dtype):
        return t.dtype
    return None


def _describe(t, seen: set) -> str:
    """A description of type `t` that is the same in every process (a jitclass type's own
    name holds an id())."""
    if _is_jitclass(t):
        if t.classname in seen:
            return t.classname
        seen.add(t.classname)
        init = t.jit_methods["__init__"].py_func.__code__
        body = ",".join(f"{k}:{_describe(v, seen)}" for k, v in t.struct.items())
        code = hashlib.sha256(init.co_code + repr((init.co_consts, init.co_names)).encode())
        return f"{t.classname}<{body}>{code.hexdigest()[:16]}"
    if isinstance(t, types.UniTuple):
        return f"UniTuple({_describe(t.dtype, seen)},{t.count})"
    return str(t)


def fingerprint(inst_type) -> str:
    """A digest of a jitclass instance type's layout and of the jitclasses it holds."""
    return hashlib.sha256(_describe(inst_type, set()).encode()).hexdigest()


def _digest(class_type) -> str:
    """fingerprint() of the class, and the stamps (mtime, size, as numba's cache takes them)
    of the modules named in its `stable_depends`: cached code that links their functions
    is stale when one of them changes, which numba's cache does not see."""
    stamps = []
    for name in getattr(class_type, "stable_depends", ()):
        st = os.stat(sys.modules[name].__file__)
        stamps.append(f"{name}:{st.st_mtime}:{st.st_size}")
    return hashlib.sha256(
        (fingerprint(class_type.instance_type) + ";".join(stamps)).encode()
    ).hexdigest()


def stable_reduce(class_type_class, rebuild):
    """Pickle the class types of `class_type_class` as a reference: `rebuild(*args)`, a
    module-level function, returns this process's class type for the `stable_args` set on
    the type when it was made. The reference holds a digest of the layout and of the
    modules the type names in `stable_depends` (`_digest`); one that no longer matches
    unpickles as a type that equals nothing, so that numba compiles afresh."""

    def __reduce__(self):
        return (_rebuild, (rebuild, tuple(self.stable_args), _digest(self)))

    class_type_class.__reduce__ = __reduce__


def _rebuild(rebuild, args, digest):
    ct = rebuild(*args)
    if _digest(ct) == digest:
        return ct
    return types.Opaque(f"stale {ct.class_name} {digest}")


@intrinsic
def _construct(typingctx, ref, values):
    """A new instance of `ref`'s jitclass, from one value per field (in the class's field
    order); a field holding jitclasses (an instance, or a UniTuple of them) takes the
    constructor arguments of each, as tuples. Returns (meminfo, data) addresses of a new
    reference that the caller owns."""
    inst_type = ref.instance_type
    names = list(inst_type.struct)
    if not isinstance(values, types.BaseTuple) or len(values) != len(names):
        raise TypeError(f"{inst_type.classname}: give one value per field ({len(names)})")
    plan = []  # per field: ([(ctor sig, its args' types)], the field's type), or (None, None)
    field_types = []
    for name, vt in zip(names, values):
        held = _held(inst_type.struct[name])
        if held is None:
            plan.append((None, None))
            field_types.append(vt)
            continue
        per_item = [vt] if _is_jitclass(inst_type.struct[name]) else list(vt)
        sigs = []
        for args in per_item:
            sig = typingctx.resolve_function_type(held.class_type, tuple(args), {})
            if sig is None:
                raise TypeError(f"{inst_type.classname}.{name}: cannot construct "
                                f"{held.classname} from {args}")  # fmt: skip
            sigs.append((sig, args))
        ft = held if _is_jitclass(inst_type.struct[name]) else types.UniTuple(held, len(sigs))
        plan.append((sigs, ft))
        field_types.append(ft)
    bot_sig = typingctx.resolve_function_type(inst_type.class_type, tuple(field_types), {})
    if bot_sig is None:
        raise TypeError(f"cannot construct {inst_type.classname} from {field_types}")
    ret = types.UniTuple(types.int64, 2)

    def codegen(context, builder, signature, args):
        packed = args[1]
        owned = []  # (type, value) of the held instances made here: ours to release
        llfields = []
        for i, (sigs, ft) in enumerate(plan):
            v = builder.extract_value(packed, i)
            if sigs is None:
                llfields.append(v)
                continue
            items = []
            for k, (sig, argtys) in enumerate(sigs):
                av = v if _is_jitclass(ft) else builder.extract_value(v, k)
                llargs = [builder.extract_value(av, j) for j in range(len(argtys))]
                llargs = [context.cast(builder, a, t, st)
                          for a, t, st in zip(llargs, argtys, sig.args)]  # fmt: skip
                ctor = context.get_function(sig.return_type.class_type, sig)
                items.append(ctor(builder, llargs))
            made = items[0] if _is_jitclass(ft) else context.make_tuple(builder, ft, items)
            owned.append((ft, made))
            llfields.append(made)
        llfields = [context.cast(builder, a, t, st)
                    for a, t, st in zip(llfields, field_types, bot_sig.args)]  # fmt: skip
        ctor = context.get_function(inst_type.class_type, bot_sig)
        inst = ctor(builder, llfields)  # a new reference: handed to the caller
        for ft, made in owned:  # the instance holds its own references to them now
            context.nrt.decref(builder, ft, made)
        st = cgutils.create_struct_proxy(inst_type)(context, builder, value=inst)
        i64 = context.get_value_type(types.int64)
        return context.make_tuple(
            builder, ret, [builder.ptrtoint(st.meminfo, i64), builder.ptrtoint(st.data, i64)]
        )

    return ret(ref, values), codegen


@nb.njit(cache=True)
def _new(ref, values):
    return _construct(ref, values)


def _box_at(inst_type, meminfo: int, data: int):
    """The Python box of the instance at (meminfo, data), taking over that reference (the
    box releases it when it dies), as numba's boxing of a jitclass instance does."""
    box = boxing._specialize_box(inst_type)()
    ctypes.c_void_p.from_address(id(box) + _MI_OFFSET).value = meminfo
    ctypes.c_void_p.from_address(id(box) + _DATA_OFFSET).value = data
    return box


def data_address(box) -> int:
    """The address of a boxed jitclass instance's data (its fields)."""
    return ctypes.c_void_p.from_address(id(box) + _DATA_OFFSET).value


def new_instance(jitclass, values: tuple):
    """`jitclass`'s instance from one value per field (see `_construct`), built by cached
    code. The class's type class must pickle stably (`stable_reduce`)."""
    inst_type = jitclass.class_type.instance_type
    meminfo, data = _new(inst_type, values)
    return _box_at(inst_type, meminfo, data)
