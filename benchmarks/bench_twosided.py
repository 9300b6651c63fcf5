"""The exact two-sided inventory-aware allocator: speed against a cvxpy (Clarabel) re-solve, and optimality.

Run: ``python benchmarks/bench_twosided.py [--instances 5000] [--json out.json]`` (a few minutes).

1. **Speed**, at n = 10, 25, 50 levels a side: ladder-like instances (edges peaking a few levels out, fill
   fractions falling with depth, impact, a linear size penalty, a side-total penalty, a long position and
   γ > 0, so the coupling is active). Per solve, medians over the instances, in this one process:
   ``exact`` is :func:`allocate_two_sided` (input checks included), ``exact+lots`` the same on a lot grid with a
   minimum order, ``cvxpy`` a DPP-parametrised problem compiled once per shape and re-solved with Clarabel (the
   cheapest way to call cvxpy on every refresh). The ratio is ``median(cvxpy) / median(exact)``.
2. **Optimality**: ``--instances`` random instances of ``tests/test_twosided.py``'s generator (ties, non-positive
   edges, linear levels, caps 0/inf, p in {0, 1}, zero budgets, γ = 0 or not, scales over 6 decades, n in
   {1, 3, 8, 25}, β in {0.3, 0.5, 0.7, 1, 1.5, 2}). It reports the worst relative gap ``(cvxpy - exact) /
   max(|cvxpy|, |exact|)`` after projecting cvxpy's answer onto the feasible set (<= 0: the exact solver is at
   least as good), how many instances cvxpy beat by more than 1e-9 (must be 0), and infeasible exact answers
   (must be 0).

3. **A learned refresh**: what the ``learned`` allocator will pay per refresh, on a 2×10-level ladder with ~13
   fills per 2 s interval from ``tests/learn/_synth.py``'s generator: :meth:`PayoutLearner.update`, a Thompson
   draw (:meth:`PayoutLearner.sample`) and the two-sided solve, medians in µs.

BLAS is pinned to one thread (threaded BLAS on a loaded small machine makes the interior-point solver slower,
which would flatter the exact solver).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from _machine import machine, print_machine, write_json  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from hyper_make.allocate._twosided import SideCurves, allocate_two_sided  # noqa: E402
from learn._synth import DEPTHS, SIZES, interval, learner, truth  # noqa: E402
from test_twosided import CvxpyOracle, objective, random_instance, relative_gap  # noqa: E402

REL_GAP = 1e-9


def ladder_instance(rng: np.random.Generator, n: int) -> dict:
    """Both sides of a BTC-like ladder: edges (USD/coin) peaking a few levels out, p falling with depth."""
    depth = np.geomspace(1.0, 100.0, n)
    sides = {}
    for name in ("bid", "ask"):
        a = 40.0 * np.exp(-((np.log(depth / 6.0)) ** 2)) - 4.0 + rng.normal(0, 3.0, n)
        p = np.clip(np.exp(-depth / 15.0) + rng.normal(0, 0.02, n), 0.0, 1.0)
        sides[name] = SideCurves(a, rng.uniform(20.0, 80.0, n), np.full(n, 30.0), p, 10.0, name=name)
    return {
        "bid": sides["bid"],
        "ask": sides["ask"],
        "caps_bid": np.full(n, 0.1),
        "caps_ask": np.full(n, 0.1),
        "budget_bid": 0.5,
        "budget_ask": 0.5,
        "q": float(rng.uniform(-0.5, 0.5)),
        "gamma": 1e-3,
        "sigma2_h": float(rng.uniform(1e3, 1e4)),  # (USD/coin)²: σ_h ≈ 30-100 USD per BTC over the horizon
        "beta": 0.5,
    }


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter_ns()
    out = fn(*args, **kwargs)
    return (time.perf_counter_ns() - t0) / 1e3, out


def speed(rng: np.random.Generator, n_instances: int) -> list[dict]:
    oracle = CvxpyOracle()
    rows = []
    print(f"{'n/side':>6} {'exact µs':>9} {'+lots µs':>9} {'cvxpy µs':>9} {'xcvxpy':>8}  worst gap")
    for n in (10, 25, 50):
        insts = [ladder_instance(rng, n) for _ in range(n_instances)]
        oracle.solve(insts[0])  # compile once (not timed: a quoting loop compiles at start-up)
        allocate_two_sided(**insts[0])
        allocate_two_sided(**insts[0], lot_coins=1e-5, min_bid_coins=1e-4, min_ask_coins=1e-4)
        t_exact, t_lots, t_cvx, gaps = [], [], [], []
        for inst in insts:
            reps = [timed(allocate_two_sided, **inst) for _ in range(31)]
            t_exact.append(statistics.median(r[0] for r in reps))
            lots = [timed(allocate_two_sided, **inst, lot_coins=1e-5, min_bid_coins=1e-4, min_ask_coins=1e-4)]
            t_lots.append(lots[0][0])
            sol = reps[0][1]
            tc, (sb, sa) = timed(oracle.solve, inst)
            t_cvx.append(tc)
            gaps.append(relative_gap(inst, objective(inst, sol.bid, sol.ask), objective(inst, sb, sa)))
        me, ml, mc = statistics.median(t_exact), statistics.median(t_lots), statistics.median(t_cvx)
        rows.append(
            {"n_per_side": n, "exact_us": me, "exact_lots_us": ml, "cvxpy_resolve_us": mc,
             "speedup_vs_cvxpy": mc / me, "worst_rel_gap": max(gaps)}
        )  # fmt: skip
        print(f"{n:>6} {me:>9.1f} {ml:>9.1f} {mc:>9.0f} {mc / me:>7.0f}x  {max(gaps):.1e}")
    return rows


def sweep(rng: np.random.Generator, n_instances: int) -> dict:
    oracle = CvxpyOracle()
    worst, beaten, infeasible = -np.inf, 0, 0
    t0 = time.perf_counter()
    for _ in range(n_instances):
        inst = random_instance(rng)
        sol = allocate_two_sided(**inst)
        for name, s in (("bid", sol.bid), ("ask", sol.ask)):
            if not (np.all(s >= 0) and np.all(s <= inst[f"caps_{name}"]) and s.sum() <= inst[f"budget_{name}"]):
                infeasible += 1
        gap = relative_gap(inst, objective(inst, sol.bid, sol.ask), objective(inst, *oracle.solve(inst)))
        worst = max(worst, gap)
        beaten += gap > REL_GAP
    out = {"instances": n_instances, "worst_rel_gap": worst, "cvxpy_better_than_1e-9": beaten,
           "infeasible": infeasible, "seconds": time.perf_counter() - t0}  # fmt: skip
    print(
        f"optimality over {n_instances} random instances: worst gap {worst:.2e} (<= 0: exact at least as good), "
        f"cvxpy better by > 1e-9 on {beaten}, infeasible exact answers {infeasible}"
    )
    return out


def refresh_cost(rng: np.random.Generator, n_refresh: int = 400) -> dict:
    lrn = learner()
    obs = [interval(rng, truth(), DEPTHS, SIZES, duration_s=2.0) for _ in range(n_refresh)]
    t_up, t_draw, t_solve = [], [], []
    for o in obs:
        t, _ = timed(lrn.update, o)
        t_up.append(t)
        t, curves = timed(lrn.sample, rng, DEPTHS, DEPTHS, mid_usd=1e5, horizon_s=2.0)
        t_draw.append(t)
        lots = {"lot_coins": 1e-5, "min_bid_coins": 1e-4, "min_ask_coins": 1e-4}
        t, _ = timed(allocate_two_sided, curves.bid, curves.ask, budget_bid=0.1, budget_ask=0.1, q=0.02, gamma=1e-3,
                     sigma2_h=1e4, beta=curves.beta, **lots)  # fmt: skip
        t_solve.append(t)
    skip = n_refresh // 10  # warm-up
    out = {"update_us": statistics.median(t_up[skip:]), "sample_us": statistics.median(t_draw[skip:]),
           "solve_lots_us": statistics.median(t_solve[skip:]),
           "fills_per_refresh": float(np.mean([o.n_fills for o in obs]))}  # fmt: skip
    print(
        f"learned refresh (2x10 levels, {out['fills_per_refresh']:.1f} fills): update {out['update_us']:.0f} µs, "
        f"Thompson draw {out['sample_us']:.0f} µs, two-sided solve on lots {out['solve_lots_us']:.0f} µs"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=5000, help="random instances for the optimality sweep")
    ap.add_argument("--timing-instances", type=int, default=30, help="ladder instances per n for the timings")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--json", help="write the results to this JSON file")
    args = ap.parse_args()
    info = machine()
    print_machine(info)
    rows = speed(np.random.default_rng(args.seed), args.timing_instances)
    refresh = refresh_cost(np.random.default_rng(args.seed + 2))
    opt = sweep(np.random.default_rng(args.seed + 1), args.instances)
    write_json(args.json, {"machine": info, "speed": rows, "learned_refresh": refresh, "optimality": opt})
    if opt["cvxpy_better_than_1e-9"] or opt["infeasible"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
