"""Stylised facts of a named simulator preset against a recording, side by side, with the stated tolerances.

Run: ``python benchmarks/stylised_facts.py --preset NAME FILE... [--seed 0] [--horizon-s 600] [--png facts.png]
[--json]``. It reads the recording once (``hyper_make.calibrate.preset.measure``), records ``--horizon-s`` seconds
of the preset's market alone (``hyper_make.sim.recording.record_market``) and measures both with the same code,
then prints the table of ``hyper_make.calibrate.facts.compare`` (``hyper-make calibrate FILE --sim-preset OUT.toml
--facts`` does the same for the preset it has just fitted). It says how far a shipped preset (``thin``, a fitted
one) is from a venue.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

from hyper_make.calibrate.facts import compare, plot_facts
from hyper_make.calibrate.preset import measure, simulated_facts
from hyper_make.errors import HyperMakeError
from hyper_make.sim.config import PRESET_NAMES, PRESETS


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path, metavar="FILE", help="the recording (one run; several parts)")
    ap.add_argument("--preset", required=True, help=f"a simulator preset: {', '.join(PRESETS)}")
    ap.add_argument("--seed", type=int, default=0, help="the simulated path's seed (>= 0)")
    ap.add_argument("--horizon-s", type=float, default=600.0, help="simulated seconds (> 0)")
    ap.add_argument("--png", type=Path, default=None, help="also draw the facts to this PNG")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    a = ap.parse_args()
    if a.preset not in PRESETS:
        print(f"error: '--preset' must be one of {list(PRESETS)} (event-driven presets; {list(PRESET_NAMES)} run "
              f"in simulate); got {a.preset!r}", file=sys.stderr)  # fmt: skip
        return 2
    if not (a.seed >= 0 and math.isfinite(a.horizon_s) and a.horizon_s > 0):
        print(f"error: '--seed' must be >= 0 and '--horizon-s' > 0 s; got {a.seed}, {a.horizon_s}", file=sys.stderr)
        return 2
    try:
        _, real = measure(a.files if len(a.files) > 1 else a.files[0])
        sim = simulated_facts(PRESETS[a.preset].market, seed=a.seed, horizon_s=a.horizon_s)
    except (HyperMakeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = compare(real, sim)
    if a.png is not None:
        plot_facts(real, sim, a.png, title=f"{', '.join(f.name for f in a.files)} vs preset {a.preset}")
    if a.json:
        print(json.dumps({"preset": a.preset, "files": [str(f) for f in a.files],
                          "rows": [dataclasses.asdict(r) for r in rows]}, indent=1, default=float))  # fmt: skip
        return 0
    print(f"{', '.join(f.name for f in a.files)} ({real.duration_s:.0f} s) vs preset {a.preset} ({a.horizon_s:g} s, "
          f"seed {a.seed})")  # fmt: skip
    print(f"{'fact':<40} {'unit':<6} {'real':>10} {'sim':>10}  {'tolerance':<16} match")
    for r in rows:
        match = ("yes" if r.ok else "NO") if r.measured else "n/a"
        print(f"{r.name:<40} {r.unit:<6} {r.real:>10.4g} {r.sim:>10.4g}  {r.tolerance:<16} {match}")
    off = [r.name for r in rows if r.measured and not r.ok]
    print(f"{len(off)} of {sum(r.measured for r in rows)} measured facts outside tolerance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
