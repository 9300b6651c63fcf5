"""The learner's and the learned allocator's maths in plain NumPy: the reference the compiled path is tested against.

:class:`~hyper_make.learn.PayoutLearner` and :class:`~hyper_make.allocate.LearnedAllocator` run compiled kernels
(:mod:`hyper_make.learn._kernels`); these functions are the NumPy implementation they replaced, kept verbatim in
their maths so that ``tests/learn/test_compiled.py`` can check the kernels against them (same sizes, curves and
state to ~1e-12 relative, from the same ``numpy.random.Generator`` draws) and ``benchmarks/bench_ladder.py`` can
time both in one process. Nothing in the library calls them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validate import check_real
from ..allocate._twosided import SideCurves, solve_two_sided, split_objective
from ._learner import PayoutCurves, PayoutLearner, SizeFit, UpdateReport, _side_index
from ._obs import LevelObservations


@dataclass(frozen=True, slots=True, eq=False)
class RefPosterior:
    """Posterior parameters at one horizon (arrays over (side, bucket)), the size fit."""

    rate_shape: NDArray[np.float64]
    rate_rate: NDArray[np.float64]
    dev_kappa: NDArray[np.float64]
    dev_mean: NDArray[np.float64]
    dev_alpha: NDArray[np.float64]
    dev_beta: NDArray[np.float64]
    coef: NDArray[np.float64]  # (side, 2): θ, κ at the chosen β
    coef_cov: NDArray[np.float64]  # (side, 2, 2)
    fit: SizeFit


def fill_unit_coins(lrn: PayoutLearner) -> NDArray[np.float64]:
    """``φ = E[Y²]/E[Y]`` per side and bucket (coins)."""
    n0, st = lrn.config.prior_fills, lrn.state
    e = st["exposure_coin_s"]
    rest = np.where(e > 0, st["rest_size_coin_s"] / np.where(e > 0, e, 1.0), lrn.config.size_ref_coins)
    return (n0 * rest * rest + st["fill_size_sq_sum"]) / (n0 * rest + st["fill_size_sum"])


def prior_rate(lrn: PayoutLearner, depth_bps: ArrayLike) -> NDArray[np.float64]:
    """The prior's fill rate (1/s) as :meth:`LearnerPrior.rate` computed it (the log table taken every call)."""
    p = lrn.prior
    return np.exp(np.interp(np.asarray(depth_bps, dtype=np.float64), p.depth_bps, np.log(p.rate_per_s)))


