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
