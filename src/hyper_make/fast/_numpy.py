"""NumPy's own arithmetic, in compiled code: the pairwise sum of ``ndarray.sum`` and the decimal rounding of
``ndarray.round`` and Python's ``round``, so that a kernel gets the reference pipeline's numbers bit for bit.

A sequential sum differs from NumPy's in the last bit for eight or more terms, and Python's ``round(x, 6)``
(correctly rounded in decimal) from NumPy's ``rint(x·1e6)/1e6``; the reference uses both, so the kernels do too.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

#: The double nearest 5e-7, which lies below 5e-7: a double ``d`` is ``<= 5e-7`` exactly iff ``d <= _HALF_MICRO``.
_HALF_MICRO = 5e-7


@nb.njit(cache=True)
def _block(x: np.ndarray, start: int, n: int) -> float:
    """NumPy's ``pairwise_sum`` of ``x[start:start+n]`` for ``n <= 128``: sequential below 8 terms, else 8 running
    sums combined as ``((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))``, then the rest."""
    if n < 8:
        res = 0.0
        for i in range(start, start + n):
            res += x[i]
        return res
    r0 = x[start]
    r1 = x[start + 1]
    r2 = x[start + 2]
    r3 = x[start + 3]
    r4 = x[start + 4]
    r5 = x[start + 5]
    r6 = x[start + 6]
    r7 = x[start + 7]
    i = 8
    stop = n - (n % 8)
    while i < stop:
        j = start + i
        r0 += x[j]
        r1 += x[j + 1]
        r2 += x[j + 2]
        r3 += x[j + 3]
        r4 += x[j + 4]
        r5 += x[j + 5]
        r6 += x[j + 6]
        r7 += x[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += x[start + i]
        i += 1
    return res


@nb.njit(cache=True, inline="always")
def _half(n: int) -> int:
    """Where NumPy splits a pairwise sum of more than 128 terms: half, rounded down to a multiple of 8."""
    n2 = n // 2
    return n2 - n2 % 8


# numba caches no recursive function, so the halving is unrolled: a level sums up to about twice the length of
# the one below (the halves of n terms have at most n/2 + 8)
@nb.njit(cache=True)
def _pw1(x: np.ndarray, start: int, n: int) -> float:
    if n <= 128:
        return _block(x, start, n)
    n2 = _half(n)
    return _block(x, start, n2) + _block(x, start + n2, n - n2)


@nb.njit(cache=True)
def _pw2(x: np.ndarray, start: int, n: int) -> float:
    if n <= 128:
        return _block(x, start, n)
    n2 = _half(n)
    return _pw1(x, start, n2) + _pw1(x, start + n2, n - n2)


@nb.njit(cache=True)
def _pw3(x: np.ndarray, start: int, n: int) -> float:
    if n <= 128:
        return _block(x, start, n)
    n2 = _half(n)
    return _pw2(x, start, n2) + _pw2(x, start + n2, n - n2)


@nb.njit(cache=True)
def _pairwise(x: np.ndarray, start: int, n: int) -> float:
    """NumPy's ``pairwise_sum`` of ``x[start:start+n]``, exact for ``n <= 1808`` (a side has at most 200 levels)."""
    if n <= 128:
        return _block(x, start, n)
    n2 = _half(n)
    return _pw3(x, start, n2) + _pw3(x, start + n2, n - n2)


@nb.njit(cache=True)
def np_sum(x: np.ndarray, n: int) -> float:
    """``x[:n].sum()`` exactly as NumPy computes it for a contiguous float64 array (its pairwise sum)."""
    return _pairwise(x, 0, n)


@nb.njit(cache=True, inline="always")
def np_round6(x: float) -> float:
    """``np.round(x, 6)``: ``rint(x·1e6) / 1e6`` (ties to even)."""
    return np.rint(x * 1e6) / 1e6


@nb.njit(cache=True)
def py_floor_round6(x: float) -> float:
    """``math.floor(round(x, 6))`` for ``x >= 0``: Python rounds the exact binary value in decimal, so ``x`` goes up
    to the next integer iff it is within 5e-7 of it (``(k + 1) - x`` is exact there, Sterbenz)."""
    k = math.floor(x)
    if x == k:
        return k
    return k + 1.0 if (k + 1.0) - x <= _HALF_MICRO else k


@nb.njit(cache=True)
def py_ceil_round6(x: float) -> float:
    """``math.ceil(round(x, 6))`` for ``x >= 0`` (see :func:`py_floor_round6`): down to ``floor(x)`` iff within 5e-7."""
    k = math.floor(x)
    if x == k:
        return k
    return k if x - k <= _HALF_MICRO else k + 1.0
