"""Evidence for issue 13: the `learned` allocator against entropy, impact (default and calibrated), flat and
progression, on the default simulator preset and one-at-a-time variations, ≥ 32 paired paths each.

Run: ``python benchmarks/learned_evidence.py [--preset default] [--paths 32] [--train-paths 8] [--train-rounds 2]
[--horizon 600] [--settings default,fee0,...] [--json out.json]``.

Per setting:

1. **Training** (learning carried across consecutive paths of one market): ``--train-rounds`` rounds of
   ``--train-paths`` paths on training seeds (disjoint from the evaluation seeds); every path of a round starts
   from the posterior the previous round pooled (:func:`hyper_make.sim.montecarlo.pooled_learner`), as
   ``hyper-make simulate --learner-state FILE`` run several times does.
2. **Calibration** of the impact allocator's models from one recorded path of the same market
   (:func:`hyper_make.sim.calibrate_loop.calibrate_from_sim`): ``impact-cal``.
3. **Evaluation** on ``--paths`` paired seeds: every allocator on the same market paths, ``learned`` starting
   from the trained posterior (each path its own copy: paths stay independent), ``learned-fresh`` from the
   prior, plus ``impact-cal``. Reported: mean PnL and 95 % CI per allocator, and ``learned`` minus each other with
   its paired 95 % CI; the verdict "not significantly worse than the best other" and "significantly better than
   entropy"; the exploration cost (the mean ``sampling_cost_usd`` per refresh is in the simulator's per-build
   diagnostics; here the paired difference to ``learned-mean``, the posterior mean without sampling, from the
   same trained start).

Settings (the default preset is maker fee 1.5 bps, reaction to size x1, informed share 0.2): ``default``,
``fee0`` (maker fee 0), ``impact0`` / ``impact4`` (the market's reaction to our size, its step-ahead fraction and
lean rate, x0 / x4), ``informed0`` / ``informed05`` (informed share 0 / 0.5).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np

from hyper_make import make_allocator
from hyper_make.metrics import paired_ci
from hyper_make.sim.calibrate_loop import calibrate_from_sim
from hyper_make.sim.config import SimConfig, get_preset
from hyper_make.sim.montecarlo import pooled_learner, run_tournament
from hyper_make.sim.strategy import initial_learner

OTHERS = ["entropy", "impact", "flat", "progression"]


def settings(base: SimConfig) -> dict[str, SimConfig]:
    m, s = base.market, base.strategy

    def mk(**kw: Any) -> SimConfig:
        return SimConfig(market=replace(m, **kw), strategy=s)

    return {
        "default": base,
        "fee0": mk(maker_fee_bps=0.0),
        "impact0": mk(step_ahead_frac=0.0, lean_bps_per_s=0.0),
        "impact4": mk(step_ahead_frac=m.step_ahead_frac * 4, lean_bps_per_s=m.lean_bps_per_s * 4),
        "informed0": mk(informed_frac=0.0),
        "informed05": mk(informed_frac=0.5),
    }


def train(cfg: SimConfig, *, paths: int, rounds: int, seed: int, workers: int | None) -> Any:
    """The posterior after ``rounds`` rounds of ``paths`` training paths, each round from the last one's pool."""
    post = initial_learner(cfg, make_allocator("learned"))
    for r in range(rounds):
        tour = run_tournament(cfg, allocators=["learned"], paths=paths, seed=seed + 1000 + r, workers=workers,
                              learner=post)  # fmt: skip
        post = pooled_learner(tour, "learned", post)
    return post


def pnl(tour: Any, name: str) -> np.ndarray:
    return np.array([r.pnl_usd for _, r in sorted(tour.results[name].items())])


