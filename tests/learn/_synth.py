"""A seeded generator of venue observations from a known payout model, and the prior the tests start from.

Each level rests ``size`` coins at ``depth`` for the whole interval; fills arrive as a Poisson process at rate
``rate(δ)`` per second and take the whole order (so the filled coins per resting coin-second are ``rate``);
each fill's markout at horizon ``H`` is ``markout(δ) - θ·s^β - κ·S`` bps plus Student-t noise of scale
``noise_bps·√(H/5)`` (``S`` the side's total).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hyper_make.learn import LearnerConfig, LearnerPrior, LevelObservations, PayoutLearner


@dataclass(frozen=True)
class TrueModel:
    rate: Callable[[np.ndarray], np.ndarray]  # 1/s, per resting coin-second
    markout: Callable[[np.ndarray], np.ndarray]  # bps, at zero size
    theta_bps: float = 0.0
    beta: float = 1.0
    kappa_bps: float = 0.0
    noise_bps: float = 8.0
    tail_dof: float = np.inf  # Student-t degrees of freedom of the noise (inf = Gaussian)


def interval(
    rng: np.random.Generator,
    model: TrueModel,
    depths: np.ndarray,
    sizes: np.ndarray,
    *,
    duration_s: float = 2.0,
    mid_usd: float = 100_000.0,
    horizons_s: tuple[float, ...] = (1.0, 5.0, 30.0),
) -> LevelObservations:
    """One interval with the same ladder on both sides (``depths``, ``sizes`` per level)."""
    n = depths.size
    side = np.concatenate((np.ones(n, np.int8), -np.ones(n, np.int8)))
    d = np.concatenate((depths, depths))
    s = np.concatenate((sizes, sizes))
    total = np.full(2 * n, sizes.sum())
    counts = rng.poisson(model.rate(d) * duration_s)
    idx = np.repeat(np.arange(2 * n), counts)
    fd, fs, ft, fside = d[idx], s[idx], total[idx], side[idx]
    price = mid_usd * (1 - fside * fd * 1e-4)
    mean = model.markout(fd) - model.theta_bps * fs**model.beta - model.kappa_bps * ft
    h = np.asarray(horizons_s)
    if np.isinf(model.tail_dof):
        eps = rng.standard_normal((idx.size, h.size))
    else:
        eps = rng.standard_t(model.tail_dof, (idx.size, h.size))
    mk_bps = mean[:, None] + model.noise_bps * np.sqrt(h / 5.0)[None, :] * eps
    return LevelObservations(
        duration_s=duration_s,
        rest_side=side,
        rest_depth_bps=d,
        rest_size_coins=s,
        rest_time_s=np.full(2 * n, duration_s),
        fill_side=fside,
        fill_depth_bps=fd,
        fill_size_coins=fs,
        fill_price_usd=price,
        fill_markout_usd=mk_bps * price[:, None] * 1e-4,
        horizons_s=horizons_s,
        fill_order_size_coins=fs,
        fill_side_total_coins=ft,
    )


HZ = (1.0, 5.0, 30.0)


def prior_rate(d):
    return 0.5 * np.exp(-0.3 * np.asarray(d, dtype=float))


def prior_markout(d):
    d = np.asarray(d, dtype=float)
    return d - 1.5 - 3.0 * np.exp(-d / 8.0)


def make_prior(sd: float = 8.0) -> LearnerPrior:
    grid = np.linspace(0.0, 300.0, 601)
    return LearnerPrior(depth_bps=grid, rate_per_s=prior_rate(grid), markout_bps=prior_markout(grid), markout_sd_bps=sd)


def learner(**kw: object) -> PayoutLearner:
    return PayoutLearner(LearnerConfig(**kw), make_prior())


DEPTHS = np.array([0.5, 1.5, 2.5, 4.0, 6.5, 10.0, 15.0, 22.0, 33.0, 50.0])
SIZES = np.full(DEPTHS.size, 0.01)


def truth() -> TrueModel:
    # the prior is wrong: the touch fills 3x more often than it thinks, deep levels half as often, and every
    # fill is worth 5 bps more (the "wrong sign at the touch")
    return TrueModel(
        rate=lambda d: prior_rate(d) * np.where(d < 5, 3.0, 0.5),
        markout=lambda d: prior_markout(d) + 5.0,
        noise_bps=4.0,
    )
