"""Contract tests run over every ALLOCATORS entry, on random side problems, and the ladder with stealth on.

(The exchange invariants of the built ladder for every allocator without stealth are in
``test_ladder_invariants.py``; here the same properties are checked with each stealth stage on.)
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import curves_from_edges
from hyper_make import ALLOCATORS, InvalidParameterError, StealthConfig, build_ladder, make_allocator
from hyper_make.allocate import SideProblem
from test_ladder_invariants import check_invariants, markets


@st.composite
def side_problems(draw):
    n = draw(st.integers(1, 25))
    edges = draw(st.lists(st.floats(-5.0, 10.0), min_size=n, max_size=n))
    b = np.array(draw(st.lists(st.sampled_from([0.0, 1.0, 50.0, 500.0]), min_size=n, max_size=n)))
    budget = draw(st.sampled_from([0.0, 0.001, 0.1, 1.0, 5.0]))
    cap = draw(st.sampled_from([0.1, 0.25, 1.0]))
    curves = curves_from_edges(edges, b=b, beta=draw(st.sampled_from([0.5, 1.0, 1.5])))
    return SideProblem(
        side="bid",
        curves=curves,
        budget_coins=budget,
        caps_coins=np.full(n, cap * budget),
        lot_coins=1e-5,
        min_size_coins=np.full(n, draw(st.sampled_from([0.0, 1e-4, 0.01]))),
    )


def snapshot_of(p: SideProblem) -> list[np.ndarray]:
    c = p.curves
    return [x.copy() for x in (c.fill_prob, c.capture_usd, c.adverse_usd, c.b_forward, c.b_roundtrip, p.caps_coins)]


@pytest.mark.parametrize("name", sorted(ALLOCATORS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prob=side_problems(), seed=st.integers(0, 2**32 - 1))
def test_allocator_contract(name, prob, seed):
    before = snapshot_of(prob)
    res = make_allocator(name).allocate(prob, np.random.default_rng(seed))
    again = make_allocator(name).allocate(prob, np.random.default_rng(seed))
    s = res.sizes
    assert s.shape == (prob.curves.n,)
    assert np.all(np.isfinite(s)) and np.all(s >= 0)
    assert s.sum() <= prob.budget_coins * (1 + 1e-12) + 1e-15, "budget"
    assert np.all(s <= prob.caps_coins * (1 + 1e-12) + 1e-15), "caps"
    assert np.array_equal(s, again.sizes), "same seed, same result"
    assert np.isfinite(res.expected_pnl_usd)
    assert res.expected_pnl_usd == pytest.approx(float(prob.curves.value(s).sum()), rel=1e-9, abs=1e-12)
    for x, y in zip(before, snapshot_of(prob), strict=True):
        assert np.array_equal(x, y), "a parameter was mutated"


@pytest.mark.parametrize("name", ["impact", "greedy", "flat"])
def test_equal_curves_get_equal_sizes(name):
    from helpers import problem

    res = make_allocator(name).allocate(problem(curves_from_edges([3.0, 3.0, 3.0], b=100.0)), np.random.default_rng(0))
    assert res.sizes[0] == pytest.approx(res.sizes[1]) == pytest.approx(res.sizes[2])


@pytest.mark.parametrize("mode", ["dirichlet", "posterior"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(market=markets(), seed=st.integers(0, 2**32 - 1))
def test_ladder_invariants_with_stealth(mode, market, seed):
    snap, spec, cfg = market
    cfg = dataclasses.replace(cfg, stealth=StealthConfig(mode=mode))
    check_invariants(build_ladder(snap, spec, make_allocator("impact"), config=cfg, rng=seed), snap, spec)


def test_unknown_allocator_and_option_errors_list_the_valid_ones():
    with pytest.raises(InvalidParameterError, match="choose one of"):
        make_allocator("nope")
    with pytest.raises(InvalidParameterError, match="valid options"):
        make_allocator("impact", temperature=1.0)
