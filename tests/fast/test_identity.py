"""The fast path gives the reference pipeline's orders: identical prices, sizes, levels, state, reservation price.

Random snapshots (``tests/fast_cases.py``: mid 1e-4 to 1e6 USD, ``szDecimals`` 0 to 6, inventory at and over the
limits, reserved coins, budgets, fees with rebates, σ, volume missing or a profile, every grid and touch, every
fill and adverse model, stealth modes, minimum-order-binding limits) per allocator; the benchmark
``benchmarks/bench_fastpath.py`` runs 10^5 per allocator.
"""

from __future__ import annotations

import copy as copy_module
import dataclasses
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fast_cases
from hyper_make import InstrumentSpec, LadderConfig, MarketSnapshot, build_ladder, make_allocator
from hyper_make.fast import FastLadder

#: every registered allocator, compiled (``learned``: the kernel's stages around its compiled two-sided solve)
ALL = ("impact", "impact-dirichlet", "impact-posterior", "entropy", "greedy", "flat", "progression", "learned")


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, 2**31 - 1))
def test_fast_path_gives_the_reference_orders(name: str, index: int) -> None:
    fc = fast_cases.fast_case(20261201, index, name)
    assert fast_cases.mismatch(fc) == ""


@pytest.mark.parametrize("name", ["impact", "entropy", "learned"])
def test_one_builder_over_markets_with_and_without_a_volume_profile(name: str) -> None:
    """A builder's later builds (compiled entry point found on its first) on snapshots whose arrays differ: a volume
    profile or none, reserved coins, inventory; each gives the reference's orders."""
    snap, spec = _default()
    profiled = dataclasses.replace(
        snap, volume_profile_depth_bps=(0.0, 5.0, 20.0, 80.0), volume_profile_coins=(50.0, 30.0, 10.0, 1.0)
    )
    fast = FastLadder(spec, name, LadderConfig())
    for i in range(8):
        s = dataclasses.replace(profiled if i % 2 else snap, inventory_coins=0.5 * (i - 4))
        reserved = {"bid": 0.1 * i} if i % 3 == 0 else None
        ref = build_ladder(s, spec, make_allocator(name), rng=np.random.default_rng(i), reserved_coins=reserved)
        got = fast.build(s, rng=np.random.default_rng(i), reserved_coins=reserved)
        for side in ("bid", "ask"):
            orders = ref.side(side).orders
            assert got.prices(side).tolist() == [o.price for o in orders], (i, side)
            assert got.sizes(side).tolist() == [o.size for o in orders], (i, side)
        assert sum(len(ref.side(side).orders) for side in ("bid", "ask")) > 0


def test_a_builder_pickles_and_its_copy_builds_the_same_orders() -> None:
    # after builds (its compiled entry point found): a copy in another process finds its own
    snap, spec = _default()
    fast = FastLadder(spec, "impact-dirichlet", LadderConfig())
    first = fast.build(snap, rng=np.random.default_rng(3))
    fast.build(snap, rng=np.random.default_rng(3))
    for copy in (pickle.loads(pickle.dumps(fast)), copy_module.deepcopy(fast)):
        for _ in range(2):
            got = copy.build(snap, rng=np.random.default_rng(3))
            for side in ("bid", "ask"):
                assert got.prices(side).tolist() == first.prices(side).tolist()
                assert got.sizes(side).tolist() == first.sizes(side).tolist()
    assert first.n_bid + first.n_ask > 0


def _default() -> tuple[MarketSnapshot, InstrumentSpec]:
    snap = MarketSnapshot(
        mid_usd=100.0,
        best_bid_usd=99.99,
        best_ask_usd=100.01,
        sigma_frac=1e-4,
        max_position_coins=5.0,
        margin_usd=1_000.0,
        daily_volume_coins=1e5,
    )
    return snap, InstrumentSpec(coin="X", sz_decimals=2)


def test_a_hand_checked_build_and_its_ladder_on_request() -> None:
    snap, spec = _default()
    fast = FastLadder(spec, "flat")
    assert fast.compiled
    b = fast.build(snap)
    # flat: 5 coins of room, 10 levels, cap 25 % -> 0.5 coins per level; bids from 99.98 down (2 bps from 100)
    assert b.sizes("bid").tolist() == [0.5] * 10
    assert b.prices("bid")[0] == 99.98 and b.prices("ask")[0] == 100.02
    assert b.reservation_usd == 100.0 and b.levels("ask").tolist() == list(range(10))
    lad = b.ladder()
    assert [o.price for o in lad.bids] == b.prices("bid").tolist()
    assert lad is b.ladder()  # built once


