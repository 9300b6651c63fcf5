"""Endogenous (self-) impact: the square-root law applied to the size we show at one price level.

Per unit of size s resting at level i, ``Impact_i(s) = c·σ_h·mid·(s / V_i)^β`` (USD per coin), where σ_h is
the volatility over the quote horizon h (fraction of price), ``V_i`` the volume (coins) that trades at or
through the level's depth over the same horizon, and β = 0.5 the square-root law. The total cost of size s is
``s·Impact_i(s) = b_i·s^(1+β)`` with ``b_i = c·σ_h·mid·V_i^(-β)`` (USD per coin^(1+β)). It has two parts,
reported separately:

* forward impact, ``c_fwd``: paid because the order is shown (others read it, step ahead, lean the price);
* round-trip impact, ``c_rt·P_i``: paid when filled (probability ``P_i``), since the inventory must later be
  exited through the book.

For β = 0.5, ``σ_h·V_h^(-1/2)`` does not depend on the horizon when volume grows linearly with time and the
variance too, so the cost is the same whether it is written with daily or per-horizon quantities.

Volume at depth
---------------
From the snapshot's ``volume_profile_*`` when given. Otherwise from the daily volume, with the **occupation
profile**: the volume of a reference period (``volume_period_s``, one day) that trades against our side (half
of it: sellers hit bids, buyers lift asks) at or beyond depth δ from the current mid, for a driftless Brownian
mid with the snapshot's σ and volume spread evenly over the period, scaled to the horizon::

    V(δ) = V_period·(h / T)·½·shape(δ / σ_T),   shape(x) = 2·∫_0^1 Φ(-x/√u) du = 2·[(1 + x²)·Φ(-x) - x·φ(x)]

with ``σ_T`` the volatility over T (fraction) and ``shape(0) = 1`` (``∫_0^1 Φ(-x/√u) du`` is the expected
share of the period the mid spends more than ``x·σ_T`` below its start). It decays on the scale of the *daily* move
(≈ 260 bps for BTC at 50 % annualised volatility), so a level 100 bps deep sees about half the touch's volume.
The earlier default, the chance of reaching δ within the quote horizon (a Gaussian tail in δ/σ_h), made
deep levels absurdly expensive: at 200 bps it put ``V`` at ``1e-12`` of the daily volume and the forward
impact of a $1,000 order in the thousands of dollars, although the book there is deep and rarely read as
information. The occupation profile keeps deep levels cheap but not free, which is what the allocator needs
to trade edge against impact across the ladder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validate import PYDANTIC_CONFIG, check_real
from ..errors import InvalidParameterError
from ..snapshot import MarketSnapshot
from ._special import erfc

SECONDS_PER_DAY = 86_400.0
#: Share of the traded volume that trades against one side of our ladder (sells hit bids, buys lift asks).
SIDE_SHARE = 0.5
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_NO_VOLUME = (
    "the impact model needs 'daily_volume_coins' > 0 or a 'volume_profile_*' in the snapshot; got neither "
    "(or set both impact coefficients to 0)"
)
#: Floor on the profile's shape, so that ``b`` stays finite (if huge) beyond ~35 σ_T of depth.
_SHAPE_FLOOR = 1e-12


def occupation_shape(x: ArrayLike) -> NDArray[np.float64]:
    """Share of a period's volume printed at or beyond ``x`` daily σ from the start mid, normalised to 1 at 0.

    ``shape(x) = 2·[(1 + x²)·Φ(-x) - x·φ(x)]`` for ``x >= 0`` (dimensionless): twice the expected fraction of
    the period that a driftless Brownian motion from 0 spends below ``-x·σ_T``. Decreasing, ``shape(0) = 1``,
    ``shape(x) ~ 4φ(x)/x³`` as ``x -> inf``; floored at ``1e-12``.
    """
    z = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
    phi = _INV_SQRT_2PI * np.exp(-0.5 * z * z)
    shape = 2.0 * ((1.0 + z * z) * (0.5 * erfc(z * _INV_SQRT_2)) - z * phi)  # Φ(-z) = erfc(z/√2)/2
    return np.maximum(shape, _SHAPE_FLOOR)


def impact_per_coin_usd(b: ArrayLike, sizes: ArrayLike, beta: float) -> NDArray[np.float64]:
    """Per-unit impact ``Impact_i(s) = b_i·s_i^β`` (USD per coin) of sizes ``s`` (coins) at coefficients ``b``."""
    return np.asarray(b, dtype=np.float64) * np.maximum(np.asarray(sizes, dtype=np.float64), 0.0) ** beta


@dataclass(frozen=True, kw_only=True, slots=True)
class SquareRootImpact:
    """Square-root self-impact with separate forward and round-trip coefficients.

    Parameters
    ----------
    forward_coef : float, default 1.0
        ``c_fwd`` (dimensionless), ``>= 0``: the square-root impact paid merely for showing the size (the
        metaorder literature's ``Y`` is of order 1, Tóth et al. 2011). Calibrate it from markouts of unfilled
        quotes.
    roundtrip_coef : float, default 1.0
        ``c_rt`` (dimensionless), ``>= 0``, weighted by the level's fill probability: the exit cost of a filled
        level's inventory (``Y ≈ 1``). Calibrate it from post-fill markouts.
    beta : float, default 0.5
        Impact exponent β in ``(0, 2]``; 0.5 is the square-root law.
    volume_period_s : float, default 86400
        Period ``T`` (seconds) the snapshot's ``daily_volume_coins`` is measured over and over which the default
        volume profile is computed, ``> 0``.

    Setting both coefficients to 0 turns impact off (the linear limit, where the optimum concentrates on the
    best levels).
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    forward_coef: float = 1.0
    roundtrip_coef: float = 1.0
    beta: float = 0.5
    volume_period_s: float = SECONDS_PER_DAY

    def __post_init__(self) -> None:
        check_real("impact.forward_coef", self.forward_coef, lo=0.0)
        check_real("impact.roundtrip_coef", self.roundtrip_coef, lo=0.0)
        check_real("impact.beta", self.beta, lo=0.0, lo_open=True, hi=2.0)
        check_real("impact.volume_period_s", self.volume_period_s, lo=0.0, lo_open=True, unit="s")

    @property
    def is_off(self) -> bool:
        """True when both coefficients are 0: no impact, and no volume information needed."""
        return self.forward_coef == 0.0 and self.roundtrip_coef == 0.0

    def missing_input(self, snapshot: MarketSnapshot) -> str:
        """Why the model cannot be evaluated on ``snapshot`` (one line), or ``""`` when it can.

        It needs the volume at depth: a ``volume_profile_*`` or a positive ``daily_volume_coins`` (unless impact is
        off). The ladder asks before evaluating it, so that allocators that never read the impact coefficients
        still run on a snapshot without volume, and the impact allocator gives this as its empty-side reason.
        """
        if self.is_off or snapshot.volume_profile_depth_bps or snapshot.daily_volume_coins > 0:
            return ""
        return _NO_VOLUME

    def volume_at_depth(
        self, depth_bps: NDArray[np.float64], snapshot: MarketSnapshot, horizon_s: float
    ) -> NDArray[np.float64]:
        """Volume ``V(δ)`` (coins) trading at or through each depth (bps) over ``horizon_s`` (s).

        From the snapshot's profile when given (log-linear interpolation in depth, flat beyond its ends,
        measured over ``sigma_horizon_s`` and scaled linearly to ``horizon_s``); otherwise the occupation profile
        of the module docstring, ``V_period·(h/T)·½·shape(δ/σ_T)``.

        Raises
        ------
        InvalidParameterError
            If the snapshot has neither a volume profile nor a positive daily volume.
        """
        d = np.asarray(depth_bps, dtype=np.float64)
        if snapshot.volume_profile_depth_bps:
            logv = np.interp(d, snapshot.volume_profile_depth_bps, np.log(snapshot.volume_profile_coins))
            return np.exp(logv) * (horizon_s / snapshot.sigma_horizon_s)
        if snapshot.daily_volume_coins <= 0:
            raise InvalidParameterError(_NO_VOLUME)
        sigma_period = snapshot.sigma_frac * math.sqrt(self.volume_period_s / snapshot.sigma_horizon_s)
        shape = occupation_shape(d * 1e-4 / sigma_period)
        return snapshot.daily_volume_coins * (horizon_s / self.volume_period_s) * SIDE_SHARE * shape

    def coefficients(
        self,
        depth_bps: NDArray[np.float64],
        fill_prob: NDArray[np.float64],
        snapshot: MarketSnapshot,
        horizon_s: float,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(b_fwd, b_rt)`` per level (USD/coin^(1+β)): ``c_fwd·σ_h·mid·V_i^-β`` and ``c_rt·P_i·σ_h·mid·V_i^-β``."""
        if self.is_off:
            zeros = np.zeros(np.shape(depth_bps))
            return zeros, zeros.copy()
        v = self.volume_at_depth(depth_bps, snapshot, horizon_s)
        sigma_h = snapshot.sigma_frac * math.sqrt(horizon_s / snapshot.sigma_horizon_s)
        base = sigma_h * snapshot.mid_usd * v ** (-self.beta)
        return self.forward_coef * base, self.roundtrip_coef * np.asarray(fill_prob, dtype=np.float64) * base
