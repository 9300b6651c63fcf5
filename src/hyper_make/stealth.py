"""Stealth layer (RFC step 4): randomise the optimal ladder so that it cannot be read off, at a measured cost.

The exact allocator is deterministic: the same book gives the same ladder, which an adversary can learn. Two
seedable ways to randomise it, both reporting their expected-PnL cost against the optimum (USD, ``>= 0`` up to
lot rounding):

* ``"dirichlet"``: Thompson-style noise on the *shape*: weights ``w_i = s_i* / Σ s*`` of the optimum, draw
  ``p ~ Dirichlet(κ·w)`` over the levels the optimum uses (mean ``w``, variance ``w(1-w)/(κ+1)``), rest the same
  total ``Σ s*`` as ``p·Σ s*``, then re-impose the constraints: caps (excess re-spread by ``p``), the lot grid
  (floor), and the minimum order (a level pushed below it is dropped and its share re-spread).
* ``"posterior"``: Thompson sampling on the *parameters*: draw ``a_i' = a_i·(1 + σ_a·z_i)`` and
  ``b_i' = b_i·exp(σ_b·z_i' - σ_b²/2)`` (mean ``b_i``), then solve the drawn problem exactly (continuous, lots,
  minimum order). The cost is measured under the point estimates ``(a, b)``.

``StealthConfig(mode="off")`` (the default) leaves the allocation untouched. This module is the one stealth stage:
the ladder applies ``LadderConfig.stealth`` between the allocator and the exchange projection, and the registered
allocators ``"impact-dirichlet"`` and ``"impact-posterior"`` are the impact allocator plus a :class:`StealthConfig`
(their ``stealth`` attribute) applied by the same :func:`apply_stealth`, so that a simulator can run them by name.
A stage never runs twice on one allocation (setting both is refused with a one-line error naming both settings),
and its cost is always measured against the allocator's unperturbed answer.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numba as nb
import numpy as np
from numpy.typing import NDArray

from ._validate import PYDANTIC_CONFIG, check_choice, check_real
from .allocate._base import AllocationResult, SideProblem
from .allocate._convex import solve_concave
from .allocate._discrete import discrete_allocation
from .economics.curve import LevelCurves
from .errors import InvalidParameterError
from .instrument import lots_to_coins

StealthMode = Literal["off", "dirichlet", "posterior"]


@dataclass(frozen=True, kw_only=True, slots=True)
class StealthConfig:
    """Which stealth stage runs after the allocator, and how much noise it adds.

    Parameters
    ----------
    mode : {"off", "dirichlet", "posterior"}, default "off"
        No stealth, Dirichlet noise around the optimal weights, or posterior draws of the curves + exact solve.
    concentration : float, default 100.0
        ``κ`` of the Dirichlet (dimensionless), ``> 0``: the share of a level with weight ``w`` has standard
        deviation ``√(w(1-w)/(κ+1))``; 100 gives about ±5 points on a level at 50 %. On the default market it
        costs about 1 % of the optimal expected PnL on average (``benchmarks/rfc_evidence.py``).
    edge_sd_frac : float, default 0.05
        Posterior standard deviation of each level's linear edge ``a_i``, as a fraction of ``|a_i|``, in ``[0, 5]``.
    impact_sd_log : float, default 0.1
        Posterior standard deviation of ``log b_i`` (impact coefficient), in ``[0, 5]``. With the default edge
        noise: about ±5 points of share per level and 4 % of the optimal expected PnL on the default market.
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    mode: StealthMode = "off"
    concentration: float = 100.0
    edge_sd_frac: float = 0.05
    impact_sd_log: float = 0.1

    def __post_init__(self) -> None:
        check_choice("stealth.mode", self.mode, ("off", "dirichlet", "posterior"))
        check_real("stealth.concentration", self.concentration, lo=0.0, lo_open=True, hi=1e12)
        check_real("stealth.edge_sd_frac", self.edge_sd_frac, lo=0.0, hi=5.0)
        check_real("stealth.impact_sd_log", self.impact_sd_log, lo=0.0, hi=5.0)


@nb.njit(cache=True)
def _spread_lots(w, total, caps, lot, m_lots, out_lots):  # type: ignore[no-untyped-def]
    """Compiled core of :func:`_lots_with_minimum`: water-fill, floor to lots, drop levels below their minimum."""
    n = w.shape[0]
    alive = w > 0.0
    sizes = np.zeros(n)
    for _ in range(n + 1):
        # water-fill ``total`` by the weights of the alive levels under the caps
        for i in range(n):
            sizes[i] = 0.0
        free = alive.copy()
        left = total
        for _ in range(n + 1):
            wsum = 0.0
            for i in range(n):
                if free[i]:
                    wsum += w[i]
            if left <= 0.0 or wsum <= 0.0:
                break
            over = False
            for i in range(n):
                if free[i] and sizes[i] + left * w[i] / wsum >= caps[i]:
                    over = True
            if not over:
                for i in range(n):
                    if free[i]:
                        sizes[i] += left * w[i] / wsum
                break
            for i in range(n):
                if free[i] and sizes[i] + left * w[i] / wsum >= caps[i]:
                    left -= caps[i] - sizes[i]
                    sizes[i] = caps[i]
                    free[i] = False
        small = False
        for i in range(n):
            out_lots[i] = int(math.floor(np.round(sizes[i] / lot, 6)))  # noqa: RUF046 (numba floor may give a float)
            if alive[i] and (out_lots[i] < m_lots[i]):
                alive[i] = False
                small = True
        if not small:
            return True
        if not alive.any():
            break
    for i in range(n):
        out_lots[i] = 0
    return False


