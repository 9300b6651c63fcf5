"""Regression cases from the independent fuzz (issue 10, item 11): extreme but valid inputs.

Each case once failed: a NaN shadow price and a wrong optimum on a calibrated BTC market, NaN/inf sizes reported
"optimal", a lot search that moved one lot per step (88 s for one build), budgets beyond 2^63 lots, and a zero
daily volume that broke allocators that never use the impact model.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal, getcontext

import numpy as np
import pytest

from hyper_make import (
    ALLOCATORS,
    InvalidParameterError,
    LadderConfig,
    allocate_concave,
    build_ladder,
    default_snapshot,
    default_spec,
    make_allocator,
)
from hyper_make.economics import ExponentialIntensity
from hyper_make.economics.impact import SquareRootImpact


def _calibrated_btc(kappa: float, max_position: float):
    """The default BTC market with a fill decay calibrated on the shared BTCUSDT file and a large account."""
    snap = dataclasses.replace(default_snapshot(), max_position_coins=max_position, margin_usd=1e7)
    cfg = LadderConfig(fill=ExponentialIntensity(kappa_per_bps=kappa), impact=SquareRootImpact(forward_coef=0.0))
    return snap, cfg


@pytest.mark.parametrize("kappa", [3.6, 4.0, 4.5])
def test_calibrated_btc_market_gets_the_true_optimum(kappa):
    # deep levels have fill probabilities of 1e-312 and edges of 1e-309 USD/coin: the KKT kernel returned
    # λ = NaN and the ladder rested [0.216, 1.274, 0, 12.5, 12.5, 12.5, 0, 11.01]
    snap, cfg = _calibrated_btc(kappa, 50.0)
    ladder = build_ladder(snap, default_spec(), make_allocator("impact"), config=cfg)
    for side in (ladder.bid, ladder.ask):
        lam = side.allocation.shadow_price
        assert np.isfinite(lam) and lam > 0 and side.allocation.binding == "budget"
        sizes = dict((o.level, o.size) for o in side.orders)
        # an independent solve (SLSQP on the rescaled problem) gives these on levels 2-8
        want = [0.216, 1.484, 5.429, 12.5, 12.5, 12.5, 5.372]
        assert [sizes.get(lv, 0.0) for lv in range(2, 9)] == pytest.approx(want, abs=1e-3)
        assert 9 not in sizes
        assert side.to_dict()["shadow_price"] is not None


def test_subnormal_impact_coefficient_is_finite_and_optimal():
    sol = allocate_concave([1.0], [1e-311], 1e7)
    assert sol.status == "optimal" and np.isfinite(sol.sizes).all()
    assert sol.sizes.tolist() == [1e7] and sol.binding == "budget"
    assert sol.shadow_price == pytest.approx(1.0)


def test_tiny_impact_coefficients_whose_reciprocal_squares_overflow():
    sol = allocate_concave([1.0, 0.5], [1e-155] * 2, 1.0)
    assert sol.status == "optimal" and np.isfinite(sol.sizes).all()
    assert sol.sizes.tolist() == [1.0, 0.0] and sol.shadow_price == pytest.approx(1.0)


@pytest.mark.parametrize("beta", [0.3, 0.5, 1.0, 1.5, 2.0])
def test_edges_over_the_whole_float_range(beta):
    # edges and impact from 1e-1 down to 1e-300 (a calibrated ladder's depth profile), budget binding
    a = 10.0 ** -np.linspace(1, 300, 12)
    b = a / 20.0
    sol = allocate_concave(a, b, 30.0, beta=beta, caps=np.full(12, 8.0))
    s = sol.sizes
    assert sol.status == "optimal" and np.isfinite(s).all() and np.isfinite(sol.shadow_price)
    assert s.sum() == pytest.approx(30.0, rel=1e-12) and s.sum() <= 30.0 and np.all(s <= 8.0)
    # every level with a positive size has marginal value λ (or is capped above it), relative to its own edge
    k = 1.0 + beta
    marg = a - k * b * s**beta
    lam = sol.shadow_price
    inner = (s > 0) & (s < 8.0)
    assert np.allclose(marg[inner] / a[inner], lam / a[inner], rtol=0, atol=1e-9)
    assert np.all(marg[s >= 8.0] >= lam * (1 - 1e-9))
    assert np.all(a[s == 0] <= lam * (1 + 1e-9))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"a": ["x"], "b": [1.0], "budget": 1.0}, "'a' must be an array of real numbers"),
        ({"a": [1.0], "b": [None], "budget": 1.0}, "'b[0]' must be in [0, inf)"),
        ({"a": [1.0, 2.0], "b": [1.0, 1.0], "budget": 1.0, "caps": [1.0, 2.0, 3.0]}, "'caps' must be a scalar"),
        ({"a": [1.0, 2.0], "b": [1.0, 1.0], "budget": 1.0, "caps": "big"}, "'caps' must be an array"),
    ],
)
def test_allocate_concave_bad_input_names_the_argument(kwargs, needle):
    a, b, budget = kwargs.pop("a"), kwargs.pop("b"), kwargs.pop("budget")
    with pytest.raises(InvalidParameterError) as exc:
        allocate_concave(a, b, budget, **kwargs)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_scalar_caps_broadcast():
    assert allocate_concave([3.0, 2.0], [1.0, 1.0], 10.0, caps=0.5).sizes.tolist() == [0.5, 0.5]
    assert allocate_concave([3.0, 2.0], [1.0, 1.0], 10.0, caps=[0.5]).sizes.tolist() == [0.5, 0.5]


@pytest.mark.parametrize("name", sorted(ALLOCATORS))
def test_every_allocator_copes_with_the_calibrated_market(name):
    snap, cfg = _calibrated_btc(3.6, 100.0)
    # `learned` at its posterior mean: a Thompson draw from the bare prior may leave a side empty, by design
    opts = {"sampling": "mean"} if name == "learned" else {}
    ladder = build_ladder(snap, default_spec(), make_allocator(name, **opts), config=cfg, rng=1)
    for side in (ladder.bid, ladder.ask):
        assert side.orders
        assert np.isfinite(side.expected_pnl_usd)


# ---- the lot search ---------------------------------------------------------------------------------------
def _gains(a, b, lot, k):
    """Gain of lot k+1 at each level for β = 0.5 (USD), in 50-digit decimals (independent of the solver's formula)."""
    getcontext().prec = 50
    out = []
    for ai, bi, ki in zip(a, b, k, strict=True):
        kd = Decimal(int(ki))
        diff = (kd + 1) * (kd + 1).sqrt() - kd * kd.sqrt()
        lot_d = Decimal(lot)
        out.append(float(Decimal(ai) * lot_d - Decimal(bi) * lot_d * lot_d.sqrt() * diff))
    return np.array(out)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("seed", range(6))
def test_lot_optimum_on_huge_lot_counts_is_certified_in_few_steps(seed):
    # 1e15 lots a side: the one-lot-per-step search took 88 s from a bad start; now about 2n steps at most
    from hyper_make.allocate._discrete import lot_optimum

    rng = np.random.default_rng(seed)
    n = 40
    a = rng.normal(1.0, 0.5, n) * 1e-3
    b = rng.uniform(0.0, 2.0, n) * 1e-12
    b[rng.random(n) < 0.2] = 0.0
    lot = 1e-6
    budget = int(rng.uniform(1e14, 1e15))
    hi = rng.integers(10**12, 10**15, n)
    lo = np.where(rng.random(n) < 0.3, rng.integers(0, 10**12, n), 0)
    k, steps, certified = lot_optimum(a, b, 0.5, lot, budget, lo, hi)
    assert certified and steps <= 2 * n
    assert k.sum() <= budget and np.all((lo <= k) & (k <= hi))
    # the certificate (no lot to add, drop or move with a gain), checked independently
    nxt = np.where(k < hi, _gains(a, b, lot, k), -np.inf)
    last = np.where(k > lo, _gains(a, b, lot, np.maximum(k - 1, 0)), np.inf)
    tol = 1e-12 * np.max(np.abs(a)) * lot  # the search's own tolerance
    assert nxt.max() <= last.min() + tol
    if k.sum() < budget:
        assert nxt.max() <= tol


@pytest.mark.parametrize("beta", [0.5, 1.0, 0.7, 1.3])
def test_one_lot_gains_are_within_a_few_ulps_of_the_exact_difference(beta):
    # the lot search decides on these gains: (k+1)^q - k^q, closed forms for the square-root law and β = 1
    from hyper_make.allocate._discrete import _gain

    getcontext().prec = 60
    q = 1.0 + beta
    rng = np.random.default_rng(3)
    ks = [1, 2, 3, 10, 999, 2**26, 2**40, 2**53 - 1, *(int(x) for x in 10 ** rng.uniform(0, 15.9, 400))]
    for k in ks:
        kd = Decimal(k)
        exact = float(
            ((kd + 1) ** Decimal(q) - kd ** Decimal(q)) if beta != 0.5 else (kd + 1) * (kd + 1).sqrt() - kd * kd.sqrt()
        )
        got = -_gain(0.0, 1.0, q, 1.0, 1.0, k)  # a·L - b·L^q·d with a = 0, b = L = 1: -d
        assert abs(got - exact) <= 4 * 2.0**-52 * exact, (k, got, exact)
    assert _gain(2.0, 3.0, q, 0.5, 0.5**q, 0) == 2.0 * 0.5 - 3.0 * 0.5**q  # the first lot: d = 1


def test_breakpoint_sort_is_numpys_descending_order():
    from hyper_make.allocate._kkt import _sort_descending

    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 17, 41, 64):
        v = (
            rng.choice([0.0, 1.0, 2.5, 1e-300, 1e300], n)
            if n % 2
            else rng.standard_normal(n) * 10.0 ** rng.integers(-300, 300, n)
        )
        w = v.copy()
        _sort_descending(w)
        np.testing.assert_array_equal(w, -np.sort(-v))


