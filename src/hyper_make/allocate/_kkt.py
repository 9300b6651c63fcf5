"""The numba kernel of the exact convex allocator (see :mod:`hyper_make.allocate._convex` for the maths).

One compiled function on float64 arrays: candidate levels, the λ = 0 test, the sorted breakpoints, a binary
search for the piece of ``S(λ) = Σ s_i(λ)`` that crosses the budget, and the piece's root (closed form for
β = 0.5 and β = 1 when its sums are representable, safeguarded Newton otherwise). Scalar loops, no allocation
beyond the event arrays: about a microsecond for 25 levels, where the same steps in NumPy cost ~40 µs of
per-call overhead.

Numerics, for edges and impact coefficients spanning the whole float range (a calibrated ladder's deep levels
have fill probabilities of 1e-300): a level's size is computed as ``((a - λ) / ((1+β)·b))^(1/β)``, a division
whose result is a size (bounded by the budget), never through ``1/((1+β)·b)`` (which overflows for tiny ``b``);
sizes are capped at the budget, so no term of a sum is infinite; a level whose marginal value moves by less than
one part in 2^52 over its whole feasible range is numerically linear and treated as such; the closed forms are
solved in units where every term is a size, and kept only if the sizes they give meet the budget to rounding;
otherwise (and for other β) the piece is solved by Newton on the p-norm of the free levels with a
geometric-bisection safeguard (at most ``_MAX_NEWTON`` iterations, then ``converged = False``).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

#: Return codes of :func:`kkt_solve` (the Python wrapper turns them into ``binding``/``status``).
EMPTY_EDGE, EMPTY_BUDGET, MARGINAL, CAPS, BUDGET, FAILED = 0, 1, 2, 3, 4, 5
_MAX_NEWTON = 100
#: A level whose marginal changes by at most this fraction of its edge over its feasible range is linear.
_LINEAR_RTOL = 2.0**-52


@nb.njit(cache=True, inline="always")
def _size_at(g: float, kb: float, lo: float, u: float, lin: bool, p: float, beta: float) -> float:
    """Size at a gap ``g = a - λ`` (USD per coin): linear levels at ``u`` iff ``g > 0`` (else ``lo``), curved
    ``clip((g/kb)^(1/β), lo, u)``."""
    if g <= 0.0:
        return lo
    if lin:
        return u
    x = g / kb
    if beta == 0.5:
        x = x * x
    elif beta != 1.0:
        # for β > 1, g/kb = size^β may overflow while the size does not: take the power of each factor instead
        x = x**p if x < np.inf else g**p / kb**p
    if x < lo:
        return lo
    return x if x < u else u


@nb.njit(cache=True, inline="always")
def _size(a: float, kb: float, lo: float, u: float, lin: bool, lam: float, p: float, beta: float) -> float:
    """``s_i(λ)``: linear levels at ``u`` iff ``a > λ`` (else ``lo``); curved ``clip(((a - λ)/kb)^(1/β), lo, u)``."""
    return _size_at(a - lam, kb, lo, u, lin, p, beta)


@nb.njit(cache=True, inline="always")
def _tied(a: float, capbp: float, lin: bool, lam: float) -> bool:
    """Whether a level's size jumps at ``λ`` in floating point: a linear level at its edge, or a curved level at
    its cap breakpoint (whose float value may sit a few ulps from where the evaluated size reaches the cap)."""
    return a == lam if lin else capbp == lam


@nb.njit(cache=True)
def _total(a, kb, lo, u, lin, capbp, lam, p, beta, strict):  # type: ignore[no-untyped-def]
    """``S(λ)``; levels tied at ``λ`` count at their cap, or with ``strict`` at their lower value (``lo`` for a
    linear level, the evaluated size for a curved one)."""
    s = 0.0
    for i in range(a.shape[0]):
        if not strict and _tied(a[i], capbp[i], lin[i], lam):
            s += u[i]
        elif lin[i] and a[i] == lam:
            s += lo[i]
        else:
            s += _size(a[i], kb[i], lo[i], u[i], lin[i], lam, p, beta)
    return s


@nb.njit(cache=True, inline="always")
def _is_free(start: float, capbp: float, lin: bool, lam_lo: float, lam_hi: float) -> bool:
    """Whether a curved level is strictly between its bounds on the piece ``(λ_lo, λ_hi)``.

    No breakpoint lies strictly inside a piece, so comparing with its ends is exact; a midpoint is not (two
    breakpoints one ulp apart have no float between them).
    """
    return (not lin) and start >= lam_hi and capbp <= lam_lo


@nb.njit(cache=True, inline="always")
def _at_cap(a: float, capbp: float, lin: bool, lam_hi: float) -> bool:
    """Whether a level rests its cap all over a piece whose upper end is ``λ_hi``."""
    return a >= lam_hi if lin else capbp >= lam_hi


@nb.njit(cache=True)
def _pnorm_phi(a, kb, lin, start, capbp, lam_lo, lam_hi, t, p, beta, target):  # type: ignore[no-untyped-def]
    """``(φ(t), φ'(t))`` with ``φ(t) = ‖x(t)‖_p - target`` over the free levels, ``x_i = (a_i - λ_lo - t)/kb_i``.

    Normalised by ``xmax`` (no overflow of ``x^p``); the derivative ``-xmax·sp^(β-1)·Σ y^p/(d - t)`` avoids
    ``1/kb`` (which may overflow).
    """
    m = a.shape[0]
    xmax = 0.0
    for j in range(m):
        if _is_free(start[j], capbp[j], lin[j], lam_lo, lam_hi):
            x = (a[j] - lam_lo - t) / kb[j]
            if x > xmax:
                xmax = x
    if xmax <= 0.0:
        return -target, 0.0
    sp = 0.0  # Σ (x/xmax)^p
    sq = 0.0  # Σ (x/xmax)^p / (d - t)
    for j in range(m):
        if _is_free(start[j], capbp[j], lin[j], lam_lo, lam_hi):
            dt = a[j] - lam_lo - t
            if dt > 0.0:
                yp = ((dt / kb[j]) / xmax) ** p
                sp += yp
                sq += yp / dt
    return xmax * sp**beta - target, -xmax * sp ** (beta - 1.0) * sq


@nb.njit(cache=True)
def _piece_root(a, kb, lin, start, capbp, lam_lo, lam_hi, rest, p, beta):  # type: ignore[no-untyped-def]
    """``t`` in ``[0, width]`` with ``Σ_free ((a_i - λ_lo - t)/kb_i)^(1/β) = rest``; returns (t, n_iter, ok)."""
    m = a.shape[0]
    width = lam_hi - lam_lo
    # ---- closed forms, in units where every term is a size (or its square root) ------------------------------
    # with κ = min kb and τ = t/κ, level i contributes (D_i - ρ_i·τ)^(1/β), D_i = (a_i - λ_lo)/kb_i (a size^β)
    # and ρ_i = κ/kb_i in (0, 1]: nothing overflows or vanishes, whatever the scale of a and b
    if beta == 0.5 or beta == 1.0:
        kmin = np.inf
        for j in range(m):
            if _is_free(start[j], capbp[j], lin[j], lam_lo, lam_hi):
                kmin = min(kmin, kb[j])
        w = 0.0
        bd = 0.0
        q = 0.0
        for j in range(m):
            if _is_free(start[j], capbp[j], lin[j], lam_lo, lam_hi):
                d = (a[j] - lam_lo) / kb[j]
                rho = kmin / kb[j]
                if beta == 0.5:
                    w += rho * rho
                    bd += rho * d
                    q += d * d
                else:
                    w += rho
                    bd += d
        tau = 0.0
        if beta == 1.0:
            tau = (bd - rest) / w
        else:
            c = q - rest  # W·τ² - 2B·τ + (Q - rest) = 0, smallest root, cancellation-free
            if c > 0.0:
                disc = bd * bd - w * c
                tau = c / (bd + math.sqrt(disc if disc > 0.0 else 0.0))
        # Newton steps on the sizes evaluated directly (the closed form loses digits when the discriminant is
        # small, i.e. the root close to the parabola's vertex); accepted if the residual is at rounding level
        for it in range(3):
            t = min(max(tau * kmin, 0.0), width)
            tau = t / kmin
            f = -rest
            df = 0.0
            for j in range(m):
                if _is_free(start[j], capbp[j], lin[j], lam_lo, lam_hi):
                    x = ((a[j] - lam_lo) - t) / kb[j]
                    if x > 0.0:
                        rho = kmin / kb[j]
                        if beta == 0.5:
                            f += x * x
                            df -= 2.0 * x * rho
                        else:
                            f += x
                            df -= rho
            if abs(f) <= 1e-13 * rest:
                return t, 0, True
            if it < 2 and df < 0.0 and math.isfinite(f) and math.isfinite(df):
                tau -= f / df
    # ---- Newton on φ(t) = ‖x(t)‖_p - rest^(1/p), x_i = (d_i - t)/kb_i ------------------------------------------
    # a p-norm of affine functions: convex and decreasing for p = 1/β >= 1 (Newton from the left never
    # overshoots and converges fast even for large p, where Newton on Σ x^p itself crawls at rate 1 - 1/p),
    # concave for p < 1 (Newton from the right); geometric bisection guards the bracket
    target = rest**beta
    lo_t, hi_t = 0.0, width
    phi, dphi = _pnorm_phi(a, kb, lin, start, capbp, lam_lo, lam_hi, 0.0, p, beta, target)
    if phi <= 0.0:
        return 0.0, 1, True  # the root is at the piece's lower end (to rounding)
    t = 0.0
    if beta > 1.0:
        t = width
        phi, dphi = _pnorm_phi(a, kb, lin, start, capbp, lam_lo, lam_hi, t, p, beta, target)
        if phi >= 0.0:
            return width, 2, True
    for it in range(1, _MAX_NEWTON + 1):
        if it > 1:
            phi, dphi = _pnorm_phi(a, kb, lin, start, capbp, lam_lo, lam_hi, t, p, beta, target)
        if abs(phi) <= 1e-15 * target:
            return t, it, True
        if phi > 0.0:
            lo_t = t
        else:
            hi_t = t
        if hi_t - lo_t <= 4e-16 * hi_t:
            return t, it, True
        step = t - phi / dphi if (dphi < 0.0 and math.isfinite(dphi)) else -1.0
        if abs(step - t) <= 4e-16 * t:
            return t, it, True  # Newton's own correction is at rounding level: t is the root to float precision
        if lo_t < step < hi_t:
            t = step
        elif lo_t > 0.0 and hi_t > 4.0 * lo_t:
            t = math.sqrt(lo_t * hi_t)  # the bracket spans orders of magnitude: bisect the exponent
        else:
            t = 0.5 * (lo_t + hi_t)
    return t, _MAX_NEWTON, False


@nb.njit(cache=True)
def kkt_solve(a_all, b_all, lo_all, caps_all, budget, beta, out):  # type: ignore[no-untyped-def]
    """Fill ``out`` with the optimal sizes in ``[lo, caps]``; return ``(code, λ, n_iter, converged, objective)``.

    Needs ``0 <= lo <= caps`` and ``Σ lo <= budget`` (the public path has ``lo = 0``). Codes at module top. The
    objective ``Σ a·s - b·s^(1+β)`` is summed here (no NumPy call, no overflow warning: it is ``inf``/NaN only
    when its value is beyond the float range, which the wrapper reports).
    """
    code, lam, n_iter, ok = _kkt(a_all, b_all, lo_all, caps_all, budget, beta, out)
    obj = 0.0
    for i in range(out.shape[0]):
        s = out[i]
        if s > 0.0:
            obj += a_all[i] * s - b_all[i] * (s * math.sqrt(s) if beta == 0.5 else s ** (1.0 + beta))
    return code, lam, n_iter, ok, obj


@nb.njit(cache=True)
def _kkt(a_all, b_all, lo_all, caps_all, budget, beta, out):  # type: ignore[no-untyped-def]
    """:func:`kkt_solve` without the objective: ``(code, λ, n_iter, converged)``."""
    n_all = a_all.shape[0]
    k = 1.0 + beta
    p = 1.0 / beta
    sum_lo = 0.0
    for i in range(n_all):
        out[i] = lo_all[i]
        sum_lo += lo_all[i]
    room = budget - sum_lo
    m = 0
    best = -1.0
    for i in range(n_all):
        if caps_all[i] > lo_all[i]:
            st = a_all[i] - k * b_all[i] * lo_all[i] ** beta if lo_all[i] > 0.0 else a_all[i]
            if st > 0.0:
                m += 1
                best = max(best, st)
    if m == 0:
        return EMPTY_EDGE, 0.0, 0, True
    if budget <= 0.0:
        return EMPTY_BUDGET, best, 0, True
    if room <= 0.0:
        return BUDGET, best, 0, True
    # one block for the candidates' rows (and the breakpoints after them): each allocation costs as much as a
    # level's arithmetic
    blk = np.empty(8 * m + 1)  # the breakpoints are at most 2m + 1
    a = blk[:m]
    kb = blk[m : 2 * m]
    lo = blk[2 * m : 3 * m]
    u = blk[3 * m : 4 * m]
    start = blk[4 * m : 5 * m]
    capbp = blk[5 * m : 6 * m]
    idx = np.empty(m, np.int64)
    lin = np.empty(m, np.bool_)
    j = 0
    for i in range(n_all):
        if caps_all[i] > lo_all[i]:
            st = a_all[i] - k * b_all[i] * lo_all[i] ** beta if lo_all[i] > 0.0 else a_all[i]
            if st > 0.0:
                idx[j] = i
                a[j] = a_all[i]
                lo[j] = lo_all[i]
                # no level can hold more than its minimum plus the room left by the others' minimums
                u[j] = min(caps_all[i], lo_all[i] + room)
                kb[j] = k * b_all[i]
                # the marginal fall over the level's whole range (a square root for the square-root law: a pow call
                # costs as much as the rest of the level's set-up)
                drop = kb[j] * (math.sqrt(u[j]) if beta == 0.5 else u[j] ** beta)
                if not drop < np.inf:  # u^β overflowed: in logs, inf only if the fall itself does
                    drop = math.exp(math.log(kb[j]) + beta * math.log(u[j]))
                lin[j] = not (drop > _LINEAR_RTOL * a[j])
                if lin[j]:
                    start[j] = a[j]
                    capbp[j] = -np.inf
                else:
                    start[j] = st
                    capbp[j] = a[j] - drop
                j += 1
    # ---- λ = 0 -------------------------------------------------------------------------------------------
    total0 = sum_lo
    clipped = False  # a level held back only by the budget: it alone fills the room, so the budget binds
    for j in range(m):
        s = _size(a[j], kb[j], lo[j], u[j], lin[j], 0.0, p, beta)
        total0 += s - lo[j]
        if s >= u[j] and u[j] < caps_all[idx[j]]:
            clipped = True
    if total0 <= budget and not clipped:
        all_capped = True
        for j in range(m):
            s = _size(a[j], kb[j], lo[j], u[j], lin[j], 0.0, p, beta)
            out[idx[j]] = s
            if s < caps_all[idx[j]]:
                all_capped = False
        return _checked(out, caps_all, CAPS if all_capped else MARGINAL, 0.0, 0, True)
    # ---- breakpoints, descending, and the first with S_incl >= budget (binary search: S is monotone) ------
    n_ev = 1
    for j in range(m):
        n_ev += 2 if capbp[j] > 0.0 else 1
    ev = blk[6 * m : 6 * m + n_ev]
    e = 0
    for j in range(m):
        ev[e] = start[j]
        e += 1
        if capbp[j] > 0.0:
            ev[e] = capbp[j]
            e += 1
    ev[e] = 0.0
    _sort_descending(ev)
    # S over the candidates plus the other levels' fixed minimums
    base = sum_lo
    for j in range(m):
        base -= lo[j]
    lo_i, hi_i = 0, n_ev - 1  # S_incl(ev[0]) < budget (nothing but ties at the top), S_incl(ev[-1]) >= budget
    if base + _total(a, kb, lo, u, lin, capbp, ev[0], p, beta, False) >= budget:
        hi_i = 0
    while hi_i - lo_i > 1:
        mid = (lo_i + hi_i) // 2
        if base + _total(a, kb, lo, u, lin, capbp, ev[mid], p, beta, False) >= budget:
            hi_i = mid
        else:
            lo_i = mid
    jj = hi_i
    lam_lo = ev[jj]
    n_iter = 0
    ok = True
    if base + _total(a, kb, lo, u, lin, capbp, lam_lo, p, beta, True) < budget:
        # inside the jump of the level(s) tied at λ (linear at their edge, curved at their cap breakpoint): they
        # share what is left above their lower values, equally, capped (any split is optimal to rounding)
        lam = lam_lo
        left = budget - base
        n_tied = 0
        for j in range(m):
            if _tied(a[j], capbp[j], lin[j], lam):
                n_tied += 1
                s = lo[j] if lin[j] else _size(a[j], kb[j], lo[j], u[j], False, lam, p, beta)
            else:
                s = _size(a[j], kb[j], lo[j], u[j], lin[j], lam, p, beta)
            out[idx[j]] = s
            left -= s
        done = np.zeros(m, np.bool_)
        while n_tied > 0 and left > 0.0:
            share = left / n_tied
            capped_any = False
            for j in range(m):
                if _tied(a[j], capbp[j], lin[j], lam) and not done[j] and u[j] - out[idx[j]] <= share:
                    left -= u[j] - out[idx[j]]
                    out[idx[j]] = u[j]
                    done[j] = True
                    n_tied -= 1
                    capped_any = True
            if not capped_any:
                for j in range(m):
                    if _tied(a[j], capbp[j], lin[j], lam) and not done[j]:
                        out[idx[j]] += share
                left = 0.0
        _fit_budget(out, lo_all, budget)
        return _checked(out, caps_all, BUDGET, lam, 0, True)
    lam_hi = ev[jj - 1] if jj > 0 else lam_lo
    fixed = base
    nfree = 0
    for j in range(m):
        if _is_free(start[j], capbp[j], lin[j], lam_lo, lam_hi):
            nfree += 1
        else:
            fixed += u[j] if _at_cap(a[j], capbp[j], lin[j], lam_hi) else lo[j]
    rest = budget - fixed
    # nothing left for the free levels: rounding put the root on the piece's upper breakpoint (the budget is met
    # there by the levels at their caps), and λ_hi is the multiplier consistent with every level's condition
    t = lam_hi - lam_lo if rest <= 0.0 else 0.0
    if nfree > 0 and rest > 0.0:
        t, n_iter, ok = _piece_root(a, kb, lin, start, capbp, lam_lo, lam_hi, rest, p, beta)
    lam = lam_lo + t
    if lam > lam_hi:
        lam = lam_hi
    tot_free = 0.0
    for j in range(m):
        if _is_free(start[j], capbp[j], lin[j], lam_lo, lam_hi):
            # from t, not from λ = λ_lo + t: the gap (a - λ_lo) - t keeps digits that λ's rounding would lose (a
            # level whose whole range spans a few ulps of λ)
            s = _size_at((a[j] - lam_lo) - t, kb[j], lo[j], u[j], False, p, beta)
            tot_free += s - lo[j]
        else:
            s = u[j] if _at_cap(a[j], capbp[j], lin[j], lam_hi) else lo[j]
        out[idx[j]] = s
    # exact budget: the closed forms are exact to rounding; put the residual on the free levels
    excess = base - budget
    for j in range(m):
        excess += out[idx[j]]
    if abs(excess) > 1e-9 * budget:
        ok = False  # more than rounding: the root is off (sizes beyond the float range); feasible, not certified
    if excess != 0.0 and tot_free > 0.0:
        f = 1.0 - excess / tot_free
        f = f if f > 0.0 else 0.0
        for j in range(m):
            if _is_free(start[j], capbp[j], lin[j], lam_lo, lam_hi):
                out[idx[j]] = min(lo[j] + (out[idx[j]] - lo[j]) * f, u[j])
    _fit_budget(out, lo_all, budget)
    return _checked(out, caps_all, BUDGET, lam, n_iter, ok)


@nb.njit(cache=True)
def _sort_descending(v):  # type: ignore[no-untyped-def]
    """Sort ``v`` in place, largest first (insertion sort: the breakpoints are a few dozen, and NumPy's sort of a
    negated copy allocates twice); the values are never NaN."""
    for i in range(1, v.shape[0]):
        x = v[i]
        j = i - 1
        while j >= 0 and v[j] < x:
            v[j + 1] = v[j]
            j -= 1
        v[j + 1] = x


@nb.njit(cache=True)
def _fit_budget(out, lo, budget):  # type: ignore[no-untyped-def]
    """Never over the budget, whatever the rounding of the sums: shrink every size's part above its minimum."""
    for _ in range(3):
        tot = 0.0
        above = 0.0
        for i in range(out.shape[0]):
            tot += out[i]
            above += out[i] - lo[i]
        if tot <= budget or above <= 0.0:
            return
        f = max(1.0 - (tot - budget) / above, 0.0) * (1.0 - 4e-16)
        for i in range(out.shape[0]):
            out[i] = lo[i] + (out[i] - lo[i]) * f


@nb.njit(cache=True)
def _checked(out, caps, code, lam, n_iter, ok):  # type: ignore[no-untyped-def]
    """``(code, λ, n_iter, ok)``, or ``FAILED`` (sizes zeroed) if a size or λ is not finite and >= 0."""
    bad = not (lam >= 0.0 and lam < np.inf)
    for i in range(out.shape[0]):
        if not (out[i] >= 0.0 and out[i] < np.inf):
            bad = True
        elif out[i] > caps[i]:
            out[i] = caps[i]  # never above a cap, whatever the rounding; an answer that was is not certified
            ok = False
    if bad:
        for i in range(out.shape[0]):
            out[i] = 0.0
        return FAILED, 0.0, n_iter, False
    return code, lam, n_iter, ok
