r"""Compiled kernels of the payout learner: the posterior, one Thompson draw, the curves and the update.

Each kernel is the NumPy maths of :mod:`hyper_make.learn._reference` written as loops (numba, ``cache=True``), in
the same operation order where NumPy's is known: element-wise expressions left to right, ``np.add.at`` as
sequential adds in index order, 1-D sums of contiguous arrays as NumPy's pairwise sum (:func:`np_sum`). What is
not bit-for-bit NumPy's (``tests/learn/test_compiled.py`` holds them to 1e-12 relative):

* ``exp``, ``log``, ``expm1`` and ``**``: NumPy's are its own SIMD routines on AVX-512 machines, numba's the C
  library's; the two differ in the last bit for some arguments. The learner's *state* stays bit-identical
  anyway: the few transcendental values the update needs (the prior's fill rate at each resting depth, each fill's
  size to the powers of ``beta_grid``) are computed by NumPy in the caller and passed in.
* Small matrix products (the pooling kernel ``K``, the display regression's Gram matrix): NumPy calls BLAS
  (blocked, fused multiply-adds), the kernels sum in index order.
* The 2×2 inverse and Cholesky factor: closed forms instead of LAPACK.

Random variates are never drawn here: the caller draws them from its ``numpy.random.Generator`` with the calls
(and in the order) of the reference, and passes them in.
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np
from numpy.typing import NDArray

from .._exact import fma, np_sum
from ..allocate._twosided import (
    L_K_A,
    L_K_B,
    L_PNL_A,
    L_PNL_B,
    L_SAMPLING_COST,
    N_RESULT,
    R_OBJ,
    _split_sides,
    solve_full,
)

#: Size models of the curves (``SizeFit.model``).
MODEL_SQRT, MODEL_LINEAR, MODEL_POWER = 0, 1, 2
MODEL_NAMES = ("sqrt", "linear", "power")
#: ``LearnerConfig.size_penalty`` codes.
MODE_CODES = {"sqrt": 0, "linear": 1, "auto": 2, "power": 3}


@nb.njit(cache=True)
def _pool(v, K, out):  # type: ignore[no-untyped-def]
    """``out = v @ K.T`` for one row ``v`` of buckets (``out[j] = Σ_k v[k]·K[j, k]``), as NumPy's BLAS sums it:
    in index order, by fused multiply-adds (checked bit for bit against ``@`` in the tests)."""
    J = v.shape[0]
    for j in range(J):
        acc = 0.0
        for k in range(J):
            acc = fma(v[k], K[j, k], acc)
        out[j] = acc


def state_sizes(H: int, J: int, G: int) -> list[int]:
    """Element counts of the state arrays in :data:`~hyper_make.learn._learner.STATE_SHAPES` order (the packed
    buffer :func:`state_views` reads)."""
    return [2 * J] * 7 + [2 * H * J] * 6 + [2 * H * J * G] * 4 + [4, 2, 1, 1]


@nb.njit(cache=True)
def state_views(buf, H, J, G):  # type: ignore[no-untyped-def]
    """The 21 state arrays as views of the packed buffer, in ``STATE_SHAPES`` order."""
    n2, n3, n4 = 2 * J, 2 * H * J, 2 * H * J * G
    o3 = 7 * n2
    o4 = o3 + 6 * n3
    o5 = o4 + 4 * n4
    return (
        buf[0:n2].reshape((2, J)), buf[n2:2 * n2].reshape((2, J)), buf[2 * n2:3 * n2].reshape((2, J)),
        buf[3 * n2:4 * n2].reshape((2, J)), buf[4 * n2:5 * n2].reshape((2, J)), buf[5 * n2:6 * n2].reshape((2, J)),
        buf[6 * n2:7 * n2].reshape((2, J)),
        buf[o3:o3 + n3].reshape((2, H, J)), buf[o3 + n3:o3 + 2 * n3].reshape((2, H, J)),
        buf[o3 + 2 * n3:o3 + 3 * n3].reshape((2, H, J)), buf[o3 + 3 * n3:o3 + 4 * n3].reshape((2, H, J)),
        buf[o3 + 4 * n3:o3 + 5 * n3].reshape((2, H, J)), buf[o3 + 5 * n3:o3 + 6 * n3].reshape((2, H, J)),
        buf[o4:o4 + n4].reshape((2, H, J, G)), buf[o4 + n4:o4 + 2 * n4].reshape((2, H, J, G)),
        buf[o4 + 2 * n4:o4 + 3 * n4].reshape((2, H, J, G)), buf[o4 + 3 * n4:o4 + 4 * n4].reshape((2, H, J, G)),
        buf[o5:o5 + 4].reshape((2, 2)), buf[o5 + 4:o5 + 6], buf[o5 + 6:o5 + 7], buf[o5 + 7:o5 + 8],
    )  # fmt: skip


#: The posterior's output arrays, packed in one buffer in this order: name and shape in (H, J, G).
POST_LAYOUT = (
    ("phi", ("2", "J")), ("rate_shape", ("2", "J")), ("rate_rate", ("2", "J")), ("inv_rate_rate", ("2", "J")),
    ("log_mean_ratio", ("2", "J")), ("w_kap", ("H", "2", "J")), ("w_mean", ("H", "2", "J")),
    ("w_alpha", ("H", "2", "J")), ("w_beta", ("H", "2", "J")), ("inv_dev_beta", ("H", "2", "J")),
    ("fit", ("7", "2", "H", "G")), ("ll", ("H", "G")), ("n_fit", ("2", "H")), ("chosen", ("H",)), ("best", ("H",)),
    ("model", ("H",)), ("model_beta", ("H",)), ("aic", ("H", "2")), ("coef", ("H", "2", "2")),
    ("cov", ("H", "2", "2", "2")), ("disp", ("8",)), ("gamma_in", ("H", "2", "4J")), ("misc", ("1",)),
)  # fmt: skip


def post_shapes(H: int, J: int, G: int) -> list[tuple[str, tuple[int, ...]]]:
    """:data:`POST_LAYOUT` with its dimensions."""
    dims = {"H": H, "J": J, "G": G, "4J": 4 * J}
    return [(n, tuple(dims[d] if d in dims else int(d) for d in shape)) for n, shape in POST_LAYOUT]


@nb.njit(cache=True)
def post_views(out, H, J, G):  # type: ignore[no-untyped-def]
    """The posterior's arrays as views of the packed buffer, in :data:`POST_LAYOUT` order."""
    n2, n3, nf = 2 * J, 2 * H * J, 14 * H * G
    o = 5 * n2
    p = o + 5 * n3
    q = p + nf
    r = q + H * G + 2 * H + 4 * H + 2 * H
    t = r + 4 * H + 8 * H + 8
    return (
        out[0:n2].reshape((2, J)), out[n2:2 * n2].reshape((2, J)), out[2 * n2:3 * n2].reshape((2, J)),
        out[3 * n2:4 * n2].reshape((2, J)), out[4 * n2:5 * n2].reshape((2, J)),
        out[o:o + n3].reshape((H, 2, J)), out[o + n3:o + 2 * n3].reshape((H, 2, J)),
        out[o + 2 * n3:o + 3 * n3].reshape((H, 2, J)), out[o + 3 * n3:o + 4 * n3].reshape((H, 2, J)),
        out[o + 4 * n3:o + 5 * n3].reshape((H, 2, J)),
        out[p:p + nf].reshape((7, 2, H, G)), out[q:q + H * G].reshape((H, G)),
        out[q + H * G:q + H * G + 2 * H].reshape((2, H)),
        out[q + H * G + 2 * H:q + H * G + 3 * H], out[q + H * G + 3 * H:q + H * G + 4 * H],
        out[q + H * G + 4 * H:q + H * G + 5 * H], out[q + H * G + 5 * H:q + H * G + 6 * H],
        out[r - 2 * H:r].reshape((H, 2)), out[r:r + 4 * H].reshape((H, 2, 2)),
        out[r + 4 * H:r + 12 * H].reshape((H, 2, 2, 2)), out[r + 12 * H:t],
        out[t:t + 8 * H * J].reshape((H, 2, 4 * J)), out[t + 8 * H * J:t + 8 * H * J + 1],
    )  # fmt: skip


