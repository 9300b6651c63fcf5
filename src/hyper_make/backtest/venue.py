"""A recorded feed as a venue of the shared strategy (:mod:`hyper_make.strategy.venue`).

:class:`ReplayVenue` rebuilds the book from the recording and runs our orders through the replay kernel
(:mod:`hyper_make.backtest._core`): a new order arrives after the latency, is post-only checked on arrival and joins
the back of its price's queue; it fills by the kernel's rules (queue, trades through it, the book crossing it), in
whole lots; a cancel takes effect after the latency (the order may fill until then: it is reported as *pending*); a
modify is a cancel and a new order. The strategy learns of fills, rejects and the end of orders a response latency
after they happen (its position is the fills it was told of), and with feed latency it sees the market as the
recorder received it (``local_ts``). Our orders never move the replayed market.

The venue reads the data chunk by chunk from an :class:`~hyper_make.backtest._feed.EventFeed` (an array is sliced
into one): the kernel stops at the end of a chunk and resumes on the next one at the same clock with the same book,
orders, queue positions, requests in flight and fills, so memory holds a chunk or two, not the data, and a run
split at any rows gives the fills of the unsplit run.
"""

from __future__ import annotations

import numpy as np

from ..data.book import BookGrid, MarketPath, OrderBook
from ..data.events import EXCH_EVENT, LOCAL_EVENT
from ..instrument import price_to_ticks
from ..strategy.orders import OrderPlan, RestingOrder
from ..strategy.venue import BookTop, VenueFill, VenueView
from ._core import (
    CROSS_ALL,
    DONE,
    FREE,
    NEVER,
    STATUS_END,
    STATUS_FILLS_FULL,
    cancel,
    fill_dtype,
    local_until,
    order_dtype,
    place,
    run_until,
)
from ._feed import Chunk, EventFeed, PathRecorder, array_chunks, enter


