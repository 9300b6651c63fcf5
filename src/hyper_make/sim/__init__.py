"""Event-driven market simulator with emergent self-impact, the quoting loop on it, and the allocator tournament.

* :mod:`.config`: ``MarketConfig``, ``StrategyConfig``, ``SimConfig`` and presets (``default``,
  ``avellaneda-stoikov-2008``);
* :mod:`.market`: the numba event loop and the :class:`Market` state holder;
* :mod:`.strategy`: ``run_path`` (one allocator on one seeded path, ladder from ``build_ladder`` every refresh);
* :mod:`.montecarlo`: ``run_tournament`` (paired seeds, process pool, Ctrl-C keeps finished paths);
* :mod:`.grid`: regime grids (``simulate --grid``): work items per (path, regime, allocator), streamed records,
  resume, per-regime metrics and the heatmap;
* :mod:`.avellaneda`: the Avellaneda–Stoikov (2008) §4 experiment;
* :mod:`.calibrate_loop`: estimate the impact model from the simulator and feed it back.
"""

from __future__ import annotations

from .avellaneda import ASConfig, simulate_as
from .config import PRESET_NAMES, MarketConfig, SimConfig, StrategyConfig, get_preset
from .market import Market
from .montecarlo import Tournament, run_tournament
from .strategy import PathResult, run_path

__all__ = [
    "PRESET_NAMES",
    "ASConfig",
    "Market",
    "MarketConfig",
    "PathResult",
    "SimConfig",
    "StrategyConfig",
    "Tournament",
    "get_preset",
    "run_path",
    "run_tournament",
    "simulate_as",
]
