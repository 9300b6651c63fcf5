"""Closing the loop: estimate the impact allocator's volume at depth and impact coefficient from the simulator's
own flow and our realised costs, feed them back, and compare with the best coefficient found by search.

The simulator has no square-root law inside it (impact emerges from step-ahead, lean and book depletion), so there
is no "true" coefficient to read off. The reference is therefore empirical: the coefficient ``c`` (forward and
round-trip alike) that maximises mean PnL on a grid, on paired seeds, given the calibrated volume profile.

Estimators (one pass of the impact allocator with its default model):

* volume at depth ``V(δ)`` (coins per second, one side): market-order volume whose deepest fill lies at or beyond
  δ bps from the fair value at the start of the current quote-horizon window, halved for one side, divided by the
  simulated time; depths no order reached are left out (the profile is held flat beyond its deepest point);
* impact coefficient ``ĉ = c_model · (realised impact cost) / (model-predicted impact cost)`` summed over paths,
  where the prediction is ``Σ_refresh Σ_i b_i·s_i^(1+β)·refresh/h`` (USD) for the resting sizes and the realised
  cost is the simulator's impact bucket (taker slippage + inventory PnL on our lean).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..economics.impact import SquareRootImpact
from ..metrics import paired_ci
from .config import SimConfig
from .montecarlo import path_seed, run_tournament
from .strategy import PathResult

#: depths (bps) at which the calibrated profile is reported
PROFILE_DEPTHS_BPS: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 50.0, 80.0, 120.0, 200.0)


@dataclass(frozen=True, slots=True)
class Calibration:
    """Estimated impact-model inputs: ``V(δ)`` per side (coins per second at ``depth_bps``) and ``c``."""

    depth_bps: tuple[float, ...]
    volume_coins_per_s: tuple[float, ...]
    impact_coef: float
    realised_impact_usd: float
    predicted_impact_usd: float


def estimate(results: list[PathResult], cfg: SimConfig) -> Calibration:
    """Estimate ``V(δ)`` and ``c`` from finished paths of the impact allocator (see the module docstring)."""
    hist = np.sum([r.vol_hist for r in results if r.vol_hist is not None], axis=0)
    seconds = cfg.strategy.horizon_s * len(results)
    tail = np.cumsum(hist[::-1])[::-1] / 2.0 / seconds  # one side, per second, at or beyond bin k bps
    v = np.array([tail[min(int(d), tail.size - 1)] for d in PROFILE_DEPTHS_BPS])
    # keep the depths the flow reached; the profile is held flat beyond its last point (no extrapolated tail)
    keep = v > 0
    depths = tuple(d for d, k in zip(PROFILE_DEPTHS_BPS, keep, strict=True) if k)
    vols = tuple(float(x) for x in v[keep])
    realised = float(sum(r.decomposition["impact_usd"] for r in results))
    predicted = float(sum(r.stats.get("model_impact_usd", 0.0) for r in results))
    c_model = cfg.strategy.ladder.impact.forward_coef
    c_hat = c_model * realised / predicted if predicted < 0 else float("nan")
    return Calibration(depths, vols, max(c_hat, 0.0), realised, predicted)


def with_calibration(cfg: SimConfig, cal: Calibration | None, coef: float | None = None) -> SimConfig:
    """``cfg`` whose ladder uses the calibrated volume profile and impact coefficient (or ``coef``)."""
    s = cfg.strategy
    imp = s.ladder.impact
    c = coef if coef is not None else (cal.impact_coef if cal else imp.forward_coef)
    ladder = replace(s.ladder, impact=SquareRootImpact(forward_coef=c, roundtrip_coef=c, beta=imp.beta))
    prof: dict[str, Any] = {}
    if cal is not None and len(cal.depth_bps) >= 2:
        prof = {"volume_profile_depth_bps": cal.depth_bps, "volume_profile_coins_per_s": cal.volume_coins_per_s}
    return SimConfig(market=cfg.market, strategy=replace(s, ladder=ladder, **prof))


def close_loop(
    cfg: SimConfig,
    *,
    paths: int = 8,
    seed: int = 0,
    coef_grid: tuple[float, ...] = (0.0, 0.25, 1.0, 4.0, 16.0),
    workers: int | None = None,
) -> dict[str, Any]:
    """Calibrate on seeds ``seed`` (pass 0), then evaluate on fresh seeds ``seed + 1``: the default model, the
    calibrated one, and the calibrated profile with each ``c`` in ``coef_grid``. Returns a JSON-ready dict."""
    first = run_tournament(cfg, allocators=["impact"], paths=paths, seed=seed, workers=workers)
    cal = estimate(list(first.results["impact"].values()), cfg)
    variants: dict[str, SimConfig] = {"default model": cfg, "calibrated": with_calibration(cfg, cal)}
    for c in coef_grid:
        variants[f"profile + c={c:g}"] = with_calibration(cfg, cal, c)
    pnl: dict[str, np.ndarray] = {}
    for name, vc in variants.items():
        t = run_tournament(vc, allocators=["impact"], paths=paths, seed=seed + 1, workers=workers)
        rs = t.results["impact"]
        pnl[name] = np.array([rs[i].pnl_usd for i in sorted(rs)])
    best = max((k for k in pnl if k.startswith("profile + c=")), key=lambda k: pnl[k].mean())
    out = {
        "calibration": {
            "depth_bps": list(cal.depth_bps),
            "volume_coins_per_s": list(cal.volume_coins_per_s),
            "impact_coef": cal.impact_coef,
            "realised_impact_usd": cal.realised_impact_usd,
            "predicted_impact_usd": cal.predicted_impact_usd,
            "model_impact_coef": cfg.strategy.ladder.impact.forward_coef,
        },
        "eval_seed": seed + 1,
        "paths": paths,
        "mean_pnl": {k: float(v.mean()) for k, v in pnl.items()},
        "best_grid": best,
        "calibrated_minus_default": paired_ci(pnl["calibrated"], pnl["default model"]),
        "calibrated_minus_best_grid": paired_ci(pnl["calibrated"], pnl[best]),
        "seeds": [path_seed(seed + 1, i) for i in range(paths)],
    }
    return out
