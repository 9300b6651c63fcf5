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

# book state slots (see hyper_make.data.book)
_BEST_BID, _BEST_ASK, _N, _BASE = 0, 1, 2, 5


@nb.njit(cache=True, inline="always")
def _f(x: float, kind: int, n: float) -> float:
    if kind == QUEUE_POWER:
        return x**n
    return np.log1p(x)


@nb.njit(cache=True)
def _next_order_event(o_state, o_live_ts, o_dead_ts):  # type: ignore[no-untyped-def]
    """Earliest pending activation or cancellation time of our orders (ns); int64 max if none."""
    t = np.iinfo(np.int64).max
    for s in range(o_state.size):
        if o_state[s] == PENDING and o_live_ts[s] < t:
            t = o_live_ts[s]
        if o_state[s] != FREE and o_dead_ts[s] < t:
            t = o_dead_ts[s]
    return t


@nb.njit(cache=True)
def _free(s, o_state, o_side, o_tick, bid_slot, ask_slot, base, nb_ticks):  # type: ignore[no-untyped-def]
    if o_state[s] == LIVE:
        i = o_tick[s] - base
        if 0 <= i < nb_ticks:
            lookup = bid_slot if o_side[s] > 0 else ask_slot
            if lookup[i] == s:
                lookup[i] = -1
    o_state[s] = FREE


@nb.njit(cache=True)
def _order_events(
    clock, bid, ask, st, o_state, o_side, o_tick, o_qty, o_front, o_cum_trade, o_live_ts, o_dead_ts, bid_slot, ask_slot
):  # type: ignore[no-untyped-def]
    """Activate arrived orders (post-only check, back of the queue) and free cancelled ones; returns rejects."""
    base = st[_BASE]
    nb_ticks = st[_N]
    rejects = 0
    for s in range(o_state.size):
        if o_state[s] == PENDING and o_live_ts[s] <= clock:
            i = o_tick[s] - base
            if i < 0 or i >= nb_ticks:
                o_state[s] = FREE
                continue
            if o_side[s] > 0:
                if st[_BEST_ASK] < nb_ticks and i >= st[_BEST_ASK]:
                    o_state[s] = FREE
                    rejects += 1
                    continue
                o_front[s] = bid[i]
                bid_slot[i] = s
            else:
                if st[_BEST_BID] >= 0 and i <= st[_BEST_BID]:
                    o_state[s] = FREE
                    rejects += 1
                    continue
                o_front[s] = ask[i]
                ask_slot[i] = s
            o_cum_trade[s] = 0.0
            o_state[s] = LIVE
        if o_state[s] != FREE and o_dead_ts[s] <= clock:
            _free(s, o_state, o_side, o_tick, bid_slot, ask_slot, base, nb_ticks)
    return rejects


@nb.njit(cache=True)
def run_until(
    bid,
    ask,
    st,  # book
    ev,
    exch_ts,
    px,
    qty,  # events
    k0,
    t_end_ns,
    clock0,
    o_state,
    o_side,
    o_tick,
    o_qty,
    o_front,
    o_cum_trade,
    o_live_ts,
    o_dead_ts,
    o_level,  # our orders
    bid_slot,
    ask_slot,  # tick index -> slot of our live order there (-1: none)
    f_ts,
    f_side,
    f_tick,
    f_qty,
    f_level,
    f_mid,
    nfill0,  # fills out
    tick,
    lot,
    queue_kind,
    queue_n,
    use_bbo,
):  # type: ignore[no-untyped-def]
    """Advance to ``t_end_ns``; returns ``(status, next row, clock ns, fills so far, post-only rejects)``."""
    m = ev.size
    n_slots = o_state.size
    cap = f_ts.size
    base = st[_BASE]
    nb_ticks = st[_N]
    clock = clock0
    nfill = nfill0
    rejects = 0
    k = k0
    next_order_ts = _next_order_event(o_state, o_live_ts, o_dead_ts)
    while k < m:
        e = ev[k]
        if (e & np.uint64(EXCH_EVENT)) == 0:
            k += 1  # a local-only copy (hftbacktest's event-order correction): the exchange side skips it
            continue
        t = exch_ts[k]
        if t > clock:
            clock = t
        if clock > t_end_ns:
            return 0, k, clock, nfill, rejects
        if nfill > cap - n_slots:
            return 2, k, clock, nfill, rejects
        if clock >= next_order_ts:
            rejects += _order_events(clock, bid, ask, st, o_state, o_side, o_tick, o_qty, o_front, o_cum_trade,
                                     o_live_ts, o_dead_ts, bid_slot, ask_slot)  # fmt: skip
            next_order_ts = _next_order_event(o_state, o_live_ts, o_dead_ts)
        kind = int(e & np.uint64(KIND_MASK))
        is_buy = (e & np.uint64(BUY_EVENT)) != 0
        if kind == TRADE_EVENT:
            tt = int(np.rint(px[k] / tick))
            mid = 0.5 * (st[_BEST_BID] + st[_BEST_ASK] + 2 * base) * tick
            for s in range(n_slots):
                if o_state[s] != LIVE:
                    continue
                # a sell aggressor hits bids, a buy aggressor lifts asks
                if (o_side[s] > 0) == is_buy:
                    continue
                fill = 0.0
                through = tt < o_tick[s] if o_side[s] > 0 else tt > o_tick[s]
                if through:
                    fill = o_qty[s]
                elif tt == o_tick[s]:
                    o_cum_trade[s] += qty[k]
                    o_front[s] -= qty[k]
                    lots = np.rint(-o_front[s] / lot)
                    if lots > 0.0:
                        fill = min(lots * lot, o_qty[s])
                        o_front[s] = 0.0
                if fill > 0.0:
                    f_ts[nfill] = clock
                    f_side[nfill] = o_side[s]
                    f_tick[nfill] = o_tick[s]
                    f_qty[nfill] = fill
                    f_level[nfill] = o_level[s]
                    f_mid[nfill] = mid
                    nfill += 1
                    o_qty[s] -= fill
                    if np.rint(o_qty[s] / lot) <= 0.0:
                        _free(s, o_state, o_side, o_tick, bid_slot, ask_slot, base, nb_ticks)
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
                        new = bid[i] if is_buy else ask[i]
                        if queue_kind == QUEUE_RISK_AVERSE:
                            o_front[s] = min(o_front[s], new)
                        else:
                            chg = prev - new - o_cum_trade[s]
                            o_cum_trade[s] = 0.0
                            if chg <= 0.0:
                                o_front[s] = min(o_front[s], new)
                            else:
                                front = o_front[s]
                                back = max(prev - front, 0.0)
                                fb = _f(back, queue_kind, queue_n)
                                ff = _f(front, queue_kind, queue_n)
                                p_back = fb / (fb + ff) if fb + ff > 0.0 else 1.0
                                est = front - (1.0 - p_back) * chg + min(back - p_back * chg, 0.0)
                                o_front[s] = max(min(est, new), 0.0)
                else:
                    book_row(bid, ask, st, e, i, qty[k], True)
        k += 1
    return 1, k, clock, nfill, rejects


