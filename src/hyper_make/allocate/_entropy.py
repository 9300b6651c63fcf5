"""The legacy entropy-based distribution (the original system's ``entropy_distribution.rs``), ported faithfully.

Steps, per side and per refresh:

1. net EV per level ``max(P_i·(δ_i - fee - as_confidence·AS_i), min_touch_ev)`` (bps), and utilities
   ``u_i`` = the *ranks* of the EVs mapped linearly to [-1, 1] (best = 1; ties broken by level index);
2. adaptive temperature ``T``: ×(1 + scale·(toxicity − 1)) when toxicity > 1, ×√(vol ratio) when > 1,
   ×(1 + cascade) when cascade > 0.1, capped at ``max_temp_multiplier × base``;
3. softmax ``p_i ∝ exp(u_i / T)``;
4. entropy floor: if ``H(p) = -Σ p ln p`` (nats) is below the target, bisect T on ``[0.01, 10·T]`` (20
   iterations, stop within 0.01 nats) until it is met; the target is smoothed across refreshes of a side,
   ``H* ← s·H* + (1 - s)·H_min`` from ``H* = 2.0``, and capped at ``ln n``. The smoothed target is explicit
   state: the call reads ``SideProblem.state`` (an :class:`EntropyState`, ``None`` at the start) and returns the
   advanced one as ``AllocationResult.state`` (the original kept it inside the allocator, so a warm-up or a
   what-if call changed the next real answer);
5. per-level floor ``p_i ← f + (1 - n·f)·p_i``;
6. Dirichlet Thompson sampling: ``α_i = α0 + n·p_i``, the average of N draws (Gamma trick), from ``rng``;
7. sizes ``p_i × capacity`` with per-level caps (excess re-spread), then the minimum order value: levels
   with at least ``min_notional_soft_frac`` of the minimum are pulled up to it, the rest dropped and their
   size re-spread over the survivors.

It always spends the whole budget: that is one of its flaws, and the comparisons show it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from .._validate import PYDANTIC_CONFIG, check_int, check_real
from ..errors import InvalidParameterError
from ..snapshot import Regime
from ._base import AllocationResult, SideProblem, empty_result, water_fill

_BISECT_T_MIN = 0.01
_BISECT_ITERATIONS = 20
_BISECT_TOL_NATS = 0.01


@dataclass(frozen=True, slots=True)
class EntropyState:
    """The entropy allocator's state for one side between refreshes.

    Attributes
    ----------
    target_nats : the smoothed entropy target ``H*`` after the last refresh (nats), before the ``ln n`` cap.
    """

    target_nats: float


@dataclass(frozen=True, kw_only=True)
class EntropyAllocator:
    """Legacy allocator: temperature softmax over EV ranks, an entropy floor, and Thompson noise.

    Defaults are the original system's. Its one piece of cross-refresh state, the smoothed entropy target of a
    side, is a value: :class:`EntropyState` in ``SideProblem.state`` and ``AllocationResult.state``.

    Parameters
    ----------
    min_entropy : float, default 1.5
        ``H_min``, the entropy floor (nats), ``>= 0``.
    base_temperature : float, default 1.0
        Softmax temperature before regime adaptation (dimensionless), ``> 0``.
    toxicity_temp_scale : float, default 0.5
        Temperature gain per unit of toxicity above 1, ``>= 0``.
    dirichlet_prior : float, default 0.5
        ``α0`` of the Thompson-sampling Dirichlet, ``> 0``.
    min_allocation_floor : float, default 0.02
        Per-level share floor ``f`` (fraction), in ``[0, 1]``; ignored (uniform) when ``n·f >= 1``.
    thompson_samples : int, default 5
        Dirichlet draws averaged; 0 turns sampling off (deterministic).
    adaptive_temperature : bool, default True
        Scale the temperature by the regime.
    max_temp_multiplier : float, default 3.0
        Cap on the adapted temperature, as a multiple of the base, ``>= 1``.
    entropy_smoothing : float, default 0.8
        Weight ``s`` of the previous target in the smoothed target, in ``[0, 1)``.
    initial_entropy_target : float, default 2.0
        Smoothed target before the first call (nats).
    as_confidence : float, default 0.7
        Weight of adverse selection in the net EV, in ``[0, 1]``.
    min_touch_ev_bps : float, default 0.01
        Floor of the net EV (bps); levels below it tie and are ranked by index.
    min_notional_soft_frac : float, default 0.5
        Levels with at least this fraction of the minimum order are pulled up to it, the rest dropped.
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    name: ClassVar[str] = "entropy"

    min_entropy: float = 1.5
    base_temperature: float = 1.0
    toxicity_temp_scale: float = 0.5
    dirichlet_prior: float = 0.5
    min_allocation_floor: float = 0.02
    thompson_samples: int = 5
    adaptive_temperature: bool = True
    max_temp_multiplier: float = 3.0
    entropy_smoothing: float = 0.8
    initial_entropy_target: float = 2.0
    as_confidence: float = 0.7
    min_touch_ev_bps: float = 0.01
    min_notional_soft_frac: float = 0.5

    needs_impact: ClassVar[bool] = False

    def __post_init__(self) -> None:
        check_real("entropy.min_entropy", self.min_entropy, lo=0.0, unit="nats")
        check_real("entropy.base_temperature", self.base_temperature, lo=0.0, lo_open=True)
        check_real("entropy.toxicity_temp_scale", self.toxicity_temp_scale, lo=0.0)
        check_real("entropy.dirichlet_prior", self.dirichlet_prior, lo=0.0, lo_open=True)
        check_real("entropy.min_allocation_floor", self.min_allocation_floor, lo=0.0, hi=1.0)
        check_int("entropy.thompson_samples", self.thompson_samples, lo=0, hi=10_000)
        if not isinstance(self.adaptive_temperature, bool):
            raise InvalidParameterError(
                f"'entropy.adaptive_temperature' must be true or false; got {self.adaptive_temperature!r}"
            )
        check_real("entropy.max_temp_multiplier", self.max_temp_multiplier, lo=1.0)
        check_real("entropy.entropy_smoothing", self.entropy_smoothing, lo=0.0, hi=1.0, hi_open=True)
        check_real("entropy.initial_entropy_target", self.initial_entropy_target, lo=0.0, unit="nats")
        check_real("entropy.as_confidence", self.as_confidence, lo=0.0, hi=1.0)
        check_real("entropy.min_touch_ev_bps", self.min_touch_ev_bps, unit="bps")
        check_real("entropy.min_notional_soft_frac", self.min_notional_soft_frac, lo=0.0, hi=1.0)

    def next_state(self, state: object | None) -> EntropyState:
        """The state after one more refresh: ``H* ← s·H* + (1 - s)·H_min`` from ``state`` (or the initial target).

        Raises
        ------
        InvalidParameterError
            If ``state`` is neither ``None`` nor an :class:`EntropyState` (e.g. another allocator's state).
        """
        if state is None:
            prev = float(self.initial_entropy_target)
        elif isinstance(state, EntropyState):
            prev = state.target_nats
        else:
            raise InvalidParameterError(
                f"'state' for the entropy allocator must be an EntropyState or None; got {type(state).__name__}"
            )
        s = self.entropy_smoothing
        return EntropyState(s * prev + (1.0 - s) * self.min_entropy)

    # ---- steps 1-5: the deterministic distribution -------------------------------------------------
    def utilities(self, problem: SideProblem) -> NDArray[np.float64]:
        """Step 1: rank utilities in [-1, 1] from the net EV (best level = 1, ties by index)."""
        c = problem.curves
        bps = 1e4 / c.mid_usd
        ev_bps = c.fill_prob * (c.capture_usd + c.inventory - self.as_confidence * c.adverse_usd) * bps
        ev_bps = np.maximum(ev_bps, self.min_touch_ev_bps)
        n = ev_bps.shape[0]
        if n == 1:
            return np.ones(1)
        order = np.argsort(-ev_bps, kind="stable")
        # the level of rank k gets 1 - 2k/(n - 1): the ranks' utilities are one cached array, placed by the order
        u = np.empty(n)
        u[order] = _rank_utilities(n)
        return u

    def temperature(self, regime: Regime) -> float:
        """Step 2: the regime-adapted temperature (dimensionless)."""
        t = self.base_temperature
        if self.adaptive_temperature:
            if regime.toxicity > 1.0:
                t *= 1.0 + self.toxicity_temp_scale * (regime.toxicity - 1.0)
            if regime.vol_ratio > 1.0:
                t *= math.sqrt(regime.vol_ratio)
            if regime.cascade_severity > 0.1:
                t *= 1.0 + regime.cascade_severity
        return min(t, self.max_temp_multiplier * self.base_temperature)

    def distribution(
        self, problem: SideProblem, state: EntropyState | None = None
    ) -> tuple[NDArray[np.float64], dict[str, float | bool]]:
        """Steps 1-5: shares per level before sampling, and the diagnostics.

        The entropy target is ``state`` (default: one refresh on from ``problem.state``, as :meth:`allocate` does).
        """
        state = state if state is not None else self.next_state(problem.state)
        u = self.utilities(problem)
        n = u.shape[0]
        t = self.temperature(problem.regime)
        p = _softmax(u, t)
        h0 = _entropy(p)
        target = min(state.target_nats, math.log(n))
        floor_bound = h0 < target
        if floor_bound:
            t = project_to_min_entropy(u, t, target)
            p = _softmax(u, t)
        # the original bisects only up to 10x the temperature: a very cold base can leave the floor unmet
        floor_met = (_entropy(p) if floor_bound else h0) >= target - _BISECT_TOL_NATS
        f = self.min_allocation_floor
        p = f + (1.0 - n * f) * p if n * f < 1.0 else np.full(n, 1.0 / n)
        return p, {
            "temperature": t,
            "entropy_target_nats": target,
            "entropy_before_floor_nats": h0,
            "floor_bound": floor_bound,
            "floor_met": floor_met,
        }

    # ---- steps 6-7 ---------------------------------------------------------------------------------
    def allocate(self, problem: SideProblem, rng: np.random.Generator) -> AllocationResult:
        """Allocate the whole side budget by the entropy heuristic (see the module docstring)."""
        n = problem.curves.n
        if n == 0:
            return empty_result(0, "no price levels on this side")
        if problem.budget_coins <= 0:
            return empty_result(n, "side budget is zero", problem.state)
        # one smoothed target per side (the ladder keeps a state per side): each refresh advances it by one step
        state = self.next_state(problem.state)
        p, diag = self.distribution(problem, state)
        if self.thompson_samples > 0:
            alpha = self.dirichlet_prior + n * p
            draws = rng.gamma(alpha, size=(self.thompson_samples, n))
            # np.mean(axis=0) is this sum divided by the count; written out, it skips np.mean's Python layer (µs)
            p = (draws / draws.sum(axis=1, keepdims=True)).sum(axis=0) / self.thompson_samples
        caps_total = problem.caps_coins.sum()
        capacity = float(min(problem.budget_coins, caps_total))
        sizes, pulled, dropped = self._min_notional(p, capacity, problem)
        if sizes.sum() <= 0:
            return empty_result(n, "side budget is below the exchange's minimum order value", state)
        diag |= {"pulled_to_min": pulled, "dropped_below_min": dropped}
        binding = "caps" if caps_total < problem.budget_coins else "budget"
        return AllocationResult(
            sizes=sizes,
            expected_pnl_usd=float(problem.curves.value(sizes).sum()),
            shadow_price=float("nan"),
            binding=binding,
            message=f"entropy floor {'bound' if diag['floor_bound'] else 'slack'} at T={diag['temperature']:.3g}",
            diagnostics=diag,
            state=state,
        )

    def _min_notional(
        self, p: NDArray[np.float64], capacity: float, problem: SideProblem
    ) -> tuple[NDArray[np.float64], int, int]:
        """Spread ``capacity`` by ``p`` under the caps, then enforce each level's "0 or at least the minimum".

        Levels that would rest less than their minimum but at least ``min_notional_soft_frac`` of it are
        pulled up to it; the others are dropped and their share re-spread. Each pass drops at least one
        level or returns, so it ends in at most ``n`` passes. Returns (sizes, pulled, dropped).
        """
        m, caps = problem.min_size_coins, problem.caps_coins
        positive = p > 0
        alive = positive & (m <= np.minimum(caps, capacity))
        dropped = int(positive.sum()) - int(alive.sum())
        while alive.any():
            sizes = water_fill(np.where(alive, p, 0.0), capacity, np.where(alive, caps, 0.0))
            small = alive & (sizes < m)
            if not small.any():
                return sizes, 0, dropped
            pull = small & (sizes >= self.min_notional_soft_frac * m)
            if (small & ~pull).any():
                alive &= ~(small & ~pull)
                dropped += int(np.sum(small & ~pull))
                continue
            left = capacity - float(m[pull].sum())
            rest = alive & ~pull
            sizes = np.where(pull, m, 0.0) + water_fill(
                np.where(rest, p, 0.0), max(left, 0.0), np.where(rest, caps, 0.0)
            )
            short = rest & (sizes < m)
            if left >= 0 and not short.any():
                return sizes, int(pull.sum()), dropped
            # the pulls crowd out other levels (or overrun the budget): give up the least-preferred level
            candidates = np.flatnonzero(short if (left >= 0 and short.any()) else pull)
            alive[candidates[np.argmin(p[candidates])]] = False
            dropped += 1
        return np.zeros_like(p), 0, dropped


