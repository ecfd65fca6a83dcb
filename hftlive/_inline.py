"""A jitclass with numba type classes of its own, so that members can be overloads for it.

Calling a jitclass method from njit code passes the instance to a separate function, which
increments and decrements its reference count: two atomic operations per call (several ns
each on the 2-core VM; most of an `elapse(1)`). An overload inlined into the caller
(`overload_method(..., inline="always")`) reads the fields in place instead.

numba keys overloads by type class, and every jitclass instance is a
`types.ClassInstanceType`: an overload on that class takes the member from every jitclass
in the process, hftbacktest's included (their lowering then fails). A class made by
`jitclass_of` with `own_type_classes` has instances of a subclass of it, which overloads
can target alone; everything else of jitclass applies to it unchanged.

Overloads win over the class's own members in njit code (their templates come first in
the type's MRO). A method overloaded inline cannot be called from Python (numba cannot
wrap it): Python reaches it through another method of the class
(hftlive._jitclass_box.alias).
"""

from __future__ import annotations

from numba import types
from numba.core.datamodel import default_manager, models
from numba.experimental.jitclass.base import (
    ClassBuilder,
    InstanceModel,
    ctor_impl,
    register_class_type,
)


def own_type_classes(name: str, module: str):
    """(instance type class, class type class) for one jitclass, registered with numba.

    `module` must bind them as `<name>InstanceType` and `<name>ClassType`: that is how a
    pickle (numba's cache) refers to them, rather than by copying them.
    """
    inst = type(f"{name}InstanceType", (types.ClassInstanceType,), {"__module__": module})

    def instance_type(self):
        return inst(self)

    cls = type(f"{name}ClassType", (types.ClassType,),
               {"instance_type_class": inst, "instance_type": property(instance_type),
                "__module__": module})  # fmt: skip
    default_manager.register(inst, InstanceModel)
    default_manager.register(cls, models.OpaqueModel)
    # the constructor's lowering is looked up by the exact type class
    ClassBuilder.class_impl_registry.lower(cls, types.VarArg(types.Any))(ctor_impl)
    return inst, cls


def jitclass_of(pycls, spec, class_type_class):
    """`jitclass(spec)(pycls)`, its type of `class_type_class` (own_type_classes)."""
    return register_class_type(pycls, spec, class_type_class, ClassBuilder)
