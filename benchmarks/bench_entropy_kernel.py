"""The compiled entropy allocator (``hyper_make.fast._entropy``): identity with the Python one, and its speed.

Run: ``python benchmarks/bench_entropy_kernel.py [--problems 100000] [--json]`` (about a minute on 2 cores).

1. **Identity**: ``--problems`` random sides (``tests/test_fast_entropy.py``'s generator: 0-40 levels, EVs
   straddling the touch floor, caps and minimum orders that bind, zero budgets, random regimes and carried states),
   each allocated by ``EntropyAllocator.allocate`` and by :func:`allocate_fast` from two generators of one seed,
   with a random allocator out of 48 (Thompson samples 0/1/5/9, entropy floors and base temperatures that make the
   bisection run or not, each with half its other options drawn from values that take their branches). Counted:
   sizes not bit-identical, other fields (state, binding, message, diagnostics, expected PnL) different,
   generators left in different states. A tenth of the problems also go through the two-kernel path
   with ``rng.gamma`` drawn in Python (``numpy_draws=True``). All counts must be 0.
2. **Speed**, on 2000 sides of the default allocator at 10 levels (caps and minimum orders as in the identity set),
   per call, best of 5 interleaved passes, in this one process: the Python allocator, :func:`allocate_fast` (an
   ``AllocationResult`` out), :func:`entropy_allocate_arrays` (arrays out, with and without its dtype checks), and
   the compiled kernel in a compiled loop (no Python in between). The ratio is Python over arrays out.
3. **Why NumPy's exp/log/power loops**: the fraction of inputs on which NumPy's ``exp``/``log``/``x ** 1.5``
   differ from libm's (what numba's ``math.exp``/``math.log``/``**`` call): non-zero on CPUs where NumPy dispatches
   to its AVX-512 loops.
4. **Stealth kernels**: ``--problems / 10`` random sides through ``stealth.dirichlet_sizes`` and
   ``stealth.posterior_curves`` and their kernels from two generators of one seed (sizes, draws and generators must
   be identical), and per-call µs of both at 10 levels.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numba as nb
import numpy as np

from _machine import machine, print_machine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from hyper_make.allocate import EntropyAllocator, EntropyState
from hyper_make.fast._entropy import (
    NUMPY_LOOPS,
    allocate_fast,
    bitgen_table,
    entropy_allocate_arrays,
    entropy_allocate_kernel,
    entropy_params,
)
from hyper_make.fast._stealth_kernels import dirichlet_sizes_fast, posterior_curves_fast
from hyper_make.stealth import StealthConfig, dirichlet_sizes, posterior_curves
from test_fast_entropy import random_problem
from test_fast_stealth import side as stealth_side


def same(a, b) -> tuple[bool, bool]:
    """(sizes bit-identical, every other field equal) of two AllocationResults."""
    pnl_same = a.expected_pnl_usd == b.expected_pnl_usd or (
        np.isnan(a.expected_pnl_usd) and np.isnan(b.expected_pnl_usd)
    )
    rest = (a.state, a.binding, a.message, a.diagnostics) == (b.state, b.binding, b.message, b.diagnostics)
    return bool(np.array_equal(a.sizes, b.sizes)), bool(rest and pnl_same)


def other_options(gen: np.random.Generator) -> dict:
    """The allocator's other options: each at its default or, half the time, one of ``OTHER_VALUES``."""
    return {k: v[int(gen.integers(len(v)))] for k, v in OTHER_VALUES.items() if gen.random() < 0.5}


#: values that take the options' branches (n·f >= 1: uniform shares; no adaptation; a prior that dominates; ...)
OTHER_VALUES = {
    "min_allocation_floor": (0.0, 0.02, 0.1, 0.5, 1.0),
    "adaptive_temperature": (False, True),
    "max_temp_multiplier": (1.0, 3.0, 10.0),
    "dirichlet_prior": (0.01, 0.5, 50.0),
    "entropy_smoothing": (0.0, 0.8, 0.99),
    "initial_entropy_target": (0.0, 2.0, 5.0),
    "as_confidence": (0.0, 0.7, 1.0),
    "min_touch_ev_bps": (-5.0, 0.01, 2.0),
    "min_notional_soft_frac": (0.0, 0.5, 1.0),
}


