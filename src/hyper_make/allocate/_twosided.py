r"""The exact two-sided, inventory-aware allocator: both sides of the ladder in one concave problem.

Problem
-------
Sizes ``s_i >= 0`` (coins) on the bid levels ``B`` and the ask levels ``A``, with ``Σ_B s <= budget_bid``,
``Σ_A s <= budget_ask`` and ``s_i <= cap_i``, maximise::

    F(s) = Σ_i [a_i·s_i - b_i·s_i^(1+β) - c_i·s_i²]  -  k_B·T_B²  -  k_A·T_A²  -  κ·E[(q + ΔQ)²]

with ``T_B = Σ_B s``, ``T_A = Σ_A s`` (side totals, coins), ``κ = γ·σ²h/2`` (USD per coin², γ in 1/USD and σ²h
the price variance over the horizon in USD²/coin²), ``q`` the position (coins) and ``ΔQ = Σ_B F_i - Σ_A F_i`` the
signed filled size, ``F_i`` independent with ``E F_i = p_i·s_i`` and ``Var F_i = p_i(1-p_i)·s_i²``. So::

    E[(q + ΔQ)²] = m(s)² + Σ_i p_i(1-p_i)·s_i²,      m(s) = q + Σ_B p_i s_i - Σ_A p_i s_i   (expected position)

Units: ``a`` USD/coin (the linear edge), ``b`` USD/coin^(1+β) (impact), ``c`` USD/coin² (a per-coin penalty
linear in size), ``k`` USD/coin² (value per coin falling with the side's total), ``p`` in [0, 1].

The variance term is separable: it folds into ``c̃_i = c_i + κ·p_i(1-p_i)``. The mean term couples the two
sides through the scalar ``m`` only. ``F`` is concave (a sum of concave terms), the feasible set is a box cut
by two half-spaces, so the KKT conditions are necessary and sufficient.

KKT system
----------
Write ``-κ·m² = min_μ [μ²/(4κ) - μ·m]`` (attained at ``μ = 2κ·m``). For a fixed *coupling* ``μ`` (USD per coin of
expected position) the problem splits into the two sides, each separable but for its own total::

    bid:  max Σ_B [(a_i - μ p_i)·s_i - b_i s_i^(1+β) - c̃_i s_i²] - k_B·T_B²     s.t. T_B <= budget_bid, 0 <= s <= cap
    ask:  max Σ_A [(a_i + μ p_i)·s_i - b_i s_i^(1+β) - c̃_i s_i²] - k_A·T_A²     s.t. T_A <= budget_ask, 0 <= s <= cap

A long position (``q > 0``, so ``μ > 0``) makes every bid worth less and every ask worth more, by ``μ·p_i`` per
coin: the fill's effect on the expected position's risk. For one side with effective edges ``e_i`` the KKT
conditions say there is a side price ``x`` (USD per coin) such that every level rests its *response*::

    S_i(x) = argmax_{0 <= s <= cap_i} (e_i - x)·s - b_i s^(1+β) - c̃_i s²
           = min(cap_i, root of (1+β)·b_i·s^β + 2c̃_i·s = e_i - x)   if e_i > x, else 0

(closed forms for β = 0.5, 1 and 2 or when b or c̃ is 0; a safeguarded Newton otherwise), and the price is the
marginal cost of the side's total plus the budget's shadow price ``λ``::

    x = 2k·T(x) + λ,   T(x) = Σ S_i(x),   λ >= 0,   T(x) <= budget,   λ·(budget - T(x)) = 0.

``T`` is non-increasing in ``x`` and the target ``τ(x) = min(budget, x/(2k))`` is non-decreasing, so the side's
``x`` is the unique root of ``G(x) = T(x) - τ(x)`` on ``[0, max e_i]`` (one monotone scalar search; with k = 0,
``x = 0`` when ``T(0) <= budget`` and ``T(x) = budget`` otherwise). ``λ = x - 2k·T``. Linear levels
(``b = c̃ = 0``) make ``T`` jump by ``cap_i`` at ``x = e_i``: the root is then located among the sorted jumps
first, and a root inside a jump fixes ``x = e_j`` with the tied levels sharing what is left, equally.

The coupling: ``μ = 2κ·m(s(μ))``. By the envelope theorem each side's value ``V(μ)`` is convex in ``μ`` with
``V'(μ) = ∓P_side(μ)`` (``P_side = Σ p_i s_i``), so ``P_B`` falls and ``P_A`` rises with ``μ``, ``m(μ)`` is
non-increasing, and ``h(μ) = μ - 2κ·m(μ)`` is strictly increasing with ``h' = 1 + 2κ(D_B + D_A) >= 1``. Its root
lies in ``[2κ(q - P_A^max), 2κ(q + P_B^max)]`` and is found by a safeguarded Newton (bisection when Newton leaves
the bracket or stops halving ``|h|``). ``D = -dP_side/dμ`` comes from the implicit function theorem on the free
levels, with ``w_i = 1/f_i''(s_i)`` and ``W, W_p, W_pp = Σ w, Σ w·p, Σ w·p²``: ``D = W_pp`` when ``x = 0``,
``W_pp - 2k·W_p²/(1 + 2k·W)`` when the side total binds, ``W_pp - W_p²/W`` when the budget binds. Where ``m``
jumps (ties between linear levels of different ``p``) the two one-sided solutions are both optimal at the root
and their convex combination with ``μ = 2κ·m`` is taken. With κ = 0 the sides are independent and this is
exactly two :func:`hyper_make.allocate_concave` problems (plus the ``c``, ``k`` terms). Both searches stop at
the rounding of their variable (or of ``G``, ``h``); a last step puts the budget's rounding residual on the free
levels in proportion to ``w`` (a per-level Newton step, so their marginal values stay equal) and never leaves a
level at its cap an ulp below it. The kernel is compiled (numba): ~9 µs for 2×25 levels with the coupling
active, ~25 µs for the whole call with its input checks; ``benchmarks/bench_twosided.py`` compares it with a
cvxpy + Clarabel re-solve.

Discreteness
------------
On the exchange's lot grid with a minimum order per level ("0 or at least ``m_i`` lots"), :func:`solve_two_sided`
rounds the continuous optimum three ways (levels below their minimum to the nearer of 0 and the minimum, all
raised, all dropped; each trimmed to its budget) and improves each by a compiled local search on the *exact*
objective: raise or lower one level by one feasible step (a level at 0 opens at its minimum, one at its minimum
closes to 0), or move two levels at once (among the best few single moves of each side and direction: an
exchange within a side, a pair across sides that keeps the position), while that improves; the best of the
three is kept. The number of steps is bounded by construction (``8·n + 32``, each strictly improving; nothing
scales with the lot count or the budget). With κ = 0 and minimums of one lot the objective is laminar concave
(M♮-concave) and the best exchange is the best raise plus the best lowering, so the stopping rule is an
optimality certificate (``discrete_certified``); with the coupling or a minimum order the search is local (on
2,000 random instances of one or two levels a side it matched a brute-force enumeration every time), and
``discrete_gap_usd`` (continuous optimum minus the discrete one, an upper bound on the loss) says how much it
can have missed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._exact import np_sum
from .._validate import check_real
from ..errors import InvalidParameterError
from ..instrument import lots_to_coins
from ._base import Binding

#: Side return codes of the kernel (turned into :data:`Binding` names by the wrapper).
EMPTY_EDGE, EMPTY_BUDGET, MARGINAL, CAPS, BUDGET, SLACK = 0, 1, 2, 3, 4, 5
_BINDING: dict[int, Binding] = {
    EMPTY_EDGE: "empty",
    EMPTY_BUDGET: "empty",
    MARGINAL: "marginal",
    CAPS: "caps",
    BUDGET: "budget",
    SLACK: "marginal",
}
#: Regimes of a side's price ``x`` (for the outer derivative).
_R_ZERO, _R_TOTAL, _R_BUDGET, _R_TIE = 0, 1, 2, 3
_MAX_INNER = 200
_MAX_OUTER = 200
#: Pair moves of the lot search are tried among this many best single moves per side and direction.
_N_CAND = 4
_EPS = 2.220446049250313e-16


# ---- compiled kernel -------------------------------------------------------------------------------------
@nb.njit(cache=True)
def _resp(d: float, b: float, c: float, u: float, lin: bool, beta: float) -> float:
    """``S(x)`` with ``d = e - x``: the size whose marginal ``d - (1+β)b·s^β - 2c·s`` is 0, in ``[0, u]``."""
    if d <= 0.0:
        return 0.0
    if lin:
        return u
    if c == 0.0:
        if beta == 0.5:
            t = d / (1.5 * b)
            s = t * t
        elif beta == 1.0:
            s = d / (2.0 * b)
        else:
            s = (d / ((1.0 + beta) * b)) ** (1.0 / beta)
    elif b == 0.0:
        s = d / (2.0 * c)
    elif beta == 0.5:
        # 1.5b·y + 2c·y² = d with y = √s, the positive root in its cancellation-free form
        y = 2.0 * d / (1.5 * b + math.sqrt(2.25 * b * b + 8.0 * c * d))
        s = y * y
    elif beta == 1.0:
        s = d / (2.0 * (b + c))
    elif beta == 2.0:
        s = 2.0 * d / (2.0 * c + math.sqrt(4.0 * c * c + 12.0 * b * d))
    else:
        # φ(s) = (1+β)b·s^β + 2c·s - d, increasing; both terms positive, so the root is below each one's own root
        k1 = 1.0 + beta
        hi = min(d / (2.0 * c), (d / (k1 * b)) ** (1.0 / beta))
        lo = 0.0
        s = hi
        for _ in range(100):
            f = k1 * b * s**beta + 2.0 * c * s - d
            if f == 0.0:
                break
            if f > 0.0:
                hi = s
            else:
                lo = s
            df = k1 * beta * b * s ** (beta - 1.0) + 2.0 * c if s > 0.0 else np.inf
            sn = s - f / df
            if not (lo < sn < hi):
                sn = 0.5 * (lo + hi)
            if abs(sn - s) <= 4e-16 * sn or hi - lo <= 4e-16 * hi:
                s = sn
                break
            s = sn
    return s if s < u else u


@nb.njit(cache=True)
def _weight(s: float, b: float, c: float, u: float, lin: bool, beta: float) -> float:
    """``-dS/dx = 1/f''(s)`` for a free curved level (``0 < s < u``), else 0 (coins² per USD)."""
    if lin or s <= 0.0 or s >= u:
        return 0.0
    curv = 2.0 * c
    if b > 0.0:
        if beta == 1.0:
            curv += 2.0 * b
        elif beta == 0.5:
            curv += 0.75 * b / math.sqrt(s)
        else:
            curv += (1.0 + beta) * beta * b * s ** (beta - 1.0)
    return 1.0 / curv if curv > 0.0 else 0.0


@nb.njit(cache=True)
def _total(a, p, shift, b, c, u, lin, beta, x, strict):  # type: ignore[no-untyped-def]
    """``T(x) = Σ S_i(x)`` for edges ``a - shift·p``; linear levels tied at ``x`` count 0 (strict) or their cap."""
    t = 0.0
    for i in range(a.shape[0]):
        e = a[i] - shift * p[i]
        if lin[i] and e == x:
            if not strict:
                t += u[i]
        else:
            t += _resp(e - x, b[i], c[i], u[i], lin[i], beta)
    return t


@nb.njit(cache=True)
def _total_dt(a, p, shift, b, c, u, lin, beta, x):  # type: ignore[no-untyped-def]
    """``(T(x), Σ w_i)`` inside a piece without linear ties (the derivative ``T'(x) = -Σ w_i``)."""
    t = 0.0
    w = 0.0
    for i in range(a.shape[0]):
        e = a[i] - shift * p[i]
        s = _resp(e - x, b[i], c[i], u[i], lin[i], beta)
        t += s
        w += _weight(s, b[i], c[i], u[i], lin[i], beta)
    return t, w


@nb.njit(cache=True)
def _target(x: float, k: float, budget: float) -> float:
    """``τ(x) = min(budget, x/(2k))`` (``budget`` when k = 0)."""
    if k > 0.0:
        v = x / (2.0 * k)
        return v if v < budget else budget
    return budget


@nb.njit(cache=True)
def _info(info, code, x, lam, regime, w, wp, wpp, it, ok):  # type: ignore[no-untyped-def]
    """``info = [code, x, λ, regime, W, Wp, Wpp, iterations, ok]`` of a side solve; returns ``code``.

    ``x`` is the side price (every free level's marginal value, USD/coin), ``λ`` the budget's shadow price,
    ``W, Wp, Wpp = Σ w, Σ w·p, Σ w·p²`` over the free curved levels (for the coupling's Newton step).
    """
    info[0] = code
    info[1] = x
    info[2] = lam
    info[3] = regime
    info[4] = w
    info[5] = wp
    info[6] = wpp
    info[7] = it
    info[8] = 1.0 if ok else 0.0
    return code


@nb.njit(cache=True)
def side_solve(a, p, shift, b, c, u, lin, k, budget, beta, x0, out, info):  # type: ignore[no-untyped-def]
    """Solve one side for edges ``a - shift·p``; fill ``out`` and ``info`` (see :func:`_info`); return the code."""
    n = a.shape[0]
    amax = 0.0
    n_lin = 0
    for i in range(n):
        out[i] = 0.0
        if u[i] > 0.0:
            e = a[i] - shift * p[i]
            if e > amax:
                amax = e
            if lin[i] and e > 0.0:
                n_lin += 1
    if amax <= 0.0:
        return _info(info, EMPTY_EDGE, 0.0, 0.0, _R_ZERO, 0.0, 0.0, 0.0, 0, True)
    if budget <= 0.0:
        return _info(info, EMPTY_BUDGET, amax, amax, _R_ZERO, 0.0, 0.0, 0.0, 0, True)
    # ---- x = 0 (k = 0 and the marginal values run out before the budget) -----------------------------------
    if k == 0.0 and _total(a, p, shift, b, c, u, lin, beta, 0.0, True) <= budget:
        all_capped = True
        for i in range(n):
            e = a[i] - shift * p[i]
            s = _resp(e, b[i], c[i], u[i], lin[i], beta)
            out[i] = s
            if e > 0.0 and u[i] > 0.0 and s < u[i]:
                all_capped = False
        ww, wp, wpp = 0.0, 0.0, 0.0
        for i in range(n):
            w = _weight(out[i], b[i], c[i], u[i], lin[i], beta)
            ww += w
            wp += w * p[i]
            wpp += w * p[i] * p[i]
        return _info(info, (CAPS if all_capped else MARGINAL), 0.0, 0.0, _R_ZERO, ww, wp, wpp, 0, True)
    # ---- locate the root among the jumps of the linear levels ----------------------------------------------
    lo = 0.0
    hi = amax
    if n_lin > 0:
        z = np.empty(n_lin)
        j = 0
        for i in range(n):
            e = a[i] - shift * p[i]
            if lin[i] and e > 0.0 and u[i] > 0.0:
                z[j] = e
                j += 1
        for j in range(1, n_lin):  # insertion sort: few linear levels, and numba's np.sort costs seconds to compile
            v = z[j]
            i2 = j - 1
            while i2 >= 0 and z[i2] > v:
                z[i2 + 1] = z[i2]
                i2 -= 1
            z[i2 + 1] = v
        # first jump whose strict side is already at or below the target: the root is at or before it
        first = n_lin
        l_i, h_i = -1, n_lin  # G_strict(z[l_i]) > 0 >= G_strict(z[h_i])
        while h_i - l_i > 1:
            mid = (l_i + h_i) // 2
            zm = z[mid]
            if _total(a, p, shift, b, c, u, lin, beta, zm, True) - _target(zm, k, budget) <= 0.0:
                h_i = mid
            else:
                l_i = mid
        first = h_i
        if first < n_lin:
            zf = z[first]
            if _total(a, p, shift, b, c, u, lin, beta, zf, False) - _target(zf, k, budget) >= 0.0:
                # the root is inside the jump at zf: x = zf, the tied linear levels share what is left
                x = zf
                tau = _target(x, k, budget)
                left = tau
                n_tied = 0
                for i in range(n):
                    e = a[i] - shift * p[i]
                    if lin[i] and e == x and u[i] > 0.0:
                        n_tied += 1
                    else:
                        s = _resp(e - x, b[i], c[i], u[i], lin[i], beta)
                        out[i] = s
                        left -= s
                done = np.zeros(n, np.bool_)
                while n_tied > 0 and left > 0.0:
                    share = left / n_tied
                    capped_any = False
                    for i in range(n):
                        e = a[i] - shift * p[i]
                        if lin[i] and e == x and u[i] > 0.0 and not done[i] and u[i] <= share:
                            out[i] = u[i]
                            left -= u[i]
                            done[i] = True
                            n_tied -= 1
                            capped_any = True
                    if not capped_any:
                        for i in range(n):
                            e = a[i] - shift * p[i]
                            if lin[i] and e == x and u[i] > 0.0 and not done[i]:
                                out[i] = share
                        left = 0.0
                tot = 0.0
                for i in range(n):
                    tot += out[i]
                lam = x - 2.0 * k * tot
                if lam < 0.0:
                    lam = 0.0
                code = BUDGET if (k == 0.0 or x > 2.0 * k * budget) else SLACK
                return _info(info, code, x, lam, _R_TIE, 0.0, 0.0, 0.0, 0, True)
            hi = zf
        if first > 0:
            lo = z[first - 1]
    # ---- continuous root of G = T - τ in (lo, hi): safeguarded Newton, bisection fallback ------------------
    x = x0 if lo < x0 < hi else 0.5 * (lo + hi)
    ok = False
    it = 0
    g_prev = np.inf
    slow = 0
    for _ in range(_MAX_INNER):
        it += 1
        t, w = _total_dt(a, p, shift, b, c, u, lin, beta, x)
        tau = _target(x, k, budget)
        g = t - tau
        if abs(g) <= 4.0 * _EPS * (t + tau):
            ok = True
            break
        if g > 0.0:
            lo = x
        else:
            hi = x
        if hi - lo <= 4.0 * _EPS * (hi + amax):  # x is meaningful to the rounding of the edges e - x
            ok = True
            break
        # bisect when Newton does not at least halve |G| twice running (a kink between the iterates)
        slow = slow + 1 if abs(g) > 0.5 * abs(g_prev) else 0
        g_prev = g
        dg = -w - (1.0 / (2.0 * k) if (k > 0.0 and x < 2.0 * k * budget) else 0.0)
        newton = dg < 0.0 and slow < 2
        xn = x - g / dg if newton else 0.5 * (lo + hi)
        if not (lo < xn < hi):
            xn = 0.5 * (lo + hi)
            newton = False
        if slow >= 2:
            slow = 0
        if newton and abs(xn - x) <= 2.0 * _EPS * (abs(x) + amax):
            x = xn  # the Newton step is below the rounding of x: converged
            ok = True
            break
        x = xn
    ww, wp, wpp, tot = 0.0, 0.0, 0.0, 0.0
    for i in range(n):
        e = a[i] - shift * p[i]
        s = _resp(e - x, b[i], c[i], u[i], lin[i], beta)
        out[i] = s
        tot += s
    budget_binds = k == 0.0 or x >= 2.0 * k * budget
    if budget_binds:
        # exact budget: x is exact to its rounding, but where a level is steep in x (w large) that leaves T off
        # the budget by more than rounding; take the residual off the free levels in proportion to w (a Newton
        # step in x done per level), which keeps their marginal values equal to first order
        wt = 0.0
        for i in range(n):
            wt += _weight(out[i], b[i], c[i], u[i], lin[i], beta)
        excess = tot - budget
        if excess != 0.0 and wt > 0.0:
            for i in range(n):
                w = _weight(out[i], b[i], c[i], u[i], lin[i], beta)
                if w > 0.0:
                    v = out[i] - excess * w / wt
                    out[i] = min(max(v, 0.0), u[i])
        # a size below the rounding of the budget is dust of a level at its start (its x not quite reached): 0
        for i in range(n):
            if 0.0 < out[i] <= 4.0 * _EPS * budget and not lin[i]:
                out[i] = 0.0
    for i in range(n):
        w = _weight(out[i], b[i], c[i], u[i], lin[i], beta)
        ww += w
        wp += w * p[i]
        wpp += w * p[i] * p[i]
    if budget_binds:
        # on a flat piece of T (the last free level a steep power near its start, 1/β > 1) |G| meets its tolerance
        # short of the kink, and the trim may leave that level at 0 with its edge above x: the sizes are right, and
        # any x between the edges of the levels at 0 and the marginals of those that rest is a multiplier; take the
        # lowest such x at or above the root found
        x_lo, x_hi = x, np.inf
        for i in range(n):
            if u[i] > 0.0:
                e = a[i] - shift * p[i]
                s = out[i]
                if s <= 0.0:
                    x_lo = max(x_lo, e)
                else:
                    x_hi = min(x_hi, e if lin[i] else e - (1.0 + beta) * b[i] * s**beta - 2.0 * c[i] * s)
        if x < x_lo <= x_hi:
            x = x_lo
        lam = x - 2.0 * k * budget
        lam = lam if lam > 0.0 else 0.0
        return _info(info, BUDGET, x, lam, _R_BUDGET, ww, wp, wpp, it, ok)
    return _info(info, SLACK, x, 0.0, _R_TOTAL, ww, wp, wpp, it, ok)


@nb.njit(cache=True)
def _copy(dst, src):  # type: ignore[no-untyped-def]
    """``dst[:] = src`` as a loop (slice assignment costs numba far more compile time)."""
    for i in range(src.shape[0]):
        dst[i] = src[i]


@nb.njit(cache=True)
def _slope(regime: int, k: float, w: float, wp: float, wpp: float) -> float:
    """``D = -d P_side / d(shift)``, ``>= 0``: how fast the side's expected fill falls as its edges fall."""
    if regime == _R_ZERO:
        return wpp
    if regime == _R_TOTAL:
        return wpp - 2.0 * k * wp * wp / (1.0 + 2.0 * k * w)
    if regime == _R_BUDGET:
        return wpp - wp * wp / w if w > 0.0 else 0.0
    return 0.0


@nb.njit(cache=True)
def two_sided_solve(  # type: ignore[no-untyped-def]
    a_b, b_b, c_b, p_b, u_b, k_b, bud_b, a_a, b_a, c_a, p_a, u_a, k_a, bud_a, q, kappa, beta, out_b, out_a
):
    """Fill ``out_b``, ``out_a`` with the optimum; return the side codes and multipliers (see module docstring).

    Returns ``(code_b, code_a, μ, x_b, x_a, λ_b, λ_a, n_outer, n_inner, ok)``.
    """
    nb_ = a_b.shape[0]
    na_ = a_a.shape[0]
    cc_b = np.empty(nb_)
    cc_a = np.empty(na_)
    lin_b = np.empty(nb_, np.bool_)
    lin_a = np.empty(na_, np.bool_)
    pmax_b = 0.0
    pmax_a = 0.0
    for i in range(nb_):
        cc_b[i] = c_b[i] + kappa * p_b[i] * (1.0 - p_b[i])
        lin_b[i] = b_b[i] == 0.0 and cc_b[i] == 0.0
        pmax_b = max(pmax_b, p_b[i])
    for i in range(na_):
        cc_a[i] = c_a[i] + kappa * p_a[i] * (1.0 - p_a[i])
        lin_a[i] = b_a[i] == 0.0 and cc_a[i] == 0.0
        pmax_a = max(pmax_a, p_a[i])
    ib = np.zeros(9)  # side results (see _info) at the current μ and at the bracket's ends
    ia = np.zeros(9)
    if kappa == 0.0 or (pmax_b == 0.0 and pmax_a == 0.0):
        mu = 2.0 * kappa * q
        side_solve(a_b, p_b, mu, b_b, cc_b, u_b, lin_b, k_b, bud_b, beta, 0.0, out_b, ib)
        side_solve(a_a, p_a, -mu, b_a, cc_a, u_a, lin_a, k_a, bud_a, beta, 0.0, out_a, ia)
        return int(ib[0]), int(ia[0]), mu, ib[1], ia[1], ib[2], ia[2], 0, int(ib[7] + ia[7]), ib[8] * ia[8] > 0.0
    # ---- outer: h(μ) = μ - 2κ·m(μ), increasing; bracket from the largest possible expected fills ----------
    lo = 2.0 * kappa * (q - bud_a * pmax_a)
    hi = 2.0 * kappa * (q + bud_b * pmax_b)
    mu_scale = 2.0 * kappa * (abs(q) + bud_b * pmax_b + bud_a * pmax_a)  # μ's own scale, for its rounding
    mu = 2.0 * kappa * q
    if not (lo <= mu <= hi):
        mu = 0.5 * (lo + hi)
    s_lo_b = np.empty(nb_)
    s_lo_a = np.empty(na_)
    s_hi_b = np.empty(nb_)
    s_hi_a = np.empty(na_)
    i_lo_b = np.zeros(9)
    i_lo_a = np.zeros(9)
    i_hi_b = np.zeros(9)
    i_hi_a = np.zeros(9)
    have_lo = False
    have_hi = False
    m_lo = 0.0
    m_hi = 0.0
    xb, xa = 0.0, 0.0
    n_inner = 0
    ok = False
    converged = False
    n_outer = 0
    h_prev = np.inf
    slow = 0
    for _ in range(_MAX_OUTER):
        n_outer += 1
        side_solve(a_b, p_b, mu, b_b, cc_b, u_b, lin_b, k_b, bud_b, beta, xb, out_b, ib)
        side_solve(a_a, p_a, -mu, b_a, cc_a, u_a, lin_a, k_a, bud_a, beta, xa, out_a, ia)
        xb, xa = ib[1], ia[1]
        n_inner += int(ib[7] + ia[7])
        pb = 0.0
        for i in range(nb_):
            pb += p_b[i] * out_b[i]
        pa = 0.0
        for i in range(na_):
            pa += p_a[i] * out_a[i]
        m = q + pb - pa
        h = mu - 2.0 * kappa * m
        scale = abs(mu) + 2.0 * kappa * (abs(q) + pb + pa)
        if abs(h) <= 4.0 * _EPS * scale:
            converged = True
            ok = True
            break
        if h < 0.0:
            lo = mu
            have_lo = True
            m_lo = m
            _copy(s_lo_b, out_b)
            _copy(s_lo_a, out_a)
            _copy(i_lo_b, ib)
            _copy(i_lo_a, ia)
        else:
            hi = mu
            have_hi = True
            m_hi = m
            _copy(s_hi_b, out_b)
            _copy(s_hi_a, out_a)
            _copy(i_hi_b, ib)
            _copy(i_hi_a, ia)
        if hi - lo <= 4.0 * _EPS * (max(abs(lo), abs(hi)) + mu_scale):
            ok = True
            break
        slow = slow + 1 if abs(h) > 0.5 * abs(h_prev) else 0
        h_prev = h
        dh = 1.0 + 2.0 * kappa * (
            _slope(int(ib[3]), k_b, ib[4], ib[5], ib[6]) + _slope(int(ia[3]), k_a, ia[4], ia[5], ia[6])
        )
        newton = slow < 2
        mun = mu - h / dh if newton else 0.5 * (lo + hi)
        if not (lo < mun < hi):
            mun = 0.5 * (lo + hi)
            newton = False
        if slow >= 2:
            slow = 0
        if newton and abs(mun - mu) <= 2.0 * _EPS * (abs(mu) + mu_scale):
            converged = True  # the step is below the rounding of μ (the sizes are those of the last solve)
            ok = True
            break
        mu = mun
    inner_ok = ib[8] * ia[8] > 0.0
    if converged:
        return int(ib[0]), int(ia[0]), mu, ib[1], ia[1], ib[2], ia[2], n_outer, n_inner, inner_ok
    # ---- a jump of m at the root: both one-sided solutions are optimal there; mix them so that μ = 2κ·m -------
    if not have_lo:
        side_solve(a_b, p_b, lo, b_b, cc_b, u_b, lin_b, k_b, bud_b, beta, xb, s_lo_b, i_lo_b)
        side_solve(a_a, p_a, -lo, b_a, cc_a, u_a, lin_a, k_a, bud_a, beta, xa, s_lo_a, i_lo_a)
        m_lo = q
        for i in range(nb_):
            m_lo += p_b[i] * s_lo_b[i]
        for i in range(na_):
            m_lo -= p_a[i] * s_lo_a[i]
    if not have_hi:
        side_solve(a_b, p_b, hi, b_b, cc_b, u_b, lin_b, k_b, bud_b, beta, xb, s_hi_b, i_hi_b)
        side_solve(a_a, p_a, -hi, b_a, cc_a, u_a, lin_a, k_a, bud_a, beta, xa, s_hi_a, i_hi_a)
        m_hi = q
        for i in range(nb_):
            m_hi += p_b[i] * s_hi_b[i]
        for i in range(na_):
            m_hi -= p_a[i] * s_hi_a[i]
    mu = 0.5 * (lo + hi)
    th = 1.0
    if m_lo > m_hi:
        th = (mu / (2.0 * kappa) - m_hi) / (m_lo - m_hi)
        th = min(max(th, 0.0), 1.0)
    for i in range(nb_):
        out_b[i] = s_hi_b[i] + th * (s_lo_b[i] - s_hi_b[i])  # exact where both ends agree (caps, zeros)
    for i in range(na_):
        out_a[i] = s_hi_a[i] + th * (s_lo_a[i] - s_hi_a[i])
    code_b = int(i_lo_b[0] if th >= 0.5 else i_hi_b[0])
    code_a = int(i_lo_a[0] if th >= 0.5 else i_hi_a[0])
    xb = i_hi_b[1] + th * (i_lo_b[1] - i_hi_b[1])
    xa = i_hi_a[1] + th * (i_lo_a[1] - i_hi_a[1])
    lb = i_hi_b[2] + th * (i_lo_b[2] - i_hi_b[2])
    la = i_hi_a[2] + th * (i_lo_a[2] - i_hi_a[2])
    return code_b, code_a, mu, xb, xa, lb, la, n_outer, n_inner, ok and inner_ok


# ---- discrete: lots and the minimum order ---------------------------------------------------------------
@nb.njit(cache=True)
def _fval(a: float, b: float, c: float, s: float, q1: float) -> float:
    """``a·s - b·s^(1+β) - c·s²`` (USD)."""
    if s <= 0.0:
        return 0.0
    if b == 0.0:
        return a * s - c * s * s
    return a * s - b * (s * math.sqrt(s) if q1 == 1.5 else s**q1) - c * s * s


@nb.njit(cache=True)
def _step_up(k: int, m: int, hi: int) -> int:
    """Next feasible lot count above ``k`` (0 opens at the minimum ``m``), or -1."""
    nk = m if k == 0 else k + 1
    return nk if nk <= hi else -1


@nb.njit(cache=True)
def _step_down(k: int, m: int) -> int:
    """Next feasible lot count below ``k`` (the minimum closes to 0), or -1."""
    if k <= 0:
        return -1
    return 0 if k <= m else k - 1


@nb.njit(cache=True)
def discrete_search(a, b, c, p, sgn, side, k_side, bud_lots, lot, q, kappa, beta, mins, his, kk, max_steps):  # type: ignore[no-untyped-def]
    """Local search over lot counts ``kk`` (updated in place) on the exact objective; return ``(steps, certified)``.

    Arrays run over both sides (``side`` 0 = bid, 1 = ask; ``sgn`` +1/-1 the sign of a fill in the position);
    ``c`` already holds the folded variance. Moves: one level up or down by one feasible step, or two levels
    at once (among the ``_N_CAND`` best single moves of each side and direction: a move between levels of one
    side, and a pair across sides that keeps the expected position). Each accepted move strictly improves the
    objective. With κ = 0 and minimums of one lot the best exchange is the best raise plus the best lowering,
    so stopping is the M♮-concave optimality certificate.
    """
    n = a.shape[0]
    q1 = 1.0 + beta
    tot = np.zeros(2, np.int64)
    mpos = q
    for i in range(n):
        tot[side[i]] += kk[i]
        mpos += sgn[i] * p[i] * kk[i] * lot
    up = np.empty(n, np.int64)
    dn = np.empty(n, np.int64)
    gu = np.empty(n)
    gd = np.empty(n)
    gs = np.empty((n, 2))
    taken = np.zeros((n, 2), np.bool_)
    ci = np.empty(4 * _N_CAND, np.int64)
    ct = np.empty(4 * _N_CAND, np.int64)
    scale = 0.0
    for i in range(n):
        scale = max(scale, abs(a[i]) * lot)
    tol = 1e-12 * scale + 1e-300
    for steps in range(max_steps):
        # separable part of each single move (level value only); the coupled parts are added per move below
        for i in range(n):
            s0 = kk[i] * lot
            v0 = _fval(a[i], b[i], c[i], s0, q1)
            up[i] = _step_up(kk[i], mins[i], his[i])
            dn[i] = _step_down(kk[i], mins[i])
            gu[i] = _fval(a[i], b[i], c[i], up[i] * lot, q1) - v0 if up[i] >= 0 else -np.inf
            gd[i] = _fval(a[i], b[i], c[i], dn[i] * lot, q1) - v0 if dn[i] >= 0 else -np.inf
        best = tol
        bi, bj, bti, btj = -1, -1, 0, 0
        # single moves; gs holds each move's gain ignoring the budget (for ranking the pair candidates)
        for i in range(n):
            for t in range(2):
                nk = up[i] if t == 0 else dn[i]
                gs[i, t] = -np.inf
                if nk < 0:
                    continue
                dl = nk - kk[i]
                sd = side[i]
                nt = tot[sd] + dl
                ts, ns = tot[sd] * lot, nt * lot
                dm = sgn[i] * p[i] * dl * lot
                g0 = gu[i] if t == 0 else gd[i]
                g = g0 - k_side[sd] * (ns * ns - ts * ts) - kappa * ((mpos + dm) ** 2 - mpos * mpos)
                gs[i, t] = g
                if nt <= bud_lots[sd] and g > best:
                    best, bi, bj, bti, btj = g, i, -1, t, 0
        # pair moves among the best few single moves of each (side, direction): a move between two levels of
        # a side (the exchange that a binding budget needs) and pairs across sides that keep the position
        nc = 0
        for sd in range(2):
            for t in range(2):
                for _r in range(_N_CAND):
                    jb = -1
                    gb = -np.inf
                    for i in range(n):
                        if side[i] == sd and gs[i, t] > gb and not taken[i, t]:
                            gb = gs[i, t]
                            jb = i
                    if jb < 0:
                        break
                    taken[jb, t] = True
                    ci[nc] = jb
                    ct[nc] = t
                    nc += 1
        for x1 in range(nc):
            i, t1 = ci[x1], ct[x1]
            taken[i, t1] = False
            for x2 in range(x1 + 1, nc):
                j, t2 = ci[x2], ct[x2]
                if j == i:
                    continue
                d1 = (up[i] if t1 == 0 else dn[i]) - kk[i]
                d2 = (up[j] if t2 == 0 else dn[j]) - kk[j]
                nt0 = tot[0] + (d1 if side[i] == 0 else 0) + (d2 if side[j] == 0 else 0)
                nt1 = tot[1] + (d1 if side[i] == 1 else 0) + (d2 if side[j] == 1 else 0)
                if nt0 > bud_lots[0] or nt1 > bud_lots[1]:
                    continue
                g = (gu[i] if t1 == 0 else gd[i]) + (gu[j] if t2 == 0 else gd[j])
                t0s, n0s = tot[0] * lot, nt0 * lot
                t1s, n1s = tot[1] * lot, nt1 * lot
                dm = (sgn[i] * p[i] * d1 + sgn[j] * p[j] * d2) * lot
                g -= k_side[0] * (n0s * n0s - t0s * t0s) + k_side[1] * (n1s * n1s - t1s * t1s)
                g -= kappa * ((mpos + dm) ** 2 - mpos * mpos)
                if g > best:
                    best, bi, bj, bti, btj = g, i, j, t1, t2
        if bi < 0:
            return steps, True
        for idx, t in ((bi, bti), (bj, btj)):
            if idx < 0:
                continue
            nk = up[idx] if t == 0 else dn[idx]
            dl = nk - kk[idx]
            kk[idx] = nk
            tot[side[idx]] += dl
            mpos += sgn[idx] * p[idx] * dl * lot
    return max_steps, False


# ---- Python front end -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, eq=False)
class SideCurves:
    """Payout curves of one side's levels for :func:`allocate_two_sided` (all shape ``(n,)``, from the touch out).

    Attributes
    ----------
    a : linear edge per level (USD per coin), finite; what a coin resting there earns in expectation.
    b : impact coefficient (USD per coin^(1+β)), ``>= 0``: cost ``b·s^(1+β)``.
    c : size penalty linear in size per coin (USD per coin²), ``>= 0``: cost ``c·s²``. Default 0.
    p : expected filled fraction of the level's size over the horizon, in ``[0, 1]`` (``E F = p·s``,
        ``Var F = p(1-p)·s²``). Default 0 (no fill moves the position).
    k : side-total penalty (USD per coin²), ``>= 0``: cost ``k·(Σ s)²``. Default 0.

    Arrays are converted to C-contiguous float64 and checked at construction: every error names the field
    (``'bid.b[3]'``) and its range.
    """

    a: NDArray[np.float64]
    b: NDArray[np.float64]
    c: NDArray[np.float64] | None = None
    p: NDArray[np.float64] | None = None
    k: float = 0.0
    name: str = "side"

    def __post_init__(self) -> None:
        nm = self.name
        av = _as_float_array(f"{nm}.a", self.a)
        if av.ndim != 1:
            raise InvalidParameterError(f"'{nm}.a' must be 1-dimensional (one edge per level); got shape {av.shape}")
        if not np.isfinite(av).all():
            i = int(np.flatnonzero(~np.isfinite(av))[0])
            raise InvalidParameterError(f"'{nm}.a[{i}]' must be finite (linear edge, USD per coin); got {av[i]!r}")
        arrays = {"a": av}
        for field, unit, default, hi in (
            ("b", "impact coefficient, USD per coin^(1+beta)", None, np.inf),
            ("c", "size penalty, USD per coin^2", 0.0, np.inf),
            ("p", "filled fraction over the horizon", 0.0, 1.0),
        ):
            raw = getattr(self, field)
            v = (
                np.full(av.shape, default)
                if raw is None and default is not None
                else _as_float_array(f"{nm}.{field}", raw)
            )
            if v.shape != av.shape:
                if v.ndim == 0:
                    v = np.full(av.shape, float(v))
                else:
                    raise InvalidParameterError(
                        f"'{nm}.{field}' must have the shape of '{nm}.a' {av.shape}; got {v.shape}"
                    )
            ok = (v >= 0.0) & ((v <= hi) if hi < np.inf else (v < np.inf))  # NaN fails both
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                rng = "[0, 1]" if hi == 1.0 else "[0, inf)"
                raise InvalidParameterError(f"'{nm}.{field}[{i}]' must be in {rng} ({unit}); got {v[i]!r}")
            arrays[field] = v
        for field, v in arrays.items():
            object.__setattr__(self, field, v)
        object.__setattr__(self, "k", check_real(f"{nm}.k", self.k, lo=0.0, unit="USD per coin^2"))

    @property
    def n(self) -> int:
        """Number of levels."""
        return int(self.a.shape[0])


@dataclass(frozen=True, slots=True, eq=False)
class TwoSidedSolution:
    """The optimum of the two-sided problem (see the module docstring), with its multipliers and its split.

    Attributes
    ----------
    bid, ask : sizes per level (coins), ``>= 0``, ``<= caps``, each side's sum ``<= its budget``; on the lot
        grid and each level 0 or at least its minimum when lots were given.
    bid_shadow_price, ask_shadow_price : ``λ``, the objective's gain per extra coin of the side's budget
        (USD per coin); 0 when the budget does not bind (of the continuous problem).
    coupling : ``μ = γ·σ²h·m``, the marginal inventory cost of one more coin of expected position (USD per coin):
        a bid's edge is lowered and an ask's raised by ``μ·p_i``.
    bid_price, ask_price : ``x``, the common marginal value of every free level of the side (USD per coin),
        ``x = 2k·T + λ``.
    objective_usd : ``F(sizes)`` (USD), the constant ``-κ·q²`` included.
    edge_usd : ``Σ a·s``; ``impact_usd``: ``-Σ b·s^(1+β)``; ``size_penalty_usd``: ``-Σ c·s² - k_B T_B² - k_A T_A²``;
        ``inventory_risk_usd``: ``-κ·E[(q + ΔQ)²]`` (all USD; they sum to ``objective_usd``).
    expected_position_coins : ``q + E ΔQ``; ``position_sd_coins``: ``sd(ΔQ)`` (coins).
    bid_binding, ask_binding : what stops each side (``"budget"``, ``"caps"``, ``"marginal"``, ``"empty"``).
    status : ``"optimal"`` or ``"max_iter"`` (a search stopped at its iteration limit; ``message`` says which).
    message : one line for humans.
    n_iter : Newton steps of the coupling (outer) and of the sides (inner), ``(outer, inner)``.
    continuous_objective_usd : the continuous optimum (USD); equals ``objective_usd`` without lots.
    discrete_gap_usd : ``continuous_objective_usd - objective_usd`` (USD, ``>= 0``; 0 without lots).
    discrete_certified : the lot search stopped at its optimality certificate (exact when κ = 0 and no minimum
        order binds; a local optimum otherwise); ``None`` without lots.
    """

    bid: NDArray[np.float64]
    ask: NDArray[np.float64]
    bid_shadow_price: float
    ask_shadow_price: float
    coupling: float
    bid_price: float
    ask_price: float
    objective_usd: float
    edge_usd: float
    impact_usd: float
    size_penalty_usd: float
    inventory_risk_usd: float
    expected_position_coins: float
    position_sd_coins: float
    bid_binding: Binding
    ask_binding: Binding
    status: str
    message: str
    n_iter: tuple[int, int]
    continuous_objective_usd: float
    discrete_gap_usd: float = 0.0
    discrete_certified: bool | None = None

    def __repr__(self) -> str:
        return (
            f"TwoSidedSolution(status={self.status!r}, message={self.message!r}, "
            f"objective_usd={self.objective_usd:.6g}, "
            f"bid={np.array2string(self.bid, precision=6)}, ask={np.array2string(self.ask, precision=6)}, "
            f"coupling={self.coupling:.6g})"
        )


@nb.njit(cache=True)
def _accumulate(acc, a, b, c, p, sd, sg, s, beta):  # type: ignore[no-untyped-def]
    """Add the levels' edge, impact, size penalty, signed expected fill, fill variance and side totals to ``acc``."""
    q1 = 1.0 + beta
    for i in range(a.shape[0]):
        x = s[i]
        if x <= 0.0:
            continue
        acc[0] += a[i] * x
        if b[i] > 0.0:
            acc[1] -= b[i] * (x * math.sqrt(x) if q1 == 1.5 else x**q1)
        acc[2] -= c[i] * x * x
        acc[3] += sg[i] * p[i] * x
        acc[4] += p[i] * (1.0 - p[i]) * x * x
        acc[5 + sd[i]] += x


@nb.njit(cache=True)
def _finish(acc, k0, k1, q, kappa):  # type: ignore[no-untyped-def]
    m = q + acc[3]
    size = acc[2] - k0 * acc[5] * acc[5] - k1 * acc[6] * acc[6]
    return acc[0], acc[1], size, -kappa * (m * m + acc[4]), m, acc[4]


@nb.njit(cache=True)
def _split(a, b, c, p, k, side, sgn, s, q, kappa, beta):  # type: ignore[no-untyped-def]
    """``(edge, impact, size penalty, inventory risk, m, Var ΔQ)`` of sizes ``s`` over both sides, stacked
    (``side`` 0/1, ``sgn`` ±1), in USD and coins."""
    acc = np.zeros(7)
    _accumulate(acc, a, b, c, p, side, sgn, s, beta)
    return _finish(acc, k[0], k[1], q, kappa)


@nb.njit(cache=True)
def _split_sides(a_b, b_b, c_b, p_b, k_b, s_b, a_a, b_a, c_a, p_a, k_a, s_a, q, kappa, beta):  # type: ignore[no-untyped-def]
    """:func:`_split` on the two sides' own arrays (no stacking)."""
    acc = np.zeros(7)
    _accumulate(acc, a_b, b_b, c_b, p_b, np.zeros(a_b.shape[0], np.int64), np.ones(a_b.shape[0]), s_b, beta)
    _accumulate(acc, a_a, b_a, c_a, p_a, np.ones(a_a.shape[0], np.int64), -np.ones(a_a.shape[0]), s_a, beta)
    return _finish(acc, k_b, k_a, q, kappa)


def split_objective(
    bid: SideCurves,
    ask: SideCurves,
    s_bid: NDArray[np.float64],
    s_ask: NDArray[np.float64],
    *,
    q: float,
    kappa: float,
    beta: float,
) -> dict[str, float]:
    """``F`` split into edge, impact, size penalty and inventory risk (USD), with the position's mean and sd.

    ``κ = γ·σ²h/2`` (USD per coin²); ``objective_usd`` includes the constant ``-κ·q²``.
    """
    sb = np.ascontiguousarray(s_bid, dtype=np.float64)
    sa = np.ascontiguousarray(s_ask, dtype=np.float64)
    return _split_dict(
        _split_sides(bid.a, bid.b, bid.c, bid.p, bid.k, sb, ask.a, ask.b, ask.c, ask.p, ask.k, sa,
                     float(q), float(kappa), float(beta))
    )  # fmt: skip


def _split_dict(parts: tuple[float, float, float, float, float, float]) -> dict[str, float]:
    edge, imp, size, risk, m, var = parts
    return {
        "edge_usd": edge,
        "impact_usd": imp,
        "size_penalty_usd": size,
        "inventory_risk_usd": risk,
        "objective_usd": edge + imp + size + risk,
        "expected_position_coins": m,
        "position_sd_coins": math.sqrt(var),
    }


def _as_float_array(name: str, value: object) -> NDArray[np.float64]:
    """``value`` as a C-contiguous float64 array, or an error naming ``name`` (one compiled signature)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
        return arr if arr.ndim == 0 else np.ascontiguousarray(arr)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"'{name}' must be an array of real numbers; got {value!r}") from None


def _per_level(name: str, value: ArrayLike | None, n: int, what: str, *, allow_inf: bool) -> NDArray[np.float64]:
    """A per-level array of coins in ``[0, inf]`` (or ``[0, inf)``), broadcast from a scalar; ``None`` = inf."""
    if value is None:
        return np.full(n, np.inf)
    u = _as_float_array(name, value)
    if u.shape != (n,):
        if u.ndim != 0:
            raise InvalidParameterError(f"'{name}' must have one value per level, shape ({n},); got {u.shape}")
        u = np.full(n, float(u))
    ok = (u >= 0) if allow_inf else ((u >= 0) & (u < np.inf))  # NaN fails too
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        rng = "[0, inf]" if allow_inf else "[0, inf)"
        raise InvalidParameterError(f"'{name}[{i}]' must be in {rng} ({what}, coins); got {u[i]!r}")
    return u


def allocate_two_sided(
    bid: SideCurves,
    ask: SideCurves,
    *,
    budget_bid: float,
    budget_ask: float,
    caps_bid: ArrayLike | None = None,
    caps_ask: ArrayLike | None = None,
    q: float = 0.0,
    gamma: float = 0.0,
    sigma2_h: float = 0.0,
    beta: float = 0.5,
    lot_coins: float | None = None,
    min_bid_coins: ArrayLike = 0.0,
    min_ask_coins: ArrayLike = 0.0,
) -> TwoSidedSolution:
    """Exact maximiser of both sides' expected PnL minus the inventory risk ``γ/2·σ²h·E[(q + ΔQ)²]``.

    Parameters
    ----------
    bid, ask : :class:`SideCurves` of each side (``a``, ``b``, ``c``, ``p``, ``k``).
    budget_bid, budget_ask : most each side may rest in total (coins), ``>= 0`` and finite.
    caps_bid, caps_ask : per-level size caps (coins), in ``[0, inf]``; ``None`` = no caps.
    q : position before the fills (coins, long > 0), finite.
    gamma : risk aversion γ (1/USD), ``>= 0``; 0 makes the sides independent.
    sigma2_h : variance of the price over the horizon σ²h (USD² per coin²), ``>= 0``.
    beta : impact exponent β in ``(0, 2]``.
    lot_coins : exchange size increment (coins), ``> 0``; ``None`` = continuous sizes.
    min_bid_coins, min_ask_coins : smallest order per level (coins, scalar or per level), ``>= 0``; used with lots.

    Returns
    -------
    TwoSidedSolution
        Sizes, multipliers (``λ`` per side, the coupling ``μ``), objective and its split, bindings, status.

    Raises
    ------
    InvalidParameterError
        NaN/inf anywhere, negative ``b``/``c``/``k``, ``p`` outside ``[0, 1]``, mismatched shapes, β outside
        ``(0, 2]``, negative budgets/γ/σ²h/lot/minimums.

    Examples
    --------
    A long position leans the ladder toward the asks (the fills that reduce it):

    >>> bid = SideCurves([3.0, 2.0], [1.0, 1.0], p=[0.5, 0.2], name="bid")
    >>> ask = SideCurves([3.0, 2.0], [1.0, 1.0], p=[0.5, 0.2], name="ask")
    >>> flat = allocate_two_sided(bid, ask, budget_bid=10.0, budget_ask=10.0)
    >>> long = allocate_two_sided(bid, ask, budget_bid=10.0, budget_ask=10.0, q=5.0, gamma=0.1, sigma2_h=4.0)
    >>> flat.bid.round(3), flat.ask.round(3)
    (array([4.   , 1.778]), array([4.   , 1.778]))
    >>> long.bid.round(3), long.ask.round(3), round(long.coupling, 4)
    (array([1.969, 1.201]), array([4.647, 2.051]), 1.3964)
    """
    if not isinstance(bid, SideCurves) or not isinstance(ask, SideCurves):
        raise InvalidParameterError("'bid' and 'ask' must be SideCurves (a, b, c, p, k per side)")
    bb = check_real("budget_bid", budget_bid, lo=0.0, unit="coins")
    ba = check_real("budget_ask", budget_ask, lo=0.0, unit="coins")
    ub = _per_level("caps_bid", caps_bid, bid.n, "size cap per level", allow_inf=True)
    ua = _per_level("caps_ask", caps_ask, ask.n, "size cap per level", allow_inf=True)
    qq = check_real("q", q, unit="coins")
    g = check_real("gamma", gamma, lo=0.0, unit="1/USD")
    s2 = check_real("sigma2_h", sigma2_h, lo=0.0, unit="USD^2 per coin^2")
    be = check_real("beta", beta, lo=0.0, lo_open=True, hi=2.0)
    if bid.b.shape != bid.a.shape:  # pragma: no cover - SideCurves guarantees it
        raise InvalidParameterError("'bid.b' must have the shape of 'bid.a'")
    lot = None
    mins = (np.zeros(bid.n), np.zeros(ask.n))
    if lot_coins is not None:
        lot = check_real("lot_coins", lot_coins, lo=0.0, lo_open=True, unit="coins")
        mins = (
            _per_level("min_bid_coins", min_bid_coins, bid.n, "minimum order", allow_inf=False),
            _per_level("min_ask_coins", min_ask_coins, ask.n, "minimum order", allow_inf=False),
        )
    return solve_two_sided(bid, ask, bb, ba, ub, ua, qq, 0.5 * g * s2, be, lot, mins[0], mins[1])


def solve_two_sided(
    bid: SideCurves,
    ask: SideCurves,
    budget_bid: float,
    budget_ask: float,
    caps_bid: NDArray[np.float64],
    caps_ask: NDArray[np.float64],
    q: float,
    kappa: float,
    beta: float,
    lot_coins: float | None = None,
    min_bid_coins: NDArray[np.float64] | None = None,
    min_ask_coins: NDArray[np.float64] | None = None,
) -> TwoSidedSolution:
    """:func:`allocate_two_sided` on validated inputs with ``κ = γ·σ²h/2`` (USD per coin²) given directly."""
    assert bid.c is not None and bid.p is not None and ask.c is not None and ask.p is not None
    sb = np.empty(bid.n)
    sa = np.empty(ask.n)
    code_b, code_a, mu, xb, xa, lb, la, n_out, n_in, ok = two_sided_solve(
        bid.a, bid.b, bid.c, bid.p, caps_bid, bid.k, float(budget_bid),
        ask.a, ask.b, ask.c, ask.p, caps_ask, ask.k, float(budget_ask),
        float(q), float(kappa), float(beta), sb, sa,
    )  # fmt: skip
    # last-ulp guard: never over a budget or a cap, whatever the rounding of the kernel's sums and mixes
    np.minimum(sb, caps_bid, out=sb)
    np.minimum(sa, caps_ask, out=sa)
    _trim_to_budget(sb, caps_bid, budget_bid)
    _trim_to_budget(sa, caps_ask, budget_ask)

    def parts(s_b: NDArray[np.float64], s_a: NDArray[np.float64]) -> dict[str, float]:
        return _split_dict(
            _split_sides(bid.a, bid.b, bid.c, bid.p, bid.k, s_b, ask.a, ask.b, ask.c, ask.p, ask.k, s_a,
                         float(q), float(kappa), float(beta))
        )  # fmt: skip

    cont = parts(sb, sa)
    status = "optimal" if ok else "max_iter"
    bind_b, bind_a = _BINDING[int(code_b)], _BINDING[int(code_a)]
    msg = (
        f"bid {_side_msg(int(code_b), sb, lb)}; ask {_side_msg(int(code_a), sa, la)}; "
        f"expected position {cont['expected_position_coins']:.6g} coins, coupling {mu:.6g} USD/coin"
    )
    if not ok:
        msg = f"a search stopped at its iteration limit ({n_out} outer, {n_in} inner steps); " + msg
    gap = 0.0
    certified: bool | None = None
    out = cont
    if lot_coins is not None:
        mb = np.zeros(bid.n) if min_bid_coins is None else min_bid_coins
        ma = np.zeros(ask.n) if min_ask_coins is None else min_ask_coins
        sb, sa, certified = _discrete(bid, ask, sb, sa, budget_bid, budget_ask, caps_bid, caps_ask, q, kappa, beta,
                                      lot_coins, mb, ma)  # fmt: skip
        out = parts(sb, sa)
        gap = max(cont["objective_usd"] - out["objective_usd"], 0.0)
        msg += f"; on the lot grid {gap:.3g} USD below the continuous optimum"
        if not certified:
            msg += " (local search)"
    return TwoSidedSolution(
        bid=sb,
        ask=sa,
        bid_shadow_price=float(lb),
        ask_shadow_price=float(la),
        coupling=float(mu),
        bid_price=float(xb),
        ask_price=float(xa),
        objective_usd=out["objective_usd"],
        edge_usd=out["edge_usd"],
        impact_usd=out["impact_usd"],
        size_penalty_usd=out["size_penalty_usd"],
        inventory_risk_usd=out["inventory_risk_usd"],
        expected_position_coins=out["expected_position_coins"],
        position_sd_coins=out["position_sd_coins"],
        bid_binding=bind_b,
        ask_binding=bind_a,
        status=status,
        message=msg,
        n_iter=(int(n_out), int(n_in)),
        continuous_objective_usd=cont["objective_usd"],
        discrete_gap_usd=gap,
        discrete_certified=certified,
    )


def _trim_to_budget(s: NDArray[np.float64], caps: NDArray[np.float64], budget: float) -> None:
    """Take a rounding excess of ``Σ s`` over ``budget`` off the largest level below its cap (in place).

    Levels at their cap keep it exactly (scaling every level would move them an ulp off, and off the KKT
    conditions); a scale-down is the fallback when no free level can absorb the excess.
    """
    for _ in range(8):
        tot = float(s.sum())
        if tot <= budget:
            return
        excess = tot - budget
        free = np.flatnonzero((s < caps) & (s > 2.0 * excess))
        if free.size == 0:
            break
        j = free[np.argmax(s[free])]
        s[j] = max(s[j] - excess * (1.0 + 4.0 * _EPS) - _EPS * tot, 0.0)
    while float(s.sum()) > budget:
        s *= budget / float(s.sum()) * (1.0 - 4e-16)


def _side_msg(code: int, s: NDArray[np.float64], lam: float) -> str:
    return _side_msg_total(code, float(s.sum()), lam)


def _side_msg_total(code: int, total: float, lam: float) -> str:
    """One side's stopping reason in words (``total`` its size, coins; ``lam`` its shadow price, USD/coin)."""
    if code == EMPTY_EDGE:
        return "empty: no level has a positive edge (inventory term included)"
    if code == EMPTY_BUDGET:
        return "empty: budget is zero"
    if code == BUDGET:
        return f"budget binds (shadow price {lam:.6g} USD/coin)"
    if code == CAPS:
        return "every level with a positive edge is at its cap"
    return f"marginal value runs out at {total:.6g} coins"


def _discrete(
    bid: SideCurves,
    ask: SideCurves,
    sb: NDArray[np.float64],
    sa: NDArray[np.float64],
    budget_bid: float,
    budget_ask: float,
    caps_bid: NDArray[np.float64],
    caps_ask: NDArray[np.float64],
    q: float,
    kappa: float,
    beta: float,
    lot: float,
    min_bid: NDArray[np.float64],
    min_ask: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], bool]:
    """Lot-grid sizes (each level 0 or at least its minimum) by a bounded local search from the rounded optimum."""
    assert bid.c is not None and bid.p is not None and ask.c is not None and ask.p is not None
    n = bid.n + ask.n
    kk = np.empty(n, np.int64)
    certified = discrete_solve(
        bid.a, bid.b, bid.c, bid.p, bid.k, sb, caps_bid, min_bid, float(budget_bid),
        ask.a, ask.b, ask.c, ask.p, ask.k, sa, caps_ask, min_ask, float(budget_ask),
        float(lot), float(q), float(kappa), float(beta), kk,
    )  # fmt: skip
    s = lots_to_coins(kk, lot)
    return s[: bid.n], s[bid.n :], bool(certified)


