"""The allocator contract: one side's payout curves and budget in, sizes and diagnostics out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ..economics.curve import LevelCurves
from ..snapshot import Regime

Binding = Literal["budget", "caps", "marginal", "empty"]
"""Which constraint stops the allocation: the side's budget, every level's cap, the marginal value reaching
zero before the budget is spent (impact allocator), or nothing to allocate (``empty``)."""


@dataclass(frozen=True, slots=True, eq=False)
class SideProblem:
    """Everything an allocator sees for one side of the ladder.

    Attributes
    ----------
    side : ``"bid"`` or ``"ask"``.
    curves : the levels' payout curves (shape ``(n_levels,)``), ordered from the touch outwards.
    budget_coins : most the side may rest in total (coins), ``>= 0``: position room, margin and caller limits.
    caps_coins : most each level may rest (coins), shape ``(n_levels,)``, ``>= 0``.
    lot_coins : exchange size increment (coins).
    min_size_coins : smallest order each level may rest to meet the minimum order value (coins), per level.
    regime : market regime (only the entropy allocator's temperature reads it).
    state : the allocator's own state after the previous refresh of this side (its ``AllocationResult.state``),
        ``None`` at the start. Allocators keep no hidden state across calls: what they carry is this value, so a
        warm-up or what-if call that does not pass its result's state on changes nothing.
    """

    side: Literal["bid", "ask"]
    curves: LevelCurves
    budget_coins: float
    caps_coins: NDArray[np.float64]
    lot_coins: float
    min_size_coins: NDArray[np.float64]
    regime: Regime = field(default_factory=Regime)
    state: object | None = None


@dataclass(frozen=True, slots=True, eq=False)
class AllocationResult:
    """Sizes per level and why they are what they are.

    Attributes
    ----------
    sizes : coins per level, shape ``(n_levels,)``, ``>= 0``, summing to at most the budget.
    expected_pnl_usd : ``Σ_i E[PnL]_i(s_i)`` under the side's curves (USD).
    shadow_price : ``λ``, marginal expected PnL of one more coin of budget (USD per coin); 0 when the
        budget does not bind, NaN for allocators that do not optimise.
    binding : which constraint stopped the allocation (see :data:`Binding`).
    message : one line for humans, e.g. why a side is empty.
    diagnostics : allocator-specific numbers (temperature, floor_bound, solve_ns, ...).
    state : the allocator's state after this call (an immutable value, ``None`` for stateless allocators), to
        pass as ``SideProblem.state`` on the next refresh of the same side.
    """

    sizes: NDArray[np.float64]
    expected_pnl_usd: float
    shadow_price: float
    binding: Binding
    message: str = ""
    diagnostics: dict[str, float | int | bool | str] = field(default_factory=dict)
    state: object | None = None

    @property
    def total_coins(self) -> float:
        """Total size allocated (coins)."""
        return float(self.sizes.sum())

    @property
    def entropy_nats(self) -> float:
        """Shannon entropy of the size shares ``H = -Σ p ln p`` (nats); 0 for an empty side."""
        return entropy_nats(self.sizes)

    @property
    def effective_levels(self) -> float:
        """``exp(H)``: the number of equally sized levels with the same entropy (0 for an empty side)."""
        total = float(self.sizes.sum())
        return float(np.exp(entropy_nats(self.sizes))) if total > 0 else 0.0

    def __repr__(self) -> str:
        return (
            f"AllocationResult(binding={self.binding!r}, message={self.message!r}, "
            f"expected_pnl_usd={self.expected_pnl_usd:.6g}, total_coins={self.total_coins:.6g}, "
            f"shadow_price={self.shadow_price:.6g}, sizes={np.array2string(self.sizes, precision=6)})"
        )


@runtime_checkable
class Allocator(Protocol):
    """Anything that turns a :class:`SideProblem` into an :class:`AllocationResult`.

    Implementations are frozen parameter bags with no hidden mutable state: an allocator that carries something
    from one refresh to the next (the entropy allocator's smoothed target) returns it as ``AllocationResult.state``
    and reads it back from ``SideProblem.state``, so the same call with the same inputs and seed always gives the
    same answer. ``rng`` is the only source of randomness. An optional ``needs_impact: ClassVar[bool]`` says whether
    the allocator reads the impact coefficients (``curves.b``); an allocator without it is assumed to need them.
    """

    name: ClassVar[str]

    def allocate(self, problem: SideProblem, rng: np.random.Generator) -> AllocationResult: ...


def entropy_nats(sizes: NDArray[np.float64]) -> float:
    """Shannon entropy of the shares ``p_i = s_i / Σ s`` in nats, ``0·ln 0 = 0``."""
    s = np.asarray(sizes, dtype=np.float64)
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s[s > 0] / total
    return float(-np.sum(p * np.log(p)))


def empty_result(
    n: int,
    message: str,
    state: object | None = None,
    diagnostics: dict[str, float | int | bool | str] | None = None,
) -> AllocationResult:
    """An allocation with nothing resting, the reason, the allocator's state after the call and its diagnostics."""
    return AllocationResult(
        sizes=np.zeros(n),
        expected_pnl_usd=0.0,
        shadow_price=0.0,
        binding="empty",
        message=message,
        diagnostics=dict(diagnostics or {}),
        state=state,
    )


def water_fill(weights: NDArray[np.float64], total: float, caps: NDArray[np.float64]) -> NDArray[np.float64]:
    """Split ``total`` in proportion to ``weights`` without exceeding ``caps``; the excess goes to the rest.

    Returns sizes ``s`` with ``s <= caps`` and ``Σ s = min(total, Σ caps over weights > 0)``.
    """
    w = np.maximum(np.asarray(weights, dtype=np.float64), 0.0)
    s = np.zeros_like(w)
    free = w > 0
    remaining = float(total)
    for _ in range(w.shape[0] + 1):
        if remaining <= 0 or not free.any():
            break
        share = remaining * w * free / w[free].sum()
        over = free & (s + share >= caps)
        if not over.any():
            s += share
            break
        remaining -= float(np.sum(caps[over] - s[over]))
        s[over] = caps[over]
        free &= ~over
    return s
