"""What the ladders a run quoted say about themselves, recorded the same way on every venue.

Per refresh, :class:`LadderRecord` adds the impact model's expected cost and expected PnL of the ladder quoted
(prorated from the ladder's horizon to the refresh interval: a ladder rests for one refresh), the effective levels
``exp(H)`` of each side that rests size, and optionally the resting size per level (for the ladder-shape plots).
The simulator and the replay report these beside the PnL they measure: the model's impact is what the strategy
expected to pay, the measured PnL what it got.
"""

from __future__ import annotations

import numpy as np

from ..ladder import Ladder


class LadderRecord:
    """Running sums over the refreshes of a run.

    Parameters
    ----------
    n_levels : levels per side of the ladder (the width of a shape row is ``2·n_levels``).
    refresh_s, horizon_s : refresh interval and the ladder's quote horizon (s): each refresh counts
        ``min(refresh_s / horizon_s, 1)`` of a ladder's horizon cost.
    shapes_every : keep the resting size per level every this many recorded refreshes (0: never).
    """

    def __init__(self, n_levels: int, *, refresh_s: float, horizon_s: float, shapes_every: int = 0) -> None:
        self.n_levels = int(n_levels)
        self.scale = min(refresh_s / horizon_s, 1.0)
        self.shapes_every = int(shapes_every)
        #: the impact model's expected cost of the ladders shown (USD, ``<= 0``)
        self.model_impact_usd = 0.0
        #: the model's expected PnL of the ladders shown (USD)
        self.model_expected_usd = 0.0
        self.refreshes = 0
        self._eff_sum = 0.0
        self._eff_n = 0
        self._shapes: list[np.ndarray] = []

    def add(self, ladder: Ladder) -> None:
        """Record one quoted ladder."""
        for side in (ladder.bid, ladder.ask):
            if side.size_used_coins > 0:
                # the terms of LevelCurves.split and .value that are recorded, with s^(1+β) computed once
                c, s = side.curves, side.projection.sizes
                sb = s ** (1.0 + c.beta)
                impact = float(-(c.b_forward * sb).sum()) + float(-(c.b_roundtrip * sb).sum())
                self.model_impact_usd += impact * self.scale
                self.model_expected_usd += float((c.a * s - c.b * sb).sum()) * self.scale
                self._eff_sum += side.effective_levels
                self._eff_n += 1
        if self.shapes_every and self.refreshes % self.shapes_every == 0:
            self._shapes.append(shape_row(ladder, self.n_levels))
        self.refreshes += 1

    @property
    def mean_effective_levels(self) -> float:
        """Mean ``exp(H)`` over the (refresh, side) pairs that rested size (0 if none did)."""
        return self._eff_sum / self._eff_n if self._eff_n else 0.0

    @property
    def shapes(self) -> np.ndarray:
        """Kept shape rows, shape ``(n_kept, 2·n_levels)`` (coins)."""
        return np.array(self._shapes) if self._shapes else np.zeros((0, 2 * self.n_levels))


def shape_row(ladder: Ladder, n_levels: int) -> np.ndarray:
    """Resting size per level (coins): bids deepest..touch, then asks touch..deepest (the report's layout)."""
    row = np.zeros(2 * n_levels)
    for o in ladder.bids:
        if o.level < n_levels:
            row[n_levels - 1 - o.level] += o.size
    for o in ladder.asks:
        if o.level < n_levels:
            row[n_levels + o.level] += o.size
    return row


__all__ = ["LadderRecord", "shape_row"]
