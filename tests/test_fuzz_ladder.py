"""A fixed-time fuzz of the whole pipeline: random valid markets × every allocator, rules checked independently.

The cases and the checks are in ``ladder_fuzz.py`` (``benchmarks/fuzz_ladder.py --seconds N`` runs it longer).
Seeded: case ``i`` comes from ``default_rng([seed, i])``, so a failure prints what reproduces it.
"""

from __future__ import annotations

import ladder_fuzz
from hyper_make import warm_up

#: Wall time of the CI run (s) and the fewest builds it makes on a slow machine.
SECONDS, MIN_BUILDS, SEED = 3.0, 300, 20261201


def test_random_markets_give_valid_ladders_for_every_allocator():
    warm_up()
    stats = ladder_fuzz.run(SECONDS, SEED, min_builds=MIN_BUILDS)
    shown = "\n".join(f"case({s}, {i}) with {name!r}: {what}" for s, i, name, what in stats.failures[:10])
    assert not stats.failures, f"{len(stats.failures)} failing builds of {stats.builds}:\n{shown}"
    assert stats.builds >= MIN_BUILDS * 0.8
    assert set(stats.per_allocator) == set(ladder_fuzz.NAMES)
