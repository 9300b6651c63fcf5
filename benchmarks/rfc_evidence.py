"""The RFC §3 argument in numbers, on the embedded default market (BTC perp, bid side), and the c -> 0 limit.

Run: ``python benchmarks/rfc_evidence.py [--json out.json]`` (a second).

1. The per-level payout curves ``E[PnL]_i(s) = a_i·s - b_i·s^1.5`` of the default ladder (10 levels, 2-200 bps).
2. The side's whole budget at the touch, and at the best-edge level (the greedy "concentration collapse"),
   against the exact optimum with **no entropy floor and no per-level cap**: does the optimum spread by itself?
3. The same through the full ladder (lots, minimum order) with the default 25 % cap and with it lifted, for every
   registered allocator (``hyper-make compare`` prints the same table).
4. ``c -> 0``: both impact coefficients scaled down; the optimum concentrates on the best levels (linear limit).
5. The stealth stages' expected-PnL cost and how much they move the shares, over 200 seeds.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from _machine import machine, print_machine, write_json
from hyper_make import (
    LadderConfig,
    SquareRootImpact,
    StealthConfig,
    allocate_concave,
    build_ladder,
    default_snapshot,
    default_spec,
    make_allocator,
    side_budget,
)
from hyper_make.allocate import entropy_nats
from hyper_make.compare import compare_allocators
from hyper_make.economics import build_curves
from hyper_make.levels import depth_grid_bps, side_prices


def curves(cfg: LadderConfig):
    snap, spec = default_snapshot(), default_spec()
    depths = depth_grid_bps(cfg.grid, cfg.grid.min_depth_bps)
    px, dm = side_prices(snap, spec, cfg.grid, "bid", depths, snap.mid_usd)
    return build_curves(dm, px, snap, fill=cfg.fill, adverse=cfg.adverse, horizon_s=cfg.horizon_s, impact=cfg.impact)


def eff_levels(s: np.ndarray) -> float:
    return float(np.exp(entropy_nats(s))) if s.sum() > 0 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the results to this JSON file")
    args = ap.parse_args()
    info = machine()
    print_machine(info)
    snap = default_snapshot()
    cfg = LadderConfig()
    c = curves(cfg)
    budget = side_budget(snap, "bid").budget_coins
    imp = cfg.impact
    print(
        f"\ndefault market: BTC mid {snap.mid_usd:,.1f} USD, σ {snap.sigma_frac * 1e4:.2f} bps per √s, daily volume "
        f"{snap.daily_volume_coins:,.0f} BTC, horizon {cfg.horizon_s:g} s; bid budget {budget:g} BTC; impact "
        f"c_fwd {imp.forward_coef:g}, c_rt {imp.roundtrip_coef:g}, β {imp.beta:g}"
    )
    print(f"\n{'level':>5} {'depth bps':>9} {'P(fill)':>8} {'a USD/BTC':>10} {'b USD/BTC^1.5':>13}")
    for i in range(c.n):
        print(f"{i:>5} {c.depth_bps[i]:>9.2f} {c.fill_prob[i]:>8.4f} {c.a[i]:>10.3f} {c.b[i]:>13.3f}")

    opt = allocate_concave(c.a, c.b, budget, beta=c.beta)
    touch = np.zeros(c.n)
    touch[0] = budget
    best = np.zeros(c.n)
    best[int(np.argmax(c.a))] = budget
    rows = {
        "whole budget at the touch (level 0)": touch,
        f"whole budget at the best-edge level ({int(np.argmax(c.a))})": best,
        "exact optimum (no entropy floor, no cap)": opt.sizes,
    }
    print(
        f"\n{'allocation (continuous, bid side)':<48} {'E[PnL] USD':>10} {'used BTC':>9} {'eff.levels':>10}  sizes BTC"
    )
    evidence = []
    for label, s in rows.items():
        pnl = float(c.value(s).sum())
        print(f"{label:<48} {pnl:>10.3f} {s.sum():>9.4f} {eff_levels(s):>10.2f}  {np.round(s, 4).tolist()}")
        evidence.append({"allocation": label, "expected_pnl_usd": pnl, "size_btc": float(s.sum()),
                         "effective_levels": eff_levels(s), "sizes_btc": s.tolist()})  # fmt: skip
    split = c.split(opt.sizes)
    big = int(np.count_nonzero(opt.sizes >= 0.01 * opt.sizes.sum()))
    print(
        f"optimum: λ = {opt.shadow_price:.4g} USD/BTC ({opt.binding}: budget left unspent), {big} levels with >= 1 % "
        f"of the size; split: "
        + ", ".join(f"{k.removesuffix('_usd').replace('_', ' ')} {v:.3f}" for k, v in split.items())
        + " USD"
    )

    print("\nfull ladder (lots, $10 minimum order), bid side, per allocator:")
    ladder_rows = []
    for cap in (0.25, 1.0):
        res = compare_allocators(snap, default_spec(), LadderConfig(level_cap_frac=cap), repeats=1)
        print(f"  level cap {cap:g} of the budget:")
        for r in res:
            if r.side != "bid":
                continue
            used = 100 * r.budget_used_frac
            print(
                f"    {r.allocator:<17} E[PnL] {r.expected_pnl_usd:>8.3f} USD  used {used:>5.1f} %  "
                f"eff.levels {r.effective_levels:>5.2f}  largest {100 * r.largest_share:>5.1f} %"
            )
            ladder_rows.append({"level_cap_frac": cap, **r.to_dict()})

    print("\nc -> 0 (both impact coefficients times the scale), continuous optimum, no cap:")
    print(f"{'scale':>8} {'E[PnL] USD':>10} {'used BTC':>9} {'>=1 %':>6} {'eff.levels':>10} {'largest':>8}")
    limit = []
    for scale in (1.0, 0.3, 0.1, 0.03, 0.01, 0.001, 0.0):
        scaled = SquareRootImpact(forward_coef=imp.forward_coef * scale, roundtrip_coef=imp.roundtrip_coef * scale)
        ci = curves(LadderConfig(impact=scaled))
        o = allocate_concave(ci.a, ci.b, budget, beta=ci.beta)
        s = o.sizes
        share = float(s.max() / s.sum())
        big = int(np.count_nonzero(s >= 0.01 * s.sum()))
        print(f"{scale:>8g} {o.objective:>10.3f} {s.sum():>9.4f} {big:>6} {eff_levels(s):>10.2f} {100 * share:>7.1f}%")
        limit.append({"scale": scale, "expected_pnl_usd": o.objective, "size_btc": float(s.sum()),
                      "levels_over_1pct": big, "effective_levels": eff_levels(s),
                      "largest_share": share})  # fmt: skip
    print("\nstealth on the full ladder (cap lifted), bid side, mean over 200 seeds (cost = optimum - randomised):")
    stealth_rows = []
    base_cfg = LadderConfig(level_cap_frac=1.0)
    opt_pnl = build_ladder(snap, default_spec(), make_allocator("impact"), config=base_cfg).bid.expected_pnl_usd
    for sc in (StealthConfig(mode="dirichlet"), StealthConfig(mode="posterior")):
        cfg_s = dataclasses.replace(base_cfg, stealth=sc)
        lads = [build_ladder(snap, default_spec(), make_allocator("impact"), config=cfg_s, rng=i) for i in range(200)]
        costs = np.array([opt_pnl - lad.bid.expected_pnl_usd for lad in lads])
        shares = np.array([lad.bid.projection.sizes / lad.bid.size_used_coins for lad in lads])
        sd = float(shares.std(axis=0).max())
        print(
            f"  {sc.mode:<10} mean cost {costs.mean():.3f} USD ({100 * costs.mean() / opt_pnl:.1f} % of "
            f"{opt_pnl:.3f}), 90th pct {np.quantile(costs, 0.9):.3f} USD; largest per-level share sd {100 * sd:.1f} pts"
        )
        stealth_rows.append({"mode": sc.mode, "mean_cost_usd": float(costs.mean()), "optimum_usd": opt_pnl,
                             "p90_cost_usd": float(np.quantile(costs, 0.9)), "max_share_sd": sd})  # fmt: skip
    write_json(
        args.json,
        {
            "machine": info,
            "curves": {
                "depth_bps": c.depth_bps.tolist(),
                "fill_prob": c.fill_prob.tolist(),
                "a": c.a.tolist(),
                "b": c.b.tolist(),
            },
            "budget_btc": budget,
            "allocations": evidence,
            "optimum": {"shadow_price": opt.shadow_price, "binding": opt.binding, "split_usd": split},
            "ladder": ladder_rows,
            "linear_limit": limit,
            "stealth": stealth_rows,
        },
    )


if __name__ == "__main__":
    main()
