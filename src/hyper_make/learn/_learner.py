r"""The payout learner: per side and depth bucket, what a resting coin earns, learned from our own fills.

Model (per side, depth bucket ``j`` of the level's depth δ, markout horizon ``H``)
---------------------------------------------------------------------------------
**Fill rate.** A coin resting at δ is filled at rate ``ρ(δ) = ρ0(δ)·r_j`` (filled coins per resting coin-second,
1/s), ``ρ0`` the prior's curve and ``r_j`` the bucket's ratio to it. The filled coins ``X`` over an exposure of
``E`` coin-seconds are a compound Poisson count: fills of size ``Y`` arriving at rate ``ρE/E[Y]``, so that
``X/φ`` with ``φ = E[Y²]/E[Y]`` (the size-weighted mean fill size) is Poisson with mean ``ρE/φ`` to first and
second moment (quasi-Poisson). With the conjugate prior ``r_j ~ Gamma(n0, n0)`` (mean 1, strength ``n0 =
prior_fills`` pseudo-fills) the posterior is::

    r_j ~ Gamma(n0 + X̃_j/φ,  n0 + Ẽ0_j/φ),      Ẽ0_j = Σ coin-seconds × ρ0(δ)   (the prior's expected fills)

**Markout per filled coin** (bps of the fill price, net of fees), for a fill of an order of size ``s`` when the
side rests ``S`` in total::

    m = μ0(δ) + d_j - θ·s^β - κ·S + ε,       ε ~ N(0, σ_j²)

``d_j`` is the bucket's deviation from the prior, ``θ·s^β`` the size penalty (bps per coin^β; RFC step 1's
``c·σ·(s/V)^β`` with ``c = θ / (σ_bps·V^-β)``), ``κ·S`` how value per coin falls with the side's total (bps per
coin). ``(θ, κ)`` are one pair per side, fitted by least squares with bucket fixed effects and a ridge of
``n0`` pseudo-fills at ``size_ref_coins`` / ``side_ref_coins``; β by profile likelihood over ``beta_grid``,
pooled over both sides (one β per market). The learner reports whether ``β = 0.5`` (square root) or ``β = 1``
(linear) fits better by log-likelihood and AIC. Given ``(θ, κ)``, each bucket's ``(d_j, σ_j²)`` has the conjugate
Normal–Gamma posterior on the size-adjusted markouts (prior ``d ~ N(0, σ²/n0)``, ``1/σ² ~ Gamma(ν0/2,
ν0·s0²/2)``), whose marginal for ``d_j`` is a Student-t: the posterior is heavy-tailed where data are few.

**Why this is robust to fat tails.** A short-horizon markout is mostly noise (~8 bps per 30 s fill against an
edge of a fraction of a bp) with jumps and sweeps in its tails; a Gaussian mean lets one jump move a bucket by
``jump / n``. Each markout is first *winsorised* to the bucket's current prediction ± ``huber_k`` noise sds (a
Huber-type M-estimate, bounded influence per fill), then enters the conjugate statistics, so updates stay
O(1), sampling stays exact for the (winsorised) posterior, and the prior's pseudo-fills shrink every bucket
toward the calibrated curve until the data outweigh it.

**Pooling across depth.** Each bucket's statistics are kernel-weighted sums of its own and its neighbours'
(``exp(-½(Δj/w)²)``, ``w = pool_width_buckets``): a local-likelihood estimate of the deviation from the prior
curve (the ratio ``r`` and the markout deviation ``d``), so a deep, rarely filled bucket borrows the shape of its
neighbours' deviation instead of being a guess, while the prior supplies the depth profile itself.

Each fill is one observation of the markout, whatever its size: its noise is the price's move, which does not
shrink with the size, and what the size does to the mean is the ``θ·s^β`` term. Fills of one sweep are treated
as independent (their noise is not: a limitation that makes the posterior somewhat too confident after sweeps).

**Forgetting.** Every data statistic decays by ``2^(-Δt/half_life_s)`` as the venue's clock advances; the prior
does not, so without new data the posterior returns to it.

Curves (for the two-sided solver)
---------------------------------
For level depths δ_i and a quote horizon ``h``: ``p_i = 1 - exp(-ρ(δ_i)·h)`` (the expected filled fraction),
``a_i = p_i·m(δ_i)·mid/1e4`` (USD/coin, ``m`` at zero size), the size penalty as ``b_i = p_i·θ·mid/1e4``
(USD/coin^(1+β)) or, when the linear model is chosen, ``c_i = p_i·θ·mid/1e4`` (USD/coin²), and the side-total
penalty ``k = κ·mean(p)·mid/1e4`` (USD/coin²; the exact ``κ·S·Σ p_i s_i`` with ``p`` replaced by its mean,
which keeps the problem concave). Bucket parameters are interpolated between bucket centres (the ratio in log).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validate import check_real
from ..allocate._twosided import SideCurves
from ..errors import InvalidParameterError
from ._config import LearnerConfig, LearnerPrior
from ._kernels import (
    MODE_CODES,
    MODEL_LINEAR,
    MODEL_NAMES,
    draw_kernel,
    post_shapes,
    posterior_kernel,
    rates_and_fill_probs,
    side_curves_kernel,
    state_sizes,
    update_kernel,
)
from ._obs import LevelObservations

SIDES = ("bid", "ask")

#: State arrays and their shapes in terms of (2 sides, H horizons, J buckets, G exponents).
STATE_SHAPES: dict[str, tuple[str, ...]] = {
    "exposure_coin_s": ("side", "bucket"),
    "prior_expected_coins": ("side", "bucket"),
    "filled_coins": ("side", "bucket"),
    "fill_count": ("side", "bucket"),
    "rest_size_coin_s": ("side", "bucket"),
    "fill_size_sum": ("side", "bucket"),
    "fill_size_sq_sum": ("side", "bucket"),
    "mk_w": ("side", "horizon", "bucket"),
    "mk_y": ("side", "horizon", "bucket"),
    "mk_yy": ("side", "horizon", "bucket"),
    "mk_t": ("side", "horizon", "bucket"),
    "mk_tt": ("side", "horizon", "bucket"),
    "mk_ty": ("side", "horizon", "bucket"),
    "mk_x": ("side", "horizon", "bucket", "beta"),
    "mk_xx": ("side", "horizon", "bucket", "beta"),
    "mk_xy": ("side", "horizon", "bucket", "beta"),
    "mk_xt": ("side", "horizon", "bucket", "beta"),
    # the display drift: Σ x·xᵀ/dt, Σ x·y/dt, Σ y²/dt and the count of the regression y = λ·D·dt + ψ·q·dt + ε
    "dr_xx": ("reg", "reg"),
    "dr_xy": ("reg",),
    "dr_yy": ("one",),
    "dr_n": ("one",),
}
#: Arrays that hold sums of non-negative quantities (checked when a state file is read).
NONNEGATIVE = {"exposure_coin_s", "prior_expected_coins", "filled_coins", "fill_count", "rest_size_coin_s",
               "fill_size_sum", "fill_size_sq_sum", "mk_w", "mk_yy", "mk_t", "mk_tt", "mk_x", "mk_xx", "mk_xt",
               "dr_yy", "dr_n"}  # fmt: skip
COUNTERS = ("resting_skipped", "fills_skipped", "markouts_skipped", "side_totals_missing", "markouts_winsorised")


def pooling_kernel(n_buckets: int, width_buckets: float) -> NDArray[np.float64]:
    """``K[j, k] = exp(-½((j - k)/w)²)`` (identity for ``w = 0``), shape ``(J, J)``."""
    if width_buckets <= 0:
        return np.eye(n_buckets)
    d = np.arange(n_buckets)[:, None] - np.arange(n_buckets)[None, :]
    with np.errstate(over="ignore"):  # a width far below a bucket: (d/w)² overflows to inf, and exp(-inf) = 0
        return np.exp(-0.5 * (d / width_buckets) ** 2)


@dataclass(frozen=True, slots=True)
class UpdateReport:
    """What one :meth:`PayoutLearner.update` used and skipped (counts), and the decay applied."""

    resting_used: int
    resting_skipped: int
    fills_used: int
    fills_skipped: int
    markouts_skipped: int
    markouts_winsorised: int
    decay: float


@dataclass(frozen=True, slots=True)
class SizeFit:
    """The size penalty of one market at one markout horizon (see the module docstring).

    Attributes
    ----------
    beta : the exponent the curves use (from ``size_penalty``).
    model : ``"sqrt"``, ``"linear"`` or ``"power"``: how the curves carry it (``"linear"``: as ``c``).
    theta_bps : per side, θ (bps per coin^β) at ``beta``, the raw estimate (may be < 0; the curves use max(θ, 0)).
    theta_se_bps : its standard error.
    kappa_bps : per side, κ (bps per coin of the side's total); ``kappa_se_bps`` its standard error.
    loglik : per β of ``beta_grid``, the profile log-likelihood pooled over sides (NaN without enough fills).
    beta_hat : the β of the grid with the highest log-likelihood (NaN without enough fills).
    aic_sqrt, aic_linear : AIC of the square-root and the linear model (same parameter count, so the lower
        one has the higher likelihood); NaN without enough fills.
    preferred : ``"sqrt"``, ``"linear"`` or ``"undecided"`` (AIC difference below 2, or too few fills).
    n_fills : effective (decayed) number of fills in the fit, per side.
    """

    beta: float
    model: Literal["sqrt", "linear", "power"]
    theta_bps: tuple[float, float]
    theta_se_bps: tuple[float, float]
    kappa_bps: tuple[float, float]
    kappa_se_bps: tuple[float, float]
    loglik: dict[float, float]
    beta_hat: float
    aic_sqrt: float
    aic_linear: float
    preferred: str
    n_fills: tuple[float, float]

    def impact_coefficient(self, side: str, sigma_h_bps: float, volume_coins: float) -> float:
        """``c`` of RFC step 1's ``c·σ_h·(s/V)^β`` (dimensionless) from θ: ``c = θ·V^β / σ_h`` (σ_h in bps of
        price over the markout horizon, V the volume at the level's depth over it, coins)."""
        i = SIDES.index(side)
        return self.theta_bps[i] * volume_coins**self.beta / sigma_h_bps

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "beta": self.beta,
            "model": self.model,
            "theta_bps": dict(zip(SIDES, self.theta_bps, strict=True)),
            "theta_se_bps": dict(zip(SIDES, self.theta_se_bps, strict=True)),
            "kappa_bps": dict(zip(SIDES, self.kappa_bps, strict=True)),
            "kappa_se_bps": dict(zip(SIDES, self.kappa_se_bps, strict=True)),
            "loglik": {f"{b:g}": v for b, v in self.loglik.items()},
            "beta_hat": self.beta_hat,
            "aic_sqrt": self.aic_sqrt,
            "aic_linear": self.aic_linear,
            "preferred": self.preferred,
            "n_fills": dict(zip(SIDES, self.n_fills, strict=True)),
        }


