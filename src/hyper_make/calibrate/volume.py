"""Volume at depth ``V(δ)``: coins traded at or through depth δ (bps) per ``horizon_s`` against one side.

``V(δ) = ½·(Σ_bid q·[depth >= δ] + Σ_ask q·[depth >= δ]) / T · horizon_s`` (coins; the mean of the two sides),
made non-increasing in δ and kept only where it is > 0.
"""

from __future__ import annotations

import numpy as np

from ._stream import Accumulator
from .intensity import _Orders


def _volume_of(
    acc: Accumulator, grid: np.ndarray, duration_s: float, horizon_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_volume_at_depth` from the accumulated coins per depth: the depths with volume and ``V`` (coins)."""
    vol = 0.5 * (acc.qty_at_depth(0) + acc.qty_at_depth(1)) / max(duration_s, 1e-9) * horizon_s
    keep = vol > 0
    return grid[keep], np.minimum.accumulate(vol[keep])


def _volume_at_depth(
    orders: _Orders, depth: np.ndarray, grid: np.ndarray, duration_s: float, horizon_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Coins traded at or through each grid depth per ``horizon_s`` (mean of the two sides), non-increasing;
    only the depths with volume."""
    vols = []
    for hit in (~orders.buy, orders.buy):
        d, q = depth[hit], orders.qty[hit]
        if d.size == 0:
            vols.append(np.zeros(grid.size))
            continue
        order = np.argsort(d)
        cum = np.cumsum(q[order][::-1])[::-1]  # volume at depth >= d_sorted[i]
        i = np.searchsorted(d[order], grid, side="left")
        vols.append(np.where(i < d.size, cum[np.minimum(i, d.size - 1)], 0.0))
    vol = 0.5 * (vols[0] + vols[1]) / max(duration_s, 1e-9) * horizon_s
    keep = vol > 0
    return grid[keep], np.minimum.accumulate(vol[keep])
