"""KKT residual and feasibility of the exact solver on random instances for a fixed time (no oracle needed).

Run: ``python benchmarks/kkt_stress.py [--seconds 60] [--json out.json]``.

Instances: n from 1 to 200, β in {0.1, 0.25, 0.5, 0.75, 1, 1.5, 2}, edge scales from 1e-8 to 1e8, size scales
from 1e-6 to 1e6, ties, linear levels, zero and infinite caps. Each answer must be feasible (sizes in
``[0, caps]``, total within the budget, exactly); the KKT residual (largest violation of "interior marginal =
λ, zero-size marginal <= λ, capped marginal >= λ", over the largest |edge|) is reported.
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
from test_convex import kkt_violation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", help="write the results to this JSON file")
    args = ap.parse_args()
    info = machine()
    print_machine(info)
    rng = np.random.default_rng(args.seed)
    worst, count, infeasible, not_optimal = 0.0, 0, 0, 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        n = int(rng.integers(1, 201))
        beta = float(rng.choice([0.5, 1.0, 0.25, 0.75, 1.5, 2.0, 0.1]))
        scale, size_scale = 10.0 ** rng.uniform(-8, 8), 10.0 ** rng.uniform(-6, 6)
        a = rng.normal(0.3, 1.0, n) * scale
        if rng.random() < 0.3:
            a = np.round(a / scale, 1) * scale  # ties
        b = rng.exponential(1.0, n) * scale / size_scale**beta
        b[rng.random(n) < rng.random()] = 0.0  # linear levels
        caps = np.where(rng.random(n) < rng.random(), rng.exponential(1.0, n) * size_scale, np.inf)
        caps[rng.random(n) < 0.05] = 0.0
        budget = float(rng.exponential(1.0) * size_scale * rng.choice([0.01, 1.0, 100.0]))
        sol = allocate_concave(a, b, budget, beta=beta, caps=caps)
        s = sol.sizes
        infeasible += int(not (np.all(np.isfinite(s)) and np.all(s >= 0) and np.all(s <= caps) and s.sum() <= budget))
        not_optimal += int(sol.status != "optimal")
        worst = max(worst, kkt_violation(a, b, beta, caps, budget, sol))
        count += 1
    print(f"{count} instances in {args.seconds:g} s: worst KKT residual {worst:.2e} (relative to max |a|), "
          f"{infeasible} infeasible, {not_optimal} not converged")  # fmt: skip
    write_json(args.json, {"machine": info, "instances": count, "worst_kkt_residual": worst,
                           "infeasible": infeasible, "not_converged": not_optimal})  # fmt: skip


if __name__ == "__main__":
    main()
