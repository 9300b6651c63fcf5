"""Optimality against two independent solvers: SciPy SLSQP and cvxpy with Clarabel.

On random instances (ties, non-positive edges, linear levels, caps, tiny and huge scales, n from 1 to 100,
β in (0, 2]) the exact solver must be feasible and never worse than either oracle: its objective is at least
the better oracle's, to a relative gap of 1e-9. Oracle answers are first projected onto the feasible set
(interior-point and SQP solvers return slightly infeasible points, whose objective can look better than the
optimum). ``benchmarks/oracle_sweep.py`` runs the same comparison on many more instances.

Both oracles see a presolved problem: levels with a non-positive edge or a zero cap are removed (fixed at 0).
That is exact, not an assumption about our solver: such a level's term ``a·s - b·s^(1+β)`` is ``<= 0`` for every
feasible size, so setting it to 0 is feasible and never worse; the oracle's answer is scattered back and scored
on the full problem, like ours. It makes SLSQP (``O(n^3)`` per iteration) about twice as fast. cvxpy compiles one
DPP-parametrised problem per (β, padded size) and re-solves it with new values (padding levels have a zero cap),
instead of canonicalising a new problem for each instance.
"""

from __future__ import annotations

import ctypes
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hyper_make import allocate_concave

cp = pytest.importorskip("cvxpy")
from scipy.optimize import minimize  # noqa: E402

#: Random instances in CI per oracle, 2,000 in all (``benchmarks/oracle_sweep.py`` runs 5,000+ each).
N_INSTANCES = {"slsqp": 1000, "cvxpy": 1000}
REL_GAP = 1e-9