def identity(n_problems: int, seed: int = 20261201) -> dict:
    """Mismatch counts over ``n_problems`` random sides (see the module docstring)."""
    gen = np.random.default_rng(seed)
    allocators = [
        EntropyAllocator(thompson_samples=s, min_entropy=h, base_temperature=t, **other_options(gen))
        for s in (0, 1, 5, 9)
        for h in (0.0, 1.5, 3.5)
        for t in (0.01, 0.3, 1.0, 4.0)
    ]
    counts = {"sizes_differ": 0, "fields_differ": 0, "rng_differ": 0, "numpy_draws_checked": 0, "numpy_draws_differ": 0}
    bound = 0
    for k in range(n_problems):
        alloc = allocators[int(gen.integers(len(allocators)))]
        prob = random_problem(gen, int(gen.integers(0, 41)))
        if gen.random() < 0.5:
            prob = dataclasses.replace(prob, state=EntropyState(float(gen.uniform(0.0, 4.0))))
        s = int(gen.integers(2**63))
        r_ref, r_fast = np.random.default_rng(s), np.random.default_rng(s)
        ref = alloc.allocate(prob, r_ref)
        fast = allocate_fast(alloc, prob, r_fast)
        sizes_ok, rest_ok = same(ref, fast)
        counts["sizes_differ"] += not sizes_ok
        counts["fields_differ"] += not rest_ok
        after = r_ref.random()
        counts["rng_differ"] += after != r_fast.random()
        bound += bool(ref.diagnostics.get("floor_bound", False))
        if k % 10 == 0:
            r_np = np.random.default_rng(s)
            slow = allocate_fast(alloc, prob, r_np, numpy_draws=True)
            counts["numpy_draws_checked"] += 1
            counts["numpy_draws_differ"] += (not all(same(ref, slow))) or (r_np.random() != after)
    return {"problems": n_problems, "entropy_floor_bound": bound, **counts}


@nb.njit(cache=True)
def _compiled_loop(params, sides, budgets, caps, mins, prev, bitgen, loops, reps):  # type: ignore[no-untyped-def]
    """``reps`` passes of the kernel over the sides, all in compiled code; returns the sum of sizes (coins)."""
    total = 0.0
    for _ in range(reps):
        for i in range(sides.shape[0]):
            out = entropy_allocate_kernel(
                params, sides[i, 0], sides[i, 1], sides[i, 2], sides[i, 3], sides[i, 4, 0], budgets[i], caps[i],
                mins[i], 1.0, 1.0, 0.0, prev, bitgen, loops,
            )  # fmt: skip
            total += out[0].sum()
    return total


@nb.njit(cache=True)
def _libm(x, which):  # type: ignore[no-untyped-def]
    """``math.exp`` (0), ``math.log`` (1) or ``x ** 1.5`` (2) elementwise, compiled: libm's functions, as numba
    calls them."""
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        if which == 0:
            out[i] = math.exp(x[i])
        elif which == 1:
            out[i] = math.log(x[i])
        else:
            out[i] = x[i] ** 1.5
    return out


def libm_differences(n: int = 1_000_000, seed: int = 3) -> dict:
    """Fractions of inputs where NumPy's exp/log/power differ from libm's (numba's): exp on the softmax's range
    ``[-700, 0]``, log on ``(0, 1]`` (shares), ``s ** 1.5`` (the impact term at β = 0.5) on sizes in ``[0, 100]``."""
    gen = np.random.default_rng(seed)
    x = gen.uniform(-700.0, 0.0, n)
    q = gen.uniform(1e-9, 1.0, n)
    sizes = gen.uniform(0.0, 100.0, n)
    return {
        "inputs": n,
        "exp_differ_frac": float(np.mean(np.exp(x) != _libm(x, 0))),
        "log_differ_frac": float(np.mean(np.log(q) != _libm(q, 1))),
        "pow_1_5_differ_frac": float(np.mean(sizes**1.5 != _libm(sizes, 2))),
    }


