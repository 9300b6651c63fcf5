"""The level grid: tick enumeration moves many ticks at once and matches the one-tick walk."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyper_make import GridConfig, InstrumentSpec, LadderConfig, build_ladder, default_snapshot, default_spec
from hyper_make.levels import _step, _step_ticks


@settings(max_examples=200, deadline=None)
@given(
    sz=st.integers(0, 6),
    side=st.sampled_from(["bid", "ask"]),
    log_px=st.floats(-4.0, 6.5),
    k=st.integers(1, 400),
)
def test_many_ticks_at_once_equal_the_one_tick_walk(sz, side, log_px, k):
    spec = InstrumentSpec(coin="X", sz_decimals=sz)
    p = spec.round_price(10**log_px, side)
    if p <= 0:
        return
    walked = p
    for _ in range(k):
        walked = _step(spec, walked, side)
        if walked <= 0:
            walked = 0.0
            break
    assert _step_ticks(spec, p, side, k) == walked


@pytest.mark.timeout(30)
def test_a_coarse_tick_grid_is_built_without_walking_every_tick():
    # ticks_per_level 10^6 on 200 levels walked 2·10^8 ticks one by one (minutes); a decade at a time now
    grid = GridConfig(spacing="ticks", n_levels=200, ticks_per_level=1_000_000, max_depth_bps=5000.0)
    ladder = build_ladder(default_snapshot(), default_spec(), "flat", config=LadderConfig(grid=grid))
    prices = np.array([o.price for o in ladder.bids])
    assert prices.size and np.all(np.diff(prices) < 0)