@dataclass(frozen=True, slots=True, eq=False)
class _Posterior:
    """Posterior parameters at one horizon (arrays over (side, bucket)), the size fit, the fill unit per side."""

    rate_shape: NDArray[np.float64]
    rate_rate: NDArray[np.float64]
    dev_kappa: NDArray[np.float64]
    dev_mean: NDArray[np.float64]
    dev_alpha: NDArray[np.float64]
    dev_beta: NDArray[np.float64]
    coef: NDArray[np.float64]  # (side, 2): θ, κ at the chosen β
    coef_cov: NDArray[np.float64]  # (side, 2, 2)
    fit: SizeFit


@dataclass(frozen=True, slots=True, eq=False)
class PayoutCurves:
    """Both sides' curves for :func:`~hyper_make.allocate._twosided.allocate_two_sided` (pass ``bid``, ``ask``,
    ``beta``), with the per-level rates and markouts behind them.

    Attributes
    ----------
    bid, ask : :class:`SideCurves` (``a`` USD/coin, ``b`` USD/coin^(1+β), ``c`` USD/coin², ``p``, ``k`` USD/coin²).
    beta : the size penalty's exponent for ``b``.
    model : the size model the curves carry (``"sqrt"``, ``"linear"``, ``"power"``).
    rate_per_s : per side, the fill rate per resting coin-second at each level (1/s).
    markout_bps : per side, the markout per filled coin at zero size at each level (bps, net of fees).
    theta_bps, kappa_bps : per side, the size and side-total slopes used (bps per coin^β, bps per coin), ``>= 0``.
    display_bps_per_coin_s : λ used, the mid's drift per coin of net displayed size (bps/s per coin; see
        :class:`DisplayFit`).
    """

    bid: SideCurves
    ask: SideCurves
    beta: float
    model: str
    rate_per_s: tuple[NDArray[np.float64], NDArray[np.float64]]
    markout_bps: tuple[NDArray[np.float64], NDArray[np.float64]]
    theta_bps: tuple[float, float]
    kappa_bps: tuple[float, float]
    display_bps_per_coin_s: float = 0.0


