"""Closing the loop: the estimators return a usable profile and coefficient, and feed back into the snapshot."""

from __future__ import annotations

import numpy as np

from hyper_make.sim.calibrate_loop import estimate, with_calibration
from hyper_make.sim.config import SimConfig, with_overrides
from hyper_make.sim.market import Market
from hyper_make.sim.strategy import run_path, snapshot_from


def test_estimate_and_feed_back():
    cfg = with_overrides(SimConfig(), horizon_s=120.0)
    rs = [run_path(cfg, "impact", s) for s in (1, 2)]
    cal = estimate(rs, cfg)
    v = np.asarray(cal.volume_coins_per_s)
    assert len(cal.depth_bps) >= 2 and np.all(v > 0) and np.all(np.diff(v) <= 0)
    # the touch sees about half of the market-order volume per second (one side)
    total_per_s = cfg.market.daily_volume_coins / 86_400.0
    assert 0.2 * total_per_s < v[0] < 0.8 * total_per_s
    assert cal.impact_coef >= 0 and np.isfinite(cal.impact_coef)
    fed = with_calibration(cfg, cal, coef=2.0)
    assert fed.strategy.ladder.impact.forward_coef == 2.0 == fed.strategy.ladder.impact.roundtrip_coef
    snap = snapshot_from(Market(fed.market, 0), fed)
    assert snap.volume_profile_depth_bps == cal.depth_bps


def test_tape_feeds_the_recorded_data_calibration():
    from hyper_make.calibrate import calibrate
    from hyper_make.sim.calibrate_loop import tape_to_events

    cfg = SimConfig()
    r = run_path(with_overrides(cfg, horizon_s=300.0), "impact", 3, tape_rows=200_000)
    ev = tape_to_events(r.tape, cfg.market.tick_usd)
    assert np.all(np.diff(ev["exch_ts"]) >= 0)
    fit = calibrate(ev)
    # σ over 1 s recovered within 25 % of the market's total σ (diffusion + jumps + informed moves)
    true = cfg.market.total_sigma_bps_per_sqrt_s * 1e-4
    assert abs(fit.sigma_frac[1.0].value / true - 1.0) < 0.25
    assert fit.daily_volume_coins > 0 and fit.fill["bid"].kappa_per_bps.value > 0
