"""A local Hyperliquid for tests and paper trading: the SDK's own client, pointed at it, works unchanged.

* :mod:`.engine`: :class:`LocalExchange`, the ``/info`` and ``/exchange`` semantics (signatures, nonces, tick,
  lot, minimum value, ALO, margin, reduce-only, positions, fills, dead-man switch);
* :mod:`.market`: the market behind it (:class:`RandomWalkMarket`, or any :class:`MarketModel`);
* :mod:`.server`: :class:`LocalServer`, HTTP on loopback.

Not built yet: the WebSocket subscriptions (``l2Book``, ``trades``, ``userFills``) and fault injection.
"""

from __future__ import annotations

from .engine import LocalExchange, LocalExchangeError
from .market import MarketModel, MarketTrade, RandomWalkMarket
from .server import LocalServer

__all__ = ["LocalExchange", "LocalExchangeError", "LocalServer", "MarketModel", "MarketTrade", "RandomWalkMarket"]
