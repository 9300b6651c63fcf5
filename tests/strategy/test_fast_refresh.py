"""The refresh core on the fast path gives the reference path's run: the same fills and PnL on a simulated path
(the replay: ``tests/data/test_fast_replay.py``).

``QuoterConfig.fast_path`` (default on) builds each ladder with :class:`hyper_make.fast.FastLadder`; off, with the
Python :func:`hyper_make.build_ladder`. The fast path's orders are the reference's, so every run must be identical
to the last bit, whether the allocator is compiled (``impact``, ``greedy``) or runs the reference inside
(``entropy``, ``learned``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hyper_make.sim.config import SimConfig, with_overrides
from hyper_make.sim.strategy import run_path
from hyper_make.strategy.quoter import QuoterConfig

SHORT = with_overrides(SimConfig(), horizon_s=300.0)
REFERENCE = with_overrides(SHORT, quoter=replace(SHORT.strategy.quoter, fast_path=False))


@pytest.mark.parametrize("allocator", ["impact", "greedy", "progression", "entropy", "learned"])
def test_a_simulated_path_is_the_same_on_the_fast_and_the_reference_path(allocator: str) -> None:
    fast = run_path(SHORT, allocator, 11, record=True)
    ref = run_path(REFERENCE, allocator, 11, record=True)
    assert fast.events == ref.events and fast.fills == ref.fills
    assert fast.pnl_usd == ref.pnl_usd and fast.decomposition == ref.decomposition
    assert fast.effective_levels == ref.effective_levels
    assert fast.fills > 0  # the path traded
    assert fast.shapes is not None and ref.shapes is not None and np.array_equal(fast.shapes, ref.shapes)


def test_the_quoter_config_flag_is_checked() -> None:
    with pytest.raises(Exception, match="fast_path"):
        QuoterConfig(fast_path="yes")  # type: ignore[arg-type]


def test_a_fast_path_that_cannot_load_falls_back_to_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """When ``hyper_make.fast`` cannot be imported (a NumPy whose loops it cannot call), the refresh core warns once
    and builds with the reference instead of failing."""
    import sys

    from hyper_make import LadderConfig, default_snapshot, default_spec, make_allocator
    from hyper_make.allocate import warm_up
    from hyper_make.strategy.orders import CloidFactory
    from hyper_make.strategy.quoter import Quoter

    monkeypatch.setitem(sys.modules, "hyper_make.fast", None)  # ``import hyper_make.fast`` raises ImportError
    with pytest.warns(RuntimeWarning, match="Python reference"):
        q = Quoter(spec=default_spec(), allocator=make_allocator("impact"), prior=default_snapshot(),
                   ladder=LadderConfig(), config=QuoterConfig(), cloids=CloidFactory())  # fmt: skip
    assert q._fast is None
    warm_up()  # no error either
