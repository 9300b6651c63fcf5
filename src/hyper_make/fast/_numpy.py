"""NumPy's own arithmetic, in compiled code: the decimal rounding of ``ndarray.round`` and Python's ``round``, and
NumPy's ``exp``/``expm1``/``log10``/``power`` inner loops, so that a kernel gets the reference pipeline's numbers bit
for bit (NumPy's pairwise sum is :func:`hyper_make._exact.np_sum_n`).

Python's ``round(x, 6)`` (correctly rounded in decimal) differs from NumPy's ``rint(x·1e6)/1e6``; the reference uses
both, so the kernels do too.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from ._entropy import NUMPY_LOOPS, _double_loop, _np_unary, np_pow_scalar

#: The double nearest 5e-7, which lies below 5e-7: a double ``d`` is ``<= 5e-7`` exactly iff ``d <= _HALF_MICRO``.
_HALF_MICRO = 5e-7


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


# ---- NumPy's own transcendental loops ------------------------------------------------------------------------
# On a CPU with AVX-512 NumPy's exp, expm1, log10 and power are its SIMD versions, which differ from the C
# library's (numba's math.*) in the last bit on a few inputs in a hundred. The curves feed decisions (the lot search's
# tolerance, the minimum-order search's comparisons, a Dirichlet's shapes) that an ulp can flip on degenerate inputs,
# so the kernels call NumPy's inner loops themselves, as fast/_entropy.py does for exp and log.

#: Loop indices in :data:`LOOPS`.
L_EXP, L_EXPM1, L_LOG10 = 0, 1, 2


@nb.njit(cache=True)
def np_unary(loops: np.ndarray, k: int, src: np.ndarray, dst: np.ndarray, n: int) -> None:
    """``dst[:n] = f(src[:n])`` by NumPy's loop ``k`` of :data:`LOOPS` (:data:`L_EXP`, :data:`L_EXPM1`,
    :data:`L_LOG10`)."""
    _np_unary(loops, k, src, dst, n)


@nb.njit(cache=True)
def np_power_scalar(power: np.ndarray, src: np.ndarray, exponent: np.ndarray, dst: np.ndarray, n: int) -> None:
    """``dst[:n] = src[:n] ** exponent[0]`` as ``array ** float`` (:func:`~._entropy.np_pow_scalar` on the table
    :data:`POWER`)."""
    np_pow_scalar(power, src, exponent[0], dst, n)


def _tables() -> tuple[np.ndarray, np.ndarray]:
    """:data:`LOOPS`, checked to reproduce NumPy bit for bit, and :data:`POWER` (the entropy kernel's table, whose
    power path its import checks)."""
    loops = np.array([*_double_loop(np.exp), *_double_loop(np.expm1), *_double_loop(np.log10)], dtype=np.int64)
    if not loops[0::2].all():
        raise ImportError("hyper_make.fast: numpy's exp/expm1/log10 loops not found")
    r = np.random.default_rng(0)
    x = r.uniform(-700.0, 5.0, 4096)
    pos = 10.0 ** r.uniform(-100.0, 100.0, 4096)
    for k, (ufunc, arg) in enumerate(((np.exp, x), (np.expm1, x), (np.log10, pos))):
        out = np.empty_like(arg)
        np_unary(loops, k, arg, out, arg.shape[0])
        if not np.array_equal(out, ufunc(arg)):
            raise ImportError(f"hyper_make.fast: numpy's {ufunc.__name__} loop does not reproduce it")
    return loops, NUMPY_LOOPS


LOOPS, POWER = _tables()
"""Addresses of NumPy's ``exp``, ``expm1``, ``log10`` (``d->d``) loops in this process; ``POWER`` is
:data:`~._entropy.NUMPY_LOOPS`, whose entries 4-6 are the ``power`` loop and whether this NumPy's ``array ** float``
operator special-cases some exponents itself (NumPy < 2.3)."""
