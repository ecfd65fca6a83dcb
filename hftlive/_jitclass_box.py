"""Make numba build the Python-side accessors of our jitclasses lazily.

When a jitclass instance first crosses into Python, numba (0.5x-0.6x) compiles a getter
for every field and property of the class, eagerly (numba/experimental/jitclass/boxing.py,
"Pre-compile attribute getter"). For a LiveBot with its depth, order and state objects that
is about seventy small compilations, several seconds on every start, and none of them can
be cached. Strategies never use them: they read the bot from @njit code.

This replaces the box factory for our classes only with one that builds the same Box
subclass but compiles each getter on first Python access. Other jitclasses, and any numba
whose internals differ from what we expect, keep numba's own behaviour.

It is also where a Python caller's argument can be checked before numba's dispatcher sees
it (`guard`): the dispatcher types a Python int as int64 when it fits and then converts
every later int to that specialisation, so an order id above 2**63-1 would raise
OverflowError instead of reaching the method as the uint64 it is.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

_OUR_CLASSES: set[str] = set()
# class name (a trailing "_" makes it a prefix) -> [(parameter, convert, {method: refused})]
_GUARDS: dict[str, list[tuple[str, Callable[[Any], Any], dict[str, Any]]]] = {}
# class name (prefix as above) -> {Python-side name: the method it calls}
_ALIASES: dict[str, dict[str, str]] = {}
# class name (prefix as above) -> {method name: a Python function of (box, *args)}
_PYTHON: dict[str, dict[str, Callable]] = {}


def register(*classnames: str) -> None:
    _OUR_CLASSES.update(classnames)


def guard(classname: str, param: str, convert: Callable[[Any], Any], refused: dict[str, Any]):
    """Python calls of `classname`'s methods named in `refused` pass argument `param`
    through convert(value) first: the method gets what it returns, or, if that is None, is
    not called and the call returns refused[method]. njit callers are not affected."""
    _OUR_CLASSES.add(classname)
    _GUARDS.setdefault(classname, []).append((param, convert, refused))


def alias(classname: str, names: dict[str, str]) -> None:
    """Python calls `name` on `classname`'s instances as method `names[name]`: for members
    that njit code reaches as an overload (inlined) rather than a jitclass method."""
    _OUR_CLASSES.add(classname)
    _ALIASES.setdefault(classname, {}).update(names)


def python_method(classname: str, name: str, fn: Callable) -> None:
    """Python calls method `name` of `classname`'s instances as `fn(box, *args)`, which
    must do what the method does; njit code still calls the method. For a method whose
    Python wrapper would compile on every start for nothing but a Python call."""
    _OUR_CLASSES.add(classname)
    _PYTHON.setdefault(classname, {})[name] = fn


def _matching(table: dict, classname: str):
    for key, v in table.items():
        if classname == key or (key.endswith("_") and classname.startswith(key)):
            yield v


def _guards_of(classname: str):
    for gs in _matching(_GUARDS, classname):
        yield from gs


def _guarded(method, py_func, param: str, convert, refused_value):
    pos = list(inspect.signature(py_func).parameters).index(param)  # self is 0, as in args

    @functools.wraps(method)
    def call(*args):
        if len(args) > pos:
            v = convert(args[pos])
            if v is None:
                return refused_value
            args = (*args[:pos], v, *args[pos + 1 :])
        return method(*args)

    return call


def _install() -> bool:
    try:
        from numba.experimental.jitclass import _box, boxing
    except ImportError:  # pragma: no cover
        return False
    needed = ("_specialize_box", "_generate_getter", "_generate_setter", "_generate_method",
              "_cache_specialized_box")  # fmt: skip
    if not all(hasattr(boxing, n) for n in needed) or getattr(boxing, "_hftlive_lazy", False):
        return False
    original = boxing._specialize_box

    def lazy_specialize_box(typ):
        if typ.classname not in _OUR_CLASSES and not typ.classname.startswith("LiveBot_"):
            return original(typ)
        cache = boxing._cache_specialized_box
        if typ in cache:
            return cache[typ]
        dct = {"__slots__": (), "_numba_type_": typ, "__doc__": typ.class_type.class_doc}
        for field in typ.struct:
            dct[field] = property(boxing._generate_getter(field), boxing._generate_setter(field))
        for field, impdct in typ.jit_props.items():
            getter = boxing._generate_getter(field) if "get" in impdct else None
            setter = boxing._generate_setter(field) if "set" in impdct else None
            imp = impdct.get("get") or impdct.get("set")
            dct[field] = property(getter, setter, doc=getattr(imp, "__doc__", None))
        for name, func in typ.methods.items():
            if name.startswith("__") and name.endswith("__") and name not in (
                "__contains__", "__len__", "__getitem__", "__setitem__",
            ):  # fmt: skip
                continue
            dct[name] = boxing._generate_method(name, func)
        aliases: dict[str, str] = {}
        for names in _matching(_ALIASES, typ.classname):
            aliases.update(names)
        for name, target in aliases.items():
            dct[name] = boxing._generate_method(target, typ.methods[target])
        for param, convert, refused in _guards_of(typ.classname):
            for name, value in refused.items():
                func = typ.methods[aliases.get(name, name)]
                dct[name] = _guarded(dct[name], func, param, convert, value)
        for fns in _matching(_PYTHON, typ.classname):
            dct.update(fns)
        for name, func in typ.static_methods.items():
            dct[name] = boxing._generate_method(name, func)
        subcls = type(typ.classname, (_box.Box,), dct)
        cache[typ] = subcls
        return subcls

    boxing._specialize_box = lazy_specialize_box
    boxing._hftlive_lazy = True
    return True


INSTALLED = _install()
