"""Exchange connectors: Hyperliquid payloads, signing and sending, rate limits, keys.

* :mod:`.rate_limit`: Hyperliquid's IP weight and per-address request budget; :class:`RateLimiter`;
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
from .rate_limit import (
    AddressBudget,
    RateLimiter,
    TokenBucket,
    exchange_weight,
)

__all__ = [
    "AddressBudget",
    "HyperliquidClient",
    "NonceSource",
    "RateLimiter",
    "SignedRequest",
    "TokenBucket",
    "build_requests",
    "ephemeral_wallet",
    "exchange_weight",
    "fetch_meta",
    "is_mainnet",
    "load_meta",
    "load_wallet",
    "resting_from_json",
    "spec_from_meta",
]
