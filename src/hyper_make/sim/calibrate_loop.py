"""Closing the loop: estimate the allocator's models from the simulator, feed them back, compare.

Two calibrations: (1) impact only, from our own realised costs (below); (2) full, by recording the simulated
market's trade and BBO tape as hftbacktest events (:func:`tape_to_events`) and fitting it with
:func:`hyper_make.calibrate.calibrate` exactly as a recorded feed (σ, fill intensity, adverse selection by depth,
volume at depth, impact coefficient from market-order markouts).

The simulator has no square-root law inside it (impact emerges from step-ahead, lean and book depletion), so there
is no "true" coefficient to read off. The reference is therefore empirical: the coefficient ``c`` (forward and
round-trip alike) that maximises mean PnL on a grid, on paired seeds, given the calibrated volume profile.

Impact-only estimators (one pass of the impact allocator with its default model):

* volume at depth ``V(δ)`` (coins per second, one side): market-order volume whose deepest fill lies at or beyond
  δ bps from the fair value at the start of the current quote-horizon window, halved for one side, divided by the
  simulated time; depths no order reached are left out (the profile is held flat beyond its deepest point);
* impact coefficient ``ĉ = c_model · (realised impact cost) / (model-predicted impact cost)`` summed over paths,
  where the prediction is ``Σ_refresh Σ_i b_i·s_i^(1+β)·refresh/h`` (USD) for the resting sizes and the realised
  cost is the simulator's impact bucket (taker slippage + inventory PnL on our lean).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..config import AppConfig, apply_overrides
from ..data.events import BUY_EVENT, EXCH_EVENT, LOCAL_EVENT, SELL_EVENT, event_dtype
from ..economics.impact import SquareRootImpact
from ..metrics import paired_ci
from . import market as mk
from .config import SimConfig
from .montecarlo import path_seed, run_tournament
from .strategy import PathResult, run_path

#: the simulated clock starts at this UNIX time (ns) in exported tapes (2026-01-01 00:00 UTC)
TAPE_EPOCH_NS = 1_767_225_600_000_000_000

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


def tape_to_events(tape: np.ndarray, tick_usd: float) -> np.ndarray:
    """The simulator's tape as hftbacktest ``event_dtype`` rows (BBO rows and trades by aggressor side), so the
    recorded-data tools (``hyper_make.calibrate``, readers) take simulated markets unchanged."""
    ev = np.zeros(tape.shape[0], dtype=event_dtype)
    side = np.where(tape[:, mk.TAPE_SIDE] > 0, BUY_EVENT, SELL_EVENT).astype(np.uint64)
    ev["ev"] = tape[:, mk.TAPE_KIND].astype(np.uint64) | side | np.uint64(EXCH_EVENT) | np.uint64(LOCAL_EVENT)
    ts = TAPE_EPOCH_NS + np.round(tape[:, mk.TAPE_T] * 1e9).astype(np.int64)
    ev["exch_ts"] = ts
    ev["local_ts"] = ts
    ev["px"] = tape[:, mk.TAPE_TICK] * tick_usd
    ev["qty"] = tape[:, mk.TAPE_QTY]
    trades = tape[:, mk.TAPE_KIND] == mk.TAPE_TRADE
    ev["order_id"][trades] = np.arange(1, int(trades.sum()) + 1, dtype=np.uint64)
    return ev


def calibrate_from_sim(
    cfg: SimConfig, *, seed: int = 0, horizon_s: float = 3_600.0, allocator: str = "impact"
) -> tuple[SimConfig, dict[str, Any]]:
    """Record one path's tape (``allocator`` quoting), fit it with :func:`hyper_make.calibrate.calibrate` (σ, fill
    intensity, adverse selection by depth, volume at depth, impact coefficient) and return ``cfg`` with the
    fitted ladder models and volume profile, plus the fit summary."""
    from ..calibrate import calibrate

    rec = SimConfig(market=cfg.market, strategy=replace(cfg.strategy, horizon_s=horizon_s))
    r = run_path(rec, allocator, seed, tape_rows=2_000_000)
    assert r.tape is not None
    fit = calibrate(tape_to_events(r.tape, cfg.market.tick_usd))
    raw = tomllib.loads(fit.to_toml(sigma_horizon_s=1.0, adverse_horizon_s=30.0))
    market = raw.pop("market")
    ladder = apply_overrides(AppConfig(ladder=cfg.strategy.ladder), raw).ladder
    strategy = replace(
        cfg.strategy,
        ladder=ladder,
        volume_profile_depth_bps=tuple(market["volume_profile_depth_bps"]),
        volume_profile_coins_per_s=tuple(market["volume_profile_coins"]),
    )
    return SimConfig(market=cfg.market, strategy=strategy), fit.to_dict()


def close_loop(
    cfg: SimConfig,
    *,
    paths: int = 8,
    seed: int = 0,
    coef_grid: tuple[float, ...] = (0.0, 0.25, 1.0, 4.0, 16.0),
    workers: int | None = None,
    record_s: float = 1_800.0,
) -> dict[str, Any]:
    """Calibrate on seed ``seed`` (pass 0), then evaluate the impact allocator on fresh paired seeds ``seed + 1``.

    Variants: the default model; impact-only calibration (measured ``V(δ)`` and the ratio estimate ``ĉ``); full
    calibration by :func:`hyper_make.calibrate.calibrate` on a recorded tape of ``record_s`` seconds (σ, fill
    intensity, adverse selection by depth, ``V(δ)``, ``c`` from market-order markouts); and the fully calibrated
    models with each ``c`` in ``coef_grid`` (the empirical reference). Returns a JSON-ready dict.
    """
    first = run_tournament(cfg, allocators=["impact"], paths=paths, seed=seed, workers=workers)
    cal = estimate(list(first.results["impact"].values()), cfg)
    full, fit = calibrate_from_sim(cfg, seed=seed, horizon_s=record_s)
    variants: dict[str, SimConfig] = {
        "default model": cfg,
        "impact-only calibration": with_calibration(cfg, cal),
        "full calibration": full,
    }
    for c in coef_grid:
        imp = full.strategy.ladder.impact
        ladder = replace(full.strategy.ladder, impact=replace(imp, forward_coef=c, roundtrip_coef=c))
        variants[f"full, c={c:g}"] = SimConfig(market=cfg.market, strategy=replace(full.strategy, ladder=ladder))
    pnl: dict[str, np.ndarray] = {}
    for name, vc in variants.items():
        t = run_tournament(vc, allocators=["impact"], paths=paths, seed=seed + 1, workers=workers)
        rs = t.results["impact"]
        pnl[name] = np.array([rs[i].pnl_usd for i in sorted(rs)])
    best = max((k for k in pnl if k.startswith("full, c=")), key=lambda k: pnl[k].mean())
    return {
        "impact_only": {
            "depth_bps": list(cal.depth_bps),
            "volume_coins_per_s": list(cal.volume_coins_per_s),
            "impact_coef": cal.impact_coef,
            "realised_impact_usd": cal.realised_impact_usd,
            "predicted_impact_usd": cal.predicted_impact_usd,
            "model_impact_coef": cfg.strategy.ladder.impact.forward_coef,
        },
        "full": {
            "sigma_frac_1s": fit["sigma_frac"]["1s"],
            "fill": fit["fill"],
            "impact_coef": fit["impact_coef"],
            "true_total_sigma_frac_1s": cfg.market.total_sigma_bps_per_sqrt_s * 1e-4,
        },
        "eval_seed": seed + 1,
        "paths": paths,
        "mean_pnl": {k: float(v.mean()) for k, v in pnl.items()},
        "best_grid": best,
        "full_minus_default": paired_ci(pnl["full calibration"], pnl["default model"]),
        "impact_only_minus_default": paired_ci(pnl["impact-only calibration"], pnl["default model"]),
        "full_minus_best_grid": paired_ci(pnl["full calibration"], pnl[best]),
        "seeds": [path_seed(seed + 1, i) for i in range(paths)],
    }
