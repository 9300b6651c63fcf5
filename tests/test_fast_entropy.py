"""The compiled entropy allocator (hyper_make.fast._entropy) is bit-identical to EntropyAllocator.allocate."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import curves_from_edges, problem
from hyper_make import InvalidParameterError, build_ladder
from hyper_make._exact import np_sum, np_sum_n
from hyper_make.allocate import AllocationResult, EntropyAllocator, EntropyState, SideProblem
from hyper_make.defaults import default_snapshot, default_spec
from hyper_make.economics import LevelCurves
from hyper_make.fast._entropy import (
    NUMPY_LOOPS,
    _np_unary_py,
    allocate_fast,
    bitgen_table,
    entropy_allocate_arrays,
    entropy_allocate_kernel,
    entropy_params,
    entropy_result,
    gamma_draws,
    np_pow_scalar,
    operator_fast_power,
)
from hyper_make.snapshot import Regime


def random_problem(rng: np.random.Generator, n: int) -> SideProblem:
    """A side with random curves, budget, caps, minimum orders and regime (coins, USD), ``n`` levels."""
    mid = float(rng.uniform(0.1, 1e5))
    depth = np.sort(rng.uniform(0.5, 200.0, n))
    curves = LevelCurves(
        depth_bps=depth,
        price_usd=mid * (1 - depth * 1e-4),
        fill_prob=rng.uniform(0.0, 1.0, n),
        # EVs straddling zero, so that the min_touch_ev floor ties some levels
        capture_usd=rng.normal(0.0, 5.0, n) * mid * 1e-4,
        adverse_usd=rng.uniform(0.0, 5.0, n) * mid * 1e-4,
        # impact does not move the entropy allocator, only its expected PnL (NumPy's power, β = 1 its square)
        b_forward=rng.uniform(0.0, 1e-3, n) * mid,
        b_roundtrip=rng.uniform(0.0, 1e-3, n) * mid,
        beta=float(rng.choice([0.3, 0.5, 1.0, 1.5, 2.0])),
        mid_usd=mid,
        inventory_usd=np.full(n, rng.normal(0.0, 1.0) * mid * 1e-4),
    )
    budget = float(rng.uniform(0.0, 10.0)) if rng.random() > 0.05 else 0.0
    return SideProblem(
        side="bid",
        curves=curves,
        budget_coins=budget,
        caps_coins=rng.uniform(0.0, 1.0, n) * budget * rng.uniform(0.05, 1.5),
        lot_coins=1e-5,
        min_size_coins=rng.uniform(0.0, 1.0, n) * budget * rng.choice([0.0, 0.01, 0.1, 0.5]),
        regime=Regime(
            toxicity=float(rng.uniform(0.0, 4.0)),
            vol_ratio=float(rng.uniform(0.0, 4.0)),
            cascade_severity=float(rng.uniform(0.0, 1.0)),
        ),
    )


def assert_same(a, b) -> None:
    assert np.array_equal(a.sizes, b.sizes)
    assert (a.state, a.binding, a.message, a.diagnostics) == (b.state, b.binding, b.message, b.diagnostics)
    assert a.expected_pnl_usd == b.expected_pnl_usd or (np.isnan(a.expected_pnl_usd) and np.isnan(b.expected_pnl_usd))


#: the allocator's other options, each over values that take its branches (n·f >= 1: uniform shares; no adaptation;
#: a hot cap; a prior that dominates; no smoothing; every level pulled up or dropped)
OTHER_OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "min_allocation_floor": st.sampled_from([0.0, 0.02, 0.1, 0.5, 1.0]),
        "adaptive_temperature": st.booleans(),
        "max_temp_multiplier": st.sampled_from([1.0, 3.0, 10.0]),
        "dirichlet_prior": st.sampled_from([0.01, 0.5, 50.0]),
        "entropy_smoothing": st.sampled_from([0.0, 0.8, 0.99]),
        "initial_entropy_target": st.sampled_from([0.0, 2.0, 5.0]),
        "as_confidence": st.sampled_from([0.0, 0.7, 1.0]),
        "min_touch_ev_bps": st.sampled_from([-5.0, 0.01, 2.0]),
        "min_notional_soft_frac": st.sampled_from([0.0, 0.5, 1.0]),
    },
)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 40),
    samples=st.sampled_from([0, 1, 5, 9]),
    min_entropy=st.floats(0.0, 4.0),
    base_t=st.sampled_from([0.01, 0.3, 1.0, 4.0]),
    options=OTHER_OPTIONS,
)
def test_fast_entropy_is_bit_identical_over_refreshes(seed, n, samples, min_entropy, base_t, options):
    # Arrange: a random side, refreshed three times with the state carried, from two generators of one seed
    alloc = EntropyAllocator(thompson_samples=samples, min_entropy=min_entropy, base_temperature=base_t, **options)
    gen = np.random.default_rng(seed)
    prob = random_problem(gen, n)
    rng_ref, rng_fast = np.random.default_rng(seed), np.random.default_rng(seed)
    state_ref = state_fast = None
    for _ in range(3):
        # Act
        ref = alloc.allocate(dataclasses.replace(prob, state=state_ref), rng_ref)
        fast = allocate_fast(alloc, dataclasses.replace(prob, state=state_fast), rng_fast)
        # Assert: same sizes, state, diagnostics, and the generators advanced alike
        assert_same(ref, fast)
        state_ref, state_fast = ref.state, fast.state
    assert rng_ref.random() == rng_fast.random()


def test_one_strong_level_matches_and_carries_the_smoothed_target():
    # the original's example, hand-checked target: 0.8·2.0 + 0.2·1.5 = 1.9 nats after one refresh
    alloc = EntropyAllocator()
    prob = problem(curves_from_edges([25.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0, -9.0, -10.0, -11.0]))
    fast = allocate_fast(alloc, prob, np.random.default_rng(3))
    assert_same(alloc.allocate(prob, np.random.default_rng(3)), fast)
    assert fast.state.target_nats == pytest.approx(0.8 * 2.0 + 0.2 * 1.5, abs=1e-15)


def test_numpy_sum_order_is_reproduced_past_one_block():
    # NumPy splits sums above 128 elements in halves: values spanning 10 decades make any other order differ
    x = np.random.default_rng(0).standard_normal(1000) * 10.0 ** (np.arange(1000) % 11)
    for n in (0, 7, 8, 127, 128, 129, 300, 1000):
        assert np_sum_n(x, n) == x[:n].sum()
    zeros = np.full(200, -0.0)  # NumPy's reduction adds its identity: a sum of negative zeros is +0.0
    for n in (1, 7, 8, 200):
        assert math.copysign(1.0, np_sum_n(zeros, n)) == math.copysign(1.0, zeros[:n].sum()) == 1.0
        assert math.copysign(1.0, np_sum(zeros[:n])) == 1.0  # the whole-array form (the learner's) too


def test_exp_and_log_are_numpys_own_loops():
    # on machines with AVX-512 NumPy's exp differs from libm's (numba's math.exp) in the last bit on ~5 % of inputs
    x = np.random.default_rng(1).uniform(-50.0, 1.0, 2000)
    out = np.empty_like(x)
    _np_unary_py(NUMPY_LOOPS, 0, x, out, x.shape[0])
    assert np.array_equal(out, np.exp(x))
    _np_unary_py(NUMPY_LOOPS, 1, np.exp(x), out, x.shape[0])
    assert np.array_equal(out, np.log(np.exp(x)))


@pytest.mark.parametrize("bit_generator", [np.random.PCG64, np.random.MT19937, np.random.Philox, np.random.SFC64])
def test_kernel_gamma_draws_are_rng_gamma(bit_generator):
    # shapes below 1, at 1 (the exponential branch), above 1, and 0; the generator's state must advance alike
    alpha = np.array([0.02, 0.5, 1.0, 1.7, 9.0, 0.0, 300.0])
    ref, fast = np.random.Generator(bit_generator(5)), np.random.Generator(bit_generator(5))
    for _ in range(20):
        assert np.array_equal(gamma_draws(bitgen_table(fast), alpha, 7), ref.gamma(alpha, size=(7, alpha.size)))
    assert ref.random() == fast.random()


def test_numpy_draws_path_is_identical_too():
    alloc = EntropyAllocator(min_entropy=3.0)
    prob = random_problem(np.random.default_rng(11), 25)
    fast = allocate_fast(alloc, prob, np.random.default_rng(2), numpy_draws=True)
    assert_same(alloc.allocate(prob, np.random.default_rng(2)), fast)


@pytest.mark.parametrize("y", [1.5, 1.3, 2.0, 0.5, -1.0, 1.0, 0.0, 3.0])
def test_power_is_numpys_array_to_scalar_power(y):
    # x ** y with a scalar y: NumPy's loop with the exponent's stride 0, or (NumPy < 2.3) its operator's own path for
    # 0.5, 2, -1, 1 and 0, whichever this NumPy takes
    x = np.random.default_rng(2).uniform(0.0, 1e4, 3000)
    out = np.empty_like(x)
    np_pow_scalar(NUMPY_LOOPS, x, y, out, x.shape[0])
    assert np.array_equal(out, x**y)


def test_the_operators_special_exponents_are_numpys_before_2_3():
    """NumPy < 2.3's ``array ** y`` special cases, checked against the ufuncs it calls (on any NumPy)."""
    x = np.concatenate([np.random.default_rng(3).uniform(-1e3, 1e3, 2000), [0.0, -0.0, np.inf, -np.inf, np.nan]])
    with np.errstate(all="ignore"):
        for y, f in ((0.5, np.sqrt), (2.0, np.square), (-1.0, np.reciprocal), (1.0, np.positive), (0.0, np.ones_like)):
            out = np.empty_like(x)
            assert operator_fast_power(y, x, out, x.shape[0])
            assert np.array_equal(out, f(x), equal_nan=True), y
    assert not operator_fast_power(1.5, x, np.empty_like(x), x.shape[0])


