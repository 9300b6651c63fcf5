"""The replay kernel (numba): book updates, our orders' activation and cancellation, queue position, fills.

One call advances the replay from event row ``k0`` until the exchange clock passes ``t_end_ns`` and returns a
status code, as hftbacktest's ``elapse()`` does:

* ``STATUS_OK`` (0): stopped at ``t_end_ns``; ``STATUS_END`` (1): end of data; ``STATUS_FILLS_FULL`` (2): the
  fill buffer is nearly full (the caller grows it and calls again from the returned row).

Queue models (``queue_kind``): ``QUEUE_RISK_AVERSE`` (the quantity ahead of us shrinks only by trades at our
price, and never exceeds the level's quantity); ``QUEUE_POWER`` and ``QUEUE_LOG``: hftbacktest's probabilistic
models, where a decrease of the level not explained by trades is a cancellation that falls behind us with
probability ``f(back) / (f(back) + f(front))``, ``f(x) = x^n`` or ``log(1 + x)``.
A trade *through* our price (a sell below our bid, a buy above our ask) fills us completely; our own orders
never change the replayed book.

Fills are whole lots, as on an exchange: when trades at our price pass the queue ahead, the quantity past it
is rounded to the nearest lot (``lot`` coins) and filled, as hftbacktest's ``is_filled`` does; less than half a
lot stays owed (the queue position stays negative) until more trades make up a lot. An order is done when its
remaining size rounds to zero lots.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ..data.book import book_row
from ..data.events import BUY_EVENT, DEPTH_BBO_EVENT, DEPTH_CLEAR_EVENT, EXCH_EVENT, KIND_MASK, TRADE_EVENT

STATUS_OK = 0
STATUS_END = 1
STATUS_FILLS_FULL = 2

QUEUE_RISK_AVERSE = 0
QUEUE_POWER = 1
QUEUE_LOG = 2

# order slot states
FREE = 0
PENDING = 1
LIVE = 2

#: One order slot of ours: ``state`` (FREE, PENDING: sent, not yet arrived; LIVE: resting), ``side`` (+1 bid, -1 ask),
#: ``tick`` (price, ticks of the book grid), ``qty`` (remaining, coins), ``front`` (quantity ahead of us, coins; <= 0
#: at the front, a negative value being trades past the queue not yet a whole lot), ``cum_trade`` (trades at our
#: price since the last depth update, coins), ``live_ts`` (arrival, ns), ``dead_ts`` (cancel takes effect, ns; int64
#: max: none), ``level`` (ladder level) and ``oid`` (the venue's id of the order). One record array, not one array a
#: field: two fields of one dtype cannot be swapped silently.
order_dtype = np.dtype(
    [("state", np.int64), ("side", np.int64), ("tick", np.int64), ("qty", np.float64), ("front", np.float64),
     ("cum_trade", np.float64), ("live_ts", np.int64), ("dead_ts", np.int64), ("level", np.int64),
     ("oid", np.int64)],
    align=True,
)  # fmt: skip
#: One fill of ours: exchange time (ns), side (+1 bought, -1 sold), price (ticks), size (coins), ladder level, the
#: mid when it happened (USD) and the order's ``oid``.
fill_dtype = np.dtype(
    [("ts", np.int64), ("side", np.int64), ("tick", np.int64), ("qty", np.float64), ("level", np.int64),
     ("mid", np.float64), ("oid", np.int64)],
    align=True,
)  # fmt: skip
NEVER = np.iinfo(np.int64).max

# book state slots (see hyper_make.data.book)
_BEST_BID, _BEST_ASK, _N, _BASE = 0, 1, 2, 5


@nb.njit(cache=True, inline="always")
def _f(x: float, kind: int, n: float) -> float:
    if kind == QUEUE_POWER:
        return x**n
    return np.log1p(x)


@nb.njit(cache=True)
def _next_order_event(orders):  # type: ignore[no-untyped-def]
    """Earliest pending activation or cancellation time of our orders (ns); int64 max if none."""
    t = np.iinfo(np.int64).max
    for s in range(orders.shape[0]):
        o = orders[s]
        if o.state == PENDING and o.live_ts < t:
            t = o.live_ts
        if o.state != FREE and o.dead_ts < t:
            t = o.dead_ts
    return t


@nb.njit(cache=True)
def _free(s, orders, bid_slot, ask_slot, base, nb_ticks):  # type: ignore[no-untyped-def]
    o = orders[s]
    if o.state == LIVE:
        i = o.tick - base
        if 0 <= i < nb_ticks:
            lookup = bid_slot if o.side > 0 else ask_slot
            if lookup[i] == s:
                lookup[i] = -1
    o.state = FREE


@nb.njit(cache=True)
def _order_events(clock, bid, ask, st, orders, bid_slot, ask_slot):  # type: ignore[no-untyped-def]
    """Activate arrived orders (post-only check, back of the queue) and free cancelled ones; returns rejects."""
    base = st[_BASE]
    nb_ticks = st[_N]
    rejects = 0
    for s in range(orders.shape[0]):
        o = orders[s]
        if o.state == PENDING and o.live_ts <= clock:
            i = o.tick - base
            if i < 0 or i >= nb_ticks:
                o.state = FREE
                continue
            if o.side > 0:
                if st[_BEST_ASK] < nb_ticks and i >= st[_BEST_ASK]:
                    o.state = FREE
                    rejects += 1
                    continue
                o.front = bid[i]
                bid_slot[i] = s
            else:
                if st[_BEST_BID] >= 0 and i <= st[_BEST_BID]:
                    o.state = FREE
                    rejects += 1
                    continue
                o.front = ask[i]
                ask_slot[i] = s
            o.cum_trade = 0.0
            o.state = LIVE
        if o.state != FREE and o.dead_ts <= clock:
            _free(s, orders, bid_slot, ask_slot, base, nb_ticks)
    return rejects


@nb.njit(cache=True)
def run_until(
    bid, ask, st,  # book
    ev, exch_ts, px, qty,  # events
    k0, t_end_ns, clock0,
    orders, bid_slot, ask_slot,  # our orders; tick index -> slot of our live order there (-1: none)
    fills, nfill0,  # fills out
    tick, lot, queue_kind, queue_n, use_bbo,
):  # type: ignore[no-untyped-def]  # fmt: skip
    """Advance to ``t_end_ns``; returns ``(status, next row, clock ns, fills so far, post-only rejects)``."""
    m = ev.size
    n_slots = orders.shape[0]
    cap = fills.shape[0]
    base = st[_BASE]
    nb_ticks = st[_N]
    clock = clock0
    nfill = nfill0
    rejects = 0
    k = k0
    next_order_ts = _next_order_event(orders)
    while k < m:
        e = ev[k]
        if (e & np.uint64(EXCH_EVENT)) == 0:
            k += 1  # a local-only copy (hftbacktest's event-order correction): the exchange side skips it
            continue
        t = exch_ts[k]
        if t > t_end_ns:
            # the next row is later: our orders arrive and cancels take effect by then all the same (on this book)
            if next_order_ts <= t_end_ns:
                rejects += _order_events(t_end_ns, bid, ask, st, orders, bid_slot, ask_slot)
            return 0, k, max(clock, t_end_ns), nfill, rejects
        if t > clock:
            clock = t
        if nfill > cap - n_slots:
            return 2, k, clock, nfill, rejects
        if clock >= next_order_ts:
            rejects += _order_events(clock, bid, ask, st, orders, bid_slot, ask_slot)
            next_order_ts = _next_order_event(orders)
        kind = int(e & np.uint64(KIND_MASK))
        is_buy = (e & np.uint64(BUY_EVENT)) != 0
        if kind == TRADE_EVENT:
            tt = int(np.rint(px[k] / tick))
            mid = 0.5 * (st[_BEST_BID] + st[_BEST_ASK] + 2 * base) * tick
            for s in range(n_slots):
                o = orders[s]
                if o.state != LIVE:
                    continue
                # a sell aggressor hits bids, a buy aggressor lifts asks
                if (o.side > 0) == is_buy:
                    continue
                fill = 0.0
                through = tt < o.tick if o.side > 0 else tt > o.tick
                if through:
                    fill = o.qty
                elif tt == o.tick:
                    o.cum_trade += qty[k]
                    o.front -= qty[k]
                    lots = np.rint(-o.front / lot)
                    if lots > 0.0:
                        fill = min(lots * lot, o.qty)
                        o.front = 0.0
                if fill > 0.0:
                    f = fills[nfill]
                    f.ts = clock
                    f.side = o.side
                    f.tick = o.tick
                    f.qty = fill
                    f.level = o.level
                    f.mid = mid
                    f.oid = o.oid
                    nfill += 1
                    o.qty -= fill
                    if np.rint(o.qty / lot) <= 0.0:
                        _free(s, orders, bid_slot, ask_slot, base, nb_ticks)
        elif kind != DEPTH_BBO_EVENT or use_bbo:
            if kind == DEPTH_CLEAR_EVENT:
                book_row(bid, ask, st, e, 0, 0.0, True)
            else:
                i = int(np.rint(px[k] / tick)) - base
                if 0 <= i < nb_ticks:
                    prev = bid[i] if is_buy else ask[i]
                    book_row(bid, ask, st, e, i, qty[k], True)
                    s = bid_slot[i] if is_buy else ask_slot[i]
                    if s >= 0:
                        o = orders[s]
                        new = bid[i] if is_buy else ask[i]
                        if queue_kind == QUEUE_RISK_AVERSE:
                            o.front = min(o.front, new)
                        else:
                            chg = prev - new - o.cum_trade
                            o.cum_trade = 0.0
                            if chg <= 0.0:
                                o.front = min(o.front, new)
                            else:
                                front = o.front
                                back = max(prev - front, 0.0)
                                fb = _f(back, queue_kind, queue_n)
                                ff = _f(front, queue_kind, queue_n)
                                p_back = fb / (fb + ff) if fb + ff > 0.0 else 1.0
                                est = front - (1.0 - p_back) * chg + min(back - p_back * chg, 0.0)
                                o.front = max(min(est, new), 0.0)
                else:
                    book_row(bid, ask, st, e, i, qty[k], True)
        k += 1
    return 1, k, clock, nfill, rejects


@nb.njit(cache=True)
def place(orders, oid, side, tick, qty, level, arrive_ns):  # type: ignore[no-untyped-def]
    """Send a new order (``oid``; +1 bid, -1 ask; ``tick``; ``qty`` coins; ladder ``level``) that arrives at
    ``arrive_ns`` and joins the back of its queue; returns its slot, or -1 when every slot is in use."""
    for s in range(orders.shape[0]):
        o = orders[s]
        if o.state == FREE:
            o.state = PENDING
            o.side = side
            o.tick = tick
            o.qty = qty
            o.front = 0.0
            o.cum_trade = 0.0
            o.live_ts = arrive_ns
            o.dead_ts = NEVER
            o.level = level
            o.oid = oid
            return s
    return -1


@nb.njit(cache=True)
def cancel(orders, oid, at_ns):  # type: ignore[no-untyped-def]
    """Cancel order ``oid`` effective at ``at_ns`` (it may fill until then); returns its slot or -1 if gone."""
    for s in range(orders.shape[0]):
        o = orders[s]
        if o.state != FREE and o.oid == oid:
            if o.dead_ts > at_ns:
                o.dead_ts = at_ns
            return s
    return -1


@nb.njit(cache=True)
def _send_grid(arrive_ns, n_side, n_tick, n_qty, n_level, orders, next_oid):  # type: ignore[no-untyped-def]
    """A fixed grid's refresh (the engine benchmark, not the strategy): an order matching a resting one (same side
    and price, no more size) keeps its queue place and is shrunk; the other resting orders are cancelled at
    ``arrive_ns``; the rest are new. Returns ``(orders dropped for lack of a slot, next oid)``."""
    n_slots = orders.shape[0]
    kept = np.zeros(n_slots, np.bool_)
    done = np.zeros(n_side.size, np.bool_)
    dropped = 0
    for j in range(n_side.size):
        for s in range(n_slots):
            o = orders[s]
            if (o.state != FREE and o.dead_ts == NEVER and not kept[s] and o.side == n_side[j]
                    and o.tick == n_tick[j] and o.qty >= n_qty[j] - 1e-12):  # fmt: skip
                kept[s] = True
                o.qty = n_qty[j]
                o.level = n_level[j]
                done[j] = True
                break
    for s in range(n_slots):
        o = orders[s]
        if o.state != FREE and o.dead_ts == NEVER and not kept[s]:
            o.dead_ts = arrive_ns
    for j in range(n_side.size):
        if not done[j]:
            if place(orders, next_oid, n_side[j], n_tick[j], n_qty[j], n_level[j], arrive_ns) < 0:
                dropped += 1
            next_oid += 1
    return dropped, next_oid


@nb.njit(cache=True)
def run_grid(
    bid, ask, st, ev, exch_ts, px, qty, orders, bid_slot, ask_slot, fills, tick, lot, queue_kind, queue_n, use_bbo,
    refresh_ns, latency_ns, warmup_ns, depths_bps, level_qty,
):  # type: ignore[no-untyped-def]  # fmt: skip
    """The whole replay in numba for a fixed ladder: every ``refresh_ns`` the same depths (bps from the mid) and
    equal sizes (coins) on both sides. Returns ``(status, fills, rejects)``."""
    n = depths_bps.size
    n_side = np.empty(2 * n, np.int64)
    n_tick = np.empty(2 * n, np.int64)
    n_qty = np.empty(2 * n, np.float64)
    n_level = np.empty(2 * n, np.int64)
    base = st[_BASE]
    k = 0
    clock = exch_ts[0]
    t0 = clock
    t_next = clock + refresh_ns
    nfill = 0
    rejects = 0
    next_oid = 0
    while True:
        status, k, clock, nfill, rej = run_until(
            bid, ask, st, ev, exch_ts, px, qty, k, t_next, clock, orders, bid_slot, ask_slot, fills, nfill,
            tick, lot, queue_kind, queue_n, use_bbo,
        )  # fmt: skip
        rejects += rej
        if status != STATUS_OK:
            return status, nfill, rejects
        t_now = t_next
        t_next += refresh_ns
        if t_now - t0 < warmup_ns or st[_BEST_BID] < 0 or st[_BEST_ASK] >= st[_N]:
            continue
        mid = 0.5 * (st[_BEST_BID] + st[_BEST_ASK] + 2 * base) * tick
        for i in range(n):
            n_side[i] = 1
            n_tick[i] = int(np.floor(mid * (1.0 - depths_bps[i] * 1e-4) / tick))
            n_side[n + i] = -1
            n_tick[n + i] = int(np.ceil(mid * (1.0 + depths_bps[i] * 1e-4) / tick))
            n_qty[i] = level_qty
            n_qty[n + i] = level_qty
            n_level[i] = i
            n_level[n + i] = i
        _, next_oid = _send_grid(t_now + latency_ns, n_side, n_tick, n_qty, n_level, orders, next_oid)