class ReplayVenue:
    """One recording replayed for one strategy.

    Parameters
    ----------
    events : the recording: an ``event_dtype`` array (read in slices of ``chunk_rows``), or an
        :class:`~hyper_make.backtest._feed.EventFeed` shared with other venues (its grid and receive clock are then
        the feed's: ``grid`` must be its grid, and a feed built without a receive clock cannot give feed latency).
    grid : the book's price grid (ticks of ``grid.tick_usd``).
    lot_coins : the instrument's lot (orders and fills are whole lots), ``> 0``.
    maker_fee_frac : fee on our fills as a fraction of notional (negative = rebate).
    margin_usd : collateral backing our orders (USD); the replay does no margin accounting.
    latency_ms : order entry and cancel latency (ms): our request reaches the exchange this long after it is sent.
    response_latency_ms : the exchange's answers (fills, acknowledgements, rejects, cancels done) reach the
        strategy this long after they happen (ms); ``None``: ``latency_ms``.
    feed_latency : the strategy sees market data at the recording's receive time (``local_ts``, see
        :func:`strategy_clock`) instead of at exchange time.
    queue_kind, queue_n, use_bbo : the kernel's queue model and whether best-bid/offer messages move the book.
    cross, market_first : the kernel's crossing rule (``CROSS_*``) and equal-timestamp rule.
    slots : order slots (orders resting, in flight, or gone but not yet known to be, at once).
    chunk_rows : rows per chunk when ``events`` is an array.
    """

    def __init__(
        self,
        events: np.ndarray | EventFeed,
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
        response_latency_ms: float | None = None,
        cross: int = CROSS_ALL,
        market_first: bool = True,
        chunk_rows: int = 262_144,
    ) -> None:
        if isinstance(events, EventFeed):
            feed = events
            if feed_latency and feed.clock_shift is None:
                raise ValueError("feed latency needs an EventFeed built with the receive clock (clock_shift)")
        else:
            shift = _shift(events) if feed_latency else None
            feed = EventFeed(array_chunks(events, chunk_rows), grid=grid, use_bbo=use_bbo, clock_shift=shift)
        self.feed = feed
        self.grid = grid
        self.tick_usd = grid.tick_usd
        self.book = OrderBook(grid, use_bbo=use_bbo)
        self.lot_coins = float(lot_coins)
        self.fee = float(maker_fee_frac)
        self.margin_usd = float(margin_usd)
        self.latency_ns = round(latency_ms * 1e6)
        self.resp_ns = self.latency_ns if response_latency_ms is None else round(response_latency_ms * 1e6)
        self.feed_latency = feed_latency
        self.queue_kind, self.queue_n, self.use_bbo = queue_kind, float(queue_n), use_bbo
        self.cross, self.market_first = int(cross), bool(market_first)
        self.local_book = OrderBook(grid, use_bbo=use_bbo) if feed_latency else self.book
        # the exchange side's chunk and row, and the strategy's (feed latency: its own place in the data)
        self._xcur = feed.cursor()
        self._xc: Chunk = feed.get(0)  # type: ignore[assignment]  # the feed has at least one chunk
        self._lcur = feed.cursor() if feed_latency else self._xcur
        self._lc: Chunk = self._xc
        self._lk = 0
        self._local_traded = 0.0
        self._ended = False
        #: path pieces of the chunks the exchange side has finished, not yet taken (:meth:`take_pieces`)
        self._pieces: list[MarketPath] = []
        #: the exchange side's record of the chunk it replays (BBO changes and trades)
        self.path = PathRecorder()
        self.orders = np.zeros(slots, dtype=order_dtype)
        self.orders["live_ts"] = NEVER
        self.orders["dead_ts"] = NEVER
        self.orders["done_ts"] = NEVER
        self.bid_slot = np.full(grid.n, -1, np.int64)
        self.ask_slot = np.full(grid.n, -1, np.int64)
        self.fills = np.zeros(65_536, dtype=fill_dtype)
        self.nfill = 0
        self._booked = 0  # fills counted in the exchange-side account
        self._seen = 0  # fills the strategy has been told of
        self.k = 0
        self.clock = feed.t0
        self.t0 = self.clock
        self.position_coins = 0.0  # the exchange's account: every fill at its time
        self.cash_usd = 0.0
        self.seen_position_coins = 0.0  # what the strategy knows: the fills it was told of
        self.seen_cash_usd = 0.0
        self.max_abs_position_coins = 0.0
        self.rejects = 0
        self.no_slot = 0
        self.zero_lot = 0
        self._slot_of: dict[str, int] = {}  # cloid -> slot
        self._order_of: dict[str, RestingOrder] = {}  # cloid -> our order as placed
        self._seen_filled: dict[str, float] = {}  # cloid -> coins filled as the strategy knows
        self._oid: dict[str, int] = {}  # cloid -> the kernel's id
        self._cloid_of: dict[int, str] = {}
        self._next_oid = 0
        self._traded_seen = 0.0
        self._new_fills: list[VenueFill] = []

    # ---- time --------------------------------------------------------------------------------------
    def advance(self, t_ns: int) -> int:
        """Replay the recording up to ``t_ns`` (exchange time); returns the kernel's status (1: end of data)."""
        while True:
            c = self._xc
            status, self.k, self.clock, self.nfill, rej = run_until(
                self.book.bid_qty, self.book.ask_qty, self.book.state, c.ev, c.exch_ts, c.px, c.qty,
                self.k, t_ns, self.clock, self.orders, self.bid_slot, self.ask_slot, self.fills, self.nfill,
                self.tick_usd, self.lot_coins, self.queue_kind, self.queue_n, self.use_bbo, self.cross,
                self.market_first, self.path.arrays,
            )  # fmt: skip
            self.rejects += rej
            self._book_fills()
            if status == STATUS_FILLS_FULL:
                self._grow()
                continue
            if status == STATUS_END and not self._ended:
                nxt = self.feed.get(c.index + 1)
                self._exchange_enters(nxt)
                if nxt is not None:  # the end of a chunk, not of the data: go on with the next one
                    continue
            break
        if self.feed_latency:
            lb = self.local_book
            traded = 0.0  # received in this call, summed from 0 as one unsplit call would, then added
            while True:
                c = self._lc
                self._lk, traded = local_until(
                    lb.bid_qty, lb.ask_qty, lb.state, c.ev, c.local_ts, c.px, c.qty, self._lk, t_ns,
                    self.tick_usd, self.use_bbo, traded,
                )  # fmt: skip
                if self._lk < c.rows:
                    break
                nxt = self.feed.get(c.index + 1)
                if nxt is None:
                    break
                self._strategy_enters(nxt)
            self._local_traded += traded
        self._tell_fills()
        return int(status)

    def _exchange_enters(self, nxt: Chunk | None) -> None:
        """The exchange side at the end of its chunk: the chunk's path piece taken, then the next chunk entered in the
        band it decides (:meth:`EventFeed.band`), or ``None``: the end of the data."""
        self._pieces.append(self.path.take())
        if nxt is None:
            self._ended = True
            return
        enter(self.feed.band(nxt.index, self.book.state), self.book, self.bid_slot, self.ask_slot)
        self._xc, self.k = nxt, 0
        self._release()

    def _strategy_enters(self, nxt: Chunk) -> None:
        """The strategy side (feed latency) at the end of its chunk: the next chunk entered in its band, decided
        ahead if no exchange side has got there (:meth:`EventFeed.band_for_strategy`)."""
        enter(self.feed.band_for_strategy(nxt.index, self.book, self._xc, self.k), self.local_book)
        self._lc, self._lk = nxt, 0
        self._release()

    def _grow(self) -> None:
        """Room for the kernel again after ``STATUS_FILLS_FULL``: the fill buffer or the path recorder, twice."""
        if self.path.full:
            self.path.grow()
        if self.nfill > self.fills.shape[0] - 2 * self.orders.shape[0]:
            grown = np.zeros(2 * self.fills.shape[0], dtype=fill_dtype)
            grown[: self.nfill] = self.fills[: self.nfill]
            self.fills = grown

    def _release(self) -> None:
        self.feed.release(self._xcur, self._xc.index)
        if self._lcur != self._xcur:
            self.feed.release(self._lcur, self._lc.index)

    def take_pieces(self) -> list[MarketPath]:
        """The market-path pieces of the chunks the exchange side has finished since the last call (all of them
        once the data has ended): every fill of ours before a piece's last BBO change is already in
        :attr:`fills`."""
        out, self._pieces = self._pieces, []
        return out

    @property
    def ended(self) -> bool:
        """Whether the exchange side has reached the end of the data."""
        return self._ended

    def _book_fills(self) -> None:
        """The exchange's account: every fill at its exchange time."""
        for f in self.fills[self._booked : self.nfill]:
            side, q = int(f["side"]), float(f["qty"])
            price = float(f["tick"]) * self.tick_usd
            self.position_coins += side * q
            self.cash_usd -= side * q * price + price * q * self.fee
            self.max_abs_position_coins = max(self.max_abs_position_coins, abs(self.position_coins))
        self._booked = self.nfill

    def _tell_fills(self) -> None:
        """The fills whose report has reached the strategy (``response_latency`` after the fill)."""
        new = self.fills[self._seen : self.nfill]
        if not new.size:
            return
        n = int(np.searchsorted(new["ts"], self.clock - self.resp_ns, side="right"))
        for f in new[:n]:
            side = int(f["side"])
            price = float(f["tick"]) * self.tick_usd
            q = float(f["qty"])
            fee = price * q * self.fee
            self.seen_position_coins += side * q
            self.seen_cash_usd -= side * q * price + fee
            cloid = self._cloid_of.get(int(f["oid"]))
            if cloid is not None:
                self._seen_filled[cloid] = self._seen_filled.get(cloid, 0.0) + q
            self._new_fills.append(
                VenueFill(
                    fill_id=str(self._seen + len(self._new_fills)),
                    cloid=cloid,
                    side="bid" if side > 0 else "ask",
                    price_usd=price,
                    size_coins=q,
                    fee_usd=fee,
                    ts_ns=int(f["ts"]),
                )
            )
        self._seen += n

    @property
    def book_top(self) -> BookTop | None:
        """The best bid and ask the strategy holds now (the exchange's, or with ``feed_latency`` the book of the
        rows received by now), or ``None`` while it is not two-sided."""
        book = self.local_book
        bid, ask = book.best_bid_usd, book.best_ask_usd
        return BookTop(bid, ask, self.clock) if 0 < bid < ask else None

    # ---- the venue interface -----------------------------------------------------------------------
    def _forget_done(self) -> None:
        """Free the slots of orders the strategy knows are gone (``response_latency`` after they left the book)."""
        known = self.clock - self.resp_ns
        for cloid, slot in list(self._slot_of.items()):
            o = self.orders[slot]
            if int(o["oid"]) != self._oid[cloid] or (o["state"] == DONE and o["done_ts"] <= known):
                if int(o["oid"]) == self._oid[cloid]:
                    o["state"] = FREE
                del self._slot_of[cloid], self._order_of[cloid]
                self._seen_filled.pop(cloid, None)
                self._cloid_of.pop(self._oid.pop(cloid), None)

    def view(self) -> VenueView:
        """The replay's state now, as the strategy may know it: fills, acknowledgements and the end of orders
        ``response_latency`` after they happened."""
        self._forget_done()
        resting: list[RestingOrder] = []
        pending: list[RestingOrder] = []
        for cloid, slot in self._slot_of.items():
            o = self.orders[slot]
            order = self._order_of[cloid]
            filled = self._seen_filled.get(cloid, 0.0)
            if filled > 0.0:
                size = round((order.size - filled) / self.lot_coins) * self.lot_coins
                order = RestingOrder.trusted(order.side, order.price, size, cloid, None, order.reduce_only)
            (resting if o["dead_ts"] == NEVER else pending).append(order)
        if self.feed_latency:
            traded = self._local_traded
        else:
            traded = float(self.path.traded[0])
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
            position_coins=self.seen_position_coins,
            margin_usd=self.margin_usd,
            pnl_usd=None if book is None else self.seen_cash_usd + self.seen_position_coins * book.mid_usd,
            latency_s=self.latency_ns / 1e9,
            book_interval_s=0.0,  # the rebuilt book is the market's at every view
        )
        self._traded_seen = traded
        return view

    def apply(self, plan: OrderPlan) -> None:
        """Cancels, then modifies (a cancel and a new order), then new orders, all after the latency."""
        self._forget_done()
        at = self.clock + self.latency_ns
        for c in plan.cancels:
            self._cancel(c.target.key, at)
        for mo in plan.modifies:
            self._cancel(mo.target.key, at)
            self._place(RestingOrder.trusted(mo.side, mo.price, mo.size, mo.cloid, None, mo.reduce_only), mo.level, at)
        for p in plan.places:
            self._place(RestingOrder.trusted(p.side, p.price, p.size, p.cloid, None, p.reduce_only), p.level, at)

    def _cancel(self, cloid: str, at_ns: int) -> None:
        oid = self._oid.get(cloid)
        slot = self._slot_of.get(cloid)
        if oid is None or slot is None:
            return
        if cancel(self.orders, oid, at_ns) < 0:
            o = self.orders[slot]
            if o["state"] == DONE and o["dead_ts"] == NEVER:
                o["dead_ts"] = at_ns  # gone already, unknown to the strategy: the cancel goes out all the same

    def _place(self, order: RestingOrder, level: int, at_ns: int) -> None:
        tick = price_to_ticks(order.price, self.tick_usd, name=f"{order.side} price")
        oid = self._next_oid
        self._next_oid += 1
        slot = place(self.orders, oid, 1 if order.side == "bid" else -1, tick, order.size, level, at_ns, self.lot_coins)
        if slot == -2:
            self.zero_lot += 1
            return
        if slot < 0:
            self.no_slot += 1
            return
        assert order.cloid is not None  # every order the strategy places has a client id
        o = self.orders[slot]
        if abs(float(o["qty"]) - order.size) > 1e-6 * self.lot_coins:  # the exchange holds whole lots
            order = RestingOrder.trusted(order.side, order.price, float(o["qty"]), order.cloid, None,
                                         order.reduce_only)  # fmt: skip
        self._slot_of[order.cloid] = slot
        self._order_of[order.cloid] = order
        self._oid[order.cloid] = oid
        self._cloid_of[oid] = order.cloid


def _shift(events: np.ndarray) -> int:
    """The shift :func:`strategy_clock` adds to the receive times of ``events`` (ns, ``>= 0``)."""
    from ._feed import clock_shift_ns

    return clock_shift_ns([events])


def strategy_clock(events: np.ndarray) -> np.ndarray:
    """When the strategy receives each row (ns): the recording's ``local_ts``, shifted later by the largest
    ``exch_ts - local_ts`` if any row was received before its exchange time (recorder clock behind the exchange's,
    as hftbacktest's ``correct_local_timestamp`` does), so that nothing is seen before it happened. A row without a
    receive time (``local_ts <= 0``) is received at its exchange time."""
    local = events["local_ts"].astype(np.int64)
    local = np.where(local > 0, local, events["exch_ts"].astype(np.int64))
    both = (events["ev"] & np.uint64(EXCH_EVENT | LOCAL_EVENT)) == np.uint64(EXCH_EVENT | LOCAL_EVENT)
    if not both.any():
        return local
    ahead = int(np.max(events["exch_ts"][both].astype(np.int64) - local[both]))
    return local + ahead if ahead > 0 else local


__all__ = ["ReplayVenue", "strategy_clock"]