@nb.njit(cache=True)
def posterior_kernel(  # type: ignore[no-untyped-def]
    buf, H, J, G, K, ridge_x, ridge_t, ridge_d, n0, nu0, s0, s0_display, size_ref, mode, g_sqrt, g_lin, grid, out
):
    """Every horizon's posterior at once (see the learner's module docstring) from the packed state ``buf``
    (:func:`state_views`) into the packed output ``out`` (:func:`post_views`).

    Shapes: ``(2, J)`` per side and bucket; ``w_*`` ``(H, 2, J)`` per horizon (each horizon's block contiguous);
    ``fit (7, 2, H, G)`` per β of the grid the size fit's θ, κ, its normal matrix ``a11, a12, a22``, determinant
    and noise variance; ``ll (H, G)``, ``n_fit (2, H)``; per horizon ``chosen`` and ``best`` (β index of the
    curves and of the best likelihood, ``-1`` without enough fills), ``model`` and ``model_beta`` (the curves'
    size model code and β); ``aic (H, 2)`` of the square-root and the linear model; ``coef (H, 2, 2)`` (θ, κ at
    the chosen β), ``cov (H, 2, 2, 2)``; ``disp (8,)`` the display fit ``(λ, ψ, cov00, cov01, cov11, s², n, cov10)``;
    ``gamma_in (H, 2, 4J)`` the Thompson draw's Gamma shapes then scales; ``log_mean_ratio`` holds the posterior
    mean's rate ratio (the caller takes its log with NumPy); ``misc = [fills seen]``. ``ridge_x`` is
    ``n0·size_ref^(2β)`` per β, ``ridge_t`` ``n0·side_ref²``, ``ridge_d`` the display ridge
    ``display_prior_s·side_ref²``.
    """
    (expo, prior_exp, filled, count, rest_sc, fsum, fsq, mk_w, mk_y, mk_yy, mk_t, mk_tt, mk_ty, mk_x, mk_xx, mk_xy,
     mk_xt, dr_xx, dr_xy, dr_yy, dr_n) = state_views(buf, H, J, G)  # fmt: skip
    (phi, rate_shape, rate_rate, inv_rate_rate, mean_ratio, kap, mean, alpha, beta_, inv_dev_beta, fit, ll, n_fit,
     chosen, best, model, model_beta, aic, coef, cov, disp, gamma_in, misc) = post_views(out, H, J, G)  # fmt: skip
    theta, kappa, a11, a12, a22, det, sig2 = fit[0], fit[1], fit[2], fit[3], fit[4], fit[5], fit[6]
    S = 2
    tmp = np.empty(J)
    row = np.empty(J)
    for s in range(S):
        for j in range(J):
            e = expo[s, j]
            rest = rest_sc[s, j] / (e if e > 0 else 1.0) if e > 0 else size_ref
            phi[s, j] = (n0 * rest * rest + fsq[s, j]) / (n0 * rest + fsum[s, j])
        for j in range(J):
            tmp[j] = filled[s, j] / phi[s, j]
        _pool(tmp, K, row)
        for j in range(J):
            rate_shape[s, j] = n0 + row[j]
        for j in range(J):
            tmp[j] = prior_exp[s, j] / phi[s, j]
        _pool(tmp, K, row)
        for j in range(J):
            rate_rate[s, j] = n0 + row[j]
    # ---- the size fit: profile likelihood over the β grid
    df = np.empty((S, H))
    groups = np.zeros((S, H), np.int64)
    for s in range(S):
        for h in range(H):
            n_fit[s, h] = np_sum(mk_w[s, h])
            for j in range(J):
                if mk_w[s, h, j] > 0:
                    groups[s, h] += 1
            df[s, h] = n_fit[s, h] - groups[s, h] - 2.0
    usable = np.zeros((S, H, G), np.bool_)
    c_tt = np.empty(J)
    c_ty = np.empty(J)
    c_yy = np.empty(J)
    ll_side = np.zeros((S, H, G))
    for s in range(S):
        for h in range(H):
            # the centred sums without a β axis are NumPy's pairwise sums over the buckets, those with one
            # (below) its sequential sums
            for j in range(J):
                w = mk_w[s, h, j]
                t = mk_t[s, h, j]
                y = mk_y[s, h, j]
                c_tt[j] = mk_tt[s, h, j] - t * t / w if w > 0 else 0.0
                c_ty[j] = mk_ty[s, h, j] - t * y / w if w > 0 else 0.0
                c_yy[j] = mk_yy[s, h, j] - y * y / w if w > 0 else 0.0
            ctt = np_sum(c_tt)
            cty = np_sum(c_ty)
            cyy = np_sum(c_yy)
            nn = n_fit[s, h]
            dfp = df[s, h] if df[s, h] > 0.0 else 0.0
            for g in range(G):
                cxx = 0.0
                cxt = 0.0
                cxy = 0.0
                for j in range(J):
                    w = mk_w[s, h, j]
                    if w > 0:
                        x = mk_x[s, h, j, g]
                        cxx += mk_xx[s, h, j, g] - x * x / w
                        cxt += mk_xt[s, h, j, g] - x * mk_t[s, h, j] / w
                        cxy += mk_xy[s, h, j, g] - x * mk_y[s, h, j] / w
                q11 = cxx + ridge_x[g]
                q12 = cxt
                q22 = ctt + ridge_t
                dd = q11 * q22 - q12 * q12
                th = (-q22 * cxy + q12 * cty) / dd
                ka = (-q11 * cty + q12 * cxy) / dd
                rss = (cyy + 2 * th * cxy + 2 * ka * cty + (th * th) * cxx + 2 * th * ka * cxt
                       + (ka * ka) * ctt)  # fmt: skip
                if rss < 0.0:  # np.maximum(rss, 0): NaN stays NaN
                    rss = 0.0
                a11[s, h, g] = q11
                a12[s, h, g] = q12
                a22[s, h, g] = q22
                det[s, h, g] = dd
                theta[s, h, g] = th
                kappa[s, h, g] = ka
                sig2[s, h, g] = (rss + nu0 * s0 * s0) / (dfp + nu0)
                ok = df[s, h] > 1.0 and rss > 0
                usable[s, h, g] = ok
                if ok:
                    safe_n = nn if nn > 1e-300 else 1e-300
                    ll_side[s, h, g] = -0.5 * nn * (math.log(2 * np.pi * rss / safe_n) + 1)
    for h in range(H):
        n_par = 0
        for s in range(S):
            if df[s, h] > 1.0:
                n_par += groups[s, h] + 3
        any_ll = False
        bi = -1
        for g in range(G):
            hv = False
            for s in range(S):
                hv = hv or usable[s, h, g]
            if hv:
                ll[h, g] = ll_side[0, h, g] + ll_side[1, h, g]
                any_ll = True
                if bi < 0 or ll[h, g] > ll[h, bi]:
                    bi = g
            else:
                ll[h, g] = np.nan
        best[h] = bi
        a_s = 2 * n_par - 2 * ll[h, g_sqrt]
        a_l = 2 * n_par - 2 * ll[h, g_lin]
        aic[h, 0] = a_s
        aic[h, 1] = a_l
        if mode == 0 or (mode == 2 and not a_l < a_s):
            g = g_sqrt
        elif mode == 1 or mode == 2:
            g = g_lin
        else:
            g = bi if any_ll else g_sqrt
        chosen[h] = g
        gv = grid[g]
        model[h] = MODEL_LINEAR if gv == 1.0 else (MODEL_SQRT if gv == 0.5 else MODEL_POWER)
        model_beta[h] = 0.5 if gv == 1.0 else gv
        for s in range(S):
            coef[h, s, 0] = theta[s, h, g]
            coef[h, s, 1] = kappa[s, h, g]
            dd = det[s, h, g]
            v = sig2[s, h, g]
            cov[h, s, 0, 0] = a22[s, h, g] / dd * v
            cov[h, s, 0, 1] = -a12[s, h, g] / dd * v
            cov[h, s, 1, 0] = -a12[s, h, g] / dd * v
            cov[h, s, 1, 1] = a11[s, h, g] / dd * v
    # ---- the bucket deviations given the size slopes, pooled across depth
    sy = np.empty(J)
    syy = np.empty(J)
    wp = np.empty(J)
    syp = np.empty(J)
    syyp = np.empty(J)
    for s in range(S):
        for h in range(H):
            g = int(chosen[h])
            th = coef[h, s, 0]
            ka = coef[h, s, 1]
            for j in range(J):
                sy[j] = mk_y[s, h, j] + th * mk_x[s, h, j, g] + ka * mk_t[s, h, j]
                syy[j] = (mk_yy[s, h, j] + th * th * mk_xx[s, h, j, g] + ka * ka * mk_tt[s, h, j]
                          + 2 * th * mk_xy[s, h, j, g] + 2 * ka * mk_ty[s, h, j]
                          + 2 * th * ka * mk_xt[s, h, j, g])  # fmt: skip
            _pool(mk_w[s, h], K, wp)
            _pool(sy, K, syp)
            _pool(syy, K, syyp)
            for j in range(J):
                kp = n0 + wp[j]
                kap[h, s, j] = kp
                mean[h, s, j] = syp[j] / kp
                alpha[h, s, j] = 0.5 * nu0 + 0.5 * wp[j]
                r = syyp[j] - syp[j] * syp[j] / kp
                beta_[h, s, j] = 0.5 * nu0 * s0 * s0 + 0.5 * (r if r > 0.0 else 0.0)
    # ---- the display drift: ridge regression of the mid's drift on (display, position), with NumPy's operations:
    # np.linalg.inv's LU solve (partial pivoting, reciprocal scaling), its matrix-vector and dot products' fused
    # multiply-adds (checked bit for bit against NumPy in the tests)
    i00, i01, i10, i11 = _inv2(dr_xx[0, 0] + ridge_d, dr_xx[0, 1] + 0.0, dr_xx[1, 0] + 0.0, dr_xx[1, 1] + ridge_d)
    lam = fma(i00, dr_xy[0], i01 * dr_xy[1])
    psi = fma(i10, dr_xy[0], i11 * dr_xy[1])
    nd = dr_n[0]
    rss = dr_yy[0] - fma(psi, dr_xy[1], lam * dr_xy[0])
    if not rss > 0.0:
        rss = 0.0
    s2 = (nu0 * s0_display + rss) / (nu0 + (nd - 2.0 if nd - 2.0 > 0.0 else 0.0))
    disp[0] = lam
    disp[1] = psi
    disp[2] = i00 * s2
    disp[3] = i01 * s2
    disp[4] = i11 * s2
    disp[5] = s2
    disp[6] = nd
    disp[7] = i10 * s2  # an LU inverse is not exactly symmetric
    # ---- what every draw and mean reuses: the divisions (IEEE, NumPy's bit for bit), the draw's Gamma inputs
    n2 = 2 * J
    for s in range(S):
        for j in range(J):
            inv_rate_rate[s, j] = 1.0 / rate_rate[s, j]
            mean_ratio[s, j] = rate_shape[s, j] / rate_rate[s, j]
    for h in range(H):
        for s in range(S):
            for j in range(J):
                inv_dev_beta[h, s, j] = 1.0 / beta_[h, s, j]
                i = s * J + j
                gamma_in[h, 0, i] = rate_shape[s, j]
                gamma_in[h, 0, n2 + i] = alpha[h, s, j]
                gamma_in[h, 1, i] = inv_rate_rate[s, j]
                gamma_in[h, 1, n2 + i] = inv_dev_beta[h, s, j]
    misc[0] = np_sum(count.ravel())