@nb.njit(cache=True)
def _to_lots(x: float, lot: float) -> float:
    """``x / lot`` rounded to 1e-6 lot (the exchange projection's rule), so that 0.3/0.1 floors to 3, not 2."""
    return round(x / lot, 6)


@nb.njit(cache=True)
def _fit_budget(kk, m, side, bud):  # type: ignore[no-untyped-def]
    """Lower the largest levels of a side over its budget (by the whole excess at once, to their minimum or 0)."""
    n = kk.shape[0]
    for sd in range(2):
        for _ in range(n):
            tot = 0
            j = -1
            for i in range(n):
                if side[i] == sd:
                    tot += kk[i]
                    if j < 0 or kk[i] > kk[j]:
                        j = i
            excess = tot - bud[sd]
            if excess <= 0 or j < 0:
                break
            nk = kk[j] - excess
            kk[j] = nk if nk >= m[j] else 0


@nb.njit(cache=True)
def discrete_solve(  # type: ignore[no-untyped-def]
    a_b,
    b_b,
    c_b,
    p_b,
    k_b,
    s_b,
    u_b,
    min_b,
    bud_b,
    a_a,
    b_a,
    c_a,
    p_a,
    k_a,
    s_a,
    u_a,
    min_a,
    bud_a,
    lot,
    q,
    kappa,
    beta,
    out,
):
    """Lot counts of both sides (bid first) into ``out``, each level 0 or at least its minimum; return whether
    the search stopped at an optimality certificate (κ = 0 and minimums of one lot: exact).

    The best of three bounded local searches (:func:`discrete_search`), from the continuous optimum ``s``
    (coins): the nearest lot count with levels below their minimum rounded to the nearer of {0, minimum}; all of
    those raised to the minimum; all of them dropped. ``c`` is the per-level size penalty without the fill
    variance (folded in here). Caps and budgets floor to whole lots, minimums ceil (at least one lot); a level
    that cannot hold its minimum rests 0, while one with a non-positive edge may still pay through the inventory
    term (the reducing side), so the search decides.
    """
    nb_ = a_b.shape[0]
    n = nb_ + a_a.shape[0]
    a = np.empty(n)
    b = np.empty(n)
    c = np.empty(n)
    p = np.empty(n)
    sgn = np.empty(n)
    side = np.empty(n, np.int64)
    x = np.empty(n)
    m = np.empty(n, np.int64)
    hi = np.empty(n, np.int64)
    bud = np.empty(2, np.int64)
    bud[0] = math.floor(_to_lots(bud_b, lot))
    bud[1] = math.floor(_to_lots(bud_a, lot))
    k = np.empty(2)
    k[0] = k_b
    k[1] = k_a
    single_lot = True
    for i in range(n):
        j = i if i < nb_ else i - nb_
        bid = i < nb_
        a[i] = a_b[j] if bid else a_a[j]
        b[i] = b_b[j] if bid else b_a[j]
        c[i] = c_b[j] if bid else c_a[j]
        p[i] = p_b[j] if bid else p_a[j]
        x[i] = (s_b[j] if bid else s_a[j]) / lot
        sgn[i] = 1.0 if bid else -1.0
        side[i] = 0 if bid else 1
        cap_c = min(u_b[j] if bid else u_a[j], bud_b if bid else bud_a)
        cap = min(math.floor(_to_lots(cap_c, lot)), bud[side[i]])
        m[i] = max(math.ceil(_to_lots(min_b[j] if bid else min_a[j], lot)), 1)
        single_lot = single_lot and m[i] <= 1
        hi[i] = cap if m[i] <= cap else 0
    cf = np.empty(n)  # the variance folded into the per-level quadratic (the search's objective)
    for i in range(n):
        cf[i] = c[i] + kappa * p[i] * (1.0 - p[i])
    best_val = -np.inf
    best_cert = False
    kk = np.empty(n, np.int64)
    prev = np.full((3, n), -1, np.int64)
    sz = np.empty(n)
    for st in range(3):
        for i in range(n):
            near = min(math.floor(x[i] + 0.5), hi[i])
            if near < m[i] and x[i] > 0.0:
                if st == 0:
                    near = m[i] if x[i] >= 0.5 * m[i] else 0
                elif st == 1:
                    near = m[i]
                else:
                    near = 0
            kk[i] = min(near, hi[i])
        _fit_budget(kk, m, side, bud)
        dup = False
        for r in range(st):
            same = True
            for i in range(n):
                if prev[r, i] != kk[i]:
                    same = False
                    break
            dup = dup or same
        for i in range(n):
            prev[st, i] = kk[i]
        if dup:
            continue
        _, cert = discrete_search(a, b, cf, p, sgn, side, k, bud, lot, q, kappa, beta, m, hi, kk, 8 * n + 32)
        for i in range(n):
            sz[i] = kk[i] * lot
        parts = _split(a, b, c, p, k, side, sgn, sz, q, kappa, beta)
        val = parts[0] + parts[1] + parts[2] + parts[3]
        if val > best_val:
            best_val = val
            best_cert = cert and kappa == 0.0 and single_lot
            for i in range(n):
                out[i] = kk[i]
    return best_cert


