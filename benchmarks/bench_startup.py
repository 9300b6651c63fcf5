"""Start-up costs a user waits for: the CLI's imports, the kernels' load, and a request's signature.

Run: ``python benchmarks/bench_startup.py [--json] [--repeats N]`` (about half a minute). Each figure is the median of
``N`` fresh interpreter processes (the OS file cache warm after the first), measured inside the process:

1. ``hyper-make --help``: seconds of imports (``-X importtime``, the top-level entries summed) and the whole command.
2. ``hyper-make ladder``: seconds of imports outside the kernels' load, the kernels' load from numba's cache
   (``kernel load``, printed by the command; it includes the modules numba imports to load them), and the whole
   command.
3. One Hyperliquid request signature (``sign_l1_action``) with eth_keys' C backend (``coincurve``) and with its
   pure-Python one (``ECC_BACKEND_CLASS=eth_keys.backends.NativeECCBackend``), and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

from _machine import machine

# the command, with markers on stderr around its kernel load: imports numba makes while loading kernels count there
_CLI = """
import sys
from hyper_make.cli import _common, main
load = _common.load_kernels
def marked():
    print("@@kernels", file=sys.stderr, flush=True)
    try:
        return load()
    finally:
        print("@@kernels-done", file=sys.stderr, flush=True)
_common.load_kernels = marked
sys.argv = ["hyper-make", *sys.argv[1:]]
main()
"""
_SIGN = """
import time
from hyper_make.connectors.keys import ephemeral_wallet
from hyperliquid.utils.signing import sign_l1_action
w = ephemeral_wallet()
action = {"type": "order", "orders": [{"a": 0, "b": True, "p": "100", "s": "0.1", "r": False,
          "t": {"limit": {"tif": "Alo"}}}], "grouping": "na"}
sign_l1_action(w, action, None, 1, None, False)
n = 50
t = time.perf_counter()
for i in range(n):
    sign_l1_action(w, action, None, i + 2, None, False)
print((time.perf_counter() - t) / n)
"""


def _imports_s(stderr: str) -> float:
    """Seconds of imports outside the kernel load: the cumulative times (µs) of the top-level entries of
    ``-X importtime``."""
    total = 0
    inside = False
    for line in stderr.splitlines():
        if line.startswith("@@kernels"):
            inside = line == "@@kernels"
            continue
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if m and not inside:
            total += int(m.group(1))
    return total / 1e6


def _command(args: list[str]) -> dict[str, float]:
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-X", "importtime", "-c", _CLI, *args], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"hyper-make {' '.join(args)} failed: {p.stderr[-500:]}")
    out = {"imports_s": _imports_s(p.stderr), "wall_s": wall}
    m = re.search(r"kernel load ([0-9.]+) s", p.stdout)
    if m:
        out["kernel_load_s"] = float(m.group(1))
    return out


def _sign_s(native: bool) -> float:
    env = dict(os.environ)
    if native:
        env["ECC_BACKEND_CLASS"] = "eth_keys.backends.NativeECCBackend"
    p = subprocess.run([sys.executable, "-c", _SIGN], capture_output=True, text=True, env=env, check=True)
    return float(p.stdout.strip().splitlines()[-1])


def _median(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    ap.add_argument("--repeats", type=int, default=5, help="fresh processes per figure (median), >= 1")
    args = ap.parse_args()
    if args.repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    _command(["ladder"])  # the numba cache and the OS file cache warm
    help_ = _median([_command(["--help"]) for _ in range(args.repeats)])
    ladder = _median([_command(["ladder"]) for _ in range(args.repeats)])
    c = statistics.median(_sign_s(False) for _ in range(args.repeats))
    native = statistics.median(_sign_s(True) for _ in range(max(1, args.repeats // 2)))
    res = {
        "machine": machine(),
        "help": help_,
        "ladder": ladder,
        "sign_coincurve_ms": c * 1e3,
        "sign_native_ms": native * 1e3,
        "sign_speedup": native / c,
    }
    if args.json:
        print(json.dumps(res, indent=2))
        return
    m = res["machine"]
    print(f"machine: {m['cpu']}, {m['cpus']} CPUs; {m['date_utc']} UTC; load {m['load_avg_1m']:.2f}")
    print(f"hyper-make --help : imports {help_['imports_s']:.3f} s, whole command {help_['wall_s']:.3f} s")
    load = ladder.get("kernel_load_s", 0.0)
    print(f"hyper-make ladder : imports {ladder['imports_s']:.3f} s, kernel load {load:.3f} s, "
          f"whole command {ladder['wall_s']:.3f} s")  # fmt: skip
    print(f"signature         : {c * 1e3:.2f} ms with coincurve, {native * 1e3:.2f} ms pure Python "
          f"({native / c:.1f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
