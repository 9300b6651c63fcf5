"""The fast path gives the reference pipeline's orders: identical prices, sizes, levels, state, reservation price.

Random snapshots (``tests/fast_cases.py``: mid 1e-4 to 1e6 USD, ``szDecimals`` 0 to 6, inventory at and over the
limits, reserved coins, budgets, fees with rebates, σ, volume missing or a profile, every grid and touch, every
fill and adverse model, stealth modes, minimum-order-binding limits) per allocator; the benchmark
``benchmarks/bench_fastpath.py`` runs 10^5 per allocator.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fast_cases
from hyper_make import InstrumentSpec, LadderConfig, MarketSnapshot, build_ladder
from hyper_make.fast import FastLadder

#: every registered allocator: all but ``learned`` compiled (with any stealth stage), ``learned`` the reference inside
ALL = ("impact", "impact-dirichlet", "impact-posterior", "entropy", "greedy", "flat", "progression", "learned")


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, 2**31 - 1))
def test_fast_path_gives_the_reference_orders(name: str, index: int) -> None:
    fc = fast_cases.fast_case(20261201, index, name)
    assert fast_cases.mismatch(fc) == ""


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


def test_uncompiled_configurations_run_the_reference_inside() -> None:
    snap, spec = _default()
    fast = FastLadder(spec, "learned", LadderConfig())
    assert not fast.compiled and "learned" in fast.reason
    b = fast.build(snap, rng=np.random.default_rng(3))
    ref = build_ladder(snap, spec, "learned", rng=np.random.default_rng(3))
    assert b.sizes("bid").tolist() == [o.size for o in ref.bids]
