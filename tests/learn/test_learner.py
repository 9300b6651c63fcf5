"""The payout learner: conjugate updates by hand, recovery of known rates and markouts from a seeded generator,
forgetting, pooling, the size penalty's model choice, robustness to fat tails, skipped bad values, determinism,
the prior from a calibration file, and the curves feeding the two-sided solver."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from hyper_make.allocate._twosided import allocate_two_sided
from hyper_make.economics import ExponentialAdverse, ExponentialIntensity
from hyper_make.errors import InvalidParameterError
from hyper_make.learn import LearnerConfig, LearnerPrior, LevelObservations, PayoutLearner, pool_learners
from learn._synth import DEPTHS, HZ, SIZES, TrueModel, interval, learner, make_prior, prior_markout, prior_rate, truth


# ---- conjugate updates by hand ----------------------------------------------------------------------------------
def test_conjugate_updates_match_hand_computed_posteriors():
    cfg = dict(bucket_edges_bps=(0.0, 4.0), pool_width_buckets=0.0, half_life_s=math.inf, huber_k=math.inf,
               prior_fills=3.0, prior_noise_dof=4.0, size_ref_coins=0.02)  # fmt: skip
    lrn = learner(**cfg)
    d, size, t = 2.0, 0.04, 10.0  # one bid resting 0.04 coin for 10 s at the bucket's centre
    mk = np.array([5.0, -3.0, 11.0])  # bps at the 5 s horizon; fills of 0.02 coin each
    price = 100_000.0
    fills = [("bid", d, 0.02, price, (0.0, m * price * 1e-4, 0.0), 0.04, 0.04) for m in mk]
    lrn.update(LevelObservations.build(t, [("bid", d, size, t)], fills, horizons_s=HZ))
    n0, nu0, s0 = 3.0, 4.0, 8.0
    # fill rate: X = 0.06 filled coins over E = 0.4 coin-s; φ blends the fills' sizes (0.02) with n0
    # pseudo-fills of the resting order's size (0.04): (n0·0.04² + Σy²)/(n0·0.04 + Σy)
    phi = (n0 * 0.04**2 + 3 * 0.02**2) / (n0 * 0.04 + 3 * 0.02)
    assert lrn.fill_unit_coins()[0, 0] == pytest.approx(phi)
    shape, rate = n0 + 0.06 / phi, n0 + 0.4 * prior_rate(d) / phi
    diag = lrn.diagnostics(level=0.8)
    assert diag.bid.rate_mean_per_s[0] == pytest.approx(prior_rate(2.0) * shape / rate, rel=1e-12)
    assert diag.bid.rate_lo_per_s[0] == pytest.approx(prior_rate(2.0) * stats.gamma.ppf(0.1, shape) / rate, rel=1e-9)
    # markout: Normal-Gamma on the deviations from the prior (all fills of one size: no size slope)
    dev = mk - prior_markout(d)
    kap = n0 + 3
    mean = dev.sum() / kap
    alpha = nu0 / 2 + 3 / 2
    beta = nu0 * s0**2 / 2 + 0.5 * ((dev**2).sum() - dev.sum() ** 2 / kap)
    assert diag.bid.markout_mean_bps[0] == pytest.approx(prior_markout(2.0) + mean, rel=1e-12)
    half = np.sqrt(beta / (alpha * kap)) * stats.t.ppf(0.9, 2 * alpha)
    assert diag.bid.markout_hi_bps[0] - diag.bid.markout_mean_bps[0] == pytest.approx(half, rel=1e-9)
    # the ask side saw nothing: its posterior is the prior
    assert diag.ask.rate_mean_per_s[0] == pytest.approx(prior_rate(2.0))
    assert diag.ask.markout_mean_bps[0] == pytest.approx(prior_markout(2.0))


def test_forgetting_halves_the_data_per_half_life_and_returns_to_the_prior():
    lrn = learner(half_life_s=100.0)
    lrn.update(interval(np.random.default_rng(0), TrueModel(prior_rate, prior_markout), DEPTHS, SIZES))
    before = {k: v.copy() for k, v in lrn.state.items()}
    lrn.update(LevelObservations.build(100.0, horizons_s=HZ))  # 100 s, nothing rests, nothing fills
    for k, v in lrn.state.items():
        np.testing.assert_allclose(v, 0.5 * before[k], rtol=1e-12)
    for _ in range(60):
        lrn.update(LevelObservations.build(100.0, horizons_s=HZ))
    d = lrn.diagnostics()
    np.testing.assert_allclose(d.bid.rate_mean_per_s, lrn.prior.rate(lrn.config.bucket_centres_bps), rtol=1e-9)


# ---- recovery from a known model ----------------------------------------------------------------------------------
def run(lrn: PayoutLearner, model: TrueModel, n: int, seed: int, duration_s: float = 5.0) -> PayoutLearner:
    """``n`` intervals of ``duration_s`` of the default ladder under ``model``."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        lrn.update(interval(rng, model, DEPTHS, SIZES, duration_s=duration_s))
    return lrn


