"""The compiled stealth kernels (hyper_make.fast._stealth_kernels) give the Python stage's draws bit for bit."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hyper_make.allocate import SideProblem
from hyper_make.economics import LevelCurves
from hyper_make.fast._stealth_kernels import dirichlet_sizes_fast, posterior_curves_fast
from hyper_make.stealth import StealthConfig, dirichlet_sizes, posterior_curves


def side(rng: np.random.Generator, n: int, lot: float) -> tuple[SideProblem, np.ndarray]:
    """A side with random curves, caps and minimum orders (coins), and an allocation on it (coins, some zeros)."""
    mid = float(rng.uniform(0.1, 1e5))
    depth = np.sort(rng.uniform(0.5, 200.0, n))
    curves = LevelCurves(
        depth_bps=depth,
        price_usd=mid * (1 - depth * 1e-4),
        fill_prob=rng.uniform(0.0, 1.0, n),
        capture_usd=rng.normal(1.0, 5.0, n) * mid * 1e-4,
        adverse_usd=rng.uniform(0.0, 2.0, n) * mid * 1e-4,
        b_forward=rng.uniform(0.0, 1e-3, n) * mid,
        b_roundtrip=rng.uniform(0.0, 1e-3, n) * mid,
        mid_usd=mid,
    )
    sizes = np.where(rng.random(n) < 0.3, 0.0, rng.uniform(0.0, 50.0, n)) * lot
    prob = SideProblem(
        side="ask",
        curves=curves,
        budget_coins=float(sizes.sum()),
        caps_coins=rng.uniform(0.2, 3.0, n) * sizes.max(initial=lot),
        lot_coins=lot,
        min_size_coins=rng.uniform(0.0, 1.0, n) * lot * rng.choice([0.0, 1.0, 10.0]),
    )
    return prob, sizes


@settings(max_examples=120, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 30),
    lot=st.sampled_from([1e-5, 0.001, 1.0, 0.3]),
    conc=st.sampled_from([0.05, 1.0, 100.0, 1e6]),
)
def test_dirichlet_kernel_is_bit_identical(seed, n, lot, conc):
    prob, sizes = side(np.random.default_rng(seed), n, lot)
    ref_rng, fast_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    for _ in range(2):
        assert np.array_equal(
            dirichlet_sizes(sizes, prob, conc, ref_rng), dirichlet_sizes_fast(sizes, prob, conc, fast_rng)
        )
    assert ref_rng.random() == fast_rng.random()


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 30), sd=st.sampled_from([0.0, 0.05, 1.0, 5.0]))
def test_posterior_draw_kernel_is_bit_identical(seed, n, sd):
    prob, _ = side(np.random.default_rng(seed), n, 1e-5)
    config = StealthConfig(mode="posterior", edge_sd_frac=sd, impact_sd_log=sd)
    ref_rng, fast_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    (a_ref, b_ref), (a_fast, b_fast) = (
        posterior_curves(prob.curves, config, ref_rng),
        posterior_curves_fast(prob.curves, config, fast_rng),
    )
    assert np.array_equal(a_ref, a_fast) and np.array_equal(b_ref, b_fast)
    assert ref_rng.random() == fast_rng.random()