def test_bad_arrays_are_refused_with_the_field_named():
    alloc = EntropyAllocator()
    prob = random_problem(np.random.default_rng(4), 6)
    c = prob.curves
    args = [entropy_params(alloc), c.fill_prob, c.capture_usd, c.inventory, c.adverse_usd, 1.0, 1.0]
    rest = [1.0, 1.0, 0.0, 2.0, np.random.default_rng(0)]
    with pytest.raises(InvalidParameterError, match="'caps_coins' must be a float64 array of one entry per level"):
        entropy_allocate_arrays(*args, np.ones(5), prob.min_size_coins, *rest)
    with pytest.raises(InvalidParameterError, match=r"'min_size_coins' .* got int64"):
        entropy_allocate_arrays(*args, prob.caps_coins, np.zeros(6, dtype=np.int64), *rest)
    with pytest.raises(InvalidParameterError, match="'params' must be entropy_params"):
        entropy_allocate_arrays(np.ones(3), *args[1:], prob.caps_coins, prob.min_size_coins, *rest)
    # the compiled entry reads its arrays unchecked: it refuses lengths that are not the side's
    with pytest.raises(ValueError, match="one entry per level"):
        entropy_allocate_kernel(
            *args, np.ones(5), prob.min_size_coins, 1.0, 1.0, 0.0, 2.0, bitgen_table(rest[-1]), NUMPY_LOOPS
        )