def _lots_with_minimum(p: NDArray[np.float64], total: float, problem: SideProblem) -> NDArray[np.float64]:
    """Spread ``total`` coins by weights ``p`` under the caps, on the lot grid, every level 0 or >= its minimum.

    A level whose floored size is below its minimum order (or zero) is dropped and its weight re-spread; each pass
    drops at least one level, so this ends in at most ``n`` passes.
    """
    lot = float(problem.lot_coins)
    m_lots = np.maximum(np.ceil(np.round(problem.min_size_coins / lot, 6)), 1.0)
    lots = np.zeros(p.shape[0], dtype=np.int64)
    _spread_lots(p, float(total), problem.caps_coins, lot, m_lots, lots)
    return lots_to_coins(lots, lot)


def dirichlet_sizes(
    sizes: NDArray[np.float64], problem: SideProblem, concentration: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Dirichlet draw around the weights of ``sizes`` (coins), same total, constraints re-imposed (coins)."""
    total = float(sizes.sum())
    active = sizes > 0
    if total <= 0 or not active.any():
        return np.zeros_like(sizes)
    alpha = concentration * sizes[active] / total
    g = rng.gamma(alpha)
    p = np.zeros_like(sizes)
    gs = float(g.sum())
    p[active] = g / gs if gs > 0 else sizes[active] / total
    return _lots_with_minimum(p, total, problem)


def posterior_curves(
    curves: LevelCurves, config: StealthConfig, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """One posterior draw ``(a', b')`` of the side's curves (USD per coin, USD per coin^(1+β))."""
    a, b = curves.a, curves.b
    z = rng.standard_normal((2, a.shape[0]))
    a_draw = a * (1.0 + config.edge_sd_frac * z[0])
    s = config.impact_sd_log
    b_draw = b * np.exp(s * z[1] - 0.5 * s * s)
    return a_draw, b_draw


def apply_stealth(
    problem: SideProblem,
    result: AllocationResult,
    config: StealthConfig,
    rng: np.random.Generator,
    *,
    discrete: bool = True,
) -> AllocationResult:
    """The stealth stage: ``result`` randomised as ``config`` says, with its cost in the diagnostics.

    Diagnostics added: ``stealth_mode``, ``stealth_cost_usd`` (the unperturbed allocation's expected PnL minus the
    randomised one, under the side's curves, USD) and ``stealth_cost_frac`` (that cost over ``|unperturbed PnL|``;
    0 when it is 0). ``shadow_price`` and ``binding`` stay those of the unperturbed allocation.

    Raises
    ------
    InvalidParameterError
        If ``result`` already went through a stealth stage: its PnL is no longer the unperturbed one, so a second
        stage would report its cost against a randomised ladder (and randomise twice).
    """
    if config.mode == "off" or not result.sizes.any():
        return result
    if "stealth_mode" in result.diagnostics:
        raise InvalidParameterError(
            f"stealth stage {config.mode!r} applied to an allocation that already went through stealth "
            f"{result.diagnostics['stealth_mode']!r}; apply one stealth stage only"
        )
    t0 = time.perf_counter_ns()
    c = problem.curves
    if config.mode == "dirichlet":
        sizes = dirichlet_sizes(result.sizes, problem, config.concentration, rng)
    else:
        a_draw, b_draw = posterior_curves(c, config, rng)
        drawn = solve_concave(a_draw, b_draw, float(problem.budget_coins), float(c.beta), problem.caps_coins)
        sizes = drawn.sizes
        if discrete and drawn.binding != "empty":
            sizes = discrete_allocation(
                a_draw,
                b_draw,
                float(c.beta),
                float(problem.lot_coins),
                float(problem.budget_coins),
                problem.caps_coins,
                problem.min_size_coins,
            ).sizes
    pnl = float(c.value(sizes).sum())
    base = result.expected_pnl_usd
    cost = base - pnl
    diag = dict(result.diagnostics)
    diag |= {
        "stealth_mode": config.mode,
        "stealth_cost_usd": cost,
        "stealth_cost_frac": cost / abs(base) if base != 0 else 0.0,
        "stealth_ns": time.perf_counter_ns() - t0,
    }
    return AllocationResult(
        sizes=sizes,
        expected_pnl_usd=pnl,
        shadow_price=result.shadow_price,
        binding=result.binding,
        message=result.message + f"; stealth {config.mode} costs {cost:.4g} USD",
        diagnostics=diag,
    )


__all__ = [
    "StealthConfig",
    "StealthMode",
    "apply_stealth",
    "dirichlet_sizes",
    "posterior_curves",
]
