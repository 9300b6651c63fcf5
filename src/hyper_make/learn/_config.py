"""The learner's settings (bucket layout, forgetting, prior strength, pooling) and its prior payout curves.

:class:`LearnerConfig` holds the hyperparameters; :class:`LearnerPrior` the prior's curves (fill rate per resting
coin-second and markout per filled coin by depth), built from the ladder's models, from a config file, or from what
``hyper-make calibrate`` writes (``[ladder.fill]`` A and k, ``[ladder.adverse]`` table): those numbers become the
prior's *mean*, and ``LearnerConfig.prior_fills`` its strength in pseudo-observations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validate import PYDANTIC_CONFIG, check_array, check_choice, check_real
from ..errors import InvalidParameterError

SizeModel = Literal["auto", "sqrt", "linear", "power"]
"""How the learner's curves carry the size penalty: ``"sqrt"`` (β = 0.5, the square-root law), ``"linear"``
(β = 1, as a per-level ``c·s²``), ``"power"`` (the best β of ``beta_grid``), or ``"auto"`` (sqrt or linear,
whichever has the lower AIC on the fills seen; sqrt until there are enough to fit)."""


def _increasing(name: str, values: Any, *, lo: float, lo_open: bool, min_len: int, unit: str) -> tuple[float, ...]:
    arr = check_array(name, values, lo=lo, lo_open=lo_open, min_len=min_len, unit=unit)
    if np.any(np.diff(arr) <= 0):
        raise InvalidParameterError(f"'{name}' must be strictly increasing ({unit}); got {list(map(float, arr))}")
    return tuple(float(x) for x in arr)


@dataclass(frozen=True, kw_only=True)
class LearnerConfig:
    """Hyperparameters of :class:`~hyper_make.learn.PayoutLearner` (one market: one coin, both sides).

    Parameters
    ----------
    coin : str
        The market (e.g. ``"BTC"``); a state file from another coin is refused.
    bucket_edges_bps : tuple of float
        Depth bucket edges (bps from the reference price), ``>= 0``, strictly increasing, at least 2 (one
        bucket). A depth below the first edge falls in the first bucket, beyond the last in the last.
    markout_horizons_s : tuple of float
        Markout horizons the venue reports (s), strictly increasing; one posterior per horizon.
    value_horizon_s : float
        The markout horizon whose posterior values a fill in the curves (s), one of ``markout_horizons_s``.
        Short horizons are the point: a 30 s markout carries ~8 bps of noise per fill against ~0.4 bps of edge.
    half_life_s : float
        Forgetting: every statistic is multiplied by ``2^(-Δt / half_life_s)`` as the venue's clock advances by
        ``Δt`` (s), ``> 0`` (``inf`` = never forget). The prior is not forgotten: with no new data the
        posterior returns to it.
    prior_fills : float
        Prior strength in pseudo-fills, ``> 0``: of the fill-rate ratio to the prior (Gamma(n0, n0), mean 1),
        of each bucket's mean markout, and of the size-penalty slopes' ridge (at ``size_ref_coins``).
    prior_noise_dof : float
        Pseudo-observations of the markout noise variance (``> 0``), at ``LearnerPrior.markout_sd_bps``.
    pool_width_buckets : float
        Pooling across depth: each bucket's statistics borrow its neighbours' with Gaussian weights
        ``exp(-½(Δj / w)²)`` in bucket index (``0`` = none), on the deviation from the prior curve.
    huber_k : float
        Each markout is winsorised to the bucket's predicted value ± ``huber_k`` noise sds before it is learned
        (bounded influence of the fat tails: sweeps, jumps); ``inf`` = no winsorising.
    size_penalty : {"auto", "sqrt", "linear", "power"}
        Which size penalty the curves carry (see :data:`SizeModel`).
    beta_grid : tuple of float
        Exponents β (in ``(0, 2]``) of the size penalty ``θ·s^β`` (bps per coin^β) fitted by profile likelihood;
        must hold 0.5 and 1.
    size_ref_coins : float
        A typical order size (coins), ``> 0``: the fill unit before any fill is seen, and the scale of the size
        slope's ridge (``prior_fills`` pseudo-fills at this size).
    display_prior_s : float
        Prior weight of the display-drift slopes (the market's reaction to the size we show, and the drift with our
        position), in seconds of data at a display of ``side_ref_coins``, ``> 0``; their prior mean is 0. The
        default, an hour, puts the prior sd of the drift a display of ``side_ref_coins`` causes at about 0.06 bps/s:
        a small reaction, which the data of a few minutes of quoting override where it is larger.
    side_ref_coins : float
        A typical side total (coins), ``> 0``: the scale of the side-total slope's ridge.
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    coin: str = "BTC"
    bucket_edges_bps: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 18.0, 27.0, 40.0, 60.0, 90.0, 200.0)
    markout_horizons_s: tuple[float, ...] = (1.0, 5.0, 30.0)
    value_horizon_s: float = 5.0
    half_life_s: float = 3600.0
    prior_fills: float = 5.0
    prior_noise_dof: float = 4.0
    pool_width_buckets: float = 1.0
    huber_k: float = 2.5
    size_penalty: SizeModel = "auto"
    beta_grid: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
    size_ref_coins: float = 0.01
    side_ref_coins: float = 0.05
    display_prior_s: float = 3600.0

    def __post_init__(self) -> None:
        if not isinstance(self.coin, str) or not self.coin:
            raise InvalidParameterError(f"'learner.coin' must be a non-empty string; got {self.coin!r}")
        edges = _increasing("learner.bucket_edges_bps", self.bucket_edges_bps, lo=0.0, lo_open=False, min_len=2,
                            unit="bps")  # fmt: skip
        hz = _increasing("learner.markout_horizons_s", self.markout_horizons_s, lo=0.0, lo_open=True, min_len=1,
                         unit="s")  # fmt: skip
        grid = _increasing("learner.beta_grid", self.beta_grid, lo=0.0, lo_open=True, min_len=2, unit="")
        if grid[-1] > 2.0 or 0.5 not in grid or 1.0 not in grid:
            raise InvalidParameterError(f"'learner.beta_grid' must lie in (0, 2] and hold 0.5 and 1; got {grid}")
        object.__setattr__(self, "bucket_edges_bps", edges)
        object.__setattr__(self, "markout_horizons_s", hz)
        object.__setattr__(self, "beta_grid", grid)
        if float(self.value_horizon_s) not in hz:
            raise InvalidParameterError(
                f"'learner.value_horizon_s' must be one of markout_horizons_s {list(hz)} s; "
                f"got {self.value_horizon_s!r}"
            )
        hl = self.half_life_s
        if not (isinstance(hl, (int, float)) and not isinstance(hl, bool) and hl > 0 and not math.isnan(hl)):
            raise InvalidParameterError(f"'learner.half_life_s' must be in (0, inf] s; got {hl!r}")
        check_real("learner.prior_fills", self.prior_fills, lo=0.0, lo_open=True, unit="pseudo-fills")
        check_real("learner.prior_noise_dof", self.prior_noise_dof, lo=0.0, lo_open=True, unit="pseudo-fills")
        check_real("learner.pool_width_buckets", self.pool_width_buckets, lo=0.0, unit="buckets")
        hk = self.huber_k
        if not (isinstance(hk, (int, float)) and not isinstance(hk, bool) and hk > 0 and not math.isnan(hk)):
            raise InvalidParameterError(f"'learner.huber_k' must be in (0, inf] noise sds; got {hk!r}")
        check_choice("learner.size_penalty", self.size_penalty, ("auto", "sqrt", "linear", "power"))
        check_real("learner.size_ref_coins", self.size_ref_coins, lo=0.0, lo_open=True, unit="coins")
        check_real("learner.side_ref_coins", self.side_ref_coins, lo=0.0, lo_open=True, unit="coins")
        check_real("learner.display_prior_s", self.display_prior_s, lo=0.0, lo_open=True, unit="s")

    @property
    def n_buckets(self) -> int:
        """Number of depth buckets."""
        return len(self.bucket_edges_bps) - 1

    @property
    def bucket_centres_bps(self) -> NDArray[np.float64]:
        """Midpoint of each bucket (bps)."""
        e = np.asarray(self.bucket_edges_bps)
        return 0.5 * (e[:-1] + e[1:])

    def bucket_of(self, depth_bps: ArrayLike) -> NDArray[np.intp]:
        """Bucket index of each depth (below the first edge: 0; at or beyond the last: the last bucket)."""
        e = np.asarray(self.bucket_edges_bps)
        j = np.searchsorted(e, np.asarray(depth_bps, dtype=np.float64), side="right") - 1
        return np.clip(j, 0, self.n_buckets - 1)

    def layout(self) -> dict[str, Any]:
        """What a state file must match: the coin, the bucket edges, the markout horizons, the β grid."""
        return {
            "coin": self.coin,
            "bucket_edges_bps": list(self.bucket_edges_bps),
            "markout_horizons_s": list(self.markout_horizons_s),
            "beta_grid": list(self.beta_grid),
        }


