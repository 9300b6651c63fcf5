"""Done-when of the quoting loop: against the local exchange, through the SDK, a few simulated minutes with each
allocator: no rejected order, the position and its worst case within the limit at every moment (from the
exchange's own state), every order cancelled at exit, and our PnL and position equal to the exchange's."""

from __future__ import annotations

import pytest

from hyper_make.allocate import ALLOCATORS
from live_harness import MAX_POSITION, check_run, run_loop


@pytest.mark.parametrize("allocator", sorted(ALLOCATORS))
def test_loop_each_allocator_reconciles_within_limits(allocator):
    run = run_loop(allocator)  # 12 s of wall time, 2 minutes of market time
    s = run.summary
    check_run(run)
    assert s["stop_reason"] == "duration"
    assert s["orders_sent"] > 0 and s["fills"] > 0  # the market did trade with us
    assert s["max_abs_position"] > 0.25 * MAX_POSITION  # ... enough to move the position well toward its limit
    assert s["dead_man_sets"] >= 1