@functools.lru_cache(maxsize=256)
def _rank_utilities(n: int) -> NDArray[np.float64]:
    """``1 - 2k/(n - 1)`` for ranks ``k = 0..n-1`` (best = 1, worst = -1), ``n >= 2``; read-only (it is shared)."""
    u = 1.0 - 2.0 * np.arange(n, dtype=np.float64) / (n - 1)
    u.flags.writeable = False
    return u


def _softmax(u: NDArray[np.float64], t: float) -> NDArray[np.float64]:
    z = u / t
    e = np.exp(z - z.max())
    return e / e.sum()


def _entropy(p: NDArray[np.float64]) -> float:
    q = p[p > 0]
    return float(-(q * np.log(q)).sum())


def project_to_min_entropy(u: NDArray[np.float64], temperature: float, target_nats: float) -> float:
    """Smallest-found temperature whose softmax reaches ``target_nats`` of entropy (bisection on [0.01, 10·T]).

    ``H(softmax(u/T))`` rises with T, so bisection applies; it runs 20 iterations or stops once within
    0.01 nats, and returns the upper end so that the floor is met (up to that tolerance).
    """
    lo, hi = _BISECT_T_MIN, 10.0 * temperature
    for _ in range(_BISECT_ITERATIONS):
        mid = 0.5 * (lo + hi)
        h = _entropy(_softmax(u, mid))
        if abs(h - target_nats) < _BISECT_TOL_NATS and h >= target_nats - _BISECT_TOL_NATS:
            return mid
        if h < target_nats:
            lo = mid
        else:
            hi = mid
    return hi