@dataclass(frozen=True, slots=True)
class DisplayFit:
    """The market's reaction to the size we show: ``mid drift (bps/s) = λ·display + ψ·position + noise``.

    Attributes
    ----------
    lambda_bps_per_coin_s : λ, the mid's drift per coin of net displayed size (bids minus asks), bps per second
        per coin (> 0: the price moves away from the side we show, as front-runners push it); ``lambda_se`` its se.
    psi_bps_per_coin_s : ψ, the drift per coin of our position (bps/s per coin; < 0: the price moves against what
        we hold, e.g. informed flow continuing after it filled us), the control that keeps λ from absorbing it;
        ``psi_se`` its se.
    noise_bps2_per_s : the residual variance of the mid per second (bps²/s).
    intervals : (decayed) number of refresh intervals in the fit.
    """

    lambda_bps_per_coin_s: float
    lambda_se: float
    psi_bps_per_coin_s: float
    psi_se: float
    noise_bps2_per_s: float
    intervals: float

    def to_dict(self) -> dict[str, float]:
        """JSON-ready summary."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True, slots=True)
class BucketDiagnostics:
    """One side's posterior per depth bucket (arrays of shape ``(n_buckets,)``).

    Attributes
    ----------
    depth_lo_bps, depth_hi_bps : bucket edges (bps).
    exposure_coin_s, filled_coins, fills : the (decayed) data behind it: resting coin-seconds, filled coins,
        number of fills.
    rate_mean_per_s, rate_lo_per_s, rate_hi_per_s : fill rate per resting coin-second at the bucket's centre
        (1/s): posterior mean and equal-tailed interval.
    markout_mean_bps, markout_lo_bps, markout_hi_bps : markout per filled coin at zero size and side total
        (bps, net of fees) at the centre: posterior mean and interval (Student-t).
    """

    depth_lo_bps: NDArray[np.float64]
    depth_hi_bps: NDArray[np.float64]
    exposure_coin_s: NDArray[np.float64]
    filled_coins: NDArray[np.float64]
    fills: NDArray[np.float64]
    rate_mean_per_s: NDArray[np.float64]
    rate_lo_per_s: NDArray[np.float64]
    rate_hi_per_s: NDArray[np.float64]
    markout_mean_bps: NDArray[np.float64]
    markout_lo_bps: NDArray[np.float64]
    markout_hi_bps: NDArray[np.float64]

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready columns."""
        return {f.name: getattr(self, f.name).tolist() for f in dataclasses.fields(self)}


