"""Compiled, array-level port of the entropy allocator (:mod:`hyper_make.allocate._entropy`), bit-identical to it.

Contract (for the compiled ladder path)
---------------------------------------
One side, one refresh, from Python::

    params = entropy_params(allocator)                       # float64 (N_PARAMS,), cached per allocator
    out = entropy_allocate_arrays(params, fill_prob, capture_usd, inventory_usd, adverse_usd, mid_usd,
                                  budget_coins, caps_coins, min_size_coins,
                                  toxicity, vol_ratio, cascade_severity, prev_target_nats, rng)

or from compiled code ``entropy_allocate_kernel(<the same arrays and scalars>, bitgen_table(rng), NUMPY_LOOPS)``,
which returns the fields of :class:`EntropyArrays` as a tuple (the two tables can be made once per loop).

Inputs: the side's curve arrays, shape ``(n,)`` float64 contiguous: ``fill_prob`` (P_i in [0, 1]), ``capture_usd``,
``inventory_usd``, ``adverse_usd`` (USD per coin, as in :class:`~hyper_make.economics.LevelCurves`); ``mid_usd``
(USD); ``budget_coins`` (coins, the side budget), ``caps_coins`` and ``min_size_coins`` (coins, per level); the
:class:`~hyper_make.snapshot.Regime` fields ``toxicity``, ``vol_ratio``, ``cascade_severity`` (dimensionless);
``prev_target_nats``, the smoothed entropy target carried between refreshes (nats: the previous call's
``new_target_nats`` — ``EntropyState.target_nats`` — or ``params[P_INITIAL_TARGET]`` at the start); ``rng``, the
side's ``np.random.Generator``. The lot grid does not enter: the entropy allocator spreads continuous sizes and the
ladder's lot search rounds them, as for the Python allocator.

Output: :class:`EntropyArrays`: ``sizes`` (coins, ``(n,)``), ``new_target_nats`` (the ``EntropyState`` to carry),
``status`` (:data:`OK`, :data:`EMPTY_NO_LEVELS`, :data:`EMPTY_NO_BUDGET`, :data:`EMPTY_BELOW_MIN`),
``binding_caps`` (``True``: the caps bind, ``False``: the budget), and the diagnostics ``temperature``,
``entropy_target_nats``, ``entropy_before_floor_nats``, ``floor_bound``, ``floor_met``, ``pulled_to_min``,
``dropped_below_min`` (NaN / False / 0 on the two first empty statuses). On ``EMPTY_NO_LEVELS`` and
``EMPTY_NO_BUDGET`` the state is not advanced (``new_target_nats == prev_target_nats``), as in the Python allocator
(which returns ``None`` / the unchanged state there); on ``EMPTY_BELOW_MIN`` it is. The result's expected PnL is
:func:`curve_value_usd` (``Σ a_i·s_i − b_i·s_i^(1+β)``, USD, NumPy's ``power``: on AVX-512 it differs from libm's
``pow`` too); :func:`entropy_result` builds the ``AllocationResult`` from the arrays when it is asked for, and
:func:`allocate_fast` is ``allocate`` itself through the kernels.

Random variates: the Thompson step needs ``Gamma(α_i)`` draws whose shapes ``α_i = α0 + n·p_i`` come out of the
deterministic steps, and NumPy's gamma sampler is a rejection sampler (a variable number of raw draws per variate),
so the variates cannot be drawn before the call. The kernel therefore draws them itself from ``rng``'s bit
generator (:func:`bitgen_table`: its state and its ``next_uint64`` / ``next_double``) with NumPy's own algorithm
(``random_standard_gamma`` with its ziggurat normal and exponential, as numba translates them): the same variates,
in the same order, as the Python allocator's ``rng.gamma(alpha, size=(S, n))``, and the generator's state after the
call is the same (tested for PCG64, MT19937, Philox, SFC64). ``numpy_draws=True`` keeps the Python call itself,
between two kernels (:func:`entropy_shares` returns ``α``, ``rng.gamma`` draws, :func:`entropy_sizes` finishes):
the same numbers, slower. No draw happens on the two first empty statuses or with ``thompson_samples = 0``.

Why it is bit-identical: every reduction is NumPy's (``pairwise_sum``: 8 accumulators, blocks of 128, halves
above), every elementwise operation is in NumPy's order, and ``exp``/``log``/``power`` call NumPy's own ufunc inner
loops: on a CPU with AVX-512 NumPy's SIMD ``exp``/``log`` differ from libm's (numba's ``math.exp``) in the last bit
on a few inputs in a hundred (``benchmarks/bench_entropy_kernel.py`` prints the fractions), which moves the
softmax, the entropy bisection and the Dirichlet shapes. The loops' addresses are read once from the ufunc objects
and checked against NumPy's results at import (:data:`NUMPY_LOOPS`); they are an argument of the kernels, not a
compiled-in constant, so that the kernels can be cached on disk.
"""

from __future__ import annotations

import ctypes
import functools
import math
from collections import OrderedDict
from typing import NamedTuple

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic
from numba.np.random import _constants as _zig
from numpy.typing import NDArray

from .._exact import np_sum_n
from ..allocate._base import AllocationResult, SideProblem, empty_result
from ..allocate._entropy import _BISECT_ITERATIONS, _BISECT_T_MIN, _BISECT_TOL_NATS, EntropyAllocator, EntropyState
from ..economics.curve import LevelCurves
from ..errors import InvalidParameterError

# ---- NumPy's own exp/log inner loops ---------------------------------------------------------------------------


class _PyUFuncHead(ctypes.Structure):
    """The leading fields of NumPy's public ``PyUFuncObject`` (``numpy/ufuncobject.h``), up to ``types``."""

    _fields_ = (
        ("ob_refcnt", ctypes.c_ssize_t),
        ("ob_type", ctypes.c_void_p),
        ("nin", ctypes.c_int),
        ("nout", ctypes.c_int),
        ("nargs", ctypes.c_int),
        ("identity", ctypes.c_int),
        ("functions", ctypes.POINTER(ctypes.c_void_p)),
        ("data", ctypes.POINTER(ctypes.c_void_p)),
        ("ntypes", ctypes.c_int),
    )


def _double_loop(ufunc: np.ufunc) -> tuple[int, int]:
    """(function, data) addresses of ``ufunc``'s float64 inner loop (``d->d`` or ``dd->d``)."""
    head = _PyUFuncHead.from_address(id(ufunc))
    if head.nin != ufunc.nin or head.nout != 1 or head.ntypes != len(ufunc.types):
        raise ImportError(f"hyper_make.fast: unexpected layout of numpy's ufunc {ufunc.__name__!r}")
    k = ufunc.types.index("d" * ufunc.nin + "->d")
    return int(head.functions[k] or 0), int(head.data[k] or 0)