def one_setting(name: str, cfg: SimConfig, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    post = train(cfg, paths=args.train_paths, rounds=args.train_rounds, seed=args.seed, workers=args.workers)
    t_train = time.perf_counter() - t0
    cal_cfg, _ = calibrate_from_sim(cfg, seed=args.seed + 7, horizon_s=args.horizon)
    runs: dict[str, np.ndarray] = {}
    tour = run_tournament(cfg, allocators=OTHERS, paths=args.paths, seed=args.seed, workers=args.workers)
    runs |= {a: pnl(tour, a) for a in OTHERS}
    tour = run_tournament(cfg, allocators=["learned"], paths=args.paths, seed=args.seed, workers=args.workers,
                          learner=post)  # fmt: skip
    runs["learned"] = pnl(tour, "learned")
    fills = float(np.mean([r.fills for r in tour.results["learned"].values()]))
    mean_opts = {"learned": {"sampling": "mean"}}
    tour = run_tournament(cfg, allocators=["learned"], paths=args.paths, seed=args.seed, workers=args.workers,
                          learner=post, allocator_options=mean_opts)  # fmt: skip
    runs["learned-mean"] = pnl(tour, "learned")
    tour = run_tournament(cfg, allocators=["learned"], paths=args.paths, seed=args.seed, workers=args.workers)
    runs["learned-fresh"] = pnl(tour, "learned")
    tour = run_tournament(cal_cfg, allocators=["impact"], paths=args.paths, seed=args.seed, workers=args.workers)
    runs["impact-cal"] = pnl(tour, "impact")
    rivals = [*OTHERS, "impact-cal"]
    out: dict[str, Any] = {"mean_pnl": {}, "ci": {}, "diff": {}, "learned_fills": fills}
    for a, v in runs.items():
        half = 1.96 * v.std(ddof=1) / np.sqrt(v.size)
        out["mean_pnl"][a] = float(v.mean())
        out["ci"][a] = [float(v.mean() - half), float(v.mean() + half)]
    for a in [*rivals, "learned-mean", "learned-fresh"]:
        ci = paired_ci(runs["learned"], runs[a])
        out["diff"][a] = [ci["mean_diff"], ci["lo"], ci["hi"]]
    best = max(rivals, key=lambda a: out["mean_pnl"][a])
    out["best_other"] = best
    out["not_worse_than_best"] = bool(out["diff"][best][2] >= 0.0)
    out["better_than_entropy"] = bool(out["diff"]["entropy"][1] > 0.0)
    out["posterior_fills"] = float(post.state["fill_count"].sum())
    out["size_fit"] = post.size_fit().to_dict()
    out["seconds"] = time.perf_counter() - t0
    out["train_seconds"] = t_train
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=32)
    ap.add_argument("--train-paths", type=int, default=8)
    ap.add_argument("--train-rounds", type=int, default=2)
    ap.add_argument("--horizon", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--settings", default=None, help="comma-separated subset of the settings")
    ap.add_argument("--preset", default="default", help="the simulator preset the settings vary (default: default)")
    ap.add_argument("--json", default=None, help="write every number to this file")
    args = ap.parse_args()
    base = get_preset(args.preset)
    base = SimConfig(market=base.market, strategy=replace(base.strategy, horizon_s=args.horizon))
    all_settings = settings(base)
    chosen = args.settings.split(",") if args.settings else list(all_settings)
    when = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}"
    print(f"date: {when}; machine: {platform.machine()}, {os.cpu_count()} CPUs; preset {args.preset}; "
          f"paths {args.paths}, horizon "
          f"{args.horizon:g} s, training {args.train_rounds} x {args.train_paths} paths, seed {args.seed}")  # fmt: skip
    cols = ["learned", *OTHERS, "impact-cal"]
    print("| setting | " + " | ".join(cols) + " | learned − best other [95 % CI] | learned − entropy [95 % CI] |")
    print("|---" * (len(cols) + 3) + "|")
    rows: dict[str, Any] = {"meta": {"date": when, "argv": sys.argv[1:], "cpus": os.cpu_count()}}
    for name in chosen:
        r = one_setting(name, all_settings[name], args)
        rows[name] = r
        best = r["best_other"]
        db, de = r["diff"][best], r["diff"]["entropy"]
        cells = [f"{r['mean_pnl'][a]:.1f}" for a in cols]
        mark = ("" if r["not_worse_than_best"] else " (worse)") + (" **better**" if r["better_than_entropy"] else "")
        tail = f"{de[0]:+.1f} [{de[1]:+.1f}, {de[2]:+.1f}]{mark} |  <!-- {r['seconds']:.0f} s -->"
        print(f"| {name} | " + " | ".join(cells) + f" | {db[0]:+.1f} [{db[1]:+.1f}, {db[2]:+.1f}] vs {best} | "
              + tail, flush=True)  # fmt: skip
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(rows, fh, indent=1)
    print(
        "\nexploration: learned (Thompson) − learned-mean (posterior mean), and learned − learned-fresh (no training)"
    )
    for name in chosen:
        r = rows[name]
        dm, df = r["diff"]["learned-mean"], r["diff"]["learned-fresh"]
        print(f"  {name}: vs mean {dm[0]:+.1f} [{dm[1]:+.1f}, {dm[2]:+.1f}]; vs fresh {df[0]:+.1f} "
              f"[{df[1]:+.1f}, {df[2]:+.1f}]; fills/path {r['learned_fills']:.1f}; posterior fills "
              f"{r['posterior_fills']:.0f}; size fit {r['size_fit']['preferred']}")  # fmt: skip


if __name__ == "__main__":
    main()