def test_reserved_coins_and_inventory_reach_the_budget() -> None:
    snap, spec = _default()
    fast = FastLadder(spec, "impact")
    for reserved in ({"bid": 4.0}, {"ask": 5.0}, {"bid": 1.0, "ask": 2.5}):
        b = fast.build(snap, reserved_coins=reserved)
        ref = build_ladder(snap, spec, "impact", reserved_coins=reserved)
        for side in ("bid", "ask"):
            assert b.sizes(side).tolist() == [o.size for o in ref.side(side).orders]
    assert fast.build(snap, reserved_coins={"ask": 5.0}).count("ask") == 0


def test_wrong_inputs_give_the_reference_errors() -> None:
    snap, spec = _default()
    fast = FastLadder(spec, "impact")
    with pytest.raises(Exception, match="reserved_coins"):
        fast.build(snap, reserved_coins={"mid": 1.0})
    with pytest.raises(Exception, match="'rng'"):
        fast.build(snap, rng=-1)
    with pytest.raises(Exception, match="'snapshot'"):
        fast.build("snap")  # type: ignore[arg-type]
    with pytest.raises(Exception, match="'config'"):
        FastLadder(spec, "impact", config={})  # type: ignore[arg-type]


def test_an_allocator_the_kernel_does_not_know_runs_the_reference_inside() -> None:
    from hyper_make.allocate import FlatAllocator

    class Mine(FlatAllocator):
        pass

    snap, spec = _default()
    fast = FastLadder(spec, Mine(), LadderConfig())
    assert not fast.compiled and "not compiled" in fast.reason
    b = fast.build(snap)
    assert b.sizes("bid").tolist() == [o.size for o in build_ladder(snap, spec, Mine()).bids]


def test_learned_after_learning_gives_the_reference_orders_curves_and_diagnostics() -> None:
    """``learned`` on a learner that has seen fills (its curves off the prior), Thompson draws from one generator."""
    from hyper_make.learn import LevelObservations

    snap, spec = _default()
    alloc = make_allocator("learned")
    lrn = alloc.new_learner("X", LadderConfig(), maker_fee_bps=0.0, sigma_frac_per_sqrt_s=1e-4, max_position_coins=5.0)
    hs = lrn.config.markout_horizons_s
    for _ in range(30):  # bids near the touch fill often and pay, asks deep fill rarely and lose
        fills = [("bid", 2.0, 0.05, 99.98, (0.004,) * len(hs)), ("ask", 6.0, 0.02, 100.06, (-0.01,) * len(hs))]
        rest = [("bid", 2.0, 0.5, 1.0), ("ask", 6.0, 0.5, 1.0)]
        lrn.update(LevelObservations.build(1.0, rest, fills, horizons_s=hs))
    fast = FastLadder(spec, alloc, LadderConfig())
    assert fast.compiled
    for seed in range(5):
        g_ref, g_fast = np.random.default_rng(seed), np.random.default_rng(seed)
        ref = build_ladder(snap, spec, alloc, rng=g_ref, learner=lrn, interval_s=1.0)
        b = fast.build(snap, rng=g_fast, learner=lrn, interval_s=1.0)
        assert g_ref.bit_generator.state == g_fast.bit_generator.state
        for side in ("bid", "ask"):
            orders = ref.side(side).orders
            assert b.prices(side).tolist() == [o.price for o in orders]
            assert b.sizes(side).tolist() == [o.size for o in orders]
            lv = [o.level for o in orders]
            assert b.row(side, "fill_prob").tolist() == ref.side(side).curves.fill_prob[lv].tolist()
            assert b.row(side, "b_forward").tolist() == ref.side(side).curves.b_forward[lv].tolist()
        diag = ref.bid.allocation.diagnostics
        assert b.allocation_diagnostics["inventory_risk_usd"] == diag["inventory_risk_usd"]
        assert b.allocation_diagnostics["sampling_cost_usd"] == diag["sampling_cost_usd"]
        assert b.count("bid") + b.count("ask") > 0
