"""Speed of the exact allocator against SciPy SLSQP and a cvxpy (Clarabel) re-solve, at n = 10, 25, 50 levels.

Run: ``python benchmarks/bench_allocators.py [--json out.json] [--instances 40]`` (about a minute).

Every solver gets the same random ladder-like instances (edges falling with depth, some negative; impact
coefficients; per-level caps at 25 % of the budget; β = 0.5). Timings are per solve, medians over the
instances, all in this one process:

* ``exact``: :func:`hyper_make.allocate_concave` (input checks included);
* ``slsqp``: ``scipy.optimize.minimize(method="SLSQP")`` with the analytic gradient, started from an even split,
  ``ftol = 1e-9`` (it converges on every instance; tighter tolerances hit the iteration limit);
* ``cvxpy``: a DPP-parametrised problem compiled once per n, re-solved with new parameter values (Clarabel),
  i.e. the cheapest way to call cvxpy on every refresh.

BLAS is pinned to one thread (threaded BLAS on a loaded 2-core machine makes SLSQP up to 100x slower). Ratios are
``median(other) / median(exact)``; the targets are >= 100x SLSQP and >= 30x cvxpy at n = 25. The
script also checks that the exact objective is never below either solver's (after projecting their answers
onto the feasible set).
"""

from __future__ import annotations

import os

# one BLAS thread: on a small shared machine, threaded BLAS inside SLSQP spin-waits and runs up to 100x slower,
# which would flatter the exact solver; the exact solver does not use BLAS at all
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

from _machine import machine, print_machine, write_json  # noqa: E402
from hyper_make import allocate_concave  # noqa: E402


def instance(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A ladder-like side: edges (USD/coin) peaking a few levels out, impact growing deeper, 25 % caps."""
    depth = np.geomspace(2.0, 200.0, n)
    a = 40.0 * np.exp(-((np.log(depth / 9.0)) ** 2)) - 5.0 + rng.normal(0, 3.0, n)
    b = rng.uniform(20.0, 80.0, n)
    budget = 0.5
    caps = np.full(n, 0.25 * budget)
    return a, b, caps, budget


def objective(a: np.ndarray, b: np.ndarray, s: np.ndarray) -> float:
    return float(a @ s - b @ s**1.5)


def project(x: np.ndarray, caps: np.ndarray, budget: float) -> np.ndarray:
    s = np.clip(np.nan_to_num(x), 0.0, caps)
    return s * (budget / s.sum()) if s.sum() > budget else s


def slsqp(a: np.ndarray, b: np.ndarray, caps: np.ndarray, budget: float) -> np.ndarray:
    n = a.size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = minimize(
            lambda s: -(a @ s - b @ np.maximum(s, 0) ** 1.5),
            np.full(n, budget / n),
            jac=lambda s: -(a - 1.5 * b * np.maximum(s, 0) ** 0.5),
            bounds=list(zip(np.zeros(n), caps, strict=True)),
            constraints=[{"type": "ineq", "fun": lambda s: budget - s.sum(), "jac": lambda s: -np.ones(n)}],
            method="SLSQP",
            options={"ftol": 1e-9, "maxiter": 500},
        )
    return res.x


class CvxpyResolve:
    """One compiled parametric problem per n; ``solve`` sets the parameters and re-solves with Clarabel."""

    def __init__(self, n: int) -> None:
        import cvxpy as cp

        self.cp = cp
        self.s = cp.Variable(n)
        self.a = cp.Parameter(n)
        self.b = cp.Parameter(n, nonneg=True)
        self.caps = cp.Parameter(n, nonneg=True)
        self.budget = cp.Parameter(nonneg=True)
        obj = self.a @ self.s - cp.sum(cp.multiply(self.b, cp.power(self.s, 1.5)))
        cons = [self.s >= 0, self.s <= self.caps, cp.sum(self.s) <= self.budget]
        self.problem = cp.Problem(cp.Maximize(obj), cons)

    def solve(self, a: np.ndarray, b: np.ndarray, caps: np.ndarray, budget: float) -> np.ndarray:
        self.a.value, self.b.value, self.caps.value, self.budget.value = a, b, caps, budget
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.problem.solve(solver="CLARABEL")
        return np.asarray(self.s.value)


def timed(fn, *args, **kwargs) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter_ns()
    out = fn(*args, **kwargs)
    return (time.perf_counter_ns() - t0) / 1e3, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the results to this JSON file")
    ap.add_argument("--instances", type=int, default=40, help="instances per n for SLSQP and cvxpy (default 40)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    info = machine()
    print_machine(info)
    rng = np.random.default_rng(args.seed)
    results = []
    print(f"{'n':>4} {'exact µs':>10} {'SLSQP µs':>10} {'cvxpy µs':>10} {'xSLSQP':>8} {'xcvxpy':>8}  worst gap")
    for n in (10, 25, 50):
        cvx = CvxpyResolve(n)
        insts = [instance(rng, n) for _ in range(args.instances)]
        cvx.solve(*insts[0])  # compile once (not timed: a quoting loop compiles at start-up)
        for inst in insts[:3]:
            allocate_concave(inst[0], inst[1], inst[3], caps=inst[2])  # warm caches
        t_exact, t_slsqp, t_cvx, gaps = [], [], [], []
        for a, b, caps, budget in insts:
            # the exact solver is timed on many repeats of the same instance (it is ~1000x faster)
            reps = [timed(allocate_concave, a, b, budget, caps=caps) for _ in range(51)]
            t_exact.append(statistics.median(r[0] for r in reps))
            ours = objective(a, b, reps[0][1].sizes)
            ts, xs = timed(slsqp, a, b, caps, budget)
            tc, xc = timed(cvx.solve, a, b, caps, budget)
            t_slsqp.append(ts)
            t_cvx.append(tc)
            best = max(objective(a, b, project(xs, caps, budget)), objective(a, b, project(xc, caps, budget)))
            gaps.append((best - ours) / max(abs(best), 1e-300))
        me, ms, mc = statistics.median(t_exact), statistics.median(t_slsqp), statistics.median(t_cvx)
        row = {
            "n": n,
            "exact_us": me,
            "slsqp_us": ms,
            "cvxpy_resolve_us": mc,
            "speedup_vs_slsqp": ms / me,
            "speedup_vs_cvxpy": mc / me,
            "worst_rel_gap": max(gaps),
        }
        results.append(row)
        print(f"{n:>4} {me:>10.1f} {ms:>10.0f} {mc:>10.0f} {ms / me:>7.0f}x {mc / me:>7.0f}x  {max(gaps):.1e}")
    print("(gap > 0 would mean an oracle beat the exact solver; targets at n = 25: >= 100x SLSQP, >= 30x cvxpy)")
    write_json(args.json, {"machine": info, "instances_per_n": args.instances, "results": results})


if __name__ == "__main__":
    main()