def test_recovers_known_fill_rates_and_markouts():
    lrn = run(learner(pool_width_buckets=0.0, half_life_s=math.inf), truth(), 600, seed=1)
    d = lrn.diagnostics(level=0.99)
    for side in (d.bid, d.ask):
        centres = 0.5 * (side.depth_lo_bps + side.depth_hi_bps)
        seen = side.fills > 200
        assert seen.sum() >= 4
        true_rate = truth().rate(centres)
        assert np.all((side.rate_lo_per_s[seen] <= true_rate[seen]) & (true_rate[seen] <= side.rate_hi_per_s[seen]))
        np.testing.assert_allclose(side.rate_mean_per_s[seen], true_rate[seen], rtol=0.15)
        true_mk = truth().markout(centres)
        assert np.all(np.abs(side.markout_mean_bps[seen] - true_mk[seen]) < 1.0)
    # the curves carry it: the touch's edge per coin is now positive where the prior's was negative
    c = lrn.mean([0.5], [0.5], mid_usd=100_000.0, horizon_s=2.0)
    assert prior_markout(0.5) < 0 < c.markout_bps[0][0]
    assert c.bid.a[0] > 0


def test_forgetting_tracks_a_change_that_a_long_memory_averages_away():
    up = TrueModel(prior_rate, lambda d: prior_markout(d) + 3.0, noise_bps=4.0)
    down = TrueModel(prior_rate, lambda d: prior_markout(d) - 3.0, noise_bps=4.0)
    fast, slow = learner(half_life_s=120.0), learner(half_life_s=math.inf)
    for lrn in (fast, slow):
        run(lrn, up, 120, seed=2)  # 600 s each: five half-lives of the fast learner
        run(lrn, down, 120, seed=3)
    touch = 0  # bucket [0, 1) bps
    dev_fast = fast.diagnostics().bid.markout_mean_bps[touch] - prior_markout(0.5)
    dev_slow = slow.diagnostics().bid.markout_mean_bps[touch] - prior_markout(0.5)
    assert dev_fast == pytest.approx(-3.0, abs=1.0)
    assert abs(dev_slow) < 1.0  # the average of +3 and -3


def test_pooling_lets_a_rarely_filled_deep_bucket_borrow_from_its_neighbours():
    model = TrueModel(lambda d: 2.0 * prior_rate(d), lambda d: prior_markout(d) + 2.0, noise_bps=4.0)
    depths = np.array([4.0, 6.5, 10.0, 15.0])  # buckets [3,5), [5,8), [8,12) and the rarely filled [12,18)
    res = {}
    for width in (0.0, 1.5):
        lrn = PayoutLearner(LearnerConfig(pool_width_buckets=width, half_life_s=math.inf), make_prior())
        rng = np.random.default_rng(4)
        for i in range(300):
            # the deep level rests only one interval in fifty: a handful of fills in all
            lvl = depths if i % 50 == 0 else depths[:3]
            lrn.update(interval(rng, model, lvl, np.full(lvl.size, 0.01), duration_s=5.0))
        res[width] = lrn.diagnostics()
    j = LearnerConfig().bucket_of([15.0])[0]
    centre = LearnerConfig().bucket_centres_bps[j]
    ratio = {w: d.bid.rate_mean_per_s[j] / prior_rate(centre) for w, d in res.items()}
    dev = {w: d.bid.markout_mean_bps[j] - prior_markout(centre) for w, d in res.items()}
    assert res[0.0].bid.fills[j] < 5
    assert abs(ratio[1.5] - 2.0) < 0.5 * abs(ratio[0.0] - 2.0)  # pooled: near the neighbours' 2x
    assert abs(dev[1.5] - 2.0) < 0.5 * abs(dev[0.0] - 2.0)


