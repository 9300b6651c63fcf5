"""Exchange connectors: the order manager (ladder -> fewest actions, rate limits) and Hyperliquid payloads.

* :mod:`.orders`: :func:`plan_orders` diffs a ladder against resting orders; :class:`RateLimiter`;
* :mod:`.hyperliquid`: SDK request/wire types, signing, metadata, :class:`HyperliquidClient`;
* :mod:`.keys`: the signing key from the environment or an encrypted keystore.
"""

from __future__ import annotations

from .hyperliquid import (
    HyperliquidClient,
    NonceSource,
    SignedRequest,
    build_requests,
    fetch_meta,
    is_mainnet,
    load_meta,
    resting_from_json,
    spec_from_meta,
)
from .keys import ephemeral_wallet, load_wallet
from .orders import (
    AddressBudget,
    Batch,
    Cancel,
    CloidFactory,
    Modify,
    OrderManagerConfig,
    OrderPlan,
    Place,
    RateLimiter,
    RestingOrder,
    TokenBucket,
    apply_plan,
    crossing_cloids,
    exchange_weight,
    plan_orders,
    reduce_only_flags,
)

__all__ = [
    "AddressBudget",
    "Batch",
    "Cancel",
    "CloidFactory",
    "HyperliquidClient",
    "Modify",
    "NonceSource",
    "OrderManagerConfig",
    "OrderPlan",
    "Place",
    "RateLimiter",
    "RestingOrder",
    "SignedRequest",
    "TokenBucket",
    "apply_plan",
    "build_requests",
    "crossing_cloids",
    "ephemeral_wallet",
    "exchange_weight",
    "fetch_meta",
    "is_mainnet",
    "load_meta",
    "load_wallet",
    "plan_orders",
    "reduce_only_flags",
    "resting_from_json",
    "spec_from_meta",
]
