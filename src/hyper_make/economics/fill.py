"""Fill probability of a resting order at depth δ (bps from mid) within the quote horizon h (seconds).

Three pluggable models, each a frozen parameter bag with ``prob(depth_bps, sigma_frac_per_sqrt_s, horizon_s)``:

* :class:`ExponentialIntensity`: Avellaneda–Stoikov intensity ``λ(δ) = A·exp(-k·δ)``, ``P = 1 - exp(-λ(δ)·h)``;
* :class:`FirstPassage`: the mid touches the price within h, ``P = 2·Φ(-δ / (σ·√h))``;
* :class:`TableFill`: an empirical per-depth table, interpolated linearly in depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from .._validate import PYDANTIC_CONFIG, check_array, check_real
from ..errors import InvalidParameterError
from ._special import erfc


@runtime_checkable
class FillModel(Protocol):
    """Probability in [0, 1] that an order at each depth fills within ``horizon_s``.

    Elementwise in depth: a level's probability depends on its own depth only
    (:func:`~hyper_make.economics.build_curves_batch` evaluates both sides' levels in one call).
    """

    def prob(
        self, depth_bps: NDArray[np.float64], sigma_frac_per_sqrt_s: float, horizon_s: float
    ) -> NDArray[np.float64]: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class ExponentialIntensity:
    """``P(δ) = 1 - exp(-A·exp(-k·δ)·h)``.

    Parameters
    ----------
    intensity_per_s : float, default 0.5
        ``A``: arrival rate of fills at δ = 0 (fills per second), ``> 0``.
    kappa_per_bps : float, default 0.3
        ``k``: decay of the intensity per bp of depth (1/bps), ``> 0``.
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    kind: Literal["exponential"] = "exponential"
    intensity_per_s: float = 0.5
    kappa_per_bps: float = 0.3

    def __post_init__(self) -> None:
        check_real("fill.intensity_per_s", self.intensity_per_s, lo=0.0, lo_open=True, unit="1/s")
        check_real("fill.kappa_per_bps", self.kappa_per_bps, lo=0.0, lo_open=True, unit="1/bps")

    def prob(
        self, depth_bps: NDArray[np.float64], sigma_frac_per_sqrt_s: float, horizon_s: float
    ) -> NDArray[np.float64]:
        lam = self.intensity_per_s * np.exp(-self.kappa_per_bps * np.maximum(depth_bps, 0.0))
        return -np.expm1(lam * -horizon_s)  # = -lam·h bit for bit (IEEE signs), one array operation fewer


@dataclass(frozen=True, kw_only=True, slots=True)
class FirstPassage:
    """``P(δ) = 2·Φ(-δ / (σ·√h))``: the mid (driftless Brownian motion) reaches the price within h."""

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    kind: Literal["first_passage"] = "first_passage"

    def prob(
        self, depth_bps: NDArray[np.float64], sigma_frac_per_sqrt_s: float, horizon_s: float
    ) -> NDArray[np.float64]:
        x = np.maximum(depth_bps, 0.0) * 1e-4 / (sigma_frac_per_sqrt_s * np.sqrt(horizon_s))
        return erfc(x / np.sqrt(2.0))  # 2Φ(-x) = erfc(x/√2)


@dataclass(frozen=True, kw_only=True, slots=True)
class TableFill:
    """Empirical fill probability per depth, linear in depth between points and flat beyond the ends.

    Parameters
    ----------
    depth_bps : tuple of float
        Depths (bps), strictly increasing, ``>= 0``.
    prob_at_depth : tuple of float
        Fill probability within the horizon at each depth, in ``[0, 1]``, for the horizon the table was
        measured on (``horizon_s`` is ignored: re-measure the table for another horizon).
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    depth_bps: tuple[float, ...]
    prob_at_depth: tuple[float, ...]
    kind: Literal["table"] = "table"

    def __post_init__(self) -> None:
        d = check_array("fill.depth_bps", self.depth_bps, lo=0.0, min_len=1, unit="bps")
        check_array("fill.prob_at_depth", self.prob_at_depth, lo=0.0, hi=1.0, min_len=1)
        if len(self.depth_bps) != len(self.prob_at_depth):
            raise InvalidParameterError("'fill.depth_bps' and 'fill.prob_at_depth' must have the same length")
        if np.any(np.diff(d) <= 0):
            raise InvalidParameterError("'fill.depth_bps' must be strictly increasing")

    def prob(
        self, depth_bps: NDArray[np.float64], sigma_frac_per_sqrt_s: float, horizon_s: float
    ) -> NDArray[np.float64]:
        return np.interp(depth_bps, self.depth_bps, self.prob_at_depth)
