"""A local Hyperliquid for tests and paper trading: the SDK's own client, pointed at it, works unchanged.

* :mod:`.engine`: :class:`LocalExchange`, the ``/info`` and ``/exchange`` semantics (signatures, nonces, tick,
  lot, minimum value, ALO, margin, reduce-only, positions, fills, funding, dead-man switch);
* :mod:`.market`: the market behind it (:class:`RandomWalkMarket`, :class:`ReplayMarket` of a recording,
  :class:`SimMarket` = the event simulator matching one account's orders, or any :class:`MarketModel`);
* :mod:`.server`: :class:`LocalServer`, HTTP and WebSocket on loopback.

WebSocket ``/ws``: ``l2Book``, ``trades``, ``userFills``. :class:`Faults` injects errors, delays, dropped
WebSockets, duplicate or out-of-order fill messages and a clock skew.
"""

from __future__ import annotations

from .engine import Faults, LocalExchange, LocalExchangeError
from .market import MarketModel, MarketTrade, RandomWalkMarket, ReplayMarket, SimMarket
from .server import LocalServer

__all__ = [
    "Faults",
    "LocalExchange",
    "LocalExchangeError",
    "LocalServer",
    "MarketModel",
    "MarketTrade",
    "RandomWalkMarket",
    "ReplayMarket",
    "SimMarket",
]