def _call_inner_loop(context, builder, table_data, slot, ptrs, strides, n_v, n_ty):  # type: ignore[no-untyped-def]
    """Emit NumPy's call of an inner loop: ``fn(args, dims, steps, data)`` with ``fn`` and ``data`` the table's
    entries ``slot`` and ``slot + 1`` (an LLVM index), ``args`` the operands' data pointers and ``steps`` their
    strides in bytes (0: a broadcast scalar), ``dims = [n]``."""
    intp_t = context.get_value_type(types.intp)
    i8p = ir.IntType(8).as_pointer()
    fn_addr = builder.load(builder.gep(table_data, [slot]))
    data_addr = builder.load(builder.gep(table_data, [builder.add(slot, ir.Constant(intp_t, 1))]))
    argv = cgutils.alloca_once(builder, i8p, size=len(ptrs))
    steps = cgutils.alloca_once(builder, intp_t, size=len(ptrs))
    for j, (ptr, stride) in enumerate(zip(ptrs, strides, strict=True)):
        builder.store(builder.bitcast(ptr, i8p), builder.gep(argv, [ir.Constant(intp_t, j)]))
        builder.store(ir.Constant(intp_t, stride), builder.gep(steps, [ir.Constant(intp_t, j)]))
    dims = cgutils.alloca_once(builder, intp_t, size=1)
    builder.store(context.cast(builder, n_v, n_ty, types.intp), dims)
    fnty = ir.FunctionType(ir.VoidType(), [i8p.as_pointer(), intp_t.as_pointer(), intp_t.as_pointer(), i8p])
    builder.call(builder.inttoptr(fn_addr, fnty.as_pointer()), [argv, dims, steps, builder.inttoptr(data_addr, i8p)])


@intrinsic
def _np_unary(typingctx, loops, k, src, dst, n):  # type: ignore[no-untyped-def]
    """``dst[:n] = ufunc(src[:n])`` by NumPy's inner loop ``k`` (0 = exp, 1 = log) of the table ``loops``.

    ``loops`` is an int64 array ``[exp fn, exp data, log fn, log data]``; ``src``/``dst`` contiguous float64 arrays
    with at least ``n`` elements. The loop is called as NumPy calls it: ``fn(args, dims, steps, data)``.
    """
    if not (
        isinstance(loops, types.Array)
        and isinstance(src, types.Array)
        and isinstance(dst, types.Array)
        and isinstance(k, types.Integer)
        and isinstance(n, types.Integer)
    ):
        return None
    sig = types.void(loops, k, src, dst, n)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        loops_v, k_v, src_v, dst_v, n_v = args
        intp_t = context.get_value_type(types.intp)
        table = context.make_array(signature.args[0])(context, builder, loops_v)
        slot = builder.mul(context.cast(builder, k_v, signature.args[1], types.intp), ir.Constant(intp_t, 2))
        src_a = context.make_array(signature.args[2])(context, builder, src_v)
        dst_a = context.make_array(signature.args[3])(context, builder, dst_v)
        _call_inner_loop(context, builder, table.data, slot, (src_a.data, dst_a.data), (8, 8), n_v, signature.args[4])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _np_power_scalar(typingctx, loops, src, y, dst, n):  # type: ignore[no-untyped-def]
    """``dst[:n] = src[:n] ** y`` for a float ``y`` by NumPy's ``power`` loop (entries 4, 5 of ``loops``).

    Called as NumPy calls it for ``array ** scalar``: the exponent's stride is 0, which is where NumPy's loop takes
    its fast paths (``y`` = 2: a square, 0.5: a square root, -1: a reciprocal), so the result is ``x ** y``'s.
    """
    if not (
        isinstance(loops, types.Array)
        and isinstance(src, types.Array)
        and isinstance(dst, types.Array)
        and isinstance(y, types.Float)
        and isinstance(n, types.Integer)
    ):
        return None
    sig = types.void(loops, src, y, dst, n)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        loops_v, src_v, y_v, dst_v, n_v = args
        intp_t = context.get_value_type(types.intp)
        table = context.make_array(signature.args[0])(context, builder, loops_v)
        src_a = context.make_array(signature.args[1])(context, builder, src_v)
        dst_a = context.make_array(signature.args[3])(context, builder, dst_v)
        y_slot = cgutils.alloca_once(builder, ir.DoubleType())
        builder.store(context.cast(builder, y_v, signature.args[2], types.float64), y_slot)
        ptrs = (src_a.data, y_slot, dst_a.data)
        _call_inner_loop(context, builder, table.data, ir.Constant(intp_t, 4), ptrs, (8, 0, 8), n_v, signature.args[4])
        return context.get_dummy_value()

    return sig, codegen


@nb.njit(cache=True, error_model="numpy")
def operator_fast_power(y, src, dst, n):  # type: ignore[no-untyped-def]
    """``array ** y`` as NumPy before 2.3 computes it for the exponents its operator special-cases (0.5: ``sqrt``,
    2: ``square``, -1: ``reciprocal``, 1: a copy, 0: ones), into ``dst[:n]``; ``False`` for any other ``y`` (the
    power loop's). Later NumPys take these paths inside the loop itself."""
    if y == 0.5:
        for i in range(n):
            dst[i] = np.sqrt(src[i])
    elif y == 2.0:
        for i in range(n):
            dst[i] = src[i] * src[i]
    elif y == -1.0:
        for i in range(n):
            dst[i] = 1.0 / src[i]
    elif y == 1.0:
        for i in range(n):
            dst[i] = src[i]
    elif y == 0.0:
        for i in range(n):
            dst[i] = 1.0
    else:
        return False
    return True


@nb.njit(cache=True)
def np_pow_scalar(loops, src, y, dst, n):  # type: ignore[no-untyped-def]
    """``dst[:n] = src[:n] ** y`` as NumPy's ``array ** y`` (``loops[6]``: this NumPy's operator takes the special
    exponents' paths itself, :func:`operator_fast_power`; else its ``power`` loop does)."""
    if loops[6] != 0 and operator_fast_power(y, src, dst, n):
        return
    _np_power_scalar(loops, src, y, dst, n)


@nb.njit(cache=True)
def _np_unary_py(loops, k, src, dst, n):  # type: ignore[no-untyped-def]
    """:func:`_np_unary` callable from Python (the import-time check)."""
    _np_unary(loops, k, src, dst, n)


