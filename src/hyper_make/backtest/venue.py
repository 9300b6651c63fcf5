"""A recorded feed as a venue of the shared strategy (:mod:`hyper_make.strategy.venue`).

:class:`ReplayVenue` rebuilds the book from the recording and runs our orders through the replay kernel
(:mod:`hyper_make.backtest._core`): a new order arrives after the latency (constant, or the feed's own delay on top
of it), is post-only checked on arrival and joins the back of its price's queue; it fills by the queue model, in
whole lots; a cancel takes effect after the latency (the order may fill until then: it is reported as *pending*); a
modify is a cancel and a new order. Our orders never move the replayed market.
"""

from __future__ import annotations

import numpy as np

from ..data.book import BookGrid, OrderBook
from ..data.events import EXCH_EVENT, TRADE_EVENT, kinds
from ..instrument import price_to_ticks
from ..strategy.orders import OrderPlan, RestingOrder
from ..strategy.venue import BookTop, VenueFill, VenueView
from ._core import (
    FREE,
    NEVER,
    STATUS_FILLS_FULL,
    cancel,
    fill_dtype,
    order_dtype,
    place,
    run_until,
)


class ReplayVenue:
    """One recording replayed for one strategy.

    Parameters
    ----------
    events : the recording (``event_dtype``).
    grid : the book's price grid (ticks of ``grid.tick_usd``).
    lot_coins : the instrument's lot (fills are whole lots), ``> 0``.
    maker_fee_frac : fee on our fills as a fraction of notional (negative = rebate).
    margin_usd : collateral backing our orders (USD); the replay does no margin accounting.
    latency_ms, feed_latency : order entry and cancel latency (ms), plus the feed's own delay when ``feed_latency``.
    queue_kind, queue_n, use_bbo : the kernel's queue model and whether best-bid/offer messages move the book.
    slots : order slots (orders resting or in flight at once).
    """

    def __init__(
        self,
        events: np.ndarray,
        grid: BookGrid,
        *,
        lot_coins: float,
        maker_fee_frac: float,
        margin_usd: float,
        latency_ms: float,
        feed_latency: bool,
        queue_kind: int,
        queue_n: float,
        use_bbo: bool,
        slots: int,
    ) -> None:
        self.events = events
        self.grid = grid
        self.tick_usd = grid.tick_usd
        self.book = OrderBook(grid, use_bbo=use_bbo)
        self.lot_coins = float(lot_coins)
        self.fee = float(maker_fee_frac)
        self.margin_usd = float(margin_usd)
        self.latency_ns = int(latency_ms * 1e6)
        self.feed_latency = feed_latency
        self.queue_kind, self.queue_n, self.use_bbo = queue_kind, float(queue_n), use_bbo
        self._ev, self._exch, self._px, self._qty = events["ev"], events["exch_ts"], events["px"], events["qty"]
        is_trade = (kinds(events) == TRADE_EVENT) & ((self._ev & np.uint64(EXCH_EVENT)) != 0)
        self._cum_vol = np.cumsum(np.where(is_trade, self._qty, 0.0))
        offs = (events["local_ts"] - self._exch).astype(np.int64)
        self._offs, self._offs_min = offs, (np.minimum.accumulate(offs) if offs.size else offs)
        self.orders = np.zeros(slots, dtype=order_dtype)
        self.orders["live_ts"] = NEVER
        self.orders["dead_ts"] = NEVER
        self.bid_slot = np.full(grid.n, -1, np.int64)
        self.ask_slot = np.full(grid.n, -1, np.int64)
        self.fills = np.zeros(65_536, dtype=fill_dtype)
        self.nfill = 0
        self._seen = 0
        self.k = 0
        self.clock = int(self._exch[0]) if self._exch.size else 0
        self.t0 = self.clock
        self.position_coins = 0.0
        self.cash_usd = 0.0
        self.max_abs_position_coins = 0.0
        self.rejects = 0
        self.no_slot = 0
        self._slot_of: dict[str, int] = {}  # cloid -> slot
        self._order_of: dict[str, RestingOrder] = {}  # cloid -> our order as last reported
        self._oid: dict[str, int] = {}  # cloid -> the kernel's id
        self._cloid_of: dict[int, str] = {}
        self._next_oid = 0
        self._traded_seen = 0.0
        self._new_fills: list[VenueFill] = []

    # ---- time --------------------------------------------------------------------------------------
    def advance(self, t_ns: int) -> int:
        """Replay the recording up to ``t_ns`` (exchange time); returns the kernel's status (1: end of data)."""
        while True:
            status, self.k, self.clock, self.nfill, rej = run_until(
                self.book.bid_qty, self.book.ask_qty, self.book.state, self._ev, self._exch, self._px, self._qty,
                self.k, t_ns, self.clock, self.orders, self.bid_slot, self.ask_slot, self.fills, self.nfill,
                self.tick_usd, self.lot_coins, self.queue_kind, self.queue_n, self.use_bbo,
            )  # fmt: skip
            self.rejects += rej
            self._book_fills()
            if status != STATUS_FILLS_FULL:
                return int(status)
            grown = np.zeros(2 * self.fills.shape[0], dtype=fill_dtype)
            grown[: self.nfill] = self.fills[: self.nfill]
            self.fills = grown

    def _book_fills(self) -> None:
        new = self.fills[self._seen : self.nfill]
        if not new.size:
            return
        for f in new:
            side = int(f["side"])
            price = float(f["tick"]) * self.tick_usd
            q = float(f["qty"])
            fee = price * q * self.fee
            self.position_coins += side * q
            self.cash_usd -= side * q * price + fee
            self.max_abs_position_coins = max(self.max_abs_position_coins, abs(self.position_coins))
            self._new_fills.append(
                VenueFill(
                    fill_id=str(self._seen + len(self._new_fills)),
                    cloid=self._cloid_of.get(int(f["oid"])),
                    side="bid" if side > 0 else "ask",
                    price_usd=price,
                    size_coins=q,
                    fee_usd=fee,
                    ts_ns=int(f["ts"]),
                )
            )
        self._seen = self.nfill

    @property
    def book_top(self) -> BookTop | None:
        """The rebuilt book's best bid and ask now, or ``None`` while it is not two-sided."""
        bid, ask = self.book.best_bid_usd, self.book.best_ask_usd
        return BookTop(bid, ask, self.clock) if 0 < bid < ask else None

    # ---- the venue interface -----------------------------------------------------------------------
    def view(self) -> VenueView:
        """The replay's state now, as the strategy may know it."""
        resting: list[RestingOrder] = []
        pending: list[RestingOrder] = []
        for cloid, slot in list(self._slot_of.items()):
            o = self.orders[slot]
            if o["state"] == FREE or int(o["oid"]) != self._oid[cloid]:  # filled, cancelled or rejected: gone
                del self._slot_of[cloid], self._order_of[cloid]
                self._cloid_of.pop(self._oid.pop(cloid), None)
                continue
            order = self._order_of[cloid]
            size = float(o["qty"])
            if size != order.size:
                order = RestingOrder.trusted(order.side, order.price, size, cloid, None, order.reduce_only)
                self._order_of[cloid] = order
            (resting if o["dead_ts"] == NEVER else pending).append(order)
        traded = float(self._cum_vol[self.k - 1]) if self.k > 0 else 0.0
        fills, self._new_fills = tuple(self._new_fills), []
        book = self.book_top
        view = VenueView(
            ts_ns=self.clock,
            book=book,
            traded_coins=traded - self._traded_seen,
            resting=tuple(resting),
            pending=tuple(pending),
            unseen=(),
            fills=fills,
            position_coins=self.position_coins,
            margin_usd=self.margin_usd,
            pnl_usd=None if book is None else self.cash_usd + self.position_coins * book.mid_usd,
            latency_s=self._latency_ns() / 1e9,
            book_interval_s=0.0,  # the rebuilt book is the market's at every view
        )
        self._traded_seen = traded
        return view

    def _latency_ns(self) -> int:
        lat = self.latency_ns
        if self.feed_latency and self.k > 0:
            lat += max(int(self._offs[self.k - 1] - self._offs_min[self.k - 1]), 0)
        return lat

    def apply(self, plan: OrderPlan) -> None:
        """Cancels, then modifies (a cancel and a new order), then new orders, all after the latency."""
        at = self.clock + self._latency_ns()
        for c in plan.cancels:
            self._cancel(c.target.key, at)
        for mo in plan.modifies:
            self._cancel(mo.target.key, at)
            self._place(RestingOrder.trusted(mo.side, mo.price, mo.size, mo.cloid, None, mo.reduce_only), mo.level, at)
        for p in plan.places:
            self._place(RestingOrder.trusted(p.side, p.price, p.size, p.cloid, None, p.reduce_only), p.level, at)

    def _cancel(self, cloid: str, at_ns: int) -> None:
        oid = self._oid.get(cloid)
        if oid is not None:
            cancel(self.orders, oid, at_ns)

    def _place(self, order: RestingOrder, level: int, at_ns: int) -> None:
        tick = price_to_ticks(order.price, self.tick_usd, name=f"{order.side} price")
        oid = self._next_oid
        self._next_oid += 1
        slot = place(self.orders, oid, 1 if order.side == "bid" else -1, tick, order.size, level, at_ns)
        if slot < 0:
            self.no_slot += 1
            return
        assert order.cloid is not None  # every order the strategy places has a client id
        self._slot_of[order.cloid] = slot
        self._order_of[order.cloid] = order
        self._oid[order.cloid] = oid
        self._cloid_of[oid] = order.cloid


__all__ = ["ReplayVenue"]
