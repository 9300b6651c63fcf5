"""Baselines: greedy (concentration collapse), flat grid, arithmetic progression from the touch."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import curves_from_edges, problem
from hyper_make import (
    FlatAllocator,
    GreedyAllocator,
    InvalidParameterError,
    LadderConfig,
    ProgressionAllocator,
    build_ladder,
    default_snapshot,
    default_spec,
)

RNG = np.random.default_rng(0)


def test_greedy_without_caps_is_the_concentration_collapse():
    res = GreedyAllocator().allocate(problem(curves_from_edges([1.0, 4.0, 3.0, -2.0], b=50.0)), RNG)
    assert res.sizes.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert res.binding == "budget"


def test_greedy_with_caps_fills_by_edge_order():
    res = GreedyAllocator().allocate(problem(curves_from_edges([1.0, 4.0, 3.0, -2.0]), cap_frac=0.4), RNG)
    assert res.sizes == pytest.approx([0.2, 0.4, 0.4, 0.0])


def test_greedy_with_no_positive_edge_is_empty():
    res = GreedyAllocator().allocate(problem(curves_from_edges([-1.0, -4.0])), RNG)
    assert res.binding == "empty" and not res.sizes.any()


def test_flat_is_equal_and_spends_the_budget():
    res = FlatAllocator().allocate(problem(curves_from_edges([1.0, -4.0, 3.0, 2.0])), RNG)
    assert res.sizes == pytest.approx([0.25] * 4) and res.total_coins == pytest.approx(1.0)


def test_progression_grows_from_the_touch_until_the_budget_runs_out():
    res = ProgressionAllocator(first_frac=0.1, step_frac=0.1).allocate(problem(curves_from_edges([1.0] * 6)), RNG)
    assert res.sizes == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.0, 0.0])
    capped = ProgressionAllocator(first_frac=0.1, step_frac=0.1).allocate(
        problem(curves_from_edges([1.0] * 6), cap_frac=0.25), RNG
    )
    assert capped.sizes.max() <= 0.25 + 1e-15 and capped.total_coins == pytest.approx(1.0)


def test_progression_options_are_checked():
    with pytest.raises(InvalidParameterError, match=r"progression\.first_frac"):
        ProgressionAllocator(first_frac=0.0)
    with pytest.raises(InvalidParameterError, match=r"progression\.step_frac"):
        ProgressionAllocator(step_frac=-0.1)


def test_on_the_default_market_greedy_collapses_and_loses_to_impact():
    snap, spec = default_snapshot(), default_spec()
    lifted = LadderConfig(level_cap_frac=1.0)
    from hyper_make import make_allocator

    greedy = build_ladder(snap, spec, make_allocator("greedy"), config=lifted, rng=0)
    impact = build_ladder(snap, spec, make_allocator("impact"), config=lifted, rng=0)
    assert len(greedy.bids) == 1 and greedy.bid.effective_levels == pytest.approx(1.0)
    assert impact.bid.expected_pnl_usd > greedy.bid.expected_pnl_usd
    assert len(impact.bids) >= 3