def _reproduces_power(loops: NDArray[np.int64], x: NDArray[np.float64], exponents: tuple[float, ...]) -> bool:
    """Whether NumPy's ``power`` loop alone (a stride-0 exponent) gives ``x ** y`` for every ``y`` of ``exponents``."""
    out = np.empty_like(x)
    for y in exponents:
        _np_power_py(loops, x, y, out, x.shape[0])
        if not np.array_equal(out, x**y):
            return False
    return True


@nb.njit(cache=True)
def _np_power_py(loops, src, y, dst, n):  # type: ignore[no-untyped-def]
    """:func:`_np_power_scalar` callable from Python (the import-time check)."""
    _np_power_scalar(loops, src, y, dst, n)


def _numpy_loops() -> NDArray[np.int64]:
    """The table ``[exp fn, exp data, log fn, log data, power fn, power data]``, checked to reproduce ``np.exp``,
    ``np.log`` and ``array ** y`` bit for bit."""
    loops = np.array([*_double_loop(np.exp), *_double_loop(np.log), *_double_loop(np.power), 0], dtype=np.int64)
    if loops[0] == 0 or loops[2] == 0 or loops[4] == 0:
        raise ImportError("hyper_make.fast: numpy's exp/log/power loops not found")
    check = np.random.default_rng(0)
    for k, (ufunc, x) in enumerate(
        ((np.exp, check.uniform(-745.0, 5.0, 4096)), (np.log, np.exp(check.uniform(-740.0, 5.0, 4096))))
    ):
        out = np.empty_like(x)
        _np_unary_py(loops, k, x, out, x.shape[0])
        if not np.array_equal(out, ufunc(x)):
            raise ImportError(f"hyper_make.fast: numpy's {ufunc.__name__} loop does not reproduce np.{ufunc.__name__}")
    # the exponents the pipelines use (1 + β, -β) and the special ones, on sizes and on volumes spanning 200 decades
    x = np.concatenate([check.uniform(0.0, 1e3, 4096), 10.0 ** check.uniform(-100.0, 100.0, 4096)])
    exponents = (1.5, 1.3, 0.5, 2.0, -1.0, 1.0, 0.0, 3.0, -0.5, 0.3)
    loops[6] = int(not _reproduces_power(loops, x, exponents))  # NumPy < 2.3: its operator's special cases
    for y in exponents:
        out = np.empty_like(x)
        np_pow_scalar(loops, x, y, out, x.shape[0])
        if not np.array_equal(out, x**y):
            raise ImportError(f"hyper_make.fast: numpy's power loop does not reproduce x ** {y}")
    return loops


NUMPY_LOOPS: NDArray[np.int64] = _numpy_loops()
"""``[exp fn, exp data, log fn, log data, power fn, power data, operator flag]``: addresses of NumPy's float64 inner
loops of ``exp``, ``log`` and ``power`` (this process), and whether its ``array ** y`` operator special-cases some
exponents itself (NumPy < 2.3)."""

# ---- NumPy's Gamma sampler on the generator's own bit stream ---------------------------------------------------


# NumPy's ziggurat tables (numpy/random/src/distributions/ziggurat_constants.h), as numba ships them
_KI_DOUBLE, _WI_DOUBLE, _FI_DOUBLE = _zig.ki_double, _zig.wi_double, _zig.fi_double
_KE_DOUBLE, _WE_DOUBLE, _FE_DOUBLE = _zig.ke_double, _zig.we_double, _zig.fe_double
_ZIGGURAT_NOR_R, _ZIGGURAT_NOR_INV_R, _ZIGGURAT_EXP_R = (
    _zig.ziggurat_nor_r,
    _zig.ziggurat_nor_inv_r,
    _zig.ziggurat_exp_r,
)


@intrinsic
def _bitgen_call(typingctx, fn, state, restype):  # type: ignore[no-untyped-def]
    """``fn(state)`` for a bit generator's ``next_uint64`` / ``next_double`` (addresses as integers)."""
    if not (isinstance(fn, types.Integer) and isinstance(state, types.Integer)):
        return None
    rty = restype.instance_type if isinstance(restype, types.NumberClass) else None
    if rty not in (types.uint64, types.float64):
        return None
    sig = rty(fn, state, restype)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        i8p = ir.IntType(8).as_pointer()
        fn_v = context.cast(builder, args[0], signature.args[0], types.intp)
        st_v = context.cast(builder, args[1], signature.args[1], types.intp)
        fnty = ir.FunctionType(context.get_value_type(signature.return_type), [i8p])
        return builder.call(builder.inttoptr(fn_v, fnty.as_pointer()), [builder.inttoptr(st_v, i8p)])

    return sig, codegen


@nb.njit(cache=True)
def _next_uint64(bitgen):  # type: ignore[no-untyped-def]
    return _bitgen_call(bitgen[1], bitgen[0], nb.uint64)


@nb.njit(cache=True)
def _next_double(bitgen):  # type: ignore[no-untyped-def]
    return _bitgen_call(bitgen[2], bitgen[0], nb.float64)


# NumPy's distributions.c, as numba's own Generator support translates it (numba/np/random/distributions.py, BSD)
@nb.njit(cache=True)
def _standard_normal(bitgen):  # type: ignore[no-untyped-def]
    """``random_standard_normal``: NumPy's ziggurat."""
    while True:
        r = _next_uint64(bitgen)
        idx = r & 0xFF
        r >>= 8
        sign = r & 0x1
        rabs = (r >> 1) & 0x000FFFFFFFFFFFFF
        x = rabs * _WI_DOUBLE[idx]
        if sign & 0x1:
            x = -x
        if rabs < _KI_DOUBLE[idx]:
            return x
        if idx == 0:
            while True:
                xx = -_ZIGGURAT_NOR_INV_R * np.log1p(-_next_double(bitgen))
                yy = -np.log1p(-_next_double(bitgen))
                if yy + yy > xx * xx:
                    if (rabs >> 8) & 0x1:
                        return -(_ZIGGURAT_NOR_R + xx)
                    return _ZIGGURAT_NOR_R + xx
        elif (_FI_DOUBLE[idx - 1] - _FI_DOUBLE[idx]) * _next_double(bitgen) + _FI_DOUBLE[idx] < np.exp(-0.5 * x * x):
            return x