def _openblas_thread_setters() -> list[tuple[object, object]]:
    """(set, get) pairs of every loaded OpenBLAS (NumPy's and SciPy's wheels each bundle one); Linux only."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return []
    paths = {line.split()[-1] for line in maps.read_text().splitlines() if "openblas" in line.lower()}
    out = []
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        for suffix in ("", "64_"):
            for prefix in ("scipy_openblas", "openblas"):
                setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    out.append((setter, getter))
    return out


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread() -> Iterator[None]:
    """One BLAS thread while the oracles run: threaded BLAS on a busy 2-core machine makes SLSQP ~10-100x slower."""
    pairs = _openblas_thread_setters()
    before = [getter() for _, getter in pairs]  # type: ignore[operator]
    for setter, _ in pairs:
        setter(1)  # type: ignore[operator]
    yield
    for (setter, _), n in zip(pairs, before, strict=True):
        setter(n)  # type: ignore[operator]


def random_instance(rng: np.random.Generator, n_max: int = 100):
    """A random problem: (a, b, beta, caps, budget); scales span 12 orders of magnitude."""
    n = int(np.exp(rng.uniform(0, np.log(n_max + 0.999))))
    beta = float(rng.choice([0.5, 0.5, 0.5, 1.0, 0.3, 0.7, 1.5, 2.0]))
    scale = 10.0 ** rng.uniform(-6, 6)
    size_scale = 10.0 ** rng.uniform(-4, 4)
    a = rng.normal(0.5, 1.0, n) * scale
    if rng.random() < 0.3:
        a = np.round(a / scale, 1) * scale  # ties
    b = rng.exponential(1.0, n) * scale / size_scale**beta
    b[rng.random(n) < 0.1] = 0.0  # linear levels
    caps = np.where(rng.random(n) < 0.5, rng.exponential(1.0, n) * size_scale, np.inf)
    caps[rng.random(n) < 0.05] = 0.0
    if not np.isfinite(caps[b == 0]).all() and rng.random() < 0.5:
        caps[b == 0] = size_scale  # mostly bounded linear levels; unbounded ones rely on the budget
    budget = float(rng.exponential(1.0) * size_scale * max(1, n // 4))
    return a, b, beta, caps, budget


def objective(a, b, beta, s):
    return float(a @ s - b @ s ** (1 + beta))


def project(x, caps, budget):
    """Nearest-enough feasible point: clip to [0, caps], then scale down onto the budget."""
    s = np.clip(np.nan_to_num(np.asarray(x, dtype=float), nan=0.0), 0.0, caps)
    tot = s.sum()
    if tot > budget:
        s = s * (budget / tot)
    return s


def presolved(oracle):
    """``oracle`` on the levels with a positive edge and cap only (the others are 0 at every optimum), scattered."""

    def solve(a, b, beta, caps, budget):
        out = np.zeros(a.size)
        keep = np.flatnonzero((a > 0) & (caps > 0))
        if keep.size and budget > 0:
            out[keep] = oracle(a[keep], b[keep], beta, caps[keep], budget)
        return project(out, caps, budget)

    solve.__name__ = oracle.__name__
    return solve


def _slsqp(a, b, beta, caps, budget):
    n = a.size
    ub = np.where(np.isfinite(caps), caps, budget)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = minimize(
            lambda s: -(a @ s - b @ np.maximum(s, 0) ** (1 + beta)),
            np.minimum(np.full(n, budget / n), ub),
            jac=lambda s: -(a - (1 + beta) * b * np.maximum(s, 0) ** beta),
            bounds=list(zip(np.zeros(n), ub, strict=True)),
            constraints=[{"type": "ineq", "fun": lambda s: budget - s.sum(), "jac": lambda s: -np.ones(n)}],
            method="SLSQP",
            options={"ftol": 1e-13, "maxiter": 300},
        )
    return res.x


_CVX: dict[tuple[int, float], tuple] = {}


def _cvx_problem(m: int, beta: float) -> tuple:
    """One compiled problem per (padded size, β): ``max a·s - Σ b·s^(1+β)``, ``0 <= s <= u``, ``Σ s <= B``."""
    key = (m, beta)
    if key not in _CVX:
        s, a = cp.Variable(m), cp.Parameter(m)
        b, u, budget = cp.Parameter(m, nonneg=True), cp.Parameter(m, nonneg=True), cp.Parameter(nonneg=True)
        obj = a @ s - cp.sum(cp.multiply(b, cp.power(s, 1 + beta)))
        _CVX[key] = (cp.Problem(cp.Maximize(obj), [s >= 0, s <= u, cp.sum(s) <= budget]), s, a, b, u, budget)
    return _CVX[key]


def _cvxpy(a, b, beta, caps, budget):
    n = a.size
    m = 1 << int(np.ceil(np.log2(n)))  # pad to a power of two: few distinct compiled problems
    prob, s, pa, pb, pu, pbudget = _cvx_problem(m, beta)
    # a cap above the budget is the budget (no level can hold more), so every parameter is finite
    pa.value, pb.value, pu.value = (np.pad(x, (0, m - n)) for x in (a, b, np.minimum(caps, budget)))
    pbudget.value = budget
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            prob.solve(solver="CLARABEL")
        except cp.error.SolverError:
            return np.zeros(n)
    return s.value[:n] if s.value is not None else np.zeros(n)


solve_slsqp = presolved(_slsqp)
solve_cvxpy = presolved(_cvxpy)


def check_against(oracle, seed: int, n_instances: int) -> float:
    """Run ``n_instances`` problems; return the worst relative gap (ours below the oracle's; <= 0 is better)."""
    rng = np.random.default_rng(seed)
    worst = -np.inf
    for _ in range(n_instances):
        a, b, beta, caps, budget = random_instance(rng)
        sol = allocate_concave(a, b, budget, beta=beta, caps=caps)
        s = sol.sizes
        assert np.all(s >= 0) and np.all(s <= caps) and s.sum() <= budget, "infeasible"
        ours = objective(a, b, beta, s)
        ref = objective(a, b, beta, oracle(a, b, beta, caps, budget))
        gap = (ref - ours) / max(abs(ref), abs(ours), 1e-300)
        assert gap <= REL_GAP, (gap, a, b, beta, caps, budget)
        worst = max(worst, gap)
    return worst


@pytest.mark.parametrize(
    ("oracle", "seed", "count"),
    [(solve_slsqp, 11, N_INSTANCES["slsqp"]), (solve_cvxpy, 12, N_INSTANCES["cvxpy"])],
    ids=["slsqp", "cvxpy-clarabel"],
)
def test_never_worse_than_the_oracle(oracle, seed, count):
    worst = check_against(oracle, seed, count)
    assert worst <= REL_GAP


def test_oracles_agree_with_a_hand_solved_case():
    a, b, caps = np.array([3.0, 2.0]), np.array([1.0, 1.0]), np.array([np.inf, np.inf])
    for oracle in (solve_slsqp, solve_cvxpy):
        s = oracle(a, b, 0.5, caps, 1.0)
        assert objective(a, b, 0.5, s) == pytest.approx(allocate_concave(a, b, 1.0).objective, rel=1e-6)