def speed(n_sides: int = 2000, n_levels: int = 10, seed: int = 7) -> dict:
    """Per-call µs of the Python allocator and the compiled paths on ``n_sides`` default sides."""
    alloc = EntropyAllocator()
    params = entropy_params(alloc)
    gen = np.random.default_rng(seed)
    probs = []
    while len(probs) < n_sides:
        p = random_problem(gen, n_levels)
        if p.budget_coins > 0:
            probs.append(
                dataclasses.replace(
                    p, regime=dataclasses.replace(p.regime, toxicity=1.0, vol_ratio=1.0, cascade_severity=0.0)
                )
            )
    args = [
        (
            params, p.curves.fill_prob, p.curves.capture_usd, p.curves.inventory, p.curves.adverse_usd,
            float(p.curves.mid_usd), float(p.budget_coins), p.caps_coins, p.min_size_coins, 1.0, 1.0, 0.0, 2.0,
        )
        for p in probs
    ]  # fmt: skip
    rng = np.random.default_rng(1)

    def one_pass(fn) -> float:
        t0 = time.perf_counter_ns()
        for p, a in zip(probs, args, strict=True):
            fn(p, a)
        return (time.perf_counter_ns() - t0) / len(probs) / 1e3

    fns = {
        "python": lambda p, a: alloc.allocate(p, rng),
        "allocate_fast": lambda p, a: allocate_fast(alloc, p, rng),
        "arrays": lambda p, a: entropy_allocate_arrays(*a, rng),
        "arrays_unchecked": lambda p, a: entropy_allocate_arrays(*a, rng, check=False),
    }
    bitgen = bitgen_table(rng)
    for fn in fns.values():
        fn(probs[0], args[0])  # warm (compiles on first use)
    # passes interleaved, best of 5 each: a load change on the shared machine hits every path alike
    best = dict.fromkeys(fns, np.inf)
    for _ in range(5):
        for name, fn in fns.items():
            best[name] = min(best[name], one_pass(fn))
    py, fast, arrays, unchecked = best["python"], best["allocate_fast"], best["arrays"], best["arrays_unchecked"]
    sides = np.zeros((n_sides, 5, n_levels))
    for i, p in enumerate(probs):
        c = p.curves
        sides[i, :4] = c.fill_prob, c.capture_usd, c.inventory, c.adverse_usd
        sides[i, 4, 0] = c.mid_usd
    budgets = np.array([p.budget_coins for p in probs])
    caps = np.array([p.caps_coins for p in probs])
    mins = np.array([p.min_size_coins for p in probs])
    loop_args = (params, sides, budgets, caps, mins, 2.0, bitgen, NUMPY_LOOPS)
    _compiled_loop(*loop_args, 1)
    compiled = np.inf
    for _ in range(5):
        t0 = time.perf_counter_ns()
        _compiled_loop(*loop_args, 2)
        compiled = min(compiled, (time.perf_counter_ns() - t0) / (2 * n_sides) / 1e3)
    return {
        "sides": n_sides,
        "levels": n_levels,
        "python_us": py,
        "allocate_fast_us": fast,
        "arrays_out_us": arrays,
        "arrays_out_unchecked_us": unchecked,
        "compiled_loop_us": compiled,
        "ratio_python_over_arrays": py / arrays,
        "ratio_python_over_arrays_unchecked": py / unchecked,
        "ratio_python_over_allocate_fast": py / fast,
        "ratio_python_over_compiled_loop": py / compiled,
    }


