"""Full two-sided ladder build: the impact allocator against the legacy entropy build, in one process.

Run: ``python benchmarks/bench_ladder.py [--json out.json] [--builds 400]`` (about ten seconds).

Each build is the whole :func:`hyper_make.build_ladder` pipeline (level grid, economics, allocation, stealth,
exchange projection) for both sides of the embedded default BTC market. The allocators alternate build by
build (so that machine noise hits both alike); the reported figure is the median wall time per build, and the
ratio ``impact / entropy`` (target: <= 1, the impact build at most as slow). Also timed: the impact build with
each stealth stage on, and the per-stage split of the median build.

The ``learned`` allocator is timed compiled (its default) and on the NumPy reference it replaced
(:mod:`hyper_make.learn._reference`), alternating in the same process: the build, the allocation stage, the
array-level entry ``LearnedAllocator.allocate_arrays`` (the fast path's), and one refresh's learner update with
the posterior it invalidates; ``--json`` stores every figure and the reference/compiled ratios.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from _machine import machine, print_machine, write_json
from hyper_make import LadderConfig, StealthConfig, build_ladder, default_snapshot, default_spec, make_allocator
from hyper_make.allocate._learned import LearnedAllocator
from hyper_make.learn import _reference as ref


class ReferenceLearned(LearnedAllocator):
    """The ``learned`` allocator on the NumPy reference maths (the implementation before it was compiled)."""

    def allocate_both(self, bid, ask, ctx, rng):  # type: ignore[no-untyped-def]
        return ref.allocate_both(self, bid, ask, ctx, rng)


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
        "learned (reference)": ("learned", base),
        "learned (mean, reference)": ("learned", base),
    }
    allocs = {k: make_allocator(name) for k, (name, _) in variants.items()}
    allocs["learned (mean)"] = make_allocator("learned", sampling="mean")
    allocs["learned (reference)"] = ReferenceLearned()
    allocs["learned (mean, reference)"] = ReferenceLearned(sampling="mean")
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
    print(f"{'variant':<26} {'median µs':>10} {'vs entropy':>10}   stages (median µs)")
    for k in variants:
        names = ("grid", "economics", "allocate", "stealth", "projection")
        split = {s: statistics.median(t[s] for t in stages[k]) / 1e3 for s in names}
        ratio = med[k] / med["entropy"]
        rows.append({"variant": k, "median_us": med[k], "ratio_vs_entropy": ratio, "stages_us": split})
        detail = "  ".join(f"{s} {v:.0f}" for s, v in split.items())
        print(f"{k:<26} {med[k]:>10.0f} {ratio:>9.2f}x   {detail}")
    ratio = med["impact"] / med["entropy"]
    print(f"target: the impact build at most as slow as the entropy build (ratio <= 1): ratio {ratio:.2f}")
    learned = learned_ratios(rows)
    learned["update"] = learner_update_us(snap, spec, base, args.builds)
    learned["allocate_arrays"] = allocate_arrays_us(snap, spec, base, args.builds)
    u, a = learned["update"], learned["allocate_arrays"]
    print(f"learned: one refresh's learner update + the posterior it invalidates, median {u['compiled_us']:.1f} µs "
          f"(reference {u['reference_us']:.0f} µs, {u['ratio']:.0f}x)")  # fmt: skip
    print(f"learned: allocate_arrays (both sides, Thompson draw, sampling cost), median {a['compiled_us']:.1f} µs; "
          f"the reference allocate_both {a['reference_us']:.0f} µs ({a['ratio']:.0f}x)")  # fmt: skip
    for k in ("build", "allocate", "build (mean)", "allocate (mean)"):
        v = learned[k]
        print(
            f"learned {k}: compiled {v['compiled_us']:.0f} µs, reference {v['reference_us']:.0f} µs ({v['ratio']:.1f}x)"
        )
    write_json(args.json, {"machine": info, "builds": args.builds, "results": rows, "learned": learned,
                           "seed_range": [0, args.builds]})  # fmt: skip


def learned_ratios(rows: list[dict]) -> dict[str, dict[str, float]]:  # type: ignore[type-arg]
    """Reference / compiled medians of the learned build and its allocation stage, from the rows (one run)."""
    by = {r["variant"]: r for r in rows}
    out = {}
    for mode, sfx in (("", ""), (" (mean)", "mean, ")):
        c, r = by[f"learned{mode}"], by[f"learned ({sfx}reference)"]
        for k, cv, rv in (("build", c["median_us"], r["median_us"]),
                          ("allocate", c["stages_us"]["allocate"], r["stages_us"]["allocate"])):  # fmt: skip
            out[f"{k}{mode}"] = {"compiled_us": cv, "reference_us": rv, "ratio": rv / cv}
    return out


def _observation(rng):  # type: ignore[no-untyped-def]
    """A refresh interval's worth of data: 8 resting orders, one fill, one display-drift row."""
    from hyper_make.learn import LevelObservations

    o = LevelObservations.build(
        1.0,
        [(("bid", "ask")[j % 2], 2.0 + 3.0 * (j // 2), 0.02, 1.0) for j in range(8)],
        [("bid", 2.0, 0.01, 90_000.0, list(rng.normal(0.0, 5.0, 2)))],
        horizons_s=(1.0, 5.0),
    )
    drift = {"drift_dt_s": [1.0], "drift_bps": [float(rng.normal())], "drift_display_coins": [0.01],
             "drift_position_coins": [0.02]}  # fmt: skip
    return dataclasses.replace(o, **drift)


def learner_update_us(snap, spec, cfg, n: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Median µs of one ``PayoutLearner.update`` plus the posterior it invalidates (which the next draw pays),
    compiled and on the NumPy reference, alternating (two learners fed the same intervals)."""
    import numpy as np

    alloc = make_allocator("learned")
    sig = snap.sigma_frac / snap.sigma_horizon_s**0.5
    lrn = alloc.new_learner(spec.coin, cfg, maker_fee_bps=snap.maker_fee_bps, sigma_frac_per_sqrt_s=sig)
    lrn_ref = alloc.new_learner(spec.coin, cfg, maker_fee_bps=snap.maker_fee_bps, sigma_frac_per_sqrt_s=sig)
    rng = np.random.default_rng(0)
    fast, slow = [], []
    for i in range(n + 20):
        obs = _observation(rng)
        t0 = time.perf_counter_ns()
        lrn.update(obs)
        lrn.draw(None)  # the posterior (every horizon and the display fit)
        t1 = time.perf_counter_ns()
        ref.update(lrn_ref, obs)
        ref.posteriors(lrn_ref)
        ref.display_posterior(lrn_ref)
        t2 = time.perf_counter_ns()
        if i >= 20:
            fast.append(t1 - t0)
            slow.append(t2 - t1)
    assert all((lrn.state[k] == lrn_ref.state[k]).all() for k in lrn.state)  # the same state, bit for bit
    c, r = statistics.median(fast) / 1e3, statistics.median(slow) / 1e3
    return {"compiled_us": c, "reference_us": r, "ratio": r / c}


def allocate_arrays_us(snap, spec, cfg, n: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Median µs of ``allocate_arrays`` on the default market's levels (a learner trained on 200 intervals),
    against the reference ``allocate_both`` on the same problems, alternating."""
    import numpy as np

    from hyper_make.ladder import LadderContext

    alloc = make_allocator("learned")
    sig = snap.sigma_frac / snap.sigma_horizon_s**0.5
    lrn = alloc.new_learner(spec.coin, cfg, maker_fee_bps=snap.maker_fee_bps, sigma_frac_per_sqrt_s=sig,
                            max_position_coins=snap.max_position_coins)  # fmt: skip
    rng = np.random.default_rng(1)
    for _ in range(200):
        lrn.update(_observation(rng))
    captured = {}

    class Capture(LearnedAllocator):
        def allocate_both(self, bid, ask, ctx, rng):  # type: ignore[no-untyped-def]
            captured["p"] = (bid, ask, ctx)
            return super().allocate_both(bid, ask, ctx, rng)

    build_ladder(snap, spec, Capture(), config=cfg, rng=0, learner=lrn, interval_s=1.0)
    bid, ask, ctx = captured["p"]
    assert isinstance(ctx, LadderContext)
    kw = dict(budget_bid_coins=bid.budget_coins, budget_ask_coins=ask.budget_coins, caps_bid_coins=bid.caps_coins,
              caps_ask_coins=ask.caps_coins, lot_coins=bid.lot_coins, min_bid_coins=bid.min_size_coins,
              min_ask_coins=ask.min_size_coins, mid_usd=ctx.mid_usd, inventory_coins=ctx.inventory_coins,
              sigma_usd_per_sqrt_s=ctx.sigma_usd_per_sqrt_s, risk_aversion=ctx.risk_aversion, horizon_s=ctx.horizon_s,
              interval_s=ctx.interval_s, learner=lrn)  # fmt: skip
    db, da = bid.curves.depth_bps, ask.curves.depth_bps
    fast, slow = [], []
    for i in range(n + 20):
        g1, g2 = np.random.default_rng(i), np.random.default_rng(i)
        t0 = time.perf_counter_ns()
        alloc.allocate_arrays(db, da, rng=g1, **kw)
        t1 = time.perf_counter_ns()
        ref.allocate_both(alloc, bid, ask, ctx, g2)
        t2 = time.perf_counter_ns()
        if i >= 20:
            fast.append(t1 - t0)
            slow.append(t2 - t1)
    c, r = statistics.median(fast) / 1e3, statistics.median(slow) / 1e3
    return {"compiled_us": c, "reference_us": r, "ratio": r / c}


if __name__ == "__main__":
    main()