@pytest.mark.timeout(60)
def test_impact_allocator_on_a_side_of_1e15_lots_with_minimum_orders():
    from helpers import curves_from_edges, problem

    curves = curves_from_edges(np.linspace(5.0, 0.5, 40), b=1e-6)
    prob = dataclasses.replace(
        problem(curves, budget=5e9, cap_frac=0.25, min_size=1e8), lot_coins=1e-6
    )  # 5e15 lots, minimum orders of 1e14 lots
    res = make_allocator("impact").allocate(prob, np.random.default_rng(0))
    d = res.diagnostics
    assert d["lot_certified"] and d["lot_search_steps"] <= 200 * 40
    s = res.sizes
    assert s.sum() <= 5e9 and np.all((s == 0) | (s >= 1e8))


def test_budgets_beyond_2_pow_53_lots_are_refused_with_the_reason():
    from helpers import curves_from_edges, problem
    from hyper_make.instrument import coins_to_lots

    prob = dataclasses.replace(problem(curves_from_edges([3.0, 2.0], b=1.0), budget=1e12), lot_coins=1e-6)
    with pytest.raises(InvalidParameterError, match=r"side budget 1e\+12 coins is 1e\+18 lots .* at most 2\^53"):
        make_allocator("impact").allocate(prob, np.random.default_rng(0))
    with pytest.raises(InvalidParameterError, match=r"more than 2\^53"):
        coins_to_lots(np.array([1.0, 1e19]), 1.0)  # cast to int64 wrapped to a negative lot count before
    with pytest.raises(InvalidParameterError, match="not a number"):
        coins_to_lots(np.nan, 1e-5)
    snap = dataclasses.replace(default_snapshot(), max_position_coins=1e12, margin_usd=1e20)
    for name in sorted(ALLOCATORS):
        with pytest.raises(InvalidParameterError, match=r"bid side budget .* at most 2\^53") as exc:
            build_ladder(snap, default_spec(), make_allocator(name))
        assert "max_position_coins" in str(exc.value) and "\n" not in str(exc.value)


