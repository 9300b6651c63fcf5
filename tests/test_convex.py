"""The exact convex allocator: KKT conditions, edge cases, bad input, and the lot/minimum-order step."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from helpers import curves_from_edges, problem
from hyper_make import ImpactAllocator, InvalidParameterError, allocate_concave
from hyper_make.allocate._discrete import _values, discrete_allocation, lot_optimum

BETAS = [0.5, 1.0, 0.3, 0.7, 1.5, 2.0]


def kkt_violation(a, b, beta, caps, budget, sol):
    """Largest violation of the KKT conditions at the solver's ``λ`` (0 = exact), level by level the smaller of:

    * the marginal residual over the largest |edge| ("interior marginal = λ, zero-size marginal <= λ, capped
      marginal >= λ");
    * the size residual over the budget: distance from the size the conditions give at ``λ``,
      ``clip(((a - λ)_+ / ((1+β)·b))^(1/β), 0, cap)``.

    The second covers optima that floating point cannot represent: ``a = 1.66e-169, b = 0.1`` has its optimum at
    ``1.2e-337`` coins, which underflows to 0, where the marginal residual is 1.0 although no float is closer.
    """
    s, lam = np.asarray(sol.sizes, dtype=float), float(sol.shadow_price)
    a, b, caps = (np.asarray(x, dtype=float) for x in (a, b, caps))
    scale = max(float(np.max(np.abs(a))), 1e-300) if a.size else 1.0
    k = 1.0 + beta
    marg = a - k * b * s**beta
    tol_s = 1e-9 * max(budget, 1e-300)
    at_cap = s >= caps - tol_s
    at_zero = ~at_cap & (s <= tol_s)
    interior = ~at_cap & ~at_zero & (b > 0)
    m_res = np.zeros_like(a)
    m_res = np.where(at_cap, (lam - marg) / scale, m_res)
    m_res = np.where(at_zero, (marg - lam) / scale, m_res)
    m_res = np.where(interior, np.abs(marg - lam) / scale, m_res)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        gap = np.maximum(a - lam, 0.0)
        want = np.where(b > 0, (gap / (k * b)) ** (1.0 / beta), np.where(gap > 0, np.inf, s))
    want = np.minimum(want, caps)
    s_res = np.abs(s - want) / max(budget, 1e-300)
    level = np.where(caps <= tol_s, 0.0, np.minimum(np.maximum(m_res, 0.0), np.nan_to_num(s_res, nan=np.inf)))
    bad = float(level.max()) if level.size else 0.0
    if lam > 0:  # complementary slackness
        bad = max(bad, abs(s.sum() - budget) / max(budget, 1e-300) * 1e-3)
    return bad


@st.composite
def instances(draw):
    n = draw(st.integers(1, 30))
    beta = draw(st.sampled_from(BETAS))
    scale = 10 ** draw(st.floats(-4, 4))
    a = np.array(draw(st.lists(st.floats(-1, 3), min_size=n, max_size=n))) * scale
    if draw(st.booleans()):
        a = np.round(a, 1)  # ties
    b = np.array(draw(st.lists(st.sampled_from([0.0, 0.1, 1.0, 5.0]), min_size=n, max_size=n))) * scale
    caps = np.array(draw(st.lists(st.sampled_from([np.inf, 0.0, 0.05, 0.3, 2.0]), min_size=n, max_size=n)))
    budget = draw(st.sampled_from([0.0, 1e-6, 0.1, 1.0, 100.0]))
    return a, b, beta, caps, budget


@settings(max_examples=300, deadline=None)
@given(instances())
# an optimum that underflows (1.2e-337 coins): once reported as a violation of 1.0 by the checker
@example((np.array([0.0, 1.66e-169]), np.array([0.0, 0.1]), 0.5, np.array([np.inf, np.inf]), 1e-6))
def test_kkt_conditions_and_feasibility(inst):
    a, b, beta, caps, budget = inst
    sol = allocate_concave(a, b, budget, beta=beta, caps=caps)
    s = sol.sizes
    assert s.shape == a.shape and np.all(np.isfinite(s))
    assert np.all(s >= 0) and np.all(s <= caps)
    assert s.sum() <= budget
    assert np.all(s[a <= 0] == 0), "non-positive edges get nothing"
    assert sol.shadow_price >= 0
    assert kkt_violation(a, b, beta, caps, budget, sol) < 1e-7
    assert sol.objective == pytest.approx(float(a @ s - b @ s ** (1 + beta)), rel=1e-12, abs=1e-300)


def test_closed_form_two_levels():
    # (3 - λ)² + (2 - λ)² = 2.25  ->  λ = (5 - √(4.5 - 1)) / 2
    sol = allocate_concave([3.0, 2.0], [1.0, 1.0], 1.0)
    lam = (5 - np.sqrt(3.5)) / 2
    assert sol.shadow_price == pytest.approx(lam, rel=1e-14)
    assert sol.sizes == pytest.approx([((3 - lam) / 1.5) ** 2, ((2 - lam) / 1.5) ** 2], rel=1e-13)
    assert sol.binding == "budget" and sol.status == "optimal"


def test_unspent_budget_when_marginal_runs_out():
    sol = allocate_concave([3.0, 2.0], [1.0, 1.0], 10.0)
    assert sol.shadow_price == 0.0 and sol.binding == "marginal"
    assert sol.sizes == pytest.approx([4.0, 16 / 9], rel=1e-14)


def test_caps_binding_and_reported():
    sol = allocate_concave([3.0, 2.0], [1.0, 1.0], 10.0, caps=[0.5, 0.5])
    assert sol.binding == "caps" and sol.sizes.tolist() == [0.5, 0.5]


def test_linear_levels_fill_by_edge_order_and_ties_split_equally():
    sol = allocate_concave([1.0, 3.0, 3.0, 2.0], [0.0, 0.0, 0.0, 0.0], 1.0, caps=[1.0, 0.3, 0.3, 1.0])
    assert sol.sizes == pytest.approx([0.0, 0.3, 0.3, 0.4])
    assert sol.shadow_price == 2.0
    tie = allocate_concave([3.0, 3.0], [0.0, 0.0], 1.0)
    assert tie.sizes.tolist() == [0.5, 0.5] and tie.shadow_price == 3.0


def test_linear_and_curved_mixed():
    # curved level's marginal 4 - 1.5·s^0.5 meets the linear edge 2 at s = (2/1.5)²
    sol = allocate_concave([4.0, 2.0], [1.0, 0.0], 5.0)
    assert sol.shadow_price == 2.0
    assert sol.sizes[0] == pytest.approx((2 / 1.5) ** 2) and sol.sizes.sum() == pytest.approx(5.0)


def test_non_positive_edges_give_an_empty_side_not_an_error():
    sol = allocate_concave([-1.0, 0.0], [1.0, 1.0], 1.0)
    assert sol.binding == "empty" and "no level has a positive edge" in sol.message
    assert sol.sizes.tolist() == [0.0, 0.0] and sol.objective == 0.0
    alloc = ImpactAllocator().allocate(problem(curves_from_edges([-1.0, -2.0], b=1.0)), np.random.default_rng(0))
    assert alloc.binding == "empty" and alloc.sizes.sum() == 0 and "positive edge" in alloc.message


def test_zero_budget_and_empty_arrays():
    assert allocate_concave([1.0], [1.0], 0.0).binding == "empty"
    assert allocate_concave(np.zeros(0), np.zeros(0), 1.0).sizes.shape == (0,)


def test_linear_limit_concentrates_on_the_best_level():
    a = np.array([1.0, 3.0, 2.5])
    for c in [1.0, 1e-2, 1e-4, 0.0]:
        sol = allocate_concave(a, c * np.ones(3), 1.0)
        share = sol.sizes[1] / sol.sizes.sum()
    assert share == 1.0
    assert allocate_concave(a, 1e-4 * np.ones(3), 1.0).sizes[1] > 0.99


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"a": [np.nan], "b": [1.0], "budget": 1.0}, "'a[0]' must be finite"),
        ({"a": [1.0], "b": [-1.0], "budget": 1.0}, "'b[0]' must be in [0, inf)"),
        ({"a": [1.0], "b": [np.inf], "budget": 1.0}, "'b[0]'"),
        ({"a": [1.0], "b": [1.0], "budget": -1.0}, "'budget' must be in [0, inf)"),
        ({"a": [1.0], "b": [1.0], "budget": np.inf}, "'budget'"),
        ({"a": [1.0], "b": [1.0], "budget": 1.0, "beta": 0.0}, "'beta' must be in (0, 2]"),
        ({"a": [1.0], "b": [1.0], "budget": 1.0, "beta": 2.5}, "'beta' must be in (0, 2]"),
        ({"a": [1.0], "b": [1.0], "budget": 1.0, "caps": [-0.1]}, "'caps[0]' must be in [0, inf]"),
        ({"a": [1.0, 2.0], "b": [1.0], "budget": 1.0}, "'b' must have the shape"),
        ({"a": [[1.0]], "b": [[1.0]], "budget": 1.0}, "'a' must be 1-dimensional"),
    ],
)
def test_bad_input_names_the_argument(kwargs, needle):
    a, b, budget = kwargs.pop("a"), kwargs.pop("b"), kwargs.pop("budget")
    with pytest.raises(InvalidParameterError) as exc:
        allocate_concave(a, b, budget, **kwargs)
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)


def test_inputs_are_not_mutated():
    a, b, caps = np.array([3.0, 2.0]), np.array([1.0, 1.0]), np.array([0.5, np.inf])
    copies = a.copy(), b.copy(), caps.copy()
    allocate_concave(a, b, 1.0, caps=caps)
    for x, y in zip((a, b, caps), copies, strict=True):
        assert np.array_equal(x, y)


# ---- the lot grid ----------------------------------------------------------------------------------------
def brute_force_lots(a, b, beta, lot, budget_lots, hi, m=None, lo=None):
    best, arg = -np.inf, None
    n = len(a)
    lo = np.zeros(n, int) if lo is None else lo
    for k in itertools.product(*[range(lo_i, h + 1) for lo_i, h in zip(lo, hi, strict=True)]):
        k = np.array(k)
        if k.sum() > budget_lots:
            continue
        if m is not None and np.any((k > 0) & (k < m)):
            continue
        v = float(_values(a, b, beta, lot, k.astype(float)).sum())
        if v > best + 1e-15:
            best, arg = v, k
    assert arg is not None and n == len(arg)
    return best, arg


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 3),
    beta=st.sampled_from(BETAS),
    seed=st.integers(0, 2**31),
    budget_lots=st.integers(0, 12),
    with_lower=st.booleans(),
)
def test_lot_optimum_matches_brute_force(n, beta, seed, budget_lots, with_lower):
    rng = np.random.default_rng(seed)
    a = rng.normal(1.0, 1.0, n)
    b = rng.choice([0.0, 0.05, 0.3, 1.0], n)
    hi = rng.integers(0, 8, n)
    lot = 0.1
    lo = np.minimum(rng.integers(0, 3, n), hi) if with_lower else np.zeros(n, np.int64)
    if lo.sum() > budget_lots:
        lo = np.zeros(n, np.int64)
    k, _, certified = lot_optimum(a, b, beta, lot, budget_lots, lo, hi)
    best, _ = brute_force_lots(a, b, beta, lot, budget_lots, hi, lo=lo)
    assert certified
    assert k.sum() <= budget_lots and np.all(k <= hi) and np.all(k >= lo)
    assert float(_values(a, b, beta, lot, k.astype(float)).sum()) == pytest.approx(best, rel=1e-12, abs=1e-12)


def test_lot_optimum_on_many_levels_is_near_the_continuous_optimum_in_few_steps():
    rng = np.random.default_rng(3)
    n = 60
    a, b = rng.normal(1, 1, n), rng.uniform(0.1, 2, n)
    lot, budget_lots = 1e-3, 4000
    cont = allocate_concave(a, b, budget_lots * lot)
    k, steps, certified = lot_optimum(a, b, 0.5, lot, budget_lots, np.zeros(n, np.int64), np.full(n, 10**6))
    v = float(_values(a, b, 0.5, lot, k.astype(float)).sum())
    assert certified and steps <= 2 * n
    assert v <= cont.objective + 1e-12 and v > cont.objective - 1e-3


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 3), budget_lots=st.integers(0, 14))
def test_minimum_order_is_respected_and_near_brute_force(seed, n, budget_lots):
    rng = np.random.default_rng(seed)
    a = rng.normal(1.0, 1.0, n)
    b = rng.choice([0.0, 0.1, 0.5, 2.0], n)
    lot = 0.1
    caps = rng.integers(0, 8, n) * lot
    m_lots = rng.integers(1, 5, n)
    cont = allocate_concave(a, b, budget_lots * lot, caps=caps)
    disc = discrete_allocation(a, b, 0.5, lot, budget_lots * lot, caps, m_lots * lot)
    k = disc.lots
    assert np.all((k == 0) | (k >= m_lots)), "0 or at least the minimum"
    assert k.sum() <= budget_lots and np.all(k * lot <= caps + 1e-12)
    best, _ = brute_force_lots(a, b, 0.5, lot, budget_lots, np.round(caps / lot).astype(int), m_lots)
    v = float(_values(a, b, 0.5, lot, k.astype(float)).sum())
    assert v <= best + 1e-12
    assert v >= best - 1e-12, "exhaustive search over up to 4 violating levels is exact for n <= 3"
    assert v <= cont.objective + 1e-12


def test_impact_allocator_reports_lot_exact_sizes_and_diagnostics():
    curves = curves_from_edges([1.0, 3.0, 2.0, -1.0], b=200.0)
    prob = problem(curves, budget=0.5, min_size=0.002)
    res = ImpactAllocator().allocate(prob, np.random.default_rng(0))
    lots = res.sizes / 1e-5
    assert np.allclose(lots, np.round(lots), atol=1e-6)
    assert np.all((res.sizes == 0) | (res.sizes >= 0.002))
    d = res.diagnostics
    assert d["discrete_loss_usd"] >= -1e-9
    assert d["active_levels"] == np.count_nonzero(res.sizes)
    parts = d["spread_capture_usd"] + d["adverse_selection_usd"] + d["forward_impact_usd"] + d["roundtrip_impact_usd"]
    assert parts == pytest.approx(res.expected_pnl_usd)
    assert res.shadow_price >= 0 and res.binding in ("budget", "marginal", "caps")
    cont = ImpactAllocator(discrete=False).allocate(prob, np.random.default_rng(0))
    assert cont.expected_pnl_usd >= res.expected_pnl_usd - 1e-12


def test_impact_allocator_option_errors():
    with pytest.raises(InvalidParameterError, match=r"impact\.max_search_levels"):
        ImpactAllocator(max_search_levels=99)
    with pytest.raises(InvalidParameterError, match=r"'impact\.max_search_levels' must be in \[0, 6\]"):
        ImpactAllocator(max_search_levels=7)  # 2^7 re-solves could take > 10 ms on 40 levels
    with pytest.raises(InvalidParameterError, match=r"impact\.discrete"):
        ImpactAllocator(discrete="yes")  # type: ignore[arg-type]


def test_budget_below_the_minimum_order_gives_an_empty_side_with_a_reason():
    prob = problem(curves_from_edges([3.0, 2.0], b=10.0), budget=0.001, min_size=0.002)
    res = ImpactAllocator().allocate(prob, np.random.default_rng(0))
    assert res.binding == "empty" and not res.sizes.any() and "minimum order" in res.message


def test_many_levels_below_the_minimum_are_resolved_feasibly():
    # ten similar levels share a small budget: each would be under the minimum, so some must go
    edges = np.linspace(3.0, 2.5, 10)
    prob = problem(curves_from_edges(edges, b=10.0), budget=0.02, min_size=0.004)
    res = ImpactAllocator().allocate(prob, np.random.default_rng(0))
    s = res.sizes
    assert np.all((s == 0) | (s >= 0.004 - 1e-12)) and s.sum() <= 0.02 + 1e-12
    assert 0 < np.count_nonzero(s) <= 5
    assert res.diagnostics["min_order_dropped"] + res.diagnostics["min_order_raised"] > 0
    assert res.diagnostics["discrete_loss_usd"] >= 0
