"""Adverse selection per depth: the mid's move against a passive fill at depth δ after each markout horizon.

``move = -s·(mid(t + h) - mid_ref) / mid_ref · 10⁴`` (bps of the reference mid), with ``s = -1`` when the maker
sold to a buyer and ``+1`` when it bought from a seller, for h in :data:`MARKOUT_HORIZONS_S` (s); mean and
standard error ``sd/√n`` per depth bin (bps). A markout at horizon h uses only the market orders at least h before
the end of the recording (a clipped one would measure a shorter horizon).
"""

from __future__ import annotations

import numpy as np

from ..data.book import MarketPath
from ._stream import Accumulator
from .intensity import _Orders

MARKOUT_HORIZONS_S = (1.0, 5.0, 30.0, 60.0)


def _adverse_of(
    acc: Accumulator, grid: np.ndarray
) -> tuple[dict[float, np.ndarray], dict[float, np.ndarray], dict[float, np.ndarray]]:
    """:func:`_adverse` from the accumulated sums per depth bin: mean, standard error and count per horizon."""
    adverse, adverse_se, adverse_n = {}, {}, {}
    for h in MARKOUT_HORIZONS_S:
        count, s1, s2 = acc.adv_n[h], acc.adv_s1[h], acc.adv_s2[h]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, s1 / np.maximum(count, 1), np.nan)
            var = np.where(count > 1, (s2 - count * mean**2) / np.maximum(count - 1, 1), np.nan)
            adverse[h], adverse_se[h] = mean, np.sqrt(np.maximum(var, 0.0) / np.maximum(count, 1))
        adverse_n[h] = count
    return adverse, adverse_se, adverse_n


def _adverse(
    path: MarketPath, orders: _Orders, depth: np.ndarray, ref_mid: np.ndarray, grid: np.ndarray, t_end: int
) -> tuple[dict[float, np.ndarray], dict[float, np.ndarray], dict[float, np.ndarray]]:
    """The move against a passive fill at depth δ after each markout horizon (bps of the reference mid): mean,
    standard error and count per depth bin, from the market orders at least that horizon before the end."""
    sign_maker = np.where(orders.buy, -1.0, 1.0)  # the maker sold to a buyer (-1) or bought from a seller (+1)
    edges = np.append(grid, np.inf)
    bins = np.clip(np.searchsorted(edges, np.maximum(depth, 0.0), side="right") - 1, 0, grid.size - 1)
    adverse, adverse_se, counts = {}, {}, {}
    for h in MARKOUT_HORIZONS_S:
        later_ts = orders.ts_ns + int(h * 1e9)
        full = later_ts <= t_end  # a clipped markout would measure a shorter horizon
        move = -sign_maker[full] * (path.mid_at(later_ts[full]) - ref_mid[full]) / ref_mid[full] * 1e4
        b = bins[full]
        count = np.bincount(b, minlength=grid.size)
        s1 = np.bincount(b, move, minlength=grid.size)
        s2 = np.bincount(b, move * move, minlength=grid.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, s1 / np.maximum(count, 1), np.nan)
            var = np.where(count > 1, (s2 - count * mean**2) / np.maximum(count - 1, 1), np.nan)
            adverse[h] = mean
            adverse_se[h] = np.sqrt(np.maximum(var, 0.0) / np.maximum(count, 1))
        counts[h] = count
    return adverse, adverse_se, counts
