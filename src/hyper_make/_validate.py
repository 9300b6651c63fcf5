"""Small argument checks shared by every frozen dataclass: one line, naming the field and its range."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import InvalidParameterError

#: Pydantic settings attached (as ``__pydantic_config__``) to every config dataclass: the TOML loader
#: validates types with them, rejects unknown keys and NaN/inf, then the dataclass checks ranges.
PYDANTIC_CONFIG: Any = {"extra": "forbid", "allow_inf_nan": False}


def _fmt(x: Any) -> str:
    return repr(x) if not isinstance(x, float) else f"{x!r}"


def check_real(
    name: str,
    value: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    unit: str = "",
) -> float:
    """Return ``float(value)`` or raise naming ``name`` and the interval ``[lo, hi]`` (open ends as given)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidParameterError(
            f"'{name}' must be a real number{_unit(unit)}; got {value!r} of type {type(value).__name__}"
        )
    x = float(value)
    if (
        not math.isfinite(x)
        or (lo is not None and (x < lo or (lo_open and x == lo)))
        or (hi is not None and (x > hi or (hi_open and x == hi)))
    ):
        raise InvalidParameterError(
            f"'{name}' must be in {_interval(lo, hi, lo_open, hi_open)}{_unit(unit)}; got {x!r}"
        )
    return x


def check_int(name: str, value: Any, *, lo: int | None = None, hi: int | None = None, unit: str = "") -> int:
    """Return ``int(value)`` or raise naming ``name`` and the closed integer range ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidParameterError(
            f"'{name}' must be an integer{_unit(unit)}; got {value!r} of type {type(value).__name__}"
        )
    x = int(value)
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        raise InvalidParameterError(f"'{name}' must be in {_interval(lo, hi, False, False)}{_unit(unit)}; got {x}")
    return x


def check_choice(name: str, value: Any, choices: tuple[str, ...] | list[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    if value not in choices:
        raise InvalidParameterError(f"'{name}' must be one of {sorted(choices)}; got {value!r}")
    return str(value)


def check_array(
    name: str,
    values: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    ndim: int = 1,
    min_len: int = 0,
    unit: str = "",
) -> NDArray[np.float64]:
    """Return ``values`` as a float64 array, or raise naming the first bad element and the allowed range."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"'{name}' must be an array of real numbers{_unit(unit)}; got {values!r}") from None
    if arr.ndim != ndim:
        raise InvalidParameterError(f"'{name}' must be {ndim}-dimensional; got shape {arr.shape}")
    if arr.shape[0] < min_len:
        raise InvalidParameterError(f"'{name}' must have at least {min_len} elements; got {arr.shape[0]}")
    bad = ~np.isfinite(arr)
    if lo is not None:
        bad |= (arr < lo) | ((arr == lo) if lo_open else False)
    if hi is not None:
        bad |= arr > hi
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        raise InvalidParameterError(
            f"'{name}[{i}]' must be in {_interval(lo, hi, lo_open, False)}{_unit(unit)}; got {arr.ravel()[i]!r}"
        )
    return arr


def _interval(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    left = "(" if (lo_open or lo is None) else "["
    right = ")" if (hi_open or hi is None) else "]"
    a = "-inf" if lo is None else f"{lo:g}"
    b = "inf" if hi is None else f"{hi:g}"
    return f"{left}{a}, {b}{right}"


def _unit(unit: str) -> str:
    return f" {unit}" if unit else ""