def size_fits(lrn: PayoutLearner) -> tuple[list[SizeFit], NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
    """Profile likelihood over the β grid at every horizon: the fits, the chosen β index per horizon, and per
    (side, horizon) the coefficients ``(θ, κ)`` and their covariance."""
    cfg, st = lrn.config, lrn.state
    grid = np.asarray(cfg.beta_grid)
    n0, nu0, s0 = cfg.prior_fills, cfg.prior_noise_dof, lrn.prior.markout_sd_bps
    w = st["mk_w"][..., None]  # (side, H, bucket, 1)
    has = w > 0
    wi = np.where(has, w, 1.0)
    y, yy = st["mk_y"][..., None], st["mk_yy"][..., None]
    t, tt, ty = st["mk_t"][..., None], st["mk_tt"][..., None], st["mk_ty"][..., None]
    x, xx, xy, xt = st["mk_x"], st["mk_xx"], st["mk_xy"], st["mk_xt"]  # (side, H, bucket, G)
    shape = x.shape[:2] + x.shape[3:]  # (side, H, G)

    def centred(sab: NDArray[np.float64], sa: NDArray[np.float64], sb: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.broadcast_to(np.where(has, sab - sa * sb / wi, 0.0).sum(axis=2), shape)

    cxx, cxt, ctt = centred(xx, x, x), centred(xt, x, t), centred(tt, t, t)
    cxy, cty, cyy = centred(xy, x, y), centred(ty, t, y), centred(yy, y, y)
    a11 = cxx + n0 * cfg.size_ref_coins ** (2 * grid)
    a12 = cxt
    a22 = ctt + n0 * cfg.side_ref_coins**2
    det = a11 * a22 - a12 * a12
    theta = (-a22 * cxy + a12 * cty) / det
    kappa = (-a11 * cty + a12 * cxy) / det
    rss = np.maximum(
        cyy + 2 * theta * cxy + 2 * kappa * cty + theta**2 * cxx + 2 * theta * kappa * cxt + kappa**2 * ctt, 0.0
    )
    n = st["mk_w"].sum(axis=2)  # (side, H)
    groups = np.count_nonzero(st["mk_w"] > 0, axis=2)
    df = n - groups - 2.0
    sig2 = (rss + nu0 * s0 * s0) / (np.maximum(df, 0.0)[..., None] + nu0)
    usable = (df > 1.0)[..., None] & (rss > 0)
    safe_rss = np.where(usable, rss, 1.0)
    safe_n = np.maximum(n, 1e-300)[..., None]
    ll_side = np.where(usable, -0.5 * n[..., None] * (np.log(2 * np.pi * safe_rss / safe_n) + 1), 0.0)
    have = usable.any(axis=0)  # (H, G)
    ll = np.where(have, ll_side.sum(axis=0), np.nan)
    g_sqrt, g_lin = cfg.beta_grid.index(0.5), cfg.beta_grid.index(1.0)
    used = (df > 1.0).astype(np.int64)
    n_par = (groups * used).sum(axis=0) + 3 * used.sum(axis=0)  # (H,)
    aic_sqrt = 2 * n_par - 2 * ll[:, g_sqrt]
    aic_lin = 2 * n_par - 2 * ll[:, g_lin]
    fits: list[SizeFit] = []
    chosen = np.empty(len(cfg.markout_horizons_s), np.intp)
    for h in range(len(cfg.markout_horizons_s)):
        a_s, a_l = float(aic_sqrt[h]), float(aic_lin[h])
        if math.isnan(a_s) or math.isnan(a_l) or abs(a_s - a_l) < 2.0:
            preferred = "undecided"
        else:
            preferred = "sqrt" if a_s < a_l else "linear"
        any_ll = bool(have[h].any())
        best = int(np.nanargmax(ll[h])) if any_ll else g_sqrt
        mode = cfg.size_penalty
        if mode == "sqrt" or (mode == "auto" and not a_l < a_s):
            g, model = g_sqrt, "sqrt"
        elif mode in ("linear", "auto"):
            g, model = g_lin, "linear"
        else:
            g = best
            model = "linear" if grid[g] == 1.0 else ("sqrt" if grid[g] == 0.5 else "power")
        chosen[h] = g
        se_t = np.sqrt(np.maximum(a22[:, h, g] / det[:, h, g] * sig2[:, h, g], 0.0))
        se_k = np.sqrt(np.maximum(a11[:, h, g] / det[:, h, g] * sig2[:, h, g], 0.0))
        fits.append(
            SizeFit(
                beta=float(grid[g]),
                model=model,  # type: ignore[arg-type]
                theta_bps=(float(theta[0, h, g]), float(theta[1, h, g])),
                theta_se_bps=(float(se_t[0]), float(se_t[1])),
                kappa_bps=(float(kappa[0, h, g]), float(kappa[1, h, g])),
                kappa_se_bps=(float(se_k[0]), float(se_k[1])),
                loglik={float(b): float(v) for b, v in zip(grid, ll[h], strict=True)},
                beta_hat=float(grid[best]) if any_ll else float("nan"),
                aic_sqrt=a_s,
                aic_linear=a_l,
                preferred=preferred,
                n_fills=(float(n[0, h]), float(n[1, h])),
            )
        )
    hh = np.arange(chosen.size)
    th, ka = theta[:, hh, chosen], kappa[:, hh, chosen]  # (side, H)
    coef = np.stack([th, ka], axis=-1)
    d, s2 = det[:, hh, chosen], sig2[:, hh, chosen]
    inv = (
        np.stack(
            [
                np.stack([a22[:, hh, chosen], -a12[:, hh, chosen]], -1),
                np.stack([-a12[:, hh, chosen], a11[:, hh, chosen]], -1),
            ],
            -2,
        )
        / d[..., None, None]
    )
    return fits, chosen, coef, inv * s2[..., None, None]


def posteriors(lrn: PayoutLearner) -> list[RefPosterior]:
    """The posterior at every markout horizon (see the learner's module docstring)."""
    cfg, st, K = lrn.config, lrn.state, lrn._kernel
    n0 = cfg.prior_fills
    phi = fill_unit_coins(lrn)
    rate_shape = n0 + (st["filled_coins"] / phi) @ K.T
    rate_rate = n0 + (st["prior_expected_coins"] / phi) @ K.T
    fits, g, coef, cov = size_fits(lrn)
    hh = np.arange(len(cfg.markout_horizons_s))

    def at_beta(name: str) -> NDArray[np.float64]:
        return st[name][:, hh, :, g].transpose(1, 0, 2)

    th, ka = coef[..., 0][..., None], coef[..., 1][..., None]
    sy = st["mk_y"] + th * at_beta("mk_x") + ka * st["mk_t"]
    syy = (
        st["mk_yy"]
        + th * th * at_beta("mk_xx")
        + ka * ka * st["mk_tt"]
        + 2 * th * at_beta("mk_xy")
        + 2 * ka * st["mk_ty"]
        + 2 * th * ka * at_beta("mk_xt")
    )
    wp, syp, syyp = st["mk_w"] @ K.T, sy @ K.T, syy @ K.T
    nu0, s0 = cfg.prior_noise_dof, lrn.prior.markout_sd_bps
    kap = n0 + wp
    mean = syp / kap
    alpha = 0.5 * nu0 + 0.5 * wp
    beta = 0.5 * nu0 * s0 * s0 + 0.5 * np.maximum(syyp - syp * syp / kap, 0.0)
    return [RefPosterior(rate_shape, rate_rate, kap[:, h], mean[:, h], alpha[:, h], beta[:, h], coef[:, h], cov[:, h],
                         fits[h]) for h in hh]  # fmt: skip


def display_posterior(lrn: PayoutLearner) -> tuple[NDArray[np.float64], NDArray[np.float64], float, float]:
    """Posterior mean and covariance of ``(λ, ψ)``, the noise variance (bps²/s) and the interval count."""
    cfg, st = lrn.config, lrn.state
    r = cfg.display_prior_s * cfg.side_ref_coins**2
    a = st["dr_xx"] + r * np.eye(2)
    inv = np.linalg.inv(a)
    beta = inv @ st["dr_xy"]
    n = float(st["dr_n"][0])
    nu0 = cfg.prior_noise_dof
    s0 = lrn.prior.markout_sd_bps**2 / cfg.value_horizon_s
    rss = max(float(st["dr_yy"][0]) - float(beta @ st["dr_xy"]), 0.0)
    s2 = (nu0 * s0 + rss) / (nu0 + max(n - 2.0, 0.0))
    return beta, inv * s2, s2, n


def curves(
    lrn: PayoutLearner,
    depth_bid_bps: ArrayLike,
    depth_ask_bps: ArrayLike,
    mid_usd: float,
    horizon_s: float,
    ratio: NDArray[np.float64],
    dev: NDArray[np.float64],
    coef: NDArray[np.float64],
    post: RefPosterior,
    display: float = 0.0,
) -> PayoutCurves:
    """The curves of given bucket ratios, deviations and slopes (see the learner's module docstring)."""
    mid = check_real("mid_usd", mid_usd, lo=0.0, lo_open=True, unit="USD")
    h = check_real("horizon_s", horizon_s, lo=0.0, lo_open=True, unit="s")
    centres = lrn.config.bucket_centres_bps
    fit = post.fit
    usd = mid * 1e-4
    sides, rates, mks, thetas, kappas = [], [], [], [], []
    for s, (name, depths) in enumerate((("bid", depth_bid_bps), ("ask", depth_ask_bps))):
        d = np.asarray(depths, dtype=np.float64)
        rate = prior_rate(lrn, d) * np.exp(np.interp(d, centres, np.log(ratio[s])))
        mk = lrn.prior.markout(d) + np.interp(d, centres, dev[s])
        p = -np.expm1(-rate * h)
        theta, kappa = max(float(coef[s, 0]), 0.0), max(float(coef[s, 1]), 0.0)
        pen = p * theta * usd
        zeros = np.zeros_like(d)
        b, c = (zeros, pen) if fit.model == "linear" else (pen, zeros)
        k = kappa * float(p.mean()) * usd if d.size else 0.0
        sides.append(SideCurves(p * mk * usd, b, c, p, k, name=name))
        rates.append(rate)
        mks.append(mk)
        thetas.append(theta)
        kappas.append(kappa)
    beta = 0.5 if fit.model == "linear" else fit.beta
    return PayoutCurves(sides[0], sides[1], beta, fit.model, (rates[0], rates[1]), (mks[0], mks[1]),
                        (thetas[0], thetas[1]), (kappas[0], kappas[1]), display)  # fmt: skip


def mean(lrn: PayoutLearner, db: ArrayLike, da: ArrayLike, *, mid_usd: float, horizon_s: float) -> PayoutCurves:
    """The posterior-mean curves at the value horizon."""
    post = posteriors(lrn)[lrn._horizon_index(None)]
    lam = float(display_posterior(lrn)[0][0])
    return curves(lrn, db, da, mid_usd, horizon_s, post.rate_shape / post.rate_rate, post.dev_mean, post.coef, post,
                  lam)  # fmt: skip


def sample(
    lrn: PayoutLearner, rng: np.random.Generator, db: ArrayLike, da: ArrayLike, *, mid_usd: float, horizon_s: float
) -> PayoutCurves:
    """One posterior draw of the curves at the value horizon (the draws in the compiled path's order)."""
    post = posteriors(lrn)[lrn._horizon_index(None)]
    ratio = rng.gamma(post.rate_shape, 1.0 / post.rate_rate)
    tau = rng.gamma(post.dev_alpha, 1.0 / post.dev_beta)
    dev = post.dev_mean + rng.standard_normal(post.dev_mean.shape) / np.sqrt(post.dev_kappa * tau)
    coef = np.empty((2, 2))
    for s in range(2):
        lchol = np.linalg.cholesky(post.coef_cov[s] + 1e-300 * np.eye(2))
        coef[s] = post.coef[s] + lchol @ rng.standard_normal(2)
    dmean, dcov, _, _ = display_posterior(lrn)
    lam = float(dmean[0] + math.sqrt(max(dcov[0, 0], 0.0)) * rng.standard_normal())
    return curves(lrn, db, da, mid_usd, horizon_s, ratio, dev, coef, post, lam)


def update(lrn: PayoutLearner, obs: LevelObservations) -> UpdateReport:
    """:meth:`PayoutLearner.update` in NumPy (mutates ``lrn``; its posterior cache is cleared)."""
    cfg = lrn.config
    post = posteriors(lrn) if obs.n_fills else []
    decay = 1.0 if math.isinf(cfg.half_life_s) else 2.0 ** (-obs.duration_s / cfg.half_life_s)
    if decay != 1.0:
        for arr in lrn.state.values():
            arr *= decay
    st = lrn.state
    ok = (
        np.isfinite(obs.rest_depth_bps)
        & np.isfinite(obs.rest_size_coins)
        & np.isfinite(obs.rest_time_s)
        & (obs.rest_size_coins >= 0)
        & (obs.rest_time_s >= 0)
    )
    r_skip = int(np.count_nonzero(~ok))
    si = _side_index(obs.rest_side[ok])
    depth = obs.rest_depth_bps[ok]
    j = cfg.bucket_of(depth)
    coin_s = obs.rest_size_coins[ok] * obs.rest_time_s[ok]
    np.add.at(st["exposure_coin_s"], (si, j), coin_s)
    np.add.at(st["prior_expected_coins"], (si, j), coin_s * prior_rate(lrn, depth))
    np.add.at(st["rest_size_coin_s"], (si, j), coin_s * obs.rest_size_coins[ok])
    fok = (
        np.isfinite(obs.fill_depth_bps)
        & np.isfinite(obs.fill_size_coins)
        & np.isfinite(obs.fill_price_usd)
        & (obs.fill_size_coins > 0)
        & (obs.fill_price_usd > 0)
    )
    f_skip = int(np.count_nonzero(~fok))
    fsi = _side_index(obs.fill_side[fok])
    fdepth = obs.fill_depth_bps[fok]
    fj = cfg.bucket_of(fdepth)
    y = obs.fill_size_coins[fok]
    np.add.at(st["filled_coins"], (fsi, fj), y)
    np.add.at(st["fill_count"], (fsi, fj), 1.0)
    np.add.at(st["fill_size_sum"], (fsi, fj), y)
    np.add.at(st["fill_size_sq_sum"], (fsi, fj), y * y)
    osz = obs.fill_order_size_coins[fok]
    osz = np.where(np.isfinite(osz) & (osz > 0), osz, y)
    tot = obs.fill_side_total_coins[fok]
    missing = ~(np.isfinite(tot) & (tot >= 0))
    tot = np.where(missing, osz, tot)
    lrn.counters["side_totals_missing"] += int(np.count_nonzero(missing))
    xg = osz[:, None] ** np.asarray(cfg.beta_grid)[None, :]
    mk_skip = 0
    wins = 0
    mu0 = lrn.prior.markout(fdepth)
    for h in range(len(cfg.markout_horizons_s)):
        mk = obs.fill_markout_usd[fok, h] / obs.fill_price_usd[fok] * 1e4
        good = np.isfinite(mk)
        mk_skip += int(np.count_nonzero(~good))
        if not good.any():
            continue
        s_, j_, x_, t_ = fsi[good], fj[good], xg[good], tot[good]
        dev = mk[good] - mu0[good]
        k = cfg.huber_k
        n_w = 0
        if not math.isinf(k):
            g = cfg.beta_grid.index(post[h].fit.beta)
            pred = post[h].dev_mean[s_, j_] - post[h].coef[s_, 0] * x_[:, g] - post[h].coef[s_, 1] * t_
            scale = np.sqrt(post[h].dev_beta[s_, j_] / post[h].dev_alpha[s_, j_])
            clipped = np.clip(dev, pred - k * scale, pred + k * scale)
            n_w = int(np.count_nonzero(clipped != dev))
            dev = clipped
        wins += n_w
        idx = (s_, h, j_)
        np.add.at(st["mk_w"], idx, 1.0)
        np.add.at(st["mk_y"], idx, dev)
        np.add.at(st["mk_yy"], idx, dev * dev)
        np.add.at(st["mk_t"], idx, t_)
        np.add.at(st["mk_tt"], idx, t_ * t_)
        np.add.at(st["mk_ty"], idx, t_ * dev)
        np.add.at(st["mk_x"], idx, x_)
        np.add.at(st["mk_xx"], idx, x_ * x_)
        np.add.at(st["mk_xy"], idx, x_ * dev[:, None])
        np.add.at(st["mk_xt"], idx, x_ * t_[:, None])
    if obs.drift_dt_s.size:
        dt = obs.drift_dt_s
        dok = (np.isfinite(dt) & (dt > 0) & np.isfinite(obs.drift_bps) & np.isfinite(obs.drift_display_coins)
               & np.isfinite(obs.drift_position_coins))  # fmt: skip
        r_skip += int(np.count_nonzero(~dok))
        if dok.any():
            x = np.stack([obs.drift_display_coins[dok] * dt[dok], obs.drift_position_coins[dok] * dt[dok]], 1)
            yd, w = obs.drift_bps[dok], 1.0 / dt[dok]
            st["dr_xx"] += (x * w[:, None]).T @ x
            st["dr_xy"] += (x * w[:, None]).T @ yd
            st["dr_yy"] += float(np.sum(w * yd * yd))
            st["dr_n"] += float(np.count_nonzero(dok))
    lrn.counters["resting_skipped"] += r_skip
    lrn.counters["fills_skipped"] += f_skip
    lrn.counters["markouts_skipped"] += mk_skip
    lrn.counters["markouts_winsorised"] += wins
    lrn.clock_s += float(obs.duration_s)
    lrn.n_updates += 1
    lrn.invalidate()
    return UpdateReport(int(ok.sum()), r_skip, int(fok.sum()), f_skip, mk_skip, wins, decay)


def allocate_both(alloc: Any, bid: Any, ask: Any, ctx: Any, rng: np.random.Generator) -> Any:
    """:meth:`LearnedAllocator.allocate_both` on the NumPy curves and the Python solve wrapper."""
    from ..allocate._learned import LearnedAllocation, _level_curves, _result

    t0 = time.perf_counter_ns()
    learner = alloc._learner_for(ctx)
    tau = ctx.interval_s if ctx.interval_s is not None and ctx.interval_s > 0 else alloc.interval_s
    db, da = bid.curves.depth_bps, ask.curves.depth_bps
    mid = ctx.mid_usd
    if alloc.sampling == "thompson":
        cv = sample(learner, rng, db, da, mid_usd=mid, horizon_s=tau)
    else:
        cv = mean(learner, db, da, mid_usd=mid, horizon_s=tau)
    gamma = ctx.risk_aversion if alloc.risk_aversion is None else alloc.risk_aversion
    hold = ctx.horizon_s if alloc.hold_s is None else alloc.hold_s
    kappa = 0.5 * gamma * ctx.sigma_usd_per_sqrt_s**2 * hold
    q = ctx.inventory_coins
    cv = with_display_cost(cv, q, tau, mid)
    lot = float(bid.lot_coins)
    args = (bid.budget_coins, ask.budget_coins, bid.caps_coins, ask.caps_coins, q, kappa, cv.beta, lot,
            bid.min_size_coins, ask.min_size_coins)  # fmt: skip
    sol = solve_two_sided(cv.bid, cv.ask, *args)
    diag: dict[str, float | int | bool | str] = {
        "coupling_usd_per_coin": sol.coupling,
        "inventory_risk_usd": sol.inventory_risk_usd,
        "size_penalty_usd": sol.size_penalty_usd + sol.impact_usd,
        "objective_usd": sol.objective_usd,
        "expected_position_coins": sol.expected_position_coins,
        "size_model": cv.model,
        "beta": cv.beta,
        "theta_bps": max(cv.theta_bps),
        "kappa_bps": max(cv.kappa_bps),
        "interval_s": tau,
        "learner_fills": float(learner.state["fill_count"].sum()),
        "display_bps_per_coin_s": cv.display_bps_per_coin_s,
        "discrete_gap_usd": sol.discrete_gap_usd,
    }
    if alloc.sampling == "thompson" and alloc.sampling_cost:
        mc = with_display_cost(mean(learner, db, da, mid_usd=mid, horizon_s=tau), q, tau, mid)
        best = solve_two_sided(mc.bid, mc.ask, *args[:6], mc.beta, *args[7:])
        parts = split_objective(mc.bid, mc.ask, sol.bid, sol.ask, q=q, kappa=kappa, beta=mc.beta)
        diag["sampling_cost_usd"] = best.objective_usd - float(parts["objective_usd"])
    diag["solve_ns"] = time.perf_counter_ns() - t0
    out = []
    for side, prob, sc, sizes, lam, binding, mk in (
        ("bid", bid, cv.bid, sol.bid, sol.bid_shadow_price, sol.bid_binding, cv.markout_bps[0]),
        ("ask", ask, cv.ask, sol.ask, sol.ask_shadow_price, sol.ask_binding, cv.markout_bps[1]),
    ):
        lc = _level_curves(prob.curves, sc, mk, mid, cv.beta, cv.model)
        out.append((_result(side, prob, lc, sizes, lam, binding, sol.message, diag), lc))
    return LearnedAllocation(out[0][0], out[1][0], out[0][1], out[1][1])


def with_display_cost(cv: PayoutCurves, q: float, tau: float, mid: float) -> PayoutCurves:
    """``cv`` with the display's cost taken off the edges of the side it hurts."""
    g = q * float(cv.display_bps_per_coin_s) * tau * mid * 1e-4
    if g == 0.0:
        return cv
    out = []
    for sc, sign in ((cv.bid, 1.0), (cv.ask, -1.0)):
        cost = min(0.0, sign * g)
        out.append(SideCurves(sc.a + cost, sc.b, sc.c, sc.p, sc.k, name=sc.name) if cost < 0.0 else sc)
    return dataclasses.replace(cv, bid=out[0], ask=out[1])


__all__ = ["allocate_both", "curves", "display_posterior", "mean", "posteriors", "sample", "size_fits", "update"]
