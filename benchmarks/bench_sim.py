"""Simulator speed and memory: market events per second on one core, and memory against run length.

Run: ``python benchmarks/bench_sim.py [--json]`` (about a minute). Prints the machine, date and medians of repeats.

1. Core: the numba event loop with a resting 20-order ladder (no strategy calls), events/s on one core.
2. End to end: ``run_path`` with the strategy rebuilding the ladder every 1 s refresh, ``impact`` and ``entropy``, in
   three loops: ``compiled`` (the default: market and refresh core in one numba call per path, ``sim/_loop.py``),
   ``python`` (the refresh core in Python, the ladder on the compiled fast path) and ``reference`` (Python refresh
   core, Python ladder, ``quoter.fast_path = false``): market events per CPU-second. ``--horizon`` sets the path's
   length (default 900 s, the simulator's default): a path's fixed set-up cost is part of the figure.
3. Memory: tracemalloc peak of ``run_path`` for two run lengths (4x apart); flat means the ratio stays ~1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import time
import tracemalloc
from dataclasses import replace

from _machine import cpu_name, machine
from hyper_make.sim import market as mk
from hyper_make.sim.config import MarketConfig, SimConfig, with_overrides
from hyper_make.sim.market import Market
from hyper_make.sim.strategy import run_path


def core_rate(sim_seconds: float, seed: int) -> tuple[float, float]:
    """Market events per second of wall time and per second of this process's CPU time."""
    m = Market(MarketConfig(), seed)
    f0 = int(m.s[mk.S_F])
    for k in range(1, 11):
        m.place(1, f0 - 3 * k, 0.02)
        m.place(-1, f0 + 3 * k, 0.02)
    m.run_until(0.1)
    t0, c0 = time.perf_counter(), time.process_time()
    n = m.run_until(sim_seconds)
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    ap.add_argument("--horizon", type=float, default=900.0, help="simulated seconds per end-to-end path")
    args = ap.parse_args()
    say = (lambda *_: None) if args.json else print
    info = machine()
    say(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}")
    say(f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}; python {platform.python_version()}")
    core_rate(10.0, 0)  # compile (or load the numba cache) before timing
    runs = [core_rate(20_000.0, s) for s in range(5)]
    wall = [w for w, _ in runs]
    cpu = [c for _, c in runs]
    say(f"core event loop: median {statistics.median(cpu):,.0f} market events per CPU-second on one core "
        f"(min {min(cpu):,.0f}, max {max(cpu):,.0f}); per wall-second {statistics.median(wall):,.0f} "
        f"(5 runs of 20,000 simulated s; wall time counts other processes on a shared machine)")  # fmt: skip
    say(f"load average at the end: {os.getloadavg()[0]:.2f}")

    base = with_overrides(SimConfig(), horizon_s=args.horizon)
    e2e: dict[str, dict[str, float]] = {}
    for name in ("impact", "entropy"):
        for path in ("compiled", "python", "reference"):
            quoter = replace(base.strategy.quoter, fast_path=path != "reference")
            cfg = with_overrides(base, quoter=quoter)
            compiled = path == "compiled"
            run_path(cfg, name, 0, compiled=compiled)  # compile or load the kernels, first-call costs
            runs = []
            for s in range(3):
                t0, c0 = time.perf_counter(), time.process_time()
                r = run_path(cfg, name, s, compiled=compiled)
                wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
                runs.append((r.events / wall_s, r.events / cpu_s, cpu_s / args.horizon))
            key = f"{name}/{path}"
            e2e[key] = {
                "events_per_s": statistics.median(x for x, _, _ in runs),
                "events_per_cpu_s": statistics.median(y for _, y, _ in runs),
                "cpu_ms_per_simulated_s": statistics.median(z for _, _, z in runs) * 1e3,
            }
            say(f"end to end ({key}, ladder rebuilt every {cfg.strategy.refresh_s:g} s): median "
                f"{e2e[key]['events_per_cpu_s']:,.0f} market events per CPU-second "
                f"({e2e[key]['cpu_ms_per_simulated_s']:.2f} ms of CPU per simulated second)")  # fmt: skip
    ratios = {}
    for name in ("impact", "entropy"):
        c = e2e[f"{name}/compiled"]["events_per_cpu_s"]
        f, r = e2e[f"{name}/python"]["events_per_cpu_s"], e2e[f"{name}/reference"]["events_per_cpu_s"]
        core = statistics.median(cpu)
        ratios[name] = {"compiled_over_python": c / f, "compiled_over_reference": c / r, "compiled_over_core": c / core}
        say(
            f"  {name}: compiled loop {c / f:.1f}x the Python loop (fast ladder) and {c / r:.1f}x the reference's "
            f"events per CPU-second; {c / core:.3f}x the core loop alone"
        )

    peaks = {}
    for horizon in (300.0, 1200.0):
        c = with_overrides(SimConfig(), horizon_s=horizon)
        tracemalloc.start()
        run_path(c, "entropy", 1, record=True)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peaks[horizon] = peak
        say(f"memory: horizon {horizon:>6g} s -> tracemalloc peak {peak / 1e6:.2f} MB")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    say(f"memory ratio (4x longer run): {peaks[1200.0] / peaks[300.0]:.2f}; process max RSS {rss_mb:.0f} MB")
    if args.json:
        print(json.dumps({
            "machine": info,
            "core_events_per_cpu_s": {"median": statistics.median(cpu), "min": min(cpu), "max": max(cpu)},
            "core_events_per_wall_s_median": statistics.median(wall),
            "end_to_end_horizon_s": args.horizon,
            "end_to_end": e2e,
            "ratios": ratios,
            "tracemalloc_peak_mb": {f"{h:g}s": p / 1e6 for h, p in peaks.items()},
            "memory_ratio_4x": peaks[1200.0] / peaks[300.0],
            "max_rss_mb": rss_mb,
        }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