@dataclass(frozen=True, slots=True)
class LearnerDiagnostics:
    """Posterior summaries of one learner at one markout horizon (see :meth:`PayoutLearner.diagnostics`)."""

    coin: str
    horizon_s: float
    level: float
    bid: BucketDiagnostics
    ask: BucketDiagnostics
    size_fit: SizeFit
    fill_unit_coins: tuple[NDArray[np.float64], NDArray[np.float64]]
    display_fit: DisplayFit
    clock_s: float
    n_updates: int
    counters: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "coin": self.coin,
            "horizon_s": self.horizon_s,
            "interval_level": self.level,
            "bid": self.bid.to_dict(),
            "ask": self.ask.to_dict(),
            "size_fit": self.size_fit.to_dict(),
            "fill_unit_coins": {s: v.tolist() for s, v in zip(SIDES, self.fill_unit_coins, strict=True)},
            "display_fit": self.display_fit.to_dict(),
            "clock_s": self.clock_s,
            "n_updates": self.n_updates,
            "counters": dict(self.counters),
        }


def _side_index(side: NDArray[np.int8]) -> NDArray[np.intp]:
    """+1 (bid) → 0, -1 (ask) → 1."""
    return (side < 0).astype(np.intp)


_EMPTY = np.zeros(0)
_EMPTY2 = np.zeros((0, 1))


_NO_DRIFT = np.zeros(8)


def _drift_sums(
    dt: NDArray[np.float64], y: NDArray[np.float64], disp: NDArray[np.float64], pos: NDArray[np.float64]
) -> tuple[NDArray[np.float64], int]:
    """The display regression's sums over several rows, by NumPy (``[Σxxᵀ, Σxy, Σy², rows]``, see
    :func:`~hyper_make.learn._kernels.update_kernel`), and the number of rows skipped."""
    dok = np.isfinite(dt) & (dt > 0) & np.isfinite(y) & np.isfinite(disp) & np.isfinite(pos)
    n_bad = int(np.count_nonzero(~dok))
    out = np.zeros(8)
    if dok.any():
        x = np.stack([disp[dok] * dt[dok], pos[dok] * dt[dok]], 1)
        yd, w = y[dok], 1.0 / dt[dok]
        out[0:4] = ((x * w[:, None]).T @ x).ravel()
        out[4:6] = (x * w[:, None]).T @ yd
        out[6] = float(np.sum(w * yd * yd))
        out[7] = float(np.count_nonzero(dok))
    return out, n_bad


class _PostArrays:
    """Every horizon's posterior of one learner state, from :func:`~hyper_make.learn._kernels.posterior_kernel`:
    named views of one packed buffer (layout :data:`~hyper_make.learn._kernels.POST_LAYOUT`; ``w_*`` are per
    horizon ``(H, 2, ...)``). The arrays are the learner's own, rewritten after each update: what :meth:`at`
    returns is valid until then."""

    def __init__(self, lrn: PayoutLearner) -> None:
        """The output buffer of one learner and its views, made once: :meth:`compute` overwrites them."""
        cfg = lrn.config
        self.dims = (len(cfg.markout_horizons_s), cfg.n_buckets, len(cfg.beta_grid))
        shapes = post_shapes(*self.dims)
        self.out = np.zeros(sum(math.prod(sh) for _, sh in shapes))
        o = 0
        views = {}
        for name, sh in shapes:
            n = math.prod(sh)
            views[name] = self.out[o : o + n].reshape(sh)
            o += n
        self.phi, self.rate_shape, self.rate_rate = views["phi"], views["rate_shape"], views["rate_rate"]
        self.inv_rate_rate, self.log_mean_ratio = views["inv_rate_rate"], views["log_mean_ratio"]
        self.w_kap, self.w_mean, self.w_alpha, self.w_beta = (
            views[k] for k in ("w_kap", "w_mean", "w_alpha", "w_beta")
        )
        self.inv_dev_beta = views["inv_dev_beta"]
        self.theta, self.kappa, self.a11, self.a12, self.a22, self.det, self.sig2 = views["fit"]
        self.ll, self.n_fit, self.chosen, self.best = views["ll"], views["n_fit"], views["chosen"], views["best"]
        self.model, self.model_beta, self.aic = views["model"], views["model_beta"], views["aic"]
        self.w_coef, self.w_cov, self.disp, self.misc = views["coef"], views["cov"], views["disp"], views["misc"]
        self.fills_total = 0.0
        # per horizon: the views a draw reads, and the Gamma shapes and scales of its variates (made once: a view
        # costs as much as the arithmetic it would feed)
        nh = self.dims[0]
        self.h_views = [(self.w_kap[h], self.w_mean[h], self.w_cov[h], self.w_coef[h]) for h in range(nh)]
        self.gamma_in = [(views["gamma_in"][h, 0], views["gamma_in"][h, 1]) for h in range(nh)]
        self.models: list[tuple[int, float]] = []

    def compute(self, lrn: PayoutLearner) -> None:
        """Every horizon's posterior of ``lrn``'s state, into the arrays (one kernel call)."""
        cfg = lrn.config
        posterior_kernel(
            lrn._state_buffer(), *self.dims, lrn._kernel, lrn._ridge_x, lrn._ridge_t, lrn._ridge_d,
            float(cfg.prior_fills), float(cfg.prior_noise_dof), float(lrn.prior.markout_sd_bps), lrn._s0_display,
            float(cfg.size_ref_coins), lrn._mode, lrn._g_sqrt, lrn._g_lin, lrn._grid, self.out,
        )  # fmt: skip
        np.log(self.log_mean_ratio, out=self.log_mean_ratio)  # NumPy's log, as the reference takes it
        self.fills_total = float(self.misc[0])
        self.models = [(int(m), float(b)) for m, b in zip(self.model, self.model_beta, strict=True)]

    def at(self, h: int, cfg: LearnerConfig) -> _Posterior:
        """The posterior at horizon ``h`` with its :class:`SizeFit`."""
        grid = cfg.beta_grid
        g, b = int(self.chosen[h]), int(self.best[h])
        ll = self.ll[h]
        a_s, a_l = float(self.aic[h, 0]), float(self.aic[h, 1])
        if math.isnan(a_s) or math.isnan(a_l) or abs(a_s - a_l) < 2.0:
            preferred = "undecided"
        else:
            preferred = "sqrt" if a_s < a_l else "linear"
        model = MODEL_NAMES[self.models[h][0]]
        se_t = np.sqrt(np.maximum(self.a22[:, h, g] / self.det[:, h, g] * self.sig2[:, h, g], 0.0))
        se_k = np.sqrt(np.maximum(self.a11[:, h, g] / self.det[:, h, g] * self.sig2[:, h, g], 0.0))
        fit = SizeFit(
            beta=float(grid[g]),
            model=model,  # type: ignore[arg-type]
            theta_bps=(float(self.theta[0, h, g]), float(self.theta[1, h, g])),
            theta_se_bps=(float(se_t[0]), float(se_t[1])),
            kappa_bps=(float(self.kappa[0, h, g]), float(self.kappa[1, h, g])),
            kappa_se_bps=(float(se_k[0]), float(se_k[1])),
            loglik={float(bb): float(v) for bb, v in zip(grid, ll, strict=True)},
            beta_hat=float(grid[b]) if b >= 0 else float("nan"),
            aic_sqrt=a_s,
            aic_linear=a_l,
            preferred=preferred,
            n_fills=(float(self.n_fit[0, h]), float(self.n_fit[1, h])),
        )
        return _Posterior(self.rate_shape, self.rate_rate, self.w_kap[h], self.w_mean[h], self.w_alpha[h],
                          self.w_beta[h], self.w_coef[h], self.w_cov[h], fit)  # fmt: skip


