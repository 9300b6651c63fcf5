"""Adverse selection given a fill: how far the mid moves against us after a fill at depth δ, in bps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from .._validate import PYDANTIC_CONFIG, check_array, check_real
from ..errors import InvalidParameterError


@runtime_checkable
class AdverseModel(Protocol):
    """Expected adverse move after a fill at each depth, in bps of price (>= 0 means against us).

    Elementwise in depth: a level's cost depends on its own depth only.
    """

    def cost_bps(self, depth_bps: NDArray[np.float64]) -> NDArray[np.float64]: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class ExponentialAdverse:
    """``AS(δ) = AS0·exp(-δ/δc)`` bps (original system: AS0 = 3 bps, δc = 8 bps).

    Parameters
    ----------
    as0_bps : float, default 3.0
        Adverse move after a fill at the mid (bps), ``>= 0``.
    decay_bps : float, default 8.0
        ``δc``: depth over which the adverse move decays by ``e`` (bps), ``> 0``.
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    kind: Literal["exponential"] = "exponential"
    as0_bps: float = 3.0
    decay_bps: float = 8.0

    def __post_init__(self) -> None:
        check_real("adverse.as0_bps", self.as0_bps, lo=0.0, unit="bps")
        check_real("adverse.decay_bps", self.decay_bps, lo=0.0, lo_open=True, unit="bps")

    def cost_bps(self, depth_bps: NDArray[np.float64]) -> NDArray[np.float64]:
        # dividing by -δc is -δ/δc bit for bit (IEEE signs), one array operation fewer
        return self.as0_bps * np.exp(np.maximum(depth_bps, 0.0) / -self.decay_bps)


@dataclass(frozen=True, kw_only=True, slots=True)
class TableAdverse:
    """Calibrated adverse selection per depth (bps), linear in depth between points, flat beyond.

    Parameters
    ----------
    depth_bps : tuple of float
        Depths (bps from the mid), strictly increasing, ``>= 0``.
    as_bps : tuple of float
        Adverse move after a fill at each depth (bps of price; negative = the price moves our way), e.g. the
        markout table ``hyper-make calibrate`` writes.
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    depth_bps: tuple[float, ...]
    as_bps: tuple[float, ...]
    kind: Literal["table"] = "table"

    def __post_init__(self) -> None:
        d = check_array("adverse.depth_bps", self.depth_bps, lo=0.0, min_len=1, unit="bps")
        check_array("adverse.as_bps", self.as_bps, min_len=1, unit="bps")
        if len(self.depth_bps) != len(self.as_bps):
            raise InvalidParameterError("'adverse.depth_bps' and 'adverse.as_bps' must have the same length")
        if np.any(np.diff(d) <= 0):
            raise InvalidParameterError("'adverse.depth_bps' must be strictly increasing")

    def cost_bps(self, depth_bps: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.interp(depth_bps, self.depth_bps, self.as_bps)