@nb.njit(cache=True)
def _inv2(a, b, c, d):  # type: ignore[no-untyped-def]
    """``inv([[a, b], [c, d]])`` as ``np.linalg.inv`` computes it (LAPACK's LU with partial pivoting, scaling by
    reciprocals, then a solve per column of the identity), row-major ``(i00, i01, i10, i11)``."""
    if abs(c) > abs(a):
        rr = 1.0 / c
        piv = a * rr
        ru = 1.0 / (b - piv * d)
        x2 = ru
        x1 = -(d * x2) * rr
        z2 = (-piv) * ru
        z1 = fma(-d, z2, 1.0) * rr
    else:
        r = 1.0 / a
        piv = c * r
        ru = 1.0 / (d - piv * b)
        x2 = (-piv) * ru
        x1 = fma(-b, x2, 1.0) * r
        z2 = ru
        z1 = -(b * z2) * r
    return x1, z1, x2, z2


@nb.njit(cache=True)
def draw_kernel(kap, mean, cov, coef, disp, g, zn, dev, coef_out):  # type: ignore[no-untyped-def]
    """One Thompson draw at one horizon from the caller's variates; returns λ (bps/s per coin).

    ``g`` holds the drawn rate ratios then the noise precisions τ (``2·J`` each, side-major), ``zn`` the
    standard normals: ``2·J`` for the deviations, 2 per side for the slopes, 1 for λ. ``dev = mean + z/√(κ·τ)``,
    per side ``coef + L·zc[s]`` with ``L`` the Cholesky factor of ``cov[s] + 1e-300·I``,
    ``λ = λ̂ + √max(Var λ, 0)·zl``.
    """
    S, J = mean.shape
    n = S * J
    for s in range(S):
        for j in range(J):
            i = s * J + j
            dev[s, j] = mean[s, j] + zn[i] / math.sqrt(kap[s, j] * g[n + i])
        c00 = cov[s, 0, 0] + 1e-300
        c10 = cov[s, 1, 0]
        c11 = cov[s, 1, 1] + 1e-300
        # np.linalg.cholesky's operations (LAPACK scales by the pivot's reciprocal), then its matrix-vector
        # product's fused multiply-add
        l00 = math.sqrt(c00)
        l10 = c10 * (1.0 / l00)
        l11 = math.sqrt(c11 - l10 * l10)
        z0, z1 = zn[n + 2 * s], zn[n + 2 * s + 1]
        coef_out[s, 0] = coef[s, 0] + l00 * z0
        coef_out[s, 1] = coef[s, 1] + fma(l10, z0, l11 * z1)
    v = disp[2] if disp[2] > 0.0 else 0.0
    return disp[0] + math.sqrt(v) * zn[n + 4]


