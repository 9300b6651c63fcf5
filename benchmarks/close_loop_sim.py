"""Closing the loop on the simulator: calibrate the impact allocator's models from the simulator (impact only, and
fully with ``hyper_make.calibrate`` on a recorded tape), then compare with the default model and a grid of impact
coefficients on fresh paired seeds.

Run: ``python benchmarks/close_loop_sim.py [--impact-mult 1] [--maker-fee-bps 1.5] [--paths 8] [--horizon 600]``;
``--impact-mult`` scales the market's forward-impact mechanics (step-ahead fraction and lean rate) against the
default preset; ``--maker-fee-bps`` overrides the market's maker fee.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
from dataclasses import replace

from hyper_make.sim.calibrate_loop import calibrate_from_sim, close_loop
from hyper_make.sim.config import SimConfig, get_preset
from hyper_make.sim.montecarlo import run_tournament


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--impact-mult", type=float, default=1.0)
    ap.add_argument("--maker-fee-bps", type=float, default=None)
    ap.add_argument("--paths", type=int, default=8)
    ap.add_argument("--horizon", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tournament", action="store_true", help="also run every allocator with the fitted models")
    args = ap.parse_args()
    base = get_preset("default")
    m = base.market
    market = replace(
        m, step_ahead_frac=m.step_ahead_frac * args.impact_mult, lean_bps_per_s=m.lean_bps_per_s * args.impact_mult
    )
    if args.maker_fee_bps is not None:
        market = replace(market, maker_fee_bps=args.maker_fee_bps)
    cfg = SimConfig(market=market, strategy=replace(base.strategy, horizon_s=args.horizon))
    print(f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}; machine: {platform.machine()}, {os.cpu_count()} CPUs")
    out = close_loop(cfg, paths=args.paths, seed=args.seed)
    out.pop("seeds")
    io, full = out["impact_only"], out["full"]
    print(f"impact x{args.impact_mult:g}: impact-only ĉ = {io['impact_coef']:.3f} (model default "
          f"{io['model_impact_coef']:g}), V(δ) measured to {io['depth_bps'][-1]:g} bps")  # fmt: skip
    fb, fa = full["fill"]["bid"], full["fill"]["ask"]
    print(f"  hyper_make.calibrate: σ(1 s) = {full['sigma_frac_1s']['value'] * 1e4:.3f} bps "
          f"(true {full['true_total_sigma_frac_1s'] * 1e4:.3f}); A = {fb['A_per_s']['value']:.2f}/"
          f"{fa['A_per_s']['value']:.2f} /s, k = {fb['k_per_bps']['value']:.2f}/{fa['k_per_bps']['value']:.2f} "
          f"/bp (bid/ask); c = {full['impact_coef']['value']:.3f} ± {full['impact_coef']['stderr']:.3f}")  # fmt: skip
    for k, v in out["mean_pnl"].items():
        print(f"  {k:>24}: mean PnL {v:9.2f} USD/path")
    print(f"  best grid point: {out['best_grid']}")
    for key in ("full_minus_default", "impact_only_minus_default", "full_minus_best_grid"):
        ci = out[key]
        print(f"  {key}: {ci['mean_diff']:.1f} [{ci['lo']:.1f}, {ci['hi']:.1f}] USD (p = {ci['p_value']:.3f})")
    print(json.dumps(out, default=float))
    if args.tournament:
        full, _ = calibrate_from_sim(cfg, seed=args.seed, horizon_s=1_800.0)  # as close_loop records
        names = ["impact", "entropy", "greedy", "flat", "progression"]
        for label, c in (("default models", cfg), ("fitted models", full)):
            m = run_tournament(c, allocators=names, paths=args.paths, seed=args.seed + 1).metrics()
            cells = ", ".join(f"{n} {m[n]['mean_pnl']:.1f} ± {(m[n]['ci_hi'] - m[n]['ci_lo']) / 2:.1f}" for n in names)
            print(f"  tournament, {label}: {cells}")


if __name__ == "__main__":
    main()