@dataclasses.dataclass(frozen=True)
class _FastEntropy:
    """The entropy allocator through the compiled kernels, as an allocator build_ladder can run."""

    inner: EntropyAllocator
    name: ClassVar[str] = "entropy"
    needs_impact: ClassVar[bool] = False

    def allocate(self, problem: SideProblem, rng: np.random.Generator) -> AllocationResult:
        return allocate_fast(self.inner, problem, rng)


def test_build_ladder_with_the_kernels_gives_the_same_orders_over_refreshes():
    # Arrange: the default market drifting, the position moving and the regime heating, the state carried
    alloc = EntropyAllocator()
    gen = np.random.default_rng(9)
    base = default_snapshot()
    state_ref = state_fast = None
    for k in range(12):
        mid = base.mid_usd * (1 + 1e-4 * gen.normal())
        snap = dataclasses.replace(
            base,
            mid_usd=mid,
            best_bid_usd=mid - 1.0,
            best_ask_usd=mid + 1.0,
            inventory_coins=float(gen.uniform(-0.5, 0.5)) * base.max_position_coins,
            regime=Regime(toxicity=1.0 + 0.2 * k, vol_ratio=1.0 + 0.1 * k),
        )
        # Act
        ref = build_ladder(snap, default_spec(), alloc, rng=np.random.default_rng(k), state=state_ref)
        fast = build_ladder(snap, default_spec(), _FastEntropy(alloc), rng=np.random.default_rng(k), state=state_fast)
        # Assert: the same orders (prices, sizes) and the same state to carry
        assert [(o.price, o.size) for o in ref.bids + ref.asks] == [(o.price, o.size) for o in fast.bids + fast.asks]
        assert ref.state == fast.state
        state_ref, state_fast = ref.state, fast.state
    assert ref.bids and ref.asks


def test_bitgen_tables_stay_right_past_the_cache():
    # more generators than the cache holds: every table (cached, evicted and rebuilt) points at its own state
    gens = [np.random.default_rng(i) for i in range(300)]
    for _ in range(2):
        for g in gens:
            assert bitgen_table(g)[0] == g.bit_generator.ctypes.state_address
    ref = np.random.default_rng(0)
    assert np.array_equal(
        gamma_draws(bitgen_table(gens[0]), np.array([0.5, 2.0]), 3), ref.gamma([0.5, 2.0], size=(3, 2))
    )


@pytest.mark.parametrize(("n", "budget"), [(0, 1.0), (5, 0.0), (5, 1e-9)])
def test_entropy_result_from_arrays_matches_on_empty_sides(n, budget):
    # no levels, no budget (the state handed back unchanged, nothing drawn), a budget below every minimum order
    alloc = EntropyAllocator()
    prob = dataclasses.replace(
        random_problem(np.random.default_rng(6), n), budget_coins=budget, min_size_coins=np.full(n, 1e-3)
    )
    prob = dataclasses.replace(prob, state=EntropyState(1.7))
    c, r = prob.curves, prob.regime
    rng_ref, rng_fast = np.random.default_rng(1), np.random.default_rng(1)
    out = entropy_allocate_arrays(
        entropy_params(alloc), c.fill_prob, c.capture_usd, c.inventory, c.adverse_usd, float(c.mid_usd), budget,
        prob.caps_coins, prob.min_size_coins, r.toxicity, r.vol_ratio, r.cascade_severity, 1.7, rng_fast,
    )  # fmt: skip
    assert_same(alloc.allocate(prob, rng_ref), entropy_result(out, c, prob.state))
    assert rng_ref.random() == rng_fast.random()
