"""Allocator state is explicit (issue 10, item 8): no hidden mutation, state passed in and returned as a value."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hyper_make import (
    ALLOCATORS,
    InvalidParameterError,
    LadderState,
    build_ladder,
    default_snapshot,
    default_spec,
    make_allocator,
    warm_up,
)
from hyper_make.allocate import EntropyState


def _orders(ladder):
    return [(o.price, o.size) for o in ladder.bids + ladder.asks]


def test_same_instance_same_seed_twice_gives_the_same_ladder():
    # the entropy allocator's smoothed target lived in the instance: the second call moved from 1.9 to 1.82
    snap, spec = default_snapshot(), default_spec()
    alloc = make_allocator("entropy")
    first = build_ladder(snap, spec, alloc, rng=4)
    again = build_ladder(snap, spec, alloc, rng=4)
    assert _orders(first) == _orders(again)
    for side in ("bid", "ask"):
        t1 = first.side(side).allocation.diagnostics["entropy_target_nats"]
        t2 = again.side(side).allocation.diagnostics["entropy_target_nats"]
        assert t1 == t2 == pytest.approx(1.9)


def test_a_warm_up_or_what_if_build_does_not_change_the_next_real_quote():
    snap, spec = default_snapshot(), default_spec()
    alloc = make_allocator("entropy")
    cold = build_ladder(snap, spec, alloc, rng=7)
    warm_up()
    build_ladder(dataclasses.replace(snap, inventory_coins=0.3), spec, alloc, rng=np.random.default_rng(0))
    real = build_ladder(snap, spec, alloc, rng=7)
    assert _orders(real) == _orders(cold)


def test_the_state_returned_by_a_ladder_carries_the_target_one_step_per_refresh_and_side():
    snap, spec = default_snapshot(), default_spec()
    alloc = make_allocator("entropy")
    state, targets = None, []
    for i in range(3):
        ladder = build_ladder(snap, spec, alloc, rng=i, state=state)
        targets.append(ladder.bid.allocation.diagnostics["entropy_target_nats"])
        assert ladder.ask.allocation.diagnostics["entropy_target_nats"] == targets[-1]
        state = ladder.state
    assert targets == pytest.approx([1.9, 1.82, 1.756])  # 0.8·H* + 0.2·1.5 from 2.0
    assert isinstance(state, LadderState) and state.bid == EntropyState(pytest.approx(1.756))
    # a side whose allocator is not called (position limit reached) keeps its state
    full = dataclasses.replace(snap, inventory_coins=snap.max_position_coins)
    after = build_ladder(full, spec, alloc, state=state)
    assert after.bids == () and after.state.bid == state.bid and after.state.ask != state.ask


@pytest.mark.parametrize("name", sorted(set(ALLOCATORS) - {"entropy"}))
def test_stateless_allocators_return_no_state(name):
    ladder = build_ladder(default_snapshot(), default_spec(), make_allocator(name), rng=0)
    assert ladder.state == LadderState()


def test_a_wrong_state_is_refused_naming_it():
    with pytest.raises(InvalidParameterError, match="'state' must be a LadderState"):
        build_ladder(default_snapshot(), default_spec(), "entropy", state={"bid": 1.9})  # type: ignore[arg-type]
    bad = LadderState(bid="not a state")
    with pytest.raises(InvalidParameterError, match="'state' for the entropy allocator must be an EntropyState"):
        build_ladder(default_snapshot(), default_spec(), "entropy", state=bad)


def test_allocators_are_frozen():
    for name in ALLOCATORS:
        alloc = make_allocator(name)
        field = next((f.name for f in dataclasses.fields(alloc)), None)
        if field is not None:
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(alloc, field, getattr(alloc, field))
