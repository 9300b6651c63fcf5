"""The compiled fast path of :func:`hyper_make.build_ladder`: the same orders, arrays out, in microseconds.

``FastLadder(spec, allocator, config)`` compiles the configuration once; ``.build(snapshot, ...)`` takes
``build_ladder``'s per-refresh arguments and returns a :class:`FastBuild` (prices, sizes, depths and levels per
side, the reservation price, the allocator state, the orders' curve terms), with ``.ladder()`` building the full
:class:`~hyper_make.ladder.Ladder` only when asked. Importing this package loads numba kernels: the library
imports it lazily (in the refresh core and the benchmarks), not at ``import hyper_make``.
"""

from ._kernel import ROWS
from ._ladder import FastBuild, FastLadder, compiled_reason

__all__ = ["ROWS", "FastBuild", "FastLadder", "compiled_reason"]
