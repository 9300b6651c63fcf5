"""Baseline allocators behind the same interface, for comparisons (none of them looks at impact).

* ``greedy``: levels in order of their linear edge ``a_i`` (best expected PnL per coin first), each filled to
  its cap until the budget is spent; positive edges only; tied edges share equally. With the ladder's per-level
  cap lifted (``level_cap_frac = 1``) this is the RFC's *concentration collapse*: the whole budget at one level.
  With the default cap (25 % of the budget per level) the cap, not the economics, spreads it over four levels.
* ``flat``: the same size at every level of the grid (Hummingbot's ``order_levels`` with a zero
  ``order_level_amount``), the whole budget spent, whatever the edges.
* ``progression``: an arithmetic progression filled from the touch (Hummingbot ``order_amount`` +
  ``k·order_level_amount``): level k asks for ``first_frac + k·step_frac`` of the budget, levels are filled from
  the touch outwards until the budget runs out (the last one partially).

Every baseline honours the caps: size a capped level cannot take moves on to the next level in its order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from .._validate import PYDANTIC_CONFIG, check_real
from ._base import AllocationResult, Binding, SideProblem, empty_result, water_fill


def fill_in_order(
    order: NDArray[np.intp], asks: NDArray[np.float64], budget: float, caps: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Give each level in ``order`` ``min(ask, cap, what is left)`` coins; what a cap refuses moves on."""
    sizes = np.zeros(caps.shape[0])
    left = float(budget)
    carry = 0.0
    for i in order:
        if left <= 0:
            break
        take = min(float(asks[i]) + carry, float(caps[i]), left)
        carry = float(asks[i]) + carry - take
        sizes[i] = take
        left -= take
    return sizes


def _result(problem: SideProblem, sizes: NDArray[np.float64], message: str) -> AllocationResult:
    total = float(sizes.sum())
    binding: Binding = "budget" if total >= problem.budget_coins * (1 - 1e-12) else "caps"
    return AllocationResult(
        sizes=sizes,
        expected_pnl_usd=float(problem.curves.value(sizes).sum()),
        shadow_price=float("nan"),
        binding=binding,
        message=message,
    )


@dataclass(frozen=True, kw_only=True)
class GreedyAllocator:
    """All the budget at the best-edge level (then the next, when a cap stops it): the concentration collapse."""

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    name: ClassVar[str] = "greedy"
    needs_impact: ClassVar[bool] = False

    def allocate(self, problem: SideProblem, rng: np.random.Generator) -> AllocationResult:
        """Fill levels by decreasing linear edge ``a_i > 0`` up to their caps until the budget is spent."""
        a = problem.curves.a
        if a.size == 0:
            return empty_result(0, "no price levels on this side")
        pos = np.flatnonzero(a > 0)
        if pos.size == 0:
            return empty_result(a.size, "no level has a positive edge")
        caps = problem.caps_coins
        sizes = np.zeros(a.size)
        left = float(problem.budget_coins)
        # groups of equal edge, best first; a tie shares its group's fill equally (within the caps)
        for edge in np.unique(a[pos])[::-1]:
            if left <= 1e-12 * problem.budget_coins:  # spent, up to the rounding of the sums
                break
            group = (a == edge).astype(np.float64)
            sizes += water_fill(group, left, np.where(group > 0, caps, 0.0))
            left = float(problem.budget_coins) - float(sizes.sum())
        return _result(problem, sizes, f"best edge at level {int(np.argmax(a))}")


@dataclass(frozen=True, kw_only=True)
class FlatAllocator:
    """The same size at every level (the whole budget, within the caps)."""

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    name: ClassVar[str] = "flat"
    needs_impact: ClassVar[bool] = False

    def allocate(self, problem: SideProblem, rng: np.random.Generator) -> AllocationResult:
        """``budget / n`` per level, re-spread where a cap binds."""
        n = problem.curves.n
        if n == 0:
            return empty_result(0, "no price levels on this side")
        sizes = water_fill(np.ones(n), problem.budget_coins, problem.caps_coins)
        return _result(problem, sizes, f"{n} equal levels")


@dataclass(frozen=True, kw_only=True)
class ProgressionAllocator:
    """Arithmetic progression from the touch: level k asks for ``(first_frac + k·step_frac)·budget``.

    Parameters
    ----------
    first_frac : float, default 0.05
        Size of the touch level as a fraction of the side budget, in ``(0, 1]``.
    step_frac : float, default 0.025
        Increase per level outwards, as a fraction of the side budget, in ``[0, 1]`` (Hummingbot's
        ``order_level_amount``; 0 gives a flat grid filled from the touch).
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    name: ClassVar[str] = "progression"
    needs_impact: ClassVar[bool] = False

    first_frac: float = 0.05
    step_frac: float = 0.025

    def __post_init__(self) -> None:
        check_real("progression.first_frac", self.first_frac, lo=0.0, lo_open=True, hi=1.0)
        check_real("progression.step_frac", self.step_frac, lo=0.0, hi=1.0)

    def allocate(self, problem: SideProblem, rng: np.random.Generator) -> AllocationResult:
        """Fill from the touch outwards with growing sizes until the budget runs out."""
        n = problem.curves.n
        if n == 0:
            return empty_result(0, "no price levels on this side")
        budget = problem.budget_coins
        asks = (self.first_frac + self.step_frac * np.arange(n)) * budget
        sizes = fill_in_order(np.arange(n), asks, budget, problem.caps_coins)
        return _result(problem, sizes, f"progression over {int(np.count_nonzero(sizes))} levels from the touch")


__all__ = ["FlatAllocator", "GreedyAllocator", "ProgressionAllocator", "fill_in_order"]
