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

from ..instrument import price_to_ticks
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
                del self._order_at[slot], self._slot_of[order.key]
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
        for c in plan.cancels:
            slot = self._slot_of.get(c.target.key)
            if slot is not None:
                m.cancel(slot)
        for mo in plan.modifies:
            slot = self._slot_of.get(mo.target.key)
            if slot is not None:
                m.cancel(slot)
            self._place(RestingOrder.trusted(mo.side, mo.price, mo.size, mo.cloid, None, mo.reduce_only))
        for p in plan.places:
            self._place(RestingOrder.trusted(p.side, p.price, p.size, p.cloid, None, p.reduce_only))

    def _place(self, order: RestingOrder) -> None:
        tick = price_to_ticks(order.price, self.tick_usd, name=f"{order.side} price")
        slot = self.market.place(1 if order.side == "bid" else -1, tick, order.size)
        if slot < 0:
            self.no_slot += 1
            return
        self._slot_of[order.key] = slot
        self._order_at[slot] = order


__all__ = ["SimVenue"]
