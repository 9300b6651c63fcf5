"""The compiled fast path of :func:`hyper_make.build_ladder`: the same orders, arrays out, in microseconds.

``FastLadder(spec, allocator, config)`` compiles the configuration once; ``.build(snapshot, ...)`` takes
``build_ladder``'s per-refresh arguments and returns a :class:`FastBuild` (prices, sizes, depths and levels per
side, the reservation price, the allocator state, the orders' curve terms), with ``.ladder()`` building the full
:class:`~hyper_make.ladder.Ladder` only when asked. Importing this package loads numba kernels: the library
imports it lazily (in the refresh core and the benchmarks), not at ``import hyper_make``.
"""

from ._kernel import ROWS
from ._ladder import FastBuild, FastLadder, compiled_reason


def warm_up() -> None:
    """Compile, or load from numba's on-disk cache, the fast path's kernels: one build with the Dirichlet stealth stage
    and one with the entropy allocator on a synthetic market (they reach every kernel a build calls). Nothing is
    kept. :func:`hyper_make.allocate.warm_up` calls it."""
    import numpy as np

    from ..allocate import warm_market
    from ..ladder import LadderConfig
    from ..levels import GridConfig
    from ..stealth import StealthConfig

    snap, spec = warm_market()
    grid = GridConfig(n_levels=6)
    for name, stage in (("impact", "dirichlet"), ("entropy", "off")):
        cfg = LadderConfig(grid=grid, stealth=StealthConfig(mode=stage))  # type: ignore[arg-type]
        FastLadder(spec, name, cfg).build(snap, rng=np.random.default_rng(0))


__all__ = ["ROWS", "FastBuild", "FastLadder", "compiled_reason", "warm_up"]