@nb.njit(cache=True)
def _trim_kernel(s, caps, budget):  # type: ignore[no-untyped-def]
    """:func:`_trim_to_budget` compiled (its sums NumPy's, so the sizes are the wrapper's bit for bit)."""
    n = s.shape[0]
    for _ in range(8):
        tot = np_sum(s)
        if tot <= budget:
            return
        excess = tot - budget
        j = -1
        for i in range(n):
            if s[i] < caps[i] and s[i] > 2.0 * excess and (j < 0 or s[i] > s[j]):
                j = i
        if j < 0:
            break
        v = s[j] - excess * (1.0 + 4.0 * _EPS) - _EPS * tot
        s[j] = v if v > 0.0 else 0.0
    while np_sum(s) > budget:
        f = budget / np_sum(s) * (1.0 - 4e-16)
        for i in range(n):
            s[i] *= f


#: Slots of :func:`solve_full`'s result vector.
(R_CODE_B, R_CODE_A, R_MU, R_XB, R_XA, R_LB, R_LA, R_N_OUT, R_N_IN, R_OK, R_CERT, R_EDGE, R_IMPACT, R_SIZE, R_RISK,
 R_M, R_VAR, R_OBJ, R_CONT_OBJ, R_CONT_M, R_CONT_TB, R_CONT_TA, R_GAP) = range(23)  # fmt: skip
