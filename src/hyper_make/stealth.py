"""Stealth layer (RFC step 4): Dirichlet noise around the optimum, or posterior draws of the curves + exact solve.

The implementation lives in :mod:`hyper_make.allocate._stealth` (next to the allocators it wraps, so that the
registry can name ``"impact-dirichlet"`` and ``"impact-posterior"`` without an import cycle); this module is its
public face. Configure the ladder's stage with ``LadderConfig(stealth=StealthConfig(mode="dirichlet"))`` or, in
TOML, ``[ladder.stealth] mode = "posterior"``.
"""

from __future__ import annotations

from .allocate._stealth import (
    ImpactDirichletAllocator,
    ImpactPosteriorAllocator,
    StealthConfig,
    StealthMode,
    apply_stealth,
    dirichlet_sizes,
    posterior_curves,
)

__all__ = [
    "ImpactDirichletAllocator",
    "ImpactPosteriorAllocator",
    "StealthConfig",
    "StealthMode",
    "apply_stealth",
    "dirichlet_sizes",
    "posterior_curves",
]
