"""Endogenous (self-) impact: the square-root law applied to the size we show at one price level.

Per unit of size s resting at level i, ``Impact_i(s) = c·σ_h·mid·(s / V_i)^β`` (USD per coin), where σ_h is
the volatility over the quote horizon (fraction), ``V_i`` the volume (coins) that trades at or through the
level's depth over that horizon, and β = 0.5 the square-root law. The total cost of size s is
``s·Impact_i(s) = b_i·s^(1+β)`` with ``b_i = c·σ_h·mid·V_i^(-β)``. It has two parts:

* forward impact, ``c_fwd``: paid because the order is shown (others read it, step ahead, lean the price);
* round-trip impact, ``c_rt·P_i``: paid when filled, since the inventory must later be exited through the book.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from scipy.special import erfc

from .._validate import PYDANTIC_CONFIG, check_real
from ..errors import InvalidParameterError
from ..snapshot import MarketSnapshot

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, kw_only=True, slots=True)
class SquareRootImpact:
    """Square-root self-impact with separate forward and round-trip coefficients.

    Parameters
    ----------
    forward_coef : float, default 0.3
        ``c_fwd`` (dimensionless, of order 1 in the metaorder literature), ``>= 0``.
    roundtrip_coef : float, default 0.7
        ``c_rt`` (dimensionless), ``>= 0``; weighted by the level's fill probability.
    beta : float, default 0.5
        Impact exponent β in (0, 2]; 0.5 is the square-root law.
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    forward_coef: float = 0.3
    roundtrip_coef: float = 0.7
    beta: float = 0.5

    def __post_init__(self) -> None:
        check_real("impact.forward_coef", self.forward_coef, lo=0.0)
        check_real("impact.roundtrip_coef", self.roundtrip_coef, lo=0.0)
        check_real("impact.beta", self.beta, lo=0.0, lo_open=True, hi=2.0)

    def volume_at_depth(
        self, depth_bps: NDArray[np.float64], snapshot: MarketSnapshot, horizon_s: float
    ) -> NDArray[np.float64]:
        """Volume ``V(δ)`` (coins) trading at or through each depth over ``horizon_s``.

        From the snapshot's profile when given (log-linear interpolation in depth, measured over
        ``sigma_horizon_s`` and scaled linearly to ``horizon_s``); otherwise from the daily volume:
        ``V(δ) = V_day·(h/86400)·2Φ(-δ/(σ_h))``, the horizon's volume times the chance the price reaches δ.
        """
        d = np.asarray(depth_bps, dtype=np.float64)
        if snapshot.volume_profile_depth_bps:
            logv = np.interp(d, snapshot.volume_profile_depth_bps, np.log(snapshot.volume_profile_coins))
            return np.exp(logv) * (horizon_s / snapshot.sigma_horizon_s)
        if snapshot.daily_volume_coins <= 0:
            raise InvalidParameterError(
                "the impact model needs 'daily_volume_coins' > 0 or a 'volume_profile_*' in the snapshot; got neither"
            )
        sigma_h = snapshot.sigma_frac * np.sqrt(horizon_s / snapshot.sigma_horizon_s)
        reach = erfc(d * 1e-4 / sigma_h / np.sqrt(2.0))
        v = snapshot.daily_volume_coins * horizon_s / SECONDS_PER_DAY * reach
        # beyond ~8σ the Gaussian tail underflows; keep a tiny volume so that b stays finite (and huge)
        return np.maximum(v, snapshot.daily_volume_coins * 1e-12)

    def coefficients(
        self,
        depth_bps: NDArray[np.float64],
        fill_prob: NDArray[np.float64],
        snapshot: MarketSnapshot,
        horizon_s: float,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(b_fwd, b_rt)`` per level in USD per coin^(1+β): ``c·σ_h·mid·V_i^(-β)``, round trip times ``P_i``."""
        v = self.volume_at_depth(depth_bps, snapshot, horizon_s)
        sigma_h = snapshot.sigma_frac * np.sqrt(horizon_s / snapshot.sigma_horizon_s)
        base = sigma_h * snapshot.mid_usd * v ** (-self.beta)
        return self.forward_coef * base, self.roundtrip_coef * fill_prob * base
