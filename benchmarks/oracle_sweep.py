"""The optimality check of ``tests/test_oracles.py`` on many more random instances (default 10,000 per oracle).

Run: ``python benchmarks/oracle_sweep.py [--instances 10000] [--json out.json]`` (a few minutes per 10,000).

Instances: ties, non-positive edges, linear levels, caps (some zero), scales from 1e-6 to 1e6, n from 1 to 100,
β in {0.3, 0.5, 0.7, 1, 1.5, 2}. For each oracle (SciPy SLSQP with the analytic gradient; cvxpy with Clarabel)
it reports the worst relative gap ``(oracle - exact) / max(|oracle|, |exact|)`` after projecting the oracle's
answer onto the feasible set (<= 0: the exact solver is at least as good), the share of instances where the
oracle was strictly better than 1e-9, and the number of infeasible exact answers (must be 0).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from _machine import machine, print_machine, write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from hyper_make import allocate_concave
from test_oracles import _openblas_thread_setters, objective, random_instance, solve_cvxpy, solve_slsqp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=10_000, help="instances per oracle (default 10,000)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--json", help="write the results to this JSON file")
    args = ap.parse_args()
    info = machine()
    print_machine(info)
    for setter, _ in _openblas_thread_setters():
        setter(1)  # one BLAS thread: threaded BLAS on a busy small machine slows SLSQP ~10-100x
    results = []
    for name, oracle, seed in (("slsqp", solve_slsqp, args.seed), ("cvxpy-clarabel", solve_cvxpy, args.seed + 1)):
        rng = np.random.default_rng(seed)
        worst, worse, infeasible = -np.inf, 0, 0
        t0 = time.perf_counter()
        for _ in range(args.instances):
            a, b, beta, caps, budget = random_instance(rng)
            s = allocate_concave(a, b, budget, beta=beta, caps=caps).sizes
            infeasible += int(not (np.all(s >= 0) and np.all(s <= caps) and s.sum() <= budget))
            ours = objective(a, b, beta, s)
            ref = objective(a, b, beta, oracle(a, b, beta, caps, budget))
            gap = (ref - ours) / max(abs(ref), abs(ours), 1e-300)
            worst = max(worst, gap)
            worse += int(gap > 1e-9)
        row = {"oracle": name, "instances": args.instances, "worst_rel_gap": worst, "oracle_better_1e-9": worse,
               "infeasible_exact": infeasible, "seconds": time.perf_counter() - t0}  # fmt: skip
        results.append(row)
        print(f"{name:<15} {args.instances} instances: worst gap {worst:.2e}, oracle better (>1e-9) in {worse}, "
              f"infeasible exact answers {infeasible}  ({row['seconds']:.0f} s)")  # fmt: skip
    write_json(args.json, {"machine": info, "results": results})


if __name__ == "__main__":
    main()
