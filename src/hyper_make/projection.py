"""Exchange projection: continuous sizes -> orders the exchange accepts, reporting everything it changes.

Per side: sizes are floored to the lot grid (never rounded up past what the allocator gave, so the side's
total stays within its budget); a level the allocator sized at or above its minimum order but that flooring
pushed below it is raised to the minimum when the budget and its cap allow, otherwise dropped; levels the
allocator left below the minimum are dropped. Each drop is recorded with its reason and notional.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from itertools import repeat

import numpy as np
from numpy.typing import NDArray

from .instrument import InstrumentSpec, Side


@dataclass(frozen=True, slots=True)
class Order:
    """One resting limit order (post-only).

    Attributes
    ----------
    side : ``"bid"`` or ``"ask"``.
    price : limit price (USD), valid on the exchange's grid.
    size : size (coins), a positive multiple of the lot.
    depth_bps : distance of ``price`` from the mid (bps; positive = behind the mid).
    level : index of the level in the side's grid (0 = closest to the touch).
    """

    side: Side
    price: float
    size: float
    depth_bps: float
    level: int

    @property
    def notional_usd(self) -> float:
        """``price x size`` (USD)."""
        return self.price * self.size


_new = object.__new__
_set_side, _set_price, _set_size, _set_depth, _set_level = (getattr(Order, f.name).__set__ for f in fields(Order))


def _order(side: Side, price: float, size: float, depth_bps: float, level: int) -> Order:
    """``Order(side, price, size, depth_bps, level)``, built in half the time of the frozen dataclass's ``__init__``.

    That ``__init__`` sets each field through ``object.__setattr__`` (about 0.55 µs an order, the largest cost of a
    projection of ten levels); the slots' own descriptors make the same object. ``Order`` has no ``__post_init__``,
    and the unpacking above fails if its fields change.
    """
    order = _new(Order)
    _set_side(order, side)
    _set_price(order, price)
    _set_size(order, size)
    _set_depth(order, depth_bps)
    _set_level(order, level)
    return order


@dataclass(frozen=True, slots=True)
class Dropped:
    """A level the projection removed: where, why, and its notional (USD) at the allocator's size."""

    side: Side
    level: int
    price: float
    reason: str
    notional_usd: float


@dataclass(frozen=True, slots=True, eq=False)
class Projection:
    """Result of projecting one side: lots and sizes (coins) per level, the orders, and what was dropped."""

    lots: NDArray[np.int64]
    sizes: NDArray[np.float64]
    orders: tuple[Order, ...]
    dropped: tuple[Dropped, ...]
    total_coins: float = 0.0
    """Σ sizes (coins), computed in lots so that it prints exactly."""


def project_side(
    side: Side,
    prices: NDArray[np.float64],
    depths_bps: NDArray[np.float64],
    sizes: NDArray[np.float64],
    budget_coins: float,
    caps_coins: NDArray[np.float64],
    spec: InstrumentSpec,
    *,
    min_size_coins: NDArray[np.float64] | None = None,
) -> Projection:
    """Turn one side's continuous sizes (coins) into valid orders within ``budget_coins`` and the caps.

    ``min_size_coins`` is ``spec.min_size(prices)`` (coins per level) when the caller has it already (the ladder
    gave it to the allocator); ``None`` computes it.
    """
    n = prices.shape[0]
    # one conversion for sizes, caps, the budget and the minimums (each call costs a few µs of NumPy overhead)
    min_size = (spec.min_size(prices) if min_size_coins is None else min_size_coins) * (1 + 1e-12)
    all_lots = spec.size_to_lots(np.concatenate((np.maximum(sizes, 0.0), caps_coins, min_size, [budget_coins])))
    lots, cap_lots, min_lots = all_lots[:n], all_lots[n : 2 * n], all_lots[2 * n : 3 * n]
    budget_lots = int(all_lots[-1])
    lots = np.minimum(lots, cap_lots)
    # flooring keeps Σ lots <= Σ sizes <= budget; the clamp only guards against an allocator's overshoot
    excess = int(lots.sum()) - budget_lots
    for i in range(lots.shape[0] - 1, -1, -1):
        if excess <= 0:
            break
        take = min(excess, int(lots[i]))
        lots[i] -= take
        excess -= take
    dropped: list[Dropped] = []
    short = ((sizes > 0) & (lots < min_lots)).nonzero()[0]
    for i in short:
        intended = float(sizes[i])
        need = int(min_lots[i] - lots[i])
        fits = int(lots.sum()) + need <= budget_lots and min_lots[i] <= cap_lots[i]
        if intended >= float(spec.lots_to_size(min_lots[i])) * (1 - 1e-9) and fits:
            lots[i] = min_lots[i]
        else:
            dropped.append(Dropped(side, int(i), float(prices[i]), "below_min_notional", intended * prices[i]))
            lots[i] = 0
    size = spec.lots_to_size(lots)
    # the resting levels' fields as Python lists, not a NumPy scalar per field of every order (~100 ns each)
    rest = lots.nonzero()[0]
    orders = tuple(
        map(_order, repeat(side), prices[rest].tolist(), size[rest].tolist(), depths_bps[rest].tolist(), rest.tolist())
    )
    return Projection(
        lots=lots, sizes=size, orders=orders, dropped=tuple(dropped), total_coins=float(spec.lots_to_size(lots.sum()))
    )
