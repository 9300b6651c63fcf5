"""Compiled reductions that give NumPy's results bit for bit (numba, ``cache=True``).

NumPy sums a contiguous 1-D float64 array pairwise (:func:`np_sum`) and its small matrix products go to BLAS,
whose kernels accumulate in index order by fused multiply-adds (:func:`fma`); a plain loop rounds differently in
the last bits. The compiled learner and allocator use these where their results must equal the NumPy reference.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic


@nb.njit(cache=True)
def np_sum(a):  # type: ignore[no-untyped-def]
    """``a.sum()`` of a contiguous 1-D float64 array, bit-identical to NumPy (:func:`np_sum_n` of the whole array)."""
    return np_sum_n(a, a.shape[0])


@nb.njit(cache=True)
def np_sum_n(a, n):  # type: ignore[no-untyped-def]
    """``a[:n].sum()`` as NumPy reduces a contiguous float64 array: the identity 0 plus its pairwise sum (blocks of up
    to 128 summed by 8 accumulators, longer runs split in halves, multiples of 8), so a sum of negative zeros is
    ``0.0`` as NumPy's. The halving runs on an explicit stack: numba's cache loads recursive functions wrongly."""
    if n <= 128:  # before any allocation: most sums here are a side's few levels
        return 0.0 + _block(a, 0, n)
    st_lo = np.empty(64, np.int64)
    st_n = np.empty(64, np.int64)
    st_open = np.empty(64, np.bool_)
    vals = np.empty(64)
    top, nv = 0, 0
    st_lo[0], st_n[0], st_open[0] = 0, n, False
    while top >= 0:
        lo, m = st_lo[top], st_n[top]
        if m <= 128:
            vals[nv] = _block(a, lo, m)
            nv += 1
            top -= 1
        elif st_open[top]:  # both halves done: left + right
            nv -= 1
            vals[nv - 1] = vals[nv - 1] + vals[nv]
            top -= 1
        else:
            m2 = m // 2
            m2 -= m2 % 8
            st_open[top] = True
            st_lo[top + 1], st_n[top + 1], st_open[top + 1] = lo + m2, m - m2, False  # right, summed second
            st_lo[top + 2], st_n[top + 2], st_open[top + 2] = lo, m2, False  # left, on top: summed first
            top += 2
    return 0.0 + vals[0]


@nb.njit(cache=True)
def _block(a, lo, n):  # type: ignore[no-untyped-def]
    """NumPy's pairwise sum of ``a[lo:lo+n]`` for ``n <= 128``."""
    if n < 8:
        res = -0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@intrinsic
def fma(typingctx, a, b, c):  # type: ignore[no-untyped-def]
    """``a·b + c`` rounded once (the fused multiply-add BLAS's kernels accumulate with)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        d = ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [d], ir.FunctionType(d, [d, d, d]))
        return builder.call(fn, args)

    return sig, codegen


__all__ = ["fma", "np_sum", "np_sum_n"]