@nb.njit(cache=True)
def send_orders(
    arrive_ns, n_side, n_tick, n_qty, n_level, o_state, o_side, o_tick, o_qty, o_live_ts, o_dead_ts, o_level
):  # type: ignore[no-untyped-def]
    """Send a ladder arriving at ``arrive_ns``: an order matching a resting one (same side and price, no more
    size) keeps its queue place and is shrunk; the other resting orders are cancelled (at ``arrive_ns``) and the
    rest are queued as new. Returns the number of new orders dropped for lack of a free slot."""
    never = np.iinfo(np.int64).max
    n_slots = o_state.size
    kept = np.zeros(n_slots, np.bool_)
    dropped = 0
    for j in range(n_side.size):
        match = -1
        for s in range(n_slots):
            if (o_state[s] != FREE and o_dead_ts[s] == never and not kept[s] and o_side[s] == n_side[j]
                    and o_tick[s] == n_tick[j] and o_qty[s] >= n_qty[j] - 1e-12):  # fmt: skip
                match = s
                break
        if match >= 0:
            kept[match] = True
            o_qty[match] = n_qty[j]
            o_level[match] = n_level[j]
            n_qty[j] = -1.0  # handled
    for s in range(n_slots):
        if o_state[s] != FREE and o_dead_ts[s] == never and not kept[s]:
            o_dead_ts[s] = arrive_ns
    s = 0
    for j in range(n_side.size):
        if n_qty[j] < 0.0:
            continue
        while s < n_slots and o_state[s] != FREE:
            s += 1
        if s >= n_slots:
            dropped += 1
            continue
        o_state[s] = PENDING
        o_side[s] = n_side[j]
        o_tick[s] = n_tick[j]
        o_qty[s] = n_qty[j]
        o_level[s] = n_level[j]
        o_live_ts[s] = arrive_ns
        o_dead_ts[s] = never
        s += 1
    return dropped


@nb.njit(cache=True)
def run_grid(
    bid,
    ask,
    st,
    ev,
    exch_ts,
    px,
    qty,
    o_state,
    o_side,
    o_tick,
    o_qty,
    o_front,
    o_cum_trade,
    o_live_ts,
    o_dead_ts,
    o_level,
    bid_slot,
    ask_slot,
    f_ts,
    f_side,
    f_tick,
    f_qty,
    f_level,
    f_mid,
    tick,
    lot,
    queue_kind,
    queue_n,
    use_bbo,
    refresh_ns,
    latency_ns,
    warmup_ns,
    depths_bps,
    level_qty,
):  # type: ignore[no-untyped-def]
    """The whole replay in numba for a fixed ladder: every ``refresh_ns`` the same depths (bps from the mid) and
    equal sizes (coins) on both sides, sent with :func:`send_orders`. Returns ``(status, fills, rejects)``."""
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
    while True:
        status, k, clock, nfill, rej = run_until(
            bid, ask, st, ev, exch_ts, px, qty, k, t_next, clock,
            o_state, o_side, o_tick, o_qty, o_front, o_cum_trade, o_live_ts, o_dead_ts, o_level, bid_slot, ask_slot,
            f_ts, f_side, f_tick, f_qty, f_level, f_mid, nfill, tick, lot, queue_kind, queue_n, use_bbo,
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
        send_orders(t_now + latency_ns, n_side, n_tick, n_qty, n_level, o_state, o_side, o_tick, o_qty, o_live_ts,
                    o_dead_ts, o_level)  # fmt: skip