# ---- the size penalty ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("beta", "preferred"), [(1.0, "linear"), (0.5, "sqrt")])
def test_size_penalty_model_choice_and_its_coefficient(beta, preferred):
    theta = 40.0 if beta == 1.0 else 4.0  # bps per coin^β: 0.2 coin costs 8 bps (linear) or 1.8 bps (sqrt)
    model = TrueModel(prior_rate, prior_markout, theta_bps=theta, beta=beta, noise_bps=1.5)
    rng = np.random.default_rng(5)
    lrn = learner(half_life_s=math.inf, size_penalty="auto")
    for _ in range(600):
        sizes = np.exp(rng.uniform(np.log(0.0125), np.log(0.2), DEPTHS.size))  # the 0.0125 → 0.2 BTC
        lrn.update(interval(rng, model, DEPTHS, sizes))
    fit = lrn.size_fit()
    assert fit.preferred == preferred, fit
    assert fit.model == preferred
    assert fit.beta_hat == beta
    assert fit.theta_bps[0] == pytest.approx(theta, rel=0.15)
    assert abs(fit.theta_bps[0] - theta) < 4 * fit.theta_se_bps[0]
    c = lrn.mean(DEPTHS, DEPTHS, mid_usd=100_000.0, horizon_s=2.0)
    if preferred == "linear":
        assert np.all(c.bid.b == 0) and np.all(c.bid.c > 0)
    else:
        assert c.beta == 0.5 and np.all(c.bid.b > 0) and np.all(c.bid.c == 0)


def test_side_total_slope_is_learned():
    model = TrueModel(prior_rate, prior_markout, kappa_bps=20.0, noise_bps=1.5)
    rng = np.random.default_rng(6)
    lrn = learner(half_life_s=math.inf)
    for _ in range(500):
        scale = np.exp(rng.uniform(np.log(0.2), np.log(3.0)))
        lrn.update(interval(rng, model, DEPTHS, SIZES * scale))
    fit = lrn.size_fit()
    assert fit.kappa_bps[0] == pytest.approx(20.0, rel=0.2)
    assert lrn.mean(DEPTHS, DEPTHS, mid_usd=1e5, horizon_s=2.0).bid.k > 0


# ---- robustness -----------------------------------------------------------------------------------------------------
def test_winsorising_bounds_the_influence_of_fat_tails():
    model = TrueModel(prior_rate, lambda d: prior_markout(d) + 1.0, noise_bps=4.0, tail_dof=1.5)
    errs = {}
    for k in (2.5, math.inf):
        lrn = run(learner(huber_k=k, half_life_s=math.inf, pool_width_buckets=0.0), model, 160, seed=7)
        d = lrn.diagnostics()
        errs[k] = abs(d.bid.markout_mean_bps[0] - (prior_markout(0.5) + 1.0))
    assert errs[2.5] < 1.0
    assert errs[2.5] < errs[math.inf]


