"""Per-level payout curves of one side: ``E[PnL]_i(s) = a_i·s - b_i·s^(1+β)`` (USD, s in coins).

``a_i = P_i·(e_i + v_i - AS_i)`` is the linear edge (USD per coin): fill probability times spread capture net of
the maker fee, plus the inventory value of the fill, minus adverse selection given a fill. The inventory value
``v_i = ±(mid - r)`` (USD per coin; ``r`` the reservation price ``mid - q·γ·σ²·h``) is what a fill changes in the
certainty-equivalent of the position (Avellaneda–Stoikov): positive on the side that reduces the position,
negative on the side that adds to it, so a fill's value is its price measured from ``r`` while fill
probability and adverse selection stay measured from the market's mid.
``b_i = b_fwd_i + b_rt_i`` (USD per coin^(1+β)) is the endogenous impact coefficient (forward: paid because
the order is shown; round trip: paid when filled), zero when no impact model is configured. The curve is concave
in s for b_i > 0, which is what makes concentration expensive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ..snapshot import MarketSnapshot
from .adverse import AdverseModel
from .fill import FillModel


class ImpactModel(Protocol):
    """Self-impact coefficients per level: ``(b_forward, b_roundtrip)`` in USD per coin^(1+β).

    Elementwise in depth and fill probability: a level's coefficients depend on its own depth and ``P_i`` only.
    """

    beta: float

    def coefficients(
        self,
        depth_bps: NDArray[np.float64],
        fill_prob: NDArray[np.float64],
        snapshot: MarketSnapshot,
        horizon_s: float,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...


@dataclass(frozen=True, slots=True, eq=False)
class LevelCurves:
    """Payout curves of the levels of one side, vectorised over levels (shape ``(n_levels,)`` each).

    Attributes
    ----------
    depth_bps : distance of each level's price from the mid (bps, > 0).
    price_usd : each level's price (USD).
    fill_prob : probability of a fill within the quote horizon, ``P_i`` in [0, 1].
    capture_usd : spread capture net of the maker fee per coin filled, ``e_i = (δ_i - fee)·mid/1e4`` (USD/coin).
    adverse_usd : adverse selection per coin filled, ``AS_i`` (USD/coin).
    inventory_usd : inventory value per coin filled, ``v_i = mid - r`` on asks, ``r - mid`` on bids (USD/coin):
        what the fill adds to the position's certainty-equivalent; ``None`` = 0 (a flat position).
    b_forward, b_roundtrip : impact coefficients (USD/coin^(1+β)), ``>= 0``.
    beta : impact exponent β in (0, 2] (0.5 = square-root law).
    mid_usd : the reference mid the depths are measured from (USD).
    """

    depth_bps: NDArray[np.float64]
    price_usd: NDArray[np.float64]
    fill_prob: NDArray[np.float64]
    capture_usd: NDArray[np.float64]
    adverse_usd: NDArray[np.float64]
    b_forward: NDArray[np.float64]
    b_roundtrip: NDArray[np.float64]
    beta: float = 0.5
    mid_usd: float = float("nan")
    inventory_usd: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        if self.inventory_usd is None:
            object.__setattr__(self, "inventory_usd", np.zeros_like(self.depth_bps))

    @property
    def n(self) -> int:
        """Number of levels."""
        return int(self.depth_bps.shape[0])

    @property
    def a(self) -> NDArray[np.float64]:
        """Linear edge ``a_i = P_i·(e_i + v_i - AS_i)`` (USD per coin)."""
        return self.fill_prob * (self.capture_usd + self.inventory - self.adverse_usd)

    @property
    def inventory(self) -> NDArray[np.float64]:
        """``v_i`` as an array (USD per coin; zeros for a flat position)."""
        assert self.inventory_usd is not None  # set in __post_init__
        return self.inventory_usd

    @property
    def b(self) -> NDArray[np.float64]:
        """Total impact coefficient ``b_i`` (USD per coin^(1+β))."""
        return self.b_forward + self.b_roundtrip

    def value(self, sizes: NDArray[np.float64]) -> NDArray[np.float64]:
        """``E[PnL]_i(s_i) = a_i·s_i - b_i·s_i^(1+β)`` per level (USD)."""
        s = np.asarray(sizes, dtype=np.float64)
        return self.a * s - self.b * s ** (1.0 + self.beta)

    def marginal(self, sizes: NDArray[np.float64]) -> NDArray[np.float64]:
        """``dE[PnL]_i/ds = a_i - (1+β)·b_i·s_i^β`` (USD per coin)."""
        s = np.asarray(sizes, dtype=np.float64)
        return self.a - (1.0 + self.beta) * self.b * s**self.beta

    def inverse_marginal(self, lam: float) -> NDArray[np.float64]:
        """Size at which the marginal value equals ``lam`` (USD/coin): ``(max(a-λ,0)/((1+β)b))^(1/β)``.

        Levels with ``b_i = 0`` have no finite answer when ``a_i > λ``: ``inf`` is returned there.
        """
        gap = np.maximum(self.a - lam, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (gap / ((1.0 + self.beta) * self.b)) ** (1.0 / self.beta)
        return np.where(gap > 0, s, 0.0)

    def split(self, sizes: NDArray[np.float64]) -> dict[str, float]:
        """Expected PnL of ``sizes`` split into its parts (USD): spread capture, inventory value, adverse
        selection, forward and round-trip impact (they sum to ``Σ value(sizes)``)."""
        s = np.asarray(sizes, dtype=np.float64)
        sb = s ** (1.0 + self.beta)
        p = self.fill_prob
        # ``.sum()`` rather than np.sum: the same reduction without np.sum's Python layer (a µs each)
        return {
            "spread_capture_usd": float((p * self.capture_usd * s).sum()),
            "inventory_value_usd": float((p * self.inventory * s).sum()),
            "adverse_selection_usd": float(-(p * self.adverse_usd * s).sum()),
            "forward_impact_usd": float(-(self.b_forward * sb).sum()),
            "roundtrip_impact_usd": float(-(self.b_roundtrip * sb).sum()),
        }

    def take(self, index: NDArray[np.intp]) -> LevelCurves:
        """The curves of a subset of levels, in the order of ``index``."""
        return LevelCurves(
            depth_bps=self.depth_bps[index],
            price_usd=self.price_usd[index],
            fill_prob=self.fill_prob[index],
            capture_usd=self.capture_usd[index],
            adverse_usd=self.adverse_usd[index],
            b_forward=self.b_forward[index],
            b_roundtrip=self.b_roundtrip[index],
            beta=self.beta,
            mid_usd=self.mid_usd,
            inventory_usd=self.inventory[index],
        )


def build_curves(
    depth_bps: NDArray[np.float64],
    price_usd: NDArray[np.float64],
    snapshot: MarketSnapshot,
    *,
    fill: FillModel,
    adverse: AdverseModel,
    horizon_s: float,
    impact: ImpactModel | None = None,
    inventory_usd: float = 0.0,
) -> LevelCurves:
    """Evaluate the economics of one side's levels at their depths (bps from mid) for a quote horizon (s).

    ``inventory_usd`` is the side's inventory value per coin filled, ``v`` (USD per coin, see
    :class:`LevelCurves`): ``mid - r`` for asks, ``r - mid`` for bids.
    """
    arrays, beta = _level_arrays(depth_bps, snapshot, fill, adverse, horizon_s, impact)
    return LevelCurves(
        depth_bps=depth_bps,
        price_usd=price_usd,
        **arrays,
        beta=beta,
        mid_usd=snapshot.mid_usd,
        inventory_usd=np.full(depth_bps.shape, float(inventory_usd)),
    )


def build_curves_batch(
    depths_bps: Sequence[NDArray[np.float64]],
    prices_usd: Sequence[NDArray[np.float64]],
    snapshot: MarketSnapshot,
    *,
    fill: FillModel,
    adverse: AdverseModel,
    horizon_s: float,
    impact: ImpactModel | None = None,
    inventory_usd: Sequence[float],
) -> tuple[LevelCurves, ...]:
    """:func:`build_curves` of several sides of one snapshot (bids and asks), with the models evaluated once.

    The fill, adverse-selection and impact models are elementwise in depth, so each level gets the numbers its own
    side's :func:`build_curves` gives it; evaluating them on all the levels at once pays NumPy's per-call overhead
    (most of the cost at a few dozen levels) once instead of once per side. The curves' arrays are slices of the
    shared ones.
    """
    arrays, beta = _level_arrays(np.concatenate(depths_bps), snapshot, fill, adverse, horizon_s, impact)
    out = []
    start = 0
    for depth, price, inventory in zip(depths_bps, prices_usd, inventory_usd, strict=True):
        end = start + depth.shape[0]
        inventory_arr = np.empty(depth.shape)  # np.empty + fill: np.full's values without its Python layer
        inventory_arr.fill(float(inventory))
        out.append(
            LevelCurves(
                depth_bps=depth,
                price_usd=price,
                **{k: v[start:end] for k, v in arrays.items()},
                beta=beta,
                mid_usd=snapshot.mid_usd,
                inventory_usd=inventory_arr,
            )
        )
        start = end
    return tuple(out)


def _level_arrays(
    depth_bps: NDArray[np.float64],
    snapshot: MarketSnapshot,
    fill: FillModel,
    adverse: AdverseModel,
    horizon_s: float,
    impact: ImpactModel | None,
) -> tuple[dict[str, NDArray[np.float64]], float]:
    """The per-level arrays of :class:`LevelCurves` at ``depth_bps`` (by field name), and the impact exponent β."""
    sigma = snapshot.sigma_frac / math.sqrt(snapshot.sigma_horizon_s)
    p = np.clip(fill.prob(depth_bps, sigma, horizon_s), 0.0, 1.0)
    bps_to_usd = snapshot.mid_usd * 1e-4
    capture = (depth_bps - snapshot.maker_fee_bps) * bps_to_usd
    adverse_cost = adverse.cost_bps(depth_bps) * bps_to_usd
    if impact is None:
        zeros = np.zeros_like(depth_bps)
        b_fwd, b_rt, beta = zeros, zeros, 0.5
    else:
        b_fwd, b_rt = impact.coefficients(depth_bps, p, snapshot, horizon_s)
        beta = impact.beta
    arrays = {
        "fill_prob": p,
        "capture_usd": capture,
        "adverse_usd": adverse_cost,
        "b_forward": np.asarray(b_fwd, dtype=np.float64),
        "b_roundtrip": np.asarray(b_rt, dtype=np.float64),
    }
    return arrays, float(beta)