# ---- a zero daily volume ----------------------------------------------------------------------------------
def test_zero_daily_volume_only_stops_the_allocators_that_need_the_impact_model():
    # every allocator failed, flat and entropy too, because the impact model was evaluated for all
    snap = dataclasses.replace(default_snapshot(), daily_volume_coins=0.0)
    for name in sorted(ALLOCATORS):
        ladder = build_ladder(snap, default_spec(), make_allocator(name), rng=0)
        for side in (ladder.bid, ladder.ask):
            if getattr(make_allocator(name), "learns", False):  # its curves are learned, not the impact model's
                assert side.orders, name
                assert np.isfinite(side.expected_pnl_usd) and "needs the impact model" not in side.empty_reason
            elif getattr(make_allocator(name), "needs_impact", True):
                assert side.orders == ()
                assert side.empty_reason.startswith(f"allocator {name!r} needs the impact model")
                assert "daily_volume_coins" in side.empty_reason
            else:
                assert side.orders, name
                assert side.curves.b.max() == 0.0 and np.isfinite(side.expected_pnl_usd)
                assert side.notes == (side.to_dict()["notes"][0],)
                assert side.notes[0].startswith("expected PnL excludes self-impact")


def test_zero_daily_volume_with_posterior_stealth_names_the_stage():
    from hyper_make import StealthConfig

    snap = dataclasses.replace(default_snapshot(), daily_volume_coins=0.0)
    cfg = LadderConfig(stealth=StealthConfig(mode="posterior"))
    ladder = build_ladder(snap, default_spec(), make_allocator("flat"), config=cfg)
    assert ladder.bids == () and "stealth stage 'posterior' needs the impact model" in ladder.bid.empty_reason


def test_zero_daily_volume_is_fine_when_impact_is_off():
    snap = dataclasses.replace(default_snapshot(), daily_volume_coins=0.0)
    cfg = LadderConfig(impact=SquareRootImpact(forward_coef=0.0, roundtrip_coef=0.0))
    ladder = build_ladder(snap, default_spec(), make_allocator("impact"), config=cfg)
    assert ladder.bids and ladder.asks and ladder.bid.notes == ()
