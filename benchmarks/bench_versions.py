"""End-to-end speed of this checkout against an earlier commit, as ratios measured in one run.

Run: ``python benchmarks/bench_versions.py --base REV`` (a few minutes; ``--json`` for one JSON object).

``REV``'s ``src/`` is exported with ``git archive`` into a temporary folder; the two versions then run the same
measurements in alternating child processes (``PYTHONPATH`` picks the version), ``--rounds`` times each, and the
minimum CPU time of each version is kept (the least disturbed run on a shared machine). Measured:

* ``sim <allocator>``: ``run_path`` of the default simulator preset, 300 simulated s, seeds 0-4 (median), in ms
  of CPU per simulated second (the strategy rebuilds its ladder every 1 s through the refresh core);
* ``replay flat``: ``replay`` of ``../shared/data/binance-usdm-btcusdt-20240808.gz`` with a 20-level ladder a side
  refreshed every 100 ms, risk-averse queue, 50 ms latency, in CPU seconds (skipped when the file is absent).

Ratio = this checkout / base: below 1 is faster. Both versions warm their numba kernels before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "binance-usdm-btcusdt-20240808.gz"
SIM_ALLOCATORS = ("entropy", "impact", "flat")
SIM_HORIZON_S = 300.0


def _worker_sim() -> dict[str, float]:
    from hyper_make.sim.config import SimConfig, with_overrides
    from hyper_make.sim.strategy import run_path

    cfg = with_overrides(SimConfig(), horizon_s=SIM_HORIZON_S)
    out = {}
    for name in SIM_ALLOCATORS:
        run_path(cfg, name, 0)  # compile or load the numba cache
        ts = []
        for seed in range(5):
            t0 = time.process_time()
            run_path(cfg, name, seed)
            ts.append((time.process_time() - t0) / SIM_HORIZON_S * 1e3)
        out[f"sim {name} (ms CPU per simulated s)"] = statistics.median(ts)
    return out


def _worker_replay() -> dict[str, float]:
    from hyper_make.allocate import make_allocator
    from hyper_make.backtest import ReplayConfig, replay
    from hyper_make.config import AppConfig
    from hyper_make.data import load_events
    from hyper_make.ladder import LadderConfig
    from hyper_make.levels import GridConfig

    ev, _ = load_events(DATA)
    app = AppConfig(ladder=LadderConfig(grid=GridConfig(n_levels=20), level_cap_frac=1.0))
    cfg = ReplayConfig(refresh_s=0.1, latency_ms=50.0, queue="risk_averse", warmup_s=1.0)
    replay(ev[: ev.size // 20], make_allocator("flat"), app=app, config=cfg)
    ts = []
    for _ in range(2):
        t0 = time.process_time()
        replay(ev, make_allocator("flat"), app=app, config=cfg)
        ts.append(time.process_time() - t0)
    return {"replay flat, 20 levels, 100 ms (CPU s)": min(ts)}


def _run(src: Path, what: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    res = subprocess.run(
        [sys.executable, __file__, "--worker", what], env=env, capture_output=True, text=True, check=False
    )
    if res.returncode != 0:
        raise SystemExit(f"worker {what!r} on {src} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _export(rev: str, into: Path) -> Path:
    tar = into / "src.tar"
    with tar.open("wb") as fh:
        subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], stdout=fh, check=True)
    with tarfile.open(tar) as tf:
        tf.extractall(into, filter="data")
    return into / "src"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", help="git revision to compare against (e.g. a tag or commit)")
    ap.add_argument("--rounds", type=int, default=3, help="alternations per version (>= 1)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--worker", choices=("sim", "replay"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(_worker_sim() if args.worker == "sim" else _worker_replay()))
        return
    if not args.base:
        ap.error("--base REV is required")
    if args.rounds < 1:
        ap.error(f"--rounds must be >= 1; got {args.rounds}")
    sys.path.insert(0, str(Path(__file__).parent))
    from _machine import machine

    kinds = ["sim"] + (["replay"] if DATA.exists() else [])
    if "replay" not in kinds:
        print(f"note: {DATA.name} not found beside the repository; replay skipped", file=sys.stderr)
    best: dict[str, dict[str, float]] = {"base": {}, "head": {}}
    with tempfile.TemporaryDirectory() as tmp:
        versions = {"base": _export(args.base, Path(tmp)), "head": ROOT / "src"}
        for r in range(args.rounds):
            for what in kinds:
                for v, src in versions.items():
                    for k, x in _run(src, what).items():
                        best[v][k] = min(x, best[v].get(k, float("inf")))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    head_rev = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    rows = {k: {"base": best["base"][k], "head": best["head"][k], "ratio": best["head"][k] / best["base"][k]}
            for k in best["head"]}  # fmt: skip
    report = {"machine": machine(), "base": args.base, "head": head_rev, "rounds": args.rounds, "results": rows}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    m = report["machine"]
    print(f"{m['cpu']}, {m['cpus']} CPUs, {m['platform']}, Python {m['python']}; {m['date_utc']} UTC")
    print(f"base {args.base} vs head {head_rev}, min of {args.rounds} alternating runs each")
    for k, row in rows.items():
        print(f"  {k:<44} base {row['base']:8.3f}  head {row['head']:8.3f}  ratio {row['ratio']:.3f}")


if __name__ == "__main__":
    main()
