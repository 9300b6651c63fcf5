"""KKT residual and feasibility of the exact solver on random instances for a fixed time (no oracle needed).

Run: ``python benchmarks/kkt_stress.py [--seconds 60] [--range ladder|float] [--json out.json]``.

Instances (``--range ladder``, the default): n from 1 to 200, β in {0.1, 0.25, 0.5, 0.75, 1, 1.5, 2}, edge
scales from 1e-8 to 1e8, size scales from 1e-6 to 1e6, ties, linear levels, zero and infinite caps. With
``--range float`` every edge, impact coefficient, cap and budget is drawn independently over 1e-300 to 1e300
(a calibrated ladder's deep levels reach 1e-309). Each answer must be feasible (sizes finite, in ``[0, caps]``,
total within the budget, exactly); the KKT residual of the answers reported ``optimal`` (per level the smaller of
the marginal residual over the largest |edge| and the size residual over the budget, see
``tests/test_convex.py``) and the count of answers whose status says they are not (``max_iter``, ``inexact``:
e.g. an objective beyond 1.8e308, ``failed``) are reported.
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
    ap.add_argument("--range", choices=["ladder", "float"], default="ladder", help="input magnitudes (see above)")
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
        if args.range == "float":
            a = rng.normal(0.3, 1.0, n) * 10.0 ** rng.uniform(-300, 300, n)
            b = rng.exponential(1.0, n) * 10.0 ** rng.uniform(-300, 300, n)
            b[rng.random(n) < 0.1] = 0.0
            caps = np.where(rng.random(n) < 0.5, 10.0 ** rng.uniform(-300, 300, n), np.inf)
            budget = float(10.0 ** rng.uniform(-300, 300))
        else:
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
        if sol.status == "optimal":
            with np.errstate(all="ignore"):  # the checker's own arithmetic overflows at 1e300
                worst = max(worst, kkt_violation(a, b, beta, caps, budget, sol))
        count += 1
    print(f"{count} instances ({args.range} range) in {args.seconds:g} s: worst KKT residual {worst:.2e} of the "
          f"optimal ones, {infeasible} infeasible, {not_optimal} with a non-optimal status")  # fmt: skip
    write_json(args.json, {"machine": info, "range": args.range, "instances": count, "worst_kkt_residual": worst,
                           "infeasible": infeasible, "not_optimal_status": not_optimal})  # fmt: skip


if __name__ == "__main__":
    main()