@nb.njit(cache=True)
def _standard_exponential(bitgen):  # type: ignore[no-untyped-def]
    """``random_standard_exponential``: NumPy's ziggurat."""
    while True:
        ri = _next_uint64(bitgen)
        ri >>= 3
        idx = ri & 0xFF
        ri >>= 8
        x = ri * _WE_DOUBLE[idx]
        if ri < _KE_DOUBLE[idx]:
            return x
        if idx == 0:
            return _ZIGGURAT_EXP_R - np.log1p(-_next_double(bitgen))
        if (_FE_DOUBLE[idx - 1] - _FE_DOUBLE[idx]) * _next_double(bitgen) + _FE_DOUBLE[idx] < np.exp(-x):
            return x


@nb.njit(cache=True)
def _standard_gamma(bitgen, shape):  # type: ignore[no-untyped-def]
    """``random_standard_gamma``: Marsaglia-Tsang for ``shape >= 1``, Johnk-like rejection below."""
    if shape == 1.0:
        return _standard_exponential(bitgen)
    if shape == 0.0:
        return 0.0
    if shape < 1.0:
        while True:
            u = _next_double(bitgen)
            v = _standard_exponential(bitgen)
            if u <= 1.0 - shape:
                x = pow(u, 1.0 / shape)
                if x <= v:
                    return x
            else:
                y = -np.log((1 - u) / shape)
                x = pow(1.0 - shape + shape * y, 1.0 / shape)
                if x <= v + y:
                    return x
    b = shape - 1.0 / 3.0
    c = 1.0 / np.sqrt(9 * b)
    while True:
        while True:
            x = _standard_normal(bitgen)
            v = 1.0 + c * x
            if v > 0.0:
                break
        v = v * v * v
        u = _next_double(bitgen)
        if u < 1.0 - 0.0331 * (x * x) * (x * x):
            return b * v
        if np.log(u) < 0.5 * x * x + b * (1.0 - v + np.log(v)):
            return b * v


@nb.njit(cache=True)
def gamma_draws(bitgen, alpha, n_draws):  # type: ignore[no-untyped-def]
    """``rng.gamma(alpha, size=(n_draws, n))`` from the bit generator table ``bitgen`` (see :func:`bitgen_table`).

    The same variates in the same order as NumPy's call (C order, ``1.0 · standard_gamma(α_j)``), and the
    generator's state advances alike.
    """
    n = alpha.shape[0]
    out = np.empty((n_draws, n))
    for r in range(n_draws):
        for j in range(n):
            out[r, j] = 1.0 * _standard_gamma(bitgen, alpha[j])
    return out


_BITGEN_FNS: dict[type, tuple[int, int]] = {}
# oldest first; OrderedDict.popitem(last=False) evicts in one C call (no iterator a thread could invalidate)
_BITGEN_TABLES: OrderedDict[int, tuple[np.random.BitGenerator, NDArray[np.int64]]] = OrderedDict()
_BITGEN_TABLES_MAX = 256


def bitgen_table(rng: np.random.Generator) -> NDArray[np.int64]:
    """``[state address, next_uint64, next_double]`` of ``rng``'s bit generator, for the kernels' draws.

    The kernels advance the generator's state in place, as ``rng``'s own methods would (without its lock: do not
    use one generator from two threads at once). The table is valid while ``rng`` is alive; the last 256 are kept
    (with their generators, so that an id is not reused while its table is cached).
    """
    bg = rng.bit_generator
    hit = _BITGEN_TABLES.get(id(bg))
    if hit is not None and hit[0] is bg:
        return hit[1]
    iface = bg.ctypes
    fns = _BITGEN_FNS.get(type(bg))
    if fns is None:  # the functions are the bit generator type's; only the state differs between generators
        fns = (
            int(ctypes.cast(iface.next_uint64, ctypes.c_void_p).value or 0),
            int(ctypes.cast(iface.next_double, ctypes.c_void_p).value or 0),
        )
        _BITGEN_FNS[type(bg)] = fns
    table = np.array([iface.state_address, fns[0], fns[1]], dtype=np.int64)
    table.flags.writeable = False
    if len(_BITGEN_TABLES) >= _BITGEN_TABLES_MAX:
        _BITGEN_TABLES.popitem(last=False)
    _BITGEN_TABLES[id(bg)] = (bg, table)
    return table


# ---- parameters ------------------------------------------------------------------------------------------------

P_MIN_ENTROPY = 0
P_BASE_TEMPERATURE = 1
P_TOXICITY_TEMP_SCALE = 2
P_DIRICHLET_PRIOR = 3
P_MIN_ALLOCATION_FLOOR = 4
P_THOMPSON_SAMPLES = 5
P_ADAPTIVE_TEMPERATURE = 6
P_MAX_TEMP_MULTIPLIER = 7
P_ENTROPY_SMOOTHING = 8
P_INITIAL_TARGET = 9
P_AS_CONFIDENCE = 10
P_MIN_TOUCH_EV_BPS = 11
P_MIN_NOTIONAL_SOFT_FRAC = 12
N_PARAMS = 13

OK = 0
EMPTY_NO_LEVELS = 1
EMPTY_NO_BUDGET = 2
EMPTY_BELOW_MIN = 3


@functools.lru_cache(maxsize=64)
def entropy_params(allocator: EntropyAllocator) -> NDArray[np.float64]:
    """The allocator's parameters as the kernels' float64 array (indices ``P_*``; booleans and counts as 0/1, n).

    Read-only and cached per allocator (a frozen value).
    """
    a = allocator
    params = np.empty(N_PARAMS)
    params[P_MIN_ENTROPY] = a.min_entropy
    params[P_BASE_TEMPERATURE] = a.base_temperature
    params[P_TOXICITY_TEMP_SCALE] = a.toxicity_temp_scale
    params[P_DIRICHLET_PRIOR] = a.dirichlet_prior
    params[P_MIN_ALLOCATION_FLOOR] = a.min_allocation_floor
    params[P_THOMPSON_SAMPLES] = a.thompson_samples
    params[P_ADAPTIVE_TEMPERATURE] = 1.0 if a.adaptive_temperature else 0.0
    params[P_MAX_TEMP_MULTIPLIER] = a.max_temp_multiplier
    params[P_ENTROPY_SMOOTHING] = a.entropy_smoothing
    params[P_INITIAL_TARGET] = a.initial_entropy_target
    params[P_AS_CONFIDENCE] = a.as_confidence
    params[P_MIN_TOUCH_EV_BPS] = a.min_touch_ev_bps
    params[P_MIN_NOTIONAL_SOFT_FRAC] = a.min_notional_soft_frac
    params.flags.writeable = False
    return params


# ---- NumPy's reductions ----------------------------------------------------------------------------------------


# ---- steps 1-5 -------------------------------------------------------------------------------------------------


