"""The event simulator as a venue of the shared strategy (:mod:`hyper_make.strategy.venue`).

:class:`SimVenue` shows the strategy what a quoting engine on a real exchange would see of the simulated market:
the visible best bid and ask (others' quotes and ours), our resting orders with their remaining sizes, our fills
(reported by the numba core as they happen), others' traded volume, our position, and our PnL marked to the
visible mid. A plan is applied as the simulator's own actions: a new order rests after the order latency (a
post-only order that would cross on arrival is dropped there), a cancel takes effect after the cancel latency
(the order may fill until then: it is reported as *pending*), and a modify is a cancel plus a new order (it loses
its queue place, as on Hyperliquid).
"""

from __future__ import annotations

import math

import numpy as np

from ..instrument import prices_to_ticks
from ..strategy.orders import OrderPlan, RestingOrder
from ..strategy.venue import BookTop, VenueFill, VenueView
from . import market as mk
from .market import Market


class SimVenue:
    """One simulated market path as a :class:`~hyper_make.strategy.venue.Venue`.

    Parameters
    ----------
    market : the simulator's state (:class:`~hyper_make.sim.market.Market`).
    margin_usd : collateral backing our orders (USD); the simulator does no margin accounting.
    """

    def __init__(self, market: Market, *, margin_usd: float) -> None:
        self.market = market
        self.tick_usd = market.cfg.tick_usd
        self.margin_usd = float(margin_usd)
        self.latency_s = float(market.cfg.order_latency_s)
        self.book_interval_s = 1.0 / float(market.cfg.quote_update_rate_per_s)
        self._slot_of: dict[str, int] = {}  # cloid -> order slot
        self._order_at: dict[int, RestingOrder] = {}  # slot -> our order as last reported
        self._traded_seen = market.traded_coins
        self._n_fills = 0
        #: orders the simulator had no free slot for (none with the default ladder)
        self.no_slot = 0

    def view(self) -> VenueView:
        """The simulator's state now, as the strategy may know it."""
        m = self.market
        t_ns = round(m.t_s * 1e9)
        bid, ask = m.bbo_ticks()
        book = BookTop(bid * self.tick_usd, ask * self.tick_usd, t_ns)
        fills = self._fills()
        resting: list[RestingOrder] = []
        pending: list[RestingOrder] = []
        side, size_of, cancel_t = m.o_side.tolist(), m.o_size.tolist(), m.o_cancel_t.tolist()  # one conversion
        for slot, order in list(self._order_at.items()):
            if side[slot] == 0:  # filled, cancelled, or dropped on arrival: gone
                del self._order_at[slot], self._slot_of[order.cloid]  # type: ignore[arg-type]  # ours: a cloid
                continue
            size = size_of[slot]
            if size != order.size:
                order = RestingOrder.trusted(order.side, order.price, size, order.cloid, None, order.reduce_only)
                self._order_at[slot] = order
            (pending if math.isfinite(cancel_t[slot]) else resting).append(order)
        traded = m.traded_coins - self._traded_seen
        self._traded_seen = m.traded_coins
        q = m.inventory_coins
        return VenueView(
            ts_ns=t_ns,
            book=book,
            traded_coins=traded,
            resting=tuple(resting),
            pending=tuple(pending),
            unseen=(),
            fills=fills,
            position_coins=q,
            margin_usd=self.margin_usd,
            pnl_usd=m.cash_usd + q * book.mid_usd,
            latency_s=self.latency_s,
            book_interval_s=self.book_interval_s,
        )

    def _fills(self) -> tuple[VenueFill, ...]:
        if self.market.s[mk.S_FILL_N] == 0:
            return ()
        rows = self.market.take_fills()
        out = []
        for r in rows:
            slot = int(r[mk.FILL_SLOT])
            order = self._order_at.get(slot)
            self._n_fills += 1
            out.append(
                VenueFill(
                    fill_id=str(self._n_fills),
                    cloid=order.cloid if order is not None else None,
                    side="bid" if r[mk.FILL_SIDE] > 0 else "ask",
                    price_usd=float(r[mk.FILL_TICK]) * self.tick_usd,
                    size_coins=float(r[mk.FILL_QTY]),
                    fee_usd=float(r[mk.FILL_FEE]),
                    ts_ns=round(float(r[mk.FILL_T]) * 1e9),
                )
            )
        return tuple(out)

    def apply(self, plan: OrderPlan) -> None:
        """Cancels (after the cancel latency), then modifies (a cancel and a new order), then new orders."""
        m = self.market
        gone = [self._slot_of.get(a.target.key) for a in (*plan.cancels, *plan.modifies)]
        if gone:
            m.cancel_many(np.array([j for j in gone if j is not None], dtype=np.int64))
        adds = (*plan.modifies, *plan.places)
        if not adds:
            return
        prices = np.array([a.price for a in adds])
        sides = np.array([1 if a.side == "bid" else -1 for a in adds], dtype=np.int64)
        ticks = prices_to_ticks(prices, self.tick_usd, name="new order price")
        slots = m.place_many(sides, ticks, np.array([a.size for a in adds])).tolist()
        for a, slot in zip(adds, slots, strict=True):
            if slot < 0:
                self.no_slot += 1
                continue
            self._slot_of[a.cloid] = slot
            self._order_at[slot] = RestingOrder.trusted(a.side, a.price, a.size, a.cloid, None, a.reduce_only)


__all__ = ["SimVenue"]
