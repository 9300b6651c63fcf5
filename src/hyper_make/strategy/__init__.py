"""The strategy shared by every venue: state estimation, the order diff, and (in :mod:`.quoter`) the refresh core.

* :mod:`.estimate`: σ and traded volume, exponentially weighted and shrunk to the configured prior;
* :mod:`.orders`: :func:`plan_orders` diffs a ladder against our resting orders into the fewest actions, with the
  requote thresholds and the position guard.
"""

from __future__ import annotations

from .estimate import EstimatorConfig, MarketEstimator
from .orders import (
    Action,
    Batch,
    Cancel,
    CloidFactory,
    Modify,
    OrderManagerConfig,
    OrderPlan,
    Place,
    RestingOrder,
    apply_plan,
    crossing_cloids,
    demote,
    plan_orders,
    reduce_only_flags,
    side_limit_coins,
)

__all__ = [
    "Action",
    "Batch",
    "Cancel",
    "CloidFactory",
    "EstimatorConfig",
    "MarketEstimator",
    "Modify",
    "OrderManagerConfig",
    "OrderPlan",
    "Place",
    "RestingOrder",
    "apply_plan",
    "crossing_cloids",
    "demote",
    "plan_orders",
    "reduce_only_flags",
    "side_limit_coins",
]
