"""Sensitivity sweep of the allocator tournament: impact strength, informed fraction, maker fee, budget (one at a
time).

Run: ``python benchmarks/sweep_sim.py [--paths 8] [--horizon 600] [--out sweep.json]``. For each setting it runs
the tournament on the same paired seeds and prints mean PnL ± 95 % CI half-width (USD per path), the mean impact
cost and the ranking. "impact strength" multiplies both forward-impact mechanics of the market (step-ahead
fraction and lean rate) relative to the default preset.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from dataclasses import replace

from hyper_make.sim.config import SimConfig, get_preset
from hyper_make.sim.montecarlo import run_tournament

ALLOCATORS = ["impact", "entropy", "greedy", "flat", "progression"]


def settings(base: SimConfig) -> list[tuple[str, SimConfig]]:
    m, s = base.market, base.strategy
    out: list[tuple[str, SimConfig]] = [("default", base)]
    for k in (0.0, 4.0, 16.0):
        mk = replace(m, step_ahead_frac=m.step_ahead_frac * k, lean_bps_per_s=m.lean_bps_per_s * k)
        out.append((f"impact x{k:g}", SimConfig(market=mk, strategy=s)))
    for f in (0.0, 0.5):
        out.append((f"informed {f:g}", SimConfig(market=replace(m, informed_frac=f), strategy=s)))
    out.append(("maker fee 0 bps", SimConfig(market=replace(m, maker_fee_bps=0.0), strategy=s)))
    for q in (0.1, 2.0):
        out.append((f"budget {q:g} BTC", SimConfig(market=m, strategy=replace(s, max_position_coins=q))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--paths", type=int, default=8)
    ap.add_argument("--horizon", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    base = get_preset("default")
    base = SimConfig(market=base.market, strategy=replace(base.strategy, horizon_s=args.horizon))
    print(f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}; machine: {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"paths {args.paths}, horizon {args.horizon:g} s, seed {args.seed}; cells: mean PnL ± CI half-width (USD)")
    print("| setting | " + " | ".join(ALLOCATORS) + " | ranking |")
    print("|---" * (len(ALLOCATORS) + 2) + "|")
    rows = {}
    for name, cfg in settings(base):
        t0 = time.perf_counter()
        m = run_tournament(cfg, allocators=ALLOCATORS, paths=args.paths, seed=args.seed).metrics()
        rows[name] = m
        cells = [f"{m[a]['mean_pnl']:.1f} ± {(m[a]['ci_hi'] - m[a]['ci_lo']) / 2:.1f}" for a in ALLOCATORS]
        rank = " > ".join(sorted(ALLOCATORS, key=lambda a: -m[a]["mean_pnl"]))
        print(f"| {name} | " + " | ".join(cells) + f" | {rank} |  <!-- {time.perf_counter() - t0:.0f} s -->")
        print("|   impact cost, eff. levels | " + " | ".join(
            f"{m[a]['impact']:.1f}, {m[a]['mean_effective_levels']:.1f}" for a in ALLOCATORS) + " | |")  # fmt: skip
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
