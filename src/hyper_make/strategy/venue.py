"""What the strategy sees of a venue, and what it can ask of one: the interface the simulator, the replay and
the Hyperliquid client implement, so that one strategy (:class:`~hyper_make.strategy.quoter.Quoter`) runs
unchanged on all three (as hftbacktest's ``Bot`` trait lets one strategy run in its backtest and live).

A venue hands the strategy a :class:`VenueView` at every refresh (its clock, the top of the book it holds, our
orders as it knows them, our fills since the previous view, our position and margin) and applies the
:class:`~hyper_make.strategy.orders.OrderPlan` the strategy returns (new orders, cancels, modifies); whether each
action took effect comes back in later views (an order that rests, a cancel that removed it, a fill).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..instrument import Side
from .orders import OrderPlan, RestingOrder


@dataclass(frozen=True, slots=True)
class BookTop:
    """The best bid and ask (USD) of the book the venue holds, and when the strategy received it (ns, the
    view's clock)."""

    best_bid_usd: float
    best_ask_usd: float
    received_ns: int

    @property
    def mid_usd(self) -> float:
        """``(bid + ask) / 2`` (USD)."""
        return 0.5 * (self.best_bid_usd + self.best_ask_usd)

    @property
    def is_two_sided(self) -> bool:
        """True when ``0 < bid < ask`` and both are finite."""
        return 0.0 < self.best_bid_usd < self.best_ask_usd and math.isfinite(self.best_ask_usd)


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One fill of ours.

    Attributes
    ----------
    fill_id : unique per venue and fill (a fill seen twice is one fill).
    cloid : the client id of the order that filled, when known.
    side : ``"bid"`` (we bought) or ``"ask"`` (we sold).
    price_usd, size_coins, fee_usd : execution price (USD), filled size (coins, ``> 0``), fee paid (USD; negative
        = rebate).
    ts_ns : when it happened (ns, the view's clock).
    """

    fill_id: str
    cloid: str | None
    side: Side
    price_usd: float
    size_coins: float
    fee_usd: float
    ts_ns: int


@dataclass(frozen=True, slots=True)
class VenueView:
    """A venue's state at one refresh, as far as the strategy can know it.

    Attributes
    ----------
    ts_ns : the venue's clock (ns): exchange time in the simulator and the replay, the loop's clock live.
    book : the top of the book, or ``None`` when the venue has none (no data yet, connection down).
    traded_coins : others' traded volume since the previous view (coins), for the volume estimate.
    resting : our orders resting or on their way (acknowledged or not), keyed by cloid.
    pending : orders that were cancelled or replaced but may still fill (their last fills are not confirmed
        yet): they count in the worst-case position until the venue confirms them gone.
    unseen : orders from requests whose answer was lost: they may rest any moment, unseen in ``book``.
    fills : our fills since the previous view.
    position_coins : our position (coins, positive long).
    margin_usd : account value backing new orders (USD).
    pnl_usd : our PnL since the start (USD), or ``None`` when the venue cannot tell (a failed read).
    latency_s : request round trip (s): measured live, configured in the simulator and the replay.
    book_interval_s : typical interval between book updates (s).
    halted : why the venue cannot take new orders now (e.g. ``"disconnected"``), or ``""``.
    """

    ts_ns: int
    book: BookTop | None
    traded_coins: float
    resting: tuple[RestingOrder, ...]
    pending: tuple[RestingOrder, ...]
    unseen: tuple[RestingOrder, ...]
    fills: tuple[VenueFill, ...]
    position_coins: float
    margin_usd: float
    pnl_usd: float | None
    latency_s: float
    book_interval_s: float
    halted: str = ""

    def pending_size(self, side: Side) -> float:
        """Total size (coins) of the pending orders of ``side``."""
        return sum(o.size for o in self.pending if o.side == side)


@runtime_checkable
class Venue(Protocol):
    """A place the strategy quotes: it reports a :class:`VenueView` and applies plans.

    Implementations: :class:`hyper_make.sim.venue.SimVenue` (the event simulator),
    :class:`hyper_make.backtest.venue.ReplayVenue` (a recorded feed) and the live loop's view of Hyperliquid or the
    local exchange (:class:`hyper_make.live.loop.QuotingLoop`).
    """

    def view(self) -> VenueView:
        """The venue's state now. Its ``fills`` and ``traded_coins`` are those since the previous call: a venue
        reports each once."""
        ...

    def apply(self, plan: OrderPlan) -> None:
        """Send ``plan``'s actions (cancels first, then modifies, then new orders); the outcome shows in later
        views."""
        ...


__all__ = ["BookTop", "Venue", "VenueFill", "VenueView"]