@dataclass(eq=False)
class PayoutLearner:
    """Per-market posterior of what each level earns (see the module docstring); state is in :attr:`state`.

    ``update(obs)`` learns from one interval; ``mean(...)`` and ``sample(rng, ...)`` return the curves the
    two-sided solver takes; ``diagnostics()`` summarises; ``save(path)`` / ``PayoutLearner.load(path)`` persist.
    """

    config: LearnerConfig
    prior: LearnerPrior
    state: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    clock_s: float = 0.0
    n_updates: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.config, LearnerConfig):
            raise InvalidParameterError("'config' must be a LearnerConfig")
        if not isinstance(self.prior, LearnerPrior):
            raise InvalidParameterError("'prior' must be a LearnerPrior")
        dims = self._dims()
        for name, shape in STATE_SHAPES.items():
            want = tuple(dims[d] for d in shape)
            if name not in self.state:
                self.state[name] = np.zeros(want)
            elif self.state[name].shape != want:
                raise InvalidParameterError(
                    f"state array {name!r} must have shape {want}; got {self.state[name].shape}"
                )
        for c in COUNTERS:
            self.counters.setdefault(c, 0)
        cfg = self.config
        self._kernel = pooling_kernel(cfg.n_buckets, cfg.pool_width_buckets)
        grid = np.asarray(cfg.beta_grid)
        # the kernels' constants, with NumPy's own powers (numba's can differ in the last bit)
        self._grid = grid
        self._ridge_x = cfg.prior_fills * cfg.size_ref_coins ** (2 * grid)
        self._ridge_t = cfg.prior_fills * cfg.side_ref_coins**2
        self._ridge_d = cfg.display_prior_s * cfg.side_ref_coins**2
        self._s0_display = self.prior.markout_sd_bps**2 / cfg.value_horizon_s
        self._edges = np.asarray(cfg.bucket_edges_bps)
        self._centres = cfg.bucket_centres_bps
        self._mode = MODE_CODES[cfg.size_penalty]
        self._value_h = cfg.markout_horizons_s.index(cfg.value_horizon_s)
        self._g_sqrt, self._g_lin = cfg.beta_grid.index(0.5), cfg.beta_grid.index(1.0)
        self._pack()
        self._pa = _PostArrays(self)
        self._valid = False
        self._cache: dict[int, _Posterior] = {}

    def _dims(self) -> dict[str, int]:
        cfg = self.config
        return {"side": 2, "horizon": len(cfg.markout_horizons_s), "bucket": cfg.n_buckets,
                "beta": len(cfg.beta_grid), "reg": 2, "one": 1}  # fmt: skip

    def _pack(self) -> None:
        """Put the state arrays in one buffer (what the kernels read and update in place) and make the state's
        entries views of it, so that :attr:`state` stays the learner's state as before."""
        hz, nj, ng = len(self.config.markout_horizons_s), self.config.n_buckets, len(self.config.beta_grid)
        dims = self._dims()
        buf = np.empty(sum(state_sizes(hz, nj, ng)))
        o = 0
        views = {}
        for name, shape in STATE_SHAPES.items():
            want = tuple(dims[d] for d in shape)
            if name not in self.state:
                raise InvalidParameterError(f"state array {name!r} is missing (one of {list(STATE_SHAPES)})")
            arr = np.asarray(self.state[name], dtype=np.float64)
            if arr.shape != want:
                raise InvalidParameterError(f"state array {name!r} must have shape {want}; got {arr.shape}")
            n = math.prod(want)
            view = buf[o : o + n].reshape(want)
            view[...] = arr
            views[name] = view
            o += n
        self.state.clear()  # the same dict, in the layout's order
        self.state.update(views)
        self._buf = buf
        self._ids = tuple(id(self.state[name]) for name in STATE_SHAPES)

    def _state_buffer(self) -> NDArray[np.float64]:
        """The packed state; repacked first when an entry of :attr:`state` was replaced by another array (a copy,
        an unpickled learner)."""
        st = self.state
        if tuple(map(id, st.values())) != self._ids or len(st) != len(self._ids):
            for name in list(st):
                if name not in STATE_SHAPES:
                    raise InvalidParameterError(f"state array {name!r} is not one of {list(STATE_SHAPES)}")
            self._pack()
            self.invalidate()
        return self._buf

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
        self._pack()  # a copy's state arrays are no longer views of its buffer
        self._pa = _PostArrays(self)
        self._valid = False
        self._cache = {}

    def invalidate(self) -> None:
        """Forget the cached posterior (after the state was changed in place)."""
        self._valid = False
        self._cache.clear()

    # ---- learning -------------------------------------------------------------------------------------------
    def update(self, obs: LevelObservations) -> UpdateReport:
        """Forget by the interval's duration, then learn its resting exposure, fills and markouts.

        Non-finite or negative values are counted (in the report and :attr:`counters`) and skipped, never learned.
        One compiled kernel (:func:`~hyper_make.learn._kernels.update_kernel`); the state it leaves is the
        NumPy reference's bit for bit.
        """
        cfg = self.config
        if not isinstance(obs, LevelObservations):
            raise InvalidParameterError("'obs' must be a LevelObservations")
        if obs.horizons_s != cfg.markout_horizons_s:
            raise InvalidParameterError(
                f"'obs.horizons_s' {list(obs.horizons_s)} s must match the learner's markout_horizons_s "
                f"{list(cfg.markout_horizons_s)} s"
            )
        buf = self._state_buffer()
        win = obs.n_fills > 0 and not math.isinf(cfg.huber_k)
        # winsorising centres come from the posterior before this interval's fills
        post = self._posterior_arrays().out if win else self._pa.out
        decay = 1.0 if math.isinf(cfg.half_life_s) else 2.0 ** (-obs.duration_s / cfg.half_life_s)
        # the transcendental inputs by NumPy, as the reference computes them
        rate0 = self.prior.rate(obs.rest_depth_bps) if obs.n_resting else _EMPTY
        if obs.n_fills:
            fs = obs.fill_size_coins
            o = obs.fill_order_size_coins
            osz = np.where(np.isfinite(o) & (o > 0), o, fs)
            mu0 = self.prior.markout(obs.fill_depth_bps)
            xg = osz[:, None] ** self._grid[None, :]
        else:
            osz, mu0, xg = _EMPTY, _EMPTY, _EMPTY2
        drift = (obs.drift_dt_s, obs.drift_bps, obs.drift_display_coins, obs.drift_position_coins)
        pre = _NO_DRIFT
        if obs.drift_dt_s.size > 1:
            pre, n_bad = _drift_sums(*drift)
            drift = (_EMPTY, _EMPTY, _EMPTY, _EMPTY)
        counts = np.zeros(7, np.int64)
        update_kernel(
            decay, buf, *self._pa.dims, self._edges,
            obs.rest_side, obs.rest_depth_bps, obs.rest_size_coins, obs.rest_time_s, rate0,
            obs.fill_side, obs.fill_depth_bps, obs.fill_size_coins, obs.fill_price_usd,
            np.ascontiguousarray(obs.fill_markout_usd), osz, obs.fill_side_total_coins, mu0, xg,
            *drift, pre, float(cfg.huber_k), win, post, counts,
        )  # fmt: skip
        r_used, r_skip, f_used, f_skip, mk_skip, wins, missing = counts.tolist()
        if obs.drift_dt_s.size > 1:
            r_skip += n_bad
        self.counters["side_totals_missing"] += missing
        self.counters["resting_skipped"] += r_skip
        self.counters["fills_skipped"] += f_skip
        self.counters["markouts_skipped"] += mk_skip
        self.counters["markouts_winsorised"] += wins
        self.clock_s += float(obs.duration_s)
        self.n_updates += 1
        self.invalidate()
        return UpdateReport(r_used, r_skip, f_used, f_skip, mk_skip, wins, decay)

    # ---- the posterior --------------------------------------------------------------------------------------
    def fill_unit_coins(self) -> NDArray[np.float64]:
        """Per side and bucket, the quasi-Poisson unit ``φ = E[Y²]/E[Y]`` (coins): one fill of this size is one
        observation of the rate. From the fills' sizes, blended with ``prior_fills`` pseudo-fills of the orders
        resting there (their coin-second-weighted mean size, or ``size_ref_coins`` before anything rested): a
        fill that takes a whole order counts as one fill whatever the order's size."""
        return self._posterior_arrays().phi.copy()

    def _horizon_index(self, horizon_s: float | None) -> int:
        if horizon_s is None:
            return self._value_h
        hz = self.config.markout_horizons_s
        h = float(horizon_s)
        if h not in hz:
            raise InvalidParameterError(f"'markout_horizon_s' must be one of {list(hz)} s; got {horizon_s!r}")
        return hz.index(h)

    def _posterior_arrays(self) -> _PostArrays:
        """Every horizon's posterior (one kernel call), cached until the next update."""
        if not self._valid:
            self._pa.compute(self)
            self._valid = True
        return self._pa

    def _posterior(self, h: int) -> _Posterior:
        """The posterior at horizon index ``h`` with its :class:`SizeFit` (built on first use)."""
        post = self._cache.get(h)
        if post is None:
            post = self._cache[h] = self._posterior_arrays().at(h, self.config)
        return post

    def _display_posterior(self) -> tuple[NDArray[np.float64], NDArray[np.float64], float, float]:
        """Posterior mean and covariance of ``(λ, ψ)``, the noise variance (bps²/s) and the interval count: a
        ridge of ``display_prior_s`` seconds at a display (and position) of ``side_ref_coins``, mean 0."""
        d = self._posterior_arrays().disp
        cov = np.array([[d[2], d[3]], [d[7], d[4]]])
        return np.array([d[0], d[1]]), cov, float(d[5]), float(d[6])

    def display_fit(self) -> DisplayFit:
        """The fit of the mid's drift on our display and position (see :class:`DisplayFit`)."""
        beta, cov, s2, n = self._display_posterior()
        se = np.sqrt(np.maximum(np.diag(cov), 0.0))
        return DisplayFit(float(beta[0]), float(se[0]), float(beta[1]), float(se[1]), s2, n)

    # ---- curves ---------------------------------------------------------------------------------------------
    def draw(
        self, rng: np.random.Generator | None, markout_horizon_s: float | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float, int, float]:
        """The bucket parameters of one posterior draw (``rng``) or of the posterior mean (``None``).

        Returns ``(log ratio (2, J), deviation (2, J) bps, (θ, κ) (2, 2) per side, λ bps/s per coin, the size
        model code, its β)``. The variates are drawn here, with the reference's calls in its order: the rate
        ratios' Gammas, the noise precisions' Gammas, the deviations' Normals, each side's two slope Normals,
        the display slope's Normal.
        """
        pa = self._posterior_arrays()
        h = self._value_h if markout_horizon_s is None else self._horizon_index(markout_horizon_s)
        model, beta = pa.models[h]
        kap, mean, cov, coef0 = pa.h_views[h]
        if rng is None:
            return pa.log_mean_ratio, mean, coef0, float(pa.disp[0]), model, beta
        # the reference's calls (rate ratios' Gammas, precisions' Gammas, deviations' Normals, each side's slope
        # Normals, λ's Normal) as one Gamma and one Normal call: the same variates in the same order (rng.gamma(k, θ)
        # is θ·standard_gamma(k)), at a third of the calls' overhead
        shapes, scales = pa.gamma_in[h]
        g = rng.standard_gamma(shapes)
        g *= scales
        zn = rng.standard_normal(shapes.shape[0] // 2 + 5)
        dev = np.empty(mean.shape)
        coef = np.empty((2, 2))
        lam = draw_kernel(kap, mean, cov, coef0, pa.disp, g, zn, dev, coef)
        ratio = g[: shapes.shape[0] // 2].reshape(mean.shape)
        return np.log(ratio), dev, coef, float(lam), model, beta

    def mean(
        self,
        depth_bid_bps: ArrayLike,
        depth_ask_bps: ArrayLike,
        *,
        mid_usd: float,
        horizon_s: float,
        markout_horizon_s: float | None = None,
    ) -> PayoutCurves:
        """The posterior-mean curves at these level depths (bps) for a quote horizon (s); see the module docstring."""
        return self._curves(depth_bid_bps, depth_ask_bps, mid_usd, horizon_s, self.draw(None, markout_horizon_s))

    def sample(
        self,
        rng: np.random.Generator,
        depth_bid_bps: ArrayLike,
        depth_ask_bps: ArrayLike,
        *,
        mid_usd: float,
        horizon_s: float,
        markout_horizon_s: float | None = None,
    ) -> PayoutCurves:
        """Curves for one draw from the posterior (Thompson sampling); ``rng`` is the only source of randomness.

        Per bucket: the rate ratio from its Gamma, the noise precision from its Gamma and the markout deviation
        from the Normal given it; per side the two size slopes from their joint Normal (negative draws clipped
        to 0, where the curves stay concave).
        """
        if not isinstance(rng, np.random.Generator):
            raise InvalidParameterError(f"'rng' must be a numpy.random.Generator; got {type(rng).__name__}")
        return self._curves(depth_bid_bps, depth_ask_bps, mid_usd, horizon_s, self.draw(rng, markout_horizon_s))

    def _curves(
        self, depth_bid_bps: ArrayLike, depth_ask_bps: ArrayLike, mid_usd: float, horizon_s: float, params: Any
    ) -> PayoutCurves:
        mid = check_real("mid_usd", mid_usd, lo=0.0, lo_open=True, unit="USD")
        h = check_real("horizon_s", horizon_s, lo=0.0, lo_open=True, unit="s")
        log_ratio, dev, coef, lam, model, beta = params
        ds = []
        for name, depths in (("bid", depth_bid_bps), ("ask", depth_ask_bps)):
            d = np.ascontiguousarray(depths, dtype=np.float64)
            if d.ndim != 1 or not np.isfinite(d).all():
                raise InvalidParameterError(f"'depth_{name}_bps' must be a 1-dimensional array of finite depths (bps)")
            ds.append(d)
        rates, probs = rates_and_fill_probs(ds[0], ds[1], self.prior, self._centres, log_ratio, None, h)
        sides, rs, mks = [], [], []
        pr = self.prior
        for s, (name, d) in enumerate(zip(("bid", "ask"), ds, strict=True)):
            o = 0 if s == 0 else ds[0].size
            out = np.empty((6, d.size))
            k = side_curves_kernel(
                d, pr.depth_bps, pr.markout_bps, self._centres, dev[s], rates[o : o + d.size], probs[o : o + d.size],
                max(float(coef[s, 0]), 0.0), max(float(coef[s, 1]), 0.0), model == MODEL_LINEAR, mid * 1e-4, 0.0,
                out[0], out[1], out[2], out[3], out[4], out[5],
            )  # fmt: skip
            sides.append(SideCurves(out[0], out[1], out[2], out[3], k, name=name))
            rs.append(out[4])
            mks.append(out[5])
        thetas = (max(float(coef[0, 0]), 0.0), max(float(coef[1, 0]), 0.0))
        kappas = (max(float(coef[0, 1]), 0.0), max(float(coef[1, 1]), 0.0))
        return PayoutCurves(sides[0], sides[1], beta, MODEL_NAMES[model], (rs[0], rs[1]), (mks[0], mks[1]), thetas,
                            kappas, lam)  # fmt: skip

    # ---- diagnostics ----------------------------------------------------------------------------------------
    def diagnostics(self, *, level: float = 0.9, markout_horizon_s: float | None = None) -> LearnerDiagnostics:
        """Posterior mean and equal-tailed ``level`` interval per bucket of the fill rate and the markout, the
        size fit, the fill unit, and the skip counters."""
        lv = check_real("level", level, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        hi_ = self._horizon_index(markout_horizon_s)
        post = self._posterior(hi_)
        cfg, st = self.config, self.state
        centres = cfg.bucket_centres_bps
        r0, m0 = self.prior.rate(centres), self.prior.markout(centres)
        q_lo, q_hi = 0.5 * (1 - lv), 0.5 * (1 + lv)
        from scipy import stats  # here, not at import: SciPy costs ~0.2 s of start-up

        edges = np.asarray(cfg.bucket_edges_bps)
        out = []
        for s in range(2):
            shape, rate = post.rate_shape[s], post.rate_rate[s]
            dof = 2 * post.dev_alpha[s]
            scale = np.sqrt(post.dev_beta[s] / (post.dev_alpha[s] * post.dev_kappa[s]))
            mean = m0 + post.dev_mean[s]
            out.append(
                BucketDiagnostics(
                    depth_lo_bps=edges[:-1].copy(),
                    depth_hi_bps=edges[1:].copy(),
                    exposure_coin_s=st["exposure_coin_s"][s].copy(),
                    filled_coins=st["filled_coins"][s].copy(),
                    fills=st["fill_count"][s].copy(),
                    rate_mean_per_s=r0 * shape / rate,
                    rate_lo_per_s=r0 * stats.gamma.ppf(q_lo, shape, scale=1.0 / rate),
                    rate_hi_per_s=r0 * stats.gamma.ppf(q_hi, shape, scale=1.0 / rate),
                    markout_mean_bps=mean,
                    markout_lo_bps=mean + scale * stats.t.ppf(q_lo, dof),
                    markout_hi_bps=mean + scale * stats.t.ppf(q_hi, dof),
                )
            )
        phi = self.fill_unit_coins()
        return LearnerDiagnostics(
            coin=cfg.coin,
            horizon_s=cfg.markout_horizons_s[hi_],
            level=lv,
            bid=out[0],
            ask=out[1],
            size_fit=post.fit,
            fill_unit_coins=(phi[0].copy(), phi[1].copy()),
            display_fit=self.display_fit(),
            clock_s=self.clock_s,
            n_updates=self.n_updates,
            counters=dict(self.counters),
        )

    # ---- persistence ----------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the state to ``path`` (JSON, schema-versioned, atomic: see :mod:`hyper_make.learn._state`)."""
        from ._state import save_state

        return save_state(self, path)

    @classmethod
    def load(cls, path: str | Path, *, expected: LearnerConfig | None = None) -> PayoutLearner:
        """Read a state written by :meth:`save`; with ``expected``, its coin and layout must match (DataError
        naming the file and the field otherwise)."""
        from ._state import load_state

        return load_state(path, expected=expected)

    def size_fit(self, markout_horizon_s: float | None = None) -> SizeFit:
        """The size penalty's fit at one markout horizon (default ``value_horizon_s``)."""
        return self._posterior(self._horizon_index(markout_horizon_s)).fit


__all__ = [
    "COUNTERS",
    "STATE_SHAPES",
    "BucketDiagnostics",
    "DisplayFit",
    "LearnerDiagnostics",
    "PayoutCurves",
    "PayoutLearner",
    "SizeFit",
    "UpdateReport",
    "pooling_kernel",
]
