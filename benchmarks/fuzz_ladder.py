"""Fuzz the whole ladder pipeline for a fixed time: random valid markets × every registered allocator.

Run: ``python benchmarks/fuzz_ladder.py [--seconds 600] [--seed 1] [--json out.json]``.

The cases and the independent rule checks are ``tests/ladder_fuzz.py`` (the CI test runs the same for 3 s):
mid 1e-4 to 1e6 USD, ``szDecimals`` 0 to 6, position limits of 1 USD to 1e8 USD, margins 1 to 1e9 USD, 1 to 40
levels per side with every spacing and touch, every fill, adverse-selection and impact model (zero daily volume
one case in ten), stealth off / Dirichlet / posterior. Each ladder is checked with ``decimal`` arithmetic (valid
tick and 5 significant figures, lots, minimum notional, no duplicate or crossed prices, behind the opposite best,
side total within the budget recomputed from the snapshot, nothing NaN, JSON without NaN), and each build must
finish within 5 s. Prints builds, documented refusals (side budgets above 2^53 lots, stealth set twice),
failures with the ``(seed, index)`` that reproduces them (``ladder_fuzz.case(seed, index)``), and the slowest
build.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _machine import machine, print_machine, write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import ladder_fuzz
from hyper_make import warm_up


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="wall time to fuzz for (default 600)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=0, help="first case index (to continue an earlier run)")
    ap.add_argument("--json", help="write the results to this JSON file")
    args = ap.parse_args()
    info = machine()
    print_machine(info)
    load_s = warm_up()
    stats = ladder_fuzz.run(args.seconds, args.seed, start=args.start)
    print(f"kernel load {load_s:.2f} s (before the fuzz)")
    print(
        f"{stats.builds} builds in {args.seconds:g} s (seed {args.seed}), {stats.refusals} documented refusals, "
        f"{len(stats.failures)} failures; slowest build {stats.slowest_s * 1e3:.1f} ms "
        f"(case {stats.slowest_case[1]}, {stats.slowest_case[2]})"
    )
    print("builds per allocator: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.per_allocator.items())))
    for seed, index, name, what in stats.failures[:20]:
        print(f"  FAIL ladder_fuzz.case({seed}, {index}) with {name!r}: {what}")
    write_json(
        args.json,
        {
            "machine": info,
            "seconds": args.seconds,
            "seed": args.seed,
            "builds": stats.builds,
            "refusals": stats.refusals,
            "failures": [list(f) for f in stats.failures],
            "slowest_build_s": stats.slowest_s,
            "per_allocator": stats.per_allocator,
        },
    )
    if stats.failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
