"""hyper_make: how much size to rest at each price level of a market maker's two-sided ladder.

Pipeline (one module per box)::

    MarketSnapshot -> levels -> economics (LevelCurves) -> allocate -> projection -> Ladder

Units: sizes in coins, prices and PnL in USD, depths in bps from the mid, times in seconds, timestamps in ns.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # the names below are imported on first use (``import hyper_make`` stays cheap for the CLI)
    from .allocate import (
        ALLOCATORS,
        AllocationResult,
        Allocator,
        ConcaveSolution,
        EntropyAllocator,
        FlatAllocator,
        GreedyAllocator,
        ImpactAllocator,
        ProgressionAllocator,
        SideProblem,
        allocate_concave,
        make_allocator,
        warm_up,
    )
    from .config import AppConfig, load_config
    from .defaults import default_snapshot, default_spec
    from .economics import (
        ExponentialAdverse,
        ExponentialIntensity,
        FirstPassage,
        LevelCurves,
        TableAdverse,
        TableFill,
        build_curves,
    )
    from .economics.impact import SquareRootImpact
    from .errors import ConfigError, DataError, ExchangeError, HyperMakeError, InvalidParameterError
    from .instrument import PERP_SPECS, InstrumentSpec, perp_spec
    from .ladder import (
        Ladder,
        LadderConfig,
        LadderState,
        SideBudget,
        SideResult,
        build_ladder,
        reservation_price,
        side_budget,
    )
    from .levels import GridConfig, glft_touch_depth_bps
    from .projection import Dropped, Order
    from .snapshot import MarketSnapshot, Regime
    from .stealth import StealthConfig

#: public name -> the module that defines it, imported on first access (PEP 562)
_LAZY: dict[str, str] = {
    "ALLOCATORS": ".allocate",
    "AllocationResult": ".allocate",
    "Allocator": ".allocate",
    "ConcaveSolution": ".allocate",
    "EntropyAllocator": ".allocate",
    "FlatAllocator": ".allocate",
    "GreedyAllocator": ".allocate",
    "ImpactAllocator": ".allocate",
    "ProgressionAllocator": ".allocate",
    "SideProblem": ".allocate",
    "allocate_concave": ".allocate",
    "make_allocator": ".allocate",
    "warm_up": ".allocate",
    "AppConfig": ".config",
    "load_config": ".config",
    "default_snapshot": ".defaults",
    "default_spec": ".defaults",
    "ExponentialAdverse": ".economics",
    "ExponentialIntensity": ".economics",
    "FirstPassage": ".economics",
    "LevelCurves": ".economics",
    "TableAdverse": ".economics",
    "TableFill": ".economics",
    "build_curves": ".economics",
    "SquareRootImpact": ".economics.impact",
    "ConfigError": ".errors",
    "DataError": ".errors",
    "ExchangeError": ".errors",
    "HyperMakeError": ".errors",
    "InvalidParameterError": ".errors",
    "InstrumentSpec": ".instrument",
    "PERP_SPECS": ".instrument",
    "perp_spec": ".instrument",
    "Ladder": ".ladder",
    "LadderConfig": ".ladder",
    "LadderState": ".ladder",
    "SideBudget": ".ladder",
    "SideResult": ".ladder",
    "build_ladder": ".ladder",
    "reservation_price": ".ladder",
    "side_budget": ".ladder",
    "GridConfig": ".levels",
    "glft_touch_depth_bps": ".levels",
    "Dropped": ".projection",
    "Order": ".projection",
    "MarketSnapshot": ".snapshot",
    "Regime": ".snapshot",
    "StealthConfig": ".stealth",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use: the numerical stack (NumPy, numba, SciPy) loads only when needed."""
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'hyper_make' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "ALLOCATORS",
    "PERP_SPECS",
    "AllocationResult",
    "Allocator",
    "AppConfig",
    "ConcaveSolution",
    "ConfigError",
    "DataError",
    "Dropped",
    "EntropyAllocator",
    "ExchangeError",
    "ExponentialAdverse",
    "ExponentialIntensity",
    "FirstPassage",
    "FlatAllocator",
    "GreedyAllocator",
    "GridConfig",
    "HyperMakeError",
    "ImpactAllocator",
    "InstrumentSpec",
    "InvalidParameterError",
    "Ladder",
    "LadderConfig",
    "LadderState",
    "LevelCurves",
    "MarketSnapshot",
    "Order",
    "ProgressionAllocator",
    "Regime",
    "SideBudget",
    "SideProblem",
    "SideResult",
    "SquareRootImpact",
    "StealthConfig",
    "TableAdverse",
    "TableFill",
    "allocate_concave",
    "build_curves",
    "build_ladder",
    "default_snapshot",
    "default_spec",
    "glft_touch_depth_bps",
    "load_config",
    "make_allocator",
    "perp_spec",
    "reservation_price",
    "side_budget",
    "warm_up",
]