@nb.njit(cache=True)
def _softmax(u, t, n, loops, z, p):  # type: ignore[no-untyped-def]
    """``p = softmax(u / t)`` as the Python allocator computes it (``z`` is scratch)."""
    zmax = -np.inf
    for i in range(n):
        z[i] = u[i] / t
        # np.max propagates NaN; the inputs are finite here (utilities in [-1, 1], t > 0)
        if z[i] > zmax:
            zmax = z[i]
    for i in range(n):
        z[i] = z[i] - zmax
    _np_unary(loops, 0, z, p, n)
    total = np_sum_n(p, n)
    for i in range(n):
        p[i] = p[i] / total


@nb.njit(cache=True)
def _entropy(p, n, loops, q, lq):  # type: ignore[no-untyped-def]
    """``-(q·ln q).sum()`` over ``q = p[p > 0]`` (nats), as the Python allocator (``q``, ``lq`` scratch)."""
    m = 0
    for i in range(n):
        if p[i] > 0:
            q[m] = p[i]
            m += 1
    _np_unary(loops, 1, q, lq, m)
    for i in range(m):
        lq[i] = q[i] * lq[i]
    return -np_sum_n(lq, m)


@nb.njit(cache=True)
def _utilities(
    fill_prob, capture_usd, inventory_usd, adverse_usd, mid_usd, as_confidence, min_touch_ev_bps, u, key, order
):  # type: ignore[no-untyped-def]
    """Step 1: rank utilities ``1 - 2k/(n-1)`` into ``u`` by descending net EV (bps), ties by level index."""
    n = fill_prob.shape[0]
    if n == 1:
        u[0] = 1.0
        return
    bps = 1e4 / mid_usd
    for i in range(n):
        ev = fill_prob[i] * (capture_usd[i] + inventory_usd[i] - as_confidence * adverse_usd[i]) * bps
        key[i] = -max(ev, min_touch_ev_bps)
    # stable insertion sort of the keys ascending (a few dozen levels; faster here than counting ranks):
    # the same order as argsort(kind="stable")
    for i in range(n):
        order[i] = i
    for i in range(1, n):
        j = i
        while j > 0 and key[order[j]] < key[order[j - 1]]:
            order[j], order[j - 1] = order[j - 1], order[j]
            j -= 1
    for k in range(n):
        u[order[k]] = 1.0 - 2.0 * k / (n - 1)


@nb.njit(cache=True)
def _temperature(params, toxicity, vol_ratio, cascade_severity):  # type: ignore[no-untyped-def]
    """Step 2: the regime-adapted temperature (dimensionless)."""
    base = params[P_BASE_TEMPERATURE]
    t = base
    if params[P_ADAPTIVE_TEMPERATURE] != 0.0:
        if toxicity > 1.0:
            t *= 1.0 + params[P_TOXICITY_TEMP_SCALE] * (toxicity - 1.0)
        if vol_ratio > 1.0:
            t *= math.sqrt(vol_ratio)
        if cascade_severity > 0.1:
            t *= 1.0 + cascade_severity
    cap = params[P_MAX_TEMP_MULTIPLIER] * base
    return cap if cap < t else t


@nb.njit(cache=True)
def _shares(  # type: ignore[no-untyped-def]
    params, fill_prob, capture_usd, inventory_usd, adverse_usd, mid_usd, toxicity, vol_ratio, cascade_severity,
    target_nats, loops, fw, iw,
):  # fmt: skip
    """:func:`entropy_shares` in the workspace ``fw`` (float64, ``>= 7n``) and ``iw`` (int64, ``>= n``);
    ``p`` and ``alpha`` are the views ``fw[5n:6n]`` and ``fw[6n:7n]``."""
    n = fill_prob.shape[0]
    u, key, z, q, lq = fw[0:n], fw[n : 2 * n], fw[2 * n : 3 * n], fw[3 * n : 4 * n], fw[4 * n : 5 * n]
    p, alpha = fw[5 * n : 6 * n], fw[6 * n : 7 * n]
    _utilities(
        fill_prob, capture_usd, inventory_usd, adverse_usd, mid_usd, params[P_AS_CONFIDENCE],
        params[P_MIN_TOUCH_EV_BPS], u, key, iw,
    )  # fmt: skip
    t = _temperature(params, toxicity, vol_ratio, cascade_severity)
    _softmax(u, t, n, loops, z, p)
    h0 = _entropy(p, n, loops, q, lq)
    log_n = math.log(n)
    target = log_n if log_n < target_nats else target_nats
    floor_bound = h0 < target
    if floor_bound:
        # project_to_min_entropy: bisect T on [0.01, 10·T]
        lo, hi = _BISECT_T_MIN, 10.0 * t
        t_found = math.nan
        for _ in range(_BISECT_ITERATIONS):
            mid = 0.5 * (lo + hi)
            _softmax(u, mid, n, loops, z, p)
            h = _entropy(p, n, loops, q, lq)
            if abs(h - target) < _BISECT_TOL_NATS and h >= target - _BISECT_TOL_NATS:
                t_found = mid
                break
            if h < target:
                lo = mid
            else:
                hi = mid
        t = hi if math.isnan(t_found) else t_found
        _softmax(u, t, n, loops, z, p)
    floor_met = (_entropy(p, n, loops, q, lq) if floor_bound else h0) >= target - _BISECT_TOL_NATS
    f = params[P_MIN_ALLOCATION_FLOOR]
    if n * f < 1.0:
        for i in range(n):
            p[i] = f + (1.0 - n * f) * p[i]
    else:
        for i in range(n):
            p[i] = 1.0 / n
    for i in range(n):
        alpha[i] = params[P_DIRICHLET_PRIOR] + n * p[i]
    return p, alpha, t, target, h0, floor_bound, floor_met


@nb.njit(cache=True)
def entropy_shares(  # type: ignore[no-untyped-def]
    params,
    fill_prob,
    capture_usd,
    inventory_usd,
    adverse_usd,
    mid_usd,
    toxicity,
    vol_ratio,
    cascade_severity,
    target_nats,
    loops,
):
    """Steps 1-5: shares ``p`` per level before sampling, the Dirichlet shapes ``α = α0 + n·p`` and the diagnostics.

    ``target_nats`` is the smoothed target of *this* refresh (already advanced: ``s·prev + (1 - s)·H_min``).
    Returns ``(p, alpha, temperature, entropy_target_nats, entropy_before_floor_nats, floor_bound, floor_met)``.
    ``n >= 1``.
    """
    n = fill_prob.shape[0]
    p, alpha, t, target, h0, floor_bound, floor_met = _shares(
        params, fill_prob, capture_usd, inventory_usd, adverse_usd, mid_usd, toxicity, vol_ratio,
        cascade_severity, target_nats, loops, np.empty(7 * n), np.empty(n, dtype=np.int64),
    )  # fmt: skip
    return p.copy(), alpha.copy(), t, target, h0, floor_bound, floor_met


