"""Calibration: positive finite estimates on the real recording, a known-answer intensity fit, a TOML the
ladder accepts, and clear errors when the data cannot support a fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hyper_make.calibrate import calibrate, fit_intensity
from hyper_make.config import load_config
from hyper_make.data import event_dtype
from hyper_make.errors import DataError, InvalidParameterError
from hyper_make.ladder import build_ladder


@pytest.fixture(scope="module")
def result(futures):
    return calibrate(futures[0])


def test_sigma_intensity_and_impact_are_finite_and_positive(result):
    for h, e in result.sigma_frac.items():
        assert math.isfinite(e.value) and e.value > 0 and 0 < e.stderr < e.value, h
    # σ grows with the horizon (roughly as √h)
    s = [result.sigma_frac[h].value for h in sorted(result.sigma_frac)]
    assert all(np.diff(s) > 0)
    for side, f in result.fill.items():
        assert f.intensity_per_s.value > 0 and f.kappa_per_bps.value > 0, side
        assert math.isfinite(f.intensity_per_s.stderr) and math.isfinite(f.kappa_per_bps.stderr)
        assert 0.0 <= f.r2 <= 1.0
        lo, hi = f.depth_range_bps
        assert 0.0 <= lo < hi
    # the ask side of this recording is a clean exponential (R² 0.99 when measured); state it
    assert result.fill["ask"].r2 > 0.95
    assert math.isfinite(result.impact_coef.value) and result.impact_coef.stderr > 0
    assert np.all(np.diff(result.volume_coins) <= 0) and np.all(result.volume_coins > 0)
    assert result.daily_volume_coins > 0


def test_intensity_fit_recovers_a_known_exponential():
    rng = np.random.default_rng(1)
    k_true, n, duration = 0.5, 20_000, 1_000.0
    depth = rng.exponential(1.0 / k_true, n)
    fit = fit_intensity(depth, duration, np.arange(0.0, 8.0, 0.25))
    assert fit.kappa_per_bps.value == pytest.approx(k_true, rel=0.05)
    assert fit.intensity_per_s.value == pytest.approx(n / duration, rel=0.1)
    assert fit.r2 > 0.98


def test_toml_is_accepted_by_the_ladder(result, tmp_path):
    path = result.write_toml(tmp_path / "cal.toml")
    cfg = load_config(path)
    assert cfg.snapshot.sigma_frac == pytest.approx(result.sigma_frac[1.0].value)
    assert cfg.ladder.fill.kappa_per_bps > 0 and cfg.ladder.adverse.kind == "table"
    for name in ("entropy", "impact"):
        ladder = build_ladder(cfg.snapshot, cfg.spec, cfg.make_allocator(name), config=cfg.ladder)
        assert ladder.bids and ladder.asks


def test_a_short_recording_gives_a_partial_calibration_that_says_so(hyperliquid, tmp_path):
    # 25 s of Hyperliquid, 9 trade messages: σ and the volume, but no intensity fit and no 30 s markout
    r = calibrate(hyperliquid[0])
    assert set(r.sigma_frac) >= {0.1, 1.0} and all(e.value > 0 for e in r.sigma_frac.values())
    assert r.daily_volume_coins > 0 and r.volume_coins.size > 0
    assert r.fill == {} and "too few arrivals" in r.not_fitted["ladder.fill"]
    missing = r.missing(30.0)
    assert set(missing) == {"ladder.fill", "ladder.adverse", "ladder.impact"} and r.is_partial()
    assert "no market order has a full 30 s markout in the 25 s read" in missing["ladder.adverse"]
    # a 5 s table fits: orders at least 5 s before the end have a full markout
    assert "ladder.adverse" not in r.missing(5.0)
    path = r.write_toml(tmp_path / "cal.toml")
    text = path.read_text()
    assert text.splitlines()[1].startswith("# PARTIAL calibration: ladder.fill not fitted (")
    cfg = load_config(path)
    assert cfg.meta.partial and cfg.meta.stopped_at == "" and len(cfg.meta.not_fitted) == 3
    assert cfg.snapshot.sigma_frac == pytest.approx(r.sigma_frac[1.0].value)
    assert "[ladder.fill]" not in text and cfg.ladder.fill == load_config(None).ladder.fill  # the default stays


def test_a_complete_calibration_says_it_is_complete(result, tmp_path):
    assert not result.is_partial() and result.missing() == {} and result.stopped_at is None
    cfg = load_config(result.write_toml(tmp_path / "cal.toml"))
    assert cfg.meta.partial is False and cfg.meta.generated_by == "hyper-make calibrate"


def test_markouts_use_only_orders_with_a_full_horizon(result):
    # a markout clipped at the end of the file would measure a shorter horizon: later horizons have fewer orders
    n = [int(result.adverse_count[h].sum()) for h in sorted(result.adverse_count)]
    assert n == sorted(n, reverse=True) and n[-1] < n[0]


def test_nothing_to_fit_is_a_clear_error():
    with pytest.raises(DataError, match="no event could be read"):
        calibrate(np.zeros(0, dtype=event_dtype))


def test_bad_parameters(futures, result):
    with pytest.raises(InvalidParameterError, match="reference_lag_s"):
        calibrate(futures[0], reference_lag_s=-1.0)
    with pytest.raises(InvalidParameterError, match="adverse_horizon_s"):
        result.to_toml(adverse_horizon_s=7.0)
