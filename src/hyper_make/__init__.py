"""hyper_make: how much size to rest at each price level of a market maker's two-sided ladder.

Pipeline (one module per box)::

    MarketSnapshot -> levels -> economics (LevelCurves) -> allocate -> projection -> Ladder

Units: sizes in coins, prices and PnL in USD, depths in bps from the mid, times in seconds, timestamps in ns.
"""

from __future__ import annotations

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

__version__ = "0.1.0"

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
