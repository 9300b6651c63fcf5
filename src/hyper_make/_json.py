"""JSON shared by the CLI, the ladder and the reports: NumPy types to Python, NaN/inf to null; reading JSON files."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError


def to_jsonable(obj: Any) -> Any:
    """Recursively convert NumPy scalars/arrays and non-finite floats (-> ``None``) for ``json.dumps``."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def read_json_file(path: str | Path, what: str) -> Any:
    """Parse a JSON file, or raise :class:`~hyper_make.errors.DataError` in one line naming ``what`` and the file.

    ``what`` says which input it is (``"meta file"``, ``"resting-orders file"``). An empty, binary (not UTF-8) or
    malformed file, or a directory, is a ``DataError``; a missing file stays a ``FileNotFoundError``.
    """
    p = Path(path)
    if p.is_dir():
        raise DataError(f"{what} {p}: is a directory, expected a JSON file")
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise DataError(f"{what} {p}: cannot be read ({exc.strerror})") from None
    if not data.strip():
        raise DataError(f"{what} {p}: empty file, expected JSON")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} {p}: not JSON (binary content, not UTF-8 at byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{what} {p}: not JSON ({exc.msg} at line {exc.lineno})") from None
