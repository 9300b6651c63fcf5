"""The self-impact model, and the RFC §3 argument in numbers on the embedded default market."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import norm

from hyper_make import (
    InvalidParameterError,
    LadderConfig,
    SquareRootImpact,
    allocate_concave,
    build_curves,
    default_snapshot,
    default_spec,
    side_budget,
)
from hyper_make.economics.impact import impact_per_coin_usd, occupation_shape
from hyper_make.levels import depth_grid_bps, side_prices


@pytest.mark.parametrize("x", [0.0, 0.1, 0.5, 1.0, 2.0, 4.0])
def test_occupation_shape_is_twice_the_expected_time_below(x):
    # oracle: numerical integral of the Brownian occupation probability
    expected = 2 * quad(lambda u: norm.cdf(-x / np.sqrt(u)) if u > 0 else 0.0, 0, 1)[0]
    assert occupation_shape(x) == pytest.approx(expected, rel=1e-9)


def test_occupation_shape_is_decreasing_and_floored():
    x = np.linspace(0, 60, 601)
    s = occupation_shape(x)
    assert s[0] == 1.0 and np.all(np.diff(s) <= 0) and np.all(s >= 1e-12)


def curves_of(snapshot, cfg: LadderConfig, side="bid"):
    spec = default_spec()
    depths = depth_grid_bps(cfg.grid, cfg.grid.min_depth_bps)
    px, dm = side_prices(snapshot, spec, cfg.grid, side, depths, snapshot.mid_usd)
    return build_curves(
        dm, px, snapshot, fill=cfg.fill, adverse=cfg.adverse, horizon_s=cfg.horizon_s, impact=cfg.impact
    )


def test_coefficients_scale_with_c_and_volume():
    snap = default_snapshot()
    d = np.array([2.0, 10.0, 50.0])
    p = np.array([1.0, 0.5, 0.0])
    f1, r1 = SquareRootImpact(forward_coef=1.0, roundtrip_coef=1.0).coefficients(d, p, snap, 30.0)
    f2, r2 = SquareRootImpact(forward_coef=2.0, roundtrip_coef=3.0).coefficients(d, p, snap, 30.0)
    assert f2 == pytest.approx(2 * f1) and r2 == pytest.approx(3 * r1)
    assert r1[2] == 0.0, "round trip is paid only when filled"
    big = dataclasses.replace(snap, daily_volume_coins=4 * snap.daily_volume_coins)
    f4, _ = SquareRootImpact().coefficients(d, p, big, 30.0)
    assert f4 == pytest.approx(f1 / 2), "b ∝ V^-1/2"
    zero_f, zero_r = SquareRootImpact(forward_coef=0.0, roundtrip_coef=0.0).coefficients(d, p, snap, 30.0)
    assert not zero_f.any() and not zero_r.any()


def test_square_root_cost_does_not_depend_on_the_horizon():
    # σ_h·V_h^(-1/2) is horizon-free when volume grows like h and variance too
    snap = default_snapshot()
    d = np.array([5.0, 20.0])
    f30, _ = SquareRootImpact().coefficients(d, np.zeros(2), snap, 30.0)
    f300, _ = SquareRootImpact().coefficients(d, np.zeros(2), snap, 300.0)
    assert f30 == pytest.approx(f300, rel=1e-12)


def test_deep_levels_are_not_absurdly_expensive():
    # the old Gaussian-reach profile put V(200 bps) at 1e-12 of the daily volume: a $1,000 order cost thousands
    snap = default_snapshot()
    d = np.array([2.0, 200.0])
    f, _ = SquareRootImpact().coefficients(d, np.zeros(2), snap, 30.0)
    per_coin = impact_per_coin_usd(f, np.full(2, 1000.0 / snap.mid_usd), 0.5)
    assert per_coin[1] < 2 * per_coin[0]
    assert (per_coin * 1000.0 / snap.mid_usd)[1] < 0.5  # under 50 cents on a $1,000 order, 200 bps deep


def test_volume_profile_from_the_snapshot_is_used():
    snap = dataclasses.replace(
        default_snapshot(), volume_profile_depth_bps=(0.0, 100.0), volume_profile_coins=(10.0, 1.0)
    )
    v = SquareRootImpact().volume_at_depth(np.array([0.0, 50.0, 100.0, 500.0]), snap, snap.sigma_horizon_s)
    assert v == pytest.approx([10.0, np.sqrt(10.0), 1.0, 1.0])


def test_missing_volume_information_is_a_clear_error():
    snap = dataclasses.replace(default_snapshot(), daily_volume_coins=0.0)
    with pytest.raises(InvalidParameterError, match="daily_volume_coins"):
        SquareRootImpact().volume_at_depth(np.array([1.0]), snap, 30.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"forward_coef": -1.0}, "impact.forward_coef"),
        ({"roundtrip_coef": float("nan")}, "impact.roundtrip_coef"),
        ({"beta": 0.0}, "impact.beta"),
        ({"beta": 2.5}, "impact.beta"),
        ({"volume_period_s": 0.0}, "impact.volume_period_s"),
    ],
)
def test_bad_coefficients_name_the_field(kwargs, field):
    with pytest.raises(InvalidParameterError, match=field.replace(".", r"\.")):
        SquareRootImpact(**kwargs)


# ---- RFC §3 on the default market ----------------------------------------------------------------------
def rfc_numbers(impact: SquareRootImpact | None = None):
    snap = default_snapshot()
    cfg = LadderConfig(impact=impact or SquareRootImpact())
    c = curves_of(snap, cfg)
    budget = side_budget(snap, "bid").budget_coins
    opt = allocate_concave(c.a, c.b, budget, beta=c.beta)  # no caps, no entropy floor
    return c, budget, opt


def test_rfc_whole_budget_at_the_touch_or_best_level_is_worse_than_the_optimum():
    c, budget, opt = rfc_numbers()
    at_touch = np.zeros(c.n)
    at_touch[0] = budget
    best = np.zeros(c.n)
    best[int(np.argmax(c.a))] = budget
    assert c.value(at_touch).sum() < 0, "the whole budget at the touch loses money"
    assert c.value(best).sum() < 0, "even the best-edge level loses money with the whole budget"
    assert opt.objective > 0
    assert opt.objective > c.value(best).sum() + 1.0  # USD


def test_rfc_optimum_spreads_over_several_levels_without_an_entropy_floor():
    _, _, opt = rfc_numbers()
    shares = opt.sizes / opt.sizes.sum()
    assert np.count_nonzero(opt.sizes) >= 3
    assert np.exp(-np.sum(shares[shares > 0] * np.log(shares[shares > 0]))) > 2.0
    assert shares.max() < 0.7


def test_rfc_linear_limit_concentrates_on_the_best_level():
    shares_max = []
    for c_scale in [1.0, 0.1, 0.01, 0.0]:
        c, _, opt = rfc_numbers(SquareRootImpact(forward_coef=c_scale, roundtrip_coef=c_scale))
        shares_max.append(opt.sizes.max() / opt.sizes.sum())
    assert shares_max[-1] == 1.0
    assert opt.sizes.argmax() == int(np.argmax(c.a))
    assert all(x <= y + 1e-12 for x, y in itertools.pairwise(shares_max)), shares_max
