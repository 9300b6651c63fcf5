"""The named stealth allocators: the impact allocator plus a stealth setting, applied by :mod:`hyper_make.stealth`.

``"impact-dirichlet"`` and ``"impact-posterior"`` let a simulator or a comparison run the stealth modes by name.
Each is :class:`~hyper_make.allocate.ImpactAllocator` with a :class:`~hyper_make.stealth.StealthConfig` (its
``stealth`` attribute) that :func:`hyper_make.stealth.apply_stealth`, the one stealth stage, applies to the exact
optimum; :func:`hyper_make.build_ladder` refuses a second stage (``[ladder.stealth]``) on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from .._validate import check_real
from ._base import AllocationResult, SideProblem
from ._convex import ImpactAllocator

if TYPE_CHECKING:
    from ..stealth import StealthConfig


class _StealthAllocator(ImpactAllocator):
    """The impact allocator whose answer goes through the stealth stage configured by :attr:`stealth`."""

    @property
    def stealth(self) -> StealthConfig:  # pragma: no cover - each subclass defines it
        raise NotImplementedError

    def allocate(self, problem: SideProblem, rng: np.random.Generator) -> AllocationResult:
        """Exact optimum, then the stealth stage (cost against that optimum in ``stealth_cost_usd``)."""
        from ..stealth import apply_stealth

        return apply_stealth(problem, super().allocate(problem, rng), self.stealth, rng, discrete=self.discrete)


@dataclass(frozen=True, kw_only=True)
class ImpactDirichletAllocator(_StealthAllocator):
    """The impact allocator followed by the Dirichlet stealth stage (see :class:`~hyper_make.StealthConfig`).

    Parameters
    ----------
    concentration : float, default 100.0
        Dirichlet ``κ`` (dimensionless), ``> 0``; larger = closer to the optimum.
    """

    name: ClassVar[str] = "impact-dirichlet"

    concentration: float = 100.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_real("impact-dirichlet.concentration", self.concentration, lo=0.0, lo_open=True, hi=1e12)

    @property
    def stealth(self) -> StealthConfig:
        """The stealth setting this allocator applies: ``mode = "dirichlet"`` with its concentration."""
        from ..stealth import StealthConfig

        return StealthConfig(mode="dirichlet", concentration=self.concentration)


@dataclass(frozen=True, kw_only=True)
class ImpactPosteriorAllocator(_StealthAllocator):
    """Thompson sampling: the exact optimum of curves drawn from their posterior (:class:`~hyper_make.StealthConfig`).

    Parameters
    ----------
    edge_sd_frac : float, default 0.05
        Posterior sd of ``a_i`` as a fraction of ``|a_i|``, in ``[0, 5]``.
    impact_sd_log : float, default 0.1
        Posterior sd of ``log b_i``, in ``[0, 5]``.
    """

    name: ClassVar[str] = "impact-posterior"

    edge_sd_frac: float = 0.05
    impact_sd_log: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_real("impact-posterior.edge_sd_frac", self.edge_sd_frac, lo=0.0, hi=5.0)
        check_real("impact-posterior.impact_sd_log", self.impact_sd_log, lo=0.0, hi=5.0)

    @property
    def stealth(self) -> StealthConfig:
        """The stealth setting this allocator applies: ``mode = "posterior"`` with its posterior widths."""
        from ..stealth import StealthConfig

        return StealthConfig(mode="posterior", edge_sd_frac=self.edge_sd_frac, impact_sd_log=self.impact_sd_log)


__all__ = ["ImpactDirichletAllocator", "ImpactPosteriorAllocator"]
