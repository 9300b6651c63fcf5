"""Machine and date header shared by the allocator benchmarks (printed, and stored in their JSON)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import scipy


def cpu_name() -> str:
    """CPU model from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """Platform, CPU, core count, Python/NumPy/SciPy versions and the UTC date."""
    return {
        "date_utc": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}",
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }


def print_machine(info: dict[str, Any]) -> None:
    """Two header lines: machine, then date and versions."""
    print(f"machine: {info['cpu']}, {info['cpus']} CPUs, {info['platform']} (1-min load {info['load_avg_1m']:.2f})")
    print(f"date: {info['date_utc']} UTC; python {info['python']}, numpy {info['numpy']}, scipy {info['scipy']}")


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    """Write ``payload`` as JSON to ``path`` when given."""
    if path:
        Path(path).write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")
        print(f"wrote {path}")
