"""Regime grid speed and memory: ``simulate --grid``'s batch (plan, local pool, streamed records) timed end to end.

Run: ``python benchmarks/bench_grid.py [--paths 16] [--horizon-s 600] [--workers N] [--json]`` (8 minutes on the
shared 2-core machine on 2026-12-01 with the defaults: the issue's 3×3 grid × 5 allocators × 16 paths of 600 s,
plus a quarter of it first). The grid is the product axes
of ``examples/grid.toml`` (its explicit regimes left out). A quarter-size batch runs first, so that the driver's
peak RSS after it and after the full batch show whether the driver's memory grows with the number of runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
import tomllib
from pathlib import Path

from _machine import machine
from hyper_make.batch import LocalExecutor
from hyper_make.sim.config import SimConfig, with_overrides
from hyper_make.sim.grid import RunLog, manifest, parse_grid, plan_runs, run_grid

ROOT = Path(__file__).resolve().parents[1]
ALLOCATORS = ["impact", "impact-posterior", "entropy", "greedy", "flat"]


def batch(paths: int, horizon_s: float, workers: int | None) -> dict[str, float]:
    """Run the grid once into a fresh folder; wall time (s), runs, and the driver's peak RSS after it (MB)."""
    raw = tomllib.loads((ROOT / "examples" / "grid.toml").read_text(encoding="utf-8"))
    grid = parse_grid({"grid": {"axes": raw["grid"]["axes"]}}, "examples/grid.toml [grid.axes]")
    base = with_overrides(SimConfig(), horizon_s=horizon_s)
    plan = plan_runs(grid, base, allocators=ALLOCATORS, paths=paths, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        log = RunLog(Path(tmp), manifest(grid, plan, allocators=ALLOCATORS, paths=paths, seed=0), (p.key for p in plan))
        t0 = time.perf_counter()
        run_grid(plan, log, executor=LocalExecutor(workers))
        wall = time.perf_counter() - t0
        size = (Path(tmp) / "runs.jsonl").stat().st_size
    return {
        "regimes": len(grid.regimes),
        "runs": len(plan),
        "wall_s": wall,
        "runs_per_s": len(plan) / wall,
        "records_kb": size / 1e3,
        "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
        "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e3,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=16)
    ap.add_argument("--horizon-s", type=float, default=600.0)
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: every CPU)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    args = ap.parse_args()
    info = machine()
    small = batch(max(1, args.paths // 4), args.horizon_s, args.workers)
    full = batch(args.paths, args.horizon_s, args.workers)
    out = {"machine": info, "allocators": ALLOCATORS, "horizon_s": args.horizon_s,
           "workers": args.workers or os.cpu_count(), "quarter": small, "full": full,
           "load_avg_1m_end": os.getloadavg()[0]}  # fmt: skip
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"machine: {info['cpu']}, {info['cpus']} CPUs; date: {info['date_utc']} UTC; workers {out['workers']}")
    for name, r in (("quarter", small), ("full", full)):
        print(f"{name}: {r['regimes']} regimes × {len(ALLOCATORS)} allocators, {r['runs']} runs of "
              f"{args.horizon_s:g} s in {r['wall_s']:.1f} s ({r['runs_per_s']:.2f} runs/s); records "
              f"{r['records_kb']:.0f} kB; driver peak RSS {r['driver_peak_rss_mb']:.0f} MB, a worker's "
              f"{r['worker_peak_rss_mb']:.0f} MB")  # fmt: skip
    print(f"load average at the end: {out['load_avg_1m_end']:.2f} (other processes share the machine)")


if __name__ == "__main__":
    main()