#: Fill rates are floored here (1/s) so that the prior's log-rate stays finite far from the touch.
_RATE_FLOOR = 1e-12


@dataclass(frozen=True, kw_only=True, eq=False)
class LearnerPrior:
    """The prior's payout curves by depth: linear interpolation between points, flat beyond the ends.

    Attributes
    ----------
    depth_bps : depths of the table (bps), ``>= 0``, strictly increasing.
    rate_per_s : fill rate per resting coin-second at each depth (filled coins per coin per second, 1/s),
        ``> 0``; interpolated in log.
    markout_bps : markout per filled coin net of fees at each depth (bps of the fill price), e.g.
        ``δ - fee - AS(δ)``.
    markout_sd_bps : prior noise sd of one fill's markout (bps), ``> 0``.
    """

    depth_bps: NDArray[np.float64]
    rate_per_s: NDArray[np.float64]
    markout_bps: NDArray[np.float64]
    markout_sd_bps: float = 8.0

    def __post_init__(self) -> None:
        d = np.asarray(_increasing("prior.depth_bps", self.depth_bps, lo=0.0, lo_open=False, min_len=1, unit="bps"))
        r = check_array("prior.rate_per_s", self.rate_per_s, lo=0.0, lo_open=True, unit="1/s")
        m = check_array("prior.markout_bps", self.markout_bps, unit="bps")
        if not (r.shape == m.shape == d.shape):
            raise InvalidParameterError(
                f"'prior.depth_bps', 'prior.rate_per_s' and 'prior.markout_bps' must have the same length; "
                f"got {d.size}, {r.size}, {m.size}"
            )
        check_real("prior.markout_sd_bps", self.markout_sd_bps, lo=0.0, lo_open=True, unit="bps")
        object.__setattr__(self, "depth_bps", d)
        object.__setattr__(self, "rate_per_s", np.maximum(r, _RATE_FLOOR))
        object.__setattr__(self, "markout_bps", m)
        object.__setattr__(self, "_log_rate", np.log(self.rate_per_s))

    @property
    def log_rate(self) -> NDArray[np.float64]:
        """``ln(rate_per_s)`` at the table's depths (ln of 1/s), computed once."""
        return self._log_rate  # type: ignore[attr-defined,no-any-return]

    def rate(self, depth_bps: ArrayLike) -> NDArray[np.float64]:
        """Prior fill rate per resting coin-second at each depth (1/s), log-linear between the table's points."""
        return np.exp(np.interp(np.asarray(depth_bps, dtype=np.float64), self.depth_bps, self._log_rate))  # type: ignore[attr-defined]

    def markout(self, depth_bps: ArrayLike) -> NDArray[np.float64]:
        """Prior markout per filled coin at each depth (bps), linear between the table's points."""
        return np.interp(np.asarray(depth_bps, dtype=np.float64), self.depth_bps, self.markout_bps)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready tables."""
        return {
            "depth_bps": self.depth_bps.tolist(),
            "rate_per_s": self.rate_per_s.tolist(),
            "markout_bps": self.markout_bps.tolist(),
            "markout_sd_bps": self.markout_sd_bps,
        }

    @classmethod
    def from_models(
        cls,
        fill: Any,
        adverse: Any,
        *,
        maker_fee_bps: float,
        horizon_s: float,
        sigma_frac_per_sqrt_s: float,
        markout_sd_bps: float = 8.0,
        depth_bps: ArrayLike | None = None,
    ) -> LearnerPrior:
        """Tabulate the ladder's models: ``rate = -ln(1 - P(δ)) / h`` (exactly ``A·exp(-k·δ)`` for the exponential
        model) and ``markout = δ - fee - AS(δ)`` (bps), on ``depth_bps`` (default 0 to 500 bps).

        ``fill`` is any :class:`~hyper_make.economics.fill.FillModel`, ``adverse`` any
        :class:`~hyper_make.economics.adverse.AdverseModel`; ``horizon_s`` the horizon ``P`` is for (s).
        """
        from ..economics.fill import ExponentialIntensity

        d = np.asarray(depth_bps if depth_bps is not None else np.linspace(0.0, 500.0, 1001), dtype=np.float64)
        h = check_real("horizon_s", horizon_s, lo=0.0, lo_open=True, unit="s")
        if isinstance(fill, ExponentialIntensity):  # exact (P saturates at 1 near the touch, losing the rate)
            rate = fill.intensity_per_s * np.exp(-fill.kappa_per_bps * np.maximum(d, 0.0))
        else:
            p = np.clip(np.asarray(fill.prob(d, float(sigma_frac_per_sqrt_s), h), dtype=np.float64), 0.0, 1 - 1e-15)
            rate = -np.log1p(-p) / h
        rate = np.maximum(rate, _RATE_FLOOR)  # far from the touch the model's rate underflows to 0
        fee = check_real("maker_fee_bps", maker_fee_bps, lo=-10.0, hi=100.0, unit="bps")
        mk = d - fee - np.asarray(adverse.cost_bps(d), dtype=np.float64)
        return cls(depth_bps=d, rate_per_s=rate, markout_bps=mk, markout_sd_bps=markout_sd_bps)

    @classmethod
    def from_config(cls, config: Any, *, markout_sd_bps: float = 8.0) -> LearnerPrior:
        """From an :class:`~hyper_make.config.AppConfig`: its ``[ladder.fill]``, ``[ladder.adverse]``, the
        quote horizon, σ and the maker fee."""
        snap = config.snapshot
        return cls.from_models(
            config.ladder.fill,
            config.ladder.adverse,
            maker_fee_bps=snap.maker_fee_bps,
            horizon_s=config.ladder.horizon_s,
            sigma_frac_per_sqrt_s=snap.sigma_frac / math.sqrt(snap.sigma_horizon_s),
            markout_sd_bps=markout_sd_bps,
        )

    @classmethod
    def from_calibration(cls, path: str | Path, *, markout_sd_bps: float = 8.0) -> LearnerPrior:
        """From a TOML file ``hyper-make calibrate`` wrote (or any config file): ``[ladder.fill]`` A and k and
        the ``[ladder.adverse]`` table are the prior's mean (raises ConfigError naming the key if unreadable)."""
        from ..config import load_config  # the config module imports the allocators; keep this import lazy

        return cls.from_config(load_config(path), markout_sd_bps=markout_sd_bps)


__all__ = ["LearnerConfig", "LearnerPrior", "SizeModel"]