# ---- steps 6-7 -------------------------------------------------------------------------------------------------


@nb.njit(cache=True)
def water_fill(w, total, caps, s, free, buf, share):  # type: ignore[no-untyped-def]
    """``allocate._base.water_fill(w, total, caps)`` into ``s`` (coins); ``free`` (bool or int), ``buf``, ``share``
    scratch rows of ``w``'s length.

    The same operations in the same order: ``share = remaining·w·free / Σ w[free]``, the levels whose size would
    reach their cap are capped and the rest re-split, at most ``n + 1`` rounds.
    """
    n = w.shape[0]
    for i in range(n):
        s[i] = 0.0
        free[i] = w[i] > 0
    remaining = total
    for _ in range(n + 1):
        nfree = 0
        for i in range(n):
            if free[i]:
                buf[nfree] = w[i]
                nfree += 1
        if remaining <= 0 or nfree == 0:
            break
        wsum = np_sum_n(buf, nfree)
        any_over = False
        for i in range(n):
            share[i] = remaining * w[i] * (1.0 if free[i] else 0.0) / wsum
            if free[i] and s[i] + share[i] >= caps[i]:
                any_over = True
        if not any_over:
            for i in range(n):
                s[i] += share[i]
            break
        m = 0
        for i in range(n):
            if free[i] and s[i] + share[i] >= caps[i]:
                buf[m] = caps[i] - s[i]
                m += 1
        remaining -= np_sum_n(buf, m)
        for i in range(n):
            if free[i] and s[i] + share[i] >= caps[i]:
                s[i] = caps[i]
                free[i] = False


@nb.njit(cache=True)
def _min_notional(p, capacity, m, caps, soft_frac, sizes, fw, bw):  # type: ignore[no-untyped-def]
    """``EntropyAllocator._min_notional``: spread ``capacity`` (coins) by ``p`` under the caps into ``sizes``, each
    level 0 or at least its minimum ``m`` (coins); returns ``(pulled, dropped)``. Workspace: ``fw`` float64
    ``>= 6n``, ``bw`` bool ``>= 5n``."""
    n = p.shape[0]
    alive, pull, rest, short, free = bw[0:n], bw[n : 2 * n], bw[2 * n : 3 * n], bw[3 * n : 4 * n], bw[4 * n : 5 * n]
    wts, cps, wf, share, buf = fw[0:n], fw[n : 2 * n], fw[2 * n : 3 * n], fw[3 * n : 4 * n], fw[4 * n : 5 * n]
    for i in range(n):
        pull[i] = rest[i] = short[i] = False
    dropped = 0
    for i in range(n):
        positive = p[i] > 0
        # np.minimum(caps, capacity), NaN propagating as there
        cap_i = caps[i] if (caps[i] <= capacity or math.isnan(caps[i])) else capacity
        alive[i] = positive and m[i] <= cap_i
        if positive and not alive[i]:
            dropped += 1
    while True:
        n_alive = 0
        for i in range(n):
            n_alive += alive[i]
        if n_alive == 0:
            break
        for i in range(n):
            wts[i] = p[i] if alive[i] else 0.0
            cps[i] = caps[i] if alive[i] else 0.0
        water_fill(wts, capacity, cps, sizes, free, buf, share)
        any_small = False
        any_drop = False
        for i in range(n):
            small = alive[i] and sizes[i] < m[i]
            pull[i] = small and sizes[i] >= soft_frac * m[i]
            any_small |= small
            any_drop |= small and not pull[i]
        if not any_small:
            return 0, dropped
        if any_drop:
            for i in range(n):
                if alive[i] and sizes[i] < m[i] and not pull[i]:
                    alive[i] = False
                    dropped += 1
            continue
        k = 0
        for i in range(n):
            if pull[i]:
                buf[k] = m[i]
                k += 1
        left = capacity - np_sum_n(buf, k)
        for i in range(n):
            rest[i] = alive[i] and not pull[i]
            wts[i] = p[i] if rest[i] else 0.0
            cps[i] = caps[i] if rest[i] else 0.0
        water_fill(wts, 0.0 if 0.0 > left else left, cps, wf, free, buf, share)
        any_short = False
        for i in range(n):
            sizes[i] = (m[i] if pull[i] else 0.0) + wf[i]
            short[i] = rest[i] and sizes[i] < m[i]
            any_short |= short[i]
        if left >= 0 and not any_short:
            return k, dropped
        # the pulls crowd out other levels (or overrun the budget): give up the least-preferred level
        use_short = left >= 0 and any_short
        best = -1
        for i in range(n):
            if (short[i] if use_short else pull[i]) and (best < 0 or p[i] < p[best]):
                best = i
        alive[best] = False
        dropped += 1
    for i in range(n):
        sizes[i] = 0.0
    return 0, dropped


@nb.njit(cache=True)
def _spread(shares, budget_coins, caps_coins, min_size_coins, soft_frac, fw, bw):  # type: ignore[no-untyped-def]
    """Step 7 on the sampled shares: ``(sizes, pulled, dropped, status, binding_caps)``; workspace as
    :func:`_min_notional`."""
    n = shares.shape[0]
    caps_total = np_sum_n(caps_coins, n)
    capacity = caps_total if caps_total < budget_coins else budget_coins
    sizes = np.empty(n)
    pulled, dropped = _min_notional(shares, capacity, min_size_coins, caps_coins, soft_frac, sizes, fw, bw)
    status = EMPTY_BELOW_MIN if np_sum_n(sizes, n) <= 0 else OK
    return sizes, pulled, dropped, status, caps_total < budget_coins


@nb.njit(cache=True)
def _accumulate_row(row, n, acc):  # type: ignore[no-untyped-def]
    """``acc += row / row.sum()``: one Dirichlet draw's shares added to the running column sums."""
    rs = np_sum_n(row, n)
    for j in range(n):
        acc[j] += row[j] / rs


