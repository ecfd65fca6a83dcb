"""A small jitclass built by hftlive._jitclass_new, for tests/test_jitclass_new.py: a
LiveBot in miniature (its own type classes, a tuple of held jitclasses, arrays, scalars)."""

import numba as nb
import numpy as np
from numba import types
from numba.experimental import jitclass

from hftlive import _jitclass_new
from hftlive._inline import jitclass_of, own_type_classes


@jitclass
class Held:
    arr: nb.float64[:]
    k: nb.int64

    def __init__(self, arr, k):
        self.arr = arr
        self.k = k


ToyInstanceType, ToyClassType = own_type_classes("Toy", __name__)


class _Toy:
    def __init__(self, held, words, scale):
        self.held = held
        self.words = words
        self.scale = scale

    def total(self):
        s = 0.0
        for h in self.held:
            s += h.arr.sum() * h.k
        return s * self.scale + self.words.sum()


_CLASSES = {}


def toy_class(n: int):
    if n not in _CLASSES:
        spec = [("held", types.UniTuple(Held.class_type.instance_type, n)),
                ("words", nb.int64[:]), ("scale", nb.float64)]  # fmt: skip
        jc = jitclass_of(type(f"Toy_{n}", (), dict(_Toy.__dict__)), spec, ToyClassType)
        jc.class_type.stable_args = (n,)
        _CLASSES[n] = jc
    return _CLASSES[n]


def _toy_class_type(n: int):
    return toy_class(n).class_type


_jitclass_new.stable_reduce(ToyClassType, _toy_class_type)


def new_toy(n: int):
    held = tuple((np.full(3, float(i + 1)), i + 1) for i in range(n))
    return _jitclass_new.new_instance(toy_class(n), (held, np.arange(4), 0.5))


@nb.njit
def total(toy):
    return toy.total()
