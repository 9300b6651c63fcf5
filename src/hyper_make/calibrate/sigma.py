"""σ per horizon: the std of log mid returns on a grid of that step (fraction), stderr ``σ/√(2(n-1))``.

``σ_h = std(diff(log mid(t0 + i·h)))`` over the horizons :data:`SIGMA_HORIZONS_S` (s); :func:`_sigma_at` scales
the nearest one to another horizon, ``σ_h = σ_ref·√(h / h_ref)``.
"""

from __future__ import annotations

import math

import numpy as np

from ..data.book import MarketPath
from ..errors import DataError
from ._stream import Accumulator
from .result import Estimate

SIGMA_HORIZONS_S = (0.1, 1.0, 5.0, 10.0, 30.0, 60.0)


def sigma_by_horizon(path: MarketPath, horizons_s: tuple[float, ...] = SIGMA_HORIZONS_S) -> dict[float, Estimate]:
    """σ of the log mid over each horizon (fraction), sampled on a grid of that step; stderr ``σ/√(2(n-1))``.

    A horizon is left out when the recording holds fewer than 2 steps of it, or the mid never moves on its grid.
    """
    t0, t1 = int(path.ts_ns[0]), int(path.ts_ns[-1])
    out: dict[float, Estimate] = {}
    for h in horizons_s:
        step = int(h * 1e9)
        grid = np.arange(t0, t1 + 1, step)
        if grid.size < 3:
            continue
        r = np.diff(np.log(path.mid_at(grid)))
        s = float(np.std(r, ddof=1))
        if s > 0:  # a mid that never moved on this grid says nothing about σ (and 0 is no valid σ)
            out[h] = Estimate(s, s / math.sqrt(2.0 * (r.size - 1)), int(r.size))
    return out


def _sigma_of(acc: Accumulator) -> dict[float, Estimate]:
    """:func:`sigma_by_horizon` from the accumulated moments: the horizons with >= 3 grid points and σ > 0."""
    sigma: dict[float, Estimate] = {}
    for h, sg in acc.sigma.items():
        s_ = sg.moments.std()
        if sg.points >= 3 and s_ > 0:
            sigma[h] = Estimate(s_, s_ / math.sqrt(2.0 * (sg.moments.n - 1)), sg.moments.n)
    return sigma


def _sigma_at(sigma: dict[float, Estimate], h: float) -> float:
    """σ over ``h`` seconds from the nearest calibrated horizon, scaled by √(h / h_ref)."""
    if not sigma:
        raise DataError("the recording is too short to estimate the volatility")
    ref = min(sigma, key=lambda k: abs(math.log(k / h)) if h > 0 else k)
    return sigma[ref].value * math.sqrt(max(h, 1e-9) / ref)
