"""The live quoting loop: state estimation, the ledger of our fills and orders, risk guards, and the loop.

* :mod:`.estimate`: σ and traded volume from the book and trade streams, shrunk to the configured prior;
* :mod:`.ledger`: fills (idempotent), position, cash, PnL, and our resting and not-yet-confirmed orders;
* :mod:`.loop`: :class:`QuotingLoop`, which rebuilds the ladder every refresh and sends the diff;
* :mod:`.view`: the Rich live view of ``hyper-make run``.
"""

from __future__ import annotations

from ..strategy.estimate import EstimatorConfig, MarketEstimator
from .ledger import Fill, Ledger, fill_from_json
from .loop import LoopConfig, LoopCounters, LoopStatus, QuotingLoop

__all__ = [
    "EstimatorConfig",
    "Fill",
    "Ledger",
    "LoopConfig",
    "LoopCounters",
    "LoopStatus",
    "MarketEstimator",
    "QuotingLoop",
    "fill_from_json",
]