def test_non_finite_values_are_counted_and_skipped_never_learned():
    rng = np.random.default_rng(8)
    clean = interval(rng, truth(), DEPTHS, SIZES)
    bad = LevelObservations(
        duration_s=clean.duration_s,
        rest_side=np.concatenate((clean.rest_side, [1, -1, 1])),
        rest_depth_bps=np.concatenate((clean.rest_depth_bps, [np.nan, 2.0, 2.0])),
        rest_size_coins=np.concatenate((clean.rest_size_coins, [0.01, np.inf, -1.0])),
        rest_time_s=np.concatenate((clean.rest_time_s, [2.0, 2.0, 2.0])),
        fill_side=np.concatenate((clean.fill_side, [1, -1])),
        fill_depth_bps=np.concatenate((clean.fill_depth_bps, [1.0, np.inf])),
        fill_size_coins=np.concatenate((clean.fill_size_coins, [np.nan, 0.01])),
        fill_price_usd=np.concatenate((clean.fill_price_usd, [1e5, 1e5])),
        fill_markout_usd=np.concatenate((clean.fill_markout_usd, [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])),
        horizons_s=HZ,
    )
    # and one clean fill whose 30 s markout is NaN: its rate and other horizons count, that markout does not
    mk = bad.fill_markout_usd.copy()
    mk[0, 2] = np.nan
    bad = LevelObservations(**{**bad.__dict__, "fill_markout_usd": mk})
    a, b = learner(), learner()
    a.update(clean)
    rep = b.update(bad)
    assert (rep.resting_skipped, rep.fills_skipped, rep.markouts_skipped) == (3, 2, 1)
    assert b.counters["resting_skipped"] == 3 and b.counters["fills_skipped"] == 2
    for k in ("exposure_coin_s", "filled_coins", "fill_count"):
        np.testing.assert_array_equal(a.state[k], b.state[k])
    np.testing.assert_array_equal(a.state["mk_w"][:, :2], b.state["mk_w"][:, :2])
    assert b.state["mk_w"][:, 2].sum() == a.state["mk_w"][:, 2].sum() - 1
    assert all(np.isfinite(v).all() for v in b.state.values())


