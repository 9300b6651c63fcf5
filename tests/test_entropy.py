"""The legacy entropy allocator: behaviours the original system's tests asserted, and its mechanics."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from helpers import curves_from_edges, problem
from hyper_make import EntropyAllocator, InvalidParameterError, MarketSnapshot, Regime, build_ladder, side_budget
from hyper_make.allocate import EntropyState, entropy_nats, project_to_min_entropy
from hyper_make.defaults import default_spec

ONE_STRONG = [25.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0, -9.0, -10.0, -11.0]


def test_one_strong_level_does_not_collapse():
    # Arrange: one strong level, every other level with negative EV
    alloc = EntropyAllocator(thompson_samples=0)
    # Act
    p, _diag = alloc.distribution(problem(curves_from_edges(ONE_STRONG)))
    # Assert: the original's numbers, H >= 1.2 nats and every level >= 1 %
    assert entropy_nats(p) >= 1.2
    assert p.min() >= 0.01
    assert p.sum() == pytest.approx(1.0)
    assert p.argmax() == 0


def test_one_strong_level_with_thompson_sampling_still_spreads():
    alloc = EntropyAllocator()
    res = alloc.allocate(problem(curves_from_edges(ONE_STRONG)), np.random.default_rng(1))
    assert res.entropy_nats >= 1.2
    assert res.total_coins == pytest.approx(1.0)


def test_toxic_regime_spreads_over_at_least_four_levels():
    alloc = EntropyAllocator(thompson_samples=0)
    toxic = Regime(toxicity=3.0, vol_ratio=2.0, cascade_severity=0.5)
    p, diag = alloc.distribution(problem(curves_from_edges(ONE_STRONG), regime=toxic))
    assert int(np.sum(p > 0.01)) >= 4
    assert math.exp(entropy_nats(p)) >= 3.5
    assert diag["temperature"] == pytest.approx(3.0)  # capped at 3x the base


@pytest.mark.parametrize(
    ("regime", "expected"),
    [
        (Regime(), 1.0),
        (Regime(toxicity=2.0), 1.5),  # x(1 + 0.5·(2 − 1))
        (Regime(vol_ratio=4.0), 2.0),  # x√4
        (Regime(cascade_severity=0.5), 1.5),  # x(1 + 0.5)
        (Regime(cascade_severity=0.1), 1.0),  # not above 0.1
        (Regime(toxicity=0.5, vol_ratio=0.5), 1.0),  # calm regimes never cool below the base
        (Regime(toxicity=9.0, vol_ratio=9.0), 3.0),  # cap
    ],
)
def test_adaptive_temperature(regime, expected):
    assert EntropyAllocator().temperature(regime) == pytest.approx(expected)
    assert EntropyAllocator(adaptive_temperature=False).temperature(regime) == 1.0


def test_entropy_floor_binds_and_is_met_by_bisection():
    # a cold softmax concentrates: the floor must push the temperature up until H reaches the target
    alloc = EntropyAllocator(base_temperature=0.2, thompson_samples=0, min_allocation_floor=0.0)
    p, diag = alloc.distribution(problem(curves_from_edges(ONE_STRONG)))
    assert diag["floor_bound"] is True
    assert diag["floor_met"] is True
    assert diag["entropy_before_floor_nats"] < diag["entropy_target_nats"]
    assert entropy_nats(p) >= diag["entropy_target_nats"] - 0.01
    assert diag["temperature"] > 0.2


def test_entropy_floor_bisection_range_is_the_originals():
    # bisection searches T in [0.01, 10·T] as the original did: from T = 0.05 it cannot reach 1.9 nats
    alloc = EntropyAllocator(base_temperature=0.05, thompson_samples=0, min_allocation_floor=0.0)
    _p, diag = alloc.distribution(problem(curves_from_edges(ONE_STRONG)))
    assert diag["floor_bound"] is True
    assert diag["floor_met"] is False
    assert diag["temperature"] == pytest.approx(0.5)


def test_project_to_min_entropy_is_monotone_in_target():
    u = np.linspace(1, -1, 10)
    ts = [project_to_min_entropy(u, 0.05, h) for h in (0.5, 1.0, 1.5, 2.0)]
    assert ts == sorted(ts)


def test_target_is_smoothed_across_refreshes_through_the_explicit_state():
    alloc = EntropyAllocator(thompson_samples=0)
    prob = problem(curves_from_edges(ONE_STRONG))
    targets, state = [], None
    for _ in range(3):
        res = alloc.allocate(dataclasses.replace(prob, state=state), np.random.default_rng(0))
        targets.append(res.diagnostics["entropy_target_nats"])
        state = res.state
    assert targets == pytest.approx([1.9, 1.82, 1.756])  # 0.8·H* + 0.2·1.5 from 2.0
    assert state == EntropyState(pytest.approx(1.756))


def test_same_instance_same_seed_same_answer_and_warm_up_changes_nothing():
    # the smoothed target lived inside the instance: two identical calls gave 1.9 then 1.82
    alloc = EntropyAllocator()
    prob = problem(curves_from_edges(ONE_STRONG))
    first = alloc.allocate(prob, np.random.default_rng(3))
    again = alloc.allocate(prob, np.random.default_rng(3))
    assert first.diagnostics["entropy_target_nats"] == again.diagnostics["entropy_target_nats"] == pytest.approx(1.9)
    assert np.array_equal(first.sizes, again.sizes)
    with pytest.raises(dataclasses.FrozenInstanceError):
        alloc.min_entropy = 1.0  # type: ignore[misc]


def test_a_foreign_state_is_refused_naming_it():
    prob = dataclasses.replace(problem(curves_from_edges(ONE_STRONG)), state=0.5)
    with pytest.raises(InvalidParameterError, match="'state' for the entropy allocator must be an EntropyState"):
        EntropyAllocator().allocate(prob, np.random.default_rng(0))


def test_target_is_capped_at_max_entropy_for_few_levels():
    alloc = EntropyAllocator(thompson_samples=0)
    _p, diag = alloc.distribution(problem(curves_from_edges([5.0, 1.0, -1.0])))
    assert diag["entropy_target_nats"] <= math.log(3)


def test_ties_broken_by_index():
    u = EntropyAllocator().utilities(problem(curves_from_edges([1.0, 1.0, 1.0, 1.0])))
    assert u.tolist() == pytest.approx([1.0, 1 / 3, -1 / 3, -1.0])


def test_per_level_floor():
    alloc = EntropyAllocator(base_temperature=0.01, min_entropy=0.0, thompson_samples=0, min_allocation_floor=0.05)
    p, _ = alloc.distribution(problem(curves_from_edges(ONE_STRONG)))
    assert p.min() >= 0.05 - 1e-12


def test_thompson_sampling_is_seeded():
    prob = problem(curves_from_edges(ONE_STRONG))
    a = EntropyAllocator().allocate(prob, np.random.default_rng(42)).sizes
    b = EntropyAllocator().allocate(prob, np.random.default_rng(42)).sizes
    c = EntropyAllocator().allocate(prob, np.random.default_rng(43)).sizes
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_spends_whole_budget_within_caps():
    prob = problem(curves_from_edges(ONE_STRONG), budget=2.0, cap_frac=0.25)
    res = EntropyAllocator().allocate(prob, np.random.default_rng(0))
    assert res.total_coins == pytest.approx(2.0)
    assert np.all(res.sizes <= 0.5 + 1e-12)
    assert res.binding == "budget"


def test_caps_bind_when_they_sum_below_budget():
    prob = problem(curves_from_edges([1.0, 2.0]), budget=1.0, cap_frac=0.25)
    res = EntropyAllocator().allocate(prob, np.random.default_rng(0))
    assert res.binding == "caps"
    assert res.total_coins == pytest.approx(0.5)


def test_min_notional_each_level_zero_or_at_least_the_minimum():
    # budget of 0.001 BTC over 10 levels: 0.0001 each on average, minimum 0.00012
    prob = problem(curves_from_edges(ONE_STRONG), budget=0.001, min_size=0.00012)
    res = EntropyAllocator().allocate(prob, np.random.default_rng(3))
    live = res.sizes[res.sizes > 0]
    assert live.size >= 1
    assert np.all(live >= 0.00012 - 1e-15)
    assert res.total_coins <= 0.001 + 1e-15
    assert res.diagnostics["dropped_below_min"] + res.diagnostics["pulled_to_min"] > 0


def test_budget_below_minimum_order_gives_empty_side_with_reason():
    prob = problem(curves_from_edges(ONE_STRONG), budget=0.0001, min_size=0.00012)
    res = EntropyAllocator().allocate(prob, np.random.default_rng(3))
    assert res.binding == "empty"
    assert "minimum order" in res.message
    assert res.total_coins == 0.0


def test_margin_bound_capacity_detected():
    # the original's case: price 90,000, leverage 20, margin 100 -> at most 100·20/90,000 = 0.0222 BTC
    snap = MarketSnapshot(
        mid_usd=90_000.0,
        best_bid_usd=89_999.0,
        best_ask_usd=90_001.0,
        sigma_frac=1e-4,
        max_position_coins=1.0,
        margin_usd=100.0,
        leverage=20.0,
        daily_volume_coins=20_000.0,
    )
    b = side_budget(snap, "bid")
    assert b.binding == "margin"
    assert b.budget_coins == pytest.approx(0.02222, abs=1e-5)
    ladder = build_ladder(snap, default_spec(), EntropyAllocator(), rng=0)
    for s in (ladder.bid, ladder.ask):
        assert s.size_used_coins <= 0.0222223
        assert s.budget.binding == "margin"


def test_position_bound_capacity_detected():
    snap = MarketSnapshot(
        mid_usd=90_000.0,
        best_bid_usd=89_999.0,
        best_ask_usd=90_001.0,
        sigma_frac=1e-4,
        inventory_coins=0.3,
        max_position_coins=0.5,
        margin_usd=100_000.0,
        daily_volume_coins=20_000.0,
    )
    assert side_budget(snap, "bid").budget_coins == pytest.approx(0.2)
    assert side_budget(snap, "ask").budget_coins == pytest.approx(0.8)
    assert side_budget(snap, "bid").binding == "position"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("min_entropy", -1.0, "'entropy.min_entropy' must be in \\[0, inf\\) nats; got -1.0"),
        ("base_temperature", 0.0, "'entropy.base_temperature' must be in \\(0, inf\\)"),
        ("thompson_samples", -1, "'entropy.thompson_samples' must be in \\[0, 10000\\]"),
        ("entropy_smoothing", 1.0, "'entropy.entropy_smoothing' must be in \\[0, 1\\)"),
        ("as_confidence", float("nan"), "'entropy.as_confidence' must be in \\[0, 1\\]"),
    ],
)
def test_bad_options(field, value, message):
    with pytest.raises(InvalidParameterError, match=message):
        EntropyAllocator(**{field: value})
