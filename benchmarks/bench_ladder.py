"""Full two-sided ladder build: the impact allocator against the legacy entropy build, in one process.

Run: ``python benchmarks/bench_ladder.py [--json out.json] [--builds 400]`` (about ten seconds).

Each build is the whole :func:`hyper_make.build_ladder` pipeline (level grid, economics, allocation, stealth,
exchange projection) for both sides of the embedded default BTC market. The allocators alternate build by
build (so that machine noise hits both alike); the reported figure is the median wall time per build, and the
ratio ``impact / entropy`` (target: <= 1, the impact build at most as slow). Also timed: the impact build with
each stealth stage on, and the per-stage split of the median build.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from _machine import machine, print_machine, write_json
from hyper_make import LadderConfig, StealthConfig, build_ladder, default_snapshot, default_spec, make_allocator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the results to this JSON file")
    ap.add_argument("--builds", type=int, default=400, help="timed builds per variant (default 400)")
    args = ap.parse_args()
    info = machine()
    print_machine(info)
    snap, spec = default_snapshot(), default_spec()
    base = LadderConfig()
    variants = {
        "entropy": ("entropy", base),
        "impact": ("impact", base),
        "impact+dirichlet": ("impact", dataclasses.replace(base, stealth=StealthConfig(mode="dirichlet"))),
        "impact+posterior": ("impact", dataclasses.replace(base, stealth=StealthConfig(mode="posterior"))),
        "learned": ("learned", base),
        "learned (mean)": ("learned", base),
    }
    allocs = {k: make_allocator(name) for k, (name, _) in variants.items()}
    allocs["learned (mean)"] = make_allocator("learned", sampling="mean")
    times: dict[str, list[int]] = {k: [] for k in variants}
    stages: dict[str, list[dict[str, int]]] = {k: [] for k in variants}
    for k, (_, cfg) in variants.items():  # warm-up: imports, numba cache load, first-call costs
        for i in range(20):
            build_ladder(snap, spec, allocs[k], config=cfg, rng=i)
    for i in range(args.builds):
        for k, (_, cfg) in variants.items():
            t0 = time.perf_counter_ns()
            lad = build_ladder(snap, spec, allocs[k], config=cfg, rng=i)
            times[k].append(time.perf_counter_ns() - t0)
            stages[k].append(lad.timings_ns)
    med = {k: statistics.median(v) / 1e3 for k, v in times.items()}
    rows = []
    print(f"{'variant':<18} {'median µs':>10} {'vs entropy':>10}   stages (median µs)")
    for k in variants:
        names = ("grid", "economics", "allocate", "stealth", "projection")
        split = {s: statistics.median(t[s] for t in stages[k]) / 1e3 for s in names}
        ratio = med[k] / med["entropy"]
        rows.append({"variant": k, "median_us": med[k], "ratio_vs_entropy": ratio, "stages_us": split})
        detail = "  ".join(f"{s} {v:.0f}" for s, v in split.items())
        print(f"{k:<18} {med[k]:>10.0f} {ratio:>9.2f}x   {detail}")
    ratio = med["impact"] / med["entropy"]
    print(f"target: the impact build at most as slow as the entropy build (ratio <= 1): ratio {ratio:.2f}")
    upd = learner_update_us(snap, spec, base, args.builds)
    print(f"learned: one refresh's learner update + the posterior it invalidates, median {upd:.0f} µs (in the refresh "
          "core, before the build; the `learned` rows above reuse a cached posterior)")  # fmt: skip
    rows.append({"variant": "learner update + posterior", "median_us": upd, "ratio_vs_entropy": upd / med["entropy"]})
    write_json(args.json, {"machine": info, "builds": args.builds, "results": rows, "seed_range": [0, args.builds]})


def learner_update_us(snap, spec, cfg, n: int) -> float:  # type: ignore[no-untyped-def]
    """Median µs of one ``PayoutLearner.update`` with a refresh interval's worth of data (8 resting orders, one
    fill) plus the posterior recomputation the next draw then pays."""
    import numpy as np

    from hyper_make.learn import LevelObservations

    alloc = make_allocator("learned")
    sig = snap.sigma_frac / snap.sigma_horizon_s**0.5
    lrn = alloc.new_learner(spec.coin, cfg, maker_fee_bps=snap.maker_fee_bps, sigma_frac_per_sqrt_s=sig)
    rng = np.random.default_rng(0)
    out = []
    for i in range(n + 20):
        obs = LevelObservations.build(
            1.0,
            [(("bid", "ask")[j % 2], 2.0 + 3.0 * (j // 2), 0.02, 1.0) for j in range(8)],
            [("bid", 2.0, 0.01, 90_000.0, list(rng.normal(0.0, 5.0, 2)))],
            horizons_s=(1.0, 5.0),
        )
        t0 = time.perf_counter_ns()
        lrn.update(obs)
        lrn.mean([2.0], [2.0], mid_usd=90_000.0, horizon_s=1.0)
        if i >= 20:
            out.append(time.perf_counter_ns() - t0)
    return statistics.median(out) / 1e3


if __name__ == "__main__":
    main()
