"""A few @njit(cache=True) functions for tests/test_cachelock.py: small enough to compile in
about a second, each called with two signatures, so that processes started together save
several entries of one function into one cache (the case numba's index/data pair tears)."""

import numba as nb
import numpy as np


@nb.njit(cache=True)
def total(a):
    s = a.dtype.type(0)
    for x in a:
        s += x
    return s


@nb.njit(cache=True)
def scaled(a, k):
    out = np.empty_like(a)
    for i in range(a.shape[0]):
        out[i] = a[i] * k
    return out


@nb.njit(cache=True)
def running_max(a):
    out = np.empty_like(a)
    m = a[0]
    for i in range(a.shape[0]):
        m = max(m, a[i])
        out[i] = m
    return out


FUNCTIONS = (total, scaled, running_max)


def exercise() -> list:
    """Calls every function with int64 and float64 arrays; the results, as lists."""
    got = []
    for a in (np.arange(5, dtype=np.int64), np.linspace(0.0, 1.0, 5)):
        got.append([float(total(a)), scaled(a, 3).tolist(), running_max(a[::-1]).tolist()])
    return got


EXPECTED = [
    [10.0, [0, 3, 6, 9, 12], [4, 4, 4, 4, 4]],
    [2.5, [0.0, 0.75, 1.5, 2.25, 3.0], [1.0, 1.0, 1.0, 1.0, 1.0]],
]