def stealth(n_sides: int, seed: int = 11) -> dict:
    """Identity of the stealth kernels with ``stealth.dirichlet_sizes`` / ``posterior_curves`` on ``n_sides``
    random sides (``tests/test_fast_stealth.py``'s generator), and per-call µs of both at 10 levels."""
    gen = np.random.default_rng(seed)
    lots = (1e-5, 0.001, 1.0, 0.3)
    conc = (0.05, 1.0, 100.0, 1e6)
    counts = {"sides": n_sides, "dirichlet_differ": 0, "posterior_differ": 0, "rng_differ": 0}
    for _ in range(n_sides):
        prob, sizes = stealth_side(gen, int(gen.integers(0, 31)), lots[int(gen.integers(4))])
        k = conc[int(gen.integers(4))]
        config = StealthConfig(
            mode="posterior", edge_sd_frac=float(gen.uniform(0, 1)), impact_sd_log=float(gen.uniform(0, 1))
        )
        s = int(gen.integers(2**63))
        r_ref, r_fast = np.random.default_rng(s), np.random.default_rng(s)
        counts["dirichlet_differ"] += not np.array_equal(
            dirichlet_sizes(sizes, prob, k, r_ref), dirichlet_sizes_fast(sizes, prob, k, r_fast)
        )
        ref, fast = posterior_curves(prob.curves, config, r_ref), posterior_curves_fast(prob.curves, config, r_fast)
        counts["posterior_differ"] += not (np.array_equal(ref[0], fast[0]) and np.array_equal(ref[1], fast[1]))
        counts["rng_differ"] += r_ref.random() != r_fast.random()
    probs = [stealth_side(gen, 10, 1e-5) for _ in range(2000)]
    rng = np.random.default_rng(2)
    config = StealthConfig(mode="posterior")

    fns = {
        "dirichlet_python_us": lambda p, sz: dirichlet_sizes(sz, p, 100.0, rng),
        "dirichlet_fast_us": lambda p, sz: dirichlet_sizes_fast(sz, p, 100.0, rng),
        "posterior_python_us": lambda p, sz: posterior_curves(p.curves, config, rng),
        "posterior_fast_us": lambda p, sz: posterior_curves_fast(p.curves, config, rng),
    }
    timing = dict.fromkeys(fns, np.inf)
    for fn in fns.values():
        fn(*probs[0])
    for _ in range(5):  # interleaved passes, best of 5 each
        for name, fn in fns.items():
            t0 = time.perf_counter_ns()
            for p, sz in probs:
                fn(p, sz)
            timing[name] = min(timing[name], (time.perf_counter_ns() - t0) / len(probs) / 1e3)
    return {**counts, **timing}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=100_000, help="random sides in the identity check")
    ap.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = ap.parse_args()
    info = machine()
    t0 = time.perf_counter()
    ident = identity(args.problems)
    ident["seconds"] = time.perf_counter() - t0
    sp = speed()
    libm = libm_differences()
    st = stealth(max(args.problems // 10, 1))
    ok = all(ident[k] == 0 for k in ("sizes_differ", "fields_differ", "rng_differ", "numpy_draws_differ"))
    ok = ok and all(st[k] == 0 for k in ("dirichlet_differ", "posterior_differ", "rng_differ"))
    if args.json:
        print(
            json.dumps(
                {
                    "machine": info,
                    "identity": ident,
                    "speed": sp,
                    "numpy_vs_libm": libm,
                    "stealth": st,
                    "identical": ok,
                },
                default=float,
            )
        )
    else:
        print_machine(info)
        print(
            f"identity: {ident['problems']} sides ({ident['entropy_floor_bound']} with the entropy floor bound), "
            f"sizes differ {ident['sizes_differ']}, other fields {ident['fields_differ']}, generators "
            f"{ident['rng_differ']}; rng.gamma path {ident['numpy_draws_differ']} of {ident['numpy_draws_checked']} "
            f"({ident['seconds']:.1f} s)"
        )
        print(
            f"speed, {sp['levels']} levels, µs per call: python {sp['python_us']:.1f}, allocate_fast "
            f"{sp['allocate_fast_us']:.2f}, arrays out {sp['arrays_out_us']:.2f} (unchecked "
            f"{sp['arrays_out_unchecked_us']:.2f}), compiled loop "
            f"{sp['compiled_loop_us']:.2f}; python / arrays out = {sp['ratio_python_over_arrays']:.1f}x"
        )
        print(
            f"NumPy vs libm on {libm['inputs']} inputs: exp differs on {100 * libm['exp_differ_frac']:.2f} %, "
            f"log on {100 * libm['log_differ_frac']:.2f} %, x ** 1.5 on {100 * libm['pow_1_5_differ_frac']:.2f} %"
        )
        print(
            f"stealth: {st['sides']} sides, Dirichlet sizes differ {st['dirichlet_differ']}, posterior draws "
            f"{st['posterior_differ']}, generators {st['rng_differ']}; 10 levels, µs per call: Dirichlet "
            f"{st['dirichlet_python_us']:.1f} -> {st['dirichlet_fast_us']:.2f}, posterior draw "
            f"{st['posterior_python_us']:.1f} -> {st['posterior_fast_us']:.2f}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
