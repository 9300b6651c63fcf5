"""Fill intensity per side, ``λ(δ) = A·exp(-k·δ)``: market orders reaching depth δ (bps) per second.

Market orders are trades grouped by exchange time and aggressor side; an order's depth is how far (bps) its deepest
price is from the mid ``reference_lag_s`` earlier (where a resting quote would have been placed), on the side it
hit. ``λ(δ) = count(depth >= δ) / T`` (per s) on a depth grid, and ``log λ = log A - k·δ`` is fitted by least
squares on the shallow range (depths with at least ``min_count`` arrivals), with R², the range and standard errors
(A per s, k per bp).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..data.book import MarketPath
from ..errors import DataError
from .result import Estimate, IntensityFit


@dataclass(frozen=True, slots=True)
class _Orders:
    """Market orders: trades grouped by (exchange time, aggressor side)."""

    ts_ns: np.ndarray
    buy: np.ndarray
    qty: np.ndarray
    worst_px: np.ndarray  # the deepest price the order reached
    mid_before: np.ndarray


def _market_orders(path: MarketPath) -> _Orders:
    ts, buy = path.trade_ts_ns, path.trade_buy
    if ts.size == 0:
        raise DataError("the data holds no trade: fill intensity, adverse selection and impact need trades")
    new = np.ones(ts.size, dtype=bool)
    new[1:] = (ts[1:] != ts[:-1]) | (buy[1:] != buy[:-1])
    start = np.flatnonzero(new)
    qty = np.add.reduceat(path.trade_qty_coins, start)
    hi = np.maximum.reduceat(path.trade_px_usd, start)
    lo = np.minimum.reduceat(path.trade_px_usd, start)
    b = buy[start]
    return _Orders(ts[start], b, qty, np.where(b, hi, lo), path.trade_mid_usd[start])


def _depths(orders: _Orders, ref_mid: np.ndarray) -> np.ndarray:
    """Depth (bps) from the reference mid that each market order reached on the side it hit (may be < 0)."""
    sign = np.where(orders.buy, 1.0, -1.0)
    return sign * (orders.worst_px - ref_mid) / ref_mid * 1e4


def fit_intensity(
    depth_bps: np.ndarray, duration_s: float, grid_bps: np.ndarray, *, min_count: int = 10, max_depth_bps: float = 20.0
) -> IntensityFit:
    """Fit ``log λ(δ) = log A - k·δ`` to arrivals reaching each grid depth (``λ = count(depth >= δ) / T``).

    The fit uses the grid depths in ``[0, max_depth_bps]`` with at least ``min_count`` arrivals (the shallow
    range, where the exponential law holds and counts are not noise).

    Raises
    ------
    DataError
        If fewer than 3 grid depths have ``min_count`` arrivals.
    """
    d = np.sort(np.asarray(depth_bps, dtype=np.float64))
    count = d.size - np.searchsorted(d, grid_bps, side="left")
    return _fit_counts(count, duration_s, grid_bps, min_count=min_count, max_depth_bps=max_depth_bps)


def _fit_counts(
    count: np.ndarray, duration_s: float, grid_bps: np.ndarray, *, min_count: int, max_depth_bps: float
) -> IntensityFit:
    """:func:`fit_intensity` from the arrivals reaching each grid depth (``count``, same length as the grid)."""
    rate = count / duration_s
    use = (count >= min_count) & (grid_bps >= 0) & (grid_bps <= max_depth_bps)
    if int(use.sum()) < 3:
        raise DataError(
            f"too few arrivals to fit the fill intensity: {int(use.sum())} depths with >= {min_count} market orders "
            "(3 needed)"
        )
    x, y = grid_bps[use], np.log(rate[use])
    fit = stats.linregress(x, y)
    a = math.exp(fit.intercept)
    return IntensityFit(
        intensity_per_s=Estimate(a, a * float(fit.intercept_stderr), int(count[use][0])),
        kappa_per_bps=Estimate(-float(fit.slope), float(fit.stderr), int(use.sum())),
        r2=float(fit.rvalue**2),
        depth_range_bps=(float(x[0]), float(x[-1])),
        depth_bps=grid_bps,
        rate_per_s=rate,
        count=count,
    )
