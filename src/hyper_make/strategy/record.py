"""What the ladders a run quoted say about themselves, recorded the same way on every venue.

Per refresh, :class:`LadderRecord` adds the impact model's expected cost and expected PnL of the ladder quoted
(prorated from the ladder's horizon to the refresh interval: a ladder rests for one refresh), the effective levels
``exp(H)`` of each side that rests size, and optionally the resting size per level (for the ladder-shape plots).
The simulator and the replay report these beside the PnL they measure: the model's impact is what the strategy
expected to pay, the measured PnL what it got.
"""

from __future__ import annotations

from typing import Any

import numba as nb
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
        #: per-refresh diagnostics of a two-sided allocator summed over the ladders (USD): ``sampling_cost_usd`` (the
        #: expected PnL a Thompson draw gives up against the posterior mean), ``inventory_risk_usd``
        self.learned_usd: dict[str, float] = {}
        self.refreshes = 0
        self._eff_sum = 0.0
        self._eff_n = 0
        self._shapes: list[np.ndarray] = []

    def add(self, ladder: Ladder | Any) -> None:
        """Record one quoted ladder: a :class:`~hyper_make.ladder.Ladder` or a fast-path build (read from its arrays:
        the same sums, since a level without an order adds nothing to them)."""
        if getattr(ladder, "is_fast_build", False):
            self._add_fast(ladder)
            return
        for side in (ladder.bid, ladder.ask):
            if side.size_used_coins > 0:
                c = side.curves
                impact, expected, eff = _side_terms(
                    side.projection.sizes, c.fill_prob, c.capture_usd, c.inventory, c.adverse_usd, c.b_forward,
                    c.b_roundtrip, float(c.beta),
                )  # fmt: skip
                self.model_impact_usd += impact * self.scale
                self.model_expected_usd += expected * self.scale
                self._eff_sum += eff
                self._eff_n += 1
        diag = ladder.bid.allocation.diagnostics or ladder.ask.allocation.diagnostics
        for key in LEARNED_KEYS:
            v = diag.get(key)
            if isinstance(v, float):
                self.learned_usd[key] = self.learned_usd.get(key, 0.0) + v
        if self.shapes_every and self.refreshes % self.shapes_every == 0:
            self._shapes.append(shape_row(ladder, self.n_levels))
        self.refreshes += 1

    def _add_fast(self, b: Any) -> None:
        """:meth:`add` of a :class:`~hyper_make.fast.FastBuild`: the orders' sizes and curve terms."""
        for side in ("bid", "ask"):
            if b.total_coins(side) > 0:
                t = b.terms(side)  # rows: fast.ROWS (price, size, depth, level, then the curve terms)
                impact, expected, eff = _side_terms(t[1], t[4], t[5], t[7], t[6], t[8], t[9], float(b.beta))
                self.model_impact_usd += impact * self.scale
                self.model_expected_usd += expected * self.scale
                self._eff_sum += eff
                self._eff_n += 1
        diag = b.allocation_diagnostics
        for key in LEARNED_KEYS:
            v = diag.get(key)
            if isinstance(v, float):
                self.learned_usd[key] = self.learned_usd.get(key, 0.0) + v
        if self.shapes_every and self.refreshes % self.shapes_every == 0:
            self._shapes.append(shape_row(b, self.n_levels))
        self.refreshes += 1

    @property
    def mean_effective_levels(self) -> float:
        """Mean ``exp(H)`` over the (refresh, side) pairs that rested size (0 if none did)."""
        return self._eff_sum / self._eff_n if self._eff_n else 0.0

    @property
    def shapes(self) -> np.ndarray:
        """Kept shape rows, shape ``(n_kept, 2·n_levels)`` (coins)."""
        return np.array(self._shapes) if self._shapes else np.zeros((0, 2 * self.n_levels))


#: Diagnostics of the `learned` allocator (the same on both sides) that :class:`LadderRecord` sums (USD).
LEARNED_KEYS = ("sampling_cost_usd", "inventory_risk_usd")


@nb.njit(cache=True)
def _side_terms(s, fill_prob, capture, inventory, adverse, b_fwd, b_rt, beta):  # type: ignore[no-untyped-def]
    """One side's recorded terms, in one pass (a refresh's dozen small NumPy calls cost more than the sums).

    Returns the impact cost ``-Σ (b_fwd,i + b_rt,i)·s_i^(1+β)`` (USD), the expected PnL ``Σ a_i·s_i -
    b_i·s_i^(1+β)`` with ``a_i = P_i·(e_i + v_i - AS_i)`` (USD, :meth:`LevelCurves.value`), and the effective
    levels ``exp(H)`` of the shares ``s_i / Σ s`` (``0·ln 0 = 0``; 0 for an empty side).
    """
    impact = 0.0
    expected = 0.0
    total = 0.0
    for i in range(s.shape[0]):
        sb = s[i] ** (1.0 + beta)
        impact -= b_fwd[i] * sb + b_rt[i] * sb
        a = fill_prob[i] * (capture[i] + inventory[i] - adverse[i])
        expected += a * s[i] - (b_fwd[i] + b_rt[i]) * sb
        total += s[i]
    if total <= 0:
        return impact, expected, 0.0
    h = 0.0
    for i in range(s.shape[0]):
        if s[i] > 0:
            p = s[i] / total
            h -= p * np.log(p)
    return impact, expected, np.exp(h)


def shape_row(ladder: Ladder | Any, n_levels: int) -> np.ndarray:
    """Resting size per level (coins): bids deepest..touch, then asks touch..deepest (the report's layout), of a
    :class:`~hyper_make.ladder.Ladder` or a fast-path build."""
    row = np.zeros(2 * n_levels)
    if getattr(ladder, "is_fast_build", False):
        for side in ("bid", "ask"):
            for lv, size in zip(ladder.levels(side).tolist(), ladder.sizes(side).tolist(), strict=True):
                if lv < n_levels:
                    row[n_levels - 1 - lv if side == "bid" else n_levels + lv] += size
        return row
    for o in ladder.bids:
        if o.level < n_levels:
            row[n_levels - 1 - o.level] += o.size
    for o in ladder.asks:
        if o.level < n_levels:
            row[n_levels + o.level] += o.size
    return row


__all__ = ["LadderRecord", "shape_row"]