@nb.njit(cache=True)
def entropy_sizes(p, draws, budget_coins, caps_coins, min_size_coins, soft_frac):  # type: ignore[no-untyped-def]
    """Steps 6-7: the Thompson mean of ``draws`` (``(S, n)`` Gamma variates, ``S = 0``: no sampling, use ``p``),
    then the capacity ``min(budget, Σ caps)`` (coins) spread under caps and minimum orders.

    Returns ``(sizes, pulled, dropped, status, binding_caps)``: sizes in coins, ``status`` :data:`OK` or
    :data:`EMPTY_BELOW_MIN`, ``binding_caps`` whether ``Σ caps < budget``.
    """
    n = p.shape[0]
    n_draws = draws.shape[0]
    shares = p
    if n_draws > 0:
        # (draws / draws.sum(axis=1, keepdims=True)).sum(axis=0) / S: row sums pairwise, the column sum in row order
        acc = np.zeros(n)
        for r in range(n_draws):
            _accumulate_row(draws[r], n, acc)
        for j in range(n):
            acc[j] = acc[j] / n_draws
        shares = acc
    return _spread(
        shares, budget_coins, caps_coins, min_size_coins, soft_frac, np.empty(6 * n), np.empty(6 * n, dtype=np.bool_)
    )


@nb.njit(cache=True)
def curve_value_usd(fill_prob, capture_usd, inventory_usd, adverse_usd, b_usd, beta, sizes, loops):  # type: ignore[no-untyped-def]
    """``Σ_i a_i·s_i − b_i·s_i^(1+β)`` (USD), ``a_i = P_i·(e_i + v_i − AS_i)``: ``LevelCurves.value(sizes).sum()``.

    ``b_usd`` is ``b_forward + b_roundtrip`` (USD per coin^(1+β)); NumPy's operations in its order, its ``power``.
    """
    n = sizes.shape[0]
    sb = np.empty(n)
    np_pow_scalar(loops, sizes, 1.0 + beta, sb, n)
    v = np.empty(n)
    for i in range(n):
        a = fill_prob[i] * (capture_usd[i] + inventory_usd[i] - adverse_usd[i])
        v[i] = a * sizes[i] - b_usd[i] * sb[i]
    return np_sum_n(v, n)


# ---- the entry ---------------------------------------------------------------------------------------------------


@nb.njit(cache=True)
def entropy_allocate_kernel(  # type: ignore[no-untyped-def]
    params,
    fill_prob,
    capture_usd,
    inventory_usd,
    adverse_usd,
    mid_usd,
    budget_coins,
    caps_coins,
    min_size_coins,
    toxicity,
    vol_ratio,
    cascade_severity,
    prev_target_nats,
    bitgen,
    loops,
):
    """One side's entropy allocation, compiled end to end (callable from other compiled code).

    Arguments as :func:`entropy_allocate_arrays`, with ``bitgen = bitgen_table(rng)`` and ``loops = NUMPY_LOOPS``.
    Returns the fields of :class:`EntropyArrays` as a tuple, in its order. Raises ``ValueError`` when an array's
    length is not the side's (the kernel reads them unchecked).
    """
    n = fill_prob.shape[0]
    if (
        capture_usd.shape[0] != n
        or inventory_usd.shape[0] != n
        or adverse_usd.shape[0] != n
        or caps_coins.shape[0] != n
        or min_size_coins.shape[0] != n
        or params.shape[0] != N_PARAMS
        or bitgen.shape[0] != 3
        or loops.shape[0] != 7
    ):
        raise ValueError(
            "entropy kernel: the curve arrays, caps_coins and min_size_coins need one entry per level, params "
            "N_PARAMS, bitgen 3 (bitgen_table) and loops 7 (NUMPY_LOOPS)"
        )
    nan = math.nan
    if n == 0 or budget_coins <= 0:  # the Python allocator's test (a NaN budget goes on, as there)
        status = EMPTY_NO_LEVELS if n == 0 else EMPTY_NO_BUDGET
        return np.zeros(n), prev_target_nats, status, False, nan, nan, nan, False, False, 0, 0
    s = params[P_ENTROPY_SMOOTHING]
    target = s * prev_target_nats + (1.0 - s) * params[P_MIN_ENTROPY]
    fw = np.empty(16 * n)
    bw = np.empty(6 * n, dtype=np.bool_)
    iw = np.empty(n, dtype=np.int64)
    p, alpha, t, tgt, h0, floor_bound, floor_met = _shares(
        params, fill_prob, capture_usd, inventory_usd, adverse_usd, mid_usd, toxicity, vol_ratio,
        cascade_severity, target, loops, fw, iw,
    )  # fmt: skip
    n_draws = int(params[P_THOMPSON_SAMPLES])
    shares = p
    if n_draws > 0:
        # rng.gamma(alpha, size=(S, n)) row by row (C order), each row's shares added as it is drawn
        row, acc = fw[7 * n : 8 * n], fw[8 * n : 9 * n]
        for j in range(n):
            acc[j] = 0.0
        for _ in range(n_draws):
            for j in range(n):
                row[j] = 1.0 * _standard_gamma(bitgen, alpha[j])
            _accumulate_row(row, n, acc)
        for j in range(n):
            acc[j] = acc[j] / n_draws
        shares = acc
    sizes, pulled, dropped, status, binding_caps = _spread(
        shares, budget_coins, caps_coins, min_size_coins, params[P_MIN_NOTIONAL_SOFT_FRAC], fw[10 * n :], bw
    )
    return sizes, target, status, binding_caps, t, tgt, h0, floor_bound, floor_met, pulled, dropped


class EntropyArrays(NamedTuple):
    """One side's entropy allocation as arrays and scalars (see the module docstring)."""

    sizes: NDArray[np.float64]
    new_target_nats: float
    status: int
    binding_caps: bool
    temperature: float
    entropy_target_nats: float
    entropy_before_floor_nats: float
    floor_bound: bool
    floor_met: bool
    pulled_to_min: int
    dropped_below_min: int


def _check_arrays(
    params: NDArray[np.float64], fill_prob: NDArray[np.float64], **per_level: NDArray[np.float64]
) -> None:
    """One-line errors for arrays the kernels would misread: wrong dtype, dimension or length."""
    if not (isinstance(params, np.ndarray) and params.dtype == np.float64 and params.shape == (N_PARAMS,)):
        raise InvalidParameterError(f"'params' must be entropy_params(allocator), float64 of shape ({N_PARAMS},)")
    arrays = {"fill_prob": fill_prob, **per_level}
    n = fill_prob.shape[0] if isinstance(fill_prob, np.ndarray) and fill_prob.ndim == 1 else -1
    for name, a in arrays.items():
        if not (isinstance(a, np.ndarray) and a.dtype == np.float64 and a.ndim == 1 and a.shape[0] == n):
            got = f"{a.dtype}{a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
            raise InvalidParameterError(
                f"'{name}' must be a float64 array of one entry per level ({n} from fill_prob); got {got}"
            )