@nb.njit(cache=True)
def rate_args_kernel(d_b, d_a, prior_depth, prior_log_rate, centres, lr, lr_m, with_mean, x):  # type: ignore[no-untyped-def]
    """The two exponents of each level's fill rate into ``x`` (2, M): ``ln ρ0(δ)`` (the prior's table, interpolated)
    and ``interp(δ, ln r)`` (the bucket ratios'), for the bid then the ask levels of the draw (``lr``) and, with
    ``with_mean``, of the posterior mean (``lr_m``). The caller takes ``exp`` and ``expm1`` with NumPy (see
    :func:`rates_and_fill_probs`): numba's are the C library's, which differ from NumPy's in the last bit."""
    nb_ = d_b.shape[0]
    na_ = d_a.shape[0]
    o = 0
    for k in range(2 if with_mean else 1):
        r = lr if k == 0 else lr_m
        for s in range(2):
            d = d_b if s == 0 else d_a
            n = nb_ if s == 0 else na_
            if n == 0:
                continue
            u = np.interp(d, prior_depth, prior_log_rate)
            v = np.interp(d, centres, r[s])
            for i in range(n):
                x[0, o + i] = u[i]
                x[1, o + i] = v[i]
            o += n


def rates_and_fill_probs(
    d_b: NDArray[np.float64],
    d_a: NDArray[np.float64],
    prior: Any,
    centres: NDArray[np.float64],
    lr: NDArray[np.float64],
    lr_m: NDArray[np.float64] | None,
    h: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each level's fill rate ``ρ = ρ0(δ)·exp(interp(δ, ln r))`` (1/s) and filled fraction ``p = -expm1(-ρ·h)``
    over ``h`` seconds, bid then ask levels (of the draw, then of the mean with ``lr_m``), by NumPy's ``exp`` and
    ``expm1`` on the compiled interpolations: the reference's values bit for bit."""
    m = (d_b.shape[0] + d_a.shape[0]) * (1 if lr_m is None else 2)
    x = np.empty((2, m))
    rate_args_kernel(d_b, d_a, prior.depth_bps, prior.log_rate, centres, lr, lr if lr_m is None else lr_m,
                     lr_m is not None, x)  # fmt: skip
    np.exp(x, out=x)
    rate = x[0] * x[1]
    p = np.negative(rate)
    p *= h
    np.expm1(p, out=p)
    np.negative(p, out=p)
    return rate, p


@nb.njit(cache=True)
def side_curves_kernel(  # type: ignore[no-untyped-def]
    d, prior_depth, prior_mk, centres, dev, rate_in, p_in, theta, kappa, linear, usd, cost, a, b, c, p, rate, mk,
):  # fmt: skip
    """One side's curves at depths ``d`` (bps) into ``a, b, c, p, rate, mk``; returns ``k`` (USD/coin²).

    ``rate_in``, ``p_in`` are the levels' fill rates (1/s) and filled fractions from
    :func:`rates_and_fill_probs`; ``mk = μ0(δ) + interp(δ, d_j)`` (bps), ``a = p·mk·usd + cost`` (USD/coin,
    ``cost <= 0`` the display's), the size penalty ``p·θ·usd`` as ``b`` (USD/coin^(1+β)) or, for the linear
    model, ``c`` (USD/coin²); ``k = κ·mean(p)·usd``. ``θ, κ`` are clipped to ``>= 0`` by the caller.
    """
    n = d.shape[0]
    if n == 0:
        return 0.0
    m0 = np.interp(d, prior_depth, prior_mk)
    dv = np.interp(d, centres, dev)
    for i in range(n):
        rate[i] = rate_in[i]
        mk[i] = m0[i] + dv[i]
        pi = p_in[i]
        p[i] = pi
        pen = pi * theta * usd
        if linear:
            b[i] = 0.0
            c[i] = pen
        else:
            b[i] = pen
            c[i] = 0.0
        ai = pi * mk[i] * usd
        a[i] = ai + cost if cost < 0.0 else ai
    return kappa * (np_sum(p) / n) * usd


@nb.njit(cache=True)
def _bucket(edges, x):  # type: ignore[no-untyped-def]
    """``clip(searchsorted(edges, x, 'right') - 1, 0, J - 1)``."""
    lo, hi = 0, edges.shape[0]
    while lo < hi:
        m = (lo + hi) // 2
        if x < edges[m]:
            hi = m
        else:
            lo = m + 1
    j = lo - 1
    nbk = edges.shape[0] - 2
    return 0 if j < 0 else (nbk if j > nbk else j)


@nb.njit(cache=True)
def update_kernel(  # type: ignore[no-untyped-def]
    decay, buf, H, J, G, edges, rest_side, rest_depth, rest_size, rest_time, rest_rate0,
    fill_side, fill_depth, fill_size, fill_price, fill_mk, fill_osz, fill_tot, fill_mu0, fill_xg,
    drift_dt, drift_bps, drift_disp, drift_pos, drift_pre,
    huber_k, win, post, counts,
):  # fmt: skip
    """One interval's learning into the state arrays (in place), the reference's order of operations.

    ``buf`` is the learner's packed state (:func:`state_views`), updated in place.
    ``rest_rate0`` is the prior's rate at each resting depth (1/s), ``fill_osz`` the order size (the fill size
    where unknown), ``fill_mu0`` the prior's markout (bps) and ``fill_xg`` the order size to each β, all from
    NumPy; the display-drift rows (at most one) or, for several, their sums ``drift_pre = [Σxxᵀ (4, row-major),
    Σxy (2), Σy², rows]`` by NumPy. Winsorising (``win``) uses the posterior before the interval (``post``, packed
    as :func:`post_views`): at each horizon the chosen β, bucket means, slopes, and Normal-Gamma ``(β, α)``.
    ``counts`` receives ``[rest used, rest skipped, fills used, fills skipped, markouts skipped, winsorised,
    side totals missing]``.
    """
    (expo, prior_exp, filled, fcount, rest_sc, fsum, fsq, w3, y3, yy3, t3, tt3, ty3, x4, xx4, xy4, xt4, dr_xx, dr_xy,
     dr_yy, dr_n) = state_views(buf, H, J, G)  # fmt: skip
    (_, _, _, _, _, _, win_mean, win_alpha, win_beta, _, _, _, _, win_g, _, _, _, _, win_coef, _, _, _,
     _) = post_views(post, H, J, G)  # fmt: skip
    if decay != 1.0:  # every statistic, the reference's ``arr *= decay``
        for i in range(buf.shape[0]):
            buf[i] *= decay
    for c in range(counts.shape[0]):
        counts[c] = 0
    # ---- resting exposure
    for i in range(rest_side.shape[0]):
        sz, tm, dp = rest_size[i], rest_time[i], rest_depth[i]
        if not (math.isfinite(dp) and math.isfinite(sz) and math.isfinite(tm) and sz >= 0 and tm >= 0):
            counts[1] += 1
            continue
        counts[0] += 1
        s = 1 if rest_side[i] < 0 else 0
        j = _bucket(edges, dp)
        cs = sz * tm
        expo[s, j] += cs
        prior_exp[s, j] += cs * rest_rate0[i]
        rest_sc[s, j] += cs * sz
    # ---- fills
    H = fill_mk.shape[1]
    for i in range(fill_side.shape[0]):
        y, dp, px = fill_size[i], fill_depth[i], fill_price[i]
        if not (math.isfinite(dp) and math.isfinite(y) and math.isfinite(px) and y > 0 and px > 0):
            counts[3] += 1
            continue
        counts[2] += 1
        s = 1 if fill_side[i] < 0 else 0
        j = _bucket(edges, dp)
        filled[s, j] += y
        fcount[s, j] += 1.0
        fsum[s, j] += y
        fsq[s, j] += y * y
    # markouts: horizon by horizon, as the reference (its adds at one index are in fill order per horizon)
    G = fill_xg.shape[1]
    for i in range(fill_side.shape[0]):
        tot = fill_tot[i]
        y, dp, px = fill_size[i], fill_depth[i], fill_price[i]
        if not (math.isfinite(dp) and math.isfinite(y) and math.isfinite(px) and y > 0 and px > 0):
            continue
        if not (math.isfinite(tot) and tot >= 0):
            counts[6] += 1
    for h in range(H):
        for i in range(fill_side.shape[0]):
            y, dp, px = fill_size[i], fill_depth[i], fill_price[i]
            if not (math.isfinite(dp) and math.isfinite(y) and math.isfinite(px) and y > 0 and px > 0):
                continue
            mkv = fill_mk[i, h] / px * 1e4
            if not math.isfinite(mkv):
                counts[4] += 1
                continue
            s = 1 if fill_side[i] < 0 else 0
            j = _bucket(edges, dp)
            tot = fill_tot[i]
            t = tot if (math.isfinite(tot) and tot >= 0) else fill_osz[i]
            dv = mkv - fill_mu0[i]
            if win:
                g = int(win_g[h])
                pred = win_mean[h, s, j] - win_coef[h, s, 0] * fill_xg[i, g] - win_coef[h, s, 1] * t
                scale = math.sqrt(win_beta[h, s, j] / win_alpha[h, s, j])
                lo = pred - huber_k * scale
                hi = pred + huber_k * scale
                cl = dv if dv > lo else lo  # np.clip: min(max(x, lo), hi)
                cl = cl if cl < hi else hi
                if cl != dv:
                    counts[5] += 1
                dv = cl
            w3[s, h, j] += 1.0
            y3[s, h, j] += dv
            yy3[s, h, j] += dv * dv
            t3[s, h, j] += t
            tt3[s, h, j] += t * t
            ty3[s, h, j] += t * dv
            for g in range(G):
                xg = fill_xg[i, g]
                x4[s, h, j, g] += xg
                xx4[s, h, j, g] += xg * xg
                xy4[s, h, j, g] += xg * dv
                xt4[s, h, j, g] += xg * t
    # ---- the display drift: one row here (a product is a product in any order); several rows come summed by
    # NumPy in ``drift_pre`` (its BLAS sums a matrix-vector product in an order of its own)
    if drift_pre[7] > 0.0:
        dr_xx[0, 0] += drift_pre[0]
        dr_xx[0, 1] += drift_pre[1]
        dr_xx[1, 0] += drift_pre[2]
        dr_xx[1, 1] += drift_pre[3]
        dr_xy[0] += drift_pre[4]
        dr_xy[1] += drift_pre[5]
        dr_yy[0] += drift_pre[6]
        dr_n[0] += drift_pre[7]
    for i in range(drift_dt.shape[0]):
        dt, yd, ds, ps = drift_dt[i], drift_bps[i], drift_disp[i], drift_pos[i]
        if not (math.isfinite(dt) and dt > 0 and math.isfinite(yd) and math.isfinite(ds) and math.isfinite(ps)):
            counts[1] += 1
            continue
        x0 = ds * dt
        x1 = ps * dt
        w = 1.0 / dt
        dr_xx[0, 0] += x0 * w * x0
        dr_xx[0, 1] += x0 * w * x1
        dr_xx[1, 0] += x1 * w * x0
        dr_xx[1, 1] += x1 * w * x1
        dr_xy[0] += x0 * w * yd
        dr_xy[1] += x1 * w * yd
        dr_yy[0] += w * yd * yd
        dr_n[0] += 1.0


@nb.njit(cache=True)
def _side_pnl(p, cap, pen, s, beta_lc):  # type: ignore[no-untyped-def]
    """``Σ value(s)`` of the published :class:`LevelCurves` (USD): ``a = p·(capture + 0 - 0)``,
    ``b = b_forward + 0``, ``value = a·s - b·s^(1+β)``."""
    n = s.shape[0]
    v = np.empty(n)
    q1 = 1.0 + beta_lc
    for i in range(n):
        v[i] = p[i] * (cap[i] + 0.0 - 0.0) * s[i] - (pen[i] + 0.0) * s[i] ** q1
    return np_sum(v)


@nb.njit(cache=True)
def learned_solve(  # type: ignore[no-untyped-def]
    d_b, d_a, prior_depth, prior_mk, centres, rates, probs,
    dev, coef, lam, dev_m, coef_m, lam_m, with_mean, linear, beta,
    mid, tau, q, kappa, bud_b, bud_a, u_b, u_a, min_b, min_a, lot, inv,
    cur_b, cur_a, out_b, out_a, res,
):  # fmt: skip
    """The learned allocator's build after the draw: both sides' curves (with the display's cost), the exact
    two-sided solve on the lot grid, each side's expected PnL under the published curves, and with ``with_mean``
    the sampling cost (the posterior mean's own optimum minus its value at the draw's sizes, USD).

    ``rates``, ``probs`` are the levels' fill rates and filled fractions of the draw then of the mean
    (:func:`rates_and_fill_probs`); ``dev, coef, lam`` the draw's bucket deviations (bps), slopes and display
    slope (see :meth:`PayoutLearner.draw`), ``*_m`` the posterior mean's. Curves into ``cur_b``, ``cur_a`` (rows
    a, b, c, p, rate, markout, capture ``markout·mid·1e-4``), sizes into ``out_b``, ``out_a``, scalars into ``res`` (the
    solve's slots ``R_*``, then ``L_*``, of :mod:`hyper_make.allocate._twosided`).
    """
    usd = mid * 1e-4
    g = q * lam * tau * mid * 1e-4  # the display's cost: USD per coin shown on the bid (its negative on the ask)
    ks = np.empty(2)
    for s in range(2):
        d = d_b if s == 0 else d_a
        cur = cur_b if s == 0 else cur_a
        th, ka = coef[s, 0], coef[s, 1]
        cost = (g if g < 0.0 else 0.0) if s == 0 else (-g if -g < 0.0 else 0.0)
        o = 0 if s == 0 else d_b.shape[0]
        ks[s] = side_curves_kernel(d, prior_depth, prior_mk, centres, dev[s], rates[o:o + d.shape[0]],
                                   probs[o:o + d.shape[0]], th if not 0.0 > th else 0.0, ka if not 0.0 > ka else 0.0,
                                   linear, usd, cost, cur[0], cur[1], cur[2], cur[3], cur[4], cur[5])  # fmt: skip
        for i in range(d.shape[0]):  # the published capture (USD/coin): the markout in USD
            cur[6, i] = cur[5, i] * mid * 1e-4
    solve_full(cur_b[0], cur_b[1], cur_b[2], cur_b[3], ks[0], u_b, bud_b, min_b,
               cur_a[0], cur_a[1], cur_a[2], cur_a[3], ks[1], u_a, bud_a, min_a,
               q, kappa, beta, lot, inv, out_b, out_a, res)  # fmt: skip
    res[L_K_B], res[L_K_A] = ks[0], ks[1]
    beta_lc = 1.0 if linear else beta
    res[L_PNL_B] = _side_pnl(cur_b[3], cur_b[6], cur_b[2] if linear else cur_b[1], out_b, beta_lc)
    res[L_PNL_A] = _side_pnl(cur_a[3], cur_a[6], cur_a[2] if linear else cur_a[1], out_a, beta_lc)
    res[L_SAMPLING_COST] = np.nan
    if with_mean:
        gm = q * lam_m * tau * mid * 1e-4
        mb = np.empty((6, d_b.shape[0]))
        ma = np.empty((6, d_a.shape[0]))
        km = np.empty(2)
        for s in range(2):
            d = d_b if s == 0 else d_a
            cur = mb if s == 0 else ma
            th, ka = coef_m[s, 0], coef_m[s, 1]
            cost = (gm if gm < 0.0 else 0.0) if s == 0 else (-gm if -gm < 0.0 else 0.0)
            o = d_b.shape[0] + d_a.shape[0] + (0 if s == 0 else d_b.shape[0])
            km[s] = side_curves_kernel(d, prior_depth, prior_mk, centres, dev_m[s], rates[o:o + d.shape[0]],
                                       probs[o:o + d.shape[0]], th if not 0.0 > th else 0.0,
                                       ka if not 0.0 > ka else 0.0, linear, usd, cost, cur[0], cur[1], cur[2], cur[3],
                                       cur[4], cur[5])  # fmt: skip
        sb = np.empty(d_b.shape[0])
        sa = np.empty(d_a.shape[0])
        r2 = np.empty(N_RESULT)
        solve_full(mb[0], mb[1], mb[2], mb[3], km[0], u_b, bud_b, min_b, ma[0], ma[1], ma[2], ma[3], km[1], u_a,
                   bud_a, min_a, q, kappa, beta, lot, inv, sb, sa, r2)  # fmt: skip
        e, i_, z, r, _, _ = _split_sides(mb[0], mb[1], mb[2], mb[3], km[0], out_b, ma[0], ma[1], ma[2], ma[3], km[1],
                                         out_a, q, kappa, beta)  # fmt: skip
        res[L_SAMPLING_COST] = r2[R_OBJ] - (e + i_ + z + r)