N_RESULT = 23
#: Slots the learned allocator's kernel (:func:`hyper_make.learn._kernels.learned_solve`) adds after those: each
#: side's total penalty k, each side's expected PnL under its published curves, the sampling cost.
L_K_B, L_K_A, L_PNL_B, L_PNL_A, L_SAMPLING_COST = range(N_RESULT, N_RESULT + 5)
N_LEARNED = N_RESULT + 5


@nb.njit(cache=True)
def solve_full(  # type: ignore[no-untyped-def]
    a_b, b_b, c_b, p_b, k_b, u_b, bud_b, min_b, a_a, b_a, c_a, p_a, k_a, u_a, bud_a, min_a,
    q, kappa, beta, lot, inv, out_b, out_a, res,
):  # fmt: skip
    """:func:`solve_two_sided` compiled end to end on validated arrays: the continuous optimum, the last-ulp caps
    and budget guard, its split, and with ``lot > 0`` the lot search (counts to coins as
    :func:`~hyper_make.instrument.lots_to_coins`: ``k / inv`` when ``inv`` = 10^d > 0, else ``k·lot``) and the
    final split. Sizes into ``out_b``, ``out_a`` (coins); the scalars into ``res`` (slots ``R_*``, USD, coins,
    USD/coin)."""
    nb_, na_ = a_b.shape[0], a_a.shape[0]
    cb, ca, mu, xb, xa, lb, la, n_out, n_in, ok = two_sided_solve(
        a_b, b_b, c_b, p_b, u_b, k_b, bud_b, a_a, b_a, c_a, p_a, u_a, k_a, bud_a, q, kappa, beta, out_b, out_a
    )
    for i in range(nb_):
        out_b[i] = out_b[i] if out_b[i] <= u_b[i] else u_b[i]
    for i in range(na_):
        out_a[i] = out_a[i] if out_a[i] <= u_a[i] else u_a[i]
    _trim_kernel(out_b, u_b, bud_b)
    _trim_kernel(out_a, u_a, bud_a)
    edge, imp, size, risk, m, var = _split_sides(a_b, b_b, c_b, p_b, k_b, out_b, a_a, b_a, c_a, p_a, k_a, out_a,
                                                 q, kappa, beta)  # fmt: skip
    res[R_CODE_B], res[R_CODE_A], res[R_MU], res[R_XB], res[R_XA], res[R_LB], res[R_LA] = cb, ca, mu, xb, xa, lb, la
    res[R_N_OUT], res[R_N_IN], res[R_OK] = n_out, n_in, 1.0 if ok else 0.0
    cont = edge + imp + size + risk
    res[R_CONT_OBJ], res[R_CONT_M] = cont, m
    res[R_CONT_TB], res[R_CONT_TA] = np_sum(out_b), np_sum(out_a)
    res[R_CERT], res[R_GAP] = -1.0, 0.0
    if lot > 0.0:
        kk = np.empty(nb_ + na_, np.int64)
        cert = discrete_solve(a_b, b_b, c_b, p_b, k_b, out_b, u_b, min_b, bud_b,
                              a_a, b_a, c_a, p_a, k_a, out_a, u_a, min_a, bud_a, lot, q, kappa, beta, kk)  # fmt: skip
        for i in range(nb_ + na_):
            v = float(kk[i]) / inv if inv > 0 else float(kk[i]) * lot
            if i < nb_:
                out_b[i] = v
            else:
                out_a[i - nb_] = v
        edge, imp, size, risk, m, var = _split_sides(a_b, b_b, c_b, p_b, k_b, out_b, a_a, b_a, c_a, p_a, k_a,
                                                     out_a, q, kappa, beta)  # fmt: skip
        res[R_CERT] = 1.0 if cert else 0.0
        obj = edge + imp + size + risk
        gap = cont - obj
        res[R_GAP] = gap if gap > 0.0 else 0.0
    res[R_EDGE], res[R_IMPACT], res[R_SIZE], res[R_RISK], res[R_M], res[R_VAR] = edge, imp, size, risk, m, var
    res[R_OBJ] = edge + imp + size + risk


__all__ = ["SideCurves", "TwoSidedSolution", "allocate_two_sided", "solve_two_sided", "split_objective"]
