"""Replay backtester on recorded data: the ladder each refresh, queue-position fills, PnL split, markouts."""

from __future__ import annotations

from .replay import (
    MARKOUT_HORIZONS_S,
    QUEUE_MODELS,
    Fills,
    ReplayConfig,
    ReplayInterrupted,
    ReplayResult,
    replay,
    replay_fixed_grid,
    run_backtest,
)

__all__ = [
    "MARKOUT_HORIZONS_S",
    "QUEUE_MODELS",
    "Fills",
    "ReplayConfig",
    "ReplayInterrupted",
    "ReplayResult",
    "replay",
    "replay_fixed_grid",
    "run_backtest",
]
