"""The inverse-optimisation observer: exact on exact optima, worse with noise, clear errors on bad ladders."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyper_make.allocate._base import SideProblem
from hyper_make.allocate._twosided import SideCurves, allocate_two_sided
from hyper_make.economics.curve import LevelCurves
from hyper_make.errors import InvalidParameterError
from hyper_make.stealth import dirichlet_sizes
from hyper_make.stealth_audit import PublishedLadders, fit_size_penalty

MID = 100_000.0
N = 8


def market(rng: np.random.Generator, theta: tuple[float, float], beta: float, *, c_lin: bool = False):
    """One refresh's curves in the learner's form: ``a = p·m·mid/1e4``, ``b = p·θ·mid/1e4`` (or ``c`` for β=1)."""
    sides = []
    for j, name in enumerate(("bid", "ask")):
        d = np.geomspace(0.5, 30.0, N) * rng.uniform(0.9, 1.1, N)
        p = np.exp(-d / 10.0) * rng.uniform(0.7, 1.0, N)
        a = p * (d - 1.0 + rng.normal(0.0, 0.3, N)) * MID * 1e-4
        pen = p * theta[j] * MID * 1e-4
        b, c = (np.zeros(N), pen) if c_lin else (pen, None)
        sides.append(SideCurves(a, b, c, p, rng.uniform(0.0, 10.0), name=name))
    return sides


def exact_ladders(seed: int, *, T: int = 12, theta=(12.0, 7.0), beta=0.5, gamma=0.002, c_lin=False, caps=None):
    """``T`` refreshes of the exact two-sided optimum, each with its own curves, mid and (hidden) position."""
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {k: [] for k in ("sb", "sa", "ab", "aa", "pb", "pa", "mid")}
    for _ in range(T):
        bid, ask = market(rng, theta, beta, c_lin=c_lin)
        sol = allocate_two_sided(
            bid, ask, budget_bid=0.3, budget_ask=0.3, caps_bid=caps, caps_ask=caps, q=rng.normal(0.0, 0.2),
            gamma=gamma, sigma2_h=400.0, beta=0.5 if c_lin else beta,
        )  # fmt: skip
        for k, v in (("sb", sol.bid), ("sa", sol.ask), ("ab", bid.a), ("aa", ask.a), ("pb", bid.p), ("pa", ask.p)):
            cols[k].append(v)
        cols["mid"].append(MID)
    arr = {k: np.array(v) for k, v in cols.items()}
    return PublishedLadders(arr["sb"], arr["sa"], arr["mid"], arr["ab"], arr["aa"], arr["pb"], arr["pa"],
                            bid_caps_coins=caps, ask_caps_coins=caps)  # fmt: skip


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("beta", [0.5, 0.63, 1.37])  # 0.5 on the β search's grid, the others between its points
def test_exact_optima_give_the_coefficient_back(seed, beta):
    theta = (12.0, 7.0)
    lad = exact_ladders(seed, beta=beta, theta=theta)
    fit = fit_size_penalty(lad, beta=beta)
    assert fit.relative_error(theta) < 1e-6
    assert fit.kappa_usd == pytest.approx(0.5 * 0.002 * 400.0, rel=1e-6)  # κ = γσ²h/2, not known to the observer
    assert fit.rmse_usd < 1e-9
    free = fit_size_penalty(lad, beta=None)  # β unknown too
    assert free.beta_fitted and free.beta == pytest.approx(beta, abs=1e-6)
    assert free.relative_error(theta) < 1e-6


def test_the_linear_model_is_beta_one_and_caps_are_left_out():
    # the learner's "linear" curves put θ in c (2c·s = 2θg·s): the observer's β = 1
    lad = exact_ladders(7, c_lin=True, theta=(9.0, 9.0))
    assert fit_size_penalty(lad, beta=1.0).relative_error(9.0) < 1e-6
    # with a binding cap a capped level's condition is an inequality: it must be dropped, and the fit stays exact
    capped = exact_ladders(3, caps=np.full(N, 0.04), theta=(12.0, 7.0))
    assert (capped.bid_sizes_coins == 0.04).any()
    assert fit_size_penalty(capped, beta=0.5).relative_error((12.0, 7.0)) < 1e-6


def test_a_one_sided_ladder_identifies_its_own_side_only():
    lad = exact_ladders(2, gamma=0.0)
    none = np.zeros((lad.n_snapshots, 0))
    one = PublishedLadders(lad.bid_sizes_coins, none, lad.mid_usd, lad.bid_edge_usd, none, lad.bid_fill_prob, none)
    fit = fit_size_penalty(one, beta=0.5, inventory=False)
    assert fit.theta_bps[0] == pytest.approx(12.0, rel=1e-6) and np.isnan(fit.theta_bps[1])
    assert fit.relative_error((12.0, 7.0)) < 1e-6  # over the identified side


def test_without_inventory_the_observer_assumes_none():
    lad = exact_ladders(5, gamma=0.0)
    fit = fit_size_penalty(lad, beta=0.5, inventory=False)
    assert fit.relative_error((12.0, 7.0)) < 1e-6 and np.isnan(fit.kappa_usd)
    # with an inventory term it does not model, the fit is off (the coupling moves every level's edge)
    biased = fit_size_penalty(exact_ladders(5, gamma=0.05), beta=0.5, inventory=False)
    assert biased.relative_error((12.0, 7.0)) > 1e-4


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(1e-3, 1e3), inventory=st.booleans())
def test_the_fit_ignores_what_the_side_prices_and_the_coupling_absorb(seed, scale, inventory):
    # on any ladders (optimal or not): shifting a side's edges in one refresh by a constant (its price x) and, when
    # the coupling is fitted, by σ·μ·p_i, leaves θ̂ unchanged; scaling every edge scales θ̂ (and κ̂)
    rng = np.random.default_rng(seed)
    T, n = 5, 6
    s = rng.uniform(0.0, 0.1, (2, T, n)) * (rng.random((2, T, n)) > 0.2)
    a = rng.normal(10.0, 5.0, (2, T, n))
    p = rng.uniform(0.05, 1.0, (2, T, n))
    mid = rng.uniform(1e3, 1e5, T)
    base = fit_size_penalty(PublishedLadders(s[0], s[1], mid, a[0], a[1], p[0], p[1]), inventory=inventory)
    shift = rng.normal(0.0, 50.0, (2, T, 1))
    if inventory:
        shift = shift + np.array([1.0, -1.0])[:, None, None] * rng.normal(0.0, 50.0, (1, T, 1)) * p
    moved = fit_size_penalty(PublishedLadders(s[0], s[1], mid, a[0] + shift[0], a[1] + shift[1], p[0], p[1]),
                             inventory=inventory)  # fmt: skip
    scaled = fit_size_penalty(PublishedLadders(s[0], s[1], mid, scale * a[0], scale * a[1], p[0], p[1]),
                              inventory=inventory)  # fmt: skip
    ref = np.abs(base.theta_bps) + np.asarray(base.theta_se_bps) + 1e-12
    assert np.all(np.abs(np.subtract(moved.theta_bps, base.theta_bps)) <= 1e-6 * ref)
    assert np.allclose(scaled.theta_bps, scale * np.asarray(base.theta_bps), rtol=1e-8, atol=1e-9 * scale * ref)
    assert moved.n_equations == base.n_equations and moved.dof == base.dof


def _dirichlet_ladders(base: PublishedLadders, conc: float, rng: np.random.Generator) -> PublishedLadders:
    z = np.zeros(N)
    curves = LevelCurves(z + 1.0, z + MID, z, z, z, z, z, beta=0.5, mid_usd=MID)
    prob = SideProblem("bid", curves, 0.3, np.full(N, np.inf), 1e-12, z)
    sb = np.array([dirichlet_sizes(s, prob, conc, rng) for s in base.bid_sizes_coins])
    sa = np.array([dirichlet_sizes(s, prob, conc, rng) for s in base.ask_sizes_coins])
    return PublishedLadders(sb, sa, base.mid_usd, base.bid_edge_usd, base.ask_edge_usd, base.bid_fill_prob,
                            base.ask_fill_prob)  # fmt: skip


def test_the_error_grows_with_dirichlet_noise():
    theta = (12.0, 7.0)
    concs = [2000.0, 200.0, 20.0]
    errs = np.zeros((6, len(concs)))
    for seed in range(errs.shape[0]):
        base = exact_ladders(100 + seed, T=8, theta=theta)
        for j, conc in enumerate(concs):
            noisy = _dirichlet_ladders(base, conc, np.random.default_rng([seed, j]))
            errs[seed, j] = fit_size_penalty(noisy, beta=0.5).relative_error(theta)
    mean = errs.mean(axis=0)
    exact = fit_size_penalty(exact_ladders(100, T=8, theta=theta), beta=0.5).relative_error(theta)
    assert exact < 1e-6 < mean[0] < mean[1] < mean[2]  # monotone in expectation over seeds (10× apart in κ)


def test_averaging_a_stationary_market_undoes_dirichlet_noise():
    one = exact_ladders(11, T=1)  # one market state, published 400 times
    fields = ("bid_sizes_coins", "ask_sizes_coins", "mid_usd", "bid_edge_usd", "ask_edge_usd", "bid_fill_prob",
              "ask_fill_prob")  # fmt: skip
    base = PublishedLadders(*(np.repeat(getattr(one, f), 400, axis=0) for f in fields))
    noisy = _dirichlet_ladders(base, 50.0, np.random.default_rng(0))
    per = fit_size_penalty(noisy, beta=0.5, inventory=False).relative_error((12.0, 7.0))
    avg = fit_size_penalty(noisy.averaged(), beta=0.5, inventory=False).relative_error((12.0, 7.0))
    assert avg < per / 3
    with pytest.raises(InvalidParameterError, match="'mid_usd' changes between snapshots"):
        PublishedLadders(base.bid_sizes_coins, base.ask_sizes_coins, np.linspace(1e5, 2e5, 400), base.bid_edge_usd,
                         base.ask_edge_usd, base.bid_fill_prob, base.ask_fill_prob).averaged()  # fmt: skip


def _args(T=2, n=3):
    s = np.full((T, n), 0.01)
    return dict(bid_sizes_coins=s, ask_sizes_coins=s, mid_usd=np.full(T, MID), bid_edge_usd=s + 1.0,
                ask_edge_usd=s + 1.0, bid_fill_prob=s * 0 + 0.5, ask_fill_prob=s * 0 + 0.5)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "bid_sizes_coins": np.zeros((0, 3)),
                "ask_sizes_coins": np.zeros((0, 3)),
                "bid_edge_usd": np.zeros((0, 3)),
                "ask_edge_usd": np.zeros((0, 3)),
                "bid_fill_prob": np.zeros((0, 3)),
                "ask_fill_prob": np.zeros((0, 3)),
                "mid_usd": np.zeros(0),
            },
            "at least one snapshot",
        ),
        (
            {
                "bid_sizes_coins": np.zeros((2, 0)),
                "ask_sizes_coins": np.zeros((2, 0)),
                "bid_edge_usd": np.zeros((2, 0)),
                "ask_edge_usd": np.zeros((2, 0)),
                "bid_fill_prob": np.zeros((2, 0)),
                "ask_fill_prob": np.zeros((2, 0)),
            },
            "no level on either side",
        ),
        ({"bid_edge_usd": np.ones((2, 4))}, r"'bid_edge_usd' must have the shape of 'bid_sizes_coins' \(2, 3\)"),
        (
            {
                "ask_sizes_coins": np.full((3, 3), 0.01),
                "ask_edge_usd": np.ones((3, 3)),
                "ask_fill_prob": np.ones((3, 3)),
            },
            "same number of snapshots; got 2 and 3",
        ),
        ({"mid_usd": np.full(3, MID)}, r"'mid_usd' must have one value per snapshot, shape \(2,\)"),
        ({"bid_sizes_coins": np.array([[0.01, np.nan, 0.01], [0.01] * 3])}, r"'bid_sizes_coins\[0, 1\]' must be fin"),
        ({"ask_sizes_coins": np.array([[0.01] * 3, [0.01, 0.01, -1.0]])}, r"'ask_sizes_coins\[1, 2\]'.*\[0, inf\]"),
        ({"ask_edge_usd": np.array([[1.0, np.inf, 1.0]] * 2)}, r"'ask_edge_usd\[0, 1\]' must be finite"),
        ({"bid_fill_prob": np.array([[0.5, 1.5, 0.5]] * 2)}, r"'bid_fill_prob\[0, 1\]'.*\[0, 1\]"),
        ({"mid_usd": np.array([MID, np.nan])}, r"'mid_usd\[1\]' must be finite and > 0 \(USD\)"),
        ({"bid_caps_coins": np.array([1.0, np.nan, 1.0])}, r"'bid_caps_coins\[0, 1\]' must be in \[0, inf\]"),
        ({"ask_caps_coins": np.ones(4)}, r"'ask_caps_coins' must have shape \(3,\) or \(2, 3\)"),
        ({"bid_sizes_coins": np.ones((2, 3, 1))}, "must be 2-dimensional"),
        ({"bid_sizes_coins": "abc"}, "must be an array of real numbers"),
    ],
)
def test_bad_ladders_are_refused_naming_the_field(change, message):
    with pytest.raises(InvalidParameterError, match=message):
        PublishedLadders(**(_args() | change))


def test_unidentifiable_ladders_and_bad_arguments_are_refused():
    empty = PublishedLadders(**(_args() | {"bid_sizes_coins": np.zeros((2, 3)), "ask_sizes_coins": np.zeros((2, 3))}))
    with pytest.raises(InvalidParameterError, match="no free level"):
        fit_size_penalty(empty)
    one = np.array([[0.01, 0.0, 0.0]] * 2)
    single = PublishedLadders(**(_args() | {"bid_sizes_coins": one, "ask_sizes_coins": one}))
    with pytest.raises(InvalidParameterError, match=r"not identifiable.*two free levels"):
        fit_size_penalty(single, inventory=False)
    with pytest.raises(InvalidParameterError, match="not identifiable"):  # same size and p on every level
        fit_size_penalty(PublishedLadders(**_args()), inventory=False)
    lad = exact_ladders(0, T=2)
    with pytest.raises(InvalidParameterError, match=r"'beta' must be in \(0, 2\]"):
        fit_size_penalty(lad, beta=2.5)
    with pytest.raises(InvalidParameterError, match="'ladders' must be a PublishedLadders"):
        fit_size_penalty({"bid": 1})  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="'theta_true_bps' must be finite and non-zero"):
        fit_size_penalty(lad).relative_error(0.0)


def test_the_module_examples_run():
    import hyper_make.stealth_audit as mod

    assert doctest.testmod(mod).failed == 0