def test_observation_structure_errors_name_the_field():
    with pytest.raises(InvalidParameterError, match=r"'rest_side\[0\]' must be 'bid' or 'ask'"):
        LevelObservations.build(1.0, [("buy", 1.0, 0.01, 1.0)], horizons_s=HZ)
    with pytest.raises(InvalidParameterError, match=r"'fill_markout_usd' must have shape"):
        LevelObservations.build(1.0, [], [("bid", 1.0, 0.01, 1e5, (1.0, 2.0))], horizons_s=HZ)
    with pytest.raises(InvalidParameterError, match=r"'duration_s' must be in \[0, inf\) s"):
        LevelObservations.build(-1.0, horizons_s=HZ)
    with pytest.raises(InvalidParameterError, match=r"'obs.horizons_s' \[5.0\] s must match"):
        learner().update(LevelObservations.build(1.0, horizons_s=(5.0,)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bucket_edges_bps": (0.0, 5.0, 5.0)}, r"'learner.bucket_edges_bps' must be strictly increasing"),
        ({"bucket_edges_bps": (-1.0, 5.0)}, r"'learner.bucket_edges_bps\[0\]' must be in \[0, inf\) bps"),
        ({"half_life_s": 0.0}, r"'learner.half_life_s' must be in \(0, inf\] s"),
        ({"prior_fills": -1.0}, r"'learner.prior_fills' must be in \(0, inf\) pseudo-fills"),
        ({"value_horizon_s": 2.0}, r"'learner.value_horizon_s' must be one of markout_horizons_s"),
        ({"beta_grid": (0.25, 0.75)}, r"'learner.beta_grid' must lie in \(0, 2\] and hold 0.5 and 1"),
        ({"size_penalty": "cubic"}, r"'learner.size_penalty' must be one of"),
        ({"huber_k": float("nan")}, r"'learner.huber_k' must be in \(0, inf\]"),
    ],
)
def test_bad_config_names_the_field(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        LearnerConfig(**kwargs)


# ---- determinism, sampling and the solver ----------------------------------------------------------------------------
def test_sample_uses_only_the_given_generator():
    lrn = run(learner(), truth(), 50, seed=9)
    np.random.seed(123)  # noqa: NPY002 - the legacy global generator must stay untouched
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    kw = dict(mid_usd=1e5, horizon_s=2.0)
    a = lrn.sample(np.random.default_rng(42), DEPTHS, DEPTHS, **kw)
    b = lrn.sample(np.random.default_rng(42), DEPTHS, DEPTHS, **kw)
    c = lrn.sample(np.random.default_rng(43), DEPTHS, DEPTHS, **kw)
    np.testing.assert_array_equal(a.bid.a, b.bid.a)
    np.testing.assert_array_equal(a.ask.p, b.ask.p)
    assert not np.array_equal(a.bid.a, c.bid.a)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


def test_samples_spread_around_the_mean_and_tighten_with_data():
    kw = dict(mid_usd=1e5, horizon_s=2.0)
    spread = []
    for n in (5, 500):
        lrn = run(learner(half_life_s=math.inf), truth(), n, seed=10)
        rng = np.random.default_rng(11)
        draws = np.array([lrn.sample(rng, DEPTHS[:1], DEPTHS[:1], **kw).markout_bps[0][0] for _ in range(300)])
        mean = lrn.mean(DEPTHS[:1], DEPTHS[:1], **kw).markout_bps[0][0]
        assert abs(draws.mean() - mean) < 3 * draws.std() / np.sqrt(300) + 0.05
        spread.append(draws.std())
    assert spread[1] < 0.3 * spread[0]


def test_curves_feed_the_two_sided_solver():
    lrn = run(learner(), truth(), 200, seed=12)
    for curves in (
        lrn.mean(DEPTHS, DEPTHS, mid_usd=1e5, horizon_s=2.0),
        lrn.sample(np.random.default_rng(0), DEPTHS, DEPTHS, mid_usd=1e5, horizon_s=2.0),
    ):
        sol = allocate_two_sided(curves.bid, curves.ask, budget_bid=0.1, budget_ask=0.1, q=0.05, gamma=1e-3,
                                 sigma2_h=1e4, beta=curves.beta)  # fmt: skip
        assert sol.status == "optimal"
        assert sol.bid.sum() + sol.ask.sum() > 0


# ---- the prior ---------------------------------------------------------------------------------------------
def test_prior_from_a_calibration_file(tmp_path):
    path = tmp_path / "cal.toml"
    path.write_text(
        '[market]\nmaker_fee_bps = 1.0\n\n[ladder.fill]\nkind = "exponential"\nintensity_per_s = 0.8\n'
        'kappa_per_bps = 0.25\n\n[ladder.adverse]\nkind = "table"\ndepth_bps = [0.0, 10.0, 50.0]\n'
        "as_bps = [4.0, 2.0, 0.0]\n",
        encoding="utf-8",
    )
    pr = LearnerPrior.from_calibration(path)
    d = np.array([0.0, 3.0, 10.0, 30.0])
    np.testing.assert_allclose(pr.rate(d), 0.8 * np.exp(-0.25 * d), rtol=1e-9)
    np.testing.assert_allclose(pr.markout(d), d - 1.0 - np.interp(d, [0, 10, 50], [4, 2, 0]), atol=1e-9)
    same = LearnerPrior.from_models(ExponentialIntensity(intensity_per_s=0.8, kappa_per_bps=0.25),
                                    ExponentialAdverse(), maker_fee_bps=1.0, horizon_s=30.0,
                                    sigma_frac_per_sqrt_s=1e-4)  # fmt: skip
    np.testing.assert_allclose(same.rate(d), pr.rate(d), rtol=1e-9)


def test_pool_learners_adds_what_each_path_learned():
    base = run(learner(half_life_s=math.inf), truth(), 20, seed=13)
    paths = []
    for seed in (14, 15):
        lrn = PayoutLearner(base.config, base.prior, {k: v.copy() for k, v in base.state.items()},
                            dict(base.counters), base.clock_s, base.n_updates)  # fmt: skip
        paths.append(run(lrn, truth(), 30, seed=seed))
    pooled = pool_learners(base, paths)
    for k, v in pooled.state.items():
        np.testing.assert_allclose(v, paths[0].state[k] + paths[1].state[k] - base.state[k], rtol=1e-10, atol=1e-12)
    assert pooled.n_updates == 20 + 60
    one = pool_learners(base, paths[:1])
    for k, v in one.state.items():
        np.testing.assert_allclose(v, paths[0].state[k], rtol=1e-12, atol=1e-15)


def test_docstring_examples_run():
    import doctest

    import hyper_make.learn._obs as mod

    assert doctest.testmod(mod).failed == 0
