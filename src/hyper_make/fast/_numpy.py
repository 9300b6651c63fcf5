"""NumPy's own arithmetic, in compiled code: the pairwise sum of ``ndarray.sum`` and the decimal rounding of
``ndarray.round`` and Python's ``round``, so that a kernel gets the reference pipeline's numbers bit for bit.

A sequential sum differs from NumPy's in the last bit for eight or more terms, and Python's ``round(x, 6)``
(correctly rounded in decimal) from NumPy's ``rint(x·1e6)/1e6``; the reference uses both, so the kernels do too.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from ._entropy import _double_loop, _np_unary, _pairwise_block, _pairwise_sum, _PyUFuncHead, operator_fast_power

#: The double nearest 5e-7, which lies below 5e-7: a double ``d`` is ``<= 5e-7`` exactly iff ``d <= _HALF_MICRO``.
_HALF_MICRO = 5e-7


@nb.njit(cache=True)
def np_sum(x: np.ndarray, n: int) -> float:
    """``x[:n].sum()`` exactly as NumPy computes it for a contiguous float64 array (its pairwise sum; the entropy
    kernel's implementation, without its ``0.0 +`` of the reduction's identity)."""
    if n <= 128:
        return _pairwise_block(x, 0, n)
    return _pairwise_sum(x, 0, n)


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


def _binary_double_loop(ufunc: np.ufunc) -> tuple[int, int]:
    """(function, data) addresses of ``ufunc``'s ``dd->d`` inner loop."""
    head = _PyUFuncHead.from_address(id(ufunc))
    if head.nin != 2 or head.nout != 1 or head.ntypes != len(ufunc.types):
        raise ImportError(f"hyper_make.fast: unexpected layout of numpy's ufunc {ufunc.__name__!r}")
    k = ufunc.types.index("dd->d")
    return int(head.functions[k] or 0), int(head.data[k] or 0)


@intrinsic
def np_binary_scalar(typingctx, table, src, scalar, dst, n):  # type: ignore[no-untyped-def]
    """``dst[:n] = ufunc(src[:n], scalar[0])`` by the ``dd->d`` loop in ``table`` (``[fn, data]``), the second operand
    broadcast as NumPy broadcasts a Python scalar (stride 0)."""
    if not all(isinstance(t, types.Array) for t in (table, src, scalar, dst)) or not isinstance(n, types.Integer):
        return None
    sig = types.void(table, src, scalar, dst, n)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        table_v, src_v, sc_v, dst_v, n_v = args
        intp_t = context.get_value_type(types.intp)
        i8p = ir.IntType(8).as_pointer()
        tab = context.make_array(signature.args[0])(context, builder, table_v)
        fn_addr = builder.load(builder.gep(tab.data, [ir.Constant(intp_t, 0)]))
        data_addr = builder.load(builder.gep(tab.data, [ir.Constant(intp_t, 1)]))
        src_a = context.make_array(signature.args[1])(context, builder, src_v)
        sc_a = context.make_array(signature.args[2])(context, builder, sc_v)
        dst_a = context.make_array(signature.args[3])(context, builder, dst_v)
        argv = cgutils.alloca_once(builder, i8p, size=3)
        builder.store(builder.bitcast(src_a.data, i8p), argv)
        builder.store(builder.bitcast(sc_a.data, i8p), builder.gep(argv, [ir.Constant(intp_t, 1)]))
        builder.store(builder.bitcast(dst_a.data, i8p), builder.gep(argv, [ir.Constant(intp_t, 2)]))
        dims = cgutils.alloca_once(builder, intp_t, size=1)
        builder.store(context.cast(builder, n_v, signature.args[4], types.intp), dims)
        steps = cgutils.alloca_once(builder, intp_t, size=3)
        builder.store(ir.Constant(intp_t, 8), steps)
        builder.store(ir.Constant(intp_t, 0), builder.gep(steps, [ir.Constant(intp_t, 1)]))
        builder.store(ir.Constant(intp_t, 8), builder.gep(steps, [ir.Constant(intp_t, 2)]))
        fnty = ir.FunctionType(ir.VoidType(), [i8p.as_pointer(), intp_t.as_pointer(), intp_t.as_pointer(), i8p])
        fn_ptr = builder.inttoptr(fn_addr, fnty.as_pointer())
        builder.call(fn_ptr, [argv, dims, steps, builder.inttoptr(data_addr, i8p)])
        return context.get_dummy_value()

    return sig, codegen


@nb.njit(cache=True)
def np_unary(loops: np.ndarray, k: int, src: np.ndarray, dst: np.ndarray, n: int) -> None:
    """``dst[:n] = f(src[:n])`` by NumPy's loop ``k`` of :data:`LOOPS` (:data:`L_EXP`, :data:`L_EXPM1`,
    :data:`L_LOG10`)."""
    _np_unary(loops, k, src, dst, n)


@nb.njit(cache=True)
def np_power_scalar(power: np.ndarray, src: np.ndarray, exponent: np.ndarray, dst: np.ndarray, n: int) -> None:
    """``dst[:n] = src[:n] ** exponent[0]`` as ``array ** float``: NumPy's power loop (:data:`POWER`), or its
    operator's own path for the special exponents where this NumPy takes one (``POWER[2]``, NumPy < 2.3)."""
    if power[2] != 0 and operator_fast_power(exponent[0], src, dst, n):
        return
    np_binary_scalar(power, src, exponent, dst, n)


def _tables() -> tuple[np.ndarray, np.ndarray]:
    """:data:`LOOPS` and :data:`POWER`, checked to reproduce NumPy bit for bit."""
    loops = np.array([*_double_loop(np.exp), *_double_loop(np.expm1), *_double_loop(np.log10)], dtype=np.int64)
    power = np.array([*_binary_double_loop(np.power), 0], dtype=np.int64)
    if not (loops[0::2].all() and power[0]):
        raise ImportError("hyper_make.fast: numpy's exp/expm1/log10/power loops not found")
    r = np.random.default_rng(0)
    x = r.uniform(-700.0, 5.0, 4096)
    pos = 10.0 ** r.uniform(-100.0, 100.0, 4096)
    for k, (ufunc, arg) in enumerate(((np.exp, x), (np.expm1, x), (np.log10, pos))):
        out = np.empty_like(arg)
        np_unary(loops, k, arg, out, arg.shape[0])
        if not np.array_equal(out, ufunc(arg)):
            raise ImportError(f"hyper_make.fast: numpy's {ufunc.__name__} loop does not reproduce it")
    exponents = (-0.5, 1.5, 0.3, 2.0, 0.5, -1.0, 1.0, 0.0)
    out = np.empty_like(pos)
    for flag in (0, 1):  # the loop alone, else with the operator's special exponents (NumPy < 2.3)
        power[2] = flag
        ok = True
        for e in exponents:
            np_power_scalar(power, pos, np.array([e]), out, pos.shape[0])
            ok = ok and np.array_equal(out, pos**e)
        if ok:
            break
    else:
        raise ImportError("hyper_make.fast: numpy's power loop does not reproduce array ** float")
    return loops, power


LOOPS, POWER = _tables()
"""Addresses of NumPy's ``exp``, ``expm1``, ``log10`` (``d->d``) and ``power`` (``dd->d``) loops in this process;
``POWER[2]``: whether its ``array ** float`` operator special-cases some exponents itself (NumPy < 2.3)."""
