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
        self._kernel = pooling_kernel(self.config.n_buckets, self.config.pool_width_buckets)
        self._cache: dict[int, _Posterior] = {}
        self._display: tuple[NDArray[np.float64], NDArray[np.float64], float, float] | None = None

    def _dims(self) -> dict[str, int]:
        cfg = self.config
        return {"side": 2, "horizon": len(cfg.markout_horizons_s), "bucket": cfg.n_buckets,
                "beta": len(cfg.beta_grid), "reg": 2, "one": 1}  # fmt: skip

    # ---- learning -------------------------------------------------------------------------------------------
    def update(self, obs: LevelObservations) -> UpdateReport:
        """Forget by the interval's duration, then learn its resting exposure, fills and markouts.

        Non-finite or negative values are counted (in the report and :attr:`counters`) and skipped, never learned.
        """
        cfg = self.config
        if not isinstance(obs, LevelObservations):
            raise InvalidParameterError("'obs' must be a LevelObservations")
        if obs.horizons_s != cfg.markout_horizons_s:
            raise InvalidParameterError(
                f"'obs.horizons_s' {list(obs.horizons_s)} s must match the learner's markout_horizons_s "
                f"{list(cfg.markout_horizons_s)} s"
            )
        # winsorising centres come from the posterior before this interval's fills
        post = [self._posterior(h) for h in range(len(cfg.markout_horizons_s))] if obs.n_fills else []
        decay = 1.0 if math.isinf(cfg.half_life_s) else 2.0 ** (-obs.duration_s / cfg.half_life_s)
        if decay != 1.0:
            for arr in self.state.values():
                arr *= decay
        st = self.state
        # ---- resting exposure
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
        np.add.at(st["prior_expected_coins"], (si, j), coin_s * self.prior.rate(depth))
        np.add.at(st["rest_size_coin_s"], (si, j), coin_s * obs.rest_size_coins[ok])
        # ---- fills
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
        self.counters["side_totals_missing"] += int(np.count_nonzero(missing))
        xg = osz[:, None] ** np.asarray(cfg.beta_grid)[None, :]  # (fills, G)
        mk_skip = 0
        wins = 0
        mu0 = self.prior.markout(fdepth)
        for h in range(len(cfg.markout_horizons_s)):
            mk = obs.fill_markout_usd[fok, h] / obs.fill_price_usd[fok] * 1e4  # bps of the fill price
            good = np.isfinite(mk)
            mk_skip += int(np.count_nonzero(~good))
            if not good.any():
                continue
            s_, j_, x_, t_ = fsi[good], fj[good], xg[good], tot[good]
            dev = mk[good] - mu0[good]
            dev, n_w = self._winsorise(post[h], s_, j_, x_, t_, dev)
            wins += n_w
            idx = (s_, h, j_)
            np.add.at(st["mk_w"], idx, 1.0)
            np.add.at(st["mk_y"], idx, dev)
            np.add.at(st["mk_yy"], idx, dev * dev)
            np.add.at(st["mk_t"], idx, t_)
            np.add.at(st["mk_tt"], idx, t_ * t_)
            np.add.at(st["mk_ty"], idx, t_ * dev)
            np.add.at(st["mk_x"], idx, x_)  # (fills, G) rows into the trailing β axis
            np.add.at(st["mk_xx"], idx, x_ * x_)
            np.add.at(st["mk_xy"], idx, x_ * dev[:, None])
            np.add.at(st["mk_xt"], idx, x_ * t_[:, None])
        # ---- the display drift (intervals with a finite length, drift, display and position)
        if obs.drift_dt_s.size:
            dt = obs.drift_dt_s
            dok = (np.isfinite(dt) & (dt > 0) & np.isfinite(obs.drift_bps) & np.isfinite(obs.drift_display_coins)
                   & np.isfinite(obs.drift_position_coins))  # fmt: skip
            r_skip += int(np.count_nonzero(~dok))
            if dok.any():
                x = np.stack([obs.drift_display_coins[dok] * dt[dok], obs.drift_position_coins[dok] * dt[dok]], 1)
                y, w = obs.drift_bps[dok], 1.0 / dt[dok]
                st["dr_xx"] += (x * w[:, None]).T @ x
                st["dr_xy"] += (x * w[:, None]).T @ y
                st["dr_yy"] += float(np.sum(w * y * y))
                st["dr_n"] += float(np.count_nonzero(dok))
        self.counters["resting_skipped"] += r_skip
        self.counters["fills_skipped"] += f_skip
        self.counters["markouts_skipped"] += mk_skip
        self.counters["markouts_winsorised"] += wins
        self.clock_s += float(obs.duration_s)
        self.n_updates += 1
        self._cache.clear()
        self._display = None
        return UpdateReport(int(ok.sum()), r_skip, int(fok.sum()), f_skip, mk_skip, wins, decay)

    def _winsorise(
        self,
        post: _Posterior,
        s_: NDArray[np.intp],
        j_: NDArray[np.intp],
        x_: NDArray[np.float64],
        t_: NDArray[np.float64],
        dev: NDArray[np.float64],
    ) -> tuple[NDArray[np.float64], int]:
        """Clip each deviation to its prediction ± huber_k noise sds (the prediction: bucket mean minus size terms)."""
        k = self.config.huber_k
        if math.isinf(k):
            return dev, 0
        g = self.config.beta_grid.index(post.fit.beta)
        pred = post.dev_mean[s_, j_] - post.coef[s_, 0] * x_[:, g] - post.coef[s_, 1] * t_
        scale = np.sqrt(post.dev_beta[s_, j_] / post.dev_alpha[s_, j_])
        clipped = np.clip(dev, pred - k * scale, pred + k * scale)
        return clipped, int(np.count_nonzero(clipped != dev))

    # ---- the posterior --------------------------------------------------------------------------------------
    def fill_unit_coins(self) -> NDArray[np.float64]:
        """Per side and bucket, the quasi-Poisson unit ``φ = E[Y²]/E[Y]`` (coins): one fill of this size is one
        observation of the rate. From the fills' sizes, blended with ``prior_fills`` pseudo-fills of the orders
        resting there (their coin-second-weighted mean size, or ``size_ref_coins`` before anything rested): a
        fill that takes a whole order counts as one fill whatever the order's size."""
        n0, st = self.config.prior_fills, self.state
        e = st["exposure_coin_s"]
        rest = np.where(e > 0, st["rest_size_coin_s"] / np.where(e > 0, e, 1.0), self.config.size_ref_coins)
        return (n0 * rest * rest + st["fill_size_sq_sum"]) / (n0 * rest + st["fill_size_sum"])

    def _horizon_index(self, horizon_s: float | None) -> int:
        hz = self.config.markout_horizons_s
        h = self.config.value_horizon_s if horizon_s is None else float(horizon_s)
        if h not in hz:
            raise InvalidParameterError(f"'markout_horizon_s' must be one of {list(hz)} s; got {horizon_s!r}")
        return hz.index(h)

    def _posterior(self, h: int) -> _Posterior:
        """The posterior at horizon index ``h``; every horizon is computed at once and cached until an update."""
        if not self._cache:
            self._compute_posteriors()
        return self._cache[h]

    def _compute_posteriors(self) -> None:
        cfg, st, K = self.config, self.state, self._kernel
        n0 = cfg.prior_fills
        phi = self.fill_unit_coins()
        rate_shape = n0 + (st["filled_coins"] / phi) @ K.T  # pooled quasi-counts of fills ...
        rate_rate = n0 + (st["prior_expected_coins"] / phi) @ K.T  # ... and of the prior's expected fills
        fits, g, coef, cov = self._size_fits()
        hh = np.arange(len(cfg.markout_horizons_s))

        def at_beta(name: str) -> NDArray[np.float64]:
            return st[name][:, hh, :, g].transpose(1, 0, 2)  # (side, H, bucket) at each horizon's chosen β

        th, ka = coef[..., 0][..., None], coef[..., 1][..., None]  # (side, H, 1)
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
        nu0, s0 = cfg.prior_noise_dof, self.prior.markout_sd_bps
        kap = n0 + wp
        mean = syp / kap
        alpha = 0.5 * nu0 + 0.5 * wp
        beta = 0.5 * nu0 * s0 * s0 + 0.5 * np.maximum(syyp - syp * syp / kap, 0.0)
        for h in hh:
            self._cache[int(h)] = _Posterior(rate_shape, rate_rate, kap[:, h], mean[:, h], alpha[:, h], beta[:, h],
                                             coef[:, h], cov[:, h], fits[h])  # fmt: skip

    def _size_fits(self) -> tuple[list[SizeFit], NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
        """Profile likelihood over the β grid at every horizon (see the module docstring).

        Returns the fits, the chosen β's grid index per horizon, and per (side, horizon) the coefficients
        ``(θ, κ)`` at it and their covariance.
        """
        cfg, st = self.config, self.state
        grid = np.asarray(cfg.beta_grid)
        n0, nu0, s0 = cfg.prior_fills, cfg.prior_noise_dof, self.prior.markout_sd_bps
        w = st["mk_w"][..., None]  # (side, H, bucket, 1)
        has = w > 0
        wi = np.where(has, w, 1.0)
        y, yy = st["mk_y"][..., None], st["mk_yy"][..., None]
        t, tt, ty = st["mk_t"][..., None], st["mk_tt"][..., None], st["mk_ty"][..., None]
        x, xx, xy, xt = st["mk_x"], st["mk_xx"], st["mk_xy"], st["mk_xt"]  # (side, H, bucket, G)
        shape = x.shape[:2] + x.shape[3:]  # (side, H, G)

        def centred(sab: NDArray[np.float64], sa: NDArray[np.float64], sb: NDArray[np.float64]) -> NDArray[np.float64]:
            """Within-bucket centred cross sums, summed over buckets: (side, H, G)."""
            return np.broadcast_to(np.where(has, sab - sa * sb / wi, 0.0).sum(axis=2), shape)

        cxx, cxt, ctt = centred(xx, x, x), centred(xt, x, t), centred(tt, t, t)
        cxy, cty, cyy = centred(xy, x, y), centred(ty, t, y), centred(yy, y, y)
        a11 = cxx + n0 * cfg.size_ref_coins ** (2 * grid)  # ridge: n0 pseudo-fills at the reference size ...
        a12 = cxt
        a22 = ctt + n0 * cfg.side_ref_coins**2  # ... and at the reference side total
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
        # parameters of a fixed-β model: the buckets' means, θ, κ and σ of each side with data
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
            if mode == "sqrt" or (mode == "auto" and not a_l < a_s):  # NaN (too few fills): the RFC's square root
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

    def _display_posterior(self) -> tuple[NDArray[np.float64], NDArray[np.float64], float, float]:
        """Posterior mean and covariance of ``(λ, ψ)``, the noise variance (bps²/s) and the interval count: a
        ridge of ``display_prior_s`` seconds at a display (and position) of ``side_ref_coins``, mean 0."""
        if self._display is not None:  # computed once per update: every draw and mean of a refresh reuses it
            return self._display
        cfg, st = self.config, self.state
        r = cfg.display_prior_s * cfg.side_ref_coins**2
        a = st["dr_xx"] + r * np.eye(2)
        inv = np.linalg.inv(a)
        beta = inv @ st["dr_xy"]
        n = float(st["dr_n"][0])
        nu0 = cfg.prior_noise_dof
        s0 = self.prior.markout_sd_bps**2 / cfg.value_horizon_s  # a markout's noise per second of horizon
        rss = max(float(st["dr_yy"][0]) - float(beta @ st["dr_xy"]), 0.0)
        s2 = (nu0 * s0 + rss) / (nu0 + max(n - 2.0, 0.0))
        self._display = (beta, inv * s2, s2, n)
        return self._display

    def display_fit(self) -> DisplayFit:
        """The fit of the mid's drift on our display and position (see :class:`DisplayFit`)."""
        beta, cov, s2, n = self._display_posterior()
        se = np.sqrt(np.maximum(np.diag(cov), 0.0))
        return DisplayFit(float(beta[0]), float(se[0]), float(beta[1]), float(se[1]), s2, n)

    # ---- curves ---------------------------------------------------------------------------------------------
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
        post = self._posterior(self._horizon_index(markout_horizon_s))
        ratio = post.rate_shape / post.rate_rate
        lam = float(self._display_posterior()[0][0])
        return self._curves(depth_bid_bps, depth_ask_bps, mid_usd, horizon_s, ratio, post.dev_mean, post.coef, post,
                            lam)  # fmt: skip

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
        post = self._posterior(self._horizon_index(markout_horizon_s))
        ratio = rng.gamma(post.rate_shape, 1.0 / post.rate_rate)
        tau = rng.gamma(post.dev_alpha, 1.0 / post.dev_beta)
        dev = post.dev_mean + rng.standard_normal(post.dev_mean.shape) / np.sqrt(post.dev_kappa * tau)
        coef = np.empty((2, 2))
        for s in range(2):
            lchol = np.linalg.cholesky(post.coef_cov[s] + 1e-300 * np.eye(2))
            coef[s] = post.coef[s] + lchol @ rng.standard_normal(2)
        dmean, dcov, _, _ = self._display_posterior()
        lam = float(dmean[0] + math.sqrt(max(dcov[0, 0], 0.0)) * rng.standard_normal())
        return self._curves(depth_bid_bps, depth_ask_bps, mid_usd, horizon_s, ratio, dev, coef, post, lam)

    def _curves(
        self,
        depth_bid_bps: ArrayLike,
        depth_ask_bps: ArrayLike,
        mid_usd: float,
        horizon_s: float,
        ratio: NDArray[np.float64],
        dev: NDArray[np.float64],
        coef: NDArray[np.float64],
        post: _Posterior,
        display: float = 0.0,
    ) -> PayoutCurves:
        mid = check_real("mid_usd", mid_usd, lo=0.0, lo_open=True, unit="USD")
        h = check_real("horizon_s", horizon_s, lo=0.0, lo_open=True, unit="s")
        centres = self.config.bucket_centres_bps
        fit = post.fit
        usd = mid * 1e-4
        sides, rates, mks, thetas, kappas = [], [], [], [], []
        for s, (name, depths) in enumerate((("bid", depth_bid_bps), ("ask", depth_ask_bps))):
            d = np.asarray(depths, dtype=np.float64)
            if d.ndim != 1 or not np.isfinite(d).all():
                raise InvalidParameterError(f"'depth_{name}_bps' must be a 1-dimensional array of finite depths (bps)")
            rate = self.prior.rate(d) * np.exp(np.interp(d, centres, np.log(ratio[s])))
            mk = self.prior.markout(d) + np.interp(d, centres, dev[s])
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
