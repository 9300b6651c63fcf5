"""Ray executor against local processes on the same regime grid: overhead, scaling from 1 to 2 workers, and the
per-task cost of the cluster round trip.

Run: ``python benchmarks/bench_cluster.py [--paths 2] [--horizon-s 600] [--json]`` (needs the ``cluster`` extra;
about 4 minutes on the shared 2-core machine). It starts its own cluster on this machine
(:class:`hyper_make.batch.localcluster.LocalCluster`: a head of 1 CPU, then one worker node of 1 CPU) and times
``run_grid`` on the product axes of ``examples/grid.toml`` × 2 allocators:

* local, 1 and 2 worker processes (``LocalExecutor``);
* Ray, the head alone (1 CPU) and head + worker node (2 CPUs) (``RayExecutor``), each batch from the connection
  on, the cluster already running; Ray and the 2-process pool keep their workers between batches, so each one's
  first batch also starts them (reported on its own);
* each setting ``--repeat`` times, local and Ray interleaved (the machine is shared: a burst of load hits both),
  the best kept; overhead = Ray best / local best − 1 at the same number of workers; every batch's records
  compared (same seeds, the same bytes in ``runs.jsonl``);
* round trip: 200 tasks that do nothing, per task (ms), local pool of 2 against Ray on 2 CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

from _machine import machine
from hyper_make.batch import LocalExecutor, RayExecutor
from hyper_make.batch.localcluster import LocalCluster
from hyper_make.sim.config import SimConfig, with_overrides
from hyper_make.sim.grid import RunLog, manifest, parse_grid, plan_runs, run_grid

ROOT = Path(__file__).resolve().parents[1]
ALLOCATORS = ["impact", "flat"]


def _plan(paths: int, horizon_s: float):
    raw = tomllib.loads((ROOT / "examples" / "grid.toml").read_text(encoding="utf-8"))
    grid = parse_grid({"grid": {"axes": raw["grid"]["axes"]}}, "examples/grid.toml [grid.axes]")
    plan = plan_runs(grid, with_overrides(SimConfig(), horizon_s=horizon_s), allocators=ALLOCATORS, paths=paths,
                     seed=0)  # fmt: skip
    return grid, plan


def batch(executor, paths: int, horizon_s: float) -> tuple[float, list[str]]:
    """Wall time (s) of the grid on ``executor`` and its records (sorted lines of runs.jsonl)."""
    grid, plan = _plan(paths, horizon_s)
    with tempfile.TemporaryDirectory() as tmp:
        log = RunLog(Path(tmp), manifest(grid, plan, allocators=ALLOCATORS, paths=paths, seed=0), (p.key for p in plan))
        t0 = time.perf_counter()
        run_grid(plan, log, executor=executor)
        wall = time.perf_counter() - t0
        return wall, sorted((Path(tmp) / "runs.jsonl").read_text().splitlines())


def _noop(x: int) -> int:
    return x


def round_trip(executor, n: int = 200) -> float:
    """ms per task of ``n`` tasks that do nothing (after a warm-up batch)."""
    list(executor.imap_unordered(_noop, range(20)))
    t0 = time.perf_counter()
    list(executor.imap_unordered(_noop, range(n)))
    return (time.perf_counter() - t0) / n * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=2)
    ap.add_argument("--horizon-s", type=float, default=600.0)
    ap.add_argument("--repeat", type=int, default=3, help="timings per setting (the best is kept)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    args = ap.parse_args()
    info = machine()
    runs = len(_plan(args.paths, args.horizon_s)[1])
    walls: dict[str, list[float]] = {k: [] for k in ("local_1", "ray_1", "local_2", "ray_2")}
    records: list[list[str]] = []

    def timed(key: str, executor) -> None:
        wall, rec = batch(executor, args.paths, args.horizon_s)
        walls[key].append(wall)
        records.append(rec)

    res: dict[str, Any] = {}
    with LocalCluster() as cluster, LocalExecutor(2) as pool:
        cluster.start(worker=False)  # the head alone: 1 CPU
        for _ in range(args.repeat):  # interleaved: a burst of load from other processes hits both
            timed("local_1", LocalExecutor(1))
            timed("ray_1", RayExecutor(cluster.address))
        cluster.start_worker()  # + a worker node: 2 CPUs
        cluster.wait_nodes(2)
        for _ in range(args.repeat):  # both keep their workers between batches: the first batch starts them
            timed("local_2", pool)
            timed("ray_2", RayExecutor(cluster.address))
        res["ray_round_trip_ms"] = round_trip(RayExecutor(cluster.address))
    res["local_round_trip_ms"] = round_trip(LocalExecutor(2))
    best = {k: min(v) for k, v in walls.items()}
    res |= {"walls_s": walls, "best_s": best, "ray_first_1_s": walls["ray_1"][0],
            "local_first_2_s": walls["local_2"][0],
            "overhead_1": best["ray_1"] / best["local_1"] - 1.0,
            "overhead_2": best["ray_2"] / best["local_2"] - 1.0,
            "scaling_local": best["local_1"] / best["local_2"],
            "scaling_ray": best["ray_1"] / best["ray_2"]}  # fmt: skip
    same = all(r == records[0] for r in records)
    out = {"machine": info, "allocators": ALLOCATORS, "paths": args.paths, "horizon_s": args.horizon_s, "runs": runs,
           "repeat": args.repeat, "identical_records": same, **res, "load_avg_1m_end": os.getloadavg()[0]}  # fmt: skip
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"machine: {info['cpu']}, {info['cpus']} CPUs; date: {info['date_utc']} UTC")
    print(f"grid: {runs} runs of {args.horizon_s:g} s (examples/grid.toml axes × {ALLOCATORS} × {args.paths} paths)")
    print(
        f"best of {args.repeat} (interleaved): local 1 worker {best['local_1']:.1f} s, 2 workers "
        f"{best['local_2']:.1f} s (×{res['scaling_local']:.2f}); ray 1 CPU {best['ray_1']:.1f} s, 2 CPUs "
        f"{best['ray_2']:.1f} s (×{res['scaling_ray']:.2f}); the first ray batch (workers starting) "
        f"{res['ray_first_1_s']:.1f} s"
    )
    print(f"overhead of Ray: {res['overhead_1']:+.1%} at 1 worker, {res['overhead_2']:+.1%} at 2; records identical: "
          f"{same}")  # fmt: skip
    print(f"round trip per empty task: ray {res['ray_round_trip_ms']:.2f} ms, local pool "
          f"{res['local_round_trip_ms']:.2f} ms")  # fmt: skip
    print(f"load average at the end: {out['load_avg_1m_end']:.2f} (other processes share the machine)")


if __name__ == "__main__":
    main()