def entropy_allocate_arrays(
    params: NDArray[np.float64],
    fill_prob: NDArray[np.float64],
    capture_usd: NDArray[np.float64],
    inventory_usd: NDArray[np.float64],
    adverse_usd: NDArray[np.float64],
    mid_usd: float,
    budget_coins: float,
    caps_coins: NDArray[np.float64],
    min_size_coins: NDArray[np.float64],
    toxicity: float,
    vol_ratio: float,
    cascade_severity: float,
    prev_target_nats: float,
    rng: np.random.Generator,
    *,
    numpy_draws: bool = False,
    check: bool = True,
) -> EntropyArrays:
    """``EntropyAllocator.allocate`` on arrays: sizes (coins), the next smoothed target (nats), status, diagnostics.

    Draws from ``rng`` exactly what the Python allocator draws (nothing when the side is empty or the budget is 0):
    in the kernel from ``rng``'s bit generator by default, or by ``rng.gamma`` itself between two kernels with
    ``numpy_draws=True`` (slower; the same numbers). ``check=False`` skips the arrays' dtype checks (a few µs of
    Python) for a caller that validated them at its boundary; the kernel still checks their lengths.

    Raises
    ------
    InvalidParameterError
        If an array is not float64 of one entry per level (``fill_prob``'s length), or ``params`` is not
        :func:`entropy_params`'s.
    """
    if check:
        _check_arrays(
            params, fill_prob, capture_usd=capture_usd, inventory_usd=inventory_usd, adverse_usd=adverse_usd,
            caps_coins=caps_coins, min_size_coins=min_size_coins,
        )  # fmt: skip
    if not numpy_draws:
        return EntropyArrays(
            *entropy_allocate_kernel(
                params,
                fill_prob,
                capture_usd,
                inventory_usd,
                adverse_usd,
                mid_usd,
                budget_coins,
                caps_coins,
                min_size_coins,
                toxicity,
                vol_ratio,
                cascade_severity,
                prev_target_nats,
                bitgen_table(rng),
                NUMPY_LOOPS,
            )
        )
    n = fill_prob.shape[0]
    nan = math.nan
    if n == 0 or budget_coins <= 0:  # the Python allocator's test (a NaN budget goes on, as there)
        status = EMPTY_NO_LEVELS if n == 0 else EMPTY_NO_BUDGET
        return EntropyArrays(np.zeros(n), prev_target_nats, status, False, nan, nan, nan, False, False, 0, 0)
    s = float(params[P_ENTROPY_SMOOTHING])
    target = s * prev_target_nats + (1.0 - s) * float(params[P_MIN_ENTROPY])
    p, alpha, t, tgt, h0, floor_bound, floor_met = entropy_shares(
        params, fill_prob, capture_usd, inventory_usd, adverse_usd, mid_usd, toxicity, vol_ratio,
        cascade_severity, target, NUMPY_LOOPS,
    )  # fmt: skip
    n_draws = int(params[P_THOMPSON_SAMPLES])
    # the Python allocator's own call: Gamma(α_i) draws, row by row, from the side's generator
    draws = rng.gamma(alpha, size=(n_draws, n)) if n_draws > 0 else np.empty((0, n))
    sizes, pulled, dropped, status, binding_caps = entropy_sizes(
        p, draws, budget_coins, caps_coins, min_size_coins, float(params[P_MIN_NOTIONAL_SOFT_FRAC])
    )
    return EntropyArrays(sizes, target, status, binding_caps, t, tgt, h0, floor_bound, floor_met, pulled, dropped)


def allocate_fast(
    allocator: EntropyAllocator, problem: SideProblem, rng: np.random.Generator, *, numpy_draws: bool = False
) -> AllocationResult:
    """``allocator.allocate(problem, rng)`` through the compiled kernels: the same :class:`AllocationResult`."""
    c = problem.curves
    n = c.n
    if n == 0:
        return empty_result(0, "no price levels on this side")
    if problem.budget_coins <= 0:
        return empty_result(n, "side budget is zero", problem.state)
    allocator.next_state(problem.state)  # refuses another allocator's state, naming it, as allocate does
    prev_target = (
        problem.state.target_nats if isinstance(problem.state, EntropyState) else allocator.initial_entropy_target
    )
    r = problem.regime
    out = entropy_allocate_arrays(
        entropy_params(allocator), c.fill_prob, c.capture_usd, c.inventory, c.adverse_usd, float(c.mid_usd),
        float(problem.budget_coins), problem.caps_coins, problem.min_size_coins, float(r.toxicity),
        float(r.vol_ratio), float(r.cascade_severity), float(prev_target), rng, numpy_draws=numpy_draws,
    )  # fmt: skip
    return entropy_result(out, c, problem.state)


def entropy_result(out: EntropyArrays, curves: LevelCurves, state_in: object | None = None) -> AllocationResult:
    """The :class:`AllocationResult` ``EntropyAllocator.allocate`` returns, built from the kernels' arrays.

    For a compiled path that keeps arrays and builds the objects only when asked: ``out`` from
    :func:`entropy_allocate_arrays` (or the kernel's tuple as ``EntropyArrays(*t)``) on the side's ``curves``;
    ``state_in`` is the ``SideProblem.state`` the call started from (what a zero-budget side hands back).
    """
    n = out.sizes.shape[0]
    if out.status == EMPTY_NO_LEVELS:
        return empty_result(0, "no price levels on this side")
    if out.status == EMPTY_NO_BUDGET:
        return empty_result(n, "side budget is zero", state_in)
    state = EntropyState(out.new_target_nats)
    if out.status == EMPTY_BELOW_MIN:
        return empty_result(n, "side budget is below the exchange's minimum order value", state)
    c = curves
    return AllocationResult(
        sizes=out.sizes,
        expected_pnl_usd=curve_value_usd(
            c.fill_prob, c.capture_usd, c.inventory, c.adverse_usd, c.b, float(c.beta), out.sizes, NUMPY_LOOPS
        ),
        shadow_price=float("nan"),
        binding="caps" if out.binding_caps else "budget",
        message=f"entropy floor {'bound' if out.floor_bound else 'slack'} at T={out.temperature:.3g}",
        diagnostics={
            "temperature": out.temperature,
            "entropy_target_nats": out.entropy_target_nats,
            "entropy_before_floor_nats": out.entropy_before_floor_nats,
            "floor_bound": out.floor_bound,
            "floor_met": out.floor_met,
            "pulled_to_min": out.pulled_to_min,
            "dropped_below_min": out.dropped_below_min,
        },
        state=state,
    )
