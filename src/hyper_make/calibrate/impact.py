"""The impact coefficient ``c`` of ``move = c·σ_h·(q/V_h)^½`` from market orders' markouts against their size.

``move`` is the mid's relative move in the order's direction after ``horizon_s`` (fraction), ``σ_h`` σ over that
horizon (fraction), ``q`` the order's size and ``V_h`` one side's volume per horizon (coins); ``c`` (no unit) is
fitted by least squares through the origin, with its standard error, from the orders with a full markout.
"""

from __future__ import annotations

import math

import numpy as np

from ..data.book import MarketPath
from ._stream import Accumulator
from .intensity import _Orders
from .result import Estimate
from .sigma import _sigma_at

#: Market orders an impact regression needs at least.
MIN_IMPACT_ORDERS = 10


def _impact_of(acc: Accumulator, sigma: dict[float, Estimate], horizon_s: float, duration_s: float) -> Estimate | None:
    """:func:`_impact` from the accumulated sums: ``y = move/σ_h``, ``x = √(q/V_h)`` with ``V_h`` one side's
    volume per horizon, so ``Σxy = Σ√q·move/(σ_h√V_h)``, ``Σxx = Σq/V_h``, ``Σy² = Σmove²/σ_h²``."""
    if acc.imp_n < MIN_IMPACT_ORDERS or not acc.imp_moved:
        return None
    sig_h = _sigma_at(sigma, horizon_s)
    side_vol_h = acc.total_qty / 2.0 / duration_s * horizon_s
    sxy = acc.imp_sxy / (sig_h * math.sqrt(side_vol_h))
    sxx = acc.imp_sxx / side_vol_h
    syy = acc.imp_syy / sig_h**2
    c = sxy / sxx
    ss = max(syy - 2.0 * c * sxy + c * c * sxx, 0.0)
    return Estimate(c, math.sqrt(ss / max(acc.imp_n - 1, 1) / sxx), acc.imp_n)


def _impact(
    path: MarketPath,
    orders: _Orders,
    sigma: dict[float, Estimate],
    horizon_s: float,
    duration_s: float,
    t_end: int,
) -> Estimate | None:
    """``c`` of ``move = c·σ_h·√(q / V_h)`` (least squares through 0) from the market orders with a full markout
    over ``horizon_s``, or ``None`` when fewer than :data:`MIN_IMPACT_ORDERS` have one or the mid never moved."""
    later_ts = orders.ts_ns + int(horizon_s * 1e9)
    full = later_ts <= t_end
    if int(full.sum()) < MIN_IMPACT_ORDERS:
        return None
    sig_h = _sigma_at(sigma, horizon_s)
    side_vol_h = float(orders.qty.sum()) / 2.0 / duration_s * horizon_s
    sign = np.where(orders.buy[full], 1.0, -1.0)
    before = orders.mid_before[full]
    y = sign * (path.mid_at(later_ts[full]) - before) / before / sig_h
    if not np.any(y != 0):
        return None  # the mid never moved after a market order: no information on c (0 ± 0 is not an estimate)
    x = np.sqrt(orders.qty[full] / side_vol_h)
    sxx = float(np.sum(x * x))
    c = float(np.sum(x * y) / sxx)
    resid = y - c * x
    c_se = float(math.sqrt(np.sum(resid**2) / max(x.size - 1, 1) / sxx))
    return Estimate(c, c_se, int(x.size))
