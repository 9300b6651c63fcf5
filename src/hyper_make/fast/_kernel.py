"""The compiled two-sided build: :func:`hyper_make.build_ladder`'s pipeline on scalars and small arrays.

One call of :func:`build_sides` does, for both sides, what the reference does in NumPy and Python: the
post-only limit and the price rounding (Hyperliquid's 5 significant figures and maximum decimals, bids down and
asks up, behind the opposite best, distinct), the curves (fill, adverse selection, square-root impact, inventory
value), the minimum orders, the budgets and caps, the allocation (``impact``: the KKT solve, the certified lot
search and the minimum-order search; ``greedy``, ``flat``, ``progression``), and the exchange projection. Every
step is the reference's formula in the reference's order of operations (NumPy's pairwise sums and decimal
rounding included, :mod:`._numpy`); the transcendental functions are the C library's where NumPy's SIMD versions
may differ in the last bit, which moves no order on the property test and the benchmark's 10^5 snapshots per
allocator (``benchmarks/bench_fastpath.py``).

Output layout (``out``, shape ``(2, N_ROWS, n_levels)``, side 0 = bid, 1 = ask): the orders best first, one per
column, rows :data:`ROWS`; the call returns the orders per side and their total size (coins) with a code, :data:`OK`
or the reason the caller must take the reference path (which raises the reference's error).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .._exact import np_sum_n
from ..allocate._discrete import _lot_optimum
from ..allocate._kkt import BUDGET, EMPTY_BUDGET, EMPTY_EDGE, FAILED, kkt_solve
from ..instrument import MAX_LOTS
from ._entropy import EMPTY_BELOW_MIN, entropy_allocate_kernel, water_fill
from ._numpy import (
    L_EXP,
    L_EXPM1,
    L_LOG10,
    np_power_scalar,
    np_round6,
    np_unary,
    py_ceil_round6,
    py_floor_round6,
)
from ._special import INV_SQRT_2, erfc
from ._stealth_kernels import dirichlet_sizes_kernel, posterior_draw_kernel

#: Rows of the output array per side: the order's price (USD), size (coins), depth from the mid (bps), level index,
#: and its curve terms: fill probability, capture (USD/coin), adverse selection (USD/coin), inventory value
#: (USD/coin), forward and round-trip impact coefficients (USD/coin^(1+β)).
ROWS = ("price", "size", "depth", "level", "fill_prob", "capture", "adverse", "inventory", "b_forward", "b_roundtrip")
N_ROWS = len(ROWS)
#: Return codes: built; a side budget above 2^53 lots (the reference raises); an allocator the kernel does not run
#: (``learned``: :func:`prepare_sides`, the allocator, then :func:`finish_sides`).
OK, TOO_LARGE, EXTERNAL = 0, 1, 2

# integer config slots (ci)
CI_FILL, CI_ADVERSE, CI_IMPACT, CI_ALLOC, CI_DISCRETE, CI_SEARCH, CI_SIG, CI_MAXDEC, CI_PROFILE = range(9)
CI_STEALTH, CI_STEALTH_DISCRETE, CI_NEEDS_IMPACT, CI_LOT_INVERSE, CI_OWN_STEALTH = 9, 10, 11, 12, 13
CI_TICKS, CI_TICKS_PER_LEVEL, CI_N_LEVELS = 14, 15, 16
CI_SIZE = 17
#: stealth stage (``[ladder.stealth]`` or the allocator's own): off, Dirichlet noise, posterior draw + exact solve
STEALTH_OFF, STEALTH_DIRICHLET, STEALTH_POSTERIOR = 0, 1, 2
#: fill models, adverse models, impact state (0 evaluated, 1 off (zeros, its β), 2 missing input (zeros, β = 0.5))
FILL_EXP, FILL_FP, FILL_TABLE = 0, 1, 2
ADV_EXP, ADV_TABLE = 0, 1
IMPACT_ON, IMPACT_OFF, IMPACT_NONE = 0, 1, 2
ALLOC_IMPACT, ALLOC_GREEDY, ALLOC_FLAT, ALLOC_PROGRESSION, ALLOC_ENTROPY, ALLOC_LEARNED = 0, 1, 2, 3, 4, 5
# float config slots (cf)
(
    CF_H,
    CF_CAPFRAC,
    CF_A,
    CF_KAPPA,
    CF_AS0,
    CF_DECAY,
    CF_FWD,
    CF_RT,
    CF_BETA,
    CF_MINNOT,
    CF_LOT,
    CF_INV,
    CF_FIRST,
    CF_STEP,
    CF_INV_SQRT_2PI,
    CF_MAXDEPTH,
    CF_GAMMA,
    CF_CONCENTRATION,
    CF_EDGE_SD,
    CF_IMPACT_SD,
) = range(20)
CF_SIZE = 20
# snapshot slots (sv)
(
    SV_MID,
    SV_BID,
    SV_ASK,
    SV_Q,
    SV_MAXPOS,
    SV_MARGIN,
    SV_LEV,
    SV_FEE,
    SV_SIGMA2,
    SV_SIGMA_FILL,
    SV_SIGMA_H,
    SV_SIGMA_PERIOD,
    SV_VOL_SCALE,
    SV_PROFILE_SCALE,
    SV_RES_BID,
    SV_RES_ASK,
    SV_TOXICITY,
    SV_VOL_RATIO,
    SV_CASCADE,
    SV_TARGET_BID,
    SV_TARGET_ASK,
) = range(21)
SV_SIZE = 21

#: Rows of the float workspace ``ws`` (shape ``(2, W_ROWS, n_levels)``, per side, reused by every build of a
#: FastLadder): the kernels allocate nothing per level array (an allocation costs about as much as a level's
#: arithmetic).
W_OFF, W_RAW, W_KEPT, W_PX, W_DEPTH, W_TERMS = 0, 1, 2, 3, 4, 5  # W_TERMS..W_TERMS+5: the curve terms
W_A, W_B, W_MINS, W_CAPS, W_SIZES, W_ZERO, W_TMP, W_SHARE, W_ONES = 11, 12, 13, 14, 15, 16, 17, 18, 19
W_CURVE_TMP = 20  # W_CURVE_TMP..+2: the curves' scratch rows
W_ROWS = 23
#: Rows of the integer workspace ``wi``: lots, cap lots, minimum lots, free flags (water fill).
I_LOTS, I_CAP, I_MIN, I_FREE = 0, 1, 2, 3
I_ROWS = 4

_P10 = np.array([10.0**k for k in range(16)])  # exact powers of ten (Python's 10.0 ** k, as the reference)


@nb.njit(cache=True)
def _round_price(price: float, bid: bool, sig: int, maxdec: int) -> float:
    """:meth:`InstrumentSpec.round_price` (Python's ``round(·, 6)``, ``math.log10``): bids down, asks up (USD)."""
    int_digits = math.floor(math.log10(price)) + 1
    scale = _P10[min(max(sig - int_digits, 0), maxdec)]
    x = price * scale
    return (py_floor_round6(x) if bid else py_ceil_round6(x)) / scale


@nb.njit(cache=True)
def _np_log10(x: float, ml: np.ndarray) -> float:
    """``np.log10(x)`` (NumPy's loop, as the reference's array and scalar calls)."""
    buf = np.empty(2)
    buf[0] = x
    np_unary(ml, L_LOG10, buf[0:1], buf[1:2], 1)
    return buf[1]


@nb.njit(cache=True)
def _price_tick(price: float, sig: int, maxdec: int, ticks: np.ndarray, ml: np.ndarray) -> float:
    """:meth:`InstrumentSpec.price_tick`: the increment (USD) at ``price`` (its digits from ``np.log10``)."""
    int_digits = math.floor(_np_log10(price, ml)) + 1
    return ticks[min(max(sig - int_digits, 0), maxdec)]


@nb.njit(cache=True)
def _step(price: float, bid: bool, sig: int, maxdec: int, ticks: np.ndarray, ml: np.ndarray) -> float:
    """``levels._step``: the next valid price one tick further from the mid (USD); 0.0 if none."""
    if price <= 0:
        return 0.0
    if bid:
        below = price - _price_tick(price * (1 - 1e-12), sig, maxdec, ticks, ml)
        return _round_price(below, True, sig, maxdec) if below > 0 else 0.0
    return _round_price(price + _price_tick(price, sig, maxdec, ticks, ml), False, sig, maxdec)


@nb.njit(cache=True)
def _interp(x: float, xp: np.ndarray, fp: np.ndarray) -> float:
    """``np.interp(x, xp, fp)`` for one point (NumPy's formula: ``slope·(x - xp[j]) + fp[j]``, flat beyond)."""
    n = xp.shape[0]
    if math.isnan(x):
        return x
    if n == 1:
        return fp[0]
    if x < xp[0]:
        return fp[0]
    if x >= xp[n - 1]:
        return fp[n - 1]
    lo = 0
    hi = n - 1
    while hi - lo > 1:  # xp[lo] <= x < xp[hi]
        mid = (lo + hi) >> 1
        if xp[mid] <= x:
            lo = mid
        else:
            hi = mid
    if xp[lo] == x:
        return fp[lo]
    slope = (fp[lo + 1] - fp[lo]) / (xp[lo + 1] - xp[lo])
    res = slope * (x - xp[lo]) + fp[lo]
    if math.isnan(res):
        res = slope * (x - xp[lo + 1]) + fp[lo + 1]
        if math.isnan(res) and fp[lo] == fp[lo + 1]:
            res = fp[lo]
    return res


@nb.njit(cache=True)
def _round_array_price(px: float, bid: bool, sig: int, maxdec: int, ml: np.ndarray) -> float:
    """:meth:`InstrumentSpec.round_prices` of one price (USD): ``10^clip((sig-1) - floor(log10 px), 0, maxdec)``,
    NumPy's ``round(·, 6)``, floor (bids) or ceiling (asks)."""
    return _round_with_log(px, _np_log10(px, ml), bid, sig, maxdec)


@nb.njit(cache=True)
def _round_with_log(px: float, lg: float, bid: bool, sig: int, maxdec: int) -> float:
    """:func:`_round_array_price` with ``lg = np.log10(px)`` given (one loop call for a side's prices)."""
    d = (sig - 1) - math.floor(lg)
    d = min(max(d, 0), maxdec)
    scale = _P10[d]
    scaled = np_round6(px * scale)
    return (math.floor(scaled) if bid else math.ceil(scaled)) / scale


@nb.njit(cache=True)
def _step_ticks(price, bid, k, sig, maxdec, ticks, ml):  # type: ignore[no-untyped-def]
    """``levels._step_ticks``: the valid price ``k`` ticks further from the mid (USD), a decade a step (0.0: none)."""
    p = price
    while k > 0 and p > 0:
        if bid:
            tau = _price_tick(p * (1 - 1e-12), sig, maxdec, ticks, ml)
            floor_px = math.ceil(math.pow(10.0, math.floor(math.log10(p * (1 - 1e-12)))) / tau - 1e-9) * tau
            room = int(np.rint((p - floor_px) / tau))  # Python's round(): half to even
        else:
            tau = _price_tick(p, sig, maxdec, ticks, ml)
            room = int(np.rint((math.pow(10.0, math.floor(math.log10(p)) + 1) - p) / tau))
        if room <= 0:
            p = _step(p, bid, sig, maxdec, ticks, ml)
            k -= 1
        elif k <= room:
            target = p - k * tau if bid else p + k * tau
            return _round_price(target, bid, sig, maxdec) if target > 0 else 0.0
        else:
            target = p - room * tau if bid else p + room * tau
            p = _round_price(target, bid, sig, maxdec) if target > 0 else 0.0
            k -= room
    return p if p > 0 else 0.0


@nb.njit(cache=True)
def _tick_ladder(first, bid, ci, cf, sig, maxdec, ticks, raw, ml):  # type: ignore[no-untyped-def]
    """``levels._tick_ladder`` into ``raw``: up to ``n_levels`` prices ``ticks_per_level`` ticks apart from
    ``first``, stopping at the max depth; returns the count."""
    raw[0] = first
    count = 1
    limit = first * (1.0 + (-1.0 if bid else 1.0) * cf[CF_MAXDEPTH] * 1e-4)
    p = first
    while count < ci[CI_N_LEVELS]:
        p = _step_ticks(p, bid, ci[CI_TICKS_PER_LEVEL], sig, maxdec, ticks, ml)
        if (bid and (p < limit or p <= 0)) or ((not bid) and p > limit):
            break
        raw[count] = p
        count += 1
    return count


@nb.njit(cache=True)
def _side_prices(bid, ref, offsets, sv, sig, maxdec, ticks, px_out, depth_out, raw, kept, ci, cf, ml):  # type: ignore[no-untyped-def]
    """``levels.ladder_prices`` of one side: distinct valid post-only prices best first (USD) and their depths from
    the mid (bps) into the outputs (``raw``, ``kept``: scratch rows); returns their count."""
    mid = sv[SV_MID]
    if bid:
        limit = _round_price(sv[SV_ASK], True, sig, maxdec)
        if limit >= sv[SV_ASK]:
            limit = _step(limit, True, sig, maxdec, ticks, ml)
    else:
        limit = _round_price(sv[SV_BID], False, sig, maxdec)
        if limit <= sv[SV_BID]:
            limit = _step(limit, False, sig, maxdec, ticks, ml)
    n = offsets.shape[0]
    for i in range(n):
        raw[i] = ref * ((1.0 - offsets[i]) if bid else (1.0 + offsets[i]))
    sign = -1.0 if bid else 1.0
    if n and limit > 0 and sign * (raw[0] - limit) < 0:
        shift = limit - raw[0]
        for i in range(n):
            raw[i] = raw[i] + shift
    if ci[CI_TICKS]:
        # every ticks_per_level ticks from the rounded touch (the first positive raw price)
        first = -1.0
        for i in range(n):
            if raw[i] > 0:
                first = raw[i]
                break
        if first > 0:
            first = _round_array_price(first, bid, sig, maxdec, ml)
            n = _tick_ladder(first, bid, ci, cf, sig, maxdec, ticks, raw, ml) if first > 0 else 0
        else:
            n = 0
    # np.log10 of the side's raw prices in one call of NumPy's loop (``kept`` holds them until it is refilled below)
    np_unary(ml, L_LOG10, raw, kept, n)
    m = 0
    for i in range(n):
        px = raw[i]
        if not px > 0:
            continue
        p = _round_with_log(px, kept[i], bid, sig, maxdec)
        # behind the opposite best
        if bid:
            p = p if p <= limit else limit
        else:
            p = p if p >= limit else limit
        if p > 0:
            kept[m] = p
            m += 1
    # ascending insertion sort: the rounded prices are monotone in depth already, so it is one pass
    for i in range(1, m):
        v = kept[i]
        j = i - 1
        while j >= 0 and kept[j] > v:
            kept[j + 1] = kept[j]
            j -= 1
        kept[j + 1] = v
    count = 0
    for i in range(m):
        j = m - 1 - i if bid else i  # bids highest first
        p = kept[j]
        if count and px_out[count - 1] == p:
            continue
        px_out[count] = p
        depth_out[count] = sign * (p - mid) / mid * 1e4
        count += 1
    return count


@nb.njit(cache=True)
def _curves(depth, n, inv_value, ci, cf, sv, tables, prof_d, prof_logv, terms, tmp, loops, power):  # type: ignore[no-untyped-def]
    """``economics._level_arrays`` on the side's levels: rows ``terms[0..5]`` = fill prob, capture, adverse,
    inventory, b_fwd, b_rt (the units of :class:`LevelCurves`), elementwise in NumPy's order with NumPy's own
    ``exp``/``expm1``/``power`` loops (``tmp``: three scratch rows)."""
    mid = sv[SV_MID]
    bps_to_usd = mid * 1e-4
    h = cf[CF_H]
    fee = sv[SV_FEE]
    fill_kind = ci[CI_FILL]
    impact = ci[CI_IMPACT]
    beta = cf[CF_BETA]
    p = terms[0]
    x = tmp[0]
    y = tmp[1]
    # fill probability, clipped to [0, 1]
    if fill_kind == FILL_EXP:
        for i in range(n):
            x[i] = -cf[CF_KAPPA] * max(depth[i], 0.0)
        np_unary(loops, L_EXP, x, y, n)
        for i in range(n):
            x[i] = cf[CF_A] * y[i] * -h  # lam·(-h)
        np_unary(loops, L_EXPM1, x, y, n)
        for i in range(n):
            p[i] = -y[i]
    elif fill_kind == FILL_FP:
        for i in range(n):
            p[i] = erfc(max(depth[i], 0.0) * 1e-4 / (sv[SV_SIGMA_FILL] * math.sqrt(h)) / math.sqrt(2.0))
    else:
        for i in range(n):
            p[i] = _interp(depth[i], tables[0], tables[1])
    for i in range(n):
        p[i] = min(max(p[i], 0.0), 1.0)
        terms[1, i] = (depth[i] - fee) * bps_to_usd
        terms[3, i] = inv_value
        terms[4, i] = 0.0
        terms[5, i] = 0.0
    # adverse selection
    if ci[CI_ADVERSE] == ADV_EXP:
        for i in range(n):
            x[i] = max(depth[i], 0.0) / -cf[CF_DECAY]
        np_unary(loops, L_EXP, x, y, n)
        for i in range(n):
            terms[2, i] = cf[CF_AS0] * y[i] * bps_to_usd
    else:
        for i in range(n):
            terms[2, i] = _interp(depth[i], tables[2], tables[3]) * bps_to_usd
    if impact != IMPACT_ON:
        return
    # volume at depth V, then b = c·σ_h·mid·V^-β
    v = tmp[2]
    if ci[CI_PROFILE]:
        for i in range(n):
            x[i] = _interp(depth[i], prof_d, prof_logv)
        np_unary(loops, L_EXP, x, y, n)
        for i in range(n):
            v[i] = y[i] * sv[SV_PROFILE_SCALE]
    else:
        for i in range(n):
            z = max(depth[i] * 1e-4 / sv[SV_SIGMA_PERIOD], 0.0)
            v[i] = z
            x[i] = -0.5 * z * z
        np_unary(loops, L_EXP, x, y, n)
        for i in range(n):
            z = v[i]
            phi = cf[CF_INV_SQRT_2PI] * y[i]
            shape = 2.0 * ((1.0 + z * z) * (0.5 * erfc(z * INV_SQRT_2)) - z * phi)  # as the reference's
            v[i] = sv[SV_VOL_SCALE] * max(shape, 1e-12)
    e = tmp[0, n : n + 1]  # the exponent -β as a one-element operand (NumPy broadcasts the scalar)
    e[0] = -beta
    np_power_scalar(power, v, e, y, n)
    for i in range(n):
        base = sv[SV_SIGMA_H] * mid * y[i]
        terms[4, i] = cf[CF_FWD] * base
        terms[5, i] = cf[CF_RT] * p[i] * base


@nb.njit(cache=True)
def _greedy(a, budget, caps, sizes):  # type: ignore[no-untyped-def]
    """``GreedyAllocator``: distinct positive edges best first, each group water-filled to its caps."""
    n = a.shape[0]
    for i in range(n):
        sizes[i] = 0.0
    npos = 0
    for i in range(n):
        if a[i] > 0:
            npos += 1
    if npos == 0:
        return
    edges = np.empty(npos)
    j = 0
    for i in range(n):
        if a[i] > 0:
            edges[j] = a[i]
            j += 1
    edges = np.sort(edges)
    group = np.empty(n)
    gcaps = np.empty(n)
    part = np.empty(n)
    free = np.empty(n, dtype=np.int64)
    tmp = np.empty(n)
    share = np.empty(n)
    left = budget
    prev = np.nan
    for e in range(npos - 1, -1, -1):
        edge = edges[e]
        if edge == prev:
            continue
        prev = edge
        if left <= 1e-12 * budget:
            break
        for i in range(n):
            g = a[i] == edge
            group[i] = 1.0 if g else 0.0
            gcaps[i] = caps[i] if g else 0.0
        water_fill(group, left, gcaps, part, free, tmp, share)
        for i in range(n):
            sizes[i] += part[i]
        left = budget - np_sum_n(sizes, n)


@nb.njit(cache=True)
def _progression(n, first, step, budget, caps, sizes):  # type: ignore[no-untyped-def]
    """``ProgressionAllocator``: level k asks ``(first + k·step)·budget``, filled from the touch (``fill_in_order``)."""
    left = budget
    carry = 0.0
    for i in range(n):
        sizes[i] = 0.0
    for i in range(n):
        if left <= 0:
            break
        ask = (first + step * i) * budget
        take = min(ask + carry, caps[i], left)
        carry = ask + carry - take
        sizes[i] = take
        left -= take


@nb.njit(cache=True)
def _values_sum(a, b, beta, lot, k, power):  # type: ignore[no-untyped-def]
    """``Σ f_i(k_i)`` with ``f(k) = a·kL - b·(kL)^(1+β)`` (USD): ``_discrete._values`` (NumPy's power loop) and
    NumPy's pairwise sum."""
    n = a.shape[0]
    s = np.empty(n)
    sb = np.empty(n)
    q = np.empty(1)
    q[0] = 1.0 + beta
    for i in range(n):
        s[i] = k[i] * lot
    np_power_scalar(power, s, q, sb, n)
    for i in range(n):
        sb[i] = a[i] * s[i] - b[i] * sb[i]
    return np_sum_n(sb, n)


@nb.njit(cache=True)
def _optimum(a, b, beta, lot, budget_lots, lo, hi):  # type: ignore[no-untyped-def]
    """``_discrete.lot_optimum``'s lots (the compiled body it wraps)."""
    k = np.empty(a.shape[0], dtype=np.int64)
    _lot_optimum(a, b, beta, lot, budget_lots, lo, hi, k)
    return k


@nb.njit(cache=True)
def _resolve(a, b, beta, lot, budget_lots, lo, hi_in, m):  # type: ignore[no-untyped-def]
    """``discrete_allocation.resolve``: lot optimum under ``lo <= k <= hi``, dropping levels below their minimum;
    ``(lots, found)``."""
    n = a.shape[0]
    hi = hi_in.copy()
    for _ in range(n + 1):
        if lo.sum() > budget_lots:
            return hi, False
        kk = _optimum(a, b, beta, lot, budget_lots, lo, hi)
        bad = False
        for i in range(n):
            if kk[i] > 0 and kk[i] < m[i]:
                hi[i] = 0
                bad = True
        if not bad:
            return kk, True
    return hi, False


@nb.njit(cache=True)
def _discrete(a, b, beta, lot, budget, caps, mins, max_search, power):  # type: ignore[no-untyped-def]
    """``_discrete.discrete_allocation``'s lots: the lot optimum with every level at 0 or at least its minimum order
    (the drop-the-weakest loop, then the exhaustive search over the remaining levels in ``itertools.product``
    order); ``(lots, ok)``, ``ok`` False for a budget above 2^53 lots."""
    n = a.shape[0]
    bl = py_floor_round6(budget / lot)
    if not bl <= MAX_LOTS:
        return np.zeros(n, dtype=np.int64), False
    budget_lots = int(bl)
    top = float(budget_lots) + 1.0
    rows = np.empty((4, n), dtype=np.int64)  # one allocation (each costs as much as a level's arithmetic)
    cap, m, hi0, zero = rows[0], rows[1], rows[2], rows[3]
    zero[:] = 0
    for i in range(n):
        cap[i] = math.floor(min(np_round6(caps[i] / lot), top))
        m[i] = max(math.ceil(min(np_round6(mins[i] / lot), top)), 1)
        hi0[i] = cap[i] if (a[i] > 0 and m[i] <= min(cap[i], budget_lots)) else 0
    k = _optimum(a, b, beta, lot, budget_lots, zero, hi0)
    nv = 0
    for i in range(n):
        if k[i] > 0 and k[i] < m[i]:
            nv += 1
    if nv == 0:
        return k, True
    base_hi = hi0.copy()
    kk = k
    while nv > max_search:
        # the weakest violating level: fewest lots, then lowest edge, then first (np.lexsort is stable)
        worst = -1
        for i in range(n):
            if kk[i] > 0 and kk[i] < m[i]:
                if worst < 0 or kk[i] < kk[worst] or (kk[i] == kk[worst] and a[i] < a[worst]):
                    worst = i
        base_hi[worst] = 0
        kk = _optimum(a, b, beta, lot, budget_lots, zero, base_hi)
        nv = 0
        for i in range(n):
            if kk[i] > 0 and kk[i] < m[i]:
                nv += 1
    viol = np.empty(nv, dtype=np.int64)
    j = 0
    for i in range(n):
        if kk[i] > 0 and kk[i] < m[i]:
            viol[j] = i
            j += 1
    best = zero
    best_val = 0.0
    for c in range(1 << nv):
        lo = zero.copy()
        hi = base_hi.copy()
        for t in range(nv):
            up = (c >> (nv - 1 - t)) & 1  # itertools.product: the last level varies fastest
            v = viol[t]
            if up:
                lo[v] = m[v]
            else:
                hi[v] = 0
        cand, found = _resolve(a, b, beta, lot, budget_lots, lo, hi, m)
        if found:
            val = _values_sum(a, b, beta, lot, cand, power)
            if val > best_val:
                best = cand
                best_val = val
    return best, True


@nb.njit(cache=True)
def _impact(a, b, beta, budget, caps, mins, lot, inv, discrete, max_search, sizes, zeros, power):  # type: ignore[no-untyped-def]
    """``ImpactAllocator.allocate``'s sizes (coins) into ``sizes``; False for a budget above 2^53 lots."""
    n = a.shape[0]
    if discrete:
        finite = True
        for i in range(n):
            finite = finite and abs(a[i]) < np.inf
        if finite:
            # the continuous solve decides nothing here: where it is empty (no edge, no budget) the lot optimum is
            # all zeros too, and with finite edges it cannot fail (its sizes stay within the caps and the budget)
            return _impact_lots(a, b, beta, budget, caps, mins, lot, inv, max_search, sizes, power)
    zeros[:] = 0.0
    code, _, _, _, _ = kkt_solve(a, b, zeros, caps, budget, beta, sizes)
    if code == EMPTY_EDGE or code == EMPTY_BUDGET or code == FAILED:
        sizes[:] = 0.0
        return True
    if not discrete:
        if code == BUDGET:
            for _ in range(3):  # solve_concave's last-ulp guard, in NumPy's summation order
                total = np_sum_n(sizes, n)
                if total <= budget:
                    break
                f = budget / total * (1.0 - 4e-16)
                for i in range(n):
                    sizes[i] *= f
        return True
    return _impact_lots(a, b, beta, budget, caps, mins, lot, inv, max_search, sizes, power)


@nb.njit(cache=True)
def _impact_lots(a, b, beta, budget, caps, mins, lot, inv, max_search, sizes, power):  # type: ignore[no-untyped-def]
    """The discrete step of :func:`_impact`: the lot optimum with the minimum orders, as coins into ``sizes``."""
    k, ok = _discrete(a, b, beta, lot, budget, caps, mins, max_search, power)
    if not ok:
        return False
    for i in range(a.shape[0]):
        sizes[i] = k[i] / inv  # lots_to_coins: k / 10^sz, the float nearest k·10^-sz
    return True


@nb.njit(cache=True)
def _project(n, sizes, caps, mins, budget, inv, prices, depth, ws, wi, side, out):  # type: ignore[no-untyped-def]
    """``projection.project_side``: lots floored (1e-6 lot rounding), capped, within the budget, minimum orders
    raised or dropped; the resting orders into ``out[side]``; returns ``(count, total_coins, ok)``, the total from
    the lots."""
    lots = wi[I_LOTS]
    cap_lots = wi[I_CAP]
    min_lots = wi[I_MIN]
    for i in range(n):
        x = math.floor(np_round6(max(sizes[i], 0.0) * inv))
        c = math.floor(np_round6(caps[i] * inv))
        mm = math.floor(np_round6(mins[i] * (1 + 1e-12) * inv))
        if not (x <= MAX_LOTS and c <= MAX_LOTS and mm <= MAX_LOTS):
            return 0, 0.0, False
        lots[i] = int(x)
        cap_lots[i] = int(c)
        min_lots[i] = int(mm)
    bl = math.floor(np_round6(budget * inv))
    if not bl <= MAX_LOTS:
        return 0, 0.0, False
    budget_lots = int(bl)
    total = 0
    for i in range(n):
        if cap_lots[i] < lots[i]:
            lots[i] = cap_lots[i]
        total += lots[i]
    excess = total - budget_lots
    for i in range(n - 1, -1, -1):
        if excess <= 0:
            break
        take = min(excess, lots[i])
        lots[i] -= take
        excess -= take
    for i in range(n):
        if sizes[i] > 0 and lots[i] < min_lots[i]:
            need = min_lots[i] - lots[i]
            held = 0
            for j in range(n):
                held += lots[j]
            fits = held + need <= budget_lots and min_lots[i] <= cap_lots[i]
            if sizes[i] >= (min_lots[i] / inv) * (1 - 1e-9) and fits:
                lots[i] = min_lots[i]
            else:
                lots[i] = 0
    count = 0
    held = 0
    for i in range(n):
        held += lots[i]
        if lots[i] > 0:
            out[side, 0, count] = prices[i]
            out[side, 1, count] = lots[i] / inv
            out[side, 2, count] = depth[i]
            out[side, 3, count] = i
            for r in range(6):
                out[side, 4 + r, count] = ws[W_TERMS + r, i]
            count += 1
    return count, held / inv, True


@nb.njit(cache=True)
def _stealth(stealth, ci, cf, a, b, beta, budget, caps, mins, lot, inv, sizes, w, bitgen, loops, power):  # type: ignore[no-untyped-def]
    """``stealth.apply_stealth`` on ``sizes`` (in place; nothing on an empty side): the Dirichlet draw, or the
    posterior draw of the curves and their exact solve (KKT, lots, minimum orders: ``apply_stealth``'s own search
    depth of 4); False for a budget above 2^53 lots."""
    n = sizes.shape[0]
    rest = False
    for i in range(n):
        if sizes[i] != 0.0:
            rest = True
    if not rest:
        return True
    if stealth == STEALTH_DIRICHLET:
        sizes[:] = dirichlet_sizes_kernel(sizes, caps, mins, lot, ci[CI_LOT_INVERSE], cf[CF_CONCENTRATION], bitgen)
        return True
    a_draw, b_draw = posterior_draw_kernel(a, b, cf[CF_EDGE_SD], cf[CF_IMPACT_SD], bitgen, loops)
    return _impact(
        a_draw,
        b_draw,
        beta,
        budget,
        caps,
        mins,
        lot,
        inv,
        ci[CI_STEALTH_DISCRETE] != 0,
        4,
        sizes,
        w[W_ZERO, :n],
        power,
    )


#: Slots of a build's ``info`` array (float64, :data:`INFO_SIZE`), the stages' shared scalars, two per side (bid,
#: ask): the side's price levels, its budget (coins), whether it is allocated (budget, levels, impact input), the
#: state code (0 the one passed in, 1 ``None``, 2 the entropy target), the entropy target (nats), whether the ladder's
#: stealth stage is skipped (an allocation whose binding is ``"empty"``: set by an allocator outside the kernel);
#: the reservation price (USD).
INFO_N, INFO_BUDGET, INFO_LIVE, INFO_STATE, INFO_TARGET, INFO_NO_STEALTH, INFO_REF = 0, 2, 4, 6, 8, 10, 12
INFO_SIZE = 13


@nb.njit(cache=True)
def prepare_sides(ci, cf, sv, depths, ticks, tables, prof_d, prof_logv, ws, mloops, power, info):  # type: ignore[no-untyped-def]
    """The first stage of a build, both sides: the reservation price, the prices, the curves, the edges ``a`` and
    impact coefficients ``b``, the minimum orders, the budgets and caps (rows of ``ws``, scalars into ``info``).
    Returns :data:`OK` or :data:`TOO_LARGE`."""
    mid = sv[SV_MID]
    # reservation price r = mid - clamp(q·γ·σ²·h, ±mid·max_depth)
    skew = sv[SV_Q] * cf[CF_GAMMA] * sv[SV_SIGMA2] * cf[CF_H]
    bound = mid * cf[CF_MAXDEPTH] * 1e-4
    ref = mid - min(max(skew, -bound), bound)
    info[INFO_REF] = ref
    nd = depths.shape[0]
    offsets = ws[0, W_OFF, :nd]
    for i in range(nd):
        offsets[i] = depths[i] * 1e-4
    sig = ci[CI_SIG]
    maxdec = ci[CI_MAXDEC]
    lot = cf[CF_LOT]
    inv = cf[CF_INV]
    no_impact = ci[CI_IMPACT] == IMPACT_NONE and ci[CI_NEEDS_IMPACT] != 0
    info[INFO_TARGET] = sv[SV_TARGET_BID]
    info[INFO_TARGET + 1] = sv[SV_TARGET_ASK]
    for side in range(2):
        bid = side == 0
        w = ws[side]
        info[INFO_STATE + side] = 0
        info[INFO_LIVE + side] = 0
        info[INFO_NO_STEALTH + side] = 0
        px_all = w[W_PX]
        depth_all = w[W_DEPTH]
        n = _side_prices(
            bid, ref, offsets, sv, sig, maxdec, ticks, px_all, depth_all, w[W_RAW], w[W_KEPT], ci, cf, mloops
        )
        info[INFO_N + side] = n
        px = px_all[:n]
        depth = depth_all[:n]
        terms = w[W_TERMS : W_TERMS + 6]
        _curves(
            depth, n, (ref - mid) if bid else (mid - ref), ci, cf, sv, tables, prof_d, prof_logv, terms,
            w[W_CURVE_TMP : W_CURVE_TMP + 3], mloops, power,
        )  # fmt: skip
        a = w[W_A, :n]
        b = w[W_B, :n]
        mins = w[W_MINS, :n]
        for i in range(n):
            a[i] = terms[0, i] * (terms[1, i] + terms[3, i] - terms[2, i])
            b[i] = terms[4, i] + terms[5, i]
            mins[i] = math.ceil(np_round6(cf[CF_MINNOT] / px[i] * inv)) / inv
        # side_budget: position room (less the reserved coins) and margin capacity
        q = sv[SV_Q]
        room = sv[SV_MAXPOS] - q if bid else sv[SV_MAXPOS] + q
        room = max(room - (sv[SV_RES_BID] if bid else sv[SV_RES_ASK]), 0.0)
        reducing = max(-q, 0.0) if bid else max(q, 0.0)
        margin_cap = sv[SV_MARGIN] * sv[SV_LEV] / mid + reducing
        budget = room if room <= margin_cap else margin_cap
        info[INFO_BUDGET + side] = budget
        if budget > MAX_LOTS * lot:
            return TOO_LARGE
        caps = w[W_CAPS, :n]
        caps[:] = cf[CF_CAPFRAC] * budget
        if budget <= 0 or n == 0 or no_impact:
            continue  # an empty side (the reference's empty_result, which carries the state passed in)
        info[INFO_LIVE + side] = 1
    return OK


@nb.njit(cache=True)
def allocate_sides(ci, cf, sv, ws, wi, eparams, bitgen, loops, power, info):  # type: ignore[no-untyped-def]
    """The second stage: each allocated side's sizes (coins) into ``ws``'s size row, by the compiled allocator (and
    its own stealth stage), bid then ask, as the reference draws. Returns :data:`OK` or :data:`TOO_LARGE`."""
    mid = sv[SV_MID]
    lot = cf[CF_LOT]
    inv = cf[CF_INV]
    alloc = ci[CI_ALLOC]
    stealth = ci[CI_STEALTH]
    beta = cf[CF_BETA] if ci[CI_IMPACT] != IMPACT_NONE else 0.5
    own = ci[CI_OWN_STEALTH] != 0
    for side in range(2):
        if info[INFO_LIVE + side] == 0:
            continue
        w = ws[side]
        n = int(info[INFO_N + side])
        budget = info[INFO_BUDGET + side]
        a = w[W_A, :n]
        b = w[W_B, :n]
        mins = w[W_MINS, :n]
        caps = w[W_CAPS, :n]
        terms = w[W_TERMS : W_TERMS + 6]
        sizes = w[W_SIZES, :n]
        info[INFO_STATE + side] = 1  # None: what the stateless allocators (and the stealth stage) return
        if alloc == ALLOC_IMPACT:
            if not _impact(
                a, b, beta, budget, caps, mins, lot, inv, ci[CI_DISCRETE] != 0, ci[CI_SEARCH], sizes, w[W_ZERO, :n],
                power,
            ):  # fmt: skip
                return TOO_LARGE
        elif alloc == ALLOC_GREEDY:
            _greedy(a, budget, caps, sizes)
        elif alloc == ALLOC_FLAT:
            ones = w[W_ONES, :n]
            ones[:] = 1.0
            water_fill(ones, budget, caps, sizes, wi[I_FREE, :n], w[W_TMP, :n], w[W_SHARE, :n])
        elif alloc == ALLOC_PROGRESSION:
            _progression(n, cf[CF_FIRST], cf[CF_STEP], budget, caps, sizes)
        elif alloc != ALLOC_ENTROPY:
            return EXTERNAL
        else:  # the entropy allocator, compiled (fast/_entropy.py), the same variates from the same generator
            res = entropy_allocate_kernel(
                eparams, terms[0, :n], terms[1, :n], terms[3, :n], terms[2, :n], mid, budget, caps, mins,
                sv[SV_TOXICITY], sv[SV_VOL_RATIO], sv[SV_CASCADE], info[INFO_TARGET + side], bitgen, loops,
            )  # fmt: skip
            info[INFO_STATE + side] = 2
            info[INFO_TARGET + side] = res[1]
            if res[2] == EMPTY_BELOW_MIN:
                sizes[:] = 0.0
            else:
                sizes[:] = res[0]
        if own and stealth != STEALTH_OFF:
            if not _stealth(stealth, ci, cf, a, b, beta, budget, caps, mins, lot, inv, sizes, w, bitgen, loops, power):
                return TOO_LARGE
    return OK


@nb.njit(cache=True)
def finish_sides(ci, cf, ws, wi, out, bitgen, loops, power, info):  # type: ignore[no-untyped-def]
    """The last stage, side by side: the ladder's stealth stage on the allocated sizes and the exchange projection
    into ``out``. Returns ``(code, n_bid, n_ask, bid_coins, ask_coins)``."""
    lot = cf[CF_LOT]
    inv = cf[CF_INV]
    stealth = ci[CI_STEALTH]
    beta = cf[CF_BETA] if ci[CI_IMPACT] != IMPACT_NONE else 0.5
    own = ci[CI_OWN_STEALTH] != 0
    n_bid = n_ask = 0
    bid_coins = ask_coins = 0.0
    for side in range(2):
        if info[INFO_LIVE + side] == 0:
            continue
        w = ws[side]
        n = int(info[INFO_N + side])
        budget = info[INFO_BUDGET + side]
        caps = w[W_CAPS, :n]
        mins = w[W_MINS, :n]
        sizes = w[W_SIZES, :n]
        if not own and stealth != STEALTH_OFF and info[INFO_NO_STEALTH + side] == 0:
            rest = False
            for i in range(n):
                if sizes[i] != 0.0:
                    rest = True
            if rest:
                info[INFO_STATE + side] = 1  # apply_stealth's result carries no state
            if not _stealth(
                stealth, ci, cf, w[W_A, :n], w[W_B, :n], beta, budget, caps, mins, lot, inv, sizes, w, bitgen, loops,
                power,
            ):  # fmt: skip
                return TOO_LARGE, 0, 0, 0.0, 0.0
        count, total, ok = _project(n, sizes, caps, mins, budget, inv, w[W_PX, :n], w[W_DEPTH, :n], w, wi, side, out)
        if not ok:
            return TOO_LARGE, 0, 0, 0.0, 0.0
        if side == 0:
            n_bid, bid_coins = count, total
        else:
            n_ask, ask_coins = count, total
    return OK, n_bid, n_ask, bid_coins, ask_coins


@nb.njit(cache=True)
def build_sides(
    ci, cf, sv, depths, ticks, tables, prof_d, prof_logv, ws, wi, out, eparams, bitgen, loops, mloops, power
):  # type: ignore[no-untyped-def]
    """Both sides of one build (see the module docstring), the three stages in a row: returns ``(code,
    reservation_usd, n_bid, n_ask, bid_coins, ask_coins, state_bid, state_ask, target_bid, target_ask)``: the orders
    per side, their total size (coins), and per side whether the allocator's state is the one passed in (0), ``None``
    (1) or the entropy target (2, nats)."""
    info = np.zeros(INFO_SIZE)
    code = prepare_sides(ci, cf, sv, depths, ticks, tables, prof_d, prof_logv, ws, mloops, power, info)
    ref = info[INFO_REF]
    if code == OK:
        code = allocate_sides(ci, cf, sv, ws, wi, eparams, bitgen, loops, power, info)
    if code != OK:
        return code, ref, 0, 0, 0.0, 0.0, 0, 0, 0.0, 0.0
    code, n_bid, n_ask, bid_coins, ask_coins = finish_sides(ci, cf, ws, wi, out, bitgen, loops, power, info)
    if code != OK:
        return code, ref, 0, 0, 0.0, 0.0, 0, 0, 0.0, 0.0
    st_bid, st_ask = int(info[INFO_STATE]), int(info[INFO_STATE + 1])
    return OK, ref, n_bid, n_ask, bid_coins, ask_coins, st_bid, st_ask, info[INFO_TARGET], info[INFO_TARGET + 1]
