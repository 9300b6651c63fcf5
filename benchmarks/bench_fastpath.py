"""The compiled fast path of ``build_ladder``: identity with the reference on random snapshots, and its speed.

Run: ``python benchmarks/bench_fastpath.py [--json] [--cases 100000] [--allocators impact,flat]`` (about 3 ms a
case per allocator on a loaded 2-core machine: ~5 minutes per allocator at the default count).

1. Identity: ``--cases`` random snapshots per allocator (``tests/fast_cases.py``: mid 1e-4 to 1e6 USD,
   ``szDecimals`` 0 to 6, inventory at and over the limits, reserved coins, budgets, rebates, σ, missing volume or a
   profile, every grid, touch, fill and adverse model, stealth modes, minimum-order-binding limits). A case counts as
   identical when the fast path's prices, sizes, levels, the orders' curve terms, the record's diagnostics, state,
   reservation price and the generator's state equal the reference's exactly (or both refuse with the same
   message). Reported per allocator: mismatches, how many cases ran compiled (the rest run the reference inside the
   fast path: ``FastLadder.reason``) and how many rested orders.
2. Speed: one two-sided build of the embedded default market, arrays out (``FastLadder.build``) against the Python
   reference (``build_ladder``) in the same process, blocks of builds alternated so that machine noise hits both;
   the figure is the median over block pairs of the per-pair ratio (target >= 30x; moonshot: within 2x of 3.6 µs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from _machine import machine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import fast_cases
from hyper_make import build_ladder, make_allocator, warm_up
from hyper_make.defaults import default_snapshot, default_spec
from hyper_make.fast import FastLadder
from hyper_make.fast._ladder import compiled_reason

ALL = ("impact", "greedy", "flat", "progression", "impact-dirichlet", "impact-posterior", "entropy", "learned")
SEED = 20261201


def identity(name: str, cases: int, say) -> dict:  # type: ignore[no-untyped-def]
    """Mismatches of the fast path against the reference over ``cases`` random snapshots of allocator ``name``."""
    bad: list[str] = []
    compiled = resting = 0
    t0 = time.perf_counter()
    for i in range(cases):
        fc = fast_cases.fast_case(SEED, i, name)
        is_compiled = not compiled_reason(make_allocator(name), fc.base.config)
        m, rested = fast_cases.check(fc)
        compiled += is_compiled
        resting += is_compiled and rested
        if m:
            bad.append(f"case {i}: {m[:300]}")
        if (i + 1) % 10_000 == 0:
            say(f"  {name}: {i + 1:,} cases, {len(bad)} mismatches ({time.perf_counter() - t0:.0f} s)")
    say(
        f"identity {name:<17}: {len(bad)} mismatches in {cases:,} cases ({compiled:,} compiled, {resting:,} of them "
        f"resting orders) in {time.perf_counter() - t0:.0f} s"
    )
    for line in bad[:5]:
        say(f"    {line}")
    return {"cases": cases, "mismatches": len(bad), "compiled": compiled, "compiled_resting": resting, "first": bad[:5]}


def speed(name: str, blocks: int, say) -> dict:  # type: ignore[no-untyped-def]
    """Median µs per two-sided build of the default market, fast (arrays out) and reference, and their ratio."""
    snap, spec = default_snapshot(), default_spec()
    alloc = make_allocator(name)
    fast = FastLadder(spec, alloc)
    for _ in range(50):
        fast.build(snap)
        build_ladder(snap, spec, alloc)
    n_fast, n_ref = 500, 25
    tf, tr, ratios = [], [], []
    for _ in range(blocks):
        t0 = time.perf_counter_ns()
        for _ in range(n_fast):
            fast.build(snap)
        f = (time.perf_counter_ns() - t0) / n_fast / 1e3
        t0 = time.perf_counter_ns()
        for _ in range(n_ref):
            build_ladder(snap, spec, alloc)
        r = (time.perf_counter_ns() - t0) / n_ref / 1e3
        tf.append(f)
        tr.append(r)
        ratios.append(r / f)
    out = {
        "compiled": fast.compiled,
        "fast_us_median": statistics.median(tf),
        "fast_us_min": min(tf),
        "reference_us_median": statistics.median(tr),
        "ratio_median": statistics.median(ratios),
    }
    say(
        f"speed {name:<17}: fast {out['fast_us_median']:.1f} µs (min {out['fast_us_min']:.1f}), reference "
        f"{out['reference_us_median']:.0f} µs, ratio {out['ratio_median']:.1f}x (median of {blocks} block pairs)"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    ap.add_argument("--cases", type=int, default=100_000, help="random snapshots per allocator (default 1e5)")
    ap.add_argument("--allocators", default=",".join(ALL), help="comma-separated allocators (default: all)")
    ap.add_argument("--blocks", type=int, default=30, help="timed block pairs per allocator (default 30)")
    ap.add_argument("--no-speed", action="store_true", help="the identity check only")
    ap.add_argument("--no-identity", action="store_true", help="the speed ratios only")
    args = ap.parse_args()
    say = (lambda *_: None) if args.json else print
    info = machine()
    say(f"machine: {info['cpu']}, {info['cpus']} CPUs, {info['platform']} (1-min load {info['load_avg_1m']:.2f})")
    say(f"date: {info['date_utc']} UTC; python {info['python']}, numpy {info['numpy']}")
    warm_up()
    names = [n for n in args.allocators.split(",") if n]
    speeds = {} if args.no_speed else {n: speed(n, args.blocks, say) for n in names}
    ident = {} if args.no_identity else {n: identity(n, args.cases, say) for n in names}
    say(f"load average at the end: {__import__('os').getloadavg()[0]:.2f}")
    if args.json:
        print(json.dumps({"machine": info, "seed": SEED, "speed": speeds, "identity": ident}, indent=2))


if __name__ == "__main__":
    main()
